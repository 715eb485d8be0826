/* bench_warmstart.c - incremental retraining of ials with a warm start
 * (rf_ials_set_init) at Protocol C scale: how many iterations a model
 * started from yesterday's vectors needs to match a cold fit, and what
 * that saves.
 *
 * Workload: bench/protoc.c (PROTOC_USERS / PROTOC_ITEMS / PROTOC_N, default
 * 138,000 x 27,000, 20M). The log is cut per user as Protocol A does
 * (last 20% of each user's pairs held out); "yesterday" is the train part
 * before its 90% time quantile. The previous model is fit cold on
 * yesterday's data; then on the whole train part: cold fits of 1, 2, 15
 * iterations and warm-started fits of 1 and 2. Each is scored on the
 * held-out pairs of every 10th user (NDCG@10, R@10, full ranking).
 *
 * Usage: bench_warmstart [THREADS [FACTORS]] (2, 64). Prints a table. */
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "protoc.h"
#include "recfuse/csr.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/factors.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/util.h"

static rf_model *fit(const rf_dataset *d, int factors, int iterations, const rf_model *init) {
    char params[128];
    snprintf(params, sizeof params, "factors=%d,iterations=%d", factors, iterations);
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_new("ials", &m, &err) || rf_model_set_params(m, params, &err) ||
        (init && rf_ials_set_init(m, init, &err)) || rf_model_fit(m, d, &err)) {
        fprintf(stderr, "bench_warmstart: %s: %s\n", params, err.msg);
        exit(1);
    }
    return m;
}

/* Relevance of the held-out log for every 10th user. */
static rf_csr *sampled_relevance(const rf_events *h, int32_t nu, int32_t ni) {
    int32_t *r = rf_malloc_array((size_t)h->n + 1, sizeof *r);
    int32_t *c = rf_malloc_array((size_t)h->n + 1, sizeof *c);
    int64_t n = 0;
    for (int64_t k = 0; k < h->n; k++)
        if (h->user[k] % 10 == 0) {
            r[n] = h->user[k];
            c[n] = h->item[k];
            n++;
        }
    rf_csr *out = NULL;
    if (!r || !c || rf_csr_from_coo(nu, ni, n, r, c, NULL, RF_FOLD_LAST, &out, NULL)) exit(1);
    for (int64_t q = 0; q < out->nnz; q++) out->data[q] = 1;
    rf_free(r);
    rf_free(c);
    return out;
}

static void report(const char *what, const rf_model *m, const rf_dataset *d, const rf_csr *test) {
    int ks[1] = {10};
    rf_eval_result res;
    rf_err err;
    if (rf_evaluate(m, d, test, ks, 1, &res, &err)) {
        fprintf(stderr, "bench_warmstart: evaluate: %s\n", err.msg);
        exit(1);
    }
    printf("| %-34s | %7.2f | %.4f | %.4f |\n", what, m->fit_seconds,
           res.value[0][RF_M_NDCG], res.value[0][RF_M_RECALL]);
    fflush(stdout);
    rf_eval_result_free(&res);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, factors = argc > 2 ? atoi(argv[2]) : 64;
    if (threads < 1 || factors < 1) {
        fprintf(stderr, "usage: bench_warmstart [THREADS [FACTORS]]\n");
        return 2;
    }
    rf_set_threads(threads);
    rf_progress_set_quiet(1);
    rf_log_set_level(RF_LOG_WARN);
    int32_t nu, ni;
    int64_t nn;
    rf_bench_protoc_size(&nu, &ni, &nn);
    double t0 = rf_mono();
    rf_events *ev = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_bench_protoc_events(nu, ni, nn, 1, &ev)) return 1;
    rf_protocol pa, pt;
    rf_protocol_default(&pa);
    rf_protocol_default(&pt);
    pt.kind = RF_PROTO_TIME;
    pt.test_ratio = 0.1;
    rf_split a = {0}, b = {0};
    rf_dataset *d_old = NULL, *d = NULL;
    if (rf_protocol_split(ev, &pa, &a, NULL, 0, &err) ||
        rf_protocol_split(a.train, &pt, &b, NULL, 0, &err)) {
        fprintf(stderr, "bench_warmstart: split: %s\n", err.msg);
        return 1;
    }
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    if (rf_dataset_build(b.train, &o, &d_old, &err) || rf_dataset_build(a.train, &o, &d, &err)) {
        fprintf(stderr, "bench_warmstart: dataset: %s\n", err.msg);
        return 1;
    }
    rf_csr *test = sampled_relevance(a.test, d->n_users, d->n_items);
    printf("# bench_warmstart: %d users, %d items; train %lld pairs (yesterday %lld), held out "
           "%lld (every 10th user: %lld); %d factors, %d threads; workload %.1f s\n",
           d->n_users, d->n_items, (long long)d->ui->nnz, (long long)d_old->ui->nnz,
           (long long)a.test->n, (long long)test->nnz, factors, threads, rf_mono() - t0);
    printf("| model on the whole train part | fit s | NDCG@10 | R@10 |\n|---|---|---|---|\n");
    rf_model *prev = fit(d_old, factors, 15, NULL);
    printf("| (yesterday's model, 15 it, fit on %lld pairs: %.2f s) | | | |\n",
           (long long)d_old->ui->nnz, prev->fit_seconds);
    const struct {
        const char *name;
        int it, warm;
    } runs[] = {{"cold, 1 iteration", 1, 0},  {"cold, 2 iterations", 2, 0},
                {"cold, 15 iterations", 15, 0}, {"warm start, 1 iteration", 1, 1},
                {"warm start, 2 iterations", 2, 1}};
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        rf_model *m = fit(d, factors, runs[k].it, runs[k].warm ? prev : NULL);
        report(runs[k].name, m, d, test);
        rf_model_free(m);
    }
    printf("peak RSS %.0f MiB\n", rf_bench_mib(rf_peak_rss()));
    rf_model_free(prev);
    rf_csr_free(test);
    rf_dataset_free(d);
    rf_dataset_free(d_old);
    rf_split_free(&a);
    rf_split_free(&b);
    rf_events_free(ev);
    return 0;
}
