/* SPDX-License-Identifier: MIT */
/* Reports: need dimensions, and the unmet report over a scripted log. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/audit.h"
#include "../../broker/report.h"

Test(report, need_dimensions)
{
    Haven__Need n = HAVEN__NEED__INIT;
    Haven__Child boy = HAVEN__CHILD__INIT, girl = HAVEN__CHILD__INIT, *kids[4] = { &boy, &girl, &girl, &girl };
    cr_assert_eq(brk_need_dims(&n), 0);
    boy.age = 13;
    boy.sex = "m";
    girl.age = 15;
    girl.sex = "f";
    n.children = kids;
    n.n_children = 1;
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_TEEN_BOYS);
    boy.age = 12;
    cr_assert_eq(brk_need_dims(&n), 0, "12 is not a teenager");
    n.n_children = 4;            /* with the adult: five people */
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_LARGE_FAMILY);
    n.n_children = 0;
    n.has_gender = 1;
    n.gender = HAVEN__GENDER__GENDER_NONBINARY;
    n.has_nrpf = n.nrpf = 1;
    n.has_access = 1;
    n.access = HAVEN__FEATURE__FEATURE_WHEELCHAIR;
    n.has_age = 1;
    n.age = 64;
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_LGBT | BRK_DIM_NRPF | BRK_DIM_ACCESS | BRK_DIM_OLDER);
    cr_assert_str_eq(brk_dim_name(0), "teenage boys");
}

Test(report, unmet_counts_a_scripted_log)
{
    char dir[] = "/tmp/haven-report-XXXXXX", cmd[128];
    brk_store_t *store = NULL;
    MDB_txn *txn;
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    struct { uint32_t dims, matching, limit; const char *relax; int64_t at; } s[] = {
        { BRK_DIM_TEEN_BOYS, 0, 10, "max_boy_age", 1796083200 },     /* 2026-12-01 */
        { BRK_DIM_TEEN_BOYS | BRK_DIM_PETS, 2, 10, "pets", 1796083300 },
        { 0, 10, 10, NULL, 1796083400 },
        { BRK_DIM_TEEN_BOYS, 0, 10, "max_boy_age", 1798761600 },     /* 2027-01-01 */
    };
    for (size_t i = 0; i < 4; i++) {
        Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
        rec.has_at = rec.has_dims = rec.has_matching = rec.has_limit = rec.has_outcome = 1;
        rec.at = s[i].at;
        rec.action = "search";
        rec.dims = s[i].dims;
        rec.region = "East of England";
        rec.matching = s[i].matching;
        rec.limit = s[i].limit;
        rec.relax = (char *) s[i].relax;
        cr_assert_eq(brk_audit_append(store, txn, &rec), 0);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_index_t *index = brk_index_new();
    Haven__ReportReply rep;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    /* December only */
    cr_assert_eq(brk_report_run(store, txn, index, NULL, "unmet", 1796083200, 1798761600, 0, &rep), 0);
    brk_store_abort(txn);
    int seen = 0;
    for (size_t i = 0; i < rep.n_rows; i++) {
        char **c = rep.rows[i]->cells;
        cr_assert_str_eq(c[0], "2026-12");
        if (!strcmp(c[2], "all searches")) {
            cr_assert_str_eq(c[3], "3");
            cr_assert_str_eq(c[4], "1");
            cr_assert_str_eq(c[5], "1");
            seen++;
        } else if (!strcmp(c[2], "teenage boys")) {
            cr_assert_str_eq(c[3], "2");
            cr_assert_str_eq(c[4], "1");
            cr_assert_str_eq(c[5], "1");
            seen++;
        }
    }
    cr_assert_eq(seen, 2);
    brk_report_free(&rep);
    brk_index_destroy(&index);
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
