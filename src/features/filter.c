/* filter.c - catalog filters (features.h): category, price range and
 * stock turned into the exclusion mask of rf_model_recommend, shared by
 * `recfuse recommend` and the server.
 *
 * DESIGN: a category filter names a path ("Shoes", "Fashion/Shoes") that
 * must line up with whole segments of the item's category path, anywhere
 * in it, compared ASCII case-insensitively with blanks around separators
 * ignored; so a shop can filter on a department or on a leaf without
 * knowing the full taxonomy, and "Shoes" never matches "Snowshoes". An
 * item passes only when every attribute the filter names is known:
 * recommending an item of unknown price under "--max-price 50" or of
 * unknown stock under "--in-stock" would break the promise the filter
 * makes. */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "recfuse/error.h"
#include "recfuse/features.h"
#include "recfuse/store.h"

void rf_item_filter_spec_init(rf_item_filter_spec *s) {
    s->category = NULL;
    s->min_price = NAN;
    s->max_price = NAN;
    s->in_stock = 0;
}

int rf_item_filter_active(const rf_item_filter_spec *s) {
    return (s->category && *s->category) || !isnan(s->min_price) || !isnan(s->max_price) ||
           s->in_stock;
}

static int is_sep(char c) { return c == '/' || c == '>'; }

/* Segments of a path: [s, e) pairs with blanks trimmed, empty ones skipped. */
typedef struct seg {
    const char *s;
    size_t n;
} seg;

static int split(const char *p, size_t len, seg *out, int max) {
    int n = 0;
    size_t a = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !is_sep(p[i])) continue;
        size_t x = a, y = i;
        while (x < y && isspace((unsigned char)p[x])) x++;
        while (y > x && isspace((unsigned char)p[y - 1])) y--;
        if (y > x && n < max) {
            out[n].s = p + x;
            out[n].n = y - x;
            n++;
        }
        a = i + 1;
    }
    return n;
}

static int match_one(const seg *cs, int nc, const char *pat, size_t plen) {
    seg ps[32];
    int np = split(pat, plen, ps, 32);
    if (np == 0 || np > nc) return 0;
    for (int start = 0; start + np <= nc; start++) {
        int ok = 1;
        for (int k = 0; k < np && ok; k++)
            ok = cs[start + k].n == ps[k].n && strncasecmp(cs[start + k].s, ps[k].s, ps[k].n) == 0;
        if (ok) return 1;
    }
    return 0;
}

int rf_category_match(const char *category, const char *pattern) {
    if (!pattern || !*pattern) return 1;
    if (!category) return 0;
    seg cs[64];
    int nc = split(category, strlen(category), cs, 64);
    const char *p = pattern;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (match_one(cs, nc, p, len)) return 1;
        if (!e) return 0;
        p = e + 1;
    }
}

int rf_item_filter_build(const rf_catalog *cat, const rf_idmap *items, int32_t n_items,
                         const rf_item_filter_spec *s, uint8_t *exclude, int32_t *n_pass,
                         rf_err *err) {
    if (!isnan(s->min_price) && !isnan(s->max_price) && s->min_price > s->max_price)
        return rf_err_set(err, RF_EINVAL, "filter: minimum price %g is above maximum price %g",
                          s->min_price, s->max_price);
    if (n_items < 0 || (n_items > 0 && (!items || n_items > rf_idmap_size(items))))
        return rf_err_set(err, RF_EINVAL, "filter: %d items but the map holds %d", (int)n_items,
                          items ? (int)rf_idmap_size(items) : 0);
    const int active = rf_item_filter_active(s);
    memset(exclude, active ? 1 : 0, (size_t)n_items);
    int32_t pass = active ? 0 : n_items;
    for (int64_t r = 0; active && cat && r < cat->n; r++) {
        const rf_item_info *it = &cat->items[r];
        if (!it->id) continue;
        int32_t j = rf_idmap_find(items, it->id, strlen(it->id));
        if (j < 0 || j >= n_items || !exclude[j]) continue; /* unknown, or a duplicate row */
        if (s->category && *s->category && !rf_category_match(it->category, s->category)) continue;
        if (!isnan(s->min_price) && !(it->price >= s->min_price)) continue; /* NAN fails */
        if (!isnan(s->max_price) && !(it->price <= s->max_price)) continue;
        if (s->in_stock && !(it->stock > 0)) continue;
        exclude[j] = 0;
        pass++;
    }
    if (n_pass) *n_pass = pass;
    return 0;
}
