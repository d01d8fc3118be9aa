/* SPDX-License-Identifier: MIT */
/* The ZAP handler (RFC 27): libzmq asks it about every CURVE handshake.
 * Without one bound, libzmq admits any key (design.md section 9), so the
 * broker binds it before its server socket and proves it answers. */
#ifndef BRK_ZAP_H
#define BRK_ZAP_H

#include "guard.h"
#include "principals.h"

#define BRK_ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* Answer one pending ZAP request on the REP socket sock: 200 with the
 * key's Z85 as User-Id for a registered, unrevoked principal that has not
 * used up its connections (guard; NULL: no limit); 400 otherwise, the
 * refusal counted in guard. Returns 1 if admitted, 0 if refused, -errno on
 * a socket error or a malformed request (still answered when possible). */
int brk_zap_handle(void *sock, const brk_principals_t *principals, brk_guard_t *guard);

/* Send a ZAP request for an unknown key through ctx and check the handler
 * on sock answers 400. Returns 0 if it does, -EPROTO otherwise. */
int brk_zap_selftest(void *ctx, void *sock, const brk_principals_t *principals);

#endif
