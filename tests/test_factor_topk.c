/* test_factor_topk.c - the exact pruned top-k scan of factor models
 * (factors.h, src/models/factor_topk.c): against a brute-force oracle in
 * double, bit-identical to rf_topk_select over rf_factors_score_all, and
 * its edge cases (ties, masks, k above the unmasked count, negative
 * scores, flat scores that only the 8-bit pass can prune). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/factors.h"
#include "recfuse/mem.h"
#include "recfuse/rng.h"
#include "testutil.h"

/* ---- pruned scan vs brute force ---------------------------------------- */

/* Brute force: every unmasked item's score in double, best k, ties by the
 * smaller id. */
static int brute(const rf_factors *f, const float *vec, const uint8_t *mask, int k, int32_t *ids,
                 double *sc) {
    int n = 0;
    for (int32_t i = 0; i < f->n_items; i++) {
        if (mask && mask[i]) continue;
        double s = 0;
        for (int d = 0; d < f->dim; d++) s += (double)f->items[(size_t)i * f->ld + d] * vec[d];
        /* insertion into the sorted top list */
        int pos = n < k ? n : k;
        while (pos > 0 && (sc[pos - 1] < s || (sc[pos - 1] == s && ids[pos - 1] > i))) pos--;
        if (pos >= k) continue;
        int last = n < k ? n : k - 1;
        for (int x = last; x > pos; x--) {
            sc[x] = sc[x - 1];
            ids[x] = ids[x - 1];
        }
        sc[pos] = s;
        ids[pos] = i;
        if (n < k) n++;
    }
    return n;
}

/* Items with heavy-tailed norms (like popular items in iALS), a few exact
 * duplicates (ties), a few zero rows. */
static float *random_items(rf_rng *g, int32_t n, int dim, int ld) {
    float *v = calloc((size_t)n * ld, sizeof *v);
    for (int32_t i = 0; i < n; i++) {
        double scale = 3.0 / sqrt(1.0 + i * 0.05);
        for (int d = 0; d < dim; d++) v[(size_t)i * ld + d] = (float)(rf_rng_normal(g) * scale);
    }
    for (int32_t i = 0; i < n / 50; i++) /* duplicates of earlier rows */
        memcpy(v + (size_t)(n - 1 - i) * ld, v + (size_t)(i * 7 % (n / 2)) * ld, (size_t)ld * sizeof *v);
    for (int32_t i = 0; i < n / 100; i++) memset(v + (size_t)(n / 2 + i) * ld, 0, (size_t)ld * sizeof *v);
    return v;
}

static void check_case(const rf_factors *f, const rf_factor_index *ix,
                       const float *vec, const uint8_t *mask, int k, int64_t *scanned_out) {
    rf_scored *out = malloc((size_t)k * sizeof *out);
    int32_t *ids = malloc((size_t)k * sizeof *ids);
    double *sc = malloc((size_t)k * sizeof *sc);
    int64_t scanned = 0;
    int n = rf_factors_topk_pruned(f, ix, vec, mask, k, out, &scanned);
    int nb = brute(f, vec, mask, k, ids, sc);
    assert_int_equal(n, nb);
    for (int x = 0; x < n; x++) {
        /* scores agree to float rounding; ids agree unless two scores tie
         * within that rounding */
        if (fabs((double)out[x].score - sc[x]) > 1e-4 * (1 + fabs(sc[x]))) {
            printf("rank %d: pruned %d %.9g, brute %d %.9g\n", x, out[x].id, out[x].score, ids[x], sc[x]);
            fail();
        }
        if (out[x].id != ids[x]) {
            double other = 0;
            for (int d = 0; d < f->dim; d++) other += (double)f->items[(size_t)out[x].id * f->ld + d] * vec[d];
            if (fabs(other - sc[x]) > 1e-4 * (1 + fabs(sc[x]))) {
                printf("rank %d: pruned id %d (%.9g) vs brute id %d (%.9g)\n", x, out[x].id, other, ids[x], sc[x]);
                fail();
            }
        }
    }
    *scanned_out = scanned;
    free(out);
    free(ids);
    free(sc);
}

static void test_pruned_vs_brute(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 7);
    const int32_t n_items = 3000;
    const int dims[] = {1, 5, 16, 37};
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        int dim = dims[di], ld = (dim + 7) / 8 * 8;
        float *items = random_items(&g, n_items, dim, ld);
        rf_factors f = {0, n_items, dim, ld, NULL, items};
        rf_factor_index ix;
        assert_int_equal(rf_factors_index(&f, &ix, NULL), 0);
        for (int32_t p = 1; p < n_items; p++) assert_true(ix.norms[p - 1] >= ix.norms[p]);
        for (int32_t p = 0; p < n_items; p++) { /* 8-bit rows in norm order, error bounded */
            const float *y = items + (size_t)ix.perm[p] * ld;
            double e = 0;
            for (int d = 0; d < ld; d++) {
                double diff = (double)y[d] - (double)ix.qscale[p] * ix.q8[(size_t)p * ld + d];
                e += diff * diff;
            }
            assert_true(sqrt(e) <= ix.qerr[p]);
            assert_true(ix.qerr[p] <= 0.01 * ix.norms[p] + 1e-6);
        }
        uint8_t *mask = calloc((size_t)n_items, 1);
        float vec[40] = {0};
        int64_t total_scanned = 0, cases = 0;
        for (int trial = 0; trial < 40; trial++) {
            for (int d = 0; d < dim; d++) vec[d] = (float)rf_rng_normal(&g);
            if (trial % 5 == 4)
                for (int d = 0; d < dim; d++) vec[d] = -fabsf(vec[d]) * 1e-3f; /* tiny, mostly negative scores */
            for (int32_t i = 0; i < n_items; i++) mask[i] = rf_rng_uniform(&g) < 0.1;
            const int ks[] = {1, 10, 100, n_items};
            for (size_t ki = 0; ki < 4; ki++) {
                int64_t scanned;
                check_case(&f, &ix, vec, trial % 3 ? mask : NULL, ks[ki], &scanned);
                if (ks[ki] == 10) {
                    total_scanned += scanned;
                    cases++;
                }
            }
        }
        /* the bound prunes: with skewed norms a top-10 needs far fewer
         * than all items on average (dim 1 is the degenerate case) */
        if (dim >= 5) assert_true(total_scanned < cases * (int64_t)n_items / 2);
        free(items);
        free(mask);
        rf_factor_index_free(&ix);
    }
}

static void test_pruned_edges(void **state) {
    (void)state;
    float items[4 * 8] = {0};
    items[0] = 1;      /* item 0: (1) */
    items[8] = 1;      /* item 1: (1)  - ties with 0 */
    items[16] = 2;     /* item 2: (2) */
    rf_factors f = {0, 4, 1, 8, NULL, items}; /* item 3: zero */
    rf_factor_index ix;
    assert_int_equal(rf_factors_index(&f, &ix, NULL), 0);
    float vec[8] = {1};
    rf_scored out[4];
    int n = rf_factors_topk_pruned(&f, &ix, vec, NULL, 3, out, NULL);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 2);
    assert_int_equal(out[1].id, 0); /* tie: the smaller id first */
    assert_int_equal(out[2].id, 1);
    uint8_t mask[4] = {0, 0, 1, 0};
    n = rf_factors_topk_pruned(&f, &ix, vec, mask, 4, out, NULL);
    assert_int_equal(n, 3); /* k above the unmasked count */
    assert_int_equal(out[0].id, 0);
    assert_int_equal(out[2].id, 3);
    vec[0] = -1; /* all scores <= 0: nothing may be cut */
    n = rf_factors_topk_pruned(&f, &ix, vec, NULL, 2, out, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, 3);
    assert_int_equal(out[1].id, 0);
    assert_int_equal(rf_factors_topk_pruned(&f, &ix, vec, NULL, 0, out, NULL), 0);
    rf_factor_index_free(&ix);
}

/* rf_factors_topk_pruned's top k equals rf_topk_select's over `full`
 * (rf_factors_score_all's vector): same ids, same float scores. a and b
 * are scratch of k entries. */
static void same_as_full(const rf_factors *f, const rf_factor_index *ix, const float *vec,
                         const uint8_t *mask, int k, const float *full, rf_scored *a,
                         rf_scored *b) {
    int na = rf_factors_topk_pruned(f, ix, vec, mask, k, a, NULL);
    int nb = rf_topk_select(full, f->n_items, k, mask, b);
    assert_int_equal(na, nb);
    for (int x = 0; x < na; x++) {
        assert_int_equal(a[x].id, b[x].id);
        assert_memory_equal(&a[x].score, &b[x].score, sizeof(float));
    }
}

/* The pruned scan returns exactly what rf_topk_select finds in the full
 * score vector of rf_factors_score_all: same ids, same float scores. */
static void test_pruned_equals_full(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 11);
    const int32_t n_items = 5000;
    const int dims[] = {3, 16, 64, 128};
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        int dim = dims[di], ld = (dim + 7) / 8 * 8;
        float *items = random_items(&g, n_items, dim, ld);
        rf_factors f = {0, n_items, dim, ld, NULL, items};
        rf_factor_index ix;
        assert_int_equal(rf_factors_index(&f, &ix, NULL), 0);
        float *full = malloc((size_t)n_items * sizeof *full);
        float *vec = calloc((size_t)ld, sizeof *vec);
        uint8_t *mask = calloc((size_t)n_items, 1);
        rf_scored a[200], b[200];
        for (int trial = 0; trial < 20; trial++) {
            for (int d = 0; d < dim; d++) vec[d] = (float)rf_rng_normal(&g);
            for (int32_t i = 0; i < n_items; i++) mask[i] = rf_rng_uniform(&g) < 0.05;
            rf_factors_score_all(&f, vec, full);
            const int ks[] = {1, 50, 200};
            for (int ki = 0; ki < 3; ki++) same_as_full(&f, &ix, vec, mask, ks[ki], full, a, b);
            /* rf_factors_score_items: the same floats as the full vector */
            int32_t some[3] = {0, n_items / 2, n_items - 1};
            float s3[3];
            rf_factors_score_items(&f, vec, some, 3, s3);
            for (int x = 0; x < 3; x++) assert_memory_equal(&s3[x], &full[some[x]], sizeof(float));
        }
        free(items);
        free(full);
        free(vec);
        free(mask);
        rf_factor_index_free(&ix);
    }
}

/* Flat scores - items of equal norm, a small vector nearly orthogonal to
 * them all, so the norm bound prunes nothing and the 8-bit pass must
 * decide - plus near-ties (rows differing in one low bit), exact ties
 * (duplicate rows) and a row with a NaN: still exactly rf_topk_select
 * over rf_factors_score_all. */
static void test_pruned_flat_and_ties(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 23);
    const int32_t n_items = 4000;
    const int dims[] = {8, 24, 128};
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        int dim = dims[di], ld = (dim + 7) / 8 * 8;
        float *items = calloc((size_t)n_items * ld, sizeof *items);
        for (int32_t i = 0; i < n_items; i++) {
            float *y = items + (size_t)i * ld;
            double nn = 0;
            for (int d = 0; d < dim; d++) {
                y[d] = (float)rf_rng_normal(&g);
                nn += (double)y[d] * y[d];
            }
            for (int d = 0; d < dim; d++) y[d] = (float)(y[d] / sqrt(nn)); /* unit norm */
        }
        for (int32_t i = 0; i < 40; i++) { /* exact duplicates and one-ulp neighbours */
            float *dst = items + (size_t)(n_items - 1 - i) * ld;
            memcpy(dst, items + (size_t)(i * 13) * ld, (size_t)ld * sizeof *dst);
            if (i % 2) dst[0] = nextafterf(dst[0], INFINITY);
        }
        items[(size_t)(n_items / 3) * ld + dim - 1] = NAN;
        rf_factors f = {0, n_items, dim, ld, NULL, items};
        rf_factor_index ix;
        assert_int_equal(rf_factors_index(&f, &ix, NULL), 0);
        float *full = malloc((size_t)n_items * sizeof *full);
        float *vec = calloc((size_t)ld, sizeof *vec);
        uint8_t *mask = calloc((size_t)n_items, 1);
        rf_scored a[300], b[300];
        for (int trial = 0; trial < 12; trial++) {
            double scale = trial % 3 == 0 ? 1e-6 : trial % 3 == 1 ? 1e-2 : 10;
            for (int d = 0; d < dim; d++) vec[d] = (float)(rf_rng_normal(&g) * scale);
            if (trial == 11) /* the direction of one item: a clear winner and its twins */
                for (int d = 0; d < dim; d++) vec[d] = items[(size_t)13 * ld + d];
            for (int32_t i = 0; i < n_items; i++) mask[i] = rf_rng_uniform(&g) < 0.2;
            rf_factors_score_all(&f, vec, full);
            const int ks[] = {1, 10, 300};
            for (int ki = 0; ki < 3; ki++)
                same_as_full(&f, &ix, vec, trial % 2 ? mask : NULL, ks[ki], full, a, b);
        }
        free(items);
        free(full);
        free(vec);
        free(mask);
        rf_factor_index_free(&ix);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pruned_vs_brute),
        cmocka_unit_test(test_pruned_equals_full),
        cmocka_unit_test(test_pruned_edges),
        cmocka_unit_test(test_pruned_flat_and_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
