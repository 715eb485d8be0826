/* tune.h - hyperparameter search for a model on a validation split.
 *
 * A search space is one or more alternatives ("sub-spaces") of
 * dimensions, written as text:
 *     k=50,100,200;shrink=0:50;alpha=0.01:10:log | sim=bm25;k1=0.5:3
 * '|' separates alternatives, ';' dimensions; a dimension is a list of
 * values (a,b,c - also enum choices) or a range lo:hi (uniform) or
 * lo:hi:log (log-uniform; lo > 0). Ranges of integer parameters are
 * rounded. Every name and value is checked against the model's parameter
 * table. Each model has a default space (rf_tune_space_default); models
 * without one get a space derived from their parameter table.
 *
 * Search: grid (every combination; a range contributes grid_points values,
 * log-spaced for log ranges) or random (seeded draws, distinct configs);
 * trial 0 is always the model's defaults (params ""), so the result is
 * never worse than the defaults on the validation split.
 * Successive halving prunes bad trials early: every trial first runs at a
 * fraction eta^-(rungs-1) of the budget, the best 1/eta of a rung move to
 * the next rung with eta times the budget, and only the survivors run at
 * full budget. The budget is either the share of validation users scored
 * (a seeded, nested subset) or the model's iteration count (iALS
 * iterations, BPR/MF epochs: the model is refit with fewer iterations).
 * The best configuration is the best at the highest rung reached. */
#ifndef RECFUSE_TUNE_H
#define RECFUSE_TUNE_H

#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "eval.h"
#include "model.h"
#include "params.h"

struct rf_err;

#define RF_TUNE_MAX_SUBS 8
#define RF_TUNE_MAX_DIMS 16
#define RF_TUNE_MAX_VALUES 32
#define RF_TUNE_MAX_RUNGS 6
#define RF_TUNE_PARAMS_MAX 1024

typedef struct rf_tune_dim {
    char name[32];
    int is_range;                               /* 0: list, 1: range */
    int n_values;                               /* list */
    char values[RF_TUNE_MAX_VALUES][32];
    double lo, hi;                              /* range */
    int log;                                    /* log-uniform range */
    int is_int;                                 /* integer parameter: rounded */
} rf_tune_dim;

typedef struct rf_tune_sub {
    int n_dims;
    rf_tune_dim dims[RF_TUNE_MAX_DIMS];
} rf_tune_sub;

typedef struct rf_tune_space {
    int n_subs;
    rf_tune_sub subs[RF_TUNE_MAX_SUBS];
} rf_tune_space;

/* Parse a space for a model with parameter table defs into *out. strict:
 * an unknown parameter or bad value is an error (RF_EINVAL naming it);
 * not strict (the built-in tables, written for models that may change):
 * unknown dimensions are dropped, and alternatives with a bad value. */
int rf_tune_space_parse(const char *text, const rf_param_def *defs, int strict,
                        rf_tune_space *out, struct rf_err *err);
/* The default space of `model` (ops from the registry): the built-in
 * table when it knows the model and any of it fits the model's
 * parameters, else a space derived from the parameter table: enum
 * parameters with all their choices, numeric ones over their range, or
 * log-scaled over [default/10, default*10] within it when the range spans
 * two decades or more; "seed" and parameters with a zero default and a
 * wide range are left alone. At most 6 dimensions. */
int rf_tune_space_default(const rf_model_ops *ops, rf_tune_space *out, struct rf_err *err);
/* Text form of a space (the syntax above) into buf. */
void rf_tune_space_format(const rf_tune_space *s, char *buf, size_t size);
/* Built-in table entries: the space text, the default metric ("ndcg@10",
 * "rmse" for rating models) and the iteration parameter (NULL if none),
 * or all NULL for a model the table does not know. */
void rf_tune_model_defaults(const char *model, const char **space, const char **metric,
                            const char **iter_param);

typedef enum rf_tune_search { RF_TUNE_GRID = 0, RF_TUNE_RANDOM = 1 } rf_tune_search;
typedef enum rf_tune_resource {
    RF_TUNE_RES_AUTO = 0,   /* iterations when the model has an iteration parameter */
    RF_TUNE_RES_USERS,      /* share of validation users */
    RF_TUNE_RES_ITERATIONS  /* the model's iteration count */
} rf_tune_resource;

typedef enum rf_trial_status {
    RF_TRIAL_OK = 0,      /* ran at every rung it was promoted to */
    RF_TRIAL_FAILED = 1,  /* fitting or scoring failed (message in error) */
    RF_TRIAL_SKIPPED = 2  /* not run: the time budget ran out */
} rf_trial_status;

typedef struct rf_tune_trial {
    int id;                               /* 0-based, in generation order */
    int sub;                              /* alternative of the space, -1: the defaults */
    char params[RF_TUNE_PARAMS_MAX];      /* the searched values, "k=100 shrink=5" */
    char full[RF_TUNE_PARAMS_MAX];        /* every parameter of the configured model */
    rf_trial_status status;
    int rung;                             /* highest rung run, -1 if none */
    double value[RF_TUNE_MAX_RUNGS];      /* metric at each rung run (NAN if not run) */
    double fit_seconds, eval_seconds;     /* summed over rungs */
    char error[256];
} rf_tune_trial;

typedef struct rf_tune_opts {
    rf_tune_search search;
    int trials;               /* random: number of trials (20); grid: cap, 0 = all */
    int grid_points;          /* values per range in a grid (3) */
    uint64_t seed;            /* draws and user subsets (1) */
    int metric, k;            /* objective (RF_M_NDCG at 10); k ignored when not at K */
    int eta;                  /* halving factor (3) */
    int rungs;                /* 0: automatic (up to 3, fewer for few trials); 1: no halving */
    rf_tune_resource resource;
    double budget_seconds;    /* stop starting trials after this long; 0: no limit */
    const char *fixed;        /* parameters set in every trial (k=v,...), may be NULL */
    rf_eval_opts eval;        /* evaluation options (side information, ratings) */
    /* Called after every trial run (from the calling thread): done / total
     * runs planned, the trial and the rung it just ran. May be NULL. */
    void (*on_run)(void *ud, const rf_tune_trial *t, int rung, int done, int total);
    void *ud;
} rf_tune_opts;
void rf_tune_opts_default(rf_tune_opts *o);

/* What the trials fit on and are judged on: the validation split's train
 * log and matrix (built with dopts; models with data_defaults get their
 * own matrix from train_ev, built once) and its relevance matrix. */
typedef struct rf_tune_data {
    const rf_events *train_ev;
    const rf_dataset *train;
    rf_dataset_opts dopts;
    const rf_csr *val;
} rf_tune_data;

typedef struct rf_tune_result {
    char model[32];
    int n_trials;
    rf_tune_trial *trials;  /* owned, by id */
    int *rank;              /* owned: trial ids, best first (leaderboard) */
    int best;               /* trial id, -1 if no trial succeeded */
    int rungs, eta;
    rf_tune_resource resource; /* as resolved */
    char iter_param[32];    /* the resource parameter when iterations */
    double budget[RF_TUNE_MAX_RUNGS]; /* budget fraction of each rung */
    int metric, k;
    int higher_better;
    int stopped;            /* 1: the time budget ran out */
    double seconds;
} rf_tune_result;
void rf_tune_result_free(rf_tune_result *r); /* NULL ok */

/* Run the search. Trials that fail are recorded, not fatal; an error is
 * returned for bad arguments (RF_EINVAL: unknown model, empty space, bad
 * metric), RF_ENOMEM, or when every trial failed (RF_EINVAL with the first
 * trial's message). Deterministic for a seed unless the time budget cuts
 * the search. */
int rf_tune_run(const char *model, const rf_tune_space *space, const rf_tune_data *data,
                const rf_tune_opts *o, rf_tune_result *res, struct rf_err *err);

/* Print the leaderboard (best first; at most `top` rows, 0 = all). */
void rf_tune_print(FILE *out, const rf_tune_result *r, int top);
/* Write the search as JSON (PATH.tmp + rename): model, metric, search,
 * space, protocol (info may be NULL), rungs and budgets, every trial, the
 * leaderboard and the best configuration. RF_EIO, RF_ENOMEM. */
int rf_tune_write_json(const char *path, const rf_tune_result *r, const rf_tune_opts *o,
                       const rf_tune_space *space, const rf_eval_info *info,
                       struct rf_err *err);

#endif
