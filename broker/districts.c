/* SPDX-License-Identifier: MIT */
/* The districts table, read with libcsv. */
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "../proto/wire.h"
#include "districts.h"

typedef struct {
    char code[10];
    char *name;
    char *region;
    double lat, lon;             /* radians */
} s_district_t;

struct brk_districts {
    s_district_t *rows;
    size_t count;
    double **distance;           /* lazily computed rows, count x count */
};

typedef struct {
    brk_districts_t *d;
    char *fields[5];
    int field;
    int line;
    int failed;
    char *err;
    size_t errlen;
} s_parse_t;

static void
s_field(void *data, size_t len, void *user)
{
    s_parse_t *p = user;
    if (p->failed)
        return;
    if (p->field < 5 && !p->fields[p->field]) {
        p->fields[p->field] = strndup(data ? data : "", len);
    }
    p->field++;
}

static int
s_coord(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < lo || v > hi)
        return -EINVAL;
    *out = v * M_PI / 180.0;
    return 0;
}

static void
s_row(int c, void *user)
{
    (void) c;
    s_parse_t *p = user;
    p->line++;
    if (p->failed)
        goto out;
    if (p->field != 5) {
        snprintf(p->err, p->errlen, "line %d: expected 5 fields (code,name,region,lat,lon), found %d",
                 p->line, p->field);
        p->failed = 1;
        goto out;
    }
    if (p->line == 1) {
        if (strcmp(p->fields[0], "code") || strcmp(p->fields[1], "name")
            || strcmp(p->fields[2], "region") || strcmp(p->fields[3], "lat")
            || strcmp(p->fields[4], "lon")) {
            snprintf(p->err, p->errlen, "line 1: header must be code,name,region,lat,lon");
            p->failed = 1;
        }
        goto out;
    }
    if (p->d->count >= BRK_DISTRICTS_MAX) {
        snprintf(p->err, p->errlen, "line %d: more than %d districts", p->line, BRK_DISTRICTS_MAX);
        p->failed = 1;
        goto out;
    }
    s_district_t r = { 0 };
    if (!hv_valid_district(p->fields[0])) {
        snprintf(p->err, p->errlen, "line %d: '%.16s' is not a district code", p->line, p->fields[0]);
        p->failed = 1;
        goto out;
    }
    if (brk_districts_find(p->d, p->fields[0]) >= 0) {
        snprintf(p->err, p->errlen, "line %d: district %s appears twice", p->line, p->fields[0]);
        p->failed = 1;
        goto out;
    }
    if (!hv_valid_text(p->fields[1], HV_TEXT_MAX) || !hv_valid_text(p->fields[2], HV_TEXT_MAX)) {
        snprintf(p->err, p->errlen, "line %d: name and region must be 1-%d printable characters",
                 p->line, HV_TEXT_MAX);
        p->failed = 1;
        goto out;
    }
    if (s_coord(p->fields[3], -90, 90, &r.lat) < 0 || s_coord(p->fields[4], -180, 180, &r.lon) < 0) {
        snprintf(p->err, p->errlen, "line %d: lat must be -90..90 and lon -180..180", p->line);
        p->failed = 1;
        goto out;
    }
    memcpy(r.code, p->fields[0], 10);
    r.name = p->fields[1];
    r.region = p->fields[2];
    p->fields[1] = p->fields[2] = NULL;
    p->d->rows[p->d->count++] = r;
out:
    for (int i = 0; i < 5; i++) {
        free(p->fields[i]);
        p->fields[i] = NULL;
    }
    p->field = 0;
}

int
brk_districts_load(const char *path, brk_districts_t **out, char *err, size_t errlen)
{
    struct csv_parser csv;
    char buf[4096];
    int rc = 0;
    brk_districts_t *d = calloc(1, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!d || !f) {
        rc = f ? -ENOMEM : -errno;
        snprintf(err, errlen, "cannot read districts file %s: %s", path, strerror(-rc));
        if (f)
            fclose(f);
        free(d);
        return rc;
    }
    d->rows = calloc(BRK_DISTRICTS_MAX, sizeof *d->rows);
    s_parse_t p = { .d = d, .err = err, .errlen = errlen };
    if (!d->rows || csv_init(&csv, CSV_STRICT | CSV_APPEND_NULL) != 0) {
        fclose(f);
        brk_districts_destroy(&d);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n;
    while (!p.failed && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (csv_parse(&csv, buf, n, s_field, s_row, &p) != n) {
            snprintf(err, errlen, "line %d: %s", p.line + 1, csv_strerror(csv_error(&csv)));
            p.failed = 1;
        }
    }
    if (!p.failed)
        csv_fini(&csv, s_field, s_row, &p);
    csv_free(&csv);
    fclose(f);
    for (int i = 0; i < 5; i++)
        free(p.fields[i]);
    if (!p.failed && d->count == 0) {
        snprintf(err, errlen, "no districts");
        p.failed = 1;
    }
    if (p.failed) {
        brk_districts_destroy(&d);
        /* Prefix the file name so the message stands alone. */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s %s", path, err);
        snprintf(err, errlen, "%s", tmp);
        return -EINVAL;
    }
    *out = d;
    return rc;
}

void
brk_districts_destroy(brk_districts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_districts_t *d = *self_p;
    for (size_t i = 0; d->rows && i < d->count; i++) {
        free(d->rows[i].name);
        free(d->rows[i].region);
        if (d->distance)
            free(d->distance[i]);
    }
    free(d->distance);
    free(d->rows);
    free(d);
    *self_p = NULL;
}

size_t brk_districts_count(const brk_districts_t *self) { return self->count; }

int
brk_districts_find(const brk_districts_t *self, const char *code)
{
    /* A few hundred rows: a linear scan costs less than keeping a map, and
     * searches resolve their codes once, not per unit. */
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->rows[i].code, code) == 0)
            return (int) i;
    return -ENOENT;
}

const char *brk_districts_code(const brk_districts_t *self, int i) { return self->rows[i].code; }
const char *brk_districts_name(const brk_districts_t *self, int i) { return self->rows[i].name; }
const char *brk_districts_region(const brk_districts_t *self, int i) { return self->rows[i].region; }

const char *
brk_districts_region_of(const brk_districts_t *self, int idx)
{
    return idx >= 0 && (size_t) idx < self->count ? self->rows[idx].region : "";
}

double
brk_districts_distance(const brk_districts_t *self, int a, int b)
{
    const s_district_t *p = &self->rows[a], *q = &self->rows[b];
    double dlat = q->lat - p->lat, dlon = q->lon - p->lon;
    double h = sin(dlat / 2) * sin(dlat / 2)
             + cos(p->lat) * cos(q->lat) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * 6371.0 * asin(fmin(1.0, sqrt(h)));
}

const double *
brk_districts_row(brk_districts_t *self, int ref)
{
    if (ref < 0 || (size_t) ref >= self->count)
        return NULL;
    if (!self->distance && !(self->distance = calloc(self->count, sizeof *self->distance)))
        return NULL;
    if (!self->distance[ref]) {
        double *row = malloc(self->count * sizeof *row);
        if (!row)
            return NULL;
        for (size_t i = 0; i < self->count; i++)
            row[i] = brk_districts_distance(self, ref, (int) i);
        self->distance[ref] = row;
    }
    return self->distance[ref];
}

const char *
brk_districts_region_find(const brk_districts_t *self, const char *name, char *list, size_t len)
{
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < self->count; i++) {
        const char *region = self->rows[i].region;
        if (name && strcasecmp(region, name) == 0)
            return region;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(self->rows[j].region, region) == 0;
        if (!seen && used < len) {
            int w = snprintf(list + used, len - used, "%s%s", used ? ", " : "", region);
            if (w > 0)
                used += (size_t) w;
        }
    }
    return NULL;
}
