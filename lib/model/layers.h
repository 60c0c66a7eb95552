/* Layers of the surrogate models on the tape: linear, MLP, embedding, LSTM,
 * and the token-sequence encoder and decoder of the NAO autoencoder. A
 * layer is a few parameter ids in a TParams store; *_init adds and
 * initialises them, *_forward records the layer on a tape. */
#ifndef XFER_MODEL_LAYERS_H
#define XFER_MODEL_LAYERS_H

#include "model/tape.h"

/* y = x W + b: W (in, out), b (1, out). Weights uniform in
 * +-1/sqrt(in), bias zero. */
typedef struct Linear {
    int w, b, in, out;
} Linear;

int linear_init(Linear *l, TParams *ps, int in, int out, Rng *r, XErr *e);
TVar linear_forward(Tape *t, TParams *ps, const Linear *l, TVar x);

/* depth hidden layers of width `hidden` with ReLU (and dropout when
 * training), then a linear output of width `out`. */
#define MLP_MAX_DEPTH 4
typedef struct Mlp {
    int depth;
    Linear layer[MLP_MAX_DEPTH + 1];
} Mlp;

int mlp_init(Mlp *m, TParams *ps, int in, int hidden, int depth, int out, Rng *r, XErr *e);
/* dropout p after every hidden layer when r is given; no dropout without. */
TVar mlp_forward(Tape *t, TParams *ps, const Mlp *m, TVar x, float p, Rng *r);
/* Zeroes the output layer, so the MLP starts as the zero function. */
void mlp_zero_output(Mlp *m, TParams *ps);
/* Sets lr_scale on every parameter of the MLP (0 freezes it). */
void mlp_set_lr_scale(const Mlp *m, TParams *ps, float s);

/* A table (vocab, dim), uniform in +-1. */
typedef struct Embedding {
    int table, vocab, dim;
} Embedding;

int embedding_init(Embedding *em, TParams *ps, int vocab, int dim, Rng *r, XErr *e);
TVar embedding_forward(Tape *t, TParams *ps, const Embedding *em, const int *ids, int n);

/* An LSTM layer: gates z = x Wx + b + h Wh, in the order input, forget,
 * cell, output; Wx (in, 4H), Wh (H, 4H), b (1, 4H). Weights uniform in
 * +-1/sqrt(H), forget bias 1. */
typedef struct Lstm {
    int wx, wh, b, in, hidden;
} Lstm;

int lstm_init(Lstm *l, TParams *ps, int in, int hidden, Rng *r, XErr *e);
/* x Wx + b for a whole sequence at once: x (T*B, in) -> (T*B, 4H). */
TVar lstm_input_gates(Tape *t, TParams *ps, const Lstm *l, TVar x);
/* One step from the input part zx (B, 4H), and h, c (B, H) (TAPE_NONE:
 * zeros). Writes the new h and c. */
void lstm_step(Tape *t, TParams *ps, const Lstm *l, TVar zx, TVar *h, TVar *c);

/* ---- token sequences (architecture encodings) ---- */

typedef enum {
    SEQ_CODE_MEAN = 0,  /* the mean of the hidden states over the sequence */
    SEQ_CODE_LAST = 1,  /* the last hidden state */
} SeqCode;

/* Tokens (B, len), each 0..vocab-1 -> the code (B, hidden), L2-normalised
 * per row as NAO normalises its architecture embedding. */
typedef struct SeqEncoder {
    Embedding emb;
    Lstm lstm;
    int len;
    SeqCode mode;
} SeqEncoder;

int seq_encoder_init(SeqEncoder *s, TParams *ps, int vocab, int len, int embed, int hidden, SeqCode mode,
                     Rng *r, XErr *e);
/* Embedding dropout p when r is given. Tokens are checked on the tape. */
TVar seq_encode(Tape *t, TParams *ps, const SeqEncoder *s, const int *tokens, int B, float p, Rng *r);

/* The decoder conditioned on a code h (B, hidden): its LSTM starts from
 * h, and h enters the gates of every step (h Wc); the input of step k is
 * the embedding of token k-1 (a start token at k = 0); a linear layer maps
 * each hidden state to logits over the vocabulary. */
typedef struct SeqDecoder {
    Embedding emb;      /* vocab + 1 rows: the last is the start token */
    Lstm lstm;
    int wc;             /* (hidden, 4 hidden) */
    Linear out;         /* (hidden, vocab) */
    int len, vocab;
} SeqDecoder;

int seq_decoder_init(SeqDecoder *s, TParams *ps, int vocab, int len, int embed, int hidden, Rng *r,
                     XErr *e);
/* Teacher forcing: mean cross-entropy of the tokens (B, len) given code.
 * With correct, counts the tokens whose logit is highest (argmax ==
 * token) into *correct. */
TVar seq_decode_loss(Tape *t, TParams *ps, const SeqDecoder *s, TVar code, const int *tokens, int B,
                     long *correct);
/* Greedy decoding: at each step the most likely token, fed back as the
 * next input. tokens_out (B, len). */
int seq_decode_greedy(Tape *t, TParams *ps, const SeqDecoder *s, TVar code, int B, int *tokens_out,
                      XErr *e);

#endif
