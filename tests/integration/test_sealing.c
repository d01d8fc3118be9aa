/* SPDX-License-Identifier: MIT */
/* Keys nothing can be sealed to (points of small order) are refused when
 * an administrator registers them, and nobody is registered with them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "../../broker/store.h"
#include "../../common/cert.h"
#include "../../common/keys.h"
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

/* ---------------------------------------------------------------- seal
 * An accept whose address cannot be sealed is never queued: the IDVA
 * would wait for an address that cannot come, or anyone could read it.
 * The broker never registers a small-order key, so this one is put into a
 * stopped broker's store, certified with the administrator's own key (as
 * a rogue administrator could): only the agent's own check stands. */

static const char catalog[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 2\naddress = 3 Sealed Row\n";

static void
s_weaken_holder(const char *hold_id)
{
    char dir[320], err[512], path[320];
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    Haven__Hold *hold = NULL;
    Haven__Principal *p = NULL;
    hv_keys_t *admin = NULL;
    snprintf(path, sizeof path, "%s/admin.key", h.dir);
    cr_assert_eq(hv_keys_load(path, &admin, err, sizeof err), 0, "%s", err);
    snprintf(dir, sizeof dir, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_HOLDS, hold_id, strlen(hold_id), &haven__hold__descriptor,
                                   (ProtobufCMessage **) &hold), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_PRINCIPALS, hold->idva_key.data, 32,
                                   &haven__principal__descriptor, (ProtobufCMessage **) &p), 0);
    Haven__Certificate *c = haven__certificate__unpack(NULL, p->certificate->body.len, p->certificate->body.data);
    cr_assert(c);
    memcpy(c->seal_key.data, s_order8, 32);
    memcpy(p->seal_key.data, s_order8, 32);
    memcpy(hold->idva_seal_key.data, s_order8, 32);
    Haven__Signed cert = HAVEN__SIGNED__INIT;
    ProtobufCBinaryData issuer = c->issuer;  /* hv_cert_issue points it at the admin's key */
    cr_assert_eq(hv_cert_issue(admin, c, &cert), 0);
    c->issuer = issuer;
    Haven__Signed *was = p->certificate;
    p->certificate = &cert;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_PRINCIPALS, hold->idva_key.data, 32, &p->base), 0);
    p->certificate = was;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_HOLDS, hold_id, strlen(hold_id), &hold->base), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    hv_signed_clear(&cert);
    haven__certificate__free_unpacked(c, NULL);
    haven__principal__free_unpacked(p, NULL);
    haven__hold__free_unpacked(hold, NULL);
    brk_store_destroy(&store);
    hv_keys_destroy(&admin);
}

Test(sealing, an_accept_whose_address_cannot_be_sealed_is_never_queued)
{
    char agent[512], idva[512], id[32], token[1024];
    json_t *doc;
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    doc = hh_json(&r);
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(doc, "offers"), 0), "offer")));
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold: %s", r.err);
    doc = hh_json(&r);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);

    hh_stop(&h);
    s_weaken_holder(id);
    hh_restart(&h);
    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", id, NULL);
    cr_assert_eq(r.code, 65, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "cannot seal the address") && strstr(r.err, "nothing was sent"), "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "status", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    doc = hh_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(doc, "queued")), 0, "an accept was queued: %s", r.out);
    json_decref(doc);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "holds", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "pending"), "the referral is still open: %s", r.out);
}
