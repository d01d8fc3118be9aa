/* SPDX-License-Identifier: MIT */
/* The broker's LMDB store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../proto/lmdb_error.h"
#include "store.h"

struct brk_store {
    MDB_env *env;
    MDB_dbi dbi[BRK_DB__COUNT];
    bool absent[BRK_DB__COUNT];  /* a copy made before this table existed */
    size_t map_size;
};

static const char *const s_db_names[BRK_DB__COUNT] = {
    "meta", "principals", "names", "providers", "units", "holds", "deadlines", "audit",
    "watches", "inbox", "replies", "reply-times",
};

int
brk_lmdb_error(int rc)
{
    return hv_lmdb_error(rc);
}

static int s_open(const char *dir, size_t map_size, bool copy, brk_store_t **store_out);

int
brk_store_open(const char *dir, size_t map_size, brk_store_t **store_out)
{
    return s_open(dir, map_size, false, store_out);
}

int
brk_store_open_copy(const char *dir, brk_store_t **store_out)
{
    return s_open(dir, 1 << 20, true, store_out);
}

static int
s_open(const char *dir, size_t map_size, bool copy, brk_store_t **store_out)
{
    MDB_txn *txn = NULL;
    int rc;
    brk_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return -ENOMEM;
    if (!copy && mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        goto fail;
    }
    if ((rc = brk_lmdb_error(mdb_env_create(&self->env))) < 0)
        goto fail;
    mdb_env_set_maxdbs(self->env, 16);
    mdb_env_set_maxreaders(self->env, 126);
    if ((rc = brk_lmdb_error(mdb_env_set_mapsize(self->env, map_size))) < 0)
        goto fail;
    /* A copy may be a backup file as haven-admin backup writes it, not a
     * directory holding data.mdb. */
    struct stat st;
    unsigned nosubdir = copy && stat(dir, &st) == 0 && S_ISREG(st.st_mode) ? MDB_NOSUBDIR : 0;
    /* Durable commits (no MDB_NOSYNC): an ack means the update is on disk. */
    if ((rc = brk_lmdb_error(mdb_env_open(self->env, dir,
                                          MDB_NOTLS | nosubdir | (copy ? MDB_RDONLY | MDB_NOLOCK : 0), 0600))) < 0)
        goto fail;
    /* The file may be larger than asked (it grew earlier): use its size. */
    MDB_envinfo info;
    mdb_env_info(self->env, &info);
    self->map_size = info.me_mapsize;

    if ((rc = brk_lmdb_error(mdb_txn_begin(self->env, NULL, copy ? MDB_RDONLY : 0, &txn))) < 0)
        goto fail;
    for (int i = 0; i < BRK_DB__COUNT; i++) {
        rc = brk_lmdb_error(mdb_dbi_open(txn, s_db_names[i], copy ? 0 : MDB_CREATE, &self->dbi[i]));
        if (rc == -ENOENT && copy) {
            self->absent[i] = true;     /* an older backup: read as empty */
            rc = 0;
        }
        if (rc < 0)
            goto fail;
    }
    if ((rc = brk_lmdb_error(mdb_txn_commit(txn))) < 0) {
        txn = NULL;
        goto fail;
    }
    *store_out = self;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    brk_store_destroy(&self);
    return rc;
}

void
brk_store_destroy(brk_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->env)
        mdb_env_close((*self_p)->env);
    free(*self_p);
    *self_p = NULL;
}

int
brk_store_begin(brk_store_t *self, MDB_txn *parent, bool write, MDB_txn **txn_out)
{
    return brk_lmdb_error(mdb_txn_begin(self->env, parent, write ? 0 : MDB_RDONLY, txn_out));
}

int
brk_store_commit(MDB_txn *txn)
{
    return brk_lmdb_error(mdb_txn_commit(txn));
}

int
brk_store_commit_nosync(brk_store_t *self, MDB_txn *txn)
{
    mdb_env_set_flags(self->env, MDB_NOSYNC, 1);
    int rc = brk_lmdb_error(mdb_txn_commit(txn));
    mdb_env_set_flags(self->env, MDB_NOSYNC, 0);
    return rc;
}

int
brk_store_sync(brk_store_t *self)
{
    return brk_lmdb_error(mdb_env_sync(self->env, 1));
}

void
brk_store_abort(MDB_txn *txn)
{
    if (txn)
        mdb_txn_abort(txn);
}

int
brk_store_grow(brk_store_t *self)
{
    size_t size = self->map_size * 2;
    int rc = brk_lmdb_error(mdb_env_set_mapsize(self->env, size));
    if (rc == 0)
        self->map_size = size;
    return rc;
}

size_t
brk_store_map_size(const brk_store_t *self)
{
    return self->map_size;
}

int
brk_store_reader_check(brk_store_t *self)
{
    int dead = 0;
    mdb_reader_check(self->env, &dead);
    return dead;
}

int
brk_store_get(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key, size_t klen,
              const void **val_out, size_t *vlen_out)
{
    MDB_val k = { klen, (void *) key }, v;
    if (self->absent[db])
        return -ENOENT;
    int rc = brk_lmdb_error(mdb_get(txn, self->dbi[db], &k, &v));
    if (rc == 0) {
        *val_out = v.mv_data;
        *vlen_out = v.mv_size;
    }
    return rc;
}

int
brk_store_put(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key, size_t klen,
              const void *val, size_t vlen)
{
    MDB_val k = { klen, (void *) key }, v = { vlen, (void *) val };
    return brk_lmdb_error(mdb_put(txn, self->dbi[db], &k, &v, 0));
}

int
brk_store_del(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key, size_t klen)
{
    MDB_val k = { klen, (void *) key };
    return brk_lmdb_error(mdb_del(txn, self->dbi[db], &k, NULL));
}

int
brk_store_put_msg(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                  size_t klen, const ProtobufCMessage *msg)
{
    MDB_val k = { klen, (void *) key }, v;
    v.mv_size = protobuf_c_message_get_packed_size(msg);
    /* MDB_RESERVE: pack straight into the page, no intermediate buffer. */
    int rc = brk_lmdb_error(mdb_put(txn, self->dbi[db], &k, &v, MDB_RESERVE));
    if (rc == 0)
        protobuf_c_message_pack(msg, v.mv_data);
    return rc;
}

int
brk_store_get_msg(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                  size_t klen, const ProtobufCMessageDescriptor *desc,
                  ProtobufCMessage **msg_out)
{
    const void *val;
    size_t vlen;
    int rc = brk_store_get(self, txn, db, key, klen, &val, &vlen);
    if (rc < 0)
        return rc;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, vlen, val);
    if (!m)
        return -EBADMSG;
    *msg_out = m;
    return 0;
}

int
brk_store_each(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix,
               size_t plen, brk_store_each_fn fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val k = { plen, (void *) prefix }, v;
    if (self->absent[db])
        return 0;
    int rc = brk_lmdb_error(mdb_cursor_open(txn, self->dbi[db], &cur));
    if (rc < 0)
        return rc;
    int op = plen ? MDB_SET_RANGE : MDB_FIRST;
    /* Only the cursor's -ENOENT means "no more records": a callback's
     * -ENOENT is an error like any other and must reach the caller. */
    while ((rc = brk_lmdb_error(mdb_cursor_get(cur, &k, &v, op))) == 0) {
        op = MDB_NEXT;
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        rc = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (rc != 0)
            goto out;
    }
    if (rc == -ENOENT)
        rc = 0;                  /* the end of the table */
out:
    mdb_cursor_close(cur);
    return rc == 1 ? 0 : rc;
}

static int
s_count_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    (void) val;
    (void) vlen;
    (*(size_t *) arg)++;
    return 0;
}

int
brk_store_count_prefix(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix, size_t plen,
                       size_t *count_out)
{
    size_t n = 0;
    int rc = brk_store_each(self, txn, db, prefix, plen, s_count_one, &n);
    if (rc == 0)
        *count_out = n;
    return rc;
}

int
brk_store_count(brk_store_t *self, MDB_txn *txn, brk_db_t db, size_t *count_out)
{
    MDB_stat st;
    if (self->absent[db]) {
        *count_out = 0;
        return 0;
    }
    int rc = brk_lmdb_error(mdb_stat(txn, self->dbi[db], &st));
    if (rc == 0)
        *count_out = st.ms_entries;
    return rc;
}

int
brk_unit_key(const char *provider, const char *unit, char *buf, size_t len)
{
    size_t pl = strlen(provider), ul = strlen(unit);
    if (pl + 1 + ul > len)
        return -ENAMETOOLONG;
    memcpy(buf, provider, pl);
    buf[pl] = '\0';
    memcpy(buf + pl + 1, unit, ul);
    return (int) (pl + 1 + ul);
}

int
brk_store_list_add(brk_store_list_t *l, ProtobufCMessage *msg)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->items, cap * sizeof *l->items);
        if (!p) {
            protobuf_c_message_free_unpacked(msg, NULL);
            return -ENOMEM;
        }
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = msg;
    return 0;
}

static int
s_list_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    brk_store_list_t *l = arg;
    ProtobufCMessage *m = protobuf_c_message_unpack(l->desc, NULL, vlen, val);
    if (!m)
        return -EBADMSG;
    return brk_store_list_add(l, m);
}

int
brk_store_list(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix, size_t plen,
               const ProtobufCMessageDescriptor *desc, brk_store_list_t *out)
{
    memset(out, 0, sizeof *out);
    out->desc = desc;
    int rc = brk_store_each(self, txn, db, prefix, plen, s_list_one, out);
    if (rc < 0)
        brk_store_list_free(out);
    return rc;
}

void
brk_store_list_free(brk_store_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        protobuf_c_message_free_unpacked(l->items[i], NULL);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

int
brk_store_copy_fd(brk_store_t *self, int fd)
{
    return brk_lmdb_error(mdb_env_copyfd2(self->env, fd, MDB_CP_COMPACT));
}

int
brk_store_del_prefix(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix, size_t plen)
{
    MDB_cursor *cur;
    MDB_val k = { plen, (void *) prefix }, v;
    int n = 0, rc = brk_lmdb_error(mdb_cursor_open(txn, self->dbi[db], &cur));
    if (rc < 0)
        return rc;
    rc = brk_lmdb_error(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
    while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
        if ((rc = brk_lmdb_error(mdb_cursor_del(cur, 0))) < 0)
            break;
        n++;
        rc = brk_lmdb_error(mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT));
        if (rc == -EINVAL || rc == -ENOENT)
            break;
    }
    mdb_cursor_close(cur);
    return rc == -ENOENT || rc == 0 || rc == -EINVAL ? n : rc;
}
