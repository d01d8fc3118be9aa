/* SPDX-License-Identifier: MIT */
/* INI files with line numbers (see inifile.h). */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "inifile.h"
#include "privfile.h"

/* inih keeps its line buffer on the stack (Debian's build: ini_use_stack,
 * 200 bytes); this much below our frame covers it and the handler's
 * frames. */
#define STACK_WIPE 16384

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

typedef struct {
    const char *at;              /* what is left of the text */
    int *lineno;
} s_text_reader_t;

/* fgets over the text in memory, counting lines as s_reader does. */
static char *
s_text_reader(char *str, int num, void *stream)
{
    s_text_reader_t *r = stream;
    if (!*r->at || num < 2)
        return NULL;
    const char *nl = strchr(r->at, '\n');
    size_t n = nl ? (size_t) (nl - r->at) + 1 : strlen(r->at);
    if (n > (size_t) num - 1)
        n = (size_t) num - 1;
    memcpy(str, r->at, n);
    str[n] = '\0';
    r->at += n;
    (*r->lineno)++;
    return str;
}

int
hv_ini_parse_private(const char *path, size_t max, ini_handler handler, void *user,
                     int *lineno, mode_t *mode_out)
{
    char *text = NULL;
    size_t len;
    int rc = hv_privfile_read(path, max, &text, &len, mode_out);
    if (rc < 0)
        return rc;
    *lineno = 0;
    s_text_reader_t r = { text, lineno };
    rc = ini_parse_stream(s_text_reader, &r, handler, user);
    sodium_free(text);
    /* inih copied each line, secrets and all, into a buffer on its stack */
    sodium_stackzero(STACK_WIPE);
    return rc == -2 ? -ENOMEM : rc;
}

char *
hv_path_relative_to(const char *base, const char *name)
{
    if (name[0] == '/' || !strchr(base, '/'))
        return strdup(name);
    size_t dirlen = (size_t) (strrchr(base, '/') - base);
    char *out = malloc(dirlen + strlen(name) + 2);
    if (out)
        sprintf(out, "%.*s/%s", (int) dirlen, base, name);
    return out;
}
