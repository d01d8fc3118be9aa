/* SPDX-License-Identifier: MIT */
/* Oversight reports (see report.h). */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../proto/names.h"
#include "audit.h"
#include "report.h"

static const char *const s_dims[BRK_DIM__COUNT] = {
    "teenage boys", "nrpf", "access", "pets", "large family", "male", "lgbt+", "complex needs", "older",
    "children", "boys over 11",
};

const char *
brk_dim_name(int i)
{
    return i >= 0 && i < BRK_DIM__COUNT ? s_dims[i] : "?";
}

uint32_t
brk_need_dims(const Haven__Need *n)
{
    uint32_t d = n->n_children ? BRK_DIM_CHILDREN : 0;
    for (size_t i = 0; i < n->n_children; i++) {
        if (strcmp(n->children[i]->sex, "m") == 0 && n->children[i]->age >= 13)
            d |= BRK_DIM_TEEN_BOYS;
        if (strcmp(n->children[i]->sex, "m") == 0 && n->children[i]->age >= 12)
            d |= BRK_DIM_BOY_OVER_11;
    }
    if (n->has_nrpf && n->nrpf)
        d |= BRK_DIM_NRPF;
    if (n->has_access && (n->access & (HAVEN__FEATURE__FEATURE_WHEELCHAIR | HAVEN__FEATURE__FEATURE_STEP_FREE)))
        d |= BRK_DIM_ACCESS;
    if (n->has_pets && n->pets)
        d |= BRK_DIM_PETS;
    if ((n->has_adults ? n->adults : 1) + n->n_children >= 5)
        d |= BRK_DIM_LARGE_FAMILY;
    if (n->has_gender && n->gender == HAVEN__GENDER__GENDER_MAN)
        d |= BRK_DIM_MALE;
    if ((n->has_trans && n->trans) || (n->has_gender && n->gender == HAVEN__GENDER__GENDER_NONBINARY)
        || (n->has_specialist && n->specialist == HAVEN__SPECIALIST__SPECIALIST_LGBT))
        d |= BRK_DIM_LGBT;
    if (n->has_complex_needs && n->complex_needs)
        d |= BRK_DIM_COMPLEX;
    if (n->has_age && n->age >= 60)
        d |= BRK_DIM_OLDER;
    return d;
}

void
brk_need_flags(const Haven__Need *n, uint32_t dims, char *buf, size_t len)
{
    const char *sep = "; ";
    size_t used = 0;
    int w = snprintf(buf, len, "%s", n && n->has_gender ? hv_gender_name(n->gender) : "adult");
    for (int d = 0; d < BRK_DIM__COUNT && w >= 0 && (used += (size_t) w) < len; d++) {
        w = 0;
        if (dims & (1u << d)) {
            w = snprintf(buf + used, len - used, "%s%s", sep, brk_dim_name(d));
            sep = ", ";
        }
    }
}

/* ---------------------------------------------------------------- table */

typedef struct {
    GPtrArray *rows;             /* of GPtrArray of char* */
    size_t n_cols;
} s_table_t;

static void
s_row_free(gpointer p)
{
    g_ptr_array_free(p, TRUE);
}

static GPtrArray *
s_row(s_table_t *t)
{
    GPtrArray *row = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(t->rows, row);
    return row;
}

static void
s_cell(GPtrArray *row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
s_cell(GPtrArray *row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(row, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* Copy the table into reply. Filled so that brk_report_free can undo any
 * part of it: a report short of memory is an error, never a shorter one. */
static int
s_finish(s_table_t *t, const char *const *cols, size_t n_cols, Haven__ReportReply *reply)
{
    haven__report_reply__init(reply);
    if (!(reply->columns = calloc(n_cols, sizeof *reply->columns)))
        goto nomem;
    for (; reply->n_columns < n_cols; reply->n_columns++)
        if (!(reply->columns[reply->n_columns] = strdup(cols[reply->n_columns])))
            goto nomem;
    if (!(reply->rows = calloc(t->rows->len + 1, sizeof *reply->rows)))
        goto nomem;
    for (guint i = 0; i < t->rows->len; i++) {
        GPtrArray *src = g_ptr_array_index(t->rows, i);
        Haven__ReportRow *row = calloc(1, sizeof *row);
        if (!row)
            goto nomem;
        haven__report_row__init(row);
        reply->rows[reply->n_rows++] = row;
        if (!(row->cells = calloc(src->len + 1, sizeof *row->cells)))
            goto nomem;
        for (; row->n_cells < src->len; row->n_cells++)
            if (!(row->cells[row->n_cells] = strdup(g_ptr_array_index(src, row->n_cells))))
                goto nomem;
    }
    return 0;
nomem:
    brk_report_free(reply);
    return -ENOMEM;
}

void
brk_report_free(Haven__ReportReply *reply)
{
    for (size_t c = 0; c < reply->n_columns; c++)
        free(reply->columns[c]);
    free(reply->columns);
    for (size_t i = 0; i < reply->n_rows; i++) {
        for (size_t c = 0; c < reply->rows[i]->n_cells; c++)
            free(reply->rows[i]->cells[c]);
        free(reply->rows[i]->cells);
        free(reply->rows[i]);
    }
    free(reply->rows);
    reply->columns = NULL;
    reply->rows = NULL;
    reply->n_columns = reply->n_rows = 0;    /* freeing twice is harmless */
}

/* ---------------------------------------------------------------- unmet */

typedef struct {
    uint32_t searches, none, fewer;
    GHashTable *relax;           /* rule -> count */
} s_cell_t;

typedef struct {
    int64_t from, to;
    GHashTable *cells;           /* "month\tregion\tdimension" -> s_cell_t */
    GHashTable *declines;        /* "reason\tkind" -> count */
} s_scan_t;

static void
s_cell_free(gpointer p)
{
    s_cell_t *c = p;
    g_hash_table_destroy(c->relax);
    g_free(c);
}

static void
s_count(s_scan_t *s, const char *key, const Haven__AuditRecord *r, uint32_t n)
{
    s_cell_t *c = g_hash_table_lookup(s->cells, key);
    if (!c) {
        c = g_new0(s_cell_t, 1);
        c->relax = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(s->cells, g_strdup(key), c);
    }
    c->searches += n;
    if (r->matching == 0)
        c->none += n;
    else if (r->matching < r->limit)
        c->fewer += n;
    if (r->matching < r->limit && r->relax && *r->relax) {
        gpointer had = g_hash_table_lookup(c->relax, r->relax);
        g_hash_table_replace(c->relax, g_strdup(r->relax), GUINT_TO_POINTER(GPOINTER_TO_UINT(had) + n));
    }
}

/* A record, or a monthly total standing for n records. */
static int
s_scan_n(void *arg, const Haven__AuditRecord *r, uint64_t count)
{
    s_scan_t *s = arg;
    uint32_t n = count > UINT32_MAX ? UINT32_MAX : (uint32_t) count;
    if ((s->from && r->at < s->from) || (s->to && r->at >= s->to) || r->outcome != HAVEN__STATUS__STATUS_OK)
        return 0;
    char key[256];
    if (r->action && strcmp(r->action, "search") == 0) {
        char month[16];
        time_t t = (time_t) r->at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(month, sizeof month, "%Y-%m", &tm);
        const char *region = r->region && *r->region ? r->region : "(no reference district)";
        /* Each search counts under "all" and under every dimension it has. */
        snprintf(key, sizeof key, "%s\t%s\tall searches", month, region);
        s_count(s, key, r, n);
        for (int d = 0; d < BRK_DIM__COUNT; d++)
            if (r->dims & (1u << d)) {
                snprintf(key, sizeof key, "%s\t%s\t%s", month, region, brk_dim_name(d));
                s_count(s, key, r, n);
            }
    } else if (r->action && strcmp(r->action, "decline") == 0 && r->has_reason) {
        snprintf(key, sizeof key, "%s\t%s", hv_decline_reason_name(r->reason), hv_kind_name(r->kind));
        gpointer had = g_hash_table_lookup(s->declines, key);
        g_hash_table_replace(s->declines, g_strdup(key), GUINT_TO_POINTER(GPOINTER_TO_UINT(had) + n));
    }
    return 0;
}

static int
s_scan_one(void *arg, const Haven__AuditRecord *r)
{
    return s_scan_n(arg, r, 1);
}

static gint
s_cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static const char *
s_top(GHashTable *relax)
{
    GHashTableIter it;
    gpointer k, v;
    const char *best = "";
    guint most = 0;
    g_hash_table_iter_init(&it, relax);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (GPOINTER_TO_UINT(v) > most || (GPOINTER_TO_UINT(v) == most && strcmp(k, best) < 0)) {
            most = GPOINTER_TO_UINT(v);
            best = k;
        }
    return best;
}

static GPtrArray *
s_sorted_keys(GHashTable *h)
{
    GPtrArray *keys = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, h);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(keys, k);
    g_ptr_array_sort(keys, s_cmp_str);
    return keys;
}

/* ---------------------------------------------------------------- run */

/* unmet and declines: from the audit log, pruned months from its totals. */
static int
s_report_audit(brk_store_t *store, MDB_txn *txn, const char *name, int64_t from, int64_t to, s_table_t *t,
               Haven__ReportReply *reply)
{
    int rc;
    s_scan_t s = { from, to, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, s_cell_free),
                   g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) };
    /* Pruned months are in the totals, kept ones in the records. */
    rc = brk_audit_totals_each(store, txn, s_scan_n, &s);
    if (rc == 0)
        rc = brk_audit_each(store, txn, from, s_scan_one, &s);
    if (rc == 0 && strcmp(name, "unmet") == 0) {
        static const char *const cols[] = { "month", "region", "need", "searches", "found_none",
                                            "found_fewer", "would_help" };
        GPtrArray *keys = s_sorted_keys(s.cells);
        for (guint i = 0; i < keys->len; i++) {
            const char *k = g_ptr_array_index(keys, i);
            s_cell_t *c = g_hash_table_lookup(s.cells, k);
            char **parts = g_strsplit(k, "\t", 3);
            GPtrArray *row = s_row(t);
            s_cell(row, "%s", parts[0]);
            s_cell(row, "%s", parts[1]);
            s_cell(row, "%s", parts[2]);
            s_cell(row, "%u", c->searches);
            s_cell(row, "%u", c->none);
            s_cell(row, "%u", c->fewer);
            s_cell(row, "%s", s_top(c->relax));
            g_strfreev(parts);
        }
        g_ptr_array_free(keys, TRUE);
        rc = s_finish(t, cols, 7, reply);
    } else if (rc == 0) {
        static const char *const cols[] = { "reason", "provider_kind", "declines" };
        GPtrArray *keys = s_sorted_keys(s.declines);
        for (guint i = 0; i < keys->len; i++) {
            const char *k = g_ptr_array_index(keys, i);
            char **parts = g_strsplit(k, "\t", 2);
            GPtrArray *row = s_row(t);
            s_cell(row, "%s", parts[0]);
            s_cell(row, "%s", parts[1]);
            s_cell(row, "%u", GPOINTER_TO_UINT(g_hash_table_lookup(s.declines, k)));
            g_strfreev(parts);
        }
        g_ptr_array_free(keys, TRUE);
        rc = s_finish(t, cols, 3, reply);
    }
    g_hash_table_destroy(s.cells);
    g_hash_table_destroy(s.declines);
    return rc;
}

/* occupancy: units by region and provider kind, by status, from the index. */
static int
s_report_occupancy(const brk_index_t *index, const brk_districts_t *districts, s_table_t *t,
                   Haven__ReportReply *reply)
{
    static const char *const cols[] = { "region", "kind", "units", "available", "held", "occupied",
                                        "out_of_service" };
    GHashTable *counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (size_t i = 0; i < brk_index_unit_count(index); i++) {
        const brk_unit_t *u = brk_index_unit(index, (uint32_t) i);
        const brk_prov_t *p = brk_index_provider(index, u->prov);
        char key[256];
        snprintf(key, sizeof key, "%s\t%s", u->district >= 0 ? brk_districts_region(districts, u->district) : "?",
                 hv_kind_name(p->kind));
        uint32_t *c = g_hash_table_lookup(counts, key);
        if (!c) {
            c = g_new0(uint32_t, 5);
            g_hash_table_insert(counts, g_strdup(key), c);
        }
        c[0]++;
        if (u->status >= HAVEN__UNIT_STATUS__UNIT_AVAILABLE && u->status <= HAVEN__UNIT_STATUS__UNIT_HELD)
            c[u->status == HAVEN__UNIT_STATUS__UNIT_AVAILABLE ? 1 : u->status == HAVEN__UNIT_STATUS__UNIT_HELD ? 2
              : u->status == HAVEN__UNIT_STATUS__UNIT_OCCUPIED ? 3 : 4]++;
    }
    GPtrArray *keys = s_sorted_keys(counts);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = g_ptr_array_index(keys, i);
        uint32_t *c = g_hash_table_lookup(counts, k);
        char **parts = g_strsplit(k, "\t", 2);
        GPtrArray *row = s_row(t);
        s_cell(row, "%s", parts[0]);
        s_cell(row, "%s", parts[1]);
        for (int j = 0; j < 5; j++)
            s_cell(row, "%u", c[j]);
        g_strfreev(parts);
    }
    g_ptr_array_free(keys, TRUE);
    g_hash_table_destroy(counts);
    return s_finish(t, cols, 7, reply);
}

/* stale: providers with units overdue for confirmation, or not resynced. */
static int
s_report_stale(const brk_index_t *index, const brk_districts_t *districts, int64_t now, s_table_t *t,
               Haven__ReportReply *reply)
{
    int rc = 0;
    static const char *const cols[] = { "provider_id", "provider", "kind", "region", "units_stale",
                                        "units", "oldest_confirmation_h", "not_resynced" };
    size_t np = brk_index_provider_count(index);
    uint32_t *stale = calloc(np + 1, sizeof *stale), *units = calloc(np + 1, sizeof *units);
    int64_t *oldest = calloc(np + 1, sizeof *oldest);
    /* short of memory: an error, not a report that says nobody is overdue */
    if (!stale || !units || !oldest)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < brk_index_unit_count(index); i++) {
        const brk_unit_t *u = brk_index_unit(index, (uint32_t) i);
        const brk_prov_t *p = brk_index_provider(index, u->prov);
        units[u->prov]++;
        /* stale by age, or because its provider's agent has not yet
         * resynced a restored broker */
        if (brk_index_unit_stale(index, (uint32_t) i, now))
            stale[u->prov]++;
        if (u->confirmed_at + (int64_t) p->confirm_every_s < now) {
            int64_t age = now - u->confirmed_at;
            if (age > oldest[u->prov])
                oldest[u->prov] = age;
        }
    }
    for (size_t i = 0; rc == 0 && i < np; i++) {
        if (!stale[i])
            continue;
        const brk_prov_t *p = brk_index_provider(index, (uint32_t) i);
        GPtrArray *row = s_row(t);
        s_cell(row, "%s", p->id);
        s_cell(row, "%s", p->name);
        s_cell(row, "%s", hv_kind_name(p->kind));
        s_cell(row, "%s", p->district >= 0 ? brk_districts_region(districts, p->district) : "?");
        s_cell(row, "%u", stale[i]);
        s_cell(row, "%u", units[i]);
        if (oldest[i] > 100 * 365 * 86400LL)
            s_cell(row, "never");
        else
            s_cell(row, "%lld", (long long) (oldest[i] / 3600));
        s_cell(row, "%s", p->unsynced ? "yes" : "no");
    }
    free(stale);
    free(units);
    free(oldest);
    if (rc == 0)
        rc = s_finish(t, cols, 8, reply);
    return rc;
}

int
brk_report_run(brk_store_t *store, MDB_txn *txn, const brk_index_t *index,
               const brk_districts_t *districts, const char *name, int64_t from, int64_t to,
               int64_t now, Haven__ReportReply *reply)
{
    s_table_t t = { g_ptr_array_new_with_free_func(s_row_free), 0 };
    int rc = 0;
    haven__report_reply__init(reply);
    if (strcmp(name, "unmet") == 0 || strcmp(name, "declines") == 0)
        rc = s_report_audit(store, txn, name, from, to, &t, reply);
    else if (strcmp(name, "occupancy") == 0)
        rc = s_report_occupancy(index, districts, &t, reply);
    else
        rc = s_report_stale(index, districts, now, &t, reply);
    g_ptr_array_free(t.rows, TRUE);
    return rc;
}
