/* bench_bpr.c - BPR training speed and memory on the Protocol C workload
 * (bench/protoc.h: 138,000 users, 27,000 items, 20M binary interactions
 * by default; PROTOC_USERS / PROTOC_ITEMS / PROTOC_N override the size).
 *
 * Fits each configuration once (or RUNS times) and prints the wall time
 * (total and per epoch, median of the runs), the CPU time (user + system:
 * on a shared machine wall time also counts waiting for a CPU), the RSS
 * before the fit (the workload: dataset and id maps, the event arrays are
 * freed first) and the peak RSS of the whole process, with and without the
 * generator's peak. It decides nothing.
 *
 * Usage: bench_bpr [THREADS [RUNS [PARAMS ...]]]
 *   default: 2 threads, 1 run, "factors=64,epochs=15"
 *   e.g.     bench_bpr 2 1 factors=64,epochs=15 factors=64,epochs=15,sampler=warp
 * Reference (REFERENCE.md): implicit 0.7.3 BPR, 64 factors, 15 epochs of
 * 20M samples, 2 threads: 145.7 s (9.71 s per epoch), 1,493 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "protoc.h"
#include "benchutil.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/util.h"

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int runs = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1 || runs < 1 || runs > 100) {
        fprintf(stderr, "usage: bench_bpr [THREADS [RUNS [PARAMS ...]]]\n");
        return 2;
    }
    static const char *const def_cfg[] = {"factors=64,epochs=15"};
    const char *const *cfgs = argc > 3 ? (const char *const *)argv + 3 : def_cfg;
    int n_cfg = argc > 3 ? argc - 3 : 1;
    rf_set_threads(threads);
    rf_progress_set_quiet(1);
    rf_log_set_level(RF_LOG_WARN);

    rf_events *ev;
    rf_dataset *d;
    double gen_s;
    if (rf_bench_protoc_workload("bench_bpr", &ev, &d, &gen_s)) return 1;
    rf_bench_protoc_print(d, gen_s);
    int64_t gen_peak = rf_bench_hwm_now();
    /* the dataset borrows the log's id maps: free only the event arrays */
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
    printf("RSS before fit    %.0f MiB (workload: dataset + id maps)\n", rf_bench_mib(rf_bench_rss_now()));
    fflush(stdout);

    for (int c = 0; c < n_cfg; c++) {
        double wall[100], cpu[100];
        int epochs = 0;
        for (int r = 0; r < runs; r++) {
            rf_model *m = NULL;
            rf_err err;
            int rc;
            if ((rc = rf_model_new("bpr", &m, &err)) ||
                (rc = rf_model_set_params(m, cfgs[c], &err))) {
                fprintf(stderr, "bench_bpr: %s\n", err.msg);
                rf_model_free(m);
                return 2;
            }
            m->data_opts.binary = 1;
            double c0 = rf_bench_cpu_now();
            if ((rc = rf_model_fit(m, d, &err))) {
                fprintf(stderr, "bench_bpr: %s\n", err.msg);
                rf_model_free(m);
                return 1;
            }
            wall[r] = m->fit_seconds;
            cpu[r] = rf_bench_cpu_now() - c0;
            char pbuf[512];
            rf_model_params_format(m, pbuf, sizeof pbuf);
            const char *e = strstr(pbuf, "epochs=");
            epochs = e ? atoi(e + 7) : 1;
            if (r == 0) printf("\nbpr %s\n", pbuf);
            rf_model_free(m);
        }
        double ws[100];
        memcpy(ws, wall, sizeof(double) * (size_t)runs);
        rf_bench_sort(ws, (int)runs);
        double med = ws[runs / 2];
        printf("fit               %.1f s wall (median of %d, min %.1f, max %.1f), %.2f s per "
               "epoch of %lld samples\n",
               med, runs, ws[0], ws[runs - 1], med / epochs, (long long)d->ui->nnz);
        printf("cpu               %.1f s (user + system, first run)\n", cpu[0]);
        printf("peak RSS          %.0f MiB during the fits (dataset + model + scratch); "
               "%.0f MiB whole process incl. the generator\n",
               rf_bench_mib(rf_bench_hwm_now()), rf_bench_mib(rf_bench_hwm_now() > gen_peak ? rf_bench_hwm_now() : gen_peak));
        fflush(stdout);
    }
    rf_dataset_free(d);
    rf_events_free(ev);
    return 0;
}
