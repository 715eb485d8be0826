/* cmd_evaluate.c - `recfuse evaluate`: offline metrics of models, compared.
 *
 * Two modes.
 *
 * Split mode (no --test): the imported events are cut by a protocol
 * (per-user chronological 80/20 with at least 5 items by default, i.e.
 * Protocol A; a global time cut, leave-last-out, or k-fold - every fold
 * in turn, averaged), optionally down to the validation split inside the
 * train part (--validation: what `tune` optimises). Each model is created
 * with its stored parameters (DIR/params/NAME.params) and any
 * --params-NAME overrides, fit on train, and evaluated on test. Nothing
 * in DIR/models is touched. The session logic is in evalrun.c, shared
 * with `tune` and `report`.
 *
 * Test-file mode (--test FILE): the models are the trained ones in
 * DIR/models/NAME.rfm; their history is everything in the store, built
 * with each model's own data options; FILE's interactions are the
 * relevant items. FILE is read into the store's id maps, so ids line up;
 * users unknown to the store are scored as new users (the model's
 * fallback ranking) and items unknown to it count in |relevant| but can
 * never be hit.
 *
 * Both modes print one table (rf_eval_print_table), then - with several
 * models - the significance of each row against its best model (paired
 * t-test and bootstrap over users), and write the JSON report
 * (DIR/eval/last.json unless --json FILE). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/evalrun.h"
#include "recfuse/dataset.h"
#include "recfuse/eval.h"
#include "recfuse/fusion.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/util.h"

#define MAX_MODELS 32
#define MAX_FOLDS 100

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse evaluate --data DIR [--models pop,itemknn] [--k 10,20]\n"
            "                        [--split user|time|loo|kfold] [--validation]\n"
            "                        [--params-MODEL k=v,...] [--json FILE] [options]\n"
            "       recfuse evaluate --data DIR --test FILE [--models a,b] [--k 10,20]\n"
            "                        [--format tsv|csv|jsonl] [--header|--no-header] [--json FILE]\n\n"
            "Full-ranking offline evaluation: every item is scored, the user's train items\n"
            "are excluded, and the top K is compared with the user's held-out items.\n"
            "Metrics (docs/evaluation.md): P R NDCG MAP HR MRR at each K, AUC over the whole\n"
            "ranking, Cov and Gini (exposure) over the catalog, Nov (self-information), ARP\n"
            "(average recommended popularity), ILD (by category, and by item vectors for\n"
            "factor models), Rev (prices of the hits), RMSE and MAE with --rating.\n\n"
            "Without --test the events in DIR are split and each model is fit on the train\n"
            "part with its stored parameters (DIR/params/NAME.params) and --params-NAME.\n");
    rf_evalrun_usage(out, 0);
    fprintf(out,
            "comparison (two or more models):\n"
            "  --signif t|bootstrap|none  which test marks the rows (default t); both p-values\n"
            "                    are printed: paired t-test and paired bootstrap over users\n"
            "  --bootstrap N     bootstrap resamples (1000); seeded by --seed\n"
            "With --test FILE the trained models in DIR/models are scored against FILE\n"
            "(user item [value [timestamp]] like import), their history is the store\n"
            "(--sampled-negatives, --rating, --no-auc, --seed apply).\n\n"
            "--models fusion (split mode) also evaluates every channel of the fused model\n"
            "alone and its simple blends (rows blend:weighted, blend:rrf, blend:switch),\n"
            "so the table compares them; --fusion-only evaluates the fused model alone.\n\n"
            "Default models: pop,itemknn. Default K: 10. JSON: DIR/eval/last.json.\n");
}

/* ---- option parsing ---------------------------------------------------- */

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

/* --signif and --bootstrap; *on = 0 for "none". */
static int signif_options(rf_args *a, rf_signif_opts *so, int *on, rf_err *err) {
    rf_signif_opts_default(so);
    const char *s = rf_arg_str(a, "signif", "t");
    *on = 1;
    if (strcmp(s, "t") == 0)
        so->marks = RF_SIG_T;
    else if (strcmp(s, "bootstrap") == 0)
        so->marks = RF_SIG_BOOTSTRAP;
    else if (strcmp(s, "none") == 0)
        *on = 0;
    else
        return rf_err_set(err, RF_EINVAL, "--signif: '%s' is not one of t, bootstrap, none", s);
    int64_t b, seed;
    int rc = rf_arg_i64(a, "bootstrap", 1000, 1, 1000000, &b, err);
    if (rc == 0)
        rc = rf_arg_i64(a, "seed", 1, 0, INT64_MAX, &seed, err);
    so->resamples = (int)b;
    so->seed = (uint64_t)seed;
    return rc;
}

/* Print the table (and the significance table), write the JSON. */
static int finish(const char *json, const char *dir, rf_eval_result *res, int n,
                  const rf_eval_info *info, const rf_signif_opts *so, int signif, rf_err *err) {
    rf_signif sig;
    memset(&sig, 0, sizeof sig);
    int have_sig = 0;
    if (signif && n >= 2) {
        rf_err serr;
        rf_err_clear(&serr);
        if (rf_eval_compare(res, n, so, &sig, &serr) == 0)
            have_sig = 1;
        else
            rf_log(RF_LOG_WARN, "eval.signif", "msg=\"%s\"", serr.msg);
    }
    rf_eval_print_table(stdout, res, n);
    if (have_sig)
        rf_eval_print_signif(stdout, res, n, &sig);
    fflush(stdout);
    char path[4096];
    int rc = 0;
    if (json) {
        snprintf(path, sizeof path, "%s", json);
    } else {
        snprintf(path, sizeof path, "%s/eval", dir);
        if ((rc = rf_mkdirs(path, err)))
            goto out;
        snprintf(path, sizeof path, "%s/eval/last.json", dir);
    }
    rc = rf_eval_write_json_sig(path, res, n, info, have_sig ? &sig : NULL, err);
    if (rc == 0)
        rf_log(RF_LOG_INFO, "eval.json", "path=%s", path);
out:
    rf_signif_free(&sig);
    return rc;
}

/* ---- split mode ------------------------------------------------------------ */

/* One row of the comparison: a model created by name with parameters,
 * shown under its own label. */
typedef struct evrow {
    char model[32], label[32];
    char params[2048]; /* "" when none */
} evrow;

static int add_row(evrow *rows, int *n, const char *model, const char *label, const char *params,
                   const char *extra, rf_err *err) {
    for (int i = 0; i < *n; i++)
        if (strcmp(rows[i].label, label) == 0)
            return 0;
    if (*n >= MAX_MODELS)
        return rf_err_set(err, RF_EINVAL, "--models: at most %d models", MAX_MODELS);
    evrow *r = &rows[(*n)++];
    snprintf(r->model, sizeof r->model, "%s", model);
    snprintf(r->label, sizeof r->label, "%s", label);
    snprintf(r->params, sizeof r->params, "%s%s%s", params ? params : "",
             params && *params && extra ? "," : "", extra ? extra : "");
    return 0;
}

/* The rows to evaluate: each named model; "fusion" (unless --fusion-only)
 * brings every channel it uses alone, then its simple blends (the same
 * fused model with ranker=weighted, rrf, switch: rows blend:weighted ...),
 * then itself. Parameters: --params-NAME for each model and channel. */
static int plan_rows(rf_args *a, const char *dir, char names[][32], int n_models, evrow *rows,
                     int *n_rows, rf_err *err) {
    int only = rf_arg_flag(a, "fusion-only");
    const char *const *all = rf_model_names();
    const char *pp[64] = {0};
    int n_all = 0;
    for (; all[n_all] && n_all < 64; n_all++) {
        char key[64];
        snprintf(key, sizeof key, "params-%s", all[n_all]);
        pp[n_all] = rf_arg_str(a, key, NULL);
    }
    int rc;
    *n_rows = 0;
    for (int j = 0; j < n_models; j++) {
        const char *mp = NULL;
        for (int q = 0; q < n_all; q++)
            if (strcmp(all[q], names[j]) == 0)
                mp = pp[q];
        if (strcmp(names[j], "fusion") == 0 && !only) {
            rf_model *m = NULL;
            if ((rc = rf_cli_model_create(dir, "fusion", mp, &m, NULL, err)))
                return rc;
            const char *ch[16];
            int nch = rf_fusion_param_channels(m, ch, 16);
            rf_model_free(m);
            for (int c = 0; c < nch; c++) {
                const char *cp = NULL;
                for (int q = 0; q < n_all; q++)
                    if (strcmp(all[q], ch[c]) == 0)
                        cp = pp[q];
                if ((rc = add_row(rows, n_rows, ch[c], ch[c], cp, NULL, err)))
                    return rc;
            }
            static const char *const blends[] = {"weighted", "rrf", "switch"};
            for (int b = 0; b < 3; b++) {
                char label[32], extra[32];
                snprintf(label, sizeof label, "blend:%s", blends[b]);
                snprintf(extra, sizeof extra, "ranker=%s", blends[b]);
                if ((rc = add_row(rows, n_rows, "fusion", label, mp, extra, err)))
                    return rc;
            }
        }
        if ((rc = add_row(rows, n_rows, names[j], names[j], mp, NULL, err)))
            return rc;
    }
    return 0;
}

static int run_split(rf_args *a, const char *json, rf_store *st, char names[][32], int n_in,
                     const int *ks, int n_ks, const rf_signif_opts *so, int signif, rf_err *err) {
    const char *dir = rf_store_dir(st);
    rf_evalrun_opts o;
    int rc = rf_evalrun_args(a, 0, &o, err);
    if (rc)
        return rc;
    evrow *rows = rf_calloc(MAX_MODELS, sizeof *rows);
    if (!rows)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int n_models = 0;
    rc = plan_rows(a, NULL, names, n_in, rows, &n_models, err);
    if (rc && rc != RF_ENOMEM)
        err->code = rc = RF_EINVAL;
    if (rc == 0)
        rc = rf_args_check_unused(a, err);
    /* a bad --params-NAME is a usage error, before any data is loaded */
    for (int j = 0; j < n_models && rc == 0; j++) {
        rf_model *m = NULL;
        if (rows[j].params[0] &&
            (rc = rf_cli_model_create(NULL, rows[j].model, rows[j].params, &m, NULL, err)))
            err->code = rc = RF_EINVAL;
        rf_model_free(m);
    }
    if (rc == 0 && (rc = plan_rows(a, dir, names, n_in, rows, &n_models, err)))
        err->code = rc = RF_EINVAL;
    if (rc) {
        rf_free(rows);
        return rc;
    }

    const int n_folds = o.all_folds ? o.proto.folds : 1;
    rf_evalrun r;
    memset(&r, 0, sizeof r);
    rf_eval_result *parts = rf_calloc((size_t)n_models * (size_t)n_folds, sizeof *parts);
    rf_eval_result res[MAX_MODELS];
    int n_res = 0;
    memset(res, 0, sizeof res);
    if (!parts) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    for (int f = 0; f < n_folds; f++) {
        if ((rc = rf_evalrun_prepare(st, &o, o.all_folds ? f : o.proto.fold, &r, err)))
            goto out;
        rf_evalrun_print_summary(stdout, &r);
        fflush(stdout);
        rf_eval_opts eo;
        rf_evalrun_eval_opts(&r, &o, &eo);
        for (int j = 0; j < n_models; j++) {
            rf_model *m = NULL;
            if ((rc = rf_cli_model_create(dir, rows[j].model, rows[j].params, &m, NULL, err)))
                goto out;
            rf_eval_result *pr = &parts[(size_t)j * n_folds + (size_t)f];
            rc = rf_evalrun_fit_eval(&r, &o, m, ks, n_ks, &eo, pr, err);
            snprintf(pr->model, sizeof pr->model, "%s", rows[j].label);
            rf_model_free(m);
            if (rc)
                goto out;
        }
    }
    for (int j = 0; j < n_models; j++) {
        if (n_folds == 1) {
            res[j] = parts[j];
            memset(&parts[j], 0, sizeof parts[j]);
        } else if ((rc = rf_eval_result_merge(&parts[(size_t)j * n_folds], n_folds, &res[j],
                                              err))) {
            goto out;
        }
        n_res++;
    }
    if (n_folds > 1) { /* the JSON describes the whole k-fold run */
        snprintf(r.detail, sizeof r.detail, "folds=%d seed=%llu (mean of the folds)",
                 o.proto.folds, (unsigned long long)o.proto.seed);
        r.info.detail = r.detail;
    }
    rc = finish(json, dir, res, n_res, &r.info, so, signif, err);
out:
    for (int j = 0; j < n_res; j++)
        rf_eval_result_free(&res[j]);
    if (parts)
        for (int i = 0; i < n_models * n_folds; i++)
            rf_eval_result_free(&parts[i]);
    rf_free(parts);
    rf_free(rows);
    rf_evalrun_free(&r);
    return rc;
}

/* ---- test-file mode -------------------------------------------------------- */

static int run_test_file(rf_args *a, const char *json, rf_store *st, char names[][32], int n_models,
                         const int *ks, int n_ks, const char *test_path, const rf_signif_opts *so,
                         int signif, rf_err *err) {
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
    rf_eval_opts eo;
    rf_eval_opts_default(&eo);
    int64_t v;
    int rc = rf_arg_i64(a, "sampled-negatives", 0, 0, 100000000, &v, err);
    if (rc)
        return rc;
    eo.sampled_negatives = (int32_t)v;
    if ((rc = rf_arg_i64(a, "seed", 1, 0, INT64_MAX, &v, err)))
        return rc;
    eo.seed = (uint64_t)v;
    eo.auc = !rf_arg_flag(a, "no-auc");
    int rating = rf_arg_flag(a, "rating");
    if ((rc = rf_args_check_unused(a, err)))
        return rc;

    rf_evalrun r; /* only its events, catalog and side information */
    memset(&r, 0, sizeof r);
    rf_events *tev = NULL;
    rf_model *models[MAX_MODELS] = {0};
    rf_dataset *ds[MAX_MODELS] = {0}; /* per model; shared when options agree */
    rf_csr *test = NULL, *ratings = NULL;
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
    if ((rc = rf_evalrun_load(st, &r, err)))
        goto out;
    rf_events *ev = r.ev;
    /* Build every train matrix before the test file grows the id maps, so
     * the matrices have exactly the store's users and items. */
    for (int j = 0; j < n_models; j++) {
        for (int i = 0; i < j && !ds[j]; i++)
            if (rf_dataset_opts_equal(&models[i]->data_opts, &models[j]->data_opts))
                ds[j] = ds[i];
        if (!ds[j]) {
            if ((rc = rf_dataset_build(ev, &models[j]->data_opts, &ds[j], err)))
                goto out;
            ds[j]->catalog = r.catalog;
            ds[j]->users_info = r.users_info;
            ds[j]->events = ev;
        }
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
    if (rating && (rc = rf_eval_ratings(tev, store_users, store_items, &ratings, err)))
        goto out;

    int32_t new_users = 0, new_items = 0;
    for (int32_t u = store_users; u < test->nrows; u++)
        new_users += rf_csr_row_len(test, u) > 0;
    new_items = test->ncols - store_items;
    rf_eval_info info = {.protocol = "test-file", .detail = test_path, .data_dir = dir};
    info.train_rows = ev->n;
    info.test_rows = tev->n;
    info.train_users = rf_events_count_users(ev);
    info.test_users = rf_events_count_users(tev);
    info.n_items = store_items;
    printf("# test file %s: %lld rows, %d users (%d unknown to the store), %d unknown items; "
           "train: the store, %lld rows, %d users\n",
           test_path, (long long)tev->n, (int)info.test_users, (int)new_users, (int)new_items,
           (long long)ev->n, (int)info.train_users);

    eo.item_category = r.category;
    eo.item_price = r.price;
    eo.n_side_items = r.n_side;
    eo.ratings = ratings && ratings->nnz > 0 ? ratings : NULL;
    for (int j = 0; j < n_models; j++) {
        rc = rf_evaluate_ex(models[j], ds[j], test, ks, n_ks, &eo, &res[n_res], err);
        if (rc)
            goto out;
        if (res[n_res].n_unreachable > 0)
            rf_log(RF_LOG_WARN, "eval.unreachable",
                   "model=%s pairs=%lld of=%lld msg=\"test pairs already in the store or with "
                   "items the model does not know; they count as misses\"",
                   names[j], (long long)res[n_res].n_unreachable, (long long)res[n_res].n_rel);
        n_res++;
    }
    rc = finish(json, dir, res, n_res, &info, so, signif, err);
out:
    for (int j = 0; j < n_res; j++)
        rf_eval_result_free(&res[j]);
    rf_csr_free(test);
    rf_csr_free(ratings);
    for (int j = 0; j < n_models; j++) {
        int shared = 0;
        for (int i = 0; i < j; i++)
            shared |= ds[i] == ds[j];
        if (!shared)
            rf_dataset_free(ds[j]);
        rf_model_free(models[j]);
    }
    rf_events_free(tev);
    rf_evalrun_free(&r);
    return rc;
}

int rf_cmd_evaluate(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    int ks[RF_EVAL_MAX_K], n_ks = 0, n_models = 0, signif = 1;
    char names[MAX_MODELS][32];
    rf_signif_opts so;
    int rc = rf_evalrun_parse_ks(rf_arg_str(a, "k", "10"), ks, &n_ks, &err);
    if (rc == 0)
        rc = parse_models(rf_arg_str(a, "models", "pop,itemknn"), names, &n_models, &err);
    if (rc == 0)
        rc = signif_options(a, &so, &signif, &err);
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
        rc = run_test_file(a, json, st, names, n_models, ks, n_ks, test_path, &so, signif, &err);
    else
        rc = run_split(a, json, st, names, n_models, ks, n_ks, &so, signif, &err);
    rf_store_close(st);
    if (rc)
        return rf_cli_fail(a->cmd, &err);
    rf_log(RF_LOG_INFO, "eval.done", "models=%d seconds=%.3f", n_models, rf_mono() - t0);
    return 0;
}
