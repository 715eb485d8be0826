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
 *   total          rf_model_recommend top-10 (the fused model's recommend
 *                  op, as the server calls it) + rerank
 *   score_all      the fused score vector over the whole catalog
 * Prints median and p90 per stage in microseconds of thread CPU time.
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
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rerank.h"
#include "recfuse/rng.h"
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
    printf("  %-18s median %8.1f us   p90 %8.1f us\n", name, 1e6 * v[n / 2], 1e6 * v[n * 9 / 10]);
}

int main(void) {
    int32_t nu = (int32_t)env_i("FUSION_USERS", 20000), ni = (int32_t)env_i("FUSION_ITEMS", 100000);
    int64_t nn = env_i("FUSION_N", 1000000);
    int nreq = (int)env_i("FUSION_REQ", 500);
    const char *params = getenv("FUSION_PARAMS");
    if (!params)
        params = "itemknn=100,userknn=100,ials=100,ease=0,pop=50,trending=50,rules=50,content=0,"
                 "slice_users=2000";
    rf_err err;
    rf_events *ev = NULL;
    rf_dataset *d = NULL;
    double t0 = rf_mono();
    if (rf_bench_protoc_dataset(nu, ni, nn, 7, &ev, &d)) {
        fprintf(stderr, "bench_fusion: data generation failed\n");
        return 1;
    }
    d->events = ev;
    printf("bench_fusion: %d users, %d items, %lld interactions (%.1f s to generate)\n", nu, ni,
           (long long)d->ui->nnz, rf_mono() - t0);
    printf("params: %s\n", params);
    rf_model *m = NULL;
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
    rf_rng g;
    rf_rng_seed(&g, 99);
    int64_t cand_sum = 0;
    for (int q = 0; q < nreq; q++) {
        int32_t u = (int32_t)rf_rng_below(&g, (uint64_t)nu);
        rf_hist h;
        rf_hist_from_row(d, u, &h);
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
        /* the whole request as served: the recommend hook's top-10 (+ rerank) */
        a = cpu();
        rf_scored t10[10];
        rf_model_recommend(m, u, &h, 10, NULL, all, t10, NULL);
        tt[q] = cpu() - a + trr[q];
        /* the fused score vector over the catalog (score_all) */
        a = cpu();
        rf_model_score_all(m, u, &h, all, NULL);
        tsa[q] = cpu() - a;
    }
    printf("one user, one thread, %d requests, %.0f candidates on average:\n", nreq,
           (double)cand_sum / nreq);
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
