/* mem.c - allocation wrappers with overflow checks and failure injection. */
#include "recfuse/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_fail_after = -1;

void rf_mem_fail_after(long n) { atomic_store(&g_fail_after, n); }

/* 1 if this allocation must fail (injection armed and exhausted). */
static int should_fail(void) {
    long v = atomic_load(&g_fail_after);
    if (v < 0) return 0;
    if (v == 0) return 1;
    atomic_fetch_sub(&g_fail_after, 1);
    return 0;
}

void *rf_malloc(size_t size) {
    if (should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *rf_malloc_array(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return rf_malloc(n * size);
}

void *rf_calloc(size_t n, size_t size) {
    if (should_fail()) return NULL;
    if (size && n > SIZE_MAX / size) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *rf_realloc(void *p, size_t size) {
    if (should_fail()) return NULL;
    return realloc(p, size ? size : 1);
}

void *rf_realloc_array(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return rf_realloc(p, n * size);
}

void rf_free(void *p) { free(p); }

char *rf_strndup(const char *s, size_t n) {
    char *d = rf_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *rf_strdup(const char *s) { return rf_strndup(s, strlen(s)); }
