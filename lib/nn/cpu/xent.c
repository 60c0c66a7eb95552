/* Softmax cross-entropy with label smoothing on the CPU: a stable
 * log-sum-exp per row, the loss summed in double, and top-1 accuracy. */
#include <math.h>

#include "nn/cpu/cpu.h"

/* With p = softmax(z), lse = log(sum exp z) and target
 * t_j = s/K + (1 - s) [j == label], the row's loss is
 * -sum_j t_j (z_j - lse) and its gradient p_j - t_j. A label outside
 * [0, K) is a caller's bug: that row adds nothing to the loss, its gradient
 * is zero and it never counts as correct (the mean is still over N). */
void cpu_xent(void *ctx, int n, int k,
              const float *logits,    // (N, K)
              const int32_t *labels,  // (N)
              float smoothing,
              float *dlogits,         // (N, K), overwritten
              float *loss,            // (1)
              int *correct)           // (1)
{
    double total = 0;
    int right = 0;
    double off = (double)smoothing / k, on = 1.0 - smoothing + off;

    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * (size_t)k;
        float *g = dlogits + (size_t)i * (size_t)k;
        int32_t label = labels[i];
        float zmax = z[0];
        int arg = 0;
        double sum = 0, sum_z = 0, lse;
        if (label < 0 || label >= k) {
            for (int j = 0; j < k; j++)
                g[j] = 0;
            continue;
        }
        for (int j = 1; j < k; j++)
            if (z[j] > zmax) {
                zmax = z[j];
                arg = j;
            }
        right += arg == label;
        for (int j = 0; j < k; j++) {
            sum += exp((double)z[j] - zmax);
            sum_z += z[j];
        }
        lse = zmax + log(sum);
        total += off * ((double)k * lse - sum_z) + (1.0 - smoothing) * (lse - z[label]);
        for (int j = 0; j < k; j++)
            g[j] = (float)((exp((double)z[j] - lse) - (j == label ? on : off)) / n);
    }
    *loss = (float)(total / n);
    *correct = right;
}
