/* SPDX-License-Identifier: MIT */
/* The principal cache (see principals.h). */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/keys.h"
#include "principals.h"

struct brk_principals {
    GHashTable *by_z85;          /* curve_z85 (inside the value) -> brk_principal_t* */
};

brk_principals_t *
brk_principals_new(void)
{
    brk_principals_t *self = calloc(1, sizeof *self);
    if (self)
        self->by_z85 = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, free);
    return self;
}

void
brk_principals_destroy(brk_principals_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    g_hash_table_destroy((*self_p)->by_z85);
    free(*self_p);
    *self_p = NULL;
}

int
brk_principals_put(brk_principals_t *self, const Haven__Principal *p)
{
    if (p->curve_key.len != 32)
        return -EINVAL;
    brk_principal_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    snprintf(r->name, sizeof r->name, "%s", p->name);
    r->role = p->role;
    snprintf(r->provider, sizeof r->provider, "%s", p->provider ? p->provider : "");
    r->revoked = p->has_revoked && p->revoked;
    snprintf(r->region, sizeof r->region, "%s", p->region ? p->region : "");
    memcpy(r->curve, p->curve_key.data, 32);
    hv_z85_encode32(r->curve, r->curve_z85);
    if (p->has_seal_key && p->seal_key.len == 32)
        memcpy(r->seal, p->seal_key.data, 32);
    if (p->has_sign_key && p->sign_key.len == 32) {
        memcpy(r->sign, p->sign_key.data, 32);
        r->has_sign = true;
    }
    /* replace: the old value (and the key inside it) is freed */
    g_hash_table_replace(self->by_z85, r->curve_z85, r);
    return 0;
}

const brk_principal_t *
brk_principals_find_z85(const brk_principals_t *self, const char *z85)
{
    return z85 ? g_hash_table_lookup(self->by_z85, z85) : NULL;
}

const brk_principal_t *
brk_principals_find(const brk_principals_t *self, const uint8_t key[32])
{
    char z85[41];
    hv_z85_encode32(key, z85);
    return brk_principals_find_z85(self, z85);
}

const brk_principal_t *
brk_principals_find_by_name(const brk_principals_t *self, const char *name)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, self->by_z85);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (strcmp(((const brk_principal_t *) value)->name, name) == 0)
            return value;
    return NULL;
}

size_t
brk_principals_count(const brk_principals_t *self)
{
    return g_hash_table_size(self->by_z85);
}

void
brk_principals_each_agent(const brk_principals_t *self, const char *provider,
                          void (*fn)(void *arg, const brk_principal_t *p), void *arg)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, self->by_z85);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        const brk_principal_t *p = value;
        if (p->role == HAVEN__ROLE__ROLE_AGENT && !p->revoked && strcmp(p->provider, provider) == 0)
            fn(arg, p);
    }
}

typedef struct {
    uint8_t (*keys)[32];
    size_t n, max;
} s_keys_t;

static void
s_collect_key(void *arg, const brk_principal_t *p)
{
    static const uint8_t zero[32];
    s_keys_t *k = arg;
    /* a key of small order (registered before such keys were refused)
     * would make a note readable by anyone: never offer it */
    if (k->n < k->max && memcmp(p->seal, zero, 32) != 0 && hv_key_usable(p->seal))
        memcpy(k->keys[k->n++], p->seal, 32);
}

size_t
brk_principals_agent_keys(const brk_principals_t *self, const char *provider,
                          uint8_t (*keys_out)[32], size_t max)
{
    s_keys_t k = { keys_out, 0, max };
    brk_principals_each_agent(self, provider, s_collect_key, &k);
    return k.n;
}
