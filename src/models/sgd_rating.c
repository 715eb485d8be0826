/* sgd_rating.c - what "mf" and "svdpp" share once trained: the model state
 * (global mean, biases, user and item factors, svdpp's implicit factors),
 * prediction with unknown users and items, fold-in of new users, the
 * model file payload and the dataset options both train on.
 *
 * DESIGN: after fitting, svdpp folds each training user's implicit term
 * |N(u)|^-1/2 sum y_j into P[u], so both models predict a known user with
 * one dot product and the model file needs no training data. Y is kept
 * (svdpp) for users who arrive later: their implicit term comes from the
 * history they bring. A new user's bias and factors are then fit to the
 * ratings of that history by ridge regression with the item side fixed -
 * the exact minimiser of the training loss restricted to that user
 * (sum over the user's ratings of e^2/2 + reg/2 |p|^2 + reg_b/2 b^2) -
 * solved by a Cholesky factorisation of an (f+1) x (f+1) system. */
#include <math.h>
#include <string.h>

#include "models/sgd.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/mf.h"
#include "recfuse/rng.h"

extern const rf_model_ops rf_model_mf_ops;
extern const rf_model_ops rf_model_svdpp_ops;

int rf_rating_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(rf_rating_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "%s: out of memory", m->ops->name);
    return 0;
}

static void free_arrays(rf_rating_impl *p) {
    rf_free(p->bu);
    rf_free(p->bi);
    rf_free(p->P);
    rf_free(p->Q);
    rf_free(p->Y);
    p->bu = p->bi = p->P = p->Q = p->Y = NULL;
}

void rf_rating_destroy(rf_model *m) {
    rf_rating_impl *p = m->impl;
    if (!p) return;
    free_arrays(p);
    rf_free(p);
    m->impl = NULL;
}

int rf_rating_alloc(rf_model *m, int32_t f, int with_y, rf_err *err) {
    rf_rating_impl *p = m->impl;
    free_arrays(p);
    size_t nu = (size_t)m->n_users, ni = (size_t)m->n_items;
    p->f = f;
    /* at least one element each, so empty dimensions still allocate */
    size_t nuf = (nu ? nu : 1) * (size_t)f, nif = (ni ? ni : 1) * (size_t)f;
    p->bu = rf_calloc(nu ? nu : 1, sizeof *p->bu);
    p->bi = rf_calloc(ni ? ni : 1, sizeof *p->bi);
    p->P = rf_calloc(nuf, sizeof *p->P);
    p->Q = rf_calloc(nif, sizeof *p->Q);
    if (with_y) p->Y = rf_calloc(nif, sizeof *p->Y);
    if (!p->bu || !p->bi || !p->P || !p->Q || (with_y && !p->Y)) {
        free_arrays(p);
        return rf_err_set(err, RF_ENOMEM, "%s: out of memory for %d x %d factors", m->ops->name,
                          m->n_users + m->n_items, f);
    }
    return 0;
}

void rf_rating_data_defaults(rf_dataset_opts *o) {
    for (int t = 0; t < RF_EV_NTYPES; t++) o->type_weight[t] = 0;
    o->type_weight[RF_EV_RATING] = 1;
    o->use_value = 1;
    o->half_life_days = 0;
    o->fold = RF_FOLD_LAST;
    o->binary = 0;
}

int rf_rating_check_data(const rf_model *m, const rf_dataset *d, double *mu, float *rmin,
                         float *rmax, rf_err *err) {
    const char *name = m->ops->name;
    const rf_dataset_opts *o = &m->data_opts;
    if (o->binary || !o->use_value || o->half_life_days > 0)
        return rf_err_set(err, RF_EINVAL,
                          "%s predicts ratings and must train on rating values, but the "
                          "training matrix was built with binary=%d use_value=%d half_life=%g "
                          "(build it with the model's data_defaults: ratings only, use_value=1, "
                          "fold=last, binary=0)",
                          name, o->binary, o->use_value, o->half_life_days);
    const rf_csr *ui = d->ui;
    if (ui->nnz == 0)
        return rf_err_set(err, RF_EINVAL, "%s: no ratings to train on (it uses rating events only)",
                          name);
    double sum = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t q = 0; q < ui->nnz; q++) {
        float v = ui->data[q];
        if (!isfinite(v)) return rf_err_set(err, RF_EINVAL, "%s: a rating is not finite", name);
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    *mu = sum / (double)ui->nnz;
    *rmin = lo;
    *rmax = hi;
    return 0;
}

void rf_rating_init_normal(float *a, int64_t n, double std, uint64_t seed, uint64_t stream) {
    rf_rng g;
    rf_rng_stream(&g, seed, stream);
    for (int64_t k = 0; k < n; k++) a[k] = (float)(std * rf_rng_normal(&g));
}

int32_t rf_draw_unrated(rf_rng *g, const int32_t *row, int64_t rn, int32_t n_items) {
    for (int t = 0; t < 32; t++) {
        int32_t j = (int32_t)rf_rng_below(g, (uint64_t)n_items);
        int64_t lo = 0, hi = rn;
        while (lo < hi) {
            int64_t mid = (lo + hi) >> 1;
            if (row[mid] < j)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == rn || row[lo] != j) return j;
    }
    return -1;
}

const char *rf_rating_params_check(const void *params) {
    const rf_rating_params *pp = params;
    if (pp->factors < 1) return "factors must be at least 1";
    if (!(pp->lr > 0)) return "lr must be > 0";
    if (!(pp->lr_decay > 0) || pp->lr_decay > 1) return "lr_decay must be in (0, 1]";
    if (pp->reg < 0 || pp->reg_bias < 0 || pp->reg_y < 0) return "regularisation must be >= 0";
    if (pp->implicit < 0) return "implicit must be >= 0";
    return NULL;
}

/* ---- the user side: known, or folded in from a history ------------------ */

/* Solve A x = b in place (A: n x n symmetric positive definite, row-major,
 * lower triangle used; b becomes x). Returns 0, or -1 if A is not positive
 * definite. */
static int cholesky_solve(double *A, double *b, int n) {
    for (int j = 0; j < n; j++) {
        double d = A[(size_t)j * n + j];
        for (int k = 0; k < j; k++) d -= A[(size_t)j * n + k] * A[(size_t)j * n + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        A[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double s = A[(size_t)i * n + j];
            for (int k = 0; k < j; k++) s -= A[(size_t)i * n + k] * A[(size_t)j * n + k];
            A[(size_t)i * n + j] = s / d;
        }
    }
    for (int i = 0; i < n; i++) { /* L y = b */
        double s = b[i];
        for (int k = 0; k < i; k++) s -= A[(size_t)i * n + k] * b[k];
        b[i] = s / A[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) { /* L^T x = y */
        double s = b[i];
        for (int k = i + 1; k < n; k++) s -= A[(size_t)k * n + i] * b[k];
        b[i] = s / A[(size_t)i * n + i];
    }
    return 0;
}

/* User vector (f floats into pv) and bias of a user the model does not
 * know, from history h alone (see the file comment). */
static int fold_user(const rf_model *m, const rf_hist *h, float *pv, float *bias, rf_err *err) {
    const rf_rating_impl *p = m->impl;
    const rf_rating_params *pp = m->params;
    const int f = p->f;
    memset(pv, 0, (size_t)f * sizeof *pv);
    *bias = 0;
    if (!h || h->n <= 0) return 0;
    int32_t nv = 0;
    for (int32_t t = 0; t < h->n; t++) nv += h->items[t] >= 0 && h->items[t] < m->n_items;
    if (nv == 0) return 0;
    float *s = rf_calloc((size_t)f + 1, sizeof *s);
    if (!s) return rf_err_set(err, RF_ENOMEM, "%s: out of memory", m->ops->name);
    if (p->Y) { /* svdpp's implicit term */
        float alpha = (float)(1.0 / sqrt((double)nv));
        for (int32_t t = 0; t < h->n; t++) {
            int32_t j = h->items[t];
            if (j < 0 || j >= m->n_items) continue;
            for (int k = 0; k < f; k++) s[k] += p->Y[(int64_t)j * f + k];
        }
        for (int k = 0; k < f; k++) s[k] *= alpha;
    }
    if (h->weights) {
        const int D = f + 1; /* x = (b, p_1..p_f) */
        double *A = rf_calloc((size_t)D * (size_t)D, sizeof *A);
        double *b = rf_calloc((size_t)D, sizeof *b);
        if (!A || !b) {
            rf_free(A);
            rf_free(b);
            rf_free(s);
            return rf_err_set(err, RF_ENOMEM, "%s: out of memory", m->ops->name);
        }
        for (int32_t t = 0; t < h->n; t++) {
            int32_t i = h->items[t];
            if (i < 0 || i >= m->n_items) continue;
            const float *q = p->Q + (int64_t)i * f;
            double target = (double)h->weights[t] - p->mu - p->bi[i] - rf_sgd_dot(q, s, f);
            A[0] += 1;
            b[0] += target;
            for (int a = 0; a < f; a++) {
                A[(size_t)(a + 1) * D] += q[a];
                b[a + 1] += q[a] * target;
                for (int c = 0; c <= a; c++) A[(size_t)(a + 1) * D + c + 1] += (double)q[a] * q[c];
            }
        }
        A[0] += nv * pp->reg_bias + 1e-9;
        for (int a = 1; a < D; a++) A[(size_t)a * D + a] += nv * pp->reg + 1e-9;
        if (cholesky_solve(A, b, D) == 0) {
            *bias = (float)b[0];
            for (int k = 0; k < f; k++) pv[k] = (float)b[k + 1];
        }
        rf_free(A);
        rf_free(b);
    }
    for (int k = 0; k < f; k++) pv[k] += s[k];
    rf_free(s);
    return 0;
}

/* The user's vector and bias: the trained ones, or folded in. */
static int user_side(const rf_model *m, int32_t user, const rf_hist *h, float *pv, float *bias,
                     rf_err *err) {
    const rf_rating_impl *p = m->impl;
    if (user >= 0 && user < m->n_users) {
        memcpy(pv, p->P + (int64_t)user * p->f, (size_t)p->f * sizeof *pv);
        *bias = p->bu[user];
        return 0;
    }
    return fold_user(m, h, pv, bias, err);
}

int rf_rating_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                        rf_err *err) {
    const rf_rating_impl *p = m->impl;
    float *pv = rf_malloc_array((size_t)p->f + 1, sizeof *pv), bias;
    if (!pv) return rf_err_set(err, RF_ENOMEM, "%s: out of memory", m->ops->name);
    int rc = user_side(m, user, h, pv, &bias, err);
    if (rc == 0) {
        float base = p->mu + bias;
        for (int32_t i = 0; i < m->n_items; i++)
            out[i] = base + p->bi[i] + rf_sgd_dot(pv, p->Q + (int64_t)i * p->f, p->f);
    }
    rf_free(pv);
    return rc;
}

int rf_rating_model(const rf_model *m) {
    return m && m->fitted && m->impl &&
           (m->ops == &rf_model_mf_ops || m->ops == &rf_model_svdpp_ops);
}

int rf_rating_predict(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                      int32_t n, float *out, rf_err *err) {
    if (!rf_rating_model(m)) return rf_err_set(err, RF_EINVAL, "not a fitted mf or svdpp model");
    const rf_rating_impl *p = m->impl;
    float *pv = rf_malloc_array((size_t)p->f + 1, sizeof *pv), bias;
    if (!pv) return rf_err_set(err, RF_ENOMEM, "%s: out of memory", m->ops->name);
    int rc = user_side(m, user, h, pv, &bias, err);
    if (rc == 0)
        for (int32_t k = 0; k < n; k++) {
            int32_t i = items[k];
            float r = p->mu + bias;
            if (i >= 0 && i < m->n_items)
                r += p->bi[i] + rf_sgd_dot(pv, p->Q + (int64_t)i * p->f, p->f);
            out[k] = r < p->rmin ? p->rmin : r > p->rmax ? p->rmax : r;
        }
    rf_free(pv);
    return rc;
}

int rf_rating_info(const rf_model *m, float *mu, float *rmin, float *rmax, rf_err *err) {
    if (!rf_rating_model(m)) return rf_err_set(err, RF_EINVAL, "not a fitted mf or svdpp model");
    const rf_rating_impl *p = m->impl;
    *mu = p->mu;
    *rmin = p->rmin;
    *rmax = p->rmax;
    return 0;
}

int rf_rating_score_items(const rf_model *m, int32_t user, const rf_hist *h,
                          const int32_t *items, int32_t n, float *out, rf_err *err) {
    return rf_rating_predict(m, user, h, items, n, out, err);
}

int rf_rating_user_dim(const rf_model *m) {
    const rf_rating_impl *p = m->impl;
    return p ? p->f : 0;
}

const float *rf_rating_item_vectors(const rf_model *m, int *dim) {
    const rf_rating_impl *p = m->impl;
    if (!p || !p->Q) return NULL;
    *dim = p->f;
    return p->Q;
}

int rf_rating_fold_in(const rf_model *m, const rf_hist *h, float *vec, rf_err *err) {
    float bias;
    return fold_user(m, h, vec, &bias, err);
}

/* ---- model file payload --------------------------------------------------
 * i64 factors, u32 has_y, f32 mu, rmin, rmax, then n_users f32 user
 * biases, n_items f32 item biases, n_users x f f32 P, n_items x f f32 Q
 * and (has_y) n_items x f f32 Y. */

int rf_rating_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const rf_rating_impl *p = m->impl;
    size_t nu = (size_t)m->n_users, ni = (size_t)m->n_items, f = (size_t)p->f;
    int rc = rf_writer_i64(w, p->f);
    rc |= rf_writer_u32(w, p->Y ? 1u : 0u);
    rc |= rf_writer_put(w, &p->mu, sizeof p->mu);
    rc |= rf_writer_put(w, &p->rmin, sizeof p->rmin);
    rc |= rf_writer_put(w, &p->rmax, sizeof p->rmax);
    rc |= rf_writer_put(w, p->bu, nu * sizeof *p->bu);
    rc |= rf_writer_put(w, p->bi, ni * sizeof *p->bi);
    rc |= rf_writer_put(w, p->P, nu * f * sizeof *p->P);
    rc |= rf_writer_put(w, p->Q, ni * f * sizeof *p->Q);
    if (p->Y) rc |= rf_writer_put(w, p->Y, ni * f * sizeof *p->Y);
    return rc ? rf_err_set(err, RF_EIO, "%s: write failed", m->ops->name) : 0;
}

static int all_finite(const float *a, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(a[k])) return 0;
    return 1;
}

int rf_rating_load(rf_model *m, rf_reader *r, rf_err *err) {
    rf_rating_impl *p = m->impl;
    const rf_rating_params *pp = m->params;
    const char *name = m->ops->name;
    int64_t f;
    uint32_t has_y;
    int rc;
    if ((rc = rf_reader_i64(r, &f, err)) || (rc = rf_reader_u32(r, &has_y, err))) return rc;
    int want_y = m->ops == &rf_model_svdpp_ops;
    if (f != pp->factors || has_y != (uint32_t)want_y)
        return rf_err_set(err, RF_EFORMAT, "%s: payload has %lld factors%s, parameters say %d",
                          name, (long long)f, has_y ? " with implicit factors" : "", pp->factors);
    int64_t nu = m->n_users, ni = m->n_items;
    int64_t want = 12 + 4 * (nu + ni + (nu + ni * (1 + want_y)) * f);
    if (rf_reader_remaining(r) != want)
        return rf_err_set(err, RF_EFORMAT, "%s: payload is %lld bytes, expected %lld", name,
                          (long long)rf_reader_remaining(r), (long long)want);
    if ((rc = rf_rating_alloc(m, (int32_t)f, want_y, err))) return rc;
    size_t fz = (size_t)f;
    if ((rc = rf_reader_get(r, &p->mu, sizeof p->mu, err)) ||
        (rc = rf_reader_get(r, &p->rmin, sizeof p->rmin, err)) ||
        (rc = rf_reader_get(r, &p->rmax, sizeof p->rmax, err)) ||
        (rc = rf_reader_get(r, p->bu, (size_t)nu * sizeof *p->bu, err)) ||
        (rc = rf_reader_get(r, p->bi, (size_t)ni * sizeof *p->bi, err)) ||
        (rc = rf_reader_get(r, p->P, (size_t)nu * fz * sizeof *p->P, err)) ||
        (rc = rf_reader_get(r, p->Q, (size_t)ni * fz * sizeof *p->Q, err)) ||
        (want_y && (rc = rf_reader_get(r, p->Y, (size_t)ni * fz * sizeof *p->Y, err))))
        goto fail;
    if (!isfinite(p->mu) || !isfinite(p->rmin) || !isfinite(p->rmax) || p->rmin > p->rmax ||
        !all_finite(p->bu, (size_t)nu) || !all_finite(p->bi, (size_t)ni) ||
        !all_finite(p->P, (size_t)nu * fz) || !all_finite(p->Q, (size_t)ni * fz) ||
        (want_y && !all_finite(p->Y, (size_t)ni * fz))) {
        rc = rf_err_set(err, RF_EFORMAT, "%s: non-finite value or bad rating range", name);
        goto fail;
    }
    return 0;
fail:
    free_arrays(p);
    return rc;
}
