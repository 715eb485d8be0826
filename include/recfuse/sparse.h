/* sparse.h - a sparse score accumulator over a catalog: a dense value
 * array that stays zero except at the items a request touched, the list
 * of those items, and their flags.
 *
 * Scoring models whose scores come from what a user's history reaches
 * (itemknn, userknn, rules: model.h's score_sparse op) add into one, and
 * the caller reads the touched items; clearing walks the touched list, so
 * one accumulator serves request after request at the cost of what each
 * request touched - no O(catalog) memset. Not thread-safe: one per thread
 * (or per concurrent request). */
#ifndef RECFUSE_SPARSE_H
#define RECFUSE_SPARSE_H

#include <stdint.h>

typedef struct rf_sparse {
    int32_t n_items;  /* item ids are in [0, n_items) */
    int32_t n;        /* touched items */
    float *val;       /* n_items; 0 except at touched items */
    uint64_t *bits;   /* n_items bits; set exactly at touched items (a bit
                         array, so the test stays in L1 on a large catalog) */
    int32_t *touched; /* the n touched items, in first-touch order */
} rf_sparse;

/* A clear accumulator for n_items items. RF_ENOMEM (s then holds nothing
 * to free). */
int rf_sparse_init(rf_sparse *s, int32_t n_items);
/* Free the arrays; a zeroed or freed s is a no-op. */
void rf_sparse_free(rf_sparse *s);
/* Back to all zero, unmarked, at the cost of the touched items. */
void rf_sparse_clear(rf_sparse *s);

/* 1 if item j (in range) was touched. */
static inline int rf_sparse_has(const rf_sparse *s, int32_t j) {
    return (int)(s->bits[j >> 6] >> (j & 63)) & 1;
}

/* The value slot of item j (in range), marking j touched on first use. */
static inline float *rf_sparse_at(rf_sparse *s, int32_t j) {
    uint64_t b = (uint64_t)1 << (j & 63);
    if (!(s->bits[j >> 6] & b)) {
        s->bits[j >> 6] |= b;
        s->touched[s->n++] = j;
    }
    return &s->val[j];
}

#endif
