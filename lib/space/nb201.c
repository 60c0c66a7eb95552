/* NAS-Bench-201 cell strings in the benchmark's own format:
 * |op~0|+|op~0|op~1|+|op~0|op~1|op~2| (node j's inputs, '+' between nodes). */
#include <stdio.h>
#include <string.h>

#include "space/space.h"

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

void nb201_format(const int ops[NB201_EDGES], char *out, size_t cap)
{
    size_t n = 0;
    for (int node = 1; node <= 3; node++) {
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s|", node > 1 ? "+" : "");
        for (int in = 0; in < node; in++)
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s~%d|",
                                  nb201_op_names[ops[node * (node - 1) / 2 + in]], in);
    }
}

static int nb201_canonical(const char *s, char *out, size_t cap, XErr *e)
{
    int ops[NB201_EDGES];
    if (nb201_parse(s, ops, e))
        return e->code;
    nb201_format(ops, out, cap);
    return XE_OK;
}

const Space space_nb201 = { "nb201", nb201_canonical };
