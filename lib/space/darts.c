/* The DARTS (NASNet-derived) space: genotype strings, sampling, mutation,
 * tokens, the index bijection and the costs of the CIFAR network that DARTS
 * evaluates (NetworkCIFAR without the auxiliary head). */
#include <stdio.h>
#include <string.h>

#include "space/space.h"
#include "space/tally.h"

enum { OP_MAX_POOL, OP_AVG_POOL, OP_SKIP, OP_SEP3, OP_SEP5, OP_DIL3, OP_DIL5 };

const char *const darts_op_names[DARTS_OPS] = {
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
    "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
};

#define VALID_OPS                                                                                  \
    "max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, "         \
    "dil_conv_5x5"

static const char *const cell_names[2] = { "normal", "reduce" };

/* Arch strings are quoted whole in messages up to this length, then cut. */
#define QUOTE_MAX 200
#define ARCH_FMT "invalid darts arch '%.*s%s': "
#define ARCH_ARG(s) (int)(strlen(s) > QUOTE_MAX ? QUOTE_MAX : strlen(s)), s, strlen(s) > QUOTE_MAX ? "..." : ""

/* Choices a node j has: pairs of its j + 2 inputs times two ops. */
static uint64_t node_radix(int j)
{
    return (uint64_t)(j + 2) * (uint64_t)(j + 1) / 2 * DARTS_OPS * DARTS_OPS;
}

static uint64_t cell_count(void)
{
    uint64_t n = 1;
    for (int j = 0; j < DARTS_NODES; j++)
        n *= node_radix(j);
    return n;
}

/* Orders a node's inputs ascending, ops following their inputs. */
static void node_sort(DartsNode *d)
{
    if (d->in[0] > d->in[1]) {
        int t = d->in[0];
        d->in[0] = d->in[1];
        d->in[1] = t;
        t = d->op[0];
        d->op[0] = d->op[1];
        d->op[1] = t;
    }
}

static int op_index(const char *name, size_t n)
{
    for (int i = 0; i < DARTS_OPS; i++)
        if (strlen(darts_op_names[i]) == n && memcmp(darts_op_names[i], name, n) == 0)
            return i;
    return -1;
}

/* One edge "op~input" of [p, end) into node j of cell c. */
static int parse_edge(const char *s, const char *p, const char *end, int c, int j, int slot,
                      DartsNode *d, XErr *e)
{
    const char *tilde = memchr(p, '~', (size_t)(end - p));
    int op, in = 0;
    if (!tilde || tilde + 1 == end || end - tilde > 3)
        return xerr_set(e, XE_FAIL, ARCH_FMT "edge '%.*s' in %s node %d is not op~input", ARCH_ARG(s),
                        (int)(end - p), p, cell_names[c], j);
    for (const char *q = tilde + 1; q < end; q++) {
        if (*q < '0' || *q > '9')
            return xerr_set(e, XE_FAIL, ARCH_FMT "edge '%.*s' in %s node %d is not op~input",
                            ARCH_ARG(s), (int)(end - p), p, cell_names[c], j);
        in = in * 10 + (*q - '0');
    }
    op = op_index(p, (size_t)(tilde - p));
    if (op < 0)
        return xerr_set(e, XE_FAIL, ARCH_FMT "unknown op '%.*s' in %s node %d (valid: " VALID_OPS ")",
                        ARCH_ARG(s), (int)(tilde - p), p, cell_names[c], j);
    if (in > j + 1)
        return xerr_set(e, XE_FAIL, ARCH_FMT "%s node %d cannot take input %d (valid: 0-%d)", ARCH_ARG(s),
                        cell_names[c], j, in, j + 1);
    if (slot == 1 && d->in[0] == in)
        return xerr_set(e, XE_FAIL, ARCH_FMT "%s node %d takes input %d twice", ARCH_ARG(s), cell_names[c],
                        j, in);
    d->in[slot] = in;
    d->op[slot] = op;
    return XE_OK;
}

/* The 4 nodes of cell c from [p, end): nodes split by '|', edges by ','. */
static int parse_cell(const char *s, const char *p, const char *end, int c, DartsNode nodes[DARTS_NODES],
                      XErr *e)
{
    int nnodes = 1;
    for (const char *q = p; q < end; q++)
        nnodes += *q == '|';
    if (nnodes != DARTS_NODES)
        return xerr_set(e, XE_FAIL, ARCH_FMT "%s cell has %d nodes, expected %d", ARCH_ARG(s), cell_names[c],
                        nnodes, DARTS_NODES);
    for (int j = 0; j < DARTS_NODES; j++) {
        const char *bar = memchr(p, '|', (size_t)(end - p)), *node_end = bar ? bar : end;
        const char *comma = memchr(p, ',', (size_t)(node_end - p));
        int nedges = 1;
        for (const char *q = p; q < node_end; q++)
            nedges += *q == ',';
        if (nedges != 2)
            return xerr_set(e, XE_FAIL, ARCH_FMT "%s node %d has %d edges, expected 2", ARCH_ARG(s),
                            cell_names[c], j, nedges);
        if (parse_edge(s, p, comma, c, j, 0, &nodes[j], e) ||
            parse_edge(s, comma + 1, node_end, c, j, 1, &nodes[j], e))
            return e->code;
        node_sort(&nodes[j]);
        p = node_end + 1;
    }
    return XE_OK;
}

static int arch_parse(const char *s, SpaceArch *a, XErr *e)
{
    static const char head[] = "normal:", mid[] = ";reduce:";
    const char *p = s, *end = s + strlen(s), *semi;
    memset(a, 0, sizeof *a);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    if ((size_t)(end - p) < sizeof head - 1 || memcmp(p, head, sizeof head - 1) != 0)
        return xerr_set(e, XE_FAIL, ARCH_FMT "expected 'normal:' at the start", ARCH_ARG(s));
    p += sizeof head - 1;
    semi = memchr(p, ';', (size_t)(end - p));
    if (!semi || (size_t)(end - semi) < sizeof mid - 1 || memcmp(semi, mid, sizeof mid - 1) != 0)
        return xerr_set(e, XE_FAIL, ARCH_FMT "expected ';reduce:' after the normal cell", ARCH_ARG(s));
    if (parse_cell(s, p, semi, 0, a->darts.cell[0], e) ||
        parse_cell(s, semi + sizeof mid - 1, end, 1, a->darts.cell[1], e))
        return e->code;
    return XE_OK;
}

static size_t arch_format(const SpaceArch *a, char *out, size_t cap)
{
    size_t n = 0;
    if (cap)
        out[0] = '\0';
    for (int c = 0; c < 2; c++) {
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s:", c ? ";" : "", cell_names[c]);
        for (int j = 0; j < DARTS_NODES; j++) {
            const DartsNode *d = &a->darts.cell[c][j];
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s~%d,%s~%d", j ? "|" : "",
                                  darts_op_names[d->op[0]], d->in[0], darts_op_names[d->op[1]], d->in[1]);
        }
    }
    return n;
}

static int arch_canonical(const char *s, char *out, size_t cap, XErr *e)
{
    return space_canonical_of(&space_darts, s, out, cap, e);
}

static uint64_t arch_to_index(const SpaceArch *a)
{
    uint64_t index = 0;
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < DARTS_NODES; j++) {
            const DartsNode *d = &a->darts.cell[c][j];
            uint64_t pair = (uint64_t)(d->in[1] * (d->in[1] - 1) / 2 + d->in[0]);
            index = index * node_radix(j) + (pair * DARTS_OPS + (uint64_t)d->op[0]) * DARTS_OPS +
                    (uint64_t)d->op[1];
        }
    return index;
}

static int arch_from_index(uint64_t index, SpaceArch *a, XErr *e)
{
    uint64_t cells = cell_count();
    if (index >= cells * cells)
        return xerr_set(e, XE_FAIL, "darts index %llu is out of range (0-%llu)", (unsigned long long)index,
                        (unsigned long long)(cells * cells - 1));
    memset(a, 0, sizeof *a);
    for (int c = 1; c >= 0; c--)
        for (int j = DARTS_NODES - 1; j >= 0; j--) {
            DartsNode *d = &a->darts.cell[c][j];
            uint64_t v = index % node_radix(j);
            int pair, b = 1;
            index /= node_radix(j);
            d->op[1] = (int)(v % DARTS_OPS);
            d->op[0] = (int)(v / DARTS_OPS % DARTS_OPS);
            pair = (int)(v / (DARTS_OPS * DARTS_OPS));
            while ((b + 1) * b / 2 <= pair)
                b++;
            d->in[1] = b;
            d->in[0] = pair - b * (b - 1) / 2;
        }
    return XE_OK;
}

static void arch_sample(Rng *r, SpaceArch *a)
{
    uint64_t cells = cell_count();
    arch_from_index(rng_below(r, cells * cells), a, NULL);
}

/* Every single change, each drawn with the same chance: for each cell, node
 * j and slot, 6 other ops, or one of the j inputs the node does not use. */
static void arch_mutate(const SpaceArch *parent, Rng *r, SpaceArch *child)
{
    int moves = 0, pick;
    for (int j = 0; j < DARTS_NODES; j++)
        moves += 2 * 2 * (DARTS_OPS - 1 + j); /* 2 cells x 2 slots */
    pick = (int)rng_below(r, (uint64_t)moves);
    *child = *parent;
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < DARTS_NODES; j++)
            for (int slot = 0; slot < 2; slot++) {
                DartsNode *d = &child->darts.cell[c][j];
                if (pick < DARTS_OPS - 1) {
                    d->op[slot] = (d->op[slot] + 1 + pick) % DARTS_OPS;
                    return;
                }
                pick -= DARTS_OPS - 1;
                if (pick < j) {
                    int in = 0;
                    for (int skip = pick;; in++)
                        if (in != d->in[0] && in != d->in[1] && skip-- == 0)
                            break;
                    d->in[slot] = in;
                    node_sort(d);
                    return;
                }
                pick -= j;
            }
}

static void arch_encode(const SpaceArch *a, int *tokens)
{
    int k = 0;
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < DARTS_NODES; j++)
            for (int slot = 0; slot < 2; slot++) {
                tokens[k++] = a->darts.cell[c][j].in[slot];
                tokens[k++] = DARTS_INPUTS + a->darts.cell[c][j].op[slot];
            }
}

static int arch_decode(const int *tokens, int n, SpaceArch *a, XErr *e)
{
    int k = 0;
    if (n != SPACE_MAX_TOKENS)
        return xerr_set(e, XE_FAIL, "invalid darts tokens: expected %d, got %d", SPACE_MAX_TOKENS, n);
    memset(a, 0, sizeof *a);
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < DARTS_NODES; j++) {
            DartsNode *d = &a->darts.cell[c][j];
            for (int slot = 0; slot < 2; slot++, k += 2) {
                int in = tokens[k], op = tokens[k + 1] - DARTS_INPUTS;
                if (in < 0 || in > j + 1)
                    return xerr_set(e, XE_FAIL,
                                    "invalid darts tokens: token %d (%s node %d, input %d) is %d, not an "
                                    "input of that node (0-%d)",
                                    k, cell_names[c], j, slot, in, j + 1);
                if (op < 0 || op >= DARTS_OPS)
                    return xerr_set(e, XE_FAIL,
                                    "invalid darts tokens: token %d (%s node %d, op %d) is %d, not an op "
                                    "(%d-%d)",
                                    k + 1, cell_names[c], j, slot, tokens[k + 1], DARTS_INPUTS,
                                    DARTS_INPUTS + DARTS_OPS - 1);
                d->in[slot] = in;
                d->op[slot] = op;
            }
            if (d->in[0] == d->in[1])
                return xerr_set(e, XE_FAIL, "invalid darts tokens: %s node %d takes input %d twice",
                                cell_names[c], j, d->in[0]);
            if (d->in[0] > d->in[1])
                return xerr_set(e, XE_FAIL,
                                "invalid darts tokens: %s node %d has inputs %d, %d: not ascending "
                                "(canonical order)",
                                cell_names[c], j, d->in[0], d->in[1]);
        }
    return XE_OK;
}

static const char *arch_token_name(int token)
{
    static const char *const inputs[DARTS_INPUTS] = { "in0", "in1", "in2", "in3", "in4" };
    if (token >= 0 && token < DARTS_INPUTS)
        return inputs[token];
    if (token >= DARTS_INPUTS && token < DARTS_INPUTS + DARTS_OPS)
        return darts_op_names[token - DARTS_INPUTS];
    return NULL;
}

static int macro_check(const SpaceMacro *m, XErr *e)
{
    if (m->C < 1 || m->C > 256)
        return xerr_set(e, XE_USAGE, "darts macro: C %d is out of range (1-256)", m->C);
    if (m->N < 3 || m->N > 64)
        return xerr_set(e, XE_USAGE, "darts macro: L %d is out of range (3-64 cells)", m->N);
    return space_check_common("darts", m, e);
}

/* FactorizedReduce(cin, cout) producing h x w: ReLU, two conv1x1 stride 2
 * cin -> cout/2 without bias (the second on the input shifted by one pixel),
 * concatenated, BN(cout). */
static void add_factorized_reduce(SpaceCost *t, uint64_t cin, uint64_t cout, uint64_t h, uint64_t w)
{
    tally_add_conv(t, cin, cout / 2, 1, 1, h, w, 0);
    tally_add_conv(t, cin, cout / 2, 1, 1, h, w, 0);
    tally_add_bn(t, cout);
}

/* One op on c channels, producing h x w (stride 2 in a reduction cell when
 * its input is a cell input). */
static void add_op(SpaceCost *t, int op, uint64_t c, int stride, uint64_t h, uint64_t w)
{
    uint64_t k = op == OP_SEP5 || op == OP_DIL5 ? 5 : 3;
    switch (op) {
    case OP_SEP3:
    case OP_SEP5:
        for (int rep = 0; rep < 2; rep++) {
            tally_add_conv(t, c, c, k, c, h, w, 0);
            tally_add_conv(t, c, c, 1, 1, h, w, 0);
            tally_add_bn(t, c);
        }
        break;
    case OP_DIL3:
    case OP_DIL5:
        tally_add_conv(t, c, c, k, c, h, w, 0);
        tally_add_conv(t, c, c, 1, 1, h, w, 0);
        tally_add_bn(t, c);
        break;
    case OP_SKIP:
        if (stride == 2)
            add_factorized_reduce(t, c, c, h, w);
        break;
    default:
        break;
    }
}

/* DARTS NetworkCIFAR, layer by layer (what the engine builds):
 *   stem   conv3x3 in_channels->3C, stride 1, pad 1, no bias; BN(3C)
 *   cells  L cells; cells L/3 and 2L/3 are reductions (C doubles there,
 *          size halves), the rest normal cells of the same C. A cell with
 *          width c takes s0 (output of the cell two back, c_pp channels)
 *          and s1 (previous cell, c_p channels; the stem output for both at
 *          first):
 *            s0 -> FactorizedReduce(c_pp, c) if the previous cell reduced,
 *                  else ReLU, conv1x1 c_pp->c no bias, BN(c)
 *            s1 -> ReLU, conv1x1 c_p->c no bias, BN(c)
 *          node j = op(in[0]) + op(in[1]); in a reduction cell ops on s0
 *          and s1 have stride 2, the rest stride 1. Ops on c channels:
 *            sep_conv_kxk  twice: ReLU, depthwise convkxk (pad k/2) no bias,
 *                          conv1x1 no bias, BN(c); only the first has the
 *                          stride
 *            dil_conv_kxk  ReLU, depthwise convkxk dilation 2 (pad k-1) no
 *                          bias, conv1x1 no bias, BN(c)
 *            max_pool_3x3  maxpool 3x3 pad 1
 *            avg_pool_3x3  avgpool 3x3 pad 1, count_include_pad false
 *            skip_connect  identity; FactorizedReduce(c, c) at stride 2
 *          output: the 4 nodes concatenated (4c channels)
 *   head   global average pool, linear 4c->classes + bias
 * No auxiliary head, no drop-path (neither has params or FLOPs at test).
 * BNs are affine. */
static int arch_cost(const SpaceArch *a, const SpaceMacro *m, SpaceCost *out, XErr *e)
{
    SpaceCost t = { 0, 0 };
    uint64_t h = (uint64_t)m->height, w = (uint64_t)m->width;
    uint64_t c = (uint64_t)m->C, c_pp = 3 * c, c_p = 3 * c;
    int reduction_prev = 0;
    if (macro_check(m, e))
        return e->code;
    tally_add_conv(&t, (uint64_t)m->in_channels, 3 * c, 3, 1, h, w, 0);
    tally_add_bn(&t, 3 * c);
    for (int i = 0; i < m->N; i++) {
        int reduction = i == m->N / 3 || i == 2 * m->N / 3;
        const DartsNode *nodes = a->darts.cell[reduction];
        uint64_t ho = reduction ? h / 2 : h, wo = reduction ? w / 2 : w;
        if (reduction)
            c *= 2;
        if (reduction_prev)
            add_factorized_reduce(&t, c_pp, c, h, w);
        else {
            tally_add_conv(&t, c_pp, c, 1, 1, h, w, 0);
            tally_add_bn(&t, c);
        }
        tally_add_conv(&t, c_p, c, 1, 1, h, w, 0);
        tally_add_bn(&t, c);
        for (int j = 0; j < DARTS_NODES; j++)
            for (int slot = 0; slot < 2; slot++)
                add_op(&t, nodes[j].op[slot], c, reduction && nodes[j].in[slot] < 2 ? 2 : 1, ho, wo);
        c_pp = c_p;
        c_p = DARTS_NODES * c;
        h = ho;
        w = wo;
        reduction_prev = reduction;
    }
    tally_add_linear(&t, c_p, (uint64_t)m->classes);
    *out = t;
    return XE_OK;
}

const Space space_darts = {
    .name = "darts",
    .token_len = SPACE_MAX_TOKENS,
    .vocab = DARTS_INPUTS + DARTS_OPS,
    .count = 1037664180ull * 1037664180ull, /* cells squared: (1*3*6*10 * 7^8)^2 */
    .macro_default = { .C = 36, .N = 20, .classes = 10, .in_channels = 3, .height = 32, .width = 32 },
    .parse = arch_parse,
    .format = arch_format,
    .canonical = arch_canonical,
    .sample = arch_sample,
    .mutate = arch_mutate,
    .encode = arch_encode,
    .decode = arch_decode,
    .token_name = arch_token_name,
    .to_index = arch_to_index,
    .from_index = arch_from_index,
    .check_macro = macro_check,
    .cost = arch_cost,
};
