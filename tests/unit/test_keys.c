/* SPDX-License-Identifier: MIT */
/* Key files: generated, loaded, and refused when unsafe or malformed;
 * keys of small order refused wherever they enter, and never sealed to. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../common/cli.h"
#include "../../common/keys.h"

static char dir[64];
static char base[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/haven-keys-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(base, sizeof base, "%s/me", dir);
}
static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(keys, .init = setup, .fini = teardown);

Test(keys, generate_then_load)
{
    char path[160], err[256];
    hv_keys_t *k = NULL;
    hv_pubkey_t pub;
    struct stat st;
    cr_assert_eq(hv_keys_generate(base), 0);
    snprintf(path, sizeof path, "%s.key", base);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the secret key must be mode 0600");
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s.pub", base);
    cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(pub.curve, hv_keys_curve_public(k));
    cr_assert_eq(memcmp(pub.seal, hv_keys_seal_public(k), 32), 0);
    hv_keys_destroy(&k);
    cr_assert_null(k);
}

Test(keys, never_overwrites)
{
    cr_assert_eq(hv_keys_generate(base), 0);
    cr_assert_eq(hv_keys_generate(base), -EEXIST);
}

Test(keys, refuses_a_key_others_can_read)
{
    char path[160], err[256];
    hv_keys_t *k = NULL;
    cr_assert_eq(hv_keys_generate(base), 0);
    snprintf(path, sizeof path, "%s.key", base);
    chmod(path, 0644);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), -EPERM);
    cr_assert(strstr(err, "chmod 600"), "%s", err);
}

Test(keys, refuses_mismatched_halves)
{
    char path[160], other[160], err[256], text[1024];
    hv_keys_t *k = NULL;
    snprintf(other, sizeof other, "%s/other", dir);
    cr_assert_eq(hv_keys_generate(base), 0);
    cr_assert_eq(hv_keys_generate(other), 0);
    /* My secret halves with the other key's public halves. */
    snprintf(path, sizeof path, "%s.key", base);
    FILE *f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char otherpath[180], othertext[1024];
    snprintf(otherpath, sizeof otherpath, "%s.key", other);
    f = fopen(otherpath, "r");
    n = fread(othertext, 1, sizeof othertext - 1, f);
    fclose(f);
    othertext[n] = '\0';
    char *mine = strstr(text, "curve-public = ") + 15, *theirs = strstr(othertext, "curve-public = ") + 15;
    memcpy(mine, theirs, 40);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "do not belong together"), "%s", err);
}

Test(keys, refuses_a_file_that_is_not_a_key)
{
    char path[160], err[256];
    hv_keys_t *k = NULL;
    hv_pubkey_t pub;
    snprintf(path, sizeof path, "%s/junk.key", dir);
    FILE *f = fopen(path, "w");
    fputs("[haven-secret-key]\ncurve-public = short\n", f);
    fclose(f);
    chmod(path, 0600);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), -EINVAL);
    cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), -EINVAL);
    cr_assert_eq(hv_pubkey_load("/nonexistent.pub", &pub, err, sizeof err), -ENOENT);
}

Test(keys, z85_round_trip)
{
    uint8_t in[32], out[32];
    char z[41];
    for (int i = 0; i < 32; i++)
        in[i] = (uint8_t) (i * 7);
    hv_z85_encode32(in, z);
    cr_assert_eq(strlen(z), 40);
    cr_assert_eq(hv_z85_decode32(z, out), 0);
    cr_assert_eq(memcmp(in, out, 32), 0);
    cr_assert_eq(hv_z85_decode32("tooshort", out), -EINVAL);
}

/* libsodium 1.0.18's blocklist of small-order Curve25519 points
 * (x25519_ref10.c), written out here so the test does not trust the code
 * it checks. Each is also tried with the top bit set, which X25519
 * ignores: another encoding of the same point. */
static const uint8_t s_small_order[7][32] = {
    /* 0 (order 4) */
    { 0 },
    /* 1 (order 1) */
    { 1 },
    /* order 8 */
    { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
      0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
    /* order 8 */
    { 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
      0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
    /* p - 1 (order 2) */
    { 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    /* p, another encoding of 0 */
    { 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    /* p + 1, another encoding of 1 */
    { 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};
#define N_SMALL (2 * 7)

/* The i-th bad key: the blocklist, then the same with the top bit set. */
static void
s_bad_key(int i, uint8_t out[32])
{
    memcpy(out, s_small_order[i % 7], 32);
    if (i >= 7)
        out[31] |= 0x80;
}

Test(keys, small_order_points_are_unusable)
{
    uint8_t pk[32], sk[32];
    for (int i = 0; i < N_SMALL; i++) {
        s_bad_key(i, pk);
        cr_assert_not(hv_key_usable(pk), "small-order point %d (top bit %s) was accepted", i % 7,
                      i >= 7 ? "set" : "clear");
    }
    cr_assert_eq(sodium_init() >= 0, 1);
    for (int i = 0; i < 16; i++) {
        cr_assert_eq(crypto_box_keypair(pk, sk), 0);
        cr_assert(hv_key_usable(pk), "a fresh crypto_box_keypair key was refused");
    }
}

Test(keys, nothing_is_sealed_to_an_unusable_key)
{
    static const char plain[] = "14 Hidden Mews, Cambridge CB1 9ZZ";
    uint8_t pk[32];
    for (int i = 0; i < N_SMALL; i++) {
        Haven__Sealed box;
        memset(&box, 0xa5, sizeof box);          /* as a caller's stack might be */
        s_bad_key(i, pk);
        cr_assert_eq(hv_seal(plain, strlen(plain), pk, &box), -EINVAL, "sealed to bad key %d", i);
        cr_assert_null(box.box.data, "a box was left for bad key %d", i);
        cr_assert_eq(box.box.len, 0);
        cr_assert_null(box.recipient.data);
        cr_assert_eq(box.recipient.len, 0);
    }
}

Test(keys, sealing_to_a_good_key_still_opens)
{
    char path[160], err[256];
    hv_keys_t *k = NULL;
    Haven__Sealed box;
    static const char plain[] = "14 Hidden Mews, Cambridge CB1 9ZZ";
    cr_assert_eq(hv_keys_generate(base), 0);
    snprintf(path, sizeof path, "%s.key", base);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(hv_seal(plain, strlen(plain), hv_keys_seal_public(k), &box), 0);
    char *opened = hv_unseal(k, &box);
    cr_assert_not_null(opened);
    cr_assert_str_eq(opened, plain);
    free(opened);
    free(box.box.data);
    free(box.recipient.data);
    hv_keys_destroy(&k);
}

static void
s_write_pub(const char *path, const uint8_t curve[32], const uint8_t seal[32])
{
    char zc[41], zs[41];
    hv_z85_encode32(curve, zc);
    hv_z85_encode32(seal, zs);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "[haven-public-key]\ncurve = %s\nseal = %s\n", zc, zs);
    cr_assert_eq(fclose(f), 0);
}

Test(keys, a_public_key_file_with_a_small_order_key_is_unusable)
{
    char path[160], err[256];
    uint8_t good[32], sk[32], bad[32];
    hv_pubkey_t pub;
    cr_assert_eq(sodium_init() >= 0, 1);
    cr_assert_eq(crypto_box_keypair(good, sk), 0);
    snprintf(path, sizeof path, "%s/bad.pub", dir);
    for (int i = 0; i < N_SMALL; i++) {
        s_bad_key(i, bad);
        s_write_pub(path, good, bad);
        err[0] = '\0';
        cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), -EINVAL, "seal key %d accepted", i);
        cr_assert(strstr(err, "sealing key") && strstr(err, "unusable"), "%s", err);
        s_write_pub(path, bad, good);
        err[0] = '\0';
        cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), -EINVAL, "curve key %d accepted", i);
        cr_assert(strstr(err, "CURVE key") && strstr(err, "unusable"), "%s", err);
    }
    s_write_pub(path, good, good);
    cr_assert_eq(hv_pubkey_load(path, &pub, err, sizeof err), 0, "%s", err);
}

/* Write a secret key file by hand (mode 0600). */
static void
s_write_secret(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    cr_assert_eq(close(fd), 0);
}

Test(keys, a_secret_key_file_with_a_small_order_public_half_is_unusable)
{
    char path[160], err[256], text[512], zcp[41], zcs[41], zsp[41], zss[41];
    uint8_t cp[32], cs[32], sp[32], ss[32];
    hv_keys_t *k = NULL;
    cr_assert_eq(sodium_init() >= 0, 1);
    cr_assert_eq(crypto_box_keypair(cp, cs), 0);
    cr_assert_eq(crypto_box_keypair(sp, ss), 0);
    hv_z85_encode32(cp, zcp);
    hv_z85_encode32(cs, zcs);
    hv_z85_encode32(ss, zss);
    snprintf(path, sizeof path, "%s/edited.key", dir);
    for (int i = 0; i < N_SMALL; i++) {
        uint8_t bad[32];
        s_bad_key(i, bad);
        hv_z85_encode32(bad, zsp);
        snprintf(text, sizeof text, "[haven-secret-key]\ncurve-public = %s\ncurve-secret = %s\n"
                 "seal-public = %s\nseal-secret = %s\n", zcp, zcs, zsp, zss);
        s_write_secret(path, text);
        err[0] = '\0';
        cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), -EINVAL, "bad seal key %d loaded", i);
        cr_assert_null(k);
        cr_assert(strstr(err, "unusable"), "%s", err);
    }
    hv_z85_encode32(sp, zsp);
    snprintf(text, sizeof text, "[haven-secret-key]\ncurve-public = %s\ncurve-secret = %s\n"
             "seal-public = %s\nseal-secret = %s\n", zcp, zcs, zsp, zss);
    s_write_secret(path, text);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), 0, "%s", err);
    hv_keys_destroy(&k);
}

/* A good key file padded with comments to exactly size bytes. */
static void
s_padded_key(const char *path, size_t size)
{
    char keyfile[160], *text = calloc(1, size + 1);
    cr_assert_not_null(text);
    snprintf(keyfile, sizeof keyfile, "%s.key", base);
    FILE *f = fopen(keyfile, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, size, f);
    fclose(f);
    cr_assert_lt(n, size);
    /* short comment lines: inih reads lines of at most 200 bytes */
    while (n < size) {
        size_t line = size - n > 64 ? 64 : size - n;
        memset(text + n, '#', line);
        text[n + line - 1] = '\n';
        n += line;
    }
    s_write_secret(path, text);
    free(text);
}

Test(keys, a_key_file_larger_than_the_cap_is_refused)
{
    char path[160], err[256];
    hv_keys_t *k = NULL;
    cr_assert_eq(hv_keys_generate(base), 0);
    snprintf(path, sizeof path, "%s/padded.key", dir);
    s_padded_key(path, HV_KEYFILE_MAX);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), 0, "at the cap: %s", err);
    hv_keys_destroy(&k);
    s_padded_key(path, HV_KEYFILE_MAX + 1);
    cr_assert_eq(hv_keys_load(path, &k, err, sizeof err), -EFBIG);
    cr_assert_null(k);
    cr_assert(strstr(err, "larger than 4096 bytes"), "%s", err);
}
