/* SPDX-License-Identifier: MIT */
/* Hot backups through the real programs: backups taken while agents write
 * fast enough to grow a small map keep every write acknowledged before
 * they began, verify and restore; a backup nobody fetches answers a later
 * one with a clear sentence. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../../broker/store.h"
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "../../common/keys.h"
#include "harness.h"

static hh_t h;
static hh_result_t r;
static char agent[512], idva[512];

#define THREADS 4
#define UNITS_PER_THREAD 4
#define UNITS (THREADS * UNITS_PER_THREAD)

static void
s_world(const char *extra)
{
    char catalog[4096];
    int n = snprintf(catalog, sizeof catalog, "[service]\ngenders = women\nconfirm_every = 24h\n");
    for (int i = 0; i < UNITS; i++)
        n += snprintf(catalog + n, sizeof catalog - (size_t) n, "[unit u%d]\nmax_occupants = 2\n", i);
    hh_start(&h, extra);
    hh_provider(&h, "refuge-a", "refuge", "E07000008", catalog, agent, sizeof agent);
    hh_principal(&h, "idva", "idva-1", NULL, idva, sizeof idva);
    hh_run(&h, &r, "haven-agent", "--config", agent, "publish", NULL);
    cr_assert_eq(r.code, 0, "publish: %s", r.err);
}

/* A 1 MiB map, and no rate limit in the way of a fast writer. */
static void setup(void) { s_world("[limits]\nmap_size_mb = 1\nwrites_per_minute = 1000000\n"); }
static void teardown(void) { hh_stop(&h); hh_cleanup(&h); }
TestSuite(backup, .init = setup, .fini = teardown, .timeout = 600);

/* ---------------------------------------------------------------- writers */

static int
s_status_of(uint64_t version)
{
    return version % 3 == 0 ? HAVEN__UNIT_STATUS__UNIT_OUT_OF_SERVICE
         : version % 3 == 1 ? HAVEN__UNIT_STATUS__UNIT_AVAILABLE : HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
}

static atomic_uint_fast64_t s_version = 1;
static uint64_t s_acked[UNITS];    /* highest acknowledged version per unit */
static atomic_long s_writes;       /* acknowledged */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int s_stop;
static hh_id_t s_agent_id;

static void *
s_stream(void *arg)
{
    int t = (int) (intptr_t) arg;
    /* a patient client: a write may wait for a growth that waits for a copy */
    hv_conn_t *c = hv_conn_new(s_agent_id.cfg->endpoint, s_agent_id.broker.curve, s_agent_id.keys, 5000, 3);
    cr_assert(c);
    for (int k = 0; !atomic_load(&s_stop); k++) {
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
            continue;            /* not acknowledged: nothing is owed */
        bool ok = rep->status == HAVEN__STATUS__STATUS_OK && !(rep->unit_set && rep->unit_set->ignored);
        haven__reply__free_unpacked(rep, NULL);
        if (!ok)
            continue;
        pthread_mutex_lock(&s_lock);
        if (set.version > s_acked[unit])
            s_acked[unit] = set.version;
        pthread_mutex_unlock(&s_lock);
        atomic_fetch_add(&s_writes, 1);
    }
    hv_conn_destroy(&c);
    return NULL;
}

static void
s_snapshot(uint64_t out[UNITS])
{
    pthread_mutex_lock(&s_lock);
    memcpy(out, s_acked, sizeof s_acked);
    pthread_mutex_unlock(&s_lock);
}

/* Each unit in the store at path (a backup file or a data directory) has
 * at least the version acknowledged before, and the status that goes with
 * its version. */
static void
s_check_copy(const char *path, const uint64_t before[UNITS])
{
    brk_store_t *st = NULL;
    MDB_txn *txn = NULL;
    cr_assert_eq(brk_store_open_copy(path, &st), 0, "%s does not open as a store", path);
    cr_assert_eq(brk_store_begin(st, NULL, false, &txn), 0);
    for (int i = 0; i < UNITS; i++) {
        char name[16], key[64];
        snprintf(name, sizeof name, "u%d", i);
        int klen = brk_unit_key("refuge-a", name, key, sizeof key);
        cr_assert_gt(klen, 0);
        ProtobufCMessage *m = NULL;
        cr_assert_eq(brk_store_get_msg(st, txn, BRK_DB_UNITS, key, (size_t) klen, &haven__unit__descriptor, &m), 0,
                     "%s has no unit %s", path, name);
        const Haven__Unit *u = (const Haven__Unit *) m;
        cr_assert_geq(u->version, before[i], "%s lost the acknowledged version %llu of %s (has %llu)", path,
                      (unsigned long long) before[i], name, (unsigned long long) u->version);
        if (u->version)
            cr_assert_eq((int) u->status, s_status_of(u->version), "%s: %s's status is not its version's",
                         path, name);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    brk_store_abort(txn);
    brk_store_destroy(&st);
}

/* How many times the broker's log says the map grew. */
static int
s_growths(void)
{
    char path[512], line[1024];
    int n = 0;
    snprintf(path, sizeof path, "%s/broker.log", h.dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "grown"))
            n++;
    fclose(f);
    return n;
}

static bool
s_log_says(const char *what)
{
    char path[512], line[1024];
    bool found = false;
    snprintf(path, sizeof path, "%s/broker.log", h.dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

/* Backups, one after another, while four agents write as fast as the
 * broker acknowledges; the audit log grows with every write, so the 1 MiB
 * map must grow (to 8 MiB) under them. Each backup verifies, holds every
 * write acknowledged before it began, and the last restores. */
Test(backup, backups_during_writes_that_grow_the_map_keep_every_acknowledged_write)
{
    cr_assert(sodium_init() >= 0);
    hh_identity(agent, &s_agent_id);
    pthread_t th[THREADS];
    for (intptr_t t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, s_stream, (void *) t), 0);

    uint64_t before[UNITS];
    char backup[512];
    int backups = 0;
    time_t give_up = time(NULL) + 300;
    while (backups < 4 || s_growths() < 3) {
        cr_assert_lt(time(NULL), give_up, "after 5 minutes: %d backups, %d growths, %ld writes", backups,
                     s_growths(), atomic_load(&s_writes));
        s_snapshot(before);
        snprintf(backup, sizeof backup, "%s/backup-%d.mdb", h.dir, backups);
        hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", backup, NULL);
        cr_assert_eq(r.code, 0, "backup %d: %s", backups, r.err);
        hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "audit", "verify", "--data-dir", backup, NULL);
        cr_assert_eq(r.code, 0, "backup %d does not verify: %s%s", backups, r.out, r.err);
        s_check_copy(backup, before);
        backups++;
    }
    atomic_store(&s_stop, 1);
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_join(th[t], NULL), 0);
    cr_log_info("%d backups, %ld acknowledged writes, %d growths%s", backups, atomic_load(&s_writes),
                s_growths(), s_log_says("waits for the backup copy") ? ", one waiting for a copy" : "");

    /* The live store kept every acknowledged write. */
    uint64_t acked[UNITS];
    char data[512];
    s_snapshot(acked);
    hh_stop(&h);
    snprintf(data, sizeof data, "%s/data", h.dir);
    s_check_copy(data, acked);

    /* The README's restore of the last backup: what it held is served. */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && mv data data.old && mkdir -m 700 data && "
             "cp data.old/broker.key data.old/broker.pub data/ && cp '%s' data/data.mdb", h.dir, backup);
    cr_assert_eq(system(cmd), 0);
    hh_restart(&h);
    hh_run(&h, &r, "haven", "--config", idva, "--json", "search", "--include-stale", NULL);
    cr_assert_eq(r.code, 0, "search after restore: %s", r.err);
    hh_stop(&h);
    s_check_copy(data, before);
    hh_restart(&h);
    hh_identity_free(&s_agent_id);
}

/* ---------------------------------------------------------------- unfetched */

static char *
s_backup_start(hv_conn_t *c)
{
    Haven__BackupStart start = HAVEN__BACKUP_START__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_BACKUP_START;
    req.backup_start = &start;
    Haven__Reply *rep = NULL;
    cr_assert_eq(hv_conn_call(c, &req, &rep), 0);
    cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "%s", rep->error ? rep->error : "");
    char *id = strdup(rep->backup->backup);
    haven__reply__free_unpacked(rep, NULL);
    return id;
}

/* Fetch a backup to its end; returns its size. */
static uint64_t
s_backup_fetch(hv_conn_t *c, const char *id)
{
    uint64_t offset = 0;
    for (;;) {
        Haven__BackupFetch fetch = HAVEN__BACKUP_FETCH__INIT;
        fetch.backup = (char *) id;
        fetch.offset = offset;
        Haven__Request req = HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_BACKUP_FETCH;
        req.backup_fetch = &fetch;
        Haven__Reply *rep = NULL;
        cr_assert_eq(hv_conn_call(c, &req, &rep), 0);
        cr_assert_eq(rep->status, HAVEN__STATUS__STATUS_OK, "%s", rep->error ? rep->error : "");
        const Haven__BackupChunk *b = rep->backup;
        bool eof = b->ready && b->eof;
        offset += b->ready ? b->data.len : 0;
        haven__reply__free_unpacked(rep, NULL);
        if (eof)
            return offset;
    }
}

/* A client that started a backup and went away: the next one is told, in
 * a sentence, that one is being made or fetched (exit 75), and nothing is
 * left at --out; once the first is fetched, the next goes through. (That
 * an unfetched one is discarded after a minute is a unit test's, with a
 * clock it drives.) */
Test(backup, a_backup_nobody_fetches_is_a_clear_conflict_for_the_next)
{
    hh_id_t admin;
    char out[512];
    cr_assert(sodium_init() >= 0);
    hh_identity(h.admin_conf, &admin);
    hv_conn_t *c = hv_conn_new(admin.cfg->endpoint, admin.broker.curve, admin.keys, 5000, 1);
    cr_assert(c);
    char *id = s_backup_start(c);

    snprintf(out, sizeof out, "%s/second.mdb", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", out, NULL);
    cr_assert_eq(r.code, 75, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "haven-admin: a backup is already being made or fetched"), "%s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
    cr_assert_neq(access(out, F_OK), 0, "a failed backup leaves no file at --out");

    cr_assert_gt(s_backup_fetch(c, id), 0);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "backup", "--out", out, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    free(id);
    hv_conn_destroy(&c);
    hh_identity_free(&admin);
}

/* --json output is JSON whatever the path: a quote or backslash in --out
 * is escaped, not printed raw. */
Test(backup, json_output_escapes_the_path_it_names)
{
    char out[512];
    snprintf(out, sizeof out, "%s/a \"quoted\\ name.mdb", h.dir);
    hh_run(&h, &r, "haven-admin", "--config", h.admin_conf, "--json", "backup", "--out", out, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *doc = hh_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "backup")), out);
    cr_assert_gt(json_integer_value(json_object_get(doc, "bytes")), 0);
    json_decref(doc);
}
