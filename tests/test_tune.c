/* test_tune.c - the tuner (src/eval/tune.c) and the report (src/eval/html.c):
 * search-space parsing (lists, ranges, log ranges, enum choices,
 * alternatives; strict errors and lenient drops; the text form round
 * trips), spaces derived from a parameter table, every built-in space
 * against the registered models' tables, grid and random configurations,
 * successive halving on a planted dataset (rung sizes, promotion of the
 * best, the best equal to a direct evaluation, determinism for a seed,
 * the iteration budget, the time budget), the leaderboard JSON, and the
 * report: its JSON and HTML agree number for number, the HTML holds the
 * SVG charts, and re-rendering from the JSON gives the same page. */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/report.h"
#include "recfuse/rng.h"
#include "recfuse/tune.h"
#include "testutil.h"

/* ---- spaces ------------------------------------------------------------------ */

typedef struct tparams {
    int k;
    double alpha, reg;
    int sim;
    int seed;
    double frac;
} tparams;

static const rf_param_def tdefs[] = {
    {"k", RF_P_INT, offsetof(tparams, k), 100, 1, 100000, NULL, "neighbours"},
    {"alpha", RF_P_DOUBLE, offsetof(tparams, alpha), 0.5, 0, 1, NULL, "a share"},
    {"reg", RF_P_DOUBLE, offsetof(tparams, reg), 10, 1e-9, 1e12, NULL, "regularisation"},
    {"sim", RF_P_ENUM, offsetof(tparams, sim), 0, 0, 2, "cosine,jaccard,bm25", "similarity"},
    {"seed", RF_P_INT, offsetof(tparams, seed), 42, 0, 1e9, NULL, "seed"},
    {"frac", RF_P_DOUBLE, offsetof(tparams, frac), 0, 0, 1e6, NULL, "zero default, wide"},
    {0},
};

static void test_space_parse(void **state) {
    (void)state;
    rf_tune_space s;
    rf_err err;
    assert_int_equal(rf_tune_space_parse(" k = 50, 100 ,200; alpha=0.3:0.9 ;reg=0.01:10:log | "
                                         "sim=bm25,jaccard;k=5:20",
                                         tdefs, 1, &s, &err),
                     0);
    assert_int_equal(s.n_subs, 2);
    assert_int_equal(s.subs[0].n_dims, 3);
    const rf_tune_dim *k = &s.subs[0].dims[0], *a = &s.subs[0].dims[1], *r = &s.subs[0].dims[2];
    assert_string_equal(k->name, "k");
    assert_false(k->is_range);
    assert_int_equal(k->n_values, 3);
    assert_string_equal(k->values[2], "200");
    assert_true(k->is_int);
    assert_true(a->is_range && !a->log && a->lo == 0.3 && a->hi == 0.9);
    assert_true(r->is_range && r->log);
    assert_int_equal(s.subs[1].dims[0].n_values, 2);
    assert_true(s.subs[1].dims[1].is_range && s.subs[1].dims[1].is_int);
    /* the text form parses back to the same space */
    char buf[4096];
    rf_tune_space_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "k=50,100,200;alpha=0.3:0.9;reg=0.01:10:log | sim=bm25,jaccard;k=5:20");
    rf_tune_space s2;
    assert_int_equal(rf_tune_space_parse(buf, tdefs, 1, &s2, &err), 0);
    assert_memory_equal(&s, &s2, sizeof s);

    /* errors name the problem (strict) */
    const char *bad[] = {"nope=1,2",      "k=0",          "alpha=0.5:2",   "alpha=0:1:log",
                         "sim=0:1",       "sim=cosine,x", "k=abc",         "alpha=0.9:0.1",
                         "k",             "k=1;k=2",      "alpha=0.1:0.2:cube", "",
                         "k=1.5:1.7"};
    const char *why[] = {"unknown parameter 'nope'", "outside", "outside", "lo > 0", "not a range",
                         "not one of",             "not a number", "empty", "expected name",
                         "given twice",            "scale",   "no parameter", "no integer"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rf_err_clear(&err);
        int rc = rf_tune_space_parse(bad[i], tdefs, 1, &s, &err);
        if (rc != RF_EINVAL || !strstr(err.msg, why[i])) {
            print_error("'%s': rc %d, message '%s', expected '%s'\n", bad[i], rc, err.msg, why[i]);
            fail();
        }
    }
    /* lenient: unknown names are dropped, bad alternatives too */
    assert_int_equal(rf_tune_space_parse("k=5,6;nope=1 | sim=cosine,nosuch;k=1 | alpha=0.1:0.2",
                                         tdefs, 0, &s, &err),
                     0);
    assert_int_equal(s.n_subs, 2);
    assert_int_equal(s.subs[0].n_dims, 1);
    assert_string_equal(s.subs[1].dims[0].name, "alpha");
}

static void test_space_derived(void **state) {
    (void)state;
    /* a model without a built-in space: derived from the table */
    rf_model_ops ops = {.name = "no-such-model-in-table", .params = tdefs};
    rf_tune_space s;
    rf_err err;
    assert_int_equal(rf_tune_space_default(&ops, &s, &err), 0);
    assert_int_equal(s.n_subs, 1);
    char buf[1024];
    rf_tune_space_format(&s, buf, sizeof buf);
    /* k: 1..1e5 spans decades -> [10, 1000] log; alpha: 0..1 linear;
     * reg: [1, 100] log; sim: every choice; seed and frac left alone */
    assert_string_equal(buf, "k=10:1000:log;alpha=0:1;reg=1:100:log;sim=cosine,jaccard,bm25");
    /* every built-in space fits the registered model it names */
    for (const char *const *n = rf_model_names(); *n; n++) {
        const char *text, *metric, *iter;
        rf_tune_model_defaults(*n, &text, &metric, &iter);
        const rf_model_ops *mo = rf_model_find(*n);
        if (!text) {
            print_message("model %s: no built-in space (derived)\n", *n);
            assert_int_equal(rf_tune_space_default(mo, &s, &err), 0);
            continue;
        }
        rf_err_clear(&err);
        int rc = rf_tune_space_parse(text, mo->params, 1, &s, &err);
        if (rc) {
            print_error("built-in space of %s does not fit its parameters: %s\n", *n, err.msg);
            fail();
        }
        int mt, k;
        assert_int_equal(rf_metric_label_parse(metric, &mt, &k), 0);
        if (iter) {
            const rf_param_def *d = mo->params;
            while (d->name && strcmp(d->name, iter) != 0)
                d++;
            assert_non_null(d->name);
            assert_int_equal(d->type, RF_P_INT);
        }
    }
}

/* ---- a planted dataset ---------------------------------------------------------- */

/* 300 users in 6 taste groups over 120 items (20 per group), popularity
 * skew inside groups, times increasing per user. */
static rf_events *planted(uint64_t seed) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    rf_rng rng;
    rf_rng_seed(&rng, seed);
    char us[16], is[16];
    for (int i = 0; i < 120; i++) {
        snprintf(is, sizeof is, "i%d", i);
        int32_t id;
        assert_int_equal(rf_idmap_put(ev->items, is, strlen(is), &id, NULL), 0);
    }
    for (int u = 0; u < 300; u++) {
        int g = u % 6, n = 8 + (int)rf_rng_below(&rng, 12);
        snprintf(us, sizeof us, "u%d", u);
        for (int j = 0; j < n; j++) {
            int it;
            if (rf_rng_uniform(&rng) < 0.8)
                it = g * 20 + (int)(20 * rf_rng_uniform(&rng) * rf_rng_uniform(&rng));
            else
                it = (int)rf_rng_below(&rng, 120);
            snprintf(is, sizeof is, "i%d", it);
            assert_int_equal(
                rf_events_push_str(ev, us, is, RF_EV_PURCHASE, 1, 1000 + u * 100 + j), 0);
        }
    }
    return ev;
}

typedef struct tdata {
    rf_events *ev;
    rf_split sp;
    rf_dataset *d;
    rf_csr *val;
    rf_tune_data td;
} tdata;

static void tdata_make(tdata *t) {
    memset(t, 0, sizeof *t);
    t->ev = planted(3);
    rf_protocol p;
    rf_protocol_default(&p);
    rf_err err;
    assert_int_equal(rf_protocol_split(t->ev, &p, &t->sp, NULL, 0, &err), 0);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    assert_int_equal(rf_dataset_build(t->sp.train, &o, &t->d, &err), 0);
    assert_int_equal(rf_eval_relevance(t->sp.test, t->d->n_users, t->d->n_items, &t->val, &err),
                     0);
    t->td.train_ev = t->sp.train;
    t->td.train = t->d;
    t->td.dopts = o;
    t->td.val = t->val;
}

static void tdata_free(tdata *t) {
    rf_csr_free(t->val);
    rf_dataset_free(t->d);
    rf_split_free(&t->sp);
    rf_events_free(t->ev);
}

/* NDCG@10 of model `name` with params on the whole validation part. */
static double direct(const tdata *t, const char *name, const char *params) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new(name, &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, params, &err), 0);
    m->data_opts = t->td.dopts;
    assert_int_equal(rf_model_fit(m, t->d, &err), 0);
    rf_eval_result r;
    int k = 10;
    rf_eval_opts o;
    rf_eval_opts_default(&o);
    o.progress = 0;
    assert_int_equal(rf_evaluate_ex(m, t->d, t->val, &k, 1, &o, &r, &err), 0);
    double v = r.value[0][RF_M_NDCG];
    rf_eval_result_free(&r);
    rf_model_free(m);
    return v;
}

static void test_tune_halving(void **state) {
    (void)state;
    tdata t;
    tdata_make(&t);
    rf_tune_space s;
    rf_err err;
    const rf_model_ops *ops = rf_model_find("itemknn");
    assert_non_null(ops);
    assert_int_equal(rf_tune_space_parse("k=1:60:log;shrink=0,5,50", ops->params, 1, &s, &err), 0);
    rf_tune_opts o;
    rf_tune_opts_default(&o);
    o.search = RF_TUNE_GRID;
    o.trials = 0; /* the whole grid */
    o.grid_points = 9;
    rf_tune_result r, r2;
    rf_err_clear(&err);
    int rc = rf_tune_run("itemknn", &s, &t.td, &o, &r, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.n_trials, 28); /* the defaults, then 9 values of k x 3 shrinks */
    assert_string_equal(r.trials[0].params, "");
    assert_int_equal(r.trials[0].sub, -1);
    assert_int_equal(r.rungs, 3);
    assert_int_equal(r.resource, RF_TUNE_RES_USERS);
    assert_true(fabs(r.budget[0] - 1.0 / 9) < 1e-12 && r.budget[2] == 1.0);
    int per_rung[3] = {0, 0, 0};
    for (int i = 0; i < r.n_trials; i++) {
        assert_int_equal(r.trials[i].status, RF_TRIAL_OK);
        for (int q = 0; q <= r.trials[i].rung; q++)
            per_rung[q]++;
    }
    assert_int_equal(per_rung[0], 28);
    /* the best 1/eta go on, and the defaults always (one more unless among them) */
    assert_true(per_rung[1] == 9 || per_rung[1] == 10);
    assert_true(per_rung[2] == 3 || per_rung[2] == 4);
    assert_int_equal(r.trials[0].rung, 2);
    /* promotion kept the best of rung 0 */
    int best0 = -1;
    for (int i = 0; i < r.n_trials; i++)
        if (best0 < 0 || r.trials[i].value[0] > r.trials[best0].value[0])
            best0 = i;
    assert_true(r.trials[best0].rung >= 1);
    /* the best is the best at full budget, and its value is a direct
     * evaluation on every validation user */
    const rf_tune_trial *b = &r.trials[r.best];
    assert_int_equal(b->rung, 2);
    for (int i = 0; i < r.n_trials; i++)
        if (r.trials[i].rung == 2)
            assert_true(r.trials[i].value[2] <= b->value[2]);
    assert_int_equal(r.rank[0], r.best);
    double dv = direct(&t, "itemknn", b->params);
    assert_memory_equal(&dv, &b->value[2], sizeof dv);
    /* the full parameter text configures the same model */
    assert_non_null(strstr(b->full, "shrink="));
    double dv2 = direct(&t, "itemknn", b->full);
    assert_memory_equal(&dv2, &dv, sizeof dv);
    /* a tuned model beats a poor configuration */
    assert_true(b->value[2] > direct(&t, "itemknn", "k=1") + 0.01);
    /* same seed, same search */
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), 0);
    assert_int_equal(r2.best, r.best);
    for (int i = 0; i < r.n_trials; i++) {
        assert_string_equal(r.trials[i].params, r2.trials[i].params);
        for (int q = 0; q <= r.trials[i].rung; q++)
            assert_memory_equal(&r.trials[i].value[q], &r2.trials[i].value[q], sizeof(double));
    }
    rf_tune_result_free(&r2);

    /* the leaderboard JSON */
    char *dir = rf_test_tmpdir("tune");
    char path[512];
    snprintf(path, sizeof path, "%s/tune-itemknn.json", dir);
    assert_int_equal(rf_tune_write_json(path, &r, &o, &s, NULL, &err), 0);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "model")), "itemknn");
    assert_string_equal(json_string_value(json_object_get(root, "metric")), "NDCG@10");
    assert_int_equal(json_array_size(json_object_get(root, "trials")), 28);
    json_t *best = json_object_get(root, "best");
    assert_int_equal(json_integer_value(json_object_get(best, "trial")), r.best);
    double jv = json_real_value(json_object_get(best, "value"));
    assert_memory_equal(&jv, &b->value[2], sizeof jv);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(root, "leaderboard"), 0)),
                     r.best);
    json_decref(root);

    /* random search: distinct draws, deterministic for a seed; no halving */
    o.search = RF_TUNE_RANDOM;
    o.trials = 7;
    o.rungs = 1;
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), 0);
    assert_int_equal(r2.n_trials, 8);
    assert_int_equal(r2.rungs, 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r2.trials[i].rung, 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(r2.trials[i].params, r2.trials[j].params);
    }
    rf_tune_result r3;
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r3, &err), 0);
    for (int i = 0; i < 8; i++)
        assert_string_equal(r2.trials[i].params, r3.trials[i].params);
    rf_tune_result_free(&r3);
    o.seed = 2;
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r3, &err), 0);
    int differ = 0;
    for (int i = 1; i < 8; i++)
        differ |= strcmp(r2.trials[i].params, r3.trials[i].params) != 0;
    assert_true(differ);
    rf_tune_result_free(&r3);
    rf_tune_result_free(&r2);

    /* a grid larger than --trials runs a seeded subset */
    o.search = RF_TUNE_GRID;
    o.trials = 5;
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), 0);
    assert_int_equal(r2.n_trials, 6);
    rf_tune_result_free(&r2);

    /* a time budget that is already spent: nothing runs */
    o.budget_seconds = 1e-9;
    rf_err_clear(&err);
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "no trial"));
    o.budget_seconds = 0;
    /* bad arguments */
    o.fixed = "nosuch=1";
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), RF_EINVAL);
    o.fixed = NULL;
    o.metric = RF_M_RMSE; /* no ratings given */
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), RF_EINVAL);
    o.metric = RF_M_NDCG;
    assert_int_equal(rf_tune_run("no-such-model", &s, &t.td, &o, &r2, &err), RF_EINVAL);
    o.resource = RF_TUNE_RES_ITERATIONS; /* itemknn has none */
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &o, &r2, &err), RF_EINVAL);

    rf_tune_result_free(&r);
    rf_test_rmtree(dir);
    free(dir);
    tdata_free(&t);
}

/* The iteration budget: a rung below 1 refits with fewer iterations. */
static void test_tune_iterations(void **state) {
    (void)state;
    const char *name = NULL, *text, *metric, *iter = NULL;
    for (const char *const *n = rf_model_names(); *n && !name; n++) {
        rf_tune_model_defaults(*n, &text, &metric, &iter);
        if (iter && strcmp(metric, "ndcg@10") == 0)
            name = *n;
    }
    if (!name) {
        print_message("no iterative ranking model registered: skipped\n");
        skip();
    }
    rf_tune_model_defaults(name, &text, &metric, &iter);
    tdata t;
    tdata_make(&t);
    const rf_model_ops *ops = rf_model_find(name);
    rf_tune_space s;
    rf_err err;
    char spec[128];
    snprintf(spec, sizeof spec, "%s=9", iter);
    assert_int_equal(rf_tune_space_parse(spec, ops->params, 1, &s, &err), 0);
    rf_tune_opts o;
    rf_tune_opts_default(&o);
    o.search = RF_TUNE_GRID;
    o.trials = 0;
    o.rungs = 3;
    o.fixed = strcmp(name, "ials") == 0 ? "factors=8" : strcmp(name, "bpr") == 0 ? "factors=8" : NULL;
    rf_tune_result r;
    rf_err_clear(&err);
    int rc = rf_tune_run(name, &s, &t.td, &o, &r, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.resource, RF_TUNE_RES_ITERATIONS);
    assert_string_equal(r.iter_param, iter);
    /* the defaults and one configuration: 9 * 1/9 = 1, 3, 9 iterations for
     * the one promoted through every rung */
    assert_int_equal(r.n_trials, 2);
    assert_int_equal(r.rungs, 3);
    const rf_tune_trial *tt = &r.trials[1];
    char p[256];
    for (int q = 0; q < 3; q++) {
        snprintf(p, sizeof p, "%s%s%s=%d", o.fixed ? o.fixed : "", o.fixed ? "," : "", iter,
                 q == 0 ? 1 : q == 1 ? 3 : 9);
        double dv = direct(&t, name, p);
        if (q <= tt->rung)
            assert_memory_equal(&dv, &tt->value[q], sizeof dv);
        else /* the defaults won rung 0 */
            assert_true(r.trials[0].rung >= 1);
    }
    /* the stored configuration is the full one */
    snprintf(p, sizeof p, "%s=9", iter);
    assert_non_null(strstr(tt->full, p));
    rf_tune_result_free(&r);
    tdata_free(&t);
}

/* ---- the report ------------------------------------------------------------------------ */

/* Value of the cell data-model="m" data-metric="l" in html (first one). */
static int html_cell(const char *html, const char *m, const char *l, double *v) {
    char key[128];
    snprintf(key, sizeof key, "data-model=\"%s\" data-metric=\"%s\"", m, l);
    const char *p = strstr(html, key);
    if (!p)
        return -1;
    p = strchr(p, '>');
    return p && sscanf(p + 1, "%lf", v) == 1 ? 0 : -1;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void test_report(void **state) {
    (void)state;
    tdata t;
    tdata_make(&t);
    const char *names[] = {"pop", "itemknn"};
    const int ks[] = {1, 5, 10, 20};
    rf_eval_result res[2];
    rf_err err;
    rf_eval_opts eo;
    rf_eval_opts_default(&eo);
    eo.progress = 0;
    for (int j = 0; j < 2; j++) {
        rf_model *m;
        assert_int_equal(rf_model_new(names[j], &m, &err), 0);
        m->data_opts = t.td.dopts;
        assert_int_equal(rf_model_fit(m, t.d, &err), 0);
        assert_int_equal(rf_evaluate_ex(m, t.d, t.val, ks, 4, &eo, &res[j], &err), 0);
        rf_model_free(m);
    }
    rf_signif sig;
    assert_int_equal(rf_eval_compare(res, 2, NULL, &sig, &err), 0);
    /* a tuning run to include */
    char *dir = rf_test_tmpdir("report");
    char tpath[512], jpath[512], hpath[512], h2path[512];
    snprintf(tpath, sizeof tpath, "%s/tune-itemknn.json", dir);
    snprintf(jpath, sizeof jpath, "%s/report.json", dir);
    snprintf(hpath, sizeof hpath, "%s/report.html", dir);
    snprintf(h2path, sizeof h2path, "%s/again.html", dir);
    rf_tune_space s;
    assert_int_equal(
        rf_tune_space_parse("k=5,20,60", rf_model_find("itemknn")->params, 1, &s, &err), 0);
    rf_tune_opts to;
    rf_tune_opts_default(&to);
    to.search = RF_TUNE_GRID;
    to.trials = 0;
    rf_tune_result tr;
    assert_int_equal(rf_tune_run("itemknn", &s, &t.td, &to, &tr, &err), 0);
    assert_int_equal(rf_tune_write_json(tpath, &tr, &to, &s, NULL, &err), 0);
    rf_tune_result_free(&tr);
    const char *tunes[] = {tpath, "/nonexistent/tune-x.json"};
    rf_eval_info info = {.protocol = "user", .detail = "test", .data_dir = dir};
    rf_report_input in = {.res = res, .n = 2, .info = &info, .sig = &sig, .train = t.d,
                          .main_k = 10, .tune_paths = tunes, .n_tune = 2, .title = "A & B <test>"};
    assert_int_equal(rf_report_write(&in, jpath, hpath, &err), 0);

    json_error_t je;
    json_t *root = json_load_file(jpath, 0, &je);
    assert_non_null(root);
    char *html = rf_test_read_file(hpath);
    assert_non_null(html);
    /* self-contained: no script, no external resource; the title escaped */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_non_null(strstr(html, "A &amp; B &lt;test&gt;"));
    /* charts: one per metric at K=10 plus AUC, the curve, the histogram,
     * the tuning chart */
    json_t *models = json_object_get(root, "models");
    json_t *mets = json_object_get(json_array_get(models, 0), "metrics");
    int at10 = 0;
    const char *label;
    json_t *v;
    json_object_foreach(mets, label, v) {
        at10 += strstr(label, "@10") != NULL && strstr(label, "@10")[3] == 0;
    }
    int n_svg = count(html, "<svg");
    assert_int_equal(n_svg, at10 + 1 /* AUC */ + 3);
    assert_non_null(strstr(html, "data-chart=\"pr\""));
    assert_non_null(strstr(html, "data-chart=\"popularity\""));
    assert_non_null(strstr(html, "data-chart=\"tune\""));
    assert_int_equal(count(html, "</svg>"), n_svg);
    /* every table number is the JSON's, rounded to 4 decimals */
    int cells = 0;
    for (size_t j = 0; j < json_array_size(models); j++) {
        json_t *mo = json_array_get(models, j);
        const char *name = json_string_value(json_object_get(mo, "name"));
        json_object_foreach(json_object_get(mo, "metrics"), label, v) {
            double hv;
            assert_int_equal(html_cell(html, name, label, &hv), 0);
            char a[32], b[32];
            snprintf(a, sizeof a, "%.4f", hv);
            snprintf(b, sizeof b, "%.4f", json_number_value(v));
            assert_string_equal(a, b);
            cells++;
        }
    }
    assert_true(cells >= 2 * 4 * 10);
    /* and the JSON's values are the results' */
    double jn = json_real_value(json_object_get(json_object_get(json_array_get(models, 1), "metrics"),
                                                "NDCG@10"));
    assert_memory_equal(&jn, &res[1].value[2][RF_M_NDCG], sizeof jn);
    /* the curve, histogram and tuning sections */
    json_t *curve = json_object_get(root, "pr_curve");
    assert_int_equal(json_array_size(json_object_get(curve, "ks")), 4);
    double p5 = json_real_value(json_array_get(
        json_object_get(json_object_get(json_object_get(curve, "models"), "pop"), "precision"), 1));
    assert_memory_equal(&p5, &res[0].value[1][RF_M_PRECISION], sizeof p5);
    json_t *hist = json_object_get(root, "popularity_histogram");
    double tot = 0;
    json_t *hp = json_object_get(json_object_get(hist, "models"), "itemknn");
    for (size_t b = 0; b < json_array_size(hp); b++)
        tot += json_real_value(json_array_get(hp, b));
    assert_true(fabs(tot - 1) < 1e-9);
    assert_int_equal(json_array_size(json_object_get(root, "tuning")), 1); /* the bad path skipped */
    assert_non_null(json_object_get(json_object_get(json_array_get(models, 0), "ci"), "NDCG@10"));
    /* re-rendering from the JSON gives the same page */
    assert_int_equal(rf_report_render_html(jpath, h2path, &err), 0);
    char *html2 = rf_test_read_file(h2path);
    assert_string_equal(html, html2);
    free(html2);
    /* errors */
    in.main_k = 7;
    assert_int_equal(rf_report_write(&in, jpath, hpath, &err), RF_EINVAL);
    in.main_k = 10;
    snprintf(h2path, sizeof h2path, "%s/no/dir/x.html", dir);
    assert_int_equal(rf_report_write(&in, jpath, h2path, &err), RF_EIO);
    assert_int_equal(rf_report_render_html(tpath, hpath, &err), RF_EFORMAT); /* not a report */

    json_decref(root);
    free(html);
    rf_signif_free(&sig);
    rf_eval_result_free(&res[0]);
    rf_eval_result_free(&res[1]);
    rf_test_rmtree(dir);
    free(dir);
    tdata_free(&t);
}

int main(void) {
    rf_log_set_level(RF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_parse),   cmocka_unit_test(test_space_derived),
        cmocka_unit_test(test_tune_halving),  cmocka_unit_test(test_tune_iterations),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
