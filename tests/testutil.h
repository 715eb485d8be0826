/* testutil.h - helpers shared by the cmocka tests. */
#ifndef RF_TESTUTIL_H
#define RF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh empty directory under $RF_TEST_TMP (or /tmp), unique per call.
 * Returns a malloc'd path (free()); NULL on failure. */
char *rf_test_tmpdir(const char *tag);
/* Write `text` to DIR/NAME; returns the malloc'd path (free()). */
char *rf_test_write_file(const char *dir, const char *name, const char *text);
/* Read a whole file into a malloc'd NUL-terminated string (NULL if missing). */
char *rf_test_read_file(const char *path);
/* rm -rf DIR (best effort). */
void rf_test_rmtree(const char *dir);

#endif
