/* SPDX-License-Identifier: MIT */
/* Dispatch (dispatch.c): every operation the wire defines has a handler,
 * is a read or a write as the table below says, and may be sent by the
 * roles it says and no other; and a valid request at the limits of its
 * fields fits under its operation's size cap, so that the cap refuses
 * only what no valid request can be. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/dispatch.h"

#define AGENT (1u << HAVEN__ROLE__ROLE_AGENT)
#define IDVA (1u << HAVEN__ROLE__ROLE_IDVA)
#define ONCALL (1u << HAVEN__ROLE__ROLE_ONCALL)
#define ADMIN (1u << HAVEN__ROLE__ROLE_ADMIN)
#define ANYONE (AGENT | IDVA | ONCALL | ADMIN)

static const struct {
    int body;
    bool write;
    uint32_t roles;
} s_table[] = {
    { HAVEN__REQUEST__BODY_PING, false, ANYONE },
    { HAVEN__REQUEST__BODY_PROVIDER_ADD, true, ADMIN },
    { HAVEN__REQUEST__BODY_PROVIDER_LIST, false, ADMIN },
    { HAVEN__REQUEST__BODY_PRINCIPAL_ADD, true, ADMIN },
    { HAVEN__REQUEST__BODY_PRINCIPAL_LIST, false, ADMIN },
    { HAVEN__REQUEST__BODY_PRINCIPAL_REVOKE, true, ADMIN },
    { HAVEN__REQUEST__BODY_PRINCIPAL_CERTIFY, true, ADMIN },
    { HAVEN__REQUEST__BODY_PUBLISH, true, AGENT },
    { HAVEN__REQUEST__BODY_UNIT_SET, true, AGENT },
    { HAVEN__REQUEST__BODY_CONFIRM, true, AGENT },
    { HAVEN__REQUEST__BODY_AGENT_STATUS, false, AGENT },
    { HAVEN__REQUEST__BODY_AGENT_SYNC, false, AGENT },
    { HAVEN__REQUEST__BODY_AGENT_RESYNCED, true, AGENT },
    { HAVEN__REQUEST__BODY_SEARCH, false, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_HOLD_PREPARE, false, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_HOLD_CREATE, true, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_HOLD_LIST, false, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_HOLD_CANCEL, true, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_HOLD_ADDRESS, false, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_REFERRALS, false, AGENT },
    { HAVEN__REQUEST__BODY_ACCEPT, true, AGENT },
    { HAVEN__REQUEST__BODY_DECLINE, true, AGENT },
    { HAVEN__REQUEST__BODY_SUBSCRIBE, false, ANYONE },
    { HAVEN__REQUEST__BODY_BACKUP_START, false, ADMIN },
    { HAVEN__REQUEST__BODY_BACKUP_FETCH, false, ADMIN },
    { HAVEN__REQUEST__BODY_WATCH_CREATE, true, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_WATCH_LIST, false, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_WATCH_CANCEL, true, IDVA | ONCALL },
    /* a read; only an acknowledgement in it is a write (brk_receive) */
    { HAVEN__REQUEST__BODY_INBOX, false, IDVA | ONCALL },
    { HAVEN__REQUEST__BODY_AUDIT_VERIFY, false, ADMIN },
    { HAVEN__REQUEST__BODY_AUDIT_SHOW, false, ADMIN },
    { HAVEN__REQUEST__BODY_REPORT, false, ADMIN },
};
#define N_TABLE (sizeof s_table / sizeof *s_table)

static const int s_roles[] = { HAVEN__ROLE__ROLE_NONE, HAVEN__ROLE__ROLE_AGENT, HAVEN__ROLE__ROLE_IDVA,
                               HAVEN__ROLE__ROLE_ONCALL, HAVEN__ROLE__ROLE_ADMIN };

Test(dispatch, every_operation_by_every_role_against_the_table)
{
    for (size_t i = 0; i < N_TABLE; i++) {
        int body = s_table[i].body;
        const brk_op_t *op = brk_op(body);
        cr_assert(op && op->fn, "%s has no handler", brk_op_name(body));
        cr_assert_eq(op->write, s_table[i].write, "%s: write", brk_op_name(body));
        for (size_t k = 0; k < sizeof s_roles / sizeof *s_roles; k++) {
            bool want = (s_table[i].roles >> s_roles[k]) & 1;
            cr_assert_eq(brk_op_allowed(body, s_roles[k]), want, "%s by role %d", brk_op_name(body), s_roles[k]);
        }
    }
}

Test(dispatch, the_table_covers_every_operation_on_the_wire)
{
    const ProtobufCMessageDescriptor *d = &haven__request__descriptor;
    size_t ops = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        ops++;
        bool listed = false;
        for (size_t k = 0; k < N_TABLE; k++)
            listed |= s_table[k].body == (int) f->id;
        cr_assert(listed, "operation %s is not in the test's table", f->name);
        cr_assert_str_eq(brk_op_name((int) f->id), f->name);
    }
    cr_assert_eq(ops, N_TABLE, "the table lists an operation the wire does not have");
}

Test(dispatch, no_operation_and_unknown_ones_are_no_ones)
{
    cr_assert_null(brk_op(HAVEN__REQUEST__BODY__NOT_SET));
    cr_assert_null(brk_op(-1));
    cr_assert_null(brk_op(9));
    cr_assert_null(brk_op(1000));
    cr_assert_str_eq(brk_op_name(1000), "unknown");
    for (size_t k = 0; k < sizeof s_roles / sizeof *s_roles; k++) {
        cr_assert(!brk_op_allowed(HAVEN__REQUEST__BODY__NOT_SET, s_roles[k]));
        cr_assert(!brk_op_allowed(1000, s_roles[k]));
    }
    cr_assert(!brk_op_allowed(HAVEN__REQUEST__BODY_PING, 40), "a role out of range may do nothing");
}

/* ------------------------------------------------------------ size caps */

static const brk_config_t s_cfg = { .max_units_per_catalog = 5000 };

Test(dispatch, caps_by_operation)
{
    cr_assert_eq(brk_op_max_bytes(&s_cfg, HAVEN__REQUEST__BODY_PING), 4096);
    cr_assert_eq(brk_op_max_bytes(&s_cfg, HAVEN__REQUEST__BODY__NOT_SET), 4096);
    cr_assert_eq(brk_op_max_bytes(&s_cfg, HAVEN__REQUEST__BODY_SEARCH), 16384);
    cr_assert_eq(brk_op_max_bytes(&s_cfg, HAVEN__REQUEST__BODY_WATCH_CREATE), 16384);
    /* a catalog's cap follows the units it may hold */
    brk_config_t small = { .max_units_per_catalog = 10 };
    cr_assert_eq(brk_op_max_bytes(&s_cfg, HAVEN__REQUEST__BODY_PUBLISH), 5000 * HV_UNIT_WIRE_BYTES + 8192);
    cr_assert_eq(brk_op_max_bytes(&small, HAVEN__REQUEST__BODY_PUBLISH), 10 * HV_UNIT_WIRE_BYTES + 8192);
}

static uint8_t s_bytes[HV_NOTE_MAX + HV_SEAL_OVERHEAD];

/* A sealed box at its most: a plaintext of max bytes, signed. */
static Haven__Sealed *
s_sealed(size_t max)
{
    Haven__Sealed *s = calloc(1, sizeof *s);
    haven__sealed__init(s);
    s->recipient = (ProtobufCBinaryData) { HV_KEY_BYTES, s_bytes };
    s->box = (ProtobufCBinaryData) { max + HV_SEAL_OVERHEAD, s_bytes };
    s->has_signature = s->has_signer = 1;
    s->signature = (ProtobufCBinaryData) { HV_SIGNATURE_BYTES, s_bytes };
    s->signer = (ProtobufCBinaryData) { HV_KEY_BYTES, s_bytes };
    return s;
}

/* Valid, and within its operation's cap. */
static void
s_fits(Haven__Request *req)
{
    char err[256];
    req->id = UINT64_MAX;
    cr_assert_eq(hv_request_validate(req, err, sizeof err), 0, "%s: %s", brk_op_name(req->body_case), err);
    size_t len = haven__request__get_packed_size(req);
    size_t cap = brk_op_max_bytes(&s_cfg, req->body_case);
    cr_assert_leq(len, cap, "a valid %s of %zu bytes is over its cap of %zu", brk_op_name(req->body_case), len,
                  cap);
}

static char s_provider[HV_ID_MAX + 1], s_token[HV_TOKEN_MAX + 1];

static void
s_init_ids(void)
{
    memset(s_provider, 'p', HV_ID_MAX);
    /* the validator holds every string to HV_STRING_MAX, tokens too */
    memset(s_token, 'A', HV_STRING_MAX < HV_TOKEN_MAX ? HV_STRING_MAX : HV_TOKEN_MAX);
    memset(s_bytes, 7, sizeof s_bytes);
}

Test(dispatch, a_hold_at_its_limits_fits_its_cap, .init = s_init_ids)
{
    Haven__Sealed *notes[HV_RECIPIENTS_MAX];
    for (int i = 0; i < HV_RECIPIENTS_MAX; i++)
        notes[i] = s_sealed(HV_NOTE_MAX);
    Haven__HoldCreate c = HAVEN__HOLD_CREATE__INIT;
    c.offer = s_token;
    c.n_notes = HV_RECIPIENTS_MAX;
    c.notes = notes;
    c.hold = "0123456789abcdef";
    c.has_signature = 1;
    c.signature = (ProtobufCBinaryData) { HV_SIGNATURE_BYTES, s_bytes };
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_CREATE;
    req.hold_create = &c;
    s_fits(&req);
    for (int i = 0; i < HV_RECIPIENTS_MAX; i++)
        free(notes[i]);
}

Test(dispatch, answers_at_their_limits_fit_their_caps, .init = s_init_ids)
{
    Haven__Sealed *box = s_sealed(HV_ADDRESS_MAX);
    Haven__Accept a = HAVEN__ACCEPT__INIT;
    a.provider = s_provider;
    a.hold = "0123456789abcdef";
    a.address = box;
    a.version = UINT64_MAX;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_ACCEPT;
    req.accept = &a;
    s_fits(&req);
    Haven__Decline d = HAVEN__DECLINE__INIT;
    d.provider = s_provider;
    d.hold = "0123456789abcdef";
    d.reason = HAVEN__DECLINE_REASON__DECLINE_NONE + 1;
    d.message = box;
    d.version = UINT64_MAX;
    req.body_case = HAVEN__REQUEST__BODY_DECLINE;
    req.decline = &d;
    s_fits(&req);
    free(box);
}
