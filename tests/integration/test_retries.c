/* SPDX-License-Identifier: MIT */
/* Retries are safe (design.md section 7), through the real programs and a
 * relay that loses the broker's reply on its way back: the client's retry
 * (the same request id, the same bytes) gets the first reply, and what the
 * request did happens exactly once. Each is measured against a run of the
 * same command with nothing lost, so the relay knows which reply to lose. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "proxy.h"

static hh_t h;
static hh_result_t r;
static hh_proxy_t *relay;
static char agent[512], idva[512], agent_r[512], idva_r[512];

#define ADDRESS "3 Quiet Close, Cambridge CB2 1ZZ"

static const char catalog[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 2\naddress = " ADDRESS "\n"
    "[unit room-2]\nmax_occupants = 2\naddress = " ADDRESS "\n";

static void
setup(void)
{
    char ep[128];
    hh_start(&h, NULL);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    relay = hh_proxy_start(&h, ep, sizeof ep);
    hh_proxy_conf(&h, agent, ep, "agent-relayed", agent_r, sizeof agent_r);
    hh_proxy_conf(&h, idva, ep, "idva-relayed", idva_r, sizeof idva_r);
}

static void
teardown(void)
{
    hh_proxy_stop(&relay);
    hh_stop(&h);
    hh_cleanup(&h);
}

TestSuite(retries, .init = setup, .fini = teardown, .timeout = 300);

static void
s_available(const char *unit)
{
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", unit, "available", NULL);
    cr_assert_eq(r.code, 0, "set %s available: %s", unit, r.err);
}

/* The offer for unit from a search (directly, not through the relay). */
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

/* Hold unit through the relay; the hold id in id. */
static void
s_hold(const char *unit, char *id, size_t len)
{
    char token[1024];
    s_offer(unit, token, sizeof token);
    hh_run(&h, &r, "haven", "--config", idva_r, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold %s: exit %d: %s", unit, r.code, r.err);
    json_t *doc = hh_json(&r);
    snprintf(id, len, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);
}

/* How many audit records of this action and outcome name this text in
 * their detail (NULL: any). */
static int
s_audited(const char *action, const char *outcome, const char *detail)
{
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "show", NULL);
    cr_assert_eq(r.code, 0, "audit show: %s", r.err);
    json_t *doc = hh_json(&r), *rec;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(doc, "records"), i, rec) {
        const char *a = json_string_value(json_object_get(rec, "action"));
        const char *o = json_string_value(json_object_get(rec, "outcome"));
        const char *d = json_string_value(json_object_get(rec, "detail"));
        n += a && o && strcmp(a, action) == 0 && strcmp(o, outcome) == 0
             && (!detail || (d && strstr(d, detail)));
    }
    json_decref(doc);
    return n;
}

/* The holds idva-1 sees: how many, and the state of the one with id. */
static int
s_holds(const char *id, char *state, size_t len)
{
    hh_run(&h, &r, "haven", "--config", idva, "--json", "holds", NULL);
    cr_assert_eq(r.code, 0, "holds: %s", r.err);
    json_t *doc = hh_json(&r), *x;
    size_t i;
    state[0] = '\0';
    json_array_foreach(json_object_get(doc, "holds"), i, x)
        if (strcmp(json_string_value(json_object_get(x, "hold")), id) == 0)
            snprintf(state, len, "%s", json_string_value(json_object_get(x, "state")));
    int n = (int) json_array_size(json_object_get(doc, "holds"));
    json_decref(doc);
    return n;
}

Test(retries, a_hold_whose_reply_was_lost_is_made_once_and_reported_made)
{
    char first[32], id[32], state[32];
    s_available("room-1");
    s_available("room-2");
    /* A hold with nothing lost: its replies, the last being the hold's. */
    int before = hh_proxy_passed(relay);
    s_hold("room-2", first, sizeof first);
    int replies = hh_proxy_passed(relay) - before;
    cr_assert_geq(replies, 1);

    hh_proxy_lose_reply(relay, replies - 1);
    s_hold("room-1", id, sizeof id);     /* asserts exit 0: not "taken" (75) */
    cr_assert_eq(hh_proxy_lost(relay), 1, "the relay lost the hold's reply");
    cr_assert_eq(s_holds(id, state, sizeof state), 2, "%s", r.out);
    cr_assert_str_eq(state, "pending", "the hold the IDVA was told of is the one made");
    cr_assert_eq(s_audited("hold_create", "ok", NULL), 2, "one hold_create each: %s", r.out);
}

Test(retries, an_accept_whose_reply_was_lost_is_done_once)
{
    char a[32], b[32], state[32];
    s_available("room-1");
    s_available("room-2");
    s_hold("room-1", a, sizeof a);
    s_hold("room-2", b, sizeof b);
    int before = hh_proxy_passed(relay);
    hh_run(&h, &r, "haven-agent", "--config", agent_r, "accept", a, NULL);
    cr_assert_eq(r.code, 0, "accept %s: %s", a, r.err);
    int replies = hh_proxy_passed(relay) - before;

    hh_proxy_lose_reply(relay, replies - 1);
    hh_run(&h, &r, "haven-agent", "--config", agent_r, "accept", b, NULL);
    cr_assert_eq(hh_proxy_lost(relay), 1, "the relay lost the accept's reply");
    cr_assert_eq(r.code, 0, "the retried accept is told it was accepted: exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.out, "accepted"), "%s", r.out);
    s_holds(b, state, sizeof state);
    cr_assert_str_eq(state, "accepted");
    hh_run(&h, &r, "haven", "--config", idva, "address", b, NULL);
    cr_assert_eq(r.code, 0, "address: %s", r.err);
    cr_assert_str_eq(r.out, ADDRESS "\n");
    cr_assert_eq(s_audited("accept", "ok", b), 1, "one accept of %s: %s", b, r.out);
    /* nothing is left queued to send again */
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "status", NULL);
    cr_assert(strstr(r.out, "\"queued\": 0"), "%s", r.out);
}

Test(retries, an_inbox_read_whose_reply_was_lost_loses_no_alert)
{
    hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);
    s_available("room-1");
    /* Lose the listing's reply: before acks, the read had already emptied
     * the inbox, and the retry found nothing. */
    hh_proxy_lose_reply(relay, 0);
    hh_run(&h, &r, "haven", "--config", idva_r, "--json", "inbox", NULL);
    cr_assert_eq(r.code, 0, "inbox: %s", r.err);
    cr_assert_eq(hh_proxy_lost(relay), 1);
    cr_assert(strstr(r.out, "room-1"), "the alert survives a lost reply: %s", r.out);
    /* shown and acknowledged: it leaves, once */
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert(!strstr(r.out, "room-1"), "acknowledged alerts leave the inbox: %s", r.out);

    /* Lose the acknowledgement's reply: the retry acknowledges again,
     * harmlessly, and the command succeeds. */
    s_available("room-2");
    int before = hh_proxy_passed(relay);
    hh_proxy_lose_reply(relay, 1);
    hh_run(&h, &r, "haven", "--config", idva_r, "--json", "inbox", NULL);
    cr_assert_eq(r.code, 0, "inbox with a lost acknowledgement: %s", r.err);
    cr_assert_eq(hh_proxy_lost(relay), 2);
    cr_assert_geq(hh_proxy_passed(relay) - before, 2, "the listing passed, the acknowledgement was retried");
    cr_assert(strstr(r.out, "room-2"), "%s", r.out);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", "--keep", NULL);
    cr_assert(!strstr(r.out, "room-2"), "acknowledged once: %s", r.out);
}
