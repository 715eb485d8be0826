/* cmd_gen.c - `recfuse gen`: write a synthetic shop (catalog, customers,
 * events) into a directory. One table below drives the options, their
 * ranges and the --help text; presets apply first, options override. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/gen.h"
#include "recfuse/log.h"
#include "recfuse/parallel.h"
#include "recfuse/util.h"

typedef enum { OPT_I64, OPT_INT, OPT_DBL, OPT_U64, OPT_TIME } opt_type;

typedef struct gen_opt {
    const char *name;
    opt_type type;
    size_t offset;
    double min, max;
    const char *help;
} gen_opt;

#define OFF(f) offsetof(rf_gen_opts, f)
static const gen_opt gen_opts[] = {
    {"users", OPT_I64, OFF(users), 1, 2e9, "customers"},
    {"items", OPT_I64, OFF(items), 1, 2e9, "catalog size"},
    {"events", OPT_I64, OFF(events), 0, 1e11, "target number of events (within ~1%)"},
    {"categories", OPT_INT, OFF(categories), 1, 1000, "top-level categories (16 named, more synthesised)"},
    {"brands", OPT_INT, OFF(brands), 1, 1e7, "brands"},
    {"factors", OPT_INT, OFF(factors), 1, 256, "hidden latent dimensions"},
    {"days", OPT_DBL, OFF(days), 1.0 / 24, 36500, "time span in days"},
    {"start", OPT_TIME, OFF(start), 0, 1e11, "first timestamp (Unix seconds or ISO date)"},
    {"seed", OPT_U64, OFF(seed), 0, 0, "random seed"},
    {"pop-exponent", OPT_DBL, OFF(pop_exponent), 0, 5, "popularity ~ (rank + 50)^-x"},
    {"taste", OPT_DBL, OFF(taste), 0, 1, "weight of hidden taste vs popularity (0: popularity only)"},
    {"activity-sigma", OPT_DBL, OFF(activity_sigma), 0, 4, "log-normal sigma of events per user"},
    {"trend-share", OPT_DBL, OFF(trend_share), 0, 1, "share of items with a popularity burst"},
    {"new-share", OPT_DBL, OFF(new_share), 0, 1, "share of items created during the span"},
    {"cart-rate", OPT_DBL, OFF(cart_rate), 0, 1, "base P(view -> cart)"},
    {"purchase-rate", OPT_DBL, OFF(purchase_rate), 0, 1, "base P(cart -> purchase)"},
    {"rating-rate", OPT_DBL, OFF(rating_rate), 0, 1, "P(rating | purchase)"},
    {"repeat-rate", OPT_DBL, OFF(repeat_rate), 0, 0.95, "P(re-buy a consumable) after each purchase"},
    {NULL, 0, 0, 0, 0, NULL},
};

static void gen_usage(FILE *out) {
    rf_gen_opts d;
    rf_gen_opts_default(&d);
    fprintf(out,
            "usage: recfuse gen --out DIR [--preset demo|small|ml20m] [options]\n\n"
            "Writes DIR/interactions.tsv (user item type value timestamp), DIR/items.tsv and\n"
            "DIR/users.tsv: a synthetic shop whose customers follow hidden tastes, a\n"
            "view -> cart -> purchase funnel, weekly seasonality and trending items.\n"
            "Same options and seed -> identical files. See docs/generator.md.\n\n"
            "options (default):\n"
            "  --out DIR              output directory (created)\n"
            "  --preset NAME          demo: 1k users, 300 items, 40k events\n"
            "                         small: 10k users, 2k items, 1M events\n"
            "                         ml20m: 138k users, 27k items, 20M events, implicit\n"
            "  --implicit             one purchase (value 1) per distinct user-item pair\n"
            "  --truth                also write truth_items.tsv / truth_users.tsv\n");
    for (const gen_opt *g = gen_opts; g->name; g++) {
        const char *p = (const char *)&d + g->offset;
        char def[48];
        switch (g->type) {
        case OPT_I64:
        case OPT_TIME: snprintf(def, sizeof def, "%lld", (long long)*(const int64_t *)p); break;
        case OPT_INT: snprintf(def, sizeof def, "%d", *(const int *)p); break;
        case OPT_DBL: snprintf(def, sizeof def, "%g", *(const double *)p); break;
        case OPT_U64: snprintf(def, sizeof def, "%llu", (unsigned long long)*(const uint64_t *)p); break;
        }
        char name[40];
        snprintf(name, sizeof name, "--%s X", g->name);
        fprintf(out, "  %-22s %s (%s)\n", name, g->help, def);
    }
}

static int apply_opt(rf_args *a, const gen_opt *g, rf_gen_opts *o, rf_err *err) {
    char *p = (char *)o + g->offset;
    const char *v = rf_arg_str(a, g->name, NULL);
    if (!v) return 0;
    switch (g->type) {
    case OPT_I64:
        return rf_arg_i64(a, g->name, 0, (int64_t)g->min, (int64_t)g->max, (int64_t *)p, err);
    case OPT_INT: {
        int64_t x;
        int rc = rf_arg_i64(a, g->name, 0, (int64_t)g->min, (int64_t)g->max, &x, err);
        if (!rc) *(int *)p = (int)x;
        return rc;
    }
    case OPT_DBL: return rf_arg_double(a, g->name, 0, g->min, g->max, (double *)p, err);
    case OPT_U64: {
        int64_t x;
        if (rf_parse_i64(v, strlen(v), &x) != 0 || x < 0)
            return rf_err_set(err, RF_EINVAL, "--%s: '%s' is not a non-negative integer", g->name, v);
        *(uint64_t *)p = (uint64_t)x;
        return 0;
    }
    case OPT_TIME: {
        int64_t t;
        if (rf_parse_time(v, strlen(v), &t) != 0 || t < 0)
            return rf_err_set(err, RF_EINVAL, "--%s: '%s' is not a time (Unix seconds or ISO 8601)",
                              g->name, v);
        *(int64_t *)p = t;
        return 0;
    }
    }
    return 0;
}

int rf_cmd_gen(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        gen_usage(stdout);
        return 0;
    }
    rf_gen_opts o;
    rf_gen_opts_default(&o);
    const char *dir = rf_arg_str(a, "out", NULL);
    const char *preset = rf_arg_str(a, "preset", NULL);
    if (preset && rf_gen_preset(&o, preset, &err) != 0) return rf_cli_fail(a->cmd, &err);
    for (const gen_opt *g = gen_opts; g->name; g++)
        if (apply_opt(a, g, &o, &err) != 0) return rf_cli_fail(a->cmd, &err);
    if (rf_arg_flag(a, "implicit")) o.implicit_only = 1;
    if (rf_arg_flag(a, "truth")) o.write_truth = 1;
    if (rf_args_check_unused(a, &err) != 0) return rf_cli_fail(a->cmd, &err);
    if (!dir) {
        rf_err_set(&err, RF_EINVAL, "--out DIR is required (see 'recfuse gen --help')");
        return rf_cli_fail(a->cmd, &err);
    }
    const char *msg = rf_gen_opts_check(&o);
    if (msg) {
        rf_err_set(&err, RF_EINVAL, "%s", msg);
        return rf_cli_fail(a->cmd, &err);
    }
    rf_log(RF_LOG_INFO, "gen.start",
           "out=%s preset=%s users=%lld items=%lld events=%lld categories=%d days=%g implicit=%d "
           "seed=%llu threads=%d",
           dir, preset ? preset : "none", (long long)o.users, (long long)o.items, (long long)o.events,
           o.categories, o.days, o.implicit_only, (unsigned long long)o.seed, rf_threads());
    rf_gen_stats st;
    if (rf_gen_write(dir, &o, &st, &err) != 0) return rf_cli_fail(a->cmd, &err);
    rf_log(RF_LOG_INFO, "gen.done",
           "out=%s users=%lld items=%lld events=%lld views=%lld clicks=%lld carts=%lld "
           "purchases=%lld ratings=%lld repeat_purchases=%lld mb=%.1f seconds=%.2f events_per_s=%.0f",
           dir, (long long)st.users, (long long)st.items, (long long)st.events,
           (long long)st.type_counts[0], (long long)st.type_counts[1], (long long)st.type_counts[2],
           (long long)st.type_counts[3], (long long)st.type_counts[4], (long long)st.repeat_purchases,
           st.bytes / 1048576.0, st.seconds, st.seconds > 0 ? st.events / st.seconds : 0.0);
    return 0;
}
