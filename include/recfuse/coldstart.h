/* coldstart.h - cold start and transfer for latent-factor models.
 *
 * Mapper: a ridge regression from an item's sparse feature vector
 * (features.h's rf_item_features x, one row per item) to the item's
 * latent vector in a trained factor model (factors.h), fit on the warm
 * items (those with interactions):
 *     W = argmin  sum_{i warm} |V_i - x_i^T W - b|^2 + reg (|W|^2 + |b|^2)
 * (b: an intercept, a constant feature 1). A brand-new item then gets the
 * vector x^T W + b and can be scored by the factor model like any other.
 * Solved per latent dimension by conjugate gradient on the normal
 * equations (X^T X + reg I) w = X^T v, never forming X^T X, so a text
 * vocabulary of 10^5 columns is fine.
 *
 * Warm start: rf_warmstart_copy copies the rows of a previous model's
 * factor matrix into a new one wherever the string ids match (incremental
 * retraining; transfer from a domain sharing users or items).
 *
 * Deterministic: the same inputs give the same bytes for every thread
 * count (dimensions are solved independently, each serially). */
#ifndef RECFUSE_COLDSTART_H
#define RECFUSE_COLDSTART_H

#include <stdint.h>

#include "csr.h"
#include "factors.h"
#include "idmap.h"

struct rf_err;

typedef struct rf_coldstart {
    int32_t n_feats; /* columns of the feature matrix it was fit on */
    int dim;         /* latent dimensions */
    float *W;        /* (n_feats + 1) x dim row-major; row n_feats is the intercept */
    int32_t n_warm;  /* items used for fitting */
    int iters_max;   /* most CG steps any dimension needed */
} rf_coldstart;

/* Fit the mapper from x (n_items x n_feats, rows = the factor model's item
 * ids, n_items == f->n_items) to f->items, on the items with warm[i] != 0
 * (warm NULL: every item whose feature row is nonempty). reg > 0. CG runs
 * until the residual norm falls below 1e-8 of the right-hand side's or
 * 1000 steps. Errors: RF_EINVAL (size mismatch, reg <= 0, no warm item),
 * RF_ENOMEM. Parallel over dimensions (rf_threads()), deterministic. */
int rf_coldstart_fit(const rf_factors *f, const rf_csr *x, const uint8_t *warm, double reg,
                     rf_coldstart **out, struct rf_err *err);
void rf_coldstart_free(rf_coldstart *c); /* NULL is a no-op */

/* The vector (c->dim floats into vec) of an item with sparse features
 * (idx[0..n), val[0..n)); columns outside [0, n_feats) are ignored, so a
 * feature the mapper never saw contributes nothing. Thread-safe. */
void rf_coldstart_item_vector(const rf_coldstart *c, int32_t n, const int32_t *idx,
                              const float *val, float *vec);

/* Overwrite the rows of V (n_items = x->nrows rows of ld floats, ld >=
 * c->dim; entries >= dim untouched) with the mapped vector of every item
 * with cold[i] != 0 (cold NULL: every item with an all-zero row in V).
 * Returns the number of rows written. */
int32_t rf_coldstart_fill(const rf_coldstart *c, const rf_csr *x, const uint8_t *cold, float *V,
                          int ld);

/* Warm start: for every id of dst_ids (dense ids 0 .. n_dst-1) that also
 * names a row of src_ids (0 .. n_src-1), copy dim floats of that source
 * row (stride src_ld) into the destination row (stride dst_ld); other
 * destination rows are left as they are (e.g. their random init). Returns
 * the number of rows copied (>= 0). */
int32_t rf_warmstart_copy(const rf_idmap *src_ids, int32_t n_src, const float *src, int src_ld,
                          const rf_idmap *dst_ids, int32_t n_dst, float *dst, int dst_ld, int dim);

/* The parts of a factor model a warm start copies: user rows P and item
 * rows Q (dim floats each, stride ld), and user / item biases (NULL when
 * the model has none). */
typedef struct rf_warm_parts {
    const float *P, *Q, *bu, *bi;
    int dim, ld;
} rf_warm_parts;

/* The checks of a model's set_init op (model.h, rf_model_set_init): src is
 * a fitted model of dst's kind whose factor count `have` equals dst's
 * `want` (pass have = -1 when src is not of dst's kind). 0 or RF_EINVAL
 * with a message naming the problem. */
int rf_warmstart_check(const rf_model *dst, const rf_model *src, int have, int want,
                       struct rf_err *err);
/* Copy src's parts (s) into dst's (d: the same pointers, writable) by id
 * string through the models' id maps (src->users/items, dst->users/items;
 * d's rows beyond dst's maps untouched); parts NULL on either side are
 * skipped. RF_EINVAL if the dims differ. Logs "NAME.warm_start" with the
 * counts copied. */
int rf_warmstart_parts(const rf_model *src, const rf_warm_parts *s, const rf_model *dst,
                       const rf_warm_parts *d, struct rf_err *err);

#endif
