/* SPDX-License-Identifier: MIT */
/* Out-of-hours and oversight through the real programs: watches and the
 * inbox, the on-call view, emergency units, the alert hook, the audit
 * log's hash chain, and the reports. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../../broker/store.h"
#include "haven.pb-c.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512], boys12[512];

static const char teen_ok[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 16\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\naddress = 1 Road\n[unit room-2]\nmax_occupants = 3\naddress = 2 Road\n";
static const char teen_no[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 12\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\n";

static void
s_world(const char *extra)
{
    hh_start(&h, extra);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", teen_ok, agent, sizeof agent);
    hh_provider(&h, "refuge-b", "refuge", "E07000008", teen_no, boys12, sizeof boys12);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", boys12, "publish", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
}

static void setup(void) { s_world(NULL); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(oversight, .init = setup, .fini = teardown, .timeout = 300);


static double
s_ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

Test(oversight, a_watch_fires_at_once_for_a_match_and_not_otherwise)
{
    char line[4096];
    int fd;
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--child", "14:m", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);
    pid_t follow = hh_spawn(&h, &fd, "haven", "--config", idva, "--json", "inbox", "--follow", NULL);
    /* Something the follower must print first, to know it is subscribed:
     * a unit the watch matches before it starts is in the inbox already. */
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-2", "available", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(hh_read_line(fd, line, sizeof line, 10000), "no first alert");
    cr_assert(strstr(line, "room-2"), "%s", line);

    /* Not for a unit that does not fit (boys only to 12)... */
    hh_run(&h, &r, "haven-agent", "--config", boys12, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0);
    /* ...and at once for one that does. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(hh_read_line(fd, line, sizeof line, 10000), "no alert for the match");
    double ms = s_ms_since(&t0);
    cr_assert(strstr(line, "\"provider_id\":\"refuge-a\"") && strstr(line, "room-1"),
              "the first alert after the non-match must be the match: %s", line);
    cr_assert_lt(ms, 1000.0, "took %.0f ms", ms);
    kill(follow, SIGTERM);
    waitpid(follow, NULL, 0);
    close(fd);
}

Test(oversight, alerts_wait_in_the_inbox_with_a_fresh_offer)
{
    hh_run(&h, &r, "haven", "--config", idva, "--json", "watch", "--gender", "woman", "--for", "2h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r);
    json_t *alerts = json_object_get(doc, "alerts");
    cr_assert_eq(json_array_size(alerts), 1, "%s", r.out);
    char offer[1024];
    snprintf(offer, sizeof offer, "%s", json_string_value(json_object_get(json_array_get(alerts, 0), "offer")));
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "hold", offer, NULL);
    cr_assert_eq(r.code, 0, "the alert's offer holds the unit: %s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert(strstr(r.out, "\"alerts\": []"), "read alerts are cleared: %s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--list", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "woman"), "%s", r.out);
}

/* Back-date a unit's confirmation in a stopped broker's store. */
static void
s_backdate(const char *provider, const char *unit, int64_t seconds)
{
    char path[512], key[160];
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    Haven__Unit *u = NULL;
    snprintf(path, sizeof path, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(path, 1 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    int klen = brk_unit_key(provider, unit, key, sizeof key);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &haven__unit__descriptor,
                                   (ProtobufCMessage **) &u), 0);
    u->has_confirmed_at = 1;
    u->confirmed_at = (int64_t) time(NULL) - seconds;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &u->base), 0);
    haven__unit__free_unpacked(u, NULL);
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);
}

Test(oversight, a_confirmation_that_makes_a_stale_unit_fresh_fires_a_watch)
{
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_stop(&h);
    s_backdate("refuge-a", "room-1", 3 * 86400);     /* confirm_every is 24h */
    hh_restart(&h);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--gender", "woman", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"matching\": 0"), "a stale unit is not offered: %s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", "--keep", NULL);
    cr_assert(strstr(r.out, "\"alerts\": []"), "nothing matches yet: %s", r.out);
    /* staff confirm: room-1 is fresh, and newly matches the watch */
    hh_run(&h, &r, "haven-agent", "--config", agent, "confirm", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "room-1"), "the confirmation made room-1 match: %s", r.out);
    /* confirming again changes nothing it matches: no second alert */
    hh_run(&h, &r, "haven-agent", "--config", agent, "confirm", NULL);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert(strstr(r.out, "\"alerts\": []"), "%s", r.out);
}

Test(oversight, on_call_sees_its_region_and_emergency_units)
{
    char east[512], london[512], emergency[512], token[1024];
    hh_principal(&h, "oncall", "oncall-east", NULL, east, sizeof east);
    /* hh_principal registers without a region: add a regional one by hand */
    char pub[512];
    hh_unregistered(&h, "oncall-e", east, sizeof east);
    snprintf(pub, sizeof pub, "%s/oncall-e.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "oncall", "--name",
           "oncall-e", "--public-key", pub, "--region", "East of England", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_unregistered(&h, "oncall-l", london, sizeof london);
    snprintf(pub, sizeof pub, "%s/oncall-l.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "oncall", "--name",
           "oncall-l", "--public-key", pub, "--region", "London", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);

    /* An IDVA's hold in Cambridge (East of England). */
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    json_t *doc = hh_json(&r);
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(doc, "offers"), 0), "offer")));
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "hold", token, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", east, "holds", NULL);
    cr_assert(strstr(r.out, "room-1") && strstr(r.out, "pending"), "East sees it: %s", r.out);
    hh_run(&h, &r, "haven", "--config", london, "holds", NULL);
    cr_assert(!strstr(r.out, "room-1"), "London does not: %s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--near", "E07000008", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", east, "watch", "--list", NULL);
    cr_assert(strstr(r.out, "idva-1"), "East sees the region's watch: %s", r.out);
    hh_run(&h, &r, "haven", "--config", london, "watch", "--list", NULL);
    cr_assert(!strstr(r.out, "idva-1"), "London does not: %s", r.out);

    /* Emergency units: on-call only. */
    hh_provider(&h, "night-unit", "emergency", "E07000008",
                "[service]\ngenders = any\nchildren = yes\n[unit bed-1]\nmax_occupants = 4\n", emergency,
                sizeof emergency);
    hh_run(&h, &r, "haven-agent", "--config", emergency, "publish", NULL);
    hh_run(&h, &r, "haven-agent", "--config", emergency, "set", "bed-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert(!strstr(r.out, "night-unit"), "an IDVA sees an emergency unit: %s", r.out);
    hh_run(&h, &r, "haven", "--config", east, "--json", "search", "--kind", "emergency", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "night-unit"), "on-call sees it: %s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "search", "--kind", "emergency", NULL);
    cr_assert_eq(r.code, 77, "%d %s", r.code, r.err);
}

Test(oversight, the_hook_receives_the_alert)
{
    char script[512], fifo[512], conf[1024], line[4096];
    hh_stop(&h);
    hh_cleanup(&h);
    /* The hook writes what it is given into a FIFO this test reads. */
    char dir[] = "/tmp/haven-hook-XXXXXX";
    cr_assert(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/alerts", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(script, sizeof script, "%s/hook", dir);
    FILE *f = fopen(script, "w");
    fprintf(f, "#!/bin/sh\ncat > '%s'\n", fifo);
    fclose(f);
    chmod(script, 0755);
    int fd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert(fd >= 0);
    snprintf(conf, sizeof conf, "[alerts]\nhook = %s\n", script);
    s_world(conf);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0);
    /* wait for the writer, then read its line */
    struct pollfd p = { fd, POLLIN, 0 };
    cr_assert_eq(poll(&p, 1, 10000), 1, "the hook was not run");
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    cr_assert(hh_read_line(fd, line, sizeof line, 10000), "the hook wrote nothing");
    close(fd);
    json_error_t e;
    json_t *alert = json_loads(line, 0, &e);
    cr_assert(alert, "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(alert, "event")), "watch-match");
    cr_assert(json_string_value(json_object_get(alert, "watch")), "the hook is told which watch: %s", line);
    cr_assert_eq(json_integer_value(json_object_get(alert, "count")), 1, "%s", line);
    /* By default the hook learns only what wakes someone (hook_detail =
     * minimal): nothing about the unit, its place or whose watch it is. */
    cr_assert_null(json_object_get(alert, "provider_id"), "%s", line);
    cr_assert_null(json_object_get(alert, "unit"), "%s", line);
    cr_assert_null(json_object_get(alert, "district"), "%s", line);
    cr_assert_null(json_object_get(alert, "principal"), "%s", line);
    cr_assert(!strstr(line, "Road"), "no address in an alert: %s", line);
    json_decref(alert);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A short, scripted history: three searches and two declines. */
static void
s_history(void)
{
    char token[1024], id[64];
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-2", "available", NULL);
    /* 1: a 17-year-old boy: nothing fits (teenage boys, found none) */
    hh_run(&h, &r, "haven", "--config", idva, "search", "--gender", "woman", "--child", "17:m", "--near",
           "E07000008", NULL);
    cr_assert_eq(r.code, 0);
    /* 2: a woman with a dog: nothing fits (pets, found none) */
    hh_run(&h, &r, "haven", "--config", idva, "search", "--gender", "woman", "--pet", "dog", "--near",
           "E07000008", NULL);
    /* 3: a woman, limit 1: enough found */
    for (int i = 0; i < 2; i++) {
        hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--gender", "woman", "--limit", "1",
               "--near", "E07000008", NULL);
        json_t *doc = hh_json(&r);
        snprintf(token, sizeof token, "%s",
                 json_string_value(json_object_get(json_array_get(json_object_get(doc, "offers"), 0), "offer")));
        json_decref(doc);
        hh_run(&h, &r, "haven", "--config", idva, "hold", token, NULL);
        cr_assert_eq(r.code, 0, "%s", r.err);
        snprintf(id, sizeof id, "%.16s", r.out);
        hh_run(&h, &r, "haven-agent", "--config", agent, "decline", id, "--reason", i ? "pets" : "capacity", NULL);
        cr_assert_eq(r.code, 0, "%s", r.err);
    }
}

static const char *
s_cell(json_t *rows, const char *match_col, const char *match, const char *col, char *buf, size_t len)
{
    json_t *row;
    size_t i;
    buf[0] = '\0';
    json_array_foreach(rows, i, row) {
        const char *v = json_string_value(json_object_get(row, match_col));
        if (v && strcmp(v, match) == 0) {
            json_t *c = json_object_get(row, col);
            if (json_is_integer(c))
                snprintf(buf, len, "%lld", (long long) json_integer_value(c));
            else
                snprintf(buf, len, "%s", json_string_value(c));
        }
    }
    return buf;
}

Test(oversight, reports_count_a_scripted_history_exactly)
{
    char buf[64], chart[512];
    s_history();
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "unmet", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r), *rows = json_object_get(doc, "rows");
    /* 4 searches; the boy's and the dog's found nothing */
    cr_assert_str_eq(s_cell(rows, "need", "all searches", "searches", buf, sizeof buf), "4");
    cr_assert_str_eq(s_cell(rows, "need", "all searches", "found_none", buf, sizeof buf), "2");
    cr_assert_str_eq(s_cell(rows, "need", "teenage boys", "searches", buf, sizeof buf), "1");
    cr_assert_str_eq(s_cell(rows, "need", "teenage boys", "found_none", buf, sizeof buf), "1");
    cr_assert_str_eq(s_cell(rows, "need", "teenage boys", "would_help", buf, sizeof buf), "max_boy_age");
    cr_assert_str_eq(s_cell(rows, "need", "teenage boys", "region", buf, sizeof buf), "East of England");
    cr_assert_str_eq(s_cell(rows, "need", "pets", "found_none", buf, sizeof buf), "1");
    cr_assert_str_eq(s_cell(rows, "need", "pets", "would_help", buf, sizeof buf), "pets");
    json_decref(doc);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "declines", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    doc = hh_json(&r);
    rows = json_object_get(doc, "rows");
    cr_assert_eq(json_array_size(rows), 2, "%s", r.out);
    cr_assert_str_eq(s_cell(rows, "reason", "capacity", "declines", buf, sizeof buf), "1");
    cr_assert_str_eq(s_cell(rows, "reason", "pets", "provider_kind", buf, sizeof buf), "refuge");
    json_decref(doc);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "occupancy", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    doc = hh_json(&r);
    rows = json_object_get(doc, "rows");
    cr_assert_str_eq(s_cell(rows, "region", "East of England", "units", buf, sizeof buf), "3");
    cr_assert_str_eq(s_cell(rows, "region", "East of England", "available", buf, sizeof buf), "2");
    json_decref(doc);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "stale", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "refuge-b"), "refuge-b never confirmed: %s", r.out);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--csv", "report", "unmet", NULL);
    cr_assert(strstr(r.out, "month,region,need,searches,found_none,found_fewer,would_help"), "%s", r.out);
    snprintf(chart, sizeof chart, "%s/unmet.svg", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "report", "unmet", "--chart", chart, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char svg[8192];
    FILE *f = fopen(chart, "r");
    cr_assert(f);
    size_t n = fread(svg, 1, sizeof svg - 1, f);
    fclose(f);
    svg[n] = '\0';
    cr_assert(strstr(svg, "<svg") && strstr(svg, "teenage boys"), "%s", svg);
}

Test(oversight, audit_verify_passes_then_names_an_altered_record)
{
    char copy[512], cmd[2048];
    s_history();
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", NULL);
    cr_assert_eq(r.code, 0, "an honest log: %s", r.err);
    cr_assert(strstr(r.out, "intact"), "%s", r.out);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "show", "--principal", "idva-1", NULL);
    cr_assert(strstr(r.out, "search") && strstr(r.out, "hold_create"), "%s", r.out);
    cr_assert(!strstr(r.out, "Road"), "no address in the audit log: %s", r.out);

    /* A copy of the store (a compacted backup: each record once, no stale
     * pages), checked offline: intact, then one byte of one record changed. */
    char path[600];
    snprintf(copy, sizeof copy, "%s/copy", h.dir);
    snprintf(path, sizeof path, "%s/data.mdb", copy);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", copy);
    cr_assert_eq(system(cmd), 0);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", path, NULL);
    cr_assert_eq(r.code, 0, "backup: %s", r.err);
    hh_run(&h, &r, "haven-admin", "audit", "verify", "--data-dir", copy, NULL);
    cr_assert_eq(r.code, 0, "the copy is intact: %s", r.err);

    FILE *f = fopen(path, "r+b");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    char *buf = malloc((size_t) size);
    fseek(f, 0, SEEK_SET);
    cr_assert_eq(fread(buf, 1, (size_t) size, f), (size_t) size);
    /* the action "decline" is only in the audit records of the declines */
    char *hit = memmem(buf, (size_t) size, "decline", 7);
    cr_assert(hit, "no audit record found in the copy");
    fseek(f, hit - buf, SEEK_SET);
    fputc('D', f);               /* decline -> Decline */
    fclose(f);
    free(buf);
    hh_run(&h, &r, "haven-admin", "--json", "audit", "verify", "--data-dir", copy, NULL);
    cr_assert_eq(r.code, 65, "a tampered copy must fail: %d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "FAILED at record") && strstr(r.err, "altered"), "%s", r.err);
    cr_assert(strstr(r.out, "\"first_bad\""), "%s", r.out);
}
