/* SPDX-License-Identifier: MIT */
/* Haven wire codec: decode and validate request/reply envelopes. */
#ifndef HV_WIRE_H
#define HV_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "haven.pb-c.h"

#define HV_ID_MAX          64    /* provider ids, unit names, principal names */
#define HV_TEXT_MAX        128   /* display names */
#define HV_STRING_MAX      512   /* any string field at all */
#define HV_LIST_MAX        64    /* exclude, prefer, languages, kinds */
#define HV_CHILDREN_MAX    16
#define HV_UNITS_WIRE_MAX  100000 /* units in one publish: the highest max_units_per_catalog */
#define HV_UNIT_WIRE_BYTES 128   /* the most bytes one valid UnitSpec takes in a Publish */
#define HV_KEY_BYTES       32
#define HV_TOKEN_MAX       640   /* an offer token's characters */
#define HV_NOTE_MAX        16384 /* a referral note's plaintext bytes */
#define HV_ADDRESS_MAX     1024  /* an address or decline message, plaintext */
#define HV_SEAL_OVERHEAD   48    /* crypto_box_SEALBYTES */
#define HV_RECIPIENTS_MAX  16    /* agents a note is sealed to */
#define HV_SIGNED_MAX      2048  /* a certificate's or revocation's packed body */
#define HV_SIGNATURE_BYTES 64    /* Ed25519 */

/* Decode a request and validate every field: unknown fields, enum values,
 * string lengths and alphabets, list counts, key sizes, bit sets.
 * Returns 0 with *req_out set (free with haven__request__free_unpacked),
 * -EBADMSG if the bytes are not a request, -EINVAL if a field is invalid.
 * In both error cases err holds one sentence; on -EINVAL *id_out holds the
 * request id so the reply can be matched. */
int hv_request_decode(const uint8_t *data, size_t len, Haven__Request **req_out,
                      uint64_t *id_out, char *err, size_t errlen);

/* The same, allocating through alloc (NULL: malloc). protobuf-c has no
 * size cap of its own; an allocator that refuses past a budget makes the
 * decode fail cleanly (-ENOMEM) instead of growing the process. Free the
 * request with haven__request__free_unpacked(req, alloc). */
int hv_request_decode_alloc(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                            Haven__Request **req_out, uint64_t *id_out, char *err, size_t errlen);

/* Read only a request's id and which operation it carries (its body case,
 * the field number of the oneof), walking the top-level fields without
 * allocating, so the broker can authorise a request and apply its size cap
 * before protobuf-c allocates anything. Returns 0, or -EBADMSG if the
 * bytes are not a protobuf message (*body_out is 0 if no body is set). */
int hv_request_peek(const uint8_t *data, size_t len, uint64_t *id_out, int *body_out);

/* Validate a decoded request (as hv_request_decode does). */
int hv_request_validate(const Haven__Request *req, char *err, size_t errlen);

/* Decode a reply; -EBADMSG if malformed (a broker bug or a stranger). */
int hv_reply_decode(const uint8_t *data, size_t len, Haven__Reply **reply_out);

/* Pack any message into a malloc'd buffer. Caller owns *buf_out. */
int hv_pack(const ProtobufCMessage *msg, uint8_t **buf_out, size_t *len_out);

/* Checks the programs share with the wire validator. */
bool hv_valid_id(const char *s);         /* [a-z0-9][a-z0-9._-]{0,63} */
bool hv_valid_text(const char *s, size_t max); /* 1..max bytes, no control chars */
bool hv_valid_district(const char *s);   /* ONS-style: letter + 8 digits */
bool hv_valid_language(const char *s);   /* ISO 639-1: two lower-case letters */
bool hv_valid_phone(const char *s);
bool hv_valid_token(const char *s);      /* base64url, 1..HV_TOKEN_MAX */

/* Unknown fields and out-of-range enum values anywhere in a message tree.
 * Returns 0 or -EINVAL with err set. */
int hv_message_check(const ProtobufCMessage *msg, char *err, size_t errlen);

#endif
