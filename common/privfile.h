/* SPDX-License-Identifier: MIT */
/* Small private files (secret keys, referral notes, catalogs with
 * addresses) read whole with read(2) into sodium_malloc'd memory, so that
 * no copy of what they hold lingers in a stdio buffer after it is wiped. */
#ifndef HV_PRIVFILE_H
#define HV_PRIVFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Read path, at most max bytes, into locked memory, NUL-terminated.
 * mode_out (may be NULL) gets the mode of the file that was read (from the
 * descriptor, so it is the same file). Returns 0 or -errno: -EFBIG if the
 * file is larger than max, -EAGAIN if it grew while it was read, -ENOMEM,
 * or what open/read said (-ENOENT, -EACCES, ...). Outputs are untouched on
 * failure. Caller owns *text_out: release it with sodium_free (which
 * wipes it). */
int hv_privfile_read(const char *path, size_t max, char **text_out, size_t *len_out,
                     mode_t *mode_out);

/* Read a whole small file (at most max bytes) that may hold a survivor's
 * details, with read(2) into locked memory (no stdio copy). Returns the
 * NUL-terminated text, to be released with sodium_free (which wipes it),
 * or NULL with err set. */
char *hv_read_file(const char *path, size_t max, size_t *len_out, char *err, size_t errlen);

#endif
