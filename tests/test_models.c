/* test_models.c - the model interface, pop/trending and itemknn.
 *
 * Datasets are built by hand (rf_csr_from_coo + rf_csr_transpose and
 * idmaps "u0", "i0", ...) so these tests depend only on core and models.
 * Oracles: dense brute-force cosine kNN and scoring, hand-computed
 * popularity and decay. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recfuse/error.h"
#include "recfuse/itemknn.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

/* ---- fixtures -------------------------------------------------------- */

typedef struct fixture {
    rf_dataset d;
    rf_idmap *users, *items;
} fixture;

/* Build a dataset from coordinates (ts in seconds, may be NULL). */
static fixture *fx_from_coo(int32_t nu, int32_t ni, int64_t n, const int32_t *r, const int32_t *c,
                            const float *v, const int64_t *ts) {
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(rf_idmap_new(&f->users), 0);
    assert_int_equal(rf_idmap_new(&f->items), 0);
    char buf[32];
    for (int32_t u = 0; u < nu; u++) {
        int32_t id;
        snprintf(buf, sizeof buf, "u%d", u);
        assert_int_equal(rf_idmap_put(f->users, buf, strlen(buf), &id, NULL), 0);
    }
    for (int32_t i = 0; i < ni; i++) {
        int32_t id;
        snprintf(buf, sizeof buf, "i%d", i);
        assert_int_equal(rf_idmap_put(f->items, buf, strlen(buf), &id, NULL), 0);
    }
    int64_t *perm = NULL;
    assert_int_equal(rf_csr_from_coo(nu, ni, n, r, c, v, RF_FOLD_SUM, &f->d.ui, &perm), 0);
    assert_int_equal(rf_csr_transpose(f->d.ui, &f->d.iu), 0);
    f->d.n_users = nu;
    f->d.n_items = ni;
    f->d.users = f->users;
    f->d.items = f->items;
    int64_t lo = INT64_MAX, hi = 0;
    for (int64_t x = 0; x < n; x++) {
        int64_t t = ts ? ts[x] : 1000;
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    if (n == 0) lo = hi = 0;
    f->d.ts_base = lo;
    f->d.ts_max = hi;
    f->d.ui_ts = calloc((size_t)(f->d.ui->nnz ? f->d.ui->nnz : 1), sizeof *f->d.ui_ts);
    for (int64_t x = 0; x < f->d.ui->nnz; x++)
        f->d.ui_ts[x] = (uint32_t)((ts ? ts[perm[x]] : 1000) - lo);
    rf_free(perm);
    return f;
}

/* Random users x items matrix with the given density; weights in
 * [0.5, 3) or all 1 (binary); timestamps spread over 60 days. */
static fixture *fx_random(int32_t nu, int32_t ni, double density, int binary, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    int64_t cap = (int64_t)nu * ni, n = 0;
    int32_t *r = malloc((size_t)cap * sizeof *r), *c = malloc((size_t)cap * sizeof *c);
    float *v = malloc((size_t)cap * sizeof *v);
    int64_t *ts = malloc((size_t)cap * sizeof *ts);
    for (int32_t u = 0; u < nu; u++)
        for (int32_t i = 0; i < ni; i++) {
            /* skewed: low item ids are more popular */
            double p = density * 2.0 * (1.0 - (double)i / (ni + 1));
            if (rf_rng_uniform(&g) < p) {
                r[n] = u;
                c[n] = i;
                v[n] = binary ? 1.0f : (float)(0.5 + 2.5 * rf_rng_uniform(&g));
                ts[n] = 1700000000 + (int64_t)rf_rng_below(&g, 60 * 86400);
                n++;
            }
        }
    fixture *f = fx_from_coo(nu, ni, n, r, c, v, ts);
    free(r);
    free(c);
    free(v);
    free(ts);
    return f;
}

static void fx_free(fixture *f) {
    if (!f) return;
    rf_csr_free(f->d.ui);
    rf_csr_free(f->d.iu);
    free(f->d.ui_ts);
    rf_idmap_free(f->users);
    rf_idmap_free(f->items);
    free(f);
}

static rf_model *fit_model(const char *name, const char *params, const rf_dataset *d) {
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    int rc = rf_model_new(name, &m, &err);
    if (rc) fail_msg("new %s: %s", name, err.msg);
    rc = rf_model_set_params(m, params, &err);
    if (rc) fail_msg("params %s: %s", name, err.msg);
    rc = rf_model_fit(m, d, &err);
    if (rc) fail_msg("fit %s: %s", name, err.msg);
    return m;
}

/* Dense user x item matrix of the fixture (row-major). */
static double *dense(const rf_dataset *d) {
    double *a = calloc((size_t)d->n_users * d->n_items, sizeof *a);
    for (int32_t u = 0; u < d->n_users; u++)
        for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++)
            a[(size_t)u * d->n_items + d->ui->indices[q]] = d->ui->data[q];
    return a;
}

/* Brute-force top-k cosine neighbours: sims[i*ni + j] = similarity kept
 * (0 if j is not among i's top k). Same arithmetic as the model: dot in
 * float in user order, norms in double, division in double, cast to float. */
static float *brute_knn(const rf_dataset *d, int k, double shrink) {
    int32_t nu = d->n_users, ni = d->n_items;
    double *a = dense(d);
    double *norm = calloc((size_t)ni, sizeof *norm);
    for (int32_t i = 0; i < ni; i++) {
        double s = 0;
        for (int32_t u = 0; u < nu; u++) s += a[(size_t)u * ni + i] * a[(size_t)u * ni + i];
        norm[i] = sqrt(s);
    }
    float *sims = calloc((size_t)ni * ni, sizeof *sims);
    rf_scored *all = malloc((size_t)ni * sizeof *all);
    for (int32_t i = 0; i < ni; i++) {
        int cnt = 0;
        for (int32_t j = 0; j < ni; j++) {
            if (j == i) continue;
            float dot = 0;
            for (int32_t u = 0; u < nu; u++)
                dot += (float)a[(size_t)u * ni + i] * (float)a[(size_t)u * ni + j];
            double den = norm[i] * norm[j] + shrink;
            if (!(den > 0)) continue;
            float s = (float)((double)dot / den);
            if (s > 0) all[cnt++] = (rf_scored){s, j};
        }
        /* selection sort of the best k by (score desc, id asc) */
        for (int x = 0; x < cnt && x < k; x++) {
            int b = x;
            for (int y = x + 1; y < cnt; y++)
                if (all[y].score > all[b].score ||
                    (all[y].score == all[b].score && all[y].id < all[b].id))
                    b = y;
            rf_scored t = all[x];
            all[x] = all[b];
            all[b] = t;
            sims[(size_t)i * ni + all[x].id] = all[x].score;
        }
    }
    free(all);
    free(norm);
    free(a);
    return sims;
}

/* ---- itemknn ---------------------------------------------------------- */

static void check_knn_vs_brute(int32_t nu, int32_t ni, double dens, int binary, int k,
                               double shrink, uint64_t seed) {
    fixture *f = fx_random(nu, ni, dens, binary, seed);
    char params[96];
    snprintf(params, sizeof params, "sim=cosine,q=1,norm=none,k=%d,shrink=%g", k, shrink);
    rf_model *m = fit_model("itemknn", params, &f->d);
    float *sims = brute_knn(&f->d, k, shrink);
    const rf_csr *nb = rf_itemknn_neighbours(m);
    assert_non_null(nb);
    rf_scored *out = malloc((size_t)(ni + 1) * sizeof *out);
    for (int32_t i = 0; i < ni; i++) {
        int expect = 0;
        for (int32_t j = 0; j < ni; j++) expect += sims[(size_t)i * ni + j] > 0;
        int got = rf_itemknn_similar(m, i, ni + 1, out, NULL);
        if (got != expect) fail_msg("seed %llu item %d: %d neighbours, brute %d",
                                    (unsigned long long)seed, i, got, expect);
        for (int x = 0; x < got; x++) {
            float b = sims[(size_t)i * ni + out[x].id];
            /* binary data: the arithmetic is identical, so are the values */
            if (binary ? b != out[x].score : fabsf(b - out[x].score) > 1e-5f)
                fail_msg("item %d nbr %d: sim %.9g, brute %.9g", i, out[x].id, out[x].score, b);
            if (x > 0) /* best first, ties by id */
                assert_true(out[x - 1].score > out[x].score ||
                            (out[x - 1].score == out[x].score && out[x - 1].id < out[x].id));
        }
        /* rows of the CSR: ascending ids, same count */
        assert_int_equal(rf_csr_row_len(nb, i), got);
    }
    free(out);
    free(sims);
    rf_model_free(m);
    fx_free(f);
}

static void test_itemknn_vs_brute_binary(void **state) {
    for (uint64_t s = 1; s <= 4; s++) {
        check_knn_vs_brute(40, 30, 0.15, 1, 5, 0, s);
        check_knn_vs_brute(25, 50, 0.2, 1, 3, 2.5, s + 10);
        check_knn_vs_brute(30, 12, 0.3, 1, 100, 0, s + 20); /* k > items */
        check_knn_vs_brute(60, 400, 0.01, 1, 4, 0, s + 50);  /* sparse rows: touched-list path */
    }
}

static void test_itemknn_vs_brute_weighted(void **state) {
    for (uint64_t s = 1; s <= 4; s++) {
        check_knn_vs_brute(50, 40, 0.1, 0, 7, 0, s + 30);
        check_knn_vs_brute(50, 40, 0.1, 0, 7, 10, s + 40);
        check_knn_vs_brute(60, 400, 0.01, 0, 4, 1, s + 60);
    }
}

static void test_itemknn_scores_vs_brute(void **state) {
    fixture *f = fx_random(60, 45, 0.12, 0, 77);
    rf_model *m = fit_model("itemknn", "sim=cosine,q=1,norm=none,shrink=0,k=6", &f->d);
    float *sims = brute_knn(&f->d, 6, 0);
    int32_t ni = f->d.n_items;
    float *s = malloc((size_t)ni * sizeof *s);
    double maxpop = 0;
    for (int32_t j = 0; j < ni; j++)
        if (rf_csr_row_len(f->d.iu, j) > maxpop) maxpop = (double)rf_csr_row_len(f->d.iu, j);
    for (int32_t u = 0; u < f->d.n_users; u++) {
        rf_hist h;
        rf_hist_from_row(&f->d, u, &h);
        assert_int_equal(rf_model_score_all(m, u, &h, s, NULL), 0);
        for (int32_t j = 0; j < ni; j++) {
            double b = 0;
            for (int32_t t = 0; t < h.n; t++) b += h.weights[t] * sims[(size_t)h.items[t] * ni + j];
            if (b > 0) {
                if (fabs(b - s[j]) > 1e-5 * (1 + b))
                    fail_msg("user %d item %d: score %.9g brute %.9g", u, j, s[j], b);
            } else {
                float fb = (float)rf_csr_row_len(f->d.iu, j) * (1.0f / ((float)maxpop + 1.0f)) - 1.0f;
                assert_true(s[j] < 0 && s[j] >= -1);
                if (s[j] != fb) fail_msg("user %d item %d: fallback %.9g expected %.9g", u, j, s[j], fb);
            }
        }
    }
    free(s);
    free(sims);
    rf_model_free(m);
    fx_free(f);
}

static void test_itemknn_threads_deterministic(void **state) {
    fixture *f = fx_random(300, 200, 0.05, 0, 5);
    rf_set_threads(1);
    rf_model *a = fit_model("itemknn", "k=20,shrink=1", &f->d);
    rf_set_threads(2);
    rf_model *b = fit_model("itemknn", "k=20,shrink=1", &f->d);
    rf_set_threads(3);
    rf_model *c = fit_model("itemknn", "k=20,shrink=1", &f->d);
    rf_set_threads(0);
    const rf_csr *na = rf_itemknn_neighbours(a), *nb = rf_itemknn_neighbours(b),
                 *nc = rf_itemknn_neighbours(c);
    assert_int_equal(na->nnz, nb->nnz);
    assert_int_equal(na->nnz, nc->nnz);
    assert_memory_equal(na->indptr, nb->indptr, (size_t)(na->nrows + 1) * 8);
    assert_memory_equal(na->indices, nb->indices, (size_t)na->nnz * 4);
    assert_memory_equal(na->data, nb->data, (size_t)na->nnz * 4);
    assert_memory_equal(na->data, nc->data, (size_t)na->nnz * 4);
    float *sa = malloc(200 * sizeof *sa), *sb = malloc(200 * sizeof *sb);
    for (int32_t u = 0; u < 300; u++) {
        rf_hist h;
        rf_hist_from_row(&f->d, u, &h);
        assert_int_equal(rf_model_score_all(a, u, &h, sa, NULL), 0);
        assert_int_equal(rf_model_score_all(b, u, &h, sb, NULL), 0);
        assert_memory_equal(sa, sb, 200 * sizeof *sa);
    }
    free(sa);
    free(sb);
    rf_model_free(a);
    rf_model_free(b);
    rf_model_free(c);
    fx_free(f);
}

/* ---- pop / trending --------------------------------------------------- */

/* 4 users, 3 items; T = ts_max. Entries (user, item, weight, age days):
 * u0: i0 w1 0d, i1 w2 7d;  u1: i0 w3 14d;  u2: i0 w1 7d, i2 w5 0d;  u3: -  */
static fixture *fx_hand(void) {
    const int64_t T = 1700000000, D = 86400;
    int32_t r[] = {0, 0, 1, 2, 2};
    int32_t c[] = {0, 1, 0, 0, 2};
    float v[] = {1, 2, 3, 1, 5};
    int64_t ts[] = {T, T - 7 * D, T - 14 * D, T - 7 * D, T};
    return fx_from_coo(4, 3, 5, r, c, v, ts);
}

static void scores_of(const rf_model *m, int32_t user, const rf_hist *h, float *out) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_score_all(m, user, h, out, &err)) fail_msg("score: %s", err.msg);
}

static void test_pop_counts(void **state) {
    fixture *f = fx_hand();
    float s[3];
    rf_model *m = fit_model("pop", NULL, &f->d);
    scores_of(m, -1, NULL, s);
    assert_float_equal(s[0], 3, 0);
    assert_float_equal(s[1], 1, 0);
    assert_float_equal(s[2], 1, 0);
    rf_model_free(m);
    m = fit_model("pop", "weighted=1", &f->d);
    scores_of(m, 0, NULL, s);
    assert_float_equal(s[0], 5, 0);
    assert_float_equal(s[1], 2, 0);
    assert_float_equal(s[2], 5, 0);
    /* recommend: ties by smaller id; never the history */
    rf_scored out[5];
    int n = rf_model_recommend(m, -1, NULL, 5, NULL, NULL, out, NULL);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 0);
    assert_int_equal(out[1].id, 2);
    assert_int_equal(out[2].id, 1);
    rf_hist h;
    rf_hist_from_row(&f->d, 2, &h); /* i0, i2 */
    n = rf_model_recommend(m, 2, &h, 5, NULL, NULL, out, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 1);
    rf_model_free(m);
    fx_free(f);
}

/* A model without an explain op gets the generic reason; bad ids are refused. */
static void test_explain_generic(void **state) {
    fixture *f = fx_hand();
    rf_model *m = fit_model("pop", NULL, &f->d);
    int32_t items[2] = {1, 0};
    rf_reason r[2];
    assert_int_equal(rf_model_explain(m, 0, NULL, items, 2, r, NULL), 0);
    for (int t = 0; t < 2; t++) {
        assert_string_equal(r[t].kind, "model");
        assert_string_equal(r[t].channel, "pop");
        assert_string_equal(r[t].text, "recommended by pop");
        assert_int_equal(r[t].ref_item, -1);
        assert_int_equal(r[t].n_contrib, 1);
        assert_float_equal(r[t].contrib[0].share, 1, 0);
    }
    int32_t bad = 3;
    rf_err err = {0};
    assert_int_equal(rf_model_explain(m, 0, NULL, &bad, 1, r, &err), RF_ERANGE);
    assert_non_null(strstr(err.msg, "out of range"));
    rf_model_free(m);
    fx_free(f);
}

static void test_trending_decay(void **state) {
    fixture *f = fx_hand();
    float s[3];
    rf_model *m = fit_model("trending", "half_life=7", &f->d);
    scores_of(m, -1, NULL, s);
    assert_float_equal(s[0], 1 + 0.25 + 0.5, 1e-6);
    assert_float_equal(s[1], 0.5, 1e-6);
    assert_float_equal(s[2], 1, 1e-6);
    rf_model_free(m);
    m = fit_model("trending", "half_life=14,weighted=1", &f->d);
    scores_of(m, -1, NULL, s);
    assert_float_equal(s[0], 1 + 3 * 0.5 + 1 * pow(2, -0.5), 1e-6);
    assert_float_equal(s[1], 2 * pow(2, -0.5), 1e-6);
    assert_float_equal(s[2], 5, 1e-6);
    rf_model_free(m);
    fx_free(f);
}

/* ---- recommend -------------------------------------------------------- */

static const char *const all_models[] = {"pop", "trending", "itemknn", "userknn", NULL};

/* rf_model_recommend: the top-k of score_all without the history and the
 * excluded items, best first, ties by id; with allow_history the history
 * items come back unless excluded. */
static void test_recommend_contract(void **state) {
    fixture *f = fx_random(80, 60, 0.1, 0, 11);
    int32_t ni = f->d.n_items;
    uint8_t *ex = calloc((size_t)ni, 1);
    for (int32_t j = 0; j < ni; j += 7) ex[j] = 1;
    rf_filter filt = {.exclude = ex};
    float *scratch = malloc((size_t)ni * sizeof *scratch), *s = malloc((size_t)ni * sizeof *s);
    rf_scored *out = malloc((size_t)(ni + 5) * sizeof *out);
    for (int mi = 0; all_models[mi]; mi++) {
        rf_model *m = fit_model(all_models[mi], NULL, &f->d);
        for (int32_t u = 0; u < f->d.n_users; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            scores_of(m, u, &h, s);
            for (int k = 1; k <= ni + 5; k += 9) {
                int n = rf_model_recommend(m, u, &h, k, &filt, u % 2 ? scratch : NULL, out, NULL);
                assert_true(n >= 0 && n <= k);
                int expect = 0;
                for (int32_t j = 0; j < ni; j++)
                    expect += !ex[j] && rf_csr_get(f->d.ui, u, j) == 0;
                assert_int_equal(n, expect < k ? expect : k);
                for (int x = 0; x < n; x++) {
                    assert_false(ex[out[x].id]);
                    for (int32_t t = 0; t < h.n; t++) assert_int_not_equal(out[x].id, h.items[t]);
                    assert_true(out[x].score == s[out[x].id]);
                    if (x > 0)
                        assert_true(out[x - 1].score > out[x].score ||
                                    (out[x - 1].score == out[x].score && out[x - 1].id < out[x].id));
                }
                /* nothing left out scores better than the last one kept */
                if (n == k)
                    for (int32_t j = 0; j < ni; j++) {
                        if (ex[j] || rf_csr_get(f->d.ui, u, j) != 0) continue;
                        int in = 0;
                        for (int x = 0; x < n; x++) in |= out[x].id == j;
                        if (!in)
                            assert_true(s[j] < out[n - 1].score ||
                                        (s[j] == out[n - 1].score && j > out[n - 1].id));
                    }
            }
            /* allow_history: only the mask decides - the top-k of score_all
             * over the items not excluded, history items included */
            rf_filter keep = {.exclude = ex, .allow_history = 1};
            rf_scored ref[12];
            int nr = rf_topk_select(s, ni, 12, ex, ref);
            int n = rf_model_recommend(m, u, &h, 12, &keep, scratch, out, NULL);
            assert_int_equal(n, nr);
            assert_memory_equal(out, ref, (size_t)n * sizeof *out);
        }
        assert_int_equal(rf_model_recommend(m, 0, NULL, 0, NULL, NULL, out, NULL), 0);
        rf_model_free(m);
    }
    free(ex);
    free(scratch);
    free(s);
    free(out);
    fx_free(f);
}

static void test_unknown_user_fallback(void **state) {
    fixture *f = fx_random(70, 50, 0.1, 1, 21);
    rf_model *pop = fit_model("pop", NULL, &f->d);
    rf_model *knn = fit_model("itemknn", "k=10", &f->d);
    rf_scored a[50], b[50];
    rf_hist empty = {0, NULL, NULL, NULL};
    int na = rf_model_recommend(pop, -1, NULL, 50, NULL, NULL, a, NULL);
    int nb = rf_model_recommend(knn, -1, NULL, 50, NULL, NULL, b, NULL);
    assert_int_equal(na, 50);
    assert_int_equal(nb, 50);
    for (int x = 0; x < 50; x++) assert_int_equal(a[x].id, b[x].id);
    nb = rf_model_recommend(knn, -1, &empty, 50, NULL, NULL, b, NULL);
    for (int x = 0; x < nb; x++) assert_int_equal(a[x].id, b[x].id);
    /* an out-of-range user id is treated as unknown */
    nb = rf_model_recommend(knn, 1000, NULL, 50, NULL, NULL, b, NULL);
    for (int x = 0; x < nb; x++) assert_int_equal(a[x].id, b[x].id);
    rf_model_free(pop);
    rf_model_free(knn);
    fx_free(f);
}

/* ---- model files ------------------------------------------------------ */

static void test_save_load_roundtrip(void **state) {
    fixture *f = fx_random(50, 40, 0.12, 0, 31);
    char *dir = rf_test_tmpdir("models");
    char path[1024];
    int32_t ni = f->d.n_items;
    float *s1 = malloc((size_t)ni * sizeof *s1), *s2 = malloc((size_t)ni * sizeof *s2);
    const char *params[] = {"weighted=1", "half_life=3.25", "k=9,shrink=0.5", "k=9,q=2"};
    for (int mi = 0; all_models[mi]; mi++) {
        rf_model *m = fit_model(all_models[mi], params[mi], &f->d);
        m->data_opts.half_life_days = 2.5; /* travels with the model */
        snprintf(path, sizeof path, "%s/%s.rfm", dir, all_models[mi]);
        rf_err err;
        rf_err_clear(&err);
        if (rf_model_save(m, path, &err)) fail_msg("save: %s", err.msg);
        rf_model *l = NULL;
        if (rf_model_load(path, &l, &err)) fail_msg("load: %s", err.msg);
        assert_string_equal(l->ops->name, all_models[mi]);
        assert_int_equal(l->n_users, m->n_users);
        assert_int_equal(l->n_items, m->n_items);
        assert_true(l->fitted);
        char p1[512], p2[512];
        rf_model_params_format(m, p1, sizeof p1);
        rf_model_params_format(l, p2, sizeof p2);
        assert_string_equal(p1, p2);
        assert_memory_equal(&l->data_opts, &m->data_opts, sizeof m->data_opts);
        for (int32_t u = 0; u < m->n_users; u++)
            assert_string_equal(rf_idmap_str(l->users, u), rf_idmap_str(m->users, u));
        for (int32_t i = 0; i < ni; i++)
            assert_string_equal(rf_idmap_str(l->items, i), rf_idmap_str(m->items, i));
        for (int32_t u = -1; u < f->d.n_users; u++) {
            rf_hist h;
            rf_hist_from_row(&f->d, u, &h);
            scores_of(m, u, &h, s1);
            scores_of(l, u, &h, s2);
            assert_memory_equal(s1, s2, (size_t)ni * sizeof *s1);
        }
        /* a loaded model is immutable */
        assert_int_equal(rf_model_set_params(l, params[mi], NULL), RF_ESTATE);
        rf_model_free(l);
        rf_model_free(m);
    }
    free(s1);
    free(s2);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(f);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static void test_load_bad_files(void **state) {
    fixture *f = fx_random(30, 20, 0.2, 1, 41);
    char *dir = rf_test_tmpdir("modelbad");
    char good[1024], bad[1024];
    snprintf(good, sizeof good, "%s/good.rfm", dir);
    snprintf(bad, sizeof bad, "%s/bad.rfm", dir);
    rf_model *m = fit_model("itemknn", "k=5", &f->d), *l = NULL;
    assert_int_equal(rf_model_save(m, good, NULL), 0);
    FILE *fp = fopen(good, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    rf_err err;
    /* truncated anywhere */
    for (long cut = 0; cut < size; cut += (cut < 64 ? 1 : 37)) {
        write_bytes(bad, buf, (size_t)cut);
        rf_err_clear(&err);
        int rc = rf_model_load(bad, &l, &err);
        if (rc != RF_EFORMAT && rc != RF_ECORRUPT)
            fail_msg("cut at %ld: rc %d (%s)", cut, rc, err.msg);
        assert_null(l);
        assert_true(err.msg[0] != 0);
    }
    /* one flipped byte anywhere */
    for (long at = 0; at < size; at += 13) {
        buf[at] ^= 0x5a;
        write_bytes(bad, buf, (size_t)size);
        buf[at] ^= 0x5a;
        int rc = rf_model_load(bad, &l, &err);
        if (rc != RF_EFORMAT && rc != RF_ECORRUPT) fail_msg("flip at %ld: rc %d", at, rc);
        assert_null(l);
    }
    /* a foreign file */
    write_bytes(bad, "user\titem\t1\t0\n", 14);
    assert_int_equal(rf_model_load(bad, &l, &err), RF_EFORMAT);
    char foreign[4096];
    memset(foreign, 'x', sizeof foreign);
    write_bytes(bad, foreign, sizeof foreign);
    assert_int_equal(rf_model_load(bad, &l, &err), RF_EFORMAT);
    /* missing */
    snprintf(bad, sizeof bad, "%s/missing.rfm", dir);
    assert_int_equal(rf_model_load(bad, &l, &err), RF_ENOTFOUND);
    /* the good file still loads */
    assert_int_equal(rf_model_load(good, &l, &err), 0);
    rf_model_free(l);
    free(buf);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(f);
}

/* ---- histories, params, edge cases ------------------------------------ */

/* rf_hist_from_rows on `ev` read as a store would give it by row id (row
 * id = the log's own item id, mapped to the model's by string) equals the
 * string path's result (items, w, ts when not NULL; n entries). */
static void same_by_rows(const rf_model *m, const rf_events *ev, const int32_t *items,
                         const float *w, const int64_t *ts, int32_t n) {
    int32_t nr = rf_idmap_size(ev->items);
    int32_t *r2i = malloc(((size_t)nr + 1) * sizeof *r2i);
    assert_non_null(r2i);
    for (int32_t i = 0; i < nr; i++)
        r2i[i] = rf_idmap_find(m->items, rf_idmap_str(ev->items, i), rf_idmap_len(ev->items, i));
    int32_t *it2, n2;
    float *w2;
    int64_t *ts2;
    assert_int_equal(rf_hist_from_rows(m, ev, r2i, nr, &it2, &w2, &ts2, &n2, NULL), 0);
    assert_int_equal(n2, n);
    for (int32_t k = 0; k < n; k++) {
        assert_int_equal(it2[k], items[k]);
        assert_true(w2[k] == w[k]);
        if (ts) assert_int_equal(ts2[k], ts[k]);
    }
    rf_free(it2);
    rf_free(w2);
    rf_free(ts2);
    /* no map: nothing is known */
    assert_int_equal(rf_hist_from_rows(m, ev, NULL, 0, &it2, &w2, NULL, &n2, NULL), 0);
    assert_int_equal(n2, 0);
    free(r2i);
}

static void test_hist_from_events(void **state) {
    fixture *f = fx_random(5, 6, 0.5, 1, 51);
    rf_model *m = fit_model("pop", NULL, &f->d);
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    const int64_t T = 1700000000;
    /* item map of the log differs from the model's */
    rf_events_push_str(ev, "x", "zzz", RF_EV_VIEW, 1, T);      /* unknown item: dropped */
    rf_events_push_str(ev, "x", "i4", RF_EV_VIEW, 1, T - 10);
    rf_events_push_str(ev, "x", "i1", RF_EV_PURCHASE, 2, T - 5);
    rf_events_push_str(ev, "x", "i4", RF_EV_CART, 1, T - 3);
    rf_events_push_str(ev, "x", "i1", RF_EV_VIEW, 1, T - 20);
    int32_t *items, n;
    float *w;
    int64_t *ts;
    m->data_opts.type_weight[RF_EV_VIEW] = 1;
    m->data_opts.type_weight[RF_EV_CART] = 3;
    m->data_opts.type_weight[RF_EV_PURCHASE] = 5;
    m->data_opts.half_life_days = 0;
    m->data_opts.fold = RF_FOLD_SUM;
    m->data_opts.binary = 0;
    m->data_opts.use_value = 0;
    assert_int_equal(rf_hist_from_events(m, ev, &items, &w, &ts, &n, NULL), 0);
    same_by_rows(m, ev, items, w, ts, n);
    assert_int_equal(n, 2);
    assert_int_equal(items[0], 1);
    assert_int_equal(items[1], 4);
    assert_float_equal(w[0], 6, 0);
    assert_float_equal(w[1], 4, 0);
    assert_int_equal(ts[0], T - 5);
    assert_int_equal(ts[1], T - 3);
    rf_free(items);
    rf_free(w);
    rf_free(ts);
    /* use_value, MAX fold */
    m->data_opts.use_value = 1;
    m->data_opts.fold = RF_FOLD_MAX;
    assert_int_equal(rf_hist_from_events(m, ev, &items, &w, NULL, &n, NULL), 0);
    same_by_rows(m, ev, items, w, NULL, n);
    assert_float_equal(w[0], 10, 0);
    assert_float_equal(w[1], 3, 0);
    rf_free(items);
    rf_free(w);
    /* LAST fold: the newest event */
    m->data_opts.use_value = 0;
    m->data_opts.fold = RF_FOLD_LAST;
    assert_int_equal(rf_hist_from_events(m, ev, &items, &w, NULL, &n, NULL), 0);
    same_by_rows(m, ev, items, w, NULL, n);
    assert_float_equal(w[0], 5, 0);
    assert_float_equal(w[1], 3, 0);
    rf_free(items);
    rf_free(w);
    /* decay: half-life of 10 seconds relative to the newest kept event, T - 3 */
    m->data_opts.fold = RF_FOLD_SUM;
    m->data_opts.half_life_days = 10.0 / 86400;
    m->data_opts.now = 0;
    assert_int_equal(rf_hist_from_events(m, ev, &items, &w, NULL, &n, NULL), 0);
    same_by_rows(m, ev, items, w, NULL, n);
    assert_float_equal(w[0], 5 * pow(2, -0.2) + 1 * pow(2, -1.7), 1e-5);
    assert_float_equal(w[1], 1 * pow(2, -0.7) + 3, 1e-5);
    rf_free(items);
    rf_free(w);
    /* binary */
    m->data_opts.half_life_days = 0;
    m->data_opts.binary = 1;
    assert_int_equal(rf_hist_from_events(m, ev, &items, &w, NULL, &n, NULL), 0);
    same_by_rows(m, ev, items, w, NULL, n);
    assert_float_equal(w[0], 1, 0);
    assert_float_equal(w[1], 1, 0);
    rf_free(items);
    rf_free(w);
    /* empty */
    ev->n = 0;
    assert_int_equal(rf_hist_from_events(m, ev, &items, &w, NULL, &n, NULL), 0);
    same_by_rows(m, ev, items, w, NULL, n);
    assert_int_equal(n, 0);
    assert_null(items);
    rf_events_free(ev);
    rf_model_free(m);
    fx_free(f);
}

/* A user's history from raw events equals that user's training row when
 * the dataset is built by rf_dataset_build with the model's options. */
static void test_hist_matches_dataset_build(void **state) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    rf_rng g;
    rf_rng_seed(&g, 99);
    char u[16], it[16];
    for (int x = 0; x < 3000; x++) {
        snprintf(u, sizeof u, "c%d", (int)rf_rng_below(&g, 40));
        snprintf(it, sizeof it, "p%d", (int)rf_rng_below(&g, 60));
        int type = (int)rf_rng_below(&g, RF_EV_NTYPES);
        float val = (float)(1 + rf_rng_below(&g, 5));
        int64_t ts = 1700000000 + (int64_t)rf_rng_below(&g, 30 * 86400);
        assert_int_equal(rf_events_push_str(ev, u, it, type, val, ts), 0);
    }
    for (int variant = 0; variant < 6; variant++) {
        rf_dataset_opts o;
        rf_dataset_opts_default(&o);
        if (variant == 1) o.use_value = 1;
        if (variant == 2) o.half_life_days = 5;
        if (variant == 3) o.fold = RF_FOLD_MAX, o.use_value = 1;
        if (variant == 4) o.fold = RF_FOLD_LAST, o.half_life_days = 2;
        if (variant == 5) o.binary = 1, o.type_weight[RF_EV_VIEW] = 0;
        rf_dataset *d = NULL;
        rf_err err;
        rf_err_clear(&err);
        if (rf_dataset_build(ev, &o, &d, &err)) fail_msg("build: %s", err.msg);
        rf_model *m = NULL;
        assert_int_equal(rf_model_new("pop", &m, NULL), 0);
        m->data_opts = o;
        assert_int_equal(rf_model_fit(m, d, NULL), 0);
        for (int32_t user = 0; user < d->n_users; user++) {
            rf_events *one;
            assert_int_equal(rf_events_new(NULL, NULL, &one), 0);
            for (int64_t x = 0; x < ev->n; x++)
                if (ev->user[x] == user)
                    rf_events_push_str(one, "me", rf_idmap_str(ev->items, ev->item[x]), ev->type[x],
                                       ev->value[x], ev->ts[x]);
            int32_t *items, n;
            float *w;
            assert_int_equal(rf_hist_from_events(m, one, &items, &w, NULL, &n, NULL), 0);
            rf_hist h;
            rf_hist_from_row(d, user, &h);
            if (n != h.n) fail_msg("variant %d user %d: %d items, row %d", variant, user, n, h.n);
            for (int32_t t = 0; t < n; t++) {
                assert_int_equal(items[t], h.items[t]);
                if (fabsf(w[t] - h.weights[t]) > 1e-6f * (1 + fabsf(h.weights[t])))
                    fail_msg("variant %d user %d item %d: %.9g vs row %.9g", variant, user,
                             items[t], w[t], h.weights[t]);
            }
            rf_free(items);
            rf_free(w);
            rf_events_free(one);
        }
        rf_model_free(m);
        rf_dataset_free(d);
    }
    rf_events_free(ev);
}

static void test_hist_from_row(void **state) {
    fixture *f = fx_hand();
    rf_hist h;
    rf_hist_from_row(&f->d, 0, &h);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.items[0], 0);
    assert_int_equal(h.items[1], 1);
    assert_float_equal(h.weights[1], 2, 0);
    assert_null(h.ts);
    rf_hist_from_row(&f->d, 3, &h);
    assert_int_equal(h.n, 0);
    rf_hist_from_row(&f->d, -1, &h);
    assert_int_equal(h.n, 0);
    rf_hist_from_row(&f->d, 99, &h);
    assert_int_equal(h.n, 0);
    fx_free(f);
}

static void test_params_and_registry(void **state) {
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_new("nosuch", &m, &err), RF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "itemknn"));
    assert_null(m);
    for (const char *const *n = rf_model_names(); *n; n++) assert_non_null(rf_model_find(*n));
    assert_int_equal(rf_model_new("itemknn", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "nosuch=1", &err), RF_ENOTFOUND);
    assert_int_equal(rf_model_set_params(m, "k=0", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "k=abc", &err), RF_EPARSE);
    assert_int_equal(rf_model_set_params(m, "shrink=-1", &err), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "k=200 shrink=3", &err), 0);
    char buf[256];
    rf_model_params_format(m, buf, sizeof buf);
    assert_non_null(strstr(buf, " k=200 shrink=3 ")); /* sim=... k=200 shrink=3 alpha=... */
    float s[3];
    assert_int_equal(rf_model_score_all(m, 0, NULL, s, NULL), RF_ESTATE);
    assert_int_equal(rf_model_save(m, "/nonexistent/x.rfm", NULL), RF_ESTATE);
    fixture *f = fx_hand();
    assert_int_equal(rf_model_fit(m, &f->d, &err), 0);
    assert_int_equal(rf_model_fit(m, &f->d, &err), RF_ESTATE);
    assert_int_equal(rf_model_set_params(m, "k=5", &err), RF_ESTATE);
    assert_int_equal(m->data_opts.now, f->d.ts_max); /* resolved at fit */
    assert_true(m->fit_seconds >= 0);
    /* a save into a missing directory fails cleanly */
    assert_true(rf_model_save(m, "/nonexistent-dir/x.rfm", &err) < 0);
    rf_model_free(m);
    rf_model_free(NULL);
    fx_free(f);
}

static void test_edge_cases(void **state) {
    /* a user who has every item: nothing to recommend */
    int32_t r[] = {0, 0, 0, 1};
    int32_t c[] = {0, 1, 2, 1};
    fixture *f = fx_from_coo(2, 3, 4, r, c, NULL, NULL);
    rf_scored out[10];
    for (int mi = 0; all_models[mi]; mi++) {
        rf_model *m = fit_model(all_models[mi], NULL, &f->d);
        rf_hist h;
        rf_hist_from_row(&f->d, 0, &h);
        assert_int_equal(rf_model_recommend(m, 0, &h, 10, NULL, NULL, out, NULL), 0);
        rf_hist_from_row(&f->d, 1, &h);
        assert_int_equal(rf_model_recommend(m, 1, &h, 10, NULL, NULL, out, NULL), 2);
        rf_model_free(m);
    }
    fx_free(f);
    /* no interactions at all; a single item */
    f = fx_from_coo(3, 1, 0, NULL, NULL, NULL, NULL);
    for (int mi = 0; all_models[mi]; mi++) {
        rf_model *m = fit_model(all_models[mi], NULL, &f->d);
        assert_int_equal(rf_model_recommend(m, 0, NULL, 10, NULL, NULL, out, NULL), 1);
        assert_int_equal(out[0].id, 0);
        rf_model_free(m);
    }
    fx_free(f);
}

/* Every allocation of new + fit, and of load, fails in turn: clean
 * RF_ENOMEM, no leak (run under ASan), then success. */
static void test_oom(void **state) {
    fixture *f = fx_random(40, 30, 0.15, 0, 61);
    char *dir = rf_test_tmpdir("modeloom");
    char path[1024];
    for (int mi = 0; all_models[mi]; mi++) {
        int ok = 0;
        rf_model *m = NULL;
        for (long n = 0; n < 500 && !ok; n++) {
            rf_mem_fail_after(n);
            int rc = rf_model_new(all_models[mi], &m, NULL);
            if (rc == 0) rc = rf_model_fit(m, &f->d, NULL);
            rf_mem_fail_after(-1);
            if (rc == 0) {
                ok = 1;
                break;
            }
            assert_int_equal(rc, RF_ENOMEM);
            rf_model_free(m);
            m = NULL;
        }
        assert_true(ok);
        snprintf(path, sizeof path, "%s/%s.rfm", dir, all_models[mi]);
        assert_int_equal(rf_model_save(m, path, NULL), 0);
        rf_model_free(m);
        ok = 0;
        for (long n = 0; n < 1000 && !ok; n++) {
            rf_model *l = NULL;
            rf_mem_fail_after(n);
            int rc = rf_model_load(path, &l, NULL);
            rf_mem_fail_after(-1);
            if (rc == 0) ok = 1;
            else assert_int_equal(rc, RF_ENOMEM);
            rf_model_free(l);
        }
        assert_true(ok);
    }
    rf_test_rmtree(dir);
    free(dir);
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_itemknn_vs_brute_binary),
        cmocka_unit_test(test_itemknn_vs_brute_weighted),
        cmocka_unit_test(test_itemknn_scores_vs_brute),
        cmocka_unit_test(test_itemknn_threads_deterministic),
        cmocka_unit_test(test_pop_counts),
        cmocka_unit_test(test_explain_generic),
        cmocka_unit_test(test_trending_decay),
        cmocka_unit_test(test_recommend_contract),
        cmocka_unit_test(test_unknown_user_fallback),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_load_bad_files),
        cmocka_unit_test(test_hist_from_events),
        cmocka_unit_test(test_hist_matches_dataset_build),
        cmocka_unit_test(test_hist_from_row),
        cmocka_unit_test(test_params_and_registry),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
