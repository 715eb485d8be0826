/* gen.h - synthetic shop generator.
 *
 * Customers with demographics, items with categories, brands, prices,
 * stock and titles, and sessions following a view -> cart -> purchase
 * funnel, with repeat purchases, weekly seasonality and trending items.
 * Choices are driven by hidden latent preferences (user and item factors
 * plus a per-customer category affinity), so a model that learns them
 * beats popularity on later events. Output is streamed: memory grows with
 * users + items, not with events. Seeded and deterministic: the same
 * options give byte-identical files for any thread count.
 *
 * Files written into DIR (all TSV with a header line, UTF-8, '\n'):
 *   interactions.tsv  user item type value timestamp
 *                     users in id order (u1, u2, ...), each user's events
 *                     in chronological order (ties keep funnel order);
 *                     type is rf_event_type_name(): view, click, cart,
 *                     purchase, rating; value 1 for view/click/cart, the
 *                     quantity for purchase, 1..5 for rating; timestamp in
 *                     Unix seconds within [start, start + days*86400).
 *   items.tsv         id title category brand price stock created
 *                     ids i1..iN; category "Top/Sub"; price with 2
 *                     decimals; created in Unix seconds (may be before
 *                     start; no event of an item precedes its creation).
 *   users.tsv         id gender age country segment
 *                     gender F/M/U; segment bargain/mainstream/premium/loyal.
 *   truth_items.tsv, truth_users.tsv   only with write_truth: the hidden
 *                     popularity rank, trend windows, consumable periods,
 *                     activity targets and favourite categories, for tests
 *                     and for checking trend/segment detectors.
 * Files are written as NAME.tmp and renamed when complete.
 * docs/generator.md describes the generative story and every knob. */
#ifndef RECFUSE_GEN_H
#define RECFUSE_GEN_H

#include <stdint.h>

struct rf_err;

typedef struct rf_gen_opts {
    int64_t users;      /* customers (default 2000) */
    int64_t items;      /* catalog size (default 500) */
    int64_t events;     /* target number of events (default 100000; within ~1%) */
    int categories;     /* top-level categories (default 12; 16 built in, more synthesised) */
    int brands;         /* default 60 */
    int factors;        /* latent dimensions of the hidden preferences (default 16) */
    double days;        /* time span (default 180) */
    int64_t start;      /* first timestamp, Unix seconds (default 2024-01-01T00:00:00Z) */
    double pop_exponent; /* item popularity ~ (rank + 50)^-pop_exponent (default 1) */
    double taste;       /* 0..1 weight of latent taste + category affinity vs popularity
                           (0: pure popularity; default 0.8) */
    double purchase_rate; /* base P(cart -> purchase) (default 0.5) */
    double trend_share; /* share of items with a popularity burst (default 0.03) */
    uint64_t seed;      /* default 42 */
    int implicit_only;  /* 1: one purchase event per distinct (user, item), value 1
                           (Protocol C shape); 0: full funnel (default) */
    /* Extensions (defaults from rf_gen_opts_default). */
    double activity_sigma; /* sigma of the log-normal events-per-user (default 1.0) */
    double new_share;      /* share of items created during the span (default 0.15) */
    double cart_rate;      /* base P(view -> cart) (default 0.25) */
    double rating_rate;    /* P(rating | purchase) (default 0.3) */
    double repeat_rate;    /* P(re-buy a consumable after each purchase) (default 0.5) */
    int write_truth;       /* 1: also write truth_items.tsv and truth_users.tsv */
} rf_gen_opts;

void rf_gen_opts_default(rf_gen_opts *o);

/* Apply a named preset on top of `o` (only the fields the preset names):
 *   demo   1000 users, 300 items, 40k events, 8 categories, 90 days
 *   small  10k users, 2k items, 1M events, 16 categories, 180 days
 *   ml20m  138k users, 27k items, 20M events, implicit, 20 categories,
 *          730 days (the Protocol C speed workload)
 * Returns 0 or RF_EINVAL for an unknown name. */
int rf_gen_preset(rf_gen_opts *o, const char *name, struct rf_err *err);

/* NULL if the options are usable, else a static message naming the bad
 * option (LIBLINEAR's check_parameter). */
const char *rf_gen_opts_check(const rf_gen_opts *o);

typedef struct rf_gen_stats {
    int64_t users, items, events;
    double seconds;
    int64_t type_counts[8]; /* events per rf_event_type */
    int64_t repeat_purchases; /* purchases of an item the user had bought before */
    int64_t bytes;            /* size of interactions.tsv */
} rf_gen_stats;

/* Writes DIR/interactions.tsv, DIR/items.tsv and DIR/users.tsv (creating
 * DIR). Runs on rf_threads() threads; output does not depend on the
 * thread count. Shows an rf_progress bar. `st` may be NULL.
 * Errors: RF_EINVAL (bad options, message from rf_gen_opts_check),
 * RF_EIO (cannot create or write a file), RF_ENOMEM. */
int rf_gen_write(const char *dir, const rf_gen_opts *o, rf_gen_stats *st, struct rf_err *err);

#endif
