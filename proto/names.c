/* SPDX-License-Identifier: MIT */
/* Haven vocabulary: the words people type and read for the wire enums. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"

static int
s_find(const char *const *words, int n, const char *s)
{
    if (!s)
        return -EINVAL;
    for (int i = 1; i < n; i++)
        if (words[i] && strcmp(words[i], s) == 0)
            return i;
    return -EINVAL;
}

#define COUNT(a) ((int) (sizeof(a) / sizeof((a)[0])))
#define NAMED(fn, words) \
    const char *fn##_name(int v) { return v >= 0 && v < COUNT(words) && words[v] ? words[v] : "?"; } \
    int fn##_parse(const char *s) { return s_find(words, COUNT(words), s); }

static const char *const s_roles[] = { "none", "agent", "idva", "oncall", "admin" };
static const char *const s_kinds[] = { "none", "refuge", "dispersed", "hostel", "emergency" };
static const char *const s_unit_statuses[] = { "none", "available", "occupied", "out-of-service", "held" };
static const char *const s_genders_set[] = { "none", "women", "men", "any" };
static const char *const s_gender[] = { "none", "woman", "man", "nonbinary" };
static const char *const s_specialists[] = { "none", "lgbt", "bame" };
static const char *const s_statuses[] = {
    "ok", "bad request", "forbidden", "not found", "conflict", "expired",
    "limit reached", "internal error"
};

static const char *const s_hold_states[] = { "none", "pending", "accepted", "declined", "expired", "cancelled",
                                              "withdrawn" };
static const char *const s_decline_reasons[] = {
    "none", "capacity", "boys-age", "nrpf", "complex-needs", "risk", "location", "pets", "access", "other"
};

NAMED(hv_decline_reason, s_decline_reasons)
NAMED(hv_role, s_roles)
NAMED(hv_kind, s_kinds)
NAMED(hv_unit_status, s_unit_statuses)
NAMED(hv_genders, s_genders_set)
NAMED(hv_gender, s_gender)
NAMED(hv_specialist, s_specialists)

const char *
hv_hold_state_name(int v)
{
    return v >= 0 && v < COUNT(s_hold_states) ? s_hold_states[v] : "?";
}

const char *
hv_status_name(int v)
{
    return v >= 0 && v < COUNT(s_statuses) ? s_statuses[v] : "?";
}

/* Bit vocabularies: index i names bit (1 << i). */
static const char *const s_pets[] = { "dog", "cat", "small" };
static const char *const s_complex[] = { "mental-health", "substance-use" };
static const char *const s_features[] = {
    "self-contained", "step-free", "wheelchair", "accessible-bathroom",
    "ground-floor", "sensory", "personal-care", "carer-room"
};

static int
s_bit_parse(const char *const *words, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(words[i], s) == 0)
            return 1 << i;
    return -EINVAL;
}

static const char *
s_bit_name(const char *const *words, int n, uint32_t bit)
{
    for (int i = 0; i < n; i++)
        if (bit == (1u << i))
            return words[i];
    return "?";
}

int hv_pet_parse(const char *s) { return s_bit_parse(s_pets, COUNT(s_pets), s); }
int hv_complex_parse(const char *s) { return s_bit_parse(s_complex, COUNT(s_complex), s); }
int hv_feature_parse(const char *s) { return s_bit_parse(s_features, COUNT(s_features), s); }
const char *hv_pet_name(uint32_t b) { return s_bit_name(s_pets, COUNT(s_pets), b); }
const char *hv_complex_name(uint32_t b) { return s_bit_name(s_complex, COUNT(s_complex), b); }
const char *hv_feature_name(uint32_t b) { return s_bit_name(s_features, COUNT(s_features), b); }

int
hv_bits_parse(const char *list, int (*parse)(const char *), uint32_t *bits_out,
              char *bad, size_t badlen)
{
    uint32_t bits = 0;
    char word[64];
    const char *p = list;

    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        if (n >= sizeof(word)) {
            if (bad)
                snprintf(bad, badlen, "%.*s", (int) n, p);
            return -EINVAL;
        }
        memcpy(word, p, n);
        word[n] = '\0';
        p += n;
        if (strcmp(word, "none") == 0)
            continue;
        int bit = parse(word);
        if (bit < 0) {
            if (bad)
                snprintf(bad, badlen, "%s", word);
            return -EINVAL;
        }
        bits |= (uint32_t) bit;
    }
    *bits_out = bits;
    return 0;
}

void
hv_bits_format(uint32_t bits, const char *(*name)(uint32_t), char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < 32; i++) {
        if (!(bits & (1u << i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", name(1u << i));
        if (n < 0 || (size_t) n >= len - used)
            break;
        used += (size_t) n;
    }
    if (!used)
        snprintf(buf, len, "none");
}

int
hv_duration_parse(const char *s, int64_t *seconds_out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno)
        return -EINVAL;
    int64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return -EINVAL;
        }
        if (end[1])
            return -EINVAL;
    }
    if (v > INT64_MAX / mul / 1000)
        return -EINVAL;
    *seconds_out = v * mul;
    return 0;
}

void
hv_need_format(const Haven__Need *n, char *buf, size_t len)
{
    size_t used = 0;
#define PUT(...) do { if (used < len) { int w = snprintf(buf + used, len - used, __VA_ARGS__); \
                          if (w > 0) used += (size_t) w; } } while (0)
    buf[0] = '\0';
    if (!n) {
        PUT("no need recorded");
        return;
    }
    PUT("%s", n->has_gender ? hv_gender_name(n->gender) : "adult");
    if (n->has_trans && n->trans)
        PUT(" (trans)");
    if (n->has_age)
        PUT(" %u", n->age);
    if (n->has_adults && n->adults > 1)
        PUT(", %u adults", n->adults);
    if (n->n_children) {
        PUT(", children");
        for (size_t i = 0; i < n->n_children; i++)
            PUT(" %u%s", n->children[i]->age, n->children[i]->sex);
    }
    char bits[160];
    if (n->has_pets && n->pets) {
        hv_bits_format(n->pets, hv_pet_name, bits, sizeof bits);
        PUT(", pets %s", bits);
    }
    if (n->has_access && n->access) {
        hv_bits_format(n->access, hv_feature_name, bits, sizeof bits);
        PUT(", needs %s", bits);
    }
    if (n->has_nrpf && n->nrpf)
        PUT(", NRPF");
    if (n->has_complex_needs && n->complex_needs) {
        hv_bits_format(n->complex_needs, hv_complex_name, bits, sizeof bits);
        PUT(", support for %s", bits);
    }
    for (size_t i = 0; i < n->n_languages; i++)
        PUT("%s%s", i ? "," : ", speaks ", n->languages[i]);
#undef PUT
}

static const char *const s_rules[] = {
    [HAVEN__RULE__RULE_NONE] = "none",
    [HAVEN__RULE__RULE_STALE] = "stale",
    [HAVEN__RULE__RULE_AVAILABLE_FROM] = "available_from",
    [HAVEN__RULE__RULE_GENDER] = "gender",
    [HAVEN__RULE__RULE_ADULT_AGE] = "adult_age",
    [HAVEN__RULE__RULE_MAX_CHILDREN] = "max_children",
    [HAVEN__RULE__RULE_MAX_BOY_AGE] = "max_boy_age",
    [HAVEN__RULE__RULE_MAX_OCCUPANTS] = "max_occupants",
    [HAVEN__RULE__RULE_PETS] = "pets",
    [HAVEN__RULE__RULE_WHEELCHAIR] = "wheelchair",
    [HAVEN__RULE__RULE_STEP_FREE] = "step_free",
    [HAVEN__RULE__RULE_GROUND_FLOOR] = "ground_floor",
    [HAVEN__RULE__RULE_ACCESSIBLE_BATHROOM] = "accessible_bathroom",
    [HAVEN__RULE__RULE_SENSORY] = "sensory",
    [HAVEN__RULE__RULE_PERSONAL_CARE] = "personal_care",
    [HAVEN__RULE__RULE_CARER_ROOM] = "carer_room",
    [HAVEN__RULE__RULE_NRPF] = "nrpf",
    [HAVEN__RULE__RULE_COMPLEX_NEEDS] = "complex_needs",
    [HAVEN__RULE__RULE_SELF_CONTAINED] = "self_contained",
    [HAVEN__RULE__RULE_KIND] = "kind",
    [HAVEN__RULE__RULE_EXCLUDED_DISTRICT] = "excluded_district",
    [HAVEN__RULE__RULE_WITHIN] = "within",
};

const char *
hv_rule_name(int rule)
{
    return rule > 0 && (size_t) rule < sizeof s_rules / sizeof s_rules[0] ? s_rules[rule] : "?";
}

int
hv_rule_parse(const char *name)
{
    for (size_t i = 1; name && i < sizeof s_rules / sizeof s_rules[0]; i++)
        if (strcmp(name, s_rules[i]) == 0)
            return (int) i;
    return HAVEN__RULE__RULE_NONE;
}
