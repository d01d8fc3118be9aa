/* SPDX-License-Identifier: MIT */
/* The broker's configuration (INI). Every option and its default is listed
 * in config/broker.conf.example. */
#ifndef BRK_CONFIG_H
#define BRK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *bind;                  /* [broker] bind */
    char *data_dir;              /* [broker] data_dir */
    char *districts;             /* [broker] districts */
    int log_level;               /* [broker] log_level */
    int64_t max_message_bytes;   /* [limits] */
    int64_t max_units_per_catalog;
    int64_t max_results;
    int64_t batch_max;           /* requests taken per poll cycle */
    int64_t map_size_mb;         /* initial LMDB map size */
    int64_t max_holds;           /* [limits] max_holds_per_principal */
    int64_t searches_per_minute; /* [limits] per principal */
    int64_t max_watches;         /* [limits] max_watches_per_principal */
    int64_t writes_per_minute;   /* [limits] per principal, every write */
    int64_t holds_per_hour;      /* [limits] holds one principal may create */
    int64_t connections_per_key; /* [limits] */
    int64_t requests_in_flight;  /* [limits] per principal in one poll cycle */
    int64_t batch_memory_mb;     /* [limits] decoded requests of one poll cycle */
    int64_t queued_replies;      /* [limits] replies libzmq queues per connection */
    int64_t queued_reply_mb;     /* [limits] reply bytes waiting for one principal beyond that */
    int64_t inbox_max;           /* [limits] alerts kept per principal */
    char *hook;                  /* [alerts] hook: executable given each alert as JSON */
    bool hook_detail_full;       /* [alerts] hook_detail = minimal | full */
    int64_t alert_coalesce_s;    /* [alerts] coalesce: one alert per unit per watch, one hook run per watch */
    int64_t silent_connection_s; /* [timers] silent_connection */
    int64_t replay_window_s;     /* [timers] replay_window: how long a write's reply is kept for retries */
    int64_t offer_ttl_s;         /* [timers] offer_ttl */
    int64_t hold_ttl_s;          /* [timers] hold_ttl */
    int64_t address_retention_s; /* [timers] address_retention */
    int64_t reader_check_s;      /* [timers] reader_check */
    int64_t audit_retention_months; /* [audit] retention: months audit records are kept */
} brk_config_t;

/* Load path; relative paths inside are taken from the file's directory.
 * Unknown sections/options and out-of-range values are refused with the
 * line number. Returns 0 or -errno with err set. Caller owns *out. */
int brk_config_load(const char *path, brk_config_t **out, char *err, size_t errlen);
void brk_config_destroy(brk_config_t **self_p);

#endif
