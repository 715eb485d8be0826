/* writer.c - the group-commit event writer.
 *
 * POST /v1/events hands its parsed events to this thread and suspends the
 * connection. The writer takes every batch queued at that moment, appends
 * them all in ONE store transaction (synchronous=FULL: one fsync for the
 * group), then applies them to the live state (users to fold in, live
 * popularity/trending, co-occurrence), and only then marks each batch done
 * and resumes its connection - so a 200 means durable and already visible
 * to the next read. While one group commits, new posts queue up and form
 * the next group: the busier the server, the bigger the groups.
 *
 * After a snapshot is published the writer first rebuilds the live
 * counters from the store (srv_live_replay), before the next group.
 *
 * Shutdown: srv_writer_stop lets the thread drain the queue before it
 * exits; a batch submitted after that is refused (RF_ESTATE -> 503). */
#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/util.h"
#include "server/srv_int.h"

struct srv_writer {
    rf_server *s;
    rf_store *st;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_batch *head, *tail;
    int64_t queued;
    int stop, started;
};

void srv_batch_free(srv_batch *b) {
    if (!b) return;
    rf_free(b->ev);
    rf_free(b->strings);
    rf_free(b);
}

void srv_live_apply(rf_server *s, const srv_batch *b, const uint8_t *flags) {
    srv_snap *sn = srv_snap_acquire(s);
    srv_live *L = &s->live;
    int64_t now = rf_now();
    pthread_rwlock_wrlock(&L->lock);
    for (int64_t i = 0; i < b->n; i++)
        if (srv_live_count(L, sn, &b->ev[i], (flags[i] & RF_APPEND_NEW_PAIR) != 0, SRV_COUNT_ALL,
                           now)) {
            rf_log(RF_LOG_WARN, "serve.live", "msg=\"out of memory applying events\"");
            break;
        }
    atomic_fetch_add(&L->gen, 1);
    pthread_rwlock_unlock(&L->lock);
    srv_snap_release(sn);
}

/* Commit one group: every batch in the list, one transaction. */
static void commit_group(srv_writer *w, srv_batch *list) {
    int64_t n = 0;
    for (srv_batch *b = list; b; b = b->next) n += b->n;
    rf_event_in *all = rf_malloc_array((size_t)(n ? n : 1), sizeof *all);
    uint8_t *flags = rf_malloc((size_t)(n ? n : 1));
    rf_err err;
    rf_err_clear(&err);
    int rc = 0;
    if (!all || !flags) {
        rc = rf_err_set(&err, RF_ENOMEM, "out of memory");
    } else {
        int64_t k = 0;
        for (srv_batch *b = list; b; b = b->next) {
            memcpy(all + k, b->ev, (size_t)b->n * sizeof *all);
            k += b->n;
        }
        rc = rf_store_append_events(w->st, all, n, flags, &err);
    }
    if (rc == 0) {
        atomic_fetch_add(&w->s->metrics.commits, 1);
        int64_t k = 0;
        for (srv_batch *b = list; b; b = b->next) {
            srv_live_apply(w->s, b, flags + k);
            for (int64_t i = 0; i < b->n; i++) {
                if (flags[k + i] & RF_APPEND_ADDED)
                    b->added++;
                else
                    b->dups++;
            }
            k += b->n;
            atomic_fetch_add(&w->s->metrics.events_ingested, (uint64_t)b->added);
            atomic_fetch_add(&w->s->metrics.events_duplicate, (uint64_t)b->dups);
        }
    } else {
        rf_log(RF_LOG_ERROR, "serve.commit", "events=%lld msg=\"%s\"", (long long)n, err.msg);
    }
    rf_free(all);
    rf_free(flags);
    for (srv_batch *b = list, *next; b; b = next) {
        next = b->next; /* b may be freed once its connection resumes */
        b->rc = rc;
        if (rc) snprintf(b->msg, sizeof b->msg, "%s", err.msg);
        struct MHD_Connection *conn = b->conn;
        atomic_store(&b->done, 1);
        if (conn) MHD_resume_connection(conn);
    }
}

static void *writer_main(void *arg) {
    srv_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop && !atomic_load(&w->s->replay_pending))
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->stop && atomic_exchange(&w->s->replay_pending, 0)) {
            pthread_mutex_unlock(&w->mu);
            rf_err err;
            rf_err_clear(&err);
            int64_t n;
            if (srv_live_replay(w->s, w->st, &n, &err))
                rf_log(RF_LOG_ERROR, "serve.replay", "msg=\"%s\"", err.msg);
            atomic_fetch_add(&w->s->metrics.events_replayed, (uint64_t)n);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (!w->head) break;
        srv_batch *list = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        int64_t nb = 0;
        for (srv_batch *b = list; b; b = b->next) nb++;
        commit_group(w, list);
        pthread_mutex_lock(&w->mu);
        w->queued -= nb;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int srv_writer_start(rf_server *s, srv_writer **out, rf_err *err) {
    *out = NULL;
    srv_writer *w = rf_calloc(1, sizeof *w);
    if (!w) return rf_err_set(err, RF_ENOMEM, "out of memory");
    w->s = s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = rf_store_open(s->cfg.data_dir, 0, &w->st, err);
    if (rc) {
        srv_writer_stop(w);
        return rc;
    }
    /* The one writer: map the file for its b-tree reads, a larger page
     * cache, and checkpoints every ~40 MB of WAL instead of every 4 MB
     * (fewer, larger checkpoints inside the group commits). */
    sqlite3_exec(rf_store_db(w->st),
                 "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-262144;"
                 " PRAGMA wal_autocheckpoint=10000",
                 NULL, NULL, NULL);
    if (pthread_create(&w->thr, NULL, writer_main, w) != 0) {
        srv_writer_stop(w);
        return rf_err_set(err, RF_EINVAL, "cannot start the event writer thread");
    }
    w->started = 1;
    *out = w;
    return 0;
}

int srv_writer_submit(srv_writer *w, srv_batch *b) {
    pthread_mutex_lock(&w->mu);
    if (w->stop) {
        pthread_mutex_unlock(&w->mu);
        return RF_ESTATE;
    }
    b->next = NULL;
    if (w->tail)
        w->tail->next = b;
    else
        w->head = b;
    w->tail = b;
    w->queued++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void srv_writer_poke(srv_writer *w) {
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int64_t srv_writer_queued(srv_writer *w) {
    pthread_mutex_lock(&w->mu);
    int64_t n = w->queued;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void srv_writer_stop(srv_writer *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started) pthread_join(w->thr, NULL);
    rf_store_close(w->st);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    rf_free(w);
}
