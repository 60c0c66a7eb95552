/* Counting params and multiply-adds layer by layer, shared by the spaces'
 * macro costs (private to lib/space; see SpaceCost for the convention). */
#ifndef XFER_SPACE_TALLY_H
#define XFER_SPACE_TALLY_H

#include <stdint.h>

#include "space/space.h"

/* Conv2d cin -> cout, k x k, groups, producing hout x wout; bias adds cout
 * params and one add per output value. */
void tally_add_conv(SpaceCost *t, uint64_t cin, uint64_t cout, uint64_t k, uint64_t groups,
                    uint64_t hout, uint64_t wout, int bias);
/* BatchNorm2d(c), affine: scale and shift. */
void tally_add_bn(SpaceCost *t, uint64_t c);
/* Linear cin -> cout with bias. */
void tally_add_linear(SpaceCost *t, uint64_t cin, uint64_t cout);

/* Shared macro checks: classes, in_channels, and a height and width the
 * two stride-2 reductions halve exactly; name is the space's name. */
int space_check_common(const char *name, const SpaceMacro *m, XErr *e);

#endif
