/* bench_fusion.c - cost of one fused recommendation on a large catalog:
 * candidates from every channel, features, ranker and re-ranking for one
 * user, on one core, with the time of each stage.
 *
 * Workload: the Protocol-C-shaped generator (protoc.c) with, by default,
 * 20,000 users, 100,000 items and 1M interactions (FUSION_USERS,
 * FUSION_ITEMS, FUSION_N override). The fused model is trained with the
 * channels given in FUSION_PARAMS (default: itemknn, userknn, ials with
 * 128 factors (its default), pop, trending, rules; EASE's dense items x items matrix
 * does not fit a 100k catalog). Then for FUSION_REQ users (500) drawn
 * with a fixed seed, one thread:
 *   total          rf_model_recommend top-10 (the fused model's recommend
 *                  op, as the server calls it) + rerank; timed first, on
 *                  the user's data cold as in a real request (the stages
 *                  below run after it, warmer)
 *   channel NAME   that channel's top-N alone (fu_channel_top), the way
 *                  the candidates take it: sparse (itemknn, userknn,
 *                  rules: only what the history reaches), pruned (ials:
 *                  the exact norm-ordered scan), order (pop, trending:
 *                  a precomputed order); FUSION_FULL=1 forces the
 *                  catalog-wide score_all + top-N everywhere
 *   candidates     fu_cands_build: every channel, the union, its scores
 *   features       the candidates' feature rows (fu_features)
 *   ranker         rf_ranker_predict on them
 *   rerank         rf_rerank to 10 items (oos demote, cap 3, block 5 items)
 *   score_all      the fused score vector over the whole catalog
 * FUSION_DATA=DIR measures the served model instead: DIR/models/fusion.rfm
 * (as bench_server.sh trains it) with FUSION_REQ of its users drawn with
 * the same seed, their histories read from DIR's store and folded as the
 * server does (the "history" line: that step's cost).
 * Prints median, p90 and p99 per stage in microseconds of thread CPU time.
 * The default sizes keep the fit (stacking on two threads) to a few
 * minutes; the request cost depends on the catalog size, not on users. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "fusion/fusion_int.h"
#include "protoc.h"
#include "recfuse/error.h"
#include "recfuse/events.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rerank.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"
#include "recfuse/util.h"

/* CPU time of this thread: the machine is shared, and a request's cost is
 * its CPU time on one core, not the time spent waiting for one. */
static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int64_t env_i(const char *k, int64_t d) {
    const char *v = getenv(k);
    return v && *v ? atoll(v) : d;
}

static void report(const char *name, double *v, int n) {
    rf_bench_sort(v, n);
    printf("  %-18s median %8.1f us   p90 %8.1f us   p99 %8.1f us\n", name, 1e6 * v[n / 2],
           1e6 * v[n * 9 / 10], 1e6 * v[n * 99 / 100]);
}

/* The fused model of a data directory and the users it knows, with
 * their histories as the server builds them: events read from the store
 * and folded by rf_hist_from_events (the time of that step goes into
 * *t_hist, one entry per request). */
typedef struct reqs {
    int n;
    int32_t *user;
    rf_hist *h;
} reqs;

static int served_model(const char *dir, int nreq, rf_model **m, reqs *r, double *t_hist) {
    rf_err err;
    rf_store *st = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/models/fusion.rfm", dir);
    double t0 = rf_mono();
    if (rf_store_open(dir, 0, &st, &err) || rf_model_load(path, m, &err)) {
        fprintf(stderr, "bench_fusion: %s\n", err.msg);
        return 1;
    }
    printf("bench_fusion: served model %s (%d users, %d items; %.1f s to load)\n", path,
           (*m)->n_users, (*m)->n_items, rf_mono() - t0);
    r->n = nreq;
    r->user = calloc((size_t)nreq, sizeof *r->user);
    r->h = calloc((size_t)nreq, sizeof *r->h);
    rf_rng g;
    rf_rng_seed(&g, 99);
    for (int q = 0; q < nreq; q++) {
        int32_t u = (int32_t)rf_rng_below(&g, (uint64_t)(*m)->n_users);
        const char *id = rf_idmap_str((*m)->users, u);
        double a = cpu();
        rf_events *ev;
        int32_t *items, n;
        float *w;
        int64_t *ts;
        if (rf_events_new(NULL, NULL, &ev) || rf_store_user_events(st, id, ev, &err) ||
            rf_hist_from_events(*m, ev, &items, &w, &ts, &n, &err)) {
            fprintf(stderr, "bench_fusion: history of %s: %s\n", id, err.msg);
            return 1;
        }
        t_hist[q] = cpu() - a;
        rf_events_free(ev);
        r->user[q] = u;
        r->h[q] = (rf_hist){n, items, w, ts};
    }
    rf_store_close(st);
    return 0;
}

int main(void) {
    int32_t nu = (int32_t)env_i("FUSION_USERS", 20000), ni = (int32_t)env_i("FUSION_ITEMS", 100000);
    int64_t nn = env_i("FUSION_N", 1000000);
    int nreq = (int)env_i("FUSION_REQ", 500);
    const char *params = getenv("FUSION_PARAMS"), *data = getenv("FUSION_DATA");
    if (!params)
        params = "itemknn=100,userknn=100,ials=100,ease=0,pop=50,trending=50,rules=50,content=0,"
                 "slice_users=2000";
    rf_err err;
    rf_events *ev = NULL;
    rf_dataset *d = NULL;
    rf_model *m = NULL;
    reqs rq = {0};
    double *thist = calloc((size_t)nreq, sizeof(double));
    if (data && *data) {
        if (served_model(data, nreq, &m, &rq, thist)) return 1;
    } else {
        double t0 = rf_mono();
        if (rf_bench_protoc_dataset(nu, ni, nn, 7, &ev, &d)) {
            fprintf(stderr, "bench_fusion: data generation failed\n");
            return 1;
        }
        d->events = ev;
        printf("bench_fusion: %d users, %d items, %lld interactions (%.1f s to generate)\n", nu,
               ni, (long long)d->ui->nnz, rf_mono() - t0);
        printf("params: %s\n", params);
        if (rf_model_new("fusion", &m, &err) || rf_model_set_params(m, params, &err)) {
            fprintf(stderr, "bench_fusion: %s\n", err.msg);
            return 1;
        }
        m->data_opts.binary = 1;
        t0 = rf_mono();
        if (rf_model_fit(m, d, &err)) {
            fprintf(stderr, "bench_fusion: fit: %s\n", err.msg);
            return 1;
        }
        printf("fit (stacking + refit, %d threads): %.1f s\n", rf_threads(), rf_mono() - t0);
        rf_rng g;
        rf_rng_seed(&g, 99);
        rq.n = nreq;
        rq.user = calloc((size_t)nreq, sizeof *rq.user);
        rq.h = calloc((size_t)nreq, sizeof *rq.h);
        for (int q = 0; q < nreq; q++) {
            rq.user[q] = (int32_t)rf_rng_below(&g, (uint64_t)nu);
            rf_hist_from_row(d, rq.user[q], &rq.h[q]);
        }
    }
    /* ials at 64 factors: the bench's own override happens through the
     * channel defaults; report what the channel uses */
    fu_impl *f = m->impl;
    f->full_scan = env_i("FUSION_FULL", 0) != 0;
    printf("channels: %s\n", f->full_scan ? "full catalog scan (FUSION_FULL=1)"
                                           : "sparse / pruned / precomputed top-N, union scored");
    rf_set_threads(1);
    fu_cands c;
    if (fu_cands_init(&c, f, m->n_items)) return 1;
    const int nf = fu_n_feats(f);
    float *x = rf_malloc_array((size_t)c.cap * (size_t)nf, sizeof *x);
    float *s = rf_malloc_array((size_t)c.cap, sizeof *s);
    float *all = rf_malloc_array((size_t)m->n_items, sizeof *all);
    rf_scored out[10];
    double *tch[FU_MAX_CH], *tf = calloc((size_t)nreq, sizeof(double)),
           *tr = calloc((size_t)nreq, sizeof(double)), *trr = calloc((size_t)nreq, sizeof(double)),
           *tt = calloc((size_t)nreq, sizeof(double)), *tc = calloc((size_t)nreq, sizeof(double)),
           *tsa = calloc((size_t)nreq, sizeof(double));
    for (int k = 0; k < f->n_ch; k++) tch[k] = calloc((size_t)nreq, sizeof(double));
    int64_t *stock = rf_malloc_array((size_t)m->n_items, sizeof *stock);
    int32_t *cat = rf_malloc_array((size_t)m->n_items, sizeof *cat);
    for (int32_t i = 0; i < m->n_items; i++) {
        stock[i] = i % 10 == 0 ? 0 : 5;
        cat[i] = i % 50;
    }
    int64_t cand_sum = 0, hist_sum = 0;
    for (int q = 0; q < nreq; q++) {
        int32_t u = rq.user[q];
        rf_hist h = rq.h[q];
        hist_sum += h.n;
        /* the whole request as served, first (a real request finds the
         * user's data cold): the recommend op's top-10 (+ the rerank below) */
        double a0 = cpu();
        rf_scored t10[10];
        rf_model_recommend(m, u, &h, 10, NULL, all, t10, NULL);
        tt[q] = cpu() - a0;
        /* per channel: its top-N alone (fu_channel_top: the sparse, pruned,
         * fixed or full path, as the candidates take it) */
        for (int32_t t = 0; t < h.n; t++) c.hmask[h.items[t]] = 1;
        for (int k = 0; k < f->n_ch; k++) {
            double a = cpu();
            fu_channel_top(&c, f, k, u, &h, NULL);
            tch[k][q] = cpu() - a;
        }
        for (int32_t t = 0; t < h.n; t++) c.hmask[h.items[t]] = 0;
        double a = cpu();
        fu_cands_build(&c, f, u, &h, NULL);
        tc[q] = cpu() - a;
        cand_sum += c.n;
        a = cpu();
        fu_features(f, &f->side, &c, u, &h, x);
        tf[q] = cpu() - a;
        a = cpu();
        if (f->ranker) rf_ranker_predict(f->ranker, x, c.n, s);
        tr[q] = cpu() - a;
        /* rerank the candidates to 10 */
        rf_scored *cs = rf_malloc_array((size_t)c.n + 1, sizeof *cs);
        for (int32_t t = 0; t < c.n; t++) cs[t] = (rf_scored){f->ranker ? s[t] : 0, c.items[t]};
        rf_rerank_req req;
        rf_rerank_req_init(&req, m->n_items);
        int32_t blocked[5] = {1, 2, 3, 4, 5};
        req.stock = stock;
        req.category = cat;
        req.oos = RF_OOS_DEMOTE;
        req.cat_cap = 3;
        req.blocked = blocked;
        req.n_blocked = 5;
        a = cpu();
        rf_rerank(&req, cs, c.n, 10, out, NULL);
        trr[q] = cpu() - a;
        rf_free(cs);
        tt[q] += trr[q];
        /* the fused score vector over the catalog (score_all) */
        a = cpu();
        rf_model_score_all(m, u, &h, all, NULL);
        tsa[q] = cpu() - a;
    }
    printf("one user, one thread, %d requests, %.1f history items and %.0f candidates on "
           "average:\n", nreq, (double)hist_sum / nreq, (double)cand_sum / nreq);
    if (data && *data) report("history (store)", thist, nreq);
    for (int k = 0; k < f->n_ch; k++) {
        char name[48];
        const char *how = f->full_scan                 ? ""
                          : f->fix[k].perm              ? " (pruned)"
                          : f->sparse[k]                ? " (sparse)"
                          : f->fixed[k]                 ? " (order)"
                                                        : "";
        snprintf(name, sizeof name, "channel %s%s", fu_kind_names[f->kind[k]], how);
        report(name, tch[k], nreq);
    }
    report("candidates (all)", tc, nreq);
    report("features", tf, nreq);
    report("ranker", tr, nreq);
    report("rerank", trr, nreq);
    report("total", tt, nreq);
    report("score_all (vector)", tsa, nreq);
    return 0;
}
