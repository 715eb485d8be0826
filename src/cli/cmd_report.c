/* cmd_report.c - `recfuse report`: evaluate models and write a
 * self-contained HTML report (inline CSS and SVG charts) plus its JSON.
 *
 * The models (default: pop, itemknn and every model with a tuning run in
 * DIR/eval) are fit on the train part of the evaluation split with their
 * stored parameters - the tuned ones when DIR/params/NAME.params exists -
 * and evaluated at several cut-offs (1, 5, 10, 20, 50 by default) for the
 * precision/recall curve; the bar charts and the popularity histogram use
 * --main-k. Tuning leaderboards come from DIR/eval/tune-NAME.json. The
 * page is rendered from the JSON (report.h), so both hold the same
 * numbers. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/evalrun.h"
#include "recfuse/eval.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/report.h"
#include "recfuse/util.h"

#define MAX_MODELS 16
#define MAX_TUNE 64

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse report --data DIR [--out report.html] [--models a,b,...]\n"
            "                      [--k 1,5,10,20,50] [--main-k 10] [--title TEXT]\n"
            "                      [--signif t|bootstrap|none] [--bootstrap N] [options]\n\n"
            "Evaluates models on the evaluation split (as `recfuse evaluate`, with their\n"
            "stored, tuned parameters) and writes a self-contained HTML page - metrics table\n"
            "with significance marks, a bar chart per metric, the precision/recall curve\n"
            "over --k, the popularity of recommended items, the tuning leaderboards - and\n"
            "the same numbers as JSON next to it (report.json for report.html).\n"
            "Default --out: DIR/eval/report.html. Default models: pop, itemknn and every\n"
            "model tuned in DIR (DIR/eval/tune-NAME.json). k-fold: one fold (--fold).\n\n");
    rf_evalrun_usage(out, 0);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR/eval/tune-*.json, sorted; paths allocated into out. */
static int find_tune_files(const char *dir, char **out, int max) {
    char path[4096];
    snprintf(path, sizeof path, "%s/eval", dir);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "tune-", 5) != 0 || l < 11 || strcmp(e->d_name + l - 5, ".json"))
            continue;
        snprintf(path, sizeof path, "%s/eval/%s", dir, e->d_name);
        out[n] = rf_strdup(path);
        if (out[n])
            n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_str);
    return n;
}

/* Model name of ".../tune-NAME.json" into buf. */
static void tuned_name(const char *path, char *buf, size_t size) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    b += 5;
    size_t l = strlen(b) - 5;
    if (l >= size)
        l = size - 1;
    memcpy(buf, b, l);
    buf[l] = 0;
}

static int add_name(char names[][32], int *n, const char *s, size_t len, rf_err *err) {
    char name[32];
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, s, len);
    name[len] = 0;
    if (!rf_model_find(name))
        return rf_err_set(err, RF_EINVAL, "--models: unknown model '%s'", name);
    for (int i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return 0;
    if (*n >= MAX_MODELS)
        return rf_err_set(err, RF_EINVAL, "--models: at most %d models", MAX_MODELS);
    snprintf(names[(*n)++], 32, "%s", name);
    return 0;
}

int rf_cmd_report(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    const char *dir = rf_arg_str(a, "data", NULL);
    const char *out = rf_arg_str(a, "out", NULL);
    const char *models_arg = rf_arg_str(a, "models", NULL);
    const char *title = rf_arg_str(a, "title", NULL);
    int ks[RF_EVAL_MAX_K], n_ks = 0;
    int64_t main_k = 10;
    rf_evalrun_opts o;
    rf_signif_opts so;
    rf_signif_opts_default(&so);
    int rc = rf_evalrun_parse_ks(rf_arg_str(a, "k", "1,5,10,20,50"), ks, &n_ks, &err);
    if (rc == 0)
        rc = rf_arg_i64(a, "main-k", 10, 1, RF_EVAL_MAX_KVAL, &main_k, &err);
    if (rc == 0)
        rc = rf_evalrun_args(a, 0, &o, &err);
    o.all_folds = 0;
    const char *sig_s = rf_arg_str(a, "signif", "t");
    int signif = strcmp(sig_s, "none") != 0;
    if (rc == 0 && strcmp(sig_s, "t") && strcmp(sig_s, "bootstrap") && strcmp(sig_s, "none"))
        rc = rf_err_set(&err, RF_EINVAL, "--signif: '%s' is not one of t, bootstrap, none", sig_s);
    so.marks = strcmp(sig_s, "bootstrap") == 0 ? RF_SIG_BOOTSTRAP : RF_SIG_T;
    int64_t boot = 1000;
    if (rc == 0)
        rc = rf_arg_i64(a, "bootstrap", 1000, 1, 1000000, &boot, &err);
    so.resamples = (int)boot;
    so.seed = o.proto.seed;
    if (rc == 0 && !dir)
        rc = rf_err_set(&err, RF_EINVAL, "--data DIR is required");
    if (rc == 0) { /* main K is one of the cut-offs */
        int have = 0;
        for (int i = 0; i < n_ks; i++)
            have |= ks[i] == main_k;
        if (!have) {
            if (n_ks >= RF_EVAL_MAX_K)
                rc = rf_err_set(&err, RF_EINVAL, "--main-k %d is not among --k", (int)main_k);
            else
                ks[n_ks++] = (int)main_k;
        }
    }
    if (rc == 0)
        rc = rf_args_check_unused(a, &err);
    if (rc)
        return rf_cli_fail(a->cmd, &err);

    char *tune_files[MAX_TUNE];
    int n_tune = find_tune_files(dir, tune_files, MAX_TUNE);
    char names[MAX_MODELS][32];
    int n_models = 0;
    if (models_arg) {
        const char *p = models_arg;
        while (rc == 0 && *p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len)
                rc = add_name(names, &n_models, p, len, &err);
            if (!e)
                break;
            p = e + 1;
        }
        if (rc == 0 && n_models == 0)
            rc = rf_err_set(&err, RF_EINVAL, "--models: no model named");
    } else {
        add_name(names, &n_models, "pop", 3, &err);
        add_name(names, &n_models, "itemknn", 7, &err);
        for (int i = 0; i < n_tune; i++) {
            char nm[64];
            tuned_name(tune_files[i], nm, sizeof nm);
            if (rf_model_find(nm))
                add_name(names, &n_models, nm, strlen(nm), &err);
        }
        rf_err_clear(&err);
    }
    if (rc) {
        for (int i = 0; i < n_tune; i++)
            rf_free(tune_files[i]);
        return rf_cli_fail(a->cmd, &err);
    }

    char html[4096], json[4200];
    if (out) {
        snprintf(html, sizeof html, "%s", out);
        char *slash = strrchr(html, '/');
        if (slash && slash != html) { /* create the page's directory */
            *slash = 0;
            rc = rf_mkdirs(html, &err);
            *slash = '/';
            if (rc) {
                for (int i = 0; i < n_tune; i++)
                    rf_free(tune_files[i]);
                return rf_cli_fail(a->cmd, &err);
            }
        }
    } else {
        snprintf(html, sizeof html, "%s/eval", dir);
        if ((rc = rf_mkdirs(html, &err))) {
            for (int i = 0; i < n_tune; i++)
                rf_free(tune_files[i]);
            return rf_cli_fail(a->cmd, &err);
        }
        snprintf(html, sizeof html, "%s/eval/report.html", dir);
    }
    size_t hl = strlen(html);
    if (hl > 5 && strcmp(html + hl - 5, ".html") == 0)
        snprintf(json, sizeof json, "%.*s.json", (int)(hl - 5), html);
    else
        snprintf(json, sizeof json, "%s.json", html);

    rf_store *st = NULL;
    rf_evalrun r;
    memset(&r, 0, sizeof r);
    rf_eval_result res[MAX_MODELS];
    memset(res, 0, sizeof res);
    int n_res = 0;
    rf_signif sig;
    memset(&sig, 0, sizeof sig);
    int have_sig = 0;
    if ((rc = rf_cli_open_store(a, 0, &st, &err)))
        goto out;
    if ((rc = rf_evalrun_prepare(st, &o, o.proto.fold, &r, &err)))
        goto out;
    rf_evalrun_print_summary(stdout, &r);
    rf_eval_opts eo;
    rf_evalrun_eval_opts(&r, &o, &eo);
    eo.keep_exposure = 1;
    for (int j = 0; j < n_models; j++) {
        rf_model *m = NULL;
        int from_file = 0;
        if ((rc = rf_cli_model_create(dir, names[j], NULL, &m, &from_file, &err)))
            goto out;
        rc = rf_evalrun_fit_eval(&r, &o, m, ks, n_ks, &eo, &res[n_res], &err);
        rf_model_free(m);
        if (rc)
            goto out;
        n_res++;
    }
    if (signif && n_res >= 2) {
        rf_err serr;
        rf_err_clear(&serr);
        if (rf_eval_compare(res, n_res, &so, &sig, &serr) == 0)
            have_sig = 1;
        else
            rf_log(RF_LOG_WARN, "report.signif", "msg=\"%s\"", serr.msg);
    }
    rf_eval_print_table(stdout, res, n_res);
    if (have_sig)
        rf_eval_print_signif(stdout, res, n_res, &sig);
    rf_report_input in = {.res = res,
                          .n = n_res,
                          .info = &r.info,
                          .sig = have_sig ? &sig : NULL,
                          .train = r.train,
                          .main_k = (int)main_k,
                          .tune_paths = (const char *const *)tune_files,
                          .n_tune = n_tune,
                          .title = title};
    if ((rc = rf_report_write(&in, json, html, &err)))
        goto out;
    printf("report: %s\njson: %s\n", html, json);
out:
    for (int j = 0; j < n_res; j++)
        rf_eval_result_free(&res[j]);
    rf_signif_free(&sig);
    rf_evalrun_free(&r);
    rf_store_close(st);
    for (int i = 0; i < n_tune; i++)
        rf_free(tune_files[i]);
    if (rc)
        return rf_cli_fail(a->cmd, &err);
    return 0;
}
