/* evalrun.c - the evaluation session shared by `evaluate`, `tune` and
 * `report`: options, the protocol cut (outer split, validation split),
 * the train matrix built as `recfuse train` builds it, the test relevance
 * and ratings matrices, the catalog's categories and prices, and fitting
 * then evaluating one model.
 *
 * DESIGN: the event log and the catalog are loaded once per session and
 * survive re-cuts (k-fold runs every fold on the same log). Models with a
 * data_defaults op (mf, svdpp: rating values) are fit through
 * rf_cli_model_fit, which builds their own matrix from the same train
 * log; evaluation always uses the session's matrix for the histories, so
 * every model excludes the same train items. */
#include "cli/evalrun.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/idmap.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/util.h"

void rf_evalrun_usage(FILE *out, int is_tune) {
    fprintf(out,
            "protocol (the split the models are fit and judged on):\n"
            "  --split user      per-user chronological: the last ceil(ratio*n) items of users\n"
            "                    with >= min-items items are held out (default; Protocol A)\n"
            "  --split time      pairs first seen at or after --cutoff TIME are held out\n"
            "                    (default cut-off: the (1-ratio) quantile of event times)\n"
            "  --split loo       each user's last item is held out (leave-last-out)\n"
            "  --split kfold     user-stratified random k-fold over pairs (--folds 5, --seed);\n"
            "                    %s\n"
            "  --test-ratio R    held-out share (0.2)        --min-items N  (5)\n"
            "  --cutoff TIME     Unix seconds or ISO 8601 (time split)\n",
            is_tune ? "tuning uses fold 0 of a k-fold of the train part"
                    : "all folds in turn (averaged) unless --fold I");
    if (!is_tune)
        fprintf(out,
                "  --validation      judge on the validation split cut from the train part by\n"
                "                    the same rule (what `tune` optimises), not on the test part\n");
    else
        fprintf(out,
                "  --no-test-split   DIR holds only training data (the test set is kept\n"
                "                    elsewhere): cut the validation split from all events\n");
    fprintf(out,
            "train matrix (as `recfuse train` builds it):\n"
            "  --weights SPEC --half-life DAYS --binary (binary by default for rating-only data)\n"
            "metrics:\n"
            "  --sampled-negatives N  rank each test item against N sampled non-interacted\n"
            "                    items (the 1+N protocol; NOT the default, which ranks the\n"
            "                    whole catalog); --seed S for the draws (1)\n"
            "  --rating          RMSE and MAE of the test ratings (default with kfold)\n"
            "  --no-auc          skip AUC (one more pass over each user's scores)\n");
}

int rf_evalrun_args(rf_args *a, int is_tune, rf_evalrun_opts *o, rf_err *err) {
    memset(o, 0, sizeof *o);
    rf_protocol_default(&o->proto);
    rf_eval_opts_default(&o->eval);
    const char *mode = rf_arg_str(a, "split", "user");
    int kind = rf_protocol_parse(mode);
    if (kind < 0)
        return rf_err_set(err, RF_EINVAL, "--split: '%s' is not one of user, time, loo, kfold",
                          mode);
    o->proto.kind = (rf_protocol_kind)kind;
    int rc;
    int64_t v;
    if ((rc = rf_arg_double(a, "test-ratio", 0.2, 1e-9, 0.999999, &o->proto.test_ratio, err)))
        return rc;
    if ((rc = rf_arg_i64(a, "min-items", RF_SPLIT_MIN_ITEMS, 1, 1000000000, &v, err)))
        return rc;
    o->proto.min_items = (int)v;
    if ((rc = rf_arg_i64(a, "folds", 5, 2, 100, &v, err)))
        return rc;
    o->proto.folds = (int)v;
    const char *fold_s = rf_arg_str(a, "fold", NULL);
    if ((rc = rf_arg_i64(a, "fold", 0, 0, o->proto.folds - 1, &v, err)))
        return rc;
    o->proto.fold = (int)v;
    if ((rc = rf_arg_i64(a, "seed", 1, 0, INT64_MAX, &v, err)))
        return rc;
    o->proto.seed = (uint64_t)v;
    o->eval.seed = (uint64_t)v;
    if (fold_s && o->proto.kind != RF_PROTO_KFOLD)
        return rf_err_set(err, RF_EINVAL, "--fold needs --split kfold");
    o->all_folds = o->proto.kind == RF_PROTO_KFOLD && !fold_s && !is_tune;
    const char *cutoff_s = rf_arg_str(a, "cutoff", NULL);
    if (cutoff_s && o->proto.kind != RF_PROTO_TIME)
        return rf_err_set(err, RF_EINVAL, "--cutoff needs --split time");
    if (cutoff_s) {
        if (rf_parse_time(cutoff_s, strlen(cutoff_s), &o->proto.cutoff) != 0)
            return rf_err_set(err, RF_EINVAL, "--cutoff: '%s' is not a time", cutoff_s);
        o->proto.has_cutoff = 1;
    }
    if (is_tune) {
        o->validation = 1;
        o->no_test_split = rf_arg_flag(a, "no-test-split");
    } else {
        o->validation = rf_arg_flag(a, "validation");
    }
    o->weights = rf_arg_str(a, "weights", NULL);
    o->binary = rf_arg_flag(a, "binary");
    if ((rc = rf_arg_double(a, "half-life", 0, 0, 1e6, &o->half_life, err)))
        return rc;
    if ((rc = rf_arg_i64(a, "sampled-negatives", 0, 0, 100000000, &v, err)))
        return rc;
    o->eval.sampled_negatives = (int32_t)v;
    o->rating = rf_arg_flag(a, "rating") || o->proto.kind == RF_PROTO_KFOLD;
    o->eval.auc = !rf_arg_flag(a, "no-auc");
    if (o->weights) { /* check the spec before any data is loaded */
        rf_dataset_opts t;
        rf_dataset_opts_default(&t);
        if (rf_dataset_parse_weights(&t, o->weights, err)) {
            err->code = RF_EINVAL;
            return RF_EINVAL;
        }
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int rf_evalrun_parse_ks(const char *s, int *ks, int *n_ks, rf_err *err) {
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

/* The train matrix options, as `recfuse train` chooses them: --weights,
 * --half-life, --binary; binary presence by default for rating-only logs
 * (a rating is a consumption signal in top-N evaluation - Protocol A
 * counts every rated item relevant - and a re-rated item is one item). */
static int data_opts_for(const rf_events *ev, const rf_evalrun_opts *o, rf_dataset_opts *d,
                         rf_err *err) {
    rf_dataset_opts_default(d);
    if (o->weights && rf_dataset_parse_weights(d, o->weights, err)) {
        err->code = RF_EINVAL;
        return RF_EINVAL;
    }
    d->half_life_days = o->half_life;
    d->binary = o->binary;
    if (!o->weights && !o->binary) {
        int only_ratings = ev->n > 0;
        for (int64_t i = 0; i < ev->n && only_ratings; i++)
            only_ratings = ev->type[i] == RF_EV_RATING;
        if (only_ratings)
            d->binary = 1;
    }
    return 0;
}

/* Categories and prices by dense item id, when the catalog has any. */
static int side_info(rf_evalrun *r, rf_err *err) {
    const rf_catalog *c = r->catalog;
    int64_t n = c ? c->n : 0;
    int any_cat = 0, any_price = 0;
    for (int64_t i = 0; i < n; i++) {
        any_cat |= c->items[i].category && c->items[i].category[0];
        any_price |= isfinite(c->items[i].price);
    }
    r->n_side = (int32_t)n;
    if (any_cat) {
        rf_idmap *names = NULL;
        r->category = rf_malloc_array((size_t)n, sizeof *r->category);
        if (!r->category || rf_idmap_new(&names))
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++) {
            const char *s = c->items[i].category;
            r->category[i] = -1;
            if (s && *s && rf_idmap_put(names, s, strlen(s), &r->category[i], NULL)) {
                rf_idmap_free(names);
                return rf_err_set(err, RF_ENOMEM, "out of memory");
            }
        }
        rf_idmap_free(names);
    }
    if (any_price) {
        r->price = rf_malloc_array((size_t)n, sizeof *r->price);
        if (!r->price)
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++)
            r->price[i] = c->items[i].price;
    }
    return 0;
}

/* Free what depends on the cut. */
static void clear_cut(rf_evalrun *r) {
    rf_csr_free(r->test);
    rf_csr_free(r->ratings);
    rf_dataset_free(r->train);
    rf_split_free(&r->inner);
    rf_split_free(&r->outer);
    r->test = r->ratings = NULL;
    r->train = NULL;
    r->train_ev = r->test_ev = NULL;
}

void rf_evalrun_free(rf_evalrun *r) {
    if (!r)
        return;
    clear_cut(r);
    rf_free(r->category);
    rf_free(r->price);
    rf_catalog_free(r->catalog);
    rf_user_table_free(r->users_info);
    rf_events_free(r->ev);
    memset(r, 0, sizeof *r);
}

int rf_evalrun_load(rf_store *st, rf_evalrun *r, rf_err *err) {
    if (r->ev)
        return 0;
    int rc;
    if ((rc = rf_store_load_events(st, &r->ev, err)))
        return rc;
    if (r->ev->n == 0)
        return rf_err_set(err, RF_ENOTFOUND, "%s holds no interactions (run 'recfuse import' first)",
                          rf_store_dir(st));
    if ((rc = rf_store_load_catalog(st, &r->catalog, err)) ||
        (rc = rf_store_load_users(st, &r->users_info, err)))
        return rc;
    return side_info(r, err);
}

int rf_evalrun_prepare(rf_store *st, const rf_evalrun_opts *o, int fold, rf_evalrun *r,
                       rf_err *err) {
    int rc;
    double t0 = rf_mono();
    clear_cut(r);
    if ((rc = rf_evalrun_load(st, r, err)))
        return rc;
    rf_protocol p = o->proto;
    p.fold = fold;
    r->fold = fold;
    char d1[256] = "", d2[256] = "";
    if (o->validation && o->no_test_split) {
        rc = rf_protocol_split(r->ev, &p, &r->inner, d2, sizeof d2, err);
        if (rc)
            return rc;
        snprintf(r->detail, sizeof r->detail, "validation of all events (no test part): %s", d2);
        r->train_ev = r->inner.train;
        r->test_ev = r->inner.test;
    } else {
        if ((rc = rf_protocol_split(r->ev, &p, &r->outer, d1, sizeof d1, err)))
            return rc;
        if (o->validation) {
            if ((rc = rf_protocol_validation(r->outer.train, &p, &r->inner, d2, sizeof d2, err)))
                return rc;
            snprintf(r->detail, sizeof r->detail, "%s; %s", d1, d2);
            r->train_ev = r->inner.train;
            r->test_ev = r->inner.test;
        } else {
            snprintf(r->detail, sizeof r->detail, "%s", d1);
            r->train_ev = r->outer.train;
            r->test_ev = r->outer.test;
        }
    }
    if (r->test_ev->n == 0)
        return rf_err_set(err, RF_EINVAL,
                          "the %s split left no %s data (%lld events; users need >= %d items)",
                          rf_protocol_name(p.kind), o->validation ? "validation" : "test",
                          (long long)r->train_ev->n, p.min_items);
    if ((rc = data_opts_for(r->ev, o, &r->dopts, err)))
        return rc;
    if ((rc = rf_dataset_build(r->train_ev, &r->dopts, &r->train, err)))
        return rc;
    r->train->catalog = r->catalog;  /* content: item attributes (not leakage) */
    r->train->users_info = r->users_info; /* fm: demographics (not leakage) */
    r->train->events = r->train_ev;  /* rules: session baskets of the train part only */
    if ((rc = rf_eval_relevance(r->test_ev, r->train->n_users, r->train->n_items, &r->test, err)))
        return rc;
    if (o->rating &&
        (rc = rf_eval_ratings(r->test_ev, r->train->n_users, r->train->n_items, &r->ratings, err)))
        return rc;
    rf_eval_info *in = &r->info;
    memset(in, 0, sizeof *in);
    in->protocol = rf_protocol_name(p.kind);
    in->detail = r->detail;
    in->data_dir = rf_store_dir(st);
    in->train_rows = r->train_ev->n;
    in->test_rows = r->test_ev->n;
    in->train_users = rf_events_count_users(r->train_ev);
    in->test_users = rf_events_count_users(r->test_ev);
    in->n_items = r->train->n_items;
    in->validation = o->validation;
    rf_log(RF_LOG_INFO, "eval.split",
           "split=%s validation=%d train_rows=%lld test_rows=%lld train_users=%d test_users=%d "
           "items=%d binary=%d seconds=%.3f",
           in->protocol, o->validation, (long long)in->train_rows, (long long)in->test_rows,
           (int)in->train_users, (int)in->test_users, (int)in->n_items, r->dopts.binary,
           rf_mono() - t0);
    return 0;
}

void rf_evalrun_print_summary(FILE *out, const rf_evalrun *r) {
    const rf_eval_info *in = &r->info;
    fprintf(out, "# split %s (%s): train %lld rows, %d users; %s %lld rows, %d users\n",
            in->protocol, in->detail, (long long)in->train_rows, (int)in->train_users,
            in->validation ? "validation" : "test", (long long)in->test_rows,
            (int)in->test_users);
}

void rf_evalrun_eval_opts(const rf_evalrun *r, const rf_evalrun_opts *o, rf_eval_opts *eo) {
    *eo = o->eval;
    eo->item_category = r->category;
    eo->item_price = r->price;
    eo->n_side_items = r->n_side;
    eo->ratings = r->ratings && r->ratings->nnz > 0 ? r->ratings : NULL;
}

int rf_evalrun_fit_eval(rf_evalrun *r, const rf_evalrun_opts *o, rf_model *m, const int *ks,
                        int n_ks, const rf_eval_opts *eo, rf_eval_result *res, rf_err *err) {
    memset(res, 0, sizeof *res);
    int rc = rf_cli_model_fit(m, r->train_ev, &r->dopts, r->train, err);
    if (rc)
        return rc;
    rf_log(RF_LOG_INFO, "eval.fit", "model=%s seconds=%.3f", m->ops->name, m->fit_seconds);
    rf_eval_opts local;
    if (!eo) {
        rf_evalrun_eval_opts(r, o, &local);
        eo = &local;
    }
    return rf_evaluate_ex(m, r->train, r->test, ks, n_ks, eo, res, err);
}
