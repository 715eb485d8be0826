/* test_fusion.c - the fused model: no stacking leak, beats its channels
 * on data with planted complementary structure, save/load round trip,
 * same seed same model, explanations that name the user's interactions.
 *
 * The planted data: users belong to one of 8 item clusters and
 * interact with their cluster's items all along (item-item structure:
 * itemknn finds it); on top, everyone picks items of a burst set: set A
 * on days 35-45, set B from day 55 (the newest burst: trending finds it,
 * itemknn and pop prefer the older set). A user's held-out items are two
 * cluster items and two of set B, so only a model that combines the
 * channels ranks both kinds high. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusion/fusion_int.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/fusion.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

#define NU 400
#define NC 8
#define PER_C 13
#define NHOT 12 /* items per burst; two bursts */
#define NI (NC * PER_C + 2 * NHOT)
#define DAY 86400LL

static rf_events *planted(void) {
    /* items registered in id order so dense ids are predictable */
    rf_events *ev = rf_test_events_items(NI);
    rf_rng r;
    rf_rng_seed(&r, 7);
    char u[32], it[32];
    const int64_t t0 = 1700000000;
    for (int x = 0; x < NU; x++) {
        snprintf(u, sizeof u, "u%d", x);
        int c = x % NC;
        uint8_t used[NI] = {0};
        /* 16 events, one every 5 days: cluster items, and from the 8th on
         * every other one from a burst - set A on days 35-45, set B from
         * day 55 */
        for (int e = 0; e < 16; e++) {
            int item;
            int64_t ts = t0 + e * 5 * DAY + (int64_t)rf_rng_below(&r, DAY);
            int base = e < 7 || e % 2 == 0 ? -1 : e <= 9 ? NC * PER_C : NC * PER_C + NHOT;
            do item = base < 0 ? c * PER_C + (int)rf_rng_below(&r, PER_C)
                               : base + (int)rf_rng_below(&r, NHOT);
            while (used[item]);
            used[item] = 1;
            snprintf(it, sizeof it, "i%d", item);
            assert_int_equal(rf_events_push_str(ev, u, it, RF_EV_PURCHASE, 1, ts), 0);
        }
    }
    return ev;
}

/* Evaluation fixture: Protocol A split of the planted log. */
typedef struct fx {
    rf_events *ev;
    rf_split sp;
    rf_dataset *train;
    rf_csr *test;
} fx;

static void fx_init(fx *f) {
    memset(f, 0, sizeof *f);
    f->ev = planted();
    rf_err err;
    assert_int_equal(rf_split_user_ratio(f->ev, 0.2, 5, &f->sp, &err), 0);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    assert_int_equal(rf_dataset_build(f->sp.train, &o, &f->train, &err), 0);
    f->train->events = f->sp.train;
    assert_int_equal(rf_eval_relevance(f->sp.test, f->train->n_users, f->train->n_items, &f->test,
                                       &err), 0);
}

static void fx_free(fx *f) {
    rf_csr_free(f->test);
    rf_dataset_free(f->train);
    rf_split_free(&f->sp);
    rf_events_free(f->ev);
}

static rf_model *fit(fx *f, const char *name, const char *params) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new(name, &m, &err), 0);
    if (params) assert_int_equal(rf_model_set_params(m, params, &err), 0);
    m->data_opts.binary = 1;
    int rc = rf_model_fit(m, f->train, &err);
    if (rc) fail_msg("fit %s: %s", name, err.msg);
    return m;
}

static double ndcg10(fx *f, const rf_model *m) {
    int ks[1] = {10};
    rf_eval_opts eo;
    rf_eval_opts_default(&eo);
    eo.progress = 0;
    eo.auc = 0;
    rf_eval_result res;
    rf_err err;
    assert_int_equal(rf_evaluate_ex(m, f->train, f->test, ks, 1, &eo, &res, &err), 0);
    double v = res.value[0][RF_M_NDCG];
    rf_eval_result_free(&res);
    return v;
}

#define FUSION_PARAMS "itemknn=30,userknn=0,ials=0,ease=0,pop=20,trending=20,rules=0,trees=100,min_leaf=5"

static void test_beats_channels(void **state) {
    (void)state;
    fx f;
    fx_init(&f);
    rf_model *fu = fit(&f, "fusion", FUSION_PARAMS);
    double best = 0;
    const char *chans[] = {"itemknn", "pop", "trending"};
    for (int c = 0; c < 3; c++) {
        rf_model *m = fit(&f, chans[c], NULL);
        double v = ndcg10(&f, m);
        printf("  %-9s NDCG@10 %.4f\n", chans[c], v);
        if (v > best) best = v;
        rf_model_free(m);
    }
    double vf = ndcg10(&f, fu);
    printf("  fusion    NDCG@10 %.4f (best channel %.4f)\n", vf, best);
    if (!(vf > best * 1.05)) fail_msg("fusion %.4f does not beat the best channel %.4f by 5%%", vf, best);
    /* the weighted blend combines too, and the ranker is at least as good */
    rf_model *bw = fit(&f, "fusion", FUSION_PARAMS ",ranker=weighted");
    double vb = ndcg10(&f, bw);
    printf("  blend:weighted NDCG@10 %.4f\n", vb);
    assert_true(vb > best);
    rf_model_free(bw);
    /* the light alternative: the linear ranker combines the channels too */
    rf_model *li = fit(&f, "fusion", FUSION_PARAMS ",ranker=linear");
    double vl = ndcg10(&f, li);
    printf("  linear    NDCG@10 %.4f\n", vl);
    assert_true(vl > best);
    rf_model_free(li);
    rf_model_free(fu);
    fx_free(&f);
}

/* The stage-1 channels never see a slice pair. */
typedef struct leak {
    int64_t slice_pairs, leaked, stage1_nnz;
} leak;

static void hook(void *ud, const rf_dataset *d1, const rf_events *slice) {
    leak *l = ud;
    l->stage1_nnz = d1->ui->nnz;
    for (int64_t e = 0; e < slice->n; e++) {
        l->slice_pairs++;
        if (rf_csr_get(d1->ui, slice->user[e], slice->item[e]) != 0) l->leaked++;
    }
}

static void check_no_leak(fx *f, const char *params) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("fusion", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, params, &err), 0);
    leak l = {0};
    fu_impl *fi = m->impl;
    fi->hook = hook;
    fi->hook_ud = &l;
    m->data_opts.binary = 1;
    assert_int_equal(rf_model_fit(m, f->train, &err), 0);
    printf("  %s slice: slice events %lld, stage-1 entries %lld, train entries %lld\n",
           strstr(params, "slice=time") ? "time" : "user",
           (long long)l.slice_pairs, (long long)l.stage1_nnz, (long long)f->train->ui->nnz);
    assert_true(l.slice_pairs > NU);      /* a real slice: ~3 pairs per user */
    assert_int_equal(l.leaked, 0);        /* none of them in the stage-1 data */
    /* stage 1 is the rest of train: train = stage 1 + slice */
    assert_int_equal(l.stage1_nnz + l.slice_pairs, f->train->ui->nnz);
    /* and the served channels are refit on everything */
    const rf_model *knn = rf_fusion_channel(m, "itemknn");
    assert_non_null(knn);
    assert_int_equal(knn->n_users, f->train->n_users);
    assert_null(rf_fusion_channel(m, "ease"));
    rf_model_free(m);
}

static void test_no_leak(void **state) {
    (void)state;
    fx f;
    fx_init(&f);
    check_no_leak(&f, FUSION_PARAMS);               /* per-user slice (Protocol A rule) */
    check_no_leak(&f, FUSION_PARAMS ",slice=time"); /* global time cut */
    fx_free(&f);
}

static void test_save_load_determinism(void **state) {
    (void)state;
    fx f;
    fx_init(&f);
    rf_model *a = fit(&f, "fusion", FUSION_PARAMS);
    rf_set_threads(1); /* same seed, another thread count: the same model */
    rf_model *b = fit(&f, "fusion", FUSION_PARAMS);
    rf_set_threads(0);
    char *dir = rf_test_tmpdir("fusion");
    char path[512];
    snprintf(path, sizeof path, "%s/fusion.rfm", dir);
    rf_err err;
    assert_int_equal(rf_model_save(a, path, &err), 0);
    rf_model *c = NULL;
    if (rf_model_load(path, &c, &err)) fail_msg("load: %s", err.msg);
    float *sa = malloc(NI * sizeof(float)), *sb = malloc(NI * sizeof(float)),
          *sc = malloc(NI * sizeof(float));
    for (int32_t u = 0; u < NU; u += 37) {
        rf_hist h;
        rf_hist_from_row(f.train, u, &h);
        assert_int_equal(rf_model_score_all(a, u, &h, sa, &err), 0);
        assert_int_equal(rf_model_score_all(b, u, &h, sb, &err), 0);
        assert_int_equal(rf_model_score_all(c, u, &h, sc, &err), 0);
        assert_memory_equal(sa, sb, NI * sizeof(float)); /* any thread count, same model */
        assert_memory_equal(sa, sc, NI * sizeof(float)); /* file round trip */
    }
    /* a truncated file is refused */
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(path, size / 2), 0);
    rf_model *d = NULL;
    assert_int_not_equal(rf_model_load(path, &d, &err), 0);
    assert_null(d);
    free(sa);
    free(sb);
    free(sc);
    rf_model_free(a);
    rf_model_free(b);
    rf_model_free(c);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(&f);
}

static void test_explain(void **state) {
    (void)state;
    fx f;
    fx_init(&f);
    rf_model *m = fit(&f, "fusion", FUSION_PARAMS);
    rf_err err;
    int named = 0, total = 0;
    for (int32_t u = 0; u < NU; u += 13) {
        rf_hist h;
        rf_hist_from_row(f.train, u, &h);
        rf_scored top[10];
        int n = rf_model_recommend(m, u, &h, 10, NULL, NULL, top, &err);
        assert_true(n == 10);
        int32_t items[10];
        for (int t = 0; t < n; t++) items[t] = top[t].id;
        rf_reason why[10];
        assert_int_equal(rf_model_explain(m, u, &h, items, n, why, &err), 0);
        for (int t = 0; t < n; t++) {
            total++;
            assert_true(why[t].n_contrib >= 1);
            double sum = 0;
            for (int q = 0; q < why[t].n_contrib; q++) {
                assert_true(why[t].contrib[q].share >= 0);
                if (q) assert_true(why[t].contrib[q].share <= why[t].contrib[q - 1].share);
                sum += why[t].contrib[q].share;
            }
            assert_true(fabs(sum - 1) < 1e-4);
            assert_string_equal(why[t].channel, why[t].contrib[0].channel);
            if (why[t].ref_item >= 0) {
                /* the cited item is a real interaction of the user */
                int in = 0;
                for (int32_t q = 0; q < h.n; q++) in |= h.items[q] == why[t].ref_item;
                assert_true(in);
                const char *id = rf_idmap_str(m->items, why[t].ref_item);
                assert_non_null(strstr(why[t].text, id));
                named++;
            }
            if (u == 0 && t < 3) printf("  u0 %s: %s [%s]\n", rf_idmap_str(m->items, items[t]),
                                        why[t].text, why[t].kind);
        }
    }
    printf("  %d of %d reasons name a history item\n", named, total);
    assert_true(named > total / 4); /* cluster items are explained by their neighbours */
    rf_model_free(m);
    fx_free(&f);
}

/* A catalog above ease_max_items fits without the ease channel, and the
 * saved parameters say so, so the file loads with the channels it has. */
static void test_ease_limit(void **state) {
    (void)state;
    fx f;
    fx_init(&f);
    rf_model *m = fit(&f, "fusion", FUSION_PARAMS ",ease=20,ease_max_items=100");
    assert_null(rf_fusion_channel(m, "ease"));
    assert_non_null(rf_fusion_channel(m, "itemknn"));
    char buf[2048];
    rf_model_params_format(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "ease=0 "));
    char *dir = rf_test_tmpdir("fusion-ease");
    char path[512];
    snprintf(path, sizeof path, "%s/f.rfm", dir);
    rf_err err;
    assert_int_equal(rf_model_save(m, path, &err), 0);
    rf_model *c = NULL;
    if (rf_model_load(path, &c, &err)) fail_msg("load: %s", err.msg);
    assert_int_equal(rf_fusion_n_channels(c), rf_fusion_n_channels(m));
    rf_model_free(c);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(&f);
}

/* Loading with the Nth allocation failing: a clean error every time until
 * there are enough allocations, then a model that scores like the saved
 * one (ASan checks nothing leaks on the way). */
static void test_load_oom(void **state) {
    (void)state;
    fx f;
    fx_init(&f);
    rf_model *m = fit(&f, "fusion", FUSION_PARAMS);
    char *dir = rf_test_tmpdir("fusion-oom");
    char path[512];
    snprintf(path, sizeof path, "%s/f.rfm", dir);
    rf_err err;
    assert_int_equal(rf_model_save(m, path, &err), 0);
    int failures = 0, ok = 0;
    /* every failure point up to 300, then every 41st (a load makes a few
     * thousand allocations: the id maps of the model and its channels) */
    for (long n = 0; n < 100000 && !ok; n += n < 300 ? 1 : 41) {
        rf_model *c = NULL;
        rf_mem_fail_after(n);
        int rc = rf_model_load(path, &c, &err);
        rf_mem_fail_after(-1);
        if (rc) {
            assert_null(c);
            failures++;
            continue;
        }
        ok = 1;
        float a[NI], b[NI];
        rf_hist h;
        rf_hist_from_row(f.train, 3, &h);
        assert_int_equal(rf_model_score_all(m, 3, &h, a, &err), 0);
        assert_int_equal(rf_model_score_all(c, 3, &h, b, &err), 0);
        assert_memory_equal(a, b, sizeof a);
        rf_model_free(c);
    }
    printf("  load failed cleanly at %d failure points, then succeeded\n", failures);
    assert_true(ok && failures > 20);
    rf_model_free(m);
    rf_test_rmtree(dir);
    free(dir);
    fx_free(&f);
}

static void test_errors(void **state) {
    (void)state;
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("fusion", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, "itemknn=0,userknn=0,ials=0,ease=0,pop=0,trending=0,rules=0",
                                         &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "channel"));
    rf_model_free(m);
    assert_int_equal(rf_model_new("fusion", &m, &err), 0);
    fx f;
    fx_init(&f);
    f.train->events = NULL; /* no log: no slice can be cut */
    assert_int_equal(rf_model_fit(m, f.train, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "event log"));
    rf_model_free(m);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_leak),
        cmocka_unit_test(test_beats_channels),
        cmocka_unit_test(test_save_load_determinism),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_ease_limit),
        cmocka_unit_test(test_load_oom),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
