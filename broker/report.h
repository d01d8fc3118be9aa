/* SPDX-License-Identifier: MIT */
/* Oversight reports for commissioners: aggregates only, no survivor data.
 * unmet (searches that found nothing or fewer than asked, by need
 * dimension, region and month, with the rule that would have helped),
 * declines (by reason and provider kind), occupancy (units by status, region
 * and kind), stale (providers overdue to confirm). */
#ifndef BRK_REPORT_H
#define BRK_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include "districts.h"
#include "index.h"
#include "store.h"
#include "haven.pb-c.h"

/* The need dimensions a search is counted under (AuditRecord.dims). */
enum {
    BRK_DIM_TEEN_BOYS = 1 << 0,      /* a boy aged 13 or more */
    BRK_DIM_NRPF = 1 << 1,
    BRK_DIM_ACCESS = 1 << 2,         /* wheelchair or step-free */
    BRK_DIM_PETS = 1 << 3,
    BRK_DIM_LARGE_FAMILY = 1 << 4,   /* five people or more */
    BRK_DIM_MALE = 1 << 5,
    BRK_DIM_LGBT = 1 << 6,           /* trans, non-binary or LGBT+ specialist asked */
    BRK_DIM_COMPLEX = 1 << 7,
    BRK_DIM_OLDER = 1 << 8,          /* 60 or over */
    BRK_DIM_CHILDREN = 1 << 9,       /* any child */
    BRK_DIM_BOY_OVER_11 = 1 << 10,   /* a boy aged 12 or more (many refuges stop at 11 or 12) */
    BRK_DIM__COUNT = 11,
};

const char *brk_dim_name(int bit_index);

/* The dimensions of a need. */
uint32_t brk_need_dims(const Haven__Need *need);

/* What a search's audit record says of its need: the gender and the
 * dimensions by name ("woman; children, boys over 11, pets"), never ages,
 * districts or languages. */
void brk_need_flags(const Haven__Need *need, uint32_t dims, char *buf, size_t len);

/* Run report name over [from, to) (unix seconds; 0 = open). Fills reply
 * (free with brk_report_free). unmet and declines count the audit records
 * in the range and the monthly totals pruning left (audit.h) of the months
 * that begin in it. Returns 0 or -errno: -ENOMEM when short of memory
 * (never a report with rows missing). Whatever it returns, reply may be
 * passed to brk_report_free, once or more. */
int brk_report_run(brk_store_t *store, MDB_txn *txn, const brk_index_t *index,
                   const brk_districts_t *districts, const char *name, int64_t from, int64_t to,
                   int64_t now, Haven__ReportReply *reply);
void brk_report_free(Haven__ReportReply *reply);

#endif
