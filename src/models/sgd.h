/* sgd.h - private kernels and shared state of the SGD latent-factor models
 * (mf, svdpp, bpr). Not part of the public API: tests include it to check
 * the kernels against finite differences and naive references.
 *
 * Every SGD step here is plain gradient descent on one sample's loss
 * (written out in each function's comment) with all gradients taken at
 * the parameters' old values, so `theta -= lr * dL/dtheta` is exactly what
 * the step does; test_mf.c / test_bpr.c check that against central
 * differences of the loss functions below. Dot products add in a fixed
 * order (8 partial sums), so results do not depend on the compiler's
 * vectorisation choices beyond IEEE single precision. */
#ifndef RF_MODELS_SGD_H
#define RF_MODELS_SGD_H

#include <stdint.h>

#include "recfuse/model.h"
#include "recfuse/rng.h"

struct rf_err;
struct rf_writer;
struct rf_reader;

/* Dot product of n floats in a fixed summation order. */
float rf_sgd_dot(const float *a, const float *b, int n);

/* ---- biased MF (Koren): r^ = mu + bu + bi + p.q ------------------------
 * Per-rating loss, e = r - r^:
 *   L = e^2/2 + reg/2 (|p|^2 + |q|^2) + reg_b/2 (bu^2 + bi^2)        */
double rf_mf_loss(float mu, float bu, float bi, const float *p, const float *q, int f, float r,
                  float reg, float reg_b);
/* One SGD step on L; returns e (before the step). */
float rf_mf_step(float mu, float *restrict bu, float *restrict bi, float *restrict p,
                 float *restrict q, int f, float r, float lr, float reg, float reg_b);

/* ---- the implicit co-training term of mf and svdpp ----------------------
 * With weight w > 0 every rating (u, i) is followed by a BPR step on
 * "u rated i rather than j" for an item j the user has not rated, on the
 * user's explicit factors p and the item factors q only:
 *   L_imp = w * -ln sigmoid(p.(qi - qj))
 * (no regulariser of its own: the rating step regularises p and q). */
double rf_implicit_loss(const float *p, const float *qi, const float *qj, int f, float w);
void rf_implicit_step(float *restrict p, float *restrict qi, float *restrict qj, int f, float w,
                      float lr);

/* ---- SVD++ (Koren 2008): r^ = mu + bu + bi + q.(p + |N|^-1/2 sum_j y_j)
 * N = the user's rated items. Per-rating loss:
 *   L = e^2/2 + reg/2 (|p|^2 + |q|^2) + reg_b/2 (bu^2 + bi^2)
 *       + reg_y/2 sum_{j in N} |y_j|^2
 * A step updates bu, bi, p, q_i and every y_j, j in N. */
double rf_svdpp_loss(float mu, float bu, float bi, const float *p, const float *q,
                     const float *Y, const int32_t *nset, int32_t nn, int f, float r, float reg,
                     float reg_b, float reg_y);
/* One SGD pass over a user's ratings (items[k], r[k], k < n, in that
 * order), equivalent to n successive per-rating steps on the loss above
 * but in O(n f + |N| f) instead of O(n |N| f): the implicit sum
 * s = |N|^-1/2 sum y_j is kept up to date exactly (s <- (1 - lr reg_y) s +
 * lr e q_i), and every y_j is an affine function a y_j + c of its value at
 * the start of the pass, applied once at the end. Y rows of nset are
 * updated in place; `s` and `c` are scratch of f floats. Returns the sum
 * of squared errors (before each step). */
double rf_svdpp_user_pass(float mu, float *bu, float *bi, float *p, float *Q, float *Y,
                          const int32_t *nset, int32_t nn, const int32_t *items, const float *r,
                          int32_t n, int f, float lr, float reg, float reg_b, float reg_y,
                          float *s, float *c);
/* The same pass with the implicit co-training term: rating k is followed
 * by rf_implicit_step(p, q_items[k], q_negs[k], w) when negs[k] >= 0
 * (negs may be NULL: no implicit steps). */
double rf_svdpp_user_pass_imp(float mu, float *bu, float *bi, float *p, float *Q, float *Y,
                              const int32_t *nset, int32_t nn, const int32_t *items,
                              const float *r, const int32_t *negs, int32_t n, int f, float lr,
                              float reg, float reg_b, float reg_y, float w, float *s, float *c);

/* ---- BPR / WARP pairwise steps ----------------------------------------
 * x = p.(qi - qj) + bi - bj. BPR loss of one (u, i, j) triple:
 *   L = -ln sigmoid(x) + reg/2 (|p|^2 + |qi|^2 + |qj|^2)
 *       + reg_b/2 (bi^2 + bj^2)
 * rf_pair_step is the SGD step for any loss of the form l(x) + the same
 * regularisers, given coef = -dl/dx at the old parameters
 * (BPR: sigmoid(-x); WARP's weighted hinge: its rank weight when
 * 1 - x > 0). */
double rf_bpr_loss(const float *p, const float *qi, const float *qj, float bi, float bj, int f,
                   float reg, float reg_b);
float rf_pair_x(const float *p, const float *qi, const float *qj, float bi, float bj, int f);
void rf_pair_step(float *restrict p, float *restrict qi, float *restrict qj, float *restrict bi,
                  float *restrict bj, int f, float coef, float lr, float reg, float reg_b);
/* bpr.c's schedule: round r (0 <= r < G - 1) of the circle-method round
 * robin over G (even) item groups, pair k (0 <= k < G/2) into *a, *b.
 * Every unordered pair of groups meets in exactly one round. */
void rf_bpr_round_pair(int G, int r, int k, int *a, int *b);
/* sigmoid(-x) = 1 / (1 + e^x), safe for large |x|. */
float rf_sigmoid_neg(float x);

/* ---- the shared state of mf and svdpp ---------------------------------
 * Parameters of both (svdpp alone uses reg_y; each model's table lists
 * the fields it uses). */
typedef struct rf_rating_params {
    int factors, epochs, seed;
    double lr, lr_decay, reg, reg_bias, reg_y, init_std, implicit;
} rf_rating_params;

/* Model state. Prediction for a known user u and item i:
 *   clip(mu + bu[u] + bi[i] + P[u].Q[i], rmin, rmax)
 * where P[u] is p_u for mf and p_u + |N(u)|^-1/2 sum y_j for svdpp (the
 * implicit sum of the training items is folded into P after fitting, so
 * predicting needs no training data). Y is NULL for mf. */
typedef struct rf_rating_impl {
    int32_t f;
    float mu, rmin, rmax;
    float *bu, *bi; /* n_users, n_items */
    float *P, *Q;   /* n_users x f, n_items x f */
    float *Y;       /* svdpp: n_items x f implicit item factors; mf: NULL */
    /* training-time log (not saved): RMSE on the training data per epoch */
    double train_rmse;
    const rf_model *init_src; /* mf warm start of the next fit (borrowed), or NULL */
} rf_rating_impl;

int rf_rating_create(rf_model *m, struct rf_err *err);
void rf_rating_destroy(rf_model *m);
/* Allocate zeroed arrays for the model's dimensions (Y if with_y). */
int rf_rating_alloc(rf_model *m, int32_t f, int with_y, struct rf_err *err);
int rf_rating_save(const rf_model *m, struct rf_writer *w, struct rf_err *err);
int rf_rating_load(rf_model *m, struct rf_reader *r, struct rf_err *err);
int rf_rating_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                        struct rf_err *err);
int rf_rating_score_items(const rf_model *m, int32_t user, const rf_hist *h,
                          const int32_t *items, int32_t n, float *out, struct rf_err *err);
int rf_rating_user_dim(const rf_model *m);
int rf_rating_fold_in(const rf_model *m, const rf_hist *h, float *vec, struct rf_err *err);
const float *rf_rating_item_vectors(const rf_model *m, int *dim);
/* The dataset options mf and svdpp train on: rating events only, their
 * values, the latest rating of a re-rated item, no decay, not binary. */
void rf_rating_data_defaults(rf_dataset_opts *o);
/* Normal(0, std^2) values into a[0..n) from stream `stream` of `seed`. */
void rf_rating_init_normal(float *a, int64_t n, double std, uint64_t seed, uint64_t stream);
/* params_check of mf and svdpp. */
const char *rf_rating_params_check(const void *params);
/* A uniformly drawn item not in the sorted row[0..rn) of n_items items,
 * or -1 after 32 draws that all hit the row. */
int32_t rf_draw_unrated(rf_rng *g, const int32_t *row, int64_t rn, int32_t n_items);
/* Training triplets from d->ui (users, items, ratings), global mean and
 * range; RF_EINVAL if there are no ratings or a rating is not finite. */
int rf_rating_check_data(const rf_model *m, const rf_dataset *d, double *mu, float *rmin,
                         float *rmax, struct rf_err *err);

#endif
