/* SPDX-License-Identifier: MIT */
/* Haven key files: a CURVE key pair (transport), a sealing key pair
 * (crypto_box_seal, for referral notes and addresses) and a signing key
 * pair (Ed25519, for certificates and signed boxes) in one identity. The
 * signing pair is derived from the sealing secret (crypto_kdf), so a key
 * file written before signing existed has one too. */
#ifndef HV_KEYS_H
#define HV_KEYS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef struct hv_keys hv_keys_t;

/* A public identity: what PATH.pub holds. */
typedef struct {
    char curve[41];              /* Z85, 40 characters */
    uint8_t curve_raw[32];
    uint8_t seal[32];
    uint8_t sign[32];            /* Ed25519; PATH.pub files before 0.2 lack it */
    bool has_sign;
} hv_pubkey_t;

/* Generate a new identity and write PATH.key (mode 0600) and PATH.pub.
 * Refuses to overwrite an existing file (-EEXIST). Returns 0 or -errno. */
int hv_keys_generate(const char *path);

/* The most a secret key file may hold: keygen writes about 250 bytes. */
#define HV_KEYFILE_MAX 4096

/* Whether an X25519 public key (CURVE or sealing) can be used: false for a
 * point of small order, in any encoding (top bit set, p, p + 1, ...). A
 * box sealed to such a key has no secret in it (libsodium refuses to make
 * one), and a CURVE handshake with it has none either. False also if
 * libsodium cannot be initialised. */
bool hv_key_usable(const uint8_t pk[32]);

/* Load a secret key file into locked, guarded memory. The file is read
 * without stdio and its text wiped. Refuses a file that group or others
 * can read (-EPERM), one larger than HV_KEYFILE_MAX (-EFBIG), and one whose
 * public halves are unusable (-EINVAL, see hv_key_usable). Returns 0 or
 * -errno (-EINVAL: not a Haven key file); err holds one sentence. Caller
 * owns *keys_out. */
int hv_keys_load(const char *path, hv_keys_t **keys_out, char *err, size_t errlen);

/* Load a public key file (PATH.pub). Refuses a CURVE or sealing key that is
 * not usable (-EINVAL, err says "unusable"; see hv_key_usable). Returns 0
 * or -errno (-ENOENT: cannot be read, -EINVAL: not a Haven public key file)
 * with err set. */
int hv_pubkey_load(const char *path, hv_pubkey_t *out, char *err, size_t errlen);

/* Wipe and free; accepts NULL. */
void hv_keys_destroy(hv_keys_t **self_p);

const char *hv_keys_curve_public(const hv_keys_t *self);  /* Z85 */
const char *hv_keys_curve_secret(const hv_keys_t *self);  /* Z85 */
const uint8_t *hv_keys_seal_public(const hv_keys_t *self);
const uint8_t *hv_keys_seal_secret(const hv_keys_t *self);
const uint8_t *hv_keys_sign_public(const hv_keys_t *self);   /* 32 bytes */
const uint8_t *hv_keys_sign_secret(const hv_keys_t *self);   /* 64 bytes */

/* (Re)write the public key file for these keys at path (e.g. an old
 * PATH.pub without a signing key). Returns 0 or -errno. */
int hv_keys_write_public(const hv_keys_t *self, const char *path);

/* Z85 helpers for 32-byte keys. */
int hv_z85_decode32(const char *z85, uint8_t out[32]);
void hv_z85_encode32(const uint8_t in[32], char out[41]);

#endif
