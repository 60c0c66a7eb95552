/* Dataset similarity for zero-shot transfer: meta-features of stored
 * tasks (classes, resolution, channels, training-set size, and the error
 * rates of the probe networks, xfer-train-meta probe) and weights
 * over the source tasks for a target, from how far its features are from
 * each source's (xfer_predict_weighted takes them). */
#ifndef XFER_MODEL_SIMILARITY_H
#define XFER_MODEL_SIMILARITY_H

#include <stdint.h>

#include "core/err.h"
#include "db/store.h"
#include "meta/meta.h"

enum {
    SIM_CLASSES, SIM_HEIGHT, SIM_WIDTH, SIM_CHANNELS, SIM_NTRAIN,
    SIM_PROBE, /* SIM_PROBE + k: 1 - validation accuracy of probe k (meta.h) */
    SIM_NFEAT = SIM_PROBE + PROBE_COUNT
};
/* "classes", "height", "width", "channels", "n_train", "probe_conv3",
 * "probe_conv1", "probe_pool", "probe_skip" */
extern const char *const sim_feature_names[SIM_NFEAT];

/* A dataset's meta-features (f[SIM_NFEAT]): its datasets columns, else a
 * positive number of the same name in its meta JSON (virtual datasets
 * record nothing else), and its probes' error rates (at least 1e-3) when
 * it has probes of this recipe; NAN where it has none. */
int sim_dataset_features(Store *st, int64_t dataset_id, double f[SIM_NFEAT], XErr *e);

/* Weights over n sources (w[n], summing to 1) for a target:
 *
 *     x = log(feature)                      (every feature is positive)
 *     z = (x - mean_s x) / std_s x          (mean, std over the sources)
 *     d_i = sqrt(mean over used f of (z_target,f - z_i,f)^2)
 *     w_i = exp(-d_i / tau) / sum_j exp(-d_j / tau)
 *
 * A feature is used when the target and every source have it (a positive
 * number: NAN or 0 is none) and the
 * sources do not all share one value. src[i] may be NULL (that source has
 * weight 0, e.g. the target itself). Returns the features used as a bit
 * mask (bit f for feature f); 0: none could be used and the weights are
 * uniform over the non-NULL sources. */
unsigned sim_weights(const double target[SIM_NFEAT], int n, const double *const *src, double tau, double *w);

/* "classes, height, width" for a feature mask (buf of len bytes). */
void sim_feature_list(unsigned used, char *buf, int len);

#endif
