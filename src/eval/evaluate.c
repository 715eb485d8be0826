/* evaluate.c - full-ranking offline evaluation of one model.
 *
 * For every user with test items: score the whole catalog, drop the
 * user's train items, keep the best max(K) with rf_topk_select, and score
 * that list at every K (metrics.c): accuracy, AUC over the whole score
 * vector, beyond-accuracy measures, and - with a ratings matrix - the
 * rating errors. Optionally (the 1 + N protocol) every test item is also
 * ranked against N sampled negatives. Per-user values are kept (for
 * paired significance tests across models); the averages are summed in
 * user order afterwards, so results do not depend on the thread count.
 *
 * DESIGN: the loop is parallel over blocks of users (OpenMP, dynamic
 * schedule since history lengths vary), each thread owning its score
 * rows, top-k buffer and lists, allocated before the loop - nothing is
 * allocated per user on the normal path. A block is one user unless the
 * model has ops->score_batch: then a block of B users is scored at once
 * (for a factor model one sgemm U_block * V^T, so the cost is the
 * multiply-adds), with B chosen so a block's scores stay near 16 MB per
 * thread. Blocks are fixed by user order, not by thread, so batched
 * scores are the same for any thread count. OpenBLAS runs single-threaded
 * meanwhile (for score_all too: a model's sgemv inside our threads must
 * not fork OpenBLAS threads): the parallelism is ours.
 *
 * Exposure (for coverage and Gini) is one int per (K, item) updated with
 * atomic adds - integer sums, so deterministic - rather than per-thread
 * copies (threads * n_items each).
 *
 * A model normally shares the dataset's dense ids (it was fit on it, or
 * loaded from a file written from the same store). When its maps differ -
 * a model trained before more data was imported - ids are translated
 * through the string maps: histories into model ids (sorted, as models
 * expect), ranked items back into dataset ids. That path sorts each
 * history with qsort, which is the only per-user work beyond scoring.
 *
 * Sampled negatives are drawn from rf_rng_stream(seed, dataset user id),
 * by rejection against the user's history and test items and earlier draws
 * (a per-thread stamp array), so every model and thread count sees the
 * same draws; with fewer candidates than N, all of them are used. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_int.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/idmap.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"
#include "recfuse/topk.h"
#include "recfuse/util.h"

#define BLOCK_FLOATS (4 << 20) /* score floats per thread and block (16 MB) */
#define MAX_BLOCK 256

void rf_eval_opts_default(rf_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->auc = 1;
    o->seed = 1;
    o->progress = 1;
    o->keep_exposure = 1;
}

void rf_eval_result_free(rf_eval_result *r) {
    if (!r)
        return;
    rf_free(r->per_user);
    rf_free(r->users);
    rf_free(r->exposure);
    r->per_user = NULL;
    r->users = NULL;
    r->exposure = NULL;
}

int rf_eval_relevance(const rf_events *ev, int32_t n_users, int32_t n_items, rf_csr **out,
                      rf_err *err) {
    *out = NULL;
    if (!ev)
        return rf_err_set(err, RF_EINVAL, "relevance: no event log");
    if (ev->users && rf_idmap_size(ev->users) > n_users)
        n_users = rf_idmap_size(ev->users);
    if (ev->items && rf_idmap_size(ev->items) > n_items)
        n_items = rf_idmap_size(ev->items);
    int rc =
        rf_csr_from_coo(n_users, n_items, ev->n, ev->user, ev->item, NULL, RF_FOLD_MAX, out, NULL);
    if (rc)
        return rf_err_set(err, rc, "relevance matrix: %s", rf_strerror(rc));
    return 0;
}

int rf_eval_ratings(const rf_events *ev, int32_t n_users, int32_t n_items, rf_csr **out,
                    rf_err *err) {
    *out = NULL;
    if (!ev)
        return rf_err_set(err, RF_EINVAL, "ratings: no event log");
    if (ev->users && rf_idmap_size(ev->users) > n_users)
        n_users = rf_idmap_size(ev->users);
    if (ev->items && rf_idmap_size(ev->items) > n_items)
        n_items = rf_idmap_size(ev->items);
    int64_t n = 0;
    for (int64_t i = 0; i < ev->n; i++)
        n += ev->type[i] == RF_EV_RATING;
    const size_t cap = (size_t)(n ? n : 1);
    int32_t *r = rf_malloc_array(cap, sizeof *r), *c = rf_malloc_array(cap, sizeof *c);
    float *v = rf_malloc_array(cap, sizeof *v);
    int64_t *order = rf_malloc_array(cap, sizeof *order), *tmp = rf_malloc_array(cap, sizeof *tmp);
    int rc = 0;
    if (!r || !c || !v || !order || !tmp) {
        rc = rf_err_set(err, RF_ENOMEM, "ratings: out of memory");
        goto done;
    }
    /* RF_FOLD_LAST keeps the later triplet in input order, so feed the
     * ratings in time order (a stable bottom-up merge sort of their
     * indices by ts; logs are usually sorted already, then it is one
     * pass) and the latest rating of a pair wins. */
    int64_t k = 0;
    for (int64_t i = 0; i < ev->n; i++)
        if (ev->type[i] == RF_EV_RATING)
            order[k++] = i;
    int sorted = 1;
    for (int64_t i = 1; i < n && sorted; i++)
        sorted = ev->ts[order[i]] >= ev->ts[order[i - 1]];
    for (int64_t w = 1; !sorted && w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = ev->ts[order[b]] < ev->ts[order[a]] ? order[b++] : order[a++];
            while (a < mid)
                tmp[o++] = order[a++];
            while (b < hi)
                tmp[o++] = order[b++];
        }
        memcpy(order, tmp, (size_t)n * sizeof *order);
    }
    for (int64_t i = 0; i < n; i++) {
        r[i] = ev->user[order[i]];
        c[i] = ev->item[order[i]];
        v[i] = ev->value[order[i]];
    }
    rc = rf_csr_from_coo(n_users, n_items, n, r, c, v, RF_FOLD_LAST, out, NULL);
    if (rc)
        rc = rf_err_set(err, rc, "ratings matrix: %s", rf_strerror(rc));
done:
    rf_free(r);
    rf_free(c);
    rf_free(v);
    rf_free(order);
    rf_free(tmp);
    return rc;
}

/* 1 if maps a and b agree on ids [0, n). */
static int same_ids(const rf_idmap *a, const rf_idmap *b, int32_t n) {
    if (a == b)
        return 1;
    if (rf_idmap_size(a) < n || rf_idmap_size(b) < n)
        return 0;
    for (int32_t i = 0; i < n; i++) {
        size_t la = rf_idmap_len(a, i);
        if (la != rf_idmap_len(b, i) || memcmp(rf_idmap_str(a, i), rf_idmap_str(b, i), la) != 0)
            return 0;
    }
    return 1;
}

/* to[i] = id in `dst` of string i of `src`, -1 if absent or >= dst_limit. */
static int32_t *translate_map(const rf_idmap *src, int32_t n, const rf_idmap *dst,
                              int32_t dst_limit) {
    int32_t *to = rf_malloc_array((size_t)(n > 0 ? n : 1), sizeof *to);
    if (!to)
        return NULL;
    for (int32_t i = 0; i < n; i++) {
        int32_t j = rf_idmap_find(dst, rf_idmap_str(src, i), rf_idmap_len(src, i));
        to[i] = j >= 0 && j < dst_limit ? j : -1;
    }
    return to;
}

typedef struct hpair {
    int32_t item;
    float w;
    int64_t ts;
} hpair;

static int cmp_hpair(const void *pa, const void *pb) {
    const hpair *a = pa, *b = pb;
    return (a->item > b->item) - (a->item < b->item);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int sorted_has(const int32_t *a, int64_t n, int32_t x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == x;
}

static int row_has(const rf_csr *c, int32_t r, int32_t x) {
    if (r < 0 || r >= c->nrows)
        return 0;
    return sorted_has(c->indices + c->indptr[r], rf_csr_row_len(c, r), x);
}

/* Everything the per-user work reads, shared by all threads. */
typedef struct ectx {
    const rf_model *m;
    const rf_dataset *train;
    const rf_csr *test, *ratings;
    const rf_eval_opts *o;
    const int *ks;
    int n_ks, kmax;
    int32_t n_mi, n_di;
    const int32_t *item_d2m, *item_m2d; /* NULL: same ids */
    const float *pop;                   /* n_di: train users per item */
    double n_pop_users;
    const float *unit; /* n_mi x dim unit item vectors, or NULL */
    int dim;
    int32_t *exposure; /* n_ks x n_di */
    double *per_user;  /* n_eval x n_ks x RF_M_PER_USER */
    double *r_se, *r_ae;
    int32_t *r_n;
} ectx;

/* One thread's buffers. */
typedef struct tscr {
    rf_scored *top; /* kmax */
    float *cmax;    /* (n_mi + 63) / 64: top-k scratch */
    int32_t *rkd;   /* kmax dataset ids */
    int32_t *rkm;   /* kmax model ids */
    int32_t *relm;  /* max_rel: relevant model ids */
    float *aucbuf;  /* max_rel */
    int32_t *aucibuf; /* 4 * max_rel + 1 */
    int32_t *catbuf; /* kmax */
    double *vsum;    /* dim */
    int32_t *stamp;  /* n_mi (sampled) */
    int32_t tag;
    int32_t *ritems; /* max_rating: model ids */
    int32_t *rpos;   /* max_rating: index into the ratings row */
    float *rpred;    /* max_rating */
} tscr;

/* Sampled 1 + N metrics of user u into out (n_ks x RF_M_PER_USER; only
 * P..MRR and AUC written). sc: masked scores; h: the user's history in
 * model ids (sorted); rel/n_r: test items (dataset ids); relm_sorted /
 * n_known: the test items' model ids, sorted. */
static void sampled_metrics(const ectx *c, tscr *s, int32_t u, const float *sc, const rf_hist *h,
                            const int32_t *rel, int n_r, const int32_t *relm_sorted, int n_known,
                            double *out) {
    const int32_t N = c->o->sampled_negatives, n_mi = c->n_mi;
    rf_rng rng;
    rf_rng_stream(&rng, c->o->seed, (uint64_t)u);
    double hr[RF_EVAL_MAX_K] = {0}, nd[RF_EVAL_MAX_K] = {0}, rr[RF_EVAL_MAX_K] = {0}, auc = 0;
    /* candidates: items in neither the history nor the test set */
    int64_t excl = h->n;
    for (int j = 0; j < n_known; j++)
        if (!sorted_has(h->items, h->n, relm_sorted[j]))
            excl++;
    int64_t cand = (int64_t)n_mi - excl;
    for (int t = 0; t < n_r; t++) {
        int32_t x = rel[t];
        int32_t mi;
        if (c->item_d2m)
            mi = x < rf_idmap_size(c->train->items) ? c->item_d2m[x] : -1;
        else
            mi = x < n_mi ? x : -1;
        if (mi < 0 || sorted_has(h->items, h->n, mi))
            continue; /* a miss: ranked below everything */
        const float sr = sc[mi];
        int64_t above = 0, below2 = 0, drawn = 0; /* below2: 2 * below + ties */
        if (cand <= N) {
            for (int32_t j = 0; j < n_mi; j++) {
                if (sorted_has(h->items, h->n, j) || sorted_has(relm_sorted, n_known, j))
                    continue;
                float sj = sc[j];
                drawn++;
                if (sj > sr || (sj == sr && j < mi))
                    above++;
                below2 += sj < sr ? 2 : sj == sr ? 1 : 0;
            }
        } else {
            if (++s->tag == INT32_MAX) {
                memset(s->stamp, 0, (size_t)n_mi * sizeof *s->stamp);
                s->tag = 1;
            }
            while (drawn < N) {
                int32_t j = (int32_t)rf_rng_below(&rng, (uint64_t)n_mi);
                if (s->stamp[j] == s->tag || sorted_has(h->items, h->n, j) ||
                    sorted_has(relm_sorted, n_known, j))
                    continue;
                s->stamp[j] = s->tag;
                float sj = sc[j];
                drawn++;
                if (sj > sr || (sj == sr && j < mi))
                    above++;
                below2 += sj < sr ? 2 : sj == sr ? 1 : 0;
            }
        }
        const int64_t rank = above + 1;
        auc += drawn > 0 ? 0.5 * (double)below2 / (double)drawn : 0.5;
        for (int ki = 0; ki < c->n_ks; ki++)
            if (rank <= c->ks[ki]) {
                hr[ki] += 1;
                nd[ki] += 1.0 / log2((double)rank + 1.0);
                rr[ki] += 1.0 / (double)rank;
            }
    }
    for (int ki = 0; ki < c->n_ks; ki++) {
        double *o = out + (size_t)ki * RF_M_PER_USER;
        double h1 = hr[ki] / n_r;
        o[RF_M_PRECISION] = h1 / c->ks[ki];
        o[RF_M_RECALL] = h1;
        o[RF_M_HITRATE] = h1;
        o[RF_M_NDCG] = nd[ki] / n_r;
        o[RF_M_MRR] = rr[ki] / n_r;
        o[RF_M_MAP] = rr[ki] / n_r;
        if (c->o->auc)
            o[RF_M_AUC] = auc / n_r;
    }
}

/* All metrics of evaluated user number i (dataset id u, model id mu,
 * history h in model ids) from its raw score row sc (n_mi floats,
 * modified: history masked). Returns 0 or a scoring error. */
static int user_metrics(const ectx *c, tscr *s, int64_t i, int32_t u, int32_t mu, const rf_hist *h,
                        float *sc, int64_t *n_unreach, rf_err *err) {
    const rf_model *m = c->m;
    const rf_csr *test = c->test;
    const int32_t n_mi = c->n_mi, n_di = c->n_di;
    const int n_ks = c->n_ks;
    double *out = c->per_user + (size_t)i * (size_t)n_ks * RF_M_PER_USER;

    /* Rating errors, on the raw scores (before masking). */
    if (c->ratings && u < c->ratings->nrows) {
        const rf_csr *R = c->ratings;
        int64_t lo = R->indptr[u], hi = R->indptr[u + 1];
        int32_t nr = 0;
        for (int64_t j = lo; j < hi; j++) {
            int32_t x = R->indices[j], mi;
            if (c->item_d2m)
                mi = x < rf_idmap_size(c->train->items) ? c->item_d2m[x] : -1;
            else
                mi = x < n_mi ? x : -1;
            if (mi < 0)
                continue;
            s->ritems[nr] = mi;
            s->rpos[nr] = (int32_t)(j - lo);
            nr++;
        }
        if (nr > 0 && m->ops->score_items) {
            int rc = rf_model_score_items(m, mu, h, s->ritems, nr, s->rpred, err);
            if (rc < 0)
                return rc;
        } else {
            for (int32_t j = 0; j < nr; j++)
                s->rpred[j] = sc[s->ritems[j]];
        }
        double se = 0, ae = 0;
        int32_t cnt = 0;
        for (int32_t j = 0; j < nr; j++) {
            float p = s->rpred[j];
            if (!isfinite(p))
                continue;
            double e = (double)p - (double)R->data[lo + s->rpos[j]];
            se += e * e;
            ae += fabs(e);
            cnt++;
        }
        c->r_se[i] = se;
        c->r_ae[i] = ae;
        c->r_n[i] = cnt;
        double mse = cnt ? se / cnt : 0, mae = cnt ? ae / cnt : 0;
        for (int ki = 0; ki < n_ks; ki++) {
            out[(size_t)ki * RF_M_PER_USER + RF_M_RMSE] = mse;
            out[(size_t)ki * RF_M_PER_USER + RF_M_MAE] = mae;
        }
    }

    for (int32_t j = 0; j < h->n; j++)
        if (h->items[j] >= 0 && h->items[j] < n_mi)
            sc[h->items[j]] = -INFINITY;

    const int32_t *rel = test->indices + test->indptr[u];
    const int n_r = (int)rf_csr_row_len(test, u);
    /* The test items' model ids, sorted. */
    int n_known = 0;
    for (int j = 0; j < n_r; j++) {
        int32_t x = rel[j], mi;
        if (c->item_d2m)
            mi = x < rf_idmap_size(c->train->items) ? c->item_d2m[x] : -1;
        else
            mi = x < n_mi ? x : -1;
        if (mi >= 0)
            s->relm[n_known++] = mi;
    }
    if (c->item_d2m && n_known > 1)
        qsort(s->relm, (size_t)n_known, sizeof *s->relm, cmp_i32);

    if (c->o->sampled_negatives > 0) {
        sampled_metrics(c, s, u, sc, h, rel, n_r, s->relm, n_known, out);
    } else if (c->o->auc) {
        double a = rf_eval_auc(sc, n_mi, s->relm, n_known, n_r, s->aucbuf, s->aucibuf);
        for (int ki = 0; ki < n_ks; ki++)
            out[(size_t)ki * RF_M_PER_USER + RF_M_AUC] = a;
    }

    int n = rf_eval_topk(sc, n_mi, c->kmax, s->top, s->cmax);
    for (int j = 0; j < n; j++) {
        s->rkm[j] = s->top[j].id;
        s->rkd[j] = c->item_m2d ? c->item_m2d[s->top[j].id] : s->top[j].id;
    }
    const rf_eval_opts *o = c->o;
    for (int ki = 0; ki < n_ks; ki++) {
        const int k = c->ks[ki];
        double *ok = out + (size_t)ki * RF_M_PER_USER;
        if (o->sampled_negatives <= 0) {
            double tmp[RF_M_PER_USER];
            rf_eval_list(s->rkd, n, rel, n_r, k, tmp);
            memcpy(ok, tmp, RF_M_N_LIST * sizeof *ok);
        }
        ok[RF_M_NOVELTY] = rf_eval_novelty(s->rkd, n, k, c->pop, n_di, c->n_pop_users);
        ok[RF_M_ARP] = rf_eval_arp(s->rkd, n, k, c->pop, n_di);
        if (o->item_category)
            ok[RF_M_ILD] = rf_eval_ild_category(s->rkd, n, k, o->item_category, o->n_side_items,
                                                s->catbuf);
        if (c->unit)
            ok[RF_M_ILD_EMB] = rf_eval_ild_vectors(s->rkm, n, k, c->unit, c->dim, s->vsum);
        if (o->item_price)
            ok[RF_M_REVENUE] =
                rf_eval_revenue(s->rkd, n, k, rel, n_r, o->item_price, o->n_side_items);
    }

    if (c->exposure)
        for (int j = 0; j < n; j++) {
            int32_t it = s->rkd[j];
            if (it < 0 || it >= n_di)
                continue;
            for (int ki = 0; ki < n_ks; ki++) {
                if (j >= c->ks[ki])
                    continue;
#pragma omp atomic
                c->exposure[(size_t)ki * (size_t)n_di + (size_t)it] += 1;
            }
        }

    for (int j = 0; j < n_r; j++) {
        int32_t x = rel[j];
        int reach;
        if (c->item_d2m)
            reach = x < rf_idmap_size(c->train->items) && c->item_d2m[x] >= 0;
        else
            reach = x < n_mi;
        if (!reach || row_has(c->train->ui, u, x))
            (*n_unreach)++;
    }
    return 0;
}

int rf_evaluate(const rf_model *m, const rf_dataset *train, const rf_csr *test, const int *ks,
                int n_ks, rf_eval_result *res, rf_err *err) {
    return rf_evaluate_ex(m, train, test, ks, n_ks, NULL, res, err);
}

int rf_evaluate_ex(const rf_model *m, const rf_dataset *train, const rf_csr *test, const int *ks,
                   int n_ks, const rf_eval_opts *opts, rf_eval_result *res, rf_err *err) {
    memset(res, 0, sizeof *res);
    rf_eval_opts dflt;
    if (!opts) {
        rf_eval_opts_default(&dflt);
        opts = &dflt;
    }
    if (!m || !m->ops || !train || !train->ui || !test || !ks)
        return rf_err_set(err, RF_EINVAL, "evaluate: missing model, train or test data");
    if (!m->fitted)
        return rf_err_set(err, RF_ESTATE, "evaluate: model %s is not fitted", m->ops->name);
    if (n_ks < 1 || n_ks > RF_EVAL_MAX_K)
        return rf_err_set(err, RF_EINVAL, "evaluate: %d cut-offs (1..%d allowed)", n_ks,
                          RF_EVAL_MAX_K);
    int kmax = 0;
    for (int i = 0; i < n_ks; i++) {
        if (ks[i] < 1 || ks[i] > RF_EVAL_MAX_KVAL)
            return rf_err_set(err, RF_EINVAL, "evaluate: K=%d outside [1, %d]", ks[i],
                              RF_EVAL_MAX_KVAL);
        if (ks[i] > kmax)
            kmax = ks[i];
    }
    if (opts->sampled_negatives < 0)
        return rf_err_set(err, RF_EINVAL, "evaluate: %d sampled negatives",
                          (int)opts->sampled_negatives);
    if ((opts->item_category || opts->item_price) && opts->n_side_items < 0)
        return rf_err_set(err, RF_EINVAL, "evaluate: negative side information length");
    if (opts->users)
        for (int32_t i = 1; i < opts->n_users; i++)
            if (opts->users[i] <= opts->users[i - 1])
                return rf_err_set(err, RF_EINVAL, "evaluate: user subset not ascending");
    snprintf(res->model, sizeof res->model, "%s", m->ops->name);
    res->n_ks = n_ks;
    memcpy(res->ks, ks, (size_t)n_ks * sizeof *ks);
    res->fit_seconds = m->fit_seconds;
    res->sampled_negatives = opts->sampled_negatives;
    res->n_folds = 1;

    const rf_csr *ui = train->ui;
    const int32_t n_mi = m->n_items, n_di = train->n_items;
    const int T = rf_threads();
    const double t0 = rf_mono();
    int rc = 0;

    /* Id translation, only when the model's maps differ from the dataset's. */
    int32_t *item_d2m = NULL, *item_m2d = NULL;
    int users_same = 1;
    if (m->items && train->items && !(n_mi == n_di && same_ids(m->items, train->items, n_di))) {
        int32_t nd = rf_idmap_size(train->items);
        item_d2m = translate_map(train->items, nd, m->items, n_mi);
        item_m2d = translate_map(m->items, n_mi, train->items, INT32_MAX);
        if (!item_d2m || !item_m2d) {
            rc = rf_err_set(err, RF_ENOMEM, "evaluate: out of memory");
            goto done;
        }
        rf_log(RF_LOG_WARN, "eval.translate",
               "model=%s model_items=%d data_items=%d msg=\"model trained on other data; ids "
               "translated\"",
               m->ops->name, (int)n_mi, (int)n_di);
    }
    if (m->users && train->users &&
        !(m->n_users == train->n_users && same_ids(m->users, train->users, train->n_users)))
        users_same = 0;
    const int translate_hist = item_d2m != NULL;

    /* Users to evaluate, ascending. */
    int64_t n_eval = 0;
    if (opts->users) {
        for (int32_t i = 0; i < opts->n_users; i++) {
            int32_t u = opts->users[i];
            n_eval += u >= 0 && u < test->nrows && rf_csr_row_len(test, u) > 0;
        }
    } else {
        for (int32_t u = 0; u < test->nrows; u++)
            n_eval += rf_csr_row_len(test, u) > 0;
    }
    if (n_eval > INT32_MAX) {
        rc = rf_err_set(err, RF_ETOOBIG, "evaluate: too many users");
        goto done;
    }

    /* Blocks: B users scored together when the model can batch. */
    const int batch = m->ops->score_batch != NULL;
    int64_t B = 1;
    if (batch) {
        B = BLOCK_FLOATS / (n_mi > 0 ? n_mi : 1);
        B = B < 1 ? 1 : B > MAX_BLOCK ? MAX_BLOCK : B;
    }
    const int64_t n_blocks = (n_eval + B - 1) / B;

    /* Output and shared tables. */
    size_t n_pu = (size_t)n_eval * (size_t)n_ks * RF_M_PER_USER;
    res->users = rf_malloc_array((size_t)(n_eval ? n_eval : 1), sizeof *res->users);
    res->per_user = rf_calloc(n_pu ? n_pu : 1, sizeof *res->per_user);
    int32_t *exposure = rf_calloc((size_t)n_ks * (size_t)(n_di ? n_di : 1), sizeof *exposure);
    float *pop = rf_malloc_array((size_t)(n_di ? n_di : 1), sizeof *pop);
    if (!res->users || !res->per_user || !exposure || !pop) {
        rc = rf_err_set(err, RF_ENOMEM, "evaluate: out of memory for %lld users",
                        (long long)n_eval);
        rf_free(exposure);
        rf_free(pop);
        goto done;
    }
    {
        int64_t i = 0;
        if (opts->users) {
            for (int32_t j = 0; j < opts->n_users; j++) {
                int32_t u = opts->users[j];
                if (u >= 0 && u < test->nrows && rf_csr_row_len(test, u) > 0)
                    res->users[i++] = u;
            }
        } else {
            for (int32_t u = 0; u < test->nrows; u++)
                if (rf_csr_row_len(test, u) > 0)
                    res->users[i++] = u;
        }
    }
    /* Item popularity (train users per item) and its denominator. */
    int32_t n_pop_users = 0;
    for (int32_t u = 0; u < ui->nrows; u++)
        n_pop_users += rf_csr_row_len(ui, u) > 0;
    if (train->iu && train->iu->nrows >= n_di) {
        for (int32_t it = 0; it < n_di; it++)
            pop[it] = (float)rf_csr_row_len(train->iu, it);
    } else {
        memset(pop, 0, (size_t)n_di * sizeof *pop);
        for (int64_t j = 0; j < ui->nnz; j++)
            if (ui->indices[j] < n_di)
                pop[ui->indices[j]] += 1.0f;
    }

    /* Sizes of the per-thread buffers. */
    int64_t max_rel = 1, max_rating = 1, block_hist = 1;
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t hsum = 0;
        for (int64_t i = b * B; i < n_eval && i < (b + 1) * B; i++) {
            int32_t u = res->users[i];
            if (rf_csr_row_len(test, u) > max_rel)
                max_rel = rf_csr_row_len(test, u);
            if (opts->ratings && u < opts->ratings->nrows &&
                rf_csr_row_len(opts->ratings, u) > max_rating)
                max_rating = rf_csr_row_len(opts->ratings, u);
            if (u < ui->nrows)
                hsum += rf_csr_row_len(ui, u);
        }
        if (hsum > block_hist)
            block_hist = hsum;
    }

    /* Unit item vectors for ILDemb. */
    int dim = 0;
    const float *vec = m->ops->item_vectors ? m->ops->item_vectors(m, &dim) : NULL;
    float *unit = NULL;
    if (vec && dim > 0) {
        unit = rf_malloc_array((size_t)n_mi * (size_t)dim, sizeof *unit);
        if (!unit) {
            rc = rf_err_set(err, RF_ENOMEM, "evaluate: out of memory for item vectors");
            rf_free(exposure);
            rf_free(pop);
            goto done;
        }
        for (int32_t it = 0; it < n_mi; it++) {
            const float *v = vec + (size_t)it * dim;
            double nn = 0;
            for (int d = 0; d < dim; d++)
                nn += (double)v[d] * v[d];
            double inv = nn > 0 ? 1.0 / sqrt(nn) : 0.0;
            for (int d = 0; d < dim; d++)
                unit[(size_t)it * dim + d] = (float)(v[d] * inv);
        }
    } else {
        dim = 0;
    }

    /* Per-thread scratch, allocated once. */
    const int sampled = opts->sampled_negatives > 0;
    const size_t tT = (size_t)T;
    float *scores = rf_malloc_array(tT * (size_t)B * (size_t)(n_mi ? n_mi : 1), sizeof *scores);
    rf_hist *hists = rf_malloc_array(tT * (size_t)B, sizeof *hists);
    int32_t *musers = rf_malloc_array(tT * (size_t)B, sizeof *musers);
    rf_scored *tops = rf_malloc_array(tT * (size_t)kmax, sizeof *tops);
    int32_t *rk = rf_malloc_array(tT * 2 * (size_t)kmax, sizeof *rk);
    int32_t *relm = rf_malloc_array(tT * (size_t)max_rel, sizeof *relm);
    float *aucbuf = rf_malloc_array(tT * (size_t)max_rel, sizeof *aucbuf);
    int32_t *aucibuf = rf_malloc_array(tT * (size_t)(4 * max_rel + 1), sizeof *aucibuf);
    const size_t n_chunks = (size_t)(n_mi + 63) / 64 + 1;
    float *cmaxbuf = rf_malloc_array(tT * n_chunks, sizeof *cmaxbuf);
    int32_t *catbuf = opts->item_category ? rf_malloc_array(tT * (size_t)kmax, sizeof *catbuf)
                                          : NULL;
    double *vsum = dim ? rf_malloc_array(tT * (size_t)dim, sizeof *vsum) : NULL;
    int32_t *stamp = sampled ? rf_calloc(tT * (size_t)(n_mi ? n_mi : 1), sizeof *stamp) : NULL;
    int32_t *ritems = opts->ratings ? rf_malloc_array(tT * 2 * (size_t)max_rating, sizeof *ritems)
                                    : NULL;
    float *rpred = opts->ratings ? rf_malloc_array(tT * (size_t)max_rating, sizeof *rpred) : NULL;
    double *r_se = opts->ratings ? rf_calloc((size_t)(n_eval ? n_eval : 1), 2 * sizeof *r_se)
                                 : NULL;
    int32_t *r_n = opts->ratings ? rf_calloc((size_t)(n_eval ? n_eval : 1), sizeof *r_n) : NULL;
    hpair *hp = NULL;
    int32_t *hitems = NULL;
    float *hweights = NULL;
    /* history times (d->ts_base + ui_ts), so time-aware scoring works offline */
    int64_t *hts = train->ui_ts ? rf_malloc_array(tT * (size_t)block_hist, sizeof *hts) : NULL;
    if (translate_hist) {
        size_t hn = tT * (size_t)block_hist;
        hp = rf_malloc_array(hn, sizeof *hp);
        hitems = rf_malloc_array(hn, sizeof *hitems);
        hweights = rf_malloc_array(hn, sizeof *hweights);
    }
    if (!scores || !hists || !musers || !tops || !rk || !relm || !aucbuf || !aucibuf || !cmaxbuf ||
        (opts->item_category && !catbuf) || (dim && !vsum) || (sampled && !stamp) ||
        (opts->ratings && (!ritems || !rpred || !r_se || !r_n)) ||
        (translate_hist && (!hp || !hitems || !hweights)) || (train->ui_ts && !hts)) {
        rc = rf_err_set(err, RF_ENOMEM, "evaluate: out of memory for %lld users x %d items",
                        (long long)n_eval, (int)n_mi);
        goto free_scratch;
    }

    ectx c = {.m = m,
              .train = train,
              .test = test,
              .ratings = opts->ratings,
              .o = opts,
              .ks = ks,
              .n_ks = n_ks,
              .kmax = kmax,
              .n_mi = n_mi,
              .n_di = n_di,
              .item_d2m = item_d2m,
              .item_m2d = item_m2d,
              .pop = pop,
              .n_pop_users = (double)n_pop_users,
              .unit = unit,
              .dim = dim,
              .exposure = exposure,
              .per_user = res->per_user,
              .r_se = r_se,
              .r_ae = r_se ? r_se + (n_eval ? n_eval : 1) : NULL,
              .r_n = r_n};

    char label[64];
    snprintf(label, sizeof label, "evaluate %s", m->ops->name);
    rf_progress *prog = opts->progress ? rf_progress_start(label, n_eval) : NULL;
    int64_t done_users = 0, n_cold = 0, n_unreach = 0;
    int failed = 0;
    rf_err first_err;
    rf_err_clear(&first_err);
    /* Scoring runs inside our parallel loop: OpenBLAS (the pthread build)
     * must not start threads of its own meanwhile. */
    const int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);

#pragma omp parallel num_threads(T) reduction(+ : n_cold, n_unreach)
    {
        const int t = rf_thread_id();
        float *sc = scores + (size_t)t * (size_t)B * (size_t)n_mi;
        rf_hist *hs = hists + (size_t)t * (size_t)B;
        int32_t *mus = musers + (size_t)t * (size_t)B;
        tscr s = {.top = tops + (size_t)t * kmax,
                  .cmax = cmaxbuf + (size_t)t * n_chunks,
                  .rkd = rk + (size_t)t * 2 * kmax,
                  .rkm = rk + (size_t)t * 2 * kmax + kmax,
                  .relm = relm + (size_t)t * max_rel,
                  .aucbuf = aucbuf + (size_t)t * max_rel,
                  .aucibuf = aucibuf + (size_t)t * (4 * max_rel + 1),
                  .catbuf = catbuf ? catbuf + (size_t)t * kmax : NULL,
                  .vsum = vsum ? vsum + (size_t)t * dim : NULL,
                  .stamp = stamp ? stamp + (size_t)t * n_mi : NULL,
                  .tag = 0,
                  .ritems = ritems ? ritems + (size_t)t * 2 * max_rating : NULL,
                  .rpos = ritems ? ritems + (size_t)t * 2 * max_rating + max_rating : NULL,
                  .rpred = rpred ? rpred + (size_t)t * max_rating : NULL};
        size_t hoff = (size_t)t * (size_t)block_hist;
        rf_err lerr;
        rf_err_clear(&lerr);

#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n_blocks; b++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop)
                continue;
            const int64_t lo_i = b * B, hi_i = lo_i + B < n_eval ? lo_i + B : n_eval;
            const int nb = (int)(hi_i - lo_i);
            size_t hpos = hoff;

            /* Histories (model ids) and model user ids of the block. */
            for (int r = 0; r < nb; r++) {
                const int32_t u = res->users[lo_i + r];
                rf_hist *h = &hs[r];
                int64_t lo = 0, hi = 0;
                if (u < ui->nrows) {
                    lo = ui->indptr[u];
                    hi = ui->indptr[u + 1];
                }
                if (!translate_hist) {
                    rf_hist_from_row_ts(train, u, hts ? hts + hpos : NULL, h);
                    hpos += (size_t)h->n;
                } else {
                    hpair *p = hp + hpos;
                    int32_t n = 0;
                    for (int64_t j = lo; j < hi; j++) {
                        int32_t mi = item_d2m[ui->indices[j]];
                        if (mi < 0)
                            continue;
                        p[n].item = mi;
                        p[n].w = ui->data[j];
                        p[n].ts = hts ? train->ts_base + (int64_t)train->ui_ts[j] : 0;
                        n++;
                    }
                    qsort(p, (size_t)n, sizeof *p, cmp_hpair);
                    for (int32_t j = 0; j < n; j++) {
                        hitems[hpos + j] = p[j].item;
                        hweights[hpos + j] = p[j].w;
                        if (hts) hts[hpos + j] = p[j].ts;
                    }
                    h->n = n;
                    h->items = hitems + hpos;
                    h->weights = hweights + hpos;
                    h->ts = hts ? hts + hpos : NULL;
                    hpos += (size_t)n;
                }
                if (hi == lo)
                    n_cold++;
                int32_t mu = -1;
                if (!users_same) {
                    if (u < rf_idmap_size(train->users))
                        mu = rf_idmap_find(m->users, rf_idmap_str(train->users, u),
                                           rf_idmap_len(train->users, u));
                } else if (u < train->n_users && u < m->n_users) {
                    mu = u;
                }
                if (mu < -1 || mu >= m->n_users)
                    mu = -1;
                mus[r] = mu;
            }

            int src = 0;
            if (batch)
                src = m->ops->score_batch(m, nb, mus, hs, sc, &lerr);
            else
                src = rf_model_score_all(m, mus[0], &hs[0], sc, &lerr);
            for (int r = 0; r < nb && src == 0; r++)
                src = user_metrics(&c, &s, lo_i + r, res->users[lo_i + r], mus[r], &hs[r],
                                   sc + (size_t)r * n_mi, &n_unreach, &lerr);
            if (src < 0) {
#pragma omp critical(rf_eval_fail)
                {
                    if (!failed) {
                        first_err = lerr;
                        first_err.code = src;
#pragma omp atomic write
                        failed = 1;
                    }
                }
                continue;
            }
            int64_t d;
#pragma omp atomic capture
            d = done_users += nb;
            if (t == 0)
                rf_progress_set(prog, d);
        }
    }
    openblas_set_num_threads(blas_threads);
    rf_progress_finish(prog);

    if (failed) {
        rc = first_err.code ? first_err.code : RF_EINVAL;
        if (err) {
            *err = first_err;
            err->code = rc;
            rf_err_prefix(err, "evaluate %s", m->ops->name);
        }
        goto free_scratch;
    }

    res->n_users = (int32_t)n_eval;
    res->n_cold_users = (int32_t)n_cold;
    res->n_unreachable = n_unreach;
    for (int64_t i = 0; i < n_eval; i++)
        res->n_rel += rf_csr_row_len(test, res->users[i]);
    /* Coverage population: items with train data. */
    int32_t n_cov = 0;
    for (int32_t it = 0; it < n_di; it++)
        n_cov += pop[it] > 0;
    res->n_cov_items = n_cov;

    res->has[RF_M_PRECISION] = res->has[RF_M_RECALL] = res->has[RF_M_NDCG] = 1;
    res->has[RF_M_MAP] = res->has[RF_M_HITRATE] = res->has[RF_M_MRR] = 1;
    res->has[RF_M_AUC] = opts->auc != 0;
    res->has[RF_M_NOVELTY] = res->has[RF_M_ARP] = 1;
    res->has[RF_M_ILD] = opts->item_category != NULL;
    res->has[RF_M_ILD_EMB] = unit != NULL;
    res->has[RF_M_REVENUE] = opts->item_price != NULL;
    res->has[RF_M_RMSE] = res->has[RF_M_MAE] = opts->ratings != NULL;
    res->has[RF_M_COVERAGE] = res->has[RF_M_GINI] = 1;

    /* Gini population: items with train data or exposure. */
    int32_t *gpop = rf_malloc_array((size_t)(n_di ? n_di : 1), 2 * sizeof *gpop);
    if (!gpop) {
        rc = rf_err_set(err, RF_ENOMEM, "evaluate: out of memory");
        goto free_scratch;
    }
    double sse = 0, sae = 0;
    int64_t npairs = 0;
    if (opts->ratings)
        for (int64_t i = 0; i < n_eval; i++) {
            sse += c.r_se[i];
            sae += c.r_ae[i];
            npairs += r_n[i];
        }
    res->n_rating_pairs = npairs;
    for (int ki = 0; ki < n_ks; ki++) {
        for (int mt = 0; mt < RF_M_PER_USER; mt++) {
            double sum = 0.0;
            for (int64_t i = 0; i < n_eval; i++)
                sum += res->per_user[((size_t)i * (size_t)n_ks + (size_t)ki) * RF_M_PER_USER + mt];
            res->value[ki][mt] = n_eval > 0 ? sum / (double)n_eval : 0.0;
        }
        if (opts->ratings) {
            res->value[ki][RF_M_RMSE] = npairs ? sqrt(sse / (double)npairs) : 0.0;
            res->value[ki][RF_M_MAE] = npairs ? sae / (double)npairs : 0.0;
        }
        const int32_t *ex = exposure + (size_t)ki * (size_t)n_di;
        int64_t covered = 0;
        int32_t ng = 0;
        for (int32_t it = 0; it < n_di; it++) {
            if (pop[it] > 0)
                covered += ex[it] > 0;
            if (pop[it] > 0 || ex[it] > 0)
                gpop[ng++] = ex[it];
        }
        res->value[ki][RF_M_COVERAGE] = n_cov > 0 ? (double)covered / (double)n_cov : 0.0;
        res->value[ki][RF_M_GINI] = rf_eval_gini(gpop, ng, gpop + (n_di ? n_di : 1));
    }
    rf_free(gpop);
    if (opts->keep_exposure) {
        res->exposure = exposure;
        res->n_exp_items = n_di;
        exposure = NULL;
    }
    res->seconds = rf_mono() - t0;
    /* quiet evaluations (progress off: tuning runs) log at debug level */
    rf_log(opts->progress ? RF_LOG_INFO : RF_LOG_DEBUG, "eval.model",
           "model=%s users=%lld cold=%lld relevant=%lld unreachable=%lld "
           "items=%d threads=%d block=%lld seconds=%.3f",
           res->model, (long long)n_eval, (long long)n_cold, (long long)res->n_rel,
           (long long)n_unreach, (int)n_mi, T, (long long)B, res->seconds);

free_scratch:
    rf_free(scores);
    rf_free(hists);
    rf_free(musers);
    rf_free(tops);
    rf_free(rk);
    rf_free(relm);
    rf_free(aucbuf);
    rf_free(aucibuf);
    rf_free(cmaxbuf);
    rf_free(catbuf);
    rf_free(vsum);
    rf_free(stamp);
    rf_free(ritems);
    rf_free(rpred);
    rf_free(r_se);
    rf_free(r_n);
    rf_free(hp);
    rf_free(hitems);
    rf_free(hweights);
    rf_free(hts);
    rf_free(unit);
    rf_free(exposure);
    rf_free(pop);
done:
    rf_free(item_d2m);
    rf_free(item_m2d);
    if (rc)
        rf_eval_result_free(res);
    return rc;
}

int rf_eval_result_merge(const rf_eval_result *parts, int n, rf_eval_result *out, rf_err *err) {
    memset(out, 0, sizeof *out);
    if (!parts || n < 1)
        return rf_err_set(err, RF_EINVAL, "merge: no results");
    const rf_eval_result *p0 = &parts[0];
    int64_t rows = 0;
    for (int j = 0; j < n; j++) {
        if (parts[j].n_ks != p0->n_ks || memcmp(parts[j].ks, p0->ks, sizeof p0->ks) != 0)
            return rf_err_set(err, RF_EINVAL, "merge: results have different cut-offs");
        if (parts[j].n_users > 0 && !parts[j].per_user)
            return rf_err_set(err, RF_EINVAL, "merge: part %d has no per-user rows", j);
        rows += parts[j].n_users;
    }
    if (rows > INT32_MAX)
        return rf_err_set(err, RF_ETOOBIG, "merge: too many rows");
    const size_t stride = (size_t)p0->n_ks * RF_M_PER_USER;
    out->per_user = rf_malloc_array((size_t)(rows ? rows : 1) * stride, sizeof *out->per_user);
    out->users = rf_malloc_array((size_t)(rows ? rows : 1), sizeof *out->users);
    if (!out->per_user || !out->users) {
        rf_eval_result_free(out);
        return rf_err_set(err, RF_ENOMEM, "merge: out of memory");
    }
    snprintf(out->model, sizeof out->model, "%s", p0->model);
    out->n_ks = p0->n_ks;
    memcpy(out->ks, p0->ks, sizeof out->ks);
    memcpy(out->has, p0->has, sizeof out->has);
    out->sampled_negatives = p0->sampled_negatives;
    out->n_folds = 0;
    int64_t at = 0;
    for (int j = 0; j < n; j++) {
        const rf_eval_result *p = &parts[j];
        for (int mt = 0; mt < RF_M_COUNT; mt++)
            out->has[mt] &= p->has[mt];
        for (int ki = 0; ki < p->n_ks; ki++)
            for (int mt = 0; mt < RF_M_COUNT; mt++)
                out->value[ki][mt] += p->value[ki][mt] / n;
        out->n_users += p->n_users;
        out->n_cold_users += p->n_cold_users;
        out->n_rel += p->n_rel;
        out->n_unreachable += p->n_unreachable;
        if (p->n_cov_items > out->n_cov_items)
            out->n_cov_items = p->n_cov_items;
        out->n_rating_pairs += p->n_rating_pairs;
        out->n_folds += p->n_folds > 0 ? p->n_folds : 1;
        out->seconds += p->seconds;
        out->fit_seconds += p->fit_seconds;
        if (p->n_users > 0) {
            memcpy(out->per_user + (size_t)at * stride, p->per_user,
                   (size_t)p->n_users * stride * sizeof *out->per_user);
            memcpy(out->users + at, p->users, (size_t)p->n_users * sizeof *out->users);
        }
        at += p->n_users;
    }
    return 0;
}
