/* SPDX-License-Identifier: MIT */
/* Hot backups: a compacted copy of the store made on a thread while the
 * broker serves, then handed to the administrator in chunks. One at a time. */
#ifndef BRK_BACKUP_H
#define BRK_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store.h"

typedef struct brk_backup brk_backup_t;

/* The meta record a backup's copy carries (be64 unix time of the copy):
 * a store that has it at start was restored from a backup. */
#define BRK_BACKUP_MARK "backup-taken"

/* Backups are written in dir (the data directory); leftovers from a
 * previous run are removed. Caller owns the result; NULL if out of memory. */
brk_backup_t *brk_backup_new(brk_store_t *store, const char *dir);
void brk_backup_destroy(brk_backup_t **self_p);   /* waits for a running copy */

/* A finished copy nobody has asked for (fetched a chunk of, or polled)
 * for this long is discarded, and its file removed, when a new backup
 * starts: a fetcher that went away must not block every later backup. */
#define BRK_BACKUP_ABANDONED_MS (60 * 1000)

/* Start a copy; its id (16 hex digits) in id_out. -EBUSY if one is being
 * made, or is finished and was asked for within BRK_BACKUP_ABANDONED_MS;
 * an older finished one is discarded (logged). Other -errno: the copy's
 * file cannot be made or its thread started. */
int brk_backup_start(brk_backup_t *self, char id_out[17]);

/* True while a copy's thread is running (from brk_backup_start until the
 * copy is written), false before, after, and while it waits to be fetched. */
bool brk_backup_copying(const brk_backup_t *self);

/* The clock that times abandoned copies: monotonic milliseconds (default
 * CLOCK_MONOTONIC; NULL restores it). Called on the caller's thread only.
 * For tests. */
typedef int64_t (*brk_backup_clock_fn)(void *arg);
void brk_backup_set_clock(brk_backup_t *self, brk_backup_clock_fn now_ms, void *arg);

/* Read up to len bytes at offset. Returns bytes read (0 at the end, when
 * the file is removed), -EAGAIN while the copy is being made, -ENOENT for
 * an unknown id (or one discarded as abandoned), or -errno if the copy
 * failed. *size_out: the whole size. Any call for the id counts as asking
 * for it (see BRK_BACKUP_ABANDONED_MS). */
ssize_t brk_backup_read(brk_backup_t *self, const char *id, uint64_t offset, void *buf,
                        size_t len, uint64_t *size_out);

#endif
