/* fusion_int.h - internals of the fusion model (src/models/fusion.c and
 * src/fusion/ *.c), shared by its stages, its tests and its benchmark.
 *
 * The stages, each in its own file:
 *   candidates.c  per user: every channel's top-N (catalog-wide scores,
 *                 or the pruned scan of factor channels), the union of
 *                 the top-Ns with each channel's score/rank
 *   side.c        item and user side tables (popularity, trend, price,
 *                 freshness, stock, category; activity, RFM, last time)
 *   features.c    one feature row per candidate (channels, user, item,
 *                 context) - the layout is fu_feature_names()
 *   blend.c       weighted sum / reciprocal rank fusion / switching, and
 *                 their tuning on the ranker slice
 *   stack.c       training: slice cut, channels fit on the rest, ranker
 *                 data, ranker fit, channels refit on everything
 *   score.c       serving: candidates -> features -> ranker -> scores,
 *                 and the recommend hook (the best k candidates)
 *   scratch.c     per-request scratch, pooled per model
 *   explain.c     reasons from the ranker's per-feature contributions */
#ifndef RF_FUSION_INT_H
#define RF_FUSION_INT_H

#include <math.h>
#include <stdint.h>

#include "recfuse/dataset.h"
#include "recfuse/factors.h"
#include "recfuse/model.h"
#include "recfuse/ranker.h"
#include "recfuse/sparse.h"
#include "recfuse/topk.h"

struct rf_catalog;

/* Channels a fused model can use, in this fixed order (the params table
 * has one candidate-count parameter per channel, named after it). */
enum {
    FU_ITEMKNN,
    FU_USERKNN,
    FU_IALS,
    FU_EASE,
    FU_BPR,
    FU_POP,
    FU_TRENDING,
    FU_RULES,
    FU_CONTENT,
    FU_N_KINDS
};
#define FU_MAX_CH FU_N_KINDS
extern const char *const fu_kind_names[FU_N_KINDS];

/* How the candidates are ordered at the end. */
enum { FU_GBDT = 0, FU_LINEAR = 1, FU_WEIGHTED = 2, FU_RRF = 3, FU_SWITCH = 4 };
enum { FU_SLICE_USER = 0, FU_SLICE_TIME = 1 };

typedef struct fu_params {
    int cand[FU_N_KINDS]; /* candidates per channel, 0 = channel off */
    int ranker;           /* FU_GBDT .. FU_SWITCH */
    int slice;            /* FU_SLICE_USER / FU_SLICE_TIME */
    double slice_ratio;   /* share of each user's pairs (or of time) in the slice */
    double valid_share;   /* share of slice users kept for early stopping */
    int slice_users;      /* most slice users in the ranker data (a seeded draw); 0 all */
    int trees, leaves, min_leaf, early_stop, bins, ndcg_at;
    double lr, l2, ff;
    int epochs;
    int switch_min;       /* switch: users with fewer history items are cold */
    int raw;              /* 1: the channels' raw scores are features too */
    int ease_max_items;   /* the ease channel is switched off above this catalog size */
    int seed;
} fu_params;

/* The per-item side values a feature row reads, packed into one 32-byte
 * record per item (one cache line for a candidate, not one per table):
 * copies of the fu_side arrays of the same names. */
typedef struct fu_item_row {
    float pop, trend, pop_log, trend_log, price, age, stock;
    int32_t cat;
} fu_item_row;

/* Side tables: what the features need beyond the channels' scores. */
typedef struct fu_side {
    int32_t n_items, n_users, n_cats;
    int64_t now;       /* newest event of the data they were built from */
    /* pop, trend and age are rank shares in [0, 1] among the items (so
     * they mean the same on the stage-1 data and on all of it) */
    float *pop;        /* n_items: by distinct users */
    float *trend;      /* n_items: by users in the last 7 days */
    float *pop_log;    /* n_items: log1p(distinct users) */
    float *trend_log;  /* n_items: log1p(users in the last 7 days) */
    float *price;      /* n_items: log1p(price), NAN unknown */
    float *age;        /* n_items: by time since created (or first event), NAN */
    float *stock;      /* n_items: log1p(stock), NAN unknown */
    int32_t *cat;      /* n_items: category id or -1 */
    float *u_events;   /* n_users: log1p(events) */
    float *u_recency;  /* n_users: days since the last event (NAN: none) */
    float *u_days;     /* n_users: log1p(distinct active days) */
    float *u_money;    /* n_users: log1p(sum of purchase value x price) */
    int64_t *u_last;   /* n_users: last event time (0: none) */
    float *u_age;      /* n_users: age, NAN unknown (user table) */
    float *u_gender;   /* n_users: 0 male, 1 female, NAN other/unknown */
    float *u_segment;  /* n_users: segment id (an id, not an order), NAN */
    char **cat_names;  /* n_cats category paths (for explanations) */
    fu_item_row *row;  /* n_items: the item tables packed (not saved) */
} fu_side;

/* Test hook: called by the fit after the first-stage channels are fit,
 * with the data they were fit on and the slice the ranker learns from. */
typedef void (*fu_stage_hook)(void *ud, const rf_dataset *stage1, const rf_events *slice);

typedef struct fu_impl {
    int n_ch;
    int kind[FU_MAX_CH];   /* fu_kind of each channel */
    int cand[FU_MAX_CH];   /* candidates per channel */
    rf_model *ch[FU_MAX_CH];
    rf_ranker *ranker;     /* GBDT / linear; NULL for the blends */
    float w[FU_MAX_CH];    /* weighted blend weights (tuned on the slice) */
    int best_ch;           /* best single channel on the slice (switch) */
    int cold_ch;           /* channel for cold users (switch), -1 none */
    int switch_min;        /* switch: fewer history items = cold user */
    int mode;              /* FU_GBDT .. FU_SWITCH (the ranker parameter) */
    int raw;               /* raw channel scores are features (else NAN) */
    fu_side side;
    /* user-independent channels (pop, trending): their score vector and
     * the catalog in their order, computed once (fu_fixed_init); sparse
     * channels (sparse[k]: the model has score_sparse - itemknn, userknn,
     * rules): the same for their fallback, score_all(-1, empty history),
     * which every item the history does not reach scores. Items scored
     * -INFINITY or NaN are left out of the order (-1 ends it). */
    float *fixed[FU_MAX_CH];
    int32_t *fixed_order[FU_MAX_CH];
    uint8_t sparse[FU_MAX_CH];
    /* factor channels (those rf_factors_get accepts: ials): their factors
     * and the norm order of their items (fu_fixed_init), for the exact
     * pruned top-N; only the candidates are then scored (candidates.c) */
    rf_factors fac[FU_MAX_CH];
    rf_factor_index fix[FU_MAX_CH]; /* .perm NULL: not a factor channel */
    int full_scan;         /* 1: every channel scores the whole catalog (the
                              reference path; tests and benchmarks) */
    struct fu_pool *pool;  /* scratch for requests (scratch.c); owned */
    /* fit statistics (not saved) */
    double slice_recall;   /* share of slice positives among the candidates */
    int64_t rank_rows, rank_groups;
    fu_stage_hook hook;
    void *hook_ud;
} fu_impl;

/* qsort comparator of int32_t, ascending. */
static inline int fu_cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* ---- side.c ---- */
int fu_side_build(fu_side *s, const rf_dataset *d, const rf_events *ev,
                  const struct rf_catalog *cat, const struct rf_user_table *users,
                  struct rf_err *err);
void fu_side_free(fu_side *s);
int fu_side_save(const fu_side *s, struct rf_writer *w);
int fu_side_load(fu_side *s, struct rf_reader *r, int32_t n_users, int32_t n_items,
                 struct rf_err *err);

/* ---- candidates.c ---- */
/* hmask values: a history item no channel may propose and every row
 * scores -INFINITY; a history item that is a candidate all the same. */
enum { FU_HIST = 1, FU_HIST_CAND = 2 };

/* One user's candidates. Per channel c: sc[c] its score vector (n_items
 * floats; history items -INFINITY, but those that joined the candidates
 * through fu_cands_build_hist), top[c] its best cand[c] items. items:
 * the union, ascending ids; rank[c * n + t] 1-based rank of items[t] in
 * channel c's list or 0 when absent. A factor channel with a user vector
 * and a sparse channel are scored only on the union (full[c] == 0): the
 * row holds the candidates' scores and nothing else until
 * fu_cands_extend adds items - readers of scp[c] must stick to the
 * candidates or extend first. sp[c]: a sparse channel's accumulator,
 * kept until the next build (extend reads it). */
typedef struct fu_cands {
    int n_ch;
    int32_t n_items;
    float *sc;       /* n_ch x n_items (rows of fixed channels unused) */
    const float *scp[FU_MAX_CH]; /* channel k's scores: its row of sc, or
                                    the fixed vector (history not -inf) */
    uint8_t full[FU_MAX_CH];     /* 1: scp[k] holds every item's score */
    float *vec;      /* n_ch x ld_max: factor channels' user vectors */
    int ld_max;
    uint8_t *hmask;  /* n_items: the history items (set during a build):
                        FU_HIST, or FU_HIST_CAND for one that joins the
                        candidates (fu_cands_build_hist) */
    int keep_hist;   /* the build let history items join (fu_cands_build_hist) */
    const uint8_t *keep_ex; /* ... except these (borrowed until the next build) */
    uint64_t *ubits; /* n_items bits: the union while it is merged (else 0) */
    rf_scored *top;  /* n_ch x max_cand */
    int n_top[FU_MAX_CH];
    int max_cand;
    int32_t n, cap;
    int32_t *items;
    int32_t *rank;   /* n_ch x cap */
    float lo[FU_MAX_CH], hi[FU_MAX_CH]; /* channel's N-th and 1st score */
    rf_sparse sp[FU_MAX_CH]; /* sparse channels' accumulators */
} fu_cands;
int fu_cands_init(fu_cands *c, const fu_impl *f, int32_t n_items);
/* Precompute the fixed channels' vectors and orders (after fit / load);
 * fu_fixed_free releases them. */
int fu_fixed_init(fu_impl *f, int32_t n_items, struct rf_err *err);
void fu_fixed_free(fu_impl *f);
void fu_cands_free(fu_cands *c);
/* Room for cap candidates (items, rank); c->n and the contents are not
 * kept. 0 or RF_ENOMEM (c unchanged but maybe larger arrays). */
int fu_cands_reserve(fu_cands *c, int32_t cap);
/* Fill c for (user, h). channels: f->ch (fitted). */
int fu_cands_build(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h,
                   struct rf_err *err);
/* The same, and every history item with exclude[item] == 0 (exclude may
 * be NULL: every one) joins the union too (rf_filter.allow_history):
 * proposed by no channel (rank 0 in each; the channels' lists, ranks,
 * best and N-th scores stay those of fu_cands_build), its channel scores
 * whatever each channel gives it. The other candidates' scores and
 * feature rows are those of fu_cands_build. exclude is borrowed until the
 * next build (fu_cands_extend reads it). */
int fu_cands_build_hist(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h,
                        const uint8_t *exclude, struct rf_err *err);
/* The best n items of channel k's precomputed order (f->fixed_order[k];
 * a fixed or sparse channel) with skip[item] == 0 (skip may be NULL) into
 * out: the top-n of f->fixed[k] with those items excluded. Returns the
 * count. */
int fu_order_top(const fu_impl *f, int k, int32_t n_items, const uint8_t *skip, int n,
                 rf_scored *out);
/* Channel k's top-N alone (c->top row k, n_top[k], hi/lo, scp[k]), the
 * history items marked in c->hmask (FU_HIST) by the caller: the step of
 * fu_cands_build per channel (the benchmark times it). */
int fu_channel_top(fu_cands *c, const fu_impl *f, int k, int32_t user, const rf_hist *h,
                   struct rf_err *err);
/* Make channel k's scores known for items[0..n) too (ids outside the
 * catalog skipped), or for every item when items is NULL (then full[k] =
 * 1); h: the history of the build (its items get -INFINITY, but those the
 * build let join the candidates). A no-op for
 * channels already full. Same floats as the full path. */
void fu_cands_extend(fu_cands *c, const fu_impl *f, const rf_hist *h, int k, const int32_t *items,
                     int32_t n);
/* Per-user normalised score of item j in channel k: 1 at the channel's
 * best, 0 at its N-th candidate (NAN if the channel cannot score j).
 * Inline: the fused score_all calls it for every item of the catalog. */
static inline float fu_norm(const fu_cands *c, int k, int32_t j) {
    float s = c->scp[k][j];
    if (!isfinite(s)) return NAN;
    float span = c->hi[k] - c->lo[k];
    if (!(span > 1e-12f)) return s >= c->hi[k] ? 1.0f : 0.0f;
    return (s - c->lo[k]) / span;
}

/* ---- features.c ---- */
int fu_n_feats(const fu_impl *f);
/* Name of feature i into buf ("itemknn.score", "user.recency"). */
void fu_feature_name(const fu_impl *f, int i, char *buf, size_t size);
/* Channel of feature i, or -1 for user/item/context features. */
int fu_feature_channel(const fu_impl *f, int i);
/* Rows for every candidate of c: x (c->n x fu_n_feats) for `side`,
 * user id user (-1 unknown) with history h. */
void fu_features(const fu_impl *f, const fu_side *side, const fu_cands *c, int32_t user,
                 const rf_hist *h, float *x);

/* ---- blend.c ---- */
/* Scores of the candidates of c by the blend mode (weighted, rrf or
 * switch) into out[c->n]; switch uses h->n to tell cold users. */
void fu_blend_scores(const fu_impl *f, int mode, const fu_cands *c, const rf_hist *h,
                     float *out);
/* Tune the weighted blend's weights and pick the best single channel
 * on ranker data (rows laid out by fu_features). */
void fu_blend_tune(fu_impl *f, const rf_rank_data *d);

/* ---- stack.c ---- */
int fu_fit(rf_model *m, const rf_dataset *d, struct rf_err *err);
/* Fit one channel model of kind k on d (its own matrix from d->events
 * when the model has data defaults). */
int fu_channel_fit(int kind, const rf_dataset_opts *opts, const rf_dataset *d, rf_model **out,
                   struct rf_err *err);

/* ---- scratch.c ---- */
/* What one request needs besides its inputs: the candidates and their
 * feature rows and scores (sized for the union's largest size), and a
 * catalog-sized score vector for the full path (allocated on first use). */
typedef struct fu_scratch {
    fu_cands c;
    float *x;   /* c.cap x fu_n_feats */
    float *s;   /* c.cap */
    float *all; /* n_items or NULL */
    int list;   /* how fu_recommend answered: 0 from the candidates, 1 from
                   the full vector, -1 not a recommend (counted by put) */
} fu_scratch;
/* A scratch for a fitted f over n_items items: from the model's pool, or
 * new when the pool is empty (or f has none). NULL: out of memory. */
fu_scratch *fu_scratch_get(const fu_impl *f, int32_t n_items);
/* Room for cap candidates in w (its candidates, feature rows and
 * scores), for fu_cands_build_hist. 0 or RF_ENOMEM. */
int fu_scratch_reserve(const fu_impl *f, fu_scratch *w, int32_t cap);
/* Give it back (kept for the next request, or freed when the pool is
 * full). NULL is a no-op. */
void fu_scratch_put(const fu_impl *f, fu_scratch *w);
/* Lists fu_recommend answered from the candidates and from the full
 * vector since the model was created or loaded (tests, benchmarks). */
void fu_pool_stats(const fu_impl *f, int64_t *from_cands, int64_t *from_full);
/* The model's pool (fusion_create) and its end (fusion_destroy). */
int fu_pool_new(fu_impl *f);
void fu_pool_free(fu_impl *f);

/* ---- score.c ---- */
/* Full fused scores of user (h) into out (n_items), using scratch w. */
int fu_score_user(const rf_model *m, fu_scratch *w, int32_t user, const rf_hist *h, float *out,
                  struct rf_err *err);
/* fu_cands_build_hist into w->c after making room in w for every
 * history item (fu_scratch_reserve): RF_ENOMEM, or as the build. */
int fu_build_hist(const fu_impl *f, fu_scratch *w, int32_t user, const rf_hist *h,
                  const uint8_t *exclude, struct rf_err *err);
/* Final scores of c's candidates into s (c->n); x scratch rows. */
void fu_rank_cands(const fu_impl *f, const fu_cands *c, int32_t user, const rf_hist *h, float *x,
                   float *s);
/* The fused model's recommend op (model.h): the best k candidates that
 * pass the filter when they beat every non-candidate, else the top-k of
 * the full score vector. */
int fu_recommend(const rf_model *m, int32_t user, const rf_hist *h, int k, const rf_filter *flt,
                 rf_scored *out, struct rf_err *err);

/* ---- explain.c ---- */
int fu_explain(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
               int32_t n, rf_reason *out, struct rf_err *err);

#endif
