/* predict.c - scoring with the trees of a GBDT ranker: the packed
 * prediction layout, blocked branch-free prediction and Saabas
 * contributions (rank_int.h, ranker.h).
 *
 * DESIGN: see rk_gbdt_predict. The packed layout (rk_pnode) is rebuilt
 * from the stored nodes after training and after loading, so the file
 * format does not depend on it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"

/* The child of q that row x goes to (NAN to the learned side). */
static inline int32_t node_next(const rk_node *q, const float *x) {
    const float v = x[q->feat];
    return q->child[q->dleft ? (v > q->thr) : !(v <= q->thr)];
}

float rk_tree_eval(const rk_node *nd, int64_t n_nodes, const float *lv, const float *x) {
    if (n_nodes == 0) return lv[0];
    int32_t c = 0;
    do c = node_next(nd + c, x);
    while (c >= 0);
    return lv[~c];
}

int rk_gbdt_pack(rf_ranker *r, rf_err *err) {
    int64_t total = 2 * r->node_off[r->n_trees] + r->n_trees;
    rf_free(r->pn);
    rf_free(r->pval);
    rf_free(r->depth);
    r->pn = NULL;
    r->pval = NULL;
    r->depth = NULL;
    /* 16-bit feature and node indices; else predict walks rk_node */
    if (2 * (int64_t)r->n_feats > UINT16_MAX) return 0;
    for (int t = 0; t < r->n_trees; t++)
        if (2 * (r->node_off[t + 1] - r->node_off[t]) + 1 > UINT16_MAX) return 0;
    r->pn = rf_malloc_array((size_t)(total ? total : 1), sizeof *r->pn);
    r->pval = rf_malloc_array((size_t)(total ? total : 1), sizeof *r->pval);
    r->depth = rf_malloc_array((size_t)(r->n_trees ? r->n_trees : 1), sizeof *r->depth);
    /* breadth-first queue of (original child code, depth) */
    int64_t maxn = 1;
    for (int t = 0; t < r->n_trees; t++)
        if (2 * (r->node_off[t + 1] - r->node_off[t]) + 1 > maxn)
            maxn = 2 * (r->node_off[t + 1] - r->node_off[t]) + 1;
    int32_t *qc = rf_malloc_array((size_t)maxn, sizeof *qc);
    int32_t *qd = rf_malloc_array((size_t)maxn, sizeof *qd);
    if (!r->pn || !r->pval || !r->depth || !qc || !qd) {
        rf_free(qc);
        rf_free(qd);
        return rf_err_set(err, RF_ENOMEM, "ranker: out of memory packing trees");
    }
    for (int t = 0; t < r->n_trees; t++) {
        const rk_node *nd = r->nodes + r->node_off[t];
        const int32_t nn = (int32_t)(r->node_off[t + 1] - r->node_off[t]);
        const float *lv = r->leaf + r->leaf_off[t];
        rk_pnode *p = r->pn + 2 * r->node_off[t] + t;
        float *pv = r->pval + 2 * r->node_off[t] + t;
        /* slot k of the queue is node k of the layout */
        int32_t head = 0, tail = 1, depth = 0;
        qc[0] = nn > 0 ? 0 : ~0;
        qd[0] = 0;
        while (head < tail) {
            int32_t k = head++, c = qc[k];
            if (qd[k] > depth) depth = qd[k];
            if (c < 0) {
                p[k] = (rk_pnode){.thr = NAN, .feat = 0, .left = (uint16_t)k};
                pv[k] = lv[~c];
                continue;
            }
            p[k] = (rk_pnode){.thr = nd[c].thr,
                              .feat = (uint16_t)(nd[c].feat + (nd[c].dleft ? 0 : r->n_feats)),
                              .left = (uint16_t)tail};
            pv[k] = nd[c].value; /* for contributions; predict reads leaves only */
            for (int s = 0; s < 2; s++) {
                qc[tail] = nd[c].child[s];
                qd[tail++] = qd[k] + 1;
            }
        }
        r->depth[t] = depth;
    }
    rf_free(qc);
    rf_free(qd);
    return 0;
}

/* One branch-free step of a row (x: the 2 n_feats NAN-free values) from
 * node c; leaves step to themselves. */
#define PSTEP(nd, x, c)                                                      \
    do {                                                                     \
        const rk_pnode *q_ = (nd) + (c);                                     \
        (c) = q_->left + ((x)[q_->feat] > q_->thr);                          \
    } while (0)

#define PRED_BUF 8192 /* floats of NAN-free rows per call (32 KiB of stack) */

/* Walk rows x0, x0 + w, ..., x0 + 7w (NAN-free copies) through trees a
 * and b together (16 independent load chains), depth steps each; add
 * a's leaf values, then b's (the same sums as tree by tree). */
static void walk8(const rk_pnode *na, const float *pa, const rk_pnode *nb, const float *pb,
                  int depth, const float *x0, int64_t w, double *acc) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0, b7 = 0;
    for (int s = 0; s < depth; s++) {
        PSTEP(na, x0, a0);
        PSTEP(nb, x0, b0);
        PSTEP(na, x0 + w, a1);
        PSTEP(nb, x0 + w, b1);
        PSTEP(na, x0 + 2 * w, a2);
        PSTEP(nb, x0 + 2 * w, b2);
        PSTEP(na, x0 + 3 * w, a3);
        PSTEP(nb, x0 + 3 * w, b3);
        PSTEP(na, x0 + 4 * w, a4);
        PSTEP(nb, x0 + 4 * w, b4);
        PSTEP(na, x0 + 5 * w, a5);
        PSTEP(nb, x0 + 5 * w, b5);
        PSTEP(na, x0 + 6 * w, a6);
        PSTEP(nb, x0 + 6 * w, b6);
        PSTEP(na, x0 + 7 * w, a7);
        PSTEP(nb, x0 + 7 * w, b7);
    }
    acc[0] += pa[a0], acc[1] += pa[a1], acc[2] += pa[a2], acc[3] += pa[a3];
    acc[4] += pa[a4], acc[5] += pa[a5], acc[6] += pa[a6], acc[7] += pa[a7];
    acc[0] += pb[b0], acc[1] += pb[b1], acc[2] += pb[b2], acc[3] += pb[b3];
    acc[4] += pb[b4], acc[5] += pb[b5], acc[6] += pb[b6], acc[7] += pb[b7];
}

/* The partner of an odd last tree: one leaf of value +0, which leaves
 * every sum as it is (a sum started at +0 is never -0). */
static const rk_pnode zero_tree = {.thr = NAN, .feat = 0, .left = 0};
static const float zero_value = 0.0f;

/* DESIGN: rows are copied in blocks into a NAN-free buffer (each row
 * twice, NAN as -INF and as +INF, so a node's learned NAN side is just
 * the copy it reads). Scoring is tree-major over the block (the trees'
 * nodes stay in L1); 8 rows walk two trees together, each taking the
 * deeper tree's depth in branch-free steps, so the CPU overlaps 16
 * independent load chains instead of mispredicting a branch per level
 * (two trees at once measured ~20% faster than one). */
void rk_gbdt_predict(const rf_ranker *r, const float *x, int64_t n, float *out) {
    const int32_t nf = r->n_feats;
    const int64_t w = 2 * (int64_t)nf;
    int64_t block = PRED_BUF / w;
    if (block > 64) block = 64;
    if (block < 8 || !r->pn) {
        /* very wide rows: walk the original trees one row at a time */
        for (int64_t i = 0; i < n; i++) {
            double acc = 0;
            for (int t = 0; t < r->n_trees; t++)
                acc += rk_tree_eval(r->nodes + r->node_off[t], r->node_off[t + 1] - r->node_off[t],
                                 r->leaf + r->leaf_off[t], x + i * nf);
            out[i] = (float)acc;
        }
        return;
    }
    float buf[PRED_BUF];
    double acc[64];
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        const int64_t bn = n - b0 < block ? n - b0 : block;
        for (int64_t k = 0; k < bn; k++) {
            const float *xi = x + (b0 + k) * nf;
            float *lo = buf + k * w, *hi = lo + nf;
            for (int32_t f = 0; f < nf; f++) {
                float v = xi[f];
                lo[f] = isnan(v) ? -INFINITY : v;
                hi[f] = isnan(v) ? INFINITY : v;
            }
            acc[k] = 0;
        }
        for (int t = 0; t < r->n_trees; t += 2) {
            const int64_t oa = 2 * r->node_off[t] + t;
            const rk_pnode *na = r->pn + oa, *nb = &zero_tree;
            const float *pa = r->pval + oa, *pb = &zero_value;
            int da = r->depth[t], db = 0;
            if (t + 1 < r->n_trees) {
                const int64_t ob = 2 * r->node_off[t + 1] + t + 1;
                nb = r->pn + ob;
                pb = r->pval + ob;
                db = r->depth[t + 1];
            }
            int64_t k = 0;
            for (; k + 8 <= bn; k += 8)
                walk8(na, pa, nb, pb, da > db ? da : db, buf + k * w, w, acc + k);
            for (; k < bn; k++) {
                int32_t ca = 0, cb = 0;
                for (int s = 0; s < da; s++) PSTEP(na, buf + k * w, ca);
                for (int s = 0; s < db; s++) PSTEP(nb, buf + k * w, cb);
                acc[k] += pa[ca];
                acc[k] += pb[cb];
            }
        }
        for (int64_t k = 0; k < bn; k++) out[b0 + k] = (float)acc[k];
    }
}

#define CONTRIB_MAX_FEATS 512 /* fast path: stack copies of the row and sums */

/* Saabas along the row's path in every tree. Fast path: the packed
 * layout, where internal nodes keep their expected value in pval too,
 * walked branch-free for the tree's depth (a leaf steps to itself and
 * credits +0 to feature 0); sums in double. */
void rk_gbdt_contrib(const rf_ranker *r, const float *x, float *contrib, float *bias) {
    const int32_t nf = r->n_feats;
    double b = 0;
    if (r->pn && nf <= CONTRIB_MAX_FEATS) {
        float row[2 * CONTRIB_MAX_FEATS];
        double acc[CONTRIB_MAX_FEATS];
        for (int32_t f = 0; f < nf; f++) {
            row[f] = isnan(x[f]) ? -INFINITY : x[f];
            row[nf + f] = isnan(x[f]) ? INFINITY : x[f];
            acc[f] = 0;
        }
        /* four trees at a time (a missing partner is the zero leaf), so
         * four dependent load chains overlap */
        for (int t0 = 0; t0 < r->n_trees; t0 += 4) {
            const rk_pnode *nd[4];
            const float *pv[4];
            int32_t c[4] = {0, 0, 0, 0};
            int depth = 0;
            for (int j = 0; j < 4; j++) {
                nd[j] = &zero_tree;
                pv[j] = &zero_value;
                if (t0 + j >= r->n_trees) continue;
                const int64_t o = 2 * r->node_off[t0 + j] + t0 + j;
                nd[j] = r->pn + o;
                pv[j] = r->pval + o;
                if (r->depth[t0 + j] > depth) depth = r->depth[t0 + j];
                b += pv[j][0];
            }
            for (int s = 0; s < depth; s++)
                for (int j = 0; j < 4; j++) {
                    const rk_pnode *q = nd[j] + c[j];
                    const uint32_t fd = q->feat;
                    const int32_t next = q->left + (row[fd] > q->thr);
                    acc[fd >= (uint32_t)nf ? fd - (uint32_t)nf : fd] +=
                        (double)pv[j][next] - pv[j][c[j]];
                    c[j] = next;
                }
        }
        for (int32_t f = 0; f < nf; f++) contrib[f] = (float)acc[f];
        *bias = (float)b;
        return;
    }
    for (int32_t f = 0; f < nf; f++) contrib[f] = 0;
    for (int t = 0; t < r->n_trees; t++) {
        const rk_node *nd = r->nodes + r->node_off[t];
        int64_t nn = r->node_off[t + 1] - r->node_off[t];
        const float *lv = r->leaf + r->leaf_off[t];
        if (nn == 0) {
            b += lv[0];
            continue;
        }
        b += nd[0].value;
        int32_t c = 0;
        do {
            const rk_node *q = nd + c;
            c = node_next(q, x);
            float next = c >= 0 ? nd[c].value : lv[~c];
            contrib[q->feat] += next - q->value;
        } while (c >= 0);
    }
    *bias = (float)b;
}
