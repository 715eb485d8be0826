/* rerank.c - per-request business rules and diversity over a candidate
 * list (rerank.h has the rules and their order).
 *
 * DESIGN: candidates are filtered and boosted into one scratch array,
 * sorted once (score desc, id asc), then the list is filled greedily.
 * MMR keeps, per remaining candidate, its largest similarity to the
 * items chosen so far and updates it with each new pick, so filling k
 * slots from n candidates costs O(n k) similarity calls. Category caps
 * are counted in a small table of (category, count) pairs, so no
 * per-category array of the catalog's size is needed. */
#include "recfuse/rerank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"

void rf_rerank_req_init(rf_rerank_req *r, int32_t n_items) {
    memset(r, 0, sizeof *r);
    r->n_items = n_items;
    r->min_price = NAN;
    r->max_price = NAN;
    r->oos = RF_OOS_KEEP;
    r->lambda = 1;
}

float rf_vec_sim_cos(void *ud, int32_t a, int32_t b) {
    const rf_vec_sim *s = ud;
    const float *x = s->v + (size_t)a * (size_t)s->ld, *y = s->v + (size_t)b * (size_t)s->ld;
    double xy = 0, xx = 0, yy = 0;
    for (int d = 0; d < s->dim; d++) {
        xy += (double)x[d] * y[d];
        xx += (double)x[d] * x[d];
        yy += (double)y[d] * y[d];
    }
    if (xx <= 0 || yy <= 0) return 0;
    double c = xy / sqrt(xx * yy);
    return c < 0 ? 0.0f : c > 1 ? 1.0f : (float)c;
}

float rf_cat_sim(void *ud, int32_t a, int32_t b) {
    const int32_t *cat = ud;
    return cat[a] >= 0 && cat[a] == cat[b] ? 1.0f : 0.0f;
}

static int in_list(const int32_t *a, int32_t n, int32_t v) {
    for (int32_t i = 0; i < n; i++)
        if (a[i] == v) return 1;
    return 0;
}

static int cmp_scored(const void *pa, const void *pb) {
    const rf_scored *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Category caps: counts per category in a small table. */
typedef struct capt {
    int32_t n, cap;
    int32_t *cat, *cnt;
} capt;

static int32_t cap_count(const capt *t, int32_t c) {
    for (int32_t i = 0; i < t->n; i++)
        if (t->cat[i] == c) return t->cnt[i];
    return 0;
}

static void cap_add(capt *t, int32_t c) {
    for (int32_t i = 0; i < t->n; i++)
        if (t->cat[i] == c) {
            t->cnt[i]++;
            return;
        }
    t->cat[t->n] = c;
    t->cnt[t->n++] = 1;
}

static int is_oos(const rf_rerank_req *r, int32_t i) { return r->stock && r->stock[i] == 0; }

static int32_t cat_of(const rf_rerank_req *r, int32_t i) {
    return r->category ? r->category[i] : -1;
}

int rf_rerank(const rf_rerank_req *r, const rf_scored *cands, int32_t n, int k, rf_scored *out,
              rf_err *err) {
    if (k <= 0) return 0;
    if (!(r->lambda >= 0 && r->lambda <= 1))
        return rf_err_set(err, RF_EINVAL, "rerank: lambda %g outside [0, 1]", r->lambda);
    if (r->lambda < 1 && !r->sim)
        return rf_err_set(err, RF_EINVAL, "rerank: MMR (lambda < 1) needs a similarity");
    for (int32_t i = 0; i < n; i++)
        if (cands[i].id < 0 || cands[i].id >= r->n_items)
            return rf_err_set(err, RF_EINVAL, "rerank: candidate id %d out of range",
                              (int)cands[i].id);
    for (int32_t i = 0; i < r->n_pins; i++)
        if (r->pins[i].item < 0 || r->pins[i].item >= r->n_items || r->pins[i].pos < 0)
            return rf_err_set(err, RF_EINVAL, "rerank: pin %d (item %d at %d) out of range",
                              (int)i, (int)r->pins[i].item, r->pins[i].pos);
    /* pinned items that survive blocking, first pin of an item wins */
    int32_t np = 0;
    rf_pin *pins = rf_malloc_array((size_t)r->n_pins + 1, sizeof *pins);
    rf_scored *c = rf_malloc_array((size_t)n + 1, sizeof *c);
    float *msim = rf_malloc_array((size_t)n + 1, sizeof *msim);
    uint8_t *taken = rf_calloc((size_t)n + 1, 1);
    capt caps = {0, r->cat_cap, rf_malloc_array((size_t)k + (size_t)r->n_pins + 1, sizeof(int32_t)),
                 rf_malloc_array((size_t)k + (size_t)r->n_pins + 1, sizeof(int32_t))};
    int rc = 0;
    if (!pins || !c || !msim || !taken || !caps.cat || !caps.cnt) {
        rc = rf_err_set(err, RF_ENOMEM, "rerank: out of memory");
        goto out;
    }
    for (int32_t i = 0; i < r->n_pins; i++) {
        int dup = 0;
        for (int32_t q = 0; q < np; q++) dup |= pins[q].item == r->pins[i].item;
        if (!dup && !in_list(r->blocked, r->n_blocked, r->pins[i].item)) pins[np++] = r->pins[i];
    }
    /* filter and boost */
    int32_t m = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        if (cands[i].score < lo) lo = cands[i].score;
        if (cands[i].score > hi) hi = cands[i].score;
    }
    float range = hi > lo ? hi - lo : 1.0f;
    for (int32_t i = 0; i < n; i++) {
        int32_t it = cands[i].id;
        if (!isfinite(cands[i].score) && cands[i].score < 0) continue;
        if (in_list(r->blocked, r->n_blocked, it)) continue;
        int pinned = 0;
        for (int32_t q = 0; q < np; q++) pinned |= pins[q].item == it;
        if (pinned) continue;
        if (in_list(r->bought, r->n_bought, it)) {
            int32_t ct = cat_of(r, it);
            if (!(r->repeat_ok && ct >= 0 && ct < r->n_categories && r->repeat_ok[ct])) continue;
        }
        if (!isnan(r->min_price) || !isnan(r->max_price)) {
            double p = r->price ? r->price[it] : NAN;
            if (isnan(p) || (!isnan(r->min_price) && p < r->min_price) ||
                (!isnan(r->max_price) && p > r->max_price))
                continue;
        }
        if (r->oos == RF_OOS_EXCLUDE && is_oos(r, it)) continue;
        float s = cands[i].score;
        for (int32_t q = 0; q < r->n_boosts; q++)
            if (r->boosts[q].item == it) s += r->boosts[q].boost * range;
        c[m].id = it;
        c[m++].score = s;
    }
    qsort(c, (size_t)m, sizeof *c, cmp_scored);
    if (r->oos == RF_OOS_DEMOTE) { /* stable: in-stock first */
        int32_t w = 0;
        rf_scored *tmp = rf_malloc_array((size_t)m + 1, sizeof *tmp);
        if (!tmp) {
            rc = rf_err_set(err, RF_ENOMEM, "rerank: out of memory");
            goto out;
        }
        for (int32_t i = 0; i < m; i++)
            if (!is_oos(r, c[i].id)) tmp[w++] = c[i];
        for (int32_t i = 0; i < m; i++)
            if (is_oos(r, c[i].id)) tmp[w++] = c[i];
        memcpy(c, tmp, (size_t)m * sizeof *c);
        rf_free(tmp);
    }
    /* pinned items count towards their categories' caps */
    for (int32_t q = 0; q < np; q++) {
        int32_t ct = cat_of(r, pins[q].item);
        if (ct >= 0) cap_add(&caps, ct);
    }
    int slots = k - (np < k ? (int)np : k);
    float slo = INFINITY, shi = -INFINITY; /* rel = score scaled to [0, 1] */
    for (int32_t i = 0; i < m; i++) {
        if (c[i].score < slo) slo = c[i].score;
        if (c[i].score > shi) shi = c[i].score;
    }
    float sr = shi > slo ? shi - slo : 1.0f;
    for (int32_t i = 0; i < m; i++) msim[i] = 0;
    int got = 0;
    while (got < slots) {
        int32_t best = -1;
        double bv = -INFINITY;
        for (int32_t i = 0; i < m; i++) {
            if (taken[i]) continue;
            int32_t ct = cat_of(r, c[i].id);
            if (r->cat_cap > 0 && ct >= 0 && cap_count(&caps, ct) >= r->cat_cap) continue;
            if (r->lambda >= 1) { /* sorted: the first admissible is the best */
                best = i;
                break;
            }
            int demoted = r->oos == RF_OOS_DEMOTE && is_oos(r, c[i].id);
            double v = r->lambda * ((c[i].score - slo) / sr) - (1 - r->lambda) * msim[i] -
                       (demoted ? 4.0 : 0.0); /* demotion outranks diversity */
            if (v > bv) {
                bv = v;
                best = i;
            }
        }
        if (best < 0) break;
        taken[best] = 1;
        out[got++] = c[best];
        int32_t ct = cat_of(r, c[best].id);
        if (ct >= 0) cap_add(&caps, ct);
        if (r->lambda < 1)
            for (int32_t i = 0; i < m; i++)
                if (!taken[i]) {
                    float s = r->sim(r->sim_ud, c[i].id, c[best].id);
                    if (s > msim[i]) msim[i] = s;
                }
    }
    /* pinned items at their positions (in position order) */
    for (int32_t a = 1; a < np; a++)
        for (int32_t b = a; b > 0 && (pins[b].pos < pins[b - 1].pos ||
                                      (pins[b].pos == pins[b - 1].pos && pins[b].item < pins[b - 1].item)); b--) {
            rf_pin t = pins[b];
            pins[b] = pins[b - 1];
            pins[b - 1] = t;
        }
    for (int32_t q = 0; q < np && got < k; q++) {
        int pos = pins[q].pos < got ? pins[q].pos : got;
        memmove(out + pos + 1, out + pos, (size_t)(got - pos) * sizeof *out);
        out[pos].id = pins[q].item;
        out[pos].score = pos > 0 ? out[pos - 1].score : (m ? c[0].score : 0);
        got++;
    }
    rc = got;
out:
    rf_free(pins);
    rf_free(c);
    rf_free(msim);
    rf_free(taken);
    rf_free(caps.cat);
    rf_free(caps.cnt);
    return rc;
}
