/* Probe networks: a dataset's meta-features from a few fixed cells
 * trained briefly on it (meta.h says which and why). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta.h"

const char *const probe_names[PROBE_COUNT] = { "conv3", "conv1", "pool", "skip" };
const char *const probe_archs[PROBE_COUNT] = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
};

void probe_protocol(Protocol *p)
{
    XErr e = { 0 };
    if (protocol_preset("cheap", p, &e)) /* a preset of protocol.c: cannot fail */
        abort();
    p->epochs = PROBE_EPOCHS;
    snprintf(p->name, sizeof p->name, "probe");
}

int probe_recipe(char hash[13], XErr *e)
{
    Protocol p;
    json_t *j, *archs = json_array();
    char *recipe, *text, *canon = NULL, full[65];
    int rc;
    probe_protocol(&p);
    recipe = protocol_json(&p);
    j = recipe ? json_loads(recipe, 0, NULL) : NULL;
    free(recipe);
    for (int k = 0; archs && k < PROBE_COUNT; k++)
        json_array_append_new(archs, json_pack("[ss]", probe_names[k], probe_archs[k]));
    if (!j || !archs || json_object_set_new(j, "probes", archs)) {
        json_decref(j);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    rc = text ? store_recipe_hash(text, &canon, full, e) : xerr_set(e, XE_FAIL, "out of memory");
    free(text), free(canon);
    if (!rc)
        snprintf(hash, 13, "%.12s", full);
    return rc;
}

static int probe_epoch(void *ctx, const Net *net, const EpochPoint *p, XErr *e)
{
    (void)net;
    *(double *)ctx = p->valid_acc;
    return xfer_interrupted ? xerr_set(e, XE_INTR, "interrupted") : XE_OK;
}

int probe_train(const TaskFile *t, const double *mean, const double *std, const NnBackend *be, int k,
                double *valid_acc, XErr *e)
{
    Protocol p;
    Recipe r;
    Net net = { 0 };
    SpaceCost cost;
    double test_acc;
    int rc;
    probe_protocol(&p);
    protocol_recipe(&p, 0, &r);
    *valid_acc = NAN;
    rc = meta_build_net(&net, be, "nb201", probe_archs[k], &p, p.batch, t, 0, 0, &cost, e);
    if (!rc)
        rc = train_run(&net, t, mean, std, &r, 0, probe_epoch, valid_acc, &test_acc, e);
    net_release(&net);
    if (rc)
        xerr_prefix(e, "probe %s: ", probe_names[k]);
    return rc;
}

int probe_check(const json_t *probes, XErr *e)
{
    const json_t *h = json_object_get(probes, "recipe");
    if (!json_is_object(probes))
        return xerr_set(e, XE_FAIL, "'probes' is not an object");
    if (!json_is_string(h) || json_string_length(h) != 12 ||
        strspn(json_string_value(h), "0123456789abcdef") != 12)
        return xerr_set(e, XE_FAIL, "'probes.recipe' is not a 12-hex-digit recipe hash");
    for (int k = 0; k < PROBE_COUNT; k++) {
        const json_t *v = json_object_get(probes, probe_names[k]);
        if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
            return xerr_set(e, XE_FAIL, "'probes.%s' is not an accuracy in [0, 1]", probe_names[k]);
    }
    return XE_OK;
}

int probe_read(Store *st, int64_t dataset_id, double acc[PROBE_COUNT], XErr *e)
{
    sqlite3_stmt *q = NULL;
    json_t *j = NULL;
    char hash[13];
    int rc, have = 0;
    for (int k = 0; k < PROBE_COUNT; k++)
        acc[k] = NAN;
    if (probe_recipe(hash, e) ||
        store_prepare(st, &q, "SELECT json_extract(meta, '$.probes') FROM datasets WHERE id = ?1 AND json_valid(meta)",
                      e))
        return -1;
    sqlite3_bind_int64(q, 1, dataset_id);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_TEXT)
        j = json_loads((const char *)sqlite3_column_text(q, 0), 0, NULL);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(st, e, "reading a dataset's probes"), -1;
    if (j && !strcmp(json_string_value(json_object_get(j, "recipe")) ?: "", hash)) {
        XErr ce = { 0 };
        if (!probe_check(j, &ce)) {
            for (int k = 0; k < PROBE_COUNT; k++)
                acc[k] = json_number_value(json_object_get(j, probe_names[k]));
            have = 1;
        }
    }
    json_decref(j);
    return have;
}

int probe_store(Store *st, int64_t dataset_id, const double acc[PROBE_COUNT], XErr *e)
{
    sqlite3_stmt *q = NULL;
    json_t *j = json_object();
    char hash[13], *text = NULL;
    int rc;
    if (!j || probe_recipe(hash, e)) {
        json_decref(j);
        return j ? e->code : xerr_set(e, XE_FAIL, "out of memory");
    }
    json_object_set_new(j, "recipe", json_string(hash));
    for (int k = 0; k < PROBE_COUNT; k++)
        json_object_set_new(j, probe_names[k], json_real(acc[k]));
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!text)
        return xerr_set(e, XE_FAIL, "out of memory");
    if ((rc = store_prepare(st, &q,
                            "UPDATE datasets SET meta = json_set(CASE WHEN json_valid(meta) THEN meta ELSE '{}' END,"
                            " '$.probes', json(?2)) WHERE id = ?1",
                            e)) == XE_OK) {
        sqlite3_bind_int64(q, 1, dataset_id);
        sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = store_fail(st, e, "recording a dataset's probes");
        else if (sqlite3_changes(st->db) != 1)
            rc = xerr_set(e, XE_FAIL, "dataset %lld not found", (long long)dataset_id);
        sqlite3_finalize(q);
    }
    free(text);
    return rc;
}
