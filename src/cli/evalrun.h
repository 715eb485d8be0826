/* evalrun.h - one evaluation session of the CLI, shared by `evaluate`,
 * `tune` and `report` (private to src/cli).
 *
 * A session loads the store's events and catalog once, cuts them by a
 * protocol (optionally down to the validation split inside the train
 * part), builds the train matrix the way `recfuse train` would and the
 * test relevance (and ratings) matrices, and then fits and evaluates
 * models on it one after another. */
#ifndef RF_CLI_EVALRUN_H
#define RF_CLI_EVALRUN_H

#include "cli/cli.h"
#include "recfuse/dataset.h"
#include "recfuse/eval.h"
#include "recfuse/store.h"

typedef struct rf_evalrun_opts {
    rf_protocol proto;
    int all_folds;      /* kfold without --fold: every fold in turn */
    int validation;     /* judge on the validation split cut from train */
    int no_test_split;  /* the store is all training data: the validation
                           split is cut from all events (tune) */
    const char *weights;
    double half_life;
    int binary;
    int rating;         /* RMSE / MAE on the test ratings */
    rf_eval_opts eval;  /* auc, sampled negatives, seed */
} rf_evalrun_opts;

/* Read the options shared by evaluate/tune/report: --split, --test-ratio,
 * --min-items, --cutoff, --folds, --fold, --seed, --validation,
 * --weights, --half-life, --binary, --sampled-negatives, --rating,
 * --no-auc. `tune` passes validation = 1 (always on). RF_EINVAL with a
 * message naming the option. */
int rf_evalrun_args(rf_args *a, int is_tune, rf_evalrun_opts *o, rf_err *err);
/* Usage lines of those options. */
void rf_evalrun_usage(FILE *out, int is_tune);

typedef struct rf_evalrun {
    rf_events *ev;          /* the store's events (owner of the id maps) */
    rf_catalog *catalog;    /* the store's items (side data, ILD, Rev) */
    rf_user_table *user_table; /* the store's users (fusion's demographics) */
    int32_t *category;      /* dense item id -> category id, or NULL */
    double *price;          /* dense item id -> price (NAN), or NULL */
    int32_t n_side;
    rf_split outer, inner;  /* inner: the validation split */
    const rf_events *train_ev, *test_ev;
    rf_dataset_opts dopts;
    rf_dataset *train;      /* built from train_ev with dopts */
    rf_csr *test, *ratings; /* ratings: NULL unless opts->rating */
    rf_eval_info info;
    char detail[512];
    int fold;
} rf_evalrun;

/* Load the store's events and catalog (once; later calls do nothing). */
int rf_evalrun_load(rf_store *st, rf_evalrun *r, rf_err *err);
/* Cut the session for `fold` (ignored unless kfold): loads events and
 * catalog on the first call, frees the previous cut. Prints nothing. */
int rf_evalrun_prepare(rf_store *st, const rf_evalrun_opts *o, int fold, rf_evalrun *r,
                       rf_err *err);
/* One summary line "# split user (...): train N rows, U users; test ..." */
void rf_evalrun_print_summary(FILE *out, const rf_evalrun *r);
/* Evaluation options of the session (side information, ratings). */
void rf_evalrun_eval_opts(const rf_evalrun *r, const rf_evalrun_opts *o, rf_eval_opts *eo);
/* Fit model m (created by the caller, unfitted) on the session's train
 * part - with the model's own data options when it has data_defaults -
 * and evaluate it. m stays owned by the caller. */
int rf_evalrun_fit_eval(rf_evalrun *r, const rf_evalrun_opts *o, rf_model *m, const int *ks,
                        int n_ks, const rf_eval_opts *eo, rf_eval_result *res, rf_err *err);
/* Free everything; the struct is zeroed. */
void rf_evalrun_free(rf_evalrun *r);

/* "10,20" -> sorted distinct cut-offs. */
int rf_evalrun_parse_ks(const char *s, int *ks, int *n_ks, rf_err *err);

#endif
