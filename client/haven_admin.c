/* SPDX-License-Identifier: MIT */
/* haven-admin: the administrator's command. Providers and principals. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <time.h>
#include "../common/cert.h"
#include "../common/cli.h"
#include "../common/keys.h"
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
            "  principal revoke NAME [--public-key FILE]\n"
            "                                 (signed here, with your key, for the key your\n"
            "                                 administrators certified as NAME, or FILE's)\n"
            "  certify --name NAME --role ROLE [--provider ID | --region REGION] --public-key FILE\n"
            "                                 (principal add and certify: --days N, the certificate's\n"
            "                                 lifetime, default 90: renew with certify before then)\n"
            "                                 a certificate for a principal registered before\n"
            "                                 certificates (also your own key, once)\n"
            "  backup --out FILE              a hot, compacted copy of the broker's store\n"
            "  audit verify [--head FILE]     check the audit log's chain, and against a head kept elsewhere\n"
            "  audit verify --data-dir DIR|FILE [--head FILE] [--broker-key PATH]\n"
            "                                 ... of a copy of a store (a backup file, or a directory\n"
            "                                 with data.mdb), offline; --broker-key (broker.key, on the\n"
            "                                 broker's machine) checks the MACs too\n"
            "  audit head [--out FILE]        the current head, signed by the broker: keep it elsewhere\n"
            "  audit show [--since YYYY-MM-DD] [--principal NAME] [--limit N]\n"
            "                                 oldest first; N records (default 1000, at most 10000)\n"
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
    const char *data_dir, *since, *principal, *from, *to, *chart, *head, *broker_key;
    bool csv;
    int days;                    /* a certificate's lifetime */
    uint32_t limit;              /* audit show --limit; 0: the broker's default */
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
    size_t unsynced = 0;
    int64_t oldest = 0;
    for (size_t i = 0; i < l->n_providers; i++) {
        const Haven__Provider *p = l->providers[i];
        char since[32] = "";
        /* restored from a backup and its agent not back yet (design.md
         * section 7): what the broker shows of it may be out of date */
        if (p->unsynced) {
            unsynced++;
            if (!oldest || p->unsynced_since < oldest)
                oldest = p->unsynced_since;
            hv_format_time(p->unsynced_since, since, sizeof since);
        }
        if (json) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:i, s:b, s:b}",
                                  "id", p->id, "name", p->name, "kind", hv_kind_name(p->kind),
                                  "district", p->district, "phone", p->phone,
                                  "units", (int) p->units, "published", p->service != NULL,
                                  "unsynced", p->unsynced);
            json_object_set_new(j, "unsynced_since", p->unsynced ? json_string(since) : json_null());
            json_array_append_new(arr, j);
        } else
            printf("%-28s %-10s %-10s %4u units%s%s  %s\n", p->id, hv_kind_name(p->kind), p->district,
                   p->units, p->service ? "" : " (no catalog yet)", p->unsynced ? "  NOT RESYNCED" : "", p->name);
    }
    if (json)
        hv_json_print(json_pack("{s:o}", "providers", arr));
    else
        json_decref(arr);
    if (!json && unsynced) {
        char since[32];
        hv_format_time(oldest, since, sizeof since);
        printf("%zu provider%s marked NOT RESYNCED %s not been brought up to date since the store was restored "
               "from a backup (the first at %s): %s units are stale, and not offered, until %s haven-agent next "
               "contacts the broker\n", unsynced, unsynced == 1 ? "" : "s", unsynced == 1 ? "has" : "have", since,
               unsynced == 1 ? "its" : "their", unsynced == 1 ? "its" : "each one's");
    }
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

/* A principal's public key file, which must carry the signing key its
 * certificate will name. */
static int
s_load_certifiable(const char *path, hv_pubkey_t *key)
{
    char err[512];
    if (hv_pubkey_load(path, key, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_DATAERR;
    }
    if (!key->has_sign) {
        hv_cli_error(PROG, "%s has no signing key (sign = ...): on the principal's machine run `haven keygen "
                     "--public-of THEIR.key` and send the new .pub", path);
        return EX_DATAERR;
    }
    return EX_OK;
}

/* Sign a certificate for a key here, with this administrator's own key:
 * the broker only stores and relays it. */
static int
s_issue(hv_cli_t *cli, const char *name, int role, const char *provider, const char *region,
        const hv_pubkey_t *key, int days, Haven__Signed *out)
{
    int64_t now = (int64_t) time(NULL);
    Haven__Certificate c = HAVEN__CERTIFICATE__INIT;
    c.role = role;
    c.name = (char *) name;
    c.provider = (char *) (provider && *provider ? provider : NULL);
    c.region = (char *) (region && *region ? region : NULL);
    c.curve_key = (ProtobufCBinaryData) { 32, (uint8_t *) key->curve_raw };
    c.seal_key = (ProtobufCBinaryData) { 32, (uint8_t *) key->seal };
    c.sign_key = (ProtobufCBinaryData) { 32, (uint8_t *) key->sign };
    c.issued_at = now;
    c.expires_at = now + (int64_t) days * 86400;
    if (hv_cert_issue(hv_cli_keys(cli), &c, out) < 0) {
        hv_cli_error(PROG, "cannot sign the certificate for %s", name);
        return EX_SOFTWARE;
    }
    return EX_OK;
}

static int
s_principal_add(hv_cli_t *cli, const s_args_t *a, bool json)
{
    hv_pubkey_t key;
    int rc;
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
    if ((rc = s_load_certifiable(a->public_key, &key)) != EX_OK)
        return rc;
    Haven__Signed cert = HAVEN__SIGNED__INIT;
    rc = s_issue(cli, a->name, role, a->provider, a->region, &key, a->days, &cert);
    if (rc != EX_OK)
        return rc;
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
    p.has_sign_key = 1;
    p.sign_key = (ProtobufCBinaryData) { 32, key.sign };
    Haven__PrincipalAdd add = HAVEN__PRINCIPAL_ADD__INIT;
    add.principal = &p;
    add.certificate = &cert;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_ADD;
    req.principal_add = &add;
    Haven__Reply *rep = NULL;
    rc = hv_cli_request(cli, &req, &rep);
    hv_signed_clear(&cert);
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
        /* what the certificate says, as the broker relays it (each client
         * checks it for itself against its pinned administrators' keys) */
        char until[32] = "";
        Haven__Certificate *c = p->certificate
            ? haven__certificate__unpack(NULL, p->certificate->body.len, p->certificate->body.data) : NULL;
        if (c)
            hv_format_time(c->expires_at, until, sizeof until);
        if (c)
            haven__certificate__free_unpacked(c, NULL);
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:s, s:s?}", "name", p->name,
                                                 "role", hv_role_name(p->role), "provider", p->provider,
                                                 "region", p->region && *p->region ? p->region : NULL,
                                                 "revoked", p->revoked, "public_key", z85,
                                                 "certified_until", until[0] ? until : NULL));
        else
            printf("%-24s %-7s %-24s %s%s%s%s\n", p->name, hv_role_name(p->role),
                   p->provider && *p->provider ? p->provider : p->region && *p->region ? p->region : "-",
                   z85, p->revoked ? "  REVOKED" : "", until[0] ? "  certified until " : "  NOT CERTIFIED",
                   until);
    }
    if (json)
        hv_json_print(json_pack("{s:o}", "principals", arr));
    else
        json_decref(arr);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

/* The registered record of a principal, from the broker's list. Caller
 * frees *rep_out; *p_out points into it. */
static int
s_find_principal(hv_cli_t *cli, const char *name, Haven__Reply **rep_out, const Haven__Principal **p_out)
{
    Haven__PrincipalList list = HAVEN__PRINCIPAL_LIST__INIT;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_LIST;
    req.principal_list = &list;
    int rc = hv_cli_request(cli, &req, rep_out);
    if (rc != EX_OK)
        return rc;
    for (size_t i = 0; i < (*rep_out)->principals->n_principals; i++)
        if (strcmp((*rep_out)->principals->principals[i]->name, name) == 0) {
            *p_out = (*rep_out)->principals->principals[i];
            return EX_OK;
        }
    haven__reply__free_unpacked(*rep_out, NULL);
    hv_cli_error(PROG, "no principal named %s", name);
    return EX_DATAERR;
}

static int
s_certify(hv_cli_t *cli, const s_args_t *a, bool json)
{
    hv_pubkey_t key;
    int rc;
    Haven__Reply *list = NULL, *rep = NULL;
    const Haven__Principal *p = NULL;
    if (!a->name || !a->public_key || !a->role) {
        hv_cli_error(PROG, "certify needs --name NAME, --role ROLE (with --provider or --region as for principal "
                     "add) and --public-key FILE (the principal's .pub, with its sign line)");
        return EX_USAGE;
    }
    /* What is certified comes from the administrator, never from the
     * broker's list: a tampered store must not get a key certified as
     * something it is not. */
    int role = hv_role_parse(a->role);
    if (role <= 0) {
        hv_cli_error(PROG, "--role must be agent, idva, oncall or admin, not '%s'", a->role);
        return EX_USAGE;
    }
    if ((rc = s_load_certifiable(a->public_key, &key)) != EX_OK)
        return rc;
    rc = s_find_principal(cli, a->name, &list, &p);
    if (rc != EX_OK)
        return rc;
    /* Certify only what is registered: the keys must be the ones the broker
     * has, and it must list the principal as the administrator says. */
    if (p->curve_key.len != 32 || memcmp(p->curve_key.data, key.curve_raw, 32) != 0 || p->seal_key.len != 32
        || memcmp(p->seal_key.data, key.seal, 32) != 0) {
        hv_cli_error(PROG, "%s is not the key registered for %s", a->public_key, a->name);
        haven__reply__free_unpacked(list, NULL);
        return EX_DATAERR;
    }
    const char *provider = a->provider && *a->provider ? a->provider : "";
    const char *region = a->region && *a->region ? a->region : "";
    if ((int) p->role != role || strcmp(p->provider ? p->provider : "", provider) != 0
        || strcasecmp(p->region ? p->region : "", region) != 0) {
        hv_cli_error(PROG, "the broker lists %s as %s%s%s%s%s, not as you said: nothing was certified. If that "
                     "is not what you registered, the broker's store may have been tampered with",
                     a->name, hv_role_name(p->role), p->provider && *p->provider ? " of " : "",
                     p->provider ? p->provider : "", p->region && *p->region ? " in " : "",
                     p->region ? p->region : "");
        haven__reply__free_unpacked(list, NULL);
        return EX_DATAERR;
    }
    Haven__Signed cert = HAVEN__SIGNED__INIT;
    if ((rc = s_issue(cli, a->name, role, a->provider, p->region, &key, a->days, &cert)) == EX_OK) {
        Haven__PrincipalCertify pc = HAVEN__PRINCIPAL_CERTIFY__INIT;
        pc.name = (char *) a->name;
        pc.certificate = &cert;
        Haven__Request req = HAVEN__REQUEST__INIT;
        req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_CERTIFY;
        req.principal_certify = &pc;
        rc = hv_cli_request(cli, &req, &rep);
        hv_signed_clear(&cert);
    }
    haven__reply__free_unpacked(list, NULL);
    if (rc != EX_OK)
        return rc;
    if (json)
        hv_json_print(json_pack("{s:s}", "certified", a->name));
    else
        printf("certified %s (valid for %d days)\n", a->name, a->days);
    haven__reply__free_unpacked(rep, NULL);
    return EX_OK;
}

static int
s_principal_revoke(hv_cli_t *cli, const char *name, const char *public_key, bool json)
{
    char err[512];
    Haven__Reply *list = NULL;
    const Haven__Principal *p = NULL;
    uint8_t curve[32];
    /* The revocation names the key an administrator certified for NAME (or
     * the one in --public-key), never just the key the broker lists. */
    if (public_key) {
        hv_pubkey_t key;
        if (hv_pubkey_load(public_key, &key, err, sizeof err) < 0) {
            hv_cli_error(PROG, "%s", err);
            return EX_DATAERR;
        }
        memcpy(curve, key.curve_raw, 32);
    } else {
        const hv_trust_t *trust = hv_cli_trust(cli);
        if (!trust)
            return EX_CONFIG;
        int lrc = s_find_principal(cli, name, &list, &p);
        if (lrc != EX_OK)
            return lrc;
        Haven__Certificate *c = NULL;
        if (hv_cert_verify(trust, NULL, p->certificate, (int64_t) time(NULL), &c, err, sizeof err) < 0) {
            hv_cli_error(PROG, "%s has no certificate from your administrators (%s): name the key to revoke "
                         "with --public-key FILE", name, err);
            haven__reply__free_unpacked(list, NULL);
            return EX_DATAERR;
        }
        bool same = strcmp(c->name, name) == 0;
        memcpy(curve, c->curve_key.data, 32);
        haven__certificate__free_unpacked(c, NULL);
        haven__reply__free_unpacked(list, NULL);
        if (!same) {
            hv_cli_error(PROG, "the certificate the broker shows for %s is another principal's: nothing was "
                         "revoked; name the key with --public-key FILE", name);
            return EX_DATAERR;
        }
    }
    Haven__Revocation revocation = HAVEN__REVOCATION__INIT;
    revocation.name = (char *) name;
    revocation.curve_key = (ProtobufCBinaryData) { 32, curve };
    revocation.revoked_at = (int64_t) time(NULL);
    Haven__Signed signed_rv = HAVEN__SIGNED__INIT;
    int src = hv_revocation_issue(hv_cli_keys(cli), &revocation, &signed_rv);
    if (src < 0) {
        hv_cli_error(PROG, "cannot sign the revocation of %s", name);
        return EX_SOFTWARE;
    }
    Haven__PrincipalRevoke rv = HAVEN__PRINCIPAL_REVOKE__INIT;
    rv.name = (char *) name;
    rv.revocation = &signed_rv;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_PRINCIPAL_REVOKE;
    req.principal_revoke = &rv;
    Haven__Reply *rep = NULL;
    int rc = hv_cli_request(cli, &req, &rep);
    hv_signed_clear(&signed_rv);
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
        hv_json_print(json_pack("{s:s, s:I}", "backup", out, "bytes", (json_int_t) size));
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

/* The broker's signing public key, from broker.pub's sign line (path:
 * the config's [broker] public_key). Returns an exit code. */
static int
s_broker_sign_key(const char *broker_pub, uint8_t pk[32])
{
    hv_pubkey_t pub;
    char err[512];
    if (hv_pubkey_load(broker_pub, &pub, err, sizeof err) < 0) {
        hv_cli_error(PROG, "%s", err);
        return EX_CONFIG;
    }
    if (!pub.has_sign) {
        hv_cli_error(PROG, "%s has no sign line, so the broker's signature cannot be checked: copy the "
                     "broker's data_dir/broker.pub again (the broker adds the line when it starts)", broker_pub);
        return EX_CONFIG;
    }
    memcpy(pk, pub.sign, 32);
    return EX_OK;
}

/* Read a head kept elsewhere (a head file, or a log excerpt with one). */
static int
s_head_read(const char *path, Haven__AuditHead *head, uint8_t hash[32], uint8_t sig[64])
{
    char text[65536];
    FILE *f = fopen(path, "r");
    if (!f) {
        hv_cli_error(PROG, "cannot read %s: %s", path, strerror(errno));
        return EX_NOINPUT;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    if (brk_audit_head_parse(text, head, hash, sig) < 0) {
        hv_cli_error(PROG, "%s holds no audit head (a line 'haven-audit-head seq=... signature=...', as "
                     "haven-admin audit head --out writes and the broker logs)", path);
        return EX_DATAERR;
    }
    return EX_OK;
}

typedef struct {
    bool ok;
    uint64_t records, first, keyed_from, bad;
    bool macs_checked, signatures_checked, head_given, head_checked;
    const char *problem;
} s_verdict_t;

/* Print a verify's outcome; returns its exit code. */
static int
s_verdict(const s_verdict_t *v, bool json)
{
    /* The records kept before the first MAC: no key vouches for them. */
    uint64_t unkeyed = v->keyed_from > v->first ? v->keyed_from - v->first : v->keyed_from ? 0 : v->records;
    if (json) {
        json_t *doc = json_pack("{s:b, s:I, s:I, s:I, s:I, s:b}", "ok", v->ok, "records", (json_int_t) v->records,
                                "first", (json_int_t) v->first, "keyed_from", (json_int_t) v->keyed_from,
                                "unkeyed_records", (json_int_t) unkeyed, "macs_checked", v->macs_checked);
        if (v->head_given)
            json_object_set_new(doc, "head_checked", json_boolean(v->head_checked));
        if (!v->ok)
            json_object_set_new(doc, "first_bad", json_integer((json_int_t) v->bad));
        hv_json_print(doc);
    }
    if (!v->ok && v->bad == 0) {  /* not a record: the monthly totals */
        hv_cli_error(PROG, "audit log check FAILED: %s", v->problem ? v->problem : "");
        return EX_DATAERR;
    }
    if (!v->ok) {
        hv_cli_error(PROG, "audit log check FAILED at record %llu: %s", (unsigned long long) v->bad,
                     v->problem ? v->problem : "");
        return EX_DATAERR;
    }
    if (json)
        return EX_OK;
    printf("audit log intact: %llu records", (unsigned long long) v->records);
    if (v->records)
        printf(" (%llu-%llu)", (unsigned long long) v->first, (unsigned long long) (v->first + v->records - 1));
    printf("\n");
    if (v->first > 1)
        printf("  records before %llu were counted into monthly totals and removed ([audit] retention);\n"
               "  %s\n", (unsigned long long) v->first,
               v->signatures_checked ? "the broker's signature on where they stop checks"
                                     : "the broker's signature on where they stop was not checked (give --config)");
    if (v->keyed_from && unkeyed)
        printf("  records %llu-%llu carry no MAC: no key vouches for them. The broker found its log so and\n"
               "  keyed it at record %llu: a store from before keyed audit, or one rewritten without\n"
               "  broker.key and stripped of its MACs. Only a head kept elsewhere can tell; they are never pruned\n",
               (unsigned long long) v->first, (unsigned long long) (v->keyed_from - 1),
               (unsigned long long) v->keyed_from);
    if (!v->keyed_from && unkeyed)
        printf("  no record carries a MAC: without broker.key (--broker-key) a store from before keyed audit\n"
               "  cannot be told from a log rewritten and stripped of its MACs; a head kept elsewhere can\n");
    if (v->keyed_from && !v->macs_checked)
        printf("  the MACs were not checked (that needs broker.key: --broker-key); hashes and order were\n");
    if (v->head_given && v->head_checked)
        printf("  matches the head kept elsewhere\n");
    return EX_OK;
}

static int
s_audit_verify_offline(const char *config, const s_args_t *a, bool json)
{
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    hv_keys_t *keys = NULL;
    brk_audit_key_t *akey = NULL;
    hv_clientcfg_t *cfg = NULL;
    Haven__AuditHead head;
    uint8_t pk[32], hash[32], sig[64];
    brk_audit_check_t check = { 0 };
    brk_audit_result_t res;
    char err[512];
    int rc = EX_OK;
    /* The broker's signing key: its own key file if given (on the broker's
     * machine: the MACs can be checked too), else the pinned broker.pub. */
    if (a->broker_key) {
        if (hv_keys_load(a->broker_key, &keys, err, sizeof err) < 0) {
            hv_cli_error(PROG, "%s", err);
            return EX_CONFIG;
        }
        if (brk_audit_key_new(keys, &akey) < 0) {
            hv_cli_error(PROG, "cannot derive the audit keys from %s", a->broker_key);
            rc = EX_SOFTWARE;
            goto out;
        }
        check.key = akey;
        check.sign_public = brk_audit_key_sign_public(akey);
    } else if (config || getenv("HAVEN_CONFIG")) {
        const char *path = config ? config : getenv("HAVEN_CONFIG");
        if (hv_clientcfg_load(path, &cfg, err, sizeof err) < 0) {
            hv_cli_error(PROG, "%s", err);
            return EX_CONFIG;
        }
        if ((rc = s_broker_sign_key(cfg->broker_key, pk)) != EX_OK)
            goto out;
        check.sign_public = pk;
    }
    if (a->head) {
        if (!check.sign_public) {
            hv_cli_error(PROG, "--head needs the broker's signing key: give --config (its [broker] public_key, "
                         "broker.pub) or --broker-key");
            rc = EX_USAGE;
            goto out;
        }
        if ((rc = s_head_read(a->head, &head, hash, sig)) != EX_OK)
            goto out;
        check.head = &head;
    }
    if ((rc = brk_store_open_copy(a->data_dir, &store)) < 0) {
        hv_cli_error(PROG, "cannot open the store in %s: %s", a->data_dir, strerror(-rc));
        rc = EX_NOINPUT;
        goto out;
    }
    if ((rc = brk_store_begin(store, NULL, false, &txn)) == 0) {
        rc = brk_audit_verify(store, txn, &check, &res);
        brk_store_abort(txn);
    }
    if (rc < 0 && rc != -EILSEQ) {
        hv_cli_error(PROG, "cannot read the audit log in %s: %s", a->data_dir, strerror(-rc));
        rc = EX_IOERR;
        goto out;
    }
    s_verdict_t v = { rc == 0, res.records, res.first, res.keyed_from, res.bad, res.macs_checked,
                      res.signatures_checked, check.head != NULL, res.head_checked, res.problem };
    rc = s_verdict(&v, json);
out:
    brk_store_destroy(&store);
    brk_audit_key_destroy(&akey);
    hv_keys_destroy(&keys);
    hv_clientcfg_destroy(&cfg);
    return rc;
}

static int
s_audit_verify(hv_cli_t *cli, const s_args_t *a, bool json)
{
    Haven__AuditVerify v = HAVEN__AUDIT_VERIFY__INIT;
    Haven__AuditHead head;
    uint8_t pk[32], hash[32], sig[64];
    int rc;
    if (a->head) {
        /* Checked here too: a head is worth keeping only if it is the broker's. */
        if ((rc = s_broker_sign_key(hv_cli_config(cli)->broker_key, pk)) != EX_OK
            || (rc = s_head_read(a->head, &head, hash, sig)) != EX_OK)
            return rc;
        if (brk_audit_head_check(&head, pk) < 0) {
            hv_cli_error(PROG, "the head in %s is not signed by the broker's signing key (broker.pub's sign "
                         "line): it cannot vouch for the log", a->head);
            return EX_DATAERR;
        }
        v.head = &head;
    }
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AUDIT_VERIFY;
    req.audit_verify = &v;
    Haven__Reply *rep = NULL;
    if ((rc = hv_cli_call(cli, &req, &rep)) != EX_OK)
        return rc;
    const Haven__AuditVerifyReply *r = rep->audit_verify;
    s_verdict_t d = { r->ok, r->records, r->has_first ? r->first : 1, r->keyed_from, r->first_bad, true, true,
                      a->head != NULL, r->head_checked, r->problem };
    rc = s_verdict(&d, json);
    haven__reply__free_unpacked(rep, NULL);
    return rc;
}

static int
s_audit_head(hv_cli_t *cli, const char *out, bool json)
{
    uint8_t pk[32];
    char line[320], when[32];
    int rc = s_broker_sign_key(hv_cli_config(cli)->broker_key, pk);
    if (rc != EX_OK)
        return rc;
    Haven__AuditVerify v = HAVEN__AUDIT_VERIFY__INIT;
    v.has_head_only = v.head_only = 1;
    Haven__Request req = HAVEN__REQUEST__INIT;
    req.body_case = HAVEN__REQUEST__BODY_AUDIT_VERIFY;
    req.audit_verify = &v;
    Haven__Reply *rep = NULL;
    if ((rc = hv_cli_call(cli, &req, &rep)) != EX_OK)
        return rc;
    const Haven__AuditHead *h = rep->audit_verify->head;
    if (!h || brk_audit_head_check(h, pk) < 0) {
        hv_cli_error(PROG, "the broker's head is not signed by the key broker.pub names: do not keep it");
        rc = EX_DATAERR;
        goto out;
    }
    brk_audit_head_format(h, line, sizeof line);
    if (out) {
        int fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0644);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) {
            hv_cli_error(PROG, "cannot write %s: %s", out, strerror(errno));
            if (fd >= 0 && !f)
                close(fd);
            rc = EX_CANTCREAT;
            goto out;
        }
    }
    hv_format_time(h->at, when, sizeof when);
    if (json) {
        char hash[65];
        sodium_bin2hex(hash, sizeof hash, h->hash.data, 32);
        hv_json_print(json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t) h->seq, "hash", hash, "at", when,
                                "head", line));
    } else if (out) {
        printf("wrote %s: the head at record %llu, signed %s; keep it away from the broker\n", out,
               (unsigned long long) h->seq, when);
    } else {
        printf("%s\n", line);
    }
out:
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
    if (a->limit) {
        show.has_limit = 1;
        show.limit = a->limit;
    }
    /* The broker returns at most BRK_AUDIT_SHOW_MAX records whatever is
     * asked: say so, rather than let a short list pass for the whole log. */
    uint32_t limit = !a->limit ? BRK_AUDIT_SHOW_DEFAULT : a->limit > BRK_AUDIT_SHOW_MAX ? BRK_AUDIT_SHOW_MAX : a->limit;
    bool capped = a->limit > BRK_AUDIT_SHOW_MAX;
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
    bool full = rep->audit_show->n_records >= limit;     /* there may be more */
    if (json) {
        hv_json_print(json_pack("{s:o, s:I, s:b, s:b}", "records", arr, "limit", (json_int_t) limit,
                                "capped", capped && full, "more", full));
    } else {
        json_decref(arr);
        if (full && capped)
            fprintf(stderr, "%s: showing the first %u records, the most one audit show returns (--limit %u "
                    "was capped); there may be more: narrow with --since or --principal\n", PROG, limit,
                    a->limit);
        else if (full)
            fprintf(stderr, "%s: showing the first %u records; there may be more: --limit N shows up to %u, "
                    "--since and --principal narrow\n", PROG, limit, BRK_AUDIT_SHOW_MAX);
    }
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
           O_CSV, O_CHART, O_HEAD, O_BROKER_KEY, O_DAYS, O_LIMIT };
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
        { "days", required_argument, NULL, O_DAYS },
        { "limit", required_argument, NULL, O_LIMIT },
        { "head", required_argument, NULL, O_HEAD },
        { "broker-key", required_argument, NULL, O_BROKER_KEY },
        { NULL, 0, NULL, 0 },
    };
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return hv_cli_keygen(PROG, argc - 1, argv + 1);

    const char *config = NULL;
    bool json = false;
    s_args_t a = { .days = HV_CERT_DAYS_DEFAULT };
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
        case O_DAYS: {
            char *end;
            long d = strtol(optarg, &end, 10);
            if (*end || d < 1 || d > HV_CERT_DAYS_MAX) {
                hv_cli_error(PROG, "--days must be a whole number of days from 1 to %d", HV_CERT_DAYS_MAX);
                return EX_USAGE;
            }
            a.days = (int) d;
            break;
        }
        case O_LIMIT: {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (*end || !*optarg || optarg[0] == '-' || errno || n < 1 || n > UINT32_MAX) {
                hv_cli_error(PROG, "--limit must be a whole number of records from 1 to %u", UINT32_MAX);
                return EX_USAGE;
            }
            a.limit = (uint32_t) n;
            break;
        }
        case O_HEAD: a.head = optarg; break;
        case O_BROKER_KEY: a.broker_key = optarg; break;
        default: s_usage(stderr); return EX_USAGE;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    enum { NONE, P_ADD, P_LIST, PR_ADD, PR_LIST, PR_REVOKE, BACKUP, CERTIFY, A_VERIFY, A_SHOW, A_HEAD, REPORT } cmd = NONE;
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
    else if (nargs == 1 && !strcmp(args[0], "certify"))
        cmd = CERTIFY;
    else if (nargs == 2 && !strcmp(args[0], "audit") && !strcmp(args[1], "verify"))
        cmd = A_VERIFY;
    else if (nargs == 2 && !strcmp(args[0], "audit") && !strcmp(args[1], "show"))
        cmd = A_SHOW;
    else if (nargs == 2 && !strcmp(args[0], "audit") && !strcmp(args[1], "head"))
        cmd = A_HEAD;
    else if (nargs == 2 && !strcmp(args[0], "report"))
        cmd = REPORT;
    if (cmd == A_VERIFY && a.data_dir)
        return s_audit_verify_offline(config, &a, json);
    if (a.broker_key && cmd != NONE) {
        hv_cli_error(PROG, "--broker-key is for audit verify --data-dir (offline, on the broker's machine)");
        return EX_USAGE;
    }
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
    case PR_REVOKE: rc = s_principal_revoke(cli, args[2], a.public_key, json); break;
    case BACKUP: rc = s_backup(cli, out, json); break;
    case CERTIFY: rc = s_certify(cli, &a, json); break;
    case A_VERIFY: rc = s_audit_verify(cli, &a, json); break;
    case A_HEAD: rc = s_audit_head(cli, out, json); break;
    case A_SHOW: rc = s_audit_show(cli, &a, json); break;
    case REPORT: rc = s_report(cli, args[1], &a, json); break;
    default: break;
    }
    hv_cli_destroy(&cli);
    return rc;
}
