/* fm.h - second-order factorization machine kernels (Rendle 2010), used by
 * the "fm" model (src/models/fm.c, docs/models-fm-coldstart.md).
 *
 * An FM over n_feats features with k factors predicts, for a sparse input
 * x (entries (idx, val)),
 *     y(x) = w0 + sum_f w_f x_f
 *            + 1/2 sum_d [ (sum_f v_fd x_f)^2 - sum_f v_fd^2 x_f^2 ]
 * in O(k * nnz(x)). Two training losses, on one training case each:
 *   RF_FM_BPR      -ln sigmoid(y(a) - y(b))   (a preferred over b)
 *   RF_FM_LOGLOSS  ln(1 + exp(-s y(a)))       (s = +1 for label 1, -1 for 0)
 * Kernels are pure functions of their arguments (thread-safe). */
#ifndef RECFUSE_FM_H
#define RECFUSE_FM_H

#include <stdint.h>

enum { RF_FM_BPR = 0, RF_FM_LOGLOSS = 1 };

/* FM parameters; w: n_feats floats, V: n_feats x k row-major. */
typedef struct rf_fm_weights {
    int32_t n_feats;
    int k;
    float w0;
    float *w;
    float *V;
} rf_fm_weights;

/* One sparse input: features idx[0..n) (in [0, n_feats), distinct) with
 * values val[0..n). */
typedef struct rf_fm_ex {
    int32_t n;
    const int32_t *idx;
    const float *val;
} rf_fm_ex;

/* Gradient of a loss as a list of entries (a feature may appear twice when
 * it is in both inputs of a BPR case: the true gradient is the sum).
 * Caller-owned arrays sized for a->n + b->n entries: idx, gw, and gv
 * (entries x k). */
typedef struct rf_fm_grad {
    int32_t n;
    int32_t *idx;
    float *gw;
    float *gv;
    float gw0;
} rf_fm_grad;

/* y(x); sum (k doubles of scratch) receives sum_f v_fd x_f. */
double rf_fm_predict(const rf_fm_weights *p, const rf_fm_ex *x, double *sum);

/* Loss of one case (b ignored for LOGLOSS; y is the 0/1 label, ignored
 * for BPR). scratch: 2k doubles. */
double rf_fm_loss(const rf_fm_weights *p, int loss, const rf_fm_ex *a, const rf_fm_ex *b, int y,
                  double *scratch);

/* Loss and its gradient with respect to w0, w and V (no regularisation)
 * into g. scratch: 2k doubles. */
double rf_fm_loss_grad(const rf_fm_weights *p, int loss, const rf_fm_ex *a, const rf_fm_ex *b,
                       int y, rf_fm_grad *g, double *scratch);

#endif
