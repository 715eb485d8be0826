/* signif.c - is model A really better than model B on this data?
 *
 * Paired tests over users: every model is evaluated on the same users, so
 * each user gives one difference d_u = x_u(best) - x_u(other) of a
 * per-user metric. Two tests of mean(d) = 0, both two-sided:
 *   - the paired Student t-test: t = mean / (sd / sqrt(n)), n - 1 degrees
 *     of freedom, p = 2 (1 - F_t(|t|)) = I_{df/(df+t^2)}(df/2, 1/2), with
 *     the regularised incomplete beta function I computed here (no libm
 *     routine exists for it);
 *   - a seeded paired bootstrap: resample the users with replacement B
 *     times and count how often the resampled mean lies at least |mean|
 *     away from the observed mean (the shifted-null form), p = (1 + count)
 *     / (B + 1).
 * The t-test is exact for normal differences and close for large n; the
 * bootstrap makes no normality assumption, which matters for metrics with
 * many zeros (HR, P at small K). Both are printed; marks use one of them.
 *
 * DESIGN: rf_eval_compare runs every comparison (metric x K x model) off
 * the same resamples: one index draw per (resample, position) feeds all
 * difference columns at once from a users x comparisons matrix, so a
 * resample costs n random numbers plus n contiguous row reads. Resample b
 * always draws from rf_rng_stream(seed, b) and sums in draw order, so the
 * p-values do not depend on the thread count (threads split the
 * resamples; their exceedance counts are integers) and equal those of
 * rf_bootstrap_paired on the same two columns.
 *
 * The incomplete beta uses the continued fraction of Numerical Recipes
 * (modified Lentz) on whichever side of the mean converges fast, with
 * the prefactor x^a (1-x)^b / (a B(a,b)); log B is computed as R's lbeta
 * does, so that many users (df = a = 10^5..10^7) keep full precision. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"

/* Continued fraction for I_x(a, b), valid for x < (a + 1) / (a + b + 2);
 * y = 1 - x. The first term 1 - (a+b)x/(a+1) is formed as
 * (1 - b + (a+b)y)/(a+1), which does not cancel when a is large and x
 * near 1 (the t distribution with many degrees of freedom). */
static double betacf(double a, double b, double x, double y) {
    const double fpmin = 1e-300, eps = 1e-16;
    const int max_iter = 100000;
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = x > 0.5 ? (1.0 - b + qab * y) / qap : 1.0 - qab * x / qap;
    if (fabs(d) < fpmin)
        d = fpmin;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= max_iter; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < fpmin)
            d = fpmin;
        c = 1.0 + aa / c;
        if (fabs(c) < fpmin)
            c = fpmin;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < fpmin)
            d = fpmin;
        c = 1.0 + aa / c;
        if (fabs(c) < fpmin)
            c = fpmin;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < eps)
            break;
    }
    return h;
}

/* lgamma(x) - Stirling's approximation, for x >= 10 (the Stirling
 * series; the error of the last term kept is below 1e-17 there). */
static double lgamma_corr(double x) {
    double x2 = 1.0 / (x * x);
    return (1.0 / 12 -
            x2 * (1.0 / 360 - x2 * (1.0 / 1260 - x2 * (1.0 / 1680 - x2 * (1.0 / 1188 -
                                                                     x2 * (691.0 / 360360))))) ) /
           x;
}

/* log B(a, b) without the cancellation of lgamma(a + b) - lgamma(a) -
 * lgamma(b) when an argument is large (as R's lbeta does): with p <= q,
 * the Stirling parts cancel analytically and only the small corrections
 * are subtracted. */
static double lbeta(double a, double b) {
    const double ln_sqrt_2pi = 0.918938533204672741780329736406;
    double p = a < b ? a : b, q = a < b ? b : a;
    if (p >= 10) {
        double corr = lgamma_corr(p) + lgamma_corr(q) - lgamma_corr(p + q);
        return -0.5 * log(q) + ln_sqrt_2pi + corr + (p - 0.5) * log(p / (p + q)) +
               q * log1p(-p / (p + q));
    }
    if (q >= 10) {
        double corr = lgamma_corr(q) - lgamma_corr(p + q);
        return lgamma(p) + corr + p - p * log(p + q) + (q - 0.5) * log1p(-p / (p + q));
    }
    return lgamma(p) + lgamma(q) - lgamma(p + q);
}

/* I_x(a, b) with y = 1 - x given separately, so that x near 1 (the t
 * distribution with many degrees of freedom) keeps its precision. */
static double betainc2(double a, double b, double x, double y) {
    if (x == 0)
        return 0.0;
    if (y == 0)
        return 1.0;
    double lx = x < 0.5 ? log(x) : log1p(-y), ly = y < 0.5 ? log(y) : log1p(-x);
    double bt = exp(a * lx + b * ly - lbeta(a, b));
    if (x < (a + 1.0) / (a + b + 2.0))
        return bt * betacf(a, b, x, y) / a;
    return 1.0 - bt * betacf(b, a, y, x) / b;
}

double rf_betainc(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
        return NAN;
    return betainc2(a, b, x, 1.0 - x);
}

/* P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2), with 1 - x = t^2/(df+t^2)
 * computed directly. */
static double t_tail2(double t, double df) {
    double den = df + t * t;
    return betainc2(0.5 * df, 0.5, df / den, t * t / den);
}

double rf_student_t_cdf(double t, double df) {
    if (isnan(t) || !(df > 0))
        return NAN;
    if (isinf(t))
        return t > 0 ? 1.0 : 0.0;
    double tail = 0.5 * t_tail2(t, df); /* P(T > |t|) */
    return t >= 0 ? 1.0 - tail : tail;
}

/* Two-sided p-value of a t statistic: I_{df/(df+t^2)}(df/2, 1/2), without
 * the cancellation of 2 (1 - cdf). */
static double t_two_sided(double t, double df) {
    if (isnan(t))
        return NAN;
    if (isinf(t))
        return 0.0;
    return t_tail2(t, df);
}

/* Mean, t statistic and two-sided p of the differences x[i*xs] - y[i*ys]. */
static void ttest_core(const double *x, size_t xs, const double *y, size_t ys, int64_t n,
                       double *mean_out, double *t_out, double *p_out) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += x[(size_t)i * xs] - y[(size_t)i * ys];
    double mean = s / (double)n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = x[(size_t)i * xs] - y[(size_t)i * ys] - mean;
        ss += e * e;
    }
    double var = ss / (double)(n - 1);
    double t, p;
    if (!(var > 0)) {
        t = mean == 0 ? 0.0 : (mean > 0 ? INFINITY : -INFINITY);
        p = mean == 0 ? 1.0 : 0.0;
    } else {
        t = mean / sqrt(var / (double)n);
        p = t_two_sided(t, (double)(n - 1));
    }
    *mean_out = mean;
    *t_out = t;
    *p_out = p;
}

int rf_ttest_paired(const double *x, const double *y, int64_t n, double *t, double *p) {
    if (!x || !y || n < 2)
        return RF_EINVAL;
    double mean;
    ttest_core(x, 1, y, 1, n, &mean, t, p);
    return 0;
}

/* Bootstrap counts for `nc` difference columns of D (n rows, row-major
 * nc wide) with observed means mean[]: cnt[c] = #{b : |mean_b - mean| >=
 * |mean|}. Parallel over resamples, deterministic. */
static int bootstrap_counts(const double *D, int64_t n, int nc, const double *mean, int resamples,
                            uint64_t seed, int64_t *cnt) {
    const int T = rf_threads();
    int64_t *tcnt = rf_calloc((size_t)T * (size_t)nc, sizeof *tcnt);
    double *acc = rf_malloc_array((size_t)T * (size_t)nc, sizeof *acc);
    if (!tcnt || !acc) {
        rf_free(tcnt);
        rf_free(acc);
        return RF_ENOMEM;
    }
#pragma omp parallel num_threads(T)
    {
        const int t = rf_thread_id();
        double *a = acc + (size_t)t * nc;
        int64_t *tc = tcnt + (size_t)t * nc;
#pragma omp for schedule(static)
        for (int b = 0; b < resamples; b++) {
            rf_rng rng;
            rf_rng_stream(&rng, seed, (uint64_t)b);
            for (int c = 0; c < nc; c++)
                a[c] = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const double *row = D + (size_t)rf_rng_below(&rng, (uint64_t)n) * nc;
                for (int c = 0; c < nc; c++)
                    a[c] += row[c];
            }
            for (int c = 0; c < nc; c++)
                if (fabs(a[c] / (double)n - mean[c]) >= fabs(mean[c]))
                    tc[c]++;
        }
    }
    for (int c = 0; c < nc; c++) {
        cnt[c] = 0;
        for (int t = 0; t < T; t++)
            cnt[c] += tcnt[(size_t)t * nc + c];
    }
    rf_free(tcnt);
    rf_free(acc);
    return 0;
}

double rf_bootstrap_paired(const double *x, const double *y, int64_t n, int resamples,
                           uint64_t seed) {
    if (!x || !y || n < 1 || resamples < 1)
        return NAN;
    double *d = rf_malloc_array((size_t)n, sizeof *d);
    if (!d)
        return NAN;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d[i] = x[i] - y[i];
        s += d[i];
    }
    double mean = s / (double)n;
    double p = 1.0;
    if (mean != 0.0) {
        int64_t cnt;
        if (bootstrap_counts(d, n, 1, &mean, resamples, seed, &cnt) != 0)
            p = NAN;
        else
            p = (1.0 + (double)cnt) / (1.0 + (double)resamples);
    }
    rf_free(d);
    return p;
}

void rf_signif_opts_default(rf_signif_opts *o) {
    o->marks = RF_SIG_T;
    o->resamples = 1000;
    o->seed = 1;
}

void rf_signif_free(rf_signif *s) {
    if (!s)
        return;
    rf_free(s->best);
    rf_free(s->cells);
    s->best = NULL;
    s->cells = NULL;
}

const rf_signif_cell *rf_signif_get(const rf_signif *s, int ki, int metric, int j) {
    if (!s || !s->cells || ki < 0 || ki >= s->n_ks || metric < 0 || metric >= RF_M_PER_USER ||
        j < 0 || j >= s->n_models)
        return NULL;
    size_t row = (size_t)ki * RF_M_PER_USER + (size_t)metric;
    if (s->best[row] < 0)
        return NULL;
    return &s->cells[row * (size_t)s->n_models + (size_t)j];
}

static int mark_of(double p) {
    if (isnan(p))
        return 0;
    return p < 0.01 ? 2 : p < 0.05 ? 1 : 0;
}

int rf_eval_compare(const rf_eval_result *res, int n, const rf_signif_opts *o, rf_signif *out,
                    rf_err *err) {
    memset(out, 0, sizeof *out);
    rf_signif_opts dflt;
    if (!o) {
        rf_signif_opts_default(&dflt);
        o = &dflt;
    }
    if (!res || n < 2)
        return rf_err_set(err, RF_EINVAL, "significance: needs at least 2 results");
    if (o->resamples < 1)
        return rf_err_set(err, RF_EINVAL, "significance: %d bootstrap resamples", o->resamples);
    const rf_eval_result *r0 = &res[0];
    const int64_t nu = r0->n_users;
    for (int j = 1; j < n; j++) {
        if (res[j].n_users != nu || res[j].n_ks != r0->n_ks ||
            memcmp(res[j].ks, r0->ks, (size_t)r0->n_ks * sizeof *r0->ks) != 0 ||
            (nu > 0 && (!res[j].users || !r0->users ||
                        memcmp(res[j].users, r0->users, (size_t)nu * sizeof *r0->users) != 0)))
            return rf_err_set(err, RF_EINVAL,
                              "significance: %s and %s were not evaluated on the same users and "
                              "cut-offs",
                              r0->model, res[j].model);
    }
    for (int j = 0; j < n; j++)
        if (nu > 0 && !res[j].per_user)
            return rf_err_set(err, RF_EINVAL, "significance: %s has no per-user values",
                              res[j].model);
    const int n_ks = r0->n_ks;
    const size_t n_rows = (size_t)n_ks * RF_M_PER_USER;
    out->n_models = n;
    out->n_ks = n_ks;
    out->n_pairs = nu;
    out->opts = *o;
    out->best = rf_malloc_array(n_rows, sizeof *out->best);
    out->cells = rf_malloc_array(n_rows * (size_t)n, sizeof *out->cells);
    if (!out->best || !out->cells) {
        rf_signif_free(out);
        return rf_err_set(err, RF_ENOMEM, "significance: out of memory");
    }
    const size_t stride = (size_t)n_ks * RF_M_PER_USER;

    /* Rows to compare and their best model; count the comparisons. */
    int nc = 0;
    for (int ki = 0; ki < n_ks; ki++)
        for (int mt = 0; mt < RF_M_PER_USER; mt++) {
            size_t row = (size_t)ki * RF_M_PER_USER + mt;
            out->best[row] = -1;
            int all = nu >= 2;
            for (int j = 0; j < n; j++)
                all &= res[j].has[mt];
            if (!all || (!rf_metric_at_k(mt) && ki > 0))
                continue;
            int best = 0;
            for (int j = 1; j < n; j++) {
                double v = res[j].value[ki][mt], bv = res[best].value[ki][mt];
                if (rf_metric_higher_better(mt) ? v > bv : v < bv)
                    best = j;
            }
            out->best[row] = best;
            nc += n - 1;
        }
    if (nc == 0)
        return 0;

    /* Difference matrix (users x comparisons), t-tests, then the shared
     * bootstrap. */
    double *D = rf_malloc_array((size_t)nu * (size_t)nc, sizeof *D);
    double *mean = rf_malloc_array((size_t)nc, sizeof *mean);
    int64_t *cnt = rf_malloc_array((size_t)nc, sizeof *cnt);
    size_t *cell_of = rf_malloc_array((size_t)nc, sizeof *cell_of);
    if (!D || !mean || !cnt || !cell_of) {
        rf_free(D);
        rf_free(mean);
        rf_free(cnt);
        rf_free(cell_of);
        rf_signif_free(out);
        return rf_err_set(err, RF_ENOMEM, "significance: out of memory for %lld x %d differences",
                          (long long)nu, nc);
    }
    int c = 0;
    for (size_t row = 0; row < n_rows; row++) {
        int best = out->best[row];
        if (best < 0)
            continue;
        const int ki = (int)(row / RF_M_PER_USER), mt = (int)(row % RF_M_PER_USER);
        const size_t off = (size_t)ki * RF_M_PER_USER + (size_t)mt;
        const double *xb = res[best].per_user + off;
        for (int j = 0; j < n; j++) {
            rf_signif_cell *cell = &out->cells[row * (size_t)n + (size_t)j];
            if (j == best) {
                cell->p_t = cell->p_boot = NAN;
                cell->diff = 0.0;
                cell->mark = -1;
                continue;
            }
            const double *xj = res[j].per_user + off;
            double tstat;
            ttest_core(xb, stride, xj, stride, nu, &cell->diff, &tstat, &cell->p_t);
            for (int64_t i = 0; i < nu; i++)
                D[(size_t)i * nc + c] = xb[(size_t)i * stride] - xj[(size_t)i * stride];
            mean[c] = cell->diff;
            cell_of[c] = row * (size_t)n + (size_t)j;
            c++;
        }
    }
    int rc = bootstrap_counts(D, nu, nc, mean, o->resamples, o->seed, cnt);
    if (rc == 0)
        for (int k = 0; k < nc; k++) {
            rf_signif_cell *cell = &out->cells[cell_of[k]];
            cell->p_boot =
                mean[k] == 0.0 ? 1.0 : (1.0 + (double)cnt[k]) / (1.0 + (double)o->resamples);
            cell->mark = mark_of(o->marks == RF_SIG_BOOTSTRAP ? cell->p_boot : cell->p_t);
        }
    rf_free(D);
    rf_free(mean);
    rf_free(cnt);
    rf_free(cell_of);
    if (rc) {
        rf_signif_free(out);
        return rf_err_set(err, RF_ENOMEM, "significance: out of memory");
    }
    return 0;
}
