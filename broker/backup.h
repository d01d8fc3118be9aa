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

/* Backups are written in dir (the data directory); leftovers from a
 * previous run are removed. Caller owns the result; NULL if out of memory. */
brk_backup_t *brk_backup_new(brk_store_t *store, const char *dir);
void brk_backup_destroy(brk_backup_t **self_p);   /* waits for a running copy */

/* Start a copy; its id (16 hex digits) in id_out. -EBUSY if one is running
 * or waiting to be fetched. */
int brk_backup_start(brk_backup_t *self, char id_out[17]);

/* Read up to len bytes at offset. Returns bytes read (0 at the end, when
 * the file is removed), -EAGAIN while the copy is being made, -ENOENT for
 * an unknown id, or -errno if the copy failed. *size_out: the whole size. */
ssize_t brk_backup_read(brk_backup_t *self, const char *id, uint64_t offset, void *buf,
                        size_t len, uint64_t *size_out);

#endif
