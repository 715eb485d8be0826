/* score.c - serving the fused model: candidates from every channel, one
 * feature row per candidate, the ranker (or a blend) orders them.
 *
 * score_all must score the whole catalog: candidates get their ranker
 * score, every other item a score below all candidates that keeps the
 * first channel's order (lowest candidate score - 1.5 + norm/(2(1+|norm|))),
 * so metrics over the full ranking (AUC) stay meaningful and an empty
 * candidate set still ranks like the first channel. */
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

int fu_score_user(const rf_model *m, fu_cands *c, int32_t user, const rf_hist *h, float *out,
                  rf_err *err) {
    const fu_impl *f = m->impl;
    int rc = fu_cands_build(c, f, user, h, err);
    if (rc) return rc;
    const int nf = fu_n_feats(f);
    float *x = rf_malloc_array((size_t)(c->n ? c->n : 1) * (size_t)nf, sizeof *x);
    float *s = rf_malloc_array((size_t)(c->n ? c->n : 1), sizeof *s);
    if (!x || !s) {
        rf_free(x);
        rf_free(s);
        return rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
    }
    fu_rank_cands(f, c, user, h, x, s);
    fu_cands_extend(c, f, h, 0, NULL, 0); /* every item's channel-0 score, below */
    float lo = 0;
    for (int32_t t = 0; t < c->n; t++)
        if (t == 0 || s[t] < lo) lo = s[t];
    for (int32_t j = 0; j < m->n_items; j++) {
        float v = fu_norm(c, 0, j);
        out[j] = isfinite(v) ? lo - 1.5f + 0.5f * v / (1.0f + fabsf(v)) : -INFINITY;
    }
    for (int32_t t = 0; t < c->n; t++) out[c->items[t]] = s[t];
    rf_free(x);
    rf_free(s);
    return 0;
}
