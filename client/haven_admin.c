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
#include "../proto/cli.h"
#include "../proto/keys.h"
#include "../proto/names.h"
#include "../proto/wire.h"

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
            "  principal list\n"
            "  principal revoke NAME\n"
            "  backup --out FILE              a hot, compacted copy of the broker's store\n"
            "\n"
            "options:\n"
            "  --config FILE   client configuration (default $HAVEN_CONFIG)\n"
            "  --json          machine-readable output on stdout\n"
            "  --help, --version\n");
}

typedef struct {
    const char *id, *name, *kind, *district, *phone, *role, *public_key, *provider;
} s_args_t;

static void
s_json_print(json_t *doc)
{
    json_dumpf(doc, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(doc);
}

static int
s_call(hv_cli_t *cli, Haven__Request *req, Haven__Reply **rep)
{
    char err[256];
    if (hv_request_validate(req, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_USAGE;
    }
    return hv_cli_call(cli, req, rep);
}

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
    int rc = s_call(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        s_json_print(json_pack("{s:s}", "added", a->id));
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
    int rc = s_call(cli, &req, &rep);
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
        s_json_print(json_pack("{s:o}", "providers", arr));
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
    Haven__PrincipalAdd add = HAVEN__PRINCIPAL_ADD__INIT;
    add.principal = &p;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_ADD;
    req.principal_add = &add;
    Haven__Reply *rep = NULL;
    int rc = s_call(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        s_json_print(json_pack("{s:s, s:s}", "added", a->name, "role", a->role));
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
    int rc = s_call(cli, &req, &rep);
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
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:b, s:s}", "name", p->name,
                                                 "role", hv_role_name(p->role), "provider", p->provider,
                                                 "revoked", p->revoked, "public_key", z85));
        else
            printf("%-24s %-7s %-24s %s%s\n", p->name, hv_role_name(p->role),
                   p->provider ? p->provider : "-", z85, p->revoked ? "  REVOKED" : "");
    }
    if (json)
        s_json_print(json_pack("{s:o}", "principals", arr));
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
    int rc = s_call(cli, &req, &rep);
    if (rc != EX_OK)
        return rc;
    if (json)
        s_json_print(json_pack("{s:s}", "revoked", name));
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

int
main(int argc, char **argv)
{
    enum { O_CONFIG = 1, O_JSON, O_HELP, O_VERSION, O_ID, O_NAME, O_KIND, O_DISTRICT, O_PHONE,
           O_ROLE, O_PUBLIC_KEY, O_PROVIDER, O_OUT };
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
        default: s_usage(stderr); return EX_USAGE;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    enum { NONE, P_ADD, P_LIST, PR_ADD, PR_LIST, PR_REVOKE, BACKUP } cmd = NONE;
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
    default: break;
    }
    hv_cli_destroy(&cli);
    return rc;
}
