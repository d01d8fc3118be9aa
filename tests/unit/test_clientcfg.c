/* SPDX-License-Identifier: MIT */
/* Client configuration: defaults, relative paths, precise errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "../../common/clientcfg.h"

static void
s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(clientcfg, loads_with_defaults_and_relative_paths)
{
    char err[256];
    hv_clientcfg_t *c = NULL;
    s_write("/tmp/haven-cfg-test.conf",
            "[broker]\nendpoint = tcp://127.0.0.1:7450\npublic_key = broker.pub\n"
            "[identity]\nkey = /abs/me.key\n[agent]\nprovider = refuge-1\nstate_dir = state\n");
    cr_assert_eq(hv_clientcfg_load("/tmp/haven-cfg-test.conf", &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c->endpoint, "tcp://127.0.0.1:7450");
    cr_assert_str_eq(c->broker_key, "/tmp/broker.pub");
    cr_assert_str_eq(c->key, "/abs/me.key");
    cr_assert_str_eq(c->state_dir, "/tmp/state");
    cr_assert_eq(c->timeout_ms, 3000);
    cr_assert_eq(c->retries, 3);
    hv_clientcfg_destroy(&c);
    cr_assert_null(c);
}

Test(clientcfg, unknown_option_names_its_line)
{
    char err[256];
    hv_clientcfg_t *c = NULL;
    s_write("/tmp/haven-cfg-test2.conf",
            "[broker]\nendpoint = tcp://127.0.0.1:7450\npublic_key = b.pub\n\n[identity]\nkee = me.key\n");
    cr_assert_eq(hv_clientcfg_load("/tmp/haven-cfg-test2.conf", &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 6") && strstr(err, "kee"), "%s", err);
}

Test(clientcfg, out_of_range_and_missing)
{
    char err[256];
    hv_clientcfg_t *c = NULL;
    s_write("/tmp/haven-cfg-test3.conf",
            "[broker]\nendpoint = x\npublic_key = b.pub\ntimeout_ms = 5\n[identity]\nkey = k\n");
    cr_assert_eq(hv_clientcfg_load("/tmp/haven-cfg-test3.conf", &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line 4") && strstr(err, "timeout_ms"), "%s", err);
    s_write("/tmp/haven-cfg-test3.conf", "[broker]\nendpoint = x\n");
    cr_assert_eq(hv_clientcfg_load("/tmp/haven-cfg-test3.conf", &c, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "needs"), "%s", err);
    cr_assert_eq(hv_clientcfg_load("/nonexistent/haven.conf", &c, err, sizeof err), -ENOENT);
}
