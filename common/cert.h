/* SPDX-License-Identifier: MIT */
/* Certificates, revocations and signed boxes (design.md section 6, item 9).
 *
 * An administrator's haven-admin signs a Certificate (role, name, provider
 * or region, the three public keys, issued and expiry times) with its own
 * signing key; every client pins its administrators' signing keys
 * ([broker] admin_keys) and trusts a key only through a certificate one of
 * them signed. Every sealed note, address and message is signed by its
 * sender over the box and its context (what it is, hold, provider, unit,
 * recipient), so the broker can neither read, redirect nor forge one. */
#ifndef HV_CERT_H
#define HV_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "haven.pb-c.h"
#include "keys.h"

#define HV_CERT_VERSION 1
/* How long a certificate lasts unless the administrator says (--days): a
 * broker that hides a revocation from clients gains at most this long. */
#define HV_CERT_DAYS_DEFAULT 90
#define HV_CERT_DAYS_MAX 400
#define HV_ADMIN_KEYS_MAX 8

/* The administrators' signing keys a client trusts. */
typedef struct hv_trust {
    uint8_t keys[HV_ADMIN_KEYS_MAX][32];
    size_t n;
} hv_trust_t;

/* Load the pinned keys from a comma-separated list of PATH.pub files (each
 * with a sign line). Returns 0 or -errno with err set. */
int hv_trust_load(const char *files, hv_trust_t *out, char *err, size_t errlen);
bool hv_trust_has(const hv_trust_t *trust, const uint8_t key[32]);

/* Sign c (its issuer is set to the signer's key) into out, whose body and
 * signature are malloc'd (free with hv_signed_clear). Returns 0 or -errno. */
int hv_cert_issue(const hv_keys_t *admin, Haven__Certificate *c, Haven__Signed *out);
int hv_revocation_issue(const hv_keys_t *admin, Haven__Revocation *rv, Haven__Signed *out);
void hv_signed_clear(Haven__Signed *s);

/* Check a signed certificate: its signature by its issuer, its issuer one
 * of trust's keys (trust NULL: issuer must equal issuer_key), its version
 * and that it is valid at now. Returns 0 with *cert_out (free with
 * haven__certificate__free_unpacked), or -EBADMSG / -EPERM (not a trusted
 * issuer, or a bad signature) / -ETIME (expired) with err set. */
int hv_cert_verify(const hv_trust_t *trust, const uint8_t *issuer_key, const Haven__Signed *s, int64_t now,
                   Haven__Certificate **cert_out, char *err, size_t errlen);
int hv_revocation_verify(const hv_trust_t *trust, const uint8_t *issuer_key, const Haven__Signed *s,
                         Haven__Revocation **rv_out, char *err, size_t errlen);

/* What a signature binds a box to. */
typedef struct {
    const char *what;            /* "note", "address", "message" */
    const char *hold;
    const char *provider;
    const char *unit;
} hv_box_context_t;

/* Sign a sealed box in its context with the sender's keys (sets signature
 * and signer, malloc'd: free with the box). Returns 0 or -errno. */
int hv_box_sign(const hv_keys_t *keys, const hv_box_context_t *ctx, Haven__Sealed *box);
/* 0 if box is signed by signer over ctx and its recipient; -EPERM if not
 * signed at all, by another key, or for another context. */
int hv_box_verify(const Haven__Sealed *box, const uint8_t signer[32], const hv_box_context_t *ctx);

/* The IDVA's statement that it asks to hold this unit as this hold: the
 * agent seals the address only to the certified key that made it. */
int hv_hold_sign(const hv_keys_t *keys, const char *hold, const char *provider, const char *unit,
                 uint8_t sig[64]);
int hv_hold_verify(const uint8_t signer[32], const uint8_t *sig, size_t siglen, const char *hold,
                   const char *provider, const char *unit);

/* The certificate of a hold's holder, checked: a trusted issuer, valid at
 * now, an IDVA or on-call officer, named as the hold says, with the hold's
 * sealing key, and the maker of the hold's request signature (so the broker
 * cannot point a hold at someone else). Returns 0 with *cert_out, or
 * -errno with err saying why. */
int hv_cert_holder(const hv_trust_t *trust, const Haven__Hold *h, int64_t now, Haven__Certificate **cert_out,
                   char *err, size_t errlen);

/* A certificate checked as one of provider's agents. */
int hv_cert_agent(const hv_trust_t *trust, const Haven__Signed *s, const char *provider, int64_t now,
                  Haven__Certificate **cert_out, char *err, size_t errlen);

/* Seal plaintext to a 32-byte sealing key (crypto_box_seal) into *box_out
 * (caller frees box_out->recipient.data and box_out->box.data). Returns 0,
 * -EINVAL if the key is unusable (see hv_key_usable) or libsodium refuses
 * to seal, or -ENOMEM. On failure *box_out is empty: there is no box to
 * send or free. */
int hv_seal(const void *plain, size_t len, const uint8_t key[32], Haven__Sealed *box_out);

/* Open a box sealed to our keys. Returns a malloc'd NUL-terminated
 * plaintext, or NULL if it is not ours or was tampered with. */
char *hv_unseal(const hv_keys_t *keys, const Haven__Sealed *box);

#endif
