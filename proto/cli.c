/* SPDX-License-Identifier: MIT */
/* What the Haven command-line programs share. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "keys.h"
#include "names.h"

struct hv_cli {
    const char *prog;
    hv_clientcfg_t *cfg;
    hv_keys_t *keys;
    hv_conn_t *conn;
    bool delivered;
};

void
hv_cli_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
hv_cli_open(const char *prog, const char *path, hv_cli_t **cli_out)
{
    char err[512];
    hv_pubkey_t broker;
    hv_cli_t *self = calloc(1, sizeof *self);
    if (!self)
        return EX_OSERR;
    self->prog = prog;
    if (!path)
        path = getenv("HAVEN_CONFIG");
    if (!path || !*path) {
        hv_cli_error(prog, "no configuration: give --config FILE or set HAVEN_CONFIG");
        free(self);
        return EX_USAGE;
    }
    if (hv_clientcfg_load(path, &self->cfg, err, sizeof err) < 0
        || hv_keys_load(self->cfg->key, &self->keys, err, sizeof err) < 0
        || hv_pubkey_load(self->cfg->broker_key, &broker, err, sizeof err) < 0) {
        hv_cli_error(prog, "%s", err);
        hv_cli_destroy(&self);
        return EX_CONFIG;
    }
    self->conn = hv_conn_new(self->cfg->endpoint, broker.curve, self->keys,
                             self->cfg->timeout_ms, self->cfg->retries);
    if (!self->conn) {
        hv_cli_error(prog, "cannot set up a connection to %s", self->cfg->endpoint);
        hv_cli_destroy(&self);
        return EX_OSERR;
    }
    *cli_out = self;
    return EX_OK;
}

void
hv_cli_destroy(hv_cli_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hv_cli_t *self = *self_p;
    hv_conn_destroy(&self->conn);
    hv_keys_destroy(&self->keys);
    hv_clientcfg_destroy(&self->cfg);
    free(self);
    *self_p = NULL;
}

const hv_clientcfg_t *hv_cli_config(const hv_cli_t *self) { return self->cfg; }
const hv_keys_t *hv_cli_keys(const hv_cli_t *self) { return self->keys; }
bool hv_cli_delivered(const hv_cli_t *self) { return self->delivered; }

int
hv_cli_exit_for_status(int status)
{
    switch (status) {
    case HAVEN__STATUS__STATUS_OK: return EX_OK;
    case HAVEN__STATUS__STATUS_BAD_REQUEST: return EX_DATAERR;
    case HAVEN__STATUS__STATUS_NOT_FOUND: return EX_DATAERR;
    case HAVEN__STATUS__STATUS_FORBIDDEN: return EX_NOPERM;
    case HAVEN__STATUS__STATUS_CONFLICT:
    case HAVEN__STATUS__STATUS_EXPIRED:
    case HAVEN__STATUS__STATUS_LIMIT: return EX_TEMPFAIL;
    default: return EX_SOFTWARE;
    }
}

int
hv_cli_call(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out)
{
    Haven__Reply *r = NULL;
    int rc = hv_conn_call(self->conn, req, &r);
    self->delivered = rc == 0;
    if (rc == -EACCES) {
        hv_cli_error(self->prog, "the broker refused this key (%s): it is not registered "
                     "or has been revoked; ask your Haven administrator", self->cfg->key);
        return EX_NOPERM;
    }
    if (rc == -ETIMEDOUT) {
        hv_cli_error(self->prog, "the broker at %s did not answer after %d tries",
                     self->cfg->endpoint, self->cfg->retries);
        return EX_UNAVAILABLE;
    }
    if (rc < 0) {
        hv_cli_error(self->prog, "talking to the broker at %s failed: %s",
                     self->cfg->endpoint, strerror(-rc));
        return EX_UNAVAILABLE;
    }
    if (r->status != HAVEN__STATUS__STATUS_OK) {
        int code = hv_cli_exit_for_status(r->status);
        hv_cli_error(self->prog, "%s", r->error && *r->error ? r->error : hv_status_name(r->status));
        haven__reply__free_unpacked(r, NULL);
        return code;
    }
    *reply_out = r;
    return EX_OK;
}

int
hv_cli_keygen(const char *prog, int argc, char **argv)
{
    static const struct option opts[] = {
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: %s keygen --out PATH\n"
                   "Writes PATH.key (secret, mode 0600) and PATH.pub (public).\n", prog);
            return EX_OK;
        default: return EX_USAGE;
        }
    }
    if (!out || optind != argc) {
        hv_cli_error(prog, "usage: %s keygen --out PATH", prog);
        return EX_USAGE;
    }
    int rc = hv_keys_generate(out);
    if (rc == -EEXIST) {
        hv_cli_error(prog, "%s.key or %s.pub already exists; not overwriting a key", out, out);
        return EX_CANTCREAT;
    }
    if (rc < 0) {
        hv_cli_error(prog, "cannot write %s.key: %s", out, strerror(-rc));
        return EX_CANTCREAT;
    }
    printf("%s.key\n%s.pub\n", out, out);
    return EX_OK;
}
