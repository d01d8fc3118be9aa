/* SPDX-License-Identifier: MIT */
/* The broker's event loop.
 *
 * Each poll cycle takes up to batch_max requests. Reads (search, lists,
 * status) are answered at once from the index or a read transaction.
 * Writes are applied in one write transaction, each inside its own nested
 * transaction so a refused request leaves nothing behind; the batch is
 * committed (fsync'd) once, and only then are the writers acknowledged and
 * the in-memory caches refreshed: group commit (commit.h). Timers run the
 * upkeep (upkeep.h). */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <zmq.h>
#include "alerts.h"
#include "broker_impl.h"
#include "clock.h"
#include "commit.h"
#include "dispatch.h"
#include "guard.h"
#include "handle_backup.h"
#include "log.h"
#include "outq.h"
#include "upkeep.h"
#include "zap.h"

static void
s_send_reply(brk_broker_t *self, brk_request_t *r)
{
    if (!r->reply)
        brk_reply_error(r, HAVEN__STATUS__STATUS_INTERNAL, "the broker failed to handle the request");
    if (!r->reply) {
        brk_log(BRK_LOG_ERROR, "no reply could be made for %s (out of memory); the client will retry",
                r->who.name[0] ? r->who.name : "an unknown key");
        return;
    }
    /* ROUTER_MANDATORY and DONTWAIT: a vanished or stuck peer costs us an
     * error here (or a bounded wait in the outq), never a blocked loop. */
    int rc = brk_outq_send(self->outq, zmq_msg_data(&r->routing), zmq_msg_size(&r->routing), r->who.curve_z85,
                           r->reply, r->reply_len, brk_now_ms());
    if (rc < 0)
        brk_log(BRK_LOG_DEBUG, "reply to %s dropped: %s", r->who.name[0] ? r->who.name : "an unknown key",
                rc == -ENOBUFS ? "too many replies wait for it (limits.queued_reply_mb)" : zmq_strerror(-rc));
}

static void
s_serve_batch(brk_broker_t *self)
{
    bool write[self->cfg->batch_max];
    size_t n = 0;
    MDB_txn *rtxn = NULL;
    /* Stop taking requests once the batch's decode budget is spent or one
     * key has its requests_in_flight: the rest wait in their connections'
     * queues (bounded by the HWMs), for the next cycle. */
    for (; n < (size_t) self->cfg->batch_max && !brk_guard_batch_full(self->guard); n++) {
        brk_request_t *r = &self->batch[n];
        int rc = brk_receive(&self->ctx, self->router, r, &rtxn);
        if (rc <= 0) {
            if (rc < 0)
                brk_log(BRK_LOG_ERROR, "receive failed: %s", zmq_strerror(-rc));
            break;
        }
        write[n] = rc == 2;
    }
    if (rtxn)
        brk_store_abort(rtxn);   /* end reads before the write: no long readers */
    /* Reads are answered now; their audit records go into this cycle's
     * commit with the writes, whose replies wait for it (group commit). */
    for (size_t i = 0; i < n; i++)
        if (!write[i])
            s_send_reply(self, &self->batch[i]);
    bool store = false;          /* a write, or an audit record to keep */
    for (size_t i = 0; i < n && !store; i++)
        store = write[i] || brk_commit_audited(&self->batch[i]);
    if (store && brk_commit_batch(&self->ctx, self->batch, write, n) == 1)
        self->unsynced = true;
    for (size_t i = 0; i < n; i++) {
        if (write[i])
            s_send_reply(self, &self->batch[i]);
        brk_request_clear(&self->batch[i]);
    }
    /* An ack waits only for its commit: the alerts' own commit, pushes and
     * hook runs follow the acks (design.md section 7). */
    brk_alerts_deliver(self->alerts);
    brk_guard_batch_end(self->guard);
}

/* The server socket's monitor: which connections exist, by descriptor. */
static void
s_connection_events(brk_broker_t *self)
{
    for (int k = 0; k < 4096; k++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        zmq_msg_init(&addr);
        /* the second frame (the address) is not used; an event without
         * it is still an event */
        if (zmq_msg_more(&ev) && zmq_msg_recv(&addr, self->monitor, 0) < 0)
            brk_log(BRK_LOG_WARN, "a connection event came without its address: %s", zmq_strerror(errno));
        if (zmq_msg_size(&ev) >= 6) {
            uint16_t event;
            int32_t value;
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (const uint8_t *) zmq_msg_data(&ev) + 2, 4);
            if (event == ZMQ_EVENT_ACCEPTED)
                brk_guard_conn_open(self->guard, value, brk_now_ms());
            else if (event == ZMQ_EVENT_DISCONNECTED)
                brk_guard_conn_close(self->guard, value);
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
    }
}

static void
s_drop_silent(void *arg, int fd)
{
    brk_broker_t *self = arg;
    brk_guard_refused(self->guard, NULL, BRK_REFUSE_SILENT);
    brk_log(BRK_LOG_DEBUG, "closing connection %d: no request after %llds", fd,
            (long long) self->cfg->silent_connection_s);
    brk_guard_conn_drop(NULL, fd);
}

int
brk_broker_run(brk_broker_t *self, int stop_fd)
{
    int64_t next_check = brk_now() + self->cfg->reader_check_s;
    brk_upkeep_expire(&self->ctx);              /* deadlines that passed while we were down */
    for (;;) {
        zmq_pollitem_t items[] = {
            { self->zap, 0, ZMQ_POLLIN, 0 },
            { self->router, 0, ZMQ_POLLIN, 0 },
            { NULL, stop_fd, ZMQ_POLLIN, 0 },
            { self->monitor, 0, ZMQ_POLLIN, 0 },
        };
        /* Wake at least every second: hold deadlines are in whole seconds;
         * every few milliseconds while replies wait for room. */
        int64_t wait = (next_check - brk_now()) * 1000;
        if (wait > 1000)
            wait = 1000;
        if (brk_outq_flush(self->outq, brk_now_ms()) && wait > 2)
            wait = 2;
        int n = zmq_poll(items, 4, wait > 0 ? (long) wait : 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* Connections opened and closed, before the handshakes they make. */
        if (items[3].revents & ZMQ_POLLIN)
            s_connection_events(self);
        /* Handshakes first: a client waiting on ZAP has nothing else to do. */
        for (int k = 0; k < 64 && (items[0].revents & ZMQ_POLLIN); k++) {
            brk_zap_handle(self->zap, self->principals, self->guard);
            int events = 0;
            size_t sz = sizeof events;
            zmq_getsockopt(self->zap, ZMQ_EVENTS, &events, &sz);
            if (!(events & ZMQ_POLLIN))
                break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_serve_batch(self);
        if (items[2].revents & ZMQ_POLLIN) {
            brk_log(BRK_LOG_INFO, "stopping");
            brk_upkeep_refusals(&self->ctx);
            return 0;
        }
        while (self->cfg->hook && waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (brk_now() >= self->next_expiry) {
            if (self->unsynced) {
                brk_store_sync(self->store);
                self->unsynced = false;
            }
            brk_upkeep_expire(&self->ctx);
            brk_upkeep_replies(&self->ctx);
            brk_guard_conn_each_to_drop(self->guard, brk_now_ms(), self->cfg->silent_connection_s * 1000, NULL,
                                        s_drop_silent, self);
            brk_alerts_flush_hook(self->alerts, brk_now());
            self->next_expiry = brk_now() + 1;
        }
        if (brk_now() >= self->next_minute) {
            brk_upkeep_refusals(&self->ctx);
            brk_alerts_prune(self->alerts);
            brk_upkeep_audit(&self->ctx, &self->next_head);
            self->next_minute = brk_now() + 60;
        }
        if (brk_now() >= next_check) {
            int dead = brk_store_reader_check(self->store);
            if (dead < 0)
                brk_log(BRK_LOG_ERROR, "checking for stale reader slots failed: %s", strerror(-dead));
            else if (dead)
                brk_log(BRK_LOG_INFO, "cleared %d stale reader slots", dead);
            next_check = brk_now() + self->cfg->reader_check_s;
        }
    }
}
