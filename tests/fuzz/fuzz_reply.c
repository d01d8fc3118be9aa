/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the reply envelope, as clients decode it. */
#include <stdint.h>
#include "../../proto/wire.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Haven__Reply *rep = NULL;
    if (hv_reply_decode(data, size, &rep) == 0)
        haven__reply__free_unpacked(rep, NULL);
    return 0;
}
