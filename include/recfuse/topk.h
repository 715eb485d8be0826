/* topk.h - bounded top-k selection with a min-heap.
 *
 * Ties are broken by the smaller id, so results are deterministic. The
 * caller owns the buffer (k entries). */
#ifndef RECFUSE_TOPK_H
#define RECFUSE_TOPK_H

#include <stdint.h>

typedef struct rf_scored {
    float score;
    int32_t id;
} rf_scored;

typedef struct rf_topk {
    int k, n;
    rf_scored *heap; /* caller-provided, k entries */
} rf_topk;

void rf_topk_init(rf_topk *t, rf_scored *buf, int k);
/* 1 if offering (id, score) could change t: t has room, or the entry
 * beats the worst kept one (a NaN never does once t is full). */
static inline int rf_topk_enters(const rf_topk *t, int32_t id, float score) {
    if (t->n < t->k) return 1;
    if (t->k == 0) return 0;
    return score > t->heap[0].score || (score == t->heap[0].score && id < t->heap[0].id);
}
/* The heap insertion behind rf_topk_push. */
void rf_topk_insert(rf_topk *t, int32_t id, float score);
/* Offer (id, score). NaN scores are ignored. Inline: an entry that cannot
 * enter a full t (the common case in a scan) costs one comparison. */
static inline void rf_topk_push(rf_topk *t, int32_t id, float score) {
    if (rf_topk_enters(t, id, score)) rf_topk_insert(t, id, score);
}
/* Sort the kept entries best first (score desc, id asc) in place; returns n. */
int rf_topk_finish(rf_topk *t);

/* Best k of scores[0..n) skipping ids with exclude[id] != 0 (exclude may
 * be NULL) and scores equal to -INFINITY. Writes best first to out (k
 * entries) and returns how many were written. */
int rf_topk_select(const float *scores, int32_t n, int k, const uint8_t *exclude,
                   rf_scored *out);

#endif
