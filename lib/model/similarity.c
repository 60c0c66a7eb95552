/* Dataset meta-features from the store and the softmax-of-distance
 * weights the similarity-weighted zero-shot predictor uses. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/similarity.h"

const char *const sim_feature_names[SIM_NFEAT] = { "classes",     "height",      "width",      "channels",  "n_train",
                                                   "probe_conv3", "probe_conv1", "probe_pool", "probe_skip" };

int sim_dataset_features(Store *st, int64_t dataset_id, double f[SIM_NFEAT], XErr *e)
{
    sqlite3_stmt *q = NULL;
    double acc[PROBE_COUNT];
    int rc, have;
    for (int k = 0; k < SIM_NFEAT; k++)
        f[k] = NAN;
    if ((have = probe_read(st, dataset_id, acc, e)) < 0)
        return e->code;
    for (int k = 0; have && k < PROBE_COUNT; k++)
        f[SIM_PROBE + k] = fmax(1 - acc[k], 1e-3);
    if (store_prepare(st, &q,
                      "SELECT classes, height, width, channels, n_train, json_extract(meta, '$.classes'),"
                      " json_extract(meta, '$.height'), json_extract(meta, '$.width'),"
                      " json_extract(meta, '$.channels'), json_extract(meta, '$.n_train')"
                      " FROM datasets WHERE id = ?1 AND json_valid(meta)",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, dataset_id);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW)
        for (int k = 0; k < SIM_PROBE; k++)
            for (int c = k; c < 2 * SIM_PROBE; c += SIM_PROBE) {
                int t = sqlite3_column_type(q, c);
                double v = sqlite3_column_double(q, c);
                if ((t == SQLITE_INTEGER || t == SQLITE_FLOAT) && v > 0 && isfinite(v)) {
                    f[k] = v;
                    break;
                }
            }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? XE_OK : store_fail(st, e, "reading a dataset's meta-features");
}

unsigned sim_weights(const double target[SIM_NFEAT], int n, const double *const *src, double tau, double *w)
{
    unsigned used = 0;
    double mean[SIM_NFEAT], sd[SIM_NFEAT], dmin = INFINITY, sum = 0;
    int nsrc = 0, nf = 0;
    for (int i = 0; i < n; i++)
        nsrc += src[i] != NULL;
    for (int k = 0; k < SIM_NFEAT && nsrc; k++) {
        double s = 0, ss = 0;
        int ok = isfinite(target[k]) && target[k] > 0;
        for (int i = 0; ok && i < n; i++)
            if (src[i]) {
                ok = isfinite(src[i][k]) && src[i][k] > 0;
                s += ok ? log(src[i][k]) : 0;
            }
        if (!ok)
            continue;
        mean[k] = s / nsrc;
        for (int i = 0; i < n; i++)
            if (src[i])
                ss += (log(src[i][k]) - mean[k]) * (log(src[i][k]) - mean[k]);
        sd[k] = sqrt(ss / nsrc);
        if (sd[k] > 1e-12)
            used |= 1u << k, nf++;
    }
    for (int i = 0; i < n; i++) {
        double d = 0;
        if (!src[i])
            continue;
        for (int k = 0; k < SIM_NFEAT; k++)
            if (used & (1u << k)) {
                double z = (log(target[k]) - log(src[i][k])) / sd[k];
                d += z * z;
            }
        w[i] = nf ? sqrt(d / nf) : 0;
        if (w[i] < dmin)
            dmin = w[i];
    }
    /* exp(-(d - dmin) / tau): the same softmax, without underflow */
    for (int i = 0; i < n; i++) {
        w[i] = src[i] ? exp(-(w[i] - dmin) / tau) : 0;
        sum += w[i];
    }
    for (int i = 0; i < n; i++)
        w[i] = sum > 0 ? w[i] / sum : 0;
    return used;
}

void sim_feature_list(unsigned used, char *buf, int len)
{
    int at = 0;
    buf[0] = 0;
    for (int k = 0; k < SIM_NFEAT && at < len; k++)
        if (used & (1u << k))
            at += snprintf(buf + at, (size_t)(len - at), "%s%s", at ? ", " : "", sim_feature_names[k]);
}
