/* mf.h - rating prediction with the explicit-feedback models.
 *
 * "mf" (biased matrix factorisation) and "svdpp" (SVD++) predict ratings:
 *     r^(u, i) = mu + b_u + b_i + q_i . (p_u [+ |N(u)|^-1/2 sum_{j in N(u)} y_j])
 * clipped to the range of ratings seen in training. Through the model
 * interface (model.h) their score_items gives clipped predictions of known
 * items and score_all unclipped ones (clipping would tie the top of a
 * ranking). This call also accepts users and items the model has never
 * seen, and is what `recfuse predict` uses. Thread-safe. */
#ifndef RECFUSE_MF_H
#define RECFUSE_MF_H

#include <stdint.h>

#include "model.h"

struct rf_err;

/* 1 if m is a fitted mf or svdpp model, else 0. */
int rf_rating_model(const rf_model *m);

/* Warm start of "mf", as rf_ials_set_init (factors.h) for ials: the next
 * rf_model_fit of m starts from src's user and item vectors and biases
 * wherever the id strings match (others get the usual random init); src
 * (a fitted mf model with the same factors) is borrowed until that fit
 * returns; NULL cancels. RF_EINVAL: m not an mf model, src not a fitted
 * mf model, or other factors; RF_ESTATE: m already fitted. */
int rf_mf_set_init(rf_model *m, const rf_model *src, struct rf_err *err);

/* Predicted ratings of user `user` (model user id, or -1 if the model does
 * not know the user) for items[k] (model item ids, -1 for an item the model
 * does not know), k < n, into out. What is unknown contributes nothing:
 *   known user, known item      mu + b_u + b_i + q_i . P_u
 *   known user, unknown item    mu + b_u
 *   unknown user, known item    mu + b_i + q_i . P_h   (P_h, b_h from h below)
 *   unknown user, unknown item  mu (+ b_h)
 * For an unknown user the history h (may be NULL or empty: item ids of the
 * model, weights = the user's ratings, as rf_hist_from_events builds it
 * with the model's data options) folds in: svdpp takes the implicit term
 * |h|^-1/2 sum y_j of h's items, and both models fit the user's bias and
 * factors to h's ratings by ridge regression with the training
 * regularisation (docs/models-mf-bpr.md). Without a history, b_h = 0 and
 * P_h = 0. Every prediction is clipped to the training rating range.
 * RF_EINVAL if m is not a fitted mf/svdpp model; RF_ENOMEM. */
int rf_rating_predict(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                      int32_t n, float *out, struct rf_err *err);

/* Global mean and rating range of the training data; RF_EINVAL as above. */
int rf_rating_info(const rf_model *m, float *mu, float *rmin, float *rmax, struct rf_err *err);

#endif
