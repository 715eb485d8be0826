/* ials_kernels.c - the row solves of implicit-feedback ALS (factors.h):
 * exact (Cholesky) and conjugate gradient, the Gram matrix, and item
 * scoring from a factor vector.
 *
 * DESIGN: each algorithm is written once, as an always-inline body taking
 * its vector primitives (dot, axpy, 4-way axpy, one CG pass over the
 * observations) as function-pointer arguments, and instantiated twice:
 * with AVX2+FMA primitives inside functions compiled for that target
 * (GCC/clang target attribute), and with portable C primitives. The
 * compiler inlines the constant pointers, so each instance is
 * straight-line code with no calls. The AVX2 path is taken when the CPU
 * reports AVX2 and FMA (the build targets x86-64-v2, which has neither);
 * results differ from the portable path only by rounding (FMA, summation
 * order). Rows are padded to ld (a multiple of 8) with zeros, so vector
 * loops over ld floats need no tail.
 *
 * CG follows implicit's least_squares_cg: residual from the warm start,
 * then `steps` CG steps, each one pass over the row's observations,
 * stopping when r.r < 1e-20. A pass is memory-bound (the factor rows of a
 * row's observations are scattered over a matrix far larger than the
 * caches), so rows are prefetched RF_ALS_PREFETCH observations ahead, and
 * for ld <= 64 the AVX2 pass keeps the accumulated vector in registers and
 * takes two observations at a time (one's horizontal sum overlaps the
 * other's loads): 2.9 -> 1.9 CPU s per iteration at Protocol C size.
 *
 * The exact solve builds the upper triangle of A = s G + reg I +
 * sum cm1_i y_i y_i^T four observations at a time (one load/store of each
 * row of A per four rank-one updates), factors it in place (right-looking
 * Cholesky on the upper triangle, four pivot rows at a time so the
 * trailing rows take four rank-one updates per pass) and solves the two
 * triangular systems. At 64 factors this beats ssyrk + LAPACKE spotrf/
 * spotrs on the same problem (6.4 vs 8.7 us for 10 observations, 15 vs
 * 17 us for 100); at 128 factors with 1,000 observations OpenBLAS's
 * blocked kernels win (360 vs 410 us), a case only the exact reference
 * solver meets (docs/models-ials-ease.md). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define RF_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define RF_AVX2 __attribute__((target("avx2,fma")))
#define RF_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define RF_HAVE_AVX2_PATH 0
#endif

#define RF_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Observations ahead whose factor rows are prefetched: the rows are
 * scattered over a matrix far larger than the caches, and a row costs a
 * few dozen cycles of arithmetic against a few hundred of memory latency. */
#ifndef RF_ALS_PREFETCH
#define RF_ALS_PREFETCH 16
#endif

static inline void prefetch_row(const float *row, int ld) {
    for (int k = 0; k < ld; k += 16) __builtin_prefetch(row + k, 0, 3);
}

/* ---- kernel selection ---------------------------------------------------- */

static atomic_int g_simd = -2; /* -2 undecided, else the level in use */

/* The best level the CPU supports, at most `want` (RF_ALS_SIMD_AUTO: no cap). */
static int detect_simd(int want) {
    int have = RF_ALS_SIMD_PORTABLE;
#if RF_HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        have = RF_ALS_SIMD_AVX2;
        if (__builtin_cpu_supports("avx512f")) have = RF_ALS_SIMD_AVX512;
    }
#endif
    return want >= 0 && want < have ? want : have;
}

static int simd_level(void) {
    int s = atomic_load_explicit(&g_simd, memory_order_relaxed);
    if (s < 0) {
        const char *e = getenv("RECFUSE_SIMD");
        int want = RF_ALS_SIMD_AUTO;
        if (e && strcmp(e, "portable") == 0) want = RF_ALS_SIMD_PORTABLE;
        if (e && strcmp(e, "avx2") == 0) want = RF_ALS_SIMD_AVX2;
        s = detect_simd(want);
        atomic_store_explicit(&g_simd, s, memory_order_relaxed);
    }
    return s;
}

const char *rf_als_simd(void) {
    int s = simd_level();
    return s == RF_ALS_SIMD_AVX512 ? "avx512" : s == RF_ALS_SIMD_AVX2 ? "avx2" : "portable";
}

void rf_als_set_simd(int level) { atomic_store(&g_simd, detect_simd(level)); }

size_t rf_als_work_floats(int ld) { return (size_t)ld * (size_t)ld + 4 * (size_t)ld; }

/* ---- primitives ------------------------------------------------------------ */

typedef float (*dot_fn)(const float *a, const float *b, int n);
/* y[0..n) += s * x[0..n) */
typedef void (*axpy_fn)(float s, const float *x, float *y, int n);
/* y[0..n) += s0 x0 + s1 x1 + s2 x2 + s3 x3 (vector versions: n a multiple of 8) */
typedef void (*axpy4_fn)(float s0, const float *x0, float s1, const float *x1, float s2,
                         const float *x2, float s3, const float *x3, float *y, int n);
/* One pass of CG over a row's observations:
 *   out[0..ld) += sum_t coef_t y_t,  coef_t = c_t - w_t (y_t.v)  (mode 0: residual)
 *                                     coef_t = w_t (y_t.v)        (mode 1: A d)
 * with w_t = cm1[t] and c_t = conf[t] (1 + cm1[t] without conf). */
typedef void (*pass_fn)(const rf_als_row *p, const float *v, float *out, int mode);

static inline float dot_c(const float *a, const float *b, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; k++) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

static inline void axpy_c(float s, const float *restrict x, float *restrict y, int n) {
    for (int k = 0; k < n; k++) y[k] += s * x[k];
}

static inline void axpy4_c(float s0, const float *x0, float s1, const float *x1, float s2,
                           const float *x2, float s3, const float *x3, float *y, int n) {
    for (int k = 0; k < n; k++) y[k] += s0 * x0[k] + s1 * x1[k] + s2 * x2[k] + s3 * x3[k];
}

static void pass_c(const rf_als_row *p, const float *v, float *out, int mode) {
    const int ld = p->ld;
    for (int32_t t = 0; t < p->n; t++) {
        if (t + RF_ALS_PREFETCH < p->n)
            prefetch_row(p->Y + (size_t)p->idx[t + RF_ALS_PREFETCH] * ld, ld);
        const float *y = p->Y + (size_t)p->idx[t] * ld;
        float w = p->cm1[t], d = dot_c(y, v, ld), c = p->conf ? p->conf[t] : 1.0f + w;
        axpy_c(mode ? w * d : c - w * d, y, out, ld);
    }
}

#if RF_HAVE_AVX2_PATH
RF_AVX2 static inline float hsum_v(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

RF_AVX2 static inline float dot_v(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
    }
    if (k + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
        k += 8;
    }
    float s = hsum_v(_mm256_add_ps(s0, s1));
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

RF_AVX2 static inline void axpy_v(float s, const float *x, float *y, int n) {
    __m256 sv = _mm256_set1_ps(s);
    int k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(y + k,
                         _mm256_fmadd_ps(sv, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
    for (; k < n; k++) y[k] += s * x[k];
}

RF_AVX2 static inline void axpy4_v(float s0, const float *x0, float s1, const float *x1, float s2,
                                   const float *x2, float s3, const float *x3, float *y, int n) {
    __m256 a0 = _mm256_set1_ps(s0), a1 = _mm256_set1_ps(s1), a2 = _mm256_set1_ps(s2),
           a3 = _mm256_set1_ps(s3);
    for (int k = 0; k < n; k += 8) {
        __m256 acc = _mm256_loadu_ps(y + k);
        acc = _mm256_fmadd_ps(a0, _mm256_loadu_ps(x0 + k), acc);
        acc = _mm256_fmadd_ps(a1, _mm256_loadu_ps(x1 + k), acc);
        acc = _mm256_fmadd_ps(a2, _mm256_loadu_ps(x2 + k), acc);
        acc = _mm256_fmadd_ps(a3, _mm256_loadu_ps(x3 + k), acc);
        _mm256_storeu_ps(y + k, acc);
    }
}

/* pass_fn for rows of exactly 8 * NV floats: the accumulated vector stays
 * in registers across the observations, which are taken two at a time so
 * that one's horizontal sum overlaps the other's loads. */
RF_AVX2 RF_ALWAYS_INLINE void pass_fixed_v(const rf_als_row *p, const float *v, float *out,
                                           int mode, const int NV) {
    const int ld = 8 * NV;
    const float *Y = p->Y;
    const int32_t *idx = p->idx;
    const float *cm1 = p->cm1, *conf = p->conf;
    const int32_t n = p->n;
    __m256 acc[NV];
#pragma GCC unroll 16
    for (int k = 0; k < NV; k++) acc[k] = _mm256_loadu_ps(out + 8 * k);
    int32_t t = 0;
    for (; t + 2 <= n; t += 2) {
        if (t + RF_ALS_PREFETCH + 1 < n) {
            prefetch_row(Y + (size_t)idx[t + RF_ALS_PREFETCH] * ld, ld);
            prefetch_row(Y + (size_t)idx[t + RF_ALS_PREFETCH + 1] * ld, ld);
        }
        const float *y0 = Y + (size_t)idx[t] * ld, *y1 = Y + (size_t)idx[t + 1] * ld;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++) {
            __m256 vk = _mm256_loadu_ps(v + 8 * k);
            if (k & 1) {
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(y0 + 8 * k), vk, s1);
                q1 = _mm256_fmadd_ps(_mm256_loadu_ps(y1 + 8 * k), vk, q1);
            } else {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(y0 + 8 * k), vk, s0);
                q0 = _mm256_fmadd_ps(_mm256_loadu_ps(y1 + 8 * k), vk, q0);
            }
        }
        float d0 = hsum_v(_mm256_add_ps(s0, s1)), d1 = hsum_v(_mm256_add_ps(q0, q1));
        float w0 = cm1[t], w1 = cm1[t + 1];
        float b0 = conf ? conf[t] : 1.0f + w0, b1 = conf ? conf[t + 1] : 1.0f + w1;
        __m256 c0 = _mm256_set1_ps(mode ? w0 * d0 : b0 - w0 * d0);
        __m256 c1 = _mm256_set1_ps(mode ? w1 * d1 : b1 - w1 * d1);
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++) {
            acc[k] = _mm256_fmadd_ps(c0, _mm256_loadu_ps(y0 + 8 * k), acc[k]);
            acc[k] = _mm256_fmadd_ps(c1, _mm256_loadu_ps(y1 + 8 * k), acc[k]);
        }
    }
    for (; t < n; t++) {
        const float *y = Y + (size_t)idx[t] * ld;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++) {
            if (k & 1)
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 8 * k), _mm256_loadu_ps(v + 8 * k), s1);
            else
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 8 * k), _mm256_loadu_ps(v + 8 * k), s0);
        }
        float d = hsum_v(_mm256_add_ps(s0, s1)), w = cm1[t], b = conf ? conf[t] : 1.0f + w;
        __m256 c = _mm256_set1_ps(mode ? w * d : b - w * d);
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++)
            acc[k] = _mm256_fmadd_ps(c, _mm256_loadu_ps(y + 8 * k), acc[k]);
    }
#pragma GCC unroll 16
    for (int k = 0; k < NV; k++) _mm256_storeu_ps(out + 8 * k, acc[k]);
}

RF_AVX2 static void pass_v(const rf_als_row *p, const float *v, float *out, int mode) {
    switch (p->ld) {
    case 8: pass_fixed_v(p, v, out, mode, 1); return;
    case 16: pass_fixed_v(p, v, out, mode, 2); return;
    case 24: pass_fixed_v(p, v, out, mode, 3); return;
    case 32: pass_fixed_v(p, v, out, mode, 4); return;
    case 40: pass_fixed_v(p, v, out, mode, 5); return;
    case 48: pass_fixed_v(p, v, out, mode, 6); return;
    case 56: pass_fixed_v(p, v, out, mode, 7); return;
    case 64: pass_fixed_v(p, v, out, mode, 8); return;
    default: break;
    }
    const int ld = p->ld;
    for (int32_t t = 0; t < p->n; t++) {
        if (t + RF_ALS_PREFETCH < p->n)
            prefetch_row(p->Y + (size_t)p->idx[t + RF_ALS_PREFETCH] * ld, ld);
        const float *y = p->Y + (size_t)p->idx[t] * ld;
        float w = p->cm1[t], d = dot_v(y, v, ld), c = p->conf ? p->conf[t] : 1.0f + w;
        axpy_v(mode ? w * d : c - w * d, y, out, ld);
    }
}
#endif

#if RF_HAVE_AVX2_PATH
/* pass_fn with AVX-512 for rows of exactly 16 * NV floats: the
 * accumulated vector and v both stay in registers (32 of them), two
 * observations at a time. */
RF_AVX512 RF_ALWAYS_INLINE void pass_fixed_w(const rf_als_row *p, const float *v, float *out,
                                             int mode, const int NV) {
    const int ld = 16 * NV;
    const float *Y = p->Y;
    const int32_t *idx = p->idx;
    const float *cm1 = p->cm1, *conf = p->conf;
    const int32_t n = p->n;
    __m512 acc[NV], vv[NV];
#pragma GCC unroll 16
    for (int k = 0; k < NV; k++) {
        acc[k] = _mm512_loadu_ps(out + 16 * k);
        vv[k] = _mm512_loadu_ps(v + 16 * k);
    }
    int32_t t = 0;
    for (; t + 2 <= n; t += 2) {
        if (t + RF_ALS_PREFETCH + 1 < n) {
            prefetch_row(Y + (size_t)idx[t + RF_ALS_PREFETCH] * ld, ld);
            prefetch_row(Y + (size_t)idx[t + RF_ALS_PREFETCH + 1] * ld, ld);
        }
        const float *y0 = Y + (size_t)idx[t] * ld, *y1 = Y + (size_t)idx[t + 1] * ld;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++) {
            if (k & 1) {
                s1 = _mm512_fmadd_ps(_mm512_loadu_ps(y0 + 16 * k), vv[k], s1);
                q1 = _mm512_fmadd_ps(_mm512_loadu_ps(y1 + 16 * k), vv[k], q1);
            } else {
                s0 = _mm512_fmadd_ps(_mm512_loadu_ps(y0 + 16 * k), vv[k], s0);
                q0 = _mm512_fmadd_ps(_mm512_loadu_ps(y1 + 16 * k), vv[k], q0);
            }
        }
        float d0 = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        float d1 = _mm512_reduce_add_ps(_mm512_add_ps(q0, q1));
        float w0 = cm1[t], w1 = cm1[t + 1];
        float b0 = conf ? conf[t] : 1.0f + w0, b1 = conf ? conf[t + 1] : 1.0f + w1;
        __m512 c0 = _mm512_set1_ps(mode ? w0 * d0 : b0 - w0 * d0);
        __m512 c1 = _mm512_set1_ps(mode ? w1 * d1 : b1 - w1 * d1);
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++) {
            acc[k] = _mm512_fmadd_ps(c0, _mm512_loadu_ps(y0 + 16 * k), acc[k]);
            acc[k] = _mm512_fmadd_ps(c1, _mm512_loadu_ps(y1 + 16 * k), acc[k]);
        }
    }
    for (; t < n; t++) {
        const float *y = Y + (size_t)idx[t] * ld;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++) {
            if (k & 1)
                s1 = _mm512_fmadd_ps(_mm512_loadu_ps(y + 16 * k), vv[k], s1);
            else
                s0 = _mm512_fmadd_ps(_mm512_loadu_ps(y + 16 * k), vv[k], s0);
        }
        float d = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)), w = cm1[t];
        float b = conf ? conf[t] : 1.0f + w;
        __m512 c = _mm512_set1_ps(mode ? w * d : b - w * d);
#pragma GCC unroll 16
        for (int k = 0; k < NV; k++)
            acc[k] = _mm512_fmadd_ps(c, _mm512_loadu_ps(y + 16 * k), acc[k]);
    }
#pragma GCC unroll 16
    for (int k = 0; k < NV; k++) _mm512_storeu_ps(out + 16 * k, acc[k]);
}

RF_AVX512 static void pass_w(const rf_als_row *p, const float *v, float *out, int mode) {
    switch (p->ld) {
    case 16: pass_fixed_w(p, v, out, mode, 1); return;
    case 32: pass_fixed_w(p, v, out, mode, 2); return;
    case 48: pass_fixed_w(p, v, out, mode, 3); return;
    case 64: pass_fixed_w(p, v, out, mode, 4); return;
    case 80: pass_fixed_w(p, v, out, mode, 5); return;
    case 96: pass_fixed_w(p, v, out, mode, 6); return;
    case 112: pass_fixed_w(p, v, out, mode, 7); return;
    case 128: pass_fixed_w(p, v, out, mode, 8); return;
    default: pass_v(p, v, out, mode); return;
    }
}
#endif

/* ---- algorithms, written once ------------------------------------------------ */

/* out[0..ld) = G x over the first dim rows of G (x is zero beyond dim). */
RF_ALWAYS_INLINE void symv_body(const float *G, const float *x, float *out, int dim, int ld,
                                axpy4_fn axpy4, axpy_fn axpy) {
    memset(out, 0, (size_t)ld * sizeof *out);
    int k = 0;
    for (; k + 4 <= dim; k += 4)
        axpy4(x[k], G + (size_t)k * ld, x[k + 1], G + (size_t)(k + 1) * ld, x[k + 2],
              G + (size_t)(k + 2) * ld, x[k + 3], G + (size_t)(k + 3) * ld, out, ld);
    for (; k < dim; k++) axpy(x[k], G + (size_t)k * ld, out, ld);
}

RF_ALWAYS_INLINE void cg_body(const rf_als_row *p, int steps, float *x, float *work, dot_fn dot,
                              axpy_fn axpy, axpy4_fn axpy4, pass_fn pass) {
    const int ld = p->ld, dim = p->dim;
    const float reg = (float)p->reg, gs = p->gram_scale;
    float *r = work, *d = work + ld, *Ad = work + 2 * ld;
    int any_w = 0; /* all cm1 = 0: the A d passes add nothing */
    for (int32_t t = 0; t < p->n && !any_w; t++) any_w = p->cm1[t] != 0.0f;
    /* r = b - A x = sum c_i y_i - (s G + reg) x - sum cm1_i (y_i.x) y_i */
    symv_body(p->gram, x, r, dim, ld, axpy4, axpy);
    for (int k = 0; k < ld; k++) r[k] = -gs * r[k] - reg * x[k];
    pass(p, x, r, 0);
    memcpy(d, r, (size_t)ld * sizeof *d);
    float rs = dot(r, r, ld);
    for (int s = 0; s < steps && rs >= 1e-20f; s++) {
        symv_body(p->gram, d, Ad, dim, ld, axpy4, axpy);
        for (int k = 0; k < ld; k++) Ad[k] = gs * Ad[k] + reg * d[k];
        if (any_w) pass(p, d, Ad, 1);
        float dAd = dot(d, Ad, ld);
        if (!(dAd > 0)) break;
        float a = rs / dAd;
        axpy(a, d, x, ld);
        axpy(-a, Ad, r, ld);
        float rs_new = dot(r, r, ld);
        if (rs_new < 1e-20f) break;
        float beta = rs_new / rs;
        for (int k = 0; k < ld; k++) d[k] = r[k] + beta * d[k];
        rs = rs_new;
    }
}

RF_ALWAYS_INLINE int exact_body(const rf_als_row *p, float *x, float *work, dot_fn dot,
                                axpy_fn axpy, axpy4_fn axpy4) {
    const int ld = p->ld, n = p->dim;
    const float *Y = p->Y;
    float *A = work, *b = work + (size_t)ld * ld;
    /* Upper triangle of A = s G + reg I (rows of ld floats, columns >= dim
     * zero); b = 0. Row r is touched from column r & ~7 on, so every
     * vector operation starts on a multiple of 8 and runs to ld; the few
     * entries left of the diagonal that this touches are never read. */
    const float gs = p->gram_scale;
    for (int r = 0; r < n; r++) {
        int c0 = r & ~7;
        const float *g = p->gram + (size_t)r * ld;
        float *a = A + (size_t)r * ld;
        for (int k = c0; k < ld; k++) a[k] = gs * g[k];
        a[r] += (float)p->reg;
    }
    memset(b, 0, (size_t)ld * sizeof *b);
    int32_t t = 0;
    for (; t + 4 <= p->n; t += 4) {
        for (int q = 0; q < 4 && t + q + RF_ALS_PREFETCH < p->n; q++)
            prefetch_row(Y + (size_t)p->idx[t + q + RF_ALS_PREFETCH] * ld, ld);
        const float *y0 = Y + (size_t)p->idx[t] * ld, *y1 = Y + (size_t)p->idx[t + 1] * ld,
                    *y2 = Y + (size_t)p->idx[t + 2] * ld, *y3 = Y + (size_t)p->idx[t + 3] * ld;
        float w0 = p->cm1[t], w1 = p->cm1[t + 1], w2 = p->cm1[t + 2], w3 = p->cm1[t + 3];
        float b0 = p->conf ? p->conf[t] : 1 + w0, b1 = p->conf ? p->conf[t + 1] : 1 + w1;
        float b2 = p->conf ? p->conf[t + 2] : 1 + w2, b3 = p->conf ? p->conf[t + 3] : 1 + w3;
        for (int r = 0; r < n; r++) {
            int c0 = r & ~7;
            axpy4(w0 * y0[r], y0 + c0, w1 * y1[r], y1 + c0, w2 * y2[r], y2 + c0, w3 * y3[r],
                  y3 + c0, A + (size_t)r * ld + c0, ld - c0);
        }
        axpy4(b0, y0, b1, y1, b2, y2, b3, y3, b, ld);
    }
    for (; t < p->n; t++) {
        const float *y = Y + (size_t)p->idx[t] * ld;
        float w = p->cm1[t];
        for (int r = 0; r < n; r++) {
            int c0 = r & ~7;
            axpy(w * y[r], y + c0, A + (size_t)r * ld + c0, ld - c0);
        }
        axpy(p->conf ? p->conf[t] : 1 + w, y, b, ld);
    }
    /* A = U^T U, right-looking, in place on the upper triangle, four
     * pivot rows at a time: the four rows are factored among themselves
     * (row j of U is row j of A over its pivot, and the rows after it in
     * the block take A_i[i..] -= U_ji U_j[i..]), then every trailing row
     * takes the four rank-one updates in one pass (axpy4). */
    for (int j0 = 0; j0 < n; j0 += 4) {
        int j1 = j0 + 4 < n ? j0 + 4 : n;
        for (int j = j0; j < j1; j++) {
            float *Uj = A + (size_t)j * ld;
            float s = Uj[j];
            if (!(s > 0) || !isfinite(s)) return RF_ERANGE;
            float dj = sqrtf(s), inv = 1.0f / dj;
            for (int k = j + 1; k < ld; k++) Uj[k] *= inv;
            Uj[j] = dj;
            for (int i = j + 1; i < j1; i++) {
                int c0 = i & ~7;
                axpy(-Uj[i], Uj + c0, A + (size_t)i * ld + c0, ld - c0);
            }
        }
        if (j1 - j0 == 4) {
            const float *U0 = A + (size_t)j0 * ld, *U1 = U0 + ld, *U2 = U1 + ld, *U3 = U2 + ld;
            for (int i = j1; i < n; i++) {
                int c0 = i & ~7;
                axpy4(-U0[i], U0 + c0, -U1[i], U1 + c0, -U2[i], U2 + c0, -U3[i], U3 + c0,
                      A + (size_t)i * ld + c0, ld - c0);
            }
        } else {
            for (int j = j0; j < j1; j++) {
                const float *Uj = A + (size_t)j * ld;
                for (int i = j1; i < n; i++) {
                    int c0 = i & ~7;
                    axpy(-Uj[i], Uj + c0, A + (size_t)i * ld + c0, ld - c0);
                }
            }
        }
    }
    /* U^T z = b (z over b, column sweep as row axpys), then U x = z (row dots). */
    for (int k = 0; k < n; k++) {
        const float *Uk = A + (size_t)k * ld;
        b[k] /= Uk[k];
        axpy(-b[k], Uk + k + 1, b + k + 1, n - k - 1);
    }
    for (int i = n - 1; i >= 0; i--) {
        const float *Ui = A + (size_t)i * ld;
        b[i] = (b[i] - dot(Ui + i + 1, b + i + 1, n - i - 1)) / Ui[i];
    }
    for (int k = 0; k < n; k++)
        if (!isfinite(b[k])) return RF_ERANGE;
    memcpy(x, b, (size_t)n * sizeof *x);
    for (int k = n; k < ld; k++) x[k] = 0;
    return 0;
}

/* ---- instances ---------------------------------------------------------------- */

static void cg_portable(const rf_als_row *p, int steps, float *x, float *work) {
    cg_body(p, steps, x, work, dot_c, axpy_c, axpy4_c, pass_c);
}
static int exact_portable(const rf_als_row *p, float *x, float *work) {
    return exact_body(p, x, work, dot_c, axpy_c, axpy4_c);
}
static void scores_portable(const float *V, int32_t n, int ld, const float *vec, float *out) {
    for (int32_t i = 0; i < n; i++) out[i] = dot_c(V + (size_t)i * ld, vec, ld);
}

#if RF_HAVE_AVX2_PATH
RF_AVX2 static void cg_avx2(const rf_als_row *p, int steps, float *x, float *work) {
    cg_body(p, steps, x, work, dot_v, axpy_v, axpy4_v, pass_v);
}
RF_AVX2 static int exact_avx2(const rf_als_row *p, float *x, float *work) {
    return exact_body(p, x, work, dot_v, axpy_v, axpy4_v);
}
RF_AVX512 static void cg_avx512(const rf_als_row *p, int steps, float *x, float *work) {
    cg_body(p, steps, x, work, dot_v, axpy_v, axpy4_v, pass_w);
}
RF_AVX2 static void scores_avx2(const float *V, int32_t n, int ld, const float *vec, float *out) {
    for (int32_t i = 0; i < n; i++) out[i] = dot_v(V + (size_t)i * ld, vec, ld);
}
#endif

int rf_als_solve_exact(const rf_als_row *p, float *x, float *work) {
#if RF_HAVE_AVX2_PATH
    if (simd_level() >= RF_ALS_SIMD_AVX2) return exact_avx2(p, x, work);
#endif
    return exact_portable(p, x, work);
}

void rf_als_solve_cg(const rf_als_row *p, int steps, float *x, float *work) {
#if RF_HAVE_AVX2_PATH
    int level = simd_level();
    if (level >= RF_ALS_SIMD_AVX512) {
        cg_avx512(p, steps, x, work);
        return;
    }
    if (level >= RF_ALS_SIMD_AVX2) {
        cg_avx2(p, steps, x, work);
        return;
    }
#endif
    cg_portable(p, steps, x, work);
}

void rf_factors_score_all(const rf_factors *f, const float *vec, float *out) {
    /* vec has dim floats; the rows have ld: pad a copy when they differ. */
    float buf[256];
    const float *v = vec;
    float *heap = NULL;
    if (f->ld != f->dim) {
        float *t = buf;
        if (f->ld > (int)(sizeof buf / sizeof *buf)) {
            heap = rf_malloc_array((size_t)f->ld, sizeof *heap);
            t = heap;
        }
        if (!t) { /* cannot pad: plain loop over dim */
            for (int32_t i = 0; i < f->n_items; i++) {
                const float *y = f->items + (size_t)i * f->ld;
                float s = 0;
                for (int k = 0; k < f->dim; k++) s += y[k] * vec[k];
                out[i] = s;
            }
            return;
        }
        memcpy(t, vec, (size_t)f->dim * sizeof *t);
        for (int k = f->dim; k < f->ld; k++) t[k] = 0;
        v = t;
    }
#if RF_HAVE_AVX2_PATH
    if (simd_level() >= RF_ALS_SIMD_AVX2)
        scores_avx2(f->items, f->n_items, f->ld, v, out);
    else
#endif
        scores_portable(f->items, f->n_items, f->ld, v, out);
    rf_free(heap);
}

#if RF_HAVE_AVX2_PATH
RF_AVX2 static void pick_avx2(const float *V, int ld, const float *vec, const int32_t *items,
                              int32_t n, float *out) {
    for (int32_t t = 0; t < n; t++) out[t] = dot_v(V + (size_t)items[t] * ld, vec, ld);
}
#endif

void rf_factors_score_items(const rf_factors *f, const float *vec, const int32_t *items,
                            int32_t n, float *out) {
    /* the kernels of rf_factors_score_all, row by row: the same floats */
#if RF_HAVE_AVX2_PATH
    if (simd_level() >= RF_ALS_SIMD_AVX2) {
        pick_avx2(f->items, f->ld, vec, items, n, out);
        return;
    }
#endif
    for (int32_t t = 0; t < n; t++) out[t] = dot_c(f->items + (size_t)items[t] * f->ld, vec, f->ld);
}

/* ---- Gram matrix ------------------------------------------------------------------ */

int rf_als_gram(const float *Y, int32_t rows, int ld, const float *w, float *gram, rf_err *err) {
    const size_t ld2 = (size_t)ld * (size_t)ld;
    /* Fixed chunks (independent of the thread count); at most ~64 MB of
     * partial sums. */
    int64_t chunk = 4096, nc = rows > 0 ? (rows + chunk - 1) / chunk : 0;
    while (nc > 1 && (size_t)nc * ld2 > ((size_t)16 << 20)) {
        chunk *= 2;
        nc = (rows + chunk - 1) / chunk;
    }
    if (nc == 0) {
        memset(gram, 0, ld2 * sizeof *gram);
        return 0;
    }
    const int nth = rf_threads();
    float *part = rf_malloc_array((size_t)nc * ld2, sizeof *part);
    double *acc = rf_calloc(ld2, sizeof *acc);
    /* weighted: each thread scales its chunk's rows by sqrt(w) first */
    float *scaled = w ? rf_malloc_array((size_t)nth * (size_t)chunk * ld, sizeof *scaled) : NULL;
    if (!part || !acc || (w && !scaled)) {
        rf_free(part);
        rf_free(acc);
        rf_free(scaled);
        return rf_err_set(err, RF_ENOMEM, "gram: out of memory (%d x %d)", ld, ld);
    }
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * chunk, hi = lo + chunk < rows ? lo + chunk : rows;
        const float *src = Y + (size_t)lo * ld;
        if (w) {
            float *dst = scaled + (size_t)rf_thread_id() * (size_t)chunk * ld;
            for (int64_t i = lo; i < hi; i++) {
                float s = sqrtf(w[i] > 0 ? w[i] : 0);
                for (int k = 0; k < ld; k++)
                    dst[(size_t)(i - lo) * ld + k] = s * Y[(size_t)i * ld + k];
            }
            src = dst;
        }
        cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, ld, (int)(hi - lo), 1.0f, src, ld, 0.0f,
                    part + (size_t)c * ld2, ld);
    }
    if (saved != 1) openblas_set_num_threads(saved);
    for (int64_t c = 0; c < nc; c++) {
        const float *pc = part + (size_t)c * ld2;
        for (int r = 0; r < ld; r++)
            for (int k = 0; k <= r; k++) acc[(size_t)r * ld + k] += pc[(size_t)r * ld + k];
    }
    for (int r = 0; r < ld; r++)
        for (int k = 0; k <= r; k++)
            gram[(size_t)r * ld + k] = gram[(size_t)k * ld + r] = (float)acc[(size_t)r * ld + k];
    rf_free(part);
    rf_free(acc);
    rf_free(scaled);
    return 0;
}
