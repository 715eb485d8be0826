/* test_ials.c - implicit ALS: the row solvers (factors.h) against dense
 * double-precision normal equations, CG convergence, the Gram matrix,
 * the training objective, fold-in, scoring fallbacks, save/load,
 * determinism across runs and thread counts, and quality on a planted
 * structure. Every solver test runs on both kernel paths (AVX2 when the
 * CPU has it, and portable). Datasets are built by hand from coordinates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

/* ---- fixtures ----------------------------------------------------------- */

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

/* Random matrix, popular low ids; weights in [0.5, 3) or all 1. */
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

static rf_model *fit_model(const char *params, const rf_dataset *d) {
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_new("ials", &m, &err)) fail_msg("new: %s", err.msg);
    if (rf_model_set_params(m, params, &err)) fail_msg("params '%s': %s", params, err.msg);
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    return m;
}

/* ---- dense double references --------------------------------------------- */

/* Solve a x = b (n x n, row-major; both overwritten) by Gaussian
 * elimination with partial pivoting; solution in b. */
static void dense_solve(double *a, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[piv * n + c])) piv = r;
        for (int k = 0; k < n; k++) {
            double t = a[c * n + k];
            a[c * n + k] = a[piv * n + k];
            a[piv * n + k] = t;
        }
        double t = b[c];
        b[c] = b[piv];
        b[piv] = t;
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (int k = c; k < n; k++) a[r * n + k] -= f * a[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++) s -= a[r * n + k] * b[k];
        b[r] = s / a[r * n + r];
    }
}

/* The row problem of factors.h solved densely in double from Y itself (not
 * from the float gram): x = (sum_all y y^T + sum_obs cm1 y y^T + reg I)^-1
 * sum_obs (1 + cm1) y. Returns dim doubles (free()). */
static double *dense_row(const float *Y, int32_t ny, int dim, int ld, double reg, int32_t n,
                         const int32_t *idx, const float *cm1) {
    double *a = calloc((size_t)dim * dim, sizeof *a), *b = calloc((size_t)dim, sizeof *b);
    for (int32_t i = 0; i < ny; i++)
        for (int r = 0; r < dim; r++)
            for (int c = 0; c < dim; c++)
                a[r * dim + c] += (double)Y[(size_t)i * ld + r] * Y[(size_t)i * ld + c];
    for (int32_t t = 0; t < n; t++) {
        const float *y = Y + (size_t)idx[t] * ld;
        for (int r = 0; r < dim; r++) {
            for (int c = 0; c < dim; c++) a[r * dim + c] += (double)cm1[t] * y[r] * y[c];
            b[r] += (1.0 + cm1[t]) * y[r];
        }
    }
    for (int r = 0; r < dim; r++) a[r * dim + r] += reg;
    dense_solve(a, b, dim);
    free(a);
    return b;
}

static double max_rel_diff(const float *x, const double *ref, int n) {
    double num = 0, den = 0;
    for (int k = 0; k < n; k++) {
        num = fmax(num, fabs((double)x[k] - ref[k]));
        den = fmax(den, fabs(ref[k]));
    }
    return num / (den > 0 ? den : 1);
}

/* Random factor matrix, ld-padded with zeros. */
static float *rand_factors(int32_t rows, int dim, int ld, double scale, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    float *Y = calloc((size_t)rows * ld, sizeof *Y);
    for (int32_t i = 0; i < rows; i++)
        for (int k = 0; k < dim; k++) Y[(size_t)i * ld + k] = (float)(scale * rf_rng_normal(&g));
    return Y;
}

/* ---- kernels ------------------------------------------------------------------ */

static void check_gram(int32_t rows, int dim, int ld) {
    float *Y = rand_factors(rows, dim, ld, 0.5, 7 + (uint64_t)rows);
    float *G = malloc((size_t)ld * ld * sizeof *G), *G2 = malloc((size_t)ld * ld * sizeof *G2);
    rf_set_threads(2);
    assert_int_equal(rf_als_gram(Y, rows, ld, G, NULL), 0);
    rf_set_threads(1);
    assert_int_equal(rf_als_gram(Y, rows, ld, G2, NULL), 0);
    rf_set_threads(0);
    assert_memory_equal(G, G2, (size_t)ld * ld * sizeof *G); /* same bits for 1 and 2 threads */
    for (int r = 0; r < ld; r++)
        for (int c = 0; c < ld; c++) {
            double s = 0;
            for (int32_t i = 0; i < rows; i++)
                s += (double)Y[(size_t)i * ld + r] * Y[(size_t)i * ld + c];
            double g = G[(size_t)r * ld + c];
            if (fabs(g - s) > 1e-5 * (fabs(s) + rows * 0.25))
                fail_msg("gram %dx%d rows %d: [%d][%d] = %.9g, dense %.9g", dim, ld, rows, r, c, g,
                         s);
            if (r >= dim || c >= dim) assert_true(g == 0.0);
        }
    free(Y);
    free(G);
    free(G2);
}

static void test_gram(void **state) {
    (void)state;
    check_gram(0, 4, 8);
    check_gram(37, 5, 8);
    check_gram(10000, 16, 16); /* several 4096-row chunks */
    check_gram(300, 29, 32);
}

/* One random row problem: Y (ny x ld), n observations. */
typedef struct prob {
    float *Y, *G, *cm1;
    int32_t *idx;
    rf_als_row row;
} prob;

static void prob_make(prob *p, int32_t ny, int dim, int32_t n, double reg, uint64_t seed) {
    int ld = (dim + 7) & ~7;
    p->Y = rand_factors(ny, dim, ld, 0.3, seed);
    p->G = malloc((size_t)ld * ld * sizeof *p->G);
    assert_int_equal(rf_als_gram(p->Y, ny, ld, p->G, NULL), 0);
    rf_rng g;
    rf_rng_stream(&g, seed, 99);
    p->idx = malloc((size_t)(n ? n : 1) * sizeof *p->idx);
    p->cm1 = malloc((size_t)(n ? n : 1) * sizeof *p->cm1);
    for (int32_t t = 0; t < n; t++) {
        p->idx[t] = (int32_t)rf_rng_below(&g, (uint64_t)ny);
        p->cm1[t] = t % 5 == 0 ? 0.0f : (float)(4.0 * rf_rng_uniform(&g));
    }
    p->row = (rf_als_row){p->Y, dim, ld, p->G, reg, n, p->idx, p->cm1};
}

static void prob_free(prob *p) {
    free(p->Y);
    free(p->G);
    free(p->idx);
    free(p->cm1);
}

/* f(x) = 1/2 x^T A x - b^T x of the row problem, in double. */
static double quad(const prob *p, const float *x) {
    const rf_als_row *r = &p->row;
    double f = 0;
    for (int a = 0; a < r->dim; a++)
        for (int b = 0; b < r->dim; b++) f += 0.5 * x[a] * (double)r->gram[a * r->ld + b] * x[b];
    for (int a = 0; a < r->dim; a++) f += 0.5 * r->reg * x[a] * x[a];
    for (int32_t t = 0; t < r->n; t++) {
        const float *y = r->Y + (size_t)r->idx[t] * r->ld;
        double d = 0;
        for (int a = 0; a < r->dim; a++) d += (double)y[a] * x[a];
        f += 0.5 * r->cm1[t] * d * d - (1.0 + r->cm1[t]) * d;
    }
    return f;
}

static const int g_dims[] = {1, 3, 8, 13, 32, 64, 100};

static void test_exact_vs_dense(void **state) {
    (void)state;
    for (int path = 0; path < 2; path++) {
        rf_als_set_simd(path);
        for (size_t di = 0; di < sizeof g_dims / sizeof *g_dims; di++) {
            int dim = g_dims[di];
            int32_t ns[] = {0, 1, 3, 4, 7, 50, 300};
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                prob p;
                prob_make(&p, 400, dim, ns[ni], 0.5 + dim * 0.1, 1000 + di * 10 + ni);
                float *work = malloc(rf_als_work_floats(p.row.ld) * sizeof *work);
                float *x = malloc((size_t)p.row.ld * sizeof *x);
                for (int k = 0; k < p.row.ld; k++) x[k] = 7; /* must be overwritten */
                assert_int_equal(rf_als_solve_exact(&p.row, x, work), 0);
                double *ref = dense_row(p.Y, 400, dim, p.row.ld, p.row.reg, ns[ni], p.idx, p.cm1);
                double e = max_rel_diff(x, ref, dim);
                if (e > 2e-4)
                    fail_msg("%s dim %d n %d: exact vs dense rel diff %.3g", rf_als_simd(), dim,
                             ns[ni], e);
                for (int k = dim; k < p.row.ld; k++) assert_true(x[k] == 0.0f);
                free(ref);
                free(work);
                free(x);
                prob_free(&p);
            }
        }
    }
    rf_als_set_simd(1);
}

static void test_cg(void **state) {
    (void)state;
    for (int path = 0; path < 2; path++) {
        rf_als_set_simd(path);
        for (size_t di = 0; di < sizeof g_dims / sizeof *g_dims; di++) {
            int dim = g_dims[di];
            prob p;
            prob_make(&p, 500, dim, 120, 1.0, 2000 + di);
            int ld = p.row.ld;
            float *work = malloc(rf_als_work_floats(ld) * sizeof *work);
            float *x = calloc((size_t)ld, sizeof *x), *x0 = calloc((size_t)ld, sizeof *x0);
            double *ref = dense_row(p.Y, 500, dim, ld, p.row.reg, p.row.n, p.idx, p.cm1);
            /* CG steps from a random warm start never raise the quadratic,
             * and reach the exact solution with enough steps. */
            rf_rng g;
            rf_rng_seed(&g, 5);
            for (int k = 0; k < dim; k++) x0[k] = (float)(0.1 * rf_rng_normal(&g));
            double prev = quad(&p, x0);
            for (int steps = 1; steps <= 3; steps++) {
                memcpy(x, x0, (size_t)ld * sizeof *x);
                rf_als_solve_cg(&p.row, steps, x, work);
                double f = quad(&p, x);
                if (f > prev + 1e-6 * fabs(prev))
                    fail_msg("%s dim %d: %d CG steps raise f from %.9g to %.9g", rf_als_simd(), dim,
                             steps, prev, f);
                prev = f;
                for (int k = dim; k < ld; k++) assert_true(x[k] == 0.0f);
            }
            memcpy(x, x0, (size_t)ld * sizeof *x);
            rf_als_solve_cg(&p.row, 3 * dim + 10, x, work);
            double e = max_rel_diff(x, ref, dim);
            if (e > 1e-3) fail_msg("%s dim %d: converged CG vs dense %.3g", rf_als_simd(), dim, e);
            /* one step from the exact solution keeps it */
            float *xe = malloc((size_t)ld * sizeof *xe);
            assert_int_equal(rf_als_solve_exact(&p.row, xe, work), 0);
            memcpy(x, xe, (size_t)ld * sizeof *x);
            rf_als_solve_cg(&p.row, 3, x, work);
            assert_true(max_rel_diff(x, ref, dim) < 1e-3);
            free(xe);
            free(ref);
            free(work);
            free(x);
            free(x0);
            prob_free(&p);
        }
    }
    rf_als_set_simd(1);
}

/* The AVX2 and portable paths agree to rounding. */
static void test_paths_agree(void **state) {
    (void)state;
    prob p;
    prob_make(&p, 300, 24, 60, 2.0, 77);
    int ld = p.row.ld;
    float *work = malloc(rf_als_work_floats(ld) * sizeof *work);
    float xa[32], xp[32], ca[32] = {0}, cp[32] = {0};
    rf_als_set_simd(1);
    assert_int_equal(rf_als_solve_exact(&p.row, xa, work), 0);
    rf_als_solve_cg(&p.row, 3, ca, work);
    rf_als_set_simd(0);
    assert_string_equal(rf_als_simd(), "portable");
    assert_int_equal(rf_als_solve_exact(&p.row, xp, work), 0);
    rf_als_solve_cg(&p.row, 3, cp, work);
    rf_als_set_simd(1);
    for (int k = 0; k < 24; k++) {
        assert_true(fabsf(xa[k] - xp[k]) <= 1e-4f * (1 + fabsf(xp[k])));
        assert_true(fabsf(ca[k] - cp[k]) <= 1e-4f * (1 + fabsf(cp[k])));
    }
    free(work);
    prob_free(&p);
}

/* A matrix that is not positive definite in float is reported. */
static void test_exact_not_pd(void **state) {
    (void)state;
    float Y[8] = {0}, G[64] = {0}, work[64 + 32], x[8];
    int32_t idx[1] = {0};
    float cm1[1] = {0};
    rf_als_row r = {Y, 2, 8, G, 0.0, 1, idx, cm1}; /* A = 0 */
    assert_int_equal(rf_als_solve_exact(&r, x, work), RF_ERANGE);
}

/* ---- training ------------------------------------------------------------------ */

/* The full objective of factors.h in double:
 * sum c (p - x.y)^2 + sum_u reg_u |x_u|^2 + sum_i reg_i |y_i|^2. */
static double objective(const rf_model *m, const rf_dataset *d, double reg, double alpha) {
    rf_factors f;
    assert_int_equal(rf_factors_get(m, &f, NULL), 0);
    double *dense = calloc((size_t)d->n_users * d->n_items, sizeof *dense);
    for (int32_t u = 0; u < d->n_users; u++)
        for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++)
            dense[(size_t)u * d->n_items + d->ui->indices[q]] = d->ui->data[q];
    double L = 0;
    for (int32_t u = 0; u < d->n_users; u++)
        for (int32_t i = 0; i < d->n_items; i++) {
            double r = dense[(size_t)u * d->n_items + i], s = 0;
            for (int k = 0; k < f.dim; k++)
                s += (double)f.users[(size_t)u * f.ld + k] * f.items[(size_t)i * f.ld + k];
            double p = r > 0 ? 1 : 0, c = 1 + alpha * r;
            L += c * (p - s) * (p - s);
        }
    for (int32_t u = 0; u < d->n_users; u++)
        for (int k = 0; k < f.dim; k++) L += reg * pow(f.users[(size_t)u * f.ld + k], 2);
    for (int32_t i = 0; i < d->n_items; i++)
        for (int k = 0; k < f.dim; k++) L += reg * pow(f.items[(size_t)i * f.ld + k], 2);
    free(dense);
    return L;
}

/* Every half-step of exact ALS minimises the objective over one side, so
 * it never increases from one iteration to the next. */
static void test_objective_decreases(void **state) {
    (void)state;
    fixture *f = fx_random(40, 30, 0.15, 0, 11);
    double prev = INFINITY;
    for (int it = 1; it <= 6; it++) {
        char params[160];
        snprintf(params, sizeof params,
                 "factors=6,reg=0.5,alpha=3,iterations=%d,solver=cholesky,init=1,seed=3", it);
        rf_model *m = fit_model(params, &f->d);
        double L = objective(m, &f->d, 0.5, 3);
        if (L > prev * (1 + 1e-5)) fail_msg("iteration %d: objective %.9g after %.9g", it, L, prev);
        prev = L;
        rf_model_free(m);
    }
    fx_free(f);
}

/* Fold-in of a training user is the user step against the final item
 * factors: the same bits as rf_als_solve_exact on the model's factors, and
 * the dense double solution - also with the log confidence and the
 * frequency-scaled regularisation. */
static void test_fold_in_is_user_step(void **state) {
    (void)state;
    fixture *f = fx_random(50, 40, 0.2, 0, 21);
    const char *cfgs[] = {
        "factors=8,reg=0.3,alpha=2,iterations=3,solver=cholesky",
        "factors=13,reg=0.01,reg_exp=0.5,alpha=4,confidence=log,eps=0.5,iterations=2,solver=cg",
    };
    for (int ci = 0; ci < 2; ci++) {
        rf_model *m = fit_model(cfgs[ci], &f->d);
        rf_factors fa;
        assert_int_equal(rf_factors_get(m, &fa, NULL), 0);
        assert_int_equal(m->ops->user_dim(m), fa.dim);
        float *G = malloc((size_t)fa.ld * fa.ld * sizeof *G);
        assert_int_equal(rf_als_gram(fa.items, fa.n_items, fa.ld, G, NULL), 0);
        float *work = malloc(rf_als_work_floats(fa.ld) * sizeof *work);
        float *x = malloc((size_t)fa.ld * sizeof *x), *v = malloc((size_t)fa.dim * sizeof *v);
        float *cm1 = malloc(64 * sizeof *cm1);
        for (int32_t u = 0; u < f->d.n_users; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            assert_int_equal(m->ops->fold_in(m, &h, v, NULL), 0);
            double sum = 0;
            for (int32_t t = 0; t < h.n; t++) {
                double r = h.weights[t];
                cm1[t] = ci == 0 ? (float)(2 * r) : (float)(4 * log1p(r / 0.5));
                sum += cm1[t];
            }
            double reg = ci == 0 ? 0.3 : 0.01 * pow(40 + sum, 0.5);
            rf_als_row row = {fa.items, fa.dim, fa.ld, G, reg, h.n, h.items, cm1};
            if (h.n == 0) {
                for (int k = 0; k < fa.dim; k++) assert_true(v[k] == 0.0f);
                continue;
            }
            assert_int_equal(rf_als_solve_exact(&row, x, work), 0);
            assert_memory_equal(x, v, (size_t)fa.dim * sizeof *v);
            double *ref = dense_row(fa.items, fa.n_items, fa.dim, fa.ld, reg, h.n, h.items, cm1);
            double e = max_rel_diff(v, ref, fa.dim);
            if (e > 1e-3) fail_msg("cfg %d user %d: fold-in vs dense %.3g", ci, u, e);
            free(ref);
        }
        /* Items: the item step against the final user factors. */
        assert_int_equal(rf_als_gram(fa.users, fa.n_users, fa.ld, G, NULL), 0);
        for (int32_t i = 0; i < f->d.n_items; i += 3) {
            int64_t lo = f->d.iu->indptr[i];
            int32_t n = (int32_t)(f->d.iu->indptr[i + 1] - lo);
            const int32_t *us = f->d.iu->indices + lo;
            const float *w = f->d.iu->data + lo;
            assert_int_equal(rf_ials_fold_in_item(m, n, us, w, v, NULL), 0);
            double sum = 0;
            for (int32_t t = 0; t < n; t++) {
                cm1[t] = ci == 0 ? (float)(2 * (double)w[t]) : (float)(4 * log1p(w[t] / 0.5));
                sum += cm1[t];
            }
            double reg = ci == 0 ? 0.3 : 0.01 * pow(50 + sum, 0.5);
            double *ref = dense_row(fa.users, fa.n_users, fa.dim, fa.ld, reg, n, us, cm1);
            double e = max_rel_diff(v, ref, fa.dim);
            if (n > 0 && e > 1e-3) fail_msg("cfg %d item %d: fold-in vs dense %.3g", ci, i, e);
            free(ref);
        }
        free(G);
        free(work);
        free(x);
        free(v);
        free(cm1);
        rf_model_free(m);
    }
    fx_free(f);
}

/* Fold-in ignores items out of range and weights <= 0; 100 events at 64
 * factors stay cheap (the server folds in per request). */
static void test_fold_in_input(void **state) {
    (void)state;
    fixture *f = fx_random(60, 50, 0.2, 1, 31);
    rf_model *m = fit_model("factors=16,iterations=2", &f->d);
    int32_t items[] = {3, -1, 7, 50, 9, 1000};
    float w[] = {1, 1, 1, 1, 0, 1};
    int32_t clean[] = {3, 7};
    float v1[16], v2[16];
    rf_hist h1 = {6, items, w, NULL}, h2 = {2, clean, NULL, NULL};
    assert_int_equal(rf_ials_fold_in_user(m, &h1, v1, NULL), 0);
    assert_int_equal(rf_ials_fold_in_user(m, &h2, v2, NULL), 0);
    assert_memory_equal(v1, v2, sizeof v1);
    rf_hist none = {0, NULL, NULL, NULL};
    assert_int_equal(rf_ials_fold_in_user(m, &none, v1, NULL), 0);
    for (int k = 0; k < 16; k++) assert_true(v1[k] == 0.0f);
    rf_err err;
    rf_model *pop = NULL;
    assert_int_equal(rf_model_new("pop", &pop, NULL), 0);
    assert_int_equal(rf_ials_fold_in_user(pop, &h2, v1, &err), RF_EINVAL);
    rf_factors fa;
    assert_int_equal(rf_factors_get(pop, &fa, &err), RF_EINVAL);
    rf_model_free(pop);
    rf_model_free(m);
    fx_free(f);
}

/* Scores: trained vector for known users, fold-in for unknown users with
 * a history, popularity for an empty history. */
static void test_scoring(void **state) {
    (void)state;
    fixture *f = fx_random(30, 25, 0.25, 1, 41);
    rf_model *m = fit_model("factors=8,iterations=4", &f->d);
    rf_factors fa;
    assert_int_equal(rf_factors_get(m, &fa, NULL), 0);
    float *out = malloc(25 * sizeof *out), *ref = malloc(25 * sizeof *ref);
    float v[8];
    rf_hist h;
    rf_hist_from_row(&f->d, 4, &h);
    assert_int_equal(rf_model_score_all(m, 4, &h, out, NULL), 0);
    rf_factors_score_all(&fa, fa.users + 4 * fa.ld, ref);
    assert_memory_equal(out, ref, 25 * sizeof *out);
    for (int32_t i = 0; i < 25; i++) {
        double s = 0;
        for (int k = 0; k < fa.dim; k++)
            s += (double)fa.users[4 * fa.ld + k] * fa.items[(size_t)i * fa.ld + k];
        assert_true(fabs(s - out[i]) < 1e-5);
    }
    /* the same user unknown: folded in from the history */
    assert_int_equal(rf_model_score_all(m, -1, &h, out, NULL), 0);
    assert_int_equal(rf_ials_fold_in_user(m, &h, v, NULL), 0);
    rf_factors_score_all(&fa, v, ref);
    assert_memory_equal(out, ref, 25 * sizeof *out);
    /* score_items agrees with score_all */
    int32_t some[] = {0, 24, 7, 7};
    float so[4];
    assert_int_equal(rf_model_score_items(m, -1, &h, some, 4, so, NULL), 0);
    for (int t = 0; t < 4; t++) assert_true(fabsf(so[t] - out[some[t]]) < 1e-5f);
    assert_int_equal(rf_model_score_items(m, 4, &h, some, 4, so, NULL), 0);
    /* empty history, unknown user: popularity */
    assert_int_equal(rf_model_score_all(m, -1, NULL, out, NULL), 0);
    for (int32_t i = 0; i < 25; i++) assert_true(out[i] == (float)rf_csr_row_len(f->d.iu, i));
    assert_int_equal(rf_model_score_items(m, -1, NULL, some, 4, so, NULL), 0);
    for (int t = 0; t < 4; t++) assert_true(so[t] == out[some[t]]);
    free(out);
    free(ref);
    rf_model_free(m);
    fx_free(f);
}

/* A user without training data (empty row) is folded in from the history. */
static void test_empty_user(void **state) {
    (void)state;
    int32_t r[] = {0, 0, 1, 1, 2, 2, 2};
    int32_t c[] = {0, 1, 1, 2, 0, 2, 3};
    fixture *f = fx_from_coo(4, 5, 7, r, c, NULL); /* user 3: nothing */
    rf_model *m = fit_model("factors=2,iterations=3,solver=cholesky", &f->d);
    float a[5], b[5];
    int32_t hi[] = {1};
    rf_hist h = {1, hi, NULL, NULL};
    assert_int_equal(rf_model_score_all(m, 3, &h, a, NULL), 0);
    assert_int_equal(rf_model_score_all(m, -1, &h, b, NULL), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(rf_model_score_all(m, 3, NULL, a, NULL), 0);
    assert_true(a[4] == 0.0f && a[0] == 2.0f); /* popularity */
    rf_model_free(m);
    fx_free(f);
}

static void test_save_load(void **state) {
    (void)state;
    fixture *f = fx_random(40, 33, 0.2, 0, 51);
    rf_model *m = fit_model("factors=13,iterations=3,alpha=2,reg_exp=0.3,confidence=log", &f->d);
    char *dir = rf_test_tmpdir("ials");
    char path[512];
    snprintf(path, sizeof path, "%s/ials.rfm", dir);
    rf_err err;
    if (rf_model_save(m, path, &err)) fail_msg("save: %s", err.msg);
    rf_model *l = NULL;
    if (rf_model_load(path, &l, &err)) fail_msg("load: %s", err.msg);
    assert_int_equal(l->ops->user_dim(l), 13);
    rf_factors a, b;
    assert_int_equal(rf_factors_get(m, &a, NULL), 0);
    assert_int_equal(rf_factors_get(l, &b, NULL), 0);
    assert_int_equal(a.ld, b.ld);
    assert_memory_equal(a.users, b.users, (size_t)a.n_users * a.ld * sizeof(float));
    assert_memory_equal(a.items, b.items, (size_t)a.n_items * a.ld * sizeof(float));
    float *s1 = malloc(33 * sizeof *s1), *s2 = malloc(33 * sizeof *s2);
    for (int32_t u = -1; u < 40; u++) {
        rf_hist h;
        rf_hist_from_row(&f->d, u < 0 ? 7 : u, &h);
        assert_int_equal(rf_model_score_all(m, u, &h, s1, NULL), 0);
        assert_int_equal(rf_model_score_all(l, u, &h, s2, NULL), 0);
        assert_memory_equal(s1, s2, 33 * sizeof *s1);
    }
    assert_int_equal(rf_model_score_all(m, -1, NULL, s1, NULL), 0);
    assert_int_equal(rf_model_score_all(l, -1, NULL, s2, NULL), 0);
    assert_memory_equal(s1, s2, 33 * sizeof *s1);
    free(s1);
    free(s2);
    rf_model_free(l);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(f);
}

static void same_factors(const rf_model *a, const rf_model *b, int expect_same) {
    rf_factors x, y;
    assert_int_equal(rf_factors_get(a, &x, NULL), 0);
    assert_int_equal(rf_factors_get(b, &y, NULL), 0);
    size_t nu = (size_t)x.n_users * x.ld * sizeof(float), ni = (size_t)x.n_items * x.ld * sizeof(float);
    int same = memcmp(x.users, y.users, nu) == 0 && memcmp(x.items, y.items, ni) == 0;
    assert_int_equal(same, expect_same);
}

/* Same seed: same bits, for 1 and 2 threads and for both solvers;
 * another seed: other factors. */
static void test_determinism(void **state) {
    (void)state;
    fixture *f = fx_random(300, 120, 0.08, 0, 61);
    const char *solvers[] = {"cg", "cholesky"};
    for (int s = 0; s < 2; s++) {
        char p1[128], p2[128];
        snprintf(p1, sizeof p1, "factors=10,iterations=3,solver=%s,seed=5", solvers[s]);
        snprintf(p2, sizeof p2, "factors=10,iterations=3,solver=%s,seed=6", solvers[s]);
        rf_set_threads(1);
        rf_model *a = fit_model(p1, &f->d);
        rf_set_threads(2);
        rf_model *b = fit_model(p1, &f->d);
        rf_model *c = fit_model(p1, &f->d);
        rf_model *d = fit_model(p2, &f->d);
        rf_set_threads(0);
        same_factors(a, b, 1);
        same_factors(b, c, 1);
        same_factors(a, d, 0);
        rf_model_free(a);
        rf_model_free(b);
        rf_model_free(c);
        rf_model_free(d);
    }
    fx_free(f);
}

static void test_params(void **state) {
    (void)state;
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("ials", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "factors=0", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "solver=lu", &err), RF_EPARSE);
    assert_int_equal(rf_model_set_params(m, "confidence=log,eps=0.5,solver=cholesky", &err), 0);
    assert_int_equal(rf_model_set_params(m, "nonsense=1", &err), RF_ENOTFOUND);
    rf_model_free(m);
}

/* ---- quality on a planted structure ---------------------------------------------- */

/* Users in 4 taste groups, items in 4 matching groups of 25 plus 20 items
 * everybody likes a little; each user takes in-group items with p = 0.35
 * and popular items with p = 0.2. Two in-group items per user are held out
 * for the test. Recall@10 of ials must beat pop clearly. */
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
    double rec[2] = {0, 0};
    int users = 0;
    rf_model *pop = NULL;
    rf_err err;
    assert_int_equal(rf_model_new("pop", &pop, NULL), 0);
    assert_int_equal(rf_model_fit(pop, &f->d, &err), 0);
    rf_model *m = fit_model("factors=8,iterations=8", &f->d);
    rf_model *ms[2] = {pop, m};
    rf_scored top[10];
    for (int32_t u = 0; u < nu; u++) {
        int nrel = (held[u * 2] >= 0) + (held[u * 2 + 1] >= 0);
        if (!nrel) continue;
        users++;
        rf_hist h;
        rf_hist_from_row(&f->d, u, &h);
        for (int k = 0; k < 2; k++) {
            int got = rf_model_recommend(ms[k], u, &h, 10, NULL, NULL, top, &err);
            assert_true(got == 10);
            int hits = 0;
            for (int t = 0; t < got; t++) hits += top[t].id == held[u * 2] || top[t].id == held[u * 2 + 1];
            rec[k] += (double)hits / nrel;
        }
    }
    rec[0] /= users;
    rec[1] /= users;
    if (!(rec[1] > rec[0] + 0.25))
        fail_msg("recall@10: ials %.3f, pop %.3f over %d users", rec[1], rec[0], users);
    rf_model_free(pop);
    rf_model_free(m);
    fx_free(f);
    free(r);
    free(c);
    free(held);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gram),
        cmocka_unit_test(test_exact_vs_dense),
        cmocka_unit_test(test_cg),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_exact_not_pd),
        cmocka_unit_test(test_objective_decreases),
        cmocka_unit_test(test_fold_in_is_user_step),
        cmocka_unit_test(test_fold_in_input),
        cmocka_unit_test(test_scoring),
        cmocka_unit_test(test_empty_user),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_beats_popularity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
