/* SPDX-License-Identifier: MIT */
/* The agent is the authority for its units (handle_agent.c): writes raise
 * the provider's synced version, AgentSync says when the broker is behind,
 * a restored store marks every provider unsynced and its units stale in
 * the index until AgentResynced. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/handle_agent.h"

static char dir[64];
static brk_store_t *store;
static brk_index_t *index_;
static brk_ctx_t ctx;

#define NOW 1000000

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-agent-h-XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    index_ = brk_index_new();
    memset(&ctx, 0, sizeof ctx);
    ctx.store = store;
    ctx.index = index_;
    ctx.now = NOW;
}
static void teardown(void)
{
    char cmd[128];
    free(ctx.dirty);
    brk_index_destroy(&index_);
    brk_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(handle_agent, .init = setup, .fini = teardown);

static void
s_put_provider(MDB_txn *txn, const char *id)
{
    Haven__Service s = HAVEN__SERVICE__INIT;
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    p.id = (char *) id;
    p.name = (char *) id;
    p.kind = HAVEN__KIND__KIND_REFUGE;
    p.district = "E07000008";
    p.service = &s;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_PROVIDERS, id, strlen(id), &p.base), 0);
}

static void
s_put_unit(MDB_txn *txn, const char *provider, const char *name)
{
    char key[160];
    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit u = HAVEN__UNIT__INIT;
    spec.name = (char *) name;
    u.provider = (char *) provider;
    u.spec = &spec;
    u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    u.has_version = u.has_confirmed_at = 1;
    u.version = 5;
    u.confirmed_at = NOW;        /* confirmed just now: fresh by its clock */
    int klen = brk_unit_key(provider, name, key, sizeof key);
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &u.base), 0);
}

static Haven__Provider *
s_get_provider(const char *id)
{
    MDB_txn *txn;
    Haven__Provider *p = NULL;
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_PROVIDERS, id, strlen(id), &haven__provider__descriptor,
                                   (ProtobufCMessage **) &p), 0);
    brk_store_abort(txn);
    return p;
}

/* Rebuild the index entries of a provider and its unit from the store, as
 * the broker does at start and after a commit that dirtied the provider. */
static void
s_index(const char *id, const char *unit)
{
    char key[160];
    MDB_txn *txn;
    Haven__Provider *p = s_get_provider(id);
    Haven__Unit *u = NULL;
    cr_assert(brk_index_put_provider(index_, p, 1) >= 0);
    haven__provider__free_unpacked(p, NULL);
    int klen = brk_unit_key(id, unit, key, sizeof key);
    cr_assert_eq(brk_store_begin(store, NULL, false, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_UNITS, key, (size_t) klen, &haven__unit__descriptor,
                                   (ProtobufCMessage **) &u), 0);
    brk_store_abort(txn);
    cr_assert_eq(brk_index_put_unit(index_, u, 1), 0);
    haven__unit__free_unpacked(u, NULL);
}

static bool
s_avail_stale(const char *id, const char *unit)
{
    size_t n;
    const brk_avail_t *av = brk_index_available(index_, &n);
    int idx = brk_index_find_unit(index_, id, unit);
    cr_assert(idx >= 0);
    for (size_t i = 0; i < n; i++)
        if (av[i].unit == (uint32_t) idx)
            return av[i].stale_at < NOW;
    cr_assert_fail("%s/%s is not in the available list", id, unit);
    return false;
}

/* Which of refuge-a's agent keys the next s_call is from (0 or 1). */
static int agent_key;

/* Run one agent handler for refuge-a's agent; returns the handler's
 * result and the decoded reply in *rep_out. */
static int
s_call(brk_handler_t fn, bool write, Haven__Request *req, Haven__Reply **rep_out)
{
    brk_request_t r;
    MDB_txn *txn;
    memset(&r, 0, sizeof r);
    r.who.curve[0] = (uint8_t) agent_key;
    snprintf(r.who.name, sizeof r.who.name, "refuge-a-agent");
    snprintf(r.who.provider, sizeof r.who.provider, "refuge-a");
    r.who.role = HAVEN__ROLE__ROLE_AGENT;
    r.req = req;
    cr_assert_eq(brk_store_begin(store, NULL, write, &txn), 0);
    int rc = fn(&ctx, txn, &r);
    if (write && rc == 0)
        cr_assert_eq(brk_store_commit(txn), 0);
    else
        brk_store_abort(txn);
    cr_assert(r.reply, "the handler packed no reply");
    *rep_out = haven__reply__unpack(NULL, r.reply_len, r.reply);
    cr_assert(*rep_out);
    free(r.reply);
    return rc;
}

static const Haven__SyncReply *
s_sync(uint64_t version, Haven__Reply **rep_out)
{
    Haven__AgentSync s = HAVEN__AGENT_SYNC__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    s.provider = "refuge-a";
    s.version = version;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_SYNC;
    req.agent_sync = &s;
    cr_assert_eq(s_call(brk_handle_agent_sync, false, &req, rep_out), 0);
    cr_assert_eq((*rep_out)->body_case, HAVEN__REPLY__BODY_SYNC);
    return (*rep_out)->sync;
}

Test(handle_agent, a_restored_store_is_stale_until_the_agent_resyncs)
{
    MDB_txn *txn;
    Haven__Reply *rep;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_provider(txn, "refuge-a");
    s_put_provider(txn, "refuge-b");
    s_put_unit(txn, "refuge-a", "room-1");
    s_put_unit(txn, "refuge-b", "room-1");
    cr_assert_eq(brk_store_commit(txn), 0);
    s_index("refuge-a", "room-1");
    s_index("refuge-b", "room-1");
    cr_assert_not(s_avail_stale("refuge-a", "room-1"), "confirmed just now: fresh before the restore");

    /* the broker finds it was restored from a backup */
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_providers_mark_unsynced(&ctx, txn), 2);
    cr_assert_eq(brk_store_commit(txn), 0);
    cr_assert_eq(ctx.n_dirty, 2, "each provider is refreshed in the index");
    cr_assert_eq(ctx.dirty[0].kind, BRK_DIRTY_PROVIDER);
    Haven__Provider *p = s_get_provider("refuge-b");
    cr_assert(p->unsynced);
    cr_assert_eq(p->unsynced_since, NOW);
    haven__provider__free_unpacked(p, NULL);
    s_index("refuge-a", "room-1");
    s_index("refuge-b", "room-1");
    cr_assert(s_avail_stale("refuge-a", "room-1"), "a restored provider's units are stale however fresh");
    int idx = brk_index_find_unit(index_, "refuge-b", "room-1");
    cr_assert(brk_index_unit_stale(index_, (uint32_t) idx, NOW));

    /* marked again before the agent came back: still behind since then */
    ctx.now = NOW + 60;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_providers_mark_unsynced(&ctx, txn), 2);
    cr_assert_eq(brk_store_commit(txn), 0);
    p = s_get_provider("refuge-a");
    cr_assert_eq(p->unsynced_since, NOW);
    haven__provider__free_unpacked(p, NULL);
    ctx.now = NOW;

    /* the agent's first words: not in sync, whatever its version */
    const Haven__SyncReply *s = s_sync(0, &rep);
    cr_assert_not(s->in_sync);
    cr_assert(s->restored);
    haven__reply__free_unpacked(rep, NULL);

    /* it has sent its record again */
    Haven__AgentResynced done = HAVEN__AGENT_RESYNCED__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    done.provider = "refuge-a";
    done.version = 42;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_RESYNCED;
    req.agent_resynced = &done;
    ctx.n_dirty = 0;
    cr_assert_eq(s_call(brk_handle_agent_resynced, true, &req, &rep), 0);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK);
    haven__reply__free_unpacked(rep, NULL);
    cr_assert_eq(ctx.n_dirty, 1);
    cr_assert_str_eq(ctx.dirty[0].provider, "refuge-a");
    p = s_get_provider("refuge-a");
    cr_assert_not(p->unsynced);
    cr_assert_eq(p->synced_version, 42);
    haven__provider__free_unpacked(p, NULL);
    s_index("refuge-a", "room-1");
    cr_assert_not(s_avail_stale("refuge-a", "room-1"), "fresh again once its agent resynced");
    cr_assert(brk_index_unit_stale(index_, (uint32_t) idx, NOW), "the other provider's agent has not come back");

    s = s_sync(42, &rep);
    cr_assert(s->in_sync);
    cr_assert_not(s->restored);
    cr_assert_eq(s->version, 42);
    haven__reply__free_unpacked(rep, NULL);
    s = s_sync(43, &rep);
    cr_assert_not(s->in_sync, "an agent with a newer record than the broker's is not in sync");
    haven__reply__free_unpacked(rep, NULL);
}

Test(handle_agent, an_applied_write_raises_the_synced_version)
{
    MDB_txn *txn;
    Haven__Reply *rep;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_provider(txn, "refuge-a");
    s_put_unit(txn, "refuge-a", "room-1");
    cr_assert_eq(brk_store_commit(txn), 0);

    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    set.provider = "refuge-a";
    set.unit = "room-1";
    set.status = HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE;
    set.version = 900;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    const Haven__SyncReply *s = s_sync(900, &rep);
    cr_assert_not(s->in_sync, "before the set the broker has not got version 900");
    haven__reply__free_unpacked(rep, NULL);
    cr_assert_eq(s_call(brk_handle_unit_set, true, &req, &rep), 0);
    haven__reply__free_unpacked(rep, NULL);
    s = s_sync(900, &rep);
    cr_assert(s->in_sync);
    cr_assert_eq(s->version, 900);
    haven__reply__free_unpacked(rep, NULL);

    /* an ignored (older) write is not applied: it raises nothing */
    set.version = 800;
    cr_assert_eq(s_call(brk_handle_unit_set, true, &req, &rep), 0);
    cr_assert(rep->unit_set->ignored);
    haven__reply__free_unpacked(rep, NULL);
    /* a newer one does */
    set.version = 950;
    cr_assert_eq(s_call(brk_handle_unit_set, true, &req, &rep), 0);
    haven__reply__free_unpacked(rep, NULL);
    s = s_sync(900, &rep);
    cr_assert_eq(s->version, 950);
    haven__reply__free_unpacked(rep, NULL);
}

Test(handle_agent, sync_is_scoped_to_the_agents_own_provider)
{
    MDB_txn *txn;
    Haven__Reply *rep;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_provider(txn, "refuge-b");
    cr_assert_eq(brk_store_commit(txn), 0);
    Haven__AgentSync s = HAVEN__AGENT_SYNC__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    s.provider = "refuge-b";
    req.body_case = HAVEN__REQUEST__BODY_AGENT_SYNC;
    req.agent_sync = &s;
    cr_assert_eq(s_call(brk_handle_agent_sync, false, &req, &rep), 1);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_FORBIDDEN);
    haven__reply__free_unpacked(rep, NULL);
    Haven__AgentResynced d = HAVEN__AGENT_RESYNCED__INIT;
    d.provider = "refuge-b";
    req.body_case = HAVEN__REQUEST__BODY_AGENT_RESYNCED;
    req.agent_resynced = &d;
    cr_assert_eq(s_call(brk_handle_agent_resynced, true, &req, &rep), 1);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_FORBIDDEN);
    haven__reply__free_unpacked(rep, NULL);
}

/* Two offices of one provider, each with its own agent key and record:
 * one agent's newer record must not hide changes of the other's that a
 * restored broker lost. */
Test(handle_agent, each_agent_key_is_brought_up_to_date_on_its_own)
{
    MDB_txn *txn;
    Haven__Reply *rep;
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    s_put_provider(txn, "refuge-a");
    s_put_unit(txn, "refuge-a", "room-1");
    s_put_unit(txn, "refuge-a", "room-2");
    cr_assert_eq(brk_store_commit(txn), 0);

    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    set.provider = "refuge-a";
    set.status = HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    agent_key = 0;               /* the first office: room-1 at version 100 */
    set.unit = "room-1";
    set.version = 100;
    cr_assert_eq(s_call(brk_handle_unit_set, true, &req, &rep), 0);
    haven__reply__free_unpacked(rep, NULL);

    agent_key = 1;               /* the second office's record goes to 95, unapplied */
    const Haven__SyncReply *s = s_sync(95, &rep);
    cr_assert_not(s->in_sync, "the first office's version 100 says nothing of the second's 95");
    haven__reply__free_unpacked(rep, NULL);
    set.unit = "room-2";
    set.version = 95;
    cr_assert_eq(s_call(brk_handle_unit_set, true, &req, &rep), 0);
    haven__reply__free_unpacked(rep, NULL);
    s = s_sync(95, &rep);
    cr_assert(s->in_sync);
    haven__reply__free_unpacked(rep, NULL);
    agent_key = 0;
}
