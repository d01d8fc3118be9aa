/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the broker's and the clients' configuration files. */
#include <stdint.h>
#include "../../broker/config.h"
#include "../../common/clientcfg.h"
#include "fuzz_file.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    brk_config_t *b = NULL;
    hv_clientcfg_t *c = NULL;
    char err[512];
    const char *path = fuzz_file(data, size);
    if (brk_config_load(path, &b, err, sizeof err) == 0)
        brk_config_destroy(&b);
    if (hv_clientcfg_load(path, &c, err, sizeof err) == 0)
        hv_clientcfg_destroy(&c);
    return 0;
}
