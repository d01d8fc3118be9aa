/* SPDX-License-Identifier: MIT */
/* The audit log: appends chain and are keyed; verify finds alteration,
 * removal, a cut end, a chain rewritten without the key, a log cut back to
 * an older state (against a head kept elsewhere); heads are signed; a log
 * from before the key switches over; retention prunes into totals and
 * leaves a signed base. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/audit.h"

static char dir[64];
static brk_store_t *store;
static hv_keys_t *keys, *other_keys;
static brk_audit_key_t *key, *other;

static void
s_keys(const char *name, hv_keys_t **k, brk_audit_key_t **ak)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(hv_keys_generate(path), 0);
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    cr_assert_eq(hv_keys_load(path, k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(brk_audit_key_new(*k, ak), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-audit-XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    s_keys("broker", &keys, &key);
    s_keys("other", &other_keys, &other);
}
static void teardown(void)
{
    char cmd[128];
    brk_store_destroy(&store);
    brk_audit_key_destroy(&key);
    brk_audit_key_destroy(&other);
    hv_keys_destroy(&keys);
    hv_keys_destroy(&other_keys);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(audit, .init = setup, .fini = teardown);

/* n records at times at, at + 1, ...: searches (even) and declines (odd). */
static void
s_append_at(const brk_audit_key_t *k, int n, int64_t at)
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (int i = 0; i < n; i++) {
        Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
        char detail[32];
        snprintf(detail, sizeof detail, "event %d", i);
        rec.has_at = rec.has_outcome = 1;
        rec.at = at + i;
        rec.principal = "idva-1";
        rec.outcome = HAVEN__STATUS__STATUS_OK;
        rec.detail = detail;
        if (i % 2 == 0) {
            rec.action = "search";
            rec.has_dims = rec.has_matching = rec.has_limit = 1;
            rec.dims = 1u << (i % 4);
            rec.region = "East of England";
            rec.matching = 0;
            rec.limit = 10;
            rec.relax = "pets";
        } else {
            rec.action = "decline";
            rec.has_reason = rec.has_kind = 1;
            rec.reason = HAVEN__DECLINE_REASON__DECLINE_CAPACITY;
            rec.kind = HAVEN__KIND__KIND_REFUGE;
        }
        cr_assert_eq(brk_audit_append(k, store, txn, &rec), 0);
        cr_assert_gt(rec.seq, 0);
        cr_assert(!rec.has_hash && !rec.has_mac, "the caller's record is left as it was");
    }
    cr_assert_eq(brk_store_commit(txn), 0);
}

static void
s_append(int n)
{
    s_append_at(key, n, 1000);
}

static int
s_check(const brk_audit_key_t *k, const uint8_t *pk, const Haven__AuditHead *head, brk_audit_result_t *res)
{
    MDB_txn *txn;
    brk_audit_check_t check = { k, pk, head };
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    int rc = brk_audit_verify(store, txn, &check, res);
    brk_store_abort(txn);
    return rc;
}

static int
s_verify(brk_audit_result_t *res)
{
    return s_check(key, brk_audit_key_sign_public(key), NULL, res);
}

static void
s_head(Haven__AuditHead *head, uint8_t hash[32], uint8_t sig[64])
{
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_audit_head(key, store, txn, 5000, head, hash, sig), 0);
    brk_store_abort(txn);
}

static void
s_seqkey(uint64_t seq, uint8_t k[8])
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t) (seq >> (56 - 8 * i));
}

static Haven__AuditRecord *
s_get(MDB_txn *txn, uint64_t seq)
{
    uint8_t k[8];
    Haven__AuditRecord *r = NULL;
    s_seqkey(seq, k);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_AUDIT, k, 8, &haven__audit_record__descriptor,
                                   (ProtobufCMessage **) &r), 0);
    return r;
}

static void
s_tamper(uint64_t seq, bool remove)
{
    MDB_txn *txn;
    uint8_t k[8];
    s_seqkey(seq, k);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    if (remove) {
        cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, k, 8), 0);
    } else {
        Haven__AuditRecord *r = s_get(txn, seq);
        r->detail[0] = 'E';      /* one byte */
        cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, 8, &r->base), 0);
        haven__audit_record__free_unpacked(r, NULL);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
}

/* What someone who can write the store but has not got broker.key can do:
 * change record from's detail and re-chain every record after it, with
 * hashes anyone can compute, and the head to match. The MACs stay. */
static void
s_rewrite_from(uint64_t from, uint64_t last)
{
    MDB_txn *txn;
    uint8_t prev[32], k[8], head[40];
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (uint64_t seq = from; seq <= last; seq++) {
        Haven__AuditRecord *r = s_get(txn, seq);
        if (seq == from)
            r->detail[0] = 'E';
        else
            memcpy(r->prev.data, prev, 32);
        protobuf_c_boolean had_mac = r->has_mac;
        r->has_hash = r->has_mac = 0;
        size_t len = protobuf_c_message_get_packed_size(&r->base);
        uint8_t *buf = malloc(len);
        protobuf_c_message_pack(&r->base, buf);
        crypto_generichash(prev, 32, buf, len, NULL, 0);
        free(buf);
        r->has_hash = 1;
        r->has_mac = had_mac;
        memcpy(r->hash.data, prev, 32);
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, 8, &r->base), 0);
        haven__audit_record__free_unpacked(r, NULL);
    }
    s_seqkey(last, head);
    memcpy(head + 8, prev, 32);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, head, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
}

Test(audit, an_honest_log_verifies)
{
    brk_audit_result_t res;
    cr_assert_eq(s_verify(&res), 0, "an empty log is intact");
    s_append(5);
    s_append(3);
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.records, 8);
    cr_assert_eq(res.first, 1);
    cr_assert_eq(res.keyed_from, 1, "every record is keyed");
    cr_assert(res.macs_checked);
    cr_assert_eq(s_check(NULL, NULL, NULL, &res), 0, "without the key, the chain itself still checks");
    cr_assert(!res.macs_checked);
}

Test(audit, an_altered_record_is_named)
{
    brk_audit_result_t res;
    s_append(6);
    s_tamper(4, false);
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert_eq(res.bad, 4);
    cr_assert(strstr(res.problem, "record 4") && strstr(res.problem, "altered"), "%s", res.problem);
}

Test(audit, a_removed_record_is_named)
{
    brk_audit_result_t res;
    s_append(6);
    s_tamper(3, true);
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert_eq(res.bad, 3);
    cr_assert(strstr(res.problem, "missing"), "%s", res.problem);
}

Test(audit, a_cut_end_is_found)
{
    brk_audit_result_t res;
    s_append(6);
    s_tamper(6, true);
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert(strstr(res.problem, "removed"), "%s", res.problem);
}

Test(audit, a_chain_rewritten_without_the_key_fails_its_mac)
{
    brk_audit_result_t res;
    s_append(6);
    s_rewrite_from(4, 6);
    cr_assert_eq(s_verify(&res), -EILSEQ, "the hashes agree again, but not the MACs");
    cr_assert_eq(res.bad, 4);
    cr_assert(strstr(res.problem, "MAC"), "%s", res.problem);
    cr_assert_eq(s_check(other, NULL, NULL, &res), -EILSEQ, "another broker's key is no key at all");
    cr_assert_eq(res.bad, 1);
}

Test(audit, a_record_without_a_mac_after_keyed_ones_is_refused)
{
    brk_audit_result_t res;
    s_append(3);
    s_append_at(NULL, 1, 2000);  /* as an older broker, or a forger, would write it */
    cr_assert_eq(s_check(NULL, NULL, NULL, &res), -EILSEQ, "found even without the key");
    cr_assert_eq(res.bad, 4);
    cr_assert(strstr(res.problem, "no MAC"), "%s", res.problem);
}

Test(audit, a_log_from_before_the_key_switches_over_and_stays_protected)
{
    brk_audit_result_t res;
    size_t pruned = 99;
    s_append_at(NULL, 3, 1000);  /* an existing store: unkeyed chain, 40-byte head */
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.keyed_from, 0);
    /* The broker's first start on it: a "keyed" record, nothing pruned. */
    cr_assert_eq(brk_audit_maintain(key, store, 0, 3000, 50, &pruned), 0);
    cr_assert_eq(pruned, 0);
    s_append(2);
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.records, 6);
    cr_assert_eq(res.keyed_from, 4);
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    Haven__AuditRecord *r = s_get(txn, 4);
    cr_assert_str_eq(r->action, "keyed");
    haven__audit_record__free_unpacked(r, NULL);
    brk_store_abort(txn);
    cr_assert_eq(brk_audit_maintain(key, store, 0, 3000, 50, &pruned), 0);
    cr_assert_eq(s_verify(&res), 0);
    cr_assert_eq(res.records, 6, "the switch is recorded once");

    /* The old records are protected by the first keyed one: rewriting
     * them, even re-chained, breaks its link. */
    s_rewrite_from(2, 3);
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert_eq(res.bad, 4, "%s", res.problem);
}

Test(audit, heads_are_signed_and_round_trip_as_text)
{
    Haven__AuditHead head, parsed;
    uint8_t hash[32], sig[64], hash2[32], sig2[64];
    char line[320], text[512];
    s_append(4);
    s_head(&head, hash, sig);
    cr_assert_eq(head.seq, 4);
    cr_assert_eq(brk_audit_head_check(&head, brk_audit_key_sign_public(key)), 0);
    cr_assert_eq(brk_audit_head_check(&head, brk_audit_key_sign_public(other)), -EPERM);
    brk_audit_head_format(&head, line, sizeof line);
    cr_assert(strncmp(line, "haven-audit-head seq=4 ", 23) == 0, "%s", line);
    /* a head file may be a log excerpt: the last head in it counts */
    snprintf(text, sizeof text, "Nov 25 broker: audit head: haven-audit-head seq=1 hash=00 at=1 signature=00\n"
             "Nov 25 broker: audit head, signed: %s\n", line);
    cr_assert_eq(brk_audit_head_parse(text, &parsed, hash2, sig2), 0);
    cr_assert_eq(parsed.seq, 4);
    cr_assert_eq(parsed.at, 5000);
    cr_assert_eq(brk_audit_head_check(&parsed, brk_audit_key_sign_public(key)), 0);
    parsed.seq = 3;
    cr_assert_eq(brk_audit_head_check(&parsed, brk_audit_key_sign_public(key)), -EPERM, "seq is signed");
    parsed.seq = 4;
    parsed.at = 5001;
    cr_assert_eq(brk_audit_head_check(&parsed, brk_audit_key_sign_public(key)), -EPERM, "time is signed");
    cr_assert_eq(brk_audit_head_parse("nothing here", &parsed, hash2, sig2), -EINVAL);
}

Test(audit, a_log_cut_back_to_an_older_state_is_caught_by_a_head_kept_elsewhere)
{
    brk_audit_result_t res;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64], old_head[72];
    const void *val;
    size_t vlen;
    MDB_txn *txn;
    s_append(4);
    /* The store as it was at record 4 (a copy someone kept)... */
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_META, "audit-head", 10, &val, &vlen), 0);
    cr_assert_eq(vlen, 72, "a keyed head carries its MAC");
    memcpy(old_head, val, 72);
    brk_store_abort(txn);
    s_append(3);
    s_head(&head, hash, sig);    /* ...the administrator keeps the head at 7 */
    cr_assert_eq(s_check(key, brk_audit_key_sign_public(key), &head, &res), 0, "%s", res.problem);
    cr_assert(res.head_checked);

    /* ...and the log is cut back to 4 with the old head put back. */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (uint64_t seq = 5; seq <= 7; seq++) {
        uint8_t k[8];
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, k, 8), 0);
    }
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, old_head, 72), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_verify(&res), 0, "consistent in itself: this is what the head is for");
    cr_assert_eq(s_check(key, brk_audit_key_sign_public(key), &head, &res), -EILSEQ);
    cr_assert(strstr(res.problem, "head kept elsewhere is at record 7"), "%s", res.problem);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &head, &res), -EILSEQ, "no key needed");

    /* A head signed by someone else vouches for nothing. */
    MDB_txn *rtxn;
    cr_assert_eq(brk_store_begin(store, NULL, false, &rtxn), 0);
    cr_assert_eq(brk_audit_head(other, store, rtxn, 5000, &head, hash, sig), 0);
    brk_store_abort(rtxn);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &head, &res), -EILSEQ);
    cr_assert(strstr(res.problem, "not signed"), "%s", res.problem);
}

Test(audit, a_rewritten_record_is_caught_by_a_head_without_the_key)
{
    brk_audit_result_t res;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    s_append(6);
    s_head(&head, hash, sig);
    s_rewrite_from(2, 6);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &head, &res), -EILSEQ);
    cr_assert_eq(res.bad, 6);
    cr_assert(strstr(res.problem, "rewritten"), "%s", res.problem);
}

Test(audit, cutoff_is_the_start_of_a_month)
{
    /* 2025-11-25 12:00 UTC, 13 months: 2024-10-01 */
    cr_assert_eq(brk_audit_cutoff(1764072000, 13), 1727740800);
    /* 2026-01-31, 1 month: 2025-12-01 */
    cr_assert_eq(brk_audit_cutoff(1769860800, 1), 1764547200);
}

static int
s_sum(void *arg, const Haven__AuditRecord *rec, uint64_t count)
{
    uint64_t *sums = arg;
    sums[strcmp(rec->action, "search") == 0 ? 0 : 1] += count;
    cr_assert_eq(rec->at, 1727740800, "a total is dated at its month's start");
    cr_assert(!rec->detail && !rec->principal, "totals keep no details and no names");
    return 0;
}

Test(audit, retention_counts_old_records_into_totals_prunes_them_and_leaves_a_signed_base)
{
    brk_audit_result_t res;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    size_t pruned = 0;
    bool more = true;
    s_append_at(key, 3, 1727740800);      /* 2024-10-01: 2 searches, a decline */
    s_head(&head, hash, sig);             /* a head kept from before the pruning */
    s_append_at(key, 2, 1727740800);      /* a search, a decline */
    s_append_at(key, 2, 1764072000);      /* 2025-11-25 */
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_audit_prune(key, store, txn, 1730419200, 1764072000, 3, &pruned, &more), 0);
    cr_assert_eq(pruned, 3);
    cr_assert(more, "two more are old");
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_verify(&res), 0, "between batches too: %s", res.problem);
    cr_assert_eq(res.first, 4);
    cr_assert_eq(res.records, 4, "no checkpoint yet");
    size_t left = 0;
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &left), 0);
    cr_assert_eq(left, 2);

    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.first, 6);
    cr_assert_eq(res.records, 3, "the two new records and the checkpoint");
    cr_assert(res.signatures_checked);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    Haven__AuditRecord *r = s_get(txn, 8);
    cr_assert_str_eq(r->action, "checkpoint");
    cr_assert(r->checkpoint && r->checkpoint->seq == 5, "the checkpoint says where pruning stopped");
    haven__audit_record__free_unpacked(r, NULL);
    uint64_t sums[2] = { 0, 0 };
    cr_assert_eq(brk_audit_totals_each(store, txn, s_sum, sums), 0);
    cr_assert_eq(sums[0], 3);
    cr_assert_eq(sums[1], 2);
    brk_store_abort(txn);
    /* A head older than what is kept cannot be checked, and says so. */
    cr_assert_eq(s_check(key, brk_audit_key_sign_public(key), &head, &res), 0);
    cr_assert(!res.head_checked);
    cr_assert(strstr(res.problem, "older"), "%s", res.problem);
    /* The base is signed: putting it further on (cutting records off the
     * start) or signing it with another key fails. */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    Haven__AuditHead *base = NULL;
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_META, "audit-base", 10, &haven__audit_head__descriptor,
                                   (ProtobufCMessage **) &base), 0);
    base->seq = 6;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_META, "audit-base", 10, &base->base), 0);
    haven__audit_head__free_unpacked(base, NULL);
    uint8_t k[8];
    s_seqkey(6, k);
    cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, k, 8), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert(strstr(res.problem, "not signed"), "%s", res.problem);
}

Test(audit, pruning_never_hides_an_altered_record)
{
    size_t pruned = 0;
    bool more = false;
    MDB_txn *txn;
    s_append_at(key, 4, 1727740800);      /* 2024-10-01 */
    s_append_at(key, 1, 1764072000);
    s_tamper(2, false);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_audit_prune(key, store, txn, 1730419200, 1764072000, 100, &pruned, &more), -EILSEQ);
    brk_store_abort(txn);
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pruned), -EILSEQ);
    brk_audit_result_t res;
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert_eq(res.bad, 2, "the altered record is still there to be found");
}
