/* SPDX-License-Identifier: MIT */
/* The audit log (see audit.h). hash = BLAKE2b-256 of the record packed with
 * its prev set and its hash absent; the head (last seq and hash) is kept in
 * meta so that cutting records off the end is found too. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"

#define HEAD_KEY "audit-head"

static void
s_key(uint64_t seq, uint8_t key[8])
{
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t) (seq >> (56 - 8 * i));
}

static int
s_hash(Haven__AuditRecord *rec, uint8_t out[32])
{
    protobuf_c_boolean had = rec->has_hash;
    rec->has_hash = 0;
    size_t len = protobuf_c_message_get_packed_size(&rec->base);
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        rec->has_hash = had;
        return -ENOMEM;
    }
    protobuf_c_message_pack(&rec->base, buf);
    rec->has_hash = had;
    int rc = crypto_generichash(out, 32, buf, len, NULL, 0) == 0 ? 0 : -EIO;
    free(buf);
    return rc;
}

int
brk_audit_append(brk_store_t *store, MDB_txn *txn, Haven__AuditRecord *rec)
{
    const void *val;
    size_t vlen;
    uint8_t head[40] = { 0 }, hash[32], key[8];
    uint64_t seq = 0;
    int rc = brk_store_get(store, txn, BRK_DB_META, HEAD_KEY, sizeof HEAD_KEY - 1, &val, &vlen);
    if (rc == 0 && vlen == sizeof head) {
        memcpy(head, val, sizeof head);
        for (int i = 0; i < 8; i++)
            seq = seq << 8 | head[i];
    } else if (rc != -ENOENT && rc < 0) {
        return rc;
    }
    rec->has_seq = 1;
    rec->seq = ++seq;
    rec->has_prev = 1;
    rec->prev = (ProtobufCBinaryData) { 32, head + 8 };
    if ((rc = s_hash(rec, hash)) < 0)
        return rc;
    rec->has_hash = 1;
    rec->hash = (ProtobufCBinaryData) { 32, hash };
    s_key(seq, key);
    rc = brk_store_put_msg(store, txn, BRK_DB_AUDIT, key, sizeof key, &rec->base);
    rec->prev = (ProtobufCBinaryData) { 0, NULL };
    rec->hash = (ProtobufCBinaryData) { 0, NULL };
    rec->has_prev = rec->has_hash = 0;
    if (rc < 0)
        return rc;
    s_key(seq, head);
    memcpy(head + 8, hash, 32);
    return brk_store_put(store, txn, BRK_DB_META, HEAD_KEY, sizeof HEAD_KEY - 1, head, sizeof head);
}

typedef struct {
    uint64_t expect;
    uint8_t prev[32];
    uint64_t bad;
    char *problem;
    size_t len;
} s_verify_t;

static int
s_verify_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_verify_t *v = arg;
    uint64_t seq = 0;
    uint8_t hash[32];
    v->expect++;
    for (size_t i = 0; i < klen && i < 8; i++)
        seq = seq << 8 | ((const uint8_t *) key)[i];
    if (klen != 8 || seq != v->expect) {
        v->bad = v->expect;
        snprintf(v->problem, v->len, "record %llu is missing (the next one found is %llu)",
                 (unsigned long long) v->expect, (unsigned long long) seq);
        return 1;
    }
    Haven__AuditRecord *r = haven__audit_record__unpack(NULL, vlen, val);
    if (!r) {
        v->bad = seq;
        snprintf(v->problem, v->len, "record %llu does not decode: it was altered", (unsigned long long) seq);
        return 1;
    }
    int bad = 0;
    if (!r->has_seq || r->seq != seq || r->prev.len != 32 || memcmp(r->prev.data, v->prev, 32) != 0) {
        bad = 1;
        snprintf(v->problem, v->len, "record %llu does not follow record %llu: the chain is broken",
                 (unsigned long long) seq, (unsigned long long) seq - 1);
    } else if (r->hash.len != 32 || s_hash(r, hash) < 0 || memcmp(hash, r->hash.data, 32) != 0) {
        bad = 1;
        snprintf(v->problem, v->len, "record %llu was altered: its hash does not match its contents",
                 (unsigned long long) seq);
    } else {
        memcpy(v->prev, hash, 32);
    }
    haven__audit_record__free_unpacked(r, NULL);
    if (bad) {
        v->bad = seq;
        return 1;
    }
    return 0;
}

int
brk_audit_verify(brk_store_t *store, MDB_txn *txn, uint64_t *records_out, uint64_t *bad_out,
                 char *problem, size_t len)
{
    s_verify_t v = { .problem = problem, .len = len };
    problem[0] = '\0';
    int rc = brk_store_each(store, txn, BRK_DB_AUDIT, NULL, 0, s_verify_one, &v);
    if (rc < 0)
        return rc;
    if (v.bad) {
        *bad_out = v.bad;
        return -EILSEQ;
    }
    uint64_t n = v.expect;
    const void *val;
    size_t vlen;
    rc = brk_store_get(store, txn, BRK_DB_META, HEAD_KEY, sizeof HEAD_KEY - 1, &val, &vlen);
    uint64_t head_seq = 0;
    if (rc == 0 && vlen == 40)
        for (int i = 0; i < 8; i++)
            head_seq = head_seq << 8 | ((const uint8_t *) val)[i];
    if ((rc == 0 && (vlen != 40 || head_seq != n || memcmp((const uint8_t *) val + 8, v.prev, 32) != 0))
        || (rc == -ENOENT && n > 0)) {
        *bad_out = n + 1;
        snprintf(problem, len, "the log ends at record %llu but its head says %llu: records were removed",
                 (unsigned long long) n, (unsigned long long) head_seq);
        return -EILSEQ;
    }
    *records_out = n;
    return 0;
}

typedef struct {
    int64_t since;
    int (*fn)(void *, const Haven__AuditRecord *);
    void *arg;
} s_each_t;

static int
s_each_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    s_each_t *e = arg;
    Haven__AuditRecord *r = haven__audit_record__unpack(NULL, vlen, val);
    if (!r)
        return -EBADMSG;
    int rc = r->at >= e->since ? e->fn(e->arg, r) : 0;
    haven__audit_record__free_unpacked(r, NULL);
    return rc;
}

int
brk_audit_each(brk_store_t *store, MDB_txn *txn, int64_t since,
               int (*fn)(void *arg, const Haven__AuditRecord *rec), void *arg)
{
    s_each_t e = { since, fn, arg };
    return brk_store_each(store, txn, BRK_DB_AUDIT, NULL, 0, s_each_one, &e);
}
