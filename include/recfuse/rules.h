/* rules.h - association rules ("frequently bought together"): baskets,
 * frequent itemsets by FP-Growth, rules with support, confidence and
 * lift, and access to the rules a trained "rules" model holds.
 *
 * A basket is a set of items bought together. The event log has no order
 * id, so a basket is one user's session: the user's events of the basket
 * types ordered by time, cut wherever two consecutive events are more than
 * `gap` seconds apart (30 minutes by default in the model), and also when
 * it holds `max_items` events (a bulk session of hundreds of events - a
 * reseller, a user rating a back catalog - is cut into consecutive
 * baskets instead of making every pair of its items co-occur). When an
 * order id column arrives, a basket will be an order.
 *
 * For an itemset S, count(S) is the number of baskets containing all of
 * S and support(S) = count(S) / N over all N baskets (single-item baskets
 * included). A rule A -> c (A one or two items, c one item not in A) has
 *   support    = support(A u {c})
 *   confidence = count(A u {c}) / count(A)
 *   lift       = confidence / support({c})
 * Mining is deterministic and its results do not depend on the thread
 * count (the FP-Growth step runs in parallel over items). */
#ifndef RECFUSE_RULES_H
#define RECFUSE_RULES_H

#include <stdint.h>

#include "dataset.h"
#include "events.h"

struct rf_err;
struct rf_model;

/* ---- baskets --------------------------------------------------------- */

typedef struct rf_baskets {
    int64_t n;       /* baskets */
    int64_t *indptr; /* n + 1 */
    int32_t *items;  /* indptr[n] item ids; ascending and distinct within a basket */
} rf_baskets;

void rf_baskets_free(rf_baskets *b); /* NULL is a no-op */

/* Baskets from CSR-like arrays (basket b holds items[indptr[b] ..
 * indptr[b+1])): copied, each basket sorted and de-duplicated. Empty
 * baskets are kept (they count in N). RF_ERANGE for an item outside
 * [0, n_items), RF_EINVAL for a bad indptr, RF_ENOMEM. */
int rf_baskets_build(int64_t n, const int64_t *indptr, const int32_t *items, int32_t n_items,
                     rf_baskets **out, struct rf_err *err);

/* Session baskets of a log: per user, the events whose type bit is set in
 * type_mask (bit 1 << rf_event_type), by time (ties by log order); a new
 * basket starts when an event is more than gap_seconds after the previous
 * kept one, or when the basket already holds max_items events (0: no
 * limit). Users are taken in dense id order, so the output is
 * deterministic. RF_ERANGE for an event with a user or item outside the
 * log's maps. */
int rf_baskets_from_events(const rf_events *ev, unsigned type_mask, int64_t gap_seconds,
                           int max_items, rf_baskets **out, struct rf_err *err);

/* The same from a dataset alone (each user's items with their last event
 * time, ui_ts; ties by item id): the fallback when no event log is at hand. */
int rf_baskets_from_dataset(const rf_dataset *d, int64_t gap_seconds, int max_items,
                            rf_baskets **out, struct rf_err *err);

/* ---- frequent itemsets ----------------------------------------------- */

typedef struct rf_itemset {
    int32_t items[3]; /* ascending; unused slots -1 */
    int32_t len;      /* 1..3 */
    int64_t count;    /* baskets containing the set */
} rf_itemset;

typedef struct rf_itemsets {
    int64_t n;
    rf_itemset *sets;  /* by (len, items) ascending */
    int64_t n_baskets; /* N */
} rf_itemsets;

void rf_itemsets_free(rf_itemsets *s); /* NULL is a no-op */

/* All itemsets of 1..max_len items (max_len 1..3) contained in at least
 * min_count (>= 1) baskets, by FP-Growth: frequent items ranked by count,
 * baskets as rank sequences sorted lexicographically and merged into a
 * prefix tree (the FP-tree) in one pass, then, in parallel over items x,
 * the prefix paths of x's nodes (its conditional pattern base) give the
 * pairs {y, x}; for triples the base is merged into a conditional tree
 * and the prefix paths of y in it give {z, y, x}. max_sets > 0 bounds the
 * number of itemsets: mining stops with RF_ETOOBIG as soon as more would
 * be frequent (low thresholds on long baskets explode combinatorially).
 * RF_EINVAL (bad arguments), RF_ERANGE (item outside [0, n_items)),
 * RF_ETOOBIG, RF_ENOMEM. */
int rf_fpgrowth(const rf_baskets *b, int32_t n_items, int64_t min_count, int max_len,
                int64_t max_sets, rf_itemsets **out, struct rf_err *err);

/* ---- rules ----------------------------------------------------------- */

typedef struct rf_rule {
    int32_t ante[2]; /* antecedent, ascending; ante[1] = -1 for one item */
    int32_t cons;    /* consequent */
    int64_t count;   /* baskets with antecedent and consequent */
    double support, confidence, lift;
} rf_rule;

/* Every rule A -> c with A u {c} a frequent itemset of 2 or 3 items,
 * confidence >= min_confidence and lift >= min_lift; in (ante, cons)
 * order. *out is allocated (rf_free; NULL when *n is 0). */
int rf_rules_from_itemsets(const rf_itemsets *s, double min_confidence, double min_lift,
                           rf_rule **out, int64_t *n, struct rf_err *err);

typedef enum rf_rules_order {
    RF_RULES_BY_LIFT = 0,       /* lift, then confidence, count */
    RF_RULES_BY_CONFIDENCE = 1, /* confidence, then lift, count */
    RF_RULES_BY_SUPPORT = 2     /* count, then confidence, lift */
} rf_rules_order;

/* Sort strongest first; remaining ties by antecedent then consequent id. */
void rf_rules_sort(rf_rule *r, int64_t n, rf_rules_order by);
/* "lift", "confidence", "support" (or "count") -> order; -1 if unknown. */
int rf_rules_order_parse(const char *s);

/* ---- the "rules" model ----------------------------------------------- */

typedef struct rf_rules_info {
    int64_t n_baskets;   /* baskets mined */
    int64_t min_count;   /* itemset threshold used (after any raise for max_itemsets) */
    int64_t n_frequent[3]; /* frequent itemsets of 1, 2, 3 items */
    int64_t n_rules;     /* rules kept in the model */
    int basket_types;    /* type mask the baskets were made of (0: dataset fallback) */
} rf_rules_info;

/* Summary of a fitted rules model. RF_EINVAL if m is not one. */
int rf_rules_model_info(const struct rf_model *m, rf_rules_info *info, struct rf_err *err);

/* The rules of a fitted rules model (item ids are the model's), those
 * whose antecedent contains `item` when item >= 0, sorted by `by`.
 * *out allocated (rf_free; NULL when *n is 0). RF_EINVAL if m is not a
 * fitted rules model. */
int rf_rules_model_list(const struct rf_model *m, int32_t item, rf_rules_order by, rf_rule **out,
                        int64_t *n, struct rf_err *err);

#endif
