/* topk.c - bounded top-k with a min-heap (worst kept entry at the root). */
#include "recfuse/topk.h"

#include <math.h>
#include <stdlib.h>

/* 1 if a ranks strictly worse than b (lower score, or equal score and larger id). */
static inline int worse(rf_scored a, rf_scored b) {
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

void rf_topk_init(rf_topk *t, rf_scored *buf, int k) {
    t->k = k > 0 ? k : 0;
    t->n = 0;
    t->heap = buf;
}

static void sift_down(rf_scored *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(h[l], h[w])) w = l;
        if (r < n && worse(h[r], h[w])) w = r;
        if (w == i) return;
        rf_scored tmp = h[i];
        h[i] = h[w];
        h[w] = tmp;
        i = w;
    }
}

void rf_topk_insert(rf_topk *t, int32_t id, float score) {
    if (t->k == 0 || isnan(score)) return;
    rf_scored s = {score, id};
    if (t->n < t->k) {
        int i = t->n++;
        t->heap[i] = s;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!worse(t->heap[i], t->heap[p])) break;
            rf_scored tmp = t->heap[i];
            t->heap[i] = t->heap[p];
            t->heap[p] = tmp;
            i = p;
        }
        return;
    }
    if (!worse(t->heap[0], s)) return;
    t->heap[0] = s;
    sift_down(t->heap, t->n, 0);
}

static int cmp_best_first(const void *pa, const void *pb) {
    const rf_scored *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

int rf_topk_finish(rf_topk *t) {
    qsort(t->heap, (size_t)t->n, sizeof *t->heap, cmp_best_first);
    return t->n;
}

int rf_topk_select(const float *scores, int32_t n, int k, const uint8_t *exclude,
                   rf_scored *out) {
    rf_topk t;
    rf_topk_init(&t, out, k);
    if (k <= 0) return 0;
    for (int32_t i = 0; i < n; i++) {
        float s = scores[i];
        if ((exclude && exclude[i]) || s == -INFINITY) continue;
        if (t.n == t.k && !(s > t.heap[0].score)) continue; /* fast reject (ids ascend) */
        rf_topk_push(&t, i, s);
    }
    return rf_topk_finish(&t);
}
