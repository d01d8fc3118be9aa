/* SPDX-License-Identifier: MIT */
/* The broker's context (see ctx.h): the list of what a batch dirtied. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctx.h"

int
brk_ctx_dirty(brk_ctx_t *ctx, brk_dirty_kind_t kind, const char *provider, const char *unit,
              const uint8_t *key)
{
    if (ctx->n_dirty == ctx->cap_dirty) {
        size_t cap = ctx->cap_dirty ? ctx->cap_dirty * 2 : 64;
        void *p = realloc(ctx->dirty, cap * sizeof *ctx->dirty);
        if (!p)
            return -ENOMEM;
        ctx->dirty = p;
        ctx->cap_dirty = cap;
    }
    brk_dirty_t *d = &ctx->dirty[ctx->n_dirty++];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    if (provider)
        snprintf(d->provider, sizeof d->provider, "%s", provider);
    if (unit)
        snprintf(d->unit, sizeof d->unit, "%s", unit);
    if (key)
        memcpy(d->key, key, 32);
    return 0;
}
