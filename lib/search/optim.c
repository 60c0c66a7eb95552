/* The optimizers behind searcher_next (xfer, nao, rea, random), the pools
 * they propose from, simulated searches over a table, Pareto fronts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "search/search.h"

const char *const search_optimizer_names[SEARCH_NOPT] = { "xfer", "nao", "rea", "random" };

int search_optimizer_find(const char *name)
{
    for (int i = 0; i < SEARCH_NOPT; i++)
        if (name && !strcmp(name, search_optimizer_names[i]))
            return i;
    return -1;
}

void search_config_default(SearchConfig *c, SearchOptimizer opt, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->opt = opt;
    c->seed = seed;
    c->population = 10;
    c->tournament = 3;
    c->init = 5;
    c->candidates = 1000;
    c->parents = 5;
    c->explore = 0.1;
    c->zs_std = 1;
    c->nao_epochs = 100;
}

/* ---- sets of space indices (open addressing; key + 1, 0 empty) ---- */

typedef struct IdxSet {
    uint64_t *key;
    int *val;
    uint64_t cap;
} IdxSet;

static int set_init(IdxSet *s, uint64_t want, XErr *e)
{
    s->cap = 16;
    while (s->cap < 2 * want + 2)
        s->cap *= 2;
    s->key = calloc(s->cap, sizeof *s->key);
    s->val = malloc(s->cap * sizeof *s->val);
    if (!s->key || !s->val) {
        free(s->key), free(s->val);
        memset(s, 0, sizeof *s);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    return XE_OK;
}

static void set_release(IdxSet *s)
{
    free(s->key), free(s->val);
    memset(s, 0, sizeof *s);
}

static uint64_t set_slot(const IdxSet *s, uint64_t idx)
{
    uint64_t h = (idx * 0x9e3779b97f4a7c15ULL) >> 17 & (s->cap - 1);
    while (s->key[h] && s->key[h] != idx + 1)
        h = (h + 1) & (s->cap - 1);
    return h;
}

/* Adds idx (value v); returns 1 if it was new. The caller keeps the load
 * under one half (set_init's want). */
static int set_add(IdxSet *s, uint64_t idx, int v)
{
    uint64_t h = set_slot(s, idx);
    if (s->key[h])
        return 0;
    s->key[h] = idx + 1;
    s->val[h] = v;
    return 1;
}

static int set_get(const IdxSet *s, uint64_t idx)
{
    uint64_t h = set_slot(s, idx);
    return s->key[h] ? s->val[h] : -1;
}

/* ---- pools ---- */

static int cost_ok(const SearchPool *p, const SpaceCost *c)
{
    return (!p->max_params || c->params <= p->max_params) && (!p->max_flops || c->flops <= p->max_flops);
}

static int no_cell(const SearchPool *p, const char *what, const SpaceCost *least, XErr *e)
{
    char lim[128] = "";
    int k = 0;
    if (p->max_params)
        k += snprintf(lim + k, sizeof lim - (size_t)k, "--max-params %llu", (unsigned long long)p->max_params);
    if (p->max_flops)
        snprintf(lim + k, sizeof lim - (size_t)k, "%s--max-flops %llu", k ? " and " : "",
                 (unsigned long long)p->max_flops);
    return xerr_set(e, XE_FAIL, "%s satisfies %s (the smallest has %llu params and %llu FLOPs at C %d, N %d)", what,
                    lim, (unsigned long long)least->params, (unsigned long long)least->flops, p->macro.C, p->macro.N);
}

static int pool_init(SearchPool *p, const Space *sp, const SpaceMacro *m, uint64_t max_params, uint64_t max_flops,
                     XErr *e)
{
    memset(p, 0, sizeof *p);
    p->sp = sp;
    p->macro = *m;
    p->max_params = max_params;
    p->max_flops = max_flops;
    return sp->check_macro(m, e);
}

int search_pool_space(SearchPool *p, const Space *sp, const SpaceMacro *m, uint64_t max_params, uint64_t max_flops,
                      XErr *e)
{
    SpaceCost least = { UINT64_MAX, UINT64_MAX }, c;
    Rng r;
    uint64_t tries;
    char what[64];
    if (pool_init(p, sp, m, max_params, max_flops, e))
        return e->code;
    if (!max_params && !max_flops)
        return XE_OK;
    /* every cell of a small space, else a sample: is any cell feasible? */
    tries = sp->count <= 100000 ? sp->count : 20000;
    rng_seed(&r, 1);
    for (uint64_t i = 0; i < tries; i++) {
        SpaceArch a;
        if (sp->count <= 100000) {
            if (sp->from_index(i, &a, e))
                return e->code;
        } else {
            sp->sample(&r, &a);
        }
        if (sp->cost(&a, m, &c, e))
            return e->code;
        if (cost_ok(p, &c))
            return XE_OK;
        if (c.params < least.params || (c.params == least.params && c.flops < least.flops))
            least = c;
    }
    if (sp->count <= 100000)
        snprintf(what, sizeof what, "no %s cell", sp->name);
    else
        snprintf(what, sizeof what, "none of %llu sampled %s cells", (unsigned long long)tries, sp->name);
    return no_cell(p, what, &least, e);
}

int search_pool_table(SearchPool *p, const Space *sp, const SpaceMacro *m, uint64_t max_params, uint64_t max_flops,
                      int n, const int *tokens, XErr *e)
{
    SpaceCost least = { UINT64_MAX, UINT64_MAX };
    int rc;
    if (pool_init(p, sp, m, max_params, max_flops, e))
        return e->code;
    p->archs = malloc((size_t)(n + 1) * sizeof *p->archs);
    p->src = malloc((size_t)(n + 1) * sizeof *p->src);
    p->params = malloc((size_t)(n + 1) * sizeof *p->params);
    p->flops = malloc((size_t)(n + 1) * sizeof *p->flops);
    p->nslot = 16;
    while (p->nslot < 2 * (uint64_t)n + 2)
        p->nslot *= 2;
    p->slot = calloc(p->nslot, sizeof *p->slot);
    p->slot_pos = malloc(p->nslot * sizeof *p->slot_pos);
    if (!p->archs || !p->src || !p->params || !p->flops || !p->slot || !p->slot_pos) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        SpaceArch a;
        SpaceCost c;
        IdxSet s = { p->slot, p->slot_pos, p->nslot };
        if ((rc = sp->decode(tokens + (size_t)i * sp->token_len, sp->token_len, &a, e)) ||
            (rc = sp->cost(&a, m, &c, e)))
            goto fail;
        if (!cost_ok(p, &c)) {
            if (c.params < least.params || (c.params == least.params && c.flops < least.flops))
                least = c;
            continue;
        }
        if (!set_add(&s, sp->to_index(&a), p->n))
            continue; /* listed twice */
        p->archs[p->n] = a;
        p->src[p->n] = i;
        p->params[p->n] = (double)c.params;
        p->flops[p->n] = (double)c.flops;
        p->n++;
    }
    if (!p->n) {
        char what[64];
        snprintf(what, sizeof what, "none of the %d recorded %s cells", n, sp->name);
        rc = n ? no_cell(p, what, &least, e) : xerr_set(e, XE_FAIL, "no recorded %s cells to search", sp->name);
        goto fail;
    }
    return XE_OK;
fail:
    search_pool_release(p);
    return rc;
}

void search_pool_release(SearchPool *p)
{
    free(p->archs), free(p->src), free(p->params), free(p->flops), free(p->slot), free(p->slot_pos);
    memset(p, 0, sizeof *p);
}

int search_pool_find(const SearchPool *p, const SpaceArch *a)
{
    IdxSet s = { p->slot, p->slot_pos, p->nslot };
    return p->n ? set_get(&s, p->sp->to_index(a)) : -1;
}

int search_pool_allows(const SearchPool *p, const SpaceArch *a, SpaceCost *cost)
{
    XErr e = { 0 };
    if (p->n) {
        int k = search_pool_find(p, a);
        if (k < 0)
            return 0;
        cost->params = (uint64_t)p->params[k];
        cost->flops = (uint64_t)p->flops[k];
        return 1;
    }
    return !p->sp->cost(a, &p->macro, cost, &e) && cost_ok(p, cost);
}

/* ---- the searcher ---- */

struct Searcher {
    SearchConfig c;
    const SearchPool *pool;
    /* nao: its model, fitted on the first nao_fit_n steps */
    XferModel *nao;
    int nao_fit_n;
    double nao_mean, nao_std; /* the scale of those steps' accuracies */
};

int searcher_new(Searcher **out, const SearchConfig *c, const SearchPool *pool, XErr *e)
{
    Searcher *s;
    *out = NULL;
    if (c->opt < 0 || c->opt >= SEARCH_NOPT)
        return xerr_set(e, XE_USAGE, "search: optimizer %d is out of range", (int)c->opt);
    if (c->opt == SEARCH_XFER) {
        const XferConfig *xc = c->universal ? xfer_config(c->universal) : NULL;
        if (!xc)
            return xerr_set(e, XE_FAIL, "search: the xfer optimizer needs the universal model");
        if (xc->token_len != pool->sp->token_len || xc->vocab != pool->sp->vocab)
            return xerr_set(e, XE_FAIL, "search: the universal model reads %d tokens of %d values, %s cells have %d of %d",
                            xc->token_len, xc->vocab, pool->sp->name, pool->sp->token_len, pool->sp->vocab);
    }
    if (c->population < 2 || c->tournament < 1 || c->tournament > c->population || c->init < 1 ||
        c->candidates < 1 || c->parents < 1 || !(c->explore >= 0 && c->explore <= 1) || c->nao_epochs < 1)
        return xerr_set(e, XE_USAGE, "search: config out of range");
    if (!(s = calloc(1, sizeof *s)))
        return xerr_set(e, XE_FAIL, "out of memory");
    s->c = *c;
    s->pool = pool;
    *out = s;
    return XE_OK;
}

void searcher_free(Searcher *s)
{
    if (!s)
        return;
    xfer_free(s->nao);
    free(s);
}

/* Step n's random numbers: from the seed and the step alone. */
static void step_rng(const SearchConfig *c, int n, Rng *r)
{
    rng_seed(r, c->seed * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n + 1) * 0xbf58476d1ce4e5b9ULL);
}

/* A proposal of step n (what every optimizer fills in). */
static void fill(const SearchPool *p, const SpaceArch *a, double pred, double pred_std, SearchStep *out)
{
    SpaceCost c = { 0, 0 };
    memset(out, 0, sizeof *out);
    out->arch = *a;
    search_pool_allows(p, a, &c);
    out->params = (double)c.params;
    out->flops = (double)c.flops;
    out->pred = pred;
    out->pred_std = pred_std;
    out->acc = NAN;
}

/* What a step is worth when FLOPs count too: accuracy (z-scored) minus w
 * times log FLOPs (z-scored), w in [0, 1) drawn once per step. */
typedef struct Tradeoff {
    double w, lf_mean, lf_std;
} Tradeoff;

static void tradeoff_fit(Tradeoff *t, const double *flops, int n)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += log(flops[i] + 1);
    t->lf_mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        ss += (log(flops[i] + 1) - t->lf_mean) * (log(flops[i] + 1) - t->lf_mean);
    t->lf_std = n > 1 && ss > 0 ? sqrt(ss / (n - 1)) : 1;
}

static double utility(const Tradeoff *t, double z, double flops)
{
    return t->w ? z - t->w * (log(flops + 1) - t->lf_mean) / t->lf_std : z;
}

/* The seen cells: every step of the history. */
static int seen_of(const SearchStep *h, int n, const Space *sp, IdxSet *seen, uint64_t extra, XErr *e)
{
    if (set_init(seen, (uint64_t)n + extra, e))
        return e->code;
    for (int i = 0; i < n; i++)
        set_add(seen, sp->to_index(&h[i].arch), i);
    return XE_OK;
}

/* A uniform unseen cell the pool allows. */
static int pick_random(const SearchPool *p, const IdxSet *seen, Rng *r, SpaceArch *a, XErr *e)
{
    if (p->n) {
        int left = 0, k;
        for (int i = 0; i < p->n; i++)
            left += set_get(seen, p->sp->to_index(&p->archs[i])) < 0;
        if (!left)
            return xerr_set(e, XE_FAIL, "every one of the %d cells the table allows was evaluated", p->n);
        k = (int)rng_below(r, (uint64_t)left);
        for (int i = 0; i < p->n; i++)
            if (set_get(seen, p->sp->to_index(&p->archs[i])) < 0 && !k--) {
                *a = p->archs[i];
                return XE_OK;
            }
    }
    for (int t = 0; t < 100000; t++) {
        SpaceCost c;
        p->sp->sample(r, a);
        if (set_get(seen, p->sp->to_index(a)) < 0 && search_pool_allows(p, a, &c))
            return XE_OK;
    }
    return xerr_set(e, XE_FAIL, "no unseen %s cell within the constraints in 100000 samples", p->sp->name);
}

static int token_distance(const Space *sp, const SpaceArch *a, const SpaceArch *b)
{
    int ta[SPACE_MAX_TOKENS], tb[SPACE_MAX_TOKENS], d = 0;
    sp->encode(a, ta);
    sp->encode(b, tb);
    for (int i = 0; i < sp->token_len; i++)
        d += ta[i] != tb[i];
    return d;
}

/* A child of parent: Space.mutate until the child is unseen and allowed
 * (a walk when single changes are all used up); in a table, when no
 * mutation lands in it, the unseen table cell nearest to the parent
 * (tokens that differ), ties at random. */
static int mutate_child(const SearchPool *p, const IdxSet *seen, const SpaceArch *parent, Rng *r, SpaceArch *child,
                        XErr *e)
{
    SpaceArch cur = *parent;
    SpaceCost c;
    for (int t = 0; t < (p->n ? 32 : 1000); t++) {
        p->sp->mutate(p->n ? parent : &cur, r, child);
        if (set_get(seen, p->sp->to_index(child)) < 0 && search_pool_allows(p, child, &c))
            return XE_OK;
        if (!p->n && t % 20 == 19)
            cur = *child; /* every single change is taken: walk further */
    }
    if (p->n) {
        int best = 1 << 30, ties = 0;
        for (int i = 0; i < p->n; i++) {
            int d;
            if (set_get(seen, p->sp->to_index(&p->archs[i])) >= 0)
                continue;
            d = token_distance(p->sp, parent, &p->archs[i]);
            if (d < best)
                best = d, ties = 0;
            if (d == best && rng_below(r, (uint64_t)++ties) == 0)
                *child = p->archs[i];
        }
        if (ties)
            return XE_OK;
    }
    return pick_random(p, seen, r, child, e);
}

/* Indices of the evaluated (finite accuracy) steps. */
static int valid_steps(const SearchStep *h, int n, int *idx)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(h[i].acc))
            idx[k++] = i;
    return k;
}

static int next_rea(Searcher *s, const SearchStep *h, int n, const IdxSet *seen, Rng *r, const Tradeoff *tr,
                    SearchStep *out, XErr *e)
{
    const SearchConfig *c = &s->c;
    int *v = malloc((size_t)(n + 1) * sizeof *v), *pop, P = c->population, nv, rc, best = -1;
    double *fl = malloc((size_t)P * sizeof *fl), m = 0, sd = 0, bu = -INFINITY;
    SpaceArch a;
    Tradeoff t = *tr;
    if (!v || !fl) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto done;
    }
    nv = valid_steps(h, n, v);
    if (nv < P) {
        rc = pick_random(s->pool, seen, r, &a, e);
        goto done;
    }
    /* the population: the newest evaluations (ageing), z-scored */
    pop = v + nv - P;
    for (int i = 0; i < P; i++)
        m += h[pop[i]].acc;
    m /= P;
    for (int i = 0; i < P; i++)
        sd += (h[pop[i]].acc - m) * (h[pop[i]].acc - m);
    sd = sd > 0 ? sqrt(sd / (P - 1)) : 1;
    for (int i = 0; i < P; i++)
        fl[i] = h[pop[i]].flops;
    tradeoff_fit(&t, fl, P);
    /* a tournament of distinct members */
    for (int k = 0; k < c->tournament; k++) {
        int j = k + (int)rng_below(r, (uint64_t)(P - k)), tmp = pop[k];
        double u;
        pop[k] = pop[j], pop[j] = tmp;
        u = utility(&t, (h[pop[k]].acc - m) / sd, h[pop[k]].flops);
        if (u > bu)
            bu = u, best = pop[k];
    }
    rc = mutate_child(s->pool, seen, &h[best].arch, r, &a, e);
done:
    if (!rc)
        fill(s->pool, &a, NAN, NAN, out);
    free(v), free(fl);
    return rc;
}

/* ---- xfer and nao ---- */

/* Candidate cells: unseen, allowed, distinct. */
typedef struct Cands {
    SpaceArch *a;
    int *tokens;
    double *flops;
    int n, cap;
} Cands;

static int cands_add(Cands *k, const SearchPool *p, IdxSet *seen, const SpaceArch *a, XErr *e)
{
    SpaceCost c;
    if (set_get(seen, p->sp->to_index(a)) >= 0 || !search_pool_allows(p, a, &c))
        return XE_OK;
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 256;
        SpaceArch *na = realloc(k->a, (size_t)cap * sizeof *na);
        int *nt = na ? realloc(k->tokens, (size_t)cap * p->sp->token_len * sizeof *nt) : NULL;
        double *nf = nt ? realloc(k->flops, (size_t)cap * sizeof *nf) : NULL;
        if (na)
            k->a = na;
        if (nt)
            k->tokens = nt;
        if (!nf)
            return xerr_set(e, XE_FAIL, "out of memory");
        k->flops = nf;
        k->cap = cap;
    }
    /* seen doubles as the candidates' dedup set (value -2: a candidate) */
    set_add(seen, p->sp->to_index(a), -2);
    k->a[k->n] = *a;
    p->sp->encode(a, k->tokens + (size_t)k->n * p->sp->token_len);
    k->flops[k->n] = (double)c.flops;
    k->n++;
    return XE_OK;
}

static void cands_release(Cands *k)
{
    free(k->a), free(k->tokens), free(k->flops);
    memset(k, 0, sizeof *k);
}

/* Step sizes of the gradient ascent on the code (unit length): small
 * moves decode to the parent or a neighbour, large ones further away. */
static const float propose_steps[] = { 0.05f, 0.1f, 0.2f, 0.4f, 0.8f, 1.6f };

static int gather(const Searcher *s, const XferModel *m, int task, const SearchStep *h, const int *par, int npar,
                  IdxSet *seen, Rng *r, Cands *k, XErr *e)
{
    const SearchPool *p = s->pool;
    const Space *sp = p->sp;
    int L = sp->token_len, rc = XE_OK;
    int *tin = malloc((size_t)(npar + 1) * L * sizeof *tin), *tout = malloc((size_t)(npar + 1) * L * sizeof *tout);
    if (!tin || !tout) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto done;
    }
    /* NAO: gradient steps from the best cells' codes, decoded */
    for (int i = 0; i < npar; i++)
        sp->encode(&h[par[i]].arch, tin + (size_t)i * L);
    for (size_t z = 0; npar && z < sizeof propose_steps / sizeof *propose_steps; z++) {
        if ((rc = xfer_propose(m, task, npar, tin, propose_steps[z], 3, tout, e)))
            goto done;
        for (int i = 0; !rc && i < npar; i++) {
            SpaceArch a;
            XErr de = { 0 };
            if (!sp->decode(tout + (size_t)i * L, L, &a, &de))
                rc = cands_add(k, p, seen, &a, e);
        }
    }
    /* single changes of the best cells */
    for (int i = 0; !rc && i < npar; i++)
        for (int t = 0; !rc && t < 8; t++) {
            SpaceArch a;
            sp->mutate(&h[par[i]].arch, r, &a);
            rc = cands_add(k, p, seen, &a, e);
        }
    /* and unseen cells at random: all of a table that small */
    if (!rc && p->n) {
        int left = 0, want;
        int *u = malloc((size_t)p->n * sizeof *u);
        if (!u) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            goto done;
        }
        for (int i = 0; i < p->n; i++)
            if (set_get(seen, sp->to_index(&p->archs[i])) == -1)
                u[left++] = i;
        want = left < s->c.candidates ? left : s->c.candidates;
        for (int i = 0; !rc && i < want; i++) {
            int j = i + (int)rng_below(r, (uint64_t)(left - i)), tmp = u[i];
            u[i] = u[j], u[j] = tmp;
            rc = cands_add(k, p, seen, &p->archs[u[i]], e);
        }
        free(u);
    } else {
        for (int t = 0; !rc && t < 4 * s->c.candidates && k->n < s->c.candidates + 64 * npar; t++) {
            SpaceArch a;
            sp->sample(r, &a);
            rc = cands_add(k, p, seen, &a, e);
        }
    }
done:
    free(tin), free(tout);
    return rc;
}

/* Normalisation of the target's accuracies: their mean, and their std
 * from 3 evaluations on (fallback before that). */
static void acc_scale(const SearchStep *h, const int *v, int nv, double fallback, double *mean, double *std)
{
    double s = 0, ss = 0;
    for (int i = 0; i < nv; i++)
        s += h[v[i]].acc;
    *mean = nv ? s / nv : 0;
    for (int i = 0; i < nv; i++)
        ss += (h[v[i]].acc - *mean) * (h[v[i]].acc - *mean);
    *std = nv >= 3 && ss > 0 ? sqrt(ss / (nv - 1)) : fallback;
}

/* nao refits at evaluation counts init, then growing by a quarter each
 * time: the same points whether or not the search was resumed. */
static int nao_fit_point(int init, int nv)
{
    int at = init, next;
    if (nv < init)
        return 0;
    while ((next = at + (at + 3) / 4) <= nv)
        at = next;
    return at;
}

static int nao_model(Searcher *s, const SearchStep *h, const int *v, int nv, XErr *e)
{
    int at = nao_fit_point(s->c.init, nv), L = s->pool->sp->token_len, rc;
    XferConfig xc;
    int *task, *tok;
    float *y;
    if (s->nao && s->nao_fit_n == at)
        return XE_OK;
    xfer_free(s->nao);
    s->nao = NULL;
    task = calloc((size_t)at, sizeof *task);
    tok = malloc((size_t)at * L * sizeof *tok);
    y = malloc((size_t)at * sizeof *y);
    if (!task || !tok || !y) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto done;
    }
    /* the first `at` evaluations, on their own scale */
    acc_scale(h, v, at, 1, &s->nao_mean, &s->nao_std);
    for (int i = 0; i < at; i++) {
        s->pool->sp->encode(&h[v[i]].arch, tok + (size_t)i * L);
        y[i] = (float)((h[v[i]].acc - s->nao_mean) / s->nao_std);
    }
    xfer_config_default(&xc, L, s->pool->sp->vocab);
    xc.epochs = s->c.nao_epochs;
    xc.batch = at;
    xc.seed = s->c.seed;
    if (!(rc = xfer_new(&s->nao, &xc, e)) && !(rc = xfer_fit(s->nao, 1, at, task, tok, y, NULL, NULL, e)))
        s->nao_fit_n = at;
done:
    if (rc) {
        xfer_free(s->nao);
        s->nao = NULL;
    }
    free(task), free(tok), free(y);
    return rc;
}

static const SearchStep *sort_h;
static int cmp_acc_desc(const void *a, const void *b)
{
    double x = sort_h[*(const int *)a].acc, y = sort_h[*(const int *)b].acc;
    if (x != y)
        return (x < y) - (x > y);
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static int next_model(Searcher *s, const SearchStep *h, int n, IdxSet *seen, Rng *r, Tradeoff *tr, SearchStep *out,
                      XErr *e)
{
    const SearchConfig *c = &s->c;
    const Space *sp = s->pool->sp;
    int L = sp->token_len, *v = malloc((size_t)(n + 1) * sizeof *v), nv, rc = XE_OK, task = -1, npar, pick = -1;
    XferModel *m = NULL;
    const XferModel *use = NULL;
    Cands k = { 0 };
    float *mu = NULL, *sd = NULL;
    double mean, std, best = -INFINITY;
    if (!v)
        return xerr_set(e, XE_FAIL, "out of memory");
    nv = valid_steps(h, n, v);
    acc_scale(h, v, nv, c->opt == SEARCH_XFER ? c->zs_std : 1, &mean, &std);
    if (c->opt == SEARCH_NAO) {
        if (nv < c->init) {
            SpaceArch a;
            if (!(rc = pick_random(s->pool, seen, r, &a, e)))
                fill(s->pool, &a, NAN, NAN, out);
            goto done;
        }
        if ((rc = nao_model(s, h, v, nv, e)))
            goto done;
        use = s->nao;
        mean = s->nao_mean;
        std = s->nao_std;
        task = 0;
    } else if (nv == 0) {
        use = c->universal; /* zero-shot: g_u alone */
        mean = c->zs_mean;
    } else {
        /* T's residual on its evaluations so far, g_u frozen */
        XferResidualOpts ro;
        int *tok = malloc((size_t)nv * L * sizeof *tok);
        float *y = malloc((size_t)nv * sizeof *y);
        if (!tok || !y)
            rc = xerr_set(e, XE_FAIL, "out of memory");
        for (int i = 0; !rc && i < nv; i++) {
            sp->encode(&h[v[i]].arch, tok + (size_t)i * L);
            y[i] = (float)((h[v[i]].acc - mean) / std);
        }
        xfer_residual_default(&ro);
        if (!rc && !(rc = xfer_clone(&m, c->universal, e)))
            rc = xfer_fit_residual(m, nv, tok, y, &ro, &task, e);
        free(tok), free(y);
        if (rc)
            goto done;
        use = m;
    }
    /* the parents: the best evaluations */
    sort_h = h;
    qsort(v, (size_t)nv, sizeof *v, cmp_acc_desc);
    npar = nv < c->parents ? nv : c->parents;
    if ((rc = gather(s, use, task, h, v, npar, seen, r, &k, e)))
        goto done;
    if (!k.n) {
        rc = xerr_set(e, XE_FAIL, "every %s cell the search may propose was evaluated", sp->name);
        goto done;
    }
    mu = malloc((size_t)k.n * sizeof *mu);
    sd = malloc((size_t)k.n * sizeof *sd);
    if (!mu || !sd) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto done;
    }
    if ((rc = xfer_predict(use, task, k.n, k.tokens, mu, sd, e)))
        goto done;
    tradeoff_fit(tr, k.flops, k.n);
    /* the best predicted, or now and then (not on the zero-shot start) any candidate */
    if (nv > 0 && rng_uniform(r) < c->explore) {
        pick = (int)rng_below(r, (uint64_t)k.n);
    } else {
        for (int i = 0; i < k.n; i++) {
            double u = utility(tr, mu[i], k.flops[i]);
            if (u > best)
                best = u, pick = i;
        }
    }
    fill(s->pool, &k.a[pick], mean + std * mu[pick], std * sd[pick], out);
done:
    xfer_free(m);
    cands_release(&k);
    free(mu), free(sd), free(v);
    return rc;
}

int searcher_next(Searcher *s, const SearchStep *h, int n, SearchStep *out, XErr *e)
{
    IdxSet seen;
    Rng r;
    Tradeoff tr = { 0, 0, 1 };
    int rc;
    step_rng(&s->c, n, &r);
    if (s->c.multi)
        tr.w = rng_uniform(&r);
    if ((rc = seen_of(h, n, s->pool->sp, &seen,
                      (uint64_t)s->c.candidates + 64u * (uint64_t)s->c.parents + (uint64_t)s->pool->n, e)))
        return rc;
    switch (s->c.opt) {
    case SEARCH_RANDOM: {
        SpaceArch a;
        if (!(rc = pick_random(s->pool, &seen, &r, &a, e)))
            fill(s->pool, &a, NAN, NAN, out);
        break;
    }
    case SEARCH_REA: rc = next_rea(s, h, n, &seen, &r, &tr, out, e); break;
    default: rc = next_model(s, h, n, &seen, &r, &tr, out, e); break;
    }
    set_release(&seen);
    return rc;
}

/* ---- simulated searches and fronts ---- */

int search_simulate(const SearchConfig *c, const SearchPool *pool, const float *acc, int budget, double *best,
                    int *done, XErr *e)
{
    Searcher *s = NULL;
    SearchStep *h = malloc((size_t)(budget + 1) * sizeof *h);
    int rc, n = 0;
    double b = -INFINITY;
    if (!h)
        return xerr_set(e, XE_FAIL, "out of memory");
    if ((rc = searcher_new(&s, c, pool, e)))
        goto done;
    for (; n < budget && n < (pool->n ? pool->n : budget); n++) {
        int k;
        if ((rc = xerr_check_interrupt(e)) || (rc = searcher_next(s, h, n, &h[n], e)))
            break;
        if ((k = search_pool_find(pool, &h[n].arch)) < 0) {
            rc = xerr_set(e, XE_FAIL, "search: proposed a cell outside the table");
            break;
        }
        h[n].acc = acc[pool->src[k]];
        if (h[n].acc > b)
            b = h[n].acc;
        best[n] = b;
    }
    for (int i = n; !rc && i < budget; i++)
        best[i] = n ? best[n - 1] : NAN;
    if (done)
        *done = n;
done:
    searcher_free(s);
    free(h);
    return rc;
}

int search_pareto(const SearchStep *h, int n, int *idx)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int dominated = !isfinite(h[i].acc) || h[i].terminated;
        for (int j = 0; j < n && !dominated; j++) {
            if (j == i || !isfinite(h[j].acc) || h[j].terminated)
                continue;
            if (h[j].acc >= h[i].acc && h[j].flops <= h[i].flops &&
                (h[j].acc > h[i].acc || h[j].flops < h[i].flops || j < i))
                dominated = 1;
        }
        if (!dominated)
            idx[k++] = i;
    }
    /* ascending FLOPs (insertion sort: fronts are short) */
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && h[idx[j]].flops < h[idx[j - 1]].flops; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = t;
        }
    return k;
}
