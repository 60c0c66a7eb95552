/* Run records in JSON Lines (the form train-meta emits): moves metadata
 * between databases. A run already done is left alone; a planned or failed
 * one is completed by a done record; curves come with their run. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "data/import.h"
#include "db/store.h"
#include "meta/meta.h"
#include "space/space.h"

typedef struct Ctx {
    Store *st;
    const char *file;
    long line;
    XErr *e;
} Ctx;

static int bad(Ctx *c, const char *fmt, const char *field)
{
    char what[256];
    snprintf(what, sizeof what, fmt, field);
    return xerr_set(c->e, XE_FAIL, "'%s': line %ld: %s", c->file, c->line, what);
}

/* Optional number field in [lo, hi]: NAN when absent or null. */
static int num(Ctx *c, json_t *o, const char *k, double lo, double hi, double *v)
{
    json_t *j = json_object_get(o, k);
    *v = NAN;
    if (!j || json_is_null(j))
        return XE_OK;
    if (!json_is_number(j))
        return bad(c, "'%s' is not a number", k);
    *v = json_number_value(j);
    if (!(*v >= lo && *v <= hi))
        return bad(c, "'%s' out of range", k);
    return XE_OK;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void bind_num(sqlite3_stmt *q, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_double(q, i, v);
}

static void bind_str(sqlite3_stmt *q, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static int put_curve(Ctx *c, int64_t run, json_t *curve)
{
    static const char *const keys[] = { "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds" };
    sqlite3_stmt *q;
    size_t i;
    json_t *pt;
    int rc = XE_OK;
    if (!curve || json_is_null(curve))
        return XE_OK;
    if (!json_is_array(curve))
        return bad(c, "'%s' is not an array", "curve");
    if (store_prepare(c->st, &q,
                      "INSERT OR REPLACE INTO curves (run_id, epoch, train_loss, train_acc, valid_loss, valid_acc, "
                      "lr, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                      c->e))
        return c->e->code;
    json_array_foreach(curve, i, pt)
    {
        json_t *ep = json_object_get(pt, "epoch");
        if (!json_is_object(pt) || !json_is_integer(ep) || json_integer_value(ep) < 1) {
            rc = bad(c, "curve point without an integer '%s' >= 1", "epoch");
            break;
        }
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, run);
        sqlite3_bind_int64(q, 2, json_integer_value(ep));
        for (int k = 0; k < 6; k++) {
            double v;
            int acc = strstr(keys[k], "acc") != NULL;
            if ((rc = num(c, pt, keys[k], acc ? 0 : -HUGE_VAL, acc ? 1 : HUGE_VAL, &v)))
                break;
            bind_num(q, 3 + k, v);
        }
        if (rc)
            break;
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = store_fail(c->st, c->e, "adding a curve point");
            break;
        }
    }
    sqlite3_finalize(q);
    return rc;
}

/* A virtual dataset takes the probe accuracies (xfer-train-meta probe) its
 * runs' records carry, where it has none yet. */
static int set_dataset_probes(Ctx *c, int64_t id, json_t *probes)
{
    sqlite3_stmt *q;
    XErr pe = { 0 };
    char *text;
    int rc;
    if (!probes)
        return XE_OK;
    if (probe_check(probes, &pe))
        return bad(c, "dataset_info: %s", pe.msg);
    if (!(text = json_dumps(probes, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9))))
        return xerr_set(c->e, XE_FAIL, "out of memory");
    if ((rc = store_prepare(c->st, &q,
                            "UPDATE datasets SET meta = json_set(CASE WHEN json_valid(meta) THEN meta ELSE '{}' END,"
                            " '$.probes', json(?2)) WHERE id = ?1 AND kind = 'virtual'"
                            " AND (NOT json_valid(meta) OR json_extract(meta, '$.probes') IS NULL)",
                            c->e)) == XE_OK) {
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = store_fail(c->st, c->e, "recording a dataset's probes");
        sqlite3_finalize(q);
    }
    free(text);
    return rc;
}

/* A virtual dataset takes the shape, classes and split sizes its runs'
 * records carry (xfer-train-meta export), where it has none yet: the
 * meta-features the predictors weigh source tasks by. */
static int set_dataset_info(Ctx *c, int64_t id, json_t *di)
{
    static const char *const keys[] = { "height", "width", "channels", "classes", "n_train", "n_valid" };
    for (int i = 0; i < 6; i++) {
        json_t *v = json_object_get(di, keys[i]);
        sqlite3_stmt *q;
        char sql[160];
        if (!v)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1LL << 40))
            return bad(c, "'dataset_info.%s' is not a count", keys[i]);
        snprintf(sql, sizeof sql, "UPDATE datasets SET %s = ?2 WHERE id = ?1 AND kind = 'virtual' AND %s IS NULL",
                 keys[i], keys[i]);
        if (store_prepare(c->st, &q, sql, c->e))
            return c->e->code;
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_int64(q, 2, json_integer_value(v));
        if (sqlite3_step(q) != SQLITE_DONE) {
            sqlite3_finalize(q);
            return store_fail(c->st, c->e, "recording a dataset's shape");
        }
        sqlite3_finalize(q);
    }
    return set_dataset_probes(c, id, json_object_get(di, "probes"));
}

/* A record's protocol_hash (a prefix of at least 12 digits, as export
 * writes it) must be its recipe's: a recipe rewritten on the way (a JSON
 * tool that prints 0.0 as 0 changes the canonical form) would otherwise
 * land as another protocol, apart from its siblings. */
static int check_protocol_hash(Ctx *c, const char *recipe, const char *given)
{
    char *canon = NULL, hash[65];
    size_t n = strlen(given);
    if (store_recipe_hash(recipe, &canon, hash, c->e))
        return c->e->code;
    free(canon);
    if (n >= 12 && n <= 64 && !strncmp(hash, given, n))
        return XE_OK;
    return xerr_set(c->e, XE_FAIL,
                    "'%s': line %ld: protocol_hash '%.64s' is not its recipe's (%.12s): was the recipe rewritten on"
                    " the way (a JSON tool that prints 0.0 as 0 changes it)?",
                    c->file, c->line, given, hash);
}

static int put_run(Ctx *c, json_t *o, ImportStats *stats)
{
    const char *space = str(o, "space"), *arch = str(o, "arch"), *ds = str(o, "dataset");
    const char *status = str(o, "status"), *source = str(o, "source");
    json_t *proto = json_object_get(o, "protocol"), *seedj = json_object_get(o, "seed");
    const Space *sp;
    char canon[1024], hash[65], *recipe;
    const char *pname, *pname_given = NULL;
    int64_t arch_id, ds_id, proto_id, run_id = 0;
    int created, rc;
    double va, ta, secs, params, flops;
    sqlite3_stmt *q;
    if (!space || !arch || !ds)
        return bad(c, "missing '%s' (space, arch and dataset are required)", !space ? "space" : !arch ? "arch" : "dataset");
    if (!(sp = space_find(space)))
        return bad(c, "unknown space '%s'", space);
    if (space_canonical_hash(sp, arch, canon, sizeof canon, hash, c->e)) {
        xerr_prefix(c->e, "'%s': line %ld: ", c->file, c->line);
        return c->e->code;
    }
    /* the recipe object itself, or (as train-meta prints) its name and
     * the recipe apart */
    if (json_is_string(proto) && json_is_object(json_object_get(o, "recipe"))) {
        pname_given = json_string_value(proto);
        proto = json_object_get(o, "recipe");
    }
    if (!json_is_object(proto))
        return bad(c, "'%s' must be the recipe object (or its name, with the object as 'recipe')", "protocol");
    if (seedj && !json_is_integer(seedj))
        return bad(c, "'%s' is not an integer", "seed");
    status = status ? status : "done";
    if (strcmp(status, "done") && strcmp(status, "failed") && strcmp(status, "terminated-early"))
        return bad(c, "status '%s' cannot be imported (done, failed, terminated-early)", status);
    source = source ? source : "trained";
    if (strcmp(source, "trained") && strcmp(source, "imported"))
        return bad(c, "source '%s' is not trained or imported", source);
    if (num(c, o, "valid_acc", 0, 1, &va) || num(c, o, "test_acc", 0, 1, &ta) ||
        num(c, o, "seconds", 0, HUGE_VAL, &secs) || num(c, o, "params", 0, 1e15, &params) ||
        num(c, o, "flops", 0, 1e18, &flops))
        return c->e->code;
    if (import_virtual_dataset(c->st, ds, "runs", c->file, 1, &ds_id, &created, c->e))
        return c->e->code;
    stats->datasets += created;
    if (json_is_object(json_object_get(o, "dataset_info")) && set_dataset_info(c, ds_id, json_object_get(o, "dataset_info")))
        return c->e->code;
    recipe = json_dumps(proto, JSON_COMPACT | JSON_SORT_KEYS);
    if (recipe && str(o, "protocol_hash") && check_protocol_hash(c, recipe, str(o, "protocol_hash"))) {
        free(recipe);
        return c->e->code;
    }
    pname = pname_given ? pname_given : str(proto, "name") ? str(proto, "name") : "custom";
    rc = !recipe ? xerr_set(c->e, XE_FAIL, "out of memory")
                 : store_protocol_id(c->st, pname, recipe, &proto_id, c->e);
    free(recipe);
    if (rc || store_arch_id(c->st, sp->name, canon, hash, &arch_id, c->e))
        return c->e->code;
    /* Insert, or complete a run that is not done yet; never touch a done one. */
    if (store_prepare(c->st, &q,
                      "INSERT INTO runs (arch_id, dataset_id, protocol_id, seed, status, source, valid_acc, "
                      "test_acc, params, flops, seconds, device, error, epochs_done, started_at, finished_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
                      "ON CONFLICT (arch_id, dataset_id, protocol_id, seed) DO UPDATE SET status = ?5, "
                      "source = ?6, valid_acc = ?7, test_acc = ?8, params = ?9, flops = ?10, seconds = ?11, "
                      "device = ?12, error = ?13, epochs_done = ?14, started_at = ?15, finished_at = ?16, "
                      "worker = NULL, lease_until = NULL "
                      "WHERE runs.status NOT IN ('done', 'terminated-early') AND ?5 <> 'failed' "
                      "RETURNING id",
                      c->e))
        return c->e->code;
    sqlite3_bind_int64(q, 1, arch_id);
    sqlite3_bind_int64(q, 2, ds_id);
    sqlite3_bind_int64(q, 3, proto_id);
    sqlite3_bind_int64(q, 4, seedj ? json_integer_value(seedj) : 0);
    sqlite3_bind_text(q, 5, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, source, -1, SQLITE_STATIC);
    bind_num(q, 7, va);
    bind_num(q, 8, ta);
    if (isnan(params))
        sqlite3_bind_null(q, 9);
    else
        sqlite3_bind_int64(q, 9, (sqlite3_int64)params);
    if (isnan(flops))
        sqlite3_bind_null(q, 10);
    else
        sqlite3_bind_int64(q, 10, (sqlite3_int64)flops);
    bind_num(q, 11, secs);
    bind_str(q, 12, str(o, "device"));
    bind_str(q, 13, str(o, "error"));
    sqlite3_bind_int64(q, 14, json_is_array(json_object_get(o, "curve")) ?
                                  (sqlite3_int64)json_array_size(json_object_get(o, "curve")) : 0);
    bind_str(q, 15, str(o, "started_at"));
    bind_str(q, 16, str(o, "finished_at"));
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        run_id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(c->st, c->e, "adding a run");
    if (!run_id) {
        stats->present++;
        return XE_OK;
    }
    stats->added++;
    return put_curve(c, run_id, json_object_get(o, "curve"));
}

int runs_import(const char *db, const char *file, ImportStats *stats, XErr *e)
{
    XStream s;
    Store st = { 0 };
    uint8_t *buf = NULL;
    size_t n;
    int rc;
    Ctx c = { &st, file, 0, e };
    char *line, *next;
    memset(stats, 0, sizeof *stats);
    rc = !strcmp(file, "-") ? xstream_open_file(&s, stdin, "<stdin>", e) : xstream_open_path(&s, file, e);
    if (rc == XE_OK)
        rc = xstream_read_all(&s, &buf, &n, (size_t)1 << 34, e);
    xstream_release(&s);
    if (rc)
        return rc;
    if (!strcmp(file, "-"))
        c.file = "<stdin>";
    {
        uint8_t *t = realloc(buf, n + 1);
        if (!t) {
            free(buf);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
        buf = t;
        buf[n] = '\0';
    }
    if (memchr(buf, '\0', n)) {
        free(buf);
        return xerr_set(e, XE_FAIL, "'%s': binary data, not JSON Lines", c.file);
    }
    if (store_open(&st, db, 1, e) || store_begin(&st, e))
        goto fail;
    for (line = (char *)buf; line && *line; line = next) {
        json_error_t je;
        json_t *o;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        c.line++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
        if (!o) {
            xerr_set(e, XE_FAIL, "'%s': line %ld: invalid JSON: %s", c.file, c.line, je.text);
            goto fail;
        }
        stats->rows++;
        rc = json_is_object(o) ? put_run(&c, o, stats) : bad(&c, "%s", "not a JSON object");
        json_decref(o);
        if (rc)
            goto fail;
    }
    if (store_commit(&st, e))
        goto fail;
    store_close(&st);
    free(buf);
    return XE_OK;
fail:
    if (st.db)
        store_abandon(&st);
    free(buf);
    return e->code ? e->code : XE_FAIL;
}
