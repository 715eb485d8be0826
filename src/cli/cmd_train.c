/* cmd_train.c - `recfuse train`: fit models on a data directory and save
 * them to DIR/models/NAME.rfm.
 *
 * The event log is loaded from the store once, turned into one dataset
 * (event-type weights, optional decay, optional binarisation) and every
 * requested model is fit on it. Parameters come from the model's defaults,
 * then DIR/params/NAME.params (tuned parameters, see modelcfg.c), then
 * --params. With no --model the default set is trained - pop, trending,
 * itemknn and the fused model, which `recommend` then serves by default
 * (docs/fusion.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/dataset.h"
#include "recfuse/fusion.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/util.h"

/* Trained when --model is not given: the fused model (served by default,
 * docs/fusion.md) and the light models it falls back on. */
static const char *const default_models[] = {"pop", "trending", "itemknn", "fusion", NULL};

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse train --data DIR [--model NAME[,NAME...]] [--params k=v,...]\n"
            "                     [--weights view=1,cart=3,purchase=5] [--half-life DAYS] "
            "[--binary]\n"
            "                     [--init-from MODELFILE]\n\n"
            "Fits models on the interactions in DIR and saves DIR/models/NAME.rfm.\n"
            "Without --model: trains %s", default_models[0]);
    for (int i = 1; default_models[i]; i++) fprintf(out, ", %s", default_models[i]);
    fprintf(out,
            ".\n"
            "Parameters: model defaults, then DIR/params/NAME.params (tuned), then --params.\n\n"
            "  --weights SPEC     weight of one event per type (default view=1,click=1,cart=3,\n"
            "                     purchase=5,rating=1,custom=1)\n"
            "  --half-life DAYS   decay interaction weights by age (default 0: no decay)\n"
            "  --binary           every (user, item) pair weighs 1; the default when all\n"
            "                     events are ratings and --weights is not given\n"
            "  --init-from FILE   warm start (ials, mf, bpr): start from a previous model's\n"
            "                     vectors, matched by user and item id; new ids start at\n"
            "                     random\n\n"
            "models:\n");
    for (const char *const *n = rf_model_names(); *n; n++) {
        const rf_model_ops *ops = rf_model_find(*n);
        fprintf(out, "  %s - %s\n", ops->name, ops->help);
        if (ops->params) rf_params_help(ops->params, out);
    }
}

/* Split "a,b,c" into names (pointers into `copy`); returns the count. */
static int split_names(char *copy, const char **names, int max) {
    int n = 0;
    for (char *tok = strtok(copy, ", "); tok && n < max; tok = strtok(NULL, ", ")) names[n++] = tok;
    return n;
}

int rf_cmd_train(rf_args *a) {
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_err err;
    rf_err_clear(&err);
    const char *model_arg = rf_arg_str(a, "model", NULL);
    const char *params = rf_arg_str(a, "params", NULL);
    const char *weights = rf_arg_str(a, "weights", NULL);
    const char *init_from = rf_arg_str(a, "init-from", NULL);
    int binary = rf_arg_flag(a, "binary");
    double half_life = 0;
    if (rf_arg_double(a, "half-life", 0, 0, 1e6, &half_life, &err)) return rf_cli_fail("train", &err);
    rf_store *s = NULL;
    rf_events *ev = NULL;
    rf_dataset *d = NULL;
    rf_catalog *cat = NULL; /* side data for models: content uses the catalog */
    rf_user_table *uinfo = NULL; /* fm: demographics */
    rf_model *m = NULL, *init_src = NULL; /* --init-from: the previous model */
    char *names_copy = NULL;
    int status = 1;
    /* --data is read by rf_cli_open_store; check the rest first. */
    (void)rf_arg_str(a, "data", NULL);
    if (rf_args_check_unused(a, &err)) return rf_cli_fail("train", &err);

    const char *names[64];
    int n_names = 0;
    if (model_arg) {
        names_copy = rf_strdup(model_arg);
        if (!names_copy) {
            rf_err_set(&err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        n_names = split_names(names_copy, names, 64);
        if (n_names == 0) {
            rf_err_set(&err, RF_EINVAL, "--model: no model name given");
            goto fail;
        }
    } else {
        for (; default_models[n_names]; n_names++) names[n_names] = default_models[n_names];
    }
    for (int i = 0; i < n_names; i++)
        if (!rf_model_find(names[i])) {
            /* rf_model_new's message lists the known models */
            rf_model_new(names[i], &m, &err);
            err.code = RF_EINVAL;
            goto fail;
        }
    if (params && n_names != 1) {
        rf_err_set(&err, RF_EINVAL, "--params needs exactly one --model");
        goto fail;
    }
    if (params) { /* a usage error is reported before any data is loaded */
        if (rf_model_new(names[0], &m, &err) || rf_model_set_params(m, params, &err)) {
            rf_err_prefix(&err, "--params");
            err.code = RF_EINVAL;
            goto fail;
        }
        rf_model_free(m);
        m = NULL;
    }

    if (init_from) { /* checked before any data is loaded */
        if (n_names != 1 || !rf_model_find(names[0])->set_init) {
            rf_err_set(&err, RF_EINVAL, "--init-from needs exactly one --model with a warm start: "
                                        "ials, mf or bpr");
            goto fail;
        }
        if (rf_model_load(init_from, &init_src, &err)) {
            rf_err_prefix(&err, "--init-from %s", init_from);
            goto fail;
        }
    }

    rf_dataset_opts opts;
    rf_dataset_opts_default(&opts);
    if (weights && rf_dataset_parse_weights(&opts, weights, &err)) {
        err.code = RF_EINVAL;
        goto fail;
    }
    opts.half_life_days = half_life;
    opts.binary = binary;

    if (rf_cli_open_store(a, 0, &s, &err)) goto fail;
    if (rf_store_load_events(s, &ev, &err)) goto fail;
    if (ev->n == 0) {
        rf_err_set(&err, RF_ENOTFOUND, "%s holds no interactions (run 'recfuse import' first)",
                   rf_store_dir(s));
        goto fail;
    }
    if (!weights && !binary) {
        int64_t i = 0;
        while (i < ev->n && ev->type[i] == RF_EV_RATING) i++;
        if (i == ev->n) {
            opts.binary = 1;
            rf_log(RF_LOG_INFO, "train.binary", "reason=rating-only-data");
        }
    }
    double t0 = rf_mono();
    if (rf_dataset_build(ev, &opts, &d, &err)) goto fail;
    if (rf_store_load_catalog(s, &cat, &err) || rf_store_load_users(s, &uinfo, &err)) goto fail;
    d->catalog = cat; /* content: item attributes */
    d->users_info = uinfo; /* fm: user demographics */
    d->events = ev;   /* rules: session baskets */
    rf_log(RF_LOG_INFO, "train.dataset", "users=%d items=%d nnz=%lld events=%lld seconds=%.2f",
           d->n_users, d->n_items, (long long)d->ui->nnz, (long long)ev->n, rf_mono() - t0);

    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/models", rf_store_dir(s));
    if (rf_mkdirs(dir, &err)) goto fail;
    for (int i = 0; i < n_names; i++) {
        if (rf_cli_model_create(rf_store_dir(s), names[i], params, &m, NULL, &err)) goto fail;
        if (init_src && rf_model_set_init(m, init_src, &err)) {
            rf_err_prefix(&err, "--init-from %s", init_from);
            goto fail;
        }
        if (rf_cli_model_fit(m, ev, &opts, d, &err)) goto fail; /* mf/svdpp: own matrix */
        rf_store_model_path(s, names[i], path, sizeof path);
        if (rf_model_save(m, path, &err)) goto fail;
        char pbuf[1024];
        rf_model_params_format(m, pbuf, sizeof pbuf);
        printf("trained %s: %d users, %d items, %lld interactions, fit %.2f s, params: %s -> %s\n",
               names[i], m->n_users, m->n_items, (long long)d->ui->nnz, m->fit_seconds,
               pbuf[0] ? pbuf : "(none)", path);
        rf_fusion_describe(m, stdout); /* channels, ordering, top features */
        fflush(stdout);
        rf_model_free(m);
        m = NULL;
    }
    status = 0;
fail:
    if (status) status = rf_cli_fail("train", &err);
    rf_free(names_copy);
    rf_model_free(m);
    rf_model_free(init_src);
    rf_dataset_free(d);
    rf_catalog_free(cat);
    rf_user_table_free(uinfo);
    rf_events_free(ev);
    rf_store_close(s);
    return status;
}
