/* dataset.h - from the event log to interaction matrices, and splits.
 *
 * A dataset is what every model trains on: a users x items matrix of
 * folded, weighted interactions (CSR), its transpose (CSC as a CSR of
 * items x users), and the last interaction time of each entry. Building
 * is deterministic (same log and options give the same bytes for any
 * thread count). The id maps are borrowed from the event log.
 *
 * Memory: ui and iu hold 8 bytes per entry each (int32 index + float
 * value) plus 8 bytes per row of indptr; ui_ts 4 bytes per entry; so 20
 * bytes per folded (user, item) pair. Building needs, on top of the log,
 * one 4-byte index per event (8 bytes for logs of 2^32 events or more)
 * and, until rows are compacted, 12 bytes per event for the rows; the
 * peak is about the log plus the finished dataset (docs/dataset.md). */
#ifndef RECFUSE_DATASET_H
#define RECFUSE_DATASET_H

#include <stdint.h>

#include "csr.h"
#include "events.h"

struct rf_err;
struct rf_catalog;    /* store.h */
struct rf_user_table; /* store.h */

/* The weight of one event is
 *     type_weight[type] * (use_value ? value : 1) * decay(ts)
 * with decay(ts) = 2^(-max(0, now - ts) / (half_life_days * 86400)) when
 * half_life_days > 0, else 1 (events after `now` count as fresh). Events
 * whose type weight is 0 are left out of the matrices altogether (so
 * "view=0" drops views even with `binary`). The events of one
 * (user, item) pair then fold into one entry:
 *   RF_FOLD_SUM   sum of the weights (added in log order)
 *   RF_FOLD_MAX   largest weight
 *   RF_FOLD_LAST  weight of the pair's latest event (largest ts; equal
 *                 times: the later one in log order)
 * and with `binary` every entry is then 1. ui_ts holds the pair's latest
 * event time whatever the fold. */
typedef struct rf_dataset_opts {
    float type_weight[RF_EV_NTYPES]; /* weight of one event of each type; finite */
    int use_value;         /* 1: weight *= event value (ratings, quantities) */
    double half_life_days; /* > 0: exponential time decay with this half-life; 0: none */
    int64_t now;           /* reference time for decay (Unix s); 0 = latest event */
    rf_fold fold;          /* how repeated (user, item) events combine */
    int binary;            /* 1: every folded entry becomes 1 */
} rf_dataset_opts;

/* Defaults: view 1, click 1, cart 3, purchase 5, rating 1, custom 1;
 * use_value 0; no decay; RF_FOLD_SUM; binary 0. */
void rf_dataset_opts_default(rf_dataset_opts *o);
/* Parse "view=1,cart=3,purchase=5" into type_weight: comma-separated
 * type=weight entries, blanks around names and numbers allowed, type names
 * as rf_event_type_parse takes them (aliases such as "add_to_cart" too),
 * weights finite numbers. Types not named keep their weight. On error
 * (RF_EINVAL with a message naming the bad entry, e.g.
 * "event weights: entry 2 'kart=3': unknown event type 'kart'") `o` is
 * left unchanged. */
int rf_dataset_parse_weights(rf_dataset_opts *o, const char *spec, struct rf_err *err);
/* 1 if the two options build the same matrix (every field equal), else 0. */
int rf_dataset_opts_equal(const rf_dataset_opts *x, const rf_dataset_opts *y);
/* Check options; NULL if fine, else a static message. */
const char *rf_dataset_opts_check(const rf_dataset_opts *o);

typedef struct rf_dataset {
    int32_t n_users, n_items;
    rf_csr *ui;        /* users x items, folded weights */
    rf_csr *iu;        /* items x users, the transpose */
    uint32_t *ui_ts;   /* per ui entry: last event time - ts_base */
    int64_t ts_base;   /* smallest event time */
    int64_t ts_max;    /* largest event time */
    const rf_idmap *users, *items; /* borrowed from the event log */
    /* Optional side data for models that need more than the matrices,
     * borrowed, NULL when absent. rf_dataset_build leaves them NULL; the
     * caller sets them (the CLI's train and evaluate do) and keeps them
     * alive while models are fit - models copy what they keep.
     *   catalog: item attributes (store.h's rf_catalog, rows matched to
     *            items by id string) - used by "content".
     *   events:  the log the matrices were built from, sharing their id
     *            maps (a split's train log in evaluation) - used by
     *            "rules" for session baskets.
     *   users_info: customer demographics (store.h's rf_user_table: gender,
     *            age, country, segment; rows matched to users by id
     *            string) - used by "fm" as user side features and by "fusion"
     *            for its user features. */
    const struct rf_catalog *catalog;
    const rf_events *events;
    const struct rf_user_table *users_info;
} rf_dataset;

/* Build the dataset of `ev` (which must outlive it: the id maps are
 * borrowed). n_users / n_items are the sizes of the log's id maps, so
 * users and items without events get empty rows / columns. `o` NULL means
 * the defaults. ts_base / ts_max are the smallest / largest event time
 * (0 / 0 for an empty log). Errors: RF_EINVAL (bad options), RF_ERANGE
 * (an event whose user, item or type is out of range, or times spanning
 * more than 2^32 s), RF_ETOOBIG (one user with 2^32 events or more),
 * RF_ENOMEM; *out is untouched on error. Parallel (rf_threads()),
 * deterministic. */
int rf_dataset_build(const rf_events *ev, const rf_dataset_opts *o, rf_dataset **out,
                     struct rf_err *err);
void rf_dataset_free(rf_dataset *d); /* NULL is a no-op */
/* Bytes held by the matrices and timestamps. */
int64_t rf_dataset_bytes(const rf_dataset *d);

/* Relevance matrix of a log (typically a test log): users x items of the
 * log's id map sizes, 1 for every distinct (user, item) pair in the log.
 * The caller owns *out (rf_csr_free). RF_ERANGE if an event's user or item
 * is out of range; RF_ENOMEM. */
int rf_events_to_csr_binary(const rf_events *ev, rf_csr **out, struct rf_err *err);

/* ---- splits ----------------------------------------------------------
 * Each split cuts an event log into train and test logs that borrow the
 * same id maps (so dense ids agree; the source log must outlive them).
 * Events keep their order from the source log. A (user, item) pair is
 * never in both: a user's pairs are ordered by their first event time
 * (ties by natural item id order, rf_natural_cmp: "2" < "10"), and all
 * events of a pair go where its first event goes (a view followed by a
 * purchase stays together), except in the global time split, where train
 * keeps only events before the cut-off and test holds pairs first seen at
 * or after it. Users with fewer than `min_items` distinct items keep
 * everything in train; a negative min_items means RF_SPLIT_MIN_ITEMS (5).
 *
 * Validation split: apply the same function to the train log of a split
 * (e.g. rf_split_user_ratio(split.train, ...)); the result borrows the same
 * id maps and lies inside training. This is how `tune` reproduces the
 * benchmarks' "same rule applied to train".
 *
 * All splits are deterministic and independent of the thread count.
 * Errors: RF_EINVAL (bad argument), RF_ERANGE (an event's user or item out
 * of the id maps, or event times spanning more than 2^32 s), RF_ETOOBIG
 * (one user with 2^32 events or more), RF_ENOMEM. On error both logs of
 * *out are NULL. */

#define RF_SPLIT_MIN_ITEMS 5

typedef struct rf_split {
    rf_events *train, *test;
} rf_split;
void rf_split_free(rf_split *s); /* frees both logs, sets them NULL; NULL ok */

/* Per user: the last ceil(test_ratio * n) of the user's n pairs go to test
 * (0 < test_ratio < 1; users with n < min_items: all train). The ceiling
 * is computed exactly for ratios with up to 9 decimals (ceil(0.2 * 10) is
 * 2). With 0.2 and min_items 5 this is Protocol A (benchmarks/REFERENCE.md). */
int rf_split_user_ratio(const rf_events *ev, double test_ratio, int min_items, rf_split *out,
                        struct rf_err *err);
/* Pairs first seen at or after `cutoff` go to test; train keeps the
 * events before `cutoff` of the other pairs (later events of those pairs
 * are dropped). */
int rf_split_time(const rf_events *ev, int64_t cutoff, rf_split *out, struct rf_err *err);
/* Each user's last pair goes to test (users with >= min_items pairs). */
int rf_split_leave_last(const rf_events *ev, int min_items, rf_split *out, struct rf_err *err);
/* Random k-fold over pairs, stratified by user: each user's pairs are
 * shuffled with a stream of `seed` and dealt round-robin into k folds from
 * a random starting fold, so every user has floor or ceil(n/k) pairs in
 * each fold. Fold `fold` (0 <= fold < k, 2 <= k) is the test part; the
 * k test parts of one seed partition the pairs. */
int rf_split_kfold(const rf_events *ev, int k, int fold, uint64_t seed, rf_split *out,
                   struct rf_err *err);

#endif
