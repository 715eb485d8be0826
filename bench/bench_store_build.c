/* bench_store_build.c - time loading events from a store and building the
 * training matrices; prints seconds, matrix bytes per interaction and the
 * process's peak RSS. Usage: bench_store_build DATA_DIR */
#include <stdio.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/store.h"
#include "recfuse/util.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bench_store_build DATA_DIR\n");
        return 2;
    }
    rf_err err;
    rf_err_clear(&err);
    rf_store *s;
    if (rf_store_open(argv[1], 0, &s, &err) != 0) {
        fprintf(stderr, "bench_store_build: %s\n", err.msg);
        return 1;
    }
    double t0 = rf_mono();
    rf_events *ev;
    if (rf_store_load_events(s, &ev, &err) != 0) {
        fprintf(stderr, "bench_store_build: %s\n", err.msg);
        return 1;
    }
    double t1 = rf_mono();
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    rf_dataset *d;
    if (rf_dataset_build(ev, &o, &d, &err) != 0) {
        fprintf(stderr, "bench_store_build: %s\n", err.msg);
        return 1;
    }
    double t2 = rf_mono();
    int64_t nnz = d->ui->nnz;
    printf("events            %lld\n", (long long)ev->n);
    printf("users x items     %d x %d, %lld interactions\n", d->n_users, d->n_items, (long long)nnz);
    printf("load from store   %.2f s\n", t1 - t0);
    printf("build matrices    %.2f s\n", t2 - t1);
    printf("total             %.2f s\n", t2 - t0);
    printf("matrix bytes      %lld (%.1f bytes per interaction)\n", (long long)rf_dataset_bytes(d),
           nnz ? (double)rf_dataset_bytes(d) / (double)nnz : 0.0);
    printf("event log bytes   %lld\n", (long long)rf_events_bytes(ev));
    printf("peak RSS          %.0f MiB\n", (double)rf_peak_rss() / 1048576.0);
    rf_dataset_free(d);
    rf_events_free(ev);
    rf_store_close(s);
    return 0;
}
