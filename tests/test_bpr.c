/* test_bpr.c - the "bpr" model (BPR and WARP samplers).
 *
 * Oracles: central finite differences of the BPR loss and of WARP's
 * weighted hinge (each SGD step must be exactly -lr times the gradient);
 * the round-robin schedule checked exhaustively (each round a perfect
 * matching, every pair of item groups once, every user group with every
 * pair once); the popularity baseline on a generated log with planted
 * clusters, which BPR must beat; bit-identical factors for 1, 2 and 3
 * threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/sgd.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

#define F 7

static void fill(rf_rng *g, float *a, int n, double scale) {
    for (int k = 0; k < n; k++) a[k] = (float)(scale * (rf_rng_uniform(g) - 0.5));
}

static void assert_close(double a, double b, double tol, const char *what, int k) {
    double s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (s < 1) s = 1;
    if (fabs(a - b) > tol * s) {
        print_error("%s[%d]: step gives %.8g, finite difference %.8g\n", what, k, a, b);
        fail();
    }
}

/* x = p[F], qi[F], qj[F], bi, bj */
#define NX (3 * F + 2)
static double bpr_loss_of(const float *x, float reg, float reg_b) {
    return rf_bpr_loss(x, x + F, x + 2 * F, x[3 * F], x[3 * F + 1], F, reg, reg_b);
}

/* WARP's weighted hinge with the same regularisers (valid where x < 1). */
static double warp_loss_of(const float *x, float w, float reg, float reg_b) {
    double d = (double)x[3 * F] - x[3 * F + 1], r2 = 0;
    for (int k = 0; k < F; k++) d += (double)x[k] * ((double)x[F + k] - x[2 * F + k]);
    for (int k = 0; k < 3 * F; k++) r2 += (double)x[k] * x[k];
    return w * (1 - d) + 0.5 * reg * r2 +
           0.5 * reg_b * ((double)x[3 * F] * x[3 * F] + (double)x[3 * F + 1] * x[3 * F + 1]);
}

static void test_pair_gradients(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 5);
    for (int trial = 0; trial < 30; trial++) {
        float x[NX], y[NX];
        fill(&g, x, NX, 2.0);
        float reg = 0.03f * (trial % 3), reg_b = 0.05f * (trial % 2);
        const float lr = 1e-2f, h = 1e-2f;
        float xv = rf_pair_x(x, x + F, x + 2 * F, x[3 * F], x[3 * F + 1], F);
        int warp = trial >= 15;
        float w = 0.7f;
        if (warp && xv >= 1) continue; /* the hinge is flat there */
        float coef = warp ? w : rf_sigmoid_neg(xv);
        memcpy(y, x, sizeof x);
        rf_pair_step(y, y + F, y + 2 * F, &y[3 * F], &y[3 * F + 1], F, coef, lr, reg, reg_b);
        for (int k = 0; k < NX; k++) {
            float xp[NX], xm[NX];
            memcpy(xp, x, sizeof x);
            memcpy(xm, x, sizeof x);
            xp[k] += h;
            xm[k] -= h;
            double lp = warp ? warp_loss_of(xp, w, reg, reg_b) : bpr_loss_of(xp, reg, reg_b);
            double lm = warp ? warp_loss_of(xm, w, reg, reg_b) : bpr_loss_of(xm, reg, reg_b);
            double fd = (lp - lm) / ((double)xp[k] - xm[k]);
            assert_close(((double)x[k] - y[k]) / lr, fd, 2e-3, warp ? "warp" : "bpr", k);
        }
    }
}

/* rf_sigmoid_neg is 1 / (1 + e^x) without overflow. */
static void test_sigmoid(void **state) {
    (void)state;
    const float xs[] = {-100, -20, -1, 0, 0.5f, 3, 30, 31, 100};
    for (size_t k = 0; k < sizeof xs / sizeof *xs; k++) {
        double want = 1.0 / (1.0 + exp((double)xs[k]));
        float got = rf_sigmoid_neg(xs[k]);
        assert_true(isfinite(got));
        assert_true(fabs(got - want) <= 1e-6 * (want > 1e-30 ? want : 1e-30) + 1e-37);
    }
}

/* Every sub-epoch's tasks own disjoint item groups; over an epoch every
 * user group meets every unordered pair of item groups exactly once. */
static void test_schedule(void **state) {
    (void)state;
    for (int B = 1; B <= 9; B++) {
        int G = 2 * B;
        int *seen = calloc((size_t)B * G * G, sizeof *seen);
        for (int r = 0; r < G - 1; r++)
            for (int s = 0; s < B; s++) {
                int *used = calloc((size_t)G, sizeof *used);
                for (int t = 0; t < B; t++) {
                    int a, b;
                    rf_bpr_round_pair(G, r, (t + s) % B, &a, &b);
                    assert_true(a >= 0 && a < G && b >= 0 && b < G && a != b);
                    used[a]++;
                    used[b]++;
                    int lo = a < b ? a : b, hi = a < b ? b : a;
                    seen[((size_t)t * G + lo) * G + hi]++;
                }
                for (int c = 0; c < G; c++) assert_int_equal(used[c], 1);
                free(used);
            }
        for (int t = 0; t < B; t++)
            for (int a = 0; a < G; a++)
                for (int b = a + 1; b < G; b++)
                    assert_int_equal(seen[((size_t)t * G + a) * G + b], 1);
        free(seen);
    }
}

/* ---- planted-cluster implicit data ------------------------------------- */

typedef struct idata {
    rf_events *train, *test; /* test borrows train's id maps */
    rf_dataset *d;
    rf_csr *rel;
    int32_t *cluster_of_item;
    int K;
} idata;

/* K clusters of users and items; a user picks 15-30 distinct items, 85%
 * from the own cluster (popularity-skewed within it), the rest from the
 * whole catalogue by popularity; 20% of each user's items go to test. */
static idata *gen_implicit(int nu, int ni, int K, uint64_t seed) {
    idata *x = calloc(1, sizeof *x);
    x->K = K;
    assert_int_equal(rf_events_new(NULL, NULL, &x->train), 0);
    assert_int_equal(rf_events_new(x->train->users, x->train->items, &x->test), 0);
    rf_rng g;
    rf_rng_seed(&g, seed);
    char buf[32];
    for (int u = 0; u < nu; u++) {
        int32_t id;
        snprintf(buf, sizeof buf, "u%d", u);
        rf_idmap_put(x->train->users, buf, strlen(buf), &id, NULL);
    }
    for (int i = 0; i < ni; i++) {
        int32_t id;
        snprintf(buf, sizeof buf, "i%d", i);
        rf_idmap_put(x->train->items, buf, strlen(buf), &id, NULL);
    }
    x->cluster_of_item = malloc(sizeof(int32_t) * (size_t)ni);
    for (int i = 0; i < ni; i++) x->cluster_of_item[i] = i % K;
    uint8_t *has = malloc((size_t)ni);
    for (int u = 0; u < nu; u++) {
        int c = u % K, n = 15 + (int)rf_rng_below(&g, 16);
        memset(has, 0, (size_t)ni);
        for (int k = 0; k < n; k++) {
            int i, tries = 0;
            do {
                /* popularity skew: rank v^2 of the cluster or catalogue */
                double v = rf_rng_uniform(&g);
                if (rf_rng_uniform(&g) < 0.85) {
                    int per = ni / K, r = (int)(per * pow(v, 2.0));
                    i = r * K + c;
                } else {
                    i = (int)(ni * pow(v, 2.0));
                }
                if (++tries > 1000) /* (never with the sizes used here) */
                    for (i = 0; i < ni && has[i]; i++) {}
            } while (i >= ni || has[i]);
            has[i] = 1;
            rf_events *to = rf_rng_uniform(&g) < 0.2 ? x->test : x->train;
            assert_int_equal(rf_events_push(to, u, i, RF_EV_PURCHASE, 1, 1000 + k), 0);
        }
    }
    free(has);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    rf_err err;
    assert_int_equal(rf_dataset_build(x->train, &o, &x->d, &err), 0);
    assert_int_equal(rf_eval_relevance(x->test, x->d->n_users, x->d->n_items, &x->rel, &err), 0);
    return x;
}

static void idata_free(idata *x) {
    rf_csr_free(x->rel);
    rf_dataset_free(x->d);
    rf_events_free(x->test);
    rf_events_free(x->train);
    free(x->cluster_of_item);
    free(x);
}

static rf_model *fit(const char *name, const char *params, const rf_dataset *d) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new(name, &m, &err), 0);
    if (params && rf_model_set_params(m, params, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    m->data_opts.binary = 1;
    if (rf_model_fit(m, d, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    return m;
}

static double ndcg10(const rf_model *m, const idata *x) {
    int ks[1] = {10};
    rf_eval_result res;
    rf_err err;
    assert_int_equal(rf_evaluate(m, x->d, x->rel, ks, 1, &res, &err), 0);
    double v = res.value[0][RF_M_NDCG];
    rf_eval_result_free(&res);
    return v;
}

static void test_beats_pop(void **state) {
    (void)state;
    idata *x = gen_implicit(400, 240, 6, 21);
    rf_model *pop = fit("pop", NULL, x->d);
    rf_model *bpr = fit("bpr", "factors=16,epochs=40,lr=0.05,blocks=4", x->d);
    rf_model *warp = fit("bpr", "factors=16,epochs=40,lr=0.05,blocks=4,sampler=warp", x->d);
    double np = ndcg10(pop, x), nb = ndcg10(bpr, x), nw = ndcg10(warp, x);
    print_message("NDCG@10: pop %.4f, bpr %.4f, warp %.4f\n", np, nb, nw);
    assert_true(nb > 1.3 * np);
    assert_true(nw > 1.3 * np);
    rf_model_free(pop);
    rf_model_free(bpr);
    rf_model_free(warp);
    idata_free(x);
}

/* Training AUC over the training pairs grows with the epochs. */
static double train_auc(const rf_model *m, const idata *x) {
    const rf_csr *ui = x->d->ui;
    float *s = malloc(sizeof(float) * (size_t)m->n_items);
    double auc = 0;
    int users = 0;
    rf_err err;
    for (int32_t u = 0; u < ui->nrows; u++) {
        int64_t n = rf_csr_row_len(ui, u);
        if (n == 0 || n == m->n_items) continue;
        assert_int_equal(rf_model_score_all(m, u, NULL, s, &err), 0);
        double good = 0;
        uint8_t *pos = calloc((size_t)m->n_items, 1);
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) pos[ui->indices[q]] = 1;
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++)
            for (int32_t j = 0; j < m->n_items; j++)
                if (!pos[j])
                    good += s[ui->indices[q]] > s[j] ? 1 : s[ui->indices[q]] == s[j] ? 0.5 : 0;
        auc += good / ((double)n * (double)(m->n_items - n));
        users++;
        free(pos);
    }
    free(s);
    return auc / users;
}

static void test_training_improves(void **state) {
    (void)state;
    idata *x = gen_implicit(200, 160, 4, 22);
    const char *sampler[2] = {"uniform", "warp"};
    for (int k = 0; k < 2; k++) {
        double prev = 0;
        for (int ep = 1; ep <= 25; ep *= 5) {
            char params[128];
            snprintf(params, sizeof params, "factors=8,epochs=%d,lr=0.05,blocks=2,sampler=%s", ep,
                     sampler[k]);
            rf_model *m = fit("bpr", params, x->d);
            double a = train_auc(m, x);
            print_message("%s epochs %d: train AUC %.4f\n", sampler[k], ep, a);
            assert_true(a > prev);
            prev = a;
            rf_model_free(m);
        }
        assert_true(prev > 0.8);
    }
    idata_free(x);
}

/* Bit-identical factors (hence scores) for 1, 2 and 3 threads; another
 * seed differs. */
static void test_determinism(void **state) {
    (void)state;
    idata *x = gen_implicit(150, 90, 3, 23);
    const char *params[2] = {"factors=6,epochs=5,blocks=4,seed=3",
                             "factors=6,epochs=5,blocks=3,seed=3,sampler=warp"};
    for (int k = 0; k < 2; k++) {
        rf_model *m[3];
        for (int t = 0; t < 3; t++) {
            rf_set_threads(t + 1);
            m[t] = fit("bpr", params[k], x->d);
        }
        rf_set_threads(2);
        char other[128];
        snprintf(other, sizeof other, "%s,seed=4", params[k]);
        rf_model *o = fit("bpr", other, x->d);
        rf_set_threads(0);
        float a[90], b[90];
        rf_err err;
        int differs = 0;
        for (int32_t u = 0; u < 150; u++) {
            assert_int_equal(rf_model_score_all(m[0], u, NULL, a, &err), 0);
            for (int t = 1; t < 3; t++) {
                assert_int_equal(rf_model_score_all(m[t], u, NULL, b, &err), 0);
                assert_memory_equal(a, b, sizeof a);
            }
            assert_int_equal(rf_model_score_all(o, u, NULL, b, &err), 0);
            differs |= memcmp(a, b, sizeof a) != 0;
        }
        assert_true(differs);
        for (int t = 0; t < 3; t++) rf_model_free(m[t]);
        rf_model_free(o);
    }
    idata_free(x);
}

/* The same on data large enough for the parallel path (sub-epochs of
 * 20,000 samples or more run on several threads). */
static void test_determinism_parallel(void **state) {
    (void)state;
    idata *x = gen_implicit(7000, 600, 4, 27);
    assert_true(x->d->ui->nnz / 6 >= 20000); /* blocks=2: 3 x 2 sub-epochs */
    rf_model *m[3];
    for (int t = 0; t < 3; t++) {
        rf_set_threads(t + 1);
        m[t] = fit("bpr", "factors=4,epochs=2,blocks=2,seed=5", x->d);
    }
    rf_set_threads(0);
    float a[600], b[600];
    rf_err err;
    for (int32_t u = 0; u < 7000; u += 7) {
        assert_int_equal(rf_model_score_all(m[0], u, NULL, a, &err), 0);
        for (int t = 1; t < 3; t++) {
            assert_int_equal(rf_model_score_all(m[t], u, NULL, b, &err), 0);
            assert_memory_equal(a, b, sizeof a);
        }
    }
    for (int t = 0; t < 3; t++) rf_model_free(m[t]);
    idata_free(x);
}

static void test_save_load(void **state) {
    (void)state;
    idata *x = gen_implicit(80, 60, 3, 24);
    rf_model *m = fit("bpr", "factors=5,epochs=5,blocks=2", x->d), *l = NULL;
    char *dir = rf_test_tmpdir("bpr");
    char path[512];
    snprintf(path, sizeof path, "%s/bpr.rfm", dir);
    rf_err err;
    assert_int_equal(rf_model_save(m, path, &err), 0);
    assert_int_equal(rf_model_load(path, &l, &err), 0);
    float a[60], b[60];
    rf_hist h;
    rf_hist_from_row(x->d, 7, &h);
    for (int32_t u = -1; u < 80; u++) {
        assert_int_equal(rf_model_score_all(m, u, NULL, a, &err), 0);
        assert_int_equal(rf_model_score_all(l, u, NULL, b, &err), 0);
        assert_memory_equal(a, b, sizeof a);
    }
    assert_int_equal(rf_model_score_all(m, -1, &h, a, &err), 0);
    assert_int_equal(rf_model_score_all(l, -1, &h, b, &err), 0);
    assert_memory_equal(a, b, sizeof a);
    /* score_items agrees with score_all */
    int32_t items[3] = {0, 17, 59};
    float c[3];
    assert_int_equal(rf_model_score_items(l, 4, NULL, items, 3, c, &err), 0);
    assert_int_equal(rf_model_score_all(l, 4, NULL, a, &err), 0);
    for (int k = 0; k < 3; k++) assert_true(c[k] == a[items[k]]);
    rf_model_free(l);
    /* a parameter that disagrees with the payload is refused */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "head -c 200 '%s' > '%s.t' && mv '%s.t' '%s'", path, path, path,
             path);
    assert_int_equal(system(cmd), 0);
    l = NULL;
    int rc = rf_model_load(path, &l, &err);
    assert_true(rc == RF_EFORMAT || rc == RF_ECORRUPT);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    idata_free(x);
}

/* Unknown users: empty history ranks by popularity; a history inside one
 * cluster folds in to a vector that ranks that cluster first; the same
 * history gives the same vector. */
static void test_unknown_users(void **state) {
    (void)state;
    idata *x = gen_implicit(300, 180, 6, 25);
    rf_model *m = fit("bpr", "factors=16,epochs=40,lr=0.05,blocks=2", x->d);
    float s[180];
    rf_err err;
    assert_int_equal(rf_model_score_all(m, -1, NULL, s, &err), 0);
    for (int32_t i = 0; i < 180; i++) assert_true(s[i] == (float)rf_csr_row_len(x->d->iu, i));
    /* the 8 most popular items of cluster 2 as history */
    int32_t hist[8];
    for (int k = 0; k < 8; k++) hist[k] = k * 6 + 2;
    rf_hist h = {8, hist, NULL, NULL};
    rf_scored top[10];
    int n = rf_model_recommend(m, -1, &h, 10, NULL, NULL, top, &err);
    assert_int_equal(n, 10);
    int in_cluster = 0;
    for (int k = 0; k < n; k++) in_cluster += x->cluster_of_item[top[k].id] == 2;
    print_message("folded-in user: %d of 10 recommendations in the history's cluster\n",
                  in_cluster);
    assert_true(in_cluster >= 8);
    float v1[16], v2[16];
    assert_int_equal(m->ops->user_dim(m), 16);
    assert_int_equal(m->ops->fold_in(m, &h, v1, &err), 0);
    assert_int_equal(m->ops->fold_in(m, &h, v2, &err), 0);
    assert_memory_equal(v1, v2, sizeof v1);
    /* every user scored as unknown, folded in from the training history:
     * well above popularity on the held-out items */
    rf_model *pop = fit("pop", NULL, x->d);
    double nd[2] = {0, 0};
    int nu = 0;
    for (int32_t u = 0; u < x->d->n_users; u++) {
        int nr = (int)rf_csr_row_len(x->rel, u);
        if (nr == 0) continue;
        rf_hist hr;
        rf_hist_from_row(x->d, u, &hr);
        for (int k = 0; k < 2; k++) {
            n = rf_model_recommend(k ? pop : m, -1, &hr, 10, NULL, NULL, top, &err);
            int32_t ids[10];
            for (int q = 0; q < n; q++) ids[q] = top[q].id;
            double out[RF_M_PER_USER];
            rf_eval_list(ids, n, x->rel->indices + x->rel->indptr[u], nr, 10, out);
            nd[k] += out[RF_M_NDCG];
        }
        nu++;
    }
    print_message("NDCG@10 of folded-in users %.4f, popularity %.4f\n", nd[0] / nu, nd[1] / nu);
    assert_true(nd[0] > 1.3 * nd[1]);
    rf_model_free(pop);
    rf_model_free(m);
    idata_free(x);
}

static void test_params_and_failures(void **state) {
    (void)state;
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("bpr", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "sampler=warp,warp_trials=5,blocks=1", &err), 0);
    assert_int_equal(rf_model_set_params(m, "sampler=nope", &err) < 0, 1);
    assert_int_equal(rf_model_set_params(m, "blocks=0", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "lr=0", &err), RF_ERANGE);
    rf_model_free(m);
    /* every allocation failure in fit is RF_ENOMEM, without leaks (ASan) */
    idata *x = gen_implicit(40, 30, 2, 26);
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        assert_int_equal(rf_model_new("bpr", &m, &err), 0);
        rf_model_set_params(m, "factors=3,epochs=2,blocks=2", &err);
        rf_mem_fail_after(k);
        int rc = rf_model_fit(m, x->d, &err);
        rf_mem_fail_after(-1);
        if (rc == 0)
            ok = 1;
        else
            assert_int_equal(rc, RF_ENOMEM);
        rf_model_free(m);
    }
    assert_true(ok);
    idata_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_gradients),
        cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_beats_pop),
        cmocka_unit_test(test_training_improves),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_determinism_parallel),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_unknown_users),
        cmocka_unit_test(test_params_and_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
