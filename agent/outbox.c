/* SPDX-License-Identifier: MIT */
/* The agent's outbox (see outbox.h). */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include "../proto/lmdb_error.h"
#include "../proto/wire.h"
#include "outbox.h"

struct agt_outbox {
    MDB_env *env;
    MDB_dbi meta, queue;
};

static int
s_err(int rc)
{
    return hv_lmdb_error(rc);
}

int
agt_outbox_open(const char *dir, agt_outbox_t **out)
{
    MDB_txn *txn = NULL;
    int rc;
    agt_outbox_t *self = calloc(1, sizeof *self);
    if (!self)
        return -ENOMEM;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        goto fail;
    }
    if ((rc = s_err(mdb_env_create(&self->env))) < 0)
        goto fail;
    mdb_env_set_maxdbs(self->env, 4);
    mdb_env_set_mapsize(self->env, 64u << 20);
    if ((rc = s_err(mdb_env_open(self->env, dir, MDB_NOTLS, 0600))) < 0
        || (rc = s_err(mdb_txn_begin(self->env, NULL, 0, &txn))) < 0
        || (rc = s_err(mdb_dbi_open(txn, "meta", MDB_CREATE, &self->meta))) < 0
        || (rc = s_err(mdb_dbi_open(txn, "queue", MDB_CREATE | MDB_INTEGERKEY, &self->queue))) < 0)
        goto fail;
    rc = s_err(mdb_txn_commit(txn));
    txn = NULL;
    if (rc < 0)
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

int
agt_outbox_next_version(agt_outbox_t *self, uint64_t *version_out)
{
    MDB_txn *txn;
    MDB_val k = { 7, "version" }, v;
    struct timeval tv;
    uint64_t version = 0;
    int rc = s_err(mdb_txn_begin(self->env, NULL, 0, &txn));
    if (rc < 0)
        return rc;
    rc = s_err(mdb_get(txn, self->meta, &k, &v));
    if (rc == 0 && v.mv_size == 8)
        memcpy(&version, v.mv_data, 8);
    else if (rc != -ENOENT && rc < 0)
        goto fail;
    gettimeofday(&tv, NULL);
    uint64_t now_us = (uint64_t) tv.tv_sec * 1000000u + (uint64_t) tv.tv_usec;
    version = version + 1 > now_us ? version + 1 : now_us;
    v.mv_size = 8;
    v.mv_data = &version;
    if ((rc = s_err(mdb_put(txn, self->meta, &k, &v, 0))) < 0)
        goto fail;
    if ((rc = s_err(mdb_txn_commit(txn))) < 0)
        return rc;
    *version_out = version;
    return 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}

int
agt_outbox_push(agt_outbox_t *self, const Haven__Request *req)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t seq = 1;
    int rc = s_err(mdb_txn_begin(self->env, NULL, 0, &txn));
    if (rc < 0)
        return rc;
    if ((rc = s_err(mdb_cursor_open(txn, self->queue, &cur))) < 0)
        goto fail;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8) {
        memcpy(&seq, k.mv_data, 8);
        seq++;
    }
    mdb_cursor_close(cur);
    k.mv_size = 8;
    k.mv_data = &seq;
    v.mv_size = protobuf_c_message_get_packed_size(&req->base);
    if ((rc = s_err(mdb_put(txn, self->queue, &k, &v, MDB_RESERVE))) < 0)
        goto fail;
    protobuf_c_message_pack(&req->base, v.mv_data);
    return s_err(mdb_txn_commit(txn));
fail:
    mdb_txn_abort(txn);
    return rc;
}

int
agt_outbox_peek(agt_outbox_t *self, Haven__Request **req_out, uint64_t *seq_out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = s_err(mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn));
    if (rc < 0)
        return rc;
    if ((rc = s_err(mdb_cursor_open(txn, self->queue, &cur))) == 0) {
        rc = s_err(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
        if (rc == 0) {
            Haven__Request *r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
            if (!r || k.mv_size != 8) {
                rc = -EBADMSG;
                if (r)
                    haven__request__free_unpacked(r, NULL);
            } else {
                memcpy(seq_out, k.mv_data, 8);
                *req_out = r;
            }
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

int
agt_outbox_remove(agt_outbox_t *self, uint64_t seq)
{
    MDB_txn *txn;
    MDB_val k = { 8, &seq };
    int rc = s_err(mdb_txn_begin(self->env, NULL, 0, &txn));
    if (rc < 0)
        return rc;
    rc = s_err(mdb_del(txn, self->queue, &k, NULL));
    if (rc < 0 && rc != -ENOENT) {
        mdb_txn_abort(txn);
        return rc;
    }
    return s_err(mdb_txn_commit(txn));
}

int
agt_outbox_count(agt_outbox_t *self, size_t *count_out)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc = s_err(mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn));
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
    int rc = s_err(mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn));
    if (rc < 0)
        return rc;
    if ((rc = s_err(mdb_cursor_open(txn, self->queue, &cur))) == 0) {
        size_t n = 0;
        int op = MDB_FIRST;
        while (n < max && mdb_cursor_get(cur, &k, &v, op) == 0) {
            op = MDB_NEXT;
            Haven__Request *r = haven__request__unpack(NULL, v.mv_size, v.mv_data);
            uint64_t seq = 0;
            if (k.mv_size == 8)
                memcpy(&seq, k.mv_data, 8);
            if (r) {
                fn(arg, seq, r);
                haven__request__free_unpacked(r, NULL);
            }
            n++;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}
