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
 * AUC needs, for every relevant item, how many candidates score below
 * it (ties half). With few relevant items (the usual case) that is
 * ceil(m / 8) vectorised passes over the score vector, each counting
 * below/at-most for 8 relevant scores at once (branch-free compares
 * that the compiler turns into SIMD); with many, a bucket table over the
 * relevant scores' range answers each item in O(1) on average. A binary
 * search per item was 5x slower on unpredictable data. The relevant items' own
 * pairs are removed in closed form: summed over all ordered pairs of m
 * relevant scores, [a > b] + [a == b]/2 is exactly m^2 / 2.
 * The top-k selection of rf_evaluate (rf_eval_topk) gives what
 * rf_topk_select gives, from a vectorised pass taking the maximum of each
 * chunk of 64 scores: the k-th largest chunk maximum T is a lower bound
 * of the k-th largest score (k distinct items reach it), so only chunks
 * whose maximum reaches T - about k of them - are scanned into the heap.
 * The best k by (score desc, id asc) do not depend on the order items are
 * offered, so the result is identical.
 * Intra-list diversity by vectors uses sum_{i<j} cos(i, j) =
 * (|sum_i v_i|^2 - sum_i |v_i|^2) / 2 on unit vectors: O(L d), not
 * O(L^2 d). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eval/eval_int.h"
#include "recfuse/eval.h"
#include "recfuse/topk.h"

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

/* Function multi-versioning: the hot counting loops get AVX-512 / AVX2
 * clones picked at load time (ifunc) with the x86-64-v2 build as the
 * portable fallback; the arithmetic is integer counting, so every clone
 * gives the same result. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define RF_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RF_SIMD_CLONES
#endif

/* Sum over r[0..nb) (nb <= 8) of #{j : s_j < r} + #{j : s_j <= r}: one
 * vectorised pass over the scores for up to 8 relevant scores. */
RF_SIMD_CLONES
static int64_t count_pass8(const float *s, int32_t n, const float *r, int nb) {
    float rr[8];
    for (int q = 0; q < 8; q++)
        rr[q] = q < nb ? r[q] : -INFINITY; /* pads count nothing: x < -inf never holds */
    const float r0 = rr[0], r1 = rr[1], r2 = rr[2], r3 = rr[3], r4 = rr[4], r5 = rr[5],
                r6 = rr[6], r7 = rr[7];
    int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
#pragma omp simd reduction(+ : c0, c1, c2, c3, c4, c5, c6, c7)
    for (int32_t j = 0; j < n; j++) {
        const float x = s[j];
        c0 += (x < r0) + (x <= r0);
        c1 += (x < r1) + (x <= r1);
        c2 += (x < r2) + (x <= r2);
        c3 += (x < r3) + (x <= r3);
        c4 += (x < r4) + (x <= r4);
        c5 += (x < r5) + (x <= r5);
        c6 += (x < r6) + (x <= r6);
        c7 += (x < r7) + (x <= r7);
    }
    /* a pad (-inf) still counts the -inf scores as <=; remove them */
    int64_t pad = 0;
    if (nb < 8) {
        int32_t ninf = 0;
#pragma omp simd reduction(+ : ninf)
        for (int32_t j = 0; j < n; j++)
            ninf += s[j] == -INFINITY;
        pad = (int64_t)(8 - nb) * ninf;
    }
    return (int64_t)c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 - pad;
}

/* Scores above -inf, and equal to -inf. */
RF_SIMD_CLONES
static void count_candidates(const float *s, int32_t n, int32_t *n_rank, int32_t *n_ninf) {
    int32_t a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int32_t j = 0; j < n; j++) {
        a += s[j] > -INFINITY;
        b += s[j] == -INFINITY;
    }
    *n_rank = a;
    *n_ninf = b;
}

double rf_eval_auc(const float *scores, int32_t n, const int32_t *rel, int n_rel, int n_rel_total,
                   float *scratch, int32_t *iscratch) {
    if (n_rel_total <= 0)
        return 0.0;
    int m = 0;
    for (int i = 0; i < n_rel; i++)
        if (rel[i] >= 0 && rel[i] < n && scores[rel[i]] > -INFINITY)
            scratch[m++] = scores[rel[i]];
    /* Candidates: scores above -inf (NaN is no candidate). */
    int32_t n_rank, n_ninf;
    count_candidates(scores, n, &n_rank, &n_ninf);
    /* S2 = 2 * sum over relevant r of #{candidates below r} + #{equal}. */
    int64_t s2 = 0;
    if (m > 0 && m <= 64) {
        /* (#{s < r} + #{s <= r}) over all items, minus 2 per -inf item
         * (below every finite r): vectorised passes of 8 relevant. */
        for (int q = 0; q < m; q += 8)
            s2 += count_pass8(scores, n, scratch + q, m - q < 8 ? m - q : 8);
        s2 -= 2 * (int64_t)m * n_ninf;
    } else if (m > 64) {
        /* Many relevant items: per item, 2m - (#{r < x} + #{r <= x}) from
         * a bucket table over [rmin, rmax] with 4m buckets. The bucket of
         * a value is monotone in it, so relevant scores in lower buckets
         * are below x and those in higher ones above: only x's own bucket
         * (about 1/4 of a score on average) is compared one by one. */
        qsort(scratch, (size_t)m, sizeof *scratch, cmp_float);
        const float rmin = scratch[0], rmax = scratch[m - 1];
        const int nb = 4 * m;
        const double scale = rmax > rmin ? nb / ((double)rmax - (double)rmin) : 0.0;
        int32_t *first = iscratch; /* first[b]: relevant scores in buckets < b */
        for (int b = 0; b <= nb; b++)
            first[b] = 0;
        for (int q = 0; q < m; q++) {
            int b = (int)(((double)scratch[q] - rmin) * scale);
            first[(b < nb - 1 ? b : nb - 1) + 1]++;
        }
        for (int b = 0; b < nb; b++)
            first[b + 1] += first[b];
        for (int32_t j = 0; j < n; j++) {
            const float x = scores[j];
            if (!(x > -INFINITY) || x > rmax)
                continue; /* not a candidate, or above every relevant score */
            if (x < rmin) {
                s2 += 2 * (int64_t)m;
                continue;
            }
            int b = (int)(((double)x - rmin) * scale);
            b = b < nb - 1 ? b : nb - 1;
            int c = 2 * first[b];
            for (int q = first[b]; q < first[b + 1]; q++)
                c += (scratch[q] < x) + (scratch[q] <= x);
            s2 += 2 * (int64_t)m - c;
        }
    }
    int64_t n_neg = (int64_t)n_rank - m;
    if (n_neg <= 0)
        return 0.5;
    double s_neg = 0.5 * (double)s2 - 0.5 * (double)m * (double)m;
    return s_neg / ((double)n_rel_total * (double)n_neg);
}

/* Maximum of each chunk of 64 scores into cmax (NaN never wins). */
RF_SIMD_CLONES
static void chunk_max(const float *scores, int32_t n, float *cmax) {
    for (int32_t j = 0, c = 0; j < n; j += 64, c++) {
        const int32_t e = j + 64 < n ? j + 64 : n;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int32_t q = j; q < e; q++)
            mx = scores[q] > mx ? scores[q] : mx;
        cmax[c] = mx;
    }
}

int rf_eval_topk(const float *scores, int32_t n, int k, rf_scored *out, float *cmax) {
    rf_topk t;
    if (k <= 0) {
        rf_topk_init(&t, out, 0);
        return 0;
    }
    const int32_t nch = (n + 63) / 64;
    chunk_max(scores, n, cmax);
    /* T = the k-th largest chunk maximum: k items score >= T, so no item
     * below T is among the best k */
    float thr = -INFINITY;
    if (nch > k) {
        rf_topk_init(&t, out, k);
        for (int32_t c = 0; c < nch; c++)
            if (cmax[c] > -INFINITY && (t.n < t.k || cmax[c] > t.heap[0].score))
                rf_topk_push(&t, c, cmax[c]);
        if (t.n == t.k)
            thr = t.heap[0].score;
    }
    rf_topk_init(&t, out, k);
    for (int32_t c = 0; c < nch; c++) {
        if (!(cmax[c] >= thr) || cmax[c] == -INFINITY)
            continue;
        const int32_t e = (c + 1) * 64 < n ? (c + 1) * 64 : n;
        for (int32_t q = c * 64; q < e; q++) {
            const float x = scores[q];
            if (x == -INFINITY || (t.n == t.k && !(x > t.heap[0].score)))
                continue;
            rf_topk_push(&t, q, x);
        }
    }
    return rf_topk_finish(&t);
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
