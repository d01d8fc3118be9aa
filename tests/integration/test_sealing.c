/* SPDX-License-Identifier: MIT */
/* Keys nothing can be sealed to (points of small order) are refused when
 * an administrator registers them, and nobody is registered with them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "../../proto/keys.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;

static void setup(void) { hh_start(&h, NULL); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(sealing, .init = setup, .fini = teardown, .timeout = 120);

/* A point of order 8: a box sealed to it has no secret in it. */
static const uint8_t s_order8[32] = {
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
};

/* Whether `principal list` names name. */
static bool
s_listed(const char *name)
{
    json_t *p;
    size_t i;
    bool found = false;
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "principal", "list", NULL);
    cr_assert_eq(r.code, 0, "principal list: %s", r.err);
    json_t *doc = hh_json(&r);
    json_array_foreach(json_object_get(doc, "principals"), i, p)
        found |= strcmp(json_string_value(json_object_get(p, "name")), name) == 0;
    json_decref(doc);
    return found;
}

/* Register name as an IDVA with a .pub file holding these keys; returns
 * the exit code, with r holding the output. */
static int
s_add_idva(const char *name, const uint8_t curve[32], const uint8_t seal[32])
{
    char zc[41], zs[41], zg[41], text[256], file[64], pub[512];
    uint8_t sign_pk[32], sign_sk[64];
    cr_assert_eq(crypto_sign_keypair(sign_pk, sign_sk), 0);
    sodium_memzero(sign_sk, sizeof sign_sk);
    hv_z85_encode32(curve, zc);
    hv_z85_encode32(seal, zs);
    hv_z85_encode32(sign_pk, zg);
    snprintf(text, sizeof text, "[haven-public-key]\ncurve = %s\nseal = %s\nsign = %s\n", zc, zs, zg);
    snprintf(file, sizeof file, "%s.pub", name);
    hh_write(&h, file, text, pub, sizeof pub);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "idva",
           "--name", name, "--public-key", pub, NULL);
    return r.code;
}

static void
s_good_key(uint8_t pk[32])
{
    uint8_t sk[32];
    cr_assert_eq(sodium_init() >= 0, 1);
    cr_assert_eq(crypto_box_keypair(pk, sk), 0);
    sodium_memzero(sk, sizeof sk);
}

Test(sealing, a_small_order_sealing_key_is_not_registered)
{
    uint8_t good[32];
    s_good_key(good);
    cr_assert_eq(s_add_idva("idva-weak", good, s_order8), 65, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "unusable"), "stderr: %s", r.err);
    cr_assert_not(s_listed("idva-weak"), "a principal with an unusable sealing key was registered");
    /* the name was not taken: with a good key it registers */
    uint8_t seal[32];
    s_good_key(seal);
    cr_assert_eq(s_add_idva("idva-weak", good, seal), 0, "exit %d: %s", r.code, r.err);
    cr_assert(s_listed("idva-weak"));
}

Test(sealing, a_small_order_curve_key_is_not_registered)
{
    /* p with the top bit set: yet another encoding of 0 */
    uint8_t p[32], seal[32];
    memset(p, 0xff, sizeof p);
    p[0] = 0xed;
    p[31] = 0xff;                    /* top bit set too */
    s_good_key(seal);
    cr_assert_eq(s_add_idva("idva-weak-curve", p, seal), 65, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "unusable"), "stderr: %s", r.err);
    cr_assert_not(s_listed("idva-weak-curve"), "a principal with an unusable CURVE key was registered");
}
