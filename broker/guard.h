/* SPDX-License-Identifier: MIT */
/* What each principal may cost the broker (design.md section 6, item 11):
 * connections per key, requests per poll cycle, rates of searches, writes
 * and holds, and the memory one batch may decode requests into. Refusals
 * are counted per key and handed to the audit log once a minute, so a
 * flood of refused requests or connections cannot grow the log without
 * bound. Everything here is in memory and keyed by registered principals
 * (unknown keys share one counter), so the guard itself stays small. */
#ifndef BRK_GUARD_H
#define BRK_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "config.h"

typedef struct brk_guard brk_guard_t;

typedef enum {
    BRK_RATE_SEARCH,             /* limits.searches_per_minute */
    BRK_RATE_WRITE,              /* limits.writes_per_minute: every write */
    BRK_RATE_HOLD,               /* limits.holds_per_hour */
    BRK_RATE__COUNT
} brk_rate_t;

typedef enum {
    BRK_REFUSE_UNKNOWN_KEY,      /* connection or request from an unregistered key */
    BRK_REFUSE_REVOKED,
    BRK_REFUSE_CONNECTIONS,      /* limits.connections_per_key */
    BRK_REFUSE_SILENT,           /* a connection that never sent a request */
    BRK_REFUSE_MALFORMED,
    BRK_REFUSE_ROLE,
    BRK_REFUSE_SIZE,             /* over the operation's size cap */
    BRK_REFUSE_RATE,
    BRK_REFUSE_IN_FLIGHT,        /* limits.requests_in_flight */
    BRK_REFUSE_MEMORY,           /* limits.batch_memory_mb */
    BRK_REFUSE__COUNT
} brk_refusal_t;

/* The refusal's name in the audit log ("too-large", ...). */
const char *brk_refusal_name(brk_refusal_t why);

brk_guard_t *brk_guard_new(const brk_config_t *cfg);
void brk_guard_destroy(brk_guard_t **self_p);

/* ------------------------------------------------------------ connections */

/* A connection was accepted on fd (from the socket monitor). */
void brk_guard_conn_open(brk_guard_t *self, int fd, int64_t now_ms);
/* It went away. */
void brk_guard_conn_close(brk_guard_t *self, int fd);
/* A request arrived on fd from the key (Z85) whose principal is name.
 * Returns 0, or -EMFILE if this is a new connection for a key that already
 * has limits.connections_per_key (drop the connection). */
int brk_guard_conn_attach(brk_guard_t *self, int fd, const char *z85, const char *name);
/* True if the key may not open another connection. */
bool brk_guard_conn_full(const brk_guard_t *self, const char *z85);
/* For the ZAP handler: admit one more connection of the key, counting it
 * until it sends its first request (or silent_connection passes), so
 * connections that never speak are limited too. False: refuse it. */
bool brk_guard_conn_admit(brk_guard_t *self, const char *z85, int64_t now_ms);
/* Call fn for each connection accepted before now_ms - silent_ms that has
 * sent no request yet, and each connection of the key z85 (NULL: none). */
void brk_guard_conn_each_to_drop(brk_guard_t *self, int64_t now_ms, int64_t silent_ms, const char *z85,
                                 void (*fn)(void *arg, int fd), void *arg);
/* Close connection fd from our side: the I/O thread sees it end and cleans
 * up (libzmq has no call to close one peer of a ROUTER). A callback for
 * brk_guard_conn_each_to_drop; arg is unused. */
void brk_guard_conn_drop(void *arg, int fd);
/* How many connections the key has that sent a request. */
unsigned brk_guard_conn_count(const brk_guard_t *self, const char *z85);

/* ------------------------------------------------------------ rates */

/* Take one from the key's bucket for this rate (now_ms: a monotonic
 * clock). False if it is empty: refuse the request. */
bool brk_guard_rate(brk_guard_t *self, const char *z85, brk_rate_t rate, int64_t now_ms);

/* ------------------------------------------------------------ batches */

/* Count a request of the key into this poll cycle. False if the key already
 * has limits.requests_in_flight in it (refuse it). The request that brings
 * a key to its limit ends the cycle (brk_guard_batch_full): a client that
 * pipelines waits in libzmq's queue, and its replies never outnumber what
 * its connection may queue. */
bool brk_guard_take(brk_guard_t *self, const char *z85);
/* True once a key has limits.requests_in_flight in this cycle, or the
 * decode budget is spent: take no more requests until the next cycle. */
bool brk_guard_batch_full(const brk_guard_t *self);
/* An allocator for decoding this batch's requests: it refuses once the
 * batch has used limits.batch_memory_mb. Frees go to free(). */
ProtobufCAllocator *brk_guard_allocator(brk_guard_t *self);
/* The batch is answered: clear the counts and the budget. */
void brk_guard_batch_end(brk_guard_t *self);

/* ------------------------------------------------------------ refusals */

/* Count a refusal for the principal name (NULL: an unknown key). */
void brk_guard_refused(brk_guard_t *self, const char *name, brk_refusal_t why);
/* Hand the counts gathered since the last call to fn, one call per name
 * (NULL for unknown keys) with a count per brk_refusal_t, and clear them. */
void brk_guard_refusals_take(brk_guard_t *self,
                             void (*fn)(void *arg, const char *name, const uint32_t *counts),
                             void *arg);

#endif
