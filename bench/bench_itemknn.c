/* bench_itemknn.c - fit speed and memory of the neighbourhood models on
 * the Protocol C workload (bench/protoc.h: 138,000 users, 27,000 items,
 * 20M binary interactions by default; PROTOC_USERS / PROTOC_ITEMS /
 * PROTOC_N override the size).
 *
 * For each configuration it fits the model RUNS times and prints the
 * median and spread of the wall time, the CPU time (user + system, which
 * does not count waiting for a CPU on a busy machine), the neighbour table
 * size, the RSS before the fit (the workload itself: event log and
 * dataset) and the process's peak RSS after the fits (which includes the
 * workload). It decides nothing.
 *
 * Usage: bench_itemknn [THREADS [RUNS [MODEL:PARAMS ...]]]
 *   default: 2 threads, 1 run, "itemknn:sim=cosine,k=100"
 *   e.g.     bench_itemknn 2 3 itemknn:sim=cosine,k=100 itemknn:sim=bm25,k=100
 * Reference (REFERENCE.md): implicit CosineRecommender(K=100), 2 threads:
 * 38.4 s, 1,494 MiB peak RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "protoc.h"
#include "benchutil.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/util.h"

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int runs = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1 || runs < 1 || runs > 100) {
        fprintf(stderr, "usage: bench_itemknn [THREADS [RUNS [MODEL:PARAMS ...]]]\n");
        return 2;
    }
    static const char *const def_cfg[] = {"itemknn:sim=cosine,k=100"};
    const char *const *cfgs = argc > 3 ? (const char *const *)argv + 3 : def_cfg;
    int n_cfg = argc > 3 ? argc - 3 : 1;
    rf_set_threads(threads);
    rf_progress_set_quiet(1);

    rf_events *ev;
    rf_dataset *d;
    double gen_s;
    if (rf_bench_protoc_workload("bench_itemknn", &ev, &d, &gen_s)) return 1;
    rf_bench_protoc_print(d, gen_s);
    /* The dataset borrows the log's id maps: free only the event arrays,
     * then reset the peak (VmHWM) so the figures below are the fit's. */
    rf_free(ev->user);
    rf_free(ev->item);
    rf_free(ev->type);
    rf_free(ev->value);
    rf_free(ev->ts);
    ev->user = ev->item = NULL;
    ev->type = NULL;
    ev->value = NULL;
    ev->ts = NULL;
    ev->n = ev->cap = 0;
    rf_bench_reset_hwm();
    printf("threads           %d\n", threads);
    int64_t ws = rf_bench_rss_now();
    printf("RSS before fit    %.0f MiB (workload: dataset + id maps)\n", rf_bench_mib(ws));

    for (int c = 0; c < n_cfg; c++) {
        char name[64];
        const char *colon = strchr(cfgs[c], ':');
        size_t len = colon ? (size_t)(colon - cfgs[c]) : strlen(cfgs[c]);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, cfgs[c], len);
        name[len] = 0;
        const char *params = colon ? colon + 1 : "";
        double wall[100], cpu[100];
        for (int r = 0; r < runs; r++) {
            rf_err err;
            rf_err_clear(&err);
            rf_model *m = NULL;
            if (rf_model_new(name, &m, &err) || rf_model_set_params(m, params, &err)) {
                fprintf(stderr, "bench_itemknn: %s: %s\n", cfgs[c], err.msg);
                return 1;
            }
            double c0 = rf_bench_cpu_now(), w0 = rf_mono();
            if (rf_model_fit(m, d, &err)) {
                fprintf(stderr, "bench_itemknn: fit %s: %s\n", cfgs[c], err.msg);
                return 1;
            }
            wall[r] = rf_mono() - w0;
            cpu[r] = rf_bench_cpu_now() - c0;
            char buf[512];
            rf_model_params_format(m, buf, sizeof buf);
            if (r == 0) printf("%-8s %s\n", name, buf);
            rf_model_free(m);
        }
        rf_bench_sort(wall, (int)runs);
        rf_bench_sort(cpu, (int)runs);
        printf("  fit wall        %.2f s median (min %.2f, max %.2f, %d runs)\n", wall[runs / 2],
               wall[0], wall[runs - 1], runs);
        printf("  fit CPU         %.2f s median (min %.2f, max %.2f)\n", cpu[runs / 2], cpu[0],
               cpu[runs - 1]);
        printf("  peak RSS        %.0f MiB (whole process since the workload was built, "
               "incl. its %.0f MiB)\n", rf_bench_mib(rf_bench_hwm_now()), rf_bench_mib(ws));
    }
    rf_dataset_free(d);
    rf_events_free(ev);
    return 0;
}
