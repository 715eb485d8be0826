/* mem.c - allocation wrappers with overflow checks and failure injection.
 *
 * Large blocks (HUGE_MIN and up: model tables, score matrices) are
 * advised to use transparent huge pages (madvise MADV_HUGEPAGE on their
 * 2 MB-aligned interior, before any page is touched): serving reads
 * scattered rows of tables of hundreds of MB (neighbour lists, factor
 * rows), and with 4 kB pages nearly every such row costs a TLB miss -
 * measured: the cold cost of a fused list on a 100k catalog drops by
 * about an eighth (docs/benchmarks.md). A hint only; where THP is off it
 * does nothing. */
#include "recfuse/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)

/* Advise huge pages for the whole 2 MB pages inside [p, p + size). */
static void *advise_huge(void *p, size_t size) {
#ifdef MADV_HUGEPAGE
    if (p && size >= HUGE_MIN) {
        uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        uintptr_t e = ((uintptr_t)p + size) & ~(HUGE_PAGE - 1);
        if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
#endif
    return p;
}

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
    return advise_huge(malloc(size ? size : 1), size);
}

void *rf_malloc_array(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return rf_malloc(n * size);
}

void *rf_calloc(size_t n, size_t size) {
    if (should_fail()) return NULL;
    if (size && n > SIZE_MAX / size) return NULL;
    return advise_huge(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *rf_realloc(void *p, size_t size) {
    if (should_fail()) return NULL;
    return advise_huge(realloc(p, size ? size : 1), size);
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
