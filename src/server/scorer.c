/* scorer.c - ranking with factor models for GET /v1/recommend, off the HTTP
 * threads, with an exact pruned scan.
 *
 * A factor model scores item i for user vector u as u . v_i. Ranking all
 * n_items items reads the whole item matrix (51 MB for 100k items at 128
 * factors) per request. But u . v_i <= |u| |v_i| (Cauchy-Schwarz): with the
 * items visited by decreasing norm |v_i| (an order computed once per model
 * load, srv_fac_index), the scan can stop as soon as |u| |v_i| falls below
 * the k-th best score found so far - no later item can enter the top k.
 * On the generated 100k-item shop an iALS user needs about 1.4% of the
 * items on average. The bound is rigorous; a relative margin of 1e-4
 * covers float rounding of the dot products and the bound, so the result
 * is the exact top k (ties by the smaller item id, masked items skipped),
 * equal to rf_model_recommend's up to float rounding of the dot products.
 *
 * DESIGN: the request thread (an HTTP pool thread) prepares the job -
 * history, mask, the user vector (trained row or fold-in) - then suspends
 * its connection and queues the job; scorer threads (one per core) take
 * jobs, scan, store each top-k and resume the connection, and the pool
 * thread writes the reply. So HTTP threads never compute a list, and the
 * number of lists computed at once is bounded by the cores. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/mem.h"
#include "server/srv_int.h"

/* ---- the norm order of a model's items ---------------------------------- */

int srv_fac_index(const rf_factors *f, int32_t **perm, float **norms) {
    *perm = NULL;
    *norms = NULL;
    float *nv = rf_malloc_array((size_t)f->n_items + 1, sizeof *nv);
    rf_scored *t = rf_malloc_array((size_t)f->n_items + 1, sizeof *t);
    int32_t *p = rf_malloc_array((size_t)f->n_items + 1, sizeof *p);
    if (!t || !p || !nv) {
        rf_free(t);
        rf_free(p);
        rf_free(nv);
        return RF_ENOMEM;
    }
    for (int32_t i = 0; i < f->n_items; i++) {
        const float *v = f->items + (size_t)i * f->ld;
        double s = 0;
        for (int d = 0; d < f->dim; d++) s += (double)v[d] * v[d];
        nv[i] = (float)sqrt(s);
        if (!(nv[i] <= INFINITY)) nv[i] = INFINITY; /* NaN: always scan it, first */
    }
    /* all items best first: decreasing norm, ties by the smaller id */
    int n = rf_topk_select(nv, f->n_items, f->n_items, NULL, t);
    for (int32_t i = 0; i < n; i++) {
        p[i] = t[i].id;
        nv[i] = t[i].score;
    }
    rf_free(t);
    *perm = p;
    *norms = nv;
    return 0;
}

/* ---- one job ---------------------------------------------------------- */

int srv_topk_pruned(const rf_factors *f, const int32_t *perm, const float *norms,
                    const float *vec, const uint8_t *mask, int k, rf_scored *out,
                    int64_t *scanned) {
    double nu = 0;
    for (int d = 0; d < f->dim; d++) nu += (double)vec[d] * vec[d];
    nu = sqrt(nu);
    rf_topk t;
    rf_topk_init(&t, out, k);
    int64_t n = 0;
    for (int32_t p = 0; p < f->n_items; p++) {
        if (t.n == t.k) {
            double bound = nu * (double)norms[p];
            double kth = t.heap[0].score;
            /* every later item has a smaller norm: none can beat the k-th */
            if (bound * (1 + 1e-4) + 1e-12 < kth) break;
        }
        int32_t i = perm[p];
        if (mask && mask[i]) continue;
        float s = cblas_sdot(f->dim, f->items + (size_t)i * f->ld, 1, vec, 1);
        n++;
        rf_topk_push(&t, i, s);
    }
    if (scanned) *scanned = n;
    return rf_topk_finish(&t);
}

static void score_job(srv_sjob *q) {
    q->n_out = srv_topk_pruned(q->f, q->perm, q->norms, q->vec, q->mask, q->k, q->out, &q->scanned);
}

/* ---- the scorer threads ----------------------------------------------- */

static void *scorer_main(void *arg) {
    srv_scorers *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stop) pthread_cond_wait(&b->cv, &b->mu);
        if (!b->head) break; /* stopping and drained */
        srv_sjob *q = b->head;
        b->head = q->next;
        if (!b->head) b->tail = NULL;
        pthread_mutex_unlock(&b->mu);
        score_job(q);
        atomic_fetch_add(&b->jobs, 1);
        atomic_fetch_add(&b->scanned, (uint64_t)q->scanned);
        struct MHD_Connection *conn = q->conn; /* the job may be freed once resumed */
        q->rc = 0;
        atomic_store(&q->done, 1);
        if (conn) MHD_resume_connection(conn);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int srv_scorers_start(srv_scorers *b, int threads, rf_err *err) {
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->inited = 1;
    int want = threads < 1 ? 1 : threads > SRV_SCORERS_MAX ? SRV_SCORERS_MAX : threads;
    for (int t = 0; t < want; t++) {
        if (pthread_create(&b->thr[t], NULL, scorer_main, b) != 0) break;
        b->nthreads++;
    }
    if (b->nthreads == 0) {
        srv_scorers_stop(b);
        return rf_err_set(err, RF_EINVAL, "cannot start the scorer threads");
    }
    return 0;
}

int srv_scorers_submit(srv_scorers *b, srv_sjob *job) {
    job->next = NULL;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        pthread_mutex_unlock(&b->mu);
        return RF_ESTATE;
    }
    if (b->tail)
        b->tail->next = job;
    else
        b->head = job;
    b->tail = job;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void srv_scorers_stop(srv_scorers *b) {
    if (!b->inited) return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int t = 0; t < b->nthreads; t++) pthread_join(b->thr[t], NULL); /* they drain the queue */
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    b->inited = 0;
}
