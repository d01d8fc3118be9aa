/* SPDX-License-Identifier: MIT */
/* Agents' requests (handle_agent.c): a provider's catalog, unit status,
 * confirmations, and keeping the broker in step with each agent
 * (design.md section 7). An agent's key belongs to one provider; every
 * request is checked against it (scope.h). Handlers as request.h says. */
#ifndef BRK_HANDLE_AGENT_H
#define BRK_HANDLE_AGENT_H

#include "request.h"

/* Reads. */
int brk_handle_agent_status(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
/* Is the broker behind the agent (design.md section 7)? */
int brk_handle_agent_sync(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Writes. */
int brk_handle_publish(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_unit_set(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_confirm(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
/* The agent has sent its record again: the provider is in sync. */
int brk_handle_agent_resynced(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* A write carrying version from the agent key `key` was applied (publish,
 * unit_set, accept, decline): raise that key's synced version to it in the
 * same transaction, so AgentSync can tell whether the broker has
 * everything this agent had acknowledged. Per key: each of a provider's
 * agents is brought up to date. Returns 0 or -errno. */
int brk_agent_synced(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], uint64_t version);

/* An agent key no longer has to bring its provider up to date after a
 * restore (it did, or it was revoked). Returns 0 or -errno. */
int brk_agent_resync_forget(brk_ctx_t *ctx, MDB_txn *txn, const char *provider, const uint8_t key[32]);

/* The store was restored from a backup: the broker may be behind every
 * agent, so mark every provider unsynced (its units stale) until its agent
 * resyncs. unsynced_since is ctx->now, or kept if the provider was
 * unsynced already; each provider is marked dirty so the index sees it
 * after the commit. Returns how many, or -errno. */
int brk_providers_mark_unsynced(brk_ctx_t *ctx, MDB_txn *txn);

#endif
