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
#include "keys.h"

struct hv_keys {
    char curve_public[41];
    char curve_secret[41];
    uint8_t seal_public[32];
    uint8_t seal_secret[32];
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
    crypto_box_keypair(spub, ssec);
    hv_z85_encode32(spub, spub_z);
    hv_z85_encode32(ssec, ssec_z);

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
             "[haven-public-key]\ncurve = %s\nseal = %s\n",
             cpub, spub_z);
    if ((rc = s_write_file(pubfile, 0644, text)) < 0)
        unlink(keyfile);
out:
    sodium_memzero(csec, sizeof csec);
    sodium_memzero(ssec_z, sizeof ssec_z);
    sodium_free(ssec);
    sodium_free(text);
    return rc;
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
    struct stat st;
    hv_keys_t *k = NULL;
    int rc;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -EIO;
    }
    if (stat(path, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return rc;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "key file %s can be read by others; run: chmod 600 %s", path, path);
        return -EPERM;
    }
    k = sodium_malloc(sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memset(k, 0, sizeof *k);
    rc = ini_parse(path, s_secret_handler, k);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read key file %s", path);
        hv_keys_destroy(&k);
        return -EIO;
    }
    if (rc > 0 || (k->seen & F_BAD) || (k->seen & 15) != 15) {
        snprintf(err, errlen, "%s is not a Haven secret key file (make one with keygen)", path);
        hv_keys_destroy(&k);
        return -EINVAL;
    }
    /* The public halves must belong to the secret halves, or a typo would
     * give an identity that authenticates as one key and seals to another. */
    uint8_t csec[32], cpub[32], derived[32];
    hv_z85_decode32(k->curve_secret, csec);
    hv_z85_decode32(k->curve_public, cpub);
    crypto_scalarmult_base(derived, csec);
    int ok = sodium_memcmp(derived, cpub, 32) == 0;
    crypto_scalarmult_base(derived, k->seal_secret);
    ok = ok && sodium_memcmp(derived, k->seal_public, 32) == 0;
    sodium_memzero(csec, sizeof csec);
    if (!ok) {
        snprintf(err, errlen, "%s: public and secret keys do not belong together", path);
        hv_keys_destroy(&k);
        return -EINVAL;
    }
    *keys_out = k;
    return 0;
}

static int
s_public_handler(void *user, const char *section, const char *name, const char *value)
{
    hv_pubkey_t *p = user;
    if (strcmp(section, "haven-public-key") != 0)
        return 0;
    if (strcmp(name, "curve") == 0) {
        if (hv_z85_decode32(value, p->curve_raw) < 0)
            return 0;
        memcpy(p->curve, value, 41);
    } else if (strcmp(name, "seal") == 0) {
        if (hv_z85_decode32(value, p->seal) < 0)
            return 0;
    } else {
        return 0;
    }
    return 1;
}

int
hv_pubkey_load(const char *path, hv_pubkey_t *out, char *err, size_t errlen)
{
    hv_pubkey_t p;
    uint8_t zero[32] = { 0 };
    memset(&p, 0, sizeof p);
    int rc = ini_parse(path, s_public_handler, &p);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read public key file %s: %s", path,
                 rc == -1 ? strerror(errno) : "error");
        return -ENOENT;
    }
    if (rc > 0 || !p.curve[0] || memcmp(p.seal, zero, 32) == 0) {
        snprintf(err, errlen, "%s is not a Haven public key file (line %d)", path, rc);
        return -EINVAL;
    }
    *out = p;
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
