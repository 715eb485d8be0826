/* testutil.h - helpers shared by the cmocka tests. */
#ifndef RF_TESTUTIL_H
#define RF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

struct rf_dataset;
struct rf_events;
struct rf_idmap;

/* A new empty event log whose items "i0" .. "i<ni-1>" are registered in
 * that order (so item "iN" has dense id N). Fails the test on error. */
struct rf_events *rf_test_events_items(int32_t ni);

/* A dataset built by hand (owns its matrices and id maps): users named
 * "<uprefix><uname[u]>" (uname NULL: u), items "<iprefix><iname[i]>", in
 * dense-id order; pairs (r[t], c[t]) in dense ids with weights v (NULL:
 * 1), summed when repeated; ts_base = ts_max = 1000, every ui_ts 0. */
typedef struct rf_test_ds {
    struct rf_dataset *d;
    struct rf_idmap *users, *items;
} rf_test_ds;
rf_test_ds *rf_test_ds_new(int32_t nu, const char *uprefix, const int32_t *uname, int32_t ni,
                           const char *iprefix, const int32_t *iname, int64_t n, const int32_t *r,
                           const int32_t *c, const float *v);
void rf_test_ds_free(rf_test_ds *t); /* NULL is a no-op */

/* Fault injection over a whole model life: every allocation of fit (model
 * NAME with PARAMS on d), of scoring a fold-in history {1, 2} and of load
 * may fail; each failure must be RF_ENOMEM with nothing fitted or loaded
 * (the ASan build checks for leaks), and the model fitted and loaded once
 * allocations succeed scores exactly as the first one. tag names the temp
 * directory. d needs at least 3 items. */
void rf_test_model_alloc_failures(const struct rf_dataset *d, const char *name, const char *params,
                                  const char *tag);

/* A model's sparse scores (score_sparse, model.h) against its score_all
 * for (user, h): every item the accumulator marks must hold score_all's
 * float bit for bit, every other item must score exactly the fallback
 * (score_all for user -1 and an empty history), the touched list must
 * list each marked item once; afterwards acc is cleared and checked all
 * zero. acc: clear, m->n_items items. Returns how many items were touched
 * (what the history reached). */
struct rf_model;
struct rf_hist;
struct rf_sparse;
int32_t rf_test_check_sparse(const struct rf_model *m, struct rf_sparse *acc, int32_t user,
                             const struct rf_hist *h);

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
