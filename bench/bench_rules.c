/* bench_rules.c - speed of association-rule mining (FP-Growth + rule
 * generation) on 1M baskets generated in memory with planted itemsets,
 * and of the whole "rules" model fit from a purchase event log.
 *
 * Workload (deterministic for the seed): I items (default 20,000) with
 * popularity ~ (rank + 50)^-1; a basket holds 1 + Geometric(mean 3)
 * independent draws (at most 40); 30% of baskets also contain one of 300
 * planted itemsets (200 pairs, 100 triples of random items, chosen
 * uniformly), so each planted set is in about 1,000 baskets (support
 * ~0.001). Phases, each timed over RUNS runs (median and min..max, wall
 * and CPU seconds):
 *   mine2 / mine3: rf_fpgrowth with max_len 2 / 3 at min_support S
 *                  (default 0.0005 = 500 baskets), then
 *                  rf_rules_from_itemsets (min confidence 0.01, lift 1);
 *   model:         the baskets written as a purchase log (one user per 4
 *                  sessions, 2 h apart, events 1 minute apart), then
 *                  rf_dataset_build and the rules model fit (session
 *                  baskets from the log, FP-Growth max_len 3, rules,
 *                  pruning, last baskets) - what `recfuse train --model
 *                  rules` costs after loading the store.
 * Reports the planted sets recovered (all should be) and spurious
 * frequent pairs/triples, itemset and rule counts, and peak RSS. Decides
 * nothing; the machine is shared, so wall times are noisy (CPU seconds
 * are steadier).
 *
 * Usage: bench_rules [BASKETS [RUNS [THREADS [MIN_SUPPORT [ITEMS]]]]] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchutil.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/rules.h"
#include "recfuse/util.h"

#define N_PAIRS 200
#define N_TRIPLES 100

static void report(const char *what, double *wall, double *cpu, int runs) {
    rf_bench_sort(wall, (int)runs);
    rf_bench_sort(cpu, (int)runs);
    printf("%-6s wall median %.3f s (min %.3f, max %.3f)   cpu median %.3f s\n", what,
           wall[runs / 2], wall[0], wall[runs - 1], cpu[runs / 2]);
}

typedef struct workload {
    int64_t n;
    int64_t *ptr;
    int32_t *items;
    int32_t planted[N_PAIRS + N_TRIPLES][3]; /* ascending; [2] = -1 for pairs */
} workload;

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void make_workload(workload *w, int64_t n, int32_t ni, uint64_t seed) {
    rf_rng g;
    rf_rng_seed(&g, seed);
    /* popularity by rank, a random permutation of items */
    double *cdf = malloc((size_t)ni * sizeof *cdf);
    int32_t *perm = malloc((size_t)ni * sizeof *perm);
    double s = 0;
    for (int32_t r = 0; r < ni; r++) {
        s += 1.0 / (r + 50.0);
        cdf[r] = s;
        perm[r] = r;
    }
    rf_rng_shuffle_i32(&g, perm, ni);
    for (int k = 0; k < N_PAIRS + N_TRIPLES; k++) {
        int len = k < N_PAIRS ? 2 : 3;
        int32_t *p = w->planted[k];
        p[2] = -1;
        for (int x = 0; x < len; x++) {
            int dup;
            do {
                p[x] = (int32_t)rf_rng_below(&g, (uint64_t)ni);
                dup = 0;
                for (int y = 0; y < x; y++) dup |= p[y] == p[x];
            } while (dup);
        }
        qsort(p, (size_t)len, sizeof *p, cmp_i32);
    }
    w->n = n;
    w->ptr = malloc(((size_t)n + 1) * sizeof *w->ptr);
    w->items = malloc((size_t)n * 44 * sizeof *w->items);
    int64_t q = 0;
    w->ptr[0] = 0;
    for (int64_t b = 0; b < n; b++) {
        int len = 1;
        while (len < 40 && rf_rng_uniform(&g) < 2.0 / 3.0) len++; /* mean 3 */
        for (int x = 0; x < len; x++) {
            double u = rf_rng_uniform(&g) * s;
            int32_t lo = 0, hi = ni - 1;
            while (lo < hi) {
                int32_t mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1;
                else hi = mid;
            }
            w->items[q++] = perm[lo];
        }
        if (rf_rng_uniform(&g) < 0.3) {
            const int32_t *p = w->planted[rf_rng_below(&g, N_PAIRS + N_TRIPLES)];
            for (int x = 0; x < 3 && p[x] >= 0; x++) w->items[q++] = p[x];
        }
        w->ptr[b + 1] = q;
    }
    free(cdf);
    free(perm);
}

static int has_set(const rf_itemsets *s, const int32_t *p) {
    int len = p[2] < 0 ? 2 : 3;
    for (int64_t q = 0; q < s->n; q++)
        if (s->sets[q].len == len && memcmp(s->sets[q].items, p, (size_t)len * sizeof *p) == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    double min_support = argc > 4 ? atof(argv[4]) : 0.0005;
    int32_t ni = argc > 5 ? atoi(argv[5]) : 20000;
    if (n < 1 || runs < 1 || ni < 10 || !(min_support > 0)) {
        fprintf(stderr, "usage: bench_rules [BASKETS [RUNS [THREADS [MIN_SUPPORT [ITEMS]]]]]\n");
        return 2;
    }
    if (threads > 0) rf_set_threads(threads);
    rf_log_set_level(RF_LOG_WARN);
    rf_err err;
    rf_err_clear(&err);
    printf("# bench_rules: %lld baskets, %d items, min_support %g, %d threads, %d runs\n",
           (long long)n, (int)ni, min_support, rf_threads(), runs);
    double t0 = rf_mono();
    workload w;
    make_workload(&w, n, ni, 42);
    rf_baskets *b;
    if (rf_baskets_build(w.n, w.ptr, w.items, ni, &b, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("workload: %lld basket items (mean %.2f per basket), generated in %.2f s\n",
           (long long)b->indptr[b->n], (double)b->indptr[b->n] / (double)b->n, rf_mono() - t0);
    int64_t minc = (int64_t)ceil(min_support * (double)n);
    double *wall = malloc((size_t)runs * sizeof *wall), *cpu = malloc((size_t)runs * sizeof *cpu);

    for (int max_len = 2; max_len <= 3; max_len++) {
        rf_itemsets *s = NULL;
        int64_t nr = 0;
        for (int r = 0; r < runs; r++) {
            rf_itemsets_free(s);
            double c0 = rf_bench_cpu_now(), w0 = rf_mono();
            rf_rule *rules;
            if (rf_fpgrowth(b, ni, minc, max_len, 0, &s, &err) ||
                rf_rules_from_itemsets(s, 0.01, 1.0, &rules, &nr, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            wall[r] = rf_mono() - w0;
            cpu[r] = rf_bench_cpu_now() - c0;
            rf_free(rules);
        }
        char label[16];
        snprintf(label, sizeof label, "mine%d", max_len);
        report(label, wall, cpu, runs);
        int64_t c[3] = {0, 0, 0};
        for (int64_t q = 0; q < s->n; q++) c[s->sets[q].len - 1]++;
        int found = 0, want = max_len >= 3 ? N_PAIRS + N_TRIPLES : N_PAIRS;
        for (int k = 0; k < want; k++) found += has_set(s, w.planted[k]);
        /* spurious: frequent pairs/triples that are not part of a planted set */
        int64_t spurious = 0;
        for (int64_t q = 0; q < s->n; q++) {
            const rf_itemset *x = &s->sets[q];
            if (x->len < 2) continue;
            int inside = 0;
            for (int k = 0; k < N_PAIRS + N_TRIPLES && !inside; k++) {
                const int32_t *p = w.planted[k];
                int all = 1;
                for (int y = 0; y < x->len; y++)
                    all &= x->items[y] == p[0] || x->items[y] == p[1] || x->items[y] == p[2];
                inside = all;
            }
            spurious += !inside;
        }
        printf("       itemsets: %lld items, %lld pairs, %lld triples; rules %lld; planted "
               "recovered %d/%d, spurious %lld\n",
               (long long)c[0], (long long)c[1], (long long)c[2], (long long)nr, found, want,
               (long long)spurious);
        rf_itemsets_free(s);
    }

    /* the model: baskets as a purchase log */
    rf_events *ev;
    if (rf_events_new(NULL, NULL, &ev)) return 1;
    char buf[32];
    int32_t id;
    for (int32_t i = 0; i < ni; i++) {
        int len = snprintf(buf, sizeof buf, "i%d", i);
        rf_idmap_put(ev->items, buf, (size_t)len, &id, NULL);
    }
    rf_events_reserve(ev, b->indptr[b->n]);
    for (int64_t k = 0; k < b->n; k++) {
        int32_t user = (int32_t)(k / 4);
        if (k % 4 == 0) {
            int len = snprintf(buf, sizeof buf, "u%d", user);
            rf_idmap_put(ev->users, buf, (size_t)len, &id, NULL);
        }
        int64_t t = 1700000000 + (k % 4) * 7200;
        for (int64_t q = b->indptr[k]; q < b->indptr[k + 1]; q++)
            rf_events_push(ev, user, b->items[q], RF_EV_PURCHASE, 1, t + 60 * (q - b->indptr[k]));
    }
    rf_dataset *d;
    if (rf_dataset_build(ev, NULL, &d, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    d->events = ev;
    char params[128];
    snprintf(params, sizeof params, "min_support=%g,min_count=1,max_len=3", min_support);
    rf_rules_info info;
    memset(&info, 0, sizeof info);
    for (int r = 0; r < runs; r++) {
        rf_model *m;
        rf_model_new("rules", &m, NULL);
        rf_model_set_params(m, params, NULL);
        double c0 = rf_bench_cpu_now(), w0 = rf_mono();
        if (rf_model_fit(m, d, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        wall[r] = rf_mono() - w0;
        cpu[r] = rf_bench_cpu_now() - c0;
        rf_rules_model_info(m, &info, NULL);
        rf_model_free(m);
    }
    report("model", wall, cpu, runs);
    printf("       %lld events, %d users -> %lld session baskets, %lld rules kept\n",
           (long long)ev->n, (int)rf_idmap_size(ev->users), (long long)info.n_baskets,
           (long long)info.n_rules);
    printf("peak RSS %.0f MiB\n", (double)rf_peak_rss() / (1024.0 * 1024.0));
    rf_dataset_free(d);
    rf_events_free(ev);
    rf_baskets_free(b);
    free(w.ptr);
    free(w.items);
    free(wall);
    free(cpu);
    return 0;
}
