/* gen.c - the synthetic shop generator behind `recfuse gen`.
 *
 * Builds a catalog (categories, brands, items with prices, stock, titles,
 * creation times, trend bursts), a customer base (demographics, category
 * affinity, a hidden taste vector, an activity level and an active
 * window), then streams every customer's events to interactions.tsv.
 *
 * The generative story, per customer u with n_u events:
 *   1. sessions: S_u session start times in u's active window, drawn with
 *      a weekday x hour-of-day intensity (weekly seasonality);
 *   2. items: distinct items drawn without replacement from
 *        p(i | u) ~ q_i * (C a_u[c(i)])^taste * exp(taste (B cos(x_u, y_i)
 *                   - lambda_u pz_i)) * avail_u(i)
 *      where q_i = (rank_i + 50)^-pop_exponent is the base popularity,
 *      a_u the category affinity, x_u / y_i the hidden factor vectors,
 *      pz_i the item's price relative to its subcategory, lambda_u the
 *      segment's price sensitivity, and avail_u(i) the share of u's
 *      sessions after the item's creation, with sessions inside the
 *      item's trend window counted `boost` times;
 *   3. each item goes to one of u's sessions after its creation (trend
 *      window sessions weighted by `boost`), and becomes one purchase
 *      (implicit mode) or a funnel episode: [click] view+ [cart
 *      [purchase [rating later] [re-buys of consumables]]].
 *
 * DESIGN: exact sampling from p(i | u) would cost O(items) per customer.
 * Instead step 2 uses sampling-importance-resampling: candidates come from
 * a cheap proposal close to p (a subcategory by mass x affinity^taste x
 * exp(taste B cos(x_u, subcategory centre)) from a per-customer alias
 * table, then an item by popularity from the subcategory's alias table;
 * later rounds widen towards plain popularity when the pool is too small,
 * and the mixture's density is tracked exactly), each distinct candidate
 * gets weight count * p / proposal, and n items are taken without
 * replacement with exponential race keys E/w (Efraimidis-Spirakis). Cost
 * is O(n_u (K + log S_u)) per customer, memory O(users + items * K) plus
 * O(items) scratch per thread. Customers are independent: each has its
 * own rf_rng_stream, blocks of customers are generated in parallel into
 * per-thread buffers and written in order, so bytes do not depend on the
 * thread count. */
#include "recfuse/gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/gen_internal.h"
#include "recfuse/error.h"
#include "recfuse/events.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

#define DAY 86400
#define TASTE_BETA 4.0    /* weight of cos(x_u, y_i) in log p at taste 1 */
#define AFF_FLOOR 0.15    /* share of affinity spread evenly over categories */
#define AFF_CONC 1.5      /* total Dirichlet concentration of category affinity */
#define PRICE_SIGMA 0.45  /* log-price spread within a subcategory */
#define BLOCK_EVENTS 131072
#define BLOCK_USERS 4096
#define MAX_ROUNDS 6
#define SUB_COS_SHRINK 0.87 /* E|centre| / E|item vector|: cos(x, item) ~ 0.87 cos(x, centre) */

/* ---- options ---------------------------------------------------------- */

void rf_gen_opts_default(rf_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->users = 2000;
    o->items = 500;
    o->events = 100000;
    o->categories = 12;
    o->brands = 60;
    o->factors = 16;
    o->days = 180;
    o->start = 1704067200; /* 2024-01-01T00:00:00Z, a Monday */
    o->pop_exponent = 1.0;
    o->taste = 0.8;
    o->purchase_rate = 0.5;
    o->trend_share = 0.03;
    o->seed = 42;
    o->implicit_only = 0;
    o->activity_sigma = 1.0;
    o->new_share = 0.15;
    o->cart_rate = 0.25;
    o->rating_rate = 0.3;
    o->repeat_rate = 0.5;
    o->write_truth = 0;
}

int rf_gen_preset(rf_gen_opts *o, const char *name, rf_err *err) {
    if (strcmp(name, "demo") == 0) {
        o->users = 1000;
        o->items = 300;
        o->events = 40000;
        o->categories = 8;
        o->brands = 40;
        o->days = 90;
    } else if (strcmp(name, "small") == 0) {
        o->users = 10000;
        o->items = 2000;
        o->events = 1000000;
        o->categories = 16;
        o->brands = 120;
        o->days = 180;
    } else if (strcmp(name, "ml20m") == 0) {
        o->users = 138000;
        o->items = 27000;
        o->events = 20000000;
        o->categories = 20;
        o->brands = 400;
        o->factors = 16;
        o->days = 730;
        o->pop_exponent = 1.0;
        o->implicit_only = 1;
    } else {
        return rf_err_set(err, RF_EINVAL, "unknown preset '%s' (demo, small, ml20m)", name);
    }
    return 0;
}

const char *rf_gen_opts_check(const rf_gen_opts *o) {
    if (!o) return "no options";
    if (o->users < 1 || o->users > 2000000000) return "users must be in [1, 2e9]";
    if (o->items < 1 || o->items > 2000000000) return "items must be in [1, 2e9]";
    if (o->events < 0 || o->events > 100000000000LL) return "events must be in [0, 1e11]";
    if (o->categories < 1 || o->categories > 1000) return "categories must be in [1, 1000]";
    if (o->brands < 1 || o->brands > 10000000) return "brands must be in [1, 1e7]";
    if (o->factors < 1 || o->factors > 256) return "factors must be in [1, 256]";
    if (!(o->days >= 1.0 / 24 && o->days <= 36500)) return "days must be in [1/24, 36500]";
    if (o->start < 0 || o->start > 100000000000LL) return "start must be a Unix time >= 0";
    if (!(o->pop_exponent >= 0 && o->pop_exponent <= 5)) return "pop_exponent must be in [0, 5]";
    if (!(o->taste >= 0 && o->taste <= 1)) return "taste must be in [0, 1]";
    if (!(o->purchase_rate >= 0 && o->purchase_rate <= 1)) return "purchase_rate must be in [0, 1]";
    if (!(o->trend_share >= 0 && o->trend_share <= 1)) return "trend_share must be in [0, 1]";
    if (!(o->activity_sigma >= 0 && o->activity_sigma <= 4)) return "activity_sigma must be in [0, 4]";
    if (!(o->new_share >= 0 && o->new_share <= 1)) return "new_share must be in [0, 1]";
    if (!(o->cart_rate >= 0 && o->cart_rate <= 1)) return "cart_rate must be in [0, 1]";
    if (!(o->rating_rate >= 0 && o->rating_rate <= 1)) return "rating_rate must be in [0, 1]";
    if (!(o->repeat_rate >= 0 && o->repeat_rate <= 0.95)) return "repeat_rate must be in [0, 0.95]";
    if (o->implicit_only && (double)o->events > 0.5 * (double)o->users * (double)o->items)
        return "implicit mode needs events <= users * items / 2 (one event per distinct pair)";
    return NULL;
}

/* ---- the shop --------------------------------------------------------- */

typedef struct gcat {
    char name[64];
    const rf_gen_catdef *def;
    int sub0, nsub;      /* subcategories g->subs[sub0 .. sub0 + nsub) */
    int64_t n;           /* items in the category */
    int32_t *brands;     /* brands at home in this category */
    int nbrands;
    float *centroid;     /* K */
} gcat;

typedef struct gsub {
    char path[160];
    int cat;
    const rf_gen_subdef *def;
    int nnouns;
    float *vec;          /* K: latent centre of the subcategory */
    float *unit;         /* K: vec / |vec| */
    int64_t n;           /* items in the subcategory */
    int32_t *members;    /* their ids */
    uint32_t *thr;       /* alias table over members by q */
    int32_t *alias;
    double Q;            /* sum of q over members */
} gsub;

typedef struct gitem {
    int32_t cat, sub, brand;
    int32_t rank;
    float price, pz;
    int32_t stock;
    int8_t adj, noun, var;
    float boost;          /* > 1: trend window [b0, b1) */
    int64_t created;      /* seconds relative to start (may be negative) */
    int64_t b0, b1;
} gitem;

typedef struct gen {
    rf_gen_opts o;
    int K, C, B;
    int64_t U, I, span;
    gcat *cats;
    gsub *subs;
    int nsubs;
    gitem *items;
    int8_t *ivec;     /* I x K, unit rows scaled by 127 (compact: the sampler's
                         random reads of item vectors are its main cost) */
    uint8_t *special; /* I: 1 if created during the span or trending (avail != 1) */
    struct hot { int32_t sub; float pz; } *hot; /* I: compact copy for the sampler */
    double *q;        /* base popularity */
    char (*brand_name)[48];
    float *brand_prem;
    float *brand_vec; /* B x K */
    int32_t *brand_lists;
    int64_t *n_u;     /* events per user */
    float *z_u;       /* activity score per user (setup only) */
} gen;

typedef struct uprof {
    int gender, age, country, seg;
    double z;
    int64_t w0, w1;  /* active window, seconds relative to start */
    double *aff;     /* C: floored affinity, sums to 1 */
    double *raw;     /* C: Dirichlet draw */
    float *vec;      /* K: unit taste vector */
    int fav;
} uprof;

static const double weekday_w[7] = {0.85, 0.85, 0.9, 0.95, 1.05, 1.35, 1.3}; /* Mon..Sun */
static const double hour_w[24] = {0.30, 0.20, 0.12, 0.10, 0.10, 0.15, 0.30, 0.50,
                                  0.70, 0.80, 0.85, 0.90, 1.00, 0.95, 0.85, 0.85,
                                  0.90, 1.00, 1.15, 1.35, 1.50, 1.40, 1.00, 0.60};
static const double seg_price_sens[RF_GEN_NSEG] = {0.6, 0.25, -0.35, 0.15};
static const double seg_repeat_mult[RF_GEN_NSEG] = {0.8, 1.0, 0.9, 1.5};

static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double logit(double p) {
    if (p < 1e-6) p = 1e-6;
    if (p > 1 - 1e-6) p = 1 - 1e-6;
    return log(p / (1 - p));
}

static int categorical(rf_rng *r, const double *w, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += w[i];
    double x = rf_rng_uniform(r) * s;
    for (int i = 0; i < n; i++) {
        x -= w[i];
        if (x < 0) return i;
    }
    return n - 1;
}

static void normalize(float *v, int K) {
    double s = 0;
    for (int k = 0; k < K; k++) s += (double)v[k] * v[k];
    s = s > 0 ? 1.0 / sqrt(s) : 0;
    for (int k = 0; k < K; k++) v[k] = (float)(v[k] * s);
}

/* cos(x, item) from a unit float vector and a unit int8 row scaled by 127. */
static inline float doti8(const float *a, const int8_t *b, int K) {
    float s = 0;
    for (int k = 0; k < K; k++) s += a[k] * (float)b[k];
    return s * (1.0f / 127.0f);
}

static inline float dotf(const float *a, const float *b, int K) {
    float s = 0;
    for (int k = 0; k < K; k++) s += a[k] * b[k];
    return s;
}

/* Vose's alias method over n weights; thr[j] is P(keep j) scaled to 2^32.
 * Scratch: `work` holds 2n int64, `p` n doubles. All-zero weights give a
 * uniform table. */
static void alias_build(const double *w, int64_t n, uint32_t *thr, int32_t *alias, int64_t *work,
                        double *p) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += w[i];
    int64_t *small = work, *large = work + n;
    int64_t ns = 0, nl = 0;
    for (int64_t i = 0; i < n; i++) {
        p[i] = s > 0 ? w[i] * (double)n / s : 1.0;
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        int64_t a = small[--ns], b = large[nl - 1];
        thr[a] = (uint32_t)fmin(p[a] * 4294967296.0, 4294967295.0);
        alias[a] = (int32_t)b;
        p[b] -= 1.0 - p[a];
        if (p[b] < 1.0) {
            nl--;
            small[ns++] = b;
        }
    }
    while (nl > 0) {
        int64_t b = large[--nl];
        thr[b] = 0xFFFFFFFFu;
        alias[b] = (int32_t)b;
    }
    while (ns > 0) { /* rounding leftovers */
        int64_t a = small[--ns];
        thr[a] = 0xFFFFFFFFu;
        alias[a] = (int32_t)a;
    }
}

static inline int64_t alias_draw(rf_rng *r, const uint32_t *thr, const int32_t *alias, int64_t n) {
    uint64_t x = rf_rng_next(r);
    int64_t j = (int64_t)(((x >> 32) * (uint64_t)n) >> 32);
    return (uint32_t)x < thr[j] ? j : alias[j];
}

static void gen_free(gen *g) {
    if (!g) return;
    if (g->cats)
        for (int c = 0; c < g->C; c++) {
            rf_free(g->cats[c].centroid);
        }
    if (g->subs)
        for (int s = 0; s < g->nsubs; s++) {
            rf_free(g->subs[s].vec);
            rf_free(g->subs[s].unit);
            rf_free(g->subs[s].members);
            rf_free(g->subs[s].thr);
            rf_free(g->subs[s].alias);
        }
    rf_free(g->cats);
    rf_free(g->subs);
    rf_free(g->items);
    rf_free(g->ivec);
    rf_free(g->special);
    rf_free(g->hot);
    rf_free(g->q);
    rf_free(g->brand_name);
    rf_free(g->brand_prem);
    rf_free(g->brand_vec);
    rf_free(g->brand_lists);
    rf_free(g->n_u);
    rf_free(g->z_u);
}

/* Catalog: categories, subcategories, brands, items, alias tables. */
static int build_catalog(gen *g, rf_err *err) {
    const rf_gen_opts *o = &g->o;
    int K = g->K, C = g->C, B = g->B;
    int64_t I = g->I;
    rf_rng r;
    rf_rng_stream(&r, o->seed, 0xCA7A1000ull);
    int64_t *work = NULL;
    double *w = NULL, *pd = NULL;
    float *v = NULL;
    int32_t *rank = NULL;
    int rc = RF_ENOMEM;

    g->cats = rf_calloc((size_t)C, sizeof *g->cats);
    if (!g->cats) goto fail;
    int nsubs = 0;
    for (int c = 0; c < C; c++) {
        gcat *ct = &g->cats[c];
        ct->def = c < rf_gen_taxonomy_n ? &rf_gen_taxonomy[c] : &rf_gen_generic_cat;
        if (c < rf_gen_taxonomy_n)
            snprintf(ct->name, sizeof ct->name, "%s", ct->def->name);
        else
            snprintf(ct->name, sizeof ct->name, "Department %d", c + 1);
        ct->sub0 = nsubs;
        ct->nsub = 0;
        while (ct->nsub < RF_GEN_MAX_SUBS && ct->def->subs[ct->nsub].name) ct->nsub++;
        nsubs += ct->nsub;
        ct->centroid = rf_malloc_array((size_t)K, sizeof(float));
        if (!ct->centroid) goto fail;
        for (int k = 0; k < K; k++) ct->centroid[k] = (float)rf_rng_normal(&r);
    }
    g->nsubs = nsubs;
    g->subs = rf_calloc((size_t)nsubs, sizeof *g->subs);
    if (!g->subs) goto fail;
    for (int c = 0; c < C; c++) {
        gcat *ct = &g->cats[c];
        for (int s = 0; s < ct->nsub; s++) {
            gsub *sb = &g->subs[ct->sub0 + s];
            sb->cat = c;
            sb->def = &ct->def->subs[s];
            snprintf(sb->path, sizeof sb->path, "%s/%s", ct->name, sb->def->name);
            sb->nnouns = 0;
            while (sb->nnouns < RF_GEN_MAX_NOUNS && sb->def->nouns[sb->nnouns]) sb->nnouns++;
            sb->vec = rf_malloc_array((size_t)K, sizeof(float));
            sb->unit = rf_malloc_array((size_t)K, sizeof(float));
            if (!sb->vec || !sb->unit) goto fail;
            for (int k = 0; k < K; k++)
                sb->vec[k] = ct->centroid[k] + (float)(0.6 * rf_rng_normal(&r));
            memcpy(sb->unit, sb->vec, (size_t)K * sizeof(float));
            normalize(sb->unit, K);
        }
    }

    /* Brands: a readable name, a price premium, a small taste offset and
     * one or two home categories. */
    g->brand_name = rf_malloc_array((size_t)B, sizeof *g->brand_name);
    g->brand_prem = rf_malloc_array((size_t)B, sizeof(float));
    g->brand_vec = rf_malloc_array((size_t)B * (size_t)K, sizeof(float));
    int32_t *home2 = rf_malloc_array((size_t)B, sizeof(int32_t));
    int32_t *cnt = rf_calloc((size_t)C, sizeof(int32_t));
    if (!g->brand_name || !g->brand_prem || !g->brand_vec || !home2 || !cnt) {
        rf_free(home2);
        rf_free(cnt);
        goto fail;
    }
    for (int b = 0; b < B; b++) {
        rf_gen_brand_name(o->seed, b, g->brand_name[b], sizeof g->brand_name[b]);
        g->brand_prem[b] = (float)exp(0.3 * rf_rng_normal(&r));
        for (int k = 0; k < K; k++) g->brand_vec[(size_t)b * K + k] = (float)(0.35 * rf_rng_normal(&r));
        home2[b] = rf_rng_uniform(&r) < 0.3 ? (int32_t)rf_rng_below(&r, (uint64_t)C) : -1;
        cnt[b % C]++;
        if (home2[b] >= 0 && home2[b] != b % C) cnt[home2[b]]++;
    }
    int64_t tot = 0;
    for (int c = 0; c < C; c++) tot += cnt[c];
    g->brand_lists = rf_malloc_array((size_t)(tot > 0 ? tot : 1), sizeof(int32_t));
    if (!g->brand_lists) {
        rf_free(home2);
        rf_free(cnt);
        goto fail;
    }
    tot = 0;
    for (int c = 0; c < C; c++) {
        g->cats[c].brands = g->brand_lists + tot;
        tot += cnt[c];
    }
    for (int b = 0; b < B; b++) {
        gcat *h = &g->cats[b % C];
        h->brands[h->nbrands++] = b;
        if (home2[b] >= 0 && home2[b] != b % C) {
            gcat *h2 = &g->cats[home2[b]];
            h2->brands[h2->nbrands++] = b;
        }
    }
    rf_free(home2);
    rf_free(cnt);

    /* Items. */
    g->items = rf_calloc((size_t)I, sizeof *g->items);
    g->ivec = rf_malloc_array((size_t)I * (size_t)K, sizeof(int8_t));
    v = rf_malloc_array((size_t)K, sizeof(float));
    g->q = rf_malloc_array((size_t)I, sizeof(double));
    rank = rf_malloc_array((size_t)I, sizeof(int32_t));
    w = rf_malloc_array((size_t)(I > C ? I : C), sizeof(double));
    work = rf_malloc_array((size_t)I * 2 + 2, sizeof(int64_t));
    pd = rf_malloc_array((size_t)I, sizeof(double));
    g->special = rf_malloc_array((size_t)I, sizeof(uint8_t));
    g->hot = rf_malloc_array((size_t)I, sizeof *g->hot);
    if (!g->items || !g->ivec || !g->q || !rank || !w || !work || !pd || !g->special || !g->hot ||
        !v)
        goto fail;
    for (int64_t i = 0; i < I; i++) rank[i] = (int32_t)i;
    rf_rng_shuffle_i32(&r, rank, I);
    double catw[1000];
    for (int c = 0; c < C; c++) catw[c] = exp(0.4 * rf_rng_normal(&r));
    double span = (double)g->span;
    for (int64_t i = 0; i < I; i++) {
        gitem *it = &g->items[i];
        it->cat = i < C ? (int32_t)i : (int32_t)categorical(&r, catw, C);
        gcat *ct = &g->cats[it->cat];
        it->sub = ct->sub0 + (int32_t)rf_rng_below(&r, (uint64_t)ct->nsub);
        gsub *sb = &g->subs[it->sub];
        it->brand = ct->nbrands > 0 ? ct->brands[rf_rng_below(&r, (uint64_t)ct->nbrands)]
                                    : (int32_t)rf_rng_below(&r, (uint64_t)B);
        it->rank = rank[i];
        g->q[i] = pow((double)it->rank + 50.0, -o->pop_exponent);
        double lp = PRICE_SIGMA * rf_rng_normal(&r) + log(g->brand_prem[it->brand]);
        double price = sb->def->price * exp(lp);
        if (price >= 20)
            price = floor(price) + 0.99;
        else
            price = fmax(0.49, round(price * 100) / 100);
        it->price = (float)price;
        it->pz = (float)(log(price / sb->def->price) / PRICE_SIGMA);
        it->stock = rf_rng_uniform(&r) < 0.06 ? 0 : 1 + (int32_t)llround(exp(log(35) + 0.9 * rf_rng_normal(&r)));
        it->adj = (int8_t)rf_rng_below(&r, RF_GEN_NADJ);
        it->noun = (int8_t)rf_rng_below(&r, (uint64_t)sb->nnouns);
        it->var = rf_rng_uniform(&r) < 0.5 ? (int8_t)rf_rng_below(&r, RF_GEN_NVAR) : -1;
        if (rf_rng_uniform(&r) < o->new_share)
            it->created = (int64_t)((0.05 + 0.85 * rf_rng_uniform(&r)) * span);
        else
            it->created = -(int64_t)(1 + rf_rng_below(&r, 730 * DAY));
        it->boost = 1;
        double u = rf_rng_uniform(&r);
        if (u < o->trend_share) {
            double s0 = it->created > 0 ? (double)it->created : 0;
            double len = (3 + 11 * rf_rng_uniform(&r)) * DAY;
            if (len > (span - s0) * 0.5) len = (span - s0) * 0.5;
            double b0 = s0 + rf_rng_uniform(&r) * (span - s0 - len);
            it->b0 = (int64_t)b0;
            it->b1 = (int64_t)(b0 + len);
            it->boost = (float)(6 + 18 * rf_rng_uniform(&r));
        } else if (it->created > 0 && u < o->trend_share + 0.4) {
            /* launch burst of a new item */
            it->b0 = it->created;
            it->b1 = it->created + (int64_t)((7 + 14 * rf_rng_uniform(&r)) * DAY);
            it->boost = (float)(3 + 5 * rf_rng_uniform(&r));
        }
        if (it->b1 <= it->b0) it->boost = 1;
        g->special[i] = it->created > 0 || it->boost > 1;
        g->hot[i].sub = it->sub;
        g->hot[i].pz = it->pz;
        const float *bv = g->brand_vec + (size_t)it->brand * K;
        for (int k = 0; k < K; k++) v[k] = sb->vec[k] + bv[k] + (float)(0.55 * rf_rng_normal(&r));
        normalize(v, K);
        for (int k = 0; k < K; k++) g->ivec[(size_t)i * K + k] = (int8_t)lrintf(127.0f * v[k]);
        ct->n++;
        sb->n++;
    }

    /* Per-subcategory member lists and popularity alias tables. */
    for (int s = 0; s < nsubs; s++) {
        gsub *ct = &g->subs[s];
        int64_t n = ct->n > 0 ? ct->n : 1;
        ct->members = rf_malloc_array((size_t)n, sizeof(int32_t));
        ct->thr = rf_malloc_array((size_t)n, sizeof(uint32_t));
        ct->alias = rf_malloc_array((size_t)n, sizeof(int32_t));
        if (!ct->members || !ct->thr || !ct->alias) goto fail;
        ct->n = 0;
    }
    for (int64_t i = 0; i < I; i++) {
        gsub *ct = &g->subs[g->items[i].sub];
        ct->members[ct->n++] = (int32_t)i;
    }
    for (int s = 0; s < nsubs; s++) {
        gsub *ct = &g->subs[s];
        ct->Q = 0;
        for (int64_t j = 0; j < ct->n; j++) {
            w[j] = g->q[ct->members[j]];
            ct->Q += w[j];
        }
        if (ct->n > 0) alias_build(w, ct->n, ct->thr, ct->alias, work, pd);
    }
    rc = 0;
fail:
    if (rc) rf_err_set(err, rc, "generator: out of memory building the catalog");
    rf_free(pd);
    rf_free(v);
    rf_free(work);
    rf_free(w);
    rf_free(rank);
    return rc;
}

/* Customer u's profile, from its own stream (so it can be recomputed on
 * any thread). p->aff, p->raw (C) and p->vec (K) are caller buffers. */
static void user_profile(const gen *g, int64_t u, uprof *p) {
    rf_rng r;
    rf_rng_stream(&r, g->o.seed, 2 * (uint64_t)u + 1);
    int C = g->C, K = g->K;
    double x = rf_rng_uniform(&r);
    p->gender = x < 0.49 ? 0 : x < 0.96 ? 1 : 2;
    double gs = p->gender == 0 ? -1 : p->gender == 1 ? 1 : 0;
    double age = 18 + exp(log(20) + 0.55 * rf_rng_normal(&r));
    p->age = age > 90 ? 90 : (int)age;
    p->country = categorical(&r, rf_gen_country_weights, RF_GEN_NCOUNTRIES);
    p->seg = categorical(&r, rf_gen_segment_weights, RF_GEN_NSEG);
    p->z = rf_rng_normal(&r) + (p->seg == RF_GEN_SEG_LOYAL ? 0.35 : 0);
    /* active window */
    double span = (double)g->span;
    double w0 = rf_rng_uniform(&r) < 0.6 ? 0 : rf_rng_uniform(&r) * 0.85 * span;
    double w1 = span;
    if (rf_rng_uniform(&r) < 0.25) {
        double rest = span - w0, minlen = fmin(7.0 * DAY, rest);
        w1 = w0 + minlen + rf_rng_uniform(&r) * (rest - minlen);
    }
    p->w0 = (int64_t)w0;
    p->w1 = (int64_t)w1;
    if (p->w1 <= p->w0) p->w1 = p->w0 + 1;
    /* category affinity: Dirichlet around a demographic prior */
    double agez = (p->age - 38) / 15.0, ps = 0;
    for (int c = 0; c < C; c++) {
        const rf_gen_catdef *d = g->cats[c].def;
        p->aff[c] = exp(0.8 * gs * d->gender_bias + 0.8 * agez * d->age_bias);
        ps += p->aff[c];
    }
    double tot = 0;
    for (int c = 0; c < C; c++) {
        p->raw[c] = rf_rng_gamma(&r, AFF_CONC * p->aff[c] / ps);
        tot += p->raw[c];
    }
    if (!(tot > 0)) {
        for (int c = 0; c < C; c++) p->raw[c] = p->aff[c];
        tot = ps;
    }
    p->fav = 0;
    for (int c = 0; c < C; c++) {
        p->raw[c] /= tot;
        if (p->raw[c] > p->raw[p->fav]) p->fav = c;
        p->aff[c] = (1 - AFF_FLOOR) * p->raw[c] + AFF_FLOOR / C;
    }
    for (int k = 0; k < K; k++) p->vec[k] = (float)(0.8 * rf_rng_normal(&r));
    for (int c = 0; c < C; c++) {
        if (p->raw[c] < 1e-3) continue;
        const float *m = g->cats[c].centroid;
        for (int k = 0; k < K; k++) p->vec[k] += (float)(p->raw[c] * m[k]);
    }
    normalize(p->vec, K);
}

/* ---- per-thread scratch ----------------------------------------------- */

typedef struct gev {
    int64_t ts;
    int32_t item;
    uint8_t type, value;
    uint16_t pad;
} gev;

typedef struct work {
    uint32_t *stamp;   /* I: user tag of the last pool insertion */
    int32_t *slot;     /* I: pool index */
    int32_t *pitem, *pcnt;
    float *pavail, *pcos;
    struct rkey { double key; int32_t j; } *order; /* race keys of pool entries */
    int64_t pcap;
    int64_t *sess;
    int64_t scap;
    gev *ev, *evtmp;
    int64_t ecap;
    double *aff, *raw, *F, *R, *cw, *cp, *ca, *affp;
    float *uvec;
    uint32_t *cthr;
    int32_t *calias;
    int64_t *cwork;
    char *out;
    size_t olen, ocap;
    int64_t type_counts[8];
    int64_t repeats;
} work;

static void work_free(work *w) {
    if (!w) return;
    rf_free(w->stamp);
    rf_free(w->slot);
    rf_free(w->pitem);
    rf_free(w->pcnt);
    rf_free(w->pavail);
    rf_free(w->pcos);
    rf_free(w->order);
    rf_free(w->sess);
    rf_free(w->ev);
    rf_free(w->evtmp);
    rf_free(w->aff);
    rf_free(w->raw);
    rf_free(w->F);
    rf_free(w->R);
    rf_free(w->cw);
    rf_free(w->cp);
    rf_free(w->ca);
    rf_free(w->affp);
    rf_free(w->uvec);
    rf_free(w->cthr);
    rf_free(w->calias);
    rf_free(w->cwork);
    rf_free(w->out);
    rf_free(w);
}

static work *work_new(const gen *g) {
    work *w = rf_calloc(1, sizeof *w);
    if (!w) return NULL;
    int C = g->C, NS = g->nsubs;
    w->stamp = rf_calloc((size_t)g->I, sizeof(uint32_t));
    w->slot = rf_malloc_array((size_t)g->I, sizeof(int32_t));
    w->aff = rf_malloc_array((size_t)C, sizeof(double));
    w->raw = rf_malloc_array((size_t)C, sizeof(double));
    w->F = rf_malloc_array((size_t)NS, sizeof(double));
    w->R = rf_malloc_array((size_t)NS, sizeof(double));
    w->cw = rf_malloc_array((size_t)NS, sizeof(double));
    w->cp = rf_malloc_array((size_t)NS, sizeof(double));
    w->ca = rf_malloc_array((size_t)NS, sizeof(double));
    w->affp = rf_malloc_array((size_t)C, sizeof(double));
    w->uvec = rf_malloc_array((size_t)g->K, sizeof(float));
    w->cthr = rf_malloc_array((size_t)NS, sizeof(uint32_t));
    w->calias = rf_malloc_array((size_t)NS, sizeof(int32_t));
    w->cwork = rf_malloc_array((size_t)NS * 2, sizeof(int64_t));
    if (!w->stamp || !w->slot || !w->aff || !w->raw || !w->F || !w->R || !w->cw || !w->cp ||
        !w->ca || !w->affp || !w->uvec ||
        !w->cthr || !w->calias || !w->cwork) {
        work_free(w);
        return NULL;
    }
    return w;
}

static int grow(void **p, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return 0;
    int64_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = rf_realloc_array(*p, (size_t)n, size);
    if (!q) return RF_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int pool_reserve(work *w, int64_t n) {
    if (n <= w->pcap) return 0;
    int64_t cap = w->pcap ? w->pcap : 256;
    while (cap < n) cap *= 2;
    void *a = rf_realloc_array(w->pitem, (size_t)cap, sizeof(int32_t));
    if (a) w->pitem = a;
    void *b = rf_realloc_array(w->pcnt, (size_t)cap, sizeof(int32_t));
    if (b) w->pcnt = b;
    void *c = rf_realloc_array(w->pavail, (size_t)cap, sizeof(float));
    if (c) w->pavail = c;
    void *d = rf_realloc_array(w->pcos, (size_t)cap, sizeof(float));
    if (d) w->pcos = d;
    void *f = rf_realloc_array(w->order, (size_t)cap, sizeof *w->order);
    if (f) w->order = f;
    if (!a || !b || !c || !d || !f) return RF_ENOMEM;
    w->pcap = cap;
    return 0;
}

static int ev_push(work *w, int64_t *n, int64_t ts, int32_t item, int type, int value) {
    if (*n >= w->ecap) {
        int64_t cap = w->ecap;
        if (grow((void **)&w->ev, &cap, *n + 1, sizeof(gev))) return RF_ENOMEM;
        int64_t cap2 = w->ecap;
        if (grow((void **)&w->evtmp, &cap2, *n + 1, sizeof(gev))) return RF_ENOMEM;
        w->ecap = cap < cap2 ? cap : cap2;
    }
    gev *e = &w->ev[(*n)++];
    e->ts = ts;
    e->item = item;
    e->type = (uint8_t)type;
    e->value = (uint8_t)value;
    e->pad = 0;
    return 0;
}

/* Stable merge sort of events by timestamp. */
static void ev_sort(gev *a, gev *tmp, int64_t n) {
    const int64_t RUN = 16;
    for (int64_t lo = 0; lo < n; lo += RUN) {
        int64_t hi = lo + RUN < n ? lo + RUN : n;
        for (int64_t i = lo + 1; i < hi; i++) {
            gev x = a[i];
            int64_t j = i - 1;
            while (j >= lo && a[j].ts > x.ts) {
                a[j + 1] = a[j];
                j--;
            }
            a[j + 1] = x;
        }
    }
    gev *src = a, *dst = tmp;
    for (int64_t width = RUN; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = lo + width < n ? lo + width : n;
            int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = src[j].ts < src[i].ts ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        gev *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(gev));
}

typedef struct rkey rkey;

/* Partial selection (Hoare/Wirth): afterwards a[0..m) hold the m smallest keys. */
static void select_smallest(rkey *a, int64_t n, int64_t m) {
    int64_t lo = 0, hi = n - 1, k = m - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2].key;
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i].key < pivot) i++;
            while (a[j].key > pivot) j--;
            if (i <= j) {
                rkey t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
}

/* Sort rkeys by key (quicksort, middle pivot, insertion sort below 16;
 * keys are i.i.d. random, so no adversarial inputs). */
static void sort_rkeys(rkey *a, int64_t n) {
    while (n > 16) {
        double pivot = a[n / 2].key;
        int64_t i = 0, j = n - 1;
        while (i <= j) {
            while (a[i].key < pivot) i++;
            while (a[j].key > pivot) j--;
            if (i <= j) {
                rkey t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* recurse on the smaller side, loop on the larger */
        if (j + 1 < n - i) {
            sort_rkeys(a, j + 1);
            a += i;
            n -= i;
        } else {
            sort_rkeys(a + i, n - i);
            n = j + 1;
        }
    }
    for (int64_t i = 1; i < n; i++) {
        rkey x = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j].key > x.key) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = x;
    }
}

static inline int64_t lower_bound(const int64_t *a, int64_t n, int64_t x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) >> 1;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Session availability of item `it` for a customer with sessions sess[0..S):
 * returns the weight sum (sessions after creation, trend sessions counted
 * `boost` times) and fills the index ranges. */
typedef struct avail_t {
    int64_t k0, kb0, kb1;
    double wout, win;
} avail_t;

static inline void item_avail(const gitem *it, const int64_t *sess, int64_t S, avail_t *a) {
    a->k0 = it->created > 0 ? lower_bound(sess, S, it->created) : 0;
    a->kb0 = a->kb1 = a->k0;
    int64_t nall = S - a->k0, nb = 0;
    if (it->boost > 1 && nall > 0) {
        int64_t b0 = it->b0 > it->created ? it->b0 : it->created;
        a->kb0 = lower_bound(sess, S, b0);
        a->kb1 = lower_bound(sess, S, it->b1);
        if (a->kb1 < a->kb0) a->kb1 = a->kb0;
        nb = a->kb1 - a->kb0;
    }
    a->wout = (double)(nall - nb);
    a->win = (double)nb * it->boost;
}

static inline int64_t pick_session(rf_rng *r, const avail_t *a) {
    double tot = a->wout + a->win;
    if (a->win > 0 && rf_rng_uniform(r) * tot < a->win)
        return a->kb0 + (int64_t)rf_rng_below(r, (uint64_t)(a->kb1 - a->kb0));
    int64_t x = (int64_t)rf_rng_below(r, (uint64_t)a->wout);
    int64_t before = a->kb0 - a->k0;
    return x < before ? a->k0 + x : a->kb1 + (x - before);
}

/* A time in [a, b) drawn with the weekday x hour intensity (rejection). */
static int64_t season_time(const gen *g, rf_rng *r, int64_t a, int64_t b) {
    static const double wmax = 1.35 * 1.5;
    int64_t t = a;
    if (b <= a) return a;
    for (int tries = 0; tries < 64; tries++) {
        t = a + (int64_t)rf_rng_below(r, (uint64_t)(b - a));
        int64_t abs_t = g->o.start + t;
        int wd = (int)((abs_t / DAY + 3) % 7);
        int h = (int)((abs_t % DAY) / 3600);
        if (rf_rng_uniform(r) * wmax < weekday_w[wd] * hour_w[h]) break;
    }
    return t;
}

/* Move t to a seasonal hour of the same day (for re-buys). */
static int64_t season_hour(const gen *g, rf_rng *r, int64_t t) {
    int64_t abs_t = g->o.start + t, day0 = abs_t - abs_t % DAY;
    for (int tries = 0; tries < 32; tries++) {
        int h = (int)rf_rng_below(r, 24);
        if (rf_rng_uniform(r) * 1.5 < hour_w[h]) return day0 - g->o.start + h * 3600 + (int64_t)rf_rng_below(r, 3600);
    }
    return t;
}

static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static char *put_u64(char *p, uint64_t v) {
    char tmp[24];
    int n = 24;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        tmp[--n] = digits2[d + 1];
        tmp[--n] = digits2[d];
    }
    if (v >= 10) {
        tmp[--n] = digits2[v * 2 + 1];
        tmp[--n] = digits2[v * 2];
    } else {
        tmp[--n] = (char)('0' + v);
    }
    memcpy(p, tmp + n, (size_t)(24 - n));
    return p + (24 - n);
}

static const char *const type_str[RF_EV_NTYPES] = {"view", "click", "cart", "purchase", "rating", "custom"};
static const int type_len[RF_EV_NTYPES] = {4, 5, 4, 8, 6, 6};

/* Generate customer u's events and append their lines to w->out. */
static int gen_user(const gen *g, int64_t u, work *w) {
    int64_t n = g->n_u[u];
    if (n <= 0) return 0;
    const rf_gen_opts *o = &g->o;
    int C = g->C, K = g->K;
    uprof p = {.aff = w->aff, .raw = w->raw, .vec = w->uvec};
    user_profile(g, u, &p);
    rf_rng r;
    rf_rng_stream(&r, o->seed, 2 * (uint64_t)u);
    double taste = o->taste;
    double lambda = seg_price_sens[p.seg];
    int implicit = o->implicit_only;

    /* 1. sessions */
    int64_t S = implicit ? (n + 3) / 4 : (n + 5) / 6;
    if (S < 1) S = 1;
    if (grow((void **)&w->sess, &w->scap, S, sizeof(int64_t))) return RF_ENOMEM;
    int64_t hi = p.w1 - 1800 > p.w0 ? p.w1 - 1800 : p.w1;
    for (int64_t s = 0; s < S; s++) w->sess[s] = season_time(g, &r, p.w0, hi);
    /* sort session times (insertion for small, else shell) */
    {
        int64_t *a = w->sess;
        static const int64_t gaps[] = {1750, 701, 301, 132, 57, 23, 10, 4, 1};
        for (int gi = 0; gi < 9; gi++) {
            int64_t gap = gaps[gi];
            for (int64_t i = gap; i < S; i++) {
                int64_t x = a[i], j = i;
                while (j >= gap && a[j - gap] > x) {
                    a[j] = a[j - gap];
                    j -= gap;
                }
                a[j] = x;
            }
        }
    }
    const int64_t *sess = w->sess;

    /* 2. candidate pool by rounds of proposals */
    int64_t need = implicit ? n : n / 2 + 4;
    if (need > g->I) need = g->I;
    int64_t target = need + need / 4 + 8;
    uint32_t tag = (uint32_t)(u + 1);
    int64_t P = 0, navail = 0, mtot = 0;
    int NS = g->nsubs;
    /* proposal A: subcategory by mass x affinity^taste x exp(taste B cos(x_u, centre));
     * proposal B: subcategory by mass (plain popularity) */
    double sa = 0, sb = 0;
    for (int c = 0; c < C; c++) w->affp[c] = pow(C * p.aff[c], taste);
    for (int s = 0; s < NS; s++) {
        const gsub *sb_ = &g->subs[s];
        double cs = SUB_COS_SHRINK * dotf(p.vec, sb_->unit, K);
        w->ca[s] = sb_->Q * w->affp[sb_->cat] * exp(taste * TASTE_BETA * cs);
        sa += w->ca[s];
        sb += sb_->Q;
        w->R[s] = 0;
    }
    int64_t m0 = 3 * need / 2 + 16;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        double eps = round == 0 ? 0 : fmin(1.0, 0.35 * round);
        for (int s = 0; s < NS; s++)
            w->cw[s] = (1 - eps) * w->ca[s] / sa + eps * g->subs[s].Q / sb;
        alias_build(w->cw, NS, w->cthr, w->calias, w->cwork, w->cp);
        int64_t M = m0 << round;
        if (pool_reserve(w, P + M < g->I ? P + M : g->I)) return RF_ENOMEM;
        for (int s = 0; s < NS; s++) w->R[s] += (double)M * w->cw[s];
        mtot += M;
        for (int64_t mm = 0; mm < M; mm++) {
            const gsub *ct = &g->subs[alias_draw(&r, w->cthr, w->calias, NS)];
            if (ct->n == 0) continue; /* zero-mass subcategory (alias rounding) */
            int32_t it = ct->members[alias_draw(&r, ct->thr, ct->alias, ct->n)];
            if (w->stamp[it] == tag) {
                w->pcnt[w->slot[it]]++;
                continue;
            }
            w->stamp[it] = tag;
            w->slot[it] = (int32_t)P;
            w->pitem[P] = it;
            w->pcnt[P] = 1;
            if (g->special[it]) {
                avail_t av;
                item_avail(&g->items[it], sess, S, &av);
                w->pavail[P] = (float)((av.wout + av.win) / (double)S);
            } else {
                w->pavail[P] = 1;
            }
            if (w->pavail[P] > 0) navail++;
            P++;
        }
        if (navail >= target || P >= g->I) break;
    }
    /* importance weights p / proposal (the q_i / Q_s of both cancel) and
     * exponential race keys */
    for (int s = 0; s < NS; s++) {
        double rs = w->R[s] / (double)mtot;
        w->F[s] = rs > 0 ? g->subs[s].Q * w->affp[g->subs[s].cat] / rs : 0;
    }
    int64_t nk = 0;
    for (int64_t j = 0; j < P; j++) {
        if (j + 8 < P) __builtin_prefetch(g->ivec + (size_t)w->pitem[j + 8] * K);
        if (w->pavail[j] <= 0) continue;
        int32_t it = w->pitem[j];
        float cs = doti8(p.vec, g->ivec + (size_t)it * K, K);
        w->pcos[j] = cs;
        double lw = taste * (TASTE_BETA * cs - lambda * g->hot[it].pz);
        double wt = w->pcnt[j] * w->F[g->hot[it].sub] * exp(lw) * w->pavail[j];
        if (!(wt > 0)) continue;
        w->order[nk].key = rf_rng_exp(&r) / wt;
        w->order[nk++].j = (int32_t)j;
    }
    int64_t m = need < nk ? need : nk;
    if (m < nk) select_smallest(w->order, nk, m);
    /* full mode: the race order is the order in which the customer
     * discovers items (keys are distinct with probability 1) */
    if (!implicit) sort_rkeys(w->order, m);

    /* 3. events */
    int64_t ne = 0;
    int64_t last = g->span - 1;
    if (implicit) {
        for (int64_t j = 0; j < m; j++) {
            int32_t it = w->pitem[w->order[j].j];
            int64_t k;
            if (g->special[it]) {
                avail_t av;
                item_avail(&g->items[it], sess, S, &av);
                k = pick_session(&r, &av);
            } else {
                k = (int64_t)rf_rng_below(&r, (uint64_t)S);
            }
            int64_t ts = sess[k] + (int64_t)rf_rng_below(&r, 1800);
            if (ts > last) ts = last;
            if (ev_push(w, &ne, ts, it, RF_EV_PURCHASE, 1)) return RF_ENOMEM;
        }
    } else {
        double lcart = logit(o->cart_rate), lbuy = logit(o->purchase_rate);
        double prep = fmin(0.95, o->repeat_rate * seg_repeat_mult[p.seg]);
        int64_t end_rebuy = p.w1 < g->span ? p.w1 : g->span;
        /* the bound on j only matters when episodes keep falling past the
         * span (a window squeezed into the last half hour) */
        for (int64_t j = 0; ne < n && m > 0 && j < m + 4 * n + 64; j++) {
            int revisit = j >= m;
            int64_t pj = w->order[revisit ? (int64_t)rf_rng_below(&r, (uint64_t)m) : j].j;
            int32_t it = w->pitem[pj];
            double cs = w->pcos[pj];
            int64_t k;
            if (g->special[it]) {
                avail_t av;
                item_avail(&g->items[it], sess, S, &av);
                k = pick_session(&r, &av);
            } else {
                k = (int64_t)rf_rng_below(&r, (uint64_t)S);
            }
            int64_t t = sess[k] + (int64_t)rf_rng_below(&r, 1500);
/* events past the span are dropped; an episode's times only grow, so a
 * dropped event takes the rest of its episode with it */
#define PUSH(type, val)                                                       \
    do {                                                                      \
        if (t <= last && ev_push(w, &ne, t, it, (type), (val))) return RF_ENOMEM; \
    } while (0)
            if (rf_rng_uniform(&r) < 0.2) {
                PUSH(RF_EV_CLICK, 1);
                t += 3 + (int64_t)rf_rng_below(&r, 30);
            }
            int nv = 1;
            while (nv < 4 && rf_rng_uniform(&r) < 0.3) nv++;
            for (int v = 0; v < nv; v++) {
                PUSH(RF_EV_VIEW, 1);
                t += 15 + (int64_t)rf_rng_below(&r, 180);
            }
            double pz = g->hot[it].pz;
            double lc = lcart + 2.5 * (cs - 0.4) - lambda * pz - (revisit ? 1.5 : 0);
            if (rf_rng_uniform(&r) >= sigmoid(lc)) continue;
            PUSH(RF_EV_CART, 1);
            t += 20 + (int64_t)rf_rng_below(&r, 400);
            double lb = lbuy + 1.5 * (cs - 0.4) - 0.7 * lambda * pz;
            if (rf_rng_uniform(&r) >= sigmoid(lb)) continue;
            int repl = g->subs[g->hot[it].sub].def->replenish_days;
            int qty = 1;
            if (repl > 0) {
                while (qty < 6 && rf_rng_uniform(&r) < 0.3) qty++;
            } else if (rf_rng_uniform(&r) < 0.04) {
                qty = 2;
            }
            PUSH(RF_EV_PURCHASE, qty);
            if (rf_rng_uniform(&r) < o->rating_rate) {
                int64_t tr = t + DAY / 2 + (int64_t)(rf_rng_exp(&r) * 4 * DAY);
                if (tr <= last) {
                    double v = 3.5 + 3.2 * (cs - 0.35) + 0.9 * rf_rng_normal(&r);
                    int val = (int)lround(v);
                    val = val < 1 ? 1 : val > 5 ? 5 : val;
                    if (ev_push(w, &ne, tr, it, RF_EV_RATING, val)) return RF_ENOMEM;
                }
            }
            /* consumables: re-buy chain */
            int64_t tp = t;
            while (repl > 0 && rf_rng_uniform(&r) < prep) {
                int64_t gap = (int64_t)(repl * (double)DAY * exp(0.3 * rf_rng_normal(&r)));
                int64_t tn = season_hour(g, &r, tp + gap);
                if (tn <= tp) tn = tp + gap;
                if (tn >= end_rebuy) break;
                t = tn;
                if (rf_rng_uniform(&r) < 0.4) {
                    PUSH(RF_EV_VIEW, 1);
                    t += 10 + (int64_t)rf_rng_below(&r, 120);
                }
                PUSH(RF_EV_CART, 1);
                t += 10 + (int64_t)rf_rng_below(&r, 300);
                PUSH(RF_EV_PURCHASE, qty);
                w->repeats++;
                tp = t;
            }
#undef PUSH
        }
    }
    ev_sort(w->ev, w->evtmp, ne);
    if (!implicit) {
        /* drop exact repeats (same item, type and second: a re-visit that
         * landed on the same second), so (user, item, type, ts) is a key */
        int64_t out = 0;
        for (int64_t e = 0; e < ne; e++) {
            int dup = 0;
            for (int64_t x = out - 1; x >= 0 && w->ev[x].ts == w->ev[e].ts; x--)
                if (w->ev[x].item == w->ev[e].item && w->ev[x].type == w->ev[e].type) dup = 1;
            if (!dup) w->ev[out++] = w->ev[e];
        }
        ne = out;
    }
    if (ne > n) ne = n;

    /* 4. lines */
    size_t need_bytes = (size_t)ne * 64 + 64;
    if (w->olen + need_bytes > w->ocap) {
        size_t cap = w->ocap ? w->ocap : 1 << 20;
        while (cap < w->olen + need_bytes) cap *= 2;
        char *q = rf_realloc(w->out, cap);
        if (!q) return RF_ENOMEM;
        w->out = q;
        w->ocap = cap;
    }
    char ubuf[32];
    ubuf[0] = 'u';
    int ulen = (int)(put_u64(ubuf + 1, (uint64_t)u + 1) - ubuf);
    char *op = w->out + w->olen;
    for (int64_t e = 0; e < ne; e++) {
        const gev *ev = &w->ev[e];
        memcpy(op, ubuf, (size_t)ulen);
        op += ulen;
        *op++ = '\t';
        *op++ = 'i';
        op = put_u64(op, (uint64_t)ev->item + 1);
        *op++ = '\t';
        memcpy(op, type_str[ev->type], (size_t)type_len[ev->type]);
        op += type_len[ev->type];
        *op++ = '\t';
        op = put_u64(op, ev->value);
        *op++ = '\t';
        op = put_u64(op, (uint64_t)(o->start + ev->ts));
        *op++ = '\n';
        w->type_counts[ev->type]++;
    }
    w->olen = (size_t)(op - w->out);
    return 0;
}

/* ---- files ------------------------------------------------------------ */

typedef struct outfile {
    char *path, *tmp;
    FILE *f;
} outfile;

static int out_open(outfile *of, const char *dir, const char *name, rf_err *err) {
    size_t n = strlen(dir) + strlen(name) + 8;
    of->path = rf_malloc(n);
    of->tmp = rf_malloc(n);
    of->f = NULL;
    if (!of->path || !of->tmp) return rf_err_set(err, RF_ENOMEM, "out of memory");
    snprintf(of->path, n, "%s/%s", dir, name);
    snprintf(of->tmp, n, "%s/%s.tmp", dir, name);
    of->f = fopen(of->tmp, "wb");
    if (!of->f) return rf_err_set(err, RF_EIO, "cannot write '%s': %s", of->tmp, strerror(errno));
    setvbuf(of->f, NULL, _IOFBF, 1 << 20);
    return 0;
}

/* Close and rename into place (ok != 0), or close and remove the temp file. */
static int out_close(outfile *of, int ok, rf_err *err) {
    int rc = 0;
    if (of->f) {
        if (ferror(of->f) && ok) rc = rf_err_set(err, RF_EIO, "error writing '%s'", of->tmp);
        if (fclose(of->f) != 0 && ok && !rc)
            rc = rf_err_set(err, RF_EIO, "error writing '%s': %s", of->tmp, strerror(errno));
        of->f = NULL;
        if (ok && !rc && rename(of->tmp, of->path) != 0)
            rc = rf_err_set(err, RF_EIO, "cannot rename '%s': %s", of->tmp, strerror(errno));
        if (!ok || rc) remove(of->tmp);
    }
    rf_free(of->path);
    rf_free(of->tmp);
    of->path = of->tmp = NULL;
    return rc;
}

static int write_items(const gen *g, const char *dir, rf_err *err) {
    outfile of = {0};
    int rc = out_open(&of, dir, "items.tsv", err);
    if (rc) {
        out_close(&of, 0, NULL);
        return rc;
    }
    FILE *f = of.f;
    fputs("id\ttitle\tcategory\tbrand\tprice\tstock\tcreated\n", f);
    for (int64_t i = 0; i < g->I; i++) {
        const gitem *it = &g->items[i];
        const gcat *ct = &g->cats[it->cat];
        const gsub *sb = &g->subs[it->sub];
        fprintf(f, "i%lld\t%s %s %s%s\t%s\t%s\t%.2f\t%d\t%lld\n", (long long)i + 1,
                g->brand_name[it->brand], ct->def->adjectives[it->adj], sb->def->nouns[it->noun],
                it->var >= 0 ? ct->def->variants[it->var] : "", sb->path, g->brand_name[it->brand],
                (double)it->price, it->stock, (long long)(g->o.start + it->created));
    }
    rc = out_close(&of, 1, err);
    if (rc || !g->o.write_truth) return rc;
    rc = out_open(&of, dir, "truth_items.tsv", err);
    if (rc) {
        out_close(&of, 0, NULL);
        return rc;
    }
    f = of.f;
    fputs("id\tpop_rank\tbase_pop\ttrend_start\ttrend_end\ttrend_boost\treplenish_days\n", f);
    for (int64_t i = 0; i < g->I; i++) {
        const gitem *it = &g->items[i];
        int boosted = it->boost > 1;
        fprintf(f, "i%lld\t%d\t%.6g\t%lld\t%lld\t%.2f\t%d\n", (long long)i + 1, it->rank + 1, g->q[i],
                boosted ? (long long)(g->o.start + it->b0) : 0LL,
                boosted ? (long long)(g->o.start + it->b1) : 0LL, boosted ? (double)it->boost : 1.0,
                g->subs[it->sub].def->replenish_days);
    }
    return out_close(&of, 1, err);
}

static const char *const gender_str[3] = {"F", "M", "U"};

/* users.tsv and the activity scores z_u. */
static int write_users(gen *g, const char *dir, rf_err *err) {
    outfile of = {0}, tf = {0};
    double *aff = rf_malloc_array((size_t)g->C, sizeof(double));
    double *raw = rf_malloc_array((size_t)g->C, sizeof(double));
    float *vec = rf_malloc_array((size_t)g->K, sizeof(float));
    int rc = (!aff || !raw || !vec) ? rf_err_set(err, RF_ENOMEM, "out of memory") : 0;
    if (!rc) rc = out_open(&of, dir, "users.tsv", err);
    if (!rc && g->o.write_truth) rc = out_open(&tf, dir, "truth_users.tsv", err);
    if (rc) goto done;
    fputs("id\tgender\tage\tcountry\tsegment\n", of.f);
    if (tf.f) fputs("id\tactive_from\tactive_to\tfavourite_category\tfavourite_share\n", tf.f);
    for (int64_t u = 0; u < g->U; u++) {
        uprof p = {.aff = aff, .raw = raw, .vec = vec};
        user_profile(g, u, &p);
        g->z_u[u] = (float)p.z;
        fprintf(of.f, "u%lld\t%s\t%d\t%s\t%s\n", (long long)u + 1, gender_str[p.gender], p.age,
                rf_gen_countries[p.country], rf_gen_segments[p.seg]);
        if (tf.f)
            fprintf(tf.f, "u%lld\t%lld\t%lld\t%s\t%.3f\n", (long long)u + 1,
                    (long long)(g->o.start + p.w0), (long long)(g->o.start + p.w1),
                    g->cats[p.fav].name, p.raw[p.fav]);
    }
done:
    {
        int rc2 = out_close(&of, rc == 0, rc ? NULL : err);
        if (!rc) rc = rc2;
        rc2 = out_close(&tf, rc == 0, rc ? NULL : err);
        if (!rc) rc = rc2;
    }
    rf_free(aff);
    rf_free(raw);
    rf_free(vec);
    return rc;
}

/* Events per user: clamp(exp(mu + sigma z_u), lo, cap) with mu found by
 * bisection so the total is the target, then systematic rounding so the
 * integers add up exactly. */
static void plan_activity(gen *g) {
    const rf_gen_opts *o = &g->o;
    double E = (double)o->events, U = (double)g->U, mean = E / U;
    double lo = fmin(5.0, 0.25 * mean);
    double cap;
    if (o->implicit_only)
        cap = fmin((double)g->I, fmax(0.2 * (double)g->I, 3.0 * mean));
    else
        cap = fmax(40.0 * mean, 10.0);
    if (lo > cap) lo = cap;
    double sigma = o->activity_sigma, a = -50, b = 50;
    for (int it = 0; it < 100; it++) {
        double mu = 0.5 * (a + b), s = 0;
        for (int64_t u = 0; u < g->U; u++) s += fmin(cap, fmax(lo, exp(mu + sigma * g->z_u[u])));
        if (s < E)
            a = mu;
        else
            b = mu;
    }
    double mu = 0.5 * (a + b), cum = 0;
    int64_t prev = 0, total = 0;
    for (int64_t u = 0; u < g->U; u++) {
        cum += fmin(cap, fmax(lo, exp(mu + sigma * g->z_u[u])));
        int64_t c = (int64_t)floor(cum + 1e-9);
        if (c > o->events) c = o->events;
        g->n_u[u] = c - prev;
        prev = c;
        total += g->n_u[u];
    }
    /* the bisection can leave the sum a hair short: give the rest to the
     * last users that still have room */
    for (int64_t u = g->U - 1; u >= 0 && total < o->events; u--) {
        int64_t room = (int64_t)cap - g->n_u[u];
        if (room <= 0) continue;
        int64_t add = o->events - total < room ? o->events - total : room;
        g->n_u[u] += add;
        total += add;
    }
}

int rf_gen_write(const char *dir, const rf_gen_opts *opts, rf_gen_stats *st, rf_err *err) {
    double t0 = rf_mono();
    rf_gen_opts def;
    if (!opts) {
        rf_gen_opts_default(&def);
        opts = &def;
    }
    const char *msg = rf_gen_opts_check(opts);
    if (msg) return rf_err_set(err, RF_EINVAL, "gen: %s", msg);
    if (!dir || !*dir) return rf_err_set(err, RF_EINVAL, "gen: no output directory");
    int rc = rf_mkdirs(dir, err);
    if (rc) return rc;

    gen g;
    memset(&g, 0, sizeof g);
    g.o = *opts;
    g.K = opts->factors;
    g.C = opts->categories;
    g.B = opts->brands;
    g.U = opts->users;
    g.I = opts->items;
    g.span = (int64_t)(opts->days * DAY);
    if (g.span < 3600) g.span = 3600;
    outfile of = {0};
    int64_t *blocks = NULL;
    work **ws = NULL;
    int nthreads = rf_threads();
    rf_progress *prog = NULL;

    rc = build_catalog(&g, err);
    if (rc) goto fail;
    rc = write_items(&g, dir, err);
    if (rc) goto fail;
    g.z_u = rf_malloc_array((size_t)g.U, sizeof(float));
    g.n_u = rf_malloc_array((size_t)g.U, sizeof(int64_t));
    if (!g.z_u || !g.n_u) {
        rc = rf_err_set(err, RF_ENOMEM, "gen: out of memory for %lld users", (long long)g.U);
        goto fail;
    }
    rc = write_users(&g, dir, err);
    if (rc) goto fail;
    plan_activity(&g);
    rf_log(RF_LOG_DEBUG, "gen.plan", "catalog_users_seconds=%.2f", rf_mono() - t0);
    rf_free(g.z_u);
    g.z_u = NULL;

    /* blocks of users with about BLOCK_EVENTS events */
    int64_t nblocks = 0, bcap = 64;
    blocks = rf_malloc_array((size_t)bcap, sizeof(int64_t));
    if (!blocks) goto nomem;
    blocks[nblocks++] = 0;
    {
        int64_t acc = 0, nusers = 0;
        for (int64_t u = 0; u < g.U; u++) {
            acc += g.n_u[u];
            nusers++;
            if (acc >= BLOCK_EVENTS || nusers >= BLOCK_USERS || u == g.U - 1) {
                if (nblocks >= bcap) {
                    int64_t *nb = rf_realloc_array(blocks, (size_t)bcap * 2, sizeof(int64_t));
                    if (!nb) goto nomem;
                    blocks = nb;
                    bcap *= 2;
                }
                blocks[nblocks++] = u + 1;
                acc = nusers = 0;
            }
        }
    }
    nblocks--; /* block b is users [blocks[b], blocks[b + 1]) */

    rc = out_open(&of, dir, "interactions.tsv", err);
    if (rc) goto fail;
    static const char header[] = "user\titem\ttype\tvalue\ttimestamp\n";
    fputs(header, of.f);
    int64_t bytes = (int64_t)strlen(header);

    ws = rf_calloc((size_t)nthreads, sizeof *ws);
    if (!ws) goto nomem;
    for (int t = 0; t < nthreads; t++)
        if (!(ws[t] = work_new(&g))) goto nomem;

    prog = rf_progress_start("gen events", opts->events);
    int failed = 0;
    FILE *f = of.f;
#pragma omp parallel num_threads(nthreads)
    {
        work *w = ws[rf_thread_id()];
#pragma omp for ordered schedule(dynamic, 1)
        for (int64_t b = 0; b < nblocks; b++) {
            int bad = 0;
#pragma omp atomic read
            bad = failed;
            int64_t evs = 0;
            w->olen = 0;
            if (!bad)
                for (int64_t u = blocks[b]; u < blocks[b + 1]; u++) {
                    evs += g.n_u[u];
                    if (gen_user(&g, u, w)) {
#pragma omp atomic write
                        failed = RF_ENOMEM;
                        break;
                    }
                }
#pragma omp ordered
            {
#pragma omp atomic read
                bad = failed;
                if (!bad && w->olen) {
                    if (fwrite(w->out, 1, w->olen, f) != w->olen) {
#pragma omp atomic write
                        failed = RF_EIO;
                    }
                    bytes += (int64_t)w->olen;
                }
                rf_progress_add(prog, evs);
            }
        }
    }
    rf_progress_finish(prog);
    prog = NULL;
    if (failed == RF_ENOMEM) goto nomem;
    if (failed) {
        rc = rf_err_set(err, RF_EIO, "gen: error writing '%s': %s", of.tmp, strerror(errno));
        goto fail;
    }
    rc = out_close(&of, 1, err);
    if (rc) goto fail;

    if (st) {
        memset(st, 0, sizeof *st);
        st->users = g.U;
        st->items = g.I;
        for (int t = 0; t < nthreads; t++) {
            for (int k = 0; k < 8; k++) st->type_counts[k] += ws[t]->type_counts[k];
            st->repeat_purchases += ws[t]->repeats;
        }
        for (int k = 0; k < 8; k++) st->events += st->type_counts[k];
        st->bytes = bytes;
        st->seconds = rf_mono() - t0;
    }
    rf_log(RF_LOG_DEBUG, "gen.written", "dir=%s users=%lld items=%lld seconds=%.2f", dir,
           (long long)g.U, (long long)g.I, rf_mono() - t0);
    rc = 0;
    goto done;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "gen: out of memory");
fail:
    out_close(&of, 0, NULL);
done:
    rf_progress_finish(prog);
    if (ws)
        for (int t = 0; t < nthreads; t++) work_free(ws[t]);
    rf_free(ws);
    rf_free(blocks);
    gen_free(&g);
    return rc;
}
