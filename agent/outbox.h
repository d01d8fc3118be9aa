/* SPDX-License-Identifier: MIT */
/* The agent's outbox: its own small LMDB in state_dir. Every change staff
 * make is written here first, then sent; an entry leaves only when the
 * broker has applied it or refused it for good, so no update is lost to a
 * network or broker outage. Also holds the agent's version counter and its
 * authority record: what the broker has acknowledged, so that a broker
 * restored from a backup can be brought up to date (design.md section 7).
 * The map grows when it fills. */
#ifndef AGT_OUTBOX_H
#define AGT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include "../proto/haven.pb-c.h"

typedef struct agt_outbox agt_outbox_t;

/* Open (creating) the outbox in dir. Returns 0 or -errno. */
int agt_outbox_open(const char *dir, agt_outbox_t **out);
/* The same with the map starting at map_size bytes (tests start small to
 * see it grow). */
int agt_outbox_open_sized(const char *dir, size_t map_size, agt_outbox_t **out);
void agt_outbox_destroy(agt_outbox_t **self_p);

/* The map's current size in bytes. */
size_t agt_outbox_map_size(agt_outbox_t *self);

/* The next version: strictly above every version this agent gave before,
 * and at least the current time in microseconds, so that a reinstalled
 * agent with a fresh state_dir still outranks its old updates. */
int agt_outbox_next_version(agt_outbox_t *self, uint64_t *version_out);

/* Append a request durably with a request id of its own (req's is
 * ignored): random, non-zero, 63 bits, sent with every attempt, across
 * restarts, so the broker can tell a resend from a new request. *id_out
 * (may be NULL) gets it. Returns 0 or -errno. */
int agt_outbox_push(agt_outbox_t *self, const Haven__Request *req, uint64_t *id_out);

/* The oldest entry, with its request id: 0 with *req_out (caller frees
 * with haven__request__free_unpacked) and *seq_out, -ENOENT if empty,
 * -EBADMSG if it does not decode. An entry queued before entries had ids
 * is given one here, once. */
int agt_outbox_peek(agt_outbox_t *self, Haven__Request **req_out, uint64_t *seq_out);

/* Queue a publish. A catalog is the whole list, so a publish still
 * queued adds nothing once a newer one is made, and one the broker keeps
 * refusing (a catalog over its size limit) must not block the fix: the
 * new one takes the place of the first queued publish, so changes queued
 * after that still follow it, and any later queued publish goes.
 * Otherwise it is appended as agt_outbox_push does. Returns 0 or -errno. */
int agt_outbox_push_publish(agt_outbox_t *self, const Haven__Request *req, uint64_t *id_out);

/* Remove the entry seq once the broker answered the request id sent for
 * it; an entry replaced meanwhile (it has another id now) stays, and one
 * gone already is fine. Returns 0 or -errno. */
int agt_outbox_remove(agt_outbox_t *self, uint64_t seq, uint64_t id);

/* Call fn for each waiting entry, oldest first (at most max); an entry
 * that does not decode is passed as NULL. Returns 0 or -errno. */
int agt_outbox_each(agt_outbox_t *self, size_t max,
                    void (*fn)(void *arg, uint64_t seq, const Haven__Request *req), void *arg);

/* How many entries wait. Returns 0 or -errno. */
int agt_outbox_count(agt_outbox_t *self, size_t *count_out);

/* ---------------------------------------------------------- the record
 * Only what the broker holds anyway: the catalog's service rules and unit
 * specs (never an address: those are not in a Publish) and each unit's
 * status. */

/* An applied publish becomes the record's catalog; units it no longer
 * lists leave the record. Returns 0 or -errno. */
int agt_outbox_record_catalog(agt_outbox_t *self, const Haven__Publish *pub);

/* An applied status of one unit (a set, or the outcome of an accept or a
 * decline); kept only if its version is newer than the recorded one.
 * Returns 0 or -errno. */
int agt_outbox_record_unit(agt_outbox_t *self, const Haven__UnitSet *set);

/* An applied confirm, made at this time. Returns 0 or -errno. */
int agt_outbox_record_confirm(agt_outbox_t *self, int64_t at);

typedef struct {
    Haven__Publish *catalog;     /* NULL if no publish was applied */
    Haven__UnitSet **units;      /* in name order */
    size_t n_units;
    int64_t confirmed_at;        /* 0 if none */
    uint64_t version;            /* the highest version in it; 0 if empty */
} agt_record_t;

/* The record for provider (entries of another provider, from an earlier
 * configuration, are left out). Release with agt_record_clear. Returns 0
 * or -errno (-EBADMSG if an entry does not decode). */
int agt_outbox_record_load(agt_outbox_t *self, const char *provider, agt_record_t *out);
void agt_record_clear(agt_record_t *rec);

#endif
