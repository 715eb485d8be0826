/* parallel.h - OpenMP helpers.
 *
 * rf_threads() is the thread count every parallel loop uses
 * (`#pragma omp parallel for num_threads(rf_threads())`). It defaults to
 * the number of online CPUs, or RECFUSE_THREADS from the environment. */
#ifndef RECFUSE_PARALLEL_H
#define RECFUSE_PARALLEL_H

#include <stdint.h>

int rf_threads(void);
void rf_set_threads(int n); /* n <= 0 restores the default */
int rf_thread_id(void);     /* 0 outside a parallel region */

/* Split [0, n) into `parts` contiguous chunks: chunk p is [lo, hi). */
void rf_chunk(int64_t n, int parts, int p, int64_t *lo, int64_t *hi);

#endif
