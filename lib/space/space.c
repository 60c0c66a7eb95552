/* What every space shares: the registry, canonical strings and hashes, and
 * the layer counting behind the macro costs. */
#include "space/space.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/hash.h"
#include "space/tally.h"

static const Space *const spaces[] = { &space_nb201, &space_darts };

const Space *space_find(const char *name)
{
    for (size_t i = 0; i < sizeof spaces / sizeof *spaces; i++)
        if (name && strcmp(spaces[i]->name, name) == 0)
            return spaces[i];
    return NULL;
}

const char *space_list(void)
{
    return "nb201, darts";
}

static void hash_canonical(const Space *sp, const char *canon, char hash[65])
{
    char key[4096];
    snprintf(key, sizeof key, "%s:%s", sp->name, canon);
    sha256_hex(key, strlen(key), hash);
}

int space_canonical_of(const Space *sp, const char *s, char *out, size_t cap, XErr *e)
{
    SpaceArch a;
    size_t n;
    if (sp->parse(s, &a, e))
        return e->code;
    n = sp->format(&a, out, cap);
    if (n >= cap)
        return xerr_set(e, XE_FAIL, "%s arch: canonical form needs %zu bytes, have %zu", sp->name, n + 1, cap);
    return XE_OK;
}

int space_canonical_hash(const Space *sp, const char *arch, char *canon, size_t cap,
                         char hash[65], XErr *e)
{
    if (sp->canonical(arch, canon, cap, e))
        return e->code;
    hash_canonical(sp, canon, hash);
    return XE_OK;
}

int space_arch_hash(const Space *sp, const SpaceArch *a, char *canon, size_t cap, char hash[65],
                    XErr *e)
{
    size_t n = sp->format(a, canon, cap);
    if (n >= cap)
        return xerr_set(e, XE_FAIL, "%s arch: canonical form needs %zu bytes, have %zu", sp->name,
                        n + 1, cap);
    hash_canonical(sp, canon, hash);
    return XE_OK;
}

void tally_add_conv(SpaceCost *t, uint64_t cin, uint64_t cout, uint64_t k, uint64_t groups,
                    uint64_t hout, uint64_t wout, int bias)
{
    uint64_t weights = k * k * (cin / groups) * cout;
    t->params += weights + (bias ? cout : 0);
    t->flops += (weights + (bias ? cout : 0)) * hout * wout;
}

void tally_add_bn(SpaceCost *t, uint64_t c)
{
    t->params += 2 * c;
}

void tally_add_linear(SpaceCost *t, uint64_t cin, uint64_t cout)
{
    t->params += cin * cout + cout;
    t->flops += cin * cout + cout;
}

int space_check_common(const char *name, const SpaceMacro *m, XErr *e)
{
    if (m->classes < 1 || m->classes > XFER_MAX_CLASSES)
        return xerr_set(e, XE_USAGE, "%s macro: classes %d is out of range (1-%d)", name, m->classes,
                        XFER_MAX_CLASSES);
    if (m->in_channels < 1 || m->in_channels > 64)
        return xerr_set(e, XE_USAGE, "%s macro: in_channels %d is out of range (1-64)", name,
                        m->in_channels);
    if (m->height < 4 || m->width < 4 || m->height > XFER_MAX_SIDE || m->width > XFER_MAX_SIDE)
        return xerr_set(e, XE_USAGE, "%s macro: input %dx%d is out of range (4-%d a side)", name,
                        m->height, m->width, XFER_MAX_SIDE);
    if (m->height % 4 || m->width % 4)
        return xerr_set(e, XE_USAGE,
                        "%s macro: input %dx%d cannot be halved twice exactly: each side must be a "
                        "multiple of 4",
                        name, m->height, m->width);
    return XE_OK;
}
