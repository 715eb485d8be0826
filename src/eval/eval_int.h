/* eval_int.h - pieces of src/eval shared between its files (not public).
 *
 * The evaluation JSON is built once (report.c) and reused by the HTML
 * report (html.c), so the numbers in report.html are those of
 * report.json by construction. */
#ifndef RF_EVAL_INT_H
#define RF_EVAL_INT_H

#include <jansson.h>

#include "recfuse/eval.h"
#include "recfuse/topk.h"

/* Display order of the metrics: cut at K / not cut at K; end with -1. */
extern const int rf_eval_order_at_k[];
extern const int rf_eval_order_flat[];

/* The JSON object rf_eval_write_json_sig writes (new reference, NULL on
 * out of memory). */
json_t *rf_eval_json_build(const rf_eval_result *res, int n, const rf_eval_info *info,
                           const rf_signif *sig);
/* rf_topk_select(scores, n, k, NULL, out), faster (metrics.c); cmax is
 * scratch of (n + 63) / 64 floats. */
int rf_eval_topk(const float *scores, int32_t n, int k, rf_scored *out, float *cmax);

/* Write root to path through PATH.tmp and a rename; RF_EIO. */
int rf_eval_json_dump(json_t *root, const char *path, struct rf_err *err);

#endif
