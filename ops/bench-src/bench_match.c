/* SPDX-License-Identifier: MIT */
/* Match engine micro-benchmark: search time per unit count over synthetic
 * providers spread across the real UK districts, against a reference
 * measured in the same run (a bare pass over the same available units that
 * reads one field of each: the memory floor any search must pay).
 * usage: bench_match DISTRICTS.csv [UNITS ...]   (default 10000 100000 1000000) */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../broker/match.h"
#include "bench_util.h"

#define NOW 1800000000LL

static uint64_t s_rng = 88172645463325252ULL;
#define s_rand(n) bench_rand(&s_rng, (n))

static double
s_now_us(void)
{
    return bench_now() * 1e6;
}

/* A rule mix shaped by the design's figures: most refuges take boys to 12,
 * about half to 16; about 9% consider NRPF; few units are accessible; about
 * one unit in ten is available at any moment. */
static brk_index_t *
s_generate(const brk_districts_t *d, uint32_t units)
{
    brk_index_t *x = brk_index_new();
    uint32_t per = 8, n_prov = (units + per - 1) / per, made = 0;
    int nd = (int) brk_districts_count(d);
    static char *langs[][3] = { { "en" }, { "en", "pl" }, { "en", "ur", "pa" }, { "en", "ar" } };
    for (uint32_t p = 0; p < n_prov; p++) {
        char id[32], name[32];
        snprintf(id, sizeof id, "provider-%u", p);
        Haven__Service s = HAVEN__SERVICE__INIT;
        uint32_t kind = 1 + s_rand(4);
        s.has_genders = 1;
        s.genders = s_rand(100) < 80 ? HAVEN__GENDERS__GENDERS_WOMEN
                  : s_rand(100) < 75 ? HAVEN__GENDERS__GENDERS_ANY : HAVEN__GENDERS__GENDERS_MEN;
        s.has_trans_inclusive = 1;
        s.trans_inclusive = s_rand(2);
        s.has_children = 1;
        s.children = kind != HAVEN__KIND__KIND_HOSTEL;
        s.has_max_boy_age = s_rand(100) < 80;
        s.max_boy_age = s_rand(100) < 60 ? 12 : 16;
        s.has_pets = 1;
        s.pets = s_rand(100) < 30 ? HAVEN__PET__PET_DOG | HAVEN__PET__PET_CAT : 0;
        s.has_nrpf = 1;
        s.nrpf = s_rand(100) < 9;
        s.has_complex_needs = 1;
        s.complex_needs = s_rand(4);
        if (kind == HAVEN__KIND__KIND_HOSTEL) {
            s.has_adult_min_age = s.has_adult_max_age = 1;
            s.adult_min_age = 16;
            s.adult_max_age = 25;
        }
        int l = (int) s_rand(4);
        s.languages = langs[l];
        s.n_languages = (size_t) (l == 0 ? 1 : l == 2 ? 3 : 2);
        s.has_confirm_every_s = 1;
        s.confirm_every_s = 86400;
        Haven__Provider pr = HAVEN__PROVIDER__INIT;
        snprintf(name, sizeof name, "Provider %u", p);
        pr.id = id;
        pr.name = name;
        pr.kind = (Haven__Kind) kind;
        pr.district = (char *) brk_districts_code(d, (int) s_rand((uint32_t) nd));
        pr.service = &s;
        int district = brk_districts_find(d, pr.district);
        if (brk_index_put_provider(x, &pr, district) < 0)
            abort();
        for (uint32_t k = 0; k < per && made < units; k++, made++) {
            char uname[32];
            snprintf(uname, sizeof uname, "unit-%u", k);
            Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
            Haven__Unit u = HAVEN__UNIT__INIT;
            spec.name = uname;
            spec.has_max_occupants = 1;
            spec.max_occupants = 1 + s_rand(6);
            spec.has_features = 1;
            spec.features = (s_rand(100) < 30 ? HAVEN__FEATURE__FEATURE_SELF_CONTAINED : 0)
                          | (s_rand(100) < 20 ? HAVEN__FEATURE__FEATURE_STEP_FREE : 0)
                          | (s_rand(100) < 3 ? HAVEN__FEATURE__FEATURE_WHEELCHAIR : 0)
                          | (s_rand(100) < 30 ? HAVEN__FEATURE__FEATURE_GROUND_FLOOR : 0);
            u.provider = id;
            u.spec = &spec;
            u.status = s_rand(100) < 10 ? HAVEN__UNIT_STATUS__UNIT_AVAILABLE : HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
            u.has_confirmed_at = 1;
            u.confirmed_at = NOW - s_rand(100000);
            /* dispersed schemes spread over districts */
            int ud = kind == HAVEN__KIND__KIND_DISPERSED ? (int) s_rand((uint32_t) nd) : district;
            if (brk_index_put_unit(x, &u, ud) < 0)
                abort();
        }
    }
    return x;
}

typedef struct {
    const char *label;
    void (*fill)(Haven__Need *, Haven__Child **, char **);
} s_need_t;

static Haven__Child s_kids[4];

static void
n_teen_son_dog(Haven__Need *n, Haven__Child **kids, char **codes)
{
    n->has_gender = 1;
    n->gender = HAVEN__GENDER__GENDER_WOMAN;
    haven__child__init(&s_kids[0]);
    s_kids[0].age = 14;
    s_kids[0].sex = "m";
    kids[0] = &s_kids[0];
    n->children = kids;
    n->n_children = 1;
    n->has_pets = 1;
    n->pets = HAVEN__PET__PET_DOG;
    codes[0] = "E07000008";
    n->exclude = codes;
    n->n_exclude = 1;
    n->near = "E07000008";
}

static void
n_wheelchair_nrpf(Haven__Need *n, Haven__Child **kids, char **codes)
{
    (void) kids;
    (void) codes;
    n->has_gender = 1;
    n->gender = HAVEN__GENDER__GENDER_WOMAN;
    n->has_access = 1;
    n->access = HAVEN__FEATURE__FEATURE_WHEELCHAIR;
    n->has_nrpf = n->nrpf = 1;
    n->near = "E08000025";   /* Birmingham */
}

static void
n_young_woman_near(Haven__Need *n, Haven__Child **kids, char **codes)
{
    (void) kids;
    (void) codes;
    n->has_gender = 1;
    n->gender = HAVEN__GENDER__GENDER_WOMAN;
    n->has_age = 1;
    n->age = 19;
    n->near = "E09000001";
    n->has_within_km = 1;
    n->within_km = 30;
}

static void
n_any_woman(Haven__Need *n, Haven__Child **kids, char **codes)
{
    (void) kids;
    (void) codes;
    n->has_gender = 1;
    n->gender = HAVEN__GENDER__GENDER_WOMAN;
    n->near = "E06000031";
}

static void
n_man_complex(Haven__Need *n, Haven__Child **kids, char **codes)
{
    (void) kids;
    (void) codes;
    n->has_gender = 1;
    n->gender = HAVEN__GENDER__GENDER_MAN;
    n->has_complex_needs = 1;
    n->complex_needs = HAVEN__COMPLEX__COMPLEX_SUBSTANCE_USE;
}

static const s_need_t s_needs[] = {
    { "mother, son 14, dog, not Cambridge", n_teen_son_dog },
    { "wheelchair + NRPF near Birmingham", n_wheelchair_nrpf },
    { "woman 19 within 30 km of London", n_young_woman_near },
    { "any woman near Peterborough", n_any_woman },
    { "man with substance-use needs", n_man_complex },
};

#define REPS 41

int
main(int argc, char **argv)
{
    char err[256];
    brk_districts_t *d = NULL;
    if (argc < 2 || brk_districts_load(argv[1], &d, err, sizeof err) < 0) {
        fprintf(stderr, "usage: bench_match DISTRICTS.csv [UNITS ...]%s%s\n", argc >= 2 ? ": " : "",
                argc >= 2 ? err : "");
        return 64;
    }
    uint32_t sizes[8] = { 10000, 100000, 1000000 };
    int n_sizes = 3;
    if (argc > 2) {
        n_sizes = 0;
        for (int i = 2; i < argc && n_sizes < 8; i++)
            sizes[n_sizes++] = (uint32_t) strtoul(argv[i], NULL, 10);
    }
    printf("| units | available | need | matching | search p50 us | p99 us | floor p50 us | ratio |\n");
    printf("|---:|---:|---|---:|---:|---:|---:|---:|\n");
    for (int s = 0; s < n_sizes; s++) {
        brk_index_t *x = s_generate(d, sizes[s]);
        size_t n_avail;
        const brk_avail_t *avail = brk_index_available(x, &n_avail);
        for (size_t k = 0; k < sizeof s_needs / sizeof s_needs[0]; k++) {
            Haven__Need need = HAVEN__NEED__INIT;
            Haven__Child *kids[4];
            char *codes[4];
            s_needs[k].fill(&need, kids, codes);
            double t[REPS], f[REPS];
            uint32_t matching = 0;
            volatile uint64_t sink = 0;
            for (int rep = 0; rep < REPS; rep++) {
                /* reference: one field of every available unit */
                double t0 = s_now_us();
                uint64_t acc = 0;
                for (size_t i = 0; i < n_avail; i++)
                    acc += avail[i].max_occupants;
                sink += acc;
                f[rep] = s_now_us() - t0;

                /* the search as the broker runs it: compile, match, rank */
                t0 = s_now_us();
                brk_need_t *cn = NULL;
                brk_result_t r;
                if (brk_need_compile(&need, d, NOW, &cn, err, sizeof err) < 0
                    || brk_match_search(cn, x, 10, &r) < 0)
                    abort();
                t[rep] = s_now_us() - t0;
                matching = r.matching;
                brk_result_free(&r);
                free(cn);
            }
            qsort(t, REPS, sizeof t[0], bench_cmp);
            qsort(f, REPS, sizeof f[0], bench_cmp);
            double p50 = t[REPS / 2], p99 = t[REPS - 1], fl = f[REPS / 2];
            printf("| %u | %zu | %s | %u | %.1f | %.1f | %.1f | %.1fx |\n", sizes[s], n_avail,
                   s_needs[k].label, matching, p50, p99, fl, fl > 0 ? p50 / fl : 0);
        }
        brk_index_destroy(&x);
    }
    brk_districts_destroy(&d);
    return 0;
}
