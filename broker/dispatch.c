/* SPDX-License-Identifier: MIT */
/* The operations and the receipt of a request (see dispatch.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/names.h"
#include "clock.h"
#include "dispatch.h"
#include "guard.h"
#include "handle_admin.h"
#include "handle_agent.h"
#include "handle_backup.h"
#include "handle_hold.h"
#include "handle_search.h"
#include "handle_watch.h"
#include "log.h"
#include "push.h"
#include "replay.h"

#define ROLE(r) (1u << HAVEN__ROLE__ROLE_##r)
#define ANY_ROLE (ROLE(AGENT) | ROLE(IDVA) | ROLE(ONCALL) | ROLE(ADMIN))
#define SEARCHERS (ROLE(IDVA) | ROLE(ONCALL))
#define OP(name) [HAVEN__REQUEST__BODY_##name]

/* Every operation, by its Request body case. */
static const brk_op_t s_ops[] = {
    OP(PING) = { .fn = brk_handle_ping, .roles = ANY_ROLE },
    OP(PROVIDER_ADD) = { .fn = brk_handle_provider_add, .write = true, .roles = ROLE(ADMIN), .nested = true },
    OP(PROVIDER_LIST) = { .fn = brk_handle_provider_list, .roles = ROLE(ADMIN) },
    OP(PRINCIPAL_ADD) = { .fn = brk_handle_principal_add, .write = true, .roles = ROLE(ADMIN), .nested = true },
    OP(PRINCIPAL_LIST) = { .fn = brk_handle_principal_list, .roles = ROLE(ADMIN) },
    OP(PRINCIPAL_REVOKE) = { .fn = brk_handle_principal_revoke, .write = true, .roles = ROLE(ADMIN),
                             .nested = true },
    OP(PRINCIPAL_CERTIFY) = { .fn = brk_handle_principal_certify, .write = true, .roles = ROLE(ADMIN),
                              .nested = true },
    OP(PUBLISH) = { .fn = brk_handle_publish, .write = true, .roles = ROLE(AGENT), .nested = true },
    OP(UNIT_SET) = { .fn = brk_handle_unit_set, .write = true, .roles = ROLE(AGENT), .no_replay = true },
    OP(CONFIRM) = { .fn = brk_handle_confirm, .write = true, .roles = ROLE(AGENT), .no_replay = true },
    OP(AGENT_STATUS) = { .fn = brk_handle_agent_status, .roles = ROLE(AGENT) },
    OP(AGENT_SYNC) = { .fn = brk_handle_agent_sync, .roles = ROLE(AGENT) },
    OP(AGENT_RESYNCED) = { .fn = brk_handle_agent_resynced, .write = true, .roles = ROLE(AGENT),
                           .no_replay = true },
    OP(SEARCH) = { .fn = brk_handle_search, .roles = SEARCHERS, .index_only = true },
    OP(HOLD_PREPARE) = { .fn = brk_handle_hold_prepare, .roles = SEARCHERS },
    OP(HOLD_CREATE) = { .fn = brk_handle_hold_create, .write = true, .roles = SEARCHERS, .nested = true },
    OP(HOLD_LIST) = { .fn = brk_handle_hold_list, .roles = SEARCHERS },
    OP(HOLD_CANCEL) = { .fn = brk_handle_hold_cancel, .write = true, .roles = SEARCHERS, .nested = true },
    OP(HOLD_ADDRESS) = { .fn = brk_handle_hold_address, .roles = SEARCHERS },
    OP(REFERRALS) = { .fn = brk_handle_referrals, .roles = ROLE(AGENT) },
    OP(ACCEPT) = { .fn = brk_handle_accept, .write = true, .roles = ROLE(AGENT), .nested = true },
    OP(DECLINE) = { .fn = brk_handle_decline, .write = true, .roles = ROLE(AGENT), .nested = true },
    OP(SUBSCRIBE) = { .fn = brk_handle_subscribe, .roles = ANY_ROLE },
    OP(BACKUP_START) = { .fn = brk_handle_backup_start, .roles = ROLE(ADMIN) },
    OP(BACKUP_FETCH) = { .fn = brk_handle_backup_fetch, .roles = ROLE(ADMIN) },
    OP(WATCH_CREATE) = { .fn = brk_handle_watch_create, .write = true, .roles = SEARCHERS, .nested = true },
    OP(WATCH_LIST) = { .fn = brk_handle_watch_list, .roles = SEARCHERS },
    OP(WATCH_CANCEL) = { .fn = brk_handle_watch_cancel, .write = true, .roles = SEARCHERS, .nested = true },
    /* listing is a read; an acknowledgement (ack > 0) is a write (brk_receive) */
    OP(INBOX) = { .fn = brk_handle_inbox, .roles = SEARCHERS, .nested = true, .no_replay = true },
    OP(AUDIT_VERIFY) = { .fn = brk_handle_audit_verify, .roles = ROLE(ADMIN) },
    OP(AUDIT_SHOW) = { .fn = brk_handle_audit_show, .roles = ROLE(ADMIN) },
    OP(REPORT) = { .fn = brk_handle_report, .roles = ROLE(ADMIN) },
};

const brk_op_t *
brk_op(int body)
{
    if (body <= 0 || (size_t) body >= sizeof s_ops / sizeof *s_ops || !s_ops[body].fn)
        return NULL;
    return &s_ops[body];
}

const char *
brk_op_name(int body)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&haven__request__descriptor, (unsigned) body);
    return f ? f->name : "unknown";
}

bool
brk_op_allowed(int body, int role)
{
    const brk_op_t *op = brk_op(body);
    return op && role >= 0 && role < 32 && (op->roles & (1u << role));
}

size_t
brk_op_max_bytes(const brk_config_t *cfg, int body)
{
    switch (body) {
    case HAVEN__REQUEST__BODY_PUBLISH:
        return (size_t) cfg->max_units_per_catalog * HV_UNIT_WIRE_BYTES + 8192;
    case HAVEN__REQUEST__BODY_HOLD_CREATE:
        return HV_RECIPIENTS_MAX * (HV_NOTE_MAX + HV_SEAL_OVERHEAD + 2 * HV_KEY_BYTES + HV_SIGNATURE_BYTES + 32)
               + HV_TOKEN_MAX + HV_SIGNATURE_BYTES + 128;
    case HAVEN__REQUEST__BODY_ACCEPT:
    case HAVEN__REQUEST__BODY_DECLINE:
        return HV_ADDRESS_MAX + HV_SEAL_OVERHEAD + 2 * HV_KEY_BYTES + HV_SIGNATURE_BYTES + 512;
    case HAVEN__REQUEST__BODY_SEARCH:
    case HAVEN__REQUEST__BODY_WATCH_CREATE:
        return 16384;
    default:
        return 4096;
    }
}

/* Refuse a request before its handler: a reply, a counted refusal (the
 * audit log gets these aggregated per key per minute), and a log line. */
static int
s_refuse(brk_ctx_t *ctx, brk_request_t *r, brk_refusal_t why, int status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int
s_refuse(brk_ctx_t *ctx, brk_request_t *r, brk_refusal_t why, int status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    brk_reply_error(r, status, "%s", text);
    r->refused = true;
    brk_guard_refused(ctx->guard, r->who.name[0] ? r->who.name : NULL, why);
    brk_log(BRK_LOG_DEBUG, "refused a request from %s: %s", r->who.name[0] ? r->who.name : "an unknown key",
            text);
    return 1;
}


/* Read one message: its routing id into r, its first frame into payload,
 * and any frames after that drained (the request is refused for them).
 * Returns how many frames there were, counting the routing id; 0 if
 * nothing was waiting (payload untouched); or -errno. */
static int
s_recv(void *router, brk_request_t *r, zmq_msg_t *payload)
{
    memset(r, 0, sizeof *r);
    zmq_msg_init(&r->routing);
    if (zmq_msg_recv(&r->routing, router, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&r->routing);
        return e == EAGAIN ? 0 : -e;
    }
    zmq_msg_init(payload);
    int frames = 1;
    if (zmq_msg_more(&r->routing)) {
        /* The frames of one message arrive together: a failure here is
         * the context ending (or a libzmq fault), not a slow peer. */
        if (zmq_msg_recv(payload, router, 0) < 0) {
            int e = errno;
            zmq_msg_close(payload);
            zmq_msg_close(&r->routing);
            return -e;
        }
        frames++;
        int more = zmq_msg_more(payload);
        while (more) {           /* drain extra frames; the request is refused below */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            if (zmq_msg_recv(&extra, router, 0) < 0) {
                int e = errno;
                zmq_msg_close(&extra);
                zmq_msg_close(payload);
                zmq_msg_close(&r->routing);
                return -e;
            }
            more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            frames++;
        }
    }
    return frames;
}

/* Who sent it, and may that key send anything now? Sets r->who. Returns
 * 0, or 1 refused. */
static int
s_admit(brk_ctx_t *ctx, brk_request_t *r, zmq_msg_t *payload, int frames)
{
    /* Connection metadata rides on frames that came from the peer, not on
     * the routing id the ROUTER made up. */
    const char *uid = frames > 1 ? zmq_msg_gets(payload, "User-Id") : NULL;
    int fd = frames > 1 ? zmq_msg_get(payload, ZMQ_SRCFD) : -1;
    const brk_principal_t *who = brk_principals_find_z85(ctx->principals, uid);
    if (!who)                    /* ZAP admitted the key, so it was removed since: refuse. */
        return s_refuse(ctx, r, BRK_REFUSE_UNKNOWN_KEY, HAVEN__STATUS__STATUS_FORBIDDEN,
                        "this key is not registered");
    r->who = *who;
    /* Every request counts, refused or not: the one that brings a key to
     * requests_in_flight ends the cycle, so no connection's replies in one
     * cycle outnumber what it may queue (queued_replies). */
    if (!brk_guard_take(ctx->guard, who->curve_z85))
        return s_refuse(ctx, r, BRK_REFUSE_IN_FLIGHT, HAVEN__STATUS__STATUS_LIMIT,
                        "too many requests at once from this key (limits.requests_in_flight is %lld); "
                        "wait for the answers before sending more", (long long) ctx->cfg->requests_in_flight);
    if (who->revoked) {
        s_refuse(ctx, r, BRK_REFUSE_REVOKED, HAVEN__STATUS__STATUS_FORBIDDEN,
                 "this key (%s) has been revoked; ask your Haven administrator", who->name);
        if (fd >= 0)
            brk_guard_conn_drop(NULL, fd);
        return 1;
    }
    if (fd >= 0 && brk_guard_conn_attach(ctx->guard, fd, who->curve_z85, who->name) < 0) {
        s_refuse(ctx, r, BRK_REFUSE_CONNECTIONS, HAVEN__STATUS__STATUS_LIMIT,
                 "this key already has %lld connections open (limits.connections_per_key); close one",
                 (long long) ctx->cfg->connections_per_key);
        brk_guard_conn_drop(NULL, fd);
        return 1;
    }
    if (frames != 2)
        return s_refuse(ctx, r, BRK_REFUSE_MALFORMED, HAVEN__STATUS__STATUS_BAD_REQUEST,
                        "a request is exactly one frame; this one had %d", frames - 1);
    return 0;
}

/* May the sender's role send this operation, and is it within the
 * operation's size? A request with no operation (or an unknown one) is
 * small, so it is decoded for the validator's sentence (an unknown field,
 * no operation). Returns 0, or 1 refused. */
static int
s_authorise(brk_ctx_t *ctx, brk_request_t *r, int body, size_t len)
{
    if (body && !brk_op_allowed(body, r->who.role))
        return s_refuse(ctx, r, BRK_REFUSE_ROLE, HAVEN__STATUS__STATUS_FORBIDDEN, "the %s role may not %s",
                        hv_role_name(r->who.role), brk_op_name(body));
    size_t cap = brk_op_max_bytes(ctx->cfg, body);
    if (len > cap)
        return s_refuse(ctx, r, BRK_REFUSE_SIZE, HAVEN__STATUS__STATUS_BAD_REQUEST,
                        "a %s request is at most %zu bytes; this one has %zu", brk_op_name(body), cap, len);
    return 0;
}

void
brk_op_replayed(brk_request_t *r, int body, uint8_t *reply, size_t len, int status)
{
    free(r->reply);
    r->reply = reply;
    r->reply_len = len;
    r->status = status;
    r->replayed = true;
    brk_log(BRK_LOG_INFO, "%s retried %s request %llu: answered with the first reply, not done again",
            r->who.name, brk_op_name(body), (unsigned long long) (r->req ? r->req->id : r->id));
}

/* A retry of a write already done is answered with its first reply
 * before anything is charged: the rates counted it the first time.
 * Returns 1 if it was, else 0. */
static int
s_replayed(brk_ctx_t *ctx, brk_request_t *r, const brk_op_t *op, const uint8_t *data, size_t len,
           MDB_txn **rtxn)
{
    if (!op || !op->write || op->no_replay)
        return 0;
    brk_replay_digest(data, len, r->digest);
    if (!*rtxn && brk_store_begin(ctx->store, NULL, false, rtxn) < 0)
        *rtxn = NULL;            /* looked for again in the batch's write */
    uint8_t *kept = NULL;
    size_t kept_len = 0;
    int kept_status = 0;
    if (!*rtxn || brk_replay_find(ctx->store, *rtxn, r->who.curve, r->id, r->digest, &kept, &kept_len,
                                  &kept_status) != 0)
        return 0;
    brk_op_replayed(r, (int) (op - s_ops), kept, kept_len, kept_status);
    return 1;
}

/* The key's rates: searches, writes, holds. Returns 0, or 1 refused. */
static int
s_rates(brk_ctx_t *ctx, brk_request_t *r, const brk_op_t *op, int body)
{
    int64_t now_ms = brk_now_ms();
    const char *z85 = r->who.curve_z85;
    if (body == HAVEN__REQUEST__BODY_SEARCH && !brk_guard_rate(ctx->guard, z85, BRK_RATE_SEARCH, now_ms))
        return s_refuse(ctx, r, BRK_REFUSE_RATE, HAVEN__STATUS__STATUS_LIMIT,
                        "too many searches: at most %lld a minute (limits.searches_per_minute); "
                        "try again in a few seconds", (long long) ctx->cfg->searches_per_minute);
    if (op && op->write && !brk_guard_rate(ctx->guard, z85, BRK_RATE_WRITE, now_ms))
        return s_refuse(ctx, r, BRK_REFUSE_RATE, HAVEN__STATUS__STATUS_LIMIT,
                        "too many changes: at most %lld a minute (limits.writes_per_minute); "
                        "try again in a few seconds", (long long) ctx->cfg->writes_per_minute);
    if (body == HAVEN__REQUEST__BODY_HOLD_CREATE && !brk_guard_rate(ctx->guard, z85, BRK_RATE_HOLD, now_ms))
        return s_refuse(ctx, r, BRK_REFUSE_RATE, HAVEN__STATUS__STATUS_LIMIT,
                        "too many holds: at most %lld an hour (limits.holds_per_hour), because each one "
                        "calls a refuge; cancel none, answer the ones you have, or ask your administrator",
                        (long long) ctx->cfg->holds_per_hour);
    return 0;
}

/* Decode, within the batch's budget; answer a read now. Returns 1 (answered
 * or refused) or 2 (a write, for the commit). */
static int
s_decode(brk_ctx_t *ctx, brk_request_t *r, const brk_op_t *op, int body, const uint8_t *data, size_t len,
         MDB_txn **rtxn)
{
    char err[256];
    uint64_t id;
    int drc = hv_request_decode_alloc(data, len, brk_guard_allocator(ctx->guard), &r->req, &id, err, sizeof err);
    if (drc < 0) {
        r->id = id ? id : r->id;
        return s_refuse(ctx, r, drc == -ENOMEM ? BRK_REFUSE_MEMORY : BRK_REFUSE_MALFORMED,
                        drc == -ENOMEM ? HAVEN__STATUS__STATUS_LIMIT : HAVEN__STATUS__STATUS_BAD_REQUEST, "%s", err);
    }
    if (!op)                     /* the validator refuses a request with no operation */
        return s_refuse(ctx, r, BRK_REFUSE_MALFORMED, HAVEN__STATUS__STATUS_BAD_REQUEST,
                        "the request has no operation");
    if (op->write || (body == HAVEN__REQUEST__BODY_INBOX && r->req->inbox->has_ack && r->req->inbox->ack))
        return 2;
    if (!*rtxn && !op->index_only) {
        int trc = brk_store_begin(ctx->store, NULL, false, rtxn);
        if (trc < 0) {
            brk_log(BRK_LOG_ERROR, "cannot begin a read transaction: %s", strerror(-trc));
            return 1;            /* the loop turns the missing reply into INTERNAL */
        }
    }
    ctx->now = brk_now();
    int hrc = op->fn(ctx, *rtxn, r);
    if (hrc < 0)
        brk_log(BRK_LOG_ERROR, "%s failed: %s", brk_op_name(r->req->body_case), strerror(-hrc));
    return 1;
}

int
brk_receive(brk_ctx_t *ctx, void *router, brk_request_t *r, MDB_txn **rtxn)
{
    zmq_msg_t payload;
    int frames = s_recv(router, r, &payload);
    if (frames <= 0)
        return frames;
    const uint8_t *data = zmq_msg_data(&payload);
    size_t len = zmq_msg_size(&payload);
    int body = 0;
    int rc = s_admit(ctx, r, &payload, frames);
    if (rc == 0 && hv_request_peek(data, len, &r->id, &body) < 0)
        rc = s_refuse(ctx, r, BRK_REFUSE_MALFORMED, HAVEN__STATUS__STATUS_BAD_REQUEST,
                      "the message is not a valid Haven request");
    const brk_op_t *op = body ? brk_op(body) : NULL;
    if (rc == 0)
        rc = s_authorise(ctx, r, body, len);
    if (rc == 0)
        rc = s_replayed(ctx, r, op, data, len, rtxn);
    if (rc == 0)
        rc = s_rates(ctx, r, op, body);
    if (rc == 0)
        rc = s_decode(ctx, r, op, body, data, len, rtxn);
    zmq_msg_close(&payload);
    return rc;
}
