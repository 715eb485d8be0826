/* cmd_tune.c - `recfuse tune`: search a model's hyperparameters on the
 * validation split and store the best in DIR/params/NAME.params.
 *
 * The imported events are cut by the evaluation protocol (per-user
 * chronological 80/20 by default), and the validation split is cut from
 * the train part by the same rule, so the test part `recfuse evaluate`
 * reports on is never seen (--no-test-split when DIR holds only training
 * data and the test set is kept elsewhere). Trials fit on the validation
 * split's train part and are scored on its held-out part; successive
 * halving drops bad trials early (tune.h). The leaderboard is printed and
 * written to DIR/eval/tune-NAME.json; the best configuration's complete
 * parameter set goes to DIR/params/NAME.params, which `train`, `evaluate`
 * and `report` apply (modelcfg.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/evalrun.h"
#include "recfuse/eval.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/progress.h"
#include "recfuse/tune.h"
#include "recfuse/util.h"

/* Tuned when --model is not given: what `recfuse train` trains by default
 * (keep in step with cmd_train.c). */
static const char *const default_models[] = {"pop", "trending", "itemknn", NULL};

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse tune --data DIR [--model NAME[,NAME...]] [--search grid|random]\n"
            "                    [--trials N] [--metric ndcg@10] [--space SPEC] [--budget SECONDS]\n"
            "                    [--eta 3] [--rungs N] [--resource users|iterations]\n"
            "                    [--grid-points 3] [--params k=v,...] [--seed S] [--top N]\n\n"
            "Searches a model's hyperparameters on the validation split cut from the train\n"
            "part of the evaluation split (never the test part), prints the leaderboard,\n"
            "stores the best parameters in DIR/params/NAME.params (used by train, evaluate\n"
            "and report) and the whole search in DIR/eval/tune-NAME.json.\n\n"
            "  --search          random (default: --trials draws, 20) or grid (every\n"
            "                    combination; --trials caps it with a seeded subset)\n"
            "  --metric M@K      objective, e.g. ndcg@10 (default), recall@20, map@10, auc,\n"
            "                    rmse (default for mf and svdpp; needs rating events)\n"
            "  --space SPEC      'k=50,100,200;alpha=0.3:0.9;reg=0.01:10:log | sim=bm25;...'\n"
            "                    lists, ranges lo:hi, log ranges lo:hi:log, '|' alternatives;\n"
            "                    default: the model's built-in space (docs/evaluation.md)\n"
            "  --budget SECONDS  start no trial after this long (the best so far wins)\n"
            "  --eta, --rungs    successive halving: every trial runs at 1/eta^(rungs-1) of\n"
            "                    the budget, the best 1/eta go on with eta times more;\n"
            "                    --rungs 1 runs every trial in full (default: up to 3)\n"
            "  --resource        users: the budget is the share of validation users scored;\n"
            "                    iterations: the model's iterations/epochs (default for\n"
            "                    iterative models)\n"
            "  --params k=v,...  fixed in every trial\n"
            "  --top N           leaderboard rows printed (20; 0 = all)\n\n");
    rf_evalrun_usage(out, 1);
    fprintf(out, "\nmodels:");
    for (const char *const *n = rf_model_names(); *n; n++)
        fprintf(out, " %s", *n);
    fprintf(out, "\n");
}

/* Progress: one bar over all runs, started at the first report (when the
 * number of runs is known); nested bars (model fits) are silenced. */
typedef struct prog {
    rf_progress *bar;
    const char *model;
    int quiet; /* the user's --quiet */
} prog;

static void on_run(void *ud, const rf_tune_trial *t, int rung, int done, int total) {
    prog *p = ud;
    if (!p->bar) {
        char label[64];
        snprintf(label, sizeof label, "tune %s", p->model);
        rf_progress_set_quiet(p->quiet);
        p->bar = rf_progress_start(label, total);
        rf_progress_set_quiet(1);
    }
    rf_progress_set(p->bar, done);
    if (t->status == RF_TRIAL_OK)
        rf_log(RF_LOG_DEBUG, "tune.run", "model=%s trial=%d rung=%d value=%.6f params=\"%s\"",
               p->model, t->id, rung, t->value[rung], t->params);
    (void)total;
}

/* Write DIR/params/NAME.params atomically. */
static int write_params(const char *dir, const char *name, const rf_tune_result *res,
                        const rf_evalrun *r, const rf_tune_opts *o, rf_err *err) {
    char path[4096], tmp[4200], when[32];
    snprintf(path, sizeof path, "%s/params", dir);
    int rc = rf_mkdirs(path, err);
    if (rc)
        return rc;
    rf_cli_params_path(dir, name, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const rf_tune_trial *b = &res->trials[res->best];
    char label[32];
    rf_metric_label(res->metric, res->k, label, sizeof label);
    rf_format_time(rf_now(), when, sizeof when);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rf_err_set(err, RF_EIO, "%s: %s", tmp, strerror(errno));
    fprintf(f,
            "# recfuse tune %s: %s = %.6f on the validation split (%s: %s), trial %d of %d, %s "
            "search, seed %llu\n# searched: %s\n%s\n",
            when, label, b->value[b->rung], r->info.protocol, r->detail, b->id, res->n_trials,
            o->search == RF_TUNE_GRID ? "grid" : "random", (unsigned long long)o->seed,
            b->params[0] ? b->params : "(the defaults won)", b->full);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return rf_err_set(err, RF_EIO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return rf_err_set(err, RF_EIO, "%s: %s", path, strerror(errno));
    }
    rf_log(RF_LOG_INFO, "tune.params", "model=%s path=%s", name, path);
    return 0;
}

static int tune_one(rf_args *a, rf_store *st, const char *name, const rf_evalrun_opts *eo_base,
                    rf_tune_opts to, const char *space_arg, const char *metric_arg, int top,
                    rf_evalrun *r, rf_err *err) {
    const char *dir = rf_store_dir(st);
    const rf_model_ops *ops = rf_model_find(name);
    rf_tune_space *space = rf_calloc(1, sizeof *space);
    if (!space)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc;
    if (space_arg)
        rc = rf_tune_space_parse(space_arg, ops->params, 1, space, err);
    else
        rc = rf_tune_space_default(ops, space, err);
    if (rc) {
        if (rc != RF_ENOMEM)
            err->code = RF_EINVAL;
        rf_free(space);
        return rc;
    }
    const char *dspace, *dmetric, *diter;
    rf_tune_model_defaults(name, &dspace, &dmetric, &diter);
    const char *mtext = metric_arg ? metric_arg : dmetric ? dmetric : "ndcg@10";
    if (rf_metric_label_parse(mtext, &to.metric, &to.k) != 0) {
        rf_free(space);
        return rf_err_set(err, RF_EINVAL,
                          "--metric: '%s' is not a metric like ndcg@10, recall@20, auc or rmse",
                          mtext);
    }
    if (to.k == 0)
        to.k = 10;
    rf_evalrun_opts eo = *eo_base;
    if (to.metric == RF_M_RMSE || to.metric == RF_M_MAE)
        eo.rating = 1;
    if ((rc = rf_evalrun_prepare(st, &eo, eo.proto.fold, r, err))) {
        rf_free(space);
        return rc;
    }
    rf_evalrun_print_summary(stdout, r);
    char sp[4096];
    rf_tune_space_format(space, sp, sizeof sp);
    printf("# tune %s: %s search, space %s\n", name,
           to.search == RF_TUNE_GRID ? "grid" : "random", sp);
    fflush(stdout);
    rf_evalrun_eval_opts(r, &eo, &to.eval);
    to.eval.progress = 0;
    to.eval.keep_exposure = 0;
    rf_tune_data td = {.train_ev = r->train_ev, .train = r->train, .dopts = r->dopts,
                       .val = r->test};

    prog p = {NULL, name, rf_arg_flag(a, "quiet")};
    rf_progress_set_quiet(1); /* no nested bars from fits */
    to.on_run = on_run;
    to.ud = &p;
    rf_tune_result res;
    rc = rf_tune_run(name, space, &td, &to, &res, err);
    rf_progress_set_quiet(p.quiet);
    rf_progress_finish(p.bar);
    if (rc) {
        rf_free(space);
        return rc;
    }
    char mlabel[32];
    rf_metric_label(res.metric, res.k, mlabel, sizeof mlabel);
    printf("# %d trials, %d rungs (eta %d, budget: %s), %.1f s%s\n", res.n_trials, res.rungs,
           res.eta, res.resource == RF_TUNE_RES_ITERATIONS ? res.iter_param : "validation users",
           res.seconds, res.stopped ? ", stopped by --budget" : "");
    rf_tune_print(stdout, &res, top);
    const rf_tune_trial *b = &res.trials[res.best];
    printf("best %s: %s = %.4f with %s\n", name, mlabel, b->value[b->rung],
           b->params[0] ? b->params : "(defaults)");
    fflush(stdout);

    char path[4096];
    snprintf(path, sizeof path, "%s/eval", dir);
    if ((rc = rf_mkdirs(path, err)) == 0) {
        snprintf(path, sizeof path, "%s/eval/tune-%s.json", dir, name);
        rc = rf_tune_write_json(path, &res, &to, space, &r->info, err);
    }
    if (rc == 0)
        rc = write_params(dir, name, &res, r, &to, err);
    rf_tune_result_free(&res);
    rf_free(space);
    return rc;
}

int rf_cmd_tune(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_tune_opts to;
    rf_tune_opts_default(&to);
    rf_evalrun_opts eo;
    int rc = rf_evalrun_args(a, 1, &eo, &err);
    const char *model_arg = rf_arg_str(a, "model", NULL);
    const char *search = rf_arg_str(a, "search", "random");
    const char *space_arg = rf_arg_str(a, "space", NULL);
    const char *metric_arg = rf_arg_str(a, "metric", NULL);
    const char *resource = rf_arg_str(a, "resource", NULL);
    to.fixed = rf_arg_str(a, "params", NULL);
    int64_t v, top = 20;
    if (rc == 0 && strcmp(search, "random") != 0 && strcmp(search, "grid") != 0)
        rc = rf_err_set(&err, RF_EINVAL, "--search: '%s' is not one of grid, random", search);
    to.search = strcmp(search, "grid") == 0 ? RF_TUNE_GRID : RF_TUNE_RANDOM;
    if (rc == 0 && (rc = rf_arg_i64(a, "trials", to.search == RF_TUNE_GRID ? 0 : 20,
                                    to.search == RF_TUNE_GRID ? 0 : 1, 100000, &v, &err)) == 0)
        to.trials = (int)v;
    if (rc == 0 && (rc = rf_arg_i64(a, "grid-points", 3, 1, RF_TUNE_MAX_VALUES, &v, &err)) == 0)
        to.grid_points = (int)v;
    if (rc == 0 && (rc = rf_arg_i64(a, "eta", 3, 2, 100, &v, &err)) == 0)
        to.eta = (int)v;
    if (rc == 0 && (rc = rf_arg_i64(a, "rungs", 0, 0, RF_TUNE_MAX_RUNGS, &v, &err)) == 0)
        to.rungs = (int)v;
    if (rc == 0)
        rc = rf_arg_double(a, "budget", 0, 0, 1e9, &to.budget_seconds, &err);
    if (rc == 0)
        rc = rf_arg_i64(a, "top", 20, 0, 1000000, &top, &err);
    to.seed = eo.proto.seed;
    if (rc == 0 && resource) {
        if (strcmp(resource, "users") == 0)
            to.resource = RF_TUNE_RES_USERS;
        else if (strcmp(resource, "iterations") == 0)
            to.resource = RF_TUNE_RES_ITERATIONS;
        else
            rc = rf_err_set(&err, RF_EINVAL, "--resource: '%s' is not one of users, iterations",
                            resource);
    }
    int dummy_k, dummy_m;
    if (rc == 0 && metric_arg && rf_metric_label_parse(metric_arg, &dummy_m, &dummy_k) != 0)
        rc = rf_err_set(&err, RF_EINVAL,
                        "--metric: '%s' is not a metric like ndcg@10, recall@20, auc or rmse",
                        metric_arg);
    (void)rf_arg_str(a, "data", NULL);
    if (rc == 0)
        rc = rf_args_check_unused(a, &err);

    /* Models: a list, each registered; --space and --params need one. */
    const char *names[64];
    int n_names = 0;
    char *copy = NULL;
    if (rc == 0 && model_arg) {
        copy = rf_strdup(model_arg);
        if (!copy)
            rc = rf_err_set(&err, RF_ENOMEM, "out of memory");
        for (char *tok = copy ? strtok(copy, ", ") : NULL; tok && n_names < 64;
             tok = strtok(NULL, ", "))
            names[n_names++] = tok;
        if (rc == 0 && n_names == 0)
            rc = rf_err_set(&err, RF_EINVAL, "--model: no model name given");
    } else if (rc == 0) {
        for (; default_models[n_names]; n_names++)
            names[n_names] = default_models[n_names];
    }
    for (int i = 0; rc == 0 && i < n_names; i++)
        if (!rf_model_find(names[i])) {
            rf_model *m = NULL;
            rf_model_new(names[i], &m, &err); /* the message lists the known models */
            rc = err.code = RF_EINVAL;
        }
    if (rc == 0 && (space_arg || to.fixed) && n_names != 1)
        rc = rf_err_set(&err, RF_EINVAL, "--space and --params need exactly one --model");
    if (rc == 0 && space_arg) { /* a bad space is a usage error before any data is loaded */
        rf_tune_space *sp = rf_calloc(1, sizeof *sp);
        if (!sp)
            rc = rf_err_set(&err, RF_ENOMEM, "out of memory");
        else if ((rc = rf_tune_space_parse(space_arg, rf_model_find(names[0])->params, 1, sp,
                                           &err)) &&
                 rc != RF_ENOMEM)
            rc = err.code = RF_EINVAL;
        rf_free(sp);
    }
    if (rc) {
        rf_free(copy);
        return rf_cli_fail(a->cmd, &err);
    }

    rf_store *st = NULL;
    rf_evalrun r;
    memset(&r, 0, sizeof r);
    if ((rc = rf_cli_open_store(a, 0, &st, &err)) == 0)
        for (int i = 0; i < n_names && rc == 0; i++)
            rc = tune_one(a, st, names[i], &eo, to, space_arg, metric_arg, (int)top, &r, &err);
    rf_evalrun_free(&r);
    rf_store_close(st);
    rf_free(copy);
    if (rc)
        return rf_cli_fail(a->cmd, &err);
    return 0;
}
