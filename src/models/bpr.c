/* bpr.c - Bayesian personalised ranking for implicit feedback ("bpr").
 *
 * Score of item i for user u: s(u, i) = p_u . q_i + b_i. Training samples
 * a positive pair (u, i) uniformly from the training matrix and a negative
 * item j the user has not interacted with, and takes an SGD step on
 * -ln sigmoid(s(u, i) - s(u, j)) plus L2 terms (reg on p, q_i, q_j;
 * reg_bias on b_i, b_j; loss in models/sgd.h). An epoch is nnz samples;
 * the learning rate is constant. Factors start uniform in
 * [-0.5, 0.5) / factors, biases at 0 (implicit's initialisation).
 *
 * sampler=warp replaces the log-sigmoid step by WARP (Weston et al. 2011):
 * negatives are drawn until one violates the margin, s(u, j) > s(u, i) - 1,
 * or warp_trials draws have failed (then the sample is skipped); with the
 * violator found at draw n the rank of i is estimated as
 * floor((n_items - 1) / n) and the hinge 1 - s(u, i) + s(u, j) is weighted
 * by ln(1 + rank) / ln(n_items), in (0, 1], so lr means the same for both
 * samplers. WARP spends its updates on the pairs ranked wrongly near the
 * top.
 *
 * DESIGN - parallel and deterministic. Hogwild SGD (threads updating
 * shared factors without locks) is fast but its result depends on how the
 * threads interleave, so it is neither reproducible nor independent of the
 * thread count. Here users and items are dealt into B = `blocks` groups
 * each (seeded shuffle, equal counts), which cuts the matrix into B x B
 * strata. An epoch is B sub-epochs; in sub-epoch s the B strata
 * (t, (t + s) mod B), t < B, are processed in parallel (OpenMP, dynamic
 * schedule). These strata share no user and no item, so threads update
 * the shared float32 factors without locks and without ever touching the
 * same row, and each stratum draws from its own rf_rng_stream of (seed,
 * epoch, sub-epoch, stratum). The result is therefore bit-identical for a
 * given seed whatever the thread count (1 thread or 64), and no atomics or
 * locks are needed. Stratum (t, c) draws as many samples as it holds
 * positives, so an epoch is still nnz samples; the price is that the
 * negative of a positive in item group c is drawn from group c only (for
 * a random group of n_items / B items). Over a user's positives this is
 * near uniform; blocks=1 is exactly uniform and serial. B bounds the
 * useful thread count (keep blocks >= 2 x threads for load balance).
 * A positive is sampled with replacement, as in implicit; a drawn negative
 * that is one of the user's items is redrawn (up to 32 times; then the
 * sample is skipped), checked by binary search in the user's row.
 *
 * Unknown users: with a history, the user vector is folded in by
 * fold_epochs SGD passes over the history (item factors fixed, uniform
 * negatives outside the history, the training lr and reg; seeded by the
 * history, so the same history always gives the same vector); with an
 * empty history the score is item popularity (distinct users), the
 * model.h fallback contract. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "models/sgd.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"

enum { SAMPLER_UNIFORM = 0, SAMPLER_WARP = 1 };
#define NEG_TRIES 32 /* redraws of a negative that is one of the user's items */

typedef struct bpr_params {
    int factors, epochs, seed, sampler, warp_trials, blocks, fold_epochs;
    double lr, reg, reg_bias;
} bpr_params;

typedef struct bpr_impl {
    int32_t f;
    float *P;   /* n_users x f */
    float *Q;   /* n_items x f */
    float *b;   /* n_items item biases */
    float *pop; /* n_items: distinct users in training (fallback) */
} bpr_impl;

static const rf_param_def bpr_defs[] = {
    {"factors", RF_P_INT, offsetof(bpr_params, factors), 64, 1, 1000, NULL,
     "latent factors per user and item"},
    {"epochs", RF_P_INT, offsetof(bpr_params, epochs), 100, 1, 100000, NULL,
     "passes; one pass draws as many samples as there are interactions"},
    {"lr", RF_P_DOUBLE, offsetof(bpr_params, lr), 0.05, 1e-7, 10, NULL, "SGD learning rate"},
    {"reg", RF_P_DOUBLE, offsetof(bpr_params, reg), 0.001, 0, 10, NULL,
     "L2 regularisation of the factors (per sample)"},
    {"reg_bias", RF_P_DOUBLE, offsetof(bpr_params, reg_bias), 0.001, 0, 10, NULL,
     "L2 regularisation of the item biases (per sample)"},
    {"sampler", RF_P_ENUM, offsetof(bpr_params, sampler), 0, 0, 1, "uniform,warp",
     "uniform: BPR with uniform negatives; warp: WARP rank-weighted hinge"},
    {"warp_trials", RF_P_INT, offsetof(bpr_params, warp_trials), 100, 1, 100000, NULL,
     "WARP: negatives drawn per positive before giving up"},
    {"blocks", RF_P_INT, offsetof(bpr_params, blocks), 16, 1, 4096, NULL,
     "user and item groups of the lock-free parallel schedule (>= 2 x threads)"},
    {"fold_epochs", RF_P_INT, offsetof(bpr_params, fold_epochs), 50, 1, 100000, NULL,
     "SGD passes over a new user's history to fold in the user vector"},
    {"seed", RF_P_INT, offsetof(bpr_params, seed), 42, 0, 2147483647, NULL,
     "random seed (initialisation, groups and samples)"},
    {0},
};

static int bpr_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(bpr_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "bpr: out of memory");
    return 0;
}

static void free_arrays(bpr_impl *p) {
    rf_free(p->P);
    rf_free(p->Q);
    rf_free(p->b);
    rf_free(p->pop);
    p->P = p->Q = p->b = p->pop = NULL;
}

static void bpr_destroy(rf_model *m) {
    bpr_impl *p = m->impl;
    if (!p) return;
    free_arrays(p);
    rf_free(p);
    m->impl = NULL;
}

static int alloc_arrays(rf_model *m, int32_t f, rf_err *err) {
    bpr_impl *p = m->impl;
    free_arrays(p);
    size_t nu = m->n_users ? (size_t)m->n_users : 1, ni = m->n_items ? (size_t)m->n_items : 1;
    p->f = f;
    p->P = rf_calloc(nu * (size_t)f, sizeof *p->P);
    p->Q = rf_calloc(ni * (size_t)f, sizeof *p->Q);
    p->b = rf_calloc(ni, sizeof *p->b);
    p->pop = rf_calloc(ni, sizeof *p->pop);
    if (!p->P || !p->Q || !p->b || !p->pop) {
        free_arrays(p);
        return rf_err_set(err, RF_ENOMEM, "bpr: out of memory for %d x %d factors",
                          m->n_users + m->n_items, f);
    }
    return 0;
}

/* 1 if sorted a[0..n) holds x. */
static inline int contains(const int32_t *a, int64_t n, int32_t x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) >> 1;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == x;
}

/* Everything one stratum task reads. */
typedef struct train_ctx {
    const rf_csr *ui;
    const bpr_params *pp;
    bpr_impl *p;
    int32_t n_items;
    const int32_t *su, *si;   /* positives of every stratum, concatenated */
    const int64_t *st_off;    /* B*B + 1 offsets into su/si */
    const int32_t *blk_items; /* items of every group, concatenated */
    const int32_t *blk_off;   /* B + 1 offsets into blk_items */
    float log_items;          /* ln(n_items), WARP's weight scale */
} train_ctx;

/* Draws a negative for user u from item group c: not one of u's items.
 * Returns -1 after NEG_TRIES failures. */
static inline int32_t draw_negative(const train_ctx *cx, rf_rng *g, const int32_t *row,
                                    int64_t rn, const int32_t *items, int32_t nc) {
    for (int t = 0; t < NEG_TRIES; t++) {
        int32_t j = items[rf_rng_below(g, (uint64_t)nc)];
        if (!contains(row, rn, j)) return j;
    }
    return -1;
}

/* One stratum (user group t, item group c): as many samples as it holds
 * positives. Returns the summed sample loss (for logging) into *loss and
 * the number of updates made into *updates. */
static void run_stratum(const train_ctx *cx, int t, int c, uint64_t stream, double *loss,
                        int64_t *updates) {
    const int B = cx->pp->blocks;
    const int64_t lo = cx->st_off[(int64_t)t * B + c], n = cx->st_off[(int64_t)t * B + c + 1] - lo;
    const int32_t *items = cx->blk_items + cx->blk_off[c];
    const int32_t nc = cx->blk_off[c + 1] - cx->blk_off[c];
    *loss = 0;
    *updates = 0;
    if (n == 0 || nc == 0) return;
    rf_rng g;
    rf_rng_stream(&g, (uint64_t)cx->pp->seed, stream);
    const int f = cx->p->f;
    const float lr = (float)cx->pp->lr, reg = (float)cx->pp->reg, reg_b = (float)cx->pp->reg_bias;
    float *P = cx->p->P, *Q = cx->p->Q, *b = cx->p->b;
    const rf_csr *ui = cx->ui;
    const int warp = cx->pp->sampler == SAMPLER_WARP;
    const int trials = cx->pp->warp_trials;
    double sum = 0;
    int64_t upd = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t x = lo + (int64_t)rf_rng_below(&g, (uint64_t)n);
        int32_t u = cx->su[x], i = cx->si[x];
        const int32_t *row = ui->indices + ui->indptr[u];
        int64_t rn = ui->indptr[u + 1] - ui->indptr[u];
        float *pu = P + (int64_t)u * f, *qi = Q + (int64_t)i * f;
        if (!warp) {
            int32_t j = draw_negative(cx, &g, row, rn, items, nc);
            if (j < 0) continue;
            float *qj = Q + (int64_t)j * f;
            float xv = rf_pair_x(pu, qi, qj, b[i], b[j], f);
            float coef = rf_sigmoid_neg(xv);
            sum += xv > 0 ? log1p(exp(-(double)xv)) : -(double)xv + log1p(exp((double)xv));
            rf_pair_step(pu, qi, qj, &b[i], &b[j], f, coef, lr, reg, reg_b);
            upd++;
            continue;
        }
        /* WARP: look for a negative within the margin */
        for (int n_draw = 1; n_draw <= trials; n_draw++) {
            int32_t j = items[rf_rng_below(&g, (uint64_t)nc)];
            float *qj = Q + (int64_t)j * f;
            float xv = rf_pair_x(pu, qi, qj, b[i], b[j], f);
            if (xv >= 1.0f) continue;
            if (contains(row, rn, j)) continue;
            double rank = floor((double)(cx->n_items - 1) / n_draw);
            float w = (float)(log1p(rank) / cx->log_items);
            sum += w * (1.0 - xv);
            rf_pair_step(pu, qi, qj, &b[i], &b[j], f, w, lr, reg, reg_b);
            upd++;
            break;
        }
    }
    *loss = sum;
    *updates = upd;
}

static int bpr_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const bpr_params *pp = m->params;
    bpr_impl *p = m->impl;
    const int32_t nu = d->n_users, ni = d->n_items, f = pp->factors;
    const int B = pp->blocks;
    const uint64_t seed = (uint64_t)pp->seed;
    const rf_csr *ui = d->ui;
    int rc = alloc_arrays(m, f, err);
    if (rc) return rc;
    for (int32_t i = 0; i < ni; i++) p->pop[i] = (float)rf_csr_row_len(d->iu, i);
    {
        rf_rng g;
        rf_rng_stream(&g, seed, 1);
        for (int64_t k = 0; k < (int64_t)nu * f; k++)
            p->P[k] = (float)((rf_rng_uniform(&g) - 0.5) / f);
        rf_rng_stream(&g, seed, 2);
        for (int64_t k = 0; k < (int64_t)ni * f; k++)
            p->Q[k] = (float)((rf_rng_uniform(&g) - 0.5) / f);
    }
    if (ui->nnz == 0 || ni < 2) return 0; /* nothing to learn: popularity and noise */

    int32_t *ub = rf_malloc_array((size_t)nu + 1, sizeof *ub);
    int32_t *ib = rf_malloc_array((size_t)ni + 1, sizeof *ib);
    int32_t *perm = rf_malloc_array((size_t)(nu > ni ? nu : ni) + 1, sizeof *perm);
    int32_t *blk_items = rf_malloc_array((size_t)ni, sizeof *blk_items);
    int32_t *blk_off = rf_calloc((size_t)B + 1, sizeof *blk_off);
    int64_t *st_off = rf_calloc((size_t)B * B + 1, sizeof *st_off);
    int64_t *fill = rf_malloc_array((size_t)B * B, sizeof *fill);
    int32_t *su = rf_malloc_array((size_t)ui->nnz, sizeof *su);
    int32_t *si = rf_malloc_array((size_t)ui->nnz, sizeof *si);
    double *loss = rf_malloc_array((size_t)B, sizeof *loss);
    int64_t *upd = rf_malloc_array((size_t)B, sizeof *upd);
    rf_progress *prog = NULL;
    if (!ub || !ib || !perm || !blk_items || !blk_off || !st_off || !fill || !su || !si ||
        !loss || !upd) {
        rc = rf_err_set(err, RF_ENOMEM, "bpr: out of memory for %lld training pairs",
                        (long long)ui->nnz);
        goto done;
    }
    /* groups: seeded shuffle, then round robin (equal sizes) */
    rf_rng g;
    rf_rng_stream(&g, seed, 3);
    for (int32_t u = 0; u < nu; u++) perm[u] = u;
    rf_rng_shuffle_i32(&g, perm, nu);
    for (int32_t k = 0; k < nu; k++) ub[perm[k]] = k % B;
    for (int32_t i = 0; i < ni; i++) perm[i] = i;
    rf_rng_shuffle_i32(&g, perm, ni);
    for (int32_t k = 0; k < ni; k++) ib[perm[k]] = k % B;
    for (int32_t i = 0; i < ni; i++) blk_off[ib[i] + 1]++;
    for (int c = 0; c < B; c++) blk_off[c + 1] += blk_off[c];
    for (int c = 0; c < B; c++) fill[c] = blk_off[c];
    for (int32_t i = 0; i < ni; i++) blk_items[fill[ib[i]]++] = i;
    /* strata: counting sort of the positives by (user group, item group) */
    for (int32_t u = 0; u < nu; u++)
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++)
            st_off[(int64_t)ub[u] * B + ib[ui->indices[q]] + 1]++;
    for (int64_t s = 0; s < (int64_t)B * B; s++) st_off[s + 1] += st_off[s];
    memcpy(fill, st_off, (size_t)B * B * sizeof *fill);
    for (int32_t u = 0; u < nu; u++)
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
            int64_t s = (int64_t)ub[u] * B + ib[ui->indices[q]];
            su[fill[s]] = u;
            si[fill[s]] = ui->indices[q];
            fill[s]++;
        }

    train_ctx cx = {ui, pp, p, ni, su, si, st_off, blk_items, blk_off, logf((float)ni)};
    const int nth = rf_threads() < B ? rf_threads() : B;
    prog = rf_progress_start(pp->sampler == SAMPLER_WARP ? "bpr-warp" : "bpr", pp->epochs);
    for (int e = 0; e < pp->epochs; e++) {
        double ep_loss = 0;
        int64_t ep_upd = 0;
        for (int s = 0; s < B; s++) {
            uint64_t base = 16 + ((uint64_t)e * B + (uint64_t)s) * B;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
            for (int t = 0; t < B; t++)
                run_stratum(&cx, t, (t + s) % B, base + (uint64_t)t, &loss[t], &upd[t]);
            for (int t = 0; t < B; t++) { /* in task order: deterministic */
                ep_loss += loss[t];
                ep_upd += upd[t];
            }
        }
        rf_log(RF_LOG_DEBUG, "bpr.epoch", "epoch=%d loss=%.6f updates=%lld samples=%lld", e + 1,
               ep_loss / (double)ui->nnz, (long long)ep_upd, (long long)ui->nnz);
        if (!isfinite(ep_loss)) {
            rc = rf_err_set(err, RF_ERANGE, "bpr: training diverged in epoch %d (lower lr, now %g)",
                            e + 1, pp->lr);
            goto done;
        }
        rf_progress_set(prog, e + 1);
    }
done:
    rf_progress_finish(prog);
    rf_free(ub);
    rf_free(ib);
    rf_free(perm);
    rf_free(blk_items);
    rf_free(blk_off);
    rf_free(st_off);
    rf_free(fill);
    rf_free(su);
    rf_free(si);
    rf_free(loss);
    rf_free(upd);
    return rc;
}

/* ---- scoring and fold-in --------------------------------------------------- */

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* User vector from history h alone (see the file comment); 0 or RF_ENOMEM.
 * With no valid history item the vector is 0. */
static int bpr_fold(const rf_model *m, const rf_hist *h, float *vec, rf_err *err) {
    const bpr_params *pp = m->params;
    const bpr_impl *p = m->impl;
    const int f = p->f;
    memset(vec, 0, (size_t)f * sizeof *vec);
    int32_t *hs = rf_malloc_array((size_t)(h->n > 0 ? h->n : 1), sizeof *hs);
    float *qtmp = rf_malloc_array((size_t)f * 2, sizeof *qtmp);
    if (!hs || !qtmp) {
        rf_free(hs);
        rf_free(qtmp);
        return rf_err_set(err, RF_ENOMEM, "bpr: out of memory");
    }
    int32_t n = 0;
    for (int32_t t = 0; t < h->n; t++)
        if (h->items[t] >= 0 && h->items[t] < m->n_items) hs[n++] = h->items[t];
    qsort(hs, (size_t)n, sizeof *hs, cmp_i32);
    int32_t k = 0; /* distinct */
    for (int32_t t = 0; t < n; t++)
        if (t == 0 || hs[t] != hs[t - 1]) hs[k++] = hs[t];
    n = k;
    if (n > 0 && n < m->n_items) {
        uint64_t hash = 1469598103934665603ull; /* FNV-1a of the history */
        for (int32_t t = 0; t < n; t++) hash = (hash ^ (uint64_t)(uint32_t)hs[t]) * 1099511628211ull;
        rf_rng g;
        rf_rng_stream(&g, (uint64_t)pp->seed, hash);
        const float lr = (float)pp->lr, reg = (float)pp->reg;
        /* item factors are fixed: step p only, on copies of q_i, q_j */
        float *qi = qtmp, *qj = qtmp + f, bi, bj;
        for (int e = 0; e < pp->fold_epochs; e++)
            for (int32_t s = 0; s < n; s++) {
                int32_t i = hs[rf_rng_below(&g, (uint64_t)n)], j = -1;
                for (int t = 0; t < NEG_TRIES && j < 0; t++) {
                    j = (int32_t)rf_rng_below(&g, (uint64_t)m->n_items);
                    if (contains(hs, n, j)) j = -1;
                }
                if (j < 0) continue;
                memcpy(qi, p->Q + (int64_t)i * f, (size_t)f * sizeof *qi);
                memcpy(qj, p->Q + (int64_t)j * f, (size_t)f * sizeof *qj);
                bi = p->b[i];
                bj = p->b[j];
                float coef = rf_sigmoid_neg(rf_pair_x(vec, qi, qj, bi, bj, f));
                rf_pair_step(vec, qi, qj, &bi, &bj, f, coef, lr, reg, 0);
            }
    }
    rf_free(hs);
    rf_free(qtmp);
    return 0;
}

/* User vector for scoring into vec: trained, folded in, or NULL-like
 * (returns 1) when the popularity fallback applies. */
static int user_vec(const rf_model *m, int32_t user, const rf_hist *h, float *vec, rf_err *err) {
    const bpr_impl *p = m->impl;
    if (user >= 0 && user < m->n_users) {
        memcpy(vec, p->P + (int64_t)user * p->f, (size_t)p->f * sizeof *vec);
        return 0;
    }
    int valid = 0;
    for (int32_t t = 0; t < h->n && !valid; t++) valid = h->items[t] >= 0 && h->items[t] < m->n_items;
    if (!valid) return 1;
    int rc = bpr_fold(m, h, vec, err);
    return rc ? rc : 0;
}

static int bpr_score_items(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                           int32_t n, float *out, rf_err *err) {
    const bpr_impl *p = m->impl;
    float *vec = rf_malloc_array((size_t)p->f, sizeof *vec);
    if (!vec) return rf_err_set(err, RF_ENOMEM, "bpr: out of memory");
    int rc = user_vec(m, user, h, vec, err);
    if (rc == 1) {
        for (int32_t k = 0; k < n; k++) out[k] = p->pop[items[k]];
        rc = 0;
    } else if (rc == 0) {
        for (int32_t k = 0; k < n; k++)
            out[k] = rf_sgd_dot(vec, p->Q + (int64_t)items[k] * p->f, p->f) + p->b[items[k]];
    }
    rf_free(vec);
    return rc;
}

static int bpr_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                         rf_err *err) {
    const bpr_impl *p = m->impl;
    float *vec = rf_malloc_array((size_t)p->f, sizeof *vec);
    if (!vec) return rf_err_set(err, RF_ENOMEM, "bpr: out of memory");
    int rc = user_vec(m, user, h, vec, err);
    if (rc == 1) {
        memcpy(out, p->pop, (size_t)m->n_items * sizeof *out);
        rc = 0;
    } else if (rc == 0) {
        for (int32_t i = 0; i < m->n_items; i++)
            out[i] = rf_sgd_dot(vec, p->Q + (int64_t)i * p->f, p->f) + p->b[i];
    }
    rf_free(vec);
    return rc;
}

static int bpr_user_dim(const rf_model *m) {
    const bpr_impl *p = m->impl;
    return p ? p->f : 0;
}

static int bpr_fold_in(const rf_model *m, const rf_hist *h, float *vec, rf_err *err) {
    return bpr_fold(m, h, vec, err);
}

/* ---- model file ---------------------------------------------------------------
 * i64 factors, then n_users x f f32 P, n_items x f f32 Q, n_items f32 item
 * biases, n_items f32 popularity. */

static int bpr_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const bpr_impl *p = m->impl;
    size_t nu = (size_t)m->n_users, ni = (size_t)m->n_items, f = (size_t)p->f;
    int rc = rf_writer_i64(w, p->f);
    rc |= rf_writer_put(w, p->P, nu * f * sizeof *p->P);
    rc |= rf_writer_put(w, p->Q, ni * f * sizeof *p->Q);
    rc |= rf_writer_put(w, p->b, ni * sizeof *p->b);
    rc |= rf_writer_put(w, p->pop, ni * sizeof *p->pop);
    return rc ? rf_err_set(err, RF_EIO, "bpr: write failed") : 0;
}

static int finite_all(const float *a, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(a[k])) return 0;
    return 1;
}

static int bpr_load(rf_model *m, rf_reader *r, rf_err *err) {
    bpr_impl *p = m->impl;
    const bpr_params *pp = m->params;
    int64_t f;
    int rc;
    if ((rc = rf_reader_i64(r, &f, err))) return rc;
    if (f != pp->factors)
        return rf_err_set(err, RF_EFORMAT, "bpr: payload has %lld factors, parameters say %d",
                          (long long)f, pp->factors);
    int64_t nu = m->n_users, ni = m->n_items;
    int64_t want = 4 * ((nu + ni) * f + 2 * ni);
    if (rf_reader_remaining(r) != want)
        return rf_err_set(err, RF_EFORMAT, "bpr: payload is %lld bytes, expected %lld",
                          (long long)rf_reader_remaining(r), (long long)want);
    if ((rc = alloc_arrays(m, (int32_t)f, err))) return rc;
    size_t fz = (size_t)f;
    if ((rc = rf_reader_get(r, p->P, (size_t)nu * fz * sizeof *p->P, err)) ||
        (rc = rf_reader_get(r, p->Q, (size_t)ni * fz * sizeof *p->Q, err)) ||
        (rc = rf_reader_get(r, p->b, (size_t)ni * sizeof *p->b, err)) ||
        (rc = rf_reader_get(r, p->pop, (size_t)ni * sizeof *p->pop, err)))
        goto fail;
    if (!finite_all(p->P, (size_t)nu * fz) || !finite_all(p->Q, (size_t)ni * fz) ||
        !finite_all(p->b, (size_t)ni) || !finite_all(p->pop, (size_t)ni)) {
        rc = rf_err_set(err, RF_EFORMAT, "bpr: non-finite value in the payload");
        goto fail;
    }
    return 0;
fail:
    free_arrays(p);
    return rc;
}

static const char *bpr_check(const void *params) {
    const bpr_params *pp = params;
    if (pp->factors < 1) return "factors must be at least 1";
    if (!(pp->lr > 0)) return "lr must be > 0";
    if (pp->reg < 0 || pp->reg_bias < 0) return "regularisation must be >= 0";
    if (pp->blocks < 1) return "blocks must be at least 1";
    return NULL;
}

const rf_model_ops rf_model_bpr_ops = {
    .name = "bpr",
    .help = "Bayesian personalised ranking (pairwise SGD, uniform or WARP negatives)",
    .params = bpr_defs,
    .params_size = sizeof(bpr_params),
    .create = bpr_create,
    .fit = bpr_fit,
    .score_all = bpr_score_all,
    .save = bpr_save,
    .load = bpr_load,
    .destroy = bpr_destroy,
    .params_check = bpr_check,
    .user_dim = bpr_user_dim,
    .fold_in = bpr_fold_in,
    .score_items = bpr_score_items,
};
