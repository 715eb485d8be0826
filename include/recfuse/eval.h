/* eval.h - offline evaluation of ranking models.
 *
 * Full ranking: for each test user every item is scored, the user's train
 * items are excluded, and the top max(K) list is compared with the user's
 * test items (all relevant, binary gain). Metrics are computed per user
 * and averaged over users with at least one test item (rank r is 1-based,
 * hits counted within the first K, L = min(K, length of the list)):
 *   P@K      = hits / K (also when fewer than K items could be ranked)
 *   R@K      = hits / |rel|
 *   NDCG@K   = sum over hits of 1/log2(r+1), divided by the ideal DCG
 *              sum_{i=1..min(K,|rel|)} 1/log2(i+1)
 *   MAP@K    = sum over hits of (hits within the first r)/r, / min(K, |rel|)
 *   HR@K     = 1 if any hit, else 0
 *   MRR@K    = 1/r of the first hit, 0 without a hit
 *   AUC      = fraction of (relevant, non-relevant) item pairs the model
 *              orders correctly, over the whole ranking (not cut at K): the
 *              non-relevant items are those the list could hold (not in
 *              the user's train, scored above -inf); ties count 1/2; a
 *              relevant item the model cannot rank is below every one
 *   Nov@K    = mean over the list of -log2(pop_i / n_users): self-
 *              information, pop_i = train users of item i (at least 1),
 *              n_users = users with train interactions
 *   ARP@K    = mean over the list of pop_i (average recommended
 *              popularity; lower = less popularity bias)
 *   ILD@K    = share of the list's item pairs in different categories
 *   ILDemb@K = mean cosine distance 1 - cos(v_i, v_j) over the list's item
 *              pairs, v = the model's item vectors (model.h item_vectors)
 *   Rev@K    = sum of the prices of the relevant items in the list
 *              (expected revenue of the list; unknown prices count 0)
 *   RMSE, MAE = rating prediction errors over the test (user, item,
 *              rating) pairs, through rf_model_score_items (pair-level,
 *              not averaged per user)
 *   Cov@K    = distinct items in all users' top-K lists / items with at
 *              least one train interaction (catalog-level, not averaged)
 *   Gini@K   = Gini index of the items' exposure (number of top-K lists
 *              holding the item) over the items with train interactions
 *              plus any other recommended item (0 = equal exposure, near
 *              1 = all on one item; catalog-level)
 * Lists of fewer than 2 items have ILD 0; an empty list has Nov/ARP 0.
 * This is Protocol A of docs/evaluation.md and the benchmark reference.
 *
 * Sampled negatives (rf_eval_opts.sampled_negatives = N > 0, not the
 * default): every test item is ranked against N items drawn uniformly
 * from those the user never interacted with (train or test), seeded per
 * user so every model sees the same draws. Per test item, rank r among the
 * 1 + N (ties: the smaller item id first): HR@K = R@K = [r <= K],
 * P@K = HR/K, NDCG@K = [r <= K]/log2(r+1), MAP@K = MRR@K = [r <= K]/r,
 * AUC = share of the N negatives ranked below; a user's values are the
 * mean over the user's test items. Beyond-accuracy metrics (Cov, Gini,
 * Nov, ARP, ILD, ILDemb, Rev) still come from the full-ranking lists. */
#ifndef RECFUSE_EVAL_H
#define RECFUSE_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "csr.h"
#include "dataset.h"
#include "model.h"

struct rf_err;

#define RF_EVAL_MAX_K 8         /* cut-offs per evaluation */
#define RF_EVAL_MAX_KVAL 100000 /* largest K accepted */

typedef enum rf_metric {
    RF_M_PRECISION = 0,
    RF_M_RECALL,
    RF_M_NDCG,
    RF_M_MAP,
    RF_M_HITRATE,
    RF_M_MRR,
    RF_M_AUC,
    RF_M_NOVELTY,
    RF_M_ARP,
    RF_M_ILD,
    RF_M_ILD_EMB,
    RF_M_REVENUE,
    RF_M_RMSE,
    RF_M_MAE,
    RF_M_COVERAGE, /* catalog-level metrics last: per-user ones are 0..COVERAGE-1 */
    RF_M_GINI,
    RF_M_COUNT
} rf_metric;
#define RF_M_PER_USER RF_M_COVERAGE /* number of per-user metrics */
#define RF_M_N_LIST 6               /* metrics rf_eval_list computes: 0..MRR */

/* "P", "R", "NDCG", "MAP", "HR", "MRR", "AUC", "Nov", "ARP", "ILD", "ILDemb",
 * "Rev", "RMSE", "MAE", "Cov", "Gini"; NULL outside [0, RF_M_COUNT). */
const char *rf_metric_name(int m);
/* Index of a metric name (case-insensitive, also "precision", "recall",
 * "hitrate", "coverage", "novelty", "popbias", "diversity", "revenue"),
 * -1 if unknown. */
int rf_metric_parse(const char *name);
/* 1 if the metric is cut at K (labelled "NDCG@10"), 0 for AUC, RMSE, MAE. */
int rf_metric_at_k(int m);
/* 1 if larger is better; 0 for ARP, RMSE, MAE, Gini. */
int rf_metric_higher_better(int m);
/* "NDCG@10" / "AUC" into buf. */
void rf_metric_label(int m, int k, char *buf, size_t size);
/* Parse "ndcg@10" / "auc" into metric and K (K = 0 when not at K).
 * -1 if malformed or unknown. */
int rf_metric_label_parse(const char *s, int *metric, int *k);

typedef struct rf_eval_result {
    char model[32]; /* display name (ops->name unless the caller renames) */
    int n_ks;
    int ks[RF_EVAL_MAX_K];
    double value[RF_EVAL_MAX_K][RF_M_COUNT]; /* value[ki][metric]; AUC, RMSE,
                                                MAE repeat at every ki */
    uint8_t has[RF_M_COUNT];                 /* 1: the metric was computed */
    int32_t n_users;                         /* users evaluated: >= 1 test item */
    int32_t n_cold_users;                    /* of those, users with no train history */
    int64_t n_rel;                           /* test (user, item) pairs over evaluated users */
    int64_t n_unreachable;                   /* of those, items the model cannot rank (unknown
                                                to the model or already in the user's train) */
    int32_t n_cov_items;                     /* coverage denominator: items with train data */
    int64_t n_rating_pairs;                  /* pairs in RMSE/MAE (predicted, finite) */
    int32_t sampled_negatives;               /* 0: full ranking */
    int32_t n_folds;                         /* > 1: merged from folds (rf_eval_result_merge) */
    /* Per-user values for significance tests, owned (NULL until filled):
     * per_user[(u * n_ks + ki) * RF_M_PER_USER + metric] for row u of
     * users[] (dataset user ids, ascending; after a merge, fold by fold).
     * Rows are the same for every model evaluated on the same train/test
     * pair, so they pair up. AUC repeats at every ki; for RMSE and MAE a
     * row holds the user's mean squared / absolute error (0 for a user
     * with no rating pair). Metrics not computed are 0. */
    double *per_user;
    int32_t *users;
    /* Exposure, owned (NULL unless kept): exposure[ki * n_exp_items + i] =
     * number of top-K lists holding dataset item i. */
    int32_t *exposure;
    int32_t n_exp_items;
    double seconds;     /* evaluation wall time */
    double fit_seconds; /* copied from the model */
} rf_eval_result;

/* Frees per_user, users and exposure and sets them to NULL; NULL is a no-op. */
void rf_eval_result_free(rf_eval_result *r);

/* Metrics of one ranked list: ranked[0..n) best first, distinct ids;
 * only the first min(n, k) entries count. rel[0..n_rel) are the relevant
 * ids sorted ascending, n_rel > 0 (ids the list can never contain - unknown
 * items - still count in |rel|). Writes RF_M_PER_USER values into out,
 * indexed by rf_metric: the first RF_M_N_LIST (P..MRR), 0 for the others.
 * k > 0. Pure, thread-safe. */
void rf_eval_list(const int32_t *ranked, int n, const int32_t *rel, int n_rel, int k, double *out);

/* Full-ranking AUC of one user (definition above). scores[0..n) with
 * -INFINITY (or NaN) for items the list cannot hold; rel[0..n_rel) are the
 * relevant item ids in [0, n) (others, and those scored -inf, rank last);
 * n_rel_total >= n_rel counts every relevant item, also unknown ones.
 * scratch holds n_rel floats, iscratch 4 * n_rel + 1 ints. 0.5 when there
 * is no non-relevant candidate; 0 when n_rel_total is 0. O(n) for up to 64
 * relevant items (vectorised), O(n + n_rel log n_rel) beyond;
 * allocation-free, thread-safe. */
double rf_eval_auc(const float *scores, int32_t n, const int32_t *rel, int n_rel, int n_rel_total,
                   float *scratch, int32_t *iscratch);
/* Beyond-accuracy metrics of the first L = min(n, k) entries of a list
 * (pure, allocation-free except where a scratch is taken):
 * novelty: mean of -log2(max(pop[i], 1) / n_users); ARP: mean of pop[i]
 * (ids outside [0, n_pop) count as pop 0). */
double rf_eval_novelty(const int32_t *ranked, int n, int k, const float *pop, int32_t n_pop,
                       double n_users);
double rf_eval_arp(const int32_t *ranked, int n, int k, const float *pop, int32_t n_pop);
/* Share of pairs with different categories; cat[i] is a category id (any
 * int, -1 for unknown counts as one more category; ids outside
 * [0, n_cat) count as -1). scratch holds k ints. */
double rf_eval_ild_category(const int32_t *ranked, int n, int k, const int32_t *cat, int32_t n_cat,
                            int32_t *scratch);
/* Mean 1 - cos over pairs; unit[i * dim ..] are L2-normalised item vectors
 * (zero vectors allowed: cos 0 with everything). scratch holds dim doubles. */
double rf_eval_ild_vectors(const int32_t *ranked, int n, int k, const float *unit, int dim,
                           double *scratch);
/* Sum of price[i] over list items in rel (sorted ascending); NaN or ids
 * outside [0, n_price) count 0. */
double rf_eval_revenue(const int32_t *ranked, int n, int k, const int32_t *rel, int n_rel,
                       const double *price, int32_t n_price);
/* Gini index of counts[0..n) (any order; scratch holds n ints): 0 when
 * n < 2 or all are zero. */
double rf_eval_gini(const int32_t *counts, int32_t n, int32_t *scratch);

/* Options of rf_evaluate_ex. Everything optional: rf_eval_opts_default
 * gives full ranking with AUC, a progress bar, and the exposure kept. */
typedef struct rf_eval_opts {
    int auc;                   /* 1: compute AUC (one more pass over each score vector) */
    int32_t sampled_negatives; /* 0: full ranking; N > 0: the 1 + N protocol */
    uint64_t seed;             /* negatives' draws (per user: rf_rng_stream(seed, user)) */
    /* Item side information in dataset item ids, each n_side_items long
     * (items beyond count as unknown): category ids (>= 0, -1 unknown) for
     * ILD, prices (NAN unknown) for Rev. NULL: metric not computed. */
    const int32_t *item_category;
    const double *item_price;
    int32_t n_side_items;
    /* True ratings, users x items in dataset ids (values = ratings), for
     * RMSE and MAE; NULL: not computed. */
    const rf_csr *ratings;
    /* Evaluate only these users (dataset ids, ascending, distinct), among
     * those with test items; NULL: all users with test items. */
    const int32_t *users;
    int32_t n_users;
    int progress;      /* 1: progress bar on a terminal */
    int keep_exposure; /* 1: keep res->exposure */
} rf_eval_opts;
void rf_eval_opts_default(rf_eval_opts *o);

/* Evaluate m against `test`.
 *
 * `train` is the dataset the user's history (and the excluded items) come
 * from; `test` is a users x items relevance matrix with the same dense ids
 * (any value counts as relevant; rows/columns beyond train's dimensions
 * are users/items unknown to train: such users are scored with an empty
 * history, such items count in |rel| but can never be hit). Users whose
 * test row is empty are skipped. The model's id maps may differ from the
 * dataset's (a model trained on an older store): ids are then translated
 * through the string maps, and items unknown to the model cannot be hit.
 * m->users/m->items NULL means the model uses the dataset's ids.
 *
 * Scoring goes through ops->score_batch for blocks of users when the model
 * has it (one matrix product per block), else through score_all per user.
 * OpenBLAS is set to one thread for the call's duration (the loop itself
 * is parallel) and restored afterwards, so do not call this concurrently
 * with other OpenBLAS work that relies on its thread count.
 *
 * ks[0..n_ks) are the cut-offs (1..RF_EVAL_MAX_KVAL, 1 <= n_ks <=
 * RF_EVAL_MAX_K, any order; kept as given in res->ks). res is overwritten
 * (free a previous result first) and owns per_user/users/exposure on
 * success; on failure it holds nothing to free. Parallel over users with
 * rf_threads() threads and per-thread scratch allocated once; the values
 * do not depend on the thread count. opts NULL means the defaults.
 * RF_EINVAL for bad arguments, RF_ENOMEM, or a model's scoring error. */
int rf_evaluate_ex(const rf_model *m, const rf_dataset *train, const rf_csr *test, const int *ks,
                   int n_ks, const rf_eval_opts *opts, rf_eval_result *res, struct rf_err *err);
/* rf_evaluate_ex with the default options. */
int rf_evaluate(const rf_model *m, const rf_dataset *train, const rf_csr *test, const int *ks,
                int n_ks, rf_eval_result *res, struct rf_err *err);

/* Combine the results of one model on k folds (same ks): values are the
 * means over the parts (RMSE/MAE too: the mean of the folds' values, as
 * k-fold reports do), counts are sums, per-user rows are concatenated in
 * part order, exposure is dropped. out is overwritten. */
int rf_eval_result_merge(const rf_eval_result *parts, int n, rf_eval_result *out,
                         struct rf_err *err);

/* Relevance matrix of an event log: n_users x n_items (each at least the
 * map sizes of ev, so ids added after a split still fit), 1 for every
 * (user, item) pair with an event. */
int rf_eval_relevance(const rf_events *ev, int32_t n_users, int32_t n_items, rf_csr **out,
                      struct rf_err *err);
/* Ratings matrix of an event log for RMSE/MAE: the rating events only
 * (type RF_EV_RATING), value = the rating, the latest one when a pair was
 * rated twice; dimensions as rf_eval_relevance. nnz is 0 when the log has
 * no rating. */
int rf_eval_ratings(const rf_events *ev, int32_t n_users, int32_t n_items, rf_csr **out,
                    struct rf_err *err);

/* ---- protocols --------------------------------------------------------- */

typedef enum rf_protocol_kind {
    RF_PROTO_USER = 0, /* per-user chronological ratio split (Protocol A) */
    RF_PROTO_TIME,     /* global time cut-off */
    RF_PROTO_LOO,      /* leave the last item out */
    RF_PROTO_KFOLD     /* user-stratified random k-fold over pairs */
} rf_protocol_kind;

typedef struct rf_protocol {
    rf_protocol_kind kind;
    double test_ratio; /* user: share of each user's items; time: share of events after
                          the default cut-off (0.2) */
    int min_items;     /* user, loo: users with fewer items stay in train (5) */
    int64_t cutoff;    /* time: the cut-off (Unix s) when has_cutoff */
    int has_cutoff;
    int folds, fold;   /* kfold: k (5) and the test fold (0) */
    uint64_t seed;     /* kfold shuffles (1) */
} rf_protocol;
void rf_protocol_default(rf_protocol *p);
/* "user", "time", "loo", "kfold" -> kind; -1 if unknown. */
int rf_protocol_parse(const char *name);
const char *rf_protocol_name(rf_protocol_kind k);

/* Cut ev into train and test by p (dataset.h splits; both logs borrow
 * ev's id maps). detail (may be NULL) receives a one-line description,
 * e.g. "test_ratio=0.2 min_items=5". A time split without a cut-off cuts
 * at the (1 - test_ratio) quantile of event times. */
int rf_protocol_split(const rf_events *ev, const rf_protocol *p, rf_split *out, char *detail,
                      size_t dsize, struct rf_err *err);
/* The validation split of a train log: the same rule applied to `train`
 * (per-user ratio, leave-last-out, the quantile cut of the train times -
 * never an explicit cut-off, which lies after all train events - or fold
 * 0 of a k-fold with seed + 1). Everything it returns lies inside
 * `train`, so tuning on it never sees the test part. */
int rf_protocol_validation(const rf_events *train, const rf_protocol *p, rf_split *out,
                           char *detail, size_t dsize, struct rf_err *err);

/* ---- significance ------------------------------------------------------ */

/* Regularised incomplete beta I_x(a, b) (a, b > 0, 0 <= x <= 1): continued
 * fraction (modified Lentz) with log-gamma prefactor; NaN outside. */
double rf_betainc(double a, double b, double x);
/* Student t distribution function P(T <= t) with df > 0 degrees of
 * freedom: 1 - I_{df/(df+t^2)}(df/2, 1/2) / 2 for t >= 0. */
double rf_student_t_cdf(double t, double df);
/* Two-sided paired t-test of x[i] - y[i], i < n (n >= 2): t statistic and
 * p-value. Zero variance: p = 1 if the mean difference is 0, else 0.
 * RF_EINVAL if n < 2. */
int rf_ttest_paired(const double *x, const double *y, int64_t n, double *t, double *p);
/* Two-sided paired bootstrap p-value of mean(x - y) = 0: `resamples`
 * resamples of the n users with replacement (resample b drawn from
 * rf_rng_stream(seed, b)), p = (1 + #{b: |mean_b - mean| >= |mean|}) /
 * (resamples + 1). 1 when the mean difference is 0. Deterministic for a
 * seed, for any thread count. */
double rf_bootstrap_paired(const double *x, const double *y, int64_t n, int resamples,
                           uint64_t seed);

typedef enum rf_signif_test { RF_SIG_T = 0, RF_SIG_BOOTSTRAP = 1 } rf_signif_test;

typedef struct rf_signif_opts {
    rf_signif_test marks; /* which p-value sets the marks */
    int resamples;        /* bootstrap resamples (1000) */
    uint64_t seed;        /* bootstrap seed (1) */
} rf_signif_opts;
void rf_signif_opts_default(rf_signif_opts *o);

/* One model in one row (metric, K). */
typedef struct rf_signif_cell {
    double p_t, p_boot; /* NaN for the row's best model */
    double diff;        /* mean of best - this (per user) */
    int mark;           /* 0, 1 (*, p < 0.05), 2 (**, p < 0.01); -1 for the best */
} rf_signif_cell;

/* Each per-user metric row compared with the row's best model (by
 * rf_metric_higher_better; ties: the first model). */
typedef struct rf_signif {
    int n_models, n_ks;
    int64_t n_pairs;        /* users paired */
    rf_signif_opts opts;
    int *best;              /* [ki * RF_M_PER_USER + metric]: best model, -1 if not compared */
    rf_signif_cell *cells;  /* [(ki * RF_M_PER_USER + metric) * n_models + model] */
} rf_signif;

/* Compare n >= 2 results of the same evaluation (same users rows and ks):
 * every per-user metric computed for all of them, at every K. RF_EINVAL
 * if the rows do not pair up. Parallel bootstrap, deterministic. */
int rf_eval_compare(const rf_eval_result *res, int n, const rf_signif_opts *o, rf_signif *out,
                    struct rf_err *err);
void rf_signif_free(rf_signif *s); /* NULL ok */
/* The cell of model j in row (ki, metric), NULL if not compared. */
const rf_signif_cell *rf_signif_get(const rf_signif *s, int ki, int metric, int j);

/* ---- reports --------------------------------------------------------- */

/* Print the results of n models as an aligned table: a header line
 * "metric  NAME1  NAME2 ...", then one line per computed metric and K,
 * grouped by K in ks order ("NDCG@10   0.2034   0.1877": P R NDCG MAP HR
 * MRR Cov Gini Nov ARP ILD ILDemb Rev), then the metrics not cut at K
 * (AUC RMSE MAE), values with 4 decimals, then lines "users" and
 * "eval_s". All results must have the same ks. */
void rf_eval_print_table(FILE *out, const rf_eval_result *res, int n);
/* Print the significance of a comparison as a second table with the same
 * rows (per-user metrics) and columns: "best" for the row's best model,
 * else the mark ("**", "*" or "-") and the p-values "t=1.2e-05 b=0.0010". */
void rf_eval_print_signif(FILE *out, const rf_eval_result *res, int n, const rf_signif *sig);

/* What the evaluation was run on, for the JSON report (all optional). */
typedef struct rf_eval_info {
    const char *protocol; /* "user", "time", "loo", "kfold", "test-file" */
    const char *detail;   /* e.g. "test_ratio=0.2 min_items=5" or the test file */
    const char *data_dir;
    int64_t train_rows, test_rows;   /* events */
    int32_t train_users, test_users; /* users with events */
    int32_t n_items;                 /* train catalog size (columns) */
    int validation;                  /* 1: evaluated on the validation split */
} rf_eval_info;

/* Write results as JSON to path (written to PATH.tmp, then renamed):
 * {"recfuse": VERSION, "protocol": {...}, "ks": [10, 20],
 *  "models": [{"name": "pop", "users": 943, "cold_users": 0,
 *              "relevant": 20381, "unreachable": 0, "coverage_items": 1650,
 *              "eval_seconds": 0.1, "fit_seconds": 0.0,
 *              "metrics": {"P@10": 0.1052, ..., "AUC": 0.85}}]}
 * with sig (may be NULL) also "significance": {"test": "t", "resamples":
 * 1000, "seed": 1, "users": 943, "rows": {"NDCG@10": {"best": "itemknn",
 * "pop": {"p_t": .., "p_bootstrap": .., "diff": .., "mark": "**"}}}}.
 * info may be NULL (no "protocol" object). RF_EIO if the file cannot be
 * written, RF_ENOMEM. */
int rf_eval_write_json(const char *path, const rf_eval_result *res, int n, const rf_eval_info *info,
                       struct rf_err *err);
int rf_eval_write_json_sig(const char *path, const rf_eval_result *res, int n,
                           const rf_eval_info *info, const rf_signif *sig, struct rf_err *err);

#endif
