/* SPDX-License-Identifier: MIT */
/* The districts table: the full UK file, distances, and refusals. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/districts.h"

static const char *
s_uk(void)
{
    static char path[512];
    const char *dir = getenv("HAVEN_SHARED_DATA");
    snprintf(path, sizeof path, "%s/uk-local-authorities.csv", dir ? dir : "../shared/data");
    return path;
}

Test(districts, loads_the_uk_table)
{
    brk_districts_t *d = NULL;
    char err[256];
    cr_assert_eq(brk_districts_load(s_uk(), &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(brk_districts_count(d), 361);
    int cam = brk_districts_find(d, "E07000008");
    int pet = brk_districts_find(d, "E06000031");
    int lon = brk_districts_find(d, "E09000001");
    int edi = brk_districts_find(d, "S12000036");
    cr_assert(cam >= 0 && pet >= 0 && lon >= 0 && edi >= 0);
    cr_assert_str_eq(brk_districts_name(d, cam), "Cambridge");
    cr_assert_str_eq(brk_districts_region(d, cam), "East of England");
    /* The reference figures in shared/data/README.md. */
    cr_assert_float_eq(brk_districts_distance(d, cam, pet), 52.5, 0.05);
    cr_assert_float_eq(brk_districts_distance(d, cam, lon), 77.7, 0.05);
    cr_assert_float_eq(brk_districts_distance(d, cam, edi), 470.6, 0.05);
    cr_assert_float_eq(brk_districts_distance(d, cam, cam), 0.0, 1e-9);
    cr_assert_eq(brk_districts_find(d, "E99999999"), -ENOENT);
    brk_districts_destroy(&d);
    cr_assert_null(d);
}

static int
s_load_text(const char *text, char *err, size_t errlen)
{
    const char *path = "/tmp/haven-districts-test.csv";
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    brk_districts_t *d = NULL;
    int rc = brk_districts_load(path, &d, err, errlen);
    brk_districts_destroy(&d);
    return rc;
}

Test(districts, refuses_bad_files_with_the_line)
{
    char err[512];
    cr_assert_eq(s_load_text("code,name\nE07000008,Cambridge\n", err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 1"), "%s", err);
    cr_assert_eq(s_load_text("code,name,region,lat,lon\nE07000008,Cambridge,East,52.2,0.13\n"
                             "E07000008,Again,East,52.2,0.13\n", err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 3") && strstr(err, "twice"), "%s", err);
    cr_assert_eq(s_load_text("code,name,region,lat,lon\nE07000008,Cambridge,East,152.2,0.13\n",
                             err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 2") && strstr(err, "lat"), "%s", err);
    cr_assert_eq(s_load_text("code,name,region,lat,lon\nCAMBRIDGE,Cambridge,East,52.2,0.13\n",
                             err, sizeof err), -EINVAL);
    cr_assert_eq(s_load_text("code,name,region,lat,lon\n", err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "no districts"), "%s", err);
    cr_assert_eq(s_load_text("code,name,region,lat,lon\n\"E07000008,Cam,East,52,0\n",
                             err, sizeof err), -EINVAL);
}
