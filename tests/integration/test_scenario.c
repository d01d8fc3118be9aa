/* SPDX-License-Identifier: MIT */
/* A realistic region through the real programs: the Cambridgeshire
 * strategy's three refuges (32 women, 55 children), twelve dispersed
 * properties (two in each of Cambridge, East Cambridgeshire, Fenland,
 * Huntingdonshire, South Cambridgeshire and Peterborough) and a young
 * women's hostel; then the searches an IDVA makes at 2 a.m. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char idva[512];

/* Refuges: rooms for one woman and her children; children places sum to 55. */
static const struct {
    const char *id, *district, *rules;
    int rooms;
    int children[12];            /* children places per room */
} refuges[] = {
    { "cambridge-refuge", "E07000008",
      "genders = women\nchildren = yes\nmax_boy_age = 12\npets = none\nlanguages = en,pl\n", 12,
      { 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1 } },                          /* 18 */
    { "peterborough-refuge", "E06000031",
      "genders = women\nchildren = yes\nmax_boy_age = 16\npets = dog\nnrpf = yes\n", 10,
      { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 } },                                /* 20 */
    { "huntingdon-refuge", "E07000011",
      "genders = women\ntrans_inclusive = yes\nchildren = yes\nmax_boy_age = 14\npets = none\n", 10,
      { 1, 1, 2, 2, 2, 2, 2, 2, 2, 1 } },                                /* 17 */
};

static const char *const dispersed_districts[] = {
    "E07000008", "E07000009", "E07000010", "E07000011", "E07000012", "E06000031",
};

static void
s_open(const char *conf, const char *unit)
{
    hh_run(&h, &r, "haven-agent", "--config", conf, "set", unit, "available", NULL);
    cr_assert_eq(r.code, 0, "set %s: %s", unit, r.err);
}

static void
s_region(void)
{
    char catalog[16384], conf[512];
    int women = 0, children = 0;
    for (size_t p = 0; p < 3; p++) {
        int n = snprintf(catalog, sizeof catalog, "[service]\n%sconfirm_every = 24h\n", refuges[p].rules);
        for (int i = 0; i < refuges[p].rooms; i++) {
            n += snprintf(catalog + n, sizeof catalog - (size_t) n,
                          "[unit room-%d]\nmax_occupants = %d\naddress = Room %d, refuge %zu\n",
                          i + 1, 1 + refuges[p].children[i], i + 1, p);
            women++;
            children += refuges[p].children[i];
        }
        hh_provider(&h, refuges[p].id, "refuge", refuges[p].district, catalog, conf, sizeof conf);
        hh_run(&h, &r, "haven-agent", "--config", conf, "publish", NULL);
        cr_assert_eq(r.code, 0, "publish %s: %s", refuges[p].id, r.err);
        /* Three rooms open in each refuge, among them the largest. */
        s_open(conf, "room-3");
        s_open(conf, "room-4");
        s_open(conf, "room-9");
    }
    cr_assert_eq(women, 32);
    cr_assert_eq(children, 55);

    int n = snprintf(catalog, sizeof catalog,
                     "[service]\ngenders = any\ntrans_inclusive = yes\nchildren = yes\n"
                     "pets = dog,cat\nnrpf = yes\nlanguages = en,ar\nconfirm_every = 48h\n");
    for (int d = 0; d < 6; d++)
        for (int k = 0; k < 2; k++)
            n += snprintf(catalog + n, sizeof catalog - (size_t) n,
                          "[unit prop-%d-%d]\ndistrict = %s\nmax_occupants = %d\nself_contained = yes\n%s",
                          d, k, dispersed_districts[d], k ? 6 : 3,
                          d == 3 && k == 0 ? "wheelchair = yes\naccessible_bathroom = yes\n" : "");
    hh_provider(&h, "cambs-dispersed", "dispersed", "E07000008", catalog, conf, sizeof conf);
    hh_run(&h, &r, "haven-agent", "--config", conf, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish dispersed: %s", r.err);
    for (int d = 0; d < 6; d++)
        for (int k = 0; k < 2; k++) {
            char unit[32];
            snprintf(unit, sizeof unit, "prop-%d-%d", d, k);
            s_open(conf, unit);
        }

    hh_provider(&h, "young-womens-hostel", "hostel", "E07000008",
                "[service]\ngenders = women\nadult_min_age = 16\nadult_max_age = 25\nchildren = no\n"
                "complex_needs = mental-health,substance-use\nconfirm_every = 24h\n"
                "[unit bed-1]\nmax_occupants = 1\n[unit bed-2]\nmax_occupants = 1\n", conf, sizeof conf);
    hh_run(&h, &r, "haven-agent", "--config", conf, "publish", NULL);
    cr_assert_eq(r.code, 0);
    s_open(conf, "bed-1");

    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
}

static void setup(void) { hh_start(&h, NULL); s_region(); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(scenario, .init = setup, .fini = teardown, .timeout = 300);

/* Run a search with the given options (NULL-terminated) and parse it. */
static json_t *
s_search(const char *first, ...)
{
    const char *argv[40] = { "haven", "--config", idva, "--json", "search" };
    int n = 5;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    /* hh_run is variadic; pass up to 24 arguments through */
    hh_run(&h, &r, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8],
           argv[9], argv[10], argv[11], argv[12], argv[13], argv[14], argv[15], argv[16], argv[17],
           argv[18], argv[19], argv[20], argv[21], argv[22], argv[23], NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    return hh_json(&r);
}

static int
s_int(json_t *o, const char *k)
{
    return (int) json_integer_value(json_object_get(o, k));
}

static int
s_relax(json_t *doc, const char *rule)
{
    json_t *arr = json_object_get(doc, "relaxations"), *x;
    size_t i;
    json_array_foreach(arr, i, x)
        if (strcmp(json_string_value(json_object_get(x, "rule")), rule) == 0)
            return s_int(x, "matching");
    return 0;
}

Test(scenario, mother_with_a_teenage_son_and_a_dog_not_in_cambridge)
{
    json_t *doc = s_search("--gender", "woman", "--age", "34", "--child", "14:m", "--pet", "dog",
                           "--exclude", "E07000008", "--near", "E07000008", "--limit", "20", NULL);
    /* Peterborough's three open rooms (boys to 16, dogs) and the ten dispersed
     * properties outside Cambridge. */
    cr_assert_eq(s_int(doc, "matching"), 13);
    json_t *offers = json_object_get(doc, "offers"), *o;
    size_t i;
    int prev = -1;
    json_array_foreach(offers, i, o) {
        cr_assert_str_neq(json_string_value(json_object_get(o, "district")), "E07000008",
                          "never in the excluded district");
        cr_assert_str_neq(json_string_value(json_object_get(o, "provider_id")), "cambridge-refuge");
        int d = s_int(o, "distance_km");
        cr_assert_geq(d, prev, "nearest first");
        prev = d;
    }
    /* Huntingdon takes boys to 14 but no dogs; the two Cambridge properties
     * fail only the exclusion. */
    cr_assert_eq(s_relax(doc, "pets"), 3);
    cr_assert_eq(s_relax(doc, "excluded_district"), 2);
    json_decref(doc);
}

Test(scenario, older_boy_gets_the_relaxation_sentence)
{
    json_t *doc = s_search("--gender", "woman", "--child", "15:m", "--kind", "refuge", NULL);
    cr_assert_eq(s_int(doc, "matching"), 3, "only Peterborough takes a 15-year-old boy");
    cr_assert_eq(s_relax(doc, "max_boy_age"), 6);
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "search", "--gender", "woman", "--child", "17:m",
           "--kind", "refuge", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "No unit matches"), "%s", r.out);
    cr_assert(strstr(r.out, "9 more would match if boys up to 17 were accepted"), "%s", r.out);
}

Test(scenario, wheelchair_user_with_no_recourse_to_public_funds)
{
    json_t *doc = s_search("--gender", "woman", "--wheelchair", "--nrpf", NULL);
    cr_assert_eq(s_int(doc, "matching"), 1);
    json_t *o = json_array_get(json_object_get(doc, "offers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "unit")), "prop-3-0");
    cr_assert_str_eq(json_string_value(json_object_get(o, "district_name")), "Huntingdonshire");
    json_decref(doc);
}

Test(scenario, young_woman_with_complex_needs_close_to_home)
{
    json_t *doc = s_search("--gender", "woman", "--age", "19", "--complex", "substance-use",
                           "--home", "E07000008", NULL);
    cr_assert_eq(s_int(doc, "matching"), 1);
    json_t *o = json_array_get(json_object_get(doc, "offers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "provider_id")), "young-womens-hostel");
    cr_assert_eq(s_int(o, "distance_km"), 0);
    json_decref(doc);
    /* out of area: her home district is excluded, and nothing else fits */
    doc = s_search("--gender", "woman", "--age", "19", "--complex", "substance-use",
                   "--home", "E07000008", "--out-of-area", NULL);
    cr_assert_eq(s_int(doc, "matching"), 0);
    cr_assert_eq(s_relax(doc, "excluded_district"), 1);
    json_decref(doc);
}

Test(scenario, large_family_within_reach_with_polish_preferred)
{
    json_t *doc = s_search("--gender", "woman", "--child", "2:f", "--child", "4:f", "--child", "6:m",
                           "--child", "9:f", "--near", "E07000008", "--within", "40",
                           "--language", "pl", NULL);
    /* Five people: only the six-person dispersed properties within 40 km of
     * Cambridge (Cambridge, East and South Cambridgeshire, Huntingdonshire). */
    cr_assert_eq(s_int(doc, "matching"), 4);
    cr_assert_geq(s_relax(doc, "max_occupants"), 1);
    json_t *o = json_array_get(json_object_get(doc, "offers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "district")), "E07000008");
    json_decref(doc);
}
