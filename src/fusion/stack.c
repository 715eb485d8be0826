/* stack.c - training the fused model by stacking.
 *
 * 1. Cut a ranker slice from the training log: per user, the last
 *    slice_ratio of the user's pairs (the Protocol A rule applied to the
 *    training data, rf_split_user_ratio) or, with slice=time, every pair
 *    first seen in the last slice_ratio of the time span (rf_split_time).
 * 2. Fit every channel on the rest (stage 1). The slice's pairs are not in
 *    that data (the split guarantees it; test_fusion checks it through
 *    the stage hook), so the channels' scores on the slice are honest -
 *    as they will be on future data.
 * 3. For every slice user: candidates from the stage-1 channels, feature
 *    rows, labels from the slice graded by event type (purchase 3, cart
 *    2, anything else 1; ratings count as 1). A share valid_share of the
 *    slice users (drawn with the seed) is kept apart for early stopping.
 * 4. Tune the blends (weights, best channel) on the slice rows and train
 *    the ranker (GBDT LambdaMART or linear, ranker.h).
 * 5. Refit every channel on all the data and rebuild the side tables, so
 *    serving uses everything; the ranker learnt on per-user normalised
 *    scores and ranks, which survive the refit's change of scale.
 *
 * DESIGN: slice users are processed in parallel, each producing its own
 * block of rows; blocks are concatenated in user order, so the ranker
 * data (and the model) do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "fusion/fusion_int.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

int fu_channel_fit(int kind, const rf_dataset_opts *opts, const rf_dataset *d, rf_model **out,
                   rf_err *err) {
    rf_model *m = NULL;
    int rc = rf_model_new(fu_kind_names[kind], &m, err);
    if (rc) return rc;
    rf_dataset_opts mo = *opts;
    if (m->ops->data_defaults) m->ops->data_defaults(&mo);
    m->data_opts = mo;
    if (rf_dataset_opts_equal(&mo, opts) || !d->events) {
        rc = rf_model_fit(m, d, err);
    } else {
        rf_dataset *own = NULL;
        rc = rf_dataset_build(d->events, &mo, &own, err);
        if (rc == 0) {
            own->catalog = d->catalog;
            own->events = d->events;
            own->users_info = d->users_info;
            rc = rf_model_fit(m, own, err);
        }
        rf_dataset_free(own);
    }
    if (rc) {
        if (err) rf_err_prefix(err, "fusion channel %s", fu_kind_names[kind]);
        rf_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static int fit_channels(const fu_impl *f, const rf_dataset_opts *opts, const rf_dataset *d,
                        rf_model **ch, rf_err *err) {
    for (int k = 0; k < f->n_ch; k++) {
        int rc = fu_channel_fit(f->kind[k], opts, d, &ch[k], err);
        if (rc) {
            for (int q = 0; q < k; q++) {
                rf_model_free(ch[q]);
                ch[q] = NULL;
            }
            return rc;
        }
    }
    return 0;
}

/* Slice label of one event type. */
static float grade(int type) {
    return type == RF_EV_PURCHASE ? 3.0f : type == RF_EV_CART ? 2.0f : 1.0f;
}

typedef struct lab {
    int32_t user, item;
    float g;
} lab;

static int cmp_lab(const void *a, const void *b) {
    const lab *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* One slice user's block of ranker rows. */
typedef struct ublock {
    int32_t n;
    float *x, *y;
    int32_t found, pos; /* positives among the candidates / in the slice */
    int valid;
} ublock;

static int64_t time_cutoff(const rf_events *ev, double ratio) {
    int64_t *t = rf_malloc_array((size_t)ev->n, sizeof *t);
    if (!t) return INT64_MIN;
    memcpy(t, ev->ts, (size_t)ev->n * sizeof *t);
    int64_t lo = t[0], hi = t[0];
    for (int64_t i = 1; i < ev->n; i++) {
        if (t[i] < lo) lo = t[i];
        if (t[i] > hi) hi = t[i];
    }
    rf_free(t);
    return hi - (int64_t)((double)(hi - lo) * ratio);
}

/* Concatenate the blocks with valid == want into rank data (allocated). */
static int gather(const ublock *b, int32_t nb, int want, int nf, rf_rank_data *rd, float **x,
                  float **y, int64_t **grp) {
    int64_t rows = 0, groups = 0;
    for (int32_t i = 0; i < nb; i++)
        if (b[i].valid == want && b[i].found > 0) {
            rows += b[i].n;
            groups++;
        }
    *x = rf_malloc_array((size_t)(rows ? rows : 1) * (size_t)nf, sizeof **x);
    *y = rf_malloc_array((size_t)(rows ? rows : 1), sizeof **y);
    *grp = rf_malloc_array((size_t)groups + 1, sizeof **grp);
    if (!*x || !*y || !*grp) return RF_ENOMEM;
    int64_t r = 0, g = 0;
    (*grp)[0] = 0;
    for (int32_t i = 0; i < nb; i++) {
        if (b[i].valid != want || b[i].found == 0) continue;
        memcpy(*x + (size_t)r * (size_t)nf, b[i].x, (size_t)b[i].n * (size_t)nf * sizeof(float));
        memcpy(*y + r, b[i].y, (size_t)b[i].n * sizeof(float));
        r += b[i].n;
        (*grp)[++g] = r;
    }
    rd->n_rows = rows;
    rd->n_feats = nf;
    rd->x = *x;
    rd->label = *y;
    rd->n_groups = groups;
    rd->group = *grp;
    return 0;
}

typedef struct ukey {
    uint64_t key;
    int32_t at;
} ukey;

static int cmp_ukey(const void *a, const void *b) {
    const ukey *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->at > y->at) - (x->at < y->at);
}

/* Keep slice_users of the *nb slice users (a seeded draw; deterministic),
 * compacting users[] and their label ranges [lbeg, lend) in user order. */
static int sample_users(const fu_params *p, int32_t *users, int64_t *lbeg, int64_t *lend,
                        int32_t *nb) {
    int32_t n = *nb, keep = p->slice_users;
    ukey *k = rf_malloc_array((size_t)n, sizeof *k);
    int32_t *pick = rf_malloc_array((size_t)keep, sizeof *pick);
    if (!k || !pick) {
        rf_free(k);
        rf_free(pick);
        return RF_ENOMEM;
    }
    for (int32_t b = 0; b < n; b++) {
        rf_rng r;
        rf_rng_stream(&r, (uint64_t)p->seed ^ 0x5eedULL, (uint64_t)users[b]);
        k[b].key = rf_rng_next(&r);
        k[b].at = b;
    }
    qsort(k, (size_t)n, sizeof *k, cmp_ukey);
    for (int32_t q = 0; q < keep; q++) pick[q] = k[q].at;
    qsort(pick, (size_t)keep, sizeof *pick, fu_cmp_i32);
    for (int32_t q = 0; q < keep; q++) { /* pick ascends: in-place compaction */
        users[q] = users[pick[q]];
        lbeg[q] = lbeg[pick[q]];
        lend[q] = lend[pick[q]];
    }
    rf_free(k);
    rf_free(pick);
    *nb = keep;
    return 0;
}

static int fusion_params_empty(const fu_params *p) {
    for (int k = 0; k < FU_N_KINDS; k++)
        if (p->cand[k] > 0) return 0;
    return 1;
}

/* Ranker options from the model parameters. */
static void ranker_opts(const fu_params *p, rf_ranker_opts *o) {
    rf_ranker_opts_default(o);
    o->kind = p->ranker == FU_LINEAR ? RF_RANKER_LINEAR : RF_RANKER_GBDT;
    o->n_trees = p->trees;
    o->max_leaves = p->leaves;
    o->min_leaf = p->min_leaf;
    o->learning_rate = p->lr;
    o->l2 = p->l2;
    o->max_bins = p->bins;
    o->feature_fraction = p->ff;
    o->ndcg_at = p->ndcg_at;
    o->early_stop = p->early_stop;
    o->epochs = p->epochs;
    o->seed = (uint64_t)p->seed;
}

/* Stage 1 and the ranker: everything that uses the slice. */
static int learn_on_slice(rf_model *m, const rf_dataset *d, rf_err *err) {
    const fu_params *p = m->params;
    fu_impl *f = m->impl;
    rf_split sp = {0};
    rf_dataset *d1 = NULL;
    rf_model *ch1[FU_MAX_CH] = {0};
    fu_impl f1;
    lab *labs = NULL;
    int32_t *users = NULL;
    int64_t *lbeg = NULL, *lend = NULL;
    ublock *blk = NULL;
    int32_t nb = 0;
    float *tx = NULL, *ty = NULL, *vx = NULL, *vy = NULL;
    int64_t *tg = NULL, *vg = NULL;
    int rc;
    memset(&f1, 0, sizeof f1);
    if (p->slice == FU_SLICE_TIME) {
        int64_t cut = time_cutoff(d->events, p->slice_ratio);
        if (cut == INT64_MIN) return rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
        rc = rf_split_time(d->events, cut, &sp, err);
    } else {
        rc = rf_split_user_ratio(d->events, p->slice_ratio, RF_SPLIT_MIN_ITEMS, &sp, err);
    }
    if (rc) return rc;
    if (sp.test->n == 0) {
        rf_log(RF_LOG_WARN, "fusion.slice", "msg=\"empty ranker slice: equal-weight blend\"");
        for (int k = 0; k < f->n_ch; k++) f->w[k] = 1;
        f->mode = FU_WEIGHTED;
        goto done;
    }
    if ((rc = rf_dataset_build(sp.train, &m->data_opts, &d1, err))) goto done;
    d1->catalog = d->catalog;
    d1->events = sp.train;
    d1->users_info = d->users_info;
    double t0 = rf_mono();
    if ((rc = fit_channels(f, &m->data_opts, d1, ch1, err))) goto done;
    if (f->hook) f->hook(f->hook_ud, d1, sp.test);
    f1 = *f;
    memcpy(f1.ch, ch1, sizeof ch1);
    f1.ranker = NULL;
    memset(f1.fixed, 0, sizeof f1.fixed);
    memset(f1.fixed_order, 0, sizeof f1.fixed_order);
    if ((rc = fu_fixed_init(&f1, d->n_items, err))) goto done;
    if ((rc = fu_side_build(&f1.side, d1, sp.train, d->catalog, d->users_info, err))) goto done;
    rf_log(RF_LOG_INFO, "fusion.stage1", "channels=%d slice_events=%lld seconds=%.2f", f->n_ch,
           (long long)sp.test->n, rf_mono() - t0);

    /* slice labels, one per (user, item): the best grade */
    const rf_events *se = sp.test;
    labs = rf_malloc_array((size_t)se->n, sizeof *labs);
    if (!labs) goto nomem;
    for (int64_t e = 0; e < se->n; e++) {
        labs[e].user = se->user[e];
        labs[e].item = se->item[e];
        labs[e].g = se->type[e] == RF_EV_RATING ? 1.0f : grade(se->type[e]);
    }
    qsort(labs, (size_t)se->n, sizeof *labs, cmp_lab);
    int64_t nl = 0;
    for (int64_t e = 0; e < se->n; e++) {
        if (nl > 0 && labs[nl - 1].user == labs[e].user && labs[nl - 1].item == labs[e].item) {
            if (labs[e].g > labs[nl - 1].g) labs[nl - 1].g = labs[e].g;
        } else {
            labs[nl++] = labs[e];
        }
    }
    users = rf_malloc_array((size_t)nl + 1, sizeof *users);
    lbeg = rf_malloc_array((size_t)nl + 1, sizeof *lbeg);
    lend = rf_malloc_array((size_t)nl + 1, sizeof *lend);
    if (!users || !lbeg || !lend) goto nomem;
    for (int64_t e = 0; e < nl; e++)
        if (e == 0 || labs[e].user != labs[e - 1].user) {
            if (nb > 0) lend[nb - 1] = e;
            users[nb] = labs[e].user;
            lbeg[nb++] = e;
        }
    if (nb > 0) lend[nb - 1] = nl;
    if (p->slice_users > 0 && nb > p->slice_users &&
        sample_users(p, users, lbeg, lend, &nb))
        goto nomem;
    blk = rf_calloc((size_t)(nb ? nb : 1), sizeof *blk);
    if (!blk) goto nomem;
    const int nf = fu_n_feats(f);
    int failed = 0;
    const int nth = rf_threads();
    const int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(nth)
    {
        fu_cands c;
        int ok = fu_cands_init(&c, &f1, d->n_items) == 0;
        if (!ok) {
#pragma omp atomic write
            failed = RF_ENOMEM;
        }
#pragma omp for schedule(dynamic, 4)
        for (int32_t b = 0; b < nb; b++) {
            if (!ok || failed) continue;
            int32_t u = users[b];
            rf_hist h;
            rf_hist_from_row(d1, u, &h);
            if (fu_cands_build(&c, &f1, u, &h, NULL)) {
#pragma omp atomic write
                failed = RF_EINVAL;
                continue;
            }
            ublock *B = &blk[b];
            rf_rng rng;
            rf_rng_stream(&rng, (uint64_t)p->seed, (uint64_t)u);
            B->valid = rf_rng_uniform(&rng) < p->valid_share;
            B->pos = (int32_t)(lend[b] - lbeg[b]);
            B->n = c.n;
            B->x = rf_malloc_array((size_t)(c.n ? c.n : 1) * (size_t)nf, sizeof *B->x);
            B->y = rf_malloc_array((size_t)(c.n ? c.n : 1), sizeof *B->y);
            if (!B->x || !B->y) {
#pragma omp atomic write
                failed = RF_ENOMEM;
                continue;
            }
            fu_features(&f1, &f1.side, &c, u, &h, B->x);
            const lab *L = labs + lbeg[b];
            int64_t nL = lend[b] - lbeg[b], q = 0;
            for (int32_t t = 0; t < c.n; t++) { /* both sorted by item */
                while (q < nL && L[q].item < c.items[t]) q++;
                B->y[t] = q < nL && L[q].item == c.items[t] ? L[q].g : 0.0f;
                B->found += B->y[t] > 0;
            }
        }
        if (ok) fu_cands_free(&c);
    }
    openblas_set_num_threads(blas);
    if (failed) {
        rc = rf_err_set(err, failed, "fusion: building the ranker data failed (%s)",
                        rf_strerror(failed));
        goto done;
    }
    int64_t found = 0, pos = 0;
    for (int32_t b = 0; b < nb; b++) {
        found += blk[b].found;
        pos += blk[b].pos;
    }
    f->slice_recall = pos ? (double)found / (double)pos : 0;
    rf_rank_data tr, va;
    if (gather(blk, nb, 0, nf, &tr, &tx, &ty, &tg) || gather(blk, nb, 1, nf, &va, &vx, &vy, &vg))
        goto nomem;
    f->rank_rows = tr.n_rows;
    f->rank_groups = tr.n_groups;
    rf_log(RF_LOG_INFO, "fusion.slice",
           "users=%d groups=%lld rows=%lld valid_groups=%lld candidate_recall=%.4f feats=%d",
           (int)nb, (long long)tr.n_groups, (long long)tr.n_rows, (long long)va.n_groups,
           f->slice_recall, nf);
    fu_blend_tune(f, &tr);
    if ((f->mode == FU_GBDT || f->mode == FU_LINEAR) && tr.n_groups > 0) {
        rf_ranker_opts o;
        ranker_opts(p, &o);
        if (o.kind == RF_RANKER_LINEAR) {
            for (size_t q = 0; q < (size_t)tr.n_rows * (size_t)nf; q++)
                if (!isfinite(tx[q])) tx[q] = 0;
            for (size_t q = 0; q < (size_t)va.n_rows * (size_t)nf; q++)
                if (!isfinite(vx[q])) vx[q] = 0;
        }
        const char *msg = rf_ranker_opts_check(&o);
        if (msg) {
            rc = rf_err_set(err, RF_EINVAL, "fusion: ranker options: %s", msg);
            goto done;
        }
        t0 = rf_mono();
        if ((rc = rf_ranker_fit(&o, &tr, va.n_groups > 0 ? &va : NULL, &f->ranker, err)))
            goto done;
        rf_log(RF_LOG_INFO, "fusion.ranker", "kind=%s trees=%d seconds=%.2f",
               o.kind == RF_RANKER_LINEAR ? "linear" : "gbdt", rf_ranker_n_trees(f->ranker),
               rf_mono() - t0);
    } else if (f->mode == FU_GBDT || f->mode == FU_LINEAR) {
        rf_log(RF_LOG_WARN, "fusion.slice", "msg=\"no slice positive among the candidates: "
               "weighted blend\"");
        f->mode = FU_WEIGHTED;
    }
    rc = 0;
    goto done;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "fusion: out of memory");
done:
    if (blk)
        for (int32_t b = 0; b < nb; b++) {
            rf_free(blk[b].x);
            rf_free(blk[b].y);
        }
    rf_free(blk);
    rf_free(users);
    rf_free(lbeg);
    rf_free(lend);
    rf_free(labs);
    rf_free(tx);
    rf_free(ty);
    rf_free(tg);
    rf_free(vx);
    rf_free(vy);
    rf_free(vg);
    fu_side_free(&f1.side);
    fu_fixed_free(&f1);
    for (int k = 0; k < FU_MAX_CH; k++) rf_model_free(ch1[k]);
    rf_dataset_free(d1);
    rf_split_free(&sp);
    return rc;
}

int fu_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    fu_params *p = m->params;
    fu_impl *f = m->impl;
    if (p->cand[FU_EASE] > 0 && p->ease_max_items > 0 && d->n_items > p->ease_max_items) {
        /* EASE inverts a dense items x items matrix (n^3 / 3 multiply-adds,
         * 4 n^2 bytes): off for large catalogs, and the stored parameters
         * say so (the model file lists its channels through them) */
        rf_log(RF_LOG_WARN, "fusion.channel",
               "channel=ease items=%d ease_max_items=%d msg=\"catalog too large: channel off\"",
               (int)d->n_items, p->ease_max_items);
        p->cand[FU_EASE] = 0;
        if (fusion_params_empty(p))
            return rf_err_set(err, RF_EINVAL, "fusion: no channel left without ease");
    }
    if (!d->events)
        return rf_err_set(err, RF_EINVAL,
                          "fusion: needs the training event log (rf_dataset.events) to cut the "
                          "ranker slice");
    f->n_ch = 0;
    f->cold_ch = -1;
    for (int kd = 0; kd < FU_N_KINDS; kd++)
        if (p->cand[kd] > 0) {
            f->kind[f->n_ch] = kd;
            f->cand[f->n_ch++] = p->cand[kd];
        }
    if (f->n_ch == 0) return rf_err_set(err, RF_EINVAL, "fusion: no channel has candidates > 0");
    static const int cold_pref[] = {FU_CONTENT, FU_TRENDING, FU_POP};
    for (int q = 0; q < 3 && f->cold_ch < 0; q++)
        for (int k = 0; k < f->n_ch; k++)
            if (f->kind[k] == cold_pref[q]) f->cold_ch = k;
    f->mode = p->ranker;
    f->switch_min = p->switch_min;
    f->raw = p->raw;
    f->best_ch = 0;
    int rc = learn_on_slice(m, d, err);
    if (rc) return rc;
    double t0 = rf_mono();
    if ((rc = fit_channels(f, &m->data_opts, d, f->ch, err))) return rc;
    if ((rc = fu_side_build(&f->side, d, d->events, d->catalog, d->users_info, err))) return rc;
    if ((rc = fu_fixed_init(f, d->n_items, err))) return rc;
    rf_log(RF_LOG_INFO, "fusion.refit", "channels=%d seconds=%.2f", f->n_ch, rf_mono() - t0);
    return 0;
}
