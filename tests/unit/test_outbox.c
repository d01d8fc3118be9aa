/* SPDX-License-Identifier: MIT */
/* The agent's outbox: order, durability across reopen, versions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../agent/outbox.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-outbox-XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(outbox, .init = setup, .fini = teardown);

static void
s_push(agt_outbox_t *o, const char *unit, uint64_t version)
{
    Haven__UnitSet s = HAVEN__UNIT_SET__INIT;
    Haven__Request r = HAVEN__REQUEST__INIT;
    s.provider = "refuge-1";
    s.unit = (char *) unit;
    s.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    s.version = version;
    r.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    r.unit_set = &s;
    cr_assert_eq(agt_outbox_push(o, &r), 0);
}

Test(outbox, keeps_order_across_reopen)
{
    agt_outbox_t *o = NULL;
    Haven__Request *r = NULL;
    uint64_t seq;
    size_t n;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_peek(o, &r, &seq), -ENOENT);
    s_push(o, "a", 1);
    s_push(o, "b", 2);
    s_push(o, "c", 3);
    agt_outbox_destroy(&o);

    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_count(o, &n), 0);
    cr_assert_eq(n, 3);
    const char *want[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(agt_outbox_peek(o, &r, &seq), 0);
        cr_assert_str_eq(r->unit_set->unit, want[i]);
        haven__request__free_unpacked(r, NULL);
        cr_assert_eq(agt_outbox_remove(o, seq), 0);
    }
    cr_assert_eq(agt_outbox_count(o, &n), 0);
    cr_assert_eq(n, 0);
    agt_outbox_destroy(&o);
}

Test(outbox, versions_rise_and_start_from_the_clock)
{
    agt_outbox_t *o = NULL;
    uint64_t a, b, c;
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_next_version(o, &a), 0);
    cr_assert_eq(agt_outbox_next_version(o, &b), 0);
    cr_assert_gt(b, a);
    cr_assert_geq(a, (uint64_t) (time(NULL) - 5) * 1000000u,
                  "a fresh state dir must outrank versions from a lost one");
    agt_outbox_destroy(&o);
    cr_assert_eq(agt_outbox_open(dir, &o), 0);
    cr_assert_eq(agt_outbox_next_version(o, &c), 0);
    cr_assert_gt(c, b);
    agt_outbox_destroy(&o);
}
