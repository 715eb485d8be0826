/* fpgrowth.c - baskets, frequent itemsets by FP-Growth and association
 * rules (rules.h). The "rules" model (rules.c) and `recfuse rules` build
 * on these.
 *
 * DESIGN: FP-Growth (Han, Pei & Yin 2000) limited to itemsets of up to
 * three items, which is all a "bought together" recommender uses.
 * - Items below min_count are dropped; the rest are ranked by count
 *   (descending, ties by id), and each basket becomes the ascending
 *   sequence of its items' ranks.
 * - The FP-tree is a prefix tree of those sequences. Instead of hashing
 *   children on insertion, the sequences are sorted lexicographically and
 *   inserted in that order: a sequence shares with the tree exactly its
 *   longest common prefix with the previous sequence, so insertion is a
 *   stack walk with no child lookup. The same routine builds conditional
 *   trees from weighted prefix paths.
 * - Mining is parallel over items x (OpenMP, dynamic schedule): the
 *   prefix paths above x's nodes (node-links) give the counts of {y, x};
 *   for triples the frequent part of those paths is merged into a
 *   conditional tree, and the paths above y's nodes in it count {z, y, x}.
 *   Counts are integers, so the result does not depend on the order or
 *   thread count; itemsets are sorted at the end.
 * Complexity: O(total basket items * log) to build, and per item the
 * nodes of its paths; memory 24 bytes per tree node (at most one per
 * frequent basket item; shared prefixes merge). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rules.h"

/* ---- baskets --------------------------------------------------------------- */

void rf_baskets_free(rf_baskets *b) {
    if (!b) return;
    rf_free(b->indptr);
    rf_free(b->items);
    rf_free(b);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sort and de-duplicate each basket in place, compacting the arrays. */
static void normalise_baskets(rf_baskets *b) {
    int64_t w = 0;
    for (int64_t k = 0; k < b->n; k++) {
        int64_t lo = b->indptr[k], hi = b->indptr[k + 1];
        qsort(b->items + lo, (size_t)(hi - lo), sizeof *b->items, cmp_i32);
        b->indptr[k] = w;
        for (int64_t q = lo; q < hi; q++)
            if (q == lo || b->items[q] != b->items[q - 1]) b->items[w++] = b->items[q];
    }
    b->indptr[b->n] = w;
}

static int baskets_alloc(int64_t n, int64_t nnz, rf_baskets **out) {
    rf_baskets *b = rf_calloc(1, sizeof *b);
    if (!b) return RF_ENOMEM;
    b->indptr = rf_malloc_array((size_t)n + 1, sizeof *b->indptr);
    b->items = rf_malloc_array((size_t)nnz + 1, sizeof *b->items);
    if (!b->indptr || !b->items) {
        rf_baskets_free(b);
        return RF_ENOMEM;
    }
    b->indptr[0] = 0;
    *out = b;
    return 0;
}

int rf_baskets_build(int64_t n, const int64_t *indptr, const int32_t *items, int32_t n_items,
                     rf_baskets **out, rf_err *err) {
    *out = NULL;
    if (n < 0 || !indptr || indptr[0] != 0)
        return rf_err_set(err, RF_EINVAL, "baskets: bad basket offsets");
    for (int64_t k = 0; k < n; k++)
        if (indptr[k + 1] < indptr[k])
            return rf_err_set(err, RF_EINVAL, "baskets: offsets decrease at basket %lld",
                              (long long)k);
    int64_t nnz = indptr[n];
    for (int64_t q = 0; q < nnz; q++)
        if (items[q] < 0 || items[q] >= n_items)
            return rf_err_set(err, RF_ERANGE, "baskets: item %d outside [0, %d)", (int)items[q],
                              (int)n_items);
    rf_baskets *b;
    if (baskets_alloc(n, nnz, &b)) return rf_err_set(err, RF_ENOMEM, "baskets: out of memory");
    b->n = n;
    memcpy(b->indptr, indptr, ((size_t)n + 1) * sizeof *indptr);
    if (nnz) memcpy(b->items, items, (size_t)nnz * sizeof *items);
    normalise_baskets(b);
    *out = b;
    return 0;
}

typedef struct tev {
    int64_t ts;
    int64_t idx; /* position in the source (log order) */
} tev;

static int cmp_tev(const void *a, const void *b) {
    const tev *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Cut per-user runs of (ts, item) - already grouped by user and sorted by
 * time - into baskets. `user_off` has n_users + 1 offsets into r; items
 * come from item_of(idx). */
static int sessions(int32_t n_users, const int64_t *user_off, const tev *r, const int32_t *item,
                    int64_t gap, int max_items, rf_baskets **out) {
    int64_t total = user_off[n_users];
    const int64_t cap = max_items > 0 ? max_items : INT64_MAX;
    /* count baskets */
    int64_t nb = 0;
    for (int32_t u = 0; u < n_users; u++) {
        int64_t start = user_off[u];
        for (int64_t q = user_off[u]; q < user_off[u + 1]; q++)
            if (q == user_off[u] || r[q].ts - r[q - 1].ts > gap || q - start >= cap) {
                nb++;
                start = q;
            }
    }
    rf_baskets *b;
    if (baskets_alloc(nb, total, &b)) return RF_ENOMEM;
    int64_t k = 0;
    for (int32_t u = 0; u < n_users; u++) {
        int64_t start = user_off[u];
        for (int64_t q = user_off[u]; q < user_off[u + 1]; q++) {
            if (q == user_off[u] || r[q].ts - r[q - 1].ts > gap || q - start >= cap) {
                b->indptr[k++] = q;
                start = q;
            }
            b->items[q] = item[r[q].idx];
        }
    }
    b->n = nb;
    b->indptr[nb] = total;
    normalise_baskets(b);
    /* shrink; failure to shrink is harmless */
    int32_t *it = rf_realloc_array(b->items, (size_t)b->indptr[nb] + 1, sizeof *it);
    if (it) b->items = it;
    *out = b;
    return 0;
}

int rf_baskets_from_events(const rf_events *ev, unsigned type_mask, int64_t gap_seconds,
                           int max_items, rf_baskets **out, rf_err *err) {
    *out = NULL;
    if (gap_seconds < 0) return rf_err_set(err, RF_EINVAL, "baskets: negative session gap");
    const int32_t nu = rf_idmap_size(ev->users), ni = rf_idmap_size(ev->items);
    int64_t *off = rf_calloc((size_t)nu + 2, sizeof *off);
    if (!off) return rf_err_set(err, RF_ENOMEM, "baskets: out of memory");
    int64_t kept = 0;
    for (int64_t i = 0; i < ev->n; i++) {
        if (ev->type[i] >= 32 || !(type_mask & (1u << ev->type[i]))) continue;
        if (ev->user[i] < 0 || ev->user[i] >= nu || ev->item[i] < 0 || ev->item[i] >= ni) {
            rf_free(off);
            return rf_err_set(err, RF_ERANGE, "baskets: event %lld has user %d / item %d outside "
                                              "the maps (%d users, %d items)",
                              (long long)i, (int)ev->user[i], (int)ev->item[i], (int)nu, (int)ni);
        }
        off[ev->user[i] + 1]++;
        kept++;
    }
    for (int32_t u = 0; u < nu; u++) off[u + 1] += off[u];
    tev *r = rf_malloc_array((size_t)kept + 1, sizeof *r);
    int64_t *pos = rf_malloc_array((size_t)nu + 1, sizeof *pos);
    if (!r || !pos) {
        rf_free(off);
        rf_free(r);
        rf_free(pos);
        return rf_err_set(err, RF_ENOMEM, "baskets: out of memory for %lld events", (long long)kept);
    }
    memcpy(pos, off, (size_t)nu * sizeof *pos);
    for (int64_t i = 0; i < ev->n; i++) {
        if (ev->type[i] >= 32 || !(type_mask & (1u << ev->type[i]))) continue;
        tev *t = &r[pos[ev->user[i]]++];
        t->ts = ev->ts[i];
        t->idx = i;
    }
    rf_free(pos);
    /* usually already in time order (the store loads by (user, ts)) */
    for (int32_t u = 0; u < nu; u++) {
        int sorted = 1;
        for (int64_t q = off[u] + 1; q < off[u + 1] && sorted; q++)
            if (cmp_tev(&r[q - 1], &r[q]) > 0) sorted = 0;
        if (!sorted) qsort(r + off[u], (size_t)(off[u + 1] - off[u]), sizeof *r, cmp_tev);
    }
    int rc = sessions(nu, off, r, ev->item, gap_seconds, max_items, out);
    rf_free(off);
    rf_free(r);
    if (rc) return rf_err_set(err, RF_ENOMEM, "baskets: out of memory");
    return 0;
}

int rf_baskets_from_dataset(const rf_dataset *d, int64_t gap_seconds, int max_items,
                            rf_baskets **out, rf_err *err) {
    *out = NULL;
    if (gap_seconds < 0) return rf_err_set(err, RF_EINVAL, "baskets: negative session gap");
    const rf_csr *ui = d->ui;
    tev *r = rf_malloc_array((size_t)ui->nnz + 1, sizeof *r);
    if (!r) return rf_err_set(err, RF_ENOMEM, "baskets: out of memory");
    for (int64_t q = 0; q < ui->nnz; q++) {
        r[q].ts = d->ui_ts ? (int64_t)d->ui_ts[q] : 0;
        r[q].idx = q; /* ties by item id: the row is sorted by item */
    }
    for (int32_t u = 0; u < ui->nrows; u++)
        qsort(r + ui->indptr[u], (size_t)(ui->indptr[u + 1] - ui->indptr[u]), sizeof *r, cmp_tev);
    int rc = sessions(ui->nrows, ui->indptr, r, ui->indices, gap_seconds, max_items, out);
    rf_free(r);
    if (rc) return rf_err_set(err, RF_ENOMEM, "baskets: out of memory");
    return 0;
}

/* ---- FP-tree ---------------------------------------------------------------- */

typedef struct fptree {
    int64_t n, cap;    /* nodes */
    int32_t *rank;     /* item rank of the node */
    int32_t *parent;   /* -1 for children of the root */
    int32_t *next;     /* next node of the same rank, -1 at the end */
    int64_t *count;
    int32_t n_ranks;
    int32_t *head;     /* per rank: first node, -1 if none */
    int64_t *total;    /* per rank: sum of its nodes' counts */
} fptree;

/* A weighted rank sequence (ascending ranks). */
typedef struct wseq {
    const int32_t *p;
    int32_t len;
    int64_t w;
} wseq;

static int cmp_wseq(const void *a, const void *b) {
    const wseq *x = a, *y = b;
    int32_t n = x->len < y->len ? x->len : y->len;
    for (int32_t k = 0; k < n; k++)
        if (x->p[k] != y->p[k]) return x->p[k] < y->p[k] ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sort sequences (each non-empty, ranks < n_ranks) as cmp_wseq does:
 * a counting sort on the first rank, then each bucket by comparison
 * (which saves most of the comparisons of one big sort). */
static int sort_wseq(wseq *s, int64_t n, int32_t n_ranks) {
    int64_t *start = rf_calloc((size_t)n_ranks + 1, sizeof *start);
    wseq *tmp = rf_malloc_array((size_t)n + 1, sizeof *tmp);
    if (!start || !tmp) {
        rf_free(start);
        rf_free(tmp);
        return RF_ENOMEM;
    }
    for (int64_t k = 0; k < n; k++) start[s[k].p[0] + 1]++;
    for (int32_t r = 0; r < n_ranks; r++) start[r + 1] += start[r];
    for (int64_t k = 0; k < n; k++) tmp[start[s[k].p[0]]++] = s[k];
    int64_t lo = 0;
    for (int32_t r = 0; r < n_ranks; r++) { /* start[r] is now the end of bucket r */
        int64_t hi = start[r];
        if (hi - lo > 1) qsort(tmp + lo, (size_t)(hi - lo), sizeof *tmp, cmp_wseq);
        lo = hi;
    }
    memcpy(s, tmp, (size_t)n * sizeof *s);
    rf_free(start);
    rf_free(tmp);
    return 0;
}

static void tree_free(fptree *t) {
    rf_free(t->rank);
    rf_free(t->parent);
    rf_free(t->next);
    rf_free(t->count);
    rf_free(t->head);
    rf_free(t->total);
    memset(t, 0, sizeof *t);
}

/* Reset t for n_ranks ranks and room for `cap` nodes (reusing buffers). */
static int tree_reset(fptree *t, int32_t n_ranks, int64_t cap) {
    if (cap > t->cap) {
        int32_t *a = rf_realloc_array(t->rank, (size_t)cap, sizeof *a);
        if (!a) return RF_ENOMEM;
        t->rank = a;
        a = rf_realloc_array(t->parent, (size_t)cap, sizeof *a);
        if (!a) return RF_ENOMEM;
        t->parent = a;
        a = rf_realloc_array(t->next, (size_t)cap, sizeof *a);
        if (!a) return RF_ENOMEM;
        t->next = a;
        int64_t *c = rf_realloc_array(t->count, (size_t)cap, sizeof *c);
        if (!c) return RF_ENOMEM;
        t->count = c;
        t->cap = cap;
    }
    if (n_ranks > t->n_ranks || !t->head) {
        int32_t *h = rf_realloc_array(t->head, (size_t)n_ranks + 1, sizeof *h);
        if (!h) return RF_ENOMEM;
        t->head = h;
        int64_t *s = rf_realloc_array(t->total, (size_t)n_ranks + 1, sizeof *s);
        if (!s) return RF_ENOMEM;
        t->total = s;
    }
    t->n_ranks = n_ranks;
    for (int32_t r = 0; r < n_ranks; r++) {
        t->head[r] = -1;
        t->total[r] = 0;
    }
    t->n = 0;
    return 0;
}

/* Insert sequences (sorted by cmp_wseq) into an empty tree. `path` has
 * room for the longest sequence. */
static void tree_insert_sorted(fptree *t, const wseq *s, int64_t n, int32_t *path) {
    int32_t plen = 0;
    for (int64_t k = 0; k < n; k++) {
        int32_t L = 0;
        if (k > 0) {
            const wseq *pv = &s[k - 1];
            int32_t m = pv->len < s[k].len ? pv->len : s[k].len;
            while (L < m && pv->p[L] == s[k].p[L]) L++;
        }
        if (L > plen) L = plen;
        for (int32_t d = 0; d < L; d++) t->count[path[d]] += s[k].w;
        for (int32_t d = L; d < s[k].len; d++) {
            int64_t nd = t->n++;
            int32_t r = s[k].p[d];
            t->rank[nd] = r;
            t->parent[nd] = d ? path[d - 1] : -1;
            t->count[nd] = s[k].w;
            t->next[nd] = t->head[r];
            t->head[r] = (int32_t)nd;
            path[d] = (int32_t)nd;
        }
        plen = s[k].len;
        for (int32_t d = 0; d < s[k].len; d++) t->total[s[k].p[d]] += s[k].w;
    }
}

/* ---- mining ------------------------------------------------------------------ */

typedef struct setvec {
    int64_t n, cap;
    rf_itemset *s;
} setvec;

static int sv_push(setvec *v, int32_t a, int32_t b, int32_t c, int32_t len, int64_t count) {
    if (v->n == v->cap) {
        int64_t nc = v->cap ? v->cap * 2 : 256;
        rf_itemset *p = rf_realloc_array(v->s, (size_t)nc, sizeof *p);
        if (!p) return RF_ENOMEM;
        v->s = p;
        v->cap = nc;
    }
    rf_itemset *e = &v->s[v->n++];
    e->items[0] = a;
    e->items[1] = b;
    e->items[2] = c;
    e->len = len;
    e->count = count;
    return 0;
}

/* Per-thread scratch for mining one item. */
typedef struct miner {
    int64_t *cnt;    /* per rank */
    int32_t *touched;
    int32_t n_touched;
    int32_t *seqbuf; /* concatenated prefix paths */
    int64_t seq_cap;
    wseq *seqs;
    int64_t seqs_cap;
    int32_t *path;
    int32_t *rmap;   /* rank -> local rank in the conditional tree (-1) */
    int32_t *rinv;   /* local rank -> rank */
    fptree ct;       /* conditional tree */
    setvec out;
    int64_t *n_sets; /* shared count of itemsets found (atomic) */
    int64_t max_sets;
} miner;

static void miner_free(miner *m) {
    rf_free(m->cnt);
    rf_free(m->touched);
    rf_free(m->seqbuf);
    rf_free(m->seqs);
    rf_free(m->path);
    rf_free(m->rmap);
    rf_free(m->rinv);
    tree_free(&m->ct);
    rf_free(m->out.s);
}

static int miner_init(miner *m, int32_t nf, int32_t max_depth) {
    memset(m, 0, sizeof *m);
    m->cnt = rf_calloc((size_t)nf + 1, sizeof *m->cnt);
    m->touched = rf_malloc_array((size_t)nf + 1, sizeof *m->touched);
    m->path = rf_malloc_array((size_t)max_depth + 1, sizeof *m->path);
    m->rmap = rf_malloc_array((size_t)nf + 1, sizeof *m->rmap);
    m->rinv = rf_malloc_array((size_t)nf + 1, sizeof *m->rinv);
    if (!m->cnt || !m->touched || !m->path || !m->rmap || !m->rinv) return RF_ENOMEM;
    for (int32_t r = 0; r < nf; r++) m->rmap[r] = -1;
    return 0;
}

/* Count the ranks on the prefix paths of every node of rank x in t into
 * m->cnt (touched list). */
static void count_prefixes(const fptree *t, int32_t x, miner *m) {
    for (int32_t nd = t->head[x]; nd >= 0; nd = t->next[nd]) {
        int64_t c = t->count[nd];
        for (int32_t a = t->parent[nd]; a >= 0; a = t->parent[a]) {
            int32_t r = t->rank[a];
            if (m->cnt[r] == 0) m->touched[m->n_touched++] = r;
            m->cnt[r] += c;
        }
    }
}

static void clear_counts(miner *m) {
    for (int32_t k = 0; k < m->n_touched; k++) m->cnt[m->touched[k]] = 0;
    m->n_touched = 0;
}

/* Count one more itemset against the budget: RF_ETOOBIG past it. */
static int budget(miner *m) {
    if (m->max_sets <= 0) return 0;
    int64_t n;
#pragma omp atomic capture
    n = ++*m->n_sets;
    return n > m->max_sets ? RF_ETOOBIG : 0;
}

/* Mine the itemsets whose largest-rank item is x: {y, x} and {z, y, x}.
 * RF_ENOMEM or RF_ETOOBIG (budget exceeded). */
static int mine_item(const fptree *t, int32_t x, int64_t minc, int max_len, miner *m) {
    count_prefixes(t, x, m);
    int32_t nloc = 0;
    for (int32_t k = 0; k < m->n_touched; k++) {
        int32_t y = m->touched[k];
        if (m->cnt[y] < minc) continue;
        if (budget(m)) {
            for (int32_t j = 0; j < m->n_touched; j++) m->rmap[m->touched[j]] = -1;
            clear_counts(m);
            return RF_ETOOBIG;
        }
        if (sv_push(&m->out, y, x, -1, 2, m->cnt[y])) {
            for (int32_t j = 0; j < m->n_touched; j++) m->rmap[m->touched[j]] = -1;
            clear_counts(m);
            return RF_ENOMEM;
        }
        if (max_len >= 3) m->rmap[y] = 0; /* mark frequent; local ranks assigned below */
    }
    if (max_len < 3) {
        clear_counts(m);
        return 0;
    }
    /* local ranks of the frequent ys, ascending by global rank so paths
     * stay ascending */
    for (int32_t k = 0; k < m->n_touched; k++)
        if (m->rmap[m->touched[k]] == 0) m->rinv[nloc++] = m->touched[k];
    qsort(m->rinv, (size_t)nloc, sizeof *m->rinv, cmp_i32);
    for (int32_t l = 0; l < nloc; l++) m->rmap[m->rinv[l]] = l;
    clear_counts(m);
    int rc = 0;
    if (nloc >= 2) {
        /* conditional pattern base: frequent part of each prefix path */
        int64_t nseq = 0, nitems = 0;
        for (int32_t nd = t->head[x]; nd >= 0; nd = t->next[nd]) {
            nseq++;
            for (int32_t a = t->parent[nd]; a >= 0; a = t->parent[a])
                if (m->rmap[t->rank[a]] >= 0) nitems++;
        }
        if (nseq > m->seqs_cap) {
            wseq *s = rf_realloc_array(m->seqs, (size_t)nseq, sizeof *s);
            if (!s) goto nomem;
            m->seqs = s;
            m->seqs_cap = nseq;
        }
        if (nitems > m->seq_cap) {
            int32_t *b = rf_realloc_array(m->seqbuf, (size_t)nitems, sizeof *b);
            if (!b) goto nomem;
            m->seqbuf = b;
            m->seq_cap = nitems;
        }
        int64_t ns = 0, pos = 0;
        for (int32_t nd = t->head[x]; nd >= 0; nd = t->next[nd]) {
            int64_t start = pos;
            for (int32_t a = t->parent[nd]; a >= 0; a = t->parent[a]) {
                int32_t l = m->rmap[t->rank[a]];
                if (l >= 0) m->seqbuf[pos++] = l;
            }
            if (pos == start) continue;
            /* walked leaf to root: reverse into ascending order */
            for (int64_t i = start, j = pos - 1; i < j; i++, j--) {
                int32_t tmp = m->seqbuf[i];
                m->seqbuf[i] = m->seqbuf[j];
                m->seqbuf[j] = tmp;
            }
            m->seqs[ns].p = m->seqbuf + start;
            m->seqs[ns].len = (int32_t)(pos - start);
            m->seqs[ns].w = t->count[nd];
            ns++;
        }
        qsort(m->seqs, (size_t)ns, sizeof *m->seqs, cmp_wseq);
        if (tree_reset(&m->ct, nloc, nitems > 0 ? nitems : 1)) goto nomem;
        tree_insert_sorted(&m->ct, m->seqs, ns, m->path);
        /* triples {z, y, x}: prefixes of y in the conditional tree */
        for (int32_t ly = 1; ly < nloc && rc == 0; ly++) {
            count_prefixes(&m->ct, ly, m);
            for (int32_t k = 0; k < m->n_touched; k++) {
                int32_t lz = m->touched[k];
                if (m->cnt[lz] < minc) continue;
                if (budget(m)) {
                    clear_counts(m);
                    for (int32_t l = 0; l < nloc; l++) m->rmap[m->rinv[l]] = -1;
                    return RF_ETOOBIG;
                }
                if (sv_push(&m->out, m->rinv[lz], m->rinv[ly], x, 3, m->cnt[lz])) {
                    clear_counts(m);
                    goto nomem;
                }
            }
            clear_counts(m);
        }
    }
    for (int32_t l = 0; l < nloc; l++) m->rmap[m->rinv[l]] = -1;
    return rc;
nomem:
    for (int32_t l = 0; l < nloc; l++) m->rmap[m->rinv[l]] = -1;
    return RF_ENOMEM;
}

static int cmp_itemset(const void *a, const void *b) {
    const rf_itemset *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    for (int k = 0; k < x->len; k++)
        if (x->items[k] != y->items[k]) return x->items[k] < y->items[k] ? -1 : 1;
    return 0;
}

void rf_itemsets_free(rf_itemsets *s) {
    if (!s) return;
    rf_free(s->sets);
    rf_free(s);
}

typedef struct rankent {
    int32_t item;
    int64_t count;
} rankent;

static int cmp_rankent(const void *a, const void *b) {
    const rankent *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

int rf_fpgrowth(const rf_baskets *b, int32_t n_items, int64_t min_count, int max_len,
                int64_t max_sets, rf_itemsets **out, rf_err *err) {
    *out = NULL;
    if (max_len < 1 || max_len > 3)
        return rf_err_set(err, RF_EINVAL, "fpgrowth: max_len %d outside [1, 3]", max_len);
    if (min_count < 1) return rf_err_set(err, RF_EINVAL, "fpgrowth: min_count must be >= 1");
    if (n_items < 0) return rf_err_set(err, RF_EINVAL, "fpgrowth: negative item count");
    const int64_t nnz = b->indptr[b->n];
    int rc = 0;
    int64_t *count = rf_calloc((size_t)n_items + 1, sizeof *count);
    int32_t *rank_of = rf_malloc_array((size_t)n_items + 1, sizeof *rank_of);
    rankent *re = NULL;
    int32_t *seqbuf = NULL, *path = NULL;
    wseq *seqs = NULL;
    fptree t;
    memset(&t, 0, sizeof t);
    setvec all;
    memset(&all, 0, sizeof all);
    miner *ms = NULL;
    int T = rf_threads();
    if (!count || !rank_of) goto nomem;
    for (int64_t q = 0; q < nnz; q++) {
        int32_t it = b->items[q];
        if (it < 0 || it >= n_items) {
            rc = rf_err_set(err, RF_ERANGE, "fpgrowth: item %d outside [0, %d)", (int)it,
                            (int)n_items);
            goto out;
        }
        count[it]++;
    }
    int32_t nf = 0;
    for (int32_t i = 0; i < n_items; i++) nf += count[i] >= min_count;
    int64_t n_sets = nf;
    if (max_sets > 0 && n_sets > max_sets) goto toobig;
    re = rf_malloc_array((size_t)nf + 1, sizeof *re);
    if (!re) goto nomem;
    nf = 0;
    for (int32_t i = 0; i < n_items; i++)
        if (count[i] >= min_count) {
            re[nf].item = i;
            re[nf].count = count[i];
            nf++;
        }
    qsort(re, (size_t)nf, sizeof *re, cmp_rankent);
    for (int32_t i = 0; i < n_items; i++) rank_of[i] = -1;
    for (int32_t r = 0; r < nf; r++) rank_of[re[r].item] = r;
    for (int32_t r = 0; r < nf; r++)
        if (sv_push(&all, re[r].item, -1, -1, 1, re[r].count)) goto nomem;

    if (max_len >= 2 && nf >= 2) {
        /* baskets as ascending rank sequences */
        int64_t nseq = 0, nit = 0;
        int32_t longest = 0;
        for (int64_t k = 0; k < b->n; k++) {
            int32_t l = 0;
            for (int64_t q = b->indptr[k]; q < b->indptr[k + 1]; q++) l += rank_of[b->items[q]] >= 0;
            if (l >= 1) nseq++;
            nit += l;
            if (l > longest) longest = l;
        }
        if (nit > INT32_MAX) {
            rc = rf_err_set(err, RF_ETOOBIG, "fpgrowth: %lld frequent basket items (limit %d)",
                            (long long)nit, INT32_MAX);
            goto out;
        }
        seqbuf = rf_malloc_array((size_t)nit + 1, sizeof *seqbuf);
        seqs = rf_malloc_array((size_t)nseq + 1, sizeof *seqs);
        path = rf_malloc_array((size_t)longest + 1, sizeof *path);
        if (!seqbuf || !seqs || !path) goto nomem;
        int64_t pos = 0, ns = 0;
        for (int64_t k = 0; k < b->n; k++) {
            int64_t start = pos;
            for (int64_t q = b->indptr[k]; q < b->indptr[k + 1]; q++)
                if (rank_of[b->items[q]] >= 0) seqbuf[pos++] = rank_of[b->items[q]];
            if (pos == start) continue;
            qsort(seqbuf + start, (size_t)(pos - start), sizeof *seqbuf, cmp_i32);
            seqs[ns].p = seqbuf + start;
            seqs[ns].len = (int32_t)(pos - start);
            seqs[ns].w = 1;
            ns++;
        }
        if (sort_wseq(seqs, ns, nf)) goto nomem;
        if (tree_reset(&t, nf, nit + 1)) goto nomem;
        tree_insert_sorted(&t, seqs, ns, path);
        rf_free(seqs);
        seqs = NULL;
        rf_free(seqbuf);
        seqbuf = NULL;

        ms = rf_calloc((size_t)T, sizeof *ms);
        if (!ms) goto nomem;
        int failed = 0;
        for (int k = 0; k < T; k++) {
            if (miner_init(&ms[k], nf, longest)) failed = RF_ENOMEM;
            ms[k].n_sets = &n_sets;
            ms[k].max_sets = max_sets;
        }
        if (failed) goto nomem;
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
        for (int32_t x = nf - 1; x >= 1; x--) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            int mrc = mine_item(&t, x, min_count, max_len, &ms[rf_thread_id()]);
            if (mrc) {
#pragma omp atomic write
                failed = mrc;
            }
        }
        if (failed == RF_ETOOBIG) goto toobig;
        if (failed) goto nomem;
        for (int k = 0; k < T; k++) {
            for (int64_t q = 0; q < ms[k].out.n; q++) {
                const rf_itemset *s = &ms[k].out.s[q];
                if (sv_push(&all, s->items[0], s->items[1], s->items[2], s->len, s->count))
                    goto nomem;
            }
            rf_free(ms[k].out.s);
            memset(&ms[k].out, 0, sizeof ms[k].out);
        }
    }
    /* ranks -> item ids, ascending within each set, sets in canonical order */
    for (int64_t q = 0; q < all.n; q++) {
        rf_itemset *s = &all.s[q];
        if (s->len >= 2)
            for (int k = 0; k < s->len; k++) s->items[k] = re[s->items[k]].item;
        qsort(s->items, (size_t)s->len, sizeof s->items[0], cmp_i32);
    }
    if (all.n) qsort(all.s, (size_t)all.n, sizeof *all.s, cmp_itemset);
    rf_itemsets *res = rf_calloc(1, sizeof *res);
    if (!res) goto nomem;
    res->n = all.n;
    res->sets = all.s;
    res->n_baskets = b->n;
    all.s = NULL;
    *out = res;
    goto out;
toobig:
    rc = rf_err_set(err, RF_ETOOBIG,
                    "fpgrowth: more than %lld frequent itemsets at min_count %lld (raise the "
                    "minimum support or lower max_len)",
                    (long long)max_sets, (long long)min_count);
    goto out;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "fpgrowth: out of memory");
out:
    if (ms)
        for (int k = 0; k < T; k++) miner_free(&ms[k]);
    rf_free(ms);
    tree_free(&t);
    rf_free(count);
    rf_free(rank_of);
    rf_free(re);
    rf_free(seqbuf);
    rf_free(seqs);
    rf_free(path);
    rf_free(all.s);
    return rc;
}

/* ---- rules ------------------------------------------------------------------- */

/* Count of an itemset of len 1 or 2 (ascending items), -1 if absent. */
static int64_t find_count(const rf_itemsets *s, int64_t lo, int64_t hi, int32_t len, int32_t a,
                          int32_t b) {
    rf_itemset key = {{a, b, -1}, len, 0};
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = cmp_itemset(&s->sets[mid], &key);
        if (c == 0) return s->sets[mid].count;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static int cmp_rule_key(const void *pa, const void *pb) {
    const rf_rule *a = pa, *b = pb;
    if (a->ante[0] != b->ante[0]) return a->ante[0] < b->ante[0] ? -1 : 1;
    if (a->ante[1] != b->ante[1]) return a->ante[1] < b->ante[1] ? -1 : 1;
    return (a->cons > b->cons) - (a->cons < b->cons);
}

int rf_rules_from_itemsets(const rf_itemsets *s, double min_confidence, double min_lift,
                           rf_rule **out, int64_t *n, rf_err *err) {
    *out = NULL;
    *n = 0;
    const double N = (double)s->n_baskets;
    int64_t e1 = 0, e2;
    while (e1 < s->n && s->sets[e1].len == 1) e1++;
    e2 = e1;
    while (e2 < s->n && s->sets[e2].len == 2) e2++;
    int64_t cap = 2 * (e2 - e1) + 3 * (s->n - e2), k = 0;
    if (cap == 0) return 0;
    rf_rule *r = rf_malloc_array((size_t)cap, sizeof *r);
    if (!r) return rf_err_set(err, RF_ENOMEM, "rules: out of memory for %lld rules", (long long)cap);
    for (int64_t q = e1; q < s->n; q++) {
        const rf_itemset *set = &s->sets[q];
        for (int c = 0; c < set->len; c++) {
            int32_t a[2];
            int na = 0;
            for (int x = 0; x < set->len; x++)
                if (x != c) a[na++] = set->items[x];
            int64_t ca = na == 1 ? find_count(s, 0, e1, 1, a[0], -1)
                                 : find_count(s, e1, e2, 2, a[0], a[1]);
            int64_t cc = find_count(s, 0, e1, 1, set->items[c], -1);
            if (ca <= 0 || cc <= 0) continue; /* cannot happen for a downward-closed input */
            double conf = (double)set->count / (double)ca;
            double lift = conf / ((double)cc / N);
            if (conf < min_confidence || lift < min_lift) continue;
            rf_rule *x = &r[k++];
            x->ante[0] = a[0];
            x->ante[1] = na == 2 ? a[1] : -1;
            x->cons = set->items[c];
            x->count = set->count;
            x->support = (double)set->count / N;
            x->confidence = conf;
            x->lift = lift;
        }
    }
    if (k == 0) {
        rf_free(r);
        return 0;
    }
    qsort(r, (size_t)k, sizeof *r, cmp_rule_key);
    rf_rule *shrunk = rf_realloc_array(r, (size_t)k, sizeof *r);
    *out = shrunk ? shrunk : r;
    *n = k;
    return 0;
}

static int cmp3(double a, double b) { return (a < b) - (a > b); } /* descending */

static int cmp_lift(const void *pa, const void *pb) {
    const rf_rule *a = pa, *b = pb;
    int c;
    if ((c = cmp3(a->lift, b->lift))) return c;
    if ((c = cmp3(a->confidence, b->confidence))) return c;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return cmp_rule_key(pa, pb);
}

static int cmp_conf(const void *pa, const void *pb) {
    const rf_rule *a = pa, *b = pb;
    int c;
    if ((c = cmp3(a->confidence, b->confidence))) return c;
    if ((c = cmp3(a->lift, b->lift))) return c;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return cmp_rule_key(pa, pb);
}

static int cmp_supp(const void *pa, const void *pb) {
    const rf_rule *a = pa, *b = pb;
    int c;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    if ((c = cmp3(a->confidence, b->confidence))) return c;
    if ((c = cmp3(a->lift, b->lift))) return c;
    return cmp_rule_key(pa, pb);
}

void rf_rules_sort(rf_rule *r, int64_t n, rf_rules_order by) {
    if (n <= 1) return;
    qsort(r, (size_t)n, sizeof *r,
          by == RF_RULES_BY_CONFIDENCE ? cmp_conf : by == RF_RULES_BY_SUPPORT ? cmp_supp : cmp_lift);
}

int rf_rules_order_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "lift") == 0) return RF_RULES_BY_LIFT;
    if (strcmp(s, "confidence") == 0 || strcmp(s, "conf") == 0) return RF_RULES_BY_CONFIDENCE;
    if (strcmp(s, "support") == 0 || strcmp(s, "count") == 0) return RF_RULES_BY_SUPPORT;
    return -1;
}
