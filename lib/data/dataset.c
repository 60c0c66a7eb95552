/* Ingest into the store: read and check everything first, then write the
 * task file (temporary + rename), then one transaction for the row. */
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "data/taskfile.h"

int dataset_name_check(const char *name, XErr *e)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-')
        return xerr_set(e, XE_USAGE, "invalid dataset name '%s': 1 to 64 characters, not starting with '.' or '-'",
                        name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return xerr_set(e, XE_USAGE, "invalid dataset name '%s': only letters, digits, '.', '_' and '-'",
                            name);
    }
    return XE_OK;
}

static json_t *options_json(const DatasetAdd *a)
{
    const IngestOpts *o = &a->opt;
    json_t *j = json_object(), *cls = json_null();
    if (o->classes) {
        cls = json_array();
        for (int i = 0; i < o->nclasses; i++)
            json_array_append_new(cls, json_string(o->classes[i]));
    }
    json_object_set_new(j, "format", json_string(ingest_format_name(a->format)));
    json_object_set_new(j, "classes", cls);
    json_object_set_new(j, "resize", o->resize_h ? json_pack("[ii]", o->resize_h, o->resize_w) : json_null());
    json_object_set_new(j, "grayscale", json_boolean(o->grayscale));
    json_object_set_new(j, "limit_per_class", json_integer(o->limit_per_class));
    json_object_set_new(j, "valid_fraction",
                        o->valid_fraction < 0 ? json_null() : json_real(o->valid_fraction));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "coarse", json_boolean(o->coarse));
    return j;
}

/* Source identity without reading the data: paths, sizes, mtimes (recursive). */
static int fingerprint_path(Sha256 *h, const char *path, int depth, XErr *e)
{
    struct stat st;
    char line[PATH_MAX + 64];
    if (stat(path, &st) != 0)
        return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
    snprintf(line, sizeof line, "%s %lld %lld.%09ld\n", path, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    sha256_update(h, line, strlen(line));
    if (S_ISDIR(st.st_mode) && depth < 16) {
        struct dirent **list;
        int n = scandir(path, &list, NULL, alphasort);
        if (n < 0)
            return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        for (int i = 0; i < n; i++) {
            char sub[PATH_MAX];
            if (list[i]->d_name[0] != '.' && e->code == XE_OK) {
                snprintf(sub, sizeof sub, "%s/%s", path, list[i]->d_name);
                fingerprint_path(h, sub, depth + 1, e);
            }
            free(list[i]);
        }
        free(list);
    }
    return e->code;
}

static int fingerprint(json_t *sources, const char *opts, char hex[65], XErr *e)
{
    Sha256 h;
    size_t i;
    json_t *v;
    if (sha256_init(&h))
        return xerr_set(e, XE_FAIL, "out of memory");
    sha256_update(&h, opts, strlen(opts));
    json_array_foreach(sources, i, v)
    {
        if (fingerprint_path(&h, json_string_value(v), 0, e)) {
            sha256_release(&h);
            return e->code;
        }
    }
    sha256_final_hex(&h, hex);
    return XE_OK;
}

static char *join_path(const char *dir, const char *file)
{
    char *p;
    return asprintf(&p, "%s/%s", dir, file) < 0 ? NULL : p;
}

/* The stored path is relative to the database's directory. */
static char *relative_task_path(const Store *st, const char *file)
{
    const char *slash = strrchr(st->path, '/');
    const char *base = slash ? slash + 1 : st->path;
    char *p;
    return asprintf(&p, "%s.tasks/%s", base, file) < 0 ? NULL : p;
}

static char *absolute_task_path(const Store *st, const char *rel)
{
    const char *slash = strrchr(st->path, '/');
    char *p;
    if (!slash)
        return strdup(rel);
    return asprintf(&p, "%.*s/%s", (int)(slash - st->path), st->path, rel) < 0 ? NULL : p;
}

/* Existing row: 1 and its fingerprint/path, 0 if none. */
static int existing(Store *st, const char *name, char **fp, char **path, XErr *e)
{
    sqlite3_stmt *q;
    int rc, found = 0;
    *fp = *path = NULL;
    if (store_prepare(st, &q, "SELECT fingerprint, path FROM datasets WHERE name = ?1", e))
        return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(q, 0);
        const char *p = (const char *)sqlite3_column_text(q, 1);
        *fp = f ? strdup(f) : NULL;
        *path = p ? strdup(p) : NULL;
        found = 1;
    } else if (rc != SQLITE_DONE) {
        store_fail(st, e, "query");
        found = -1;
    }
    sqlite3_finalize(q);
    return found;
}

static json_t *json_doubles(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static int insert_row(Store *st, const DatasetAdd *a, const Builder *b, IngestFormat found,
                      const char *sources, const char *opts, const char *fp, const char *rel,
                      const char *sha, XErr *e)
{
    sqlite3_stmt *q;
    json_t *names = json_array(), *meta = json_object(), *counts = json_array();
    char *names_s, *mean_s, *std_s, *meta_s;
    json_t *mean = json_doubles(b->mean, b->c), *sd = json_doubles(b->std, b->c);
    uint64_t *per = calloc((size_t)b->nout, sizeof *per);
    int rc;
    for (int k = 0; k < b->nout; k++)
        json_array_append_new(names, json_string(b->out_names[k]));
    if (per) {
        const SplitBuf *tr = &b->split[SPLIT_TRAIN];
        for (size_t i = 0; i < tr->n; i++)
            if (!b->to_valid[i])
                per[tr->lab[i]]++;
        for (int k = 0; k < b->nout; k++)
            json_array_append_new(counts, json_integer((json_int_t)per[k]));
        free(per);
    }
    json_object_set_new(meta, "train_per_class", counts);
    names_s = json_dumps(names, JSON_COMPACT);
    mean_s = json_dumps(mean, JSON_COMPACT | JSON_REAL_PRECISION(8));
    std_s = json_dumps(sd, JSON_COMPACT | JSON_REAL_PRECISION(8));
    meta_s = json_dumps(meta, JSON_COMPACT);
    json_decref(names), json_decref(mean), json_decref(sd), json_decref(meta);
    rc = store_prepare(st, &q,
                       "INSERT INTO datasets (name, kind, source, format, options, fingerprint, height, width, "
                       "channels, classes, class_names, n_train, n_valid, n_test, mean, std, checksum, path, meta) "
                       "VALUES (?1, 'stored', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                       "?17, ?18) "
                       "ON CONFLICT (name) DO UPDATE SET kind = 'stored', source = ?2, format = ?3, options = ?4, "
                       "fingerprint = ?5, height = ?6, width = ?7, channels = ?8, classes = ?9, "
                       "class_names = ?10, n_train = ?11, n_valid = ?12, n_test = ?13, mean = ?14, std = ?15, "
                       "checksum = ?16, path = ?17, meta = ?18, "
                       "created_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                       e);
    if (rc == XE_OK) {
        sqlite3_bind_text(q, 1, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, sources, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, ingest_format_name(found), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, opts, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, fp, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 6, b->h);
        sqlite3_bind_int(q, 7, b->w);
        sqlite3_bind_int(q, 8, b->c);
        sqlite3_bind_int(q, 9, b->nout);
        sqlite3_bind_text(q, 10, names_s, -1, SQLITE_STATIC);
        for (int s = 0; s < SPLIT_COUNT; s++)
            sqlite3_bind_int64(q, 11 + s, (sqlite3_int64)b->count[s]);
        sqlite3_bind_text(q, 14, mean_s, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 15, std_s, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 16, sha, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 17, rel, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 18, meta_s, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = store_fail(st, e, "storing the dataset");
        sqlite3_finalize(q);
    }
    free(names_s), free(mean_s), free(std_s), free(meta_s);
    return rc;
}

int dataset_add(const DatasetAdd *a, DatasetOutcome *out, XErr *e)
{
    Builder b;
    Store st = { 0 };
    json_t *sources = json_array(), *opts = options_json(a);
    char *sources_s = NULL, *opts_s = NULL, *old_fp = NULL, *old_path = NULL, *dir = NULL;
    char *file = NULL, *rel = NULL, *abs_new = NULL, fp[65], sha[65];
    int rc = XE_FAIL, have = 0, made_dir = 0;
    IngestFormat found;
    builder_init(&b, &a->opt);
    *out = DATASET_STORED;
    if ((rc = dataset_name_check(a->name, e)))
        goto cleanup;
    rc = XE_FAIL;
    for (int i = 0; i < a->nsources; i++) {
        char *rp = realpath(a->sources[i], NULL);
        if (!rp) {
            xerr_set(e, XE_FAIL, "'%s': %s", a->sources[i], strerror(errno));
            goto cleanup;
        }
        json_array_append_new(sources, json_string(rp));
        free(rp);
    }
    sources_s = json_dumps(sources, JSON_COMPACT);
    opts_s = json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS);
    if (!sources_s || !opts_s || fingerprint(sources, opts_s, fp, e))
        goto cleanup;
    /* An existing database is consulted before any work is done. */
    if (access(a->db, F_OK) == 0) {
        if (store_open(&st, a->db, 0, e))
            goto cleanup;
        have = existing(&st, a->name, &old_fp, &old_path, e);
        if (have < 0)
            goto cleanup;
        if (have && !a->replace) {
            if (old_fp && !strcmp(old_fp, fp)) {
                *out = DATASET_UNCHANGED;
                rc = XE_OK;
            } else {
                xerr_set(e, XE_FAIL,
                         "dataset '%s' already exists with another source or options: use --replace", a->name);
            }
            goto cleanup;
        }
        store_close(&st);
    }
    if (ingest_read(&b, a->sources, a->nsources, a->format, &found, e))
        goto cleanup;
    if (store_open(&st, a->db, 1, e))
        goto cleanup;
    dir = store_data_dir(&st);
    if (!dir) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    made_dir = access(dir, F_OK) != 0;
    if (taskfile_write(&b, dir, a->name, &file, sha, e))
        goto cleanup;
    abs_new = join_path(dir, file);
    rel = relative_task_path(&st, file);
    if (!rel || !abs_new) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    if (store_begin(&st, e))
        goto cleanup;
    free(old_fp), free(old_path);
    have = existing(&st, a->name, &old_fp, &old_path, e);
    if (have < 0)
        goto cleanup;
    if (have && !a->replace) {
        xerr_set(e, XE_FAIL, "dataset '%s' was added meanwhile by another process", a->name);
        goto cleanup;
    }
    if (insert_row(&st, a, &b, found, sources_s, opts_s, fp, rel, sha, e) || store_commit(&st, e))
        goto cleanup;
    if (have) {
        *out = DATASET_REPLACED;
        if (old_path && strcmp(old_path, rel)) {
            char *old_abs = absolute_task_path(&st, old_path);
            if (old_abs)
                unlink(old_abs);
            free(old_abs);
        }
    }
    rc = XE_OK;
cleanup:
    if (rc) {
        /* Same content, same name: the old file is the new one; keep it. */
        if (abs_new && !(have && old_path && rel && !strcmp(old_path, rel)))
            unlink(abs_new);
        if (made_dir && dir)
            rmdir(dir);
        if (st.db)
            store_abandon(&st);
    } else if (st.db) {
        store_close(&st);
    }
    builder_release(&b);
    json_decref(sources), json_decref(opts);
    free(sources_s), free(opts_s), free(old_fp), free(old_path), free(dir), free(file), free(rel), free(abs_new);
    /* the status of the first error (usage, interrupted) wins */
    return rc && e->code ? e->code : rc;
}

static json_t *column_json(sqlite3_stmt *q, int i)
{
    const char *name = sqlite3_column_name(q, i);
    int is_json = !strcmp(name, "class_names") || !strcmp(name, "mean") || !strcmp(name, "std") ||
                  !strcmp(name, "options") || !strcmp(name, "meta") || !strcmp(name, "source");
    switch (sqlite3_column_type(q, i)) {
    case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(q, i));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(q, i));
    case SQLITE_NULL: return json_null();
    default: {
        const char *t = (const char *)sqlite3_column_text(q, i);
        json_t *v = is_json ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
        return v ? v : json_string(t);
    }
    }
}

static const char *const dataset_columns =
    "SELECT d.name, d.kind, d.format, d.source, d.height, d.width, d.channels, d.classes, d.class_names, "
    "d.n_train, d.n_valid, d.n_test, d.mean, d.std, d.checksum, d.path, d.options, d.meta, d.created_at, "
    "(SELECT count(*) FROM runs r WHERE r.dataset_id = d.id) AS runs FROM datasets d";

static json_t *row_json(sqlite3_stmt *q)
{
    json_t *o = json_object();
    for (int i = 0; i < sqlite3_column_count(q); i++)
        json_object_set_new(o, sqlite3_column_name(q, i), column_json(q, i));
    return o;
}

json_t *dataset_get(Store *st, const char *name, XErr *e)
{
    sqlite3_stmt *q;
    json_t *o = NULL;
    char sql[1024];
    int rc;
    snprintf(sql, sizeof sql, "%s WHERE d.name = ?1", dataset_columns);
    if (store_prepare(st, &q, sql, e))
        return NULL;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        o = row_json(q);
    else if (rc == SQLITE_DONE)
        xerr_set(e, XE_FAIL, "no dataset '%s' in '%s'", name, st->path);
    else
        store_fail(st, e, "query");
    sqlite3_finalize(q);
    return o;
}

json_t *dataset_list(Store *st, XErr *e)
{
    sqlite3_stmt *q;
    json_t *all = json_array();
    char sql[1024];
    int rc;
    snprintf(sql, sizeof sql, "%s ORDER BY d.name", dataset_columns);
    if (store_prepare(st, &q, sql, e)) {
        json_decref(all);
        return NULL;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        json_array_append_new(all, row_json(q));
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        json_decref(all);
        store_fail(st, e, "query");
        return NULL;
    }
    return all;
}

int dataset_print(FILE *out, const json_t *d, int as_json)
{
    const char *key;
    json_t *v;
    if (as_json) {
        char *s = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        if (!s)
            return XE_FAIL;
        fprintf(out, "%s\n", s);
        free(s);
        return XE_OK;
    }
    json_object_foreach((json_t *)d, key, v)
    {
        if (json_is_null(v))
            continue;
        if (json_is_string(v)) {
            fprintf(out, "%-12s %s\n", key, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
            fprintf(out, "%-12s %s\n", key, s ? s : "?");
            free(s);
        }
    }
    return XE_OK;
}
