/* bench_dataset.c - speed and memory of rf_dataset_build and the per-user
 * ratio split on an in-memory log of Protocol C shape.
 *
 * The log is generated in memory (no files): U users, I items, N events
 * (defaults 138,000 / 27,000 / 20,000,000, value 1, type view); item
 * popularity ~ (rank + 50)^-1; user activity lognormal with median 87,
 * clipped to [5, 5400] and scaled to N; events interleaved across users
 * and in time order over one year, as a shop's log would be. Items are
 * drawn independently per event, so some pairs repeat (folded by the
 * build). Prints the median and spread of R build runs, bytes per
 * interaction and peak RSS; decides nothing.
 *
 * Usage: bench_dataset [EVENTS [RUNS [THREADS]]] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchutil.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

static int make_log(int64_t n, int32_t nu, int32_t ni, uint64_t seed, rf_events **out) {
    rf_events *ev;
    int rc = rf_events_new(NULL, NULL, &ev);
    if (rc) return rc;
    char buf[32];
    int32_t id;
    for (int32_t u = 0; u < nu; u++) {
        int len = snprintf(buf, sizeof buf, "u%d", u);
        if ((rc = rf_idmap_put(ev->users, buf, (size_t)len, &id, NULL))) return rc;
    }
    for (int32_t i = 0; i < ni; i++) {
        int len = snprintf(buf, sizeof buf, "%d", i);
        if ((rc = rf_idmap_put(ev->items, buf, (size_t)len, &id, NULL))) return rc;
    }
    if ((rc = rf_events_reserve(ev, n))) return rc;
    /* User activity: lognormal(median 87, sigma 1.0) clipped, scaled to n. */
    rf_rng r;
    rf_rng_seed(&r, seed);
    double *act = malloc((size_t)nu * sizeof *act);
    int64_t *cnt = malloc((size_t)nu * sizeof *cnt);
    double sum = 0;
    for (int32_t u = 0; u < nu; u++) {
        double a = exp(log(87.0) + 1.0 * rf_rng_normal(&r));
        act[u] = a < 5 ? 5 : a > 5400 ? 5400 : a;
        sum += act[u];
    }
    int64_t total = 0;
    for (int32_t u = 0; u < nu; u++) {
        double a = act[u] * (double)n / sum;
        cnt[u] = (int64_t)(a < 5 ? 5 : a > 5400 ? 5400 : a);
        total += cnt[u];
    }
    if (n < 5 * (int64_t)nu || n > 5400 * (int64_t)nu) return RF_EINVAL;
    for (int32_t u = 0; total != n; u = (u + 1) % nu) { /* fix the rounding */
        if (total < n && cnt[u] < 5400) cnt[u]++, total++;
        else if (total > n && cnt[u] > 5) cnt[u]--, total--;
    }
    int64_t k = 0;
    for (int32_t u = 0; u < nu; u++)
        for (int64_t j = 0; j < cnt[u]; j++) ev->user[k++] = u;
    rf_rng_shuffle_i32(&r, ev->user, n); /* interleave users */
    /* Item popularity CDF. */
    double *cdf = malloc((size_t)ni * sizeof *cdf);
    double c = 0;
    for (int32_t i = 0; i < ni; i++) cdf[i] = (c += 1.0 / (i + 50.0));
    for (int32_t i = 0; i < ni; i++) cdf[i] /= c;
    const int64_t t0 = 1700000000, span = 365 * 86400;
#pragma omp parallel for num_threads(rf_threads()) schedule(static)
    for (int64_t blk = 0; blk < (n + 65535) / 65536; blk++) {
        rf_rng rr;
        rf_rng_stream(&rr, seed, (uint64_t)blk);
        int64_t hi = (blk + 1) * 65536 < n ? (blk + 1) * 65536 : n;
        for (int64_t e = blk * 65536; e < hi; e++) {
            double x = rf_rng_uniform(&rr);
            int32_t lo = 0, up = ni - 1;
            while (lo < up) {
                int32_t mid = (lo + up) / 2;
                if (cdf[mid] < x) lo = mid + 1;
                else up = mid;
            }
            ev->item[e] = lo;
            ev->type[e] = RF_EV_VIEW;
            ev->value[e] = 1.0f;
            ev->ts[e] = t0 + e * span / n;
        }
    }
    ev->n = n;
    free(act);
    free(cnt);
    free(cdf);
    *out = ev;
    return 0;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 20000000;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    if (argc > 3) rf_set_threads(atoi(argv[3]));
    if (n < 1000 || n > 2000000000 || runs < 1) {
        fprintf(stderr, "usage: bench_dataset [EVENTS>=1000 [RUNS [THREADS]]]\n");
        return 2;
    }
    rf_err err;
    rf_err_clear(&err);
    double g0 = rf_mono();
    /* Users scale with n below 20M (about 145 events each). */
    int32_t nu = n >= 20000000 ? 138000 : (int32_t)(n * 138000 / 20000000);
    if (nu < 1) nu = 1;
    rf_events *ev;
    if (make_log(n, nu, 27000, 1, &ev) != 0) {
        fprintf(stderr, "bench_dataset: out of memory generating the log\n");
        return 1;
    }
    double g1 = rf_mono();
    int64_t rss_log = rf_bench_rss_now();
    printf("# bench_dataset: %lld events, %d users x 27000 items, %d threads\n", (long long)n,
           nu, rf_threads());
    printf("generate          %.2f s; log %.1f MiB (%.1f B/event); RSS %.1f MiB\n", g1 - g0,
           rf_bench_mib(rf_events_bytes(ev)), (double)rf_events_bytes(ev) / (double)n, rf_bench_mib(rss_log));

    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    double *sec = malloc((size_t)runs * sizeof *sec);
    double *cpu = malloc((size_t)runs * sizeof *cpu);
    rf_dataset *d = NULL;
    for (int k = 0; k < runs; k++) {
        rf_dataset_free(d);
        d = NULL;
        double t = rf_mono(), c = rf_bench_cpu_now();
        if (rf_dataset_build(ev, &o, &d, &err) != 0) {
            fprintf(stderr, "bench_dataset: %s\n", err.msg);
            return 1;
        }
        sec[k] = rf_mono() - t;
        cpu[k] = rf_bench_cpu_now() - c;
    }
    int64_t peak_build = rf_peak_rss();
    rf_bench_sort(sec, (int)runs);
    rf_bench_sort(cpu, (int)runs);
    int64_t nnz = d->ui->nnz, bytes = rf_dataset_bytes(d);
    printf("build             median %.3f s (min %.3f, max %.3f, %d runs)\n", sec[runs / 2], sec[0],
           sec[runs - 1], runs);
    printf("build CPU time    median %.3f s (min %.3f, max %.3f; user + system, all threads)\n",
           cpu[runs / 2], cpu[0], cpu[runs - 1]);
    printf("interactions      %lld distinct pairs from %lld events\n", (long long)nnz,
           (long long)n);
    printf("dataset bytes     %.1f MiB = %.2f B/interaction (ui %.1f + iu %.1f + ts %.1f MiB)\n",
           rf_bench_mib(bytes), (double)bytes / (double)nnz, rf_bench_mib(rf_csr_bytes(d->ui)),
           rf_bench_mib(rf_csr_bytes(d->iu)), rf_bench_mib(nnz * 4));
    printf("peak RSS (build)  %.1f MiB; over the log %.1f MiB = %.1f B/event (result %.1f + "
           "scratch %.1f)\n",
           rf_bench_mib(peak_build), rf_bench_mib(peak_build - rss_log), (double)(peak_build - rss_log) / (double)n,
           rf_bench_mib(bytes), rf_bench_mib(peak_build - rss_log - bytes));
    rf_dataset_free(d);

    /* Protocol A rule at this scale. */
    rf_split s;
    double t = rf_mono(), c0 = rf_bench_cpu_now();
    if (rf_split_user_ratio(ev, 0.2, 5, &s, &err) != 0) {
        fprintf(stderr, "bench_dataset: %s\n", err.msg);
        return 1;
    }
    double ts = rf_mono() - t, tc = rf_bench_cpu_now() - c0;
    printf("split user 80/20  %.3f s (CPU %.3f s); train %lld + test %lld events; peak RSS %.1f MiB\n",
           ts, tc, (long long)s.train->n, (long long)s.test->n, rf_bench_mib(rf_peak_rss()));
    rf_split_free(&s);
    rf_events_free(ev);
    free(sec);
    free(cpu);
    return 0;
}
