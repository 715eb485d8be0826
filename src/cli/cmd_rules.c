/* cmd_rules.c - `recfuse rules`: list association rules ("frequently
 * bought together") of a data directory.
 *
 * Uses the trained rules model (DIR/models/rules.rfm) when there is one
 * and no mining option is given; otherwise mines on the fly with the
 * rules model's parameters: defaults, then DIR/params/rules.params, then
 * --params, then the explicit options (--min-support ...). Nothing is
 * written. stdout: a header line, then one rule per line,
 *   antecedent<TAB>consequent<TAB>support<TAB>confidence<TAB>lift<TAB>count
 * with the antecedent's items comma-separated (original ids); a summary
 * goes to stderr. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/dataset.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rules.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse rules --data DIR [--top N] [--item ID] [--sort lift|confidence|support]\n"
            "                     [--mine] [--min-support X] [--min-confidence X] [--min-lift X]\n"
            "                     [--min-count N] [--max-len 2|3] [--session-gap MINUTES]\n"
            "                     [--basket-events auto|purchase|cart|all] [--params k=v,...]\n\n"
            "Lists the strongest association rules A -> c (A one or two items): support = share\n"
            "of baskets holding A and c, confidence = P(c | A), lift = confidence / P(c), count =\n"
            "baskets holding A and c. A basket is one user's purchases (basket-events) within a\n"
            "session: events at most session-gap minutes apart (default 30).\n\n"
            "Uses DIR/models/rules.rfm when trained and no mining option is given; otherwise\n"
            "mines the store on the fly (rules model parameters: defaults, DIR/params/rules.params,\n"
            "--params, then the options below).\n\n"
            "  --top N             rules printed (default 20; 0: all)\n"
            "  --item ID           only rules whose antecedent contains item ID\n"
            "  --sort KEY          lift (default), confidence or support\n"
            "  --mine              mine even when a trained model exists\n"
            "  --min-support X     minimum itemset support, share of baskets\n"
            "  --min-confidence X  minimum rule confidence\n"
            "  --min-lift X        minimum rule lift\n"
            "  --min-count N       minimum number of baskets of an itemset\n"
            "  --max-len L         2: pairs only; 3: also rules a,b -> c\n"
            "  --session-gap MIN   minutes between events that start a new basket\n"
            "  --basket-events E   auto (purchases if any, else all), purchase, cart, all\n");
}

/* Options that map to model parameters, and the parameter names. */
static const char *const mine_opts[][2] = {
    {"min-support", "min_support"},     {"min-confidence", "min_confidence"},
    {"min-lift", "min_lift"},           {"min-count", "min_count"},
    {"max-len", "max_len"},             {"session-gap", "session_gap"},
    {"basket-events", "basket_events"}, {NULL, NULL},
};

static void print_item(const rf_model *m, int32_t id) { fputs(rf_idmap_str(m->items, id), stdout); }

/* Mine: events -> dataset -> rules model fit (not saved). */
static int mine(rf_store *s, const char *overrides, rf_model **out, rf_err *err) {
    rf_events *ev = NULL;
    rf_dataset *d = NULL;
    rf_model *m = NULL;
    int rc;
    if ((rc = rf_store_load_events(s, &ev, err))) goto done;
    if (ev->n == 0) {
        rc = rf_err_set(err, RF_ENOTFOUND, "%s holds no interactions (run 'recfuse import' first)",
                        rf_store_dir(s));
        goto done;
    }
    if ((rc = rf_cli_model_create(rf_store_dir(s), "rules", overrides, &m, NULL, err))) goto done;
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    if ((rc = rf_dataset_build(ev, &o, &d, err))) goto done;
    d->events = ev;
    m->data_opts = o;
    if ((rc = rf_model_fit(m, d, err))) goto done;
    *out = m;
    m = NULL;
done:
    rf_model_free(m);
    rf_dataset_free(d);
    rf_events_free(ev);
    return rc;
}

int rf_cmd_rules(rf_args *a) {
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_err err;
    rf_err_clear(&err);
    int64_t top = 20;
    if (rf_arg_i64(a, "top", 20, 0, INT64_MAX, &top, &err)) return rf_cli_fail("rules", &err);
    const char *item = rf_arg_str(a, "item", NULL);
    const char *sort = rf_arg_str(a, "sort", "lift");
    int force_mine = rf_arg_flag(a, "mine");
    const char *params = rf_arg_str(a, "params", NULL);
    char overrides[2048] = "";
    int n_over = 0;
    if (params) {
        snprintf(overrides, sizeof overrides, "%s", params);
        n_over++;
    }
    for (int i = 0; mine_opts[i][0]; i++) {
        const char *v = rf_arg_str(a, mine_opts[i][0], NULL);
        if (!v) continue;
        size_t l = strlen(overrides);
        snprintf(overrides + l, sizeof overrides - l, "%s%s=%s", l ? "," : "", mine_opts[i][1], v);
        n_over++;
    }
    (void)rf_arg_str(a, "data", NULL);
    if (rf_args_check_unused(a, &err)) return rf_cli_fail("rules", &err);
    int order = rf_rules_order_parse(sort);
    if (order < 0) {
        rf_err_set(&err, RF_EINVAL, "--sort: '%s' is not one of lift, confidence, support", sort);
        return rf_cli_fail("rules", &err);
    }
    if (n_over) { /* a usage error is reported before any data is loaded */
        rf_model *probe = NULL;
        int rc = rf_model_new("rules", &probe, &err);
        if (rc == 0) rc = rf_model_set_params(probe, overrides, &err);
        rf_model_free(probe);
        if (rc) {
            err.code = RF_EINVAL;
            return rf_cli_fail("rules", &err);
        }
    }

    int status = 1;
    rf_store *s = NULL;
    rf_model *m = NULL;
    rf_rule *rules = NULL;
    int64_t n = 0;
    const char *source = "trained model";
    char path[4096];
    if (rf_cli_open_store(a, 0, &s, &err)) goto done;
    rf_store_model_path(s, "rules", path, sizeof path);
    FILE *f = (force_mine || n_over) ? NULL : fopen(path, "rb");
    if (f) {
        fclose(f);
        if (rf_model_load(path, &m, &err)) goto done;
    } else {
        source = "mined now";
        if (mine(s, overrides, &m, &err)) goto done;
    }
    int32_t id = -1;
    if (item) {
        id = rf_idmap_find(m->items, item, strlen(item));
        if (id < 0 || id >= m->n_items) {
            rf_err_set(&err, RF_ENOTFOUND, "item '%s' is unknown to the rules model", item);
            goto done;
        }
    }
    if (rf_rules_model_list(m, id, (rf_rules_order)order, &rules, &n, &err)) goto done;
    rf_rules_info info;
    rf_rules_model_info(m, &info, NULL);
    printf("antecedent\tconsequent\tsupport\tconfidence\tlift\tcount\n");
    int64_t shown = top > 0 && top < n ? top : n;
    for (int64_t q = 0; q < shown; q++) {
        const rf_rule *r = &rules[q];
        print_item(m, r->ante[0]);
        if (r->ante[1] >= 0) {
            putchar(',');
            print_item(m, r->ante[1]);
        }
        putchar('\t');
        print_item(m, r->cons);
        printf("\t%.6g\t%.4f\t%.4f\t%lld\n", r->support, r->confidence, r->lift,
               (long long)r->count);
    }
    if (fflush(stdout) != 0) {
        rf_err_set(&err, RF_EIO, "writing the output failed");
        goto done;
    }
    char pbuf[1024];
    rf_model_params_format(m, pbuf, sizeof pbuf);
    if (rf_log_get_level() <= RF_LOG_INFO)
        fprintf(stderr,
                "rules (%s): %lld baskets, %lld frequent items, %lld pairs, %lld triples, %lld "
                "rules kept, %lld listed%s%s; params: %s\n",
                source, (long long)info.n_baskets, (long long)info.n_frequent[0],
                (long long)info.n_frequent[1], (long long)info.n_frequent[2],
                (long long)info.n_rules, (long long)shown, item ? " for item " : "",
                item ? item : "", pbuf);
    status = 0;
done:
    if (status) status = rf_cli_fail("rules", &err);
    rf_free(rules);
    rf_model_free(m);
    rf_store_close(s);
    return status;
}
