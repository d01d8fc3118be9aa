/* SPDX-License-Identifier: MIT */
/* Offer tokens (see offer.h). */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include "offer.h"

/* plaintext: expires_at(8) version(8) principal(32) plen(1) provider ulen(1) unit
 * nlen(1) need */
#define PLAIN_MAX (8 + 8 + 32 + 1 + HV_ID_MAX + 1 + HV_ID_MAX + 1 + BRK_OFFER_NEED_MAX)
#define BOX_MAX (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + PLAIN_MAX)

int
brk_offer_seal(const uint8_t key[BRK_OFFER_KEY_BYTES], const brk_offer_t *o,
               char *token, size_t len)
{
    uint8_t plain[PLAIN_MAX], box[BOX_MAX];
    size_t pl = strlen(o->provider), ul = strlen(o->unit), n = 0;
    if (pl > HV_ID_MAX || ul > HV_ID_MAX)
        return -ENAMETOOLONG;
    memcpy(plain + n, &o->expires_at, 8), n += 8;
    memcpy(plain + n, &o->version, 8), n += 8;
    memcpy(plain + n, o->principal, 32), n += 32;
    plain[n++] = (uint8_t) pl;
    memcpy(plain + n, o->provider, pl), n += pl;
    plain[n++] = (uint8_t) ul;
    memcpy(plain + n, o->unit, ul), n += ul;
    if (o->need_len > BRK_OFFER_NEED_MAX)
        return -ENAMETOOLONG;
    plain[n++] = o->need_len;
    memcpy(plain + n, o->need, o->need_len), n += o->need_len;

    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    int rc = crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, plain, n, box, key);
    sodium_memzero(plain, sizeof plain);
    if (rc != 0)
        return -EIO;
    size_t blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    /* "o" first: a token must never start with '-', or a command line
     * would take it for an option. */
    if (sodium_base64_encoded_len(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) + 1 > len)
        return -ENAMETOOLONG;
    token[0] = 'o';
    sodium_bin2base64(token + 1, len - 1, box, blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int
brk_offer_open(const uint8_t key[BRK_OFFER_KEY_BYTES], const char *token,
               const uint8_t principal[32], int64_t now, brk_offer_t *out)
{
    uint8_t box[BOX_MAX], plain[PLAIN_MAX];
    size_t blen, n = 0;
    brk_offer_t o;
    if (token[0] != 'o')
        return -EINVAL;
    token++;
    if (sodium_base642bin(box, sizeof box, token, strlen(token), NULL, &blen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0
        || blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 8 + 8 + 32 + 3)
        return -EINVAL;
    size_t plen = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (crypto_secretbox_open_easy(plain, box + crypto_secretbox_NONCEBYTES,
                                   blen - crypto_secretbox_NONCEBYTES, box, key) != 0)
        return -EINVAL;
    memset(&o, 0, sizeof o);
    memcpy(&o.expires_at, plain + n, 8), n += 8;
    memcpy(&o.version, plain + n, 8), n += 8;
    memcpy(o.principal, plain + n, 32), n += 32;
    size_t pl = plain[n++];
    if (pl > HV_ID_MAX || n + pl + 1 > plen)
        return -EINVAL;
    memcpy(o.provider, plain + n, pl), n += pl;
    size_t ul = plain[n++];
    if (ul > HV_ID_MAX || n + ul + 1 > plen)
        return -EINVAL;
    memcpy(o.unit, plain + n, ul), n += ul;
    size_t nl = plain[n++];
    if (nl > BRK_OFFER_NEED_MAX || n + nl != plen)
        return -EINVAL;
    o.need_len = (uint8_t) nl;
    memcpy(o.need, plain + n, nl);
    if (sodium_memcmp(o.principal, principal, 32) != 0)
        return -EACCES;
    if (o.expires_at <= now)
        return -ETIME;
    *out = o;
    return 0;
}
