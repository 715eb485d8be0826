/* features.c - the fused model's ranker features, one row per candidate.
 *
 * Layout (fu_feature_name gives the names):
 *   per channel c, 3 each:  c.score  raw score (NAN if c cannot score it)
 *                           c.norm   per-user normalised score: 1 at c's
 *                                    best candidate, 0 at its N-th
 *                           c.rrank  1/rank in c's list, 0 if c did not
 *                                    propose it
 *   n_prop                  channels that proposed the item
 *   user: hist (log1p history items), events (log1p events), recency
 *         (days since the last event), days (log1p active days), money
 *         (log1p purchase value)
 *   context: hour, weekday (UTC) of the user's last event
 *   demographics (user table): user.age, user.gender (0 male, 1 female),
 *         user.segment (an id) - at the end of the row
 *   item: pop (log1p users), trend (log1p users in the last 7 days),
 *         trend_share (trend - pop), price (log1p), age (rank share by
 *         time since created / first seen), stock (log1p), cat_match (share of the
 *         user's history in the item's category), price_rel (price minus
 *         the user's mean log price), pop_share and trend_share_rank
 *         (the rank shares of pop and trend among the items: they mean the
 *         same on the stage-1 data and on all of it, where the counts
 *         drift as the data grows; a tree picks the count on a tie)
 * The per-user normalisation and the ranks are robust to the scale shift
 * between the stage-1 channels and the refit ones; raw scores are not
 * (a count-based score grows with the data), so they are features only
 * with raw=1 (else NAN). Unknown values are NAN (the GBDT routes them; the linear
 * ranker sees 0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/mem.h"

#define PER_CH 3
static const char *const ch_feat[PER_CH] = {"score", "norm", "rrank"};
static const char *const other_feat[] = {
    "n_prop",  "user.hist",  "user.events", "user.recency",   "user.days",
    "user.money", "ctx.hour", "ctx.weekday", "item.pop",      "item.trend",
    "item.trend_share", "item.price", "item.age", "item.stock", "item.cat_match",
    "item.price_rel", "item.pop_share", "item.trend_share_rank", "user.age", "user.gender",
    "user.segment",
};
#define N_OTHER ((int)(sizeof other_feat / sizeof other_feat[0]))

int fu_n_feats(const fu_impl *f) { return PER_CH * f->n_ch + N_OTHER; }

void fu_feature_name(const fu_impl *f, int i, char *buf, size_t size) {
    if (i < PER_CH * f->n_ch)
        snprintf(buf, size, "%s.%s", fu_kind_names[f->kind[i / PER_CH]], ch_feat[i % PER_CH]);
    else
        snprintf(buf, size, "%s", other_feat[i - PER_CH * f->n_ch]);
}

int fu_feature_channel(const fu_impl *f, int i) {
    return i < PER_CH * f->n_ch ? i / PER_CH : -1;
}

/* Count of v in sorted a[0..n). */
static int32_t count_of(const int32_t *a, int32_t n, int32_t v) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    int32_t c = 0;
    while (lo + c < n && a[lo + c] == v) c++;
    return c;
}

void fu_features(const fu_impl *f, const fu_side *side, const fu_cands *c, int32_t user,
                 const rf_hist *h, float *x) {
    const int nf = fu_n_feats(f), nc = f->n_ch;
    /* user-level values */
    float u_hist = (float)log1p((double)h->n), u_events, u_rec, u_days, u_money;
    float u_age = NAN, u_gender = NAN, u_seg = NAN;
    int64_t last = 0;
    if (user >= 0 && user < side->n_users) {
        u_events = side->u_events[user];
        u_rec = side->u_recency[user];
        u_days = side->u_days[user];
        u_money = side->u_money[user];
        last = side->u_last[user];
        u_age = side->u_age[user];
        u_gender = side->u_gender[user];
        u_seg = side->u_segment[user];
    } else {
        u_events = u_hist;
        u_days = NAN;
        u_money = NAN;
        if (h->ts)
            for (int32_t t = 0; t < h->n; t++)
                if (h->ts[t] > last) last = h->ts[t];
        u_rec = last > 0 ? (float)((double)(side->now - last) / 86400.0) : NAN;
    }
    float hour = last > 0 ? (float)((last % 86400) / 3600) : NAN;
    float wday = last > 0 ? (float)(((last / 86400) + 4) % 7) : NAN;
    /* the history's categories (sorted) and mean log price */
    int32_t hc_local[256], *hc = hc_local, n_hc = 0;
    if (h->n > 256) hc = rf_malloc_array((size_t)h->n, sizeof *hc);
    double psum = 0;
    int pn = 0;
    for (int32_t t = 0; t < h->n; t++) {
        int32_t it = h->items[t];
        if (it < 0 || it >= side->n_items) continue;
        if (hc && side->cat[it] >= 0) hc[n_hc++] = side->cat[it];
        if (isfinite(side->price[it])) {
            psum += side->price[it];
            pn++;
        }
    }
    if (hc) qsort(hc, (size_t)n_hc, sizeof *hc, fu_cmp_i32);
    float pmean = pn ? (float)(psum / pn) : NAN;
    for (int32_t t = 0; t < c->n; t++) {
        float *r = x + (size_t)t * (size_t)nf;
        int32_t j = c->items[t];
        int nprop = 0;
        for (int k = 0; k < nc; k++) {
            float s = c->scp[k][j];
            int32_t rk = c->rank[(size_t)k * (size_t)c->cap + (size_t)t];
            r[PER_CH * k] = f->raw && isfinite(s) ? s : NAN;
            r[PER_CH * k + 1] = fu_norm(c, k, j);
            r[PER_CH * k + 2] = rk > 0 ? 1.0f / (float)rk : 0.0f;
            nprop += rk > 0;
        }
        float *o = r + PER_CH * nc;
        const fu_item_row *it = &side->row[j];
        o[0] = (float)nprop;
        o[1] = u_hist;
        o[2] = u_events;
        o[3] = u_rec;
        o[4] = u_days;
        o[5] = u_money;
        o[6] = hour;
        o[7] = wday;
        o[8] = it->pop_log;
        o[9] = it->trend_log;
        o[10] = it->trend_log - it->pop_log;
        o[11] = it->price;
        o[12] = it->age;
        o[13] = it->stock;
        o[14] = it->cat >= 0 && n_hc > 0 && hc ? (float)count_of(hc, n_hc, it->cat) / (float)n_hc
                                               : (it->cat >= 0 ? 0.0f : NAN);
        o[15] = isfinite(it->price) && isfinite(pmean) ? it->price - pmean : NAN;
        o[16] = it->pop;
        o[17] = it->trend;
        o[18] = u_age;
        o[19] = u_gender;
        o[20] = u_seg;
    }
    if (hc != hc_local) rf_free(hc);
}
