/* SPDX-License-Identifier: MIT */
/* What the Haven command-line programs share: config and key loading,
 * one call to the broker with its outcome mapped to sysexits codes and a
 * one-sentence message on stderr. */
#ifndef HV_CLI_H
#define HV_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <sysexits.h>
#include "cert.h"
#include "clientcfg.h"
#include "conn.h"
#include "haven.pb-c.h"
#include "privfile.h"

typedef struct hv_cli hv_cli_t;

/* Open a session from the config at path (NULL: $HAVEN_CONFIG).
 * Returns EX_OK with *cli_out set, or an exit code after printing why. */
int hv_cli_open(const char *prog, const char *path, hv_cli_t **cli_out);
void hv_cli_destroy(hv_cli_t **self_p);

const hv_clientcfg_t *hv_cli_config(const hv_cli_t *self);
const hv_keys_t *hv_cli_keys(const hv_cli_t *self);
/* hv_cli_request (the request is validated first), and the reply must carry
 * body_case (a Haven__Reply body): otherwise one sentence and EX_PROTOCOL. */
int hv_cli_call_for(hv_cli_t *self, Haven__Request *req, int body_case, Haven__Reply **reply_out);

/* The administrators' signing keys this client trusts; NULL (with a
 * sentence on stderr) if the configuration names none. */
struct hv_trust;
const struct hv_trust *hv_cli_trust(hv_cli_t *self);
hv_conn_t *hv_cli_conn(hv_cli_t *self);



/* Send req; on success *reply_out holds an OK reply (caller frees).
 * Otherwise prints the error and returns the exit code:
 * 69 unreachable, 77 refused/forbidden, 65 bad data/not found,
 * 75 conflict/expired/limit, 70 internal. */
int hv_cli_call(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out);

/* Whether the last call reached the broker and got its answer (false:
 * unreachable, or our key was refused at the handshake). */
bool hv_cli_delivered(const hv_cli_t *self);

/* As hv_cli_call, but a reply that refuses the request is not printed:
 * the caller says what it means (hv_cli_last_status, hv_cli_last_error).
 * Not reaching the broker is still said. */
int hv_cli_call_quiet(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out);

/* The last reply's status (Haven__Status), or -1 if the last call got no
 * reply; and its error text ("" if none), valid until the next call. */
int hv_cli_last_status(const hv_cli_t *self);
const char *hv_cli_last_error(const hv_cli_t *self);

/* Check req as the broker will (a usage error, said plainly, if not),
 * then send it as hv_cli_call does. */
int hv_cli_request(hv_cli_t *self, Haven__Request *req, Haven__Reply **reply_out);

/* Print a JSON document on stdout (indented, newline) and release it. */
void hv_json_print(json_t *doc);

/* "confirmed 5m ago" style ages ("never" below zero), and UTC times as
 * ISO 8601 ("2026-11-23T02:14:00Z"). */
void hv_format_age(int64_t seconds, char *buf, size_t len);
void hv_format_time(int64_t unix_seconds, char *buf, size_t len);

/* Exit code for a reply status. */
int hv_cli_exit_for_status(int status);

/* `PROG keygen --out PATH`: shared by all three programs. */
int hv_cli_keygen(const char *prog, int argc, char **argv);

/* Print "PROG: message" to stderr. */
void hv_cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
