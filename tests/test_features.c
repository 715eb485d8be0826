/* test_features.c - the features module: UTF-8 tokeniser (ASCII,
 * accented Latin, CJK), item features (category levels, brand, price
 * bands, tags, TF-IDF against a direct recomputation, dense vectors),
 * user profiles and scoring against a dense brute force, storage round
 * trip and corrupt payloads, and catalog filters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/features.h"
#include "recfuse/mem.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"
#include "testutil.h"

/* ---- tokeniser -------------------------------------------------------- */

typedef struct toks {
    int n;
    char t[64][80];
} toks;

static int collect(void *ud, const char *tok, size_t len) {
    toks *k = ud;
    if (k->n < 64) {
        memcpy(k->t[k->n], tok, len);
        k->t[k->n][len] = 0;
        k->n++;
    }
    return 0;
}

/* Tokenise s and compare with the expected tokens (NULL-terminated). */
static void expect_tokens(const char *s, const char *const *want) {
    toks k;
    memset(&k, 0, sizeof k);
    assert_int_equal(rf_tokenize(s, strlen(s), collect, &k), 0);
    int n = 0;
    while (want[n]) n++;
    for (int i = 0; i < n && i < k.n; i++)
        if (strcmp(k.t[i], want[i]) != 0)
            fail_msg("'%s': token %d is '%s', expected '%s'", s, i, k.t[i], want[i]);
    if (k.n != n) fail_msg("'%s': %d tokens, expected %d", s, k.n, n);
}

static void test_tokenize_ascii(void **state) {
    expect_tokens("Hello, World! USB-C 4K tv", (const char *const[]){"hello", "world", "usb", "c",
                                                                       "4k", "tv", NULL});
    expect_tokens("  ", (const char *const[]){NULL});
    expect_tokens("", (const char *const[]){NULL});
    expect_tokens("don't_stop", (const char *const[]){"don", "t", "stop", NULL});
    /* a 65-byte run is dropped, a 64-byte one kept */
    char buf[200];
    memset(buf, 'a', 65);
    strcpy(buf + 65, " ok ");
    memset(buf + 69, 'B', 64);
    buf[133] = 0;
    toks k;
    memset(&k, 0, sizeof k);
    rf_tokenize(buf, strlen(buf), collect, &k);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.t[0], "ok");
    assert_int_equal(strlen(k.t[1]), 64);
    assert_int_equal(k.t[1][0], 'b');
}

static void test_tokenize_latin(void **state) {
    expect_tokens("Café CAFÉ naïve Ærø Straße ŁÓDŹ",
                  (const char *const[]){"café", "café", "naïve", "ærø", "straße", "łódź", NULL});
    expect_tokens("Crème brûlée – 5€ «spécial»",
                  (const char *const[]){"crème", "brûlée", "5", "spécial", NULL});
    expect_tokens("ΑΘΗΝΑ Москва", (const char *const[]){"αθηνα", "москва", NULL});
    /* fullwidth ASCII becomes ASCII */
    expect_tokens("ＡＢＣ１２３", (const char *const[]){"abc123", NULL});
    /* invalid UTF-8 separates; a truncated sequence at the end is dropped */
    expect_tokens("ab\xff" "cd ef\xe4\xb8", (const char *const[]){"ab", "cd", "ef", NULL});
    /* overlong encoding of '/' and a surrogate are invalid */
    expect_tokens("x\xc0\xafy z\xed\xa0\x80w", (const char *const[]){"x", "y", "z", "w", NULL});
}

static int stop_cb(void *ud, const char *tok, size_t len) {
    int *n = ud;
    return ++*n == 2 ? 7 : 0;
}

static void test_tokenize_cjk(void **state) {
    expect_tokens("苹果手机壳", (const char *const[]){"苹", "果", "苹果", "手", "果手", "机", "手机",
                                                    "壳", "机壳", NULL});
    expect_tokens("iPhone手机 case",
                  (const char *const[]){"iphone", "手", "机", "手机", "case", NULL});
    /* CJK punctuation breaks the bigram chain */
    expect_tokens("你好，世界。", (const char *const[]){"你", "好", "你好", "世", "界", "世界", NULL});
    expect_tokens("한국어", (const char *const[]){"한", "국", "한국", "어", "국어", NULL});
    expect_tokens("東京タワー", (const char *const[]){"東", "京", "東京", "タ", "京タ", "ワ", "タワ",
                                                    "ー", "ワー", NULL});
    expect_tokens("ひら・カナ", (const char *const[]){"ひ", "ら", "ひら", "カ", "ナ", "カナ", NULL});
    /* stop on a nonzero callback return */
    int calls = 0;
    assert_int_equal(rf_tokenize("a b c", 5, stop_cb, &calls), 7);
    assert_int_equal(calls, 2);
}

/* ---- catalogs --------------------------------------------------------- */

static rf_catalog *cat_new(int64_t n) {
    rf_catalog *c = rf_calloc(1, sizeof *c);
    c->items = rf_calloc((size_t)n + 1, sizeof *c->items);
    c->n = n;
    return c;
}

static char *dup_or_null(const char *s) { return s ? rf_strdup(s) : NULL; }

static void cat_set(rf_catalog *c, int64_t i, const char *id, const char *title, const char *cat,
                    const char *brand, double price, int64_t stock, const char *attrs) {
    rf_item_info *it = &c->items[i];
    it->id = rf_strdup(id);
    it->title = dup_or_null(title);
    it->category = dup_or_null(cat);
    it->brand = dup_or_null(brand);
    it->price = price;
    it->stock = stock;
    it->attrs = dup_or_null(attrs);
}

static rf_idmap *map_of(const rf_catalog *c) {
    rf_idmap *m;
    assert_int_equal(rf_idmap_new(&m), 0);
    for (int64_t i = 0; i < c->n; i++) {
        int32_t id;
        assert_int_equal(rf_idmap_put(m, c->items[i].id, strlen(c->items[i].id), &id, NULL), 0);
    }
    return m;
}

static float entry(const rf_item_features *f, int32_t item, const char *name) {
    int32_t col = rf_idmap_find(f->names, name, strlen(name));
    if (col < 0) return 0;
    return rf_csr_get(f->x, item, col);
}

static double dot_items(const rf_item_features *f, int32_t a, int32_t b) {
    double s = 0;
    for (int32_t c = 0; c < f->n_feats; c++) s += (double)rf_csr_get(f->x, a, c) * rf_csr_get(f->x, b, c);
    for (int32_t d = 0; d < f->dim; d++)
        s += (double)f->dense[(size_t)a * f->dim + d] * f->dense[(size_t)b * f->dim + d];
    return s;
}

static void only(rf_features_opts *o, const char *block) {
    o->w_brand = strcmp(block, "brand") == 0;
    o->w_category = strcmp(block, "cat") == 0;
    o->w_price = strcmp(block, "price") == 0;
    o->w_tag = strcmp(block, "tag") == 0;
    o->w_text = strcmp(block, "text") == 0;
    o->w_vector = strcmp(block, "vector") == 0;
}

static void test_category_brand_tags(void **state) {
    rf_catalog *c = cat_new(5);
    cat_set(c, 0, "a", "x", "Fashion/Shoes/Running", "Zenix", NAN, -1, NULL);
    cat_set(c, 1, "b", "y", "fashion / shoes / Boots", "ZENIX", NAN, -1, "{\"genres\":[\"Comedy\",\"Drama\"]}");
    cat_set(c, 2, "c", "z", "Home", NULL, NAN, -1, "{\"tags\":\"drama| Thriller ;comedy\"}");
    cat_set(c, 3, "d", NULL, NULL, NULL, NAN, -1, "not json");
    cat_set(c, 4, "e", NULL, "Fashion>Shoes>Running", "Other", NAN, -1, NULL);
    rf_idmap *m = map_of(c);
    rf_features_opts o;
    rf_features_opts_default(&o);
    only(&o, "cat");
    rf_item_features *f;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_item_features_build(c, m, 5, &o, &f, &err), 0);
    assert_int_equal(f->n_matched, 5);
    /* levels 0.25, 0.5, 1 normalised */
    double n3 = sqrt(0.25 * 0.25 + 0.5 * 0.5 + 1);
    assert_float_equal(entry(f, 0, "cat:fashion"), 0.25 / n3, 1e-6);
    assert_float_equal(entry(f, 0, "cat:fashion/shoes"), 0.5 / n3, 1e-6);
    assert_float_equal(entry(f, 0, "cat:fashion/shoes/running"), 1 / n3, 1e-6);
    /* case, blanks and the '>' separator do not matter */
    assert_float_equal(dot_items(f, 0, 4), 1.0, 1e-6);
    assert_float_equal(dot_items(f, 0, 1), (0.25 * 0.25 + 0.5 * 0.5) / (n3 * n3), 1e-6);
    assert_float_equal(dot_items(f, 0, 2), 0, 0);
    assert_float_equal(entry(f, 2, "cat:home"), 1, 1e-6);
    assert_int_equal(f->x->indptr[4] - f->x->indptr[3], 0); /* no category: zero vector */
    /* blocks are contiguous and in name order */
    assert_int_equal(f->block_start[RF_FB_CATEGORY], 0);
    assert_int_equal(f->block_start[RF_FB_CATEGORY + 1], f->n_feats);
    for (int32_t k = 1; k < f->n_feats; k++)
        assert_true(strcmp(rf_idmap_str(f->names, k - 1), rf_idmap_str(f->names, k)) < 0);
    rf_item_features_free(f);

    only(&o, "brand");
    assert_int_equal(rf_item_features_build(c, m, 5, &o, &f, &err), 0);
    assert_float_equal(entry(f, 0, "brand:zenix"), 1, 1e-6);
    assert_float_equal(dot_items(f, 0, 1), 1, 1e-6);
    assert_float_equal(dot_items(f, 0, 4), 0, 0);
    rf_item_features_free(f);

    only(&o, "tag");
    assert_int_equal(rf_item_features_build(c, m, 5, &o, &f, &err), 0);
    assert_float_equal(entry(f, 1, "tag:comedy"), 1 / sqrt(2), 1e-6);
    assert_float_equal(entry(f, 2, "tag:thriller"), 1 / sqrt(3), 1e-6);
    assert_float_equal(dot_items(f, 1, 2), 2 / sqrt(6), 1e-6);
    rf_item_features_free(f);

    /* all blocks: the cosine is the weight-average of the block cosines
     * both items have (here category and brand) */
    rf_features_opts_default(&o);
    assert_int_equal(rf_item_features_build(c, m, 5, &o, &f, &err), 0);
    /* items 0 and 1: category cos 0.3/1.3125, brand cos 1; text: 'x','y'
     * are single-use tokens (dropped by min_df) */
    double cc = (0.25 * 0.25 + 0.5 * 0.5) / (n3 * n3);
    double want = (1.0 * cc + 0.5 * 1.0) / (sqrt(1.0 + 0.5) * sqrt(1.0 + 0.5 + 0.5));
    assert_float_equal(dot_items(f, 0, 1), want, 1e-6);
    for (int32_t j = 0; j < 5; j++) {
        double n2 = dot_items(f, j, j);
        assert_true(n2 == 0 || fabs(n2 - 1) < 1e-6);
    }
    rf_item_features_free(f);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

static void test_price_bands(void **state) {
    /* 25 priced shoes (scope: their category), 3 priced gadgets (too few:
     * the whole catalog is their scope), one unpriced item */
    rf_catalog *c = cat_new(29);
    char id[16];
    for (int i = 0; i < 25; i++) {
        snprintf(id, sizeof id, "s%d", i);
        cat_set(c, i, id, NULL, "Shoes", NULL, 10.0 + i, 1, NULL);
    }
    cat_set(c, 25, "g0", NULL, "Gadgets", NULL, 1.0, 1, NULL);
    cat_set(c, 26, "g1", NULL, "Gadgets", NULL, 1000.0, 1, NULL);
    cat_set(c, 27, "g2", NULL, "Gadgets", NULL, 30.0, 1, NULL);
    cat_set(c, 28, "n", NULL, "Gadgets", NULL, NAN, 1, NULL);
    rf_idmap *m = map_of(c);
    rf_features_opts o;
    rf_features_opts_default(&o);
    only(&o, "price");
    rf_item_features *f;
    assert_int_equal(rf_item_features_build(c, m, 29, &o, &f, NULL), 0);
    for (int i = 0; i < 25; i++) {
        int band = (int)floor(5 * (i + 0.5) / 25);
        char nm[32];
        snprintf(nm, sizeof nm, "price:%d", band);
        float main = entry(f, i, nm);
        double norm = sqrt(1 + (band > 0 ? 0.25 : 0) + (band < 4 ? 0.25 : 0));
        assert_float_equal(main, 1 / norm, 1e-6);
        if (band > 0) {
            snprintf(nm, sizeof nm, "price:%d", band - 1);
            assert_float_equal(entry(f, i, nm), 0.5 / norm, 1e-6);
        }
        if (band < 3) {
            snprintf(nm, sizeof nm, "price:%d", band + 2);
            assert_float_equal(entry(f, i, nm), 0, 0);
        }
    }
    /* global scope for the gadgets: 28 priced items; g0 (1.0) is the
     * cheapest of all, g1 (1000) the dearest, g2 (30, tied with one shoe)
     * has mid-rank 21.5 of 28: share 22/28, band 3 */
    assert_true(entry(f, 25, "price:0") > 0.8f);
    assert_true(entry(f, 26, "price:4") > 0.8f);
    assert_true(entry(f, 27, "price:3") > 0.8f);
    assert_int_equal(f->x->indptr[29] - f->x->indptr[28], 0);
    rf_item_features_free(f);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

/* TF-IDF against a direct recomputation from the tokeniser. */
typedef struct tfacc {
    char tok[32][80];
    double tf[32];
    int n;
    double scale;
} tfacc;

static int tf_cb(void *ud, const char *t, size_t len) {
    tfacc *a = ud;
    for (int i = 0; i < a->n; i++)
        if (strlen(a->tok[i]) == len && memcmp(a->tok[i], t, len) == 0) {
            a->tf[i] += a->scale;
            return 0;
        }
    memcpy(a->tok[a->n], t, len);
    a->tok[a->n][len] = 0;
    a->tf[a->n++] = a->scale;
    return 0;
}

static void test_tfidf(void **state) {
    const char *titles[] = {"red running shoe", "blue running shoe", "red kettle", "steel kettle red",
                            "手机壳 red", "手机 blue"};
    const char *descs[] = {"light shoe for running", NULL, "a kettle", NULL, "手机", NULL};
    const int n = 6;
    rf_catalog *c = cat_new(n);
    char id[8], attrs[128];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "t%d", i);
        if (descs[i]) snprintf(attrs, sizeof attrs, "{\"description\":\"%s\"}", descs[i]);
        cat_set(c, i, id, titles[i], NULL, NULL, NAN, -1, descs[i] ? attrs : NULL);
    }
    rf_idmap *m = map_of(c);
    rf_features_opts o;
    rf_features_opts_default(&o);
    only(&o, "text");
    o.min_df = 1;
    o.max_df = 1;
    o.title_weight = 2;
    rf_item_features *f;
    assert_int_equal(rf_item_features_build(c, m, n, &o, &f, NULL), 0);
    /* reference */
    tfacc acc[6];
    memset(acc, 0, sizeof acc);
    for (int i = 0; i < n; i++) {
        acc[i].scale = 2;
        rf_tokenize(titles[i], strlen(titles[i]), tf_cb, &acc[i]);
        acc[i].scale = 1;
        if (descs[i]) rf_tokenize(descs[i], strlen(descs[i]), tf_cb, &acc[i]);
    }
    for (int i = 0; i < n; i++) {
        double w[32], ss = 0;
        for (int t = 0; t < acc[i].n; t++) {
            int df = 0;
            for (int k = 0; k < n; k++)
                for (int u = 0; u < acc[k].n; u++) df += strcmp(acc[k].tok[u], acc[i].tok[t]) == 0;
            double idf = log((1.0 + n) / (1.0 + df)) + 1;
            w[t] = log(1 + acc[i].tf[t]) * idf;
            ss += w[t] * w[t];
        }
        int64_t row = f->x->indptr[i + 1] - f->x->indptr[i];
        assert_int_equal(row, acc[i].n);
        for (int t = 0; t < acc[i].n; t++) {
            char nm[96];
            snprintf(nm, sizeof nm, "text:%s", acc[i].tok[t]);
            float got = entry(f, i, nm);
            if (fabs(got - w[t] / sqrt(ss)) > 1e-6)
                fail_msg("item %d token %s: %.9f, expected %.9f", i, acc[i].tok[t], got, w[t] / sqrt(ss));
        }
    }
    rf_item_features_free(f);
    /* min_df 2 drops single-item tokens; max_df 0.5 drops 'red' (4 of 6) */
    o.min_df = 2;
    o.max_df = 0.5;
    assert_int_equal(rf_item_features_build(c, m, n, &o, &f, NULL), 0);
    assert_true(rf_idmap_find(f->names, "text:red", 8) < 0);
    assert_true(rf_idmap_find(f->names, "text:steel", 10) < 0);
    assert_true(rf_idmap_find(f->names, "text:kettle", 11) >= 0);
    assert_true(rf_idmap_find(f->names, "text:手机", strlen("text:手机")) >= 0);
    rf_item_features_free(f);
    /* max_vocab keeps the most frequent tokens */
    o.min_df = 1;
    o.max_df = 1;
    o.max_vocab = 1;
    assert_int_equal(rf_item_features_build(c, m, n, &o, &f, NULL), 0);
    assert_int_equal(f->n_feats, 1);
    assert_string_equal(rf_idmap_str(f->names, 0), "text:red");
    rf_item_features_free(f);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

static void test_dense_vectors(void **state) {
    rf_catalog *c = cat_new(5);
    cat_set(c, 0, "v0", NULL, NULL, NULL, NAN, -1, "{\"vector\":\"3 0 4\"}");
    cat_set(c, 1, "v1", NULL, NULL, NULL, NAN, -1, "{\"vector\":[0,1,0]}");
    cat_set(c, 2, "v2", NULL, NULL, NULL, NAN, -1, "{\"vector\":\"[1, 0; 0]\"}");
    cat_set(c, 3, "v3", NULL, NULL, NULL, NAN, -1, "{\"vector\":\"1 2\"}");     /* wrong dim */
    cat_set(c, 4, "v4", NULL, NULL, NULL, NAN, -1, "{\"vector\":\"1 x 2\"}");   /* not numbers */
    rf_idmap *m = map_of(c);
    rf_features_opts o;
    rf_features_opts_default(&o);
    rf_item_features *f;
    assert_int_equal(rf_item_features_build(c, m, 5, &o, &f, NULL), 0);
    assert_int_equal(f->dim, 3);
    assert_int_equal(f->n_vectors, 3);
    assert_int_equal(f->n_bad_vectors, 2);
    assert_float_equal(f->dense[0], 0.6, 1e-6);
    assert_float_equal(f->dense[2], 0.8, 1e-6);
    assert_float_equal(dot_items(f, 0, 2), 0.6, 1e-6);
    assert_float_equal(dot_items(f, 0, 1), 0, 1e-7);
    assert_float_equal(dot_items(f, 3, 3), 0, 0);
    rf_item_features_free(f);
    /* w_vector 0: no dense part */
    o.w_vector = 0;
    assert_int_equal(rf_item_features_build(c, m, 5, &o, &f, NULL), 0);
    assert_int_equal(f->dim, 0);
    assert_null(f->dense);
    rf_item_features_free(f);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

/* A random catalog with every block. */
static rf_catalog *random_catalog(int n, uint64_t seed) {
    static const char *words[] = {"red", "blue", "shoe", "kettle", "steel", "café", "手机", "壳",
                                  "light", "pro", "mini", "max"};
    static const char *cats[] = {"A/B", "A/C", "D/E", "D", "F/G/H"};
    rf_rng g;
    rf_rng_seed(&g, seed);
    rf_catalog *c = cat_new(n);
    for (int i = 0; i < n; i++) {
        char id[16], title[256] = "", attrs[256], brand[16];
        snprintf(id, sizeof id, "it%d", i);
        int nw = 1 + (int)rf_rng_below(&g, 4);
        for (int w = 0; w < nw; w++) {
            strcat(title, words[rf_rng_below(&g, 12)]);
            strcat(title, " ");
        }
        snprintf(brand, sizeof brand, "B%d", (int)rf_rng_below(&g, 4));
        snprintf(attrs, sizeof attrs, "{\"vector\":[%g,%g],\"tags\":\"t%d|t%d\"}",
                 rf_rng_normal(&g), rf_rng_normal(&g), (int)rf_rng_below(&g, 5),
                 (int)rf_rng_below(&g, 5));
        int has_attrs = rf_rng_uniform(&g) < 0.8;
        cat_set(c, i, id, title, cats[rf_rng_below(&g, 5)], rf_rng_uniform(&g) < 0.9 ? brand : NULL,
                rf_rng_uniform(&g) < 0.9 ? 1 + 100 * rf_rng_uniform(&g) : NAN, 1,
                has_attrs ? attrs : NULL);
    }
    return c;
}

static void test_profile_vs_brute_force(void **state) {
    const int n = 60;
    rf_catalog *c = random_catalog(n, 5);
    rf_idmap *m = map_of(c);
    rf_item_features *f;
    assert_int_equal(rf_item_features_build(c, m, n, NULL, &f, NULL), 0);
    assert_true(f->dim == 2);
    assert_true(f->block_start[RF_FB_TEXT + 1] > f->block_start[RF_FB_TEXT]);
    const int32_t D = f->n_feats + f->dim;
    double *X = calloc((size_t)n * D, sizeof *X);
    for (int32_t j = 0; j < n; j++) {
        for (int64_t q = f->x->indptr[j]; q < f->x->indptr[j + 1]; q++)
            X[(size_t)j * D + f->x->indices[q]] = f->x->data[q];
        for (int32_t d = 0; d < f->dim; d++) X[(size_t)j * D + f->n_feats + d] = f->dense[j * f->dim + d];
    }
    rf_profile *p;
    assert_int_equal(rf_profile_new(f, &p), 0);
    float *out = malloc(n * sizeof *out);
    rf_rng g;
    rf_rng_seed(&g, 9);
    for (int trial = 0; trial < 30; trial++) {
        int32_t items[8];
        float w[8];
        int64_t ts[8];
        int h = 1 + (int)rf_rng_below(&g, 8);
        for (int k = 0; k < h; k++) {
            items[k] = (int32_t)rf_rng_below(&g, n);
            w[k] = (float)(0.5 + 3 * rf_rng_uniform(&g));
            ts[k] = 1700000000 + (int64_t)rf_rng_below(&g, 100 * 86400);
        }
        double hl = trial % 3 == 0 ? 0 : 10;
        double tot = rf_profile_build(p, f, h, items, w, trial % 2 ? ts : NULL, hl);
        rf_profile_score(p, f, out);
        /* dense reference */
        double *pr = calloc(D, sizeof *pr), sum = 0;
        int64_t tref = 0;
        for (int k = 0; k < h; k++)
            if (ts[k] > tref) tref = ts[k];
        for (int k = 0; k < h; k++) {
            double cc = w[k];
            if (trial % 2 && hl > 0) cc *= pow(2, -(double)(tref - ts[k]) / (hl * 86400));
            double nn = 0;
            for (int32_t d = 0; d < D; d++) nn += X[(size_t)items[k] * D + d] * X[(size_t)items[k] * D + d];
            if (nn == 0) continue;
            sum += cc;
            for (int32_t d = 0; d < D; d++) pr[d] += cc * X[(size_t)items[k] * D + d];
        }
        assert_float_equal(tot, sum, 1e-9 * (1 + sum));
        double pn = 0;
        for (int32_t d = 0; d < D; d++) pn += pr[d] * pr[d];
        pn = sqrt(pn);
        for (int32_t j = 0; j < n; j++) {
            double s = 0, xn = 0;
            for (int32_t d = 0; d < D; d++) {
                s += pr[d] * X[(size_t)j * D + d];
                xn += X[(size_t)j * D + d] * X[(size_t)j * D + d];
            }
            double want = pn > 0 && xn > 0 ? s / (pn * sqrt(xn)) : 0;
            if (fabs(out[j] - want) > 2e-5) fail_msg("trial %d item %d: %.7f vs %.7f", trial, j, out[j], want);
        }
        free(pr);
    }
    /* empty profile scores 0 */
    assert_float_equal(rf_profile_build(p, f, 0, NULL, NULL, NULL, 0), 0, 0);
    rf_profile_score(p, f, out);
    for (int j = 0; j < n; j++) assert_float_equal(out[j], 0, 0);
    rf_profile_free(p);
    rf_profile_free(NULL);
    free(out);
    free(X);
    rf_item_features_free(f);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

/* Catalog order does not matter; rows unknown to the map are ignored;
 * map items without a row get zero vectors. */
static void test_catalog_order(void **state) {
    const int n = 40;
    rf_catalog *c = random_catalog(n, 11);
    rf_idmap *m = map_of(c);
    int32_t id;
    assert_int_equal(rf_idmap_put(m, "norow", 5, &id, NULL), 0);
    rf_catalog *r = cat_new(n + 1);
    for (int i = 0; i < n; i++) {
        const rf_item_info *s = &c->items[n - 1 - i];
        cat_set(r, i, s->id, s->title, s->category, s->brand, s->price, s->stock, s->attrs);
    }
    cat_set(r, n, "stranger", "red shoe", "A/B", NULL, 5, 1, NULL);
    rf_item_features *f1, *f2;
    assert_int_equal(rf_item_features_build(c, m, n + 1, NULL, &f1, NULL), 0);
    assert_int_equal(rf_item_features_build(r, m, n + 1, NULL, &f2, NULL), 0);
    assert_int_equal(f2->n_matched, n);
    assert_int_equal(f1->n_feats, f2->n_feats);
    assert_int_equal(f1->x->nnz, f2->x->nnz);
    assert_memory_equal(f1->x->indptr, f2->x->indptr, (n + 2) * sizeof(int64_t));
    assert_memory_equal(f1->x->indices, f2->x->indices, f1->x->nnz * sizeof(int32_t));
    assert_memory_equal(f1->x->data, f2->x->data, f1->x->nnz * sizeof(float));
    assert_memory_equal(f1->dense, f2->dense, (size_t)(n + 1) * f1->dim * sizeof(float));
    assert_int_equal(f1->x->indptr[n + 1] - f1->x->indptr[n], 0);
    rf_item_features_free(f1);
    rf_item_features_free(f2);
    /* no catalog at all */
    assert_int_equal(rf_item_features_build(NULL, m, n + 1, NULL, &f1, NULL), 0);
    assert_int_equal(f1->n_feats, 0);
    assert_int_equal(f1->x->nnz, 0);
    rf_item_features_free(f1);
    /* bad options and sizes */
    rf_features_opts o;
    rf_features_opts_default(&o);
    o.price_bands = 1;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_item_features_build(c, m, n, &o, &f1, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "price_bands"));
    assert_int_equal(rf_item_features_build(c, m, n + 5, NULL, &f1, &err), RF_EINVAL);
    assert_null(f1);
    rf_catalog_free(r);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

static void test_save_load(void **state) {
    const int n = 30;
    rf_catalog *c = random_catalog(n, 21);
    rf_idmap *m = map_of(c);
    rf_item_features *f, *g = NULL;
    assert_int_equal(rf_item_features_build(c, m, n, NULL, &f, NULL), 0);
    char *dir = rf_test_tmpdir("features");
    char path[1024];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    rf_writer *w;
    assert_int_equal(rf_writer_open(path, "RFTEST\0\0", 1, &w, NULL), 0);
    assert_int_equal(rf_item_features_save(f, w), 0);
    assert_int_equal(rf_writer_commit(w, NULL), 0);
    rf_reader *r;
    uint32_t v;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 1, &v, &r, NULL), 0);
    assert_int_equal(rf_item_features_load(r, n + 1, &g, &err), RF_EFORMAT); /* wrong item count */
    rf_reader_close(r);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 1, &v, &r, NULL), 0);
    assert_int_equal(rf_item_features_load(r, n, &g, &err), 0);
    assert_int_equal(rf_reader_remaining(r), 0);
    rf_reader_close(r);
    assert_int_equal(g->n_feats, f->n_feats);
    assert_int_equal(g->dim, f->dim);
    assert_memory_equal(g->block_start, f->block_start, sizeof f->block_start);
    assert_memory_equal(g->x->indices, f->x->indices, f->x->nnz * sizeof(int32_t));
    assert_memory_equal(g->x->data, f->x->data, f->x->nnz * sizeof(float));
    assert_memory_equal(g->xt->data, f->xt->data, f->xt->nnz * sizeof(float));
    assert_memory_equal(g->dense, f->dense, (size_t)n * f->dim * sizeof(float));
    for (int32_t k = 0; k < f->n_feats; k++)
        assert_string_equal(rf_idmap_str(g->names, k), rf_idmap_str(f->names, k));
    rf_item_features_free(g);

    /* a column index out of range inside a valid file: RF_EFORMAT */
    f->x->indices[0] = f->n_feats + 3;
    assert_int_equal(rf_writer_open(path, "RFTEST\0\0", 1, &w, NULL), 0);
    assert_int_equal(rf_item_features_save(f, w), 0);
    assert_int_equal(rf_writer_commit(w, NULL), 0);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 1, &v, &r, NULL), 0);
    g = NULL;
    assert_int_equal(rf_item_features_load(r, n, &g, &err), RF_EFORMAT);
    assert_null(g);
    rf_reader_close(r);
    rf_test_rmtree(dir);
    free(dir);
    rf_item_features_free(f);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

/* ---- filters -------------------------------------------------------------- */

static void test_category_match(void **state) {
    assert_true(rf_category_match("Fashion/Shoes", "Shoes"));
    assert_true(rf_category_match("Fashion/Shoes", "shoes"));
    assert_true(rf_category_match("Fashion/Shoes/Boots", "Shoes"));
    assert_true(rf_category_match("Fashion / Shoes", "fashion/shoes"));
    assert_true(rf_category_match("Fashion>Shoes>Boots", "Shoes/Boots"));
    assert_true(rf_category_match("Fashion/Shoes", "Fashion"));
    assert_false(rf_category_match("Fashion/Snowshoes", "Shoes"));
    assert_false(rf_category_match("Fashion/Shoes", "Fashion/Boots"));
    assert_false(rf_category_match("Shoes", "Fashion/Shoes"));
    assert_false(rf_category_match(NULL, "Shoes"));
    assert_true(rf_category_match(NULL, ""));
    assert_true(rf_category_match("Home/Kitchen", "Shoes,Kitchen"));
    assert_false(rf_category_match("Home/Kitchen", "Shoes, Garden"));
}

static void test_filter_build(void **state) {
    rf_catalog *c = cat_new(6);
    cat_set(c, 0, "a", NULL, "Fashion/Shoes", NULL, 40, 3, NULL);
    cat_set(c, 1, "b", NULL, "Fashion/Shoes", NULL, 60, 3, NULL);
    cat_set(c, 2, "c", NULL, "Fashion/Shoes", NULL, 20, 0, NULL);
    cat_set(c, 3, "d", NULL, "Fashion/Shoes", NULL, NAN, -1, NULL);
    cat_set(c, 4, "e", NULL, "Home", NULL, 10, 5, NULL);
    cat_set(c, 5, "zz", NULL, "Fashion/Shoes", NULL, 1, 1, NULL); /* not in the map */
    rf_idmap *m;
    assert_int_equal(rf_idmap_new(&m), 0);
    const char *ids[] = {"e", "d", "c", "b", "a", "norow"};
    for (int i = 0; i < 6; i++) {
        int32_t id;
        rf_idmap_put(m, ids[i], strlen(ids[i]), &id, NULL);
    }
    uint8_t ex[6];
    int32_t pass;
    rf_item_filter_spec s;
    rf_item_filter_spec_init(&s);
    assert_false(rf_item_filter_active(&s));
    assert_int_equal(rf_item_filter_build(c, m, 6, &s, ex, &pass, NULL), 0);
    assert_int_equal(pass, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(ex[i], 0);
    s.category = "Shoes";
    s.max_price = 50;
    s.in_stock = 1;
    assert_true(rf_item_filter_active(&s));
    assert_int_equal(rf_item_filter_build(c, m, 6, &s, ex, &pass, NULL), 0);
    uint8_t want[6] = {1, 1, 1, 1, 0, 1}; /* only "a" (id 4) */
    assert_memory_equal(ex, want, 6);
    assert_int_equal(pass, 1);
    rf_item_filter_spec_init(&s);
    s.min_price = 15;
    assert_int_equal(rf_item_filter_build(c, m, 6, &s, ex, &pass, NULL), 0);
    uint8_t want2[6] = {1, 1, 0, 0, 0, 1}; /* c, b, a; d has no price; e too cheap */
    assert_memory_equal(ex, want2, 6);
    assert_int_equal(pass, 3);
    rf_item_filter_spec_init(&s);
    s.in_stock = 1;
    assert_int_equal(rf_item_filter_build(c, m, 5, &s, ex, &pass, NULL), 0);
    assert_int_equal(pass, 3); /* e, b, a */
    s.min_price = 50;
    s.max_price = 10;
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(rf_item_filter_build(c, m, 6, &s, ex, &pass, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "above"));
    /* no catalog: an active filter excludes everything */
    rf_item_filter_spec_init(&s);
    s.in_stock = 1;
    assert_int_equal(rf_item_filter_build(NULL, m, 6, &s, ex, &pass, NULL), 0);
    assert_int_equal(pass, 0);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

/* Every allocation of a build fails in turn: clean RF_ENOMEM, no leak. */
static void test_oom(void **state) {
    rf_catalog *c = random_catalog(20, 3);
    rf_idmap *m = map_of(c);
    int ok = 0;
    for (long k = 0; k < 5000 && !ok; k++) {
        rf_item_features *f = NULL;
        rf_mem_fail_after(k);
        int rc = rf_item_features_build(c, m, 20, NULL, &f, NULL);
        rf_mem_fail_after(-1);
        if (rc == 0) ok = 1;
        else assert_int_equal(rc, RF_ENOMEM);
        rf_item_features_free(f);
    }
    assert_true(ok);
    rf_idmap_free(m);
    rf_catalog_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_ascii),
        cmocka_unit_test(test_tokenize_latin),
        cmocka_unit_test(test_tokenize_cjk),
        cmocka_unit_test(test_category_brand_tags),
        cmocka_unit_test(test_price_bands),
        cmocka_unit_test(test_tfidf),
        cmocka_unit_test(test_dense_vectors),
        cmocka_unit_test(test_profile_vs_brute_force),
        cmocka_unit_test(test_catalog_order),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_category_match),
        cmocka_unit_test(test_filter_build),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
