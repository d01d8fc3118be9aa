/* SPDX-License-Identifier: MIT */
/* Reliability: acknowledged updates survive SIGKILL (of the broker, and of
 * agents mid-flush), hostile traffic does not stop the broker, limits
 * hold, the outbox keeps what was not applied, and a hot backup restores. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
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

#define THREADS 4
#define UNITS_PER_THREAD 4
#define AGENT_UNITS 3            /* a0..a2: changed only through haven-agent */
#define AGENT_SETS 4             /* queued per round, flushed by an agent that is killed */

static void
s_catalog(char *out, size_t len)
{
    int n = snprintf(out, len, "[service]\ngenders = women\nconfirm_every = 24h\n");
    for (int i = 0; i < THREADS * UNITS_PER_THREAD; i++)
        n += snprintf(out + n, len - (size_t) n, "[unit u%d]\nmax_occupants = 2\n", i);
}

static void
s_world(const char *extra)
{
    char catalog[4096];
    s_catalog(catalog, sizeof catalog);
    hh_start(&h, extra);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
}

static void setup(void) { s_world(NULL); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(reliability, .init = setup, .fini = teardown, .timeout = 900);

/* ---------------------------------------------------------------- kill */

/* The status each version stands for, so a survivor can be checked. */
static int
s_status_of(uint64_t version)
{
    return version % 3 == 0 ? HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE
         : version % 3 == 1 ? HAVEN__UNIT_STATUS__UNIT_AVAILABLE : HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
}

static atomic_uint_fast64_t s_version = 1;
static uint64_t s_acked[THREADS * UNITS_PER_THREAD];    /* highest acked version per unit */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_ack_pipe[2];
static atomic_int s_stop_streams;
static hh_id_t s_agent_id;

static void *
s_stream(void *arg)
{
    int t = (int) (intptr_t) arg;
    hv_conn_t *c = hv_conn_new(s_agent_id.cfg->endpoint, s_agent_id.broker.curve, s_agent_id.keys, 500, 1);
    for (int k = 0; !atomic_load(&s_stop_streams); k++) {
        int unit = t * UNITS_PER_THREAD + k % UNITS_PER_THREAD;
        char name[16];
        snprintf(name, sizeof name, "u%d", unit);
        Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
        set.provider = "refuge-a";
        set.unit = name;
        set.version = atomic_fetch_add(&s_version, 1);
        set.status = s_status_of(set.version);
        Haven__Request req = HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
        req.unit_set = &set;
        Haven__Reply *rep = NULL;
        if (hv_conn_call(c, &req, &rep) != 0)
            continue;            /* slow or gone: the main thread decides */
        bool ok = rep->status == HAVEN__STATUS__STATUS_OK && !(rep->unit_set && rep->unit_set->ignored);
        haven__reply__free_unpacked(rep, NULL);
        if (!ok)
            continue;
        pthread_mutex_lock(&s_lock);
        if (set.version > s_acked[unit])
            s_acked[unit] = set.version;
        pthread_mutex_unlock(&s_lock);
        if (write(s_ack_pipe[1], "a", 1) != 1)
            break;

    }
    hv_conn_destroy(&c);
    return NULL;
}

static void
s_check_survivors(int round)
{
    hv_conn_t *c = hv_conn_new(s_agent_id.cfg->endpoint, s_agent_id.broker.curve, s_agent_id.keys, 5000, 3);
    Haven__AgentStatus st = HAVEN__AGENT_STATUS__INIT;
    st.provider = "refuge-a";
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AGENT_STATUS;
    req.agent_status = &st;
    Haven__Reply *rep = NULL;
    cr_assert_eq(hv_conn_call(c, &req, &rep), 0, "round %d: the restarted broker does not answer", round);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK);
    cr_assert_eq(rep->agent_status->n_units, THREADS * UNITS_PER_THREAD + AGENT_UNITS);
    for (size_t i = 0; i < rep->agent_status->n_units; i++) {
        const Haven__Unit *u = rep->agent_status->units[i];
        if (u->spec->name[0] != 'u')
            continue;            /* the agent's: checked exactly by s_check_agent_units */
        int unit = atoi(u->spec->name + 1);
        cr_assert_geq(u->version, s_acked[unit], "round %d: %s lost acked version %llu (has %llu)",
                      round, u->spec->name, (unsigned long long) s_acked[unit], (unsigned long long) u->version);
        if (u->version)
            cr_assert_eq((int) u->status, s_status_of(u->version),
                         "round %d: %s status does not belong to its version", round, u->spec->name);
    }
    haven__reply__free_unpacked(rep, NULL);
    hv_conn_destroy(&c);
}

/* ---------------------------------------------------------------- agents
 * Changes staff make through the real haven-agent, queued while the broker
 * is down, then flushed by an agent SIGKILLed mid-flush (and by a broker
 * killed meanwhile): none may be lost or applied out of order. */

static const char *const s_statuses[] = { "available", "occupied", "out-of-service" };
static const char *s_expected[AGENT_UNITS];      /* the last status staff set */
static char s_fast[512];         /* the agent's config, quick to give up on an absent broker */

static void
s_agent_world(void)
{
    char catalog[4096], text[4096];
    s_catalog(catalog, sizeof catalog);
    for (int i = 0; i < AGENT_UNITS; i++) {
        size_t n = strlen(catalog);
        snprintf(catalog + n, sizeof catalog - n, "[unit a%d]\nmax_occupants = 2\n", i);
        s_expected[i] = "occupied";          /* new units start occupied */
    }
    hh_write(&h, "refuge-a.ini", catalog, NULL, 0);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
    FILE *f = fopen(agent, "r");
    cr_assert(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *t = strstr(text, "timeout_ms = 2000\nretries = 2\n");
    cr_assert(t, "the harness's client config changed: %s", text);
    memcpy(t, "timeout_ms = 100 \nretries = 1\n", strlen("timeout_ms = 2000\nretries = 2\n"));
    hh_write(&h, "agent-fast.conf", text, s_fast, sizeof s_fast);
}

/* With the broker down: staff make changes; each is queued (exit 69). */
static void
s_queue_agent_sets(int round)
{
    for (int i = 0; i < AGENT_SETS; i++) {
        int unit = (int) randombytes_uniform(AGENT_UNITS);
        const char *status = s_statuses[randombytes_uniform(3)];
        char name[8];
        snprintf(name, sizeof name, "a%d", unit);
        hh_run(&h, &r, "haven-agent", "--config", s_fast, "set", name, status, NULL);
        cr_assert_eq(r.code, 69, "round %d: set %s %s with the broker down: %d %s", round, name, status, r.code, r.err);
        s_expected[unit] = status;
    }
}

/* Start flushing the queue, and SIGKILL the agent after it reported j of
 * its AGENT_SETS changes applied: mid-flush. */
static void
s_kill_agent_mid_flush(int round)
{
    int fd;
    char line[256];
    uint32_t j = randombytes_uniform(AGENT_SETS);
    pid_t pid = hh_spawn(&h, &fd, "haven-agent", "--config", agent, "status", NULL);
    for (uint32_t l = 0; l < j; l++)
        cr_assert(hh_read_line(fd, line, sizeof line, 30000), "round %d: the agent said %u of %u changes, then "
                  "nothing (see %s/spawned-%d.log)", round, l, j, h.dir, (int) pid);
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    close(fd);
}

/* The next command sends what the killed agent left; then each agent
 * unit has exactly the status staff last set, and nothing waits. */
static void
s_check_agent_units(int round)
{
    json_t *doc, *u;
    size_t i;
    int seen = 0;
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "status", NULL);
    cr_assert_eq(r.code, 0, "round %d: status: %d %s", round, r.code, r.err);
    doc = hh_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(doc, "queued")), 0, "round %d: %s", round, r.out);
    json_array_foreach(json_object_get(doc, "units"), i, u) {
        const char *name = json_string_value(json_object_get(u, "unit"));
        if (name[0] != 'a')
            continue;
        int unit = atoi(name + 1);
        cr_assert_str_eq(json_string_value(json_object_get(u, "status")), s_expected[unit],
                         "round %d: %s is %s, but staff last set it %s", round, name,
                         json_string_value(json_object_get(u, "status")), s_expected[unit]);
        seen++;
    }
    cr_assert_eq(seen, AGENT_UNITS);
    json_decref(doc);
}

Test(reliability, acknowledged_updates_survive_sigkill)
{
    const char *env = getenv("HAVEN_KILL_ROUNDS");
    int rounds = env ? atoi(env) : 50;
    cr_assert(sodium_init() >= 0);
    hh_identity(agent, &s_agent_id);
    cr_assert_eq(pipe(s_ack_pipe), 0);
    s_agent_world();
    hh_crash(&h);
    s_queue_agent_sets(-1);
    hh_restart(&h);
    for (int round = 0; round < rounds; round++) {
        pthread_t th[THREADS];
        atomic_store(&s_stop_streams, 0);
        for (intptr_t t = 0; t < THREADS; t++)
            pthread_create(&th[t], NULL, s_stream, (void *) t);
        s_kill_agent_mid_flush(round);
        /* Kill after a random number of acknowledgements: mid-stream, with
         * other requests in flight and a batch possibly half committed. */
        uint32_t target = 20 + randombytes_uniform(300);
        char buf[64];
        for (uint32_t got = 0; got < target;) {
            ssize_t n = read(s_ack_pipe[0], buf, target - got < sizeof buf ? target - got : sizeof buf);
            cr_assert_gt(n, 0);
            got += (uint32_t) n;
        }
        hh_crash(&h);
        atomic_store(&s_stop_streams, 1);
        for (int t = 0; t < THREADS; t++)
            pthread_join(th[t], NULL);
        /* drop the acks counted beyond the target, so the next round's
         * count starts from zero */
        struct pollfd p = { s_ack_pipe[0], POLLIN, 0 };
        while (poll(&p, 1, 0) == 1 && read(s_ack_pipe[0], buf, sizeof buf) > 0) {
        }
        hh_restart(&h);
        s_check_survivors(round);
        s_check_agent_units(round);
        /* the next round's changes, made while the broker is down */
        hh_crash(&h);
        s_queue_agent_sets(round);
        hh_restart(&h);
    }
    hh_identity_free(&s_agent_id);
    close(s_ack_pipe[0]);
    close(s_ack_pipe[1]);
}

/* ---------------------------------------------------------------- hostile */

static int
s_raw_tcp_junk(const char *endpoint, int n)
{
    const char *colon = strrchr(endpoint, ':');
    int port = atoi(colon + 1), sent = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *) &a, sizeof a) == 0) {
            uint8_t junk[512];
            size_t len = 1 + randombytes_uniform(sizeof junk);
            randombytes_buf(junk, len);
            if (i % 4 == 0)      /* a ZMTP greeting signature, then garbage */
                memcpy(junk, "\xff\0\0\0\0\0\0\0\x01\x7f", len < 10 ? len : 10);
            if (send(fd, junk, len, MSG_NOSIGNAL) > 0)
                sent++;
        }
        close(fd);
    }
    return sent;
}

Test(reliability, hostile_traffic_does_not_stop_the_broker)
{
    char err[256];
    hh_id_t id;
    hh_identity(idva, &id);
    cr_assert(sodium_init() >= 0);
    /* Warm up, then measure. */
    hh_run(&h, &r, "haven", "--config", idva, "search", NULL);
    cr_assert_eq(r.code, 0);
    long rss_before = hh_broker_rss_kib(&h);

    /* A valid search to mutate. */
    Haven__Need need = HAVEN__NEED__INIT;
    Haven__Search search = HAVEN__SEARCH__INIT;
    search.need = &need;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = 99;
    req.body_case = HAVEN__REQUEST__BODY_SEARCH;
    req.search = &search;
    uint8_t *valid;
    size_t vlen;
    cr_assert_eq(hv_pack(&req.base, &valid, &vlen), 0);

    void *ctx = zmq_ctx_new();
    int answered = 0, frames = 0;
    for (int conn = 0; conn < 20; conn++) {
        void *s = zmq_socket(ctx, ZMQ_DEALER);
        cr_assert_eq(hv_curve_client(s, id.keys, id.broker.curve), 0);
        cr_assert_eq(zmq_connect(s, id.cfg->endpoint), 0);
        for (int i = 0; i < 25; i++, frames++) {
            uint8_t buf[256];
            size_t len;
            switch (i % 3) {
            case 0:              /* random bytes */
                len = 1 + randombytes_uniform(sizeof buf);
                randombytes_buf(buf, len);
                break;
            case 1:              /* a valid request, truncated */
                len = randombytes_uniform((uint32_t) vlen);
                memcpy(buf, valid, len);
                break;
            default:             /* a valid request with a few bytes flipped */
                len = vlen;
                memcpy(buf, valid, len);
                for (int k = 0; k < 3; k++)
                    buf[randombytes_uniform((uint32_t) len)] ^= (uint8_t) (1 + randombytes_uniform(255));
            }
            zmq_send(s, buf, len, 0);
        }
        /* Every frame gets an answer (an error, or a search if the
         * mutation happened to stay valid). */
        for (int i = 0; i < 25; i++) {
            zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
            if (zmq_poll(&item, 1, 10000) != 1)
                break;
            zmq_msg_t m;
            zmq_msg_init(&m);
            zmq_msg_recv(&m, s, 0);
            Haven__Reply *rep = NULL;
            if (hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &rep) == 0) {
                answered++;
                haven__reply__free_unpacked(rep, NULL);
            }
            zmq_msg_close(&m);
        }
        zmq_close(s);
        s_raw_tcp_junk(h.endpoint, 10);
    }
    zmq_ctx_term(ctx);
    free(valid);
    cr_assert_eq(answered, frames, "every malformed frame gets an error reply (%d of %d)", answered, frames);

    /* The legitimate client is still served. */
    hh_run(&h, &r, "haven", "--config", idva, "search", NULL);
    cr_assert_eq(r.code, 0, "after the storm: %s", r.err);
    long rss_after = hh_broker_rss_kib(&h);
    cr_assert_lt(rss_after - rss_before, 64 * 1024, "memory grew from %ld to %ld KiB", rss_before, rss_after);
    (void) err;
    hh_identity_free(&id);
}

/* The units of refuge-a a search offers, as "u3,u5," (sorted by name),
 * and how many of them are stale. */
static void
s_offered(bool include_stale, char *units, size_t len, int *stale)
{
    json_t *doc, *o;
    size_t i;
    bool seen[THREADS * UNITS_PER_THREAD] = { false }, old[THREADS * UNITS_PER_THREAD] = { false };
    if (include_stale)
        hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--include-stale", "--limit", "100", NULL);
    else
        hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--limit", "100", NULL);
    cr_assert_eq(r.code, 0, "search: %s", r.err);
    doc = hh_json(&r);
    json_array_foreach(json_object_get(doc, "offers"), i, o) {
        int u = atoi(json_string_value(json_object_get(o, "unit")) + 1);
        seen[u] = true;
        old[u] = json_is_true(json_object_get(o, "stale"));
    }
    json_decref(doc);
    units[0] = '\0';
    *stale = 0;
    for (int u = 0; u < THREADS * UNITS_PER_THREAD; u++)
        if (seen[u]) {
            size_t n = strlen(units);
            snprintf(units + n, len - n, "u%d,", u);
            *stale += old[u];
        }
}

/* ---------------------------------------------------------------- limits */

Test(reliability, searches_per_minute_are_limited)
{
    hh_stop(&h);
    hh_cleanup(&h);
    s_world("[limits]\nsearches_per_minute = 3\n");
    for (int i = 0; i < 3; i++) {
        hh_run(&h, &r, "haven", "--config", idva, "search", NULL);
        cr_assert_eq(r.code, 0, "search %d: %s", i, r.err);
    }
    hh_run(&h, &r, "haven", "--config", idva, "search", NULL);
    cr_assert_eq(r.code, 75, "the fourth search in a minute: %d %s", r.code, r.err);
    cr_assert(strstr(r.err, "too many searches"), "%s", r.err);
}

Test(reliability, catalog_size_is_limited)
{
    char catalog[8192];
    hh_stop(&h);
    hh_cleanup(&h);
    s_catalog(catalog, sizeof catalog);
    hh_start(&h, "[limits]\nmax_units_per_catalog = 4\n");
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 65, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "at most 4"), "%s", r.err);
    /* refused for good: sending it again cannot work, and it must not
     * hold back the changes staff make after it */
    cr_assert(strstr(r.err, "publish the catalog (16 units) was refused for good and removed from the queue"),
              "%s", r.err);

    /* Staff shorten the catalog, and it goes through. */
    hh_write(&h, "refuge-a.ini", "[service]\ngenders = women\n[unit u0]\nmax_occupants = 2\n[unit u1]\nmax_occupants = 2\n", NULL, 0);
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "publish", NULL);
    cr_assert_eq(r.code, 0, "%d %s", r.code, r.err);
    json_t *doc = hh_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(doc, "queued")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(doc, "results"), 0), "added")), 2,
                 "%s", r.out);
    json_decref(doc);
}

/* The outbox keeps a change the broker did not apply (a limit, a failure,
 * no answer) and drops one only when the broker applied it or refused it
 * for good, saying which. */
Test(reliability, a_change_not_applied_stays_queued_and_one_refused_for_good_goes)
{
    char units[256];
    int stale;
    hh_stop(&h);
    hh_cleanup(&h);
    s_world("[limits]\nwrites_per_minute = 3\n");      /* the publish was the first */
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u1", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u2", "available", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u4", "available", NULL);
    cr_assert_eq(r.code, 75, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "set u4 available was not applied and is kept in the queue; it will be sent again: "
                            "too many changes"), "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "status", NULL);
    json_t *doc = hh_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(doc, "queued")), 1, "kept: %s", r.out);
    json_decref(doc);

    /* the limit's minute is over (a restart forgets it): the next command
     * sends it, and a change the broker refuses for good leaves */
    hh_restart(&h);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u99", "available", NULL);
    cr_assert_eq(r.code, 65, "%d %s", r.code, r.err);
    cr_assert(strstr(r.out, "u4: available"), "the kept change went first: %s", r.out);
    cr_assert(strstr(r.err, "set u99 available was refused for good and removed from the queue: unit u99 is not in"),
              "%s", r.err);
    hh_run(&h, &r, "haven-agent", "--config", agent, "--json", "status", NULL);
    doc = hh_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(doc, "queued")), 0, "%s", r.out);
    json_decref(doc);
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "u1,u2,u4,");
}

/* ---------------------------------------------------------------- backup */

Test(reliability, a_hot_backup_restores_the_same_data)
{
    char backup[512], units[256];
    int stale;
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u3", "available", NULL);
    cr_assert_eq(r.code, 0);
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u5", "available", NULL);
    cr_assert_eq(r.code, 0);
    snprintf(backup, sizeof backup, "%s/haven-backup.mdb", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", backup, NULL);
    cr_assert_eq(r.code, 0, "backup: %s", r.err);
    cr_assert(strstr(r.out, "wrote"), "%s", r.out);

    /* Changes after the backup are not in it. */
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u3", "occupied", NULL);
    cr_assert_eq(r.code, 0);

    /* The README's restore: stop, put the copy in place of data.mdb (keep
     * the broker's keys), start; the broker marks what it restored. */
    hh_restore(&h, "haven-backup.mdb");
    hh_mark_restored(&h);
    hh_restart(&h);
    /* The same data as at the backup, but nothing of it offered as
     * current: u3 may have changed since (it has). */
    s_offered(true, units, sizeof units, &stale);
    cr_assert_str_eq(units, "u3,u5,", "the restored store has what the backup had");
    cr_assert_eq(stale, 2, "restored units are stale until the agent's next contact");
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "", "stale units are not offered");

    /* The agent's next contact brings the broker up to date. */
    hh_run(&h, &r, "haven-agent", "--config", agent, "status", NULL);
    cr_assert_eq(r.code, 0, "status: %s", r.err);
    cr_assert(strstr(r.err, "restored from a backup"), "%s", r.err);
    s_offered(false, units, sizeof units, &stale);
    cr_assert_str_eq(units, "u5,", "fresh and correct: u3 is occupied, as staff set it after the backup");
    cr_assert_eq(stale, 0);
}
