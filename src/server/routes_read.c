/* routes_read.c - the read routes: ranked lists, similar items,
 * bought-together, popular and trending, health and metrics.
 *
 * Every list reads one snapshot of the models (models.c) plus the live
 * state (live.c) under its shared lock, so an event committed before the
 * request is reflected: the user's history is read from the store (the
 * item leaves the list, and a user who posted events is scored from that
 * history - factor models fold the vector in - instead of the trained
 * vector), live popularity/trending increments are added to the trained
 * scores, and live co-occurrences to the rules' counts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/features.h"
#include "recfuse/itemknn.h"
#include "recfuse/mem.h"
#include "recfuse/rules.h"
#include "recfuse/util.h"
#include "recfuse/version.h"
#include "server/srv_int.h"

/* 503 naming the command that trains the model a role needs. */
static int no_model(struct MHD_Connection *c, srv_req *r, rf_server *s, srv_mrole role) {
    char path[4096], name[64];
    rf_err err;
    rf_err_clear(&err);
    if (srv_model_path(s, role, path, sizeof path, name, sizeof name, &err) == 0)
        rf_err_set(&err, RF_ENOTFOUND, "the %s model appeared after the last load; retry shortly",
                   name);
    return srv_reply_error(c, r, 503, "model_unavailable", "%s", err.msg);
}

/* Catalog filter parameters shared by the list routes. 1 if a reply was sent. */
typedef struct filt {
    rf_item_filter_spec spec;
    uint8_t *catok; /* per category id: matches spec.category */
} filt;

static int read_filter(struct MHD_Connection *c, srv_req *r, filt *f) {
    rf_item_filter_spec_init(&f->spec);
    f->catok = NULL;
    f->spec.category = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "category");
    if (srv_param_num(c, r, "min_price", NAN, 0, 1e300, &f->spec.min_price) ||
        srv_param_num(c, r, "max_price", NAN, 0, 1e300, &f->spec.max_price) ||
        srv_param_bool(c, r, "in_stock", &f->spec.in_stock))
        return 1;
    if (f->spec.category && !*f->spec.category) f->spec.category = NULL;
    if (!isnan(f->spec.min_price) && !isnan(f->spec.max_price) &&
        f->spec.min_price > f->spec.max_price) {
        srv_reply_error(c, r, 400, "bad_parameter", "parameter 'min_price' (%g) is above 'max_price' (%g)",
                        f->spec.min_price, f->spec.max_price);
        return 1;
    }
    return 0;
}

/* Per-category match flags (caller holds the live lock). 0 or RF_ENOMEM. */
static int filter_prepare(filt *f, const srv_live *L) {
    if (!f->spec.category) return 0;
    int32_t n = rf_idmap_size(L->cats);
    f->catok = rf_malloc((size_t)n + 1);
    if (!f->catok) return RF_ENOMEM;
    for (int32_t i = 0; i < n; i++) f->catok[i] = (uint8_t)rf_category_match(rf_idmap_str(L->cats, i), f->spec.category);
    return 0;
}

/* 1 if catalog item cid passes (caller holds the live lock). */
static int filter_pass(const filt *f, const srv_live *L, int32_t cid) {
    const rf_item_filter_spec *s = &f->spec;
    if (s->category && (L->cat[cid] < 0 || !f->catok[L->cat[cid]])) return 0;
    double p = L->price[cid];
    if (!isnan(s->min_price) && !(p >= s->min_price)) return 0;
    if (!isnan(s->max_price) && !(p <= s->max_price)) return 0;
    if (s->in_stock && !(L->stock[cid] > 0)) return 0;
    return 1;
}

static json_t *reason_json(const rf_model *m, const rf_reason *re) {
    json_t *contrib = json_array();
    for (int i = 0; i < re->n_contrib; i++)
        json_array_append_new(contrib, json_pack("{s:s,s:f}", "channel", re->contrib[i].channel,
                                                 "share", (double)re->contrib[i].share));
    json_t *ref = re->ref_item >= 0 && re->ref_item < m->n_items
                      ? json_string(rf_idmap_str(m->items, re->ref_item))
                      : json_null();
    return json_pack("{s:s,s:s,s:s,s:o,s:o}", "kind", re->kind, "channel", re->channel, "text",
                     re->text, "ref_item", ref, "contrib", contrib);
}

/* ---- GET /v1/recommend/{user} ----------------------------------------- */

/* Mark in mask the model items of the comma-separated ids in `list`. */
static void mark_ids(const rf_model *m, const char *list, uint8_t *mask) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int32_t id = n ? rf_idmap_find(m->items, p, n) : -1;
        if (id >= 0 && id < m->n_items) mask[id] = 1;
        if (!e) break;
        p = e + 1;
    }
}

/* A recommend request: what its reply needs. */
typedef struct srv_rec {
    srv_sjob job;
    srv_snap *sn;
    srv_ctx *ctx;
    const char *user;
    int k, explain;
    int32_t uid, nh;
    int32_t *items;
    float *weights;
    int64_t *ts;
} srv_rec;

static void rec_clear(rf_server *s, srv_rec *q) {
    rf_free(q->items);
    rf_free(q->weights);
    rf_free(q->ts);
    srv_ctx_put(s, q->ctx);
    srv_snap_release(q->sn);
}

/* Explanations and the reply, from q->job.out[0 .. n_out). */
static int rec_reply(struct MHD_Connection *c, srv_req *r, srv_rec *q) {
    const srv_model *sm = &q->sn->mod[M_MAIN];
    const rf_model *m = sm->m;
    int n = q->job.n_out;
    const rf_scored *top = q->job.out;
    rf_reason *reasons = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (q->job.rc && q->job.err.code) return srv_reply_rferr(c, r, &q->job.err);
    if (q->job.rc) return srv_reply_error(c, r, 500, "internal", "scoring failed: %s", rf_strerror(q->job.rc));
    if (q->explain && n > 0) {
        int32_t *ids = rf_malloc_array((size_t)n, sizeof *ids);
        reasons = rf_calloc((size_t)n, sizeof *reasons);
        int erc = ids && reasons ? 0 : RF_ENOMEM;
        for (int i = 0; erc == 0 && i < n; i++) ids[i] = top[i].id;
        rf_hist h = {q->nh, q->items, q->weights, q->ts};
        if (erc == 0) erc = rf_model_explain(m, q->uid, &h, ids, n, reasons, &err);
        rf_free(ids);
        if (erc) {
            rf_free(reasons);
            if (!err.code) rf_err_set(&err, erc, "out of memory");
            return srv_reply_rferr(c, r, &err);
        }
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s,s:f}", "item", rf_idmap_str(m->items, top[i].id), "score",
                              (double)top[i].score);
        if (reasons) json_object_set_new(o, "explain", reason_json(m, &reasons[i]));
        json_array_append_new(arr, o);
    }
    rf_free(reasons);
    json_t *j = json_pack("{s:s,s:s,s:I,s:b,s:i,s:o}", "user", q->user, "model", sm->name,
                          "model_version", (json_int_t)q->sn->version, "cold_start",
                          q->nh == 0 && q->uid < 0, "history", (int)q->nh, "items", arr);
    return srv_reply_json(c, r, 200, j);
}

int srv_get_recommend(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *user) {
    if (srv_check_params(c, r, "k,category,min_price,max_price,in_stock,exclude,explain"))
        return MHD_YES;
    int64_t k;
    int explain;
    filt f;
    if (srv_param_int(c, r, "k", 10, 1, 1000, &k) || srv_param_bool(c, r, "explain", &explain) ||
        read_filter(c, r, &f))
        return MHD_YES;
    const char *exclude = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "exclude");
    int ret;
    rf_err err;
    rf_err_clear(&err);
    srv_rec rec = {.user = user}, *q = &rec;
    q->k = (int)k;
    q->explain = explain;
    q->sn = srv_snap_acquire(s);
    const srv_model *sm = &q->sn->mod[M_MAIN];
    const rf_model *m = sm->m;
    if (!m) {
        ret = no_model(c, r, s, M_MAIN);
        goto out;
    }
    srv_ctx *ctx = q->ctx = srv_ctx_get(s, &err);
    if (!ctx || srv_ctx_reserve(ctx, (size_t)m->n_items + 1, (int)k)) {
        ret = srv_reply_error(c, r, 500, "internal", "out of memory");
        goto out;
    }
    ctx->ev->n = 0;
    /* the history by store row id, mapped through the snapshot's r2m */
    const int32_t *r2m = q->sn->r2m;
    const int64_t nr2m = q->sn->nr2m;
    if (rf_store_user_event_rows(ctx->st, user, ctx->ev, &err) ||
        rf_hist_from_rows(m, ctx->ev, r2m, nr2m, &q->items, &q->weights, &q->ts, &q->nh, &err)) {
        ret = srv_reply_rferr(c, r, &err);
        goto out;
    }
    uint8_t *mask = ctx->mask;
    memset(mask, 0, (size_t)m->n_items);
    for (int64_t i = 0; r2m && i < ctx->ev->n; i++) { /* every item with any event, as the CLI */
        int32_t rid = ctx->ev->item[i];
        int32_t id = rid >= 0 && rid < nr2m ? r2m[rid] : -1;
        if (id >= 0 && id < m->n_items) mask[id] = 1;
    }
    if (exclude) mark_ids(m, exclude, mask);
    q->uid = rf_idmap_find(m->users, user, strlen(user));
    /* No stored events: the user was forgotten (DELETE) since the model was
     * trained - served as unknown, never from the trained row, also after a
     * restart. */
    if (q->uid >= m->n_users || ctx->ev->n == 0) q->uid = -1;
    srv_live *L = &s->live;
    pthread_rwlock_rdlock(&L->lock);
    int32_t luid = rf_idmap_find(L->users, user, strlen(user));
    if (luid >= 0 && L->ufold[luid]) q->uid = -1; /* fold in from the current history */
    int frc = 0;
    if (rf_item_filter_active(&f.spec) && (frc = filter_prepare(&f, L)) == 0)
        for (int32_t i = 0; i < m->n_items; i++)
            if (!filter_pass(&f, L, sm->m2c[i])) mask[i] = 1;
    pthread_rwlock_unlock(&L->lock);
    rf_free(f.catok);
    if (frc) {
        ret = srv_reply_error(c, r, 500, "internal", "out of memory");
        goto out;
    }
    rf_hist h = {q->nh, q->items, q->weights, q->ts};
    q->job = (srv_sjob){.f = &q->sn->fac, .ix = &q->sn->fac_ix, .vec = ctx->vec, .m = m,
                        .user = q->uid, .h = h, .scores = ctx->scores, .mask = mask,
                        .k = (int)k, .out = ctx->top};
    if (q->sn->has_fac) { /* factor model: the pruned exact scan of scorer.c */
        int rc = rf_factors_user_vector(m, &q->sn->fac, q->uid, &h, ctx->vec, NULL);
        if (rc < 0) {
            ret = srv_reply_error(c, r, 500, "internal", "fold-in failed: %s", rf_strerror(rc));
            goto out;
        }
        if (rc == 1) q->job.m = NULL; /* the scan; else the model's own fallback */
    }
    /* ranked right here, on the connection's own thread (server.c) */
    srv_score_job(&q->job);
    if (!q->job.m) {
        atomic_fetch_add(&s->fac_lists, 1);
        atomic_fetch_add(&s->fac_scanned, (uint64_t)q->job.scanned);
    }
    ret = rec_reply(c, r, q);
out:
    rec_clear(s, q);
    return ret;
}

/* ---- GET /v1/similar/{item} ------------------------------------------- */

int srv_get_similar(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *item) {
    int64_t k;
    if (srv_check_params(c, r, "k") || srv_param_int(c, r, "k", 10, 1, 1000, &k)) return MHD_YES;
    srv_snap *sn = srv_snap_acquire(s);
    const srv_model *sm = &sn->mod[M_SIMILAR];
    int ret;
    if (!sm->m) {
        ret = no_model(c, r, s, M_SIMILAR);
        goto out;
    }
    int32_t id = rf_idmap_find(sm->m->items, item, strlen(item));
    if (id < 0 || id >= sm->m->n_items) {
        ret = srv_reply_error(c, r, 404, "not_found",
                              "item '%s' is not known to the %s model (new items get neighbours at "
                              "the next retrain)",
                              item, sm->name);
        goto out;
    }
    rf_scored *top = rf_malloc_array((size_t)k, sizeof *top);
    rf_err err;
    rf_err_clear(&err);
    int n = top ? rf_itemknn_similar(sm->m, id, (int)k, top, &err) : RF_ENOMEM;
    if (n < 0) {
        rf_free(top);
        if (!err.code) rf_err_set(&err, n, "%s", rf_strerror(n));
        ret = srv_reply_rferr(c, r, &err);
        goto out;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:f}", "item", rf_idmap_str(sm->m->items, top[i].id),
                                             "score", (double)top[i].score));
    rf_free(top);
    ret = srv_reply_json(c, r, 200,
                         json_pack("{s:s,s:s,s:I,s:o}", "item", item, "model", sm->name,
                                   "model_version", (json_int_t)sn->version, "items", arr));
out:
    srv_snap_release(sn);
    return ret;
}

/* ---- GET /v1/bought-together/{item} ----------------------------------- */

typedef struct cand {
    int32_t cid;
    int64_t model_count, live_count;
    double confidence, lift; /* NAN when the model has no rule */
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    int64_t tx = x->model_count + x->live_count, ty = y->model_count + y->live_count;
    if (tx != ty) return tx > ty ? -1 : 1;
    double cx = isnan(x->confidence) ? -1 : x->confidence, cy = isnan(y->confidence) ? -1 : y->confidence;
    if (cx != cy) return cx > cy ? -1 : 1;
    return x->cid < y->cid ? -1 : x->cid > y->cid;
}

int srv_get_together(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *item) {
    int64_t k;
    if (srv_check_params(c, r, "k") || srv_param_int(c, r, "k", 10, 1, 1000, &k)) return MHD_YES;
    srv_snap *sn = srv_snap_acquire(s);
    const srv_model *sm = &sn->mod[M_TOGETHER];
    srv_live *L = &s->live;
    rf_rule *rules = NULL;
    int64_t nr = 0;
    cand *cs = NULL;
    int ret;
    rf_err err;
    rf_err_clear(&err);
    if (!sm->m) {
        ret = no_model(c, r, s, M_TOGETHER);
        goto out;
    }
    int32_t id = rf_idmap_find(sm->m->items, item, strlen(item));
    if (id >= sm->m->n_items) id = -1;
    if (id >= 0 && rf_rules_model_list(sm->m, id, RF_RULES_BY_SUPPORT, &rules, &nr, &err)) {
        ret = srv_reply_rferr(c, r, &err);
        goto out;
    }
    pthread_rwlock_rdlock(&L->lock);
    int32_t cid = rf_idmap_find(L->items, item, strlen(item));
    if (cid < 0) {
        pthread_rwlock_unlock(&L->lock);
        ret = srv_reply_error(c, r, 404, "not_found", "item '%s' is not in the catalog", item);
        goto out;
    }
    const srv_colist *co = &L->co[cid];
    size_t nc = 0;
    cs = rf_malloc_array((size_t)nr + (size_t)co->n + 1, sizeof *cs);
    if (!cs) {
        pthread_rwlock_unlock(&L->lock);
        ret = srv_reply_error(c, r, 500, "internal", "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < nr; i++) {
        const rf_rule *ru = &rules[i];
        if (ru->ante[0] != id || ru->ante[1] != -1) continue; /* single-item antecedents */
        cs[nc++] = (cand){sm->m2c[ru->cons], ru->count, 0, ru->confidence, ru->lift};
    }
    size_t from_model = nc;
    for (int32_t q = 0; q < co->n; q++) {
        size_t x = 0;
        while (x < from_model && cs[x].cid != co->p[q].item) x++;
        if (x < from_model)
            cs[x].live_count += co->p[q].count;
        else
            cs[nc++] = (cand){co->p[q].item, 0, co->p[q].count, NAN, NAN};
    }
    qsort(cs, nc, sizeof *cs, cand_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < nc && i < (size_t)k; i++) {
        json_t *o = json_pack("{s:s,s:I,s:I}", "item", rf_idmap_str(L->items, cs[i].cid), "count",
                              (json_int_t)(cs[i].model_count + cs[i].live_count), "live_count",
                              (json_int_t)cs[i].live_count);
        json_object_set_new(o, "confidence", isnan(cs[i].confidence) ? json_null() : json_real(cs[i].confidence));
        json_object_set_new(o, "lift", isnan(cs[i].lift) ? json_null() : json_real(cs[i].lift));
        json_array_append_new(arr, o);
    }
    pthread_rwlock_unlock(&L->lock);
    ret = srv_reply_json(c, r, 200,
                         json_pack("{s:s,s:s,s:I,s:o}", "item", item, "model", sm->name,
                                   "model_version", (json_int_t)sn->version, "items", arr));
out:
    rf_free(rules);
    rf_free(cs);
    srv_snap_release(sn);
    return ret;
}

/* ---- GET /v1/popular, /v1/trending ------------------------------------ */

/* The list as JSON, or NULL after replying with an error. */
static json_t *popular_list(rf_server *s, srv_snap *sn, struct MHD_Connection *c, srv_req *r,
                            int trending, int k, filt *f) {
    srv_mrole role = trending ? M_TREND : (sn->mod[M_POP].m ? M_POP : M_MAIN);
    const srv_model *sm = &sn->mod[role];
    const float *base = trending ? sn->trend_base : sn->pop_base;
    if (!sm->m || !base) {
        no_model(c, r, s, trending ? M_TREND : M_POP);
        return NULL;
    }
    rf_err err;
    rf_err_clear(&err);
    srv_ctx *ctx = srv_ctx_get(s, &err);
    if (!ctx) {
        srv_reply_rferr(c, r, &err);
        return NULL;
    }
    srv_live *L = &s->live;
    pthread_rwlock_rdlock(&L->lock);
    int32_t n = rf_idmap_size(L->items);
    if (srv_ctx_reserve(ctx, (size_t)n + 1, k) || filter_prepare(f, L)) {
        pthread_rwlock_unlock(&L->lock);
        srv_ctx_put(s, ctx);
        srv_reply_error(c, r, 500, "internal", "out of memory");
        return NULL;
    }
    float *sc = ctx->scores;
    memcpy(sc, trending ? L->trend : L->pop, (size_t)n * sizeof *sc);
    for (int32_t i = 0; i < sm->m->n_items; i++)
        if (isfinite(base[i])) sc[sm->m2c[i]] += base[i];
    int active = rf_item_filter_active(&f->spec);
    for (int32_t i = 0; i < n; i++) {
        if (!(sc[i] > 0)) sc[i] = -INFINITY; /* never seen: not popular */
        ctx->mask[i] = (uint8_t)(active && !filter_pass(f, L, i));
    }
    int got = rf_topk_select(sc, n, k, ctx->mask, ctx->top);
    json_t *arr = json_array();
    for (int i = 0; i < got; i++)
        json_array_append_new(arr, json_pack("{s:s,s:f}", "item", rf_idmap_str(L->items, ctx->top[i].id),
                                             "score", (double)ctx->top[i].score));
    pthread_rwlock_unlock(&L->lock);
    srv_ctx_put(s, ctx);
    return json_pack("{s:s,s:I,s:o}", "model", sm->name, "model_version", (json_int_t)sn->version,
                     "items", arr);
}

/* Count query arguments. */
static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
    (*(int *)cls)++;
    return MHD_YES;
}

int srv_get_popular(rf_server *s, struct MHD_Connection *c, srv_req *r, int trending) {
    int64_t k;
    filt f;
    if (srv_check_params(c, r, "k,category,min_price,max_price,in_stock") ||
        srv_param_int(c, r, "k", 10, 1, 1000, &k) || read_filter(c, r, &f))
        return MHD_YES;
    int nargs = 0;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg, &nargs);
    srv_snap *sn = srv_snap_acquire(s);
    uint64_t gen = atomic_load(&s->live.gen);
    int t = trending ? 1 : 0, ret;
    /* The list without parameters is the same for everyone until the next
     * event, catalog change or reload: it is served from a cached body. */
    if (nargs == 0) {
        pthread_mutex_lock(&s->cache_lock);
        if (s->cache_body[t] && s->cache_snap[t] == sn->version && s->cache_gen[t] == gen) {
            ret = srv_reply_text(c, r, 200, "application/json", s->cache_body[t], s->cache_len[t], 1);
            pthread_mutex_unlock(&s->cache_lock);
            srv_snap_release(sn);
            return ret;
        }
        pthread_mutex_unlock(&s->cache_lock);
    }
    json_t *j = popular_list(s, sn, c, r, trending, (int)k, &f);
    rf_free(f.catok);
    if (!j) {
        srv_snap_release(sn);
        return MHD_YES;
    }
    char *txt = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(j);
    size_t n = txt ? strlen(txt) : 0;
    char *body = txt ? rf_malloc(n + 2) : NULL;
    if (!body) {
        free(txt);
        srv_snap_release(sn);
        return srv_reply_error(c, r, 500, "internal", "out of memory");
    }
    memcpy(body, txt, n);
    body[n] = '\n';
    body[n + 1] = 0;
    free(txt);
    if (nargs == 0) {
        pthread_mutex_lock(&s->cache_lock);
        rf_free(s->cache_body[t]);
        s->cache_body[t] = rf_strndup(body, n + 1);
        s->cache_len[t] = s->cache_body[t] ? n + 1 : 0;
        s->cache_snap[t] = sn->version;
        s->cache_gen[t] = gen;
        pthread_mutex_unlock(&s->cache_lock);
    }
    srv_snap_release(sn);
    return srv_reply_text(c, r, 200, "application/json", body, n + 1, 0);
}

/* ---- GET /health, /metrics -------------------------------------------- */

int srv_get_health(rf_server *s, struct MHD_Connection *c, srv_req *r) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    srv_snap *sn = srv_snap_acquire(s);
    json_t *models = json_object();
    static const char *const roles[M_NROLES] = {"recommend", "similar", "bought_together",
                                                "popular", "trending"};
    for (int k = 0; k < M_NROLES; k++)
        json_object_set_new(models, roles[k], sn->mod[k].m ? json_string(sn->mod[k].name) : json_null());
    int stopping = atomic_load(&s->stopping);
    const char *status = stopping ? "stopping" : sn->mod[M_MAIN].m ? "ok" : "no_model";
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:I}", "status", status, "version", RF_VERSION,
                          "uptime_s", (json_int_t)(rf_now() - s->started_at), "model_version",
                          (json_int_t)sn->version, "model_loaded_s",
                          (json_int_t)(rf_now() - sn->loaded_at), "models", models,
                          "events_queued", (json_int_t)(s->writer ? srv_writer_queued(s->writer) : 0));
    srv_snap_release(sn);
    return srv_reply_json(c, r, stopping ? 503 : 200, j);
}

int srv_get_metrics(rf_server *s, struct MHD_Connection *c, srv_req *r) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    srv_snap *sn = srv_snap_acquire(s);
    size_t len = 0;
    int conns[SRV_LOOPS_MAX];
    for (int i = 0; i < s->nloops; i++) conns[i] = atomic_load(&s->loops[i].conns);
    char *body = srv_metrics_render(&s->metrics, sn, s->writer ? srv_writer_queued(s->writer) : 0,
                                    conns, s->nloops, &len);
    srv_snap_release(sn);
    if (!body) return srv_reply_error(c, r, 500, "internal", "out of memory");
    return srv_reply_text(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, 0);
}
