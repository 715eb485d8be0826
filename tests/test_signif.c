/* test_signif.c - significance tests of src/eval/signif.c: the regularised
 * incomplete beta and the Student t distribution against known values
 * (closed forms for 1 and 2 degrees of freedom, t tables, and values from
 * a 40-digit mpmath computation), the paired t-test on a case solvable by
 * hand, the paired bootstrap (determinism for a seed and across thread
 * counts, edge cases, agreement with the t-test on normal data), and
 * rf_eval_compare over several results (best model per row, marks,
 * p-values equal to the single-comparison functions, refusal of results
 * that do not pair up), with its table and JSON. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/log.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "testutil.h"

static void assert_rel(double got, double want, double rel, const char *what) {
    double tol = rel * fabs(want);
    if (!(fabs(got - want) <= tol) && !(got == want)) {
        print_error("%s: got %.17g, want %.17g (rel %.3g)\n", what, got, want, rel);
        fail();
    }
}

static void assert_abs(double got, double want, double eps, const char *what) {
    if (!(fabs(got - want) <= eps)) {
        print_error("%s: got %.17g, want %.17g (abs %.3g)\n", what, got, want, eps);
        fail();
    }
}

static void test_betainc(void **state) {
    (void)state;
    /* closed forms */
    for (double x = 0.01; x < 1; x += 0.07) {
        assert_rel(rf_betainc(1, 1, x), x, 1e-13, "I_x(1,1)");
        assert_rel(rf_betainc(1, 3.5, x), 1 - pow(1 - x, 3.5), 1e-12, "I_x(1,b)");
        assert_rel(rf_betainc(2.5, 1, x), pow(x, 2.5), 1e-12, "I_x(a,1)");
        /* symmetry */
        /* symmetry (1 - I cancels: absolute tolerance) */
        assert_abs(rf_betainc(3.3, 0.7, x), 1 - rf_betainc(0.7, 3.3, 1 - x), 1e-14, "symmetry");
    }
    /* I_0.5(2, 3) = 11/16; the rest from mpmath at 40 digits */
    assert_rel(rf_betainc(2, 3, 0.5), 0.6875, 1e-14, "I(2,3,.5)");
    assert_rel(rf_betainc(0.5, 0.5, 0.1), 0.20483276469913345754, 1e-13, "I(.5,.5,.1)");
    assert_rel(rf_betainc(10, 20, 0.3), 0.36400408107194422775, 1e-13, "I(10,20,.3)");
    assert_rel(rf_betainc(150, 0.5, 0.99), 0.082748003254080496065, 1e-11, "I(150,.5,.99)");
    assert_rel(rf_betainc(0.1, 5, 0.001), 0.61289835937499448419, 1e-12, "I(.1,5,.001)");
    assert_rel(rf_betainc(50000, 0.5, 0.99999), 0.31731050785796599484, 1e-9, "I(5e4,.5,...)");
    /* ends and bad arguments */
    assert_true(rf_betainc(2, 3, 0) == 0);
    assert_true(rf_betainc(2, 3, 1) == 1);
    assert_true(isnan(rf_betainc(0, 3, 0.5)));
    assert_true(isnan(rf_betainc(2, 3, 1.5)));
    assert_true(isnan(rf_betainc(2, 3, NAN)));
}

static void test_student_t(void **state) {
    (void)state;
    for (double t = -30; t <= 30; t += 0.37) {
        /* df = 1 is Cauchy, df = 2 has a closed form */
        assert_rel(rf_student_t_cdf(t, 1), 0.5 + atan(t) / M_PI, 1e-12, "df=1");
        assert_rel(rf_student_t_cdf(t, 2), 0.5 + t / (2 * sqrt(2 + t * t)), 1e-12, "df=2");
        assert_abs(rf_student_t_cdf(-t, 7.5), 1 - rf_student_t_cdf(t, 7.5), 1e-15, "symmetry");
    }
    /* table quantiles */
    assert_rel(rf_student_t_cdf(2.228138852, 10), 0.97500000000058173765, 1e-12, "t(10) .975");
    assert_rel(rf_student_t_cdf(1.812461123, 10), 0.95000000001536328621, 1e-12, "t(10) .95");
    assert_rel(rf_student_t_cdf(2.570581836, 5), 0.97500000001103338638, 1e-12, "t(5) .975");
    assert_rel(rf_student_t_cdf(12.70620474, 1), 0.97500000000749551965, 1e-12, "t(1) .975");
    assert_rel(rf_student_t_cdf(-3.5, 7), 0.0049965204409427736314, 1e-11, "t(7) -3.5");
    assert_rel(rf_student_t_cdf(0.3, 200), 0.61775563490533600666, 1e-12, "t(200) .3");
    assert_rel(rf_student_t_cdf(0.5, 0.5), 0.62134096353528168433, 1e-12, "t(.5) .5");
    /* many degrees of freedom (users): the continued fraction loses a few
     * digits as df grows - 1e-11 relative at 1e5, 1e-9 at 1e7 (p-values
     * need far less) - and tends to the normal distribution */
    assert_rel(1 - rf_student_t_cdf(1.96, 1e5), 0.024999281597150819017, 1e-11, "t(1e5) tail");
    assert_rel(1 - rf_student_t_cdf(1.96, 1e7), 0.024997909012657096147, 1e-9, "t(1e7) tail");
    assert_rel(rf_student_t_cdf(1.96, 1e7), 0.5 * erfc(-1.96 / sqrt(2.0)), 1e-6, "normal");
    assert_true(rf_student_t_cdf(INFINITY, 3) == 1);
    assert_true(rf_student_t_cdf(-INFINITY, 3) == 0);
    assert_true(isnan(rf_student_t_cdf(1, 0)));
}

static void test_ttest(void **state) {
    (void)state;
    /* d = (1, 2, 4): mean 7/3, variance 7/3, t = sqrt(7); df = 2 gives
     * p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(7)/3. */
    const double x[] = {3, 5, 10}, y[] = {2, 3, 6};
    double t, p;
    assert_int_equal(rf_ttest_paired(x, y, 3, &t, &p), 0);
    assert_rel(t, sqrt(7.0), 1e-14, "t");
    assert_rel(p, 1 - sqrt(7.0) / 3, 1e-12, "p");
    /* swapped: same p, opposite t */
    double t2, p2;
    assert_int_equal(rf_ttest_paired(y, x, 3, &t2, &p2), 0);
    assert_rel(t2, -t, 1e-14, "-t");
    assert_rel(p2, p, 1e-14, "p sym");
    /* tiny p-values keep their precision (no 1 - cdf cancellation): a
     * constant shift plus small noise, t = 40 with df 1e5 would be 4e-347
     * (underflows to 0); check t = 10, df = 30 instead, from mpmath. */
    double xs[31], ys[31];
    for (int i = 0; i < 31; i++) {
        xs[i] = i % 2 ? 1 : -1;
        ys[i] = 0;
    }
    /* build d with mean m and sd s so that t = m / (s / sqrt(31)) = 10 */
    double s = 0;
    for (int i = 0; i < 31; i++)
        s += xs[i];
    double mean = s / 31, ss = 0;
    for (int i = 0; i < 31; i++)
        ss += (xs[i] - mean) * (xs[i] - mean);
    double sd = sqrt(ss / 30), shift = 10 * sd / sqrt(31.0) - mean;
    for (int i = 0; i < 31; i++)
        xs[i] += shift;
    assert_int_equal(rf_ttest_paired(xs, ys, 31, &t, &p), 0);
    assert_rel(t, 10, 1e-12, "t = 10");
    assert_rel(p, 4.5752514082296131926e-11, 1e-9, "p(t=10, df=30)");
    /* zero variance */
    const double a[] = {1, 1, 1}, b[] = {0, 0, 0};
    assert_int_equal(rf_ttest_paired(a, b, 3, &t, &p), 0);
    assert_true(p == 0);
    assert_int_equal(rf_ttest_paired(a, a, 3, &t, &p), 0);
    assert_true(p == 1);
    assert_int_equal(rf_ttest_paired(a, b, 1, &t, &p), RF_EINVAL);
}

static void test_bootstrap(void **state) {
    (void)state;
    enum { N = 400 };
    double x[N], y[N];
    rf_rng rng;
    rf_rng_seed(&rng, 3);
    for (int i = 0; i < N; i++) {
        y[i] = rf_rng_normal(&rng);
        x[i] = y[i] + 0.1 + rf_rng_normal(&rng); /* a small real effect */
    }
    rf_set_threads(1);
    double p1 = rf_bootstrap_paired(x, y, N, 2000, 7);
    rf_set_threads(3);
    double p3 = rf_bootstrap_paired(x, y, N, 2000, 7);
    rf_set_threads(0);
    assert_memory_equal(&p1, &p3, sizeof p1);
    assert_true(rf_bootstrap_paired(x, y, N, 2000, 7) == p1);
    /* another seed: another but close value */
    double pb = rf_bootstrap_paired(x, y, N, 2000, 8);
    assert_true(fabs(pb - p1) < 0.03);
    /* agrees with the t-test on normal differences */
    double t, pt;
    assert_int_equal(rf_ttest_paired(x, y, N, &t, &pt), 0);
    if (fabs(p1 - pt) > 0.03) {
        print_error("bootstrap p %g vs t-test p %g\n", p1, pt);
        fail();
    }
    /* identical columns: 1; a constant shift: the smallest possible p */
    assert_true(rf_bootstrap_paired(x, x, N, 100, 1) == 1.0);
    double z[N];
    for (int i = 0; i < N; i++)
        z[i] = x[i] + 0.5;
    assert_rel(rf_bootstrap_paired(z, x, N, 99, 1), 1.0 / 100, 1e-12, "shift");
    assert_true(isnan(rf_bootstrap_paired(x, y, 0, 10, 1)));
    assert_true(isnan(rf_bootstrap_paired(x, y, N, 0, 1)));
}

/* A fake evaluation result of n users with per-user values from fn. */
static void fake_result(rf_eval_result *r, const char *name, int n, double (*fn)(int u, int ki, int mt, int model),
                        int model) {
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", name);
    r->n_ks = 2;
    r->ks[0] = 5;
    r->ks[1] = 10;
    r->n_users = n;
    r->users = malloc((size_t)n * sizeof *r->users);
    r->per_user = calloc((size_t)n * 2 * RF_M_PER_USER, sizeof *r->per_user);
    for (int mt = 0; mt < RF_M_COUNT; mt++)
        r->has[mt] = mt != RF_M_ILD_EMB && mt != RF_M_RMSE && mt != RF_M_MAE;
    for (int u = 0; u < n; u++) {
        r->users[u] = 3 * u + 1;
        for (int ki = 0; ki < 2; ki++)
            for (int mt = 0; mt < RF_M_PER_USER; mt++)
                r->per_user[((size_t)u * 2 + ki) * RF_M_PER_USER + mt] =
                    rf_metric_at_k(mt) || ki == 0 ? fn(u, ki, mt, model)
                                                  : fn(u, 0, mt, model);
    }
    for (int ki = 0; ki < 2; ki++)
        for (int mt = 0; mt < RF_M_PER_USER; mt++) {
            double s = 0;
            for (int u = 0; u < n; u++)
                s += r->per_user[((size_t)u * 2 + ki) * RF_M_PER_USER + mt];
            r->value[ki][mt] = s / n;
        }
}

static rf_rng g_rng;
static double noise_tab[3][200][2][RF_M_PER_USER];

/* model 0: base; model 1: clearly better on NDCG, slightly on P; model 2:
 * the same as model 0 on NDCG and worse on ARP (lower is better there). */
static double values(int u, int ki, int mt, int model) {
    double v = noise_tab[0][u][ki][mt];
    if (model == 1 && mt == RF_M_NDCG)
        v += 0.5 + 0.1 * noise_tab[1][u][ki][mt];
    else if (model == 1)
        v += 0.02 + noise_tab[1][u][ki][mt];
    if (model == 2 && mt == RF_M_ARP)
        v += 0.3;
    else if (model == 2 && mt != RF_M_NDCG)
        v += noise_tab[2][u][ki][mt];
    return v;
}

static void test_compare(void **state) {
    (void)state;
    enum { N = 200 };
    rf_rng_seed(&g_rng, 12);
    for (int m = 0; m < 3; m++)
        for (int u = 0; u < N; u++)
            for (int ki = 0; ki < 2; ki++)
                for (int mt = 0; mt < RF_M_PER_USER; mt++)
                    noise_tab[m][u][ki][mt] = rf_rng_normal(&g_rng);
    rf_eval_result r[3];
    fake_result(&r[0], "base", N, values, 0);
    fake_result(&r[1], "better", N, values, 1);
    fake_result(&r[2], "same", N, values, 2);
    rf_signif_opts o;
    rf_signif_opts_default(&o);
    o.resamples = 500;
    o.seed = 4;
    rf_signif s1, s2;
    rf_err err;
    rf_set_threads(1);
    assert_int_equal(rf_eval_compare(r, 3, &o, &s1, &err), 0);
    rf_set_threads(4);
    assert_int_equal(rf_eval_compare(r, 3, &o, &s2, &err), 0);
    rf_set_threads(0);
    assert_int_equal(s1.n_pairs, N);

    /* NDCG: "better" is best; the other two are ** behind */
    for (int ki = 0; ki < 2; ki++) {
        const rf_signif_cell *b = rf_signif_get(&s1, ki, RF_M_NDCG, 1);
        assert_non_null(b);
        assert_int_equal(b->mark, -1);
        assert_true(isnan(b->p_t));
        for (int j = 0; j < 3; j += 2) {
            const rf_signif_cell *c = rf_signif_get(&s1, ki, RF_M_NDCG, j);
            assert_int_equal(c->mark, 2);
            assert_true(c->p_t < 1e-10);
            assert_true(c->diff > 0.4);
            /* the same numbers as the single-comparison functions */
            double *xb = malloc(N * sizeof *xb), *xj = malloc(N * sizeof *xj);
            for (int u = 0; u < N; u++) {
                xb[u] = r[1].per_user[((size_t)u * 2 + ki) * RF_M_PER_USER + RF_M_NDCG];
                xj[u] = r[j].per_user[((size_t)u * 2 + ki) * RF_M_PER_USER + RF_M_NDCG];
            }
            double t, p;
            assert_int_equal(rf_ttest_paired(xb, xj, N, &t, &p), 0);
            assert_memory_equal(&p, &c->p_t, sizeof p);
            double pb = rf_bootstrap_paired(xb, xj, N, 500, 4);
            assert_memory_equal(&pb, &c->p_boot, sizeof pb);
            free(xb);
            free(xj);
        }
    }
    /* ARP: lower is better, so "same" (+0.3) is not the best */
    assert_true(rf_signif_get(&s1, 0, RF_M_ARP, 2)->mark >= 0);
    /* K-free metrics (AUC) are compared once, at the first K */
    assert_non_null(rf_signif_get(&s1, 0, RF_M_AUC, 0));
    assert_null(rf_signif_get(&s1, 1, RF_M_AUC, 0));
    /* metrics not computed are not compared */
    assert_null(rf_signif_get(&s1, 0, RF_M_RMSE, 0));
    /* thread count does not matter */
    size_t nc = (size_t)2 * RF_M_PER_USER * 3;
    for (size_t i = 0; i < nc; i++) {
        if (isnan(s1.cells[i].p_t) && isnan(s2.cells[i].p_t))
            continue;
        if (s1.best[i / 3] < 0)
            continue;
        assert_memory_equal(&s1.cells[i].p_t, &s2.cells[i].p_t, sizeof(double));
        assert_memory_equal(&s1.cells[i].p_boot, &s2.cells[i].p_boot, sizeof(double));
    }
    /* marks by the bootstrap */
    o.marks = RF_SIG_BOOTSTRAP;
    rf_signif s3;
    assert_int_equal(rf_eval_compare(r, 3, &o, &s3, &err), 0);
    const rf_signif_cell *c3 = rf_signif_get(&s3, 0, RF_M_NDCG, 0);
    assert_int_equal(c3->mark, c3->p_boot < 0.01 ? 2 : c3->p_boot < 0.05 ? 1 : 0);
    rf_signif_free(&s3);

    /* the table and the JSON */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rf_eval_print_table(f, r, 3);
    rf_eval_print_signif(f, r, 3, &s1);
    fclose(f);
    assert_non_null(strstr(buf, "significance vs the best model"));
    const char *row = strstr(buf, "\nNDCG@5 ");
    assert_non_null(row);
    row = strstr(row + 1, "\nNDCG@5 "); /* the significance row */
    assert_non_null(row);
    const char *eol = strchr(row + 1, '\n');
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(eol - row - 1), row + 1);
    assert_non_null(strstr(line, "best"));
    assert_non_null(strstr(line, "** t="));
    free(buf);
    char *dir = rf_test_tmpdir("signif");
    char path[512];
    snprintf(path, sizeof path, "%s/sig.json", dir);
    assert_int_equal(rf_eval_write_json_sig(path, r, 3, NULL, &s1, &err), 0);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    json_t *rows = json_object_get(json_object_get(root, "significance"), "rows");
    json_t *nd = json_object_get(rows, "NDCG@10");
    assert_string_equal(json_string_value(json_object_get(nd, "best")), "better");
    json_t *cb = json_object_get(nd, "base");
    assert_string_equal(json_string_value(json_object_get(cb, "mark")), "**");
    double pj = json_real_value(json_object_get(cb, "p_t"));
    assert_memory_equal(&pj, &rf_signif_get(&s1, 1, RF_M_NDCG, 0)->p_t, sizeof pj);
    json_decref(root);
    rf_test_rmtree(dir);
    free(dir);

    /* results that do not pair up */
    r[2].users[5] = 999;
    rf_signif s4;
    assert_int_equal(rf_eval_compare(r, 3, &o, &s4, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "same users"));
    assert_int_equal(rf_eval_compare(r, 1, &o, &s4, &err), RF_EINVAL);
    rf_signif_free(&s1);
    rf_signif_free(&s2);
    rf_signif_free(NULL);
    for (int j = 0; j < 3; j++) {
        free(r[j].users);
        free(r[j].per_user);
    }
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_betainc),   cmocka_unit_test(test_student_t),
        cmocka_unit_test(test_ttest),     cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
