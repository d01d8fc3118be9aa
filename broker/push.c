/* SPDX-License-Identifier: MIT */
/* Subscriptions and pushes (see push.h). */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include "clock.h"
#include "push.h"

struct brk_push {
    brk_outq_t *outq;
    GHashTable *subs;            /* curve Z85 -> GBytes routing id */
};

brk_push_t *
brk_push_new(brk_outq_t *outq)
{
    brk_push_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->outq = outq;
    self->subs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
    return self;
}

void
brk_push_destroy(brk_push_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_push_t *self = *self_p;
    if (self->subs)
        g_hash_table_destroy(self->subs);
    free(self);
    *self_p = NULL;
}

/* Remember where to push this principal's notifications: the connection
 * it subscribed on. A new subscription replaces the old one. */
int
brk_handle_subscribe(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    (void) txn;
    GBytes *id = g_bytes_new(zmq_msg_data(&r->routing), zmq_msg_size(&r->routing));
    g_hash_table_replace(ctx->push->subs, g_strdup(r->who.curve_z85), id);
    Haven__Reply reply = HAVEN__REPLY__INIT;
    return brk_reply_ok(r, &reply);
}

void
brk_push_send(brk_push_t *self, const char *z85, const char *event, const char *hold)
{
    GBytes *id = g_hash_table_lookup(self->subs, z85);
    if (!id)
        return;
    Haven__Notify n = HAVEN__NOTIFY__INIT;
    n.event = (char *) event;
    n.hold = (char *) hold;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.status = HAVEN__STATUS__STATUS_OK;
    reply.body_case = HAVEN__REPLY__BODY_NOTIFY;
    reply.notify = &n;
    uint8_t *buf;
    size_t len;
    if (hv_pack(&reply.base, &buf, &len) < 0)
        return;
    gsize idlen;
    const void *data = g_bytes_get_data(id, &idlen);
    if (brk_outq_send(self->outq, data, idlen, z85, buf, len, brk_now_ms()) == -EHOSTUNREACH)
        g_hash_table_remove(self->subs, z85);   /* gone: it will poll when it comes back */
    free(buf);
}

void
brk_push_alert(void *arg, const char *z85, const char *event, const char *id)
{
    brk_push_send(arg, z85, event, id);
}

typedef struct {
    brk_push_t *self;
    const char *hold;
    const char *event;
} s_agents_t;

static void
s_push_agent(void *arg, const brk_principal_t *p)
{
    s_agents_t *a = arg;
    brk_push_send(a->self, p->curve_z85, a->event, a->hold);
}

void
brk_push_agents(brk_push_t *self, const brk_principals_t *principals, const char *provider, const char *event,
                const char *hold)
{
    s_agents_t a = { self, hold, event };
    brk_principals_each_agent(principals, provider, s_push_agent, &a);
}

void
brk_push_forget(brk_push_t *self, const char *z85)
{
    g_hash_table_remove(self->subs, z85);
}
