/* SPDX-License-Identifier: MIT */
/* A TCP relay in front of the broker that can lose a reply: it passes
 * ZMTP through untouched, except that when told to, it cuts the next
 * connection at the first message the broker sends on it (the reply),
 * which the client then never sees. The request was done; the client's
 * retry must not do it twice (design.md section 7). The relay reads the
 * ZMTP framing only (greeting, frame headers, and the CurveZMQ command
 * name "MESSAGE"); it cannot read what is inside. */
#ifndef HH_PROXY_H
#define HH_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include "harness.h"

typedef struct hh_proxy hh_proxy_t;

/* Start relaying 127.0.0.1:* to the broker of h; its endpoint in endpoint_out. */
hh_proxy_t *hh_proxy_start(hh_t *h, char *endpoint_out, size_t len);
void hh_proxy_stop(hh_proxy_t **self_p);

/* Pass the next `pass` replies the broker sends (on any connection), then
 * lose the one after, cutting its connection. */
void hh_proxy_lose_reply(hh_proxy_t *self, int pass);
/* How many replies were lost so far, and how many passed. */
int hh_proxy_lost(hh_proxy_t *self);
int hh_proxy_passed(hh_proxy_t *self);
/* Wait until at least n replies have passed, up to timeout_ms: true if
 * they have (for killing a client at a chosen point of its exchange). */
bool hh_proxy_wait_passed(hh_proxy_t *self, int n, int timeout_ms);

/* Write DIR/NAME.conf: a copy of the client config conf whose endpoint is
 * the relay's. */
void hh_proxy_conf(hh_t *h, const char *conf, const char *endpoint, const char *name, char *out, size_t len);

#endif
