/* SPDX-License-Identifier: MIT */
/* The end-to-end benchmark driver (run by ops/bench): starts the real
 * haven-broker, loads synthetic providers over the UK districts through the
 * real protocol, and measures, each beside a reference taken in the same
 * run:
 *   - search round trips through the client library over CURVE (1 and 8
 *     clients) against a bare CURVE request/reply of the same sizes;
 *   - acknowledged durable updates/s (1, 8, 64 agents) against raw LMDB
 *     group commits of the same record size on the same disk;
 *   - update-to-visible latency (in a search, and to a watch firing);
 *   - broker memory and restart time.
 * It also writes units.csv and districts for the PostgreSQL comparison.
 * usage: bench_broker BROKER DISTRICTS.csv UNITS OUTDIR [--quick] */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "../../broker/districts.h"
#include "../../common/conn.h"
#include "../../common/cert.h"
#include "../../common/keys.h"
#include "../../proto/wire.h"
#include "bench_util.h"

#define MAX_PROVIDERS 4096
#define UNITS_PER_PROVIDER_MAX 1000

static const char *s_broker_bin, *s_out;
static char s_dir[256], s_endpoint[128], s_broker_z85[41];
static pid_t s_broker_pid;
static brk_districts_t *s_districts;
static FILE *s_json;
static bool s_quick;

/* ---------------------------------------------------------------- utils */

#define s_now bench_now

static double
s_pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp);
    size_t i = (size_t) (p * (double) (n - 1) + 0.5);
    return v[i];
}

static void
s_die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    if (s_broker_pid > 0)
        kill(s_broker_pid, SIGKILL);
    exit(1);
}

static void
s_figure(const char *name, double value)
{
    static bool first = true;
    fprintf(s_json, "%s\n  \"%s\": %.6g", first ? "" : ",", name, value);
    first = false;
    fflush(s_json);
}

static long
s_rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int) s_broker_pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* Start the broker; returns the seconds until it served. */
static double
s_start_broker(void)
{
    int fds[2];
    char conf[512], log[512];
    snprintf(conf, sizeof conf, "%s/broker.conf", s_dir);
    snprintf(log, sizeof log, "%s/broker.log", s_dir);
    if (pipe(fds) < 0)
        s_die("pipe");
    double t0 = s_now();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 3);
        int fe = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fe, 2);
        execl(s_broker_bin, s_broker_bin, "--config", conf, "--ready-fd", "3", (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    s_broker_pid = pid;
    char buf[128] = "";
    size_t got = 0;
    struct pollfd p = { fds[0], POLLIN, 0 };
    while (got < sizeof buf - 1 && poll(&p, 1, 120000) == 1) {
        ssize_t k = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (k <= 0)
            break;
        got += (size_t) k;
        if (memchr(buf, '\n', got))
            break;
    }
    close(fds[0]);
    char *nl = strchr(buf, '\n');
    if (!nl)
        s_die("the broker did not start (see broker.log)");
    *nl = '\0';
    snprintf(s_endpoint, sizeof s_endpoint, "%s", buf);
    return s_now() - t0;
}

static void
s_stop_broker(void)
{
    int st;
    kill(s_broker_pid, SIGTERM);
    waitpid(s_broker_pid, &st, 0);
    s_broker_pid = 0;
}

static hv_keys_t *
s_keys(const char *name)
{
    char path[512], err[256];
    hv_keys_t *k = NULL;
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    if (hv_keys_generate(path) < 0)
        s_die("keygen");
    snprintf(path, sizeof path, "%s/%s.key", s_dir, name);
    if (hv_keys_load(path, &k, err, sizeof err) < 0)
        s_die(err);
    return k;
}

static hv_conn_t *
s_conn(const hv_keys_t *k)
{
    return hv_conn_new(s_endpoint, s_broker_z85, k, 60000, 1);
}

static Haven__Reply *
s_call(hv_conn_t *c, Haven__Request *req)
{
    Haven__Reply *rep = NULL;
    int rc = hv_conn_call(c, req, &rep);
    if (rc < 0)
        s_die("a call failed");
    if (rep->status != HAVEN__STATUS__STATUS_OK) {
        fprintf(stderr, "bench: %s\n", rep->error ? rep->error : "refused");
        s_die("a request was refused");
    }
    return rep;
}

/* ---------------------------------------------------------------- world */

static uint64_t s_rng = 0x9E3779B97F4A7C15ULL;
#define s_rand(n) bench_rand(&s_rng, (n))

typedef struct {
    char id[32];
    hv_keys_t *keys;
    int district;
    int kind;
    Haven__Service svc;
    char *langs[3];
    int n_units;
    int unit_district[UNITS_PER_PROVIDER_MAX];
    uint8_t unit_occ[UNITS_PER_PROVIDER_MAX];
    uint8_t unit_feat[UNITS_PER_PROVIDER_MAX];
} s_prov_t;

static s_prov_t *s_provs;
static int s_n_provs;
static atomic_uint_fast64_t s_version = 1;

static const hv_keys_t *s_admin_keys;   /* signs the certificates */
static void s_register(hv_conn_t *admin_conn, const hv_keys_t *admin, const char *name, int role,
                       const char *provider, const hv_keys_t *k);

static void
s_make_world(uint32_t units, hv_conn_t *admin)
{
    int nd = (int) brk_districts_count(s_districts);
    /* at least 64 providers, so 64 agents can each speak for their own */
    int per = (int) (units / 64 < 1 ? 1 : units / 64 > UNITS_PER_PROVIDER_MAX ? UNITS_PER_PROVIDER_MAX : units / 64);
    s_n_provs = (int) ((units + (uint32_t) per - 1) / (uint32_t) per);
    if (s_n_provs > MAX_PROVIDERS)
        s_die("too many providers");
    s_provs = calloc((size_t) s_n_provs, sizeof *s_provs);
    static char *langs[] = { "en", "pl", "ur", "ar", "pa", "lt" };
    for (int p = 0; p < s_n_provs; p++) {
        s_prov_t *pr = &s_provs[p];
        snprintf(pr->id, sizeof pr->id, "provider-%d", p);
        pr->district = (int) s_rand((uint32_t) nd);
        pr->kind = 1 + (int) s_rand(4);
        haven__service__init(&pr->svc);
        Haven__Service *s = &pr->svc;
        s->has_genders = 1;
        s->genders = s_rand(100) < 80 ? HAVEN__GENDERS__GENDERS_WOMEN
                   : s_rand(100) < 75 ? HAVEN__GENDERS__GENDERS_ANY : HAVEN__GENDERS__GENDERS_MEN;
        s->has_trans_inclusive = 1;
        s->trans_inclusive = s_rand(2);
        s->has_children = 1;
        s->children = pr->kind != HAVEN__KIND__KIND_HOSTEL;
        s->has_max_boy_age = s_rand(100) < 80;
        s->max_boy_age = s_rand(100) < 60 ? 12 : 16;
        s->has_pets = 1;
        s->pets = s_rand(100) < 30 ? HAVEN__PET__PET_DOG | HAVEN__PET__PET_CAT : 0;
        s->has_nrpf = 1;
        s->nrpf = s_rand(100) < 9;
        s->has_complex_needs = 1;
        s->complex_needs = s_rand(4);
        if (pr->kind == HAVEN__KIND__KIND_HOSTEL) {
            s->has_adult_min_age = s->has_adult_max_age = 1;
            s->adult_min_age = 16;
            s->adult_max_age = 25;
        }
        pr->langs[0] = "en";
        pr->langs[1] = langs[1 + s_rand(5)];
        s->languages = pr->langs;
        s->n_languages = 2;
        s->has_confirm_every_s = 1;
        s->confirm_every_s = 7 * 86400;
        pr->n_units = p < s_n_provs - 1 ? per : (int) (units - (uint32_t) per * (uint32_t) (s_n_provs - 1));
        for (int u = 0; u < pr->n_units; u++) {
            pr->unit_district[u] = pr->kind == HAVEN__KIND__KIND_DISPERSED ? (int) s_rand((uint32_t) nd) : pr->district;
            pr->unit_occ[u] = (uint8_t) (1 + s_rand(6));
            pr->unit_feat[u] = (uint8_t) ((s_rand(100) < 30 ? HAVEN__FEATURE__FEATURE_SELF_CONTAINED : 0)
                                          | (s_rand(100) < 20 ? HAVEN__FEATURE__FEATURE_STEP_FREE : 0)
                                          | (s_rand(100) < 3 ? HAVEN__FEATURE__FEATURE_WHEELCHAIR : 0));
        }
        /* register: provider, its agent */
        char name[32];
        snprintf(name, sizeof name, "agent-%d", p);
        pr->keys = s_keys(name);
        Haven__Provider prov = HAVEN__PROVIDER__INIT;
        prov.id = pr->id;
        prov.name = pr->id;
        prov.kind = pr->kind;
        prov.district = (char *) brk_districts_code(s_districts, pr->district);
        Haven__ProviderAdd add = HAVEN__PROVIDER_ADD__INIT;
        add.provider = &prov;
        Haven__Request req = HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_PROVIDER_ADD;
        req.provider_add = &add;
        haven__reply__free_unpacked(s_call(admin, &req), NULL);
        s_register(admin, s_admin_keys, name, HAVEN__ROLE__ROLE_AGENT, pr->id, pr->keys);
    }
}

static void
s_register(hv_conn_t *admin_conn, const hv_keys_t *admin, const char *name, int role, const char *provider,
           const hv_keys_t *k)
{
    uint8_t curve[32];
    hv_z85_decode32(hv_keys_curve_public(k), curve);
    Haven__Principal pp = HAVEN__PRINCIPAL__INIT;
    pp.name = (char *) name;
    pp.role = role;
    pp.curve_key = (ProtobufCBinaryData) { 32, curve };
    pp.has_seal_key = pp.has_sign_key = 1;
    pp.seal_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_seal_public(k) };
    pp.sign_key = (ProtobufCBinaryData) { 32, (uint8_t *) hv_keys_sign_public(k) };
    pp.provider = (char *) provider;
    Haven__Certificate c = HAVEN__CERTIFICATE__INIT;
    c.role = role;
    c.name = (char *) name;
    c.provider = (char *) provider;
    c.curve_key = pp.curve_key;
    c.seal_key = pp.seal_key;
    c.sign_key = pp.sign_key;
    c.issued_at = (int64_t) time(NULL);
    c.expires_at = c.issued_at + (int64_t) HV_CERT_DAYS_DEFAULT * 86400;
    Haven__Signed cert = HAVEN__SIGNED__INIT;
    if (hv_cert_issue(admin, &c, &cert) < 0)
        s_die("cannot sign a certificate");
    Haven__PrincipalAdd padd = HAVEN__PRINCIPAL_ADD__INIT;
    padd.principal = &pp;
    padd.certificate = &cert;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_ADD;
    req.principal_add = &padd;
    haven__reply__free_unpacked(s_call(admin_conn, &req), NULL);
    hv_signed_clear(&cert);
}

static void
s_publish(int p)
{
    s_prov_t *pr = &s_provs[p];
    hv_conn_t *c = s_conn(pr->keys);
    Haven__UnitSpec *specs = calloc((size_t) pr->n_units, sizeof *specs);
    Haven__UnitSpec **ptrs = calloc((size_t) pr->n_units, sizeof *ptrs);
    char (*names)[16] = calloc((size_t) pr->n_units, sizeof *names);
    for (int u = 0; u < pr->n_units; u++) {
        haven__unit_spec__init(&specs[u]);
        snprintf(names[u], sizeof names[u], "u%d", u);
        specs[u].name = names[u];
        specs[u].has_max_occupants = specs[u].has_features = 1;
        specs[u].max_occupants = pr->unit_occ[u];
        specs[u].features = pr->unit_feat[u];
        if (pr->unit_district[u] != pr->district)
            specs[u].district = (char *) brk_districts_code(s_districts, pr->unit_district[u]);
        ptrs[u] = &specs[u];
    }
    Haven__Publish pub = HAVEN__PUBLISH__INIT;
    pub.provider = pr->id;
    pub.service = &pr->svc;
    pub.units = ptrs;
    pub.n_units = (size_t) pr->n_units;
    pub.version = atomic_fetch_add(&s_version, 1);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PUBLISH;
    req.publish = &pub;
    haven__reply__free_unpacked(s_call(c, &req), NULL);
    free(specs);
    free(ptrs);
    free(names);
    hv_conn_destroy(&c);
}

/* ---------------------------------------------------------------- driver */

/* One thread drives `conc` DEALER sockets, each with one request in flight,
 * so the measurement is the broker's (or the echo server's), not a pile of
 * client threads on two cores. make() packs request number i for socket k;
 * every reply must be OK. Returns requests per second; latencies in lat. */
typedef int (*s_make_fn)(void *arg, long i, int k, uint8_t **buf, size_t *len);

static double
s_drive(void *ctx, const char *endpoint, const char *server_z85, hv_keys_t **keys, int conc, long total,
        s_make_fn make, void *arg, bool check, double *lat)
{
    void *socks[64];
    double sent_at[64];
    long next = 0, done = 0;
    for (int k = 0; k < conc; k++) {
        socks[k] = zmq_socket(ctx, ZMQ_DEALER);
        hv_curve_client(socks[k], keys[k], server_z85);
        zmq_connect(socks[k], endpoint);
    }
    double t0 = s_now();
    for (int k = 0; k < conc && next < total; k++) {
        uint8_t *buf;
        size_t len;
        make(arg, next++, k, &buf, &len);
        sent_at[k] = s_now();
        zmq_send(socks[k], buf, len, 0);
        free(buf);
    }
    zmq_pollitem_t items[64];
    while (done < total) {
        for (int k = 0; k < conc; k++)
            items[k] = (zmq_pollitem_t) { socks[k], 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(items, conc, 60000) <= 0)
            s_die("no reply within a minute");
        for (int k = 0; k < conc; k++) {
            if (!(items[k].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t m;
            zmq_msg_init(&m);
            zmq_msg_recv(&m, socks[k], 0);
            if (check) {
                Haven__Reply *rep = NULL;
                if (hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &rep) < 0
                    || rep->status != HAVEN__STATUS__STATUS_OK) {
                    fprintf(stderr, "bench: %s\n", rep && rep->error ? rep->error : "bad reply");
                    s_die("a request was refused");
                }
                haven__reply__free_unpacked(rep, NULL);
            }
            zmq_msg_close(&m);
            lat[done++] = s_now() - sent_at[k];
            if (next < total) {
                uint8_t *buf;
                size_t len;
                make(arg, next++, k, &buf, &len);
                sent_at[k] = s_now();
                zmq_send(socks[k], buf, len, 0);
                free(buf);
            }
        }
    }
    double secs = s_now() - t0;
    for (int k = 0; k < conc; k++)
        zmq_close(socks[k]);
    return (double) total / secs;
}

/* ---------------------------------------------------------------- updates */

typedef struct {
    long count[64];
} s_upd_t;

/* Socket k speaks for provider k (an agent's key is scoped to it). */
static int
s_make_update(void *arg, long i, int k, uint8_t **buf, size_t *len)
{
    s_upd_t *a = arg;
    s_prov_t *pr = &s_provs[k % s_n_provs];
    char name[16];
    snprintf(name, sizeof name, "u%ld", a->count[k]++ % pr->n_units);
    Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
    set.provider = pr->id;
    set.unit = name;
    /* about one unit in ten ends available, as in life */
    set.status = s_rand(10) == 0 ? HAVEN__UNIT_STATUS__UNIT_AVAILABLE : HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
    set.version = atomic_fetch_add(&s_version, 1);
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = (uint64_t) i + 1;
    req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
    req.unit_set = &set;
    return hv_pack(&req.base, buf, len);
}

static double
s_updates(int conc, long total, double *p50, double *p99)
{
    hv_keys_t *keys[64];
    s_upd_t arg = { { 0 } };
    if (conc > s_n_provs)
        conc = s_n_provs;        /* one agent per provider */
    for (int k = 0; k < conc; k++)
        keys[k] = s_provs[k].keys;
    double *lat = calloc((size_t) total, sizeof *lat);
    void *ctx = zmq_ctx_new();
    double rate = s_drive(ctx, s_endpoint, s_broker_z85, keys, conc, total, s_make_update, &arg, true, lat);
    zmq_ctx_term(ctx);
    *p50 = s_pct(lat, (size_t) total, 0.5) * 1e6;
    *p99 = s_pct(lat, (size_t) total, 0.99) * 1e6;
    free(lat);
    return rate;
}

/* Raw LMDB: a table as large as the broker's (one record per unit, of the
 * stored unit record's size), then updates of random records grouped per
 * commit, on the same disk: the same work without network, crypto, audit
 * or index. */
static double
s_raw_lmdb(int group, long total, uint32_t units)
{
    char dir[512];
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    snprintf(dir, sizeof dir, "%s/raw-lmdb-%d", s_dir, group);
    mkdir(dir, 0700);
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t) 4 << 30);
    if (mdb_env_open(env, dir, 0, 0600) != 0)
        s_die("raw lmdb");
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    uint8_t val[64];
    memset(val, 7, sizeof val);
    for (uint32_t i = 0; i < units; i++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "provider-%u%cu%u", i / 1000, 0, i % 1000);
        MDB_val k = { (size_t) kl, key }, v = { sizeof val, val };
        mdb_put(txn, dbi, &k, &v, 0);
    }
    mdb_txn_commit(txn);
    double t0 = s_now();
    for (long i = 0; i < total;) {
        mdb_txn_begin(env, NULL, 0, &txn);
        for (int g = 0; g < group && i < total; g++, i++) {
            char key[32];
            uint32_t u = s_rand(units);
            int kl = snprintf(key, sizeof key, "provider-%u%cu%u", u / 1000, 0, u % 1000);
            val[0] = (uint8_t) i;
            MDB_val k = { (size_t) kl, key }, v = { sizeof val, val };
            mdb_put(txn, dbi, &k, &v, 0);
        }
        mdb_txn_commit(txn);
    }
    double rate = (double) total / (s_now() - t0);
    mdb_env_close(env);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
    }
    return rate;
}

/* ---------------------------------------------------------------- search */

static hv_keys_t *s_idva[8];

static void
s_need(int which, Haven__Need *n, Haven__Child *kid, Haven__Child **kids, char **codes)
{
    haven__need__init(n);
    n->has_gender = 1;
    n->gender = HAVEN__GENDER__GENDER_WOMAN;
    switch (which % 5) {
    case 0:                      /* mother, son 14, dog, not Cambridge, near it */
        haven__child__init(kid);
        kid->age = 14;
        kid->sex = "m";
        kids[0] = kid;
        n->children = kids;
        n->n_children = 1;
        n->has_pets = 1;
        n->pets = HAVEN__PET__PET_DOG;
        codes[0] = "E07000008";
        n->exclude = codes;
        n->n_exclude = 1;
        n->near = "E07000008";
        break;
    case 1:                      /* wheelchair + NRPF near Birmingham */
        n->has_access = 1;
        n->access = HAVEN__FEATURE__FEATURE_WHEELCHAIR;
        n->has_nrpf = n->nrpf = 1;
        n->near = "E08000025";
        break;
    case 2:                      /* 19 within 30 km of London */
        n->has_age = 1;
        n->age = 19;
        n->near = "E09000001";
        n->has_within_km = 1;
        n->within_km = 30;
        break;
    case 3:                      /* any woman near Peterborough */
        n->near = "E06000031";
        break;
    default:                     /* a man with substance-use needs */
        n->gender = HAVEN__GENDER__GENDER_MAN;
        n->has_complex_needs = 1;
        n->complex_needs = HAVEN__COMPLEX__COMPLEX_SUBSTANCE_USE;
        break;
    }
}

static size_t s_req_bytes, s_req_n;

static int
s_make_search(void *arg, long i, int k, uint8_t **buf, size_t *len)
{
    (void) arg;
    Haven__Need n;
    Haven__Child kid, *kids[1];
    char *codes[1];
    s_need((int) (i + k), &n, &kid, kids, codes);
    Haven__Search s = HAVEN__SEARCH__INIT;
    s.need = &n;
    s.has_limit = 1;
    s.limit = 10;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.id = (uint64_t) i + 1;
    req.body_case = HAVEN__REQUEST__BODY_SEARCH;
    req.search = &s;
    int rc = hv_pack(&req.base, buf, len);
    s_req_bytes += *len;
    s_req_n++;
    return rc;
}

static double
s_searches(int conc, long total, double *p50, double *p99, size_t *req_avg, size_t *rep_avg)
{
    double *lat = calloc((size_t) total, sizeof *lat);
    void *ctx = zmq_ctx_new();
    s_req_bytes = s_req_n = 0;
    double rate = s_drive(ctx, s_endpoint, s_broker_z85, s_idva, conc, total, s_make_search, NULL, true, lat);
    zmq_ctx_term(ctx);
    *p50 = s_pct(lat, (size_t) total, 0.5) * 1e6;
    *p99 = s_pct(lat, (size_t) total, 0.99) * 1e6;
    *req_avg = s_req_bytes / (s_req_n ? s_req_n : 1);
    /* the size of a reply with offers, measured once through the library */
    hv_conn_t *c = s_conn(s_idva[0]);
    uint8_t *buf;
    size_t len;
    s_make_search(NULL, 3, 0, &buf, &len);
    Haven__Request *req = haven__request__unpack(NULL, len, buf);
    Haven__Reply *rep = s_call(c, req);
    *rep_avg = protobuf_c_message_get_packed_size(&rep->base);
    haven__reply__free_unpacked(rep, NULL);
    haven__request__free_unpacked(req, NULL);
    free(buf);
    hv_conn_destroy(&c);
    free(lat);
    return rate;
}

/* The transport's limit: a CURVE ROUTER that answers every request at once
 * with a reply of the search's size, and DEALER clients like ours. */
typedef struct {
    void *ctx;
    char endpoint[128];
    size_t rep_bytes;
    hv_keys_t *server;
    atomic_int stop;
} s_echo_t;

static void *
s_echo_server(void *arg)
{
    s_echo_t *e = arg;
    void *s = zmq_socket(e->ctx, ZMQ_ROUTER);
    hv_curve_server(s, e->server);
    /* no ZAP domain for the reference: a bare CURVE handshake */
    zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "", 0);
    zmq_bind(s, "tcp://127.0.0.1:*");
    size_t len = sizeof e->endpoint;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, e->endpoint, &len);
    uint8_t *reply = calloc(1, e->rep_bytes + 1);
    while (!atomic_load(&e->stop)) {
        zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        zmq_msg_recv(&id, s, 0);
        zmq_msg_recv(&body, s, 0);
        zmq_msg_send(&id, s, ZMQ_SNDMORE);
        zmq_send(s, reply, e->rep_bytes, 0);
        zmq_msg_close(&body);
    }
    free(reply);
    zmq_close(s);
    return NULL;
}

static size_t s_echo_req;

static int
s_make_echo(void *arg, long i, int k, uint8_t **buf, size_t *len)
{
    (void) arg;
    (void) i;
    (void) k;
    *buf = calloc(1, s_echo_req + 1);
    *len = s_echo_req;
    return 0;
}

static double
s_echo(int conc, long total, size_t req_bytes, size_t rep_bytes, double *p50, double *p99)
{
    static hv_keys_t *server;
    if (!server)
        server = s_keys("echo-server");
    s_echo_t e = { .ctx = zmq_ctx_new(), .rep_bytes = rep_bytes, .server = server };
    pthread_t srv;
    pthread_create(&srv, NULL, s_echo_server, &e);
    while (!e.endpoint[0]) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);    /* the server thread binds; a benchmark, not a test */
    }
    double *lat = calloc((size_t) total, sizeof *lat);
    void *ctx = zmq_ctx_new();
    s_echo_req = req_bytes;
    double rate = s_drive(ctx, e.endpoint, hv_keys_curve_public(server), s_idva, conc, total, s_make_echo, NULL,
                          false, lat);
    zmq_ctx_term(ctx);
    atomic_store(&e.stop, 1);
    pthread_join(srv, NULL);
    zmq_ctx_term(e.ctx);
    *p50 = s_pct(lat, (size_t) total, 0.5) * 1e6;
    *p99 = s_pct(lat, (size_t) total, 0.99) * 1e6;
    free(lat);
    return rate;
}

/* ---------------------------------------------------------------- visible */

/* From an agent's set to the unit in a search, and to a watch firing. */
static void
s_visibility(int samples, double *search_p50, double *search_p99, double *watch_p50, double *watch_p99)
{
    s_prov_t *pr = &s_provs[0];
    hv_conn_t *agent = s_conn(pr->keys), *idva = s_conn(s_idva[0]), *watcher = s_conn(s_idva[1]);
    double *vs = calloc((size_t) samples, sizeof *vs), *vw = calloc((size_t) samples, sizeof *vw);
    /* a watch for exactly this provider's district and kind */
    Haven__Need n = HAVEN__NEED__INIT;
    Haven__Kind kinds[1] = { pr->kind };
    n.near = (char *) brk_districts_code(s_districts, pr->unit_district[0]);
    n.has_within_km = 1;
    n.within_km = 1;
    n.kinds = kinds;
    n.n_kinds = 1;
    n.has_include_stale = n.include_stale = 1;
    Haven__WatchCreate wc = HAVEN__WATCH_CREATE__INIT;
    wc.need = &n;
    wc.for_s = 3600;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_WATCH_CREATE;
    req.watch_create = &wc;
    haven__reply__free_unpacked(s_call(watcher, &req), NULL);
    Haven__Subscribe sub = HAVEN__SUBSCRIBE__INIT;
    req.body_case = HAVEN__REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &sub;
    haven__reply__free_unpacked(s_call(watcher, &req), NULL);
    for (int i = 0; i < samples; i++) {
        Haven__UnitSet set = HAVEN__UNIT_SET__INIT;
        set.provider = pr->id;
        set.unit = "u0";
        set.status = HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
        set.version = atomic_fetch_add(&s_version, 1);
        req.body_case = HAVEN__REQUEST__BODY_UNIT_SET;
        req.unit_set = &set;
        haven__reply__free_unpacked(s_call(agent, &req), NULL);
        /* drain old notifications */
        Haven__Reply *note = NULL;
        while (hv_conn_wait_notify(watcher, 0, &note) == 0)
            haven__reply__free_unpacked(note, NULL);
        set.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
        set.version = atomic_fetch_add(&s_version, 1);
        double t0 = s_now();
        haven__reply__free_unpacked(s_call(agent, &req), NULL);
        /* visible in a search: ask until it is there */
        Haven__Search s = HAVEN__SEARCH__INIT;
        s.need = &n;
        s.has_limit = 1;
        s.limit = 1000;
        Haven__Request sreq = HAVEN__REQUEST__INIT;
        sreq.body_case = HAVEN__REQUEST__BODY_SEARCH;
        sreq.search = &s;
        for (bool seen = false; !seen;) {
            Haven__Reply *rep = s_call(idva, &sreq);
            for (size_t k = 0; k < rep->search->n_offers; k++)
                seen |= !strcmp(rep->search->offers[k]->provider_id, pr->id)
                        && !strcmp(rep->search->offers[k]->unit, "u0");
            haven__reply__free_unpacked(rep, NULL);
        }
        vs[i] = s_now() - t0;
        if (hv_conn_wait_notify(watcher, 5000, &note) == 0) {
            vw[i] = s_now() - t0;
            haven__reply__free_unpacked(note, NULL);
        } else {
            vw[i] = 5;
        }
    }
    *search_p50 = s_pct(vs, (size_t) samples, 0.5) * 1e6;
    *search_p99 = s_pct(vs, (size_t) samples, 0.99) * 1e6;
    *watch_p50 = s_pct(vw, (size_t) samples, 0.5) * 1e6;
    *watch_p99 = s_pct(vw, (size_t) samples, 0.99) * 1e6;
    free(vs);
    free(vw);
    hv_conn_destroy(&agent);
    hv_conn_destroy(&idva);
    hv_conn_destroy(&watcher);
}

/* The data for the PostgreSQL comparison: every unit with its provider's
 * rules, as the broker's index sees them. */
static void
s_write_csv(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/units.csv", s_out);
    FILE *f = fopen(path, "w");
    for (int p = 0; p < s_n_provs; p++) {
        const s_prov_t *pr = &s_provs[p];
        const Haven__Service *s = &pr->svc;
        for (int u = 0; u < pr->n_units; u++)
            fprintf(f, "%s,u%d,%d,%s,%d,%d,%d,%s,%s,%d,%d,%d,%d,%s,%s\n", pr->id, u, pr->kind,
                    brk_districts_code(s_districts, pr->unit_district[u]), pr->unit_occ[u], pr->unit_feat[u],
                    s->genders, s->trans_inclusive ? "t" : "f", s->children ? "t" : "f",
                    s->has_max_boy_age ? (int) s->max_boy_age : 99, s->pets, s->complex_needs,
                    s->has_adult_max_age ? (int) s->adult_max_age : 200, s->nrpf ? "t" : "f",
                    s_rand(10) == 0 ? "available" : "occupied");
    }
    fclose(f);
}

int
main(int argc, char **argv)
{
    char err[256], path[512];
    if (argc < 5) {
        fprintf(stderr, "usage: bench_broker BROKER DISTRICTS.csv UNITS OUTDIR [--quick]\n");
        return 64;
    }
    s_broker_bin = argv[1];
    uint32_t units = (uint32_t) strtoul(argv[3], NULL, 10);
    s_out = argv[4];
    s_quick = argc > 5 && !strcmp(argv[5], "--quick");
    if (sodium_init() < 0 || brk_districts_load(argv[2], &s_districts, err, sizeof err) < 0)
        s_die(err);
    snprintf(s_dir, sizeof s_dir, "%s/broker-%u", s_out, units);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", s_dir, s_dir);
    if (system(cmd) != 0)
        s_die("mkdir");
    snprintf(path, sizeof path, "%s/figures-%u.json", s_out, units);
    s_json = fopen(path, "w");
    fprintf(s_json, "{");

    /* the broker, its first admin, and a config sized for the load */
    char *districts_path = realpath(argv[2], NULL);
    if (!districts_path)
        s_die("the districts file is missing");
    hv_keys_t *admin = s_keys("admin");
    s_admin_keys = admin;
    snprintf(path, sizeof path, "%s/broker.conf", s_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[broker]\nbind = tcp://127.0.0.1:*\ndata_dir = %s/data\ndistricts = %s\nlog_level = warn\n"
               "[limits]\nmax_units_per_catalog = %d\nsearches_per_minute = 1000000\nmap_size_mb = 256\n"
               "writes_per_minute = 1000000\nholds_per_hour = 10000\nconnections_per_key = 1000\n"
               /* it times the alert path, flapping one unit: no coalescing */
               "[alerts]\ncoalesce = 0\n",
            s_dir, districts_path, UNITS_PER_PROVIDER_MAX);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' init --config '%s' --admin-key '%s/admin.pub' >/dev/null", s_broker_bin,
             path, s_dir);
    if (system(cmd) != 0)
        s_die("init");
    hv_pubkey_t bpub;
    snprintf(path, sizeof path, "%s/data/broker.pub", s_dir);
    if (hv_pubkey_load(path, &bpub, err, sizeof err) < 0)
        s_die(err);
    memcpy(s_broker_z85, bpub.curve, 41);
    s_start_broker();
    hv_conn_t *ac = s_conn(admin);

    fprintf(stderr, "bench: %u units: registering providers\n", units);
    s_make_world(units, ac);
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "idva-%d", i);
        s_idva[i] = s_keys(name);
        s_register(ac, admin, name, HAVEN__ROLE__ROLE_IDVA, NULL, s_idva[i]);
    }
    fprintf(stderr, "bench: publishing %d catalogs\n", s_n_provs);
    double t0 = s_now();
    for (int p = 0; p < s_n_provs; p++)
        s_publish(p);
    s_figure("units", units);
    s_figure("providers", s_n_provs);
    s_figure("publish_s", s_now() - t0);

    /* updates: acked and durable, against raw LMDB group commits */
    fprintf(stderr, "bench: updates\n");
    long per = s_quick ? 100 : 1000;
    int levels[] = { 1, 8, 64 };
    for (int l = 0; l < 3; l++) {
        double p50, p99;
        double rate = s_updates(levels[l], per * 4 > levels[l] * 20 ? per * 4 : levels[l] * 20, &p50, &p99);
        char name[64];
        snprintf(name, sizeof name, "updates_per_s_%d", levels[l]);
        s_figure(name, rate);
        snprintf(name, sizeof name, "update_p50_us_%d", levels[l]);
        s_figure(name, p50);
    }
    s_figure("raw_lmdb_per_s_group1", s_raw_lmdb(1, per * 2, units));
    s_figure("raw_lmdb_per_s_group64", s_raw_lmdb(64, per * 20, units));
    /* bring availability to about one unit in ten everywhere */
    fprintf(stderr, "bench: opening units\n");
    {
        double p50, p99;
        s_updates(64, (long) units / 5 + 64, &p50, &p99);
    }

    fprintf(stderr, "bench: searches\n");
    long sp = s_quick ? 200 : 2000;
    size_t rq = 0, rp = 0;
    double p50, p99, rate;
    rate = s_searches(1, sp, &p50, &p99, &rq, &rp);
    s_figure("search_per_s_1", rate);
    s_figure("search_p50_us_1", p50);
    s_figure("search_p99_us_1", p99);
    s_figure("search_request_bytes", (double) rq);
    s_figure("search_reply_bytes", (double) rp);
    rate = s_searches(8, sp, &p50, &p99, &rq, &rp);
    s_figure("search_per_s_8", rate);
    s_figure("search_p50_us_8", p50);
    s_figure("search_p99_us_8", p99);
    rate = s_echo(1, sp, rq, rp, &p50, &p99);
    s_figure("curve_echo_per_s_1", rate);
    s_figure("curve_echo_p50_us_1", p50);
    s_figure("curve_echo_p99_us_1", p99);
    rate = s_echo(8, sp, rq, rp, &p50, &p99);
    s_figure("curve_echo_per_s_8", rate);
    s_figure("curve_echo_p50_us_8", p50);
    s_figure("curve_echo_p99_us_8", p99);

    fprintf(stderr, "bench: update to visible\n");
    double vs50, vs99, vw50, vw99;
    s_visibility(s_quick ? 20 : 200, &vs50, &vs99, &vw50, &vw99);
    s_figure("visible_search_p50_us", vs50);
    s_figure("visible_search_p99_us", vs99);
    s_figure("visible_watch_p50_us", vw50);
    s_figure("visible_watch_p99_us", vw99);

    s_figure("broker_rss_mib", (double) s_rss_kib() / 1024.0);
    hv_conn_destroy(&ac);
    s_stop_broker();
    s_figure("restart_s", s_start_broker());
    s_figure("broker_rss_after_restart_mib", (double) s_rss_kib() / 1024.0);
    s_stop_broker();
    fprintf(s_json, "\n}\n");
    fclose(s_json);
    s_write_csv();
    hv_keys_destroy(&admin);
    for (int p = 0; p < s_n_provs; p++)
        hv_keys_destroy(&s_provs[p].keys);
    for (int i = 0; i < 8; i++)
        hv_keys_destroy(&s_idva[i]);
    free(s_provs);
    brk_districts_destroy(&s_districts);
    free(districts_path);
    return 0;
}
