/* bench_eval.c - speed of full-ranking evaluation at ML-20M scale.
 *
 * Workload (bench/protoc.h): 138,000 users x 27,000 items, 20M distinct
 * interactions, cut by the per-user 80/20 rule (Protocol A). The model is
 * a 64-factor dot product defined here, so the figure measures the
 * evaluation loop, not a colleague's model. It is "quickly fitted" by a
 * random projection: each item vector is the normalised sum of seeded
 * Gaussian vectors of the item's train users (items bought by the same
 * users point the same way) and each user vector the mean of the user's
 * train items' vectors, so the lists follow co-occurrence like a cheap
 * item-kNN and the metrics are not those of a random ranking. score_batch
 * scores a block of users with one cblas_sgemm (U_block * V^T);
 * score_all uses cblas_sgemv.
 *
 * Every evaluated user's whole catalog is scored and ranked; timed
 * variants: the default metric set through score_batch (P R NDCG MAP HR
 * MRR at K = 10 and 20, AUC, Nov, ARP, ILDemb from the item vectors, Cov,
 * Gini), the same without AUC, and the per-user score_all path. Prints the
 * median and spread of RUNS runs (wall seconds; CPU seconds too), users
 * per second and peak RSS; decides nothing. The machine is shared: wall
 * times are noisy, CPU time less so.
 *
 * Usage: bench_eval [RUNS [THREADS]]   (PROTOC_USERS/ITEMS/N resize it) */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "protoc.h"
#include "benchutil.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

#define DIM 64

typedef struct dot_impl {
    float *U; /* n_users x DIM */
    float *V; /* n_items x DIM */
} dot_impl;

static int dot_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                         rf_err *err) {
    const dot_impl *p = m->impl;
    if (user < 0) {
        memset(out, 0, (size_t)m->n_items * sizeof *out);
        return 0;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, m->n_items, DIM, 1.0f, p->V, DIM,
                p->U + (size_t)user * DIM, 1, 0.0f, out, 1);
    return 0;
}

/* out (n x n_items) = U_block (n x DIM) * V^T. The block's rows are
 * gathered first (users need not be consecutive); unknown users score 0. */
static int dot_score_batch(const rf_model *m, int32_t n, const int32_t *users,
                           const rf_hist *hists, float *out, rf_err *err) {
    const dot_impl *p = m->impl;
    float ub[256 * DIM];
    for (int32_t r0 = 0; r0 < n; r0 += 256) {
        int32_t nb = n - r0 < 256 ? n - r0 : 256;
        for (int32_t r = 0; r < nb; r++) {
            int32_t u = users[r0 + r];
            if (u >= 0)
                memcpy(ub + (size_t)r * DIM, p->U + (size_t)u * DIM, DIM * sizeof(float));
            else
                memset(ub + (size_t)r * DIM, 0, DIM * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, m->n_items, DIM, 1.0f, ub, DIM,
                    p->V, DIM, 0.0f, out + (size_t)r0 * m->n_items, m->n_items);
    }
    return 0;
}

static const float *dot_vectors(const rf_model *m, int *dim) {
    *dim = DIM;
    return ((const dot_impl *)m->impl)->V;
}

static const rf_model_ops dot_batch_ops = {.name = "dot64",
                                           .help = "64-factor dot product (bench)",
                                           .score_all = dot_score_all,
                                           .score_batch = dot_score_batch,
                                           .item_vectors = dot_vectors};
static const rf_model_ops dot_plain_ops = {.name = "dot64-per-user",
                                           .help = "64-factor dot product (bench)",
                                           .score_all = dot_score_all,
                                           .item_vectors = dot_vectors};

/* Time `runs` evaluations; prints one line; keeps the last result. */
static int timed(const char *what, const rf_model *m, const rf_dataset *d, const rf_csr *test,
                 const rf_eval_opts *o, int runs, rf_eval_result *last) {
    const int ks[] = {10, 20};
    double *w = malloc((size_t)runs * sizeof *w), *c = malloc((size_t)runs * sizeof *c);
    rf_err err;
    for (int r = 0; r < runs; r++) {
        rf_eval_result res;
        double t0 = rf_mono(), c0 = rf_bench_cpu_now();
        if (rf_evaluate_ex(m, d, test, ks, 2, o, &res, &err) != 0) {
            fprintf(stderr, "bench_eval: %s\n", err.msg);
            return 1;
        }
        w[r] = rf_mono() - t0;
        c[r] = rf_bench_cpu_now() - c0;
        if (r == runs - 1) {
            rf_eval_result_free(last);
            *last = res;
        } else {
            rf_eval_result_free(&res);
        }
    }
    rf_bench_sort(w, (int)runs);
    rf_bench_sort(c, (int)runs);
    printf("%-34s median %7.2f s (min %.2f, max %.2f; CPU %.2f s); %.0f users/s\n", what,
           w[runs / 2], w[0], w[runs - 1], c[runs / 2], last->n_users / w[runs / 2]);
    fflush(stdout);
    free(w);
    free(c);
    return 0;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (argc > 2)
        rf_set_threads(atoi(argv[2]));
    if (runs < 1) {
        fprintf(stderr, "usage: bench_eval [RUNS [THREADS]]\n");
        return 2;
    }
    int32_t nu, ni;
    int64_t n;
    rf_bench_protoc_size(&nu, &ni, &n);
    rf_err err;
    rf_err_clear(&err);
    double t0 = rf_mono();
    rf_events *ev;
    if (rf_bench_protoc_events(nu, ni, n, 1, &ev) != 0) {
        fprintf(stderr, "bench_eval: cannot generate the workload\n");
        return 1;
    }
    double t1 = rf_mono();
    rf_split sp;
    rf_dataset *d;
    rf_csr *test;
    rf_dataset_opts dopts;
    rf_dataset_opts_default(&dopts);
    dopts.binary = 1;
    if (rf_split_user_ratio(ev, 0.2, 5, &sp, &err) || rf_dataset_build(sp.train, &dopts, &d, &err) ||
        rf_eval_relevance(sp.test, d->n_users, d->n_items, &test, &err)) {
        fprintf(stderr, "bench_eval: %s\n", err.msg);
        return 1;
    }
    double t2 = rf_mono();
    printf("# bench_eval: %d users x %d items, %lld interactions, %d threads, %d runs\n", nu, ni,
           (long long)ev->n, rf_threads(), runs);
    printf("workload          generate %.1f s; split 80/20 + train matrix + test matrix %.1f s; "
           "train %lld, test %lld pairs\n",
           t1 - t0, t2 - t1, (long long)d->ui->nnz, (long long)test->nnz);
    /* a free pass: the events are not needed any more */
    rf_split_free(&sp);

    /* The model: a random projection of the item columns, then fold-in. */
    double f0 = rf_mono();
    dot_impl impl;
    impl.U = rf_calloc((size_t)d->n_users * DIM, sizeof(float));
    impl.V = rf_calloc((size_t)d->n_items * DIM, sizeof(float));
    float *R = rf_malloc_array((size_t)d->n_users * DIM, sizeof(float));
    if (!impl.U || !impl.V || !R) {
        fprintf(stderr, "bench_eval: out of memory\n");
        return 1;
    }
#pragma omp parallel for num_threads(rf_threads()) schedule(static)
    for (int32_t u = 0; u < d->n_users; u++) {
        rf_rng rng;
        rf_rng_stream(&rng, 7, (uint64_t)u);
        for (int k = 0; k < DIM; k++)
            R[(size_t)u * DIM + k] = (float)rf_rng_normal(&rng);
    }
#pragma omp parallel for num_threads(rf_threads()) schedule(dynamic, 64)
    for (int32_t i = 0; i < d->n_items; i++) {
        float *v = impl.V + (size_t)i * DIM;
        for (int64_t j = d->iu->indptr[i]; j < d->iu->indptr[i + 1]; j++)
            for (int k = 0; k < DIM; k++)
                v[k] += R[(size_t)d->iu->indices[j] * DIM + k];
        double nn = 0;
        for (int k = 0; k < DIM; k++)
            nn += (double)v[k] * v[k];
        if (nn > 0)
            for (int k = 0; k < DIM; k++)
                v[k] = (float)(v[k] / sqrt(nn));
    }
    rf_free(R);
#pragma omp parallel for num_threads(rf_threads()) schedule(dynamic, 256)
    for (int32_t u = 0; u < d->n_users; u++) {
        float *uu = impl.U + (size_t)u * DIM;
        int64_t lo = d->ui->indptr[u], hi = d->ui->indptr[u + 1];
        for (int64_t j = lo; j < hi; j++)
            for (int k = 0; k < DIM; k++)
                uu[k] += impl.V[(size_t)d->ui->indices[j] * DIM + k];
        if (hi > lo)
            for (int k = 0; k < DIM; k++)
                uu[k] /= (float)(hi - lo);
    }
    rf_model m;
    memset(&m, 0, sizeof m);
    m.ops = &dot_batch_ops;
    m.impl = &impl;
    m.n_users = d->n_users;
    m.n_items = d->n_items;
    m.fitted = 1;
    printf("model             %d factors, %.1f MiB of vectors, fitted in %.1f s; RSS %.1f MiB "
           "before evaluating\n",
           DIM, rf_bench_mib((int64_t)(d->n_users + d->n_items) * DIM * 4), rf_mono() - f0,
           rf_bench_mib(rf_peak_rss()));

    rf_eval_opts o;
    rf_eval_opts_default(&o);
    o.progress = 0;
    rf_eval_result res;
    memset(&res, 0, sizeof res);
    if (timed("full ranking, sgemm blocks, all", &m, d, test, &o, runs, &res))
        return 1;
    printf("                  %d users; NDCG@10 %.4f, R@20 %.4f, AUC %.4f, Cov@10 %.4f, "
           "ILDemb@10 %.4f\n",
           res.n_users, res.value[0][RF_M_NDCG], res.value[1][RF_M_RECALL],
           res.value[0][RF_M_AUC], res.value[0][RF_M_COVERAGE], res.value[0][RF_M_ILD_EMB]);
    rf_eval_result batch = res;
    memset(&res, 0, sizeof res);
    o.auc = 0;
    if (timed("full ranking, sgemm blocks, no AUC", &m, d, test, &o, runs, &res))
        return 1;
    rf_eval_result_free(&res);
    o.auc = 1;
    m.ops = &dot_plain_ops;
    if (timed("full ranking, per-user sgemv, all", &m, d, test, &o, runs, &res))
        return 1;
    double worst = 0;
    for (int ki = 0; ki < 2; ki++)
        for (int mt = 0; mt < RF_M_COUNT; mt++) {
            double a = batch.value[ki][mt], b = res.value[ki][mt];
            double rel = fabs(a - b) / (fabs(a) > 1e-12 ? fabs(a) : 1);
            worst = rel > worst ? rel : worst;
        }
    printf("                  batched vs per-user scoring: largest relative metric difference "
           "%.2g (float sums in another order can swap near-ties)\n",
           worst);
    rf_eval_result_free(&res);
    rf_eval_result_free(&batch);
    printf("peak RSS          %.1f MiB\n", rf_bench_mib(rf_peak_rss()));
    rf_free(impl.U);
    rf_free(impl.V);
    rf_csr_free(test);
    rf_dataset_free(d);
    rf_events_free(ev);
    return 0;
}
