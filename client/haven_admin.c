/* SPDX-License-Identifier: MIT */
/* haven-admin: the administrator's command. Providers and principals. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <time.h>
#include "../proto/cli.h"
#include "../proto/keys.h"
#include "../proto/names.h"
#include "../proto/wire.h"
#include "../broker/audit.h"
#include "../broker/store.h"

#define PROG "haven-admin"

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: haven-admin [--config FILE] [--json] COMMAND\n"
            "\n"
            "commands:\n"
            "  keygen --out PATH\n"
            "  provider add --id ID --name NAME --kind refuge|dispersed|hostel|emergency\n"
            "               --district CODE [--phone PHONE]\n"
            "  provider list\n"
            "  principal add --role agent|idva|oncall|admin --name NAME --public-key FILE\n"
            "                [--provider ID]   (agents: the provider they speak for)\n"
            "                [--region REGION] (on-call: the region it covers, e.g. \"East of England\")\n"
            "  principal list\n"
            "  principal revoke NAME\n"
            "  backup --out FILE              a hot, compacted copy of the broker's store\n"
            "  audit verify [--data-dir DIR]  check the audit log's hash chain (DIR: a copy of a\n"
            "                                 store, e.g. a restored backup, checked offline)\n"
            "  audit show [--since YYYY-MM-DD] [--principal NAME]\n"
            "  report unmet|declines|occupancy|stale [--from YYYY-MM-DD] [--to YYYY-MM-DD]\n"
            "         [--csv] [--chart FILE.svg]   aggregates only: no survivor data\n"
            "\n"
            "options:\n"
            "  --config FILE   client configuration (default $HAVEN_CONFIG)\n"
            "  --json          machine-readable output on stdout\n"
            "  --help, --version\n");
}

typedef struct {
    const char *id, *name, *kind, *district, *phone, *role, *public_key, *provider, *region;
    const char *data_dir, *since, *principal, *from, *to, *chart;
    bool csv;
} s_args_t;



static int
s_provider_add(hv_cli_t *cli, const s_args_t *a, bool json)
{
    if (!a->id || !a->name || !a->kind || !a->district) {
        hv_cli_error(PROG, "provider add needs --id, --name, --kind and --district");
        return EX_USAGE;
    }
    int kind = hv_kind_parse(a->kind);
    if (kind <= 0) {
        hv_cli_error(PROG, "--kind must be refuge, dispersed, hostel or emergency, not '%s'", a->kind);
        return EX_USAGE;
    }
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    p.id = (char *) a->id;
    p.name = (char *) a->name;
    p.kind = kind;
    p.district = (char *) a->district;
    p.phone = (char *) a->phone;
    Haven__ProviderAdd add = HAVEN__PROVIDER_ADD__INIT;
    add.provider = &p;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PROVIDER_ADD;
    req.provider_add = &add;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        hv_json_print(json_pack("{s:s}", "added", a->id));
    else
        printf("added provider %s\n", a->id);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_provider_list(hv_cli_t *cli, bool json)
{
    Haven__ProviderList list = HAVEN__PROVIDER_LIST__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PROVIDER_LIST;
    req.provider_list = &list;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__ProviderListReply *l = rep->providers;
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n_providers; i++) {
        const Haven__Provider *p = l->providers[i];
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:i, s:b}",
                                                 "id", p->id, "name", p->name, "kind", hv_kind_name(p->kind),
                                                 "district", p->district, "phone", p->phone,
                                                 "units", (int) p->units, "published", p->service != NULL));
        else
            printf("%-28s %-10s %-10s %4u units%s  %s\n", p->id, hv_kind_name(p->kind), p->district,
                   p->units, p->service ? "" : " (no catalog yet)", p->name);
    }
    if (json)
        hv_json_print(json_pack("{s:o}", "providers", arr));
    else
        json_decref(arr);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_principal_add(hv_cli_t *cli, const s_args_t *a, bool json)
{
    char err[512];
    hv_pubkey_t key;
    if (!a->role || !a->name || !a->public_key) {
        hv_cli_error(PROG, "principal add needs --role, --name and --public-key");
        return EX_USAGE;
    }
    int role = hv_role_parse(a->role);
    if (role <= 0) {
        hv_cli_error(PROG, "--role must be agent, idva, oncall or admin, not '%s'", a->role);
        return EX_USAGE;
    }
    if (role == HAVEN__ROLE__ROLE_AGENT && !a->provider) {
        hv_cli_error(PROG, "an agent needs --provider ID: the provider it speaks for");
        return EX_USAGE;
    }
    if (role != HAVEN__ROLE__ROLE_AGENT && a->provider) {
        hv_cli_error(PROG, "--provider goes only with --role agent");
        return EX_USAGE;
    }
    if (role != HAVEN__ROLE__ROLE_ONCALL && a->region) {
        hv_cli_error(PROG, "--region goes only with --role oncall");
        return EX_USAGE;
    }
    if (role == HAVEN__ROLE__ROLE_ONCALL && !a->region) {
        hv_cli_error(PROG, "an on-call officer needs --region REGION: the region it covers, as the "
                     "districts table names it (e.g. \"East of England\")");
        return EX_USAGE;
    }
    if (hv_pubkey_load(a->public_key, &key, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_DATAERR;
    }
    Haven__Principal p = HAVEN__PRINCIPAL__INIT;
    p.name = (char *) a->name;
    p.role = role;
    p.curve_key.len = 32;
    p.curve_key.data = key.curve_raw;
    p.has_seal_key = 1;
    p.seal_key.len = 32;
    p.seal_key.data = key.seal;
    p.provider = (char *) a->provider;
    p.region = (char *) a->region;
    Haven__PrincipalAdd add = HAVEN__PRINCIPAL_ADD__INIT;
    add.principal = &p;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_ADD;
    req.principal_add = &add;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        hv_json_print(json_pack("{s:s, s:s}", "added", a->name, "role", a->role));
    else
        printf("added %s %s%s%s\n", a->role, a->name, a->provider ? " for " : "",
               a->provider ? a->provider : "");
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_principal_list(hv_cli_t *cli, bool json)
{
    Haven__PrincipalList list = HAVEN__PRINCIPAL_LIST__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_LIST;
    req.principal_list = &list;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__PrincipalListReply *l = rep->principals;
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n_principals; i++) {
        const Haven__Principal *p = l->principals[i];
        char z85[41] = "";
        if (p->curve_key.len == 32)
            hv_z85_encode32(p->curve_key.data, z85);
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:s}", "name", p->name,
                                                 "role", hv_role_name(p->role), "provider", p->provider,
                                                 "region", p->region && *p->region ? p->region : NULL,
                                                 "revoked", p->revoked, "public_key", z85));
        else
            printf("%-24s %-7s %-24s %s%s\n", p->name, hv_role_name(p->role),
                   p->provider && *p->provider ? p->provider : p->region && *p->region ? p->region : "-",
                   z85, p->revoked ? "  REVOKED" : "");
    }
    if (json)
        hv_json_print(json_pack("{s:o}", "principals", arr));
    else
        json_decref(arr);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_principal_revoke(hv_cli_t *cli, const char *name, bool json)
{
    Haven__PrincipalRevoke rv = HAVEN__PRINCIPAL_REVOKE__INIT;
    rv.name = (char *) name;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_REVOKE;
    req.principal_revoke = &rv;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        hv_json_print(json_pack("{s:s}", "revoked", name));
    else
        printf("revoked %s: the key is refused from now on\n", name);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_backup(hv_cli_t *cli, const char *out, bool json)
{
    Haven__BackupStart start = HAVEN__BACKUP_START__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_BACKUP_START;
    req.backup_start = &start;
    Haven__Reply *rep = NULL;
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        hv_cli_error(PROG, "cannot create %s: %s", out, strerror(errno));
        return EX_CANTCREAT;
    }
    int rc = hv_cli_call(cli, &req, &rep);
    if (rc != EX_OK)
        goto fail;
    char id[17];
    snprintf(id, sizeof id, "%s", rep->backup->backup);
    haven__reply__free_unpacked(rep, NULL);
    uint64_t offset = 0, size = 0;
    for (;;) {
        Haven__BackupFetch fetch = HAVEN__BACKUP_FETCH__INIT;
        fetch.backup = id;
        fetch.offset = offset;
        req.body_case = HAVEN__REQUEST__BODY_BACKUP_FETCH;
        req.backup_fetch = &fetch;
        if ((rc = hv_cli_call(cli, &req, &rep)) != EX_OK)
            goto fail;
        const Haven__BackupChunk *c = rep->backup;
        if (!c->ready) {
            /* the broker is still copying: ask again shortly */
            haven__reply__free_unpacked(rep, NULL);
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        size = c->size;
        bool eof = c->eof;
        if (c->data.len && write(fd, c->data.data, c->data.len) != (ssize_t) c->data.len) {
            hv_cli_error(PROG, "cannot write %s: %s", out, strerror(errno));
            haven__reply__free_unpacked(rep, NULL);
            rc = EX_IOERR;
            goto fail;
        }
        offset += c->data.len;
        haven__reply__free_unpacked(rep, NULL);
        if (eof)
            break;
    }
    if (offset != size || fsync(fd) < 0) {
        hv_cli_error(PROG, "the backup arrived incomplete (%llu of %llu bytes)",
                     (unsigned long long) offset, (unsigned long long) size);
        rc = EX_IOERR;
        goto fail;
    }
    close(fd);
    if (json)
        printf("{\"backup\": \"%s\", \"bytes\": %llu}\n", out, (unsigned long long) size);
    else
        printf("wrote %s (%llu bytes): a copy of data.mdb; see the README to restore it\n", out,
               (unsigned long long) size);
    return EX_OK;
fail:
    close(fd);
    unlink(out);
    return rc;
}

static int
s_date(const char *opt, const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = s ? strptime(s, "%Y-%m-%d", &tm) : NULL;
    if (!end || *end) {
        hv_cli_error(PROG, "%s must be a date as YYYY-MM-DD, not '%s'", opt, s ? s : "");
        return -1;
    }
    *out = (int64_t) timegm(&tm);
    return 0;
}

static int
s_audit_verify_offline(const char *dir, bool json)
{
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    uint64_t records = 0, bad = 0;
    char problem[256];
    int rc = brk_store_open_copy(dir, &store);
    if (rc < 0) {
        hv_cli_error(PROG, "cannot open the store in %s: %s", dir, strerror(-rc));
        return EX_NOINPUT;
    }
    if ((rc = brk_store_begin(store, NULL, false, &txn)) == 0) {
        rc = brk_audit_verify(store, txn, &records, &bad, problem, sizeof problem);
        brk_store_abort(txn);
    }
    brk_store_destroy(&store);
    if (rc < 0 && rc != -EILSEQ) {
        hv_cli_error(PROG, "cannot read the audit log in %s: %s", dir, strerror(-rc));
        return EX_IOERR;
    }
    if (json)
        printf("{\"ok\": %s, \"records\": %llu%s%llu}\n", rc == 0 ? "true" : "false",
               (unsigned long long) records, rc == 0 ? "" : ", \"first_bad\": ", rc == 0 ? 0ULL : (unsigned long long) bad);
    if (rc == 0) {
        if (!json)
            printf("audit log intact: %llu records\n", (unsigned long long) records);
        return EX_OK;
    }
    hv_cli_error(PROG, "audit log check FAILED at record %llu: %s", (unsigned long long) bad, problem);
    return EX_DATAERR;
}

static int
s_audit_verify(hv_cli_t *cli, bool json)
{
    Haven__AuditVerify v = HAVEN__AUDIT_VERIFY__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AUDIT_VERIFY;
    req.audit_verify = &v;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_call(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__AuditVerifyReply *a = rep->audit_verify;
    if (json)
        printf("{\"ok\": %s, \"records\": %llu}\n", a->ok ? "true" : "false", (unsigned long long) a->records);
    if (a->ok) {
        if (!json)
            printf("audit log intact: %llu records\n", (unsigned long long) a->records);
    } else {
        hv_cli_error(PROG, "audit log check FAILED at record %llu: %s", (unsigned long long) a->first_bad,
                     a->problem ? a->problem : "");
        rc = EX_DATAERR;
    }
    haven__reply__free_unpacked(rep, NULL);
    return rc;
}

static int
s_audit_show(hv_cli_t *cli, const s_args_t *a, bool json)
{
    Haven__AuditShow show = HAVEN__AUDIT_SHOW__INIT;
    if (a->since) {
        show.has_since = 1;
        if (s_date("--since", a->since, &show.since) < 0)
            return EX_USAGE;
    }
    show.principal = (char *) a->principal;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AUDIT_SHOW;
    req.audit_show = &show;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < rep->audit_show->n_records; i++) {
        const Haven__AuditRecord *r = rep->audit_show->records[i];
        char when[32];
        hv_format_time(r->at, when, sizeof when);
        if (json)
            json_array_append_new(arr, json_pack("{s:I, s:s, s:s?, s:s, s:s?, s:s, s:s?}", "seq", (json_int_t) r->seq,
                                                 "at", when, "principal", r->principal, "role", hv_role_name(r->role),
                                                 "action", r->action, "outcome", hv_status_name(r->outcome),
                                                 "detail", r->detail));
        else
            printf("%6llu %s %-16s %-7s %-16s %-12s %s\n", (unsigned long long) r->seq, when,
                   r->principal ? r->principal : "", hv_role_name(r->role), r->action ? r->action : "",
                   hv_status_name(r->outcome), r->detail ? r->detail : "");
    }
    if (json)
        hv_json_print(json_pack("{s:o}", "records", arr));
    else
        json_decref(arr);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

/* A bar chart of a report as SVG: one bar per label, summing value. */
static int
s_chart(const char *path, const char *title, const Haven__ReportReply *rep, int label_col, int value_col)
{
    char *labels[256];
    double values[256];
    int n = 0;
    for (size_t i = 0; i < rep->n_rows; i++) {
        const Haven__ReportRow *row = rep->rows[i];
        if ((size_t) label_col >= row->n_cells || (size_t) value_col >= row->n_cells)
            continue;
        int k;
        for (k = 0; k < n; k++)
            if (strcmp(labels[k], row->cells[label_col]) == 0)
                break;
        if (k == n) {
            if (n == 256)
                continue;
            labels[n] = row->cells[label_col];
            values[n++] = 0;
        }
        values[k] += atof(row->cells[value_col]);
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        hv_cli_error(PROG, "cannot write %s: %s", path, strerror(errno));
        return EX_CANTCREAT;
    }
    double max = 1;
    for (int k = 0; k < n; k++)
        if (values[k] > max)
            max = values[k];
    int bar = 28, left = 220, width = 480, height = 60 + n * (bar + 8);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"13\">\n", left + width + 80, height);
    fprintf(f, "<text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", title);
    for (int k = 0; k < n; k++) {
        int y = 44 + k * (bar + 8);
        int w = (int) (values[k] / max * width);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + bar / 2 + 5);
        for (const char *c = labels[k]; *c; c++)   /* escape for XML */
            fputs(*c == '<' ? "&lt;" : *c == '&' ? "&amp;" : *c == '>' ? "&gt;" : (char[2]) { *c, 0 }, f);
        fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#5b6fb3\"/>\n",
                left, y, w > 0 ? w : 1, bar);
        fprintf(f, "<text x=\"%d\" y=\"%d\">%g</text>\n", left + w + 6, y + bar / 2 + 5, values[k]);
    }
    fprintf(f, "</svg>\n");
    fclose(f);
    return EX_OK;
}

static int
s_report(hv_cli_t *cli, const char *name, const s_args_t *a, bool json)
{
    Haven__Report q = HAVEN__REPORT__INIT;
    q.name = (char *) name;
    if (a->from && (q.has_from = 1) && s_date("--from", a->from, &q.from) < 0)
        return EX_USAGE;
    if (a->to && (q.has_to = 1) && s_date("--to", a->to, &q.to) < 0)
        return EX_USAGE;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_REPORT;
    req.report = &q;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    const Haven__ReportReply *t = rep->report;
    if (json) {
        json_t *rows = json_array();
        for (size_t i = 0; i < t->n_rows; i++) {
            json_t *o = json_object();
            for (size_t c = 0; c < t->n_columns && c < t->rows[i]->n_cells; c++) {
                const char *v = t->rows[i]->cells[c];
                char *end;
                long long n = strtoll(v, &end, 10);
                json_object_set_new(o, t->columns[c], *v && !*end ? json_integer(n) : json_string(v));
            }
            json_array_append_new(rows, o);
        }
        hv_json_print(json_pack("{s:s, s:o}", "report", name, "rows", rows));
    } else if (a->csv) {
        for (size_t c = 0; c < t->n_columns; c++)
            printf("%s%s", c ? "," : "", t->columns[c]);
        putchar('\n');
        for (size_t i = 0; i < t->n_rows; i++) {
            for (size_t c = 0; c < t->rows[i]->n_cells; c++) {
                const char *v = t->rows[i]->cells[c];
                if (strpbrk(v, ",\"\n")) {
                    putchar('"');
                    for (; *v; v++)
                        printf(*v == '"' ? "\"\"" : "%c", *v);
                    putchar('"');
                } else {
                    fputs(v, stdout);
                }
                putchar(c + 1 < t->rows[i]->n_cells ? ',' : '\n');
            }
        }
    } else {
        if (t->n_rows == 0)
            printf("(nothing to report)\n");
        size_t w[16] = { 0 };
        for (size_t c = 0; c < t->n_columns && c < 16; c++) {
            w[c] = strlen(t->columns[c]);
            for (size_t i = 0; i < t->n_rows; i++)
                if (c < t->rows[i]->n_cells && strlen(t->rows[i]->cells[c]) > w[c])
                    w[c] = strlen(t->rows[i]->cells[c]);
        }
        for (size_t c = 0; t->n_rows && c < t->n_columns && c < 16; c++)
            printf("%-*s  ", (int) w[c], t->columns[c]);
        if (t->n_rows)
            putchar('\n');
        for (size_t i = 0; i < t->n_rows; i++) {
            for (size_t c = 0; c < t->rows[i]->n_cells && c < 16; c++)
                printf("%-*s  ", (int) w[c], t->rows[i]->cells[c]);
            putchar('\n');
        }
    }
    if (a->chart) {
        /* what each report's chart shows: label column, value column */
        int label = 0, value = 2;
        const char *title = "Declines by reason";
        if (!strcmp(name, "unmet")) {
            label = 2, value = 4, title = "Searches that found nothing, by need";
        } else if (!strcmp(name, "occupancy")) {
            label = 0, value = 3, title = "Available units by region";
        } else if (!strcmp(name, "stale")) {
            label = 0, value = 4, title = "Units overdue to confirm, by provider";
        }
        rc = s_chart(a->chart, title, t, label, value);
        if (rc == EX_OK && !json)
            fprintf(stderr, "chart written to %s\n", a->chart);
    }
    haven__reply__free_unpacked(rep, NULL);
    return rc;
}

int
main(int argc, char **argv)
{
    enum { O_CONFIG = 1, O_JSON, O_HELP, O_VERSION, O_ID, O_NAME, O_KIND, O_DISTRICT, O_PHONE,
           O_ROLE, O_PUBLIC_KEY, O_PROVIDER, O_OUT, O_REGION, O_DATA_DIR, O_SINCE, O_PRINCIPAL, O_FROM, O_TO,
           O_CSV, O_CHART };
    static const struct option opts[] = {
        { "config", required_argument, NULL, O_CONFIG },
        { "json", no_argument, NULL, O_JSON },
        { "help", no_argument, NULL, O_HELP },
        { "version", no_argument, NULL, O_VERSION },
        { "id", required_argument, NULL, O_ID },
        { "name", required_argument, NULL, O_NAME },
        { "kind", required_argument, NULL, O_KIND },
        { "district", required_argument, NULL, O_DISTRICT },
        { "phone", required_argument, NULL, O_PHONE },
        { "role", required_argument, NULL, O_ROLE },
        { "public-key", required_argument, NULL, O_PUBLIC_KEY },
        { "provider", required_argument, NULL, O_PROVIDER },
        { "out", required_argument, NULL, O_OUT },
        { "region", required_argument, NULL, O_REGION },
        { "data-dir", required_argument, NULL, O_DATA_DIR },
        { "since", required_argument, NULL, O_SINCE },
        { "principal", required_argument, NULL, O_PRINCIPAL },
        { "from", required_argument, NULL, O_FROM },
        { "to", required_argument, NULL, O_TO },
        { "csv", no_argument, NULL, O_CSV },
        { "chart", required_argument, NULL, O_CHART },
        { NULL, 0, NULL, 0 },
    };
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return hv_cli_keygen(PROG, argc - 1, argv + 1);

    const char *config = NULL;
    bool json = false;
    s_args_t a = { 0 };
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_CONFIG: config = optarg; break;
        case O_JSON: json = true; break;
        case O_HELP: s_usage(stdout); return EX_OK;
        case O_VERSION: printf("haven-admin %s\n", HAVEN_VERSION); return EX_OK;
        case O_ID: a.id = optarg; break;
        case O_NAME: a.name = optarg; break;
        case O_KIND: a.kind = optarg; break;
        case O_DISTRICT: a.district = optarg; break;
        case O_PHONE: a.phone = optarg; break;
        case O_ROLE: a.role = optarg; break;
        case O_PUBLIC_KEY: a.public_key = optarg; break;
        case O_PROVIDER: a.provider = optarg; break;
        case O_OUT: out = optarg; break;
        case O_REGION: a.region = optarg; break;
        case O_DATA_DIR: a.data_dir = optarg; break;
        case O_SINCE: a.since = optarg; break;
        case O_PRINCIPAL: a.principal = optarg; break;
        case O_FROM: a.from = optarg; break;
        case O_TO: a.to = optarg; break;
        case O_CSV: a.csv = true; break;
        case O_CHART: a.chart = optarg; break;
        default: s_usage(stderr); return EX_USAGE;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    enum { NONE, P_ADD, P_LIST, PR_ADD, PR_LIST, PR_REVOKE, BACKUP, A_VERIFY, A_SHOW, REPORT } cmd = NONE;
    if (nargs == 2 && !strcmp(args[0], "provider") && !strcmp(args[1], "add"))
        cmd = P_ADD;
    else if (nargs == 2 && !strcmp(args[0], "provider") && !strcmp(args[1], "list"))
        cmd = P_LIST;
    else if (nargs == 2 && !strcmp(args[0], "principal") && !strcmp(args[1], "add"))
        cmd = PR_ADD;
    else if (nargs == 2 && !strcmp(args[0], "principal") && !strcmp(args[1], "list"))
        cmd = PR_LIST;
    else if (nargs == 3 && !strcmp(args[0], "principal") && !strcmp(args[1], "revoke"))
        cmd = PR_REVOKE;
    else if (nargs == 1 && !strcmp(args[0], "backup"))
        cmd = BACKUP;
    else if (nargs == 2 && !strcmp(args[0], "audit") && !strcmp(args[1], "verify"))
        cmd = A_VERIFY;
    else if (nargs == 2 && !strcmp(args[0], "audit") && !strcmp(args[1], "show"))
        cmd = A_SHOW;
    else if (nargs == 2 && !strcmp(args[0], "report"))
        cmd = REPORT;
    if (cmd == A_VERIFY && a.data_dir)
        return s_audit_verify_offline(a.data_dir, json);
    if (cmd == BACKUP && !out) {
        hv_cli_error(PROG, "backup needs --out FILE");
        return EX_USAGE;
    }
    if (cmd == NONE) {
        if (nargs == 0)
            s_usage(stderr);
        else
            hv_cli_error(PROG, "unknown command '%s%s%s' (see --help)", args[0],
                         nargs > 1 ? " " : "", nargs > 1 ? args[1] : "");
        return EX_USAGE;
    }
    hv_cli_t *cli = NULL;
    int rc = hv_cli_open(PROG, config, &cli);
    if (rc != EX_OK)
        return rc;
    switch (cmd) {
    case P_ADD: rc = s_provider_add(cli, &a, json); break;
    case P_LIST: rc = s_provider_list(cli, json); break;
    case PR_ADD: rc = s_principal_add(cli, &a, json); break;
    case PR_LIST: rc = s_principal_list(cli, json); break;
    case PR_REVOKE: rc = s_principal_revoke(cli, args[2], json); break;
    case BACKUP: rc = s_backup(cli, out, json); break;
    case A_VERIFY: rc = s_audit_verify(cli, json); break;
    case A_SHOW: rc = s_audit_show(cli, &a, json); break;
    case REPORT: rc = s_report(cli, args[1], &a, json); break;
    default: break;
    }
    hv_cli_destroy(&cli);
    return rc;
}
