/* ease.c - EASE, the embarrassingly shallow autoencoder ("ease").
 *
 * Steck, "Embarrassingly Shallow Autoencoders for Sparse Data" (WWW
 * 2019): an item-item weight matrix B with zero diagonal minimising
 * |X - X B|^2 + lambda |B|^2, X the users x items training matrix (folded
 * weights). The closed form is
 *     P = (X^T X + lambda I)^-1,   B = I - P diag(1 / diag(P)),
 * i.e. B_ij = -P_ij / P_jj off the diagonal and B_jj = 0. A user's scores
 * are their history row times B: score(j) = sum_{i in history} w_i B_ij.
 *
 * DESIGN: the Gram matrix X^T X is built sparsely straight into the one
 * n_items x n_items float matrix the model keeps: row i (lower triangle,
 * j <= i) is accumulated in a per-thread double row from the co-occurrence
 * lists of i's users (cost sum over users of n_u^2 / 2, never a dense
 * X), items in parallel, so the result is the same for every thread count.
 * That matrix is then factored and inverted in place by LAPACK spotrf and
 * spotri (OpenBLAS, multi-threaded with rf_threads() threads; the
 * row-major lower triangle is LAPACK's column-major upper), and turned into
 * B in place, tile by tile. Peak memory is that one matrix (4 n^2 bytes)
 * plus a double row per thread, so a catalog of n items needs about
 * 4 n^2 bytes; fit refuses with RF_ETOOBIG above max_memory_mb (default:
 * half of physical RAM: ~56k items on 24 GiB). Inversion costs ~n^3 / 3
 * multiply-adds (a few seconds at 5k items, minutes at 30k).
 *
 * Fallback: an empty history scores items by popularity (distinct
 * training users), the contract of model.h. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <lapacke.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"

typedef struct ease_params {
    double lambda;
    int max_memory_mb;
} ease_params;

typedef struct ease_impl {
    float *B;   /* n_items x n_items, row-major: B[i * n + j] */
    float *pop; /* n_items, distinct training users */
} ease_impl;

/* lambda tuned on ML-100K validation (docs/models-ials-ease.md). */
static const rf_param_def ease_defs[] = {
    {"lambda", RF_P_DOUBLE, offsetof(ease_params, lambda), 300, 1e-6, 1e12, NULL,
     "L2 regularisation added to the diagonal of X^T X"},
    {"max_memory_mb", RF_P_INT, offsetof(ease_params, max_memory_mb), 0, 0, 2147483647, NULL,
     "refuse catalogs whose item x item matrix exceeds this (MiB); 0: half of physical RAM"},
    {0},
};

static int ease_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(ease_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "out of memory");
    return 0;
}

static void ease_destroy(rf_model *m) {
    ease_impl *p = m->impl;
    if (!p) return;
    rf_free(p->B);
    rf_free(p->pop);
    rf_free(p);
    m->impl = NULL;
}

static const char *ease_check(const void *params) {
    const ease_params *pp = params;
    if (!(pp->lambda > 0)) return "lambda must be > 0";
    if (pp->max_memory_mb < 0) return "max_memory_mb must be >= 0";
    return NULL;
}

/* Bytes fit needs for n items, and the limit in force. */
static double need_bytes(int64_t n, int nth) {
    return 4.0 * (double)n * (double)n + 8.0 * (double)n * (nth + 2);
}

static double limit_bytes(const ease_params *pp) {
    if (pp->max_memory_mb > 0) return (double)pp->max_memory_mb * 1048576.0;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0) return 8.0 * 1073741824.0; /* RAM unknown: allow 8 GiB */
    return 0.5 * (double)pages * (double)psize;
}

/* Lower triangle of X^T X (row i, columns j <= i) into B (n x n, zeroed
 * upper part untouched). acc: nth x n doubles, zeroed. */
static void build_gram(const rf_dataset *d, float *B, double *acc, int nth) {
    const int32_t n = d->n_items;
    const rf_csr *iu = d->iu, *ui = d->ui;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nth)
    for (int32_t i = 0; i < n; i++) {
        double *a = acc + (size_t)rf_thread_id() * (size_t)n;
        for (int64_t p = iu->indptr[i]; p < iu->indptr[i + 1]; p++) {
            int32_t u = iu->indices[p];
            double xu = iu->data[p];
            for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
                int32_t j = ui->indices[q];
                if (j > i) break;
                a[j] += xu * ui->data[q];
            }
        }
        float *row = B + (size_t)i * n;
        for (int32_t j = 0; j <= i; j++) {
            row[j] = (float)a[j];
            a[j] = 0;
        }
    }
}

/* P (row-major lower triangle, j <= i) -> B in place: B_ij = -P_ij / P_jj,
 * B_ji = -P_ij / P_ii, B_ii = 0. Tiles of T rows run in parallel; tile bi
 * writes rows of bi (lower part) and columns of bi (upper part), so no
 * two tiles touch the same entry. */
static void p_to_b(float *B, int32_t n, const float *diag, int nth) {
    enum { T = 64 };
    int32_t nt = (n + T - 1) / T;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int32_t bi = 0; bi < nt; bi++) {
        int32_t i0 = bi * T, i1 = i0 + T < n ? i0 + T : n;
        for (int32_t bj = 0; bj <= bi; bj++) {
            int32_t j0 = bj * T, j1 = j0 + T < n ? j0 + T : n;
            for (int32_t i = i0; i < i1; i++) {
                float *ri = B + (size_t)i * n;
                int32_t je = j1 < i ? j1 : i;
                for (int32_t j = j0; j < je; j++) {
                    float pij = ri[j];
                    ri[j] = -pij / diag[j];
                    B[(size_t)j * n + i] = -pij / diag[i];
                }
            }
        }
        for (int32_t i = i0; i < i1; i++) B[(size_t)i * n + i] = 0;
    }
}

static int ease_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const ease_params *pp = m->params;
    ease_impl *p = m->impl;
    const int32_t n = d->n_items;
    const int nth = rf_threads();
    double need = need_bytes(n, nth), limit = limit_bytes(pp);
    if (need > limit || (size_t)n > SIZE_MAX / sizeof(float) / ((size_t)n ? (size_t)n : 1))
        return rf_err_set(err, RF_ETOOBIG,
                          "ease: %d items need a %d x %d float matrix, %.2f GiB (%.0f bytes), "
                          "above the limit of %.2f GiB (max_memory_mb=%d%s); restrict the "
                          "catalog or raise max_memory_mb",
                          n, n, n, need / 1073741824.0, need, limit / 1073741824.0,
                          pp->max_memory_mb, pp->max_memory_mb ? "" : ": half of physical RAM");
    int rc = RF_ENOMEM;
    float *B = rf_calloc((size_t)(n ? n : 1) * (size_t)(n ? n : 1), sizeof *B);
    double *acc = rf_calloc((size_t)nth * (size_t)(n ? n : 1), sizeof *acc);
    float *diag = rf_malloc_array((size_t)(n ? n : 1), sizeof *diag);
    float *pop = rf_malloc_array((size_t)(n ? n : 1), sizeof *pop);
    if (!B || !acc || !diag || !pop) {
        rf_err_set(err, RF_ENOMEM, "ease: out of memory for a %d x %d matrix (%.2f GiB)", n, n,
                   need / 1073741824.0);
        goto fail;
    }
    build_gram(d, B, acc, nth);
    rf_free(acc);
    acc = NULL;
    for (int32_t i = 0; i < n; i++) {
        B[(size_t)i * n + i] += (float)pp->lambda;
        int64_t c = 0;
        for (int64_t q = d->iu->indptr[i]; q < d->iu->indptr[i + 1]; q++) c += d->iu->data[q] != 0;
        pop[i] = (float)c;
    }
    if (n > 0) {
        int saved = openblas_get_num_threads();
        openblas_set_num_threads(nth);
        /* Row-major lower triangle == column-major upper triangle. */
        lapack_int info = LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', n, B, n);
        if (info == 0) info = LAPACKE_spotri_work(LAPACK_COL_MAJOR, 'U', n, B, n);
        openblas_set_num_threads(saved);
        if (info != 0) {
            rc = rf_err_set(err, RF_ERANGE,
                            "ease: X^T X + lambda I is not positive definite in float "
                            "(LAPACK info %d); raise lambda (now %g)",
                            (int)info, pp->lambda);
            goto fail;
        }
    }
    for (int32_t i = 0; i < n; i++) {
        diag[i] = B[(size_t)i * n + i];
        if (!(diag[i] > 0) || !isfinite(diag[i])) {
            rc = rf_err_set(err, RF_ERANGE, "ease: inverse has a bad diagonal entry %g at item %d; "
                            "raise lambda (now %g)", (double)diag[i], i, pp->lambda);
            goto fail;
        }
    }
    p_to_b(B, n, diag, nth);
    rf_free(diag);
    rf_free(p->B);
    rf_free(p->pop);
    p->B = B;
    p->pop = pop;
    rf_log(RF_LOG_INFO, "ease.fit", "items=%d lambda=%g bytes=%.0f", n, pp->lambda, need);
    return 0;
fail:
    rf_free(B);
    rf_free(acc);
    rf_free(diag);
    rf_free(pop);
    return rc;
}

static int ease_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                          rf_err *err) {
    const ease_impl *p = m->impl;
    const int32_t n = m->n_items;
    int any = 0;
    memset(out, 0, (size_t)n * sizeof *out);
    for (int32_t t = 0; t < h->n; t++) {
        int32_t i = h->items[t];
        float w = h->weights ? h->weights[t] : 1.0f;
        if (i < 0 || i >= n || w == 0) continue;
        const float *row = p->B + (size_t)i * n;
        for (int32_t j = 0; j < n; j++) out[j] += w * row[j];
        any = 1;
    }
    if (!any) memcpy(out, p->pop, (size_t)n * sizeof *out);
    return 0;
}

static int ease_score_items(const rf_model *m, int32_t user, const rf_hist *h,
                            const int32_t *items, int32_t k, float *out, rf_err *err) {
    const ease_impl *p = m->impl;
    const int32_t n = m->n_items;
    int any = 0;
    for (int32_t x = 0; x < k; x++) out[x] = 0;
    for (int32_t t = 0; t < h->n; t++) {
        int32_t i = h->items[t];
        float w = h->weights ? h->weights[t] : 1.0f;
        if (i < 0 || i >= n || w == 0) continue;
        const float *row = p->B + (size_t)i * n;
        for (int32_t x = 0; x < k; x++) out[x] += w * row[items[x]];
        any = 1;
    }
    if (!any)
        for (int32_t x = 0; x < k; x++) out[x] = p->pop[items[x]];
    return 0;
}

static int ease_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const ease_impl *p = m->impl;
    const size_t n = (size_t)m->n_items;
    int rc = rf_writer_i64(w, m->n_items);
    rc |= rf_writer_put(w, p->B, n * n * sizeof *p->B);
    rc |= rf_writer_put(w, p->pop, n * sizeof *p->pop);
    return rc ? rf_err_set(err, RF_EIO, "ease: write failed") : 0;
}

static int ease_load(rf_model *m, rf_reader *r, rf_err *err) {
    ease_impl *p = m->impl;
    int64_t n;
    int rc = rf_reader_i64(r, &n, err);
    if (rc) return rc;
    int64_t left = rf_reader_remaining(r);
    if (n != m->n_items || n < 0 || (n > 0 && n > left / 4 / n) || (n * n + n) * 4 != left)
        return rf_err_set(err, RF_EFORMAT,
                          "ease: payload of %lld items (%lld bytes) disagrees with the header "
                          "(%d items)",
                          (long long)n, (long long)rf_reader_remaining(r), m->n_items);
    size_t nn = (size_t)(n ? n : 1);
    float *B = rf_malloc_array(nn * nn, sizeof *B);
    float *pop = rf_malloc_array(nn, sizeof *pop);
    if (!B || !pop) {
        rc = rf_err_set(err, RF_ENOMEM, "ease: out of memory for %lld x %lld weights",
                        (long long)n, (long long)n);
        goto fail;
    }
    if ((rc = rf_reader_get(r, B, (size_t)(n * n) * sizeof *B, err)) ||
        (rc = rf_reader_get(r, pop, (size_t)n * sizeof *pop, err)))
        goto fail;
    for (int64_t x = 0; x < n * n; x++)
        if (!isfinite(B[x])) {
            rc = rf_err_set(err, RF_EFORMAT, "ease: non-finite weight");
            goto fail;
        }
    for (int64_t i = 0; i < n; i++)
        if (!(pop[i] >= 0) || !isfinite(pop[i])) {
            rc = rf_err_set(err, RF_EFORMAT, "ease: bad popularity value");
            goto fail;
        }
    rf_free(p->B);
    rf_free(p->pop);
    p->B = B;
    p->pop = pop;
    return 0;
fail:
    rf_free(B);
    rf_free(pop);
    return rc;
}

const rf_model_ops rf_model_ease_ops = {
    .name = "ease",
    .help = "EASE: closed-form item-item linear autoencoder (Steck 2019)",
    .params = ease_defs,
    .params_size = sizeof(ease_params),
    .create = ease_create,
    .fit = ease_fit,
    .score_all = ease_score_all,
    .save = ease_save,
    .load = ease_load,
    .destroy = ease_destroy,
    .params_check = ease_check,
    .score_items = ease_score_items,
};
