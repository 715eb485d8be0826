/* candidates.c - multi-channel candidate generation for the fused model.
 *
 * Every channel scores the whole catalog for the user (its own
 * score_all, so kNN, factor and content models all speak through the
 * model interface), the user's history items are set to -INFINITY, and
 * the channel's best cand[c] items are its candidates. The union of the
 * channels' lists is the candidate set; every channel's score is known
 * for every candidate (the full vectors are at hand), its rank only when
 * the channel proposed it.
 *
 * Factor channels (ials: rf_factors_get accepts them) skip the catalog
 * pass: the norm order of their items is built once per model
 * (fu_fixed_init, rf_factors_index), the channel's top-N is the exact
 * pruned scan (rf_factors_topk_pruned, history masked), and only the
 * union's items are scored (rf_factors_score_items) - the same floats as
 * score_all, so the candidates, features and final scores equal the full
 * path's (fu_impl.full_scan forces it; test_fusion_prune checks). A user
 * without a vector (no trained row, nothing to fold in) takes the full
 * path: score_all's popularity fallback.
 *
 * DESIGN: the union is a sorted merge of the (small) lists rather than a
 * per-item stamp array, so a request touches O(sum of N) memory beyond
 * the score vectors, whatever the catalog size. Channels whose scores do
 * not depend on the user (pop, trending) are scored once: their vector
 * and the catalog sorted by it are kept, and a request walks that order
 * past the user's history items - no per-request pass over the catalog. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"

int fu_cands_init(fu_cands *c, const fu_impl *f, int32_t n_items) {
    memset(c, 0, sizeof *c);
    c->n_ch = f->n_ch;
    c->n_items = n_items;
    int tot = 0;
    for (int k = 0; k < f->n_ch; k++) {
        if (f->cand[k] > c->max_cand) c->max_cand = f->cand[k];
        tot += f->cand[k];
    }
    c->cap = tot > 0 ? tot : 1;
    c->sc = rf_malloc_array((size_t)f->n_ch * (size_t)(n_items ? n_items : 1), sizeof *c->sc);
    c->top = rf_malloc_array((size_t)f->n_ch * (size_t)(c->max_cand ? c->max_cand : 1),
                             sizeof *c->top);
    c->items = rf_malloc_array((size_t)c->cap, sizeof *c->items);
    c->rank = rf_malloc_array((size_t)f->n_ch * (size_t)c->cap, sizeof *c->rank);
    c->hmask = rf_calloc((size_t)(n_items ? n_items : 1), 1);
    for (int k = 0; k < f->n_ch; k++)
        if (f->fix[k].perm && f->fac[k].ld > c->ld_max) c->ld_max = f->fac[k].ld;
    c->vec = rf_malloc_array((size_t)f->n_ch * (size_t)(c->ld_max ? c->ld_max : 1),
                             sizeof *c->vec);
    if (!c->sc || !c->top || !c->items || !c->rank || !c->hmask || !c->vec) {
        fu_cands_free(c);
        return RF_ENOMEM;
    }
    return 0;
}

static int is_fixed(int kind) { return kind == FU_POP || kind == FU_TRENDING; }

typedef struct sidx {
    float s;
    int32_t i;
} sidx;

static int cmp_sidx(const void *a, const void *b) {
    const sidx *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

void fu_fixed_free(fu_impl *f) {
    for (int k = 0; k < FU_MAX_CH; k++) {
        rf_free(f->fixed[k]);
        rf_free(f->fixed_order[k]);
        rf_factor_index_free(&f->fix[k]);
        f->fixed[k] = NULL;
        f->fixed_order[k] = NULL;
    }
}

int fu_fixed_init(fu_impl *f, int32_t n_items, rf_err *err) {
    fu_fixed_free(f);
    for (int k = 0; k < f->n_ch; k++) {
        /* a factor channel: the norm order of its items */
        if (rf_factors_get(f->ch[k], &f->fac[k], NULL) == 0 && f->ch[k]->ops->fold_in) {
            int rc = rf_factors_index(&f->fac[k], &f->fix[k], err);
            if (rc) {
                fu_fixed_free(f);
                return rc;
            }
        }
        if (!is_fixed(f->kind[k])) continue;
        float *v = rf_malloc_array((size_t)(n_items ? n_items : 1), sizeof *v);
        int32_t *o = rf_malloc_array((size_t)(n_items ? n_items : 1), sizeof *o);
        sidx *t = rf_malloc_array((size_t)(n_items ? n_items : 1), sizeof *t);
        int rc = v && o && t ? rf_model_score_all(f->ch[k], -1, NULL, v, err)
                             : rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
        if (rc == 0) {
            int32_t m = 0;
            for (int32_t i = 0; i < n_items; i++)
                if (v[i] > -INFINITY && !isnan(v[i])) t[m++] = (sidx){v[i], i};
            qsort(t, (size_t)m, sizeof *t, cmp_sidx);
            for (int32_t i = 0; i < m; i++) o[i] = t[i].i;
            for (int32_t i = m; i < n_items; i++) o[i] = -1;
        }
        rf_free(t);
        f->fixed[k] = v;
        f->fixed_order[k] = o;
        if (rc) {
            fu_fixed_free(f);
            return rc;
        }
    }
    return 0;
}

/* 1 if item j is in the history (items ascending when `sorted`). */
static int in_hist(const rf_hist *h, int sorted, int32_t j) {
    if (!sorted) {
        for (int32_t t = 0; t < h->n; t++)
            if (h->items[t] == j) return 1;
        return 0;
    }
    int32_t lo = 0, hi = h->n - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        if (h->items[mid] == j) return 1;
        if (h->items[mid] < j) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

void fu_cands_free(fu_cands *c) {
    if (!c) return;
    rf_free(c->sc);
    rf_free(c->top);
    rf_free(c->items);
    rf_free(c->rank);
    rf_free(c->hmask);
    rf_free(c->vec);
    memset(c, 0, sizeof *c);
}

/* Index of item j in the sorted union, or -1. */
static int32_t find(const fu_cands *c, int32_t j) {
    int32_t lo = 0, hi = c->n - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        if (c->items[mid] == j) return mid;
        if (c->items[mid] < j) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Score items[0..n) in factor channel k's row (history items, marked in
 * c->hmask, get -INFINITY; ids outside the catalog are skipped). */
static void extend(fu_cands *c, const fu_impl *f, int k, const int32_t *items, int32_t n) {
    float *s = c->sc + (size_t)k * (size_t)c->n_items;
    const float *v = c->vec + (size_t)k * (size_t)c->ld_max;
    for (int32_t t = 0; t < n; t++) {
        int32_t j = items[t];
        if (j < 0 || j >= c->n_items) continue;
        if (c->hmask[j]) s[j] = -INFINITY;
        else rf_factors_score_items(&f->fac[k], v, &j, 1, &s[j]);
    }
}

/* Set (on = 1) or clear the history items in c->hmask. */
static void mark_hist(fu_cands *c, const rf_hist *h, uint8_t on) {
    for (int32_t t = 0; t < h->n; t++)
        if (h->items[t] >= 0 && h->items[t] < c->n_items) c->hmask[h->items[t]] = on;
}

/* Channel k's top-N by the pruned scan when it is a factor channel and the
 * user has a vector: 1 done, 0 take the full path, < 0 error. */
static int pruned_top(fu_cands *c, const fu_impl *f, int k, int32_t user, const rf_hist *h,
                      rf_scored *top, rf_err *err) {
    if (!f->fix[k].perm || f->full_scan) return 0;
    float *v = c->vec + (size_t)k * (size_t)c->ld_max;
    int rc = rf_factors_user_vector(f->ch[k], &f->fac[k], user, h, v, err);
    if (rc <= 0) return rc;
    c->n_top[k] = rf_factors_topk_pruned(&f->fac[k], &f->fix[k], v,
                                         c->hmask, f->cand[k], top, NULL);
    c->full[k] = 0;
    return 1;
}

static int build(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h, rf_err *err) {
    const size_t ni = (size_t)c->n_items;
    c->n = 0;
    int sorted = 1;
    for (int32_t t = 1; t < h->n && sorted; t++) sorted = h->items[t] > h->items[t - 1];
    for (int k = 0; k < f->n_ch; k++) {
        rf_scored *top = c->top + (size_t)k * (size_t)c->max_cand;
        float *s = c->sc + (size_t)k * ni;
        c->full[k] = 1;
        int pr = 0;
        if (f->fixed[k]) { /* user-independent: walk the precomputed order */
            const int32_t *o = f->fixed_order[k];
            int nt = 0;
            for (int32_t q = 0; q < c->n_items && nt < f->cand[k] && o[q] >= 0; q++)
                if (!in_hist(h, sorted, o[q])) top[nt++] = (rf_scored){f->fixed[k][o[q]], o[q]};
            c->n_top[k] = nt;
            c->scp[k] = f->fixed[k];
        } else if ((pr = pruned_top(c, f, k, user, h, top, err)) != 0) {
            if (pr < 0) return pr;
            c->scp[k] = s; /* the union's scores come after the merge */
        } else {
            int rc = rf_model_score_all(f->ch[k], user, h, s, err);
            if (rc) return rc;
            for (int32_t t = 0; t < h->n; t++)
                if (h->items[t] >= 0 && (size_t)h->items[t] < ni) s[h->items[t]] = -INFINITY;
            c->n_top[k] = rf_topk_select(s, c->n_items, f->cand[k], NULL, top);
            c->scp[k] = s;
        }
        c->hi[k] = c->n_top[k] > 0 ? top[0].score : 0;
        c->lo[k] = c->n_top[k] > 0 ? top[c->n_top[k] - 1].score : 0;
        for (int t = 0; t < c->n_top[k]; t++) c->items[c->n++] = top[t].id;
    }
    qsort(c->items, (size_t)c->n, sizeof *c->items, fu_cmp_i32);
    int32_t u = 0;
    for (int32_t t = 0; t < c->n; t++)
        if (t == 0 || c->items[t] != c->items[t - 1]) c->items[u++] = c->items[t];
    c->n = u;
    memset(c->rank, 0, (size_t)f->n_ch * (size_t)c->cap * sizeof *c->rank);
    for (int k = 0; k < f->n_ch; k++) {
        const rf_scored *top = c->top + (size_t)k * (size_t)c->max_cand;
        for (int t = 0; t < c->n_top[k]; t++) {
            int32_t at = find(c, top[t].id);
            if (at >= 0) c->rank[(size_t)k * (size_t)c->cap + (size_t)at] = t + 1;
        }
        if (!c->full[k]) extend(c, f, k, c->items, c->n);
    }
    return 0;
}

int fu_cands_build(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h, rf_err *err) {
    mark_hist(c, h, 1);
    int rc = build(c, f, user, h, err);
    mark_hist(c, h, 0);
    return rc;
}

void fu_cands_extend(fu_cands *c, const fu_impl *f, const rf_hist *h, int k, const int32_t *items,
                     int32_t n) {
    if (c->full[k]) return;
    mark_hist(c, h, 1);
    if (items) {
        extend(c, f, k, items, n);
    } else {
        float *s = c->sc + (size_t)k * (size_t)c->n_items;
        rf_factors_score_all(&f->fac[k], c->vec + (size_t)k * (size_t)c->ld_max, s);
        for (int32_t j = 0; j < c->n_items; j++)
            if (c->hmask[j]) s[j] = -INFINITY;
        c->full[k] = 1;
    }
    mark_hist(c, h, 0);
}
