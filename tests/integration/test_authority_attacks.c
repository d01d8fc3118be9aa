/* SPDX-License-Identifier: MIT */
/* From a hostile review of issue 12's "the agent is the authority for its
 * units" (design.md section 7): paths by which a broker restored from a
 * backup still offers a room staff took out of service, or a change staff
 * made is not sent, through the real programs. Each test asserts what
 * design.md promises; a failure is a defect. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "proxy.h"

static hh_t h;
static hh_result_t r;
static char agent[512], agent2[512], idva[512];
static char said[8192];        /* what the agent last said, before a search overwrites r */

static const char catalog2[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 2\naddress = 1 Quiet Close\n"
    "[unit room-2]\nmax_occupants = 2\naddress = 2 Quiet Close\n";

static const char catalog3[] =
    "[service]\ngenders = women\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 2\naddress = 1 Quiet Close\n"
    "[unit room-2]\nmax_occupants = 2\naddress = 2 Quiet Close\n"
    "[unit room-3]\nmax_occupants = 2\naddress = 3 Quiet Close\n";

static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(authority_attacks, .fini = teardown, .timeout = 300);

static void
s_agent(const char *conf, const char *cmd, const char *arg1, const char *arg2)
{
    hh_run(&h, &r, "haven-agent", "--config", conf, cmd, arg1, arg2, NULL);
    cr_assert_eq(r.code, 0, "haven-agent %s %s %s: %d %s", cmd, arg1 ? arg1 : "", arg2 ? arg2 : "", r.code, r.err);
}

/* refuge-a with the catalog given, every unit set available. */
static void
s_world(const char *conf, const char *catalog, int units)
{
    char name[16];
    hh_start(&h, conf);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    s_agent(agent, "publish", NULL, NULL);
    for (int i = 1; i <= units; i++) {
        snprintf(name, sizeof name, "room-%d", i);
        s_agent(agent, "set", name, "available");
    }
}

static void
s_backup(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", h.dir, name);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", path, NULL);
    cr_assert_eq(r.code, 0, "backup: %s", r.err);
}

/* refuge-a's units a search offers as fresh ("room-1,room-2,"). */
static void
s_offered(char *units, size_t len)
{
    json_t *doc, *o;
    size_t i;
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    doc = hh_json(&r);
    units[0] = '\0';
    json_array_foreach(json_object_get(doc, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "provider_id")), "refuge-a") != 0)
            continue;
        size_t n = strlen(units);
        snprintf(units + n, len - n, "%s,", json_string_value(json_object_get(o, "unit")));
    }
    json_decref(doc);
}

/* An IDVA holds refuge-a's unit; its hold id in id. */
static void
s_hold(const char *unit, char *id, size_t len)
{
    char token[1024] = "";
    json_t *doc, *o;
    size_t i;
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    doc = hh_json(&r);
    json_array_foreach(json_object_get(doc, "offers"), i, o)
        if (!strcmp(json_string_value(json_object_get(o, "provider_id")), "refuge-a")
            && !strcmp(json_string_value(json_object_get(o, "unit")), unit))
            snprintf(token, sizeof token, "%s", json_string_value(json_object_get(o, "offer")));
    json_decref(doc);
    cr_assert(token[0], "%s is not offered", unit);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "hold", token, NULL);
    cr_assert_eq(r.code, 0, "hold: %s", r.err);
    doc = hh_json(&r);
    snprintf(id, len, "%s", json_string_value(json_object_get(doc, "hold")));
    json_decref(doc);
}

/* A provider with two offices' agents, each with its own record. Office 2
 * takes room-2 out of service after the backup. After the restore, office
 * 1's agent comes back first: that does not vouch for office 2's units, so
 * nothing of the provider is offered until office 2's agent is back too;
 * then room-1 is, and room-2 (out of service) is not. */
Test(authority_attacks, one_office_resyncing_does_not_vouch_for_the_other_office)
{
    char units[256];
    s_world(NULL, catalog2, 2);
    hh_principal(&h, "agent", "refuge-a-office2", "refuge-a", agent2, sizeof agent2);
    s_backup("before.mdb");
    s_agent(agent2, "set", "room-2", "out-of-service");
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "room-1,");

    hh_restore(&h, "before.mdb");
    hh_restart(&h);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "", "stale until the agents are back");

    /* office 1's agent, whatever it does, comes back first */
    s_agent(agent, "status", NULL, NULL);
    snprintf(said, sizeof said, "%s", r.err);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "",
                     "office 1's resync must not make the restored broker offer office 2's room-2 again "
                     "(offered: %s; office 1's agent said: %s)", units, said);
    /* office 2's agent comes back: everything is current */
    s_agent(agent2, "status", NULL, NULL);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "room-1,", "room-2 stays out of service: %s", r.err);
}

/* A hold pending in the backup that staff accepted since: the resync
 * cannot send room-1's "occupied" (the restored broker has it held) and
 * says so, and does not tell the broker it is up to date. When the
 * restored hold lapses, room-1 must not be offered (a survivor lives
 * there): the agent's next contact sends its status. */
Test(authority_attacks, a_unit_refused_in_the_resync_is_not_offered_once_the_restored_hold_lapses)
{
    char units[256], id[64];
    s_world("[timers]\nhold_ttl = 8s\n", catalog2, 2);
    s_hold("room-1", id, sizeof id);
    s_backup("held.mdb");
    s_agent(agent, "accept", id, NULL);

    hh_restore(&h, "held.mdb");
    hh_restart(&h);
    s_agent(agent, "status", NULL, NULL);
    cr_assert(strstr(r.err, "room-1: the broker has it held for a referral"), "%s", r.err);
    /* staff, at 2 a.m., do not answer again a referral they answered */
    /* the restored hold lapses (hold_ttl): wait for the IDVA to see it */
    bool lapsed = false;
    for (int tries = 0; tries < 600 && !lapsed; tries++) {
        hh_run(&h, &r, "haven", "--config", idva, "--json", "holds", NULL);
        lapsed = strstr(r.out, "\"expired\"") != NULL;
    }
    cr_assert(lapsed, "the restored hold lapsed: %s", r.out);
    s_agent(agent, "status", NULL, NULL);   /* the agent's next contact */
    snprintf(said, sizeof said, "%s", r.err);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "room-2,",
                     "room-1 was accepted (occupied) after the backup; once the restored hold lapsed it must "
                     "not be offered (offered: %s; agent said: %s)", units, said);
}

/* A reinstalled agent (state_dir lost) is told to publish, then set each
 * unit. Its first contact after the publish vouches for every unit the
 * record has no status for: the provider is no longer stale, and room-1,
 * taken out of service after the backup, is offered again before staff
 * have set it (with `haven-agent run` in the background this happens
 * within seconds of the publish). */
Test(authority_attacks, a_reinstalled_agent_does_not_vouch_for_units_it_knows_nothing_of)
{
    char units[256], cmd[600];
    s_world(NULL, catalog2, 2);
    s_backup("before.mdb");
    s_agent(agent, "set", "room-1", "out-of-service");
    hh_restore(&h, "before.mdb");
    hh_restart(&h);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/refuge-a-agent-state'", h.dir);
    cr_assert_eq(system(cmd), 0);

    s_agent(agent, "status", NULL, NULL);
    cr_assert(strstr(r.err, "run haven-agent publish, then haven-agent set for each unit"), "%s", r.err);
    s_agent(agent, "publish", NULL, NULL);
    s_agent(agent, "status", NULL, NULL);   /* or `run`'s next flush */
    snprintf(said, sizeof said, "%s", r.err);
    s_offered(units, sizeof units);
    cr_assert(strstr(units, "room-1") == NULL,
              "room-1 is out of service; the agent has no status for it, yet its resync made the restored "
              "broker offer it (offered: %s; agent said: %s)", units, said);
}

/* The catalog was shortened after the backup (room-2 withdrawn: the
 * building closed). The restored broker refuses the record's catalog
 * (room-1 is held there), the agent tells staff to publish "once that is
 * dealt with", and then declares the broker up to date: room-2, withdrawn,
 * is offered as available, and no later contact sends the catalog again. */
Test(authority_attacks, a_unit_withdrawn_since_the_backup_is_not_offered_after_the_resync)
{
    char units[256], id[64], path[512];
    s_world(NULL, catalog3, 3);
    s_hold("room-1", id, sizeof id);
    s_backup("held.mdb");
    hh_run(&h, &r, "haven-agent", "--config", agent, "decline", id, "--reason", "capacity", NULL);
    cr_assert_eq(r.code, 0, "decline: %s", r.err);
    hh_write(&h, "refuge-a.ini",
             "[service]\ngenders = women\nconfirm_every = 24h\n"
             "[unit room-3]\nmax_occupants = 2\naddress = 3 Quiet Close\n", path, sizeof path);
    s_agent(agent, "publish", NULL, NULL);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "room-3,");

    hh_restore(&h, "held.mdb");
    hh_restart(&h);
    s_agent(agent, "status", NULL, NULL);
    snprintf(said, sizeof said, "%s", r.err);
    s_agent(agent, "status", NULL, NULL);   /* and again: nothing more is sent */
    s_offered(units, sizeof units);
    cr_assert(strstr(units, "room-2") == NULL,
              "room-2 was withdrawn from the catalog after the backup; the resync must not leave it offered "
              "(offered: %s; agent said: %s)", units, said);
}

/* The broker refuses a catalog over its size limit for good (it cannot be
 * sent again as it is), so it does not hold back what staff do next: their
 * `set room-1 out-of-service` goes through, and room-1 is not offered. */
Test(authority_attacks, a_catalog_refused_for_its_size_does_not_hold_back_later_changes)
{
    char units[256], path[512];
    s_world("[limits]\nmax_units_per_catalog = 2\n", catalog2, 2);
    hh_write(&h, "refuge-a.ini", catalog3, path, sizeof path);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_neq(r.code, 0);
    cr_assert(strstr(r.err, "refused for good"), "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "out-of-service", NULL);
    cr_assert_eq(r.code, 0, "staff's set is sent: %s", r.err);
    s_offered(units, sizeof units);
    cr_assert(strstr(units, "room-1") == NULL, "room-1, set out of service, is still offered: %s", units);
}

/* After a restore onto a broker whose max_units_per_catalog is now lower
 * than the agent's recorded catalog, the resync stops at the catalog
 * (LIMIT: "tried again at the next contact") before the queue is sent:
 * every later change, including a shorter catalog that would fix it, is
 * never sent. The README says a catalog refused for its size "no longer
 * blocks the fix". */
Test(authority_attacks, a_record_catalog_refused_for_its_size_does_not_block_the_queue_forever)
{
    char path[512];
    s_world(NULL, catalog3, 3);
    s_backup("before.mdb");
    /* a later catalog (room-3 bigger) and room-1 out of service */
    hh_write(&h, "refuge-a.ini",
             "[service]\ngenders = women\nconfirm_every = 24h\n"
             "[unit room-1]\nmax_occupants = 2\naddress = 1 Quiet Close\n"
             "[unit room-2]\nmax_occupants = 2\naddress = 2 Quiet Close\n"
             "[unit room-3]\nmax_occupants = 3\naddress = 3 Quiet Close\n", path, sizeof path);
    s_agent(agent, "publish", NULL, NULL);
    hh_restore(&h, "before.mdb");
    snprintf(h.extra_conf, sizeof h.extra_conf, "[limits]\nmax_units_per_catalog = 2\n");
    hh_restart(&h);
    /* staff shorten the catalog, as the broker asks, and take room-1 out */
    hh_write(&h, "refuge-a.ini", catalog2, path, sizeof path);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "out-of-service", NULL);
    hh_run(&h, &r, "haven-agent", "--config", agent, "status", NULL);
    cr_assert_null(strstr(r.out, "still queued"),
                   "the shortened catalog and room-1's change never leave the queue: %s\n%s", r.out, r.err);
}

/* Evidence, not a defect: an agent of another provider, configured to
 * speak for refuge-a, cannot clear refuge-a's unsynced flag or write its
 * units (every agent request is scoped to the key's provider). */
Test(authority_attacks, another_providers_agent_cannot_resync_this_provider)
{
    char units[256], conf[512], text[1024];
    s_world(NULL, catalog2, 2);
    hh_provider(&h, "refuge-b", "refuge", "E07000008", catalog2, conf, sizeof conf);
    s_backup("before.mdb");
    s_agent(agent, "set", "room-1", "out-of-service");
    hh_restore(&h, "before.mdb");
    hh_restart(&h);
    /* refuge-b's key, told it is refuge-a's agent */
    FILE *f = fopen(conf, "r");
    cr_assert(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *p = strstr(text, "provider = refuge-b");
    cr_assert(p);
    memcpy(p + strlen("provider = refuge-"), "a", 1);
    hh_write(&h, "hostile.conf", text, conf, sizeof conf);
    hh_run(&h, &r, "haven-agent", "--config", conf, "set", "room-1", "available", NULL);
    cr_assert_neq(r.code, 0);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "", "refuge-a stays stale until its own agent is back: %s", units);
}

/* The restore brings back every key revoked since the backup (the backup
 * knows nothing of later revocations): the README's restore says to revoke
 * them again, and doing so refuses the key at once. */
Test(authority_attacks, a_key_revoked_since_the_backup_is_revoked_again_after_a_restore)
{
    char gone[512];
    s_world(NULL, catalog2, 2);
    hh_principal(&h, "idva", "idva-stolen", NULL, gone, sizeof gone);
    s_backup("before.mdb");
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-stolen", NULL);
    cr_assert_eq(r.code, 0, "revoke: %s", r.err);
    hh_run(&h, &r, "haven", "--config", gone, "search", NULL);
    cr_assert_neq(r.code, 0, "revoked: refused");
    hh_restore(&h, "before.mdb");
    hh_restart(&h);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "idva-stolen", NULL);
    cr_assert_eq(r.code, 0, "revoked again, as the README says: %s", r.err);
    hh_run(&h, &r, "haven", "--config", gone, "--json", "search", NULL);
    cr_assert_eq(r.code, 77, "refused again: %d %s", r.code, r.out);
}

/* Only a backup's copy carries the mark: a broker killed right after a
 * backup (a crash, OOM, power) is not taken for a restored one at its next
 * start. */
Test(authority_attacks, a_crash_just_after_a_backup_is_not_taken_for_a_restore)
{
    char units[256];
    s_world(NULL, catalog2, 2);
    s_backup("now.mdb");
    hh_crash(&h);
    hh_restart(&h);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "room-1,room-2,",
                     "nothing was restored, yet the broker offers none of refuge-a's units: %s", units);
}

/* A new key for the same agent (the old one rotated out), same state_dir:
 * the broker has this key at version 0, so the agent "resyncs" and tells
 * staff the broker was behind, "restored from a backup?", when it was not. */
Test(authority_attacks, a_rotated_agent_key_is_not_told_the_broker_was_restored)
{
    char conf[512], text[2048], path[512];
    s_world(NULL, catalog2, 2);
    hh_principal(&h, "agent", "refuge-a-newkey", "refuge-a", conf, sizeof conf);
    /* the new key's config, with the old state_dir */
    FILE *f = fopen(conf, "r");
    cr_assert(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *p = strstr(text, "refuge-a-newkey-state");
    cr_assert(p);
    memmove(p + strlen("refuge-a-agent-state"), p + strlen("refuge-a-newkey-state"),
            strlen(p + strlen("refuge-a-newkey-state")) + 1);
    memcpy(p, "refuge-a-agent-state", strlen("refuge-a-agent-state"));
    hh_write(&h, "rotated.conf", text, path, sizeof path);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "principal", "revoke", "refuge-a-agent", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", path, "status", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_null(strstr(r.err, "restored from a backup"),
                   "the broker was never restored; staff are told it may have been: %s", r.err);
}

/* Evidence, not a defect: a change staff queued while the broker was down
 * is not thrown away when the agent's configuration names the wrong
 * provider (a typo): the queued request carries the provider it was made
 * for, and the AgentSync refused for the typo is not said twice. */
Test(authority_attacks, a_mistyped_provider_does_not_throw_away_the_queue)
{
    char units[256], text[2048], path[512];
    s_world(NULL, catalog2, 2);
    hh_stop(&h);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "room-1", "out-of-service", NULL);
    cr_assert_neq(r.code, 0, "the broker is down: queued");
    hh_restart(&h);
    FILE *f = fopen(agent, "r");
    cr_assert(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *p = strstr(text, "provider = refuge-a");
    cr_assert(p);
    char typo[2048];
    snprintf(typo, sizeof typo, "%.*sprovider = refuge-aa%s", (int) (p - text), text,
             p + strlen("provider = refuge-a"));
    hh_write(&h, "typo.conf", typo, path, sizeof path);
    hh_run(&h, &r, "haven-agent", "--config", path, "status", NULL);
    char said_typo[8192];
    snprintf(said_typo, sizeof said_typo, "%s", r.err);
    /* the IT person fixes the typo */
    s_agent(agent, "status", NULL, NULL);
    s_offered(units, sizeof units);
    cr_assert_str_eq(units, "room-2,",
                     "room-1's queued out-of-service was thrown away over a configuration typo "
                     "(offered: %s; with the typo the agent said: %s)", units, said_typo);
}

/* Evidence, not a defect: an agent SIGKILLed at each point of its resync
 * (right after its k-th reply arrives, k from 0 up), round after round,
 * each on a freshly restored broker, leaves the broker exactly as staff
 * last set every unit once it is let finish: nothing lost, nothing sent
 * twice to any effect, and the provider is stale until the resync
 * completes. The relay says when each reply has passed: no sleeps. */
Test(authority_attacks, an_agent_killed_mid_resync_leaves_nothing_wrong)
{
    char units[256], path[512];
    int fd;
    s_world(NULL, catalog3, 3);
    s_backup("before.mdb");
    hh_write(&h, "refuge-a.ini",
             "[service]\ngenders = women\nconfirm_every = 24h\n"
             "[unit room-1]\nmax_occupants = 3\naddress = 1 Quiet Close\n"
             "[unit room-2]\nmax_occupants = 2\naddress = 2 Quiet Close\n"
             "[unit room-3]\nmax_occupants = 2\naddress = 3 Quiet Close\n", path, sizeof path);
    s_agent(agent, "publish", NULL, NULL);
    s_agent(agent, "set", "room-1", "out-of-service");
    s_agent(agent, "set", "room-2", "occupied");
    int interrupted = 0;
    for (int round = 0; round < 16; round++) {
        hh_restore(&h, "before.mdb");
        hh_restart(&h);
        char ep[128], relayed[512];
        hh_proxy_t *relay = hh_proxy_start(&h, ep, sizeof ep);
        hh_proxy_conf(&h, agent, ep, "agent-relayed", relayed, sizeof relayed);
        for (int attempt = 0; attempt < (round % 3 == 2 ? 2 : 1); attempt++) {
            /* killed right after its (round/2 + attempt)-th reply, or
             * once it has finished if it needs fewer */
            int before = hh_proxy_passed(relay);
            pid_t pid = hh_spawn(&h, &fd, "haven-agent", "--config", relayed, "status", NULL);
            hh_proxy_wait_passed(relay, before + round / 2 + attempt, 10000);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(fd);
        }
        hh_proxy_stop(&relay);
        s_offered(units, sizeof units);
        cr_assert(strcmp(units, "") == 0 || strcmp(units, "room-3,") == 0,
                  "round %d: a half-done resync offers %s", round, units);
        interrupted += units[0] == '\0';
        s_agent(agent, "status", NULL, NULL);
        s_offered(units, sizeof units);
        cr_assert_str_eq(units, "room-3,", "round %d", round);
    }
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "status", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"queued\": 0"), "%s", r.out);
    cr_log_info("%d of 16 rounds were killed before the resync completed", interrupted);
    cr_assert_gt(interrupted, 0, "no kill landed inside a resync");
}

/* Every contact now begins with an AgentSync, and each is written to the
 * hash-chained audit log, although an AgentSync that finds the broker up
 * to date changes nothing and discloses nothing (ping and subscribe are
 * not audited). `haven-agent run` makes one every 30 s: 2,880 records a
 * day per running agent, on top of its referrals poll, kept 13 months. */
Test(authority_attacks, an_agent_sync_that_finds_the_broker_up_to_date_is_not_audited)
{
    s_world(NULL, catalog2, 2);
    for (int i = 0; i < 3; i++)
        s_agent(agent, "confirm", NULL, NULL);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "show", "--limit", "1000", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    int n = 0;
    for (const char *p = r.out; (p = strstr(p, "agent_sync")); p++)
        n++;
    cr_assert_eq(n, 0, "%d audit records of in-sync AgentSyncs for 6 commands", n);
}
