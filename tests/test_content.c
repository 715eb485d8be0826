/* test_content.c - the "content" model: a brand-new item (no
 * interactions) matching a user's category history is recommended;
 * scores against a dense brute-force recomputation; catalog filters
 * honoured; profile decay; popularity fallback (no history, no catalog);
 * save/load round trip with identical scores; corrupt files; failed
 * allocations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/features.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"
#include "testutil.h"

static rf_catalog *cat_new(int64_t n) {
    rf_catalog *c = rf_calloc(1, sizeof *c);
    c->items = rf_calloc((size_t)n + 1, sizeof *c->items);
    c->n = n;
    return c;
}

static void cat_set(rf_catalog *c, int64_t i, const char *id, const char *title, const char *cat,
                    const char *brand, double price, int64_t stock, const char *attrs) {
    rf_item_info *it = &c->items[i];
    it->id = rf_strdup(id);
    it->title = title ? rf_strdup(title) : NULL;
    it->category = cat ? rf_strdup(cat) : NULL;
    it->brand = brand ? rf_strdup(brand) : NULL;
    it->price = price;
    it->stock = stock;
    it->attrs = attrs ? rf_strdup(attrs) : NULL;
}

/* A log whose item map holds every catalog item, in catalog order (as
 * rf_store_load_events does), so items without events are known. */
static rf_events *log_for(const rf_catalog *c) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    for (int64_t i = 0; i < c->n; i++) {
        int32_t id;
        assert_int_equal(rf_idmap_put(ev->items, c->items[i].id, strlen(c->items[i].id), &id, NULL), 0);
    }
    return ev;
}

typedef struct shop {
    rf_catalog *cat;
    rf_events *ev;
    rf_dataset *d;
} shop;

/* Running shoes r0..r3 and a new one r_new (no events); kitchen pans k0..k5
 * bought by everyone; books b0..b4. "runner" bought every old running shoe
 * and one book. */
static shop *shop_new(void) {
    shop *s = calloc(1, sizeof *s);
    rf_catalog *c = s->cat = cat_new(16);
    cat_set(c, 0, "r0", "Swift trail running shoe", "Fashion/Shoes/Running", "Swift", 80, 5, NULL);
    cat_set(c, 1, "r1", "Pace road running shoe", "Fashion/Shoes/Running", "Pace", 95, 5, NULL);
    cat_set(c, 2, "r2", "Swift racing flat", "Fashion/Shoes/Running", "Swift", 120, 0, NULL);
    cat_set(c, 3, "r3", "Pace cushioned running shoe", "Fashion/Shoes/Running", "Pace", 70, 5, NULL);
    for (int i = 0; i < 6; i++) {
        char id[8], t[64];
        snprintf(id, sizeof id, "k%d", i);
        snprintf(t, sizeof t, "Steel frying pan %d cm", 20 + 2 * i);
        cat_set(c, 4 + i, id, t, "Home/Kitchen/Pans", "Chefco", 30 + i, 10, NULL);
    }
    for (int i = 0; i < 5; i++) {
        char id[8], t[64];
        snprintf(id, sizeof id, "b%d", i);
        snprintf(t, sizeof t, "Mystery novel volume %d", i + 1);
        cat_set(c, 10 + i, id, t, "Books/Fiction", "Penguin", 10 + i, i == 4 ? 0 : 3,
                "{\"genres\":\"mystery|crime\"}");
    }
    cat_set(c, 15, "r_new", "Pace trail running shoe", "Fashion/Shoes/Running", "Pace", 90, 5,
            "{\"description\":\"a new running shoe for trail and road\"}");
    rf_events *ev = s->ev = log_for(c);
    char u[16];
    for (int x = 0; x < 30; x++) {
        snprintf(u, sizeof u, "c%d", x);
        for (int i = 0; i < 6; i++)
            if ((x + i) % 3 != 0) rf_events_push_str(ev, u, c->items[4 + i].id, RF_EV_PURCHASE, 1, 1000 + x);
        if (x % 4 == 0) rf_events_push_str(ev, u, "b0", RF_EV_VIEW, 1, 2000 + x);
        if (x % 7 == 0) rf_events_push_str(ev, u, "r0", RF_EV_VIEW, 1, 2000 + x);
    }
    for (int i = 0; i < 4; i++) rf_events_push_str(ev, "runner", c->items[i].id, RF_EV_PURCHASE, 1, 5000 + i);
    rf_events_push_str(ev, "runner", "b1", RF_EV_VIEW, 1, 4000);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    assert_int_equal(rf_dataset_build(ev, &o, &s->d, NULL), 0);
    s->d->catalog = c;
    s->d->events = ev;
    return s;
}

static void shop_free(shop *s) {
    rf_dataset_free(s->d);
    rf_events_free(s->ev);
    rf_catalog_free(s->cat);
    free(s);
}

static rf_model *fit(const rf_dataset *d, const char *params) {
    rf_model *m;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_new("content", &m, &err), 0);
    if (rf_model_set_params(m, params, &err)) fail_msg("params: %s", err.msg);
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    return m;
}

static int32_t id_of(const rf_model *m, const char *s) { return rf_idmap_find(m->items, s, strlen(s)); }
static int32_t user_of(const rf_dataset *d, const char *s) { return rf_idmap_find(d->users, s, strlen(s)); }

static void test_new_item(void **state) {
    shop *s = shop_new();
    rf_model *m = fit(s->d, NULL);
    int32_t runner = user_of(s->d, "runner"), rnew = id_of(m, "r_new");
    assert_int_equal(rf_csr_row_len(s->d->iu, rnew), 0); /* no interactions */
    rf_hist h;
    rf_hist_from_row(s->d, runner, &h);
    rf_scored top[5];
    assert_int_equal(rf_model_recommend(m, runner, &h, 5, NULL, NULL, top, NULL), 5);
    assert_int_equal(top[0].id, rnew);
    /* the books (viewed one) come next, the popular pans last */
    float *sc = malloc(m->n_items * sizeof *sc);
    assert_int_equal(rf_model_score_all(m, runner, &h, sc, NULL), 0);
    for (int i = 0; i < 6; i++) assert_true(sc[rnew] > sc[id_of(m, "k0") + i]);
    /* popularity alone would never show it */
    rf_model *pop;
    assert_int_equal(rf_model_new("pop", &pop, NULL), 0);
    assert_int_equal(rf_model_fit(pop, s->d, NULL), 0);
    assert_int_equal(rf_model_recommend(pop, runner, &h, 5, NULL, NULL, top, NULL), 5);
    for (int k = 0; k < 5; k++) assert_int_not_equal(top[k].id, rnew);
    rf_model_free(pop);
    /* an unknown user with a history given as raw events */
    rf_events *one;
    assert_int_equal(rf_events_new(NULL, NULL, &one), 0);
    rf_events_push_str(one, "stranger", "r1", RF_EV_PURCHASE, 1, 9000);
    int32_t *items, n;
    float *w;
    int64_t *ts;
    assert_int_equal(rf_hist_from_events(m, one, &items, &w, &ts, &n, NULL), 0);
    rf_hist hs = {n, items, w, ts};
    assert_int_equal(rf_model_recommend(m, -1, &hs, 1, NULL, NULL, top, NULL), 1);
    /* same brand, category and words: r3 "Pace cushioned running shoe" or r_new */
    assert_true(top[0].id == rnew || top[0].id == id_of(m, "r3"));
    rf_free(items);
    rf_free(w);
    rf_free(ts);
    rf_events_free(one);
    /* no history: popularity fallback, pans first */
    assert_int_equal(rf_model_recommend(m, -1, NULL, 1, NULL, NULL, top, NULL), 1);
    assert_true(top[0].id >= id_of(m, "k0") && top[0].id <= id_of(m, "k5"));
    free(sc);
    rf_model_free(m);
    shop_free(s);
}

/* Scores against a dense recomputation: cosine(profile, x_j) + blend. */
static void test_brute_force(void **state) {
    shop *s = shop_new();
    rf_model *m = fit(s->d, "half_life=0.001,pop_blend=0.3,w_price=2");
    rf_features_opts o;
    rf_features_opts_default(&o);
    o.w_price = 2;
    o.w_category = 2; /* the content model's default */
    rf_item_features *f;
    assert_int_equal(rf_item_features_build(s->cat, s->d->items, s->d->n_items, &o, &f, NULL), 0);
    const int32_t ni = m->n_items, D = f->n_feats;
    double *X = calloc((size_t)ni * D, sizeof *X);
    for (int32_t j = 0; j < ni; j++)
        for (int64_t q = f->x->indptr[j]; q < f->x->indptr[j + 1]; q++)
            X[(size_t)j * D + f->x->indices[q]] = f->x->data[q];
    double pmax = 0;
    for (int32_t j = 0; j < ni; j++)
        if (rf_csr_row_len(s->d->iu, j) > pmax) pmax = (double)rf_csr_row_len(s->d->iu, j);
    float *sc = malloc(ni * sizeof *sc);
    rf_rng g;
    rf_rng_seed(&g, 4);
    for (int trial = 0; trial < 40; trial++) {
        int32_t items[6];
        float w[6];
        int64_t ts[6];
        int n = 1 + (int)rf_rng_below(&g, 6), k = 0;
        for (int32_t j = 0; j < ni && k < n; j++)
            if (rf_rng_uniform(&g) < 0.4) {
                items[k] = j;
                w[k] = (float)(1 + rf_rng_below(&g, 5));
                ts[k] = 1000 + (int64_t)rf_rng_below(&g, 3) * 43;
                k++;
            }
        if (k == 0) continue;
        rf_hist h = {k, items, w, trial % 2 ? ts : NULL};
        assert_int_equal(rf_model_score_all(m, -1, &h, sc, NULL), 0);
        double *p = calloc(D, sizeof *p);
        int64_t tref = 0;
        for (int x = 0; x < k; x++)
            if (ts[x] > tref) tref = ts[x];
        for (int x = 0; x < k; x++) {
            double c = w[x];
            if (trial % 2) c *= pow(2, -(double)(tref - ts[x]) / (0.001 * 86400));
            for (int32_t d = 0; d < D; d++) p[d] += c * X[(size_t)items[x] * D + d];
        }
        double pn = 0;
        for (int32_t d = 0; d < D; d++) pn += p[d] * p[d];
        pn = sqrt(pn);
        for (int32_t j = 0; j < ni; j++) {
            double dot = 0;
            for (int32_t d = 0; d < D; d++) dot += p[d] * X[(size_t)j * D + d];
            double want = (pn > 0 ? dot / pn : 0) + 0.3 * rf_csr_row_len(s->d->iu, j) / pmax;
            if (fabs(sc[j] - want) > 1e-5) fail_msg("trial %d item %d: %.7f vs %.7f", trial, j, sc[j], want);
        }
        free(p);
    }
    free(sc);
    free(X);
    rf_item_features_free(f);
    rf_model_free(m);
    shop_free(s);
}

/* Decay: a recent history item outweighs an old one. */
static void test_decay(void **state) {
    shop *s = shop_new();
    rf_model *m = fit(s->d, "half_life=1,pop_blend=0");
    int32_t items[2] = {id_of(m, "r0"), id_of(m, "k0")};
    int64_t ts[2] = {1700000000, 1700000000 - 10 * 86400}; /* pan 10 days older */
    rf_hist h = {2, items, NULL, ts};
    float *sc = malloc(m->n_items * sizeof *sc);
    assert_int_equal(rf_model_score_all(m, -1, &h, sc, NULL), 0);
    assert_true(sc[id_of(m, "r3")] > 5 * sc[id_of(m, "k1")]);
    ts[0] = ts[1];
    assert_int_equal(rf_model_score_all(m, -1, &h, sc, NULL), 0);
    float a = sc[id_of(m, "r_new")], b = sc[id_of(m, "k1")];
    assert_true(a > 0.1f && b > 0.1f);
    /* no times: no decay, same as equal times */
    rf_hist h2 = {2, items, NULL, NULL};
    float *sc2 = malloc(m->n_items * sizeof *sc2);
    assert_int_equal(rf_model_score_all(m, -1, &h2, sc2, NULL), 0);
    assert_memory_equal(sc, sc2, m->n_items * sizeof *sc);
    free(sc);
    free(sc2);
    rf_model_free(m);
    shop_free(s);
}

static void test_filters(void **state) {
    shop *s = shop_new();
    rf_model *m = fit(s->d, NULL);
    int32_t runner = user_of(s->d, "runner");
    rf_hist h;
    rf_hist_from_row(s->d, runner, &h);
    uint8_t *ex = malloc(m->n_items);
    rf_item_filter_spec fs;
    rf_item_filter_spec_init(&fs);
    fs.category = "Books";
    fs.in_stock = 1;
    int32_t pass;
    assert_int_equal(rf_item_filter_build(s->cat, m->items, m->n_items, &fs, ex, &pass, NULL), 0);
    assert_int_equal(pass, 4); /* b4 is out of stock */
    rf_filter flt = {.exclude = ex};
    rf_scored top[10];
    int n = rf_model_recommend(m, runner, &h, 10, &flt, NULL, top, NULL);
    assert_int_equal(n, 3); /* b1 is in the history */
    for (int k = 0; k < n; k++) {
        const rf_item_info *it = &s->cat->items[top[k].id];
        assert_true(rf_category_match(it->category, "Books"));
        assert_true(it->stock > 0);
        assert_int_not_equal(top[k].id, id_of(m, "b1"));
    }
    /* price range, cold user (popularity order within the filter) */
    rf_item_filter_spec_init(&fs);
    fs.min_price = 31;
    fs.max_price = 90;
    assert_int_equal(rf_item_filter_build(s->cat, m->items, m->n_items, &fs, ex, &pass, NULL), 0);
    n = rf_model_recommend(m, -1, NULL, 10, &flt, NULL, top, NULL);
    assert_int_equal(n, pass);
    for (int k = 0; k < n; k++) {
        double p = s->cat->items[top[k].id].price;
        assert_true(p >= 31 && p <= 90);
    }
    free(ex);
    rf_model_free(m);
    shop_free(s);
}

static void test_no_catalog(void **state) {
    shop *s = shop_new();
    s->d->catalog = NULL;
    rf_log_set_level(RF_LOG_ERROR); /* the expected warning */
    rf_model *m = fit(s->d, NULL);
    rf_log_set_level(RF_LOG_WARN);
    rf_hist h;
    rf_hist_from_row(s->d, user_of(s->d, "runner"), &h);
    float *sc = malloc(m->n_items * sizeof *sc);
    assert_int_equal(rf_model_score_all(m, 0, &h, sc, NULL), 0);
    float pmax = 0;
    for (int32_t j = 0; j < m->n_items; j++)
        if (rf_csr_row_len(s->d->iu, j) > pmax) pmax = (float)rf_csr_row_len(s->d->iu, j);
    for (int32_t j = 0; j < m->n_items; j++)
        assert_float_equal(sc[j], rf_csr_row_len(s->d->iu, j) / pmax, 1e-6);
    free(sc);
    rf_model_free(m);
    /* bad parameters */
    assert_int_equal(rf_model_new("content", &m, NULL), 0);
    assert_int_equal(rf_model_set_params(m, "price_bands=1", NULL), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "w_text=-1", NULL), RF_ERANGE);
    assert_int_equal(rf_model_set_params(m, "w_text=0,w_brand=2,half_life=0", NULL), 0);
    rf_model_free(m);
    shop_free(s);
}

static void test_save_load(void **state) {
    shop *s = shop_new();
    /* dense vectors too */
    for (int64_t i = 0; i < s->cat->n; i++) {
        char v[64];
        snprintf(v, sizeof v, "{\"vector\":\"%d %d %g\"}", (int)(i % 3), (int)(i % 2), 0.5 + i);
        rf_free(s->cat->items[i].attrs);
        s->cat->items[i].attrs = rf_strdup(v);
    }
    rf_model *m = fit(s->d, "pop_blend=0.1");
    char *dir = rf_test_tmpdir("content");
    char path[1024];
    snprintf(path, sizeof path, "%s/content.rfm", dir);
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_model_save(m, path, &err), 0);
    rf_model *l;
    if (rf_model_load(path, &l, &err)) fail_msg("load: %s", err.msg);
    float *a = malloc(m->n_items * sizeof *a), *b = malloc(m->n_items * sizeof *b);
    for (int32_t u = -1; u < s->d->n_users; u++) {
        rf_hist h;
        rf_hist_from_row(s->d, u, &h);
        int64_t ts[16];
        for (int32_t k = 0; k < h.n && k < 16; k++) ts[k] = 1000 + 7 * k * (u + 2);
        if (u % 2 && h.n <= 16) h.ts = ts;
        assert_int_equal(rf_model_score_all(m, u, &h, a, NULL), 0);
        assert_int_equal(rf_model_score_all(l, u, &h, b, NULL), 0);
        assert_memory_equal(a, b, m->n_items * sizeof *a);
    }
    rf_model_free(l);
    /* a flipped byte: checksum; a truncated file: format */
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, size / 2, SEEK_SET);
    fputc(c ^ 0x5A, f);
    fclose(f);
    assert_int_equal(rf_model_load(path, &l, &err), RF_ECORRUPT);
    assert_int_equal(truncate(path, size - 20), 0);
    assert_true(rf_model_load(path, &l, &err) < 0);
    assert_null(l);
    /* failed allocations while loading: clean RF_ENOMEM */
    assert_int_equal(rf_model_save(m, path, &err), 0);
    int ok = 0;
    for (long k = 0; k < 2000 && !ok; k++) {
        l = NULL;
        rf_mem_fail_after(k);
        int rc = rf_model_load(path, &l, NULL);
        rf_mem_fail_after(-1);
        if (rc == 0) ok = 1;
        else assert_int_equal(rc, RF_ENOMEM);
        rf_model_free(l);
    }
    assert_true(ok);
    free(a);
    free(b);
    rf_test_rmtree(dir);
    free(dir);
    rf_model_free(m);
    shop_free(s);
}

static void test_oom_fit(void **state) {
    shop *s = shop_new();
    int ok = 0;
    for (long k = 0; k < 3000 && !ok; k++) {
        rf_model *m = NULL;
        rf_mem_fail_after(k);
        int rc = rf_model_new("content", &m, NULL);
        if (rc == 0) rc = rf_model_fit(m, s->d, NULL);
        rf_mem_fail_after(-1);
        if (rc == 0) ok = 1;
        else assert_int_equal(rc, RF_ENOMEM);
        rf_model_free(m);
    }
    assert_true(ok);
    shop_free(s);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_item),     cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_decay),        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_no_catalog),   cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_oom_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
