/* SPDX-License-Identifier: MIT */
/* Offer tokens: bound to the searcher, expiring, unforgeable. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include "../../broker/offer.h"

Test(offer, seal_and_open)
{
    uint8_t key[32], me[32], you[32];
    char token[BRK_OFFER_TOKEN_MAX];
    cr_assert(sodium_init() >= 0);
    randombytes_buf(key, 32);
    randombytes_buf(me, 32);
    randombytes_buf(you, 32);
    brk_offer_t o = { .provider = "refuge-1", .unit = "room-1", .expires_at = 1000, .version = 9 }, back;
    memcpy(o.principal, me, 32);
    cr_assert_eq(brk_offer_seal(key, &o, token, sizeof token), 0);
    cr_assert(!strstr(token, "refuge-1"), "a token is opaque");

    cr_assert_eq(brk_offer_open(key, token, me, 999, &back), 0);
    cr_assert_str_eq(back.provider, "refuge-1");
    cr_assert_str_eq(back.unit, "room-1");
    cr_assert_eq(back.version, 9);
    cr_assert_eq(brk_offer_open(key, token, you, 999, &back), -EACCES);
    cr_assert_eq(brk_offer_open(key, token, me, 1000, &back), -ETIME);

    token[10] = token[10] == 'A' ? 'B' : 'A';
    cr_assert_eq(brk_offer_open(key, token, me, 999, &back), -EINVAL);
    cr_assert_eq(brk_offer_open(key, "not a token", me, 999, &back), -EINVAL);
    uint8_t other[32];
    randombytes_buf(other, 32);
    token[10] = token[10] == 'A' ? 'B' : 'A';
    cr_assert_eq(brk_offer_open(other, token, me, 999, &back), -EINVAL);
}
