/* model.h - the common model interface.
 *
 * Every model is one file under src/models that fills an rf_model_ops
 * table. A model is created by name, configured by its parameter table,
 * fit on a dataset, and then immutable: score and recommend are safe to
 * call from many threads at once. A model owns copies of the id maps it
 * was trained with, so a saved model file is self-contained.
 *
 * Scoring takes the user's dense id (-1 if the model never saw the user)
 * and the user's current history in the model's item ids, so history-based
 * models (kNN) and fold-in work for users who arrived after training.
 *
 * Fallback contract: with user == -1 and an empty history every model's
 * score_all must still rank the catalog sensibly - by popularity unless the
 * model has something better (content, demographics). The CLI and the
 * server rely on this for unknown users. docs/models.md lists each model's
 * choice. */
#ifndef RECFUSE_MODEL_H
#define RECFUSE_MODEL_H

#include <stdint.h>

#include "dataset.h"
#include "params.h"
#include "topk.h"

struct rf_err;
struct rf_writer;
struct rf_reader;
struct rf_sparse;
struct rf_filter;

/* A user's history in model item ids; weights and ts may be NULL. */
typedef struct rf_hist {
    int32_t n;
    const int32_t *items;
    const float *weights;
    const int64_t *ts;
} rf_hist;

typedef struct rf_model rf_model;

/* The explanation of one recommended item: its main reason, and what
 * each channel contributed to its rank. Kinds in use (docs/models.md):
 *   "similar"          similar to ref_item, which the user interacted with
 *   "bought_together"  bought together with ref_item
 *   "people_like_you"  users with a similar history chose it
 *   "content"          matches the user's categories/brands/text
 *   "popular"          popular (in its category) overall
 *   "trending"         popular in the recent window
 *   "model"            generic: scored high by the model named in channel
 * text is one English sentence naming items by their string ids, e.g.
 * "similar to i42 you viewed"; ref_item is a model item id the user
 * really interacted with (in h), or -1 when the reason cites none.
 * contrib lists channels by decreasing share; shares are >= 0 and sum to
 * 1 (one entry {channel, 1} for a single model). */
#define RF_REASON_TEXT 192
#define RF_REASON_NAME 32
#define RF_REASON_CONTRIB 12
typedef struct rf_reason {
    char kind[RF_REASON_NAME];
    char channel[RF_REASON_NAME];
    int32_t ref_item;
    char text[RF_REASON_TEXT];
    int n_contrib;
    struct {
        char channel[RF_REASON_NAME];
        float share;
    } contrib[RF_REASON_CONTRIB];
} rf_reason;

/* A model's operations. To add a model, define one of these in its own
 * src/models/NAME.c and list it in the registry in src/models/model.c. */
typedef struct rf_model_ops {
    const char *name;
    const char *help;              /* one line */
    const rf_param_def *params;    /* parameter table, ends with {0} */
    size_t params_size;            /* sizeof the params struct */
    /* Allocate m->impl (params hold their defaults). Called by rf_model_new. */
    int (*create)(rf_model *m, struct rf_err *err);
    /* Train on d; m->users/items, n_users/n_items and data_opts are already
     * set. Called once, by rf_model_fit. */
    int (*fit)(rf_model *m, const rf_dataset *d, struct rf_err *err);
    /* Scores of all m->n_items items into out; higher is better. Items the
     * model cannot score get -INFINITY. h is never NULL (h->n may be 0);
     * user is in [-1, n_users). Thread-safe. */
    int (*score_all)(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                     struct rf_err *err);
    /* Write / read the model's own payload after the common header; load
     * runs with params, dimensions and id maps already restored and must
     * validate every size and index it reads (RF_EFORMAT). */
    int (*save)(const rf_model *m, struct rf_writer *w, struct rf_err *err);
    int (*load)(rf_model *m, struct rf_reader *r, struct rf_err *err);
    /* Free m->impl. */
    void (*destroy)(rf_model *m);
    /* Optional: NULL if m->params are consistent, else a static message
     * (LIBLINEAR's check_parameter). Called by rf_model_set_params. */
    const char *(*params_check)(const void *params);
    /* Optional (latent-factor models): length of a user vector, 0 or NULL
     * when the model has none. */
    int (*user_dim)(const rf_model *m);
    /* Optional: fold-in - the user vector recomputed from history h alone
     * (user_dim floats into vec), as the training step would compute it. */
    int (*fold_in)(const rf_model *m, const rf_hist *h, float *vec, struct rf_err *err);
    /* Optional: scores of n given items (for mf/svdpp: predicted ratings).
     * NULL: rf_model_score_items takes them from score_all. */
    int (*score_items)(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                       int32_t n, float *out, struct rf_err *err);
    /* Optional: adjust the dataset options the model must train on, over
     * what the caller chose (mf/svdpp: rating events only, use_value 1,
     * fold LAST, binary 0, no decay). Whoever builds the training matrix
     * calls it before rf_dataset_build and sets m->data_opts to the
     * result; NULL: the caller's options stand. */
    void (*data_defaults)(rf_dataset_opts *o);
    /* Optional: scores of n users at once, out row r (m->n_items floats)
     * for users[r] (in [-1, n_users)) with history hists[r]; the same
     * values as score_all row by row (up to float rounding of a different
     * summation order). For factor models one sgemm U_block * V^T.
     * rf_evaluate uses it for blocks of users, from its own parallel loop
     * (OpenBLAS is set to one thread meanwhile). Thread-safe. */
    int (*score_batch)(const rf_model *m, int32_t n, const int32_t *users, const rf_hist *hists,
                       float *out, struct rf_err *err);
    /* Optional (latent-factor models): the item vectors, m->n_items x *dim
     * floats row-major, borrowed from the model; NULL when it has none.
     * Evaluation uses them for intra-list diversity (ILDemb). */
    const float *(*item_vectors)(const rf_model *m, int *dim);
    /* Optional: why each of n items (typically what recommend returned)
     * would be recommended to this user - what actually ranked it. out[t]
     * for items[t]; see rf_reason. NULL: rf_model_explain gives the
     * generic reason. Thread-safe. */
    int (*explain)(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                   int32_t n, struct rf_reason *out, struct rf_err *err);
    /* Optional (ials, mf, bpr): warm start - see rf_model_set_init. Called
     * on an unfitted m; src NULL cancels. */
    int (*set_init)(rf_model *m, const rf_model *src, struct rf_err *err);
    /* Optional (models whose scores come from what the history reaches:
     * itemknn, userknn, rules): score_all, sparsely. acc (sparse.h; clear on
     * entry, acc->n_items == m->n_items) receives, at the items it marks
     * (rf_sparse_at), exactly the floats score_all gives them; every item
     * left unmarked scores exactly what score_all gives it for user -1 and
     * an empty history (the model's fallback, user-independent). Costs
     * what the history reaches (neighbour lists, neighbours' rows, rules
     * fired), never a pass over the catalog. Arguments as score_all.
     * Thread-safe with one acc per thread. The fused model's candidates
     * use it (docs/fusion.md). */
    int (*score_sparse)(const rf_model *m, int32_t user, const rf_hist *h, struct rf_sparse *acc,
                        struct rf_err *err);
    /* Optional: the list of rf_model_recommend without scoring the whole
     * catalog (fusion: its candidates). Must return exactly what the
     * generic path returns - the best k items of score_all, never one in h
     * (unless f->allow_history), one with f->exclude[item] set, or one
     * scored -INFINITY or NaN; best first, ties by the smaller id. f may be
     * NULL (no filter). With f->allow_history a model whose score_all
     * cannot score history items (the fused model: its candidates are
     * never history items) scores the history items f->exclude lets
     * through like its other candidates (docs/fusion.md). Called with
     * k > 0, h not NULL, user in [-1, n_users). Returns the count written
     * to out (k entries) or a negative RF_E* code. Thread-safe. */
    int (*recommend)(const rf_model *m, int32_t user, const rf_hist *h, int k,
                     const struct rf_filter *f, rf_scored *out, struct rf_err *err);
} rf_model_ops;

struct rf_model {
    const rf_model_ops *ops;
    void *params;          /* struct described by ops->params */
    void *impl;            /* model state, owned */
    int32_t n_users, n_items;
    rf_idmap *users, *items; /* owned copies of the training maps */
    rf_dataset_opts data_opts; /* how the training matrix was built; saved,
                                  and used to weight histories at serve time.
                                  Set it before rf_model_fit (rf_model_new
                                  fills rf_dataset_opts_default); fit
                                  resolves now == 0 to the dataset's ts_max. */
    double fit_seconds;
    int fitted;            /* 1 after a successful fit or load */
};

/* Ops of a registered model by name, NULL if unknown. */
const rf_model_ops *rf_model_find(const char *name);
/* Names of registered models, NULL-terminated. */
const char *const *rf_model_names(void);

/* New unfitted model with default parameters and default data_opts.
 * RF_ENOTFOUND for an unknown name (the message lists the known ones). */
int rf_model_new(const char *name, rf_model **out, struct rf_err *err);
/* NULL is a no-op. */
void rf_model_free(rf_model *m);
/* Apply "k=v,k2=v2" (or space-separated) to m->params, then the model's
 * params_check. RF_ENOTFOUND / RF_EPARSE / RF_ERANGE as rf_params_set,
 * RF_EINVAL from params_check, RF_ESTATE once the model is fitted (a model
 * keeps the parameters it was trained with). */
int rf_model_set_params(rf_model *m, const char *kvs, struct rf_err *err);
/* Warm start (incremental retraining, transfer from another domain): the
 * next rf_model_fit of m starts from the vectors (and biases) of src, a
 * fitted model of the same kind with the same `factors`, wherever user and
 * item id strings match; other users and items get the usual random init.
 * src is borrowed until that fit returns (the fit forgets it); NULL
 * cancels. RF_EINVAL: the model has no warm start (ops->set_init NULL) or
 * src does not fit; RF_ESTATE: m already fitted. docs/models-fm-coldstart.md. */
int rf_model_set_init(rf_model *m, const rf_model *src, struct rf_err *err);
/* "k=v k2=v2" of the model's current parameters into buf. */
int rf_model_params_format(const rf_model *m, char *buf, size_t size);
/* Copies the dataset's id maps, then calls ops->fit; times it. The
 * dataset is only read during the call (the model keeps no pointer into
 * it). RF_ESTATE if the model is already fitted. */
int rf_model_fit(rf_model *m, const rf_dataset *d, struct rf_err *err);

/* All-item scores (m->n_items floats into out) through ops->score_all;
 * h may be NULL (empty history). Thread-safe. */
int rf_model_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                       struct rf_err *err);

/* Scores of n given items (through ops->score_items, else score_all);
 * h may be NULL. Item ids outside [0, n_items) get NAN. Thread-safe. */
int rf_model_score_items(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                         int32_t n, float *out, struct rf_err *err);

/* The model's sparse scores (ops->score_sparse, which see) into acc, a
 * clear accumulator over m->n_items items; h may be NULL. RF_EUNSUPPORTED
 * if the model has no sparse op, RF_EINVAL if acc has another size.
 * Thread-safe with one acc per thread. */
int rf_model_score_sparse(const rf_model *m, int32_t user, const rf_hist *h,
                          struct rf_sparse *acc, struct rf_err *err);

/* Filter for recommend: items with exclude[item] != 0 are skipped; the
 * user's history items are skipped too, unless allow_history is set:
 * then only exclude decides, so a caller that masks every history item
 * except some (repeat purchases of consumables, `recfuse recommend
 * --repeat-categories`) gets those back as candidates. `{mask}` (the
 * zero default) is the usual filter. */
typedef struct rf_filter {
    const uint8_t *exclude; /* n_items flags or NULL */
    int allow_history;      /* 1: history items are candidates unless excluded */
} rf_filter;

/* Best k items for a user, never one in h (h may be NULL; unless
 * f->allow_history), nor one with f->exclude set (f may be NULL), nor one
 * the model scores -INFINITY (or NaN). Best first, ties by the smaller
 * item id: top-k of score_all. The fused model's score_all gives history
 * items no candidate score; with allow_history its recommend op scores
 * the history items that exclude lets through as candidates (so the list
 * is then the top-k of score_all with those items added to the
 * candidates).
 * Models with ops->recommend (fusion) answer through it, without a pass
 * over the catalog; the others score the catalog into `scratch`, n_items
 * floats (NULL: allocated per call). out has k entries. Returns the count
 * written (<= k, 0 when k <= 0) or a negative RF_E* code. Thread-safe with
 * one scratch per thread. */
int rf_model_recommend(const rf_model *m, int32_t user, const rf_hist *h, int k,
                       const rf_filter *f, float *scratch, rf_scored *out, struct rf_err *err);

/* Reasons for n items (model item ids; h may be NULL) through
 * ops->explain; models without one get the generic reason for every item:
 * kind "model", channel = the model's name, ref_item -1, text
 * "recommended by NAME", contrib {NAME, 1}. Items out of range:
 * RF_ERANGE. Thread-safe. */
int rf_model_explain(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                     int32_t n, rf_reason *out, struct rf_err *err);

/* Save to / load from a model file (binfile.h): header with model name,
 * parameters, dimensions and id maps, then the model's own payload. */
int rf_model_save(const rf_model *m, const char *path, struct rf_err *err);
/* RF_ENOTFOUND if the file is missing, RF_EIO if it cannot be read,
 * RF_EFORMAT for a foreign, truncated
 * or inconsistent file (or an unknown model name / newer version),
 * RF_ECORRUPT for a checksum mismatch. */
int rf_model_load(const char *path, rf_model **out, struct rf_err *err);
/* The same model record (header and payload, without the file's magic,
 * checksum and trailer) into / from an open binfile stream, so a model
 * can embed others (the fusion model embeds its channels). Read leaves
 * the stream after the record; errors as rf_model_load. */
int rf_model_write(const rf_model *m, struct rf_writer *w, struct rf_err *err);
int rf_model_read(struct rf_reader *r, rf_model **out, struct rf_err *err);
/* Magic and format version of model files. */
#define RF_MODEL_MAGIC "RFMODEL\0"
#define RF_MODEL_VERSION 1u

/* Weighted history of one user from raw events (string ids resolved
 * through the model's item map; unknown items dropped), folded per item
 * with m->data_opts exactly as rf_dataset_build folds a training row:
 * events of a type with weight 0 are dropped; event weight =
 * type_weight[type] * (use_value ? value : 1) * 2^(-(now - ts) / half_life)
 * (decay only when half_life_days > 0; now is the later of data_opts.now
 * and the newest event kept), folded in double by
 * data_opts.fold (LAST: the newest event, later index on equal times),
 * then 1 if data_opts.binary. Items come out sorted by model item id; ts
 * is each item's newest event time. All events of `ev` are taken as the
 * user's. Arrays are allocated into *items, *weights, *ts (rf_free; each of
 * weights and ts may be NULL if not wanted); *n may be 0, and then the
 * arrays are NULL. */
int rf_hist_from_events(const rf_model *m, const rf_events *ev, int32_t **items, float **weights,
                        int64_t **ts, int32_t *n, struct rf_err *err);
/* The same from events whose item field is a store item row id (as
 * rf_store_user_event_rows reads them): r2i[rid] is the model item id of
 * row id rid (-1: not in the model), for rid < nr; rows past nr are items
 * the model does not know. */
int rf_hist_from_rows(const rf_model *m, const rf_events *ev, const int32_t *r2i, int64_t nr,
                      int32_t **items, float **weights, int64_t **ts, int32_t *n,
                      struct rf_err *err);

/* Build the history of a training user from a dataset row (borrowing the
 * dataset's arrays; ts stays NULL, so time-aware scoring - half_life
 * decay, rules' last session - is off: use rf_hist_from_row_ts for it). */
void rf_hist_from_row(const rf_dataset *d, int32_t user, rf_hist *h);
/* The same with times: ts (caller-owned, room for the row's length,
 * rf_csr_row_len(d->ui, user)) receives each item's newest event time,
 * d->ts_base + d->ui_ts[entry], and h->ts points at it; h->ts stays NULL
 * when the dataset has no ui_ts. Offline evaluation builds its
 * histories this way, as the server does from events. */
void rf_hist_from_row_ts(const rf_dataset *d, int32_t user, int64_t *ts, rf_hist *h);

#endif
