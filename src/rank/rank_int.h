/* rank_int.h - private pieces of the ranker library (src/rank): the model
 * struct, feature binning, the histogram split finder, LambdaMART
 * gradients and the per-kind fit/predict/save functions ranker.c
 * dispatches to. Tests include it to check the kernels against
 * brute-force references. */
#ifndef RF_RANK_INT_H
#define RF_RANK_INT_H

#include <stdint.h>

#include "recfuse/ranker.h"

struct rf_err;
struct rf_writer;
struct rf_reader;

/* Largest label: NDCG gains are 2^label - 1 (LightGBM's label_gain has
 * 31 entries too). */
#define RK_MAX_LABEL 31

/* ---- model ---------------------------------------------------------------- */

/* One internal node of a regression tree. child[c] >= 0 is an internal
 * node of the same tree (always at a larger index than its parent),
 * child[c] < 0 the leaf ~child[c]. A row goes left when x[feat] <= thr,
 * and a NAN goes left when dleft is set. */
typedef struct rk_node {
    float thr;
    int32_t feat;
    int32_t child[2];
    int32_t dleft;
    float value; /* expected value at the node (lr * Newton step), for Saabas */
} rk_node;

/* Prediction layout of one node (rk_gbdt_pack), 8 bytes: nodes in
 * breadth-first order with the two children of a node next to each
 * other (right = left + 1), so the next index is left + (x > thr) and
 * its load does not wait for the comparison. A leaf is a node that steps
 * to itself (thr = NAN, left = itself; its value in pval), so every row
 * can take the tree's depth in branch-free steps. pval of an internal
 * node is its expected value (rk_node.value), for contributions. feat indexes a row of
 * 2 n_feats values: x with NAN as -INF (features 0..n_feats-1, for nodes
 * that send NAN left) and x with NAN as +INF (n_feats + f, NAN right).
 * Used when 2 n_feats fits in 16 bits (else predict walks rk_node). */
typedef struct rk_pnode {
    float thr;
    uint16_t feat;
    uint16_t left;
} rk_pnode;

struct rf_ranker {
    rf_ranker_kind kind;
    int32_t n_feats;
    rf_ranker_opts opts; /* what it was trained with */
    /* GBDT: tree t has internal nodes nodes[node_off[t] .. node_off[t+1])
     * and leaves leaf[leaf_off[t] .. leaf_off[t+1]), one more leaf than
     * nodes. */
    int n_trees;
    int64_t *node_off, *leaf_off;
    rk_node *nodes;
    double *gain; /* per node: split gain (importance) */
    float *leaf;
    rk_pnode *pn;     /* tree t at pn + 2 * node_off[t] + t: 2 nn + 1 nodes */
    float *pval;      /* leaf values (internal nodes: expected value) in that layout */
    int32_t *depth;   /* per tree: longest root-to-leaf path */
    /* linear: score = sum_j w[j] * (x[j] - mean[j]) * inv_std[j], NAN -> 0 */
    float *w, *mean, *inv_std;
};

/* ---- binning (binning.c) ------------------------------------------------- */

/* Per-feature bins: bin 0 holds NAN; value bin b in 1..nb[f] holds x
 * with upper[f][b-1] < x <= upper[f][b]; upper[f][nb[f]] = +INF. A split
 * "bin <= t" is exactly "x <= upper[f][t]" on raw values. */
typedef struct rk_bins {
    int32_t n_feats;
    int64_t n_rows;
    int *nb;          /* value bins per feature, 1..max_bins */
    float **upper;    /* upper[f][b] for b = 1..nb[f] (index 0 unused) */
    uint8_t *bin;     /* row-major: bin[i * n_feats + f] */
} rk_bins;

/* Quantile bin edges from (a seeded sample of at most 200k) rows of x and
 * the binned matrix of all rows. RF_ENOMEM. */
int rk_bins_build(rk_bins *b, const float *x, int64_t n_rows, int32_t n_feats, int max_bins,
                  uint64_t seed, struct rf_err *err);
void rk_bins_free(rk_bins *b);
/* Bin of value v of feature f (0 for NAN). */
int rk_bin_of(const rk_bins *b, int32_t f, float v);

/* ---- split finding (gbdt.c) ----------------------------------------------- */

typedef struct rk_hist {
    double g, h;
    int64_t n;
} rk_hist;

typedef struct rk_split_cfg {
    double l2, min_hess;
    int64_t min_leaf;
} rk_split_cfg;

typedef struct rk_split {
    double gain; /* <= 0: no valid split */
    int32_t feat;
    int bin;     /* left: value bins 1..bin */
    int dleft;   /* NAN (bin 0) goes left */
    double lg, lh; /* left sums */
    int64_t ln;
} rk_split;

/* Histograms of the features feats[0..nu) over the rows idx[0..cnt) of
 * the row-major bins (nf per row): feature f's histogram is
 * hist[f * hb .. f * hb + nb[f]]. og/oh are the gradients/hessians in the
 * order of idx. Each histogram sums its rows in idx order, whatever the
 * feature list, so the result does not depend on how features are split
 * among threads. */
void rk_hist_build(const uint8_t *bin, int32_t nf, const int32_t *idx, const float *og,
                   const float *oh, int64_t cnt, const int32_t *feats, int32_t nu, const int *nb,
                   rk_hist *hist, int hb);
/* Best split of one feature from its histogram hist[0..nb] (bin 0 = NAN)
 * over a node with totals (g, h, n): the largest Newton gain
 * GL^2/(HL+l2) + GR^2/(HR+l2) - G^2/(H+l2) with both sides holding
 * min_leaf rows and min_hess hessian; gain 0 and feat -1 if none. Ties
 * keep the smaller bin, then NAN-right. When the node has no NAN, NAN
 * follows the larger child. */
rk_split rk_best_split_feature(const rk_hist *hist, int nb, double g, double h, int64_t n,
                               const rk_split_cfg *cfg, int32_t feat);

/* ---- LambdaMART (lambdamart.c) -------------------------------------------- */

enum {
    RK_LAMBDA_NO_WEIGHT = 1, /* every pair weighted 1 (plain RankNet), all pairs */
    RK_LAMBDA_NO_NORM = 2    /* no LightGBM normalisations */
};

/* Scratch for rk_lambda_group, sized for groups of up to `cap` rows. */
typedef struct rk_lambda_ws {
    int64_t cap;
    int32_t *order;
    double *buf; /* 7 * cap */
} rk_lambda_ws;

/* Gradient g and hessian h (of the loss, so a tree leaf is -G/(H+l2)) of
 * the n rows of one group with labels `label` and current scores `score`.
 * Pairs (i, j) with label_i > label_j, weighted by |delta NDCG@k| of
 * swapping them in the current ranking (k <= 0: full list), sigmoid
 * sigma = 1 (the sigmoid from per-row exp(s - s_max), no exp per pair); LightGBM's normalisations (pair weight / (0.01 + |s_i -
 * s_j|), then all scaled by log2(1 + S) / S with S the sum of pair
 * lambdas) unless RK_LAMBDA_NO_NORM. Groups without a positive label or
 * with all labels equal get zeros. idcg: the group's ideal DCG@k if the
 * caller has it, else <= 0. ws must have cap >= n. */
void rk_lambda_group(const float *label, const double *score, int64_t n, int k, int flags,
                     double idcg, rk_lambda_ws *ws, float *g, float *h);
/* |delta NDCG@k| of swapping the rows at positions a and b of a ranking
 * whose labels by position are lab_pos; idcg is the ideal DCG@k. */
double rk_delta_ndcg(const float *lab_pos, int64_t n, int k, int64_t a, int64_t b, double idcg);
/* Ideal DCG@k of n labels (k <= 0: all). */
double rk_ideal_dcg(const float *label, int64_t n, int k, double *scratch);
int rk_ws_init(rk_lambda_ws *ws, int64_t cap);
void rk_ws_free(rk_lambda_ws *ws);
/* Ranking (descending score, ties by lower index) of n scores into
 * order: all of it, or (0 < top < n) only the first `top` positions, the
 * other rows following in row order. */
void rk_rank_order(const double *score, int64_t n, int64_t top, int32_t *order);

/* Test hook: the sizes from which training loops run in parallel
 * (defaults 2^20 rows x features per histogram, 65536 rows; <= 0 restores
 * them). Not thread-safe: call before training. */
void rk_set_par_thresholds(int64_t hist_work, int64_t rows);

/* ---- per-kind entry points ------------------------------------------------ */

int rk_gbdt_fit(const rf_ranker_opts *o, const rf_rank_data *train, const rf_rank_data *valid,
                rf_ranker *r, struct rf_err *err);
/* Score of row x in one tree (stored nodes; NAN to the learned side). */
float rk_tree_eval(const rk_node *nd, int64_t n_nodes, const float *lv, const float *x);
/* Build r->pn from the trees (after fit or load); RF_ENOMEM. */
int rk_gbdt_pack(rf_ranker *r, struct rf_err *err);
void rk_gbdt_predict(const rf_ranker *r, const float *x, int64_t n, float *out);
void rk_gbdt_contrib(const rf_ranker *r, const float *x, float *contrib, float *bias);
int rk_gbdt_save(const rf_ranker *r, struct rf_writer *w);
int rk_gbdt_load(struct rf_reader *rd, rf_ranker *r, struct rf_err *err);

int rk_linear_fit(const rf_ranker_opts *o, const rf_rank_data *train, const rf_rank_data *valid,
                  rf_ranker *r, struct rf_err *err);
void rk_linear_predict(const rf_ranker *r, const float *x, int64_t n, float *out);
void rk_linear_contrib(const rf_ranker *r, const float *x, float *contrib, float *bias);
int rk_linear_save(const rf_ranker *r, struct rf_writer *w);
int rk_linear_load(struct rf_reader *rd, rf_ranker *r, struct rf_err *err);

/* NDCG@k of one group (k <= 0: full), -1 when it has no positive label;
 * order is scratch of n entries, scratch of n doubles. */
double rk_group_ndcg(const float *label, const double *score, int64_t n, int k, int32_t *order,
                     double *scratch);

/* ---- synthetic data for tests and benchmarks (synth.c) ------------------- */

/* n_groups groups of `rows` rows and n_feats >= 4 standard normal
 * features; 2% of feature 3 is NAN. The relevance (0..3) is a noisy
 * nonlinear function of features 0-2: latent = 0.7 x0 + 1.5 [x1 > 0.3
 * and x2 > -0.2] - 0.5 x1^2 + N(0, 0.5^2), cut at fixed thresholds so
 * about a quarter of the rows are relevant. Owns its arrays. */
typedef struct rk_synth {
    rf_rank_data d;
    float *x, *label;
    int64_t *group;
} rk_synth;
int rk_synth_make(rk_synth *s, int64_t n_groups, int rows, int32_t n_feats, uint64_t seed);
void rk_synth_free(rk_synth *s);

#endif
