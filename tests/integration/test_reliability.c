/* SPDX-License-Identifier: MIT */
/* Reliability: acknowledged updates survive SIGKILL, hostile traffic does
 * not stop the broker, limits hold, and a hot backup restores. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <zmq.h>
#include "../../proto/clientcfg.h"
#include "../../proto/conn.h"
#include "../../proto/keys.h"
#include "../../proto/wire.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512];

#define THREADS 4
#define UNITS_PER_THREAD 4

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

typedef struct {
    hv_clientcfg_t *cfg;
    hv_keys_t *keys;
    hv_pubkey_t broker;
} s_id_t;

static void
s_identity(const char *conf, s_id_t *id)
{
    char err[512];
    cr_assert(hv_clientcfg_load(conf, &id->cfg, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_keys_load(id->cfg->key, &id->keys, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_pubkey_load(id->cfg->broker_key, &id->broker, err, sizeof err) == 0, "%s", err);
}

static void
s_identity_free(s_id_t *id)
{
    hv_keys_destroy(&id->keys);
    hv_clientcfg_destroy(&id->cfg);
}

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
static s_id_t s_agent_id;

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
    cr_assert_eq(rep->agent_status->n_units, THREADS * UNITS_PER_THREAD);
    for (size_t i = 0; i < rep->agent_status->n_units; i++) {
        const Haven__Unit *u = rep->agent_status->units[i];
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

Test(reliability, acknowledged_updates_survive_sigkill)
{
    const char *env = getenv("HAVEN_KILL_ROUNDS");
    int rounds = env ? atoi(env) : 50;
    cr_assert(sodium_init() >= 0);
    s_identity(agent, &s_agent_id);
    cr_assert_eq(pipe(s_ack_pipe), 0);
    for (int round = 0; round < rounds; round++) {
        pthread_t th[THREADS];
        atomic_store(&s_stop_streams, 0);
        for (intptr_t t = 0; t < THREADS; t++)
            pthread_create(&th[t], NULL, s_stream, (void *) t);
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
    }
    s_identity_free(&s_agent_id);
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
    s_id_t id;
    s_identity(idva, &id);
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
    s_identity_free(&id);
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
    cr_assert_eq(r.code, 75, "%d %s", r.code, r.err);
    cr_assert(strstr(r.err, "at most 4"), "%s", r.err);
}

/* ---------------------------------------------------------------- backup */

Test(reliability, a_hot_backup_restores_the_same_data)
{
    char backup[512], cmd[2048];
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u3", "available", NULL);
    cr_assert_eq(r.code, 0);
    snprintf(backup, sizeof backup, "%s/haven-backup.mdb", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", backup, NULL);
    cr_assert_eq(r.code, 0, "backup: %s", r.err);
    cr_assert(strstr(r.out, "wrote"), "%s", r.out);

    /* Changes after the backup are not in it. */
    hh_run(&h, &r, "haven-agent", "--config", agent, "set", "u3", "occupied", NULL);
    cr_assert_eq(r.code, 0);

    /* The README's restore: stop, put the copy in place of data.mdb (keep
     * the broker's keys), start. */
    hh_stop(&h);
    snprintf(cmd, sizeof cmd, "cd '%s' && mv data data.old && mkdir -m 700 data && "
             "cp data.old/broker.key data.old/broker.pub data/ && cp haven-backup.mdb data/data.mdb", h.dir);
    cr_assert_eq(system(cmd), 0);
    hh_restart(&h);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", NULL);
    cr_assert_eq(r.code, 0, "search after restore: %s", r.err);
    cr_assert(strstr(r.out, "\"unit\": \"u3\""), "the restored store serves u3 as available: %s", r.out);
}
