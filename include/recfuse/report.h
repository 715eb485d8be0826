/* report.h - the evaluation report: one JSON document for machines and a
 * self-contained HTML page for people (inline CSS, inline SVG charts, no
 * network), rendered from that same JSON so their numbers agree.
 *
 * The JSON is the evaluation JSON of eval.h (protocol, ks, models with
 * their metrics, significance) plus:
 *   "title", "generated" (ISO time), "main_k",
 *   models[].ci: 95% confidence half-widths of the per-user metrics
 *       (1.96 sd / sqrt(users)), e.g. {"NDCG@10": 0.0123},
 *   "pr_curve": {"ks": [1, 5, ...], "models": {"pop": {"precision": [..],
 *       "recall": [..]}}} (the P@K and R@K values),
 *   "popularity_histogram": {"k": 10, "bins": [{"lo": 1, "hi": 1,
 *       "label": "1"}, ...], "train": [share of train interactions per
 *       bin], "models": {"pop": [share of top-K slots per bin]}}; bins are
 *       powers of two of item popularity (train users; bin 0 = items no
 *       train user touched),
 *   "tuning": [the DIR/eval/tune-NAME.json documents, as written by tune].
 * The HTML shows: the metrics table (best of each row in bold, marks *
 * and ** from the significance tests with the p-values on hover), one bar
 * chart per metric at main_k with 95% intervals, the precision/recall
 * curve over the ks, the popularity histogram, and each tuning
 * leaderboard with a chart of the trials. */
#ifndef RECFUSE_REPORT_H
#define RECFUSE_REPORT_H

#include "dataset.h"
#include "eval.h"

struct rf_err;

typedef struct rf_report_input {
    const rf_eval_result *res; /* n results, same ks, exposure kept */
    int n;
    const rf_eval_info *info;  /* may be NULL */
    const rf_signif *sig;      /* may be NULL */
    const rf_dataset *train;   /* item popularity for the histogram */
    int main_k;                /* must be one of the ks */
    const char *const *tune_paths; /* tune JSON files to include (unreadable ones are skipped
                                      with a warning) */
    int n_tune;
    const char *title;         /* NULL: "recfuse evaluation report" */
} rf_report_input;

/* Build the report, write it as JSON to json_path and as HTML to
 * html_path (each through PATH.tmp and a rename). RF_EINVAL (no results,
 * main_k not evaluated, exposure missing), RF_EIO, RF_ENOMEM. */
int rf_report_write(const rf_report_input *in, const char *json_path, const char *html_path,
                    struct rf_err *err);
/* Render the HTML page of a report JSON file (as rf_report_write does).
 * RF_EIO / RF_EFORMAT for an unreadable or foreign file. */
int rf_report_render_html(const char *json_path, const char *html_path, struct rf_err *err);

#endif
