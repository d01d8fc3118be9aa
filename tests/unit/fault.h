/* SPDX-License-Identifier: MIT */
/* Failure injection for unit tests: the calls below are wrapped at link
 * time (-Wl,--wrap=NAME, fault_dep in broker/meson.build) so that a test
 * can make one of them fail and walk an error path a healthy machine never
 * takes; and the broker's log (stderr) captured, to check what it said. */
#ifndef FT_FAULT_H
#define FT_FAULT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    FT_CALLOC, FT_REALLOC, FT_STRDUP,          /* fail with NULL, errno ENOMEM */
    FT_MDB_ENV_SET_MAXDBS, FT_MDB_ENV_SET_MAXREADERS, FT_MDB_ENV_INFO,
    FT_MDB_ENV_SET_FLAGS, FT_MDB_CURSOR_DEL, FT_MDB_READER_CHECK,   /* fail with EINVAL */
    FT__COUNT
} ft_call_t;

/* Let skip calls of call through, then fail the next one (only that one);
 * skip < 0 disarms. */
void ft_fail(ft_call_t call, int skip);
/* Whether the armed failure has happened. */
bool ft_failed(ft_call_t call);
/* Disarm everything. */
void ft_reset(void);

/* Make the next fsync wait until a byte can be read from fd (a pipe the
 * test writes to when it is ready), then go ahead; -1 disarms. */
void ft_stall_fsync(int fd);

/* Send stderr into a pipe; returns its read end (test-sized output only:
 * a full pipe would block the writer). */
int ft_stderr_capture(void);
/* Put stderr back and close fd, leaving what was not yet read from it in
 * buf (NUL-terminated). */
void ft_stderr_restore(int fd, char *buf, size_t len);

#endif
