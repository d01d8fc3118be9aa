/* SPDX-License-Identifier: MIT */
/* Standing searches: a watch matches a unit that fits, not one that does
 * not, and not once it has expired. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/watch.h"

#define NOW 1800000000LL

static int s_hits;
static void s_hit(void *arg, const char *id, const uint8_t key[32]) { (void) arg; (void) id; (void) key; s_hits++; }

Test(watch, matches_what_fits_until_it_expires)
{
    char path[512], err[256];
    brk_districts_t *d = NULL;
    const char *data = getenv("HAVEN_SHARED_DATA");
    snprintf(path, sizeof path, "%s/uk-local-authorities.csv", data ? data : "../shared/data");
    cr_assert_eq(brk_districts_load(path, &d, err, sizeof err), 0, "%s", err);
    brk_index_t *x = brk_index_new();
    Haven__Service svc = HAVEN__SERVICE__INIT;
    svc.has_genders = 1;
    svc.genders = HAVEN__GENDERS__GENDERS_WOMEN;
    svc.has_children = svc.children = 1;
    svc.has_max_boy_age = 1;
    svc.max_boy_age = 12;
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    p.id = "refuge-1";
    p.name = "R";
    p.kind = HAVEN__KIND__KIND_REFUGE;
    p.district = "E07000008";
    p.service = &svc;
    int cam = brk_districts_find(d, "E07000008");
    cr_assert(brk_index_put_provider(x, &p, cam) >= 0);
    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit u = HAVEN__UNIT__INIT;
    spec.name = "room-1";
    spec.has_max_occupants = 1;
    spec.max_occupants = 3;
    u.provider = "refuge-1";
    u.spec = &spec;
    u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    u.has_confirmed_at = 1;
    u.confirmed_at = NOW;
    cr_assert_eq(brk_index_put_unit(x, &u, cam), 0);
    size_t n;
    const brk_avail_t *avail = brk_index_available(x, &n);

    brk_watches_t *w = brk_watches_new();
    uint8_t key[32] = { 7 };
    Haven__Need fits = HAVEN__NEED__INIT, teen = HAVEN__NEED__INIT;
    Haven__Child boy = HAVEN__CHILD__INIT, *kids[] = { &boy };
    boy.age = 15;
    boy.sex = "m";
    teen.children = kids;
    teen.n_children = 1;
    Haven__Watch a = HAVEN__WATCH__INIT, b = HAVEN__WATCH__INIT;
    a.id = "aaaaaaaaaaaaaaaa";
    a.need = &fits;
    a.has_created_at = a.has_expires_at = a.has_principal_key = 1;
    a.created_at = NOW;
    a.expires_at = NOW + 3600;
    a.principal_key = (ProtobufCBinaryData) { 32, key };
    b = a;
    b.id = "bbbbbbbbbbbbbbbb";
    b.need = &teen;
    cr_assert_eq(brk_watches_put(w, &a, d, 0), 0);
    cr_assert_eq(brk_watches_put(w, &b, d, 0), 0);
    cr_assert_eq(brk_watches_count(w), 2);

    s_hits = 0;
    brk_watches_match(w, x, &avail[0], NOW + 60, s_hit, NULL);
    cr_assert_eq(s_hits, 1, "only the watch the unit fits");
    s_hits = 0;
    brk_watches_match(w, x, &avail[0], NOW + 3600, s_hit, NULL);
    cr_assert_eq(s_hits, 0, "an expired watch is silent");
    /* hidden kinds: an IDVA's watch never sees emergency units */
    cr_assert_eq(brk_watches_put(w, &a, d, 1u << HAVEN__KIND__KIND_REFUGE), 0);
    s_hits = 0;
    brk_watches_match(w, x, &avail[0], NOW + 60, s_hit, NULL);
    cr_assert_eq(s_hits, 0);
    brk_watches_del(w, "aaaaaaaaaaaaaaaa");
    cr_assert_eq(brk_watches_count(w), 1);
    brk_watches_destroy(&w);
    brk_index_destroy(&x);
    brk_districts_destroy(&d);
}
