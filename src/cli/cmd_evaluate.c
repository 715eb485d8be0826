/* cmd_evaluate.c - `recfuse evaluate`: offline metrics of models.
 *
 * Two modes.
 *
 * Split mode (no --test): the imported events are cut into train and test
 * (per-user chronological 80/20 with at least 5 items by default, i.e.
 * Protocol A; or a global time cut, or leave-last-out), each model is
 * created with its stored parameters (DIR/params/NAME.params) and any
 * --params-NAME overrides, fit on train, and evaluated on test. Nothing
 * in DIR/models is touched.
 *
 * Test-file mode (--test FILE): the models are the trained ones in
 * DIR/models/NAME.rfm; their history is everything in the store, built
 * with each model's own data options; FILE's interactions are the
 * relevant items. FILE is read into the store's id maps, so ids line up;
 * users unknown to the store are scored as new users (the model's
 * fallback ranking) and items unknown to it count in |relevant| but can
 * never be hit.
 *
 * Both modes print one table (rf_eval_print_table) and write the JSON
 * report (DIR/eval/last.json unless --json FILE). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/dataset.h"
#include "recfuse/eval.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/util.h"

#define MAX_MODELS 32

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: recfuse evaluate --data DIR [--models pop,itemknn] [--k 10,20]\n"
        "                        [--split user|time|loo] [--test-ratio 0.2] [--min-items 5]\n"
        "                        [--cutoff TIME] [--params-MODEL k=v,...] [--json FILE]\n"
        "                        [--weights SPEC] [--half-life DAYS] [--binary]\n"
        "       recfuse evaluate --data DIR --test FILE [--models a,b] [--k 10,20]\n"
        "                        [--format tsv|csv|jsonl] [--header|--no-header] [--json FILE]\n\n"
        "Full-ranking offline evaluation: every item is scored, the user's train items\n"
        "are excluded, and the top K is compared with the user's test items (P, R, NDCG,\n"
        "MAP, HR, MRR per user, averaged over users with test items; Cov over items).\n\n"
        "Without --test the events in DIR are split and each model is fit on the train\n"
        "part with its stored parameters (DIR/params/NAME.params) and --params-NAME:\n"
        "  --split user      per-user chronological: last ceil(ratio*n) items of users\n"
        "                    with >= min-items items go to test (default; Protocol A)\n"
        "  --split time      pairs first seen at or after --cutoff TIME go to test\n"
        "                    (default cutoff: the (1-ratio) quantile of event times)\n"
        "  --split loo       each user's last item goes to test\n"
        "The train matrix is built as `recfuse train` builds it (--weights, --half-life,\n"
        "--binary; binary by default for rating-only data).\n"
        "With --test FILE the trained models in DIR/models are scored against FILE\n"
        "(user item [value [timestamp]] like import), their history is the store.\n\n"
        "Default models: pop,itemknn. Default K: 10. JSON: DIR/eval/last.json.\n");
}

/* ---- option parsing ---------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* "10,20" -> sorted, distinct Ks. */
static int parse_ks(const char *s, int *ks, int *n_ks, rf_err *err) {
    *n_ks = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int64_t k;
        if (len == 0 || rf_parse_i64(p, len, &k) != 0 || k < 1 || k > RF_EVAL_MAX_KVAL)
            return rf_err_set(err, RF_EINVAL, "--k: '%.*s' is not a cut-off in [1, %d]", (int)len,
                              p, RF_EVAL_MAX_KVAL);
        int dup = 0;
        for (int i = 0; i < *n_ks; i++)
            dup |= ks[i] == (int)k;
        if (!dup) {
            if (*n_ks >= RF_EVAL_MAX_K)
                return rf_err_set(err, RF_EINVAL, "--k: at most %d cut-offs", RF_EVAL_MAX_K);
            ks[(*n_ks)++] = (int)k;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (*n_ks == 0)
        return rf_err_set(err, RF_EINVAL, "--k: no cut-off given");
    qsort(ks, (size_t)*n_ks, sizeof *ks, cmp_int);
    return 0;
}

/* "pop,itemknn" -> names (copied into store), each a registered model. */
static int parse_models(const char *s, char names[][32], int *n, rf_err *err) {
    *n = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0) {
            char name[32];
            if (len >= sizeof name)
                len = sizeof name - 1;
            memcpy(name, p, len);
            name[len] = 0;
            if (!rf_model_find(name)) {
                char known[512] = "";
                for (const char *const *k = rf_model_names(); *k; k++) {
                    if (known[0])
                        strncat(known, ", ", sizeof known - strlen(known) - 1);
                    strncat(known, *k, sizeof known - strlen(known) - 1);
                }
                return rf_err_set(err, RF_EINVAL, "--models: unknown model '%s' (known: %s)", name,
                                  known);
            }
            int dup = 0;
            for (int i = 0; i < *n; i++)
                dup |= strcmp(names[i], name) == 0;
            if (!dup) {
                if (*n >= MAX_MODELS)
                    return rf_err_set(err, RF_EINVAL, "--models: at most %d models", MAX_MODELS);
                snprintf(names[(*n)++], 32, "%s", name);
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (*n == 0)
        return rf_err_set(err, RF_EINVAL, "--models: no model named");
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

/* Distinct users with at least one event. */
static int32_t count_users(const rf_events *ev) {
    int32_t n = rf_idmap_size(ev->users), c = 0;
    uint8_t *seen = rf_calloc((size_t)(n ? n : 1), 1);
    if (!seen)
        return -1;
    for (int64_t i = 0; i < ev->n; i++)
        if (ev->user[i] >= 0 && ev->user[i] < n && !seen[ev->user[i]]) {
            seen[ev->user[i]] = 1;
            c++;
        }
    rf_free(seen);
    return c;
}

/* The train matrix options, as `recfuse train` chooses them: --weights,
 * --half-life, --binary; binary presence by default for rating-only logs
 * (a rating is a consumption signal in top-N evaluation - Protocol A
 * counts every rated item relevant - and a re-rated item is one item). */
static int data_opts_for(const rf_events *ev, const char *weights, double half_life, int binary,
                         rf_dataset_opts *o, rf_err *err) {
    rf_dataset_opts_default(o);
    if (weights && rf_dataset_parse_weights(o, weights, err)) {
        err->code = RF_EINVAL;
        return RF_EINVAL;
    }
    o->half_life_days = half_life;
    o->binary = binary;
    if (!weights && !binary) {
        int only_ratings = ev->n > 0;
        for (int64_t i = 0; i < ev->n && only_ratings; i++)
            only_ratings = ev->type[i] == RF_EV_RATING;
        if (only_ratings)
            o->binary = 1;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Event time at the (1 - ratio) quantile: the default global cut-off. */
static int quantile_cutoff(const rf_events *ev, double ratio, int64_t *cut, rf_err *err) {
    if (ev->n == 0)
        return rf_err_set(err, RF_EINVAL, "no events to split");
    int64_t *ts = rf_malloc_array((size_t)ev->n, sizeof *ts);
    if (!ts)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    memcpy(ts, ev->ts, (size_t)ev->n * sizeof *ts);
    qsort(ts, (size_t)ev->n, sizeof *ts, cmp_i64);
    int64_t i = (int64_t)floor((double)ev->n * (1.0 - ratio));
    if (i >= ev->n)
        i = ev->n - 1;
    if (i < 0)
        i = 0;
    *cut = ts[i];
    rf_free(ts);
    return 0;
}

/* --json FILE. main.c lists "json" among the value-less flags (for other
 * commands), so FILE may arrive as the one positional argument. */
static int json_option(rf_args *a, const char **out, rf_err *err) {
    *out = rf_arg_str(a, "json", NULL);
    if (*out || !rf_arg_flag(a, "json"))
        return 0;
    if (a->n_pos != 1)
        return rf_err_set(err, RF_EINVAL, "--json needs a file name");
    *out = a->pos[0];
    a->n_pos = 0;
    return 0;
}

static int finish(const char *json, const char *dir, rf_eval_result *res, int n,
                  const rf_eval_info *info, rf_err *err) {
    rf_eval_print_table(stdout, res, n);
    fflush(stdout);
    char path[4096];
    if (json) {
        snprintf(path, sizeof path, "%s", json);
    } else {
        snprintf(path, sizeof path, "%s/eval", dir);
        int rc = rf_mkdirs(path, err);
        if (rc)
            return rc;
        snprintf(path, sizeof path, "%s/eval/last.json", dir);
    }
    int rc = rf_eval_write_json(path, res, n, info, err);
    if (rc == 0)
        rf_log(RF_LOG_INFO, "eval.json", "path=%s", path);
    return rc;
}

/* ---- split mode ------------------------------------------------------------ */

static int run_split(rf_args *a, const char *json, rf_store *st, char names[][32], int n_models,
                     const int *ks, int n_ks, rf_err *err) {
    const char *dir = rf_store_dir(st);
    const char *mode = rf_arg_str(a, "split", "user");
    double ratio;
    int64_t min_items;
    int rc = rf_arg_double(a, "test-ratio", 0.2, 1e-9, 0.999999, &ratio, err);
    if (rc)
        return rc;
    if ((rc = rf_arg_i64(a, "min-items", 5, 1, 1000000000, &min_items, err)))
        return rc;
    const char *cutoff_s = rf_arg_str(a, "cutoff", NULL);
    const char *weights = rf_arg_str(a, "weights", NULL);
    int binary = rf_arg_flag(a, "binary");
    double half_life;
    if ((rc = rf_arg_double(a, "half-life", 0, 0, 1e6, &half_life, err)))
        return rc;
    const char *params[MAX_MODELS];
    for (int j = 0; j < n_models; j++) {
        char key[64];
        snprintf(key, sizeof key, "params-%s", names[j]);
        params[j] = rf_arg_str(a, key, NULL);
    }
    if (strcmp(mode, "user") != 0 && strcmp(mode, "time") != 0 && strcmp(mode, "loo") != 0)
        return rf_err_set(err, RF_EINVAL, "--split: '%s' is not one of user, time, loo", mode);
    if (cutoff_s && strcmp(mode, "time") != 0)
        return rf_err_set(err, RF_EINVAL, "--cutoff needs --split time");
    int64_t cutoff = 0;
    if (cutoff_s && rf_parse_time(cutoff_s, strlen(cutoff_s), &cutoff) != 0)
        return rf_err_set(err, RF_EINVAL, "--cutoff: '%s' is not a time", cutoff_s);
    if ((rc = rf_args_check_unused(a, err)))
        return rc;

    rf_events *ev = NULL;
    rf_split sp = {NULL, NULL};
    rf_dataset *train = NULL;
    rf_catalog *cat = NULL; /* side data: content uses the catalog */
    rf_csr *test = NULL;
    rf_eval_result res[MAX_MODELS];
    int n_res = 0;
    memset(res, 0, sizeof res);

    double t0 = rf_mono();
    if ((rc = rf_store_load_events(st, &ev, err)))
        goto out;
    char detail[256];
    if (strcmp(mode, "user") == 0) {
        rc = rf_split_user_ratio(ev, ratio, (int)min_items, &sp, err);
        snprintf(detail, sizeof detail, "test_ratio=%g min_items=%lld", ratio,
                 (long long)min_items);
    } else if (strcmp(mode, "loo") == 0) {
        rc = rf_split_leave_last(ev, (int)min_items, &sp, err);
        snprintf(detail, sizeof detail, "min_items=%lld", (long long)min_items);
    } else {
        if (!cutoff_s && (rc = quantile_cutoff(ev, ratio, &cutoff, err)))
            goto out;
        char tb[32];
        rf_format_time(cutoff, tb, sizeof tb);
        snprintf(detail, sizeof detail, "cutoff=%s (%lld)%s", tb, (long long)cutoff,
                 cutoff_s ? "" : " from test_ratio");
        rc = rf_split_time(ev, cutoff, &sp, err);
    }
    if (rc)
        goto out;

    rf_eval_info info = {.protocol = mode, .detail = detail, .data_dir = dir};
    info.train_rows = sp.train->n;
    info.test_rows = sp.test->n;
    info.train_users = count_users(sp.train);
    info.test_users = count_users(sp.test);
    printf("# split %s (%s): train %lld rows, %d users; test %lld rows, %d users\n", mode, detail,
           (long long)info.train_rows, (int)info.train_users, (long long)info.test_rows,
           (int)info.test_users);
    if (sp.test->n == 0) {
        rc = rf_err_set(err, RF_EINVAL,
                        "the split left no test data (%lld events; users need >= %lld items)",
                        (long long)ev->n, (long long)min_items);
        goto out;
    }

    rf_dataset_opts opts;
    if ((rc = data_opts_for(ev, weights, half_life, binary, &opts, err)))
        goto out;
    if ((rc = rf_dataset_build(sp.train, &opts, &train, err)))
        goto out;
    if ((rc = rf_store_load_catalog(st, &cat, err)))
        goto out;
    train->catalog = cat;     /* content: item attributes (not leakage) */
    train->events = sp.train; /* rules: session baskets of the train part only */
    info.n_items = train->n_items;
    if ((rc = rf_eval_relevance(sp.test, train->n_users, train->n_items, &test, err)))
        goto out;
    rf_log(RF_LOG_INFO, "eval.split",
           "split=%s train_rows=%lld test_rows=%lld train_users=%d test_users=%d items=%d "
           "binary=%d seconds=%.3f",
           mode, (long long)info.train_rows, (long long)info.test_rows, (int)info.train_users,
           (int)info.test_users, (int)train->n_items, opts.binary, rf_mono() - t0);

    for (int j = 0; j < n_models; j++) {
        rf_model *m = NULL;
        if ((rc = rf_cli_model_create(dir, names[j], params[j], &m, NULL, err)))
            goto out;
        m->data_opts = opts;
        rc = rf_model_fit(m, train, err);
        if (rc == 0) {
            rf_log(RF_LOG_INFO, "eval.fit", "model=%s seconds=%.3f", names[j], m->fit_seconds);
            rc = rf_evaluate(m, train, test, ks, n_ks, &res[n_res], err);
        }
        rf_model_free(m);
        if (rc)
            goto out;
        n_res++;
    }
    rc = finish(json, dir, res, n_res, &info, err);
out:
    for (int j = 0; j < n_res; j++)
        rf_eval_result_free(&res[j]);
    rf_csr_free(test);
    rf_dataset_free(train);
    rf_catalog_free(cat);
    rf_split_free(&sp);
    rf_events_free(ev);
    return rc;
}

/* ---- test-file mode -------------------------------------------------------- */

static int same_opts(const rf_dataset_opts *x, const rf_dataset_opts *y) {
    for (int t = 0; t < RF_EV_NTYPES; t++)
        if (x->type_weight[t] != y->type_weight[t])
            return 0;
    return x->use_value == y->use_value && x->half_life_days == y->half_life_days &&
           x->now == y->now && x->fold == y->fold && x->binary == y->binary;
}

static int run_test_file(rf_args *a, const char *json, rf_store *st, char names[][32], int n_models,
                         const int *ks, int n_ks, const char *test_path, rf_err *err) {
    const char *dir = rf_store_dir(st);
    rf_import_opts io;
    rf_import_opts_default(&io);
    const char *fmt = rf_arg_str(a, "format", NULL);
    if (fmt) {
        if (strcmp(fmt, "tsv") == 0)
            io.format = RF_FMT_TSV;
        else if (strcmp(fmt, "csv") == 0)
            io.format = RF_FMT_CSV;
        else if (strcmp(fmt, "jsonl") == 0)
            io.format = RF_FMT_JSONL;
        else
            return rf_err_set(err, RF_EINVAL, "--format: '%s' is not one of tsv, csv, jsonl", fmt);
    }
    if (rf_arg_flag(a, "header"))
        io.header = 1;
    if (rf_arg_flag(a, "no-header"))
        io.header = 0;
    int rc = rf_args_check_unused(a, err);
    if (rc)
        return rc;

    rf_events *ev = NULL, *tev = NULL;
    rf_model *models[MAX_MODELS] = {0};
    rf_dataset *ds[MAX_MODELS] = {0}; /* per model; shared when options agree */
    rf_csr *test = NULL;
    rf_eval_result res[MAX_MODELS];
    int n_res = 0;
    memset(res, 0, sizeof res);

    for (int j = 0; j < n_models; j++) {
        char path[4096];
        rf_store_model_path(st, names[j], path, sizeof path);
        rc = rf_model_load(path, &models[j], err);
        if (rc == RF_EIO || rc == RF_ENOTFOUND) {
            char why[RF_ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            rc = rf_err_set(err, RF_ENOTFOUND,
                            "model %s is not trained in %s (run: recfuse train --data %s --model "
                            "%s): %s",
                            names[j], dir, dir, names[j], why);
        }
        if (rc)
            goto out;
    }
    if ((rc = rf_store_load_events(st, &ev, err)))
        goto out;
    /* Build every train matrix before the test file grows the id maps, so
     * the matrices have exactly the store's users and items. */
    for (int j = 0; j < n_models; j++) {
        for (int i = 0; i < j && !ds[j]; i++)
            if (same_opts(&models[i]->data_opts, &models[j]->data_opts))
                ds[j] = ds[i];
        if (!ds[j] && (rc = rf_dataset_build(ev, &models[j]->data_opts, &ds[j], err)))
            goto out;
    }
    int32_t store_users = rf_idmap_size(ev->users), store_items = rf_idmap_size(ev->items);

    if ((rc = rf_events_new(ev->users, ev->items, &tev))) {
        rf_err_set(err, rc, "out of memory");
        goto out;
    }
    rf_import_stats ist;
    memset(&ist, 0, sizeof ist);
    if ((rc = rf_read_interactions(test_path, &io, tev, &ist, err)))
        goto out;
    if (tev->n == 0) {
        rc = rf_err_set(err, RF_EINVAL, "%s: no interactions", test_path);
        goto out;
    }
    if ((rc = rf_eval_relevance(tev, store_users, store_items, &test, err)))
        goto out;

    int32_t new_users = 0, new_items = 0;
    for (int32_t u = store_users; u < test->nrows; u++)
        new_users += rf_csr_row_len(test, u) > 0;
    new_items = test->ncols - store_items;
    rf_eval_info info = {.protocol = "test-file", .detail = test_path, .data_dir = dir};
    info.train_rows = ev->n;
    info.test_rows = tev->n;
    info.train_users = count_users(ev);
    info.test_users = count_users(tev);
    info.n_items = store_items;
    printf("# test file %s: %lld rows, %d users (%d unknown to the store), %d unknown items; "
           "train: the store, %lld rows, %d users\n",
           test_path, (long long)tev->n, (int)info.test_users, (int)new_users, (int)new_items,
           (long long)ev->n, (int)info.train_users);

    for (int j = 0; j < n_models; j++) {
        rc = rf_evaluate(models[j], ds[j], test, ks, n_ks, &res[n_res], err);
        if (rc)
            goto out;
        if (res[n_res].n_unreachable > 0)
            rf_log(RF_LOG_WARN, "eval.unreachable",
                   "model=%s pairs=%lld of=%lld msg=\"test pairs already in the store or with "
                   "items the model does not know; they count as misses\"",
                   names[j], (long long)res[n_res].n_unreachable, (long long)res[n_res].n_rel);
        n_res++;
    }
    rc = finish(json, dir, res, n_res, &info, err);
out:
    for (int j = 0; j < n_res; j++)
        rf_eval_result_free(&res[j]);
    rf_csr_free(test);
    for (int j = 0; j < n_models; j++) {
        int shared = 0;
        for (int i = 0; i < j; i++)
            shared |= ds[i] == ds[j];
        if (!shared)
            rf_dataset_free(ds[j]);
        rf_model_free(models[j]);
    }
    rf_events_free(tev);
    rf_events_free(ev);
    return rc;
}

int rf_cmd_evaluate(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    int ks[RF_EVAL_MAX_K], n_ks = 0, n_models = 0;
    char names[MAX_MODELS][32];
    int rc = parse_ks(rf_arg_str(a, "k", "10"), ks, &n_ks, &err);
    if (rc == 0)
        rc = parse_models(rf_arg_str(a, "models", "pop,itemknn"), names, &n_models, &err);
    if (rc)
        return rf_cli_fail(a->cmd, &err);
    const char *test_path = rf_arg_str(a, "test", NULL), *json = NULL;
    if (rc == 0)
        rc = json_option(a, &json, &err);
    if (rc)
        return rf_cli_fail(a->cmd, &err);
    if (!rf_arg_str(a, "data", NULL)) {
        rf_err_set(&err, RF_EINVAL, "--data DIR is required");
        return rf_cli_fail(a->cmd, &err);
    }
    rf_store *st = NULL;
    if ((rc = rf_cli_open_store(a, 0, &st, &err)))
        return rf_cli_fail(a->cmd, &err);
    double t0 = rf_mono();
    if (test_path)
        rc = run_test_file(a, json, st, names, n_models, ks, n_ks, test_path, &err);
    else
        rc = run_split(a, json, st, names, n_models, ks, n_ks, &err);
    rf_store_close(st);
    if (rc)
        return rf_cli_fail(a->cmd, &err);
    rf_log(RF_LOG_INFO, "eval.done", "models=%d seconds=%.3f", n_models, rf_mono() - t0);
    return 0;
}
