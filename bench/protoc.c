/* protoc.c - the Protocol C workload generator for the speed benchmarks
 * (see protoc.h). Alias tables make each draw O(1). */
#include "protoc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"
#include "benchutil.h"

#define NCLUST 16

typedef struct alias {
    int32_t n;
    float *prob;
    int32_t *alias;
} alias;

static int alias_build(alias *a, const double *w, int32_t n) {
    a->n = n;
    a->prob = malloc(sizeof(float) * (size_t)n);
    a->alias = malloc(sizeof(int32_t) * (size_t)n);
    double *p = malloc(sizeof(double) * (size_t)n);
    int32_t *small = malloc(sizeof(int32_t) * (size_t)n), *large = malloc(sizeof(int32_t) * (size_t)n);
    if (!a->prob || !a->alias || !p || !small || !large) return RF_ENOMEM;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += w[i];
    int32_t ns = 0, nl = 0;
    for (int32_t i = 0; i < n; i++) {
        p[i] = w[i] * n / sum;
        if (p[i] < 1)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        int32_t s = small[--ns], l = large[--nl];
        a->prob[s] = (float)p[s];
        a->alias[s] = l;
        p[l] -= 1 - p[s];
        if (p[l] < 1)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl) a->prob[large[--nl]] = 1, a->alias[large[nl]] = large[nl];
    while (ns) a->prob[small[--ns]] = 1, a->alias[small[ns]] = small[ns];
    free(p);
    free(small);
    free(large);
    return 0;
}

static int32_t alias_draw(const alias *a, rf_rng *r) {
    int32_t i = (int32_t)rf_rng_below(r, (uint64_t)a->n);
    return rf_rng_uniform(r) < a->prob[i] ? i : a->alias[i];
}

void rf_bench_protoc_size(int32_t *users, int32_t *items, int64_t *n) {
    const char *e;
    *users = (e = getenv("PROTOC_USERS")) ? atoi(e) : 138000;
    *items = (e = getenv("PROTOC_ITEMS")) ? atoi(e) : 27000;
    *n = (e = getenv("PROTOC_N")) ? atoll(e) : 20000000;
}

int rf_bench_protoc_events(int32_t nu, int32_t ni, int64_t n, uint64_t seed, rf_events **out) {
    rf_rng r;
    rf_rng_seed(&r, seed);
    rf_events *ev;
    int rc = rf_events_new(NULL, NULL, &ev);
    if (rc) return rc;
    char buf[32];
    int32_t id;
    for (int32_t u = 0; u < nu; u++) {
        int len = snprintf(buf, sizeof buf, "u%d", u);
        rf_idmap_put(ev->users, buf, (size_t)len, &id, NULL);
    }
    for (int32_t i = 0; i < ni; i++) {
        int len = snprintf(buf, sizeof buf, "i%d", i);
        rf_idmap_put(ev->items, buf, (size_t)len, &id, NULL);
    }
    /* Items: popularity by a random rank, cluster at random. */
    int32_t *rank = malloc(sizeof(int32_t) * (size_t)ni);
    for (int32_t i = 0; i < ni; i++) rank[i] = i;
    rf_rng_shuffle_i32(&r, rank, ni);
    int32_t *members[NCLUST];
    int32_t cnt[NCLUST] = {0};
    int32_t *clu = malloc(sizeof(int32_t) * (size_t)ni);
    for (int32_t i = 0; i < ni; i++) cnt[clu[i] = (int32_t)rf_rng_below(&r, NCLUST)]++;
    alias per[NCLUST];
    double cw[NCLUST];
    for (int c = 0; c < NCLUST; c++) {
        members[c] = malloc(sizeof(int32_t) * (size_t)(cnt[c] + 1));
        double *w = malloc(sizeof(double) * (size_t)(cnt[c] + 1));
        int32_t k = 0;
        cw[c] = 0;
        for (int32_t i = 0; i < ni; i++)
            if (clu[i] == c) {
                members[c][k] = i;
                w[k] = 1.0 / (rank[i] + 50.0);
                cw[c] += w[k];
                k++;
            }
        alias_build(&per[c], w, cnt[c]);
        free(w);
    }
    /* Users: lognormal activity scaled to n. */
    double *act = malloc(sizeof(double) * (size_t)nu), tot = 0;
    for (int32_t u = 0; u < nu; u++) {
        double a = 87.0 * exp(1.1 * rf_rng_normal(&r));
        if (a < 5) a = 5;
        if (a > 5400) a = 5400;
        act[u] = a;
        tot += a;
    }
    rc = rf_events_reserve(ev, n + nu);
    uint8_t *seen = calloc((size_t)ni, 1);
    int32_t *mine = malloc(sizeof(int32_t) * 6000);
    for (int32_t u = 0; rc == 0 && u < nu; u++) {
        int64_t want = (int64_t)llround(act[u] * (double)n / tot);
        if (want < 5) want = 5;
        if (want > ni / 2) want = ni / 2;
        if (want > 5400) want = 5400;
        double taste[NCLUST], ts = 0;
        for (int c = 0; c < NCLUST; c++) ts += taste[c] = rf_rng_gamma(&r, 0.3) * cw[c];
        double acc = 0;
        for (int c = 0; c < NCLUST; c++) taste[c] = (acc += taste[c] / ts);
        int64_t got = 0, tries = 0;
        while (got < want && tries < want * 50) {
            tries++;
            double x = rf_rng_uniform(&r);
            int c = 0;
            while (c < NCLUST - 1 && x > taste[c]) c++;
            if (cnt[c] == 0) continue;
            int32_t it = members[c][alias_draw(&per[c], &r)];
            if (seen[it]) continue;
            seen[it] = 1;
            mine[got++] = it;
        }
        int64_t t0 = 1600000000 + (int64_t)rf_rng_below(&r, 300 * 86400);
        for (int64_t k = 0; k < got; k++) {
            seen[mine[k]] = 0;
            rf_events_push(ev, u, mine[k], RF_EV_PURCHASE, 1.0f, t0 + k * 3600);
        }
    }
    free(seen);
    free(mine);
    free(act);
    free(rank);
    free(clu);
    for (int c = 0; c < NCLUST; c++) {
        free(members[c]);
        free(per[c].prob);
        free(per[c].alias);
    }
    if (rc) {
        rf_events_free(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

int rf_bench_protoc_dataset(int32_t users, int32_t items, int64_t n, uint64_t seed,
                            rf_events **ev, rf_dataset **out) {
    int rc = rf_bench_protoc_events(users, items, n, seed, ev);
    if (rc) return rc;
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    rf_err err;
    rc = rf_dataset_build(*ev, &o, out, &err);
    if (rc) {
        fprintf(stderr, "protoc: %s\n", err.msg);
        rf_events_free(*ev);
        *ev = NULL;
    }
    return rc;
}

int rf_bench_protoc_workload(const char *tag, rf_events **ev, rf_dataset **out, double *seconds) {
    int32_t nu, ni;
    int64_t n;
    rf_bench_protoc_size(&nu, &ni, &n);
    double t0 = rf_mono();
    *ev = NULL;
    *out = NULL;
    int rc = rf_bench_protoc_dataset(nu, ni, n, 1, ev, out);
    *seconds = rf_mono() - t0;
    if (rc) {
        fprintf(stderr, "%s: workload: %s\n", tag, rf_strerror(rc));
        return 1;
    }
    return 0;
}

void rf_bench_protoc_print(const rf_dataset *d, double seconds) {
    printf("workload          %d users x %d items, %lld interactions (generated in %.1f s)\n",
           d->n_users, d->n_items, (long long)d->ui->nnz, seconds);
    printf("peak RSS (gen)    %.0f MiB (generator: event log + dataset)\n",
           rf_bench_mib(rf_bench_hwm_now()));
}
