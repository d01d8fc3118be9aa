/* SPDX-License-Identifier: MIT */
/* The agent's outbox: order, durability across reopen, versions, stable
 * request ids, a map that grows, the authority record. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lmdb.h>
#include <sodium.h>
#include "../../agent/outbox.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-outbox-XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(outbox, .init = setup, .fini = teardown);

static uint64_t
s_push(agt_outbox_t *o, const char *unit, uint64_t version)
{
    uint64_t id = 0;
    Haven__UnitSet s = HAVEN__UNIT_SET__INIT;
    Haven__Request r = HAVEN__REQUEST__INIT;
    s.provider = "refuge-1";
    s.unit = (char *) unit;
    s.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    s.version = version;
    r.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    r.unit_set = &s;
    cr_assert_eq(agt_outbox_push(o, &r, &id), 0);
    return id;
}

Test(outbox, keeps_order_across_reopen)
{
    agt_outbox_t *o = NULL;
    Haven__Request *r = NULL;
    uint64_t seq;
    size_t n;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), -ENOENT);
    s_push(o, "a", 1);
    s_push(o, "b", 2);
    s_push(o, "c", 3);
    agt_outbox_destroy(&o);

    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_count(o, &n), 0);
    cr_assert_eq(n, 3);
    const char *want[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
        cr_assert_str_eq(r->unit_set->unit, want[i]);
        uint64_t id = r->id;
        haven__request__free_unpacked(r, NULL);
        cr_assert_eq(agt_outbox_remove(o, seq, id), 0);
    }
    cr_assert_eq(agt_outbox_count(o, &n), 0);
    cr_assert_eq(n, 0);
    agt_outbox_destroy(&o);
}

Test(outbox, versions_rise_and_start_from_the_clock)
{
    agt_outbox_t *o = NULL;
    uint64_t a, b, c;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_next_version(o, &a), 0);
    cr_assert_eq(agt_outbox_next_version(o, &b), 0);
    cr_assert_gt(b, a);
    cr_assert_geq(a, (uint64_t) (time(NULL) - 5) * 1000000u,
                  "a fresh state dir must outrank versions from a lost one");
    agt_outbox_destroy(&o);
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_next_version(o, &c), 0);
    cr_assert_gt(c, b);
    agt_outbox_destroy(&o);
}

Test(outbox, each_entry_keeps_its_own_request_id)
{
    agt_outbox_t *o = NULL;
    Haven__Request *r = NULL;
    uint64_t seq;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    uint64_t a = s_push(o, "a", 1), b = s_push(o, "b", 2);
    cr_assert_neq(a, 0);
    cr_assert_neq(b, 0);
    cr_assert_neq(a, b, "two changes are two requests");
    cr_assert_lt(a, 1ULL << 63, "63 bits");
    cr_assert_lt(b, 1ULL << 63);
    agt_outbox_destroy(&o);

    /* every attempt, from any run of the agent, sends the same id */
    for (int run = 0; run < 2; run++) {
        cr_assert_eq(agt_outbox_open(dir, &o), 0);
        cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
        cr_assert_eq(r->id, a);
        haven__request__free_unpacked(r, NULL);
        agt_outbox_destroy(&o);
    }
    /* removing with another id (the entry was replaced meanwhile) keeps it */
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_remove(o, seq, a + 1), 0);
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    cr_assert_eq(r->id, a);
    haven__request__free_unpacked(r, NULL);
    cr_assert_eq(agt_outbox_remove(o, seq, a), 0);
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    cr_assert_eq(r->id, b);
    haven__request__free_unpacked(r, NULL);
    agt_outbox_destroy(&o);
}

Test(outbox, an_entry_queued_before_ids_gets_one_and_keeps_it)
{
    /* what an older haven-agent left: a request packed with id 0 */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi q;
    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    Haven__Request old = HAVEN__REQUEST__INIT;
    set.provider = "refuge-1";
    set.unit = "a";
    set.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    set.version = 7;
    old.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    old.unit_set = &set;
    uint8_t buf[256];
    uint64_t one = 1;
    size_t len = protobuf_c_message_pack(&old.base, buf);
    agt_outbox_t *o = NULL;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);       /* makes the tables */
    agt_outbox_destroy(&o);
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "queue", MDB_INTEGERKEY, &q), 0);
    MDB_val k = { 8, &one }, v = { len, buf };
    cr_assert_eq(mdb_put(txn, q, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    Haven__Request *r = NULL;
    uint64_t seq, id;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    id = r->id;
    cr_assert_neq(id, 0);
    haven__request__free_unpacked(r, NULL);
    agt_outbox_destroy(&o);
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    cr_assert_eq(r->id, id, "given once, kept across restarts");
    cr_assert_eq(r->unit_set->version, 7);
    haven__request__free_unpacked(r, NULL);
    agt_outbox_destroy(&o);
}

/* A publish of n units with long names: several KiB queued at once. */
static void
s_publish(agt_outbox_t *o, size_t n, uint64_t version, int (*push)(agt_outbox_t *, const Haven__Request *,
                                                                    uint64_t *))
{
    Haven__Service svc = HAVEN__SERVICE__INIT;
    Haven__Publish p = HAVEN__PUBLISH__INIT;
    Haven__Request r = HAVEN__REQUEST__INIT;
    Haven__UnitSpec *specs = calloc(n, sizeof *specs);
    Haven__UnitSpec **ptrs = calloc(n, sizeof *ptrs);
    char (*names)[64] = calloc(n, 64);
    for (size_t i = 0; i < n; i++) {
        haven__unit_spec__init(&specs[i]);
        snprintf(names[i], 64, "unit-%zu-%040d", i, 0);
        specs[i].name = names[i];
        ptrs[i] = &specs[i];
    }
    p.provider = "refuge-1";
    p.service = &svc;
    p.units = ptrs;
    p.n_units = n;
    p.version = version;
    r.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    r.publish = &p;
    cr_assert_eq(push(o, &r, NULL), 0);
    free(names);
    free(ptrs);
    free(specs);
}

Test(outbox, the_map_grows_when_it_fills)
{
    agt_outbox_t *o = NULL;
    size_t n;
    cr_assert_eq(agt_outbox_open_sized(dir, 64 << 10, &o), 0);
    size_t start = agt_outbox_map_size(o);
    /* 200 entries of ~6 KiB: far beyond a 64 KiB map */
    for (int i = 0; i < 200; i++)
        s_publish(o, 100, (uint64_t) i + 1, agt_outbox_push);
    cr_assert_gt(agt_outbox_map_size(o), start, "the map grew");
    uint64_t v;
    cr_assert_eq(agt_outbox_next_version(o, &v), 0);
    agt_outbox_destroy(&o);
    cr_assert_eq(agt_outbox_open_sized(dir, 64 << 10, &o), 0);
    cr_assert_eq(agt_outbox_count(o, &n), 0);
    cr_assert_eq(n, 200, "nothing was lost growing");
    Haven__Request *r = NULL;
    uint64_t seq;
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    cr_assert_eq(r->publish->version, 1);
    cr_assert_eq(r->publish->n_units, 100);
    haven__request__free_unpacked(r, NULL);
    agt_outbox_destroy(&o);
}

Test(outbox, a_new_publish_takes_the_place_of_one_still_queued)
{
    agt_outbox_t *o = NULL;
    Haven__Request *r = NULL;
    uint64_t seq;
    size_t n;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    s_publish(o, 3, 10, agt_outbox_push_publish);
    s_push(o, "unit-0", 11);
    s_publish(o, 4, 12, agt_outbox_push);            /* as an older agent queued it */
    s_push(o, "unit-1", 13);
    s_publish(o, 2, 14, agt_outbox_push_publish);
    cr_assert_eq(agt_outbox_count(o, &n), 0);
    cr_assert_eq(n, 3, "one publish, then the two sets");
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    cr_assert_eq(r->body_case, HAVEN__REQUEST__BODY_PUBLISH);
    cr_assert_eq(r->publish->version, 14, "the newest catalog, first in the queue");
    cr_assert_eq(r->publish->n_units, 2);
    haven__request__free_unpacked(r, NULL);
    agt_outbox_destroy(&o);
}

static void
s_record_set(agt_outbox_t *o, const char *provider, const char *unit, int status, uint64_t version)
{
    Haven__UnitSet s = HAVEN__UNIT_SET__INIT;
    s.provider = (char *) provider;
    s.unit = (char *) unit;
    s.status = status;
    s.version = version;
    cr_assert_eq(agt_outbox_record_unit(o, &s), 0);
}

Test(outbox, the_record_keeps_the_newest_and_forgets_withdrawn_units)
{
    agt_outbox_t *o = NULL;
    agt_record_t rec;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_record_load(o, "refuge-1", &rec), 0);
    cr_assert_null(rec.catalog);
    cr_assert_eq(rec.n_units, 0);
    cr_assert_eq(rec.version, 0, "an empty record");
    agt_record_clear(&rec);

    s_publish(o, 3, 10, agt_outbox_push);            /* only to have a Publish at hand */
    Haven__Request *r = NULL;
    uint64_t seq;
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
    cr_assert_eq(agt_outbox_record_catalog(o, r->publish), 0);
    s_record_set(o, "refuge-1", "unit-0-0000000000000000000000000000000000000000", HAVEN__UNIT_STATUS__UNIT_AVAILABLE, 20);
    s_record_set(o, "refuge-1", "unit-0-0000000000000000000000000000000000000000", HAVEN__UNIT_STATUS__UNIT_OCCUPIED, 15);
    s_record_set(o, "refuge-1", "unit-2-0000000000000000000000000000000000000000", HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE, 30);
    s_record_set(o, "refuge-1", "gone", HAVEN__UNIT_STATUS__UNIT_AVAILABLE, 25);
    s_record_set(o, "refuge-9", "theirs", HAVEN__UNIT_STATUS__UNIT_AVAILABLE, 99);
    cr_assert_eq(agt_outbox_record_confirm(o, 500), 0);
    cr_assert_eq(agt_outbox_record_confirm(o, 400), 0);
    agt_outbox_destroy(&o);

    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_record_load(o, "refuge-1", &rec), 0);
    cr_assert_not_null(rec.catalog);
    cr_assert_eq(rec.catalog->version, 10);
    cr_assert_eq(rec.n_units, 3, "another provider's entry is not this one's");
    cr_assert_str_eq(rec.units[0]->unit, "gone");
    cr_assert_eq(rec.units[1]->status, HAVEN__UNIT_STATUS__UNIT_AVAILABLE, "an older status does not replace a newer");
    cr_assert_eq(rec.units[1]->version, 20);
    cr_assert_eq(rec.version, 30);
    cr_assert_eq(rec.confirmed_at, 500);
    agt_record_clear(&rec);

    /* a newer catalog without "gone" and unit-2: they leave the record */
    r->publish->version = 40;
    r->publish->n_units = 1;
    cr_assert_eq(agt_outbox_record_catalog(o, r->publish), 0);
    r->publish->version = 35;            /* an older one, noted late, changes nothing */
    r->publish->n_units = 3;
    cr_assert_eq(agt_outbox_record_catalog(o, r->publish), 0);
    r->publish->n_units = 3;
    haven__request__free_unpacked(r, NULL);
    cr_assert_eq(agt_outbox_record_load(o, "refuge-1", &rec), 0);
    cr_assert_eq(rec.catalog->version, 40);
    cr_assert_eq(rec.n_units, 1);
    cr_assert_str_eq(rec.units[0]->unit, "unit-0-0000000000000000000000000000000000000000");
    cr_assert_eq(rec.version, 40);
    agt_record_clear(&rec);
    agt_outbox_destroy(&o);
}
