/* SPDX-License-Identifier: MIT */
/* The audit log: every search, hold, answer, disclosure, admin action and
 * refused request, appended in the store. Records hold need flags and ids,
 * never free text, ages, districts or addresses.
 *
 * Chain: each record's hash is BLAKE2b-256 of the record with the previous
 * record's hash in it, so anyone can check that nothing between two points
 * was altered, added or removed. Records are never dated before the one
 * before them. Key: each record also carries a MAC, a BLAKE2b keyed with a
 * key derived from broker.key ("hvaudit1", never in the store) over its
 * hash, so someone who can write the store but has not got broker.key
 * cannot rewrite the chain and make it check again. The stored head (last
 * seq and hash) is MACed too. Records written before the chain was keyed
 * have no MAC; the broker appends a "keyed" record when it first starts on
 * such a store, and after the first MACed record every record must have
 * one. A log with no MAC, or an unkeyed head, cannot be told from one
 * whose MACs someone stripped: with the key, verify fails on it until the
 * broker has keyed it, and records without a MAC are never pruned, so that
 * a head kept elsewhere can still be checked against them.
 *
 * Anchor: a head (seq, hash, time) signed with the broker's Ed25519 key
 * (broker.pub's sign line) is kept away from the broker; checked against
 * one, a log that was cut short or rewritten, even wholesale, is found
 * without any secret. A head whose record was pruned can be checked only
 * where a checkpoint names that record; otherwise it fails: a newer head
 * is needed.
 *
 * Retention: records of months older than [audit] retention are counted
 * into monthly totals (what the reports need; each MACed, so that a count
 * cannot be made up without the key, though one can still be deleted or
 * put back to an older value) and removed, oldest first,
 * only if each carries a valid MAC; a base signed by the broker says where
 * the kept records start, and a "checkpoint" record in the chain says so
 * too. */
#ifndef BRK_AUDIT_H
#define BRK_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../common/keys.h"
#include "store.h"
#include "haven.pb-c.h"

/* The broker's audit keys: the chain's MAC key and the signing key pair,
 * derived from its key file, in locked memory. */
typedef struct brk_audit_key brk_audit_key_t;

/* Derive from the broker's keys (broker.key). Returns 0 or -ENOMEM / -EIO.
 * Caller owns *key_out. */
int brk_audit_key_new(const hv_keys_t *keys, brk_audit_key_t **key_out);
void brk_audit_key_destroy(brk_audit_key_t **self_p);
/* The Ed25519 public key heads are signed with (broker.pub's sign line). */
const uint8_t *brk_audit_key_sign_public(const brk_audit_key_t *self);

/* Append rec (its seq, prev, hash and mac are set here) inside txn. A rec
 * dated before the last record is stored with the last record's time (a
 * clock set back), so that the log never goes back in time; rec itself is
 * left as it was. key NULL writes a record without a MAC, as brokers did
 * before the chain was keyed: for tests of that transition only. Returns
 * 0 or -errno. */
int brk_audit_append(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, Haven__AuditRecord *rec);

/* What to check the log with. Each may be NULL. */
typedef struct {
    const brk_audit_key_t *key;      /* the MACs (NULL: not checked: no broker.key) */
    const uint8_t *sign_public;      /* signatures of the pruning base, checkpoints and head */
    const Haven__AuditHead *head;    /* a head kept elsewhere; needs sign_public */
} brk_audit_check_t;

typedef struct {
    uint64_t records;                /* records kept and checked */
    uint64_t first, last;            /* their seqs (first > last: none) */
    uint64_t keyed_from;             /* the first record with a MAC, 0 if none; the records kept
                                        before it carry none, and no key vouches for them */
    uint64_t bad;                    /* the first bad record (or where one is missing) */
    bool macs_checked;               /* the MACs were checked with the key */
    bool signatures_checked;         /* the base's and checkpoints' signatures were checked */
    bool head_checked;               /* the head was found in the log (or a checkpoint) and matched */
    char problem[256];               /* one sentence when it fails; a note otherwise */
} brk_audit_result_t;

/* Walk the chain. Returns 0 if it is intact, or -EILSEQ with out->bad and
 * out->problem saying what is wrong; -EINVAL if check->head is given
 * without sign_public or is malformed; or another -errno. It fails on a
 * record dated before the one before it; with check->key, on a log that
 * has records but no MAC, or whose stored head has none (rewritten without
 * the key, or a store from before keyed audit that the broker has not yet
 * opened); on a record without a MAC after a pruning base (only keyed
 * records are pruned); on a monthly total whose MAC does not check
 * (out->bad 0); and on a head whose record was pruned, unless a kept
 * checkpoint names it (a newer head is needed). When 0 is returned with a
 * head given, out->head_checked is true. */
int brk_audit_verify(brk_store_t *store, MDB_txn *txn, const brk_audit_check_t *check, brk_audit_result_t *out);

/* haven-admin audit show: the records one request returns when it asks
 * for no number, and the most it may have (a request for more gets this
 * many, and the CLI says so): every resource a peer can make the broker
 * allocate has a limit, and one reply of 10,000 records is about 2 MB. */
#define BRK_AUDIT_SHOW_DEFAULT 1000
#define BRK_AUDIT_SHOW_MAX 10000

/* Call fn for each record whose time is at or after since (0: all), oldest
 * first. fn returns 0 to go on, 1 to stop. */
int brk_audit_each(brk_store_t *store, MDB_txn *txn, int64_t since,
                   int (*fn)(void *arg, const Haven__AuditRecord *rec), void *arg);

/* Call fn for each monthly total left by pruning: rec is a record as the
 * reports read it (at: the month's first second; action search or
 * decline; the flags, region, reason and kind; matching and limit say
 * whether it found none, fewer or enough), standing for count records. */
int brk_audit_totals_each(brk_store_t *store, MDB_txn *txn,
                          int (*fn)(void *arg, const Haven__AuditRecord *rec, uint64_t count), void *arg);

/* ---------------------------------------------------------------- heads */

/* The current head signed at now: head_out's hash and signature point into
 * hash and sig. Returns 0 or -errno. */
int brk_audit_head(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t now,
                   Haven__AuditHead *head_out, uint8_t hash[32], uint8_t sig[64]);

/* 0 if head is well formed and signed by sign_public; -EPERM if the
 * signature does not verify; -EINVAL if malformed. */
int brk_audit_head_check(const Haven__AuditHead *head, const uint8_t sign_public[32]);

/* A head as one line of text: "haven-audit-head seq=N hash=HEX at=UNIX
 * signature=HEX", what `audit head --out` writes and the broker logs. */
void brk_audit_head_format(const Haven__AuditHead *head, char *buf, size_t len);

/* Find the last such line in text (a head file or a log excerpt). Returns 0
 * with head_out pointing into hash and sig, or -EINVAL. */
int brk_audit_head_parse(const char *text, Haven__AuditHead *head_out, uint8_t hash[32], uint8_t sig[64]);

/* ---------------------------------------------------------------- retention */

/* The first second (UTC) of the month `months` before now's month: records
 * before it are pruned, so each is kept at least that many months. */
int64_t brk_audit_cutoff(int64_t now, int months);

/* What pruning did. */
typedef struct {
    size_t pruned;               /* records counted into totals and removed */
    bool more;                   /* older records remain that a next batch may prune */
    uint64_t held;               /* an old record without a MAC that stopped pruning (0: none): from
                                    before keyed audit, or stripped of its MAC; never pruned */
    bool keyed_now;              /* maintain: the stored head had no MAC, so a "keyed" record was
                                    appended: a store from before keyed audit, or one rewritten
                                    without broker.key (only a head kept elsewhere can tell) */
    uint64_t keyed_seq;          /* that record's seq */
} brk_audit_pruned_t;

/* Count at most max records older than before (oldest first, stopping at
 * the first newer one) into the monthly totals, delete them and sign the
 * new base, inside txn; when no older record is left after them, append a
 * checkpoint record. Each record is checked first (link, hash, MAC, time
 * not before the record before it): a log that fails is not pruned
 * (-EILSEQ), so that pruning never hides an altered record. An old record
 * without a MAC is never pruned: pruning stops there (out->held) with
 * nothing pruned, since the key cannot vouch for it and pruning would put
 * it out of reach of a head kept elsewhere. Sets *out. Returns 0 or
 * -errno. */
int brk_audit_prune(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t before,
                    int64_t now, size_t max, brk_audit_pruned_t *out);

/* The broker's upkeep, in its own transactions (growing the map when
 * full): if the stored head has no MAC (a store from before the chain was
 * keyed, or one whose MACs someone stripped), append a "keyed" record;
 * then prune in small batches for at most budget_ms. Sets *out (pruned
 * summed over the batches), on failure too: the keying may have been done
 * before it. Returns 0, -EILSEQ (the log fails its check: nothing pruned),
 * or another -errno. */
int brk_audit_maintain(const brk_audit_key_t *key, brk_store_t *store, int64_t before, int64_t now,
                       int budget_ms, brk_audit_pruned_t *out);

#endif
