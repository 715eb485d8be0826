/* profile.c - user profiles over item features (features.h): the
 * decayed, event-weighted mean of the vectors of a user's items, and its
 * cosine with every item.
 *
 * DESIGN: the profile's sparse part is a dense array over the feature
 * columns plus the list of columns touched, so building costs the
 * history's nonzeros and scoring walks only the touched columns of the
 * transposed item matrix (an inverted index): a user who bought shoes
 * touches the shoe items, not the catalog. Feature weights are positive,
 * so a touched column never returns to zero; the dense part (embeddings,
 * signed) is a plain dot product per item. Accumulation order is fixed
 * (history order, then column first-touch order), so scores are
 * reproducible to the bit. */
#include <math.h>
#include <string.h>

#include "recfuse/features.h"
#include "recfuse/mem.h"
#include "recfuse/error.h"

int rf_profile_new(const rf_item_features *f, rf_profile **out) {
    *out = NULL;
    rf_profile *p = rf_calloc(1, sizeof *p);
    if (!p) return RF_ENOMEM;
    p->n_feats = f->n_feats;
    p->dim = f->dim;
    p->w = rf_calloc((size_t)f->n_feats + (size_t)f->dim + 1, sizeof *p->w);
    p->nz = rf_malloc_array((size_t)f->n_feats + 1, sizeof *p->nz);
    if (!p->w || !p->nz) {
        rf_profile_free(p);
        return RF_ENOMEM;
    }
    *out = p;
    return 0;
}

void rf_profile_free(rf_profile *p) {
    if (!p) return;
    rf_free(p->w);
    rf_free(p->nz);
    rf_free(p);
}

static int has_features(const rf_item_features *f, int32_t j) {
    if (f->x->indptr[j + 1] > f->x->indptr[j]) return 1;
    const float *d = f->dense ? f->dense + (size_t)j * (size_t)f->dim : NULL;
    for (int32_t k = 0; d && k < f->dim; k++)
        if (d[k] != 0) return 1;
    return 0;
}

double rf_profile_build(rf_profile *p, const rf_item_features *f, int32_t n, const int32_t *items,
                        const float *weights, const int64_t *ts, double half_life_days) {
    for (int32_t k = 0; k < p->n_nz; k++) p->w[p->nz[k]] = 0;
    p->n_nz = 0;
    memset(p->w + p->n_feats, 0, (size_t)p->dim * sizeof *p->w);
    p->norm = 0;
    int64_t t_ref = INT64_MIN;
    if (ts)
        for (int32_t i = 0; i < n; i++)
            if (ts[i] > t_ref) t_ref = ts[i];
    const double hl = half_life_days * 86400.0;
    double total = 0;
    const rf_csr *x = f->x;
    for (int32_t i = 0; i < n; i++) {
        int32_t j = items[i];
        if (j < 0 || j >= f->n_items) continue;
        double c = weights ? weights[i] : 1.0;
        if (ts && half_life_days > 0) c *= exp2(-(double)(t_ref - ts[i]) / hl);
        if (!(c > 0) || !has_features(f, j)) continue;
        total += c;
        for (int64_t q = x->indptr[j]; q < x->indptr[j + 1]; q++) {
            int32_t col = x->indices[q];
            if (p->w[col] == 0) p->nz[p->n_nz++] = col;
            p->w[col] += c * x->data[q];
        }
        if (f->dim) {
            const float *d = f->dense + (size_t)j * (size_t)f->dim;
            double *pw = p->w + p->n_feats;
            for (int32_t k = 0; k < f->dim; k++) pw[k] += c * d[k];
        }
    }
    if (total <= 0) return 0;
    double ss = 0;
    for (int32_t k = 0; k < p->n_nz; k++) {
        double *v = &p->w[p->nz[k]];
        *v /= total;
        ss += *v * *v;
    }
    for (int32_t k = 0; k < p->dim; k++) {
        double *v = &p->w[p->n_feats + k];
        *v /= total;
        ss += *v * *v;
    }
    p->norm = sqrt(ss);
    return total;
}

void rf_profile_score(const rf_profile *p, const rf_item_features *f, float *out) {
    memset(out, 0, (size_t)f->n_items * sizeof *out);
    if (!(p->norm > 0)) return;
    const rf_csr *xt = f->xt;
    const double inv = 1.0 / p->norm;
    for (int32_t k = 0; k < p->n_nz; k++) {
        int32_t col = p->nz[k];
        const float v = (float)(p->w[col] * inv);
        for (int64_t q = xt->indptr[col]; q < xt->indptr[col + 1]; q++)
            out[xt->indices[q]] += v * xt->data[q];
    }
    if (f->dim) {
        const double *pw = p->w + p->n_feats;
        for (int32_t j = 0; j < f->n_items; j++) {
            const float *d = f->dense + (size_t)j * (size_t)f->dim;
            double s = 0;
            for (int32_t k = 0; k < f->dim; k++) s += pw[k] * d[k];
            out[j] += (float)(s * inv);
        }
    }
}
