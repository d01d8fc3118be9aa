/* SPDX-License-Identifier: MIT */
/* Integration test harness (see harness.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../../broker/handle_agent.h"
#include "../../common/clientcfg.h"
#include "../../common/conn.h"
#include "harness.h"

const char *
hh_program(const char *name)
{
    static char path[4][512];
    static int slot;
    const char *env = NULL;
    if (strcmp(name, "haven-broker") == 0)
        env = getenv("HAVEN_BROKER");
    else if (strcmp(name, "haven") == 0)
        env = getenv("HAVEN_CLIENT");
    else if (strcmp(name, "haven-agent") == 0)
        env = getenv("HAVEN_AGENT");
    else if (strcmp(name, "haven-admin") == 0)
        env = getenv("HAVEN_ADMIN");
    if (!env)
        return name;
    char *p = path[slot++ % 4];
    snprintf(p, 512, "%s", env);
    return p;
}

const char *
hh_districts(void)
{
    static char path[512];
    const char *dir = getenv("HAVEN_SHARED_DATA");
    snprintf(path, sizeof path, "%s/uk-local-authorities.csv", dir ? dir : "../shared/data");
    return path;
}

void
hh_write(hh_t *h, const char *name, const char *text, char *path_out, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "cannot write %s", path);
    size_t n = strlen(text);
    cr_assert(write(fd, text, n) == (ssize_t) n);
    close(fd);
    if (path_out)
        snprintf(path_out, len, "%s", path);
}

static void
s_slurp(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void
s_runv(hh_t *h, hh_result_t *r, const char *prog, char *const argv[])
{
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/.out", h->dir);
    snprintf(err, sizeof err, "%s/.err", h->dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fi = open("/dev/null", O_RDONLY);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(prog, argv);
        _exit(127);
    }
    int status;
    cr_assert(waitpid(pid, &status, 0) == pid);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    s_slurp(out, r->out, sizeof r->out);
    s_slurp(err, r->err, sizeof r->err);
}

void
hh_run(hh_t *h, hh_result_t *r, const char *prog, ...)
{
    char *argv[64];
    int n = 0;
    const char *path = hh_program(prog);
    argv[n++] = (char *) path;
    va_list ap;
    va_start(ap, prog);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63)
        argv[n++] = (char *) a;
    va_end(ap);
    argv[n] = NULL;
    s_runv(h, r, path, argv);
}

static void
s_launch(hh_t *h)
{
    int fds[2];
    char log[512];
    cr_assert(pipe(fds) == 0);
    snprintf(log, sizeof log, "%s/broker.log", h->dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (fds[1] != 3) {
            dup2(fds[1], 3);
            close(fds[1]);
        }
        int fe = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fe, 2);
        char *argv[32];
        int n = 0;
        /* HAVEN_BROKER_WRAPPER: words put in front of the broker */
        char wrap[512] = "";
        const char *w = getenv("HAVEN_BROKER_WRAPPER");
        if (w) {
            snprintf(wrap, sizeof wrap, "%s", w);
            for (char *save = NULL, *t = strtok_r(wrap, " ", &save); t && n < 24; t = strtok_r(NULL, " ", &save))
                argv[n++] = t;
        }
        argv[n++] = (char *) hh_program("haven-broker");
        argv[n++] = "--config";
        argv[n++] = h->broker_conf;
        argv[n++] = "--ready-fd";
        argv[n++] = "3";
        argv[n] = NULL;
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    h->broker = pid;
    /* Wait for the endpoint line: the broker serves once it is written. */
    struct pollfd p = { fds[0], POLLIN, 0 };
    size_t got = 0;
    char buf[128];
    while (got < sizeof buf - 1) {
        int n = poll(&p, 1, 30000);
        cr_assert(n == 1, "the broker did not report ready within 30 s (see %s)", log);
        ssize_t k = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (k <= 0)
            break;
        got += (size_t) k;
        if (memchr(buf, '\n', got))
            break;
    }
    close(fds[0]);
    buf[got] = '\0';
    char *nl = strchr(buf, '\n');
    if (!nl) {
        char text[4096];
        s_slurp(log, text, sizeof text);
        cr_assert_fail("the broker did not start: %s", text);
    }
    *nl = '\0';
    snprintf(h->endpoint, sizeof h->endpoint, "%s", buf);
}

static void
s_write_client_conf(hh_t *h, const char *name, const char *key, const char *extra, char *out, size_t len)
{
    char text[2048], path[512];
    snprintf(text, sizeof text,
             "[broker]\nendpoint = %s\npublic_key = %s/data/broker.pub\ntimeout_ms = 2000\nretries = 2\n"
             "admin_keys = %s/admin.pub\n"
             "[identity]\nkey = %s\n%s", h->endpoint, h->dir, h->dir, key, extra ? extra : "");
    snprintf(path, sizeof path, "%s.conf", name);
    hh_write(h, path, text, out, len);
}

void
hh_start(hh_t *h, const char *extra_conf)
{
    hh_result_t *r = calloc(1, sizeof *r);
    char text[2048], key[512];
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "/tmp/haven-test-XXXXXX");
    cr_assert(mkdtemp(h->dir), "mkdtemp failed");
    snprintf(text, sizeof text,
             "[broker]\nbind = tcp://127.0.0.1:*\ndata_dir = %s/data\ndistricts = %s\nlog_level = debug\n%s",
             h->dir, hh_districts(), extra_conf ? extra_conf : "");
    hh_write(h, "broker.conf", text, h->broker_conf, sizeof h->broker_conf);
    snprintf(h->extra_conf, sizeof h->extra_conf, "%s", extra_conf ? extra_conf : "");
    snprintf(key, sizeof key, "%s/admin", h->dir);
    hh_run(h, r, "haven-admin", "keygen", "--out", key, NULL);
    cr_assert_eq(r->code, 0, "keygen: %s", r->err);
    snprintf(key, sizeof key, "%s/admin.pub", h->dir);
    hh_run(h, r, "haven-broker", "init", "--config", h->broker_conf, "--admin-key", key, NULL);
    cr_assert_eq(r->code, 0, "init: %s", r->err);
    free(r);
    s_launch(h);
    snprintf(key, sizeof key, "%s/admin.key", h->dir);
    s_write_client_conf(h, "admin", key, NULL, h->admin_conf, sizeof h->admin_conf);
}

void
hh_stop(hh_t *h)
{
    if (h->broker <= 0)
        return;
    int status;
    kill(h->broker, SIGTERM);
    cr_assert(waitpid(h->broker, &status, 0) == h->broker);
    h->broker = 0;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        /* Criterion ignores a failed assertion in a suite's .fini, where
         * most tests stop their broker; abort() is what makes the run fail
         * there (a leak found by ASan at exit lands here). */
        char log[600];
        snprintf(log, sizeof log, "tail -40 '%s/broker.log' >&2", h->dir);
        fprintf(stderr, "the broker did not exit cleanly on SIGTERM (status %d); its log ends:\n", status);
        if (system(log) != 0) {
        }
        abort();
    }
}

void
hh_crash(hh_t *h)
{
    if (h->broker <= 0)
        return;
    kill(h->broker, SIGKILL);
    cr_assert(waitpid(h->broker, NULL, 0) == h->broker);
    h->broker = 0;
}

long
hh_broker_rss_kib(hh_t *h)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int) h->broker);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

void
hh_restart(hh_t *h)
{
    char text[2048];
    hh_stop(h);
    /* Same port, so the clients' configs stay right. */
    snprintf(text, sizeof text,
             "[broker]\nbind = %s\ndata_dir = %s/data\ndistricts = %s\nlog_level = debug\n%s",
             h->endpoint, h->dir, hh_districts(), h->extra_conf);
    hh_write(h, "broker.conf", text, NULL, 0);
    s_launch(h);
}

void
hh_restore(hh_t *h, const char *backup_name)
{
    char cmd[2048];
    hh_stop(h);
    snprintf(cmd, sizeof cmd, "cd '%s' && rm -rf data.old && mv data data.old && mkdir -m 700 data && "
             "cp data.old/broker.key data.old/broker.pub data/ && cp '%s' data/data.mdb", h->dir, backup_name);
    cr_assert_eq(system(cmd), 0, "restoring %s failed", backup_name);
}

void
hh_mark_restored(hh_t *h)
{
    char dir[320];
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    brk_ctx_t ctx;
    cr_assert_eq(h->broker, 0, "stop the broker first");
    snprintf(dir, sizeof dir, "%s/data", h->dir);
    cr_assert_eq(brk_store_open(dir, 1 << 20, &store), 0);
    memset(&ctx, 0, sizeof ctx);
    ctx.store = store;
    ctx.now = (int64_t) time(NULL);
    cr_assert_eq(brk_store_begin(store, NULL, true, &txn), 0);
    cr_assert_geq(brk_providers_mark_unsynced(&ctx, txn), 0);
    cr_assert_eq(brk_store_commit(txn), 0);
    free(ctx.dirty);
    brk_store_destroy(&store);
}

void
hh_cleanup(hh_t *h)
{
    if (h->broker > 0) {
        kill(h->broker, SIGKILL);
        waitpid(h->broker, NULL, 0);
        h->broker = 0;
    }
    if (h->dir[0] && !getenv("HAVEN_KEEP_TEST_DIRS")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        if (system(cmd) != 0) {
        }
    }
}

void
hh_unregistered(hh_t *h, const char *name, char *conf_out, size_t len)
{
    hh_result_t *r = calloc(1, sizeof *r);
    char key[512];
    snprintf(key, sizeof key, "%s/%s", h->dir, name);
    hh_run(h, r, "haven", "keygen", "--out", key, NULL);
    cr_assert_eq(r->code, 0, "keygen: %s", r->err);
    free(r);
    snprintf(key, sizeof key, "%s/%s.key", h->dir, name);
    s_write_client_conf(h, name, key, NULL, conf_out, len);
}

void
hh_principal(hh_t *h, const char *role, const char *name, const char *provider,
             char *conf_out, size_t len)
{
    hh_result_t *r = calloc(1, sizeof *r);
    char pub[512], extra[1024] = "";
    hh_unregistered(h, name, conf_out, len);
    snprintf(pub, sizeof pub, "%s/%s.pub", h->dir, name);
    if (provider)
        hh_run(h, r, "haven-admin", "--config", h->admin_conf, "principal", "add", "--role", role,
               "--name", name, "--public-key", pub, "--provider", provider, NULL);
    else if (strcmp(role, "oncall") == 0)     /* on-call officers cover a region */
        hh_run(h, r, "haven-admin", "--config", h->admin_conf, "principal", "add", "--role", role,
               "--name", name, "--public-key", pub, "--region", "East of England", NULL);
    else
        hh_run(h, r, "haven-admin", "--config", h->admin_conf, "principal", "add", "--role", role,
               "--name", name, "--public-key", pub, NULL);
    cr_assert_eq(r->code, 0, "principal add %s: %s", name, r->err);
    if (provider) {
        char key[512];
        snprintf(extra, sizeof extra, "[agent]\nprovider = %s\ncatalog = %s/%s.ini\nstate_dir = %s/%s-state\n",
                 provider, h->dir, provider, h->dir, name);
        snprintf(key, sizeof key, "%s/%s.key", h->dir, name);
        s_write_client_conf(h, name, key, extra, conf_out, len);
    }
    free(r);
}

void
hh_provider(hh_t *h, const char *id, const char *kind, const char *district,
            const char *catalog, char *conf_out, size_t len)
{
    hh_result_t *r = calloc(1, sizeof *r);
    char name[128], file[160];
    hh_run(h, r, "haven-admin", "--config", h->admin_conf, "provider", "add", "--id", id,
           "--name", id, "--kind", kind, "--district", district, "--phone", "01000 000000", NULL);
    cr_assert_eq(r->code, 0, "provider add %s: %s", id, r->err);
    free(r);
    snprintf(name, sizeof name, "%s-agent", id);
    hh_principal(h, "agent", name, id, conf_out, len);
    snprintf(file, sizeof file, "%s.ini", id);
    hh_write(h, file, catalog, NULL, 0);
}

pid_t
hh_spawn(hh_t *h, int *out_fd, const char *prog, ...)
{
    char *argv[64];
    int n = 0, fds[2];
    const char *path = hh_program(prog);
    argv[n++] = (char *) path;
    va_list ap;
    va_start(ap, prog);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63)
        argv[n++] = (char *) a;
    va_end(ap);
    argv[n] = NULL;
    cr_assert(pipe(fds) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char log[512];
        snprintf(log, sizeof log, "%s/spawned-%d.log", h->dir, (int) getpid());
        int fe = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fi = open("/dev/null", O_RDONLY);
        dup2(fi, 0);
        dup2(fds[1], 1);
        dup2(fe, 2);
        close(fds[0]);
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

bool
hh_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t got = 0;
    while (got < len - 1) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) != 1)
            return false;
        ssize_t k = read(fd, buf + got, 1);
        if (k <= 0)
            return false;
        if (buf[got] == '\n')
            break;
        got++;
    }
    buf[got] = '\0';
    return true;
}

json_t *
hh_json(const hh_result_t *r)
{
    json_error_t e;
    json_t *doc = json_loads(r->out, 0, &e);
    cr_assert(doc, "not JSON: %s (stderr %s)", r->out, r->err);
    return doc;
}

void
hh_identity(const char *conf, hh_id_t *id)
{
    char err[512];
    cr_assert(hv_clientcfg_load(conf, &id->cfg, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_keys_load(id->cfg->key, &id->keys, err, sizeof err) == 0, "%s", err);
    cr_assert(hv_pubkey_load(id->cfg->broker_key, &id->broker, err, sizeof err) == 0, "%s", err);
    id->conn = hv_conn_new(id->cfg->endpoint, id->broker.curve, id->keys, 10000, 1);
    cr_assert_not_null(id->conn);
}

void
hh_identity_free(hh_id_t *id)
{
    hv_conn_destroy(&id->conn);
    hv_keys_destroy(&id->keys);
    hv_clientcfg_destroy(&id->cfg);
}
