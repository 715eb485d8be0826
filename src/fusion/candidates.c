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
 * DESIGN: the union is a sorted merge of the (small) lists rather than a
 * per-item stamp array, so a request touches O(sum of N) memory beyond
 * the score vectors, whatever the catalog size. */
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
    if (!c->sc || !c->top || !c->items || !c->rank) {
        fu_cands_free(c);
        return RF_ENOMEM;
    }
    return 0;
}

void fu_cands_free(fu_cands *c) {
    if (!c) return;
    rf_free(c->sc);
    rf_free(c->top);
    rf_free(c->items);
    rf_free(c->rank);
    memset(c, 0, sizeof *c);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
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

int fu_cands_build(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h, rf_err *err) {
    const size_t ni = (size_t)c->n_items;
    c->n = 0;
    for (int k = 0; k < f->n_ch; k++) {
        float *s = c->sc + (size_t)k * ni;
        int rc = rf_model_score_all(f->ch[k], user, h, s, err);
        if (rc) return rc;
        for (int32_t t = 0; t < h->n; t++)
            if (h->items[t] >= 0 && (size_t)h->items[t] < ni) s[h->items[t]] = -INFINITY;
        rf_scored *top = c->top + (size_t)k * (size_t)c->max_cand;
        c->n_top[k] = rf_topk_select(s, c->n_items, f->cand[k], NULL, top);
        c->hi[k] = c->n_top[k] > 0 ? top[0].score : 0;
        c->lo[k] = c->n_top[k] > 0 ? top[c->n_top[k] - 1].score : 0;
        for (int t = 0; t < c->n_top[k]; t++) c->items[c->n++] = top[t].id;
    }
    qsort(c->items, (size_t)c->n, sizeof *c->items, cmp_i32);
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
    }
    return 0;
}

float fu_norm(const fu_cands *c, int k, int32_t j) {
    float s = c->sc[(size_t)k * (size_t)c->n_items + (size_t)j];
    if (!isfinite(s)) return NAN;
    float span = c->hi[k] - c->lo[k];
    if (!(span > 1e-12f)) return s >= c->hi[k] ? 1.0f : 0.0f;
    return (s - c->lo[k]) / span;
}
