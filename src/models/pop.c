/* pop.c - non-personalised baselines: "pop" (most popular) and
 * "trending" (popularity with exponential time decay).
 *
 * Both rank every user's candidates by one precomputed item score, so
 * scoring is a copy; recommend then drops the user's own history. They
 * are also the fallback every other model falls back to for unknown users.
 *
 * DESIGN: popularity counts distinct users per item (weighted=0, the
 * default) rather than summed interaction weight: a customer who views an
 * item twenty times is one customer, and the count matches the
 * "MostPopular" baseline of the reference benchmarks. weighted=1 sums the
 * folded weights instead (a purchase counts more than a view). Trending
 * decays each (user, item) entry by its last interaction time relative to
 * the newest event of the training data: score(i) = sum over users u of
 * w(u,i) * 2^(-(ts_max - ts(u,i)) / half_life). The reference time is
 * frozen at training; retrain to move it. Sums are serial in user order
 * (O(nnz), cheap), so results are identical for every thread count. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"

typedef struct pop_params {
    int weighted;
    double half_life; /* days; trending only */
} pop_params;

typedef struct pop_impl {
    float *score;   /* n_items */
    int64_t ref_ts; /* trending: the reference time (dataset ts_max) */
} pop_impl;

static const rf_param_def pop_defs[] = {
    {"weighted", RF_P_INT, offsetof(pop_params, weighted), 0, 0, 1, NULL,
     "0: count distinct users per item; 1: sum the folded interaction weights"},
    {0},
};

static const rf_param_def trending_defs[] = {
    {"half_life", RF_P_DOUBLE, offsetof(pop_params, half_life), 7, 0.001, 100000, NULL,
     "days after which an interaction counts half"},
    {"weighted", RF_P_INT, offsetof(pop_params, weighted), 0, 0, 1, NULL,
     "0: each user counts 1 (decayed); 1: the folded interaction weight (decayed)"},
    {0},
};

static int pop_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(pop_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "out of memory");
    return 0;
}

static void pop_destroy(rf_model *m) {
    pop_impl *p = m->impl;
    if (!p) return;
    rf_free(p->score);
    rf_free(p);
    m->impl = NULL;
}

static int pop_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const pop_params *pp = m->params;
    pop_impl *p = m->impl;
    float *s = rf_malloc_array((size_t)d->n_items, sizeof *s);
    if (!s) return rf_err_set(err, RF_ENOMEM, "pop: out of memory");
    const rf_csr *iu = d->iu;
    for (int32_t i = 0; i < d->n_items; i++) {
        if (!pp->weighted) {
            s[i] = (float)rf_csr_row_len(iu, i);
            continue;
        }
        double sum = 0;
        for (int64_t q = iu->indptr[i]; q < iu->indptr[i + 1]; q++) sum += iu->data[q];
        s[i] = (float)sum;
    }
    rf_free(p->score);
    p->score = s;
    p->ref_ts = d->ts_max;
    return 0;
}

static int trending_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const pop_params *pp = m->params;
    pop_impl *p = m->impl;
    double *acc = rf_calloc((size_t)d->n_items, sizeof *acc);
    float *s = rf_malloc_array((size_t)d->n_items, sizeof *s);
    if (!acc || !s) {
        rf_free(acc);
        rf_free(s);
        return rf_err_set(err, RF_ENOMEM, "trending: out of memory");
    }
    const rf_csr *ui = d->ui;
    const double hl = pp->half_life * 86400.0;
    for (int32_t u = 0; u < d->n_users; u++)
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
            double age = d->ui_ts ? (double)(d->ts_max - (d->ts_base + (int64_t)d->ui_ts[q])) : 0;
            if (age < 0) age = 0;
            double w = pp->weighted ? ui->data[q] : 1.0;
            acc[ui->indices[q]] += w * exp2(-age / hl);
        }
    for (int32_t i = 0; i < d->n_items; i++) s[i] = (float)acc[i];
    rf_free(acc);
    rf_free(p->score);
    p->score = s;
    p->ref_ts = d->ts_max;
    return 0;
}

static int pop_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                         rf_err *err) {
    const pop_impl *p = m->impl;
    memcpy(out, p->score, (size_t)m->n_items * sizeof *out);
    return 0;
}

static int pop_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const pop_impl *p = m->impl;
    int rc = rf_writer_i64(w, m->n_items);
    rc |= rf_writer_i64(w, p->ref_ts);
    rc |= rf_writer_put(w, p->score, (size_t)m->n_items * sizeof *p->score);
    return rc ? rf_err_set(err, RF_EIO, "%s: write failed", m->ops->name) : 0;
}

static int pop_load(rf_model *m, rf_reader *r, rf_err *err) {
    pop_impl *p = m->impl;
    int64_t n;
    int rc;
    if ((rc = rf_reader_i64(r, &n, err))) return rc;
    if (n != m->n_items || n * (int64_t)sizeof(float) > rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT, "%s: payload has %lld items, header %d",
                          m->ops->name, (long long)n, m->n_items);
    if ((rc = rf_reader_i64(r, &p->ref_ts, err))) return rc;
    float *s = rf_malloc_array((size_t)n, sizeof *s);
    if (!s) return rf_err_set(err, RF_ENOMEM, "%s: out of memory", m->ops->name);
    if ((rc = rf_reader_get(r, s, (size_t)n * sizeof *s, err))) {
        rf_free(s);
        return rc;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(s[i])) {
            rf_free(s);
            return rf_err_set(err, RF_EFORMAT, "%s: non-finite score", m->ops->name);
        }
    rf_free(p->score);
    p->score = s;
    return 0;
}

const rf_model_ops rf_model_pop_ops = {
    .name = "pop",
    .help = "most popular items (distinct users per item)",
    .params = pop_defs,
    .params_size = sizeof(pop_params),
    .create = pop_create,
    .fit = pop_fit,
    .score_all = pop_score_all,
    .save = pop_save,
    .load = pop_load,
    .destroy = pop_destroy,
};

const rf_model_ops rf_model_trending_ops = {
    .name = "trending",
    .help = "popularity with exponential time decay (half_life days)",
    .params = trending_defs,
    .params_size = sizeof(pop_params),
    .create = pop_create,
    .fit = trending_fit,
    .score_all = pop_score_all,
    .save = pop_save,
    .load = pop_load,
    .destroy = pop_destroy,
};
