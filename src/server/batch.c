/* batch.c - batched scoring of factor models for GET /v1/recommend.
 *
 * Scoring a user with a factor model reads the whole item matrix
 * (n_items x ld floats: 51 MB for 100k items at 128 factors), so one
 * request at a time is bound by memory bandwidth, not arithmetic. When
 * several requests are in flight they are scored together: one pass over
 * the item matrix serves the whole batch (an sgemm of the batch's user
 * vectors against a block of item rows, the block staying in cache), and
 * each request's top-k is taken from the block while it is hot.
 *
 * DESIGN: the request thread (an HTTP pool thread) prepares the job -
 * history, mask, the user vector (trained row or fold-in) - then suspends
 * its connection and queues the job. Scoring runs in rounds on the scorer
 * threads (one per core): scorer 0 takes up to `max_batch` of the oldest
 * queued jobs of one model, and all scorers then split the item matrix
 * between them block by block (an atomic block counter), each keeping its
 * own top-k per job; scorer 0 merges them, stores each job's list and
 * resumes its connection. So every core works on every batch, each item
 * block is read from memory once per round, and the requests that arrive
 * during a round form the next one: the busier the server, the bigger the
 * batches, while a lone request is scored at once as a batch of one.
 * Results equal rf_model_recommend's up to float rounding (sgemm sums in
 * another order): best first, ties by the smaller item id, masked items
 * skipped. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "recfuse/mem.h"
#include "server/srv_int.h"

#define BLOCK_ITEMS 2048

/* Per-scorer scratch of a round. */
typedef struct worker {
    srv_batcher *b;
    int id;
    float *C;          /* max_batch x BLOCK_ITEMS */
    rf_scored *heaps;  /* max_batch x kmax, grown as needed */
    size_t heaps_cap;
    rf_topk tk[SRV_BATCH_MAX];
} worker;

/* This scorer's share of the round: item blocks taken from the shared
 * counter, in increasing order. */
static void work(srv_batcher *b, worker *w) {
    const rf_factors *f = b->f;
    const int n = b->n, ld = f->ld;
    for (int j = 0; j < n; j++)
        rf_topk_init(&w->tk[j], w->heaps + (size_t)j * (size_t)b->kmax, b->jobs_now[j]->k);
    for (;;) {
        int64_t blk = atomic_fetch_add(&b->next_block, 1);
        int64_t i0 = blk * BLOCK_ITEMS;
        if (i0 >= f->n_items) break;
        int nb = f->n_items - i0 < BLOCK_ITEMS ? (int)(f->n_items - i0) : BLOCK_ITEMS;
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nb, ld, 1.0f, f->items + (size_t)i0 * ld, ld,
                        b->U, 1, 0.0f, w->C, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nb, ld, 1.0f, b->U, ld,
                        f->items + (size_t)i0 * ld, ld, 0.0f, w->C, nb);
        for (int j = 0; j < n; j++) {
            rf_topk *t = &w->tk[j];
            const uint8_t *mask = b->jobs_now[j]->mask + i0;
            const float *c = w->C + (size_t)j * nb;
            for (int x = 0; x < nb; x++) {
                float s = c[x];
                /* A scorer sees ids in increasing order, so once its heap
                 * is full an equal score loses the tie: skip it cheaply. */
                if (mask[x] || (t->n == t->k && !(s > t->heap[0].score))) continue;
                rf_topk_push(t, (int32_t)(i0 + x), s);
            }
        }
    }
}

static void *scorer_main(void *arg) {
    worker *w = arg;
    srv_batcher *b = w->b;
    uint64_t seen = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (w->id > 0) { /* helper: wait for a round, do a share */
            /* exit only after scorer 0 has drained the queue (stop 2) */
            while (b->round == seen && b->stop < 2) pthread_cond_wait(&b->cv, &b->mu);
            if (b->round == seen) break;
            seen = b->round;
            pthread_mutex_unlock(&b->mu);
            work(b, w);
            pthread_mutex_lock(&b->mu);
            if (--b->pending == 0) pthread_cond_broadcast(&b->done_cv);
            continue;
        }
        /* scorer 0: form a round */
        while (!b->head && !b->stop) pthread_cond_wait(&b->cv, &b->mu);
        if (!b->head) break;
        int n = 0, kmax = 1;
        const rf_factors *f = b->head->f;
        srv_bjob **pp = &b->head;
        while (*pp && n < b->max_batch) {
            srv_bjob *q = *pp;
            if (q->f->items == f->items) {
                b->jobs_now[n++] = q;
                kmax = q->k > kmax ? q->k : kmax;
                *pp = q->next;
            } else {
                pp = &q->next;
            }
        }
        b->tail = NULL;
        for (srv_bjob *q = b->head; q; q = q->next) b->tail = q;
        int rc = 0;
        /* Scratch for this round (heaps sized to the largest k). */
        size_t need = (size_t)b->max_batch * (size_t)kmax;
        for (int t = 0; t < b->nthreads && rc == 0; t++) {
            worker *x = &b->workers[t];
            if (x->heaps_cap < need) {
                rf_scored *h = rf_realloc_array(x->heaps, need, sizeof *h);
                if (!h) rc = RF_ENOMEM;
                else {
                    x->heaps = h;
                    x->heaps_cap = need;
                }
            }
        }
        if (rc == 0) {
            for (int j = 0; j < n; j++)
                memcpy(b->U + (size_t)j * f->ld, b->jobs_now[j]->vec, (size_t)f->ld * sizeof *b->U);
            b->f = f;
            b->n = n;
            b->kmax = kmax;
            atomic_store(&b->next_block, 0);
            b->pending = b->nthreads - 1;
            b->round++;
            pthread_cond_broadcast(&b->cv);
            pthread_mutex_unlock(&b->mu);
            work(b, w);
            pthread_mutex_lock(&b->mu);
            while (b->pending > 0) pthread_cond_wait(&b->done_cv, &b->mu);
            /* merge the scorers' heaps into each job's list */
            for (int j = 0; j < n; j++) {
                srv_bjob *q = b->jobs_now[j];
                rf_topk t;
                rf_topk_init(&t, q->out, q->k);
                for (int th = 0; th < b->nthreads; th++) {
                    const rf_topk *p = &b->workers[th].tk[j];
                    for (int e = 0; e < p->n; e++) rf_topk_push(&t, p->heap[e].id, p->heap[e].score);
                }
                q->n_out = rf_topk_finish(&t);
            }
        }
        atomic_fetch_add(&b->batches, 1);
        atomic_fetch_add(&b->jobs, (uint64_t)n);
        for (int j = 0; j < n; j++) {
            srv_bjob *q = b->jobs_now[j];
            struct MHD_Connection *conn = q->conn; /* the job may be freed once resumed */
            q->rc = rc;
            atomic_store(&q->done, 1);
            if (conn) MHD_resume_connection(conn);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int srv_batcher_start(srv_batcher *b, int threads, int max_batch, rf_err *err) {
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_cond_init(&b->done_cv, NULL);
    b->inited = 1;
    b->max_batch = max_batch < 1 ? 1 : max_batch > SRV_BATCH_MAX ? SRV_BATCH_MAX : max_batch;
    int want = threads < 1 ? 1 : threads > SRV_SCORERS_MAX ? SRV_SCORERS_MAX : threads;
    b->U = rf_malloc_array((size_t)b->max_batch * 1040, sizeof *b->U);
    b->workers = rf_calloc((size_t)want, sizeof *b->workers);
    if (b->workers) b->nworkers = want;
    if (!b->U || !b->workers) {
        srv_batcher_stop(b);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    for (int t = 0; t < want; t++) {
        worker *w = &b->workers[t];
        w->b = b;
        w->id = t;
        w->C = rf_malloc_array((size_t)b->max_batch * BLOCK_ITEMS, sizeof *w->C);
        if (!w->C) {
            srv_batcher_stop(b);
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        }
    }
    /* Helpers first, so scorer 0 never waits for one that does not exist. */
    b->nthreads = want;
    for (int t = 0; t < want; t++)
        if (pthread_create(&b->thr[t], NULL, scorer_main, &b->workers[t]) != 0) {
            b->nthreads = t;
            if (t == 0) {
                srv_batcher_stop(b);
                return rf_err_set(err, RF_EINVAL, "cannot start the scorer threads");
            }
            break; /* fewer helpers: the round still completes (pending counts them) */
        }
    b->started = b->nthreads;
    return 0;
}

int srv_batcher_submit(srv_batcher *b, srv_bjob *job) {
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
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void srv_batcher_stop(srv_batcher *b) {
    if (!b->inited) return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    /* Scorer 0 drains the queue before it exits; helpers exit after. */
    if (b->started > 0) pthread_join(b->thr[0], NULL);
    pthread_mutex_lock(&b->mu);
    b->stop = 2;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int t = 1; t < b->started; t++) pthread_join(b->thr[t], NULL);
    if (b->workers)
        for (int t = 0; t < b->nworkers; t++) {
            rf_free(b->workers[t].C);
            rf_free(b->workers[t].heaps);
        }
    rf_free(b->workers);
    rf_free(b->U);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    pthread_cond_destroy(&b->done_cv);
    b->inited = 0;
}
