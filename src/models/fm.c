/* fm.c - "fm": a second-order factorization machine (Rendle 2010) over
 * user, item, item side-feature and context features, trained with BPR
 * (ranking) or log loss (click / purchase probability).
 *
 * Features of one training case (user u, item i, event time t):
 *   user one-hot u | user side features of u (demographics from
 *   d->users_info: gender, age band, country, segment) | item one-hot i |
 *   item side features of i (features.h: brand, category path, price
 *   band, tags; text TF-IDF with text=1) | context: hour of day and
 *   weekday (UTC) of the pair's last event.
 *
 * DESIGN:
 * - Training is plain SGD over the positive (user, item) pairs of the
 *   training matrix in a seeded shuffled order, serial, so results are
 *   bit-identical for every thread count. Negatives are drawn uniformly
 *   from the items with at least one training interaction that the user
 *   has not interacted with; BPR takes `neg` pairs (pos, neg) per
 *   positive, log loss one label-1 case and `neg` label-0 cases (the
 *   negative shares the positive's user and context). Which events count
 *   as positive is the caller's dataset options (e.g. purchase/click
 *   weights > 0, views 0).
 * - Items without training interactions ("cold") keep a zero one-hot
 *   (weight and vector): they are never sampled, and are scored through
 *   their side features alone, which is how a new catalog item gets
 *   recommended. Likewise users without training interactions keep a
 *   zero one-hot and are scored through their demographics alone.
 * - Scoring has no context (the request time is not part of score_all):
 *   the context features are absent (x = 0), which is the FM prediction
 *   for an unknown context. With the user part p_u = v_u, b_u = w_u and
 *   the item part q_i = sum_f v_f x_f, c_i = w0 + sum_f w_f x_f + the
 *   pairwise terms inside the item's features, and the user part
 *   likewise over the user's one-hot and demographics (p_u, b_u without
 *   w0), score(u, i) = b_u + c_i + p_u . q_i; the model stores only p,
 *   b, q, c (O(k) per item at serve).
 * - An unknown user (user -1) has no user feature, so the FM's own
 *   prediction is c_i: the learned item bias plus side features, which
 *   plays the part of popularity. */
#include "recfuse/fm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/features.h"
#include "recfuse/idmap.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"

#define FM_NCTX 31 /* 24 hours + 7 weekdays */

/* ---- kernels (fm.h) ------------------------------------------------------ */

double rf_fm_predict(const rf_fm_weights *p, const rf_fm_ex *x, double *sum) {
    const int k = p->k;
    double y = p->w0, sq = 0;
    for (int d = 0; d < k; d++) sum[d] = 0;
    for (int32_t q = 0; q < x->n; q++) {
        const float xv = x->val[q];
        const float *v = p->V + (size_t)x->idx[q] * k;
        y += (double)p->w[x->idx[q]] * xv;
        for (int d = 0; d < k; d++) {
            double t = (double)v[d] * xv;
            sum[d] += t;
            sq += t * t;
        }
    }
    double s2 = 0;
    for (int d = 0; d < k; d++) s2 += sum[d] * sum[d];
    return y + 0.5 * (s2 - sq);
}

/* ln(1 + exp(z)) without overflow. */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
static double sigmoid(double z) {
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

double rf_fm_loss(const rf_fm_weights *p, int loss, const rf_fm_ex *a, const rf_fm_ex *b, int y,
                  double *scratch) {
    double ya = rf_fm_predict(p, a, scratch);
    if (loss == RF_FM_BPR) return softplus(-(ya - rf_fm_predict(p, b, scratch + p->k)));
    return softplus(y ? -ya : ya);
}

/* Append coef * d y(x) / d(w, V) of x to g; sum is x's sum_f v_f x_f. */
static void grad_add(const rf_fm_weights *p, const rf_fm_ex *x, const double *sum, double coef,
                     rf_fm_grad *g) {
    const int k = p->k;
    for (int32_t q = 0; q < x->n; q++) {
        const int32_t f = x->idx[q];
        const double xv = x->val[q];
        const float *v = p->V + (size_t)f * k;
        float *gv = g->gv + (size_t)g->n * k;
        g->idx[g->n] = f;
        g->gw[g->n] = (float)(coef * xv);
        for (int d = 0; d < k; d++) gv[d] = (float)(coef * xv * (sum[d] - v[d] * xv));
        g->n++;
    }
    g->gw0 += (float)coef;
}

double rf_fm_loss_grad(const rf_fm_weights *p, int loss, const rf_fm_ex *a, const rf_fm_ex *b,
                       int y, rf_fm_grad *g, double *scratch) {
    double *sa = scratch, *sb = scratch + p->k;
    g->n = 0;
    g->gw0 = 0;
    double ya = rf_fm_predict(p, a, sa);
    if (loss == RF_FM_BPR) {
        double z = ya - rf_fm_predict(p, b, sb);
        double c = -sigmoid(-z); /* d loss / d z */
        grad_add(p, a, sa, c, g);
        grad_add(p, b, sb, -c, g);
        return softplus(-z);
    }
    double s = y ? 1.0 : -1.0;
    grad_add(p, a, sa, -s * sigmoid(-s * ya), g);
    return softplus(-s * ya);
}

/* ---- the model ----------------------------------------------------------- */

typedef struct fm_params {
    int factors;
    double lr, reg, init;
    int epochs;
    int loss;
    int neg;
    int side, text, context, user_side;
    int seed;
} fm_params;

typedef struct fm_impl {
    int k;
    float *P, *b; /* n_users x k, n_users */
    float *Q, *c; /* n_items x k, n_items */
    int32_t n_side;  /* item side-feature columns used in training (informative) */
} fm_impl;

static const rf_param_def fm_defs[] = {
    {"factors", RF_P_INT, offsetof(fm_params, factors), 64, 1, 1024, NULL, "latent dimensions k"},
    {"lr", RF_P_DOUBLE, offsetof(fm_params, lr), 0.05, 1e-6, 10, NULL, "SGD learning rate"},
    {"reg", RF_P_DOUBLE, offsetof(fm_params, reg), 0.01, 0, 100, NULL,
     "L2 regularisation of w and V (applied at each update of a feature)"},
    {"init", RF_P_DOUBLE, offsetof(fm_params, init), 0.1, 0, 10, NULL,
     "standard deviation of the initial factors"},
    {"epochs", RF_P_INT, offsetof(fm_params, epochs), 30, 1, 10000, NULL,
     "passes over the positive pairs"},
    {"loss", RF_P_ENUM, offsetof(fm_params, loss), RF_FM_BPR, 0, 1, "bpr,logloss",
     "bpr: pairwise ranking; logloss: positive vs sampled negatives (probability)"},
    {"neg", RF_P_INT, offsetof(fm_params, neg), 1, 1, 100, NULL,
     "sampled negatives per positive"},
    {"side", RF_P_INT, offsetof(fm_params, side), 1, 0, 1, NULL,
     "1: item side features from the catalog (brand, category, price band, tags)"},
    {"text", RF_P_INT, offsetof(fm_params, text), 0, 0, 1, NULL,
     "1: also TF-IDF text of title and description (with side=1)"},
    {"user_side", RF_P_INT, offsetof(fm_params, user_side), 1, 0, 1, NULL,
     "1: user side features (gender, age band, country, segment) from the users table"},
    {"context", RF_P_INT, offsetof(fm_params, context), 1, 0, 1, NULL,
     "1: hour-of-day and weekday features of the event in training"},
    {"seed", RF_P_INT, offsetof(fm_params, seed), 42, 0, 2147483647, NULL, "random seed"},
    {0},
};

static int fm_create(rf_model *m, rf_err *err) {
    m->impl = rf_calloc(1, sizeof(fm_impl));
    if (!m->impl) return rf_err_set(err, RF_ENOMEM, "fm: out of memory");
    return 0;
}

static void impl_clear(fm_impl *p) {
    rf_free(p->P);
    rf_free(p->b);
    rf_free(p->Q);
    rf_free(p->c);
    p->P = p->b = p->Q = p->c = NULL;
}

static void fm_destroy(rf_model *m) {
    fm_impl *p = m->impl;
    if (!p) return;
    impl_clear(p);
    rf_free(p);
    m->impl = NULL;
}

static int row_has(const rf_csr *m, int32_t r, int32_t c) {
    int64_t lo = m->indptr[r], hi = m->indptr[r + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->indices[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->indptr[r + 1] && m->indices[lo] == c;
}

/* Age bands of the user features (years; the last band is open). */
static const int g_age_lo[] = {0, 18, 25, 35, 45, 55};
#define FM_NAGE ((int)(sizeof g_age_lo / sizeof g_age_lo[0]))

static int user_feat(rf_idmap *vocab, const char *kind, const char *v, int32_t *col, rf_err *err) {
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s=%s", kind, v);
    if (n < 0 || n >= (int)sizeof buf) n = (int)sizeof buf - 1;
    if (rf_idmap_put(vocab, buf, (size_t)n, col, NULL))
        return rf_err_set(err, RF_ENOMEM, "fm: out of memory (user features)");
    return 0;
}

/* The user side features of d's users from d->users_info (rows matched
 * by id string): one column per distinct gender, age band, country and
 * segment value, a user's entries 1/sqrt(their count) (L2-normalised, as
 * the item features); *out NULL when no user of d has any. */
static int user_features(const rf_dataset *d, rf_csr **out, rf_err *err) {
    *out = NULL;
    const rf_user_table *t = d->users_info;
    if (!t || t->n == 0 || !d->users) return 0;
    rf_idmap *vocab = NULL;
    int32_t *r = rf_malloc_array((size_t)t->n * 4 + 1, sizeof *r);
    int32_t *c = rf_malloc_array((size_t)t->n * 4 + 1, sizeof *c);
    float *v = rf_malloc_array((size_t)t->n * 4 + 1, sizeof *v);
    int rc = rf_idmap_new(&vocab);
    if (rc || !r || !c || !v) {
        rc = rf_err_set(err, RF_ENOMEM, "fm: out of memory (user features)");
        goto done;
    }
    int64_t n = 0;
    for (int64_t k = 0; k < t->n && !rc; k++) {
        const rf_user_info *ui = &t->users[k];
        int32_t u = ui->id ? rf_idmap_find(d->users, ui->id, strlen(ui->id)) : -1;
        if (u < 0 || u >= d->n_users) continue;
        int64_t first = n;
        const char *kinds[3] = {"gender", "country", "segment"};
        const char *vals[3] = {ui->gender, ui->country, ui->segment};
        for (int q = 0; q < 3 && !rc; q++)
            if (vals[q] && vals[q][0] && !(rc = user_feat(vocab, kinds[q], vals[q], &c[n], err)))
                r[n++] = u;
        if (ui->age >= 0 && !rc) {
            int b = FM_NAGE - 1;
            while (b > 0 && ui->age < g_age_lo[b]) b--;
            char band[16];
            snprintf(band, sizeof band, "%d", g_age_lo[b]);
            if (!(rc = user_feat(vocab, "age", band, &c[n], err))) r[n++] = u;
        }
        for (int64_t q = first; q < n; q++) v[q] = (float)(1.0 / sqrt((double)(n - first)));
    }
    if (!rc && n > 0 &&
        (rc = rf_csr_from_coo(d->n_users, rf_idmap_size(vocab), n, r, c, v, RF_FOLD_LAST, out,
                              NULL)))
        rf_err_set(err, rc, "fm: user features: %s", rf_strerror(rc));
done:
    rf_idmap_free(vocab);
    rf_free(r);
    rf_free(c);
    rf_free(v);
    return rc;
}

/* Where the blocks of the feature vector start, and the side data. */
typedef struct fm_layout {
    const rf_item_features *f; /* item side features or NULL */
    const rf_csr *uf;          /* user side features or NULL */
    int32_t uside0, item0, side0, ctx0;
} fm_layout;

/* Input of (user u or -1, item i or -1, context slots hour/wday or -1)
 * into ex's buffers idx/val (capacity 4 + the user's and the item's side
 * features). */
static void make_ex(const fm_layout *L, int32_t u, int32_t i, int hour, int wday, int32_t *idx,
                    float *val, rf_fm_ex *ex) {
    const rf_item_features *f = L->f;
    int32_t n = 0;
    if (u >= 0) {
        idx[n] = u;
        val[n++] = 1;
        if (L->uf)
            for (int64_t q = L->uf->indptr[u]; q < L->uf->indptr[u + 1]; q++) {
                idx[n] = L->uside0 + L->uf->indices[q];
                val[n++] = L->uf->data[q];
            }
    }
    if (i < 0) {
        ex->n = n;
        ex->idx = idx;
        ex->val = val;
        return;
    }
    idx[n] = L->item0 + i;
    val[n++] = 1;
    if (f)
        for (int64_t q = f->x->indptr[i]; q < f->x->indptr[i + 1]; q++) {
            idx[n] = L->side0 + f->x->indices[q];
            val[n++] = f->x->data[q];
        }
    if (hour >= 0) {
        idx[n] = L->ctx0 + hour;
        val[n++] = 1;
        idx[n] = L->ctx0 + 24 + wday;
        val[n++] = 1;
    }
    ex->n = n;
    ex->idx = idx;
    ex->val = val;
}

static void apply_grad(rf_fm_weights *w, const rf_fm_grad *g, float lr, float reg) {
    const int k = w->k;
    w->w0 -= lr * g->gw0;
    for (int32_t e = 0; e < g->n; e++) {
        const int32_t f = g->idx[e];
        w->w[f] -= lr * (g->gw[e] + reg * w->w[f]);
        float *v = w->V + (size_t)f * k;
        const float *gv = g->gv + (size_t)e * k;
        for (int d = 0; d < k; d++) v[d] -= lr * (gv[d] + reg * v[d]);
    }
}

static int fm_fit(rf_model *m, const rf_dataset *d, rf_err *err) {
    const fm_params *pp = m->params;
    fm_impl *p = m->impl;
    const int k = pp->factors;
    const int32_t nu = d->n_users, ni = d->n_items;
    rf_item_features *f = NULL;
    rf_csr *uf = NULL;
    int rc = 0;
    if (pp->user_side && (rc = user_features(d, &uf, err))) return rc;
    if (pp->side && d->catalog) {
        rf_features_opts o;
        rf_features_opts_default(&o);
        if (!pp->text) o.w_text = 0;
        o.w_vector = 0;
        if ((rc = rf_item_features_build(d->catalog, d->items, ni, &o, &f, err))) {
            rf_csr_free(uf);
            return rc;
        }
    } else if (pp->side) {
        rf_log(RF_LOG_WARN, "fm.no_catalog",
               "msg=\"the dataset carries no catalog: fm uses no item side features\"");
    }
    const int32_t nside = f ? f->n_feats : 0, nuside = uf ? uf->ncols : 0;
    const int use_ctx = pp->context && d->ui_ts;
    fm_layout L = {f, uf, nu, nu + nuside, nu + nuside + ni, nu + nuside + ni + nside};
    const int64_t nfeat = (int64_t)L.ctx0 + (use_ctx ? FM_NCTX : 0);
    int32_t maxside = 0, maxuside = 0;
    if (f)
        for (int32_t i = 0; i < ni; i++)
            if (rf_csr_row_len(f->x, i) > maxside) maxside = (int32_t)rf_csr_row_len(f->x, i);
    if (uf)
        for (int32_t u = 0; u < nu; u++)
            if (rf_csr_row_len(uf, u) > maxuside) maxuside = (int32_t)rf_csr_row_len(uf, u);
    const int32_t cap = 4 + maxside + maxuside;
    const int64_t nnz = d->ui->nnz;

    rf_fm_weights w = {.n_feats = (int32_t)nfeat, .k = k, .w0 = 0};
    w.w = rf_calloc((size_t)nfeat, sizeof *w.w);
    w.V = rf_malloc_array((size_t)nfeat * k, sizeof *w.V);
    int32_t *order = rf_malloc_array((size_t)nnz + 1, sizeof *order);
    int32_t *rowof = rf_malloc_array((size_t)nnz + 1, sizeof *rowof);
    int32_t *warm = rf_malloc_array((size_t)ni + 1, sizeof *warm);
    int32_t *ibuf = rf_malloc_array((size_t)4 * cap, sizeof *ibuf);
    float *vbuf = rf_malloc_array((size_t)4 * cap, sizeof *vbuf);
    rf_fm_grad g = {0};
    g.idx = rf_malloc_array((size_t)2 * cap, sizeof *g.idx);
    g.gw = rf_malloc_array((size_t)2 * cap, sizeof *g.gw);
    g.gv = rf_malloc_array((size_t)2 * cap * k, sizeof *g.gv);
    double *scratch = rf_malloc_array((size_t)2 * k, sizeof *scratch);
    float *P = rf_malloc_array((size_t)nu * k + 1, sizeof *P);
    float *bu = rf_malloc_array((size_t)nu + 1, sizeof *bu);
    float *Q = rf_malloc_array((size_t)ni * k + 1, sizeof *Q);
    float *ci = rf_malloc_array((size_t)ni + 1, sizeof *ci);
    if (!w.w || !w.V || !order || !rowof || !warm || !ibuf || !vbuf || !g.idx || !g.gw || !g.gv ||
        !scratch || !P || !bu || !Q || !ci) {
        rc = rf_err_set(err, RF_ENOMEM, "fm: out of memory");
        goto done;
    }
    if (nnz > INT32_MAX) {
        rc = rf_err_set(err, RF_ETOOBIG, "fm: more than 2^31 training pairs");
        goto done;
    }
    rf_rng rng;
    rf_rng_seed(&rng, (uint64_t)pp->seed);
    for (int64_t q = 0; q < (int64_t)nfeat * k; q++) w.V[q] = (float)(pp->init * rf_rng_normal(&rng));
    int32_t nwarm = 0;
    for (int32_t i = 0; i < ni; i++) {
        if (rf_csr_row_len(d->iu, i) > 0) warm[nwarm++] = i;
        else memset(w.V + (size_t)(L.item0 + i) * k, 0, (size_t)k * sizeof *w.V);
    }
    for (int32_t u = 0; u < nu; u++) /* cold users: demographics only */
        if (rf_csr_row_len(d->ui, u) == 0) memset(w.V + (size_t)u * k, 0, (size_t)k * sizeof *w.V);
    for (int32_t u = 0; u < nu; u++)
        for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++) rowof[q] = u;
    for (int64_t q = 0; q < nnz; q++) order[q] = (int32_t)q;

    const float lr = (float)pp->lr, reg = (float)pp->reg;
    double last_loss = 0;
    for (int ep = 0; ep < pp->epochs && nwarm > 0; ep++) {
        rf_rng_shuffle_i32(&rng, order, nnz);
        double tot = 0;
        int64_t cnt = 0;
        for (int64_t t = 0; t < nnz; t++) {
            const int64_t q = order[t];
            const int32_t u = rowof[q], i = d->ui->indices[q];
            int hour = -1, wday = -1;
            if (use_ctx) {
                int64_t ts = d->ts_base + (int64_t)d->ui_ts[q];
                int64_t day = ts >= 0 ? ts / 86400 : (ts - 86399) / 86400;
                hour = (int)((ts - day * 86400) / 3600);
                wday = (int)(((day + 4) % 7 + 7) % 7); /* 0 = Sunday */
            }
            rf_fm_ex a, b;
            make_ex(&L, u, i, hour, wday, ibuf, vbuf, &a);
            if (pp->loss == RF_FM_LOGLOSS) {
                tot += rf_fm_loss_grad(&w, RF_FM_LOGLOSS, &a, NULL, 1, &g, scratch);
                apply_grad(&w, &g, lr, reg);
                cnt++;
            }
            for (int s = 0; s < pp->neg; s++) {
                int32_t j = -1;
                for (int tries = 0; tries < 20; tries++) {
                    int32_t c = warm[rf_rng_below(&rng, (uint64_t)nwarm)];
                    if (!row_has(d->ui, u, c)) {
                        j = c;
                        break;
                    }
                }
                if (j < 0) continue;
                make_ex(&L, u, j, hour, wday, ibuf + 2 * cap, vbuf + 2 * cap, &b);
                if (pp->loss == RF_FM_BPR) {
                    make_ex(&L, u, i, hour, wday, ibuf, vbuf, &a);
                    tot += rf_fm_loss_grad(&w, RF_FM_BPR, &a, &b, 0, &g, scratch);
                } else {
                    tot += rf_fm_loss_grad(&w, RF_FM_LOGLOSS, &b, NULL, 0, &g, scratch);
                }
                apply_grad(&w, &g, lr, reg);
                cnt++;
            }
        }
        last_loss = cnt ? tot / (double)cnt : 0;
        rf_log(RF_LOG_DEBUG, "fm.epoch", "epoch=%d loss=%.6f", ep + 1, last_loss);
        if (!isfinite(last_loss)) {
            rc = rf_err_set(err, RF_ERANGE, "fm: training diverged at epoch %d (lower lr)", ep + 1);
            goto done;
        }
    }
    /* serving parts: users (without w0), then items (see DESIGN) */
    for (int32_t u = 0; u < nu; u++) {
        rf_fm_ex x;
        make_ex(&L, u, -1, -1, -1, ibuf, vbuf, &x);
        bu[u] = (float)(rf_fm_predict(&w, &x, scratch) - w.w0);
        for (int dd = 0; dd < k; dd++) P[(size_t)u * k + dd] = (float)scratch[dd];
    }
    for (int32_t i = 0; i < ni; i++) {
        rf_fm_ex x;
        make_ex(&L, -1, i, -1, -1, ibuf, vbuf, &x);
        double y = rf_fm_predict(&w, &x, scratch);
        ci[i] = (float)y;
        for (int dd = 0; dd < k; dd++) Q[(size_t)i * k + dd] = (float)scratch[dd];
    }
    impl_clear(p);
    p->k = k;
    p->P = P;
    p->b = bu;
    p->Q = Q;
    p->c = ci;
    p->n_side = nside;
    P = bu = Q = ci = NULL;
    rf_log(RF_LOG_INFO, "fm.fit",
           "users=%d items=%d warm=%d side=%d user_side=%d context=%d loss=%.5f", nu, ni, nwarm,
           nside, nuside, use_ctx, last_loss);
done:
    rf_item_features_free(f);
    rf_csr_free(uf);
    rf_free(w.w);
    rf_free(w.V);
    rf_free(order);
    rf_free(rowof);
    rf_free(warm);
    rf_free(ibuf);
    rf_free(vbuf);
    rf_free(g.idx);
    rf_free(g.gw);
    rf_free(g.gv);
    rf_free(scratch);
    rf_free(P);
    rf_free(bu);
    rf_free(Q);
    rf_free(ci);
    return rc;
}

static int fm_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                        rf_err *err) {
    const fm_impl *p = m->impl;
    const int k = p->k;
    if (user < 0) {
        memcpy(out, p->c, (size_t)m->n_items * sizeof *out);
        return 0;
    }
    const float *pu = p->P + (size_t)user * k;
    const float bu = p->b[user];
    for (int32_t i = 0; i < m->n_items; i++) {
        const float *q = p->Q + (size_t)i * k;
        float s = 0;
        for (int d = 0; d < k; d++) s += pu[d] * q[d];
        out[i] = bu + p->c[i] + s;
    }
    return 0;
}

static const float *fm_item_vectors(const rf_model *m, int *dim) {
    const fm_impl *p = m->impl;
    *dim = p->k;
    return p->Q;
}

static int fm_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const fm_impl *p = m->impl;
    int rc = rf_writer_i64(w, p->k);
    rc |= rf_writer_i64(w, m->n_users);
    rc |= rf_writer_i64(w, m->n_items);
    rc |= rf_writer_i64(w, p->n_side);
    rc |= rf_writer_put(w, p->P, (size_t)m->n_users * p->k * sizeof(float));
    rc |= rf_writer_put(w, p->b, (size_t)m->n_users * sizeof(float));
    rc |= rf_writer_put(w, p->Q, (size_t)m->n_items * p->k * sizeof(float));
    rc |= rf_writer_put(w, p->c, (size_t)m->n_items * sizeof(float));
    return rc ? rf_err_set(err, RF_EIO, "fm: write failed") : 0;
}

static int read_floats(rf_reader *r, int64_t n, float **out, rf_err *err) {
    if (n * (int64_t)sizeof(float) > rf_reader_remaining(r))
        return rf_err_set(err, RF_EFORMAT, "fm: payload truncated");
    float *a = rf_malloc_array((size_t)n + 1, sizeof *a);
    if (!a) return rf_err_set(err, RF_ENOMEM, "fm: out of memory");
    int rc = rf_reader_get(r, a, (size_t)n * sizeof *a, err);
    for (int64_t q = 0; !rc && q < n; q++)
        if (!isfinite(a[q])) rc = rf_err_set(err, RF_EFORMAT, "fm: non-finite value");
    if (rc) {
        rf_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int fm_load(rf_model *m, rf_reader *r, rf_err *err) {
    fm_impl *p = m->impl;
    const fm_params *pp = m->params;
    int64_t k, nu, ni, ns;
    int rc;
    if ((rc = rf_reader_i64(r, &k, err)) || (rc = rf_reader_i64(r, &nu, err)) ||
        (rc = rf_reader_i64(r, &ni, err)) || (rc = rf_reader_i64(r, &ns, err)))
        return rc;
    if (k != pp->factors || nu != m->n_users || ni != m->n_items || ns < 0 || ns > INT32_MAX)
        return rf_err_set(err, RF_EFORMAT,
                          "fm: payload sizes (k=%lld users=%lld items=%lld) disagree with the "
                          "header (k=%d users=%d items=%d)",
                          (long long)k, (long long)nu, (long long)ni, pp->factors, m->n_users,
                          m->n_items);
    impl_clear(p);
    p->k = (int)k;
    p->n_side = (int32_t)ns;
    if ((rc = read_floats(r, nu * k, &p->P, err)) || (rc = read_floats(r, nu, &p->b, err)) ||
        (rc = read_floats(r, ni * k, &p->Q, err)) || (rc = read_floats(r, ni, &p->c, err))) {
        impl_clear(p);
        return rc;
    }
    return 0;
}

const rf_model_ops rf_model_fm_ops = {
    .name = "fm",
    .help = "factorization machine (users, items, item side features, context; bpr or logloss)",
    .params = fm_defs,
    .params_size = sizeof(fm_params),
    .create = fm_create,
    .fit = fm_fit,
    .score_all = fm_score_all,
    .save = fm_save,
    .load = fm_load,
    .destroy = fm_destroy,
    .item_vectors = fm_item_vectors,
};
