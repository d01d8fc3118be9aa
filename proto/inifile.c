/* SPDX-License-Identifier: MIT */
/* INI files with line numbers (see inifile.h). */
#include <stdio.h>
#include "inifile.h"

typedef struct {
    FILE *f;
    int *lineno;
} s_reader_t;

static char *
s_reader(char *str, int num, void *stream)
{
    s_reader_t *r = stream;
    char *line = fgets(str, num, r->f);
    if (line)
        (*r->lineno)++;
    return line;
}

int
hv_ini_parse(const char *path, ini_handler handler, void *user, int *lineno)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    *lineno = 0;
    s_reader_t r = { f, lineno };
    int rc = ini_parse_stream(s_reader, &r, handler, user);
    fclose(f);
    return rc;
}
