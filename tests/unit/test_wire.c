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
