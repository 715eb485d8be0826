/* treeio.c - the GBDT ranker's trees in a binfile stream: writing, and
 * reading with every size, offset, feature and child index checked
 * (RF_EFORMAT) before the trees are used. */
#include <math.h>
#include <stdlib.h>

#include "rank_int.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"

_Static_assert(sizeof(rk_node) == 24, "rk_node is saved as raw 24-byte records");

int rk_gbdt_save(const rf_ranker *r, rf_writer *w) {
    int64_t nn = r->node_off[r->n_trees], nl = r->leaf_off[r->n_trees];
    int rc = rf_writer_i64(w, r->n_trees);
    rc |= rf_writer_i64(w, nn);
    rc |= rf_writer_i64(w, nl);
    rc |= rf_writer_put(w, r->node_off, (size_t)(r->n_trees + 1) * sizeof *r->node_off);
    rc |= rf_writer_put(w, r->leaf_off, (size_t)(r->n_trees + 1) * sizeof *r->leaf_off);
    if (nn) {
        rc |= rf_writer_put(w, r->nodes, (size_t)nn * sizeof *r->nodes);
        rc |= rf_writer_put(w, r->gain, (size_t)nn * sizeof *r->gain);
    }
    rc |= rf_writer_put(w, r->leaf, (size_t)nl * sizeof *r->leaf);
    return rc ? RF_EIO : 0;
}

/* Every tree a proper binary tree over its own nodes and leaves: each
 * child index in range and larger than its parent, every node but the
 * root and every leaf referenced exactly once; values finite. */
static int check_trees(const rf_ranker *r, rf_err *err) {
    int64_t nn_all = r->node_off[r->n_trees];
    uint8_t *seen = rf_calloc((size_t)(nn_all + r->leaf_off[r->n_trees] + 1), 1);
    if (!seen) return rf_err_set(err, RF_ENOMEM, "ranker: out of memory checking trees");
    int rc = 0;
    for (int t = 0; t < r->n_trees && !rc; t++) {
        int64_t n0 = r->node_off[t], nn = r->node_off[t + 1] - n0;
        int64_t l0 = r->leaf_off[t], nl = r->leaf_off[t + 1] - l0;
        if (nn < 0 || nl != nn + 1 || nl > r->opts.max_leaves) {
            rc = rf_err_set(err, RF_EFORMAT,
                            "ranker: tree %d: %lld nodes and %lld leaves (at most %d leaves)", t,
                            (long long)nn, (long long)nl, r->opts.max_leaves);
            break;
        }
        uint8_t *sn = seen + n0, *sl = seen + nn_all + l0;
        for (int64_t k = 0; k < nn && !rc; k++) {
            const rk_node *q = r->nodes + n0 + k;
            if (q->feat < 0 || q->feat >= r->n_feats || isnan(q->thr) ||
                (q->dleft != 0 && q->dleft != 1) || !isfinite(q->value) ||
                !isfinite(r->gain[n0 + k])) {
                rc = rf_err_set(err, RF_EFORMAT, "ranker: tree %d node %lld: bad feature %d or "
                                "value", t, (long long)k, (int)q->feat);
                break;
            }
            for (int c = 0; c < 2; c++) {
                int32_t ch = q->child[c];
                uint8_t *mark = ch >= 0 ? (ch > k && ch < nn ? sn + ch : NULL)
                                        : ((int64_t)~ch < nl ? sl + ~ch : NULL);
                if (!mark || *mark) {
                    rc = rf_err_set(err, RF_EFORMAT, "ranker: tree %d node %lld: bad child %d",
                                    t, (long long)k, (int)ch);
                    break;
                }
                *mark = 1;
            }
        }
        for (int64_t k = 1; k < nn && !rc; k++)
            if (!sn[k]) rc = rf_err_set(err, RF_EFORMAT, "ranker: tree %d: node %lld unreachable",
                                        t, (long long)k);
        for (int64_t k = 0; k < nl && !rc; k++)
            if (!isfinite(r->leaf[l0 + k]) || (nn > 0 && !sl[k]))
                rc = rf_err_set(err, RF_EFORMAT, "ranker: tree %d: leaf %lld bad or unreachable",
                                t, (long long)k);
    }
    rf_free(seen);
    return rc;
}

int rk_gbdt_load(rf_reader *rd, rf_ranker *r, rf_err *err) {
    int64_t nt, nn, nl;
    int rc;
    if ((rc = rf_reader_i64(rd, &nt, err)) || (rc = rf_reader_i64(rd, &nn, err)) ||
        (rc = rf_reader_i64(rd, &nl, err)))
        return rc;
    int64_t rem = rf_reader_remaining(rd);
    if (nt < 0 || nt > 10000000 || nn < 0 || nl < 0 || nl != nn + nt ||
        (nt + 1) * 16 + nn * (int64_t)(sizeof(rk_node) + sizeof(double)) + nl * 4 > rem)
        return rf_err_set(err, RF_EFORMAT,
                          "ranker: bad sizes (%lld trees, %lld nodes, %lld leaves)",
                          (long long)nt, (long long)nn, (long long)nl);
    r->n_trees = (int)nt;
    r->node_off = rf_malloc_array((size_t)nt + 1, sizeof *r->node_off);
    r->leaf_off = rf_malloc_array((size_t)nt + 1, sizeof *r->leaf_off);
    r->nodes = rf_malloc_array((size_t)(nn ? nn : 1), sizeof *r->nodes);
    r->gain = rf_malloc_array((size_t)(nn ? nn : 1), sizeof *r->gain);
    r->leaf = rf_malloc_array((size_t)(nl ? nl : 1), sizeof *r->leaf);
    if (!r->node_off || !r->leaf_off || !r->nodes || !r->gain || !r->leaf)
        return rf_err_set(err, RF_ENOMEM, "ranker: out of memory loading %lld trees",
                          (long long)nt);
    if ((rc = rf_reader_get(rd, r->node_off, (size_t)(nt + 1) * sizeof *r->node_off, err)) ||
        (rc = rf_reader_get(rd, r->leaf_off, (size_t)(nt + 1) * sizeof *r->leaf_off, err)))
        return rc;
    if (r->node_off[0] != 0 || r->leaf_off[0] != 0 || r->node_off[nt] != nn ||
        r->leaf_off[nt] != nl)
        return rf_err_set(err, RF_EFORMAT, "ranker: tree offsets disagree with the sizes");
    for (int64_t t = 0; t < nt; t++)
        if (r->node_off[t + 1] < r->node_off[t] || r->leaf_off[t + 1] < r->leaf_off[t])
            return rf_err_set(err, RF_EFORMAT, "ranker: tree %lld: offsets decrease",
                              (long long)t);
    if (nn && ((rc = rf_reader_get(rd, r->nodes, (size_t)nn * sizeof *r->nodes, err)) ||
               (rc = rf_reader_get(rd, r->gain, (size_t)nn * sizeof *r->gain, err))))
        return rc;
    if ((rc = rf_reader_get(rd, r->leaf, (size_t)nl * sizeof *r->leaf, err))) return rc;
    if ((rc = check_trees(r, err))) return rc;
    return rk_gbdt_pack(r, err);
}
