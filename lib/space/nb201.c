/* NAS-Bench-201: cell strings in the benchmark's own format
 * |op~0|+|op~0|op~1|+|op~0|op~1|op~2| (node j's inputs, '+' between nodes),
 * sampling, mutation, tokens, the index bijection and the TinyNetwork costs. */
#include <stdio.h>
#include <string.h>

#include "space/space.h"
#include "space/tally.h"

enum { OP_NONE, OP_SKIP, OP_CONV1, OP_CONV3, OP_POOL };

#define NB201_COUNT 15625u /* 5^6 */

const char *const nb201_op_names[NB201_OPS] = {
    "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
};

static int op_index(const char *name, size_t n)
{
    for (int i = 0; i < NB201_OPS; i++)
        if (strlen(nb201_op_names[i]) == n && memcmp(nb201_op_names[i], name, n) == 0)
            return i;
    return -1;
}

int nb201_parse(const char *s, int ops[NB201_EDGES], XErr *e)
{
    const char *p = s, *end = s + strlen(s);
    int node = 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    for (int k = 0; k < NB201_EDGES; k++)
        ops[k] = -1;
    while (node <= 3) {
        int seen = 0;
        if (p >= end || *p != '|')
            return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': expected '|' at node %d", s, node);
        p++;
        while (p < end && *p != '+') {
            const char *tok = p, *tilde, *bar = memchr(p, '|', (size_t)(end - p));
            int op, in;
            if (!bar)
                return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': unterminated edge at node %d", s, node);
            tilde = memchr(tok, '~', (size_t)(bar - tok));
            if (!tilde || tilde + 2 != bar || tilde[1] < '0' || tilde[1] > '9')
                return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': edge '%.*s' is not op~input", s,
                                (int)(bar - tok), tok);
            op = op_index(tok, (size_t)(tilde - tok));
            if (op < 0)
                return xerr_set(e, XE_FAIL,
                                "invalid nb201 arch '%s': unknown op '%.*s' (valid: none, skip_connect, "
                                "nor_conv_1x1, nor_conv_3x3, avg_pool_3x3)",
                                s, (int)(tilde - tok), tok);
            in = tilde[1] - '0';
            if (in >= node)
                return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': node %d cannot take input %d", s,
                                node, in);
            if (ops[node * (node - 1) / 2 + in] >= 0)
                return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': node %d has input %d twice", s,
                                node, in);
            ops[node * (node - 1) / 2 + in] = op;
            seen++;
            p = bar + 1;
        }
        if (seen != node)
            return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': node %d has %d edges, expected %d", s,
                            node, seen, node);
        if (node < 3) {
            if (p >= end || *p != '+')
                return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': expected '+' after node %d", s, node);
            p++;
        }
        node++;
    }
    if (p != end)
        return xerr_set(e, XE_FAIL, "invalid nb201 arch '%s': trailing text after node 3", s);
    return XE_OK;
}

static size_t format_ops(const int ops[NB201_EDGES], char *out, size_t cap)
{
    size_t n = 0;
    if (cap)
        out[0] = '\0';
    for (int node = 1; node <= 3; node++) {
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s|", node > 1 ? "+" : "");
        for (int in = 0; in < node; in++)
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s~%d|",
                                  nb201_op_names[ops[node * (node - 1) / 2 + in]], in);
    }
    return n;
}

void nb201_format(const int ops[NB201_EDGES], char *out, size_t cap)
{
    format_ops(ops, out, cap);
}

static int arch_parse(const char *s, SpaceArch *a, XErr *e)
{
    memset(a, 0, sizeof *a);
    return nb201_parse(s, a->nb201.ops, e);
}

static size_t arch_format(const SpaceArch *a, char *out, size_t cap)
{
    return format_ops(a->nb201.ops, out, cap);
}

static int arch_canonical(const char *s, char *out, size_t cap, XErr *e)
{
    return space_canonical_of(&space_nb201, s, out, cap, e);
}

static uint64_t arch_to_index(const SpaceArch *a)
{
    uint64_t i = 0;
    for (int k = 0; k < NB201_EDGES; k++)
        i = i * NB201_OPS + (uint64_t)a->nb201.ops[k];
    return i;
}

static int arch_from_index(uint64_t index, SpaceArch *a, XErr *e)
{
    if (index >= NB201_COUNT)
        return xerr_set(e, XE_FAIL, "nb201 index %llu is out of range (0-%u)", (unsigned long long)index,
                        NB201_COUNT - 1);
    memset(a, 0, sizeof *a);
    for (int k = NB201_EDGES - 1; k >= 0; k--) {
        a->nb201.ops[k] = (int)(index % NB201_OPS);
        index /= NB201_OPS;
    }
    return XE_OK;
}

static void arch_sample(Rng *r, SpaceArch *a)
{
    arch_from_index(rng_below(r, NB201_COUNT), a, NULL);
}

/* 6 edges x 4 other ops: 24 neighbours, one drawn uniformly. */
static void arch_mutate(const SpaceArch *parent, Rng *r, SpaceArch *child)
{
    int move = (int)rng_below(r, NB201_EDGES * (NB201_OPS - 1));
    int edge = move / (NB201_OPS - 1), shift = move % (NB201_OPS - 1) + 1;
    *child = *parent;
    child->nb201.ops[edge] = (parent->nb201.ops[edge] + shift) % NB201_OPS;
}

static void arch_encode(const SpaceArch *a, int *tokens)
{
    for (int k = 0; k < NB201_EDGES; k++)
        tokens[k] = a->nb201.ops[k];
}

static int arch_decode(const int *tokens, int n, SpaceArch *a, XErr *e)
{
    static const char *const edge_names[NB201_EDGES] = { "1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2" };
    if (n != NB201_EDGES)
        return xerr_set(e, XE_FAIL, "invalid nb201 tokens: expected %d, got %d", NB201_EDGES, n);
    for (int k = 0; k < NB201_EDGES; k++)
        if (tokens[k] < 0 || tokens[k] >= NB201_OPS)
            return xerr_set(e, XE_FAIL, "invalid nb201 tokens: token %d (edge %s) is %d, not an op (0-%d)",
                            k, edge_names[k], tokens[k], NB201_OPS - 1);
    memset(a, 0, sizeof *a);
    for (int k = 0; k < NB201_EDGES; k++)
        a->nb201.ops[k] = tokens[k];
    return XE_OK;
}

static const char *arch_token_name(int token)
{
    return token >= 0 && token < NB201_OPS ? nb201_op_names[token] : NULL;
}

static int macro_check(const SpaceMacro *m, XErr *e)
{
    if (m->C < 1 || m->C > 256)
        return xerr_set(e, XE_USAGE, "nb201 macro: C %d is out of range (1-256)", m->C);
    if (m->N < 1 || m->N > 32)
        return xerr_set(e, XE_USAGE, "nb201 macro: N %d is out of range (1-32 cells a stage)", m->N);
    return space_check_common("nb201", m, e);
}

/* The NAS-Bench-201 TinyNetwork, layer by layer (what the engine builds):
 *   stem      conv3x3 in_channels->C, stride 1, pad 1, no bias; BN(C)
 *   stage s   s = 0, 1, 2 at width Cs = C << s and size (H >> s, W >> s):
 *             before stages 1 and 2 a residual reduction block
 *             (ResNetBasicblock, stride 2) from C(s-1) to Cs:
 *               a: ReLU, conv3x3 stride 2 pad 1 no bias, BN
 *               b: ReLU, conv3x3 stride 1 pad 1 no bias, BN
 *               shortcut: avgpool 2x2 stride 2, conv1x1 no bias (no BN)
 *               output a->b plus shortcut
 *             then N cells: node 0 = cell input, node j = sum over i < j
 *             of op(i->j)(node i), output node 3; the edge ops
 *               nor_conv_kxk  ReLU, convkxk stride 1 pad k/2 no bias, BN(Cs)
 *               avg_pool_3x3  avgpool 3x3 stride 1 pad 1, count_include_pad
 *                             false (no params)
 *               skip_connect  identity; none: zeros
 *   head      BN(4C), ReLU, global average pool, linear 4C->classes + bias
 * BNs are affine. */
static int arch_cost(const SpaceArch *a, const SpaceMacro *m, SpaceCost *out, XErr *e)
{
    SpaceCost t = { 0, 0 };
    uint64_t h = (uint64_t)m->height, w = (uint64_t)m->width, c = (uint64_t)m->C;
    if (macro_check(m, e))
        return e->code;
    tally_add_conv(&t, (uint64_t)m->in_channels, c, 3, 1, h, w, 0);
    tally_add_bn(&t, c);
    for (int s = 0; s < 3; s++) {
        if (s > 0) {
            uint64_t cin = c;
            c *= 2;
            h /= 2;
            w /= 2;
            tally_add_conv(&t, cin, c, 3, 1, h, w, 0);
            tally_add_bn(&t, c);
            tally_add_conv(&t, c, c, 3, 1, h, w, 0);
            tally_add_bn(&t, c);
            tally_add_conv(&t, cin, c, 1, 1, h, w, 0);
        }
        for (int cell = 0; cell < m->N; cell++)
            for (int k = 0; k < NB201_EDGES; k++)
                if (a->nb201.ops[k] == OP_CONV1 || a->nb201.ops[k] == OP_CONV3) {
                    tally_add_conv(&t, c, c, a->nb201.ops[k] == OP_CONV3 ? 3 : 1, 1, h, w, 0);
                    tally_add_bn(&t, c);
                }
    }
    tally_add_bn(&t, c);
    tally_add_linear(&t, c, (uint64_t)m->classes);
    *out = t;
    return XE_OK;
}

const Space space_nb201 = {
    .name = "nb201",
    .token_len = NB201_EDGES,
    .vocab = NB201_OPS,
    .count = NB201_COUNT,
    .macro_default = { .C = 16, .N = 5, .classes = 10, .in_channels = 3, .height = 32, .width = 32 },
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
