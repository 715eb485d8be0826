/* test_mf.c - biased MF ("mf") and SVD++ ("svdpp") for explicit ratings.
 *
 * Oracles: central finite differences of the per-rating losses (the SGD
 * steps must be exactly -lr times their gradient); a naive SVD++ pass
 * that recomputes the implicit sum and updates every y_j at each rating
 * (the fast pass must agree); the optimality condition of the ridge
 * fold-in; a bias-only baseline computed here. Rating data is generated:
 * a planted low-rank model with biases and noise, rounded to 1..5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/sgd.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/mf.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

/* ---- gradient checks ------------------------------------------------------ */

static void fill(rf_rng *g, float *a, int n, double scale) {
    for (int k = 0; k < n; k++) a[k] = (float)(scale * (rf_rng_uniform(g) - 0.5));
}

/* |a - b| <= tol * max(1, |a|, |b|) */
static void assert_close(double a, double b, double tol, const char *what, int k) {
    double s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (s < 1) s = 1;
    if (fabs(a - b) > tol * s) {
        print_error("%s[%d]: step gives %.8g, finite difference %.8g\n", what, k, a, b);
        fail();
    }
}

#define F 6

static double mf_loss_of(const float *x, float mu, float r, float reg, float reg_b) {
    /* x = bu, bi, p[F], q[F] */
    return rf_mf_loss(mu, x[0], x[1], x + 2, x + 2 + F, F, r, reg, reg_b);
}

static void test_mf_gradient(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 1);
    for (int trial = 0; trial < 20; trial++) {
        float x[2 + 2 * F], y[2 + 2 * F];
        fill(&g, x, 2 + 2 * F, 2.0);
        float mu = 3.5f, r = (float)(1 + rf_rng_below(&g, 5));
        float reg = 0.05f * (trial % 3), reg_b = 0.02f * (trial % 2);
        const float lr = 1e-2f;
        memcpy(y, x, sizeof x);
        rf_mf_step(mu, &y[0], &y[1], y + 2, y + 2 + F, F, r, lr, reg, reg_b);
        for (int k = 0; k < 2 + 2 * F; k++) {
            float xp[2 + 2 * F], xm[2 + 2 * F];
            const float h = 1e-2f;
            memcpy(xp, x, sizeof x);
            memcpy(xm, x, sizeof x);
            xp[k] += h;
            xm[k] -= h;
            double fd = (mf_loss_of(xp, mu, r, reg, reg_b) - mf_loss_of(xm, mu, r, reg, reg_b)) /
                        ((double)xp[k] - xm[k]);
            assert_close(((double)x[k] - y[k]) / lr, fd, 2e-3, "mf", k);
        }
    }
}

/* The implicit co-training step: -lr times the gradient of
 * w * -ln sigmoid(p.(qi - qj)). */
static void test_implicit_gradient(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 4);
    for (int trial = 0; trial < 20; trial++) {
        float x[3 * F], y[3 * F];
        fill(&g, x, 3 * F, 3.0);
        const float w = 0.25f + 0.25f * (trial % 4), lr = 1e-2f, h = 1e-2f;
        memcpy(y, x, sizeof x);
        rf_implicit_step(y, y + F, y + 2 * F, F, w, lr);
        for (int k = 0; k < 3 * F; k++) {
            float xp[3 * F], xm[3 * F];
            memcpy(xp, x, sizeof x);
            memcpy(xm, x, sizeof x);
            xp[k] += h;
            xm[k] -= h;
            double fd = (rf_implicit_loss(xp, xp + F, xp + 2 * F, F, w) -
                         rf_implicit_loss(xm, xm + F, xm + 2 * F, F, w)) /
                        ((double)xp[k] - xm[k]);
            assert_close(((double)x[k] - y[k]) / lr, fd, 2e-3, "implicit", k);
        }
    }
}

/* SVD++: one rating, N = 3 items (one of them the rated item). */
#define NI 5
typedef struct spp {
    float bu, bi[NI], p[F], Q[NI * F], Y[NI * F];
} spp;

static double spp_loss(const spp *s, const int32_t *nset, int nn, int item, float mu, float r,
                       float reg, float reg_b, float reg_y) {
    return rf_svdpp_loss(mu, s->bu, s->bi[item], s->p, s->Q + item * F, s->Y, nset, nn, F, r, reg,
                         reg_b, reg_y);
}

static void test_svdpp_gradient(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 2);
    const int32_t nset[3] = {0, 2, 3};
    for (int trial = 0; trial < 10; trial++) {
        spp x, y;
        fill(&g, (float *)&x, sizeof x / sizeof(float), 1.0);
        int32_t item = trial % 2 ? 2 : 4;
        float mu = 3.2f, r = (float)(1 + rf_rng_below(&g, 5)), vals[1] = {r};
        float reg = 0.04f, reg_b = 0.01f * (trial % 3), reg_y = 0.03f * (trial % 2);
        const float lr = 1e-2f;
        float sc[2 * F];
        y = x;
        rf_svdpp_user_pass(mu, &y.bu, y.bi, y.p, y.Q, y.Y, nset, 3, &item, vals, 1, F, lr, reg,
                           reg_b, reg_y, sc, sc + F);
        const int n = sizeof x / sizeof(float);
        for (int k = 0; k < n; k++) {
            spp xp = x, xm = x;
            const float h = 1e-2f;
            ((float *)&xp)[k] += h;
            ((float *)&xm)[k] -= h;
            double fd = (spp_loss(&xp, nset, 3, item, mu, r, reg, reg_b, reg_y) -
                         spp_loss(&xm, nset, 3, item, mu, r, reg, reg_b, reg_y)) /
                        ((double)((float *)&xp)[k] - ((float *)&xm)[k]);
            double step = ((double)((float *)&x)[k] - ((float *)&y)[k]) / lr;
            assert_close(step, fd, 3e-3, "svdpp", k);
        }
    }
}

/* The fast user pass against a naive one: recompute the implicit sum at
 * every rating and update every y_j explicitly. */
static void test_svdpp_pass_matches_naive(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 3);
    const int32_t nset[4] = {0, 1, 3, 4};
    const int32_t items[6] = {1, 3, 0, 4, 1, 2};
    const int32_t negs[6] = {2, -1, 2, 2, 2, 4}; /* implicit steps, -1: none */
    const float vals[6] = {5, 3, 4, 1, 2, 4};
    const float w = 0.4f;
    const float mu = 3.4f, lr = 0.05f, reg = 0.03f, reg_b = 0.02f, reg_y = 0.07f;
    spp a, b;
    fill(&g, (float *)&a, sizeof a / sizeof(float), 1.0);
    b = a;
    float sc[2 * F];
    double sse = rf_svdpp_user_pass_imp(mu, &a.bu, a.bi, a.p, a.Q, a.Y, nset, 4, items, vals, negs,
                                        6, F, lr, reg, reg_b, reg_y, w, sc, sc + F);
    double sse2 = 0;
    const double alpha = 1.0 / sqrt(4.0);
    for (int x = 0; x < 6; x++) {
        int i = items[x];
        double z[F], pred = (double)mu + b.bu + b.bi[i];
        for (int k = 0; k < F; k++) {
            double s = 0;
            for (int t = 0; t < 4; t++) s += b.Y[nset[t] * F + k];
            z[k] = b.p[k] + alpha * s;
            pred += (double)b.Q[i * F + k] * z[k];
        }
        double e = vals[x] - pred;
        sse2 += e * e;
        b.bu += (float)(lr * (e - reg_b * b.bu));
        b.bi[i] += (float)(lr * (e - reg_b * b.bi[i]));
        float q_old[F];
        memcpy(q_old, b.Q + i * F, sizeof q_old);
        for (int k = 0; k < F; k++) {
            double pk = b.p[k], qk = q_old[k];
            b.p[k] = (float)(pk + lr * (e * qk - reg * pk));
            b.Q[i * F + k] = (float)(qk + lr * (e * z[k] - reg * qk));
        }
        for (int t = 0; t < 4; t++)
            for (int k = 0; k < F; k++) {
                float *yv = &b.Y[nset[t] * F + k];
                *yv = (float)(*yv + lr * (e * alpha * q_old[k] - reg_y * *yv));
            }
        if (negs[x] >= 0) rf_implicit_step(b.p, b.Q + i * F, b.Q + negs[x] * F, F, w, lr);
    }
    assert_true(fabs(sse - sse2) < 1e-4 * (1 + sse2));
    const float *fa = (const float *)&a, *fb = (const float *)&b;
    for (size_t k = 0; k < sizeof a / sizeof(float); k++)
        if (fabsf(fa[k] - fb[k]) > 2e-5f) {
            print_error("param %zu: fast %.7g naive %.7g\n", k, fa[k], fb[k]);
            fail();
        }
}

/* ---- generated rating data ------------------------------------------------ */

typedef struct rdata {
    rf_events *train, *test; /* test borrows train's id maps */
    rf_dataset *d;
} rdata;

/* nu users x ni items, rank-3 structure plus user/item biases and noise,
 * each user rating a random `density` share of items; 20% of each user's
 * ratings go to test. Ratings rounded and clipped to 1..5. */
static rdata *gen_ratings(int nu, int ni, double density, uint64_t seed) {
    rdata *r = calloc(1, sizeof *r);
    assert_int_equal(rf_events_new(NULL, NULL, &r->train), 0);
    assert_int_equal(rf_events_new(r->train->users, r->train->items, &r->test), 0);
    rf_rng g;
    rf_rng_seed(&g, seed);
    double *U = malloc(sizeof(double) * nu * 3), *V = malloc(sizeof(double) * ni * 3);
    double *bu = malloc(sizeof(double) * nu), *bi = malloc(sizeof(double) * ni);
    for (int k = 0; k < nu * 3; k++) U[k] = rf_rng_normal(&g) * 0.7;
    for (int k = 0; k < ni * 3; k++) V[k] = rf_rng_normal(&g) * 0.7;
    for (int u = 0; u < nu; u++) bu[u] = rf_rng_normal(&g) * 0.4;
    for (int i = 0; i < ni; i++) bi[i] = rf_rng_normal(&g) * 0.5;
    char us[32], is[32];
    for (int u = 0; u < nu; u++) { /* register ids in order: u<k>, i<k> */
        int32_t id;
        snprintf(us, sizeof us, "u%d", u);
        rf_idmap_put(r->train->users, us, strlen(us), &id, NULL);
    }
    for (int i = 0; i < ni; i++) {
        int32_t id;
        snprintf(is, sizeof is, "i%d", i);
        rf_idmap_put(r->train->items, is, strlen(is), &id, NULL);
    }
    for (int u = 0; u < nu; u++)
        for (int i = 0; i < ni; i++) {
            if (rf_rng_uniform(&g) >= density) continue;
            double v = 3.4 + bu[u] + bi[i] + 0.3 * rf_rng_normal(&g);
            for (int k = 0; k < 3; k++) v += U[u * 3 + k] * V[i * 3 + k];
            v = floor(v + 0.5);
            if (v < 1) v = 1;
            if (v > 5) v = 5;
            rf_events *to = rf_rng_uniform(&g) < 0.2 ? r->test : r->train;
            assert_int_equal(rf_events_push(to, u, i, RF_EV_RATING, (float)v, 1000 + u + i), 0);
        }
    free(U);
    free(V);
    free(bu);
    free(bi);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    rf_rating_data_defaults(&o);
    rf_err err;
    assert_int_equal(rf_dataset_build(r->train, &o, &r->d, &err), 0);
    return r;
}

static void rdata_free(rdata *r) {
    rf_dataset_free(r->d);
    rf_events_free(r->test);
    rf_events_free(r->train);
    free(r);
}

static rf_model *fit_model(const char *name, const char *params, const rf_dataset *d) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new(name, &m, &err), 0);
    if (params && rf_model_set_params(m, params, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    rf_dataset_opts_default(&m->data_opts);
    m->ops->data_defaults(&m->data_opts);
    if (rf_model_fit(m, d, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    return m;
}

static double rmse_of(const rf_model *m, const rf_events *ev) {
    double se = 0;
    rf_err err;
    for (int64_t k = 0; k < ev->n; k++) {
        float p;
        int32_t it = ev->item[k];
        assert_int_equal(rf_rating_predict(m, ev->user[k], NULL, &it, 1, &p, &err), 0);
        se += (p - ev->value[k]) * (p - ev->value[k]);
    }
    return sqrt(se / (double)ev->n);
}

/* Damped bias baseline fit here: b_u, b_i by 10 alternating passes. */
static double bias_rmse(const rdata *r) {
    const rf_csr *ui = r->d->ui;
    int nu = ui->nrows, ni = ui->ncols;
    double mu = 0;
    for (int64_t q = 0; q < ui->nnz; q++) mu += ui->data[q];
    mu /= (double)ui->nnz;
    double *bu = calloc((size_t)nu, sizeof *bu), *bi = calloc((size_t)ni, sizeof *bi);
    for (int it = 0; it < 10; it++) {
        double *si = calloc((size_t)ni, sizeof *si), *ci = calloc((size_t)ni, sizeof *ci);
        for (int u = 0; u < nu; u++)
            for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
                si[ui->indices[q]] += ui->data[q] - mu - bu[u];
                ci[ui->indices[q]] += 1;
            }
        for (int i = 0; i < ni; i++) bi[i] = si[i] / (ci[i] + 5);
        for (int u = 0; u < nu; u++) {
            double s = 0, c = 0;
            for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
                s += ui->data[q] - mu - bi[ui->indices[q]];
                c++;
            }
            bu[u] = s / (c + 5);
        }
        free(si);
        free(ci);
    }
    double se = 0;
    for (int64_t k = 0; k < r->test->n; k++) {
        double p = mu + bu[r->test->user[k]] + bi[r->test->item[k]];
        p = p < 1 ? 1 : p > 5 ? 5 : p;
        se += (p - r->test->value[k]) * (p - r->test->value[k]);
    }
    free(bu);
    free(bi);
    return sqrt(se / (double)r->test->n);
}

static double mean_rmse(const rdata *r) {
    double mu = 0, se = 0;
    for (int64_t k = 0; k < r->train->n; k++) mu += r->train->value[k];
    mu /= (double)r->train->n;
    for (int64_t k = 0; k < r->test->n; k++)
        se += (mu - r->test->value[k]) * (mu - r->test->value[k]);
    return sqrt(se / (double)r->test->n);
}

/* ---- model tests ------------------------------------------------------------ */

static void test_beats_baselines(void **state) {
    (void)state;
    rdata *r = gen_ratings(300, 200, 0.25, 11);
    double base_mean = mean_rmse(r), base_bias = bias_rmse(r);
    rf_model *mf = fit_model("mf", "factors=5,epochs=60,lr=0.02", r->d);
    rf_model *sp = fit_model("svdpp", "factors=5,epochs=60,lr=0.02", r->d);
    double e_mf = rmse_of(mf, r->test), e_sp = rmse_of(sp, r->test);
    print_message("RMSE: mean %.4f, biases %.4f, mf %.4f, svdpp %.4f\n", base_mean, base_bias, e_mf,
                  e_sp);
    assert_true(base_bias < base_mean);
    assert_true(e_mf < 0.9 * base_bias);
    assert_true(e_sp < 0.9 * base_bias);
    rf_model_free(mf);
    rf_model_free(sp);
    rdata_free(r);
}

static void test_training_reduces_loss(void **state) {
    (void)state;
    rdata *r = gen_ratings(150, 100, 0.2, 12);
    const char *names[2] = {"mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        double prev = INFINITY;
        for (int ep = 1; ep <= 16; ep *= 4) {
            char params[64];
            snprintf(params, sizeof params, "factors=8,epochs=%d,lr=0.01", ep);
            rf_model *m = fit_model(names[k], params, r->d);
            double tr = rmse_of(m, r->train);
            print_message("%s epochs %d: train RMSE %.4f\n", names[k], ep, tr);
            assert_true(tr < prev);
            prev = tr;
            rf_model_free(m);
        }
    }
    rdata_free(r);
}

static void test_predict_unknowns_and_clip(void **state) {
    (void)state;
    rdata *r = gen_ratings(60, 40, 0.3, 13);
    const char *names[2] = {"mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        rf_model *m = fit_model(names[k], "factors=5,epochs=20", r->d);
        const rf_rating_impl *p = m->impl;
        float mu, lo, hi;
        rf_err err;
        assert_int_equal(rf_rating_info(m, &mu, &lo, &hi, &err), 0);
        assert_true(lo >= 1 && hi <= 5 && lo < hi);
        int32_t items[3] = {7, -1, 7};
        float out[3];
        /* known user, unknown item: mu + b_u */
        assert_int_equal(rf_rating_predict(m, 3, NULL, items, 2, out, &err), 0);
        float want = p->mu + p->bu[3];
        want = want < lo ? lo : want > hi ? hi : want;
        assert_true(out[1] == want);
        /* unknown user without history: mu + b_i; both unknown: mu */
        assert_int_equal(rf_rating_predict(m, -1, NULL, items, 2, out, &err), 0);
        want = p->mu + p->bi[7];
        want = want < lo ? lo : want > hi ? hi : want;
        assert_true(out[0] == want);
        assert_true(out[1] == p->mu);
        /* every prediction within the training range; score_items agrees */
        int32_t all[40];
        float sc[40], pr[40];
        for (int i = 0; i < 40; i++) all[i] = i;
        for (int u = 0; u < 60; u++) {
            assert_int_equal(rf_model_score_items(m, u, NULL, all, 40, sc, &err), 0);
            assert_int_equal(rf_rating_predict(m, u, NULL, all, 40, pr, &err), 0);
            for (int i = 0; i < 40; i++) {
                assert_true(sc[i] >= lo && sc[i] <= hi);
                assert_true(sc[i] == pr[i]);
            }
        }
        /* not a rating model */
        rf_model *pop;
        assert_int_equal(rf_model_new("pop", &pop, &err), 0);
        assert_int_equal(rf_rating_predict(pop, 0, NULL, items, 1, out, &err), RF_EINVAL);
        rf_model_free(pop);
        rf_model_free(m);
    }
    rdata_free(r);
}

/* Fold-in of a training user's history solves the per-user ridge problem:
 * its gradient vanishes at the solution. */
static void test_fold_in_optimal(void **state) {
    (void)state;
    rdata *r = gen_ratings(80, 60, 0.3, 14);
    const char *names[2] = {"mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        rf_model *m = fit_model(names[k], "factors=6,epochs=30,reg=0.05,reg_bias=0.02", r->d);
        const rf_rating_impl *p = m->impl;
        const rf_rating_params *pp = m->params;
        const int f = p->f;
        rf_hist h;
        rf_hist_from_row(r->d, 5, &h);
        assert_true(h.n > 3);
        float vec[6], all[60];
        rf_err err;
        assert_int_equal(m->ops->fold_in(m, &h, vec, &err), 0);
        assert_int_equal(m->ops->user_dim(m), f);
        /* implicit part s (svdpp) */
        double s[6] = {0};
        if (p->Y) {
            for (int32_t t = 0; t < h.n; t++)
                for (int c = 0; c < f; c++) s[c] += p->Y[h.items[t] * f + c] / sqrt((double)h.n);
        }
        /* bias from score_all: score(i) = mu + b + bi + q.vec */
        assert_int_equal(rf_model_score_all(m, -1, &h, all, &err), 0);
        double b = all[0] - p->mu - p->bi[0];
        for (int c = 0; c < f; c++) b -= (double)p->Q[c] * vec[c];
        double gb = h.n * pp->reg_bias * b, gp[6];
        for (int c = 0; c < f; c++) gp[c] = h.n * pp->reg * (vec[c] - s[c]);
        for (int32_t t = 0; t < h.n; t++) {
            int i = h.items[t];
            double pred = p->mu + b + p->bi[i];
            for (int c = 0; c < f; c++) pred += (double)p->Q[i * f + c] * vec[c];
            double e = h.weights[t] - pred;
            gb -= e;
            for (int c = 0; c < f; c++) gp[c] -= e * p->Q[i * f + c];
        }
        assert_true(fabs(gb) < 1e-3);
        for (int c = 0; c < f; c++) assert_true(fabs(gp[c]) < 1e-3);
        /* the folded-in user predicts their own ratings about as well as
         * the trained vector (better than biases alone) */
        double se_fold = 0, se_bias = 0;
        for (int32_t t = 0; t < h.n; t++) {
            int i = h.items[t];
            double e1 = h.weights[t] - all[i], e2 = h.weights[t] - (p->mu + p->bi[i]);
            se_fold += e1 * e1;
            se_bias += e2 * e2;
        }
        assert_true(se_fold < se_bias);
        rf_model_free(m);
    }
    rdata_free(r);
}

static void test_save_load_roundtrip(void **state) {
    (void)state;
    rdata *r = gen_ratings(50, 30, 0.3, 15);
    char *dir = rf_test_tmpdir("mf");
    const char *names[2] = {"mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        rf_model *m = fit_model(names[k], "factors=4,epochs=10", r->d), *l = NULL;
        char path[512];
        snprintf(path, sizeof path, "%s/%s.rfm", dir, names[k]);
        rf_err err;
        assert_int_equal(rf_model_save(m, path, &err), 0);
        assert_int_equal(rf_model_load(path, &l, &err), 0);
        assert_string_equal(l->ops->name, names[k]);
        float a[30], b[30];
        rf_hist h;
        rf_hist_from_row(r->d, 2, &h);
        for (int u = -1; u < 50; u++) {
            assert_int_equal(rf_model_score_all(m, u, u < 0 ? &h : NULL, a, &err), 0);
            assert_int_equal(rf_model_score_all(l, u, u < 0 ? &h : NULL, b, &err), 0);
            assert_memory_equal(a, b, sizeof a);
        }
        int32_t items[2] = {3, -1};
        assert_int_equal(rf_rating_predict(m, -1, &h, items, 2, a, &err), 0);
        assert_int_equal(rf_rating_predict(l, -1, &h, items, 2, b, &err), 0);
        assert_memory_equal(a, b, 2 * sizeof *a);
        rf_model_free(l);
        /* truncated file fails cleanly */
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "head -c 300 '%s' > '%s.t' && mv '%s.t' '%s'", path, path, path,
                 path);
        assert_int_equal(system(cmd), 0);
        l = NULL;
        int rc = rf_model_load(path, &l, &err);
        assert_true(rc == RF_EFORMAT || rc == RF_ECORRUPT);
        assert_null(l);
        rf_model_free(m);
    }
    rf_test_rmtree(dir);
    free(dir);
    rdata_free(r);
}

/* Same seed: identical bytes, whatever the thread count; another seed: not. */
static void test_determinism(void **state) {
    (void)state;
    rdata *r = gen_ratings(80, 50, 0.25, 16);
    const char *names[2] = {"mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        rf_set_threads(1);
        rf_model *a = fit_model(names[k], "factors=5,epochs=8,seed=7", r->d);
        rf_set_threads(3);
        rf_model *b = fit_model(names[k], "factors=5,epochs=8,seed=7", r->d);
        rf_model *c = fit_model(names[k], "factors=5,epochs=8,seed=8", r->d);
        rf_set_threads(0);
        const rf_rating_impl *pa = a->impl, *pb = b->impl, *pc = c->impl;
        size_t nuf = (size_t)a->n_users * 5, nif = (size_t)a->n_items * 5;
        assert_memory_equal(pa->P, pb->P, nuf * sizeof(float));
        assert_memory_equal(pa->Q, pb->Q, nif * sizeof(float));
        assert_memory_equal(pa->bu, pb->bu, (size_t)a->n_users * sizeof(float));
        assert_memory_equal(pa->bi, pb->bi, (size_t)a->n_items * sizeof(float));
        if (pa->Y) assert_memory_equal(pa->Y, pb->Y, nif * sizeof(float));
        assert_true(memcmp(pa->Q, pc->Q, nif * sizeof(float)) != 0);
        rf_model_free(a);
        rf_model_free(b);
        rf_model_free(c);
    }
    rdata_free(r);
}

static void test_refuses_binary_and_bad_params(void **state) {
    (void)state;
    rdata *r = gen_ratings(20, 20, 0.3, 17);
    rf_err err;
    rf_model *m;
    assert_int_equal(rf_model_new("mf", &m, &err), 0);
    /* the default options (binary presence) are refused with a message */
    m->data_opts.binary = 1;
    assert_int_equal(rf_model_fit(m, r->d, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "rating values"));
    assert_int_equal(rf_model_set_params(m, "factors=0", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "lr_decay=1.5", &err), RF_ERANGE);
    rf_model_free(m);
    /* data_defaults: ratings only, their values, the latest rating */
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    o.half_life_days = 3;
    rf_model_find("svdpp")->data_defaults(&o);
    assert_true(o.use_value == 1 && o.binary == 0 && o.fold == RF_FOLD_LAST &&
                o.half_life_days == 0 && o.type_weight[RF_EV_RATING] == 1 &&
                o.type_weight[RF_EV_VIEW] == 0 && o.type_weight[RF_EV_PURCHASE] == 0);
    rdata_free(r);
}

/* Every allocation failure during fit, save and load is an error, no crash
 * or leak (ASan). */
static void test_alloc_failures(void **state) {
    (void)state;
    rdata *r = gen_ratings(30, 20, 0.3, 18);
    const char *names[2] = {"mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        int ok = 0;
        for (long n = 0; n < 200 && !ok; n++) {
            rf_model *m;
            rf_err err;
            assert_int_equal(rf_model_new(names[k], &m, &err), 0);
            rf_model_set_params(m, "factors=3,epochs=2", &err);
            m->ops->data_defaults(&m->data_opts);
            rf_mem_fail_after(n);
            int rc = rf_model_fit(m, r->d, &err);
            rf_mem_fail_after(-1);
            if (rc == 0)
                ok = 1;
            else
                assert_int_equal(rc, RF_ENOMEM);
            rf_model_free(m);
        }
        assert_true(ok);
    }
    rdata_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mf_gradient),
        cmocka_unit_test(test_implicit_gradient),
        cmocka_unit_test(test_svdpp_gradient),
        cmocka_unit_test(test_svdpp_pass_matches_naive),
        cmocka_unit_test(test_beats_baselines),
        cmocka_unit_test(test_training_reduces_loss),
        cmocka_unit_test(test_predict_unknowns_and_clip),
        cmocka_unit_test(test_fold_in_optimal),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_refuses_binary_and_bad_params),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
