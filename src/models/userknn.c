/* userknn.c - user-based k nearest neighbours ("userknn").
 *
 * Every training user keeps the `k` users most similar to them, by the
 * same similarity family as itemknn (knn_sim.h) applied to user rows of
 * the training matrix (folded interaction weights). A user's score for
 * item j is
 *     score(j) = sum over neighbours v of sim(u, v) * x(v, j)
 * with x(v, j) the neighbour's folded training weight.
 *
 * Neighbours come from the fitted table when the history passed in is
 * exactly the training row of a known user (same items and weights: the
 * evaluation and serving of training users). For an unknown user, or a
 * known user whose history changed since training, they are computed on
 * the fly from the history against the item -> user index, through the
 * same row function as the fit (rf_sim_query; the user itself is never
 * its own neighbour), so an unchanged history gives the fitted neighbours
 * either way. Cost of that path: the pairs of the history's items (sum of
 * their popularities) plus a scan of n_users floats.
 *
 * DESIGN: the model keeps a copy of the training matrix (it scores from
 * the neighbours' rows) and its transpose (for on-the-fly neighbours), so
 * it holds about 16 bytes per interaction plus 8 per kept neighbour. Only
 * the matrix is saved: the transpose and the similarity weights are
 * rebuilt at load, deterministically. The fit is bit-identical for every
 * thread count (knn_sim.h). Defaults: tuned on the ML-100K validation
 * split (docs/models-knn.md).
 *
 * Fallback: items no neighbour reaches score pop(j) / (max_pop + 1) - 1,
 * in [-1, 0), as itemknn: an empty history gets the popularity ranking.
 * score_sparse (model.h) sums the same terms into a sparse accumulator
 * over the neighbours' rows only, leaving the fallback implicit. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "knn_sim.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/sparse.h"

typedef struct uknn_params {
    rf_sim_opts sim;
} uknn_params;

typedef struct uknn_impl {
    rf_csr *ui;    /* training matrix, users x items (copy) */
    rf_csr *iu;    /* its transpose */
    rf_csr *nbr;   /* users x users, top-k neighbours per row, ascending ids */
    float *pop;    /* distinct users per item (fallback) */
    float pop_inv; /* 1 / (max pop + 1) */
    rf_sim sim;    /* weights over ui's rows, for on-the-fly neighbours */
} uknn_impl;

static const rf_param_def uknn_defs[] = {
    {"sim", RF_P_ENUM, offsetof(uknn_params, sim.kind), RF_SIM_ASYM, 0, RF_SIM_RP3B,
     RF_SIM_CHOICES, "similarity of two users' item rows (docs/models-knn.md)"},
    {"k", RF_P_INT, offsetof(uknn_params, sim.k), 100, 1, 1000000, NULL,
     "neighbours kept per user"},
    {"shrink", RF_P_DOUBLE, offsetof(uknn_params, sim.shrink), 0, 0, 1e9, NULL,
     "added to the similarity denominator; damps similarities backed by few items"},
    {"alpha", RF_P_DOUBLE, offsetof(uknn_params, sim.alpha), 0.9, 0, 1, NULL,
     "asym: denominator |u|^(2 alpha) |v|^(2 (1 - alpha)), u the scored user; 0.5 = cosine"},
    {"k1", RF_P_DOUBLE, offsetof(uknn_params, sim.k1), 1.2, 1e-6, 1e6, NULL,
     "bm25: term-frequency saturation K1"},
    {"b", RF_P_DOUBLE, offsetof(uknn_params, sim.b), 0.75, 0, 1, NULL,
     "bm25: length normalisation B"},
    {"p3_alpha", RF_P_DOUBLE, offsetof(uknn_params, sim.p3_alpha), 1, 1e-3, 10, NULL,
     "rp3b: exponent of the transition probabilities"},
    {"p3_beta", RF_P_DOUBLE, offsetof(uknn_params, sim.p3_beta), 0.5, 0, 10, NULL,
     "rp3b: activity penalty, sim / n_items(v)^p3_beta"},
    {"q", RF_P_DOUBLE, offsetof(uknn_params, sim.q), 3, 1e-3, 100, NULL,
     "locality exponent: kept similarities become sim^q"},
    {"norm", RF_P_ENUM, offsetof(uknn_params, sim.norm), RF_SIM_NORM_NONE, 0, RF_SIM_NORM_MAX,
     RF_SIM_NORM_CHOICES, "scale each user's kept similarities: none, l1 (sum 1), max (max 1)"},
    {0},
};

static int uknn_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(uknn_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "out of memory");
    return 0;
}

static void impl_clear(uknn_impl *p) {
    rf_sim_free(&p->sim);
    rf_csr_free(p->ui);
    rf_csr_free(p->iu);
    rf_csr_free(p->nbr);
    rf_free(p->pop);
    p->ui = p->iu = p->nbr = NULL;
    p->pop = NULL;
}

static void uknn_destroy(rf_model *m) {
    uknn_impl *p = m->impl;
    if (!p) return;
    impl_clear(p);
    rf_free(p);
    m->impl = NULL;
}

/* Popularity from the transpose, then the fallback scale. */
static int set_pop(uknn_impl *p) {
    int32_t n = p->iu->nrows;
    p->pop = rf_malloc_array((size_t)(n ? n : 1), sizeof *p->pop);
    if (!p->pop) return RF_ENOMEM;
    float mx = 0;
    for (int32_t i = 0; i < n; i++) {
        p->pop[i] = (float)rf_csr_row_len(p->iu, i);
        if (p->pop[i] > mx) mx = p->pop[i];
    }
    p->pop_inv = 1.0f / (mx + 1.0f);
    return 0;
}

static int uknn_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const uknn_params *pp = m->params;
    uknn_impl *p = m->impl;
    uknn_impl t = {0};
    int rc = rf_csr_clone(d->ui, &t.ui);
    if (!rc) rc = rf_csr_clone(d->iu, &t.iu);
    if (!rc) rc = set_pop(&t);
    if (rc) {
        rc = rf_err_set(err, rc, "userknn: %s", rf_strerror(rc));
        goto fail;
    }
    if ((rc = rf_sim_init(&t.sim, t.ui, t.iu, &pp->sim, err))) goto fail;
    if ((rc = rf_sim_all(&t.sim, "userknn", &t.nbr, err))) goto fail;
    impl_clear(p);
    *p = t;
    return 0;
fail:
    impl_clear(&t);
    return rc;
}

/* 1 if history h is exactly row u of ui (items and weights). */
static int same_as_row(const rf_csr *ui, int32_t u, const rf_hist *h) {
    int64_t lo = ui->indptr[u], n = ui->indptr[u + 1] - lo;
    if (n != h->n) return 0;
    for (int64_t t = 0; t < n; t++) {
        if (h->items[t] != ui->indices[lo + t]) return 0;
        float w = h->weights ? h->weights[t] : 1.0f;
        if (w != ui->data[lo + t]) return 0;
    }
    return 1;
}

/* sum over neighbours v of sim(u, v) * x(v, j), into out (dense, zeroed)
 * or, when acc is not NULL, into acc (only the items reached): the same
 * terms added in the same order either way. */
static int uknn_accumulate(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                           rf_sparse *acc, rf_err *err) {
    const uknn_impl *p = m->impl;
    const uknn_params *pp = m->params;
    const rf_csr *ui = p->ui;
    const int32_t *nb_id = NULL;
    const float *nb_sim = NULL;
    int64_t nn = 0;
    rf_scored *buf = NULL;
    if (user >= 0 && user < ui->nrows && same_as_row(ui, user, h)) {
        int64_t lo = p->nbr->indptr[user];
        nb_id = p->nbr->indices + lo;
        nb_sim = p->nbr->data + lo;
        nn = p->nbr->indptr[user + 1] - lo;
    } else if (h->n > 0) {
        buf = rf_malloc_array((size_t)pp->sim.k, sizeof *buf);
        if (!buf) return rf_err_set(err, RF_ENOMEM, "userknn: out of memory");
        int c = rf_sim_query(&p->sim, h->items, h->weights, h->n,
                             user >= 0 && user < ui->nrows ? user : -1, buf);
        if (c < 0) {
            rf_free(buf);
            return rf_err_set(err, c, "userknn: out of memory");
        }
        nn = c;
    }
    enum { AHEAD = 8 }; /* rows requested ahead of the one summed */
    for (int64_t e = 0; e < nn && e < AHEAD; e++)
        rf_csr_prefetch_row(ui, nb_id ? nb_id[e] : buf[e].id);
    for (int64_t e = 0; e < nn; e++) {
        if (e + AHEAD < nn) rf_csr_prefetch_row(ui, nb_id ? nb_id[e + AHEAD] : buf[e + AHEAD].id);
        int32_t v = nb_id ? nb_id[e] : buf[e].id;
        float s = nb_id ? nb_sim[e] : buf[e].score;
        rf_knn_add_row(ui, v, s, out, acc);
    }
    rf_free(buf);
    return 0;
}

static int uknn_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                          rf_err *err) {
    const uknn_impl *p = m->impl;
    const int32_t n = m->n_items;
    memset(out, 0, (size_t)n * sizeof *out);
    int rc = uknn_accumulate(m, user, h, out, NULL, err);
    if (rc) return rc;
    rf_knn_fallback_dense(p->pop, p->pop_inv, out, n);
    return 0;
}

static int uknn_score_sparse(const rf_model *m, int32_t user, const rf_hist *h, rf_sparse *acc,
                             rf_err *err) {
    const uknn_impl *p = m->impl;
    int rc = uknn_accumulate(m, user, h, NULL, acc, err);
    if (rc) return rc;
    rf_knn_fallback_sparse(p->pop, p->pop_inv, acc);
    return 0;
}

/* ---- model file ------------------------------------------------------- */

static int write_csr(rf_writer *w, const rf_csr *c) {
    int rc = rf_writer_i64(w, c->nrows);
    rc |= rf_writer_i64(w, c->ncols);
    rc |= rf_writer_i64(w, c->nnz);
    rc |= rf_writer_put(w, c->indptr, ((size_t)c->nrows + 1) * sizeof *c->indptr);
    rc |= rf_writer_put(w, c->indices, (size_t)c->nnz * sizeof *c->indices);
    rc |= rf_writer_put(w, c->data, (size_t)c->nnz * sizeof *c->data);
    return rc;
}

/* Read a CSR of the expected shape and check it: row pointers from 0 to
 * nnz, non-decreasing; column ids in range, strictly ascending per row;
 * finite values (> 0 if `positive`). */
static int read_csr(rf_reader *r, int64_t nrows, int64_t ncols, int positive, rf_csr **out,
                    rf_err *err) {
    *out = NULL;
    int64_t nr, nc, nnz;
    int rc;
    if ((rc = rf_reader_i64(r, &nr, err)) || (rc = rf_reader_i64(r, &nc, err)) ||
        (rc = rf_reader_i64(r, &nnz, err)))
        return rc;
    if (nr != nrows || nc != ncols || nnz < 0 ||
        nnz > (rf_reader_remaining(r) - (nr + 1) * 8) / 8)
        return rf_err_set(err, RF_EFORMAT, "userknn: matrix sizes disagree (%lld x %lld, %lld "
                          "entries, %lld bytes left)", (long long)nr, (long long)nc,
                          (long long)nnz, (long long)rf_reader_remaining(r));
    rf_csr *c = rf_calloc(1, sizeof *c);
    if (c) {
        c->nrows = (int32_t)nr;
        c->ncols = (int32_t)nc;
        c->nnz = nnz;
        c->indptr = rf_malloc_array((size_t)nr + 1, sizeof *c->indptr);
        c->indices = rf_malloc_array((size_t)(nnz ? nnz : 1), sizeof *c->indices);
        c->data = rf_malloc_array((size_t)(nnz ? nnz : 1), sizeof *c->data);
    }
    if (!c || !c->indptr || !c->indices || !c->data) {
        rf_csr_free(c);
        return rf_err_set(err, RF_ENOMEM, "userknn: out of memory");
    }
    if ((rc = rf_reader_get(r, c->indptr, ((size_t)nr + 1) * sizeof *c->indptr, err)) ||
        (rc = rf_reader_get(r, c->indices, (size_t)nnz * sizeof *c->indices, err)) ||
        (rc = rf_reader_get(r, c->data, (size_t)nnz * sizeof *c->data, err))) {
        rf_csr_free(c);
        return rc;
    }
    int ok = c->indptr[0] == 0 && c->indptr[nr] == nnz;
    for (int64_t i = 0; i < nr && ok; i++) {
        if (c->indptr[i + 1] < c->indptr[i] || c->indptr[i + 1] > nnz) {
            ok = 0;
            break;
        }
        for (int64_t q = c->indptr[i]; q < c->indptr[i + 1]; q++)
            if (c->indices[q] < 0 || c->indices[q] >= nc || !isfinite(c->data[q]) ||
                (positive && !(c->data[q] > 0)) ||
                (q > c->indptr[i] && c->indices[q] <= c->indices[q - 1])) {
                ok = 0;
                break;
            }
    }
    if (!ok) {
        rf_csr_free(c);
        return rf_err_set(err, RF_EFORMAT, "userknn: inconsistent matrix in model file");
    }
    *out = c;
    return 0;
}

static int uknn_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const uknn_impl *p = m->impl;
    int rc = write_csr(w, p->ui);
    rc |= write_csr(w, p->nbr);
    return rc ? rf_err_set(err, RF_EIO, "userknn: write failed") : 0;
}

static int uknn_load(rf_model *m, rf_reader *r, rf_err *err) {
    const uknn_params *pp = m->params;
    uknn_impl *p = m->impl;
    uknn_impl t = {0};
    int rc;
    if ((rc = read_csr(r, m->n_users, m->n_items, 0, &t.ui, err)) ||
        (rc = read_csr(r, m->n_users, m->n_users, 1, &t.nbr, err)))
        goto fail;
    if (rf_reader_remaining(r) != 0) {
        rc = rf_err_set(err, RF_EFORMAT, "userknn: %lld unexpected bytes after the payload",
                        (long long)rf_reader_remaining(r));
        goto fail;
    }
    if ((rc = rf_csr_transpose(t.ui, &t.iu)) || (rc = set_pop(&t))) {
        rc = rf_err_set(err, rc, "userknn: %s", rf_strerror(rc));
        goto fail;
    }
    if ((rc = rf_sim_init(&t.sim, t.ui, t.iu, &pp->sim, err))) goto fail;
    impl_clear(p);
    *p = t;
    return 0;
fail:
    impl_clear(&t);
    return rc;
}

static const char *uknn_check(const void *params) {
    const uknn_params *pp = params;
    return rf_sim_opts_check(&pp->sim);
}

const rf_model_ops rf_model_userknn_ops = {
    .name = "userknn",
    .help = "user-user k nearest neighbours (cosine, jaccard, asym, bm25, tfidf, rp3b)",
    .params = uknn_defs,
    .params_size = sizeof(uknn_params),
    .create = uknn_create,
    .fit = uknn_fit,
    .score_all = uknn_score_all,
    .save = uknn_save,
    .load = uknn_load,
    .destroy = uknn_destroy,
    .params_check = uknn_check,
    .score_sparse = uknn_score_sparse,
};
