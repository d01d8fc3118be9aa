/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the provider's catalog parser. */
#include <stdint.h>
#include "../../agent/catalog.h"
#include "fuzz_file.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agt_catalog_t *c = NULL;
    char err[512];
    if (agt_catalog_load(fuzz_file(data, size), &c, err, sizeof err) == 0)
        agt_catalog_destroy(&c);
    return 0;
}
