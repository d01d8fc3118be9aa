/* SPDX-License-Identifier: MIT */
/* Reports: need dimensions and the flags a search's record keeps, and the
 * unmet and declines reports over a scripted log, before and after its
 * month is pruned into totals. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/audit.h"
#include "../../broker/report.h"
#include "fault.h"

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
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_TEEN_BOYS | BRK_DIM_BOY_OVER_11 | BRK_DIM_CHILDREN);
    boy.age = 12;
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_BOY_OVER_11 | BRK_DIM_CHILDREN, "12 is not a teenager");
    boy.age = 11;
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_CHILDREN);
    n.n_children = 4;            /* with the adult: five people */
    cr_assert_eq(brk_need_dims(&n), BRK_DIM_LARGE_FAMILY | BRK_DIM_CHILDREN);
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

Test(report, a_search_record_keeps_flags_not_ages)
{
    Haven__Need n = HAVEN__NEED__INIT;
    Haven__Child boy = HAVEN__CHILD__INIT, girl = HAVEN__CHILD__INIT, *kids[2] = { &boy, &girl };
    char *excl[1] = { "E07000012" };
    char buf[256];
    boy.age = 14;
    boy.sex = "m";
    girl.age = 9;
    girl.sex = "f";
    n.children = kids;
    n.n_children = 2;
    n.has_gender = 1;
    n.gender = HAVEN__GENDER__GENDER_WOMAN;
    n.has_age = 1;
    n.age = 34;
    n.has_pets = 1;
    n.pets = 1;
    n.exclude = excl;
    n.n_exclude = 1;
    brk_need_flags(&n, brk_need_dims(&n), buf, sizeof buf);
    cr_assert_str_eq(buf, "woman; teenage boys, pets, children, boys over 11");
    cr_assert(!strstr(buf, "14") && !strstr(buf, "9") && !strstr(buf, "34") && !strstr(buf, "E07"), "%s", buf);
    n.has_gender = 0;
    brk_need_flags(&n, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "adult");
    brk_need_flags(&n, brk_need_dims(&n), buf, 12);
    cr_assert_eq(strlen(buf), 11, "cut, never overrun");
}

Test(report, unmet_counts_a_scripted_log)
{
    char dir[] = "/tmp/haven-report-XXXXXX", cmd[128];
    brk_store_t *store = NULL;
    MDB_txn *txn;
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    /* Keyed records: only those are ever pruned into totals. */
    char kd[64];
    snprintf(kd, sizeof kd, "%s/broker", dir);
    hv_keys_t *keys = NULL;
    brk_audit_key_t *key = NULL;
    cr_assert_eq(hv_keys_generate(kd), 0);
    snprintf(kd, sizeof kd, "%s/broker.key", dir);
    cr_assert_eq(hv_keys_load(kd, &keys, cmd, sizeof cmd), 0);
    cr_assert_eq(brk_audit_key_new(keys, &key), 0);
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
        cr_assert_eq(brk_audit_append(key, store, txn, &rec), 0);
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

    /* Pruned into totals (a decline too): the same report. */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    Haven__AuditRecord dec = HAVEN__AUDIT_RECORD__INIT;
    dec.has_at = dec.has_outcome = dec.has_reason = dec.has_kind = 1;
    dec.at = 1796083500;
    dec.action = "decline";
    dec.reason = HAVEN__DECLINE_REASON__DECLINE_PETS;
    dec.kind = HAVEN__KIND__KIND_HOSTEL;
    cr_assert_eq(brk_audit_append(key, store, txn, &dec), 0);
    brk_audit_pruned_t pr;
    /* before 2027-02-01: everything */
    cr_assert_eq(brk_audit_prune(key, store, txn, 1801440000, 1801500000, 100, &pr), 0);
    cr_assert_eq(pr.pruned, 5);
    cr_assert(!pr.more && !pr.held);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_report_run(store, txn, index, NULL, "unmet", 1796083200, 1798761600, 0, &rep), 0);
    seen = 0;
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
            cr_assert_str_eq(c[6], "max_boy_age");
            seen++;
        } else if (!strcmp(c[2], "pets")) {
            cr_assert_str_eq(c[5], "1");
            cr_assert_str_eq(c[6], "pets");
            seen++;
        }
    }
    cr_assert_eq(seen, 3, "from the totals alone");
    brk_report_free(&rep);
    /* All of it: totals and records together, each counted once. */
    cr_assert_eq(brk_report_run(store, txn, index, NULL, "unmet", 0, 0, 0, &rep), 0);
    seen = 0;
    for (size_t i = 0; i < rep.n_rows; i++) {
        char **c = rep.rows[i]->cells;
        if (!strcmp(c[2], "all searches"))
            seen += atoi(c[3]);
    }
    cr_assert_eq(seen, 4);
    brk_report_free(&rep);
    cr_assert_eq(brk_report_run(store, txn, index, NULL, "declines", 0, 0, 0, &rep), 0);
    cr_assert_eq(rep.n_rows, 1);
    cr_assert_str_eq(rep.rows[0]->cells[0], "pets");
    cr_assert_str_eq(rep.rows[0]->cells[2], "1");
    brk_report_free(&rep);
    brk_store_abort(txn);
    brk_audit_key_destroy(&key);
    hv_keys_destroy(&keys);
    brk_index_destroy(&index);
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---------------------------------------------------------------- short of memory */

/* A provider whose two units were never confirmed: the stale report has a
 * row for it, the occupancy report one for its region and kind. */
static brk_index_t *
s_index_with_stale_units(void)
{
    brk_index_t *x = brk_index_new();
    cr_assert(x);
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    p.id = "refuge-1";
    p.name = "Refuge";
    p.kind = HAVEN__KIND__KIND_REFUGE;
    cr_assert_geq(brk_index_put_provider(x, &p, -1), 0);
    for (int i = 0; i < 2; i++) {
        Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
        Haven__Unit u = HAVEN__UNIT__INIT;
        spec.name = i ? "b" : "a";
        u.provider = "refuge-1";
        u.spec = &spec;
        u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
        cr_assert_eq(brk_index_put_unit(x, &u, -1), 0);
    }
    return x;
}

/* Fail each allocation of a report in turn: every run is then -ENOMEM
 * with nothing left to show (the broker answers INTERNAL), or the whole
 * report; never a shorter one. Before, a failed calloc in the stale
 * report gave an empty report: "no provider is overdue". ASan's leak
 * check sees every failure path free what it took. */
Test(report, short_of_memory_is_an_error_never_a_shorter_report)
{
    static const char *const names[] = { "stale", "occupancy" };
    static const ft_call_t calls[] = { FT_CALLOC, FT_STRDUP };
    brk_index_t *index = s_index_with_stale_units();
    for (size_t n = 0; n < 2; n++) {
        Haven__ReportReply whole;
        cr_assert_eq(brk_report_run(NULL, NULL, index, NULL, names[n], 0, 0, 1000000000, &whole), 0);
        cr_assert_eq(whole.n_rows, 1, "%s", names[n]);
        for (size_t c = 0; c < 2; c++) {
            int failures = 0;
            for (int k = 0;; k++) {
                Haven__ReportReply rep;
                ft_fail(calls[c], k);
                int rc = brk_report_run(NULL, NULL, index, NULL, names[n], 0, 0, 1000000000, &rep);
                bool failed = ft_failed(calls[c]);
                ft_reset();
                if (!failed) {
                    cr_assert_eq(rc, 0);
                    cr_assert_eq(rep.n_rows, whole.n_rows);
                    brk_report_free(&rep);
                    break;
                }
                failures++;
                cr_assert_eq(rc, -ENOMEM, "%s, allocation %d failed: %d", names[n], k, rc);
                cr_assert_eq(rep.n_rows, 0);
                cr_assert_null(rep.rows);
                brk_report_free(&rep);
                brk_report_free(&rep);
            }
            cr_assert_gt(failures, 0, "%s allocates with call %zu", names[n], c);
        }
        brk_report_free(&whole);
    }
    brk_index_destroy(&index);
}
