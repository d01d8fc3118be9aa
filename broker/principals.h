/* SPDX-License-Identifier: MIT */
/* Who may speak to the broker: the registered principals, cached in memory
 * from the store so that the ZAP handler and every request can check a key
 * without a transaction. Updated after each commit that changes one. */
#ifndef BRK_PRINCIPALS_H
#define BRK_PRINCIPALS_H

#include <stdbool.h>
#include <stdint.h>
#include "../proto/wire.h"

typedef struct {
    char name[HV_ID_MAX + 1];
    int role;                    /* Haven__Role */
    char provider[HV_ID_MAX + 1];
    bool revoked;
    uint8_t curve[32];
    char curve_z85[41];
    uint8_t seal[32];
    char region[HV_TEXT_MAX + 1];    /* on-call: the region it covers, or "" */
    uint8_t sign[32];            /* Ed25519, from its certificate */
    bool has_sign;
} brk_principal_t;

typedef struct brk_principals brk_principals_t;

brk_principals_t *brk_principals_new(void);
void brk_principals_destroy(brk_principals_t **self_p);

/* Insert or replace by curve key. Returns 0 or -errno. */
int brk_principals_put(brk_principals_t *self, const Haven__Principal *p);

/* NULL if unknown. The pointer stays valid until the next put. */
const brk_principal_t *brk_principals_find(const brk_principals_t *self, const uint8_t key[32]);
const brk_principal_t *brk_principals_find_z85(const brk_principals_t *self, const char *z85);

/* By name (a scan: for what is not on the request path). NULL if none. */
const brk_principal_t *brk_principals_find_by_name(const brk_principals_t *self, const char *name);

size_t brk_principals_count(const brk_principals_t *self);

/* The sealing keys of a provider's unrevoked agents, at most max. Returns
 * how many were written to keys_out. */
size_t brk_principals_agent_keys(const brk_principals_t *self, const char *provider,
                                 uint8_t (*keys_out)[32], size_t max);

/* The unrevoked agents of a provider, by curve key (Z85), for pushing
 * notifications. Calls fn for each. */
void brk_principals_each_agent(const brk_principals_t *self, const char *provider,
                               void (*fn)(void *arg, const brk_principal_t *p), void *arg);

#endif
