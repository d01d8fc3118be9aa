/* SPDX-License-Identifier: MIT */
/* Key files: generated, loaded, and refused when unsafe or malformed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../proto/keys.h"

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
