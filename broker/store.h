/* SPDX-License-Identifier: MIT */
/* The broker's LMDB store: the only place Haven's state is kept.
 * One writer (the broker's event loop); values are protobuf records. */
#ifndef BRK_STORE_H
#define BRK_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct brk_store brk_store_t;

typedef enum {
    BRK_DB_META,          /* "schema", "inbox-seq" */
    BRK_DB_PRINCIPALS,    /* 32-byte curve key -> Principal */
    BRK_DB_NAMES,         /* principal name -> 32-byte curve key */
    BRK_DB_PROVIDERS,     /* provider id -> Provider */
    BRK_DB_UNITS,         /* provider id NUL unit name -> Unit */
    BRK_DB_HOLDS,         /* hold id -> Hold */
    BRK_DB_DEADLINES,     /* be64 time, kind, id -> "" : the timers' queue */
    BRK_DB_AUDIT,         /* be64 seq -> AuditRecord, hash-chained */
    BRK_DB_WATCHES,       /* watch id -> Watch */
    BRK_DB_INBOX,         /* 32-byte curve key, be64 seq -> Alert */
    BRK_DB_REPLIES,       /* 32-byte curve key, be64 request id -> a write's reply (replay.h) */
    BRK_DB_REPLY_TIMES,   /* be64 time, curve key, request id -> "" (replay.h) */
    BRK_DB__COUNT
} brk_db_t;

/* Open (creating if needed) the store in dir with an initial map size.
 * Returns 0 or -errno. Caller owns *store_out. */
int brk_store_open(const char *dir, size_t map_size, brk_store_t **store_out);

/* Open a copy of a store read-only, without its lock file (for checking a
 * backup; not for a store a broker is writing). path is a directory
 * holding data.mdb, or such a file itself (a backup). */
int brk_store_open_copy(const char *path, brk_store_t **store_out);
void brk_store_destroy(brk_store_t **self_p);

/* Transactions. parent may be NULL; a child of a write transaction is a
 * nested write transaction, committed or aborted on its own. Every
 * transaction must end through brk_store_commit or brk_store_abort: the
 * store counts the open ones (the map may grow only when there are none). */
int brk_store_begin(brk_store_t *self, MDB_txn *parent, bool write, MDB_txn **txn_out);
/* Commit; the transaction is gone whatever the result (-ENOSPC: map
 * full). When this leaves no transaction open, no copy is reading and the
 * map is more than 3/4 used, the map grows here (logged), so a writer
 * seldom meets a full map while a backup copies. */
int brk_store_commit(MDB_txn *txn);

/* Commit without waiting for the disk: the pages are written (a crash of
 * the process loses nothing) but not fsync'd until the next synced commit
 * or brk_store_sync. Only for records whose loss in a power cut is
 * acceptable (the audit of reads). */
/* Errors as brk_store_commit; also -errno when LMDB refuses to set the
 * no-sync flag (nothing committed) or to clear it again (the transaction
 * committed, but later commits might not reach the disk: the caller must
 * not trust them). */
int brk_store_commit_nosync(brk_store_t *self, MDB_txn *txn);
int brk_store_sync(brk_store_t *self);
void brk_store_abort(MDB_txn *txn);

/* Double the map size. Call only with no transaction open (LMDB's rule):
 * -EBUSY if one is. While a hot copy (brk_store_copy_fd) is reading, this
 * waits for it to finish, and logs that it waits: LMDB remaps the map, and
 * the copy's reader would read unmapped memory. Returns 0 or -errno. */
int brk_store_grow(brk_store_t *self);
size_t brk_store_map_size(const brk_store_t *self);

/* Clear reader slots left by dead processes; returns how many, or -errno. */
int brk_store_reader_check(brk_store_t *self);

/* Raw access. get's value points into the map: valid until txn ends. */
int brk_store_get(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                  size_t klen, const void **val_out, size_t *vlen_out);
int brk_store_put(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                  size_t klen, const void *val, size_t vlen);
int brk_store_del(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key, size_t klen);

/* Protobuf records. get_msg returns -ENOENT if absent, -EBADMSG if the
 * record does not decode; caller frees *msg_out with
 * protobuf_c_message_free_unpacked(msg, NULL). */
int brk_store_put_msg(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                      size_t klen, const ProtobufCMessage *msg);
int brk_store_get_msg(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *key,
                      size_t klen, const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **msg_out);

/* Call fn for every record whose key starts with prefix (plen 0: all), in
 * key order. fn returns 0 to go on, 1 to stop, or -errno to fail. */
typedef int (*brk_store_each_fn)(void *arg, const void *key, size_t klen,
                                 const void *val, size_t vlen);
int brk_store_each(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix,
                   size_t plen, brk_store_each_fn fn, void *arg);

/* Delete every record whose key starts with prefix. Returns how many, or
 * -errno. */
int brk_store_del_prefix(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix, size_t plen);

/* Count records in a table. */
int brk_store_count(brk_store_t *self, MDB_txn *txn, brk_db_t db, size_t *count_out);
/* Count the records whose key starts with prefix. */
int brk_store_count_prefix(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix, size_t plen,
                           size_t *count_out);

/* Key of a unit: provider id, NUL, unit name. Returns its length, or
 * -ENAMETOOLONG if buf is too small. */
int brk_unit_key(const char *provider, const char *unit, char *buf, size_t len);

/* A consistent, compacted hot copy of the store into an open file (a
 * data.mdb). Safe from another thread while the store serves: LMDB copies
 * within a read transaction, and the map does not grow until the copy is
 * over (brk_store_grow waits for it). Returns 0 or -errno. */
int brk_store_copy_fd(brk_store_t *self, int fd);


/* Put one meta record into a finished copy of a store (a data.mdb file at
 * path that no one else has open): how a backup's copy is marked as one,
 * without the live store ever carrying the mark. Returns 0 or -errno. */
int brk_store_mark_copy(const char *path, const char *key, const void *val, size_t len);

/* Decode every record under prefix into a malloc'd array of messages.
 * Free with brk_store_list_free. Returns 0 or -errno. */
typedef struct {
    ProtobufCMessage **items;
    size_t n, cap;
    const ProtobufCMessageDescriptor *desc;
} brk_store_list_t;
int brk_store_list(brk_store_t *self, MDB_txn *txn, brk_db_t db, const void *prefix,
                   size_t plen, const ProtobufCMessageDescriptor *desc, brk_store_list_t *out);
void brk_store_list_free(brk_store_list_t *list);

/* Append a message the list then owns. Returns 0 or -ENOMEM (the message
 * is freed then too). */
int brk_store_list_add(brk_store_list_t *list, ProtobufCMessage *msg);

#endif
