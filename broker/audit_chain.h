/* SPDX-License-Identifier: MIT */
/* The audit chain's shared parts, for the three files of the audit log:
 * audit.c (keys, appending, signatures, heads, walks), audit_verify.c
 * (checking) and audit_prune.c (retention). Nothing else includes this;
 * the rest of the broker uses audit.h. */
#ifndef BRK_AUDIT_CHAIN_H
#define BRK_AUDIT_CHAIN_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "audit.h"

/* Meta keys (audit.c's opening comment says what each holds). */
#define AUDIT_HEAD_KEY "audit-head"
#define AUDIT_BASE_KEY "audit-base"
#define AUDIT_TOTAL_PREFIX "audit-total/"

/* Domain tags: a MAC or signature made for one purpose never passes for
 * another (a head is not a pruning base). */
#define AUDIT_TAG_RECORD "haven audit record mac v1"
#define AUDIT_TAG_HEAD_MAC "haven audit head mac v1"
#define AUDIT_TAG_HEAD "haven audit head v1"
#define AUDIT_TAG_BASE "haven audit base v1"
#define AUDIT_TAG_TOTAL "haven audit total mac v1"

struct brk_audit_key {
    uint8_t chain[32];           /* the MAC key: crypto_kdf "hvaudit1", subkey 2 */
    uint8_t sign_secret[crypto_sign_SECRETKEYBYTES];
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
};

/* The meta head: seq, hash and, once keyed, a MAC over both. */
typedef struct {
    uint64_t seq;
    uint8_t hash[32];
    bool has_mac;
    uint8_t mac[32];
    bool found;
} brk_audit_stored_head_t;

void brk_audit_be64(uint64_t v, uint8_t out[8]);
uint64_t brk_audit_unbe64(const uint8_t *in);

/* A record's hash: BLAKE2b-256 of it packed with its prev set and its hash
 * and MAC absent. Returns 0, -ENOMEM or -EIO. */
int brk_audit_hash(Haven__AuditRecord *rec, uint8_t out[32]);
/* BLAKE2b keyed with the chain key over tag and data. */
void brk_audit_mac(const brk_audit_key_t *key, const char *tag, const uint8_t *data, size_t len, uint8_t out[32]);

/* The stored head (h->found false if there is none). Returns 0, -EBADMSG
 * or -errno. */
int brk_audit_head_read(brk_store_t *store, MDB_txn *txn, brk_audit_stored_head_t *h);

/* Signed statements (seq, hash, time) under a tag. */
bool brk_audit_head_well_formed(const Haven__AuditHead *h);
/* 0 if h is signed by pk under tag; -EPERM if not; -EINVAL if malformed. */
int brk_audit_signed_check(const char *tag, const Haven__AuditHead *h, const uint8_t pk[32]);
/* Returns 0, or -EIO if libsodium fails (then sig holds nothing to use). */
int brk_audit_sign(const brk_audit_key_t *key, const char *tag, uint64_t seq, const uint8_t hash[32], int64_t at,
                   uint8_t sig[64]);
/* The pruning base, or -ENOENT (-EBADMSG if malformed). Caller owns it. */
int brk_audit_base_read(brk_store_t *store, MDB_txn *txn, Haven__AuditHead **base_out);

/* A monthly total's MAC, over its key (the summary) and its count, so that
 * a count cannot be made up or moved to another month without the key. */
void brk_audit_total_mac(const brk_audit_key_t *key, const void *kd, size_t klen, uint64_t count, uint8_t mac[32]);
bool brk_audit_total_ok(const brk_audit_key_t *key, const void *kd, size_t klen, const void *val, size_t vlen);
/* brk_store_each callback over the totals: stops at the first whose MAC
 * fails, with its month in bad_month. */
typedef struct {
    const brk_audit_key_t *key;
    int64_t bad_month;           /* of the first total that fails, or -1 */
} brk_audit_total_check_t;
int brk_audit_total_check(void *arg, const void *key, size_t klen, const void *val, size_t vlen);

#endif
