/* SPDX-License-Identifier: MIT */
/* libFuzzer target: offer tokens, which IDVAs paste back to the broker. */
#include <stdint.h>
#include <string.h>
#include "../../broker/offer.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[BRK_OFFER_KEY_BYTES] = { 1, 2, 3 };
    static const uint8_t who[32] = { 4, 5, 6 };
    char token[1024];
    brk_offer_t o;
    if (size >= sizeof token)
        return 0;
    memcpy(token, data, size);
    token[size] = '\0';
    brk_offer_open(key, token, who, 0, &o);
    return 0;
}
