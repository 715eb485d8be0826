/* side.c - the fusion model's side tables: per item popularity, recent
 * popularity (trend), price, freshness, stock and category; per user
 * activity, recency, frequency (active days) and monetary value, and the
 * time of the last event (for the hour/weekday context features).
 *
 * Built from the data the channels were fit on (the stage-1 part during
 * stacking, everything at the refit), so a feature means the same thing
 * when the ranker learns and when it serves. Catalog rows are matched to
 * dense item ids by their string ids. Saved in the model file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/store.h"

#define TREND_DAYS 7

typedef struct ranked {
    float v;
    int32_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Replace v[0..n) by its mid-rank share in [0, 1] (ties share their mean
 * rank; NAN stays NAN), so a feature means "how high among the items"
 * whatever the size of the data it was counted on. */
static int to_share(float *v, int32_t n) {
    ranked *r = rf_malloc_array((size_t)(n ? n : 1), sizeof *r);
    if (!r) return RF_ENOMEM;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (!isnan(v[i])) r[m++] = (ranked){v[i], i};
    qsort(r, (size_t)m, sizeof *r, cmp_ranked);
    for (int32_t a = 0; a < m;) {
        int32_t b = a;
        while (b + 1 < m && r[b + 1].v == r[a].v) b++;
        float share = m > 1 ? (float)(0.5 * (a + b) / (m - 1)) : 0.5f;
        for (int32_t q = a; q <= b; q++) v[r[q].i] = share;
        a = b + 1;
    }
    rf_free(r);
    return 0;
}

void fu_side_free(fu_side *s) {
    if (!s) return;
    rf_free(s->pop);
    rf_free(s->trend);
    rf_free(s->pop_log);
    rf_free(s->trend_log);
    rf_free(s->price);
    rf_free(s->age);
    rf_free(s->stock);
    rf_free(s->cat);
    rf_free(s->u_events);
    rf_free(s->u_recency);
    rf_free(s->u_days);
    rf_free(s->u_money);
    rf_free(s->u_last);
    rf_free(s->u_age);
    rf_free(s->u_gender);
    rf_free(s->u_segment);
    if (s->cat_names)
        for (int32_t i = 0; i < s->n_cats; i++) rf_free(s->cat_names[i]);
    rf_free(s->cat_names);
    rf_free(s->row);
    memset(s, 0, sizeof *s);
}

static int side_alloc(fu_side *s, int32_t nu, int32_t ni) {
    size_t u = (size_t)(nu ? nu : 1), i = (size_t)(ni ? ni : 1);
    s->n_users = nu;
    s->n_items = ni;
    s->pop = rf_calloc(i, sizeof(float));
    s->trend = rf_calloc(i, sizeof(float));
    s->pop_log = rf_calloc(i, sizeof(float));
    s->trend_log = rf_calloc(i, sizeof(float));
    s->price = rf_calloc(i, sizeof(float));
    s->age = rf_calloc(i, sizeof(float));
    s->stock = rf_calloc(i, sizeof(float));
    s->cat = rf_calloc(i, sizeof(int32_t));
    s->u_events = rf_calloc(u, sizeof(float));
    s->u_recency = rf_calloc(u, sizeof(float));
    s->u_days = rf_calloc(u, sizeof(float));
    s->u_money = rf_calloc(u, sizeof(float));
    s->u_last = rf_calloc(u, sizeof(int64_t));
    s->u_age = rf_calloc(u, sizeof(float));
    s->u_gender = rf_calloc(u, sizeof(float));
    s->u_segment = rf_calloc(u, sizeof(float));
    return s->pop && s->trend && s->pop_log && s->trend_log && s->price && s->age && s->stock && s->cat && s->u_events &&
                   s->u_recency && s->u_days && s->u_money && s->u_last && s->u_age &&
                   s->u_gender && s->u_segment
               ? 0
               : RF_ENOMEM;
}

/* Demographics from the user table, matched by id string. */
static int demographics(fu_side *s, const rf_dataset *d, const rf_user_table *t) {
    for (int32_t u = 0; u < s->n_users; u++) s->u_age[u] = s->u_gender[u] = s->u_segment[u] = NAN;
    if (!t) return 0;
    rf_idmap *segs;
    if (rf_idmap_new(&segs)) return RF_ENOMEM;
    int rc = 0;
    for (int64_t r = 0; r < t->n && rc == 0; r++) {
        const rf_user_info *ui = &t->users[r];
        int32_t u = ui->id ? rf_idmap_find(d->users, ui->id, strlen(ui->id)) : -1;
        if (u < 0 || u >= s->n_users) continue;
        if (ui->age >= 0) s->u_age[u] = (float)ui->age;
        if (ui->gender && (ui->gender[0] == 'M' || ui->gender[0] == 'm')) s->u_gender[u] = 0;
        if (ui->gender && (ui->gender[0] == 'F' || ui->gender[0] == 'f')) s->u_gender[u] = 1;
        int32_t id;
        if (ui->segment && *ui->segment) {
            if (rf_idmap_put(segs, ui->segment, strlen(ui->segment), &id, NULL)) rc = RF_ENOMEM;
            else s->u_segment[u] = (float)id;
        }
    }
    rf_idmap_free(segs);
    return rc;
}

/* The packed per-item records from the item tables. */
static int pack(fu_side *s) {
    s->row = rf_malloc_array((size_t)(s->n_items ? s->n_items : 1), sizeof *s->row);
    if (!s->row) return RF_ENOMEM;
    for (int32_t i = 0; i < s->n_items; i++)
        s->row[i] = (fu_item_row){s->pop[i],   s->trend[i], s->pop_log[i], s->trend_log[i],
                                  s->price[i], s->age[i],   s->stock[i],   s->cat[i]};
    return 0;
}

int fu_side_build(fu_side *s, const rf_dataset *d, const rf_events *ev,
                  const struct rf_catalog *cat, const rf_user_table *users, rf_err *err) {
    memset(s, 0, sizeof *s);
    const int32_t ni = d->n_items, nu = d->n_users;
    int64_t *first = NULL, *day = NULL;
    double *money = NULL;
    int64_t *nev = NULL, *ndays = NULL;
    rf_idmap *cats = NULL;
    int rc = RF_ENOMEM;
    if (side_alloc(s, nu, ni)) goto fail;
    s->now = d->ts_max;
    first = rf_malloc_array((size_t)(ni ? ni : 1), sizeof *first);
    day = rf_malloc_array((size_t)(nu ? nu : 1), sizeof *day);
    money = rf_calloc((size_t)(nu ? nu : 1), sizeof *money);
    nev = rf_calloc((size_t)(nu ? nu : 1), sizeof *nev);
    ndays = rf_calloc((size_t)(nu ? nu : 1), sizeof *ndays);
    if (!first || !day || !money || !nev || !ndays || rf_idmap_new(&cats)) goto fail;
    for (int32_t i = 0; i < ni; i++) {
        first[i] = INT64_MAX;
        s->price[i] = NAN;
        s->stock[i] = NAN;
        s->cat[i] = -1;
    }
    /* popularity and trend from the matrix */
    const int64_t recent = d->ts_max - TREND_DAYS * 86400LL;
    for (int32_t i = 0; i < ni; i++) s->pop[i] = (float)log1p((double)rf_csr_row_len(d->iu, i));
    for (int32_t u = 0; u < nu; u++)
        for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++) {
            int64_t t = d->ts_base + (int64_t)d->ui_ts[q];
            int32_t i = d->ui->indices[q];
            if (t >= recent) s->trend[i] += 1.0f;
            if (t < first[i]) first[i] = t;
            if (t > s->u_last[u]) s->u_last[u] = t;
        }
    for (int32_t i = 0; i < ni; i++) s->trend[i] = (float)log1p(s->trend[i]);
    memcpy(s->pop_log, s->pop, (size_t)ni * sizeof(float));
    memcpy(s->trend_log, s->trend, (size_t)ni * sizeof(float));
    /* catalog: price, stock, created, category */
    if (cat)
        for (int64_t r = 0; r < cat->n; r++) {
            const rf_item_info *it = &cat->items[r];
            if (!it->id) continue;
            int32_t j = rf_idmap_find(d->items, it->id, strlen(it->id));
            if (j < 0 || j >= ni) continue;
            if (isfinite(it->price) && it->price >= 0) s->price[j] = (float)log1p(it->price);
            if (it->stock >= 0) s->stock[j] = (float)log1p((double)it->stock);
            if (it->created > 0 && it->created < first[j]) first[j] = it->created;
            if (it->category && *it->category &&
                rf_idmap_put(cats, it->category, strlen(it->category), &s->cat[j], NULL))
                goto fail;
        }
    for (int32_t i = 0; i < ni; i++)
        s->age[i] = first[i] == INT64_MAX ? NAN : (float)((double)(s->now - first[i]) / 86400.0);
    if (to_share(s->pop, ni) || to_share(s->trend, ni) || to_share(s->age, ni)) goto fail;
    /* users: events, active days, monetary from the log */
    for (int32_t u = 0; u < nu; u++) day[u] = INT64_MIN;
    if (ev)
        for (int64_t e = 0; e < ev->n; e++) {
            int32_t u = ev->user[e], i = ev->item[e];
            if (u < 0 || u >= nu) continue;
            nev[u]++;
            int64_t dd = ev->ts[e] / 86400;
            if (dd != day[u]) {
                ndays[u]++;
                day[u] = dd;
            }
            if (ev->ts[e] > s->u_last[u]) s->u_last[u] = ev->ts[e];
            if (ev->type[e] == RF_EV_PURCHASE) {
                double p = i >= 0 && i < ni && isfinite(s->price[i]) ? expm1(s->price[i]) : 1.0;
                money[u] += (double)ev->value[e] * p;
            }
        }
    for (int32_t u = 0; u < nu; u++) {
        int64_t n = ev ? nev[u] : rf_csr_row_len(d->ui, u);
        s->u_events[u] = (float)log1p((double)n);
        s->u_days[u] = (float)log1p((double)ndays[u]);
        s->u_money[u] = (float)log1p(money[u] > 0 ? money[u] : 0);
        s->u_recency[u] =
            s->u_last[u] > 0 ? (float)((double)(s->now - s->u_last[u]) / 86400.0) : NAN;
    }
    if (demographics(s, d, users)) goto fail;
    s->n_cats = rf_idmap_size(cats);
    s->cat_names = rf_calloc((size_t)(s->n_cats ? s->n_cats : 1), sizeof(char *));
    if (!s->cat_names) goto fail;
    for (int32_t c = 0; c < s->n_cats; c++)
        if (!(s->cat_names[c] = rf_strdup(rf_idmap_str(cats, c)))) goto fail;
    if (pack(s)) goto fail;
    rc = 0;
fail:
    rf_free(first);
    rf_free(day);
    rf_free(money);
    rf_free(nev);
    rf_free(ndays);
    rf_idmap_free(cats);
    if (rc) {
        fu_side_free(s);
        return rf_err_set(err, RF_ENOMEM, "fusion: out of memory building side features");
    }
    return 0;
}

int fu_side_save(const fu_side *s, rf_writer *w) {
    size_t ni = (size_t)s->n_items, nu = (size_t)s->n_users;
    int rc = rf_writer_i64(w, s->n_items);
    rc |= rf_writer_i64(w, s->n_users);
    rc |= rf_writer_i64(w, s->n_cats);
    rc |= rf_writer_i64(w, s->now);
    rc |= rf_writer_put(w, s->pop, ni * sizeof(float));
    rc |= rf_writer_put(w, s->trend, ni * sizeof(float));
    rc |= rf_writer_put(w, s->pop_log, ni * sizeof(float));
    rc |= rf_writer_put(w, s->trend_log, ni * sizeof(float));
    rc |= rf_writer_put(w, s->price, ni * sizeof(float));
    rc |= rf_writer_put(w, s->age, ni * sizeof(float));
    rc |= rf_writer_put(w, s->stock, ni * sizeof(float));
    rc |= rf_writer_put(w, s->cat, ni * sizeof(int32_t));
    rc |= rf_writer_put(w, s->u_events, nu * sizeof(float));
    rc |= rf_writer_put(w, s->u_recency, nu * sizeof(float));
    rc |= rf_writer_put(w, s->u_days, nu * sizeof(float));
    rc |= rf_writer_put(w, s->u_money, nu * sizeof(float));
    rc |= rf_writer_put(w, s->u_last, nu * sizeof(int64_t));
    rc |= rf_writer_put(w, s->u_age, nu * sizeof(float));
    rc |= rf_writer_put(w, s->u_gender, nu * sizeof(float));
    rc |= rf_writer_put(w, s->u_segment, nu * sizeof(float));
    for (int32_t c = 0; c < s->n_cats; c++) rc |= rf_writer_str(w, s->cat_names[c]);
    return rc ? RF_EIO : 0;
}

int fu_side_load(fu_side *s, rf_reader *r, int32_t n_users, int32_t n_items, rf_err *err) {
    memset(s, 0, sizeof *s);
    int64_t ni, nu, nc;
    int rc;
    if ((rc = rf_reader_i64(r, &ni, err)) || (rc = rf_reader_i64(r, &nu, err)) ||
        (rc = rf_reader_i64(r, &nc, err)))
        return rc;
    if (ni != n_items || nu != n_users || nc < 0 || nc > n_items)
        return rf_err_set(err, RF_EFORMAT, "fusion: side tables %lld x %lld (%lld categories), "
                          "model %d x %d", (long long)nu, (long long)ni, (long long)nc,
                          (int)n_users, (int)n_items);
    if (side_alloc(s, n_users, n_items)) return rf_err_set(err, RF_ENOMEM, "out of memory");
    size_t fi = (size_t)ni * sizeof(float), fu = (size_t)nu * sizeof(float);
    if ((rc = rf_reader_i64(r, &s->now, err)) || (rc = rf_reader_get(r, s->pop, fi, err)) ||
        (rc = rf_reader_get(r, s->trend, fi, err)) ||
        (rc = rf_reader_get(r, s->pop_log, fi, err)) ||
        (rc = rf_reader_get(r, s->trend_log, fi, err)) || (rc = rf_reader_get(r, s->price, fi, err)) ||
        (rc = rf_reader_get(r, s->age, fi, err)) || (rc = rf_reader_get(r, s->stock, fi, err)) ||
        (rc = rf_reader_get(r, s->cat, (size_t)ni * sizeof(int32_t), err)) ||
        (rc = rf_reader_get(r, s->u_events, fu, err)) ||
        (rc = rf_reader_get(r, s->u_recency, fu, err)) ||
        (rc = rf_reader_get(r, s->u_days, fu, err)) ||
        (rc = rf_reader_get(r, s->u_money, fu, err)) ||
        (rc = rf_reader_get(r, s->u_last, (size_t)nu * sizeof(int64_t), err)) ||
        (rc = rf_reader_get(r, s->u_age, fu, err)) ||
        (rc = rf_reader_get(r, s->u_gender, fu, err)) ||
        (rc = rf_reader_get(r, s->u_segment, fu, err)))
        goto fail;
    for (int64_t i = 0; i < ni; i++)
        if (s->cat[i] < -1 || s->cat[i] >= nc) {
            rc = rf_err_set(err, RF_EFORMAT, "fusion: item %lld has category %d of %lld",
                            (long long)i, (int)s->cat[i], (long long)nc);
            goto fail;
        }
    s->n_cats = (int32_t)nc;
    s->cat_names = rf_calloc((size_t)(nc ? nc : 1), sizeof(char *));
    if (!s->cat_names) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    for (int64_t c = 0; c < nc; c++)
        if ((rc = rf_reader_str(r, &s->cat_names[c], 4096, err))) goto fail;
    if (pack(s)) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    return 0;
fail:
    fu_side_free(s);
    return rc;
}
