/* SPDX-License-Identifier: MIT */
/* haven: the IDVA's and on-call officer's command. Search by need. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include "../proto/cli.h"
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
    if (s < 0)
        snprintf(buf, len, "never confirmed");
    else if (s < 120)
        snprintf(buf, len, "confirmed %llds ago", (long long) s);
    else if (s < 7200)
        snprintf(buf, len, "confirmed %lldm ago", (long long) s / 60);
    else if (s < 172800)
        snprintf(buf, len, "confirmed %lldh ago", (long long) s / 3600);
    else
        snprintf(buf, len, "confirmed %lldd ago", (long long) s / 86400);
}

/* "3 more would match if boys up to 15 were accepted" */
static void
s_relaxation_sentence(const Haven__Relaxation *r, const Haven__Need *n, char *buf, size_t len)
{
    unsigned oldest = 0, household = (n->has_adults ? n->adults : 1) + (unsigned) n->n_children;
    for (size_t i = 0; i < n->n_children; i++)
        if (strcmp(n->children[i]->sex, "m") == 0 && n->children[i]->age > oldest)
            oldest = n->children[i]->age;
    const char *rule = r->rule;
    unsigned m = r->matching;
    const char *more = m == 1 ? "1 more would match" : NULL;
    char head[64];
    if (!more) {
        snprintf(head, sizeof head, "%u more would match", m);
        more = head;
    }
    if (strcmp(rule, "max_boy_age") == 0)
        snprintf(buf, len, "%s if boys up to %u were accepted", more, oldest);
    else if (strcmp(rule, "stale") == 0)
        snprintf(buf, len, "%s counting units not confirmed recently (--include-stale)", more);
    else if (strcmp(rule, "available_from") == 0)
        snprintf(buf, len, "%s later: they are available from a future date (--from)", more);
    else if (strcmp(rule, "max_children") == 0)
        snprintf(buf, len, "%s if services took %zu children", more, n->n_children);
    else if (strcmp(rule, "max_occupants") == 0)
        snprintf(buf, len, "%s if units took a household of %u", more, household);
    else if (strcmp(rule, "pets") == 0)
        snprintf(buf, len, "%s if the pets were accepted", more);
    else if (strcmp(rule, "nrpf") == 0)
        snprintf(buf, len, "%s if no recourse to public funds (NRPF) were accepted", more);
    else if (strcmp(rule, "complex_needs") == 0)
        snprintf(buf, len, "%s if the complex needs were supported", more);
    else if (strcmp(rule, "self_contained") == 0)
        snprintf(buf, len, "%s if shared facilities were acceptable", more);
    else if (strcmp(rule, "kind") == 0)
        snprintf(buf, len, "%s with other kinds of accommodation", more);
    else if (strcmp(rule, "excluded_district") == 0)
        snprintf(buf, len, "%s in the excluded districts", more);
    else if (strcmp(rule, "within") == 0)
        snprintf(buf, len, "%s further than %u km away", more, n->within_km);
    else if (strcmp(rule, "gender") == 0)
        snprintf(buf, len, "%s at services for other genders", more);
    else if (strcmp(rule, "adult_age") == 0)
        snprintf(buf, len, "%s without the age limit", more);
    else {
        static const char *const access[][2] = {
            { "wheelchair", "wheelchair access" }, { "step_free", "step-free access" },
            { "ground_floor", "a ground floor" }, { "accessible_bathroom", "an accessible bathroom" },
            { "sensory", "sensory adaptations" }, { "personal_care", "personal care" },
            { "carer_room", "a room for a carer" },
        };
        const char *what = rule;
        for (size_t i = 0; i < sizeof access / sizeof access[0]; i++)
            if (strcmp(rule, access[i][0]) == 0)
                what = access[i][1];
        snprintf(buf, len, "%s if %s were not needed", more, what);
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
    char err[256];
    if (hv_request_validate(&req, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_USAGE;
    }
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call(cli, &req, &rep);
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
        json_dumpf(doc, stdout, JSON_INDENT(1));
        putchar('\n');
        json_decref(doc);
    } else {
        s_print_offers(s, search.need);
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

int
main(int argc, char **argv)
{
    enum { O_CONFIG = 1, O_JSON, O_HELP, O_VERSION };
    struct option opts[64];
    const struct option *need_opts = hv_need_options();
    size_t n = 0;
    opts[n++] = (struct option) { "config", required_argument, NULL, O_CONFIG };
    opts[n++] = (struct option) { "json", no_argument, NULL, O_JSON };
    opts[n++] = (struct option) { "help", no_argument, NULL, O_HELP };
    opts[n++] = (struct option) { "version", no_argument, NULL, O_VERSION };
    for (size_t i = 0; need_opts[i].name && n < 63; i++)
        opts[n++] = need_opts[i];
    opts[n] = (struct option) { NULL, 0, NULL, 0 };

    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return hv_cli_keygen(PROG, argc - 1, argv + 1);

    const char *config = NULL;
    bool json = false;
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
        } else if (c == O_HELP) {
            s_usage(stdout);
            goto out;
        } else if (c == O_VERSION) {
            printf("haven %s\n", HAVEN_VERSION);
            goto out;
        } else if (c >= HV_NEED_OPT_BASE) {
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
    if (strcmp(cmd, "search") != 0) {
        hv_cli_error(PROG, "unknown command '%s' (see --help)", cmd);
        rc = EX_USAGE;
        goto out;
    }
    if (optind + 1 != argc) {
        hv_cli_error(PROG, "search takes options only, not '%s'", argv[optind + 1]);
        rc = EX_USAGE;
        goto out;
    }
    hv_cli_t *cli = NULL;
    if ((rc = hv_cli_open(PROG, config, &cli)) == EX_OK)
        rc = s_search(cli, need, json);
    hv_cli_destroy(&cli);
out:
    hv_need_destroy(&need);
    return rc;
}
