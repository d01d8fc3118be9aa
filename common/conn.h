/* SPDX-License-Identifier: MIT */
/* Haven client connection: CURVE DEALER socket with request ids, timeout
 * and retry (the zguide's Lazy Pirate), and authentication failure
 * detection through the socket monitor. */
#ifndef HV_CONN_H
#define HV_CONN_H

#include "haven.pb-c.h"
#include "keys.h"

typedef struct hv_conn hv_conn_t;

/* Socket options every Haven socket shares. */
#define HV_HANDSHAKE_MS   5000
#define HV_HEARTBEAT_MS   10000

/* Make sock a CURVE client of the broker whose public key is server_z85.
 * Returns 0 or -errno. */
int hv_curve_client(void *sock, const hv_keys_t *keys, const char *server_z85);

/* Make sock a CURVE server with ZAP domain "haven". Returns 0 or -errno. */
int hv_curve_server(void *sock, const hv_keys_t *keys);

/* Caller owns the result; NULL on failure (out of memory). The connection
 * is made lazily on the first call. */
hv_conn_t *hv_conn_new(const char *endpoint, const char *server_z85,
                       const hv_keys_t *keys, int timeout_ms, int retries);
void hv_conn_destroy(hv_conn_t **self_p);

/* Send req and wait for the matching reply. Its id is assigned here
 * unless the caller set one (non-zero); retries resend the same bytes.
 * Returns 0 with *reply_out set (free with haven__reply__free_unpacked),
 * -EACCES if the broker refused our key, -ETIMEDOUT if no reply came after
 * every retry, -EBADMSG for an undecodable reply, or another -errno. */
int hv_conn_call(hv_conn_t *self, Haven__Request *req, Haven__Reply **reply_out);

/* Wait up to timeout_ms for a notification the broker pushes (after a
 * Subscribe). Returns 0 with *notify_out set (caller frees), -ETIMEDOUT,
 * or -ENOTCONN if there is no connection (call hv_conn_call first).
 * Notifications that arrived during a call are returned first. */
int hv_conn_wait_notify(hv_conn_t *self, int timeout_ms, Haven__Reply **notify_out);

#endif
