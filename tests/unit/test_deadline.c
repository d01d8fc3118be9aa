/* SPDX-License-Identifier: MIT */
/* The deadline queue (deadline.c): added and removed by key, run in time
 * order in batches, and a deadline whose hold or watch is gone counts as
 * handled. What each kind does when due: a pending hold lapses and its
 * unit is offered again, a closed hold is purged, a watch ends. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/deadline.h"

static char dir[64];
static brk_store_t *store;
static brk_ctx_t ctx;
static brk_config_t cfg = { .address_retention_s = 3600 };

#define NOW 1000000

static void
setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-deadline-XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    memset(&ctx, 0, sizeof ctx);
    ctx.cfg = &cfg;
    ctx.store = store;
    ctx.now = NOW;
}

static void
teardown(void)
{
    char cmd[128];
    free(ctx.dirty);
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(deadline, .init = setup, .fini = teardown);

/* Run the queue at now in its own transaction; returns what it handled. */
static int
s_run(int64_t now, bool *more)
{
    MDB_txn *txn;
    bool ignored;
    ctx.now = now;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    int n = brk_deadlines_run(&ctx, txn, more ? more : &ignored);
    cr_assert_geq(n, 0, "run: %d", n);
    cr_assert_eq(brk_store_commit(txn), 0);
    return n;
}

static void
s_add(int64_t when, brk_deadline_kind_t kind, const char *id)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_deadline_add(store, txn, when, kind, id), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
}

static void
s_id(char id[17], int n)
{
    snprintf(id, 17, "%016x", n);
}

Test(deadline, a_removed_deadline_never_comes)
{
    MDB_txn *txn;
    s_add(NOW - 10, BRK_DEADLINE_WATCH, "00000000000000aa");
    s_add(NOW - 10, BRK_DEADLINE_HOLD, "00000000000000bb");
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_deadline_remove(store, txn, NOW - 10, BRK_DEADLINE_WATCH, "00000000000000aa"), 0);
    /* the same id and time of another kind is another deadline */
    cr_assert_eq(brk_deadline_remove(store, txn, NOW - 10, BRK_DEADLINE_PURGE, "00000000000000bb"), 0);
    /* one that is not there is no error */
    cr_assert_eq(brk_deadline_remove(store, txn, NOW - 10, BRK_DEADLINE_WATCH, "00000000000000cc"), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_run(NOW, NULL), 1, "only the hold's deadline is left");
    cr_assert_eq(s_run(NOW, NULL), 0, "and it has left the queue");
}

Test(deadline, comes_at_its_time_not_before)
{
    s_add(NOW + 5, BRK_DEADLINE_WATCH, "00000000000000aa");
    cr_assert_eq(s_run(NOW + 4, NULL), 0);
    cr_assert_eq(s_run(NOW + 5, NULL), 1, "due at or before now");
}

Test(deadline, due_in_time_order_in_batches)
{
    char id[17];
    bool more;
    /* added out of order: 70 deadlines at NOW+1..NOW+70 */
    for (int k = 0; k < 70; k++) {
        int t = (k * 37) % 70 + 1;
        s_id(id, t);
        s_add(NOW + t, BRK_DEADLINE_WATCH, id);
    }
    cr_assert_eq(s_run(NOW + 1000, &more), BRK_DEADLINE_BATCH);
    cr_assert(more, "a full batch says there may be more");
    /* the batch took the earliest: nothing at or before NOW+64 is left */
    cr_assert_eq(s_run(NOW + BRK_DEADLINE_BATCH, &more), 0);
    cr_assert(!more);
    cr_assert_eq(s_run(NOW + 1000, &more), 70 - BRK_DEADLINE_BATCH);
    cr_assert(!more);
}

Test(deadline, one_whose_hold_or_watch_is_gone_counts_as_handled)
{
    s_add(NOW - 1, BRK_DEADLINE_HOLD, "00000000000000aa");
    s_add(NOW - 1, BRK_DEADLINE_PURGE, "00000000000000bb");
    s_add(NOW - 1, BRK_DEADLINE_WATCH, "00000000000000cc");
    cr_assert_eq(s_run(NOW, NULL), 3);
    cr_assert_eq(s_run(NOW, NULL), 0, "and none is left to stop the queue");
}

static void
s_put_hold(const char *id, Haven__HoldState state)
{
    MDB_txn *txn;
    char key[160];
    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit u = HAVEN__UNIT__INIT;
    spec.name = "room-1";
    u.provider = "refuge-1";
    u.spec = &spec;
    u.status = HAVEN__UNIT_STATUS__UNIT_HELD;
    Haven__Hold h = HAVEN__HOLD__INIT;
    h.id = (char *) id;
    h.provider = "refuge-1";
    h.unit = "room-1";
    h.state = state;
    h.has_expires_at = 1;
    h.expires_at = NOW;
    int klen = brk_unit_key("refuge-1", "room-1", key, sizeof key);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &u.base), 0);
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_HOLDS, id, strlen(id), &h.base), 0);
    cr_assert_eq(brk_deadline_add(store, txn, NOW, BRK_DEADLINE_HOLD, id), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
}

/* The state of hold id, or -1 if it is gone. */
static int
s_hold_state(const char *id)
{
    MDB_txn *txn;
    Haven__Hold *h = NULL;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    int rc = brk_store_get_msg(store, txn, BRK_DB_HOLDS, id, strlen(id), &haven__hold__descriptor,
                               (ProtobufCMessage **) &h);
    brk_store_abort(txn);
    cr_assert(rc == 0 || rc == -ENOENT, "%d", rc);
    if (rc < 0)
        return -1;
    int state = h->state;
    cr_assert(state != HAVEN__HOLD_STATE__HOLD_EXPIRED || h->closed_at == NOW, "a lapse closes the hold now");
    haven__hold__free_unpacked(h, NULL);
    return state;
}

static int
s_unit_status(void)
{
    MDB_txn *txn;
    char key[160];
    Haven__Unit *u = NULL;
    int klen = brk_unit_key("refuge-1", "room-1", key, sizeof key);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &haven__unit__descriptor,
                                   (ProtobufCMessage **) &u), 0);
    brk_store_abort(txn);
    int status = u->status;
    haven__unit__free_unpacked(u, NULL);
    return status;
}

Test(deadline, a_pending_hold_lapses_then_is_purged)
{
    s_put_hold("00000000000000aa", HAVEN__HOLD_STATE__HOLD_PENDING);
    cr_assert_eq(s_run(NOW, NULL), 1);
    cr_assert_eq(s_hold_state("00000000000000aa"), HAVEN__HOLD_STATE__HOLD_EXPIRED);
    cr_assert_eq(s_unit_status(), HAVEN__UNIT_STATUS__UNIT_AVAILABLE, "the unit is offered again");
    /* the closed hold's purge is queued address_retention on */
    cr_assert_eq(s_run(NOW + cfg.address_retention_s - 1, NULL), 0);
    cr_assert_eq(s_run(NOW + cfg.address_retention_s, NULL), 1);
    cr_assert_eq(s_hold_state("00000000000000aa"), -1, "purged");
}

Test(deadline, a_hold_answered_in_time_does_not_lapse)
{
    s_put_hold("00000000000000aa", HAVEN__HOLD_STATE__HOLD_ACCEPTED);
    cr_assert_eq(s_run(NOW, NULL), 1);
    cr_assert_eq(s_hold_state("00000000000000aa"), HAVEN__HOLD_STATE__HOLD_ACCEPTED);
    cr_assert_eq(s_unit_status(), HAVEN__UNIT_STATUS__UNIT_HELD);
}

Test(deadline, a_watch_ends)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_WATCHES, "00000000000000aa", 16, "x", 1), 0);
    cr_assert_eq(brk_deadline_add(store, txn, NOW, BRK_DEADLINE_WATCH, "00000000000000aa"), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_run(NOW, NULL), 1);
    const void *val;
    size_t vlen;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_WATCHES, "00000000000000aa", 16, &val, &vlen), -ENOENT);
    brk_store_abort(txn);
    cr_assert_eq(ctx.n_dirty, 1, "the watch cache is told");
    cr_assert_eq(ctx.dirty[0].kind, BRK_DIRTY_WATCH);
    cr_assert_str_eq(ctx.dirty[0].unit, "00000000000000aa");
}
