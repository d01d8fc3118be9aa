/* SPDX-License-Identifier: MIT */
/* INI files with line numbers: libinih as packaged by Debian does not pass
 * the line number to handlers, so we count lines in the reader. */
#ifndef HV_INIFILE_H
#define HV_INIFILE_H

#include <ini.h>
#include <stddef.h>
#include <sys/types.h>

/* Parse path with handler; *lineno is the current line while the handler
 * runs (handlers read it through the pointer they were given in user).
 * Returns inih's result: 0, the first bad line, -1 if the file cannot be
 * opened (errno set). */
int hv_ini_parse(const char *path, ini_handler handler, void *user, int *lineno);

/* Parse a file that holds secrets (keys, addresses) the same way, but read
 * it with hv_privfile_read (at most max bytes, never through stdio), wipe
 * and free the text afterwards, and wipe the stack where inih copied each
 * line. mode_out (may be NULL) gets the mode of the file that was read.
 * Returns 0, the first bad line (> 0), or -errno as hv_privfile_read
 * (-EFBIG: larger than max; -ENOENT, -EACCES, ...). */
int hv_ini_parse_private(const char *path, size_t max, ini_handler handler, void *user,
                         int *lineno, mode_t *mode_out);

/* Resolve name relative to the directory of base (a file path).
 * Absolute names are copied. Caller owns the result; NULL if out of memory. */
char *hv_path_relative_to(const char *base, const char *name);

#endif
