/* html.c - the evaluation report (report.h): the report JSON and the
 * self-contained HTML page drawn from it, with SVG charts written here.
 *
 * DESIGN: the HTML is rendered from the JSON object, never from the
 * results directly, so the page cannot show a number report.json does not
 * hold (the tests check the page's numbers against the JSON). Charts are
 * plain SVG elements built with a few helpers - "nice" 1-2-5 axis ticks,
 * bars, polylines, a legend - and every mark carries a <title> so hovering
 * shows the exact value. The page needs no script, font or network: CSS
 * is inline and colours come from a fixed colour-blind-friendly palette
 * (Tableau 10), one colour per model throughout the page. */
#include "recfuse/report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_int.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/util.h"
#include "recfuse/version.h"

static const char *const g_palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
#define N_PALETTE 10
#define TRAIN_COLOR "#9e9e9e"
#define RF_TUNE_MAX_RUNGS_LABELS 8

static const char *color(int i) { return g_palette[(i % N_PALETTE + N_PALETTE) % N_PALETTE]; }

/* ---- the report JSON --------------------------------------------------------- */

static int k_index(const rf_eval_result *r, int k) {
    for (int i = 0; i < r->n_ks; i++)
        if (r->ks[i] == k)
            return i;
    return -1;
}

/* 95% half-width of the mean of a per-user column. */
static double ci95(const rf_eval_result *r, int ki, int mt) {
    int64_t n = r->n_users;
    if (n < 2 || !r->per_user)
        return 0.0;
    const size_t stride = (size_t)r->n_ks * RF_M_PER_USER;
    const double *x = r->per_user + (size_t)ki * RF_M_PER_USER + (size_t)mt;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[(size_t)i * stride];
    double mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double e = x[(size_t)i * stride] - mean;
        ss += e * e;
    }
    return 1.96 * sqrt(ss / (double)(n - 1)) / sqrt((double)n);
}

static json_t *jreal(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int add_ci(json_t *model, const rf_eval_result *r) {
    json_t *ci = json_object();
    if (!ci)
        return -1;
    int bad = 0;
    char label[32];
    for (int ki = 0; ki < r->n_ks; ki++)
        for (int mt = 0; mt < RF_M_PER_USER; mt++) {
            if (!r->has[mt] || mt == RF_M_RMSE || mt == RF_M_MAE ||
                (!rf_metric_at_k(mt) && ki > 0))
                continue;
            rf_metric_label(mt, r->ks[ki], label, sizeof label);
            bad |= json_object_set_new(ci, label, jreal(ci95(r, ki, mt)));
        }
    bad |= json_object_set_new(model, "ci", ci);
    return bad ? -1 : 0;
}

static json_t *pr_curve(const rf_eval_result *res, int n) {
    json_t *c = json_object(), *ks = json_array(), *models = json_object();
    int bad = !c || !ks || !models;
    for (int ki = 0; !bad && ki < res[0].n_ks; ki++)
        bad |= json_array_append_new(ks, json_integer(res[0].ks[ki]));
    for (int j = 0; !bad && j < n; j++) {
        json_t *m = json_object(), *p = json_array(), *r = json_array();
        bad |= !m || !p || !r;
        for (int ki = 0; !bad && ki < res[j].n_ks; ki++) {
            bad |= json_array_append_new(p, jreal(res[j].value[ki][RF_M_PRECISION]));
            bad |= json_array_append_new(r, jreal(res[j].value[ki][RF_M_RECALL]));
        }
        if (!bad) {
            bad |= json_object_set_new(m, "precision", p);
            bad |= json_object_set_new(m, "recall", r);
            bad |= json_object_set_new(models, res[j].model, m);
        } else {
            json_decref(m);
            json_decref(p);
            json_decref(r);
        }
    }
    if (!bad) {
        bad |= json_object_set_new(c, "ks", ks);
        bad |= json_object_set_new(c, "models", models);
        if (!bad)
            return c;
        return json_decref(c), NULL;
    }
    json_decref(c);
    json_decref(ks);
    json_decref(models);
    return NULL;
}

/* Popularity bin of an item seen by p train users: 0 for none, b >= 1 for
 * p in [2^(b-1), 2^b - 1]. */
static int pop_bin(int64_t p) {
    int b = 0;
    while (p > 0) {
        b++;
        p >>= 1;
    }
    return b;
}

static json_t *pop_histogram(const rf_report_input *in) {
    const rf_dataset *d = in->train;
    const int32_t ni = d->n_items;
    int64_t maxp = 0;
    for (int32_t i = 0; i < ni; i++)
        if (rf_csr_row_len(d->iu, i) > maxp)
            maxp = rf_csr_row_len(d->iu, i);
    int nb = pop_bin(maxp) + 1;
    double *cnt = rf_calloc((size_t)nb, sizeof *cnt);
    json_t *h = json_object(), *bins = json_array(), *train = json_array(),
           *models = json_object();
    int bad = !cnt || !h || !bins || !train || !models;
    for (int b = 0; !bad && b < nb; b++) {
        json_t *o = json_object();
        int64_t lo = b == 0 ? 0 : (int64_t)1 << (b - 1), hi = b == 0 ? 0 : ((int64_t)1 << b) - 1;
        char label[48];
        if (lo == hi)
            snprintf(label, sizeof label, "%lld", (long long)lo);
        else
            snprintf(label, sizeof label, "%lld-%lld", (long long)lo, (long long)hi);
        bad |= !o;
        if (o) {
            bad |= json_object_set_new(o, "lo", json_integer(lo));
            bad |= json_object_set_new(o, "hi", json_integer(hi));
            bad |= json_object_set_new(o, "label", json_string(label));
            bad |= json_array_append_new(bins, o);
        }
    }
    /* what users consumed: share of train interactions per bin */
    double tot = 0;
    for (int32_t i = 0; i < ni; i++) {
        int64_t p = rf_csr_row_len(d->iu, i);
        if (!bad)
            cnt[pop_bin(p)] += (double)p;
        tot += (double)p;
    }
    for (int b = 0; !bad && b < nb; b++)
        bad |= json_array_append_new(train, json_real(tot > 0 ? cnt[b] / tot : 0));
    for (int j = 0; !bad && j < in->n; j++) {
        const rf_eval_result *r = &in->res[j];
        int ki = k_index(r, in->main_k);
        json_t *arr = json_array();
        bad |= !arr || ki < 0 || !r->exposure;
        if (bad) {
            json_decref(arr);
            break;
        }
        memset(cnt, 0, (size_t)nb * sizeof *cnt);
        double t = 0;
        const int32_t *ex = r->exposure + (size_t)ki * (size_t)r->n_exp_items;
        for (int32_t i = 0; i < r->n_exp_items && i < ni; i++) {
            cnt[pop_bin(rf_csr_row_len(d->iu, i))] += ex[i];
            t += ex[i];
        }
        for (int b = 0; b < nb; b++)
            bad |= json_array_append_new(arr, json_real(t > 0 ? cnt[b] / t : 0));
        bad |= json_object_set_new(models, r->model, arr);
    }
    rf_free(cnt);
    if (!bad) {
        bad |= json_object_set_new(h, "k", json_integer(in->main_k));
        bad |= json_object_set_new(h, "bins", bins);
        bad |= json_object_set_new(h, "train", train);
        bad |= json_object_set_new(h, "models", models);
        if (!bad)
            return h;
        json_decref(h);
        return NULL;
    }
    json_decref(h);
    json_decref(bins);
    json_decref(train);
    json_decref(models);
    return NULL;
}

static json_t *build_report(const rf_report_input *in, rf_err *err) {
    json_t *root = rf_eval_json_build(in->res, in->n, in->info, in->sig);
    if (!root) {
        rf_err_set(err, RF_ENOMEM, "report: out of memory");
        return NULL;
    }
    int bad = 0;
    char when[32];
    rf_format_time(rf_now(), when, sizeof when);
    bad |= json_object_set_new(root, "title",
                               json_string(in->title ? in->title : "recfuse evaluation report"));
    bad |= json_object_set_new(root, "generated", json_string(when));
    bad |= json_object_set_new(root, "main_k", json_integer(in->main_k));
    json_t *models = json_object_get(root, "models");
    for (int j = 0; !bad && j < in->n; j++)
        bad |= add_ci(json_array_get(models, (size_t)j), &in->res[j]);
    json_t *c = bad ? NULL : pr_curve(in->res, in->n);
    bad |= !c || json_object_set_new(root, "pr_curve", c);
    json_t *h = bad ? NULL : pop_histogram(in);
    bad |= !h || json_object_set_new(root, "popularity_histogram", h);
    json_t *tun = json_array();
    bad |= !tun;
    for (int i = 0; !bad && i < in->n_tune; i++) {
        json_error_t je;
        json_t *t = json_load_file(in->tune_paths[i], 0, &je);
        if (!t || !json_is_object(t) || !json_is_array(json_object_get(t, "trials"))) {
            rf_log(RF_LOG_WARN, "report.tune", "path=%s msg=\"not a tune report: %s\"",
                   in->tune_paths[i], t ? "no trials" : je.text);
            json_decref(t);
            continue;
        }
        bad |= json_array_append_new(tun, t);
    }
    if (!bad)
        bad |= json_object_set_new(root, "tuning", tun);
    else
        json_decref(tun);
    if (bad) {
        json_decref(root);
        rf_err_set(err, RF_ENOMEM, "report: out of memory");
        return NULL;
    }
    return root;
}

/* ---- HTML helpers ------------------------------------------------------------ */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static const char *jstr(json_t *o, const char *key, const char *def) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

static double jnum(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

/* Axis ticks from 0 (or lo) to at least hi with a 1-2-5 step. */
typedef struct ticks {
    double lo, hi, step;
    int n, decimals;
} ticks;

static ticks nice_ticks(double lo, double hi, int target) {
    ticks t;
    if (!(hi > lo))
        hi = lo + (lo != 0 ? fabs(lo) : 1.0);
    double raw = (hi - lo) / (target > 1 ? target : 1);
    double mag = pow(10, floor(log10(raw)));
    double norm = raw / mag;
    double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    t.step = step;
    t.lo = floor(lo / step + 1e-9) * step;
    t.hi = ceil(hi / step - 1e-9) * step;
    t.n = (int)floor((t.hi - t.lo) / step + 0.5) + 1;
    int dec = (int)ceil(-log10(step) - 1e-9);
    t.decimals = dec < 0 ? 0 : dec > 6 ? 6 : dec;
    return t;
}

/* Plot frame: axes, grid, ticks and axis titles; maps values to pixels.
 * The x domain is the ticks' range unless xpad widens it (so marks at the
 * ends stay clear of the axes). */
typedef struct frame {
    double x0, y0, w, h; /* plot area */
    ticks tx, ty;
    int x_numeric;
    double xpad; /* domain [tx.lo - xpad, tx.hi + xpad] */
} frame;

static double fy(const frame *p, double v) {
    return p->y0 + p->h - (v - p->ty.lo) / (p->ty.hi - p->ty.lo) * p->h;
}

static double fx(const frame *p, double v) {
    double lo = p->tx.lo - p->xpad, hi = p->tx.hi + p->xpad;
    return p->x0 + (v - lo) / (hi - lo) * p->w;
}

static void draw_frame(FILE *f, const frame *p, const char *xtitle, const char *ytitle) {
    for (int i = 0; i < p->ty.n; i++) {
        double v = p->ty.lo + i * p->ty.step, y = fy(p, v);
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
                p->x0, y, p->x0 + p->w, y, p->x0 - 6, y + 4, p->ty.decimals, v);
    }
    if (p->x_numeric)
        for (int i = 0; i < p->tx.n; i++) {
            double v = p->tx.lo + i * p->tx.step, x = fx(p, v);
            fprintf(f,
                    "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                    "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n",
                    x, p->y0, x, p->y0 + p->h, x, p->y0 + p->h + 16, p->tx.decimals, v);
        }
    fprintf(f,
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
            p->x0, p->y0, p->x0, p->y0 + p->h, p->x0, p->y0 + p->h, p->x0 + p->w, p->y0 + p->h);
    if (xtitle) {
        fprintf(f, "<text class=\"atitle\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                p->x0 + p->w / 2, p->y0 + p->h + 38);
        esc(f, xtitle);
        fputs("</text>\n", f);
    }
    if (ytitle) {
        fprintf(f,
                "<text class=\"atitle\" transform=\"translate(%.1f,%.1f) rotate(-90)\" "
                "text-anchor=\"middle\">",
                p->x0 - 44, p->y0 + p->h / 2);
        esc(f, ytitle);
        fputs("</text>\n", f);
    }
}

static void legend(FILE *f, double x, double y, int n, const char *const *names,
                   const char *const *colors) {
    for (int i = 0; i < n; i++) {
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">",
                x, y + i * 18, colors[i], x + 18, y + i * 18 + 10);
        esc(f, names[i]);
        fputs("</text>\n", f);
    }
}

/* ---- charts ------------------------------------------------------------------- */

#define MAX_SERIES 32

/* Bar chart of one metric across models, with 95% whiskers. */
static void chart_bars(FILE *f, const char *label, int higher_better, int n,
                       const char *const *names, const double *v, const double *ci) {
    const double W = 320, H = 236;
    double top = 0;
    for (int j = 0; j < n; j++) {
        double t = v[j] + (ci && isfinite(ci[j]) ? ci[j] : 0);
        if (isfinite(t) && t > top)
            top = t;
    }
    frame p = {.x0 = 58, .y0 = 36, .w = W - 58 - 12, .h = H - 36 - 46};
    p.ty = nice_ticks(0, top > 0 ? top * 1.08 : 1, 5);
    fprintf(f,
            "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "role=\"img\" data-metric=\"",
            W, H, W, H);
    esc(f, label);
    fprintf(f, "\"><text class=\"ctitle\" x=\"10\" y=\"20\">");
    esc(f, label);
    fprintf(f, "</text><text class=\"csub\" x=\"%.0f\" y=\"20\" text-anchor=\"end\">%s</text>\n",
            W - 12, higher_better ? "higher is better" : "lower is better");
    draw_frame(f, &p, NULL, NULL);
    double slot = p.w / (n > 0 ? n : 1), bw = slot * 0.62;
    int dec = top >= 100 ? 1 : top >= 10 ? 2 : 3;
    for (int j = 0; j < n; j++) {
        double x = p.x0 + slot * j + (slot - bw) / 2;
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                x + bw / 2, p.y0 + p.h + 16);
        char nm[16];
        snprintf(nm, sizeof nm, "%s", names[j]);
        esc(f, nm);
        fputs("</text>\n", f);
        if (!isfinite(v[j])) { /* the model lacks the metric */
            fprintf(f, "<text class=\"vlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">n/a</text>\n",
                    x + bw / 2, p.y0 + p.h - 4);
            continue;
        }
        double y = fy(&p, v[j] > 0 ? v[j] : 0);
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                "<title>",
                x, y, bw, p.y0 + p.h - y, color(j));
        esc(f, names[j]);
        fprintf(f, " %s = %.4f", label, v[j]);
        if (ci && isfinite(ci[j]))
            fprintf(f, " (95%% interval +/- %.4f)", ci[j]);
        fprintf(f, "</title></rect>\n");
        double cx = x + bw / 2, lab_y = y - 4;
        if (ci && isfinite(ci[j]) && ci[j] > 0) {
            double y1 = fy(&p, v[j] + ci[j]), y2 = fy(&p, v[j] - ci[j] > 0 ? v[j] - ci[j] : 0);
            fprintf(f,
                    "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                    "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                    "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                    cx, y1, cx, y2, cx - 5, y1, cx + 5, y1, cx - 5, y2, cx + 5, y2);
            lab_y = y1 - 4;
        }
        fprintf(f, "<text class=\"vlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n",
                cx, lab_y, dec, v[j]);
    }
    fputs("</svg>\n", f);
}

/* Precision against recall, one line per model through its ks. */
static void chart_pr(FILE *f, json_t *curve, int n, const char *const *names) {
    json_t *ks = json_object_get(curve, "ks"), *models = json_object_get(curve, "models");
    size_t nk = json_array_size(ks);
    double maxr = 0, maxp = 0;
    for (int j = 0; j < n; j++) {
        json_t *m = json_object_get(models, names[j]);
        for (size_t i = 0; i < nk; i++) {
            double r = jnum(json_array_get(json_object_get(m, "recall"), i)),
                   p = jnum(json_array_get(json_object_get(m, "precision"), i));
            if (isfinite(r) && r > maxr)
                maxr = r;
            if (isfinite(p) && p > maxp)
                maxp = p;
        }
    }
    const double W = 640, H = 420;
    frame p = {.x0 = 66, .y0 = 20, .w = W - 66 - 170, .h = H - 20 - 56, .x_numeric = 1};
    p.tx = nice_ticks(0, maxr > 0 ? maxr * 1.05 : 1, 6);
    p.ty = nice_ticks(0, maxp > 0 ? maxp * 1.05 : 1, 6);
    fprintf(f, "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "role=\"img\" data-chart=\"pr\">\n",
            W, H, W, H);
    draw_frame(f, &p, "recall@K", "precision@K");
    for (int j = 0; j < n; j++) {
        json_t *m = json_object_get(models, names[j]);
        json_t *pr = json_object_get(m, "precision"), *rc = json_object_get(m, "recall");
        fprintf(f, "<polyline class=\"series\" stroke=\"%s\" points=\"", color(j));
        for (size_t i = 0; i < nk; i++)
            fprintf(f, "%.1f,%.1f ", fx(&p, jnum(json_array_get(rc, i))),
                    fy(&p, jnum(json_array_get(pr, i))));
        fputs("\"/>\n", f);
        for (size_t i = 0; i < nk; i++) {
            double r = jnum(json_array_get(rc, i)), pv = jnum(json_array_get(pr, i));
            long long k = (long long)json_integer_value(json_array_get(ks, i));
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", fx(&p, r),
                    fy(&p, pv), color(j));
            esc(f, names[j]);
            fprintf(f, " K=%lld: precision %.4f, recall %.4f</title></circle>\n", k, pv, r);
            /* label K once, at the outermost point (largest recall) of that K */
            int outer = 1;
            for (int q = 0; q < n; q++) {
                double rq = jnum(json_array_get(
                    json_object_get(json_object_get(models, names[q]), "recall"), i));
                if (rq > r || (rq == r && q < j))
                    outer = 0;
            }
            if (outer)
                fprintf(f, "<text class=\"klabel\" x=\"%.1f\" y=\"%.1f\">K=%lld</text>\n",
                        fx(&p, r) + 7, fy(&p, pv) - 7, k);
        }
    }
    const char *cols[MAX_SERIES];
    for (int j = 0; j < n && j < MAX_SERIES; j++)
        cols[j] = color(j);
    legend(f, p.x0 + p.w + 24, p.y0 + 8, n < MAX_SERIES ? n : MAX_SERIES, names, cols);
    fputs("</svg>\n", f);
}

/* Share of top-K slots per popularity bin, one bar per model, train
 * interactions for reference. */
static void chart_hist(FILE *f, json_t *h, int n, const char *const *names) {
    json_t *bins = json_object_get(h, "bins"), *train = json_object_get(h, "train"),
           *models = json_object_get(h, "models");
    size_t nb = json_array_size(bins);
    int ns = n + 1;
    double top = 0;
    for (size_t b = 0; b < nb; b++) {
        double v = jnum(json_array_get(train, b));
        if (v > top)
            top = v;
        for (int j = 0; j < n; j++) {
            v = jnum(json_array_get(json_object_get(models, names[j]), b));
            if (v > top)
                top = v;
        }
    }
    const double W = 820, H = 400;
    frame p = {.x0 = 66, .y0 = 20, .w = W - 66 - 190, .h = H - 20 - 62};
    p.ty = nice_ticks(0, top > 0 ? top * 100 * 1.05 : 1, 6);
    char ytitle[64];
    snprintf(ytitle, sizeof ytitle, "%% of top-%lld slots / of interactions",
             (long long)json_integer_value(json_object_get(h, "k")));
    fprintf(f, "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "role=\"img\" data-chart=\"popularity\">\n",
            W, H, W, H);
    draw_frame(f, &p, "item popularity: train users per item (bins)", ytitle);
    double slot = p.w / (nb ? (double)nb : 1), bw = slot * 0.8 / ns;
    for (size_t b = 0; b < nb; b++) {
        const char *lab = jstr(json_array_get(bins, b), "label", "?");
        for (int s = 0; s < ns; s++) {
            double v = 100 * jnum(s == 0 ? json_array_get(train, b)
                                         : json_array_get(json_object_get(models, names[s - 1]), b));
            if (!isfinite(v))
                continue;
            double x = p.x0 + slot * b + slot * 0.1 + bw * s, y = fy(&p, v);
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>",
                    x, y, bw, p.y0 + p.h - y, s == 0 ? TRAIN_COLOR : color(s - 1));
            esc(f, s == 0 ? "train interactions" : names[s - 1]);
            fprintf(f, ", popularity %s: %.2f%%</title></rect>\n", lab, v);
        }
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                p.x0 + slot * b + slot / 2, p.y0 + p.h + 16);
        esc(f, lab);
        fputs("</text>\n", f);
    }
    const char *lnames[MAX_SERIES + 1], *cols[MAX_SERIES + 1];
    int nl = 0;
    lnames[nl] = "train interactions";
    cols[nl++] = TRAIN_COLOR;
    for (int j = 0; j < n && nl <= MAX_SERIES; j++) {
        lnames[nl] = names[j];
        cols[nl++] = color(j);
    }
    legend(f, p.x0 + p.w + 24, p.y0 + 8, nl, lnames, cols);
    fputs("</svg>\n", f);
}

/* Trials of one search: value at the rung reached, by trial id. */
static void chart_tune(FILE *f, json_t *t) {
    json_t *trials = json_object_get(t, "trials"), *budgets = json_object_get(t, "budgets");
    size_t n = json_array_size(trials);
    int rungs = (int)json_array_size(budgets);
    int hb = json_is_true(json_object_get(t, "higher_is_better"));
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = jnum(json_object_get(json_array_get(trials, i), "value"));
        if (isfinite(v)) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    if (!isfinite(lo))
        return;
    const double W = 640, H = 320;
    frame p = {.x0 = 66, .y0 = 20, .w = W - 66 - 170, .h = H - 20 - 56, .x_numeric = 1};
    double pad = (hi - lo) * 0.08 + 1e-9;
    p.ty = nice_ticks(lo - pad > 0 || lo < 0 ? lo - pad : 0, hi + pad, 5);
    p.tx = nice_ticks(0, n > 1 ? (double)(n - 1) : 1, 8);
    if (p.tx.step < 1) {
        p.tx.step = 1;
        p.tx.decimals = 0;
        p.tx.n = (int)(p.tx.hi - p.tx.lo) + 1;
    }
    p.xpad = 0.6;
    fprintf(f, "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "role=\"img\" data-chart=\"tune\">\n",
            W, H, W, H);
    draw_frame(f, &p, "trial", jstr(t, "metric", "value"));
    int best = (int)json_integer_value(json_object_get(json_object_get(t, "best"), "trial"));
    for (size_t i = 0; i < n; i++) {
        json_t *tr = json_array_get(trials, i);
        double v = jnum(json_object_get(tr, "value"));
        if (!isfinite(v))
            continue;
        int id = (int)json_integer_value(json_object_get(tr, "id"));
        int rung = (int)json_integer_value(json_object_get(tr, "rung"));
        double x = fx(&p, id), y = fy(&p, v);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"%s><title>trial %d: ", x,
                y, id == best ? 7 : 4, color(rung), id == best ? " stroke=\"#000\" stroke-width=\"2\"" : "",
                id);
        esc(f, jstr(tr, "params", ""));
        fprintf(f, " = %.4f at budget %.3g</title></circle>\n", v,
                jnum(json_array_get(budgets, (size_t)rung)));
        if (id == best)
            fprintf(f, "<text class=\"klabel\" x=\"%.1f\" y=\"%.1f\">best</text>\n", x + 9,
                    y + (hb ? 12 : -6));
    }
    char lab[RF_TUNE_MAX_RUNGS_LABELS][32];
    const char *lnames[RF_TUNE_MAX_RUNGS_LABELS], *cols[RF_TUNE_MAX_RUNGS_LABELS];
    int nl = 0;
    for (int r = 0; r < rungs && nl < RF_TUNE_MAX_RUNGS_LABELS; r++) {
        snprintf(lab[nl], sizeof lab[nl], "budget %.3g", jnum(json_array_get(budgets, (size_t)r)));
        lnames[nl] = lab[nl];
        cols[nl] = color(r);
        nl++;
    }
    legend(f, p.x0 + p.w + 24, p.y0 + 8, nl, lnames, cols);
    fputs("</svg>\n", f);
}

/* ---- the page --------------------------------------------------------------------- */

static const char *g_css =
    "body{font-family:-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;"
    "color:#222;margin:0;background:#fafafa}"
    "main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff}"
    "h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px "
    "solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}"
    "p.meta{color:#555;margin:2px 0;font-size:13px}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}"
    "th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:left}"
    "th{background:#f3f3f3;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:"
    "tabular-nums}tr:nth-child(even) td{background:#fcfcfc}td.best{font-weight:700}"
    "sup{color:#c0392b;font-weight:700}.swatch{display:inline-block;width:10px;height:10px;"
    "margin-right:6px;vertical-align:middle}"
    ".charts{display:flex;flex-wrap:wrap;gap:14px}svg.chart{background:#fff;border:1px solid "
    "#e6e6e6;border-radius:4px}"
    "svg .grid{stroke:#ececec;stroke-width:1}svg .axis{stroke:#444;stroke-width:1}"
    "svg .tick{font-size:11px;fill:#555}svg .atitle{font-size:12px;fill:#333}"
    "svg .ctitle{font-size:14px;font-weight:600;fill:#222}svg .csub{font-size:10px;fill:#888}"
    "svg .vlabel{font-size:10px;fill:#333}svg .legend{font-size:12px;fill:#333}"
    "svg .klabel{font-size:10px;fill:#555}svg .whisker{stroke:#333;stroke-width:1}"
    "svg .series{fill:none;stroke-width:2}"
    ".note{color:#666;font-size:12px;max-width:900px}code{font-size:12px;background:#f4f4f4;"
    "padding:1px 4px;border-radius:3px}"
    "details{margin:6px 0 14px}summary{cursor:pointer;color:#4e79a7;font-size:13px}";

/* Metric labels of all models (a model may lack one another has, e.g.
 * ILDemb), in table order: by cut-off, then the display order; the
 * metrics not cut at K last. Returns the count. */
#define MAX_LABELS (RF_EVAL_MAX_K * RF_M_COUNT + RF_M_COUNT)
typedef struct lab {
    const char *label;
    int key;
} lab;

static int cmp_lab(const void *pa, const void *pb) {
    const lab *a = pa, *b = pb;
    return (a->key > b->key) - (a->key < b->key);
}

static int metric_labels(json_t *root, const char **out) {
    json_t *models = json_object_get(root, "models"), *ks = json_object_get(root, "ks");
    lab labs[MAX_LABELS];
    int n = 0;
    for (size_t j = 0; j < json_array_size(models); j++) {
        const char *label;
        json_t *v;
        json_object_foreach(json_object_get(json_array_get(models, j), "metrics"), label, v) {
            int mt, k, dup = 0;
            if (rf_metric_label_parse(label, &mt, &k) != 0)
                continue;
            for (int i = 0; i < n; i++)
                dup |= strcmp(labs[i].label, label) == 0;
            if (dup || n >= MAX_LABELS)
                continue;
            int ki = 0, oi = 0;
            const int *order = k ? rf_eval_order_at_k : rf_eval_order_flat;
            while (order[oi] >= 0 && order[oi] != mt)
                oi++;
            if (k) {
                while (ki < (int)json_array_size(ks) &&
                       json_integer_value(json_array_get(ks, (size_t)ki)) != k)
                    ki++;
            } else {
                ki = RF_EVAL_MAX_K + 1;
            }
            labs[n].label = label;
            labs[n].key = ki * 100 + oi;
            n++;
        }
    }
    qsort(labs, (size_t)n, sizeof *labs, cmp_lab);
    for (int i = 0; i < n; i++)
        out[i] = labs[i].label;
    return n;
}

/* Model names of the report, in order. */
static int model_names(json_t *root, const char **names, int max) {
    json_t *models = json_object_get(root, "models");
    int n = 0;
    for (size_t j = 0; j < json_array_size(models) && n < max; j++)
        names[n++] = jstr(json_array_get(models, j), "name", "?");
    return n;
}

/* The metrics table: rows at cut-off only_k and the rows not cut at K
 * (only_k 0: every row), columns = models. */
static void metrics_table(FILE *f, json_t *root, int n, const char *const *names, int only_k) {
    json_t *models = json_object_get(root, "models");
    json_t *rows = json_object_get(json_object_get(root, "significance"), "rows");
    const char *labels[MAX_LABELS];
    int n_labels = metric_labels(root, labels);
    fputs("<table class=\"metrics\"><thead><tr><th>metric</th>", f);
    for (int j = 0; j < n; j++) {
        fprintf(f, "<th class=\"num\"><span class=\"swatch\" style=\"background:%s\"></span>",
                color(j));
        esc(f, names[j]);
        fputs("</th>", f);
    }
    fputs("</tr></thead><tbody>\n", f);
    for (int li = 0; li < n_labels; li++) {
        const char *label = labels[li];
        int mt, k;
        if (rf_metric_label_parse(label, &mt, &k) != 0 || (only_k && k && k != only_k))
            continue;
        int hb = rf_metric_higher_better(mt);
        int best = -1;
        double bv = 0;
        for (int j = 0; j < n; j++) {
            double v = jnum(json_object_get(json_object_get(json_array_get(models, j), "metrics"),
                                            label));
            if (isfinite(v) && (best < 0 || (hb ? v > bv : v < bv))) {
                best = j;
                bv = v;
            }
        }
        fputs("<tr><th>", f);
        esc(f, label);
        fputs("</th>", f);
        json_t *srow = json_object_get(rows, label);
        for (int j = 0; j < n; j++) {
            json_t *v = json_object_get(json_object_get(json_array_get(models, j), "metrics"),
                                        label);
            json_t *cell = json_object_get(srow, names[j]);
            if (!json_is_number(v)) { /* the model lacks the metric */
                fputs("<td class=\"num\">-</td>", f);
                continue;
            }
            fprintf(f, "<td class=\"num%s\" data-model=\"", j == best && n > 1 ? " best" : "");
            esc(f, names[j]);
            fputs("\" data-metric=\"", f);
            esc(f, label);
            fputs("\"", f);
            if (cell)
                fprintf(f, " title=\"vs %s: p = %.3g (t-test), %.3g (bootstrap)\"",
                        jstr(srow, "best", "?"), jnum(json_object_get(cell, "p_t")),
                        jnum(json_object_get(cell, "p_bootstrap")));
            fprintf(f, ">%.4f", json_number_value(v));
            const char *mark = cell ? jstr(cell, "mark", "") : "";
            if (*mark)
                fprintf(f, "<sup>%s</sup>", mark);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    json_t *sig = json_object_get(root, "significance");
    if (sig && only_k)
        fprintf(f,
                "<p class=\"note\">Bold: the best model of the row. <sup>*</sup> p &lt; 0.05, "
                "<sup>**</sup> p &lt; 0.01: the model differs from the row's best by a paired "
                "%s over %lld users (hover a cell for both p-values: paired t-test and paired "
                "bootstrap with %lld resamples, seed %lld).</p>\n",
                strcmp(jstr(sig, "test", "t"), "bootstrap") == 0 ? "bootstrap" : "t-test",
                (long long)json_integer_value(json_object_get(sig, "users")),
                (long long)json_integer_value(json_object_get(sig, "resamples")),
                (long long)json_integer_value(json_object_get(sig, "seed")));
}

static void models_table(FILE *f, json_t *root) {
    json_t *models = json_object_get(root, "models");
    fputs("<table><thead><tr><th>model</th><th class=\"num\">users</th><th class=\"num\">cold "
          "users</th><th class=\"num\">relevant</th><th class=\"num\">unreachable</th>"
          "<th class=\"num\">fit s</th><th class=\"num\">eval s</th></tr></thead><tbody>\n",
          f);
    for (size_t j = 0; j < json_array_size(models); j++) {
        json_t *m = json_array_get(models, j);
        fprintf(f, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>", color((int)j));
        esc(f, jstr(m, "name", "?"));
        fprintf(f,
                "</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td><td "
                "class=\"num\">%lld</td><td class=\"num\">%lld</td><td class=\"num\">%.2f</td>"
                "<td class=\"num\">%.2f</td></tr>\n",
                (long long)json_integer_value(json_object_get(m, "users")),
                (long long)json_integer_value(json_object_get(m, "cold_users")),
                (long long)json_integer_value(json_object_get(m, "relevant")),
                (long long)json_integer_value(json_object_get(m, "unreachable")),
                jnum(json_object_get(m, "fit_seconds")), jnum(json_object_get(m, "eval_seconds")));
    }
    fputs("</tbody></table>\n", f);
}

static void tuning_section(FILE *f, json_t *tun) {
    for (size_t i = 0; i < json_array_size(tun); i++) {
        json_t *t = json_array_get(tun, i);
        json_t *trials = json_object_get(t, "trials"), *board = json_object_get(t, "leaderboard"),
               *budgets = json_object_get(t, "budgets");
        fputs("<h3>", f);
        esc(f, jstr(t, "model", "?"));
        fputs(": ", f);
        esc(f, jstr(t, "metric", "?"));
        fputs(" on the validation split</h3>\n<p class=\"meta\">", f);
        fprintf(f, "%s search, %zu trials, successive halving: %lld rungs (eta %lld, budget: ",
                jstr(t, "search", "?"), json_array_size(trials),
                (long long)json_integer_value(json_object_get(t, "rungs")),
                (long long)json_integer_value(json_object_get(t, "eta")));
        esc(f, jstr(t, "resource", "?"));
        fprintf(f, "), %.1f s. Space: <code>", jnum(json_object_get(t, "seconds")));
        esc(f, jstr(t, "space", ""));
        fputs("</code></p>\n", f);
        json_t *best = json_object_get(t, "best");
        if (best) {
            fputs("<p class=\"meta\">Best: <code>", f);
            const char *bp = jstr(best, "params", "");
            esc(f, bp[0] ? bp : "(defaults)");
            fprintf(f, "</code> = %.4f (stored in DIR/params/", jnum(json_object_get(best, "value")));
            esc(f, jstr(t, "model", "?"));
            fputs(".params)</p>\n", f);
        }
        fputs("<div class=\"charts\">", f);
        chart_tune(f, t);
        fputs("</div>\n<table class=\"leaderboard\"><thead><tr><th class=\"num\">rank</th><th "
              "class=\"num\">trial</th><th class=\"num\">budget</th><th class=\"num\">",
              f);
        esc(f, jstr(t, "metric", "value"));
        fputs("</th><th class=\"num\">fit s</th><th>params</th></tr></thead><tbody>\n", f);
        size_t nshow = json_array_size(board) < 15 ? json_array_size(board) : 15;
        for (size_t r = 0; r < nshow; r++) {
            int id = (int)json_integer_value(json_array_get(board, r));
            json_t *tr = NULL;
            for (size_t q = 0; q < json_array_size(trials); q++)
                if (json_integer_value(json_object_get(json_array_get(trials, q), "id")) == id)
                    tr = json_array_get(trials, q);
            if (!tr)
                continue;
            int rung = (int)json_integer_value(json_object_get(tr, "rung"));
            double v = jnum(json_object_get(tr, "value"));
            fprintf(f, "<tr><td class=\"num\">%zu</td><td class=\"num\">%d</td>", r + 1, id);
            if (rung >= 0)
                fprintf(f, "<td class=\"num\">%.3g</td>", jnum(json_array_get(budgets, (size_t)rung)));
            else
                fputs("<td class=\"num\">-</td>", f);
            if (isfinite(v))
                fprintf(f, "<td class=\"num\">%.4f</td>", v);
            else {
                fputs("<td class=\"num\">", f);
                esc(f, jstr(tr, "status", "?"));
                fputs("</td>", f);
            }
            fprintf(f, "<td class=\"num\">%.2f</td><td><code>", jnum(json_object_get(tr, "fit_seconds")));
            const char *ps = jstr(tr, "params", "");
            esc(f, ps[0] ? ps : "(defaults)");
            fputs("</code></td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
        if (json_array_size(board) > nshow)
            fprintf(f, "<p class=\"note\">%zu more trials in the JSON report.</p>\n",
                    json_array_size(board) - nshow);
    }
}

static int render(json_t *root, FILE *f) {
    const char *names[MAX_SERIES];
    int n = model_names(root, names, MAX_SERIES);
    json_t *proto = json_object_get(root, "protocol"), *models = json_object_get(root, "models");
    int main_k = (int)json_integer_value(json_object_get(root, "main_k"));
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", f);
    esc(f, jstr(root, "title", "recfuse report"));
    fprintf(f, "</title>\n<style>%s</style>\n</head><body><main>\n<h1>", g_css);
    esc(f, jstr(root, "title", "recfuse report"));
    fputs("</h1>\n", f);
    fprintf(f, "<p class=\"meta\">recfuse %s, generated %s", jstr(root, "recfuse", "?"),
            jstr(root, "generated", "?"));
    if (proto) {
        fputs(", data <code>", f);
        esc(f, jstr(proto, "data", "?"));
        fputs("</code></p>\n<p class=\"meta\">Protocol: <b>", f);
        esc(f, jstr(proto, "split", "?"));
        fputs("</b> (", f);
        esc(f, jstr(proto, "detail", ""));
        fprintf(f,
                "): train %lld events of %lld users; %s %lld events of %lld users; %lld items. "
                "Full ranking of the catalog, the user's train items excluded.",
                (long long)json_integer_value(json_object_get(proto, "train_rows")),
                (long long)json_integer_value(json_object_get(proto, "train_users")),
                json_is_true(json_object_get(proto, "validation")) ? "validation" : "test",
                (long long)json_integer_value(json_object_get(proto, "test_rows")),
                (long long)json_integer_value(json_object_get(proto, "test_users")),
                (long long)json_integer_value(json_object_get(proto, "items")));
    }
    fprintf(f, "</p>\n<h2 id=\"metrics\">Metrics at K = %d</h2>\n", main_k);
    metrics_table(f, root, n, names, main_k);
    fputs("<details><summary>Every cut-off</summary>\n", f);
    metrics_table(f, root, n, names, 0);
    fputs("</details>\n<h3>Models</h3>\n", f);
    models_table(f, root);

    /* one bar chart per metric at main_k (and the metrics not cut at K) */
    fprintf(f, "<h2 id=\"bars\">Models compared at K = %d</h2>\n<p class=\"note\">Bars: the mean over "
               "users; whiskers: 95%% confidence interval of the mean (1.96 standard errors) "
               "for per-user metrics.</p>\n<div class=\"charts\">\n",
            main_k);
    const char *labels[MAX_LABELS];
    int n_labels = metric_labels(root, labels);
    for (int li = 0; li < n_labels; li++) {
        const char *label = labels[li];
        int mt, k;
        if (rf_metric_label_parse(label, &mt, &k) != 0 || (rf_metric_at_k(mt) && k != main_k))
            continue;
        double v[MAX_SERIES], ci[MAX_SERIES];
        for (int j = 0; j < n; j++) {
            json_t *mj = json_array_get(models, (size_t)j);
            v[j] = jnum(json_object_get(json_object_get(mj, "metrics"), label));
            ci[j] = jnum(json_object_get(json_object_get(mj, "ci"), label));
        }
        chart_bars(f, label, rf_metric_higher_better(mt), n, names, v, ci);
    }
    fputs("</div>\n", f);

    json_t *curve = json_object_get(root, "pr_curve");
    if (curve && json_array_size(json_object_get(curve, "ks")) > 0) {
        fputs("<h2 id=\"pr\">Precision and recall at K</h2>\n<p class=\"note\">Each point is one cut-off "
              "K; moving along a line, K grows: recall rises, precision falls.</p>\n"
              "<div class=\"charts\">\n",
              f);
        chart_pr(f, curve, n, names);
        fputs("</div>\n", f);
    }
    json_t *hist = json_object_get(root, "popularity_histogram");
    if (hist) {
        fprintf(f,
                "<h2 id=\"popularity\">Popularity of recommended items</h2>\n<p class=\"note\">Items binned by "
                "how many train users interacted with them (powers of two). Grey: where users' "
                "train interactions fall; colours: where each model's top-%lld slots fall. A "
                "model far to the right of grey leans on popular items (popularity bias).</p>\n"
                "<div class=\"charts\">\n",
                (long long)json_integer_value(json_object_get(hist, "k")));
        chart_hist(f, hist, n, names);
        fputs("</div>\n", f);
    }
    json_t *tun = json_object_get(root, "tuning");
    fputs("<h2 id=\"tuning\">Tuning</h2>\n", f);
    if (json_array_size(tun) > 0)
        tuning_section(f, tun);
    else
        fputs("<p class=\"note\">No tuning runs in this data directory (run <code>recfuse tune "
              "--data DIR --model NAME</code>).</p>\n",
              f);
    fputs("<p class=\"note\">Metric definitions: docs/evaluation.md. Machine-readable numbers: "
          "the JSON report next to this page.</p>\n</main></body></html>\n",
          f);
    return ferror(f) ? RF_EIO : 0;
}

static int write_html(json_t *root, const char *path, rf_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rf_err_set(err, RF_EIO, "%s: %s", tmp, strerror(errno));
    int rc = render(root, f);
    if (fclose(f) != 0 || rc) {
        remove(tmp);
        return rf_err_set(err, RF_EIO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return rf_err_set(err, RF_EIO, "%s: %s", path, strerror(errno));
    }
    return 0;
}

int rf_report_write(const rf_report_input *in, const char *json_path, const char *html_path,
                    rf_err *err) {
    if (!in || !in->res || in->n < 1 || !in->train || !in->train->iu)
        return rf_err_set(err, RF_EINVAL, "report: no results");
    if (in->n > MAX_SERIES)
        return rf_err_set(err, RF_EINVAL, "report: at most %d models", MAX_SERIES);
    for (int j = 0; j < in->n; j++) {
        if (k_index(&in->res[j], in->main_k) < 0)
            return rf_err_set(err, RF_EINVAL, "report: %s was not evaluated at K=%d",
                              in->res[j].model, in->main_k);
        if (!in->res[j].exposure)
            return rf_err_set(err, RF_EINVAL, "report: %s has no exposure counts",
                              in->res[j].model);
    }
    json_t *root = build_report(in, err);
    if (!root)
        return RF_ENOMEM;
    int rc = json_path ? rf_eval_json_dump(root, json_path, err) : 0;
    if (rc == 0 && html_path)
        rc = write_html(root, html_path, err);
    json_decref(root);
    return rc;
}

int rf_report_render_html(const char *json_path, const char *html_path, rf_err *err) {
    json_error_t je;
    json_t *root = json_load_file(json_path, 0, &je);
    if (!root)
        return rf_err_set(err, errno == ENOENT ? RF_EIO : RF_EFORMAT, "%s: %s", json_path,
                          je.text);
    if (!json_is_array(json_object_get(root, "models")) ||
        json_array_size(json_object_get(root, "models")) == 0) {
        json_decref(root);
        return rf_err_set(err, RF_EFORMAT, "%s: not a recfuse report (no models)", json_path);
    }
    int rc = write_html(root, html_path, err);
    json_decref(root);
    return rc;
}
