/* factors.h - latent factors: the factor matrices of a trained iALS model,
 * fold-in of new users and items, and the ALS row solves underneath.
 *
 * An iALS model (model name "ials", docs/models-ials-ease.md) holds a user
 * matrix U (n_users x dim) and an item matrix V (n_items x dim); the score
 * of item i for user u is U[u] . V[i]. Rows are stored with a stride of
 * `ld` floats (dim rounded up to a multiple of 8, entries dim..ld-1 zero)
 * so the SIMD kernels never need a tail.
 *
 * The row solve is the weighted ridge regression of implicit-feedback ALS
 * (Hu, Koren & Volinsky 2008): for one user (or item) with observed
 * entries i in O, confidences c_i > 0 and preference 1 on them, and
 * preference 0 with weight w_i everywhere else (1 in HKV; He et al. 2016
 * weight unobserved cells by item popularity), find
 *     x = argmin  sum_{i in O} c_i (1 - y_i.x)^2 + sum_{i not in O} w_i (y_i.x)^2
 *                 + reg |x|^2
 * i.e. solve (G + sum_{i in O} (c_i - w_i) y_i y_i^T + reg I) x = sum_{i in O} c_i y_i
 * with G = sum_i w_i y_i y_i^T over all rows of the other side (given as
 * gram_scale * gram, so one Gram matrix serves every row of a side whose
 * unobserved weight is the row's own). The exact solve forms that
 * dim x dim matrix and factors it (Cholesky); the conjugate-gradient
 * solve never forms it and only applies it:
 *     A p = G p + reg p + sum_{i in O} (c_i - w_i) (y_i.p) y_i.
 *
 * Kernels have AVX2+FMA and AVX-512 paths chosen at run time on CPUs that
 * have them, and a portable path; results agree to rounding, and a given
 * path is bit-identical for any thread count. Thread-safe: the solves only
 * read their inputs and write x and the caller's work buffer. */
#ifndef RECFUSE_FACTORS_H
#define RECFUSE_FACTORS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "topk.h"

struct rf_err;

/* ---- a trained model's factors --------------------------------------- */

typedef struct rf_factors {
    int32_t n_users, n_items;
    int dim;            /* latent dimensions (the `factors` parameter) */
    int ld;             /* floats from one row to the next: dim rounded up to 8 */
    const float *users; /* n_users x ld, row-major, borrowed from the model */
    const float *items; /* n_items x ld */
} rf_factors;

/* View of a fitted iALS model's factor matrices (borrowed: valid while the
 * model lives). RF_EINVAL if m is not a fitted factor model. */
int rf_factors_get(const rf_model *m, rf_factors *out, struct rf_err *err);

/* Warm start (incremental retraining, transfer from another domain): the
 * next rf_model_fit of the ials model m starts from the vectors of src, a
 * fitted ials model with the same `factors`. Every user and item of the
 * training data whose id string src also knows gets src's vector (matched
 * by string, not position); the others get the usual random init. src is
 * borrowed until that fit returns (the fit forgets it); src NULL cancels.
 * RF_EINVAL: m not an ials model, src not a fitted ials model, or the
 * factors differ; RF_ESTATE: m already fitted. */
int rf_ials_set_init(rf_model *m, const rf_model *src, struct rf_err *err);

/* Scores of all items for a user vector `vec` (dim floats):
 * out[i] = vec . items[i], n_items floats. Thread-safe. */
void rf_factors_score_all(const rf_factors *f, const float *vec, float *out);

/* Scores of some items: out[t] = vec . items[items_[t]] for t < n, with
 * vec ld floats (zero beyond dim). Bit-identical to the same entries of
 * rf_factors_score_all (the same kernels, row by row). Thread-safe. */
void rf_factors_score_items(const rf_factors *f, const float *vec, const int32_t *items,
                            int32_t n, float *out);

/* ---- exact top-k by a norm-ordered scan (factor_topk.c) ---------------- */

/* The norm order of a model's items, computed once per model by
 * rf_factors_index: ids by decreasing |v_i| (ties by the smaller id; a NaN
 * norm counts as +inf, so such an item is always scanned), their norms,
 * and 8-bit copies of the item vectors in that order (so a scan reads
 * memory front to back: n_items x ld bytes, a quarter of the model's own
 * items; the exact scores come from the model's rows, f). */
typedef struct rf_factor_index {
    int32_t n_items;
    int ld;
    int32_t *perm;
    float *norms;
    /* 8-bit copies of the rows in the same order (factor_topk.c): row p is
     * about qscale[p] * q8[p * ld ..], |row - that| <= qerr[p] */
    int8_t *q8;
    float *qscale, *qerr;
} rf_factor_index;

/* Build ix for f (owned by ix: rf_factor_index_free). RF_ENOMEM. */
int rf_factors_index(const rf_factors *f, rf_factor_index *ix, struct rf_err *err);
void rf_factor_index_free(rf_factor_index *ix); /* zeroes ix; a zeroed ix is a no-op */

/* The exact top k of vec . v_i over the items with mask[i] == 0 (mask NULL:
 * all), best first, ties by the smaller id, into out (k entries); returns
 * the count written. vec: ld floats, zero beyond dim. Items are visited in
 * the order of ix (f's index) by blocks, and the scan stops once |vec| |v_i|
 * (with a 1e-4 relative margin for rounding) falls below the k-th best
 * score found: by Cauchy-Schwarz no later item can enter. The scores are
 * those of rf_factors_score_all (the same kernel on the same rows), so the
 * result equals rf_topk_select over its output with the masked items
 * excluded. *scanned (may be NULL): items scored. Thread-safe. */
int rf_factors_topk_pruned(const rf_factors *f, const rf_factor_index *ix, const float *vec,
                           const uint8_t *mask, int k, rf_scored *out, int64_t *scanned);

/* The vector a factor model m (with factors f, from rf_factors_get) scores
 * user / history h with, as its score_all chooses: the trained row of user
 * when it is nonzero, else the fold-in of h (m->ops->fold_in). vec receives
 * f->ld floats (zero beyond dim). Returns 1 with a vector, 0 when there is
 * none (unknown user with an empty history, or a zero fold-in: the model
 * then scores by its popularity fallback), < 0 an error of the fold-in. */
int rf_factors_user_vector(const rf_model *m, const rf_factors *f, int32_t user, const rf_hist *h,
                           float *vec, struct rf_err *err);

/* The user vector of history h (model item ids; weights NULL = 1), as the
 * training's user step computes it with the final item factors: an exact
 * solve with the model's confidence and regularisation. Items out of range
 * and entries with weight <= 0 are ignored; an empty history gives the zero
 * vector. vec receives dim floats. Same as ops->fold_in. About 15 us for
 * 100 events at 64 factors (AVX2). Thread-safe. RF_EINVAL (not a fitted
 * iALS model), RF_ENOMEM. */
int rf_ials_fold_in_user(const rf_model *m, const rf_hist *h, float *vec, struct rf_err *err);

/* The item vector of an item (new or known) from the users who interacted
 * with it: users[0..n) in model user ids with weights (NULL = 1), as the
 * training's item step computes it with the final user factors. vec
 * receives dim floats. Errors as rf_ials_fold_in_user. */
int rf_ials_fold_in_item(const rf_model *m, int32_t n, const int32_t *users, const float *weights,
                         float *vec, struct rf_err *err);

/* ---- ALS row solves ---------------------------------------------------- */

/* One row's problem (see the top of this file). Borrowed pointers. */
typedef struct rf_als_row {
    const float *Y;     /* the other side's factors: rows of ld floats, entries >= dim zero */
    int dim, ld;        /* 1 <= dim <= ld, ld a multiple of 8 */
    const float *gram;  /* ld x ld, (weighted) Y^T Y over all rows of Y, both triangles */
    double reg;         /* ridge, > 0 */
    int32_t n;          /* observed entries */
    const int32_t *idx; /* their rows in Y */
    const float *cm1;   /* c_i - w_i: confidence minus the unobserved weight in G */
    const float *conf;  /* c_i (right-hand side); NULL: 1 + cm1[i] (all w_i = 1) */
    float gram_scale;   /* G = gram_scale * gram; 1 in plain iALS */
} rf_als_row;

/* Floats of scratch one solve needs (either solver). */
size_t rf_als_work_floats(int ld);

/* Exact solve into x (ld floats; entries >= dim set to 0). work: at least
 * rf_als_work_floats(ld) floats. Returns 0, or RF_ERANGE when the matrix
 * is not positive definite in float arithmetic (x is then untouched). */
int rf_als_solve_exact(const rf_als_row *p, float *x, float *work);

/* `steps` conjugate-gradient steps (implicit-style: warm-started from x,
 * ld floats in/out, entries >= dim must be 0 and stay 0). Stops early when
 * the residual vanishes. Never fails. */
void rf_als_solve_cg(const rf_als_row *p, int steps, float *x, float *work);

/* gram = sum_i w_i y_i y_i^T (ld x ld, both triangles) over `rows` rows of
 * Y; w NULL means all 1 (Y^T Y). Summed by fixed chunks of rows
 * (cblas_ssyrk each) in double, so the result is the same for every
 * thread count; parallel with rf_threads() (OpenBLAS is held at one
 * thread meanwhile). RF_ENOMEM. */
int rf_als_gram(const float *Y, int32_t rows, int ld, const float *w, float *gram,
                struct rf_err *err);

/* Kernel levels. */
#define RF_ALS_SIMD_AUTO (-1)     /* the best the CPU has (the default) */
#define RF_ALS_SIMD_PORTABLE 0    /* plain C */
#define RF_ALS_SIMD_AVX2 1        /* AVX2 + FMA */
#define RF_ALS_SIMD_AVX512 2      /* AVX2 + FMA, AVX-512F for the CG passes */

/* Kernel path in use: "avx512", "avx2" or "portable". */
const char *rf_als_simd(void);
/* Use the best level the CPU supports, at most `level` (RF_ALS_SIMD_AUTO:
 * no cap). Process-wide, like rf_set_threads; for tests and benchmarks.
 * At start-up the level is automatic unless RECFUSE_SIMD=portable or
 * RECFUSE_SIMD=avx2 caps it. */
void rf_als_set_simd(int level);

#endif
