/* SPDX-License-Identifier: MIT */
/* The broker: one event loop over a CURVE ROUTER socket and the ZAP
 * handler; the only writer of the store. */
#ifndef BRK_BROKER_H
#define BRK_BROKER_H

#include <stddef.h>
#include "config.h"

typedef struct brk_broker brk_broker_t;

/* Create the data directory, the broker's key pair (data_dir/broker.pub is
 * what clients need) and the first admin principal from admin_pub (a
 * PATH.pub file). Refuses an initialised data_dir (-EEXIST).
 * Returns 0 or -errno with err set. */
int brk_broker_init(const brk_config_t *cfg, const char *admin_pub, const char *admin_name,
                    char *err, size_t errlen);

/* Open the store, load the districts, keys, principals and index, bind the
 * ZAP handler (and prove it answers), then bind the server socket.
 * Returns 0 or -errno with err set. Caller owns *out. */
int brk_broker_new(const brk_config_t *cfg, brk_broker_t **out, char *err, size_t errlen);
void brk_broker_destroy(brk_broker_t **self_p);

/* The endpoint actually bound (a tcp://...:* bind gives its real port). */
const char *brk_broker_endpoint(const brk_broker_t *self);

/* Serve until stop_fd becomes readable; the batch in hand is finished and
 * committed first. Returns 0, or -errno on a fatal error. */
int brk_broker_run(brk_broker_t *self, int stop_fd);

#endif
