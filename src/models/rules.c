/* rules.c - the "rules" model: association rules ("frequently bought
 * together") mined with FP-Growth (fpgrowth.c), recommending from the
 * user's last basket, with a popularity fallback.
 *
 * Fit: baskets come from the dataset's event log (rf_dataset.events):
 * each user's events of the basket types, cut into sessions at gaps longer
 * than session_gap minutes and after max_basket events (rules.h).
 * basket_events=auto takes purchases when the log has any, else every
 * event type with a nonzero weight. Without an event log the baskets come
 * from the interaction matrix (each pair at its last event time). Frequent
 * itemsets of up to max_len items with count >= max(min_count,
 * ceil(min_support * N)) give rules A -> c with confidence >=
 * min_confidence and lift >= min_lift; each antecedent keeps its
 * max_rules strongest rules (by confidence * lift). If more than
 * max_itemsets itemsets would be frequent, the count threshold is doubled
 * until they fit (logged as a warning), so long baskets and low
 * thresholds cannot exhaust memory.
 *
 * Score: the context is the user's last basket - the items of the
 * history's most recent session (h->ts: items newest first while the gap
 * to the previous one is at most session_gap), at most max_context items.
 * Without times (h->ts NULL, as in offline evaluation) a training user's
 * last basket is taken from the training data (stored at fit), others
 * use their max_context heaviest history items. Every rule whose
 * antecedent lies in the context fires; an item's rule score is the max
 * (agg=max) or the sum (agg=sum) of confidence * lift over the rules
 * concluding it. Items reached by a rule score 1 + rule score, all others
 * pop / (max pop + 1) < 1: rule items first, then popularity. score_sparse
 * (model.h) fires the same rules into a sparse accumulator, so only the
 * consequents are touched.
 *
 * DESIGN: rules are kept sorted by antecedent (single-item antecedents of
 * item a, then pairs (a, b) by b), with an offset per first item, so
 * firing a context of c items costs c offset lookups plus c^2/2 binary
 * searches. The model owns its rules and the last baskets of its
 * training users; the file is self-contained. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rules.h"
#include "recfuse/sparse.h"

enum { BE_AUTO = 0, BE_PURCHASE = 1, BE_CART = 2, BE_ALL = 3 };
enum { AGG_MAX = 0, AGG_SUM = 1 };

typedef struct rules_params {
    double min_support;
    int min_count;
    double min_confidence;
    double min_lift;
    int max_len;
    double session_gap; /* minutes */
    int basket_events;
    int agg;
    int max_context;
    int max_rules;
    int max_basket;
    int max_itemsets;
} rules_params;

typedef struct rules_impl {
    int64_t n_rules;
    rf_rule *rules;    /* by (ante[0], ante[1]); within an antecedent strongest first */
    float *rscore;     /* confidence * lift per rule */
    int64_t *off;      /* n_items + 1: rules with ante[0] == a are [off[a], off[a+1]) */
    float *pop;        /* n_items, distinct users per item */
    float pop_max;
    int64_t *last_ptr; /* n_users + 1 */
    int32_t *last;     /* last basket of each training user (model item ids, ascending) */
    rf_rules_info info;
} rules_impl;

static const rf_param_def rules_defs[] = {
    {"min_support", RF_P_DOUBLE, offsetof(rules_params, min_support), 0.0001, 0, 1, NULL,
     "minimum support of an itemset (share of baskets)"},
    {"min_count", RF_P_INT, offsetof(rules_params, min_count), 2, 1, 1e9, NULL,
     "minimum number of baskets of an itemset (the larger of the two thresholds applies)"},
    {"min_confidence", RF_P_DOUBLE, offsetof(rules_params, min_confidence), 0.01, 0, 1, NULL,
     "minimum confidence of a rule"},
    {"min_lift", RF_P_DOUBLE, offsetof(rules_params, min_lift), 1, 0, 1e9, NULL,
     "minimum lift of a rule"},
    {"max_len", RF_P_INT, offsetof(rules_params, max_len), 3, 2, 3, NULL,
     "largest itemset mined: 2 (pairs, rules a -> b) or 3 (also rules a,b -> c)"},
    {"session_gap", RF_P_DOUBLE, offsetof(rules_params, session_gap), 30, 0, 1e7, NULL,
     "minutes between two events of a user that start a new basket"},
    {"basket_events", RF_P_ENUM, offsetof(rules_params, basket_events), BE_AUTO, 0, 3,
     "auto,purchase,cart,all",
     "events forming baskets: purchases (auto: if the log has any, else all), cart+purchase, "
     "or every type with a nonzero weight"},
    {"agg", RF_P_ENUM, offsetof(rules_params, agg), AGG_MAX, 0, 1, "max,sum",
     "how the confidence*lift of the rules concluding an item combine"},
    {"max_context", RF_P_INT, offsetof(rules_params, max_context), 20, 1, 10000, NULL,
     "most items of the last basket used as antecedents"},
    {"max_rules", RF_P_INT, offsetof(rules_params, max_rules), 100, 1, 1e9, NULL,
     "strongest rules kept per antecedent"},
    {"max_basket", RF_P_INT, offsetof(rules_params, max_basket), 50, 2, 1e9, NULL,
     "a basket closes after this many events (bulk sessions are cut into baskets)"},
    {"max_itemsets", RF_P_INT, offsetof(rules_params, max_itemsets), 2000000, 1000, 2e9, NULL,
     "most frequent itemsets; the count threshold is doubled until they fit"},
    {0},
};

static int rules_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(rules_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "rules: out of memory");
    return 0;
}

static void impl_clear(rules_impl *p) {
    rf_free(p->rules);
    rf_free(p->rscore);
    rf_free(p->off);
    rf_free(p->pop);
    rf_free(p->last_ptr);
    rf_free(p->last);
    memset(p, 0, sizeof *p);
}

static void rules_destroy(rf_model *m) {
    rules_impl *p = m->impl;
    if (!p) return;
    impl_clear(p);
    rf_free(p);
    m->impl = NULL;
}

static const char *rules_check(const void *params) {
    const rules_params *p = params;
    if (p->max_len < 2 || p->max_len > 3) return "max_len must be 2 or 3";
    return NULL;
}

/* Strength order within one antecedent. */
static int cmp_strength(const void *pa, const void *pb) {
    const rf_rule *a = pa, *b = pb;
    double sa = a->confidence * a->lift, sb = b->confidence * b->lift;
    if (sa != sb) return sa > sb ? -1 : 1;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return (a->cons > b->cons) - (a->cons < b->cons);
}

/* Keep the max_rules strongest rules of each antecedent, strongest first.
 * r is in (ante, cons) order; compacts in place and returns the new count. */
static int64_t prune(rf_rule *r, int64_t n, int max_rules) {
    int64_t w = 0;
    for (int64_t a = 0; a < n;) {
        int64_t e = a;
        while (e < n && r[e].ante[0] == r[a].ante[0] && r[e].ante[1] == r[a].ante[1]) e++;
        qsort(r + a, (size_t)(e - a), sizeof *r, cmp_strength);
        int64_t keep = e - a < max_rules ? e - a : max_rules;
        memmove(r + w, r + a, (size_t)keep * sizeof *r);
        w += keep;
        a = e;
    }
    return w;
}

/* Offsets by first antecedent item and rule scores. */
static int index_rules(rules_impl *p, int32_t n_items) {
    p->off = rf_calloc((size_t)n_items + 2, sizeof *p->off);
    p->rscore = rf_malloc_array((size_t)p->n_rules + 1, sizeof *p->rscore);
    if (!p->off || !p->rscore) return RF_ENOMEM;
    for (int64_t q = 0; q < p->n_rules; q++) {
        p->off[p->rules[q].ante[0] + 1]++;
        p->rscore[q] = (float)(p->rules[q].confidence * p->rules[q].lift);
    }
    for (int32_t a = 0; a < n_items; a++) p->off[a + 1] += p->off[a];
    return 0;
}

typedef struct tsitem {
    int64_t ts;
    int32_t item;
    float w;
} tsitem;

static int cmp_ts_desc(const void *pa, const void *pb) {
    const tsitem *a = pa, *b = pb;
    if (a->ts != b->ts) return a->ts > b->ts ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

static int cmp_w_desc(const void *pa, const void *pb) {
    const tsitem *a = pa, *b = pb;
    if (a->w != b->w) return a->w > b->w ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The last session of a time-sorted (newest first) list: the items while
 * consecutive gaps are <= gap, at most max_ctx. Returns the count. */
static int32_t last_session(const tsitem *s, int32_t n, int64_t gap, int max_ctx) {
    int32_t k = 0;
    while (k < n && k < max_ctx && (k == 0 || s[k - 1].ts - s[k].ts <= gap)) k++;
    return k;
}

/* Last baskets of the training users from the dataset (pairs at their
 * last event time). */
static int fit_last_baskets(rules_impl *p, const rf_dataset *d, int64_t gap, int max_ctx) {
    const rf_csr *ui = d->ui;
    int64_t longest = 0;
    for (int32_t u = 0; u < d->n_users; u++)
        if (rf_csr_row_len(ui, u) > longest) longest = rf_csr_row_len(ui, u);
    tsitem *s = rf_malloc_array((size_t)longest + 1, sizeof *s);
    p->last_ptr = rf_calloc((size_t)d->n_users + 1, sizeof *p->last_ptr);
    int64_t cap = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t l = rf_csr_row_len(ui, u);
        cap += l < max_ctx ? l : max_ctx;
    }
    p->last = rf_malloc_array((size_t)cap + 1, sizeof *p->last);
    if (!s || !p->last_ptr || !p->last) {
        rf_free(s);
        return RF_ENOMEM;
    }
    int64_t w = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int32_t n = 0;
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
            s[n].ts = d->ui_ts ? (int64_t)d->ui_ts[q] : 0;
            s[n].item = ui->indices[q];
            s[n].w = ui->data[q];
            n++;
        }
        qsort(s, (size_t)n, sizeof *s, cmp_ts_desc);
        int32_t k = last_session(s, n, gap, max_ctx);
        for (int32_t x = 0; x < k; x++) p->last[w + x] = s[x].item;
        qsort(p->last + w, (size_t)k, sizeof *p->last, cmp_i32);
        w += k;
        p->last_ptr[u + 1] = w;
    }
    rf_free(s);
    return 0;
}

static unsigned basket_mask(const rules_params *pp, const rf_model *m, const rf_events *ev) {
    int be = pp->basket_events;
    if (be == BE_AUTO) {
        be = BE_ALL;
        for (int64_t i = 0; i < ev->n; i++)
            if (ev->type[i] == RF_EV_PURCHASE) {
                be = BE_PURCHASE;
                break;
            }
    }
    if (be == BE_PURCHASE) return 1u << RF_EV_PURCHASE;
    if (be == BE_CART) return (1u << RF_EV_PURCHASE) | (1u << RF_EV_CART);
    unsigned mask = 0;
    for (int t = 0; t < RF_EV_NTYPES; t++)
        if (m->data_opts.type_weight[t] != 0) mask |= 1u << t;
    return mask;
}

static int rules_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const rules_params *pp = m->params;
    rules_impl *p = m->impl;
    impl_clear(p);
    const int64_t gap = (int64_t)llround(pp->session_gap * 60.0);
    rf_baskets *b = NULL;
    rf_itemsets *sets = NULL;
    int rc;
    p->pop = rf_malloc_array((size_t)d->n_items + 1, sizeof *p->pop);
    if (!p->pop) goto nomem;
    for (int32_t i = 0; i < d->n_items; i++) {
        p->pop[i] = (float)rf_csr_row_len(d->iu, i);
        if (p->pop[i] > p->pop_max) p->pop_max = p->pop[i];
    }
    if (d->events) {
        if (d->events->items != d->items || d->events->users != d->users) {
            rc = rf_err_set(err, RF_EINVAL,
                            "rules: the dataset's event log must share the dataset's id maps");
            goto fail;
        }
        p->info.basket_types = (int)basket_mask(pp, m, d->events);
        rc = rf_baskets_from_events(d->events, (unsigned)p->info.basket_types, gap, pp->max_basket,
                                    &b, err);
    } else {
        p->info.basket_types = 0;
        rf_log(RF_LOG_INFO, "rules.baskets", "source=dataset reason=\"no event log in the dataset\"");
        rc = rf_baskets_from_dataset(d, gap, pp->max_basket, &b, err);
    }
    if (rc) goto fail;
    int64_t minc = (int64_t)ceil(pp->min_support * (double)b->n - 1e-9);
    if (minc < pp->min_count) minc = pp->min_count;
    if (minc < 1) minc = 1;
    const int64_t minc0 = minc;
    for (;;) {
        rc = rf_fpgrowth(b, d->n_items, minc, pp->max_len, pp->max_itemsets, &sets, err);
        if (rc != RF_ETOOBIG || minc > b->n) break;
        rf_log(RF_LOG_DEBUG, "rules.threshold",
               "min_count=%lld next=%lld max_itemsets=%d msg=\"too many frequent itemsets\"",
               (long long)minc, (long long)(2 * minc), pp->max_itemsets);
        minc *= 2;
    }
    /* An automatic, expected adjustment on dense data: one line, not a
     * warning per doubling. */
    if (rc == 0 && minc != minc0)
        rf_log(RF_LOG_INFO, "rules.threshold",
               "min_count=%lld raised_to=%lld max_itemsets=%d msg=\"more frequent itemsets than "
               "max_itemsets at the configured support; threshold raised\"",
               (long long)minc0, (long long)minc, pp->max_itemsets);
    if (rc) goto fail;
    p->info.n_baskets = b->n;
    p->info.min_count = minc;
    for (int64_t q = 0; q < sets->n; q++) p->info.n_frequent[sets->sets[q].len - 1]++;
    if ((rc = rf_rules_from_itemsets(sets, pp->min_confidence, pp->min_lift, &p->rules,
                                     &p->n_rules, err)))
        goto fail;
    p->n_rules = prune(p->rules, p->n_rules, pp->max_rules);
    p->info.n_rules = p->n_rules;
    if (index_rules(p, d->n_items)) goto nomem;
    if (fit_last_baskets(p, d, gap, pp->max_context)) goto nomem;
    rf_log(RF_LOG_INFO, "rules.fit",
           "baskets=%lld min_count=%lld items=%lld pairs=%lld triples=%lld rules=%lld",
           (long long)b->n, (long long)minc, (long long)p->info.n_frequent[0],
           (long long)p->info.n_frequent[1], (long long)p->info.n_frequent[2],
           (long long)p->n_rules);
    rf_baskets_free(b);
    rf_itemsets_free(sets);
    return 0;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "rules: out of memory");
fail:
    rf_baskets_free(b);
    rf_itemsets_free(sets);
    impl_clear(p);
    return rc;
}

/* Rules of antecedent (a, b) (b = -1 for a alone): [*lo, *hi). */
static void rules_of(const rules_impl *p, int32_t a, int32_t b, int64_t *lo, int64_t *hi) {
    int64_t l = p->off[a], h = p->off[a + 1];
    /* first rule with ante[1] >= b */
    int64_t x = l, y = h;
    while (x < y) {
        int64_t mid = x + (y - x) / 2;
        if (p->rules[mid].ante[1] < b) x = mid + 1;
        else y = mid;
    }
    int64_t s = x;
    y = h;
    while (x < y) {
        int64_t mid = x + (y - x) / 2;
        if (p->rules[mid].ante[1] <= b) x = mid + 1;
        else y = mid;
    }
    *lo = s;
    *hi = x;
}

/* Fire the rules of antecedent (a, b) into out (dense) or, when acc is
 * not NULL, into acc (only the consequents): the same updates in the same
 * order either way. */
static void fire(const rules_impl *p, int agg, int32_t a, int32_t b, float *out, rf_sparse *acc) {
    int64_t lo, hi;
    rules_of(p, a, b, &lo, &hi);
    for (int64_t q = lo; q < hi; q++) {
        float s = p->rscore[q];
        int32_t j = p->rules[q].cons;
        float *o = acc ? rf_sparse_at(acc, j) : &out[j];
        if (agg == AGG_SUM) *o += s;
        else if (s > *o) *o = s;
    }
}

/* Fire every rule of the user's last basket (see the top of the file)
 * into out or acc as fire(). */
static int rules_accumulate(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                            rf_sparse *acc, rf_err *err) {
    const rules_params *pp = m->params;
    const rules_impl *p = m->impl;
    const int32_t ni = m->n_items;
    int32_t nctx = 0;
    int32_t *ctx = NULL;
    if (h->n > 0) {
        tsitem *s = rf_malloc_array((size_t)h->n, sizeof *s);
        ctx = rf_malloc_array((size_t)h->n, sizeof *ctx);
        if (!s || !ctx) {
            rf_free(s);
            rf_free(ctx);
            return rf_err_set(err, RF_ENOMEM, "rules: out of memory");
        }
        if (h->ts) {
            for (int32_t k = 0; k < h->n; k++) {
                s[k].ts = h->ts[k];
                s[k].item = h->items[k];
                s[k].w = 0;
            }
            qsort(s, (size_t)h->n, sizeof *s, cmp_ts_desc);
            nctx = last_session(s, h->n, (int64_t)llround(pp->session_gap * 60.0), pp->max_context);
            for (int32_t k = 0; k < nctx; k++) ctx[k] = s[k].item;
        } else if (user >= 0 && user < m->n_users && p->last_ptr) {
            int64_t lo = p->last_ptr[user], hi = p->last_ptr[user + 1];
            nctx = (int32_t)(hi - lo);
            if (nctx > h->n) { /* the stored basket is never longer than the history */
                rf_free(ctx);
                ctx = rf_malloc_array((size_t)nctx, sizeof *ctx);
                if (!ctx) {
                    rf_free(s);
                    return rf_err_set(err, RF_ENOMEM, "rules: out of memory");
                }
            }
            memcpy(ctx, p->last + lo, (size_t)nctx * sizeof *ctx);
        } else {
            for (int32_t k = 0; k < h->n; k++) {
                s[k].ts = 0;
                s[k].item = h->items[k];
                s[k].w = h->weights ? h->weights[k] : 1.0f;
            }
            qsort(s, (size_t)h->n, sizeof *s, cmp_w_desc);
            nctx = h->n < pp->max_context ? h->n : pp->max_context;
            for (int32_t k = 0; k < nctx; k++) ctx[k] = s[k].item;
        }
        rf_free(s);
        /* ascending and distinct, only ids the model knows */
        qsort(ctx, (size_t)nctx, sizeof *ctx, cmp_i32);
        int32_t w = 0;
        for (int32_t k = 0; k < nctx; k++)
            if (ctx[k] >= 0 && ctx[k] < ni && (w == 0 || ctx[k] != ctx[w - 1])) ctx[w++] = ctx[k];
        nctx = w;
    }
    if (p->n_rules > 0)
        for (int32_t i = 0; i < nctx; i++) {
            fire(p, pp->agg, ctx[i], -1, out, acc);
            for (int32_t k = i + 1; k < nctx; k++) fire(p, pp->agg, ctx[i], ctx[k], out, acc);
        }
    rf_free(ctx);
    return 0;
}

/* An item's score from its accumulated rule score r. */
static inline float rules_final(const rules_impl *p, float r, int32_t j) {
    return r > 0 ? 1.0f + r : p->pop[j] / (p->pop_max + 1.0f);
}

static int rules_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                           rf_err *err) {
    const rules_impl *p = m->impl;
    memset(out, 0, (size_t)m->n_items * sizeof *out);
    int rc = rules_accumulate(m, user, h, out, NULL, err);
    if (rc) return rc;
    for (int32_t j = 0; j < m->n_items; j++) out[j] = rules_final(p, out[j], j);
    return 0;
}

static int rules_score_sparse(const rf_model *m, int32_t user, const rf_hist *h, rf_sparse *acc,
                              rf_err *err) {
    const rules_impl *p = m->impl;
    int rc = rules_accumulate(m, user, h, NULL, acc, err);
    if (rc) return rc;
    for (int32_t t = 0; t < acc->n; t++) {
        int32_t j = acc->touched[t];
        acc->val[j] = rules_final(p, acc->val[j], j);
    }
    return 0;
}

/* ---- file ---------------------------------------------------------------- */

static int rules_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const rules_impl *p = m->impl;
    int rc = rf_writer_i64(w, m->n_items);
    rc |= rf_writer_i64(w, m->n_users);
    rc |= rf_writer_i64(w, p->n_rules);
    rc |= rf_writer_i64(w, p->info.n_baskets);
    rc |= rf_writer_i64(w, p->info.min_count);
    for (int k = 0; k < 3; k++) rc |= rf_writer_i64(w, p->info.n_frequent[k]);
    rc |= rf_writer_u32(w, (uint32_t)p->info.basket_types);
    rc |= rf_writer_put(w, p->pop, (size_t)m->n_items * sizeof *p->pop);
    for (int64_t q = 0; q < p->n_rules && rc == 0; q++) {
        const rf_rule *r = &p->rules[q];
        rc |= rf_writer_put(w, r->ante, sizeof r->ante);
        rc |= rf_writer_put(w, &r->cons, sizeof r->cons);
        rc |= rf_writer_i64(w, r->count);
        rc |= rf_writer_f64(w, r->support);
        rc |= rf_writer_f64(w, r->confidence);
        rc |= rf_writer_f64(w, r->lift);
    }
    rc |= rf_writer_put(w, p->last_ptr, ((size_t)m->n_users + 1) * sizeof *p->last_ptr);
    rc |= rf_writer_put(w, p->last, (size_t)p->last_ptr[m->n_users] * sizeof *p->last);
    return rc ? rf_err_set(err, RF_EIO, "rules: write failed") : 0;
}

#define RULE_BYTES 44 /* 3 x i32 + i64 + 3 x f64 */

static int rules_load(rf_model *m, rf_reader *r, rf_err *err) {
    rules_impl *p = m->impl;
    impl_clear(p);
    int64_t ni, nu, nr;
    uint32_t bt;
    int rc;
    if ((rc = rf_reader_i64(r, &ni, err)) || (rc = rf_reader_i64(r, &nu, err)) ||
        (rc = rf_reader_i64(r, &nr, err)) || (rc = rf_reader_i64(r, &p->info.n_baskets, err)) ||
        (rc = rf_reader_i64(r, &p->info.min_count, err)))
        return rc;
    for (int k = 0; k < 3; k++)
        if ((rc = rf_reader_i64(r, &p->info.n_frequent[k], err))) return rc;
    if ((rc = rf_reader_u32(r, &bt, err))) return rc;
    p->info.basket_types = (int)bt;
    int64_t rem = rf_reader_remaining(r);
    if (ni != m->n_items || nu != m->n_users || nr < 0 || nr > rem / RULE_BYTES ||
        ni * 4 > rem || (nu + 1) * 8 > rem)
        return rf_err_set(err, RF_EFORMAT, "rules: payload sizes disagree (%lld items, %lld users, "
                                           "%lld rules)",
                          (long long)ni, (long long)nu, (long long)nr);
    p->pop = rf_malloc_array((size_t)ni + 1, sizeof *p->pop);
    p->rules = rf_malloc_array((size_t)nr + 1, sizeof *p->rules);
    p->last_ptr = rf_malloc_array((size_t)nu + 1, sizeof *p->last_ptr);
    if (!p->pop || !p->rules || !p->last_ptr) goto nomem;
    if ((rc = rf_reader_get(r, p->pop, (size_t)ni * sizeof *p->pop, err))) goto fail;
    p->pop_max = 0;
    for (int64_t i = 0; i < ni; i++) {
        if (!isfinite(p->pop[i]) || p->pop[i] < 0) goto bad;
        if (p->pop[i] > p->pop_max) p->pop_max = p->pop[i];
    }
    for (int64_t q = 0; q < nr; q++) {
        rf_rule *x = &p->rules[q];
        if ((rc = rf_reader_get(r, x->ante, sizeof x->ante, err)) ||
            (rc = rf_reader_get(r, &x->cons, sizeof x->cons, err)) ||
            (rc = rf_reader_i64(r, &x->count, err)) || (rc = rf_reader_f64(r, &x->support, err)) ||
            (rc = rf_reader_f64(r, &x->confidence, err)) || (rc = rf_reader_f64(r, &x->lift, err)))
            goto fail;
        if (x->ante[0] < 0 || x->ante[0] >= ni || x->ante[1] < -1 || x->ante[1] >= ni ||
            (x->ante[1] >= 0 && x->ante[1] <= x->ante[0]) || x->cons < 0 || x->cons >= ni ||
            x->count < 1 || !(x->confidence > 0) || !(x->lift > 0) || !isfinite(x->lift) ||
            !isfinite(x->support))
            goto bad;
        if (q > 0 && (x->ante[0] < p->rules[q - 1].ante[0] ||
                      (x->ante[0] == p->rules[q - 1].ante[0] && x->ante[1] < p->rules[q - 1].ante[1])))
            goto bad;
    }
    p->n_rules = nr;
    if ((rc = rf_reader_get(r, p->last_ptr, ((size_t)nu + 1) * sizeof *p->last_ptr, err))) goto fail;
    if (p->last_ptr[0] != 0) goto bad;
    for (int64_t u = 0; u < nu; u++)
        if (p->last_ptr[u + 1] < p->last_ptr[u]) goto bad;
    int64_t nl = p->last_ptr[nu];
    if (nl < 0 || nl * 4 > rf_reader_remaining(r)) goto bad;
    p->last = rf_malloc_array((size_t)nl + 1, sizeof *p->last);
    if (!p->last) goto nomem;
    if ((rc = rf_reader_get(r, p->last, (size_t)nl * sizeof *p->last, err))) goto fail;
    for (int64_t q = 0; q < nl; q++)
        if (p->last[q] < 0 || p->last[q] >= ni) goto bad;
    if (index_rules(p, (int32_t)ni)) goto nomem;
    p->info.n_rules = nr;
    return 0;
bad:
    rc = rf_err_set(err, RF_EFORMAT, "rules: inconsistent payload");
    goto fail;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "rules: out of memory");
fail:
    impl_clear(p);
    return rc;
}

const rf_model_ops rf_model_rules_ops = {
    .name = "rules",
    .help = "association rules (FP-Growth over session baskets) fired by the last basket",
    .params = rules_defs,
    .params_size = sizeof(rules_params),
    .create = rules_create,
    .fit = rules_fit,
    .score_all = rules_score_all,
    .save = rules_save,
    .load = rules_load,
    .destroy = rules_destroy,
    .params_check = rules_check,
    .score_sparse = rules_score_sparse,
};

/* ---- public access ---------------------------------------------------------- */

int rf_rules_model_info(const rf_model *m, rf_rules_info *info, rf_err *err) {
    if (!m || m->ops != &rf_model_rules_ops || !m->fitted)
        return rf_err_set(err, RF_EINVAL, "not a fitted rules model");
    *info = ((const rules_impl *)m->impl)->info;
    return 0;
}

int rf_rules_model_list(const rf_model *m, int32_t item, rf_rules_order by, rf_rule **out,
                        int64_t *n, rf_err *err) {
    *out = NULL;
    *n = 0;
    if (!m || m->ops != &rf_model_rules_ops || !m->fitted)
        return rf_err_set(err, RF_EINVAL, "not a fitted rules model");
    const rules_impl *p = m->impl;
    int64_t k = 0;
    for (int64_t q = 0; q < p->n_rules; q++)
        k += item < 0 || p->rules[q].ante[0] == item || p->rules[q].ante[1] == item;
    if (k == 0) return 0;
    rf_rule *r = rf_malloc_array((size_t)k, sizeof *r);
    if (!r) return rf_err_set(err, RF_ENOMEM, "rules: out of memory");
    k = 0;
    for (int64_t q = 0; q < p->n_rules; q++)
        if (item < 0 || p->rules[q].ante[0] == item || p->rules[q].ante[1] == item)
            r[k++] = p->rules[q];
    rf_rules_sort(r, k, by);
    *out = r;
    *n = k;
    return 0;
}
