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
 * thread count. Here users are dealt into B = `blocks` groups and items
 * into G = 2B groups (seeded shuffle, equal sizes), cutting the matrix
 * into B x G strata. The G item groups are paired by a round-robin
 * tournament: G - 1 rounds, each a perfect matching into B pairs {a, b},
 * every pair meeting once. An epoch is (G - 1) x B sub-epochs; in
 * sub-epoch (r, s), task t (t < B) owns user group t and the item groups
 * of pair (t + s) mod B of round r, draws its positives from strata
 * (t, a) and (t, b) and its negatives from groups a and b. The B tasks of
 * a sub-epoch share no user and no item, so threads (OpenMP, dynamic
 * schedule) update the shared float32 factors without locks or atomics
 * and never touch the same row; each task draws from its own
 * rf_rng_stream of (seed, epoch, round, sub-epoch, task). The result is
 * bit-identical for a seed whatever the thread count. Sampling stays
 * BPR's: positives uniform over the training pairs (each task takes its
 * strata's share, with replacement, as implicit does: nnz samples an
 * epoch), negatives uniform over all items - a positive in group a gets a
 * negative from b with weight |b| and from a with weight |a| / (G - 1),
 * and over the G - 1 sub-epochs that hold group a every item group is
 * equally likely. A drawn negative that is one of the user's items is
 * redrawn (up to 32 times, then the sample is skipped), checked against
 * the user's few pairs in that stratum. blocks bounds the useful thread
 * count (keep blocks >= 2 x threads); sub-epochs smaller than 20,000
 * samples run on one thread (a barrier costs more), with the same result.
 *
 * Speed: during training users and items get internal ids ordered by
 * group, so a task's factor rows are contiguous (few pages: a 20M-pair
 * epoch touches each row from a 2 MB window instead of the whole 35 MB
 * user matrix); the large arrays ask for transparent huge pages; samples
 * go through a three-stage software pipeline that prefetches their
 * strata entries and factor rows a few samples ahead of the update.
 * Memory on top of the dataset: the model (4 (users + items) f + 8 items
 * bytes), a training copy of the factors of the same size, 8 bytes per
 * training pair (the strata) and 8 G bytes per user (each user's segment
 * in each stratum).
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
#include <sys/mman.h>

#include "models/sgd.h"
#include "recfuse/binfile.h"
#include "recfuse/coldstart.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"

enum { SAMPLER_UNIFORM = 0, SAMPLER_WARP = 1 };
#define NEG_TRIES 32 /* redraws of a negative that is one of the user's items */
#define PAR_MIN_SAMPLES 20000 /* samples per sub-epoch worth a parallel region */

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
    const rf_model *init_src; /* warm start of the next fit (borrowed), or NULL */
} bpr_impl;

static const rf_param_def bpr_defs[] = {
    {"factors", RF_P_INT, offsetof(bpr_params, factors), 128, 1, 1000, NULL,
     "latent factors per user and item"},
    {"epochs", RF_P_INT, offsetof(bpr_params, epochs), 300, 1, 100000, NULL,
     "passes; one pass draws as many samples as there are interactions"},
    {"lr", RF_P_DOUBLE, offsetof(bpr_params, lr), 0.01, 1e-7, 10, NULL, "SGD learning rate"},
    {"reg", RF_P_DOUBLE, offsetof(bpr_params, reg), 0.002, 0, 10, NULL,
     "L2 regularisation of the factors (per sample)"},
    {"reg_bias", RF_P_DOUBLE, offsetof(bpr_params, reg_bias), 0.002, 0, 10, NULL,
     "L2 regularisation of the item biases (per sample)"},
    {"sampler", RF_P_ENUM, offsetof(bpr_params, sampler), 0, 0, 1, "uniform,warp",
     "uniform: BPR with uniform negatives; warp: WARP rank-weighted hinge"},
    {"warp_trials", RF_P_INT, offsetof(bpr_params, warp_trials), 100, 1, 100000, NULL,
     "WARP: negatives drawn per positive before giving up"},
    {"blocks", RF_P_INT, offsetof(bpr_params, blocks), 16, 1, 4096, NULL,
     "user and item groups of the lock-free parallel schedule (>= 2 x threads)"},
    {"fold_epochs", RF_P_INT, offsetof(bpr_params, fold_epochs), 200, 1, 100000, NULL,
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

/* Where one user's pairs lie in one stratum: sp pairs [off, off + cnt)
 * counted from the stratum's start. */
typedef struct useg {
    uint32_t off, cnt;
} useg;

/* Everything one task reads. Users and items carry internal ids during
 * training: sorted by (group, id), so a group's factor rows are
 * contiguous (few pages and cache sets per task). */
typedef struct train_ctx {
    const bpr_params *pp;
    int f, B, G;
    int32_t n_users, n_items;
    float *P, *Q, *bias;      /* internal-id factor rows and item biases */
    const int32_t *sp;        /* positives (U, I) of every stratum, concatenated, 2 x nnz,
                                 sorted by (U, I) within a stratum */
    const int64_t *st_off;    /* B*G + 1 offsets into sp pairs; stratum (t, c) = t*G + c */
    const useg *seg;          /* G x n_users: seg[c * n_users + U], U's pairs in stratum
                                 (group(U), c) */
    const int32_t *ig_start;  /* G + 1: item group c is internal ids [ig_start[c], ig_start[c+1]) */
    float log_items;          /* ln(n_items), WARP's weight scale */
} train_ctx;

/* A drawn sample: stratum index x, positive (U, I), a first negative J,
 * whether the positive is in group a, whether J is. */
typedef struct draw {
    int64_t x;
    int32_t u, i, j;
    int in_a, side;
} draw;

/* Prefetch the f floats at v for writing (one line per 16 floats). */
static inline void prefetch_vec(const float *v, int f) {
    for (int k = 0; k < f; k += 16) __builtin_prefetch(v + k, 1, 3);
}

/* 1 if item j is among the n pairs starting at sp pair lo (one user's,
 * sorted by item). */
static inline int in_segment(const int32_t *sp, int64_t lo, uint32_t n, int32_t j) {
    if (n <= 16) {
        for (uint32_t k = 0; k < n; k++)
            if (sp[2 * (lo + k) + 1] >= j) return sp[2 * (lo + k) + 1] == j;
        return 0;
    }
    int64_t hi = lo + n, end = hi;
    while (lo < hi) {
        int64_t mid = (lo + hi) >> 1;
        if (sp[2 * mid + 1] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < end && sp[2 * lo + 1] == j;
}

#define AHEAD 4 /* pipeline distance in samples between stages; power of 2 */

/* One task: user group t owns item groups a and b (a != b) for one
 * sub-epoch. It draws about (n_ta + n_tb) / (G - 1) positives uniformly
 * from strata (t, a) and (t, b) (stochastic rounding); the negative of a
 * positive in group a comes from group b with weight |b| and from a with
 * weight |a| / (G - 1) (the G - 1 sub-epochs that pair a share the
 * draws within a), which makes every item equally likely over an epoch.
 * A negative is checked against the user's pairs in its group's stratum
 * (a few entries, usually in cache).
 *
 * Samples flow through a three-stage software pipeline, AHEAD samples
 * apart: (1) draw the positive's index and prefetch its pair; (2) read
 * the pair, draw the first negative and prefetch the three factor rows
 * and the user's stratum segments; (3) update. Memory latency thus
 * overlaps the arithmetic of the samples in between. The summed
 * per-sample loss term (BPR: sigmoid(-x), the step's coefficient, cheaper
 * than the log-loss; WARP: the weighted hinge) goes to *loss, the update
 * count to *updates. */
static void run_task(const train_ctx *cx, int t, int a, int b, uint64_t stream, double *loss,
                     int64_t *updates) {
    const int G = cx->G, f = cx->f;
    const int64_t la = cx->st_off[(int64_t)t * G + a], na = cx->st_off[(int64_t)t * G + a + 1] - la;
    const int64_t lb = cx->st_off[(int64_t)t * G + b], nb = cx->st_off[(int64_t)t * G + b + 1] - lb;
    *loss = 0;
    *updates = 0;
    if (na + nb == 0) return;
    rf_rng g;
    rf_rng_stream(&g, (uint64_t)cx->pp->seed, stream);
    const int64_t n = (int64_t)((double)(na + nb) / (G - 1) + rf_rng_uniform(&g));
    const int32_t sa0 = cx->ig_start[a], sb0 = cx->ig_start[b];
    const int32_t ca = cx->ig_start[a + 1] - sa0, cb = cx->ig_start[b + 1] - sb0;
    /* P(negative from the positive's own group) for positives in a and in b */
    const double own_a = ca / (double)(G - 1) / (ca / (double)(G - 1) + cb);
    const double own_b = cb / (double)(G - 1) / (cb / (double)(G - 1) + ca);
    const float lr = (float)cx->pp->lr, reg = (float)cx->pp->reg, reg_b = (float)cx->pp->reg_bias;
    float *P = cx->P, *Q = cx->Q, *bias = cx->bias;
    const int32_t *sp = cx->sp;
    const useg *seg_a = cx->seg + (int64_t)a * cx->n_users;
    const useg *seg_b = cx->seg + (int64_t)b * cx->n_users;
    const int warp = cx->pp->sampler == SAMPLER_WARP;
    const int trials = warp ? cx->pp->warp_trials : NEG_TRIES;
    double sum = 0;
    int64_t upd = 0;
/* a negative candidate for a positive on side in_a (1: group a); the
 * candidate's side into `side`; -1 when its group is empty */
#define DRAW_NEG(in_a, side)                                                                  \
    ((side) = (rf_rng_uniform(&g) < ((in_a) ? own_a : own_b)) ? (in_a) : !(in_a),            \
     (side) ? (ca ? sa0 + (int32_t)rf_rng_below(&g, (uint64_t)ca) : -1)                       \
            : (cb ? sb0 + (int32_t)rf_rng_below(&g, (uint64_t)cb) : -1))
    draw ring[2 * AHEAD];
    memset(ring, 0, sizeof ring);
    const int64_t mask = 2 * AHEAD - 1;
    for (int64_t k = 0; k < n + 2 * AHEAD; k++) {
        if (k < n) { /* stage 1: sample k's positive */
            draw *d = &ring[k & mask];
            int64_t x = (int64_t)rf_rng_below(&g, (uint64_t)(na + nb));
            d->in_a = x < na;
            d->x = d->in_a ? la + x : lb + (x - na);
            __builtin_prefetch(sp + 2 * d->x, 0, 3);
        }
        if (k >= AHEAD && k - AHEAD < n) { /* stage 2: sample k - AHEAD */
            draw *d = &ring[(k - AHEAD) & mask];
            d->u = sp[2 * d->x];
            d->i = sp[2 * d->x + 1];
            d->j = DRAW_NEG(d->in_a, d->side);
            prefetch_vec(P + (int64_t)d->u * f, f);
            prefetch_vec(Q + (int64_t)d->i * f, f);
            if (d->j >= 0) prefetch_vec(Q + (int64_t)d->j * f, f);
            __builtin_prefetch(seg_a + d->u, 0, 3);
            __builtin_prefetch(seg_b + d->u, 0, 3);
        }
        if (k < 2 * AHEAD) continue;
        /* stage 3: update with sample k - 2 AHEAD */
        const draw cur = ring[(k - 2 * AHEAD) & mask];
        const int32_t u = cur.u, i = cur.i;
        const useg sa = seg_a[u], sb = seg_b[u];
        float *pu = P + (int64_t)u * f, *qi = Q + (int64_t)i * f;
        /* BPR: the first candidate that is not u's; WARP: the first that is
         * not u's and violates the margin, x < 1 */
        int32_t j = cur.j;
        int side = cur.side;
        for (int n_draw = 1; n_draw <= trials; n_draw++, j = DRAW_NEG(cur.in_a, side)) {
            if (j < 0) continue;
            float *qj = Q + (int64_t)j * f;
            if (!warp) {
                if (side ? in_segment(sp, la + sa.off, sa.cnt, j)
                         : in_segment(sp, lb + sb.off, sb.cnt, j))
                    continue;
                float coef = rf_sigmoid_neg(rf_pair_x(pu, qi, qj, bias[i], bias[j], f));
                sum += coef;
                rf_pair_step(pu, qi, qj, &bias[i], &bias[j], f, coef, lr, reg, reg_b);
                upd++;
                break;
            }
            float xv = rf_pair_x(pu, qi, qj, bias[i], bias[j], f);
            if (xv >= 1.0f) continue;
            if (side ? in_segment(sp, la + sa.off, sa.cnt, j)
                     : in_segment(sp, lb + sb.off, sb.cnt, j))
                continue;
            double rank = floor((double)(cx->n_items - 1) / n_draw);
            float w = (float)(log1p(rank) / cx->log_items);
            sum += w * (1.0 - xv);
            rf_pair_step(pu, qi, qj, &bias[i], &bias[j], f, w, lr, reg, reg_b);
            upd++;
            break;
        }
    }
#undef DRAW_NEG
    *loss = sum;
    *updates = upd;
}

/* Round r (0 <= r < G - 1) of the circle-method round robin over G
 * groups: pair k (0 <= k < G/2) into *a, *b. Every unordered pair of
 * groups meets in exactly one round. */
void rf_bpr_round_pair(int G, int r, int k, int *a, int *b) {
    if (k == 0) {
        *a = G - 1;
        *b = r;
    } else {
        *a = (r + k) % (G - 1);
        *b = (r - k + (G - 1)) % (G - 1);
    }
}

/* Ask for transparent huge pages on a large training array (fewer TLB
 * misses on random rows); a hint, failures are ignored. */
static void advise_huge(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(uintptr_t)4095;
    if (bytes >= (4u << 20) && hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Deal n ids into `groups` groups of equal size (seeded shuffle, round
 * robin) and number them by (group, id): intl[id] is the internal id,
 * ext[internal] the id, start[0..groups] each group's first internal id. */
static void deal_groups(int32_t n, int groups, rf_rng *g, int32_t *perm, int32_t *intl,
                        int32_t *ext, int32_t *start) {
    for (int32_t k = 0; k < n; k++) perm[k] = k;
    rf_rng_shuffle_i32(g, perm, n);
    for (int c = 0; c <= groups; c++) start[c] = 0;
    for (int32_t k = 0; k < n; k++) intl[perm[k]] = k % groups; /* group for now */
    for (int32_t id = 0; id < n; id++) start[intl[id] + 1]++;
    for (int c = 0; c < groups; c++) start[c + 1] += start[c];
    for (int c = 0; c < groups; c++) perm[c] = start[c]; /* next free internal id */
    for (int32_t id = 0; id < n; id++) {
        int32_t x = perm[intl[id]]++;
        intl[id] = x;
        ext[x] = id;
    }
}

/* ops->set_init (model.h: rf_model_set_init). */
static int bpr_set_init(rf_model *m, const rf_model *src, rf_err *err) {
    bpr_impl *p = m->impl;
    p->init_src = NULL;
    if (!src) return 0;
    const int have = src->ops == m->ops && src->impl ? ((const bpr_impl *)src->impl)->f : -1;
    int rc = rf_warmstart_check(m, src, have, ((const bpr_params *)m->params)->factors, err);
    if (rc == 0) p->init_src = src;
    return rc;
}

/* The warm start of bpr_fit: vectors and item biases of the users and
 * items whose id strings src has (the fit then copies them into its
 * internal order). */
static int warm_start(const rf_model *m, const rf_model *src, bpr_impl *p, rf_err *err) {
    const bpr_impl *s = src->impl;
    rf_warm_parts from = {s->P, s->Q, NULL, s->b, s->f, s->f},
                  to = {p->P, p->Q, NULL, p->b, p->f, p->f};
    return rf_warmstart_parts(src, &from, m, &to, err);
}

static int bpr_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const bpr_params *pp = m->params;
    bpr_impl *p = m->impl;
    const rf_model *init_src = p->init_src; /* used by this fit only */
    p->init_src = NULL;
    const int32_t nu = d->n_users, ni = d->n_items, f = pp->factors;
    const int B = pp->blocks, G = 2 * pp->blocks;
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
    if (init_src && (rc = warm_start(m, init_src, p, err))) return rc;
    if (ui->nnz == 0 || ni < 2) return 0; /* nothing to learn: popularity and noise */

    int32_t *perm = rf_malloc_array((size_t)(nu > ni ? nu : ni) + (size_t)G + 1, sizeof *perm);
    int32_t *uint_ = rf_malloc_array((size_t)nu + 1, sizeof *uint_);
    int32_t *uext = rf_malloc_array((size_t)nu + 1, sizeof *uext);
    int32_t *iint = rf_malloc_array((size_t)ni + 1, sizeof *iint);
    int32_t *iext = rf_malloc_array((size_t)ni + 1, sizeof *iext);
    int32_t *ug_start = rf_malloc_array((size_t)B + 1, sizeof *ug_start);
    int32_t *ig_start = rf_malloc_array((size_t)G + 1, sizeof *ig_start);
    int32_t *igrp = rf_malloc_array((size_t)ni + 1, sizeof *igrp); /* internal item -> group */
    int64_t *st_off = rf_calloc((size_t)B * G + 1, sizeof *st_off);
    int64_t *fill = rf_malloc_array((size_t)B * G, sizeof *fill);
    int32_t *sp = rf_malloc_array((size_t)ui->nnz * 2, sizeof *sp);
    useg *seg = rf_calloc((size_t)nu * (size_t)G + 1, sizeof *seg);
    float *P = rf_malloc_array((size_t)nu * (size_t)f + 1, sizeof *P);
    float *Q = rf_malloc_array((size_t)ni * (size_t)f + 1, sizeof *Q);
    float *bias = rf_calloc((size_t)ni + 1, sizeof *bias);
    double *loss = rf_malloc_array((size_t)B, sizeof *loss);
    int64_t *upd = rf_malloc_array((size_t)B, sizeof *upd);
    rf_progress *prog = NULL;
    if (!perm || !uint_ || !uext || !iint || !iext || !ug_start || !ig_start || !igrp || !st_off ||
        !fill ||
        !sp || !seg || !P || !Q || !bias || !loss || !upd) {
        rc = rf_err_set(err, RF_ENOMEM, "bpr: out of memory for %lld training pairs",
                        (long long)ui->nnz);
        goto done;
    }
    advise_huge(sp, (size_t)ui->nnz * 2 * sizeof *sp);
    advise_huge(seg, (size_t)nu * (size_t)G * sizeof *seg);
    advise_huge(P, (size_t)nu * (size_t)f * sizeof *P);
    advise_huge(Q, (size_t)ni * (size_t)f * sizeof *Q);
    rf_rng g;
    rf_rng_stream(&g, seed, 3);
    deal_groups(nu, B, &g, perm, uint_, uext, ug_start);
    deal_groups(ni, G, &g, perm, iint, iext, ig_start);
    for (int c = 0; c < G; c++)
        for (int32_t x = ig_start[c]; x < ig_start[c + 1]; x++) igrp[x] = c;
    for (int32_t x = 0; x < nu; x++)
        memcpy(P + (int64_t)x * f, p->P + (int64_t)uext[x] * f, (size_t)f * sizeof *P);
    for (int32_t x = 0; x < ni; x++) {
        memcpy(Q + (int64_t)x * f, p->Q + (int64_t)iext[x] * f, (size_t)f * sizeof *Q);
        bias[x] = p->b[iext[x]]; /* 0 unless warm-started */
    }
    /* strata: positives by (user group, item group), then (U, I) inside */
    int t = 0;
    for (int32_t x = 0; x < nu; x++) {
        while (x >= ug_start[t + 1]) t++;
        const int32_t u = uext[x];
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++)
            st_off[(int64_t)t * G + igrp[iint[ui->indices[q]]] + 1]++;
    }
    for (int64_t s = 0; s < (int64_t)B * G; s++) {
        if (st_off[s + 1] > (int64_t)UINT32_MAX) {
            rc = rf_err_set(err, RF_ETOOBIG,
                            "bpr: a stratum holds 2^32 pairs or more; raise blocks");
            goto done;
        }
        st_off[s + 1] += st_off[s];
    }
    memcpy(fill, st_off, (size_t)B * G * sizeof *fill);
    t = 0;
    int32_t *row = perm; /* scratch: one user's internal items, sorted */
    for (int32_t x = 0; x < nu; x++) {
        while (x >= ug_start[t + 1]) t++;
        const int32_t u = uext[x];
        int32_t rn = (int32_t)(ui->indptr[u + 1] - ui->indptr[u]);
        for (int32_t k = 0; k < rn; k++) row[k] = iint[ui->indices[ui->indptr[u] + k]];
        /* within a group internal ids follow the ids, so each stratum's
         * run of this user comes out sorted */
        for (int c = 0; c < G; c++) {
            int64_t s = (int64_t)t * G + c;
            seg[(int64_t)c * nu + x].off = (uint32_t)(fill[s] - st_off[s]);
        }
        for (int32_t k = 0; k < rn; k++) {
            int32_t ix = row[k], c = igrp[ix];
            int64_t s = (int64_t)t * G + c;
            sp[2 * fill[s]] = x;
            sp[2 * fill[s] + 1] = ix;
            fill[s]++;
            seg[(int64_t)c * nu + x].cnt++;
        }
    }

    train_ctx cx = {pp, f, B, G, nu, ni, P, Q, bias, sp, st_off, seg, ig_start, logf((float)ni)};
    const int nth = rf_threads() < B ? rf_threads() : B;
    /* Sub-epochs with little work run on the calling thread: a parallel
     * region costs a barrier (much more on a busy machine), and which
     * thread runs a task does not change the result. */
    const int par = nth > 1 && ui->nnz / ((int64_t)(G - 1) * B) >= PAR_MIN_SAMPLES;
    prog = rf_progress_start(pp->sampler == SAMPLER_WARP ? "bpr-warp" : "bpr", pp->epochs);
    for (int e = 0; e < pp->epochs; e++) {
        double ep_loss = 0;
        int64_t ep_upd = 0;
        for (int r = 0; r < G - 1; r++)
            for (int s = 0; s < B; s++) {
                uint64_t base = 16 + (((uint64_t)e * (G - 1) + (uint64_t)r) * B + (uint64_t)s) * B;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth) if (par)
                for (int tt = 0; tt < B; tt++) {
                    int a, b;
                    rf_bpr_round_pair(G, r, (tt + s) % B, &a, &b);
                    run_task(&cx, tt, a, b, base + (uint64_t)tt, &loss[tt], &upd[tt]);
                }
                for (int tt = 0; tt < B; tt++) { /* in task order: deterministic */
                    ep_loss += loss[tt];
                    ep_upd += upd[tt];
                }
            }
        rf_log(RF_LOG_DEBUG, "bpr.epoch", "epoch=%d loss_term=%.6f updates=%lld positives=%lld",
               e + 1, ep_upd ? ep_loss / (double)ep_upd : 0.0, (long long)ep_upd,
               (long long)ui->nnz);
        if (!isfinite(ep_loss)) {
            rc = rf_err_set(err, RF_ERANGE, "bpr: training diverged in epoch %d (lower lr, now %g)",
                            e + 1, pp->lr);
            goto done;
        }
        rf_progress_set(prog, e + 1);
    }
    /* back to the model's ids */
    for (int32_t x = 0; x < nu; x++)
        memcpy(p->P + (int64_t)uext[x] * f, P + (int64_t)x * f, (size_t)f * sizeof *P);
    for (int32_t x = 0; x < ni; x++) {
        memcpy(p->Q + (int64_t)iext[x] * f, Q + (int64_t)x * f, (size_t)f * sizeof *Q);
        p->b[iext[x]] = bias[x];
    }
done:
    rf_progress_finish(prog);
    rf_free(perm);
    rf_free(uint_);
    rf_free(uext);
    rf_free(iint);
    rf_free(iext);
    rf_free(ug_start);
    rf_free(ig_start);
    rf_free(igrp);
    rf_free(st_off);
    rf_free(fill);
    rf_free(sp);
    rf_free(seg);
    rf_free(P);
    rf_free(Q);
    rf_free(bias);
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
        for (int32_t t = 0; t < n; t++)
            hash = (hash ^ (uint64_t)(uint32_t)hs[t]) * 1099511628211ull;
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
    for (int32_t t = 0; t < h->n && !valid; t++)
        valid = h->items[t] >= 0 && h->items[t] < m->n_items;
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

static const float *bpr_item_vectors(const rf_model *m, int *dim) {
    const bpr_impl *p = m->impl;
    if (!p || !p->Q) return NULL;
    *dim = p->f;
    return p->Q;
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
    .item_vectors = bpr_item_vectors,
    .set_init = bpr_set_init,
};
