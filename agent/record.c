/* SPDX-License-Identifier: MIT */
/* The agent's authority record and the resync (see record.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include "../proto/names.h"
#include "flush.h"
#include "record.h"

int
agt_record_note(agt_outbox_t *outbox, const char *provider, const Haven__Request *req, const Haven__Reply *rep)
{
    Haven__UnitSet u = HAVEN__UNIT_SET__INIT;
    const Haven__Hold *h = rep->hold;
    switch (req->body_case) {
    case HAVEN__REQUEST__BODY_PUBLISH: {
        if (rep->publish && rep->publish->ignored)
            return 0;            /* the broker has a newer catalog */
        int rc = agt_outbox_record_catalog(outbox, req->publish);
        /* A unit new to the broker is occupied until staff set it: that
         * is its status, and this agent knows it (one it knows nothing of
         * it cannot vouch for after a restore). */
        for (size_t i = 0; rc == 0 && rep->publish && i < rep->publish->n_added_units; i++) {
            u.provider = (char *) provider;
            u.unit = rep->publish->added_units[i];
            u.status = HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
            u.version = req->publish->version;
            u.has_at = 1;
            u.at = (int64_t) time(NULL);
            rc = agt_outbox_record_unit(outbox, &u);
        }
        return rc;
    }
    case HAVEN__REQUEST__BODY_UNIT_SET:
        if (rep->unit_set && rep->unit_set->ignored)
            return 0;
        return agt_outbox_record_unit(outbox, req->unit_set);
    case HAVEN__REQUEST__BODY_CONFIRM:
        return agt_outbox_record_confirm(outbox, req->confirm->has_at ? req->confirm->at : (int64_t) time(NULL));
    case HAVEN__REQUEST__BODY_ACCEPT:
    case HAVEN__REQUEST__BODY_DECLINE:
        /* The hold in the reply names the unit; an answer to another
         * provider's referral is never ours to record. */
        if (!h || !h->unit || !h->provider || strcmp(h->provider, provider) != 0)
            return 0;
        u.provider = (char *) provider;
        u.unit = h->unit;
        if (req->body_case == HAVEN__REQUEST__BODY_ACCEPT) {
            u.status = HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
            u.version = req->accept->version;
        } else {
            u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
            u.version = req->decline->version;
        }
        u.has_at = 1;
        u.at = (int64_t) time(NULL);
        return agt_outbox_record_unit(outbox, &u);
    default:
        return 0;
    }
}

/* One request of the resync. Returns EX_OK with *rep_out, or an exit code
 * with *stop set when the resync cannot go on now (not delivered, or not
 * applied: sent again at the next contact); a refusal for good leaves
 * *stop false, for the caller to say what it means. */
static int
s_call(agt_session_t *s, Haven__Request *req, Haven__Reply **rep_out, bool *stop)
{
    int rc = hv_cli_call_quiet(s->cli, req, rep_out);
    if (rc == EX_OK)
        return EX_OK;
    if (!hv_cli_delivered(s->cli)) {
        *stop = true;            /* hv_cli said why */
        return rc;
    }
    if (agt_status_retryable(hv_cli_last_status(s->cli))) {
        hv_cli_error(AGT_PROG, "the broker is behind this agent, and bringing it up to date stopped: %s; "
                     "it is tried again at the next contact", hv_cli_last_error(s->cli));
        *stop = true;
    }
    return rc;
}

static const Haven__Unit *
s_broker_unit(const Haven__AgentStatusReply *st, const char *name)
{
    for (size_t i = 0; i < st->n_units; i++)
        if (strcmp(st->units[i]->spec->name, name) == 0)
            return st->units[i];
    return NULL;
}

/* What staff should do about a unit whose status could not be sent again. */
static void
s_say_unit_refused(const Haven__UnitSet *u, int status, const char *why)
{
    const char *st = hv_unit_status_name(u->status);
    if (status == HAVEN__STATUS__STATUS_CONFLICT)
        hv_cli_error(AGT_PROG, "%s: the broker has it held for a referral (perhaps one answered since the backup it "
                     "was restored from), so its status here (%s) could not be sent again: answer that referral "
                     "(haven-agent referrals), then check %s with haven-agent status and set it again if need be",
                     u->unit, st, u->unit);
    else if (status == HAVEN__STATUS__STATUS_NOT_FOUND)
        hv_cli_error(AGT_PROG, "%s: the broker does not list it, so its status here (%s) could not be sent again "
                     "(%s): run haven-agent publish, then haven-agent set %s %s", u->unit, st, why, u->unit, st);
    else
        hv_cli_error(AGT_PROG, "%s: its status here (%s) could not be sent again: %s; check it with "
                     "haven-agent status and set it again", u->unit, st, why);
}

/* Send the record where the broker is behind it: the catalog, then each
 * unit's status, then the last confirmation, each with its recorded
 * version or time. Counts what was sent and refused. */
static int
s_resend(agt_session_t *s, const agt_record_t *rec, const Haven__AgentStatusReply *st, bool *catalog_sent,
         size_t *units_sent, size_t *refused, bool *stop)
{
    Haven__Request req = HAVEN__REQUEST__INIT;
    Haven__Reply *rep = NULL;
    int rc;
    const Haven__Provider *prov = st->provider;
    if (rec->catalog && (!prov->has_catalog_version || prov->catalog_version < rec->catalog->version)) {
        req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
        req.publish = rec->catalog;
        if ((rc = s_call(s, &req, &rep, stop)) == EX_OK) {
            *catalog_sent = !(rep->publish && rep->publish->ignored);
            haven__reply__free_unpacked(rep, NULL);
        } else if (*stop) {
            return rc;
        } else {
            (*refused)++;
            hv_cli_error(AGT_PROG, "the catalog could not be sent again (%s): once that is dealt with, run "
                         "haven-agent publish", hv_cli_last_error(s->cli));
        }
    }
    for (size_t i = 0; i < rec->n_units; i++) {
        Haven__UnitSet *u = rec->units[i];
        const Haven__Unit *b = s_broker_unit(st, u->unit);
        /* the broker has this version or a newer one, or already shows
         * the unit as recorded here: nothing to send */
        if (b && b->has_version && b->version >= u->version)
            continue;
        if (b && b->status == u->status
            && b->available_from == (u->has_available_from ? u->available_from : 0))
            continue;
        req = (Haven__Request) HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
        req.unit_set = u;
        if ((rc = s_call(s, &req, &rep, stop)) == EX_OK) {
            if (!(rep->unit_set && rep->unit_set->ignored))
                (*units_sent)++;
            haven__reply__free_unpacked(rep, NULL);
        } else if (*stop) {
            return rc;
        } else {
            (*refused)++;
            s_say_unit_refused(u, hv_cli_last_status(s->cli), hv_cli_last_error(s->cli));
        }
    }
    bool older = false;
    for (size_t i = 0; i < st->n_units; i++)
        older |= st->units[i]->confirmed_at < rec->confirmed_at;
    if (rec->confirmed_at && older) {
        Haven__Confirm c = HAVEN__CONFIRM__INIT;
        c.provider = (char *) s->provider;
        c.has_at = 1;
        c.at = rec->confirmed_at;
        req = (Haven__Request) HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_CONFIRM;
        req.confirm = &c;
        if ((rc = s_call(s, &req, &rep, stop)) == EX_OK)
            haven__reply__free_unpacked(rep, NULL);
        else if (*stop)
            return rc;
        else
            hv_cli_error(AGT_PROG, "the last confirmation could not be sent again (%s): run haven-agent confirm "
                         "once everything is checked", hv_cli_last_error(s->cli));
    }
    return EX_OK;
}

/* The units of the recorded catalog whose status this agent has no record
 * of (a reinstalled agent, one just upgraded, a unit added back): it
 * cannot vouch for them. Their names, comma-separated, in buf; how many. */
static size_t
s_unknown_units(const agt_record_t *rec, char *buf, size_t len)
{
    size_t n = 0, used = 0;
    buf[0] = '\0';
    for (size_t i = 0; rec->catalog && i < rec->catalog->n_units; i++) {
        const char *name = rec->catalog->units[i]->name;
        bool known = false;
        for (size_t k = 0; k < rec->n_units && !known; k++)
            known = strcmp(rec->units[k]->unit, name) == 0;
        if (known)
            continue;
        if (used < len)
            used += (size_t) snprintf(buf + used, len - used, "%s%s", n ? ", " : "", name);
        n++;
    }
    return n;
}

/* The sentence staff read after a resync. */
static void
s_say_resynced(agt_session_t *s, bool restored, bool fresh, bool catalog, size_t units, size_t refused)
{
    char what[160];
    const char *why = restored ? "was restored from a backup and was behind this agent"
                      : fresh ? "had nothing yet from this agent key (a new key?)"
                              : "was behind this agent (restored from a backup?)";
    if (catalog && units)
        snprintf(what, sizeof what, "sent the catalog and %zu %s status again", units, units == 1 ? "unit's" : "units'");
    else if (catalog)
        snprintf(what, sizeof what, "sent the catalog again");
    else if (units)
        snprintf(what, sizeof what, "sent %zu %s status again", units, units == 1 ? "unit's" : "units'");
    else
        snprintf(what, sizeof what, "it had everything this agent had sent, so nothing needed sending again");
    (void) refused;              /* a resync with refusals does not end here */
    hv_cli_error(AGT_PROG, "the broker %s: %s; its units are offered again as they are here", why, what);
    json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I}", "op", "resync", "restored", restored, "catalog", catalog,
                          "units", (json_int_t) units, "refused", (json_int_t) refused);
    json_array_append_new(s->out, j);
}

int
agt_record_resync(agt_session_t *s, bool *stop)
{
    agt_record_t rec;
    Haven__Reply *rep = NULL, *status = NULL;
    int rc;
    *stop = false;
    if ((rc = agt_outbox_record_load(s->outbox, s->provider, &rec)) < 0) {
        /* The queue still matters more than the record: go on sending. */
        hv_cli_error(AGT_PROG, "cannot read this agent's record of its units in %s (%s); queued changes are still "
                     "sent, but a broker restored from a backup cannot be brought up to date until you run "
                     "haven-agent publish and set each unit again", hv_cli_config(s->cli)->state_dir, strerror(-rc));
        return EX_IOERR;
    }
    Haven__AgentSync sync = HAVEN__AGENT_SYNC__INIT;
    sync.provider = (char *) s->provider;
    sync.version = rec.version;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_SYNC;
    req.agent_sync = &sync;
    rc = hv_cli_call_quiet(s->cli, &req, &rep);
    if (rc != EX_OK && hv_cli_delivered(s->cli) && !agt_status_retryable(hv_cli_last_status(s->cli))) {
        /* Refused for good (this key may not speak for the provider, or a
         * broker too old to know the question): what comes next meets the
         * same refusal and says it, so this is not said twice. */
        rc = EX_OK;
        goto out;
    }
    if (rc != EX_OK) {
        if (hv_cli_delivered(s->cli))
            hv_cli_error(AGT_PROG, "nothing was sent, and queued changes stay queued: %s", hv_cli_last_error(s->cli));
        *stop = true;
        goto out;
    }
    if (rep->body_case != HAVEN__REPLY__BODY_SYNC) {
        hv_cli_error(AGT_PROG, "the broker's answer is not what was asked for; nothing was sent");
        *stop = true;
        rc = EX_PROTOCOL;
        goto out;
    }
    bool restored = rep->sync->restored;
    bool fresh = !restored && rep->sync->version == 0;     /* the broker has nothing from this key */
    if (rep->sync->in_sync)
        goto out;
    if (!rec.catalog && rec.n_units == 0) {
        /* Nothing to vouch for: do not tell the broker it is up to date.
         * (A record with statuses but no catalog is a second office's,
         * whose catalog another agent publishes: it vouches for those.) */
        hv_cli_error(AGT_PROG, "the broker %s, and this agent has no record of its catalog (a new state_dir?): "
                     "run haven-agent publish, then haven-agent set for each unit, so that the broker shows them "
                     "as they are", restored ? "was restored from a backup" : !rep->sync->version
                     ? "has nothing from this agent key yet" : "is behind this agent");
        goto out;
    }
    /* What the broker has now, so only what it lacks is sent again. */
    Haven__AgentStatus as = HAVEN__AGENT_STATUS__INIT;
    as.provider = (char *) s->provider;
    req = (Haven__Request) HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_STATUS;
    req.agent_status = &as;
    if ((rc = s_call(s, &req, &status, stop)) != EX_OK) {
        if (!*stop)              /* refused for good; the rest was said already */
            hv_cli_error(AGT_PROG, "the broker is behind this agent but would not say what it has: %s",
                         hv_cli_last_error(s->cli));
        *stop = true;
        goto out;
    }
    if (status->body_case != HAVEN__REPLY__BODY_AGENT_STATUS) {
        hv_cli_error(AGT_PROG, "the broker's answer is not what was asked for; nothing was sent");
        *stop = true;
        rc = EX_PROTOCOL;
        goto out;
    }
    bool catalog = false;
    size_t units = 0, refused = 0;
    if ((rc = s_resend(s, &rec, status->agent_status, &catalog, &units, &refused, stop)) != EX_OK)
        goto out;
    /* The agent vouches that the broker is up to date only when it is: a
     * refused change (a unit held there by a referral from before the
     * restore, a catalog it will not take) or a unit this agent knows no
     * status of leaves the provider stale, and the next contact tries
     * again. Staff were told what to do about each. */
    char unknown[512];
    size_t n_unknown = s_unknown_units(&rec, unknown, sizeof unknown);
    if (refused || n_unknown) {
        if (n_unknown)
            hv_cli_error(AGT_PROG, "this agent has no record of the status of %s (reinstalled, or added back to "
                         "the catalog?): set %s with haven-agent set UNIT STATUS", unknown,
                         n_unknown == 1 ? "it" : "each");
        hv_cli_error(AGT_PROG, "the broker %s: %s; until %s, none of %s's units are offered (this is tried "
                     "again at every contact)", restored ? "was restored from a backup" : "is behind this agent",
                     refused ? "some of this agent's record could not be sent again (see above)"
                             : "it cannot be told it is up to date",
                     refused && n_unknown ? "both are dealt with" : refused ? "that is dealt with" : "then",
                     s->provider);
        json_array_append_new(s->out, json_pack("{s:s, s:b, s:I, s:I}", "op", "resync", "complete", 0,
                                                "refused", (json_int_t) refused, "unknown", (json_int_t) n_unknown));
        goto out;
    }
    Haven__AgentResynced done = HAVEN__AGENT_RESYNCED__INIT;
    done.provider = (char *) s->provider;
    done.version = rec.version;
    req = (Haven__Request) HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_RESYNCED;
    req.agent_resynced = &done;
    haven__reply__free_unpacked(rep, NULL);
    rep = NULL;
    if ((rc = s_call(s, &req, &rep, stop)) != EX_OK) {
        if (!*stop)
            hv_cli_error(AGT_PROG, "the broker refused to note that it is up to date: %s",
                         hv_cli_last_error(s->cli));
        goto out;
    }
    s_say_resynced(s, restored, fresh, catalog, units, refused);
out:
    if (rep)
        haven__reply__free_unpacked(rep, NULL);
    if (status)
        haven__reply__free_unpacked(status, NULL);
    agt_record_clear(&rec);
    return rc;
}
