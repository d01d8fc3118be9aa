/* SPDX-License-Identifier: MIT */
/* Haven client configuration (INI, read with libinih). */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clientcfg.h"
#include "inifile.h"

typedef struct {
    hv_clientcfg_t *cfg;
    const char *path;
    char *err;
    size_t errlen;
    int lineno;
    int failed;
} s_parse_t;

static int
s_int(s_parse_t *p, const char *name, const char *value, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < lo || v > hi) {
        snprintf(p->err, p->errlen, "%s line %d: %s must be a whole number from %d to %d",
                 p->path, p->lineno, name, lo, hi);
        p->failed = 1;
        return 0;
    }
    *out = (int) v;
    return 1;
}

/* A comma-separated list of paths, each taken from the file's directory. */
static int
s_paths(s_parse_t *p, const char *value, char **slot)
{
    GString *out = g_string_new(NULL);
    gchar **parts = g_strsplit(value, ",", -1);
    for (gchar **part = parts; *part; part++) {
        char *name = g_strstrip(*part), *full;
        if (!*name)
            continue;
        if (!(full = hv_path_relative_to(p->path, name)))
            break;
        g_string_append_printf(out, "%s%s", out->len ? "," : "", full);
        free(full);
    }
    g_strfreev(parts);
    free(*slot);
    *slot = strdup(out->str);
    g_string_free(out, TRUE);
    return *slot != NULL;
}

static int
s_handler(void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *p = user;
    hv_clientcfg_t *c = p->cfg;
    char **slot = NULL;
    int path = 0;
    int lineno = p->lineno;

    if (strcmp(section, "broker") == 0) {
        if (strcmp(name, "endpoint") == 0)
            slot = &c->endpoint;
        else if (strcmp(name, "public_key") == 0)
            slot = &c->broker_key, path = 1;
        else if (strcmp(name, "timeout_ms") == 0)
            return s_int(p, name, value, 100, 600000, &c->timeout_ms);
        else if (strcmp(name, "retries") == 0)
            return s_int(p, name, value, 1, 100, &c->retries);
        else if (strcmp(name, "admin_keys") == 0)
            return s_paths(p, value, &c->admin_keys);
    } else if (strcmp(section, "identity") == 0) {
        if (strcmp(name, "key") == 0)
            slot = &c->key, path = 1;
    } else if (strcmp(section, "agent") == 0) {
        if (strcmp(name, "provider") == 0)
            slot = &c->provider;
        else if (strcmp(name, "catalog") == 0)
            slot = &c->catalog, path = 1;
        else if (strcmp(name, "state_dir") == 0)
            slot = &c->state_dir, path = 1;
    }
    if (!slot) {
        snprintf(p->err, p->errlen, "%s line %d: unknown option '%s' in section [%s]",
                 p->path, lineno, name, section);
        p->failed = 1;
        return 0;
    }
    free(*slot);
    *slot = path ? hv_path_relative_to(p->path, value) : strdup(value);
    return *slot != NULL;
}

int
hv_clientcfg_load(const char *path, hv_clientcfg_t **cfg_out, char *err, size_t errlen)
{
    hv_clientcfg_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->timeout_ms = 3000;
    c->retries = 3;
    s_parse_t p = { c, path, err, errlen, 0, 0 };
    int rc = hv_ini_parse(path, s_handler, &p, &p.lineno);
    if (rc < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read config %s: %s", path, strerror(e));
        hv_clientcfg_destroy(&c);
        return -e;
    }
    if (rc != 0 || p.failed) {
        if (!p.failed)
            snprintf(err, errlen, "%s line %d: not valid INI", path, rc);
        hv_clientcfg_destroy(&c);
        return -EINVAL;
    }
    if (!c->endpoint || !c->broker_key || !c->key) {
        snprintf(err, errlen, "%s: needs [broker] endpoint and public_key and [identity] key", path);
        hv_clientcfg_destroy(&c);
        return -EINVAL;
    }
    *cfg_out = c;
    return 0;
}

void
hv_clientcfg_destroy(hv_clientcfg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hv_clientcfg_t *c = *self_p;
    free(c->endpoint);
    free(c->broker_key);
    free(c->admin_keys);
    free(c->key);
    free(c->provider);
    free(c->catalog);
    free(c->state_dir);
    free(c);
    *self_p = NULL;
}
