/* SPDX-License-Identifier: MIT */
/* The agent is the authority for its units (design.md section 7): a broker
 * restored from a backup, or otherwise behind an agent, is brought up to
 * date by the agent's next contact, and until then that provider's units
 * are stale, never silently rolled back. Through the real programs. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], other[512], idva[512];

#define ADDRESS "7 Quiet Close, Cambridge CB4 0ZZ"

static const char catalog[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 2\naddress = " ADDRESS "\n"
    "[unit room-2]\nmax_occupants = 2\naddress = 9 Quiet Close\n";

static void
s_agent(const char *conf, const char *cmd, const char *arg1, const char *arg2)
{
    hh_run(&h, &r, "haven-agent", "--config", conf, cmd, arg1, arg2, NULL);
    cr_assert_eq(r.code, 0, "haven-agent %s %s %s: %d %s", cmd, arg1 ? arg1 : "", arg2 ? arg2 : "", r.code, r.err);
}

static void
setup(void)
{
    hh_start(&h, NULL);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_provider(&h, "refuge-b", "refuge", "E07000008", catalog, other, sizeof other);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    s_agent(agent, "publish", NULL, NULL);
    s_agent(agent, "set", "room-1", "available");
    s_agent(agent, "set", "room-2", "available");
    s_agent(other, "publish", NULL, NULL);
}
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(authority, .init = setup, .fini = teardown, .timeout = 300);

static void
s_backup(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", h.dir, name);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", path, NULL);
    cr_assert_eq(r.code, 0, "backup: %s", r.err);
}

/* Which of refuge-a's units a search offers ("room-1,room-2,"), and how
 * many of those are stale. */
static void
s_offered(bool include_stale, char *units, size_t len, int *stale)
{
    json_t *doc, *o;
    size_t i;
    if (include_stale)
        hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--include-stale", NULL);
    else
        hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    doc = hh_json(&r);
    units[0] = '\0';
    *stale = 0;
    json_array_foreach(json_object_get(doc, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "provider_id")), "refuge-a") != 0)
            continue;
        size_t n = strlen(units);
        snprintf(units + n, len - n, "%s,", json_string_value(json_object_get(o, "unit")));
        *stale += json_is_true(json_object_get(o, "stale"));
    }
    json_decref(doc);
}

/* Whether `provider list` says id has not resynced, in text and JSON. */
static bool
s_unsynced(const char *id)
{
    json_t *doc, *p;
    size_t i;
    int json = -1;
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "provider", "list", NULL);
    cr_assert_eq(r.code, 0, "provider list: %s", r.err);
    doc = hh_json(&r);
    json_array_foreach(json_object_get(doc, "providers"), i, p)
        if (strcmp(json_string_value(json_object_get(p, "id")), id) == 0) {
            json = json_is_true(json_object_get(p, "unsynced"));
            cr_assert(json_is_string(json_object_get(p, "unsynced_since")) == json,
                      "unsynced_since goes with unsynced");
        }
    json_decref(doc);
    cr_assert_neq(json, -1, "%s is not listed", id);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "provider", "list", NULL);
    cr_assert_eq(r.code, 0);
    const char *line = strstr(r.out, id);
    cr_assert(line);
    const char *eol = strchr(line, '\n');
    const char *mark = strstr(line, "NOT RESYNCED");
    cr_assert_eq(mark && mark < eol, json, "text and JSON agree: %s", r.out);
    return json;
}

/* The issue's own scenario: back up, take a room out of service, restore
 * the backup. The restored broker knows it is a backup (its copy carries
 * the mark), offers nothing of the provider's until the agent resyncs,
 * and the agent's next contact brings it up to date. */
Test(authority, a_restored_broker_does_not_offer_a_room_staff_took_out_of_service)
{
    char units[256];
    int stale;
    s_backup("before.mdb");
    s_agent(agent, "set", "room-1", "out-of-service");
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "room-2,");

    hh_restore(&h, "before.mdb");
    hh_restart(&h);
    /* until the agent has been in touch, nothing of the provider's is
     * offered as fresh, and the administrator can see why */
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "", "a restored provider's units are stale until its agent resyncs");
    cr_assert(s_unsynced("refuge-a"));

    /* the agent's next contact, whatever it is for */
    s_agent(agent, "status", NULL, NULL);
    cr_assert(strstr(r.err, "the broker was restored from a backup and was behind this agent: sent 1 unit's "
                            "status again"), "staff are told, once: %s", r.err);
    cr_assert(strstr(r.out, "room-1") && strstr(r.out, "out-of-service"), "%s", r.out);
    cr_assert(!s_unsynced("refuge-a"), "resynced: %s", r.out);
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "room-2,", "the out-of-service room is not offered again");
    cr_assert_eq(stale, 0);

    /* once is enough: the next contact finds the broker up to date */
    s_agent(agent, "confirm", NULL, NULL);
    cr_assert_null(strstr(r.err, "behind"), "%s", r.err);
}

/* With the broker's restore marker (simulated here, on the stopped
 * broker's store): every provider is stale until its agent resyncs, and
 * the administrator can see which have not. */
Test(authority, a_restored_provider_is_stale_until_its_agent_comes_back)
{
    char units[256];
    int stale;
    s_backup("before.mdb");
    s_agent(agent, "set", "room-1", "out-of-service");
    hh_restore(&h, "before.mdb");
    hh_mark_restored(&h);
    hh_restart(&h);

    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "", "nothing of a restored provider is offered as current");
    s_offered(true, units, sizeof units, &stale);
    cr_assert_str_eq(units, "room-1,room-2,", "with --include-stale, flagged stale");
    cr_assert_eq(stale, 2);
    cr_assert(s_unsynced("refuge-a"));
    cr_assert(s_unsynced("refuge-b"));
    cr_assert(strstr(r.out, "2 providers marked NOT RESYNCED have not been brought up to date"), "%s", r.out);

    s_agent(agent, "status", NULL, NULL);
    cr_assert(strstr(r.err, "the broker was restored from a backup and was behind this agent: sent 1 unit's status "
                            "again; its units are offered again as they are here"), "%s", r.err);
    cr_assert_null(strstr(r.out, "STALE"), "fresh once resynced: %s", r.out);
    cr_assert_not(s_unsynced("refuge-a"));
    cr_assert(s_unsynced("refuge-b"), "refuge-b's agent has not been back");
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "room-2,");
    cr_assert_eq(stale, 0);

    /* an agent whose broker already had everything still lifts the flag */
    s_agent(other, "status", NULL, NULL);
    cr_assert(strstr(r.err, "it had everything this agent had sent, so nothing needed sending again"), "%s", r.err);
    cr_assert_not(s_unsynced("refuge-b"));
}

/* A unit the restored broker has held for a referral that staff had since
 * accepted: its status cannot be sent again; staff are told what to do,
 * the rest is sent, and the provider stays stale (nothing of it offered)
 * until that is dealt with: the agent does not vouch for a broker that
 * lacks part of its record. */
Test(authority, a_unit_held_on_the_restored_broker_is_named_with_what_to_do)
{
    char units[256], token[1024], id[32];
    int stale;
    json_t *doc, *o;
    size_t i;
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    doc = hh_json(&r);
    token[0] = '\0';
    json_array_foreach(json_object_get(doc, "offers"), i, o)
        if (!strcmp(json_string_value(json_object_get(o, "provider_id")), "refuge-a")
            && !strcmp(json_string_value(json_object_get(o, "unit")), "room-1"))
            snprintf(token, sizeof token, "%s", json_string_value(json_object_get(o, "offer")));
    json_decref(doc);
    cr_assert(token[0]);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold: %s", r.err);
    doc = hh_json(&r);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);
    s_backup("held.mdb");
    s_agent(agent, "accept", id, NULL);
    s_agent(agent, "set", "room-2", "out-of-service");

    hh_restore(&h, "held.mdb");
    hh_restart(&h);
    s_agent(agent, "status", NULL, NULL);
    cr_assert(strstr(r.err, "room-1: the broker has it held for a referral"), "%s", r.err);
    cr_assert(strstr(r.err, "so its status here (occupied) could not be sent again: answer that referral "
                            "(haven-agent referrals)"), "%s", r.err);
    cr_assert(strstr(r.err, "some of this agent's record could not be sent again (see above); until that is "
                            "dealt with, none of refuge-a's units are offered"), "%s", r.err);
    cr_assert(s_unsynced("refuge-a"), "still not resynced");
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "", "room-2 is out of service again, room-1 is held");

    /* staff do as told */
    hh_run(&h, &r, "haven-agent", "--config", agent, "referrals", NULL);
    cr_assert(strstr(r.out, id), "%s", r.out);
    s_agent(agent, "accept", id, NULL);
    s_agent(agent, "status", NULL, NULL);
    cr_assert(strstr(r.out, "room-1") && strstr(r.out, "occupied"), "%s", r.out);
    cr_assert_not(s_unsynced("refuge-a"), "the record is all there now: resynced");

    /* the agent's record never holds an address */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -rqaF 'Quiet Close' '%s/refuge-a-agent-state'", h.dir);
    cr_assert_neq(system(cmd), 0, "an address reached the agent's outbox");
}

/* The mark that tells a restored store is in the backup's copy only: the
 * live broker, restarted after a backup, is not taken for a restored one. */
Test(authority, a_backup_leaves_the_live_broker_in_sync)
{
    char units[256];
    int stale;
    s_backup("now.mdb");
    hh_restart(&h);
    cr_assert(!s_unsynced("refuge-a"));
    cr_assert(!s_unsynced("refuge-b"));
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "room-1,room-2,", "still offered after a restart: %s", units);
    /* and the copy, put in place, is known for what it is */
    hh_restore(&h, "now.mdb");
    hh_restart(&h);
    cr_assert(s_unsynced("refuge-a"));
    cr_assert(s_unsynced("refuge-b"));
    /* the stale report counts them, and says why */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "report", "stale", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "refuge-a") && strstr(r.out, "not_resynced") && strstr(r.out, "\"yes\""),
              "a restored provider is in the stale report: %s", r.out);
}
