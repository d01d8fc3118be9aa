/* SPDX-License-Identifier: MIT */
/* Broker configuration: defaults, units, precise refusals. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "../../broker/config.h"

static int
s_load(const char *text, brk_config_t **c, char *err, size_t errlen)
{
    FILE *f = fopen("/tmp/haven-broker-test.conf", "w");
    fputs(text, f);
    fclose(f);
    return brk_config_load("/tmp/haven-broker-test.conf", c, err, errlen);
}

Test(config, defaults_and_durations)
{
    brk_config_t *c = NULL;
    char err[256];
    cr_assert_eq(s_load("[broker]\ndata_dir = data\ndistricts = /d.csv\n[timers]\noffer_ttl = 5m\n",
                        &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c->data_dir, "/tmp/data");
    cr_assert_str_eq(c->districts, "/d.csv");
    cr_assert_str_eq(c->bind, "tcp://127.0.0.1:7450");
    cr_assert_eq(c->offer_ttl_s, 300);
    cr_assert_eq(c->max_results, 100);
    cr_assert_eq(c->max_message_bytes, 1 << 20);
    brk_config_destroy(&c);
}

Test(config, refusals_name_the_line)
{
    brk_config_t *c = NULL;
    char err[256];
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\n[limits]\nmax_results = 0\n",
                        &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 5") && strstr(err, "max_results"), "%s", err);
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\nport = 9\n", &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 4") && strstr(err, "unknown option 'port'"), "%s", err);
    cr_assert_eq(s_load("[broker]\ndistricts = x\n", &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "data_dir"), "%s", err);
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\n[timers]\noffer_ttl = soon\n",
                        &c, err, sizeof err), -EINVAL);
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\nlog_level = loud\n", &c, err, sizeof err), -EINVAL);
}

Test(config, replies_kept_for_retries_never_outlive_a_referral)
{
    brk_config_t *c = NULL;
    char err[512];
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\n", &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c->replay_window_s, 86400, "a day by default");
    brk_config_destroy(&c);
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\n[timers]\nreplay_window = 8d\n", &c, err,
                        sizeof err), -EINVAL);
    cr_assert(strstr(err, "replay_window") && strstr(err, "address_retention"), "%s", err);
    cr_assert_eq(s_load("[broker]\ndata_dir = d\ndistricts = x\n[timers]\nreplay_window = 8d\n"
                        "address_retention = 10d\n", &c, err, sizeof err), 0, "%s", err);
    brk_config_destroy(&c);
}
