/* Linear, MLP, embedding and LSTM layers, and the sequence encoder and
 * decoder, as compositions of tape ops (the LSTM's gate math is one fused
 * op; each sequence's input projections are one matrix product over all of
 * its steps). */
#include "model/layers.h"

#include <math.h>
#include <string.h>

int linear_init(Linear *l, TParams *ps, int in, int out, Rng *r, XErr *e)
{
    int rc;
    l->in = in;
    l->out = out;
    if ((rc = tparams_add(ps, in, out, 1, &l->w, e)) || (rc = tparams_add(ps, 1, out, 0, &l->b, e)))
        return rc;
    tparams_fill_uniform(ps, l->w, 1.0f / sqrtf((float)in), r);
    return XE_OK;
}

TVar linear_forward(Tape *t, TParams *ps, const Linear *l, TVar x)
{
    TVar y = tape_matmul(t, x, tape_param(t, ps, l->w), 0, 0);
    return tape_add_bias(t, y, tape_param(t, ps, l->b));
}

int mlp_init(Mlp *m, TParams *ps, int in, int hidden, int depth, int out, Rng *r, XErr *e)
{
    int rc, width = in;
    if (depth < 0 || depth > MLP_MAX_DEPTH)
        return xerr_set(e, XE_USAGE, "mlp: depth %d is out of range (0-%d)", depth, MLP_MAX_DEPTH);
    m->depth = depth;
    for (int k = 0; k < depth; k++) {
        if ((rc = linear_init(&m->layer[k], ps, width, hidden, r, e)))
            return rc;
        width = hidden;
    }
    return linear_init(&m->layer[depth], ps, width, out, r, e);
}

TVar mlp_forward(Tape *t, TParams *ps, const Mlp *m, TVar x, float p, Rng *r)
{
    for (int k = 0; k < m->depth; k++) {
        x = tape_relu(t, linear_forward(t, ps, &m->layer[k], x));
        if (r)
            x = tape_dropout(t, x, p, r);
    }
    return linear_forward(t, ps, &m->layer[m->depth], x);
}

void mlp_zero_output(Mlp *m, TParams *ps)
{
    const Linear *l = &m->layer[m->depth];
    memset(tparams_value(ps, l->w), 0, tparams_numel(ps, l->w) * sizeof(float));
    memset(tparams_value(ps, l->b), 0, tparams_numel(ps, l->b) * sizeof(float));
}

void mlp_set_lr_scale(const Mlp *m, TParams *ps, float s)
{
    for (int k = 0; k <= m->depth; k++) {
        ps->p[m->layer[k].w].lr_scale = s;
        ps->p[m->layer[k].b].lr_scale = s;
    }
}

int embedding_init(Embedding *em, TParams *ps, int vocab, int dim, Rng *r, XErr *e)
{
    int rc;
    em->vocab = vocab;
    em->dim = dim;
    if ((rc = tparams_add(ps, vocab, dim, 0, &em->table, e)))
        return rc;
    tparams_fill_uniform(ps, em->table, 1.0f, r);
    return XE_OK;
}

TVar embedding_forward(Tape *t, TParams *ps, const Embedding *em, const int *ids, int n)
{
    return tape_embed(t, tape_param(t, ps, em->table), ids, n);
}

int lstm_init(Lstm *l, TParams *ps, int in, int hidden, Rng *r, XErr *e)
{
    int rc;
    float bound = 1.0f / sqrtf((float)hidden), *b;
    l->in = in;
    l->hidden = hidden;
    if ((rc = tparams_add(ps, in, 4 * hidden, 1, &l->wx, e)) ||
        (rc = tparams_add(ps, hidden, 4 * hidden, 1, &l->wh, e)) ||
        (rc = tparams_add(ps, 1, 4 * hidden, 0, &l->b, e)))
        return rc;
    tparams_fill_uniform(ps, l->wx, bound, r);
    tparams_fill_uniform(ps, l->wh, bound, r);
    b = tparams_value(ps, l->b);
    for (int j = 0; j < hidden; j++)
        b[hidden + j] = 1.0f;
    return XE_OK;
}

TVar lstm_input_gates(Tape *t, TParams *ps, const Lstm *l, TVar x)
{
    TVar z = tape_matmul(t, x, tape_param(t, ps, l->wx), 0, 0);
    return tape_add_bias(t, z, tape_param(t, ps, l->b));
}

void lstm_step(Tape *t, TParams *ps, const Lstm *l, TVar zx, TVar *h, TVar *c)
{
    int H = l->hidden;
    TVar z = zx, hc;
    if (*h != TAPE_NONE)
        z = tape_add(t, zx, tape_matmul(t, *h, tape_param(t, ps, l->wh), 0, 0));
    hc = tape_lstm_cell(t, z, *c);
    *h = tape_slice_cols(t, hc, 0, H);
    *c = tape_slice_cols(t, hc, H, H);
}

/* Token k of every row, step-major: ids[k * B + i] = tokens[i * len + k];
 * with start >= 0 the sequence is shifted right behind a start token. */
static int *step_major(Tape *t, const int *tokens, int B, int len, int start)
{
    int *ids = tape_scratch(t, (size_t)B * (size_t)len * sizeof *ids);
    if (!ids)
        return NULL;
    for (int k = 0; k < len; k++)
        for (int i = 0; i < B; i++) {
            int src = start >= 0 ? k - 1 : k;
            ids[(size_t)k * B + i] = src < 0 ? start : tokens[(size_t)i * len + src];
        }
    return ids;
}

int seq_encoder_init(SeqEncoder *s, TParams *ps, int vocab, int len, int embed, int hidden, SeqCode mode,
                     Rng *r, XErr *e)
{
    int rc;
    s->len = len;
    s->mode = mode;
    if ((rc = embedding_init(&s->emb, ps, vocab, embed, r, e)))
        return rc;
    return lstm_init(&s->lstm, ps, embed, hidden, r, e);
}

TVar seq_encode(Tape *t, TParams *ps, const SeqEncoder *s, const int *tokens, int B, float p, Rng *r)
{
    int *ids = step_major(t, tokens, B, s->len, -1);
    TVar x, zx, h = TAPE_NONE, c = TAPE_NONE, sum = TAPE_NONE;
    if (!ids)
        return TAPE_NONE;
    x = embedding_forward(t, ps, &s->emb, ids, B * s->len);
    if (r)
        x = tape_dropout(t, x, p, r);
    zx = lstm_input_gates(t, ps, &s->lstm, x); /* (len * B, 4H) */
    for (int k = 0; k < s->len; k++) {
        lstm_step(t, ps, &s->lstm, tape_slice_rows(t, zx, k * B, B), &h, &c);
        if (s->mode == SEQ_CODE_MEAN)
            sum = k ? tape_add(t, sum, h) : h;
    }
    if (s->mode == SEQ_CODE_MEAN)
        h = tape_scale(t, sum, 1.0f / (float)s->len);
    return tape_l2norm(t, h, 1e-8f);
}

int seq_decoder_init(SeqDecoder *s, TParams *ps, int vocab, int len, int embed, int hidden, Rng *r,
                     XErr *e)
{
    int rc;
    s->len = len;
    s->vocab = vocab;
    if ((rc = embedding_init(&s->emb, ps, vocab + 1, embed, r, e)) ||
        (rc = lstm_init(&s->lstm, ps, embed, hidden, r, e)) ||
        (rc = tparams_add(ps, hidden, 4 * hidden, 1, &s->wc, e)))
        return rc;
    tparams_fill_uniform(ps, s->wc, 1.0f / sqrtf((float)hidden), r);
    return linear_init(&s->out, ps, hidden, vocab, r, e);
}

TVar seq_decode_loss(Tape *t, TParams *ps, const SeqDecoder *s, TVar code, const int *tokens, int B,
                     long *correct)
{
    int *prev = step_major(t, tokens, B, s->len, s->vocab);
    int *labels = step_major(t, tokens, B, s->len, -1);
    TVar *hs = tape_scratch(t, (size_t)s->len * sizeof *hs);
    TVar x, zx, zc, h = code, c = TAPE_NONE, logits, loss;
    if (!prev || !labels || !hs)
        return TAPE_NONE;
    x = embedding_forward(t, ps, &s->emb, prev, B * s->len);
    zx = lstm_input_gates(t, ps, &s->lstm, x);                         /* (len * B, 4H) */
    zc = tape_matmul(t, code, tape_param(t, ps, s->wc), 0, 0);          /* (B, 4H) */
    for (int k = 0; k < s->len; k++) {
        lstm_step(t, ps, &s->lstm, tape_add(t, tape_slice_rows(t, zx, k * B, B), zc), &h, &c);
        hs[k] = h;
    }
    logits = linear_forward(t, ps, &s->out, tape_concat_rows(t, hs, s->len)); /* (len * B, V) */
    loss = tape_softmax_xent(t, logits, labels);
    if (correct && loss != TAPE_NONE) {
        const float *lv = tape_value(t, logits);
        for (int i = 0; i < B * s->len; i++) {
            const float *row = lv + (size_t)i * s->vocab;
            int best = 0;
            for (int j = 1; j < s->vocab; j++)
                if (row[j] > row[best])
                    best = j;
            *correct += best == labels[i];
        }
    }
    return loss;
}

int seq_decode_greedy(Tape *t, TParams *ps, const SeqDecoder *s, TVar code, int B, int *tokens_out, XErr *e)
{
    int *ids = tape_scratch(t, (size_t)B * sizeof *ids);
    TVar zc, h = code, c = TAPE_NONE;
    if (!ids)
        return tape_status(t, e);
    for (int i = 0; i < B; i++)
        ids[i] = s->vocab;
    zc = tape_matmul(t, code, tape_param(t, ps, s->wc), 0, 0);
    for (int k = 0; k < s->len; k++) {
        TVar x = embedding_forward(t, ps, &s->emb, ids, B);
        TVar logits;
        const float *lv;
        lstm_step(t, ps, &s->lstm, tape_add(t, lstm_input_gates(t, ps, &s->lstm, x), zc), &h, &c);
        logits = linear_forward(t, ps, &s->out, h);
        if (!(lv = tape_value(t, logits)))
            return tape_status(t, e);
        for (int i = 0; i < B; i++) {
            const float *row = lv + (size_t)i * s->vocab;
            int best = 0;
            for (int j = 1; j < s->vocab; j++)
                if (row[j] > row[best])
                    best = j;
            ids[i] = best;
            tokens_out[(size_t)i * s->len + k] = best;
        }
    }
    return tape_status(t, e);
}
