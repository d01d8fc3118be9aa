/* SPDX-License-Identifier: MIT */
/* Bounds for every principal (design.md section 6, item 11), through the
 * real broker: a flood of large requests and a client that never reads do
 * not grow the broker or delay anyone else; connections, requests at once
 * and holds are limited per key; refusals reach the audit log as one
 * record, not one per refusal; a flapping unit alerts once; the inbox is
 * capped. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "../../proto/wire.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512];

static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
/* each test starts its own broker with the limits it is about */
TestSuite(bounds, .fini = teardown, .timeout = 120);

/* A refuge (named name, or its id) with units u0..u(n-1), published; an
 * IDVA. */
static void
s_world_named(const char *extra, int units, const char *name)
{
    char catalog[8192];
    int n = snprintf(catalog, sizeof catalog, "[service]\ngenders = women\nconfirm_every = 24h\n");
    for (int i = 0; i < units; i++)
        n += snprintf(catalog + n, sizeof catalog - (size_t) n, "[unit u%d]\nmax_occupants = 2\n", i);
    hh_start(&h, extra);
    if (name) {
        hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "provider", "add", "--id", "refuge-a", "--name",
               name, "--kind", "refuge", "--district", "E07000008", "--phone", "01000 000000", NULL);
        cr_assert_eq(r.code, 0, "provider add: %s", r.err);
        hh_principal(&h, "agent", "refuge-a-agent", "refuge-a", agent, sizeof agent);
        hh_write(&h, "refuge-a.ini", catalog, NULL, 0);
    } else {
        hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    }
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
}

static void
s_world(const char *extra, int units)
{
    s_world_named(extra, units, NULL);
}

static void
s_set(const char *unit, const char *status)
{
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", unit, status, NULL);
    cr_assert_eq(r.code, 0, "set %s %s: %s", unit, status, r.err);
}

static double
s_ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double) (t1.tv_sec - t0->tv_sec) * 1e3 + (double) (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int
s_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

/* ---------------------------------------------------------------- raw clients */

/* A CURVE DEALER with this identity, connecting (requests sent now wait
 * in it until the handshake is done). */
static void *
s_dealer(void *ctx, const hh_id_t *id)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    cr_assert_not_null(s);
    cr_assert_eq(hv_curve_client(s, id->keys, id->broker.curve), 0);
    return s;
}

static void
s_connect(void *s, const hh_id_t *id)
{
    cr_assert_eq(zmq_connect(s, id->cfg->endpoint), 0, "%s", zmq_strerror(errno));
}

/* The next reply on s within timeout_ms: 0 with *out set, -ETIMEDOUT, or
 * -EBADMSG if what came is not a Reply. */
static int
s_reply(void *s, int timeout_ms, Haven__Reply **out)
{
    zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll(&item, 1, timeout_ms) != 1)
        return -ETIMEDOUT;
    zmq_msg_t m;
    zmq_msg_init(&m);
    cr_assert_geq(zmq_msg_recv(&m, s, 0), 0);
    int rc = hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), out);
    zmq_msg_close(&m);
    return rc;
}

static void
s_send_packed(void *s, Haven__Request *req)
{
    uint8_t *buf;
    size_t len;
    cr_assert_eq(hv_pack(&req->base, &buf, &len), 0);
    cr_assert_eq(zmq_send(s, buf, len, 0), (int) len, "%s", zmq_strerror(errno));
    free(buf);
}

static void
s_send_ping(void *s, uint64_t id)
{
    Haven__Ping ping = HAVEN__PING__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = id;
    req.body_case = HAVEN__REQUEST__BODY_PING;
    req.ping = &ping;
    s_send_packed(s, &req);
}

/* A ping on c: its reply's status (err: its error text), or -errno. */
static int
s_ping(hv_conn_t *c, char *err, size_t errlen)
{
    Haven__Ping ping = HAVEN__PING__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PING;
    req.ping = &ping;
    Haven__Reply *rep = NULL;
    err[0] = '\0';
    int rc = hv_conn_call(c, &req, &rep);
    if (rc == 0) {
        rc = (int) rep->status;
        snprintf(err, errlen, "%s", rep->error ? rep->error : "");
        haven__reply__free_unpacked(rep, NULL);
    }
    return rc;
}

/* ---------------------------------------------------------------- a. the issue */

static long
s_broker_hwm_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int) h.broker);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static void
s_search_req(Haven__Request *req, Haven__Search *s, Haven__Need *n)
{
    haven__need__init(n);
    haven__search__init(s);
    s->need = n;
    s->has_limit = 1;
    s->limit = 100;              /* every unit, so each answer is large */
    haven__request__init(req);
    req->body_case = HAVEN__REQUEST__BODY_SEARCH;
    req->search = s;
}

Test(bounds, a_flood_and_a_reader_that_never_reads_neither_grow_the_broker_nor_delay_a_search)
{
    enum { UNITS = 100 };
    const int big = s_env_int("HAVEN_FLOOD_REQUESTS", 300);
    const int searches = s_env_int("HAVEN_UNREAD_SEARCHES", 2000);
    char unread[512], legit[512];
    /* Under AddressSanitizer every freed block waits in a quarantine (256
     * MiB by default) before it is reused, so the 150 MB this test sends
     * would show as growth even if the broker kept none of it: measure the
     * broker's memory, not the quarantine's. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    /* Searches fast enough that the never-reader gets real answers queued
     * for it, not a refusal each; and large answers (100 offers from a
     * provider with a long name: ~50 KB each), so what piles up for it
     * shows (2,000 of them were +96 MiB before the reply queues had a
     * bound). */
    char long_name[129];
    memset(long_name, 'R', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    s_world_named("[limits]\nsearches_per_minute = 1000000\n", UNITS, long_name);
    hh_principal(&h, "idva", "idva-2", NULL, unread, sizeof unread);
    hh_principal(&h, "idva", "idva-3", NULL, legit, sizeof legit);
    hh_id_t agent_id, flood_id, unread_id, legit_id;
    hh_identity(agent, &agent_id);
    hh_identity(idva, &flood_id);          /* idva-1 floods */
    hh_identity(unread, &unread_id);
    hh_identity(legit, &legit_id);

    /* Every unit available, so each search answers with all of them. */
    hv_conn_t *ac = hv_conn_new(agent_id.cfg->endpoint, agent_id.broker.curve, agent_id.keys, 5000, 1);
    for (int i = 0; i < UNITS; i++) {
        char name[16];
        snprintf(name, sizeof name, "u%d", i);
        Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
        set.provider = "refuge-a";
        set.unit = name;
        set.version = (uint64_t) i + 1;
        set.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
        Haven__Request req = HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
        req.unit_set = &set;
        Haven__Reply *rep = NULL;
        cr_assert_eq(hv_conn_call(ac, &req, &rep), 0);
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "%s", rep->error);
        haven__reply__free_unpacked(rep, NULL);
    }
    hv_conn_destroy(&ac);

    /* The legitimate IDVA: connected and warmed up before anything starts. */
    Haven__Request sreq;
    Haven__Search search;
    Haven__Need need;
    s_search_req(&sreq, &search, &need);
    hv_conn_t *lc = hv_conn_new(legit_id.cfg->endpoint, legit_id.broker.curve, legit_id.keys, 5000, 1);
    Haven__Reply *rep = NULL;
    cr_assert_eq(hv_conn_call(lc, &sreq, &rep), 0);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "%s", rep->error);
    cr_assert_eq(rep->search->n_offers, UNITS, "the warm-up search sees every unit");
    haven__reply__free_unpacked(rep, NULL);
    hh_run(&h, &r, "haven", "--config", legit, "search", NULL);
    cr_assert_eq(r.code, 0, "warm-up: %s", r.err);
    long rss_before = hh_broker_rss_kib(&h);
    cr_assert_gt(rss_before, 0);

    void *ctx = zmq_ctx_new();
    /* The never-reader: pipelines searches and reads nothing, with the
     * smallest buffers it can have, so the answers pile up at the broker. */
    void *nr = s_dealer(ctx, &unread_id);
    int one = 1, small = 4096, many = searches + 1000;
    zmq_setsockopt(nr, ZMQ_RCVHWM, &one, sizeof one);
    zmq_setsockopt(nr, ZMQ_RCVBUF, &small, sizeof small);
    zmq_setsockopt(nr, ZMQ_SNDHWM, &many, sizeof many);
    s_connect(nr, &unread_id);
    Haven__Request nreq;
    Haven__Search nsearch;
    Haven__Need nneed;
    s_search_req(&nreq, &nsearch, &nneed);
    uint8_t *nbuf;
    size_t nlen;
    cr_assert_eq(hv_pack(&nreq.base, &nbuf, &nlen), 0);
    for (int i = 0; i < searches; i++)
        cr_assert_eq(zmq_send(nr, nbuf, nlen, 0), (int) nlen, "search %d: %s", i, zmq_strerror(errno));
    free(nbuf);

    /* The flood: 500 KB holds, sealed-note-sized boxes, pipelined. One
     * buffer, sent without copying: it lives until the context ends. */
    enum { BOX = 500 * 1000 };
    uint8_t *box = malloc(BOX), recipient[32];
    cr_assert_not_null(box);
    randombytes_buf(box, BOX);
    randombytes_buf(recipient, sizeof recipient);
    Haven__Sealed note = HAVEN__SEALED__INIT, *notes[1] = { &note };
    note.recipient.data = recipient;
    note.recipient.len = sizeof recipient;
    note.box.data = box;
    note.box.len = BOX;
    Haven__HoldCreate hc = HAVEN__HOLD_CREATE__INIT;
    hc.offer = "not-an-offer";
    hc.notes = notes;
    hc.n_notes = 1;
    Haven__Request freq = HAVEN__REQUEST__INIT;
    freq.id = 500;
    freq.body_case = HAVEN__REQUEST__BODY_HOLD_CREATE;
    freq.hold_create = &hc;
    uint8_t *fbuf;
    size_t flen;
    cr_assert_eq(hv_pack(&freq.base, &fbuf, &flen), 0);
    free(box);
    cr_assert_gt(flen, BOX);
    void *fl = s_dealer(ctx, &flood_id);
    s_connect(fl, &flood_id);
    for (int i = 0; i < big; i++) {
        zmq_msg_t m;
        cr_assert_eq(zmq_msg_init_data(&m, fbuf, flen, NULL, NULL), 0);
        cr_assert_eq(zmq_msg_send(&m, fl, 0), (int) flen, "flood %d: %s", i, zmq_strerror(errno));
    }

    /* The broker is in the middle of it once the first refusal comes back;
     * now the legitimate search. */
    int answered = 0, for_size = 0;
    cr_assert_eq(s_reply(fl, 10000, &rep), 0, "the flood's first request was not answered");
    cr_assert_eq(rep->id, 500);
    for_size += rep->status == HAVEN__STATUS__STATUS_BAD_REQUEST && rep->error && strstr(rep->error, "at most");
    haven__reply__free_unpacked(rep, NULL);
    answered++;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = hv_conn_call(lc, &sreq, &rep);
    double ms = s_ms_since(&t0);
    cr_assert_eq(rc, 0, "the legitimate search was not answered during the flood (%d)", rc);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "%s", rep->error);
    cr_assert_eq(rep->search->n_offers, UNITS);
    haven__reply__free_unpacked(rep, NULL);
    cr_expect_lt(ms, 1000.0, "a legitimate search during the flood took %.0f ms", ms);
    double during = ms;

    /* Every flood request is answered, each a valid Reply refusing it for
     * its size (checked before it is decoded). */
    for (; answered < big; answered++) {
        rc = s_reply(fl, 10000, &rep);
        cr_assert_eq(rc, 0, "flood reply %d of %d: %s", answered + 1, big, rc == -EBADMSG ? "not a Reply" : "none");
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_BAD_REQUEST, "%s", rep->error);
        for_size += rep->error && strstr(rep->error, "at most") != NULL;
        haven__reply__free_unpacked(rep, NULL);
    }
    cr_expect_eq(for_size, big, "%d of %d 500 KB holds were refused for their size", for_size, big);
    /* The legitimate IDVA keeps working, with the never-reader still
     * connected and unread: every search answered within a second. */
    const int more = s_env_int("HAVEN_LEGIT_SEARCHES", 20);
    double slowest = 0;
    for (int i = 0; i < more; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_assert_eq(hv_conn_call(lc, &sreq, &rep), 0, "legitimate search %d was not answered", i + 2);
        ms = s_ms_since(&t0);
        slowest = ms > slowest ? ms : slowest;
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "%s", rep->error);
        haven__reply__free_unpacked(rep, NULL);
    }
    cr_expect_lt(slowest, 1000.0, "a legitimate search after the flood took %.0f ms", slowest);
    long rss_after = hh_broker_rss_kib(&h), hwm = s_broker_hwm_kib();
    fprintf(stderr, "# broker RSS: %ld KiB before, %ld KiB after (+%ld), peak %ld KiB (+%ld); legitimate "
            "search %.0f ms during the flood, at most %.0f ms after\n", rss_before, rss_after,
            rss_after - rss_before, hwm, hwm - rss_before, during, slowest);
    cr_assert_lt(rss_after - rss_before, 64 * 1024, "the broker grew from %ld to %ld KiB", rss_before, rss_after);
    cr_assert_lt(hwm - rss_before, 64 * 1024, "the broker reached %ld KiB on the way", hwm);

    zmq_close(nr);
    zmq_close(fl);
    zmq_ctx_term(ctx);           /* no message refers to fbuf after this */
    free(fbuf);
    hv_conn_destroy(&lc);
    hh_identity_free(&agent_id);
    hh_identity_free(&flood_id);
    hh_identity_free(&unread_id);
    hh_identity_free(&legit_id);
}

/* ---------------------------------------------------------------- b. connections */

Test(bounds, a_key_has_at_most_connections_per_key_connections)
{
    char err[512];
    s_world("[limits]\nconnections_per_key = 2\n", 1);
    hh_id_t id;
    hh_identity(idva, &id);
    hv_conn_t *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = hv_conn_new(id.cfg->endpoint, id.broker.curve, id.keys, 5000, 1);
    cr_assert_eq(s_ping(c[0], err, sizeof err), HAVEN__STATUS__STATUS_OK, "first connection: %s", err);
    cr_assert_eq(s_ping(c[1], err, sizeof err), HAVEN__STATUS__STATUS_OK, "second connection: %s", err);
    /* The third is turned away: at the handshake, or at its first request. */
    int rc = s_ping(c[2], err, sizeof err);
    cr_assert(rc == -EACCES || (rc == HAVEN__STATUS__STATUS_LIMIT && strstr(err, "connections")),
              "a third connection with the same key was served (%d: %s)", rc, err);
    /* (a refused client keeps retrying: stop it, or it takes the next free slot) */
    hv_conn_destroy(&c[2]);
    /* The two it has still work. */
    cr_assert_eq(s_ping(c[1], err, sizeof err), HAVEN__STATUS__STATUS_OK, "%s", err);
    /* One closes: a new connection is served once the broker has seen it go
     * (the close and the new handshake race, so a refusal may come first). */
    hv_conn_destroy(&c[0]);
    rc = -EACCES;
    for (int attempt = 0; attempt < 50 && rc == -EACCES; attempt++) {
        hv_conn_t *again = hv_conn_new(id.cfg->endpoint, id.broker.curve, id.keys, 5000, 1);
        rc = s_ping(again, err, sizeof err);
        hv_conn_destroy(&again);
    }
    cr_assert_eq(rc, HAVEN__STATUS__STATUS_OK, "after closing one, a new connection is refused (%d: %s)", rc, err);
    hv_conn_destroy(&c[1]);
    hh_identity_free(&id);
}

/* ---------------------------------------------------------------- c. holds */

Test(bounds, an_idva_may_make_holds_per_hour_holds)
{
    char offer[1024], hold[64];
    s_world("[limits]\nholds_per_hour = 3\n", 1);
    s_set("u0", "available");
    for (int i = 0; i < 4; i++) {
        /* a fresh offer each time: offers are bound to one search */
        hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
        cr_assert_eq(r.code, 0, "search %d: %s", i + 1, r.err);
        json_t *doc = hh_json(&r);
        const char *o = json_string_value(json_object_get(json_array_get(json_object_get(doc, "offers"), 0), "offer"));
        cr_assert_not_null(o, "hold %d: the cancelled unit is not offered again: %s", i + 1, r.out);
        snprintf(offer, sizeof offer, "%s", o);
        json_decref(doc);
        hh_run(&h, &r, "haven", "--config", idva, "hold", offer, NULL);
        if (i == 3)
            break;
        cr_assert_eq(r.code, 0, "hold %d of 3: %s", i + 1, r.err);
        snprintf(hold, sizeof hold, "%.*s", (int) strcspn(r.out, "\n"), r.out);
        hh_run(&h, &r, "haven", "--config", idva, "cancel", hold, NULL);
        cr_assert_eq(r.code, 0, "cancel %s: %s", hold, r.err);
    }
    cr_assert_eq(r.code, 75, "a 4th hold in an hour: exit %d, %s", r.code, r.err);
    cr_assert(strstr(r.err, "too many holds"), "%s", r.err);
    /* the refused hold held nothing: the unit is still offered */
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"unit\": \"u0\""), "%s", r.out);
}

/* ---------------------------------------------------------------- d. audit */

Test(bounds, refused_requests_are_audited_as_one_record_per_principal)
{
    const int n = s_env_int("HAVEN_REFUSED_REQUESTS", 300);
    s_world(NULL, 1);
    hh_id_t id;
    hh_identity(idva, &id);
    /* An IDVA's key sends publishes, which only agents may send. */
    Haven__Service svc = HAVEN__SERVICE__INIT;
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    pub.provider = "refuge-a";
    pub.service = &svc;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    void *ctx = zmq_ctx_new();
    void *s = s_dealer(ctx, &id);
    s_connect(s, &id);
    /* pipelined, a window at a time: a client that waits for the answers
     * (see the known bug below for what happens to one that does not) */
    enum { WINDOW = 32 };
    for (int sent = 0; sent < n;) {
        int w = n - sent < WINDOW ? n - sent : WINDOW;
        for (int i = 0; i < w; i++) {
            req.id = (uint64_t) (sent + i) + 1;
            s_send_packed(s, &req);
        }
        for (int i = 0; i < w; i++) {
            Haven__Reply *rep = NULL;
            int rc = s_reply(s, 10000, &rep);
            cr_assert_eq(rc, 0, "reply %d of %d: %s", sent + i + 1, n, rc == -EBADMSG ? "not a Reply" : "none");
            cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_FORBIDDEN, "reply %d: %s", sent + i + 1, rep->error);
            cr_assert(rep->error && strstr(rep->error, "may not"), "%s", rep->error);
            haven__reply__free_unpacked(rep, NULL);
        }
        sent += w;
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    hh_identity_free(&id);

    /* A clean stop writes what was refused since the last minute. */
    hh_stop(&h);
    hh_restart(&h);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "audit", "show", "--principal", "idva-1",
           NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r), *rec;
    size_t i;
    int refused = 0, publishes = 0;
    char detail[256] = "", want[64];
    json_array_foreach(json_object_get(doc, "records"), i, rec) {
        const char *action = json_string_value(json_object_get(rec, "action"));
        if (action && strcmp(action, "refused") == 0) {
            refused++;
            snprintf(detail, sizeof detail, "%s", json_string_value(json_object_get(rec, "detail")));
        } else if (action && strcmp(action, "publish") == 0) {
            publishes++;
        }
    }
    json_decref(doc);
    cr_assert_eq(publishes, 0, "each refused publish has its own audit record (%d)", publishes);
    cr_assert_eq(refused, 1, "%d 'refused' records for idva-1: %s", refused, r.out);
    snprintf(want, sizeof want, "wrong-role %d", n);
    cr_assert(strstr(detail, want), "the record says how many and why: %s", detail);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", NULL);
    cr_assert_eq(r.code, 0, "the chain holds the aggregate record: %s", r.err);
}

/* ---------------------------------------------------------------- e, f. alerts */

static const char teen_ok[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 16\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\n[unit room-2]\nmax_occupants = 3\n";
static const char teen_no[] =
    "[service]\ngenders = women\nchildren = yes\nmax_boy_age = 12\nconfirm_every = 24h\n"
    "[unit room-1]\nmax_occupants = 3\n";

/* The alerts in the IDVA's inbox (read: cleared). Caller decrefs. */
static json_t *
s_inbox(void)
{
    hh_run(&h, &r, "haven", "--config", idva, "--json", "inbox", NULL);
    cr_assert_eq(r.code, 0, "inbox: %s", r.err);
    json_t *doc = hh_json(&r), *alerts = json_incref(json_object_get(doc, "alerts"));
    json_decref(doc);
    cr_assert(json_is_array(alerts), "%s", r.out);
    return alerts;
}

static void
s_watch(const char *child, char *id, size_t len)
{
    if (child)
        hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--child", child, "--for", "1h",
               NULL);
    else
        hh_run(&h, &r, "haven", "--config", idva, "watch", "--gender", "woman", "--for", "1h", NULL);
    cr_assert_eq(r.code, 0, "watch: %s", r.err);
    snprintf(id, len, "%.*s", (int) strcspn(r.out, "\n"), r.out);
    cr_assert(id[0], "no watch id: %s", r.out);
}

Test(bounds, a_flapping_unit_alerts_once_and_runs_the_hook_once)
{
    const int flaps = s_env_int("HAVEN_FLAPS", 20);
    char dir[] = "/tmp/haven-hook-XXXXXX", fifo[512], script[512], conf[1024], other[512], line[4096];
    char watch_a[64], watch_b[64];
    /* The hook writes what it is given into a FIFO this test reads; the
     * test holds it open for writing too, so it never reads an end. */
    cr_assert(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/alerts", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(script, sizeof script, "%s/hook", dir);
    FILE *f = fopen(script, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\ncat > '%s'\n", fifo);
    fclose(f);
    cr_assert_eq(chmod(script, 0755), 0);
    int fd = open(fifo, O_RDWR);
    cr_assert(fd >= 0);
    snprintf(conf, sizeof conf, "[alerts]\nhook = %s\n[limits]\nwrites_per_minute = 100000\n", script);
    hh_start(&h, conf);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", teen_ok, agent, sizeof agent);
    hh_provider(&h, "refuge-b", "refuge", "E07000008", teen_no, other, sizeof other);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", other, "publish", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);

    /* A household with a 14-year-old boy: refuge-a fits, refuge-b not. */
    s_watch("14:m", watch_a, sizeof watch_a);
    for (int i = 0; i < flaps; i++) {
        s_set("room-1", "available");
        s_set("room-1", "occupied");
    }
    json_t *alerts = s_inbox(), *a;
    size_t i;
    int for_room = 0;
    json_array_foreach(alerts, i, a)
        for_room += strcmp(json_string_value(json_object_get(a, "provider_id")), "refuge-a") == 0
                    && strcmp(json_string_value(json_object_get(a, "unit")), "room-1") == 0;
    cr_expect_eq(for_room, 1, "%d alerts in the inbox for a unit that flapped %d times", for_room, flaps);
    cr_expect_eq(json_array_size(alerts), 1, "%s", r.out);
    json_decref(alerts);

    /* A second watch, then a unit only it fits: its hook run comes after
     * every run the first watch could have had. */
    s_watch(NULL, watch_b, sizeof watch_b);
    hh_run(&h, &r, "haven-agent", "--config", other, "set", "room-1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    int runs_a = 0, runs_b = 0;
    while (runs_b == 0 || runs_a == 0) {
        cr_assert(hh_read_line(fd, line, sizeof line, 10000), "the hook did not run (watch %s: %d, watch %s: %d)",
                  watch_a, runs_a, watch_b, runs_b);
        json_error_t e;
        json_t *alert = json_loads(line, 0, &e);
        cr_assert_not_null(alert, "not JSON: %s", line);
        const char *w = json_string_value(json_object_get(alert, "watch"));
        cr_assert_not_null(w, "%s", line);
        if (strcmp(w, watch_a) == 0) {
            runs_a++;
            cr_assert_eq(json_integer_value(json_object_get(alert, "count")), 1, "%s", line);
        } else {
            cr_assert_str_eq(w, watch_b, "%s", line);
            runs_b++;
        }
        json_decref(alert);
    }
    cr_assert_eq(runs_a, 1, "the hook ran %d times for one flapping unit", runs_a);
    close(fd);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(bounds, the_inbox_keeps_the_newest_inbox_max_alerts)
{
    char watch[64], unit[16];
    s_world("[limits]\ninbox_max = 3\n[alerts]\ncoalesce = 0\n", 5);
    s_watch(NULL, watch, sizeof watch);
    for (int i = 0; i < 5; i++) {
        snprintf(unit, sizeof unit, "u%d", i);
        s_set(unit, "available");
    }
    json_t *alerts = s_inbox(), *a;
    size_t i;
    cr_assert_eq(json_array_size(alerts), 3, "%s", r.out);
    bool seen[5] = { false };
    json_array_foreach(alerts, i, a) {
        const char *u = json_string_value(json_object_get(a, "unit"));
        cr_assert(u && u[0] == 'u' && u[1] >= '0' && u[1] <= '4', "%s", r.out);
        seen[u[1] - '0'] = true;
    }
    cr_assert(seen[2] && seen[3] && seen[4] && !seen[0] && !seen[1], "the 3 newest are kept: %s", r.out);
    json_decref(alerts);
}

/* ---------------------------------------------------------------- g. in flight */

/* A client that pipelines more than requests_in_flight is slowed, not
 * refused: the cycle that takes a key's requests_in_flight-th request ends
 * there, so even with a reply queue of 8 every one of 200 pipelined pings
 * is answered (before, replies past the queue were dropped). */
Test(bounds, requests_beyond_requests_in_flight_wait_and_are_all_answered)
{
    enum { N = 200 };
    char err[512];
    s_world("[limits]\nrequests_in_flight = 4\nqueued_replies = 8\n", 1);
    hh_id_t id;
    hh_identity(idva, &id);
    void *ctx = zmq_ctx_new();
    void *s = s_dealer(ctx, &id);
    /* sent while the handshake runs, so they reach the broker together */
    s_connect(s, &id);
    for (int i = 0; i < N; i++)
        s_send_ping(s, (uint64_t) i + 1);
    bool answered[N + 1] = { false };
    for (int i = 0; i < N; i++) {
        Haven__Reply *rep = NULL;
        int rc = s_reply(s, 10000, &rep);
        cr_assert_eq(rc, 0, "reply %d of %d: %s", i + 1, N, rc == -EBADMSG ? "not a Reply" : "none");
        cr_assert(rep->id >= 1 && rep->id <= N && !answered[rep->id], "reply id %llu", (unsigned long long) rep->id);
        answered[rep->id] = true;
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "ping %llu: %s", (unsigned long long) rep->id,
                     rep->error ? rep->error : "");
        cr_assert_eq(rep->body_case, HAVEN__REPLY__BODY_PONG);
        haven__reply__free_unpacked(rep, NULL);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    /* One at a time is always served. */
    hv_conn_t *c = hv_conn_new(id.cfg->endpoint, id.broker.curve, id.keys, 5000, 1);
    cr_assert_eq(s_ping(c, err, sizeof err), HAVEN__STATUS__STATUS_OK, "%s", err);
    hv_conn_destroy(&c);
    hh_identity_free(&id);
}

/* ---------------------------------------------------------------- refused, pipelined */

/* Requests refused before their handler (wrong role, too large, malformed)
 * count against requests_in_flight too: otherwise one cycle could take
 * batch_max of them from one connection and drop every reply past
 * queued_replies, although this client reads at once. */
Test(bounds, every_pipelined_refused_request_gets_a_reply)
{
    const int n = 300;
    s_world(NULL, 1);
    hh_id_t id;
    hh_identity(idva, &id);
    Haven__Service svc = HAVEN__SERVICE__INIT;
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    pub.provider = "refuge-a";
    pub.service = &svc;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    void *ctx = zmq_ctx_new();
    void *s = s_dealer(ctx, &id);
    s_connect(s, &id);
    for (int i = 0; i < n; i++) {
        req.id = (uint64_t) i + 1;
        s_send_packed(s, &req);
    }
    int answered = 0;
    for (; answered < n; answered++) {
        Haven__Reply *rep = NULL;
        if (s_reply(s, 5000, &rep) != 0)
            break;
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_FORBIDDEN, "%s", rep->error);
        haven__reply__free_unpacked(rep, NULL);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    hh_identity_free(&id);
    cr_assert_eq(answered, n, "%d of %d pipelined refused requests were answered", answered, n);
}

/* ---------------------------------------------------------------- silent connections */

/* The handshake's outcome on s, from its monitor: 1 admitted, 0 refused. */
static int
s_handshake(void *ctx, void *s, const hh_id_t *id, int n)
{
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://bounds-silent-%d", n);
    cr_assert_eq(zmq_socket_monitor(s, mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                               | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL), 0);
    void *m = zmq_socket(ctx, ZMQ_PAIR);
    cr_assert_eq(zmq_connect(m, mon), 0);
    s_connect(s, id);
    zmq_pollitem_t item = { m, 0, ZMQ_POLLIN, 0 };
    cr_assert_eq(zmq_poll(&item, 1, 10000), 1, "no handshake outcome for connection %d", n);
    zmq_msg_t ev;
    zmq_msg_init(&ev);
    cr_assert_geq(zmq_msg_recv(&ev, m, 0), 0);
    uint16_t event;
    memcpy(&event, zmq_msg_data(&ev), 2);
    zmq_msg_close(&ev);
    while (zmq_msg_init(&ev) == 0 && zmq_msg_recv(&ev, m, ZMQ_DONTWAIT) >= 0)
        zmq_msg_close(&ev);
    zmq_msg_close(&ev);
    zmq_close(m);
    return event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
}

/* Connections that never send a request count too: with
 * connections_per_key = 2, a key's third silent connection is refused at
 * the handshake (before, silent ones were counted only once they spoke). */
Test(bounds, silent_connections_count_toward_connections_per_key)
{
    s_world("[limits]\nconnections_per_key = 2\n", 1);
    hh_id_t id;
    hh_identity(idva, &id);
    void *ctx = zmq_ctx_new(), *socks[3];
    for (int i = 0; i < 3; i++) {
        socks[i] = s_dealer(ctx, &id);
        int ok = s_handshake(ctx, socks[i], &id, i);
        cr_assert_eq(ok, i < 2, "silent connection %d of a key with connections_per_key = 2 was %s", i + 1,
                     ok ? "admitted" : "refused");
    }
    for (int i = 0; i < 3; i++)
        zmq_close(socks[i]);
    zmq_ctx_term(ctx);
    hh_identity_free(&id);
}
