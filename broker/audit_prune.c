/* SPDX-License-Identifier: MIT */
/* Retention of the audit log (see audit.h): records of months past [audit]
 * retention are counted into MACed monthly totals and removed, oldest
 * first, under a signed base and a checkpoint; the broker's upkeep keys an
 * unkeyed chain first. */
#include <glib.h>
#include <sodium.h>
#include <time.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "audit_chain.h"
#include "clock.h"

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
    if (n + sizeof AUDIT_TOTAL_PREFIX > len)
        return 0;                /* an overlong region: LMDB keys are 511 bytes at most */
    memcpy(buf, AUDIT_TOTAL_PREFIX, sizeof AUDIT_TOTAL_PREFIX - 1);
    return sizeof AUDIT_TOTAL_PREFIX - 1 + protobuf_c_message_pack(&s.base, buf + sizeof AUDIT_TOTAL_PREFIX - 1);
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
    bool ok = klen == 8 && brk_audit_unbe64(key) == p->last + 1 && r->prev.len == 32
              && memcmp(r->prev.data, p->last_hash, 32) == 0 && r->hash.len == 32 && brk_audit_hash(r, hash) == 0
              && memcmp(hash, r->hash.data, 32) == 0 && (!p->have_at || r->at >= p->last_at);
    if (ok && !r->has_mac) {
        /* After a base or a keyed record it is a plain failure (verify
         * says so); first in the log, it holds pruning back. */
        haven__audit_record__free_unpacked(r, NULL);
        if (p->n > 0 || p->last > 0)
            return -EILSEQ;
        p->held = brk_audit_unbe64(key);
        return 1;
    }
    if (ok) {
        brk_audit_mac(p->key, AUDIT_TAG_RECORD, hash, 32, mac);
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
    p->seqs[p->n++] = brk_audit_unbe64(key);
    p->last = brk_audit_unbe64(key);
    memcpy(p->last_hash, hash, 32);
    p->have_at = true;
    p->last_at = r->at;
    haven__audit_record__free_unpacked(r, NULL);
    return 0;
}

/* Add the counts of totals (packed summary -> count) to the stored monthly
 * totals, each with its MAC. Returns 0, -EILSEQ (a stored count the key
 * does not vouch for is not added to) or -errno. */
static int
s_add_totals(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, GHashTable *totals)
{
    int rc = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, totals);
    while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
        size_t klen;
        const void *kd = g_bytes_get_data(k, &klen);
        const void *old;
        size_t olen;
        uint64_t count = GPOINTER_TO_SIZE(v);
        uint8_t c[40];
        rc = brk_store_get(store, txn, BRK_DB_META, kd, klen, &old, &olen);
        if (rc == 0 && !brk_audit_total_ok(key, kd, klen, old, olen))
            rc = -EILSEQ;        /* a count the key does not vouch for is not added to */
        else if (rc == 0)
            count += brk_audit_unbe64(old);
        else if (rc == -ENOENT)
            rc = 0;
        if (rc < 0)
            break;
        brk_audit_be64(count, c);
        brk_audit_total_mac(key, kd, klen, count, c + 8);
        rc = brk_store_put(store, txn, BRK_DB_META, kd, klen, c, 40);
    }
    return rc;
}

/* Append a record of the broker's own (a checkpoint, the keying) to the
 * chain; its seq into *seq_out if asked. Returns 0 or -errno. */
static int
s_note(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t now, const char *action,
       char *detail, Haven__AuditHead *checkpoint, uint64_t *seq_out)
{
    Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
    rec.has_at = rec.has_outcome = 1;
    rec.at = now;
    rec.principal = "(broker)";
    rec.action = (char *) action;
    rec.outcome = HAVEN__STATUS__STATUS_OK;
    rec.detail = detail;
    rec.checkpoint = checkpoint;
    int rc = brk_audit_append(key, store, txn, &rec);
    if (rc == 0 && seq_out)
        *seq_out = rec.seq;
    return rc;
}

int
brk_audit_prune(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t before,
                int64_t now, size_t max, brk_audit_pruned_t *out)
{
    s_prune_t p = { .key = key, .before = before, .max = max };
    Haven__AuditHead *old_base = NULL;
    int rc = brk_audit_base_read(store, txn, &old_base);
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
    rc = s_add_totals(key, store, txn, p.totals);
    for (size_t i = 0; rc == 0 && i < p.n; i++) {
        uint8_t kb[8];
        brk_audit_be64(p.seqs[i], kb);
        rc = brk_store_del(store, txn, BRK_DB_AUDIT, kb, 8);
    }
    if (rc < 0)
        goto out;
    uint8_t sig[64];
    if ((rc = brk_audit_sign(key, AUDIT_TAG_BASE, p.last, p.last_hash, now, sig)) < 0)
        goto out;
    Haven__AuditHead base = HAVEN__AUDIT_HEAD__INIT;
    base.seq = p.last;
    base.hash = (ProtobufCBinaryData) { 32, p.last_hash };
    base.at = now;
    base.signature = (ProtobufCBinaryData) { 64, sig };
    if ((rc = brk_store_put_msg(store, txn, BRK_DB_META, AUDIT_BASE_KEY, sizeof AUDIT_BASE_KEY - 1, &base.base)) < 0)
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
        rc = s_note(key, store, txn, now, "checkpoint", detail, &base, NULL);
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

#define PRUNE_BATCH 256          /* records per transaction: a few ms */

/* If the stored head has no MAC and the log has records, append a
 * "keyed" record inside txn and set *seq_out to it (else to 0). */
static int
s_key_log(const brk_audit_key_t *key, brk_store_t *store, MDB_txn *txn, int64_t now, uint64_t *seq_out)
{
    brk_audit_stored_head_t h;
    char detail[320];
    int rc = brk_audit_head_read(store, txn, &h);
    *seq_out = 0;
    if (rc < 0 || !h.found || h.seq == 0 || h.has_mac)
        return rc;
    snprintf(detail, sizeof detail, "the log's head had no MAC: records up to %" PRIu64 " are from before the "
             "chain was keyed, or were rewritten without broker.key (only a head kept elsewhere can tell), and "
             "are never pruned; from this record on the chain is keyed with a key derived from broker.key",
             h.seq);
    return s_note(key, store, txn, now, "keyed", detail, NULL, seq_out);
}

int
brk_audit_maintain(const brk_audit_key_t *key, brk_store_t *store, int64_t before, int64_t now,
                   int budget_ms, brk_audit_pruned_t *out)
{
    int64_t until = brk_now_ms() + budget_ms;
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
        if (!b.more || brk_now_ms() >= until)
            break;
    }
    *out = sum;                  /* on failure too: the keying stands */
    return rc;
}
