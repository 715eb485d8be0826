/* coldstart.c - feature-to-latent mapper for new items, and warm start of
 * factor matrices from a previous model (coldstart.h).
 *
 * DESIGN: the mapper is ridge regression solved by conjugate gradient on
 * the normal equations, one latent dimension at a time, in double. The
 * operator (X^T X + reg I) p is applied as X^T (X p) over the warm rows, so
 * memory is O(nnz + n_feats) per dimension and X^T X is never formed (a
 * dense normal matrix would be n_feats^2, too big with a TF-IDF
 * vocabulary). The intercept is an extra constant column (regularised
 * like the others: with reg small against the item count this is the
 * mean). Each dimension is solved serially, so the result does not depend
 * on the thread count. */
#include "recfuse/coldstart.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"

#define CS_MAX_ITERS 1000
#define CS_TOL 1e-8

void rf_coldstart_free(rf_coldstart *c) {
    if (!c) return;
    rf_free(c->W);
    rf_free(c);
}

/* y = (X_w^T X_w + reg I) p over the warm rows `rows` (bias column last). */
static void normal_apply(const rf_csr *x, const int32_t *rows, int32_t nw, double reg,
                         const double *p, double *y, double *t) {
    const int32_t nf = x->ncols;
    for (int32_t k = 0; k < nw; k++) {
        int32_t i = rows[k];
        double s = p[nf];
        for (int64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++)
            s += (double)x->data[q] * p[x->indices[q]];
        t[k] = s;
    }
    for (int32_t j = 0; j <= nf; j++) y[j] = reg * p[j];
    for (int32_t k = 0; k < nw; k++) {
        int32_t i = rows[k];
        for (int64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++)
            y[x->indices[q]] += (double)x->data[q] * t[k];
        y[nf] += t[k];
    }
}

/* CG for one dimension: solves into w (nf + 1); returns the steps taken. */
static int solve_dim(const rf_csr *x, const int32_t *rows, int32_t nw, double reg,
                     const float *V, int ld, int d, double *w, double *buf) {
    const int32_t n = x->ncols + 1;
    double *r = buf, *p = r + n, *ap = p + n, *t = ap + n;
    memset(r, 0, (size_t)n * sizeof *r);
    for (int32_t k = 0; k < nw; k++) {
        int32_t i = rows[k];
        double v = V[(size_t)i * ld + d];
        for (int64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++)
            r[x->indices[q]] += (double)x->data[q] * v;
        r[n - 1] += v;
    }
    memset(w, 0, (size_t)n * sizeof *w);
    memcpy(p, r, (size_t)n * sizeof *p);
    double rr = 0;
    for (int32_t j = 0; j < n; j++) rr += r[j] * r[j];
    const double stop = CS_TOL * CS_TOL * rr;
    int it = 0;
    while (it < CS_MAX_ITERS && rr > stop && rr > 0) {
        normal_apply(x, rows, nw, reg, p, ap, t);
        double pap = 0;
        for (int32_t j = 0; j < n; j++) pap += p[j] * ap[j];
        if (!(pap > 0)) break;
        double a = rr / pap, rr2 = 0;
        for (int32_t j = 0; j < n; j++) {
            w[j] += a * p[j];
            r[j] -= a * ap[j];
            rr2 += r[j] * r[j];
        }
        double b = rr2 / rr;
        for (int32_t j = 0; j < n; j++) p[j] = r[j] + b * p[j];
        rr = rr2;
        it++;
    }
    return it;
}

int rf_coldstart_fit(const rf_factors *f, const rf_csr *x, const uint8_t *warm, double reg,
                     rf_coldstart **out, rf_err *err) {
    *out = NULL;
    if (!f || !x || f->n_items != x->nrows || f->dim < 1 || f->ld < f->dim || !(reg > 0))
        return rf_err_set(err, RF_EINVAL,
                          "coldstart: feature rows (%d) must match the model's items (%d), "
                          "reg must be > 0",
                          x ? x->nrows : -1, f ? f->n_items : -1);
    int32_t *rows = rf_malloc_array((size_t)x->nrows + 1, sizeof *rows);
    if (!rows) return rf_err_set(err, RF_ENOMEM, "coldstart: out of memory");
    int32_t nw = 0;
    for (int32_t i = 0; i < x->nrows; i++)
        if (warm ? warm[i] != 0 : rf_csr_row_len(x, i) > 0) rows[nw++] = i;
    if (nw == 0) {
        rf_free(rows);
        return rf_err_set(err, RF_EINVAL, "coldstart: no warm item to fit the mapper on");
    }
    const int dim = f->dim;
    const int32_t n = x->ncols + 1;
    rf_coldstart *c = rf_calloc(1, sizeof *c);
    double *wd = rf_malloc_array((size_t)n * dim, sizeof *wd);
    int nth = rf_threads();
    size_t per = (size_t)4 * n + (size_t)nw;
    double *bufs = rf_malloc_array(per * (size_t)nth, sizeof *bufs);
    if (c) c->W = rf_malloc_array((size_t)n * dim, sizeof *c->W);
    if (!c || !wd || !bufs || !c->W) {
        rf_free(rows);
        rf_free(wd);
        rf_free(bufs);
        rf_coldstart_free(c);
        return rf_err_set(err, RF_ENOMEM, "coldstart: out of memory");
    }
    int iters_max = 0;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1) reduction(max : iters_max)
    for (int d = 0; d < dim; d++) {
        double *buf = bufs + per * (size_t)rf_thread_id();
        int it = solve_dim(x, rows, nw, reg, f->items, f->ld, d, wd + (size_t)d * n, buf);
        if (it > iters_max) iters_max = it;
    }
    for (int32_t j = 0; j < n; j++)
        for (int d = 0; d < dim; d++) c->W[(size_t)j * dim + d] = (float)wd[(size_t)d * n + j];
    c->n_feats = x->ncols;
    c->dim = dim;
    c->n_warm = nw;
    c->iters_max = iters_max;
    rf_free(rows);
    rf_free(wd);
    rf_free(bufs);
    *out = c;
    return 0;
}

void rf_coldstart_item_vector(const rf_coldstart *c, int32_t n, const int32_t *idx,
                              const float *val, float *vec) {
    const int dim = c->dim;
    const float *b = c->W + (size_t)c->n_feats * dim;
    for (int d = 0; d < dim; d++) vec[d] = b[d];
    for (int32_t q = 0; q < n; q++) {
        if (idx[q] < 0 || idx[q] >= c->n_feats) continue;
        const float *w = c->W + (size_t)idx[q] * dim;
        for (int d = 0; d < dim; d++) vec[d] += val[q] * w[d];
    }
}

int32_t rf_coldstart_fill(const rf_coldstart *c, const rf_csr *x, const uint8_t *cold, float *V,
                          int ld) {
    int32_t written = 0;
    for (int32_t i = 0; i < x->nrows; i++) {
        float *row = V + (size_t)i * ld;
        int is_cold;
        if (cold) {
            is_cold = cold[i] != 0;
        } else {
            is_cold = 1;
            for (int d = 0; d < c->dim; d++)
                if (row[d] != 0) {
                    is_cold = 0;
                    break;
                }
        }
        if (!is_cold) continue;
        int64_t a = x->indptr[i];
        rf_coldstart_item_vector(c, (int32_t)(x->indptr[i + 1] - a), x->indices + a, x->data + a,
                                 row);
        written++;
    }
    return written;
}

int32_t rf_warmstart_copy(const rf_idmap *src_ids, int32_t n_src, const float *src, int src_ld,
                          const rf_idmap *dst_ids, int32_t n_dst, float *dst, int dst_ld, int dim) {
    int32_t copied = 0;
    for (int32_t i = 0; i < n_dst; i++) {
        const char *s = rf_idmap_str(dst_ids, i);
        if (!s) continue;
        int32_t j = rf_idmap_find(src_ids, s, rf_idmap_len(dst_ids, i));
        if (j < 0 || j >= n_src) continue;
        memcpy(dst + (size_t)i * dst_ld, src + (size_t)j * src_ld, (size_t)dim * sizeof *dst);
        copied++;
    }
    return copied;
}

int rf_warmstart_check(const rf_model *dst, const rf_model *src, int have, int want, rf_err *err) {
    if (!src || src->ops != dst->ops || !src->fitted || !src->impl || have < 0)
        return rf_err_set(err, RF_EINVAL, "warm start: source: not a fitted %s model",
                          dst->ops->name);
    if (have != want)
        return rf_err_set(err, RF_EINVAL,
                          "warm start: the source model has factors=%d, this one factors=%d (they "
                          "must match)",
                          have, want);
    return 0;
}

int rf_warmstart_parts(const rf_model *src, const rf_warm_parts *s, const rf_model *dst,
                       const rf_warm_parts *d, rf_err *err) {
    if (s->dim != d->dim)
        return rf_err_set(err, RF_EINVAL,
                          "warm start: the source model has factors=%d, this one factors=%d (they "
                          "must match)",
                          s->dim, d->dim);
    /* d's arrays are the new model's own (writable) */
    int32_t nu = 0, ni = 0;
    if (s->P && d->P)
        nu = rf_warmstart_copy(src->users, src->n_users, s->P, s->ld, dst->users, dst->n_users,
                               (float *)d->P, d->ld, d->dim);
    if (s->Q && d->Q)
        ni = rf_warmstart_copy(src->items, src->n_items, s->Q, s->ld, dst->items, dst->n_items,
                               (float *)d->Q, d->ld, d->dim);
    if (s->bu && d->bu)
        rf_warmstart_copy(src->users, src->n_users, s->bu, 1, dst->users, dst->n_users,
                          (float *)d->bu, 1, 1);
    if (s->bi && d->bi)
        rf_warmstart_copy(src->items, src->n_items, s->bi, 1, dst->items, dst->n_items,
                          (float *)d->bi, 1, 1);
    char event[48];
    snprintf(event, sizeof event, "%s.warm_start", dst->ops->name);
    rf_log(RF_LOG_INFO, event, "users=%d/%d items=%d/%d", nu, dst->n_users, ni, dst->n_items);
    return 0;
}

/* ---- model "coldstart": iALS whose cold items get mapped vectors --------
 *
 * DESIGN: fit trains an inner "ials" model with this model's ials_*
 * parameters, copies its factors, then (when the dataset carries a
 * catalog) builds item features (features.h defaults), fits the mapper
 * on the items with training interactions and overwrites the vectors of
 * the items without any (iALS leaves those near zero) with mapped ones.
 * The inner model is freed: the file holds U, V and popularity only.
 * Unknown users rank by popularity (no fold-in: the inner model's Gram
 * matrices are not kept). */
#include "recfuse/binfile.h"
#include "recfuse/features.h"
#include "recfuse/log.h"
#include "recfuse/model.h"

typedef struct cs_params {
    int factors, iterations, seed;
    double reg, alpha, map_reg;
} cs_params;

typedef struct cs_impl {
    int dim, ld;
    float *U, *V, *pop; /* n_users x ld, n_items x ld, n_items */
    int32_t n_mapped;
} cs_impl;

static const rf_param_def cs_defs[] = {
    {"factors", RF_P_INT, offsetof(cs_params, factors), 128, 1, 1024, NULL, "iALS latent dimensions"},
    {"reg", RF_P_DOUBLE, offsetof(cs_params, reg), 10, 1e-9, 1e12, NULL, "iALS regularisation"},
    {"alpha", RF_P_DOUBLE, offsetof(cs_params, alpha), 1, 0, 1e9, NULL, "iALS confidence scale"},
    {"iterations", RF_P_INT, offsetof(cs_params, iterations), 15, 1, 10000, NULL,
     "iALS iterations"},
    {"map_reg", RF_P_DOUBLE, offsetof(cs_params, map_reg), 1, 1e-9, 1e12, NULL,
     "ridge of the feature -> latent mapper"},
    {"seed", RF_P_INT, offsetof(cs_params, seed), 42, 0, 2147483647, NULL, "random seed"},
    {0},
};

static int cs_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(cs_impl));
    return m->impl ? 0 : rf_err_set(err, RF_ENOMEM, "coldstart: out of memory");
}

static void cs_clear(cs_impl *p) {
    rf_free(p->U);
    rf_free(p->V);
    rf_free(p->pop);
    p->U = p->V = p->pop = NULL;
}

static void cs_destroy(rf_model *m) {
    cs_impl *p = m->impl;
    if (!p) return;
    cs_clear(p);
    rf_free(p);
    m->impl = NULL;
}

static int cs_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const cs_params *pp = m->params;
    cs_impl *p = m->impl;
    rf_model *base = NULL;
    rf_item_features *feat = NULL;
    rf_coldstart *cs = NULL;
    uint8_t *cold = NULL;
    char kv[256];
    /* the plain iALS this model was tuned with (no sequence recency term) */
    snprintf(kv, sizeof kv,
             "factors=%d reg=%.17g alpha=%.17g iterations=%d seed=%d unobs_weight=1 recency=0",
             pp->factors, pp->reg, pp->alpha, pp->iterations, pp->seed);
    int rc = rf_model_new("ials", &base, err);
    if (!rc) rc = rf_model_set_params(base, kv, err);
    if (rc) goto done;
    base->data_opts = m->data_opts;
    if ((rc = rf_model_fit(base, d, err))) goto done;
    rf_factors f;
    if ((rc = rf_factors_get(base, &f, err))) goto done;
    cs_clear(p);
    p->dim = f.dim;
    p->ld = f.ld;
    p->n_mapped = 0;
    p->U = rf_malloc_array((size_t)f.n_users * f.ld + 1, sizeof *p->U);
    p->V = rf_malloc_array((size_t)f.n_items * f.ld + 1, sizeof *p->V);
    p->pop = rf_malloc_array((size_t)f.n_items + 1, sizeof *p->pop);
    cold = rf_malloc_array((size_t)f.n_items + 1, 1);
    if (!p->U || !p->V || !p->pop || !cold) {
        rc = rf_err_set(err, RF_ENOMEM, "coldstart: out of memory");
        goto done;
    }
    memcpy(p->U, f.users, (size_t)f.n_users * f.ld * sizeof *p->U);
    memcpy(p->V, f.items, (size_t)f.n_items * f.ld * sizeof *p->V);
    int32_t n_cold = 0;
    for (int32_t i = 0; i < d->n_items; i++) {
        p->pop[i] = (float)rf_csr_row_len(d->iu, i);
        cold[i] = rf_csr_row_len(d->iu, i) == 0;
        n_cold += cold[i];
    }
    if (!d->catalog) {
        rf_log(RF_LOG_WARN, "coldstart.no_catalog",
               "msg=\"the dataset carries no catalog: cold items keep their iALS vectors\"");
    } else if (n_cold > 0) {
        rf_features_opts o;
        rf_features_opts_default(&o);
        if ((rc = rf_item_features_build(d->catalog, d->items, d->n_items, &o, &feat, err)))
            goto done;
        uint8_t *warm = cold; /* reuse: flip to warm flags for the fit, back after */
        for (int32_t i = 0; i < d->n_items; i++) warm[i] = !warm[i];
        rc = rf_coldstart_fit(&f, feat->x, warm, pp->map_reg, &cs, err);
        for (int32_t i = 0; i < d->n_items; i++) warm[i] = !warm[i];
        if (rc) goto done;
        p->n_mapped = rf_coldstart_fill(cs, feat->x, cold, p->V, p->ld);
    }
    rf_log(RF_LOG_INFO, "coldstart.fit", "items=%d cold=%d mapped=%d", d->n_items, n_cold,
           p->n_mapped);
done:
    if (rc) cs_clear(p);
    rf_coldstart_free(cs);
    rf_item_features_free(feat);
    rf_free(cold);
    rf_model_free(base);
    return rc;
}

static int cs_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                        rf_err *err) {
    const cs_impl *p = m->impl;
    if (user < 0) {
        memcpy(out, p->pop, (size_t)m->n_items * sizeof *out);
        return 0;
    }
    const float *u = p->U + (size_t)user * p->ld;
    for (int32_t i = 0; i < m->n_items; i++) {
        const float *v = p->V + (size_t)i * p->ld;
        float s = 0;
        for (int d = 0; d < p->dim; d++) s += u[d] * v[d];
        out[i] = s;
    }
    return 0;
}

static int cs_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const cs_impl *p = m->impl;
    int rc = rf_writer_i64(w, p->dim);
    rc |= rf_writer_i64(w, p->ld);
    rc |= rf_writer_i64(w, p->n_mapped);
    rc |= rf_writer_put(w, p->U, (size_t)m->n_users * p->ld * sizeof(float));
    rc |= rf_writer_put(w, p->V, (size_t)m->n_items * p->ld * sizeof(float));
    rc |= rf_writer_put(w, p->pop, (size_t)m->n_items * sizeof(float));
    return rc ? rf_err_set(err, RF_EIO, "coldstart: write failed") : 0;
}

static int cs_read(rf_reader *r, int64_t n, float **out, rf_err *err) {
    if (n < 0 || n * (int64_t)sizeof(float) > rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT, "coldstart: payload truncated");
    float *a = rf_malloc_array((size_t)n + 1, sizeof *a);
    if (!a) return rf_err_set(err, RF_ENOMEM, "coldstart: out of memory");
    int rc = rf_reader_get(r, a, (size_t)n * sizeof *a, err);
    for (int64_t q = 0; !rc && q < n; q++)
        if (!isfinite(a[q])) rc = rf_err_set(err, RF_EFORMAT, "coldstart: non-finite value");
    if (rc) {
        rf_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int cs_load(rf_model *m, rf_reader *r, rf_err *err) {
    cs_impl *p = m->impl;
    const cs_params *pp = m->params;
    int64_t dim, ld, nm;
    int rc;
    if ((rc = rf_reader_i64(r, &dim, err)) || (rc = rf_reader_i64(r, &ld, err)) ||
        (rc = rf_reader_i64(r, &nm, err)))
        return rc;
    if (dim != pp->factors || ld < dim || ld % 8 != 0 || ld > dim + 7 || nm < 0 ||
        nm > m->n_items)
        return rf_err_set(err, RF_EFORMAT, "coldstart: payload dim %lld / ld %lld disagree with "
                          "factors=%d", (long long)dim, (long long)ld, pp->factors);
    cs_clear(p);
    p->dim = (int)dim;
    p->ld = (int)ld;
    p->n_mapped = (int32_t)nm;
    if ((rc = cs_read(r, (int64_t)m->n_users * ld, &p->U, err)) ||
        (rc = cs_read(r, (int64_t)m->n_items * ld, &p->V, err)) ||
        (rc = cs_read(r, m->n_items, &p->pop, err))) {
        cs_clear(p);
        return rc;
    }
    return 0;
}

const rf_model_ops rf_model_coldstart_ops = {
    .name = "coldstart",
    .help = "iALS with feature-mapped vectors for items without interactions (needs a catalog)",
    .params = cs_defs,
    .params_size = sizeof(cs_params),
    .create = cs_create,
    .fit = cs_fit,
    .score_all = cs_score_all,
    .save = cs_save,
    .load = cs_load,
    .destroy = cs_destroy,
};
