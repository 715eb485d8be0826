/* candidates.c - multi-channel candidate generation for the fused model.
 *
 * Every channel proposes its best cand[c] items for the user, never one
 * of the user's history; the union of the channels' lists is the
 * candidate set, with every channel's score of every candidate and its
 * rank in the channels that proposed it. How a channel finds its list
 * depends on what it is:
 *   - user-independent channels (pop, trending) are scored once per model
 *     (fu_fixed_init): their vector and the catalog sorted by it are kept,
 *     and a request walks that order past the history items;
 *   - sparse channels (itemknn, userknn, rules: the models with a
 *     score_sparse op, model.h) accumulate the scores of the items the
 *     history reaches into a scratch accumulator (sparse.h); every other
 *     item scores the model's user-independent fallback, whose order is
 *     kept like a fixed channel's. The top-N is the best of the reached
 *     items and the first N unreached ones of that order - exactly the
 *     top-N of score_all - and the union's scores are looked up;
 *   - factor channels (ials: rf_factors_get accepts them) take the exact
 *     pruned scan (rf_factors_topk_pruned over the norm order built by
 *     fu_fixed_init, history masked) and score only the union's items
 *     (rf_factors_score_items); a user without a vector (no trained row,
 *     nothing to fold in) takes the full path: score_all's fallback;
 *   - anything else scores the catalog (score_all) and selects its top-N.
 * The sparse and pruned paths give the same floats as score_all, so the
 * candidates, features and final scores equal the full path's
 * (fu_impl.full_scan forces the full path everywhere; test_fusion_prune
 * checks both for every default channel).
 *
 * Repeat purchases (fu_cands_build_hist, rf_filter.allow_history): the
 * history items the caller lets through join the union after the
 * channels' lists are made - the lists stay those of fu_cands_build (a
 * channel never proposes a history item), so every other candidate keeps
 * its ranks, normalisation and feature row, and the joining items are
 * scored like any candidate no channel proposed (hmask FU_HIST_CAND: the
 * rows score them instead of -INFINITY).
 *
 * DESIGN: the union is the lists' items set in a bit array (a bit per
 * catalog item, 12.5 kB for 100k items, cleared as it is read back in
 * ascending order), so a request touches O(sum of N) memory beyond what
 * the channels reach and sorts nothing; a channel row of c->sc holds only
 * the union's scores until fu_cands_extend fills more. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/sparse.h"

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
    c->ubits = rf_calloc(((size_t)n_items + 63) / 64 + 1, sizeof *c->ubits);
    for (int k = 0; k < f->n_ch; k++)
        if (f->fix[k].perm && f->fac[k].ld > c->ld_max) c->ld_max = f->fac[k].ld;
    c->vec = rf_malloc_array((size_t)f->n_ch * (size_t)(c->ld_max ? c->ld_max : 1),
                             sizeof *c->vec);
    if (!c->sc || !c->top || !c->items || !c->rank || !c->hmask || !c->ubits || !c->vec) {
        fu_cands_free(c);
        return RF_ENOMEM;
    }
    for (int k = 0; k < f->n_ch; k++)
        if (f->sparse[k] && rf_sparse_init(&c->sp[k], n_items)) {
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
    memset(f->sparse, 0, sizeof f->sparse);
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
        /* a sparse channel: the order of its fallback, score_all(-1, empty) */
        f->sparse[k] = !is_fixed(f->kind[k]) && f->ch[k]->ops->score_sparse != NULL;
        if (!is_fixed(f->kind[k]) && !f->sparse[k]) continue;
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

int fu_cands_reserve(fu_cands *c, int32_t cap) {
    if (cap <= c->cap) return 0;
    int32_t *items = rf_realloc_array(c->items, (size_t)cap, sizeof *items);
    if (!items) return RF_ENOMEM;
    c->items = items;
    int32_t *rank = rf_realloc_array(c->rank, (size_t)c->n_ch * (size_t)cap, sizeof *rank);
    if (!rank) return RF_ENOMEM;
    c->rank = rank;
    c->cap = cap;
    return 0;
}

void fu_cands_free(fu_cands *c) {
    if (!c) return;
    rf_free(c->sc);
    rf_free(c->top);
    rf_free(c->items);
    rf_free(c->rank);
    rf_free(c->hmask);
    rf_free(c->ubits);
    rf_free(c->vec);
    for (int k = 0; k < FU_MAX_CH; k++) rf_sparse_free(&c->sp[k]);
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

/* Score items[0..n) in channel k's row, a pruned or sparse channel, as
 * score_all does (history items marked FU_HIST in c->hmask get -INFINITY;
 * ids outside the catalog are skipped): a sparse channel's from its
 * accumulator or fallback, a factor channel's by the item kernel in
 * blocks. */
static void extend(fu_cands *c, const fu_impl *f, int k, const int32_t *items, int32_t n) {
    float *s = c->sc + (size_t)k * (size_t)c->n_items;
    const rf_sparse *sp = &c->sp[k];
    enum { BLK = 256 };
    int32_t blk[BLK];
    float v[BLK];
    int nb = 0;
    for (int32_t t = 0; t < n; t++) {
        int32_t j = items[t];
        if (j < 0 || j >= c->n_items) continue;
        if (c->hmask[j] == FU_HIST) {
            s[j] = -INFINITY;
        } else if (f->sparse[k]) {
            s[j] = rf_sparse_has(sp, j) ? sp->val[j] : f->fixed[k][j];
        } else { /* the item's row is cold: request it now, score it in the block */
            const char *row = (const char *)(f->fac[k].items + (size_t)j * (size_t)f->fac[k].ld);
            for (size_t o = 0; o < (size_t)f->fac[k].ld * sizeof(float); o += 64)
                __builtin_prefetch(row + o);
            blk[nb++] = j;
        }
        if (nb == BLK || (t == n - 1 && nb > 0)) {
            rf_factors_score_items(&f->fac[k], c->vec + (size_t)k * (size_t)c->ld_max, blk, nb, v);
            for (int q = 0; q < nb; q++) s[blk[q]] = v[q];
            nb = 0;
        }
    }
}

/* Set (on = 1) or clear the history items in c->hmask: FU_HIST, or
 * FU_HIST_CAND for those the build lets join the candidates (c->keep_hist
 * and not c->keep_ex). Returns how many are FU_HIST_CAND. */
static int32_t mark_hist(fu_cands *c, const rf_hist *h, int on) {
    int32_t n = 0;
    for (int32_t t = 0; t < h->n; t++) {
        int32_t j = h->items[t];
        if (j < 0 || j >= c->n_items) continue;
        uint8_t v = 0;
        if (on) v = c->keep_hist && !(c->keep_ex && c->keep_ex[j]) ? FU_HIST_CAND : FU_HIST;
        n += v == FU_HIST_CAND && c->hmask[j] != FU_HIST_CAND; /* once per item */
        c->hmask[j] = v;
    }
    return n;
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

int fu_order_top(const fu_impl *f, int k, int32_t n_items, const uint8_t *skip, int n,
                 rf_scored *out) {
    const int32_t *o = f->fixed_order[k];
    int nt = 0;
    for (int32_t q = 0; q < n_items && nt < n && o[q] >= 0; q++)
        if (!skip || !skip[o[q]]) out[nt++] = (rf_scored){f->fixed[k][o[q]], o[q]};
    return nt;
}

/* Channel k's top-N on the sparse path: the reached items (the sparse
 * op's) and the first N unreached ones in the fallback order, the best N
 * of them - the top-N of score_all with the history masked. */
static int sparse_top(fu_cands *c, const fu_impl *f, int k, int32_t user, const rf_hist *h,
                      rf_scored *top, rf_err *err) {
    rf_sparse *sp = &c->sp[k];
    rf_sparse_clear(sp);
    int rc = rf_model_score_sparse(f->ch[k], user, h, sp, err);
    if (rc) return rc;
    rf_topk t;
    rf_topk_init(&t, top, f->cand[k]);
    for (int32_t q = 0; q < sp->n; q++) {
        int32_t j = sp->touched[q];
        float v = sp->val[j];
        if (!c->hmask[j] && v != -INFINITY) rf_topk_push(&t, j, v);
    }
    const int32_t *o = f->fixed_order[k];
    int got = 0;
    for (int32_t q = 0; q < c->n_items && got < f->cand[k] && o[q] >= 0; q++) {
        int32_t j = o[q];
        if (c->hmask[j] || rf_sparse_has(sp, j)) continue;
        if (!rf_topk_enters(&t, j, f->fixed[k][j])) break; /* the order only gets worse */
        rf_topk_insert(&t, j, f->fixed[k][j]);
        got++;
    }
    c->n_top[k] = rf_topk_finish(&t);
    c->full[k] = 0;
    return 0;
}

int fu_channel_top(fu_cands *c, const fu_impl *f, int k, int32_t user, const rf_hist *h,
                   rf_err *err) {
    rf_scored *top = c->top + (size_t)k * (size_t)c->max_cand;
    float *s = c->sc + (size_t)k * (size_t)c->n_items;
    c->full[k] = 1;
    int pr = 0;
    if (f->fixed[k] && !f->sparse[k]) { /* user-independent: walk the precomputed order */
        c->n_top[k] = fu_order_top(f, k, c->n_items, c->hmask, f->cand[k], top);
        c->scp[k] = f->fixed[k];
    } else if (f->sparse[k] && !f->full_scan) {
        int rc = sparse_top(c, f, k, user, h, top, err);
        if (rc) return rc;
        c->scp[k] = s; /* the union's scores come after the merge */
    } else if ((pr = pruned_top(c, f, k, user, h, top, err)) != 0) {
        if (pr < 0) return pr;
        c->scp[k] = s;
    } else {
        int rc = rf_model_score_all(f->ch[k], user, h, s, err);
        if (rc) return rc;
        int keep = 0; /* history items joining the candidates keep their score */
        for (int32_t t = 0; t < h->n; t++) {
            int32_t j = h->items[t];
            if (j < 0 || j >= c->n_items) continue;
            if (c->hmask[j] == FU_HIST_CAND) keep = 1;
            else s[j] = -INFINITY;
        }
        c->n_top[k] = rf_topk_select(s, c->n_items, f->cand[k], keep ? c->hmask : NULL, top);
        c->scp[k] = s;
    }
    c->hi[k] = c->n_top[k] > 0 ? top[0].score : 0;
    c->lo[k] = c->n_top[k] > 0 ? top[c->n_top[k] - 1].score : 0;
    return 0;
}

static int build(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h, int32_t n_keep,
                 rf_err *err) {
    c->n = 0;
    /* the union: the lists' items set in a bit array (n_items / 8 bytes),
     * then read back in ascending order word by word, then cleared */
    int32_t lo = c->n_items, hi = -1;
    for (int k = 0; k < f->n_ch; k++) {
        int rc = fu_channel_top(c, f, k, user, h, err);
        if (rc) return rc; /* before any bit is set: the bit array stays clear */
    }
    for (int k = 0; k < f->n_ch; k++) {
        const rf_scored *top = c->top + (size_t)k * (size_t)c->max_cand;
        for (int t = 0; t < c->n_top[k]; t++) {
            int32_t j = top[t].id;
            c->ubits[j >> 6] |= (uint64_t)1 << (j & 63);
            if (j < lo) lo = j;
            if (j > hi) hi = j;
        }
    }
    for (int32_t t = 0; t < h->n && n_keep > 0; t++) { /* history items that join */
        int32_t j = h->items[t];
        if (j < 0 || j >= c->n_items || c->hmask[j] != FU_HIST_CAND) continue;
        c->ubits[j >> 6] |= (uint64_t)1 << (j & 63);
        if (j < lo) lo = j;
        if (j > hi) hi = j;
    }
    for (int32_t wd = lo >> 6; hi >= 0 && wd <= hi >> 6; wd++) {
        uint64_t b = c->ubits[wd];
        c->ubits[wd] = 0;
        while (b) {
            c->items[c->n++] = wd * 64 + __builtin_ctzll(b);
            b &= b - 1;
        }
    }
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
    c->keep_hist = 0;
    c->keep_ex = NULL;
    mark_hist(c, h, 1);
    int rc = build(c, f, user, h, 0, err);
    mark_hist(c, h, 0);
    return rc;
}

int fu_cands_build_hist(fu_cands *c, const fu_impl *f, int32_t user, const rf_hist *h,
                        const uint8_t *exclude, rf_err *err) {
    c->keep_hist = 1;
    c->keep_ex = exclude;
    int64_t need = 0;
    for (int k = 0; k < f->n_ch; k++) need += f->cand[k];
    int32_t n_keep = mark_hist(c, h, 1);
    int rc = 0;
    if (need + n_keep > c->cap)
        rc = rf_err_set(err, RF_EINVAL, "fusion: room for %d candidates, %lld needed "
                        "(fu_scratch_reserve)", (int)c->cap, (long long)(need + n_keep));
    else
        rc = build(c, f, user, h, n_keep, err);
    mark_hist(c, h, 0);
    return rc;
}

void fu_cands_extend(fu_cands *c, const fu_impl *f, const rf_hist *h, int k, const int32_t *items,
                     int32_t n) {
    if (c->full[k]) return;
    mark_hist(c, h, 1);
    float *s = c->sc + (size_t)k * (size_t)c->n_items;
    if (items) {
        extend(c, f, k, items, n);
    } else if (f->sparse[k]) {
        const rf_sparse *sp = &c->sp[k];
        for (int32_t j = 0; j < c->n_items; j++)
            s[j] = c->hmask[j] == FU_HIST ? -INFINITY
                   : rf_sparse_has(sp, j) ? sp->val[j] : f->fixed[k][j];
        c->full[k] = 1;
    } else {
        rf_factors_score_all(&f->fac[k], c->vec + (size_t)k * (size_t)c->ld_max, s);
        for (int32_t j = 0; j < c->n_items; j++)
            if (c->hmask[j] == FU_HIST) s[j] = -INFINITY;
        c->full[k] = 1;
    }
    mark_hist(c, h, 0);
}
