/* rerank.h - per-request re-ranking and business rules over a scored
 * candidate list (typically a model's top few hundred for one user).
 *
 * Rules, applied in this order:
 *   1. blocked items are dropped;
 *   2. items the user bought are dropped, except in categories that
 *      allow repeat purchases (consumables);
 *   3. items outside [min_price, max_price] are dropped (an unknown price
 *      fails a bound);
 *   4. out-of-stock items (stock == 0) are dropped (RF_OOS_EXCLUDE) or
 *      demoted behind every in-stock item (RF_OOS_DEMOTE); unknown stock
 *      (-1) counts as in stock;
 *   5. boosted items gain boost x (the list's score range) - so a boost
 *      of 1 lifts an item from the bottom to the top;
 *   6. the list is filled greedily, best first - by score, or with MMR
 *      (Carbonell & Goldstein 1998) when lambda < 1: the next item
 *      maximises lambda * rel(i) - (1 - lambda) * max_{j chosen} sim(i, j),
 *      rel the score scaled to [0, 1] over the candidates - skipping
 *      items whose category already holds cat_cap items;
 *   7. pinned items are put at their positions (0-based; past the end:
 *      appended), whatever their score or whether they were candidates;
 *      a pinned item is never blocked (blocking wins) and counts towards
 *      its category's cap.
 * An item appears at most once. Everything is deterministic (ties by the
 * smaller id). Thread-safe; the only allocation is one scratch array per
 * call. */
#ifndef RECFUSE_RERANK_H
#define RECFUSE_RERANK_H

#include <stdint.h>

#include "topk.h"

struct rf_err;

typedef enum rf_oos_mode { RF_OOS_KEEP = 0, RF_OOS_EXCLUDE = 1, RF_OOS_DEMOTE = 2 } rf_oos_mode;

/* Similarity of two items in [0, 1] for MMR. */
typedef float (*rf_item_sim_fn)(void *ud, int32_t a, int32_t b);

typedef struct rf_pin {
    int32_t item;
    int pos; /* 0-based */
} rf_pin;

typedef struct rf_boost {
    int32_t item;
    float boost;
} rf_boost;

typedef struct rf_rerank_req {
    int32_t n_items;          /* item ids are in [0, n_items) */
    /* item side data (each n_items long, NULL: unknown for every item) */
    const int32_t *category;  /* category id, -1 unknown */
    const double *price;      /* NAN unknown */
    const int64_t *stock;     /* -1 unknown */
    /* the user */
    const int32_t *bought;    /* items the user bought, n_bought */
    int32_t n_bought;
    const uint8_t *repeat_ok; /* n_categories flags: repeat purchases allowed */
    int32_t n_categories;
    /* rules */
    double min_price, max_price; /* NAN: no bound */
    rf_oos_mode oos;
    int cat_cap;              /* most items per category; 0: no cap */
    const int32_t *blocked;
    int32_t n_blocked;
    const rf_boost *boosts;
    int32_t n_boosts;
    const rf_pin *pins;
    int32_t n_pins;
    double lambda;            /* MMR trade-off in [0, 1]; 1: relevance only */
    rf_item_sim_fn sim;       /* needed when lambda < 1 */
    void *sim_ud;
} rf_rerank_req;

/* No rules: everything unknown/NULL, bounds NAN, RF_OOS_KEEP, no cap,
 * lambda 1. */
void rf_rerank_req_init(rf_rerank_req *r, int32_t n_items);

/* Apply the rules to cands[0..n) (any order; ids in range, distinct) and
 * write at most k items, best first, to out (k entries). Returns the
 * count written, or RF_EINVAL (bad lambda, MMR without sim, an id out of
 * range) / RF_ENOMEM. */
int rf_rerank(const rf_rerank_req *r, const rf_scored *cands, int32_t n, int k, rf_scored *out,
              struct rf_err *err);

/* Cosine of two rows of a dense row-major matrix (dim floats per row),
 * clamped to [0, 1]; ud is an rf_vec_sim. */
typedef struct rf_vec_sim {
    const float *v;
    int dim;
    int ld; /* floats between rows (>= dim) */
} rf_vec_sim;
float rf_vec_sim_cos(void *ud, int32_t a, int32_t b);
/* 1 if both items have the same known category, else 0; ud is the
 * category array (const int32_t *). */
float rf_cat_sim(void *ud, int32_t a, int32_t b);

#endif
