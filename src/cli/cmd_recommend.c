/* cmd_recommend.c - `recfuse recommend`: top-K lists for a batch of users.
 *
 * Prints `user<TAB>item1,item2,...` per requested user, in input order,
 * best first, original string ids, never an item the user already
 * interacted with. The history comes from the store, not from the model,
 * so events imported after training are honoured (both for scoring, via
 * rf_hist_from_events, and for exclusion: every item with any event of
 * the user, whatever its type weight, is excluded).
 *
 * DESIGN: the store is single-threaded, so users are processed in chunks:
 * the chunk's histories are read serially, the chunk is scored in
 * parallel (one scratch score array and exclusion mask per thread), then
 * printed in order. Users without any history the model knows are scored
 * with an empty history - every model ranks by popularity then (model.h's
 * fallback contract) - and counted as unknown on stderr.
 *
 * Catalog filters (--category, --min-price, --max-price, --in-stock) become
 * one exclusion mask built from the store's catalog (rf_item_filter_build,
 * features.h); each thread's mask starts as a copy of it and gets the
 * user's items set and restored around each user.
 *
 * Business rules (rerank.h: --repeat-categories, --oos, --cat-cap,
 * --pin, --boost, --block, --diversity) take the model's best
 * max(5k, k + 100) items as candidates and re-rank them per user; with
 * --repeat-categories the user's purchases in those categories stay
 * candidates (repeat purchases of consumables): the candidates come from
 * rf_model_recommend with rf_filter.allow_history, the mask holding every
 * item the user touched but those purchases, so a model that scores
 * history items keeps them and the fused model adds them to its own
 * candidates (docs/fusion.md). --explain prints one line per recommended
 * item with its reason (rf_model_explain). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "recfuse/factors.h"
#include "recfuse/features.h"
#include "recfuse/fusion.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rerank.h"
#include "recfuse/util.h"

/* Served when --model is not given: the first of these that is trained. */
static const char *const served_order[] = {"fusion", "itemknn", "pop", NULL};

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse recommend --data DIR (--users FILE | --user ID) [--k K] [--model NAME]\n\n"
            "Prints USER<TAB>ITEM1,ITEM2,... per user (best first, original ids), never an\n"
            "item the user already interacted with. FILE holds one user id per line (first\n"
            "column if tab-separated; a first line 'user' is skipped). Users without history\n"
            "get the popularity fallback and are counted on stderr.\n\n"
            "  --k K          list length (default 10)\n"
            "  --category C   only items whose category path contains C as whole segments\n"
            "                 (\"Shoes\" matches \"Fashion/Shoes\"; comma-separated: any of them)\n"
            "  --min-price P  only items priced at least P (items of unknown price are left out)\n"
            "  --max-price P  only items priced at most P\n"
            "  --in-stock     only items with stock > 0 (unknown stock is left out)\n"
            "  --model NAME   trained model in DIR/models (default: the first trained of");
    for (int i = 0; served_order[i]; i++) fprintf(out, " %s", served_order[i]);
    fprintf(out, ")\n"
            "business rules (re-rank the model's best max(5K, K+100) items; docs/fusion.md):\n"
            "  --repeat-categories C  items bought in these categories may be recommended\n"
            "                 again (consumables); comma-separated category paths\n"
            "  --oos keep|exclude|demote  out-of-stock items (stock 0): kept (default),\n"
            "                 left out, or moved behind every in-stock item\n"
            "  --cat-cap N    at most N items per category\n"
            "  --pin ITEM@POS,...   put ITEM at position POS (0-based)\n"
            "  --boost ITEM=B,...   lift ITEM by B times the list's score range\n"
            "  --block ITEM,...     never recommend ITEM\n"
            "  --diversity L  MMR trade-off in [0, 1]: 1 relevance only, 0 diversity only;\n"
            "                 similarity from item vectors (factor models, fusion's ials)\n"
            "                 or else same category\n"
            "  --explain      one line per item: USER ITEM KIND REASON CHANNEL:SHARE,...\n");
}

typedef struct ulist {
    int64_t n, cap;
    char **id;
} ulist;

static void ulist_free(ulist *u) {
    for (int64_t i = 0; i < u->n; i++) rf_free(u->id[i]);
    rf_free(u->id);
    memset(u, 0, sizeof *u);
}

static int ulist_add(ulist *u, const char *s, size_t len) {
    if (u->n == u->cap) {
        int64_t nc = u->cap ? u->cap * 2 : 256;
        char **p = rf_realloc_array(u->id, (size_t)nc, sizeof *p);
        if (!p) return RF_ENOMEM;
        u->id = p;
        u->cap = nc;
    }
    char *c = rf_strndup(s, len);
    if (!c) return RF_ENOMEM;
    u->id[u->n++] = c;
    return 0;
}

static int read_users(const char *path, ulist *u, rf_err *err) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return rf_err_set(err, RF_EIO, "cannot open users file '%s'", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int first = 1, rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        char *tab = memchr(line, '\t', len);
        if (tab) len = (size_t)(tab - line);
        while (len && line[len - 1] == ' ') len--;
        if (len == 0) continue;
        if (first) {
            first = 0;
            if ((len == 4 && strncasecmp(line, "user", 4) == 0) ||
                (len == 7 && strncasecmp(line, "user_id", 7) == 0))
                continue;
        }
        if ((rc = ulist_add(u, line, len))) {
            rf_err_set(err, rc, "out of memory reading '%s'", path);
            break;
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* One user's request within a chunk. */
typedef struct job {
    int32_t user;     /* model user id or -1 */
    int32_t n_hist, n_seen;
    int32_t *items;   /* history (model ids) */
    float *weights;
    int64_t *ts;      /* newest event time per history item */
    int32_t *seen;    /* every model item with an event of this user */
    int32_t *bought;  /* purchases (rules only) */
    int32_t n_bought;
    int n_out;
} job;

static void job_clear(job *j) {
    rf_free(j->items);
    rf_free(j->weights);
    rf_free(j->ts);
    rf_free(j->seen);
    rf_free(j->bought);
    memset(j, 0, sizeof *j);
}

/* Model ids of every item in ev (any type); allocated into *seen. */
static int seen_items(const rf_model *m, const rf_events *ev, int32_t **seen, int32_t *n) {
    *seen = NULL;
    *n = 0;
    if (ev->n == 0) return 0;
    int32_t *s = rf_malloc_array((size_t)ev->n, sizeof *s);
    if (!s) return RF_ENOMEM;
    int32_t k = 0;
    for (int64_t i = 0; i < ev->n; i++) {
        int32_t e = ev->item[i];
        int32_t id = rf_idmap_find(m->items, rf_idmap_str(ev->items, e), rf_idmap_len(ev->items, e));
        if (id >= 0 && id < m->n_items) s[k++] = id;
    }
    *seen = s;
    *n = k;
    return 0;
}

/* Per-request rules shared by every user: item side data in model ids and
 * the parsed --pin/--boost/--block lists. */
typedef struct rules_ctx {
    int on;
    rf_rerank_req base;
    int32_t *category;
    double *price;
    int64_t *stock;
    uint8_t *repeat_ok;
    int32_t n_cat;
    rf_pin pins[64];
    rf_boost boosts[256];
    int32_t blocked[1024];
    rf_vec_sim vs;
} rules_ctx;

static void rules_free(rules_ctx *r) {
    rf_free(r->category);
    rf_free(r->price);
    rf_free(r->stock);
    rf_free(r->repeat_ok);
}

/* Model item id of a string id from option `opt`; RF_EINVAL naming it. */
static int item_arg(const rf_model *m, const char *opt, const char *s, size_t len, int32_t *out,
                    rf_err *err) {
    *out = rf_idmap_find(m->items, s, len);
    if (*out < 0 || *out >= m->n_items)
        return rf_err_set(err, RF_EINVAL, "--%s: unknown item '%.*s'", opt, (int)len, s);
    return 0;
}

/* Parse "A,B" / "A@3,B@0" / "A=0.5" lists (sep 0: plain ids). */
static int parse_items(const rf_model *m, const char *opt, const char *spec, char sep,
                       int32_t *ids, double *vals, int max, int32_t *n, rf_err *err) {
    *n = 0;
    const char *p = spec;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *v = sep ? memchr(p, sep, len) : NULL;
        if (sep && !v)
            return rf_err_set(err, RF_EINVAL, "--%s: '%.*s' is not ITEM%cVALUE", opt, (int)len, p,
                              sep);
        size_t il = v ? (size_t)(v - p) : len;
        if (il > 0) {
            if (*n >= max) return rf_err_set(err, RF_EINVAL, "--%s: at most %d items", opt, max);
            int rc = item_arg(m, opt, p, il, &ids[*n], err);
            if (rc) return rc;
            if (v && rf_parse_double(v + 1, len - il - 1, &vals[*n]) != 0)
                return rf_err_set(err, RF_EINVAL, "--%s: '%.*s' has no number after '%c'", opt,
                                  (int)len, p, sep);
            (*n)++;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int rules_setup(rf_args *a, rf_store *s, const rf_model *m, rules_ctx *r, rf_err *err) {
    memset(r, 0, sizeof *r);
    const char *repeat = rf_arg_str(a, "repeat-categories", NULL);
    const char *oos = rf_arg_str(a, "oos", NULL);
    const char *pin = rf_arg_str(a, "pin", NULL), *boost = rf_arg_str(a, "boost", NULL);
    const char *block = rf_arg_str(a, "block", NULL);
    int64_t cap = 0;
    double lambda = 1;
    int rc;
    if ((rc = rf_arg_i64(a, "cat-cap", 0, 0, 1000000, &cap, err))) return rc;
    if ((rc = rf_arg_double(a, "diversity", 1, 0, 1, &lambda, err))) return rc;
    rf_rerank_req_init(&r->base, m->n_items);
    r->on = repeat || oos || pin || boost || block || cap > 0 || lambda < 1;
    if (!r->on) return 0;
    if (oos) {
        if (strcmp(oos, "keep") == 0) r->base.oos = RF_OOS_KEEP;
        else if (strcmp(oos, "exclude") == 0) r->base.oos = RF_OOS_EXCLUDE;
        else if (strcmp(oos, "demote") == 0) r->base.oos = RF_OOS_DEMOTE;
        else return rf_err_set(err, RF_EINVAL, "--oos: '%s' is not keep, exclude or demote", oos);
    }
    r->base.cat_cap = (int)cap;
    r->base.lambda = lambda;
    int32_t ids[1024];
    double vals[1024];
    int32_t n;
    if ((rc = parse_items(m, "block", block, 0, ids, vals, 1024, &n, err))) return rc;
    memcpy(r->blocked, ids, (size_t)n * sizeof *ids);
    r->base.blocked = r->blocked;
    r->base.n_blocked = n;
    if ((rc = parse_items(m, "boost", boost, '=', ids, vals, 256, &n, err))) return rc;
    for (int32_t i = 0; i < n; i++) r->boosts[i] = (rf_boost){ids[i], (float)vals[i]};
    r->base.boosts = r->boosts;
    r->base.n_boosts = n;
    if ((rc = parse_items(m, "pin", pin, '@', ids, vals, 64, &n, err))) return rc;
    for (int32_t i = 0; i < n; i++) {
        if (vals[i] < 0 || vals[i] > 1e6 || vals[i] != (int)vals[i])
            return rf_err_set(err, RF_EINVAL, "--pin: position %g is not an integer >= 0", vals[i]);
        r->pins[i] = (rf_pin){ids[i], (int)vals[i]};
    }
    r->base.pins = r->pins;
    r->base.n_pins = n;
    /* item side data from the catalog, in model ids */
    rf_catalog *cat = NULL;
    rf_idmap *cats = NULL;
    if ((rc = rf_store_load_catalog(s, &cat, err))) return rc;
    size_t ni = (size_t)(m->n_items ? m->n_items : 1);
    r->category = rf_malloc_array(ni, sizeof *r->category);
    r->price = rf_malloc_array(ni, sizeof *r->price);
    r->stock = rf_malloc_array(ni, sizeof *r->stock);
    if (!r->category || !r->price || !r->stock || rf_idmap_new(&cats)) {
        rf_catalog_free(cat);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; i < m->n_items; i++) {
        r->category[i] = -1;
        r->price[i] = NAN;
        r->stock[i] = -1;
    }
    for (int64_t q = 0; q < cat->n && rc == 0; q++) {
        const rf_item_info *it = &cat->items[q];
        int32_t j = it->id ? rf_idmap_find(m->items, it->id, strlen(it->id)) : -1;
        if (j < 0 || j >= m->n_items) continue;
        r->price[j] = it->price;
        r->stock[j] = it->stock;
        if (it->category && *it->category &&
            rf_idmap_put(cats, it->category, strlen(it->category), &r->category[j], NULL))
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    r->n_cat = rf_idmap_size(cats);
    r->repeat_ok = rf_calloc((size_t)(r->n_cat ? r->n_cat : 1), 1);
    if (!r->repeat_ok && rc == 0) rc = rf_err_set(err, RF_ENOMEM, "out of memory");
    for (int32_t c = 0; c < r->n_cat && rc == 0 && repeat; c++)
        r->repeat_ok[c] = (uint8_t)rf_category_match(rf_idmap_str(cats, c), repeat);
    rf_idmap_free(cats);
    rf_catalog_free(cat);
    if (rc) return rc;
    r->base.category = r->category;
    r->base.price = r->price;
    r->base.stock = r->stock;
    r->base.repeat_ok = r->repeat_ok;
    r->base.n_categories = r->n_cat;
    if (lambda < 1) { /* MMR similarity: item vectors when the model has them */
        int dim = 0;
        const float *v = m->ops->item_vectors ? m->ops->item_vectors(m, &dim) : NULL;
        rf_factors fa;
        const rf_model *ials = rf_fusion_channel(m, "ials");
        if (v && dim > 0) {
            r->vs = (rf_vec_sim){v, dim, dim};
        } else if (rf_factors_get(ials ? ials : m, &fa, NULL) == 0) {
            r->vs = (rf_vec_sim){fa.items, fa.dim, fa.ld};
        }
        if (r->vs.v) {
            r->base.sim = rf_vec_sim_cos;
            r->base.sim_ud = &r->vs;
        } else {
            r->base.sim = rf_cat_sim;
            r->base.sim_ud = r->category;
        }
    }
    return 0;
}

/* Model ids of the user's purchases in ev (any order, may repeat). */
static int32_t bought_items(const rf_model *m, const rf_events *ev, int32_t *out, int32_t max) {
    int32_t n = 0;
    for (int64_t i = 0; i < ev->n && n < max; i++) {
        if (ev->type[i] != RF_EV_PURCHASE) continue;
        int32_t e = ev->item[i];
        int32_t id = rf_idmap_find(m->items, rf_idmap_str(ev->items, e), rf_idmap_len(ev->items, e));
        if (id >= 0 && id < m->n_items) out[n++] = id;
    }
    return n;
}

int rf_cmd_recommend(rf_args *a) {
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_err err;
    rf_err_clear(&err);
    const char *users_file = rf_arg_str(a, "users", NULL);
    const char *one_user = rf_arg_str(a, "user", NULL);
    const char *model_name = rf_arg_str(a, "model", NULL);
    int64_t k = 10;
    if (rf_arg_i64(a, "k", 10, 1, 1000000, &k, &err)) return rf_cli_fail("recommend", &err);
    rf_item_filter_spec fspec;
    rf_item_filter_spec_init(&fspec);
    fspec.category = rf_arg_str(a, "category", NULL);
    fspec.in_stock = rf_arg_flag(a, "in-stock");
    if (rf_arg_str(a, "min-price", NULL) &&
        rf_arg_double(a, "min-price", 0, 0, 1e300, &fspec.min_price, &err))
        return rf_cli_fail("recommend", &err);
    if (rf_arg_str(a, "max-price", NULL) &&
        rf_arg_double(a, "max-price", 0, 0, 1e300, &fspec.max_price, &err))
        return rf_cli_fail("recommend", &err);
    int explain = rf_arg_flag(a, "explain");
    (void)rf_arg_str(a, "data", NULL);
    /* rule options are read (and checked) once the model is loaded */
    static const char *const rule_opts[] = {"repeat-categories", "oos", "pin", "boost", "block",
                                            "cat-cap", "diversity", NULL};
    for (int i = 0; rule_opts[i]; i++)
        for (int q = 0; q < a->n; q++)
            if (strcmp(a->key[q], rule_opts[i]) == 0) a->used[q] = 1;
    if (rf_args_check_unused(a, &err)) return rf_cli_fail("recommend", &err);
    if (!users_file == !one_user) {
        rf_err_set(&err, RF_EINVAL, "give exactly one of --users FILE and --user ID");
        return rf_cli_fail("recommend", &err);
    }

    int status = 1;
    rf_store *s = NULL;
    rf_model *m = NULL;
    rf_events *ev = NULL;
    ulist users = {0};
    job *jobs = NULL;
    rf_scored *outs = NULL;
    float *scratch = NULL;
    uint8_t *masks = NULL;
    uint8_t *base = NULL; /* catalog filter mask, NULL without filters */
    rf_catalog *cat = NULL;
    rules_ctx rules;
    memset(&rules, 0, sizeof rules);
    rf_scored *cands = NULL;
    rf_reason *reasons = NULL;
    int ncand = 0;
    char path[4096];
    const int nth = rf_threads();
    int64_t chunk = 0;

    if (rf_cli_open_store(a, 0, &s, &err)) goto done;
    if (rf_cli_trained_model(s, model_name, served_order, "model", "", path, sizeof path, &err))
        goto done;
    if (rf_model_load(path, &m, &err)) goto done;
    if (rules_setup(a, s, m, &rules, &err)) {
        if (err.code != RF_ENOMEM) err.code = RF_EINVAL;
        goto done;
    }
    if (one_user) {
        if (ulist_add(&users, one_user, strlen(one_user))) goto nomem;
    } else if (read_users(users_file, &users, &err)) {
        goto done;
    }
    if (rf_events_new(NULL, NULL, &ev)) goto nomem;

    /* at most 1024 users and ~16M result entries per chunk */
    chunk = (16777216 / k) < 1024 ? (16777216 / k) : 1024;
    if (chunk < 1) chunk = 1;
    jobs = rf_calloc((size_t)chunk, sizeof *jobs);
    outs = rf_malloc_array((size_t)chunk * (size_t)k, sizeof *outs);
    scratch = rf_malloc_array((size_t)nth * (size_t)m->n_items, sizeof *scratch);
    masks = rf_calloc((size_t)nth * (size_t)m->n_items, 1);
    if (!jobs || !outs || !scratch || !masks) goto nomem;
    if (rules.on) {
        int64_t nc = 5 * k > k + 100 ? 5 * k : k + 100;
        ncand = (int)(nc < m->n_items ? nc : m->n_items);
        cands = rf_malloc_array((size_t)nth * (size_t)(ncand ? ncand : 1), sizeof *cands);
        if (!cands) goto nomem;
    }
    if (explain) {
        reasons = rf_malloc_array((size_t)chunk * (size_t)k, sizeof *reasons);
        if (!reasons) goto nomem;
    }
    if (rf_item_filter_active(&fspec)) {
        int32_t n_pass = 0;
        base = rf_malloc_array((size_t)m->n_items + 1, 1);
        if (!base) goto nomem;
        if (rf_store_load_catalog(s, &cat, &err)) goto done;
        if (rf_item_filter_build(cat, m->items, m->n_items, &fspec, base, &n_pass, &err)) goto done;
        rf_catalog_free(cat);
        cat = NULL;
        for (int t = 0; t < nth; t++) memcpy(masks + (size_t)t * (size_t)m->n_items, base, (size_t)m->n_items);
        rf_log(RF_LOG_INFO, "recommend.filter", "items=%d pass=%d", (int)m->n_items, (int)n_pass);
        if (n_pass == 0)
            rf_log(RF_LOG_WARN, "recommend.filter", "msg=\"no item passes the filter: lists are empty\"");
    }

    int64_t unknown = 0;
    for (int64_t c0 = 0; c0 < users.n; c0 += chunk) {
        int64_t c1 = c0 + chunk < users.n ? c0 + chunk : users.n;
        for (int64_t u = c0; u < c1; u++) {
            job *j = &jobs[u - c0];
            const char *id = users.id[u];
            ev->n = 0;
            if (rf_store_user_events(s, id, ev, &err)) goto done;
            if (rf_hist_from_events(m, ev, &j->items, &j->weights, &j->ts, &j->n_hist, &err))
                goto done;
            if (seen_items(m, ev, &j->seen, &j->n_seen)) goto nomem;
            if (rules.on && ev->n > 0) {
                j->bought = rf_malloc_array((size_t)ev->n, sizeof *j->bought);
                if (!j->bought) goto nomem;
                j->n_bought = bought_items(m, ev, j->bought, (int32_t)ev->n);
            }
            j->user = rf_idmap_find(m->users, id, strlen(id));
            /* no stored events: forgotten since training - never the trained row */
            if (j->user >= m->n_users || ev->n == 0) j->user = -1;
            if (j->n_hist == 0) unknown++;
        }
        int failed = 0;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nth)
        for (int64_t u = c0; u < c1; u++) {
            job *j = &jobs[u - c0];
            size_t t = (size_t)rf_thread_id();
            uint8_t *mask = masks + t * (size_t)m->n_items;
            for (int32_t x = 0; x < j->n_seen; x++) mask[j->seen[x]] = 1;
            if (rules.on && rules.repeat_ok) /* repeat purchases stay candidates */
                for (int32_t x = 0; x < j->n_bought; x++) {
                    int32_t c = rules.category[j->bought[x]];
                    if (c >= 0 && rules.repeat_ok[c]) mask[j->bought[x]] = base ? base[j->bought[x]] : 0;
                }
            rf_hist h = {j->n_hist, j->items, j->weights, j->ts};
            /* with rules the mask alone decides which history items stay out */
            rf_filter f = {.exclude = mask, .allow_history = rules.on};
            rf_scored *o = outs + (size_t)(u - c0) * (size_t)k;
            float *sc = scratch + t * (size_t)m->n_items;
            int n;
            if (!rules.on) {
                n = rf_model_recommend(m, j->user, &h, (int)k, &f, sc, o, NULL);
            } else {
                rf_scored *cd = cands + t * (size_t)ncand;
                n = rf_model_recommend(m, j->user, &h, ncand, &f, sc, cd, NULL);
                if (n >= 0) {
                    rf_rerank_req req = rules.base;
                    req.bought = j->bought;
                    req.n_bought = j->n_bought;
                    n = rf_rerank(&req, cd, n, (int)k, o, NULL);
                }
            }
            for (int32_t x = 0; x < j->n_seen; x++) mask[j->seen[x]] = base ? base[j->seen[x]] : 0;
            if (n > 0 && explain) {
                int32_t ids[1024];
                int ne = n < 1024 ? n : 1024;
                for (int x = 0; x < ne; x++) ids[x] = o[x].id;
                int rc2 = rf_model_explain(m, j->user, &h, ids, ne,
                                           reasons + (size_t)(u - c0) * (size_t)k, NULL);
                if (rc2) n = rc2;
            }
            if (n < 0) {
#pragma omp atomic write
                failed = n;
            }
            j->n_out = n < 0 ? 0 : n;
        }
        if (failed) {
            rf_err_set(&err, failed, "scoring failed: %s", rf_strerror(failed));
            goto done;
        }
        for (int64_t u = c0; u < c1; u++) {
            job *j = &jobs[u - c0];
            const rf_scored *o = outs + (size_t)(u - c0) * (size_t)k;
            if (explain) {
                const rf_reason *rs = reasons + (size_t)(u - c0) * (size_t)k;
                for (int x = 0; x < j->n_out && x < 1024; x++) {
                    printf("%s\t%s\t%s\t%s\t", users.id[u], rf_idmap_str(m->items, o[x].id),
                           rs[x].kind, rs[x].text);
                    for (int q = 0; q < rs[x].n_contrib; q++)
                        printf("%s%s:%.2f", q ? "," : "", rs[x].contrib[q].channel,
                               rs[x].contrib[q].share);
                    putchar('\n');
                }
                job_clear(j);
                continue;
            }
            fputs(users.id[u], stdout);
            putchar('\t');
            for (int x = 0; x < j->n_out; x++) {
                if (x) putchar(',');
                fputs(rf_idmap_str(m->items, o[x].id), stdout);
            }
            putchar('\n');
            job_clear(j);
        }
    }
    if (fflush(stdout) != 0) {
        rf_err_set(&err, RF_EIO, "writing the output failed");
        goto done;
    }
    if (rf_log_get_level() <= RF_LOG_INFO)
        fprintf(stderr, "recommend: %lld users, %lld unknown (popularity fallback), model %s\n",
                (long long)users.n, (long long)unknown, m->ops->name);
    status = 0;
    goto done;
nomem:
    rf_err_set(&err, RF_ENOMEM, "out of memory");
done:
    if (status) status = rf_cli_fail("recommend", &err);
    if (jobs)
        for (int64_t i = 0; i < chunk; i++) job_clear(&jobs[i]);
    rf_free(jobs);
    rf_free(outs);
    rf_free(scratch);
    rf_free(masks);
    rf_free(base);
    rf_free(cands);
    rf_free(reasons);
    rules_free(&rules);
    rf_catalog_free(cat);
    ulist_free(&users);
    rf_events_free(ev);
    rf_model_free(m);
    rf_store_close(s);
    return status;
}
