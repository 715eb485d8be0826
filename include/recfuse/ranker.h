/* ranker.h - learning to rank for the fusion model: gradient-boosted
 * regression trees with the LambdaMART objective (histogram-based,
 * parallel over features/rows with OpenMP) and a linear pairwise ranker
 * as the light alternative.
 *
 * Data are queries ("groups": one user's candidate list) of rows (one
 * candidate), each row a dense float feature vector and a graded
 * relevance label (0 = not relevant). Missing features are NAN; trees
 * send NAN to the side chosen at training time (the one with the larger
 * gain). LambdaMART optimises NDCG truncated at opts.ndcg_at: the lambda
 * of a pair (i, j) with label_i > label_j is weighted by |delta NDCG| of
 * swapping them in the current ranking (Burges 2010). Groups without any
 * positive label, or with all labels equal, contribute nothing.
 *
 * Everything is deterministic for a fixed seed and any thread count.
 * Training reports progress through recfuse/progress.h (silent unless a
 * TTY). */
#ifndef RECFUSE_RANKER_H
#define RECFUSE_RANKER_H

#include <stdint.h>

struct rf_err;
struct rf_writer;
struct rf_reader;

typedef struct rf_rank_data {
    int64_t n_rows;
    int32_t n_feats;
    const float *x;       /* n_rows x n_feats, row-major; NAN = missing */
    const float *label;   /* n_rows graded relevances in [0, 31] (gain
                             2^label - 1), not necessarily integers */
    int64_t n_groups;
    const int64_t *group; /* n_groups + 1 offsets: rows of group q are
                             [group[q], group[q+1]); group[0] = 0,
                             group[n_groups] = n_rows, non-decreasing */
} rf_rank_data;

typedef enum rf_ranker_kind { RF_RANKER_GBDT = 0, RF_RANKER_LINEAR = 1 } rf_ranker_kind;

typedef struct rf_ranker_opts {
    rf_ranker_kind kind;
    /* GBDT / LambdaMART */
    int n_trees;             /* boosting rounds (upper bound with early stopping) */
    int max_leaves;          /* leaves per tree, grown best-first */
    int min_leaf;            /* fewest rows in a leaf */
    double min_hess;         /* smallest hessian sum in a leaf */
    double learning_rate;    /* shrinkage */
    double l2;               /* L2 on leaf values */
    int max_bins;            /* histogram bins per feature, 2..255 */
    double feature_fraction; /* share of features tried per tree, (0, 1] */
    double row_fraction;     /* share of groups sampled per tree, (0, 1] */
    int ndcg_at;             /* truncation of the lambda weights; 0 = none */
    int early_stop;          /* stop after this many rounds (linear: epochs)
                                without a better validation NDCG@ndcg_at
                                (needs valid data); 0 = off. The model keeps
                                the best round (epoch). */
    /* linear (pairwise logistic loss on sampled pairs, SGD) */
    int epochs;
    double lin_lr, lin_l2;
    uint64_t seed;
    /* added after the first version (fields above unchanged): */
    int max_depth;           /* GBDT: deepest leaf, 0 = unlimited. Prediction
                                costs about this many steps per tree (the
                                deepest path of each tree), so it bounds
                                serving time (docs/ranker.md) */
} rf_ranker_opts;

/* Defaults: GBDT, 300 trees, 31 leaves, min_leaf 20, min_hess 1e-3,
 * learning rate 0.05, l2 1, 64 bins, feature and row fraction 1,
 * ndcg_at 10, early_stop 30, max_depth 6; linear: 20 epochs, lr 0.05,
 * l2 1e-4; seed 1. */
void rf_ranker_opts_default(rf_ranker_opts *o);
/* NULL if fine, else a static message naming the bad option. */
const char *rf_ranker_opts_check(const rf_ranker_opts *o);
/* Apply "kind=gbdt,trees=300,leaves=31,min_leaf=20,lr=0.05,l2=1,bins=64,
 * ff=1,rf=1,ndcg_at=10,early_stop=30,epochs=20,lin_lr=0.05,lin_l2=1e-4,
 * seed=1,max_depth=6" (any subset, comma or space separated); RF_EINVAL naming the
 * entry on an unknown key or bad value; o is unchanged on error. */
int rf_ranker_opts_parse(rf_ranker_opts *o, const char *kvs, struct rf_err *err);

typedef struct rf_ranker rf_ranker;

/* Train on `train`; `valid` (may be NULL) is used for early stopping
 * only (both kinds). Both are borrowed for the call; the model owns all
 * its memory. RF_EINVAL for inconsistent data (sizes, offsets, a label
 * NAN or outside [0, 31]: the message names the row and group; a valid
 * set with another feature count) or options; RF_ETOOBIG for
 * histograms that cannot fit (leaves x features x bins); RF_ENOMEM. *out
 * is NULL on error. */
int rf_ranker_fit(const rf_ranker_opts *o, const rf_rank_data *train, const rf_rank_data *valid,
                  rf_ranker **out, struct rf_err *err);
void rf_ranker_free(rf_ranker *r); /* NULL is a no-op */

int32_t rf_ranker_n_feats(const rf_ranker *r);
rf_ranker_kind rf_ranker_get_kind(const rf_ranker *r);
/* Trees actually kept (best round with early stopping); 0 for linear. */
int rf_ranker_n_trees(const rf_ranker *r);

/* Scores of n rows (row-major, n x n_feats). Thread-safe, allocates
 * nothing (uses ~33 KiB of stack), single-threaded (serve requests in
 * parallel instead); rows are scored in blocks of up to 64, so a
 * 500-candidate request is best one call. */
void rf_ranker_predict(const rf_ranker *r, const float *x, int64_t n, float *out);
/* Additive attribution of one row's score: score = *bias + sum(contrib)
 * (up to float rounding), contrib has n_feats entries. Trees: each
 * split's change of the node's expected value (the Newton leaf value of
 * the node's training rows) is credited to its feature along the row's
 * path (Saabas); bias = the trees' root values. Linear: w_j * z_j with z_j
 * the standardised feature ((x_j - mean_j) / std_j, 0 for NAN), bias 0.
 * Used for explanations. */
void rf_ranker_contrib(const rf_ranker *r, const float *x, float *contrib, float *bias);
/* Total split gain per feature into gain[n_feats] (trees); for the
 * linear ranker |w_j| of the standardised feature. */
void rf_ranker_importance(const rf_ranker *r, double *gain);

/* Serialise into / read from an open binfile stream (binfile.h), so the
 * fusion model can embed the ranker in its model file. Load validates
 * every size, feature index and child index (RF_EFORMAT). */
int rf_ranker_save(const rf_ranker *r, struct rf_writer *w, struct rf_err *err);
int rf_ranker_load(struct rf_reader *rd, rf_ranker **out, struct rf_err *err);

/* Mean NDCG@k (k <= 0: full list) of `scores` over the groups of d that
 * have a positive label (0 if none has); ties broken by the row order.
 * Gains 2^label - 1, discount log2(rank + 1). NAN if out of memory. */
double rf_rank_ndcg(const rf_rank_data *d, const float *scores, int k);

#endif
