/* SPDX-License-Identifier: MIT */
/* Replies to recent writes: a retry (same key, id and bytes) finds the
 * first reply; other bytes under the same id, another key, or a reply
 * past the window do not; INTERNAL and LIMIT replies are never kept. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/replay.h"
#include "haven.pb-c.h"

static char dir[64];
static brk_store_t *store;
static MDB_txn *txn;
static const uint8_t alice[32] = { 1 }, bob[32] = { 2 };

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-replay-XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 64 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
}
static void teardown(void)
{
    char cmd[128];
    brk_store_abort(txn);
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(replay, .init = setup, .fini = teardown);

static void
s_keep(const uint8_t key[32], uint64_t id, const char *request, int64_t at, const char *reply)
{
    uint8_t d[BRK_REPLAY_DIGEST];
    brk_replay_digest(request, strlen(request), d);
    cr_assert_eq(brk_replay_keep(store, txn, key, id, d, at, HAVEN__STATUS__STATUS_OK, (const uint8_t *) reply,
                                 strlen(reply)), 0);
}

static int
s_find(const uint8_t key[32], uint64_t id, const char *request, char *out, size_t len)
{
    uint8_t d[BRK_REPLAY_DIGEST], *reply = NULL;
    size_t rlen = 0;
    int status = -1;
    brk_replay_digest(request, strlen(request), d);
    int rc = brk_replay_find(store, txn, key, id, d, &reply, &rlen, &status);
    if (rc == 0) {
        cr_assert_eq(status, HAVEN__STATUS__STATUS_OK);
        snprintf(out, len, "%.*s", (int) rlen, (const char *) reply);
        free(reply);
    }
    return rc;
}

Test(replay, a_retry_gets_the_first_reply)
{
    char out[64];
    s_keep(alice, 7, "hold room-1", 1000, "held: 0123");
    cr_assert_eq(s_find(alice, 7, "hold room-1", out, sizeof out), 0);
    cr_assert_str_eq(out, "held: 0123");
}

Test(replay, only_the_same_key_id_and_bytes_are_a_retry)
{
    char out[64];
    s_keep(alice, 7, "hold room-1", 1000, "held: 0123");
    cr_assert_eq(s_find(bob, 7, "hold room-1", out, sizeof out), -ENOENT, "another principal's id");
    cr_assert_eq(s_find(alice, 8, "hold room-1", out, sizeof out), -ENOENT, "another id");
    cr_assert_eq(s_find(alice, 7, "hold room-2", out, sizeof out), -ENOENT, "the same id for other bytes");
    /* a new request under the same id replaces the kept reply */
    s_keep(alice, 7, "hold room-2", 1001, "held: 4567");
    cr_assert_eq(s_find(alice, 7, "hold room-2", out, sizeof out), 0);
    cr_assert_str_eq(out, "held: 4567");
}

Test(replay, pruning_forgets_only_replies_older_than_the_window)
{
    char out[64];
    bool more = true;
    s_keep(alice, 1, "a", 100, "old");
    s_keep(alice, 2, "b", 200, "new");
    s_keep(bob, 1, "c", 150, "older than 160");
    cr_assert_eq(brk_replay_prune(store, txn, 160, 100, &more), 2);
    cr_assert(!more);
    cr_assert_eq(s_find(alice, 1, "a", out, sizeof out), -ENOENT);
    cr_assert_eq(s_find(bob, 1, "c", out, sizeof out), -ENOENT);
    cr_assert_eq(s_find(alice, 2, "b", out, sizeof out), 0);
}

Test(replay, pruning_in_batches_says_there_is_more)
{
    bool more = false;
    for (uint64_t i = 0; i < 5; i++)
        s_keep(alice, i, "x", (int64_t) i, "r");
    cr_assert_eq(brk_replay_prune(store, txn, 100, 3, &more), 3);
    cr_assert(more);
    cr_assert_eq(brk_replay_prune(store, txn, 100, 3, &more), 2);
    cr_assert(!more);
}

Test(replay, a_replaced_reply_outlives_the_entry_that_dated_the_old_one)
{
    char out[64];
    bool more;
    s_keep(alice, 7, "first", 100, "one");
    s_keep(alice, 7, "second", 300, "two");
    cr_assert_eq(brk_replay_prune(store, txn, 200, 100, &more), 1);
    cr_assert_eq(s_find(alice, 7, "second", out, sizeof out), 0, "the newer reply is kept");
    cr_assert_str_eq(out, "two");
}

Test(replay, replies_that_say_nothing_was_done_are_not_kept)
{
    cr_assert(brk_replay_keeps(HAVEN__STATUS__STATUS_OK));
    cr_assert(brk_replay_keeps(HAVEN__STATUS__STATUS_CONFLICT));
    cr_assert(brk_replay_keeps(HAVEN__STATUS__STATUS_BAD_REQUEST));
    cr_assert(!brk_replay_keeps(HAVEN__STATUS__STATUS_INTERNAL));
    cr_assert(!brk_replay_keeps(HAVEN__STATUS__STATUS_LIMIT));
}

Test(replay, a_key_keeps_a_bounded_number_of_replies_of_bounded_size)
{
    uint8_t d[BRK_REPLAY_DIGEST];
    static uint8_t big[BRK_REPLAY_MAX_BYTES + 1];
    brk_replay_digest("x", 1, d);
    cr_assert_eq(brk_replay_keep(store, txn, alice, 1, d, 1, HAVEN__STATUS__STATUS_OK, big, sizeof big), 1,
                 "a reply over the size cap is not kept");
    for (uint64_t i = 0; i < BRK_REPLAY_PER_KEY; i++)
        cr_assert_eq(brk_replay_keep(store, txn, alice, i, d, 1, HAVEN__STATUS__STATUS_OK, (const uint8_t *) "r", 1),
                     0);
    cr_assert_eq(brk_replay_keep(store, txn, alice, 99999, d, 1, HAVEN__STATUS__STATUS_OK,
                                 (const uint8_t *) "r", 1), 1, "the key has all it may keep");
    cr_assert_eq(brk_replay_keep(store, txn, alice, 5, d, 2, HAVEN__STATUS__STATUS_OK, (const uint8_t *) "s", 1),
                 0, "replacing one it has is not one more");
    cr_assert_eq(brk_replay_keep(store, txn, bob, 1, d, 1, HAVEN__STATUS__STATUS_OK, (const uint8_t *) "r", 1), 0,
                 "another key is not held back");
    bool more;
    cr_assert_eq(brk_replay_prune(store, txn, 2, 100, &more), 100, "pruning frees room");
    cr_assert_eq(brk_replay_keep(store, txn, alice, 99999, d, 3, HAVEN__STATUS__STATUS_OK,
                                 (const uint8_t *) "r", 1), 0);
}

Test(replay, revocation_forgets_every_reply_of_the_key)
{
    char out[64];
    bool more;
    s_keep(alice, 1, "a", 100, "one");
    s_keep(alice, 2, "b", 100, "two");
    s_keep(bob, 1, "a", 100, "bob's");
    cr_assert_eq(brk_replay_forget(store, txn, alice), 2);
    cr_assert_eq(s_find(alice, 1, "a", out, sizeof out), -ENOENT);
    cr_assert_eq(s_find(bob, 1, "a", out, sizeof out), 0);
    /* the time index's entries left behind are pruned without harm */
    cr_assert_eq(brk_replay_prune(store, txn, 200, 100, &more), 3);
    cr_assert_eq(s_find(bob, 1, "a", out, sizeof out), -ENOENT);
}
