/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the request envelope and every body, as the broker
 * decodes and validates what a peer sends: the allocation-free peek the
 * broker authorises by must agree with the full decode, and a decode that
 * runs out of its memory budget must fail cleanly (no leak, no crash). */
#include <stdlib.h>
#include <stdint.h>
#include "../../proto/wire.h"

static size_t s_left;

static void *
s_alloc(void *data, size_t size)
{
    (void) data;
    if (size > s_left)
        return NULL;
    s_left -= size;
    return malloc(size);
}

static void
s_free(void *data, void *p)
{
    (void) data;
    free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Haven__Request *req = NULL;
    uint64_t id, peek_id;
    int body;
    char err[256];
    int peeked = hv_request_peek(data, size, &peek_id, &body);
    if (hv_request_decode(data, size, &req, &id, err, sizeof err) == 0) {
        if (peeked != 0 || peek_id != id || body != (int) req->body_case)
            abort();             /* the broker would authorise the wrong operation */
        haven__request__free_unpacked(req, NULL);
    }
    ProtobufCAllocator tight = { s_alloc, s_free, NULL };
    s_left = size;               /* about what a small budget leaves */
    req = NULL;
    if (hv_request_decode_alloc(data, size, &tight, &req, &id, err, sizeof err) == 0)
        haven__request__free_unpacked(req, &tight);
    return 0;
}
