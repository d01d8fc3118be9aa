/* SPDX-License-Identifier: MIT */
/* A provider's catalog (INI): its service rules and its units, with the
 * addresses that never leave the provider's machine unsealed. */
#ifndef AGT_CATALOG_H
#define AGT_CATALOG_H

#include <stddef.h>
#include "../proto/haven.pb-c.h"

typedef struct agt_catalog agt_catalog_t;

/* Parse and validate path. Every error names the line ("catalog.ini line
 * 12: max_occupants must be a whole number from 1 to 30"). A catalog that
 * others can read is refused when it holds addresses. The file is read
 * without stdio and its text wiped (it holds addresses). Returns 0 or
 * -errno (-EINVAL: does not validate; -EFBIG: larger than 64 MiB; -ENOENT,
 * -EACCES, ...: cannot be read) with err set. Caller owns *out. */
int agt_catalog_load(const char *path, agt_catalog_t **out, char *err, size_t errlen);
void agt_catalog_destroy(agt_catalog_t **self_p);

/* The rules and units, ready to send; owned by the catalog. */
Haven__Service *agt_catalog_service(agt_catalog_t *self);
Haven__UnitSpec **agt_catalog_units(agt_catalog_t *self, size_t *n_out);

/* The unit's address, or NULL (unknown unit, or none given). */
const char *agt_catalog_address(const agt_catalog_t *self, const char *unit);

#endif
