/* bench_ials.c - iALS training speed, memory and fold-in latency on the
 * Protocol C workload (bench/protoc.h: 138,000 users, 27,000 items, 20M
 * binary interactions by default; PROTOC_USERS / PROTOC_ITEMS / PROTOC_N
 * override the size).
 *
 * Prints, for the conjugate-gradient solver (the model's default) with
 * FACTORS factors and ITERATIONS iterations: wall and CPU seconds of the
 * fit and per iteration; then one iteration of the exact (Cholesky)
 * solver for reference; then the latency of folding in a user from 100
 * events (rf_ials_fold_in_user, median and 10th/90th percentiles over up
 * to 2,000 users with at least 100 training items, one thread) and of
 * folding in an item from 100 users; then the RSS before the fits (the
 * workload: event log and dataset) and the process's peak RSS. CPU time
 * (user + system) does not count waiting for a CPU on a busy machine;
 * wall time does. It decides nothing.
 *
 * Usage: bench_ials [THREADS [ITERATIONS [FACTORS [PARAMS]]]]
 *   default: 2 threads, 15 iterations, 64 factors, no extra parameters
 *   (the model's defaults); PARAMS e.g. "alpha=2,cg_steps=2".
 *   RECFUSE_SIMD=portable or =avx2 caps the kernel level (default: the
 *   best the CPU has, AVX-512 CG passes where available);
 *   BENCH_DEBUG=1 logs the time of every user and item step.
 * Reference (REFERENCE.md): implicit ALS, 64 factors, 15 iterations, CG,
 * 2 threads: 54.5 s (3.63 s per iteration), 1,493 MiB peak RSS (Python);
 * numpy exact iALS, 1 iteration, 1 thread: 12.8 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "protoc.h"
#include "benchutil.h"
#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/util.h"

/* Fit one configuration; prints its timings; *out receives the model. */
static int fit(const rf_dataset *d, const char *params, int iterations, rf_model **out) {
    rf_err err;
    rf_err_clear(&err);
    rf_model *m;
    int rc = rf_model_new("ials", &m, &err);
    if (rc == 0) rc = rf_model_set_params(m, params, &err);
    if (rc) {
        fprintf(stderr, "bench_ials: %s\n", err.msg);
        rf_model_free(m);
        return rc;
    }
    double c0 = rf_bench_cpu_now();
    rc = rf_model_fit(m, d, &err);
    double cpu = rf_bench_cpu_now() - c0;
    if (rc) {
        fprintf(stderr, "bench_ials: %s\n", err.msg);
        rf_model_free(m);
        return rc;
    }
    char buf[1024];
    rf_model_params_format(m, buf, sizeof buf);
    printf("fit %-9s %7.2f s wall (%6.3f s/iteration), %7.2f s CPU (%6.3f s/iteration)\n"
           "  params: %s\n",
           strstr(params, "cholesky") ? "cholesky" : "cg", m->fit_seconds,
           m->fit_seconds / iterations, cpu, cpu / iterations, buf);
    *out = m;
    return 0;
}

/* Median, 10th and 90th percentile of the fold-in latency (microseconds)
 * of rows of M with at least 100 entries, from their first 100 entries. */
static void foldin_latency(const rf_model *m, const rf_csr *M, int item_side) {
    enum { MAXN = 2000, EV = 100 };
    double *us = malloc(MAXN * sizeof *us);
    float *vec = malloc(1024 * sizeof *vec);
    int n = 0;
    rf_err err;
    for (int32_t r = 0; r < M->nrows && n < MAXN; r += 1 + M->nrows / (4 * MAXN)) {
        if (rf_csr_row_len(M, r) < EV) continue;
        const int32_t *cols = M->indices + M->indptr[r];
        const float *w = M->data + M->indptr[r];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc;
        if (item_side) {
            rc = rf_ials_fold_in_item(m, EV, cols, w, vec, &err);
        } else {
            rf_hist h = {EV, cols, w, NULL};
            rc = rf_ials_fold_in_user(m, &h, vec, &err);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (rc) {
            fprintf(stderr, "bench_ials: fold-in: %s\n", err.msg);
            break;
        }
        us[n++] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) * 1e-3;
    }
    if (n > 0) {
        rf_bench_sort(us, (int)n);
        printf("fold-in of %s from %d events: median %.1f us (p10 %.1f, p90 %.1f) over %d %s\n",
               item_side ? "an item" : "a user", EV, us[n / 2], us[n / 10], us[(9 * n) / 10], n,
               item_side ? "items" : "users");
    } else {
        printf("fold-in: no %s with %d events\n", item_side ? "item" : "user", EV);
    }
    free(us);
    free(vec);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int iterations = argc > 2 ? atoi(argv[2]) : 15;
    int factors = argc > 3 ? atoi(argv[3]) : 64;
    const char *extra = argc > 4 ? argv[4] : "";
    if (threads < 1 || iterations < 1 || factors < 1) {
        fprintf(stderr, "usage: bench_ials [THREADS [ITERATIONS [FACTORS [PARAMS]]]]\n");
        return 2;
    }
    rf_set_threads(threads);
    rf_progress_set_quiet(1);
    /* BENCH_DEBUG=1: per-iteration timings of the user and item steps */
    rf_log_set_level(getenv("BENCH_DEBUG") ? RF_LOG_DEBUG : RF_LOG_WARN);
    rf_events *ev;
    rf_dataset *d;
    double gen_s;
    if (rf_bench_protoc_workload("bench_ials", &ev, &d, &gen_s)) return 1;
    printf("# bench_ials: %d users, %d items, %lld interactions; %d threads; kernels %s; "
           "workload built in %.1f s\n",
           d->n_users, d->n_items, (long long)d->ui->nnz, threads, rf_als_simd(), gen_s);
    int64_t rss0 = rf_bench_rss_now();

    char params[1024];
    snprintf(params, sizeof params, "factors=%d,iterations=%d,solver=cg%s%s", factors, iterations,
             *extra ? "," : "", extra);
    rf_model *cg = NULL, *ex = NULL;
    if (fit(d, params, iterations, &cg)) return 1;
    snprintf(params, sizeof params, "%s%sfactors=%d,iterations=1,solver=cholesky", extra,
             *extra ? "," : "", factors);
    if (fit(d, params, 1, &ex)) return 1;
    rf_set_threads(1);
    foldin_latency(cg, d->ui, 0);
    foldin_latency(cg, d->iu, 1);
    printf("rss before fits %.0f MiB (event log + dataset); peak RSS %.0f MiB\n", rf_bench_mib(rss0),
           rf_bench_mib(rf_peak_rss()));
    rf_model_free(cg);
    rf_model_free(ex);
    rf_dataset_free(d);
    rf_events_free(ev);
    return 0;
}
