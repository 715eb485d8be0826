/* csr.h - compressed sparse row matrices (CSC is the CSR of the transpose).
 *
 * Row r holds columns indices[indptr[r] .. indptr[r+1]) in increasing
 * order, each with a float value in data[]. A matrix owns its arrays. */
#ifndef RECFUSE_CSR_H
#define RECFUSE_CSR_H

#include <stdint.h>

typedef struct rf_csr {
    int32_t nrows, ncols;
    int64_t nnz;
    int64_t *indptr;  /* nrows + 1 */
    int32_t *indices; /* nnz, sorted within each row, no duplicates */
    float *data;      /* nnz */
} rf_csr;

/* How duplicate (row, col) entries fold into one. */
typedef enum rf_fold { RF_FOLD_SUM = 0, RF_FOLD_MAX = 1, RF_FOLD_LAST = 2 } rf_fold;

/* Build from n coordinate triplets. `vals` may be NULL (all 1). With
 * RF_FOLD_LAST the later triplet in input order wins. Rows/cols out of
 * range give RF_ERANGE. The sort is stable and the result deterministic.
 * Optional `perm_out`: if non-NULL, receives a newly allocated array of nnz
 * entries giving, for each output entry, the index of the input triplet
 * that came last among those folded into it (for carrying side arrays such
 * as timestamps). */
int rf_csr_from_coo(int32_t nrows, int32_t ncols, int64_t n, const int32_t *rows,
                    const int32_t *cols, const float *vals, rf_fold fold, rf_csr **out,
                    int64_t **perm_out);

/* Empty matrix with all rows empty. */
int rf_csr_new_empty(int32_t nrows, int32_t ncols, rf_csr **out);
/* Transpose (CSR -> CSC view as a new CSR): O(nnz), parallel over
 * rf_threads() for large matrices; the result is identical for any
 * thread count. */
int rf_csr_transpose(const rf_csr *m, rf_csr **out);
int rf_csr_clone(const rf_csr *m, rf_csr **out);
void rf_csr_free(rf_csr *m);

static inline int64_t rf_csr_row_len(const rf_csr *m, int32_t r) {
    return m->indptr[r + 1] - m->indptr[r];
}
/* Value at (r, c) by binary search; 0 if absent. */
float rf_csr_get(const rf_csr *m, int32_t r, int32_t c);
/* Bytes held by the arrays. */
int64_t rf_csr_bytes(const rf_csr *m);

#endif
