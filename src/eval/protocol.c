/* protocol.c - evaluation protocols: which events train a model and which
 * ones it is judged on.
 *
 * A protocol names one of the splits of dataset.h (per-user chronological
 * ratio, global time cut-off, leave-last-out, user-stratified k-fold) with
 * its parameters, and knows how to cut a validation split out of a train
 * log with the same rule. Tuning fits on the validation split's train part
 * and scores on its test part, both inside the outer train part: the outer
 * test part is never looked at until the final evaluation.
 *
 * DESIGN: the validation rule is "the same rule applied to train", as the
 * benchmark reference specifies for Protocol A. The one exception is an
 * explicit time cut-off, which lies after every train event; validation
 * then cuts train at the (1 - test_ratio) quantile of its own event times.
 * A k-fold validation uses fold 0 of a k-fold of the train part with the
 * next seed, i.e. 1/k of it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/mem.h"
#include "recfuse/util.h"

void rf_protocol_default(rf_protocol *p) {
    memset(p, 0, sizeof *p);
    p->kind = RF_PROTO_USER;
    p->test_ratio = 0.2;
    p->min_items = RF_SPLIT_MIN_ITEMS;
    p->folds = 5;
    p->fold = 0;
    p->seed = 1;
}

static const char *const g_kinds[] = {"user", "time", "loo", "kfold"};

int rf_protocol_parse(const char *name) {
    if (!name)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(name, g_kinds[i]) == 0)
            return i;
    return -1;
}

const char *rf_protocol_name(rf_protocol_kind k) {
    return (int)k >= 0 && (int)k < 4 ? g_kinds[k] : "?";
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Event time at the (1 - ratio) quantile. */
static int quantile_cutoff(const rf_events *ev, double ratio, int64_t *cut, rf_err *err) {
    if (ev->n == 0)
        return rf_err_set(err, RF_EINVAL, "no events to split");
    int64_t *ts = rf_malloc_array((size_t)ev->n, sizeof *ts);
    if (!ts)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    memcpy(ts, ev->ts, (size_t)ev->n * sizeof *ts);
    qsort(ts, (size_t)ev->n, sizeof *ts, cmp_i64);
    int64_t i = (int64_t)floor((double)ev->n * (1.0 - ratio));
    if (i >= ev->n)
        i = ev->n - 1;
    if (i < 0)
        i = 0;
    *cut = ts[i];
    rf_free(ts);
    return 0;
}

static int check(const rf_protocol *p, rf_err *err) {
    if (!(p->test_ratio > 0 && p->test_ratio < 1))
        return rf_err_set(err, RF_EINVAL, "protocol: test ratio %g outside (0, 1)", p->test_ratio);
    if (p->kind == RF_PROTO_KFOLD && (p->folds < 2 || p->fold < 0 || p->fold >= p->folds))
        return rf_err_set(err, RF_EINVAL, "protocol: fold %d of %d", p->fold, p->folds);
    if ((int)p->kind < 0 || (int)p->kind > RF_PROTO_KFOLD)
        return rf_err_set(err, RF_EINVAL, "protocol: unknown kind %d", (int)p->kind);
    return 0;
}

/* The split itself; `cutoff_ok` 0 forces the quantile cut. */
static int do_split(const rf_events *ev, const rf_protocol *p, int fold, uint64_t seed,
                    int cutoff_ok, rf_split *out, char *detail, size_t dsize, rf_err *err) {
    char buf[256] = "";
    int rc;
    switch (p->kind) {
    case RF_PROTO_USER:
        rc = rf_split_user_ratio(ev, p->test_ratio, p->min_items, out, err);
        snprintf(buf, sizeof buf, "test_ratio=%g min_items=%d", p->test_ratio, p->min_items);
        break;
    case RF_PROTO_LOO:
        rc = rf_split_leave_last(ev, p->min_items, out, err);
        snprintf(buf, sizeof buf, "min_items=%d", p->min_items);
        break;
    case RF_PROTO_KFOLD:
        rc = rf_split_kfold(ev, p->folds, fold, seed, out, err);
        snprintf(buf, sizeof buf, "folds=%d fold=%d seed=%llu", p->folds, fold,
                 (unsigned long long)seed);
        break;
    default: {
        int64_t cut = p->cutoff;
        int given = p->has_cutoff && cutoff_ok;
        if (!given && (rc = quantile_cutoff(ev, p->test_ratio, &cut, err)))
            return rc;
        char tb[32];
        rf_format_time(cut, tb, sizeof tb);
        snprintf(buf, sizeof buf, "cutoff=%s (%lld)%s", tb, (long long)cut,
                 given ? "" : " from test_ratio");
        rc = rf_split_time(ev, cut, out, err);
        break;
    }
    }
    if (detail && dsize)
        snprintf(detail, dsize, "%s", buf);
    return rc;
}

int rf_protocol_split(const rf_events *ev, const rf_protocol *p, rf_split *out, char *detail,
                      size_t dsize, rf_err *err) {
    out->train = out->test = NULL;
    if (!ev || !p)
        return rf_err_set(err, RF_EINVAL, "protocol: no events");
    int rc = check(p, err);
    if (rc)
        return rc;
    return do_split(ev, p, p->fold, p->seed, 1, out, detail, dsize, err);
}

int rf_protocol_validation(const rf_events *train, const rf_protocol *p, rf_split *out,
                           char *detail, size_t dsize, rf_err *err) {
    out->train = out->test = NULL;
    if (!train || !p)
        return rf_err_set(err, RF_EINVAL, "protocol: no events");
    int rc = check(p, err);
    if (rc)
        return rc;
    char buf[256];
    rc = do_split(train, p, 0, p->seed + 1, 0, out, buf, sizeof buf, err);
    if (rc == 0 && detail && dsize)
        snprintf(detail, dsize, "validation of the train part: %s", buf);
    return rc;
}
