/* SPDX-License-Identifier: MIT */
/* The referral workflow through the real programs: hold, sealed note,
 * accept or decline, the sealed address, expiry, races and restarts. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512], idva2[512];

#define ADDRESS "14 Hidden Mews, Cambridge CB1 9ZZ"
#define NOTE "Survivor A. Example, call on 07000 000000 after 6pm, code word bluebell"

static const char catalog[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 16\npets = dog\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\naddress = " ADDRESS "\n"
    "[unit room-2]\nmax_occupants = 3\naddress = 2 Other Road\n";

static void
s_world(const char *extra)
{
    hh_start(&h, extra);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_principal(&h, "idva", "idva-2", NULL, idva2, sizeof idva2);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "set: %s", r.err);
}

static void setup(void) { s_world(NULL); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(referrals, .init = setup, .fini = teardown, .timeout = 300);


/* Search as conf; copy the first offer's token (for unit, if given). */
static int
s_offer(const char *conf, const char *unit, char *token, size_t len)
{
    hh_run(&h, &r, "haven", "--config", conf, "--json", "search", "--gender", "woman", "--child", "14:m", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
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

/* Hold with a note; returns the hold id in id. */
static void
s_hold(const char *conf, const char *token, char *id, size_t len)
{
    char note[512];
    hh_write(&h, "note.txt", NOTE, note, sizeof note);
    hh_run(&h, &r, "haven", "--config", conf, "--json", "hold", token, "--note-file", note, NULL);
    cr_assert_eq(r.code, 0, "hold: %d %s", r.code, r.err);
    json_t *doc = hh_json(&r);
    snprintf(id, len, "%s", json_string_value(json_object_get(doc, "hold")));
    cr_assert_eq(strlen(id), 16);
    cr_assert(json_string_value(json_object_get(doc, "expires_at")));
    json_decref(doc);
}

static const char *
s_state(const char *conf, const char *id, char *buf, size_t len)
{
    hh_run(&h, &r, "haven", "--config", conf, "--json", "holds", NULL);
    cr_assert_eq(r.code, 0, "holds: %s", r.err);
    json_t *doc = hh_json(&r), *x;
    size_t i;
    snprintf(buf, len, "absent");
    json_array_foreach(json_object_get(doc, "holds"), i, x)
        if (strcmp(json_string_value(json_object_get(x, "hold")), id) == 0)
            snprintf(buf, len, "%s", json_string_value(json_object_get(x, "state")));
    json_decref(doc);
    return buf;
}

/* grep -r for text in the broker's data directory and log. */
static bool
s_broker_has(const char *text)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -rqaF '%s' '%s/data' '%s/broker.log'", text, h.dir, h.dir);
    return system(cmd) == 0;
}

Test(referrals, hold_accept_address_round_trip_never_shows_the_broker_the_address)
{
    char token[1024], id[32], state[32];
    cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 1);
    s_hold(idva, token, id, sizeof id);

    /* held: nobody else is offered it */
    cr_assert_eq(s_offer(idva2, NULL, token, sizeof token), 0);

    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "referrals", NULL);
    cr_assert_eq(r.code, 0, "referrals: %s", r.err);
    cr_assert(strstr(r.out, id), "%s", r.out);
    cr_assert(strstr(r.out, NOTE), "the agent reads the sealed note: %s", r.out);
    cr_assert(strstr(r.out, "children 14m"), "the need summary: %s", r.out);

    hh_run(&h, &r, "haven", "--config", idva, "address", id, NULL);
    cr_assert_eq(r.code, 75, "no address before acceptance: %d %s", r.code, r.err);

    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", id, NULL);
    cr_assert_eq(r.code, 0, "accept: %s", r.err);
    cr_assert_str_eq(s_state(idva, id, state, sizeof state), "accepted");

    hh_run(&h, &r, "haven", "--config", idva, "address", id, NULL);
    cr_assert_eq(r.code, 0, "address: %s", r.err);
    cr_assert_str_eq(r.out, ADDRESS "\n");

    /* the unit is now occupied */
    hh_run(&h, &r, "haven-agent", "--config", agent, "status", NULL);
    cr_assert(strstr(r.out, "room-1") && strstr(r.out, "occupied"), "%s", r.out);

    hh_stop(&h);                 /* flush everything to disk before looking */
    cr_assert(!s_broker_has("Hidden Mews"), "the address reached the broker's files");
    cr_assert(!s_broker_has("bluebell"), "the note reached the broker's files");
    hh_restart(&h);
}

Test(referrals, two_idvas_racing_for_one_unit_exactly_one_wins)
{
    for (int round = 0; round < 12; round++) {
        char t1[1024], t2[1024];
        cr_assert_eq(s_offer(idva, "room-1", t1, sizeof t1), 1, "round %d", round);
        cr_assert_eq(s_offer(idva2, "room-1", t2, sizeof t2), 1);
        int fd1, fd2, st1, st2;
        pid_t p1 = hh_spawn(&h, &fd1, "haven", "--config", idva, "hold", t1, NULL);
        pid_t p2 = hh_spawn(&h, &fd2, "haven", "--config", idva2, "hold", t2, NULL);
        char id1[64] = "", id2[64] = "";
        hh_read_line(fd1, id1, sizeof id1, 20000);
        hh_read_line(fd2, id2, sizeof id2, 20000);
        cr_assert_eq(waitpid(p1, &st1, 0), p1);
        cr_assert_eq(waitpid(p2, &st2, 0), p2);
        close(fd1);
        close(fd2);
        int c1 = WEXITSTATUS(st1), c2 = WEXITSTATUS(st2);
        cr_assert((c1 == 0 && c2 == 75) || (c1 == 75 && c2 == 0),
                  "round %d: exactly one must win (exits %d and %d)", round, c1, c2);
        hh_run(&h, &r, "haven", "--config", c1 == 0 ? idva : idva2, "cancel", c1 == 0 ? id1 : id2, NULL);
        cr_assert_eq(r.code, 0, "cancel: %s", r.err);
    }
}

Test(referrals, decline_with_each_reason_returns_the_unit)
{
    static const char *const reasons[] = {
        "capacity", "boys-age", "nrpf", "complex-needs", "risk", "location", "pets", "access", "other",
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char token[1024], id[32];
        cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 1, "%s", reasons[i]);
        s_hold(idva, token, id, sizeof id);
        hh_run(&h, &r, "haven-agent", "--config", agent, "decline", id, "--reason", reasons[i],
               "--message", "Sorry: try the Peterborough refuge", NULL);
        cr_assert_eq(r.code, 0, "decline %s: %s", reasons[i], r.err);
        hh_run(&h, &r, "haven", "--config", idva, "--json", "holds", NULL);
        cr_assert(strstr(r.out, reasons[i]), "%s", r.out);
        cr_assert(strstr(r.out, "try the Peterborough refuge"), "the sealed message: %s", r.out);
        cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 1, "the unit is offered again");
    }
    hh_run(&h, &r, "haven-agent", "--config", agent, "decline", "0123456789abcdef", "--reason", "because", NULL);
    cr_assert_eq(r.code, 64, "an unknown reason is a usage error: %s", r.err);
}

Test(referrals, nobody_reads_or_answers_anothers_hold)
{
    char token[1024], id[32], other[512];
    hh_provider(&h, "refuge-b", "refuge", "E06000031", catalog, other, sizeof other);
    cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 1);
    s_hold(idva, token, id, sizeof id);

    hh_run(&h, &r, "haven", "--config", idva2, "address", id, NULL);
    cr_assert_eq(r.code, 65, "another IDVA: %d %s", r.code, r.err);
    hh_run(&h, &r, "haven", "--config", idva2, "cancel", id, NULL);
    cr_assert_eq(r.code, 65, "another IDVA cancelled: %s", r.err);
    hh_run(&h, &r, "haven", "--config", idva2, "holds", NULL);
    cr_assert(!strstr(r.out, id), "another IDVA lists it: %s", r.out);

    hh_run(&h, &r, "haven-agent", "--config", other, "accept", id, NULL);
    cr_assert_neq(r.code, 0, "another provider's agent accepted: %s", r.out);
    hh_run(&h, &r, "haven-agent", "--config", other, "referrals", NULL);
    cr_assert(!strstr(r.out, id), "another provider sees it: %s", r.out);

    /* someone else's offer token cannot be used */
    hh_run(&h, &r, "haven", "--config", idva2, "hold", token, NULL);
    cr_assert_eq(r.code, 77, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "someone else"), "%s", r.err);
}

Test(referrals, a_pending_hold_survives_a_restart)
{
    char token[1024], id[32], state[32];
    cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 1);
    s_hold(idva, token, id, sizeof id);
    hh_restart(&h);
    cr_assert_str_eq(s_state(idva, id, state, sizeof state), "pending");
    hh_run(&h, &r, "haven-agent", "--config", agent, "referrals", NULL);
    cr_assert(strstr(r.out, id) && strstr(r.out, NOTE), "%s", r.out);
    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", id, NULL);
    cr_assert_eq(r.code, 0, "accept after restart: %s", r.err);
}

Test(referrals, the_running_agent_hears_of_a_referral_at_once)
{
    char token[1024], id[32], line[4096];
    int fd;
    pid_t run = hh_spawn(&h, &fd, "haven-agent", "--config", agent, "--json", "run", NULL);
    /* The first referral may come before the agent has subscribed: it
     * then finds it on its first look. Either way it prints it. */
    cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 1);
    struct timespec t0, t1;
    s_hold(idva, token, id, sizeof id);
    cr_assert(hh_read_line(fd, line, sizeof line, 10000), "the agent heard nothing");
    cr_assert(strstr(line, id), "%s", line);
    cr_assert(strstr(line, NOTE), "%s", line);

    /* Having printed one, it is subscribed: the next arrives in < 1 s. */
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-2", "available", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(s_offer(idva2, "room-2", token, sizeof token), 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s_hold(idva2, token, id, sizeof id);
    cr_assert(hh_read_line(fd, line, sizeof line, 10000), "the agent heard nothing of the second");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert(strstr(line, id), "%s", line);
    cr_assert_lt(ms, 1000.0, "took %.0f ms", ms);
    kill(run, SIGTERM);
    int st;
    cr_assert_eq(waitpid(run, &st, 0), run);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run did not stop cleanly: %d", st);
    close(fd);
}

/* Short timers: holds lapse and offers expire in a second. */
Test(referrals, unanswered_holds_lapse_and_old_offers_are_refused)
{
    char token[1024], stale[1024], id[32], state[32];
    hh_stop(&h);
    hh_cleanup(&h);
    s_world("[timers]\nhold_ttl = 1s\noffer_ttl = 1s\n");
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-2", "available", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(s_offer(idva, "room-2", stale, sizeof stale), 2);
    /* An offer lives 1 s here: on a loaded machine the hold may come too
     * late, which is the broker being right; take a fresh one then. */
    char note[512];
    hh_write(&h, "note.txt", NOTE, note, sizeof note);
    for (int attempt = 0; attempt < 5; attempt++) {
        cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 2);
        hh_run(&h, &r, "haven", "--config", idva, "--json", "hold", token, "--note-file", note, NULL);
        if (r.code != 75 || !strstr(r.err, "expired"))
            break;
    }
    cr_assert_eq(r.code, 0, "hold: %d %s", r.code, r.err);
    json_t *held = hh_json(&r);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(held, "hold")));
    json_decref(held);
    /* Watch the hold until the broker's timer lapses it (bounded). */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        s_state(idva, id, state, sizeof state);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (strcmp(state, "pending") == 0 && now.tv_sec - t0.tv_sec < 20);
    cr_assert_str_eq(state, "expired");
    cr_assert_eq(s_offer(idva, "room-1", token, sizeof token), 2, "the lapsed hold gave the unit back");
    /* the first search's offer is more than a second old now */
    hh_run(&h, &r, "haven", "--config", idva, "hold", stale, NULL);
    cr_assert_eq(r.code, 75, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "expired"), "%s", r.err);
}
