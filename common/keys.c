/* SPDX-License-Identifier: MIT */
/* Haven key files. Secret keys live in sodium_malloc'd memory (guard pages,
 * mlock'd, wiped on free) and never in logs. */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>
#include "inifile.h"
#include "keys.h"

struct hv_keys {
    char curve_public[41];
    char curve_secret[41];
    uint8_t seal_public[32];
    uint8_t seal_secret[32];
    uint8_t sign_public[32];     /* Ed25519, derived from seal_secret */
    uint8_t sign_secret[64];
    int seen;                    /* bit per field found in the file */
};

int
hv_z85_decode32(const char *z85, uint8_t out[32])
{
    if (!z85 || strlen(z85) != 40 || !zmq_z85_decode(out, z85))
        return -EINVAL;
    return 0;
}

void
hv_z85_encode32(const uint8_t in[32], char out[41])
{
    zmq_z85_encode(out, in, 32);
}

bool
hv_key_usable(const uint8_t pk[32])
{
    /* Clamping makes any scalar a multiple of 8, so it sends every point of
     * order 1, 2, 4 or 8 to zero whatever its encoding (top bit set, p,
     * p + 1): a test that no list of encodings can miss. libsodium says -1
     * for its blocklist and for a zero result; we look at the result too,
     * in case an implementation it picks at run time does not. */
    static const uint8_t scalar[32] = { [0] = 8, [31] = 0x40 };
    uint8_t q[32];
    if (sodium_init() < 0)
        return false;
    bool ok = crypto_scalarmult(q, scalar, pk) == 0 && !sodium_is_zero(q, sizeof q);
    sodium_memzero(q, sizeof q);
    return ok;
}

/* The signing key pair is derived from the sealing secret, so every key
 * file, old or new, has one and nothing more has to be kept secret. */
static int
s_derive_sign(const uint8_t seal_secret[32], uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    int rc = crypto_kdf_derive_from_key(seed, sizeof seed, 1, "hvsign01", seal_secret) == 0
             && crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : -EIO;
    sodium_memzero(seed, sizeof seed);
    return rc;
}

static int
s_write_file(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int rc = (n == (ssize_t) len) ? 0 : -EIO;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int
hv_keys_generate(const char *path)
{
    char keyfile[4096], pubfile[4096];
    char cpub[41], csec[41], spub_z[41], ssec_z[41];
    uint8_t spub[32];
    int rc;

    if (sodium_init() < 0)
        return -EIO;
    if (snprintf(keyfile, sizeof keyfile, "%s.key", path) >= (int) sizeof keyfile
        || snprintf(pubfile, sizeof pubfile, "%s.pub", path) >= (int) sizeof pubfile)
        return -ENAMETOOLONG;
    if (access(keyfile, F_OK) == 0 || access(pubfile, F_OK) == 0)
        return -EEXIST;

    uint8_t *ssec = sodium_malloc(32);
    char *text = sodium_malloc(512);
    if (!ssec || !text) {
        rc = -ENOMEM;
        goto out;
    }
    if (zmq_curve_keypair(cpub, csec) != 0) {
        rc = -ENOTSUP;           /* libzmq built without CURVE */
        goto out;
    }
    if (crypto_box_keypair(spub, ssec) != 0) {
        rc = -EIO;
        goto out;
    }
    hv_z85_encode32(spub, spub_z);
    hv_z85_encode32(ssec, ssec_z);
    uint8_t gpub[32], gsec[64];
    char gpub_z[41];
    if ((rc = s_derive_sign(ssec, gpub, gsec)) < 0)
        goto out;
    sodium_memzero(gsec, sizeof gsec);
    hv_z85_encode32(gpub, gpub_z);

    snprintf(text, 512,
             "# Haven secret key: keep this file private (mode 0600)\n"
             "[haven-secret-key]\n"
             "curve-public = %s\ncurve-secret = %s\n"
             "seal-public = %s\nseal-secret = %s\n",
             cpub, csec, spub_z, ssec_z);
    if ((rc = s_write_file(keyfile, 0600, text)) < 0)
        goto out;
    snprintf(text, 512,
             "# Haven public key: give this file to the broker's administrator\n"
             "[haven-public-key]\ncurve = %s\nseal = %s\nsign = %s\n",
             cpub, spub_z, gpub_z);
    if ((rc = s_write_file(pubfile, 0644, text)) < 0)
        unlink(keyfile);
out:
    sodium_memzero(csec, sizeof csec);
    sodium_memzero(ssec_z, sizeof ssec_z);
    sodium_free(ssec);
    sodium_free(text);
    return rc;
}

/* A key file (secret or public) whose public halves hv_key_usable refuses:
 * one sentence in err and -EINVAL; 0 if both can be used. */
static int
s_check_usable(const char *path, const uint8_t curve[32], const uint8_t seal[32], char *err,
               size_t errlen)
{
    if (!hv_key_usable(curve)) {
        snprintf(err, errlen, "%s holds a CURVE key of small order: it is unusable (no connection "
                 "made with it would be secret); make a new key with keygen", path);
        return -EINVAL;
    }
    if (!hv_key_usable(seal)) {
        snprintf(err, errlen, "%s holds a sealing key of small order: it is unusable (anything "
                 "sealed to it could be read by anyone); make a new key with keygen", path);
        return -EINVAL;
    }
    return 0;
}

enum { F_CPUB = 1, F_CSEC = 2, F_SPUB = 4, F_SSEC = 8, F_SECTION = 16, F_BAD = 32 };

static int
s_secret_handler(void *user, const char *section, const char *name, const char *value)
{
    hv_keys_t *k = user;
    uint8_t raw[32];
    if (strcmp(section, "haven-secret-key") != 0) {
        k->seen |= F_BAD;
        return 0;
    }
    k->seen |= F_SECTION;
    if (hv_z85_decode32(value, raw) < 0) {
        k->seen |= F_BAD;
        return 0;
    }
    if (strcmp(name, "curve-public") == 0) {
        memcpy(k->curve_public, value, 41);
        k->seen |= F_CPUB;
    } else if (strcmp(name, "curve-secret") == 0) {
        memcpy(k->curve_secret, value, 41);
        k->seen |= F_CSEC;
    } else if (strcmp(name, "seal-public") == 0) {
        memcpy(k->seal_public, raw, 32);
        k->seen |= F_SPUB;
    } else if (strcmp(name, "seal-secret") == 0) {
        memcpy(k->seal_secret, raw, 32);
        k->seen |= F_SSEC;
    } else {
        k->seen |= F_BAD;
    }
    sodium_memzero(raw, sizeof raw);
    return k->seen & F_BAD ? 0 : 1;
}

int
hv_keys_load(const char *path, hv_keys_t **keys_out, char *err, size_t errlen)
{
    hv_keys_t *k = NULL;
    uint8_t csec[32], cpub[32], derived[32];
    mode_t mode = 0;
    int lineno, rc;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -EIO;
    }
    k = sodium_malloc(sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memset(k, 0, sizeof *k);
    /* Read without stdio, so the secret halves are in no FILE buffer that
     * outlives this call. */
    rc = hv_ini_parse_private(path, HV_KEYFILE_MAX, s_secret_handler, k, &lineno, &mode);
    if (rc == -EFBIG) {
        snprintf(err, errlen, "%s is larger than %d bytes, so it is not a Haven secret key file "
                 "(make one with keygen)", path, HV_KEYFILE_MAX);
        goto fail;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(-rc));
        goto fail;
    }
    if (mode & 077) {
        snprintf(err, errlen, "key file %s can be read by others; run: chmod 600 %s", path, path);
        rc = -EPERM;
        goto fail;
    }
    if (rc > 0 || (k->seen & F_BAD) || (k->seen & 15) != 15) {
        snprintf(err, errlen, "%s is not a Haven secret key file (make one with keygen)", path);
        rc = -EINVAL;
        goto fail;
    }
    /* The handler decoded both already; a failure here is a bug. */
    if (hv_z85_decode32(k->curve_public, cpub) < 0 || hv_z85_decode32(k->curve_secret, csec) < 0) {
        snprintf(err, errlen, "%s is not a Haven secret key file (make one with keygen)", path);
        rc = -EINVAL;
        goto fail;
    }
    /* Before the halves are compared, so the sentence names the real
     * fault: keygen never makes such a key, so someone edited this one. */
    if ((rc = s_check_usable(path, cpub, k->seal_public, err, errlen)) < 0)
        goto fail;
    /* The public halves must belong to the secret halves, or a typo would
     * give an identity that authenticates as one key and seals to another. */
    int ok = crypto_scalarmult_base(derived, csec) == 0 && sodium_memcmp(derived, cpub, 32) == 0;
    ok = ok && crypto_scalarmult_base(derived, k->seal_secret) == 0
         && sodium_memcmp(derived, k->seal_public, 32) == 0;
    if (!ok) {
        snprintf(err, errlen, "%s: public and secret keys do not belong together", path);
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = s_derive_sign(k->seal_secret, k->sign_public, k->sign_secret)) < 0) {
        snprintf(err, errlen, "%s: cannot derive the signing key", path);
        goto fail;
    }
    sodium_memzero(csec, sizeof csec);
    *keys_out = k;
    return 0;
fail:
    sodium_memzero(csec, sizeof csec);
    hv_keys_destroy(&k);
    return rc;
}

typedef struct {
    hv_pubkey_t key;
    bool curve, seal;            /* found in the file */
} s_public_t;

static int
s_public_handler(void *user, const char *section, const char *name, const char *value)
{
    s_public_t *p = user;
    if (strcmp(section, "haven-public-key") != 0)
        return 0;
    if (strcmp(name, "curve") == 0) {
        if (hv_z85_decode32(value, p->key.curve_raw) < 0)
            return 0;
        memcpy(p->key.curve, value, 41);
        p->curve = true;
    } else if (strcmp(name, "seal") == 0) {
        if (hv_z85_decode32(value, p->key.seal) < 0)
            return 0;
        p->seal = true;
    } else if (strcmp(name, "sign") == 0) {
        if (hv_z85_decode32(value, p->key.sign) < 0)
            return 0;
        p->key.has_sign = true;
    } else {
        return 0;
    }
    return 1;
}

int
hv_pubkey_load(const char *path, hv_pubkey_t *out, char *err, size_t errlen)
{
    s_public_t p;
    memset(&p, 0, sizeof p);
    int rc = ini_parse(path, s_public_handler, &p);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read public key file %s: %s", path,
                 rc == -1 ? strerror(errno) : "error");
        return -ENOENT;
    }
    if (rc > 0 || !p.curve || !p.seal) {
        snprintf(err, errlen, "%s is not a Haven public key file (line %d)", path, rc);
        return -EINVAL;
    }
    if ((rc = s_check_usable(path, p.key.curve_raw, p.key.seal, err, errlen)) < 0)
        return rc;
    *out = p.key;
    return 0;
}

void
hv_keys_destroy(hv_keys_t **self_p)
{
    if (self_p && *self_p) {
        sodium_free(*self_p);    /* sodium_free wipes before freeing */
        *self_p = NULL;
    }
}

const char *hv_keys_curve_public(const hv_keys_t *k) { return k->curve_public; }
const char *hv_keys_curve_secret(const hv_keys_t *k) { return k->curve_secret; }
const uint8_t *hv_keys_seal_public(const hv_keys_t *k) { return k->seal_public; }
const uint8_t *hv_keys_seal_secret(const hv_keys_t *k) { return k->seal_secret; }
const uint8_t *hv_keys_sign_public(const hv_keys_t *k) { return k->sign_public; }
const uint8_t *hv_keys_sign_secret(const hv_keys_t *k) { return k->sign_secret; }

int
hv_keys_write_public(const hv_keys_t *k, const char *path)
{
    char seal[41], sign[41], text[512];
    hv_z85_encode32(k->seal_public, seal);
    hv_z85_encode32(k->sign_public, sign);
    snprintf(text, sizeof text,
             "# Haven public key: give this file to the broker's administrator\n"
             "[haven-public-key]\ncurve = %s\nseal = %s\nsign = %s\n",
             k->curve_public, seal, sign);
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int) sizeof tmp)
        return -ENAMETOOLONG;
    unlink(tmp);
    int rc = s_write_file(tmp, 0644, text);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}
