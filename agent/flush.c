/* SPDX-License-Identifier: MIT */
/* Sending the outbox (see flush.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include "../proto/names.h"
#include "flush.h"
#include "record.h"

bool
agt_status_retryable(int status)
{
    switch (status) {
    case HAVEN__STATUS__STATUS_OK:
    case HAVEN__STATUS__STATUS_BAD_REQUEST:
    case HAVEN__STATUS__STATUS_FORBIDDEN:
    case HAVEN__STATUS__STATUS_NOT_FOUND:
    case HAVEN__STATUS__STATUS_CONFLICT:
    case HAVEN__STATUS__STATUS_EXPIRED:
        return false;
    default:
        /* INTERNAL, LIMIT, and anything newer than this agent: it may
         * well be applied another time, so nothing staff did is lost. */
        return true;
    }
}

void
agt_describe(const Haven__Request *req, char *buf, size_t len)
{
    switch (req ? req->body_case : HAVEN__REQUEST__BODY__NOT_SET) {
    case HAVEN__REQUEST__BODY_PUBLISH:
        snprintf(buf, len, "publish the catalog (%zu units)", req->publish->n_units);
        break;
    case HAVEN__REQUEST__BODY_UNIT_SET:
        snprintf(buf, len, "set %s %s", req->unit_set->unit, hv_unit_status_name(req->unit_set->status));
        break;
    case HAVEN__REQUEST__BODY_CONFIRM:
        snprintf(buf, len, "confirm everything is accurate");
        break;
    case HAVEN__REQUEST__BODY_ACCEPT:
        snprintf(buf, len, "accept referral %s", req->accept->hold);
        break;
    case HAVEN__REQUEST__BODY_DECLINE:
        snprintf(buf, len, "decline referral %s (%s)", req->decline->hold,
                 hv_decline_reason_name(req->decline->reason));
        break;
    default:
        snprintf(buf, len, "a change this version of haven-agent cannot read");
        break;
    }
}

/* Print what the broker said to one queued request. Each line is flushed
 * at once: `run` writes to a log, where a result must not wait for the
 * next one. */
static void
s_report(agt_session_t *s, const Haven__Request *req, const Haven__Reply *rep)
{
    json_t *j = json_object();
    switch (req->body_case) {
    case HAVEN__REQUEST__BODY_PUBLISH: {
        const Haven__PublishReply *p = rep->publish;
        json_object_set_new(j, "op", json_string("publish"));
        if (p && p->ignored) {
            json_object_set_new(j, "ignored", json_true());
            if (!s->json)
                printf("catalog already published (a newer version is on the broker)\n");
        } else if (p) {
            json_object_set_new(j, "added", json_integer(p->added));
            json_object_set_new(j, "updated", json_integer(p->updated));
            json_object_set_new(j, "withdrawn", json_integer(p->withdrawn));
            if (!s->json)
                printf("catalog published: %u added, %u updated, %u withdrawn\n",
                       p->added, p->updated, p->withdrawn);
            if (!s->json && p->added)
                printf("new units start as occupied: use `haven-agent set UNIT available` "
                       "when a unit is ready\n");
        }
        break;
    }
    case HAVEN__REQUEST__BODY_UNIT_SET: {
        const Haven__UnitSet *u = req->unit_set;
        bool ignored = rep->unit_set && rep->unit_set->ignored;
        json_object_set_new(j, "op", json_string("set"));
        json_object_set_new(j, "unit", json_string(u->unit));
        json_object_set_new(j, "status", json_string(hv_unit_status_name(u->status)));
        json_object_set_new(j, "ignored", json_boolean(ignored));
        if (!s->json)
            printf("%s: %s%s\n", u->unit, hv_unit_status_name(u->status),
                   ignored ? " (ignored: a newer change was already applied)" : "");
        break;
    }
    case HAVEN__REQUEST__BODY_CONFIRM: {
        uint32_t n = rep->confirm ? rep->confirm->units : 0;
        json_object_set_new(j, "op", json_string("confirm"));
        json_object_set_new(j, "units", json_integer(n));
        if (!s->json)
            printf("confirmed %u units as accurate\n", n);
        break;
    }
    case HAVEN__REQUEST__BODY_ACCEPT:
        json_object_set_new(j, "op", json_string("accept"));
        json_object_set_new(j, "hold", json_string(req->accept->hold));
        if (!s->json)
            printf("accepted %s: the address is sealed to the IDVA; %s is now occupied\n",
                   req->accept->hold, rep->hold ? rep->hold->unit : "the unit");
        break;
    case HAVEN__REQUEST__BODY_DECLINE:
        json_object_set_new(j, "op", json_string("decline"));
        json_object_set_new(j, "hold", json_string(req->decline->hold));
        json_object_set_new(j, "reason", json_string(hv_decline_reason_name(req->decline->reason)));
        if (!s->json)
            printf("declined %s (%s): %s is available again\n", req->decline->hold,
                   hv_decline_reason_name(req->decline->reason), rep->hold ? rep->hold->unit : "the unit");
        break;
    default:
        break;
    }
    json_array_append_new(s->out, j);
    fflush(stdout);
}

/* The broker could not be reached (or refused our key): say what waits. */
static int
s_unreached(agt_session_t *s, int code)
{
    size_t n = 0;
    int rc = agt_outbox_count(s->outbox, &n);
    if (rc < 0)
        hv_cli_error(AGT_PROG, "changes may be queued in %s, but the outbox cannot be read: %s",
                     hv_cli_config(s->cli)->state_dir, strerror(-rc));
    else if (n)
        hv_cli_error(AGT_PROG, "%zu change%s queued in %s; they will be sent, in order, by the "
                     "next haven-agent command once the broker can be reached",
                     n, n == 1 ? " is" : "s are", hv_cli_config(s->cli)->state_dir);
    return code;
}

/* One queued change the broker did not apply: say what becomes of it. */
static void
s_not_applied(agt_session_t *s, const char *what, bool kept)
{
    const char *why = hv_cli_last_error(s->cli);
    if (kept)
        hv_cli_error(AGT_PROG, "%s was not applied and is kept in the queue; it will be sent again: %s", what, why);
    else
        hv_cli_error(AGT_PROG, "%s was refused for good and removed from the queue: %s", what, why);
    json_array_append_new(s->out, json_pack("{s:s, s:s, s:b}", "change", what, "error", why, "removed", !kept));
}

int
agt_flush(agt_session_t *s)
{
    bool stop;
    int code = agt_record_resync(s, &stop);
    if (stop)
        return hv_cli_delivered(s->cli) ? code : s_unreached(s, code);
    for (;;) {
        Haven__Request *req = NULL;
        Haven__Reply *rep = NULL;
        uint64_t seq;
        char what[160];
        int rc = agt_outbox_peek(s->outbox, &req, &seq);
        if (rc == -ENOENT)
            break;
        if (rc < 0) {
            hv_cli_error(AGT_PROG, "cannot read the outbox in %s: %s", hv_cli_config(s->cli)->state_dir,
                         strerror(-rc));
            return EX_IOERR;
        }
        agt_describe(req, what, sizeof what);
        uint64_t id = req->id;   /* the entry's own: every attempt carries it */
        rc = hv_cli_call_quiet(s->cli, req, &rep);
        if (!hv_cli_delivered(s->cli)) {
            haven__request__free_unpacked(req, NULL);
            return s_unreached(s, rc);
        }
        if (rc == EX_OK) {
            s_report(s, req, rep);
            int e = agt_record_note(s->outbox, s->provider, req, rep);
            if (e < 0) {
                hv_cli_error(AGT_PROG, "the broker applied \"%s\", but this agent could not note it in its "
                             "record in %s (%s): if the broker is ever restored from an older backup, do it "
                             "again", what, hv_cli_config(s->cli)->state_dir, strerror(-e));
                code = EX_IOERR;
            }
            haven__reply__free_unpacked(rep, NULL);
        } else if (agt_status_retryable(hv_cli_last_status(s->cli))) {
            s_not_applied(s, what, true);
            haven__request__free_unpacked(req, NULL);
            size_t n = 0;        /* the rest waits behind it, in order: say so */
            if (agt_outbox_count(s->outbox, &n) == 0 && n > 1)
                hv_cli_error(AGT_PROG, "%zu later change%s wait%s behind it and %s not sent either (haven-agent "
                             "status lists them)", n - 1, n == 2 ? "" : "s", n == 2 ? "s" : "",
                             n == 2 ? "was" : "were");
            return rc;
        } else {
            s_not_applied(s, what, false);
            code = rc;
        }
        haven__request__free_unpacked(req, NULL);
        if ((rc = agt_outbox_remove(s->outbox, seq, id)) < 0) {
            hv_cli_error(AGT_PROG, "\"%s\" was answered, but cannot be taken off the queue in %s (%s); it will "
                         "be sent again, which does no harm", what, hv_cli_config(s->cli)->state_dir, strerror(-rc));
            return EX_IOERR;
        }
    }
    return code;
}

int
agt_queue(agt_session_t *s, const Haven__Request *req)
{
    char what[160];
    int rc = req->body_case == HAVEN__REQUEST__BODY_PUBLISH ? agt_outbox_push_publish(s->outbox, req, NULL)
                                                             : agt_outbox_push(s->outbox, req, NULL);
    if (rc < 0) {
        agt_describe(req, what, sizeof what);
        hv_cli_error(AGT_PROG, "cannot queue \"%s\" in %s: %s; nothing was sent", what,
                     hv_cli_config(s->cli)->state_dir, strerror(-rc));
        return EX_IOERR;
    }
    return agt_flush(s);
}
