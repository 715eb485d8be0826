/* test_knn.c - the neighbourhood family: the shared similarity kernel
 * (src/models/knn_sim.c), itemknn's scoring and time decay, userknn.
 *
 * Oracles: a dense brute-force recomputation of every similarity from its
 * definition (double precision, knn_sim.h) on small random matrices -
 * values and top-N sets (tolerant to the float accumulation of the
 * kernel) - and brute-force scoring from those neighbours. Also: queries
 * against the fitted rows, save/load round trips, determinism across
 * thread counts. Datasets are built by hand (rf_csr_from_coo). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/knn_sim.h"
#include "recfuse/error.h"
#include "recfuse/itemknn.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/sparse.h"
#include "testutil.h"

/* ---- fixtures ---------------------------------------------------------- */

typedef struct fixture {
    rf_dataset d;
    rf_idmap *users, *items;
    int64_t *ts; /* per ui entry: absolute event time */
} fixture;

/* Random users x items data: entry (u, i) with probability about
 * 2 * density * (1 - i / ni) (low ids popular); weights in [0.5, 3) or 1;
 * times spread over 60 days. */
static fixture *fx_random(int32_t nu, int32_t ni, double density, int binary, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    int64_t cap = (int64_t)nu * ni, n = 0;
    int32_t *r = malloc((size_t)cap * sizeof *r), *c = malloc((size_t)cap * sizeof *c);
    float *v = malloc((size_t)cap * sizeof *v);
    int64_t *ts = malloc((size_t)cap * sizeof *ts);
    for (int32_t u = 0; u < nu; u++)
        for (int32_t i = 0; i < ni; i++)
            if (rf_rng_uniform(&g) < density * 2.0 * (1.0 - (double)i / (ni + 1))) {
                r[n] = u;
                c[n] = i;
                v[n] = binary ? 1.0f : (float)(0.5 + 2.5 * rf_rng_uniform(&g));
                ts[n] = 1700000000 + (int64_t)rf_rng_below(&g, 60 * 86400);
                n++;
            }
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
    int64_t *perm = NULL;
    assert_int_equal(rf_csr_from_coo(nu, ni, n, r, c, v, RF_FOLD_SUM, &f->d.ui, &perm), 0);
    assert_int_equal(rf_csr_transpose(f->d.ui, &f->d.iu), 0);
    f->d.n_users = nu;
    f->d.n_items = ni;
    f->d.users = f->users;
    f->d.items = f->items;
    f->d.ts_base = 1700000000;
    f->d.ts_max = 1700000000 + 60 * 86400;
    size_t nnz = (size_t)(f->d.ui->nnz ? f->d.ui->nnz : 1);
    f->d.ui_ts = calloc(nnz, sizeof *f->d.ui_ts);
    f->ts = calloc(nnz, sizeof *f->ts);
    for (int64_t x = 0; x < f->d.ui->nnz; x++) {
        f->ts[x] = ts[perm[x]];
        f->d.ui_ts[x] = (uint32_t)(ts[perm[x]] - f->d.ts_base);
    }
    rf_free(perm);
    free(r);
    free(c);
    free(v);
    free(ts);
    return f;
}

static void fx_free(fixture *f) {
    rf_csr_free(f->d.ui);
    rf_csr_free(f->d.iu);
    free(f->d.ui_ts);
    free(f->ts);
    rf_idmap_free(f->users);
    rf_idmap_free(f->items);
    free(f);
}

static rf_model *fit_model(const char *name, const char *params, const rf_dataset *d) {
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_new(name, &m, &err)) fail_msg("new %s: %s", name, err.msg);
    if (rf_model_set_params(m, params, &err)) fail_msg("params %s: %s", params, err.msg);
    if (rf_model_fit(m, d, &err)) fail_msg("fit %s: %s", name, err.msg);
    return m;
}

static rf_sim_opts opts_default(int kind, int k) {
    rf_sim_opts o = {kind, k, 0, 0.5, 1.2, 0.75, 1, 0.5, 1, RF_SIM_NORM_NONE};
    return o;
}

/* ---- brute force ------------------------------------------------------- */

/* Raw similarities of every row pair of the dense matrix X (nr x nc),
 * straight from the definitions in knn_sim.h; 0 on the diagonal and where
 * the denominator is not positive. */
static double *brute_sims(const double *X, int nr, int nc, const rf_sim_opts *o) {
    double *len = calloc((size_t)nr, sizeof *len), *cnt = calloc((size_t)nr, sizeof *cnt);
    double *csum = calloc((size_t)nc, sizeof *csum), *ccnt = calloc((size_t)nc, sizeof *ccnt);
    double avg = 0;
    for (int i = 0; i < nr; i++)
        for (int c = 0; c < nc; c++) {
            double x = X[(size_t)i * nc + c];
            if (x == 0) continue;
            len[i] += x;
            cnt[i] += 1;
            csum[c] += x;
            ccnt[c] += 1;
            avg += x;
        }
    avg /= nr;
    double *A = calloc((size_t)nr * nc, sizeof *A), *B = calloc((size_t)nr * nc, sizeof *B);
    for (int i = 0; i < nr; i++)
        for (int c = 0; c < nc; c++) {
            double x = X[(size_t)i * nc + c], idf = log((double)nr) - log1p(ccnt[c]), a = x, b = x;
            if (x == 0) continue;
            if (o->kind == RF_SIM_BM25) {
                double ln = (1 - o->b) + o->b * len[i] / avg;
                a = b = x * (o->k1 + 1) / (o->k1 * ln + x) * idf;
            } else if (o->kind == RF_SIM_TFIDF) {
                a = b = sqrt(x) * idf;
            } else if (o->kind == RF_SIM_RP3B) {
                a = pow(x / len[i], o->p3_alpha);
                b = pow(x / csum[c], o->p3_alpha); /* b(c, i) */
            }
            A[(size_t)i * nc + c] = a;
            B[(size_t)i * nc + c] = b;
        }
    double *l = calloc((size_t)nr, sizeof *l), *r = calloc((size_t)nr, sizeof *r);
    for (int i = 0; i < nr; i++) {
        double sq = 0;
        for (int c = 0; c < nc; c++) sq += A[(size_t)i * nc + c] * A[(size_t)i * nc + c];
        switch (o->kind) {
        case RF_SIM_COSINE:
        case RF_SIM_TFIDF: l[i] = r[i] = sqrt(sq); break;
        case RF_SIM_JACCARD: l[i] = r[i] = sq; break;
        case RF_SIM_ASYM: l[i] = pow(sq, o->alpha), r[i] = pow(sq, 1 - o->alpha); break;
        case RF_SIM_BM25: l[i] = r[i] = 1; break;
        default: l[i] = 1, r[i] = pow(cnt[i], o->p3_beta);
        }
    }
    double *S = calloc((size_t)nr * nr, sizeof *S);
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nr; j++) {
            if (i == j) continue;
            double dot = 0;
            for (int c = 0; c < nc; c++) dot += A[(size_t)i * nc + c] * B[(size_t)j * nc + c];
            double den = o->kind == RF_SIM_JACCARD ? l[i] + r[j] - dot + o->shrink
                                                   : l[i] * r[j] + o->shrink;
            S[(size_t)i * nr + j] = den > 0 ? dot / den : 0;
        }
    free(len), free(cnt), free(csum), free(ccnt), free(A), free(B), free(l), free(r);
    return S;
}

static double *dense_of(const rf_csr *m) {
    double *X = calloc((size_t)m->nrows * m->ncols, sizeof *X);
    for (int32_t i = 0; i < m->nrows; i++)
        for (int64_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
            X[(size_t)i * m->ncols + m->indices[p]] = m->data[p];
    return X;
}

/* Check one neighbour row (ids ascending, post-processed sims) against
 * the brute raw sims of row i: the right count, only rows whose brute sim
 * is within rounding of the k-th best, and values equal to the brute sims
 * post-processed over the same set. */
static void check_row(const double *S, int nr, int32_t i, const rf_sim_opts *o, const int32_t *ids,
                      const float *vals, int64_t n, const char *what) {
    double *best = malloc((size_t)nr * sizeof *best);
    int np = 0;
    for (int j = 0; j < nr; j++)
        if (S[(size_t)i * nr + j] > 1e-9) best[np++] = S[(size_t)i * nr + j];
    /* k-th largest */
    for (int x = 0; x < np; x++)
        for (int y = x + 1; y < np; y++)
            if (best[y] > best[x]) {
                double t = best[x];
                best[x] = best[y];
                best[y] = t;
            }
    int expect = np < o->k ? np : o->k;
    if (n != expect) fail_msg("%s row %d: %lld neighbours, brute %d", what, i, (long long)n, expect);
    double kth = expect ? best[expect - 1] : 0, z = 0;
    for (int64_t e = 0; e < n; e++) {
        double s = S[(size_t)i * nr + ids[e]];
        if (e > 0) assert_true(ids[e] > ids[e - 1]);
        if (ids[e] == i) fail_msg("%s row %d is its own neighbour", what, i);
        if (!(s >= kth * (1 - 1e-5)))
            fail_msg("%s row %d: neighbour %d sim %.9g below the k-th best %.9g", what, i, ids[e],
                     s, kth);
        double v = pow(s, o->q);
        z = o->norm == RF_SIM_NORM_L1 ? z + v : (v > z ? v : z);
    }
    for (int64_t e = 0; e < n; e++) {
        double v = pow(S[(size_t)i * nr + ids[e]], o->q);
        if (o->norm != RF_SIM_NORM_NONE) v /= z;
        if (fabs(v - vals[e]) > 2e-5 * (fabs(v) + 1e-3))
            fail_msg("%s row %d nbr %d: %.9g, brute %.9g", what, i, ids[e], vals[e], v);
    }
    free(best);
}

/* The kernel over the rows of x against brute force. */
static void check_kernel(const rf_csr *x, const rf_csr *xt, const rf_sim_opts *o, const char *what) {
    rf_sim s;
    rf_csr *nb = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_sim_init(&s, x, xt, o, &err) || rf_sim_all(&s, "test", &nb, &err))
        fail_msg("%s: %s", what, err.msg);
    double *X = dense_of(x);
    double *S = brute_sims(X, x->nrows, x->ncols, o);
    rf_scored *q = malloc((size_t)o->k * sizeof *q);
    for (int32_t i = 0; i < x->nrows; i++) {
        int64_t lo = nb->indptr[i], n = nb->indptr[i + 1] - lo;
        check_row(S, x->nrows, i, o, nb->indices + lo, nb->data + lo, n, what);
        /* a query with the row's own entries gives exactly the fitted row */
        int64_t xl = x->indptr[i];
        int c = rf_sim_query(&s, x->indices + xl, x->data + xl, (int32_t)(x->indptr[i + 1] - xl),
                             i, q);
        assert_int_equal(c, n);
        for (int e = 0; e < c; e++) {
            assert_int_equal(q[e].id, nb->indices[lo + e]);
            if (q[e].score != nb->data[lo + e])
                fail_msg("%s row %d: query %.9g fit %.9g", what, i, q[e].score, nb->data[lo + e]);
        }
    }
    free(q);
    free(S);
    free(X);
    rf_csr_free(nb);
    rf_sim_free(&s);
}

/* ---- the kernel -------------------------------------------------------- */

static void test_kernel_vs_brute(void **state) {
    static const struct {
        int32_t nu, ni;
        double dens;
    } shapes[] = {{40, 30, 0.15}, {25, 50, 0.2}, {60, 300, 0.012}, {30, 12, 0.3}};
    int kinds[] = {RF_SIM_COSINE, RF_SIM_JACCARD, RF_SIM_ASYM,
                   RF_SIM_BM25,   RF_SIM_TFIDF,   RF_SIM_RP3B};
    char what[160];
    for (int sh = 0; sh < 4; sh++)
        for (int binary = 0; binary <= 1; binary++) {
            fixture *f = fx_random(shapes[sh].nu, shapes[sh].ni, shapes[sh].dens, binary,
                                   100 + sh * 2 + binary);
            for (int kd = 0; kd < 6; kd++)
                for (int var = 0; var < 4; var++) {
                    rf_sim_opts o = opts_default(kinds[kd], var == 3 ? 1000 : 3 + 2 * var);
                    if (var == 1) { /* shrink, exponent, l1 */
                        o.shrink = 2.5;
                        o.q = 2;
                        o.norm = RF_SIM_NORM_L1;
                        o.alpha = 0.3;
                        o.k1 = 0.6;
                        o.b = 1;
                        o.p3_alpha = 0.5;
                        o.p3_beta = 0.7;
                    } else if (var == 2) {
                        o.q = 0.5;
                        o.norm = RF_SIM_NORM_MAX;
                        o.alpha = 0.85;
                        o.p3_beta = 0;
                    }
                    /* items (itemknn) and users (userknn) */
                    snprintf(what, sizeof what, "items %s shape %d binary %d var %d",
                             rf_sim_kind_name(o.kind), sh, binary, var);
                    check_kernel(f->d.iu, f->d.ui, &o, what);
                    what[0] = 'U';
                    check_kernel(f->d.ui, f->d.iu, &o, what);
                }
            fx_free(f);
        }
}

/* Binary data, cosine: the kernel adds the same integers in float and
 * divides in double like the brute force, so values are exact. Also the
 * jaccard of sets. */
static void test_kernel_exact_binary(void **state) {
    fixture *f = fx_random(50, 40, 0.15, 1, 7);
    rf_sim_opts o = opts_default(RF_SIM_JACCARD, 1000);
    rf_sim s;
    rf_csr *nb;
    assert_int_equal(rf_sim_init(&s, f->d.iu, f->d.ui, &o, NULL), 0);
    assert_null(s.bv); /* binary data: constant rows, no values read */
    assert_non_null(s.brow);
    assert_int_equal(rf_sim_all(&s, "t", &nb, NULL), 0);
    double *X = dense_of(f->d.iu);
    for (int32_t i = 0; i < 40; i++)
        for (int64_t p = nb->indptr[i]; p < nb->indptr[i + 1]; p++) {
            int32_t j = nb->indices[p];
            int both = 0, any = 0;
            for (int32_t u = 0; u < 50; u++) {
                both += X[i * 50 + u] != 0 && X[j * 50 + u] != 0;
                any += X[i * 50 + u] != 0 || X[j * 50 + u] != 0;
            }
            assert_true(nb->data[p] == (float)((double)both / any));
        }
    free(X);
    rf_csr_free(nb);
    rf_sim_free(&s);
    /* bad options and shapes */
    rf_err err;
    o.k = 0;
    assert_int_equal(rf_sim_init(&s, f->d.iu, f->d.ui, &o, &err), RF_EINVAL);
    o = opts_default(RF_SIM_COSINE, 5);
    assert_int_equal(rf_sim_init(&s, f->d.iu, f->d.iu, &o, &err), RF_EINVAL);
    fx_free(f);
}

/* Empty matrices, empty rows, k larger than the rows. */
static void test_kernel_edges(void **state) {
    rf_csr *e, *et, *nb;
    assert_int_equal(rf_csr_new_empty(0, 0, &e), 0);
    assert_int_equal(rf_csr_new_empty(0, 0, &et), 0);
    rf_sim_opts o = opts_default(RF_SIM_BM25, 10);
    rf_sim s;
    assert_int_equal(rf_sim_init(&s, e, et, &o, NULL), 0);
    assert_int_equal(rf_sim_all(&s, "t", &nb, NULL), 0);
    assert_int_equal(nb->nnz, 0);
    rf_scored out[10];
    assert_int_equal(rf_sim_query(&s, NULL, NULL, 0, -1, out), 0);
    rf_csr_free(nb);
    rf_sim_free(&s);
    rf_csr_free(e);
    rf_csr_free(et);
    /* one row: no neighbour; a query may still find it */
    int32_t r[] = {0, 0}, c[] = {0, 1};
    assert_int_equal(rf_csr_from_coo(1, 3, 2, r, c, NULL, RF_FOLD_SUM, &e, NULL), 0);
    assert_int_equal(rf_csr_transpose(e, &et), 0);
    o = opts_default(RF_SIM_COSINE, 10);
    assert_int_equal(rf_sim_init(&s, e, et, &o, NULL), 0);
    assert_int_equal(rf_sim_all(&s, "t", &nb, NULL), 0);
    assert_int_equal(nb->nnz, 0);
    int32_t qc[] = {1, 2, 7};
    assert_int_equal(rf_sim_query(&s, qc, NULL, 3, -1, out), 1); /* 7: unknown column */
    assert_int_equal(out[0].id, 0);
    assert_true(fabsf(out[0].score - (float)(1 / (sqrt(2) * sqrt(2)))) < 1e-6f);
    assert_int_equal(rf_sim_query(&s, qc, NULL, 3, 0, out), 0);
    rf_csr_free(nb);
    rf_sim_free(&s);
    rf_csr_free(e);
    rf_csr_free(et);
}

/* More than 65536 rows: the fit's relabelled view uses 32-bit labels;
 * sampled rows must equal the plain query path exactly. Users 0..19 hold
 * all 40 "hub" items (about 500 users each), so their rows take the dense
 * path; the others hold 3 of 2000 items and sometimes a hub (touched
 * path). */
static void test_kernel_wide_labels(void **state) {
    const int32_t nu = 70000, ni = 2040;
    int64_t n = 0, cap = (int64_t)nu * 4 + 20 * 40;
    int32_t *r = malloc((size_t)cap * sizeof *r), *c = malloc((size_t)cap * sizeof *c);
    float *v = malloc((size_t)cap * sizeof *v);
    rf_rng g;
    rf_rng_seed(&g, 99);
    for (int32_t u = 0; u < nu; u++) {
        int m = u < 20 ? 40 : 3 + (rf_rng_uniform(&g) < 0.28);
        for (int t = 0; t < m; t++) {
            r[n] = u;
            c[n] = u < 20 || t == 3 ? (u < 20 ? t : (int32_t)rf_rng_below(&g, 40))
                                    : 40 + (int32_t)rf_rng_below(&g, 2000);
            v[n] = (float)(1 + rf_rng_below(&g, 3));
            n++;
        }
    }
    rf_csr *ui, *iu, *nb;
    assert_int_equal(rf_csr_from_coo(nu, ni, n, r, c, v, RF_FOLD_SUM, &ui, NULL), 0);
    assert_int_equal(rf_csr_transpose(ui, &iu), 0);
    rf_scored out[5];
    for (int kind = RF_SIM_COSINE; kind <= RF_SIM_RP3B; kind += 2) { /* cosine, asym, tfidf */
        rf_sim_opts o = opts_default(kind, 5);
        rf_sim s;
        assert_int_equal(rf_sim_init(&s, ui, iu, &o, NULL), 0);
        assert_int_equal(rf_sim_all(&s, "t", &nb, NULL), 0);
        for (int32_t u = 0; u < nu; u += (u < 20 ? 1 : 97)) {
            int64_t lo = ui->indptr[u];
            int cnt = rf_sim_query(&s, ui->indices + lo, ui->data + lo,
                                   (int32_t)(ui->indptr[u + 1] - lo), u, out);
            assert_int_equal(cnt, nb->indptr[u + 1] - nb->indptr[u]);
            for (int e = 0; e < cnt; e++) {
                assert_int_equal(out[e].id, nb->indices[nb->indptr[u] + e]);
                assert_true(out[e].score == nb->data[nb->indptr[u] + e]);
            }
        }
        rf_csr_free(nb);
        rf_sim_free(&s);
    }
    rf_csr_free(ui);
    rf_csr_free(iu);
    free(r);
    free(c);
    free(v);
}

/* ---- itemknn ------------------------------------------------------------- */

static void test_itemknn_all_sims_vs_brute(void **state) {
    fixture *f = fx_random(60, 45, 0.12, 0, 17);
    const char *names[] = {"cosine", "jaccard", "asym", "bm25", "tfidf", "rp3b"};
    double *X = dense_of(f->d.iu);
    char params[160];
    for (int kd = 0; kd < 6; kd++) {
        snprintf(params, sizeof params, "sim=%s,k=7,shrink=1.5,alpha=0.35,q=2,norm=none,k1=0.9,"
                 "b=0.6,p3_alpha=0.7,p3_beta=0.4", names[kd]);
        rf_model *m = fit_model("itemknn", params, &f->d);
        rf_sim_opts o = {kd, 7, 1.5, 0.35, 0.9, 0.6, 0.7, 0.4, 2, RF_SIM_NORM_NONE};
        double *S = brute_sims(X, 45, 60, &o);
        const rf_csr *nb = rf_itemknn_neighbours(m);
        assert_non_null(nb);
        rf_scored out[50];
        for (int32_t i = 0; i < 45; i++) {
            int64_t lo = nb->indptr[i];
            check_row(S, 45, i, &o, nb->indices + lo, nb->data + lo, nb->indptr[i + 1] - lo,
                      params);
            /* similar items: the row, best first, ties by id */
            int n = rf_itemknn_similar(m, i, 50, out, NULL);
            assert_int_equal(n, nb->indptr[i + 1] - lo);
            for (int x = 1; x < n; x++)
                assert_true(out[x - 1].score > out[x].score ||
                            (out[x - 1].score == out[x].score && out[x - 1].id < out[x].id));
            for (int x = 0; x < n; x++) assert_true(out[x].score == rf_csr_get(nb, i, out[x].id));
        }
        /* scores: sum of history weight x similarity; fallback below */
        float *s = malloc(45 * sizeof *s);
        for (int32_t u = 0; u < 60; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            assert_int_equal(rf_model_score_all(m, u, &h, s, NULL), 0);
            for (int32_t j = 0; j < 45; j++) {
                double b = 0;
                for (int32_t t = 0; t < h.n; t++) b += h.weights[t] * rf_csr_get(nb, h.items[t], j);
                if (b > 0) {
                    if (fabs(b - s[j]) > 1e-5 * (1 + b))
                        fail_msg("%s user %d item %d: %.9g brute %.9g", params, u, j, s[j], b);
                } else {
                    assert_true(s[j] < 0 && s[j] >= -1);
                }
            }
        }
        free(s);
        free(S);
        rf_model_free(m);
    }
    free(X);
    fx_free(f);
}

/* Decay: each history weight times 2^(-age / half_life), age from the
 * history's newest event; no times or half_life 0: no decay. */
static void test_itemknn_time_decay(void **state) {
    fixture *f = fx_random(60, 45, 0.12, 0, 23);
    rf_model *m0 = fit_model("itemknn", "k=10,half_life=0", &f->d);
    rf_model *m = fit_model("itemknn", "k=10,half_life=5", &f->d);
    const rf_csr *nb = rf_itemknn_neighbours(m);
    float *s = malloc(45 * sizeof *s), *s0 = malloc(45 * sizeof *s0);
    int changed = 0;
    for (int32_t u = 0; u < 60; u++) {
        rf_hist h;
        rf_hist_from_row(&f->d, u, &h);
        /* without times: the same as no decay */
        assert_int_equal(rf_model_score_all(m, u, &h, s, NULL), 0);
        assert_int_equal(rf_model_score_all(m0, u, &h, s0, NULL), 0);
        assert_memory_equal(s, s0, 45 * sizeof *s);
        h.ts = f->ts + f->d.ui->indptr[u];
        assert_int_equal(rf_model_score_all(m0, u, &h, s0, NULL), 0);
        assert_memory_equal(s, s0, 45 * sizeof *s); /* half_life 0 ignores times */
        assert_int_equal(rf_model_score_all(m, u, &h, s, NULL), 0);
        int64_t newest = 0;
        for (int32_t t = 0; t < h.n; t++)
            if (h.ts[t] > newest) newest = h.ts[t];
        for (int32_t j = 0; j < 45; j++) {
            double b = 0;
            for (int32_t t = 0; t < h.n; t++)
                b += h.weights[t] * exp2(-(double)(newest - h.ts[t]) / (5 * 86400.0)) *
                     rf_csr_get(nb, h.items[t], j);
            if (b > 0) {
                if (fabs(b - s[j]) > 1e-5 * (1 + b))
                    fail_msg("user %d item %d: %.9g brute %.9g", u, j, s[j], b);
                changed += s[j] != s0[j];
            }
        }
    }
    assert_true(changed > 0);
    /* Two history items with disjoint neighbours: the one 10 days older
     * (two half-lives) counts a quarter. */
    int32_t r[] = {0, 0, 1, 1, 2, 2}, c[] = {0, 1, 0, 1, 2, 3};
    rf_csr *ui, *iu;
    assert_int_equal(rf_csr_from_coo(3, 4, 6, r, c, NULL, RF_FOLD_SUM, &ui, NULL), 0);
    assert_int_equal(rf_csr_transpose(ui, &iu), 0);
    rf_dataset d2 = f->d;
    d2.ui = ui;
    d2.iu = iu;
    d2.n_users = 3;
    d2.n_items = 4;
    uint32_t uts[6] = {0};
    d2.ui_ts = uts;
    rf_idmap *um, *im;
    assert_int_equal(rf_idmap_new(&um), 0);
    assert_int_equal(rf_idmap_new(&im), 0);
    const char *un[] = {"a", "b", "c"}, *in[] = {"w", "x", "y", "z"};
    int32_t id;
    for (int x = 0; x < 3; x++) rf_idmap_put(um, un[x], 1, &id, NULL);
    for (int x = 0; x < 4; x++) rf_idmap_put(im, in[x], 1, &id, NULL);
    d2.users = um;
    d2.items = im;
    rf_model *md = fit_model("itemknn", "sim=cosine,q=1,shrink=0,half_life=5", &d2);
    int32_t hi[] = {0, 2};
    float hw[] = {1, 1};
    int64_t ht[] = {1000000, 1000000 - 10 * 86400};
    rf_hist h = {2, hi, hw, ht};
    float sc[4];
    assert_int_equal(rf_model_score_all(md, -1, &h, sc, NULL), 0);
    assert_true(fabsf(sc[1] - 1.0f) < 1e-6f);  /* neighbour of the fresh item 0 */
    assert_true(fabsf(sc[3] - 0.25f) < 1e-6f); /* neighbour of the old item 2 */
    rf_model_free(md);
    rf_idmap_free(um);
    rf_idmap_free(im);
    rf_csr_free(ui);
    rf_csr_free(iu);
    free(s);
    free(s0);
    rf_model_free(m);
    rf_model_free(m0);
    fx_free(f);
}

/* ---- userknn ------------------------------------------------------------- */

/* Brute-force userknn scores for a history given as a dense row (hist,
 * n_items): the history is appended to the training matrix as one more
 * row, its brute sims to the training users (but `exclude`) ranked, and
 * the neighbours' training rows summed. Appending changes column
 * statistics (idf, column sums), so this oracle is for cosine, jaccard and
 * asym; the other kinds' query path is checked against the fitted rows in
 * check_kernel. */
static void brute_user_scores(const fixture *f, const double *hist, const rf_sim_opts *o,
                              int32_t exclude, double *score) {
    int32_t nu = f->d.n_users, ni = f->d.n_items;
    double *X = calloc((size_t)(nu + 1) * ni, sizeof *X);
    double *T = dense_of(f->d.ui);
    memcpy(X, T, (size_t)nu * ni * sizeof *X);
    memcpy(X + (size_t)nu * ni, hist, (size_t)ni * sizeof *X);
    double *S = brute_sims(X, nu + 1, ni, o);
    /* top-k of the query row among training users */
    rf_scored *all = malloc((size_t)nu * sizeof *all);
    int n = 0;
    for (int32_t v = 0; v < nu; v++) {
        double s = S[(size_t)nu * (nu + 1) + v];
        if (v != exclude && s > 1e-12) all[n++] = (rf_scored){(float)s, v};
    }
    for (int x = 0; x < n; x++)
        for (int y = x + 1; y < n; y++)
            if (all[y].score > all[x].score ||
                (all[y].score == all[x].score && all[y].id < all[x].id)) {
                rf_scored t = all[x];
                all[x] = all[y];
                all[y] = t;
            }
    if (n > o->k) n = o->k;
    double z = 0;
    for (int x = 0; x < n; x++) {
        double v = pow(S[(size_t)nu * (nu + 1) + all[x].id], o->q);
        z = o->norm == RF_SIM_NORM_L1 ? z + v : (v > z ? v : z);
    }
    for (int32_t j = 0; j < ni; j++) score[j] = 0;
    for (int x = 0; x < n; x++) {
        double v = pow(S[(size_t)nu * (nu + 1) + all[x].id], o->q);
        if (o->norm != RF_SIM_NORM_NONE) v /= z;
        for (int32_t j = 0; j < ni; j++) score[j] += v * T[(size_t)all[x].id * ni + j];
    }
    free(all);
    free(S);
    free(T);
    free(X);
}

static void check_scores(const float *s, const double *b, int32_t ni, const char *what, int32_t u) {
    for (int32_t j = 0; j < ni; j++) {
        if (b[j] > 0) {
            if (fabs(b[j] - s[j]) > 2e-5 * (1 + b[j]))
                fail_msg("%s user %d item %d: %.9g brute %.9g", what, u, j, s[j], b[j]);
        } else if (!(s[j] < 0 && s[j] >= -1)) {
            fail_msg("%s user %d item %d: %.9g, expected the fallback", what, u, j, s[j]);
        }
    }
}

static void test_userknn_vs_brute(void **state) {
    fixture *f = fx_random(45, 40, 0.12, 0, 29);
    int32_t nu = 45, ni = 40;
    const char *cfg[] = {"sim=cosine,k=8,q=1,shrink=0", "sim=asym,k=6,alpha=0.9,q=3",
                         "sim=jaccard,k=10,q=2,norm=l1,shrink=1"};
    rf_sim_opts oo[] = {{RF_SIM_COSINE, 8, 0, 0.9, 1.2, 0.75, 1, 0.5, 1, 0},
                        {RF_SIM_ASYM, 6, 0, 0.9, 1.2, 0.75, 1, 0.5, 3, 0},
                        {RF_SIM_JACCARD, 10, 1, 0.9, 1.2, 0.75, 1, 0.5, 2, RF_SIM_NORM_L1}};
    float *s = malloc((size_t)ni * sizeof *s);
    double *b = malloc((size_t)ni * sizeof *b), *hist = malloc((size_t)ni * sizeof *hist);
    rf_rng g;
    rf_rng_seed(&g, 5);
    for (int c = 0; c < 3; c++) {
        rf_model *m = fit_model("userknn", cfg[c], &f->d);
        /* training users: fitted neighbours */
        for (int32_t u = 0; u < nu; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            for (int32_t j = 0; j < ni; j++) hist[j] = 0;
            for (int32_t t = 0; t < h.n; t++) hist[h.items[t]] = h.weights[t];
            brute_user_scores(f, hist, &oo[c], u, b);
            assert_int_equal(rf_model_score_all(m, u, &h, s, NULL), 0);
            check_scores(s, b, ni, cfg[c], u);
        }
        /* new users (on the fly): random histories; and a known user with
         * a changed history, who is not their own neighbour */
        int32_t items[40];
        float w[40];
        for (int rep = 0; rep < 12; rep++) {
            int32_t n = 0;
            for (int32_t j = 0; j < ni; j++) {
                hist[j] = 0;
                if (rf_rng_uniform(&g) < 0.15) {
                    items[n] = j;
                    w[n] = (float)(0.5 + 2.5 * rf_rng_uniform(&g));
                    hist[j] = w[n];
                    n++;
                }
            }
            int32_t user = rep % 2 ? rep : -1;
            rf_hist h = {n, items, w, NULL};
            brute_user_scores(f, hist, &oo[c], user, b);
            assert_int_equal(rf_model_score_all(m, user, &h, s, NULL), 0);
            check_scores(s, b, ni, cfg[c], user);
        }
        rf_model_free(m);
    }
    free(s);
    free(b);
    free(hist);
    fx_free(f);
}

/* Which path serves a known user, for every kind: a history equal to the
 * training row (in another buffer) gets the fitted neighbours; a changed
 * one is scored on the fly and differs. That the on-the-fly query of an
 * unchanged row equals the fitted row is checked in check_kernel. */
static void test_userknn_paths_agree(void **state) {
    fixture *f = fx_random(50, 35, 0.12, 0, 37);
    const char *names[] = {"cosine", "jaccard", "asym", "bm25", "tfidf", "rp3b"};
    char params[96];
    float *a = malloc(35 * sizeof *a), *b = malloc(35 * sizeof *b);
    float *w = malloc(35 * sizeof *w);
    for (int kd = 0; kd < 6; kd++) {
        snprintf(params, sizeof params, "sim=%s,k=9", names[kd]);
        rf_model *m = fit_model("userknn", params, &f->d);
        int changed = 0;
        for (int32_t u = 0; u < 50; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            assert_int_equal(rf_model_score_all(m, u, &h, a, NULL), 0);
            /* same history in a private copy with the weights scaled by 1:
             * still the fitted row; then one weight changed: on the fly */
            for (int32_t t = 0; t < h.n; t++) w[t] = h.weights[t];
            rf_hist h2 = {h.n, h.items, w, NULL};
            assert_int_equal(rf_model_score_all(m, u, &h2, b, NULL), 0);
            assert_memory_equal(a, b, 35 * sizeof *a);
            if (h.n == 0) continue;
            w[0] += 1.0f;
            assert_int_equal(rf_model_score_all(m, u, &h2, b, NULL), 0);
            int differ = 0;
            for (int32_t j = 0; j < 35; j++) differ |= a[j] != b[j];
            changed += differ;
        }
        assert_true(changed > 25); /* most users' scores move */
        rf_model_free(m);
    }
    free(a);
    free(b);
    free(w);
    fx_free(f);
}

/* ---- sparse scoring (the fused model's candidates) ------------------------ */

/* score_sparse of itemknn (with and without time decay) and userknn (the
 * fitted neighbours, a changed history, an unknown user) equals score_all
 * on the items it reaches and the fallback elsewhere, with one
 * accumulator reused across every call. */
static void test_sparse_ops(void **state) {
    fixture *f = fx_random(80, 300, 0.02, 0, 41);
    rf_model *ms[3] = {fit_model("itemknn", "k=8", &f->d),
                       fit_model("itemknn", "k=8,half_life=5", &f->d),
                       fit_model("userknn", "k=6", &f->d)};
    rf_sparse acc;
    assert_int_equal(rf_sparse_init(&acc, 300), 0);
    float *w = malloc(300 * sizeof *w);
    for (int x = 0; x < 3; x++) {
        int64_t reached = 0, calls = 0;
        for (int32_t u = 0; u < 80; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            reached += rf_test_check_sparse(ms[x], &acc, u, &h); /* the training row */
            h.ts = f->ts + f->d.ui->indptr[u];
            reached += rf_test_check_sparse(ms[x], &acc, u, &h); /* with times */
            reached += rf_test_check_sparse(ms[x], &acc, -1, &h); /* unknown user */
            for (int32_t t = 0; t < h.n; t++) w[t] = h.weights[t] * (t == 0 ? 2.0f : 1.0f);
            rf_hist h2 = {h.n, h.items, w, h.ts};
            reached += rf_test_check_sparse(ms[x], &acc, u, &h2); /* changed history */
            calls += 4;
        }
        rf_hist empty = {0, NULL, NULL, NULL};
        assert_int_equal(rf_test_check_sparse(ms[x], &acc, 3, &empty), 0);
        assert_int_equal(rf_test_check_sparse(ms[x], &acc, -1, &empty), 0);
        /* sparse: most of the catalog is left to the fallback */
        assert_true(reached > 0 && reached < calls * 300 / 2);
        rf_model_free(ms[x]);
    }
    /* a model without the op, and a mismatched accumulator */
    rf_model *pop = fit_model("pop", "", &f->d);
    rf_err err;
    assert_int_equal(rf_model_score_sparse(pop, -1, NULL, &acc, &err), RF_EUNSUPPORTED);
    rf_model *ik = fit_model("itemknn", "k=8", &f->d);
    rf_sparse small;
    assert_int_equal(rf_sparse_init(&small, 10), 0);
    assert_int_equal(rf_model_score_sparse(ik, -1, NULL, &small, &err), RF_EINVAL);
    rf_sparse_free(&small);
    rf_sparse_free(&small); /* a freed accumulator is a no-op */
    rf_model_free(ik);
    rf_model_free(pop);
    rf_sparse_free(&acc);
    free(w);
    fx_free(f);
}

/* ---- files and threads ------------------------------------------------ */

static void test_save_load(void **state) {
    fixture *f = fx_random(50, 40, 0.12, 0, 31);
    char *dir = rf_test_tmpdir("knn");
    char path[1024];
    const char *cfg[][2] = {{"itemknn", "sim=bm25,k=9,k1=0.7"},
                            {"itemknn", "sim=rp3b,k=5,norm=l1,half_life=3"},
                            {"userknn", "sim=tfidf,k=7,q=2"},
                            {"userknn", "sim=asym,k=12"}};
    float *s1 = malloc(40 * sizeof *s1), *s2 = malloc(40 * sizeof *s2);
    int32_t items[] = {1, 4, 9, 30};
    float w[] = {1, 2, 0.5f, 1};
    int64_t ts[] = {1700000000, 1700100000, 1700200000, 1700300000};
    for (int c = 0; c < 4; c++) {
        rf_model *m = fit_model(cfg[c][0], cfg[c][1], &f->d), *l = NULL;
        snprintf(path, sizeof path, "%s/m%d.rfm", dir, c);
        rf_err err;
        rf_err_clear(&err);
        if (rf_model_save(m, path, &err)) fail_msg("save: %s", err.msg);
        if (rf_model_load(path, &l, &err)) fail_msg("load: %s", err.msg);
        for (int32_t u = -1; u < 50; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            assert_int_equal(rf_model_score_all(m, u, &h, s1, NULL), 0);
            assert_int_equal(rf_model_score_all(l, u, &h, s2, NULL), 0);
            assert_memory_equal(s1, s2, 40 * sizeof *s1);
            rf_hist hn = {4, items, w, ts}; /* a new history: on-the-fly path */
            assert_int_equal(rf_model_score_all(m, u, &hn, s1, NULL), 0);
            assert_int_equal(rf_model_score_all(l, u, &hn, s2, NULL), 0);
            assert_memory_equal(s1, s2, 40 * sizeof *s1);
        }
        /* truncated and corrupted files fail cleanly */
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        fseek(fp, 0, SEEK_END);
        long sz = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        char *buf = malloc((size_t)sz);
        assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
        fclose(fp);
        fp = fopen(path, "wb");
        fwrite(buf, 1, (size_t)sz / 2, fp);
        fclose(fp);
        rf_model *bad = NULL;
        assert_true(rf_model_load(path, &bad, &err) < 0);
        assert_null(bad);
        free(buf);
        rf_model_free(l);
        rf_model_free(m);
    }
    free(s1);
    free(s2);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(f);
}

static void test_threads_deterministic(void **state) {
    fixture *f = fx_random(300, 200, 0.05, 0, 5);
    const char *cfg[][2] = {{"itemknn", NULL},
                            {"itemknn", "sim=bm25,k=20"},
                            {"itemknn", "sim=tfidf,k=20,norm=l1"},
                            {"userknn", NULL},
                            {"userknn", "sim=rp3b,k=30"}};
    float *sa = malloc(200 * sizeof *sa), *sb = malloc(200 * sizeof *sb);
    for (int c = 0; c < 5; c++) {
        rf_model *m[3];
        for (int t = 0; t < 3; t++) {
            rf_set_threads(t + 1);
            m[t] = fit_model(cfg[c][0], cfg[c][1], &f->d);
        }
        rf_set_threads(0);
        for (int t = 1; t < 3; t++) {
            for (int32_t u = 0; u < 300; u++) {
                rf_hist h;
                rf_hist_from_row(&f->d, u, &h);
                assert_int_equal(rf_model_score_all(m[0], u, &h, sa, NULL), 0);
                assert_int_equal(rf_model_score_all(m[t], u, &h, sb, NULL), 0);
                assert_memory_equal(sa, sb, 200 * sizeof *sa);
            }
        }
        if (strcmp(cfg[c][0], "itemknn") == 0) {
            const rf_csr *a = rf_itemknn_neighbours(m[0]), *b = rf_itemknn_neighbours(m[2]);
            assert_int_equal(a->nnz, b->nnz);
            assert_memory_equal(a->indptr, b->indptr, (size_t)(a->nrows + 1) * 8);
            assert_memory_equal(a->indices, b->indices, (size_t)a->nnz * 4);
            assert_memory_equal(a->data, b->data, (size_t)a->nnz * 4);
        }
        for (int t = 0; t < 3; t++) rf_model_free(m[t]);
    }
    free(sa);
    free(sb);
    fx_free(f);
}

static void test_params(void **state) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("userknn", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "sim=nosuch", &err), RF_EPARSE);
    assert_int_equal(rf_model_set_params(m, "alpha=1.5", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "q=0", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "sim=rp3b,p3_beta=0.3,norm=max", &err), 0);
    rf_model_free(m);
    assert_int_equal(rf_model_new("itemknn", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "half_life=-1", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "sim=tfidf,half_life=2", &err), 0);
    rf_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_vs_brute),
        cmocka_unit_test(test_kernel_exact_binary),
        cmocka_unit_test(test_kernel_edges),
        cmocka_unit_test(test_kernel_wide_labels),
        cmocka_unit_test(test_itemknn_all_sims_vs_brute),
        cmocka_unit_test(test_itemknn_time_decay),
        cmocka_unit_test(test_userknn_vs_brute),
        cmocka_unit_test(test_userknn_paths_agree),
        cmocka_unit_test(test_sparse_ops),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
