/* mem.h - the one place recfuse allocates through.
 *
 * Every library allocation goes through rf_malloc/rf_calloc/rf_realloc so
 * that tests can make the Nth allocation fail (rf_mem_fail_after) and check
 * every error path. rf_free(NULL) is a no-op. Sizes are checked for
 * overflow by rf_malloc_array/rf_calloc. */
#ifndef RECFUSE_MEM_H
#define RECFUSE_MEM_H

#include <stddef.h>

void *rf_malloc(size_t size);
void *rf_malloc_array(size_t n, size_t size); /* NULL on n*size overflow */
void *rf_calloc(size_t n, size_t size);
void *rf_realloc(void *p, size_t size);
void *rf_realloc_array(void *p, size_t n, size_t size);
void rf_free(void *p);
char *rf_strdup(const char *s);
char *rf_strndup(const char *s, size_t n);

/* Testing: the next `n` allocations succeed, then every one fails until
 * rf_mem_fail_after(-1) turns failure injection off. */
void rf_mem_fail_after(long n);

#endif
