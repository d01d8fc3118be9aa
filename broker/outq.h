/* SPDX-License-Identifier: MIT */
/* Replies waiting for a slow reader. libzmq queues at most ZMQ_SNDHWM
 * replies per connection, and frees room in that queue only now and then
 * (it hands the room back in halves, and the sending socket reads that
 * news at most every millisecond or so), so a client that pipelines can
 * find the queue full although it reads as fast as it can. Such replies
 * wait here, in order per connection, and go out as the connection takes
 * them. A principal may have at most limit bytes waiting, and a reply
 * waits at most max_wait_ms: past either it is dropped (the client's
 * retry asks again), so a reader that never reads costs the broker no
 * more than that (design.md section 6, item 11). */
#ifndef BRK_OUTQ_H
#define BRK_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct brk_outq brk_outq_t;

/* router: the ROUTER socket replies go out on (ROUTER_MANDATORY set). */
brk_outq_t *brk_outq_new(void *router, size_t limit, int64_t max_wait_ms);
void brk_outq_destroy(brk_outq_t **self_p);

/* Send data to the connection with routing id rid, for the principal whose
 * key is z85 ("" if unknown), now or once the connection has room.
 * Returns 0 (sent or waiting), -ENOBUFS (dropped: the principal has limit
 * bytes waiting), -EHOSTUNREACH (the connection is gone) or -errno. */
int brk_outq_send(brk_outq_t *self, const void *rid, size_t rid_len, const char *z85,
                  const void *data, size_t len, int64_t now_ms);

/* Send what waits, as far as the connections take it; drop what waited
 * longer than max_wait_ms. Returns how many replies still wait. */
size_t brk_outq_flush(brk_outq_t *self, int64_t now_ms);

/* Bytes waiting for the principal z85. */
size_t brk_outq_bytes(const brk_outq_t *self, const char *z85);

#endif
