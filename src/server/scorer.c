/* scorer.c - ranking for GET /v1/recommend, off the HTTP threads.
 *
 * A factor model's top k comes from the exact pruned scan of
 * rf_factors_topk_pruned (factors.h, src/models/factor_topk.c): items by
 * decreasing norm, stopping at the Cauchy-Schwarz bound - about 1.4% of a
 * 100k-item catalog per iALS user on the generated shop. Every other model
 * (the fused one among them) ranks through rf_model_recommend.
 *
 * DESIGN: the request thread (an HTTP pool thread) prepares the job -
 * history, mask, the user vector (trained row or fold-in) - then suspends
 * its connection and queues the job; scorer threads (one per core) take
 * jobs, rank, store each top-k and resume the connection, and the pool
 * thread writes the reply. Factor-model lists always go to the scorers, so
 * the HTTP threads never scan. Other models' lists go to a scorer only
 * when one is idle (srv_scorers_has_idle), else run on the HTTP thread
 * itself: with few connections the lists then spread over every core
 * whichever HTTP thread a connection landed on, and under load no list
 * pays the hand-off (suspend, wake-up, resume) for nothing. */
#include <stdlib.h>
#include <string.h>

#include "recfuse/mem.h"
#include "server/srv_int.h"

void srv_score_job(srv_sjob *q) {
    q->rc = 0;
    if (!q->m) {
        q->n_out = rf_factors_topk_pruned(q->f, q->ix, q->vec, q->mask, q->k, q->out,
                                          &q->scanned);
        return;
    }
    rf_err_clear(&q->err);
    rf_filter flt = {q->mask};
    int n = rf_model_recommend(q->m, q->user, &q->h, q->k, &flt, q->scores, q->out, &q->err);
    if (n < 0) {
        q->rc = n;
        if (!q->err.code) rf_err_set(&q->err, n, "%s", rf_strerror(n));
        n = 0;
    }
    q->n_out = n;
}

/* ---- the scorer threads ----------------------------------------------- */

static void *scorer_main(void *arg) {
    srv_scorers *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stop) {
            b->idle++;
            pthread_cond_wait(&b->cv, &b->mu);
            b->idle--;
        }
        if (!b->head) break; /* stopping and drained */
        srv_sjob *q = b->head;
        b->queued--;
        b->head = q->next;
        if (!b->head) b->tail = NULL;
        pthread_mutex_unlock(&b->mu);
        srv_score_job(q);
        if (!q->m) atomic_fetch_add(&b->jobs, 1); /* factor-model lists */
        atomic_fetch_add(&b->scanned, (uint64_t)q->scanned);
        struct MHD_Connection *conn = q->conn; /* the job may be freed once resumed */
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

int srv_scorers_has_idle(srv_scorers *b) {
    pthread_mutex_lock(&b->mu);
    int r = b->idle > b->queued;
    pthread_mutex_unlock(&b->mu);
    return r;
}

int srv_scorers_submit(srv_scorers *b, srv_sjob *job) {
    job->next = NULL;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        pthread_mutex_unlock(&b->mu);
        return RF_ESTATE;
    }
    b->queued++;
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
