/* SPDX-License-Identifier: MIT */
/* Checking the audit log (see brk_audit_verify in audit.h): the chain's
 * links, hashes, MACs and times, the pruning base, checkpoints and monthly
 * totals, and a head kept elsewhere. */
#include <sodium.h>
#include <errno.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "audit.h"
#include "audit_chain.h"

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
    uint64_t seq = klen == 8 ? brk_audit_unbe64(key) : 0;
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
    else if (r->hash.len != 32 || brk_audit_hash(r, hash) < 0 || memcmp(hash, r->hash.data, 32) != 0)
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
            brk_audit_mac(c->key, AUDIT_TAG_RECORD, hash, 32, mac);
            if (sodium_memcmp(mac, r->mac.data, 32) != 0)
                stop = s_fail(v, seq, "record %llu was altered: its MAC does not match (it was not written "
                              "with this broker's key)", s);
        }
    }
    if (!stop && r->checkpoint && c->sign_public
        && brk_audit_signed_check(AUDIT_TAG_BASE, r->checkpoint, c->sign_public) < 0)
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

/* Where the kept records start: the pruning base, signed by the broker,
 * and whether the head kept elsewhere names it. Sets v->expect, v->prev
 * and v->pruned. Returns 0, -EILSEQ with out set, or -errno. */
static int
s_check_base(brk_store_t *store, MDB_txn *txn, const brk_audit_check_t *check, brk_audit_result_t *out,
             s_verify_t *v)
{
    Haven__AuditHead *base = NULL;
    int rc = brk_audit_base_read(store, txn, &base);
    if (rc == 0) {
        if (check->sign_public && brk_audit_signed_check(AUDIT_TAG_BASE, base, check->sign_public) < 0) {
            snprintf(out->problem, sizeof out->problem, "the record where pruning stopped (%llu) is not signed "
                     "by the broker: records were removed from the start of the log",
                     (unsigned long long) base->seq);
            out->bad = base->seq + 1;
            haven__audit_head__free_unpacked(base, NULL);
            return -EILSEQ;
        }
        v->expect = base->seq + 1;
        v->pruned = base->seq > 0;
        memcpy(v->prev, base->hash.data, 32);
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
    return 0;
}

/* Where the kept records end: the stored head must name the last record,
 * carry the key's MAC when checked with the key, and reach the head kept
 * elsewhere. Returns 0, -EILSEQ with out set, or -errno. */
static int
s_check_end(brk_store_t *store, MDB_txn *txn, const brk_audit_check_t *check, brk_audit_result_t *out,
            const s_verify_t *v)
{
    int rc;
    brk_audit_stored_head_t h;
    if ((rc = brk_audit_head_read(store, txn, &h)) < 0 && rc != -EBADMSG)
        return rc;
    uint64_t n = out->last;
    if (rc == -EBADMSG || (!h.found && n > 0) || (h.found && (h.seq != n || memcmp(h.hash, v->prev, 32) != 0))) {
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
        brk_audit_be64(h.seq, buf);
        memcpy(buf + 8, h.hash, 32);
        brk_audit_mac(check->key, AUDIT_TAG_HEAD_MAC, buf, 40, mac);
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
    return 0;
}

/* The totals pruned records left: with the key, each count must be the
 * broker's, so that none was made up (deleting one, or putting back an
 * older, lower one, is not found). Returns 0, -EILSEQ with out set, or
 * -errno. */
static int
s_check_totals(brk_store_t *store, MDB_txn *txn, const brk_audit_check_t *check, brk_audit_result_t *out)
{
    int rc;
    brk_audit_total_check_t t = { check->key, -1 };
    if ((rc = brk_store_each(store, txn, BRK_DB_META, AUDIT_TOTAL_PREFIX, sizeof AUDIT_TOTAL_PREFIX - 1,
                             brk_audit_total_check, &t)) < 0)
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
    return 0;
}

int
brk_audit_verify(brk_store_t *store, MDB_txn *txn, const brk_audit_check_t *check, brk_audit_result_t *out)
{
    s_verify_t v = { .check = check, .out = out, .expect = 1 };
    memset(out, 0, sizeof *out);
    if (check->head && (!check->sign_public || !brk_audit_head_well_formed(check->head)))
        return -EINVAL;
    out->macs_checked = check->key != NULL;
    out->signatures_checked = check->sign_public != NULL;
    if (check->head && brk_audit_head_check(check->head, check->sign_public) < 0) {
        snprintf(out->problem, sizeof out->problem, "the head kept elsewhere is not signed by this broker's "
                 "signing key (broker.pub's sign line): it cannot vouch for the log");
        out->bad = check->head->seq;
        return -EILSEQ;
    }
    int rc = s_check_base(store, txn, check, out, &v);
    if (rc < 0)
        return rc;
    out->first = v.expect;
    out->last = v.expect - 1;
    if ((rc = brk_store_each(store, txn, BRK_DB_AUDIT, NULL, 0, s_verify_one, &v)) < 0)
        return rc;
    if (v.failed)
        return -EILSEQ;
    if ((rc = s_check_end(store, txn, check, out, &v)) < 0)
        return rc;
    if (check->key && (rc = s_check_totals(store, txn, check, out)) < 0)
        return rc;
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
