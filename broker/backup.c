/* SPDX-License-Identifier: MIT */
/* Hot backups (see backup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "backup.h"
#include "log.h"

struct brk_backup {
    brk_store_t *store;
    char dir[4096];
    char path[4200];
    char id[17];
    int fd;
    pthread_t thread;
    bool running;                /* a thread exists to join */
    atomic_int done;
    int rc;
    uint64_t size;
    brk_backup_clock_fn now_ms;  /* monotonic milliseconds */
    void *now_arg;
    int64_t touched_ms;          /* when it was started or last asked for */
};

static int64_t
s_monotonic_ms(void *arg)
{
    (void) arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_remove_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4200];
    if (!d)
        return;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "backup-", 7) == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

brk_backup_t *
brk_backup_new(brk_store_t *store, const char *dir)
{
    brk_backup_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->fd = -1;
    self->now_ms = s_monotonic_ms;
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    s_remove_leftovers(dir);
    return self;
}

static void
s_clear(brk_backup_t *self)
{
    if (self->running) {
        pthread_join(self->thread, NULL);
        self->running = false;
    }
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    /* the copy holds every record: say so if it stays on the disk */
    if (self->id[0] && unlink(self->path) < 0 && errno != ENOENT)
        brk_log(BRK_LOG_ERROR, "cannot remove the copy %s: %s", self->path, strerror(errno));
    self->id[0] = '\0';
    atomic_store(&self->done, 0);
}

void
brk_backup_destroy(brk_backup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_clear(*self_p);
    free(*self_p);
    *self_p = NULL;
}

static void *
s_copy(void *arg)
{
    brk_backup_t *self = arg;
    int rc = brk_store_copy_fd(self->store, self->fd);
    struct stat st;
    /* The copy says it is one: a broker started on it knows it was
     * restored, and may be behind every agent (design.md section 7). Only
     * the copy carries the mark, so a crash of the live broker is never
     * taken for a restore. */
    uint8_t taken[8];
    uint64_t now = (uint64_t) time(NULL);
    for (int i = 7; i >= 0; i--, now >>= 8)
        taken[i] = (uint8_t) now;
    if (rc == 0)
        rc = brk_store_mark_copy(self->path, BRK_BACKUP_MARK, taken, sizeof taken);
    if (rc == 0 && fsync(self->fd) < 0)
        rc = -errno;
    /* without its size the copy would read as empty, and be "fetched" */
    if (rc == 0 && fstat(self->fd, &st) < 0)
        rc = -errno;
    if (rc == 0)
        self->size = (uint64_t) st.st_size;
    self->rc = rc;
    atomic_store(&self->done, 1);
    return NULL;
}

void
brk_backup_set_clock(brk_backup_t *self, brk_backup_clock_fn now_ms, void *arg)
{
    self->now_ms = now_ms ? now_ms : s_monotonic_ms;
    self->now_arg = arg;
}

bool
brk_backup_copying(const brk_backup_t *self)
{
    return self->running && !atomic_load(&self->done);
}

int
brk_backup_start(brk_backup_t *self, char id_out[17])
{
    uint8_t raw[8];
    int64_t now = self->now_ms(self->now_arg);
    if (self->id[0]) {
        /* One at a time, but a finished copy whose fetcher went away must
         * not block every later backup: after a minute unasked it goes. A
         * copy still being made, or being fetched, stays. */
        int64_t idle = now - self->touched_ms;
        if (brk_backup_copying(self) || idle < BRK_BACKUP_ABANDONED_MS)
            return -EBUSY;
        if (self->rc < 0)
            brk_log(BRK_LOG_WARN, "backup %s failed (%s) and nobody asked for it for %lld s: discarded",
                    self->id, strerror(-self->rc), (long long) (idle / 1000));
        else
            brk_log(BRK_LOG_WARN, "backup %s discarded: finished but not fetched for %lld s", self->id,
                    (long long) (idle / 1000));
        s_clear(self);
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(self->id, sizeof self->id, raw, sizeof raw);
    snprintf(self->path, sizeof self->path, "%s/backup-%s.mdb", self->dir, self->id);
    self->fd = open(self->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        int rc = -errno;
        self->id[0] = '\0';
        return rc;
    }
    self->rc = 0;
    self->size = 0;
    self->touched_ms = now;
    if (pthread_create(&self->thread, NULL, s_copy, self) != 0) {
        s_clear(self);
        return -EAGAIN;
    }
    self->running = true;
    memcpy(id_out, self->id, 17);
    brk_log(BRK_LOG_INFO, "backup %s started", self->id);
    return 0;
}

ssize_t
brk_backup_read(brk_backup_t *self, const char *id, uint64_t offset, void *buf, size_t len,
                uint64_t *size_out)
{
    if (!self->id[0] || strcmp(id, self->id) != 0)
        return -ENOENT;
    self->touched_ms = self->now_ms(self->now_arg);
    if (!atomic_load(&self->done))
        return -EAGAIN;
    if (self->running) {
        pthread_join(self->thread, NULL);
        self->running = false;
    }
    if (self->rc < 0) {
        int rc = self->rc;
        brk_log(BRK_LOG_ERROR, "backup %s failed: %s", self->id, strerror(-rc));
        s_clear(self);
        return rc;
    }
    *size_out = self->size;
    if (offset >= self->size) {
        brk_log(BRK_LOG_INFO, "backup %s fetched (%llu bytes)", self->id, (unsigned long long) self->size);
        s_clear(self);           /* fetched: the copy leaves the broker's disk */
        return 0;
    }
    ssize_t n = pread(self->fd, buf, len, (off_t) offset);
    return n < 0 ? -errno : n;
}
