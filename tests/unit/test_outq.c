/* SPDX-License-Identifier: MIT */
/* Unit tests: replies waiting for a slow reader (broker/outq.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <zmq.h>
#include "../../broker/outq.h"

static void *s_ctx, *s_router, *s_dealer;
static uint8_t s_rid[256];
static size_t s_rid_len;

/* A ROUTER that may queue one reply per connection, and a DEALER that
 * reads only when the test says so. */
static void
setup(void)
{
    int one = 1, hwm = 1;
    char buf[8];
    s_ctx = zmq_ctx_new();
    s_router = zmq_socket(s_ctx, ZMQ_ROUTER);
    s_dealer = zmq_socket(s_ctx, ZMQ_DEALER);
    zmq_setsockopt(s_router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s_router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s_dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    cr_assert_eq(zmq_bind(s_router, "inproc://outq-test"), 0);
    cr_assert_eq(zmq_connect(s_dealer, "inproc://outq-test"), 0);
    cr_assert_eq(zmq_send(s_dealer, "hi", 2, 0), 2);
    int n = zmq_recv(s_router, s_rid, sizeof s_rid, 0);
    cr_assert_gt(n, 0);
    s_rid_len = (size_t) n;
    cr_assert_eq(zmq_recv(s_router, buf, sizeof buf, 0), 2);
}

static void
teardown(void)
{
    zmq_close(s_dealer);
    zmq_close(s_router);
    zmq_ctx_term(s_ctx);
}

TestSuite(outq, .init = setup, .fini = teardown);

static int
s_read_all(int timeout_ms)
{
    int got = 0;
    char buf[64];
    zmq_pollitem_t item = { s_dealer, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll(&item, 1, timeout_ms) == 1 && zmq_recv(s_dealer, buf, sizeof buf, 0) >= 0)
        got++;
    return got;
}

Test(outq, replies_past_the_connection_queue_wait_in_order_and_all_arrive)
{
    brk_outq_t *q = brk_outq_new(s_router, 1 << 20, 10000);
    char msg[16];
    for (int i = 0; i < 50; i++) {
        snprintf(msg, sizeof msg, "%d", i);
        cr_assert_eq(brk_outq_send(q, s_rid, s_rid_len, "KEY", msg, strlen(msg) + 1, 0), 0);
    }
    cr_assert_gt(brk_outq_bytes(q, "KEY"), 0, "a reader that does not read: replies wait in the broker");
    /* The reader reads; what waits follows, in order. */
    int next = 0;
    for (int round = 0; round < 1000 && next < 50; round++) {
        brk_outq_flush(q, 0);
        zmq_pollitem_t item = { s_dealer, 0, ZMQ_POLLIN, 0 };
        while (zmq_poll(&item, 1, 10) == 1) {
            char buf[16];
            cr_assert_gt(zmq_recv(s_dealer, buf, sizeof buf, 0), 0);
            cr_assert_eq(atoi(buf), next, "reply %d came out of order (%s)", next, buf);
            next++;
        }
    }
    cr_assert_eq(next, 50, "every reply arrives once the reader reads (%d)", next);
    cr_assert_eq(brk_outq_flush(q, 0), 0);
    cr_assert_eq(brk_outq_bytes(q, "KEY"), 0);
    brk_outq_destroy(&q);
}

Test(outq, a_principal_may_have_at_most_limit_bytes_waiting)
{
    brk_outq_t *q = brk_outq_new(s_router, 1000, 10000);
    char big[300] = { 0 };
    int dropped = 0;
    for (int i = 0; i < 20; i++)
        dropped += brk_outq_send(q, s_rid, s_rid_len, "KEY", big, sizeof big, 0) == -ENOBUFS;
    cr_assert_gt(dropped, 0, "past the limit replies are dropped");
    cr_assert_leq(brk_outq_bytes(q, "KEY"), 1000);
    cr_assert_eq(brk_outq_bytes(q, "OTHER"), 0, "another principal is not charged");
    brk_outq_destroy(&q);
}

Test(outq, replies_that_waited_too_long_are_dropped)
{
    brk_outq_t *q = brk_outq_new(s_router, 1 << 20, 100);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(brk_outq_send(q, s_rid, s_rid_len, "KEY", "x", 2, 0), 0);
    size_t waiting = brk_outq_flush(q, 50);
    cr_assert_gt(waiting, 0, "within max_wait they wait");
    cr_assert_eq(brk_outq_flush(q, 1000), 0, "past max_wait they are gone");
    cr_assert_eq(brk_outq_bytes(q, "KEY"), 0);
    cr_assert_leq(s_read_all(50), 10);
    brk_outq_destroy(&q);
}

Test(outq, a_connection_that_is_gone_is_refused)
{
    brk_outq_t *q = brk_outq_new(s_router, 1 << 20, 10000);
    cr_assert_eq(brk_outq_send(q, "nobody", 6, "KEY", "x", 2, 0), -EHOSTUNREACH);
    brk_outq_destroy(&q);
}
