/* SPDX-License-Identifier: MIT */
/* Small private files read without stdio (see privfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privfile.h"

/* Read until len bytes or end of file. Returns the count or -errno. */
static ssize_t
s_read_full(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = read(fd, buf + n, len - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t) r;
    }
    return (ssize_t) n;
}

int
hv_privfile_read(const char *path, size_t max, char **text_out, size_t *len_out, mode_t *mode_out)
{
    struct stat st;
    char *buf = NULL, probe;
    int rc = 0;

    if (sodium_init() < 0)
        return -EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    /* A regular file says how big it is: refuse a large one unread, and
     * lock no more memory than it needs. A pipe (--note-file <(...)) does
     * not, so it gets the whole allowance. */
    size_t cap = max;
    if (S_ISREG(st.st_mode)) {
        if ((uintmax_t) st.st_size > max) {
            rc = -EFBIG;
            goto out;
        }
        cap = (size_t) st.st_size;
    }
    if (!(buf = sodium_malloc(cap + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    ssize_t n = s_read_full(fd, buf, cap);
    if (n < 0) {
        rc = (int) n;
        goto out;
    }
    /* Anything past cap is either over the limit or a file being written
     * as we read it; either way the text we have is not the whole file. */
    ssize_t more = (size_t) n == cap ? s_read_full(fd, &probe, 1) : 0;
    sodium_memzero(&probe, sizeof probe);
    if (more < 0) {
        rc = (int) more;
        goto out;
    }
    if (more > 0) {
        rc = cap == max ? -EFBIG : -EAGAIN;
        goto out;
    }
    buf[n] = '\0';
    *text_out = buf;
    *len_out = (size_t) n;
    if (mode_out)
        *mode_out = st.st_mode;
    buf = NULL;
out:
    sodium_free(buf);            /* wipes; accepts NULL */
    close(fd);
    return rc;
}

char *
hv_read_file(const char *path, size_t max, size_t *len_out, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = hv_privfile_read(path, max, &text, len_out, NULL);
    if (rc == -EFBIG)
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
    else if (rc == -EAGAIN)
        snprintf(err, errlen, "%s changed while it was read; try again", path);
    else if (rc < 0)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
    return rc < 0 ? NULL : text;
}
