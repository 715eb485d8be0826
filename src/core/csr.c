/* csr.c - CSR construction from coordinates, transpose, lookup.
 *
 * DESIGN: rf_csr_from_coo is a two-pass stable LSD counting sort (by
 * column, then by row), so entries with the same (row, col) keep their
 * input order and RF_FOLD_LAST is well defined; cost O(n + rows + cols). */
#include "recfuse/csr.h"

#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"

void rf_csr_free(rf_csr *m) {
    if (!m) return;
    rf_free(m->indptr);
    rf_free(m->indices);
    rf_free(m->data);
    rf_free(m);
}

static int csr_alloc(int32_t nrows, int32_t ncols, int64_t nnz, rf_csr **out) {
    rf_csr *m = rf_calloc(1, sizeof *m);
    if (!m) return RF_ENOMEM;
    m->nrows = nrows;
    m->ncols = ncols;
    m->nnz = nnz;
    m->indptr = rf_calloc((size_t)nrows + 1, sizeof *m->indptr);
    m->indices = rf_malloc_array((size_t)nnz, sizeof *m->indices);
    m->data = rf_malloc_array((size_t)nnz, sizeof *m->data);
    if (!m->indptr || !m->indices || !m->data) {
        rf_csr_free(m);
        return RF_ENOMEM;
    }
    *out = m;
    return 0;
}

int rf_csr_new_empty(int32_t nrows, int32_t ncols, rf_csr **out) {
    if (nrows < 0 || ncols < 0) return RF_EINVAL;
    return csr_alloc(nrows, ncols, 0, out);
}

/* Stable counting sort of `in` (n triplet indices) by key[in[i]] in
 * [0, nkeys) into `outp`. */
static int counting_pass(int64_t n, const int64_t *in, const int32_t *key, int32_t nkeys,
                         int64_t *outp) {
    int64_t *cnt = rf_calloc((size_t)nkeys + 1, sizeof *cnt);
    if (!cnt) return RF_ENOMEM;
    for (int64_t i = 0; i < n; i++) cnt[key[in ? in[i] : i] + 1]++;
    for (int32_t k = 0; k < nkeys; k++) cnt[k + 1] += cnt[k];
    for (int64_t i = 0; i < n; i++) {
        int64_t t = in ? in[i] : i;
        outp[cnt[key[t]]++] = t;
    }
    rf_free(cnt);
    return 0;
}

int rf_csr_from_coo(int32_t nrows, int32_t ncols, int64_t n, const int32_t *rows,
                    const int32_t *cols, const float *vals, rf_fold fold, rf_csr **out,
                    int64_t **perm_out) {
    if (nrows < 0 || ncols < 0 || n < 0) return RF_EINVAL;
    for (int64_t i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= nrows || cols[i] < 0 || cols[i] >= ncols) return RF_ERANGE;
    int rc = RF_ENOMEM;
    int64_t *a = rf_malloc_array((size_t)n, sizeof *a);
    int64_t *b = rf_malloc_array((size_t)n, sizeof *b);
    rf_csr *m = NULL;
    int64_t *perm = NULL;
    if (!a || !b) goto fail;
    if ((rc = counting_pass(n, NULL, cols, ncols, a)) != 0) goto fail;
    if ((rc = counting_pass(n, a, rows, nrows, b)) != 0) goto fail;
    rf_free(a);
    a = NULL;
    /* b is sorted by (row, col), duplicates in input order. Count uniques. */
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || rows[b[i]] != rows[b[i - 1]] || cols[b[i]] != cols[b[i - 1]]) nnz++;
    rc = csr_alloc(nrows, ncols, nnz, &m);
    if (rc) goto fail;
    if (perm_out) {
        perm = rf_malloc_array((size_t)nnz, sizeof *perm);
        if (!perm) {
            rc = RF_ENOMEM;
            goto fail;
        }
    }
    int64_t o = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = b[i];
        float v = vals ? vals[t] : 1.0f;
        if (i == 0 || rows[t] != rows[b[i - 1]] || cols[t] != cols[b[i - 1]]) {
            o++;
            m->indices[o] = cols[t];
            m->data[o] = v;
            m->indptr[rows[t] + 1]++;
        } else if (fold == RF_FOLD_SUM) {
            m->data[o] += v;
        } else if (fold == RF_FOLD_MAX) {
            if (v > m->data[o]) m->data[o] = v;
        } else {
            m->data[o] = v;
        }
        if (perm) perm[o] = t;
    }
    for (int32_t r = 0; r < nrows; r++) m->indptr[r + 1] += m->indptr[r];
    rf_free(b);
    *out = m;
    if (perm_out) *perm_out = perm;
    return 0;
fail:
    rf_free(a);
    rf_free(b);
    rf_free(perm);
    rf_csr_free(m);
    return rc;
}

static int transpose_serial(const rf_csr *m, rf_csr **out) {
    rf_csr *t;
    int rc = csr_alloc(m->ncols, m->nrows, m->nnz, &t);
    if (rc) return rc;
    for (int64_t i = 0; i < m->nnz; i++) t->indptr[m->indices[i] + 1]++;
    for (int32_t c = 0; c < m->ncols; c++) t->indptr[c + 1] += t->indptr[c];
    int64_t *next = rf_malloc_array((size_t)m->ncols + 1, sizeof *next);
    if (!next) {
        rf_csr_free(t);
        return RF_ENOMEM;
    }
    memcpy(next, t->indptr, ((size_t)m->ncols + 1) * sizeof *next);
    for (int32_t r = 0; r < m->nrows; r++)
        for (int64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++) {
            int64_t q = next[m->indices[p]]++;
            t->indices[q] = r;
            t->data[q] = m->data[p];
        }
    rf_free(next);
    *out = t;
    return 0;
}

/* Transpose in parallel: each thread scatters a contiguous block of rows
 * into per-(thread, column) cursors, so columns list rows in increasing
 * order and the result equals a serial transpose. Falls back to the
 * serial transpose when the per-thread cursors would be large. */
int rf_csr_transpose(const rf_csr *m, rf_csr **out) {
    int T = rf_threads();
    if (T < 2 || m->nnz < (1 << 16) || (int64_t)T * m->ncols > (int64_t)m->nnz)
        return transpose_serial(m, out);
    rf_csr *t = NULL;
    int rc = csr_alloc(m->ncols, m->nrows, m->nnz, &t);
    if (rc) return rc;
    int64_t *cnt = rf_calloc((size_t)T * ((size_t)m->ncols + 1), sizeof *cnt);
    int32_t *row_lo = rf_malloc_array((size_t)T + 1, sizeof *row_lo);
    if (!cnt || !row_lo) {
        rf_free(cnt);
        rf_free(row_lo);
        rf_csr_free(t);
        return RF_ENOMEM;
    }
    /* Split rows so each thread gets about nnz / T entries. */
    row_lo[0] = 0;
    for (int p = 1; p < T; p++) {
        int64_t target = m->nnz / T * p;
        int32_t lo = row_lo[p - 1], hi = m->nrows;
        while (lo < hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (m->indptr[mid] < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        row_lo[p] = lo;
    }
    row_lo[T] = m->nrows;
    const int64_t nc = m->ncols;
    /* Loops over blocks, not thread ids, so a smaller team still covers
     * every block. */
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int p = 0; p < T; p++) {
        int64_t *c = cnt + (size_t)p * (size_t)(nc + 1);
        for (int64_t q = m->indptr[row_lo[p]]; q < m->indptr[row_lo[p + 1]]; q++)
            c[m->indices[q]]++;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t col = 0; col < nc; col++) {
        int64_t s = 0;
        for (int p = 0; p < T; p++) {
            int64_t *c = cnt + (size_t)p * (size_t)(nc + 1) + (size_t)col;
            int64_t v = *c;
            *c = s;
            s += v;
        }
        t->indptr[col + 1] = s;
    }
    for (int64_t col = 0; col < nc; col++) t->indptr[col + 1] += t->indptr[col];
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int p = 0; p < T; p++) {
        int64_t *c = cnt + (size_t)p * (size_t)(nc + 1);
        for (int32_t r = row_lo[p]; r < row_lo[p + 1]; r++)
            for (int64_t q = m->indptr[r]; q < m->indptr[r + 1]; q++) {
                int32_t col = m->indices[q];
                int64_t dst = t->indptr[col] + c[col]++;
                t->indices[dst] = r;
                t->data[dst] = m->data[q];
            }
    }
    rf_free(cnt);
    rf_free(row_lo);
    *out = t;
    return 0;
}

int rf_csr_clone(const rf_csr *m, rf_csr **out) {
    rf_csr *c;
    int rc = csr_alloc(m->nrows, m->ncols, m->nnz, &c);
    if (rc) return rc;
    memcpy(c->indptr, m->indptr, ((size_t)m->nrows + 1) * sizeof *c->indptr);
    memcpy(c->indices, m->indices, (size_t)m->nnz * sizeof *c->indices);
    memcpy(c->data, m->data, (size_t)m->nnz * sizeof *c->data);
    *out = c;
    return 0;
}

float rf_csr_get(const rf_csr *m, int32_t r, int32_t c) {
    int64_t lo = m->indptr[r], hi = m->indptr[r + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->indices[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->indptr[r + 1] && m->indices[lo] == c ? m->data[lo] : 0.0f;
}

int64_t rf_csr_bytes(const rf_csr *m) {
    if (!m) return 0;
    return ((int64_t)m->nrows + 1) * 8 + m->nnz * 8;
}
