/* SPDX-License-Identifier: MIT */
/* The in-memory index the match engine reads: every provider's compiled
 * rules and every unit's features and status, kept in step with the store
 * (built at start, updated after every commit). It holds no address and
 * nothing about survivors. */
#ifndef BRK_INDEX_H
#define BRK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../proto/wire.h"

#define BRK_NO_LIMIT 0xff      /* an age or count rule that is not set */

typedef struct {
    char id[HV_ID_MAX + 1];
    char *name;
    char *phone;                 /* may be NULL */
    uint8_t kind;
    int16_t district;
    bool published;              /* a catalog has been received */
    bool unsynced;               /* restored from a backup, its agent not yet back:
                                  * every unit stale (design.md section 7) */
    /* the service rules, compiled */
    uint8_t genders;
    bool trans_inclusive;
    uint8_t adult_min_age, adult_max_age;   /* BRK_NO_LIMIT if unset */
    bool children;
    uint8_t max_children;        /* BRK_NO_LIMIT if unset */
    uint8_t max_boy_age;         /* BRK_NO_LIMIT if unset */
    uint8_t pets;
    bool nrpf;
    uint8_t complex_needs;
    uint8_t specialist;
    uint8_t n_languages;
    uint16_t languages[HV_LIST_MAX];
    uint32_t confirm_every_s;
    uint64_t catalog_version;
    uint16_t cls;                /* its rule class */
} brk_prov_t;

typedef struct {
    char name[HV_ID_MAX + 1];
    uint32_t prov;               /* index into the providers */
    int16_t district;
    uint8_t status;              /* Haven__UnitStatus */
    uint8_t features;            /* Feature bits; wheelchair implies step-free */
    uint8_t max_occupants;
    uint8_t bedrooms;
    uint8_t cots;
    int64_t available_from;
    int64_t confirmed_at;
    uint64_t version;
    uint32_t avail_pos;          /* position in the available list, or UINT32_MAX */
} brk_unit_t;

/* The provider rules a search checks, shared by every provider with the
 * same rules: a search decides them once per class, not once per unit. */
typedef struct {
    uint8_t kind;
    uint8_t genders;
    uint8_t adult_min_age, adult_max_age;
    uint8_t max_children, max_boy_age;
    uint8_t pets;
    uint8_t complex_needs;
    uint8_t flags;               /* BRK_CLASS_* */
} brk_class_t;

#define BRK_CLASS_TRANS_INCLUSIVE 1
#define BRK_CLASS_CHILDREN 2
#define BRK_CLASS_NRPF 4

/* A unit a search may offer, with what the unit-level rules read: the
 * search is one sequential pass over these. */
typedef struct {
    uint32_t unit;               /* index into the units */
    uint32_t prov;               /* index into the providers */
    int64_t confirmed_at;
    int64_t stale_at;            /* confirmed_at + the provider's confirm_every;
                                  * 0 while the provider is unsynced */
    int64_t available_from;
    int16_t district;
    uint16_t cls;                /* the provider's rule class */
    uint8_t features;
    uint8_t max_occupants;
    uint8_t specialist;
} brk_avail_t;

typedef struct brk_index brk_index_t;

brk_index_t *brk_index_new(void);
void brk_index_destroy(brk_index_t **self_p);

/* Insert or replace a provider (its id never changes index). district is
 * the district's index in the districts table. Its units' search entries
 * copy its rules and whether it is unsynced: put its units again after
 * changing it (the broker does, after every commit that touches a
 * provider). Returns its index or -errno. */
int brk_index_put_provider(brk_index_t *self, const Haven__Provider *p, int district);

/* Insert or replace a unit of a known provider; -ENOENT if the provider is
 * not in the index. Returns 0 or -errno. */
int brk_index_put_unit(brk_index_t *self, const Haven__Unit *u, int district);

/* Remove a unit; -ENOENT if absent. */
int brk_index_del_unit(brk_index_t *self, const char *provider, const char *unit);

int brk_index_find_provider(const brk_index_t *self, const char *id);
int brk_index_find_unit(const brk_index_t *self, const char *provider, const char *unit);

size_t brk_index_provider_count(const brk_index_t *self);
size_t brk_index_unit_count(const brk_index_t *self);
const brk_prov_t *brk_index_provider(const brk_index_t *self, uint32_t idx);
const brk_unit_t *brk_index_unit(const brk_index_t *self, uint32_t idx);

/* Whether a unit counts as stale at now: not confirmed within its
 * provider's confirm_every, or its provider unsynced. */
bool brk_index_unit_stale(const brk_index_t *self, uint32_t unit, int64_t now);

/* Units whose status is available: the only candidates a search reads. */
const brk_avail_t *brk_index_available(const brk_index_t *self, size_t *count_out);

/* The rule classes, indexed by brk_avail_t.cls. */
const brk_class_t *brk_index_classes(const brk_index_t *self, size_t *count_out);

/* A language code as the index keeps it. */
static inline uint16_t
brk_lang_code(const char *s)
{
    return (uint16_t) ((unsigned char) s[0] << 8 | (unsigned char) s[1]);
}

#endif
