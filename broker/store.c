/* SPDX-License-Identifier: MIT */
/* The broker's LMDB store. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "../common/lmdb_error.h"
#include "log.h"
#include "store.h"

struct brk_store {
    MDB_env *env;
    MDB_dbi dbi[BRK_DB__COUNT];
    bool absent[BRK_DB__COUNT];  /* a copy made before this table existed */
    size_t map_size;
    bool copy;                   /* a read-only copy (a backup being checked) */
    /* LMDB remaps on mdb_env_set_mapsize and any reader still holding
     * pages of the old map then reads unmapped memory. A hot copy runs on
     * another thread inside its own read transaction, so it holds this
     * lock shared for its whole read, and growth takes it exclusively. */
    pthread_rwlock_t copy_lock;
    bool copy_lock_ready;
    /* Transactions begun here and not yet ended, nested ones included:
     * the map may only grow when there are none. */
    atomic_int open_txns;
};

static const char *const s_db_names[BRK_DB__COUNT] = {
    "meta", "principals", "names", "providers", "units", "holds", "deadlines", "audit",
    "watches", "inbox", "replies", "reply-times",
};

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
    self->copy = copy;
    if ((rc = -pthread_rwlock_init(&self->copy_lock, NULL)) < 0)
        goto fail;
    self->copy_lock_ready = true;
    if ((rc = hv_lmdb_error(mdb_env_create(&self->env))) < 0)
        goto fail;
    /* brk_store_commit and brk_store_abort find the store from the txn */
    if ((rc = hv_lmdb_error(mdb_env_set_userctx(self->env, self))) < 0
        || (rc = hv_lmdb_error(mdb_env_set_maxdbs(self->env, 16))) < 0
        || (rc = hv_lmdb_error(mdb_env_set_maxreaders(self->env, 126))) < 0
        || (rc = hv_lmdb_error(mdb_env_set_mapsize(self->env, map_size))) < 0)
        goto fail;
    /* A copy may be a backup file as haven-admin backup writes it, not a
     * directory holding data.mdb. */
    struct stat st;
    unsigned nosubdir = copy && stat(dir, &st) == 0 && S_ISREG(st.st_mode) ? MDB_NOSUBDIR : 0;
    /* Durable commits (no MDB_NOSYNC): an ack means the update is on disk. */
    if ((rc = hv_lmdb_error(mdb_env_open(self->env, dir,
                                          MDB_NOTLS | nosubdir | (copy ? MDB_RDONLY | MDB_NOLOCK : 0), 0600))) < 0)
        goto fail;
    /* The file may be larger than asked (it grew earlier): use its size. */
    MDB_envinfo info;
    if ((rc = hv_lmdb_error(mdb_env_info(self->env, &info))) < 0)
        goto fail;
    self->map_size = info.me_mapsize;

    if ((rc = hv_lmdb_error(mdb_txn_begin(self->env, NULL, copy ? MDB_RDONLY : 0, &txn))) < 0)
        goto fail;
    for (int i = 0; i < BRK_DB__COUNT; i++) {
        rc = hv_lmdb_error(mdb_dbi_open(txn, s_db_names[i], copy ? 0 : MDB_CREATE, &self->dbi[i]));
        if (rc == -ENOENT && copy) {
            self->absent[i] = true;     /* an older backup: read as empty */
            rc = 0;
        }
        if (rc < 0)
            goto fail;
    }
    if ((rc = hv_lmdb_error(mdb_txn_commit(txn))) < 0) {
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
    if ((*self_p)->copy_lock_ready)
        pthread_rwlock_destroy(&(*self_p)->copy_lock);
    free(*self_p);
    *self_p = NULL;
}

/* The store a transaction belongs to (set by s_open as LMDB's user context). */
static brk_store_t *
s_store_of(MDB_txn *txn)
{
    return mdb_env_get_userctx(mdb_txn_env(txn));
}

int
brk_store_begin(brk_store_t *self, MDB_txn *parent, bool write, MDB_txn **txn_out)
{
    int rc = hv_lmdb_error(mdb_txn_begin(self->env, parent, write ? 0 : MDB_RDONLY, txn_out));
    if (rc == 0)
        atomic_fetch_add(&self->open_txns, 1);
    return rc;
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set the map size; the caller holds copy_lock exclusively and no
 * transaction is open. */
static int
s_set_map_size(brk_store_t *self, size_t size)
{
    MDB_envinfo info;
    int rc = hv_lmdb_error(mdb_env_set_mapsize(self->env, size));
    if (rc == 0 && (rc = hv_lmdb_error(mdb_env_info(self->env, &info))) == 0)
        self->map_size = info.me_mapsize;
    return rc;
}

/* A writer that fills the map while a copy reads must wait for the copy
 * (brk_store_grow). Growing once the map is 3/4 used, whenever no
 * transaction is open and no copy reads, makes that rare: the map only
 * reserves address space, the file grows as pages are written. */
static void
s_grow_early(brk_store_t *self)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc;
    if (self->copy)
        return;
    if ((rc = hv_lmdb_error(mdb_env_info(self->env, &info))) < 0
        || (rc = hv_lmdb_error(mdb_env_stat(self->env, &st))) < 0) {
        brk_log(BRK_LOG_WARN, "cannot tell how full the store map is: %s", strerror(-rc));
        return;
    }
    size_t used = ((size_t) info.me_last_pgno + 1) * st.ms_psize, from = self->map_size;
    if (used < from / 4 * 3)
        return;
    if (pthread_rwlock_trywrlock(&self->copy_lock) != 0)
        return;                  /* a copy is reading: later, or when the map is full */
    rc = s_set_map_size(self, from * 2);
    int urc = pthread_rwlock_unlock(&self->copy_lock);
    if (rc == 0 && urc != 0)
        rc = -urc;
    if (rc < 0)
        brk_log(BRK_LOG_WARN, "growing the store map from %zu MiB failed: %s", from >> 20, strerror(-rc));
    else
        brk_log(BRK_LOG_INFO, "store map over 3/4 used: grown from %zu to %zu MiB", from >> 20,
                self->map_size >> 20);
}

/* The transaction ended (committed or aborted): LMDB freed it either way. */
static int
s_txn_ended(brk_store_t *self)
{
    return atomic_fetch_sub(&self->open_txns, 1) - 1;
}

int
brk_store_commit(MDB_txn *txn)
{
    brk_store_t *self = s_store_of(txn);
    int rc = hv_lmdb_error(mdb_txn_commit(txn));
    if (s_txn_ended(self) == 0 && rc == 0)
        s_grow_early(self);
    return rc;
}

int
brk_store_commit_nosync(brk_store_t *self, MDB_txn *txn)
{
    int rc = hv_lmdb_error(mdb_env_set_flags(self->env, MDB_NOSYNC, 1));
    if (rc < 0) {
        brk_store_abort(txn);    /* as a failed commit: the transaction is gone */
        return rc;
    }
    rc = hv_lmdb_error(mdb_txn_commit(txn));
    /* Every later commit would skip its fsync if this stayed set: an ack
     * would no longer mean "on disk". */
    int frc = hv_lmdb_error(mdb_env_set_flags(self->env, MDB_NOSYNC, 0));
    int left = s_txn_ended(self);
    if (frc < 0)
        return frc;
    if (rc == 0 && left == 0)
        s_grow_early(self);
    return rc;
}

int
brk_store_sync(brk_store_t *self)
{
    return hv_lmdb_error(mdb_env_sync(self->env, 1));
}

void
brk_store_abort(MDB_txn *txn)
{
    if (!txn)
        return;
    brk_store_t *self = s_store_of(txn);
    mdb_txn_abort(txn);
    s_txn_ended(self);
}

int
brk_store_grow(brk_store_t *self)
{
    if (atomic_load(&self->open_txns) > 0)
        return -EBUSY;           /* LMDB would remap under the open transaction */
    int rc = pthread_rwlock_trywrlock(&self->copy_lock);
    if (rc == EBUSY) {
        brk_log(BRK_LOG_WARN, "store map full at %zu MiB: growing it waits for the backup copy in progress "
                "to finish (LMDB cannot remap the map under the copy's reader)", self->map_size >> 20);
        int64_t t0 = s_now_ms();
        if ((rc = pthread_rwlock_wrlock(&self->copy_lock)) == 0)
            brk_log(BRK_LOG_INFO, "the backup copy finished after %lld ms; growing the store map",
                    (long long) (s_now_ms() - t0));
    }
    if (rc != 0)
        return -rc;
    rc = s_set_map_size(self, self->map_size * 2);
    int urc = pthread_rwlock_unlock(&self->copy_lock);
    return rc < 0 ? rc : -urc;
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
    int rc = hv_lmdb_error(mdb_reader_check(self->env, &dead));
    return rc < 0 ? rc : dead;
}

int
brk_store_get(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key, size_t klen,
              const void **val_out, size_t *vlen_out)
{
    MDB_val k = { klen, (void *) key }, v;
    if (self->absent[db])
        return -ENOENT;
    int rc = hv_lmdb_error(mdb_get(txn, self->dbi[db], &k, &v));
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
    return hv_lmdb_error(mdb_put(txn, self->dbi[db], &k, &v, 0));
}

int
brk_store_del(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key, size_t klen)
{
    MDB_val k = { klen, (void *) key };
    return hv_lmdb_error(mdb_del(txn, self->dbi[db], &k, NULL));
}

int
brk_store_put_msg(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                  size_t klen, const ProtobufCMessage *msg)
{
    MDB_val k = { klen, (void *) key }, v;
    v.mv_size = protobuf_c_message_get_packed_size(msg);
    /* MDB_RESERVE: pack straight into the page, no intermediate buffer. */
    size_t want = v.mv_size;
    int rc = hv_lmdb_error(mdb_put(txn, self->dbi[db], &k, &v, MDB_RESERVE));
    /* a record shorter than its reservation would read back as garbage */
    if (rc == 0 && protobuf_c_message_pack(msg, v.mv_data) != want)
        rc = -EIO;
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
    int rc = hv_lmdb_error(mdb_cursor_open(txn, self->dbi[db], &cur));
    if (rc < 0)
        return rc;
    int op = plen ? MDB_SET_RANGE : MDB_FIRST;
    /* Only the cursor's -ENOENT means "no more records": a callback's
     * -ENOENT is an error like any other and must reach the caller. */
    while ((rc = hv_lmdb_error(mdb_cursor_get(cur, &k, &v, op))) == 0) {
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
    int rc = hv_lmdb_error(mdb_stat(txn, self->dbi[db], &st));
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
    /* Shared for the whole read: brk_store_grow waits until it is over. */
    int rc = pthread_rwlock_rdlock(&self->copy_lock);
    if (rc != 0)
        return -rc;
    rc = hv_lmdb_error(mdb_env_copyfd2(self->env, fd, MDB_CP_COMPACT));
    int urc = pthread_rwlock_unlock(&self->copy_lock);
    return rc < 0 ? rc : -urc;
}

int
brk_store_mark_copy(const char *path, const char *key, const void *val, size_t len)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    /* room for the record beside the compacted pages */
    size_t map = ((size_t) st.st_size + (4u << 20)) & ~(size_t) 0xfffff;
    int rc = hv_lmdb_error(mdb_env_create(&env));
    if (rc == 0)
        rc = hv_lmdb_error(mdb_env_set_maxdbs(env, 16));
    if (rc == 0)
        rc = hv_lmdb_error(mdb_env_set_mapsize(env, map));
    /* No lock file: nobody else opens a copy that is still being made. */
    if (rc == 0)
        rc = hv_lmdb_error(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK, 0600));
    if (rc == 0)
        rc = hv_lmdb_error(mdb_txn_begin(env, NULL, 0, &txn));
    if (rc == 0)
        rc = hv_lmdb_error(mdb_dbi_open(txn, s_db_names[BRK_DB_META], MDB_CREATE, &dbi));
    if (rc == 0) {
        MDB_val k = { strlen(key), (void *) key }, v = { len, (void *) val };
        rc = hv_lmdb_error(mdb_put(txn, dbi, &k, &v, 0));
    }
    if (rc == 0) {
        rc = hv_lmdb_error(mdb_txn_commit(txn));
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc;
}

int
brk_store_del_prefix(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix, size_t plen)
{
    MDB_cursor *cur;
    MDB_val k = { plen, (void *) prefix }, v;
    int n = 0, rc = hv_lmdb_error(mdb_cursor_open(txn, self->dbi[db], &cur));
    if (rc < 0)
        return rc;
    rc = hv_lmdb_error(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
    while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
        if ((rc = hv_lmdb_error(mdb_cursor_del(cur, 0))) < 0)
            goto out;            /* a failed delete is an error, never the end */
        n++;
        rc = hv_lmdb_error(mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT));
        /* Deleting the table's last record leaves the cursor with no
         * position, which LMDB reports as EINVAL: the end, too. */
        if (rc == -EINVAL)
            rc = -ENOENT;
    }
    if (rc == 0 || rc == -ENOENT)
        rc = n;
out:
    mdb_cursor_close(cur);
    return rc;
}
