/* SPDX-License-Identifier: MIT */
/* haven: the IDVA's and on-call officer's command. Search by need. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sysexits.h>
#include <time.h>
#include "../common/cert.h"
#include "../common/cli.h"
#include "../proto/names.h"
#include "../proto/wire.h"
#include "need.h"

#define PROG "haven"

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: haven [--config FILE] [--json] COMMAND\n"
            "\n"
            "commands:\n"
            "  keygen --out PATH       make your key pair (PATH.key, PATH.pub)\n"
            "  search [need options]   find units that fit the household, best first\n"
            "  hold OFFER [--note-file FILE]\n"
            "                          hold an offered unit for a referral; the note (the\n"
            "                          survivor's situation, how to make contact) is sealed\n"
            "                          to the provider: the broker cannot read it\n"
            "  holds                   your holds and what the providers answered\n"
            "  cancel HOLD             give a held unit back\n"
            "  address HOLD            the address, once the provider has accepted\n"
            "  watch [need options] --for DURATION\n"
            "                          a standing search: you are alerted, with a fresh offer,\n"
            "                          when a unit that fits becomes available (e.g. --for 12h)\n"
            "  watch --list            your watches (on-call: and your region's)\n"
            "  watch --cancel WATCH\n"
            "  inbox [--keep] [--follow]\n"
            "                          alerts from your watches; those shown are acknowledged and\n"
            "                          leave (unless --keep); --follow stays connected and shows\n"
            "                          each at once\n"
            "\n"
            "%s"
            "\n"
            "options:\n"
            "  --config FILE   client configuration (default $HAVEN_CONFIG)\n"
            "  --json          machine-readable output on stdout\n"
            "  --help, --version\n", hv_need_help);
}

static json_t *
s_offer_json(const Haven__Offer *o)
{
    json_t *prefs = json_array();
    for (size_t i = 0; i < o->n_preferences_matched; i++)
        json_array_append_new(prefs, json_string(o->preferences_matched[i]));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?}",
                          "offer", o->offer, "provider_id", o->provider_id, "provider", o->provider,
                          "kind", hv_kind_name(o->kind), "unit", o->unit, "district", o->district,
                          "district_name", o->district_name);
    if (o->has_distance_km)
        json_object_set_new(j, "distance_km", json_integer(o->distance_km));
    json_object_set_new(j, "confirmed_age_s", json_integer(o->confirmed_age_s));
    json_object_set_new(j, "stale", json_boolean(o->stale));
    json_object_set_new(j, "preferences_matched", prefs);
    if (o->phone)
        json_object_set_new(j, "phone", json_string(o->phone));
    json_t *features = json_array();
    for (int b = 0; b < 8; b++)
        if (o->features & (1u << b))
            json_array_append_new(features, json_string(hv_feature_name(1u << b)));
    json_object_set_new(j, "features", features);
    json_object_set_new(j, "max_occupants", json_integer(o->max_occupants));
    json_object_set_new(j, "bedrooms", json_integer(o->bedrooms));
    if (o->has_available_from)
        json_object_set_new(j, "available_from", json_integer(o->available_from));
    return j;
}

static void
s_age(int64_t s, char *buf, size_t len)
{
    char ago[32];
    hv_format_age(s, ago, sizeof ago);
    snprintf(buf, len, s < 0 ? "never confirmed" : "confirmed %s", ago);
}

/* "3 more would match if boys up to 15 were accepted" */
static void
s_relaxation_sentence(const Haven__Relaxation *r, const Haven__Need *n, char *buf, size_t len)
{
    unsigned oldest = 0, household = (n->has_adults ? n->adults : 1) + (unsigned) n->n_children;
    for (size_t i = 0; i < n->n_children; i++)
        if (strcmp(n->children[i]->sex, "m") == 0 && n->children[i]->age > oldest)
            oldest = n->children[i]->age;
    unsigned m = r->matching;
    const char *more = m == 1 ? "1 more would match" : NULL;
    char head[64];
    if (!more) {
        snprintf(head, sizeof head, "%u more would match", m);
        more = head;
    }
    /* the rule itself, not its name (a broker from before the enum: its name) */
    switch (r->has_id ? (int) r->id : hv_rule_parse(r->rule)) {
    case HAVEN__RULE__RULE_MAX_BOY_AGE:
        snprintf(buf, len, "%s if boys up to %u were accepted", more, oldest);
        break;
    case HAVEN__RULE__RULE_STALE:
        snprintf(buf, len, "%s counting units not confirmed recently (--include-stale)", more);
        break;
    case HAVEN__RULE__RULE_AVAILABLE_FROM:
        snprintf(buf, len, "%s later: they are available from a future date (--from)", more);
        break;
    case HAVEN__RULE__RULE_MAX_CHILDREN:
        snprintf(buf, len, "%s if services took %zu children", more, n->n_children);
        break;
    case HAVEN__RULE__RULE_MAX_OCCUPANTS:
        snprintf(buf, len, "%s if units took a household of %u", more, household);
        break;
    case HAVEN__RULE__RULE_PETS:
        snprintf(buf, len, "%s if the pets were accepted", more);
        break;
    case HAVEN__RULE__RULE_NRPF:
        snprintf(buf, len, "%s if no recourse to public funds (NRPF) were accepted", more);
        break;
    case HAVEN__RULE__RULE_COMPLEX_NEEDS:
        snprintf(buf, len, "%s if the complex needs were supported", more);
        break;
    case HAVEN__RULE__RULE_SELF_CONTAINED:
        snprintf(buf, len, "%s if shared facilities were acceptable", more);
        break;
    case HAVEN__RULE__RULE_KIND:
        snprintf(buf, len, "%s with other kinds of accommodation", more);
        break;
    case HAVEN__RULE__RULE_EXCLUDED_DISTRICT:
        snprintf(buf, len, "%s in the excluded districts", more);
        break;
    case HAVEN__RULE__RULE_WITHIN:
        snprintf(buf, len, "%s further than %u km away", more, n->within_km);
        break;
    case HAVEN__RULE__RULE_GENDER:
        snprintf(buf, len, "%s at services for other genders", more);
        break;
    case HAVEN__RULE__RULE_ADULT_AGE:
        snprintf(buf, len, "%s without the age limit", more);
        break;
    case HAVEN__RULE__RULE_WHEELCHAIR:
        snprintf(buf, len, "%s if wheelchair access were not needed", more);
        break;
    case HAVEN__RULE__RULE_STEP_FREE:
        snprintf(buf, len, "%s if step-free access were not needed", more);
        break;
    case HAVEN__RULE__RULE_GROUND_FLOOR:
        snprintf(buf, len, "%s if a ground floor were not needed", more);
        break;
    case HAVEN__RULE__RULE_ACCESSIBLE_BATHROOM:
        snprintf(buf, len, "%s if an accessible bathroom were not needed", more);
        break;
    case HAVEN__RULE__RULE_SENSORY:
        snprintf(buf, len, "%s if sensory adaptations were not needed", more);
        break;
    case HAVEN__RULE__RULE_PERSONAL_CARE:
        snprintf(buf, len, "%s if personal care were not needed", more);
        break;
    case HAVEN__RULE__RULE_CARER_ROOM:
        snprintf(buf, len, "%s if a room for a carer were not needed", more);
        break;
    default:
        snprintf(buf, len, "%s if %s were not required", more, r->rule);
        break;
    }
}

static void
s_print_offers(const Haven__SearchReply *s, const Haven__Need *need)
{
    if (s->n_offers == 0)
        printf("No unit matches this need right now.\n");
    else
        printf("%u unit%s match%s; best first:\n", s->matching, s->matching == 1 ? "" : "s",
               s->matching == 1 ? "es" : "");
    for (size_t i = 0; i < s->n_offers; i++) {
        const Haven__Offer *o = s->offers[i];
        char dist[32] = "", age[48], features[160], prefs[160] = "";
        if (o->has_distance_km)
            snprintf(dist, sizeof dist, ", %u km", o->distance_km);
        s_age(o->confirmed_age_s, age, sizeof age);
        hv_bits_format(o->features, hv_feature_name, features, sizeof features);
        size_t used = 0;
        for (size_t k = 0; k < o->n_preferences_matched && used < sizeof prefs; k++)
            used += (size_t) snprintf(prefs + used, sizeof prefs - used, "%s%s", k ? "," : "  prefers: ",
                                      o->preferences_matched[k]);
        printf("%2zu. %s, %s (%s) in %s%s: up to %u people, %s; %s%s%s\n", i + 1, o->provider,
               o->unit, hv_kind_name(o->kind), o->district_name ? o->district_name : o->district, dist,
               o->max_occupants, features, age, o->stale ? " (STALE)" : "", prefs);
        if (o->phone)
            printf("    out of hours: %s\n", o->phone);
        printf("    offer: %s\n", o->offer);
    }
    for (size_t i = 0; i < s->n_relaxations; i++) {
        char sentence[256];
        s_relaxation_sentence(s->relaxations[i], need, sentence, sizeof sentence);
        printf("%s.\n", sentence);
    }
}

static int
s_search(hv_cli_t *cli, hv_need_t *need, bool json)
{
    Haven__Search search = HAVEN__SEARCH__INIT;
    search.need = hv_need_message(need);
    search.has_limit = 1;
    search.limit = hv_need_limit(need);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_SEARCH;
    req.search = &search;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__SearchReply *s = rep->search;
    if (json) {
        json_t *offers = json_array(), *relax = json_array();
        for (size_t i = 0; i < s->n_offers; i++)
            json_array_append_new(offers, s_offer_json(s->offers[i]));
        for (size_t i = 0; i < s->n_relaxations; i++)
            json_array_append_new(relax, json_pack("{s:s, s:i}", "rule", s->relaxations[i]->rule,
                                                   "matching", (int) s->relaxations[i]->matching));
        json_t *doc = json_pack("{s:i, s:o, s:o}", "matching", (int) s->matching, "offers", offers,
                                "relaxations", relax);
        hv_json_print(doc);
    } else {
        s_print_offers(s, search.need);
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

/* Open a box an agent sent for hold h (the address, or a decline's
 * message) only if a key our administrators certified as an agent of the
 * hold's provider signed it for this very hold: otherwise the broker, or
 * whoever holds it, could send a survivor to a false address. Returns the
 * plaintext (wipe and free it), or NULL with a sentence in err. */
static char *
s_open_from_agent(hv_cli_t *cli, const Haven__Hold *h, const Haven__Sealed *box, const char *what, char *err,
                  size_t errlen)
{
    char why[256];
    Haven__Certificate *c = NULL;
    const hv_trust_t *trust = hv_cli_trust(cli);
    if (!trust) {
        snprintf(err, errlen, "no administrators are trusted ([broker] admin_keys)");
        return NULL;
    }
    if (!box) {
        snprintf(err, errlen, "the broker sent hold %s without its %s", h->id, what);
        return NULL;
    }
    /* The provider and unit are the broker's word until this IDVA's own
     * signature over them, made when it asked for the hold, says so: else a
     * hold could be relabelled to a provider whose agent then answers. */
    if (!h->has_request_signature
        || hv_hold_verify(hv_keys_sign_public(hv_cli_keys(cli)), h->request_signature.data, h->request_signature.len,
                          h->id, h->provider, h->unit) < 0) {
        snprintf(err, errlen, "hold %s is not the hold you asked for (%s at %s): it may have been altered; do not "
                 "use its %s, and phone the provider", h->id, h->unit, h->provider, what);
        return NULL;
    }
    if (!h->answered_by || hv_cert_agent(trust, h->answered_by, h->provider, (int64_t) time(NULL), &c, why,
                                         sizeof why) < 0) {
        snprintf(err, errlen, "the %s of hold %s does not come from an agent of %s certified by your "
                 "administrators (%s): it may be forged; do not use it, and phone the provider", what, h->id,
                 h->provider, h->answered_by ? why : "no certificate");
        return NULL;
    }
    hv_box_context_t ctx = { what, h->id, h->provider, h->unit };
    int ok = hv_box_verify(box, c->sign_key.data, &ctx) == 0;
    haven__certificate__free_unpacked(c, NULL);
    if (!ok) {
        snprintf(err, errlen, "the %s of hold %s is not signed by %s's agent for this hold: it may have been "
                 "moved from another referral or forged; do not use it, and phone the provider", what, h->id,
                 h->provider);
        return NULL;
    }
    char *plain = hv_unseal(hv_cli_keys(cli), box);
    if (!plain)
        snprintf(err, errlen, "the %s of hold %s cannot be opened with this key", what, h->id);
    return plain;
}

static int
s_hold(hv_cli_t *cli, const char *offer, const char *note_file, bool json)
{
    char err[512];
    char *note = NULL;
    size_t note_len = 0;
    int rc;
    if (!hv_valid_token(offer)) {
        hv_cli_error(PROG, "'%.40s' is not an offer token: copy it whole from a search", offer);
        return EX_USAGE;
    }
    if (note_file && !(note = hv_read_file(note_file, HV_NOTE_MAX, &note_len, err, sizeof err))) {
        hv_cli_error(PROG, "%s", err);
        return EX_NOINPUT;
    }
    /* Ask whom to seal the note to: the provider's agents. */
    Haven__HoldPrepare prep = HAVEN__HOLD_PREPARE__INIT;
    prep.offer = (char *) offer;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_PREPARE;
    req.hold_prepare = &prep;
    Haven__Reply *rep = NULL;
    if ((rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_HOLD_PREPARE, &rep)) != EX_OK) {
        sodium_free(note);
        return rc;
    }
    Haven__Sealed boxes[HV_RECIPIENTS_MAX], *box_ptrs[HV_RECIPIENTS_MAX];
    size_t n_boxes = 0;
    const Haven__HoldPrepareReply *p = rep->hold_prepare;
    /* The id is ours, so the note and the request can be signed for this
     * very hold: nobody can move them to another. */
    char id[17];
    uint8_t raw[8], hold_sig[64];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    char provider[HV_ID_MAX + 1], unit[HV_ID_MAX + 1];
    snprintf(provider, sizeof provider, "%s", p->provider);
    snprintf(unit, sizeof unit, "%s", p->unit);
    hv_box_context_t ctx = { "note", id, provider, unit };
    if (note && note_len) {
        /* Seal only to keys our administrators certified as this
         * provider's agents: the broker's list alone proves nothing. */
        const hv_trust_t *trust = hv_cli_trust(cli);
        int64_t now = (int64_t) time(NULL);
        size_t refused = 0;
        for (size_t i = 0; trust && rc == EX_OK && i < p->n_certificates && n_boxes < HV_RECIPIENTS_MAX; i++) {
            Haven__Certificate *c = NULL;
            if (hv_cert_agent(trust, p->certificates[i], p->provider, now, &c, err, sizeof err) < 0) {
                hv_cli_error(PROG, "not sealing the note to a key the broker listed for %s: %s", p->provider, err);
                refused++;
                continue;
            }
            int sr = hv_seal(note, note_len, c->seal_key.data, &boxes[n_boxes]);
            if (sr == 0 && (sr = hv_box_sign(hv_cli_keys(cli), &ctx, &boxes[n_boxes])) < 0) {
                free(boxes[n_boxes].recipient.data);
                free(boxes[n_boxes].box.data);
            }
            haven__certificate__free_unpacked(c, NULL);
            if (sr < 0) {
                /* a note sealed to fewer agents than asked, or to a key
                 * anyone can open, must not go: stop before anything is held */
                hv_cli_error(PROG, sr == -ENOMEM ? "out of memory sealing the note; nothing was sent"
                             : "cannot seal the note to an agent of %s: the key is unusable; nothing was sent "
                               "and nothing is held. Hold without a note and phone them", p->provider);
                rc = sr == -ENOMEM ? EX_OSERR : EX_DATAERR;
                break;
            }
            box_ptrs[n_boxes] = &boxes[n_boxes];
            n_boxes++;
        }
        if (!trust) {
            rc = EX_CONFIG;
        } else if (rc == EX_OK && n_boxes == 0) {
            hv_cli_error(PROG, "%s has no agent certified by your administrators%s; the note was not sent and "
                         "nothing is held. Hold without a note and phone them", p->provider,
                         refused ? " (see above)" : "");
            rc = EX_UNAVAILABLE;
        }
    }
    sodium_free(note);           /* wipes the survivor's details */
    haven__reply__free_unpacked(rep, NULL);
    if (rc == EX_OK && hv_hold_sign(hv_cli_keys(cli), id, provider, unit, hold_sig) < 0) {
        hv_cli_error(PROG, "cannot sign the hold request");
        rc = EX_SOFTWARE;
    }

    Haven__HoldCreate create = HAVEN__HOLD_CREATE__INIT;
    create.offer = (char *) offer;
    create.n_notes = n_boxes;
    create.notes = box_ptrs;
    create.hold = id;
    create.has_signature = 1;
    create.signature = (ProtobufCBinaryData) { sizeof hold_sig, hold_sig };
    req.body_case = HAVEN__REQUEST__BODY_HOLD_CREATE;
    req.hold_create = &create;
    if (rc == EX_OK)
        rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_HOLD, &rep);
    for (size_t i = 0; i < n_boxes; i++) {
        free(boxes[i].recipient.data);
        free(boxes[i].box.data);
        free(boxes[i].signature.data);
        free(boxes[i].signer.data);
    }
    if (rc != EX_OK)
        return rc;
    const Haven__Hold *h = rep->hold;
    char when[32];
    hv_format_time(h->expires_at, when, sizeof when);
    if (json) {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "hold", h->id, "expires_at", when,
                                "provider_id", h->provider, "unit", h->unit);
        hv_json_print(doc);
    } else {
        printf("%s\n", h->id);
        fprintf(stderr, "held %s at %s until %s; the provider has been told%s\n", h->unit,
                h->provider_name ? h->provider_name : h->provider, when,
                n_boxes ? " and can read your note" : "");
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_holds(hv_cli_t *cli, bool json)
{
    Haven__HoldList list = HAVEN__HOLD_LIST__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_LIST;
    req.hold_list = &list;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_HOLDS, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__HoldListReply *l = rep->holds;
    json_t *arr = json_array();
    if (!json && l->n_holds == 0)
        printf("You have no holds.\n");
    for (size_t i = 0; i < l->n_holds; i++) {
        const Haven__Hold *h = l->holds[i];
        char created[32], expires[32], need[512];
        hv_format_time(h->created_at, created, sizeof created);
        hv_format_time(h->expires_at, expires, sizeof expires);
        hv_need_format(h->need, need, sizeof need);
        char why[512] = "";
        char *message = h->message ? s_open_from_agent(cli, h, h->message, "message", why, sizeof why) : NULL;
        if (json) {
            json_t *j = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:s}", "hold", h->id,
                                  "provider_id", h->provider, "provider", h->provider_name, "unit", h->unit,
                                  "state", hv_hold_state_name(h->state), "created_at", created, "need", need);
            if (h->state == HAVEN__HOLD_STATE__HOLD_PENDING)
                json_object_set_new(j, "expires_at", json_string(expires));
            if (h->has_reason)
                json_object_set_new(j, "reason", json_string(hv_decline_reason_name(h->reason)));
            if (message)
                json_object_set_new(j, "message", json_string(message));
            if (h->phone)
                json_object_set_new(j, "phone", json_string(h->phone));
            json_array_append_new(arr, j);
        } else {
            printf("%s  %-9s %s, %s", h->id, hv_hold_state_name(h->state),
                   h->provider_name ? h->provider_name : h->provider, h->unit);
            if (h->state == HAVEN__HOLD_STATE__HOLD_PENDING)
                printf("  (held until %s)", expires);
            if (h->state == HAVEN__HOLD_STATE__HOLD_ACCEPTED)
                printf("  -> haven address %s", h->id);
            if (h->has_reason)
                printf("  reason: %s", hv_decline_reason_name(h->reason));
            printf("\n");
            if (message)
                printf("    provider says: %s\n", message);
            else if (h->message)
                printf("    (the provider's message was withheld: %s)\n", why);
        }
        if (message) {
            sodium_memzero(message, strlen(message));
            free(message);
        }
    }
    if (json) {
        json_t *doc = json_pack("{s:o}", "holds", arr);
        hv_json_print(doc);
    } else {
        json_decref(arr);
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_cancel(hv_cli_t *cli, const char *id, bool json)
{
    Haven__HoldCancel c = HAVEN__HOLD_CANCEL__INIT;
    c.hold = (char *) id;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_CANCEL;
    req.hold_cancel = &c;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_HOLD, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        hv_json_print(json_pack("{s:s}", "cancelled", id));
    else
        printf("cancelled %s: %s at %s is available to others again\n", id, rep->hold->unit,
               rep->hold->provider_name ? rep->hold->provider_name : rep->hold->provider);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_address(hv_cli_t *cli, const char *id, bool json)
{
    Haven__HoldAddress a = HAVEN__HOLD_ADDRESS__INIT;
    a.hold = (char *) id;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_ADDRESS;
    req.hold_address = &a;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_HOLD, &rep);
    if (rc != EX_OK)
        return rc;
    char err[512];
    if (!rep->hold || strcmp(rep->hold->id, id) != 0) {
        hv_cli_error(PROG, "the broker answered with another hold than %s: do not trust it, and phone the provider",
                     id);
        haven__reply__free_unpacked(rep, NULL);
        return EX_DATAERR;
    }
    char *address = s_open_from_agent(cli, rep->hold, rep->hold->address, "address", err, sizeof err);
    if (!address) {
        hv_cli_error(PROG, "%s", err);
        haven__reply__free_unpacked(rep, NULL);
        return EX_DATAERR;
    }
    if (json) {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "hold", id, "provider_id", rep->hold->provider,
                                "unit", rep->hold->unit, "address", address);
        hv_json_print(doc);
    } else {
        printf("%s\n", address);
    }
    sodium_memzero(address, strlen(address));
    free(address);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static void
s_print_alert(const Haven__Alert *a, json_t *arr)
{
    char when[32];
    hv_format_time(a->at, when, sizeof when);
    if (arr) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s}", "watch", a->watch,
                              "offer", a->offer, "provider_id", a->provider_id, "provider", a->provider,
                              "unit", a->unit, "district", a->district, "district_name", a->district_name,
                              "kind", hv_kind_name(a->kind), "at", when);
        if (a->phone)
            json_object_set_new(j, "phone", json_string(a->phone));
        json_array_append_new(arr, j);
        return;
    }
    printf("%s  watch %s: %s, %s (%s) in %s\n", when, a->watch, a->provider ? a->provider : a->provider_id,
           a->unit, hv_kind_name(a->kind), a->district_name ? a->district_name : a->district);
    if (a->phone)
        printf("    out of hours: %s\n", a->phone);
    printf("    offer: %s\n", a->offer);
}

/* Acknowledge alerts up to seq: they leave the inbox. Only after they were
 * shown, so a reply lost on the way loses none (they are shown again). */
static int
s_inbox_ack(hv_cli_t *cli, uint64_t seq)
{
    Haven__Inbox in = HAVEN__INBOX__INIT;
    in.has_ack = 1;
    in.ack = seq;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_INBOX;
    req.inbox = &in;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_INBOX, &rep);
    if (rc == EX_OK)
        haven__reply__free_unpacked(rep, NULL);
    else
        hv_cli_error(PROG, "the broker did not confirm it heard the acknowledgement, so the alerts shown may be shown again");
    return rc;
}

static int
s_inbox(hv_cli_t *cli, bool keep, bool follow, bool json)
{
    Haven__Inbox in = HAVEN__INBOX__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_INBOX;
    req.inbox = &in;
    time_t last_subscribe = 0;
    bool first = true;
    for (;;) {
        if (follow && time(NULL) - last_subscribe >= 30) {
            Haven__Subscribe sub = HAVEN__SUBSCRIBE__INIT;
            Haven__Request sreq = HAVEN__REQUEST__INIT;
            sreq.body_case = HAVEN__REQUEST__BODY_SUBSCRIBE;
            sreq.subscribe = &sub;
            Haven__Reply *srep = NULL;
            int src = hv_cli_call(cli, &sreq, &srep);
            if (src != EX_OK)
                return src;
            haven__reply__free_unpacked(srep, NULL);
            last_subscribe = time(NULL);
        }
        Haven__Reply *rep = NULL;
        int rc = hv_cli_call_for(cli, &req, HAVEN__REPLY__BODY_INBOX, &rep);
        if (rc != EX_OK)
            return rc;
        const Haven__InboxReply *box = rep->inbox;
        json_t *arr = json ? json_array() : NULL;
        uint64_t last = 0;
        if (!json && first && box->n_alerts == 0 && !follow)
            printf("Your inbox is empty.\n");
        for (size_t i = 0; i < box->n_alerts; i++) {
            s_print_alert(box->alerts[i], arr);
            if (box->alerts[i]->seq > last)
                last = box->alerts[i]->seq;
        }
        if (arr) {
            if (follow) {
                for (size_t i = 0; i < json_array_size(arr); i++) {
                    json_dumpf(json_array_get(arr, i), stdout, JSON_COMPACT);
                    putchar('\n');
                }
                json_decref(arr);
            } else {
                json_t *doc = json_pack("{s:o}", "alerts", arr);
                hv_json_print(doc);
            }
        }
        fflush(stdout);
        haven__reply__free_unpacked(rep, NULL);
        first = false;
        if (!keep && last && (rc = s_inbox_ack(cli, last)) != EX_OK)
            return rc;
        if (!follow)
            return EX_OK;
        /* wait for a push (or re-subscribe every 30 s) */
        Haven__Reply *note = NULL;
        while (time(NULL) - last_subscribe < 30
               && hv_conn_wait_notify(hv_cli_conn(cli), 1000, &note) != 0) {
        }
        if (note)
            haven__reply__free_unpacked(note, NULL);
    }
}

static int
s_watch(hv_cli_t *cli, hv_need_t *need, const char *for_text, bool list, const char *cancel, bool json)
{
    Haven__Request req = HAVEN__REQUEST__INIT;
    Haven__Reply *rep = NULL;
    char err[256];
    int rc;
    if (list) {
        Haven__WatchList wl = HAVEN__WATCH_LIST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_WATCH_LIST;
        req.watch_list = &wl;
        if ((rc = hv_cli_call(cli, &req, &rep)) != EX_OK)
            return rc;
        json_t *arr = json_array();
        if (!json && rep->watches->n_watches == 0)
            printf("No watches.\n");
        for (size_t i = 0; i < rep->watches->n_watches; i++) {
            const Haven__Watch *w = rep->watches->watches[i];
            char until[32], summary[512];
            hv_format_time(w->expires_at, until, sizeof until);
            hv_need_format(w->need, summary, sizeof summary);
            if (json)
                json_array_append_new(arr, json_pack("{s:s, s:s?, s:s?, s:s, s:s}", "watch", w->id,
                                                     "principal", w->principal, "region", w->region,
                                                     "expires_at", until, "need", summary));
            else
                printf("%s  %-16s until %s  %s%s%s\n", w->id, w->principal ? w->principal : "", until, summary,
                       w->region && *w->region ? "  in " : "", w->region ? w->region : "");
        }
        if (json) {
            json_t *doc = json_pack("{s:o}", "watches", arr);
            hv_json_print(doc);
        } else {
            json_decref(arr);
        }
        haven__reply__free_unpacked(rep, NULL);
        return EX_OK;
    }
    if (cancel) {
        Haven__WatchCancel wc = HAVEN__WATCH_CANCEL__INIT;
        wc.watch = (char *) cancel;
        req.body_case = HAVEN__REQUEST__BODY_WATCH_CANCEL;
        req.watch_cancel = &wc;
        if (hv_request_validate(&req, err, sizeof err) < 0) {
            hv_cli_error(PROG, "'%s' is not a watch id", cancel);
            return EX_USAGE;
        }
        if ((rc = hv_cli_call(cli, &req, &rep)) != EX_OK)
            return rc;
        if (json)
            hv_json_print(json_pack("{s:s}", "cancelled", cancel));
        else
            printf("cancelled watch %s\n", cancel);
        haven__reply__free_unpacked(rep, NULL);
        return EX_OK;
    }
    int64_t secs;
    if (!for_text || hv_duration_parse(for_text, &secs) < 0 || secs < 60 || secs > 30 * 86400) {
        hv_cli_error(PROG, "watch needs --for DURATION, from 1m to 30d (e.g. --for 12h)");
        return EX_USAGE;
    }
    Haven__WatchCreate wc = HAVEN__WATCH_CREATE__INIT;
    wc.need = hv_need_message(need);
    wc.for_s = (uint32_t) secs;
    req.body_case = HAVEN__REQUEST__BODY_WATCH_CREATE;
    req.watch_create = &wc;
    if (hv_request_validate(&req, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_USAGE;
    }
    if ((rc = hv_cli_call(cli, &req, &rep)) != EX_OK)
        return rc;
    char until[32];
    hv_format_time(rep->watch->expires_at, until, sizeof until);
    if (json)
        hv_json_print(json_pack("{s:s, s:s}", "watch", rep->watch->id, "expires_at", until));
    else {
        printf("%s\n", rep->watch->id);
        fprintf(stderr, "watching until %s; alerts land in `haven inbox` (or live with --follow)\n", until);
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

int
main(int argc, char **argv)
{
    enum { O_CONFIG = 1, O_JSON, O_HELP, O_VERSION, O_NOTE_FILE, O_FOR, O_LIST, O_CANCEL, O_FOLLOW, O_KEEP };
    struct option opts[64];
    const struct option *need_opts = hv_need_options();
    size_t n = 0;
    opts[n++] = (struct option) { "config", required_argument, NULL, O_CONFIG };
    opts[n++] = (struct option) { "json", no_argument, NULL, O_JSON };
    opts[n++] = (struct option) { "help", no_argument, NULL, O_HELP };
    opts[n++] = (struct option) { "version", no_argument, NULL, O_VERSION };
    opts[n++] = (struct option) { "note-file", required_argument, NULL, O_NOTE_FILE };
    opts[n++] = (struct option) { "for", required_argument, NULL, O_FOR };
    opts[n++] = (struct option) { "list", no_argument, NULL, O_LIST };
    opts[n++] = (struct option) { "cancel", required_argument, NULL, O_CANCEL };
    opts[n++] = (struct option) { "follow", no_argument, NULL, O_FOLLOW };
    opts[n++] = (struct option) { "keep", no_argument, NULL, O_KEEP };
    for (size_t i = 0; need_opts[i].name && n < 63; i++)
        opts[n++] = need_opts[i];
    opts[n] = (struct option) { NULL, 0, NULL, 0 };

    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return hv_cli_keygen(PROG, argc - 1, argv + 1);

    const char *config = NULL, *note_file = NULL, *for_text = NULL, *cancel = NULL;
    bool json = false, need_given = false, list = false, follow = false, keep = false;
    char err[256];
    int c, rc = EX_OK;
    hv_need_t *need = hv_need_new();
    if (!need)
        return EX_OSERR;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == O_CONFIG) {
            config = optarg;
        } else if (c == O_JSON) {
            json = true;
        } else if (c == O_NOTE_FILE) {
            note_file = optarg;
        } else if (c == O_FOR) {
            for_text = optarg;
        } else if (c == O_LIST) {
            list = true;
        } else if (c == O_CANCEL) {
            cancel = optarg;
        } else if (c == O_FOLLOW) {
            follow = true;
        } else if (c == O_KEEP) {
            keep = true;
        } else if (c == O_HELP) {
            s_usage(stdout);
            goto out;
        } else if (c == O_VERSION) {
            printf("haven %s\n", HAVEN_VERSION);
            goto out;
        } else if (c >= HV_NEED_OPT_BASE) {
            need_given = true;
            if (hv_need_option(need, c, optarg, err, sizeof err) < 0) {
                hv_cli_error(PROG, "%s", err);
                rc = EX_USAGE;
                goto out;
            }
        } else {
            s_usage(stderr);
            rc = EX_USAGE;
            goto out;
        }
    }
    if (optind >= argc) {
        s_usage(stderr);
        rc = EX_USAGE;
        goto out;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    static const struct { const char *name; int args; } cmds[] = {
        { "search", 0 }, { "hold", 1 }, { "holds", 0 }, { "cancel", 1 }, { "address", 1 },
        { "watch", 0 }, { "inbox", 0 },
    };
    int which = -1;
    for (int i = 0; i < (int) (sizeof cmds / sizeof cmds[0]); i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            which = i;
    if (which < 0) {
        hv_cli_error(PROG, "unknown command '%s' (see --help)", cmd);
        rc = EX_USAGE;
        goto out;
    }
    if (nargs != cmds[which].args) {
        hv_cli_error(PROG, cmds[which].args ? "%s takes one argument" : "%s takes options only",
                     cmd);
        rc = EX_USAGE;
        goto out;
    }
    if (need_given && which != 0 && which != 5) {
        hv_cli_error(PROG, "need options go with search and watch");
        rc = EX_USAGE;
        goto out;
    }
    if ((for_text || list || cancel) && which != 5) {
        hv_cli_error(PROG, "--for, --list and --cancel go with watch");
        rc = EX_USAGE;
        goto out;
    }
    if ((follow || keep) && which != 6) {
        hv_cli_error(PROG, "--follow and --keep go with inbox");
        rc = EX_USAGE;
        goto out;
    }
    if (note_file && which != 1) {
        hv_cli_error(PROG, "--note-file goes with hold");
        rc = EX_USAGE;
        goto out;
    }
    hv_cli_t *cli = NULL;
    if ((rc = hv_cli_open(PROG, config, &cli)) == EX_OK) {
        switch (which) {
        case 0: rc = s_search(cli, need, json); break;
        case 1: rc = s_hold(cli, args[0], note_file, json); break;
        case 2: rc = s_holds(cli, json); break;
        case 3: rc = s_cancel(cli, args[0], json); break;
        case 4: rc = s_address(cli, args[0], json); break;
        case 5: rc = s_watch(cli, need, for_text, list, cancel, json); break;
        default: rc = s_inbox(cli, keep, follow, json); break;
        }
    }
    hv_cli_destroy(&cli);
out:
    hv_need_destroy(&need);
    return rc;
}
