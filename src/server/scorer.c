/* scorer.c - ranking one list for GET /v1/recommend.
 *
 * A factor model's top k comes from the exact pruned scan of
 * rf_factors_topk_pruned (factors.h, src/models/factor_topk.c): items by
 * decreasing norm, stopping at the Cauchy-Schwarz bound - about 1.4% of a
 * 100k-item catalog per iALS user on the generated shop. Every other model
 * (the fused one among them) ranks through rf_model_recommend.
 *
 * DESIGN: the list is ranked on the thread that read the request (one of
 * the server's event loops, server.c), never handed to another thread: on
 * a small virtual machine waking a sleeping thread on the other core and
 * waking the loop again for the reply cost about 0.3 ms per list, more
 * than a typical fused list takes to rank. */
#include "server/srv_int.h"

void srv_score_job(srv_sjob *q) {
    q->rc = 0;
    if (!q->m) {
        q->n_out = rf_factors_topk_pruned(q->f, q->ix, q->vec, q->mask, q->k, q->out,
                                          &q->scanned);
        return;
    }
    rf_err_clear(&q->err);
    rf_filter flt = {.exclude = q->mask};
    int n = rf_model_recommend(q->m, q->user, &q->h, q->k, &flt, q->scores, q->out, &q->err);
    if (n < 0) {
        q->rc = n;
        if (!q->err.code) rf_err_set(&q->err, n, "%s", rf_strerror(n));
        n = 0;
    }
    q->n_out = n;
}
