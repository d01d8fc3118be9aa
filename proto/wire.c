/* SPDX-License-Identifier: MIT */
/* Haven wire codec: decode and validate request/reply envelopes.
 * protobuf-c checks only the encoding; everything a remote peer controls
 * (lengths, enums, counts, alphabets) is checked here before any use. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"
#include "wire.h"

static int
s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

bool
hv_valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > HV_ID_MAX)
        return false;
    if (!islower((unsigned char) s[0]) && !isdigit((unsigned char) s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char) *p) && !isdigit((unsigned char) *p)
            && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

bool
hv_valid_text(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return false;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool
hv_valid_district(const char *s)
{
    if (!s || strlen(s) != 9 || !isupper((unsigned char) s[0]))
        return false;
    for (int i = 1; i < 9; i++)
        if (!isdigit((unsigned char) s[i]))
            return false;
    return true;
}

bool
hv_valid_language(const char *s)
{
    return s && strlen(s) == 2 && islower((unsigned char) s[0])
        && islower((unsigned char) s[1]);
}

bool
hv_valid_phone(const char *s)
{
    if (!s || !*s || strlen(s) > 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char) *p) && !strchr(" +-()", *p))
            return false;
    return true;
}

bool
hv_valid_token(const char *s)
{
    if (!s || !*s || strlen(s) > HV_TOKEN_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
            return false;
    return true;
}

/* Walk the message tree: refuse unknown fields, undefined enum values and
 * overlong or control-character strings, whatever the message type. */
int
hv_message_check(const ProtobufCMessage *msg, char *err, size_t errlen)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (msg->n_unknown_fields)
        return s_fail(err, errlen, "%s has an unknown field (number %u)",
                      d->short_name, msg->unknown_fields[0].tag);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *) msg;
        size_t count = 1;
        const void *values = base + f->offset;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *) (base + f->quantifier_offset);
            values = *(void *const *) (base + f->offset);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *) (base + f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset
                   && f->type != PROTOBUF_C_TYPE_MESSAGE
                   && f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *) (base + f->quantifier_offset))
                continue;
        }
        for (size_t k = 0; k < count; k++) {
            switch (f->type) {
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = ((const ProtobufCMessage *const *) values)[k];
                if (sub) {
                    int rc = hv_message_check(sub, err, errlen);
                    if (rc < 0)
                        return rc;
                }
                break;
            }
            case PROTOBUF_C_TYPE_ENUM: {
                int v = ((const int *) values)[k];
                if (!protobuf_c_enum_descriptor_get_value(f->descriptor, v))
                    return s_fail(err, errlen, "%s.%s has an undefined value %d",
                                  d->short_name, f->name, v);
                break;
            }
            case PROTOBUF_C_TYPE_STRING: {
                const char *s = ((const char *const *) values)[k];
                /* an offer token may be longer than other strings: its
                 * own check (hv_valid_token) bounds it */
                size_t cap = strcmp(f->name, "offer") == 0 ? HV_TOKEN_MAX : HV_STRING_MAX;
                if (s && *s && !hv_valid_text(s, cap))
                    return s_fail(err, errlen,
                                  "%s.%s is too long or has control characters",
                                  d->short_name, f->name);
                break;
            }
            default:
                break;
            }
        }
    }
    return 0;
}

static int
s_check_id(const char *what, const char *s, char *err, size_t errlen)
{
    if (!hv_valid_id(s))
        return s_fail(err, errlen, "%s '%.64s' is not valid: use 1-64 of a-z, 0-9, '-', '_', '.'",
                      what, s ? s : "");
    return 0;
}

static int
s_check_district(const char *what, const char *s, char *err, size_t errlen)
{
    if (!hv_valid_district(s))
        return s_fail(err, errlen, "%s '%.16s' is not a district code (e.g. E07000008)",
                      what, s ? s : "");
    return 0;
}

static int
s_check_service(const Haven__Service *s, char *err, size_t errlen)
{
    if (s->has_pets && (s->pets & ~HV_PETS_ALL))
        return s_fail(err, errlen, "service pets has unknown bits");
    if (s->has_complex_needs && (s->complex_needs & ~HV_COMPLEX_ALL))
        return s_fail(err, errlen, "service complex_needs has unknown bits");
    if (s->has_adult_min_age && s->adult_min_age > 120)
        return s_fail(err, errlen, "adult_min_age must be 0-120");
    if (s->has_adult_max_age && (s->adult_max_age > 120
                                 || (s->has_adult_min_age && s->adult_max_age < s->adult_min_age)))
        return s_fail(err, errlen, "adult_max_age must be 0-120 and not below adult_min_age");
    if (s->has_max_children && s->max_children > 20)
        return s_fail(err, errlen, "max_children must be 0-20");
    if (s->has_max_boy_age && s->max_boy_age > 25)
        return s_fail(err, errlen, "max_boy_age must be 0-25");
    if (s->n_languages > HV_LIST_MAX)
        return s_fail(err, errlen, "too many languages (at most %d)", HV_LIST_MAX);
    for (size_t i = 0; i < s->n_languages; i++)
        if (!hv_valid_language(s->languages[i]))
            return s_fail(err, errlen, "language '%.8s' is not an ISO 639-1 code", s->languages[i]);
    if (s->has_confirm_every_s && (s->confirm_every_s < 60 || s->confirm_every_s > 90 * 86400))
        return s_fail(err, errlen, "confirm_every must be between 1 minute and 90 days");
    return 0;
}

static int
s_check_unit_spec(const Haven__UnitSpec *u, char *err, size_t errlen)
{
    int rc = s_check_id("unit name", u->name, err, errlen);
    if (rc < 0)
        return rc;
    if (u->has_features && (u->features & ~HV_FEATURES_ALL))
        return s_fail(err, errlen, "unit %s has unknown feature bits", u->name);
    if (u->has_max_occupants && (u->max_occupants < 1 || u->max_occupants > 30))
        return s_fail(err, errlen, "unit %s: max_occupants must be 1-30", u->name);
    if (u->has_bedrooms && u->bedrooms > 20)
        return s_fail(err, errlen, "unit %s: bedrooms must be 0-20", u->name);
    if (u->has_cots && u->cots > 10)
        return s_fail(err, errlen, "unit %s: cots must be 0-10", u->name);
    if (u->district && *u->district)
        return s_check_district("unit district", u->district, err, errlen);
    return 0;
}

static int
s_check_codes(const char *what, char **codes, size_t n, char *err, size_t errlen)
{
    if (n > HV_LIST_MAX)
        return s_fail(err, errlen, "too many %s districts (at most %d)", what, HV_LIST_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = s_check_district(what, codes[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int
s_check_need(const Haven__Need *n, char *err, size_t errlen)
{
    int rc;
    if (n->has_age && (n->age < 16 || n->age > 120))
        return s_fail(err, errlen, "age must be 16-120");
    if (n->has_adults && (n->adults < 1 || n->adults > 10))
        return s_fail(err, errlen, "adults must be 1-10");
    if (n->n_children > HV_CHILDREN_MAX)
        return s_fail(err, errlen, "too many children (at most %d)", HV_CHILDREN_MAX);
    for (size_t i = 0; i < n->n_children; i++) {
        const Haven__Child *c = n->children[i];
        if (c->age > 17)
            return s_fail(err, errlen, "child age must be 0-17");
        if (strcmp(c->sex, "m") && strcmp(c->sex, "f") && strcmp(c->sex, "x"))
            return s_fail(err, errlen, "child sex must be m, f or x");
    }
    if (n->has_pets && (n->pets & ~HV_PETS_ALL))
        return s_fail(err, errlen, "need pets has unknown bits");
    if (n->has_access && (n->access & ~HV_FEATURES_ALL))
        return s_fail(err, errlen, "need access has unknown bits");
    if (n->has_complex_needs && (n->complex_needs & ~HV_COMPLEX_ALL))
        return s_fail(err, errlen, "need complex_needs has unknown bits");
    if (n->n_kinds > HV_LIST_MAX)
        return s_fail(err, errlen, "too many kinds");
    for (size_t i = 0; i < n->n_kinds; i++)
        if (n->kinds[i] == HAVEN__KIND__KIND_NONE)
            return s_fail(err, errlen, "kind must be refuge, dispersed, hostel or emergency");
    if ((rc = s_check_codes("excluded", n->exclude, n->n_exclude, err, errlen)) < 0
        || (rc = s_check_codes("preferred", n->prefer, n->n_prefer, err, errlen)) < 0)
        return rc;
    if (n->home && (rc = s_check_district("home", n->home, err, errlen)) < 0)
        return rc;
    if (n->near && (rc = s_check_district("near", n->near, err, errlen)) < 0)
        return rc;
    if (n->has_out_of_area && n->out_of_area && !n->home)
        return s_fail(err, errlen, "--out-of-area needs --home");
    if (n->has_within_km && (n->within_km < 1 || n->within_km > 2000))
        return s_fail(err, errlen, "within must be 1-2000 km");
    if (n->has_within_km && !n->near && !n->home)
        return s_fail(err, errlen, "--within needs --near (or --home)");
    if (n->n_languages > HV_LIST_MAX)
        return s_fail(err, errlen, "too many languages");
    for (size_t i = 0; i < n->n_languages; i++)
        if (!hv_valid_language(n->languages[i]))
            return s_fail(err, errlen, "language '%.8s' is not an ISO 639-1 code", n->languages[i]);
    return 0;
}

static int
s_check_provider(const Haven__Provider *p, char *err, size_t errlen)
{
    int rc;
    if ((rc = s_check_id("provider id", p->id, err, errlen)) < 0)
        return rc;
    if (!hv_valid_text(p->name, HV_TEXT_MAX))
        return s_fail(err, errlen, "provider name must be 1-%d printable characters", HV_TEXT_MAX);
    if (p->kind == HAVEN__KIND__KIND_NONE)
        return s_fail(err, errlen, "provider kind must be refuge, dispersed, hostel or emergency");
    if ((rc = s_check_district("provider district", p->district, err, errlen)) < 0)
        return rc;
    if (p->phone && *p->phone && !hv_valid_phone(p->phone))
        return s_fail(err, errlen, "phone '%.32s' is not a phone number", p->phone);
    if (p->service)
        return s_check_service(p->service, err, errlen);
    return 0;
}

static int
s_check_signed(const char *what, const Haven__Signed *s, char *err, size_t errlen)
{
    if (!s)
        return s_fail(err, errlen, "%s is missing", what);
    if (s->body.len < 1 || s->body.len > HV_SIGNED_MAX || s->signature.len != HV_SIGNATURE_BYTES)
        return s_fail(err, errlen, "%s must be a signed body of 1-%d bytes with a %d-byte signature", what,
                      HV_SIGNED_MAX, HV_SIGNATURE_BYTES);
    return 0;
}

static int
s_check_sealed(const char *what, const Haven__Sealed *s, size_t max_plain, char *err, size_t errlen)
{
    if (s->recipient.len != HV_KEY_BYTES)
        return s_fail(err, errlen, "%s: the recipient key must be %d bytes", what, HV_KEY_BYTES);
    if ((s->has_signature && s->signature.len != HV_SIGNATURE_BYTES) || (s->has_signer && s->signer.len != HV_KEY_BYTES)
        || s->has_signature != s->has_signer)
        return s_fail(err, errlen, "%s: a signature is %d bytes with a %d-byte signer", what,
                      HV_SIGNATURE_BYTES, HV_KEY_BYTES);
    if (s->box.len <= HV_SEAL_OVERHEAD || s->box.len > max_plain + HV_SEAL_OVERHEAD)
        return s_fail(err, errlen, "%s: the sealed box must hold 1-%zu bytes", what, max_plain);
    return 0;
}

static int
s_check_token(const char *s, char *err, size_t errlen)
{
    if (!hv_valid_token(s))
        return s_fail(err, errlen, "that is not an offer token: copy it whole from a search");
    return 0;
}

/* Hold, watch and backup ids are 16 hex digits the broker made; what says
 * which the request names, and printed_by where the user saw it. */
static int
s_check_hex_id(const char *what, const char *printed_by, const char *s, char *err, size_t errlen)
{
    if (!s || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16)
        return s_fail(err, errlen, "'%.32s' is not a %s id (16 hex digits, as %s printed)", s ? s : "",
                      what, printed_by);
    return 0;
}

static int
s_check_hold_id(const char *s, char *err, size_t errlen)
{
    return s_check_hex_id("hold", "haven hold", s, err, errlen);
}

int
hv_request_validate(const Haven__Request *r, char *err, size_t errlen)
{
    int rc = hv_message_check(&r->base, err, errlen);
    if (rc < 0)
        return rc;
    switch (r->body_case) {
    case HAVEN__REQUEST__BODY__NOT_SET:
        return s_fail(err, errlen, "the request has no operation");
    case HAVEN__REQUEST__BODY_PING:
    case HAVEN__REQUEST__BODY_PROVIDER_LIST:
    case HAVEN__REQUEST__BODY_PRINCIPAL_LIST:
        return 0;
    case HAVEN__REQUEST__BODY_PROVIDER_ADD:
        return s_check_provider(r->provider_add->provider, err, errlen);
    case HAVEN__REQUEST__BODY_PRINCIPAL_ADD: {
        const Haven__Principal *p = r->principal_add->principal;
        if ((rc = s_check_id("principal name", p->name, err, errlen)) < 0)
            return rc;
        if (p->role == HAVEN__ROLE__ROLE_NONE)
            return s_fail(err, errlen, "role must be agent, idva, oncall or admin");
        if (p->curve_key.len != HV_KEY_BYTES)
            return s_fail(err, errlen, "curve key must be %d bytes", HV_KEY_BYTES);
        if (p->has_seal_key && p->seal_key.len != HV_KEY_BYTES)
            return s_fail(err, errlen, "sealing key must be %d bytes", HV_KEY_BYTES);
        if (p->role == HAVEN__ROLE__ROLE_AGENT) {
            if (!p->provider)
                return s_fail(err, errlen, "an agent principal needs --provider");
            return s_check_id("provider id", p->provider, err, errlen);
        }
        if (p->provider && *p->provider)
            return s_fail(err, errlen, "only agent principals belong to a provider");
        if (p->region && *p->region && p->role != HAVEN__ROLE__ROLE_ONCALL)
            return s_fail(err, errlen, "only on-call principals cover a region");
        if (p->region && *p->region && !hv_valid_text(p->region, HV_TEXT_MAX))
            return s_fail(err, errlen, "region must be 1-%d printable characters", HV_TEXT_MAX);
        if (p->has_sign_key && p->sign_key.len != HV_KEY_BYTES)
            return s_fail(err, errlen, "signing key must be %d bytes", HV_KEY_BYTES);
        if (r->principal_add->certificate)
            return s_check_signed("the certificate", r->principal_add->certificate, err, errlen);
        return 0;
    }
    case HAVEN__REQUEST__BODY_PRINCIPAL_REVOKE:
        if (r->principal_revoke->revocation
            && (rc = s_check_signed("the revocation", r->principal_revoke->revocation, err, errlen)) < 0)
            return rc;
        return s_check_id("principal name", r->principal_revoke->name, err, errlen);
    case HAVEN__REQUEST__BODY_PRINCIPAL_CERTIFY:
        if ((rc = s_check_id("principal name", r->principal_certify->name, err, errlen)) < 0)
            return rc;
        return s_check_signed("the certificate", r->principal_certify->certificate, err, errlen);
    case HAVEN__REQUEST__BODY_PUBLISH: {
        const Haven__Publish *p = r->publish;
        if ((rc = s_check_id("provider id", p->provider, err, errlen)) < 0
            || (rc = s_check_service(p->service, err, errlen)) < 0)
            return rc;
        if (p->n_units > HV_UNITS_WIRE_MAX)
            return s_fail(err, errlen, "too many units");
        for (size_t i = 0; i < p->n_units; i++)
            if ((rc = s_check_unit_spec(p->units[i], err, errlen)) < 0)
                return rc;
        return 0;
    }
    case HAVEN__REQUEST__BODY_UNIT_SET: {
        const Haven__UnitSet *u = r->unit_set;
        if ((rc = s_check_id("provider id", u->provider, err, errlen)) < 0
            || (rc = s_check_id("unit name", u->unit, err, errlen)) < 0)
            return rc;
        if (u->status != HAVEN__UNIT_STATUS__UNIT_AVAILABLE
            && u->status != HAVEN__UNIT_STATUS__UNIT_OCCUPIED
            && u->status != HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE)
            return s_fail(err, errlen, "status must be available, occupied or out-of-service");
        if (u->has_available_from && u->available_from < 0)
            return s_fail(err, errlen, "available_from must not be negative");
        return 0;
    }
    case HAVEN__REQUEST__BODY_CONFIRM:
        return s_check_id("provider id", r->confirm->provider, err, errlen);
    case HAVEN__REQUEST__BODY_AGENT_STATUS:
        return s_check_id("provider id", r->agent_status->provider, err, errlen);
    case HAVEN__REQUEST__BODY_AGENT_SYNC:
        return s_check_id("provider id", r->agent_sync->provider, err, errlen);
    case HAVEN__REQUEST__BODY_AGENT_RESYNCED:
        return s_check_id("provider id", r->agent_resynced->provider, err, errlen);
    case HAVEN__REQUEST__BODY_SEARCH:
        if (r->search->has_limit && (r->search->limit < 1 || r->search->limit > 1000))
            return s_fail(err, errlen, "limit must be 1-1000");
        return s_check_need(r->search->need, err, errlen);
    case HAVEN__REQUEST__BODY_HOLD_PREPARE:
        return s_check_token(r->hold_prepare->offer, err, errlen);
    case HAVEN__REQUEST__BODY_HOLD_CREATE:
        if ((rc = s_check_token(r->hold_create->offer, err, errlen)) < 0)
            return rc;
        if (r->hold_create->hold && (rc = s_check_hold_id(r->hold_create->hold, err, errlen)) < 0)
            return rc;
        if (r->hold_create->has_signature && r->hold_create->signature.len != HV_SIGNATURE_BYTES)
            return s_fail(err, errlen, "the hold's signature must be %d bytes", HV_SIGNATURE_BYTES);
        if (r->hold_create->n_notes > HV_RECIPIENTS_MAX)
            return s_fail(err, errlen, "a note may be sealed to at most %d agents", HV_RECIPIENTS_MAX);
        for (size_t i = 0; i < r->hold_create->n_notes; i++)
            if ((rc = s_check_sealed("note", r->hold_create->notes[i], HV_NOTE_MAX, err, errlen)) < 0)
                return rc;
        return 0;
    case HAVEN__REQUEST__BODY_HOLD_LIST:
    case HAVEN__REQUEST__BODY_SUBSCRIBE:
    case HAVEN__REQUEST__BODY_BACKUP_START:
        return 0;
    case HAVEN__REQUEST__BODY_WATCH_CREATE:
        if (r->watch_create->for_s < 60 || r->watch_create->for_s > 30 * 86400)
            return s_fail(err, errlen, "a watch lasts from 1 minute to 30 days (--for)");
        return s_check_need(r->watch_create->need, err, errlen);
    case HAVEN__REQUEST__BODY_WATCH_LIST:
    case HAVEN__REQUEST__BODY_INBOX:
    case HAVEN__REQUEST__BODY_AUDIT_VERIFY:
        return 0;
    case HAVEN__REQUEST__BODY_WATCH_CANCEL:
        return s_check_hex_id("watch", "haven watch", r->watch_cancel->watch, err, errlen);
    case HAVEN__REQUEST__BODY_AUDIT_SHOW:
        if (r->audit_show->principal && !hv_valid_id(r->audit_show->principal))
            return s_fail(err, errlen, "--principal takes a principal's name");
        return 0;
    case HAVEN__REQUEST__BODY_REPORT: {
        const char *n = r->report->name;
        if (strcmp(n, "unmet") && strcmp(n, "declines") && strcmp(n, "occupancy") && strcmp(n, "stale"))
            return s_fail(err, errlen, "reports are unmet, declines, occupancy and stale");
        return 0;
    }
    case HAVEN__REQUEST__BODY_BACKUP_FETCH:
        return s_check_hex_id("backup", "haven-admin backup", r->backup_fetch->backup, err, errlen);
    case HAVEN__REQUEST__BODY_HOLD_CANCEL:
        return s_check_hold_id(r->hold_cancel->hold, err, errlen);
    case HAVEN__REQUEST__BODY_HOLD_ADDRESS:
        return s_check_hold_id(r->hold_address->hold, err, errlen);
    case HAVEN__REQUEST__BODY_REFERRALS:
        if (r->referrals->hold && (rc = s_check_hold_id(r->referrals->hold, err, errlen)) < 0)
            return rc;
        return s_check_id("provider id", r->referrals->provider, err, errlen);
    case HAVEN__REQUEST__BODY_ACCEPT:
        if ((rc = s_check_id("provider id", r->accept->provider, err, errlen)) < 0
            || (rc = s_check_hold_id(r->accept->hold, err, errlen)) < 0)
            return rc;
        return s_check_sealed("address", r->accept->address, HV_ADDRESS_MAX, err, errlen);
    case HAVEN__REQUEST__BODY_DECLINE:
        if ((rc = s_check_id("provider id", r->decline->provider, err, errlen)) < 0
            || (rc = s_check_hold_id(r->decline->hold, err, errlen)) < 0)
            return rc;
        if (r->decline->reason == HAVEN__DECLINE_REASON__DECLINE_NONE)
            return s_fail(err, errlen, "a decline needs a reason");
        if (r->decline->message)
            return s_check_sealed("message", r->decline->message, HV_ADDRESS_MAX, err, errlen);
        return 0;
    default:
        break;
    }
    return s_fail(err, errlen, "unknown operation %d", (int) r->body_case);
}

/* An allocator that remembers whether the one it wraps refused: protobuf-c
 * does not say why an unpack failed. */
typedef struct {
    ProtobufCAllocator *inner;
    bool refused;
} s_watched_t;

static void *
s_watched_alloc(void *data, size_t size)
{
    s_watched_t *w = data;
    void *p = w->inner->alloc(w->inner->allocator_data, size);
    if (!p)
        w->refused = true;
    return p;
}

static void
s_watched_free(void *data, void *p)
{
    s_watched_t *w = data;
    w->inner->free(w->inner->allocator_data, p);
}

int
hv_request_decode_alloc(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                        Haven__Request **req_out, uint64_t *id_out, char *err, size_t errlen)
{
    s_watched_t watched = { alloc, false };
    ProtobufCAllocator wrapper = { s_watched_alloc, s_watched_free, &watched };
    Haven__Request *r = haven__request__unpack(alloc ? &wrapper : NULL, len, data);
    *id_out = 0;
    if (!r) {
        uint64_t id;
        int body;
        if (watched.refused && hv_request_peek(data, len, &id, &body) == 0) {
            *id_out = id;
            snprintf(err, errlen, "the request needs more memory than the broker gives one batch; "
                     "send it again shortly, or send less at once");
            return -ENOMEM;
        }
        snprintf(err, errlen, "the message is not a valid Haven request");
        return -EBADMSG;
    }
    *id_out = r->id;
    int rc = hv_request_validate(r, err, errlen);
    if (rc < 0) {
        haven__request__free_unpacked(r, alloc);
        return rc;
    }
    *req_out = r;
    return 0;
}

int
hv_request_decode(const uint8_t *data, size_t len, Haven__Request **req_out,
                  uint64_t *id_out, char *err, size_t errlen)
{
    return hv_request_decode_alloc(data, len, NULL, req_out, id_out, err, errlen);
}

static int
s_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p == end)
            return -EBADMSG;
        uint8_t b = *(*p)++;
        v |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EBADMSG;
}

int
hv_request_peek(const uint8_t *data, size_t len, uint64_t *id_out, int *body_out)
{
    const uint8_t *p = data, *end = data + len;
    uint64_t id = 0;
    int body = 0;
    while (p < end) {
        uint64_t key, v;
        if (s_varint(&p, end, &key) < 0 || key >> 3 == 0 || key >> 3 > 536870911u)
            return -EBADMSG;
        switch (key & 7) {
        case 0:                  /* varint */
            if (s_varint(&p, end, &v) < 0)
                return -EBADMSG;
            if (key >> 3 == 1)
                id = v;
            break;
        case 1:                  /* 64-bit */
            if (end - p < 8)
                return -EBADMSG;
            p += 8;
            break;
        case 2:                  /* length-delimited: a body is one */
            if (s_varint(&p, end, &v) < 0 || v > (uint64_t) (end - p))
                return -EBADMSG;
            p += v;
            if (key >> 3 >= 10)
                body = (int) (key >> 3);    /* of a oneof, the last one wins */
            break;
        case 5:                  /* 32-bit */
            if (end - p < 4)
                return -EBADMSG;
            p += 4;
            break;
        default:
            return -EBADMSG;
        }
    }
    *id_out = id;
    *body_out = body;
    return 0;
}

int
hv_reply_decode(const uint8_t *data, size_t len, Haven__Reply **reply_out)
{
    char err[16];
    Haven__Reply *r = haven__reply__unpack(NULL, len, data);
    if (!r)
        return -EBADMSG;
    if (hv_message_check(&r->base, err, sizeof(err)) < 0) {
        haven__reply__free_unpacked(r, NULL);
        return -EBADMSG;
    }
    *reply_out = r;
    return 0;
}

int
hv_pack(const ProtobufCMessage *msg, uint8_t **buf_out, size_t *len_out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    protobuf_c_message_pack(msg, buf);
    *buf_out = buf;
    *len_out = len;
    return 0;
}
