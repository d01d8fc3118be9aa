/* SPDX-License-Identifier: MIT */
/* The need options shared by `haven search` and (later) `haven watch`:
 * command-line words to a Need message. */
#ifndef HV_NEED_H
#define HV_NEED_H

#include <getopt.h>
#include <stddef.h>
#include "../proto/haven.pb-c.h"

typedef struct hv_need hv_need_t;

/* The long options, ending with a zero entry; the option values are
 * >= HV_NEED_OPT_BASE so programs can add their own below it. */
#define HV_NEED_OPT_BASE 1000
const struct option *hv_need_options(void);

hv_need_t *hv_need_new(void);
void hv_need_destroy(hv_need_t **self_p);

/* Take one option (value from hv_need_options, its argument). Returns 0,
 * or -EINVAL with err set to one sentence. */
int hv_need_option(hv_need_t *self, int opt, const char *arg, char *err, size_t errlen);

/* The need, owned by self; the limit (default 10). */
Haven__Need *hv_need_message(hv_need_t *self);
unsigned hv_need_limit(const hv_need_t *self);

/* Help text for the need options. */
extern const char hv_need_help[];

#endif
