/* SPDX-License-Identifier: MIT */
/* Hot backups: a copy made on a thread reads back whole, then is removed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../broker/backup.h"

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
