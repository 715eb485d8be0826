/* score.c - serving the fused model: candidates from every channel, one
 * feature row per candidate, the ranker (or a blend) orders them.
 *
 * score_all must score the whole catalog: candidates get their ranker
 * score, every other item a score below all candidates that keeps the
 * first channel's order (lowest candidate score - 1.5 + norm/(2(1+|norm|))),
 * so metrics over the full ranking (AUC) stay meaningful and an empty
 * candidate set still ranks like the first channel.
 *
 * recommend (fu_recommend, the model's recommend op) returns the same
 * list as the top-k of that vector without writing it: the best k
 * candidates that pass the filter, when the k-th of them scores above
 * the best any non-candidate can score - (lowest - 1.5) + 0.5 in float,
 * an upper bound of the formula above under round-to-nearest (the second
 * term never exceeds 0.5). Only when fewer candidates pass (a narrow
 * filter) does it fill the catalog vector and take its top-k. A cold user
 * (unknown, no history) gets the pop channel's list (score_all's
 * fallback, fusion.c) by walking its precomputed order.
 *
 * With rf_filter.allow_history (repeat purchases: `recfuse recommend
 * --repeat-categories`) the history items the filter lets through join
 * the candidates (fu_cands_build_hist) and are ranked like them; the
 * other candidates score exactly as without it, so the list is the
 * default one with those items placed where the ranker puts them. */
#include <math.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"

void fu_rank_cands(const fu_impl *f, const fu_cands *c, int32_t user, const rf_hist *h, float *x,
                   float *s) {
    if (!f->ranker) {
        fu_blend_scores(f, f->mode, c, h, s);
        return;
    }
    const int nf = fu_n_feats(f);
    fu_features(f, &f->side, c, user, h, x);
    if (rf_ranker_get_kind(f->ranker) == RF_RANKER_LINEAR)
        for (size_t q = 0; q < (size_t)c->n * (size_t)nf; q++)
            if (!isfinite(x[q])) x[q] = 0;
    rf_ranker_predict(f->ranker, x, c->n, s);
}

/* The lowest candidate score (0 without candidates): non-candidates
 * score below it. */
static float lowest(const fu_cands *c, const float *s) {
    float lo = 0;
    for (int32_t t = 0; t < c->n; t++)
        if (t == 0 || s[t] < lo) lo = s[t];
    return lo;
}

/* The fused score vector from built and ranked candidates (s: their
 * scores) into out, n_items floats. */
static void fill_all(const rf_model *m, fu_cands *c, const rf_hist *h, const float *s,
                     float *out) {
    const fu_impl *f = m->impl;
    fu_cands_extend(c, f, h, 0, NULL, 0); /* every item's channel-0 score, below */
    float lo = lowest(c, s);
    for (int32_t j = 0; j < m->n_items; j++) {
        float v = fu_norm(c, 0, j);
        out[j] = isfinite(v) ? lo - 1.5f + 0.5f * v / (1.0f + fabsf(v)) : -INFINITY;
    }
    for (int32_t t = 0; t < c->n; t++) out[c->items[t]] = s[t];
}

int fu_score_user(const rf_model *m, fu_scratch *w, int32_t user, const rf_hist *h, float *out,
                  rf_err *err) {
    const fu_impl *f = m->impl;
    int rc = fu_cands_build(&w->c, f, user, h, err);
    if (rc) return rc;
    fu_rank_cands(f, &w->c, user, h, w->x, w->s);
    fill_all(m, &w->c, h, w->s, out);
    return 0;
}

int fu_build_hist(const fu_impl *f, fu_scratch *w, int32_t user, const rf_hist *h,
                  const uint8_t *exclude, rf_err *err) {
    int64_t need = (int64_t)h->n;
    for (int k = 0; k < f->n_ch; k++) need += f->cand[k];
    if (need > INT32_MAX || fu_scratch_reserve(f, w, (int32_t)need))
        return rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
    return fu_cands_build_hist(&w->c, f, user, h, exclude, err);
}

/* Cold user: the list of the channel score_all falls back to (the pop
 * channel, else the first), from its precomputed order when it has one. */
static int cold_recommend(const rf_model *m, const rf_hist *h, int k, const uint8_t *exclude,
                          rf_scored *out, rf_err *err) {
    /* no history: allow_history changes nothing */
    const fu_impl *f = m->impl;
    int kc = 0;
    for (int q = 0; q < f->n_ch; q++)
        if (f->kind[q] == FU_POP) kc = q;
    if (f->fixed[kc]) return fu_order_top(f, kc, m->n_items, exclude, k, out);
    rf_filter flt = {.exclude = exclude};
    return rf_model_recommend(f->ch[kc], -1, h, k, &flt, NULL, out, err);
}

int fu_recommend(const rf_model *m, int32_t user, const rf_hist *h, int k, const rf_filter *flt,
                 rf_scored *out, rf_err *err) {
    const fu_impl *f = m->impl;
    const uint8_t *exclude = flt ? flt->exclude : NULL;
    const int keep = flt && flt->allow_history;
    if (h->n == 0 && (user < 0 || user >= m->n_users)) return cold_recommend(m, h, k, exclude, out, err);
    fu_scratch *w = fu_scratch_get(f, m->n_items);
    if (!w) return rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
    fu_cands *c = &w->c;
    int rc = keep ? fu_build_hist(f, w, user, h, exclude, err) : fu_cands_build(c, f, user, h, err);
    if (rc) goto out;
    fu_rank_cands(f, c, user, h, w->x, w->s);
    /* the best k candidates that pass (history items are candidates only
     * when the filter let them join) */
    rf_topk t;
    rf_topk_init(&t, out, k);
    for (int32_t q = 0; q < c->n; q++) {
        int32_t j = c->items[q];
        if ((exclude && exclude[j]) || w->s[q] == -INFINITY) continue;
        rf_topk_push(&t, j, w->s[q]);
    }
    rc = rf_topk_finish(&t);
    const float bound = (lowest(c, w->s) - 1.5f) + 0.5f; /* no non-candidate scores more */
    w->list = 0;
    if (c->n > 0 && rc == k && out[k - 1].score > bound) goto out;
    w->list = 1;
    /* the full path: the whole vector, then its top-k */
    if (!w->all && !(w->all = rf_malloc_array((size_t)m->n_items, sizeof *w->all))) {
        rc = rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
        goto out;
    }
    fill_all(m, c, h, w->s, w->all);
    for (int32_t q = 0; q < h->n && !keep; q++) /* with keep, exclude drops the others */
        if (h->items[q] >= 0 && h->items[q] < m->n_items) w->all[h->items[q]] = -INFINITY;
    rc = rf_topk_select(w->all, m->n_items, k, exclude, out);
out:
    fu_scratch_put(f, w);
    return rc;
}
