/* test_ranker.c - the learning-to-rank library (ranker.h, src/rank):
 * histogram split finding against an exhaustive search, LambdaMART
 * gradients against finite differences and |delta NDCG| against a
 * brute-force recomputation, NDCG against hand-computed values, learning
 * on planted nonlinear relevance (GBDT > linear > random), early
 * stopping keeping the best round, same model for 1 and 2 threads,
 * contributions adding up to the score, save/load round trips and
 * corrupt payloads, and input errors naming the row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank/rank_int.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/ranker.h"
#include "recfuse/rng.h"
#include "testutil.h"

/* ---- split finding -------------------------------------------------------- */

/* Exhaustive: every feature, threshold bin and NAN side, sums straight
 * from the rows. */
static rk_split brute_split(const rk_bins *b, const float *g, const float *h, int64_t n,
                            const rk_split_cfg *cfg) {
    rk_split best = {.feat = -1};
    double G = 0, H = 0;
    for (int64_t i = 0; i < n; i++) G += g[i], H += h[i];
    for (int32_t f = 0; f < b->n_feats; f++) {
        for (int t = 1; t < b->nb[f]; t++)
            for (int dl = 0; dl < 2; dl++) {
                double lg = 0, lh = 0;
                int64_t ln = 0;
                for (int64_t i = 0; i < n; i++) {
                    int bin = b->bin[i * b->n_feats + f];
                    int left = bin == 0 ? dl : bin <= t;
                    if (left) lg += g[i], lh += h[i], ln++;
                }
                double rg = G - lg, rh = H - lh;
                int64_t rn = n - ln;
                if (ln < cfg->min_leaf || rn < cfg->min_leaf || lh < cfg->min_hess ||
                    rh < cfg->min_hess)
                    continue;
                double gain = lg * lg / (lh + cfg->l2) + rg * rg / (rh + cfg->l2) -
                              G * G / (H + cfg->l2);
                if (gain > best.gain + 1e-12) {
                    best.gain = gain;
                    best.feat = f;
                    best.bin = t;
                    best.dleft = dl;
                }
            }
    }
    return best;
}

static void test_split_matches_bruteforce(void **state) {
    (void)state;
    for (int trial = 0; trial < 20; trial++) {
        rf_rng r;
        rf_rng_seed(&r, 100 + trial);
        const int64_t n = 150 + 10 * trial;
        const int32_t nf = 5;
        float *x = malloc(n * nf * sizeof *x), *g = malloc(n * sizeof *g), *h = malloc(n * sizeof *h);
        for (int64_t i = 0; i < n; i++) {
            for (int32_t f = 0; f < nf; f++) {
                double u = rf_rng_normal(&r);
                x[i * nf + f] = f == 1 ? (float)floor(3 * u) : (float)u; /* few distinct values */
                if (f >= 3 && rf_rng_uniform(&r) < 0.1) x[i * nf + f] = NAN;
            }
            g[i] = (float)(rf_rng_normal(&r) + (x[i * nf + 2] > 0.3f ? 0.8 : 0));
            h[i] = (float)(0.1 + rf_rng_uniform(&r));
        }
        rk_bins b;
        assert_int_equal(rk_bins_build(&b, x, n, nf, 8 + trial, 1, NULL), 0);
        /* bins agree with the raw thresholds */
        for (int32_t f = 0; f < nf; f++) {
            assert_true(b.nb[f] >= 1 && b.nb[f] <= 8 + trial);
            for (int64_t i = 0; i < n; i++) {
                float v = x[i * nf + f];
                int bin = b.bin[i * nf + f];
                if (isnan(v)) {
                    assert_int_equal(bin, 0);
                    continue;
                }
                assert_true(bin >= 1 && v <= b.upper[f][bin]);
                if (bin > 1) assert_true(v > b.upper[f][bin - 1]);
            }
        }
        int32_t *idx = malloc(n * sizeof *idx);
        for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)i;
        rk_split_cfg cfg = {.l2 = 0.5, .min_hess = 1e-3, .min_leaf = 5 + trial % 4};
        double G = 0, H = 0;
        for (int64_t i = 0; i < n; i++) G += g[i], H += h[i];
        rk_split best = {.feat = -1};
        /* all features at once, and each feature alone (must agree); the
         * histogram of two halves of the rows adds up to the whole */
        enum { HB = 64 };
        rk_hist hist[5 * HB], one[5 * HB], part[5 * HB], rest[5 * HB];
        int32_t feats[5] = {0, 1, 2, 3, 4};
        rk_hist_build(b.bin, nf, idx, g, h, n, feats, nf, b.nb, hist, HB);
        rk_hist_build(b.bin, nf, idx, g, h, n / 3, feats, nf, b.nb, part, HB);
        rk_hist_build(b.bin, nf, idx + n / 3, g + n / 3, h + n / 3, n - n / 3, feats, nf, b.nb,
                      rest, HB);
        for (int32_t f = 0; f < nf; f++) {
            rk_hist_build(b.bin, nf, idx, g, h, n, feats + f, 1, b.nb, one, HB);
            for (int k = 0; k <= b.nb[f]; k++) {
                const rk_hist *e = hist + f * HB + k;
                assert_memory_equal(e, one + f * HB + k, sizeof *e);
                assert_int_equal(part[f * HB + k].n + rest[f * HB + k].n, e->n);
                assert_true(fabs(part[f * HB + k].g + rest[f * HB + k].g - e->g) < 1e-9);
            }
            rk_split s = rk_best_split_feature(hist + f * HB, b.nb[f], G, H, n, &cfg, f);
            if (s.gain > best.gain) best = s;
        }
        rk_split ref = brute_split(&b, g, h, n, &cfg);
        assert_true(ref.feat >= 0);
        if (fabs(best.gain - ref.gain) > 1e-9 * (1 + ref.gain))
            fail_msg("trial %d: gain %.12g vs brute force %.12g", trial, best.gain, ref.gain);
        assert_int_equal(best.feat, ref.feat);
        assert_int_equal(best.bin, ref.bin);
        /* NAN side matters only when the feature has NANs */
        int has_nan = 0;
        for (int64_t i = 0; i < n; i++) has_nan |= b.bin[i * nf + ref.feat] == 0;
        if (has_nan) assert_int_equal(best.dleft, ref.dleft);
        rk_bins_free(&b);
        free(x), free(g), free(h), free(idx);
    }
}

/* ---- LambdaMART gradients ------------------------------------------------ */

/* Pairwise logistic loss with fixed pair weights w[hi * n + lo]. */
static double pair_loss(const float *lab, const double *s, int n, const double *w) {
    double L = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (lab[i] > lab[j]) L += w[i * n + j] * log1p(exp(-(s[i] - s[j])));
    return L;
}

/* NDCG@k of one group under double scores (via the public metric). */
static double ndcg_of(const float *lab, const double *s, int n, int k) {
    float fs[64];
    for (int i = 0; i < n; i++) fs[i] = (float)s[i];
    int64_t grp[2] = {0, n};
    float x = 0;
    rf_rank_data d = {.n_rows = n, .n_feats = 1, .x = &x, .label = lab, .n_groups = 1,
                      .group = grp};
    return rf_rank_ndcg(&d, fs, k);
}

static void check_lambda(int weighted, int k, uint64_t seed) {
    enum { N = 14 };
    rf_rng r;
    rf_rng_seed(&r, seed);
    float lab[N];
    double s[N], w[N * N], scr[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (float)rf_rng_below(&r, 4);
        s[i] = rf_rng_normal(&r);
    }
    lab[0] = 3, lab[1] = 0;
    /* pair weights: 1, or |delta NDCG@k| of swapping the two scores */
    double base = ndcg_of(lab, s, N, k);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            w[i * N + j] = 1;
            if (!weighted || lab[i] <= lab[j]) continue;
            double t[N];
            memcpy(t, s, sizeof t);
            t[i] = s[j], t[j] = s[i];
            w[i * N + j] = fabs(ndcg_of(lab, t, N, k) - base);
        }
    rk_lambda_ws ws;
    assert_int_equal(rk_ws_init(&ws, N), 0);
    float g[N], h[N];
    int flags = RK_LAMBDA_NO_NORM | (weighted ? 0 : RK_LAMBDA_NO_WEIGHT);
    rk_lambda_group(lab, s, N, k, flags, seed % 2 ? 0 : rk_ideal_dcg(lab, N, k, scr), &ws, g, h);
    const double e = 1e-5;
    for (int i = 0; i < N; i++) {
        double t[N];
        memcpy(t, s, sizeof t);
        t[i] = s[i] + e;
        double lp = pair_loss(lab, t, N, w);
        t[i] = s[i] - e;
        double lm = pair_loss(lab, t, N, w);
        double l0 = pair_loss(lab, s, N, w);
        double fd = (lp - lm) / (2 * e), fd2 = (lp - 2 * l0 + lm) / (e * e);
        if (fabs(fd - g[i]) > 1e-4 * (1 + fabs(fd)))
            fail_msg("weighted %d k %d row %d: gradient %.8f vs finite difference %.8f", weighted,
                     k, i, g[i], fd);
        if (fabs(fd2 - h[i]) > 2e-3 * (1 + fabs(fd2)))
            fail_msg("weighted %d k %d row %d: hessian %.8f vs finite difference %.8f", weighted,
                     k, i, h[i], fd2);
    }
    /* with LightGBM's normalisation the gradients still sum to zero; the
     * unweighted ones are only rescaled */
    float gn[N], hn[N];
    rk_lambda_group(lab, s, N, k, weighted ? 0 : RK_LAMBDA_NO_WEIGHT, 0, &ws, gn, hn);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        sum += gn[i];
        assert_true(hn[i] >= 0);
        if (!weighted) assert_true((gn[i] > 0) == (g[i] > 0) || fabs(gn[i]) < 1e-6);
    }
    assert_true(fabs(sum) < 1e-5);
    rk_ws_free(&ws);
}

static void test_lambda_gradients(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        check_lambda(0, 0, seed);
        check_lambda(1, 0, seed);
        check_lambda(1, 5, seed);
    }
}

static void test_delta_ndcg_bruteforce(void **state) {
    (void)state;
    enum { N = 20 };
    rf_rng r;
    rf_rng_seed(&r, 9);
    float lab[N], lab_pos[N];
    double s[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (float)rf_rng_below(&r, 5);
        s[i] = -i; /* position = row */
        lab_pos[i] = lab[i];
    }
    double scratch[N];
    for (int k = 0; k <= 12; k += 4) {
        double idcg = rk_ideal_dcg(lab, N, k, scratch);
        double base = ndcg_of(lab, s, N, k);
        for (int a = 0; a < N; a++)
            for (int b = a + 1; b < N; b++) {
                double t[N];
                memcpy(t, s, sizeof t);
                t[a] = s[b], t[b] = s[a];
                double ref = fabs(ndcg_of(lab, t, N, k) - base);
                double got = rk_delta_ndcg(lab_pos, N, k, a, b, idcg);
                if (fabs(ref - got) > 1e-12) fail_msg("k %d swap %d,%d: %g vs %g", k, a, b, got, ref);
            }
    }
}

/* ---- NDCG ------------------------------------------------------------------ */

static void test_ndcg_hand(void **state) {
    (void)state;
    /* group 0: labels 0 2 1 0, scores .9 .1 .5 .3 -> ranking rows 0 2 3 1
     * group 1: no positive (ignored)
     * group 2: labels 0 1 with tied scores -> row 0 first */
    float lab[] = {0, 2, 1, 0, 0, 0, 0, 1};
    float sc[] = {0.9f, 0.1f, 0.5f, 0.3f, 1, 2, 0.5f, 0.5f};
    int64_t grp[] = {0, 4, 6, 8};
    float x[8] = {0};
    rf_rank_data d = {.n_rows = 8, .n_feats = 1, .x = x, .label = lab, .n_groups = 3,
                      .group = grp};
    /* full: DCG = 1/log2(3) + 3/log2(5), IDCG = 3 + 1/log2(3) */
    double g0 = (1 / log2(3.0) + 3 / log2(5.0)) / (3 + 1 / log2(3.0));
    double g2 = 1 / log2(3.0);
    assert_true(fabs(rf_rank_ndcg(&d, sc, 0) - (g0 + g2) / 2) < 1e-12);
    /* @2: DCG = 1/log2(3), IDCG = 3 + 1/log2(3) */
    double h0 = (1 / log2(3.0)) / (3 + 1 / log2(3.0));
    assert_true(fabs(rf_rank_ndcg(&d, sc, 2) - (h0 + g2) / 2) < 1e-12);
    /* @1: group 0 gets 0, group 2 gets 0 (row 0 first on the tie) */
    assert_true(fabs(rf_rank_ndcg(&d, sc, 1)) < 1e-12);
    assert_true(fabs(0.5296 - g0) < 1e-4); /* the value worked out by hand */
}

/* ---- learning ----------------------------------------------------------------- */

static double random_ndcg(const rf_rank_data *d, uint64_t seed) {
    float *s = malloc(d->n_rows * sizeof *s);
    rf_rng r;
    rf_rng_seed(&r, seed);
    for (int64_t i = 0; i < d->n_rows; i++) s[i] = (float)rf_rng_uniform(&r);
    double v = rf_rank_ndcg(d, s, 10);
    free(s);
    return v;
}

static double model_ndcg(const rf_ranker *m, const rf_rank_data *d) {
    float *s = malloc(d->n_rows * sizeof *s);
    rf_ranker_predict(m, d->x, d->n_rows, s);
    double v = rf_rank_ndcg(d, s, 10);
    free(s);
    return v;
}

static void test_learning(void **state) {
    (void)state;
    rk_synth tr, va, te;
    assert_int_equal(rk_synth_make(&tr, 300, 50, 10, 11), 0);
    assert_int_equal(rk_synth_make(&va, 100, 50, 10, 12), 0);
    assert_int_equal(rk_synth_make(&te, 200, 50, 10, 13), 0);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.n_trees = 200;
    o.learning_rate = 0.1;
    rf_err err;
    rf_ranker *gb = NULL, *lin = NULL;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, &va.d, &gb, &err), 0);
    o.kind = RF_RANKER_LINEAR;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &lin, &err), 0);
    double ng = model_ndcg(gb, &te.d), nl = model_ndcg(lin, &te.d), nr = random_ndcg(&te.d, 5);
    print_message("NDCG@10 held out: gbdt %.4f (%d trees), linear %.4f, random %.4f\n", ng,
                  rf_ranker_n_trees(gb), nl, nr);
    assert_true(ng > nl + 0.03);
    assert_true(nl > nr + 0.1);
    /* the trees found the planted features */
    double imp[10];
    rf_ranker_importance(gb, imp);
    for (int f = 4; f < 10; f++) assert_true(imp[f] < imp[0] && imp[f] < imp[1]);
    rf_ranker_free(gb);
    rf_ranker_free(lin);
    rk_synth_free(&tr), rk_synth_free(&va), rk_synth_free(&te);
}

/* The early-stopped model equals the first B rounds of an unstopped run
 * with the same options, and B is the best of those rounds on valid. */
static void test_early_stopping_keeps_best(void **state) {
    (void)state;
    rk_synth tr, va;
    assert_int_equal(rk_synth_make(&tr, 60, 30, 8, 21), 0);
    assert_int_equal(rk_synth_make(&va, 60, 30, 8, 22), 0);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.n_trees = 300;
    o.learning_rate = 0.3;
    o.min_leaf = 3;
    o.early_stop = 10;
    rf_ranker *a = NULL, *c = NULL;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, &va.d, &a, NULL), 0);
    int B = rf_ranker_n_trees(a);
    assert_true(B >= 1 && B < 300);
    o.n_trees = B + o.early_stop;
    o.early_stop = 0;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, &va.d, &c, NULL), 0);
    assert_int_equal(rf_ranker_n_trees(c), B + 10);
    double best = -1;
    int best_t = 0;
    for (int t = 1; t <= B + 10; t++) {
        c->n_trees = t;
        double v = model_ndcg(c, &va.d);
        if (v > best + 1e-9) best = v, best_t = t;
    }
    assert_int_equal(best_t, B);
    c->n_trees = B;
    float *pa = malloc(va.d.n_rows * sizeof *pa), *pc = malloc(va.d.n_rows * sizeof *pc);
    rf_ranker_predict(a, va.d.x, va.d.n_rows, pa);
    rf_ranker_predict(c, va.d.x, va.d.n_rows, pc);
    assert_memory_equal(pa, pc, va.d.n_rows * sizeof *pa);
    c->n_trees = B + 10;
    free(pa), free(pc);
    rf_ranker_free(a), rf_ranker_free(c);
    rk_synth_free(&tr), rk_synth_free(&va);
}

/* The linear ranker with early stopping keeps the best epoch: its
 * weights equal an unstopped run of that many epochs (the learning-rate
 * schedule and the pair draws do not depend on the epoch count). */
static void test_linear_early_stopping(void **state) {
    (void)state;
    rk_synth tr, va;
    assert_int_equal(rk_synth_make(&tr, 40, 30, 6, 91), 0);
    assert_int_equal(rk_synth_make(&va, 40, 30, 6, 92), 0);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.kind = RF_RANKER_LINEAR;
    o.epochs = 25;
    o.lin_lr = 0.5;
    o.early_stop = 3;
    rf_ranker *a = NULL;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, &va.d, &a, NULL), 0);
    /* the stopping rule replayed on unstopped runs of 1, 2, ... epochs */
    double best = -1;
    int best_e = 0;
    rf_ranker *pick = NULL;
    for (int e = 1; e <= 25; e++) {
        rf_ranker_opts oe = o;
        oe.epochs = e;
        oe.early_stop = 0;
        rf_ranker *m = NULL;
        assert_int_equal(rf_ranker_fit(&oe, &tr.d, &va.d, &m, NULL), 0);
        double v = model_ndcg(m, &va.d);
        if (v > best) {
            best = v;
            best_e = e;
            rf_ranker_free(pick);
            pick = m;
        }
        else
            rf_ranker_free(m);
        if (e - best_e >= o.early_stop) break;
    }
    print_message("linear early stopping: best epoch %d, valid NDCG@10 %.4f\n", best_e, best);
    assert_memory_equal(a->w, pick->w, 6 * sizeof *a->w);
    rf_ranker_free(a);
    rf_ranker_free(pick);
    rk_synth_free(&tr), rk_synth_free(&va);
}

/* Empty groups, single-row groups and groups without a positive mixed
 * with ordinary ones: both kinds train, with validation, and NDCG skips
 * what has no positive. */
static void test_odd_groups(void **state) {
    (void)state;
    enum { NF = 4 };
    const int64_t sizes[] = {0, 1, 25, 0, 40, 2, 1, 30, 0};
    const int ng = sizeof sizes / sizeof *sizes;
    int64_t grp[16] = {0};
    for (int q = 0; q < ng; q++) grp[q + 1] = grp[q] + sizes[q];
    const int64_t n = grp[ng];
    float *x = malloc(n * NF * sizeof *x), *lab = malloc(n * sizeof *lab);
    rf_rng r;
    rf_rng_seed(&r, 101);
    for (int64_t i = 0; i < n; i++) {
        for (int f = 0; f < NF; f++) x[i * NF + f] = (float)rf_rng_normal(&r);
        lab[i] = x[i * NF] > 0.5f ? 1.0f : 0.0f;
    }
    for (int64_t i = grp[7]; i < grp[8]; i++) lab[i] = 0; /* no positive */
    rf_rank_data d = {.n_rows = n, .n_feats = NF, .x = x, .label = lab, .n_groups = ng,
                      .group = grp};
    for (int kind = 0; kind < 2; kind++) {
        rf_ranker_opts o;
        rf_ranker_opts_default(&o);
        o.kind = (rf_ranker_kind)kind;
        o.n_trees = 30;
        o.min_leaf = 2;
        rf_ranker *m = NULL;
        rf_err err;
        assert_int_equal(rf_ranker_fit(&o, &d, &d, &m, &err), 0);
        float *p = malloc(n * sizeof *p);
        rf_ranker_predict(m, x, n, p);
        double v = rf_rank_ndcg(&d, p, 10);
        assert_true(v > 0.9); /* the label is a threshold on feature 0 */
        free(p);
        rf_ranker_free(m);
    }
    free(x), free(lab);
}

/* ---- determinism ------------------------------------------------------------ */

static void test_threads_same_model(void **state) {
    (void)state;
    rk_synth tr, va;
    assert_int_equal(rk_synth_make(&tr, 100, 40, 10, 31), 0);
    assert_int_equal(rk_synth_make(&va, 30, 40, 10, 32), 0);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.n_trees = 40;
    o.feature_fraction = 0.7;
    o.row_fraction = 0.8;
    o.early_stop = 5;
    rk_set_par_thresholds(1, 1); /* every loop parallel, even on this small data */
    float *p[2];
    int trees[2];
    for (int k = 0; k < 2; k++) {
        rf_set_threads(k + 1);
        rf_ranker *m = NULL;
        assert_int_equal(rf_ranker_fit(&o, &tr.d, &va.d, &m, NULL), 0);
        trees[k] = rf_ranker_n_trees(m);
        p[k] = malloc(tr.d.n_rows * sizeof *p[k]);
        rf_ranker_predict(m, tr.d.x, tr.d.n_rows, p[k]);
        rf_ranker_free(m);
    }
    rf_set_threads(0);
    rk_set_par_thresholds(0, 0);
    assert_int_equal(trees[0], trees[1]);
    assert_memory_equal(p[0], p[1], tr.d.n_rows * sizeof *p[0]);
    free(p[0]), free(p[1]);
    rk_synth_free(&tr), rk_synth_free(&va);
}

/* ---- prediction against a plain tree walk -------------------------------- */

/* Reference: walk the stored nodes of every tree, NAN to the learned side. */
static float ref_predict(const rf_ranker *m, const float *x) {
    double acc = 0;
    for (int t = 0; t < m->n_trees; t++) {
        const rk_node *nd = m->nodes + m->node_off[t];
        const float *lv = m->leaf + m->leaf_off[t];
        int32_t c = m->node_off[t + 1] > m->node_off[t] ? 0 : ~0;
        while (c >= 0) {
            float v = x[nd[c].feat];
            int left = isnan(v) ? nd[c].dleft : v <= nd[c].thr;
            c = nd[c].child[!left];
        }
        acc += lv[~c];
    }
    return (float)acc;
}

static void test_predict_matches_reference(void **state) {
    (void)state;
    rk_synth tr;
    assert_int_equal(rk_synth_make(&tr, 60, 40, 7, 71), 0);
    rf_rng r;
    rf_rng_seed(&r, 72);
    for (int64_t i = 0; i < tr.d.n_rows * 7; i++) /* NANs everywhere, so both sides are learned */
        if (rf_rng_uniform(&r) < 0.08) tr.x[i] = NAN;
    enum { N = 203 };
    float x[N * 7], out[N], one;
    memcpy(x, tr.x, sizeof x);
    x[5 * 7 + 2] = INFINITY, x[6 * 7 + 0] = -INFINITY, x[9 * 7 + 4] = NAN;
    for (int depth = 0; depth <= 6; depth += 6) {
        rf_ranker_opts o;
        rf_ranker_opts_default(&o);
        o.n_trees = 25;
        o.max_depth = depth; /* 0: unlimited, deep unbalanced trees */
        o.min_leaf = 5;
        rf_ranker *m = NULL;
        assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, NULL), 0);
        const int nt = m->n_trees;
        for (int t = nt; t >= nt - 1; t--) { /* even and odd tree counts */
            m->n_trees = t;
            rf_ranker_predict(m, x, N, out);
            for (int i = 0; i < N; i++) {
                float ref = ref_predict(m, x + i * 7);
                if (memcmp(&ref, &out[i], sizeof ref))
                    fail_msg("depth %d trees %d row %d: %.9g vs reference %.9g", depth, t, i,
                             out[i], ref);
                rf_ranker_predict(m, x + i * 7, 1, &one);
                assert_memory_equal(&one, &ref, sizeof one);
            }
        }
        m->n_trees = nt;
        rf_ranker_free(m);
    }
    rk_synth_free(&tr);
    /* rows too wide for the blocked kernel (8 rows x 2 x 1100 floats >
     * its buffer) take the plain walk: same scores */
    rk_synth wide;
    assert_int_equal(rk_synth_make(&wide, 10, 20, 1100, 73), 0);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.n_trees = 6;
    o.min_leaf = 3;
    rf_ranker *m = NULL;
    assert_int_equal(rf_ranker_fit(&o, &wide.d, NULL, &m, NULL), 0);
    float wout[200];
    rf_ranker_predict(m, wide.x, 200, wout);
    float *wc = malloc(1100 * sizeof *wc), wb;
    for (int i = 0; i < 200; i++) {
        float ref = ref_predict(m, wide.x + (size_t)i * 1100);
        assert_memory_equal(&ref, &wout[i], sizeof ref);
        /* contributions take the plain walk too */
        rf_ranker_contrib(m, wide.x + (size_t)i * 1100, wc, &wb);
        double sum = wb;
        for (int f = 0; f < 1100; f++) sum += wc[f];
        assert_true(fabs(sum - ref) < 1e-4);
    }
    free(wc);
    rf_ranker_free(m);
    rk_synth_free(&wide);
}

/* ---- contributions ------------------------------------------------------------ */

static void test_contrib_sums_to_score(void **state) {
    (void)state;
    rk_synth tr;
    assert_int_equal(rk_synth_make(&tr, 80, 40, 6, 41), 0);
    for (int kind = 0; kind < 2; kind++) {
        rf_ranker_opts o;
        rf_ranker_opts_default(&o);
        o.kind = (rf_ranker_kind)kind;
        o.n_trees = 100;
        rf_ranker *m = NULL;
        assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, NULL), 0);
        for (int64_t i = 0; i < 200; i++) {
            float row[6], c[6], bias, pred;
            memcpy(row, tr.d.x + i * 6, sizeof row);
            if (i % 7 == 0) row[i % 6] = NAN;
            rf_ranker_predict(m, row, 1, &pred);
            rf_ranker_contrib(m, row, c, &bias);
            double s = bias;
            for (int f = 0; f < 6; f++) s += c[f];
            if (fabs(s - pred) > 1e-4)
                fail_msg("kind %d row %lld: bias + contrib %.6f vs score %.6f", kind,
                         (long long)i, s, pred);
            if (kind == RF_RANKER_GBDT) {
                /* reference Saabas on the stored nodes */
                double rc[6] = {0}, rb = 0;
                for (int t = 0; t < m->n_trees; t++) {
                    const rk_node *nd = m->nodes + m->node_off[t];
                    const float *lv = m->leaf + m->leaf_off[t];
                    if (m->node_off[t + 1] == m->node_off[t]) {
                        rb += lv[0];
                        continue;
                    }
                    rb += nd[0].value;
                    for (int32_t k = 0; k >= 0;) {
                        float v = row[nd[k].feat];
                        int left = isnan(v) ? nd[k].dleft : v <= nd[k].thr;
                        int32_t ch = nd[k].child[!left];
                        rc[nd[k].feat] += (ch >= 0 ? nd[ch].value : lv[~ch]) - nd[k].value;
                        k = ch;
                    }
                }
                assert_true(fabs(rb - bias) < 1e-5);
                for (int f = 0; f < 6; f++)
                    if (fabs(rc[f] - c[f]) > 1e-5)
                        fail_msg("row %lld feature %d: contrib %.7f vs reference %.7f",
                                 (long long)i, f, c[f], rc[f]);
            }
        }
        rf_ranker_free(m);
    }
    rk_synth_free(&tr);
}

/* ---- save / load ---------------------------------------------------------------- */

static const char MAGIC[8] = "RFRNKTST";

static int save_model(const rf_ranker *m, const char *path) {
    rf_writer *w;
    int rc = rf_writer_open(path, MAGIC, 1, &w, NULL);
    if (rc) return rc;
    rc = rf_ranker_save(m, w, NULL);
    if (rc) {
        rf_writer_abort(w);
        return rc;
    }
    return rf_writer_commit(w, NULL);
}

static int load_model(const char *path, rf_ranker **m, rf_err *err) {
    uint32_t ver;
    rf_reader *rd;
    int rc = rf_reader_open(path, MAGIC, 1, &ver, &rd, err);
    if (rc) return rc;
    rc = rf_ranker_load(rd, m, err);
    rf_reader_close(rd);
    return rc;
}

/* The payload of a saved model (without the binfile frame). */
static unsigned char *payload_of(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *all = malloc(sz);
    assert_int_equal(fread(all, 1, sz, f), (size_t)sz);
    fclose(f);
    *len = (size_t)sz - 16 - 12;
    unsigned char *p = malloc(*len + 1);
    memcpy(p, all + 16, *len);
    free(all);
    return p;
}

/* A correctly framed file holding `len` bytes of p; load result. */
static int load_payload(const char *path, const unsigned char *p, size_t len) {
    rf_writer *w;
    assert_int_equal(rf_writer_open(path, MAGIC, 1, &w, NULL), 0);
    rf_writer_put(w, p, len);
    assert_int_equal(rf_writer_commit(w, NULL), 0);
    rf_ranker *m = NULL;
    rf_err err;
    int rc = load_model(path, &m, &err);
    rf_ranker_free(m);
    return rc;
}

static void test_save_load(void **state) {
    (void)state;
    char *dir = rf_test_tmpdir("ranker");
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/m.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    rk_synth tr;
    assert_int_equal(rk_synth_make(&tr, 60, 30, 6, 51), 0);
    for (int kind = 0; kind < 2; kind++) {
        rf_ranker_opts o;
        rf_ranker_opts_default(&o);
        o.kind = (rf_ranker_kind)kind;
        o.n_trees = 20;
        o.seed = 1234567890123ULL;
        rf_ranker *m = NULL, *m2 = NULL;
        assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, NULL), 0);
        assert_int_equal(save_model(m, path), 0);
        rf_err err;
        assert_int_equal(load_model(path, &m2, &err), 0);
        assert_int_equal(rf_ranker_get_kind(m2), kind);
        assert_int_equal(rf_ranker_n_trees(m2), rf_ranker_n_trees(m));
        assert_int_equal(rf_ranker_n_feats(m2), 6);
        assert_true(m2->opts.seed == o.seed);
        float *p1 = malloc(tr.d.n_rows * sizeof *p1), *p2 = malloc(tr.d.n_rows * sizeof *p2);
        rf_ranker_predict(m, tr.d.x, tr.d.n_rows, p1);
        rf_ranker_predict(m2, tr.d.x, tr.d.n_rows, p2);
        assert_memory_equal(p1, p2, tr.d.n_rows * sizeof *p1);
        free(p1), free(p2);
        rf_ranker_free(m2);

        size_t len;
        unsigned char *p = payload_of(path, &len);
        assert_int_equal(load_payload(bad, p, len), 0);
        /* truncations: through the header and options, then spread over
         * the arrays (each load is a real, fsynced file: keep it short) */
        for (size_t cut = 0; cut < len; cut += cut < 180 ? 9 : len / 16 + 1)
            if (load_payload(bad, p, cut) != RF_EFORMAT) fail_msg("kind %d: cut at %zu loads", kind, cut);
        /* byte flips anywhere: a clean error or a model, never a crash */
        rf_rng r;
        rf_rng_seed(&r, 77);
        for (int k = 0; k < 40; k++) {
            unsigned char *q = malloc(len);
            memcpy(q, p, len);
            size_t at = (size_t)rf_rng_below(&r, len);
            q[at] ^= (unsigned char)(1 + rf_rng_below(&r, 255));
            int rc = load_payload(bad, q, len);
            assert_true(rc == 0 || rc == RF_EFORMAT);
            free(q);
        }
        if (kind == RF_RANKER_GBDT) {
            /* targeted: a feature index and a child index out of range */
            int64_t nt = m->n_trees;
            /* u32 format, u32 kind, i64 n_feats, 16 options, seed; three
             * i64 counts; node and leaf offsets; then the nodes */
            size_t nodes_at = 4 + 4 + 8 + 16 * 8 + 8 + 24 + 2 * 8 * (size_t)(nt + 1);
            assert_true(m->node_off[nt] > 0);
            unsigned char *q = malloc(len);
            memcpy(q, p, len);
            int32_t v = 6;
            memcpy(q + nodes_at + 4, &v, 4); /* feat */
            assert_int_equal(load_payload(bad, q, len), RF_EFORMAT);
            memcpy(q, p, len);
            v = 1000;
            memcpy(q + nodes_at + 8, &v, 4); /* child[0] */
            assert_int_equal(load_payload(bad, q, len), RF_EFORMAT);
            memcpy(q, p, len);
            v = 0;
            memcpy(q + nodes_at + 8, &v, 4); /* child pointing at itself */
            assert_int_equal(load_payload(bad, q, len), RF_EFORMAT);
            memcpy(q, p, len);
            int64_t two = 2;
            memcpy(q + 16 + 2 * 8, &two, 8); /* stored option leaves=2: trees too big */
            assert_int_equal(load_payload(bad, q, len), RF_EFORMAT);
            free(q);
        }
        free(p);
        rf_ranker_free(m);
    }
    rk_synth_free(&tr);
    rf_test_rmtree(dir);
    free(dir);
}

/* ---- allocation failures --------------------------------------------------- */

/* Every allocation of fit (both kinds, with early stopping), save/load
 * and NDCG failing in turn: RF_ENOMEM (NAN for the metric), no output,
 * nothing leaked (ASan), then success once enough allocations pass. */
static void test_alloc_failures(void **state) {
    (void)state;
    rk_synth tr, va;
    assert_int_equal(rk_synth_make(&tr, 12, 20, 5, 81), 0);
    assert_int_equal(rk_synth_make(&va, 6, 20, 5, 82), 0);
    rf_set_threads(1);
    char *dir = rf_test_tmpdir("ranker_oom");
    char path[512];
    snprintf(path, sizeof path, "%s/m.bin", dir);
    for (int kind = 0; kind < 2; kind++) {
        rf_ranker_opts o;
        rf_ranker_opts_default(&o);
        o.kind = (rf_ranker_kind)kind;
        o.n_trees = 8;
        o.min_leaf = 3;
        o.early_stop = 3;
        rf_ranker *m = NULL;
        int ok = 0;
        for (long k = 0; k < 100000 && !ok; k++) {
            rf_err err;
            rf_mem_fail_after(k);
            int rc = rf_ranker_fit(&o, &tr.d, &va.d, &m, &err);
            rf_mem_fail_after(-1);
            if (rc == 0) {
                ok = 1;
                break;
            }
            assert_int_equal(rc, RF_ENOMEM);
            assert_null(m);
        }
        assert_true(ok);
        assert_int_equal(save_model(m, path), 0);
        ok = 0;
        for (long k = 0; k < 100000 && !ok; k++) {
            rf_ranker *m2 = NULL;
            rf_err err;
            uint32_t ver;
            rf_reader *rd;
            assert_int_equal(rf_reader_open(path, MAGIC, 1, &ver, &rd, &err), 0);
            rf_mem_fail_after(k);
            int rc = rf_ranker_load(rd, &m2, &err);
            rf_mem_fail_after(-1);
            rf_reader_close(rd);
            if (rc == 0) ok = 1;
            else {
                assert_int_equal(rc, RF_ENOMEM);
                assert_null(m2);
            }
            rf_ranker_free(m2);
        }
        assert_true(ok);
        rf_ranker_free(m);
    }
    float s[240] = {0};
    rf_mem_fail_after(0);
    double v = rf_rank_ndcg(&tr.d, s, 10);
    rf_mem_fail_after(-1);
    assert_true(isnan(v));
    rf_set_threads(0);
    rf_test_rmtree(dir);
    free(dir);
    rk_synth_free(&tr), rk_synth_free(&va);
}

/* ---- bad input and options ----------------------------------------------------- */

static void test_bad_input(void **state) {
    (void)state;
    rk_synth tr, va;
    assert_int_equal(rk_synth_make(&tr, 5, 10, 5, 61), 0);
    assert_int_equal(rk_synth_make(&va, 5, 10, 6, 62), 0);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.n_trees = 3;
    rf_ranker *m = (rf_ranker *)&o; /* must be reset to NULL */
    rf_err err;
    tr.label[17] = NAN;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err.msg, "row 17 (group 1)"));
    tr.label[17] = -1;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "row 17"));
    tr.label[17] = INFINITY;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    tr.label[17] = 40;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "label 40 is not in [0, 31]"));
    tr.label[17] = 1;
    tr.group[2] = 5; /* before group[1] = 10 */
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "group 1"));
    tr.group[2] = 20;
    tr.group[5] = 49;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "not at 50"));
    tr.group[5] = 50;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, &va.d, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "6 features"));
    o.max_bins = 300;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "bins"));
    o.max_bins = 64;
    assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), 0);
    rf_ranker_free(m);
    /* no positive label anywhere: nothing to learn, a constant model */
    for (int64_t i = 0; i < tr.d.n_rows; i++) tr.label[i] = 0;
    for (int kind = 0; kind < 2; kind++) {
        o.kind = (rf_ranker_kind)kind;
        assert_int_equal(rf_ranker_fit(&o, &tr.d, NULL, &m, &err), 0);
        float p[50];
        rf_ranker_predict(m, tr.d.x, 50, p);
        for (int i = 0; i < 50; i++) assert_true(p[i] == p[0]);
        rf_ranker_free(m);
    }
    rk_synth_free(&tr), rk_synth_free(&va);
}

static void test_opts_parse(void **state) {
    (void)state;
    rf_ranker_opts o, def;
    rf_ranker_opts_default(&o);
    def = o;
    assert_null(rf_ranker_opts_check(&o));
    assert_int_equal(o.n_trees, 300);
    assert_int_equal(o.max_leaves, 31);
    assert_int_equal(o.max_bins, 64);
    assert_true(o.seed == 1 && o.lin_l2 == 1e-4 && o.max_depth == 6);
    rf_err err;
    assert_int_equal(rf_ranker_opts_parse(&o, "kind=linear,trees=50 lr=0.1 seed=7 ff=0.5", &err),
                     0);
    assert_int_equal(o.kind, RF_RANKER_LINEAR);
    assert_int_equal(o.n_trees, 50);
    assert_true(o.learning_rate == 0.1 && o.feature_fraction == 0.5 && o.seed == 7);
    rf_ranker_opts before = o;
    assert_int_equal(rf_ranker_opts_parse(&o, "trees=10,colour=red", &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "colour"));
    assert_memory_equal(&o, &before, sizeof o);
    assert_int_equal(rf_ranker_opts_parse(&o, "bins=1", &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "bins"));
    assert_int_equal(rf_ranker_opts_parse(&o, "seed=-3", &err), RF_EINVAL);
    assert_int_equal(rf_ranker_opts_parse(&o, "kind=forest", &err), RF_EINVAL);
    assert_memory_equal(&o, &before, sizeof o);
    (void)def;
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_matches_bruteforce),
        cmocka_unit_test(test_lambda_gradients),
        cmocka_unit_test(test_delta_ndcg_bruteforce),
        cmocka_unit_test(test_ndcg_hand),
        cmocka_unit_test(test_learning),
        cmocka_unit_test(test_early_stopping_keeps_best),
        cmocka_unit_test(test_linear_early_stopping),
        cmocka_unit_test(test_odd_groups),
        cmocka_unit_test(test_threads_same_model),
        cmocka_unit_test(test_predict_matches_reference),
        cmocka_unit_test(test_contrib_sums_to_score),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_opts_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
