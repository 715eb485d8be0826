/* svdpp.c - SVD++ for explicit ratings ("svdpp", Koren 2008).
 *
 *   r^(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)
 *
 * N(u) is the set of items u rated in training (the implicit feedback of
 * "who rated what"); y_j are a second set of item factors. Fit by SGD on
 * the squared error with L2 regularisation (reg on p and q, reg_y on y,
 * reg_bias on the biases; loss in models/sgd.h); epoch e uses
 * lr * lr_decay^e; factors start from N(0, init_std^2), seeded. `implicit`
 * adds mf's co-trained BPR term on p_u and q (see mf.c): 0.900 -> 0.889
 * RMSE on ML-100K.
 *
 * DESIGN: a plain SGD step on one rating moves every y_j of the user, so a
 * naive epoch costs O(sum_u |R(u)| |N(u)| f). Ratings are instead visited
 * user by user (users in a fresh seeded order each epoch, each user's
 * ratings shuffled), and rf_svdpp_user_pass applies a user's steps exactly
 * - the implicit sum is updated in O(f) per rating and each y_j is an
 * affine function of its start value, applied once at the end - so an
 * epoch costs O(nnz f), the same as mf. Training is serial: the same bits
 * for every thread count. After the last epoch the implicit sum of each
 * training user is added into P[u], so predicting a known user is one dot
 * product; Y stays in the model to fold in users who arrive later.
 * Data options, prediction and the model file as for mf (sgd_rating.c). */
#include <math.h>
#include <stddef.h>

#include "models/sgd.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"

static const rf_param_def svdpp_defs[] = {
    {"factors", RF_P_INT, offsetof(rf_rating_params, factors), 50, 1, 1000, NULL,
     "latent factors per user and item"},
    {"epochs", RF_P_INT, offsetof(rf_rating_params, epochs), 100, 1, 100000, NULL,
     "passes over the ratings"},
    {"lr", RF_P_DOUBLE, offsetof(rf_rating_params, lr), 0.007, 1e-7, 1, NULL,
     "SGD learning rate of the first epoch"},
    {"lr_decay", RF_P_DOUBLE, offsetof(rf_rating_params, lr_decay), 0.98, 0.5, 1, NULL,
     "learning rate multiplier per epoch"},
    {"reg", RF_P_DOUBLE, offsetof(rf_rating_params, reg), 0.1, 0, 10, NULL,
     "L2 regularisation of the user and item factors (per rating)"},
    {"reg_y", RF_P_DOUBLE, offsetof(rf_rating_params, reg_y), 0.008, 0, 10, NULL,
     "L2 regularisation of the implicit item factors y (per rating)"},
    {"reg_bias", RF_P_DOUBLE, offsetof(rf_rating_params, reg_bias), 0.05, 0, 10, NULL,
     "L2 regularisation of the user and item biases (per rating)"},
    {"implicit", RF_P_DOUBLE, offsetof(rf_rating_params, implicit), 1.0, 0, 100, NULL,
     "weight of the co-trained BPR loss on which items each user rated (0: plain SVD++)"},
    {"init_std", RF_P_DOUBLE, offsetof(rf_rating_params, init_std), 0.05, 0, 10, NULL,
     "standard deviation of the initial factors"},
    {"seed", RF_P_INT, offsetof(rf_rating_params, seed), 42, 0, 2147483647, NULL,
     "random seed (initialisation and rating order)"},
    {0},
};

static int svdpp_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const rf_rating_params *pp = m->params;
    rf_rating_impl *p = m->impl;
    double mu;
    float lo, hi;
    int rc = rf_rating_check_data(m, d, &mu, &lo, &hi, err);
    if (rc) return rc;
    const int f = pp->factors;
    if ((rc = rf_rating_alloc(m, f, 1, err))) return rc;
    p->mu = (float)mu;
    p->rmin = lo;
    p->rmax = hi;
    const uint64_t seed = (uint64_t)pp->seed;
    rf_rating_init_normal(p->P, (int64_t)m->n_users * f, pp->init_std, seed, 1);
    rf_rating_init_normal(p->Q, (int64_t)m->n_items * f, pp->init_std, seed, 2);
    rf_rating_init_normal(p->Y, (int64_t)m->n_items * f, pp->init_std, seed, 3);

    const rf_csr *ui = d->ui;
    int64_t maxrow = 0;
    for (int32_t u = 0; u < ui->nrows; u++)
        if (rf_csr_row_len(ui, u) > maxrow) maxrow = rf_csr_row_len(ui, u);
    int32_t *order = rf_malloc_array((size_t)ui->nrows + 1, sizeof *order);
    int32_t *items = rf_malloc_array((size_t)maxrow + 1, sizeof *items);
    float *vals = rf_malloc_array((size_t)maxrow + 1, sizeof *vals);
    int32_t *negs = rf_malloc_array((size_t)maxrow + 1, sizeof *negs);
    float *s = rf_malloc_array((size_t)f * 2, sizeof *s);
    if (!order || !items || !vals || !negs || !s) {
        rc = rf_err_set(err, RF_ENOMEM, "svdpp: out of memory");
        goto done;
    }
    for (int32_t u = 0; u < ui->nrows; u++) order[u] = u;
    const float reg = (float)pp->reg, reg_b = (float)pp->reg_bias, reg_y = (float)pp->reg_y;
    const float w_imp = (float)pp->implicit;
    rf_progress *prog = rf_progress_start("svdpp", pp->epochs);
    double lr = pp->lr;
    for (int e = 0; e < pp->epochs; e++) {
        rf_rng g;
        rf_rng_stream(&g, seed, 1000 + (uint64_t)e);
        rf_rng_shuffle_i32(&g, order, ui->nrows);
        double sse = 0;
        const float lrf = (float)lr;
        for (int32_t x = 0; x < ui->nrows; x++) {
            int32_t u = order[x];
            int64_t lo_q = ui->indptr[u];
            int32_t n = (int32_t)(ui->indptr[u + 1] - lo_q);
            if (n == 0) continue;
            for (int32_t k = 0; k < n; k++) {
                items[k] = ui->indices[lo_q + k];
                vals[k] = ui->data[lo_q + k];
            }
            for (int32_t k = n - 1; k > 0; k--) { /* shuffle the pairs together */
                int32_t j = (int32_t)rf_rng_below(&g, (uint64_t)k + 1);
                int32_t ti = items[k];
                items[k] = items[j];
                items[j] = ti;
                float tv = vals[k];
                vals[k] = vals[j];
                vals[j] = tv;
            }
            if (w_imp > 0)
                for (int32_t k = 0; k < n; k++)
                    negs[k] = rf_draw_unrated(&g, ui->indices + lo_q, n, m->n_items);
            sse += rf_svdpp_user_pass_imp(p->mu, &p->bu[u], p->bi, p->P + (int64_t)u * f, p->Q,
                                          p->Y, ui->indices + lo_q, n, items, vals,
                                          w_imp > 0 ? negs : NULL, n, f, lrf, reg, reg_b, reg_y,
                                          w_imp, s, s + f);
        }
        p->train_rmse = sqrt(sse / (double)ui->nnz);
        rf_log(RF_LOG_DEBUG, "svdpp.epoch", "epoch=%d lr=%.6g train_rmse=%.5f", e + 1, lr,
               p->train_rmse);
        if (!isfinite(sse)) {
            rf_progress_finish(prog);
            rc = rf_err_set(err, RF_ERANGE,
                            "svdpp: training diverged in epoch %d (lower lr, now %g)", e + 1,
                            pp->lr);
            goto done;
        }
        lr *= pp->lr_decay;
        rf_progress_set(prog, e + 1);
    }
    rf_progress_finish(prog);
    /* P[u] += |N(u)|^-1/2 sum_{j in N(u)} y_j */
    for (int32_t u = 0; u < ui->nrows; u++) {
        int64_t n = rf_csr_row_len(ui, u);
        if (n == 0) continue;
        for (int k = 0; k < f; k++) s[k] = 0;
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++) {
            const float *y = p->Y + (int64_t)ui->indices[q] * f;
            for (int k = 0; k < f; k++) s[k] += y[k];
        }
        float alpha = (float)(1.0 / sqrt((double)n));
        float *pu = p->P + (int64_t)u * f;
        for (int k = 0; k < f; k++) pu[k] += alpha * s[k];
    }
done:
    rf_free(order);
    rf_free(items);
    rf_free(vals);
    rf_free(negs);
    rf_free(s);
    return rc;
}

const rf_model_ops rf_model_svdpp_ops = {
    .name = "svdpp",
    .help = "SVD++ for explicit ratings (SGD, implicit feedback of rated items); predicts ratings",
    .params = svdpp_defs,
    .params_size = sizeof(rf_rating_params),
    .create = rf_rating_create,
    .fit = svdpp_fit,
    .score_all = rf_rating_score_all,
    .save = rf_rating_save,
    .load = rf_rating_load,
    .destroy = rf_rating_destroy,
    .params_check = rf_rating_params_check,
    .user_dim = rf_rating_user_dim,
    .fold_in = rf_rating_fold_in,
    .score_items = rf_rating_score_items,
    .data_defaults = rf_rating_data_defaults,
    .item_vectors = rf_rating_item_vectors,
};
