/* SPDX-License-Identifier: MIT */
/* haven-agent: run by a refuge, hostel or dispersed scheme. Publishes the
 * catalog and keeps the broker's view of each unit true. Every change goes
 * through the local outbox first (see outbox.h). */
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <signal.h>
#include <sodium.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include "../common/cert.h"
#include "../common/cli.h"
#include "../proto/names.h"
#include "../proto/wire.h"
#include "catalog.h"
#include "flush.h"
#include "outbox.h"

#define PROG "haven-agent"

typedef struct {
    agt_session_t s;             /* connection, outbox, provider, --json output */
    const char *config;
    const char *from;
    const char *reason;
    const char *message;
    const hv_trust_t *trust;     /* [broker] admin_keys, NULL if none */
} s_agent_t;

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: haven-agent [--config FILE] [--json] COMMAND\n"
            "\n"
            "commands:\n"
            "  keygen --out PATH            make this agent's key pair (PATH.key, PATH.pub)\n"
            "  publish                      send the catalog: add, update and withdraw units\n"
            "  set UNIT STATUS [--from YYYY-MM-DD]\n"
            "                               STATUS is available, occupied or out-of-service\n"
            "  confirm                      every unit's status is still accurate\n"
            "  status                       what the broker holds, and what is still queued\n"
            "  referrals                    pending referrals, with their notes\n"
            "  accept HOLD                  accept: the unit's address is sealed to the IDVA\n"
            "  decline HOLD --reason R [--message TEXT]\n"
            "                               R: capacity, boys-age, nrpf, complex-needs, risk,\n"
            "                               location, pets, access, other; the message is\n"
            "                               sealed to the IDVA\n"
            "  run                          stay connected: send queued changes and show each\n"
            "                               new referral as it arrives (until SIGTERM)\n"
            "\n"
            "options:\n"
            "  --config FILE   client configuration (default $HAVEN_CONFIG)\n"
            "  --json          machine-readable output on stdout\n"
            "  --help, --version\n"
            "\n"
            "Changes are queued locally first and sent in order; if the broker cannot be\n"
            "reached, or does not apply one, it stays queued and is sent by the next command.\n"
            "Every command first checks that the broker has everything it applied from this\n"
            "agent (it may have been restored from a backup), and sends it again if not.\n");
}

/* A version for a change staff just made; EX_OK, or EX_IOERR said. */
static int
s_next_version(s_agent_t *a, uint64_t *version_out)
{
    int rc = agt_outbox_next_version(a->s.outbox, version_out);
    if (rc < 0) {
        hv_cli_error(PROG, "cannot number the change in the outbox in %s: %s; nothing was queued or sent",
                     hv_cli_config(a->s.cli)->state_dir, strerror(-rc));
        return EX_IOERR;
    }
    return EX_OK;
}

static int
s_publish(s_agent_t *a)
{
    char err[512];
    agt_catalog_t *cat = NULL;
    const hv_clientcfg_t *cfg = hv_cli_config(a->s.cli);
    if (!cfg->catalog) {
        hv_cli_error(PROG, "the configuration has no [agent] catalog");
        return EX_CONFIG;
    }
    if (agt_catalog_load(cfg->catalog, &cat, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_DATAERR;
    }
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    pub.provider = (char *) a->s.provider;
    pub.service = agt_catalog_service(cat);
    pub.units = agt_catalog_units(cat, &pub.n_units);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    /* Check it as the broker will, so a bad catalog is never queued. */
    if (hv_request_validate(&req, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s: %s", cfg->catalog, err);
        agt_catalog_destroy(&cat);
        return EX_DATAERR;
    }
    int rc = s_next_version(a, &pub.version);
    if (rc == EX_OK)
        rc = agt_queue(&a->s, &req);
    agt_catalog_destroy(&cat);
    return rc;
}

static int
s_parse_date(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (!end || *end)
        return -EINVAL;
    *out = (int64_t) timegm(&tm);
    return 0;
}

static int
s_set(s_agent_t *a, const char *unit, const char *status)
{
    int st = hv_unit_status_parse(status);
    if (st != HAVEN__UNIT_STATUS__UNIT_AVAILABLE && st != HAVEN__UNIT_STATUS__UNIT_OCCUPIED
        && st != HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE) {
        hv_cli_error(PROG, "status must be available, occupied or out-of-service, not '%s'", status);
        return EX_USAGE;
    }
    if (!hv_valid_id(unit)) {
        hv_cli_error(PROG, "'%s' is not a unit name", unit);
        return EX_USAGE;
    }
    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    set.provider = (char *) a->s.provider;
    set.unit = (char *) unit;
    set.status = st;
    set.has_at = 1;
    set.at = (int64_t) time(NULL);
    if (a->from) {
        set.has_available_from = 1;
        if (s_parse_date(a->from, &set.available_from) < 0) {
            hv_cli_error(PROG, "--from must be a date as YYYY-MM-DD, not '%s'", a->from);
            return EX_USAGE;
        }
    }
    if (s_next_version(a, &set.version) != EX_OK)
        return EX_IOERR;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    return agt_queue(&a->s, &req);
}

static int
s_confirm(s_agent_t *a)
{
    Haven__Confirm c = HAVEN__CONFIRM__INIT;
    c.provider = (char *) a->s.provider;
    c.has_at = 1;
    c.at = (int64_t) time(NULL);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_CONFIRM;
    req.confirm = &c;
    return agt_queue(&a->s, &req);
}

static void
s_print_queued(void *arg, uint64_t seq, const Haven__Request *req)
{
    char what[160];
    (void) arg;
    agt_describe(req, what, sizeof what);
    printf("  queued #%llu: %s\n", (unsigned long long) seq, what);
}

/* What waits in the outbox, oldest first; EX_IOERR (said) if unreadable. */
static int
s_queued(s_agent_t *a, size_t *count_out)
{
    int rc = agt_outbox_count(a->s.outbox, count_out);
    if (rc < 0) {
        hv_cli_error(PROG, "cannot read the outbox in %s: %s", hv_cli_config(a->s.cli)->state_dir,
                     strerror(-rc));
        return EX_IOERR;
    }
    return EX_OK;
}

static void
s_list_queued(s_agent_t *a)
{
    int rc = agt_outbox_each(a->s.outbox, 50, s_print_queued, NULL);
    if (rc < 0)
        hv_cli_error(PROG, "cannot list the outbox in %s: %s", hv_cli_config(a->s.cli)->state_dir,
                     strerror(-rc));
}

static int
s_status(s_agent_t *a)
{
    int code = agt_flush(&a->s);       /* send what waits first, so the view is current */
    size_t queued = 0;
    if (s_queued(a, &queued) != EX_OK)
        return EX_IOERR;
    if (code == EX_UNAVAILABLE) {
        /* the broker is away: say plainly what is still to be sent */
        if (!a->s.json && queued) {
            printf("waiting to be sent (oldest first):\n");
            s_list_queued(a);
        }
        return code;
    }
    Haven__AgentStatus st = HAVEN__AGENT_STATUS__INIT;
    st.provider = (char *) a->s.provider;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_STATUS;
    req.agent_status = &st;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call(a->s.cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__AgentStatusReply *s = rep->agent_status;
    int64_t now = (int64_t) time(NULL);
    /* the resync above failed: say why every unit is stale */
    bool unsynced = s->provider->unsynced;
    if (a->s.json) {
        json_t *units = json_array();
        for (size_t i = 0; i < s->n_units; i++) {
            const Haven__Unit *u = s->units[i];
            json_t *j = json_pack("{s:s, s:s, s:b}", "unit", u->spec->name,
                                  "status", hv_unit_status_name(u->status), "stale", u->stale);
            json_object_set_new(j, "confirmed_age_s",
                                u->confirmed_at ? json_integer(now - u->confirmed_at) : json_null());
            if (u->available_from > now)
                json_object_set_new(j, "available_from", json_integer(u->available_from));
            json_array_append_new(units, j);
        }
        json_t *doc = json_pack("{s:s, s:s, s:o, s:I, s:b}", "provider", s->provider->id,
                                "name", s->provider->name, "units", units, "queued", (json_int_t) queued,
                                "unsynced", unsynced);
        hv_json_print(doc);
    } else {
        printf("%s (%s): %zu units\n", s->provider->name, s->provider->id, s->n_units);
        if (unsynced)
            printf("the broker was restored from a backup and this agent has not yet brought it up to date: "
                   "every unit counts as stale and is not offered until it has (see the messages above)\n");
        for (size_t i = 0; i < s->n_units; i++) {
            const Haven__Unit *u = s->units[i];
            char age[32];
            hv_format_age(u->confirmed_at ? now - u->confirmed_at : -1, age, sizeof age);
            printf("  %-20s %-15s confirmed %s%s\n", u->spec->name, hv_unit_status_name(u->status),
                   age, !u->stale ? "" : unsynced ? "  STALE until this agent resyncs" : "  STALE: run haven-agent confirm");
        }
        if (queued) {
            printf("%zu change%s still queued:\n", queued, queued == 1 ? "" : "s");
            s_list_queued(a);
        }
    }
    haven__reply__free_unpacked(rep, NULL);
    return code;
}

/* The provider's pending referrals, or only the one with id hold (in
 * whatever state it is). Caller frees *rep_out. */
static int
s_fetch_referrals(s_agent_t *a, const char *hold, Haven__Reply **rep_out)
{
    Haven__Referrals ref = HAVEN__REFERRALS__INIT;
    ref.provider = (char *) a->s.provider;
    ref.hold = (char *) hold;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_REFERRALS;
    req.referrals = &ref;
    return hv_cli_call_for(a->s.cli, &req, HAVEN__REPLY__BODY_HOLDS, rep_out);
}

static const Haven__Hold *
s_find_hold(const Haven__Reply *rep, const char *id)
{
    for (size_t i = 0; i < rep->holds->n_holds; i++)
        if (strcmp(rep->holds->holds[i]->id, id) == 0)
            return rep->holds->holds[i];
    return NULL;
}

/* A referral's note, only if the IDVA who holds the unit is certified by
 * an administrator we trust and signed the note for this very hold.
 * Returns the plaintext (wipe and free it), or NULL with why set. */
static char *
s_open_note(s_agent_t *a, const Haven__Hold *h, char *why, size_t len)
{
    const hv_trust_t *trust = a->trust;
    const Haven__Sealed *mine = NULL;
    Haven__Certificate *holder = NULL;
    for (size_t i = 0; i < h->n_notes && !mine; i++)
        if (h->notes[i]->recipient.len == 32
            && memcmp(h->notes[i]->recipient.data, hv_keys_seal_public(hv_cli_keys(a->s.cli)), 32) == 0)
            mine = h->notes[i];
    if (!mine) {
        snprintf(why, len, "sealed to another of your agents' keys");
        return NULL;
    }
    if (!trust) {
        snprintf(why, len, "the configuration has no [broker] admin_keys, so the sender cannot be checked");
        return NULL;
    }
    if (strcmp(h->provider, a->s.provider) != 0) {
        snprintf(why, len, "it is a referral to %s, not to %s", h->provider, a->s.provider);
        return NULL;
    }
    if (hv_cert_holder(trust, h, (int64_t) time(NULL), &holder, why, len) < 0)
        return NULL;
    hv_box_context_t ctx = { "note", h->id, h->provider, h->unit };
    int ok = hv_box_verify(mine, holder->sign_key.data, &ctx) == 0;
    haven__certificate__free_unpacked(holder, NULL);
    if (!ok) {
        snprintf(why, len, "it is not signed by %s for this referral", h->idva ? h->idva : "the IDVA");
        return NULL;
    }
    char *note = hv_unseal(hv_cli_keys(a->s.cli), mine);
    if (!note)
        snprintf(why, len, "it cannot be opened with this agent's key");
    return note;
}

static void
s_print_referral(s_agent_t *a, const Haven__Hold *h, json_t *arr)
{
    char need[512], until[32];
    time_t t = (time_t) h->expires_at;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(until, sizeof until, "%Y-%m-%d %H:%M", &tm);
    hv_need_format(h->need, need, sizeof need);
    char why[512] = "";
    char *note = h->n_notes ? s_open_note(a, h, why, sizeof why) : NULL;
    if (arr) {
        json_t *j = json_pack("{s:s, s:s, s:s?, s:s, s:I}", "hold", h->id, "unit", h->unit,
                              "idva", h->idva, "need", need, "expires_at", (json_int_t) h->expires_at);
        if (note)
            json_object_set_new(j, "note", json_string(note));
        json_array_append_new(arr, j);
    } else {
        printf("referral %s for %s, from %s, answer by %s\n", h->id, h->unit, h->idva ? h->idva : "?", until);
        printf("    need: %s\n", need);
        if (note) {
            /* indent the note's own lines under the heading */
            printf("    note: ");
            for (const char *c = note; *c; c++) {
                putchar(*c);
                if (*c == '\n' && c[1])
                    printf("          ");
            }
            if (note[0] && note[strlen(note) - 1] != '\n')
                putchar('\n');
        }
        else if (h->n_notes)
            printf("    note: (withheld: %s)\n", why);
        printf("    answer: haven-agent accept %s   or   haven-agent decline %s --reason ...\n", h->id, h->id);
    }
    if (note) {
        sodium_memzero(note, strlen(note));
        free(note);
    }
    fflush(stdout);
}

static int
s_referrals(s_agent_t *a)
{
    Haven__Reply *rep = NULL;
    /* every contact sends what waits, and first brings the broker up to
     * date if it is behind (a referral may be for a unit it had wrong) */
    int rc = agt_flush(&a->s);
    if (!hv_cli_delivered(a->s.cli))
        return rc;
    if ((rc = s_fetch_referrals(a, NULL, &rep)) != EX_OK)
        return rc;
    json_t *arr = a->s.json ? json_array() : NULL;
    if (!a->s.json && rep->holds->n_holds == 0)
        printf("No pending referrals.\n");
    for (size_t i = 0; i < rep->holds->n_holds; i++)
        s_print_referral(a, rep->holds->holds[i], arr);
    if (arr) {
        json_t *doc = json_pack("{s:o}", "referrals", arr);
        hv_json_print(doc);
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_answer(s_agent_t *a, const char *id, bool accept)
{
    char err[512];
    Haven__Reply *rep = NULL;
    agt_catalog_t *cat = NULL;
    Haven__Sealed box = HAVEN__SEALED__INIT;
    bool sealed = false;
    int reason = 0, rc;
    if (!accept) {
        reason = a->reason ? hv_decline_reason_parse(a->reason) : -1;
        if (reason <= 0) {
            hv_cli_error(PROG, "decline needs --reason capacity|boys-age|nrpf|complex-needs|risk|location|"
                         "pets|access|other");
            return EX_USAGE;
        }
        if (a->message && strlen(a->message) > HV_ADDRESS_MAX) {
            hv_cli_error(PROG, "--message is longer than %d bytes", HV_ADDRESS_MAX);
            return EX_USAGE;
        }
    }
    /* Send what waits first: the answer must follow the changes before it. */
    if ((rc = agt_flush(&a->s)) == EX_UNAVAILABLE || !hv_cli_delivered(a->s.cli))
        return rc;
    if ((rc = s_fetch_referrals(a, id, &rep)) != EX_OK)
        return rc;               /* the broker said why (no such referral of ours) */
    const Haven__Hold *h = s_find_hold(rep, id);
    if (!h) {
        hv_cli_error(PROG, "no referral %s for %s (see haven-agent referrals)", id, a->s.provider);
        haven__reply__free_unpacked(rep, NULL);
        return EX_DATAERR;
    }
    if (h->state != HAVEN__HOLD_STATE__HOLD_PENDING) {
        /* Say what became of it: nothing is sent for a referral that is over. */
        if (h->state == HAVEN__HOLD_STATE__HOLD_WITHDRAWN)
            hv_cli_error(PROG, "referral %s was withdrawn: %s's key was revoked, so nothing may be sent "
                         "to it; %s is offered again", id, h->idva ? h->idva : "the IDVA", h->unit);
        else
            hv_cli_error(PROG, "referral %s is %s; there is nothing to answer", id,
                         hv_hold_state_name(h->state));
        haven__reply__free_unpacked(rep, NULL);
        return EX_TEMPFAIL;
    }
    if (h->idva_seal_key.len != 32) {
        hv_cli_error(PROG, "referral %s has no key to seal to", id);
        haven__reply__free_unpacked(rep, NULL);
        return EX_DATAERR;
    }
    /* Before anything goes to the IDVA: the key must be certified by an
     * administrator we trust as that IDVA's, and the IDVA must have asked
     * for this very hold. The broker's word alone is not enough. */
    if (strcmp(h->provider, a->s.provider) != 0) {
        hv_cli_error(PROG, "referral %s is to %s, not to %s: nothing was sent", id, h->provider, a->s.provider);
        haven__reply__free_unpacked(rep, NULL);
        return EX_DATAERR;
    }
    if (accept || a->message) {
        const hv_trust_t *trust = hv_cli_trust(a->s.cli);
        Haven__Certificate *holder = NULL;
        if (!trust) {
            haven__reply__free_unpacked(rep, NULL);
            return EX_CONFIG;
        }
        if (hv_cert_holder(trust, h, (int64_t) time(NULL), &holder, err, sizeof err) < 0) {
            hv_cli_error(PROG, "refusing to send the %s for referral %s: %s. Nothing was sent; decline it, "
                         "or ask your Haven administrator", accept ? "address" : "message", id, err);
            haven__reply__free_unpacked(rep, NULL);
            return EX_NOPERM;
        }
        haven__certificate__free_unpacked(holder, NULL);
    }
    if (accept) {
        const hv_clientcfg_t *cfg = hv_cli_config(a->s.cli);
        if (!cfg->catalog || agt_catalog_load(cfg->catalog, &cat, err, sizeof err) < 0) {
            hv_cli_error(PROG, "%s", cfg->catalog ? err : "the configuration has no [agent] catalog");
            haven__reply__free_unpacked(rep, NULL);
            return EX_DATAERR;
        }
        const char *address = agt_catalog_address(cat, h->unit);
        if (!address) {
            hv_cli_error(PROG, "the catalog has no address for %s; add `address = ...` to [unit %s] "
                         "and accept again", h->unit, h->unit);
            agt_catalog_destroy(&cat);
            haven__reply__free_unpacked(rep, NULL);
            return EX_DATAERR;
        }
        rc = hv_seal(address, strlen(address), h->idva_seal_key.data, &box);
        agt_catalog_destroy(&cat);       /* wipes the addresses */
    } else if (a->message) {
        rc = hv_seal(a->message, strlen(a->message), h->idva_seal_key.data, &box);
    } else {
        rc = 0;
    }
    /* Signed for this hold, so the IDVA can tell it came from this provider's
     * agent and was not moved from another referral. */
    hv_box_context_t ctx = { accept ? "address" : "message", id, h->provider, h->unit };
    if (rc == 0 && (accept || a->message) && (rc = hv_box_sign(hv_cli_keys(a->s.cli), &ctx, &box)) < 0) {
        free(box.recipient.data);
        free(box.box.data);
        hv_cli_error(PROG, "cannot sign the %s; nothing was sent", accept ? "address" : "message");
        haven__reply__free_unpacked(rep, NULL);
        return EX_SOFTWARE;
    }
    /* An accept without its address, or a box that is not one, must never
     * be queued: the IDVA would wait for an address that cannot come, or
     * anyone could read it. */
    if (rc == -ENOMEM) {
        hv_cli_error(PROG, "out of memory sealing the %s; nothing was sent", accept ? "address" : "message");
        haven__reply__free_unpacked(rep, NULL);
        return EX_OSERR;
    }
    if (rc < 0) {
        hv_cli_error(PROG, "cannot seal the %s to hold %s's IDVA key: the key is unusable; nothing was "
                     "sent. %s or ask your Haven administrator", accept ? "address" : "message", id,
                     accept ? "Decline the referral" : "Decline without --message");
        haven__reply__free_unpacked(rep, NULL);
        return EX_DATAERR;
    }
    sealed = accept || a->message != NULL;
    haven__reply__free_unpacked(rep, NULL);

    Haven__Request req = HAVEN__REQUEST__INIT;
    Haven__Accept acc = HAVEN__ACCEPT__INIT;
    Haven__Decline dec = HAVEN__DECLINE__INIT;
    uint64_t version;
    if ((rc = s_next_version(a, &version)) != EX_OK)
        goto out;
    if (accept) {
        acc.provider = (char *) a->s.provider;
        acc.hold = (char *) id;
        acc.address = &box;
        acc.version = version;
        req.body_case = HAVEN__REQUEST__BODY_ACCEPT;
        req.accept = &acc;
    } else {
        dec.provider = (char *) a->s.provider;
        dec.hold = (char *) id;
        dec.reason = reason;
        dec.message = sealed ? &box : NULL;
        dec.version = version;
        req.body_case = HAVEN__REQUEST__BODY_DECLINE;
        req.decline = &dec;
    }
    rc = agt_queue(&a->s, &req);
out:
    if (sealed) {
        free(box.recipient.data);
        free(box.box.data);
        free(box.signature.data);
        free(box.signer.data);
    }
    return rc;
}

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

/* Stay connected: send what is queued, subscribe for pushes, and show each
 * referral once. Re-subscribes every 30 s, so a broker restart or a
 * reconnection costs at most that long; a push arrives at once. */
static int
s_run(s_agent_t *a)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    time_t last_subscribe = 0, last_flush = 0;
    fprintf(stderr, "haven-agent: running for %s; waiting for referrals (Ctrl-C to stop)\n", a->s.provider);
    while (!s_stop) {
        bool refresh = false;
        size_t queued = 0;
        if (agt_outbox_count(a->s.outbox, &queued) == 0 && queued && time(NULL) - last_flush >= 2) {
            agt_flush(&a->s);          /* keep trying what waits, every few seconds */
            last_flush = time(NULL);
        }
        json_array_clear(a->s.out);    /* results are for one-shot --json; run says each as it goes */
        if (time(NULL) - last_subscribe >= 30) {
            /* also the authority check: a broker restored meanwhile is
             * brought up to date at the latest here */
            agt_flush(&a->s);
            Haven__Subscribe sub = HAVEN__SUBSCRIBE__INIT;
            Haven__Request req = HAVEN__REQUEST__INIT;
            req.body_case = HAVEN__REQUEST__BODY_SUBSCRIBE;
            req.subscribe = &sub;
            Haven__Reply *rep = NULL;
            if (hv_cli_call(a->s.cli, &req, &rep) == EX_OK) {
                haven__reply__free_unpacked(rep, NULL);
                last_subscribe = time(NULL);
                refresh = true;  /* whatever arrived while we were away */
            } else {
                last_subscribe = time(NULL) - 25;   /* try again in 5 s */
            }
        }
        Haven__Reply *note = NULL;
        if (!refresh && hv_conn_wait_notify(hv_cli_conn(a->s.cli), 1000, &note) == 0) {
            const Haven__Notify *n = note->notify;
            if (n && n->event && n->hold && strcmp(n->event, "withdrawn") == 0) {
                /* staff may be reading it: say at once that it is over */
                if (a->s.json) {
                    json_t *j = json_pack("{s:s}", "withdrawn", n->hold);
                    json_dumpf(j, stdout, JSON_COMPACT);
                    putchar('\n');
                    json_decref(j);
                } else
                    printf("referral %s was withdrawn: the IDVA's key was revoked; do not answer it, "
                           "the unit is offered again\n", n->hold);
                fflush(stdout);
            }
            haven__reply__free_unpacked(note, NULL);
            refresh = true;
        }
        if (!refresh)
            continue;
        Haven__Reply *rep = NULL;
        if (s_fetch_referrals(a, NULL, &rep) != EX_OK)
            continue;
        for (size_t i = 0; i < rep->holds->n_holds; i++) {
            const Haven__Hold *h = rep->holds->holds[i];
            if (g_hash_table_contains(seen, h->id))
                continue;
            g_hash_table_add(seen, g_strdup(h->id));
            if (a->s.json) {
                json_t *arr = json_array();
                s_print_referral(a, h, arr);
                json_dumpf(json_array_get(arr, 0), stdout, JSON_COMPACT);
                putchar('\n');
                fflush(stdout);
                json_decref(arr);
            } else {
                s_print_referral(a, h, NULL);
            }
        }
        haven__reply__free_unpacked(rep, NULL);
    }
    g_hash_table_destroy(seen);
    return EX_OK;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "from", required_argument, NULL, 'f' },
        { "reason", required_argument, NULL, 'r' },
        { "message", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    s_agent_t a = { 0 };
    int c;
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return hv_cli_keygen(PROG, argc - 1, argv + 1);
    while ((c = getopt_long(argc, argv, "c:jf:r:m:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'r': a.reason = optarg; break;
        case 'm': a.message = optarg; break;
        case 'c': a.config = optarg; break;
        case 'j': a.s.json = true; break;
        case 'f': a.from = optarg; break;
        case 'h': s_usage(stdout); return EX_OK;
        case 'V': printf("haven-agent %s\n", HAVEN_VERSION); return EX_OK;
        default: s_usage(stderr); return EX_USAGE;
        }
    }
    if (optind >= argc) {
        s_usage(stderr);
        return EX_USAGE;
    }
    const char *cmd = argv[optind++];
    int nargs = argc - optind;
    char **args = argv + optind;
    static const struct { const char *name; int args; const char *usage; } cmds[] = {
        { "publish", 0, "publish" }, { "confirm", 0, "confirm" }, { "status", 0, "status" },
        { "referrals", 0, "referrals" }, { "run", 0, "run" },
        { "set", 2, "set UNIT available|occupied|out-of-service [--from YYYY-MM-DD]" },
        { "accept", 1, "accept HOLD" }, { "decline", 1, "decline HOLD --reason R [--message TEXT]" },
    };
    int which = -1;
    for (int i = 0; i < (int) (sizeof cmds / sizeof cmds[0]); i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            which = i;
    if (which < 0) {
        hv_cli_error(PROG, "unknown command '%s' (see --help)", cmd);
        return EX_USAGE;
    }
    if (nargs != cmds[which].args) {
        hv_cli_error(PROG, "usage: haven-agent %s", cmds[which].usage);
        return EX_USAGE;
    }
    if ((a.reason || a.message) && strcmp(cmd, "decline")) {
        hv_cli_error(PROG, "--reason and --message go with decline");
        return EX_USAGE;
    }
    if (a.from && strcmp(cmd, "set")) {
        hv_cli_error(PROG, "--from goes with set");
        return EX_USAGE;
    }
    int rc = hv_cli_open(PROG, a.config, &a.s.cli);
    if (rc != EX_OK)
        return rc;
    const hv_clientcfg_t *cfg = hv_cli_config(a.s.cli);
    if (!cfg->provider || !cfg->state_dir) {
        hv_cli_error(PROG, "the configuration needs [agent] provider and state_dir");
        hv_cli_destroy(&a.s.cli);
        return EX_CONFIG;
    }
    a.s.provider = cfg->provider;
    if (strcmp(cmd, "referrals") == 0 || strcmp(cmd, "run") == 0) {
        /* notes are shown only from IDVAs our administrators certified */
        if (!(a.trust = hv_cli_trust(a.s.cli))) {
            hv_cli_destroy(&a.s.cli);
            return EX_CONFIG;
        }
    }
    if ((rc = agt_outbox_open(cfg->state_dir, &a.s.outbox)) < 0) {
        hv_cli_error(PROG, "cannot open the outbox in %s: %s", cfg->state_dir, strerror(-rc));
        hv_cli_destroy(&a.s.cli);
        return EX_CANTCREAT;
    }
    a.s.out = json_array();
    if (strcmp(cmd, "publish") == 0)
        rc = s_publish(&a);
    else if (strcmp(cmd, "set") == 0)
        rc = s_set(&a, args[0], args[1]);
    else if (strcmp(cmd, "confirm") == 0)
        rc = s_confirm(&a);
    else if (strcmp(cmd, "referrals") == 0)
        rc = s_referrals(&a);
    else if (strcmp(cmd, "accept") == 0)
        rc = s_answer(&a, args[0], true);
    else if (strcmp(cmd, "decline") == 0)
        rc = s_answer(&a, args[0], false);
    else if (strcmp(cmd, "run") == 0)
        rc = s_run(&a);
    else
        rc = s_status(&a);
    if (a.s.json && strcmp(cmd, "status") && strcmp(cmd, "referrals") && strcmp(cmd, "run")) {
        size_t queued = 0;
        if (s_queued(&a, &queued) != EX_OK && rc == EX_OK)
            rc = EX_IOERR;
        json_t *doc = json_pack("{s:O, s:I}", "results", a.s.out, "queued", (json_int_t) queued);
        hv_json_print(doc);
    }
    json_decref(a.s.out);
    agt_outbox_destroy(&a.s.outbox);
    hv_cli_destroy(&a.s.cli);
    return rc;
}
