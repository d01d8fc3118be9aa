/* SPDX-License-Identifier: MIT */
/* Unit tests: certificates, revocations and signed boxes (common/cert.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../../common/cert.h"
#include "../../common/cli.h"

static char s_dir[64];
static hv_keys_t *s_admin, *s_rogue, *s_idva, *s_agent;
static hv_trust_t s_trust;

static hv_keys_t *
s_make(const char *name)
{
    char path[128], err[256];
    hv_keys_t *k = NULL;
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    cr_assert_eq(hv_keys_generate(path), 0);
    snprintf(path, sizeof path, "%s/%s.key", s_dir, name);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), 0, "%s", err);
    return k;
}

static void
setup(void)
{
    char err[256], pub[128];
    cr_assert(sodium_init() >= 0);
    snprintf(s_dir, sizeof s_dir, "/tmp/haven-cert-XXXXXX");
    cr_assert(mkdtemp(s_dir));
    s_admin = s_make("admin");
    s_rogue = s_make("rogue");
    s_idva = s_make("idva");
    s_agent = s_make("agent");
    snprintf(pub, sizeof pub, "%s/admin.pub", s_dir);
    cr_assert_eq(hv_trust_load(pub, &s_trust, err, sizeof err), 0, "%s", err);
}

static void
teardown(void)
{
    hv_keys_destroy(&s_admin);
    hv_keys_destroy(&s_rogue);
    hv_keys_destroy(&s_idva);
    hv_keys_destroy(&s_agent);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cert, .init = setup, .fini = teardown);

static void
s_issue(const hv_keys_t *issuer, const hv_keys_t *k, int role, const char *name, const char *provider,
        int64_t issued, int64_t expires, Haven__Signed *out)
{
    uint8_t curve[32];
    hv_z85_decode32(hv_keys_curve_public(k), curve);
    Haven__Certificate c = HAVEN__CERTIFICATE__INIT;
    c.role = role;
    c.name = (char *) name;
    c.provider = (char *) provider;
    c.curve_key = (ProtobufCBinaryData) { 32, curve };
    c.seal_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_seal_public(k) };
    c.sign_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_sign_public(k) };
    c.issued_at = issued;
    c.expires_at = expires;
    cr_assert_eq(hv_cert_issue(issuer, &c, out), 0);
}

Test(cert, a_certificate_from_a_pinned_administrator_verifies)
{
    char err[256];
    Haven__Signed s = HAVEN__SIGNED__INIT;
    Haven__Certificate *c = NULL;
    int64_t now = (int64_t) time(NULL);
    s_issue(s_admin, s_agent, HAVEN__ROLE__ROLE_AGENT, "refuge-a-agent", "refuge-a", now, now + 86400, &s);
    cr_assert_eq(hv_cert_verify(&s_trust, NULL, &s, now, &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c->name, "refuge-a-agent");
    cr_assert_eq(memcmp(c->seal_key.data, hv_keys_seal_public(s_agent), 32), 0);
    haven__certificate__free_unpacked(c, NULL);
    cr_assert_eq(hv_cert_agent(&s_trust, &s, "refuge-a", now, &c, err, sizeof err), 0, "%s", err);
    haven__certificate__free_unpacked(c, NULL);
    cr_assert_eq(hv_cert_agent(&s_trust, &s, "refuge-b", now, &c, err, sizeof err), -EPERM,
                 "an agent of refuge-a is not one of refuge-b");
    hv_signed_clear(&s);
}

Test(cert, a_rogue_issuer_a_tampered_body_and_an_expired_certificate_are_refused)
{
    char err[256];
    Haven__Signed s = HAVEN__SIGNED__INIT;
    Haven__Certificate *c = NULL;
    int64_t now = (int64_t) time(NULL);
    s_issue(s_rogue, s_agent, HAVEN__ROLE__ROLE_AGENT, "rogue", "refuge-a", now, now + 86400, &s);
    cr_assert_eq(hv_cert_verify(&s_trust, NULL, &s, now, &c, err, sizeof err), -EPERM);
    cr_assert(strstr(err, "not issued by an administrator"), "%s", err);
    hv_signed_clear(&s);

    s_issue(s_admin, s_agent, HAVEN__ROLE__ROLE_AGENT, "agent", "refuge-a", now, now + 86400, &s);
    for (size_t i = 0; i < s.body.len; i += 7) {
        s.body.data[i] ^= 0x01;
        int rc = hv_cert_verify(&s_trust, NULL, &s, now, &c, err, sizeof err);
        cr_assert_lt(rc, 0, "a certificate with byte %zu changed is refused", i);
        s.body.data[i] ^= 0x01;
    }
    s.signature.data[5] ^= 0x80;
    cr_assert_eq(hv_cert_verify(&s_trust, NULL, &s, now, &c, err, sizeof err), -EPERM);
    hv_signed_clear(&s);

    s_issue(s_admin, s_agent, HAVEN__ROLE__ROLE_AGENT, "agent", "refuge-a", now - 200, now - 100, &s);
    cr_assert_eq(hv_cert_verify(&s_trust, NULL, &s, now, &c, err, sizeof err), -ETIME);
    hv_signed_clear(&s);
}

Test(cert, a_signed_box_binds_its_hold_and_its_sender)
{
    Haven__Sealed box = HAVEN__SEALED__INIT;
    const char *address = "1 Example Road";
    cr_assert_eq(hv_seal(address, strlen(address), hv_keys_seal_public(s_idva), &box), 0);
    hv_box_context_t ctx = { "address", "0123456789abcdef", "refuge-a", "room-1" };
    cr_assert_eq(hv_box_sign(s_agent, &ctx, &box), 0);
    cr_assert_eq(hv_box_verify(&box, hv_keys_sign_public(s_agent), &ctx), 0);
    hv_box_context_t other = ctx;
    other.hold = "fedcba9876543210";
    cr_assert_eq(hv_box_verify(&box, hv_keys_sign_public(s_agent), &other), -EPERM, "moved to another hold");
    other = ctx;
    other.what = "note";
    cr_assert_eq(hv_box_verify(&box, hv_keys_sign_public(s_agent), &other), -EPERM, "taken for a note");
    cr_assert_eq(hv_box_verify(&box, hv_keys_sign_public(s_rogue), &ctx), -EPERM, "another signer");
    box.box.data[0] ^= 1;
    cr_assert_eq(hv_box_verify(&box, hv_keys_sign_public(s_agent), &ctx), -EPERM, "another box");
    free(box.recipient.data);
    free(box.box.data);
    free(box.signature.data);
    free(box.signer.data);
}

Test(cert, the_holder_must_have_signed_the_hold)
{
    char err[256];
    int64_t now = (int64_t) time(NULL);
    Haven__Signed s = HAVEN__SIGNED__INIT;
    s_issue(s_admin, s_idva, HAVEN__ROLE__ROLE_IDVA, "idva-1", NULL, now, now + 86400, &s);
    uint8_t sig[64];
    cr_assert_eq(hv_hold_sign(s_idva, "0123456789abcdef", "refuge-a", "room-1", sig), 0);
    Haven__Hold h = HAVEN__HOLD__INIT;
    h.id = "0123456789abcdef";
    h.provider = "refuge-a";
    h.unit = "room-1";
    h.idva = "idva-1";
    h.has_idva_seal_key = h.has_request_signature = 1;
    h.idva_seal_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_seal_public(s_idva) };
    h.request_signature = (ProtobufCBinaryData) { 64, sig };
    h.idva_certificate = &s;
    Haven__Certificate *c = NULL;
    cr_assert_eq(hv_cert_holder(&s_trust, &h, now, &c, err, sizeof err), 0, "%s", err);
    haven__certificate__free_unpacked(c, NULL);
    /* the broker points the hold at another sealing key */
    h.idva_seal_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_seal_public(s_rogue) };
    cr_assert_eq(hv_cert_holder(&s_trust, &h, now, &c, err, sizeof err), -EPERM);
    h.idva_seal_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_seal_public(s_idva) };
    /* ... or at another unit */
    h.unit = "room-2";
    cr_assert_eq(hv_cert_holder(&s_trust, &h, now, &c, err, sizeof err), -EPERM);
    cr_assert(strstr(err, "not signed by that IDVA"), "%s", err);
    h.unit = "room-1";
    /* ... or names someone else */
    h.idva = "idva-2";
    cr_assert_eq(hv_cert_holder(&s_trust, &h, now, &c, err, sizeof err), -EPERM);
    hv_signed_clear(&s);
}

Test(cert, a_revocation_verifies_only_from_its_issuer)
{
    char err[256];
    Haven__Revocation rv = HAVEN__REVOCATION__INIT;
    uint8_t curve[32] = { 1 };
    rv.name = "idva-1";
    rv.curve_key = (ProtobufCBinaryData) { 32, curve };
    rv.revoked_at = 1;
    Haven__Signed s = HAVEN__SIGNED__INIT;
    cr_assert_eq(hv_revocation_issue(s_admin, &rv, &s), 0);
    Haven__Revocation *out = NULL;
    cr_assert_eq(hv_revocation_verify(&s_trust, NULL, &s, &out, err, sizeof err), 0, "%s", err);
    haven__revocation__free_unpacked(out, NULL);
    cr_assert_lt(hv_revocation_verify(NULL, hv_keys_sign_public(s_rogue), &s, &out, err, sizeof err), 0);
    /* a certificate's signature is not a revocation's */
    Haven__Signed c = HAVEN__SIGNED__INIT;
    s_issue(s_admin, s_idva, HAVEN__ROLE__ROLE_IDVA, "idva-1", NULL, 1, 2, &c);
    Haven__Signed swapped = { .base = s.base, .body = s.body, .signature = c.signature };
    cr_assert_lt(hv_revocation_verify(&s_trust, NULL, &swapped, &out, err, sizeof err), 0);
    hv_signed_clear(&c);
    hv_signed_clear(&s);
}

Test(cert, old_key_files_have_a_stable_signing_key_and_keygen_public_of_adds_it)
{
    char path[128], err[256];
    hv_keys_t *again = NULL;
    snprintf(path, sizeof path, "%s/idva.key", s_dir);
    cr_assert_eq(hv_keys_load(path, &again, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(hv_keys_sign_public(again), hv_keys_sign_public(s_idva), 32), 0,
                 "the signing key is derived: the same every time the file is read");
    hv_keys_destroy(&again);
    /* a .pub written before signing keys existed has no sign line */
    snprintf(path, sizeof path, "%s/old.pub", s_dir);
    FILE *f = fopen(path, "w");
    char curve[41], seal[41];
    memcpy(curve, hv_keys_curve_public(s_idva), 41);
    hv_z85_encode32(hv_keys_seal_public(s_idva), seal);
    fprintf(f, "[haven-public-key]\ncurve = %s\nseal = %s\n", curve, seal);
    fclose(f);
    hv_pubkey_t pub;
    cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), 0, "%s", err);
    cr_assert_not(pub.has_sign);
    cr_assert_eq(hv_keys_write_public(s_idva, path), 0);
    cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), 0, "%s", err);
    cr_assert(pub.has_sign);
    cr_assert_eq(memcmp(pub.sign, hv_keys_sign_public(s_idva), 32), 0);
}
