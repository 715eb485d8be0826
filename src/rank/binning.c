/* binning.c - per-feature quantile bins for histogram-based tree growing.
 *
 * Each feature gets at most max_bins value bins whose upper bounds are
 * chosen from the sorted non-NAN values of (a seeded sample of) the
 * training rows: with few distinct values every value has its own bin
 * (bounds at midpoints), otherwise bounds are cut at equal-count
 * quantiles, never splitting a run of equal values. Bin 0 holds NAN.
 * A value v falls in the first bin b with v <= upper[b]; the last bound
 * is +INF. Because prediction compares raw floats against the same
 * bounds, "bin <= t" during training and "x <= upper[t]" at prediction
 * agree exactly.
 *
 * The binned matrix is row-major uint8 (one row's bins in one cache line
 * for up to 64 features): building the histograms of a leaf reads each of
 * its rows once for all features, where a column-major matrix would cost
 * one random access per row and feature (the leaf's rows are scattered). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"

#define RK_BIN_SAMPLE 200000

/* Sort n non-NAN floats ascending: LSD radix sort (3 passes of 11 bits)
 * of their order-preserving unsigned keys; tmp holds n uint32. */
static void sort_floats(float *v, int64_t n, uint32_t *tmp) {
    uint32_t *a = (uint32_t *)v, *b = tmp;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        a[i] = u ^ ((u >> 31) ? 0xffffffffu : 0x80000000u);
    }
    for (int shift = 0; shift < 33; shift += 11) {
        int64_t cnt[2048] = {0};
        for (int64_t i = 0; i < n; i++) cnt[(a[i] >> shift) & 2047]++;
        int64_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            int64_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) b[cnt[(a[i] >> shift) & 2047]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    /* after three passes the sorted keys are in tmp (= a) */
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = a[i];
        u ^= (u >> 31) ? 0x80000000u : 0xffffffffu;
        memcpy(&v[i], &u, 4);
    }
}

/* Bounds for sorted values v[0..m) into up[1..]; returns the bin count. */
static int make_bounds(const float *v, int64_t m, int max_bins, float *up) {
    if (m == 0) {
        up[1] = INFINITY;
        return 1;
    }
    /* distinct values and their counts, counted on the fly */
    int64_t n_dist = 1;
    for (int64_t i = 1; i < m; i++) n_dist += v[i] != v[i - 1];
    int nb = 0;
    if (n_dist <= max_bins) {
        for (int64_t i = 1; i < m; i++) {
            if (v[i] == v[i - 1]) continue;
            float lo = v[i - 1], hi = v[i];
            float mid = lo + (hi - lo) * 0.5f;
            if (!(mid >= lo && mid < hi)) mid = lo; /* rounding or overflow */
            up[++nb] = mid;
        }
    }
    else {
        /* equal-count cuts: close a bin at the end of a run of equal
         * values once it holds at least its share of the remaining rows */
        int64_t start = 0;
        int bins_left = max_bins;
        while (start < m && bins_left > 1) {
            int64_t want = (m - start + bins_left - 1) / bins_left;
            int64_t end = start + want; /* first index after the bin */
            if (end >= m) break;
            while (end < m && v[end] == v[end - 1]) end++;
            if (end >= m) break;
            float lo = v[end - 1], hi = v[end];
            float mid = lo + (hi - lo) * 0.5f;
            if (!(mid >= lo && mid < hi)) mid = lo;
            up[++nb] = mid;
            start = end;
            bins_left--;
        }
    }
    up[++nb] = INFINITY;
    return nb;
}

int rk_bin_of(const rk_bins *b, int32_t f, float v) {
    if (isnan(v)) return 0;
    /* branch-free lower bound: first bound >= v among upper[1..nb] (the
     * last is +INF, so there is one) */
    const float *base = b->upper[f] + 1;
    int n = b->nb[f];
    while (n > 1) {
        int half = n >> 1;
        base = base[half - 1] < v ? base + half : base;
        n -= half;
    }
    return (int)(base - b->upper[f]) + (*base < v);
}

void rk_bins_free(rk_bins *b) {
    if (!b) return;
    if (b->upper)
        for (int32_t f = 0; f < b->n_feats; f++) rf_free(b->upper[f]);
    rf_free(b->upper);
    rf_free(b->nb);
    rf_free(b->bin);
    memset(b, 0, sizeof *b);
}

int rk_bins_build(rk_bins *b, const float *x, int64_t n_rows, int32_t n_feats, int max_bins,
                  uint64_t seed, rf_err *err) {
    memset(b, 0, sizeof *b);
    b->n_feats = n_feats;
    b->n_rows = n_rows;
    int64_t *sample = NULL;
    int64_t m = n_rows;
    b->nb = rf_calloc((size_t)n_feats, sizeof *b->nb);
    b->upper = rf_calloc((size_t)n_feats, sizeof *b->upper);
    b->bin = rf_malloc_array((size_t)n_feats * (size_t)(n_rows ? n_rows : 1), 1);
    if (!b->nb || !b->upper || !b->bin) goto nomem;
    for (int32_t f = 0; f < n_feats; f++)
        if (!(b->upper[f] = rf_malloc_array((size_t)max_bins + 2, sizeof(float)))) goto nomem;
    if (n_rows > RK_BIN_SAMPLE) {
        /* seeded sample without replacement (selection sampling keeps row
         * order, so the sample does not depend on anything but the seed) */
        m = RK_BIN_SAMPLE;
        if (!(sample = rf_malloc_array((size_t)m, sizeof *sample))) goto nomem;
        rf_rng g;
        rf_rng_stream(&g, seed, 0xb1);
        int64_t need = m, k = 0;
        for (int64_t i = 0; i < n_rows && need > 0; i++)
            if ((int64_t)rf_rng_below(&g, (uint64_t)(n_rows - i)) < need) {
                sample[k++] = i;
                need--;
            }
    }
    int fail = 0;
#pragma omp parallel num_threads(rf_threads())
    {
        float *v = rf_malloc_array((size_t)(m ? m : 1), sizeof *v);
        uint32_t *tmp = rf_malloc_array((size_t)(m ? m : 1), sizeof *tmp);
        if (!v || !tmp) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic)
        for (int32_t f = 0; f < n_feats; f++) {
            if (!v || !tmp) continue;
            int64_t k = 0;
            for (int64_t s = 0; s < m; s++) {
                float val = x[(sample ? sample[s] : s) * n_feats + f];
                if (!isnan(val)) v[k++] = val;
            }
            sort_floats(v, k, tmp);
            b->nb[f] = make_bounds(v, k, max_bins, b->upper[f]);
        }
        rf_free(v);
        rf_free(tmp);
        if (!fail) { /* the loop above ended with a barrier: all threads agree */
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n_rows; i++)
                for (int32_t f = 0; f < n_feats; f++)
                    b->bin[i * n_feats + f] = (uint8_t)rk_bin_of(b, f, x[i * n_feats + f]);
        }
    }
    rf_free(sample);
    if (fail) goto nomem;
    return 0;
nomem:
    rf_free(sample);
    rk_bins_free(b);
    return rf_err_set(err, RF_ENOMEM, "ranker: out of memory binning %lld rows x %d features",
                      (long long)n_rows, (int)n_feats);
}
