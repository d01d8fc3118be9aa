/* SPDX-License-Identifier: MIT */
/* The agent's outbox: its own small LMDB in state_dir. Every change staff
 * make is written here first, then sent; an entry leaves only when the
 * broker has acknowledged it (or refused it for good), so no update is
 * lost to a network or broker outage. Also holds the agent's version
 * counter. */
#ifndef AGT_OUTBOX_H
#define AGT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include "../proto/haven.pb-c.h"

typedef struct agt_outbox agt_outbox_t;

/* Open (creating) the outbox in dir. Returns 0 or -errno. */
int agt_outbox_open(const char *dir, agt_outbox_t **out);
void agt_outbox_destroy(agt_outbox_t **self_p);

/* The next version: strictly above every version this agent gave before,
 * and at least the current time in microseconds, so that a reinstalled
 * agent with a fresh state_dir still outranks its old updates. */
int agt_outbox_next_version(agt_outbox_t *self, uint64_t *version_out);

/* Append a request (its id is ignored) durably. Returns 0 or -errno. */
int agt_outbox_push(agt_outbox_t *self, const Haven__Request *req);

/* The oldest entry: 0 with *req_out (caller frees with
 * haven__request__free_unpacked) and *seq_out, or -ENOENT if empty. */
int agt_outbox_peek(agt_outbox_t *self, Haven__Request **req_out, uint64_t *seq_out);

/* Remove an entry once it is acknowledged. */
int agt_outbox_remove(agt_outbox_t *self, uint64_t seq);

/* Call fn for each waiting entry, oldest first (at most max). */
int agt_outbox_each(agt_outbox_t *self, size_t max,
                    void (*fn)(void *arg, uint64_t seq, const Haven__Request *req), void *arg);

/* How many entries wait. */
int agt_outbox_count(agt_outbox_t *self, size_t *count_out);

#endif
