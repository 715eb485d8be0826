/* report.c - evaluation results as text tables and as JSON.
 *
 * The table is what `recfuse evaluate` prints and what external benchmark
 * scripts grep: one line per metric and cut-off, first field "NDCG@10",
 * then one value per model with 4 decimals and nothing else, so a line
 * parses as numbers. Significance marks and p-values therefore go into a
 * second table with the same rows and columns instead of decorating the
 * numbers. The JSON report carries the same values at full double
 * precision (jansson prints 17 significant digits, so a reader gets the
 * exact doubles back) plus the protocol, the counts needed to interpret
 * them and the significance tests; `recfuse report` builds on the same
 * JSON (eval_int.h). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/eval_int.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/version.h"

/* Display order of the metrics cut at K, then of those that are not. */
const int rf_eval_order_at_k[] = {RF_M_PRECISION, RF_M_RECALL, RF_M_NDCG,    RF_M_MAP,
                                  RF_M_HITRATE,   RF_M_MRR,    RF_M_COVERAGE, RF_M_GINI,
                                  RF_M_NOVELTY,   RF_M_ARP,    RF_M_ILD,      RF_M_ILD_EMB,
                                  RF_M_REVENUE,   -1};
const int rf_eval_order_flat[] = {RF_M_AUC, RF_M_RMSE, RF_M_MAE, -1};

/* Index of cut-off k in r->ks, -1 if r was not evaluated at k. */
static int k_index(const rf_eval_result *r, int k) {
    for (int i = 0; i < r->n_ks; i++)
        if (r->ks[i] == k)
            return i;
    return -1;
}

/* 1 if any of the n results computed metric mt. */
static int any_has(const rf_eval_result *res, int n, int mt) {
    for (int j = 0; j < n; j++)
        if (res[j].has[mt])
            return 1;
    return 0;
}

/* Rows of a table: (metric, ki of res[0]) in display order. */
typedef struct trow {
    int mt, ki;
} trow;

static int table_rows(const rf_eval_result *res, int n, int per_user_only, trow *rows, int max) {
    const rf_eval_result *r0 = &res[0];
    int nr = 0;
    for (int ki = 0; ki < r0->n_ks; ki++)
        for (const int *o = rf_eval_order_at_k; *o >= 0; o++)
            if (any_has(res, n, *o) && (!per_user_only || *o < RF_M_PER_USER) && nr < max)
                rows[nr++] = (trow){*o, ki};
    for (const int *o = rf_eval_order_flat; *o >= 0; o++)
        if (any_has(res, n, *o) && r0->n_ks > 0 && nr < max)
            rows[nr++] = (trow){*o, 0};
    return nr;
}

#define MAX_ROWS (RF_EVAL_MAX_K * RF_M_COUNT + RF_M_COUNT)
#define MAX_COLS 64

void rf_eval_print_table(FILE *out, const rf_eval_result *res, int n) {
    if (!out || !res || n <= 0)
        return;
    const rf_eval_result *r0 = &res[0];
    trow rows[MAX_ROWS];
    int nr = table_rows(res, n, 0, rows, MAX_ROWS);
    int lw = (int)strlen("metric");
    char label[32];
    for (int i = 0; i < nr; i++) {
        rf_metric_label(rows[i].mt, r0->ks[rows[i].ki], label, sizeof label);
        int l = (int)strlen(label);
        if (l > lw)
            lw = l;
    }
    int cw[MAX_COLS];
    int nc = n < MAX_COLS ? n : MAX_COLS;
    for (int j = 0; j < nc; j++) {
        int l = (int)strlen(res[j].model);
        cw[j] = l > 8 ? l : 8;
    }

    fprintf(out, "%-*s", lw, "metric");
    for (int j = 0; j < nc; j++)
        fprintf(out, "  %*s", cw[j], res[j].model);
    fputc('\n', out);
    for (int i = 0; i < nr; i++) {
        int k = r0->ks[rows[i].ki], mt = rows[i].mt;
        rf_metric_label(mt, k, label, sizeof label);
        fprintf(out, "%-*s", lw, label);
        for (int j = 0; j < nc; j++) {
            int kj = k_index(&res[j], k);
            if (kj < 0 || !res[j].has[mt])
                fprintf(out, "  %*s", cw[j], "-");
            else
                fprintf(out, "  %*.4f", cw[j], res[j].value[kj][mt]);
        }
        fputc('\n', out);
    }
    fprintf(out, "%-*s", lw, "users");
    for (int j = 0; j < nc; j++)
        fprintf(out, "  %*d", cw[j], (int)res[j].n_users);
    fputc('\n', out);
    fprintf(out, "%-*s", lw, "eval_s");
    for (int j = 0; j < nc; j++)
        fprintf(out, "  %*.2f", cw[j], res[j].seconds);
    fputc('\n', out);
}

static const char *mark_text(int mark) {
    return mark == 2 ? "**" : mark == 1 ? "*" : "-";
}

void rf_eval_print_signif(FILE *out, const rf_eval_result *res, int n, const rf_signif *sig) {
    if (!out || !res || n < 2 || !sig || !sig->cells)
        return;
    const rf_eval_result *r0 = &res[0];
    trow rows[MAX_ROWS];
    int nr = table_rows(res, n, 1, rows, MAX_ROWS);
    char label[32], cell[64];
    int lw = (int)strlen("metric");
    for (int i = 0; i < nr; i++) {
        rf_metric_label(rows[i].mt, r0->ks[rows[i].ki], label, sizeof label);
        if ((int)strlen(label) > lw)
            lw = (int)strlen(label);
    }
    int nc = n < MAX_COLS ? n : MAX_COLS;
    int cw[MAX_COLS];
    for (int j = 0; j < nc; j++) {
        int l = (int)strlen(res[j].model);
        cw[j] = l > 23 ? l : 23;
    }
    fprintf(out,
            "\nsignificance vs the best model of each row, paired over %lld users: t = paired "
            "t-test, b = paired bootstrap (%d resamples, seed %llu); marks by the %s: * p < "
            "0.05, ** p < 0.01\n",
            (long long)sig->n_pairs, sig->opts.resamples, (unsigned long long)sig->opts.seed,
            sig->opts.marks == RF_SIG_BOOTSTRAP ? "bootstrap" : "t-test");
    fprintf(out, "%-*s", lw, "metric");
    for (int j = 0; j < nc; j++)
        fprintf(out, "  %*s", cw[j], res[j].model);
    fputc('\n', out);
    for (int i = 0; i < nr; i++) {
        int ki = rows[i].ki, mt = rows[i].mt;
        if (!rf_signif_get(sig, ki, mt, 0))
            continue;
        rf_metric_label(mt, r0->ks[ki], label, sizeof label);
        fprintf(out, "%-*s", lw, label);
        for (int j = 0; j < nc; j++) {
            const rf_signif_cell *c = rf_signif_get(sig, ki, mt, j);
            if (c->mark < 0)
                snprintf(cell, sizeof cell, "best");
            else
                snprintf(cell, sizeof cell, "%-2s t=%.1e b=%.4f", mark_text(c->mark), c->p_t,
                         c->p_boot);
            fprintf(out, "  %*s", cw[j], cell);
        }
        fputc('\n', out);
    }
}

static json_t *protocol_json(const rf_eval_info *info) {
    json_t *p = json_object();
    if (!p)
        return NULL;
    int bad = 0;
    if (info->protocol)
        bad |= json_object_set_new(p, "split", json_string(info->protocol));
    if (info->detail)
        bad |= json_object_set_new(p, "detail", json_string(info->detail));
    if (info->data_dir)
        bad |= json_object_set_new(p, "data", json_string(info->data_dir));
    bad |= json_object_set_new(p, "train_rows", json_integer(info->train_rows));
    bad |= json_object_set_new(p, "test_rows", json_integer(info->test_rows));
    bad |= json_object_set_new(p, "train_users", json_integer(info->train_users));
    bad |= json_object_set_new(p, "test_users", json_integer(info->test_users));
    bad |= json_object_set_new(p, "items", json_integer(info->n_items));
    bad |= json_object_set_new(p, "validation", json_boolean(info->validation));
    if (bad) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* JSON numbers must be finite. */
static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *model_json(const rf_eval_result *r) {
    json_t *o = json_object(), *mets = json_object();
    if (!o || !mets) {
        json_decref(o);
        json_decref(mets);
        return NULL;
    }
    int bad = 0;
    char label[32];
    for (int ki = 0; ki < r->n_ks; ki++)
        for (const int *mt = rf_eval_order_at_k; *mt >= 0; mt++)
            if (r->has[*mt]) {
                rf_metric_label(*mt, r->ks[ki], label, sizeof label);
                bad |= json_object_set_new(mets, label, jnum(r->value[ki][*mt]));
            }
    for (const int *mt = rf_eval_order_flat; *mt >= 0; mt++)
        if (r->has[*mt] && r->n_ks > 0)
            bad |= json_object_set_new(mets, rf_metric_name(*mt), jnum(r->value[0][*mt]));
    bad |= json_object_set_new(o, "name", json_string(r->model));
    bad |= json_object_set_new(o, "users", json_integer(r->n_users));
    bad |= json_object_set_new(o, "cold_users", json_integer(r->n_cold_users));
    bad |= json_object_set_new(o, "relevant", json_integer(r->n_rel));
    bad |= json_object_set_new(o, "unreachable", json_integer(r->n_unreachable));
    bad |= json_object_set_new(o, "coverage_items", json_integer(r->n_cov_items));
    if (r->has[RF_M_RMSE])
        bad |= json_object_set_new(o, "rating_pairs", json_integer(r->n_rating_pairs));
    if (r->sampled_negatives > 0)
        bad |= json_object_set_new(o, "sampled_negatives", json_integer(r->sampled_negatives));
    if (r->n_folds > 1)
        bad |= json_object_set_new(o, "folds", json_integer(r->n_folds));
    bad |= json_object_set_new(o, "eval_seconds", json_real(r->seconds));
    bad |= json_object_set_new(o, "fit_seconds", json_real(r->fit_seconds));
    bad |= json_object_set_new(o, "metrics", mets);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *signif_json(const rf_eval_result *res, int n, const rf_signif *sig) {
    json_t *s = json_object(), *rows = json_object();
    if (!s || !rows) {
        json_decref(s);
        json_decref(rows);
        return NULL;
    }
    int bad = 0;
    bad |= json_object_set_new(
        s, "test", json_string(sig->opts.marks == RF_SIG_BOOTSTRAP ? "bootstrap" : "t"));
    bad |= json_object_set_new(s, "resamples", json_integer(sig->opts.resamples));
    bad |= json_object_set_new(s, "seed", json_integer((json_int_t)sig->opts.seed));
    bad |= json_object_set_new(s, "users", json_integer(sig->n_pairs));
    char label[32];
    for (int ki = 0; ki < sig->n_ks; ki++)
        for (int mt = 0; mt < RF_M_PER_USER; mt++) {
            if (!rf_signif_get(sig, ki, mt, 0))
                continue;
            json_t *row = json_object();
            if (!row) {
                bad = 1;
                continue;
            }
            for (int j = 0; j < n; j++) {
                const rf_signif_cell *c = rf_signif_get(sig, ki, mt, j);
                if (c->mark < 0) {
                    bad |= json_object_set_new(row, "best", json_string(res[j].model));
                    continue;
                }
                json_t *cj = json_object();
                if (!cj) {
                    bad = 1;
                    continue;
                }
                bad |= json_object_set_new(cj, "p_t", jnum(c->p_t));
                bad |= json_object_set_new(cj, "p_bootstrap", jnum(c->p_boot));
                bad |= json_object_set_new(cj, "diff", jnum(c->diff));
                bad |= json_object_set_new(cj, "mark", json_string(c->mark == 2   ? "**"
                                                                   : c->mark == 1 ? "*"
                                                                                  : ""));
                bad |= json_object_set_new(row, res[j].model, cj);
            }
            rf_metric_label(mt, res[0].ks[ki], label, sizeof label);
            bad |= json_object_set_new(rows, label, row);
        }
    bad |= json_object_set_new(s, "rows", rows);
    if (bad) {
        json_decref(s);
        return NULL;
    }
    return s;
}

json_t *rf_eval_json_build(const rf_eval_result *res, int n, const rf_eval_info *info,
                           const rf_signif *sig) {
    json_t *root = json_object(), *ks = json_array(), *models = json_array();
    if (!root || !ks || !models)
        goto nomem;
    if (json_object_set_new(root, "recfuse", json_string(RF_VERSION)))
        goto nomem;
    if (info) {
        json_t *p = protocol_json(info);
        if (!p || json_object_set_new(root, "protocol", p))
            goto nomem;
    }
    if (n > 0)
        for (int ki = 0; ki < res[0].n_ks; ki++)
            if (json_array_append_new(ks, json_integer(res[0].ks[ki])))
                goto nomem;
    for (int j = 0; j < n; j++) {
        json_t *o = model_json(&res[j]);
        if (!o || json_array_append_new(models, o))
            goto nomem;
    }
    if (json_object_set_new(root, "ks", ks)) {
        ks = NULL;
        goto nomem;
    }
    ks = NULL;
    if (json_object_set_new(root, "models", models)) {
        models = NULL;
        goto nomem;
    }
    models = NULL;
    if (sig && sig->cells && n >= 2) {
        json_t *s = signif_json(res, n, sig);
        if (!s || json_object_set_new(root, "significance", s))
            goto nomem;
    }
    return root;
nomem:
    json_decref(root);
    json_decref(ks);
    json_decref(models);
    return NULL;
}

int rf_eval_json_dump(json_t *root, const char *path, rf_err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = 0;
    if (json_dump_file(root, tmp, JSON_INDENT(2)) != 0) {
        rc = rf_err_set(err, RF_EIO, "%s: cannot write: %s", tmp, strerror(errno));
        remove(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = rf_err_set(err, RF_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
        remove(tmp);
    }
    return rc;
}

int rf_eval_write_json_sig(const char *path, const rf_eval_result *res, int n,
                           const rf_eval_info *info, const rf_signif *sig, rf_err *err) {
    if (!path || (!res && n > 0) || n < 0)
        return rf_err_set(err, RF_EINVAL, "eval json: bad arguments");
    json_t *root = rf_eval_json_build(res, n, info, sig);
    if (!root)
        return rf_err_set(err, RF_ENOMEM, "eval json: out of memory");
    int rc = rf_eval_json_dump(root, path, err);
    json_decref(root);
    return rc;
}

int rf_eval_write_json(const char *path, const rf_eval_result *res, int n, const rf_eval_info *info,
                       rf_err *err) {
    return rf_eval_write_json_sig(path, res, n, info, NULL, err);
}
