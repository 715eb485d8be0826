/* scratch.c - per-request scratch of the fused model, pooled per model.
 *
 * A fused request needs a few megabytes of scratch on a large catalog: a
 * score row per channel (only the union's entries are written on the
 * sparse and pruned paths), the sparse channels' accumulators, the
 * candidates' feature rows. Allocating them per request costs more than
 * the request (fresh pages fault in, and the accumulators would have to
 * start zeroed), so the model keeps up to POOL_MAX idle scratches in a
 * small stack behind a mutex and hands them out per request. The
 * accumulators come back clear-able at the cost of what the last request
 * touched (sparse.h), so reuse is O(request), never O(catalog).
 *
 * DESIGN: the model stays immutable for its readers - the pool is private
 * state of its own, guarded by its own lock, holding nothing a result
 * depends on; any number of threads may score at once (a thread that
 * finds the pool empty allocates its own scratch). */
#include <pthread.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"

#define POOL_MAX 16

typedef struct fu_pool {
    pthread_mutex_t lock;
    int n;
    fu_scratch *idle[POOL_MAX];
    int64_t lists[2]; /* recommend lists from the candidates / full vector */
} fu_pool;

static void scratch_free(fu_scratch *w) {
    if (!w) return;
    fu_cands_free(&w->c);
    rf_free(w->x);
    rf_free(w->s);
    rf_free(w->all);
    rf_free(w);
}

static fu_scratch *scratch_new(const fu_impl *f, int32_t n_items) {
    fu_scratch *w = rf_calloc(1, sizeof *w);
    if (!w) return NULL;
    if (fu_cands_init(&w->c, f, n_items)) {
        rf_free(w);
        return NULL;
    }
    w->x = rf_malloc_array((size_t)w->c.cap * (size_t)fu_n_feats(f), sizeof *w->x);
    w->s = rf_malloc_array((size_t)w->c.cap, sizeof *w->s);
    if (!w->x || !w->s) {
        scratch_free(w);
        return NULL;
    }
    return w;
}

fu_scratch *fu_scratch_get(const fu_impl *f, int32_t n_items) {
    fu_pool *p = f->pool;
    fu_scratch *w = NULL;
    if (p) {
        pthread_mutex_lock(&p->lock);
        if (p->n > 0) w = p->idle[--p->n];
        pthread_mutex_unlock(&p->lock);
    }
    if (!w || w->c.n_items != n_items) {
        scratch_free(w);
        w = scratch_new(f, n_items);
    }
    if (w) w->list = -1;
    return w;
}

int fu_scratch_reserve(const fu_impl *f, fu_scratch *w, int32_t cap) {
    if (cap <= w->c.cap) return 0;
    /* the rows first: a failure leaves them larger than c.cap, never smaller */
    float *x = rf_realloc_array(w->x, (size_t)cap * (size_t)fu_n_feats(f), sizeof *x);
    if (!x) return RF_ENOMEM;
    w->x = x;
    float *s = rf_realloc_array(w->s, (size_t)cap, sizeof *s);
    if (!s) return RF_ENOMEM;
    w->s = s;
    return fu_cands_reserve(&w->c, cap);
}

void fu_pool_stats(const fu_impl *f, int64_t *from_cands, int64_t *from_full) {
    fu_pool *p = f->pool;
    *from_cands = *from_full = 0;
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    *from_cands = p->lists[0];
    *from_full = p->lists[1];
    pthread_mutex_unlock(&p->lock);
}

void fu_scratch_put(const fu_impl *f, fu_scratch *w) {
    if (!w) return;
    fu_pool *p = f->pool;
    if (p) {
        pthread_mutex_lock(&p->lock);
        if (w->list >= 0) p->lists[w->list]++;
        w->list = -1;
        if (p->n < POOL_MAX) {
            p->idle[p->n++] = w;
            w = NULL;
        }
        pthread_mutex_unlock(&p->lock);
    }
    scratch_free(w);
}

int fu_pool_new(fu_impl *f) {
    fu_pool *p = rf_calloc(1, sizeof *p);
    if (!p) return RF_ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL)) {
        rf_free(p);
        return RF_ENOMEM;
    }
    f->pool = p;
    return 0;
}

void fu_pool_free(fu_impl *f) {
    fu_pool *p = f->pool;
    if (!p) return;
    for (int i = 0; i < p->n; i++) scratch_free(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    rf_free(p);
    f->pool = NULL;
}
