/* SPDX-License-Identifier: MIT */
/* The agent is the authority for its units (design.md section 7). It keeps,
 * in its outbox's LMDB, a record of what the broker applied: the last
 * catalog, each unit's last status, the last confirmation, with their
 * versions. On every contact it asks the broker whether it has all of it
 * (AgentSync); a broker restored from a backup, or otherwise behind, is
 * sent the record again (older state there is overwritten, newer is not,
 * since every write carries its version) and then told AgentResynced. */
#ifndef AGT_RECORD_H
#define AGT_RECORD_H

#include <stdbool.h>
#include "../proto/haven.pb-c.h"
#include "outbox.h"

struct agt_session;

/* What a request the broker applied (reply rep, status OK) adds to the
 * record: a publish its catalog (units withdrawn leave the record), a set
 * its unit's status, an accept its unit occupied and a decline its unit
 * available (with their versions), a confirm its time. A write the broker
 * ignored as older adds nothing. Returns 0 or -errno. */
int agt_record_note(agt_outbox_t *outbox, const char *provider, const Haven__Request *req,
                    const Haven__Reply *rep);

/* The authority check, first on every contact. Returns EX_OK with *stop
 * false when the broker has the record (or has been brought up to date,
 * said in one sentence; units whose status could not be sent again are
 * named, with what to do), and when the broker refuses the question for
 * good (what is sent next meets the same refusal, and says it). Otherwise
 * an exit code, with *stop true when nothing more should be sent now (the
 * broker unreachable or failing: the queue is kept), said on stderr. */
int agt_record_resync(struct agt_session *s, bool *stop);

#endif
