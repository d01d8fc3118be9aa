/* SPDX-License-Identifier: MIT */
/* Offer tokens: opaque, short-lived, bound to the principal who searched.
 * A token is the unit's key, the searcher's key and an expiry, sealed with
 * a secret only the broker holds (XSalsa20-Poly1305 via crypto_secretbox),
 * so searching writes nothing and a token cannot be forged or moved to
 * another principal. */
#ifndef BRK_OFFER_H
#define BRK_OFFER_H

#include <stddef.h>
#include <stdint.h>
#include "../proto/wire.h"

#define BRK_OFFER_KEY_BYTES 32
#define BRK_OFFER_TOKEN_MAX (HV_TOKEN_MAX + 1)
#define BRK_OFFER_NEED_MAX 200   /* the packed need summary a hold keeps */

typedef struct {
    char provider[HV_ID_MAX + 1];
    char unit[HV_ID_MAX + 1];
    uint8_t principal[32];
    int64_t expires_at;
    uint64_t version;            /* the unit's version when offered */
    uint8_t need_len;            /* packed Need: household and needs, never places */
    uint8_t need[BRK_OFFER_NEED_MAX];
} brk_offer_t;

/* Seal an offer into a printable token (base64url, NUL-terminated).
 * Returns 0, -ENAMETOOLONG, or -EIO if libsodium fails. */
int brk_offer_seal(const uint8_t key[BRK_OFFER_KEY_BYTES], const brk_offer_t *offer,
                   char *token, size_t len);

/* Open a token. -EINVAL: not a token of this broker; -EACCES: another
 * principal's; -ETIME: expired at now. */
int brk_offer_open(const uint8_t key[BRK_OFFER_KEY_BYTES], const char *token,
                   const uint8_t principal[32], int64_t now, brk_offer_t *offer_out);

#endif
