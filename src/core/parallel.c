/* parallel.c - the thread count every OpenMP loop uses. */
#include "recfuse/parallel.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

static int g_threads = 0; /* 0: not yet decided */

static int default_threads(void) {
    const char *env = getenv("RECFUSE_THREADS");
    if (env) {
        int n = atoi(env);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int rf_threads(void) {
    int t = g_threads;
    if (t <= 0) {
        t = default_threads();
        g_threads = t;
    }
    return t;
}

void rf_set_threads(int n) { g_threads = n > 0 ? n : default_threads(); }

int rf_thread_id(void) { return omp_get_thread_num(); }

void rf_chunk(int64_t n, int parts, int p, int64_t *lo, int64_t *hi) {
    if (parts < 1) parts = 1;
    int64_t base = n / parts, rem = n % parts;
    *lo = p * base + (p < rem ? p : rem);
    *hi = *lo + base + (p < rem ? 1 : 0);
}
