/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the request envelope and every body, as the broker
 * decodes and validates what a peer sends. */
#include <stdint.h>
#include "../../proto/wire.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Haven__Request *req = NULL;
    uint64_t id;
    char err[256];
    if (hv_request_decode(data, size, &req, &id, err, sizeof err) == 0)
        haven__request__free_unpacked(req, NULL);
    return 0;
}
