/* SPDX-License-Identifier: MIT */
/* What safe retries must not cost or leak (design.md sections 6 and 7),
 * from a hostile review of issue 12: a retry is not charged against the
 * rate limits, reading the inbox keeps no copies, revocation leaves none,
 * an agent's resend after its own restart is answered as done, and a
 * confirmation with many watches does not stall the broker (a ratio
 * against the same confirmation with no watches, in the same run;
 * HAVEN_WATCH_UNITS and HAVEN_WATCHES size it). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "../../broker/store.h"
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "../../proto/wire.h"
#include <unistd.h>
#include <zmq.h>
#include "harness.h"
#include "proxy.h"

static hh_t h;
static hh_result_t r;
static hh_proxy_t *relay;

static void
teardown(void)
{
    hh_proxy_stop(&relay);
    hh_stop(&h);
    hh_cleanup(&h);
}

/* each test starts its own broker with the limits it is about */
TestSuite(retry_bounds, .fini = teardown, .timeout = 600);

/* ---------------------------------------------------------------- helpers */

/* A call that must be answered OK. */
static Haven__Reply *
s_call(hh_id_t *id, Haven__Request *req)
{
    Haven__Reply *rep = NULL;
    int rc = hv_conn_call(id->conn, req, &rep);
    cr_assert_eq(rc, 0, "call: %s", strerror(-rc));
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "status %d: %s", rep->status,
                 rep->error ? rep->error : "");
    return rep;
}

static double
s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static uint64_t
s_version(void)
{
    static uint64_t v;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t now = (uint64_t) tv.tv_sec * 1000000u + (uint64_t) tv.tv_usec;
    v = now > v ? now : v + 1;
    return v;
}

static void
s_unit_set(hh_id_t *agent, const char *provider, const char *unit, Haven__UnitStatus status)
{
    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    set.provider = (char *) provider;
    set.unit = (char *) unit;
    set.status = status;
    set.version = s_version();
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    haven__reply__free_unpacked(s_call(agent, &req), NULL);
}

static void
s_watch_create(hh_id_t *idva)
{
    Haven__Need n = HAVEN__NEED__INIT;
    n.has_gender = 1;
    n.gender = HAVEN__GENDER__GENDER_WOMAN;
    Haven__WatchCreate wc = HAVEN__WATCH_CREATE__INIT;
    wc.need = &n;
    wc.for_s = 3600;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_WATCH_CREATE;
    req.watch_create = &wc;
    haven__reply__free_unpacked(s_call(idva, &req), NULL);
}

/* The broker's peak resident memory so far, in KiB. */
static long
s_broker_hwm_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int) h.broker);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* A catalog of n units named u0.. for women. */
static char *
s_catalog(int n)
{
    size_t cap = 128 + (size_t) n * 48;
    char *c = malloc(cap);
    size_t len = (size_t) snprintf(c, cap, "[service]\ngenders = women\nconfirm_every = 24h\n");
    for (int i = 0; i < n; i++)
        len += (size_t) snprintf(c + len, cap - len, "[unit u%d]\nmax_occupants = 2\n", i);
    return c;
}

/* The stopped broker's store. */
static brk_store_t *
s_store(void)
{
    brk_store_t *store = NULL;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    return store;
}

typedef struct {
    size_t n, bytes;
    const char *needle;          /* count the kept replies that contain it */
    size_t with_needle;
} s_kept_t;

static int
s_kept_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    s_kept_t *k = arg;
    k->n++;
    k->bytes += vlen;
    if (k->needle && memmem(val, vlen, k->needle, strlen(k->needle)))
        k->with_needle++;
    return 0;
}

/* The replies the stopped broker keeps for this principal's key. */
static s_kept_t
s_kept(const uint8_t curve[32], const char *needle)
{
    s_kept_t k = { 0, 0, needle, 0 };
    brk_store_t *store = s_store();
    MDB_txn *txn = NULL;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_each(store, txn, BRK_DB_REPLIES, curve, 32, s_kept_one, &k), 0);
    brk_store_abort(txn);
    brk_store_destroy(&store);
    return k;
}

/* A copy of conf with `retries = N` instead of the harness's. */
static void
s_conf_retries(const char *conf, int retries, const char *name, char *out, size_t len)
{
    char text[8192], result[8400];
    FILE *f = fopen(conf, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *line = strstr(text, "retries = ");
    cr_assert_not_null(line);
    char *eol = strchr(line, '\n');
    snprintf(result, sizeof result, "%.*sretries = %d%s", (int) (line - text), text, retries, eol);
    char file[256];
    snprintf(file, sizeof file, "%s.conf", name);
    hh_write(&h, file, result, out, len);
}

static const char two_rooms[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 2\naddress = 3 Quiet Close, Cambridge CB2 1ZZ\n"
    "[unit room-2]\nmax_occupants = 2\naddress = 3 Quiet Close, Cambridge CB2 1ZZ\n";

/* The offer for unit from idva's search. */
static void
s_offer(const char *idva, const char *unit, char *token, size_t len)
{
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--gender", "woman", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    json_t *doc = hh_json(&r), *o;
    size_t i;
    token[0] = '\0';
    json_array_foreach(json_object_get(doc, "offers"), i, o)
        if (strcmp(json_string_value(json_object_get(o, "unit")), unit) == 0)
            snprintf(token, len, "%s", json_string_value(json_object_get(o, "offer")));
    json_decref(doc);
    cr_assert(token[0], "no offer for %s", unit);
}

/* ---------------------------------------- 1. a retry is not charged again */

/* The rate limits (holds_per_hour, writes_per_minute) counted a write the
 * first time: its retry, answered from the kept reply, is not refused as
 * "too many" (the IDVA would be told a hold that was made had failed). */
Test(retry_bounds, a_retried_hold_at_the_hourly_limit_is_reported_made)
{
    char agent[512], idva1[512], idva2[512], idva1_r[512], idva2_r[512], ep[128];
    char token[1024];
    hh_start(&h, "[limits]\nholds_per_hour = 1\n");
    hh_provider(&h, "refuge-a", "refuge", "E07000008", two_rooms, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva1, sizeof idva1);
    hh_principal(&h, "idva", "idva-2", NULL, idva2, sizeof idva2);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-2", "available", NULL);
    relay = hh_proxy_start(&h, ep, sizeof ep);
    hh_proxy_conf(&h, idva1, ep, "idva-1-relayed", idva1_r, sizeof idva1_r);
    hh_proxy_conf(&h, idva2, ep, "idva-2-relayed", idva2_r, sizeof idva2_r);

    /* how many replies a hold takes (another key, its own hourly allowance) */
    s_offer(idva2, "room-2", token, sizeof token);
    int before = hh_proxy_passed(relay);
    hh_run(&h, &r, "haven", "--config", idva2_r, "hold", token, NULL);
    cr_assert_eq(r.code, 0, "idva-2's hold: %s", r.err);
    int replies = hh_proxy_passed(relay) - before;

    /* idva-1's one hold of the hour; its reply is lost, the client retries */
    s_offer(idva1, "room-1", token, sizeof token);
    hh_proxy_lose_reply(relay, replies - 1);
    hh_result_t hold;
    hh_run(&h, &hold, "haven", "--config", idva1_r, "--json", "hold", token, NULL);
    cr_assert_eq(hh_proxy_lost(relay), 1, "the relay lost the hold's reply");

    hh_run(&h, &r, "haven", "--config", idva1, "--json", "holds", NULL);
    cr_assert_eq(r.code, 0, "holds: %s", r.err);
    cr_assert(strstr(r.out, "\"pending\""), "the hold was made: %s", r.out);
    cr_assert_eq(hold.code, 0,
                 "the hold was made, but its retry was refused by the rate limit (exit %d): %s", hold.code,
                 hold.err);
}

/* --------------------------------------- 2. reading the inbox keeps nothing */

/* Listing the inbox is a read and keeps nothing; were each listing kept
 * for replay_window, a key reading a full inbox in a loop would store
 * 864,000 copies a day at the defaults. design.md 6.11: nobody can make
 * the broker grow without bound. */
Test(retry_bounds, reading_the_inbox_in_a_loop_does_not_grow_the_store)
{
    enum { UNITS = 40, WATCHES = 5, READS = 300 };
    char agent[512], idva[512], name[16];
    hh_start(&h, "[alerts]\ncoalesce = 0\n");
    char *cat = s_catalog(UNITS);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", cat, agent, sizeof agent);
    free(cat);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_id_t a, i;
    hh_identity(agent, &a);
    hh_identity(idva, &i);
    for (int w = 0; w < WATCHES; w++)
        s_watch_create(&i);
    for (int u = 0; u < UNITS; u++) {
        snprintf(name, sizeof name, "u%d", u);
        s_unit_set(&a, "refuge-a", name, HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    }
    Haven__Inbox in = HAVEN__INBOX__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_INBOX;
    req.inbox = &in;
    size_t alerts = 0;
    for (int k = 0; k < READS; k++) {
        Haven__Reply *rep = s_call(&i, &req);
        alerts = rep->inbox->n_alerts;
        haven__reply__free_unpacked(rep, NULL);
    }
    cr_assert_eq(alerts, (size_t) UNITS * WATCHES, "the inbox is full: %zu alerts", alerts);
    uint8_t curve[32];
    cr_assert_not_null(zmq_z85_decode(curve, hv_keys_curve_public(i.keys)));
    hh_identity_free(&a);
    hh_identity_free(&i);
    hh_stop(&h);
    s_kept_t k = s_kept(curve, NULL);
    double per_day = (double) k.bytes / READS * 600 * 1440;
    cr_assert_lt(k.bytes, (size_t) 1 << 20,
                 "%d listings that changed nothing left %zu kept replies, %zu bytes, for one key: at the "
                 "default writes_per_minute that is %.1f GB a day for one key",
                 READS, k.n, k.bytes, per_day / 1e9);
}

/* --------------------------------------- 3. revocation leaves no copies */

/* design.md 6.12: revocation ends everything the key had, its inbox
 * included: no kept reply of its (alerts name offers, units, districts,
 * phone numbers) stays in the store, or in any backup made after. */
Test(retry_bounds, revocation_leaves_no_copy_of_the_inbox_in_the_store)
{
    char agent[512], idva[512];
    hh_start(&h, NULL);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", two_rooms, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0);
    hh_run(&h, &r, "haven", "--config", idva, "inbox", NULL);   /* shown and acknowledged */
    cr_assert(strstr(r.out, "room-1"), "%s", r.out);
    hh_id_t i;
    hh_identity(idva, &i);
    uint8_t curve[32];
    cr_assert_not_null(zmq_z85_decode(curve, hv_keys_curve_public(i.keys)));
    hh_identity_free(&i);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-1", NULL);
    cr_assert_eq(r.code, 0, "revoke: %s", r.err);
    hh_stop(&h);
    s_kept_t k = s_kept(curve, "room-1");
    cr_assert_eq(k.with_needle, 0,
                 "after the revocation the store still keeps %zu replies of idva-1's naming room-1 "
                 "(%zu kept replies in all)", k.with_needle, k.n);
}

/* ------------------------ 4. the agent keeps its request ids across runs */

/* An accept whose reply was lost on every try stays queued; the next
 * haven-agent command sends it again with the same request id, and is
 * answered with the first reply (accepted), not "already accepted". */
Test(retry_bounds, an_accept_resent_by_the_next_agent_command_is_answered_as_done)
{
    char agent[512], idva[512], agent_r[512], agent_r1[512], ep[128], token[1024], id[64];
    hh_start(&h, NULL);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", two_rooms, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-2", "available", NULL);
    s_offer(idva, "room-1", token, sizeof token);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold: %s", r.err);
    json_t *doc = hh_json(&r);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);
    s_offer(idva, "room-2", token, sizeof token);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold: %s", r.err);
    doc = hh_json(&r);
    char id2[64];
    snprintf(id2, sizeof id2, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);

    relay = hh_proxy_start(&h, ep, sizeof ep);
    hh_proxy_conf(&h, agent, ep, "agent-relayed", agent_r, sizeof agent_r);
    s_conf_retries(agent_r, 1, "agent-relayed-once", agent_r1, sizeof agent_r1);
    /* how many replies an accept takes */
    int before = hh_proxy_passed(relay);
    hh_run(&h, &r, "haven-agent", "--config", agent_r1, "accept", id2, NULL);
    cr_assert_eq(r.code, 0, "accept %s: %s", id2, r.err);
    int replies = hh_proxy_passed(relay) - before;

    hh_proxy_lose_reply(relay, replies - 1);
    hh_run(&h, &r, "haven-agent", "--config", agent_r1, "accept", id, NULL);
    cr_assert_eq(hh_proxy_lost(relay), 1);
    cr_assert_neq(r.code, 0, "no reply came: the accept stays queued: %s", r.out);
    /* the next command sends what is queued */
    hh_run(&h, &r, "haven-agent", "--config", agent, "status", NULL);
    cr_assert_eq(r.code, 0,
                 "the accept was done (its reply lost); sent again it is refused as a new request "
                 "(exit %d): %s", r.code, r.err);
}

/* -------------------- 5. a confirmation with many watches costs little */

/* Watches fire when a unit newly matches; a confirmation of fresh units
 * changes nothing any watch decides on, so it must not match every unit
 * against every watch on the event loop (design.md 6.11 and 8). Measured
 * against the same confirmation with no watches, in the same run. */
Test(retry_bounds, a_confirm_with_many_watches_does_not_stall_the_broker)
{
    int units = getenv("HAVEN_WATCH_UNITS") ? atoi(getenv("HAVEN_WATCH_UNITS")) : 5000;
    int watches = getenv("HAVEN_WATCHES") ? atoi(getenv("HAVEN_WATCHES")) : 1000;
    char agent[512], idva[512], name[16];
    hh_start(&h, "[limits]\nmax_watches_per_principal = 1000\nwrites_per_minute = 1000000\n"
                 "[alerts]\ncoalesce = 86400\n");
    char *cat = s_catalog(units);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", cat, agent, sizeof agent);
    free(cat);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_id_t a, i;
    hh_identity(agent, &a);
    hh_identity(idva, &i);
    for (int u = 0; u < units; u++) {
        snprintf(name, sizeof name, "u%d", u);
        s_unit_set(&a, "refuge-a", name, HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    }
    Haven__Confirm c = HAVEN__CONFIRM__INIT;
    c.provider = "refuge-a";
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_CONFIRM;
    req.confirm = &c;
    double t0 = s_now();
    haven__reply__free_unpacked(s_call(&a, &req), NULL);
    double without = s_now() - t0;
    /* an update of a unit that is and stays available (a new version) */
    t0 = s_now();
    for (int k = 0; k < 50; k++)
        s_unit_set(&a, "refuge-a", "u0", HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    double set_without = (s_now() - t0) / 50;
    for (int w = 0; w < watches; w++)
        s_watch_create(&i);
    t0 = s_now();
    for (int k = 0; k < 50; k++)
        s_unit_set(&a, "refuge-a", "u0", HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    double set_with = (s_now() - t0) / 50;
    long hwm_before = s_broker_hwm_kib();
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        t0 = s_now();
        haven__reply__free_unpacked(s_call(&a, &req), NULL);
        double d = s_now() - t0;
        worst = d > worst ? d : worst;
    }
    fprintf(stderr, "confirm of %d units: %.1f ms with no watch, worst %.1f ms with %d watches\n", units,
            without * 1e3, worst * 1e3, watches);
    fprintf(stderr, "unit_set of an available unit: %.3f ms with no watch, %.3f ms with %d watches\n",
            set_without * 1e3, set_with * 1e3, watches);
    long hwm_after = s_broker_hwm_kib();
    fprintf(stderr, "broker peak memory: %ld MiB before the confirms, %ld MiB after\n", hwm_before >> 10,
            hwm_after >> 10);
    hh_identity_free(&a);
    hh_identity_free(&i);
    cr_assert(worst < without * 3 + 0.05 && hwm_after - hwm_before < 64 * 1024,
              "a confirm of %d units takes %.1f ms with %d watches (%.1f ms with none), and takes the broker's "
              "peak memory from %ld to %ld MiB: the event loop matches every unit against every watch twice "
              "and holds a set of watch ids per unit, though nothing changed",
              units, worst * 1e3, watches, without * 1e3, hwm_before >> 10, hwm_after >> 10);
}
