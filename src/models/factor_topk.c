/* factor_topk.c - exact top-k of a factor model without scoring the whole
 * catalog, and the user vector the model scores with.
 *
 * A factor model scores item i for user vector u as u . v_i <= |u| |v_i|
 * (Cauchy-Schwarz). With the items visited by decreasing norm |v_i| (an
 * order computed once per model, rf_factors_index), a top-k scan can stop
 * as soon as |u| |v_i| falls below the k-th best score found so far: no
 * later item can enter. On the generated 100k-item shop an iALS user needs
 * about 1.4% of the items on average - but a user whose scores are flat
 * (small, nearly orthogonal to every item) needs nearly all of them.
 *
 * DESIGN: so the scan reads 8-bit copies of the item vectors first (a
 * quarter of the bytes; the scan is bound by memory bandwidth): each row
 * is stored as round(v_i / s_i) with its scale s_i and the norm of its
 * rounding error, and the user vector as 16-bit integers likewise, so an
 * integer dot product gives each item's score within a rigorous error
 * bound. Items whose upper bound falls below the k-th best lower bound are
 * out; the few left are scored exactly in float by rf_factors_score_all's
 * kernel. The bounds carry a relative margin of 1e-4 of |u| |v_i| for the
 * float rounding of the exact dot products. The result is exactly the top
 * k of the full score vector (ties by the smaller item id, masked items
 * skipped). Used by the server (GET /v1/recommend with a factor model) and
 * the fused model's factor channels. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/mem.h"

void rf_factor_index_free(rf_factor_index *ix) {
    if (!ix) return;
    rf_free(ix->perm);
    rf_free(ix->norms);
    rf_free(ix->q8);
    rf_free(ix->qscale);
    rf_free(ix->qerr);
    memset(ix, 0, sizeof *ix);
}

/* The 8-bit rows of ix (in its order): q8 = round(v / scale) with scale =
 * max |v_d| / 127, and qerr = |v - scale q8| rounded up; a row with a
 * non-finite entry gets qerr = inf (always scored exactly). */
static int quantize(rf_factor_index *ix, const rf_factors *f, rf_err *err) {
    const size_t n = (size_t)ix->n_items + 1, ld = (size_t)ix->ld;
    ix->q8 = rf_malloc_array(n, ld);
    ix->qscale = rf_malloc_array(n, sizeof *ix->qscale);
    ix->qerr = rf_malloc_array(n, sizeof *ix->qerr);
    if (!ix->q8 || !ix->qscale || !ix->qerr) {
        rf_factor_index_free(ix);
        return rf_err_set(err, RF_ENOMEM, "factor index: out of memory");
    }
    for (int32_t p = 0; p < ix->n_items; p++) {
        const float *y = f->items + (size_t)ix->perm[p] * ld;
        int8_t *q = ix->q8 + (size_t)p * ld;
        float m = 0;
        int finite = 1;
        for (size_t d = 0; d < ld; d++) {
            finite &= isfinite(y[d]) != 0;
            if (fabsf(y[d]) > m) m = fabsf(y[d]);
        }
        float sc = finite && m > 0 ? m / 127.0f : 0.0f;
        double e = 0;
        for (size_t d = 0; d < ld; d++) {
            long r = sc > 0 ? lrintf(y[d] / sc) : 0;
            q[d] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
            double diff = (double)y[d] - (double)sc * q[d];
            e += diff * diff;
        }
        ix->qscale[p] = sc;
        ix->qerr[p] = finite ? (float)(sqrt(e) * (1 + 1e-6)) + 1e-30f : INFINITY;
    }
    return 0;
}

int rf_factors_index(const rf_factors *f, rf_factor_index *ix, rf_err *err) {
    memset(ix, 0, sizeof *ix);
    const size_t n = (size_t)f->n_items + 1;
    float *nv = rf_malloc_array(n, sizeof *nv);
    rf_scored *t = rf_malloc_array(n, sizeof *t);
    int32_t *p = rf_malloc_array(n, sizeof *p);
    if (!t || !p || !nv) {
        rf_free(t);
        rf_free(p);
        rf_free(nv);
        return rf_err_set(err, RF_ENOMEM, "factor index: out of memory");
    }
    for (int32_t i = 0; i < f->n_items; i++) {
        const float *y = f->items + (size_t)i * f->ld;
        double s = 0;
        for (int d = 0; d < f->dim; d++) s += (double)y[d] * y[d];
        nv[i] = (float)sqrt(s);
        if (!(nv[i] <= INFINITY)) nv[i] = INFINITY; /* NaN: always scan it, first */
    }
    /* all items best first: decreasing norm, ties by the smaller id */
    int m = rf_topk_select(nv, f->n_items, f->n_items, NULL, t);
    for (int32_t i = 0; i < m; i++) {
        p[i] = t[i].id;
        nv[i] = t[i].score;
    }
    rf_free(t);
    *ix = (rf_factor_index){f->n_items, f->ld, p, nv, NULL, NULL, NULL};
    return quantize(ix, f, err);
}

#define BLOCK 32 /* items scored per bound check */

/* The scan in float only: every visited item scored exactly. The path of
 * a vector that cannot be quantized (not finite) or when memory is short. */
static int topk_float(const rf_factors *f, const rf_factor_index *ix, const float *vec, double nu,
                      const uint8_t *mask, int k, rf_scored *out, int64_t *scanned) {
    rf_topk t;
    rf_topk_init(&t, out, k);
    int64_t n = 0;
    float s[BLOCK];
    for (int32_t p = 0; p < ix->n_items; p += BLOCK) {
        if (t.n == t.k) {
            double bound = nu * (double)ix->norms[p];
            double kth = t.heap[0].score;
            /* every later item has a smaller norm: none can beat the k-th */
            if (bound * (1 + 1e-4) + 1e-12 < kth) break;
        }
        int32_t nb = ix->n_items - p < BLOCK ? ix->n_items - p : BLOCK;
        rf_factors_score_items(f, vec, ix->perm + p, nb, s);
        n += nb;
        for (int32_t q = 0; q < nb; q++) {
            int32_t i = ix->perm[p + q];
            if (!mask || !mask[i]) rf_topk_push(&t, i, s[q]);
        }
    }
    if (scanned) *scanned = n;
    return rf_topk_finish(&t);
}

/* ---- the 8-bit pass ----------------------------------------------------- */

/* out[r] = q8 row r . v16 for r < nrows (rows of ld int8, ld a multiple
 * of 8). Exact: every partial sum stays below 2^31 (the caller bounds |v16|
 * so that ld * 127 * max |v16_d| < 2^31). */
static void dots_portable(const int8_t *q, int32_t nrows, const int16_t *v, int ld, int32_t *out) {
    for (int32_t r = 0; r < nrows; r++, q += ld) {
        int32_t s = 0;
        for (int d = 0; d < ld; d++) s += (int32_t)q[d] * v[d];
        out[r] = s;
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_DOT 1
__attribute__((target("avx2"))) static inline int32_t hsum_i32(__m256i acc, __m128i tail) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, tail);
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) static void dots_avx2(const int8_t *q, int32_t nrows,
                                                      const int16_t *v, int ld, int32_t *out) {
    const int full = ld & ~15;
    int32_t r = 0;
    for (; r + 2 <= nrows; r += 2, q += 2 * ld) { /* two rows: two independent chains */
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        for (int d = 0; d < full; d += 16) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(v + d));
            __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + d)));
            __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + ld + d)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, b));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, b));
        }
        __m128i t0 = _mm_setzero_si128(), t1 = _mm_setzero_si128();
        if (full < ld) {
            __m128i b = _mm_loadu_si128((const __m128i *)(v + full));
            t0 = _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(q + full))), b);
            t1 = _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(q + ld + full))), b);
        }
        out[r] = hsum_i32(a0, t0);
        out[r + 1] = hsum_i32(a1, t1);
    }
    if (r < nrows) dots_portable(q, nrows - r, v, ld, out + r);
}
#else
#define HAVE_AVX2_DOT 0
#endif

typedef void (*dots_fn)(const int8_t *, int32_t, const int16_t *, int, int32_t *);

static dots_fn pick_dots(void) {
#if HAVE_AVX2_DOT
    if (__builtin_cpu_supports("avx2")) return dots_avx2;
#endif
    return dots_portable;
}

/* A candidate: its position in ix and its upper bound. */
typedef struct cand {
    int32_t p;
    float ub;
} cand;

/* Drop the candidates whose upper bound is below tau. */
static int32_t prune(cand *c, int32_t n, float tau) {
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].ub >= tau) c[m++] = c[i];
    return m;
}

int rf_factors_topk_pruned(const rf_factors *f, const rf_factor_index *ix, const float *vec,
                           const uint8_t *mask, int k, rf_scored *out, int64_t *scanned) {
    if (scanned) *scanned = 0;
    if (k <= 0) return 0;
    const int ld = ix->ld;
    double nu = 0, vmax = 0;
    for (int d = 0; d < f->dim; d++) {
        nu += (double)vec[d] * vec[d];
        if (fabs((double)vec[d]) > vmax) vmax = fabs((double)vec[d]);
    }
    nu = sqrt(nu);
    if (!ix->q8 || !isfinite(nu) || vmax == 0 || ld > 4096)
        return topk_float(f, ix, vec, nu, mask, k, out, scanned);
    /* the user vector in 16 bits: levels such that ld * 127 * L < 2^31 */
    double lv = floor(2147483647.0 / (127.0 * ld)) - 1;
    if (lv > 32767) lv = 32767;
    const double vs = vmax / lv;
    int16_t v16[4096];
    double ev = 0, n16 = 0;
    for (int d = 0; d < ld; d++) {
        double x = d < f->dim ? vec[d] : 0.0;
        long r = lrint(x / vs);
        v16[d] = (int16_t)(r > lv ? lv : r < -lv ? -lv : r);
        ev += (x - vs * v16[d]) * (x - vs * v16[d]);
        n16 += (vs * v16[d]) * (vs * v16[d]);
    }
    ev = sqrt(ev) * (1 + 1e-6);
    n16 = sqrt(n16) * (1 + 1e-6);
    int32_t cap = 2 * k + 4 * BLOCK;
    rf_scored *lbuf = rf_malloc_array((size_t)k, sizeof *lbuf);
    cand *c = rf_malloc_array((size_t)cap, sizeof *c);
    if (!lbuf || !c) {
        rf_free(lbuf);
        rf_free(c);
        return topk_float(f, ix, vec, nu, mask, k, out, scanned);
    }
    const dots_fn dots = pick_dots();
    /* lower bounds: the best k of them give tau, below which no top-k
     * item's exact score can be */
    rf_topk lo;
    rf_topk_init(&lo, lbuf, k);
    float tau = -INFINITY;
    int32_t nc = 0;
    int64_t n = 0;
    /* item p: approx = (vs qscale_p) isum, |exact - approx| <= c1 |v_p| +
     * c2 qerr_p; c1 also holds the float rounding margin (1e-4 relative
     * for the exact kernel, 1e-6 for these float sums) */
    const float c1 = (float)((ev + 1.01e-4 * nu) * (1 + 1e-6)), c2 = (float)n16, fvs = (float)vs;
    int32_t isum[BLOCK];
    for (int32_t p0 = 0; p0 < ix->n_items; p0 += BLOCK) {
        /* every later item has a smaller norm: none can reach tau */
        if (nu * (double)ix->norms[p0] * (1 + 1e-4) + 1e-12 < tau) break;
        int32_t nb = ix->n_items - p0 < BLOCK ? ix->n_items - p0 : BLOCK;
        dots(ix->q8 + (size_t)p0 * ld, nb, v16, ld, isum);
        n += nb;
        for (int32_t q = 0; q < nb; q++) {
            const int32_t p = p0 + q;
            /* a is finite (a row with a non-finite entry has scale 0) and
             * e > 0, +inf for such a row: never NaN, and such a row is
             * always scored exactly */
            float a = fvs * ix->qscale[p] * (float)isum[q];
            float e = c1 * ix->norms[p] + c2 * ix->qerr[p] + 1e-30f;
            float ub = a + e;
            if (ub < tau) continue; /* the common case once tau is set */
            int32_t i = ix->perm[p];
            if (mask && mask[i]) continue;
            float lb = a - e;
            if (rf_topk_enters(&lo, i, lb)) {
                rf_topk_insert(&lo, i, lb);
                if (lo.n == lo.k) tau = lo.heap[0].score;
            }
            if (nc == cap) {
                nc = prune(c, nc, tau);
                if (nc > cap / 2) {
                    cand *g = rf_realloc_array(c, (size_t)cap * 2, sizeof *c);
                    if (!g) {
                        rf_free(lbuf);
                        rf_free(c);
                        return topk_float(f, ix, vec, nu, mask, k, out, scanned);
                    }
                    c = g;
                    cap *= 2;
                }
            }
            c[nc++] = (cand){p, ub};
        }
    }
    nc = prune(c, nc, tau);
    /* the survivors scored exactly (score_all's kernel, row by row) */
    rf_topk t;
    rf_topk_init(&t, out, k);
    int32_t ids[BLOCK];
    float s[BLOCK];
    for (int32_t b = 0; b < nc; b += BLOCK) {
        int32_t m = nc - b < BLOCK ? nc - b : BLOCK;
        for (int32_t q = 0; q < m; q++) ids[q] = ix->perm[c[b + q].p];
        rf_factors_score_items(f, vec, ids, m, s);
        for (int32_t q = 0; q < m; q++) rf_topk_push(&t, ids[q], s[q]);
    }
    rf_free(lbuf);
    rf_free(c);
    if (scanned) *scanned = n;
    return rf_topk_finish(&t);
}

int rf_factors_user_vector(const rf_model *m, const rf_factors *f, int32_t user, const rf_hist *h,
                           float *vec, rf_err *err) {
    memset(vec, 0, (size_t)f->ld * sizeof *vec);
    const float *src = NULL;
    if (user >= 0 && user < f->n_users) src = f->users + (size_t)user * f->ld;
    int nz = 0;
    for (int d = 0; src && d < f->dim; d++) nz |= src[d] != 0.0f;
    if (nz) {
        memcpy(vec, src, (size_t)f->dim * sizeof *vec);
        return 1;
    }
    if (h->n == 0 || !m->ops->fold_in) return 0;
    int rc = m->ops->fold_in(m, h, vec, err); /* writes dim floats */
    if (rc) return rc;
    for (int d = 0; d < f->dim; d++) nz |= vec[d] != 0.0f;
    if (!nz) return 0;
    return 1;
}
