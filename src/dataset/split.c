/* split.c - cutting an event log into train and test logs.
 *
 * Every split here works on (user, item) pairs, not on single events, so
 * a view and the purchase that followed it never end up on both sides.
 *
 * DESIGN: one engine serves all four splits. Events are bucketed by user
 * (ds_internal.h) and, user by user in parallel, sorted by (natural rank
 * of the item id, log position): each run of equal items is one pair,
 * whose time is its earliest event. The pairs are then ordered by
 * (first time, natural item rank) with one uint64 sort of
 * (time - ts_min) << 32 | run number (runs are already in natural order,
 * so the run number breaks time ties by natural id). A per-split rule
 * gives each pair a destination, written to a byte per event; the train
 * and test logs are then copied in log order. Natural ranks come from one
 * sort of the item strings with rf_natural_cmp, so per-user sorts compare
 * integers only. Nothing depends on the thread count. */
#include <math.h>
#include <string.h>

#include "ds_internal.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

enum { DEST_TRAIN = 0, DEST_TEST = 1, DEST_DROP = 2 };

typedef enum { SPLIT_RATIO, SPLIT_TIME, SPLIT_LOO, SPLIT_KFOLD } split_kind;

typedef struct split_rule {
    split_kind kind;
    int64_t ratio_num; /* test share = ratio_num / RATIO_DEN */
    int min_items;
    int64_t cutoff;
    int k, fold;
    uint64_t seed;
} split_rule;

#define RATIO_DEN 1000000000LL

void rf_split_free(rf_split *s) {
    if (!s) return;
    rf_events_free(s->train);
    rf_events_free(s->test);
    s->train = s->test = NULL;
}

/* ---- natural order of item ids --------------------------------------- */

static int nat_less(const rf_idmap *m, int32_t a, int32_t b) {
    int c = rf_natural_cmp(rf_idmap_str(m, a), rf_idmap_len(m, a), rf_idmap_str(m, b),
                           rf_idmap_len(m, b));
    return c < 0 || (c == 0 && a < b);
}

/* rank[i] = position of item i in natural id order (ties by dense id). */
static int natural_ranks(const rf_idmap *m, int32_t n, int32_t **out) {
    int32_t *a = rf_malloc_array((size_t)n, sizeof *a);
    int32_t *b = rf_malloc_array((size_t)n, sizeof *b);
    if (!a || !b) {
        rf_free(a);
        rf_free(b);
        return RF_ENOMEM;
    }
    for (int32_t i = 0; i < n; i++) a[i] = i;
    /* Bottom-up merge sort. */
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) b[o++] = nat_less(m, a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid) b[o++] = a[i++];
            while (j < hi) b[o++] = a[j++];
        }
        int32_t *t = a;
        a = b;
        b = t;
    }
    for (int32_t r = 0; r < n; r++) b[a[r]] = r;
    rf_free(a);
    *out = b;
    return 0;
}

/* ---- the engine ------------------------------------------------------ */

/* Destination of each pair of one user, pairs given in canonical order
 * (first time, natural id): dst[r] for the r-th pair. */
static void pair_rule(const split_rule *R, int32_t u, int64_t np, const int64_t *first_ts,
                      uint8_t *dst, int32_t *perm) {
    switch (R->kind) {
    case SPLIT_RATIO: {
        int64_t ntest = 0;
        if (np >= R->min_items) ntest = (np * R->ratio_num + RATIO_DEN - 1) / RATIO_DEN;
        for (int64_t r = 0; r < np; r++) dst[r] = r >= np - ntest ? DEST_TEST : DEST_TRAIN;
        break;
    }
    case SPLIT_LOO:
        for (int64_t r = 0; r < np; r++)
            dst[r] = (np >= R->min_items && r == np - 1) ? DEST_TEST : DEST_TRAIN;
        break;
    case SPLIT_TIME:
        for (int64_t r = 0; r < np; r++) dst[r] = first_ts[r] >= R->cutoff ? DEST_TEST : DEST_TRAIN;
        break;
    case SPLIT_KFOLD: {
        rf_rng rng;
        rf_rng_stream(&rng, R->seed, (uint64_t)u);
        int64_t off = (int64_t)rf_rng_below(&rng, (uint64_t)R->k);
        for (int64_t r = 0; r < np; r++) perm[r] = (int32_t)r;
        rf_rng_shuffle_i32(&rng, perm, np);
        for (int64_t q = 0; q < np; q++)
            dst[perm[q]] = (q + off) % R->k == R->fold ? DEST_TEST : DEST_TRAIN;
        break;
    }
    }
}

/* Copy the events with dest == want into a new log borrowing ev's maps. */
static int extract(const rf_events *ev, const uint8_t *dest, uint8_t want, rf_events **out) {
    rf_events *e = NULL;
    int T = rf_threads();
    int64_t *cnt = rf_calloc((size_t)T + 1, sizeof *cnt);
    int rc = RF_ENOMEM;
    if (!cnt) goto fail;
    rc = rf_events_new(ev->users, ev->items, &e);
    if (rc) goto fail;
    const int64_t n = ev->n;
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int p = 0; p < T; p++) {
        int64_t lo, hi, c = 0;
        rf_chunk(n, T, p, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) c += dest[i] == want;
        cnt[p + 1] = c;
    }
    for (int p = 0; p < T; p++) cnt[p + 1] += cnt[p];
    rc = rf_events_reserve(e, cnt[T] ? cnt[T] : 1);
    if (rc) goto fail;
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int p = 0; p < T; p++) {
        int64_t lo, hi, o = cnt[p];
        rf_chunk(n, T, p, &lo, &hi);
        for (int64_t i = lo; i < hi; i++)
            if (dest[i] == want) {
                e->user[o] = ev->user[i];
                e->item[o] = ev->item[i];
                e->type[o] = ev->type[i];
                e->value[o] = ev->value[i];
                e->ts[o] = ev->ts[i];
                o++;
            }
    }
    e->n = cnt[T];
    rf_free(cnt);
    *out = e;
    return 0;
fail:
    rf_free(cnt);
    rf_events_free(e);
    return rc;
}

static int run_split(const rf_events *ev, const split_rule *R, rf_split *out, rf_err *err) {
    const int32_t nu = rf_idmap_size(ev->users), ni = rf_idmap_size(ev->items);
    int rc = rf_ds_check_events(ev, nu, ni, 0, err);
    if (rc) return rc;

    int32_t *rank = NULL;
    uint8_t *dest = NULL;
    rf_ds_order ord = {0};
    char *scratch = NULL;
    rf_split res = {0};

    const int64_t n = ev->n;
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
#pragma omp parallel for num_threads(rf_threads()) schedule(static) reduction(min : tmin) \
    reduction(max : tmax)
    for (int64_t i = 0; i < n; i++) {
        if (ev->ts[i] < tmin) tmin = ev->ts[i];
        if (ev->ts[i] > tmax) tmax = ev->ts[i];
    }
    if (n && (uint64_t)tmax - (uint64_t)tmin > UINT32_MAX) {
        rc = rf_err_set(err, RF_ERANGE, "split: event times span %lld s, more than 2^32 s",
                        (long long)((uint64_t)tmax - (uint64_t)tmin));
        goto fail;
    }

    rc = natural_ranks(ev->items, ni, &rank);
    if (rc) goto nomem;
    dest = rf_malloc_array((size_t)n, 1);
    if (!dest) goto nomem;
    rc = rf_ds_order_build(ev, nu, NULL, &ord, err);
    if (rc) goto fail;

    const int T = rf_threads();
    const size_t L = ord.max_len ? (size_t)ord.max_len : 1;
    /* Per-thread scratch, all indexed within one user's bucket: five
     * 8-byte arrays of L, one of L + 1, an int32 and a byte array of L;
     * rounded up so every thread's block stays 8-byte aligned. */
    const size_t per = (L * (6 * 8 + 4 + 1) + 8 + 7) & ~(size_t)7;
    scratch = rf_malloc_array((size_t)T, per);
    if (!scratch) goto nomem;

#pragma omp parallel num_threads(T)
    {
        char *base = scratch + (size_t)rf_thread_id() * per;
        uint64_t *k = (uint64_t *)base;    /* (natural rank, j) per event */
        uint64_t *pk = k + L;              /* (first time, run) per pair */
        int64_t *tj = (int64_t *)(pk + L); /* time of the j-th event */
        int64_t *gt = tj + L;              /* first time of each run */
        int64_t *fts = gt + L;             /* first times in canonical order */
        int64_t *gs = fts + L;             /* start of each run in k; L + 1 */
        int32_t *pm = (int32_t *)(gs + L + 1);
        uint8_t *gd = (uint8_t *)(pm + L);
#pragma omp for schedule(dynamic, 256)
        for (int32_t u = 0; u < nu; u++) {
            const int64_t lo = ord.start[u], len = ord.start[u + 1] - lo;
            if (len == 0) continue;
            /* Read each event once, in log order. */
            int sorted = 1;
            for (int64_t j = 0; j < len; j++) {
                int64_t e = rf_ds_at(&ord, lo + j);
                k[j] = ((uint64_t)(uint32_t)rank[ev->item[e]] << 32) | (uint64_t)j;
                tj[j] = ev->ts[e];
                if (j && k[j] < k[j - 1]) sorted = 0;
            }
            if (!sorted) rf_ds_sort_u64(k, len);
            /* Runs of equal items (= pairs), in natural id order. */
            int64_t np = 0;
            for (int64_t q = 0; q < len; q++) {
                int64_t t = tj[k[q] & 0xffffffffu];
                if (q == 0 || (k[q] >> 32) != (k[q - 1] >> 32)) {
                    gs[np] = q;
                    gt[np] = t;
                    np++;
                } else if (t < gt[np - 1]) {
                    gt[np - 1] = t;
                }
            }
            gs[np] = len;
            /* Canonical order: (first time, natural id). */
            for (int64_t g = 0; g < np; g++)
                pk[g] = ((uint64_t)(gt[g] - tmin) << 32) | (uint64_t)g;
            rf_ds_sort_u64(pk, np);
            for (int64_t r = 0; r < np; r++) fts[r] = gt[pk[r] & 0xffffffffu];
            pair_rule(R, u, np, fts, gd, pm);
            for (int64_t r = 0; r < np; r++) {
                int64_t g = (int64_t)(pk[r] & 0xffffffffu);
                uint8_t d = gd[r];
                for (int64_t q = gs[g]; q < gs[g + 1]; q++) {
                    int64_t j = (int64_t)(k[q] & 0xffffffffu);
                    if (R->kind == SPLIT_TIME && d == DEST_TRAIN && tj[j] >= R->cutoff)
                        dest[rf_ds_at(&ord, lo + j)] = DEST_DROP;
                    else
                        dest[rf_ds_at(&ord, lo + j)] = d;
                }
            }
        }
    }
    rf_free(scratch);
    scratch = NULL;
    rf_ds_order_free(&ord);
    rf_free(rank);
    rank = NULL;

    if ((rc = extract(ev, dest, DEST_TRAIN, &res.train)) != 0) goto nomem;
    if ((rc = extract(ev, dest, DEST_TEST, &res.test)) != 0) goto nomem;
    rf_free(dest);
    *out = res;
    return 0;
nomem:
    rc = rf_err_set(err, RF_ENOMEM, "split: out of memory (%lld events)", (long long)ev->n);
fail:
    rf_free(scratch);
    rf_ds_order_free(&ord);
    rf_free(rank);
    rf_free(dest);
    rf_split_free(&res);
    return rc;
}

static int check_args(const rf_events *ev, rf_split *out, rf_err *err) {
    if (out) out->train = out->test = NULL;
    if (!ev || !out) return rf_err_set(err, RF_EINVAL, "split: NULL argument");
    return 0;
}

int rf_split_user_ratio(const rf_events *ev, double test_ratio, int min_items, rf_split *out,
                        rf_err *err) {
    int rc = check_args(ev, out, err);
    if (rc) return rc;
    if (!(test_ratio > 0 && test_ratio < 1))
        return rf_err_set(err, RF_EINVAL, "split: test ratio %g not in (0, 1)", test_ratio);
    split_rule R = {.kind = SPLIT_RATIO};
    /* Rational ratio: exact for ratios with up to 9 decimals, so that
     * ceil(0.2 * 10) is 2 (in floating point 0.2 * n can land above n/5). */
    R.ratio_num = llround(test_ratio * (double)RATIO_DEN);
    R.min_items = min_items < 0 ? RF_SPLIT_MIN_ITEMS : min_items;
    return run_split(ev, &R, out, err);
}

int rf_split_time(const rf_events *ev, int64_t cutoff, rf_split *out, rf_err *err) {
    int rc = check_args(ev, out, err);
    if (rc) return rc;
    split_rule R = {.kind = SPLIT_TIME, .cutoff = cutoff};
    return run_split(ev, &R, out, err);
}

int rf_split_leave_last(const rf_events *ev, int min_items, rf_split *out, rf_err *err) {
    int rc = check_args(ev, out, err);
    if (rc) return rc;
    split_rule R = {.kind = SPLIT_LOO};
    R.min_items = min_items < 0 ? RF_SPLIT_MIN_ITEMS : min_items;
    return run_split(ev, &R, out, err);
}

int rf_split_kfold(const rf_events *ev, int k, int fold, uint64_t seed, rf_split *out,
                   rf_err *err) {
    int rc = check_args(ev, out, err);
    if (rc) return rc;
    if (k < 2) return rf_err_set(err, RF_EINVAL, "split: k-fold needs k >= 2, got %d", k);
    if (fold < 0 || fold >= k)
        return rf_err_set(err, RF_EINVAL, "split: fold %d not in [0, %d)", fold, k);
    split_rule R = {.kind = SPLIT_KFOLD, .k = k, .fold = fold, .seed = seed};
    return run_split(ev, &R, out, err);
}
