/* metrics.c - per-list metrics: ranking accuracy against one user's
 * relevant set, full-ranking AUC, and the beyond-accuracy measures
 * (novelty, popularity bias, intra-list diversity, revenue, Gini).
 *
 * The definitions are those of eval.h (Protocol A): binary relevance,
 * 1-based ranks, P@K over K even when the list is shorter, ideal DCG and
 * the MAP normaliser over min(K, |rel|). Everything here is pure and
 * allocation-free (scratch comes from the caller) so rf_evaluate can call
 * it from every thread.
 *
 * DESIGN: the relevant set arrives sorted, so membership is a binary
 * search - O(K log |rel|) per list and no per-user flag array to clear.
 * AUC needs, for every candidate item j, how many relevant items score
 * above it: with the relevant scores sorted that is two binary searches
 * per item, and candidates below the lowest relevant score (most of the
 * catalog for a useful model) take a single comparison. The relevant
 * items' own pairs are removed in closed form: summed over all ordered
 * pairs of m relevant scores, [a > b] + [a == b]/2 is exactly m^2 / 2.
 * Intra-list diversity by vectors uses sum_{i<j} cos(i, j) =
 * (|sum_i v_i|^2 - sum_i |v_i|^2) / 2 on unit vectors: O(L d), not
 * O(L^2 d). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "recfuse/eval.h"

static const char *const g_names[RF_M_COUNT] = {
    "P",   "R",   "NDCG", "MAP",    "HR",  "MRR",  "AUC", "Nov",
    "ARP", "ILD", "ILDemb", "Rev", "RMSE", "MAE", "Cov", "Gini"};

const char *rf_metric_name(int m) {
    if (m < 0 || m >= RF_M_COUNT)
        return NULL;
    return g_names[m];
}

int rf_metric_parse(const char *name) {
    static const struct {
        const char *name;
        int m;
    } aliases[] = {{"precision", RF_M_PRECISION}, {"recall", RF_M_RECALL},
                   {"hitrate", RF_M_HITRATE},     {"hit", RF_M_HITRATE},
                   {"coverage", RF_M_COVERAGE},   {"map", RF_M_MAP},
                   {"novelty", RF_M_NOVELTY},     {"popbias", RF_M_ARP},
                   {"diversity", RF_M_ILD},       {"revenue", RF_M_REVENUE},
                   {"gini", RF_M_GINI}};
    if (!name)
        return -1;
    for (int m = 0; m < RF_M_COUNT; m++)
        if (strcasecmp(name, g_names[m]) == 0)
            return m;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].name) == 0)
            return aliases[i].m;
    return -1;
}

int rf_metric_at_k(int m) { return m != RF_M_AUC && m != RF_M_RMSE && m != RF_M_MAE; }

int rf_metric_higher_better(int m) {
    return m != RF_M_ARP && m != RF_M_RMSE && m != RF_M_MAE && m != RF_M_GINI;
}

void rf_metric_label(int m, int k, char *buf, size_t size) {
    const char *n = rf_metric_name(m);
    if (!n)
        n = "?";
    if (rf_metric_at_k(m))
        snprintf(buf, size, "%s@%d", n, k);
    else
        snprintf(buf, size, "%s", n);
}

int rf_metric_label_parse(const char *s, int *metric, int *k) {
    if (!s)
        return -1;
    char name[32];
    const char *at = strchr(s, '@');
    size_t len = at ? (size_t)(at - s) : strlen(s);
    if (len == 0 || len >= sizeof name)
        return -1;
    memcpy(name, s, len);
    name[len] = 0;
    int m = rf_metric_parse(name);
    if (m < 0)
        return -1;
    int kv = 0;
    if (at) {
        char *end;
        long v = strtol(at + 1, &end, 10);
        if (end == at + 1 || *end || v < 1 || v > RF_EVAL_MAX_KVAL || !rf_metric_at_k(m))
            return -1;
        kv = (int)v;
    } else if (rf_metric_at_k(m)) {
        return -1;
    }
    *metric = m;
    *k = kv;
    return 0;
}

static int contains(const int32_t *a, int n, int32_t x) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == x;
}

void rf_eval_list(const int32_t *ranked, int n, const int32_t *rel, int n_rel, int k, double *out) {
    for (int i = 0; i < RF_M_PER_USER; i++)
        out[i] = 0.0;
    if (k <= 0 || n_rel <= 0)
        return;
    int len = n < k ? n : k;
    int hits = 0;
    double dcg = 0.0, ap = 0.0, rr = 0.0;
    for (int r = 1; r <= len; r++) {
        if (!contains(rel, n_rel, ranked[r - 1]))
            continue;
        hits++;
        dcg += 1.0 / log2((double)r + 1.0);
        ap += (double)hits / (double)r;
        if (rr == 0.0)
            rr = 1.0 / (double)r;
    }
    int ideal_n = n_rel < k ? n_rel : k;
    double idcg = 0.0;
    for (int r = 1; r <= ideal_n; r++)
        idcg += 1.0 / log2((double)r + 1.0);
    out[RF_M_PRECISION] = (double)hits / (double)k;
    out[RF_M_RECALL] = (double)hits / (double)n_rel;
    out[RF_M_NDCG] = dcg / idcg;
    out[RF_M_MAP] = ap / (double)ideal_n;
    out[RF_M_HITRATE] = hits > 0 ? 1.0 : 0.0;
    out[RF_M_MRR] = rr;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Number of entries of sorted r[0..m) below s (strict) and at most s. */
static inline void count_below(const float *r, int m, float s, int *lt, int *le) {
    int lo = 0, hi = m;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (r[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    *lt = lo;
    hi = m;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (r[mid] <= s)
            lo = mid + 1;
        else
            hi = mid;
    }
    *le = lo;
}

double rf_eval_auc(const float *scores, int32_t n, const int32_t *rel, int n_rel, int n_rel_total,
                   float *scratch) {
    if (n_rel_total <= 0)
        return 0.0;
    int m = 0;
    for (int i = 0; i < n_rel; i++)
        if (rel[i] >= 0 && rel[i] < n && scores[rel[i]] > -INFINITY)
            scratch[m++] = scores[rel[i]];
    if (m > 1)
        qsort(scratch, (size_t)m, sizeof *scratch, cmp_float);
    /* S = sum over rankable j of (#rel above s_j + #rel equal / 2), in
     * half units to stay in integers. */
    int64_t n_rank = 0, s2 = 0;
    if (m == 0) {
        for (int32_t j = 0; j < n; j++)
            n_rank += scores[j] > -INFINITY;
    } else {
        const float rmin = scratch[0], rmax = scratch[m - 1];
        for (int32_t j = 0; j < n; j++) {
            float s = scores[j];
            if (!(s > -INFINITY))
                continue; /* -inf and NaN: not a candidate */
            n_rank++;
            if (s < rmin) {
                s2 += 2 * m;
            } else if (s <= rmax) {
                int lt, le;
                count_below(scratch, m, s, &lt, &le);
                s2 += 2 * m - lt - le;
            }
        }
    }
    int64_t n_neg = n_rank - m;
    if (n_neg <= 0)
        return 0.5;
    double s_neg = 0.5 * (double)s2 - 0.5 * (double)m * (double)m;
    return s_neg / ((double)n_rel_total * (double)n_neg);
}

double rf_eval_novelty(const int32_t *ranked, int n, int k, const float *pop, int32_t n_pop,
                       double n_users) {
    int len = n < k ? n : k;
    if (len <= 0 || n_users <= 0)
        return 0.0;
    double s = 0.0;
    for (int j = 0; j < len; j++) {
        int32_t it = ranked[j];
        double p = it >= 0 && it < n_pop ? pop[it] : 0.0;
        if (p < 1.0)
            p = 1.0;
        s += -log2(p / n_users);
    }
    return s / len;
}

double rf_eval_arp(const int32_t *ranked, int n, int k, const float *pop, int32_t n_pop) {
    int len = n < k ? n : k;
    if (len <= 0)
        return 0.0;
    double s = 0.0;
    for (int j = 0; j < len; j++) {
        int32_t it = ranked[j];
        s += it >= 0 && it < n_pop ? pop[it] : 0.0;
    }
    return s / len;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

double rf_eval_ild_category(const int32_t *ranked, int n, int k, const int32_t *cat, int32_t n_cat,
                            int32_t *scratch) {
    int len = n < k ? n : k;
    if (len < 2)
        return 0.0;
    for (int j = 0; j < len; j++) {
        int32_t it = ranked[j];
        scratch[j] = it >= 0 && it < n_cat ? cat[it] : -1;
    }
    qsort(scratch, (size_t)len, sizeof *scratch, cmp_i32);
    double same = 0.0;
    int run = 1;
    for (int j = 1; j <= len; j++) {
        if (j < len && scratch[j] == scratch[j - 1]) {
            run++;
            continue;
        }
        same += 0.5 * (double)run * (double)(run - 1);
        run = 1;
    }
    double pairs = 0.5 * (double)len * (double)(len - 1);
    return 1.0 - same / pairs;
}

double rf_eval_ild_vectors(const int32_t *ranked, int n, int k, const float *unit, int dim,
                           double *scratch) {
    int len = n < k ? n : k;
    if (len < 2 || dim <= 0)
        return 0.0;
    for (int d = 0; d < dim; d++)
        scratch[d] = 0.0;
    double sq = 0.0;
    for (int j = 0; j < len; j++) {
        const float *v = unit + (size_t)ranked[j] * (size_t)dim;
        for (int d = 0; d < dim; d++) {
            scratch[d] += v[d];
            sq += (double)v[d] * v[d];
        }
    }
    double tot = 0.0;
    for (int d = 0; d < dim; d++)
        tot += scratch[d] * scratch[d];
    double pairs = 0.5 * (double)len * (double)(len - 1);
    double mean_cos = 0.5 * (tot - sq) / pairs;
    return 1.0 - mean_cos;
}

double rf_eval_revenue(const int32_t *ranked, int n, int k, const int32_t *rel, int n_rel,
                       const double *price, int32_t n_price) {
    int len = n < k ? n : k;
    double s = 0.0;
    for (int j = 0; j < len; j++) {
        int32_t it = ranked[j];
        if (it < 0 || it >= n_price || isnan(price[it]) || !contains(rel, n_rel, it))
            continue;
        s += price[it];
    }
    return s;
}

double rf_eval_gini(const int32_t *counts, int32_t n, int32_t *scratch) {
    if (n < 2)
        return 0.0;
    memcpy(scratch, counts, (size_t)n * sizeof *scratch);
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_i32);
    double tot = 0.0, w = 0.0;
    for (int32_t i = 0; i < n; i++) {
        tot += scratch[i];
        w += (2.0 * (i + 1) - n - 1) * scratch[i];
    }
    if (tot <= 0)
        return 0.0;
    return w / ((double)n * tot);
}
