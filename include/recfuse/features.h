/* features.h - item features from the catalog, user profiles over them,
 * and catalog filters.
 *
 * Item features turn a catalog row (store.h's rf_item_info) into one
 * L2-normalised vector per item: a sparse part with five blocks -
 *   brand     "brand:NAME"                         one-hot
 *   category  "cat:TOP", "cat:TOP/SUB", ...        every level of the path,
 *                                                  weight halving per level up
 *   price     "price:B" (B = 0 .. bands-1)         the item's price band
 *                                                  within its category, with
 *                                                  the neighbouring bands at 0.5
 *   tag       "tag:NAME"                           attrs "tags"/"genres"/"keywords"
 *   text      "text:TOKEN"                         TF-IDF of title + description
 * - and an optional dense part (attrs "vector": image or text embeddings
 * computed elsewhere). Each block is L2-normalised on its own, scaled by
 * the square root of its weight, and the whole vector (sparse and dense
 * together) is L2-normalised, so the cosine of two items is the
 * weight-averaged cosine of the blocks both have. Names are lower-cased
 * (ASCII and common Latin/Greek/Cyrillic letters) and trimmed.
 *
 * A user profile is the decayed, event-weighted mean of the vectors of
 * the items in the user's history; rf_profile_score gives the cosine of
 * the profile with every item. Items without a catalog row, or whose row
 * yields no feature, have an all-zero vector and score 0.
 *
 * Catalog filters (category, price range, in stock) turn a filter
 * specification into the exclusion mask that rf_model_recommend takes.
 *
 * Catalog rows are matched to dense item ids through the id strings, so
 * a catalog and an id map need not be in the same order. Everything here
 * is deterministic; building is single-threaded and scoring is
 * thread-safe with one rf_profile per thread. */
#ifndef RECFUSE_FEATURES_H
#define RECFUSE_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "csr.h"
#include "idmap.h"

struct rf_err;
struct rf_catalog;
struct rf_writer;
struct rf_reader;

/* ---- tokeniser ------------------------------------------------------- */

/* Longest token kept, in bytes; longer runs (URLs, hashes) are dropped. */
#define RF_TOKEN_MAX 64

/* Called once per token; tok is not NUL-terminated and only valid during
 * the call. A nonzero return stops tokenising and is returned. */
typedef int (*rf_token_cb)(void *ud, const char *tok, size_t len);

/* Tokenise UTF-8 text. A token is a maximal run of word characters: ASCII
 * letters and digits and every non-ASCII code point outside the
 * punctuation, symbol, space and emoji blocks (so accented Latin, Greek,
 * Cyrillic, Arabic, ... words stay whole). Letters are lower-cased: ASCII,
 * Latin-1, Latin Extended-A, basic Greek and Cyrillic; fullwidth ASCII
 * letters and digits become ASCII. CJK characters (Han, Hiragana,
 * Katakana, Hangul) are not joined into words: each is a token of its
 * own, and each pair of adjacent CJK characters is a bigram token, emitted
 * right after the unigram of its second character ("手机壳" gives 手, 机,
 * 手机, 壳, 机壳). Invalid UTF-8 bytes separate tokens. Tokens longer than
 * RF_TOKEN_MAX bytes are dropped. Returns 0 or the callback's nonzero
 * value. */
int rf_tokenize(const char *text, size_t len, rf_token_cb cb, void *ud);

/* ---- item features --------------------------------------------------- */

typedef enum rf_feature_block {
    RF_FB_BRAND = 0,
    RF_FB_CATEGORY = 1,
    RF_FB_PRICE = 2,
    RF_FB_TAG = 3,
    RF_FB_TEXT = 4,
    RF_FB_COUNT = 5
} rf_feature_block;

typedef struct rf_features_opts {
    /* Block weights (>= 0; 0 leaves the block out). */
    double w_brand, w_category, w_price, w_tag, w_text, w_vector;
    int price_bands;     /* bands per price scope, 2..100 */
    int min_df;          /* text tokens in fewer items are dropped */
    double max_df;       /* text tokens in more than this share of the
                            items with text are dropped (stop words) */
    int max_vocab;       /* most frequent text tokens kept */
    double title_weight; /* a title token counts this many description tokens */
} rf_features_opts;

/* Defaults: w_brand 0.5, w_category 1, w_price 0.25, w_tag 0.5, w_text 1,
 * w_vector 1; 5 price bands; min_df 2, max_df 0.5, max_vocab 100000;
 * title_weight 2. */
void rf_features_opts_default(rf_features_opts *o);
/* NULL if fine, else a static message. */
const char *rf_features_opts_check(const rf_features_opts *o);

typedef struct rf_item_features {
    int32_t n_items;   /* rows (the id map's size at build time) */
    int32_t n_feats;   /* sparse columns */
    int32_t dim;       /* dense dimension, 0 when no item has a vector */
    int32_t block_start[RF_FB_COUNT + 1]; /* columns of block b:
                                             [block_start[b], block_start[b+1]) */
    rf_csr *x;         /* n_items x n_feats, final (scaled) weights */
    rf_csr *xt;        /* its transpose, for scoring */
    float *dense;      /* n_items x dim final weights, NULL when dim == 0 */
    rf_idmap *names;   /* column names in column order ("text:camera") */
    /* build statistics (not saved; 0 after load) */
    int64_t n_matched;     /* items matched to a catalog row */
    int64_t n_vectors;     /* items with a dense vector */
    int64_t n_bad_vectors; /* vectors skipped: not numbers, or a dimension
                              other than the first vector's */
} rf_item_features;

/* Build the features of the items of `items` (dense ids 0 .. n_items-1,
 * n_items <= the map's size) from `cat` (NULL: no catalog, every vector is
 * zero). Catalog rows whose id is not in the map are ignored.
 *
 * Text: the title plus attrs "description" (or "desc"), tokenised with
 * rf_tokenize; a token's weight is ln(1 + tf) * idf, tf = title_weight *
 * (title count) + (description count), idf = ln((1 + N) / (1 + df)) + 1
 * over the N items with text. Tags: attrs "tags", "genres" or
 * "keywords", a JSON array of strings or one string split at '|', ',' or
 * ';'. Price band: log price ranked (mid-rank) within the item's full
 * category when that has at least max(20, 4 * bands) priced items, else
 * within its top-level category under the same rule, else within the
 * whole catalog; band = floor(bands * rank share). Dense vector: attrs
 * "vector", a JSON array of numbers or a string of numbers separated by
 * blanks, commas or semicolons (optionally in brackets); the first valid
 * one fixes the dimension, others are counted in n_bad_vectors and
 * skipped. Errors: RF_EINVAL (bad options), RF_ENOMEM. */
int rf_item_features_build(const struct rf_catalog *cat, const rf_idmap *items, int32_t n_items,
                           const rf_features_opts *o, rf_item_features **out,
                           struct rf_err *err);
void rf_item_features_free(rf_item_features *f); /* NULL is a no-op */
int64_t rf_item_features_bytes(const rf_item_features *f);

/* Write / read the features inside a model file (binfile.h). The reader
 * checks every size and index (RF_EFORMAT) and requires n_items rows. */
int rf_item_features_save(const rf_item_features *f, struct rf_writer *w);
int rf_item_features_load(struct rf_reader *r, int32_t n_items, rf_item_features **out,
                          struct rf_err *err);

/* ---- user profiles --------------------------------------------------- */

typedef struct rf_profile {
    int32_t n_feats, dim;
    double *w;      /* n_feats + dim; the sparse part is zero outside nz */
    int32_t *nz;    /* sparse columns with a nonzero weight, first-touch order */
    int32_t n_nz;
    double norm;    /* Euclidean norm of w */
} rf_profile;

/* A zero profile sized for f. RF_ENOMEM. */
int rf_profile_new(const rf_item_features *f, rf_profile **out);
void rf_profile_free(rf_profile *p); /* NULL is a no-op */

/* Reset p and make it the weighted mean of the vectors of items[0..n):
 *   p = sum_i c_i x_i / sum_i c_i,
 *   c_i = (weights ? weights[i] : 1) * (ts && half_life_days > 0 ?
 *         2^(-(t_ref - ts[i]) / (half_life_days * 86400)) : 1),
 * t_ref = the largest ts[i]. Items outside [0, n_items), with c_i <= 0 or
 * without features are skipped. Returns the sum of c_i over the items
 * used (0: empty profile). */
double rf_profile_build(rf_profile *p, const rf_item_features *f, int32_t n, const int32_t *items,
                        const float *weights, const int64_t *ts, double half_life_days);

/* out[j] = cosine(p, x_j) for every item j (item vectors are unit or
 * zero, so this is p . x_j / |p|); all 0 for an empty profile. */
void rf_profile_score(const rf_profile *p, const rf_item_features *f, float *out);

/* ---- catalog filters ------------------------------------------------- */

typedef struct rf_item_filter_spec {
    const char *category; /* NULL or "": any. Comma-separated alternatives;
                             each is a category path ("Shoes",
                             "Fashion/Shoes") that must equal a run of whole
                             segments of the item's category (so "Shoes"
                             matches "Fashion/Shoes" and "Shoes/Boots", not
                             "Snowshoes"), ASCII case-insensitive. */
    double min_price;     /* NAN: no lower bound; inclusive */
    double max_price;     /* NAN: no upper bound; inclusive */
    int in_stock;         /* 1: only items with stock > 0 */
} rf_item_filter_spec;

/* No constraint: category NULL, prices NAN, in_stock 0. */
void rf_item_filter_spec_init(rf_item_filter_spec *s);
/* 1 if s constrains anything. */
int rf_item_filter_active(const rf_item_filter_spec *s);
/* 1 if `category` (an item's category path, may be NULL) matches one of
 * the comma-separated alternatives of `pattern` (rules above). */
int rf_category_match(const char *category, const char *pattern);

/* exclude[j] = 1 for each item j of `items` (0 <= j < n_items) that fails
 * the filter, 0 for one that passes. An item passes only when the
 * attributes the filter names are known and satisfy it: without a catalog
 * row, an unknown category, an unknown price (under a price bound) or an
 * unknown stock (with in_stock) it is excluded. *n_pass (may be NULL)
 * receives the number of items that pass. RF_EINVAL for min_price >
 * max_price. */
int rf_item_filter_build(const struct rf_catalog *cat, const rf_idmap *items, int32_t n_items,
                         const rf_item_filter_spec *s, uint8_t *exclude, int32_t *n_pass,
                         struct rf_err *err);

#endif
