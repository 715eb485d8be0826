/* knn_sim.c - sparse, parallel top-N row similarities (see knn_sim.h for
 * the definitions and the DESIGN). The weights of an entry are computed by
 * one inline function per side, from the same doubles in the same order,
 * whether for a fitted row or a query row, so the two agree bit for bit. */
#include "knn_sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/sparse.h"

const char *rf_sim_kind_name(int kind) {
    static const char *const names[] = {"cosine", "jaccard", "asym", "bm25", "tfidf", "rp3b"};
    return kind >= 0 && kind <= RF_SIM_RP3B ? names[kind] : "?";
}

const char *rf_sim_opts_check(const rf_sim_opts *o) {
    if (o->kind < RF_SIM_COSINE || o->kind > RF_SIM_RP3B) return "unknown similarity";
    if (o->k < 1) return "k must be at least 1";
    if (!(o->shrink >= 0) || !isfinite(o->shrink)) return "shrink must be >= 0";
    if (!(o->alpha >= 0 && o->alpha <= 1)) return "alpha must be in [0, 1]";
    if (!(o->k1 > 0) || !isfinite(o->k1)) return "k1 must be > 0";
    if (!(o->b >= 0 && o->b <= 1)) return "b must be in [0, 1]";
    if (!(o->p3_alpha > 0) || !isfinite(o->p3_alpha)) return "p3_alpha must be > 0";
    if (!(o->p3_beta >= 0) || !isfinite(o->p3_beta)) return "p3_beta must be >= 0";
    if (!(o->q > 0) || !isfinite(o->q)) return "q must be > 0";
    if (o->norm < RF_SIM_NORM_NONE || o->norm > RF_SIM_NORM_MAX) return "unknown norm";
    return NULL;
}

/* ---- weights ----------------------------------------------------------- */

/* bm25 length normalisation of a row with sum `len`. */
static inline double bm25_lnorm(const rf_sim *s, double len) {
    return s->avglen > 0 ? (1.0 - s->o.b) + s->o.b * len / s->avglen : 1.0;
}

/* a(i, c): weight of a row entry with value x, in a row whose values sum
 * to `len` (lnorm precomputed for bm25), column c. The weighted kinds give
 * entries with x <= 0 (negative event-type weights) weight 0. */
static inline float a_weight(const rf_sim *s, float x, double len, double lnorm, int32_t c) {
    switch (s->o.kind) {
    case RF_SIM_BM25:
    {
        double den = s->o.k1 * lnorm + (double)x;
        if (!(x > 0) || !(den > 0)) return 0.0f;
        return (float)((double)x * (s->o.k1 + 1.0) / den * s->colw[c]);
    }
    case RF_SIM_TFIDF:
        return x > 0 ? (float)(sqrt((double)x) * s->colw[c]) : 0.0f;
    case RF_SIM_RP3B:
        return len > 0 && x > 0 ? (float)pow((double)x / len, s->o.p3_alpha) : 0.0f;
    default:
        return x;
    }
}

/* The row factor l of a (query or fitted) row from its weighted values,
 * summed in column order. */
static double row_l(const rf_sim *s, const float *a, int64_t n) {
    double sq = 0;
    for (int64_t t = 0; t < n; t++) sq += (double)a[t] * a[t];
    switch (s->o.kind) {
    case RF_SIM_COSINE:
    case RF_SIM_TFIDF:
        return sqrt(sq);
    case RF_SIM_JACCARD:
        return sq;
    case RF_SIM_ASYM:
        return pow(sq, s->o.alpha);
    default:
        return 1.0;
    }
}

void rf_sim_free(rf_sim *s) {
    if (!s) return;
    rf_free(s->a_own);
    rf_free(s->bv_own);
    rf_free(s->brow);
    rf_free(s->l);
    rf_free(s->r);
    rf_free(s->colw);
    memset(s, 0, sizeof *s);
}

int rf_sim_init(rf_sim *s, const rf_csr *x, const rf_csr *xt, const rf_sim_opts *o, rf_err *err) {
    memset(s, 0, sizeof *s);
    const char *msg = rf_sim_opts_check(o);
    if (msg) return rf_err_set(err, RF_EINVAL, "similarity: %s", msg);
    if (!x || !xt || x->nrows != xt->ncols || x->ncols != xt->nrows || x->nnz != xt->nnz)
        return rf_err_set(err, RF_EINVAL, "similarity: matrix and transpose disagree");
    s->o = *o;
    s->x = x;
    s->xt = xt;
    const int32_t nr = x->nrows, nc = x->ncols;
    const int kind = o->kind;
    double *len = NULL;
    s->l = rf_malloc_array((size_t)nr + 1, sizeof *s->l);
    s->r = rf_malloc_array((size_t)nr + 1, sizeof *s->r);
    len = rf_malloc_array((size_t)nr + 1, sizeof *len);
    if (!s->l || !s->r || !len) goto oom;

    /* Row sums (bm25 lengths, rp3b transition normalisers). */
    double tot = 0;
    for (int32_t i = 0; i < nr; i++) {
        double sum = 0;
        for (int64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) sum += x->data[p];
        len[i] = sum;
        tot += sum;
    }
    s->avglen = nr > 0 ? tot / nr : 0;

    /* Column weights. */
    if (kind == RF_SIM_BM25 || kind == RF_SIM_TFIDF || kind == RF_SIM_RP3B) {
        s->colw = rf_malloc_array((size_t)nc + 1, sizeof *s->colw);
        if (!s->colw) goto oom;
        for (int32_t c = 0; c < nc; c++) {
            if (kind == RF_SIM_RP3B) {
                double sum = 0;
                for (int64_t q = xt->indptr[c]; q < xt->indptr[c + 1]; q++) sum += xt->data[q];
                s->colw[c] = sum; /* column length */
            } else {
                s->colw[c] = log((double)nr) - log1p((double)rf_csr_row_len(xt, c));
            }
        }
    }

    /* a: the row side. */
    if (kind == RF_SIM_BM25 || kind == RF_SIM_TFIDF || kind == RF_SIM_RP3B) {
        s->a_own = rf_malloc_array((size_t)(x->nnz ? x->nnz : 1), sizeof *s->a_own);
        if (!s->a_own) goto oom;
        for (int32_t i = 0; i < nr; i++) {
            double ln = bm25_lnorm(s, len[i]);
            for (int64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++)
                s->a_own[p] = a_weight(s, x->data[p], len[i], ln, x->indices[p]);
        }
        s->a = s->a_own;
    } else {
        s->a = x->data;
    }

    /* b: the neighbour side, entry (c, j) of xt. For symmetric kinds it is
     * a(j, c) computed by the same function; rp3b normalises by the
     * column instead. */
    if (kind == RF_SIM_BM25 || kind == RF_SIM_TFIDF) {
        s->bv_own = rf_malloc_array((size_t)(xt->nnz ? xt->nnz : 1), sizeof *s->bv_own);
        if (!s->bv_own) goto oom;
        for (int32_t c = 0; c < nc; c++)
            for (int64_t q = xt->indptr[c]; q < xt->indptr[c + 1]; q++) {
                int32_t j = xt->indices[q];
                s->bv_own[q] = a_weight(s, xt->data[q], len[j], bm25_lnorm(s, len[j]), c);
            }
        s->bv = s->bv_own;
    } else if (kind == RF_SIM_RP3B) {
        s->bv_own = rf_malloc_array((size_t)(xt->nnz ? xt->nnz : 1), sizeof *s->bv_own);
        if (!s->bv_own) goto oom;
        for (int32_t c = 0; c < nc; c++) {
            double lc = s->colw[c];
            for (int64_t q = xt->indptr[c]; q < xt->indptr[c + 1]; q++) {
                float v = xt->data[q];
                s->bv_own[q] = lc > 0 && v > 0 ? (float)pow((double)v / lc, o->p3_alpha) : 0.0f;
            }
        }
        s->bv = s->bv_own;
    } else {
        s->bv = xt->data;
    }
    /* Constant rows of b (every kind on binary data): one value per row. */
    int constant = 1;
    for (int32_t c = 0; c < nc && constant; c++)
        for (int64_t q = xt->indptr[c] + 1; q < xt->indptr[c + 1]; q++)
            if (s->bv[q] != s->bv[xt->indptr[c]]) {
                constant = 0;
                break;
            }
    if (constant) {
        s->brow = rf_malloc_array((size_t)nc + 1, sizeof *s->brow);
        if (!s->brow) goto oom;
        for (int32_t c = 0; c < nc; c++)
            s->brow[c] = xt->indptr[c + 1] > xt->indptr[c] ? s->bv[xt->indptr[c]] : 0.0f;
        rf_free(s->bv_own);
        s->bv_own = NULL;
        s->bv = NULL;
    }

    /* Row factors. */
    for (int32_t i = 0; i < nr; i++) {
        int64_t lo = x->indptr[i], n = x->indptr[i + 1] - lo;
        s->l[i] = row_l(s, s->a + lo, n);
        switch (kind) {
        case RF_SIM_ASYM: {
            double sq = 0;
            for (int64_t t = 0; t < n; t++) sq += (double)s->a[lo + t] * s->a[lo + t];
            s->r[i] = pow(sq, 1.0 - o->alpha);
            break;
        }
        case RF_SIM_RP3B:
            s->r[i] = pow((double)n, o->p3_beta);
            break;
        default:
            s->r[i] = s->l[i];
        }
    }
    rf_free(len);
    return 0;
oom:
    rf_free(len);
    rf_sim_free(s);
    return rf_err_set(err, RF_ENOMEM, "similarity: out of memory");
}

/* ---- one row ------------------------------------------------------------ */

static int cmp_id(const void *pa, const void *pb) {
    const rf_scored *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

/* The neighbour side as sim_row reads it: xt's row pointers, its column
 * ids (row ids of x) in some labelling, the per-entry or per-row b, the
 * r factors in that labelling, and the original id of each label (NULL:
 * the identity). */
typedef struct nview {
    const int64_t *bp;
    const int32_t *bi;
    const uint16_t *bi16; /* the same ids as 16 bits (rows < 65536), or NULL */
    const float *bv, *brow;
    const double *r;
    const int32_t *orig;
} nview;

/* Neighbours of the row given by cols[0..n) with weights a[0..n) and row
 * factor lq, into out (s->o.k entries, at most n_rows - 1 used), ascending
 * original ids, post-processed; returns the count. excl is a label (-1:
 * none). acc must be zero (it is left zero); stamp entries must differ
 * from `token`; touched is scratch. All three have n_rows entries.
 *
 * Two ways to find the co-occurring rows: when the pair count is a
 * sizeable fraction of n_rows, a branch-free accumulation followed by a
 * sequential scan of acc is fastest (popular items touch most of the
 * catalogue); otherwise a touched list with a stamp array keeps the cost
 * proportional to the pairs. Both add the same terms in the same order and
 * select the same entries; the labelling changes neither (the heap orders
 * by score, then original id, a total order). */
static int sim_row(const rf_sim *s, const nview *v, const int32_t *cols, const float *a,
                   int64_t n, double lq, int32_t excl, int32_t token, float *acc, int32_t *stamp,
                   int32_t *touched, rf_scored *out) {
    const int32_t nr = s->x->nrows;
    const int64_t *bp = v->bp;
    const int32_t *bi = v->bi, *orig = v->orig;
    const uint16_t *bi16 = v->bi16;
    const float *bv = v->bv, *brow = v->brow;
    const double *r = v->r, shrink = s->o.shrink;
    const int jac = s->o.kind == RF_SIM_JACCARD;
    int kk = s->o.k < nr - 1 ? s->o.k : nr - 1;
    if (excl < 0 && s->o.k >= nr) kk = nr;
    if (kk <= 0) return 0;
    int64_t pairs = 0;
    for (int64_t t = 0; t < n; t++) pairs += bp[cols[t] + 1] - bp[cols[t]];
    rf_topk tk;
    rf_topk_init(&tk, out, kk);
    if (pairs * 4 >= nr) {
        /* branch-free accumulation; ID(q) is the label of entry q */
#define RF_ACCUM(ID)                                                               \
    for (int64_t t = 0; t < n; t++) {                                              \
        int32_t c = cols[t];                                                       \
        if (brow) { /* constant b: add one value, load no data */                  \
            float w = a[t] * brow[c];                                              \
            for (int64_t q = bp[c]; q < bp[c + 1]; q++) acc[ID(q)] += w;           \
        } else {                                                                   \
            float w = a[t];                                                        \
            for (int64_t q = bp[c]; q < bp[c + 1]; q++) acc[ID(q)] += w * bv[q];   \
        }                                                                          \
    }
#define RF_ID16(q) bi16[q]
#define RF_ID32(q) bi[q]
        if (bi16) { /* 16-bit labels: half the bytes to stream */
            RF_ACCUM(RF_ID16)
        } else {
            RF_ACCUM(RF_ID32)
        }
#undef RF_ACCUM
        if (excl >= 0) acc[excl] = 0;
        /* Once the heap is full, skip the division for rows that cannot
         * beat its worst entry: x <= thr * den with thr a hair below that
         * score implies sim < the worst score even after rounding. */
        double thr = 0;
        for (int32_t j = 0; j < nr; j++) {
            float x = acc[j];
            if (x == 0.0f) continue;
            acc[j] = 0;
            double den = jac ? lq + r[j] - (double)x + shrink : lq * r[j] + shrink;
            if (!(den > 0) || (double)x <= thr * den) continue;
            float sim = (float)((double)x / den);
            if (sim > 0) {
                rf_topk_push(&tk, orig ? orig[j] : j, sim);
                if (tk.n == tk.k) thr = (double)tk.heap[0].score * (1 - 1e-6);
            }
        }
    } else {
        int32_t nt = 0;
        for (int64_t t = 0; t < n; t++) {
            int32_t c = cols[t];
            float w = brow ? a[t] * brow[c] : a[t];
            for (int64_t q = bp[c]; q < bp[c + 1]; q++) {
                int32_t j = bi16 ? RF_ID16(q) : RF_ID32(q);
                if (stamp[j] != token) {
                    stamp[j] = token;
                    touched[nt++] = j;
                }
                if (brow)
                    acc[j] += w;
                else
                    acc[j] += w * bv[q];
            }
        }
        for (int32_t x = 0; x < nt; x++) {
            int32_t j = touched[x];
            float y = acc[j];
            acc[j] = 0;
            if (j == excl || y == 0.0f) continue;
            double den = jac ? lq + r[j] - (double)y + shrink : lq * r[j] + shrink;
            if (!(den > 0)) continue;
            float sim = (float)((double)y / den);
            if (sim > 0) rf_topk_push(&tk, orig ? orig[j] : j, sim);
        }
    }
#undef RF_ID16
#undef RF_ID32
    int cnt = tk.n;
    qsort(out, (size_t)cnt, sizeof *out, cmp_id);
    /* Post-processing, in id order. */
    if (s->o.q != 1.0)
        for (int x = 0; x < cnt; x++) out[x].score = (float)pow((double)out[x].score, s->o.q);
    if (s->o.norm != RF_SIM_NORM_NONE && cnt > 0) {
        double z = 0;
        for (int x = 0; x < cnt; x++)
            if (s->o.norm == RF_SIM_NORM_L1)
                z += out[x].score;
            else if (out[x].score > z)
                z = out[x].score;
        if (z > 0)
            for (int x = 0; x < cnt; x++) out[x].score = (float)((double)out[x].score / z);
    }
    /* Keep only positive sims (pow may underflow to 0). */
    int m = 0;
    for (int x = 0; x < cnt; x++)
        if (out[x].score > 0) out[m++] = out[x];
    return m;
}

static void view_identity(const rf_sim *s, nview *v) {
    v->bp = s->xt->indptr;
    v->bi = s->xt->indices;
    v->bi16 = NULL;
    v->bv = s->bv;
    v->brow = s->brow;
    v->r = s->r;
    v->orig = NULL;
}

/* Scratch of a relabelled view, owned by rf_sim_all. */
typedef struct relabel {
    int32_t *ind;   /* labels of xt's entries, 32 bits ... */
    uint16_t *ind16; /* ... or 16 bits when there are at most 65536 rows */
    float *bv;
    double *r;
    int32_t *orig, *label; /* label -> original id, original id -> label */
} relabel;

static void relabel_free(relabel *L) {
    rf_free(L->ind);
    rf_free(L->ind16);
    rf_free(L->bv);
    rf_free(L->r);
    rf_free(L->orig);
    rf_free(L->label);
    memset(L, 0, sizeof *L);
}

/* The neighbour side relabelled by descending row length of x (ties by
 * id), so the accumulator entries touched most - the popular rows - sit
 * together at the front and stay in the nearest cache; with at most 65536
 * rows the labels are 16 bits, halving the bytes streamed by the inner
 * loop (measured: about 15% and 9% less CPU time on the Protocol C
 * workload). Built by a counting transpose of x, so each row of the
 * relabelled xt is ascending. Possible when b(c, j) = a(j, c) for every
 * entry (every kind but rp3b) or b is constant per row; else returns 1 and
 * leaves v alone. 0 on success, RF_ENOMEM. */
static int view_relabel(const rf_sim *s, nview *v, relabel *L) {
    const rf_csr *x = s->x, *xt = s->xt;
    const int32_t nr = x->nrows, nc = x->ncols;
    memset(L, 0, sizeof *L);
    if (s->bv && s->o.kind == RF_SIM_RP3B) return 1;
    const int narrow = nr <= 65536;
    const size_t nnz = (size_t)(xt->nnz ? xt->nnz : 1);
    int64_t maxlen = 0;
    for (int32_t i = 0; i < nr; i++)
        if (rf_csr_row_len(x, i) > maxlen) maxlen = rf_csr_row_len(x, i);
    int64_t *fill = rf_malloc_array((size_t)nc + 1, sizeof *fill);
    int64_t *cnt = rf_calloc((size_t)maxlen + 2, sizeof *cnt);
    L->orig = rf_malloc_array((size_t)nr + 1, sizeof *L->orig);
    L->label = rf_malloc_array((size_t)nr + 1, sizeof *L->label);
    L->r = rf_malloc_array((size_t)nr + 1, sizeof *L->r);
    if (narrow)
        L->ind16 = rf_malloc_array(nnz, sizeof *L->ind16);
    else
        L->ind = rf_malloc_array(nnz, sizeof *L->ind);
    if (s->bv) L->bv = rf_malloc_array(nnz, sizeof *L->bv);
    if (!fill || !cnt || !L->orig || !L->label || !L->r || !(L->ind || L->ind16) ||
        (s->bv && !L->bv)) {
        rf_free(fill);
        rf_free(cnt);
        relabel_free(L);
        return RF_ENOMEM;
    }
    /* Stable counting sort of the rows by descending length. */
    for (int32_t i = 0; i < nr; i++) cnt[maxlen - rf_csr_row_len(x, i) + 1]++;
    for (int64_t t = 0; t <= maxlen; t++) cnt[t + 1] += cnt[t];
    for (int32_t i = 0; i < nr; i++) {
        int32_t lb = (int32_t)cnt[maxlen - rf_csr_row_len(x, i)]++;
        L->orig[lb] = i;
        L->label[i] = lb;
    }
    rf_free(cnt);
    for (int32_t c = 0; c < nc; c++) fill[c] = xt->indptr[c];
    for (int32_t lb = 0; lb < nr; lb++) {
        int32_t i = L->orig[lb];
        L->r[lb] = s->r[i];
        for (int64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) {
            int64_t pos = fill[x->indices[p]]++;
            if (narrow)
                L->ind16[pos] = (uint16_t)lb;
            else
                L->ind[pos] = lb;
            if (L->bv) L->bv[pos] = s->a[p]; /* b(c, i) = a(i, c) */
        }
    }
    rf_free(fill);
    v->bp = xt->indptr;
    v->bi = L->ind;
    v->bi16 = L->ind16;
    v->bv = L->bv;
    v->brow = s->brow;
    v->r = L->r;
    v->orig = L->orig;
    return 0;
}

/* ---- all rows --------------------------------------------------------- */

int rf_sim_all(const rf_sim *s, const char *label, rf_csr **out, rf_err *err) {
    *out = NULL;
    const rf_csr *x = s->x;
    const int32_t n = x->nrows;
    int kk = s->o.k < n - 1 ? s->o.k : n - 1;
    if (kk < 1) kk = 1;
    const int nth = rf_threads();
    int64_t block = (4 << 20) / kk;
    if (block > 4096) block = 4096;
    if (block < 1) block = 1;

    int rc = RF_ENOMEM;
    size_t sn = (size_t)(n ? n : 1);
    float *acc = rf_calloc((size_t)nth * sn, sizeof *acc);
    int32_t *stamp = rf_malloc_array((size_t)nth * sn, sizeof *stamp);
    int32_t *touched = rf_malloc_array((size_t)nth * sn, sizeof *touched);
    rf_scored *blk = rf_malloc_array((size_t)block * (size_t)kk, sizeof *blk);
    int *blk_n = rf_malloc_array((size_t)block, sizeof *blk_n);
    rf_csr *nbr = rf_calloc(1, sizeof *nbr);
    int64_t cap = 0;
    rf_progress *prog = NULL;
    nview v;
    relabel L = {0};
    if (!acc || !stamp || !touched || !blk || !blk_n || !nbr) goto fail;
    int vr = view_relabel(s, &v, &L);
    if (vr < 0) goto fail;
    if (vr > 0) view_identity(s, &v);
    nbr->nrows = nbr->ncols = n;
    nbr->indptr = rf_calloc((size_t)n + 1, sizeof *nbr->indptr);
    if (!nbr->indptr) goto fail;
    for (size_t t = 0; t < (size_t)nth * sn; t++) stamp[t] = -1;

    prog = rf_progress_start(label, n);
    for (int32_t b0 = 0; b0 < n; b0 += (int32_t)block) {
        int32_t b1 = b0 + (int32_t)block < n ? b0 + (int32_t)block : n;
#pragma omp parallel for schedule(dynamic, 4) num_threads(nth)
        for (int32_t i = b0; i < b1; i++) {
            size_t t = (size_t)rf_thread_id() * sn;
            int64_t lo = x->indptr[i];
            blk_n[i - b0] = sim_row(s, &v, x->indices + lo, s->a + lo, x->indptr[i + 1] - lo,
                                    s->l[i], L.label ? L.label[i] : i, i, acc + t, stamp + t,
                                    touched + t, blk + (size_t)(i - b0) * (size_t)kk);
        }
        int64_t add = 0;
        for (int32_t i = b0; i < b1; i++) add += blk_n[i - b0];
        if (nbr->nnz + add > cap) {
            int64_t nc = cap ? cap : 1024;
            while (nc < nbr->nnz + add) nc *= 2;
            int32_t *ni = rf_realloc_array(nbr->indices, (size_t)nc, sizeof *ni);
            if (ni) nbr->indices = ni;
            float *nd = rf_realloc_array(nbr->data, (size_t)nc, sizeof *nd);
            if (nd) nbr->data = nd;
            if (!ni || !nd) goto fail;
            cap = nc;
        }
        for (int32_t i = b0; i < b1; i++) {
            const rf_scored *row = blk + (size_t)(i - b0) * (size_t)kk;
            for (int e = 0; e < blk_n[i - b0]; e++) {
                nbr->indices[nbr->nnz] = row[e].id;
                nbr->data[nbr->nnz] = row[e].score;
                nbr->nnz++;
            }
            nbr->indptr[i + 1] = nbr->nnz;
        }
        rf_progress_set(prog, b1);
    }
    rf_progress_finish(prog);
    prog = NULL;
    /* Shrink to size; keep arrays non-NULL for save/clone. */
    {
        size_t m = (size_t)(nbr->nnz ? nbr->nnz : 1);
        int32_t *ni = rf_realloc_array(nbr->indices, m, sizeof *ni);
        if (ni) nbr->indices = ni;
        float *nd = rf_realloc_array(nbr->data, m, sizeof *nd);
        if (nd) nbr->data = nd;
        if (!nbr->indices || !nbr->data) goto fail;
    }
    *out = nbr;
    nbr = NULL;
    rc = 0;
    goto done;
fail:
    rf_progress_finish(prog);
    rf_err_set(err, RF_ENOMEM, "similarity: out of memory");
done:
    rf_csr_free(nbr);
    relabel_free(&L);
    rf_free(acc);
    rf_free(stamp);
    rf_free(touched);
    rf_free(blk);
    rf_free(blk_n);
    return rc;
}

/* ---- query rows ------------------------------------------------------- */

int rf_sim_query(const rf_sim *s, const int32_t *cols, const float *vals, int32_t n,
                 int32_t exclude, rf_scored *out) {
    const int32_t nr = s->x->nrows, nc = s->x->ncols;
    size_t sn = (size_t)(nr ? nr : 1);
    float *acc = rf_calloc(sn, sizeof *acc);
    int32_t *stamp = rf_malloc_array(sn, sizeof *stamp);
    int32_t *touched = rf_malloc_array(sn, sizeof *touched);
    float *a = rf_malloc_array((size_t)(n > 0 ? n : 1), sizeof *a);
    int32_t *cc = rf_malloc_array((size_t)(n > 0 ? n : 1), sizeof *cc);
    int cnt = RF_ENOMEM;
    if (!acc || !stamp || !touched || !a || !cc) goto done;
    for (size_t t = 0; t < sn; t++) stamp[t] = -1;
    /* Columns the model knows; the row sum as the fitted rows compute it. */
    int32_t m = 0;
    double len = 0;
    for (int32_t t = 0; t < n; t++) {
        if (cols[t] < 0 || cols[t] >= nc) continue;
        cc[m] = cols[t];
        a[m] = vals ? vals[t] : 1.0f;
        len += a[m];
        m++;
    }
    double ln = bm25_lnorm(s, len);
    for (int32_t t = 0; t < m; t++) a[t] = a_weight(s, a[t], len, ln, cc[t]);
    double lq = row_l(s, a, m);
    nview v;
    view_identity(s, &v);
    cnt = sim_row(s, &v, cc, a, m, lq, exclude, 0, acc, stamp, touched, out);
done:
    rf_free(acc);
    rf_free(stamp);
    rf_free(touched);
    rf_free(a);
    rf_free(cc);
    return cnt;
}

void rf_knn_fallback_dense(const float *pop, float pop_inv, float *out, int32_t n) {
    for (int32_t j = 0; j < n; j++)
        if (out[j] == 0.0f) out[j] = pop[j] * pop_inv - 1.0f;
}

void rf_knn_fallback_sparse(const float *pop, float pop_inv, rf_sparse *acc) {
    for (int32_t t = 0; t < acc->n; t++) {
        int32_t j = acc->touched[t];
        if (acc->val[j] == 0.0f) acc->val[j] = pop[j] * pop_inv - 1.0f;
    }
}
