/* SPDX-License-Identifier: MIT */
/* Wire codec: what a stranger can send is decoded and checked, or refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../../proto/names.h"
#include "../../proto/wire.h"

static int
s_roundtrip(Haven__Request *req, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    uint64_t id;
    Haven__Request *out = NULL;
    cr_assert_eq(hv_pack(&req->base, &buf, &len), 0);
    int rc = hv_request_decode(buf, len, &out, &id, err, errlen);
    free(buf);
    if (out)
        haven__request__free_unpacked(out, NULL);
    return rc;
}

static Haven__Request
s_search(Haven__Search *s, Haven__Need *n)
{
    haven__need__init(n);
    haven__search__init(s);
    s->need = n;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 42;
    req.body_case = HAVEN__REQUEST__BODY_SEARCH;
    req.search = s;
    return req;
}

Test(wire, valid_search_decodes)
{
    Haven__Search s;
    Haven__Need n;
    char err[256];
    Haven__Request req = s_search(&s, &n);
    n.has_gender = 1;
    n.gender = HAVEN__GENDER__GENDER_WOMAN;
    char *ex[] = { "E07000008" };
    n.exclude = ex;
    n.n_exclude = 1;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), 0, "%s", err);
}

Test(wire, garbage_is_not_a_request)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    Haven__Request *out = NULL;
    uint64_t id;
    char err[256];
    cr_assert_eq(hv_request_decode(junk, sizeof junk, &out, &id, err, sizeof err), -EBADMSG);
    cr_assert_null(out);
    cr_assert(strstr(err, "not a valid"));
}

Test(wire, unknown_field_is_refused)
{
    /* id = 7, then field 99 varint 1 */
    static const uint8_t msg[] = { 0x08, 0x07, 0x98, 0x06, 0x01 };
    Haven__Request *out = NULL;
    uint64_t id;
    char err[256];
    cr_assert_eq(hv_request_decode(msg, sizeof msg, &out, &id, err, sizeof err), -EINVAL);
    cr_assert_eq(id, 7, "the id is kept so the error reply can be matched");
    cr_assert(strstr(err, "unknown field"), "%s", err);
}

Test(wire, request_without_operation_is_refused)
{
    Haven__Request req = HAVEN__REQUEST__INIT;
    char err[256];
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "no operation"));
}

Test(wire, undefined_enum_is_refused)
{
    Haven__Search s;
    Haven__Need n;
    char err[256];
    Haven__Request req = s_search(&s, &n);
    n.has_gender = 1;
    n.gender = 77;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "undefined value 77"), "%s", err);
}

Test(wire, bad_district_code_is_refused)
{
    Haven__Search s;
    Haven__Need n;
    char err[256];
    Haven__Request req = s_search(&s, &n);
    char *ex[] = { "Cambridge" };
    n.exclude = ex;
    n.n_exclude = 1;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "not a district code"), "%s", err);
}

Test(wire, too_many_children_is_refused)
{
    Haven__Search s;
    Haven__Need n;
    char err[256];
    Haven__Request req = s_search(&s, &n);
    Haven__Child kids[HV_CHILDREN_MAX + 1], *ptrs[HV_CHILDREN_MAX + 1];
    for (int i = 0; i <= HV_CHILDREN_MAX; i++) {
        haven__child__init(&kids[i]);
        kids[i].age = 3;
        kids[i].sex = "f";
        ptrs[i] = &kids[i];
    }
    n.children = ptrs;
    n.n_children = HV_CHILDREN_MAX + 1;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "too many children"), "%s", err);
}

Test(wire, child_sex_and_age_are_checked)
{
    Haven__Search s;
    Haven__Need n;
    char err[256];
    Haven__Request req = s_search(&s, &n);
    Haven__Child kid = HAVEN__CHILD__INIT, *ptr = &kid;
    kid.age = 14;
    kid.sex = "boy";
    n.children = &ptr;
    n.n_children = 1;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    kid.sex = "m";
    kid.age = 30;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    kid.age = 14;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), 0, "%s", err);
}

Test(wire, control_characters_in_strings_are_refused)
{
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    Haven__ProviderAdd add = HAVEN__PROVIDER_ADD__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    char err[256];
    p.id = "refuge-1";
    p.name = "Bad\nName";
    p.kind = HAVEN__KIND__KIND_REFUGE;
    p.district = "E07000008";
    add.provider = &p;
    req.body_case = HAVEN__REQUEST__BODY_PROVIDER_ADD;
    req.provider_add = &add;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    p.name = "Good Name";
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), 0, "%s", err);
    p.id = "Not An Id";
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
}

Test(wire, principal_key_must_be_32_bytes_and_agents_need_a_provider)
{
    uint8_t key[31] = { 0 }, key32[32] = { 1 };
    Haven__Principal p = HAVEN__PRINCIPAL__INIT;
    Haven__PrincipalAdd add = HAVEN__PRINCIPAL_ADD__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    char err[256];
    p.name = "agent-1";
    p.role = HAVEN__ROLE__ROLE_AGENT;
    p.curve_key.data = key;
    p.curve_key.len = sizeof key;
    add.principal = &p;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_ADD;
    req.principal_add = &add;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    p.curve_key.data = key32;
    p.curve_key.len = 32;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "--provider"), "%s", err);
    p.provider = "refuge-1";
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), 0, "%s", err);
}

Test(wire, publish_unit_bounds)
{
    Haven__Service svc = HAVEN__SERVICE__INIT;
    Haven__UnitSpec u = HAVEN__UNIT_SPEC__INIT, *up = &u;
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    char err[256];
    u.name = "room-1";
    u.has_max_occupants = 1;
    u.max_occupants = 0;
    pub.provider = "refuge-1";
    pub.service = &svc;
    pub.units = &up;
    pub.n_units = 1;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    u.max_occupants = 3;
    u.has_features = 1;
    u.features = 1u << 20;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), -EINVAL);
    u.features = HAVEN__FEATURE__FEATURE_WHEELCHAIR;
    cr_assert_eq(s_roundtrip(&req, err, sizeof err), 0, "%s", err);
}

Test(wire, reply_decoder_refuses_garbage)
{
    static const uint8_t junk[] = { 0x0a, 0xff, 0xff };
    Haven__Reply *r = NULL;
    cr_assert_eq(hv_reply_decode(junk, sizeof junk, &r), -EBADMSG);
}

Test(names, words_round_trip)
{
    cr_assert_eq(hv_kind_parse("dispersed"), HAVEN__KIND__KIND_DISPERSED);
    cr_assert_str_eq(hv_kind_name(HAVEN__KIND__KIND_HOSTEL), "hostel");
    cr_assert_eq(hv_kind_parse("castle"), -EINVAL);
    cr_assert_eq(hv_unit_status_parse("out-of-service"), HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE);
    uint32_t bits;
    char bad[32], buf[64];
    cr_assert_eq(hv_bits_parse("dog, cat", hv_pet_parse, &bits, bad, sizeof bad), 0);
    cr_assert_eq(bits, HAVEN__PET__PET_DOG | HAVEN__PET__PET_CAT);
    hv_bits_format(bits, hv_pet_name, buf, sizeof buf);
    cr_assert_str_eq(buf, "dog,cat");
    cr_assert_eq(hv_bits_parse("dog,parrot", hv_pet_parse, &bits, bad, sizeof bad), -EINVAL);
    cr_assert_str_eq(bad, "parrot");
    cr_assert_eq(hv_bits_parse("none", hv_pet_parse, &bits, bad, sizeof bad), 0);
    cr_assert_eq(bits, 0);
}

Test(names, durations)
{
    int64_t s;
    cr_assert_eq(hv_duration_parse("24h", &s), 0);
    cr_assert_eq(s, 86400);
    cr_assert_eq(hv_duration_parse("15m", &s), 0);
    cr_assert_eq(s, 900);
    cr_assert_eq(hv_duration_parse("90", &s), 0);
    cr_assert_eq(s, 90);
    cr_assert_eq(hv_duration_parse("7d", &s), 0);
    cr_assert_eq(s, 7 * 86400);
    cr_assert_eq(hv_duration_parse("-1h", &s), -EINVAL);
    cr_assert_eq(hv_duration_parse("1w", &s), -EINVAL);
    cr_assert_eq(hv_duration_parse("h", &s), -EINVAL);
    cr_assert_eq(hv_duration_parse("", &s), -EINVAL);
}

/* ---------------------------------------------------------------- peek */

/* hv_request_peek reads who may do what before anything is decoded: it must
 * agree with the decoder on well-formed bytes and refuse what is not. */

static void
s_pack(Haven__Request *req, uint8_t **buf, size_t *len)
{
    cr_assert_eq(hv_pack(&req->base, buf, len), 0);
}

Test(peek, reads_the_id_and_operation_of_a_packed_request)
{
    Haven__Search s;
    Haven__Need n;
    Haven__Request req = s_search(&s, &n);
    req.id = 123456789012ULL;
    uint8_t *buf;
    size_t len;
    s_pack(&req, &buf, &len);
    uint64_t id = 0;
    int body = -1;
    cr_assert_eq(hv_request_peek(buf, len, &id, &body), 0);
    cr_assert_eq(id, 123456789012ULL);
    cr_assert_eq(body, HAVEN__REQUEST__BODY_SEARCH);
    free(buf);

    Haven__Ping ping = HAVEN__PING__INIT;
    Haven__Request p = HAVEN__REQUEST__INIT;
    p.id = 5;
    p.body_case = HAVEN__REQUEST__BODY_PING;
    p.ping = &ping;
    s_pack(&p, &buf, &len);
    cr_assert_eq(hv_request_peek(buf, len, &id, &body), 0);
    cr_assert_eq(id, 5);
    cr_assert_eq(body, HAVEN__REQUEST__BODY_PING);
    free(buf);
}

Test(peek, reads_a_large_hold_without_decoding_it)
{
    /* a hold with 2 MiB of "sealed notes": the peek reads its id and
     * operation from the bytes alone, where decoding would allocate them */
    enum { BOX = 1 << 20 };
    uint8_t *box = calloc(1, BOX), key[32] = { 9 };
    cr_assert_not_null(box);
    Haven__Sealed notes[2] = { HAVEN__SEALED__INIT, HAVEN__SEALED__INIT }, *ptrs[2] = { &notes[0], &notes[1] };
    for (int i = 0; i < 2; i++) {
        notes[i].recipient.data = key;
        notes[i].recipient.len = sizeof key;
        notes[i].box.data = box;
        notes[i].box.len = BOX;
    }
    Haven__HoldCreate hc = HAVEN__HOLD_CREATE__INIT;
    hc.offer = "x";
    hc.notes = ptrs;
    hc.n_notes = 2;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 31;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_CREATE;
    req.hold_create = &hc;
    uint8_t *buf;
    size_t len;
    s_pack(&req, &buf, &len);
    free(box);
    cr_assert_gt(len, 2 * BOX);
    uint64_t id = 0;
    int body = 0;
    cr_assert_eq(hv_request_peek(buf, len, &id, &body), 0);
    cr_assert_eq(id, 31);
    cr_assert_eq(body, HAVEN__REQUEST__BODY_HOLD_CREATE);
    free(buf);
}

Test(peek, a_request_with_no_operation_has_body_0)
{
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 9;
    uint8_t *buf;
    size_t len;
    s_pack(&req, &buf, &len);
    uint64_t id = 0;
    int body = -1;
    cr_assert_eq(hv_request_peek(buf, len, &id, &body), 0);
    cr_assert_eq(id, 9);
    cr_assert_eq(body, 0);
    free(buf);
    /* nothing at all: no id, no operation */
    cr_assert_eq(hv_request_peek((const uint8_t *) "", 0, &id, &body), 0);
    cr_assert_eq(id, 0);
    cr_assert_eq(body, 0);
}

Test(peek, skips_fixed_width_fields_it_does_not_know)
{
    /* id 7, field 5 fixed64, field 6 fixed32, then ping (field 10, empty) */
    static const uint8_t msg[] = { 0x08, 0x07, 0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x35, 1, 2, 3, 4, 0x52, 0x00 };
    uint64_t id = 0;
    int body = 0;
    cr_assert_eq(hv_request_peek(msg, sizeof msg, &id, &body), 0);
    cr_assert_eq(id, 7);
    cr_assert_eq(body, HAVEN__REQUEST__BODY_PING);
    /* the same, cut inside the fixed64 and inside the fixed32 */
    cr_assert_eq(hv_request_peek(msg, 6, &id, &body), -EBADMSG);
    cr_assert_eq(hv_request_peek(msg, 14, &id, &body), -EBADMSG);
}

Test(peek, refuses_truncated_varints)
{
    uint64_t id = 42;
    int body = 42;
    static const uint8_t key_cut[] = { 0x80 };             /* a key that never ends */
    static const uint8_t value_cut[] = { 0x08, 0xff, 0xff };  /* an id that never ends */
    static const uint8_t len_cut[] = { 0x08, 0x01, 0xf2, 0x01, 0x80 };    /* search, length cut */
    static const uint8_t too_long[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    cr_assert_eq(hv_request_peek(key_cut, sizeof key_cut, &id, &body), -EBADMSG);
    cr_assert_eq(hv_request_peek(value_cut, sizeof value_cut, &id, &body), -EBADMSG);
    cr_assert_eq(hv_request_peek(len_cut, sizeof len_cut, &id, &body), -EBADMSG);
    cr_assert_eq(hv_request_peek(too_long, sizeof too_long, &id, &body), -EBADMSG, "an 11-byte varint");
    cr_assert_eq(id, 42, "outputs are untouched on failure");
    cr_assert_eq(body, 42);
}

Test(peek, refuses_lengths_past_the_end)
{
    uint64_t id;
    int body;
    /* search (field 30) claiming 5 bytes, with 1 */
    static const uint8_t short_body[] = { 0x08, 0x01, 0xf2, 0x01, 0x05, 0x00 };
    /* a length near 2^64: must not wrap the pointer */
    static const uint8_t huge[] = { 0xf2, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00 };
    cr_assert_eq(hv_request_peek(short_body, sizeof short_body, &id, &body), -EBADMSG);
    cr_assert_eq(hv_request_peek(huge, sizeof huge, &id, &body), -EBADMSG);
    /* exactly to the end is fine */
    static const uint8_t exact[] = { 0x08, 0x01, 0xf2, 0x01, 0x02, 0x0a, 0x00 };
    cr_assert_eq(hv_request_peek(exact, sizeof exact, &id, &body), 0);
    cr_assert_eq(body, HAVEN__REQUEST__BODY_SEARCH);
}

Test(peek, refuses_group_and_reserved_wire_types_and_field_0)
{
    uint64_t id;
    int body;
    for (int wt = 3; wt <= 7; wt++) {
        if (wt == 5)
            continue;            /* fixed32 is a real wire type */
        uint8_t msg[] = { 0x08, 0x01, (uint8_t) ((10 << 3) | wt), 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
        cr_assert_eq(hv_request_peek(msg, sizeof msg, &id, &body), -EBADMSG, "wire type %d", wt);
    }
    static const uint8_t field0[] = { 0x02, 0x00 };
    cr_assert_eq(hv_request_peek(field0, sizeof field0, &id, &body), -EBADMSG, "field number 0");
}

Test(peek, agrees_with_the_decoder_on_which_operation_wins)
{
    /* a ping, then a search on the wire: the role check must judge the
     * operation the handler will run, the last one */
    static const uint8_t msg[] = { 0x08, 0x03, 0x52, 0x00, 0xf2, 0x01, 0x02, 0x0a, 0x00 };
    uint64_t id;
    int body;
    cr_assert_eq(hv_request_peek(msg, sizeof msg, &id, &body), 0);
    Haven__Request *req = haven__request__unpack(NULL, sizeof msg, msg);
    cr_assert_not_null(req);
    cr_assert_eq(body, (int) req->body_case, "peek says %d, the decoder %d", body, (int) req->body_case);
    cr_assert_eq(body, HAVEN__REQUEST__BODY_SEARCH);
    haven__request__free_unpacked(req, NULL);
}

/* ---------------------------------------------------------------- decode budget */

static void *
s_refuse_alloc(void *data, size_t size)
{
    (void) size;
    (*(int *) data)++;
    return NULL;
}

static void
s_no_free(void *data, void *p)
{
    (void) data;
    (void) p;
    cr_assert_fail("nothing was allocated, so nothing is freed");
}

Test(wire, a_refusing_allocator_gives_enomem_and_a_sentence)
{
    Haven__Search s;
    Haven__Need n;
    Haven__Request req = s_search(&s, &n);
    req.id = 64;
    uint8_t *buf;
    size_t len;
    s_pack(&req, &buf, &len);
    int asked = 0;
    ProtobufCAllocator refuse = { s_refuse_alloc, s_no_free, &asked };
    Haven__Request *out = NULL;
    uint64_t id = 0;
    char err[256] = "";
    cr_assert_eq(hv_request_decode_alloc(buf, len, &refuse, &out, &id, err, sizeof err), -ENOMEM);
    cr_assert_gt(asked, 0, "the decoder went through the allocator");
    cr_assert_null(out);
    cr_assert_eq(id, 64, "the id is kept so the refusal can be matched");
    cr_assert(strstr(err, "memory"), "the user is told why: %s", err);
    free(buf);
    /* bad bytes are still bad bytes, not a memory problem */
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    cr_assert_eq(hv_request_decode_alloc(junk, sizeof junk, &refuse, &out, &id, err, sizeof err), -EBADMSG);
    cr_assert(strstr(err, "not a valid"), "%s", err);
}

typedef struct {
    size_t live;
    int allocs;
} s_count_t;

static void *
s_count_alloc(void *data, size_t size)
{
    s_count_t *c = data;
    size_t *p = malloc(size + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = size;
    c->live += size;
    c->allocs++;
    return p + 2;
}

static void
s_count_free(void *data, void *ptr)
{
    s_count_t *c = data;
    if (!ptr)
        return;
    size_t *p = (size_t *) ptr - 2;
    c->live -= p[0];
    free(p);
}

Test(wire, decoding_through_an_allocator_uses_only_it)
{
    Haven__Search s;
    Haven__Need n;
    Haven__Request req = s_search(&s, &n);
    char *ex[] = { "E07000008", "E07000009" };
    n.exclude = ex;
    n.n_exclude = 2;
    uint8_t *buf;
    size_t len;
    s_pack(&req, &buf, &len);
    s_count_t c = { 0, 0 };
    ProtobufCAllocator counting = { s_count_alloc, s_count_free, &c };
    Haven__Request *out = NULL;
    uint64_t id;
    char err[256];
    cr_assert_eq(hv_request_decode_alloc(buf, len, &counting, &out, &id, err, sizeof err), 0, "%s", err);
    cr_assert_eq(out->search->need->n_exclude, 2);
    cr_assert_gt(c.allocs, 0);
    haven__request__free_unpacked(out, &counting);
    cr_assert_eq(c.live, 0, "every byte allocated is given back to the same allocator");
    /* an invalid request is freed through it too */
    n.exclude[0] = "Cambridge";
    free(buf);
    s_pack(&req, &buf, &len);
    out = NULL;
    cr_assert_eq(hv_request_decode_alloc(buf, len, &counting, &out, &id, err, sizeof err), -EINVAL);
    cr_assert_null(out);
    cr_assert_eq(c.live, 0);
    free(buf);
}

/* A request protobuf-c cannot decode is malformed, not "out of memory",
 * when the allocator refused nothing: a ping whose body is cut short. */
Test(wire, a_malformed_request_through_an_allocator_is_not_called_out_of_memory)
{
    /* id 7, then a ping whose 2 bytes hold a field running past them: the
     * top level reads fine (the broker's peek accepts it), the body not */
    static const uint8_t cut[] = { 0x08, 0x07, 0x52, 0x02, 0x0a, 0x05 };
    uint64_t peek_id;
    int body;
    cr_assert_eq(hv_request_peek(cut, sizeof cut, &peek_id, &body), 0);
    s_count_t c = { 0, 0 };
    ProtobufCAllocator counting = { s_count_alloc, s_count_free, &c };
    Haven__Request *out = NULL;
    uint64_t id;
    char err[256];
    cr_assert_eq(hv_request_decode_alloc(cut, sizeof cut, &counting, &out, &id, err, sizeof err), -EBADMSG,
                 "%s", err);
    cr_assert(strstr(err, "not a valid Haven request"), "%s", err);
    cr_assert_eq(c.live, 0);
}

/* An offer token for a provider and unit with long ids and a full need can
 * pass 512 characters; the generic string cap must not refuse it. */
Test(wire, a_long_offer_token_is_a_valid_hold)
{
    char token[HV_TOKEN_MAX + 1], err[256];
    memset(token, 'A', 600);
    token[600] = '\0';
    Haven__HoldCreate c = HAVEN__HOLD_CREATE__INIT;
    c.offer = token;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 1;
    req.body_case = HAVEN__REQUEST__BODY_HOLD_CREATE;
    req.hold_create = &c;
    cr_assert_eq(hv_request_validate(&req, err, sizeof err), 0, "%s", err);
    memset(token, 'A', HV_TOKEN_MAX);
    token[HV_TOKEN_MAX] = '\0';
    cr_assert_eq(hv_request_validate(&req, err, sizeof err), 0, "%s", err);
}
