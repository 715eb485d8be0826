/* items.c - item feature vectors from the catalog (features.h): brand,
 * category path, price band, tags, TF-IDF text and optional dense
 * vectors; and their storage inside model files.
 *
 * DESIGN: one pass over the catalog interns every feature name
 * ("brand:zenix", "text:camera", ...) into one provisional id map and
 * records (item, feature, value) triplets; price bands and the text
 * vocabulary (document frequencies) are only known after the pass, so
 * they are resolved afterwards. Final columns are the kept names in
 * bytewise order - the block prefixes sort brand < cat < price < tag <
 * text, which gives contiguous blocks - so the column layout depends only
 * on the catalog, not on its row order. The matrix is built with
 * rf_csr_from_coo (deterministic) and normalised row by row: each block to
 * unit length times sqrt(its weight), then the whole row (with the dense
 * part) to unit length. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/features.h"
#include "recfuse/mem.h"
#include "recfuse/store.h"

void rf_features_opts_default(rf_features_opts *o) {
    memset(o, 0, sizeof *o);
    o->w_brand = 0.5;
    o->w_category = 1;
    o->w_price = 0.25;
    o->w_tag = 0.5;
    o->w_text = 1;
    o->w_vector = 1;
    o->price_bands = 5;
    o->min_df = 2;
    o->max_df = 0.5;
    o->max_vocab = 100000;
    o->title_weight = 2;
}

const char *rf_features_opts_check(const rf_features_opts *o) {
    const double w[] = {o->w_brand, o->w_category, o->w_price, o->w_tag, o->w_text, o->w_vector};
    for (int i = 0; i < 6; i++)
        if (!(w[i] >= 0) || !isfinite(w[i])) return "block weights must be finite and >= 0";
    if (o->price_bands < 2 || o->price_bands > 100) return "price_bands must be in [2, 100]";
    if (o->min_df < 1) return "min_df must be >= 1";
    if (!(o->max_df > 0 && o->max_df <= 1)) return "max_df must be in (0, 1]";
    if (o->max_vocab < 1) return "max_vocab must be >= 1";
    if (!(o->title_weight > 0) || !isfinite(o->title_weight)) return "title_weight must be > 0";
    return NULL;
}

/* ---- growable arrays ---------------------------------------------------- */

typedef struct triplets {
    int64_t n, cap;
    int32_t *item, *feat;
    float *val;
} triplets;

static int trip_push(triplets *t, int32_t item, int32_t feat, float val) {
    if (t->n == t->cap) {
        int64_t nc = t->cap ? t->cap * 2 : 1024;
        int32_t *a = rf_realloc_array(t->item, (size_t)nc, sizeof *a);
        if (!a) return RF_ENOMEM;
        t->item = a;
        int32_t *b = rf_realloc_array(t->feat, (size_t)nc, sizeof *b);
        if (!b) return RF_ENOMEM;
        t->feat = b;
        float *c = rf_realloc_array(t->val, (size_t)nc, sizeof *c);
        if (!c) return RF_ENOMEM;
        t->val = c;
        t->cap = nc;
    }
    t->item[t->n] = item;
    t->feat[t->n] = feat;
    t->val[t->n] = val;
    t->n++;
    return 0;
}

static void trip_free(triplets *t) {
    rf_free(t->item);
    rf_free(t->feat);
    rf_free(t->val);
}

/* Per provisional feature: its block and, for text, the document frequency. */
typedef struct featinfo {
    int32_t n, cap;
    uint8_t *block;
    int32_t *df;
} featinfo;

static int fi_grow(featinfo *fi, int32_t need) {
    if (need <= fi->cap) return 0;
    int32_t nc = fi->cap ? fi->cap : 256;
    while (nc < need) nc *= 2;
    uint8_t *b = rf_realloc(fi->block, (size_t)nc);
    if (!b) return RF_ENOMEM;
    fi->block = b;
    int32_t *d = rf_realloc_array(fi->df, (size_t)nc, sizeof *d);
    if (!d) return RF_ENOMEM;
    fi->df = d;
    fi->cap = nc;
    return 0;
}

/* ---- names ---------------------------------------------------------------- */

typedef struct namebuf {
    char s[512];
    size_t n;
    int overflow;
} namebuf;

static void nb_reset(namebuf *b, const char *prefix) {
    b->n = strlen(prefix);
    memcpy(b->s, prefix, b->n);
    b->overflow = 0;
}

static void nb_put(namebuf *b, const char *s, size_t n) {
    if (b->n + n >= sizeof b->s) {
        b->overflow = 1;
        return;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
}

typedef struct lower_ctx {
    namebuf *b;
    int first;
} lower_ctx;

/* Append the tokens of s joined by single spaces: a case-folded,
 * punctuation-insensitive form of a brand, tag or category segment. */
static int lower_cb(void *ud, const char *tok, size_t len) {
    lower_ctx *c = ud;
    if (!c->first) nb_put(c->b, " ", 1);
    c->first = 0;
    nb_put(c->b, tok, len);
    return 0;
}

/* Append the normal form of s[0..len); returns 1 if it was non-empty. */
static int nb_put_norm(namebuf *b, const char *s, size_t len) {
    lower_ctx c = {b, 1};
    rf_tokenize(s, len, lower_cb, &c);
    return !c.first;
}

typedef struct builder {
    const rf_features_opts *o;
    rf_idmap *vocab;
    featinfo fi;
    triplets t;
    /* per-item text scratch */
    int32_t *tok_id;
    float *tok_tf;
    int64_t tok_n, tok_cap;
    float tok_scale;
    int oom;
} builder;

/* Intern name b into the provisional vocabulary. */
static int intern(builder *B, const namebuf *b, rf_feature_block block, int32_t *id) {
    int added = 0;
    if (rf_idmap_put(B->vocab, b->s, b->n, id, &added)) return RF_ENOMEM;
    if (added) {
        if (fi_grow(&B->fi, *id + 1)) return RF_ENOMEM;
        B->fi.block[*id] = (uint8_t)block;
        B->fi.df[*id] = 0;
        B->fi.n = *id + 1;
    }
    return 0;
}

static int add_named(builder *B, int32_t item, const namebuf *b, rf_feature_block block,
                     float val, int32_t *id_out) {
    if (b->overflow) return 0; /* absurdly long name: ignored */
    int32_t id;
    if (intern(B, b, block, &id)) return RF_ENOMEM;
    if (id_out) *id_out = id;
    return trip_push(&B->t, item, id, val);
}

static int text_cb(void *ud, const char *tok, size_t len) {
    builder *B = ud;
    namebuf b;
    nb_reset(&b, "text:");
    nb_put(&b, tok, len);
    int32_t id;
    if (intern(B, &b, RF_FB_TEXT, &id)) return RF_ENOMEM;
    if (B->tok_n == B->tok_cap) {
        int64_t nc = B->tok_cap ? B->tok_cap * 2 : 256;
        int32_t *a = rf_realloc_array(B->tok_id, (size_t)nc, sizeof *a);
        if (!a) return RF_ENOMEM;
        B->tok_id = a;
        float *f = rf_realloc_array(B->tok_tf, (size_t)nc, sizeof *f);
        if (!f) return RF_ENOMEM;
        B->tok_tf = f;
        B->tok_cap = nc;
    }
    B->tok_id[B->tok_n] = id;
    B->tok_tf[B->tok_n] = B->tok_scale;
    B->tok_n++;
    return 0;
}

typedef struct idtf {
    int32_t id;
    float tf;
} idtf;

static int cmp_idtf(const void *a, const void *b) {
    const idtf *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Fold the item's text tokens into (token, tf) triplets and count df. */
static int flush_text(builder *B, int32_t item) {
    if (B->tok_n == 0) return 0;
    idtf *p = rf_malloc_array((size_t)B->tok_n, sizeof *p);
    if (!p) return RF_ENOMEM;
    for (int64_t i = 0; i < B->tok_n; i++) {
        p[i].id = B->tok_id[i];
        p[i].tf = B->tok_tf[i];
    }
    /* stable for equal ids is not needed: tf values are summed */
    qsort(p, (size_t)B->tok_n, sizeof *p, cmp_idtf);
    int rc = 0;
    for (int64_t i = 0; i < B->tok_n && rc == 0;) {
        int64_t k = i;
        double tf = 0;
        while (k < B->tok_n && p[k].id == p[i].id) tf += p[k++].tf;
        B->fi.df[p[i].id]++;
        rc = trip_push(&B->t, item, p[i].id, (float)tf);
        i = k;
    }
    rf_free(p);
    B->tok_n = 0;
    return rc;
}

/* Tags: a JSON array of strings, or a string split at | , ; */
static int add_tags(builder *B, int32_t item, json_t *v) {
    namebuf b;
    int rc = 0;
    if (json_is_array(v)) {
        size_t k;
        json_t *e;
        json_array_foreach(v, k, e) {
            if (!json_is_string(e)) continue;
            nb_reset(&b, "tag:");
            if (nb_put_norm(&b, json_string_value(e), json_string_length(e)) &&
                (rc = add_named(B, item, &b, RF_FB_TAG, 1.0f, NULL)))
                return rc;
        }
        return 0;
    }
    if (!json_is_string(v)) return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t a = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '|' && s[i] != ',' && s[i] != ';') continue;
        nb_reset(&b, "tag:");
        if (nb_put_norm(&b, s + a, i - a) && (rc = add_named(B, item, &b, RF_FB_TAG, 1.0f, NULL)))
            return rc;
        a = i + 1;
    }
    return 0;
}

/* Parse a dense vector (JSON array, or numbers in a string). Returns the
 * count parsed into out (up to cap), or -1 if anything is not a finite
 * number; *more is set when there were more than cap values. */
static int64_t parse_vector(json_t *v, float *out, int64_t cap, int *more) {
    *more = 0;
    int64_t n = 0;
    if (json_is_array(v)) {
        size_t k;
        json_t *e;
        json_array_foreach(v, k, e) {
            if (!json_is_number(e)) return -1;
            double x = json_number_value(e);
            if (!isfinite(x)) return -1;
            if (n < cap) out[n] = (float)x;
            else *more = 1;
            n++;
        }
        return n;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    const char *end = s + json_string_length(v);
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == ',' || *s == ';' || *s == '[' ||
                           *s == ']' || *s == '\n' || *s == '\r'))
            s++;
        if (s >= end) break;
        char *e;
        double x = strtod(s, &e);
        if (e == s || !isfinite(x)) return -1;
        if (n < cap) out[n] = (float)x;
        else *more = 1;
        n++;
        s = e;
    }
    return n;
}

/* Category path segments split at '/' or '>'. *full and *top receive the
 * provisional ids of the deepest and the top-level name (-1 if none). */
static int add_category(builder *B, int32_t item, const char *cat, int32_t *full, int32_t *top) {
    *full = *top = -1;
    if (!cat) return 0;
    /* count segments first to weight levels */
    const char *segs[32];
    size_t lens[32];
    int L = 0;
    const char *p = cat, *a = cat;
    for (;; p++) {
        if (*p == '/' || *p == '>' || *p == 0) {
            namebuf probe;
            nb_reset(&probe, "");
            if (nb_put_norm(&probe, a, (size_t)(p - a)) && L < 32) {
                segs[L] = a;
                lens[L] = (size_t)(p - a);
                L++;
            }
            if (*p == 0) break;
            a = p + 1;
        }
    }
    if (L == 0) return 0;
    namebuf b;
    nb_reset(&b, "cat:");
    for (int l = 0; l < L; l++) {
        if (l) nb_put(&b, "/", 1);
        nb_put_norm(&b, segs[l], lens[l]);
        if (b.overflow) break;
        int32_t id;
        float w = (float)ldexp(1.0, -(L - 1 - l)); /* deepest level 1, each level up half */
        if (B->o->w_category > 0) {
            int rc = add_named(B, item, &b, RF_FB_CATEGORY, w, &id);
            if (rc) return rc;
        } else if (intern(B, &b, RF_FB_CATEGORY, &id)) {
            return RF_ENOMEM; /* interned for price scopes only */
        }
        if (l == 0) *top = id;
        *full = id;
    }
    return 0;
}

typedef struct priced {
    int32_t item;
    int32_t scope;
    double price;
} priced;

static int cmp_priced(const void *a, const void *b) {
    const priced *x = a, *y = b;
    if (x->scope != y->scope) return x->scope < y->scope ? -1 : 1;
    if (x->price != y->price) return x->price < y->price ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* First index of sorted a[0..n) with a[i] >= v. */
static int64_t lower_bound(const double *a, int64_t n, double v) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

typedef struct named {
    int32_t prov;
    const char *s;
    size_t len;
    int32_t df;
} named;

static int cmp_named(const void *a, const void *b) {
    const named *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int cmp_df_then_name(const void *a, const void *b) {
    const named *x = a, *y = b;
    if (x->df != y->df) return x->df > y->df ? -1 : 1;
    return cmp_named(a, b);
}

void rf_item_features_free(rf_item_features *f) {
    if (!f) return;
    rf_csr_free(f->x);
    rf_csr_free(f->xt);
    rf_free(f->dense);
    rf_idmap_free(f->names);
    rf_free(f);
}

int64_t rf_item_features_bytes(const rf_item_features *f) {
    if (!f) return 0;
    return rf_csr_bytes(f->x) + rf_csr_bytes(f->xt) +
           (int64_t)f->n_items * f->dim * (int64_t)sizeof(float);
}

/* Normalise rows in place: per block to sqrt(w_b), the dense part to
 * sqrt(w_vector), then the whole row to unit length. has_dense[j] marks
 * items with a vector. */
static void normalise(rf_item_features *f, const rf_features_opts *o, const uint8_t *has_dense) {
    const double bw[RF_FB_COUNT] = {o->w_brand, o->w_category, o->w_price, o->w_tag, o->w_text};
    rf_csr *x = f->x;
    for (int32_t j = 0; j < f->n_items; j++) {
        double total = 0;
        int64_t q = x->indptr[j];
        for (int b = 0; b < RF_FB_COUNT; b++) {
            int64_t q0 = q;
            double ss = 0;
            while (q < x->indptr[j + 1] && x->indices[q] < f->block_start[b + 1]) {
                ss += (double)x->data[q] * x->data[q];
                q++;
            }
            if (ss <= 0) continue;
            double s = sqrt(bw[b] / ss);
            for (int64_t r = q0; r < q; r++) x->data[r] = (float)(x->data[r] * s);
            total += bw[b];
        }
        float *dv = f->dim ? f->dense + (size_t)j * (size_t)f->dim : NULL;
        if (dv && has_dense[j]) {
            double ss = 0;
            for (int32_t d = 0; d < f->dim; d++) ss += (double)dv[d] * dv[d];
            if (ss > 0) {
                double s = sqrt(o->w_vector / ss);
                for (int32_t d = 0; d < f->dim; d++) dv[d] = (float)(dv[d] * s);
                total += o->w_vector;
            } else {
                memset(dv, 0, (size_t)f->dim * sizeof *dv);
            }
        }
        if (total <= 0) continue;
        double s = 1.0 / sqrt(total);
        for (int64_t r = x->indptr[j]; r < x->indptr[j + 1]; r++) x->data[r] = (float)(x->data[r] * s);
        if (dv)
            for (int32_t d = 0; d < f->dim; d++) dv[d] = (float)(dv[d] * s);
    }
}

int rf_item_features_build(const rf_catalog *cat, const rf_idmap *items, int32_t n_items,
                           const rf_features_opts *o, rf_item_features **out, rf_err *err) {
    *out = NULL;
    rf_features_opts def;
    if (!o) {
        rf_features_opts_default(&def);
        o = &def;
    }
    const char *bad = rf_features_opts_check(o);
    if (bad) return rf_err_set(err, RF_EINVAL, "item features: %s", bad);
    if (n_items < 0 || (items && n_items > rf_idmap_size(items)) || (!items && n_items > 0))
        return rf_err_set(err, RF_EINVAL, "item features: %d items but the map holds %d",
                          (int)n_items, items ? (int)rf_idmap_size(items) : 0);

    int rc = RF_ENOMEM;
    builder B;
    memset(&B, 0, sizeof B);
    B.o = o;
    rf_item_features *f = rf_calloc(1, sizeof *f);
    int32_t *cat_full = rf_malloc_array((size_t)n_items + 1, sizeof *cat_full);
    int32_t *cat_top = rf_malloc_array((size_t)n_items + 1, sizeof *cat_top);
    double *price = rf_malloc_array((size_t)n_items + 1, sizeof *price);
    uint8_t *has_dense = rf_calloc((size_t)n_items + 1, 1);
    uint8_t *seen = rf_calloc((size_t)n_items + 1, 1);
    float *vecbuf = NULL;
    int64_t vcap = 0;
    int32_t *p2c = NULL, *cnt = NULL, *rows = NULL, *cols = NULL;
    float *vals = NULL;
    priced *pr = NULL;
    double *allp = NULL;
    named *nm = NULL;
    if (!f || !cat_full || !cat_top || !price || !has_dense || !seen || rf_idmap_new(&B.vocab))
        goto fail;
    f->n_items = n_items;
    for (int32_t j = 0; j < n_items; j++) {
        cat_full[j] = cat_top[j] = -1;
        price[j] = NAN;
    }

    /* ---- one pass over the catalog ---- */
    int64_t n_text_items = 0;
    for (int64_t r = 0; cat && r < cat->n; r++) {
        const rf_item_info *it = &cat->items[r];
        if (!it->id) continue;
        int32_t j = rf_idmap_find(items, it->id, strlen(it->id));
        if (j < 0 || j >= n_items) continue;
        if (seen[j]) continue; /* a second row with the same id: the first wins */
        seen[j] = 1;
        f->n_matched++;
        namebuf b;
        if (it->brand && o->w_brand > 0) {
            nb_reset(&b, "brand:");
            if (nb_put_norm(&b, it->brand, strlen(it->brand)) &&
                (rc = add_named(&B, j, &b, RF_FB_BRAND, 1.0f, NULL)))
                goto fail_rc;
        }
        if ((rc = add_category(&B, j, it->category, &cat_full[j], &cat_top[j]))) goto fail_rc;
        if (isfinite(it->price) && it->price >= 0) price[j] = it->price;
        json_t *attrs = NULL;
        if (it->attrs) attrs = json_loads(it->attrs, JSON_DECODE_ANY, NULL);
        if (attrs && !json_is_object(attrs)) {
            json_decref(attrs);
            attrs = NULL;
        }
        if (o->w_text > 0) {
            B.tok_scale = (float)o->title_weight;
            if (it->title && (rc = rf_tokenize(it->title, strlen(it->title), text_cb, &B))) {
                json_decref(attrs);
                goto fail_rc;
            }
            json_t *d = attrs ? json_object_get(attrs, "description") : NULL;
            if (attrs && !d) d = json_object_get(attrs, "desc");
            B.tok_scale = 1.0f;
            if (json_is_string(d) &&
                (rc = rf_tokenize(json_string_value(d), json_string_length(d), text_cb, &B))) {
                json_decref(attrs);
                goto fail_rc;
            }
            if (B.tok_n > 0) n_text_items++;
            if ((rc = flush_text(&B, j))) {
                json_decref(attrs);
                goto fail_rc;
            }
        }
        if (attrs && o->w_tag > 0) {
            static const char *const keys[] = {"tags", "genres", "keywords"};
            for (int k = 0; k < 3; k++) {
                json_t *v = json_object_get(attrs, keys[k]);
                if (v && (rc = add_tags(&B, j, v))) {
                    json_decref(attrs);
                    goto fail_rc;
                }
            }
        }
        json_t *vec = attrs && o->w_vector > 0 ? json_object_get(attrs, "vector") : NULL;
        if (vec) {
            int more;
            if (f->dim == 0) {
                /* first vector: learn the dimension */
                int64_t n = parse_vector(vec, NULL, 0, &more);
                if (n > 0 && n <= 1000000) {
                    vcap = n;
                    f->dim = (int32_t)n;
                    f->dense = rf_calloc((size_t)n_items * (size_t)n + 1, sizeof *f->dense);
                    vecbuf = rf_malloc_array((size_t)n + 1, sizeof *vecbuf);
                    if (!f->dense || !vecbuf) {
                        json_decref(attrs);
                        goto fail;
                    }
                }
            }
            if (f->dim > 0) {
                int64_t n = parse_vector(vec, vecbuf, vcap, &more);
                if (n == f->dim && !more) {
                    memcpy(f->dense + (size_t)j * (size_t)f->dim, vecbuf, (size_t)f->dim * sizeof *vecbuf);
                    has_dense[j] = 1;
                    f->n_vectors++;
                } else {
                    f->n_bad_vectors++;
                }
            } else {
                f->n_bad_vectors++;
            }
        }
        json_decref(attrs);
    }

    /* ---- price bands ---- */
    if (o->w_price > 0) {
        int64_t np = 0;
        for (int32_t j = 0; j < n_items; j++) np += !isnan(price[j]);
        if (np > 0) {
            cnt = rf_calloc((size_t)B.fi.n + 1, sizeof *cnt);
            pr = rf_malloc_array((size_t)np, sizeof *pr);
            if (!cnt || !pr) goto fail;
            for (int32_t j = 0; j < n_items; j++)
                if (!isnan(price[j])) {
                    if (cat_full[j] >= 0) cnt[cat_full[j]]++;
                    if (cat_top[j] >= 0 && cat_top[j] != cat_full[j]) cnt[cat_top[j]]++;
                }
            const int32_t need = 4 * o->price_bands > 20 ? 4 * o->price_bands : 20;
            int64_t k = 0;
            for (int32_t j = 0; j < n_items; j++) {
                if (isnan(price[j])) continue;
                int32_t scope = -1;
                if (cat_full[j] >= 0 && cnt[cat_full[j]] >= need) scope = cat_full[j];
                else if (cat_top[j] >= 0 && cnt[cat_top[j]] >= need) scope = cat_top[j];
                pr[k].item = j;
                pr[k].scope = scope;
                pr[k].price = price[j];
                k++;
            }
            /* all prices, for items ranked against the whole catalog */
            allp = rf_malloc_array((size_t)np, sizeof *allp);
            if (!allp) goto fail;
            for (int64_t q = 0; q < np; q++) allp[q] = pr[q].price;
            qsort(allp, (size_t)np, sizeof *allp, cmp_double);
            qsort(pr, (size_t)np, sizeof *pr, cmp_priced);
            for (int64_t s0 = 0; s0 < np;) {
                int64_t s1 = s0;
                while (s1 < np && pr[s1].scope == pr[s0].scope) s1++;
                const int global = pr[s0].scope < 0;
                const double ns = global ? (double)np : (double)(s1 - s0);
                for (int64_t a = s0; a < s1;) {
                    int64_t e = a;
                    while (e < s1 && pr[e].price == pr[a].price) e++;
                    /* mid-rank of the price within its scope */
                    double mid;
                    if (global) {
                        int64_t lo = lower_bound(allp, np, pr[a].price);
                        int64_t hi = lo;
                        while (hi < np && allp[hi] == pr[a].price) hi++;
                        mid = ((double)lo + (double)(hi - 1)) / 2.0;
                    } else {
                        mid = ((double)(a - s0) + (double)(e - 1 - s0)) / 2.0;
                    }
                    int band = (int)floor(o->price_bands * (mid + 0.5) / ns);
                    if (band >= o->price_bands) band = o->price_bands - 1;
                    if (band < 0) band = 0;
                    for (int64_t q = a; q < e; q++) {
                        for (int d = -1; d <= 1; d++) {
                            int bb = band + d;
                            if (bb < 0 || bb >= o->price_bands) continue;
                            namebuf b;
                            char num[16];
                            int nn = snprintf(num, sizeof num, "%d", bb);
                            nb_reset(&b, "price:");
                            nb_put(&b, num, (size_t)nn);
                            if ((rc = add_named(&B, pr[q].item, &b, RF_FB_PRICE, d ? 0.5f : 1.0f,
                                                NULL)))
                                goto fail_rc;
                        }
                    }
                    a = e;
                }
                s0 = s1;
            }
        }
    }

    /* ---- choose the columns ---- */
    int32_t nv = B.fi.n;
    p2c = rf_malloc_array((size_t)nv + 1, sizeof *p2c);
    nm = rf_malloc_array((size_t)nv + 1, sizeof *nm);
    if (!p2c || !nm) goto fail;
    /* features used by a triplet (category names interned only as price
     * scopes are not) */
    uint8_t *used = (uint8_t *)rf_calloc((size_t)nv + 1, 1);
    if (!used) goto fail;
    for (int64_t t = 0; t < B.t.n; t++) used[B.t.feat[t]] = 1;
    int32_t n_text = 0, n_keep = 0;
    for (int32_t v = 0; v < nv; v++) {
        p2c[v] = -1;
        if (!used[v] || B.fi.block[v] != RF_FB_TEXT) continue;
        int32_t df = B.fi.df[v];
        if (df < o->min_df || (double)df > o->max_df * (double)n_text_items) continue;
        nm[n_text].prov = v;
        nm[n_text].s = rf_idmap_str(B.vocab, v);
        nm[n_text].len = rf_idmap_len(B.vocab, v);
        nm[n_text].df = df;
        n_text++;
    }
    if (n_text > o->max_vocab) {
        qsort(nm, (size_t)n_text, sizeof *nm, cmp_df_then_name);
        n_text = o->max_vocab;
    }
    n_keep = n_text;
    for (int32_t v = 0; v < nv; v++) {
        if (!used[v] || B.fi.block[v] == RF_FB_TEXT) continue;
        nm[n_keep].prov = v;
        nm[n_keep].s = rf_idmap_str(B.vocab, v);
        nm[n_keep].len = rf_idmap_len(B.vocab, v);
        nm[n_keep].df = 0;
        n_keep++;
    }
    rf_free(used);
    qsort(nm, (size_t)n_keep, sizeof *nm, cmp_named);
    if (rf_idmap_new(&f->names)) goto fail;
    for (int32_t c = 0; c < n_keep; c++) {
        int32_t id;
        if (rf_idmap_put(f->names, nm[c].s, nm[c].len, &id, NULL)) goto fail;
        p2c[nm[c].prov] = c;
    }
    f->n_feats = n_keep;
    {
        int32_t c = 0;
        for (int b = 0; b < RF_FB_COUNT; b++) {
            f->block_start[b] = c;
            while (c < n_keep && B.fi.block[nm[c].prov] == b) c++;
        }
        f->block_start[RF_FB_COUNT] = n_keep;
    }

    /* ---- the matrix ---- */
    int64_t nt = 0;
    rows = rf_malloc_array((size_t)B.t.n + 1, sizeof *rows);
    cols = rf_malloc_array((size_t)B.t.n + 1, sizeof *cols);
    vals = rf_malloc_array((size_t)B.t.n + 1, sizeof *vals);
    if (!rows || !cols || !vals) goto fail;
    const double n1 = (double)n_text_items + 1;
    for (int64_t t = 0; t < B.t.n; t++) {
        int32_t c = p2c[B.t.feat[t]];
        if (c < 0) continue;
        float v = B.t.val[t];
        if (B.fi.block[B.t.feat[t]] == RF_FB_TEXT) {
            double idf = log(n1 / (1.0 + B.fi.df[B.t.feat[t]])) + 1.0;
            v = (float)(log1p((double)v) * idf);
        }
        rows[nt] = B.t.item[t];
        cols[nt] = c;
        vals[nt] = v;
        nt++;
    }
    if ((rc = rf_csr_from_coo(n_items, n_keep, nt, rows, cols, vals, RF_FOLD_MAX, &f->x, NULL)))
        goto fail_rc;
    normalise(f, o, has_dense);
    if ((rc = rf_csr_transpose(f->x, &f->xt))) goto fail_rc;
    rc = 0;
    goto done;
fail:
    rc = RF_ENOMEM;
fail_rc:
    if (rc == RF_ENOMEM) rf_err_set(err, RF_ENOMEM, "item features: out of memory");
    else rf_err_set(err, rc, "item features: %s", rf_strerror(rc));
    rf_item_features_free(f);
    f = NULL;
done:
    rf_idmap_free(B.vocab);
    rf_free(B.fi.block);
    rf_free(B.fi.df);
    trip_free(&B.t);
    rf_free(B.tok_id);
    rf_free(B.tok_tf);
    rf_free(cat_full);
    rf_free(cat_top);
    rf_free(price);
    rf_free(has_dense);
    rf_free(seen);
    rf_free(vecbuf);
    rf_free(p2c);
    rf_free(cnt);
    rf_free(rows);
    rf_free(cols);
    rf_free(vals);
    rf_free(pr);
    rf_free(allp);
    rf_free(nm);
    *out = f;
    return rc;
}

/* ---- storage -------------------------------------------------------------- */

#define FEAT_MAGIC 0x52464654u /* "RFFT" */
#define MAX_NAME (1u << 16)

int rf_item_features_save(const rf_item_features *f, rf_writer *w) {
    const rf_csr *x = f->x;
    int rc = rf_writer_u32(w, FEAT_MAGIC);
    rc |= rf_writer_i64(w, f->n_items);
    rc |= rf_writer_i64(w, f->n_feats);
    rc |= rf_writer_i64(w, f->dim);
    for (int b = 0; b <= RF_FB_COUNT; b++) rc |= rf_writer_i64(w, f->block_start[b]);
    rc |= rf_writer_i64(w, x->nnz);
    for (int32_t c = 0; c < f->n_feats && rc == 0; c++) rc |= rf_writer_str(w, rf_idmap_str(f->names, c));
    rc |= rf_writer_put(w, x->indptr, ((size_t)f->n_items + 1) * sizeof *x->indptr);
    rc |= rf_writer_put(w, x->indices, (size_t)x->nnz * sizeof *x->indices);
    rc |= rf_writer_put(w, x->data, (size_t)x->nnz * sizeof *x->data);
    if (f->dim)
        rc |= rf_writer_put(w, f->dense, (size_t)f->n_items * (size_t)f->dim * sizeof *f->dense);
    return rc ? RF_EIO : 0;
}

int rf_item_features_load(rf_reader *r, int32_t n_items, rf_item_features **out, rf_err *err) {
    *out = NULL;
    uint32_t magic;
    int64_t ni, nf, dim, bs[RF_FB_COUNT + 1], nnz;
    int rc;
    if ((rc = rf_reader_u32(r, &magic, err))) return rc;
    if (magic != FEAT_MAGIC) return rf_err_set(err, RF_EFORMAT, "item features: bad block magic");
    if ((rc = rf_reader_i64(r, &ni, err)) || (rc = rf_reader_i64(r, &nf, err)) ||
        (rc = rf_reader_i64(r, &dim, err)))
        return rc;
    for (int b = 0; b <= RF_FB_COUNT; b++)
        if ((rc = rf_reader_i64(r, &bs[b], err))) return rc;
    if ((rc = rf_reader_i64(r, &nnz, err))) return rc;
    int64_t rem = rf_reader_remaining(r);
    if (ni != n_items || nf < 0 || nf > INT32_MAX || dim < 0 || dim > 1000000 || nnz < 0 ||
        nf * 4 > rem || nnz * 8 > rem || (ni + 1) * 8 > rem || ni * dim * 4 > rem)
        return rf_err_set(err, RF_EFORMAT,
                          "item features: bad sizes (%lld items, header %d; %lld features, "
                          "dim %lld, %lld entries)",
                          (long long)ni, (int)n_items, (long long)nf, (long long)dim,
                          (long long)nnz);
    if (bs[0] != 0 || bs[RF_FB_COUNT] != nf)
        return rf_err_set(err, RF_EFORMAT, "item features: bad block bounds");
    for (int b = 0; b < RF_FB_COUNT; b++)
        if (bs[b] > bs[b + 1]) return rf_err_set(err, RF_EFORMAT, "item features: bad block bounds");
    rf_item_features *f = rf_calloc(1, sizeof *f);
    rf_csr *x = rf_calloc(1, sizeof *x);
    if (!f || !x) {
        rf_free(f);
        rf_free(x);
        return rf_err_set(err, RF_ENOMEM, "item features: out of memory");
    }
    f->x = x;
    f->n_items = (int32_t)ni;
    f->n_feats = (int32_t)nf;
    f->dim = (int32_t)dim;
    for (int b = 0; b <= RF_FB_COUNT; b++) f->block_start[b] = (int32_t)bs[b];
    x->nrows = (int32_t)ni;
    x->ncols = (int32_t)nf;
    x->nnz = nnz;
    if (rf_idmap_new(&f->names)) goto nomem;
    for (int64_t c = 0; c < nf; c++) {
        char *s;
        if ((rc = rf_reader_str(r, &s, MAX_NAME, err))) goto fail;
        int32_t id;
        int added = 0;
        int prc = rf_idmap_put(f->names, s, strlen(s), &id, &added);
        rf_free(s);
        if (prc) goto nomem;
        if (!added) {
            rc = rf_err_set(err, RF_EFORMAT, "item features: duplicate feature name");
            goto fail;
        }
    }
    x->indptr = rf_malloc_array((size_t)ni + 1, sizeof *x->indptr);
    x->indices = rf_malloc_array((size_t)nnz + 1, sizeof *x->indices);
    x->data = rf_malloc_array((size_t)nnz + 1, sizeof *x->data);
    if (!x->indptr || !x->indices || !x->data) goto nomem;
    if ((rc = rf_reader_get(r, x->indptr, ((size_t)ni + 1) * sizeof *x->indptr, err)) ||
        (rc = rf_reader_get(r, x->indices, (size_t)nnz * sizeof *x->indices, err)) ||
        (rc = rf_reader_get(r, x->data, (size_t)nnz * sizeof *x->data, err)))
        goto fail;
    if (x->indptr[0] != 0 || x->indptr[ni] != nnz) goto bad;
    for (int64_t j = 0; j < ni; j++) {
        if (x->indptr[j + 1] < x->indptr[j]) goto bad;
        for (int64_t q = x->indptr[j]; q < x->indptr[j + 1]; q++) {
            if (x->indices[q] < 0 || x->indices[q] >= nf || !isfinite(x->data[q])) goto bad;
            if (q > x->indptr[j] && x->indices[q] <= x->indices[q - 1]) goto bad;
        }
    }
    if (dim) {
        f->dense = rf_malloc_array((size_t)ni * (size_t)dim + 1, sizeof *f->dense);
        if (!f->dense) goto nomem;
        if ((rc = rf_reader_get(r, f->dense, (size_t)ni * (size_t)dim * sizeof *f->dense, err)))
            goto fail;
        for (int64_t q = 0; q < ni * dim; q++)
            if (!isfinite(f->dense[q])) goto bad;
    }
    if (rf_csr_transpose(f->x, &f->xt)) goto nomem;
    *out = f;
    return 0;
bad:
    rc = rf_err_set(err, RF_EFORMAT, "item features: inconsistent matrix");
    goto fail;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "item features: out of memory");
fail:
    rf_item_features_free(f);
    return rc;
}
