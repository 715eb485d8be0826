/* gbdt.c - training of gradient-boosted regression trees with LambdaMART
 * gradients: histogram-based, leaf-wise (best-first) growth, OpenMP
 * parallel over features, early stopping.
 *
 * DESIGN:
 * - Features are binned once (binning.c, uint8 row-major). Each leaf
 *   owns a contiguous range of a row-index array; its gradients and
 *   hessians are kept in the same order (og/oh) so histogram building
 *   reads them sequentially and gathers one row of bins (one cache line)
 *   per row for all features of a task.
 * - A split builds the histogram of the smaller child from its rows and
 *   gets the larger one as parent - smaller (the subtraction trick), in
 *   the parent's buffer. Histograms, subtraction and the per-feature best
 *   split run in one parallel loop over blocks of features; each feature
 *   is summed by one thread in row order and the best feature is reduced
 *   serially in feature order, so the trees do not depend on the thread
 *   count.
 * - The leaf to split next is the one with the largest gain (ties: the
 *   lowest leaf id) until max_leaves or no split gains anything.
 * - Leaf value = learning_rate * -G / (H + l2). Internal nodes keep the
 *   same quantity as their "expected value" for Saabas contributions.
 * - Groups without a positive label (or with all labels equal) have zero
 *   gradients forever and are left out of training altogether.
 * - A NAN follows the direction learned at training (the side with the
 *   larger gain; the larger child if the node saw no NAN).
 * Prediction and contributions are in predict.c, the stream format in
 * treeio.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"

#define GAIN_EPS 1e-12
/* Below these sizes a loop runs on the calling thread: waking the team
 * and meeting at the barrier costs more than the work, and far more when
 * the machine is busy (a barrier waits for every thread to get a core). */
static int64_t par_hist_work = 1 << 20; /* rows x features of a histogram build */
static int64_t par_rows = 65536;        /* rows of a per-group or per-row loop */

void rk_set_par_thresholds(int64_t hist_work, int64_t rows) {
    par_hist_work = hist_work > 0 ? hist_work : 1 << 20;
    par_rows = rows > 0 ? rows : 65536;
}

/* ---- split finding ------------------------------------------------------- */

rk_split rk_best_split_feature(const rk_hist *hist, int nb, double g, double h, int64_t n,
                               const rk_split_cfg *cfg, int32_t feat) {
    rk_split best = {0};
    best.feat = -1;
    const double parent = g * g / (h + cfg->l2);
    const rk_hist nan = hist[0];
    double lg = 0, lh = 0;
    int64_t ln = 0;
    for (int t = 1; t < nb; t++) {
        lg += hist[t].g;
        lh += hist[t].h;
        ln += hist[t].n;
        for (int dl = 0; dl < 2; dl++) {
            double sg = lg, sh = lh;
            int64_t sn = ln;
            if (nan.n == 0) {
                if (dl) break; /* one configuration; NAN follows the larger child */
            }
            else if (dl) {
                sg += nan.g;
                sh += nan.h;
                sn += nan.n;
            }
            double rg = g - sg, rh = h - sh;
            int64_t rn = n - sn;
            if (sn < cfg->min_leaf || rn < cfg->min_leaf || sh < cfg->min_hess ||
                rh < cfg->min_hess)
                continue;
            double gain = sg * sg / (sh + cfg->l2) + rg * rg / (rh + cfg->l2) - parent;
            if (gain > best.gain) {
                best.gain = gain;
                best.feat = feat;
                best.bin = t;
                best.dleft = nan.n ? dl : (sn >= rn);
                best.lg = sg;
                best.lh = sh;
                best.ln = sn;
            }
        }
    }
    return best;
}

/* ---- training state ------------------------------------------------------- */

typedef struct leaf_st {
    int64_t begin, end; /* range in idx / og / oh */
    double g, h;
    int64_t n;
    rk_hist *hist;
    rk_split best;
    int32_t parent; /* internal node that points at this leaf, -1 for the root */
    int side;
    int depth;
} leaf_st;

typedef struct tree_buf { /* growing model arrays */
    rk_node *nodes;
    double *gain;
    float *leaf;
    int64_t n_nodes, cap_nodes, n_leaves, cap_leaves;
    int64_t *node_off, *leaf_off;
} tree_buf;

typedef struct gbdt {
    const rf_ranker_opts *o;
    const rf_rank_data *d;
    rk_bins bins;
    int hb; /* histogram stride per feature: the most bins of any feature + 1 */
    rk_split_cfg cfg;
    int32_t *idx, *tmp_idx;
    float *g, *h, *og, *oh, *tmp_g, *tmp_h;
    double *score;
    uint8_t *live;   /* group has gradients at all */
    double *idcg;    /* ideal DCG@ndcg_at per group */
    uint8_t *in_tree; /* group sampled this round */
    int32_t *feats;  /* features tried this tree, ascending */
    int32_t n_used;
    rk_hist *pool;   /* max_leaves histograms */
    rk_hist **free_h;
    int n_free;
    leaf_st *leaves;
    rk_split *fsplit; /* per feature scratch: [2 * n_feats] */
    int64_t max_group;
} gbdt;

/* Room for `nodes` more nodes and `leaves` more leaves (capacities
 * double); -1 on ENOMEM with the arrays kept. */
static int tb_reserve(tree_buf *t, int64_t nodes, int64_t leaves) {
    if (t->n_nodes + nodes > t->cap_nodes) {
        int64_t c = t->cap_nodes ? t->cap_nodes * 2 : 1024;
        while (c < t->n_nodes + nodes) c *= 2;
        rk_node *nn = rf_realloc_array(t->nodes, (size_t)c, sizeof *nn);
        if (nn) t->nodes = nn;
        double *ng = nn ? rf_realloc_array(t->gain, (size_t)c, sizeof *ng) : NULL;
        if (!ng) return -1;
        t->gain = ng;
        t->cap_nodes = c;
    }
    if (t->n_leaves + leaves > t->cap_leaves) {
        int64_t c = t->cap_leaves ? t->cap_leaves * 2 : 1024;
        while (c < t->n_leaves + leaves) c *= 2;
        float *nl = rf_realloc_array(t->leaf, (size_t)c, sizeof *nl);
        if (!nl) return -1;
        t->leaf = nl;
        t->cap_leaves = c;
    }
    return 0;
}

#define HIST_MAX_FEATS 64 /* features per call of the inner kernel */
#define PREFETCH 16       /* rows ahead */

void rk_hist_build(const uint8_t *bin, int32_t nf, const int32_t *idx, const float *og,
                   const float *oh, int64_t cnt, const int32_t *feats, int32_t nu, const int *nb,
                   rk_hist *hist, int hb) {
    for (int32_t u0 = 0; u0 < nu; u0 += HIST_MAX_FEATS) {
        const int32_t m = nu - u0 < HIST_MAX_FEATS ? nu - u0 : HIST_MAX_FEATS;
        rk_hist *base[HIST_MAX_FEATS];
        int32_t fo[HIST_MAX_FEATS];
        for (int32_t u = 0; u < m; u++) {
            fo[u] = feats[u0 + u];
            base[u] = hist + (size_t)fo[u] * hb;
            memset(base[u], 0, (size_t)(nb[fo[u]] + 1) * sizeof *hist);
        }
        for (int64_t k = 0; k < cnt; k++) {
            const uint8_t *row = bin + (size_t)idx[k] * (size_t)nf;
            /* a leaf's rows are scattered over the matrix: fetch ahead */
            if (k + PREFETCH < cnt)
                __builtin_prefetch(bin + (size_t)idx[k + PREFETCH] * (size_t)nf + fo[0]);
            const double g = og[k], h = oh[k];
            for (int32_t u = 0; u < m; u++) {
                rk_hist *e = base[u] + row[fo[u]];
                e->g += g;
                e->h += h;
                e->n++;
            }
        }
    }
}

/* Whether leaf L may still be split (depth and size limits). */
static int splittable(const gbdt *G, const leaf_st *L) {
    return (G->o->max_depth == 0 || L->depth < G->o->max_depth) && L->n >= 2 * G->cfg.min_leaf;
}

/* Histograms of `small` (built) and `large` (= its buffer, holding the
 * parent, minus small) for the used features, then both best splits;
 * work a leaf cannot use (it may not be split) is skipped. large may be
 * NULL for the root. Tasks are blocks of used features, two per thread;
 * the per-feature results and their serial reduction in feature order do
 * not depend on the blocks. */
static void hist_and_split(gbdt *G, leaf_st *small, leaf_st *large) {
    rk_split *fs = G->fsplit;
    const int32_t n_used = G->n_used, nf = G->d->n_feats;
    const int need_s = splittable(G, small), need_l = large && splittable(G, large);
    small->best = (rk_split){.feat = -1};
    if (large) large->best = (rk_split){.feat = -1};
    if (!need_s && !need_l) return;
    const int par = (small->end - small->begin) * (int64_t)n_used >= par_hist_work;
    const int32_t want = par ? 2 * rf_threads() : 1;
    const int32_t fb = (n_used + want - 1) / want; /* features per block */
    const int32_t n_blocks = (n_used + fb - 1) / fb;
#pragma omp parallel for schedule(dynamic) num_threads(rf_threads()) if (par)
    for (int32_t blk = 0; blk < n_blocks; blk++) {
        const int32_t u0 = blk * fb;
        const int32_t nu = n_used - u0 < fb ? n_used - u0 : fb;
        rk_hist_build(G->bins.bin, nf, G->idx + small->begin, G->og + small->begin,
                      G->oh + small->begin, small->end - small->begin, G->feats + u0, nu,
                      G->bins.nb, small->hist, G->hb);
        for (int32_t u = u0; u < u0 + nu; u++) {
            const int32_t f = G->feats[u];
            const int nb = G->bins.nb[f];
            rk_hist *hs = small->hist + (size_t)f * G->hb;
            if (need_s)
                fs[2 * u] =
                    rk_best_split_feature(hs, nb, small->g, small->h, small->n, &G->cfg, f);
            if (need_l) {
                rk_hist *hl = large->hist + (size_t)f * G->hb;
                for (int b = 0; b <= nb; b++) {
                    hl[b].g -= hs[b].g;
                    hl[b].h -= hs[b].h;
                    hl[b].n -= hs[b].n;
                }
                fs[2 * u + 1] =
                    rk_best_split_feature(hl, nb, large->g, large->h, large->n, &G->cfg, f);
            }
        }
    }
    for (int32_t u = 0; u < n_used; u++) {
        if (need_s && fs[2 * u].gain > small->best.gain) small->best = fs[2 * u];
        if (need_l && fs[2 * u + 1].gain > large->best.gain) large->best = fs[2 * u + 1];
    }
}

/* Stable partition of leaf rows by the split into [begin, mid) left and
 * [mid, end) right; returns mid. */
static int64_t partition(gbdt *G, const leaf_st *L) {
    const rk_split *s = &L->best;
    const uint8_t *col = G->bins.bin + s->feat;
    const size_t nf = (size_t)G->d->n_feats;
    int64_t w = L->begin, r = 0;
    /* branch-free: every row is written to both sides, the counters move
     * on one (w <= k, so the in-place left side never overtakes k) */
    for (int64_t k = L->begin; k < L->end; k++) {
        if (k + PREFETCH < L->end) __builtin_prefetch(col + (size_t)G->idx[k + PREFETCH] * nf);
        const int32_t i = G->idx[k];
        const float gk = G->og[k], hk = G->oh[k];
        const int b = col[(size_t)i * nf];
        const int left = b == 0 ? s->dleft : b <= s->bin;
        G->idx[w] = i;
        G->og[w] = gk;
        G->oh[w] = hk;
        G->tmp_idx[r] = i;
        G->tmp_g[r] = gk;
        G->tmp_h[r] = hk;
        w += left;
        r += !left;
    }
    memcpy(G->idx + w, G->tmp_idx, (size_t)r * sizeof *G->idx);
    memcpy(G->og + w, G->tmp_g, (size_t)r * sizeof *G->og);
    memcpy(G->oh + w, G->tmp_h, (size_t)r * sizeof *G->oh);
    return w;
}

static double leaf_value(const gbdt *G, double g, double h) {
    return G->o->learning_rate * (-g / (h + G->cfg.l2));
}

/* Walk tree (nodes, leaves) on binned row i; returns the leaf index. */
static int32_t walk_bins(const gbdt *G, const rk_node *nd, int64_t n_nodes, const int *bin_thr,
                         int64_t i) {
    if (n_nodes == 0) return 0;
    int32_t c = 0;
    do {
        const rk_node *q = nd + c;
        int b = G->bins.bin[(size_t)i * (size_t)G->d->n_feats + (size_t)q->feat];
        int left = b == 0 ? q->dleft : b <= bin_thr[c];
        c = q->child[!left];
    } while (c >= 0);
    return ~c;
}

/* Grow one tree on the rows of the sampled live groups; append it to tb
 * and add its values to the training scores. Returns 0, -1 on ENOMEM. */
static int grow_tree(gbdt *G, tree_buf *tb, int round, int *bin_thr) {
    const rf_rank_data *d = G->d;
    const rf_ranker_opts *o = G->o;
    /* rows */
    int64_t cnt = 0;
    for (int64_t q = 0; q < d->n_groups; q++) {
        if (!G->in_tree[q]) continue;
        for (int64_t i = d->group[q]; i < d->group[q + 1]; i++) {
            G->idx[cnt] = (int32_t)i;
            G->og[cnt] = G->g[i];
            G->oh[cnt] = G->h[i];
            cnt++;
        }
    }
    /* features */
    const int32_t nf = d->n_feats;
    int32_t n_used = (int32_t)llround(o->feature_fraction * nf);
    if (n_used < 1) n_used = 1;
    if (n_used > nf) n_used = nf;
    for (int32_t f = 0; f < nf; f++) G->feats[f] = f;
    if (n_used < nf) {
        rf_rng rng;
        rf_rng_stream(&rng, o->seed, 2 * (uint64_t)round + 1);
        rf_rng_shuffle_i32(&rng, G->feats, nf);
        /* ascending, so ties between features resolve the same way */
        for (int32_t a = 1; a < n_used; a++)
            for (int32_t b = a; b > 0 && G->feats[b - 1] > G->feats[b]; b--) {
                int32_t t = G->feats[b];
                G->feats[b] = G->feats[b - 1];
                G->feats[b - 1] = t;
            }
    }
    G->n_used = n_used;

    if (tb_reserve(tb, o->max_leaves, o->max_leaves + 1)) return -1;
    rk_node *nodes = tb->nodes + tb->n_nodes;
    double *ngain = tb->gain + tb->n_nodes;
    int64_t n_nodes = 0;
    int n_leaves = 1;
    G->n_free = o->max_leaves;
    for (int k = 0; k < o->max_leaves; k++)
        G->free_h[k] = G->pool + (size_t)(o->max_leaves - 1 - k) * nf * G->hb;

    leaf_st *root = &G->leaves[0];
    *root = (leaf_st){.begin = 0, .end = cnt, .parent = -1};
    for (int64_t k = 0; k < cnt; k++) {
        root->g += G->og[k];
        root->h += G->oh[k];
    }
    root->n = cnt;
    root->hist = G->free_h[--G->n_free];
    hist_and_split(G, root, NULL);

    while (n_leaves < o->max_leaves) {
        int pick = -1;
        double best = GAIN_EPS;
        for (int l = 0; l < n_leaves; l++)
            if (G->leaves[l].best.feat >= 0 && G->leaves[l].best.gain > best) {
                best = G->leaves[l].best.gain;
                pick = l;
            }
        if (pick < 0) break;
        leaf_st *L = &G->leaves[pick];
        const rk_split s = L->best;
        /* the new internal node replaces the leaf */
        int32_t ni = (int32_t)n_nodes++;
        rk_node *nd = &nodes[ni];
        nd->feat = s.feat;
        nd->thr = G->bins.upper[s.feat][s.bin];
        nd->dleft = s.dleft;
        nd->value = (float)leaf_value(G, L->g, L->h);
        ngain[ni] = s.gain;
        bin_thr[ni] = s.bin;
        if (L->parent >= 0) nodes[L->parent].child[L->side] = ni;
        int64_t mid = partition(G, L);
        leaf_st left = {.begin = L->begin, .end = mid, .g = s.lg, .h = s.lh, .n = s.ln,
                        .parent = ni, .side = 0, .depth = L->depth + 1};
        leaf_st right = {.begin = mid, .end = L->end, .g = L->g - s.lg, .h = L->h - s.lh,
                         .n = L->n - s.ln, .parent = ni, .side = 1, .depth = L->depth + 1};
        int rid = n_leaves++;
        nd->child[0] = ~pick;
        nd->child[1] = ~rid;
        rk_hist *parent_hist = L->hist;
        rk_hist *fresh = G->free_h[--G->n_free];
        if (left.n <= right.n) {
            left.hist = fresh;
            right.hist = parent_hist;
            hist_and_split(G, &left, &right);
        }
        else {
            right.hist = fresh;
            left.hist = parent_hist;
            hist_and_split(G, &right, &left);
        }
        G->leaves[pick] = left;
        G->leaves[rid] = right;
    }
    /* leaf values, training scores of the rows in the tree */
    float *lv = tb->leaf + tb->n_leaves;
    for (int l = 0; l < n_leaves; l++) {
        leaf_st *L = &G->leaves[l];
        lv[l] = (float)leaf_value(G, L->g, L->h);
        for (int64_t k = L->begin; k < L->end; k++) G->score[G->idx[k]] += lv[l];
    }
    /* live groups left out of this tree still need its values */
#pragma omp parallel for schedule(dynamic, 16) num_threads(rf_threads()) \
    if (o->row_fraction < 1 && d->n_rows >= par_rows)
    for (int64_t q = 0; q < d->n_groups; q++) {
        if (!G->live[q] || G->in_tree[q]) continue;
        for (int64_t i = d->group[q]; i < d->group[q + 1]; i++)
            G->score[i] += lv[walk_bins(G, nodes, n_nodes, bin_thr, i)];
    }
    tb->n_nodes += n_nodes;
    tb->n_leaves += n_leaves;
    return 0;
}

/* ---- fit -------------------------------------------------------------------- */

/* Gradients of every sampled live group into G->g / G->h. */
static int compute_gradients(gbdt *G) {
    const rf_rank_data *d = G->d;
    int fail = 0;
#pragma omp parallel num_threads(rf_threads()) if (d->n_rows >= par_rows)
    {
        rk_lambda_ws ws;
        if (rk_ws_init(&ws, G->max_group)) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t q = 0; q < d->n_groups; q++) {
            if (!ws.order || !G->in_tree[q]) continue;
            int64_t a = d->group[q], n = d->group[q + 1] - a;
            rk_lambda_group(d->label + a, G->score + a, n, G->o->ndcg_at, 0, G->idcg[q], &ws,
                            G->g + a, G->h + a);
        }
        rk_ws_free(&ws);
    }
    return fail ? -1 : 0;
}

/* Mean NDCG@k over groups with a positive label, summed in group order. */
static double mean_ndcg(const rf_rank_data *d, const double *score, int k, int64_t max_group,
                        double *per_group, int *fail) {
#pragma omp parallel num_threads(rf_threads()) if (d->n_rows >= par_rows)
    {
        int32_t *order = rf_malloc_array((size_t)max_group, sizeof *order);
        double *scratch = rf_malloc_array((size_t)max_group, sizeof *scratch);
        if (!order || !scratch) {
#pragma omp atomic write
            *fail = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t q = 0; q < d->n_groups; q++) {
            if (!order || !scratch) continue;
            int64_t a = d->group[q];
            per_group[q] = rk_group_ndcg(d->label + a, score + a, d->group[q + 1] - a, k, order,
                                         scratch);
        }
        rf_free(order);
        rf_free(scratch);
    }
    double s = 0;
    int64_t c = 0;
    for (int64_t q = 0; q < d->n_groups; q++)
        if (per_group[q] >= 0) {
            s += per_group[q];
            c++;
        }
    return c ? s / (double)c : 0;
}

static int64_t max_group_size(const rf_rank_data *d) {
    int64_t m = 1;
    for (int64_t q = 0; q < d->n_groups; q++)
        if (d->group[q + 1] - d->group[q] > m) m = d->group[q + 1] - d->group[q];
    return m;
}

static void gbdt_free_state(gbdt *G) {
    rk_bins_free(&G->bins);
    rf_free(G->idx);
    rf_free(G->tmp_idx);
    rf_free(G->g);
    rf_free(G->h);
    rf_free(G->og);
    rf_free(G->oh);
    rf_free(G->tmp_g);
    rf_free(G->tmp_h);
    rf_free(G->score);
    rf_free(G->live);
    rf_free(G->idcg);
    rf_free(G->in_tree);
    rf_free(G->feats);
    rf_free(G->pool);
    rf_free(G->free_h);
    rf_free(G->leaves);
    rf_free(G->fsplit);
}

int rk_gbdt_fit(const rf_ranker_opts *o, const rf_rank_data *train, const rf_rank_data *valid,
                rf_ranker *r, rf_err *err) {
    gbdt G = {0};
    G.o = o;
    G.d = train;
    G.cfg = (rk_split_cfg){.l2 = o->l2, .min_hess = o->min_hess, .min_leaf = o->min_leaf};
    tree_buf tb = {0};
    double *vscore = NULL, *vndcg = NULL;
    int *bin_thr = NULL;
    rf_progress *prog = NULL;
    const int64_t n = train->n_rows;
    const int32_t nf = train->n_feats;
    int rc = rk_bins_build(&G.bins, train->x, n, nf, o->max_bins, o->seed, err);
    if (rc) return rc;
    /* one histogram per leaf: stride = the most bins any feature got */
    G.hb = 2;
    for (int32_t f = 0; f < nf; f++)
        if (G.bins.nb[f] + 1 > G.hb) G.hb = G.bins.nb[f] + 1;
    const double pool_bytes = (double)o->max_leaves * nf * G.hb * sizeof(rk_hist);
    if (pool_bytes > 8e9) {
        rk_bins_free(&G.bins);
        return rf_err_set(err, RF_ETOOBIG,
                          "ranker: histograms of %d leaves x %d features x %d bins need %.1f GB; "
                          "use fewer leaves or bins",
                          o->max_leaves, (int)nf, G.hb, pool_bytes / 1e9);
    }
    G.max_group = max_group_size(train);
    size_t nn = (size_t)(n ? n : 1);
    G.idx = rf_malloc_array(nn, sizeof *G.idx);
    G.tmp_idx = rf_malloc_array(nn, sizeof *G.tmp_idx);
    G.g = rf_calloc(nn, sizeof *G.g);
    G.h = rf_calloc(nn, sizeof *G.h);
    G.og = rf_malloc_array(nn, sizeof *G.og);
    G.oh = rf_malloc_array(nn, sizeof *G.oh);
    G.tmp_g = rf_malloc_array(nn, sizeof *G.tmp_g);
    G.tmp_h = rf_malloc_array(nn, sizeof *G.tmp_h);
    G.score = rf_calloc(nn, sizeof *G.score);
    G.live = rf_calloc((size_t)train->n_groups + 1, 1);
    G.idcg = rf_calloc((size_t)train->n_groups + 1, sizeof *G.idcg);
    G.in_tree = rf_calloc((size_t)train->n_groups + 1, 1);
    G.feats = rf_malloc_array((size_t)nf, sizeof *G.feats);
    G.pool = rf_malloc_array((size_t)o->max_leaves * (size_t)nf * (size_t)G.hb, sizeof *G.pool);
    G.free_h = rf_malloc_array((size_t)o->max_leaves, sizeof *G.free_h);
    G.leaves = rf_malloc_array((size_t)o->max_leaves, sizeof *G.leaves);
    G.fsplit = rf_malloc_array((size_t)nf * 2, sizeof *G.fsplit);
    bin_thr = rf_malloc_array((size_t)o->max_leaves, sizeof *bin_thr);
    tb.node_off = rf_calloc((size_t)o->n_trees + 1, sizeof *tb.node_off);
    tb.leaf_off = rf_calloc((size_t)o->n_trees + 1, sizeof *tb.leaf_off);
    if (valid) {
        vscore = rf_calloc((size_t)(valid->n_rows ? valid->n_rows : 1), sizeof *vscore);
        vndcg = rf_malloc_array((size_t)valid->n_groups + 1, sizeof *vndcg);
    }
    if (!G.idx || !G.tmp_idx || !G.g || !G.h || !G.og || !G.oh || !G.tmp_g || !G.tmp_h ||
        !G.score || !G.live || !G.idcg || !G.in_tree || !G.feats || !G.pool || !G.free_h || !G.leaves ||
        !G.fsplit || !bin_thr || !tb.node_off || !tb.leaf_off || (valid && (!vscore || !vndcg)))
        goto nomem;

    int64_t n_live = 0;
    for (int64_t q = 0; q < train->n_groups; q++) {
        float lmin = INFINITY, lmax = -INFINITY;
        for (int64_t i = train->group[q]; i < train->group[q + 1]; i++) {
            if (train->label[i] < lmin) lmin = train->label[i];
            if (train->label[i] > lmax) lmax = train->label[i];
        }
        G.live[q] = lmax > 0 && lmin < lmax;
        n_live += G.live[q];
    }
    {
        double *scratch = rf_malloc_array((size_t)G.max_group, sizeof *scratch);
        if (!scratch) goto nomem;
        for (int64_t q = 0; q < train->n_groups; q++)
            if (G.live[q])
                G.idcg[q] = rk_ideal_dcg(train->label + train->group[q],
                                         train->group[q + 1] - train->group[q], o->ndcg_at,
                                         scratch);
        rf_free(scratch);
    }
    const int use_valid = valid && o->early_stop > 0;
    const int vk = o->ndcg_at;
    int64_t vmax = valid ? max_group_size(valid) : 1;
    double best_ndcg = -1;
    int best_round = 0, rounds = 0;
    prog = rf_progress_start("lambdamart", o->n_trees);
    for (int round = 0; round < o->n_trees; round++) {
        /* groups in this tree */
        rf_rng rng;
        rf_rng_stream(&rng, o->seed, 2 * (uint64_t)round + 2);
        int64_t n_in = 0;
        for (int64_t q = 0; q < train->n_groups; q++) {
            int in = G.live[q] && (o->row_fraction >= 1 || rf_rng_uniform(&rng) < o->row_fraction);
            G.in_tree[q] = (uint8_t)in;
            n_in += in;
        }
        if (n_in == 0 && n_live > 0) {
            int64_t pickq = (int64_t)rf_rng_below(&rng, (uint64_t)n_live);
            for (int64_t q = 0; q < train->n_groups; q++)
                if (G.live[q] && pickq-- == 0) G.in_tree[q] = 1;
        }
        if (compute_gradients(&G)) goto nomem;
        int64_t before = tb.n_nodes;
        if (grow_tree(&G, &tb, round, bin_thr)) goto nomem;
        tb.node_off[round + 1] = tb.n_nodes;
        tb.leaf_off[round + 1] = tb.n_leaves;
        rounds = round + 1;
        rf_progress_set(prog, rounds);
        int no_split = tb.n_nodes == before;
        if (use_valid) {
            const rk_node *nd = tb.nodes + tb.node_off[round];
            const float *lv = tb.leaf + tb.leaf_off[round];
            int64_t nn_t = tb.n_nodes - tb.node_off[round];
#pragma omp parallel for schedule(static) num_threads(rf_threads()) if (valid->n_rows >= par_rows)
            for (int64_t i = 0; i < valid->n_rows; i++)
                vscore[i] += rk_tree_eval(nd, nn_t, lv, valid->x + i * valid->n_feats);
            int fail = 0;
            double v = mean_ndcg(valid, vscore, vk, vmax, vndcg, &fail);
            if (fail) goto nomem;
            if (v > best_ndcg) {
                best_ndcg = v;
                best_round = rounds;
            }
            rf_log(RF_LOG_DEBUG, "ranker.round", "round=%d valid_ndcg=%.6f best=%d", rounds, v,
                   best_round);
            if (rounds - best_round >= o->early_stop) break;
        }
        if (no_split) break; /* gradients no longer change: later trees would be empty too */
    }
    rf_progress_finish(prog);
    prog = NULL;
    int keep = use_valid ? best_round : rounds;
    if (use_valid)
        rf_log(RF_LOG_INFO, "ranker.fit", "trees=%d rounds=%d valid_ndcg@%d=%.6f", keep, rounds,
               vk, best_ndcg);
    r->n_trees = keep;
    r->node_off = tb.node_off;
    r->leaf_off = tb.leaf_off;
    r->nodes = tb.nodes;
    r->gain = tb.gain;
    r->leaf = tb.leaf;
    tb = (tree_buf){0};
    /* give back what the dropped rounds used; a failed shrink keeps the old block */
    int64_t kn = r->node_off[keep], kl = r->leaf_off[keep];
    if (r->nodes && kn > 0) {
        void *p = rf_realloc_array(r->nodes, (size_t)kn, sizeof *r->nodes);
        if (p) r->nodes = p;
        p = rf_realloc_array(r->gain, (size_t)kn, sizeof *r->gain);
        if (p) r->gain = p;
    }
    if (r->leaf && kl > 0) {
        void *p = rf_realloc_array(r->leaf, (size_t)kl, sizeof *r->leaf);
        if (p) r->leaf = p;
    }
    rf_free(vscore);
    rf_free(vndcg);
    rf_free(bin_thr);
    gbdt_free_state(&G);
    return rk_gbdt_pack(r, err);
nomem:
    rf_progress_finish(prog);
    rf_free(tb.nodes);
    rf_free(tb.gain);
    rf_free(tb.leaf);
    rf_free(tb.node_off);
    rf_free(tb.leaf_off);
    rf_free(vscore);
    rf_free(vndcg);
    rf_free(bin_thr);
    gbdt_free_state(&G);
    return rf_err_set(err, RF_ENOMEM, "ranker: out of memory training on %lld rows",
                      (long long)n);
}

