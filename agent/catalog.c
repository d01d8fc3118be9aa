/* SPDX-License-Identifier: MIT */
/* A provider's catalog (see catalog.h), read with libinih. */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/inifile.h"
#include "../proto/names.h"
#include "../proto/wire.h"
#include "catalog.h"

#define UNITS_MAX HV_UNITS_WIRE_MAX
#define ADDRESS_MAX 512
/* The catalog is read whole into locked memory: room for UNITS_MAX units
 * of a dozen short lines and an address each. */
#define CATALOG_FILE_MAX (64u << 20)

typedef struct {
    Haven__UnitSpec spec;
    char *address;
    uint32_t seen;               /* bit per unit key, to refuse repeats */
    int line;
} s_unit_t;

struct agt_catalog {
    Haven__Service service;
    uint32_t service_seen;
    bool has_service;
    s_unit_t *units;
    Haven__UnitSpec **specs;
    size_t n_units, cap_units;
    /* parse state */
    const char *path;
    int lineno;
    int failed;
    char *err;
    size_t errlen;
};

static int
s_fail(agt_catalog_t *c, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!c->failed)
        snprintf(c->err, c->errlen, "%s line %d: %s", c->path, c->lineno, msg);
    c->failed = 1;
    return 0;
}

static int
s_bool(agt_catalog_t *c, const char *name, const char *v, protobuf_c_boolean *out)
{
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
        *out = 0;
    else
        return s_fail(c, "%s must be yes or no, not '%s'", name, v);
    return 1;
}

static int
s_uint(agt_catalog_t *c, const char *name, const char *v, uint32_t lo, uint32_t hi,
       protobuf_c_boolean *has, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || *v == '-' || n < lo || n > hi)
        return s_fail(c, "%s must be a whole number from %u to %u, not '%s'", name, lo, hi, v);
    *has = 1;
    *out = (uint32_t) n;
    return 1;
}

static int
s_bits(agt_catalog_t *c, const char *name, const char *v, int (*parse)(const char *),
       const char *allowed, protobuf_c_boolean *has, uint32_t *out)
{
    char bad[64];
    if (hv_bits_parse(v, parse, out, bad, sizeof bad) < 0)
        return s_fail(c, "%s: unknown value '%s' (use none or any of %s)", name, bad, allowed);
    *has = 1;
    return 1;
}

/* Keys may be given once: a repeat is almost always a copy-paste slip. */
static int
s_once(agt_catalog_t *c, uint32_t *seen, int bit, const char *name)
{
    if (*seen & (1u << bit))
        return s_fail(c, "%s is given twice", name);
    *seen |= 1u << bit;
    return 1;
}

static const char *const s_service_keys[] = {
    "genders", "trans_inclusive", "adult_min_age", "adult_max_age", "children",
    "max_children", "max_boy_age", "pets", "nrpf", "complex_needs", "specialist",
    "languages", "confirm_every", NULL
};

static int
s_languages(agt_catalog_t *c, const char *v)
{
    Haven__Service *s = &c->service;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
        if (!hv_valid_language(w))
            return s_fail(c, "languages: '%s' is not an ISO 639-1 code (two lower-case letters)", w);
        if (s->n_languages >= HV_LIST_MAX)
            return s_fail(c, "languages: at most %d", HV_LIST_MAX);
        char **l = realloc(s->languages, (s->n_languages + 1) * sizeof *l);
        if (!l)
            return 0;
        s->languages = l;
        if (!(l[s->n_languages] = strdup(w)))
            return 0;
        s->n_languages++;
    }
    return 1;
}

static int
s_service(agt_catalog_t *c, const char *name, const char *v)
{
    Haven__Service *s = &c->service;
    int k;
    for (k = 0; s_service_keys[k]; k++)
        if (strcmp(s_service_keys[k], name) == 0)
            break;
    if (!s_service_keys[k])
        return s_fail(c, "unknown key '%s' in [service]", name);
    if (!s_once(c, &c->service_seen, k, name))
        return 0;
    switch (k) {
    case 0: {
        int g = hv_genders_parse(v);
        if (g < 0)
            return s_fail(c, "genders must be women, men or any, not '%s'", v);
        s->has_genders = 1;
        s->genders = g;
        return 1;
    }
    case 1: s->has_trans_inclusive = 1; return s_bool(c, name, v, &s->trans_inclusive);
    case 2: return s_uint(c, name, v, 16, 120, &s->has_adult_min_age, &s->adult_min_age);
    case 3: return s_uint(c, name, v, 16, 120, &s->has_adult_max_age, &s->adult_max_age);
    case 4: s->has_children = 1; return s_bool(c, name, v, &s->children);
    case 5: return s_uint(c, name, v, 0, 20, &s->has_max_children, &s->max_children);
    case 6: return s_uint(c, name, v, 0, 25, &s->has_max_boy_age, &s->max_boy_age);
    case 7: return s_bits(c, name, v, hv_pet_parse, "dog, cat, small", &s->has_pets, &s->pets);
    case 8: s->has_nrpf = 1; return s_bool(c, name, v, &s->nrpf);
    case 9: return s_bits(c, name, v, hv_complex_parse, "mental-health, substance-use",
                          &s->has_complex_needs, &s->complex_needs);
    case 10: {
        int sp = strcmp(v, "none") == 0 ? 0 : hv_specialist_parse(v);
        if (sp < 0)
            return s_fail(c, "specialist must be lgbt, bame or none, not '%s'", v);
        s->has_specialist = 1;
        s->specialist = sp;
        return 1;
    }
    case 11: return s_languages(c, v);
    case 12: {
        int64_t secs;
        if (hv_duration_parse(v, &secs) < 0 || secs < 60 || secs > 90 * 86400)
            return s_fail(c, "confirm_every must be a duration from 1m to 90d (e.g. 24h), not '%s'", v);
        s->has_confirm_every_s = 1;
        s->confirm_every_s = (uint32_t) secs;
        return 1;
    }
    }
    return 0;
}

static const char *const s_unit_keys[] = {
    "bedrooms", "max_occupants", "cots", "district", "address",
    /* then the feature flags, in Feature bit order */
    "self_contained", "step_free", "wheelchair", "accessible_bathroom", "ground_floor",
    "sensory", "personal_care", "carer_room", NULL
};

static int
s_unit(agt_catalog_t *c, s_unit_t *u, const char *name, const char *v)
{
    Haven__UnitSpec *s = &u->spec;
    int k;
    for (k = 0; s_unit_keys[k]; k++)
        if (strcmp(s_unit_keys[k], name) == 0)
            break;
    if (!s_unit_keys[k])
        return s_fail(c, "unknown key '%s' in [unit %s]", name, s->name);
    if (!s_once(c, &u->seen, k, name))
        return 0;
    switch (k) {
    case 0: return s_uint(c, name, v, 0, 20, &s->has_bedrooms, &s->bedrooms);
    case 1: return s_uint(c, name, v, 1, 30, &s->has_max_occupants, &s->max_occupants);
    case 2: return s_uint(c, name, v, 0, 10, &s->has_cots, &s->cots);
    case 3:
        if (!hv_valid_district(v))
            return s_fail(c, "district '%s' is not a district code (e.g. E07000008)", v);
        return (s->district = strdup(v)) != NULL;
    case 4:
        if (!hv_valid_text(v, ADDRESS_MAX))
            return s_fail(c, "address must be 1-%d printable characters", ADDRESS_MAX);
        return (u->address = strdup(v)) != NULL;
    default: {
        protobuf_c_boolean on;
        if (!s_bool(c, name, v, &on))
            return 0;
        s->has_features = 1;
        if (on)
            s->features |= 1u << (k - 5);
        return 1;
    }
    }
}

static s_unit_t *
s_unit_section(agt_catalog_t *c, const char *unit)
{
    for (size_t i = 0; i < c->n_units; i++)
        if (strcmp(c->units[i].spec.name, unit) == 0)
            return &c->units[i];     /* inih calls us once per key */
    if (!hv_valid_id(unit)) {
        s_fail(c, "unit name '%s' is not valid: use 1-64 of a-z, 0-9, '-', '_', '.'", unit);
        return NULL;
    }
    if (c->n_units >= UNITS_MAX) {
        s_fail(c, "more than %d units", UNITS_MAX);
        return NULL;
    }
    if (c->n_units == c->cap_units) {
        size_t cap = c->cap_units ? c->cap_units * 2 : 16;
        s_unit_t *u = realloc(c->units, cap * sizeof *u);
        if (!u)
            return NULL;
        c->units = u;
        c->cap_units = cap;
    }
    s_unit_t *u = &c->units[c->n_units];
    memset(u, 0, sizeof *u);
    haven__unit_spec__init(&u->spec);
    u->spec.name = strdup(unit);
    u->line = c->lineno;
    if (!u->spec.name)
        return NULL;
    c->n_units++;
    return u;
}

static int
s_handler(void *user, const char *section, const char *name, const char *value)
{
    agt_catalog_t *c = user;
    if (c->failed)
        return 0;
    if (strcmp(section, "service") == 0) {
        c->has_service = true;
        return s_service(c, name, value);
    }
    if (strncmp(section, "unit ", 5) == 0) {
        s_unit_t *u = s_unit_section(c, section + 5);
        return u ? s_unit(c, u, name, value) : 0;
    }
    return s_fail(c, "unknown section [%s]: use [service] and [unit NAME]", section);
}

int
agt_catalog_load(const char *path, agt_catalog_t **out, char *err, size_t errlen)
{
    agt_catalog_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    haven__service__init(&c->service);
    c->path = path;
    c->err = err;
    c->errlen = errlen;
    /* It holds addresses: read without stdio, so none lingers in a FILE
     * buffer, and check the mode of the file that was actually read. */
    mode_t mode = 0;
    int rc = hv_ini_parse_private(path, CATALOG_FILE_MAX, s_handler, c, &c->lineno, &mode);
    if (rc < 0) {
        if (rc == -EFBIG)
            snprintf(err, errlen, "catalog %s is larger than %u bytes", path, CATALOG_FILE_MAX);
        else
            snprintf(err, errlen, "cannot read catalog %s: %s", path, strerror(-rc));
        agt_catalog_destroy(&c);
        return rc;
    }
    if (rc > 0 && !c->failed) {
        snprintf(err, errlen, "%s line %d: not a valid INI line (expected [section] or key = value)", path, rc);
        c->failed = 1;
    }
    if (!c->failed && !c->has_service) {
        snprintf(err, errlen, "%s: has no [service] section", path);
        c->failed = 1;
    }
    if (!c->failed && !c->service.has_genders) {
        snprintf(err, errlen, "%s: [service] needs genders (women, men or any)", path);
        c->failed = 1;
    }
    if (!c->failed && c->service.has_adult_min_age && c->service.has_adult_max_age
        && c->service.adult_max_age < c->service.adult_min_age) {
        snprintf(err, errlen, "%s: adult_max_age is below adult_min_age", path);
        c->failed = 1;
    }
    bool addresses = false;
    for (size_t i = 0; !c->failed && i < c->n_units; i++) {
        if (!c->units[i].spec.has_max_occupants) {
            snprintf(err, errlen, "%s line %d: [unit %s] needs max_occupants", path,
                     c->units[i].line, c->units[i].spec.name);
            c->failed = 1;
        }
        addresses |= c->units[i].address != NULL;
    }
    if (!c->failed && addresses && (mode & 077)) {
        snprintf(err, errlen, "%s holds addresses and others can read it; run: chmod 600 %s", path, path);
        c->failed = 1;
    }
    if (!c->failed) {
        c->specs = calloc(c->n_units + 1, sizeof *c->specs);
        if (!c->specs) {
            snprintf(err, errlen, "out of memory");
            c->failed = 1;
        }
        for (size_t i = 0; c->specs && i < c->n_units; i++)
            c->specs[i] = &c->units[i].spec;
    }
    if (c->failed) {
        agt_catalog_destroy(&c);
        return -EINVAL;
    }
    c->err = NULL;
    *out = c;
    return 0;
}

void
agt_catalog_destroy(agt_catalog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agt_catalog_t *c = *self_p;
    for (size_t i = 0; i < c->service.n_languages; i++)
        free(c->service.languages[i]);
    free(c->service.languages);
    for (size_t i = 0; i < c->n_units; i++) {
        free(c->units[i].spec.name);
        free(c->units[i].spec.district);
        if (c->units[i].address) {
            /* wipe: an address is the one thing that must not linger
             * (sodium_memzero, which the compiler cannot drop as a dead
             * store before free) */
            sodium_memzero(c->units[i].address, strlen(c->units[i].address));
            free(c->units[i].address);
        }
    }
    free(c->units);
    free(c->specs);
    free(c);
    *self_p = NULL;
}

Haven__Service *agt_catalog_service(agt_catalog_t *self) { return &self->service; }

Haven__UnitSpec **
agt_catalog_units(agt_catalog_t *self, size_t *n_out)
{
    *n_out = self->n_units;
    return self->specs;
}

const char *
agt_catalog_address(const agt_catalog_t *self, const char *unit)
{
    for (size_t i = 0; i < self->n_units; i++)
        if (strcmp(self->units[i].spec.name, unit) == 0)
            return self->units[i].address;
    return NULL;
}
