/* SPDX-License-Identifier: MIT */
/* The audit log (see audit.h). In the store: BRK_DB_AUDIT holds be64 seq ->
 * AuditRecord; meta "audit-head" the last seq and hash (40 bytes; 72 with
 * the MAC over them, since the chain is keyed), so that cutting records
 * off the end is found too; meta "audit-base" the signed AuditHead of the
 * last record pruned; meta "audit-total/" + a packed summary record -> be64
 * count and a MAC over key and count (40 bytes), the monthly totals pruned
 * records leave for the reports. */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "audit.h"
#include "log.h"

#define HEAD_KEY "audit-head"
#define BASE_KEY "audit-base"
#define TOTAL_PREFIX "audit-total/"
#define HEAD_LINE "haven-audit-head"

/* Domain tags: a MAC or signature made for one purpose never passes for
 * another (a head is not a pruning base). */
static const char s_tag_record[] = "haven audit record mac v1";
static const char s_tag_head_mac[] = "haven audit head mac v1";
static const char s_tag_head[] = "haven audit head v1";
static const char s_tag_base[] = "haven audit base v1";
static const char s_tag_total[] = "haven audit total mac v1";

struct brk_audit_key {
    uint8_t chain[32];           /* the MAC key: crypto_kdf "hvaudit1", subkey 2 */
    uint8_t sign_secret[crypto_sign_SECRETKEYBYTES];
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
};

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

static void
s_be64(uint64_t v, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t) (v >> (56 - 8 * i));
}

static uint64_t
s_unbe64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

/* hash = BLAKE2b-256 of the record packed with its prev set and its hash
 * and MAC absent: the same as before the chain was keyed. */
static int
s_hash(Haven__AuditRecord *rec, uint8_t out[32])
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

static void
s_mac(const brk_audit_key_t *key, const char *tag, const uint8_t *data, size_t len, uint8_t out[32])
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

/* The meta head: seq, hash and, once keyed, a MAC over both. */
typedef struct {
    uint64_t seq;
    uint8_t hash[32];
    bool has_mac;
    uint8_t mac[32];
    bool found;
} s_head_t;

static int
s_head_read(brk_store_t *store, MDB_txn *txn, s_head_t *h)
{
    const void *val;
    size_t vlen;
    memset(h, 0, sizeof *h);
    int rc = brk_store_get(store, txn, BRK_DB_META, HEAD_KEY, sizeof HEAD_KEY - 1, &val, &vlen);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (vlen != 40 && vlen != 72)
        return -EBADMSG;
    h->found = true;
    h->seq = s_unbe64(val);
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
    s_be64(seq, k);
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
    s_head_t h;
    int64_t at = rec->at, last_at;
    int rc = s_head_read(store, txn, &h);
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
    if ((rc = s_hash(rec, hash)) < 0) {
        rec->at = at;
        return rc;
    }
    rec->has_hash = 1;
    rec->hash = (ProtobufCBinaryData) { 32, hash };
    if (key) {
        s_mac(key, s_tag_record, hash, 32, mac);
        rec->has_mac = 1;
        rec->mac = (ProtobufCBinaryData) { 32, mac };
    }
    s_be64(rec->seq, k);
    rc = brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, sizeof k, &rec->base);
    rec->at = at;
    rec->prev = rec->hash = rec->mac = (ProtobufCBinaryData) { 0, NULL };
    rec->has_prev = rec->has_hash = rec->has_mac = 0;
    if (rc < 0)
        return rc;
    s_be64(rec->seq, head);
    memcpy(head + 8, hash, 32);
    if (key)
        s_mac(key, s_tag_head_mac, head, 40, head + 40);
    return brk_store_put(store, txn, BRK_DB_META, HEAD_KEY, sizeof HEAD_KEY - 1, head, key ? 72 : 40);
}

/* ---------------------------------------------------------------- signatures */

static size_t
s_statement(const char *tag, uint64_t seq, const uint8_t hash[32], int64_t at, uint8_t *buf)
{
    size_t n = strlen(tag) + 1;
    memcpy(buf, tag, n);
    s_be64(seq, buf + n);
    memcpy(buf + n + 8, hash, 32);
    s_be64((uint64_t) at, buf + n + 40);
    return n + 48;
}

static bool
s_head_well_formed(const Haven__AuditHead *h)
{
    return h && h->hash.len == 32 && h->hash.data && h->signature.len == crypto_sign_BYTES && h->signature.data;
}

static int
s_signed_check(const char *tag, const Haven__AuditHead *h, const uint8_t pk[32])
{
    uint8_t msg[96];
    if (!s_head_well_formed(h))
        return -EINVAL;
    size_t n = s_statement(tag, h->seq, h->hash.data, h->at, msg);
    return crypto_sign_verify_detached(h->signature.data, msg, n, pk) == 0 ? 0 : -EPERM;
}

/* Returns 0, or -EIO if libsodium fails (then sig holds nothing to use). */
static int
s_sign(const brk_audit_key_t *key, const char *tag, uint64_t seq, const uint8_t hash[32], int64_t at,
       uint8_t sig[64])
{
    uint8_t msg[96];
    size_t n = s_statement(tag, seq, hash, at, msg);
    return crypto_sign_detached(sig, NULL, msg, n, key->sign_secret) == 0 ? 0 : -EIO;
}

int
brk_audit_head_check(const Haven__AuditHead *head, const uint8_t sign_public[32])
{
    return s_signed_check(s_tag_head, head, sign_public);
}

/* The pruning base, or -ENOENT. */
static int
s_base_read(brk_store_t *store, MDB_txn *txn, Haven__AuditHead **base_out)
{
    int rc = brk_store_get_msg(store, txn, BRK_DB_META, BASE_KEY, sizeof BASE_KEY - 1, &haven__audit_head__descriptor,
                               (ProtobufCMessage **) base_out);
    if (rc == 0 && !s_head_well_formed(*base_out)) {
        haven__audit_head__free_unpacked(*base_out, NULL);
        *base_out = NULL;
        return -EBADMSG;
    }
    return rc;
}

/* A monthly total's MAC, over its key (the summary) and its count, so that
 * a count cannot be made up or moved to another month without the key. */
static void
s_total_mac(const brk_audit_key_t *key, const void *kd, size_t klen, uint64_t count, uint8_t mac[32])
{
    uint8_t buf[520];
    memcpy(buf, kd, klen);       /* an LMDB key: 511 bytes at most */
    s_be64(count, buf + klen);
    s_mac(key, s_tag_total, buf, klen + 8, mac);
}

static bool
s_total_ok(const brk_audit_key_t *key, const void *kd, size_t klen, const void *val, size_t vlen)
{
    uint8_t mac[32];
    if (vlen != 40 || klen > 511)
        return false;
    s_total_mac(key, kd, klen, s_unbe64(val), mac);
    return sodium_memcmp(mac, (const uint8_t *) val + 8, 32) == 0;
}

typedef struct {
    const brk_audit_key_t *key;
    int64_t bad_month;           /* of the first total that fails, or -1 */
} s_total_check_t;

static int
s_total_check(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_total_check_t *t = arg;
    if (s_total_ok(t->key, key, klen, val, vlen))
        return 0;
    Haven__AuditRecord *r = klen > sizeof TOTAL_PREFIX - 1
                                ? haven__audit_record__unpack(NULL, klen - (sizeof TOTAL_PREFIX - 1),
                                                              (const uint8_t *) key + sizeof TOTAL_PREFIX - 1)
                                : NULL;
    t->bad_month = r ? r->at : 0;
    if (r)
        haven__audit_record__free_unpacked(r, NULL);
    return 1;
}

/* ---------------------------------------------------------------- verify */

typedef struct {
    const brk_audit_check_t *check;
    brk_audit_result_t *out;
    uint64_t expect;             /* the next seq */
    uint8_t prev[32];
    bool pruned;                 /* there is a base: the records before were keyed */
    bool have_at;
    int64_t prev_at;             /* the time of the record before */
    bool failed;
} s_verify_t;

static int
s_fail(s_verify_t *v, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int
s_fail(s_verify_t *v, uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->out->problem, sizeof v->out->problem, fmt, ap);
    va_end(ap);
    v->out->bad = seq;
    v->failed = true;
    return 1;
}

static int
s_verify_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_verify_t *v = arg;
    const brk_audit_check_t *c = v->check;
    brk_audit_result_t *out = v->out;
    uint8_t hash[32], mac[32];
    uint64_t seq = klen == 8 ? s_unbe64(key) : 0;
    unsigned long long s = (unsigned long long) seq;
    if (klen != 8 || seq != v->expect)
        return s_fail(v, v->expect, "record %llu is missing (the next one found is %llu)",
                      (unsigned long long) v->expect, s);
    Haven__AuditRecord *r = haven__audit_record__unpack(NULL, vlen, val);
    if (!r)
        return s_fail(v, seq, "record %llu does not decode: it was altered", s);
    int stop = 0;
    if (!r->has_seq || r->seq != seq || r->prev.len != 32 || memcmp(r->prev.data, v->prev, 32) != 0)
        stop = s_fail(v, seq, "record %llu does not follow record %llu: the chain is broken", s, s - 1);
    else if (r->hash.len != 32 || s_hash(r, hash) < 0 || memcmp(hash, r->hash.data, 32) != 0)
        stop = s_fail(v, seq, "record %llu was altered: its hash does not match its contents", s);
    else if (r->has_mac && r->mac.len != 32)
        stop = s_fail(v, seq, "record %llu was altered: its MAC is malformed", s);
    else if (!r->has_mac && out->keyed_from)
        stop = s_fail(v, seq, "record %llu has no MAC although the chain is keyed from record %llu: it was "
                      "rewritten without the broker's key", s, (unsigned long long) out->keyed_from);
    else if (!r->has_mac && v->pruned)
        stop = s_fail(v, seq, "record %llu has no MAC although the records before it were pruned, which only "
                      "keyed records are: it was rewritten without the broker's key", s);
    else if (v->have_at && (!r->has_at || r->at < v->prev_at))
        stop = s_fail(v, seq, "record %llu is dated before record %llu: it was backdated or moved (the broker "
                      "never dates a record before the one before it)", s, s - 1);
    if (!stop && r->has_mac) {
        if (!out->keyed_from)
            out->keyed_from = seq;
        if (c->key) {
            s_mac(c->key, s_tag_record, hash, 32, mac);
            if (sodium_memcmp(mac, r->mac.data, 32) != 0)
                stop = s_fail(v, seq, "record %llu was altered: its MAC does not match (it was not written "
                              "with this broker's key)", s);
        }
    }
    if (!stop && r->checkpoint && c->sign_public
        && s_signed_check(s_tag_base, r->checkpoint, c->sign_public) < 0)
        stop = s_fail(v, seq, "record %llu is a checkpoint the broker did not sign", s);
    if (!stop && c->head && c->head->seq == seq) {
        if (memcmp(c->head->hash.data, hash, 32) != 0)
            stop = s_fail(v, seq, "record %llu is not the record the head kept elsewhere names: the log "
                          "was rewritten", s);
        else
            out->head_checked = true;
    }
    /* A head whose record was pruned: a checkpoint the broker signed may
     * name that record, and then says what its hash was. */
    if (!stop && c->head && r->checkpoint && c->head->seq == r->checkpoint->seq && c->head->seq < out->first) {
        if (memcmp(c->head->hash.data, r->checkpoint->hash.data, 32) != 0)
            stop = s_fail(v, seq, "the checkpoint at record %llu names another record %llu than the head kept "
                          "elsewhere: the log was rewritten", s, (unsigned long long) c->head->seq);
        else
            out->head_checked = true;
    }
    if (!stop && r->has_at) {
        v->have_at = true;
        v->prev_at = r->at;
    }
    haven__audit_record__free_unpacked(r, NULL);
    if (stop)
        return 1;
    memcpy(v->prev, hash, 32);
    out->records++;
    out->last = seq;
    v->expect++;
    return 0;
}

int
brk_audit_verify(brk_store_t *store, MDB_txn *txn, const brk_audit_check_t *check, brk_audit_result_t *out)
{
    s_verify_t v = { .check = check, .out = out, .expect = 1 };
    Haven__AuditHead *base = NULL;
    memset(out, 0, sizeof *out);
    if (check->head && (!check->sign_public || !s_head_well_formed(check->head)))
        return -EINVAL;
    out->macs_checked = check->key != NULL;
    out->signatures_checked = check->sign_public != NULL;
    if (check->head && brk_audit_head_check(check->head, check->sign_public) < 0) {
        snprintf(out->problem, sizeof out->problem, "the head kept elsewhere is not signed by this broker's "
                 "signing key (broker.pub's sign line): it cannot vouch for the log");
        out->bad = check->head->seq;
        return -EILSEQ;
    }
    int rc = s_base_read(store, txn, &base);
    if (rc == 0) {
        if (check->sign_public && s_signed_check(s_tag_base, base, check->sign_public) < 0) {
            snprintf(out->problem, sizeof out->problem, "the record where pruning stopped (%llu) is not signed "
                     "by the broker: records were removed from the start of the log",
                     (unsigned long long) base->seq);
            out->bad = base->seq + 1;
            haven__audit_head__free_unpacked(base, NULL);
            return -EILSEQ;
        }
        v.expect = base->seq + 1;
        v.pruned = base->seq > 0;
        memcpy(v.prev, base->hash.data, 32);
        if (check->head && check->head->seq == base->seq) {
            if (memcmp(check->head->hash.data, base->hash.data, 32) == 0)
                out->head_checked = true;
            else
                rc = -EILSEQ;
        }
        haven__audit_head__free_unpacked(base, NULL);
        if (rc == -EILSEQ) {
            snprintf(out->problem, sizeof out->problem, "the head kept elsewhere names another record %llu "
                     "than the one pruning stopped at: the log was rewritten", (unsigned long long) check->head->seq);
            out->bad = check->head->seq;
            return -EILSEQ;
        }
    } else if (rc == -EBADMSG) {
        snprintf(out->problem, sizeof out->problem, "the record of where pruning stopped was altered");
        out->bad = 1;
        return -EILSEQ;
    } else if (rc != -ENOENT) {
        return rc;
    }
    out->first = v.expect;
    out->last = v.expect - 1;
    if ((rc = brk_store_each(store, txn, BRK_DB_AUDIT, NULL, 0, s_verify_one, &v)) < 0)
        return rc;
    if (v.failed)
        return -EILSEQ;

    s_head_t h;
    if ((rc = s_head_read(store, txn, &h)) < 0 && rc != -EBADMSG)
        return rc;
    uint64_t n = out->last;
    if (rc == -EBADMSG || (!h.found && n > 0) || (h.found && (h.seq != n || memcmp(h.hash, v.prev, 32) != 0))) {
        out->bad = n + 1;
        snprintf(out->problem, sizeof out->problem,
                 "the log ends at record %llu but its head says %llu: records were removed",
                 (unsigned long long) n, (unsigned long long) h.seq);
        return -EILSEQ;
    }
    /* With the key, a log that has records must be keyed, head and all:
     * MACs sit outside the hashes, so stripping them and re-chaining is
     * what someone without the key would do. A store from before keyed
     * audit looks the same until its broker has started on it once. */
    if (check->key && n > 0 && (!out->keyed_from || !h.has_mac)) {
        out->bad = out->keyed_from ? n + 1 : out->first;
        snprintf(out->problem, sizeof out->problem, "%s: the log was rewritten without the broker's key, or "
                 "is a store from before keyed audit that this broker has never opened",
                 out->keyed_from ? "the log's head carries no MAC" : "no record carries a MAC");
        return -EILSEQ;
    }
    if (check->key && n > 0) {
        uint8_t buf[40], mac[32];
        s_be64(h.seq, buf);
        memcpy(buf + 8, h.hash, 32);
        s_mac(check->key, s_tag_head_mac, buf, 40, mac);
        if (sodium_memcmp(mac, h.mac, 32) != 0) {
            out->bad = n + 1;
            snprintf(out->problem, sizeof out->problem, "the log's head was rewritten without the broker's "
                     "key: records after %llu may have been removed", (unsigned long long) n);
            return -EILSEQ;
        }
    }
    if (check->head && check->head->seq > n) {
        out->bad = n + 1;
        snprintf(out->problem, sizeof out->problem,
                 "the log ends at record %llu but the head kept elsewhere is at record %llu: records were "
                 "removed (or this is a copy older than the head)",
                 (unsigned long long) n, (unsigned long long) check->head->seq);
        return -EILSEQ;
    }
    /* The totals pruned records left: with the key, each count must be
     * the broker's, so that none was made up (deleting one, or putting
     * back an older, lower one, is not found). */
    if (check->key) {
        s_total_check_t t = { check->key, -1 };
        if ((rc = brk_store_each(store, txn, BRK_DB_META, TOTAL_PREFIX, sizeof TOTAL_PREFIX - 1, s_total_check,
                                 &t)) < 0)
            return rc;
        if (t.bad_month >= 0) {
            char month[16] = "?";
            time_t tt = (time_t) t.bad_month;
            struct tm tm;
            if (gmtime_r(&tt, &tm))
                strftime(month, sizeof month, "%Y-%m", &tm);
            out->bad = 0;
            snprintf(out->problem, sizeof out->problem, "a monthly total for %s was written without the broker's "
                     "key: the reports' counts for pruned months cannot be trusted", month);
            return -EILSEQ;
        }
    }
    if (check->head && check->head->seq == 0)
        out->head_checked = true;
    /* A head that cannot be checked is no pass: pruning is how a log
     * rewritten wholesale would put itself out of a head's reach. */
    if (check->head && !out->head_checked) {
        out->bad = check->head->seq;
        snprintf(out->problem, sizeof out->problem, "record %llu, which the head kept elsewhere names, was "
                 "pruned (the log now starts at %llu) and no checkpoint names it, so the head cannot vouch "
                 "for the log: check against a newer head (at record %llu or later)",
                 (unsigned long long) check->head->seq, (unsigned long long) out->first,
                 (unsigned long long) (out->first - 1));
        return -EILSEQ;
    }
    return 0;
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
    Haven__AuditRecord *r = haven__audit_record__unpack(NULL, klen - (sizeof TOTAL_PREFIX - 1),
                                                        (const uint8_t *) key + sizeof TOTAL_PREFIX - 1);
    if (!r)
        return -EBADMSG;
    int rc = t->fn(t->arg, r, s_unbe64(val));
    haven__audit_record__free_unpacked(r, NULL);
    return rc;
}

int
brk_audit_totals_each(brk_store_t *store, MDB_txn *txn,
                      int (*fn)(void *arg, const Haven__AuditRecord *rec, uint64_t count), void *arg)
{
    s_totals_t t = { fn, arg };
    return brk_store_each(store, txn, BRK_DB_META, TOTAL_PREFIX, sizeof TOTAL_PREFIX - 1, s_total_one, &t);
}

/* ---------------------------------------------------------------- heads */

int
brk_audit_head(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t now,
               Haven__AuditHead *head_out, uint8_t hash[32], uint8_t sig[64])
{
    s_head_t h;
    int rc = s_head_read(store, txn, &h);
    if (rc < 0)
        return rc;
    memcpy(hash, h.hash, 32);
    if ((rc = s_sign(key, s_tag_head, h.seq, hash, now, sig)) < 0)
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

/* ---------------------------------------------------------------- retention */

static int64_t
s_month_start(int64_t t, int back)
{
    time_t tt = (time_t) t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int m = tm.tm_year * 12 + tm.tm_mon - back;   /* months since 1900 */
    struct tm s = { .tm_year = m / 12, .tm_mon = m % 12, .tm_mday = 1 };
    return (int64_t) timegm(&s);
}

int64_t
brk_audit_cutoff(int64_t now, int months)
{
    return s_month_start(now, months);
}

/* What a pruned record leaves for the reports: the fields they read, the
 * time cut to its month, and matching/limit cut to none, fewer or enough.
 * 0 if the reports do not count it. */
static size_t
s_summary(const Haven__AuditRecord *r, uint8_t *buf, size_t len)
{
    Haven__AuditRecord s = HAVEN__AUDIT_RECORD__INIT;
    if (!r->action || !r->has_outcome || r->outcome != HAVEN__STATUS__STATUS_OK)
        return 0;
    s.has_at = s.has_outcome = 1;
    s.at = s_month_start(r->at, 0);
    s.outcome = HAVEN__STATUS__STATUS_OK;
    if (strcmp(r->action, "search") == 0) {
        s.action = "search";
        s.region = r->region;
        s.has_dims = s.has_matching = s.has_limit = 1;
        s.dims = r->dims;
        /* none: 0 of 1; fewer: 1 of 2; enough: 1 of 1 */
        s.matching = r->matching == 0 ? 0 : 1;
        s.limit = r->matching > 0 && r->matching < r->limit ? 2 : 1;
        if (r->matching < r->limit && r->relax && *r->relax)
            s.relax = r->relax;
    } else if (strcmp(r->action, "decline") == 0 && r->has_reason) {
        s.action = "decline";
        s.has_reason = s.has_kind = 1;
        s.reason = r->reason;
        s.kind = r->kind;
    } else {
        return 0;
    }
    size_t n = protobuf_c_message_get_packed_size(&s.base);
    if (n + sizeof TOTAL_PREFIX > len)
        return 0;                /* an overlong region: LMDB keys are 511 bytes at most */
    memcpy(buf, TOTAL_PREFIX, sizeof TOTAL_PREFIX - 1);
    return sizeof TOTAL_PREFIX - 1 + protobuf_c_message_pack(&s.base, buf + sizeof TOTAL_PREFIX - 1);
}

typedef struct {
    const brk_audit_key_t *key;
    int64_t before;
    size_t max, n;
    uint64_t *seqs;
    uint64_t last;               /* the last record pruned (or the base) */
    uint8_t last_hash[32];
    bool have_at;
    int64_t last_at;             /* the time of the last record pruned in this pass */
    bool more;
    uint64_t held;               /* an old record without a MAC stopped pruning */
    GHashTable *totals;          /* GBytes summary key -> count */
} s_prune_t;

static int
s_prune_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_prune_t *p = arg;
    uint8_t hash[32], mac[32];
    Haven__AuditRecord *r = haven__audit_record__unpack(NULL, vlen, val);
    if (!r)
        return -EILSEQ;
    bool old = r->at < p->before;
    if (!old || p->n == p->max) {
        p->more = old;
        haven__audit_record__free_unpacked(r, NULL);
        return 1;
    }
    /* Pruning must never launder a record someone altered into the
     * totals and out of sight: each is checked as verify would, and only
     * one the key vouches for goes. A record without a MAC stays where a
     * head kept elsewhere can reach it: it is from before keyed audit, or
     * someone stripped its MAC, and nothing here can tell which. */
    bool ok = klen == 8 && s_unbe64(key) == p->last + 1 && r->prev.len == 32
              && memcmp(r->prev.data, p->last_hash, 32) == 0 && r->hash.len == 32 && s_hash(r, hash) == 0
              && memcmp(hash, r->hash.data, 32) == 0 && (!p->have_at || r->at >= p->last_at);
    if (ok && !r->has_mac) {
        /* After a base or a keyed record it is a plain failure (verify
         * says so); first in the log, it holds pruning back. */
        haven__audit_record__free_unpacked(r, NULL);
        if (p->n > 0 || p->last > 0)
            return -EILSEQ;
        p->held = s_unbe64(key);
        return 1;
    }
    if (ok) {
        s_mac(p->key, s_tag_record, hash, 32, mac);
        ok = r->mac.len == 32 && sodium_memcmp(mac, r->mac.data, 32) == 0;
    }
    if (!ok) {
        haven__audit_record__free_unpacked(r, NULL);
        return -EILSEQ;
    }
    uint8_t buf[512];
    size_t len = s_summary(r, buf, sizeof buf);
    if (len) {
        GBytes *k = g_bytes_new(buf, len);
        gpointer n = g_hash_table_lookup(p->totals, k);
        g_hash_table_replace(p->totals, k, GSIZE_TO_POINTER(GPOINTER_TO_SIZE(n) + 1));
    }
    p->seqs[p->n++] = s_unbe64(key);
    p->last = s_unbe64(key);
    memcpy(p->last_hash, hash, 32);
    p->have_at = true;
    p->last_at = r->at;
    haven__audit_record__free_unpacked(r, NULL);
    return 0;
}

int
brk_audit_prune(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t before,
                int64_t now, size_t max, brk_audit_pruned_t *out)
{
    s_prune_t p = { .key = key, .before = before, .max = max };
    Haven__AuditHead *old_base = NULL;
    int rc = s_base_read(store, txn, &old_base);
    if (rc == 0) {
        p.last = old_base->seq;
        memcpy(p.last_hash, old_base->hash.data, 32);
        haven__audit_head__free_unpacked(old_base, NULL);
    } else if (rc != -ENOENT) {
        return rc == -EBADMSG ? -EILSEQ : rc;
    }
    p.seqs = calloc(max ? max : 1, sizeof *p.seqs);
    p.totals = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify) g_bytes_unref, NULL);
    rc = p.seqs ? brk_store_each(store, txn, BRK_DB_AUDIT, NULL, 0, s_prune_one, &p) : -ENOMEM;
    if (rc < 0 || p.n == 0)
        goto out;
    /* The totals first: a count is never lost with its record. */
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p.totals);
    while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
        size_t klen;
        const void *kd = g_bytes_get_data(k, &klen);
        const void *old;
        size_t olen;
        uint64_t count = GPOINTER_TO_SIZE(v);
        uint8_t c[40];
        rc = brk_store_get(store, txn, BRK_DB_META, kd, klen, &old, &olen);
        if (rc == 0 && !s_total_ok(key, kd, klen, old, olen))
            rc = -EILSEQ;        /* a count the key does not vouch for is not added to */
        else if (rc == 0)
            count += s_unbe64(old);
        else if (rc == -ENOENT)
            rc = 0;
        if (rc < 0)
            break;
        s_be64(count, c);
        s_total_mac(key, kd, klen, count, c + 8);
        rc = brk_store_put(store, txn, BRK_DB_META, kd, klen, c, 40);
    }
    for (size_t i = 0; rc == 0 && i < p.n; i++) {
        uint8_t kb[8];
        s_be64(p.seqs[i], kb);
        rc = brk_store_del(store, txn, BRK_DB_AUDIT, kb, 8);
    }
    if (rc < 0)
        goto out;
    uint8_t sig[64];
    if ((rc = s_sign(key, s_tag_base, p.last, p.last_hash, now, sig)) < 0)
        goto out;
    Haven__AuditHead base = HAVEN__AUDIT_HEAD__INIT;
    base.seq = p.last;
    base.hash = (ProtobufCBinaryData) { 32, p.last_hash };
    base.at = now;
    base.signature = (ProtobufCBinaryData) { 64, sig };
    if ((rc = brk_store_put_msg(store, txn, BRK_DB_META, BASE_KEY, sizeof BASE_KEY - 1, &base.base)) < 0)
        goto out;
    if (!p.more) {
        /* The pass is over: say so in the chain, where the records were. */
        char detail[256], day[16];
        time_t t = (time_t) before;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        snprintf(detail, sizeof detail, "records up to %" PRIu64 ", before %s, were counted into monthly "
                 "totals and removed ([audit] retention)", p.last, day);
        Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
        rec.has_at = rec.has_outcome = 1;
        rec.at = now;
        rec.principal = "(broker)";
        rec.action = "checkpoint";
        rec.outcome = HAVEN__STATUS__STATUS_OK;
        rec.detail = detail;
        rec.checkpoint = &base;
        rc = brk_audit_append(key, store, txn, &rec);
    }
out:
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->pruned = p.n;
        out->more = p.more;
        out->held = p.held;
    }
    free(p.seqs);
    g_hash_table_destroy(p.totals);
    return rc;
}

static int64_t
s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define PRUNE_BATCH 256          /* records per transaction: a few ms */

/* If the stored head has no MAC and the log has records, append a
 * "keyed" record inside txn and set *seq_out to it (else to 0). */
static int
s_key_log(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t now, uint64_t *seq_out)
{
    s_head_t h;
    char detail[320];
    int rc = s_head_read(store, txn, &h);
    *seq_out = 0;
    if (rc < 0 || !h.found || h.seq == 0 || h.has_mac)
        return rc;
    snprintf(detail, sizeof detail, "the log's head had no MAC: records up to %" PRIu64 " are from before the "
             "chain was keyed, or were rewritten without broker.key (only a head kept elsewhere can tell), and "
             "are never pruned; from this record on the chain is keyed with a key derived from broker.key",
             h.seq);
    Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
    rec.has_at = rec.has_outcome = 1;
    rec.at = now;
    rec.principal = "(broker)";
    rec.action = "keyed";
    rec.outcome = HAVEN__STATUS__STATUS_OK;
    rec.detail = detail;
    if ((rc = brk_audit_append(key, store, txn, &rec)) == 0)
        *seq_out = rec.seq;
    return rc;
}

int
brk_audit_maintain(const brk_audit_key_t *key, brk_store_t *store, int64_t before, int64_t now,
                   int budget_ms, brk_audit_pruned_t *out)
{
    int64_t until = s_ms() + budget_ms;
    brk_audit_pruned_t sum = { 0 };
    int rc = 0;
    bool keying = true;
    for (int grown = 0; grown < 8;) {
        MDB_txn *txn = NULL;
        brk_audit_pruned_t b = { 0 };
        uint64_t keyed_seq = 0;
        if ((rc = brk_store_begin(store, NULL, true, &txn)) < 0)
            break;
        /* Keying comes first and alone: a log that fails its check is not
         * pruned, but is keyed all the same. */
        if (keying)
            rc = s_key_log(key, store, txn, now, &keyed_seq);
        else
            rc = brk_audit_prune(key, store, txn, before, now, PRUNE_BATCH, &b);
        if (rc == 0 && (b.pruned || keyed_seq))
            rc = brk_store_commit(txn);
        else
            brk_store_abort(txn);
        if (rc == -ENOSPC) {
            if ((rc = brk_store_grow(store)) < 0)
                break;
            grown++;
            continue;
        }
        if (rc < 0)
            break;
        if (keying) {
            keying = false;
            sum.keyed_now = keyed_seq != 0;
            sum.keyed_seq = keyed_seq;
            continue;
        }
        sum.pruned += b.pruned;
        sum.more = b.more;
        sum.held = b.held;
        if (!b.more || s_ms() >= until)
            break;
    }
    *out = sum;                  /* on failure too: the keying stands */
    return rc;
}
