/* cmd_predict.c - `recfuse predict`: scores of given (user, item) pairs.
 *
 * Reads `user<TAB>item` lines (more columns are ignored, so a test file
 * `user item rating timestamp` works as is; an optional first line
 * `user<TAB>item` is a header; blank lines are skipped) and prints
 * `user<TAB>item<TAB>score` per pair, in input order, with the model
 * trained in DIR/models. For mf and svdpp the score is the predicted
 * rating, clipped to the training rating range; a user or an item the
 * model has never seen gets what is known of it (rf_rating_predict in
 * include/recfuse/mf.h):
 *     unknown item                 mu + b_u
 *     unknown user, known item     mu + b_i (+ fold-in, below)
 *     both unknown                 mu
 * A user the model does not know but the store does (events imported
 * after training) is folded in from those events, as `recommend` does.
 * Other models print their score_items score and "nan" for unknown items.
 *
 * The whole file is read and checked before anything is printed, so a bad
 * line fails the command with `FILE:LINE: reason` and no output. Users
 * are scored in groups (pairs sorted by user), so each user's history is
 * read and folded in once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/mf.h"
#include "recfuse/model.h"

/* Used when --model is not given: the first of these that is trained. */
static const char *const default_order[] = {"mf", "svdpp", NULL};

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse predict --data DIR --pairs FILE [--model NAME]\n\n"
            "Prints USER<TAB>ITEM<TAB>SCORE for every pair of FILE, in input order.\n"
            "FILE: one 'user<TAB>item' pair per line (further columns ignored, optional\n"
            "header line 'user<TAB>item', '-' reads stdin). With mf and svdpp the score\n"
            "is the predicted rating, clipped to the training range; unknown users or\n"
            "items get the part of the prediction that is known (user bias, item bias,\n"
            "global mean). A bad line fails with FILE:LINE and prints nothing.\n\n"
            "  --model NAME   trained model in DIR/models (default: the first trained of");
    for (int i = 0; default_order[i]; i++) fprintf(out, " %s", default_order[i]);
    fprintf(out, ")\n");
}

typedef struct pairs {
    int64_t n, cap;
    char **user, **item;
} pairs;

static void pairs_free(pairs *p) {
    for (int64_t k = 0; k < p->n; k++) {
        rf_free(p->user[k]);
        rf_free(p->item[k]);
    }
    rf_free(p->user);
    rf_free(p->item);
    memset(p, 0, sizeof *p);
}

static int pairs_add(pairs *p, const char *u, size_t ul, const char *i, size_t il) {
    if (p->n == p->cap) {
        int64_t nc = p->cap ? p->cap * 2 : 1024;
        char **a = rf_realloc_array(p->user, (size_t)nc, sizeof *a);
        if (!a) return RF_ENOMEM;
        p->user = a;
        char **b = rf_realloc_array(p->item, (size_t)nc, sizeof *b);
        if (!b) return RF_ENOMEM;
        p->item = b;
        p->cap = nc;
    }
    char *cu = rf_strndup(u, ul), *ci = rf_strndup(i, il);
    if (!cu || !ci) {
        rf_free(cu);
        rf_free(ci);
        return RF_ENOMEM;
    }
    p->user[p->n] = cu;
    p->item[p->n] = ci;
    p->n++;
    return 0;
}

/* Field [s, s+len) without surrounding blanks. */
static void trim(const char **s, size_t *len) {
    while (*len && (**s == ' ')) {
        (*s)++;
        (*len)--;
    }
    while (*len && (*s)[*len - 1] == ' ') (*len)--;
}

static int read_pairs(const char *path, pairs *p, rf_err *err) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return rf_err_set(err, RF_EIO, "cannot open pairs file '%s'", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int64_t lineno = 0;
    int first = 1, rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (len == 0) continue;
        if (memchr(line, 0, len)) {
            rc = rf_err_set(err, RF_EPARSE, "%s:%lld: NUL byte in line", path, (long long)lineno);
            break;
        }
        const char *tab = memchr(line, '\t', len);
        if (!tab) {
            rc = rf_err_set(err, RF_EPARSE, "%s:%lld: expected user<TAB>item, found no tab", path,
                            (long long)lineno);
            break;
        }
        const char *u = line, *it = tab + 1;
        size_t ul = (size_t)(tab - line);
        const char *tab2 = memchr(it, '\t', len - ul - 1);
        size_t il = tab2 ? (size_t)(tab2 - it) : len - ul - 1;
        trim(&u, &ul);
        trim(&it, &il);
        if (ul == 0 || il == 0) {
            rc = rf_err_set(err, RF_EPARSE, "%s:%lld: empty %s id", path, (long long)lineno,
                            ul == 0 ? "user" : "item");
            break;
        }
        if (first) {
            first = 0;
            if ((ul == 4 && strncasecmp(u, "user", 4) == 0) &&
                (il == 4 && strncasecmp(it, "item", 4) == 0))
                continue;
        }
        if (pairs_add(p, u, ul, it, il)) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory reading '%s'", path);
            break;
        }
    }
    if (rc == 0 && ferror(f)) rc = rf_err_set(err, RF_EIO, "%s: read error", path);
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* qsort_r comparator: pair indices by user id, then input order. */
static int cmp_by_user(const void *a, const void *b, void *ctx) {
    const pairs *pr = ctx;
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    int c = strcmp(pr->user[x], pr->user[y]);
    if (c) return c;
    return (x > y) - (x < y);
}

int rf_cmd_predict(rf_args *a) {
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_err err;
    rf_err_clear(&err);
    const char *pairs_file = rf_arg_str(a, "pairs", NULL);
    const char *model_name = rf_arg_str(a, "model", NULL);
    (void)rf_arg_str(a, "data", NULL);
    if (rf_args_check_unused(a, &err)) return rf_cli_fail("predict", &err);
    if (!pairs_file) {
        rf_err_set(&err, RF_EINVAL, "--pairs FILE is required");
        return rf_cli_fail("predict", &err);
    }

    int status = 1;
    rf_store *s = NULL;
    rf_model *m = NULL;
    rf_events *ev = NULL;
    pairs pr = {0};
    int64_t *order = NULL;
    int32_t *uid = NULL, *iid = NULL, *hist_items = NULL;
    float *score = NULL, *hist_w = NULL;
    char path[4096];

    if (rf_cli_open_store(a, 0, &s, &err)) goto done;
    if (rf_cli_trained_model(s, model_name, default_order, "rating model", " --model mf", path,
                             sizeof path, &err))
        goto done;
    if (rf_model_load(path, &m, &err)) goto done;
    if (read_pairs(pairs_file, &pr, &err)) goto done;
    if (rf_events_new(NULL, NULL, &ev)) goto nomem;
    const int rating = rf_rating_model(m);

    order = rf_malloc_array((size_t)pr.n + 1, sizeof *order);
    uid = rf_malloc_array((size_t)pr.n + 1, sizeof *uid);
    iid = rf_malloc_array((size_t)pr.n + 1, sizeof *iid);
    score = rf_malloc_array((size_t)pr.n + 1, sizeof *score);
    if (!order || !uid || !iid || !score) goto nomem;
    int64_t unknown_items = 0, users = 0, unknown_users = 0, folded = 0;
    for (int64_t k = 0; k < pr.n; k++) {
        order[k] = k;
        uid[k] = rf_idmap_find(m->users, pr.user[k], strlen(pr.user[k]));
        if (uid[k] >= m->n_users) uid[k] = -1;
        iid[k] = rf_idmap_find(m->items, pr.item[k], strlen(pr.item[k]));
        if (iid[k] >= m->n_items) iid[k] = -1;
        unknown_items += iid[k] < 0;
    }
    qsort_r(order, (size_t)pr.n, sizeof *order, cmp_by_user, &pr);
    /* one group per user: items in input order within the group */
    int32_t *gi = rf_malloc_array((size_t)pr.n + 1, sizeof *gi);
    float *go = rf_malloc_array((size_t)pr.n + 1, sizeof *go);
    if (!gi || !go) {
        rf_free(gi);
        rf_free(go);
        goto nomem;
    }
    for (int64_t g0 = 0; g0 < pr.n;) {
        int64_t g1 = g0 + 1;
        const char *user = pr.user[order[g0]];
        while (g1 < pr.n && strcmp(pr.user[order[g1]], user) == 0) g1++;
        int32_t u = uid[order[g0]], nh = 0;
        users++;
        unknown_users += u < 0;
        rf_hist h = {0, NULL, NULL, NULL};
        if (u < 0 || !rating) { /* history from the store, as `recommend` */
            ev->n = 0;
            if (rf_store_user_events(s, user, ev, &err) ||
                rf_hist_from_events(m, ev, &hist_items, &hist_w, NULL, &nh, &err)) {
                rf_free(gi);
                rf_free(go);
                goto done;
            }
            h.n = nh;
            h.items = hist_items;
            h.weights = hist_w;
            folded += u < 0 && nh > 0;
        }
        int32_t n = (int32_t)(g1 - g0);
        for (int32_t x = 0; x < n; x++) gi[x] = iid[order[g0 + x]];
        int rc = rating ? rf_rating_predict(m, u, &h, gi, n, go, &err)
                        : rf_model_score_items(m, u, &h, gi, n, go, &err);
        rf_free(hist_items);
        rf_free(hist_w);
        hist_items = NULL;
        hist_w = NULL;
        if (rc) {
            rf_free(gi);
            rf_free(go);
            goto done;
        }
        for (int32_t x = 0; x < n; x++) score[order[g0 + x]] = go[x];
        g0 = g1;
    }
    rf_free(gi);
    rf_free(go);
    for (int64_t k = 0; k < pr.n; k++) {
        if (isnan(score[k]))
            printf("%s\t%s\tnan\n", pr.user[k], pr.item[k]);
        else
            printf("%s\t%s\t%.6g\n", pr.user[k], pr.item[k], score[k]);
    }
    if (fflush(stdout) != 0) {
        rf_err_set(&err, RF_EIO, "writing the predictions failed");
        goto done;
    }
    fprintf(stderr,
            "predict: %lld pairs, %lld users (%lld unknown to the model, %lld of them folded in "
            "from the store), %lld pairs with an unknown item, model %s\n",
            (long long)pr.n, (long long)users, (long long)unknown_users, (long long)folded,
            (long long)unknown_items, m->ops->name);
    status = 0;
    goto done;
nomem:
    rf_err_set(&err, RF_ENOMEM, "out of memory");
done:
    if (status) status = rf_cli_fail("predict", &err);
    rf_free(order);
    rf_free(uid);
    rf_free(iid);
    rf_free(score);
    rf_free(hist_items);
    rf_free(hist_w);
    pairs_free(&pr);
    rf_events_free(ev);
    rf_model_free(m);
    rf_store_close(s);
    return status;
}
