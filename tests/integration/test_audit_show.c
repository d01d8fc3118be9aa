/* SPDX-License-Identifier: MIT */
/* haven-admin audit show through the real programs: however many records
 * are asked for, one request returns at most BRK_AUDIT_SHOW_MAX, and the
 * CLI says when a list was cut short. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/audit.h"
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512];

static void
setup(void)
{
    hh_start(&h, "[limits]\nwrites_per_minute = 1000000\n");
    hh_provider(&h, "refuge-a", "refuge", "E07000008",
                "[service]\ngenders = women\nconfirm_every = 24h\n[unit u0]\nmax_occupants = 2\n", agent,
                sizeof agent);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
}
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(audit_show, .init = setup, .fini = teardown, .timeout = 600);

/* n acknowledged writes, each one audit record. */
static void
s_writes(int n)
{
    char err[512];
    hv_clientcfg_t *cfg = NULL;
    hv_keys_t *keys = NULL;
    hv_pubkey_t broker;
    cr_assert(sodium_init() >= 0);
    cr_assert(hv_clientcfg_load(agent, &cfg, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_keys_load(cfg->key, &keys, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_pubkey_load(cfg->broker_key, &broker, err, sizeof err) == 0, "%s", err);
    hv_conn_t *c = hv_conn_new(cfg->endpoint, broker.curve, keys, 5000, 3);
    cr_assert(c);
    for (int i = 0; i < n; i++) {
        Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
        set.provider = "refuge-a";
        set.unit = "u0";
        set.version = (uint64_t) i + 1;
        set.status = i % 2 ? HAVEN__UNIT_STATUS__UNIT_AVAILABLE : HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
        Haven__Request req = HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
        req.unit_set = &set;
        Haven__Reply *rep = NULL;
        cr_assert_eq(hv_conn_call(c, &req, &rep), 0, "write %d", i);
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "write %d: %s", i, rep->error ? rep->error : "");
        haven__reply__free_unpacked(rep, NULL);
    }
    hv_conn_destroy(&c);
    hv_keys_destroy(&keys);
    hv_clientcfg_destroy(&cfg);
}

/* Lines of the last program's whole stdout (hh_result_t keeps 64 KiB). */
static int
s_out_lines(void)
{
    char path[512];
    int n = 0, ch;
    snprintf(path, sizeof path, "%s/.out", h.dir);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static json_t *
s_out_json(void)
{
    char path[512];
    json_error_t e;
    snprintf(path, sizeof path, "%s/.out", h.dir);
    json_t *j = json_load_file(path, 0, &e);
    cr_assert(j, "stdout is not JSON: %s", e.text);
    return j;
}

/* Before, a limit of 4,000,000,000 made the broker gather the whole log
 * into one reply. */
Test(audit_show, a_huge_limit_is_capped_and_the_cli_says_so)
{
    s_writes(BRK_AUDIT_SHOW_MAX + 50);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "show", "--limit", "4000000000", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(s_out_lines(), BRK_AUDIT_SHOW_MAX);
    cr_assert(strstr(r.err, "showing the first 10000 records, the most one audit show returns (--limit "
                     "4000000000 was capped)"), "%s", r.err);

    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "show", "--limit", "4000000000",
           NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = s_out_json();
    cr_assert_eq(json_array_size(json_object_get(j, "records")), BRK_AUDIT_SHOW_MAX);
    cr_assert(json_is_true(json_object_get(j, "capped")));
    cr_assert_eq(json_integer_value(json_object_get(j, "limit")), BRK_AUDIT_SHOW_MAX);
    json_decref(j);

    /* no --limit: the default, and a word that there is more */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "show", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(s_out_lines(), BRK_AUDIT_SHOW_DEFAULT);
    cr_assert(strstr(r.err, "showing the first 1000 records; there may be more"), "%s", r.err);

    /* a limit under the cap is the limit, and not called capped */
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "show", "--limit", "25", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    j = s_out_json();
    cr_assert_eq(json_array_size(json_object_get(j, "records")), 25);
    cr_assert(json_is_false(json_object_get(j, "capped")));
    cr_assert(json_is_true(json_object_get(j, "more")));
    json_decref(j);
}

Test(audit_show, a_limit_that_is_not_a_count_is_a_usage_error)
{
    static const char *const bad[] = { "0", "-5", "4294967296", "ten", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "show", "--limit", bad[i], NULL);
        cr_assert_eq(r.code, 64, "--limit '%s': exit %d", bad[i], r.code);
        cr_assert(strstr(r.err, "--limit must be a whole number of records from 1 to 4294967295"), "%s", r.err);
    }
}
