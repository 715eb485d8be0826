/* test_ease.c - EASE against a dense double-precision oracle (Gram matrix,
 * Gauss-Jordan inverse, B = I - P diag(1/diag P)), the zero diagonal,
 * scoring fallbacks, save/load, determinism across thread counts, the
 * RF_ETOOBIG refusal, and quality on a planted structure. Datasets are
 * built by hand from coordinates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

typedef struct fixture {
    rf_dataset d;
    rf_idmap *users, *items;
} fixture;

static fixture *fx_from_coo(int32_t nu, int32_t ni, int64_t n, const int32_t *r, const int32_t *c,
                            const float *v) {
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(rf_idmap_new(&f->users), 0);
    assert_int_equal(rf_idmap_new(&f->items), 0);
    char buf[32];
    int32_t id;
    for (int32_t u = 0; u < nu; u++) {
        snprintf(buf, sizeof buf, "u%d", u);
        assert_int_equal(rf_idmap_put(f->users, buf, strlen(buf), &id, NULL), 0);
    }
    for (int32_t i = 0; i < ni; i++) {
        snprintf(buf, sizeof buf, "i%d", i);
        assert_int_equal(rf_idmap_put(f->items, buf, strlen(buf), &id, NULL), 0);
    }
    assert_int_equal(rf_csr_from_coo(nu, ni, n, r, c, v, RF_FOLD_SUM, &f->d.ui, NULL), 0);
    assert_int_equal(rf_csr_transpose(f->d.ui, &f->d.iu), 0);
    f->d.n_users = nu;
    f->d.n_items = ni;
    f->d.users = f->users;
    f->d.items = f->items;
    f->d.ts_base = f->d.ts_max = 1000;
    f->d.ui_ts = calloc((size_t)(f->d.ui->nnz ? f->d.ui->nnz : 1), sizeof *f->d.ui_ts);
    return f;
}

static fixture *fx_random(int32_t nu, int32_t ni, double density, int binary, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    int64_t cap = (int64_t)nu * ni, n = 0;
    int32_t *r = malloc((size_t)cap * sizeof *r), *c = malloc((size_t)cap * sizeof *c);
    float *v = malloc((size_t)cap * sizeof *v);
    for (int32_t u = 0; u < nu; u++)
        for (int32_t i = 0; i < ni; i++)
            if (rf_rng_uniform(&g) < density * 2.0 * (1.0 - (double)i / (ni + 1))) {
                r[n] = u;
                c[n] = i;
                v[n] = binary ? 1.0f : (float)(0.5 + 2.5 * rf_rng_uniform(&g));
                n++;
            }
    fixture *f = fx_from_coo(nu, ni, n, r, c, v);
    free(r);
    free(c);
    free(v);
    return f;
}

static void fx_free(fixture *f) {
    if (!f) return;
    rf_csr_free(f->d.ui);
    rf_csr_free(f->d.iu);
    free(f->d.ui_ts);
    rf_idmap_free(f->users);
    rf_idmap_free(f->items);
    free(f);
}

static rf_model *fit_ease(const char *params, const rf_dataset *d) {
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_new("ease", &m, &err)) fail_msg("new: %s", err.msg);
    if (rf_model_set_params(m, params, &err)) fail_msg("params '%s': %s", params, err.msg);
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    return m;
}

/* B of EASE in double: G = X^T X + lambda I, P = G^-1 by Gauss-Jordan
 * with partial pivoting, B = I - P diag(1 / diag P). n x n, row-major. */
static double *oracle_b(const rf_dataset *d, double lambda) {
    const int32_t n = d->n_items;
    double *x = calloc((size_t)d->n_users * n, sizeof *x);
    for (int32_t u = 0; u < d->n_users; u++)
        for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++)
            x[(size_t)u * n + d->ui->indices[q]] = d->ui->data[q];
    double *a = calloc((size_t)n * 2 * n, sizeof *a); /* [G | I] */
    for (int32_t i = 0; i < n; i++) {
        for (int32_t j = 0; j < n; j++) {
            double s = 0;
            for (int32_t u = 0; u < d->n_users; u++)
                s += x[(size_t)u * n + i] * x[(size_t)u * n + j];
            a[(size_t)i * 2 * n + j] = s + (i == j ? lambda : 0);
        }
        a[(size_t)i * 2 * n + n + i] = 1;
    }
    for (int32_t c = 0; c < n; c++) {
        int32_t piv = c;
        for (int32_t r = c + 1; r < n; r++)
            if (fabs(a[(size_t)r * 2 * n + c]) > fabs(a[(size_t)piv * 2 * n + c])) piv = r;
        for (int32_t k = 0; k < 2 * n; k++) {
            double t = a[(size_t)c * 2 * n + k];
            a[(size_t)c * 2 * n + k] = a[(size_t)piv * 2 * n + k];
            a[(size_t)piv * 2 * n + k] = t;
        }
        double pv = a[(size_t)c * 2 * n + c];
        for (int32_t k = 0; k < 2 * n; k++) a[(size_t)c * 2 * n + k] /= pv;
        for (int32_t r = 0; r < n; r++) {
            if (r == c) continue;
            double f = a[(size_t)r * 2 * n + c];
            if (f == 0) continue;
            for (int32_t k = 0; k < 2 * n; k++)
                a[(size_t)r * 2 * n + k] -= f * a[(size_t)c * 2 * n + k];
        }
    }
    double *b = calloc((size_t)n * n, sizeof *b);
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < n; j++) {
            double pij = a[(size_t)i * 2 * n + n + j], pjj = a[(size_t)j * 2 * n + n + j];
            b[(size_t)i * n + j] = (i == j ? 1.0 : 0.0) - pij / pjj;
        }
    free(a);
    free(x);
    return b;
}

/* Scores of every user's history against the oracle: h . B. */
static void check_vs_oracle(int32_t nu, int32_t ni, double dens, int binary, double lambda,
                            uint64_t seed) {
    fixture *f = fx_random(nu, ni, dens, binary, seed);
    char params[64];
    snprintf(params, sizeof params, "lambda=%g", lambda);
    rf_model *m = fit_ease(params, &f->d);
    double *B = oracle_b(&f->d, lambda);
    double bmax = 0;
    for (int64_t x = 0; x < (int64_t)ni * ni; x++) bmax = fmax(bmax, fabs(B[x]));
    float *out = malloc((size_t)ni * sizeof *out);
    for (int32_t i = 0; i < ni; i++) { /* each row of B through a one-item history */
        int32_t it[1] = {i};
        rf_hist h = {1, it, NULL, NULL};
        assert_int_equal(rf_model_score_all(m, -1, &h, out, NULL), 0);
        assert_true(out[i] == 0.0f); /* diag(B) = 0 */
        for (int32_t j = 0; j < ni; j++)
            if (fabs(out[j] - B[(size_t)i * ni + j]) > 1e-4 * (bmax + 1e-3))
                fail_msg("n %d lambda %g: B[%d][%d] = %.8g, oracle %.8g", ni, lambda, i, j,
                         out[j], B[(size_t)i * ni + j]);
    }
    for (int32_t u = 0; u < nu; u++) {
        rf_hist h;
        rf_hist_from_row(&f->d, u, &h);
        assert_int_equal(rf_model_score_all(m, u, &h, out, NULL), 0);
        if (h.n == 0) continue;
        double wsum = 0;
        for (int32_t t = 0; t < h.n; t++) wsum += fabs(h.weights[t]);
        for (int32_t j = 0; j < ni; j++) {
            double s = 0;
            for (int32_t t = 0; t < h.n; t++) s += h.weights[t] * B[(size_t)h.items[t] * ni + j];
            if (fabs(out[j] - s) > 1e-4 * (bmax + 1e-3) * wsum)
                fail_msg("user %d item %d: %.8g, oracle %.8g", u, j, out[j], s);
        }
    }
    free(out);
    free(B);
    rf_model_free(m);
    fx_free(f);
}

static void test_vs_oracle(void **state) {
    (void)state;
    check_vs_oracle(30, 12, 0.25, 1, 5, 1);
    check_vs_oracle(60, 40, 0.15, 0, 2, 2);   /* weighted entries */
    check_vs_oracle(200, 150, 0.05, 1, 50, 3); /* several tiles of 64 */
    check_vs_oracle(10, 70, 0.1, 1, 0.5, 4);   /* more items than users; empty items */
}

/* Empty history: popularity; score_items agrees with score_all. */
static void test_fallback_and_items(void **state) {
    (void)state;
    fixture *f = fx_random(40, 30, 0.2, 1, 9);
    rf_model *m = fit_ease("lambda=10", &f->d);
    float out[30], so[4];
    assert_int_equal(rf_model_score_all(m, -1, NULL, out, NULL), 0);
    for (int32_t i = 0; i < 30; i++) assert_true(out[i] == (float)rf_csr_row_len(f->d.iu, i));
    rf_hist h;
    rf_hist_from_row(&f->d, 3, &h);
    assert_int_equal(rf_model_score_all(m, 3, &h, out, NULL), 0);
    int32_t some[] = {0, 29, 5, 5};
    assert_int_equal(rf_model_score_items(m, 3, &h, some, 4, so, NULL), 0);
    for (int t = 0; t < 4; t++)
        assert_true(fabsf(so[t] - out[some[t]]) <= 1e-6f * (1 + fabsf(out[some[t]])));
    rf_model_free(m);
    fx_free(f);
}

static void test_save_load(void **state) {
    (void)state;
    fixture *f = fx_random(50, 45, 0.15, 0, 13);
    rf_model *m = fit_ease("lambda=7", &f->d);
    char *dir = rf_test_tmpdir("ease");
    char path[512];
    snprintf(path, sizeof path, "%s/ease.rfm", dir);
    rf_err err;
    if (rf_model_save(m, path, &err)) fail_msg("save: %s", err.msg);
    rf_model *l = NULL;
    if (rf_model_load(path, &l, &err)) fail_msg("load: %s", err.msg);
    float a[45], b[45];
    for (int32_t u = -1; u < 50; u++) {
        rf_hist h;
        rf_hist_from_row(&f->d, u < 0 ? 0 : u, &h);
        assert_int_equal(rf_model_score_all(m, u, u < 0 ? NULL : &h, a, NULL), 0);
        assert_int_equal(rf_model_score_all(l, u, u < 0 ? NULL : &h, b, NULL), 0);
        assert_memory_equal(a, b, sizeof a);
    }
    rf_model_free(l);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(f);
}

/* The same scores for 1 and 2 threads (Gram rows and tiles are fixed). */
static void test_threads(void **state) {
    (void)state;
    fixture *f = fx_random(300, 200, 0.05, 0, 17);
    rf_set_threads(1);
    rf_model *a = fit_ease("lambda=20", &f->d);
    rf_set_threads(2);
    rf_model *b = fit_ease("lambda=20", &f->d);
    rf_set_threads(0);
    float *x = malloc(200 * sizeof *x), *y = malloc(200 * sizeof *y);
    double maxd = 0;
    for (int32_t i = 0; i < 200; i++) {
        int32_t it[1] = {i};
        rf_hist h = {1, it, NULL, NULL};
        assert_int_equal(rf_model_score_all(a, -1, &h, x, NULL), 0);
        assert_int_equal(rf_model_score_all(b, -1, &h, y, NULL), 0);
        for (int32_t j = 0; j < 200; j++) maxd = fmax(maxd, fabs(x[j] - y[j]));
    }
    /* The Gram matrix and the B transform are thread-count independent;
     * OpenBLAS's threaded factorisation may round differently. */
    assert_true(maxd < 1e-6);
    free(x);
    free(y);
    rf_model_free(a);
    rf_model_free(b);
    fx_free(f);
}

/* A catalog beyond max_memory_mb is refused with RF_ETOOBIG and a message
 * naming the item count and the bytes needed. */
static void test_too_big(void **state) {
    (void)state;
    fixture *f = fx_random(20, 600, 0.01, 1, 19);
    rf_model *m = NULL;
    rf_err err;
    assert_int_equal(rf_model_new("ease", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "max_memory_mb=1", &err), 0);
    assert_int_equal(rf_model_fit(m, &f->d, &err), RF_ETOOBIG);
    if (!strstr(err.msg, "600 items") || !strstr(err.msg, "bytes") ||
        !strstr(err.msg, "max_memory_mb=1"))
        fail_msg("message: %s", err.msg);
    assert_int_equal(m->fitted, 0);
    rf_model_free(m);
    m = fit_ease("max_memory_mb=2", &f->d); /* 600^2 * 4 = 1.4 MB fits in 2 */
    rf_model_free(m);
    assert_int_equal(rf_model_new("ease", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "lambda=0", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "max_memory_mb=-1", &err), RF_ERANGE);
    rf_model_free(m);
    fx_free(f);
}

/* Users in 4 taste groups, items in 4 matching groups of 25 plus 20 items
 * everybody likes a little; two in-group items per user held out.
 * Recall@10 of ease must beat pop clearly. */
static void test_beats_popularity(void **state) {
    (void)state;
    const int32_t nu = 400, ni = 120;
    rf_rng g;
    rf_rng_seed(&g, 71);
    int32_t *r = malloc(sizeof *r * nu * ni), *c = malloc(sizeof *c * nu * ni);
    int32_t *held = malloc(sizeof *held * nu * 2);
    int64_t n = 0;
    for (int32_t u = 0; u < nu; u++) {
        int grp = u % 4, nh = 0;
        for (int32_t i = 0; i < ni; i++) {
            int in_grp = i < 100 && i / 25 == grp;
            double p = in_grp ? 0.35 : i >= 100 ? 0.2 : 0.0;
            if (rf_rng_uniform(&g) >= p) continue;
            if (in_grp && nh < 2 && rf_rng_uniform(&g) < 0.3) {
                held[u * 2 + nh++] = i;
                continue;
            }
            r[n] = u;
            c[n] = i;
            n++;
        }
        while (nh < 2) held[u * 2 + nh++] = -1;
    }
    fixture *f = fx_from_coo(nu, ni, n, r, c, NULL);
    rf_model *pop = NULL;
    rf_err err;
    assert_int_equal(rf_model_new("pop", &pop, NULL), 0);
    assert_int_equal(rf_model_fit(pop, &f->d, &err), 0);
    rf_model *m = fit_ease("lambda=50", &f->d);
    rf_model *ms[2] = {pop, m};
    double rec[2] = {0, 0};
    int users = 0;
    rf_scored top[10];
    for (int32_t u = 0; u < nu; u++) {
        int nrel = (held[u * 2] >= 0) + (held[u * 2 + 1] >= 0);
        if (!nrel) continue;
        users++;
        rf_hist h;
        rf_hist_from_row(&f->d, u, &h);
        for (int k = 0; k < 2; k++) {
            int got = rf_model_recommend(ms[k], u, &h, 10, NULL, NULL, top, &err);
            assert_int_equal(got, 10);
            int hits = 0;
            for (int t = 0; t < got; t++)
                hits += top[t].id == held[u * 2] || top[t].id == held[u * 2 + 1];
            rec[k] += (double)hits / nrel;
        }
    }
    rec[0] /= users;
    rec[1] /= users;
    if (!(rec[1] > rec[0] + 0.25))
        fail_msg("recall@10: ease %.3f, pop %.3f over %d users", rec[1], rec[0], users);
    rf_model_free(pop);
    rf_model_free(m);
    fx_free(f);
    free(r);
    free(c);
    free(held);
}

/* Every allocation of fit, fold-in/scoring and load may fail: the result is
 * RF_ENOMEM (never a crash or a leak - the ASan build checks), and the
 * model still works once allocations succeed again. */
static void test_alloc_failures(void **state) {
    (void)state;
    fixture *f = fx_random(30, 20, 0.2, 1, 81);
    rf_test_model_alloc_failures(&f->d, "ease", "lambda=3", "ease_oom");
    fx_free(f);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vs_oracle),
        cmocka_unit_test(test_fallback_and_items),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_beats_popularity),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
