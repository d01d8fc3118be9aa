/* SPDX-License-Identifier: MIT */
/* Certificates, revocations and signed boxes (see cert.h). */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cert.h"

static int
s_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int
hv_trust_load(const char *files, hv_trust_t *out, char *err, size_t errlen)
{
    hv_trust_t t = { .n = 0 };
    char *list = strdup(files ? files : ""), *save = NULL;
    int rc = 0;
    if (!list)
        return -ENOMEM;
    for (char *f = strtok_r(list, ",", &save); f && rc == 0; f = strtok_r(NULL, ",", &save)) {
        while (*f == ' ' || *f == '\t')
            f++;
        for (char *e = f + strlen(f); e > f && (e[-1] == ' ' || e[-1] == '\t'); *--e = '\0') {
        }
        hv_pubkey_t pub;
        if (!*f)
            continue;
        if ((rc = hv_pubkey_load(f, &pub, err, errlen)) < 0)
            break;
        if (!pub.has_sign) {
            rc = s_fail(err, errlen, -EINVAL, "%s has no signing key (sign = ...): make it again with "
                        "`haven-admin keygen --public-of` on the administrator's machine", f);
        } else if (t.n == HV_ADMIN_KEYS_MAX) {
            rc = s_fail(err, errlen, -E2BIG, "admin_keys names more than %d keys", HV_ADMIN_KEYS_MAX);
        } else {
            memcpy(t.keys[t.n++], pub.sign, 32);
        }
    }
    free(list);
    if (rc == 0 && t.n == 0)
        rc = s_fail(err, errlen, -EINVAL, "admin_keys names no administrator's public key file");
    if (rc == 0)
        *out = t;
    return rc;
}

bool
hv_trust_has(const hv_trust_t *trust, const uint8_t key[32])
{
    for (size_t i = 0; i < trust->n; i++)
        if (sodium_memcmp(trust->keys[i], key, 32) == 0)
            return true;
    return false;
}

/* Ed25519 over a domain tag and the body, so a certificate's signature can
 * never be taken for a revocation's or a box's. */
static int
s_digest(const char *tag, const uint8_t *body, size_t len, uint8_t out[64])
{
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, NULL, 0, 64) != 0
        || crypto_generichash_update(&st, (const uint8_t *) tag, strlen(tag) + 1) != 0
        || crypto_generichash_update(&st, body, len) != 0
        || crypto_generichash_final(&st, out, 64) != 0)
        return -EIO;
    return 0;
}

static int
s_sign_body(const hv_keys_t *k, const char *tag, const ProtobufCMessage *msg, Haven__Signed *out)
{
    uint8_t digest[64];
    haven__signed__init(out);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *body = malloc(len ? len : 1), *sig = malloc(crypto_sign_BYTES);
    if (!body || !sig) {
        free(body);
        free(sig);
        return -ENOMEM;
    }
    protobuf_c_message_pack(msg, body);
    if (s_digest(tag, body, len, digest) < 0
        || crypto_sign_detached(sig, NULL, digest, sizeof digest, hv_keys_sign_secret(k)) != 0) {
        free(body);
        free(sig);
        return -EIO;
    }
    out->body = (ProtobufCBinaryData) { len, body };
    out->signature = (ProtobufCBinaryData) { crypto_sign_BYTES, sig };
    return 0;
}

int
hv_cert_issue(const hv_keys_t *admin, Haven__Certificate *c, Haven__Signed *out)
{
    c->issuer = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_sign_public(admin) };
    c->version = HV_CERT_VERSION;
    return s_sign_body(admin, "haven-certificate-v1", &c->base, out);
}

int
hv_revocation_issue(const hv_keys_t *admin, Haven__Revocation *rv, Haven__Signed *out)
{
    rv->issuer = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_sign_public(admin) };
    return s_sign_body(admin, "haven-revocation-v1", &rv->base, out);
}

void
hv_signed_clear(Haven__Signed *s)
{
    free(s->body.data);
    free(s->signature.data);
    haven__signed__init(s);
}

/* The issuer named inside a body must have made the signature, and must be
 * trusted: pinned (trust) or the one key given. */
static int
s_check_signed(const hv_trust_t *trust, const uint8_t *issuer_key, const char *tag, const Haven__Signed *s,
               const ProtobufCBinaryData *issuer, char *err, size_t errlen)
{
    uint8_t digest[64];
    if (issuer->len != 32 || s->signature.len != crypto_sign_BYTES)
        return s_fail(err, errlen, -EBADMSG, "it is not a signed Haven certificate");
    if (trust ? !hv_trust_has(trust, issuer->data) : sodium_memcmp(issuer->data, issuer_key, 32) != 0)
        return s_fail(err, errlen, -EPERM, "it was not issued by an administrator this configuration trusts "
                      "([broker] admin_keys)");
    if (s_digest(tag, s->body.data, s->body.len, digest) < 0
        || crypto_sign_verify_detached(s->signature.data, digest, sizeof digest, issuer->data) != 0)
        return s_fail(err, errlen, -EPERM, "its signature does not verify: it was altered or forged");
    return 0;
}

int
hv_cert_verify(const hv_trust_t *trust, const uint8_t *issuer_key, const Haven__Signed *s, int64_t now,
               Haven__Certificate **cert_out, char *err, size_t errlen)
{
    if (!s)
        return s_fail(err, errlen, -EBADMSG, "there is no certificate");
    Haven__Certificate *c = haven__certificate__unpack(NULL, s->body.len, s->body.data);
    if (!c)
        return s_fail(err, errlen, -EBADMSG, "it is not a Haven certificate");
    int rc = s_check_signed(trust, issuer_key, "haven-certificate-v1", s, &c->issuer, err, errlen);
    if (rc == 0 && (c->version != HV_CERT_VERSION || c->curve_key.len != 32 || c->seal_key.len != 32
                    || c->sign_key.len != 32))
        rc = s_fail(err, errlen, -EBADMSG, "it is not a certificate this version of Haven reads");
    if (rc == 0 && (now < c->issued_at - 300 || now >= c->expires_at))
        rc = s_fail(err, errlen, -ETIME, "the certificate of %s is not valid now (it expired, or is not yet "
                    "valid): ask an administrator to run haven-admin certify", c->name);
    if (rc < 0) {
        haven__certificate__free_unpacked(c, NULL);
        return rc;
    }
    *cert_out = c;
    return 0;
}

int
hv_revocation_verify(const hv_trust_t *trust, const uint8_t *issuer_key, const Haven__Signed *s,
                     Haven__Revocation **rv_out, char *err, size_t errlen)
{
    Haven__Revocation *rv = haven__revocation__unpack(NULL, s->body.len, s->body.data);
    if (!rv)
        return s_fail(err, errlen, -EBADMSG, "it is not a Haven revocation");
    int rc = s_check_signed(trust, issuer_key, "haven-revocation-v1", s, &rv->issuer, err, errlen);
    if (rc == 0 && rv->curve_key.len != 32)
        rc = s_fail(err, errlen, -EBADMSG, "it is not a revocation this version of Haven reads");
    if (rc < 0) {
        haven__revocation__free_unpacked(rv, NULL);
        return rc;
    }
    *rv_out = rv;
    return 0;
}

/* What a box's or a hold's signature covers: a tag, then each field with
 * its length, so no two contexts can run together. */
static int
s_context_digest(const char *tag, const char *const *fields, size_t n, const ProtobufCBinaryData *blobs,
                 size_t nblobs, uint8_t out[64])
{
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, NULL, 0, 64) != 0
        || crypto_generichash_update(&st, (const uint8_t *) tag, strlen(tag) + 1) != 0)
        return -EIO;
    for (size_t i = 0; i < n + nblobs; i++) {
        const uint8_t *p = i < n ? (const uint8_t *) (fields[i] ? fields[i] : "") : blobs[i - n].data;
        uint64_t len = i < n ? strlen((const char *) p) : blobs[i - n].len;
        uint8_t be[8];
        for (int b = 0; b < 8; b++)
            be[b] = (uint8_t) (len >> (56 - 8 * b));
        if (crypto_generichash_update(&st, be, 8) != 0 || (len && crypto_generichash_update(&st, p, len) != 0))
            return -EIO;
    }
    return crypto_generichash_final(&st, out, 64) == 0 ? 0 : -EIO;
}

static int
s_box_digest(const hv_box_context_t *ctx, const Haven__Sealed *box, uint8_t out[64])
{
    const char *fields[] = { ctx->what, ctx->hold, ctx->provider, ctx->unit };
    ProtobufCBinaryData blobs[] = { box->recipient, box->box };
    return s_context_digest("haven-box-v1", fields, 4, blobs, 2, out);
}

int
hv_box_sign(const hv_keys_t *keys, const hv_box_context_t *ctx, Haven__Sealed *box)
{
    uint8_t digest[64];
    uint8_t *sig = malloc(crypto_sign_BYTES), *signer = malloc(32);
    int rc = sig && signer ? s_box_digest(ctx, box, digest) : -ENOMEM;
    if (rc == 0 && crypto_sign_detached(sig, NULL, digest, sizeof digest, hv_keys_sign_secret(keys)) != 0)
        rc = -EIO;
    if (rc < 0) {
        free(sig);
        free(signer);
        return rc;
    }
    memcpy(signer, hv_keys_sign_public(keys), 32);
    box->has_signature = box->has_signer = 1;
    box->signature = (ProtobufCBinaryData) { crypto_sign_BYTES, sig };
    box->signer = (ProtobufCBinaryData) { 32, signer };
    return 0;
}

int
hv_box_verify(const Haven__Sealed *box, const uint8_t signer[32], const hv_box_context_t *ctx)
{
    uint8_t digest[64];
    if (!box->has_signature || box->signature.len != crypto_sign_BYTES || !box->has_signer
        || box->signer.len != 32 || sodium_memcmp(box->signer.data, signer, 32) != 0)
        return -EPERM;
    if (s_box_digest(ctx, box, digest) < 0
        || crypto_sign_verify_detached(box->signature.data, digest, sizeof digest, signer) != 0)
        return -EPERM;
    return 0;
}

int
hv_hold_sign(const hv_keys_t *keys, const char *hold, const char *provider, const char *unit, uint8_t sig[64])
{
    uint8_t digest[64];
    const char *fields[] = { hold, provider, unit };
    if (s_context_digest("haven-hold-v1", fields, 3, NULL, 0, digest) < 0
        || crypto_sign_detached(sig, NULL, digest, sizeof digest, hv_keys_sign_secret(keys)) != 0)
        return -EIO;
    return 0;
}

int
hv_hold_verify(const uint8_t signer[32], const uint8_t *sig, size_t siglen, const char *hold,
               const char *provider, const char *unit)
{
    uint8_t digest[64];
    const char *fields[] = { hold, provider, unit };
    if (!sig || siglen != crypto_sign_BYTES || s_context_digest("haven-hold-v1", fields, 3, NULL, 0, digest) < 0
        || crypto_sign_verify_detached(sig, digest, sizeof digest, signer) != 0)
        return -EPERM;
    return 0;
}

int
hv_cert_holder(const hv_trust_t *trust, const Haven__Hold *h, int64_t now, Haven__Certificate **cert_out,
               char *err, size_t errlen)
{
    char why[256];
    Haven__Certificate *c = NULL;
    if (!h->idva_certificate)
        return s_fail(err, errlen, -EPERM, "the IDVA who holds %s has no certificate", h->id);
    int rc = hv_cert_verify(trust, NULL, h->idva_certificate, now, &c, why, sizeof why);
    if (rc < 0)
        return s_fail(err, errlen, rc, "the certificate of the IDVA who holds %s is refused: %s", h->id, why);
    const char *problem = NULL;
    if (c->role != HAVEN__ROLE__ROLE_IDVA && c->role != HAVEN__ROLE__ROLE_ONCALL)
        problem = "it is not an IDVA's or on-call officer's";
    else if (!h->idva || strcmp(c->name, h->idva) != 0)
        problem = "it is not the certificate of the IDVA the hold names";
    else if (h->idva_seal_key.len != 32 || sodium_memcmp(c->seal_key.data, h->idva_seal_key.data, 32) != 0)
        problem = "the hold's sealing key is not the one the certificate names";
    else if (!h->has_request_signature
             || hv_hold_verify(c->sign_key.data, h->request_signature.data, h->request_signature.len, h->id,
                               h->provider, h->unit) < 0)
        problem = "the request for this hold is not signed by that IDVA";
    if (problem) {
        haven__certificate__free_unpacked(c, NULL);
        return s_fail(err, errlen, -EPERM, "hold %s: %s", h->id, problem);
    }
    *cert_out = c;
    return 0;
}

int
hv_cert_agent(const hv_trust_t *trust, const Haven__Signed *s, const char *provider, int64_t now,
              Haven__Certificate **cert_out, char *err, size_t errlen)
{
    char why[256];
    Haven__Certificate *c = NULL;
    int rc = hv_cert_verify(trust, NULL, s, now, &c, why, sizeof why);
    if (rc < 0)
        return s_fail(err, errlen, rc, "%s", why);
    if (c->role != HAVEN__ROLE__ROLE_AGENT || !c->provider || strcmp(c->provider, provider) != 0) {
        rc = s_fail(err, errlen, -EPERM, "%s is not certified as an agent of %s", c->name, provider);
        haven__certificate__free_unpacked(c, NULL);
        return rc;
    }
    *cert_out = c;
    return 0;
}

int
hv_seal(const void *plain, size_t len, const uint8_t key[32], Haven__Sealed *box_out)
{
    haven__sealed__init(box_out);
    /* crypto_box_seal refuses a small-order key but leaves the box as it
     * was: a caller that did not look would send uninitialised heap, or
     * worse, so ask first and look anyway. */
    if (!hv_key_usable(key) || len > SIZE_MAX - crypto_box_SEALBYTES)
        return -EINVAL;
    uint8_t *box = malloc(len + crypto_box_SEALBYTES);
    uint8_t *k = malloc(32);
    if (!box || !k) {
        free(box);
        free(k);
        return -ENOMEM;
    }
    if (crypto_box_seal(box, plain, len, key) != 0) {
        sodium_memzero(box, len + crypto_box_SEALBYTES);
        free(box);
        free(k);
        return -EINVAL;
    }
    memcpy(k, key, 32);
    box_out->recipient = (ProtobufCBinaryData) { 32, k };
    box_out->box = (ProtobufCBinaryData) { len + crypto_box_SEALBYTES, box };
    return 0;
}

char *
hv_unseal(const hv_keys_t *keys, const Haven__Sealed *s)
{
    if (!s || s->box.len < crypto_box_SEALBYTES || s->recipient.len != 32
        || memcmp(s->recipient.data, hv_keys_seal_public(keys), 32) != 0)
        return NULL;
    size_t len = s->box.len - crypto_box_SEALBYTES;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    if (crypto_box_seal_open((uint8_t *) out, s->box.data, s->box.len, hv_keys_seal_public(keys),
                             hv_keys_seal_secret(keys)) != 0) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    return out;
}
