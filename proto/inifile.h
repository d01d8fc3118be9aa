/* SPDX-License-Identifier: MIT */
/* INI files with line numbers: libinih as packaged by Debian does not pass
 * the line number to handlers, so we count lines in the reader. */
#ifndef HV_INIFILE_H
#define HV_INIFILE_H

#include <ini.h>

/* Parse path with handler; *lineno is the current line while the handler
 * runs (handlers read it through the pointer they were given in user).
 * Returns inih's result: 0, the first bad line, -1 if the file cannot be
 * opened (errno set). */
int hv_ini_parse(const char *path, ini_handler handler, void *user, int *lineno);

#endif
