/* build.c - the event log to a dataset: weighted, folded, decayed
 * users x items CSR, its transpose and per-entry last event times.
 *
 * DESIGN: rather than rf_csr_from_coo (two int64 index arrays of n plus a
 * weight array and a perm array: ~28 bytes per event of scratch, serial),
 * the build buckets events by user with one counting sort (4 bytes per
 * event of scratch for logs under 2^32 events), then works user by user
 * in parallel, reading each event once: gather the user's weights and
 * times into per-thread scratch, sort (item, log position) keys, fold each
 * run of equal items into one entry. A row has at most as many entries as
 * the user has events, so rows are written at the user's bucket offset
 * into arrays sized for the events, then compacted to the left and the
 * tail handed back (realloc); the bucket index is freed before the
 * transpose is allocated, so the peak stays at log + finished dataset.
 * Each row depends only on that user's events in log order, so the
 * result is identical for any thread count. The fold semantics match
 * rf_csr_from_coo's, except that RF_FOLD_LAST takes the latest event by
 * time (log order breaking ties), which is the same thing for a
 * chronological log and the right thing for one that is not. */
#include "recfuse/dataset.h"

#include <math.h>
#include <string.h>

#include "ds_internal.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"

/* ---- shared helpers (ds_internal.h) ---------------------------------- */

int rf_ds_check_events(const rf_events *ev, int32_t n_users, int32_t n_items, int check_type,
                       rf_err *err) {
    int64_t bad = INT64_MAX;
    const int64_t n = ev->n;
#pragma omp parallel for num_threads(rf_threads()) schedule(static) reduction(min : bad)
    for (int64_t i = 0; i < n; i++) {
        if (ev->user[i] < 0 || ev->user[i] >= n_users || ev->item[i] < 0 ||
            ev->item[i] >= n_items || (check_type && ev->type[i] >= RF_EV_NTYPES))
            if (i < bad) bad = i;
    }
    if (bad == INT64_MAX) return 0;
    return rf_err_set(err, RF_ERANGE,
                      "event %lld: user %d / item %d / type %d out of range "
                      "(%d users, %d items, %d types)",
                      (long long)bad, ev->user[bad], ev->item[bad], ev->type[bad], n_users,
                      n_items, RF_EV_NTYPES);
}

void rf_ds_order_free(rf_ds_order *o) {
    rf_free(o->idx32);
    rf_free(o->idx64);
    rf_free(o->start);
    memset(o, 0, sizeof *o);
}

/* Events [lo, hi) into the buckets; cur[u] is user u's next slot. */
static void scatter(const rf_events *ev, const uint8_t *keep, rf_ds_order *o, int64_t lo,
                    int64_t hi, int64_t *cur) {
    if (o->wide) {
        for (int64_t i = lo; i < hi; i++)
            if (!keep || keep[ev->type[i]]) o->idx64[cur[ev->user[i]]++] = i;
    } else {
        for (int64_t i = lo; i < hi; i++)
            if (!keep || keep[ev->type[i]]) o->idx32[cur[ev->user[i]]++] = (uint32_t)i;
    }
}

/* DESIGN: with T threads the log is cut into T chunks; chunk p counts its
 * events per user, and user u's bucket receives chunk 0's events, then
 * chunk 1's, ... so the bucket is in log order, as the serial pass would
 * give. The T x n_users cursors are only used when they are small next to
 * the log (at most 4 bytes per event); otherwise the pass is serial. */
int rf_ds_order_build(const rf_events *ev, int32_t n_users, const uint8_t *keep, rf_ds_order *o,
                      rf_err *err) {
    memset(o, 0, sizeof *o);
    const int64_t n = ev->n;
    int T = rf_threads();
    if (T < 2 || n < (1 << 18) || (int64_t)T * n_users * 8 > n * 4) T = 1;
    int64_t *cnt = NULL;
    o->start = rf_calloc((size_t)n_users + 1, sizeof *o->start);
    cnt = rf_calloc((size_t)T * (size_t)n_users + 1, sizeof *cnt);
    if (!o->start || !cnt) goto nomem;
#pragma omp parallel for num_threads(T) schedule(static, 1) if (T > 1)
    for (int p = 0; p < T; p++) {
        int64_t lo, hi;
        int64_t *c = cnt + (size_t)p * (size_t)n_users;
        rf_chunk(n, T, p, &lo, &hi);
        for (int64_t i = lo; i < hi; i++)
            if (!keep || keep[ev->type[i]]) c[ev->user[i]]++;
    }
    /* Bucket starts, and each chunk's first slot in each bucket. */
    int64_t pos = 0;
    for (int32_t u = 0; u < n_users; u++) {
        o->start[u] = pos;
        for (int p = 0; p < T; p++) {
            int64_t *c = cnt + (size_t)p * (size_t)n_users + (size_t)u;
            int64_t v = *c;
            *c = pos;
            pos += v;
        }
        if (pos - o->start[u] > o->max_len) o->max_len = pos - o->start[u];
    }
    o->start[n_users] = pos;
    o->n = pos;
    if (o->max_len > (int64_t)UINT32_MAX) {
        int64_t len = o->max_len;
        rf_free(cnt);
        rf_ds_order_free(o);
        return rf_err_set(err, RF_ETOOBIG, "a user has %lld events (limit 2^32 - 1)",
                          (long long)len);
    }
    o->wide = n > (int64_t)UINT32_MAX;
    if (o->wide)
        o->idx64 = rf_malloc_array((size_t)pos, sizeof *o->idx64);
    else
        o->idx32 = rf_malloc_array((size_t)pos, sizeof *o->idx32);
    if (!o->idx32 && !o->idx64) goto nomem;
#pragma omp parallel for num_threads(T) schedule(static, 1) if (T > 1)
    for (int p = 0; p < T; p++) {
        int64_t lo, hi;
        rf_chunk(n, T, p, &lo, &hi);
        scatter(ev, keep, o, lo, hi, cnt + (size_t)p * (size_t)n_users);
    }
    rf_free(cnt);
    return 0;
nomem:
    rf_free(cnt);
    rf_ds_order_free(o);
    return rf_err_set(err, RF_ENOMEM, "out of memory indexing %lld events", (long long)ev->n);
}

static void insertion_u64(uint64_t *a, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void sift_u64(uint64_t *a, int64_t n, int64_t i) {
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && a[c + 1] > a[c]) c++;
        if (a[i] >= a[c]) return;
        uint64_t t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void heapsort_u64(uint64_t *a, int64_t n) {
    for (int64_t i = n / 2 - 1; i >= 0; i--) sift_u64(a, n, i);
    for (int64_t e = n - 1; e > 0; e--) {
        uint64_t t = a[0];
        a[0] = a[e];
        a[e] = t;
        sift_u64(a, e, 0);
    }
}

static void introsort_u64(uint64_t *a, int64_t n, int depth) {
    while (n > 24) {
        if (depth-- == 0) {
            heapsort_u64(a, n);
            return;
        }
        /* Median of three as pivot, Hoare partition. */
        uint64_t x = a[0], y = a[n / 2], z = a[n - 1];
        uint64_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = -1, j = n;
        for (;;) {
            do i++; while (a[i] < p);
            do j--; while (a[j] > p);
            if (i >= j) break;
            uint64_t t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        /* [0, j] <= p <= [j + 1, n): recurse on the smaller side. */
        int64_t nl = j + 1;
        if (nl < n - nl) {
            introsort_u64(a, nl, depth);
            a += nl;
            n -= nl;
        } else {
            introsort_u64(a + nl, n - nl, depth);
            n = nl;
        }
    }
    insertion_u64(a, n);
}

void rf_ds_sort_u64(uint64_t *a, int64_t n) {
    int depth = 0;
    for (int64_t m = n; m > 1; m >>= 1) depth += 2;
    introsort_u64(a, n, depth);
}

/* ---- build ----------------------------------------------------------- */

void rf_dataset_free(rf_dataset *d) {
    if (!d) return;
    rf_csr_free(d->ui);
    rf_csr_free(d->iu);
    rf_free(d->ui_ts);
    rf_free(d);
}

int64_t rf_dataset_bytes(const rf_dataset *d) {
    if (!d) return 0;
    return rf_csr_bytes(d->ui) + rf_csr_bytes(d->iu) + (d->ui ? d->ui->nnz * 4 : 0);
}

int rf_dataset_build(const rf_events *ev, const rf_dataset_opts *opts, rf_dataset **out,
                     rf_err *err) {
    rf_dataset_opts defaults;
    if (!opts) {
        rf_dataset_opts_default(&defaults);
        opts = &defaults;
    }
    if (!ev || !out) return rf_err_set(err, RF_EINVAL, "dataset: NULL argument");
    const char *bad = rf_dataset_opts_check(opts);
    if (bad) return rf_err_set(err, RF_EINVAL, "dataset options: %s", bad);

    const int32_t nu = rf_idmap_size(ev->users), ni = rf_idmap_size(ev->items);
    int rc = rf_ds_check_events(ev, nu, ni, 1, err);
    if (rc) return rc;

    rf_dataset *d = NULL;
    rf_ds_order ord = {0};
    uint64_t *key = NULL;
    int64_t *tmp = NULL;
    double *wbuf = NULL;
    d = rf_calloc(1, sizeof *d);
    if (!d) goto nomem;
    d->n_users = nu;
    d->n_items = ni;
    d->users = ev->users;
    d->items = ev->items;

    /* Time range over the whole log. */
    const int64_t n = ev->n;
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
#pragma omp parallel for num_threads(rf_threads()) schedule(static) reduction(min : tmin) \
    reduction(max : tmax)
    for (int64_t i = 0; i < n; i++) {
        if (ev->ts[i] < tmin) tmin = ev->ts[i];
        if (ev->ts[i] > tmax) tmax = ev->ts[i];
    }
    if (n == 0) tmin = tmax = 0;
    if ((uint64_t)tmax - (uint64_t)tmin > UINT32_MAX) {
        rc = rf_err_set(err, RF_ERANGE, "event times span %lld s, more than the 2^32 s ui_ts holds",
                        (long long)((uint64_t)tmax - (uint64_t)tmin));
        goto fail;
    }
    d->ts_base = tmin;
    d->ts_max = tmax;

    uint8_t keep[256];
    for (int t = 0; t < 256; t++) keep[t] = t < RF_EV_NTYPES && opts->type_weight[t] != 0.0f;
    rc = rf_ds_order_build(ev, nu, keep, &ord, err);
    if (rc) goto fail;

    const int T = rf_threads();
    const size_t L = ord.max_len ? (size_t)ord.max_len : 1;
    const int64_t m = ord.n;
    key = rf_malloc_array((size_t)T * L, sizeof *key);
    tmp = rf_malloc_array((size_t)T * L, sizeof *tmp);
    wbuf = rf_malloc_array((size_t)T * L, sizeof *wbuf);
    if (!key || !tmp || !wbuf) goto nomem;
    d->ui = rf_calloc(1, sizeof *d->ui);
    if (!d->ui) goto nomem;
    d->ui->nrows = nu;
    d->ui->ncols = ni;
    d->ui->indptr = rf_calloc((size_t)nu + 1, sizeof *d->ui->indptr);
    /* Sized for one entry per kept event; shrunk to nnz below. */
    d->ui->indices = rf_malloc_array((size_t)m, sizeof *d->ui->indices);
    d->ui->data = rf_malloc_array((size_t)m, sizeof *d->ui->data);
    d->ui_ts = rf_malloc_array((size_t)m, sizeof *d->ui_ts);
    if (!d->ui->indptr || !d->ui->indices || !d->ui->data || !d->ui_ts) goto nomem;
    int64_t *indptr = d->ui->indptr;
    int32_t *ind = d->ui->indices;
    float *val = d->ui->data;
    uint32_t *uts = d->ui_ts;

    const int64_t now = opts->now ? opts->now : tmax;
    const double hl = opts->half_life_days > 0 ? opts->half_life_days * 86400.0 : 0.0;
    const int use_value = opts->use_value, binary = opts->binary;
    const rf_fold fold = opts->fold;
    float tw[RF_EV_NTYPES];
    memcpy(tw, opts->type_weight, sizeof tw);

    /* One pass per user: gather the user's events once (in log order, so
     * addresses increase) into scratch, sort (item, j) keys, fold each run
     * of equal items into one entry written at the user's bucket offset. */
#pragma omp parallel num_threads(T)
    {
        const size_t th = (size_t)rf_thread_id();
        uint64_t *k = key + th * L;
        int64_t *t = tmp + th * L;
        double *w = wbuf + th * L;
#pragma omp for schedule(dynamic, 256)
        for (int32_t u = 0; u < nu; u++) {
            const int64_t lo = ord.start[u], len = ord.start[u + 1] - lo;
            int sorted = 1;
            for (int64_t j = 0; j < len; j++) {
                int64_t e = rf_ds_at(&ord, lo + j);
                double x = tw[ev->type[e]];
                if (use_value) x *= ev->value[e];
                if (hl > 0) {
                    int64_t age = now - ev->ts[e];
                    if (age > 0) x *= exp2(-(double)age / hl);
                }
                w[j] = x;
                t[j] = ev->ts[e];
                k[j] = ((uint64_t)(uint32_t)ev->item[e] << 32) | (uint64_t)j;
                if (j && k[j] < k[j - 1]) sorted = 0;
            }
            if (!sorted) rf_ds_sort_u64(k, len);
            int64_t o = lo;
            for (int64_t q = 0; q < len;) {
                const uint32_t it = (uint32_t)(k[q] >> 32);
                size_t j = (size_t)(k[q] & 0xffffffffu);
                double acc = w[j];
                int64_t best = t[j];
                for (q++; q < len && (uint32_t)(k[q] >> 32) == it; q++) {
                    j = (size_t)(k[q] & 0xffffffffu); /* increasing: log order */
                    if (fold == RF_FOLD_SUM)
                        acc += w[j];
                    else if (fold == RF_FOLD_MAX) {
                        if (w[j] > acc) acc = w[j];
                    } else if (t[j] >= best) { /* RF_FOLD_LAST */
                        acc = w[j];
                    }
                    if (t[j] >= best) best = t[j];
                }
                ind[o] = (int32_t)it;
                val[o] = binary ? 1.0f : (float)acc;
                uts[o] = (uint32_t)(best - tmin);
                o++;
            }
            indptr[u + 1] = o - lo;
        }
    }
    rf_free(key);
    rf_free(tmp);
    rf_free(wbuf);
    key = NULL;
    tmp = NULL;
    wbuf = NULL;
    /* Compact the rows to the left, in user order (a row never moves right:
     * indptr[u] <= start[u]), then give back the tail. */
    for (int32_t u = 0; u < nu; u++) {
        int64_t c = indptr[u + 1], src = ord.start[u], dst = indptr[u];
        indptr[u + 1] = dst + c;
        if (src != dst && c) {
            memmove(ind + dst, ind + src, (size_t)c * sizeof *ind);
            memmove(val + dst, val + src, (size_t)c * sizeof *val);
            memmove(uts + dst, uts + src, (size_t)c * sizeof *uts);
        }
    }
    const int64_t nnz = indptr[nu];
    d->ui->nnz = nnz;
    rf_ds_order_free(&ord);
    if (nnz < m) { /* a failed shrink keeps the larger, still valid block */
        void *p;
        if ((p = rf_realloc_array(d->ui->indices, (size_t)(nnz ? nnz : 1), sizeof *ind)))
            d->ui->indices = p;
        if ((p = rf_realloc_array(d->ui->data, (size_t)(nnz ? nnz : 1), sizeof *val)))
            d->ui->data = p;
        if ((p = rf_realloc_array(d->ui_ts, (size_t)(nnz ? nnz : 1), sizeof *uts))) d->ui_ts = p;
    }

    rc = rf_csr_transpose(d->ui, &d->iu);
    if (rc) goto nomem;
    *out = d;
    return 0;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "out of memory building the dataset (%lld events)",
                    (long long)ev->n);
fail:
    rf_free(key);
    rf_free(tmp);
    rf_free(wbuf);
    rf_ds_order_free(&ord);
    rf_dataset_free(d);
    return rc;
}

int rf_events_to_csr_binary(const rf_events *ev, rf_csr **out, rf_err *err) {
    if (!ev || !out) return rf_err_set(err, RF_EINVAL, "events_to_csr: NULL argument");
    const int32_t nu = rf_idmap_size(ev->users), ni = rf_idmap_size(ev->items);
    int rc = rf_ds_check_events(ev, nu, ni, 0, err);
    if (rc) return rc;
    rc = rf_csr_from_coo(nu, ni, ev->n, ev->user, ev->item, NULL, RF_FOLD_MAX, out, NULL);
    if (rc) return rf_err_set(err, rc, "relevance matrix of %lld events: %s", (long long)ev->n,
                              rf_strerror(rc));
    return 0;
}
