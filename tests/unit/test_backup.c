/* SPDX-License-Identifier: MIT */
/* Hot backups: a copy made on a thread reads back whole, then is removed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../broker/backup.h"
#include "fault.h"

Test(backup, copy_then_fetch)
{
    char dir[] = "/tmp/haven-backup-XXXXXX", cmd[128], id[17];
    brk_store_t *store = NULL;
    MDB_txn *txn;
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "k", 1, "v", 1), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_backup_t *b = brk_backup_new(store, dir);
    uint8_t buf[4096];
    uint64_t size = 0, got = 0;
    cr_assert_eq(brk_backup_read(b, "0000000000000000", 0, buf, sizeof buf, &size), -ENOENT);
    cr_assert_eq(brk_backup_start(b, id), 0);
    cr_assert_eq(brk_backup_start(b, id), -EBUSY, "one at a time");
    ssize_t n;
    for (;;) {
        n = brk_backup_read(b, id, got, buf, sizeof buf, &size);
        if (n == -EAGAIN)
            continue;            /* the copy runs on its thread; ask again */
        cr_assert_geq(n, 0);
        if (n == 0)
            break;
        got += (uint64_t) n;
    }
    cr_assert_gt(size, 0);
    cr_assert_eq(got, size);
    cr_assert_eq(brk_backup_start(b, id), 0, "fetched: the next may start");
    brk_backup_destroy(&b);
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---------------------------------------------------------------- abandoned copies */

static char s_dir[] = "/tmp/haven-backup-XXXXXX";
static brk_store_t *s_store;
static brk_backup_t *s_b;
static atomic_llong s_clock_ms;

static int64_t
s_clock(void *arg)
{
    (void) arg;
    return atomic_load(&s_clock_ms);
}

static void
s_setup(void)
{
    MDB_txn *txn;
    cr_assert(mkdtemp(s_dir));
    cr_assert_eq(brk_store_open(s_dir, 1 << 20, &s_store), 0);
    cr_assert_eq(brk_store_begin(s_store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(s_store, txn, BRK_DB_META, "k", 1, "v", 1), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert(s_b = brk_backup_new(s_store, s_dir));
    atomic_store(&s_clock_ms, 1000000);
    brk_backup_set_clock(s_b, s_clock, NULL);
}

static void
s_teardown(void)
{
    char cmd[128];
    brk_backup_destroy(&s_b);
    brk_store_destroy(&s_store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(abandoned, .init = s_setup, .fini = s_teardown);

static void
s_advance(int64_t ms)
{
    atomic_fetch_add(&s_clock_ms, ms);
}

/* The copy's thread ends on its own; nothing here may ask for the backup
 * meanwhile (that would count as fetching it). */
static void
s_wait_copied(void)
{
    while (brk_backup_copying(s_b))
        sched_yield();
}

static bool
s_file_exists(const char *id)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/backup-%s.mdb", s_dir, id);
    return stat(path, &st) == 0;
}

/* Read a backup to its end (which removes it); returns its size. */
static uint64_t
s_fetch(const char *id)
{
    uint8_t buf[4096];
    uint64_t size = 0, got = 0;
    for (;;) {
        ssize_t n = brk_backup_read(s_b, id, got, buf, sizeof buf, &size);
        if (n == -EAGAIN)
            continue;
        cr_assert_geq(n, 0);
        if (n == 0)
            break;
        got += (uint64_t) n;
    }
    cr_assert_eq(got, size);
    return size;
}

/* Before, a copy nobody fetched made every later backup -EBUSY, forever. */
Test(abandoned, a_finished_copy_nobody_fetched_goes_after_a_minute)
{
    char a[17], b[17];
    cr_assert_eq(brk_backup_start(s_b, a), 0);
    s_wait_copied();
    s_advance(BRK_BACKUP_ABANDONED_MS - 1);
    cr_assert_eq(brk_backup_start(s_b, b), -EBUSY, "within the minute it waits to be fetched");
    cr_assert(s_file_exists(a));
    s_advance(1);
    int log = ft_stderr_capture();
    cr_assert(log >= 0);
    cr_assert_eq(brk_backup_start(s_b, b), 0, "a minute unasked: discarded for the new one");
    char said[1024];
    ft_stderr_restore(log, said, sizeof said);
    cr_assert(strstr(said, "discarded: finished but not fetched for 60 s"), "%s", said);
    cr_assert(strstr(said, a), "the log names the discarded backup: %s", said);
    cr_assert_not(s_file_exists(a), "its file is removed");
    uint8_t buf[16];
    uint64_t size;
    cr_assert_eq(brk_backup_read(s_b, a, 0, buf, sizeof buf, &size), -ENOENT);
    cr_assert_gt(s_fetch(b), 0);
    cr_assert_not(s_file_exists(b));
}

Test(abandoned, a_copy_being_fetched_stays)
{
    char a[17], b[17];
    uint8_t buf[4096];
    uint64_t size = 0;
    cr_assert_eq(brk_backup_start(s_b, a), 0);
    ssize_t n;
    while ((n = brk_backup_read(s_b, a, 0, buf, sizeof buf, &size)) == -EAGAIN)
        continue;
    cr_assert_eq(n, (ssize_t) sizeof buf, "the first chunk");
    /* the fetcher comes back every 50 s: never a minute unasked */
    for (int i = 1; i <= 3; i++) {
        s_advance(50 * 1000);
        cr_assert_eq(brk_backup_start(s_b, b), -EBUSY, "round %d", i);
        cr_assert_eq(brk_backup_read(s_b, a, (uint64_t) i * sizeof buf, buf, sizeof buf, &size),
                     (ssize_t) sizeof buf);
    }
    cr_assert_eq(s_fetch(a), size);
    cr_assert_eq(brk_backup_start(s_b, b), 0, "fetched: the next starts at once");
    cr_assert_gt(s_fetch(b), 0);
}

/* The fsync after the copy is held back, so the copy is surely running. */
Test(abandoned, a_copy_being_made_is_never_discarded)
{
    char a[17], b[17];
    uint8_t buf[16];
    uint64_t size;
    int gate[2];
    cr_assert_eq(pipe(gate), 0);
    cr_assert_not(brk_backup_copying(s_b));
    ft_stall_fsync(gate[0]);
    cr_assert_eq(brk_backup_start(s_b, a), 0);
    cr_assert(brk_backup_copying(s_b));
    cr_assert_eq(brk_backup_read(s_b, a, 0, buf, sizeof buf, &size), -EAGAIN);
    s_advance(10 * 60 * 1000);
    cr_assert_eq(brk_backup_start(s_b, b), -EBUSY, "ten minutes, but still copying");
    cr_assert(brk_backup_copying(s_b));
    cr_assert_eq(write(gate[1], "go", 1), 1);
    s_wait_copied();
    cr_assert_not(brk_backup_copying(s_b), "copied: waiting to be fetched is not copying");
    cr_assert_gt(s_fetch(a), 0);
    cr_assert_not(brk_backup_copying(s_b));
    close(gate[0]);
    close(gate[1]);
}
