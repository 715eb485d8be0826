/* test_coldstart.c - the feature -> latent mapper and warm start
 * (coldstart.h): on synthetic items whose vectors are W.x + noise the
 * mapper recovers W and the held-out items' vectors; users' rankings of
 * the new items by mapped vectors beat popularity (NDCG@10); the CG solve
 * matches a dense normal-equation solve; results are identical for 1 and
 * 2 threads; fill writes exactly the cold rows; warm start copies rows by
 * string id; the "coldstart" model ranks cold catalog items (no events)
 * of a user's categories above the other cold items, and round-trips
 * through save/load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/coldstart.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"
#include "testutil.h"

#define NI 400
#define NF 40
#define DIM 6
#define LD 8
#define NNEW 40 /* the last NNEW items are "new" */

typedef struct planted {
    rf_csr *x;
    float Wt[(NF + 1) * DIM]; /* true map, row NF = intercept */
    float *Vtrue;             /* NI x LD, noiseless W.x + b */
    float *V;                 /* NI x LD, with noise; new items zero */
    uint8_t warm[NI];
} planted;

static planted *planted_new(double noise) {
    planted *p = calloc(1, sizeof *p);
    rf_rng r;
    rf_rng_seed(&r, 99);
    int32_t rows[NI * 4], cols[NI * 4];
    float vals[NI * 4];
    int64_t n = 0;
    for (int i = 0; i < NI; i++) {
        int used[4];
        for (int q = 0; q < 4; q++) {
            int c, dup;
            do {
                c = (int)rf_rng_below(&r, NF);
                dup = 0;
                for (int t = 0; t < q; t++) dup |= used[t] == c;
            } while (dup);
            used[q] = c;
            rows[n] = i;
            cols[n] = c;
            vals[n++] = (float)(0.5 + rf_rng_uniform(&r));
        }
    }
    assert_int_equal(rf_csr_from_coo(NI, NF, n, rows, cols, vals, RF_FOLD_SUM, &p->x, NULL), 0);
    for (int q = 0; q < (NF + 1) * DIM; q++) p->Wt[q] = (float)rf_rng_normal(&r);
    p->Vtrue = calloc(NI * LD, sizeof(float));
    p->V = calloc(NI * LD, sizeof(float));
    for (int i = 0; i < NI; i++) {
        for (int d = 0; d < DIM; d++) p->Vtrue[i * LD + d] = p->Wt[NF * DIM + d];
        for (int64_t q = p->x->indptr[i]; q < p->x->indptr[i + 1]; q++)
            for (int d = 0; d < DIM; d++)
                p->Vtrue[i * LD + d] += p->x->data[q] * p->Wt[p->x->indices[q] * DIM + d];
        p->warm[i] = i < NI - NNEW;
        if (p->warm[i])
            for (int d = 0; d < DIM; d++)
                p->V[i * LD + d] = p->Vtrue[i * LD + d] + (float)(noise * rf_rng_normal(&r));
    }
    return p;
}

static void planted_free(planted *p) {
    rf_csr_free(p->x);
    free(p->Vtrue);
    free(p->V);
    free(p);
}

static rf_factors factors_of(const planted *p, const float *U, int32_t nu) {
    rf_factors f = {nu, NI, DIM, LD, U, p->V};
    return f;
}

static void test_recovers_planted_map(void **state) {
    planted *p = planted_new(0.05);
    rf_factors f = factors_of(p, NULL, 0);
    rf_coldstart *c;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_coldstart_fit(&f, p->x, p->warm, 1e-3, &c, &err), 0);
    assert_int_equal(c->n_warm, NI - NNEW);
    assert_int_equal(c->n_feats, NF);
    double maxw = 0;
    for (int q = 0; q < (NF + 1) * DIM; q++) maxw = fmax(maxw, fabs(c->W[q] - p->Wt[q]));
    /* new items: mapped vs true vectors */
    double num = 0, den = 0;
    float vec[DIM];
    for (int i = NI - NNEW; i < NI; i++) {
        int64_t a = p->x->indptr[i];
        rf_coldstart_item_vector(c, (int32_t)(p->x->indptr[i + 1] - a), p->x->indices + a,
                                 p->x->data + a, vec);
        for (int d = 0; d < DIM; d++) {
            num += (vec[d] - p->Vtrue[i * LD + d]) * (vec[d] - p->Vtrue[i * LD + d]);
            den += p->Vtrue[i * LD + d] * p->Vtrue[i * LD + d];
        }
    }
    printf("max |W - W_true| %.4f; new items relative error %.4f; CG steps %d\n", maxw,
           sqrt(num / den), c->iters_max);
    assert_true(maxw < 0.1);
    assert_true(sqrt(num / den) < 0.05);
    rf_coldstart_free(c);
    planted_free(p);
}

/* CG vs a dense Cholesky-free Gauss elimination of the normal equations. */
static void test_cg_matches_dense(void **state) {
    planted *p = planted_new(0.5);
    rf_factors f = factors_of(p, NULL, 0);
    rf_coldstart *c;
    const double reg = 0.7;
    assert_int_equal(rf_coldstart_fit(&f, p->x, p->warm, reg, &c, NULL), 0);
    const int n = NF + 1;
    double *A = calloc((size_t)n * (n + DIM), sizeof *A); /* augmented [A | B] */
    const int w = n + DIM;
    for (int i = 0; i < NI; i++) {
        if (!p->warm[i]) continue;
        double xr[NF + 1] = {0};
        for (int64_t q = p->x->indptr[i]; q < p->x->indptr[i + 1]; q++)
            xr[p->x->indices[q]] = p->x->data[q];
        xr[NF] = 1;
        for (int a = 0; a < n; a++) {
            if (xr[a] == 0) continue;
            for (int b = 0; b < n; b++) A[a * w + b] += xr[a] * xr[b];
            for (int d = 0; d < DIM; d++) A[a * w + n + d] += xr[a] * p->V[i * LD + d];
        }
    }
    for (int a = 0; a < n; a++) A[a * w + a] += reg;
    for (int col = 0; col < n; col++) { /* SPD: no pivoting needed */
        for (int r = col + 1; r < n; r++) {
            double m = A[r * w + col] / A[col * w + col];
            for (int t = col; t < w; t++) A[r * w + t] -= m * A[col * w + t];
        }
    }
    double maxerr = 0;
    for (int d = 0; d < DIM; d++) {
        double xs[NF + 1];
        for (int r = n - 1; r >= 0; r--) {
            double s = A[r * w + n + d];
            for (int t = r + 1; t < n; t++) s -= A[r * w + t] * xs[t];
            xs[r] = s / A[r * w + r];
            maxerr = fmax(maxerr, fabs(xs[r] - c->W[r * DIM + d]));
        }
    }
    printf("CG vs dense solve: max abs difference %.2e\n", maxerr);
    assert_true(maxerr < 1e-4);
    free(A);
    rf_coldstart_free(c);
    planted_free(p);
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const float *)a)[0], y = ((const float *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

/* NDCG@10 over users of ranking the NNEW new items by `score` (NULL:
 * popularity = 0 for all new items, ties by item id), relevant = each
 * user's 3 truly best new items. */
static double ndcg_new(const planted *p, const float *U, int nu, const float *V) {
    double tot = 0;
    for (int u = 0; u < nu; u++) {
        float tr[NNEW][2], pr[NNEW][2];
        for (int j = 0; j < NNEW; j++) {
            int i = NI - NNEW + j;
            double t = 0, s = 0;
            for (int d = 0; d < DIM; d++) {
                t += U[u * LD + d] * p->Vtrue[i * LD + d];
                if (V) s += U[u * LD + d] * V[i * LD + d];
            }
            tr[j][0] = (float)t;
            tr[j][1] = (float)j;
            pr[j][0] = V ? (float)s : (float)-j; /* pop: all 0, ties by id */
            pr[j][1] = (float)j;
        }
        qsort(tr, NNEW, sizeof tr[0], cmp_desc);
        qsort(pr, NNEW, sizeof pr[0], cmp_desc);
        int rel[NNEW] = {0};
        for (int q = 0; q < 3; q++) rel[(int)tr[q][1]] = 1;
        double dcg = 0, idcg = 0;
        for (int q = 0; q < 10; q++) {
            if (rel[(int)pr[q][1]]) dcg += 1 / log2(q + 2.0);
            if (q < 3) idcg += 1 / log2(q + 2.0);
        }
        tot += dcg / idcg;
    }
    return tot / nu;
}

static void test_new_items_beat_popularity(void **state) {
    planted *p = planted_new(0.3);
    enum { NU = 200 };
    float *U = calloc(NU * LD, sizeof *U);
    rf_rng r;
    rf_rng_seed(&r, 5);
    for (int q = 0; q < NU; q++)
        for (int d = 0; d < DIM; d++) U[q * LD + d] = (float)rf_rng_normal(&r);
    rf_factors f = factors_of(p, U, NU);
    rf_coldstart *c;
    assert_int_equal(rf_coldstart_fit(&f, p->x, p->warm, 0.1, &c, NULL), 0);
    float *V = malloc(NI * LD * sizeof *V);
    memcpy(V, p->V, NI * LD * sizeof *V);
    /* fill with cold = NULL writes exactly the all-zero (new) rows */
    assert_int_equal(rf_coldstart_fill(c, p->x, NULL, V, LD), NNEW);
    assert_memory_equal(V, p->V, (NI - NNEW) * LD * sizeof *V);
    double nm = ndcg_new(p, U, NU, V), np = ndcg_new(p, U, NU, NULL);
    printf("new items NDCG@10: mapper %.4f, popularity %.4f\n", nm, np);
    assert_true(nm > np + 0.3);
    free(V);
    free(U);
    rf_coldstart_free(c);
    planted_free(p);
}

static void test_thread_invariance_and_errors(void **state) {
    planted *p = planted_new(0.2);
    rf_factors f = factors_of(p, NULL, 0);
    rf_coldstart *a, *b;
    rf_set_threads(1);
    assert_int_equal(rf_coldstart_fit(&f, p->x, NULL, 0.5, &a, NULL), 0);
    rf_set_threads(2);
    assert_int_equal(rf_coldstart_fit(&f, p->x, NULL, 0.5, &b, NULL), 0);
    rf_set_threads(0);
    assert_int_equal(a->n_warm, NI); /* warm NULL: every item with features */
    assert_memory_equal(a->W, b->W, (NF + 1) * DIM * sizeof(float));
    rf_coldstart_free(a);
    rf_coldstart_free(b);
    rf_err err;
    rf_err_clear(&err);
    rf_coldstart *c = (rf_coldstart *)1;
    assert_int_equal(rf_coldstart_fit(&f, p->x, NULL, 0, &c, &err), RF_EINVAL);
    assert_null(c);
    uint8_t none[NI] = {0};
    assert_int_equal(rf_coldstart_fit(&f, p->x, none, 1, &c, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "no warm item"));
    f.n_items = NI - 1;
    assert_int_equal(rf_coldstart_fit(&f, p->x, NULL, 1, &c, &err), RF_EINVAL);
    planted_free(p);
}

static void test_warmstart_copy(void **state) {
    rf_idmap *src, *dst;
    assert_int_equal(rf_idmap_new(&src), 0);
    assert_int_equal(rf_idmap_new(&dst), 0);
    const char *s_ids[] = {"a", "b", "c", "d"}, *d_ids[] = {"x", "c", "a", "y", "d"};
    int32_t id;
    for (int i = 0; i < 4; i++) assert_int_equal(rf_idmap_put(src, s_ids[i], 1, &id, NULL), 0);
    for (int i = 0; i < 5; i++) assert_int_equal(rf_idmap_put(dst, d_ids[i], 1, &id, NULL), 0);
    float S[4 * 3], D[5 * 2];
    for (int q = 0; q < 12; q++) S[q] = (float)q;
    for (int q = 0; q < 10; q++) D[q] = -1;
    /* only the first 3 source rows exist (n_src 3): "d" is not copied */
    assert_int_equal(rf_warmstart_copy(src, 3, S, 3, dst, 5, D, 2, 2), 2);
    float want[10] = {-1, -1, 6, 7, 0, 1, -1, -1, -1, -1};
    assert_memory_equal(D, want, sizeof want);
    assert_int_equal(rf_warmstart_copy(src, 4, S, 3, dst, 5, D, 2, 2), 3);
    assert_true(D[8] == 9 && D[9] == 10);
    rf_idmap_free(src);
    rf_idmap_free(dst);
}

/* ---- model "coldstart" on a small planted shop -------------------------- */

#define SC 8   /* categories */
#define SPC 20 /* items per category; the last 2 have no events */
#define SU 300

static void test_model_ranks_cold_items(void **state) {
    rf_catalog *cat = rf_calloc(1, sizeof *cat);
    cat->n = SC * SPC;
    cat->items = rf_calloc((size_t)cat->n, sizeof *cat->items);
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    for (int i = 0; i < SC * SPC; i++) {
        char id[16], c[16], b[16];
        snprintf(id, sizeof id, "i%d", i);
        snprintf(c, sizeof c, "Cat%d", i / SPC);
        snprintf(b, sizeof b, "Brand%d", (i / SPC) * 2 + (i % 2));
        cat->items[i].id = rf_strdup(id);
        cat->items[i].category = rf_strdup(c);
        cat->items[i].brand = rf_strdup(b);
        cat->items[i].price = NAN;
        cat->items[i].stock = -1;
        int32_t dense;
        assert_int_equal(rf_idmap_put(ev->items, id, strlen(id), &dense, NULL), 0);
    }
    rf_rng r;
    rf_rng_seed(&r, 3);
    for (int u = 0; u < SU; u++) {
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", u);
        for (int q = 0; q < 10; q++) {
            int c = rf_rng_uniform(&r) < 0.85 ? u % SC : (int)rf_rng_below(&r, SC);
            int i = c * SPC + (int)rf_rng_below(&r, SPC - 2);
            assert_int_equal(rf_events_push_str(ev, uid, cat->items[i].id, RF_EV_PURCHASE, 1,
                                                1700000000 + q), 0);
        }
    }
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(ev, NULL, &d, NULL), 0);
    d->catalog = cat;
    rf_model *m;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_new("coldstart", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "factors=8,iterations=5,reg=1", &err), 0);
    assert_int_equal(rf_model_fit(m, d, &err), 0);
    enum { N = SC * SPC };
    float sc[N], sc2[N];
    double auc = 0;
    for (int u = 0; u < SU; u++) {
        assert_int_equal(rf_model_score_all(m, u, NULL, sc, NULL), 0);
        int64_t good = 0, pairs = 0;
        for (int a = 0; a < N; a++) {
            if (a % SPC < SPC - 2 || a / SPC != u % SC) continue;
            for (int b = 0; b < N; b++) {
                if (b % SPC < SPC - 2 || b / SPC == u % SC) continue;
                pairs++;
                good += sc[a] > sc[b];
            }
        }
        auc += (double)good / (double)pairs;
    }
    auc /= SU;
    printf("coldstart model: cold-item AUC %.3f\n", auc);
    assert_true(auc > 0.9);
    /* save / load: identical scores; user -1 ranks by popularity */
    char *dir = rf_test_tmpdir("coldstart");
    char path[512];
    snprintf(path, sizeof path, "%s/cs.model", dir);
    assert_int_equal(rf_model_save(m, path, &err), 0);
    rf_model *l;
    assert_int_equal(rf_model_load(path, &l, &err), 0);
    for (int u = -1; u < SU; u += 29) {
        assert_int_equal(rf_model_score_all(m, u, NULL, sc, NULL), 0);
        assert_int_equal(rf_model_score_all(l, u, NULL, sc2, NULL), 0);
        assert_memory_equal(sc, sc2, sizeof sc);
        if (u < 0) assert_true(sc[SPC - 1] == 0); /* cold item: popularity 0 */
    }
    rf_model_free(l);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    rf_dataset_free(d);
    rf_events_free(ev);
    rf_catalog_free(cat);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_planted_map),
        cmocka_unit_test(test_cg_matches_dense),
        cmocka_unit_test(test_new_items_beat_popularity),
        cmocka_unit_test(test_thread_invariance_and_errors),
        cmocka_unit_test(test_warmstart_copy),
        cmocka_unit_test(test_model_ranks_cold_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
