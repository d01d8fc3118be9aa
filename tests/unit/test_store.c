/* SPDX-License-Identifier: MIT */
/* The LMDB store: records, prefixes, nested transactions, map growth. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/store.h"
#include "../../common/lmdb_error.h"
#include "fault.h"
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
    cr_assert_eq(hv_lmdb_error(MDB_SUCCESS), 0);
    cr_assert_eq(hv_lmdb_error(MDB_NOTFOUND), -ENOENT);
    cr_assert_eq(hv_lmdb_error(MDB_MAP_FULL), -ENOSPC);
    cr_assert_eq(hv_lmdb_error(MDB_CORRUPTED), -EILSEQ);
    cr_assert_eq(hv_lmdb_error(EACCES), -EACCES);
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

/* ---------------------------------------------------------------- growth and hot copies */

/* Records n from first on, of vlen bytes each, in one commit. */
static void
s_put_many(int first, int n, size_t vlen)
{
    MDB_txn *txn;
    char *val = calloc(1, vlen);
    cr_assert(val);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (int i = first; i < first + n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%08d", i);
        cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, key, 8, val, vlen), 0);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
    free(val);
}

typedef struct {
    int fd;                      /* the copy goes here (a pipe: it stalls until read) */
    int rc;
    char first;                  /* the byte that showed the copy had begun */
} s_copy_t;

static void *
s_copy_thread(void *arg)
{
    s_copy_t *c = arg;
    c->rc = brk_store_copy_fd(store, c->fd);
    close(c->fd);
    return NULL;
}

typedef struct {
    int rc;
    int done_fd;                 /* written once the growth returned */
} s_grow_t;

static void *
s_grow_thread(void *arg)
{
    s_grow_t *g = arg;
    g->rc = brk_store_grow(store);
    cr_assert_eq(write(g->done_fd, "g", 1), 1);
    return NULL;
}

/* Start a copy into a pipe and return once it is inside its read
 * transaction (its first byte has come), stalled on the full pipe. */
static void
s_start_stalled_copy(s_copy_t *c, pthread_t *th, int *read_fd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    c->fd = p[1];
    c->rc = -1;
    cr_assert_eq(pthread_create(th, NULL, s_copy_thread, c), 0);
    cr_assert_eq(read(p[0], &c->first, 1), 1);
    *read_fd = p[0];
}

/* Read the rest of a copy into path. */
static void
s_finish_copy(const s_copy_t *c, int fd, const char *path)
{
    char buf[65536];
    ssize_t n;
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(out >= 0);
    cr_assert_eq(write(out, &c->first, 1), 1);
    while ((n = read(fd, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t) n), n);
    cr_assert_eq(n, 0);
    close(out);
    close(fd);
}

/* Growing remaps the map, and a copy reading the old one would read
 * unmapped memory: growth waits until the copy is over, and says so. */
Test(store, growth_waits_for_a_hot_copy_and_the_copy_is_whole)
{
    /* 200 records of 2 KiB (one page each): far more than a pipe holds,
     * and under 3/4 of the 1 MiB map */
    s_put_many(0, 200, 2048);
    size_t before = brk_store_map_size(store);
    s_copy_t c;
    pthread_t ct, gt;
    int copy_fd, done[2];
    s_start_stalled_copy(&c, &ct, &copy_fd);

    int log = ft_stderr_capture();
    cr_assert(log >= 0);
    cr_assert_eq(pipe(done), 0);
    s_grow_t g = { -1, done[1] };
    cr_assert_eq(pthread_create(&gt, NULL, s_grow_thread, &g), 0);
    /* Either the growth says it waits, or (wrongly) it returns. */
    char said[4096] = "";
    size_t got = 0;
    bool waits = false, returned = false;
    while (!waits && !returned) {
        struct pollfd pf[2] = { { log, POLLIN, 0 }, { done[0], POLLIN, 0 } };
        cr_assert_gt(poll(pf, 2, 10000), 0, "the growth neither waited nor returned within 10 s");
        if (pf[1].revents)
            returned = true;
        if (pf[0].revents) {
            ssize_t n = read(log, said + got, sizeof said - 1 - got);
            cr_assert_gt(n, 0);
            got += (size_t) n;
            said[got] = '\0';
            waits = strstr(said, "waits for the backup copy") != NULL;
        }
    }
    cr_assert(waits && !returned, "the map grew under a copy's reader");
    cr_assert_eq(brk_store_map_size(store), before);

    char file[128];
    snprintf(file, sizeof file, "%s/copy.mdb", dir);
    s_finish_copy(&c, copy_fd, file);
    cr_assert_eq(pthread_join(ct, NULL), 0);
    cr_assert_eq(c.rc, 0);
    cr_assert_eq(pthread_join(gt, NULL), 0);
    cr_assert_eq(g.rc, 0);
    cr_assert_eq(brk_store_map_size(store), 2 * before);
    char rest[4096];
    ft_stderr_restore(log, rest, sizeof rest);
    cr_assert(strstr(rest, "the backup copy finished after"), "%s", rest);
    close(done[0]);
    close(done[1]);

    brk_store_t *copy = NULL;
    MDB_txn *txn;
    size_t count;
    cr_assert_eq(brk_store_open_copy(file, &copy), 0);
    cr_assert_eq(brk_store_begin(copy, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_count(copy, txn, BRK_DB_META, &count), 0);
    cr_assert_eq(count, 200);
    brk_store_abort(txn);
    brk_store_destroy(&copy);
}

/* Commits grow the map once it is 3/4 used, so writers rarely meet a full
 * map (and then wait for a copy): before, the 1 MiB map filled at about
 * 200 such records. */
Test(store, the_map_grows_before_it_is_full)
{
    size_t before = brk_store_map_size(store);
    for (int i = 0; i < 600; i++)
        s_put_many(i, 1, 2048);
    cr_assert_geq(brk_store_map_size(store), 2 * before);
}

/* Growing early is opportunistic: with a copy reading it never waits, and
 * it happens at the first commit after the copy. */
Test(store, growing_early_never_waits_for_a_copy)
{
    s_put_many(0, 100, 2048);
    size_t before = brk_store_map_size(store);
    s_copy_t c;
    pthread_t ct;
    int copy_fd;
    s_start_stalled_copy(&c, &ct, &copy_fd);
    /* fill the map to the brim while the copy reads: every commit returns */
    MDB_txn *txn;
    char val[2048] = { 0 };
    int rc = 0;
    for (int i = 100; rc == 0; i++) {
        char key[16];
        snprintf(key, sizeof key, "%08d", i);
        cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
        rc = brk_store_put(store, txn, BRK_DB_META, key, 8, val, sizeof val);
        if (rc == 0)
            rc = brk_store_commit(txn);
        else
            brk_store_abort(txn);
    }
    cr_assert_eq(rc, -ENOSPC);
    cr_assert_eq(brk_store_map_size(store), before, "grew under the copy");
    char file[128];
    snprintf(file, sizeof file, "%s/copy.mdb", dir);
    s_finish_copy(&c, copy_fd, file);
    cr_assert_eq(pthread_join(ct, NULL), 0);
    cr_assert_eq(c.rc, 0);
    /* the copy is over: the next commit finds the map full enough to grow */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(brk_store_map_size(store), 2 * before);
}

Test(store, growth_refuses_while_a_transaction_is_open)
{
    MDB_txn *txn;
    size_t before = brk_store_map_size(store);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_grow(store), -EBUSY, "LMDB would remap under the reader");
    brk_store_abort(txn);
    cr_assert_eq(brk_store_map_size(store), before);
    cr_assert_eq(brk_store_grow(store), 0);
    cr_assert_eq(brk_store_map_size(store), 2 * before);
}

/* ---------------------------------------------------------------- LMDB failures reach the caller */

Test(store, opening_fails_when_lmdb_refuses_a_setting)
{
    static const ft_call_t calls[] = { FT_MDB_ENV_SET_MAXDBS, FT_MDB_ENV_SET_MAXREADERS, FT_MDB_ENV_INFO };
    char other[128];
    snprintf(other, sizeof other, "%s/other", dir);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        brk_store_t *st = NULL;
        ft_fail(calls[i], 0);
        cr_assert_eq(brk_store_open(other, 1 << 20, &st), -EINVAL, "call %zu", i);
        cr_assert(ft_failed(calls[i]));
        cr_assert_null(st);
        ft_reset();
    }
}

Test(store, a_nosync_commit_reports_the_sync_flag_it_could_not_set)
{
    MDB_txn *txn;
    const void *val;
    size_t vlen;
    /* setting it: the commit does not happen */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "a", 1, "1", 1), 0);
    ft_fail(FT_MDB_ENV_SET_FLAGS, 0);
    cr_assert_eq(brk_store_commit_nosync(store, txn), -EINVAL);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_META, "a", 1, &val, &vlen), -ENOENT);
    brk_store_abort(txn);
    /* clearing it (later acks would not be on disk): said, though the
     * transaction committed */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "b", 1, "2", 1), 0);
    ft_fail(FT_MDB_ENV_SET_FLAGS, 1);
    cr_assert_eq(brk_store_commit_nosync(store, txn), -EINVAL);
    cr_assert(ft_failed(FT_MDB_ENV_SET_FLAGS));
    ft_reset();
    /* no transaction was left counted open: the map may still grow */
    cr_assert_eq(brk_store_grow(store), 0);
}

Test(store, a_failed_delete_is_an_error_not_the_end_of_the_prefix)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "p1", 2, "1", 1), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "p2", 2, "2", 1), 0);
    ft_fail(FT_MDB_CURSOR_DEL, 1);
    cr_assert_eq(brk_store_del_prefix(store, txn, BRK_DB_META, "p", 1), -EINVAL);
    ft_reset();
    brk_store_abort(txn);
    /* and deleting to the table's end counts every record */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "p1", 2, "1", 1), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "p2", 2, "2", 1), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "p3", 2, "3", 1), 0);
    cr_assert_eq(brk_store_del_prefix(store, txn, BRK_DB_META, "p", 1), 3);
    size_t count;
    cr_assert_eq(brk_store_count(store, txn, BRK_DB_META, &count), 0);
    cr_assert_eq(count, 0);
    brk_store_abort(txn);
}

Test(store, a_failed_reader_check_is_an_error)
{
    cr_assert_eq(brk_store_reader_check(store), 0);
    ft_fail(FT_MDB_READER_CHECK, 0);
    cr_assert_eq(brk_store_reader_check(store), -EINVAL);
    ft_reset();
}
