/* explain.c - why the fused model recommends an item.
 *
 * The shares come from what actually ordered the candidates: with a
 * learned ranker, the additive per-feature contributions of the item's
 * row (rf_ranker_contrib: Saabas paths for trees, w_j x_j for linear),
 * summed over each channel's features, negative sums counted as 0; with
 * the weighted blend w_c * normalised score; with rrf 1/(60 + rank); with
 * switch the one channel used. Items outside the candidate set (or rows
 * where no channel's contribution is positive) fall back to the
 * channels' normalised scores. The main channel then gives the reason:
 *   itemknn   "similar to X you viewed": X the history item with the
 *             largest weight x similarity towards the item
 *   rules     "bought together with X": X the history item whose rule
 *             towards the item has the highest confidence
 *   userknn, ials, ease, bpr   "people like you chose it"
 *   pop       "popular in Z" (the item's category)
 *   trending  "popular in Z this week"
 *   content   "matches your interest in Z"
 * X is always an item of the user's history h. An item of h itself (a
 * repeat purchase: rf_filter.allow_history) is explained as the
 * candidate it was then - the candidates are built with the history
 * joining them - and its reason is kind "repeat", "again: you had X
 * before", X the item itself. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/error.h"
#include "recfuse/idmap.h"
#include "recfuse/itemknn.h"
#include "recfuse/mem.h"
#include "recfuse/rules.h"

/* History item with the largest w_i * sim(i, j) in the itemknn channel. */
static int32_t knn_ref(const rf_model *knn, const rf_hist *h, int32_t j) {
    const rf_csr *nb = rf_itemknn_neighbours(knn);
    if (!nb) return -1;
    int32_t best = -1;
    float bv = 0;
    for (int32_t t = 0; t < h->n; t++) {
        int32_t i = h->items[t];
        if (i < 0 || i >= nb->nrows) continue;
        int64_t lo = nb->indptr[i], hi = nb->indptr[i + 1] - 1;
        while (lo <= hi) { /* neighbour ids ascend within a row */
            int64_t mid = (lo + hi) / 2;
            if (nb->indices[mid] == j) {
                float v = nb->data[mid] * (h->weights ? h->weights[t] : 1.0f);
                if (v > bv) {
                    bv = v;
                    best = i;
                }
                break;
            }
            if (nb->indices[mid] < j) lo = mid + 1;
            else hi = mid - 1;
        }
    }
    return best;
}

/* History item with the most confident rule X -> j. */
static int32_t rules_ref(const rf_model *rules, const rf_hist *h, int32_t j) {
    int32_t best = -1;
    double bc = 0;
    for (int32_t t = 0; t < h->n && t < 500; t++) {
        rf_rule *r = NULL;
        int64_t nr = 0;
        if (rf_rules_model_list(rules, h->items[t], RF_RULES_BY_CONFIDENCE, &r, &nr, NULL))
            continue;
        for (int64_t q = 0; q < nr; q++)
            if (r[q].cons == j && r[q].confidence > bc) {
                bc = r[q].confidence;
                best = h->items[t];
            }
        rf_free(r);
    }
    return best;
}

/* 1 if item j is in the history h. */
static int in_hist(const rf_hist *h, int32_t j) {
    for (int32_t t = 0; t < h->n; t++)
        if (h->items[t] == j) return 1;
    return 0;
}

static void reason_text(const rf_model *m, const fu_impl *f, int k, const rf_hist *h, int32_t j,
                        rf_reason *r) {
    const int kind = f->kind[k];
    const char *cat = f->side.cat[j] >= 0 ? f->side.cat_names[f->side.cat[j]] : NULL;
    snprintf(r->channel, sizeof r->channel, "%s", fu_kind_names[kind]);
    r->ref_item = -1;
    switch (kind) {
    case FU_ITEMKNN:
        snprintf(r->kind, sizeof r->kind, "similar");
        r->ref_item = knn_ref(f->ch[k], h, j);
        if (r->ref_item >= 0)
            snprintf(r->text, sizeof r->text, "similar to %s you viewed",
                     rf_idmap_str(m->items, r->ref_item));
        else
            snprintf(r->text, sizeof r->text, "similar to items you viewed");
        break;
    case FU_RULES:
        snprintf(r->kind, sizeof r->kind, "bought_together");
        r->ref_item = rules_ref(f->ch[k], h, j);
        if (r->ref_item >= 0)
            snprintf(r->text, sizeof r->text, "bought together with %s",
                     rf_idmap_str(m->items, r->ref_item));
        else
            snprintf(r->text, sizeof r->text, "often bought together with your items");
        break;
    case FU_POP:
        snprintf(r->kind, sizeof r->kind, "popular");
        if (cat) snprintf(r->text, sizeof r->text, "popular in %s", cat);
        else snprintf(r->text, sizeof r->text, "popular with everyone");
        break;
    case FU_TRENDING:
        snprintf(r->kind, sizeof r->kind, "trending");
        if (cat) snprintf(r->text, sizeof r->text, "popular in %s this week", cat);
        else snprintf(r->text, sizeof r->text, "popular this week");
        break;
    case FU_CONTENT:
        snprintf(r->kind, sizeof r->kind, "content");
        if (cat) snprintf(r->text, sizeof r->text, "matches your interest in %s", cat);
        else snprintf(r->text, sizeof r->text, "matches your interests");
        break;
    default:
        snprintf(r->kind, sizeof r->kind, "people_like_you");
        snprintf(r->text, sizeof r->text, "people like you chose it");
        break;
    }
}

/* Per-channel raw shares (>= 0) of candidate t (or -1) for item j. */
static void channel_shares(const fu_impl *f, const fu_cands *c, int32_t t, int32_t j,
                           const float *row, float *contrib, const rf_hist *h, double *sh) {
    const int nf = fu_n_feats(f);
    double tot = 0;
    for (int k = 0; k < f->n_ch; k++) sh[k] = 0;
    if (t >= 0 && f->ranker) {
        float bias;
        rf_ranker_contrib(f->ranker, row, contrib, &bias);
        for (int i = 0; i < nf; i++) {
            int k = fu_feature_channel(f, i);
            if (k >= 0) sh[k] += contrib[i];
        }
    } else if (t >= 0 && f->mode == FU_RRF) {
        for (int k = 0; k < f->n_ch; k++) {
            int32_t rk = c->rank[(size_t)k * (size_t)c->cap + (size_t)t];
            sh[k] = rk > 0 ? 1.0 / (60.0 + rk) : 0;
        }
    } else if (t >= 0 && f->mode == FU_SWITCH) {
        int k = f->cold_ch >= 0 && h->n < f->switch_min ? f->cold_ch : f->best_ch;
        sh[k] = 1;
    } else {
        for (int k = 0; k < f->n_ch; k++) {
            float v = fu_norm(c, k, j);
            sh[k] = isfinite(v) ? (f->mode == FU_WEIGHTED && t >= 0 ? f->w[k] : 1.0f) * v : 0;
        }
    }
    for (int k = 0; k < f->n_ch; k++) {
        if (!(sh[k] > 0)) sh[k] = 0;
        tot += sh[k];
    }
    if (tot <= 0) { /* nothing positive: the channels' own view */
        for (int k = 0; k < f->n_ch; k++) {
            float v = fu_norm(c, k, j);
            sh[k] = isfinite(v) && v > 0 ? v : 0;
            tot += sh[k];
        }
    }
    if (tot <= 0) {
        sh[0] = 1;
        tot = 1;
    }
    for (int k = 0; k < f->n_ch; k++) sh[k] /= tot;
}

int fu_explain(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items, int32_t n,
               rf_reason *out, rf_err *err) {
    const fu_impl *f = m->impl;
    const int nf = fu_n_feats(f);
    fu_scratch *w = fu_scratch_get(f, m->n_items);
    float *contrib = rf_malloc_array((size_t)nf, sizeof *contrib);
    int rc = 0;
    if (!w || !contrib) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    fu_cands *c = &w->c;
    /* a history item among them: explain it as a repeat candidate */
    int32_t n_rep = 0;
    for (int32_t q = 0; q < n; q++) n_rep += in_hist(h, items[q]);
    rc = n_rep ? fu_build_hist(f, w, user, h, NULL, err) : fu_cands_build(c, f, user, h, err);
    if (rc) goto out;
    float *x = w->x;
    fu_features(f, &f->side, c, user, h, x);
    /* the explained items may be outside the candidates: their scores in
     * the factor and sparse channels scored only on the candidates */
    for (int k = 0; k < f->n_ch; k++) fu_cands_extend(c, f, h, k, items, n);
    if (f->ranker && rf_ranker_get_kind(f->ranker) == RF_RANKER_LINEAR)
        for (size_t q = 0; q < (size_t)c->n * (size_t)nf; q++)
            if (!isfinite(x[q])) x[q] = 0;
    /* unknown user, empty history: scored by the pop channel (fusion.c) */
    int cold = -1;
    if (h->n == 0 && (user < 0 || user >= m->n_users))
        for (int k = 0; k < f->n_ch; k++)
            if (f->kind[k] == FU_POP) cold = k;
    for (int32_t q = 0; q < n; q++) {
        if (cold >= 0) {
            rf_reason *r = &out[q];
            memset(r, 0, sizeof *r);
            r->n_contrib = 1;
            snprintf(r->contrib[0].channel, RF_REASON_NAME, "pop");
            r->contrib[0].share = 1;
            reason_text(m, f, cold, h, items[q], r);
            continue;
        }
        int32_t j = items[q], t = -1, lo = 0, hi = c->n - 1;
        while (lo <= hi) {
            int32_t mid = (lo + hi) / 2;
            if (c->items[mid] == j) {
                t = mid;
                break;
            }
            if (c->items[mid] < j) lo = mid + 1;
            else hi = mid - 1;
        }
        double sh[FU_MAX_CH];
        channel_shares(f, c, t, j, t >= 0 ? x + (size_t)t * (size_t)nf : NULL, contrib, h, sh);
        rf_reason *r = &out[q];
        memset(r, 0, sizeof *r);
        int used[FU_MAX_CH] = {0};
        for (int s = 0; s < f->n_ch && r->n_contrib < RF_REASON_CONTRIB; s++) {
            int b = -1;
            for (int k = 0; k < f->n_ch; k++)
                if (!used[k] && sh[k] > 0 && (b < 0 || sh[k] > sh[b])) b = k;
            if (b < 0) break;
            used[b] = 1;
            snprintf(r->contrib[r->n_contrib].channel, RF_REASON_NAME, "%s",
                     fu_kind_names[f->kind[b]]);
            r->contrib[r->n_contrib++].share = (float)sh[b];
        }
        int main_k = 0;
        for (int k = 1; k < f->n_ch; k++)
            if (sh[k] > sh[main_k]) main_k = k;
        reason_text(m, f, main_k, h, j, r);
        if (in_hist(h, j)) {
            snprintf(r->kind, sizeof r->kind, "repeat");
            snprintf(r->text, sizeof r->text, "again: you had %s before", rf_idmap_str(m->items, j));
            r->ref_item = j;
        }
    }
out:
    rf_free(contrib);
    fu_scratch_put(f, w);
    return rc;
}
