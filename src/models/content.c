/* content.c - the "content" model: content-based recommendation from the
 * catalog (features.h): item vectors from category, brand, price band,
 * tags, TF-IDF text and optional dense vectors; a user profile that is
 * the decayed, event-weighted mean of the user's items; cosine scoring.
 *
 * Because it needs no interactions with an item, it ranks brand-new
 * catalog items (in the id maps through the store, with empty columns in
 * the matrix) exactly like old ones: the cold-start answer for new items.
 * For a user with no history the fallback is popularity (model.h).
 *
 * Fit: features are built from rf_dataset.catalog with this model's
 * parameters (block weights, price bands, vocabulary limits), so tuning
 * can change them; without a catalog every vector is zero and the model
 * ranks by popularity (with a warning in the log). The model file holds
 * the item vectors and popularity: recommend and serve need no catalog.
 *
 * Score: p = sum_i c_i x_i / sum_i c_i over the history, c_i = the
 * history weight (use_weights=1; event-type weights and decay of the
 * training options) times 2^(-(t_newest - ts_i) / half_life) when the
 * history has times and half_life > 0; score(j) = cos(p, x_j) +
 * pop_blend * pop_j / max pop. A history whose items have no features
 * falls back to popularity. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/features.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/store.h"

typedef struct content_params {
    double w_category, w_brand, w_price, w_tag, w_text, w_vector;
    int price_bands;
    int min_df;
    double max_df;
    int max_vocab;
    double title_weight;
    double half_life; /* days; 0: no decay of the profile */
    int use_weights;
    double pop_blend;
} content_params;

typedef struct content_impl {
    rf_item_features *f;
    float *pop; /* n_items */
    float pop_max;
} content_impl;

static const rf_param_def content_defs[] = {
    {"w_category", RF_P_DOUBLE, offsetof(content_params, w_category), 2, 0, 100, NULL,
     "weight of the category block (every level of the path)"},
    {"w_brand", RF_P_DOUBLE, offsetof(content_params, w_brand), 0.5, 0, 100, NULL,
     "weight of the brand block"},
    {"w_price", RF_P_DOUBLE, offsetof(content_params, w_price), 0.25, 0, 100, NULL,
     "weight of the price band block"},
    {"w_tag", RF_P_DOUBLE, offsetof(content_params, w_tag), 0.5, 0, 100, NULL,
     "weight of the tags block (attrs tags/genres/keywords)"},
    {"w_text", RF_P_DOUBLE, offsetof(content_params, w_text), 1, 0, 100, NULL,
     "weight of the TF-IDF block (title + attrs description)"},
    {"w_vector", RF_P_DOUBLE, offsetof(content_params, w_vector), 1, 0, 100, NULL,
     "weight of the dense vectors (attrs vector)"},
    {"price_bands", RF_P_INT, offsetof(content_params, price_bands), 5, 2, 100, NULL,
     "price bands per category"},
    {"min_df", RF_P_INT, offsetof(content_params, min_df), 2, 1, 1e9, NULL,
     "text tokens in fewer items are dropped"},
    {"max_df", RF_P_DOUBLE, offsetof(content_params, max_df), 0.5, 0.001, 1, NULL,
     "text tokens in more than this share of the items are dropped"},
    {"max_vocab", RF_P_INT, offsetof(content_params, max_vocab), 100000, 1, 1e9, NULL,
     "most frequent text tokens kept"},
    {"title_weight", RF_P_DOUBLE, offsetof(content_params, title_weight), 2, 0.01, 100, NULL,
     "a title token counts this many description tokens"},
    {"half_life", RF_P_DOUBLE, offsetof(content_params, half_life), 60, 0, 1e6, NULL,
     "days after which a history item counts half in the profile (0: no decay)"},
    {"use_weights", RF_P_INT, offsetof(content_params, use_weights), 1, 0, 1, NULL,
     "1: weight history items by their event weights; 0: all equal"},
    {"pop_blend", RF_P_DOUBLE, offsetof(content_params, pop_blend), 0.5, 0, 100, NULL,
     "added popularity share: score = cosine + pop_blend * pop / max pop"},
    {0},
};

static int content_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(content_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "content: out of memory");
    return 0;
}

static void content_clear(content_impl *p) {
    rf_item_features_free(p->f);
    rf_free(p->pop);
    memset(p, 0, sizeof *p);
}

static void content_destroy(rf_model *m) {
    content_impl *p = m->impl;
    if (!p) return;
    content_clear(p);
    rf_free(p);
    m->impl = NULL;
}

static void feature_opts(const content_params *cp, rf_features_opts *o) {
    rf_features_opts_default(o);
    o->w_category = cp->w_category;
    o->w_brand = cp->w_brand;
    o->w_price = cp->w_price;
    o->w_tag = cp->w_tag;
    o->w_text = cp->w_text;
    o->w_vector = cp->w_vector;
    o->price_bands = cp->price_bands;
    o->min_df = cp->min_df;
    o->max_df = cp->max_df;
    o->max_vocab = cp->max_vocab;
    o->title_weight = cp->title_weight;
}

static const char *content_check(const void *params) {
    rf_features_opts o;
    feature_opts(params, &o);
    return rf_features_opts_check(&o);
}

static int content_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const content_params *cp = m->params;
    content_impl *p = m->impl;
    content_clear(p);
    rf_features_opts o;
    feature_opts(cp, &o);
    int rc = rf_item_features_build(d->catalog, d->items, d->n_items, &o, &p->f, err);
    if (rc) return rc;
    p->pop = rf_malloc_array((size_t)d->n_items + 1, sizeof *p->pop);
    if (!p->pop) {
        content_clear(p);
        return rf_err_set(err, RF_ENOMEM, "content: out of memory");
    }
    for (int32_t i = 0; i < d->n_items; i++) {
        p->pop[i] = (float)rf_csr_row_len(d->iu, i);
        if (p->pop[i] > p->pop_max) p->pop_max = p->pop[i];
    }
    if (!d->catalog)
        rf_log(RF_LOG_WARN, "content.no_catalog",
               "msg=\"the dataset carries no catalog: content ranks by popularity\"");
    else if (p->f->n_bad_vectors > 0)
        rf_log(RF_LOG_WARN, "content.vectors",
               "good=%lld skipped=%lld dim=%d msg=\"item vectors that are not numbers or have "
               "another dimension were skipped\"",
               (long long)p->f->n_vectors, (long long)p->f->n_bad_vectors, (int)p->f->dim);
    rf_log(RF_LOG_INFO, "content.fit", "items=%d matched=%lld features=%d nnz=%lld dim=%d",
           (int)d->n_items, (long long)p->f->n_matched, (int)p->f->n_feats,
           (long long)p->f->x->nnz, (int)p->f->dim);
    return 0;
}

static void pop_fill(const rf_model *m, const content_impl *p, float *out) {
    const float inv = p->pop_max > 0 ? 1.0f / p->pop_max : 0.0f;
    for (int32_t j = 0; j < m->n_items; j++) out[j] = p->pop[j] * inv;
}

static int content_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                             rf_err *err) {
    const content_params *cp = m->params;
    const content_impl *p = m->impl;
    if (h->n == 0 || p->f->n_feats + p->f->dim == 0) {
        pop_fill(m, p, out);
        return 0;
    }
    rf_profile *prof;
    if (rf_profile_new(p->f, &prof)) return rf_err_set(err, RF_ENOMEM, "content: out of memory");
    double total = rf_profile_build(prof, p->f, h->n, h->items, cp->use_weights ? h->weights : NULL,
                                    h->ts, cp->half_life);
    if (!(total > 0)) {
        rf_profile_free(prof);
        pop_fill(m, p, out);
        return 0;
    }
    rf_profile_score(prof, p->f, out);
    rf_profile_free(prof);
    if (cp->pop_blend > 0 && p->pop_max > 0) {
        const float s = (float)(cp->pop_blend / p->pop_max);
        for (int32_t j = 0; j < m->n_items; j++) out[j] += s * p->pop[j];
    }
    return 0;
}

static int content_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const content_impl *p = m->impl;
    int rc = rf_writer_i64(w, m->n_items);
    rc |= rf_writer_put(w, p->pop, (size_t)m->n_items * sizeof *p->pop);
    rc |= rf_item_features_save(p->f, w);
    return rc ? rf_err_set(err, RF_EIO, "content: write failed") : 0;
}

static int content_load(rf_model *m, rf_reader *r, rf_err *err) {
    content_impl *p = m->impl;
    content_clear(p);
    int64_t n;
    int rc;
    if ((rc = rf_reader_i64(r, &n, err))) return rc;
    if (n != m->n_items || n * 4 > rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT, "content: payload has %lld items, header %d",
                          (long long)n, m->n_items);
    p->pop = rf_malloc_array((size_t)n + 1, sizeof *p->pop);
    if (!p->pop) return rf_err_set(err, RF_ENOMEM, "content: out of memory");
    if ((rc = rf_reader_get(r, p->pop, (size_t)n * sizeof *p->pop, err))) goto fail;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(p->pop[i]) || p->pop[i] < 0) {
            rc = rf_err_set(err, RF_EFORMAT, "content: bad popularity");
            goto fail;
        }
        if (p->pop[i] > p->pop_max) p->pop_max = p->pop[i];
    }
    if ((rc = rf_item_features_load(r, m->n_items, &p->f, err))) goto fail;
    return 0;
fail:
    content_clear(p);
    return rc;
}

const rf_model_ops rf_model_content_ops = {
    .name = "content",
    .help = "content-based: cosine of catalog features (category, brand, price, tags, text, "
            "vectors) with the user's profile",
    .params = content_defs,
    .params_size = sizeof(content_params),
    .create = content_create,
    .fit = content_fit,
    .score_all = content_score_all,
    .save = content_save,
    .load = content_load,
    .destroy = content_destroy,
    .params_check = content_check,
};
