/* SPDX-License-Identifier: MIT */
/* libFuzzer target: secret and public key files. */
#include <stdint.h>
#include "../../common/keys.h"
#include "fuzz_file.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hv_keys_t *k = NULL;
    hv_pubkey_t pub;
    char err[512];
    const char *path = fuzz_file(data, size);
    if (hv_keys_load(path, &k, err, sizeof err) == 0)
        hv_keys_destroy(&k);
    hv_pubkey_load(path, &pub, err, sizeof err);
    return 0;
}
