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
 *     from 1 to past the candidate count; both of its branches are taken;
 *   - repeat purchases (rf_filter.allow_history: the history items the
 *     filter lets through join the candidates): the same on both paths,
 *     never an excluded or other history item, the default list's order
 *     for everything else (check_repeat).
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

/* Build the candidates of (user, h): keep 0 fu_cands_build, else
 * fu_cands_build_hist with exclude ex (after making room). */
static void build_cands(fu_cands *c, fu_impl *f, int32_t user, const rf_hist *h, int keep,
                        const uint8_t *ex) {
    rf_err err;
    if (!keep) {
        assert_int_equal(fu_cands_build(c, f, user, h, &err), 0);
        return;
    }
    int32_t need = h->n;
    for (int k = 0; k < f->n_ch; k++) need += f->cand[k];
    assert_int_equal(fu_cands_reserve(c, need), 0);
    if (fu_cands_build_hist(c, f, user, h, ex, &err)) fail_msg("build_hist: %s", err.msg);
}

/* The candidates of (user, h) on the fast and the full path: the same
 * items, ranks, channel scores and feature rows (keep, ex: the history
 * items that join, as build_cands). */
static void same_cands_ex(fu_impl *f, int32_t user, const rf_hist *h, int keep,
                          const uint8_t *ex) {
    fu_cands a, b;
    assert_int_equal(fu_cands_init(&a, f, NI), 0);
    assert_int_equal(fu_cands_init(&b, f, NI), 0);
    f->full_scan = 0;
    build_cands(&a, f, user, h, keep, ex);
    f->full_scan = 1;
    build_cands(&b, f, user, h, keep, ex);
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

static void same_cands(fu_impl *f, int32_t user, const rf_hist *h) {
    same_cands_ex(f, user, h, 0, NULL);
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

/* 1 if j is in h. */
static int in_hist(const rf_hist *h, int32_t j) {
    for (int32_t t = 0; t < h->n; t++)
        if (h->items[t] == j) return 1;
    return 0;
}

/* rf_model_recommend on the fast path, then on the full path: the same
 * list bit for bit; returns its length. */
static int rec_both(rf_model *m, int32_t user, const rf_hist *h, int k, const rf_filter *flt,
                    rf_scored *out, rf_scored *tmp) {
    fu_impl *f = m->impl;
    rf_err err;
    int n = rf_model_recommend(m, user, h, k, flt, NULL, out, &err);
    if (n < 0) fail_msg("recommend: %s", err.msg);
    f->full_scan = 1;
    int n2 = rf_model_recommend(m, user, h, k, flt, NULL, tmp, &err);
    f->full_scan = 0;
    assert_int_equal(n, n2);
    for (int t = 0; t < n; t++)
        if (out[t].id != tmp[t].id || memcmp(&out[t].score, &tmp[t].score, sizeof(float)))
            fail_msg("user %d k %d rank %d: item %d (%.9g) fast, %d (%.9g) full", user, k, t,
                     out[t].id, out[t].score, tmp[t].id, tmp[t].score);
    return n;
}

/* rf_model_recommend(m, -1, h, k, flt) with an empty pool (the scratch
 * is allocated too) failing the Nth allocation, N = 0, 1, ... until it
 * succeeds: RF_ENOMEM or the list ref (nr items). Returns the failures. */
static int oom_sweep(rf_model *m, const rf_hist *h, int k, const rf_filter *flt,
                     const rf_scored *ref, int nr) {
    fu_impl *f = m->impl;
    rf_err err;
    rf_scored *got = malloc((size_t)k * sizeof *got);
    int failed = 0;
    for (long fail = 0; fail < 200; fail++) {
        fu_pool_free(f);
        assert_int_equal(fu_pool_new(f), 0);
        rf_mem_fail_after(fail);
        int rc = rf_model_recommend(m, -1, h, k, flt, NULL, got, &err);
        rf_mem_fail_after(-1);
        if (rc == RF_ENOMEM) {
            failed++;
            continue;
        }
        assert_int_equal(rc, nr);
        assert_memory_equal(got, ref, (size_t)nr * sizeof *got);
        break;
    }
    free(got);
    return failed;
}

/* Repeat purchases (rf_filter.allow_history) for one (user, h) under a
 * random filter ex, a random half of the history let through:
 *   - the candidates with those items joining are the same on the fast
 *     and the full path (items, ranks, channel scores, feature rows), and
 *     so are the recommend op's lists, bit for bit;
 *   - a list holds no excluded item and no history item but the let-
 *     through ones; without those it is the default list's prefix (ids,
 *     and scores when no filter applies and k = 10): the other candidates
 *     score exactly as without repeats;
 *   - the list at k is the prefix of the list at NI (both branches);
 *   - the whole history excluded gives the default list bit for bit;
 *   - explanations of let-through items say "repeat" and cite the item.
 * Returns how many let-through items made the lists. */
static int64_t repeat_case(rf_model *m, rf_rng *g, int kind, int32_t user, const rf_hist *h) {
    fu_impl *f = m->impl;
    rf_err err;
    uint8_t *ex = malloc(NI), *exh = malloc(NI), *allowed = calloc(NI, 1);
    rf_scored *a = malloc(NI * sizeof *a), *tmp = malloc(NI * sizeof *tmp),
              *def = malloc(NI * sizeof *def), *big = malloc(NI * sizeof *big);
    random_filter(g, kind, ex);
    memcpy(exh, ex, NI);
    for (int32_t t = 0; t < h->n; t++) {
        int32_t j = h->items[t];
        if (j < 0 || j >= NI) continue;
        if (rf_rng_uniform(g) < 0.5) exh[j] = 1;
        else allowed[j] = !ex[j];
    }
    same_cands_ex(f, user, h, 1, exh);
    rf_filter rep = {.exclude = exh, .allow_history = 1}, dflt = {.exclude = kind ? ex : NULL};
    int64_t n_rep = 0;
    int nbig = rec_both(m, user, h, NI, &rep, big, tmp);
    static const int ks[] = {1, 10, 57, 400};
    for (size_t x = 0; x < sizeof ks / sizeof ks[0]; x++) {
        int k = ks[x];
        int na = rec_both(m, user, h, k, &rep, a, tmp);
        assert_true(na <= nbig);
        assert_memory_equal(a, big, (size_t)na * sizeof *a);
        int nd = rf_model_recommend(m, user, h, k, &dflt, NULL, def, &err);
        assert_true(nd >= 0);
        int q = 0;
        for (int t = 0; t < na; t++) {
            int32_t j = a[t].id;
            assert_false(exh[j]);
            if (in_hist(h, j)) {
                assert_true(allowed[j]);
                n_rep++;
                continue;
            }
            if (q >= nd || def[q].id != j)
                fail_msg("user %d filter %d k %d: rank %d is %d, the default list's %d is %d",
                         user, kind, k, t, j, q, q < nd ? def[q].id : -1);
            if (kind == 0 && k == 10) assert_memory_equal(&def[q].score, &a[t].score, sizeof(float));
            q++;
        }
        if (k == 10 && na > 0) { /* explanations: the same on both paths, repeats said so */
            int32_t items[10];
            rf_reason ra[10], rb[10];
            for (int t = 0; t < na; t++) items[t] = a[t].id;
            assert_int_equal(rf_model_explain(m, user, h, items, na, ra, &err), 0);
            f->full_scan = 1;
            assert_int_equal(rf_model_explain(m, user, h, items, na, rb, &err), 0);
            f->full_scan = 0;
            assert_memory_equal(ra, rb, (size_t)na * sizeof *ra);
            for (int t = 0; t < na; t++) {
                double sum = 0;
                for (int c = 0; c < ra[t].n_contrib; c++) sum += ra[t].contrib[c].share;
                assert_true(fabs(sum - 1) < 1e-4);
                if (!in_hist(h, items[t])) continue;
                assert_string_equal(ra[t].kind, "repeat");
                assert_int_equal(ra[t].ref_item, items[t]);
            }
        }
    }
    /* the whole history excluded: exactly the default list */
    for (int32_t t = 0; t < h->n; t++)
        if (h->items[t] >= 0 && h->items[t] < NI) exh[h->items[t]] = 1;
    for (int k = 10; k <= NI; k += NI - 10) {
        int na = rec_both(m, user, h, k, &rep, a, tmp);
        int nd = rf_model_recommend(m, user, h, k, &dflt, NULL, def, &err);
        assert_int_equal(na, nd);
        assert_memory_equal(a, def, (size_t)na * sizeof *a);
    }
    free(ex);
    free(exh);
    free(allowed);
    free(a);
    free(tmp);
    free(def);
    free(big);
    return n_rep;
}

/* Repeat purchases over users with training rows, other histories,
 * unknown users, odd and empty histories, and a history longer than the
 * candidate lists together (the scratch grows; also under failed
 * allocations); some let-through items make the lists. */
static void check_repeat(rf_model *m, const rf_dataset *d, rf_rng *g) {
    fu_impl *f = m->impl;
    int64_t n_rep = 0;
    int kind = 0;
    for (int32_t u = 0; u < d->n_users; u += 41) {
        rf_hist h, h2;
        rf_hist_from_row(d, u, &h);
        rf_hist_from_row(d, (u + 5) % d->n_users, &h2);
        n_rep += repeat_case(m, g, kind++ % 6, u, &h);
        n_rep += repeat_case(m, g, kind++ % 6, u, &h2);
        n_rep += repeat_case(m, g, kind++ % 6, -1, &h);
    }
    rf_hist empty = {0, NULL, NULL, NULL};
    repeat_case(m, g, 0, -1, &empty);
    repeat_case(m, g, 3, 3, &empty);
    int32_t odd[4] = {NI - 1, 5, NI + 7, 17};
    rf_hist ho = {4, odd, NULL, NULL};
    repeat_case(m, g, 0, -1, &ho);
    printf("  repeat: %lld let-through history items in the lists\n", (long long)n_rep);
    assert_true(n_rep > 0);
    /* 700 history items, all let through: more candidates than the
     * channels' lists hold together */
    int32_t ncand = 0;
    for (int k = 0; k < f->n_ch; k++) ncand += f->cand[k];
    int32_t *many = malloc(700 * sizeof *many);
    for (int32_t t = 0; t < 700; t++) many[t] = (int32_t)((t * 7) % NI);
    rf_hist hm = {700, many, NULL, NULL};
    same_cands_ex(f, -1, &hm, 1, NULL);
    fu_cands c;
    assert_int_equal(fu_cands_init(&c, f, NI), 0);
    build_cands(&c, f, -1, &hm, 1, NULL);
    assert_true(c.n > ncand); /* the union outgrew the lists */
    fu_cands_free(&c);
    rf_filter all = {.exclude = NULL, .allow_history = 1};
    rf_scored *ref = malloc(NI * sizeof *ref), *got = malloc(NI * sizeof *got);
    int nr = rec_both(m, -1, &hm, 50, &all, ref, got);
    assert_int_equal(nr, 50);
    int nh = 0;
    for (int t = 0; t < nr; t++) nh += in_hist(&hm, ref[t].id);
    assert_true(nh > 0);
    assert_true(oom_sweep(m, &hm, 50, &all, ref, nr) > 0); /* the reserve fails too */
    free(ref);
    free(got);
    free(many);
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
    check_repeat(m, d, &g);
    /* failed allocations on the serving path (an empty pool: the scratch
     * is allocated too; the full branch's vector for k = 1000): RF_ENOMEM or
     * the right list, and the model serves correctly afterwards */
    rf_hist hu;
    rf_hist_from_row(d, 11, &hu);
    rf_scored ref[1000], got[1000];
    for (int k = 10; k <= 1000; k += 990) {
        int nr = rf_model_recommend(m, -1, &hu, k, NULL, NULL, ref, &err);
        assert_true(nr > 0);
        assert_true(oom_sweep(m, &hu, k, NULL, ref, nr) > 0);
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
