/* model.c - the model registry and everything models share: creation by
 * name, parameters, fitting, top-k recommendation with history and filter
 * exclusion, the model file, and user histories from rows or raw events.
 *
 * DESIGN: a model file is one binfile (binfile.h: magic, version, CRC,
 * atomic rename) holding a common header - model name, parameters as
 * "k=v" text, data_opts, dimensions, both id maps - followed by the
 * model's own payload written by ops->save. The loader creates the model
 * by name, applies the parameter text through the model's own table (so
 * a file naming an unknown parameter is refused rather than guessed at),
 * and requires the payload to be consumed exactly. Id maps are stored as
 * strings in dense-id order, so reloading reproduces the same dense ids. */
#include "recfuse/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/sparse.h"
#include "recfuse/util.h"

/* ---- registry -------------------------------------------------------- */

/* Each model file defines one (or more) of these. */
extern const rf_model_ops rf_model_pop_ops;
extern const rf_model_ops rf_model_trending_ops;
extern const rf_model_ops rf_model_itemknn_ops;
extern const rf_model_ops rf_model_ials_ops;
extern const rf_model_ops rf_model_ease_ops;
extern const rf_model_ops rf_model_userknn_ops;
extern const rf_model_ops rf_model_mf_ops;
extern const rf_model_ops rf_model_svdpp_ops;
extern const rf_model_ops rf_model_bpr_ops;
extern const rf_model_ops rf_model_rules_ops;
extern const rf_model_ops rf_model_content_ops;
extern const rf_model_ops rf_model_fm_ops;
extern const rf_model_ops rf_model_coldstart_ops;
extern const rf_model_ops rf_model_fusion_ops;

static const rf_model_ops *const g_models[] = {
    &rf_model_pop_ops,
    &rf_model_trending_ops,
    &rf_model_itemknn_ops,
    &rf_model_ials_ops,
    &rf_model_ease_ops,
    &rf_model_userknn_ops,
    &rf_model_mf_ops,
    &rf_model_svdpp_ops,
    &rf_model_bpr_ops,
    &rf_model_rules_ops,
    &rf_model_content_ops,
    &rf_model_fm_ops,
    &rf_model_coldstart_ops,
    &rf_model_fusion_ops,
    NULL,
};

static const char *const g_names[] = {"pop", "trending", "itemknn", "ials", "ease", "userknn", "mf", "svdpp", "bpr", "rules", "content", "fm", "coldstart", "fusion", NULL};

const rf_model_ops *rf_model_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; g_models[i]; i++)
        if (strcmp(g_models[i]->name, name) == 0) return g_models[i];
    return NULL;
}

const char *const *rf_model_names(void) { return g_names; }

/* ---- life cycle ------------------------------------------------------ */

int rf_model_new(const char *name, rf_model **out, rf_err *err) {
    *out = NULL;
    const rf_model_ops *ops = rf_model_find(name);
    if (!ops) {
        char list[256] = "";
        for (int i = 0; g_names[i]; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, g_names[i], sizeof list - strlen(list) - 1);
        }
        return rf_err_set(err, RF_ENOTFOUND, "unknown model '%s' (known: %s)", name ? name : "",
                          list);
    }
    rf_model *m = rf_calloc(1, sizeof *m);
    if (!m) return rf_err_set(err, RF_ENOMEM, "model %s: out of memory", name);
    m->ops = ops;
    m->params = rf_calloc(1, ops->params_size ? ops->params_size : 1);
    if (!m->params) {
        rf_free(m);
        return rf_err_set(err, RF_ENOMEM, "model %s: out of memory", name);
    }
    if (ops->params) rf_params_defaults(ops->params, m->params);
    rf_dataset_opts_default(&m->data_opts);
    if (ops->create) {
        int rc = ops->create(m, err);
        if (rc) {
            rf_free(m->params);
            rf_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

void rf_model_free(rf_model *m) {
    if (!m) return;
    if (m->ops && m->ops->destroy) m->ops->destroy(m);
    rf_idmap_free(m->users);
    rf_idmap_free(m->items);
    rf_free(m->params);
    rf_free(m);
}

int rf_model_set_params(rf_model *m, const char *kvs, rf_err *err) {
    if (m->fitted)
        return rf_err_set(err, RF_ESTATE, "model %s: parameters cannot change after fitting",
                          m->ops->name);
    if (!kvs || !*kvs) return 0;
    if (!m->ops->params)
        return rf_err_set(err, RF_ENOTFOUND, "model %s has no parameters", m->ops->name);
    int rc = rf_params_apply(m->ops->params, m->params, kvs, err);
    if (rc) {
        if (err) rf_err_prefix(err, "model %s", m->ops->name);
        return rc;
    }
    if (m->ops->params_check) {
        const char *msg = m->ops->params_check(m->params);
        if (msg) return rf_err_set(err, RF_EINVAL, "model %s: %s", m->ops->name, msg);
    }
    return 0;
}

int rf_model_params_format(const rf_model *m, char *buf, size_t size) {
    if (size) buf[0] = 0;
    if (!m->ops->params) return 0;
    return rf_params_format(m->ops->params, m->params, buf, size);
}

int rf_model_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const char *name = m->ops->name;
    if (m->fitted) return rf_err_set(err, RF_ESTATE, "model %s: already fitted", name);
    if (!d || !d->ui || !d->iu || !d->users || !d->items)
        return rf_err_set(err, RF_EINVAL, "model %s: incomplete dataset", name);
    if (d->ui->nrows != d->n_users || d->ui->ncols != d->n_items || d->iu->nrows != d->n_items ||
        d->iu->ncols != d->n_users || rf_idmap_size(d->users) < d->n_users ||
        rf_idmap_size(d->items) < d->n_items)
        return rf_err_set(err, RF_EINVAL, "model %s: dataset dimensions disagree", name);
    if (m->ops->params_check) {
        const char *msg = m->ops->params_check(m->params);
        if (msg) return rf_err_set(err, RF_EINVAL, "model %s: %s", name, msg);
    }
    rf_idmap *users = NULL, *items = NULL;
    if (rf_idmap_clone(d->users, &users) || rf_idmap_clone(d->items, &items)) {
        rf_idmap_free(users);
        rf_idmap_free(items);
        return rf_err_set(err, RF_ENOMEM, "model %s: out of memory copying id maps", name);
    }
    m->users = users;
    m->items = items;
    m->n_users = d->n_users;
    m->n_items = d->n_items;
    if (m->data_opts.now == 0) m->data_opts.now = d->ts_max;
    double t0 = rf_mono();
    int rc = m->ops->fit(m, d, err);
    m->fit_seconds = rf_mono() - t0;
    if (rc) {
        rf_idmap_free(m->users);
        rf_idmap_free(m->items);
        m->users = m->items = NULL;
        m->n_users = m->n_items = 0;
        return rc;
    }
    m->fitted = 1;
    return 0;
}

/* ---- scoring --------------------------------------------------------- */

/* What every scoring entry point does first: refuse an unfitted model,
 * map a user outside [0, n_users) to -1 (unknown), and give a NULL history
 * as the empty one. 0 or RF_ESTATE. */
static const rf_hist empty_hist = {0, NULL, NULL, NULL};
static int call_args(const rf_model *m, int32_t *user, const rf_hist **h, rf_err *err) {
    if (!m->fitted) return rf_err_set(err, RF_ESTATE, "model %s: not fitted", m->ops->name);
    if (*user < -1 || *user >= m->n_users) *user = -1;
    if (!*h) *h = &empty_hist;
    return 0;
}

int rf_model_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                       rf_err *err) {
    int rc = call_args(m, &user, &h, err);
    return rc ? rc : m->ops->score_all(m, user, h, out, err);
}

int rf_model_score_items(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                         int32_t n, float *out, rf_err *err) {
    int rc = call_args(m, &user, &h, err);
    if (rc) return rc;
    int valid = 1;
    for (int32_t i = 0; i < n; i++)
        if (items[i] < 0 || items[i] >= m->n_items) valid = 0;
    if (m->ops->score_items && valid) return m->ops->score_items(m, user, h, items, n, out, err);
    float *all = rf_malloc_array((size_t)m->n_items, sizeof *all);
    if (!all) return rf_err_set(err, RF_ENOMEM, "score: out of memory");
    rc = m->ops->score_all(m, user, h, all, err);
    if (rc == 0)
        for (int32_t i = 0; i < n; i++)
            out[i] = items[i] >= 0 && items[i] < m->n_items ? all[items[i]] : NAN;
    rf_free(all);
    return rc;
}

int rf_model_score_sparse(const rf_model *m, int32_t user, const rf_hist *h, rf_sparse *acc,
                          rf_err *err) {
    int rc = call_args(m, &user, &h, err);
    if (rc) return rc;
    if (!m->ops->score_sparse)
        return rf_err_set(err, RF_EUNSUPPORTED, "model %s has no sparse scoring", m->ops->name);
    if (acc->n_items != m->n_items)
        return rf_err_set(err, RF_EINVAL, "sparse scores: accumulator of %d items, model has %d",
                          (int)acc->n_items, (int)m->n_items);
    return m->ops->score_sparse(m, user, h, acc, err);
}

int rf_model_set_init(rf_model *m, const rf_model *src, rf_err *err) {
    if (!m->ops->set_init)
        return rf_err_set(err, RF_EINVAL, "model %s has no warm start (ials, mf and bpr have)",
                          m->ops->name);
    if (m->fitted) return rf_err_set(err, RF_ESTATE, "warm start: the model is already fitted");
    return m->ops->set_init(m, src, err);
}

int rf_model_explain(const rf_model *m, int32_t user, const rf_hist *h, const int32_t *items,
                     int32_t n, rf_reason *out, rf_err *err) {
    int rc = call_args(m, &user, &h, err);
    if (rc) return rc;
    for (int32_t i = 0; i < n; i++)
        if (items[i] < 0 || items[i] >= m->n_items)
            return rf_err_set(err, RF_ERANGE, "explain: item id %d out of range [0, %d)",
                              (int)items[i], (int)m->n_items);
    if (m->ops->explain) return m->ops->explain(m, user, h, items, n, out, err);
    for (int32_t i = 0; i < n; i++) {
        rf_reason *r = &out[i];
        memset(r, 0, sizeof *r);
        snprintf(r->kind, sizeof r->kind, "model");
        snprintf(r->channel, sizeof r->channel, "%s", m->ops->name);
        r->ref_item = -1;
        snprintf(r->text, sizeof r->text, "recommended by %s", m->ops->name);
        r->n_contrib = 1;
        snprintf(r->contrib[0].channel, sizeof r->contrib[0].channel, "%s", m->ops->name);
        r->contrib[0].share = 1.0f;
    }
    return 0;
}

int rf_model_recommend(const rf_model *m, int32_t user, const rf_hist *h, int k,
                       const rf_filter *f, float *scratch, rf_scored *out, rf_err *err) {
    if (k <= 0) return 0;
    if (m->ops->recommend) {
        int rc = call_args(m, &user, &h, err);
        return rc ? rc : m->ops->recommend(m, user, h, k, f, out, err);
    }
    float *s = scratch;
    if (!s) {
        s = rf_malloc_array((size_t)m->n_items, sizeof *s);
        if (!s) return rf_err_set(err, RF_ENOMEM, "recommend: out of memory");
    }
    int rc = rf_model_score_all(m, user, h, s, err);
    if (rc == 0) {
        if (h && !(f && f->allow_history))
            for (int32_t t = 0; t < h->n; t++) {
                int32_t it = h->items[t];
                if (it >= 0 && it < m->n_items) s[it] = -INFINITY;
            }
        rc = rf_topk_select(s, m->n_items, k, f ? f->exclude : NULL, out);
    }
    if (!scratch) rf_free(s);
    return rc;
}

/* ---- histories ------------------------------------------------------- */

void rf_hist_from_row(const rf_dataset *d, int32_t user, rf_hist *h) {
    memset(h, 0, sizeof *h);
    if (!d || !d->ui || user < 0 || user >= d->ui->nrows) return;
    int64_t lo = d->ui->indptr[user], hi = d->ui->indptr[user + 1];
    h->n = (int32_t)(hi - lo);
    h->items = d->ui->indices + lo;
    h->weights = d->ui->data + lo;
}

void rf_hist_from_row_ts(const rf_dataset *d, int32_t user, int64_t *ts, rf_hist *h) {
    rf_hist_from_row(d, user, h);
    if (h->n == 0 || !d->ui_ts || !ts) return;
    const uint32_t *rel = d->ui_ts + d->ui->indptr[user];
    for (int32_t k = 0; k < h->n; k++) ts[k] = d->ts_base + (int64_t)rel[k];
    h->ts = ts;
}

typedef struct hev {
    int32_t item; /* model item id */
    int64_t ts;
    int64_t idx;  /* position in the log */
    double w;
} hev;

static int cmp_hev(const void *pa, const void *pb) {
    const hev *a = pa, *b = pb;
    if (a->item != b->item) return a->item < b->item ? -1 : 1;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Model item id of event i: through the string maps, or, when r2i is not
 * NULL, ev->item[i] is a store item row id looked up in r2i[0..nr). */
static int32_t hist_item(const rf_model *m, const rf_events *ev, int64_t i, const int32_t *r2i,
                         int64_t nr) {
    int32_t eid = ev->item[i];
    if (r2i) return eid >= 0 && eid < nr ? r2i[eid] : -1;
    if (eid < 0 || eid >= rf_idmap_size(ev->items)) return -1;
    return rf_idmap_find(m->items, rf_idmap_str(ev->items, eid), rf_idmap_len(ev->items, eid));
}

static int hist_build(const rf_model *m, const rf_events *ev, const int32_t *r2i, int64_t nr,
                      int32_t **items, float **weights, int64_t **ts, int32_t *n, rf_err *err) {
    *items = NULL;
    if (weights) *weights = NULL;
    if (ts) *ts = NULL;
    *n = 0;
    if ((!r2i && !m->items) || !ev || ev->n == 0) return 0;
    hev *e = rf_malloc_array((size_t)ev->n, sizeof *e);
    if (!e) return rf_err_set(err, RF_ENOMEM, "history: out of memory");
    const rf_dataset_opts *o = &m->data_opts;
    int64_t ne = 0, newest = INT64_MIN;
    for (int64_t i = 0; i < ev->n; i++) {
        int32_t id = hist_item(m, ev, i, r2i, nr);
        if (id < 0 || id >= m->n_items) continue;
        int type = ev->type[i] < RF_EV_NTYPES ? ev->type[i] : RF_EV_CUSTOM;
        double w = o->type_weight[type];
        if (w == 0) continue; /* as rf_dataset_build: zero-weight types are dropped */
        if (o->use_value) w *= ev->value[i];
        e[ne].item = id;
        e[ne].ts = ev->ts[i];
        e[ne].idx = i;
        e[ne].w = w;
        if (ev->ts[i] > newest) newest = ev->ts[i];
        ne++;
    }
    if (ne == 0) {
        rf_free(e);
        return 0;
    }
    if (o->half_life_days > 0) {
        int64_t now = o->now > newest ? o->now : newest;
        double hl = o->half_life_days * 86400.0;
        for (int64_t i = 0; i < ne; i++)
            if (now > e[i].ts) e[i].w *= exp2(-(double)(now - e[i].ts) / hl);
    }
    qsort(e, (size_t)ne, sizeof *e, cmp_hev);
    int32_t nu = 0;
    for (int64_t i = 0; i < ne; i++)
        if (i == 0 || e[i].item != e[i - 1].item) nu++;
    int32_t *it = rf_malloc_array((size_t)nu, sizeof *it);
    float *wt = rf_malloc_array((size_t)nu, sizeof *wt);
    int64_t *tt = rf_malloc_array((size_t)nu, sizeof *tt);
    if (!it || !wt || !tt) {
        rf_free(e);
        rf_free(it);
        rf_free(wt);
        rf_free(tt);
        return rf_err_set(err, RF_ENOMEM, "history: out of memory");
    }
    /* Fold in double like rf_dataset_build. Events of one item arrive
     * oldest first (ties by log order), so LAST is the last one seen. */
    int32_t o_ = -1;
    double acc = 0;
    for (int64_t i = 0; i < ne; i++) {
        if (i == 0 || e[i].item != e[i - 1].item) {
            if (o_ >= 0) wt[o_] = o->binary ? 1.0f : (float)acc;
            o_++;
            it[o_] = e[i].item;
            acc = e[i].w;
        } else if (o->fold == RF_FOLD_SUM) {
            acc += e[i].w;
        } else if (o->fold == RF_FOLD_MAX) {
            if (e[i].w > acc) acc = e[i].w;
        } else {
            acc = e[i].w;
        }
        tt[o_] = e[i].ts;
    }
    wt[o_] = o->binary ? 1.0f : (float)acc;
    rf_free(e);
    *items = it;
    *n = nu;
    if (weights)
        *weights = wt;
    else
        rf_free(wt);
    if (ts)
        *ts = tt;
    else
        rf_free(tt);
    return 0;
}

int rf_hist_from_events(const rf_model *m, const rf_events *ev, int32_t **items, float **weights,
                        int64_t **ts, int32_t *n, rf_err *err) {
    return hist_build(m, ev, NULL, 0, items, weights, ts, n, err);
}

int rf_hist_from_rows(const rf_model *m, const rf_events *ev, const int32_t *r2i, int64_t nr,
                      int32_t **items, float **weights, int64_t **ts, int32_t *n, rf_err *err) {
    static const int32_t none = -1;
    return hist_build(m, ev, r2i ? r2i : &none, r2i ? nr : 0, items, weights, ts, n, err);
}

/* ---- model files ----------------------------------------------------- */

#define MAX_STR (1u << 20) /* longest id, name or parameter text accepted */

static int write_map(rf_writer *w, const rf_idmap *map) {
    int32_t n = rf_idmap_size(map);
    int rc = rf_writer_i64(w, n);
    for (int32_t i = 0; i < n && rc == 0; i++) rc = rf_writer_str(w, rf_idmap_str(map, i));
    return rc;
}

static int read_map(rf_reader *r, rf_idmap **out, int32_t min_size, const char *what,
                    rf_err *err) {
    int64_t n;
    int rc = rf_reader_i64(r, &n, err);
    if (rc) return rc;
    /* every string costs at least its 4-byte length */
    if (n < min_size || n > INT32_MAX || n * 4 > rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT, "%s map: bad size %lld", what, (long long)n);
    rf_idmap *map;
    if (rf_idmap_new(&map)) return rf_err_set(err, RF_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        char *s;
        rc = rf_reader_str(r, &s, MAX_STR, err);
        if (rc) goto fail;
        int32_t id;
        int added;
        rc = rf_idmap_put(map, s, strlen(s), &id, &added);
        rf_free(s);
        if (rc) {
            rf_err_set(err, rc, "out of memory");
            goto fail;
        }
        if (!added || id != i) {
            rc = rf_err_set(err, RF_EFORMAT, "%s map: duplicate id", what);
            goto fail;
        }
    }
    *out = map;
    return 0;
fail:
    rf_idmap_free(map);
    return rc;
}

static int write_opts(rf_writer *w, const rf_dataset_opts *o) {
    int rc = rf_writer_u32(w, RF_EV_NTYPES);
    for (int t = 0; t < RF_EV_NTYPES; t++) rc |= rf_writer_f64(w, o->type_weight[t]);
    rc |= rf_writer_u32(w, (uint32_t)o->use_value);
    rc |= rf_writer_f64(w, o->half_life_days);
    rc |= rf_writer_i64(w, o->now);
    rc |= rf_writer_u32(w, (uint32_t)o->fold);
    rc |= rf_writer_u32(w, (uint32_t)o->binary);
    return rc ? RF_EIO : 0;
}

static int read_opts(rf_reader *r, rf_dataset_opts *o, rf_err *err) {
    uint32_t nt, u;
    int rc;
    if ((rc = rf_reader_u32(r, &nt, err))) return rc;
    if (nt != RF_EV_NTYPES)
        return rf_err_set(err, RF_EFORMAT, "data options: %u event types, expected %d", nt,
                          RF_EV_NTYPES);
    for (int t = 0; t < RF_EV_NTYPES; t++) {
        double v;
        if ((rc = rf_reader_f64(r, &v, err))) return rc;
        o->type_weight[t] = (float)v;
    }
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    o->use_value = u != 0;
    if ((rc = rf_reader_f64(r, &o->half_life_days, err))) return rc;
    if ((rc = rf_reader_i64(r, &o->now, err))) return rc;
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    if (u > RF_FOLD_LAST) return rf_err_set(err, RF_EFORMAT, "data options: bad fold %u", u);
    o->fold = (rf_fold)u;
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    o->binary = u != 0;
    return 0;
}

int rf_model_write(const rf_model *m, rf_writer *w, rf_err *err) {
    if (!m->fitted) return rf_err_set(err, RF_ESTATE, "model %s: not fitted", m->ops->name);
    char params[4096];
    rf_model_params_format(m, params, sizeof params);
    int rc = rf_writer_str(w, m->ops->name);
    rc |= rf_writer_str(w, params);
    rc |= write_opts(w, &m->data_opts);
    rc |= rf_writer_i64(w, m->n_users);
    rc |= rf_writer_i64(w, m->n_items);
    rc |= rf_writer_f64(w, m->fit_seconds);
    rc |= write_map(w, m->users);
    rc |= write_map(w, m->items);
    if (rc) return rf_err_set(err, RF_EIO, "model %s: write failed", m->ops->name);
    return m->ops->save(m, w, err);
}

int rf_model_save(const rf_model *m, const char *path, rf_err *err) {
    if (!m->fitted) return rf_err_set(err, RF_ESTATE, "model %s: not fitted", m->ops->name);
    rf_writer *w;
    int rc = rf_writer_open(path, RF_MODEL_MAGIC, RF_MODEL_VERSION, &w, err);
    if (rc) return rc;
    rc = rf_model_write(m, w, err);
    if (rc) {
        rf_writer_abort(w);
        if (rc == RF_EIO && err) rf_err_prefix(err, "%s", path);
        return rc;
    }
    return rf_writer_commit(w, err);
}

int rf_model_read(rf_reader *r, rf_model **out, rf_err *err) {
    *out = NULL;
    char *name = NULL, *params = NULL;
    rf_model *m = NULL;
    int rc;
    if ((rc = rf_reader_str(r, &name, 64, err))) goto fail;
    if (!rf_model_find(name)) {
        rc = rf_err_set(err, RF_EFORMAT, "unknown model type '%s'", name);
        goto fail;
    }
    if ((rc = rf_model_new(name, &m, err))) goto fail;
    if ((rc = rf_reader_str(r, &params, MAX_STR, err))) goto fail;
    if ((rc = rf_model_set_params(m, params, err))) {
        char why[RF_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        rc = rf_err_set(err, RF_EFORMAT, "bad parameters in file: %s", why);
        goto fail;
    }
    if ((rc = read_opts(r, &m->data_opts, err))) goto fail;
    int64_t nu, ni;
    if ((rc = rf_reader_i64(r, &nu, err)) || (rc = rf_reader_i64(r, &ni, err))) goto fail;
    if (nu < 0 || ni < 0 || nu > INT32_MAX || ni > INT32_MAX) {
        rc = rf_err_set(err, RF_EFORMAT, "bad dimensions %lld x %lld", (long long)nu,
                        (long long)ni);
        goto fail;
    }
    m->n_users = (int32_t)nu;
    m->n_items = (int32_t)ni;
    if ((rc = rf_reader_f64(r, &m->fit_seconds, err))) goto fail;
    if ((rc = read_map(r, &m->users, m->n_users, "user", err))) goto fail;
    if ((rc = read_map(r, &m->items, m->n_items, "item", err))) goto fail;
    if ((rc = m->ops->load(m, r, err))) goto fail;
    m->fitted = 1;
    rf_free(name);
    rf_free(params);
    *out = m;
    return 0;
fail:
    rf_free(name);
    rf_free(params);
    rf_model_free(m);
    return rc;
}

int rf_model_load(const char *path, rf_model **out, rf_err *err) {
    *out = NULL;
    uint32_t version;
    rf_reader *r;
    int rc = rf_reader_open(path, RF_MODEL_MAGIC, RF_MODEL_VERSION, &version, &r, err);
    if (rc) return rc;
    rf_model *m = NULL;
    if ((rc = rf_model_read(r, &m, err))) goto fail;
    if (rf_reader_remaining(r) != 0) {
        rc = rf_err_set(err, RF_EFORMAT, "%lld unexpected bytes after the %s payload",
                        (long long)rf_reader_remaining(r), m->ops->name);
        goto fail;
    }
    rf_reader_close(r);
    *out = m;
    return 0;
fail:
    if (err && !strstr(err->msg, path)) {
        int code = err->code; /* keep the code, name the file */
        rf_err_prefix(err, "%s", path);
        err->code = code;
    }
    rf_reader_close(r);
    rf_model_free(m);
    return rc;
}
