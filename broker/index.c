/* SPDX-License-Identifier: MIT */
/* The in-memory index (see index.h). Units live in one array so a search
 * is a tight scan; maps from names to positions serve updates. */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "index.h"

struct brk_index {
    brk_prov_t *provs;
    size_t n_provs, cap_provs;
    brk_unit_t *units;
    size_t n_units, cap_units;
    brk_avail_t *avail;
    size_t n_avail, cap_avail;
    brk_class_t *classes;
    size_t n_classes, cap_classes;
    GHashTable *class_by_sig;    /* packed rules -> class + 1 */
    GHashTable *prov_by_id;      /* char* id -> index + 1 */
    GHashTable *unit_by_key;     /* "provider/unit" -> index + 1 */
};

brk_index_t *
brk_index_new(void)
{
    brk_index_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->prov_by_id = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
    self->class_by_sig = g_hash_table_new_full(g_int64_hash, g_int64_equal, free, NULL);
    self->unit_by_key = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
    return self;
}

void
brk_index_destroy(brk_index_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_index_t *self = *self_p;
    for (size_t i = 0; i < self->n_provs; i++) {
        free(self->provs[i].name);
        free(self->provs[i].phone);
    }
    free(self->provs);
    free(self->units);
    free(self->avail);
    g_hash_table_destroy(self->prov_by_id);
    g_hash_table_destroy(self->class_by_sig);
    free(self->classes);
    g_hash_table_destroy(self->unit_by_key);
    free(self);
    *self_p = NULL;
}

static int
s_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* The class of a provider's rules, made on first sight. Classes are never
 * removed: there are only as many as distinct rule sets ever published. */
static int
s_class(brk_index_t *self, const brk_prov_t *p)
{
    brk_class_t c = {
        .kind = p->kind, .genders = p->genders,
        .adult_min_age = p->adult_min_age, .adult_max_age = p->adult_max_age,
        .max_children = p->max_children, .max_boy_age = p->max_boy_age,
        .pets = p->pets, .complex_needs = p->complex_needs,
        .flags = (uint8_t) ((p->trans_inclusive ? BRK_CLASS_TRANS_INCLUSIVE : 0)
                            | (p->children ? BRK_CLASS_CHILDREN : 0) | (p->nrpf ? BRK_CLASS_NRPF : 0)),
    };
    gint64 sig = (gint64) ((uint64_t) c.kind | (uint64_t) c.genders << 8
                           | (uint64_t) c.adult_min_age << 16 | (uint64_t) c.adult_max_age << 24
                           | (uint64_t) c.max_children << 32 | (uint64_t) c.max_boy_age << 40
                           | (uint64_t) c.pets << 48 | (uint64_t) (c.complex_needs & 0xf) << 56
                           | (uint64_t) (c.flags & 0xf) << 60);
    gpointer found = g_hash_table_lookup(self->class_by_sig, &sig);
    if (found)
        return (int) (GPOINTER_TO_SIZE(found) - 1);
    if (self->n_classes >= UINT16_MAX)
        return -ENOSPC;
    gint64 *key = malloc(sizeof *key);
    if (!key || s_grow((void **) &self->classes, &self->cap_classes, self->n_classes + 1,
                       sizeof *self->classes) < 0) {
        free(key);
        return -ENOMEM;
    }
    *key = sig;
    self->classes[self->n_classes] = c;
    g_hash_table_insert(self->class_by_sig, key, GSIZE_TO_POINTER(self->n_classes + 1));
    return (int) self->n_classes++;
}

static uint8_t
s_limit(protobuf_c_boolean has, uint32_t v)
{
    return has && v < BRK_NO_LIMIT ? (uint8_t) v : BRK_NO_LIMIT;
}

int
brk_index_put_provider(brk_index_t *self, const Haven__Provider *p, int district)
{
    gpointer found = g_hash_table_lookup(self->prov_by_id, p->id);
    size_t idx;
    char *name = strdup(p->name);
    char *phone = p->phone && *p->phone ? strdup(p->phone) : NULL;
    if (!name || (p->phone && *p->phone && !phone)) {
        free(name);
        free(phone);
        return -ENOMEM;
    }
    if (found) {
        idx = GPOINTER_TO_SIZE(found) - 1;
        free(self->provs[idx].name);
        free(self->provs[idx].phone);
    } else {
        char *key = strdup(p->id);
        if (!key || s_grow((void **) &self->provs, &self->cap_provs, self->n_provs + 1,
                           sizeof *self->provs) < 0) {
            free(key);
            free(name);
            free(phone);
            return -ENOMEM;
        }
        idx = self->n_provs++;
        g_hash_table_insert(self->prov_by_id, key, GSIZE_TO_POINTER(idx + 1));
    }
    brk_prov_t *r = &self->provs[idx];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", p->id);
    r->name = name;
    r->phone = phone;
    r->kind = (uint8_t) p->kind;
    r->district = (int16_t) district;
    r->catalog_version = p->catalog_version;
    r->unsynced = p->has_unsynced && p->unsynced;
    r->adult_min_age = r->adult_max_age = r->max_children = r->max_boy_age = BRK_NO_LIMIT;
    r->confirm_every_s = 86400;
    const Haven__Service *s = p->service;
    if (s) {
        r->published = true;
        r->genders = s->has_genders ? (uint8_t) s->genders : HAVEN__GENDERS__GENDERS_ANY;
        r->trans_inclusive = s->has_trans_inclusive && s->trans_inclusive;
        r->adult_min_age = s_limit(s->has_adult_min_age, s->adult_min_age);
        r->adult_max_age = s_limit(s->has_adult_max_age, s->adult_max_age);
        r->children = s->has_children && s->children;
        r->max_children = s_limit(s->has_max_children, s->max_children);
        r->max_boy_age = s_limit(s->has_max_boy_age, s->max_boy_age);
        r->pets = s->has_pets ? (uint8_t) s->pets : 0;
        r->nrpf = s->has_nrpf && s->nrpf;
        r->complex_needs = s->has_complex_needs ? (uint8_t) s->complex_needs : 0;
        r->specialist = s->has_specialist ? (uint8_t) s->specialist : 0;
        for (size_t i = 0; i < s->n_languages && i < HV_LIST_MAX; i++)
            r->languages[r->n_languages++] = brk_lang_code(s->languages[i]);
        if (s->has_confirm_every_s && s->confirm_every_s)
            r->confirm_every_s = s->confirm_every_s;
    }
    int cls = s_class(self, r);
    if (cls < 0)
        return cls;
    r->cls = (uint16_t) cls;
    return (int) idx;
}

static int
s_unit_key(const char *provider, const char *unit, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", provider, unit);
    return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

int
brk_index_find_provider(const brk_index_t *self, const char *id)
{
    gpointer v = g_hash_table_lookup(self->prov_by_id, id);
    return v ? (int) (GPOINTER_TO_SIZE(v) - 1) : -ENOENT;
}

int
brk_index_find_unit(const brk_index_t *self, const char *provider, const char *unit)
{
    char key[2 * HV_ID_MAX + 2];
    if (s_unit_key(provider, unit, key, sizeof key) < 0)
        return -ENOENT;
    gpointer v = g_hash_table_lookup(self->unit_by_key, key);
    return v ? (int) (GPOINTER_TO_SIZE(v) - 1) : -ENOENT;
}

static void
s_avail_remove(brk_index_t *self, brk_unit_t *u)
{
    if (u->avail_pos == UINT32_MAX)
        return;
    brk_avail_t last = self->avail[--self->n_avail];
    self->avail[u->avail_pos] = last;
    self->units[last.unit].avail_pos = u->avail_pos;
    u->avail_pos = UINT32_MAX;
}

/* Add or refresh the unit's search entry. */
static int
s_avail_put(brk_index_t *self, uint32_t idx)
{
    brk_unit_t *u = &self->units[idx];
    if (u->avail_pos == UINT32_MAX) {
        if (s_grow((void **) &self->avail, &self->cap_avail, self->n_avail + 1, sizeof *self->avail) < 0)
            return -ENOMEM;
        u->avail_pos = (uint32_t) self->n_avail++;
    }
    const brk_prov_t *p = &self->provs[u->prov];
    self->avail[u->avail_pos] = (brk_avail_t) {
        .unit = idx,
        .prov = u->prov,
        .confirmed_at = u->confirmed_at,
        /* A provider restored from a backup may be showing a unit as
         * it was before staff changed it: stale until its agent resyncs. */
        .stale_at = p->unsynced ? 0 : u->confirmed_at + (int64_t) p->confirm_every_s,
        .available_from = u->available_from,
        .district = u->district,
        .cls = p->cls,
        .features = u->features,
        .max_occupants = u->max_occupants,
        .specialist = p->specialist,
    };
    return 0;
}

int
brk_index_put_unit(brk_index_t *self, const Haven__Unit *u, int district)
{
    char key[2 * HV_ID_MAX + 2];
    int prov = brk_index_find_provider(self, u->provider);
    if (prov < 0)
        return -ENOENT;
    if (s_unit_key(u->provider, u->spec->name, key, sizeof key) < 0)
        return -ENAMETOOLONG;
    int idx = brk_index_find_unit(self, u->provider, u->spec->name);
    if (idx < 0) {
        char *k = strdup(key);
        if (!k || s_grow((void **) &self->units, &self->cap_units, self->n_units + 1,
                         sizeof *self->units) < 0) {
            free(k);
            return -ENOMEM;
        }
        idx = (int) self->n_units++;
        self->units[idx].avail_pos = UINT32_MAX;
        g_hash_table_insert(self->unit_by_key, k, GSIZE_TO_POINTER((size_t) idx + 1));
    }
    brk_unit_t *r = &self->units[idx];
    const Haven__UnitSpec *s = u->spec;
    snprintf(r->name, sizeof r->name, "%s", s->name);
    r->prov = (uint32_t) prov;
    r->district = (int16_t) district;
    r->status = (uint8_t) u->status;
    r->features = s->has_features ? (uint8_t) s->features : 0;
    if (r->features & HAVEN__FEATURE__FEATURE_WHEELCHAIR)
        r->features |= HAVEN__FEATURE__FEATURE_STEP_FREE;
    r->max_occupants = s->has_max_occupants ? (uint8_t) s->max_occupants : 1;
    r->bedrooms = s->has_bedrooms ? (uint8_t) s->bedrooms : 0;
    r->cots = s->has_cots ? (uint8_t) s->cots : 0;
    r->available_from = u->has_available_from ? u->available_from : 0;
    r->confirmed_at = u->has_confirmed_at ? u->confirmed_at : 0;
    r->version = u->has_version ? u->version : 0;
    if (r->status == HAVEN__UNIT_STATUS__UNIT_AVAILABLE)
        return s_avail_put(self, (uint32_t) idx);
    s_avail_remove(self, r);
    return 0;
}

int
brk_index_del_unit(brk_index_t *self, const char *provider, const char *unit)
{
    char key[2 * HV_ID_MAX + 2];
    int idx = brk_index_find_unit(self, provider, unit);
    if (idx < 0)
        return idx;
    s_avail_remove(self, &self->units[idx]);
    s_unit_key(provider, unit, key, sizeof key);
    g_hash_table_remove(self->unit_by_key, key);
    /* Move the last unit into the hole so the array stays dense. */
    size_t last = --self->n_units;
    if ((size_t) idx != last) {
        brk_unit_t *moved = &self->units[last];
        self->units[idx] = *moved;
        if (moved->avail_pos != UINT32_MAX)
            self->avail[moved->avail_pos].unit = (uint32_t) idx;
        s_unit_key(self->provs[moved->prov].id, moved->name, key, sizeof key);
        g_hash_table_insert(self->unit_by_key, strdup(key), GSIZE_TO_POINTER((size_t) idx + 1));
    }
    return 0;
}

size_t brk_index_provider_count(const brk_index_t *self) { return self->n_provs; }
size_t brk_index_unit_count(const brk_index_t *self) { return self->n_units; }
const brk_prov_t *brk_index_provider(const brk_index_t *self, uint32_t i) { return &self->provs[i]; }
const brk_unit_t *brk_index_unit(const brk_index_t *self, uint32_t i) { return &self->units[i]; }

bool
brk_index_unit_stale(const brk_index_t *self, uint32_t unit, int64_t now)
{
    const brk_unit_t *u = &self->units[unit];
    const brk_prov_t *p = &self->provs[u->prov];
    return p->unsynced || u->confirmed_at + (int64_t) p->confirm_every_s < now;
}

const brk_avail_t *
brk_index_available(const brk_index_t *self, size_t *count_out)
{
    *count_out = self->n_avail;
    return self->avail;
}

const brk_class_t *
brk_index_classes(const brk_index_t *self, size_t *count_out)
{
    *count_out = self->n_classes;
    return self->classes;
}
