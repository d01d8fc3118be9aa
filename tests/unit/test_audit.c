/* SPDX-License-Identifier: MIT */
/* The audit log: appends chain and are keyed; verify finds alteration,
 * removal, a cut end, a chain rewritten without the key, a log cut back to
 * an older state (against a head kept elsewhere); heads are signed; a log
 * from before the key switches over; retention prunes into totals and
 * leaves a signed base. Someone without the key cannot launder a log
 * through pruning, strip its MACs, or date records backwards. */
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
/* Set r's hash (and prev, the new one) as the chain computes it: BLAKE2b
 * over the record without its hash and MAC, which is what an attacker
 * without the broker's key can redo. */
static void
s_rehash(Haven__AuditRecord *r, uint8_t prev[32])
{
    protobuf_c_boolean had_mac = r->has_mac;
    r->has_hash = r->has_mac = 0;
    size_t len = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(&r->base, buf);
    cr_assert_eq(crypto_generichash(prev, 32, buf, len, NULL, 0), 0);
    free(buf);
    r->has_hash = 1;
    r->has_mac = had_mac;
    memcpy(r->hash.data, prev, 32);
}

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
        s_rehash(r, prev);
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, 8, &r->base), 0);
        haven__audit_record__free_unpacked(r, NULL);
    }
    s_seqkey(last, head);
    memcpy(head + 8, prev, 32);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, head, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
}

/* The same, going further: records from..last each passed to edit (which
 * may strip the MAC or change the time), re-chained, and the head put back
 * as a store from before keyed audit has it: 40 bytes, no MAC. */
static void
s_forge(uint64_t from, uint64_t last, void (*edit)(Haven__AuditRecord *r, uint64_t seq))
{
    MDB_txn *txn;
    uint8_t prev[32], k[8], head[40];
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (uint64_t seq = from; seq <= last; seq++) {
        Haven__AuditRecord *r = s_get(txn, seq);
        if (seq > from)
            memcpy(r->prev.data, prev, 32);
        edit(r, seq);
        s_rehash(r, prev);
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, 8, &r->base), 0);
        haven__audit_record__free_unpacked(r, NULL);
    }
    s_seqkey(last, head);
    memcpy(head + 8, prev, 32);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, head, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
}

static void
s_strip(Haven__AuditRecord *r, uint64_t seq)
{
    (void) seq;
    r->has_mac = 0;
}

/* Stripped, and dated March 2020, an hour apart. */
static void
s_strip_backdate(Haven__AuditRecord *r, uint64_t seq)
{
    r->has_mac = 0;
    r->at = 1583798400 + (int64_t) seq * 3600;
}

/* Stripped, and record 3 said to be someone else's. */
static void
s_strip_alter(Haven__AuditRecord *r, uint64_t seq)
{
    r->has_mac = 0;
    if (seq == 3)
        r->principal[0] = 'X';
}

static int
s_count_total(void *arg, const Haven__AuditRecord *rec, uint64_t count)
{
    (void) rec;
    *(uint64_t *) arg += count;
    return 0;
}

static uint64_t
s_totals(void)
{
    MDB_txn *txn;
    uint64_t n = 0;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_audit_totals_each(store, txn, s_count_total, &n), 0);
    brk_store_abort(txn);
    return n;
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
    s_append_at(NULL, 3, 1000);  /* an existing store: unkeyed chain, 40-byte head */
    /* Until the broker has started on it, it looks just like a log whose
     * MACs were stripped: with the key, that fails; without, it cannot. */
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert(strstr(res.problem, "no record carries a MAC") && strstr(res.problem, "never opened"), "%s",
              res.problem);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), NULL, &res), 0, "%s", res.problem);
    cr_assert_eq(res.keyed_from, 0);
    /* The broker's first start on it: a "keyed" record, nothing pruned. */
    brk_audit_pruned_t pr;
    cr_assert_eq(brk_audit_maintain(key, store, 0, 3000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 0);
    cr_assert(pr.keyed_now, "the broker is told, to warn");
    cr_assert_eq(pr.keyed_seq, 4);
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
    cr_assert_eq(brk_audit_maintain(key, store, 0, 3000, 50, &pr), 0);
    cr_assert(!pr.keyed_now);
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
    brk_audit_pruned_t pr;
    s_append_at(key, 3, 1727740800);      /* 2024-10-01: 2 searches, a decline */
    s_head(&head, hash, sig);             /* a head kept from before the pruning */
    s_append_at(key, 2, 1727740800);      /* a search, a decline */
    s_append_at(key, 2, 1764072000);      /* 2025-11-25 */
    MDB_txn *txn;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_audit_prune(key, store, txn, 1730419200, 1764072000, 3, &pr), 0);
    cr_assert_eq(pr.pruned, 3);
    cr_assert(pr.more, "two more are old");
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_verify(&res), 0, "between batches too: %s", res.problem);
    cr_assert_eq(res.first, 4);
    cr_assert_eq(res.records, 4, "no checkpoint yet");
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 2);
    cr_assert(!pr.keyed_now && !pr.held);

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
    /* A head whose record was pruned cannot vouch for the log: a failure
     * that asks for a newer head, not a pass. */
    cr_assert_eq(s_check(key, brk_audit_key_sign_public(key), &head, &res), -EILSEQ);
    cr_assert(!res.head_checked);
    cr_assert(strstr(res.problem, "pruned") && strstr(res.problem, "newer head"), "%s", res.problem);
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
    brk_audit_pruned_t pr;
    MDB_txn *txn;
    s_append_at(key, 4, 1727740800);      /* 2024-10-01 */
    s_append_at(key, 1, 1764072000);
    s_tamper(2, false);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_audit_prune(key, store, txn, 1730419200, 1764072000, 100, &pr), -EILSEQ);
    brk_store_abort(txn);
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), -EILSEQ);
    brk_audit_result_t res;
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert_eq(res.bad, 2, "the altered record is still there to be found");
}

/* Attack: strip every MAC, backdate every record past retention, re-chain,
 * and put back an unkeyed head, so that the broker, at its next start,
 * counts the forged records into the totals and removes them, out of reach
 * of any head kept elsewhere. */
Test(audit, a_log_stripped_and_backdated_is_not_laundered_through_pruning)
{
    brk_audit_result_t res;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    brk_audit_pruned_t pr;
    s_append_at(key, 6, 1764072000);      /* 2025-11-25 */
    s_head(&head, hash, sig);             /* kept elsewhere */
    s_forge(1, 6, s_strip_backdate);
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 0, "records without a MAC are never pruned");
    cr_assert_eq(pr.held, 1, "pruning stops at the first of them");
    cr_assert(pr.keyed_now, "the unkeyed head is reported");
    cr_assert_eq(pr.keyed_seq, 7);
    cr_assert_eq(s_totals(), 0, "no forged counts in the totals");
    /* The forged records are still there, so the head kept elsewhere finds
     * them, with or without the key. */
    cr_assert_eq(s_check(key, brk_audit_key_sign_public(key), &head, &res), -EILSEQ);
    cr_assert(strstr(res.problem, "rewritten"), "%s", res.problem);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &head, &res), -EILSEQ);
    /* Without a head the key cannot vouch for them, and says from where
     * it does: a store from before keyed audit looks the same. */
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.first, 1);
    cr_assert_eq(res.keyed_from, 7);
    /* Later passes hold too. */
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 0);
    cr_assert(!pr.keyed_now);
}

/* Attack: strip every MAC (they sit outside the hashes), change a record,
 * re-chain, put back an unkeyed head. */
Test(audit, a_log_stripped_of_its_macs_fails_with_the_key)
{
    brk_audit_result_t res;
    s_append(5);
    s_forge(1, 5, s_strip_alter);
    cr_assert_eq(s_verify(&res), -EILSEQ, "with the key it must not pass");
    cr_assert(strstr(res.problem, "no record carries a MAC") && strstr(res.problem, "without the broker's key"),
              "%s", res.problem);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), NULL, &res), 0, "without it, nothing can tell");
    cr_assert_eq(res.keyed_from, 0);

    /* Once the broker has started on it, it is keyed from there on, and
     * the records before say they are not vouched for (see above). */
    brk_audit_pruned_t pr;
    cr_assert_eq(brk_audit_maintain(key, store, 0, 3000, 50, &pr), 0);
    cr_assert(pr.keyed_now);
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.keyed_from, 6, "records 1-5 carry no MAC");
}

Test(audit, an_unkeyed_head_over_keyed_records_fails_with_the_key)
{
    brk_audit_result_t res;
    MDB_txn *txn;
    const void *val;
    size_t vlen;
    uint8_t head[40];
    s_append(3);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_META, "audit-head", 10, &val, &vlen), 0);
    memcpy(head, val, 40);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, head, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert(strstr(res.problem, "head carries no MAC"), "%s", res.problem);
}

/* Pruning only ever removes keyed records, so records without a MAC after
 * a pruning base were stripped: found without the key, and not pruned. */
Test(audit, records_without_a_mac_after_a_pruning_base_fail)
{
    brk_audit_result_t res;
    brk_audit_pruned_t pr;
    s_append_at(key, 2, 1727740800);      /* 2024-10-01 */
    s_append_at(key, 3, 1764072000);      /* 2025-11-25 */
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 2);
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.first, 3);
    s_forge(3, 6, s_strip);               /* 3-5 and the checkpoint */
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), NULL, &res), -EILSEQ);
    cr_assert_eq(res.bad, 3);
    cr_assert(strstr(res.problem, "no MAC although the records before it were pruned"), "%s", res.problem);
    /* a month on: they are past retention, but not pruned */
    cr_assert_eq(brk_audit_maintain(key, store, 1764547200, 1767225600, 50, &pr), -EILSEQ);
    cr_assert_eq(pr.pruned, 0);
    cr_assert_eq(s_totals(), 2, "only the honest search and decline from before");
}

/* A head from before the last pruning can be checked where a kept
 * checkpoint names its record; any other pruned head fails. */
Test(audit, a_head_whose_record_was_pruned_is_checked_by_a_checkpoint_or_fails)
{
    brk_audit_result_t res;
    brk_audit_pruned_t pr;
    Haven__AuditHead h2, h3;
    uint8_t hash2[32], sig2[64], hash3[32], sig3[64];
    s_append_at(key, 2, 1727740800);      /* 2024-10 */
    s_head(&h2, hash2, sig2);             /* at record 2 */
    s_append_at(key, 1, 1727740900);
    s_head(&h3, hash3, sig3);             /* at record 3 */
    s_append_at(key, 3, 1730419200);      /* 2024-11: 4-6 */
    s_append_at(key, 2, 1764072000);      /* 2025-11: 7-8 */
    /* October goes (1-3, checkpoint 9 names 3), then November (4-6,
     * checkpoint 10 names 6); checkpoint 9 is kept, being from 2025. */
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 3);
    cr_assert_eq(brk_audit_maintain(key, store, 1733011200, 1764072001, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 3);
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);
    cr_assert_eq(res.first, 7);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &h3, &res), 0, "%s", res.problem);
    cr_assert(res.head_checked, "checkpoint 9 names record 3 and its hash");
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &h2, &res), -EILSEQ);
    cr_assert_eq(res.bad, 2);
    cr_assert(strstr(res.problem, "record 2") && strstr(res.problem, "newer head"), "%s", res.problem);
    /* A forged checkpoint-named hash is a rewrite. */
    hash3[0] ^= 1;
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), &h3, &res), -EILSEQ, "the signature breaks");
}

/* Records go forward in time: the broker dates a record no earlier than
 * the one before; one dated earlier is refused by pruning and verify. */
Test(audit, records_dated_backwards_are_refused)
{
    brk_audit_result_t res;
    brk_audit_pruned_t pr;
    MDB_txn *txn;
    s_append_at(key, 2, 1727740800);
    s_append_at(key, 1, 1727740000);      /* a clock set back */
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    Haven__AuditRecord *r = s_get(txn, 3);
    cr_assert_eq(r->at, 1727740801, "dated as the one before");
    haven__audit_record__free_unpacked(r, NULL);
    brk_store_abort(txn);
    cr_assert_eq(s_verify(&res), 0, "%s", res.problem);

    /* A keyed record dated backwards (as a broker without that rule, or a
     * key holder, might write it): record 4 is appended while record 3 is
     * out of the way, so nothing dates it forward. */
    uint8_t k[8];
    const void *val;
    size_t vlen;
    uint8_t *saved;
    s_seqkey(3, k);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_AUDIT, k, 8, &val, &vlen), 0);
    saved = malloc(vlen);
    memcpy(saved, val, vlen);
    cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, k, 8), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    s_append_at(key, 1, 1727000000);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_AUDIT, k, 8, saved, vlen), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    free(saved);
    cr_assert_eq(s_check(NULL, NULL, NULL, &res), -EILSEQ);
    cr_assert_eq(res.bad, 4);
    cr_assert(strstr(res.problem, "dated before record 3"), "%s", res.problem);
    cr_assert_eq(brk_audit_maintain(key, store, 1764072000, 1764072000, 50, &pr), -EILSEQ);
    cr_assert_eq(s_totals(), 0, "nothing pruned");
}

typedef struct {
    char k[512];
    size_t klen;
} s_key_t;

/* The first monthly total of searches. */
static int
s_find_search_total(void *arg, const void *k, size_t klen, const void *val, size_t vlen)
{
    s_key_t *found = arg;
    (void) val;
    (void) vlen;
    if (klen > sizeof found->k || !memmem(k, klen, "search", 6))
        return 0;
    memcpy(found->k, k, klen);
    found->klen = klen;
    return 1;
}

/* A monthly total is MACed over its month, flags and count: one made up
 * (or inflated) without the key fails verify with the key, and pruning
 * does not add to it. */
Test(audit, a_made_up_monthly_total_fails_with_the_key)
{
    brk_audit_result_t res;
    brk_audit_pruned_t pr;
    MDB_txn *txn;
    s_append_at(key, 2, 1727740800);      /* 2024-10: a search, a decline */
    s_append_at(key, 2, 1730419200);      /* 2024-11 */
    s_append_at(key, 1, 1764072000);
    cr_assert_eq(brk_audit_maintain(key, store, 1730419200, 1764072000, 50, &pr), 0);
    cr_assert_eq(pr.pruned, 2);
    cr_assert_eq(s_verify(&res), 0, "the broker's totals check: %s", res.problem);
    /* Someone raises October's search count from 1 to 1000. */
    s_key_t found = { .klen = 0 };
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_each(store, txn, BRK_DB_META, "audit-total/", 12, s_find_search_total, &found), 0);
    cr_assert_gt(found.klen, 0);
    const void *val;
    size_t vlen;
    uint8_t forged[40];
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_META, found.k, found.klen, &val, &vlen), 0);
    cr_assert_eq(vlen, 40);
    memcpy(forged, val, 40);
    forged[6] = 0x03;
    forged[7] = 0xe8;
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, found.k, found.klen, forged, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_totals(), 1001, "the reports would count it");
    cr_assert_eq(s_verify(&res), -EILSEQ);
    cr_assert_eq(res.bad, 0);
    cr_assert(strstr(res.problem, "monthly total for 2024-10") && strstr(res.problem, "without the broker's key"),
              "%s", res.problem);
    cr_assert_eq(s_check(NULL, brk_audit_key_sign_public(key), NULL, &res), 0, "only the key can tell");
    /* An 8-byte total, as stores had before totals were MACed: the same. */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, found.k, found.klen, forged, 8), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(s_verify(&res), -EILSEQ);
}
