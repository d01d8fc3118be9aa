/* SPDX-License-Identifier: MIT */
/* The LMDB store: records, prefixes, nested transactions, map growth. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/store.h"
#include "haven.pb-c.h"

static char dir[64];
static brk_store_t *store;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-store-XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
}
static void teardown(void)
{
    char cmd[128];
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(store, .init = setup, .fini = teardown);

static void
s_put_unit(MDB_txn *txn, const char *provider, const char *name)
{
    char key[160];
    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit u = HAVEN__UNIT__INIT;
    spec.name = (char *) name;
    u.provider = (char *) provider;
    u.spec = &spec;
    u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    int klen = brk_unit_key(provider, name, key, sizeof key);
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &u.base), 0);
}

Test(store, records_round_trip_and_survive_reopen)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_unit(txn, "refuge-1", "room-1");
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);

    Haven__Unit *u = NULL;
    char key[160];
    int klen = brk_unit_key("refuge-1", "room-1", key, sizeof key);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen,
                                   &haven__unit__descriptor, (ProtobufCMessage **) &u), 0);
    cr_assert_str_eq(u->spec->name, "room-1");
    cr_assert_eq(u->status, HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    haven__unit__free_unpacked(u, NULL);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_UNITS, "nope", 4, &haven__unit__descriptor,
                                   (ProtobufCMessage **) &u), -ENOENT);
    brk_store_abort(txn);
}

Test(store, prefix_scan_stays_within_its_provider)
{
    MDB_txn *txn;
    brk_store_list_t l;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_unit(txn, "a", "1");
    s_put_unit(txn, "ab", "1");       /* "a" is a prefix of "ab": the NUL keeps them apart */
    s_put_unit(txn, "a", "2");
    s_put_unit(txn, "b", "1");
    cr_assert_eq(brk_store_list(store, txn, BRK_DB_UNITS, "a", 2, &haven__unit__descriptor, &l), 0);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(((Haven__Unit *) l.items[0])->spec->name, "1");
    cr_assert_str_eq(((Haven__Unit *) l.items[1])->spec->name, "2");
    brk_store_list_free(&l);
    size_t count;
    cr_assert_eq(brk_store_count(store, txn, BRK_DB_UNITS, &count), 0);
    cr_assert_eq(count, 4);
    brk_store_abort(txn);
}

Test(store, aborted_child_leaves_nothing)
{
    MDB_txn *txn, *child;
    size_t count;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_unit(txn, "a", "kept");
    cr_assert_eq(brk_store_begin(store, txn, true, &child), 0);
    cr_assert_eq(brk_store_put(store, child, BRK_DB_META, "x", 1, "y", 1), 0);
    brk_store_abort(child);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_count(store, txn, BRK_DB_META, &count), 0);
    cr_assert_eq(count, 0);
    cr_assert_eq(brk_store_count(store, txn, BRK_DB_UNITS, &count), 0);
    cr_assert_eq(count, 1);
    brk_store_abort(txn);
}

Test(store, map_full_is_reported_then_growth_lets_the_write_through)
{
    MDB_txn *txn;
    char val[2048];
    memset(val, 'x', sizeof val);
    int rc = 0, i;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (i = 0; i < 10000 && rc == 0; i++) {
        char key[16];
        snprintf(key, sizeof key, "%08d", i);
        rc = brk_store_put(store, txn, BRK_DB_META, key, 8, val, sizeof val);
    }
    cr_assert_eq(rc, -ENOSPC, "a 1 MiB map must fill up");
    brk_store_abort(txn);        /* LMDB: the transaction is dead after MAP_FULL */
    size_t before = brk_store_map_size(store);
    while (rc == -ENOSPC) {
        cr_assert_eq(brk_store_grow(store), 0);
        cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
        rc = 0;
        for (int k = 0; k < i && rc == 0; k++) {
            char key[16];
            snprintf(key, sizeof key, "%08d", k);
            rc = brk_store_put(store, txn, BRK_DB_META, key, 8, val, sizeof val);
        }
        if (rc == 0)
            rc = brk_store_commit(txn);
        else
            brk_store_abort(txn);
    }
    cr_assert_eq(rc, 0);
    cr_assert_gt(brk_store_map_size(store), before);
}

Test(store, lmdb_codes_translate_in_one_place)
{
    cr_assert_eq(brk_lmdb_error(MDB_SUCCESS), 0);
    cr_assert_eq(brk_lmdb_error(MDB_NOTFOUND), -ENOENT);
    cr_assert_eq(brk_lmdb_error(MDB_MAP_FULL), -ENOSPC);
    cr_assert_eq(brk_lmdb_error(MDB_CORRUPTED), -EILSEQ);
    cr_assert_eq(brk_lmdb_error(EACCES), -EACCES);
}

Test(store, hot_copy)
{
    MDB_txn *txn;
    char copy[96];
    brk_store_t *other = NULL;
    size_t count;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_unit(txn, "a", "1");
    cr_assert_eq(brk_store_commit(txn), 0);
    char file[128];
    snprintf(copy, sizeof copy, "%s/copy", dir);
    snprintf(file, sizeof file, "%s/data.mdb", copy);
    cr_assert_eq(mkdir(copy, 0700), 0);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(brk_store_copy_fd(store, fd), 0);
    close(fd);
    cr_assert_eq(brk_store_open(copy, 1 << 20, &other), 0);
    cr_assert_eq(brk_store_begin(other, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_count(other, txn, BRK_DB_UNITS, &count), 0);
    cr_assert_eq(count, 1);
    brk_store_abort(txn);
    brk_store_destroy(&other);
}

static int
s_fail_enoent(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    (void) val;
    (void) vlen;
    (*(int *) arg)++;
    return -ENOENT;
}

/* A callback's -ENOENT is its error, not the end of the table: before, the
 * walk stopped and said all was well. */
Test(store, a_callbacks_enoent_is_an_error_not_the_end)
{
    MDB_txn *txn = NULL;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "a", 1, "1", 1), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "b", 1, "2", 1), 0);
    int calls = 0;
    cr_assert_eq(brk_store_each(store, txn, BRK_DB_META, NULL, 0, s_fail_enoent, &calls), -ENOENT);
    cr_assert_eq(calls, 1);
    /* an empty prefix range is still simply empty */
    calls = 0;
    cr_assert_eq(brk_store_each(store, txn, BRK_DB_META, "zz", 2, s_fail_enoent, &calls), 0);
    cr_assert_eq(calls, 0);
    brk_store_abort(txn);
}
