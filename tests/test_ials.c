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
 * from the float gram): x = (gs * sum_all w_i y_i y_i^T + sum_obs cm1 y y^T
 * + reg I)^-1 sum_obs conf y, with w (per row of Y) NULL meaning 1 and conf
 * NULL meaning 1 + cm1. Returns dim doubles (free()). */
static double *dense_row_w(const float *Y, int32_t ny, const float *w, double gs, int dim, int ld,
                           double reg, int32_t n, const int32_t *idx, const float *cm1,
                           const float *conf) {
    double *a = calloc((size_t)dim * dim, sizeof *a), *b = calloc((size_t)dim, sizeof *b);
    for (int32_t i = 0; i < ny; i++) {
        double wi = gs * (w ? w[i] : 1.0);
        for (int r = 0; r < dim; r++)
            for (int c = 0; c < dim; c++)
                a[r * dim + c] += wi * Y[(size_t)i * ld + r] * Y[(size_t)i * ld + c];
    }
    for (int32_t t = 0; t < n; t++) {
        const float *y = Y + (size_t)idx[t] * ld;
        double ct = conf ? conf[t] : 1.0 + cm1[t];
        for (int r = 0; r < dim; r++) {
            for (int c = 0; c < dim; c++) a[r * dim + c] += (double)cm1[t] * y[r] * y[c];
            b[r] += ct * y[r];
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

static void check_gram(int32_t rows, int dim, int ld, int weighted) {
    float *Y = rand_factors(rows, dim, ld, 0.5, 7 + (uint64_t)rows);
    float *G = malloc((size_t)ld * ld * sizeof *G), *G2 = malloc((size_t)ld * ld * sizeof *G2);
    float *w = NULL;
    if (weighted) {
        w = malloc((size_t)(rows ? rows : 1) * sizeof *w);
        for (int32_t i = 0; i < rows; i++) w[i] = (float)(i % 7) * 0.5f;
    }
    rf_set_threads(2);
    assert_int_equal(rf_als_gram(Y, rows, ld, w, G, NULL), 0);
    rf_set_threads(1);
    assert_int_equal(rf_als_gram(Y, rows, ld, w, G2, NULL), 0);
    rf_set_threads(0);
    assert_memory_equal(G, G2, (size_t)ld * ld * sizeof *G); /* same bits for 1 and 2 threads */
    for (int r = 0; r < ld; r++)
        for (int c = 0; c < ld; c++) {
            double s = 0;
            for (int32_t i = 0; i < rows; i++)
                s += (w ? w[i] : 1.0) * Y[(size_t)i * ld + r] * Y[(size_t)i * ld + c];
            double g = G[(size_t)r * ld + c];
            if (fabs(g - s) > 1e-5 * (fabs(s) + rows * 0.25))
                fail_msg("gram %dx%d rows %d: [%d][%d] = %.9g, dense %.9g", dim, ld, rows, r, c, g,
                         s);
            if (r >= dim || c >= dim) assert_true(g == 0.0);
        }
    free(w);
    free(Y);
    free(G);
    free(G2);
}

static void test_gram(void **state) {
    (void)state;
    check_gram(0, 4, 8, 0);
    check_gram(37, 5, 8, 0);
    check_gram(10000, 16, 16, 0); /* several 4096-row chunks */
    check_gram(300, 29, 32, 0);
    check_gram(9000, 13, 16, 1); /* weighted */
    check_gram(50, 3, 8, 1);
}

/* One random row problem: Y (ny x ld), n observations. */
typedef struct prob {
    float *Y, *G, *cm1, *conf;
    int32_t *idx;
    rf_als_row row;
} prob;

/* A random row problem; `general`: explicit conf (c - cm1 = w in [0.3, 2],
 * so some cm1 < 0) and gram_scale 1.7. */
static void prob_make_g(prob *p, int32_t ny, int dim, int32_t n, double reg, uint64_t seed,
                        int general) {
    int ld = (dim + 7) & ~7;
    p->Y = rand_factors(ny, dim, ld, 0.3, seed);
    p->G = malloc((size_t)ld * ld * sizeof *p->G);
    assert_int_equal(rf_als_gram(p->Y, ny, ld, NULL, p->G, NULL), 0);
    rf_rng g;
    rf_rng_stream(&g, seed, 99);
    p->idx = malloc((size_t)(n ? n : 1) * sizeof *p->idx);
    p->cm1 = malloc((size_t)(n ? n : 1) * sizeof *p->cm1);
    p->conf = malloc((size_t)(n ? n : 1) * sizeof *p->conf);
    for (int32_t t = 0; t < n; t++) {
        p->idx[t] = (int32_t)rf_rng_below(&g, (uint64_t)ny);
        p->cm1[t] = t % 5 == 0 ? 0.0f : (float)(4.0 * rf_rng_uniform(&g));
        p->conf[t] = 1.0f + p->cm1[t];
        if (general) {
            p->conf[t] = (float)(0.5 + 3.0 * rf_rng_uniform(&g));
            p->cm1[t] = p->conf[t] - (float)(0.3 + 1.7 * rf_rng_uniform(&g));
        }
    }
    p->row = (rf_als_row){p->Y, dim, ld, p->G, reg, n, p->idx, p->cm1,
                          general ? p->conf : NULL, general ? 1.7f : 1.0f};
}

/* dense_row_w of a prob */
static double *prob_dense(const prob *p, int32_t ny) {
    const rf_als_row *r = &p->row;
    return dense_row_w(p->Y, ny, NULL, r->gram_scale, r->dim, r->ld, r->reg, r->n, p->idx, p->cm1,
                       r->conf);
}

static void prob_free(prob *p) {
    free(p->Y);
    free(p->G);
    free(p->idx);
    free(p->cm1);
    free(p->conf);
}

/* f(x) = 1/2 x^T A x - b^T x of the row problem, in double. */
static double quad(const prob *p, const float *x) {
    const rf_als_row *r = &p->row;
    double f = 0;
    for (int a = 0; a < r->dim; a++)
        for (int b = 0; b < r->dim; b++)
            f += 0.5 * x[a] * r->gram_scale * (double)r->gram[a * r->ld + b] * x[b];
    for (int a = 0; a < r->dim; a++) f += 0.5 * r->reg * x[a] * x[a];
    for (int32_t t = 0; t < r->n; t++) {
        const float *y = r->Y + (size_t)r->idx[t] * r->ld;
        double d = 0;
        for (int a = 0; a < r->dim; a++) d += (double)y[a] * x[a];
        f += 0.5 * r->cm1[t] * d * d - (r->conf ? r->conf[t] : 1.0 + r->cm1[t]) * d;
    }
    return f;
}

static const int g_dims[] = {1, 3, 8, 13, 32, 64, 100};

/* Textbook conjugate gradient in double on the dense row problem: `steps`
 * steps from x0 (dim doubles in/out). */
static void dense_cg(const prob *p, int steps, double *x) {
    const rf_als_row *r = &p->row;
    int n = r->dim;
    double *A = calloc((size_t)n * n, sizeof *A), *b = calloc((size_t)n, sizeof *b);
    double *res = calloc((size_t)n, sizeof *res), *d = calloc((size_t)n, sizeof *d);
    double *Ad = calloc((size_t)n, sizeof *Ad);
    for (int a = 0; a < n; a++)
        for (int c = 0; c < n; c++)
            A[a * n + c] = r->gram_scale * (double)r->gram[a * r->ld + c] + (a == c ? r->reg : 0);
    for (int32_t t = 0; t < r->n; t++) {
        const float *y = r->Y + (size_t)r->idx[t] * r->ld;
        for (int a = 0; a < n; a++) {
            for (int c = 0; c < n; c++) A[a * n + c] += (double)r->cm1[t] * y[a] * y[c];
            b[a] += (r->conf ? r->conf[t] : 1.0 + r->cm1[t]) * y[a];
        }
    }
    double rs = 0;
    for (int a = 0; a < n; a++) {
        double s = b[a];
        for (int c = 0; c < n; c++) s -= A[a * n + c] * x[c];
        res[a] = d[a] = s;
        rs += s * s;
    }
    for (int k = 0; k < steps && rs >= 1e-20; k++) {
        double dAd = 0;
        for (int a = 0; a < n; a++) {
            Ad[a] = 0;
            for (int c = 0; c < n; c++) Ad[a] += A[a * n + c] * d[c];
            dAd += d[a] * Ad[a];
        }
        double al = rs / dAd, rn = 0;
        for (int a = 0; a < n; a++) {
            x[a] += al * d[a];
            res[a] -= al * Ad[a];
            rn += res[a] * res[a];
        }
        for (int a = 0; a < n; a++) d[a] = res[a] + rn / rs * d[a];
        rs = rn;
    }
    free(A);
    free(b);
    free(res);
    free(d);
    free(Ad);
}

static void test_exact_vs_dense(void **state) {
    (void)state;
    for (int path = 0; path < 6; path++) {
        rf_als_set_simd(path % 3);
        int general = path >= 3;
        for (size_t di = 0; di < sizeof g_dims / sizeof *g_dims; di++) {
            int dim = g_dims[di];
            int32_t ns[] = {0, 1, 3, 4, 7, 50, 300};
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                prob p;
                prob_make_g(&p, 400, dim, ns[ni], 0.5 + dim * 0.1, 1000 + di * 10 + ni, general);
                float *work = malloc(rf_als_work_floats(p.row.ld) * sizeof *work);
                float *x = malloc((size_t)p.row.ld * sizeof *x);
                for (int k = 0; k < p.row.ld; k++) x[k] = 7; /* must be overwritten */
                assert_int_equal(rf_als_solve_exact(&p.row, x, work), 0);
                double *ref = prob_dense(&p, 400);
                double e = max_rel_diff(x, ref, dim);
                if (e > 2e-4)
                    fail_msg("%s%s dim %d n %d: exact vs dense rel diff %.3g", rf_als_simd(),
                             general ? " general" : "", dim, ns[ni], e);
                for (int k = dim; k < p.row.ld; k++) assert_true(x[k] == 0.0f);
                free(ref);
                free(work);
                free(x);
                prob_free(&p);
            }
        }
    }
    rf_als_set_simd(RF_ALS_SIMD_AUTO);
}

static void test_cg(void **state) {
    (void)state;
    for (int path = 0; path < 6; path++) {
        rf_als_set_simd(path % 3);
        for (size_t di = 0; di < sizeof g_dims / sizeof *g_dims; di++) {
            int dim = g_dims[di];
            prob p;
            prob_make_g(&p, 500, dim, 120, 1.0, 2000 + di, path >= 3);
            int ld = p.row.ld;
            float *work = malloc(rf_als_work_floats(ld) * sizeof *work);
            float *x = calloc((size_t)ld, sizeof *x), *x0 = calloc((size_t)ld, sizeof *x0);
            double *ref = prob_dense(&p, 500);
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
                /* the same iterates as textbook CG in double */
                double *xd = calloc((size_t)dim, sizeof *xd);
                for (int k = 0; k < dim; k++) xd[k] = x0[k];
                dense_cg(&p, steps, xd);
                double e = max_rel_diff(x, xd, dim);
                if (e > 1e-3)
                    fail_msg("%s dim %d: %d CG steps vs textbook CG %.3g", rf_als_simd(), dim,
                             steps, e);
                free(xd);
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
    rf_als_set_simd(RF_ALS_SIMD_AUTO);
}

/* The AVX-512, AVX2 and portable paths agree to rounding (dims hitting
 * the fixed-width passes and the generic ones). */
static void test_paths_agree(void **state) {
    (void)state;
    const int dims[] = {24, 64, 100, 128};
    for (int di = 0; di < 4; di++) {
        prob p;
        prob_make_g(&p, 300, dims[di], 60, 2.0, 77 + di, 1);
        int ld = p.row.ld;
        float *work = malloc(rf_als_work_floats(ld) * sizeof *work);
        float *xs[3], *cs[3];
        for (int lv = 0; lv < 3; lv++) {
            rf_als_set_simd(lv);
            xs[lv] = malloc((size_t)ld * sizeof(float));
            cs[lv] = calloc((size_t)ld, sizeof(float));
            assert_int_equal(rf_als_solve_exact(&p.row, xs[lv], work), 0);
            rf_als_solve_cg(&p.row, 3, cs[lv], work);
        }
        rf_als_set_simd(RF_ALS_SIMD_PORTABLE);
        assert_string_equal(rf_als_simd(), "portable");
        for (int lv = 1; lv < 3; lv++)
            for (int k = 0; k < dims[di]; k++) {
                assert_true(fabsf(xs[lv][k] - xs[0][k]) <= 1e-4f * (1 + fabsf(xs[0][k])));
                assert_true(fabsf(cs[lv][k] - cs[0][k]) <= 1e-4f * (1 + fabsf(cs[0][k])));
            }
        for (int lv = 0; lv < 3; lv++) {
            free(xs[lv]);
            free(cs[lv]);
        }
        free(work);
        prob_free(&p);
    }
    rf_als_set_simd(RF_ALS_SIMD_AUTO);
}

/* A matrix that is not positive definite in float is reported. */
static void test_exact_not_pd(void **state) {
    (void)state;
    float Y[8] = {0}, G[64] = {0}, work[64 + 32], x[8];
    int32_t idx[1] = {0};
    float cm1[1] = {0};
    rf_als_row r = {Y, 2, 8, G, 0.0, 1, idx, cm1, NULL, 1.0f}; /* A = 0 */
    assert_int_equal(rf_als_solve_exact(&r, x, work), RF_ERANGE);
}

/* ---- training ------------------------------------------------------------------ */

/* The full objective of factors.h in double:
 * sum c (p - x.y)^2 + sum_u reg_u |x_u|^2 + sum_i reg_i |y_i|^2. */
/* Unobserved weights w0 * pop_i^e / mean_j pop_j^e (all w0 for e = 0),
 * pop_i = distinct users (at least 1). n_items floats (free()). */
static float *unobs_weights(const rf_dataset *d, double w0, double e) {
    float *w = malloc((size_t)d->n_items * sizeof *w);
    double sum = 0;
    for (int32_t i = 0; i < d->n_items; i++) sum += pow(fmax(rf_csr_row_len(d->iu, i), 1), e);
    for (int32_t i = 0; i < d->n_items; i++)
        w[i] = (float)(w0 * pow(fmax(rf_csr_row_len(d->iu, i), 1), e) / (sum / d->n_items));
    return w;
}

/* sum_obs c (1 - s)^2 + sum_unobs w_i s^2 + reg (|U|^2 + |V|^2), s = x_u.y_i */
static double objective(const rf_model *m, const rf_dataset *d, double reg, double alpha,
                        double unobs_weight, double unobs_exp) {
    rf_factors f;
    assert_int_equal(rf_factors_get(m, &f, NULL), 0);
    float *wi = unobs_weights(d, unobs_weight, unobs_exp);
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
            double p = r > 0 ? 1 : 0, c = r > 0 ? 1 + alpha * r : wi[i];
            L += c * (p - s) * (p - s);
        }
    for (int32_t u = 0; u < d->n_users; u++)
        for (int k = 0; k < f.dim; k++) L += reg * pow(f.users[(size_t)u * f.ld + k], 2);
    for (int32_t i = 0; i < d->n_items; i++)
        for (int k = 0; k < f.dim; k++) L += reg * pow(f.items[(size_t)i * f.ld + k], 2);
    free(dense);
    free(wi);
    return L;
}

/* Every half-step of exact ALS minimises the objective over one side, so
 * it never increases from one iteration to the next. */
static void test_objective_decreases(void **state) {
    (void)state;
    fixture *f = fx_random(40, 30, 0.15, 0, 11);
    const double exps[] = {0, 0.7, 0}, w0s[] = {1, 1, 2.5};
    for (int e = 0; e < 3; e++) {
        double prev = INFINITY;
        for (int it = 1; it <= 6; it++) {
            char params[200];
            snprintf(params, sizeof params,
                     "factors=6,reg=0.5,alpha=3,unobs_weight=%g,unobs_exp=%g,iterations=%d,"
                     "solver=cholesky,init=1,seed=3,recency=0",
                     w0s[e], exps[e], it);
            rf_model *m = fit_model(params, &f->d);
            double L = objective(m, &f->d, 0.5, 3, w0s[e], exps[e]);
            if (L > prev * (1 + 1e-5))
                fail_msg("unobs %g/%g iteration %d: objective %.9g after %.9g", w0s[e], exps[e],
                         it, L, prev);
            prev = L;
            rf_model_free(m);
        }
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
        "factors=8,reg=0.3,alpha=2,unobs_weight=1,iterations=3,solver=cholesky,recency=0",
        "factors=13,reg=0.01,reg_exp=0.5,alpha=4,confidence=log,eps=0.5,unobs_weight=1,"
        "iterations=2,solver=cg,recency=0",
        "factors=9,reg=0.02,reg_exp=0.5,alpha=1.5,unobs_weight=1.3,unobs_exp=0.6,iterations=3,"
        "solver=cholesky,recency=0",
    };
    const double unobs[] = {0, 0, 0.6};
    for (int ci = 0; ci < 3; ci++) {
        rf_model *m = fit_model(cfgs[ci], &f->d);
        rf_factors fa;
        assert_int_equal(rf_factors_get(m, &fa, NULL), 0);
        assert_int_equal(m->ops->user_dim(m), fa.dim);
        float *wi = unobs_weights(&f->d, ci == 2 ? 1.3 : 1.0, unobs[ci]);
        float *G = malloc((size_t)fa.ld * fa.ld * sizeof *G);
        assert_int_equal(
            rf_als_gram(fa.items, fa.n_items, fa.ld, unobs[ci] > 0 ? wi : NULL, G, NULL), 0);
        float *work = malloc(rf_als_work_floats(fa.ld) * sizeof *work);
        float *x = malloc((size_t)fa.ld * sizeof *x), *v = malloc((size_t)fa.dim * sizeof *v);
        float *cm1 = malloc(64 * sizeof *cm1), *conf = malloc(64 * sizeof *conf);
        for (int32_t u = 0; u < f->d.n_users; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            assert_int_equal(m->ops->fold_in(m, &h, v, NULL), 0);
            double sum = 0;
            for (int32_t t = 0; t < h.n; t++) {
                double r = h.weights[t];
                double extra = ci == 1 ? 4 * log1p(r / 0.5) : ci == 0 ? 2 * r : 1.5 * r;
                cm1[t] = (float)(extra + (1.0 - (ci == 2 ? wi[h.items[t]] : 1.0)));
                conf[t] = (float)(1 + extra);
                sum += cm1[t];
            }
            double reg = ci == 1   ? 0.01 * pow(40 + sum, 0.5)
                         : ci == 0 ? 0.3
                                   : 0.02 * pow(1.3 * 40 + sum, 0.5);
            rf_als_row row = {fa.items, fa.dim, fa.ld, G, reg, h.n, h.items, cm1,
                              ci == 2 ? conf : NULL, 1.0f};
            if (h.n == 0) {
                for (int k = 0; k < fa.dim; k++) assert_true(v[k] == 0.0f);
                continue;
            }
            assert_int_equal(rf_als_solve_exact(&row, x, work), 0);
            assert_memory_equal(x, v, (size_t)fa.dim * sizeof *v);
            double *ref = dense_row_w(fa.items, fa.n_items, ci == 2 ? wi : NULL, 1.0, fa.dim,
                                      fa.ld, reg, h.n, h.items, cm1, conf);
            double e = max_rel_diff(v, ref, fa.dim);
            if (e > 1e-3) fail_msg("cfg %d user %d: fold-in vs dense %.3g", ci, u, e);
            free(ref);
        }
        /* Items: the item step against the final user factors. */
        for (int32_t i = 0; i < f->d.n_items; i += 3) {
            int64_t lo = f->d.iu->indptr[i];
            int32_t n = (int32_t)(f->d.iu->indptr[i + 1] - lo);
            const int32_t *us = f->d.iu->indices + lo;
            const float *w = f->d.iu->data + lo;
            assert_int_equal(rf_ials_fold_in_item(m, n, us, w, v, NULL), 0);
            double sum = 0, own = ci == 2 ? wi[i] : 1.0;
            for (int32_t t = 0; t < n; t++) {
                double r = w[t];
                double extra = ci == 1 ? 4 * log1p(r / 0.5) : ci == 0 ? 2 * r : 1.5 * r;
                cm1[t] = (float)(extra + (1.0 - own));
                conf[t] = (float)(1 + extra);
                sum += cm1[t];
            }
            double reg = ci == 1   ? 0.01 * pow(50 + sum, 0.5)
                         : ci == 0 ? 0.3
                                   : 0.02 * pow(own * 50 + sum, 0.5);
            double *ref = dense_row_w(fa.users, fa.n_users, NULL, own, fa.dim, fa.ld, reg, n, us,
                                      cm1, conf);
            double e = max_rel_diff(v, ref, fa.dim);
            if (n > 0 && e > 1e-3) fail_msg("cfg %d item %d: fold-in vs dense %.3g", ci, i, e);
            free(ref);
        }
        free(wi);
        free(G);
        free(work);
        free(x);
        free(v);
        free(cm1);
        free(conf);
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
    size_t nu = (size_t)x.n_users * x.ld * sizeof(float);
    size_t ni = (size_t)x.n_items * x.ld * sizeof(float);
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

/* ---- sequence recency ------------------------------------------------------------ */

/* Random event times in [0, span) for every entry (small spans give ties). */
static void fx_set_times(fixture *f, uint32_t span, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    for (int64_t q = 0; q < f->d.ui->nnz; q++)
        f->d.ui_ts[q] = (uint32_t)(rf_rng_uniform(&g) * span);
}

/* g of a rank r in a history of n, each shape written out (the model's
 * documented formulas). */
static double ref_g(int shape, double tau, double r, double n) {
    switch (shape) {
    case 0: return pow(2.0, -r / tau);
    case 1: return 1.0 / (1.0 + r / tau);
    case 2: return r < tau ? 1.0 : 0.0;
    default: return pow(2.0, -(r / n) / tau);
    }
}

/* The recency terms of a hand-made history: 6 items at times 100, 300,
 * 300, 200, 50, 400 rank (entries strictly later) 4, 1, 1, 3, 5, 0 - the
 * two at 300 share rank 1. Fold-in with those times must be the exact row
 * solve with c = 1 + alpha r + recency g(rank) for every shape; without
 * times every entry ranks 0. */
static void test_recency_weights(void **state) {
    (void)state;
    fixture *f = fx_random(40, 30, 0.2, 0, 91);
    fx_set_times(f, 1000, 92);
    const char *shapes[] = {"exp", "hyper", "step", "rel"};
    const double taus[] = {2, 1.5, 2, 0.3};
    const int32_t items[] = {4, 9, 2, 17, 0, 25};
    const float wts[] = {1, 2, 1, 0.5f, 1, 3};
    const int64_t ts[] = {100, 300, 300, 200, 50, 400};
    const int rank[] = {4, 1, 1, 3, 5, 0};
    for (int s = 0; s < 4; s++) {
        for (int with_ts = 0; with_ts < 2; with_ts++) {
            char params[200];
            snprintf(params, sizeof params,
                     "factors=5,reg=0.7,alpha=1.5,unobs_weight=1,iterations=2,solver=cholesky,"
                     "recency=6,recency_shape=%s,recency_tau=%g",
                     shapes[s], taus[s]);
            rf_model *m = fit_model(params, &f->d);
            rf_factors fa;
            assert_int_equal(rf_factors_get(m, &fa, NULL), 0);
            float *G = malloc((size_t)fa.ld * fa.ld * sizeof *G);
            float *work = malloc(rf_als_work_floats(fa.ld) * sizeof *work);
            float x[8], v[5], cm1[6];
            assert_int_equal(rf_als_gram(fa.items, fa.n_items, fa.ld, NULL, G, NULL), 0);
            for (int t = 0; t < 6; t++) {
                float rec = (float)(6 * ref_g(s, taus[s], with_ts ? rank[t] : 0, 6));
                cm1[t] = (float)(1.5 * wts[t] + (double)rec); /* c - 1, unobserved weight 1 */
            }
            rf_hist h = {6, items, wts, with_ts ? ts : NULL};
            assert_int_equal(rf_ials_fold_in_user(m, &h, v, NULL), 0);
            rf_als_row row = {fa.items, fa.dim, fa.ld, G, 0.7, 6, items, cm1, NULL, 1.0f};
            assert_int_equal(rf_als_solve_exact(&row, x, work), 0);
            assert_memory_equal(x, v, sizeof v);
            rf_hist empty = {0, items, wts, ts}; /* times but no entry: the zero vector */
            assert_int_equal(rf_ials_fold_in_user(m, &empty, v, NULL), 0);
            for (int k = 0; k < 5; k++) assert_true(v[k] == 0.0f);
            free(G);
            free(work);
            rf_model_free(m);
        }
    }
    fx_free(f);
}

/* Training uses the same terms on both sides: with the exact solver the
 * final item rows solve the item step against the final user factors with
 * c_ui = 1 + alpha r + recency g(rank of (u, i) among u's entries), the
 * ranks counted by brute force from the dataset's entry times. */
static void test_recency_item_step(void **state) {
    (void)state;
    fixture *f = fx_random(60, 40, 0.2, 0, 93);
    fx_set_times(f, 12, 94); /* many ties */
    const rf_dataset *d = &f->d;
    rf_model *m = fit_model("factors=6,reg=0.4,alpha=0.5,unobs_weight=2,iterations=3,"
                            "solver=cholesky,recency=8,recency_shape=rel,recency_tau=0.2",
                            d);
    rf_factors fa;
    assert_int_equal(rf_factors_get(m, &fa, NULL), 0);
    float cm1[64], conf[64];
    int32_t us[64];
    for (int32_t i = 0; i < d->n_items; i++) {
        int32_t n = 0;
        for (int32_t u = 0; u < d->n_users; u++)
            for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++) {
                if (d->ui->indices[q] != i) continue;
                int64_t later = 0, len = d->ui->indptr[u + 1] - d->ui->indptr[u];
                for (int64_t p = d->ui->indptr[u]; p < d->ui->indptr[u + 1]; p++)
                    later += d->ui_ts[p] > d->ui_ts[q];
                float rec = (float)(8 * ref_g(3, 0.2, (double)later, (double)len));
                double extra = 0.5 * d->ui->data[q] + (double)rec;
                assert_true(n < 64);
                us[n] = u;
                cm1[n] = (float)(extra + 1.0 - 2.0);
                conf[n] = (float)(1.0 + extra);
                n++;
            }
        if (n == 0) continue;
        double *ref = dense_row_w(fa.users, fa.n_users, NULL, 2.0, fa.dim, fa.ld, 0.4, n, us, cm1,
                                  conf);
        double e = max_rel_diff(fa.items + (size_t)i * fa.ld, ref, fa.dim);
        if (e > 1e-3) fail_msg("item %d: trained row vs dense item step %.3g", i, e);
        free(ref);
    }
    rf_model_free(m);
    fx_free(f);
}

/* With times, recency changes the factors; the fit stays bit-identical
 * for 1 and 2 threads; a dataset without entry times is refused. */
static void test_recency_determinism(void **state) {
    (void)state;
    fixture *f = fx_random(300, 120, 0.08, 1, 95);
    fx_set_times(f, 5000, 96);
    const char *p = "factors=10,iterations=3,recency=50,reg=60";
    rf_set_threads(1);
    rf_model *a = fit_model(p, &f->d);
    rf_set_threads(2);
    rf_model *b = fit_model(p, &f->d);
    rf_model *c = fit_model("factors=10,iterations=3,recency=0,reg=60", &f->d);
    rf_set_threads(0);
    same_factors(a, b, 1);
    same_factors(a, c, 0);
    rf_model_free(a);
    rf_model_free(b);
    rf_model_free(c);
    uint32_t *ts = f->d.ui_ts;
    f->d.ui_ts = NULL;
    rf_model *m = NULL;
    rf_err err;
    assert_int_equal(rf_model_new("ials", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "factors=4,recency=1", &err), 0);
    assert_int_equal(rf_model_fit(m, &f->d, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "event times"));
    assert_int_equal(rf_model_set_params(m, "recency=0", &err), 0);
    assert_int_equal(rf_model_fit(m, &f->d, &err), 0);
    f->d.ui_ts = ts;
    /* iu whose users are out of order is not ui's transpose */
    int32_t i0 = 0;
    while (rf_csr_row_len(f->d.iu, i0) < 2) i0++;
    int32_t *us = f->d.iu->indices + f->d.iu->indptr[i0], keep = us[0];
    us[0] = us[1];
    us[1] = keep;
    rf_model_free(m);
    assert_int_equal(rf_model_new("ials", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "factors=4,recency=1", &err), 0);
    assert_int_equal(rf_model_fit(m, &f->d, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "transpose"));
    us[1] = us[0];
    us[0] = keep;
    assert_int_equal(rf_model_fit(m, &f->d, &err), 0);
    rf_model_free(m);
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
    rf_model *m = fit_model("factors=8,iterations=8,reg=2", &f->d);
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
            for (int t = 0; t < got; t++)
                hits += top[t].id == held[u * 2] || top[t].id == held[u * 2 + 1];
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

/* Every allocation of fit, fold-in/scoring and load may fail: the result is
 * RF_ENOMEM (never a crash or a leak - the ASan build checks), and the
 * model still works once allocations succeed again. */
static void test_alloc_failures(void **state) {
    (void)state;
    fixture *f = fx_random(30, 20, 0.2, 1, 81);
    rf_test_model_alloc_failures(&f->d, "ials", "factors=4,iterations=2,unobs_exp=0.5", "ials_oom");
    fx_free(f);
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
        cmocka_unit_test(test_recency_weights),
        cmocka_unit_test(test_recency_item_step),
        cmocka_unit_test(test_recency_determinism),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_beats_popularity),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
