/* SPDX-License-Identifier: MIT */
/* What one principal may cost the broker: rates, requests per cycle,
 * connections per key, silent connections, the batch's decode budget and
 * the refusals counted for the audit log (design.md section 6, item 11). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/guard.h"
#include "../../proto/wire.h"

/* Two registered keys (Z85 of a CURVE public key) and one more. */
#define KEY_A "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define KEY_B "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define KEY_C "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"

/* Base of the injected monotonic clock: not zero, like a real one. */
#define T0 5000000LL

static brk_config_t s_cfg;
static brk_guard_t *s_guard;

static void
setup(void)
{
    memset(&s_cfg, 0, sizeof s_cfg);
    s_cfg.searches_per_minute = 3;
    s_cfg.writes_per_minute = 10;
    s_cfg.holds_per_hour = 2;
    s_cfg.connections_per_key = 2;
    s_cfg.requests_in_flight = 4;
    s_cfg.batch_memory_mb = 1;
    s_guard = brk_guard_new(&s_cfg);
    cr_assert_not_null(s_guard);
}

static void
teardown(void)
{
    brk_guard_destroy(&s_guard);
    cr_assert_null(s_guard, "destroy clears the caller's pointer");
    brk_guard_destroy(&s_guard);     /* and accepts NULL */
}

TestSuite(guard, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- rates */

Test(guard, a_search_rate_allows_a_burst_then_refuses_then_refills)
{
    for (int i = 0; i < 3; i++)
        cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0), "search %d of the burst", i + 1);
    cr_assert_not(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0), "the 4th search in the same instant");
    /* 3 a minute: one comes back every 20 s, not sooner */
    cr_assert_not(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0 + 19000));
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0 + 20000), "one search refilled after 20 s");
    cr_assert_not(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0 + 20000));
    /* a long rest gives back the burst, never more than the burst */
    int allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0 + 3600000);
    cr_assert_eq(allowed, 3, "after an hour's rest: %d searches at once", allowed);
}

Test(guard, rates_are_per_key_and_per_kind)
{
    for (int i = 0; i < 3; i++)
        cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0));
    cr_assert_not(brk_guard_rate(s_guard, KEY_A, BRK_RATE_SEARCH, T0));
    /* another IDVA is not held back by the first one's searching */
    cr_assert(brk_guard_rate(s_guard, KEY_B, BRK_RATE_SEARCH, T0));
    /* nor are the first one's writes and holds */
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_WRITE, T0));
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_HOLD, T0));
}

Test(guard, holds_are_counted_per_hour)
{
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_HOLD, T0));
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_HOLD, T0 + 1000));
    cr_assert_not(brk_guard_rate(s_guard, KEY_A, BRK_RATE_HOLD, T0 + 2000), "a 3rd hold within the hour");
    /* 2 an hour: one comes back after 30 minutes, not after one */
    cr_assert_not(brk_guard_rate(s_guard, KEY_A, BRK_RATE_HOLD, T0 + 61000),
                  "a per-minute window would allow this hold");
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_HOLD, T0 + 1800000 + 1000));
}

Test(guard, writes_have_their_own_burst)
{
    int allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += brk_guard_rate(s_guard, KEY_A, BRK_RATE_WRITE, T0);
    cr_assert_eq(allowed, 10, "writes_per_minute = 10 allowed %d at once", allowed);
    cr_assert(brk_guard_rate(s_guard, KEY_A, BRK_RATE_WRITE, T0 + 6000), "one write back after 6 s");
}

/* ---------------------------------------------------------------- batches */

Test(guard, requests_in_flight_are_counted_per_batch)
{
    for (int i = 0; i < 4; i++) {
        cr_assert_not(brk_guard_batch_full(s_guard), "the cycle takes request %d", i + 1);
        cr_assert(brk_guard_take(s_guard, KEY_A), "request %d of the cycle", i + 1);
    }
    cr_assert(brk_guard_batch_full(s_guard), "the 4th request of one key ends the cycle");
    cr_assert_not(brk_guard_take(s_guard, KEY_A), "a 5th request in one cycle");
    cr_assert_not(brk_guard_take(s_guard, KEY_A));
    /* another principal's requests are not refused for it */
    cr_assert(brk_guard_take(s_guard, KEY_B));
    /* the batch is answered: the key may send again */
    brk_guard_batch_end(s_guard);
    cr_assert_not(brk_guard_batch_full(s_guard), "a new cycle takes requests again");
    for (int i = 0; i < 4; i++)
        cr_assert(brk_guard_take(s_guard, KEY_A), "request %d of the next cycle", i + 1);
    cr_assert_not(brk_guard_take(s_guard, KEY_A));
}

Test(guard, the_allocator_refuses_past_the_batch_budget)
{
    ProtobufCAllocator *a = brk_guard_allocator(s_guard);
    cr_assert_not_null(a);
    cr_assert_not(brk_guard_batch_full(s_guard));
    void *p1 = a->alloc(a->allocator_data, 600 << 10);
    cr_assert_not_null(p1, "600 KiB of a 1 MiB budget");
    memset(p1, 1, 600 << 10);
    cr_assert_null(a->alloc(a->allocator_data, 600 << 10), "another 600 KiB goes past 1 MiB");
    cr_assert_not(brk_guard_batch_full(s_guard), "a refused allocation does not spend the budget");
    void *p2 = a->alloc(a->allocator_data, 424 << 10);
    cr_assert_not_null(p2, "what is left fits exactly");
    cr_assert(brk_guard_batch_full(s_guard), "the whole budget is spent: take no more requests");
    cr_assert_null(a->alloc(a->allocator_data, 1));
    a->free(a->allocator_data, p1);
    a->free(a->allocator_data, p2);
    brk_guard_batch_end(s_guard);
    cr_assert_not(brk_guard_batch_full(s_guard), "a new batch has a new budget");
    void *p3 = a->alloc(a->allocator_data, 1 << 20);
    cr_assert_not_null(p3, "the whole budget, in the next batch");
    a->free(a->allocator_data, p3);
}

Test(guard, a_request_too_big_for_the_budget_is_not_decoded)
{
    /* a search whose need carries ~1.5 MiB of excluded districts: more than
     * the 1 MiB one batch may decode */
    enum { N = 200000 };
    char **ex = calloc(N, sizeof *ex);
    cr_assert_not_null(ex);
    for (int i = 0; i < N; i++)
        ex[i] = "E07000008";
    Haven__Need need = HAVEN__NEED__INIT;
    need.exclude = ex;
    need.n_exclude = N;
    Haven__Search s = HAVEN__SEARCH__INIT;
    s.need = &need;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 77;
    req.body_case = HAVEN__REQUEST__BODY_SEARCH;
    req.search = &s;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(hv_pack(&req.base, &buf, &len), 0);
    free(ex);
    Haven__Request *out = NULL;
    uint64_t id = 0;
    char err[256];
    int rc = hv_request_decode_alloc(buf, len, brk_guard_allocator(s_guard), &out, &id, err, sizeof err);
    cr_assert_eq(rc, -ENOMEM, "decoding %zu bytes within a 1 MiB budget: %d", len, rc);
    cr_assert_null(out);
    cr_assert_eq(id, 77, "the refusal can still be matched to the request");
    cr_assert(strstr(err, "memory"), "%s", err);
    free(buf);
}

/* ---------------------------------------------------------------- connections */

Test(guard, connections_per_key_are_limited)
{
    brk_guard_conn_open(s_guard, 10, T0);
    brk_guard_conn_open(s_guard, 11, T0);
    brk_guard_conn_open(s_guard, 12, T0);
    cr_assert_eq(brk_guard_conn_attach(s_guard, 10, KEY_A, "idva-1"), 0);
    cr_assert_not(brk_guard_conn_full(s_guard, KEY_A));
    cr_assert_eq(brk_guard_conn_attach(s_guard, 11, KEY_A, "idva-1"), 0);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_A), 2);
    cr_assert(brk_guard_conn_full(s_guard, KEY_A), "the ZAP handler refuses a third");
    cr_assert_eq(brk_guard_conn_attach(s_guard, 12, KEY_A, "idva-1"), -EMFILE);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_A), 2, "the refused one is not counted");
    /* more requests on a connection already counted are fine */
    cr_assert_eq(brk_guard_conn_attach(s_guard, 10, KEY_A, "idva-1"), 0);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_A), 2);
    /* another key has its own allowance */
    brk_guard_conn_open(s_guard, 13, T0);
    cr_assert_not(brk_guard_conn_full(s_guard, KEY_B));
    cr_assert_eq(brk_guard_conn_attach(s_guard, 13, KEY_B, "idva-2"), 0);
    /* one closes: a slot is free again */
    brk_guard_conn_close(s_guard, 10);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_A), 1);
    cr_assert_not(brk_guard_conn_full(s_guard, KEY_A));
    cr_assert_eq(brk_guard_conn_attach(s_guard, 12, KEY_A, "idva-1"), 0);
    cr_assert(brk_guard_conn_full(s_guard, KEY_A));
    /* closing what is unknown or already closed changes nothing */
    brk_guard_conn_close(s_guard, 10);
    brk_guard_conn_close(s_guard, 99);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_A), 2);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_C), 0);
}

Test(guard, a_reused_descriptor_does_not_leak_a_slot)
{
    /* the close of fd 10 was missed; the kernel gives 10 to a new connection */
    brk_guard_conn_open(s_guard, 10, T0);
    cr_assert_eq(brk_guard_conn_attach(s_guard, 10, KEY_A, "idva-1"), 0);
    brk_guard_conn_open(s_guard, 10, T0 + 5);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_A), 0);
    cr_assert_eq(brk_guard_conn_attach(s_guard, 10, KEY_B, "idva-2"), 0);
    cr_assert_eq(brk_guard_conn_count(s_guard, KEY_B), 1);
}

typedef struct {
    int fds[16];
    int n;
} s_dropped_t;

static void
s_drop(void *arg, int fd)
{
    s_dropped_t *d = arg;
    cr_assert_lt(d->n, 16);
    d->fds[d->n++] = fd;
}

static bool
s_has(const s_dropped_t *d, int fd)
{
    for (int i = 0; i < d->n; i++)
        if (d->fds[i] == fd)
            return true;
    return false;
}

Test(guard, silent_connections_are_dropped_after_silent_ms_and_not_before)
{
    s_dropped_t d = { { 0 }, 0 };
    brk_guard_conn_open(s_guard, 20, T0);           /* never says anything */
    brk_guard_conn_open(s_guard, 21, T0);           /* sends a request */
    brk_guard_conn_open(s_guard, 22, T0 + 20000);   /* silent, but newer */
    cr_assert_eq(brk_guard_conn_attach(s_guard, 21, KEY_A, "idva-1"), 0);
    brk_guard_conn_each_to_drop(s_guard, T0 + 29999, 30000, NULL, s_drop, &d);
    cr_assert_eq(d.n, 0, "nothing is silent for 30 s yet (dropped %d)", d.n);
    brk_guard_conn_each_to_drop(s_guard, T0 + 30001, 30000, NULL, s_drop, &d);
    cr_assert_eq(d.n, 1, "only the connection silent for over 30 s (dropped %d)", d.n);
    cr_assert_eq(d.fds[0], 20);
    d.n = 0;
    brk_guard_conn_each_to_drop(s_guard, T0 + 50001, 30000, NULL, s_drop, &d);
    cr_assert(s_has(&d, 22), "the newer silent one, in its turn");
    cr_assert_not(s_has(&d, 21), "a connection that sent a request is never silent");
}

Test(guard, a_keys_connections_are_reported_for_dropping)
{
    s_dropped_t d = { { 0 }, 0 };
    for (int fd = 30; fd < 34; fd++)
        brk_guard_conn_open(s_guard, fd, T0);
    cr_assert_eq(brk_guard_conn_attach(s_guard, 30, KEY_A, "idva-1"), 0);
    cr_assert_eq(brk_guard_conn_attach(s_guard, 31, KEY_A, "idva-1"), 0);
    cr_assert_eq(brk_guard_conn_attach(s_guard, 32, KEY_B, "idva-2"), 0);
    /* revoked: every connection of KEY_A, and nobody else's (the silent
     * fd 33 is not yet 30 s old) */
    brk_guard_conn_each_to_drop(s_guard, T0 + 1000, 30000, KEY_A, s_drop, &d);
    cr_assert_eq(d.n, 2, "dropped %d", d.n);
    cr_assert(s_has(&d, 30) && s_has(&d, 31));
    d.n = 0;
    brk_guard_conn_each_to_drop(s_guard, T0 + 1000, 30000, KEY_C, s_drop, &d);
    cr_assert_eq(d.n, 0, "a key with no connections has none to drop");
}

/* ---------------------------------------------------------------- refusals */

typedef struct {
    int calls;
    uint32_t idva[BRK_REFUSE__COUNT];
    uint32_t unknown[BRK_REFUSE__COUNT];
    bool saw_idva, saw_unknown;
} s_taken_t;

static void
s_take(void *arg, const char *name, const uint32_t *counts)
{
    s_taken_t *t = arg;
    t->calls++;
    if (!name) {
        t->saw_unknown = true;
        memcpy(t->unknown, counts, sizeof t->unknown);
    } else {
        cr_assert_str_eq(name, "idva-1");
        t->saw_idva = true;
        memcpy(t->idva, counts, sizeof t->idva);
    }
}

Test(guard, refusals_are_aggregated_per_name_and_cleared_when_taken)
{
    for (int i = 0; i < 300; i++)
        brk_guard_refused(s_guard, "idva-1", BRK_REFUSE_ROLE);
    brk_guard_refused(s_guard, "idva-1", BRK_REFUSE_SIZE);
    brk_guard_refused(s_guard, "idva-1", BRK_REFUSE_SIZE);
    for (int i = 0; i < 4; i++)
        brk_guard_refused(s_guard, NULL, BRK_REFUSE_UNKNOWN_KEY);
    brk_guard_refused(s_guard, "", BRK_REFUSE_UNKNOWN_KEY);    /* no name: an unknown key too */
    brk_guard_refused(s_guard, NULL, BRK_REFUSE_SILENT);
    s_taken_t t;
    memset(&t, 0, sizeof t);
    brk_guard_refusals_take(s_guard, s_take, &t);
    cr_assert_eq(t.calls, 2, "one record per principal, not one per refusal (%d)", t.calls);
    cr_assert(t.saw_idva && t.saw_unknown);
    cr_assert_eq(t.idva[BRK_REFUSE_ROLE], 300);
    cr_assert_eq(t.idva[BRK_REFUSE_SIZE], 2);
    cr_assert_eq(t.idva[BRK_REFUSE_RATE], 0);
    cr_assert_eq(t.unknown[BRK_REFUSE_UNKNOWN_KEY], 5);
    cr_assert_eq(t.unknown[BRK_REFUSE_SILENT], 1);
    /* taken: the next minute starts from nothing */
    memset(&t, 0, sizeof t);
    brk_guard_refusals_take(s_guard, s_take, &t);
    cr_assert_eq(t.calls, 0);
    brk_guard_refused(s_guard, "idva-1", BRK_REFUSE_RATE);
    brk_guard_refusals_take(s_guard, s_take, &t);
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(t.idva[BRK_REFUSE_RATE], 1);
    cr_assert_eq(t.idva[BRK_REFUSE_ROLE], 0, "last minute's refusals are not counted again");
}

Test(guard, refusals_have_names_for_the_audit_log)
{
    cr_assert_str_eq(brk_refusal_name(BRK_REFUSE_ROLE), "wrong-role");
    cr_assert_str_eq(brk_refusal_name(BRK_REFUSE_SIZE), "too-large");
    cr_assert_str_eq(brk_refusal_name(BRK_REFUSE_CONNECTIONS), "too-many-connections");
    cr_assert_str_eq(brk_refusal_name(BRK_REFUSE_IN_FLIGHT), "too-many-in-flight");
    for (int i = 0; i < BRK_REFUSE__COUNT; i++) {
        const char *n = brk_refusal_name((brk_refusal_t) i);
        cr_assert(n && *n && !strchr(n, ' ') && strcmp(n, "?") != 0, "refusal %d has no name", i);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(n, brk_refusal_name((brk_refusal_t) j), "two refusals are both '%s'", n);
    }
    cr_assert_str_eq(brk_refusal_name(BRK_REFUSE__COUNT), "?");
}
