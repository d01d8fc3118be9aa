/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the districts CSV. */
#include <stdint.h>
#include "../../broker/districts.h"
#include "fuzz_file.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    brk_districts_t *d = NULL;
    char err[512];
    if (brk_districts_load(fuzz_file(data, size), &d, err, sizeof err) == 0) {
        if (brk_districts_count(d) > 1)
            brk_districts_row(d, 1);
        brk_districts_destroy(&d);
    }
    return 0;
}
