/* SPDX-License-Identifier: MIT */
/* The audit log (see audit.h). In the store: BRK_DB_AUDIT holds be64 seq ->
 * AuditRecord; meta "audit-head" the last seq and hash (40 bytes; 72 with
 * the MAC over them, since the chain is keyed), so that cutting records
 * off the end is found too; meta "audit-base" the signed AuditHead of the
 * last record pruned; meta "audit-total/" + a packed summary record -> be64
 * count and a MAC over key and count (40 bytes), the monthly totals pruned
 * records leave for the reports. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "audit_chain.h"
#include "log.h"

#define HEAD_LINE "haven-audit-head"

int
brk_audit_key_new(const hv_keys_t *keys, brk_audit_key_t **key_out)
{
    if (sodium_init() < 0)
        return -EIO;
    brk_audit_key_t *k = sodium_malloc(sizeof *k);
    if (!k)
        return -ENOMEM;
    if (crypto_kdf_derive_from_key(k->chain, sizeof k->chain, 2, "hvaudit1", hv_keys_seal_secret(keys)) != 0) {
        sodium_free(k);
        return -EIO;
    }
    /* The signing pair is the key file's own (keys.h derives it from the
     * sealing secret): what broker.pub's sign line names. */
    memcpy(k->sign_secret, hv_keys_sign_secret(keys), sizeof k->sign_secret);
    memcpy(k->sign_public, hv_keys_sign_public(keys), sizeof k->sign_public);
    sodium_mprotect_readonly(k);
    *key_out = k;
    return 0;
}

void
brk_audit_key_destroy(brk_audit_key_t **self_p)
{
    if (self_p && *self_p) {
        sodium_free(*self_p);    /* wipes */
        *self_p = NULL;
    }
}

const uint8_t *
brk_audit_key_sign_public(const brk_audit_key_t *self)
{
    return self->sign_public;
}

/* ---------------------------------------------------------------- chain */

void
brk_audit_be64(uint64_t v, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t) (v >> (56 - 8 * i));
}

uint64_t
brk_audit_unbe64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

/* hash = BLAKE2b-256 of the record packed with its prev set and its hash
 * and MAC absent: the same as before the chain was keyed. */
int
brk_audit_hash(Haven__AuditRecord *rec, uint8_t out[32])
{
    protobuf_c_boolean had_hash = rec->has_hash, had_mac = rec->has_mac;
    rec->has_hash = rec->has_mac = 0;
    size_t len = protobuf_c_message_get_packed_size(&rec->base);
    uint8_t *buf = malloc(len + 1);
    int rc = -ENOMEM;
    if (buf) {
        protobuf_c_message_pack(&rec->base, buf);
        rc = crypto_generichash(out, 32, buf, len, NULL, 0) == 0 ? 0 : -EIO;
        free(buf);
    }
    rec->has_hash = had_hash;
    rec->has_mac = had_mac;
    return rc;
}

void
brk_audit_mac(const brk_audit_key_t *key, const char *tag, const uint8_t *data, size_t len, uint8_t out[32])
{
    crypto_generichash_state st;
    /* Keyed BLAKE2b with a 32-byte key and output cannot fail; if it ever
     * did, a MAC that is not one would be written into the chain or taken
     * for a check, so stop rather than go on. */
    if (crypto_generichash_init(&st, key->chain, sizeof key->chain, 32) != 0
        || crypto_generichash_update(&st, (const uint8_t *) tag, strlen(tag) + 1) != 0
        || crypto_generichash_update(&st, data, len) != 0
        || crypto_generichash_final(&st, out, 32) != 0) {
        brk_log(BRK_LOG_ERROR, "libsodium failed to compute an audit MAC; stopping");
        abort();
    }
}

int
brk_audit_head_read(brk_store_t *store, MDB_txn *txn, brk_audit_stored_head_t *h)
{
    const void *val;
    size_t vlen;
    memset(h, 0, sizeof *h);
    int rc = brk_store_get(store, txn, BRK_DB_META, AUDIT_HEAD_KEY, sizeof AUDIT_HEAD_KEY - 1, &val, &vlen);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (vlen != 40 && vlen != 72)
        return -EBADMSG;
    h->found = true;
    h->seq = brk_audit_unbe64(val);
    memcpy(h->hash, (const uint8_t *) val + 8, 32);
    if (vlen == 72) {
        h->has_mac = true;
        memcpy(h->mac, (const uint8_t *) val + 40, 32);
    }
    return 0;
}

/* The time of record seq, or -ENOENT if it is gone or does not decode. */
static int
s_record_at(brk_store_t *store, MDB_txn *txn, uint64_t seq, int64_t *at_out)
{
    uint8_t k[8];
    Haven__AuditRecord *r = NULL;
    brk_audit_be64(seq, k);
    int rc = brk_store_get_msg(store, txn, BRK_DB_AUDIT, k, 8, &haven__audit_record__descriptor,
                               (ProtobufCMessage **) &r);
    if (rc == -EBADMSG)
        return -ENOENT;
    if (rc < 0)
        return rc;
    if (!r->has_at)
        rc = -ENOENT;
    else
        *at_out = r->at;
    haven__audit_record__free_unpacked(r, NULL);
    return rc;
}

int
brk_audit_append(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, Haven__AuditRecord *rec)
{
    uint8_t head[72], hash[32], mac[32], k[8];
    brk_audit_stored_head_t h;
    int64_t at = rec->at, last_at;
    int rc = brk_audit_head_read(store, txn, &h);
    if (rc < 0)
        return rc;
    /* Never back in time (a clock set back): verify and pruning refuse a
     * log that goes back, since that is how backdated records show. */
    if (h.seq > 0 && (rc = s_record_at(store, txn, h.seq, &last_at)) < 0 && rc != -ENOENT)
        return rc;
    if (h.seq > 0 && rc == 0 && rec->has_at && rec->at < last_at)
        rec->at = last_at;
    rec->has_seq = 1;
    rec->seq = h.seq + 1;
    rec->has_prev = 1;
    rec->prev = (ProtobufCBinaryData) { 32, h.hash };
    rec->has_hash = rec->has_mac = 0;
    if ((rc = brk_audit_hash(rec, hash)) < 0) {
        rec->at = at;
        return rc;
    }
    rec->has_hash = 1;
    rec->hash = (ProtobufCBinaryData) { 32, hash };
    if (key) {
        brk_audit_mac(key, AUDIT_TAG_RECORD, hash, 32, mac);
        rec->has_mac = 1;
        rec->mac = (ProtobufCBinaryData) { 32, mac };
    }
    brk_audit_be64(rec->seq, k);
    rc = brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, sizeof k, &rec->base);
    rec->at = at;
    rec->prev = rec->hash = rec->mac = (ProtobufCBinaryData) { 0, NULL };
    rec->has_prev = rec->has_hash = rec->has_mac = 0;
    if (rc < 0)
        return rc;
    brk_audit_be64(rec->seq, head);
    memcpy(head + 8, hash, 32);
    if (key)
        brk_audit_mac(key, AUDIT_TAG_HEAD_MAC, head, 40, head + 40);
    return brk_store_put(store, txn, BRK_DB_META, AUDIT_HEAD_KEY, sizeof AUDIT_HEAD_KEY - 1, head, key ? 72 : 40);
}

/* ---------------------------------------------------------------- signatures */

static size_t
s_statement(const char *tag, uint64_t seq, const uint8_t hash[32], int64_t at, uint8_t *buf)
{
    size_t n = strlen(tag) + 1;
    memcpy(buf, tag, n);
    brk_audit_be64(seq, buf + n);
    memcpy(buf + n + 8, hash, 32);
    brk_audit_be64((uint64_t) at, buf + n + 40);
    return n + 48;
}

bool
brk_audit_head_well_formed(const Haven__AuditHead *h)
{
    return h && h->hash.len == 32 && h->hash.data && h->signature.len == crypto_sign_BYTES && h->signature.data;
}

int
brk_audit_signed_check(const char *tag, const Haven__AuditHead *h, const uint8_t pk[32])
{
    uint8_t msg[96];
    if (!brk_audit_head_well_formed(h))
        return -EINVAL;
    size_t n = s_statement(tag, h->seq, h->hash.data, h->at, msg);
    return crypto_sign_verify_detached(h->signature.data, msg, n, pk) == 0 ? 0 : -EPERM;
}

/* Returns 0, or -EIO if libsodium fails (then sig holds nothing to use). */
int
brk_audit_sign(const brk_audit_key_t *key, const char *tag, uint64_t seq, const uint8_t hash[32], int64_t at,
               uint8_t sig[64])
{
    uint8_t msg[96];
    size_t n = s_statement(tag, seq, hash, at, msg);
    return crypto_sign_detached(sig, NULL, msg, n, key->sign_secret) == 0 ? 0 : -EIO;
}

int
brk_audit_head_check(const Haven__AuditHead *head, const uint8_t sign_public[32])
{
    return brk_audit_signed_check(AUDIT_TAG_HEAD, head, sign_public);
}

/* The pruning base, or -ENOENT. */
int
brk_audit_base_read(brk_store_t *store, MDB_txn *txn, Haven__AuditHead **base_out)
{
    int rc = brk_store_get_msg(store, txn, BRK_DB_META, AUDIT_BASE_KEY, sizeof AUDIT_BASE_KEY - 1,
                               &haven__audit_head__descriptor, (ProtobufCMessage **) base_out);
    if (rc == 0 && !brk_audit_head_well_formed(*base_out)) {
        haven__audit_head__free_unpacked(*base_out, NULL);
        *base_out = NULL;
        return -EBADMSG;
    }
    return rc;
}

/* A monthly total's MAC, over its key (the summary) and its count, so that
 * a count cannot be made up or moved to another month without the key. */
void
brk_audit_total_mac(const brk_audit_key_t *key, const void *kd, size_t klen, uint64_t count, uint8_t mac[32])
{
    uint8_t buf[520];
    memcpy(buf, kd, klen);       /* an LMDB key: 511 bytes at most */
    brk_audit_be64(count, buf + klen);
    brk_audit_mac(key, AUDIT_TAG_TOTAL, buf, klen + 8, mac);
}

bool
brk_audit_total_ok(const brk_audit_key_t *key, const void *kd, size_t klen, const void *val, size_t vlen)
{
    uint8_t mac[32];
    if (vlen != 40 || klen > 511)
        return false;
    brk_audit_total_mac(key, kd, klen, brk_audit_unbe64(val), mac);
    return sodium_memcmp(mac, (const uint8_t *) val + 8, 32) == 0;
}

int
brk_audit_total_check(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    brk_audit_total_check_t *t = arg;
    if (brk_audit_total_ok(t->key, key, klen, val, vlen))
        return 0;
    Haven__AuditRecord *r = klen > sizeof AUDIT_TOTAL_PREFIX - 1
                                ? haven__audit_record__unpack(NULL, klen - (sizeof AUDIT_TOTAL_PREFIX - 1),
                                                              (const uint8_t *) key + sizeof AUDIT_TOTAL_PREFIX - 1)
                                : NULL;
    t->bad_month = r ? r->at : 0;
    if (r)
        haven__audit_record__free_unpacked(r, NULL);
    return 1;
}

/* ---------------------------------------------------------------- walk */

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

typedef struct {
    int (*fn)(void *, const Haven__AuditRecord *, uint64_t);
    void *arg;
} s_totals_t;

static int
s_total_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_totals_t *t = arg;
    if (vlen != 8 && vlen != 40)  /* 8: written before totals were MACed */
        return -EBADMSG;
    Haven__AuditRecord *r = haven__audit_record__unpack(NULL, klen - (sizeof AUDIT_TOTAL_PREFIX - 1),
                                                        (const uint8_t *) key + sizeof AUDIT_TOTAL_PREFIX - 1);
    if (!r)
        return -EBADMSG;
    int rc = t->fn(t->arg, r, brk_audit_unbe64(val));
    haven__audit_record__free_unpacked(r, NULL);
    return rc;
}

int
brk_audit_totals_each(brk_store_t *store, MDB_txn *txn,
                      int (*fn)(void *arg, const Haven__AuditRecord *rec, uint64_t count), void *arg)
{
    s_totals_t t = { fn, arg };
    return brk_store_each(store, txn, BRK_DB_META, AUDIT_TOTAL_PREFIX, sizeof AUDIT_TOTAL_PREFIX - 1, s_total_one, &t);
}

/* ---------------------------------------------------------------- heads */

int
brk_audit_head(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t now,
               Haven__AuditHead *head_out, uint8_t hash[32], uint8_t sig[64])
{
    brk_audit_stored_head_t h;
    int rc = brk_audit_head_read(store, txn, &h);
    if (rc < 0)
        return rc;
    memcpy(hash, h.hash, 32);
    if ((rc = brk_audit_sign(key, AUDIT_TAG_HEAD, h.seq, hash, now, sig)) < 0)
        return rc;
    haven__audit_head__init(head_out);
    head_out->seq = h.seq;
    head_out->hash = (ProtobufCBinaryData) { 32, hash };
    head_out->at = now;
    head_out->signature = (ProtobufCBinaryData) { 64, sig };
    return 0;
}

void
brk_audit_head_format(const Haven__AuditHead *head, char *buf, size_t len)
{
    char hash[65], sig[129];
    sodium_bin2hex(hash, sizeof hash, head->hash.data, 32);
    sodium_bin2hex(sig, sizeof sig, head->signature.data, 64);
    snprintf(buf, len, HEAD_LINE " seq=%" PRIu64 " hash=%s at=%" PRId64 " signature=%s", head->seq, hash,
             head->at, sig);
}

int
brk_audit_head_parse(const char *text, Haven__AuditHead *head_out, uint8_t hash[32], uint8_t sig[64])
{
    const char *line = NULL;
    for (const char *p = strstr(text, HEAD_LINE " "); p; p = strstr(p + 1, HEAD_LINE " "))
        line = p;
    if (!line)
        return -EINVAL;
    char hx[65], sx[129];
    uint64_t seq;
    int64_t at;
    size_t hl, sl;
    if (sscanf(line, HEAD_LINE " seq=%" SCNu64 " hash=%64[0-9a-f] at=%" SCNd64 " signature=%128[0-9a-f]", &seq,
               hx, &at, sx) != 4
        || sodium_hex2bin(hash, 32, hx, strlen(hx), NULL, &hl, NULL) != 0 || hl != 32
        || sodium_hex2bin(sig, 64, sx, strlen(sx), NULL, &sl, NULL) != 0 || sl != 64)
        return -EINVAL;
    haven__audit_head__init(head_out);
    head_out->seq = seq;
    head_out->hash = (ProtobufCBinaryData) { 32, hash };
    head_out->at = at;
    head_out->signature = (ProtobufCBinaryData) { 64, sig };
    return 0;
}
