/* SPDX-License-Identifier: MIT */
/* The audit log: every search, hold, answer, disclosure, admin action and
 * refused request, appended in the store with each record chained to the
 * one before by a BLAKE2b hash, so an altered or removed record is found.
 * Records hold need flags and ids, never free text or addresses. */
#ifndef BRK_AUDIT_H
#define BRK_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"
#include "haven.pb-c.h"

/* Append rec (its seq, prev and hash are set here) inside txn. */
int brk_audit_append(brk_store_t *store, MDB_txn *txn, Haven__AuditRecord *rec);

/* Walk the chain. Returns 0 if every record is intact (*records_out: how
 * many), or -EILSEQ with *bad_out the first bad record's sequence number
 * and problem one sentence; or another -errno. */
int brk_audit_verify(brk_store_t *store, MDB_txn *txn, uint64_t *records_out, uint64_t *bad_out,
                     char *problem, size_t len);

/* Call fn for each record at or after since (0: all), oldest first. fn
 * returns 0 to go on, 1 to stop. */
int brk_audit_each(brk_store_t *store, MDB_txn *txn, int64_t since,
                   int (*fn)(void *arg, const Haven__AuditRecord *rec), void *arg);

#endif
