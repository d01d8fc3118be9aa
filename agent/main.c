/* SPDX-License-Identifier: MIT */
/* haven-agent: run by a refuge, hostel or dispersed scheme. Publishes the
 * catalog and keeps the broker's view of each unit true. Every change goes
 * through the local outbox first (see outbox.h). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include "../proto/cli.h"
#include "../proto/names.h"
#include "../proto/wire.h"
#include "catalog.h"
#include "outbox.h"

#define PROG "haven-agent"

typedef struct {
    const char *config;
    bool json;
    const char *from;
    hv_cli_t *cli;
    agt_outbox_t *outbox;
    const char *provider;
    json_t *out;                 /* --json: the results printed at the end */
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
            "\n"
            "options:\n"
            "  --config FILE   client configuration (default $HAVEN_CONFIG)\n"
            "  --json          machine-readable output on stdout\n"
            "  --help, --version\n"
            "\n"
            "Changes are queued locally first and sent in order; if the broker cannot be\n"
            "reached they stay queued and are sent by the next command.\n");
}

/* Print what the broker said to one queued request. */
static void
s_report(s_agent_t *a, const Haven__Request *req, const Haven__Reply *rep)
{
    json_t *j = json_object();
    switch (req->body_case) {
    case HAVEN__REQUEST__BODY_PUBLISH: {
        const Haven__PublishReply *p = rep->publish;
        json_object_set_new(j, "op", json_string("publish"));
        if (p && p->ignored) {
            json_object_set_new(j, "ignored", json_true());
            if (!a->json)
                printf("catalog already published (a newer version is on the broker)\n");
        } else if (p) {
            json_object_set_new(j, "added", json_integer(p->added));
            json_object_set_new(j, "updated", json_integer(p->updated));
            json_object_set_new(j, "withdrawn", json_integer(p->withdrawn));
            if (!a->json)
                printf("catalog published: %u added, %u updated, %u withdrawn\n",
                       p->added, p->updated, p->withdrawn);
            if (!a->json && p->added)
                printf("new units start as occupied: use `haven-agent set UNIT available` "
                       "when a unit is ready\n");
        }
        break;
    }
    case HAVEN__REQUEST__BODY_UNIT_SET: {
        const Haven__UnitSet *s = req->unit_set;
        bool ignored = rep->unit_set && rep->unit_set->ignored;
        json_object_set_new(j, "op", json_string("set"));
        json_object_set_new(j, "unit", json_string(s->unit));
        json_object_set_new(j, "status", json_string(hv_unit_status_name(s->status)));
        json_object_set_new(j, "ignored", json_boolean(ignored));
        if (!a->json)
            printf("%s: %s%s\n", s->unit, hv_unit_status_name(s->status),
                   ignored ? " (ignored: a newer change was already applied)" : "");
        break;
    }
    case HAVEN__REQUEST__BODY_CONFIRM: {
        uint32_t n = rep->confirm ? rep->confirm->units : 0;
        json_object_set_new(j, "op", json_string("confirm"));
        json_object_set_new(j, "units", json_integer(n));
        if (!a->json)
            printf("confirmed %u units as accurate\n", n);
        break;
    }
    default:
        break;
    }
    json_array_append_new(a->out, j);
}

/* Send every queued request in order. Returns EX_OK when the queue is
 * empty, or the exit code that stopped it (the rest stays queued, except
 * a request the broker refused for good, which is dropped and reported). */
static int
s_flush(s_agent_t *a)
{
    int code = EX_OK;
    for (;;) {
        Haven__Request *req = NULL;
        Haven__Reply *rep = NULL;
        uint64_t seq;
        int rc = agt_outbox_peek(a->outbox, &req, &seq);
        if (rc == -ENOENT)
            break;
        if (rc < 0) {
            hv_cli_error(PROG, "cannot read the outbox: %s", strerror(-rc));
            return EX_IOERR;
        }
        rc = hv_cli_call(a->cli, req, &rep);
        if (!hv_cli_delivered(a->cli)) {
            size_t n = 0;
            agt_outbox_count(a->outbox, &n);
            hv_cli_error(PROG, "%zu change%s queued in %s; they will be sent, in order, by the "
                         "next haven-agent command once the broker can be reached",
                         n, n == 1 ? " is" : "s are", hv_cli_config(a->cli)->state_dir);
            haven__request__free_unpacked(req, NULL);
            return rc;
        }
        if (rc == EX_OK) {
            s_report(a, req, rep);
            haven__reply__free_unpacked(rep, NULL);
        } else {
            code = rc;           /* refused for good: hv_cli_call said why */
        }
        haven__request__free_unpacked(req, NULL);
        if ((rc = agt_outbox_remove(a->outbox, seq)) < 0) {
            hv_cli_error(PROG, "cannot update the outbox: %s", strerror(-rc));
            return EX_IOERR;
        }
    }
    return code;
}

static int
s_queue(s_agent_t *a, Haven__Request *req)
{
    int rc = agt_outbox_push(a->outbox, req);
    if (rc < 0) {
        hv_cli_error(PROG, "cannot queue the change in %s: %s", hv_cli_config(a->cli)->state_dir,
                     strerror(-rc));
        return EX_IOERR;
    }
    return s_flush(a);
}

static int
s_publish(s_agent_t *a)
{
    char err[512];
    agt_catalog_t *cat = NULL;
    const hv_clientcfg_t *cfg = hv_cli_config(a->cli);
    if (!cfg->catalog) {
        hv_cli_error(PROG, "the configuration has no [agent] catalog");
        return EX_CONFIG;
    }
    if (agt_catalog_load(cfg->catalog, &cat, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_DATAERR;
    }
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    pub.provider = (char *) a->provider;
    pub.service = agt_catalog_service(cat);
    pub.units = agt_catalog_units(cat, &pub.n_units);
    int rc = agt_outbox_next_version(a->outbox, &pub.version);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    /* Check it as the broker will, so a bad catalog is never queued. */
    if (rc == 0 && hv_request_validate(&req, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s: %s", cfg->catalog, err);
        agt_catalog_destroy(&cat);
        return EX_DATAERR;
    }
    rc = rc < 0 ? EX_IOERR : s_queue(a, &req);
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
    set.provider = (char *) a->provider;
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
    if (agt_outbox_next_version(a->outbox, &set.version) < 0)
        return EX_IOERR;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    return s_queue(a, &req);
}

static int
s_confirm(s_agent_t *a)
{
    Haven__Confirm c = HAVEN__CONFIRM__INIT;
    c.provider = (char *) a->provider;
    c.has_at = 1;
    c.at = (int64_t) time(NULL);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_CONFIRM;
    req.confirm = &c;
    return s_queue(a, &req);
}

static void
s_age(int64_t seconds, char *buf, size_t len)
{
    if (seconds < 0)
        snprintf(buf, len, "never");
    else if (seconds < 120)
        snprintf(buf, len, "%llds ago", (long long) seconds);
    else if (seconds < 7200)
        snprintf(buf, len, "%lldm ago", (long long) seconds / 60);
    else if (seconds < 172800)
        snprintf(buf, len, "%lldh ago", (long long) seconds / 3600);
    else
        snprintf(buf, len, "%lldd ago", (long long) seconds / 86400);
}

static int
s_status(s_agent_t *a)
{
    int code = s_flush(a);       /* send what waits first, so the view is current */
    size_t queued = 0;
    agt_outbox_count(a->outbox, &queued);
    if (code == EX_UNAVAILABLE)
        return code;
    Haven__AgentStatus st = HAVEN__AGENT_STATUS__INIT;
    st.provider = (char *) a->provider;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_STATUS;
    req.agent_status = &st;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call(a->cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__AgentStatusReply *s = rep->agent_status;
    int64_t now = (int64_t) time(NULL);
    if (a->json) {
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
        json_t *doc = json_pack("{s:s, s:s, s:o, s:I}", "provider", s->provider->id,
                                "name", s->provider->name, "units", units, "queued", (json_int_t) queued);
        json_dumpf(doc, stdout, JSON_INDENT(1));
        putchar('\n');
        json_decref(doc);
    } else {
        printf("%s (%s): %zu units\n", s->provider->name, s->provider->id, s->n_units);
        for (size_t i = 0; i < s->n_units; i++) {
            const Haven__Unit *u = s->units[i];
            char age[32];
            s_age(u->confirmed_at ? now - u->confirmed_at : -1, age, sizeof age);
            printf("  %-20s %-15s confirmed %s%s\n", u->spec->name, hv_unit_status_name(u->status),
                   age, u->stale ? "  STALE: run haven-agent confirm" : "");
        }
        if (queued)
            printf("%zu change%s still queued\n", queued, queued == 1 ? "" : "s");
    }
    haven__reply__free_unpacked(rep, NULL);
    return code;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "from", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    s_agent_t a = { 0 };
    int c;
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return hv_cli_keygen(PROG, argc - 1, argv + 1);
    while ((c = getopt_long(argc, argv, "c:jf:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a.config = optarg; break;
        case 'j': a.json = true; break;
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
    int expect = strcmp(cmd, "set") == 0 ? 2 : 0;
    if (strcmp(cmd, "publish") && strcmp(cmd, "set") && strcmp(cmd, "confirm") && strcmp(cmd, "status")) {
        hv_cli_error(PROG, "unknown command '%s' (see --help)", cmd);
        return EX_USAGE;
    }
    if (nargs != expect) {
        hv_cli_error(PROG, expect ? "usage: haven-agent set UNIT available|occupied|out-of-service [--from YYYY-MM-DD]"
                                  : "%s takes no arguments", cmd);
        return EX_USAGE;
    }
    if (a.from && strcmp(cmd, "set")) {
        hv_cli_error(PROG, "--from goes with set");
        return EX_USAGE;
    }
    int rc = hv_cli_open(PROG, a.config, &a.cli);
    if (rc != EX_OK)
        return rc;
    const hv_clientcfg_t *cfg = hv_cli_config(a.cli);
    if (!cfg->provider || !cfg->state_dir) {
        hv_cli_error(PROG, "the configuration needs [agent] provider and state_dir");
        hv_cli_destroy(&a.cli);
        return EX_CONFIG;
    }
    a.provider = cfg->provider;
    if ((rc = agt_outbox_open(cfg->state_dir, &a.outbox)) < 0) {
        hv_cli_error(PROG, "cannot open the outbox in %s: %s", cfg->state_dir, strerror(-rc));
        hv_cli_destroy(&a.cli);
        return EX_CANTCREAT;
    }
    a.out = json_array();
    if (strcmp(cmd, "publish") == 0)
        rc = s_publish(&a);
    else if (strcmp(cmd, "set") == 0)
        rc = s_set(&a, args[0], args[1]);
    else if (strcmp(cmd, "confirm") == 0)
        rc = s_confirm(&a);
    else
        rc = s_status(&a);
    if (a.json && strcmp(cmd, "status") != 0) {
        size_t queued = 0;
        agt_outbox_count(a.outbox, &queued);
        json_t *doc = json_pack("{s:O, s:I}", "results", a.out, "queued", (json_int_t) queued);
        json_dumpf(doc, stdout, JSON_INDENT(1));
        putchar('\n');
        json_decref(doc);
    }
    json_decref(a.out);
    agt_outbox_destroy(&a.outbox);
    hv_cli_destroy(&a.cli);
    return rc;
}
