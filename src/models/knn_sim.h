/* knn_sim.h - sparse top-N similarity over the rows of a CSR matrix,
 * shared by itemknn (rows = items, columns = users) and userknn (rows =
 * users, columns = items). Private to src/models.
 *
 * The rows of X (n_rows x n_cols) are compared through the transpose XT
 * (the column -> row index). Each kind defines per-entry weights a(i, c)
 * of X's entries (the row side), b(c, j) of XT's entries (the neighbour
 * side), per-row factors l[i] / r[j] and
 *     dot(i, j) = sum over shared columns c of a(i, c) * b(c, j)
 *     sim(i, j) = dot / (l[i] * r[j] + shrink)            (all but jaccard)
 *     sim(i, j) = dot / (l[i] + r[j] - dot + shrink)      (jaccard)
 * with x the stored value (folded interaction weight), n_rows = N:
 *   cosine   a = b = x;  l = r = |x_i| (L2 norm of the row)
 *   jaccard  a = b = x;  l = r = |x_i|^2 (binary data: |A n B| / |A u B|)
 *   asym     a = b = x;  l[i] = |x_i|^(2 alpha), r[j] = |x_j|^(2 (1 - alpha))
 *            (asymmetric cosine; alpha = 0.5 is cosine)
 *   bm25     a = b = x (K1 + 1) / (K1 (1 - B + B len_i / avglen) + x) * idf_c,
 *            idf_c = ln N - ln(1 + rows with c), len_i = sum of row i,
 *            avglen over all rows; l = r = 1 (implicit's bm25_weight and
 *            BM25Recommender: a plain dot product of the weighted rows)
 *   tfidf    a = b = sqrt(x) idf_c;  l = r = L2 norm of the weighted row
 *            (implicit's TFIDFRecommender: cosine of tfidf_weight rows)
 *   rp3b     a(i, c) = (x / len_i)^p3_alpha, b(c, j) = (x / len_c)^p3_alpha
 *            (len_c the sum of column c), l = 1, r[j] = cnt_j^p3_beta with
 *            cnt_j the entries of row j (RP3beta: a 3-step random walk
 *            penalised by the neighbour's popularity).
 * Row i keeps its k neighbours j != i with the largest sim > 0 (ties by
 * the smaller id). Then, optionally, each kept sim becomes sim^q (the
 * locality exponent) and the row is normalised (l1: sum 1; max: max 1).
 *
 * DESIGN: never a dense rows x rows matrix. A row's dot products are
 * accumulated through its columns into a dense float accumulator over rows
 * (one per thread), either branch-free followed by a scan of the whole
 * accumulator (rows that touch a sizeable part of the rows) or with a
 * touched list and stamp array (the rest); both add the same terms in the
 * same order. When every b in a row of XT is the same (binary data for
 * every kind) the inner loop adds one constant per column and reads no
 * values. Rows run in blocks, in parallel within a block (OpenMP, dynamic
 * schedule); each row's result depends only on the data, so the table is
 * bit-identical for every thread count. A query row (a new user's
 * history) runs through the very same row function, so a training row
 * queried again gives exactly its fitted neighbours. */
#ifndef RF_MODELS_KNN_SIM_H
#define RF_MODELS_KNN_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "recfuse/csr.h"
#include "recfuse/sparse.h"
#include "recfuse/topk.h"

struct rf_err;
struct rf_sparse;

enum { RF_SIM_COSINE = 0, RF_SIM_JACCARD, RF_SIM_ASYM, RF_SIM_BM25, RF_SIM_TFIDF, RF_SIM_RP3B };
#define RF_SIM_CHOICES "cosine,jaccard,asym,bm25,tfidf,rp3b"

enum { RF_SIM_NORM_NONE = 0, RF_SIM_NORM_L1, RF_SIM_NORM_MAX };
#define RF_SIM_NORM_CHOICES "none,l1,max"

/* The similarity options (every field is a model parameter). */
typedef struct rf_sim_opts {
    int kind;         /* RF_SIM_* */
    int k;            /* neighbours kept per row, >= 1 */
    double shrink;    /* >= 0, added to the denominator */
    double alpha;     /* asym, in [0, 1] */
    double k1, b;     /* bm25: K1 > 0, B in [0, 1] */
    double p3_alpha;  /* rp3b: exponent of the transition probabilities, > 0 */
    double p3_beta;   /* rp3b: popularity penalty exponent, >= 0 */
    double q;         /* locality exponent applied to kept sims, > 0 */
    int norm;         /* RF_SIM_NORM_* */
} rf_sim_opts;

/* NULL if the options are consistent, else a static message. */
const char *rf_sim_opts_check(const rf_sim_opts *o);
/* Name of a kind ("cosine", ...), "?" if unknown. */
const char *rf_sim_kind_name(int kind);

/* Prepared weights for comparing the rows of x. Borrows x and xt (which
 * must outlive it and stay unchanged); owns the rest. Immutable after
 * rf_sim_init, so rf_sim_query may run from many threads at once. */
typedef struct rf_sim {
    rf_sim_opts o;
    const rf_csr *x, *xt;
    const float *a;  /* per x entry: a(i, c) (x->data when unweighted) */
    const float *bv; /* per xt entry: b(c, j), or NULL when brow is used */
    float *brow;     /* per xt row: the row's constant b, or NULL */
    double *l, *r;   /* per x row */
    double *colw;    /* per column: idf (bm25, tfidf), 1 / len_c (rp3b); or NULL */
    double avglen;   /* bm25 */
    float *a_own, *bv_own;
} rf_sim;

/* Prepare s for the rows of x (xt its transpose). RF_EINVAL for bad
 * options or shapes, RF_ENOMEM. On error s holds nothing to free. */
int rf_sim_init(rf_sim *s, const rf_csr *x, const rf_csr *xt, const rf_sim_opts *o,
                struct rf_err *err);
/* Free what s owns; a zeroed or freed s is a no-op. */
void rf_sim_free(rf_sim *s);

/* The neighbour table of every row: an n_rows x n_rows CSR, each row's
 * neighbours in ascending id order with their (post-processed) sims.
 * Parallel with rf_threads(); shows a progress bar with `label`. */
int rf_sim_all(const rf_sim *s, const char *label, rf_csr **out, struct rf_err *err);

/* The neighbours among x's rows of a query row given by its columns
 * (ascending, distinct, in [0, n_cols)) and stored values: weighted,
 * selected and post-processed exactly like a row of rf_sim_all, so a row
 * of x queried with its own entries and exclude = its id gives exactly
 * its fitted neighbours. Row `exclude` (-1: none) is never a neighbour.
 * out has o.k entries; written in ascending id order; returns the count
 * or RF_ENOMEM (scratch of n_rows * 12 bytes is allocated per call).
 * Thread-safe. */
int rf_sim_query(const rf_sim *s, const int32_t *cols, const float *vals, int32_t n,
                 int32_t exclude, rf_scored *out);

/* Ask the memory system for row r of c (its indices and values) ahead of
 * use: on a large model the rows a request reads are cold, and fetching
 * several at once overlaps their misses. A hint; no effect on results. */
static inline void rf_csr_prefetch_row(const rf_csr *c, int32_t r) {
    const char *a = (const char *)(c->indices + c->indptr[r]);
    const char *b = (const char *)(c->data + c->indptr[r]);
    size_t bytes = (size_t)(c->indptr[r + 1] - c->indptr[r]) * 4;
    for (size_t o = 0; o < bytes; o += 64) {
        __builtin_prefetch(a + o);
        __builtin_prefetch(b + o);
    }
}

/* Add w times row r of c into out (dense, indexed by column) or, when acc
 * is not NULL, into acc (marking the columns reached): the kNN models'
 * scoring step, the same terms in the same order either way. The slot a
 * few entries ahead is prefetched (the accumulator is cold on a large
 * catalog). */
static inline void rf_knn_add_row(const rf_csr *c, int32_t r, float w, float *out,
                                  struct rf_sparse *acc) {
    const int64_t end = c->indptr[r + 1];
    for (int64_t q = c->indptr[r]; q < end; q++) {
        if (q + 16 < end)
            __builtin_prefetch(acc ? &acc->val[c->indices[q + 16]] : &out[c->indices[q + 16]], 1);
        float v = w * c->data[q];
        if (acc) *rf_sparse_at(acc, c->indices[q]) += v;
        else out[c->indices[q]] += v;
    }
}

/* The kNN models' fallback (itemknn, userknn): an item the user's history
 * does not reach - its summed score is exactly 0 - scores
 * pop[j] * pop_inv - 1, in [-1, 0) when pop_inv = 1 / (max pop + 1):
 * below every reached item, in popularity order. rf_knn_fallback_dense
 * applies it to a dense score vector of n items, rf_knn_fallback_sparse
 * to the touched items of a sparse accumulator (the others take it
 * implicitly: model.h's score_sparse contract). */
void rf_knn_fallback_dense(const float *pop, float pop_inv, float *out, int32_t n);
void rf_knn_fallback_sparse(const float *pop, float pop_inv, struct rf_sparse *acc);

#endif
