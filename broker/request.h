/* SPDX-License-Identifier: MIT */
/* One request in flight, and its reply. Handlers are split by family, as
 * mosquitto gives each packet its handle_*.c: handle_admin.h,
 * handle_agent.h, handle_hold.h, handle_search.h, handle_watch.h,
 * handle_backup.h, and the subscription in push.h. */
#ifndef BRK_REQUEST_H
#define BRK_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>
#include "ctx.h"

typedef struct {
    zmq_msg_t routing;           /* the ROUTER's routing id for the reply */
    brk_principal_t who;         /* a copy: the cache may change under us */
    Haven__Request *req;
    uint64_t id;                 /* a request that failed validation: its id, for the reply */
    uint8_t *reply;              /* packed Reply, set by the handler */
    size_t reply_len;
    int status;                  /* the reply's status, for the log */
    bool refused;                /* before its handler: audited in aggregate (guard.h) */
    uint8_t digest[16];          /* a write's: tells a retry from a new request (replay.h) */
    bool replayed;               /* a retry answered with the kept reply: nothing done, not audited */
    /* What the audit log records beyond who, what and the outcome; set by
     * handlers. Flags and ids only. */
    struct {
        char detail[256];
        uint32_t dims;
        char region[HV_TEXT_MAX + 1];
        uint32_t matching, limit;
        const char *relax;
        int reason, kind;
        bool search;
    } audit;
} brk_request_t;

/* Handlers return 0 when the request succeeded (reply packed), 1 when it
 * was refused (error reply packed: nothing it wrote may be kept), or
 * -errno when the store failed (no reply; -ENOSPC means grow and retry).
 * A read's txn is a read transaction (NULL for those that read only the
 * index); a write's is a transaction of the batch (dispatch.h says which
 * are nested). */
typedef int (*brk_handler_t)(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Pack reply (its id and status are set here) into r. Returns 0 or -ENOMEM. */
int brk_reply_ok(brk_request_t *r, Haven__Reply *reply);
/* Pack an error reply; returns 1 (the "refused" handler result). Out of
 * memory, r->reply stays NULL (the loop then answers INTERNAL if it can). */
int brk_reply_error(brk_request_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Free what r holds (routing id, decoded request, reply) and zero it. */
void brk_request_clear(brk_request_t *r);

#endif
