/* SPDX-License-Identifier: MIT */
/* Standing searches in memory, compiled, kept in step with the store: after
 * a commit makes a unit newly available, each watch is checked against it. */
#ifndef BRK_WATCH_H
#define BRK_WATCH_H

#include <stdint.h>
#include "districts.h"
#include "index.h"
#include "haven.pb-c.h"

typedef struct brk_watches brk_watches_t;

brk_watches_t *brk_watches_new(void);
void brk_watches_destroy(brk_watches_t **self_p);

/* Insert or replace a watch (compiled against districts; hidden_kinds as
 * for its owner's searches). Returns 0 or -errno. */
int brk_watches_put(brk_watches_t *self, const Haven__Watch *w, brk_districts_t *districts,
                    uint32_t hidden_kinds);
void brk_watches_del(brk_watches_t *self, const char *id);
size_t brk_watches_count(const brk_watches_t *self);

/* Call fn for every unexpired watch that `after` matches at now and
 * `before` (what the index had for the unit before a change; NULL if it
 * was not offered) did not: the watches the unit newly matches. Matching
 * reads the entry and the index's rule classes, which are only ever
 * added to, so an old entry still reads as it did. */
void brk_watches_match_new(brk_watches_t *self, const brk_index_t *index, const brk_avail_t *before,
                           const brk_avail_t *after, int64_t now,
                           void (*fn)(void *arg, const char *id, const uint8_t key[32]), void *arg);

/* Call fn for every unexpired watch that unit matches at now. */
void brk_watches_match(brk_watches_t *self, const brk_index_t *index, const brk_avail_t *unit,
                       int64_t now,
                       void (*fn)(void *arg, const char *id, const uint8_t key[32]), void *arg);

#endif
