/* SPDX-License-Identifier: MIT */
/* Replies: how a handler packs its answer into the request (request.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "request.h"

int
brk_reply_ok(brk_request_t *r, Haven__Reply *reply)
{
    reply->id = r->req ? r->req->id : 0;
    reply->status = HAVEN__STATUS__STATUS_OK;
    free(r->reply);
    r->reply = NULL;
    r->status = HAVEN__STATUS__STATUS_OK;
    return hv_pack(&reply->base, &r->reply, &r->reply_len);
}

int
brk_reply_error(brk_request_t *r, int status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.id = r->req ? r->req->id : r->id;
    reply.status = status;
    reply.error = text;
    free(r->reply);
    r->reply = NULL;
    r->status = status;
    /* Out of memory for a few hundred bytes: no reply (the loop tries a
     * bare INTERNAL one, and logs if even that fails). */
    if (hv_pack(&reply.base, &r->reply, &r->reply_len) < 0)
        r->reply = NULL;
    return 1;
}

void
brk_request_clear(brk_request_t *r)
{
    zmq_msg_close(&r->routing);
    if (r->req)
        haven__request__free_unpacked(r->req, NULL);
    free(r->reply);
    memset(r, 0, sizeof *r);
}
