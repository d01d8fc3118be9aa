/* SPDX-License-Identifier: MIT */
/* The catalog parser: the example validates; mistakes name their line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../../agent/catalog.h"

static const char *path = "/tmp/haven-catalog-test.ini";

static int
s_load(const char *text, agt_catalog_t **c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    return agt_catalog_load(path, c, err, errlen);
}

Test(catalog, the_shipped_example_validates)
{
    char p[512], err[512];
    agt_catalog_t *c = NULL;
    const char *root = getenv("HAVEN_SOURCE_ROOT");
    snprintf(p, sizeof p, "%s/config/catalog.ini.example", root ? root : ".");
    /* the example is world-readable in git; copy it private first */
    FILE *in = fopen(p, "r");
    cr_assert(in, "cannot open %s", p);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, in);
    fclose(in);
    text[n] = '\0';
    cr_assert_eq(s_load(text, &c, err, sizeof err), 0, "%s", err);
    Haven__Service *s = agt_catalog_service(c);
    cr_assert_eq(s->genders, HAVEN__GENDERS__GENDERS_WOMEN);
    cr_assert_eq(s->max_boy_age, 12);
    cr_assert_eq(s->pets, HAVEN__PET__PET_DOG | HAVEN__PET__PET_CAT);
    cr_assert_eq(s->n_languages, 3);
    cr_assert_eq(s->confirm_every_s, 86400);
    size_t nu;
    Haven__UnitSpec **u = agt_catalog_units(c, &nu);
    cr_assert_eq(nu, 1);
    cr_assert_str_eq(u[0]->name, "room-1");
    cr_assert_eq(u[0]->max_occupants, 3);
    cr_assert_eq(u[0]->features, HAVEN__FEATURE__FEATURE_STEP_FREE | HAVEN__FEATURE__FEATURE_GROUND_FLOOR);
    cr_assert_str_eq(u[0]->district, "E07000008");
    cr_assert_str_eq(agt_catalog_address(c, "room-1"), "1 Example Road, Cambridge");
    cr_assert_null(agt_catalog_address(c, "room-9"));
    agt_catalog_destroy(&c);
    cr_assert_null(c);
}

static void
s_refused(const char *text, const char *line, const char *word)
{
    char err[512];
    agt_catalog_t *c = NULL;
    cr_assert_eq(s_load(text, &c, err, sizeof err), -EINVAL, "accepted: %s", text);
    cr_assert(strstr(err, line), "'%s' not in: %s", line, err);
    cr_assert(strstr(err, word), "'%s' not in: %s", word, err);
    cr_assert_null(c);
}

Test(catalog, mistakes_name_their_line)
{
    s_refused("[service]\ngenders = women\nmax_boy_age = twelve\n", "line 3", "max_boy_age");
    s_refused("[service]\ngenders = ladies\n", "line 2", "genders");
    s_refused("[service]\ngenders = women\npets = dog,parrot\n", "line 3", "parrot");
    s_refused("[service]\ngenders = women\nlanguages = en,polish\n", "line 3", "polish");
    s_refused("[service]\ngenders = women\nconfirm_every = 10s\n", "line 3", "confirm_every");
    s_refused("[service]\ngenders = women\ncolour = blue\n", "line 3", "unknown key 'colour'");
    s_refused("[service]\ngenders = women\n[unit room-1]\nmax_occupants = 2\nwheelchair = maybe\n", "line 5",
              "wheelchair");
    s_refused("[service]\ngenders = women\n[unit Room 1]\nmax_occupants = 2\n", "line 4", "unit name");
    s_refused("[service]\ngenders = women\n[unit room-1]\nmax_occupants = 2\nmax_occupants = 3\n",
              "line 5", "twice");
    s_refused("[service]\ngenders = women\n[unit room-1]\ndistrict = Cambridge\nmax_occupants = 2\n",
              "line 4", "district");
    s_refused("[service]\ngenders = women\n[hostel]\nx = 1\n", "line 4", "unknown section");
    s_refused("[service]\ngenders = women\n[unit room-1]\nbedrooms = 1\n", "line 4", "needs max_occupants");
    s_refused("[unit room-1]\nmax_occupants = 2\n", "no [service]", "service");
    s_refused("[service]\nchildren = yes\n", "needs genders", "genders");
    s_refused("[service]\ngenders = women\nthis line has no equals\n", "line 3", "INI");
}

Test(catalog, addresses_need_a_private_file)
{
    char err[512];
    agt_catalog_t *c = NULL;
    FILE *f = fopen(path, "w");
    fputs("[service]\ngenders = women\n[unit room-1]\nmax_occupants = 2\naddress = 1 Road\n", f);
    fclose(f);
    chmod(path, 0644);
    cr_assert_eq(agt_catalog_load(path, &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "chmod 600"), "%s", err);
    chmod(path, 0600);
    cr_assert_eq(agt_catalog_load(path, &c, err, sizeof err), 0, "%s", err);
    agt_catalog_destroy(&c);
    cr_assert_eq(agt_catalog_load("/nonexistent/catalog.ini", &c, err, sizeof err), -ENOENT);
}
