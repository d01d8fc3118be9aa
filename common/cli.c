/* SPDX-License-Identifier: MIT */
/* What the Haven command-line programs share. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cert.h"
#include "cli.h"
#include "keys.h"
#include "../proto/names.h"
#include "privfile.h"
#include "../proto/wire.h"

struct hv_cli {
    const char *prog;
    hv_clientcfg_t *cfg;
    hv_trust_t trust;            /* [broker] admin_keys */
    bool trusted;
    hv_keys_t *keys;
    hv_conn_t *conn;
    bool delivered;
    int last_status;             /* of the last reply, -1 if none came */
    char last_error[512];        /* its error text */
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
    self->last_status = -1;
    if (!path)
        path = getenv("HAVEN_CONFIG");
    if (!path || !*path) {
        hv_cli_error(prog, "no configuration: give --config FILE or set HAVEN_CONFIG");
        free(self);
        return EX_USAGE;
    }
    if (hv_clientcfg_load(path, &self->cfg, err, sizeof err) < 0
        || hv_keys_load(self->cfg->key, &self->keys, err, sizeof err) < 0
        || hv_pubkey_load(self->cfg->broker_key, &broker, err, sizeof err) < 0
        || (self->cfg->admin_keys && hv_trust_load(self->cfg->admin_keys, &self->trust, err, sizeof err) < 0)) {
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
    self->trusted = self->cfg->admin_keys != NULL;
    *cli_out = self;
    return EX_OK;
}

const hv_trust_t *
hv_cli_trust(hv_cli_t *self)
{
    if (!self->trusted)
        hv_cli_error(self->prog, "the configuration has no [broker] admin_keys: name your administrators' "
                     "public key files there, so this program knows whose certificates to trust before it "
                     "seals or opens anything");
    return self->trusted ? &self->trust : NULL;
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
int hv_cli_last_status(const hv_cli_t *self) { return self->last_status; }
const char *hv_cli_last_error(const hv_cli_t *self) { return self->last_error; }
hv_conn_t *hv_cli_conn(hv_cli_t *self) { return self->conn; }




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

static int
s_call(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out, bool quiet)
{
    Haven__Reply *r = NULL;
    int rc = hv_conn_call(self->conn, req, &r);
    self->delivered = rc == 0;
    self->last_status = rc == 0 ? (int) r->status : -1;
    snprintf(self->last_error, sizeof self->last_error, "%s",
             rc == 0 && r->error && *r->error ? r->error
             : rc == 0 && r->status != HAVEN__STATUS__STATUS_OK ? hv_status_name(r->status) : "");
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
        if (!quiet)
            hv_cli_error(self->prog, "%s", self->last_error);
        haven__reply__free_unpacked(r, NULL);
        return code;
    }
    *reply_out = r;
    return EX_OK;
}

int
hv_cli_call(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out)
{
    return s_call(self, req, reply_out, false);
}

int
hv_cli_call_quiet(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out)
{
    return s_call(self, req, reply_out, true);
}

int
hv_cli_call_for(hv_cli_t *self, Haven__Request *req, int body_case, Haven__Reply **reply_out)
{
    char err[256];
    Haven__Reply *r = NULL;
    if (hv_request_validate(req, err, sizeof err) < 0) {
        hv_cli_error(self->prog, "%s", err);
        return EX_USAGE;
    }
    int rc = hv_cli_call(self, req, &r);
    if (rc != EX_OK)
        return rc;
    if ((int) r->body_case != body_case) {
        /* a broker that answers OK with the wrong thing is not to be believed */
        hv_cli_error(self->prog, "the broker's answer is not what was asked for; nothing was done with it");
        haven__reply__free_unpacked(r, NULL);
        return EX_PROTOCOL;
    }
    *reply_out = r;
    return EX_OK;
}

int
hv_cli_request(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out)
{
    char err[256];
    if (hv_request_validate(req, err, sizeof err) < 0) {
        hv_cli_error(self->prog, "%s", err);
        return EX_USAGE;
    }
    return hv_cli_call(self, req, reply_out);
}

void
hv_json_print(json_t *doc)
{
    json_dumpf(doc, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(doc);
}

void
hv_format_age(int64_t s, char *buf, size_t len)
{
    if (s < 0)
        snprintf(buf, len, "never");
    else if (s < 120)
        snprintf(buf, len, "%llds ago", (long long) s);
    else if (s < 7200)
        snprintf(buf, len, "%lldm ago", (long long) s / 60);
    else if (s < 172800)
        snprintf(buf, len, "%lldh ago", (long long) s / 3600);
    else
        snprintf(buf, len, "%lldd ago", (long long) s / 86400);
}

void
hv_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t) t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
hv_cli_keygen(const char *prog, int argc, char **argv)
{
    static const struct option opts[] = {
        { "out", required_argument, NULL, 'o' },
        { "public-of", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out = NULL, *public_of = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'p': public_of = optarg; break;
        case 'h':
            printf("usage: %s keygen --out PATH\n"
                   "       %s keygen --public-of PATH.key\n"
                   "Writes PATH.key (secret, mode 0600) and PATH.pub (public). With --public-of,\n"
                   "writes PATH.pub again for an existing key (adding its signing key).\n", prog, prog);
            return EX_OK;
        default: return EX_USAGE;
        }
    }
    if (public_of && !out && optind == argc) {
        char err[512], pub[4096];
        hv_keys_t *keys = NULL;
        size_t len = strlen(public_of);
        if (len < 5 || strcmp(public_of + len - 4, ".key") != 0
            || snprintf(pub, sizeof pub, "%.*s.pub", (int) (len - 4), public_of) >= (int) sizeof pub) {
            hv_cli_error(prog, "--public-of takes a key file named PATH.key");
            return EX_USAGE;
        }
        if (hv_keys_load(public_of, &keys, err, sizeof err) < 0) {
            hv_cli_error(prog, "%s", err);
            return EX_DATAERR;
        }
        int rc = hv_keys_write_public(keys, pub);
        hv_keys_destroy(&keys);
        if (rc < 0) {
            hv_cli_error(prog, "cannot write %s: %s", pub, strerror(-rc));
            return EX_CANTCREAT;
        }
        printf("%s\n", pub);
        return EX_OK;
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
