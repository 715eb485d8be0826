/* mf.c - biased matrix factorisation for explicit ratings ("mf").
 *
 * Koren's biased MF: r^(u, i) = mu + b_u + b_i + p_u . q_i, fit by SGD on
 * the squared error with L2 regularisation (reg on the factors, reg_bias
 * on the biases; loss in models/sgd.h). Each epoch visits every rating
 * once in a fresh seeded random order; the learning rate of epoch e is
 * lr * lr_decay^e. Factors start from N(0, init_std^2) (seeded), biases
 * from 0 - or, after rf_mf_set_init, factors and biases of users and items
 * a previous model knows (by id string) from that model's values (warm
 * start); mu is the mean training rating. Predictions are clipped to the
 * training rating range (models/sgd_rating.c holds prediction, fold-in of
 * new users and the model file).
 *
 * With implicit = w > 0 every rating step is followed by one BPR step on
 * "u rated i rather than j" (j uniform among the items u has not rated):
 * w * -ln sigmoid(p_u . (q_i - q_j)) on the factors only. The predictor
 * stays plain biased MF; the term makes the factors also explain which
 * items a user rated (the signal SVD++'s y_j terms use), which lowers
 * ML-100K RMSE from 0.912 to 0.896. implicit=0 is Koren's biased MF.
 *
 * DESIGN: training is serial. One epoch over ML-100K's 80k ratings takes
 * milliseconds, over 20M ratings about a second, and a serial pass gives
 * the same bits for every thread count; parallel SGD for ratings would
 * need stratification (as bpr.c does) for no gain at these sizes. The
 * ratings are copied once into (user, item, rating) triplets that are
 * shuffled in place each epoch, 12 bytes per rating.
 *
 * mf trains on rating values, so its data_defaults op asks for a training
 * matrix of rating events only, with use_value=1, fold=last (a re-rated
 * item counts with its latest rating), no decay, not binary; fit refuses
 * a binary matrix. Defaults were tuned on ML-100K by 5-fold cross
 * validation inside the u1..u5 bases (docs/models-mf-bpr.md). */
#include <math.h>
#include <stddef.h>

#include "models/sgd.h"
#include "recfuse/coldstart.h"
#include "recfuse/error.h"
#include "recfuse/mf.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"

/* One training rating. */
typedef struct rating {
    int32_t u, i;
    float r;
} rating;

/* Shared by mf and svdpp (rf_rating_params). */
static const rf_param_def mf_defs[] = {
    {"factors", RF_P_INT, offsetof(rf_rating_params, factors), 100, 1, 1000, NULL,
     "latent factors per user and item"},
    {"epochs", RF_P_INT, offsetof(rf_rating_params, epochs), 100, 1, 100000, NULL,
     "passes over the ratings"},
    {"lr", RF_P_DOUBLE, offsetof(rf_rating_params, lr), 0.005, 1e-7, 1, NULL,
     "SGD learning rate of the first epoch"},
    {"lr_decay", RF_P_DOUBLE, offsetof(rf_rating_params, lr_decay), 0.99, 0.5, 1, NULL,
     "learning rate multiplier per epoch"},
    {"reg", RF_P_DOUBLE, offsetof(rf_rating_params, reg), 0.1, 0, 10, NULL,
     "L2 regularisation of the factors (per rating)"},
    {"reg_bias", RF_P_DOUBLE, offsetof(rf_rating_params, reg_bias), 0.05, 0, 10, NULL,
     "L2 regularisation of the user and item biases (per rating)"},
    {"implicit", RF_P_DOUBLE, offsetof(rf_rating_params, implicit), 0.5, 0, 100, NULL,
     "weight of the co-trained BPR loss on which items each user rated (0: plain biased MF)"},
    {"init_std", RF_P_DOUBLE, offsetof(rf_rating_params, init_std), 0.05, 0, 10, NULL,
     "standard deviation of the initial factors"},
    {"seed", RF_P_INT, offsetof(rf_rating_params, seed), 42, 0, 2147483647, NULL,
     "random seed (initialisation and rating order)"},
    {0},
};

extern const rf_model_ops rf_model_mf_ops;

int rf_mf_set_init(rf_model *m, const rf_model *src, rf_err *err) {
    if (!m || m->ops != &rf_model_mf_ops || !m->impl)
        return rf_err_set(err, RF_EINVAL, "warm start: not an mf model");
    if (m->fitted) return rf_err_set(err, RF_ESTATE, "warm start: the model is already fitted");
    rf_rating_impl *p = m->impl;
    p->init_src = NULL;
    if (!src) return 0;
    const int have = src->ops == m->ops && src->impl ? ((const rf_rating_impl *)src->impl)->f : -1;
    int rc = rf_warmstart_check(m, src, have, ((const rf_rating_params *)m->params)->factors, err);
    if (rc == 0) p->init_src = src;
    return rc;
}

/* The warm start of mf_fit: vectors and biases of the users and items
 * whose id strings src has. */
static int warm_start(const rf_model *m, const rf_model *src, rf_rating_impl *p, rf_err *err) {
    const rf_rating_impl *s = src->impl;
    rf_warm_parts from = {s->P, s->Q, s->bu, s->bi, s->f, s->f},
                  to = {p->P, p->Q, p->bu, p->bi, p->f, p->f};
    return rf_warmstart_parts(src, &from, m, &to, err);
}

static int mf_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const rf_rating_params *pp = m->params;
    rf_rating_impl *p = m->impl;
    const rf_model *init_src = p->init_src; /* used by this fit only */
    p->init_src = NULL;
    double mu;
    float lo, hi;
    int rc = rf_rating_check_data(m, d, &mu, &lo, &hi, err);
    if (rc) return rc;
    const int f = pp->factors;
    if ((rc = rf_rating_alloc(m, f, 0, err))) return rc;
    p->mu = (float)mu;
    p->rmin = lo;
    p->rmax = hi;
    const uint64_t seed = (uint64_t)pp->seed;
    rf_rating_init_normal(p->P, (int64_t)m->n_users * f, pp->init_std, seed, 1);
    rf_rating_init_normal(p->Q, (int64_t)m->n_items * f, pp->init_std, seed, 2);
    if (init_src && (rc = warm_start(m, init_src, p, err))) return rc;

    const rf_csr *ui = d->ui;
    rating *t = rf_malloc_array((size_t)ui->nnz, sizeof *t);
    if (!t) return rf_err_set(err, RF_ENOMEM, "mf: out of memory for %lld ratings",
                              (long long)ui->nnz);
    for (int32_t u = 0; u < ui->nrows; u++)
        for (int64_t q = ui->indptr[u]; q < ui->indptr[u + 1]; q++)
            t[q] = (rating){u, ui->indices[q], ui->data[q]};
    const float reg = (float)pp->reg, reg_b = (float)pp->reg_bias, w_imp = (float)pp->implicit;
    rf_progress *prog = rf_progress_start("mf", pp->epochs);
    double lr = pp->lr;
    for (int e = 0; e < pp->epochs; e++) {
        rf_rng g;
        rf_rng_stream(&g, seed, 1000 + (uint64_t)e);
        for (int64_t k = ui->nnz - 1; k > 0; k--) {
            int64_t j = (int64_t)rf_rng_below(&g, (uint64_t)k + 1);
            rating tmp = t[k];
            t[k] = t[j];
            t[j] = tmp;
        }
        double sse = 0;
        const float lrf = (float)lr;
        for (int64_t k = 0; k < ui->nnz; k++) {
            float ee = rf_mf_step(p->mu, &p->bu[t[k].u], &p->bi[t[k].i],
                                  p->P + (int64_t)t[k].u * f, p->Q + (int64_t)t[k].i * f, f,
                                  t[k].r, lrf, reg, reg_b);
            sse += (double)ee * ee;
            if (w_imp > 0) {
                int32_t u = t[k].u;
                int32_t j = rf_draw_unrated(&g, ui->indices + ui->indptr[u],
                                            ui->indptr[u + 1] - ui->indptr[u], m->n_items);
                if (j >= 0)
                    rf_implicit_step(p->P + (int64_t)u * f, p->Q + (int64_t)t[k].i * f,
                                     p->Q + (int64_t)j * f, f, w_imp, lrf);
            }
        }
        p->train_rmse = sqrt(sse / (double)ui->nnz);
        rf_log(RF_LOG_DEBUG, "mf.epoch", "epoch=%d lr=%.6g train_rmse=%.5f", e + 1, lr,
               p->train_rmse);
        if (!isfinite(sse)) {
            rf_progress_finish(prog);
            rf_free(t);
            return rf_err_set(err, RF_ERANGE,
                              "mf: training diverged in epoch %d (lower lr, now %g)", e + 1,
                              pp->lr);
        }
        lr *= pp->lr_decay;
        rf_progress_set(prog, e + 1);
    }
    rf_progress_finish(prog);
    rf_free(t);
    return 0;
}

const rf_model_ops rf_model_mf_ops = {
    .name = "mf",
    .help = "biased matrix factorisation for explicit ratings (SGD); predicts ratings",
    .params = mf_defs,
    .params_size = sizeof(rf_rating_params),
    .create = rf_rating_create,
    .fit = mf_fit,
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
    .set_init = rf_mf_set_init,
};
