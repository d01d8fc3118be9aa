/* SPDX-License-Identifier: MIT */
/* The broker's configuration (INI via libinih). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/inifile.h"
#include "../proto/names.h"
#include "config.h"
#include "log.h"

typedef struct {
    brk_config_t *cfg;
    const char *path;
    int lineno;
    char *err;
    size_t errlen;
    int failed;
} s_parse_t;

typedef struct {
    const char *section, *name;
    size_t offset;
    int64_t lo, hi;
    int kind;                    /* 0 number, 1 duration, 2 path, 3 string, 4 log level, 5 detail */
} s_option_t;

#define OPT(sec, name, field, lo, hi, kind) \
    { sec, #name, offsetof(brk_config_t, field), lo, hi, kind }

static const s_option_t s_options[] = {
    OPT("broker", bind, bind, 0, 0, 3),
    OPT("broker", data_dir, data_dir, 0, 0, 2),
    OPT("broker", districts, districts, 0, 0, 2),
    OPT("broker", log_level, log_level, 0, 0, 4),
    OPT("limits", max_message_bytes, max_message_bytes, 4096, 64 << 20, 0),
    OPT("limits", max_units_per_catalog, max_units_per_catalog, 1, 100000, 0),
    OPT("limits", max_results, max_results, 1, 1000, 0),
    OPT("limits", batch_max, batch_max, 1, 10000, 0),
    OPT("limits", map_size_mb, map_size_mb, 1, 1 << 20, 0),
    OPT("limits", max_holds_per_principal, max_holds, 1, 1000, 0),
    OPT("limits", searches_per_minute, searches_per_minute, 1, 1000000, 0),
    OPT("limits", max_watches_per_principal, max_watches, 1, 1000, 0),
    OPT("limits", writes_per_minute, writes_per_minute, 1, 1000000, 0),
    OPT("limits", holds_per_hour, holds_per_hour, 1, 10000, 0),
    OPT("limits", connections_per_key, connections_per_key, 1, 1000, 0),
    OPT("limits", requests_in_flight, requests_in_flight, 1, 10000, 0),
    OPT("limits", batch_memory_mb, batch_memory_mb, 1, 4096, 0),
    OPT("limits", queued_replies, queued_replies, 1, 100000, 0),
    OPT("limits", inbox_max, inbox_max, 1, 100000, 0),
    OPT("limits", queued_reply_mb, queued_reply_mb, 1, 4096, 0),
    OPT("alerts", hook, hook, 0, 0, 2),
    OPT("alerts", hook_detail, hook_detail_full, 0, 0, 5),
    OPT("alerts", coalesce, alert_coalesce_s, 0, 86400, 1),
    OPT("timers", silent_connection, silent_connection_s, 1, 3600, 1),
    OPT("timers", offer_ttl, offer_ttl_s, 1, 86400, 1),
    OPT("timers", hold_ttl, hold_ttl_s, 1, 7 * 86400, 1),
    OPT("timers", address_retention, address_retention_s, 1, 90 * 86400, 1),
    OPT("timers", reader_check, reader_check_s, 1, 86400, 1),
    OPT("timers", replay_window, replay_window_s, 60, 30 * 86400, 1),
    OPT("audit", retention, audit_retention_months, 1, 1200, 0),
};

static int
s_handler(void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *p = user;
    for (size_t i = 0; i < sizeof s_options / sizeof s_options[0]; i++) {
        const s_option_t *o = &s_options[i];
        if (strcmp(o->section, section) || strcmp(o->name, name))
            continue;
        void *field = (char *) p->cfg + o->offset;
        if (o->kind == 2 || o->kind == 3) {
            char **s = field;
            free(*s);
            *s = o->kind == 2 ? hv_path_relative_to(p->path, value) : strdup(value);
            return *s != NULL;
        }
        if (o->kind == 5) {
            bool full = strcmp(value, "full") == 0;
            if (!full && strcmp(value, "minimal") != 0) {
                snprintf(p->err, p->errlen, "%s line %d: hook_detail must be minimal or full",
                         p->path, p->lineno);
                p->failed = 1;
                return 0;
            }
            *(bool *) field = full;
            return 1;
        }
        if (o->kind == 4) {
            int lv = brk_log_level_parse(value);
            if (lv < 0) {
                snprintf(p->err, p->errlen, "%s line %d: log_level must be error, warn, info or debug",
                         p->path, p->lineno);
                p->failed = 1;
                return 0;
            }
            *(int *) field = lv;
            return 1;
        }
        int64_t v;
        char *end;
        int ok;
        if (o->kind == 1) {
            ok = hv_duration_parse(value, &v) == 0;
        } else {
            errno = 0;
            v = strtoll(value, &end, 10);
            ok = *value && !*end && !errno;
        }
        if (!ok || v < o->lo || v > o->hi) {
            snprintf(p->err, p->errlen, "%s line %d: %s must be %s from %lld to %lld%s",
                     p->path, p->lineno, name, o->kind == 1 ? "a duration" : "a number",
                     (long long) o->lo, (long long) o->hi, o->kind == 1 ? " seconds (e.g. 15m)" : "");
            p->failed = 1;
            return 0;
        }
        *(int64_t *) field = v;
        return 1;
    }
    snprintf(p->err, p->errlen, "%s line %d: unknown option '%s' in section [%s]",
             p->path, p->lineno, name, section);
    p->failed = 1;
    return 0;
}

int
brk_config_load(const char *path, brk_config_t **out, char *err, size_t errlen)
{
    brk_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->bind = strdup("tcp://127.0.0.1:7450");
    c->log_level = BRK_LOG_INFO;
    c->max_message_bytes = 1 << 20;
    c->max_units_per_catalog = 5000;
    c->max_results = 100;
    c->batch_max = 256;
    c->map_size_mb = 64;
    c->offer_ttl_s = 15 * 60;
    c->max_holds = 5;
    c->searches_per_minute = 120;
    c->max_watches = 5;
    c->writes_per_minute = 600;
    c->holds_per_hour = 20;
    c->connections_per_key = 8;
    c->requests_in_flight = 32;
    c->batch_memory_mb = 32;
    c->queued_replies = 64;
    c->inbox_max = 200;
    c->queued_reply_mb = 8;
    c->alert_coalesce_s = 600;
    c->silent_connection_s = 30;
    c->hold_ttl_s = 2 * 3600;
    c->address_retention_s = 7 * 86400;
    c->reader_check_s = 60;
    c->replay_window_s = 86400;
    c->audit_retention_months = 13;
    s_parse_t p = { c, path, 0, err, errlen, 0 };
    int rc = hv_ini_parse(path, s_handler, &p, &p.lineno);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read config %s: %s", path, strerror(errno));
        brk_config_destroy(&c);
        return -ENOENT;
    }
    if (rc > 0 || p.failed) {
        if (!p.failed)
            snprintf(err, errlen, "%s line %d: not valid INI", path, rc);
        brk_config_destroy(&c);
        return -EINVAL;
    }
    if (!c->data_dir || !c->districts) {
        snprintf(err, errlen, "%s: [broker] needs data_dir and districts", path);
        brk_config_destroy(&c);
        return -EINVAL;
    }
    /* A kept reply copies what its write said (a hold's unit and need):
     * it must not outlive what it copies. */
    if (c->replay_window_s > c->address_retention_s) {
        snprintf(err, errlen, "%s: [timers] replay_window (%llds) must not be longer than address_retention "
                 "(%llds): the replies kept for retries copy what a referral says, and must not outlive it",
                 path, (long long) c->replay_window_s, (long long) c->address_retention_s);
        brk_config_destroy(&c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

void
brk_config_destroy(brk_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_config_t *c = *self_p;
    free(c->bind);
    free(c->data_dir);
    free(c->districts);
    free(c->hook);
    free(c);
    *self_p = NULL;
}
