/* SPDX-License-Identifier: MIT */
/* The agent's outbox (see outbox.h). */
#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include "../common/lmdb_error.h"
#include "../proto/wire.h"
#include "outbox.h"

#define DEFAULT_MAP (64u << 20)
/* Growth stops here: an outbox this large means something is wrong. */
#define MAX_MAP ((size_t) 16 << 30)
#define UNIT_PREFIX "u/"

struct agt_outbox {
    MDB_env *env;
    MDB_dbi meta, queue, record;
};

static int
s_err(int rc)
{
    return hv_lmdb_error(rc);
}

int
agt_outbox_open(const char *dir, agt_outbox_t **out)
{
    return agt_outbox_open_sized(dir, DEFAULT_MAP, out);
}

int
agt_outbox_open_sized(const char *dir, size_t map_size, agt_outbox_t **out)
{
    MDB_txn *txn = NULL;
    int rc;
    /* request ids come from libsodium's generator */
    if (sodium_init() < 0)
        return -EIO;
    agt_outbox_t *self = calloc(1, sizeof *self);
    if (!self)
        return -ENOMEM;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        goto fail;
    }
    if ((rc = s_err(mdb_env_create(&self->env))) < 0)
        goto fail;
    if ((rc = s_err(mdb_env_set_maxdbs(self->env, 4))) < 0
        || (rc = s_err(mdb_env_set_mapsize(self->env, map_size))) < 0
        || (rc = s_err(mdb_env_open(self->env, dir, MDB_NOTLS, 0600))) < 0
        || (rc = s_err(mdb_txn_begin(self->env, NULL, 0, &txn))) < 0
        || (rc = s_err(mdb_dbi_open(txn, "meta", MDB_CREATE, &self->meta))) < 0
        || (rc = s_err(mdb_dbi_open(txn, "queue", MDB_CREATE | MDB_INTEGERKEY, &self->queue))) < 0
        || (rc = s_err(mdb_dbi_open(txn, "record", MDB_CREATE, &self->record))) < 0)
        goto fail;
    rc = s_err(mdb_txn_commit(txn));
    txn = NULL;
    if (rc < 0)
        goto fail;
    /* An agent killed inside a read (SIGKILL, a power cut) leaves its
     * reader slot behind, which pins old pages and, repeated, fills the
     * table: clear those of processes that are gone. */
    int dead;
    if ((rc = s_err(mdb_reader_check(self->env, &dead))) < 0)
        goto fail;
    *out = self;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    agt_outbox_destroy(&self);
    return rc;
}

void
agt_outbox_destroy(agt_outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->env)
        mdb_env_close((*self_p)->env);
    free(*self_p);
    *self_p = NULL;
}

size_t
agt_outbox_map_size(agt_outbox_t *self)
{
    MDB_envinfo info;
    return mdb_env_info(self->env, &info) == 0 ? info.me_mapsize : 0;
}

/* Begin a transaction. Another agent process (`run` beside a command) may
 * have grown the map: LMDB says so once, and we adopt its size. */
static int
s_begin(agt_outbox_t *self, unsigned flags, MDB_txn **txn_out)
{
    int rc = s_err(mdb_txn_begin(self->env, NULL, flags, txn_out));
    if (rc == -EAGAIN) {
        if ((rc = s_err(mdb_env_set_mapsize(self->env, 0))) < 0)
            return rc;
        rc = s_err(mdb_txn_begin(self->env, NULL, flags, txn_out));
    }
    return rc;
}

/* Double the map. LMDB allows it only with no transaction open in this
 * process, which holds here: every write runs in s_write, after its
 * transaction ended. */
static int
s_grow(agt_outbox_t *self)
{
    size_t now = agt_outbox_map_size(self);
    if (now == 0 || now >= MAX_MAP)
        return -ENOSPC;
    return s_err(mdb_env_set_mapsize(self->env, now * 2));
}

/* Run fn in a write transaction and commit it. A full map (at a put or at
 * the commit) leaves the transaction dead: abort, grow, run fn again. fn
 * must therefore write its results to its arg only as a final step, and
 * the caller read them only after success. */
static int
s_write(agt_outbox_t *self, int (*fn)(agt_outbox_t *self, MDB_txn *txn, void *arg), void *arg)
{
    for (;;) {
        MDB_txn *txn;
        int rc = s_begin(self, 0, &txn);
        if (rc < 0)
            return rc;
        if ((rc = fn(self, txn, arg)) == 0)
            rc = s_err(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
        if (rc != -ENOSPC)
            return rc;
        if ((rc = s_grow(self)) < 0)
            return rc;
    }
}

/* Put msg packed under key, in place (MDB_RESERVE: no copy). */
static int
s_put_msg(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const ProtobufCMessage *msg)
{
    MDB_val v = { protobuf_c_message_get_packed_size(msg), NULL };
    int rc = s_err(mdb_put(txn, dbi, k, &v, MDB_RESERVE));
    if (rc == 0)
        protobuf_c_message_pack(msg, v.mv_data);
    return rc;
}

/* ---------------------------------------------------------------- version */

static int
s_next_version(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    MDB_val k = { 7, "version" }, v;
    struct timeval tv;
    uint64_t version = 0;
    int rc = s_err(mdb_get(txn, self->meta, &k, &v));
    if (rc == 0 && v.mv_size == 8)
        memcpy(&version, v.mv_data, 8);
    else if (rc < 0 && rc != -ENOENT)
        return rc;
    if (gettimeofday(&tv, NULL) < 0)
        return -errno;
    uint64_t now_us = (uint64_t) tv.tv_sec * 1000000u + (uint64_t) tv.tv_usec;
    version = version + 1 > now_us ? version + 1 : now_us;
    v.mv_size = 8;
    v.mv_data = &version;
    if ((rc = s_err(mdb_put(txn, self->meta, &k, &v, 0))) < 0)
        return rc;
    *(uint64_t *) arg = version;
    return 0;
}

int
agt_outbox_next_version(agt_outbox_t *self, uint64_t *version_out)
{
    uint64_t version = 0;
    int rc = s_write(self, s_next_version, &version);
    if (rc == 0)
        *version_out = version;
    return rc;
}

/* ---------------------------------------------------------------- queue */

static uint64_t
s_request_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        randombytes_buf(&id, sizeof id);
        id &= 0x7fffffffffffffffULL;
    }
    return id;
}

typedef struct {
    const Haven__Request *req;
    uint64_t id;
} s_push_t;

static int
s_push(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    s_push_t *p = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t seq = 1;
    int rc = s_err(mdb_cursor_open(txn, self->queue, &cur));
    if (rc < 0)
        return rc;
    rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_LAST));
    if (rc == 0 && k.mv_size == 8) {
        memcpy(&seq, k.mv_data, 8);
        seq++;
    }
    mdb_cursor_close(cur);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    Haven__Request copy = *p->req;
    copy.id = p->id;
    k.mv_size = 8;
    k.mv_data = &seq;
    return s_put_msg(txn, self->queue, &k, &copy.base);
}

int
agt_outbox_push(agt_outbox_t *self, const Haven__Request *req, uint64_t *id_out)
{
    /* chosen once, outside the retries of s_write, so it never changes */
    s_push_t p = { req, s_request_id() };
    int rc = s_write(self, s_push, &p);
    if (rc == 0 && id_out)
        *id_out = p.id;
    return rc;
}

typedef struct {
    uint64_t seq, id;
} s_give_id_t;

/* An entry from before entries had ids: give it one, kept from now on. */
static int
s_give_id(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    s_give_id_t *g = arg;
    MDB_val k = { 8, &g->seq }, v;
    int rc = s_err(mdb_get(txn, self->queue, &k, &v));
    if (rc < 0)
        return rc;
    Haven__Request *r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
    if (!r)
        return -EBADMSG;
    if (r->id)
        g->id = r->id;           /* another process gave it one first */
    else {
        r->id = g->id;
        rc = s_put_msg(txn, self->queue, &k, &r->base);
    }
    haven__request__free_unpacked(r, NULL);
    return rc;
}

int
agt_outbox_peek(agt_outbox_t *self, Haven__Request **req_out, uint64_t *seq_out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    Haven__Request *r = NULL;
    uint64_t seq = 0;
    int rc = s_begin(self, MDB_RDONLY, &txn);
    if (rc < 0)
        return rc;
    if ((rc = s_err(mdb_cursor_open(txn, self->queue, &cur))) == 0) {
        rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
        if (rc == 0) {
            r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
            if (!r || k.mv_size != 8)
                rc = -EBADMSG;
            else
                memcpy(&seq, k.mv_data, 8);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    if (rc == 0 && r->id == 0) {
        s_give_id_t g = { seq, s_request_id() };
        if ((rc = s_write(self, s_give_id, &g)) == 0)
            r->id = g.id;
    }
    if (rc < 0) {
        if (r)
            haven__request__free_unpacked(r, NULL);
        return rc;
    }
    *req_out = r;
    *seq_out = seq;
    return 0;
}

static int
s_push_publish(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    s_push_t *p = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t first = 0, *later = NULL;
    size_t n_later = 0, cap = 0;
    int rc = s_err(mdb_cursor_open(txn, self->queue, &cur));
    if (rc < 0)
        return rc;
    for (rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
         rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        Haven__Request *r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
        bool publish = r && r->body_case == HAVEN__REQUEST__BODY_PUBLISH;
        if (r)
            haven__request__free_unpacked(r, NULL);
        if (!publish || k.mv_size != 8)
            continue;
        uint64_t seq;
        memcpy(&seq, k.mv_data, 8);
        if (!first) {
            first = seq;
            continue;
        }
        if (n_later == cap) {
            cap = cap ? 2 * cap : 4;
            uint64_t *q = realloc(later, cap * sizeof *q);
            if (!q) {
                rc = -ENOMEM;
                break;
            }
            later = q;
        }
        later[n_later++] = seq;
    }
    mdb_cursor_close(cur);
    if (rc == -ENOENT)
        rc = first ? 0 : -ENOENT;
    if (rc == -ENOENT) {
        free(later);
        return s_push(self, txn, arg);
    }
    for (size_t i = 0; rc == 0 && i < n_later; i++) {
        MDB_val dk = { 8, &later[i] };
        rc = s_err(mdb_del(txn, self->queue, &dk, NULL));
    }
    free(later);
    if (rc < 0)
        return rc;
    Haven__Request copy = *p->req;
    copy.id = p->id;
    k.mv_size = 8;
    k.mv_data = &first;
    return s_put_msg(txn, self->queue, &k, &copy.base);
}

int
agt_outbox_push_publish(agt_outbox_t *self, const Haven__Request *req, uint64_t *id_out)
{
    s_push_t p = { req, s_request_id() };
    int rc = s_write(self, s_push_publish, &p);
    if (rc == 0 && id_out)
        *id_out = p.id;
    return rc;
}

typedef struct {
    uint64_t seq, id;
} s_remove_t;

static int
s_remove(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    s_remove_t *d = arg;
    MDB_val k = { 8, &d->seq }, v;
    int rc = s_err(mdb_get(txn, self->queue, &k, &v));
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    Haven__Request *r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
    /* replaced by a newer publish while this one was in flight: keep it */
    bool same = !r || r->id == d->id;
    if (r)
        haven__request__free_unpacked(r, NULL);
    return same ? s_err(mdb_del(txn, self->queue, &k, NULL)) : 0;
}

int
agt_outbox_remove(agt_outbox_t *self, uint64_t seq, uint64_t id)
{
    s_remove_t d = { seq, id };
    return s_write(self, s_remove, &d);
}

int
agt_outbox_count(agt_outbox_t *self, size_t *count_out)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc = s_begin(self, MDB_RDONLY, &txn);
    if (rc < 0)
        return rc;
    rc = s_err(mdb_stat(txn, self->queue, &st));
    mdb_txn_abort(txn);
    if (rc == 0)
        *count_out = st.ms_entries;
    return rc;
}

int
agt_outbox_each(agt_outbox_t *self, size_t max,
                void (*fn)(void *arg, uint64_t seq, const Haven__Request *req), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = s_begin(self, MDB_RDONLY, &txn);
    if (rc < 0)
        return rc;
    if ((rc = s_err(mdb_cursor_open(txn, self->queue, &cur))) == 0) {
        int op = MDB_FIRST;
        for (size_t n = 0; n < max && (rc = s_err(mdb_cursor_get(cur, &k, &v, op))) == 0; n++) {
            op = MDB_NEXT;
            Haven__Request *r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
            uint64_t seq = 0;
            if (k.mv_size == 8)
                memcpy(&seq, k.mv_data, 8);
            fn(arg, seq, r);
            if (r)
                haven__request__free_unpacked(r, NULL);
        }
        if (rc == -ENOENT)
            rc = 0;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* ---------------------------------------------------------------- record */

static bool
s_unit_key(const char *name, char *buf, size_t len, MDB_val *k)
{
    size_t n = strlen(UNIT_PREFIX) + strlen(name);
    if (n >= len)
        return false;
    memcpy(buf, UNIT_PREFIX, strlen(UNIT_PREFIX));
    memcpy(buf + strlen(UNIT_PREFIX), name, strlen(name));
    k->mv_size = n;
    k->mv_data = buf;
    return true;
}

static bool
s_is_unit_key(const MDB_val *k)
{
    return k->mv_size > strlen(UNIT_PREFIX) && memcmp(k->mv_data, UNIT_PREFIX, strlen(UNIT_PREFIX)) == 0;
}

static bool
s_lists(const Haven__Publish *pub, const MDB_val *k)
{
    size_t plen = strlen(UNIT_PREFIX), nlen = k->mv_size - plen;
    for (size_t i = 0; i < pub->n_units; i++)
        if (strlen(pub->units[i]->name) == nlen
            && memcmp(pub->units[i]->name, (const char *) k->mv_data + plen, nlen) == 0)
            return true;
    return false;
}

typedef struct {
    char name[HV_ID_MAX + 8];
    size_t len;
} s_key_t;

static int
s_record_catalog(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    const Haven__Publish *pub = arg;
    MDB_val k = { 7, "catalog" }, v;
    MDB_cursor *cur;
    int rc = s_err(mdb_get(txn, self->record, &k, &v));
    if (rc == 0) {
        Haven__Publish *was = haven__publish__unpack(NULL, v.mv_size, v.mv_data);
        bool newer = was && strcmp(was->provider, pub->provider) == 0 && was->version >= pub->version;
        if (was)
            haven__publish__free_unpacked(was, NULL);
        if (newer)
            return 0;            /* a later publish was recorded first */
    } else if (rc != -ENOENT) {
        return rc;
    }
    if ((rc = s_put_msg(txn, self->record, &k, &pub->base)) < 0)
        return rc;
    /* Units withdrawn from the catalog: the agent no longer vouches for
     * them. Their keys are copied during the walk and deleted after it,
     * since a deletion moves what the cursor and the keys point into. */
    s_key_t *gone = NULL;
    size_t n_gone = 0, cap_gone = 0;
    if ((rc = s_err(mdb_cursor_open(txn, self->record, &cur))) < 0)
        return rc;
    k.mv_size = strlen(UNIT_PREFIX);
    k.mv_data = UNIT_PREFIX;
    for (rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)); rc == 0 && s_is_unit_key(&k);
         rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        if (s_lists(pub, &k) || k.mv_size > sizeof gone->name)
            continue;
        if (n_gone == cap_gone) {
            cap_gone = cap_gone ? 2 * cap_gone : 16;
            s_key_t *p = realloc(gone, cap_gone * sizeof *gone);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            gone = p;
        }
        memcpy(gone[n_gone].name, k.mv_data, k.mv_size);
        gone[n_gone++].len = k.mv_size;
    }
    mdb_cursor_close(cur);
    if (rc == -ENOENT)
        rc = 0;
    for (size_t i = 0; rc == 0 && i < n_gone; i++) {
        MDB_val dk = { gone[i].len, gone[i].name };
        rc = s_err(mdb_del(txn, self->record, &dk, NULL));
    }
    free(gone);
    return rc;
}

int
agt_outbox_record_catalog(agt_outbox_t *self, const Haven__Publish *pub)
{
    return s_write(self, s_record_catalog, (void *) pub);
}

static int
s_record_unit(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    const Haven__UnitSet *set = arg;
    char buf[HV_ID_MAX + 8];
    MDB_val k, v;
    if (!s_unit_key(set->unit, buf, sizeof buf, &k))
        return -ENAMETOOLONG;
    int rc = s_err(mdb_get(txn, self->record, &k, &v));
    if (rc == 0) {
        Haven__UnitSet *was = haven__unit_set__unpack(NULL, v.mv_size, v.mv_data);
        bool newer = was && strcmp(was->provider, set->provider) == 0 && was->version >= set->version;
        if (was)
            haven__unit_set__free_unpacked(was, NULL);
        if (newer)
            return 0;
    } else if (rc != -ENOENT) {
        return rc;
    }
    return s_put_msg(txn, self->record, &k, &set->base);
}

int
agt_outbox_record_unit(agt_outbox_t *self, const Haven__UnitSet *set)
{
    return s_write(self, s_record_unit, (void *) set);
}

static int
s_record_confirm(agt_outbox_t *self, MDB_txn *txn, void *arg)
{
    MDB_val k = { 7, "confirm" }, v;
    int64_t at = *(int64_t *) arg, was = 0;
    int rc = s_err(mdb_get(txn, self->record, &k, &v));
    if (rc == 0 && v.mv_size == 8)
        memcpy(&was, v.mv_data, 8);
    else if (rc < 0 && rc != -ENOENT)
        return rc;
    if (was >= at)
        return 0;
    v.mv_size = 8;
    v.mv_data = &at;
    return s_err(mdb_put(txn, self->record, &k, &v, 0));
}

int
agt_outbox_record_confirm(agt_outbox_t *self, int64_t at)
{
    return s_write(self, s_record_confirm, &at);
}

void
agt_record_clear(agt_record_t *rec)
{
    if (rec->catalog)
        haven__publish__free_unpacked(rec->catalog, NULL);
    for (size_t i = 0; i < rec->n_units; i++)
        haven__unit_set__free_unpacked(rec->units[i], NULL);
    free(rec->units);
    memset(rec, 0, sizeof *rec);
}

static int
s_load_units(agt_outbox_t *self, MDB_txn *txn, const char *provider, agt_record_t *rec)
{
    MDB_cursor *cur;
    MDB_val k = { strlen(UNIT_PREFIX), UNIT_PREFIX }, v;
    size_t cap = 0;
    int rc = s_err(mdb_cursor_open(txn, self->record, &cur));
    if (rc < 0)
        return rc;
    for (rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)); rc == 0 && s_is_unit_key(&k);
         rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        Haven__UnitSet *u = haven__unit_set__unpack(NULL, v.mv_size, v.mv_data);
        if (!u) {
            rc = -EBADMSG;
            break;
        }
        if (strcmp(u->provider, provider) != 0) {
            haven__unit_set__free_unpacked(u, NULL);
            continue;
        }
        if (rec->n_units == cap) {
            cap = cap ? 2 * cap : 16;
            Haven__UnitSet **p = realloc(rec->units, cap * sizeof *p);
            if (!p) {
                haven__unit_set__free_unpacked(u, NULL);
                rc = -ENOMEM;
                break;
            }
            rec->units = p;
        }
        rec->units[rec->n_units++] = u;
        if (u->version > rec->version)
            rec->version = u->version;
    }
    mdb_cursor_close(cur);
    return rc == -ENOENT ? 0 : rc;
}

int
agt_outbox_record_load(agt_outbox_t *self, const char *provider, agt_record_t *out)
{
    MDB_txn *txn;
    MDB_val k = { 7, "catalog" }, v;
    agt_record_t rec = { 0 };
    int rc = s_begin(self, MDB_RDONLY, &txn);
    if (rc < 0)
        return rc;
    rc = s_err(mdb_get(txn, self->record, &k, &v));
    if (rc == 0) {
        rec.catalog = haven__publish__unpack(NULL, v.mv_size, v.mv_data);
        if (!rec.catalog)
            rc = -EBADMSG;
        else if (strcmp(rec.catalog->provider, provider) != 0) {
            haven__publish__free_unpacked(rec.catalog, NULL);
            rec.catalog = NULL;
        } else
            rec.version = rec.catalog->version;
    }
    if (rc == -ENOENT)
        rc = 0;
    k.mv_data = "confirm";
    if (rc == 0 && (rc = s_err(mdb_get(txn, self->record, &k, &v))) == 0 && v.mv_size == 8)
        memcpy(&rec.confirmed_at, v.mv_data, 8);
    if (rc == -ENOENT)
        rc = 0;
    if (rc == 0)
        rc = s_load_units(self, txn, provider, &rec);
    mdb_txn_abort(txn);
    if (rc < 0) {
        agt_record_clear(&rec);
        return rc;
    }
    *out = rec;
    return 0;
}
