/* ials.c - implicit-feedback alternating least squares ("ials").
 *
 * Hu, Koren & Volinsky (2008): every (user, item) cell has preference
 * p = 1 if the user interacted with the item (folded weight r > 0) and 0
 * otherwise. Observed cells weigh c = 1 + alpha * r (confidence=linear) or
 * c = 1 + alpha * log(1 + r / eps) (confidence=log); unobserved cells weigh
 * w_i = unobs_weight (1 in HKV; Rendle et al.'s alpha_0 up to scale), or
 * with unobs_exp = e > 0 unobs_weight * pop_i^e / mean_j pop_j^e (He et
 * al. 2016, popularity-aware missing data). The model minimises
 *     sum_obs c_ui (1 - x_u.y_i)^2 + sum_unobs w_i (x_u.y_i)^2
 *       + sum_u reg_u |x_u|^2 + sum_i reg_i |y_i|^2
 * by alternating exact (or conjugate-gradient) solves of all user rows,
 * then all item rows (factors.h has the row problem). The regularisation
 * is reg, or with reg_exp = nu > 0 the frequency-scaled form of Rendle et
 * al., "Revisiting the Performance of iALS on Item Recommendation
 * Benchmarks" (2021): reg_u = reg * W_u^nu with W_u the total weight of
 * the user's row (sum of w over unobserved plus c over observed cells),
 * likewise for items. With recency > 0 each observed cell's confidence
 * also gets recency * g(rank), rank = the number of the user's entries
 * with a later time (d->ui_ts), g a decreasing shape (rel: 2^(-(rank/n) /
 * tau) over the user's n entries; exp, hyper, step) - the same term in the
 * user and the item step (docs/models-ials-ease.md, third round).
 *
 * DESIGN: factors are float32, row-major, rows padded to a multiple of 8
 * floats (huge-page backed when large) for the SIMD kernels of
 * ials_kernels.c. Each half-iteration computes the Gram matrix of the
 * fixed side with rf_als_gram (OpenBLAS ssyrk over fixed chunks, summed
 * in double; weighted by w_i in the user step; in the item step the row's
 * own w_i scales it), then solves every row in parallel (OpenMP, dynamic
 * schedule) with per-thread scratch allocated once; a row's solve depends
 * only on the data and the fixed side, and initial factors come from a
 * per-row RNG stream, so the trained factors are bit-identical for every
 * thread count (for a given kernel path, factors.h). Entries with weight
 * <= 0 are not observations (p = 0), as in HKV. A warm start (rf_ials_set_init,
 * model.h's rf_model_set_init) overwrites the random rows of the users
 * and items a previous model knows (by id string) with its vectors.
 *
 * Scoring: a known user with training data uses the trained vector; a user
 * unknown to the model (or with no training data) is folded in from the
 * history passed in - an exact solve against the final item factors, as
 * the training's user step would compute it (rf_ials_fold_in_user); an
 * empty history gets item popularity (distinct training users per item),
 * the fallback contract of model.h. The Gram matrices of the final U and V
 * are kept for fold-in (recomputed on load, as are the weights w from the
 * stored popularity). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "recfuse/binfile.h"
#include "recfuse/coldstart.h"
#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

enum { CONF_LINEAR = 0, CONF_LOG = 1 };
enum { SOLVER_CHOLESKY = 0, SOLVER_CG = 1 };
enum { REC_EXP = 0, REC_HYPER = 1, REC_STEP = 2, REC_REL = 3 };

typedef struct ials_params {
    int factors;
    double reg;
    double reg_exp;
    double alpha;
    int confidence;
    double eps;
    int iterations;
    int solver;
    int cg_steps;
    double init;
    int seed;
    double unobs_exp;
    double unobs_weight;
    double recency;
    double recency_tau;
    int recency_shape;
} ials_params;

typedef struct ials_impl {
    int dim, ld;
    float *U, *V;         /* n_users x ld, n_items x ld; inside U_mem / V_mem */
    void *U_mem, *V_mem;  /* allocations (64-byte aligned views above) */
    float *GU, *GV;       /* ld x ld Gram matrices of the final U and V (GV
                             weighted by w when unobs_exp > 0) */
    float *pop;           /* n_items: distinct training users (fallback) */
    float *w;             /* n_items unobserved-cell weights; NULL when all 1 */
    double w_norm;        /* mean of pop^unobs_exp (w = pop^unobs_exp / w_norm) */
    const rf_model *init_src; /* warm start of the next fit (borrowed), or NULL */
} ials_impl;

/* Defaults tuned on ML-100K validation (docs/models-ials-ease.md). */
static const rf_param_def ials_defs[] = {
    {"factors", RF_P_INT, offsetof(ials_params, factors), 128, 1, 1024, NULL,
     "latent dimensions"},
    {"reg", RF_P_DOUBLE, offsetof(ials_params, reg), 200, 1e-9, 1e12, NULL,
     "L2 regularisation (scaled by W^reg_exp, W = a row's total confidence)"},
    {"reg_exp", RF_P_DOUBLE, offsetof(ials_params, reg_exp), 0, 0, 2, NULL,
     "frequency scaling of reg (Rendle et al. 2021): 0 plain, 1 proportional"},
    {"alpha", RF_P_DOUBLE, offsetof(ials_params, alpha), 1, 0, 1e9, NULL,
     "confidence of an observed cell: c = 1 + alpha * r (or the log form)"},
    {"confidence", RF_P_ENUM, offsetof(ials_params, confidence), CONF_LINEAR, 0, 1, "linear,log",
     "linear: c = 1 + alpha r; log: c = 1 + alpha log(1 + r / eps)"},
    {"eps", RF_P_DOUBLE, offsetof(ials_params, eps), 1, 1e-9, 1e9, NULL,
     "scale of r in the log confidence"},
    {"unobs_weight", RF_P_DOUBLE, offsetof(ials_params, unobs_weight), 4, 1e-6, 1e6, NULL,
     "weight of an unobserved cell (observed cells weigh c = 1 + alpha r)"},
    {"unobs_exp", RF_P_DOUBLE, offsetof(ials_params, unobs_exp), 0, 0, 2, NULL,
     "unobserved cells of item i weigh unobs_weight * pop_i^unobs_exp / mean (He et al. 2016)"},
    {"iterations", RF_P_INT, offsetof(ials_params, iterations), 15, 1, 10000, NULL,
     "alternating iterations (user step, then item step)"},
    {"solver", RF_P_ENUM, offsetof(ials_params, solver), SOLVER_CG, 0, 1, "cholesky,cg",
     "row solver: exact Cholesky, or conjugate gradient warm-started"},
    {"cg_steps", RF_P_INT, offsetof(ials_params, cg_steps), 3, 1, 1024, NULL,
     "conjugate-gradient steps per row and half-iteration"},
    {"init", RF_P_DOUBLE, offsetof(ials_params, init), 0.1, 0, 100, NULL,
     "initial factors ~ N(0, (init / sqrt(factors))^2)"},
    {"seed", RF_P_INT, offsetof(ials_params, seed), 42, 0, 2147483647, NULL,
     "seed of the initial factors"},
    {"recency", RF_P_DOUBLE, offsetof(ials_params, recency), 112, 0, 1e9, NULL,
     "observed confidence += recency * g(rank), rank = the user's later items (0: off)"},
    {"recency_tau", RF_P_DOUBLE, offsetof(ials_params, recency_tau), 0.07, 1e-6, 1e9, NULL,
     "scale of g: items (exp, hyper, step) or a fraction of the history (rel)"},
    {"recency_shape", RF_P_ENUM, offsetof(ials_params, recency_shape), REC_REL, 0, 3,
     "exp,hyper,step,rel",
     "g(r) = 2^(-r/tau), 1/(1 + r/tau), [r < tau], or 2^(-(r/n)/tau) (n: history length)"},
    {0},
};

extern const rf_model_ops rf_model_ials_ops;

static int round8(int n) { return (n + 7) & ~7; }

/* rows x ld floats, zeroed, 64-byte aligned inside *mem. Large matrices
 * are 2 MiB aligned and advised to use transparent huge pages: the solves
 * read rows scattered over the whole matrix, and with 4 KiB pages nearly
 * every row costs a TLB miss (measured: CG 25% faster at Protocol C size). */
static float *alloc_factors(int64_t rows, int ld, void **mem) {
    size_t n = (size_t)(rows > 0 ? rows : 1) * (size_t)ld;
    const size_t huge = (size_t)2 << 20;
    if (n > (SIZE_MAX - huge) / sizeof(float)) return NULL;
    size_t bytes = n * sizeof(float), align = bytes >= 2 * huge ? huge : 64;
    *mem = rf_calloc(bytes + align, 1);
    if (!*mem) return NULL;
    uintptr_t a = ((uintptr_t)*mem + align - 1) & ~(uintptr_t)(align - 1);
#ifdef MADV_HUGEPAGE
    if (align == huge) madvise((void *)a, bytes & ~(huge - 1), MADV_HUGEPAGE);
#endif
    return (float *)a;
}

static void impl_clear(ials_impl *p) {
    rf_free(p->U_mem);
    rf_free(p->V_mem);
    rf_free(p->GU);
    rf_free(p->GV);
    rf_free(p->pop);
    rf_free(p->w);
    memset(p, 0, sizeof *p);
}

static int ials_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(ials_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "out of memory");
    return 0;
}

static void ials_destroy(rf_model *m) {
    ials_impl *p = m->impl;
    if (!p) return;
    impl_clear(p);
    rf_free(p);
    m->impl = NULL;
}

static const char *ials_check(const void *params) {
    const ials_params *pp = params;
    if (pp->factors < 1) return "factors must be at least 1";
    if (!(pp->reg > 0)) return "reg must be > 0";
    if (pp->reg_exp < 0) return "reg_exp must be >= 0";
    if (pp->alpha < 0) return "alpha must be >= 0";
    if (pp->unobs_exp < 0) return "unobs_exp must be >= 0";
    if (!(pp->unobs_weight > 0)) return "unobs_weight must be > 0";
    if (!(pp->eps > 0)) return "eps must be > 0";
    if (pp->iterations < 1) return "iterations must be at least 1";
    if (pp->cg_steps < 1) return "cg_steps must be at least 1";
    if (pp->init < 0) return "init must be >= 0";
    return NULL;
}

/* alpha * f(r) of an observed cell with folded weight r > 0: c = 1 + that. */
static inline double conf_extra(const ials_params *pp, float r) {
    if (pp->confidence == CONF_LOG) return pp->alpha * log1p((double)r / pp->eps);
    return pp->alpha * (double)r;
}

static int32_t max_row(const rf_csr *M) {
    int64_t mx = 0;
    for (int32_t r = 0; r < M->nrows; r++)
        if (rf_csr_row_len(M, r) > mx) mx = rf_csr_row_len(M, r);
    return (int32_t)(mx > 0 ? mx : 1);
}

/* g(r) of an entry with rank r (how many of the user's n entries are
 * later) in a history of n entries; g(0) = 1, decreasing in r. */
static double recency_g(const ials_params *pp, double r, int64_t n) {
    const double tau = pp->recency_tau;
    switch (pp->recency_shape) {
    case REC_HYPER: return 1.0 / (1.0 + r / tau);
    case REC_STEP: return r < tau ? 1.0 : 0.0;
    case REC_REL: return exp2(-(r / (double)(n > 0 ? n : 1)) / tau);
    default: return exp2(-r / tau);
    }
}

/* Ascending sort of n keys (time << 32 | position): a least-significant-
 * digit radix sort over the time bytes, skipping bytes where every key
 * has the same digit (stable, so equal times stay in position order and
 * the result is fully sorted); insertion sort for short rows. tmp: n keys
 * of scratch. */
static void sort_time_keys(uint64_t *k, uint64_t *tmp, int32_t n) {
    if (n < 48) {
        for (int32_t i = 1; i < n; i++) {
            uint64_t v = k[i];
            int32_t j = i - 1;
            for (; j >= 0 && k[j] > v; j--) k[j + 1] = k[j];
            k[j + 1] = v;
        }
        return;
    }
    uint64_t *src = k, *dst = tmp;
    for (int shift = 32; shift < 64; shift += 8) {
        int32_t cnt[257] = {0};
        for (int32_t j = 0; j < n; j++) cnt[((src[j] >> shift) & 255) + 1]++;
        if (cnt[((src[0] >> shift) & 255) + 1] == n) continue; /* one digit: nothing to do */
        for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
        for (int32_t j = 0; j < n; j++) dst[cnt[(src[j] >> shift) & 255]++] = src[j];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != k) memcpy(k, src, (size_t)n * sizeof *k);
}

/* The recency term recency * g(rank) of each of n entries into rec, from
 * keys[j] = time_j << 32 | j (times as unsigned 32-bit offsets; keys is
 * sorted in place, tmp: n keys of scratch). The rank of an entry is the
 * number of entries with a strictly later time, so entries with equal
 * times share the best rank of their group; keys NULL (no times): every
 * entry ranks 0. */
static void recency_row(const ials_params *pp, int32_t n, uint64_t *keys, uint64_t *tmp,
                        float *rec) {
    if (!keys) {
        for (int32_t j = 0; j < n; j++) rec[j] = (float)pp->recency;
        return;
    }
    sort_time_keys(keys, tmp, n);
    for (int32_t hi = n; hi > 0;) { /* group [lo, hi) of equal times; n - hi entries are later */
        const uint64_t t = keys[hi - 1] >> 32;
        int32_t lo = hi - 1;
        while (lo > 0 && keys[lo - 1] >> 32 == t) lo--;
        const float v = (float)(pp->recency * recency_g(pp, n - hi, n));
        for (int32_t q = lo; q < hi; q++) rec[(uint32_t)keys[q]] = v;
        hi = lo;
    }
}

/* The values a (in ui order) into b in iu order. The users are cut into
 * nth blocks; block p counts its entries per item, so item i's entries
 * from block p start at iu->indptr[i] plus those of i in earlier blocks,
 * and the blocks scatter in parallel (users ascending within an item, as
 * rf_csr_transpose lists them). Returns 0; -1 with *nomem = 1 when out
 * of memory, with *nomem = 0 when iu is not ui's transpose (an item's
 * count differs, or an entry lands on another user's position). */
static int to_item_order(const rf_csr *ui, const rf_csr *iu, int nth, const float *a, float *b,
                         int *nomem) {
    const int32_t ni = iu->nrows;
    *nomem = 0;
    int64_t *cur = rf_calloc((size_t)nth * ((size_t)ni + 1), sizeof *cur);
    if (!cur) {
        *nomem = 1;
        return -1;
    }
    int64_t bad = 0;
#pragma omp parallel for schedule(static, 1) num_threads(nth)
    for (int p = 0; p < nth; p++) {
        int64_t lo, hi, *c = cur + (size_t)p * ((size_t)ni + 1);
        rf_chunk(ui->nrows, nth, p, &lo, &hi);
        for (int64_t q = ui->indptr[lo]; q < ui->indptr[hi]; q++) c[ui->indices[q]]++;
    }
    for (int32_t i = 0; i < ni; i++) { /* counts -> first positions */
        int64_t pos = iu->indptr[i];
        for (int p = 0; p < nth; p++) {
            int64_t *c = cur + (size_t)p * ((size_t)ni + 1) + i, k = *c;
            *c = pos;
            pos += k;
        }
        bad += pos != iu->indptr[i + 1];
    }
    if (bad == 0) {
#pragma omp parallel for schedule(static, 1) num_threads(nth) reduction(+ : bad)
        for (int p = 0; p < nth; p++) {
            int64_t lo, hi, *c = cur + (size_t)p * ((size_t)ni + 1);
            rf_chunk(ui->nrows, nth, p, &lo, &hi);
            for (int64_t u = lo; u < hi; u++)
                for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
                    int64_t pos = c[ui->indices[q]]++;
                    bad += iu->indices[pos] != u;
                    b[pos] = a[q];
                }
        }
    }
    rf_free(cur);
    return bad ? -1 : 0;
}

/* The recency terms of every training entry, in ui order (*rui) and in iu
 * order (*riu), from the entries' last event times (d->ui_ts); both live in
 * one huge-page backed block, *mem (rf_free it). */
static int recency_arrays(const ials_params *pp, const rf_dataset *d, int nth, void **mem,
                          float **rui, float **riu, rf_err *err) {
    const rf_csr *ui = d->ui, *iu = d->iu;
    const int32_t maxlen = max_row(ui);
    *mem = NULL;
    *rui = *riu = NULL;
    if (!d->ui_ts)
        return rf_err_set(err, RF_EINVAL, "ials: recency > 0 needs the entries' event times");
    if (iu->nnz != ui->nnz || iu->nrows != ui->ncols)
        return rf_err_set(err, RF_EINVAL, "ials: the dataset's iu is not the transpose of ui");
    const int64_t nnz = ui->nnz ? ui->nnz : 1;
    float *a = alloc_factors(2 * nnz, 1, mem), *b = a ? a + nnz : NULL;
    uint64_t *scr = rf_malloc_array((size_t)nth * 2 * (size_t)maxlen, sizeof *scr);
    int nomem = !a || !scr, rc = 0;
    if (!nomem) {
#pragma omp parallel for schedule(dynamic, 64) num_threads(nth)
        for (int32_t u = 0; u < ui->nrows; u++) {
            uint64_t *keys = scr + (size_t)rf_thread_id() * 2 * (size_t)maxlen;
            const int64_t lo = ui->indptr[u];
            const int32_t n = (int32_t)(ui->indptr[u + 1] - lo);
            for (int32_t j = 0; j < n; j++)
                keys[j] = (uint64_t)d->ui_ts[lo + j] << 32 | (uint32_t)j;
            recency_row(pp, n, keys, keys + maxlen, a + lo);
        }
        if (to_item_order(ui, iu, nth, a, b, &nomem) && !nomem)
            rc = rf_err_set(err, RF_EINVAL, "ials: the dataset's iu is not the transpose of ui");
    }
    rf_free(scr);
    if (nomem) rc = rf_err_set(err, RF_ENOMEM, "ials: out of memory (recency weights)");
    if (rc) {
        rf_free(*mem);
        *mem = NULL;
        return rc;
    }
    *rui = a;
    *riu = b;
    return 0;
}

/* How one row's observations are weighed: the unobserved weight of each
 * column (colw: the user step with popularity-scaled item weights) or one
 * weight for the whole row (roww: unobs_weight, or the item's own weight
 * in the item step; 1 in plain iALS), and the factor on the Gram matrix
 * (1 when colw: the Gram matrix is then weighted; else roww). */
typedef struct row_weights {
    const float *colw; /* n_cols weights or NULL */
    float roww;
} row_weights;

static float gram_scale(const row_weights *rw) { return rw->colw ? 1.0f : rw->roww; }

/* The observations of one row (entries with weight > 0) into idx, cm1
 * (c - w) and conf (c = 1 + alpha f(r) + rec, rec the entry's recency term
 * or 0 when rec is NULL; *use_conf is 0 when every w is 1 and the kernels
 * may take 1 + cm1 instead); returns their count and the row's
 * regularisation in *reg: reg * W^reg_exp with W the row's total weight,
 * the sum of the unobserved weights over all columns (unobs_weight * n_cols
 * with per-column weights, which average unobs_weight; roww * n_cols
 * otherwise) plus sum (c - w). Entries outside [0, n_cols) are skipped
 * (fold-in input is not trusted). */
static int32_t prep_row(const ials_params *pp, int32_t n, const int32_t *cols, const float *wts,
                        const float *rec, int32_t n_cols, const row_weights *rw, int32_t *idx,
                        float *cm1, float *conf, int *use_conf, double *reg) {
    int32_t k = 0;
    double sum = 0;
    const int plain = !rw->colw && rw->roww == 1.0f;
    for (int32_t t = 0; t < n; t++) {
        float r = wts ? wts[t] : 1.0f;
        int32_t c = cols[t];
        if (!(r > 0) || c < 0 || c >= n_cols) continue;
        double extra = conf_extra(pp, r) + (rec ? rec[t] : 0.0);
        double wc = rw->colw ? rw->colw[c] : rw->roww;
        idx[k] = c;
        cm1[k] = (float)(extra + (1.0 - wc));
        conf[k] = (float)(1.0 + extra);
        sum += cm1[k];
        k++;
    }
    *use_conf = !plain;
    double W = (rw->colw ? pp->unobs_weight : (double)rw->roww) * n_cols + sum;
    *reg = pp->reg_exp > 0 ? pp->reg * pow(W > 0 ? W : 0, pp->reg_exp) : pp->reg;
    return k;
}

/* Solve every row of X against the fixed side Y (gram G) from matrix M
 * (rows of X x columns = rows of Y; unit: all its values are 1, so they
 * need not be read - the matrix streams from memory every half-step;
 * rec: the entries' recency terms in M's order, or NULL).
 * colw: unobserved weights of the columns (user step) or NULL; roww: of
 * the rows (item step) or NULL; neither: unobs_weight for all. Returns the
 * number of rows whose exact solve failed (solved by CG instead). */
static int64_t solve_side(const ials_params *pp, const rf_csr *M, int unit, const float *rec,
                          float *X, const float *Y, const float *G, const float *colw,
                          const float *roww, int dim, int ld, int nth, int32_t *idx_all,
                          float *cm1_all, float *work_all, int32_t maxlen) {
    const size_t wf = rf_als_work_floats(ld);
    int64_t fails = 0;
#pragma omp parallel for schedule(dynamic, 16) num_threads(nth) reduction(+ : fails)
    for (int32_t u = 0; u < M->nrows; u++) {
        size_t t = (size_t)rf_thread_id();
        int32_t *idx = idx_all + t * (size_t)maxlen;
        float *cm1 = cm1_all + t * 2 * (size_t)maxlen, *conf = cm1 + maxlen;
        float *work = work_all + t * wf;
        float *x = X + (size_t)u * ld;
        int64_t lo = M->indptr[u];
        double reg;
        int use_conf;
        row_weights rw = {colw, roww ? roww[u] : (float)pp->unobs_weight};
        int32_t n = prep_row(pp, (int32_t)(M->indptr[u + 1] - lo), M->indices + lo,
                             unit ? NULL : M->data + lo, rec ? rec + lo : NULL, M->ncols, &rw, idx,
                             cm1, conf, &use_conf, &reg);
        if (n == 0) {
            memset(x, 0, (size_t)ld * sizeof *x);
            continue;
        }
        rf_als_row pr = {Y, dim, ld, G, reg, n, idx, cm1, use_conf ? conf : NULL,
                         gram_scale(&rw)};
        if (pp->solver == SOLVER_CG) {
            rf_als_solve_cg(&pr, pp->cg_steps, x, work);
        } else if (rf_als_solve_exact(&pr, x, work) != 0) {
            rf_als_solve_cg(&pr, dim, x, work);
            fails++;
        }
    }
    return fails;
}

static void init_factors(float *X, int32_t rows, int dim, int ld, double scale, uint64_t seed,
                         uint64_t stream0, int nth) {
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int32_t u = 0; u < rows; u++) {
        rf_rng g;
        rf_rng_stream(&g, seed, stream0 + (uint64_t)u);
        float *x = X + (size_t)u * ld;
        for (int k = 0; k < dim; k++) x[k] = (float)(scale * rf_rng_normal(&g));
    }
}

/* The unobserved weight of an item with `pop` users:
 * unobs_weight * pop^unobs_exp / w_norm (pop 0 counts as 1). */
static double unobs_w(const ials_params *pp, double pop, double w_norm) {
    if (pp->unobs_exp == 0) return pp->unobs_weight;
    return pp->unobs_weight * pow(pop > 1 ? pop : 1, pp->unobs_exp) / w_norm;
}

/* The unobserved weights of the items (from p->pop) into p->w; NULL when
 * they are all equal (unobs_exp = 0: one weight, unobs_weight, scales the
 * Gram matrix instead). w_norm = mean of pop^unobs_exp, so the weights
 * average unobs_weight. */
static int set_weights(const ials_params *pp, ials_impl *p, int32_t n_items, rf_err *err) {
    rf_free(p->w);
    p->w = NULL;
    p->w_norm = 1;
    if (pp->unobs_exp == 0 || n_items == 0) return 0;
    p->w = rf_malloc_array((size_t)n_items, sizeof *p->w);
    if (!p->w) return rf_err_set(err, RF_ENOMEM, "ials: out of memory");
    double sum = 0;
    for (int32_t i = 0; i < n_items; i++)
        sum += pow(p->pop[i] > 1 ? p->pop[i] : 1, pp->unobs_exp);
    p->w_norm = sum / n_items;
    for (int32_t i = 0; i < n_items; i++) p->w[i] = (float)unobs_w(pp, p->pop[i], p->w_norm);
    return 0;
}

/* The Gram matrices of the final factors, for fold-in. */
static int finish_impl(const rf_model *m, ials_impl *p, rf_err *err) {
    const size_t ld2 = (size_t)p->ld * (size_t)p->ld;
    if (!p->GU) p->GU = rf_malloc_array(ld2, sizeof *p->GU);
    if (!p->GV) p->GV = rf_malloc_array(ld2, sizeof *p->GV);
    if (!p->GU || !p->GV) return rf_err_set(err, RF_ENOMEM, "ials: out of memory");
    int rc = rf_als_gram(p->U, m->n_users, p->ld, NULL, p->GU, err);
    if (rc == 0) rc = rf_als_gram(p->V, m->n_items, p->ld, p->w, p->GV, err);
    return rc;
}

/* The warm start of ials_fit: rows of U and V whose id strings src has
 * get src's vectors (the rest keep their random init). */
static int warm_start(const rf_model *m, const rf_model *src, ials_impl *p, rf_err *err) {
    const ials_impl *s = src->impl;
    rf_warm_parts from = {s->U, s->V, NULL, NULL, s->dim, s->ld},
                  to = {p->U, p->V, NULL, NULL, p->dim, p->ld};
    return rf_warmstart_parts(src, &from, m, &to, err);
}

static int ials_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const ials_params *pp = m->params;
    ials_impl *p = m->impl;
    const rf_model *init_src = p->init_src; /* used by this fit only */
    impl_clear(p);
    const int dim = pp->factors, ld = round8(dim), nth = rf_threads();
    const size_t wf = rf_als_work_floats(ld);
    const int32_t max_u = max_row(d->ui), max_i = max_row(d->iu);
    const int32_t maxlen = max_u > max_i ? max_u : max_i;
    int rc = RF_ENOMEM;
    float *G = rf_malloc_array((size_t)ld * ld, sizeof *G);
    int32_t *idx = rf_malloc_array((size_t)nth * maxlen, sizeof *idx);
    float *cm1 = rf_malloc_array((size_t)nth * 2 * maxlen, sizeof *cm1); /* cm1 | conf */
    float *work = rf_malloc_array((size_t)nth * wf, sizeof *work);
    p->dim = dim;
    p->ld = ld;
    p->U = alloc_factors(d->n_users, ld, &p->U_mem);
    p->V = alloc_factors(d->n_items, ld, &p->V_mem);
    p->pop = rf_malloc_array((size_t)(d->n_items > 0 ? d->n_items : 1), sizeof *p->pop);
    rf_progress *prog = NULL;
    float *rec_ui = NULL, *rec_iu = NULL; /* recency terms (recency > 0), in rec_mem */
    void *rec_mem = NULL;
    if (!G || !idx || !cm1 || !work || !p->U || !p->V || !p->pop) {
        rf_err_set(err, RF_ENOMEM, "ials: out of memory (%d users, %d items, %d factors)",
                   d->n_users, d->n_items, dim);
        goto fail;
    }
    for (int32_t i = 0; i < d->n_items; i++) {
        int64_t c = 0;
        for (int64_t q = d->iu->indptr[i]; q < d->iu->indptr[i + 1]; q++) c += d->iu->data[q] > 0;
        p->pop[i] = (float)c;
    }
    if ((rc = set_weights(pp, p, d->n_items, err))) goto fail;
    const double scale = pp->init / sqrt((double)dim);
    init_factors(p->U, d->n_users, dim, ld, scale, (uint64_t)pp->seed, 0, nth);
    init_factors(p->V, d->n_items, dim, ld, scale, (uint64_t)pp->seed, (uint64_t)1 << 40, nth);
    if (init_src && (rc = warm_start(m, init_src, p, err))) goto fail;

    int unit = 1;
    for (int64_t q = 0; q < d->ui->nnz && unit; q++) unit = d->ui->data[q] == 1.0f;
    if (pp->recency > 0) {
        if (d->ui->nnz > 0 && d->ts_base == d->ts_max)
            rf_log(RF_LOG_WARN, "ials.recency",
                   "msg=\"every event has the same time (no timestamps imported?): the recency term "
                   "weighs every entry alike; consider --params-ials recency=0,reg=28\"");
        double t0 = rf_mono();
        if ((rc = recency_arrays(pp, d, nth, &rec_mem, &rec_ui, &rec_iu, err))) goto fail;
        rf_log(RF_LOG_DEBUG, "ials.recency", "entries=%lld seconds=%.3f", (long long)d->ui->nnz,
               rf_mono() - t0);
    }
    prog = rf_progress_start("ials", pp->iterations);
    int64_t fails = 0;
    for (int it = 0; it < pp->iterations; it++) {
        double t0 = rf_mono();
        if ((rc = rf_als_gram(p->V, d->n_items, ld, p->w, G, err))) goto fail;
        fails += solve_side(pp, d->ui, unit, rec_ui, p->U, p->V, G, p->w, NULL, dim, ld, nth, idx,
                            cm1, work, maxlen);
        double t1 = rf_mono();
        if ((rc = rf_als_gram(p->U, d->n_users, ld, NULL, G, err))) goto fail;
        fails += solve_side(pp, d->iu, unit, rec_iu, p->V, p->U, G, NULL, p->w, dim, ld, nth, idx,
                            cm1, work, maxlen);
        rf_log(RF_LOG_DEBUG, "ials.iter", "it=%d seconds=%.3f user_step=%.3f item_step=%.3f",
               it + 1, rf_mono() - t0, t1 - t0, rf_mono() - t1);
        rf_progress_set(prog, it + 1);
    }
    rf_progress_finish(prog);
    prog = NULL;
    if (fails)
        rf_log(RF_LOG_WARN, "ials.cholesky",
               "rows=%lld msg=\"matrix not positive definite in float; solved by CG instead\"",
               (long long)fails);
    if ((rc = finish_impl(m, p, err))) goto fail;
    rf_log(RF_LOG_INFO, "ials.fit", "users=%d items=%d factors=%d iterations=%d solver=%s simd=%s",
           d->n_users, d->n_items, dim, pp->iterations,
           pp->solver == SOLVER_CG ? "cg" : "cholesky", rf_als_simd());
    rc = 0;
    goto done;
fail:
    rf_progress_finish(prog);
    impl_clear(p);
done:
    rf_free(rec_mem);
    rf_free(G);
    rf_free(idx);
    rf_free(cm1);
    rf_free(work);
    return rc;
}

/* ---- fold-in --------------------------------------------------------------- */

/* Exact solve of one row against Y (n_rows_y rows, gram G) from entries
 * cols/w (event times ts, or NULL: all equally recent, for the recency
 * term) with unobserved weights rw; x receives ld floats (zero when no
 * entry is usable). *used receives the number of usable entries. */
static int fold_row(const ials_params *pp, const ials_impl *p, const float *Y, int32_t n_rows_y,
                    const float *G, const row_weights *rw, int32_t n, const int32_t *cols,
                    const float *w, const int64_t *ts, float *x, int32_t *used, rf_err *err) {
    const int ld = p->ld;
    size_t wf = rf_als_work_floats(ld);
    size_t nn = (size_t)(n > 0 ? n : 1);
    const int recent = pp->recency > 0;
    /* one block: work | cm1 | conf | idx | rec (recency > 0) */
    float *block = rf_malloc_array(wf + (recent ? 4 : 3) * nn, sizeof(float));
    const int timed = recent && ts && n > 0;
    uint64_t *keys = timed ? rf_malloc_array(2 * nn, sizeof *keys) : NULL;
    if (!block || (timed && !keys)) {
        rf_free(block);
        return rf_err_set(err, RF_ENOMEM, "ials fold-in: out of memory");
    }
    float *work = block, *cm1 = block + wf, *conf = cm1 + nn;
    int32_t *idx = (int32_t *)(conf + nn);
    float *rec = recent ? conf + 2 * nn : NULL;
    if (keys) { /* times as offsets from the oldest, capped at 2^32 - 1 s */
        int64_t oldest = ts[0];
        for (int32_t j = 1; j < n; j++)
            if (ts[j] < oldest) oldest = ts[j];
        for (int32_t j = 0; j < n; j++) {
            uint64_t age = (uint64_t)ts[j] - (uint64_t)oldest;
            keys[j] = (age < UINT32_MAX ? age : UINT32_MAX) << 32 | (uint32_t)j;
        }
    }
    if (rec) recency_row(pp, n, keys, keys ? keys + nn : NULL, rec);
    rf_free(keys);
    double reg;
    int use_conf;
    int32_t k = prep_row(pp, n, cols, w, rec, n_rows_y, rw, idx, cm1, conf, &use_conf, &reg);
    *used = k;
    if (k == 0) {
        memset(x, 0, (size_t)ld * sizeof *x);
    } else {
        rf_als_row pr = {Y, p->dim, ld, G, reg, k, idx, cm1, use_conf ? conf : NULL,
                         gram_scale(rw)};
        if (rf_als_solve_exact(&pr, x, work) != 0) {
            memset(x, 0, (size_t)ld * sizeof *x);
            rf_als_solve_cg(&pr, p->dim, x, work);
        }
    }
    rf_free(block);
    return 0;
}

static int check_model(const rf_model *m, rf_err *err) {
    if (!m || m->ops != &rf_model_ials_ops || !m->fitted || !m->impl ||
        !((const ials_impl *)m->impl)->V)
        return rf_err_set(err, RF_EINVAL, "not a fitted ials model");
    return 0;
}

int rf_ials_fold_in_user(const rf_model *m, const rf_hist *h, float *vec, rf_err *err) {
    int rc = check_model(m, err);
    if (rc) return rc;
    const ials_impl *p = m->impl;
    float xb[1024 + 8];
    int32_t used;
    row_weights rw = {p->w, (float)((const ials_params *)m->params)->unobs_weight};
    rc = fold_row(m->params, p, p->V, m->n_items, p->GV, &rw, h ? h->n : 0, h ? h->items : NULL,
                  h ? h->weights : NULL, h ? h->ts : NULL, xb, &used, err);
    if (rc == 0) memcpy(vec, xb, (size_t)p->dim * sizeof *vec);
    return rc;
}

int rf_ials_fold_in_item(const rf_model *m, int32_t n, const int32_t *users, const float *weights,
                         float *vec, rf_err *err) {
    int rc = check_model(m, err);
    if (rc) return rc;
    const ials_impl *p = m->impl;
    float xb[1024 + 8];
    int32_t used;
    const ials_params *pp = m->params;
    row_weights rw = {NULL, (float)pp->unobs_weight};
    if (p->w) { /* the new item's own weight, from its count of usable users */
        int32_t cnt = 0;
        for (int32_t t = 0; users && t < n; t++)
            cnt += users[t] >= 0 && users[t] < m->n_users && (!weights || weights[t] > 0);
        rw.roww = (float)unobs_w(pp, cnt, p->w_norm);
    }
    rc = fold_row(m->params, p, p->U, m->n_users, p->GU, &rw, users ? n : 0, users, weights, NULL,
                  xb, &used, err);
    if (rc == 0) memcpy(vec, xb, (size_t)p->dim * sizeof *vec);
    return rc;
}

int rf_factors_get(const rf_model *m, rf_factors *out, rf_err *err) {
    int rc = check_model(m, err);
    if (rc) return rc;
    const ials_impl *p = m->impl;
    out->n_users = m->n_users;
    out->n_items = m->n_items;
    out->dim = p->dim;
    out->ld = p->ld;
    out->users = p->U;
    out->items = p->V;
    return 0;
}

int rf_ials_set_init(rf_model *m, const rf_model *src, rf_err *err) {
    if (!m || m->ops != &rf_model_ials_ops || !m->impl)
        return rf_err_set(err, RF_EINVAL, "warm start: only an ials model can be initialised "
                                          "from another model");
    if (m->fitted) return rf_err_set(err, RF_ESTATE, "warm start: the model is already fitted");
    ials_impl *p = m->impl;
    p->init_src = NULL;
    if (!src) return 0;
    const int have = src->ops == m->ops && src->impl ? ((const ials_impl *)src->impl)->dim : -1;
    int rc = rf_warmstart_check(m, src, have, ((const ials_params *)m->params)->factors, err);
    if (rc == 0) p->init_src = src;
    return rc;
}

static int ials_user_dim(const rf_model *m) {
    const ials_impl *p = m->impl;
    return p ? p->dim : 0;
}

static int ials_fold_in(const rf_model *m, const rf_hist *h, float *vec, rf_err *err) {
    return rf_ials_fold_in_user(m, h, vec, err);
}

/* ---- scoring ----------------------------------------------------------------- */

static int has_vector(const ials_impl *p, int32_t user) {
    const float *x = p->U + (size_t)user * p->ld;
    for (int k = 0; k < p->dim; k++)
        if (x[k] != 0.0f) return 1;
    return 0;
}

/* The user's vector (ld floats) into xb: trained, folded in, or none
 * (returns 0 with *have = 0: use popularity). */
static int user_vector(const rf_model *m, int32_t user, const rf_hist *h, float *xb, int *have,
                       rf_err *err) {
    const ials_impl *p = m->impl;
    *have = 0;
    if (user >= 0 && user < m->n_users && has_vector(p, user)) {
        memcpy(xb, p->U + (size_t)user * p->ld, (size_t)p->ld * sizeof *xb);
        *have = 1;
        return 0;
    }
    if (h->n == 0) return 0;
    int32_t used;
    row_weights rw = {p->w, (float)((const ials_params *)m->params)->unobs_weight};
    int rc = fold_row(m->params, p, p->V, m->n_items, p->GV, &rw, h->n, h->items, h->weights,
                      h->ts, xb,
                      &used, err);
    *have = rc == 0 && used > 0;
    return rc;
}

static int ials_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                          rf_err *err) {
    const ials_impl *p = m->impl;
    float xb[1024 + 8];
    int have;
    int rc = user_vector(m, user, h, xb, &have, err);
    if (rc) return rc;
    if (!have) {
        memcpy(out, p->pop, (size_t)m->n_items * sizeof *out);
        return 0;
    }
    rf_factors f = {m->n_users, m->n_items, p->ld, p->ld, p->U, p->V};
    rf_factors_score_all(&f, xb, out);
    return 0;
}

static int ials_score_items(const rf_model *m, int32_t user, const rf_hist *h,
                            const int32_t *items, int32_t n, float *out, rf_err *err) {
    const ials_impl *p = m->impl;
    float xb[1024 + 8];
    int have;
    int rc = user_vector(m, user, h, xb, &have, err);
    if (rc) return rc;
    for (int32_t t = 0; t < n; t++) {
        int32_t i = items[t];
        if (!have) {
            out[t] = p->pop[i];
            continue;
        }
        const float *y = p->V + (size_t)i * p->ld;
        float s = 0;
        for (int k = 0; k < p->dim; k++) s += y[k] * xb[k];
        out[t] = s;
    }
    return 0;
}

/* ---- files ----------------------------------------------------------------------- */

static int ials_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const ials_impl *p = m->impl;
    int rc = rf_writer_i64(w, p->dim);
    rc |= rf_writer_i64(w, m->n_users);
    rc |= rf_writer_i64(w, m->n_items);
    for (int32_t u = 0; u < m->n_users && rc == 0; u++)
        rc |= rf_writer_put(w, p->U + (size_t)u * p->ld, (size_t)p->dim * sizeof(float));
    for (int32_t i = 0; i < m->n_items && rc == 0; i++)
        rc |= rf_writer_put(w, p->V + (size_t)i * p->ld, (size_t)p->dim * sizeof(float));
    rc |= rf_writer_put(w, p->pop, (size_t)m->n_items * sizeof *p->pop);
    return rc ? rf_err_set(err, RF_EIO, "ials: write failed") : 0;
}

static int read_rows(rf_reader *r, float *X, int32_t rows, int dim, int ld, rf_err *err) {
    for (int32_t u = 0; u < rows; u++) {
        float *x = X + (size_t)u * ld;
        int rc = rf_reader_get(r, x, (size_t)dim * sizeof *x, err);
        if (rc) return rc;
        for (int k = 0; k < dim; k++)
            if (!isfinite(x[k])) return rf_err_set(err, RF_EFORMAT, "ials: non-finite factor");
    }
    return 0;
}

static int ials_load(rf_model *m, rf_reader *r, rf_err *err) {
    const ials_params *pp = m->params;
    ials_impl *p = m->impl;
    impl_clear(p);
    int64_t dim, nu, ni;
    int rc;
    if ((rc = rf_reader_i64(r, &dim, err)) || (rc = rf_reader_i64(r, &nu, err)) ||
        (rc = rf_reader_i64(r, &ni, err)))
        return rc;
    if (dim != pp->factors || nu != m->n_users || ni != m->n_items ||
        ((nu + ni) * dim + ni) * (int64_t)sizeof(float) != rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT,
                          "ials: payload of %lld x %lld / %lld x %lld factors (%lld bytes) "
                          "disagrees with the header (%d users, %d items, factors=%d)",
                          (long long)nu, (long long)dim, (long long)ni, (long long)dim,
                          (long long)rf_reader_remaining(r), m->n_users, m->n_items, pp->factors);
    p->dim = (int)dim;
    p->ld = round8(p->dim);
    p->U = alloc_factors(nu, p->ld, &p->U_mem);
    p->V = alloc_factors(ni, p->ld, &p->V_mem);
    p->pop = rf_malloc_array((size_t)(ni > 0 ? ni : 1), sizeof *p->pop);
    if (!p->U || !p->V || !p->pop) {
        rc = rf_err_set(err, RF_ENOMEM, "ials: out of memory");
        goto fail;
    }
    if ((rc = read_rows(r, p->U, (int32_t)nu, p->dim, p->ld, err)) ||
        (rc = read_rows(r, p->V, (int32_t)ni, p->dim, p->ld, err)) ||
        (rc = rf_reader_get(r, p->pop, (size_t)ni * sizeof *p->pop, err)))
        goto fail;
    for (int64_t i = 0; i < ni; i++)
        if (!(p->pop[i] >= 0) || !isfinite(p->pop[i])) {
            rc = rf_err_set(err, RF_EFORMAT, "ials: bad popularity value");
            goto fail;
        }
    if ((rc = set_weights(pp, p, (int32_t)ni, err)) || (rc = finish_impl(m, p, err))) goto fail;
    return 0;
fail:
    impl_clear(p);
    return rc;
}

const rf_model_ops rf_model_ials_ops = {
    .name = "ials",
    .help = "implicit-feedback ALS (confidence-weighted matrix factorisation)",
    .params = ials_defs,
    .params_size = sizeof(ials_params),
    .create = ials_create,
    .fit = ials_fit,
    .score_all = ials_score_all,
    .save = ials_save,
    .load = ials_load,
    .destroy = ials_destroy,
    .params_check = ials_check,
    .user_dim = ials_user_dim,
    .fold_in = ials_fold_in,
    .score_items = ials_score_items,
    .set_init = rf_ials_set_init,
};
