/* SPDX-License-Identifier: MIT */
/* The need options (see need.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../proto/names.h"
#include "../proto/wire.h"
#include "need.h"

enum {
    O_GENDER = HV_NEED_OPT_BASE, O_TRANS, O_AGE, O_ADULTS, O_CHILD, O_PET, O_WHEELCHAIR,
    O_STEP_FREE, O_GROUND_FLOOR, O_BATHROOM, O_SENSORY, O_PERSONAL_CARE, O_CARER, O_NRPF,
    O_COMPLEX, O_SELF_CONTAINED, O_KIND, O_EXCLUDE, O_HOME, O_OUT_OF_AREA, O_NEAR, O_WITHIN,
    O_PREFER, O_LANGUAGE, O_SPECIALIST, O_INCLUDE_STALE, O_LIMIT, O_FROM,
};

static const struct option s_options[] = {
    { "gender", required_argument, NULL, O_GENDER },
    { "trans", no_argument, NULL, O_TRANS },
    { "age", required_argument, NULL, O_AGE },
    { "adults", required_argument, NULL, O_ADULTS },
    { "child", required_argument, NULL, O_CHILD },
    { "pet", required_argument, NULL, O_PET },
    { "wheelchair", no_argument, NULL, O_WHEELCHAIR },
    { "step-free", no_argument, NULL, O_STEP_FREE },
    { "ground-floor", no_argument, NULL, O_GROUND_FLOOR },
    { "accessible-bathroom", no_argument, NULL, O_BATHROOM },
    { "sensory", no_argument, NULL, O_SENSORY },
    { "personal-care", no_argument, NULL, O_PERSONAL_CARE },
    { "carer", no_argument, NULL, O_CARER },
    { "nrpf", no_argument, NULL, O_NRPF },
    { "complex", required_argument, NULL, O_COMPLEX },
    { "self-contained", no_argument, NULL, O_SELF_CONTAINED },
    { "kind", required_argument, NULL, O_KIND },
    { "exclude", required_argument, NULL, O_EXCLUDE },
    { "home", required_argument, NULL, O_HOME },
    { "out-of-area", no_argument, NULL, O_OUT_OF_AREA },
    { "near", required_argument, NULL, O_NEAR },
    { "within", required_argument, NULL, O_WITHIN },
    { "prefer", required_argument, NULL, O_PREFER },
    { "language", required_argument, NULL, O_LANGUAGE },
    { "specialist", required_argument, NULL, O_SPECIALIST },
    { "include-stale", no_argument, NULL, O_INCLUDE_STALE },
    { "limit", required_argument, NULL, O_LIMIT },
    { "from", required_argument, NULL, O_FROM },
    { NULL, 0, NULL, 0 },
};

const char hv_need_help[] =
    "need options (hard rules unless marked):\n"
    "  --gender woman|man|nonbinary   --trans         --age N        --adults N (default 1)\n"
    "  --child AGE:SEX (repeat; SEX m, f or x, e.g. --child 14:m)\n"
    "  --pet dog|cat|small (repeat)   --nrpf          --complex mental-health|substance-use (repeat)\n"
    "  --wheelchair --step-free --ground-floor --accessible-bathroom --sensory --personal-care --carer\n"
    "  --self-contained               --kind refuge|dispersed|hostel|emergency (repeat)\n"
    "  --exclude CODE (repeat)        --home CODE     --out-of-area (exclude the home district)\n"
    "  --near CODE --within KM        --from YYYY-MM-DD (available by then)\n"
    "  --include-stale                --limit N (default 10)\n"
    "  ranking only: --prefer CODE (repeat), --language CODE (repeat), --specialist lgbt|bame\n";

struct hv_need {
    Haven__Need need;
    Haven__Child *children;
    Haven__Child **child_ptrs;
    Haven__Kind *kinds;
    unsigned limit;
};

const struct option *hv_need_options(void) { return s_options; }

hv_need_t *
hv_need_new(void)
{
    hv_need_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    haven__need__init(&self->need);
    self->children = calloc(HV_CHILDREN_MAX, sizeof *self->children);
    self->child_ptrs = calloc(HV_CHILDREN_MAX, sizeof *self->child_ptrs);
    self->kinds = calloc(HV_LIST_MAX, sizeof *self->kinds);
    self->need.children = self->child_ptrs;
    self->need.kinds = self->kinds;
    self->limit = 10;
    if (!self->children || !self->child_ptrs || !self->kinds)
        hv_need_destroy(&self);
    return self;
}

void
hv_need_destroy(hv_need_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hv_need_t *self = *self_p;
    free(self->children);
    free(self->child_ptrs);
    free(self->kinds);
    free(self->need.exclude);
    free(self->need.prefer);
    free(self->need.languages);
    free(self);
    *self_p = NULL;
}

static int
s_number(const char *arg, long lo, long hi, uint32_t *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (uint32_t) v;
    return 0;
}

/* Append a borrowed string (argv outlives the need) to a list. */
static int
s_push(char ***list, size_t *n, const char *s)
{
    if (*n >= HV_LIST_MAX)
        return -E2BIG;
    char **l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return -ENOMEM;
    l[(*n)++] = (char *) s;
    *list = l;
    return 0;
}

static int
s_code(char ***list, size_t *n, const char *arg, const char *opt, char *err, size_t errlen)
{
    if (!hv_valid_district(arg)) {
        snprintf(err, errlen, "%s '%s' is not a district code (e.g. E07000008)", opt, arg);
        return -EINVAL;
    }
    if (s_push(list, n, arg) < 0) {
        snprintf(err, errlen, "too many %s options (at most %d)", opt, HV_LIST_MAX);
        return -EINVAL;
    }
    return 0;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -EINVAL; } while (0)

int
hv_need_option(hv_need_t *self, int opt, const char *arg, char *err, size_t errlen)
{
    Haven__Need *n = &self->need;
    int v;
    switch (opt) {
    case O_GENDER:
        if ((v = hv_gender_parse(arg)) < 0)
            FAIL("--gender must be woman, man or nonbinary, not '%s'", arg);
        n->has_gender = 1;
        n->gender = v;
        return 0;
    case O_TRANS: n->has_trans = n->trans = 1; return 0;
    case O_AGE:
        if (s_number(arg, 16, 120, &n->age) < 0)
            FAIL("--age must be a whole number from 16 to 120");
        n->has_age = 1;
        return 0;
    case O_ADULTS:
        if (s_number(arg, 1, 10, &n->adults) < 0)
            FAIL("--adults must be a whole number from 1 to 10");
        n->has_adults = 1;
        return 0;
    case O_CHILD: {
        char sex[4];
        unsigned age;
        int used = 0;
        if (sscanf(arg, "%u:%1[mfx]%n", &age, sex, &used) != 2 || arg[used] || age > 17)
            FAIL("--child must be AGE:SEX with AGE 0-17 and SEX m, f or x (e.g. 14:m), not '%s'", arg);
        if (n->n_children >= HV_CHILDREN_MAX)
            FAIL("at most %d children", HV_CHILDREN_MAX);
        Haven__Child *c = &self->children[n->n_children];
        haven__child__init(c);
        c->age = age;
        c->sex = sex[0] == 'm' ? "m" : sex[0] == 'f' ? "f" : "x";
        self->child_ptrs[n->n_children++] = c;
        return 0;
    }
    case O_PET:
        if ((v = hv_pet_parse(arg)) < 0)
            FAIL("--pet must be dog, cat or small, not '%s'", arg);
        n->has_pets = 1;
        n->pets |= (uint32_t) v;
        return 0;
    case O_WHEELCHAIR: case O_STEP_FREE: case O_GROUND_FLOOR: case O_BATHROOM:
    case O_SENSORY: case O_PERSONAL_CARE: case O_CARER: case O_SELF_CONTAINED: {
        static const struct { int opt; uint32_t bit; } map[] = {
            { O_WHEELCHAIR, HAVEN__FEATURE__FEATURE_WHEELCHAIR },
            { O_STEP_FREE, HAVEN__FEATURE__FEATURE_STEP_FREE },
            { O_GROUND_FLOOR, HAVEN__FEATURE__FEATURE_GROUND_FLOOR },
            { O_BATHROOM, HAVEN__FEATURE__FEATURE_ACCESSIBLE_BATHROOM },
            { O_SENSORY, HAVEN__FEATURE__FEATURE_SENSORY },
            { O_PERSONAL_CARE, HAVEN__FEATURE__FEATURE_PERSONAL_CARE },
            { O_CARER, HAVEN__FEATURE__FEATURE_CARER_ROOM },
            { O_SELF_CONTAINED, HAVEN__FEATURE__FEATURE_SELF_CONTAINED },
        };
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (map[i].opt == opt)
                n->access |= map[i].bit;
        n->has_access = 1;
        return 0;
    }
    case O_NRPF: n->has_nrpf = n->nrpf = 1; return 0;
    case O_COMPLEX:
        if ((v = hv_complex_parse(arg)) < 0)
            FAIL("--complex must be mental-health or substance-use, not '%s'", arg);
        n->has_complex_needs = 1;
        n->complex_needs |= (uint32_t) v;
        return 0;
    case O_KIND:
        if ((v = hv_kind_parse(arg)) < 0 || v == 0)
            FAIL("--kind must be refuge, dispersed, hostel or emergency, not '%s'", arg);
        if (n->n_kinds >= HV_LIST_MAX)
            FAIL("too many --kind options");
        self->kinds[n->n_kinds++] = v;
        return 0;
    case O_EXCLUDE: return s_code(&n->exclude, &n->n_exclude, arg, "--exclude", err, errlen);
    case O_PREFER: return s_code(&n->prefer, &n->n_prefer, arg, "--prefer", err, errlen);
    case O_HOME:
    case O_NEAR:
        if (!hv_valid_district(arg))
            FAIL("--%s '%s' is not a district code (e.g. E07000008)", opt == O_HOME ? "home" : "near", arg);
        if (opt == O_HOME)
            n->home = (char *) arg;
        else
            n->near = (char *) arg;
        return 0;
    case O_OUT_OF_AREA: n->has_out_of_area = n->out_of_area = 1; return 0;
    case O_WITHIN:
        if (s_number(arg, 1, 2000, &n->within_km) < 0)
            FAIL("--within must be a whole number of km from 1 to 2000");
        n->has_within_km = 1;
        return 0;
    case O_LANGUAGE:
        if (!hv_valid_language(arg))
            FAIL("--language '%s' is not an ISO 639-1 code (two lower-case letters, e.g. pl)", arg);
        if (s_push(&n->languages, &n->n_languages, arg) < 0)
            FAIL("too many --language options");
        return 0;
    case O_SPECIALIST:
        if ((v = hv_specialist_parse(arg)) < 0)
            FAIL("--specialist must be lgbt or bame, not '%s'", arg);
        n->has_specialist = 1;
        n->specialist = v;
        return 0;
    case O_INCLUDE_STALE: n->has_include_stale = n->include_stale = 1; return 0;
    case O_LIMIT: {
        uint32_t lim;
        if (s_number(arg, 1, 1000, &lim) < 0)
            FAIL("--limit must be a whole number from 1 to 1000");
        self->limit = lim;
        return 0;
    }
    case O_FROM: {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(arg, "%Y-%m-%d", &tm);
        if (!end || *end)
            FAIL("--from must be a date as YYYY-MM-DD, not '%s'", arg);
        n->has_from = 1;
        n->from = (int64_t) timegm(&tm);
        return 0;
    }
    }
    FAIL("unknown need option");
}

Haven__Need *hv_need_message(hv_need_t *self) { return &self->need; }
unsigned hv_need_limit(const hv_need_t *self) { return self->limit; }
