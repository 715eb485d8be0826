/* ranker.c - the public face of the ranker library (ranker.h): options
 * (defaults, checks, "key=value" parsing from one parameter table),
 * input validation, dispatch by kind to gbdt.c / linear.c, the stream
 * format, and NDCG.
 *
 * Stream layout (inside the caller's binfile): u32 RANKER_FORMAT, u32
 * kind, i64 n_feats, the options (i64 / f64 fields in table order, then
 * the seed), then the kind's payload (gbdt.c, linear.c). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/params.h"
#include "recfuse/parallel.h"

#define RANKER_FORMAT 1

/* The options as parsed: the seed goes through a double (exact up to
 * 2^53), since parameter tables know int and double fields only. */
typedef struct opts_text {
    rf_ranker_opts o;
    double seed;
} opts_text;

#define OFF(f) offsetof(opts_text, o.f)
/* Entries before the seed are fields of rf_ranker_opts (saved in this
 * order); the seed is last. */
static const rf_param_def opts_table[] = {
    {"kind", RF_P_ENUM, OFF(kind), 0, 0, 1, "gbdt,linear", "ranker: trees or linear"},
    {"trees", RF_P_INT, OFF(n_trees), 300, 1, 100000, NULL, "boosting rounds (max with early stop)"},
    {"leaves", RF_P_INT, OFF(max_leaves), 31, 2, 4096, NULL, "leaves per tree"},
    {"min_leaf", RF_P_INT, OFF(min_leaf), 20, 1, 1e9, NULL, "fewest rows in a leaf"},
    {"min_hess", RF_P_DOUBLE, OFF(min_hess), 1e-3, 0, 1e9, NULL, "smallest hessian sum in a leaf"},
    {"lr", RF_P_DOUBLE, OFF(learning_rate), 0.05, 1e-6, 1, NULL, "shrinkage"},
    {"l2", RF_P_DOUBLE, OFF(l2), 1, 0, 1e9, NULL, "L2 on leaf values"},
    {"bins", RF_P_INT, OFF(max_bins), 64, 2, 255, NULL, "histogram bins per feature"},
    {"ff", RF_P_DOUBLE, OFF(feature_fraction), 1, 1e-9, 1, NULL, "share of features per tree"},
    {"rf", RF_P_DOUBLE, OFF(row_fraction), 1, 1e-9, 1, NULL, "share of groups per tree"},
    {"ndcg_at", RF_P_INT, OFF(ndcg_at), 10, 0, 1e9, NULL, "NDCG truncation (0 = full list)"},
    {"early_stop", RF_P_INT, OFF(early_stop), 30, 0, 1e9, NULL,
     "rounds without a better valid NDCG before stopping (0 = off)"},
    {"epochs", RF_P_INT, OFF(epochs), 20, 1, 100000, NULL, "linear: SGD epochs"},
    {"lin_lr", RF_P_DOUBLE, OFF(lin_lr), 0.05, 1e-9, 100, NULL, "linear: learning rate"},
    {"lin_l2", RF_P_DOUBLE, OFF(lin_l2), 1e-4, 0, 100, NULL, "linear: L2"},
    {"max_depth", RF_P_INT, OFF(max_depth), 6, 0, 64, NULL,
     "deepest leaf (0 = unlimited); prediction takes this many steps per tree"},
    {"seed", RF_P_DOUBLE, offsetof(opts_text, seed), 1, 0, 9007199254740992.0, NULL,
     "random seed (integer)"},
    {0},
};
#undef OFF

void rf_ranker_opts_default(rf_ranker_opts *o) {
    opts_text t;
    memset(&t, 0, sizeof t);
    rf_params_defaults(opts_table, &t);
    t.o.seed = (uint64_t)t.seed;
    *o = t.o;
}

const char *rf_ranker_opts_check(const rf_ranker_opts *o) {
    if (o->kind != RF_RANKER_GBDT && o->kind != RF_RANKER_LINEAR) return "kind: not gbdt or linear";
    if (o->n_trees < 1) return "trees: must be >= 1";
    if (o->max_leaves < 2 || o->max_leaves > 4096) return "leaves: must be in [2, 4096]";
    if (o->min_leaf < 1) return "min_leaf: must be >= 1";
    if (!(o->min_hess >= 0)) return "min_hess: must be >= 0";
    if (!(o->learning_rate > 0 && o->learning_rate <= 1)) return "lr: must be in (0, 1]";
    if (!(o->l2 >= 0) || !isfinite(o->l2)) return "l2: must be finite and >= 0";
    if (o->max_bins < 2 || o->max_bins > 255) return "bins: must be in [2, 255]";
    if (!(o->feature_fraction > 0 && o->feature_fraction <= 1)) return "ff: must be in (0, 1]";
    if (!(o->row_fraction > 0 && o->row_fraction <= 1)) return "rf: must be in (0, 1]";
    if (o->ndcg_at < 0) return "ndcg_at: must be >= 0";
    if (o->early_stop < 0) return "early_stop: must be >= 0";
    if (o->epochs < 1) return "epochs: must be >= 1";
    if (!(o->lin_lr > 0) || !isfinite(o->lin_lr)) return "lin_lr: must be > 0";
    if (!(o->lin_l2 >= 0) || !isfinite(o->lin_l2)) return "lin_l2: must be >= 0";
    if (o->max_depth < 0 || o->max_depth > 64) return "max_depth: must be in [0, 64]";
    return NULL;
}

int rf_ranker_opts_parse(rf_ranker_opts *o, const char *kvs, rf_err *err) {
    opts_text t = {.o = *o, .seed = (double)o->seed};
    if (rf_params_apply(opts_table, &t, kvs, err)) {
        if (err) err->code = RF_EINVAL;
        return rf_err_prefix(err, "ranker option");
    }
    if (t.seed != (double)o->seed) { /* set by kvs (a seed above 2^53 stays as it was) */
        if (t.seed != floor(t.seed))
            return rf_err_set(err, RF_EINVAL, "ranker option seed: %g is not an integer", t.seed);
        t.o.seed = (uint64_t)t.seed;
    }
    const char *bad = rf_ranker_opts_check(&t.o);
    if (bad) return rf_err_set(err, RF_EINVAL, "ranker option %s", bad);
    *o = t.o;
    return 0;
}

/* ---- data validation ------------------------------------------------------ */

static int check_data(const rf_rank_data *d, const char *what, rf_err *err) {
    if (!d || d->n_rows < 0 || d->n_feats < 1 || d->n_groups < 0 || !d->group ||
        (d->n_rows > 0 && (!d->x || !d->label)))
        return rf_err_set(err, RF_EINVAL, "ranker: %s data: missing arrays or bad sizes", what);
    if (d->n_rows > INT32_MAX)
        return rf_err_set(err, RF_EINVAL, "ranker: %s data: %lld rows (at most %d)", what,
                          (long long)d->n_rows, INT32_MAX);
    if (d->group[0] != 0)
        return rf_err_set(err, RF_EINVAL, "ranker: %s data: group offset 0 is %lld, not 0", what,
                          (long long)d->group[0]);
    for (int64_t q = 0; q < d->n_groups; q++)
        if (d->group[q + 1] < d->group[q] || d->group[q + 1] > d->n_rows)
            return rf_err_set(err, RF_EINVAL,
                              "ranker: %s data: group %lld: offsets %lld..%lld out of order "
                              "or past %lld rows",
                              what, (long long)q, (long long)d->group[q],
                              (long long)d->group[q + 1], (long long)d->n_rows);
    if (d->group[d->n_groups] != d->n_rows)
        return rf_err_set(err, RF_EINVAL, "ranker: %s data: groups end at row %lld, not at %lld",
                          what, (long long)d->group[d->n_groups], (long long)d->n_rows);
    int64_t q = 0;
    for (int64_t i = 0; i < d->n_rows; i++) {
        while (d->group[q + 1] <= i) q++;
        float l = d->label[i];
        if (!(l >= 0 && l <= RK_MAX_LABEL)) /* also NAN; the gain 2^l - 1 must stay finite */
            return rf_err_set(err, RF_EINVAL,
                              "ranker: %s data: row %lld (group %lld): label %g is not in [0, %d]",
                              what, (long long)i, (long long)q, (double)l, RK_MAX_LABEL);
    }
    return 0;
}

/* ---- lifecycle and dispatch ---------------------------------------------- */

void rf_ranker_free(rf_ranker *r) {
    if (!r) return;
    rf_free(r->node_off);
    rf_free(r->leaf_off);
    rf_free(r->nodes);
    rf_free(r->gain);
    rf_free(r->leaf);
    rf_free(r->pn);
    rf_free(r->pval);
    rf_free(r->depth);
    rf_free(r->w);
    rf_free(r->mean);
    rf_free(r->inv_std);
    rf_free(r);
}

int rf_ranker_fit(const rf_ranker_opts *o, const rf_rank_data *train, const rf_rank_data *valid,
                  rf_ranker **out, rf_err *err) {
    *out = NULL;
    const char *bad = rf_ranker_opts_check(o);
    if (bad) return rf_err_set(err, RF_EINVAL, "ranker option %s", bad);
    int rc;
    if ((rc = check_data(train, "train", err))) return rc;
    if (train->n_rows == 0) return rf_err_set(err, RF_EINVAL, "ranker: train data has no rows");
    if (valid) {
        if ((rc = check_data(valid, "valid", err))) return rc;
        if (valid->n_feats != train->n_feats)
            return rf_err_set(err, RF_EINVAL,
                              "ranker: valid data has %d features, train data %d",
                              (int)valid->n_feats, (int)train->n_feats);
    }
    rf_ranker *r = rf_calloc(1, sizeof *r);
    if (!r) return rf_err_set(err, RF_ENOMEM, "ranker: out of memory");
    r->kind = o->kind;
    r->n_feats = train->n_feats;
    r->opts = *o;
    rc = o->kind == RF_RANKER_GBDT ? rk_gbdt_fit(o, train, valid, r, err)
                                   : rk_linear_fit(o, train, valid, r, err);
    if (rc) {
        rf_ranker_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int32_t rf_ranker_n_feats(const rf_ranker *r) { return r->n_feats; }
rf_ranker_kind rf_ranker_get_kind(const rf_ranker *r) { return r->kind; }
int rf_ranker_n_trees(const rf_ranker *r) { return r->kind == RF_RANKER_GBDT ? r->n_trees : 0; }

void rf_ranker_predict(const rf_ranker *r, const float *x, int64_t n, float *out) {
    if (r->kind == RF_RANKER_GBDT)
        rk_gbdt_predict(r, x, n, out);
    else
        rk_linear_predict(r, x, n, out);
}

void rf_ranker_contrib(const rf_ranker *r, const float *x, float *contrib, float *bias) {
    if (r->kind == RF_RANKER_GBDT)
        rk_gbdt_contrib(r, x, contrib, bias);
    else
        rk_linear_contrib(r, x, contrib, bias);
}

void rf_ranker_importance(const rf_ranker *r, double *gain) {
    for (int32_t f = 0; f < r->n_feats; f++) gain[f] = 0;
    if (r->kind == RF_RANKER_LINEAR) {
        for (int32_t f = 0; f < r->n_feats; f++) gain[f] = fabs((double)r->w[f]);
        return;
    }
    int64_t nn = r->node_off[r->n_trees];
    for (int64_t k = 0; k < nn; k++) gain[r->nodes[k].feat] += r->gain[k];
}

/* ---- save / load ------------------------------------------------------------ */

int rf_ranker_save(const rf_ranker *r, rf_writer *w, rf_err *err) {
    int rc = rf_writer_u32(w, RANKER_FORMAT);
    rc |= rf_writer_u32(w, (uint32_t)r->kind);
    rc |= rf_writer_i64(w, r->n_feats);
    for (const rf_param_def *d = opts_table; d->offset < sizeof(rf_ranker_opts); d++) {
        const char *p = (const char *)&r->opts + d->offset;
        if (d->type == RF_P_DOUBLE)
            rc |= rf_writer_f64(w, *(const double *)p);
        else
            rc |= rf_writer_i64(w, *(const int *)p);
    }
    rc |= rf_writer_i64(w, (int64_t)r->opts.seed);
    if (rc == 0)
        rc = r->kind == RF_RANKER_GBDT ? rk_gbdt_save(r, w) : rk_linear_save(r, w);
    return rc ? rf_err_set(err, RF_EIO, "ranker: write failed") : 0;
}

int rf_ranker_load(rf_reader *rd, rf_ranker **out, rf_err *err) {
    *out = NULL;
    uint32_t ver, kind;
    int64_t nf;
    int rc;
    if ((rc = rf_reader_u32(rd, &ver, err)) || (rc = rf_reader_u32(rd, &kind, err)) ||
        (rc = rf_reader_i64(rd, &nf, err)))
        return rc;
    if (ver != RANKER_FORMAT)
        return rf_err_set(err, RF_EFORMAT, "ranker: unknown format version %u", ver);
    if (kind > RF_RANKER_LINEAR) return rf_err_set(err, RF_EFORMAT, "ranker: unknown kind %u", kind);
    if (nf < 1 || nf > 100000000)
        return rf_err_set(err, RF_EFORMAT, "ranker: bad feature count %lld", (long long)nf);
    rf_ranker *r = rf_calloc(1, sizeof *r);
    if (!r) return rf_err_set(err, RF_ENOMEM, "ranker: out of memory");
    r->kind = (rf_ranker_kind)kind;
    r->n_feats = (int32_t)nf;
    for (const rf_param_def *d = opts_table; d->offset < sizeof(rf_ranker_opts) && !rc; d++) {
        char *p = (char *)&r->opts + d->offset;
        if (d->type == RF_P_DOUBLE) {
            rc = rf_reader_f64(rd, (double *)p, err);
        }
        else {
            int64_t v = 0;
            rc = rf_reader_i64(rd, &v, err);
            if (!rc && (v < INT32_MIN || v > INT32_MAX))
                rc = rf_err_set(err, RF_EFORMAT, "ranker: option %s out of range", d->name);
            *(int *)p = (int)v;
        }
    }
    int64_t seed = 0;
    if (!rc) rc = rf_reader_i64(rd, &seed, err);
    r->opts.seed = (uint64_t)seed;
    const char *bad;
    if (!rc && (bad = rf_ranker_opts_check(&r->opts)))
        rc = rf_err_set(err, RF_EFORMAT, "ranker: stored option %s", bad);
    if (!rc && r->opts.kind != r->kind)
        rc = rf_err_set(err, RF_EFORMAT, "ranker: stored kind disagrees with its options");
    if (!rc) rc = kind == RF_RANKER_GBDT ? rk_gbdt_load(rd, r, err) : rk_linear_load(rd, r, err);
    if (rc) {
        rf_ranker_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- metric -------------------------------------------------------------------- */

double rf_rank_ndcg(const rf_rank_data *d, const float *scores, int k) {
    int64_t maxg = 1;
    for (int64_t q = 0; q < d->n_groups; q++)
        if (d->group[q + 1] - d->group[q] > maxg) maxg = d->group[q + 1] - d->group[q];
    int32_t *order = rf_malloc_array((size_t)maxg, sizeof *order);
    double *buf = rf_malloc_array((size_t)maxg * 2, sizeof *buf);
    if (!order || !buf) {
        rf_free(order);
        rf_free(buf);
        return NAN;
    }
    double s = 0;
    int64_t c = 0;
    for (int64_t q = 0; q < d->n_groups; q++) {
        int64_t a = d->group[q], n = d->group[q + 1] - a;
        for (int64_t i = 0; i < n; i++) buf[maxg + i] = scores[a + i];
        double v = rk_group_ndcg(d->label + a, buf + maxg, n, k, order, buf);
        if (v >= 0) {
            s += v;
            c++;
        }
    }
    rf_free(order);
    rf_free(buf);
    return c ? s / (double)c : 0;
}
