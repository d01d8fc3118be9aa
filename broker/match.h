/* SPDX-License-Identifier: MIT */
/* The match engine: hard rules filter, soft preferences rank (design.md
 * section 5). Each unit is checked against every rule at once, giving a
 * mask of the rules it fails: empty means a match, one bit means that
 * rule alone stands in the way, which is what relaxations count. */
#ifndef BRK_MATCH_H
#define BRK_MATCH_H

#include <stdint.h>
#include "districts.h"
#include "index.h"

/* In the order of haven.proto's Rule (which starts at 1 after RULE_NONE):
 * brk_rule_t r is Rule r + 1. */
typedef enum {
    BRK_RULE_FRESH,
    BRK_RULE_FROM,
    BRK_RULE_GENDER,
    BRK_RULE_ADULT_AGE,
    BRK_RULE_CHILDREN,
    BRK_RULE_BOYS,
    BRK_RULE_HOUSEHOLD,
    BRK_RULE_PETS,
    BRK_RULE_WHEELCHAIR,
    BRK_RULE_STEP_FREE,
    BRK_RULE_GROUND_FLOOR,
    BRK_RULE_ACCESSIBLE_BATHROOM,
    BRK_RULE_SENSORY,
    BRK_RULE_PERSONAL_CARE,
    BRK_RULE_CARER_ROOM,
    BRK_RULE_NRPF,
    BRK_RULE_COMPLEX,
    BRK_RULE_SELF_CONTAINED,
    BRK_RULE_KIND,
    BRK_RULE_EXCLUDED,
    BRK_RULE_DISTANCE,
    BRK_RULE__COUNT
} brk_rule_t;

/* The rule's name in replies ("max_boy_age", ...). */
const char *brk_rule_name(brk_rule_t rule);

typedef struct brk_need brk_need_t;

/* Compile a validated need against the districts table. Unknown district
 * codes are refused: -ENOENT with err naming the code. now is the broker's
 * clock (unix seconds). Caller owns *need_out (free()). */
int brk_need_compile(const Haven__Need *need, brk_districts_t *districts,
                     int64_t now, brk_need_t **need_out, char *err, size_t errlen);

/* Move a compiled need's clock (standing searches outlive their compile). */
void brk_need_set_now(brk_need_t *need, int64_t now);

/* Leave units of these kinds (bit per Kind) out altogether: not offered and
 * not counted in relaxations (IDVAs do not see emergency units). */
void brk_need_hide_kinds(brk_need_t *need, uint32_t kinds);

/* The mask of rules an available unit's entry fails (bit per brk_rule_t);
 * all bits set if its kind is hidden from this need. */
uint32_t brk_match_unit(const brk_need_t *need, const brk_index_t *index, const brk_avail_t *unit);

typedef struct {
    uint32_t unit;               /* index into the index's units */
    uint32_t prov;
    uint32_t prefs;              /* soft preferences matched: bit 0 specialist,
                                    bit 1 preferred district, bits 8.. languages */
    uint8_t n_prefs;
    bool stale;
    double distance_km;          /* < 0: no reference district */
    int64_t confirmed_at;
} brk_hit_t;

typedef struct {
    uint32_t matching;           /* all units that match */
    uint32_t n_hits;             /* best first, at most limit */
    brk_hit_t *hits;
    uint32_t relax[BRK_RULE__COUNT];   /* more matches if this rule alone were dropped */
} brk_result_t;

/* Run a search. hits is allocated with room for limit; free with
 * brk_result_free. Returns 0 or -ENOMEM. */
int brk_match_search(const brk_need_t *need, const brk_index_t *index,
                     uint32_t limit, brk_result_t *result_out);
void brk_result_free(brk_result_t *result);

/* For relaxation sentences and preference names. */
int brk_need_oldest_boy(const brk_need_t *need);       /* -1: no boys */
const char *brk_need_language(const brk_need_t *need, int i);  /* i-th need language */
int brk_need_reference(const brk_need_t *need);        /* district index or -1 */

#endif
