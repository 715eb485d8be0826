/* itemknn.c - item-based k nearest neighbours ("itemknn").
 *
 * Every item keeps its `k` most similar other items (ties by the smaller
 * id). The similarity of items i and j compares their user columns of the
 * training matrix (folded interaction weights); the family - cosine,
 * jaccard, asymmetric cosine, bm25- and tf-idf-weighted, rp3b - with
 * shrinkage, a locality exponent q and per-item normalisation is defined
 * and computed in knn_sim.c, which userknn shares. A user's score for
 * item j is
 *     score(j) = sum over history items i of w_i * sim(i, j)   (j in nbr(i))
 * with w_i the history weight of i (rf_hist: folded as the training matrix
 * was), times 2^(-(t_newest - t_i) / half_life) when half_life > 0 and
 * the history carries times (t_newest: the history's newest event).
 *
 * DESIGN: the similarities are computed sparsely and in parallel, never as
 * a dense items x items matrix, and bit-identically for every thread count
 * (knn_sim.h). The defaults are the variant tuned on the ML-100K
 * validation split (docs/models-knn.md).
 *
 * Fallback: items that no history item reaches score
 * pop(j) / (max_pop + 1) - 1, in [-1, 0) - below every reached item and
 * ordered by popularity (distinct users). So a user with an empty history
 * (an unknown user) gets exactly the popularity ranking, and a user with a
 * short history gets kNN items first, then popular ones. score_sparse
 * (model.h) sums the same terms into a sparse accumulator over the
 * neighbour lists only, leaving the fallback implicit. */
#include "recfuse/itemknn.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "knn_sim.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/sparse.h"

typedef struct knn_params {
    rf_sim_opts sim;
    double half_life; /* days; 0: no decay at scoring */
} knn_params;

typedef struct knn_impl {
    rf_csr *nbr;   /* n_items x n_items, top-k neighbours per row */
    float *pop;    /* distinct users per item (fallback) */
    float pop_inv; /* 1 / (max pop + 1) */
} knn_impl;

static const rf_param_def knn_defs[] = {
    {"sim", RF_P_ENUM, offsetof(knn_params, sim.kind), RF_SIM_ASYM, 0, RF_SIM_RP3B,
     RF_SIM_CHOICES, "similarity of two items' user columns (docs/models-knn.md)"},
    {"k", RF_P_INT, offsetof(knn_params, sim.k), 200, 1, 100000, NULL,
     "neighbours kept per item"},
    {"shrink", RF_P_DOUBLE, offsetof(knn_params, sim.shrink), 1, 0, 1e9, NULL,
     "added to the similarity denominator; damps similarities backed by few users"},
    {"alpha", RF_P_DOUBLE, offsetof(knn_params, sim.alpha), 0.35, 0, 1, NULL,
     "asym: denominator |i|^(2 alpha) |j|^(2 (1 - alpha)), i the history item; 0.5 = cosine"},
    {"k1", RF_P_DOUBLE, offsetof(knn_params, sim.k1), 1.2, 1e-6, 1e6, NULL,
     "bm25: term-frequency saturation K1"},
    {"b", RF_P_DOUBLE, offsetof(knn_params, sim.b), 0.75, 0, 1, NULL,
     "bm25: length normalisation B"},
    {"p3_alpha", RF_P_DOUBLE, offsetof(knn_params, sim.p3_alpha), 1, 1e-3, 10, NULL,
     "rp3b: exponent of the transition probabilities"},
    {"p3_beta", RF_P_DOUBLE, offsetof(knn_params, sim.p3_beta), 0.5, 0, 10, NULL,
     "rp3b: popularity penalty, sim / pop(j)^p3_beta"},
    {"q", RF_P_DOUBLE, offsetof(knn_params, sim.q), 2, 1e-3, 100, NULL,
     "locality exponent: kept similarities become sim^q"},
    {"norm", RF_P_ENUM, offsetof(knn_params, sim.norm), RF_SIM_NORM_NONE, 0, RF_SIM_NORM_MAX,
     RF_SIM_NORM_CHOICES, "scale each item's kept similarities: none, l1 (sum 1), max (max 1)"},
    {"half_life", RF_P_DOUBLE, offsetof(knn_params, half_life), 0, 0, 1e6, NULL,
     "days; > 0: history weights decay by 2^(-age / half_life), age relative to the "
     "history's newest event (histories with times only)"},
    {0},
};

extern const rf_model_ops rf_model_itemknn_ops;

static int knn_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(knn_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "out of memory");
    return 0;
}

static void knn_destroy(rf_model *m) {
    knn_impl *p = m->impl;
    if (!p) return;
    rf_csr_free(p->nbr);
    rf_free(p->pop);
    rf_free(p);
    m->impl = NULL;
}

static void set_pop_inv(knn_impl *p, int32_t n) {
    float mx = 0;
    for (int32_t i = 0; i < n; i++)
        if (p->pop[i] > mx) mx = p->pop[i];
    p->pop_inv = 1.0f / (mx + 1.0f);
}

static int knn_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const knn_params *pp = m->params;
    knn_impl *p = m->impl;
    const int32_t n = d->n_items;
    float *pop = rf_malloc_array((size_t)(n ? n : 1), sizeof *pop);
    if (!pop) return rf_err_set(err, RF_ENOMEM, "itemknn: out of memory");
    for (int32_t i = 0; i < n; i++) pop[i] = (float)rf_csr_row_len(d->iu, i);
    rf_sim s;
    rf_csr *nbr = NULL;
    int rc = rf_sim_init(&s, d->iu, d->ui, &pp->sim, err);
    if (!rc) rc = rf_sim_all(&s, "itemknn", &nbr, err);
    rf_sim_free(&s);
    if (rc) {
        rf_free(pop);
        return rc;
    }
    rf_csr_free(p->nbr);
    rf_free(p->pop);
    p->nbr = nbr;
    p->pop = pop;
    set_pop_inv(p, n);
    return 0;
}

/* sum over history items i of w_i * sim(i, j), into out (dense, zeroed)
 * or, when acc is not NULL, into acc (only the items reached): the same
 * terms added in the same order either way. */
static void knn_accumulate(const rf_model *m, const rf_hist *h, float *out, rf_sparse *acc) {
    const knn_impl *p = m->impl;
    const knn_params *pp = m->params;
    const rf_csr *nb = p->nbr;
    const int32_t n = m->n_items;
    const int decay = pp->half_life > 0 && h->ts && h->n > 0;
    int64_t newest = INT64_MIN;
    if (decay)
        for (int32_t t = 0; t < h->n; t++)
            if (h->ts[t] > newest) newest = h->ts[t];
    enum { AHEAD = 8 }; /* rows requested ahead of the one summed */
    for (int32_t t = 0; t < h->n && t < AHEAD; t++)
        if (h->items[t] >= 0 && h->items[t] < n) rf_csr_prefetch_row(nb, h->items[t]);
    for (int32_t t = 0; t < h->n; t++) {
        if (t + AHEAD < h->n && h->items[t + AHEAD] >= 0 && h->items[t + AHEAD] < n)
            rf_csr_prefetch_row(nb, h->items[t + AHEAD]);
        int32_t i = h->items[t];
        if (i < 0 || i >= n) continue;
        float w = h->weights ? h->weights[t] : 1.0f;
        if (decay)
            w = (float)((double)w *
                        exp2(-(double)(newest - h->ts[t]) / (pp->half_life * 86400.0)));
        rf_knn_add_row(nb, i, w, out, acc);
    }
}

static int knn_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                         rf_err *err) {
    const knn_impl *p = m->impl;
    const int32_t n = m->n_items;
    memset(out, 0, (size_t)n * sizeof *out);
    knn_accumulate(m, h, out, NULL);
    rf_knn_fallback_dense(p->pop, p->pop_inv, out, n);
    return 0;
}

static int knn_score_sparse(const rf_model *m, int32_t user, const rf_hist *h, rf_sparse *acc,
                            rf_err *err) {
    const knn_impl *p = m->impl;
    knn_accumulate(m, h, NULL, acc);
    rf_knn_fallback_sparse(p->pop, p->pop_inv, acc);
    return 0;
}

static int knn_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const knn_impl *p = m->impl;
    const rf_csr *nb = p->nbr;
    int rc = rf_writer_i64(w, nb->nrows);
    rc |= rf_writer_i64(w, nb->nnz);
    rc |= rf_writer_put(w, nb->indptr, ((size_t)nb->nrows + 1) * sizeof *nb->indptr);
    rc |= rf_writer_put(w, nb->indices, (size_t)nb->nnz * sizeof *nb->indices);
    rc |= rf_writer_put(w, nb->data, (size_t)nb->nnz * sizeof *nb->data);
    rc |= rf_writer_put(w, p->pop, (size_t)nb->nrows * sizeof *p->pop);
    return rc ? rf_err_set(err, RF_EIO, "itemknn: write failed") : 0;
}

static int knn_load(rf_model *m, rf_reader *r, rf_err *err) {
    knn_impl *p = m->impl;
    int64_t n, nnz;
    int rc;
    if ((rc = rf_reader_i64(r, &n, err)) || (rc = rf_reader_i64(r, &nnz, err))) return rc;
    if (n != m->n_items || nnz < 0 || nnz > rf_reader_remaining(r) / 8 ||
        (n + 1) * 8 + nnz * 8 + n * 4 != rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT, "itemknn: payload sizes disagree (%lld items, %lld "
                          "neighbours, %lld bytes)", (long long)n, (long long)nnz,
                          (long long)rf_reader_remaining(r));
    rf_csr *nb = rf_calloc(1, sizeof *nb);
    float *pop = rf_malloc_array((size_t)n, sizeof *pop);
    if (nb) {
        nb->nrows = nb->ncols = (int32_t)n;
        nb->nnz = nnz;
        nb->indptr = rf_malloc_array((size_t)n + 1, sizeof *nb->indptr);
        nb->indices = rf_malloc_array((size_t)(nnz ? nnz : 1), sizeof *nb->indices);
        nb->data = rf_malloc_array((size_t)(nnz ? nnz : 1), sizeof *nb->data);
    }
    if (!nb || !pop || !nb->indptr || !nb->indices || !nb->data) {
        rc = rf_err_set(err, RF_ENOMEM, "itemknn: out of memory");
        goto fail;
    }
    if ((rc = rf_reader_get(r, nb->indptr, ((size_t)n + 1) * sizeof *nb->indptr, err)) ||
        (rc = rf_reader_get(r, nb->indices, (size_t)nnz * sizeof *nb->indices, err)) ||
        (rc = rf_reader_get(r, nb->data, (size_t)nnz * sizeof *nb->data, err)) ||
        (rc = rf_reader_get(r, pop, (size_t)n * sizeof *pop, err)))
        goto fail;
    rc = RF_EFORMAT;
    if (nb->indptr[0] != 0 || nb->indptr[n] != nnz) goto bad;
    for (int64_t i = 0; i < n; i++) {
        if (nb->indptr[i + 1] < nb->indptr[i]) goto bad;
        if (!(pop[i] >= 0) || !isfinite(pop[i])) goto bad;
        for (int64_t q = nb->indptr[i]; q < nb->indptr[i + 1]; q++) {
            if (nb->indices[q] < 0 || nb->indices[q] >= n || !isfinite(nb->data[q])) goto bad;
            if (q > nb->indptr[i] && nb->indices[q] <= nb->indices[q - 1]) goto bad;
        }
    }
    rf_csr_free(p->nbr);
    rf_free(p->pop);
    p->nbr = nb;
    p->pop = pop;
    set_pop_inv(p, (int32_t)n);
    return 0;
bad:
    rf_err_set(err, RF_EFORMAT, "itemknn: inconsistent neighbour table");
fail:
    rf_csr_free(nb);
    rf_free(pop);
    return rc;
}

static const char *knn_check(const void *params) {
    const knn_params *pp = params;
    if (!(pp->half_life >= 0)) return "half_life must be >= 0";
    return rf_sim_opts_check(&pp->sim);
}

const rf_model_ops rf_model_itemknn_ops = {
    .name = "itemknn",
    .help = "item-item k nearest neighbours (cosine, jaccard, asym, bm25, tfidf, rp3b)",
    .params = knn_defs,
    .params_size = sizeof(knn_params),
    .create = knn_create,
    .fit = knn_fit,
    .score_all = knn_score_all,
    .save = knn_save,
    .load = knn_load,
    .destroy = knn_destroy,
    .params_check = knn_check,
    .score_sparse = knn_score_sparse,
};

const rf_csr *rf_itemknn_neighbours(const rf_model *m) {
    if (!m || m->ops != &rf_model_itemknn_ops || !m->fitted || !m->impl) return NULL;
    return ((const knn_impl *)m->impl)->nbr;
}

int rf_itemknn_similar(const rf_model *m, int32_t item, int k, rf_scored *out, rf_err *err) {
    const rf_csr *nb = rf_itemknn_neighbours(m);
    if (!nb) return rf_err_set(err, RF_EINVAL, "not a fitted itemknn model");
    if (item < 0 || item >= nb->nrows)
        return rf_err_set(err, RF_ERANGE, "item %d outside [0, %d)", item, nb->nrows);
    rf_topk t;
    rf_topk_init(&t, out, k);
    for (int64_t q = nb->indptr[item]; q < nb->indptr[item + 1]; q++)
        rf_topk_push(&t, nb->indices[q], nb->data[q]);
    return rf_topk_finish(&t);
}
