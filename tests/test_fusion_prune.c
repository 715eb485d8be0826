/* test_fusion_prune.c - the fused model's fast paths give exactly what
 * the full path (every channel's score_all over the catalog,
 * fu_impl.full_scan) gives:
 *   - factor channels (ials) on the pruned path (candidates.c: the exact
 *     norm-ordered top-N, only the candidates scored) and sparse channels
 *     (itemknn, userknn, rules: only what the history reaches): the same
 *     candidates, ranks, channel scores and feature rows, so the same fused
 *     score vector bit for bit and the same explanations - for users with
 *     training rows, with another history, unknown users with a history
 *     (fold-in) and cold users; with the GBDT ranker (ials not the first
 *     channel), a weighted blend whose first channel is ials (the fused
 *     vector's non-candidates come from the first channel), and every
 *     default channel (ease and the full path included);
 *   - the recommend op (score.c: the best k candidates that pass the
 *     filter, the full vector only when they do not beat every
 *     non-candidate) against the top-k of the full path's score_all, for
 *     random filters (category, price band, exclusions, narrow ones) and k
 *     from 1 to past the candidate count; both of its branches are taken.
 *
 * Data: generated here - 600 users in 12 taste groups over 2,000 items
 * with power-law popularity inside a group, 8 to 30 events each in
 * sessions of four over 60 days, a third of them purchases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/fusion.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "testutil.h"

#define NU 600
#define NI 2000
#define NG 12
#define DAY 86400LL

static rf_events *gen(void) {
    rf_events *ev = rf_test_events_items(NI);
    rf_rng r;
    rf_rng_seed(&r, 3);
    char u[32], it[32];
    const int64_t t0 = 1700000000;
    for (int x = 0; x < NU; x++) {
        snprintf(u, sizeof u, "u%d", x);
        int g = x % NG, n = 8 + (int)rf_rng_below(&r, 23);
        int64_t ts = t0;
        for (int e = 0; e < n; e++) {
            /* mostly the group's items, popular ones first; sometimes any */
            int item = rf_rng_uniform(&r) < 0.8
                           ? (g + NG * (int)(pow(rf_rng_uniform(&r), 2.5) * (NI / NG))) % NI
                           : (int)rf_rng_below(&r, NI);
            snprintf(it, sizeof it, "i%d", item);
            int type = rf_rng_uniform(&r) < 0.3 ? RF_EV_PURCHASE : RF_EV_VIEW;
            /* sessions of a few events minutes apart (baskets for rules) */
            ts = e % 4 == 0 ? t0 + (int64_t)rf_rng_below(&r, 60 * DAY) : ts + 60;
            assert_int_equal(rf_events_push_str(ev, u, it, type, 1, ts), 0);
        }
    }
    return ev;
}

/* Fused scores and explanations of (user, h) on the pruned and the full
 * path: identical. Returns 1 if the pruned path was taken for a factor
 * channel. */
static int same(rf_model *m, int32_t user, const rf_hist *h, float *a, float *b) {
    fu_impl *f = m->impl;
    rf_err err;
    f->full_scan = 0;
    assert_int_equal(rf_model_score_all(m, user, h, a, &err), 0);
    f->full_scan = 1;
    assert_int_equal(rf_model_score_all(m, user, h, b, &err), 0);
    assert_memory_equal(a, b, NI * sizeof *a);
    /* explanations of the top items and of a few far outside the candidates */
    rf_scored top[10];
    int nt = rf_topk_select(a, NI, 10, NULL, top);
    int32_t items[14];
    for (int t = 0; t < nt; t++) items[t] = top[t].id;
    items[nt] = 0;
    items[nt + 1] = NI / 2;
    items[nt + 2] = NI - 1;
    items[nt + 3] = 1234;
    int n = nt + 4;
    rf_reason ra[14], rb[14];
    f->full_scan = 0;
    assert_int_equal(rf_model_explain(m, user, h, items, n, ra, &err), 0);
    f->full_scan = 1;
    assert_int_equal(rf_model_explain(m, user, h, items, n, rb, &err), 0);
    assert_memory_equal(ra, rb, (size_t)n * sizeof *ra);
    f->full_scan = 0;
    /* was the pruned path taken? */
    fu_cands c;
    assert_int_equal(fu_cands_init(&c, f, NI), 0);
    assert_int_equal(fu_cands_build(&c, f, user, h, &err), 0);
    int pruned = 0;
    for (int k = 0; k < f->n_ch; k++) pruned |= f->fix[k].perm && !c.full[k];
    fu_cands_free(&c);
    return pruned;
}

/* The candidates of (user, h) on the fast and the full path: the same
 * items, ranks, channel scores and feature rows. */
static void same_cands(fu_impl *f, int32_t user, const rf_hist *h) {
    rf_err err;
    fu_cands a, b;
    assert_int_equal(fu_cands_init(&a, f, NI), 0);
    assert_int_equal(fu_cands_init(&b, f, NI), 0);
    f->full_scan = 0;
    assert_int_equal(fu_cands_build(&a, f, user, h, &err), 0);
    f->full_scan = 1;
    assert_int_equal(fu_cands_build(&b, f, user, h, &err), 0);
    f->full_scan = 0;
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.items, b.items, (size_t)a.n * sizeof *a.items);
    for (int k = 0; k < f->n_ch; k++) {
        assert_int_equal(a.n_top[k], b.n_top[k]);
        assert_memory_equal(a.top + (size_t)k * a.max_cand, b.top + (size_t)k * b.max_cand,
                            (size_t)a.n_top[k] * sizeof *a.top);
        assert_memory_equal(a.rank + (size_t)k * a.cap, b.rank + (size_t)k * b.cap,
                            (size_t)a.n * sizeof *a.rank);
        for (int32_t t = 0; t < a.n; t++) {
            float x = a.scp[k][a.items[t]], y = b.scp[k][b.items[t]];
            if (memcmp(&x, &y, sizeof x))
                fail_msg("channel %s item %d: %.9g fast, %.9g full", fu_kind_names[f->kind[k]],
                         (int)a.items[t], x, y);
        }
    }
    const int nf = fu_n_feats(f);
    float *xa = malloc((size_t)(a.n + 1) * nf * sizeof *xa),
          *xb = malloc((size_t)(a.n + 1) * nf * sizeof *xb);
    fu_features(f, &f->side, &a, user, h, xa);
    fu_features(f, &f->side, &b, user, h, xb);
    assert_memory_equal(xa, xb, (size_t)a.n * nf * sizeof *xa);
    free(xa);
    free(xb);
    fu_cands_free(&a);
    fu_cands_free(&b);
}

/* Item side data the filters read (the test's own, not the model's). */
static int32_t item_cat[NI];
static float item_price[NI];

/* A random filter: 0 none, 1 a category, 2 a price band, 3 random
 * exclusions, 4 category and price, 5 a narrow one (about 1% pass). */
static void random_filter(rf_rng *g, int kind, uint8_t *ex) {
    int c = (int)rf_rng_below(g, 13);
    float lo = (float)rf_rng_uniform(g) * 80, hi = lo + 5 + (float)rf_rng_uniform(g) * 40;
    for (int32_t j = 0; j < NI; j++) {
        int out = 0;
        if (kind == 1 || kind == 4) out |= item_cat[j] != c;
        if (kind == 2 || kind == 4) out |= item_price[j] < lo || item_price[j] > hi;
        if (kind == 3) out |= rf_rng_uniform(g) < 0.3;
        if (kind == 5) out |= rf_rng_uniform(g) >= 0.01;
        ex[j] = (uint8_t)out;
    }
}

/* The recommend op against the top-k of the full path's score vector for
 * one (user, h) under several filters and list lengths. */
static void same_lists(rf_model *m, rf_rng *g, int32_t user, const rf_hist *h, float *sc) {
    fu_impl *f = m->impl;
    rf_err err;
    uint8_t *ex = malloc(NI);
    rf_scored *ref = malloc(NI * sizeof *ref), *got = malloc(NI * sizeof *got);
    f->full_scan = 1;
    assert_int_equal(rf_model_score_all(m, user, h, sc, &err), 0);
    f->full_scan = 0;
    for (int32_t t = 0; t < h->n; t++)
        if (h->items[t] >= 0 && h->items[t] < NI) sc[h->items[t]] = -INFINITY;
    static const int ks[] = {1, 3, 10, 57, 400, NI};
    for (int kind = 0; kind < 6; kind++) {
        random_filter(g, kind, ex);
        rf_filter flt = {.exclude = kind ? ex : NULL};
        for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
            int k = ks[q];
            int nr = rf_topk_select(sc, NI, k, flt.exclude, ref);
            for (int full = 0; full < 2; full++) { /* the op on both candidate paths */
                f->full_scan = full;
                int ng = rf_model_recommend(m, user, h, k, &flt, NULL, got, &err);
                f->full_scan = 0;
                if (ng != nr) fail_msg("user %d filter %d k %d: %d items, top-k has %d", user, kind, k, ng, nr);
                for (int t = 0; t < nr; t++)
                    if (got[t].id != ref[t].id || memcmp(&got[t].score, &ref[t].score, sizeof(float)))
                        fail_msg("user %d filter %d k %d rank %d: item %d (%.9g), top-k item %d (%.9g)",
                                 user, kind, k, t, got[t].id, got[t].score, ref[t].id, ref[t].score);
            }
        }
    }
    free(ex);
    free(ref);
    free(got);
}

static void check_model(const rf_dataset *d, const char *params) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("fusion", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, params, &err), 0);
    m->data_opts.binary = 1;
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    const fu_impl *f = m->impl;
    int nfac = 0;
    for (int k = 0; k < f->n_ch; k++) nfac += f->fix[k].perm != NULL;
    assert_int_equal(nfac, 1); /* the ials channel, indexed at fit */
    float *a = malloc(NI * sizeof *a), *b = malloc(NI * sizeof *b);
    int npruned = 0, ncases = 0;
    for (int32_t u = 0; u < d->n_users; u += 7) {
        rf_hist h;
        rf_hist_from_row(d, u, &h);
        npruned += same(m, u, &h, a, b); /* trained row */
        ncases++;
        rf_hist h2;
        rf_hist_from_row(d, (u + 5) % d->n_users, &h2);
        npruned += same(m, u, &h2, a, b); /* trained row, another history */
        npruned += same(m, -1, &h, a, b); /* unknown user: fold-in of h */
        ncases += 2;
    }
    rf_hist empty = {0, NULL, NULL, NULL};
    same(m, -1, &empty, a, b);  /* cold: the pop fallback */
    same(m, 3, &empty, a, b);   /* trained row, no history */
    int32_t odd[3] = {NI - 1, 5, 17}; /* unsorted history, no weights */
    rf_hist ho = {3, odd, NULL, NULL};
    npruned += same(m, -1, &ho, a, b);
    assert_true(npruned >= ncases * 9 / 10); /* the test is about the pruned path */
    free(a);
    free(b);
    rf_model_free(m);
}

/* Every default channel (ease included on this catalog size): the
 * candidates and the recommend op's lists on the fast paths equal the
 * full path's for known, unknown, empty, fold-in and odd histories. */
static void check_default_channels(const rf_dataset *d) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("fusion", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "trees=30,min_leaf=5", &err), 0);
    m->data_opts.binary = 1;
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    fu_impl *f = m->impl;
    int nsparse = 0;
    for (int k = 0; k < f->n_ch; k++) nsparse += f->sparse[k];
    assert_int_equal(nsparse, 3); /* itemknn, userknn, rules */
    assert_non_null(rf_fusion_channel(m, "ease"));
    rf_rng g;
    rf_rng_seed(&g, 17);
    for (int32_t j = 0; j < NI; j++) {
        item_cat[j] = (int32_t)rf_rng_below(&g, 13);
        item_price[j] = (float)(rf_rng_uniform(&g) * 100);
    }
    float *sc = malloc(NI * sizeof *sc);
    int64_t *ts = malloc(NI * sizeof *ts);
    for (int32_t u = 0; u < d->n_users; u += 23) {
        rf_hist h, h2;
        rf_hist_from_row_ts(d, u, ts, &h);
        same_cands(f, u, &h);
        same_lists(m, &g, u, &h, sc); /* trained row, with times */
        rf_hist_from_row(d, (u + 5) % d->n_users, &h2);
        same_cands(f, u, &h2);
        same_lists(m, &g, u, &h2, sc); /* another history */
        same_cands(f, -1, &h2);
        same_lists(m, &g, -1, &h2, sc); /* unknown user: fold-in */
    }
    rf_hist empty = {0, NULL, NULL, NULL};
    same_lists(m, &g, -1, &empty, sc); /* cold: the pop channel's order */
    same_cands(f, 3, &empty);
    same_lists(m, &g, 3, &empty, sc); /* trained user, no history */
    int32_t odd[4] = {NI - 1, 5, NI + 7, 17}; /* unsorted, one unknown id, no weights */
    rf_hist ho = {4, odd, NULL, NULL};
    same_cands(f, -1, &ho);
    same_lists(m, &g, -1, &ho, sc);
    int64_t from_cands, from_full;
    fu_pool_stats(f, &from_cands, &from_full);
    assert_true(from_cands > 0 && from_full > 0); /* both branches ran */
    /* failed allocations on the serving path (an empty pool: the scratch
     * is allocated too; the full branch's vector for k = 1000): RF_ENOMEM or
     * the right list, and the model serves correctly afterwards */
    rf_hist hu;
    rf_hist_from_row(d, 11, &hu);
    rf_scored ref[1000], got[1000];
    for (int k = 10; k <= 1000; k += 990) {
        int nr = rf_model_recommend(m, -1, &hu, k, NULL, NULL, ref, &err);
        assert_true(nr > 0);
        int failed = 0;
        for (long fail = 0; fail < 200; fail++) {
            fu_pool_free(f);
            assert_int_equal(fu_pool_new(f), 0);
            rf_mem_fail_after(fail);
            int rc = rf_model_recommend(m, -1, &hu, k, NULL, NULL, got, &err);
            rf_mem_fail_after(-1);
            if (rc == RF_ENOMEM) {
                failed++;
                continue;
            }
            assert_int_equal(rc, nr);
            assert_memory_equal(got, ref, (size_t)nr * sizeof *got);
            break;
        }
        assert_true(failed > 0);
        assert_int_equal(rf_model_recommend(m, -1, &hu, k, NULL, NULL, got, &err), nr);
        assert_memory_equal(got, ref, (size_t)nr * sizeof *got);
        /* a scratch that saw a failure mid-request goes back to the pool
         * and serves the next request - another user's - exactly */
        rf_hist hv;
        rf_hist_from_row(d, 12, &hv);
        rf_scored ref2[1000];
        int nr2 = rf_model_recommend(m, -1, &hv, k, NULL, NULL, ref2, &err);
        assert_true(nr2 > 0);
        for (long fail = 0; fail < 40; fail++) {
            rf_mem_fail_after(fail);
            int rc = rf_model_recommend(m, -1, &hu, k, NULL, NULL, got, &err);
            rf_mem_fail_after(-1);
            assert_true(rc == RF_ENOMEM || rc == nr);
            assert_int_equal(rf_model_recommend(m, -1, &hv, k, NULL, NULL, got, &err), nr2);
            assert_memory_equal(got, ref2, (size_t)nr2 * sizeof *got);
        }
    }
    free(sc);
    free(ts);
    rf_model_free(m);
}

static void test_pruned_equals_full(void **state) {
    (void)state;
    rf_events *ev = gen();
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    rf_dataset *d;
    rf_err err;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), 0);
    d->events = ev;
    check_model(d, "itemknn=30,userknn=20,ials=40,ease=0,pop=10,trending=10,rules=10,"
                   "trees=30,min_leaf=5");
    check_model(d, "itemknn=0,userknn=0,ials=40,ease=0,pop=10,trending=10,rules=0,"
                   "ranker=weighted");
    check_default_channels(d);
    rf_dataset_free(d);
    rf_events_free(ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pruned_equals_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
