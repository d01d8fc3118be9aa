/* SPDX-License-Identifier: MIT */
/* The broker cannot read, redirect or forge (design.md section 6, item 9),
 * through the real programs: a rogue agent key enrolled through the broker
 * gets no note and its address is refused; a tampered certificate is
 * refused; an address moved to another hold is refused. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../broker/store.h"
#include "../../common/cert.h"
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512];

#define ADDRESS "14 Hidden Mews, Cambridge CB1 9ZZ"
#define FALSE_ADDRESS "666 Perpetrator Avenue"
#define NOTE "Survivor A. Example, call after 6pm, code word bluebell"

static const char catalog[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\naddress = " ADDRESS "\n"
    "[unit room-2]\nmax_occupants = 3\naddress = 2 Other Road, Cambridge\n";

static void
setup(void)
{
    hh_start(&h, NULL);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    for (int i = 1; i <= 2; i++) {
        char unit[16];
        snprintf(unit, sizeof unit, "room-%d", i);
        hh_run(&h, &r, "haven-agent", "--config", agent, "set", unit, "available", NULL);
        cr_assert_eq(r.code, 0, "set: %s", r.err);
    }
}

static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(trust, .init = setup, .fini = teardown, .timeout = 120);

static void
s_offer(const char *unit, char *token, size_t len)
{
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--gender", "woman", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    json_t *doc = hh_json(&r), *o;
    size_t i;
    token[0] = '\0';
    json_array_foreach(json_object_get(doc, "offers"), i, o)
        if (strcmp(json_string_value(json_object_get(o, "unit")), unit) == 0)
            snprintf(token, len, "%s", json_string_value(json_object_get(o, "offer")));
    json_decref(doc);
    cr_assert(token[0], "no offer for %s", unit);
}

static void
s_hold(const char *unit, char *id, size_t len)
{
    char token[1024], note[512];
    s_offer(unit, token, sizeof token);
    hh_write(&h, "note.txt", NOTE, note, sizeof note);
    hh_run(&h, &r, "haven", "--config", idva, "hold", token, "--note-file", note, NULL);
    cr_assert_eq(r.code, 0, "hold: %s", r.err);
    snprintf(id, len, "%.16s", r.out);
}

/* A rogue administrator session (or a compromised broker) enrols an agent
 * key for the refuge. The IDVA's client, which trusts only the real
 * administrator, seals the note only to the real agent, and refuses the
 * rogue agent's address. */
Test(trust, a_rogue_agent_key_gets_no_note_and_its_address_is_refused)
{
    char rogue_admin[512], rogue_agent[512], pub[512], text[2048], hold[32];
    hh_unregistered(&h, "rogue-admin", rogue_admin, sizeof rogue_admin);
    snprintf(pub, sizeof pub, "%s/rogue-admin.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "admin", "--name",
           "rogue-admin", "--public-key", pub, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_unregistered(&h, "rogue-agent", rogue_agent, sizeof rogue_agent);
    snprintf(pub, sizeof pub, "%s/rogue-agent.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", rogue_admin, "principal", "add", "--role", "agent", "--name",
           "rogue-agent", "--public-key", pub, "--provider", "refuge-a", NULL);
    cr_assert_eq(r.code, 0, "the broker lets any administrator enrol an agent: %s", r.err);
    /* the rogue agent's own catalog says where to send the survivor */
    snprintf(text, sizeof text, "[service]\ngenders = women\n[unit room-1]\nmax_occupants = 3\naddress = "
             FALSE_ADDRESS "\n[unit room-2]\nmax_occupants = 3\naddress = " FALSE_ADDRESS "\n");
    hh_write(&h, "rogue.ini", text, NULL, 0);
    snprintf(text, sizeof text,
             "[broker]\nendpoint = %s\npublic_key = %s/data/broker.pub\nadmin_keys = %s/admin.pub\n"
             "timeout_ms = 2000\nretries = 2\n[identity]\nkey = %s/rogue-agent.key\n"
             "[agent]\nprovider = refuge-a\ncatalog = %s/rogue.ini\nstate_dir = %s/rogue-state\n",
             h.endpoint, h.dir, h.dir, h.dir, h.dir, h.dir);
    hh_write(&h, "rogue-agent.conf", text, rogue_agent, sizeof rogue_agent);

    s_hold("room-1", hold, sizeof hold);
    cr_assert(strstr(r.err, "not sealing the note") && strstr(r.err, "trusts"),
              "the IDVA is told a listed key was refused: %s", r.err);
    /* the real agent reads the note; the rogue one cannot */
    hh_run(&h, &r, "haven-agent", "--config", agent, "referrals", NULL);
    cr_assert(strstr(r.out, "bluebell"), "the certified agent reads the note: %s %s", r.out, r.err);
    hh_run(&h, &r, "haven-agent", "--config", rogue_agent, "referrals", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(!strstr(r.out, "bluebell"), "the rogue agent read the note: %s", r.out);
    /* the rogue agent answers first, with its false address */
    hh_run(&h, &r, "haven-agent", "--config", rogue_agent, "accept", hold, NULL);
    cr_assert_eq(r.code, 0, "the broker takes the rogue answer: %s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "address", hold, NULL);
    cr_assert_eq(r.code, 65, "the IDVA's client refuses the address: %d %s %s", r.code, r.out, r.err);
    cr_assert(!strstr(r.out, "666"), "the false address was printed: %s", r.out);
    cr_assert(strstr(r.err, "certified") && strstr(r.err, "do not use it"), "%s", r.err);
}

/* A certificate altered after the administrator signed it (here: its role
 * raised to admin) is refused by the broker. */
Test(trust, a_tampered_certificate_is_refused)
{
    char conf[512], err[512], pub[512];
    hv_clientcfg_t *cfg = NULL;
    hv_keys_t *admin = NULL;
    hv_pubkey_t broker, target;
    hh_unregistered(&h, "mallory", conf, sizeof conf);
    cr_assert(sodium_init() >= 0);
    cr_assert_eq(hv_clientcfg_load(h.admin_conf, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(hv_keys_load(cfg->key, &admin, err, sizeof err), 0, "%s", err);
    cr_assert_eq(hv_pubkey_load(cfg->broker_key, &broker, err, sizeof err), 0, "%s", err);
    snprintf(pub, sizeof pub, "%s/mallory.pub", h.dir);
    cr_assert_eq(hv_pubkey_load(pub, &target, err, sizeof err), 0, "%s", err);

    Haven__Certificate c = HAVEN__CERTIFICATE__INIT;
    c.role = HAVEN__ROLE__ROLE_IDVA;
    c.name = "mallory";
    c.curve_key = (ProtobufCBinaryData) { 32, target.curve_raw };
    c.seal_key = (ProtobufCBinaryData) { 32, target.seal };
    c.sign_key = (ProtobufCBinaryData) { 32, target.sign };
    c.issued_at = (int64_t) time(NULL);
    c.expires_at = c.issued_at + 86400;
    Haven__Signed cert = HAVEN__SIGNED__INIT;
    cr_assert_eq(hv_cert_issue(admin, &c, &cert), 0);
    /* after signing: the role byte (field 2, a varint) becomes admin */
    for (size_t i = 0; i + 1 < cert.body.len; i++)
        if (cert.body.data[i] == 0x10 && cert.body.data[i + 1] == HAVEN__ROLE__ROLE_IDVA) {
            cert.body.data[i + 1] = HAVEN__ROLE__ROLE_ADMIN;
            break;
        }
    Haven__Principal p = HAVEN__PRINCIPAL__INIT;
    p.name = "mallory";
    p.role = HAVEN__ROLE__ROLE_ADMIN;
    p.curve_key = c.curve_key;
    p.has_seal_key = p.has_sign_key = 1;
    p.seal_key = c.seal_key;
    p.sign_key = c.sign_key;
    Haven__PrincipalAdd add = HAVEN__PRINCIPAL_ADD__INIT;
    add.principal = &p;
    add.certificate = &cert;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_ADD;
    req.principal_add = &add;
    hv_conn_t *conn = hv_conn_new(cfg->endpoint, broker.curve, admin, 5000, 1);
    Haven__Reply *rep = NULL;
    cr_assert_eq(hv_conn_call(conn, &req, &rep), 0);
    cr_assert_neq(rep->status, HAVEN__STATUS__STATUS_OK, "a tampered certificate was taken");
    cr_assert(rep->error && strstr(rep->error, "does not verify"), "%s", rep->error);
    haven__reply__free_unpacked(rep, NULL);
    hv_conn_destroy(&conn);
    hv_signed_clear(&cert);
    hv_keys_destroy(&admin);
    hv_clientcfg_destroy(&cfg);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "list", NULL);
    cr_assert(!strstr(r.out, "mallory"), "%s", r.out);
}

/* Move hold A's sealed address (and its agent's certificate) into hold B,
 * in the store, as a compromised broker could: B's address is refused. */
Test(trust, an_address_moved_to_another_hold_is_refused)
{
    char a[32], b[32], dir[512];
    s_hold("room-1", a, sizeof a);
    s_hold("room-2", b, sizeof b);
    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", a, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "address", a, NULL);
    cr_assert_eq(r.code, 0, "the real address opens: %s", r.err);
    cr_assert(strstr(r.out, ADDRESS), "%s", r.out);

    hh_stop(&h);
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    Haven__Hold *ha = NULL, *hb = NULL;
    snprintf(dir, sizeof dir, "%s/data", h.dir);
    cr_assert_eq(brk_store_open(dir, 64 << 20, &store), 0);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_HOLDS, a, 16, &haven__hold__descriptor,
                                   (ProtobufCMessage **) &ha), 0);
    cr_assert_eq(brk_store_get_msg(store, txn, BRK_DB_HOLDS, b, 16, &haven__hold__descriptor,
                                   (ProtobufCMessage **) &hb), 0);
    hb->state = HAVEN__HOLD_STATE__HOLD_ACCEPTED;
    hb->address = ha->address;
    hb->answered_by = ha->answered_by;
    cr_assert_eq(brk_store_put_msg(store, txn, BRK_DB_HOLDS, b, 16, &hb->base), 0);
    hb->address = NULL;
    hb->answered_by = NULL;
    cr_assert_eq(brk_store_commit(txn), 0);
    haven__hold__free_unpacked(ha, NULL);
    haven__hold__free_unpacked(hb, NULL);
    brk_store_destroy(&store);
    hh_restart(&h);

    hh_run(&h, &r, "haven", "--config", idva, "address", b, NULL);
    cr_assert_eq(r.code, 65, "a moved address is refused: %d %s %s", r.code, r.out, r.err);
    cr_assert(!strstr(r.out, "Hidden Mews"), "%s", r.out);
    cr_assert(strstr(r.err, "moved from another referral"), "%s", r.err);
}

/* An administrator certifies a registered principal again (a renewal, or a
 * principal registered before certificates), only with its own keys. */
Test(trust, certify_issues_a_certificate_for_the_registered_key_only)
{
    char pub[512], other[512];
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "list", NULL);
    cr_assert(strstr(r.out, "certified until"), "%s", r.out);
    snprintf(pub, sizeof pub, "%s/idva-1.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "certify", "--name", "idva-1", "--role", "idva",
           "--public-key", pub, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "certified idva-1"), "%s", r.out);
    /* what is certified is what the administrator says, not what the broker lists */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "certify", "--name", "idva-1", "--role", "agent",
           "--provider", "refuge-a", "--public-key", pub, NULL);
    cr_assert_eq(r.code, 65, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "not as you said"), "%s", r.err);
    hh_unregistered(&h, "someone-else", other, sizeof other);
    snprintf(other, sizeof other, "%s/someone-else.pub", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "certify", "--name", "idva-1", "--role", "idva",
           "--public-key", other, NULL);
    cr_assert_eq(r.code, 65, "another key is not certified as idva-1: %d %s", r.code, r.err);
    cr_assert(strstr(r.err, "not the key registered"), "%s", r.err);
    /* the IDVA still works with its renewed certificate */
    char id[32];
    s_hold("room-1", id, sizeof id);
    hh_run(&h, &r, "haven-agent", "--config", agent, "accept", id, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "address", id, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, ADDRESS), "%s", r.out);
}

/* A key file made before certificates has a .pub without a signing key:
 * keygen --public-of writes it again, with the key it always had. */
Test(trust, keygen_public_of_adds_the_signing_key_to_an_old_pub)
{
    char conf[512], pub[512], key[512], text[512];
    hh_unregistered(&h, "old-idva", conf, sizeof conf);
    snprintf(pub, sizeof pub, "%s/old-idva.pub", h.dir);
    snprintf(key, sizeof key, "%s/old-idva.key", h.dir);
    FILE *f = fopen(pub, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    *strstr(text, "sign =") = '\0';     /* as keygen wrote it before */
    hh_write(&h, "old-idva.pub", text, NULL, 0);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "idva", "--name",
           "old-idva", "--public-key", pub, NULL);
    cr_assert_eq(r.code, 65, "%s", r.err);
    cr_assert(strstr(r.err, "--public-of"), "the sentence says what to do: %s", r.err);
    hh_run(&h, &r, "haven", "keygen", "--public-of", key, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "add", "--role", "idva", "--name",
           "old-idva", "--public-key", pub, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
}
