/* SPDX-License-Identifier: MIT */
/* Haven vocabulary: the words people type and read for the wire enums. */
#ifndef HV_NAMES_H
#define HV_NAMES_H

#include <stdint.h>
#include "haven.pb-c.h"

/* Each *_name returns a static string ("?" for values out of range).
 * Each *_parse returns the value, or -EINVAL for a word it does not know. */
const char *hv_role_name(int role);
int hv_role_parse(const char *s);
const char *hv_kind_name(int kind);
int hv_kind_parse(const char *s);
const char *hv_unit_status_name(int status);
/* A hard rule's name as replies and --json give it ("max_boy_age"), and
 * back (HAVEN__RULE__RULE_NONE if unknown). */
const char *hv_rule_name(int rule);
int hv_rule_parse(const char *name);
int hv_unit_status_parse(const char *s);
const char *hv_genders_name(int genders);
int hv_genders_parse(const char *s);
const char *hv_gender_name(int gender);
int hv_gender_parse(const char *s);
const char *hv_specialist_name(int specialist);
int hv_specialist_parse(const char *s);
const char *hv_status_name(int status);
const char *hv_hold_state_name(int state);
const char *hv_decline_reason_name(int reason);
int hv_decline_reason_parse(const char *s);

/* Bit sets: one word per bit. */
int hv_pet_parse(const char *s);          /* one word -> bit */
int hv_complex_parse(const char *s);
int hv_feature_parse(const char *s);
const char *hv_pet_name(uint32_t bit);
const char *hv_complex_name(uint32_t bit);
const char *hv_feature_name(uint32_t bit);

/* Parse a comma-separated list of words into bits using one of the
 * parsers above. "none" alone gives 0. Returns 0 or -EINVAL; on error the
 * offending word is copied to bad (if given). */
int hv_bits_parse(const char *list, int (*parse)(const char *),
                  uint32_t *bits_out, char *bad, size_t badlen);

/* Write the names of the bits as "a,b,c" ("none" for 0). */
void hv_bits_format(uint32_t bits, const char *(*name)(uint32_t),
                    char *buf, size_t len);

#define HV_PETS_ALL     (HAVEN__PET__PET_DOG | HAVEN__PET__PET_CAT | HAVEN__PET__PET_SMALL)
#define HV_COMPLEX_ALL  (HAVEN__COMPLEX__COMPLEX_MENTAL_HEALTH | HAVEN__COMPLEX__COMPLEX_SUBSTANCE_USE)
#define HV_FEATURES_ALL 0xffu



/* A need as people read it: "woman 34, children 14m 9f, pets dog, ..."
 * (household and needs only; a need's districts are never shown). */
void hv_need_format(const Haven__Need *need, char *buf, size_t len);

/* Durations people write: "90s", "15m", "24h", "7d" (a bare number is
 * seconds). Returns 0 or -EINVAL. */
int hv_duration_parse(const char *s, int64_t *seconds_out);
#endif
