/* SPDX-License-Identifier: MIT */
/* The audit log: appends chain, verify finds alteration, removal and a cut end. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/audit.h"

static char dir[64];
static brk_store_t *store;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-audit-XXXXXX");
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
TestSuite(audit, .init = setup, .fini = teardown);

static void
s_append(int n)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (int i = 0; i < n; i++) {
        Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
        char detail[32];
        snprintf(detail, sizeof detail, "event %d", i);
        rec.has_at = 1;
        rec.at = 1000 + i;
        rec.principal = "idva-1";
        rec.action = "search";
        rec.detail = detail;
        cr_assert_eq(brk_audit_append(store, txn, &rec), 0);
        cr_assert_gt(rec.seq, 0);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
}

static int
s_verify(uint64_t *records, uint64_t *bad, char *problem)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    int rc = brk_audit_verify(store, txn, records, bad, problem, 256);
    brk_store_abort(txn);
    return rc;
}

Test(audit, an_honest_log_verifies)
{
    uint64_t records = 0, bad = 0;
    char problem[256];
    cr_assert_eq(s_verify(&records, &bad, problem), 0, "an empty log is intact");
    s_append(5);
    s_append(3);
    cr_assert_eq(s_verify(&records, &bad, problem), 0, "%s", problem);
    cr_assert_eq(records, 8);
}

static void
s_tamper(uint64_t seq, bool remove)
{
    MDB_txn *txn;
    uint8_t key[8];
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t) (seq >> (56 - 8 * i));
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    if (remove) {
        cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, key, 8), 0);
    } else {
        Haven__AuditRecord *r = NULL;
        cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_AUDIT, key, 8, &haven__audit_record__descriptor,
                                       (ProtobufCMessage **) &r), 0);
        r->detail[0] = 'E';      /* one byte */
        cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, key, 8, &r->base), 0);
        haven__audit_record__free_unpacked(r, NULL);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
}

Test(audit, an_altered_record_is_named)
{
    uint64_t records = 0, bad = 0;
    char problem[256];
    s_append(6);
    s_tamper(4, false);
    cr_assert_eq(s_verify(&records, &bad, problem), -EILSEQ);
    cr_assert_eq(bad, 4);
    cr_assert(strstr(problem, "record 4") && strstr(problem, "altered"), "%s", problem);
}

Test(audit, a_removed_record_is_named)
{
    uint64_t records = 0, bad = 0;
    char problem[256];
    s_append(6);
    s_tamper(3, true);
    cr_assert_eq(s_verify(&records, &bad, problem), -EILSEQ);
    cr_assert_eq(bad, 3);
    cr_assert(strstr(problem, "missing"), "%s", problem);
}

Test(audit, a_cut_end_is_found)
{
    uint64_t records = 0, bad = 0;
    char problem[256];
    s_append(6);
    s_tamper(6, true);
    cr_assert_eq(s_verify(&records, &bad, problem), -EILSEQ);
    cr_assert(strstr(problem, "removed"), "%s", problem);
}
