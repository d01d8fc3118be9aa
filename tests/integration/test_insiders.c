/* SPDX-License-Identifier: MIT */
/* What insiders can do to each other, through the real programs:
 * revocation ends everything a key had, other people's work carries no
 * districts, a hold follows the unit's current rules, the hook learns
 * little and inherits nothing, the offer-token key is not in the store,
 * and on-call officers cover a real region. */
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
#include "../../common/cli.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512], idva2[512];

static const char catalog[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 14\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\naddress = 1 Hidden Road\n"
    "[unit room-2]\nmax_occupants = 3\naddress = 2 Hidden Road\n";

static void
s_world(const char *extra)
{
    hh_start(&h, extra);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_principal(&h, "idva", "idva-2", NULL, idva2, sizeof idva2);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
}

static char hookdir[64];         /* the hook tests' FIFO and script */

static void setup(void) { s_world(NULL); }
static void
teardown(void)
{
    if (hookdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", hookdir);
        if (system(cmd) != 0) {
        }
    }
    hh_stop(&h);
    hh_cleanup(&h);
}
TestSuite(insiders, .init = setup, .fini = teardown, .timeout = 120);


/* Search as conf for a woman (with a child "AGE:SEX" unless NULL); copy
 * the offer for unit (or the first) into token. Returns how many matched. */
static int
s_offer(const char *conf, const char *unit, const char *child, char *token, size_t len)
{
    if (child)
        hh_run(&h, &r, "haven", "--config", conf, "--json", "search", "--gender", "woman", "--child", child, NULL);
    else
        hh_run(&h, &r, "haven", "--config", conf, "--json", "search", "--gender", "woman", NULL);
    cr_assert_eq(r.code, 0, "search: %d %s", r.code, r.err);
    json_t *doc = hh_json(&r), *o;
    size_t i;
    int n = (int) json_integer_value(json_object_get(doc, "matching"));
    token[0] = '\0';
    json_array_foreach(json_object_get(doc, "offers"), i, o)
        if (!unit || strcmp(json_string_value(json_object_get(o, "unit")), unit) == 0) {
            snprintf(token, len, "%s", json_string_value(json_object_get(o, "offer")));
            break;
        }
    json_decref(doc);
    return n;
}

static void
s_hold(const char *conf, const char *token, char *id, size_t len)
{
    hh_run(&h, &r, "haven", "--config", conf, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold: %d %s", r.code, r.err);
    json_t *doc = hh_json(&r);
    snprintf(id, len, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);
    cr_assert_eq(strlen(id), 16, "%s", r.out);
}

/* Run a shell command; its stdout (first len-1 bytes) into out. Returns
 * its exit status. */
static int
s_sh(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Records in one table of the store (LMDB named database), read with
 * mdb_stat beside the broker (LMDB allows a reader in another process). */
static long
s_entries(const char *table)
{
    char cmd[700], out[4096];
    snprintf(cmd, sizeof cmd, "mdb_stat -s %s '%s/data' 2>&1", table, h.dir);
    cr_assert_eq(s_sh(cmd, out, sizeof out), 0, "mdb_stat: %s", out);
    const char *e = strstr(out, "Entries: ");
    cr_assert(e, "mdb_stat said: %s", out);
    return strtol(e + 9, NULL, 10);
}

/* The meta table, keys and values printable (mdb_dump -p). */
static void
s_meta(char *out, size_t len)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mdb_dump -p -s meta '%s/data' 2>&1", h.dir);
    cr_assert_eq(s_sh(cmd, out, len), 0, "mdb_dump: %s", out);
    cr_assert(strstr(out, "schema"), "not the meta table: %s", out);
}

/* An on-call officer of the East of England (where refuge-a is). */
static void
s_oncall(const char *name, char *conf, size_t len)
{
    char pub[512];
    hh_unregistered(&h, name, conf, len);
    snprintf(pub, sizeof pub, "%s/%s.pub", h.dir, name);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "oncall", "--name", name,
           "--public-key", pub, "--region", "East of England", NULL);
    cr_assert_eq(r.code, 0, "principal add %s: %s", name, r.err);
}

static bool
s_log_has(const char *text)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -qF '%s' '%s/broker.log'", text, h.dir);
    return system(cmd) == 0;
}

Test(insiders, revocation_withdraws_holds_ends_watches_and_empties_the_inbox)
{
    char token[1024], id[32], line[4096], oncall[512];
    s_oncall("oncall-east", oncall, sizeof oncall);
    /* A watch, and the alert it made for room-1 waiting unread in the
     * inbox; then a hold on room-1. */
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--near", "E07000008", "--for", "1h",
           NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "set: %s", r.err);
    cr_assert_eq(s_offer(idva, "room-1", NULL, token, sizeof token), 1);
    s_hold(idva, token, id, sizeof id);
    hh_run(&h, &r, "haven", "--config", oncall, "watch", "--list", NULL);
    cr_assert(strstr(r.out, "idva-1"), "on-call sees the region's watch: %s", r.out);
    cr_assert_eq(s_entries("inbox"), 1, "the alert for room-1 waits in idva-1's inbox");

    /* The refuge's agent is running and has shown the referral. */
    int fd;
    pid_t run = hh_spawn(&h, &fd, "haven-agent", "--config", agent, "--json", "run", NULL);
    cr_assert(hh_read_line(fd, line, sizeof line, 10000), "the agent showed nothing");
    cr_assert(strstr(line, id), "%s", line);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-1", NULL);
    cr_assert_eq(r.code, 0, "revoke: %s", r.err);

    /* Staff watching the agent are told at once; answering is refused. */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool told = false;
    while (!told) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int left = 5000 - (int) ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || !hh_read_line(fd, line, sizeof line, left))
            break;
        told = strstr(line, id) && strstr(line, "withdrawn");
    }
    kill(run, SIGTERM);
    int st;
    cr_assert_eq(waitpid(run, &st, 0), run);
    close(fd);
    cr_assert(told, "the running agent did not say the referral was withdrawn within 5 s");

    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", id, NULL);
    cr_assert_eq(r.code, 75, "accepting a revoked IDVA's referral: %d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "withdrawn"), "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "decline", id, "--reason", "other", NULL);
    cr_assert_eq(r.code, 75, "declining it: %d %s", r.code, r.err);
    cr_assert(strstr(r.err, "withdrawn"), "%s", r.err);

    /* The unit is offered again; the revoked key gets nothing. */
    cr_assert_eq(s_offer(idva2, "room-1", NULL, token, sizeof token), 1, "%s", r.out);
    cr_assert(token[0], "room-1 is not offered again: %s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "holds", NULL);
    cr_assert_eq(r.code, 77, "%d %s", r.code, r.err);
    hh_run(&h, &r, "haven", "--config", idva, "inbox", NULL);
    cr_assert_eq(r.code, 77, "%d %s", r.code, r.err);
    hh_run(&h, &r, "haven", "--config", idva, "search", NULL);
    cr_assert_eq(r.code, 77, "%d %s", r.code, r.err);
    hh_run(&h, &r, "haven", "--config", oncall, "watch", "--list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(!strstr(r.out, "idva-1"), "the revoked IDVA's watch lives on: %s", r.out);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "show", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r), *rec;
    size_t i;
    const char *detail = NULL;
    json_array_foreach(json_object_get(doc, "records"), i, rec) {
        const char *d = json_string_value(json_object_get(rec, "detail"));
        const char *action = json_string_value(json_object_get(rec, "action"));
        if (d && action && strstr(action, "revoke") && strstr(d, "principal idva-1"))
            detail = d;
    }
    cr_assert(detail, "no audit record of the revocation: %s", r.out);
    cr_assert(strstr(detail, "1 holds withdrawn") && strstr(detail, "1 watches ended"), "%s", detail);
    json_decref(doc);

    /* Nothing is left for the key. */
    hh_stop(&h);
    cr_assert_eq(s_entries("inbox"), 0, "alerts remain in the revoked IDVA's inbox");
}

/* The unit a withdrawn hold gives back must not alert the revoked key's
 * own watch: its inbox would be filled again, with a fresh offer minted
 * for a revoked key, and the alert hook would page on its behalf. */
Test(insiders, revocation_leaves_no_alert_for_the_unit_it_gave_back)
{
    char token[1024], id[32];
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "set: %s", r.err);
    cr_assert_eq(s_offer(idva, "room-1", NULL, token, sizeof token), 1);
    s_hold(idva, token, id, sizeof id);
    /* made while room-1 is held: room-1 has never alerted it */
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);
    cr_assert_eq(s_entries("inbox"), 0);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-1", NULL);
    cr_assert_eq(r.code, 0, "revoke: %s", r.err);
    cr_assert_eq(s_offer(idva2, "room-1", NULL, token, sizeof token), 1, "room-1 is offered again");
    /* Alerts are stored before the broker reads its next request, and
     * it reads SIGTERM after the requests before it. */
    hh_stop(&h);
    cr_assert_eq(s_entries("inbox"), 0,
                 "the revoked IDVA's watch outlived the revocation: room-1, given back by its withdrawn "
                 "hold, put an alert with a fresh offer in its inbox");
}

Test(insiders, other_peoples_watches_never_show_districts)
{
    char oncall[512];
    s_oncall("oncall-east", oncall, sizeof oncall);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--exclude", "E07000012", "--home",
           "E07000008", "--near", "E07000008", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);

    /* What the programs print. */
    hh_run(&h, &r, "haven", "--config", oncall, "--json", "watch", "--list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "idva-1"), "on-call of the region sees the watch: %s", r.out);
    cr_assert(strstr(r.out, "East of England"), "%s", r.out);
    cr_assert(!strstr(r.out, "E07000012") && !strstr(r.out, "E07000008"), "districts shown: %s", r.out);
    json_t *doc = hh_json(&r);
    json_t *w = json_array_get(json_object_get(doc, "watches"), 0);
    cr_assert(w, "%s", r.out);
    cr_assert_null(json_object_get(w, "exclude"), "%s", r.out);
    cr_assert_null(json_object_get(w, "home"), "%s", r.out);
    cr_assert_null(json_object_get(w, "near"), "%s", r.out);
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", oncall, "watch", "--list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "idva-1"), "%s", r.out);
    cr_assert(!strstr(r.out, "E07000012") && !strstr(r.out, "E07000008"), "districts shown: %s", r.out);

    /* What the broker sends: any client (a web front, a script) gets the
     * same, so the districts must not leave the broker at all. */
    hv_cli_t *cli = NULL;
    Haven__Reply *rep = NULL;
    Haven__WatchList wl = HAVEN__WATCH_LIST__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_WATCH_LIST;
    req.watch_list = &wl;
    const char *confs[] = { oncall, idva };
    for (int who = 0; who < 2; who++) {
        cr_assert_eq(hv_cli_open("test", confs[who], &cli), EX_OK);
        cr_assert_eq(hv_cli_call(cli, &req, &rep), EX_OK);
        cr_assert_eq(rep->watches->n_watches, 1);
        const Haven__Need *n = rep->watches->watches[0]->need;
        cr_assert(n);
        if (who == 0) {
            cr_assert_eq(n->n_exclude, 0, "on-call is sent the excluded district %s", n->exclude[0]);
            cr_assert_null(n->home, "on-call is sent the home district %s", n->home);
            cr_assert_null(n->near, "on-call is sent the reference district %s", n->near);
        } else {
            /* the owner sees their own in full */
            cr_assert_eq(n->n_exclude, 1);
            cr_assert_str_eq(n->exclude[0], "E07000012");
            cr_assert_str_eq(n->home, "E07000008");
            cr_assert_str_eq(n->near, "E07000008");
        }
        haven__reply__free_unpacked(rep, NULL);
        rep = NULL;
        hv_cli_destroy(&cli);
    }

    hh_run(&h, &r, "haven", "--config", idva, "--json", "watch", "--list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "idva-1") || strstr(r.out, "woman"), "the owner lists it: %s", r.out);
    hh_stop(&h);
}

Test(insiders, a_hold_follows_the_units_current_rules)
{
    char token[1024], other[1024], ini[512];
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(s_offer(idva, "room-1", "13:m", token, sizeof token), 1, "boys to 14 take a 13-year-old");
    cr_assert(token[0]);

    /* The refuge lowers its age limit for boys after the search. */
    char lower[sizeof catalog];
    snprintf(lower, sizeof lower, "%s", catalog);
    char *age = strstr(lower, "max_boy_age = 14");
    cr_assert(age);
    age[strlen("max_boy_age = 1")] = '2';
    hh_write(&h, "refuge-a.ini", lower, ini, sizeof ini);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "republish: %s", r.err);
    cr_assert_eq(s_offer(idva2, NULL, "13:m", other, sizeof other), 0, "the new rule is in force");

    hh_run(&h, &r, "haven", "--config", idva, "hold", token, NULL);
    cr_assert_eq(r.code, 75, "a hold for a household the unit no longer takes: %d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "rules changed since your search"), "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "referrals", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(!strstr(r.out, "room-1"), "the refuge got a referral: %s", r.out);

    /* The unit stays available for a household it does take. */
    cr_assert_eq(s_offer(idva, "room-1", NULL, token, sizeof token), 1);
    cr_assert(token[0], "room-1 is no longer offered: %s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "hold", token, NULL);
    cr_assert_eq(r.code, 0, "a fresh offer holds: %s", r.err);
}

/* A hook that writes what it is given, then its own descriptors (ls -l
 * /proc/self/fd: 0-2, the directory ls reads, and anything inherited),
 * into a FIFO; returns everything written, after the writer closes. */
static void
s_hook_run(const char *detail, char *out, size_t len)
{
    char fifo[512], script[512], conf[1024];
    hh_stop(&h);
    hh_cleanup(&h);
    snprintf(hookdir, sizeof hookdir, "/tmp/haven-hook-XXXXXX");
    cr_assert(mkdtemp(hookdir));
    const char *dir = hookdir;
    snprintf(fifo, sizeof fifo, "%s/alerts", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(script, sizeof script, "%s/hook", dir);
    FILE *f = fopen(script, "w");
    cr_assert(f);
    fprintf(f, "#!/bin/sh\n{ cat; echo '--- fds'; ls -l /proc/self/fd; } > '%s' 2>&1\n", fifo);
    fclose(f);
    chmod(script, 0755);
    int fd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert(fd >= 0);
    snprintf(conf, sizeof conf, "[alerts]\nhook = %s\n%s", script, detail ? detail : "");
    s_world(conf);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    struct pollfd p = { fd, POLLIN, 0 };
    cr_assert_eq(poll(&p, 1, 10000), 1, "the hook was not run");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t used = 0;
    char line[4096];
    while (hh_read_line(fd, line, sizeof line, 10000) && used < len)
        used += (size_t) snprintf(out + used, len - used, "%s\n", line);
    close(fd);
    cr_assert(strstr(out, "--- fds"), "the hook did not finish: %s", out);
}

Test(insiders, the_hook_gets_full_detail_only_when_asked_and_no_descriptors)
{
    static char out[16384];
    s_hook_run("hook_detail = full\n", out, sizeof out);
    json_error_t e;
    json_t *alert = json_loadb(out, (size_t) (strchr(out, '\n') - out), 0, &e);
    cr_assert(alert, "not JSON: %s", out);
    cr_assert_str_eq(json_string_value(json_object_get(alert, "event")), "watch-match", "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(alert, "provider_id")), "refuge-a", "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(alert, "unit")), "room-1", "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(alert, "principal")), "idva-1", "%s", out);
    cr_assert(!strstr(out, "Hidden Road"), "an address reached the hook: %s", out);
    json_decref(alert);

    /* Descriptors: 0, 1, 2 and the one ls opens on /proc/self/fd. */
    const char *fds = strstr(out, "--- fds");
    int n = 0;
    for (const char *l = strstr(fds, "\n"); l && (l = strstr(l, " -> ")); l += 4)
        n++;
    cr_assert(!strstr(fds, "data.mdb") && !strstr(fds, "lock.mdb"), "the hook holds the store open:\n%s", fds);
    cr_assert(!strstr(fds, "socket:"), "the hook holds the broker's sockets:\n%s", fds);
    cr_assert_leq(n, 4, "the hook inherited descriptors:\n%s", fds);
    hh_stop(&h);
}

Test(insiders, the_hook_gets_little_by_default)
{
    static char out[16384];
    s_hook_run(NULL, out, sizeof out);
    json_error_t e;
    json_t *alert = json_loadb(out, (size_t) (strchr(out, '\n') - out), 0, &e);
    cr_assert(alert, "not JSON: %s", out);
    cr_assert_str_eq(json_string_value(json_object_get(alert, "event")), "watch-match", "%s", out);
    cr_assert(json_string_value(json_object_get(alert, "watch")), "%s", out);
    cr_assert(json_string_value(json_object_get(alert, "at")), "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(alert, "count")), 1, "%s", out);
    cr_assert_eq(json_object_size(alert), 4, "only event, watch, at and count: %s", out);
    json_decref(alert);
    hh_stop(&h);
}

Test(insiders, the_offer_token_key_is_derived_not_stored)
{
    char token[1024], meta[8192], cmd[1024], id[32];
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(s_offer(idva, "room-1", NULL, token, sizeof token), 1);
    hh_stop(&h);
    s_meta(meta, sizeof meta);
    cr_assert(!strstr(meta, "token-key"), "the offer-token key is in the store (and every backup):\n%s", meta);
    hh_restart(&h);
    /* derived from broker.key, the same after a restart */
    s_hold(idva, token, id, sizeof id);

    /* A store made before kept it in meta: the broker removes it. */
    hh_stop(&h);
    char input[600];
    hh_write(&h, "old-meta.txt",
             "token-key\n\\00\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d\\0e\\0f"
             "\\10\\11\\12\\13\\14\\15\\16\\17\\18\\19\\1a\\1b\\1c\\1d\\1e\\1f\n",
             input, sizeof input);
    snprintf(cmd, sizeof cmd, "mdb_load -T -s meta -f '%s' '%s/data' 2>&1", input, h.dir);
    cr_assert_eq(s_sh(cmd, meta, sizeof meta), 0, "mdb_load: %s", meta);
    s_meta(meta, sizeof meta);
    cr_assert(strstr(meta, "token-key"), "the old store was not made: %s", meta);
    hh_restart(&h);
    hh_run(&h, &r, "haven", "--config", idva, "holds", NULL);
    cr_assert_eq(r.code, 0, "the broker serves an old store: %s", r.err);
    cr_assert(strstr(r.out, id), "%s", r.out);
    hh_stop(&h);
    s_meta(meta, sizeof meta);
    cr_assert(!strstr(meta, "token-key"), "the old key stayed in the store:\n%s", meta);
    cr_assert(s_log_has("removed the offer-token key"), "the operator was not told");
}

Test(insiders, on_call_officers_cover_a_region_of_the_table)
{
    char conf[512], pub[512];
    hh_unregistered(&h, "oncall-x", conf, sizeof conf);
    snprintf(pub, sizeof pub, "%s/oncall-x.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "oncall", "--name",
           "oncall-x", "--public-key", pub, NULL);
    cr_assert_eq(r.code, 64, "on-call without a region: %d %s", r.code, r.err);
    cr_assert(strstr(r.err, "--region"), "%s", r.err);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "oncall", "--name",
           "oncall-x", "--public-key", pub, "--region", "Atlantis", NULL);
    cr_assert_eq(r.code, 65, "a region not in the table: %d %s", r.code, r.err);
    cr_assert(strstr(r.err, "Atlantis") && strstr(r.err, "East of England"), "the real regions: %s", r.err);
    hh_run(&h, &r, "haven", "--config", conf, "holds", NULL);
    cr_assert_eq(r.code, 77, "the refused officer was registered: %d %s", r.code, r.err);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "oncall", "--name",
           "oncall-x", "--public-key", pub, "--region", "east of england", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    const char *row = strstr(r.out, "oncall-x");
    cr_assert(row, "%s", r.out);
    const char *eol = strchr(row, '\n');
    const char *reg = strstr(row, "East of England");
    cr_assert(reg && (!eol || reg < eol), "the region as the table spells it: %s", r.out);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "principal", "list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r), *p;
    size_t i;
    const char *region = NULL;
    json_array_foreach(json_object_get(doc, "principals"), i, p)
        if (strcmp(json_string_value(json_object_get(p, "name")), "oncall-x") == 0)
            region = json_string_value(json_object_get(p, "region"));
    cr_assert(region, "no region in the JSON: %s", r.out);
    cr_assert_str_eq(region, "East of England");
    json_decref(doc);

    /* It works: the officer sees the region's watches. */
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--near", "E07000008", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", conf, "watch", "--list", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "idva-1"), "%s", r.out);
    hh_stop(&h);
}

/* An agent may republish its catalog as often as it likes (each with a
 * newer version): the broker must not keep a little of each. hh_stop
 * asserts a clean exit, and under ASan a leak is not one; it is called
 * here because criterion does not fail a test for an assertion in .fini. */
Test(insiders, republishing_a_catalog_leaks_nothing)
{
    char ini[512];
    hh_write(&h, "refuge-a.ini", "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 12\n"
             "confirm_every = 24h\n[unit room-1]\nmax_occupants = 3\n", ini, sizeof ini);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "republish: %s", r.err);
    hh_stop(&h);
}

/* ---------------------------------------------------------------- found by review */

#include <zmq.h>
#include "../../broker/store.h"
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "../../proto/wire.h"

/* A DEALER with conf's identity, connected to the broker. */
static void *
s_raw(void *ctx, const char *conf, hv_keys_t **keys_out)
{
    char err[512];
    hv_clientcfg_t *cfg = NULL;
    hv_pubkey_t broker;
    cr_assert_eq(hv_clientcfg_load(conf, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(hv_keys_load(cfg->key, keys_out, err, sizeof err), 0, "%s", err);
    cr_assert_eq(hv_pubkey_load(cfg->broker_key, &broker, err, sizeof err), 0, "%s", err);
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    cr_assert_eq(hv_curve_client(s, *keys_out, broker.curve), 0);
    cr_assert_eq(zmq_connect(s, cfg->endpoint), 0);
    hv_clientcfg_destroy(&cfg);
    return s;
}

static void
s_send(void *s, Haven__Request *req)
{
    uint8_t *buf;
    size_t len;
    cr_assert_eq(hv_pack(&req->base, &buf, &len), 0);
    cr_assert_eq(zmq_send(s, buf, len, 0), (int) len);
    free(buf);
}

static int
s_status(void *s)
{
    zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
    cr_assert_eq(zmq_poll(&item, 1, 10000), 1, "no reply");
    zmq_msg_t m;
    zmq_msg_init(&m);
    cr_assert_geq(zmq_msg_recv(&m, s, 0), 0);
    Haven__Reply *rep = NULL;
    cr_assert_eq(hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &rep), 0);
    int status = rep->status;
    haven__reply__free_unpacked(rep, NULL);
    zmq_msg_close(&m);
    return status;
}

/* An alert names its unit by identity: here, in one poll cycle, room-2
 * becomes available (a watch matches it) and a publish withdraws room-1
 * and adds room-3, which moves units about in the index. The alert must
 * still be for room-2 (it was for room-3 when units were named by their
 * index position). The broker is stopped meanwhile, so both requests are
 * waiting when it resumes and land in the same cycle. */
Test(insiders, an_alert_names_the_unit_that_matched_even_when_units_move)
{
    hv_keys_t *keys = NULL;
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    void *ctx = zmq_ctx_new();
    void *s = s_raw(ctx, agent, &keys);
    Haven__Request ping = HAVEN__REQUEST__INIT;
    Haven__Ping p = HAVEN__PING__INIT;
    ping.id = 1;
    ping.body_case = HAVEN__REQUEST__BODY_PING;
    ping.ping = &p;
    s_send(s, &ping);
    cr_assert_eq(s_status(s), HAVEN__STATUS__STATUS_OK, "the connection is up");

    kill(h.broker, SIGSTOP);
    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    set.provider = "refuge-a";
    set.unit = "room-2";
    set.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    set.version = 1000;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 2;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    s_send(s, &req);
    Haven__Service svc = HAVEN__SERVICE__INIT;
    svc.has_genders = 1;
    svc.genders = HAVEN__GENDERS__GENDERS_WOMEN;
    Haven__UnitSpec u2 = HAVEN__UNIT_SPEC__INIT, u3 = HAVEN__UNIT_SPEC__INIT, *units[] = { &u2, &u3 };
    u2.name = "room-2";
    u3.name = "room-3";
    u2.has_max_occupants = u3.has_max_occupants = 1;
    u2.max_occupants = u3.max_occupants = 3;
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    pub.provider = "refuge-a";
    pub.service = &svc;
    pub.n_units = 2;
    pub.units = units;
    pub.version = 1001;
    req.id = 3;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    s_send(s, &req);
    kill(h.broker, SIGCONT);
    cr_assert_eq(s_status(s), HAVEN__STATUS__STATUS_OK);
    cr_assert_eq(s_status(s), HAVEN__STATUS__STATUS_OK);
    zmq_close(s);
    zmq_ctx_term(ctx);
    hv_keys_destroy(&keys);

    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r), *a;
    size_t i;
    json_array_foreach(json_object_get(doc, "alerts"), i, a)
        cr_assert_str_eq(json_string_value(json_object_get(a, "unit")), "room-2",
                         "the alert names another unit than the one that matched: %s", r.out);
    cr_assert_geq(json_array_size(json_object_get(doc, "alerts")), 1, "room-2's alert: %s", r.out);
    json_decref(doc);
}

/* Revoking a key also deletes the sealed addresses waiting for it: whoever
 * took the key must not open them from the store or a backup. */
Test(insiders, revocation_deletes_the_addresses_waiting_for_the_key)
{
    char token[1024], id[32], dir[512];
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--gender", "woman", NULL);
    json_t *doc = hh_json(&r);
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(doc, "offers"), 0), "offer")));
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "hold", token, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    snprintf(id, sizeof id, "%.16s", r.out);
    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", id, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-1", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_stop(&h);
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    Haven__Hold *hold = NULL;
    snprintf(dir, sizeof dir, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(dir, 64 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_HOLDS, id, 16, &haven__hold__descriptor,
                                   (ProtobufCMessage **) &hold), 0);
    cr_assert_eq(hold->state, HAVEN__HOLD_STATE__HOLD_ACCEPTED, "the referral's outcome is kept");
    cr_assert_null(hold->address, "the sealed address for the revoked key is still in the store");
    haven__hold__free_unpacked(hold, NULL);
    brk_store_abort(txn);
    brk_store_destroy(&store);
    hh_restart(&h);
}

/* Deadlines whose hold is gone count as handled: 70 of them at the head of
 * the queue (more than one expiry round takes) once kept every later
 * deadline from ever firing, so no hold lapsed again. */
Test(insiders, orphaned_deadlines_do_not_stall_the_timers)
{
    char dir[512], token[1024], id[32];
    hh_stop(&h);
    hh_cleanup(&h);
    s_world("[timers]\nhold_ttl = 1s\n");
    hh_stop(&h);
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    snprintf(dir, sizeof dir, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(dir, 64 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (int i = 0; i < 70; i++) {
        uint8_t key[8 + 1 + 16] = { 0 };
        key[7] = 1;              /* due at 1970-01-01T00:00:01 */
        key[8] = 'e';            /* a hold's lapse... */
        char hold[17];
        snprintf(hold, sizeof hold, "%016x", i);     /* ...for a hold that does not exist */
        memcpy(key + 9, hold, 16);
        cr_assert_eq(brk_store_put(store, txn, BRK_DB_DEADLINES, key, sizeof key, "", 0), 0);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);
    hh_restart(&h);

    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--gender", "woman", NULL);
    json_t *doc = hh_json(&r);
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(doc, "offers"), 0), "offer")));
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "hold", token, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    snprintf(id, sizeof id, "%.16s", r.out);
    /* watch the hold until the broker lapses it (bounded) */
    struct timespec t0, now;
    bool lapsed = false;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        hh_run(&h, &r, "haven", "--config", idva, "holds", NULL);
        lapsed = strstr(r.out, "expired") != NULL;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!lapsed && now.tv_sec - t0.tv_sec < 15);
    cr_assert(lapsed, "the 1-second hold never lapsed behind 70 orphaned deadlines: %s", r.out);
}
