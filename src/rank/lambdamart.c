/* lambdamart.c - LambdaMART gradients (Burges 2010) and NDCG.
 *
 * For one group (query) the rows are ranked by the current scores; every
 * pair (i, j) with label_i > label_j contributes the RankNet gradient of
 * log(1 + exp(-sigma (s_i - s_j))) weighted by |delta NDCG@k| of
 * swapping i and j, sigma = 1. With truncation k only pairs where the
 * better-placed row is in the top k can change NDCG@k, so the pair loop
 * is O(k n) rather than O(n^2).
 *
 * DESIGN: normalisation follows LightGBM's lambdarank (lambdarank_norm):
 * the pair weight is divided by 0.01 + |s_i - s_j| (pairs already far
 * apart matter less), then the group's gradients and hessians are scaled
 * by log2(1 + S) / S, S the sum of pair lambdas, so long lists do not
 * dominate short ones. Both can be switched off (RK_LAMBDA_NO_NORM) for
 * the gradient check in the tests. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/mem.h"

int rk_ws_init(rk_lambda_ws *ws, int64_t cap) {
    if (cap < 1) cap = 1;
    ws->cap = cap;
    ws->order = rf_malloc_array((size_t)cap, sizeof *ws->order);
    ws->buf = rf_malloc_array((size_t)cap * 7, sizeof *ws->buf);
    if (!ws->order || !ws->buf) {
        rk_ws_free(ws);
        return -1;
    }
    return 0;
}

void rk_ws_free(rk_lambda_ws *ws) {
    rf_free(ws->order);
    rf_free(ws->buf);
    ws->order = NULL;
    ws->buf = NULL;
    ws->cap = 0;
}

static int cmp_score_desc(const void *a, const void *b, void *ctx) {
    const double *s = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (s[i] > s[j]) return -1;
    if (s[i] < s[j]) return 1;
    return (i > j) - (i < j);
}

/* Row i ranks above row j: higher score, ties by lower row. */
static inline int above(const double *s, int32_t i, int32_t j) {
    return s[i] > s[j] || (s[i] == s[j] && i < j);
}

void rk_rank_order(const double *score, int64_t n, int64_t top, int32_t *order) {
    if (top <= 0 || top >= n) {
        for (int64_t i = 0; i < n; i++) order[i] = (int32_t)i;
        qsort_r(order, (size_t)n, sizeof *order, cmp_score_desc, (void *)score);
        return;
    }
    /* insertion into a sorted top list: a row enters with probability
     * ~top/i on random scores, so this is O(n) plus little */
    int64_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (m == top && !above(score, i, order[top - 1])) continue;
        int64_t p = m < top ? m++ : top - 1;
        while (p > 0 && above(score, i, order[p - 1])) {
            order[p] = order[p - 1];
            p--;
        }
        order[p] = i;
    }
    const int32_t worst = order[top - 1];
    for (int32_t i = 0; i < n; i++)
        if (i != worst && !above(score, i, worst)) order[m++] = i;
}

static int cmp_double_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static inline double disc_at(int64_t p, int k) {
    return (k <= 0 || p < k) ? 1.0 / log2((double)p + 2.0) : 0.0;
}

double rk_ideal_dcg(const float *label, int64_t n, int k, double *scratch) {
    for (int64_t i = 0; i < n; i++) scratch[i] = label[i];
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_double_desc);
    int64_t top = (k > 0 && k < n) ? k : n;
    double dcg = 0;
    for (int64_t p = 0; p < top; p++) dcg += (exp2(scratch[p]) - 1.0) * disc_at(p, k);
    return dcg;
}

double rk_delta_ndcg(const float *lab_pos, int64_t n, int k, int64_t a, int64_t b, double idcg) {
    (void)n;
    double ga = exp2(lab_pos[a]) - 1.0, gb = exp2(lab_pos[b]) - 1.0;
    return fabs(ga - gb) * fabs(disc_at(a, k) - disc_at(b, k)) / idcg;
}

double rk_group_ndcg(const float *label, const double *score, int64_t n, int k, int32_t *order,
                     double *scratch) {
    double idcg = rk_ideal_dcg(label, n, k, scratch);
    if (!(idcg > 0)) return -1;
    rk_rank_order(score, n, k, order);
    int64_t top = (k > 0 && k < n) ? k : n;
    double dcg = 0;
    for (int64_t p = 0; p < top; p++) dcg += (exp2(label[order[p]]) - 1.0) * disc_at(p, k);
    return dcg / idcg;
}

void rk_lambda_group(const float *label, const double *score, int64_t n, int k, int flags,
                     double idcg, rk_lambda_ws *ws, float *g, float *h) {
    for (int64_t i = 0; i < n; i++) g[i] = h[i] = 0;
    if (n < 2) return;
    float lmin = label[0], lmax = label[0];
    for (int64_t i = 1; i < n; i++) {
        if (label[i] < lmin) lmin = label[i];
        if (label[i] > lmax) lmax = label[i];
    }
    if (lmax <= 0 || lmin == lmax) return;
    const int weighted = !(flags & RK_LAMBDA_NO_WEIGHT), norm = !(flags & RK_LAMBDA_NO_NORM);
    double *ex = ws->buf, *gain = ws->buf + n, *disc = ws->buf + 2 * n;
    double *dg = ws->buf + 3 * n, *dh = ws->buf + 4 * n, *sp = ws->buf + 5 * n;
    double *lp = ws->buf + 6 * n;
    double inv_idcg = 1.0;
    if (weighted) {
        if (!(idcg > 0)) idcg = rk_ideal_dcg(label, n, k, ex);
        if (!(idcg > 0)) return;
        inv_idcg = 1.0 / idcg;
    }
    /* with truncation only the top k need their order: a pair of rows
     * both below k changes nothing, and below k every discount is 0 */
    int32_t *order = ws->order;
    const int64_t lim = (weighted && k > 0 && k < n) ? k : n;
    rk_rank_order(score, n, lim, order);
    /* by position: label, score, exp(score - top score) in (0, 1], so a
     * pair's sigmoid needs no exp: 1 / (1 + e^(s_hi - s_lo)) =
     * E_lo / (E_lo + E_hi) (sigma = 1) */
    const double top = score[order[0]];
    double worst = top;
    for (int64_t p = 0; p < n; p++) {
        lp[p] = label[order[p]];
        sp[p] = score[order[p]];
        ex[p] = exp(sp[p] - top);
        gain[p] = exp2(lp[p]) - 1.0;
        disc[p] = disc_at(p, k);
        dg[p] = dh[p] = 0;
        if (sp[p] < worst) worst = sp[p];
    }
    const int div_ds = weighted && norm && top != worst;
    double sum_lambda = 0;
    /* branch-free over b: a pair of equal labels gets weight 0 (its gains
     * are equal) instead of a mispredicted skip */
    for (int64_t a = 0; a < lim; a++) {
        const double la = lp[a], sa = sp[a], ea = ex[a], ga = gain[a], da = disc[a];
        double ga_sum = 0, ha_sum = 0;
        for (int64_t b = a + 1; b < n; b++) {
            const double lb = lp[b], eb = ex[b];
            const double sgn = (double)((la > lb) - (la < lb)); /* +1: a is the better */
            const double ads = fabs(sa - sp[b]);                /* |s_hi - s_lo| */
            const double w = weighted ? fabs(ga - gain[b]) * fabs(da - disc[b]) * inv_idcg
                                      : (double)(la != lb);
            const double den = ea + eb;
            const double elo = sgn > 0 ? eb : ea, ehi = sgn > 0 ? ea : eb;
            double lam, hess;
            if (den > 1e-280) {
                /* lam = w rho, hess = w rho (1 - rho), rho = elo / den */
                const double q = w / (den * den * (div_ds ? 0.01 + ads : 1.0));
                lam = elo * den * q;
                hess = elo * ehi * q;
            }
            else { /* both far below the top score: exp underflowed */
                const double rho = 1.0 / (1.0 + exp(sgn * (sa - sp[b])));
                const double ww = div_ds ? w / (0.01 + ads) : w;
                lam = rho * ww;
                hess = rho * (1.0 - rho) * ww;
            }
            ga_sum -= sgn * lam;
            dg[b] += sgn * lam;
            ha_sum += hess;
            dh[b] += hess;
            sum_lambda += 2 * lam;
        }
        dg[a] += ga_sum;
        dh[a] += ha_sum;
    }
    double scale = 1.0;
    if (norm && sum_lambda > 0) scale = log2(1.0 + sum_lambda) / sum_lambda;
    for (int64_t p = 0; p < n; p++) {
        g[order[p]] = (float)(dg[p] * scale);
        h[order[p]] = (float)(dh[p] * scale);
    }
}
