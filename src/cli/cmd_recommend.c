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
 * user's items set and restored around each user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "recfuse/features.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"

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
    fprintf(out, ")\n");
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
    int n_out;
} job;

static void job_clear(job *j) {
    rf_free(j->items);
    rf_free(j->weights);
    rf_free(j->ts);
    rf_free(j->seen);
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
    (void)rf_arg_str(a, "data", NULL);
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
    char path[4096];
    const int nth = rf_threads();
    int64_t chunk = 0;

    if (rf_cli_open_store(a, 0, &s, &err)) goto done;
    if (rf_cli_trained_model(s, model_name, served_order, "model", "", path, sizeof path, &err))
        goto done;
    if (rf_model_load(path, &m, &err)) goto done;
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
            j->user = rf_idmap_find(m->users, id, strlen(id));
            if (j->user >= m->n_users) j->user = -1;
            if (j->n_hist == 0) unknown++;
        }
        int failed = 0;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nth)
        for (int64_t u = c0; u < c1; u++) {
            job *j = &jobs[u - c0];
            size_t t = (size_t)rf_thread_id();
            uint8_t *mask = masks + t * (size_t)m->n_items;
            for (int32_t x = 0; x < j->n_seen; x++) mask[j->seen[x]] = 1;
            rf_hist h = {j->n_hist, j->items, j->weights, j->ts};
            rf_filter f = {mask};
            int n = rf_model_recommend(m, j->user, &h, (int)k, &f, scratch + t * (size_t)m->n_items,
                                       outs + (size_t)(u - c0) * (size_t)k, NULL);
            for (int32_t x = 0; x < j->n_seen; x++) mask[j->seen[x]] = base ? base[j->seen[x]] : 0;
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
            fputs(users.id[u], stdout);
            putchar('\t');
            const rf_scored *o = outs + (size_t)(u - c0) * (size_t)k;
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
    rf_catalog_free(cat);
    ulist_free(&users);
    rf_events_free(ev);
    rf_model_free(m);
    rf_store_close(s);
    return status;
}
