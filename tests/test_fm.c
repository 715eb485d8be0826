/* test_fm.c - the factorization machine: finite-difference gradient check
 * of both losses (BPR, log loss) on a tiny problem, the O(k n) prediction
 * against the pairwise definition, "fm" beating popularity on a planted
 * category-preference log with side features, cold items (no
 * interactions) ranked through their side features, same seed -> same
 * scores, and a save/load round trip with identical scores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/fm.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"
#include "testutil.h"

/* ---- kernels ------------------------------------------------------------ */

static void tiny(rf_fm_weights *w, rf_rng *r) {
    w->n_feats = 7;
    w->k = 3;
    w->w0 = 0.1f;
    w->w = calloc(7, sizeof *w->w);
    w->V = calloc(21, sizeof *w->V);
    for (int f = 0; f < 7; f++) w->w[f] = (float)(0.3 * rf_rng_normal(r));
    for (int q = 0; q < 21; q++) w->V[q] = (float)(0.5 * rf_rng_normal(r));
}

static void test_predict_matches_pairwise(void **state) {
    rf_rng r;
    rf_rng_seed(&r, 1);
    rf_fm_weights w;
    tiny(&w, &r);
    int32_t idx[4] = {0, 2, 5, 6};
    float val[4] = {1, 0.5f, -0.7f, 2};
    rf_fm_ex x = {4, idx, val};
    double sum[3];
    double y = rf_fm_predict(&w, &x, sum);
    double ref = w.w0;
    for (int a = 0; a < 4; a++) {
        ref += w.w[idx[a]] * val[a];
        for (int b = a + 1; b < 4; b++) {
            double dot = 0;
            for (int d = 0; d < 3; d++) dot += (double)w.V[idx[a] * 3 + d] * w.V[idx[b] * 3 + d];
            ref += dot * val[a] * val[b];
        }
    }
    assert_true(fabs(y - ref) < 1e-5);
    free(w.w);
    free(w.V);
}

/* Central differences on every parameter vs the analytic gradient. */
static void gradcheck(int loss, int label) {
    rf_rng r;
    rf_rng_seed(&r, 7 + loss * 10 + label);
    rf_fm_weights w;
    tiny(&w, &r);
    /* a and b share feature 0 (the "user") as in training */
    int32_t ia[3] = {0, 1, 3}, ib[3] = {0, 2, 4};
    float va[3] = {1, 1, 0.6f}, vb[3] = {1, 1, 0.8f};
    rf_fm_ex a = {3, ia, va}, b = {3, ib, vb};
    int32_t gi[6];
    float gw[6], gv[18];
    rf_fm_grad g = {0, gi, gw, gv, 0};
    double scratch[6];
    double L = rf_fm_loss_grad(&w, loss, &a, &b, label, &g, scratch);
    assert_true(fabs(L - rf_fm_loss(&w, loss, &a, &b, label, scratch)) < 1e-9);
    double dw[7] = {0}, dV[21] = {0};
    for (int e = 0; e < g.n; e++) {
        dw[g.idx[e]] += g.gw[e];
        for (int d = 0; d < 3; d++) dV[g.idx[e] * 3 + d] += g.gv[e * 3 + d];
    }
    const float h = 1e-2f;
    double maxerr = 0;
    /* w0 */
    float s = w.w0;
    w.w0 = s + h;
    double lp = rf_fm_loss(&w, loss, &a, &b, label, scratch);
    w.w0 = s - h;
    double lm = rf_fm_loss(&w, loss, &a, &b, label, scratch);
    w.w0 = s;
    maxerr = fmax(maxerr, fabs((lp - lm) / (2 * h) - g.gw0));
    for (int f = 0; f < 7; f++) {
        s = w.w[f];
        w.w[f] = s + h;
        lp = rf_fm_loss(&w, loss, &a, &b, label, scratch);
        w.w[f] = s - h;
        lm = rf_fm_loss(&w, loss, &a, &b, label, scratch);
        w.w[f] = s;
        maxerr = fmax(maxerr, fabs((lp - lm) / (2 * h) - dw[f]));
    }
    for (int q = 0; q < 21; q++) {
        s = w.V[q];
        w.V[q] = s + h;
        lp = rf_fm_loss(&w, loss, &a, &b, label, scratch);
        w.V[q] = s - h;
        lm = rf_fm_loss(&w, loss, &a, &b, label, scratch);
        w.V[q] = s;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dV[q]) > 1e-3) printf("V[%d]: fd %.6f analytic %.6f\n", q, fd, dV[q]);
        maxerr = fmax(maxerr, fabs(fd - dV[q]));
    }
    printf("gradcheck loss=%d label=%d: max abs error %.2e (loss %.4f)\n", loss, label, maxerr, L);
    assert_true(maxerr < 1e-3);
    /* features 5, 6 in neither input: zero gradient, none listed */
    for (int e = 0; e < g.n; e++) assert_true(g.idx[e] < 5);
    free(w.w);
    free(w.V);
}

static void test_gradcheck_bpr(void **state) { gradcheck(RF_FM_BPR, 0); }
static void test_gradcheck_logloss(void **state) {
    gradcheck(RF_FM_LOGLOSS, 1);
    gradcheck(RF_FM_LOGLOSS, 0);
}

/* ---- planted shop ------------------------------------------------------ */

#define NCAT 10
#define PER_CAT 24
#define NITEMS (NCAT * PER_CAT)
#define NUSERS 400
#define NCOLD 2 /* per category: the last NCOLD items have no events */
#define NTEST 3

typedef struct shop {
    rf_catalog *cat;
    rf_events *ev; /* train */
    rf_dataset *d;
    int32_t test[NUSERS][NTEST]; /* item ids */
    int fav[NUSERS][2];
} shop;

/* Users like two categories; within a category items follow a Zipf-like
 * popularity; 20% of picks are from the global popularity. Side features:
 * category (and a brand per half category). */
static shop *shop_new(void) {
    shop *s = calloc(1, sizeof *s);
    rf_catalog *c = s->cat = rf_calloc(1, sizeof *c);
    c->n = NITEMS;
    c->items = rf_calloc(NITEMS, sizeof *c->items);
    for (int i = 0; i < NITEMS; i++) {
        char id[16], cat[32], brand[32];
        snprintf(id, sizeof id, "i%d", i);
        snprintf(cat, sizeof cat, "C%d/S%d", i / PER_CAT, (i % PER_CAT) % 3);
        snprintf(brand, sizeof brand, "B%d_%d", i / PER_CAT, (i % PER_CAT) % 2);
        c->items[i].id = rf_strdup(id);
        c->items[i].category = rf_strdup(cat);
        c->items[i].brand = rf_strdup(brand);
        c->items[i].price = 10 + (i * 37) % 90;
        c->items[i].stock = -1;
    }
    assert_int_equal(rf_events_new(NULL, NULL, &s->ev), 0);
    for (int i = 0; i < NITEMS; i++) {
        int32_t id;
        assert_int_equal(rf_idmap_put(s->ev->items, c->items[i].id, strlen(c->items[i].id), &id,
                                      NULL), 0);
    }
    rf_rng r;
    rf_rng_seed(&r, 2024);
    const int warm_per = PER_CAT - NCOLD;
    for (int u = 0; u < NUSERS; u++) {
        s->fav[u][0] = u % NCAT;
        s->fav[u][1] = (u * 7 + 3) % NCAT;
        if (s->fav[u][1] == s->fav[u][0]) s->fav[u][1] = (s->fav[u][0] + 1) % NCAT;
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", u);
        int32_t picked[12];
        int n = 0;
        while (n < 12) {
            int32_t it;
            if (rf_rng_uniform(&r) < 0.2) {
                it = (int32_t)(rf_rng_below(&r, NCAT) * PER_CAT + rf_rng_below(&r, 4));
            } else {
                int cidx = s->fav[u][rf_rng_below(&r, 2)];
                double z = rf_rng_uniform(&r);
                it = (int32_t)(cidx * PER_CAT + (int)(warm_per * z * z));
            }
            int dup = 0;
            for (int q = 0; q < n; q++) dup |= picked[q] == it;
            if (!dup) picked[n++] = it;
        }
        for (int q = 0; q < 12; q++) {
            if (q >= 12 - NTEST) {
                s->test[u][q - (12 - NTEST)] = picked[q];
                continue;
            }
            int64_t ts = 1700000000 + (int64_t)u * 3600 + q * 7200;
            assert_int_equal(rf_events_push_str(s->ev, uid, c->items[picked[q]].id, RF_EV_PURCHASE,
                                                1, ts), 0);
        }
    }
    assert_int_equal(rf_dataset_build(s->ev, NULL, &s->d, NULL), 0);
    s->d->catalog = c;
    return s;
}

static void shop_free(shop *s) {
    rf_dataset_free(s->d);
    rf_events_free(s->ev);
    rf_catalog_free(s->cat);
    free(s);
}

static rf_model *fit(shop *s, const char *name, const char *params) {
    rf_model *m;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_new(name, &m, &err), 0);
    if (params) assert_int_equal(rf_model_set_params(m, params, &err), 0);
    int rc = rf_model_fit(m, s->d, &err);
    if (rc) printf("fit %s: %s\n", name, err.msg);
    assert_int_equal(rc, 0);
    return m;
}

/* Hit rate of the held-out items in the top 10 (train items excluded). */
static double recall10(shop *s, const rf_model *m) {
    int64_t hits = 0;
    for (int u = 0; u < NUSERS; u++) {
        rf_hist h;
        rf_hist_from_row(s->d, u, &h);
        rf_scored top[10];
        int n = rf_model_recommend(m, u, &h, 10, NULL, NULL, top, NULL);
        assert_true(n >= 0);
        for (int q = 0; q < n; q++)
            for (int t = 0; t < NTEST; t++) hits += top[q].id == s->test[u][t];
    }
    return (double)hits / (NUSERS * NTEST);
}

/* Mean AUC, over users, of cold items in the user's categories against the
 * other cold items. */
static double cold_auc(shop *s, const rf_model *m) {
    float *sc = malloc(NITEMS * sizeof *sc);
    double tot = 0;
    for (int u = 0; u < NUSERS; u++) {
        rf_hist h;
        rf_hist_from_row(s->d, u, &h);
        assert_int_equal(rf_model_score_all(m, u, &h, sc, NULL), 0);
        int64_t good = 0, pairs = 0;
        for (int a = 0; a < NITEMS; a++) {
            if (a % PER_CAT < PER_CAT - NCOLD) continue;
            int ca = a / PER_CAT, fa = ca == s->fav[u][0] || ca == s->fav[u][1];
            if (!fa) continue;
            for (int b = 0; b < NITEMS; b++) {
                if (b % PER_CAT < PER_CAT - NCOLD) continue;
                int cb = b / PER_CAT;
                if (cb == s->fav[u][0] || cb == s->fav[u][1]) continue;
                pairs++;
                good += sc[a] > sc[b];
            }
        }
        tot += (double)good / (double)pairs;
    }
    free(sc);
    return tot / NUSERS;
}

static void check_fm(const char *params, double *rec_out) {
    shop *s = shop_new();
    rf_model *pop = fit(s, "pop", NULL);
    rf_model *fm = fit(s, "fm", params);
    double rp = recall10(s, pop), rf = recall10(s, fm), auc = cold_auc(s, fm);
    printf("%s: recall@10 fm %.4f pop %.4f; cold-item AUC %.3f (fit %.2fs)\n", params, rf, rp,
           auc, fm->fit_seconds);
    assert_true(rf > 1.3 * rp);
    assert_true(auc > 0.85);
    if (rec_out) *rec_out = rf;
    rf_model_free(pop);
    rf_model_free(fm);
    shop_free(s);
}

static void test_fm_bpr_beats_pop(void **state) { check_fm("loss=bpr", NULL); }
static void test_fm_logloss_beats_pop(void **state) { check_fm("loss=logloss,neg=2", NULL); }

static void test_deterministic_and_roundtrip(void **state) {
    shop *s = shop_new();
    rf_model *a = fit(s, "fm", "epochs=5");
    rf_model *b = fit(s, "fm", "epochs=5");
    float *sa = malloc(NITEMS * sizeof *sa), *sb = malloc(NITEMS * sizeof *sb);
    char *dir = rf_test_tmpdir("fm");
    char path[512];
    snprintf(path, sizeof path, "%s/fm.model", dir);
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_save(a, path, &err), 0);
    rf_model *c;
    assert_int_equal(rf_model_load(path, &c, &err), 0);
    assert_string_equal(c->ops->name, "fm");
    for (int u = -1; u < NUSERS; u += 37) {
        assert_int_equal(rf_model_score_all(a, u, NULL, sa, NULL), 0);
        assert_int_equal(rf_model_score_all(b, u, NULL, sb, NULL), 0);
        assert_memory_equal(sa, sb, NITEMS * sizeof *sa);
        assert_int_equal(rf_model_score_all(c, u, NULL, sb, NULL), 0);
        assert_memory_equal(sa, sb, NITEMS * sizeof *sa);
    }
    /* truncated file is refused */
    char *bytes = rf_test_read_file(path);
    assert_non_null(bytes);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fclose(fp);
    fp = fopen(path, "wb");
    fwrite(bytes, 1, (size_t)len - 40, fp);
    fclose(fp);
    rf_model *bad = NULL;
    assert_true(rf_model_load(path, &bad, &err) < 0);
    assert_null(bad);
    free(bytes);
    rf_model_free(a);
    rf_model_free(b);
    rf_model_free(c);
    free(sa);
    free(sb);
    rf_test_rmtree(dir);
    free(dir);
    shop_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_matches_pairwise),
        cmocka_unit_test(test_gradcheck_bpr),
        cmocka_unit_test(test_gradcheck_logloss),
        cmocka_unit_test(test_fm_bpr_beats_pop),
        cmocka_unit_test(test_fm_logloss_beats_pop),
        cmocka_unit_test(test_deterministic_and_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
