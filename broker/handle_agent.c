/* SPDX-License-Identifier: MIT */
/* Agent requests: a provider's catalog, unit status and confirmations.
 * An agent's key belongs to one provider; every request is checked against
 * it. Versions make replays and reordering harmless: an update whose
 * version is not newer than the stored one is acknowledged and ignored. */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/names.h"
#include "log.h"
#include "handle_agent.h"
#include "scope.h"

static int
s_get_provider(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r, const char *id, Haven__Provider **out)
{
    int rc = brk_store_get_msg(ctx->store, txn, BRK_DB_PROVIDERS, id, strlen(id),
                               &haven__provider__descriptor, (ProtobufCMessage **) out);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "provider %s does not exist", id);
    return rc;
}

/* An agent's write with this version was applied: the broker now has the
 * agent's record up to at least it (design.md section 7). */
static void
s_raise(Haven__Provider *prov, uint64_t version)
{
    if (!prov->has_synced_version || prov->synced_version < version) {
        prov->has_synced_version = 1;
        prov->synced_version = version;
    }
}

/* Each agent key's own synced version: the highest version of its writes
 * the broker applied, in the meta table under "synced" and the key. Per
 * key, not per provider: a provider with two agents (two offices) must
 * have each brought up to date, and one agent's newer record must not
 * hide another's changes the broker lost. */
static int
s_key_version(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], uint64_t *version_out)
{
    uint8_t k[38] = "synced";
    const uint8_t *v;
    size_t vlen;
    memcpy(k + 6, key, 32);
    *version_out = 0;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_META, k, sizeof k, (const void **) &v, &vlen);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < vlen && i < 8; i++)
        *version_out = *version_out << 8 | v[i];
    return 0;
}

/* After a restore, every agent key of a provider must bring the broker up
 * to date, not just the first to call: each office's agent has its own
 * record. The keys still to do it: meta "resync" provider NUL key -> "". */
static int
s_pending_key(const char *provider, const uint8_t key[32], uint8_t *out, size_t len)
{
    size_t plen = strlen(provider);
    if (6 + plen + 1 + 32 > len)
        return -ENAMETOOLONG;
    memcpy(out, "resync", 6);
    memcpy(out + 6, provider, plen + 1);
    if (key)
        memcpy(out + 6 + plen + 1, key, 32);
    return (int) (6 + plen + 1 + (key ? 32 : 0));
}

static int
s_pending(brk_ctx_t *ctx, MDB_txn *txn, const char *provider, const uint8_t key[32], bool *pending_out,
          size_t *left_out)
{
    uint8_t k[6 + HV_ID_MAX + 1 + 32];
    const void *v;
    size_t vlen;
    int klen = s_pending_key(provider, key, k, sizeof k);
    if (klen < 0)
        return klen;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_META, k, (size_t) klen, &v, &vlen);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    *pending_out = rc == 0;
    return brk_store_count_prefix(ctx->store, txn, BRK_DB_META, k, (size_t) klen - 32, left_out);
}

int
brk_agent_resync_forget(brk_ctx_t *ctx, MDB_txn *txn, const char *provider, const uint8_t key[32])
{
    uint8_t k[6 + HV_ID_MAX + 1 + 32];
    int klen = s_pending_key(provider, key, k, sizeof k);
    if (klen < 0)
        return klen;
    int rc = brk_store_del(ctx->store, txn, BRK_DB_META, k, (size_t) klen);
    return rc == -ENOENT ? 0 : rc;
}

typedef struct {
    brk_ctx_t *ctx;
    MDB_txn *txn;
} s_mark_agents_t;

static int
s_mark_agent(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_mark_agents_t *m = arg;
    if (klen != 32)
        return 0;
    Haven__Principal *p = haven__principal__unpack(NULL, vlen, val);
    if (!p)
        return -EBADMSG;
    int rc = 0;
    if (p->role == HAVEN__ROLE__ROLE_AGENT && !(p->has_revoked && p->revoked) && p->provider && *p->provider) {
        uint8_t k[6 + HV_ID_MAX + 1 + 32];
        int n = s_pending_key(p->provider, key, k, sizeof k);
        rc = n < 0 ? n : brk_store_put(m->ctx->store, m->txn, BRK_DB_META, k, (size_t) n, "", 0);
    }
    haven__principal__free_unpacked(p, NULL);
    return rc;
}

int
brk_agent_synced(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], uint64_t version)
{
    uint64_t have = 0;
    int rc = s_key_version(ctx, txn, key, &have);
    if (rc < 0 || have >= version)
        return rc;
    uint8_t k[38] = "synced", v[8];
    memcpy(k + 6, key, 32);
    for (int i = 7; i >= 0; i--, version >>= 8)
        v[i] = (uint8_t) version;
    return brk_store_put(ctx->store, txn, BRK_DB_META, k, sizeof k, v, sizeof v);
}

static bool
s_same_spec(const Haven__UnitSpec *a, const Haven__UnitSpec *b)
{
    size_t la = protobuf_c_message_get_packed_size(&a->base);
    size_t lb = protobuf_c_message_get_packed_size(&b->base);
    if (la != lb)
        return false;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    bool same = pa && pb;
    if (same) {
        protobuf_c_message_pack(&a->base, pa);
        protobuf_c_message_pack(&b->base, pb);
        same = memcmp(pa, pb, la) == 0;
    }
    free(pa);
    free(pb);
    return same;
}

/* Each unit once, in a district the broker knows; names collects them.
 * Returns 0, or 1 with a BAD_REQUEST reply packed. */
static int
s_check_catalog(brk_ctx_t *ctx, brk_request_t *r, const Haven__Publish *p, GHashTable *names)
{
    for (size_t i = 0; i < p->n_units; i++) {
        const Haven__UnitSpec *u = p->units[i];
        if (!g_hash_table_add(names, u->name))
            return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                                   "unit %s is listed twice in the catalog", u->name);
        if (u->district && *u->district && brk_districts_find(ctx->districts, u->district) < 0)
            return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                                   "unit %s: district %s is not in the broker's districts table",
                                   u->name, u->district);
    }
    return 0;
}

typedef struct {
    uint32_t added, updated, withdrawn;
    char **added_names;          /* n_units slots: the agent records these as occupied */
} s_counts_t;

/* The catalog against the units stored (old): units it no longer lists are
 * withdrawn (not one held for a referral), new ones added as occupied,
 * changed ones updated keeping their status. Counts into *n. Returns 0, or
 * 1 with a CONFLICT reply packed, or -errno. */
static int
s_apply_catalog(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r, const Haven__Publish *p, GHashTable *names,
                const brk_store_list_t *old, s_counts_t *n)
{
    char key[2 * HV_ID_MAX + 2];
    int rc = 0;
    GHashTable *existing = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < old->n; i++) {
        Haven__Unit *u = (Haven__Unit *) old->items[i];
        g_hash_table_insert(existing, u->spec->name, u);
        if (!g_hash_table_contains(names, u->spec->name)) {
            if (u->status == HAVEN__UNIT_STATUS__UNIT_HELD) {
                rc = brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                                     "unit %s is held for a referral; accept or decline it before "
                                     "withdrawing it from the catalog", u->spec->name);
                goto out;
            }
            int klen = brk_unit_key(p->provider, u->spec->name, key, sizeof key);
            if ((rc = brk_store_del(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen)) < 0
                || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_UNIT, p->provider, u->spec->name, NULL)) < 0)
                goto out;
            n->withdrawn++;
        }
    }
    for (size_t i = 0; i < p->n_units; i++) {
        Haven__UnitSpec *spec = p->units[i];
        Haven__Unit *was = g_hash_table_lookup(existing, spec->name);
        Haven__Unit rec = HAVEN__UNIT__INIT;
        if (was) {
            if (s_same_spec(was->spec, spec))
                continue;
            rec = *was;          /* keep status, version and confirmation */
            n->updated++;
        } else {
            /* A unit nobody has confirmed is never offered. */
            rec.status = HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
            n->added_names[n->added++] = spec->name;
        }
        rec.provider = p->provider;
        rec.spec = spec;
        int klen = brk_unit_key(p->provider, spec->name, key, sizeof key);
        if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &rec.base)) < 0)
            break;
    }
out:
    g_hash_table_destroy(existing);
    return rc;
}

int
brk_handle_publish(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Publish *p = r->req->publish;
    Haven__Provider *prov = NULL;
    brk_store_list_t old = { 0 };
    GHashTable *names = NULL;
    s_counts_t n = { 0 };
    int rc;

    if (brk_check_scope(r, p->provider))
        return 1;
    /* Refused for good, not LIMIT: sending the same catalog again cannot
     * succeed, and an agent keeps what is refused with LIMIT. */
    if ((int64_t) p->n_units > ctx->cfg->max_units_per_catalog)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "the catalog lists %zu units; this broker accepts at most %lld per "
                               "provider (limits.max_units_per_catalog)",
                               p->n_units, (long long) ctx->cfg->max_units_per_catalog);
    if ((rc = s_get_provider(ctx, txn, r, p->provider, &prov)) != 0)
        return rc;
    if (prov->has_catalog_version && prov->catalog_version >= p->version) {
        haven__provider__free_unpacked(prov, NULL);
        Haven__PublishReply body = HAVEN__PUBLISH_REPLY__INIT;
        body.has_ignored = body.ignored = 1;
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_PUBLISH;
        reply.publish = &body;
        return brk_reply_ok(r, &reply);
    }
    names = g_hash_table_new(g_str_hash, g_str_equal);
    if ((rc = s_check_catalog(ctx, r, p, names)) != 0)
        goto out;
    n.added_names = calloc(p->n_units + 1, sizeof *n.added_names);
    if (!n.added_names) {
        rc = -ENOMEM;
        goto out;
    }
    size_t plen = strlen(p->provider) + 1;
    if ((rc = brk_store_list(ctx->store, txn, BRK_DB_UNITS, p->provider, plen,
                             &haven__unit__descriptor, &old)) < 0
        || (rc = s_apply_catalog(ctx, txn, r, p, names, &old, &n)) != 0)
        goto out;

    /* the stored rules give way to the catalog's (freed now: the request
     * owns what replaces them) */
    if (prov->service)
        haven__service__free_unpacked(prov->service, NULL);
    prov->service = p->service;
    prov->has_catalog_version = 1;
    prov->catalog_version = p->version;
    s_raise(prov, p->version);
    rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PROVIDERS, p->provider, plen - 1, &prov->base);
    prov->service = NULL;        /* owned by the request, not by prov */
    if (rc < 0 || (rc = brk_agent_synced(ctx, txn, r->who.curve, p->version)) < 0
        || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PROVIDER, p->provider, NULL, NULL)) < 0)
        goto out;
    brk_log(BRK_LOG_INFO, "%s published %zu units for %s: %u added, %u updated, %u withdrawn",
            r->who.name, p->n_units, p->provider, n.added, n.updated, n.withdrawn);
    Haven__PublishReply body = HAVEN__PUBLISH_REPLY__INIT;
    body.has_added = body.has_updated = body.has_withdrawn = 1;
    body.added = n.added;
    body.updated = n.updated;
    body.withdrawn = n.withdrawn;
    body.n_added_units = n.added;
    body.added_units = n.added_names;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_PUBLISH;
    reply.publish = &body;
    rc = brk_reply_ok(r, &reply);
out:
    free(n.added_names);
    brk_store_list_free(&old);
    if (names)
        g_hash_table_destroy(names);
    if (prov)
        haven__provider__free_unpacked(prov, NULL);
    return rc;
}

/* When staff said it: their clock, but never in the future of ours. */
static int64_t
s_when(const brk_ctx_t *ctx, protobuf_c_boolean has_at, int64_t at)
{
    return has_at && at > 0 && at < ctx->now ? at : ctx->now;
}

int
brk_handle_unit_set(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__UnitSet *s = r->req->unit_set;
    Haven__Unit *u = NULL;
    char key[2 * HV_ID_MAX + 2];
    if (brk_check_scope(r, s->provider))
        return 1;
    int klen = brk_unit_key(s->provider, s->unit, key, sizeof key);
    int rc = brk_store_get_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen,
                               &haven__unit__descriptor, (ProtobufCMessage **) &u);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND,
                               "unit %s is not in %s's published catalog; publish the catalog first",
                               s->unit, s->provider);
    if (rc < 0)
        return rc;
    Haven__UnitSetReply body = HAVEN__UNIT_SET_REPLY__INIT;
    if (u->status == HAVEN__UNIT_STATUS__UNIT_HELD && !(u->has_version && u->version >= s->version)) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                             "unit %s is held for a referral; accept or decline it first "
                             "(haven-agent referrals)", s->unit);
        goto out;
    }
    if (u->has_version && u->version == s->version) {
        /* this very change, sent again (its reply was lost): applied */
    } else if (u->has_version && u->version > s->version) {
        body.has_ignored = body.ignored = 1;
    } else {
        int64_t when = s_when(ctx, s->has_at, s->at);
        u->status = s->status;
        u->has_available_from = 1;
        u->available_from = s->has_available_from ? s->available_from : 0;
        u->has_version = 1;
        u->version = s->version;
        /* Setting a status is looking at the unit: it confirms it. */
        if (!u->has_confirmed_at || u->confirmed_at < when) {
            u->has_confirmed_at = 1;
            u->confirmed_at = when;
        }
        if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &u->base)) < 0
            || (rc = brk_agent_synced(ctx, txn, r->who.curve, s->version)) < 0
            || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_UNIT, s->provider, s->unit, NULL)) < 0)
            goto out;
    }
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_UNIT_SET;
    reply.unit_set = &body;
    rc = brk_reply_ok(r, &reply);
out:
    haven__unit__free_unpacked(u, NULL);
    return rc;
}

int
brk_handle_confirm(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Confirm *c = r->req->confirm;
    brk_store_list_t units;
    char key[2 * HV_ID_MAX + 2];
    if (brk_check_scope(r, c->provider))
        return 1;
    int64_t when = s_when(ctx, c->has_at, c->at);
    size_t plen = strlen(c->provider) + 1;
    int rc = brk_store_list(ctx->store, txn, BRK_DB_UNITS, c->provider, plen,
                            &haven__unit__descriptor, &units);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < units.n; i++) {
        Haven__Unit *u = (Haven__Unit *) units.items[i];
        if (u->has_confirmed_at && u->confirmed_at >= when)
            continue;
        u->has_confirmed_at = 1;
        u->confirmed_at = when;
        int klen = brk_unit_key(c->provider, u->spec->name, key, sizeof key);
        if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &u->base)) < 0)
            goto out;
    }
    if ((rc = brk_ctx_dirty(ctx, BRK_DIRTY_PROVIDER, c->provider, NULL, NULL)) < 0)
        goto out;
    Haven__ConfirmReply body = HAVEN__CONFIRM_REPLY__INIT;
    body.has_units = 1;
    body.units = (uint32_t) units.n;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_CONFIRM;
    reply.confirm = &body;
    rc = brk_reply_ok(r, &reply);
out:
    brk_store_list_free(&units);
    return rc;
}

int
brk_handle_agent_status(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const char *id = r->req->agent_status->provider;
    Haven__Provider *prov = NULL;
    brk_store_list_t units = { 0 };
    if (brk_check_scope(r, id))
        return 1;
    int rc = s_get_provider(ctx, txn, r, id, &prov);
    if (rc != 0)
        return rc;
    if ((rc = brk_store_list(ctx->store, txn, BRK_DB_UNITS, id, strlen(id) + 1,
                             &haven__unit__descriptor, &units)) < 0)
        goto out;
    int64_t every = prov->service && prov->service->has_confirm_every_s
        ? prov->service->confirm_every_s : 86400;
    for (size_t i = 0; i < units.n; i++) {
        Haven__Unit *u = (Haven__Unit *) units.items[i];
        u->has_stale = 1;
        /* Until the agent has resynced, the broker may be showing a
         * state from before a restore: nothing of it is current. */
        u->stale = prov->unsynced || !u->has_confirmed_at || u->confirmed_at + every < ctx->now;
    }
    Haven__AgentStatusReply body = HAVEN__AGENT_STATUS_REPLY__INIT;
    body.provider = prov;
    body.n_units = units.n;
    body.units = (Haven__Unit **) units.items;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_AGENT_STATUS;
    reply.agent_status = &body;
    rc = brk_reply_ok(r, &reply);
out:
    brk_store_list_free(&units);
    haven__provider__free_unpacked(prov, NULL);
    return rc;
}

static int
s_reply_sync(brk_request_t *r, const Haven__Provider *prov, uint64_t version, bool in_sync)
{
    Haven__SyncReply body = HAVEN__SYNC_REPLY__INIT;
    body.in_sync = in_sync;
    body.has_version = body.has_restored = 1;
    body.version = version;
    body.restored = prov->unsynced;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_SYNC;
    reply.sync = &body;
    return brk_reply_ok(r, &reply);
}

int
brk_handle_agent_sync(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__AgentSync *s = r->req->agent_sync;
    Haven__Provider *prov = NULL;
    if (brk_check_scope(r, s->provider))
        return 1;
    int rc = s_get_provider(ctx, txn, r, s->provider, &prov);
    if (rc != 0)
        return rc;
    uint64_t have = 0;
    bool pending = false;
    size_t left = 0;
    if ((rc = s_key_version(ctx, txn, r->who.curve, &have)) < 0
        || (prov->unsynced && (rc = s_pending(ctx, txn, s->provider, r->who.curve, &pending, &left)) < 0))
        goto out;
    /* Behind this agent if it lacks its writes, or the store was restored
     * and this key has not brought it up to date since (or no key is left
     * that could: then any of the provider's agents may). */
    bool in_sync = have >= s->version && !(prov->unsynced && (pending || left == 0));
    if (!in_sync)
        brk_log(BRK_LOG_INFO, "%s: the broker is behind the agent for %s (has version %llu, the agent %llu%s); "
                "the agent sends its record again", r->who.name, s->provider, (unsigned long long) have,
                (unsigned long long) s->version, prov->unsynced ? ", restored from a backup" : "");
    rc = s_reply_sync(r, prov, have, in_sync);
out:
    haven__provider__free_unpacked(prov, NULL);
    return rc;
}

int
brk_handle_agent_resynced(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__AgentResynced *s = r->req->agent_resynced;
    Haven__Provider *prov = NULL;
    if (brk_check_scope(r, s->provider))
        return 1;
    int rc = s_get_provider(ctx, txn, r, s->provider, &prov);
    if (rc != 0)
        return rc;
    bool was = prov->unsynced, pending = false;
    uint64_t have = 0;
    size_t left = 0;
    if ((rc = brk_agent_synced(ctx, txn, r->who.curve, s->version)) < 0
        || (rc = s_key_version(ctx, txn, r->who.curve, &have)) < 0
        || (rc = brk_agent_resync_forget(ctx, txn, s->provider, r->who.curve)) < 0
        || (rc = s_pending(ctx, txn, s->provider, r->who.curve, &pending, &left)) < 0)
        goto out;
    s_raise(prov, s->version);
    /* The provider is current once every agent key it had at the restore
     * has brought the broker up to date (each office has its own record). */
    if (left == 0) {
        prov->has_unsynced = prov->unsynced = 0;
        prov->has_unsynced_since = 0;
        prov->unsynced_since = 0;
    }
    if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PROVIDERS, s->provider, strlen(s->provider),
                                &prov->base)) < 0)
        goto out;
    /* Its units were stale only because of the flag: the index must see
     * them fresh now. Otherwise nothing the index reads has changed. */
    if (was && left == 0 && (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PROVIDER, s->provider, NULL, NULL)) < 0)
        goto out;
    brk_log(BRK_LOG_INFO, "%s resynced %s up to version %llu%s", r->who.name, s->provider,
            (unsigned long long) s->version,
            !was ? "" : left ? "; its units stay stale until its other agents have too"
                             : " after a restore: its units are offered again");
    snprintf(r->audit.detail, sizeof r->audit.detail, "provider %s version %llu%s", s->provider,
             (unsigned long long) s->version, was ? " restored" : "");
    rc = s_reply_sync(r, prov, have, true);
out:
    haven__provider__free_unpacked(prov, NULL);
    return rc;
}

int
brk_providers_mark_unsynced(brk_ctx_t *ctx, MDB_txn *txn)
{
    brk_store_list_t l = { 0 };
    s_mark_agents_t m = { ctx, txn };
    int rc = brk_store_each(ctx->store, txn, BRK_DB_PRINCIPALS, NULL, 0, s_mark_agent, &m);
    if (rc < 0)
        return rc;
    rc = brk_store_list(ctx->store, txn, BRK_DB_PROVIDERS, NULL, 0, &haven__provider__descriptor, &l);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < l.n; i++) {
        Haven__Provider *p = (Haven__Provider *) l.items[i];
        /* Restored twice before its agent came back: it has been behind
         * since the first time. */
        if (!p->unsynced) {
            p->has_unsynced = p->unsynced = 1;
            p->has_unsynced_since = 1;
            p->unsynced_since = ctx->now;
        }
        if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PROVIDERS, p->id, strlen(p->id), &p->base)) < 0
            || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PROVIDER, p->id, NULL, NULL)) < 0)
            goto out;
    }
    if (l.n)
        brk_log(BRK_LOG_WARN, "the store was restored from a backup: %zu provider%s marked unsynced, %s units "
                "stale until %s agent next contacts the broker and sends what the backup missed", l.n,
                l.n == 1 ? "" : "s", l.n == 1 ? "its" : "their", l.n == 1 ? "its" : "each one's");
    rc = (int) l.n;
out:
    brk_store_list_free(&l);
    return rc;
}
