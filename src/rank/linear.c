/* linear.c - the light ranker: a linear scoring function trained with
 * the pairwise logistic loss on sampled pairs, by SGD.
 *
 * Features are standardised with the mean and standard deviation of the
 * training rows (NAN and +-INF ignored; a constant feature gets std 1)
 * and such a value is replaced by the mean (standardised value 0); both
 * are stored in the model, so score(x) = sum_j w_j (x_j - mean_j) / std_j.
 *
 * DESIGN: each epoch visits the groups in a seeded shuffled order; for
 * every row i of a group whose label is above the group's minimum (in
 * ascending label order) one row j with a smaller label is drawn
 * uniformly, and w takes an SGD step
 * on log(1 + exp(-(s_i - s_j))) + lin_l2/2 |w|^2. The learning rate
 * decays as lin_lr / (1 + epoch). Serial, so the model is the same for
 * every thread count. With validation data and early_stop > 0 the
 * validation NDCG@ndcg_at is measured after every epoch and the best
 * epoch's weights are kept (training stops after early_stop epochs
 * without a better one). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/rng.h"

/* Ascending label, ties by row (qsort_r context: the labels). */
static int cmp_label(const void *a, const void *b, void *ctx) {
    const float *lab = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (lab[i] != lab[j]) return lab[i] < lab[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* Standardised value of feature j of row x (a missing or infinite value
 * counts as the mean). */
static inline float zval(const rf_ranker *r, const float *x, int32_t j) {
    float v = x[j];
    return isfinite(v) ? (v - r->mean[j]) * r->inv_std[j] : 0.0f;
}

int rk_linear_fit(const rf_ranker_opts *o, const rf_rank_data *d, const rf_rank_data *valid,
                  rf_ranker *r, rf_err *err) {
    const int32_t nf = d->n_feats;
    if (d->n_groups > INT32_MAX)
        return rf_err_set(err, RF_EINVAL, "ranker: %lld groups (at most %d)",
                          (long long)d->n_groups, INT32_MAX);
    int32_t *gorder = NULL, *lower = NULL;
    double *sum = NULL, *sq = NULL, *wd = NULL, *zi = NULL, *wbest = NULL;
    float *vs = NULL;
    const int use_valid = valid && o->early_stop > 0;
    int64_t *cnt = NULL;
    r->w = rf_calloc((size_t)nf, sizeof *r->w);
    r->mean = rf_calloc((size_t)nf, sizeof *r->mean);
    r->inv_std = rf_calloc((size_t)nf, sizeof *r->inv_std);
    sum = rf_calloc((size_t)nf, sizeof *sum);
    sq = rf_calloc((size_t)nf, sizeof *sq);
    wd = rf_calloc((size_t)nf, sizeof *wd);
    zi = rf_calloc((size_t)nf, sizeof *zi);
    cnt = rf_calloc((size_t)nf, sizeof *cnt);
    lower = rf_malloc_array((size_t)(d->n_rows ? d->n_rows : 1), sizeof *lower);
    gorder = rf_malloc_array((size_t)(d->n_groups ? d->n_groups : 1), sizeof *gorder);
    if (use_valid) {
        wbest = rf_calloc((size_t)nf, sizeof *wbest);
        vs = rf_malloc_array((size_t)(valid->n_rows ? valid->n_rows : 1), sizeof *vs);
    }
    if (!r->w || !r->mean || !r->inv_std || !sum || !sq || !wd || !zi || !cnt || !lower ||
        !gorder || (use_valid && (!wbest || !vs))) {
    nomem:
        rf_free(sum), rf_free(sq), rf_free(wd), rf_free(zi), rf_free(cnt);
        rf_free(lower), rf_free(gorder), rf_free(wbest), rf_free(vs);
        return rf_err_set(err, RF_ENOMEM, "ranker: out of memory (linear, %lld groups)",
                          (long long)d->n_groups);
    }
    /* standardisation (two passes: mean, then centred squares) */
    for (int64_t i = 0; i < d->n_rows; i++)
        for (int32_t j = 0; j < nf; j++) {
            float v = d->x[i * nf + j];
            if (isfinite(v)) {
                sum[j] += v;
                cnt[j]++;
            }
        }
    for (int32_t j = 0; j < nf; j++) sum[j] = cnt[j] ? sum[j] / (double)cnt[j] : 0;
    for (int64_t i = 0; i < d->n_rows; i++)
        for (int32_t j = 0; j < nf; j++) {
            float v = d->x[i * nf + j];
            if (isfinite(v)) sq[j] += (v - sum[j]) * (v - sum[j]);
        }
    for (int32_t j = 0; j < nf; j++) {
        double sd = cnt[j] > 1 ? sqrt(sq[j] / (double)cnt[j]) : 0;
        r->mean[j] = (float)sum[j];
        r->inv_std[j] = (sd > 1e-12 && isfinite(sd)) ? (float)(1.0 / sd) : 1.0f;
        if (!isfinite(r->mean[j])) r->mean[j] = 0;
    }
    /* each group's rows by ascending label (group-relative indices), once */
    for (int64_t q = 0; q < d->n_groups; q++) {
        int64_t a = d->group[q], n = d->group[q + 1] - a;
        for (int64_t i = 0; i < n; i++) lower[a + i] = (int32_t)i;
        qsort_r(lower + a, (size_t)n, sizeof *lower, cmp_label, (void *)(d->label + a));
    }
    rf_rng rng;
    rf_rng_stream(&rng, o->seed, 0x11ea);
    for (int64_t q = 0; q < d->n_groups; q++) gorder[q] = (int32_t)q;
    double best = -1;
    int best_ep = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        const double lr = o->lin_lr / (1.0 + ep);
        rf_rng_shuffle_i32(&rng, gorder, d->n_groups);
        for (int64_t gi = 0; gi < d->n_groups; gi++) {
            int64_t q = gorder[gi], a = d->group[q], n = d->group[q + 1] - a;
            const float *lab = d->label + a;
            const int32_t *byl = lower + a;
            /* rows below position p (by label) are those before its run */
            int64_t run = 0;
            for (int64_t p = 0; p < n; p++) {
                if (p > 0 && lab[byl[p]] != lab[byl[p - 1]]) run = p;
                if (run == 0) continue;
                int64_t i = byl[p], j = byl[rf_rng_below(&rng, (uint64_t)run)];
                const float *xi = d->x + (a + i) * nf, *xj = d->x + (a + j) * nf;
                double s = 0;
                for (int32_t k = 0; k < nf; k++) {
                    zi[k] = (double)zval(r, xi, k) - zval(r, xj, k);
                    s += wd[k] * zi[k];
                }
                double coef = 1.0 / (1.0 + exp(s)); /* -dloss/ds */
                for (int32_t k = 0; k < nf; k++)
                    wd[k] += lr * (coef * zi[k] - o->lin_l2 * wd[k]);
            }
        }
        if (!use_valid) continue;
        /* early stopping: validation NDCG of the weights after this epoch */
        for (int32_t j = 0; j < nf; j++) r->w[j] = (float)wd[j];
        rk_linear_predict(r, valid->x, valid->n_rows, vs);
        double v = rf_rank_ndcg(valid, vs, o->ndcg_at);
        if (isnan(v)) goto nomem;
        if (v > best) {
            best = v;
            best_ep = ep + 1;
            memcpy(wbest, wd, (size_t)nf * sizeof *wd);
        }
        if (ep + 1 - best_ep >= o->early_stop) break;
    }
    if (use_valid) {
        memcpy(wd, wbest, (size_t)nf * sizeof *wd);
        rf_log(RF_LOG_INFO, "ranker.fit", "kind=linear epochs=%d valid_ndcg@%d=%.6f", best_ep,
               o->ndcg_at, best);
    }
    for (int32_t j = 0; j < nf; j++) r->w[j] = (float)wd[j];
    rf_free(sum), rf_free(sq), rf_free(wd), rf_free(zi), rf_free(cnt);
    rf_free(lower), rf_free(gorder), rf_free(wbest), rf_free(vs);
    return 0;
}

void rk_linear_predict(const rf_ranker *r, const float *x, int64_t n, float *out) {
    const int32_t nf = r->n_feats;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * nf;
        double s = 0;
        for (int32_t j = 0; j < nf; j++) s += (double)r->w[j] * zval(r, xi, j);
        out[i] = (float)s;
    }
}

void rk_linear_contrib(const rf_ranker *r, const float *x, float *contrib, float *bias) {
    for (int32_t j = 0; j < r->n_feats; j++) contrib[j] = r->w[j] * zval(r, x, j);
    *bias = 0;
}

int rk_linear_save(const rf_ranker *r, rf_writer *w) {
    size_t b = (size_t)r->n_feats * sizeof(float);
    int rc = rf_writer_put(w, r->w, b);
    rc |= rf_writer_put(w, r->mean, b);
    rc |= rf_writer_put(w, r->inv_std, b);
    return rc ? RF_EIO : 0;
}

int rk_linear_load(rf_reader *rd, rf_ranker *r, rf_err *err) {
    const int32_t nf = r->n_feats;
    size_t b = (size_t)nf * sizeof(float);
    if ((int64_t)(3 * b) > rf_reader_remaining(rd))
        return rf_err_set(err, RF_EFORMAT, "ranker: linear weights truncated");
    r->w = rf_malloc_array((size_t)nf, sizeof *r->w);
    r->mean = rf_malloc_array((size_t)nf, sizeof *r->mean);
    r->inv_std = rf_malloc_array((size_t)nf, sizeof *r->inv_std);
    if (!r->w || !r->mean || !r->inv_std)
        return rf_err_set(err, RF_ENOMEM, "ranker: out of memory loading linear weights");
    int rc;
    if ((rc = rf_reader_get(rd, r->w, b, err)) || (rc = rf_reader_get(rd, r->mean, b, err)) ||
        (rc = rf_reader_get(rd, r->inv_std, b, err)))
        return rc;
    for (int32_t j = 0; j < nf; j++)
        if (!isfinite(r->w[j]) || !isfinite(r->mean[j]) || !isfinite(r->inv_std[j]))
            return rf_err_set(err, RF_EFORMAT, "ranker: linear feature %d: non-finite weight",
                              (int)j);
    return 0;
}
