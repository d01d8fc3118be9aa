/* SPDX-License-Identifier: MIT */
/* Sending to the broker: on every contact, first bring the broker up to
 * date if it is behind this agent (record.h), then send the outbox in
 * order. A queued change leaves the outbox only when the broker applied it
 * or refused it for good; staff are told which, in a sentence naming the
 * change (design.md section 7). */
#ifndef AGT_FLUSH_H
#define AGT_FLUSH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "../common/cli.h"
#include "outbox.h"

#define AGT_PROG "haven-agent"

/* One haven-agent command's connection, outbox and output. */
typedef struct agt_session {
    hv_cli_t *cli;
    agt_outbox_t *outbox;
    const char *provider;
    bool json;                   /* --json: results go to out, sentences to stderr */
    json_t *out;                 /* the results, printed at the end with --json */
} agt_session_t;

/* Send every queued change in order, after the authority check. Returns
 * EX_OK when the queue is empty; otherwise the exit code of what stopped
 * it (the broker unreachable, or a change not applied, which stays queued),
 * or of the last change refused for good (dropped). Each is said on
 * stderr in one sentence. */
int agt_flush(agt_session_t *s);

/* Queue a change (a publish replaces one still queued, see
 * agt_outbox_push_publish), then flush. Returns as agt_flush, or EX_IOERR
 * (said) if it cannot be queued. */
int agt_queue(agt_session_t *s, const Haven__Request *req);

/* A queued change for people: "set room-1 available", "publish the
 * catalog (4 units)", "accept referral 0123...". */
void agt_describe(const Haven__Request *req, char *buf, size_t len);

/* Whether a refusal with this status means "not applied, try again"
 * (the broker failed, a limit, or a status this agent does not know),
 * rather than "refused for good". */
bool agt_status_retryable(int status);

#endif
