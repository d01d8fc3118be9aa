/* SPDX-License-Identifier: MIT */
/* The foundation, end to end: the real broker and programs on loopback. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "../../proto/wire.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;

static const char catalog[] =
    "[service]\n"
    "genders = women\n"
    "children = yes\n"
    "max_children = 3\n"
    "max_boy_age = 12\n"
    "pets = dog\n"
    "confirm_every = 24h\n"
    "[unit room-1]\n"
    "max_occupants = 3\n"
    "address = 1 Secret Lane, Cambridge\n"
    "[unit room-2]\n"
    "max_occupants = 4\n"
    "wheelchair = yes\n";

static void setup(void) { hh_start(&h, NULL); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }

TestSuite(foundation, .init = setup, .fini = teardown, .timeout = 120);

/* Search as conf and return the parsed JSON (caller decrefs). */
static json_t *
s_search(const char *conf, const char *opt)
{
    if (opt)
        hh_run(&h, &r, "haven", "--config", conf, "--json", "search", opt, NULL);
    else
        hh_run(&h, &r, "haven", "--config", conf, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "search failed (%d): %s", r.code, r.err);
    return hh_json(&r);
}

static int
s_matching(const char *conf)
{
    json_t *doc = s_search(conf, NULL);
    int n = (int) json_integer_value(json_object_get(doc, "matching"));
    json_decref(doc);
    return n;
}

static void
s_publish_and_open(const char *agent, const char *unit)
{
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", unit, "available", NULL);
    cr_assert_eq(r.code, 0, "set: %s", r.err);
}

Test(foundation, acknowledged_update_is_visible_to_search)
{
    char agent[512], idva[512];
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);

    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    cr_assert(strstr(r.out, "2 added"), "publish said: %s", r.out);
    /* A unit nobody confirmed is never offered. */
    cr_assert_eq(s_matching(idva), 0);

    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "set: %s", r.err);
    json_t *doc = s_search(idva, NULL);
    cr_assert_eq(json_integer_value(json_object_get(doc, "matching")), 1);
    json_t *offer = json_array_get(json_object_get(doc, "offers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(offer, "unit")), "room-1");
    cr_assert_str_eq(json_string_value(json_object_get(offer, "provider_id")), "refuge-a");
    cr_assert_str_eq(json_string_value(json_object_get(offer, "kind")), "refuge");
    cr_assert_str_eq(json_string_value(json_object_get(offer, "district")), "E07000008");
    cr_assert_str_eq(json_string_value(json_object_get(offer, "district_name")), "Cambridge");
    cr_assert(json_string_length(json_object_get(offer, "offer")) > 20);
    cr_assert(!strstr(r.out, "Secret Lane"), "the address must never reach a search");
    json_decref(doc);

    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "occupied", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(s_matching(idva), 0);
}

Test(foundation, unknown_key_is_refused)
{
    char stranger[512];
    hh_unregistered(&h, "stranger", stranger, sizeof stranger);
    hh_run(&h, &r, "haven", "--config", stranger, "search", NULL);
    cr_assert_eq(r.code, 77, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "refused this key"), "stderr: %s", r.err);
}

Test(foundation, revoked_key_is_refused)
{
    char idva[512];
    hh_principal(&h, "idva", "idva-gone", NULL, idva, sizeof idva);
    cr_assert_eq(s_matching(idva), 0);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-gone", NULL);
    cr_assert_eq(r.code, 0, "revoke: %s", r.err);
    hh_run(&h, &r, "haven", "--config", idva, "search", NULL);
    cr_assert_eq(r.code, 77, "exit %d: %s", r.code, r.err);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "principal", "list", NULL);
    cr_assert(strstr(r.out, "\"revoked\": true"), "list: %s", r.out);
}

Test(foundation, agent_cannot_touch_another_providers_unit)
{
    char agent_a[512], agent_b[512], idva[512], forged[512];
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent_a, sizeof agent_a);
    hh_provider(&h, "refuge-b", "refuge", "E06000031", catalog, agent_b, sizeof agent_b);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent_b, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish b: %s", r.err);

    /* Agent A's key, configured to speak for B. */
    char text[2048];
    FILE *f = fopen(agent_a, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strstr(text, "provider = refuge-a");
    cr_assert(p);
    memcpy(p, "provider = refuge-b", 19);
    hh_write(&h, "forged.conf", text, forged, sizeof forged);
    hh_run(&h, &r, "haven-agent", "--config", forged, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 77, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "belongs to provider refuge-a"), "stderr: %s", r.err);
    cr_assert_eq(s_matching(idva), 0, "B's unit must not have changed");
}

Test(foundation, idva_cannot_publish_and_agent_cannot_search_or_administer)
{
    char agent[512], idva[512];
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    char text[4096];
    snprintf(text, sizeof text, "[broker]\nendpoint = %s\npublic_key = %s/data/broker.pub\n"
             "[identity]\nkey = %s/idva-1.key\n[agent]\nprovider = refuge-a\ncatalog = %s/refuge-a.ini\n"
             "state_dir = %s/idva-state\n", h.endpoint, h.dir, h.dir, h.dir, h.dir);
    char conf[512];
    hh_write(&h, "idva-agent.conf", text, conf, sizeof conf);
    hh_run(&h, &r, "haven-agent", "--config", conf, "publish", NULL);
    cr_assert_eq(r.code, 77, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "idva role may not publish"), "stderr: %s", r.err);

    hh_run(&h, &r, "haven", "--config", agent, "search", NULL);
    cr_assert_eq(r.code, 77, "an agent searched: %s", r.out);
    hh_run(&h, &r, "haven-admin", "--config", idva, "provider", "list", NULL);
    cr_assert_eq(r.code, 77, "an idva listed providers: %s", r.out);
}

/* A raw client with a principal's key, for what the programs never send. */
static hv_conn_t *
s_conn(const char *conf, hv_keys_t **keys)
{
    char err[512];
    hv_clientcfg_t *cfg = NULL;
    hv_pubkey_t broker;
    cr_assert(hv_clientcfg_load(conf, &cfg, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_keys_load(cfg->key, keys, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_pubkey_load(cfg->broker_key, &broker, err, sizeof err) == 0, "%s", err);
    hv_conn_t *c = hv_conn_new(cfg->endpoint, broker.curve, *keys, 3000, 1);
    hv_clientcfg_destroy(&cfg);
    return c;
}

Test(foundation, older_version_is_ignored)
{
    char agent[512], idva[512];
    hv_keys_t *keys = NULL;
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    s_publish_and_open(agent, "room-1");
    cr_assert_eq(s_matching(idva), 1);

    hv_conn_t *c = s_conn(agent, &keys);
    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    set.provider = "refuge-a";
    set.unit = "room-1";
    set.status = HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
    set.version = 5;             /* long before the agent's last change */
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    Haven__Reply *rep = NULL;
    cr_assert_eq(hv_conn_call(c, &req, &rep), 0);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK);
    cr_assert(rep->unit_set && rep->unit_set->ignored, "an older version must be ignored");
    haven__reply__free_unpacked(rep, NULL);
    hv_conn_destroy(&c);
    hv_keys_destroy(&keys);
    cr_assert_eq(s_matching(idva), 1, "the newer 'available' must stand");
}

Test(foundation, data_survives_a_restart)
{
    char agent[512], idva[512];
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    s_publish_and_open(agent, "room-2");
    hh_restart(&h);
    cr_assert_eq(s_matching(idva), 1);
    hh_run(&h, &r, "haven-agent", "--config", agent, "status", NULL);
    cr_assert_eq(r.code, 0, "status: %s", r.err);
    cr_assert(strstr(r.out, "room-2") && strstr(r.out, "available"), "status: %s", r.out);
}

/* Send raw frames on a CURVE DEALER and return the decoded reply, or NULL. */
static Haven__Reply *
s_raw(const char *conf, const void *const *frames, const size_t *sizes, int n, int wait_ms,
      bool *disconnected)
{
    char err[512];
    hv_clientcfg_t *cfg = NULL;
    hv_keys_t *keys = NULL;
    hv_pubkey_t broker;
    cr_assert(hv_clientcfg_load(conf, &cfg, err, sizeof err) == 0);
    cr_assert(hv_keys_load(cfg->key, &keys, err, sizeof err) == 0);
    cr_assert(hv_pubkey_load(cfg->broker_key, &broker, err, sizeof err) == 0);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    cr_assert(hv_curve_client(s, keys, broker.curve) == 0);
    zmq_socket_monitor(s, "inproc://raw-mon", ZMQ_EVENT_DISCONNECTED);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    zmq_connect(mon, "inproc://raw-mon");
    cr_assert(zmq_connect(s, cfg->endpoint) == 0);
    for (int i = 0; i < n; i++)
        cr_assert(zmq_send(s, frames[i], sizes[i], i < n - 1 ? ZMQ_SNDMORE : 0) >= 0);
    Haven__Reply *rep = NULL;
    zmq_pollitem_t items[] = { { s, 0, ZMQ_POLLIN, 0 }, { mon, 0, ZMQ_POLLIN, 0 } };
    if (zmq_poll(items, 2, wait_ms) > 0) {
        if (items[0].revents & ZMQ_POLLIN) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            zmq_msg_recv(&m, s, 0);
            hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &rep);
            zmq_msg_close(&m);
        }
        if (disconnected)
            *disconnected = items[1].revents & ZMQ_POLLIN;
    }
    zmq_close(mon);
    zmq_close(s);
    zmq_ctx_term(ctx);
    hv_keys_destroy(&keys);
    hv_clientcfg_destroy(&cfg);
    return rep;
}

Test(foundation, malformed_frames_get_an_error_and_the_broker_keeps_serving)
{
    char idva[512];
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    static const char junk[] = "\xff\xff\xff\x07 not a request";
    const void *f1[] = { junk };
    size_t s1[] = { sizeof junk };
    Haven__Reply *rep = s_raw(idva, f1, s1, 1, 10000, NULL);
    cr_assert(rep, "no reply to a malformed frame");
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_BAD_REQUEST);
    cr_assert(rep->error && strstr(rep->error, "not a valid Haven request"), "error: %s", rep->error);
    haven__reply__free_unpacked(rep, NULL);

    /* A valid request with an unknown field (number 99) is refused too. */
    static const uint8_t unknown[] = { 0x08, 0x07, 0x98, 0x06, 0x01 };
    const void *f2[] = { unknown };
    size_t s2[] = { sizeof unknown };
    rep = s_raw(idva, f2, s2, 1, 10000, NULL);
    cr_assert(rep && rep->status == HAVEN__STATUS__STATUS_BAD_REQUEST);
    cr_assert(strstr(rep->error, "unknown field"), "error: %s", rep->error);
    haven__reply__free_unpacked(rep, NULL);

    /* Two frames where one is expected. */
    const void *f3[] = { junk, junk };
    size_t s3[] = { sizeof junk, sizeof junk };
    rep = s_raw(idva, f3, s3, 2, 10000, NULL);
    cr_assert(rep && rep->status == HAVEN__STATUS__STATUS_BAD_REQUEST);
    haven__reply__free_unpacked(rep, NULL);

    cr_assert_eq(s_matching(idva), 0, "the broker must still serve");
}

Test(foundation, oversize_frame_disconnects_only_the_sender)
{
    hh_stop(&h);
    hh_cleanup(&h);
    hh_start(&h, "[limits]\nmax_message_bytes = 8192\n");
    char idva[512];
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    size_t big = 1 << 20;
    char *buf = calloc(1, big);
    const void *f[] = { buf };
    size_t s[] = { big };
    bool disconnected = false;
    Haven__Reply *rep = s_raw(idva, f, s, 1, 10000, &disconnected);
    cr_assert_null(rep, "an oversize frame must not be answered");
    cr_assert(disconnected, "the broker must drop a peer sending an oversize frame");
    free(buf);
    cr_assert_eq(s_matching(idva), 0, "the broker must still serve");
}

Test(foundation, invalid_catalog_is_refused_with_its_line)
{
    char agent[512];
    hh_provider(&h, "refuge-a", "refuge", "E07000008",
                "[service]\ngenders = women\n[unit room-1]\nmax_occupants = 99\n", agent, sizeof agent);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 65, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "line 4") && strstr(r.err, "max_occupants"), "stderr: %s", r.err);
}

Test(foundation, unknown_district_is_refused)
{
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "provider", "add", "--id", "x",
           "--name", "X", "--kind", "refuge", "--district", "E99999999", NULL);
    cr_assert_eq(r.code, 65, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "not in the broker's districts table"), "stderr: %s", r.err);
}

Test(foundation, queued_changes_are_sent_once_the_broker_is_back)
{
    char agent[512], idva[512];
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0);
    hh_stop(&h);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 69, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "queued"), "stderr: %s", r.err);
    hh_restart(&h);
    hh_run(&h, &r, "haven-agent", "--config", agent, "status", NULL);
    cr_assert_eq(r.code, 0, "status: %s", r.err);
    cr_assert_eq(s_matching(idva), 1, "the queued change must have been sent");
}
