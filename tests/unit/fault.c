/* SPDX-License-Identifier: MIT */
/* Failure injection for unit tests (see fault.h). */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fault.h"

/* Calls still to let through before the failure; -1: none armed. */
static atomic_int s_skip[FT__COUNT] = { [0 ... FT__COUNT - 1] = -1 };
static atomic_bool s_hit[FT__COUNT];
static int s_saved_stderr = -1;
static atomic_int s_fsync_gate = -1;

void
ft_fail(ft_call_t call, int skip)
{
    atomic_store(&s_hit[call], false);
    atomic_store(&s_skip[call], skip < 0 ? -1 : skip);
}

bool
ft_failed(ft_call_t call)
{
    return atomic_load(&s_hit[call]);
}

void
ft_reset(void)
{
    for (int i = 0; i < FT__COUNT; i++)
        ft_fail((ft_call_t) i, -1);
}

/* True when this call is the one to fail. */
static bool
s_fails(ft_call_t call)
{
    int left = atomic_load(&s_skip[call]);
    while (left >= 0) {
        if (atomic_compare_exchange_weak(&s_skip[call], &left, left - 1)) {
            if (left > 0)
                return false;
            atomic_store(&s_hit[call], true);
            return true;
        }
    }
    return false;
}

void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
int __real_mdb_env_set_maxdbs(MDB_env *env, MDB_dbi dbs);
int __real_mdb_env_set_maxreaders(MDB_env *env, unsigned int readers);
int __real_mdb_env_info(MDB_env *env, MDB_envinfo *stat);
int __real_mdb_env_set_flags(MDB_env *env, unsigned int flags, int onoff);
int __real_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags);
int __real_mdb_reader_check(MDB_env *env, int *dead);
int __real_fsync(int fd);

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
int __wrap_mdb_env_set_maxdbs(MDB_env *env, MDB_dbi dbs);
int __wrap_mdb_env_set_maxreaders(MDB_env *env, unsigned int readers);
int __wrap_mdb_env_info(MDB_env *env, MDB_envinfo *stat);
int __wrap_mdb_env_set_flags(MDB_env *env, unsigned int flags, int onoff);
int __wrap_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags);
int __wrap_mdb_reader_check(MDB_env *env, int *dead);
int __wrap_fsync(int fd);

void *
__wrap_calloc(size_t n, size_t size)
{
    if (s_fails(FT_CALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
    if (s_fails(FT_REALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, size);
}

char *
__wrap_strdup(const char *s)
{
    if (s_fails(FT_STRDUP)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

int
__wrap_mdb_env_set_maxdbs(MDB_env *env, MDB_dbi dbs)
{
    return s_fails(FT_MDB_ENV_SET_MAXDBS) ? EINVAL : __real_mdb_env_set_maxdbs(env, dbs);
}

int
__wrap_mdb_env_set_maxreaders(MDB_env *env, unsigned int readers)
{
    return s_fails(FT_MDB_ENV_SET_MAXREADERS) ? EINVAL : __real_mdb_env_set_maxreaders(env, readers);
}

int
__wrap_mdb_env_info(MDB_env *env, MDB_envinfo *stat)
{
    return s_fails(FT_MDB_ENV_INFO) ? EINVAL : __real_mdb_env_info(env, stat);
}

int
__wrap_mdb_env_set_flags(MDB_env *env, unsigned int flags, int onoff)
{
    return s_fails(FT_MDB_ENV_SET_FLAGS) ? EINVAL : __real_mdb_env_set_flags(env, flags, onoff);
}

int
__wrap_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags)
{
    return s_fails(FT_MDB_CURSOR_DEL) ? EINVAL : __real_mdb_cursor_del(cursor, flags);
}

int
__wrap_mdb_reader_check(MDB_env *env, int *dead)
{
    return s_fails(FT_MDB_READER_CHECK) ? EINVAL : __real_mdb_reader_check(env, dead);
}

void
ft_stall_fsync(int fd)
{
    atomic_store(&s_fsync_gate, fd);
}

int
__wrap_fsync(int fd)
{
    int gate = atomic_exchange(&s_fsync_gate, -1);
    char c;
    if (gate >= 0 && read(gate, &c, 1) != 1)
        return -1;               /* errno from read: the test went wrong */
    return __real_fsync(fd);
}

int
ft_stderr_capture(void)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    s_saved_stderr = dup(2);
    if (s_saved_stderr < 0 || dup2(fds[1], 2) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    close(fds[1]);
    return fds[0];
}

void
ft_stderr_restore(int fd, char *buf, size_t len)
{
    size_t got = 0;
    if (s_saved_stderr >= 0) {
        dup2(s_saved_stderr, 2);   /* the pipe's last writer goes: reads end */
        close(s_saved_stderr);
        s_saved_stderr = -1;
    }
    ssize_t n;
    while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t) n;
    buf[got] = '\0';
    close(fd);
}
