/* SPDX-License-Identifier: MIT */
/* The districts table: ONS local authority codes with names, regions and
 * centre points, loaded from a CSV (code,name,region,lat,lon). */
#ifndef BRK_DISTRICTS_H
#define BRK_DISTRICTS_H

#include <stddef.h>

typedef struct brk_districts brk_districts_t;

#define BRK_DISTRICTS_MAX 4096

/* Load path. Refuses (with the line in err) a missing header, a bad code,
 * a duplicate code, coordinates out of range, or more than
 * BRK_DISTRICTS_MAX rows. Returns 0 or -errno. Caller owns *out. */
int brk_districts_load(const char *path, brk_districts_t **out, char *err, size_t errlen);
void brk_districts_destroy(brk_districts_t **self_p);

size_t brk_districts_count(const brk_districts_t *self);

/* Index of code, or -ENOENT. */
int brk_districts_find(const brk_districts_t *self, const char *code);

const char *brk_districts_code(const brk_districts_t *self, int idx);
const char *brk_districts_name(const brk_districts_t *self, int idx);
const char *brk_districts_region(const brk_districts_t *self, int idx);
/* The region of district idx, or "" if idx is none (-1) or out of range. */
const char *brk_districts_region_of(const brk_districts_t *self, int idx);

/* The region named name (any case), as the table spells it; NULL if none,
 * with the table's regions listed in list (comma-separated, cut to len). */
const char *brk_districts_region_find(const brk_districts_t *self, const char *name, char *list, size_t len);

/* Great-circle distance in km between two district centres (haversine,
 * Earth radius 6371 km). */
double brk_districts_distance(const brk_districts_t *self, int a, int b);

/* Distances from district ref to every district, in table order: computed
 * on first use and kept, so a search pays for no trigonometry. NULL if out
 * of memory. Owned by the table. */
const double *brk_districts_row(brk_districts_t *self, int ref);

#endif
