/* blend.c - the simple blends of the fused model, as baselines and
 * fallbacks next to the learned ranker:
 *   weighted  sum over channels of w_c * (per-user normalised score),
 *             the weights tuned on the ranker slice (coordinate ascent
 *             over a small grid, maximising NDCG@10 of the candidates)
 *   rrf       reciprocal rank fusion: sum over channels of 1/(60 + rank)
 *             (Cormack et al. 2009), 0 for a channel that did not
 *             propose the item
 *   switch    cold users (fewer than switch_min history items) get the
 *             cold channel (content, else trending, else pop), everyone
 *             else the single channel that ranked the slice best.
 * They work on the same candidate sets as the ranker, so the comparison
 * is about the ordering alone. */
#include <math.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/mem.h"

#define RRF_K 60.0f
#define PER_CH 3 /* features per channel (features.c) */

static float norm_or_floor(float v) { return isfinite(v) ? v : -1.0f; }

void fu_blend_scores(const fu_impl *f, int mode, const fu_cands *c, const rf_hist *h,
                     float *out) {
    int k_sw = f->best_ch;
    if (mode == FU_SWITCH && f->cold_ch >= 0 && h->n < f->switch_min) k_sw = f->cold_ch;
    for (int32_t t = 0; t < c->n; t++) {
        int32_t j = c->items[t];
        float s = 0;
        if (mode == FU_WEIGHTED) {
            for (int k = 0; k < f->n_ch; k++)
                if (f->w[k] != 0) s += f->w[k] * norm_or_floor(fu_norm(c, k, j));
        } else if (mode == FU_RRF) {
            for (int k = 0; k < f->n_ch; k++) {
                int32_t rk = c->rank[(size_t)k * (size_t)c->cap + (size_t)t];
                if (rk > 0) s += 1.0f / (RRF_K + (float)rk);
            }
        } else {
            s = norm_or_floor(fu_norm(c, k_sw, j));
        }
        out[t] = s;
    }
}

/* Weighted-blend scores of the rank data's rows for weights w. */
static void weighted_rows(const fu_impl *f, const rf_rank_data *d, const float *w, float *s) {
    for (int64_t r = 0; r < d->n_rows; r++) {
        const float *x = d->x + (size_t)r * (size_t)d->n_feats;
        float v = 0;
        for (int k = 0; k < f->n_ch; k++)
            if (w[k] != 0) v += w[k] * norm_or_floor(x[PER_CH * k + 1]);
        s[r] = v;
    }
}

void fu_blend_tune(fu_impl *f, const rf_rank_data *d) {
    static const float grid[] = {0, 0.25f, 0.5f, 1, 2, 4};
    const int ng = (int)(sizeof grid / sizeof grid[0]);
    float *s = rf_malloc_array((size_t)(d->n_rows ? d->n_rows : 1), sizeof *s);
    for (int k = 0; k < f->n_ch; k++) f->w[k] = 1;
    f->best_ch = 0;
    if (!s || d->n_rows == 0) {
        rf_free(s);
        return;
    }
    /* best single channel */
    double best = -1;
    float w1[FU_MAX_CH];
    for (int k = 0; k < f->n_ch; k++) {
        memset(w1, 0, sizeof w1);
        w1[k] = 1;
        weighted_rows(f, d, w1, s);
        double v = rf_rank_ndcg(d, s, 10);
        if (v > best) {
            best = v;
            f->best_ch = k;
        }
    }
    /* weights: coordinate ascent from all-ones */
    weighted_rows(f, d, f->w, s);
    double cur = rf_rank_ndcg(d, s, 10);
    for (int sweep = 0; sweep < 2; sweep++)
        for (int k = 0; k < f->n_ch; k++) {
            float keep = f->w[k], bw = keep;
            for (int g = 0; g < ng; g++) {
                if (grid[g] == keep) continue;
                f->w[k] = grid[g];
                weighted_rows(f, d, f->w, s);
                double v = rf_rank_ndcg(d, s, 10);
                if (v > cur + 1e-9) {
                    cur = v;
                    bw = grid[g];
                }
            }
            f->w[k] = bw;
        }
    rf_free(s);
}
