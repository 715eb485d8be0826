/* sparse.c - the sparse score accumulator (sparse.h). */
#include "recfuse/sparse.h"

#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"

int rf_sparse_init(rf_sparse *s, int32_t n_items) {
    memset(s, 0, sizeof *s);
    size_t n = (size_t)(n_items > 0 ? n_items : 1);
    s->val = rf_calloc(n, sizeof *s->val);
    s->bits = rf_calloc((n + 63) / 64, sizeof *s->bits);
    s->touched = rf_malloc_array(n, sizeof *s->touched);
    if (!s->val || !s->bits || !s->touched) {
        rf_sparse_free(s);
        return RF_ENOMEM;
    }
    s->n_items = n_items;
    return 0;
}

void rf_sparse_free(rf_sparse *s) {
    rf_free(s->val);
    rf_free(s->bits);
    rf_free(s->touched);
    memset(s, 0, sizeof *s);
}

void rf_sparse_clear(rf_sparse *s) {
    for (int32_t t = 0; t < s->n; t++) {
        int32_t j = s->touched[t];
        s->val[j] = 0;
        s->bits[j >> 6] = 0;
    }
    s->n = 0;
}
