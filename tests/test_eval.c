/* test_eval.c - unit tests of src/eval: the metrics of one list against a
 * brute-force oracle, rf_evaluate on hand-computed and random cases (with
 * a fixed scorer model defined here) against a dense brute-force
 * evaluation of every metric (accuracy, AUC by counting pairs, novelty,
 * popularity bias, intra-list diversity by category and by vectors,
 * revenue, RMSE/MAE, coverage, Gini by the mean absolute difference),
 * thread-count independence, the batched scoring path, sampled negatives,
 * id translation for models trained on other maps, the table and the
 * JSON report, and the real "pop". */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_int.h"
#include "recfuse/csr.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/events.h"
#include "recfuse/idmap.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/topk.h"
#include "testutil.h"

#define EPS 1e-12

/* ---- brute-force oracle ---------------------------------------------- */

/* Metrics straight from the definitions, with linear scans and no shared
 * code with metrics.c. */
static void oracle_list(const int32_t *ranked, int n, const int32_t *rel, int n_rel, int k,
                        double *out) {
    int hits = 0;
    double dcg = 0, ap = 0, rr = 0;
    for (int r = 0; r < n && r < k; r++) {
        int is_rel = 0;
        for (int j = 0; j < n_rel; j++)
            if (rel[j] == ranked[r])
                is_rel = 1;
        if (!is_rel)
            continue;
        hits++;
        dcg += log(2.0) / log(r + 2.0);
        ap += (double)hits / (r + 1);
        if (hits == 1)
            rr = 1.0 / (r + 1);
    }
    double idcg = 0;
    int ideal = 0;
    for (int r = 0; r < k && r < n_rel; r++) {
        idcg += log(2.0) / log(r + 2.0);
        ideal++;
    }
    out[RF_M_PRECISION] = (double)hits / k;
    out[RF_M_RECALL] = (double)hits / n_rel;
    out[RF_M_NDCG] = dcg / idcg;
    out[RF_M_MAP] = ap / ideal;
    out[RF_M_HITRATE] = hits ? 1 : 0;
    out[RF_M_MRR] = rr;
}

static void assert_close(double got, double want, double eps, const char *what) {
    if (fabs(got - want) > eps) {
        print_error("%s: got %.15g, want %.15g\n", what, got, want);
        fail();
    }
}

/* ---- a fixed scorer model ---------------------------------------------
 * score(u, i) = base[u][i] + sum over history items j of w_j * co[j][i]
 * for known users, fallback[i] for user -1. Histories must arrive sorted
 * (the model contract), which the scorer checks. Ids are the model's. */

typedef struct fixed_impl {
    int32_t nu, ni;
    float *base;     /* nu x ni */
    float *co;       /* ni x ni */
    float *fallback; /* ni */
    int fail_user;   /* score_all fails for this user (-2: never) */
    float *vec;      /* ni x dim item vectors (fixed_full_ops), or NULL */
    int dim;
} fixed_impl;

static int fixed_score(const rf_model *m, int32_t user, const rf_hist *h, float *out, rf_err *err) {
    const fixed_impl *f = m->impl;
    if (user == f->fail_user)
        return rf_err_set(err, RF_EIO, "scorer failed for user %d", user);
    if (user < 0) {
        memcpy(out, f->fallback, (size_t)f->ni * sizeof *out);
    } else {
        memcpy(out, f->base + (size_t)user * f->ni, (size_t)f->ni * sizeof *out);
    }
    for (int32_t j = 0; j < h->n; j++) {
        if (j > 0 && h->items[j] <= h->items[j - 1])
            return rf_err_set(err, RF_EINVAL, "history not sorted");
        float w = h->weights ? h->weights[j] : 1.0f;
        for (int32_t i = 0; i < f->ni; i++)
            out[i] += w * f->co[(size_t)h->items[j] * f->ni + i];
    }
    return 0;
}

static const rf_model_ops fixed_ops = {
    .name = "fixed",
    .help = "test scorer",
    .score_all = fixed_score,
};

/* The same scorer through the batched hook, with item vectors. */
static int fixed_batch(const rf_model *m, int32_t n, const int32_t *users, const rf_hist *hists,
                       float *out, rf_err *err) {
    for (int32_t r = 0; r < n; r++) {
        int rc = fixed_score(m, users[r], &hists[r], out + (size_t)r * m->n_items, err);
        if (rc)
            return rc;
    }
    return 0;
}

static const float *fixed_vectors(const rf_model *m, int *dim) {
    const fixed_impl *f = m->impl;
    *dim = f->dim;
    return f->vec;
}

static const rf_model_ops fixed_full_ops = {
    .name = "fixed",
    .help = "test scorer, batched, with item vectors",
    .score_all = fixed_score,
    .score_batch = fixed_batch,
    .item_vectors = fixed_vectors,
};

static rf_model make_model(fixed_impl *f) {
    rf_model m;
    memset(&m, 0, sizeof m);
    m.ops = &fixed_ops;
    m.impl = f;
    m.n_users = f->nu;
    m.n_items = f->ni;
    m.fitted = 1;
    return m;
}

static void fixed_alloc(fixed_impl *f, int32_t nu, int32_t ni) {
    f->nu = nu;
    f->ni = ni;
    f->base = calloc((size_t)nu * ni, sizeof(float));
    f->co = calloc((size_t)ni * ni, sizeof(float));
    f->fallback = calloc((size_t)ni, sizeof(float));
    f->fail_user = -2;
    f->vec = NULL;
    f->dim = 0;
}

static void fixed_free(fixed_impl *f) {
    free(f->vec);
    free(f->base);
    free(f->co);
    free(f->fallback);
}

/* Dataset from a dense nu x ni weight matrix (0 = no entry). */
static rf_dataset *make_dataset(int32_t nu, int32_t ni, const float *w) {
    int64_t nnz = 0;
    for (int64_t i = 0; i < (int64_t)nu * ni; i++)
        nnz += w[i] != 0;
    int32_t *r = malloc((size_t)(nnz + 1) * sizeof *r), *c = malloc((size_t)(nnz + 1) * sizeof *c);
    float *v = malloc((size_t)(nnz + 1) * sizeof *v);
    int64_t k = 0;
    for (int32_t u = 0; u < nu; u++)
        for (int32_t i = 0; i < ni; i++)
            if (w[(size_t)u * ni + i] != 0) {
                r[k] = u;
                c[k] = i;
                v[k] = w[(size_t)u * ni + i];
                k++;
            }
    rf_dataset *d = rf_calloc(1, sizeof *d);
    d->n_users = nu;
    d->n_items = ni;
    assert_int_equal(rf_csr_from_coo(nu, ni, nnz, r, c, v, RF_FOLD_SUM, &d->ui, NULL), 0);
    assert_int_equal(rf_csr_transpose(d->ui, &d->iu), 0);
    free(r);
    free(c);
    free(v);
    return d;
}

static void free_dataset(rf_dataset *d) {
    if (!d)
        return;
    rf_csr_free(d->ui);
    rf_csr_free(d->iu);
    rf_free(d->ui_ts);
    rf_free(d);
}

/* Binary test matrix from a dense nu x ni 0/1 matrix. */
static rf_csr *make_test(int32_t nu, int32_t ni, const uint8_t *rel) {
    int64_t nnz = 0;
    for (int64_t i = 0; i < (int64_t)nu * ni; i++)
        nnz += rel[i] != 0;
    int32_t *r = malloc((size_t)(nnz + 1) * sizeof *r), *c = malloc((size_t)(nnz + 1) * sizeof *c);
    int64_t k = 0;
    for (int32_t u = 0; u < nu; u++)
        for (int32_t i = 0; i < ni; i++)
            if (rel[(size_t)u * ni + i]) {
                r[k] = u;
                c[k] = i;
                k++;
            }
    rf_csr *t;
    assert_int_equal(rf_csr_from_coo(nu, ni, nnz, r, c, NULL, RF_FOLD_MAX, &t, NULL), 0);
    free(r);
    free(c);
    return t;
}

/* ---- metric names ------------------------------------------------------ */

static void test_metric_names(void **state) {
    (void)state;
    const char *want[] = {"P",   "R",   "NDCG",   "MAP", "HR",   "MRR", "AUC", "Nov",
                          "ARP", "ILD", "ILDemb", "Rev", "RMSE", "MAE", "Cov", "Gini"};
    for (int m = 0; m < RF_M_COUNT; m++) {
        assert_string_equal(rf_metric_name(m), want[m]);
        assert_int_equal(rf_metric_parse(want[m]), m);
    }
    assert_null(rf_metric_name(-1));
    assert_null(rf_metric_name(RF_M_COUNT));
    assert_int_equal(rf_metric_parse("ndcg"), RF_M_NDCG);
    assert_int_equal(rf_metric_parse("recall"), RF_M_RECALL);
    assert_int_equal(rf_metric_parse("coverage"), RF_M_COVERAGE);
    assert_int_equal(rf_metric_parse("nope"), -1);
    assert_int_equal(rf_metric_parse(NULL), -1);
    assert_int_equal(RF_M_PER_USER, RF_M_COUNT - 2);
    assert_int_equal(rf_metric_parse("popbias"), RF_M_ARP);
    assert_int_equal(rf_metric_parse("novelty"), RF_M_NOVELTY);
    /* labels */
    char buf[32];
    rf_metric_label(RF_M_NDCG, 10, buf, sizeof buf);
    assert_string_equal(buf, "NDCG@10");
    rf_metric_label(RF_M_AUC, 10, buf, sizeof buf);
    assert_string_equal(buf, "AUC");
    int mt, k;
    assert_int_equal(rf_metric_label_parse("ndcg@20", &mt, &k), 0);
    assert_int_equal(mt, RF_M_NDCG);
    assert_int_equal(k, 20);
    assert_int_equal(rf_metric_label_parse("AUC", &mt, &k), 0);
    assert_int_equal(mt, RF_M_AUC);
    assert_int_equal(k, 0);
    assert_int_equal(rf_metric_label_parse("ndcg", &mt, &k), -1);  /* needs K */
    assert_int_equal(rf_metric_label_parse("auc@10", &mt, &k), -1); /* takes none */
    assert_int_equal(rf_metric_label_parse("ndcg@0", &mt, &k), -1);
    assert_int_equal(rf_metric_label_parse("ndcg@1x", &mt, &k), -1);
    assert_int_equal(rf_metric_label_parse("what@10", &mt, &k), -1);
    assert_true(rf_metric_higher_better(RF_M_NDCG));
    assert_false(rf_metric_higher_better(RF_M_RMSE));
    assert_false(rf_metric_higher_better(RF_M_ARP));
    assert_false(rf_metric_at_k(RF_M_MAE));
}

/* ---- rf_eval_list ------------------------------------------------------ */

static void test_list_hand(void **state) {
    (void)state;
    double o[RF_M_PER_USER];
    const int32_t ranked[] = {5, 3, 9, 1};
    const int32_t rel[] = {1, 3, 7};
    const double l3 = 1.0 / log2(3.0), l5 = 1.0 / log2(5.0);

    /* K=3: one hit at rank 2. */
    rf_eval_list(ranked, 4, rel, 3, 3, o);
    assert_close(o[RF_M_PRECISION], 1.0 / 3, EPS, "P@3");
    assert_close(o[RF_M_RECALL], 1.0 / 3, EPS, "R@3");
    assert_close(o[RF_M_NDCG], l3 / (1 + l3 + 0.5), EPS, "NDCG@3");
    assert_close(o[RF_M_MAP], 0.5 / 3, EPS, "MAP@3");
    assert_close(o[RF_M_HITRATE], 1, EPS, "HR@3");
    assert_close(o[RF_M_MRR], 0.5, EPS, "MRR@3");

    /* K=4: hits at ranks 2 and 4; ideal over min(4, 3) = 3 positions. */
    rf_eval_list(ranked, 4, rel, 3, 4, o);
    assert_close(o[RF_M_PRECISION], 0.5, EPS, "P@4");
    assert_close(o[RF_M_RECALL], 2.0 / 3, EPS, "R@4");
    assert_close(o[RF_M_NDCG], (l3 + l5) / (1 + l3 + 0.5), EPS, "NDCG@4");
    assert_close(o[RF_M_MAP], (0.5 + 0.5) / 3, EPS, "MAP@4");
    assert_close(o[RF_M_MRR], 0.5, EPS, "MRR@4");

    /* K=1: no hit. */
    rf_eval_list(ranked, 4, rel, 3, 1, o);
    for (int m = 0; m < RF_M_PER_USER; m++)
        assert_close(o[m], 0, EPS, "K=1");

    /* n < K: P is still hits/K; the rest are perfect. */
    const int32_t one[] = {3}, rel1[] = {3};
    rf_eval_list(one, 1, rel1, 1, 10, o);
    assert_close(o[RF_M_PRECISION], 0.1, EPS, "P@10 short list");
    assert_close(o[RF_M_RECALL], 1, EPS, "R@10 short list");
    assert_close(o[RF_M_NDCG], 1, EPS, "NDCG@10 short list");
    assert_close(o[RF_M_MAP], 1, EPS, "MAP@10 short list");
    assert_close(o[RF_M_MRR], 1, EPS, "MRR@10 short list");

    /* Empty list: all zero. A relevant id the list cannot hold (unknown
     * item) still counts in |rel|. */
    rf_eval_list(NULL, 0, rel, 3, 10, o);
    for (int m = 0; m < RF_M_PER_USER; m++)
        assert_close(o[m], 0, EPS, "empty list");
    const int32_t rel2[] = {3, 1000};
    rf_eval_list(one, 1, rel2, 2, 1, o);
    assert_close(o[RF_M_RECALL], 0.5, EPS, "R@1 unknown relevant");
    assert_close(o[RF_M_NDCG], 1, EPS, "NDCG@1 unknown relevant");
    assert_close(o[RF_M_MAP], 1, EPS, "MAP@1");
}

static void test_list_random(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 42);
    int32_t ranked[64], rel[64];
    double a[RF_M_PER_USER], b[RF_M_PER_USER];
    for (int iter = 0; iter < 20000; iter++) {
        int universe = 1 + (int)rf_rng_below(&rng, 80);
        int n = (int)rf_rng_below(&rng, 40);
        if (n > universe)
            n = universe;
        /* ranked: n distinct ids from [0, universe) */
        int32_t perm[80];
        for (int i = 0; i < universe; i++)
            perm[i] = i;
        rf_rng_shuffle_i32(&rng, perm, universe);
        memcpy(ranked, perm, (size_t)n * sizeof *ranked);
        /* rel: distinct sorted ids from [0, universe + 10) */
        int n_rel = 0;
        double p = rf_rng_uniform(&rng) * 0.5;
        for (int i = 0; i < universe + 10 && n_rel < 64; i++)
            if (rf_rng_uniform(&rng) < p)
                rel[n_rel++] = i;
        if (n_rel == 0)
            rel[n_rel++] = (int32_t)rf_rng_below(&rng, (uint64_t)universe + 10);
        int k = 1 + (int)rf_rng_below(&rng, 50);
        rf_eval_list(ranked, n, rel, n_rel, k, a);
        oracle_list(ranked, n, rel, n_rel, k, b);
        for (int m = 0; m < RF_M_PER_USER; m++) {
            char what[64];
            snprintf(what, sizeof what, "iter %d %s@%d", iter, rf_metric_name(m), k);
            /* rf_eval_list computes P..MRR and zeroes the rest */
            assert_close(a[m], m < RF_M_N_LIST ? b[m] : 0, 1e-12, what);
        }
    }
}

/* ---- rf_evaluate, hand-computed ----------------------------------------
 * 4 users x 5 items.
 *   user 0: train {0}, test {1, 4}
 *   user 1: train {1, 2}, test {} -> skipped
 *   user 2: train {3}, test {0}
 *   user 3: train {}, test {2} (cold: scored as known user 3 with empty hist)
 * Scores (no co-occurrence): every user base = [5, 4, 3, 2, 1] except
 * user 2 base = [1, 1, 1, 1, 1] (ties -> smaller id first).
 * Top lists after excluding train, K = 2:
 *   user 0: [1, 2]  -> hit at rank 1 (|rel| 2)
 *   user 2: [0, 1]  -> hit at rank 1 (|rel| 1)
 *   user 3: [0, 1]  -> no hit (|rel| 1)
 * K = 3: user 0: [1,2,3] (1 hit), user 2: [0,1,2], user 3: [0,1,2] hit @3. */
static void test_evaluate_hand(void **state) {
    (void)state;
    const float w[4 * 5] = {1,      0, 0, 0, 0, /**/ 0, 1, 1, 0, 0, /**/ 0, 0, 0, 1, 0,
                            /**/ 0, 0, 0, 0, 0};
    const uint8_t rel[4 * 5] = {0,      1, 0, 0, 1, /**/ 0, 0, 0, 0, 0, /**/ 1, 0, 0, 0, 0,
                                /**/ 0, 0, 1, 0, 0};
    rf_dataset *d = make_dataset(4, 5, w);
    rf_csr *t = make_test(4, 5, rel);
    fixed_impl f;
    fixed_alloc(&f, 4, 5);
    for (int u = 0; u < 4; u++)
        for (int i = 0; i < 5; i++)
            f.base[u * 5 + i] = u == 2 ? 1.0f : (float)(5 - i);
    rf_model m = make_model(&f);

    const int ks[] = {2, 3};
    rf_eval_result r;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_evaluate(&m, d, t, ks, 2, &r, &err), 0);
    assert_string_equal(r.model, "fixed");
    assert_int_equal(r.n_users, 3);
    assert_int_equal(r.users[0], 0);
    assert_int_equal(r.users[1], 2);
    assert_int_equal(r.users[2], 3);
    assert_int_equal(r.n_cold_users, 1);
    assert_int_equal(r.n_rel, 4);
    assert_int_equal(r.n_unreachable, 0);
    assert_int_equal(r.n_cov_items, 4); /* item 4 has no train interaction */

    /* K = 2 */
    assert_close(r.value[0][RF_M_PRECISION], (0.5 + 0.5 + 0) / 3, EPS, "P@2");
    assert_close(r.value[0][RF_M_RECALL], (0.5 + 1 + 0) / 3, EPS, "R@2");
    double idcg2 = 1 + 1 / log2(3.0);
    assert_close(r.value[0][RF_M_NDCG], (1 / idcg2 + 1 + 0) / 3, EPS, "NDCG@2");
    assert_close(r.value[0][RF_M_MAP], (1.0 / 2 + 1 + 0) / 3, EPS, "MAP@2");
    assert_close(r.value[0][RF_M_HITRATE], 2.0 / 3, EPS, "HR@2");
    assert_close(r.value[0][RF_M_MRR], 2.0 / 3, EPS, "MRR@2");
    /* items in top-2 lists: {1, 2, 0} of 4 items with train data */
    assert_close(r.value[0][RF_M_COVERAGE], 3.0 / 4, EPS, "Cov@2");

    /* K = 3 */
    assert_close(r.value[1][RF_M_PRECISION], (1.0 / 3 + 1.0 / 3 + 1.0 / 3) / 3, EPS, "P@3");
    assert_close(r.value[1][RF_M_RECALL], (0.5 + 1 + 1) / 3, EPS, "R@3");
    assert_close(r.value[1][RF_M_NDCG], (1 / idcg2 + 1 + 0.5) / 3, EPS, "NDCG@3");
    assert_close(r.value[1][RF_M_MAP], (0.5 + 1 + 1.0 / 3) / 3, EPS, "MAP@3");
    assert_close(r.value[1][RF_M_HITRATE], 1, EPS, "HR@3");
    assert_close(r.value[1][RF_M_MRR], (1 + 1 + 1.0 / 3) / 3, EPS, "MRR@3");
    assert_close(r.value[1][RF_M_COVERAGE], 4.0 / 4, EPS, "Cov@3"); /* {0,1,2,3} */

    /* AUC: user 0 orders (1 > 2, 1 > 3) right and (4 > 2, 4 > 3) wrong;
     * users 2 and 3 get 1.5 of 3 (all ties) and 2 of 4: 0.5 each. */
    assert_close(r.value[0][RF_M_AUC], 0.5, EPS, "AUC");
    assert_close(r.value[1][RF_M_AUC], 0.5, EPS, "AUC (any K)");
    /* Every train item has one user, 3 users have train data. */
    assert_close(r.value[0][RF_M_NOVELTY], log2(3.0), EPS, "Nov@2");
    assert_close(r.value[0][RF_M_ARP], 1.0, EPS, "ARP@2");
    /* Exposure at K = 2: item 0 twice, 1 three times, 2 once, 3 never
     * (item 4: no train data, never shown, not counted): sorted
     * (0, 1, 2, 3), sum_i (2i - n - 1) x_i = 10, Gini = 10 / (4 * 6). */
    assert_close(r.value[0][RF_M_GINI], 10.0 / 24, EPS, "Gini@2");
    assert_true(r.has[RF_M_AUC] && r.has[RF_M_GINI] && !r.has[RF_M_RMSE] && !r.has[RF_M_ILD]);

    /* Per-user values line up with users[]. */
    assert_close(r.per_user[(2 * 2 + 1) * RF_M_PER_USER + RF_M_MRR], 1.0 / 3, EPS, "user 3 MRR@3");
    rf_eval_result_free(&r);
    assert_null(r.per_user);
    rf_eval_result_free(NULL);

    /* Error paths: bad K, too many Ks, unfitted model, failing scorer. */
    const int bad[] = {0};
    assert_int_equal(rf_evaluate(&m, d, t, bad, 1, &r, &err), RF_EINVAL);
    assert_null(r.per_user);
    int many[RF_EVAL_MAX_K + 1];
    for (int i = 0; i <= RF_EVAL_MAX_K; i++)
        many[i] = i + 1;
    assert_int_equal(rf_evaluate(&m, d, t, many, RF_EVAL_MAX_K + 1, &r, &err), RF_EINVAL);
    assert_int_equal(rf_evaluate(&m, d, t, ks, 0, &r, &err), RF_EINVAL);
    m.fitted = 0;
    assert_int_equal(rf_evaluate(&m, d, t, ks, 1, &r, &err), RF_ESTATE);
    m.fitted = 1;
    f.fail_user = 2;
    rf_err_clear(&err);
    assert_int_equal(rf_evaluate(&m, d, t, ks, 1, &r, &err), RF_EIO);
    assert_non_null(strstr(err.msg, "scorer failed for user 2"));
    assert_null(r.per_user);
    assert_null(r.users);

    fixed_free(&f);
    free_dataset(d);
    rf_csr_free(t);
}

/* ---- rf_evaluate, random against brute force ---------------------------- */

typedef struct sitem {
    float s;
    int32_t id;
} sitem;

static int cmp_sitem(const void *pa, const void *pb) {
    const sitem *a = pa, *b = pb;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Side information for the oracle (all optional). */
typedef struct oside {
    const int32_t *cat;   /* ni */
    const double *price;  /* ni */
    const float *vec;     /* ni x dim */
    int dim;
    const float *ratings; /* nu_test x ni_test, NAN = no rating */
} oside;

/* Brute force over the dense matrices: full sort of every user's scores,
 * every metric straight from its definition (pairs counted one by one). */
static void oracle_evaluate_ex(const rf_model *m, int32_t nu_train, int32_t ni, const float *w,
                               int32_t nu_test, int32_t ni_test, const uint8_t *rel, const int *ks,
                               int n_ks, const oside *side, double value[][RF_M_COUNT],
                               int32_t *n_users) {
    double sums[RF_EVAL_MAX_K][RF_M_COUNT];
    memset(sums, 0, sizeof sums);
    int *expo = calloc((size_t)RF_EVAL_MAX_K * ni, sizeof *expo);
    float *sc = malloc((size_t)ni * sizeof *sc);
    sitem *all = malloc((size_t)ni * sizeof *all);
    int32_t *hist = malloc((size_t)ni * sizeof *hist),
            *ranked = malloc((size_t)ni * sizeof *ranked);
    float *hw = malloc((size_t)ni * sizeof *hw);
    int32_t *rl = malloc((size_t)ni_test * sizeof *rl);
    double *pop = calloc((size_t)ni, sizeof *pop);
    int n_pop = 0;
    for (int32_t u = 0; u < nu_train; u++) {
        int any = 0;
        for (int32_t i = 0; i < ni; i++)
            if (w[(size_t)u * ni + i] != 0) {
                pop[i] += 1;
                any = 1;
            }
        n_pop += any;
    }
    double sse = 0, sae = 0;
    long npairs = 0;
    int32_t cnt = 0;
    for (int32_t u = 0; u < nu_test; u++) {
        int n_rel = 0;
        for (int32_t i = 0; i < ni_test; i++)
            if (rel[(size_t)u * ni_test + i])
                rl[n_rel++] = i;
        if (n_rel == 0)
            continue;
        cnt++;
        rf_hist h = {0, hist, hw, NULL};
        if (u < nu_train)
            for (int32_t i = 0; i < ni; i++)
                if (w[(size_t)u * ni + i] != 0) {
                    hist[h.n] = i;
                    hw[h.n] = w[(size_t)u * ni + i];
                    h.n++;
                }
        assert_int_equal(m->ops->score_all(m, u < nu_train ? u : -1, &h, sc, NULL), 0);
        /* rating errors on the raw scores */
        double use = 0, uae = 0;
        int un = 0;
        if (side && side->ratings)
            for (int32_t i = 0; i < ni_test && i < ni; i++) {
                float r = side->ratings[(size_t)u * ni_test + i];
                if (isnan(r) || !isfinite(sc[i]))
                    continue;
                double e = (double)sc[i] - r;
                use += e * e;
                uae += fabs(e);
                un++;
            }
        sse += use;
        sae += uae;
        npairs += un;
        int n = 0;
        for (int32_t i = 0; i < ni; i++) {
            int in_train = u < nu_train && w[(size_t)u * ni + i] != 0;
            if (in_train || !(sc[i] > -INFINITY))
                continue;
            all[n].s = sc[i];
            all[n].id = i;
            n++;
        }
        /* AUC: every (relevant, non-relevant candidate) pair */
        double good = 0;
        int n_neg = 0;
        for (int c = 0; c < n; c++) {
            int is_rel = 0;
            for (int j = 0; j < n_rel; j++)
                is_rel |= rl[j] == all[c].id;
            n_neg += !is_rel;
        }
        for (int j = 0; j < n_rel; j++) {
            int r = rl[j], cand = -1;
            for (int c = 0; c < n; c++)
                if (all[c].id == r)
                    cand = c;
            if (cand < 0)
                continue; /* unrankable: beats nothing */
            for (int c = 0; c < n; c++) {
                int is_rel = 0;
                for (int q = 0; q < n_rel; q++)
                    is_rel |= rl[q] == all[c].id;
                if (is_rel)
                    continue;
                good += all[cand].s > all[c].s ? 1 : all[cand].s == all[c].s ? 0.5 : 0;
            }
        }
        double auc = n_neg ? good / ((double)n_rel * n_neg) : 0.5;
        qsort(all, (size_t)n, sizeof *all, cmp_sitem);
        for (int i = 0; i < n; i++)
            ranked[i] = all[i].id;
        for (int ki = 0; ki < n_ks; ki++) {
            double o[RF_M_PER_USER];
            int len = n < ks[ki] ? n : ks[ki];
            oracle_list(ranked, len, rl, n_rel, ks[ki], o);
            for (int mt = 0; mt < RF_M_N_LIST; mt++)
                sums[ki][mt] += o[mt];
            sums[ki][RF_M_AUC] += auc;
            double nov = 0, arp = 0, rev = 0, dc = 0, dv = 0;
            for (int a = 0; a < len; a++) {
                double p = pop[ranked[a]] < 1 ? 1 : pop[ranked[a]];
                nov += -log(p / n_pop) / log(2.0);
                arp += pop[ranked[a]];
                expo[(size_t)ki * ni + ranked[a]]++;
                for (int j = 0; j < n_rel; j++)
                    if (side && side->price && rl[j] == ranked[a] && !isnan(side->price[ranked[a]]))
                        rev += side->price[ranked[a]];
                for (int b = a + 1; b < len; b++) {
                    if (side && side->cat)
                        dc += side->cat[ranked[a]] != side->cat[ranked[b]];
                    if (side && side->vec) {
                        const float *va = side->vec + (size_t)ranked[a] * side->dim;
                        const float *vb = side->vec + (size_t)ranked[b] * side->dim;
                        double ab = 0, aa = 0, bb = 0;
                        for (int d = 0; d < side->dim; d++) {
                            ab += (double)va[d] * vb[d];
                            aa += (double)va[d] * va[d];
                            bb += (double)vb[d] * vb[d];
                        }
                        dv += 1 - (aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0);
                    }
                }
            }
            double pairs = len * (len - 1) / 2.0;
            if (len > 0) {
                sums[ki][RF_M_NOVELTY] += n_pop ? nov / len : 0; /* no train data: 0 */
                sums[ki][RF_M_ARP] += arp / len;
            }
            if (len > 1) {
                sums[ki][RF_M_ILD] += dc / pairs;
                sums[ki][RF_M_ILD_EMB] += dv / pairs;
            }
            sums[ki][RF_M_REVENUE] += rev;
        }
    }
    int n_cov = 0;
    for (int32_t i = 0; i < ni; i++)
        n_cov += pop[i] > 0;
    for (int ki = 0; ki < n_ks; ki++) {
        for (int mt = 0; mt < RF_M_PER_USER; mt++)
            value[ki][mt] = cnt ? sums[ki][mt] / cnt : 0;
        value[ki][RF_M_RMSE] = npairs ? sqrt(sse / npairs) : 0;
        value[ki][RF_M_MAE] = npairs ? sae / npairs : 0;
        int c = 0;
        for (int32_t i = 0; i < ni; i++)
            c += pop[i] > 0 && expo[(size_t)ki * ni + i] > 0;
        value[ki][RF_M_COVERAGE] = n_cov ? (double)c / n_cov : 0;
        /* Gini = sum |x_a - x_b| / (2 n^2 mean) over the population */
        double ad = 0, tot = 0;
        int np = 0;
        for (int32_t a = 0; a < ni; a++) {
            int xa = expo[(size_t)ki * ni + a];
            if (!(pop[a] > 0 || xa > 0))
                continue;
            np++;
            tot += xa;
            for (int32_t b = 0; b < ni; b++) {
                int xb = expo[(size_t)ki * ni + b];
                if (pop[b] > 0 || xb > 0)
                    ad += abs(xa - xb);
            }
        }
        value[ki][RF_M_GINI] = np >= 2 && tot > 0 ? ad / (2.0 * np * tot) : 0;
    }
    *n_users = cnt;
    free(expo);
    free(sc);
    free(all);
    free(hist);
    free(ranked);
    free(hw);
    free(rl);
    free(pop);
}

static void oracle_evaluate(const rf_model *m, int32_t nu_train, int32_t ni, const float *w,
                            int32_t nu_test, int32_t ni_test, const uint8_t *rel, const int *ks,
                            int n_ks, double value[][RF_M_COUNT], int32_t *n_users) {
    oracle_evaluate_ex(m, nu_train, ni, w, nu_test, ni_test, rel, ks, n_ks, NULL, value, n_users);
}

/* The metrics a plain rf_evaluate computes. */
static int default_metric(int mt) {
    return mt != RF_M_ILD && mt != RF_M_ILD_EMB && mt != RF_M_REVENUE && mt != RF_M_RMSE &&
           mt != RF_M_MAE;
}

static void test_evaluate_random(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 7);
    for (int iter = 0; iter < 30; iter++) {
        int32_t nu = 1 + (int32_t)rf_rng_below(&rng, 60);
        int32_t ni = 1 + (int32_t)rf_rng_below(&rng, 50);
        /* the test matrix may hold users and items unknown to train */
        int32_t nu_t = nu + (int32_t)rf_rng_below(&rng, 4);
        int32_t ni_t = ni + (int32_t)rf_rng_below(&rng, 3);
        float *w = calloc((size_t)nu * ni, sizeof *w);
        uint8_t *rel = calloc((size_t)nu_t * ni_t, 1);
        float *ratings = malloc((size_t)nu_t * ni_t * sizeof *ratings);
        double dens = 0.05 + 0.3 * rf_rng_uniform(&rng);
        for (int64_t i = 0; i < (int64_t)nu * ni; i++)
            if (rf_rng_uniform(&rng) < dens)
                w[i] = (float)(1 + rf_rng_below(&rng, 3));
        for (int32_t u = 0; u < nu_t; u++)
            for (int32_t i = 0; i < ni_t; i++) {
                int in_train = u < nu && i < ni && w[(size_t)u * ni + i] != 0;
                /* mostly disjoint from train, like a split; sometimes not */
                double p = in_train ? 0.02 : 0.15;
                ratings[(size_t)u * ni_t + i] = NAN;
                if (rf_rng_uniform(&rng) < p) {
                    rel[(size_t)u * ni_t + i] = 1;
                    if (rf_rng_uniform(&rng) < 0.7)
                        ratings[(size_t)u * ni_t + i] = (float)(1 + rf_rng_below(&rng, 5));
                }
            }
        fixed_impl f;
        fixed_alloc(&f, nu, ni);
        /* coarse scores make ties; some items unscorable */
        for (int64_t i = 0; i < (int64_t)nu * ni; i++) {
            f.base[i] = (float)rf_rng_below(&rng, 5);
            if (rf_rng_uniform(&rng) < 0.03)
                f.base[i] = -INFINITY;
        }
        for (int64_t i = 0; i < (int64_t)ni * ni; i++)
            f.co[i] = rf_rng_uniform(&rng) < 0.2 ? (float)rf_rng_below(&rng, 3) : 0;
        for (int32_t i = 0; i < ni; i++)
            f.fallback[i] = (float)rf_rng_below(&rng, 4);
        /* item vectors (some zero), categories, prices (some unknown) */
        f.dim = 1 + (int)rf_rng_below(&rng, 6);
        f.vec = malloc((size_t)ni * f.dim * sizeof *f.vec);
        for (int64_t i = 0; i < (int64_t)ni * f.dim; i++)
            f.vec[i] = (float)(rf_rng_uniform(&rng) * 2 - 1);
        if (ni > 2)
            memset(f.vec, 0, (size_t)f.dim * sizeof *f.vec);
        int32_t *cat = malloc((size_t)ni * sizeof *cat);
        double *price = malloc((size_t)ni * sizeof *price);
        for (int32_t i = 0; i < ni; i++) {
            cat[i] = (int32_t)rf_rng_below(&rng, 4) - 1; /* -1 = unknown */
            price[i] = rf_rng_uniform(&rng) < 0.2 ? NAN : (double)rf_rng_below(&rng, 1000) / 8;
        }
        rf_model m = make_model(&f);
        rf_dataset *d = make_dataset(nu, ni, w);
        rf_csr *t = make_test(nu_t, ni_t, rel);
        rf_csr *rt;
        {
            int32_t *rr = malloc((size_t)nu_t * ni_t * sizeof *rr + 4);
            int32_t *rc = malloc((size_t)nu_t * ni_t * sizeof *rc + 4);
            float *rv = malloc((size_t)nu_t * ni_t * sizeof *rv + 4);
            int64_t k = 0;
            for (int32_t u = 0; u < nu_t; u++)
                for (int32_t i = 0; i < ni_t; i++)
                    if (!isnan(ratings[(size_t)u * ni_t + i])) {
                        rr[k] = u;
                        rc[k] = i;
                        rv[k] = ratings[(size_t)u * ni_t + i];
                        k++;
                    }
            assert_int_equal(rf_csr_from_coo(nu_t, ni_t, k, rr, rc, rv, RF_FOLD_LAST, &rt, NULL),
                             0);
            free(rr);
            free(rc);
            free(rv);
        }

        int ks[3] = {1 + (int)rf_rng_below(&rng, 5), 5 + (int)rf_rng_below(&rng, 10),
                     10 + (int)rf_rng_below(&rng, 60)};
        double want[RF_EVAL_MAX_K][RF_M_COUNT];
        int32_t want_users;
        oside side = {cat, price, f.vec, f.dim, ratings};
        oracle_evaluate_ex(&m, nu, ni, w, nu_t, ni_t, rel, ks, 3, &side, want, &want_users);

        /* plain evaluation: the default metrics */
        rf_eval_result r1, r4, rb1, rb4;
        rf_err err;
        rf_set_threads(1);
        assert_int_equal(rf_evaluate(&m, d, t, ks, 3, &r1, &err), 0);
        rf_set_threads(4);
        assert_int_equal(rf_evaluate(&m, d, t, ks, 3, &r4, &err), 0);
        assert_int_equal(r1.n_users, want_users);
        for (int ki = 0; ki < 3; ki++)
            for (int mt = 0; mt < RF_M_COUNT; mt++) {
                char what[64];
                snprintf(what, sizeof what, "iter %d %s@%d", iter, rf_metric_name(mt), ks[ki]);
                assert_int_equal(r1.has[mt], default_metric(mt));
                if (default_metric(mt))
                    assert_close(r1.value[ki][mt], want[ki][mt], 1e-9, what);
                /* bit-identical across thread counts */
                assert_memory_equal(&r1.value[ki][mt], &r4.value[ki][mt], sizeof(double));
            }
        assert_int_equal(r1.n_users, r4.n_users);
        if (r1.n_users)
            assert_memory_equal(r1.per_user, r4.per_user,
                                (size_t)r1.n_users * 3 * RF_M_PER_USER * sizeof(double));

        /* everything: side information, ratings, vectors, batched scoring */
        rf_eval_opts o;
        rf_eval_opts_default(&o);
        o.item_category = cat;
        o.item_price = price;
        o.n_side_items = ni;
        o.ratings = rt;
        o.progress = 0;
        rf_model mb = m;
        mb.ops = &fixed_full_ops;
        rf_set_threads(1);
        assert_int_equal(rf_evaluate_ex(&mb, d, t, ks, 3, &o, &rb1, &err), 0);
        rf_set_threads(3);
        assert_int_equal(rf_evaluate_ex(&mb, d, t, ks, 3, &o, &rb4, &err), 0);
        rf_set_threads(0);
        for (int ki = 0; ki < 3; ki++)
            for (int mt = 0; mt < RF_M_COUNT; mt++) {
                char what[64];
                snprintf(what, sizeof what, "iter %d all %s@%d", iter, rf_metric_name(mt), ks[ki]);
                assert_true(rb1.has[mt]);
                assert_close(rb1.value[ki][mt], want[ki][mt],
                             mt == RF_M_ILD_EMB ? 1e-5 : 1e-9, what); /* float unit vectors */
                assert_memory_equal(&rb1.value[ki][mt], &rb4.value[ki][mt], sizeof(double));
                /* the batched path gives the plain path's numbers */
                if (default_metric(mt))
                    assert_memory_equal(&rb1.value[ki][mt], &r1.value[ki][mt], sizeof(double));
            }
        if (rb1.n_users)
            assert_memory_equal(rb1.per_user, rb4.per_user,
                                (size_t)rb1.n_users * 3 * RF_M_PER_USER * sizeof(double));
        /* exposure kept: its first row sums to the top-K lists' lengths */
        assert_non_null(rb1.exposure);
        assert_int_equal(rb1.n_exp_items, ni);

        rf_eval_result_free(&r1);
        rf_eval_result_free(&r4);
        rf_eval_result_free(&rb1);
        rf_eval_result_free(&rb4);
        fixed_free(&f);
        free_dataset(d);
        rf_csr_free(t);
        rf_csr_free(rt);
        free(w);
        free(rel);
        free(ratings);
        free(cat);
        free(price);
    }
}

/* ---- id translation ------------------------------------------------------
 * The same scorer seen through a model whose maps list the items in
 * another order (and know one item the data does not) must give the same
 * numbers as the identity case. */

static const char *item_name(int i) {
    static char buf[16][16];
    static int slot = 0;
    char *b = buf[slot++ % 16];
    snprintf(b, 16, "it%d", i);
    return b;
}

static void test_evaluate_translate(void **state) {
    (void)state;
    enum { NU = 6, NI = 8 };
    rf_rng rng;
    rf_rng_seed(&rng, 3);
    float w[NU * NI];
    uint8_t rel[NU * NI];
    for (int i = 0; i < NU * NI; i++) {
        w[i] = rf_rng_uniform(&rng) < 0.3 ? 1.0f + (float)rf_rng_below(&rng, 2) : 0.0f;
        rel[i] = !w[i] && rf_rng_uniform(&rng) < 0.3;
    }
    rf_dataset *d = make_dataset(NU, NI, w);
    rf_csr *t = make_test(NU, NI, rel);
    rf_idmap *du, *di, *mu, *mi;
    assert_int_equal(rf_idmap_new(&du), 0);
    assert_int_equal(rf_idmap_new(&di), 0);
    assert_int_equal(rf_idmap_new(&mu), 0);
    assert_int_equal(rf_idmap_new(&mi), 0);
    int32_t id;
    char s[16];
    for (int u = 0; u < NU; u++) {
        snprintf(s, sizeof s, "u%d", u);
        rf_idmap_put(du, s, strlen(s), &id, NULL);
    }
    for (int u = NU - 1; u >= 0; u--) { /* model users reversed */
        snprintf(s, sizeof s, "u%d", u);
        rf_idmap_put(mu, s, strlen(s), &id, NULL);
    }
    for (int i = 0; i < NI; i++)
        rf_idmap_put(di, item_name(i), strlen(item_name(i)), &id, NULL);
    /* model items: a permutation plus one extra item unknown to the data */
    int perm[NI] = {3, 7, 0, 5, 1, 6, 2, 4};
    for (int j = 0; j < NI; j++)
        rf_idmap_put(mi, item_name(perm[j]), strlen(item_name(perm[j])), &id, NULL);
    rf_idmap_put(mi, "extra", 5, &id, NULL);
    d->users = du;
    d->items = di;

    /* identity scorer in data ids */
    fixed_impl f1, f2;
    fixed_alloc(&f1, NU, NI);
    fixed_alloc(&f2, NU, NI + 1);
    for (int u = 0; u < NU; u++)
        for (int i = 0; i < NI; i++)
            f1.base[u * NI + i] = (float)((u * 7 + i * 3) % 5);
    for (int a = 0; a < NI; a++)
        for (int b = 0; b < NI; b++)
            f1.co[a * NI + b] = (float)((a + 2 * b) % 3);
    /* the same scorer in model ids: model user NU-1-u, model item j = perm[j] */
    for (int u = 0; u < NU; u++) {
        for (int j = 0; j < NI; j++)
            f2.base[(NU - 1 - u) * (NI + 1) + j] = f1.base[u * NI + perm[j]];
        f2.base[(NU - 1 - u) * (NI + 1) + NI] = -INFINITY; /* the extra item */
    }
    for (int a = 0; a < NI; a++)
        for (int b = 0; b < NI; b++)
            f2.co[a * (NI + 1) + b] = f1.co[perm[a] * NI + perm[b]];
    rf_model m1 = make_model(&f1), m2 = make_model(&f2);
    m2.users = mu;
    m2.items = mi;
    /* Equal scores order by id, and ids differ between the two spaces, so
     * make scores distinct per item before comparing: add a tiny per-item
     * offset consistent in both spaces. */
    for (int u = 0; u < NU; u++)
        for (int i = 0; i < NI; i++)
            f1.base[u * NI + i] += (float)i * 0.001f;
    for (int u = 0; u < NU; u++)
        for (int j = 0; j < NI; j++)
            f2.base[(NU - 1 - u) * (NI + 1) + j] += (float)perm[j] * 0.001f;

    const int ks[] = {2, 4};
    rf_eval_result r1, r2;
    rf_err err;
    assert_int_equal(rf_evaluate(&m1, d, t, ks, 2, &r1, &err), 0);
    rf_err_clear(&err);
    int rc = rf_evaluate(&m2, d, t, ks, 2, &r2, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r1.n_users, r2.n_users);
    for (int ki = 0; ki < 2; ki++)
        for (int mt = 0; mt < RF_M_COUNT; mt++)
            assert_close(r2.value[ki][mt], r1.value[ki][mt], 1e-12, rf_metric_name(mt));
    rf_eval_result_free(&r1);
    rf_eval_result_free(&r2);
    fixed_free(&f1);
    fixed_free(&f2);
    d->users = d->items = NULL;
    rf_idmap_free(du);
    rf_idmap_free(di);
    rf_idmap_free(mu);
    rf_idmap_free(mi);
    free_dataset(d);
    rf_csr_free(t);
}

/* ---- relevance matrix ---------------------------------------------------- */

static void test_relevance(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    assert_int_equal(rf_events_push_str(ev, "a", "x", RF_EV_VIEW, 1, 10), 0);
    assert_int_equal(rf_events_push_str(ev, "a", "x", RF_EV_PURCHASE, 3, 11), 0);
    assert_int_equal(rf_events_push_str(ev, "b", "y", RF_EV_RATING, 5, 12), 0);
    rf_csr *c;
    assert_int_equal(rf_eval_relevance(ev, 5, 1, &c, NULL), 0);
    assert_int_equal(c->nrows, 5);
    assert_int_equal(c->ncols, 2);
    assert_int_equal(c->nnz, 2);
    assert_true(rf_csr_get(c, 0, 0) == 1.0f);
    assert_true(rf_csr_get(c, 1, 1) == 1.0f);
    rf_csr_free(c);
    rf_events_free(ev);
}

/* ---- table and JSON -------------------------------------------------------- */

static void fill_result(rf_eval_result *r, const char *name, double seed) {
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", name);
    r->n_ks = 2;
    r->ks[0] = 10;
    r->ks[1] = 20;
    for (int ki = 0; ki < 2; ki++)
        for (int mt = 0; mt < RF_M_COUNT; mt++)
            r->value[ki][mt] = fmod(seed * (ki + 1) * (mt + 3) * 0.1234567891, 1.0);
    for (int mt = 0; mt < RF_M_COUNT; mt++) {
        r->has[mt] = 1;
        if (!rf_metric_at_k(mt)) /* the same value at every K */
            r->value[1][mt] = r->value[0][mt];
    }
    r->n_users = 943;
    r->n_rel = 20381;
    r->n_cov_items = 1650;
    r->seconds = 0.25;
}

static void test_report(void **state) {
    (void)state;
    rf_eval_result res[2];
    fill_result(&res[0], "pop", 1.7);
    fill_result(&res[1], "itemknn", 2.3);

    char *dir = rf_test_tmpdir("eval-report");
    assert_non_null(dir);
    char path[512], tpath[512];
    snprintf(path, sizeof path, "%s/last.json", dir);
    snprintf(tpath, sizeof tpath, "%s/table.txt", dir);
    rf_eval_info info = {.protocol = "user",
                         .detail = "test_ratio=0.2 min_items=5",
                         .data_dir = dir,
                         .train_rows = 79619,
                         .test_rows = 20381,
                         .train_users = 943,
                         .test_users = 943,
                         .n_items = 1682};
    rf_err err;
    assert_int_equal(rf_eval_write_json(path, res, 2, &info, &err), 0);
    FILE *tf = fopen(tpath, "w");
    rf_eval_print_table(tf, res, 2);
    fclose(tf);

    /* JSON gives back the exact doubles. */
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "recfuse")), "0.1.0");
    json_t *proto = json_object_get(root, "protocol");
    assert_string_equal(json_string_value(json_object_get(proto, "split")), "user");
    assert_int_equal(json_integer_value(json_object_get(proto, "train_rows")), 79619);
    json_t *ks = json_object_get(root, "ks");
    assert_int_equal(json_array_size(ks), 2);
    assert_int_equal(json_integer_value(json_array_get(ks, 1)), 20);
    json_t *models = json_object_get(root, "models");
    assert_int_equal(json_array_size(models), 2);

    /* The table's values are the JSON's rounded to 4 decimals. */
    char *table = rf_test_read_file(tpath);
    assert_non_null(table);
    assert_true(strncmp(table, "metric", 6) == 0);
    int rows = 0;
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n")) {
        char label[32];
        double v[2];
        if (sscanf(line, "%31s %lf %lf", label, &v[0], &v[1]) != 3)
            continue;
        if (!strchr(label, '@'))
            continue;
        rows++;
        for (int j = 0; j < 2; j++) {
            json_t *mo = json_array_get(models, (size_t)j);
            json_t *val = json_object_get(json_object_get(mo, "metrics"), label);
            assert_non_null(val);
            double jv = json_real_value(val);
            char want[32], got[32];
            snprintf(want, sizeof want, "%.4f", jv);
            snprintf(got, sizeof got, "%.4f", v[j]);
            assert_string_equal(got, want);
            /* and the JSON value is the exact result value */
            int ki = strstr(label, "@20") ? 1 : 0;
            char *at = strchr(label, '@');
            *at = 0;
            int mt = rf_metric_parse(label);
            *at = '@';
            assert_true(mt >= 0);
            assert_memory_equal(&jv, &res[j].value[ki][mt], sizeof jv);
        }
    }
    assert_int_equal(rows, 2 * (RF_M_COUNT - 3)); /* AUC, RMSE, MAE: once, no @K */
    free(table);

    json_t *m0 = json_array_get(models, 0);
    assert_string_equal(json_string_value(json_object_get(m0, "name")), "pop");
    assert_int_equal(json_integer_value(json_object_get(m0, "users")), 943);
    assert_int_equal(json_integer_value(json_object_get(m0, "relevant")), 20381);
    json_decref(root);

    /* No info: no protocol object. Unwritable path: RF_EIO. */
    assert_int_equal(rf_eval_write_json(path, res, 1, NULL, &err), 0);
    root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    assert_null(json_object_get(root, "protocol"));
    json_decref(root);
    snprintf(path, sizeof path, "%s/no/such/dir/x.json", dir);
    assert_int_equal(rf_eval_write_json(path, res, 1, NULL, &err), RF_EIO);

    rf_test_rmtree(dir);
    free(dir);
}

static void test_table_format(void **state) {
    (void)state;
    rf_eval_result r;
    fill_result(&r, "pop", 1.0);
    /* only the classic metrics: the table looks as it always did */
    memset(r.has, 0, sizeof r.has);
    for (int mt = 0; mt <= RF_M_MRR; mt++)
        r.has[mt] = 1;
    r.has[RF_M_COVERAGE] = 1;
    r.value[0][RF_M_NDCG] = 0.20341;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rf_eval_print_table(f, &r, 1);
    fclose(f);
    assert_non_null(strstr(buf, "\nNDCG@10    0.2034\n"));
    assert_non_null(strstr(buf, "\nusers         943\n"));
    free(buf);
}

/* ---- allocation failures ---------------------------------------------- */

static void test_evaluate_oom(void **state) {
    (void)state;
    const float w[3 * 4] = {1, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 0, 0, 1, 1};
    const uint8_t rel[3 * 4] = {0, 1, 0, 0, /**/ 0, 0, 1, 0, /**/ 1, 0, 0, 0};
    rf_dataset *d = make_dataset(3, 4, w);
    rf_csr *t = make_test(3, 4, rel);
    fixed_impl f;
    fixed_alloc(&f, 3, 4);
    rf_model m = make_model(&f);
    const int ks[] = {1, 3};
    rf_eval_result r;
    rf_err err;
    int ok = 0;
    for (long n = 0; n < 50 && !ok; n++) {
        rf_mem_fail_after(n);
        int rc = rf_evaluate(&m, d, t, ks, 2, &r, &err);
        rf_mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            assert_int_equal(r.n_users, 3);
            rf_eval_result_free(&r);
        } else {
            assert_int_equal(rc, RF_ENOMEM);
            assert_null(r.per_user);
            assert_null(r.users);
        }
    }
    assert_true(ok);
    fixed_free(&f);
    free_dataset(d);
    rf_csr_free(t);
}

/* ---- the real popularity model ------------------------------------------ */

static void test_evaluate_pop(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 11);
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    char us[16], is[16];
    for (int u = 0; u < 40; u++) {
        int n = 3 + (int)rf_rng_below(&rng, 12);
        for (int j = 0; j < n; j++) {
            /* skewed item popularity */
            int it = (int)(30 * rf_rng_uniform(&rng) * rf_rng_uniform(&rng));
            snprintf(us, sizeof us, "u%d", u);
            snprintf(is, sizeof is, "i%d", it);
            assert_int_equal(rf_events_push_str(ev, us, is, RF_EV_RATING, 1, 1000 + u * 100 + j),
                             0);
        }
    }
    rf_split sp;
    rf_err err;
    rf_err_clear(&err);
    int rc = rf_split_user_ratio(ev, 0.2, 5, &sp, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    rf_dataset *d;
    assert_int_equal(rf_dataset_build(sp.train, &o, &d, &err), 0);
    rf_csr *t;
    assert_int_equal(rf_eval_relevance(sp.test, d->n_users, d->n_items, &t, &err), 0);
    rf_model *m;
    assert_int_equal(rf_model_new("pop", &m, &err), 0);
    assert_int_equal(rf_model_fit(m, d, &err), 0);

    const int ks[] = {3, 10};
    rf_eval_result r;
    assert_int_equal(rf_evaluate(m, d, t, ks, 2, &r, &err), 0);
    assert_string_equal(r.model, "pop");

    /* Oracle on dense copies. */
    int32_t nu = d->n_users, ni = d->n_items;
    float *w = calloc((size_t)nu * ni, sizeof *w);
    for (int32_t u = 0; u < nu; u++)
        for (int64_t j = d->ui->indptr[u]; j < d->ui->indptr[u + 1]; j++)
            w[(size_t)u * ni + d->ui->indices[j]] = d->ui->data[j];
    uint8_t *rl = calloc((size_t)t->nrows * t->ncols, 1);
    for (int32_t u = 0; u < t->nrows; u++)
        for (int64_t j = t->indptr[u]; j < t->indptr[u + 1]; j++)
            rl[(size_t)u * t->ncols + t->indices[j]] = 1;
    double want[RF_EVAL_MAX_K][RF_M_COUNT];
    int32_t want_users;
    oracle_evaluate(m, nu, ni, w, t->nrows, t->ncols, rl, ks, 2, want, &want_users);
    assert_int_equal(r.n_users, want_users);
    assert_true(r.n_users > 0);
    for (int ki = 0; ki < 2; ki++)
        for (int mt = 0; mt < RF_M_COUNT; mt++)
            assert_close(r.value[ki][mt], want[ki][mt], 1e-12, rf_metric_name(mt));
    /* A split never puts a pair in both parts: nothing is unreachable. */
    assert_int_equal(r.n_unreachable, 0);
    free(w);
    free(rl);
    rf_eval_result_free(&r);
    rf_model_free(m);
    rf_csr_free(t);
    rf_dataset_free(d);
    rf_split_free(&sp);
    rf_events_free(ev);
}

/* ---- AUC of one score vector against pair counting ------------------------ */

static void test_auc_direct(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 31);
    float *sc = malloc(2000 * sizeof *sc), *scratch = malloc(2000 * sizeof *scratch);
    int32_t *rel = malloc(2000 * sizeof *rel), *iscratch = malloc(8001 * sizeof *iscratch);
    for (int iter = 0; iter < 400; iter++) {
        int32_t n = 1 + (int32_t)rf_rng_below(&rng, iter < 200 ? 60 : 1500);
        int levels = 1 + (int)rf_rng_below(&rng, iter % 2 ? 5 : 1000); /* ties or not */
        for (int32_t j = 0; j < n; j++) {
            double x = rf_rng_uniform(&rng);
            sc[j] = x < 0.05 ? -INFINITY : x < 0.07 ? NAN : (float)rf_rng_below(&rng, levels);
        }
        /* relevant: sorted ids, up to ~300 (both counting paths), some
         * beyond n (unknown) or at -inf (unrankable) */
        double p = rf_rng_uniform(&rng) * (iter % 3 ? 0.2 : 0.6);
        int nr = 0;
        for (int32_t j = 0; j < n + 5; j++)
            if (rf_rng_uniform(&rng) < p)
                rel[nr++] = j;
        if (nr == 0)
            continue;
        int nin = 0;
        while (nin < nr && rel[nin] < n)
            nin++;
        double got = rf_eval_auc(sc, n, rel, nin, nr, scratch, iscratch);
        /* brute force */
        double good = 0;
        long nneg = 0;
        for (int32_t j = 0; j < n; j++) {
            int isrel = 0;
            for (int q = 0; q < nin; q++)
                isrel |= rel[q] == j;
            if (!isrel && sc[j] > -INFINITY)
                nneg++;
        }
        for (int q = 0; q < nin; q++) {
            float r = sc[rel[q]];
            if (!(r > -INFINITY))
                continue;
            for (int32_t j = 0; j < n; j++) {
                int isrel = 0;
                for (int z = 0; z < nin; z++)
                    isrel |= rel[z] == j;
                if (isrel || !(sc[j] > -INFINITY))
                    continue;
                good += r > sc[j] ? 1 : r == sc[j] ? 0.5 : 0;
            }
        }
        double want = nneg ? good / ((double)nr * nneg) : 0.5;
        char what[64];
        snprintf(what, sizeof what, "iter %d AUC (n %d, rel %d)", iter, (int)n, nr);
        assert_close(got, want, 1e-12, what);
    }
    free(sc);
    free(scratch);
    free(rel);
    free(iscratch);
}

/* ---- the evaluation's top-k against rf_topk_select ------------------------- */

static void test_topk_select(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 77);
    float *sc = malloc(5000 * sizeof *sc);
    rf_scored *a = malloc(600 * sizeof *a), *b = malloc(600 * sizeof *b);
    float *cmax = malloc(100 * sizeof *cmax);
    for (int iter = 0; iter < 500; iter++) {
        int32_t n = (int32_t)rf_rng_below(&rng, 5000);
        int levels = 1 + (int)rf_rng_below(&rng, iter % 2 ? 4 : 100000);
        for (int32_t j = 0; j < n; j++) {
            double x = rf_rng_uniform(&rng);
            sc[j] = x < 0.1 ? -INFINITY : x < 0.12 ? NAN : x < 0.13 ? INFINITY
                                                               : (float)rf_rng_below(&rng, levels);
        }
        int k = (int)rf_rng_below(&rng, iter % 3 ? 40 : 600); /* k below and above the chunks */
        int na = rf_eval_topk(sc, n, k, a, cmax), nb = rf_topk_select(sc, n, k, NULL, b);
        assert_int_equal(na, nb);
        for (int i = 0; i < na; i++) {
            assert_int_equal(a[i].id, b[i].id);
            assert_memory_equal(&a[i].score, &b[i].score, sizeof(float));
        }
    }
    free(sc);
    free(a);
    free(b);
    free(cmax);
}

/* ---- sampled negatives ---------------------------------------------------- */

/* With N at least the catalog, every candidate is a negative: the oracle
 * ranks each test item against all items in neither the history nor the
 * test set. */
static void test_evaluate_sampled(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 99);
    for (int iter = 0; iter < 20; iter++) {
        int32_t nu = 2 + (int32_t)rf_rng_below(&rng, 30), ni = 2 + (int32_t)rf_rng_below(&rng, 30);
        int32_t ni_t = ni + (int32_t)rf_rng_below(&rng, 2);
        float *w = calloc((size_t)nu * ni, sizeof *w);
        uint8_t *rel = calloc((size_t)nu * ni_t, 1);
        for (int64_t i = 0; i < (int64_t)nu * ni; i++)
            if (rf_rng_uniform(&rng) < 0.25)
                w[i] = 1;
        for (int32_t u = 0; u < nu; u++)
            for (int32_t i = 0; i < ni_t; i++)
                if (rf_rng_uniform(&rng) < 0.15)
                    rel[(size_t)u * ni_t + i] = 1;
        fixed_impl f;
        fixed_alloc(&f, nu, ni);
        for (int64_t i = 0; i < (int64_t)nu * ni; i++)
            f.base[i] = (float)rf_rng_below(&rng, 4);
        rf_model m = make_model(&f);
        rf_dataset *d = make_dataset(nu, ni, w);
        rf_csr *t = make_test(nu, ni_t, rel);
        const int ks[] = {1, 3};
        rf_eval_opts o;
        rf_eval_opts_default(&o);
        o.sampled_negatives = 100000;
        o.progress = 0;
        rf_eval_result r;
        rf_err err;
        assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &r, &err), 0);
        assert_int_equal(r.sampled_negatives, 100000);
        double want[2][RF_M_PER_USER];
        memset(want, 0, sizeof want);
        int users = 0;
        float *sc = malloc((size_t)ni * sizeof *sc);
        for (int32_t u = 0; u < nu; u++) {
            int n_rel = 0;
            for (int32_t i = 0; i < ni_t; i++)
                n_rel += rel[(size_t)u * ni_t + i];
            if (!n_rel)
                continue;
            users++;
            int32_t hist[64];
            float hw[64];
            rf_hist h = {0, hist, hw, NULL};
            for (int32_t i = 0; i < ni; i++)
                if (w[(size_t)u * ni + i]) {
                    hist[h.n] = i;
                    hw[h.n++] = 1;
                }
            assert_int_equal(fixed_score(&m, u, &h, sc, NULL), 0);
            double acc[2][RF_M_PER_USER];
            memset(acc, 0, sizeof acc);
            for (int32_t x = 0; x < ni_t; x++) {
                if (!rel[(size_t)u * ni_t + x] || x >= ni || w[(size_t)u * ni + x])
                    continue; /* not a test item, or a miss */
                int above = 0, nneg = 0;
                double below = 0;
                for (int32_t j = 0; j < ni; j++) {
                    if (w[(size_t)u * ni + j] || (j < ni_t && rel[(size_t)u * ni_t + j]))
                        continue;
                    nneg++;
                    above += sc[j] > sc[x] || (sc[j] == sc[x] && j < x);
                    below += sc[j] < sc[x] ? 1 : sc[j] == sc[x] ? 0.5 : 0;
                }
                int rank = above + 1;
                for (int ki = 0; ki < 2; ki++) {
                    acc[ki][RF_M_AUC] += nneg ? below / nneg : 0.5;
                    if (rank <= ks[ki]) {
                        acc[ki][RF_M_HITRATE] += 1;
                        acc[ki][RF_M_NDCG] += 1 / log2(rank + 1.0);
                        acc[ki][RF_M_MRR] += 1.0 / rank;
                    }
                }
            }
            for (int ki = 0; ki < 2; ki++) {
                want[ki][RF_M_HITRATE] += acc[ki][RF_M_HITRATE] / n_rel;
                want[ki][RF_M_RECALL] += acc[ki][RF_M_HITRATE] / n_rel;
                want[ki][RF_M_PRECISION] += acc[ki][RF_M_HITRATE] / n_rel / ks[ki];
                want[ki][RF_M_NDCG] += acc[ki][RF_M_NDCG] / n_rel;
                want[ki][RF_M_MRR] += acc[ki][RF_M_MRR] / n_rel;
                want[ki][RF_M_MAP] += acc[ki][RF_M_MRR] / n_rel;
                want[ki][RF_M_AUC] += acc[ki][RF_M_AUC] / n_rel;
            }
        }
        assert_int_equal(r.n_users, users);
        for (int ki = 0; ki < 2; ki++)
            for (int mt = 0; mt <= RF_M_AUC; mt++) {
                char what[64];
                snprintf(what, sizeof what, "iter %d sampled %s@%d", iter, rf_metric_name(mt),
                         ks[ki]);
                assert_close(r.value[ki][mt], users ? want[ki][mt] / users : 0, 1e-9, what);
            }
        free(sc);
        rf_eval_result_free(&r);
        fixed_free(&f);
        free_dataset(d);
        rf_csr_free(t);
        free(w);
        free(rel);
    }
}

/* Few negatives from a large catalog (the rejection sampler): draws never
 * include the user's other test items or history, are the same for every
 * thread count, and the usual HR@K <= HR@K' for K < K' holds. */
static void test_evaluate_sampled_draws(void **state) {
    (void)state;
    enum { NU = 40, NI = 300 };
    rf_rng rng;
    rf_rng_seed(&rng, 5);
    float *w = calloc((size_t)NU * NI, sizeof *w);
    uint8_t *rel = calloc((size_t)NU * NI, 1);
    fixed_impl f;
    fixed_alloc(&f, NU, NI);
    for (int u = 0; u < NU; u++)
        for (int i = 0; i < NI; i++) {
            double x = rf_rng_uniform(&rng);
            if (x < 0.1) {
                w[u * NI + i] = 1;
                f.base[u * NI + i] = 1000; /* history: masked anyway */
            } else if (x < 0.2) {
                rel[u * NI + i] = 1;
                f.base[u * NI + i] = 100; /* every test item ties at the top */
            } else {
                f.base[u * NI + i] = (float)rf_rng_uniform(&rng);
            }
        }
    rf_model m = make_model(&f);
    rf_dataset *d = make_dataset(NU, NI, w);
    rf_csr *t = make_test(NU, NI, rel);
    const int ks[] = {1, 5};
    rf_eval_opts o;
    rf_eval_opts_default(&o);
    o.sampled_negatives = 20;
    o.progress = 0;
    rf_eval_result r1, r2;
    rf_err err;
    rf_set_threads(1);
    assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &r1, &err), 0);
    rf_set_threads(4);
    assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &r2, &err), 0);
    rf_set_threads(0);
    /* a tie with a drawn test item of smaller id would push the rank to 2 */
    assert_close(r1.value[0][RF_M_HITRATE], 1.0, EPS, "HR@1 sampled");
    assert_close(r1.value[0][RF_M_AUC], 1.0, EPS, "AUC sampled");
    assert_memory_equal(r1.per_user, r2.per_user,
                        (size_t)r1.n_users * 2 * RF_M_PER_USER * sizeof(double));
    rf_eval_result_free(&r1);
    rf_eval_result_free(&r2);
    /* another seed, a random scorer: AUC near 1/2, HR grows with K */
    for (int i = 0; i < NU * NI; i++)
        if (rel[i])
            f.base[i] = (float)rf_rng_uniform(&rng);
    o.seed = 17;
    assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &r1, &err), 0);
    assert_true(fabs(r1.value[0][RF_M_AUC] - 0.5) < 0.1);
    assert_true(r1.value[0][RF_M_HITRATE] <= r1.value[1][RF_M_HITRATE]);
    assert_true(r1.value[1][RF_M_HITRATE] > 0.1 && r1.value[1][RF_M_HITRATE] < 0.5);
    rf_eval_result_free(&r1);
    fixed_free(&f);
    free_dataset(d);
    rf_csr_free(t);
    free(w);
    free(rel);
}

/* ---- user subsets and merging --------------------------------------------- */

static void test_subset_and_merge(void **state) {
    (void)state;
    enum { NU = 12, NI = 9 };
    rf_rng rng;
    rf_rng_seed(&rng, 8);
    float w[NU * NI];
    uint8_t rel[NU * NI];
    fixed_impl f;
    fixed_alloc(&f, NU, NI);
    for (int i = 0; i < NU * NI; i++) {
        w[i] = rf_rng_uniform(&rng) < 0.3 ? 1.0f : 0.0f;
        rel[i] = !w[i] && rf_rng_uniform(&rng) < 0.3;
        f.base[i] = (float)rf_rng_uniform(&rng);
    }
    rf_dataset *d = make_dataset(NU, NI, w);
    rf_csr *t = make_test(NU, NI, rel);
    rf_model m = make_model(&f);
    const int ks[] = {2, 5};
    rf_eval_result all, part[2], merged;
    rf_err err;
    assert_int_equal(rf_evaluate(&m, d, t, ks, 2, &all, &err), 0);
    /* evaluated in two halves by user subsets */
    int32_t lo[NU], hi[NU];
    int nlo = 0, nhi = 0;
    for (int u = 0; u < NU; u++) {
        if (u < NU / 2)
            lo[nlo++] = u;
        else
            hi[nhi++] = u;
    }
    rf_eval_opts o;
    rf_eval_opts_default(&o);
    o.progress = 0;
    o.users = lo;
    o.n_users = nlo;
    assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &part[0], &err), 0);
    o.users = hi;
    o.n_users = nhi;
    assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &part[1], &err), 0);
    assert_int_equal(part[0].n_users + part[1].n_users, all.n_users);
    assert_int_equal(rf_eval_result_merge(part, 2, &merged, &err), 0);
    assert_int_equal(merged.n_users, all.n_users);
    assert_int_equal(merged.n_folds, 2);
    /* rows concatenate to the full evaluation's rows */
    assert_memory_equal(merged.users, all.users, (size_t)all.n_users * sizeof *all.users);
    assert_memory_equal(merged.per_user, all.per_user,
                        (size_t)all.n_users * 2 * RF_M_PER_USER * sizeof(double));
    /* values: the mean of the parts' values */
    for (int ki = 0; ki < 2; ki++)
        assert_close(merged.value[ki][RF_M_NDCG],
                     (part[0].value[ki][RF_M_NDCG] + part[1].value[ki][RF_M_NDCG]) / 2, EPS,
                     "merged NDCG");
    /* bad subset: not ascending */
    int32_t bad[] = {3, 1};
    o.users = bad;
    o.n_users = 2;
    rf_eval_result_free(&all);
    assert_int_equal(rf_evaluate_ex(&m, d, t, ks, 2, &o, &all, &err), RF_EINVAL);
    assert_null(all.per_user);
    rf_eval_result_free(&merged);
    rf_eval_result_free(&part[0]);
    rf_eval_result_free(&part[1]);
    /* merging results with other cut-offs fails */
    rf_eval_result x[2];
    const int ks2[] = {2, 6};
    assert_int_equal(rf_evaluate(&m, d, t, ks, 2, &x[0], &err), 0);
    assert_int_equal(rf_evaluate(&m, d, t, ks2, 2, &x[1], &err), 0);
    assert_int_equal(rf_eval_result_merge(x, 2, &merged, &err), RF_EINVAL);
    rf_eval_result_free(&x[0]);
    rf_eval_result_free(&x[1]);
    fixed_free(&f);
    free_dataset(d);
    rf_csr_free(t);
}

/* ---- ratings matrix ---------------------------------------------------------- */

static void test_ratings_matrix(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    /* a pair rated twice, logged out of time order: the later rating wins */
    assert_int_equal(rf_events_push_str(ev, "a", "x", RF_EV_RATING, 2, 50), 0);
    assert_int_equal(rf_events_push_str(ev, "b", "y", RF_EV_RATING, 4, 10), 0);
    assert_int_equal(rf_events_push_str(ev, "a", "x", RF_EV_RATING, 5, 20), 0);
    assert_int_equal(rf_events_push_str(ev, "a", "y", RF_EV_PURCHASE, 9, 30), 0);
    rf_csr *c;
    assert_int_equal(rf_eval_ratings(ev, 3, 2, &c, NULL), 0);
    assert_int_equal(c->nrows, 3);
    assert_int_equal(c->nnz, 2); /* the purchase is no rating */
    assert_true(rf_csr_get(c, 0, 0) == 2.0f);
    assert_true(rf_csr_get(c, 1, 1) == 4.0f);
    rf_csr_free(c);
    rf_events_free(ev);
}

/* ---- protocols: no leakage, validation inside train ---------------------- */

typedef struct evkey {
    int32_t u, i;
    int64_t ts;
    int type;
} evkey;

static int cmp_evkey(const void *pa, const void *pb) {
    const evkey *a = pa, *b = pb;
    if (a->u != b->u)
        return a->u < b->u ? -1 : 1;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->type - b->type;
}

static evkey *keys_of(const rf_events *e) {
    evkey *k = malloc((size_t)(e->n + 1) * sizeof *k);
    for (int64_t i = 0; i < e->n; i++)
        k[i] = (evkey){e->user[i], e->item[i], e->ts[i], e->type[i]};
    qsort(k, (size_t)e->n, sizeof *k, cmp_evkey);
    return k;
}

/* Every event of `part` is an event of `whole` (multiset inclusion). */
static int inside(const rf_events *part, const rf_events *whole) {
    evkey *a = keys_of(part), *b = keys_of(whole);
    int64_t j = 0, ok = 1;
    for (int64_t i = 0; i < part->n && ok; i++) {
        while (j < whole->n && cmp_evkey(&b[j], &a[i]) < 0)
            j++;
        ok = j < whole->n && cmp_evkey(&b[j], &a[i]) == 0;
        j++;
    }
    free(a);
    free(b);
    return (int)ok;
}

/* No (user, item) pair of test is in train. */
static int disjoint(const rf_split *sp) {
    rf_dataset *d;
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    if (rf_dataset_build(sp->train, &o, &d, NULL))
        return 0;
    int ok = 1;
    for (int64_t i = 0; i < sp->test->n && ok; i++)
        ok = !(sp->test->user[i] < d->n_users &&
               rf_csr_get(d->ui, sp->test->user[i], sp->test->item[i]) != 0);
    rf_dataset_free(d);
    return ok;
}

static void test_protocols(void **state) {
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 21);
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    char us[16], is[16];
    for (int u = 0; u < 60; u++) {
        int n = 2 + (int)rf_rng_below(&rng, 25);
        for (int j = 0; j < n; j++) {
            snprintf(us, sizeof us, "u%d", u);
            snprintf(is, sizeof is, "i%d", (int)rf_rng_below(&rng, 80));
            int type = (int)rf_rng_below(&rng, 5);
            assert_int_equal(rf_events_push_str(ev, us, is, type, 1,
                                                1000 + (int64_t)rf_rng_below(&rng, 100000)),
                             0);
        }
    }
    assert_int_equal(rf_protocol_parse("loo"), RF_PROTO_LOO);
    assert_int_equal(rf_protocol_parse("nope"), -1);
    assert_string_equal(rf_protocol_name(RF_PROTO_KFOLD), "kfold");
    for (int kind = 0; kind <= RF_PROTO_KFOLD; kind++)
        for (int variant = 0; variant < 2; variant++) {
            rf_protocol p;
            rf_protocol_default(&p);
            p.kind = (rf_protocol_kind)kind;
            if (variant) { /* explicit cut-off, other fold, other ratio */
                p.has_cutoff = 1;
                p.cutoff = 60000;
                p.fold = 3;
                p.test_ratio = 0.3;
                p.min_items = 3;
            }
            if (kind != RF_PROTO_TIME)
                p.has_cutoff = 0;
            rf_split sp, val;
            char detail[256];
            rf_err err;
            assert_int_equal(rf_protocol_split(ev, &p, &sp, detail, sizeof detail, &err), 0);
            assert_true(sp.test->n > 0);
            assert_int_equal(sp.train->n + sp.test->n <= ev->n, 1);
            assert_true(disjoint(&sp));
            assert_true(inside(sp.train, ev) && inside(sp.test, ev));
            assert_int_equal(rf_protocol_validation(sp.train, &p, &val, detail, sizeof detail,
                                                    &err),
                             0);
            assert_non_null(strstr(detail, "validation"));
            assert_true(val.test->n > 0);
            /* validation lies inside train: tuning never sees the test part */
            assert_true(inside(val.train, sp.train) && inside(val.test, sp.train));
            assert_true(disjoint(&val));
            if (kind == RF_PROTO_TIME && variant) {
                int64_t mx = 0;
                for (int64_t i = 0; i < sp.train->n; i++)
                    mx = sp.train->ts[i] > mx ? sp.train->ts[i] : mx;
                assert_true(mx < 60000);
                assert_non_null(strstr(detail, "from test_ratio"));
            }
            rf_split_free(&val);
            rf_split_free(&sp);
        }
    /* k-fold: the test folds partition the pairs */
    rf_protocol p;
    rf_protocol_default(&p);
    p.kind = RF_PROTO_KFOLD;
    p.folds = 4;
    int64_t tot = 0;
    for (int f = 0; f < 4; f++) {
        rf_split sp;
        p.fold = f;
        assert_int_equal(rf_protocol_split(ev, &p, &sp, NULL, 0, NULL), 0);
        tot += sp.test->n;
        rf_split_free(&sp);
    }
    assert_int_equal(tot, ev->n);
    rf_split sp;
    p.fold = 4;
    assert_int_equal(rf_protocol_split(ev, &p, &sp, NULL, 0, NULL), RF_EINVAL);
    rf_events_free(ev);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_names),    cmocka_unit_test(test_list_hand),
        cmocka_unit_test(test_list_random),     cmocka_unit_test(test_evaluate_hand),
        cmocka_unit_test(test_evaluate_random), cmocka_unit_test(test_evaluate_translate),
        cmocka_unit_test(test_relevance),       cmocka_unit_test(test_report),
        cmocka_unit_test(test_table_format),    cmocka_unit_test(test_evaluate_oom),
        cmocka_unit_test(test_evaluate_pop),    cmocka_unit_test(test_evaluate_sampled),
        cmocka_unit_test(test_evaluate_sampled_draws), cmocka_unit_test(test_subset_and_merge),
        cmocka_unit_test(test_ratings_matrix),  cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_auc_direct),      cmocka_unit_test(test_topk_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
