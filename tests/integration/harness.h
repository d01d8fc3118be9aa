/* SPDX-License-Identifier: MIT */
/* Integration test harness: a real haven-broker in its own temporary
 * directory on tcp://127.0.0.1:*, and the real programs run against it.
 * The broker reports its endpoint on --ready-fd, so nothing sleeps or
 * guesses ports. HAVEN_BROKER_WRAPPER (e.g. "valgrind -q --error-exitcode=99")
 * runs the broker under a tool. */
#ifndef HH_HARNESS_H
#define HH_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"

typedef struct {
    char dir[256];               /* the test's own directory */
    char endpoint[128];
    pid_t broker;
    char admin_conf[320];
    char broker_conf[320];
    char extra_conf[1024];       /* what hh_start added to broker.conf, kept by hh_restart */
} hh_t;

typedef struct {
    int code;                    /* exit code */
    char out[65536];
    char err[8192];
} hh_result_t;

/* Make the directory, the admin key, init the store, start the broker.
 * extra_conf is appended to broker.conf (NULL for none). */
void hh_start(hh_t *h, const char *extra_conf);
/* SIGTERM the broker; abort the test process unless it exits 0 (an
 * assertion would go unseen in a suite's .fini). */
void hh_stop(hh_t *h);
/* SIGKILL the broker: a crash, no chance to finish anything. */
void hh_crash(hh_t *h);
/* The broker's resident memory in KiB (from /proc). */
long hh_broker_rss_kib(hh_t *h);
/* Start the broker again on the same data directory and port (stopping it
 * cleanly first if it runs). */
void hh_restart(hh_t *h);
/* Restore the backup file (in the test directory) as the README says:
 * stop the broker, move data aside, a new data dir with the old broker
 * keys and the backup as data.mdb; the broker is left stopped. */
void hh_restore(hh_t *h, const char *backup_name);
/* What the broker does at start to a store it finds restored from a
 * backup (brk_providers_mark_unsynced), done to the stopped broker's
 * store: every provider unsynced until its agent resyncs. */
void hh_mark_restored(hh_t *h);

/* Stop if running and remove the directory. */
void hh_cleanup(hh_t *h);

/* Run a program (haven, haven-agent, haven-admin or a path) with args,
 * NULL-terminated. Returns the result in r. */
void hh_run(hh_t *h, hh_result_t *r, const char *prog, ...) __attribute__((sentinel));

/* Start a program in the background with its stdout on a pipe (*out_fd);
 * stderr goes to DIR/NAME.log. Returns its pid. */
pid_t hh_spawn(hh_t *h, int *out_fd, const char *prog, ...) __attribute__((sentinel));

/* Read one line from fd within timeout_ms into buf; false on timeout/EOF. */
bool hh_read_line(int fd, char *buf, size_t len, int timeout_ms);

/* A program's stdout parsed as JSON (caller decrefs); asserts it parses. */
struct json_t *hh_json(const hh_result_t *r);

/* Make a key pair and client config for a principal and register it
 * (provider: for agents). Writes DIR/NAME.conf into conf_out. */
void hh_principal(hh_t *h, const char *role, const char *name, const char *provider,
                  char *conf_out, size_t len);
/* Same, but the key is not registered with the broker. */
void hh_unregistered(hh_t *h, const char *name, char *conf_out, size_t len);

/* Add a provider, its agent (NAME-agent) and a catalog file with the text
 * given; the agent's config goes to conf_out. */
void hh_provider(hh_t *h, const char *id, const char *kind, const char *district,
                 const char *catalog, char *conf_out, size_t len);

/* Write a file in the test directory; returns its path in path_out. */
void hh_write(hh_t *h, const char *name, const char *text, char *path_out, size_t len);

/* Path of a built program (haven-broker, haven, ...). */
const char *hh_program(const char *name);

/* The full UK districts table beside the project. */
const char *hh_districts(void);

/* A principal's identity for tests that speak the protocol themselves:
 * its client config, keys, the broker's public key, and a connection
 * (made lazily, on its first call: 10 s, no retry). */
typedef struct {
    hv_clientcfg_t *cfg;
    hv_keys_t *keys;
    hv_pubkey_t broker;
    hv_conn_t *conn;
} hh_id_t;
void hh_identity(const char *conf, hh_id_t *id);
void hh_identity_free(hh_id_t *id);

#endif
