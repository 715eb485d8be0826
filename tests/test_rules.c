/* test_rules.c - association rules: support / confidence / lift against
 * hand-computed values, FP-Growth against a brute-force counter on random
 * baskets (1 and 2 threads), session baskets from events and from a
 * dataset, and the "rules" model (last-basket scoring, popularity
 * fallback, save/load round trip, corrupt files, failed allocations). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/rules.h"
#include "recfuse/sparse.h"
#include "testutil.h"

static rf_baskets *baskets_of(const char *const *spec, int n, int32_t n_items) {
    int64_t *ptr = malloc((n + 1) * sizeof *ptr);
    int32_t *it = malloc(256 * sizeof *it);
    int64_t k = 0;
    ptr[0] = 0;
    for (int b = 0; b < n; b++) {
        for (const char *p = spec[b]; *p; p++) it[k++] = *p - 'a';
        ptr[b + 1] = k;
    }
    rf_baskets *out;
    assert_int_equal(rf_baskets_build(n, ptr, it, n_items, &out, NULL), 0);
    free(ptr);
    free(it);
    return out;
}

/* Field by field (rf_rule has padding). */
static void assert_same_rules(const rf_rule *a, const rf_rule *b, int64_t n) {
    for (int64_t q = 0; q < n; q++) {
        assert_int_equal(a[q].ante[0], b[q].ante[0]);
        assert_int_equal(a[q].ante[1], b[q].ante[1]);
        assert_int_equal(a[q].cons, b[q].cons);
        assert_int_equal(a[q].count, b[q].count);
        assert_true(a[q].support == b[q].support && a[q].confidence == b[q].confidence &&
                    a[q].lift == b[q].lift);
    }
}

static const rf_rule *find_rule(const rf_rule *r, int64_t n, int32_t a0, int32_t a1, int32_t c) {
    for (int64_t q = 0; q < n; q++)
        if (r[q].ante[0] == a0 && r[q].ante[1] == a1 && r[q].cons == c) return &r[q];
    return NULL;
}

/* Baskets abc, ab, ac, bc, abcd, d, (empty): N = 7.
 * count a=b=c=4, d=2; ab=ac=bc=3, ad=bd=cd=1; abc=2, abd=acd=bcd=1. */
static void test_hand_computed(void **state) {
    const char *spec[] = {"abc", "ab", "ac", "bc", "abcd", "d", ""};
    rf_baskets *b = baskets_of(spec, 7, 4);
    rf_itemsets *s;
    assert_int_equal(rf_fpgrowth(b, 4, 2, 3, 0, &s, NULL), 0);
    assert_int_equal(s->n_baskets, 7);
    /* a b c d, ab ac bc, abc */
    assert_int_equal(s->n, 8);
    assert_int_equal(s->sets[0].len, 1);
    assert_int_equal(s->sets[3].items[0], 3);
    assert_int_equal(s->sets[3].count, 2);
    assert_int_equal(s->sets[4].len, 2);
    assert_int_equal(s->sets[4].items[0], 0);
    assert_int_equal(s->sets[4].items[1], 1);
    assert_int_equal(s->sets[4].count, 3);
    assert_int_equal(s->sets[7].len, 3);
    assert_int_equal(s->sets[7].count, 2);
    rf_rule *r;
    int64_t n;
    assert_int_equal(rf_rules_from_itemsets(s, 0, 0, &r, &n, NULL), 0);
    assert_int_equal(n, 9);
    const rf_rule *x = find_rule(r, n, 0, -1, 1); /* a -> b */
    assert_non_null(x);
    assert_int_equal(x->count, 3);
    assert_float_equal(x->support, 3.0 / 7, 1e-12);
    assert_float_equal(x->confidence, 3.0 / 4, 1e-12);
    assert_float_equal(x->lift, (3.0 / 4) / (4.0 / 7), 1e-12);
    x = find_rule(r, n, 0, 1, 2); /* a,b -> c */
    assert_non_null(x);
    assert_int_equal(x->count, 2);
    assert_float_equal(x->support, 2.0 / 7, 1e-12);
    assert_float_equal(x->confidence, 2.0 / 3, 1e-12);
    assert_float_equal(x->lift, (2.0 / 3) / (4.0 / 7), 1e-12);
    /* (ante, cons) order */
    for (int64_t q = 1; q < n; q++)
        assert_true(r[q - 1].ante[0] < r[q].ante[0] ||
                    (r[q - 1].ante[0] == r[q].ante[0] && r[q - 1].ante[1] <= r[q].ante[1]));
    rf_free(r);
    /* thresholds: lift(pairs) = 21/16 = 1.3125, lift(triple rules) = 7/6 */
    assert_int_equal(rf_rules_from_itemsets(s, 0, 1.2, &r, &n, NULL), 0);
    assert_int_equal(n, 6);
    rf_free(r);
    assert_int_equal(rf_rules_from_itemsets(s, 0.7, 0, &r, &n, NULL), 0);
    assert_int_equal(n, 6); /* pair rules 0.75; triple rules 2/3 */
    rf_free(r);
    assert_int_equal(rf_rules_from_itemsets(s, 0.8, 0, &r, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(r);
    rf_itemsets_free(s);
    /* max_len 2 and 1; min_count 4 leaves singles only */
    assert_int_equal(rf_fpgrowth(b, 4, 2, 2, 0, &s, NULL), 0);
    assert_int_equal(s->n, 7);
    rf_itemsets_free(s);
    assert_int_equal(rf_fpgrowth(b, 4, 2, 1, 0, &s, NULL), 0);
    assert_int_equal(s->n, 4);
    rf_itemsets_free(s);
    assert_int_equal(rf_fpgrowth(b, 4, 4, 3, 0, &s, NULL), 0);
    assert_int_equal(s->n, 3);
    rf_itemsets_free(s);
    /* a budget of itemsets */
    assert_int_equal(rf_fpgrowth(b, 4, 2, 3, 8, &s, NULL), 0);
    rf_itemsets_free(s);
    for (int64_t cap = 1; cap < 8; cap++) {
        rf_err e2;
        rf_err_clear(&e2);
        assert_int_equal(rf_fpgrowth(b, 4, 2, 3, cap, &s, &e2), RF_ETOOBIG);
        assert_null(s);
        assert_non_null(strstr(e2.msg, "frequent itemsets"));
    }
    /* errors */
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_fpgrowth(b, 4, 2, 4, 0, &s, &err), RF_EINVAL);
    assert_int_equal(rf_fpgrowth(b, 4, 0, 2, 0, &s, &err), RF_EINVAL);
    assert_int_equal(rf_fpgrowth(b, 3, 1, 2, 0, &s, &err), RF_ERANGE); /* item d = 3 */
    assert_null(s);
    rf_baskets_free(b);
    /* basket building: duplicates removed, out of range refused */
    int64_t ptr[] = {0, 4};
    int32_t it[] = {3, 1, 3, 1};
    assert_int_equal(rf_baskets_build(1, ptr, it, 4, &b, NULL), 0);
    assert_int_equal(b->indptr[1], 2);
    assert_int_equal(b->items[0], 1);
    assert_int_equal(b->items[1], 3);
    rf_baskets_free(b);
    assert_int_equal(rf_baskets_build(1, ptr, it, 3, &b, &err), RF_ERANGE);
    /* sorting */
    rf_rule rr[3] = {{{0, -1}, 1, 5, 0.5, 0.2, 3.0}, {{1, -1}, 2, 9, 0.9, 0.9, 1.5},
                     {{2, -1}, 0, 9, 0.9, 0.4, 1.5}};
    rf_rules_sort(rr, 3, RF_RULES_BY_LIFT);
    assert_int_equal(rr[0].ante[0], 0);
    assert_int_equal(rr[1].ante[0], 1);
    rf_rules_sort(rr, 3, RF_RULES_BY_CONFIDENCE);
    assert_int_equal(rr[0].ante[0], 1);
    rf_rules_sort(rr, 3, RF_RULES_BY_SUPPORT);
    assert_int_equal(rr[0].ante[0], 1); /* count 9, then confidence */
    assert_int_equal(rr[1].ante[0], 2);
    assert_int_equal(rf_rules_order_parse("support"), RF_RULES_BY_SUPPORT);
    assert_int_equal(rf_rules_order_parse("nope"), -1);
}

/* Brute force: counts of every 1-, 2- and 3-set over baskets (dense). */
static void brute_sets(const rf_baskets *b, int32_t ni, int64_t minc, int max_len, rf_itemset **out,
                       int64_t *n) {
    int64_t *c1 = calloc(ni, sizeof *c1);
    int64_t *c2 = calloc((size_t)ni * ni, sizeof *c2);
    int64_t *c3 = calloc((size_t)ni * ni * ni, sizeof *c3);
    for (int64_t k = 0; k < b->n; k++) {
        const int32_t *x = b->items + b->indptr[k];
        int64_t m = b->indptr[k + 1] - b->indptr[k];
        for (int64_t i = 0; i < m; i++) {
            c1[x[i]]++;
            for (int64_t j = i + 1; j < m; j++) {
                c2[(size_t)x[i] * ni + x[j]]++;
                for (int64_t l = j + 1; l < m; l++) c3[((size_t)x[i] * ni + x[j]) * ni + x[l]]++;
            }
        }
    }
    rf_itemset *s = malloc(sizeof *s * (ni + (size_t)ni * ni + (size_t)ni * ni * ni));
    int64_t k = 0;
    for (int32_t a = 0; a < ni; a++)
        if (c1[a] >= minc) s[k++] = (rf_itemset){{a, -1, -1}, 1, c1[a]};
    for (int32_t a = 0; a < ni && max_len >= 2; a++)
        for (int32_t bb = a + 1; bb < ni; bb++)
            if (c2[(size_t)a * ni + bb] >= minc) s[k++] = (rf_itemset){{a, bb, -1}, 2, c2[(size_t)a * ni + bb]};
    for (int32_t a = 0; a < ni && max_len >= 3; a++)
        for (int32_t bb = a + 1; bb < ni; bb++)
            for (int32_t c = bb + 1; c < ni; c++) {
                int64_t v = c3[((size_t)a * ni + bb) * ni + c];
                if (v >= minc) s[k++] = (rf_itemset){{a, bb, c}, 3, v};
            }
    free(c1);
    free(c2);
    free(c3);
    *out = s;
    *n = k;
}

static rf_baskets *random_baskets(int64_t n, int32_t ni, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    int64_t *ptr = malloc((n + 1) * sizeof *ptr);
    int32_t *it = malloc((size_t)n * 12 * sizeof *it);
    int64_t k = 0;
    ptr[0] = 0;
    for (int64_t b = 0; b < n; b++) {
        int len = (int)rf_rng_below(&g, 9); /* 0..8, duplicates possible */
        for (int i = 0; i < len; i++) {
            /* skewed popularity */
            double u = rf_rng_uniform(&g);
            it[k++] = (int32_t)(ni * u * u);
        }
        if (rf_rng_uniform(&g) < 0.2) { /* a planted triple */
            it[k++] = 5;
            it[k++] = 17;
            it[k++] = 23;
        }
        ptr[b + 1] = k;
    }
    rf_baskets *out;
    assert_int_equal(rf_baskets_build(n, ptr, it, ni, &out, NULL), 0);
    free(ptr);
    free(it);
    return out;
}

static void test_fpgrowth_vs_brute_force(void **state) {
    const int32_t ni = 30;
    rf_baskets *b = random_baskets(3000, ni, 7);
    const int64_t mincs[] = {1, 3, 25, 200};
    for (int t = 0; t < 4; t++)
        for (int max_len = 1; max_len <= 3; max_len++) {
            rf_itemset *want;
            int64_t nw;
            brute_sets(b, ni, mincs[t], max_len, &want, &nw);
            for (int threads = 1; threads <= 2; threads++) {
                rf_set_threads(threads);
                rf_itemsets *s;
                rf_err err;
                rf_err_clear(&err);
                if (rf_fpgrowth(b, ni, mincs[t], max_len, 0, &s, &err)) fail_msg("%s", err.msg);
                if (s->n != nw)
                    fail_msg("min_count %lld max_len %d threads %d: %lld sets, brute force %lld",
                             (long long)mincs[t], max_len, threads, (long long)s->n, (long long)nw);
                for (int64_t q = 0; q < nw; q++)
                    if (memcmp(&s->sets[q], &want[q], sizeof want[q]) != 0)
                        fail_msg("set %lld differs: len %d (%d %d %d) count %lld vs len %d (%d %d %d) "
                                 "count %lld",
                                 (long long)q, s->sets[q].len, s->sets[q].items[0],
                                 s->sets[q].items[1], s->sets[q].items[2],
                                 (long long)s->sets[q].count, want[q].len, want[q].items[0],
                                 want[q].items[1], want[q].items[2], (long long)want[q].count);
                rf_itemsets_free(s);
            }
            free(want);
        }
    rf_set_threads(0);
    rf_baskets_free(b);
}

/* Events: user A buys p0, p1 at 0 / 100 s, views p5 at 150 (not a purchase),
 * buys p2 at 2000 (gap 1900 > 1800: new basket); user B buys p1 then p0
 * out of log order. */
static void test_baskets_from_events(void **state) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    rf_events_push_str(ev, "A", "p0", RF_EV_PURCHASE, 1, 1000);
    rf_events_push_str(ev, "A", "p1", RF_EV_PURCHASE, 1, 1100);
    rf_events_push_str(ev, "A", "p5", RF_EV_VIEW, 1, 1150);
    rf_events_push_str(ev, "B", "p1", RF_EV_PURCHASE, 1, 5100);
    rf_events_push_str(ev, "A", "p2", RF_EV_PURCHASE, 1, 3000);
    rf_events_push_str(ev, "B", "p0", RF_EV_PURCHASE, 1, 5000);
    rf_events_push_str(ev, "B", "p0", RF_EV_PURCHASE, 1, 5050);
    rf_baskets *b;
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, 1800, 0, &b, NULL), 0);
    assert_int_equal(b->n, 3);
    /* A: {p0, p1}, {p2}; B: {p0, p1} (ids p0=0 p1=1 p5=2 p2=3) */
    int64_t want_ptr[] = {0, 2, 3, 5};
    int32_t want_items[] = {0, 1, 3, 0, 1};
    assert_memory_equal(b->indptr, want_ptr, sizeof want_ptr);
    assert_memory_equal(b->items, want_items, sizeof want_items);
    rf_baskets_free(b);
    /* all types: the view joins A's first basket */
    assert_int_equal(rf_baskets_from_events(ev, 0x3F, 1800, 0, &b, NULL), 0);
    assert_int_equal(b->indptr[1], 3);
    rf_baskets_free(b);
    /* gap 0: only simultaneous events share a basket */
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, 0, 0, &b, NULL), 0);
    assert_int_equal(b->n, 6);
    rf_baskets_free(b);
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, -1, 0, &b, NULL), RF_EINVAL);
    /* full baskets close: one event per basket, or two */
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, 1800, 1, &b, NULL), 0);
    assert_int_equal(b->n, 6);
    rf_baskets_free(b);
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, 1800, 2, &b, NULL), 0);
    /* A: {p0,p1} {p2}; B: {p0} (p0 twice) {p1} */
    int64_t want2[] = {0, 2, 3, 4, 5};
    assert_int_equal(b->n, 4);
    assert_memory_equal(b->indptr, want2, sizeof want2);
    rf_baskets_free(b);
    /* from the dataset (pairs at their last time) */
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    assert_int_equal(rf_baskets_from_dataset(d, 1800, 0, &b, NULL), 0);
    /* A: p0 1000, p1 1100, p5 1150 | p2 3000; B: p1 5100, p0 5050 */
    assert_int_equal(b->n, 3);
    assert_int_equal(b->indptr[1], 3);
    rf_baskets_free(b);
    rf_dataset_free(d);
    rf_events_free(ev);
}

/* A shop log: every user buys in sessions; baskets contain the planted
 * pair (x0, x1) or triple (y0, y1, y2) often, plus noise. */
static rf_events *shop_log(int users, uint64_t seed) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    rf_rng g;
    rf_rng_seed(&g, seed);
    char u[16], it[16];
    /* register items in a fixed order so ids are stable */
    for (int i = 0; i < 40; i++) {
        int32_t id;
        snprintf(it, sizeof it, "n%d", i);
        rf_idmap_put(ev->items, it, strlen(it), &id, NULL);
    }
    const char *pl[] = {"x0", "x1", "y0", "y1", "y2"};
    for (int i = 0; i < 5; i++) {
        int32_t id;
        rf_idmap_put(ev->items, pl[i], strlen(pl[i]), &id, NULL);
    }
    for (int x = 0; x < users; x++) {
        snprintf(u, sizeof u, "u%d", x);
        int64_t t = 1700000000 + (int64_t)rf_rng_below(&g, 86400);
        int sessions = 1 + (int)rf_rng_below(&g, 3);
        for (int s = 0; s < sessions; s++) {
            double r = rf_rng_uniform(&g);
            if (r < 0.3) {
                rf_events_push_str(ev, u, "x0", RF_EV_PURCHASE, 1, t);
                if (rf_rng_uniform(&g) < 0.8) rf_events_push_str(ev, u, "x1", RF_EV_PURCHASE, 1, t + 60);
            } else if (r < 0.5) {
                rf_events_push_str(ev, u, "y0", RF_EV_PURCHASE, 1, t);
                rf_events_push_str(ev, u, "y1", RF_EV_PURCHASE, 1, t + 30);
                if (rf_rng_uniform(&g) < 0.7) rf_events_push_str(ev, u, "y2", RF_EV_PURCHASE, 1, t + 90);
            }
            int noise = (int)rf_rng_below(&g, 3);
            for (int k = 0; k < noise; k++) {
                snprintf(it, sizeof it, "n%d", (int)rf_rng_below(&g, 40));
                rf_events_push_str(ev, u, it, rf_rng_uniform(&g) < 0.5 ? RF_EV_PURCHASE : RF_EV_VIEW,
                                   1, t + 100 + k);
            }
            t += 86400 + (int64_t)rf_rng_below(&g, 86400);
        }
    }
    return ev;
}

static int32_t item_id(const rf_model *m, const char *s) { return rf_idmap_find(m->items, s, strlen(s)); }

static rf_model *fit_rules(const rf_dataset *d, const char *params) {
    rf_model *m;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_new("rules", &m, &err), 0);
    if (rf_model_set_params(m, params, &err)) fail_msg("params: %s", err.msg);
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    return m;
}

static void test_model(void **state) {
    rf_events *ev = shop_log(400, 3);
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    d->events = ev;
    rf_model *m = fit_rules(d, "min_count=5");
    rf_rules_info info;
    assert_int_equal(rf_rules_model_info(m, &info, NULL), 0);
    assert_int_equal(info.basket_types, 1 << RF_EV_PURCHASE);
    assert_true(info.n_rules > 0);
    assert_true(info.n_frequent[2] >= 1); /* y0 y1 y2 */
    /* the planted rules are there with the right statistics */
    rf_rule *r;
    int64_t n;
    int32_t x0 = item_id(m, "x0"), x1 = item_id(m, "x1"), y0 = item_id(m, "y0"),
            y1 = item_id(m, "y1"), y2 = item_id(m, "y2");
    assert_int_equal(rf_rules_model_list(m, x0, RF_RULES_BY_LIFT, &r, &n, NULL), 0);
    const rf_rule *x = find_rule(r, n, x0, -1, x1);
    assert_non_null(x);
    const rf_rule rx = *x;
    assert_true(x->confidence > 0.7 && x->confidence < 0.9);
    assert_true(x->lift > 2);
    for (int64_t q = 0; q < n; q++) assert_true(r[q].ante[0] == x0 || r[q].ante[1] == x0);
    for (int64_t q = 1; q < n; q++) assert_true(r[q - 1].lift >= r[q].lift);
    rf_free(r);
    /* recompute that rule's numbers from the baskets directly */
    rf_baskets *b;
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, 1800, 0, &b, NULL), 0);
    int64_t ca = 0, cb = 0, cab = 0;
    for (int64_t k = 0; k < b->n; k++) {
        int ha = 0, hb = 0;
        for (int64_t q = b->indptr[k]; q < b->indptr[k + 1]; q++) {
            ha |= b->items[q] == x0;
            hb |= b->items[q] == x1;
        }
        ca += ha;
        cb += hb;
        cab += ha && hb;
    }
    assert_int_equal(info.n_baskets, b->n);
    assert_int_equal(rx.count, cab);
    assert_float_equal(rx.support, (double)cab / b->n, 1e-12);
    assert_float_equal(rx.confidence, (double)cab / ca, 1e-12);
    assert_float_equal(rx.lift, ((double)cab / ca) / ((double)cb / b->n), 1e-12);
    rf_baskets_free(b);

    /* scoring from the last basket: history with times */
    float *s = malloc(m->n_items * sizeof *s);
    int32_t items[2] = {x0 < y0 ? x0 : y0, x0 < y0 ? y0 : x0};
    int64_t ts[2];
    ts[items[0] == x0 ? 0 : 1] = 1700000000;       /* x0: the last session */
    ts[items[0] == x0 ? 1 : 0] = 1700000000 - 86400; /* y0: a day before */
    rf_hist h = {2, items, NULL, ts};
    assert_int_equal(rf_model_score_all(m, -1, &h, s, NULL), 0);
    assert_true(s[x1] > 1);              /* fired by x0 */
    assert_true(s[y1] < 1 && s[y2] < 1); /* y0's session is not the last */
    rf_scored top[3];
    assert_int_equal(rf_model_recommend(m, -1, &h, 1, NULL, NULL, top, NULL), 1);
    assert_int_equal(top[0].id, x1);
    /* both in one session: x0's and y0's rules fire */
    ts[0] = ts[1] = 1700000000;
    assert_int_equal(rf_model_score_all(m, -1, &h, s, NULL), 0);
    assert_true(s[y1] > 1 && s[y2] > 1 && s[x1] > 1);
    /* the pair y0,y1 fires the triple rule y0,y1 -> y2 (confidence ~0.7) */
    int32_t yy[2] = {y0 < y1 ? y0 : y1, y0 < y1 ? y1 : y0};
    int64_t tt[2] = {5, 5};
    rf_hist hy = {2, yy, NULL, tt};
    assert_int_equal(rf_model_score_all(m, -1, &hy, s, NULL), 0);
    assert_true(s[y2] > 1);
    assert_int_equal(rf_rules_model_list(m, y1, RF_RULES_BY_CONFIDENCE, &r, &n, NULL), 0);
    x = find_rule(r, n, yy[0], yy[1], y2);
    assert_non_null(x);
    float want = (float)(1 + x->confidence * x->lift);
    rf_free(r);
    /* agg=max: the best rule concluding y2 */
    assert_true(s[y2] >= want - 1e-6f);
    /* no history: popularity, all below 1, in popularity order */
    assert_int_equal(rf_model_score_all(m, -1, NULL, s, NULL), 0);
    float pmax = 0;
    for (int32_t j = 0; j < m->n_items; j++)
        if (rf_csr_row_len(d->iu, j) > pmax) pmax = (float)rf_csr_row_len(d->iu, j);
    for (int32_t j = 0; j < m->n_items; j++)
        assert_float_equal(s[j], (float)rf_csr_row_len(d->iu, j) / (pmax + 1), 1e-6);
    /* a training user without times: the stored last basket */
    for (int32_t u = 0; u < d->n_users; u++) {
        rf_hist hr;
        rf_hist_from_row(d, u, &hr);
        assert_int_equal(rf_model_score_all(m, u, &hr, s, NULL), 0);
        for (int32_t j = 0; j < m->n_items; j++) assert_true(isfinite(s[j]) && s[j] >= 0);
    }
    free(s);
    rf_model_free(m);
    rf_dataset_free(d);
    rf_events_free(ev);
}

/* score_sparse (the fused model's candidates) equals score_all on the
 * items the fired rules reach and the popularity fallback elsewhere: for
 * histories with times (the last session), training users without times
 * (the stored basket), unknown users (the heaviest items), agg max and
 * sum, one accumulator reused across every call. */
static void test_sparse(void **state) {
    rf_events *ev = shop_log(400, 5);
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    d->events = ev;
    const char *params[2] = {"min_count=5", "min_count=5,agg=sum,max_context=3"};
    rf_sparse acc;
    assert_int_equal(rf_sparse_init(&acc, d->n_items), 0);
    int64_t *ts = malloc((size_t)d->n_items * sizeof *ts);
    for (int x = 0; x < 2; x++) {
        rf_model *m = fit_rules(d, params[x]);
        int64_t reached = 0, fired = 0;
        for (int32_t u = 0; u < d->n_users; u += 3) {
            rf_hist h;
            rf_hist_from_row_ts(d, u, ts, &h);
            int32_t n = rf_test_check_sparse(m, &acc, u, &h); /* last session by time */
            reached += n;
            fired += n > 0;
            h.ts = NULL;
            reached += rf_test_check_sparse(m, &acc, u, &h);  /* stored last basket */
            reached += rf_test_check_sparse(m, &acc, -1, &h); /* heaviest items */
        }
        assert_true(fired > 0);                         /* rules fired */
        assert_true(reached < (int64_t)d->n_users * d->n_items); /* and stayed sparse */
        rf_model_free(m);
    }
    free(ts);
    rf_sparse_free(&acc);
    rf_dataset_free(d);
    rf_events_free(ev);
}

/* The stored last basket of a training user equals the last session of
 * the row; without an event log baskets come from the matrix. */
static void test_last_basket_and_fallback(void **state) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    /* two users buy a then b in one session, c alone days later */
    for (int u = 0; u < 3; u++) {
        char us[8];
        snprintf(us, sizeof us, "u%d", u);
        rf_events_push_str(ev, us, "a", RF_EV_PURCHASE, 1, 1000 + u);
        rf_events_push_str(ev, us, "b", RF_EV_PURCHASE, 1, 1100 + u);
        rf_events_push_str(ev, us, "c", RF_EV_PURCHASE, 1, 900000 + u);
    }
    rf_events_push_str(ev, "v", "c", RF_EV_PURCHASE, 1, 5000);
    rf_events_push_str(ev, "v", "a", RF_EV_PURCHASE, 1, 9000000);
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    /* no event log: dataset baskets */
    rf_model *m = fit_rules(d, "min_count=2");
    rf_rules_info info;
    assert_int_equal(rf_rules_model_info(m, &info, NULL), 0);
    assert_int_equal(info.basket_types, 0);
    assert_int_equal(info.n_baskets, 8); /* u0..u2: {a,b},{c}; v: {c},{a} */
    int32_t a = item_id(m, "a"), b = item_id(m, "b"), c = item_id(m, "c");
    float s[3];
    /* user v (id 3) without times: last basket {a} -> b */
    rf_hist hr;
    rf_hist_from_row(d, 3, &hr);
    assert_int_equal(rf_model_score_all(m, 3, &hr, s, NULL), 0);
    assert_true(s[b] > 1);
    assert_true(s[c] < 1);
    rf_model_free(m);
    /* with the log: same baskets here (all purchases) */
    d->events = ev;
    m = fit_rules(d, "min_count=2");
    assert_int_equal(rf_rules_model_info(m, &info, NULL), 0);
    assert_int_equal(info.n_baskets, 8);
    rf_rule *r;
    int64_t n;
    assert_int_equal(rf_rules_model_list(m, -1, RF_RULES_BY_LIFT, &r, &n, NULL), 0);
    assert_int_equal(n, 2); /* a -> b (conf 3/4), b -> a (conf 1) */
    assert_non_null(find_rule(r, n, a, -1, b));
    assert_non_null(find_rule(r, n, b, -1, a));
    rf_free(r);
    rf_model_free(m);
    /* an event log on other id maps is refused */
    rf_events *other;
    assert_int_equal(rf_events_new(NULL, NULL, &other), 0);
    d->events = other;
    assert_int_equal(rf_model_new("rules", &m, NULL), 0);
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_fit(m, d, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "id maps"));
    rf_model_free(m);
    rf_events_free(other);
    /* parameters */
    assert_int_equal(rf_model_new("rules", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "max_len=4", NULL), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "agg=sum,basket_events=cart,max_len=2", NULL), 0);
    assert_int_equal(rf_rules_model_list(m, -1, RF_RULES_BY_LIFT, &r, &n, NULL), RF_EINVAL);
    rf_model_free(m);
    assert_int_equal(rf_model_new("pop", &m, NULL), 0);
    assert_int_equal(rf_rules_model_info(m, &info, NULL), RF_EINVAL);
    rf_model_free(m);
    rf_dataset_free(d);
    rf_events_free(ev);
}

/* Long sessions over few items make every pair and triple frequent at
 * min_count 2; the model raises its threshold to stay within
 * max_itemsets, and long sessions are cut at max_basket. */
static void test_itemset_budget(void **state) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    rf_rng g;
    rf_rng_seed(&g, 17);
    char u[16], it[16];
    for (int x = 0; x < 200; x++) {
        snprintf(u, sizeof u, "u%d", x);
        for (int k = 0; k < 40; k++) {
            snprintf(it, sizeof it, "i%d", (int)rf_rng_below(&g, 60));
            rf_events_push_str(ev, u, it, RF_EV_PURCHASE, 1, 1000 + k);
        }
    }
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    d->events = ev;
    rf_log_set_level(RF_LOG_ERROR); /* the expected warnings */
    rf_model *m = fit_rules(d, "max_itemsets=1000,max_basket=100,min_support=0");
    rf_log_set_level(RF_LOG_WARN);
    rf_rules_info info;
    assert_int_equal(rf_rules_model_info(m, &info, NULL), 0);
    assert_int_equal(info.n_baskets, 200);
    assert_true(info.min_count > 2);
    assert_true(info.n_frequent[0] + info.n_frequent[1] + info.n_frequent[2] <= 1000);
    /* the same threshold without a budget gives the same itemsets */
    rf_baskets *b;
    assert_int_equal(rf_baskets_from_events(ev, 1u << RF_EV_PURCHASE, 1800, 100, &b, NULL), 0);
    rf_itemsets *s;
    assert_int_equal(rf_fpgrowth(b, 60, info.min_count, 3, 0, &s, NULL), 0);
    assert_true(s->n <= 1000);
    int64_t c[3] = {0, 0, 0};
    for (int64_t q = 0; q < s->n; q++) c[s->sets[q].len - 1]++;
    assert_memory_equal(c, info.n_frequent, sizeof c);
    rf_itemsets_free(s);
    rf_baskets_free(b);
    rf_model_free(m);
    /* max_basket 10 cuts each 40-event session into 4 baskets */
    m = fit_rules(d, "max_basket=10,min_count=50");
    assert_int_equal(rf_rules_model_info(m, &info, NULL), 0);
    assert_int_equal(info.n_baskets, 800);
    rf_model_free(m);
    rf_dataset_free(d);
    rf_events_free(ev);
}

static void test_save_load(void **state) {
    rf_events *ev = shop_log(300, 11);
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    d->events = ev;
    rf_model *m = fit_rules(d, "min_count=3,agg=sum");
    char *dir = rf_test_tmpdir("rules");
    char path[1024];
    snprintf(path, sizeof path, "%s/rules.rfm", dir);
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_save(m, path, &err), 0);
    rf_model *l;
    if (rf_model_load(path, &l, &err)) fail_msg("load: %s", err.msg);
    float *s1 = malloc(m->n_items * sizeof *s1), *s2 = malloc(m->n_items * sizeof *s2);
    for (int32_t u = 0; u < d->n_users; u++) {
        rf_hist h;
        rf_hist_from_row(d, u, &h);
        assert_int_equal(rf_model_score_all(m, u, &h, s1, NULL), 0);
        assert_int_equal(rf_model_score_all(l, u, &h, s2, NULL), 0);
        assert_memory_equal(s1, s2, m->n_items * sizeof *s1);
    }
    rf_rule *r1, *r2;
    int64_t n1, n2;
    assert_int_equal(rf_rules_model_list(m, -1, RF_RULES_BY_SUPPORT, &r1, &n1, NULL), 0);
    assert_int_equal(rf_rules_model_list(l, -1, RF_RULES_BY_SUPPORT, &r2, &n2, NULL), 0);
    assert_int_equal(n1, n2);
    assert_same_rules(r1, r2, n1);
    rf_free(r1);
    rf_free(r2);
    rf_model_free(l);
    /* truncated file */
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc(size);
    assert_int_equal(fread(text, 1, size, f), (size_t)size);
    fclose(f);
    f = fopen(path, "wb");
    fwrite(text, 1, size / 2, f);
    fclose(f);
    assert_true(rf_model_load(path, &l, &err) < 0);
    assert_null(l);
    free(text);
    /* deterministic across thread counts */
    rf_set_threads(1);
    rf_model *m1 = fit_rules(d, "min_count=3,agg=sum");
    rf_set_threads(2);
    rf_model *m2 = fit_rules(d, "min_count=3,agg=sum");
    rf_set_threads(0);
    assert_int_equal(rf_rules_model_list(m1, -1, RF_RULES_BY_LIFT, &r1, &n1, NULL), 0);
    assert_int_equal(rf_rules_model_list(m2, -1, RF_RULES_BY_LIFT, &r2, &n2, NULL), 0);
    assert_int_equal(n1, n2);
    assert_same_rules(r1, r2, n1);
    rf_free(r1);
    rf_free(r2);
    rf_model_free(m1);
    rf_model_free(m2);
    free(s1);
    free(s2);
    rf_test_rmtree(dir);
    free(dir);
    rf_model_free(m);
    rf_dataset_free(d);
    rf_events_free(ev);
}

/* Every allocation of new + fit fails in turn: clean RF_ENOMEM, no leak. */
static void test_oom(void **state) {
    rf_events *ev = shop_log(60, 5);
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    d->events = ev;
    rf_set_threads(2);
    int ok = 0;
    for (long k = 0; k < 3000 && !ok; k++) {
        rf_model *m = NULL;
        rf_mem_fail_after(k);
        int rc = rf_model_new("rules", &m, NULL);
        if (rc == 0) rc = rf_model_set_params(m, "min_count=2", NULL);
        if (rc == 0) rc = rf_model_fit(m, d, NULL);
        rf_mem_fail_after(-1);
        if (rc == 0) ok = 1;
        else assert_int_equal(rc, RF_ENOMEM);
        rf_model_free(m);
    }
    rf_set_threads(0);
    assert_true(ok);
    rf_dataset_free(d);
    rf_events_free(ev);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_fpgrowth_vs_brute_force),
        cmocka_unit_test(test_baskets_from_events),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_last_basket_and_fallback),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_itemset_budget),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
