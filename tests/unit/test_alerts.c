/* SPDX-License-Identifier: MIT */
/* Alerts from standing searches: what the log says of alerts that could
 * not be kept or stored (they are dropped, and it says whose). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include "../../broker/alerts.h"
#include "fault.h"

static brk_config_t s_cfg = { .offer_ttl_s = 600, .inbox_max = 100 };
static brk_ctx_t s_ctx;
static brk_alerts_t *s_alerts;
static const uint8_t s_key[32] = { 7, 7, 7 };

static void
s_push(void *arg, const char *z85, const char *event, const char *id)
{
    (void) arg;
    (void) z85;
    (void) event;
    (void) id;
    cr_assert_fail("nothing was stored, so nobody may be told");
}

static void
s_setup(void)
{
    s_ctx.cfg = &s_cfg;
    cr_assert(s_ctx.principals = brk_principals_new());
    Haven__Principal p = HAVEN__PRINCIPAL__INIT;
    p.name = "idva-1";
    p.role = HAVEN__ROLE__ROLE_IDVA;
    p.curve_key = (ProtobufCBinaryData) { 32, (uint8_t *) s_key };
    cr_assert_eq(brk_principals_put(s_ctx.principals, &p), 0);
    cr_assert(s_ctx.index = brk_index_new());
    Haven__Provider pr = HAVEN__PROVIDER__INIT;
    pr.id = "refuge-1";
    pr.name = "Refuge";
    pr.kind = HAVEN__KIND__KIND_REFUGE;
    cr_assert_geq(brk_index_put_provider(s_ctx.index, &pr, -1), 0);
    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit u = HAVEN__UNIT__INIT;
    spec.name = "room-1";
    u.provider = "refuge-1";
    u.spec = &spec;
    u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    cr_assert_eq(brk_index_put_unit(s_ctx.index, &u, -1), 0);
    cr_assert(s_alerts = brk_alerts_new(&s_ctx, s_push, NULL));
}

static void
s_teardown(void)
{
    brk_alerts_destroy(&s_alerts);
    brk_index_destroy(&s_ctx.index);
    brk_principals_destroy(&s_ctx.principals);
}

TestSuite(alerts, .init = s_setup, .fini = s_teardown);

/* Before, a failed realloc dropped the match without a word. */
Test(alerts, a_match_without_room_is_logged_as_dropped_with_its_watch)
{
    char said[4096];
    int log = ft_stderr_capture();
    cr_assert(log >= 0);
    brk_alerts_begin_unit(s_alerts, "refuge-1", "room-1");
    ft_fail(FT_REALLOC, 0);
    brk_alerts_on_match(s_alerts, "00000000000000aa", s_key);
    cr_assert(ft_failed(FT_REALLOC));
    ft_reset();
    brk_alerts_deliver(s_alerts);
    ft_stderr_restore(log, said, sizeof said);
    cr_assert(strstr(said, "the alert of watch 00000000000000aa (idva-1) for refuge-1/room-1 is dropped"),
              "%s", said);
    cr_assert(strstr(said, "1 watch alerts were dropped for lack of memory"), "%s", said);
    cr_assert_null(strstr(said, "matched"), "no delivery is claimed: %s", said);
}

/* Before, a failed calloc of the offers was logged as a full store
 * ("No space left on device"). */
Test(alerts, alerts_that_cannot_be_stored_are_logged_as_dropped_with_their_watches)
{
    char said[4096];
    int log = ft_stderr_capture();
    cr_assert(log >= 0);
    brk_alerts_begin_unit(s_alerts, "refuge-1", "room-1");
    brk_alerts_on_match(s_alerts, "00000000000000bb", s_key);
    ft_fail(FT_CALLOC, 0);
    brk_alerts_deliver(s_alerts);
    cr_assert(ft_failed(FT_CALLOC));
    ft_reset();
    ft_stderr_restore(log, said, sizeof said);
    cr_assert(strstr(said, "storing 1 watch alerts failed: Cannot allocate memory; they are dropped"), "%s", said);
    cr_assert(strstr(said, "dropped: the alert of watch 00000000000000bb (idva-1) for refuge-1/room-1"),
              "%s", said);
    cr_assert_null(strstr(said, "matched"), "no delivery is claimed: %s", said);
}
