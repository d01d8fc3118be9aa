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

/* Call fn for every unexpired watch that unit matches at now. */
void brk_watches_match(brk_watches_t *self, const brk_index_t *index, const brk_avail_t *unit,
                       int64_t now,
                       void (*fn)(void *arg, const char *id, const uint8_t key[32]), void *arg);

#endif
