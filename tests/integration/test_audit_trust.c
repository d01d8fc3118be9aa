/* SPDX-License-Identifier: MIT */
/* The keyed, anchored and minimised audit log, through the real programs:
 * heads signed by the key broker.pub names; a log cut short, or a record
 * rewritten by someone without broker.key, caught by verify (and by a head
 * kept elsewhere even offline, without the key); a search's ages and
 * districts never in the store; old months pruned into totals that the
 * reports still count, with verify still passing, on a backup file too; a
 * log stripped of its MACs neither passes verify with the key nor is
 * laundered through pruning out of a head's reach. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../../broker/audit.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512], path[4][600];

static const char catalog[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 12\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 4\naddress = 1 Road\n";

static void
setup(void)
{
    hh_start(&h, NULL);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
}
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(audit_trust, .init = setup, .fini = teardown, .timeout = 300);

/* A file in the test directory (one of four slots). */
static const char *
s_path(int slot, const char *name)
{
    snprintf(path[slot], sizeof path[slot], "%s/%s", h.dir, name);
    return path[slot];
}

static void
s_search(void)
{
    hh_run(&h, &r, "haven", "--config", idva, "search", "--gender", "woman", "--child", "7:f", "--near",
           "E07000008", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
}

static void
s_head_file(const char *name)
{
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "head", "--out", s_path(0, name), NULL);
    cr_assert_eq(r.code, 0, "audit head: %s", r.err);
}

/* The stopped broker's store, opened as someone with the files but not
 * broker.key would. */
static brk_store_t *
s_store(void)
{
    brk_store_t *store = NULL;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    return store;
}

static void
s_seqkey(uint64_t seq, uint8_t k[8])
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t) (seq >> (56 - 8 * i));
}

static uint64_t
s_head_seq(brk_store_t *store, MDB_txn *txn, uint8_t raw[72], size_t *len)
{
    const void *val;
    cr_assert_eq(brk_store_get(store, txn, BRK_DB_META, "audit-head", 10, &val, len), 0);
    memcpy(raw, val, *len);
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq << 8 | raw[i];
    return seq;
}

Test(audit_trust, audit_head_is_signed_with_the_key_broker_pub_names)
{
    char text[1024], bad_pub[600], bad_conf[600], cmd[2048];
    /* A data dir from before broker.pub had a sign line gets one at start. */
    hh_stop(&h);
    snprintf(cmd, sizeof cmd, "sed -i '/^sign/d' '%s/data/broker.pub' && ! grep -q '^sign' '%s/data/broker.pub'",
             h.dir, h.dir);
    cr_assert_eq(system(cmd), 0);
    hh_restart(&h);
    snprintf(cmd, sizeof cmd, "grep -q '^sign = ' '%s/data/broker.pub'", h.dir);
    cr_assert_eq(system(cmd), 0, "the broker put its sign line back");
    s_search();
    s_head_file("head.txt");
    FILE *f = fopen(path[0], "r");
    cr_assert(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(strncmp(text, "haven-audit-head seq=", 21) == 0, "%s", text);

    /* Checked here with libsodium against broker.pub's sign line alone. */
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    hv_pubkey_t pub;
    char err[256];
    cr_assert_eq(brk_audit_head_parse(text, &head, hash, sig), 0);
    cr_assert_eq(hv_pubkey_load(s_path(1, "data/broker.pub"), &pub, err, sizeof err), 0, "%s", err);
    cr_assert(pub.has_sign, "broker.pub names the signing key");
    cr_assert_eq(brk_audit_head_check(&head, pub.sign), 0);
    cr_assert_geq(head.seq, 4, "the admin's and agent's requests and the search are in it");

    /* --out never overwrites. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "head", "--out", path[0], NULL);
    cr_assert_eq(r.code, 73, "%d %s", r.code, r.err);

    /* A client that pins another key refuses the broker's head... */
    snprintf(bad_pub, sizeof bad_pub, "%s/other-broker.pub", h.dir);
    snprintf(cmd, sizeof cmd, "grep -v '^sign' '%s/data/broker.pub' > '%s' && grep '^sign' '%s/admin.pub' >> '%s'",
             h.dir, bad_pub, h.dir, bad_pub);
    cr_assert_eq(system(cmd), 0);
    snprintf(bad_conf, sizeof bad_conf, "%s/other.conf", h.dir);
    snprintf(cmd, sizeof cmd, "sed 's|^public_key = .*|public_key = %s|' '%s' > '%s'", bad_pub, h.admin_conf,
             bad_conf);
    cr_assert_eq(system(cmd), 0);
    hh_run(&h, &r, "haven-admin", "--config", bad_conf, "audit", "head", NULL);
    cr_assert_eq(r.code, 65, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "not signed"), "%s", r.err);
    /* ...and a head file whose numbers were changed vouches for nothing. */
    char *seq = strstr(text, "seq=") + 4;
    *seq = *seq == '9' ? '8' : (char) (*seq + 1);
    hh_write(&h, "forged.txt", text, NULL, 0);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--head", s_path(2, "forged.txt"),
           NULL);
    cr_assert_eq(r.code, 65, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "not signed"), "%s", r.err);
    /* The honest one checks, online. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--head", path[0], NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "matches the head"), "%s", r.out);
}

Test(audit_trust, a_log_cut_back_to_an_earlier_state_is_caught_by_verify_head)
{
    uint8_t old_head[72];
    size_t old_len;
    MDB_txn *txn;
    s_search();
    /* Someone copies the store's head as it is now... */
    hh_stop(&h);
    brk_store_t *store = s_store();
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    uint64_t cut = s_head_seq(store, txn, old_head, &old_len);
    brk_store_abort(txn);
    brk_store_destroy(&store);
    hh_restart(&h);
    /* ...the work goes on; the administrator keeps a head elsewhere... */
    s_search();
    s_search();
    s_head_file("head.txt");
    hh_stop(&h);
    /* ...and the log is cut back: the records since are deleted and the
     * old head (with its valid MAC) put back. */
    store = s_store();
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    uint8_t now_head[72];
    size_t now_len;
    uint64_t last = s_head_seq(store, txn, now_head, &now_len);
    cr_assert_gt(last, cut + 2);
    for (uint64_t seq = cut + 1; seq <= last; seq++) {
        uint8_t k[8];
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, k, 8), 0);
    }
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, old_head, old_len), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);

    /* Offline, on the administrator's machine (broker.pub, no broker.key). */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--data-dir", s_path(1, "data"),
           "--head", path[0], NULL);
    cr_assert_eq(r.code, 65, "a truncated log must fail: %d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "records were removed"), "%s", r.err);
    /* The log is consistent in itself, even with broker.key: only a head
     * kept elsewhere can tell it was cut back. */
    hh_run(&h, &r, "haven-admin", "audit", "verify", "--data-dir", path[1], "--broker-key",
           s_path(2, "data/broker.key"), NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    /* Online too. */
    hh_restart(&h);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--head", path[0], NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
}

/* What someone who can write the store but has not got broker.key can do:
 * change a record and re-chain all after it with hashes anyone can compute;
 * with strip, also take every MAC off (they sit outside the hashes). */
/* Set rec's hash (and prev, the new one) as the chain computes it: BLAKE2b
 * over the record without its hash and MAC, which anyone who can write the
 * store can redo; the MAC, keyed, they cannot. */
static void
s_rehash(Haven__AuditRecord *rec, uint8_t prev[32])
{
    protobuf_c_boolean mac = rec->has_mac;
    rec->has_hash = rec->has_mac = 0;
    size_t n = protobuf_c_message_get_packed_size(&rec->base);
    uint8_t *buf = malloc(n);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(&rec->base, buf);
    cr_assert_eq(crypto_generichash(prev, 32, buf, n, NULL, 0), 0);
    free(buf);
    memcpy(rec->hash.data, prev, 32);
    rec->has_hash = 1;
    rec->has_mac = mac;
}

static void
s_rewrite_strip(const char *action, bool strip)
{
    MDB_txn *txn;
    uint8_t raw[72], prev[32];
    size_t len;
    brk_store_t *store = s_store();
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    uint64_t last = s_head_seq(store, txn, raw, &len);
    bool changed = false;
    for (uint64_t seq = 1; seq <= last; seq++) {
        uint8_t k[8];
        Haven__AuditRecord *rec = NULL;
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_AUDIT, k, 8, &haven__audit_record__descriptor,
                                       (ProtobufCMessage **) &rec), 0);
        if (!changed && strcmp(rec->action, action) == 0) {
            rec->principal[0] = 'X';     /* it was someone else */
            changed = true;
        } else if (changed) {
            memcpy(rec->prev.data, prev, 32);
        }
        if (strip)
            rec->has_mac = 0;
        if (changed) {
            s_rehash(rec, prev);
        }
        if (changed || strip)
            cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, 8, &rec->base), 0);
        haven__audit_record__free_unpacked(rec, NULL);
    }
    cr_assert(changed, "no %s record", action);
    memcpy(raw + 8, prev, 32);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, raw, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);
}

static void
s_rewrite(const char *action)
{
    s_rewrite_strip(action, false);
}

static int
s_count_totals(void *arg, const Haven__AuditRecord *rec, uint64_t count)
{
    (void) rec;
    *(int *) arg += (int) count;
    return 0;
}

static bool
s_log_has(const char *text)
{
    static char log[1 << 20];
    FILE *f = fopen(s_path(3, "broker.log"), "r");
    cr_assert(f);
    size_t n = fread(log, 1, sizeof log - 1, f);
    fclose(f);
    log[n] = '\0';
    return strstr(log, text) != NULL;
}

Test(audit_trust, a_record_rewritten_without_broker_key_is_caught)
{
    s_search();
    s_head_file("head.txt");
    hh_stop(&h);
    s_rewrite("search");
    /* Offline with the head: no secret needed. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--data-dir", s_path(1, "data"),
           "--head", path[0], NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "rewritten"), "%s", r.err);
    /* With broker.key, on the broker's machine: the MAC. */
    hh_run(&h, &r, "haven-admin", "audit", "verify", "--data-dir", path[1], "--broker-key",
           s_path(2, "data/broker.key"), NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "MAC"), "%s", r.err);
    /* And the broker itself says so. */
    hh_restart(&h);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "MAC"), "%s", r.err);
}

/* Attack (6): every MAC stripped, a record changed, the chain and the
 * 40-byte head rebuilt, as a store from before keyed audit would look. */
Test(audit_trust, a_log_stripped_of_its_macs_fails_verify_with_the_key)
{
    s_search();
    s_head_file("head.txt");
    hh_stop(&h);
    s_rewrite_strip("search", true);
    /* With broker.key: a log that has records but no MAC is no pass. */
    hh_run(&h, &r, "haven-admin", "audit", "verify", "--data-dir", s_path(1, "data"), "--broker-key",
           s_path(2, "data/broker.key"), NULL);
    cr_assert_eq(r.code, 65, "stripped MACs must fail with the key: %d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "no record carries a MAC") && strstr(r.err, "without the broker's key"), "%s", r.err);
    /* Without it nothing can tell, and the output says so. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--data-dir", path[1], NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "no record carries a MAC"), "%s", r.out);

    /* The broker, started on it, warns; keys it from then on; and the
     * output of verify says the records before carry no MAC. */
    hh_restart(&h);
    cr_assert(s_log_has("warn: the audit log's head carries no MAC"), "a WARNING in the broker's log");
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "verify", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r);
    json_int_t keyed = json_integer_value(json_object_get(doc, "keyed_from"));
    cr_assert_gt(keyed, 1);
    cr_assert_eq(json_integer_value(json_object_get(doc, "unkeyed_records")), keyed - 1, "%s", r.out);
    json_decref(doc);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", NULL);
    cr_assert(strstr(r.out, "carry no MAC: no key vouches for them"), "%s", r.out);
    /* The head kept elsewhere finds the change. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--head", path[0], NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "rewritten"), "%s", r.err);
}

/* Attack (5): every MAC stripped, every record backdated to 2020 (past
 * retention), chain and head rebuilt, so that the broker, at its next
 * start, would count the forgeries into the monthly totals and remove
 * them, and a head kept elsewhere could no longer be checked. */
Test(audit_trust, a_log_laundered_through_pruning_is_kept_for_the_head_to_catch)
{
    MDB_txn *txn;
    uint8_t raw[72], prev[32];
    size_t len;
    s_search();
    s_head_file("head.txt");
    hh_stop(&h);
    brk_store_t *store = s_store();
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    uint64_t last = s_head_seq(store, txn, raw, &len);
    for (uint64_t seq = 1; seq <= last; seq++) {
        uint8_t k[8];
        Haven__AuditRecord *rec = NULL;
        s_seqkey(seq, k);
        cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_AUDIT, k, 8, &haven__audit_record__descriptor,
                                       (ProtobufCMessage **) &rec), 0);
        rec->at = 1583798400 + (int64_t) seq * 3600;      /* March 2020 */
        if (seq > 1)
            memcpy(rec->prev.data, prev, 32);
        rec->has_mac = 0;        /* as a broker before keyed audit wrote it */
        s_rehash(rec, prev);
        cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_AUDIT, k, 8, &rec->base), 0);
        haven__audit_record__free_unpacked(rec, NULL);
    }
    memcpy(raw + 8, prev, 32);
    cr_assert_eq(brk_store_put(store, txn, BRK_DB_META, "audit-head", 10, raw, 40), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);

    hh_restart(&h);              /* prunes at start: 2020 is long past retention */
    cr_assert(s_log_has("warn: audit record 1 is older than [audit] retention but carries no MAC"), "a WARNING");
    /* Nothing was pruned, so the head kept elsewhere can be checked, and
     * fails: online, and offline with or without broker.key. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--head", path[0], NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "rewritten"), "%s", r.err);
    hh_stop(&h);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--data-dir", s_path(1, "data"),
           "--head", path[0], NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    hh_run(&h, &r, "haven-admin", "audit", "verify", "--data-dir", path[1], "--head", path[0], "--broker-key",
           s_path(2, "data/broker.key"), NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    /* No forged counts in the monthly totals, no pruning base. */
    store = s_store();
    Haven__AuditHead *base = NULL;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_META, "audit-base", 10, &haven__audit_head__descriptor,
                                   (ProtobufCMessage **) &base), -ENOENT, "nothing was pruned");
    int totals = 0;
    cr_assert_eq(brk_audit_totals_each(store, txn, s_count_totals, &totals), 0);
    cr_assert_eq(totals, 0, "no forged counts in the totals");
    brk_store_abort(txn);
    brk_store_destroy(&store);
    hh_restart(&h);              /* for the teardown */
}

static const char *
s_cell(json_t *rows, const char *col, const char *val, const char *want, char *buf, size_t len)
{
    json_t *row;
    size_t i;
    buf[0] = '\0';
    json_array_foreach(rows, i, row) {
        const char *v = json_string_value(json_object_get(row, col));
        json_t *c = json_object_get(row, want);
        if (v && strcmp(v, val) == 0) {
            if (json_is_integer(c))
                snprintf(buf, len, "%lld", (long long) json_integer_value(c));
            else
                snprintf(buf, len, "%s", json_string_value(c));
        }
    }
    return buf;
}

Test(audit_trust, a_search_leaves_no_ages_or_districts_in_the_store)
{
    char buf[64];
    hh_run(&h, &r, "haven", "--config", idva, "search", "--gender", "woman", "--child", "14:m", "--child", "9:f",
           "--exclude", "E07000012", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "show", "--principal", "idva-1", NULL);
    cr_assert(strstr(r.out, "woman; teenage boys, children, boys over 11"), "the coarse flags: %s", r.out);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "unmet", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r);
    cr_assert_str_eq(s_cell(json_object_get(doc, "rows"), "need", "teenage boys", "searches", buf, sizeof buf), "1",
                     "the report still counts the teenage boy: %s", r.out);
    cr_assert_str_eq(s_cell(json_object_get(doc, "rows"), "need", "boys over 11", "searches", buf, sizeof buf), "1");
    json_decref(doc);
    hh_stop(&h);

    FILE *f = fopen(s_path(0, "data/data.mdb"), "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    char *data = malloc((size_t) size);
    fseek(f, 0, SEEK_SET);
    cr_assert_eq(fread(data, 1, (size_t) size, f), (size_t) size);
    fclose(f);
    static const char *const never[] = { "14m", " 9f", "9f,", "E07000012", "South Cambridgeshire" };
    for (size_t k = 0; k < sizeof never / sizeof never[0]; k++) {
        snprintf(buf, sizeof buf, "%s", never[k]);
        cr_assert(!memmem(data, (size_t) size, buf, strlen(buf)), "'%s' is in the store", buf);
    }
    cr_assert(memmem(data, (size_t) size, "boys over 11", 12), "the search was audited");
    free(data);
}

/* The broker's audit key, as only someone with broker.key has it. */
static brk_audit_key_t *
s_broker_audit_key(hv_keys_t **keys)
{
    brk_audit_key_t *key = NULL;
    char err[256];
    cr_assert_eq(hv_keys_load(s_path(3, "data/broker.key"), keys, err, sizeof err), 0, "%s", err);
    cr_assert_eq(brk_audit_key_new(*keys, &key), 0);
    return key;
}

/* Records the broker wrote long ago (keyed, as only it can). */
static void
s_old_records(int64_t at)
{
    MDB_txn *txn;
    hv_keys_t *keys = NULL;
    brk_audit_key_t *key = s_broker_audit_key(&keys);
    brk_store_t *store = s_store();
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    for (int i = 0; i < 4; i++) {
        Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
        rec.has_at = rec.has_outcome = rec.has_role = 1;
        rec.at = at + i * 3600;
        rec.principal = "idva-old";
        rec.role = HAVEN__ROLE__ROLE_IDVA;
        rec.outcome = HAVEN__STATUS__STATUS_OK;
        if (i < 3) {
            rec.action = "search";
            rec.detail = "woman, children 15m";   /* what records said then */
            rec.has_dims = rec.has_matching = rec.has_limit = 1;
            rec.dims = i == 0 ? 1 : 0;            /* teenage boys */
            rec.region = "East of England";
            rec.matching = i == 2 ? 3 : 0;
            rec.limit = 10;
            rec.relax = i == 0 ? "max_boy_age" : NULL;
        } else {
            rec.action = "decline";
            rec.principal = "refuge-a-agent";
            rec.has_reason = rec.has_kind = 1;
            rec.reason = HAVEN__DECLINE_REASON__DECLINE_BOYS_AGE;
            rec.kind = HAVEN__KIND__KIND_REFUGE;
        }
        cr_assert_eq(brk_audit_append(key, store, txn, &rec), 0);
    }
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);
    brk_audit_key_destroy(&key);
    hv_keys_destroy(&keys);
}

Test(audit_trust, old_months_are_pruned_into_totals_the_reports_still_count)
{
    char buf[64];
    /* A store that has run for years: its oldest records are from March
     * 2020. The suite's store has records already, so a fresh one, whose
     * log is empty. */
    hh_stop(&h);
    hh_cleanup(&h);
    hh_start(&h, NULL);
    hh_stop(&h);
    s_old_records(1583798400);   /* 2020-03-10 */
    hh_restart(&h);              /* pruned at start: long past 13 months */

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "show", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(!strstr(r.out, "idva-old") && !strstr(r.out, "15m"), "old records are gone: %s", r.out);
    cr_assert(strstr(r.out, "checkpoint"), "a checkpoint says where: %s", r.out);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "unmet", "--from", "2020-03-01",
           "--to", "2020-04-01", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r), *rows = json_object_get(doc, "rows");
    cr_assert_str_eq(s_cell(rows, "need", "all searches", "searches", buf, sizeof buf), "3", "%s", r.out);
    cr_assert_str_eq(s_cell(rows, "need", "all searches", "found_none", buf, sizeof buf), "2");
    cr_assert_str_eq(s_cell(rows, "need", "all searches", "found_fewer", buf, sizeof buf), "1");
    cr_assert_str_eq(s_cell(rows, "need", "teenage boys", "would_help", buf, sizeof buf), "max_boy_age");
    cr_assert_str_eq(s_cell(rows, "need", "teenage boys", "month", buf, sizeof buf), "2020-03");
    json_decref(doc);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "declines", "--from",
           "2020-03-01", "--to", "2020-04-01", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    doc = hh_json(&r);
    cr_assert_str_eq(s_cell(json_object_get(doc, "rows"), "reason", "boys-age", "declines", buf, sizeof buf), "1",
                     "%s", r.out);
    json_decref(doc);

    /* What remains still verifies, online and in a backup file. */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "records before 5 were counted into monthly totals"), "%s", r.out);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", s_path(1, "backup.mdb"), NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "verify", "--data-dir", path[1],
           NULL);
    cr_assert_eq(r.code, 0, "a backup file, checked as it is: %s", r.err);
    doc = hh_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(doc, "first")), 5);
    json_decref(doc);
    /* The pruning base is signed: moving it on, to hide more, fails. */
    hh_stop(&h);
    MDB_txn *txn;
    brk_store_t *store = s_store();
    Haven__AuditHead *base = NULL;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_META, "audit-base", 10, &haven__audit_head__descriptor,
                                   (ProtobufCMessage **) &base), 0);
    uint8_t k[8];
    s_seqkey(base->seq + 1, k);
    base->seq++;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_META, "audit-base", 10, &base->base), 0);
    haven__audit_head__free_unpacked(base, NULL);
    cr_assert_eq(brk_store_del(store, txn, BRK_DB_AUDIT, k, 8), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    brk_store_destroy(&store);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--data-dir", s_path(1, "data"),
           NULL);
    cr_assert_eq(r.code, 65, "%d %s %s", r.code, r.out, r.err);
    cr_assert(strstr(r.err, "not signed"), "%s", r.err);
}
