/* SPDX-License-Identifier: MIT */
/* Haven client configuration (INI), shared by haven, haven-agent and
 * haven-admin. Paths in the file are relative to the file's directory. */
#ifndef HV_CLIENTCFG_H
#define HV_CLIENTCFG_H

#include <stddef.h>

typedef struct {
    char *endpoint;              /* [broker] endpoint */
    char *broker_key;            /* [broker] public_key: path to broker.pub */
    char *admin_keys;            /* [broker] admin_keys: the administrators' PATH.pub files, comma-separated */
    int timeout_ms;              /* [broker] timeout_ms, default 3000 */
    int retries;                 /* [broker] retries, default 3 */
    char *key;                   /* [identity] key: path to our .key */
    char *provider;              /* [agent] provider */
    char *catalog;               /* [agent] catalog */
    char *state_dir;             /* [agent] state_dir */
} hv_clientcfg_t;

/* Load path. Unknown sections or keys and out-of-range values are refused
 * with the line number. Returns 0 or -errno with err set (one sentence).
 * Caller owns *cfg_out. */
int hv_clientcfg_load(const char *path, hv_clientcfg_t **cfg_out, char *err, size_t errlen);
void hv_clientcfg_destroy(hv_clientcfg_t **self_p);


#endif
