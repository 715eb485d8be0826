/* bench_ranker.c - speed of the learning-to-rank library (ranker.h).
 *
 * Workload: rk_synth_make (src/rank/synth.c) groups x rows x features,
 * standard normal features, a graded relevance planted in features 0-2,
 * seed 1; a held-out copy (seed 2) of a quarter of the groups.
 * Phases:
 *   gbdt train:   LambdaMART, TREES trees (no early stopping), LEAVES
 *                 leaves, other options default, THREADS threads; wall and
 *                 CPU seconds, held-out NDCG@10;
 *   linear train: the linear ranker, default options (20 epochs);
 *   predict:      one thread, batches of 500 consecutive held-out rows
 *                 (one fusion request scores ~300-500 candidates);
 *                 microseconds per batch, median and min..max over RUNS
 *                 batches; also rf_ranker_contrib per row.
 * Decides nothing; the machine is shared, so wall times are noisy (CPU
 * seconds are steadier).
 *
 * Usage: bench_ranker [GROUPS [ROWS [FEATS [TREES [LEAVES [THREADS [RUNS [MAX_DEPTH]]]]]]]] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "benchutil.h"
#include "rank/rank_int.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/parallel.h"
#include "recfuse/ranker.h"
#include "recfuse/util.h"

#define BATCH 500

static double ndcg_at10(const rf_ranker *m, const rf_rank_data *d) {
    float *s = malloc((size_t)d->n_rows * sizeof *s);
    rf_ranker_predict(m, d->x, d->n_rows, s);
    double v = rf_rank_ndcg(d, s, 10);
    free(s);
    return v;
}

static rf_ranker *train(const rf_ranker_opts *o, const rf_rank_data *d, const char *what) {
    rf_err err;
    rf_ranker *m = NULL;
    double w0 = rf_mono(), c0 = rf_bench_cpu_now();
    if (rf_ranker_fit(o, d, NULL, &m, &err)) {
        fprintf(stderr, "bench_ranker: %s\n", err.msg);
        exit(1);
    }
    printf("%-12s wall %.2f s   cpu %.2f s   (%d trees)\n", what, rf_mono() - w0,
           rf_bench_cpu_now() - c0, rf_ranker_n_trees(m));
    return m;
}

/* CPU seconds of the calling thread: unlike wall time it does not count
 * waiting for a core on the shared machine. */
static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_predict(const rf_ranker *m, const rf_rank_data *d, int runs, const char *what) {
    double *t = malloc((size_t)runs * sizeof *t), *tc = malloc((size_t)runs * sizeof *tc);
    float *out = malloc(BATCH * sizeof *out);
    int64_t n_batches = d->n_rows / BATCH;
    volatile float sink = 0;
    for (int r = 0; r < runs; r++) {
        const float *x = d->x + (size_t)(r % n_batches) * BATCH * d->n_feats;
        double t0 = rf_mono(), c0 = thread_cpu();
        rf_ranker_predict(m, x, BATCH, out);
        t[r] = (rf_mono() - t0) * 1e6;
        tc[r] = (thread_cpu() - c0) * 1e6;
        sink += out[0];
    }
    rf_bench_sort(t, runs);
    rf_bench_sort(tc, runs);
    printf("%-12s predict %d rows: wall median %.0f us (min %.0f, max %.0f), thread cpu median "
           "%.0f us (min %.0f) = %.3f us/row\n",
           what, BATCH, t[runs / 2], t[0], t[runs - 1], tc[runs / 2], tc[0], tc[runs / 2] / BATCH);
    float c[4096], bias;
    double t0 = rf_mono();
    int rows = d->n_feats <= 4096 ? 2000 : 0;
    for (int i = 0; i < rows; i++) rf_ranker_contrib(m, d->x + (size_t)i * d->n_feats, c, &bias);
    if (rows)
        printf("%-12s contrib: %.2f us/row\n", what, (rf_mono() - t0) * 1e6 / rows);
    free(t);
    free(tc);
    free(out);
    (void)sink;
}

int main(int argc, char **argv) {
    int64_t groups = argc > 1 ? atoll(argv[1]) : 1000;
    int rows = argc > 2 ? atoi(argv[2]) : 100;
    int feats = argc > 3 ? atoi(argv[3]) : 40;
    int trees = argc > 4 ? atoi(argv[4]) : 300;
    int leaves = argc > 5 ? atoi(argv[5]) : 31;
    int threads = argc > 6 ? atoi(argv[6]) : 2;
    int runs = argc > 7 ? atoi(argv[7]) : 200;
    int max_depth = argc > 8 ? atoi(argv[8]) : -1; /* -1: the default */
    if (groups < 4 || rows < 1 || feats < 4 || trees < 1 || leaves < 2 || threads < 1 ||
        runs < 1) {
        fprintf(stderr, "usage: bench_ranker [GROUPS>=4 [ROWS [FEATS>=4 [TREES [LEAVES [THREADS "
                        "[RUNS [MAX_DEPTH]]]]]]]]\n");
        return 2;
    }
    rf_log_set_level(RF_LOG_WARN);
    rk_synth tr, te;
    int64_t test_groups = groups / 4 > 0 ? groups / 4 : 1;
    if (rk_synth_make(&tr, groups, rows, feats, 1) || rk_synth_make(&te, test_groups, rows, feats, 2)) {
        fprintf(stderr, "bench_ranker: cannot make %lld x %d x %d data\n", (long long)groups, rows,
                feats);
        return 1;
    }
    if (te.d.n_rows < BATCH) {
        fprintf(stderr, "bench_ranker: need at least %d held-out rows\n", BATCH);
        return 1;
    }
    printf("data: %lld groups x %d rows x %d features = %lld rows; held out %lld groups; "
           "%d threads for training\n",
           (long long)groups, rows, feats, (long long)tr.d.n_rows, (long long)test_groups,
           threads);
    rf_ranker_opts o;
    rf_ranker_opts_default(&o);
    o.n_trees = trees;
    o.max_leaves = leaves;
    if (max_depth >= 0) o.max_depth = max_depth;
    printf("trees %d, leaves %d, max_depth %d (0 = unlimited)\n", o.n_trees, o.max_leaves,
           o.max_depth);
    rf_set_threads(threads);
    rf_ranker *gb = train(&o, &tr.d, "gbdt train");
    o.kind = RF_RANKER_LINEAR;
    rf_ranker *lin = train(&o, &tr.d, "linear train");
    rf_set_threads(1);
    printf("held-out NDCG@10: gbdt %.4f  linear %.4f\n", ndcg_at10(gb, &te.d), ndcg_at10(lin, &te.d));
    bench_predict(gb, &te.d, runs, "gbdt");
    bench_predict(lin, &te.d, runs, "linear");
    printf("peak RSS %.0f MiB\n", rf_bench_mib(rf_bench_hwm_now()));
    rf_ranker_free(gb);
    rf_ranker_free(lin);
    rk_synth_free(&tr);
    rk_synth_free(&te);
    return 0;
}
