/* tune.c - hyperparameter search with successive halving (tune.h).
 *
 * The tuner turns a search space into a list of configurations (grid or
 * seeded random draws) after the model's defaults (trial 0, so tuning
 * never ends below the defaults on validation: trial 0 is promoted through
 * every rung), then runs them in rungs: each run creates the
 * model by name, applies the fixed parameters and the trial's, fits it on
 * the validation split's train part and scores the objective on the
 * validation part with rf_evaluate_ex. Between rungs the best 1/eta of
 * the configurations are promoted to eta times the budget.
 *
 * DESIGN: a run always refits. Keeping the fitted models of a rung in
 * memory to score them again on more users would save fits, but a rung
 * can hold dozens of models and some are catalog-squared in size (EASE);
 * the iteration budget, which saves fitting time where fitting is the
 * cost, refits anyway. The user budget uses one seeded permutation of the
 * validation users whose prefixes are the rungs' subsets, so every trial
 * of a rung is scored on the same users and a promoted trial's users grow
 * as a superset.
 *
 * The default spaces below name the parameters of the models in
 * src/models; they are parsed leniently, so a table entry that no longer
 * fits a model (a renamed parameter) drops out instead of failing, and a
 * model the table does not know gets a space derived from its parameter
 * table. */
#include "recfuse/tune.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_int.h"
#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"
#include "recfuse/version.h"

/* ---- default spaces ------------------------------------------------------ */

static const struct {
    const char *model, *space, *metric, *iter;
} g_defaults[] = {
    {"pop", "weighted=0,1", "ndcg@10", NULL},
    {"trending", "half_life=1:365:log;weighted=0,1", "ndcg@10", NULL},
    {"itemknn",
     "sim=cosine;k=20:800:log;shrink=0:50;q=1:4"
     " | sim=asym;alpha=0.1:0.9;k=20:800:log;q=1:4"
     " | sim=jaccard;k=20:800:log;q=1:4"
     " | sim=bm25;k1=0.5:3;b=0.3:1;k=20:800:log;q=1"
     " | sim=tfidf;k=20:800:log;q=1:4"
     " | sim=rp3b;p3_alpha=0.05:1.5;p3_beta=0:1;k=20:800:log;q=1",
     "ndcg@10", NULL},
    {"userknn",
     "sim=cosine;k=20:500:log;shrink=0:50;q=1:4"
     " | sim=asym;alpha=0.1:0.9;k=20:500:log;q=1:4"
     " | sim=bm25;k1=0.5:3;b=0.3:1;k=20:500:log",
     "ndcg@10", NULL},
    {"ials", "reg=50:800:log;recency=16:512:log;recency_tau=0.03:0.3:log;unobs_weight=1:16:log",
     "ndcg@10", "iterations"},
    {"ease", "lambda=10:5000:log", "ndcg@10", NULL},
    {"bpr", "factors=32,64,128;lr=0.005:0.2:log;reg=0.00001:0.05:log", "ndcg@10", "epochs"},
    {"mf", "factors=20:200:log;lr=0.002:0.02:log;reg=0.01:0.2:log", "rmse", "epochs"},
    {"svdpp", "factors=20:100:log;lr=0.002:0.02:log;reg=0.01:0.2:log;reg_y=0.01:0.2:log", "rmse",
     "epochs"},
    {"rules", "min_support=0.00001:0.01:log;min_confidence=0.005:0.3:log;session_gap=10:240:log",
     "ndcg@10", NULL},
    {"content", "half_life=7:365:log;pop_blend=0:2;w_category=0.5:4;w_text=0.25:2", "ndcg@10",
     NULL},
    {"fm", "factors=16,32,64,128;lr=0.005:0.2:log;reg=0.0001:0.1:log;neg=1,3,5", "ndcg@10",
     "epochs"},
    {"coldstart", "factors=32,64,128;reg=0.1:100:log;alpha=0.1:30:log;map_reg=0.01:100:log",
     "ndcg@10", "iterations"},
};

void rf_tune_model_defaults(const char *model, const char **space, const char **metric,
                            const char **iter_param) {
    *space = *metric = *iter_param = NULL;
    for (size_t i = 0; model && i < sizeof g_defaults / sizeof g_defaults[0]; i++)
        if (strcmp(g_defaults[i].model, model) == 0) {
            *space = g_defaults[i].space;
            *metric = g_defaults[i].metric;
            *iter_param = g_defaults[i].iter;
            return;
        }
}

/* ---- spaces ------------------------------------------------------------- */

static const rf_param_def *find_def(const rf_param_def *defs, const char *name) {
    for (const rf_param_def *d = defs; d && d->name; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

/* Copy s[0..n) trimmed of blanks into buf. */
static void trim_copy(const char *s, size_t n, char *buf, size_t size) {
    while (n && (*s == ' ' || *s == '\t' || *s == '\n')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
}

/* Parse one dimension "name=spec" into d; scratch is a params struct. */
static int parse_dim(const char *text, const rf_param_def *defs, void *scratch, rf_tune_dim *d,
                     rf_err *err) {
    memset(d, 0, sizeof *d);
    const char *eq = strchr(text, '=');
    if (!eq)
        return rf_err_set(err, RF_EINVAL, "space: '%s': expected name=values", text);
    trim_copy(text, (size_t)(eq - text), d->name, sizeof d->name);
    const rf_param_def *def = find_def(defs, d->name);
    if (!def)
        return rf_err_set(err, RF_ENOTFOUND, "space: unknown parameter '%s'", d->name);
    d->is_int = def->type == RF_P_INT;
    const char *spec = eq + 1;
    if (strchr(spec, ':')) {
        if (def->type == RF_P_ENUM)
            return rf_err_set(err, RF_EINVAL, "space: %s is a choice, not a range", d->name);
        char a[64], b[64], c[16] = "";
        const char *c1 = strchr(spec, ':'), *c2 = strchr(c1 + 1, ':');
        trim_copy(spec, (size_t)(c1 - spec), a, sizeof a);
        trim_copy(c1 + 1, c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1), b, sizeof b);
        if (c2)
            trim_copy(c2 + 1, strlen(c2 + 1), c, sizeof c);
        if (rf_parse_double(a, strlen(a), &d->lo) || rf_parse_double(b, strlen(b), &d->hi))
            return rf_err_set(err, RF_EINVAL, "space: %s: '%s' is not a range lo:hi[:log]",
                              d->name, spec);
        if (c[0] && strcmp(c, "log") != 0 && strcmp(c, "lin") != 0)
            return rf_err_set(err, RF_EINVAL, "space: %s: scale '%s' is not log or lin", d->name,
                              c);
        d->log = strcmp(c, "log") == 0;
        if (d->lo > d->hi)
            return rf_err_set(err, RF_EINVAL, "space: %s: range %g:%g is empty", d->name, d->lo,
                              d->hi);
        if (d->lo < def->min || d->hi > def->max)
            return rf_err_set(err, RF_ERANGE, "space: %s: range %g:%g outside [%g, %g]", d->name,
                              d->lo, d->hi, def->min, def->max);
        if (d->log && !(d->lo > 0))
            return rf_err_set(err, RF_EINVAL, "space: %s: a log range needs lo > 0", d->name);
        if (d->is_int && ceil(d->lo) > floor(d->hi))
            return rf_err_set(err, RF_EINVAL, "space: %s: no integer in %g:%g", d->name, d->lo,
                              d->hi);
        d->is_range = 1;
        return 0;
    }
    const char *p = spec;
    while (1) {
        const char *e = strchr(p, ',');
        char v[32];
        trim_copy(p, e ? (size_t)(e - p) : strlen(p), v, sizeof v);
        if (!v[0])
            return rf_err_set(err, RF_EINVAL, "space: %s: empty value", d->name);
        rf_err perr;
        if (rf_params_set(defs, scratch, d->name, v, &perr))
            return rf_err_set(err, RF_EINVAL, "space: %s", perr.msg);
        int dup = 0;
        for (int i = 0; i < d->n_values; i++)
            dup |= strcmp(d->values[i], v) == 0;
        if (!dup) {
            if (d->n_values >= RF_TUNE_MAX_VALUES)
                return rf_err_set(err, RF_EINVAL, "space: %s: more than %d values", d->name,
                                  RF_TUNE_MAX_VALUES);
            snprintf(d->values[d->n_values++], sizeof d->values[0], "%s", v);
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static size_t params_size(const rf_param_def *defs) {
    size_t sz = 0;
    for (const rf_param_def *d = defs; d && d->name; d++) {
        size_t end = d->offset + (d->type == RF_P_DOUBLE ? sizeof(double) : sizeof(int));
        if (end > sz)
            sz = end;
    }
    return sz ? sz : 1;
}

int rf_tune_space_parse(const char *text, const rf_param_def *defs, int strict, rf_tune_space *out,
                        rf_err *err) {
    memset(out, 0, sizeof *out);
    if (!text)
        return rf_err_set(err, RF_EINVAL, "space: empty");
    void *scratch = rf_calloc(1, params_size(defs));
    if (!scratch)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = 0;
    const char *p = text;
    while (rc == 0) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        char alt[2048];
        trim_copy(p, len, alt, sizeof alt);
        if (alt[0]) {
            if (out->n_subs >= RF_TUNE_MAX_SUBS) {
                rc = rf_err_set(err, RF_EINVAL, "space: more than %d alternatives",
                                RF_TUNE_MAX_SUBS);
                break;
            }
            rf_tune_sub *s = &out->subs[out->n_subs];
            memset(s, 0, sizeof *s);
            int bad = 0;
            char *q = alt;
            while (*q && !bad) {
                char *semi = strchr(q, ';');
                if (semi)
                    *semi = 0;
                char dimtext[512];
                trim_copy(q, strlen(q), dimtext, sizeof dimtext);
                if (dimtext[0]) {
                    rf_tune_dim d;
                    rf_err derr;
                    rf_err_clear(&derr);
                    int drc = parse_dim(dimtext, defs, scratch, &d, &derr);
                    if (drc == 0) {
                        int dup = 0;
                        for (int i = 0; i < s->n_dims; i++)
                            dup |= strcmp(s->dims[i].name, d.name) == 0;
                        if (dup) {
                            drc = rf_err_set(&derr, RF_EINVAL, "space: %s given twice", d.name);
                        } else if (s->n_dims >= RF_TUNE_MAX_DIMS) {
                            drc = rf_err_set(&derr, RF_EINVAL, "space: more than %d parameters",
                                             RF_TUNE_MAX_DIMS);
                        } else {
                            s->dims[s->n_dims++] = d;
                        }
                    }
                    if (drc) {
                        if (strict) {
                            if (err)
                                *err = derr;
                            rc = drc == RF_ENOMEM ? RF_ENOMEM : RF_EINVAL;
                            if (err)
                                err->code = rc;
                            bad = 1;
                        } else if (drc == RF_ENOTFOUND) {
                            rf_log(RF_LOG_DEBUG, "tune.space", "msg=\"%s (dropped)\"", derr.msg);
                        } else {
                            rf_log(RF_LOG_DEBUG, "tune.space",
                                   "msg=\"%s (alternative dropped)\"", derr.msg);
                            bad = 1;
                        }
                    }
                }
                if (!semi)
                    break;
                q = semi + 1;
            }
            if (rc)
                break;
            if (!bad && s->n_dims > 0)
                out->n_subs++;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    rf_free(scratch);
    if (rc == 0 && out->n_subs == 0)
        rc = rf_err_set(err, RF_EINVAL, "space: no parameter to search");
    return rc;
}

/* Space derived from a parameter table (see tune.h). */
static int derive_space(const rf_param_def *defs, rf_tune_space *out, rf_err *err) {
    memset(out, 0, sizeof *out);
    rf_tune_sub *s = &out->subs[0];
    for (const rf_param_def *d = defs; d && d->name && s->n_dims < 6; d++) {
        if (strcmp(d->name, "seed") == 0 || strstr(d->name, "memory") || strstr(d->name, "max_"))
            continue;
        rf_tune_dim t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%s", d->name);
        t.is_int = d->type == RF_P_INT;
        if (d->type == RF_P_ENUM) {
            const char *p = d->choices;
            while (p && *p && t.n_values < RF_TUNE_MAX_VALUES) {
                const char *e = strchr(p, ',');
                trim_copy(p, e ? (size_t)(e - p) : strlen(p), t.values[t.n_values++], 32);
                if (!e)
                    break;
                p = e + 1;
            }
            if (t.n_values < 2)
                continue;
        } else {
            double lo = d->min, hi = d->max, def = d->def;
            if (!(hi > lo) || !isfinite(lo) || !isfinite(hi))
                continue;
            int decades = lo > 0 ? hi / lo >= 100 : hi - lo > 100;
            if (decades) {
                if (!(def > 0))
                    continue; /* no scale to search around */
                t.lo = def / 10 > lo ? def / 10 : lo;
                t.hi = def * 10 < hi ? def * 10 : hi;
                t.log = t.lo > 0;
                if (t.is_int) {
                    t.lo = ceil(t.lo);
                    t.hi = floor(t.hi);
                }
                if (!(t.hi > t.lo))
                    continue;
            } else {
                t.lo = lo;
                t.hi = hi;
            }
            t.is_range = 1;
        }
        s->dims[s->n_dims++] = t;
    }
    if (s->n_dims == 0)
        return rf_err_set(err, RF_EINVAL, "the model has no parameter to tune");
    out->n_subs = 1;
    return 0;
}

int rf_tune_space_default(const rf_model_ops *ops, rf_tune_space *out, rf_err *err) {
    if (!ops)
        return rf_err_set(err, RF_EINVAL, "tune: no model");
    const char *text, *metric, *iter;
    rf_tune_model_defaults(ops->name, &text, &metric, &iter);
    if (text && ops->params) {
        rf_err perr;
        rf_err_clear(&perr);
        if (rf_tune_space_parse(text, ops->params, 0, out, &perr) == 0)
            return 0;
        if (perr.code == RF_ENOMEM)
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        rf_log(RF_LOG_WARN, "tune.space",
               "model=%s msg=\"built-in space does not fit the model (%s); deriving one from its "
               "parameter table\"",
               ops->name, perr.msg);
    }
    return derive_space(ops->params, out, err);
}

void rf_tune_space_format(const rf_tune_space *s, char *buf, size_t size) {
    size_t used = 0;
    if (size)
        buf[0] = 0;
#define PUT(...)                                                                   \
    do {                                                                           \
        int w_ = snprintf(buf + used, used < size ? size - used : 0, __VA_ARGS__); \
        if (w_ > 0)                                                                \
            used += (size_t)w_;                                                    \
    } while (0)
    for (int i = 0; i < s->n_subs; i++) {
        if (i)
            PUT(" | ");
        for (int j = 0; j < s->subs[i].n_dims; j++) {
            const rf_tune_dim *d = &s->subs[i].dims[j];
            PUT("%s%s=", j ? ";" : "", d->name);
            if (d->is_range) {
                PUT("%g:%g%s", d->lo, d->hi, d->log ? ":log" : "");
            } else {
                for (int v = 0; v < d->n_values; v++)
                    PUT("%s%s", v ? "," : "", d->values[v]);
            }
        }
    }
#undef PUT
    if (used >= size && size)
        buf[size - 1] = 0;
}

/* ---- configurations ------------------------------------------------------ */

/* Value of a range at u in [0, 1] as text. */
static void range_value(const rf_tune_dim *d, double u, char *buf, size_t size) {
    double v = d->log ? exp(log(d->lo) + u * (log(d->hi) - log(d->lo))) : d->lo + u * (d->hi - d->lo);
    if (v < d->lo)
        v = d->lo;
    if (v > d->hi)
        v = d->hi;
    if (d->is_int) {
        double r = floor(v + 0.5);
        if (r < ceil(d->lo))
            r = ceil(d->lo);
        if (r > floor(d->hi))
            r = floor(d->hi);
        snprintf(buf, size, "%.0f", r);
    } else {
        snprintf(buf, size, "%.4g", v);
    }
}

/* Values a dimension takes in a grid (distinct, in order). */
static int grid_values(const rf_tune_dim *d, int points, char vals[][32]) {
    if (!d->is_range) {
        for (int i = 0; i < d->n_values; i++)
            snprintf(vals[i], 32, "%s", d->values[i]);
        return d->n_values;
    }
    if (points < 1)
        points = 1;
    if (points > RF_TUNE_MAX_VALUES)
        points = RF_TUNE_MAX_VALUES;
    int n = 0;
    for (int i = 0; i < points; i++) {
        char v[32];
        range_value(d, points == 1 ? 0.5 : (double)i / (points - 1), v, sizeof v);
        if (n == 0 || strcmp(vals[n - 1], v) != 0)
            snprintf(vals[n++], 32, "%s", v);
    }
    return n;
}

typedef struct cfgs {
    int n, cap;
    char (*text)[RF_TUNE_PARAMS_MAX];
    int *sub;
} cfgs;

/* Append "name=value" (space-separated after the first) to t[0..size) at
 * offset used; returns the new offset, clamped so t stays terminated. */
static size_t append_kv(char *t, size_t size, size_t used, const char *name, const char *value) {
    int w = snprintf(t + used, size - used, "%s%s=%s", used ? " " : "", name, value);
    if (w > 0)
        used += (size_t)w;
    return used >= size ? size - 1 : used;
}

static int cfgs_has(const cfgs *c, const char *t) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->text[i], t) == 0)
            return 1;
    return 0;
}

static int cfgs_add(cfgs *c, const char *t, int sub) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        void *nt = rf_realloc_array(c->text, (size_t)cap, sizeof *c->text);
        if (!nt)
            return RF_ENOMEM;
        c->text = nt;
        int *ns = rf_realloc_array(c->sub, (size_t)cap, sizeof *ns);
        if (!ns)
            return RF_ENOMEM;
        c->sub = ns;
        c->cap = cap;
    }
    snprintf(c->text[c->n], RF_TUNE_PARAMS_MAX, "%s", t);
    c->sub[c->n] = sub;
    c->n++;
    return 0;
}

#define GRID_MAX 100000

static int make_grid(const rf_tune_space *s, const rf_tune_opts *o, cfgs *out, rf_err *err) {
    char vals[RF_TUNE_MAX_DIMS][RF_TUNE_MAX_VALUES][32];
    int nv[RF_TUNE_MAX_DIMS], idx[RF_TUNE_MAX_DIMS];
    for (int si = 0; si < s->n_subs; si++) {
        const rf_tune_sub *sub = &s->subs[si];
        double total = 1;
        for (int j = 0; j < sub->n_dims; j++) {
            nv[j] = grid_values(&sub->dims[j], o->grid_points, vals[j]);
            total *= nv[j];
            idx[j] = 0;
        }
        if (total + out->n > GRID_MAX)
            return rf_err_set(err, RF_EINVAL,
                              "tune: the grid has more than %d points (use --search random or "
                              "fewer values)",
                              GRID_MAX);
        for (;;) {
            char t[RF_TUNE_PARAMS_MAX];
            size_t used = 0;
            t[0] = 0;
            for (int j = 0; j < sub->n_dims; j++)
                used = append_kv(t, sizeof t, used, sub->dims[j].name, vals[j][idx[j]]);
            if (!cfgs_has(out, t) && cfgs_add(out, t, si))
                return rf_err_set(err, RF_ENOMEM, "out of memory");
            int j = sub->n_dims - 1;
            while (j >= 0 && ++idx[j] == nv[j]) {
                idx[j] = 0;
                j--;
            }
            if (j < 0)
                break;
        }
    }
    /* a cap on the grid: a seeded random subset, kept in grid order */
    if (o->trials > 0 && out->n > o->trials) {
        rf_log(RF_LOG_WARN, "tune.grid",
               "points=%d trials=%d msg=\"grid larger than --trials: a seeded random subset is "
               "run\"",
               out->n, o->trials);
        int32_t *perm = rf_malloc_array((size_t)out->n, sizeof *perm);
        uint8_t *keep = rf_calloc((size_t)out->n, 1);
        if (!perm || !keep) {
            rf_free(perm);
            rf_free(keep);
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        }
        for (int i = 0; i < out->n; i++)
            perm[i] = i;
        rf_rng rng;
        rf_rng_seed(&rng, o->seed);
        rf_rng_shuffle_i32(&rng, perm, out->n);
        for (int i = 0; i < o->trials; i++)
            keep[perm[i]] = 1;
        int n = 0;
        for (int i = 0; i < out->n; i++)
            if (keep[i]) {
                memmove(out->text[n], out->text[i], sizeof out->text[0]);
                out->sub[n] = out->sub[i];
                n++;
            }
        out->n = n;
        rf_free(perm);
        rf_free(keep);
    }
    return 0;
}

static int make_random(const rf_tune_space *s, const rf_tune_opts *o, cfgs *out, rf_err *err) {
    rf_rng rng;
    rf_rng_seed(&rng, o->seed);
    int want = o->trials > 0 ? o->trials : 20;
    for (int attempt = 0; out->n < want && attempt < 50 * want; attempt++) {
        int si = (int)rf_rng_below(&rng, (uint64_t)s->n_subs);
        const rf_tune_sub *sub = &s->subs[si];
        char t[RF_TUNE_PARAMS_MAX];
        size_t used = 0;
        t[0] = 0;
        for (int j = 0; j < sub->n_dims; j++) {
            const rf_tune_dim *d = &sub->dims[j];
            char v[32];
            if (d->is_range)
                range_value(d, rf_rng_uniform(&rng), v, sizeof v);
            else
                snprintf(v, sizeof v, "%s", d->values[rf_rng_below(&rng, (uint64_t)d->n_values)]);
            used = append_kv(t, sizeof t, used, d->name, v);
        }
        if (!cfgs_has(out, t) && cfgs_add(out, t, si))
            return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    if (out->n < want)
        rf_log(RF_LOG_INFO, "tune.random", "trials=%d msg=\"the space holds fewer distinct "
                                           "configurations than asked\"",
               out->n);
    return 0;
}

/* Drop configurations that set the model exactly like an earlier one
 * (e.g. a drawn value equal to the default), comparing the complete
 * parameter text; configurations the model rejects are kept (their trial
 * records the error). */
static int dedupe_full(const char *model, const char *fixed, cfgs *c, rf_err *err) {
    char(*full)[RF_TUNE_PARAMS_MAX] = rf_calloc((size_t)c->n, sizeof *full);
    if (!full)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        rf_model *m = NULL;
        int rc = rf_model_new(model, &m, NULL);
        if (rc == RF_ENOMEM) {
            rf_free(full);
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        }
        full[n][0] = 0;
        if (rc == 0 && (!fixed || rf_model_set_params(m, fixed, NULL) == 0) &&
            rf_model_set_params(m, c->text[i], NULL) == 0)
            rf_model_params_format(m, full[n], sizeof full[n]);
        rf_model_free(m);
        int dup = 0;
        for (int j = 0; j < n && full[n][0]; j++)
            dup |= strcmp(full[j], full[n]) == 0;
        if (dup)
            continue;
        if (n != i) {
            memmove(c->text[n], c->text[i], sizeof c->text[0]);
            c->sub[n] = c->sub[i];
        }
        n++;
    }
    c->n = n;
    rf_free(full);
    return 0;
}

/* ---- running -------------------------------------------------------------- */

void rf_tune_opts_default(rf_tune_opts *o) {
    memset(o, 0, sizeof *o);
    o->search = RF_TUNE_RANDOM;
    o->trials = 20;
    o->grid_points = 3;
    o->seed = 1;
    o->metric = RF_M_NDCG;
    o->k = 10;
    o->eta = 3;
    o->rungs = 0;
    o->resource = RF_TUNE_RES_AUTO;
    rf_eval_opts_default(&o->eval);
    o->eval.progress = 0;
    o->eval.keep_exposure = 0;
}

void rf_tune_result_free(rf_tune_result *r) {
    if (!r)
        return;
    rf_free(r->trials);
    rf_free(r->rank);
    r->trials = NULL;
    r->rank = NULL;
}

static int same_data_opts(const rf_dataset_opts *x, const rf_dataset_opts *y) {
    for (int t = 0; t < RF_EV_NTYPES; t++)
        if (x->type_weight[t] != y->type_weight[t])
            return 0;
    return x->use_value == y->use_value && x->half_life_days == y->half_life_days &&
           x->now == y->now && x->fold == y->fold && x->binary == y->binary;
}

/* Everything one run needs. */
typedef struct tctx {
    const char *model;
    const rf_tune_data *data;
    const rf_tune_opts *o;
    const rf_dataset *ds; /* what models fit on (own matrix for data_defaults) */
    rf_dataset_opts mo;
    int32_t *perm;  /* validation users, shuffled */
    int32_t n_val;
    int32_t *subset; /* scratch: n_val */
    rf_tune_result *res;
} tctx;

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Run trial t at rung r: fit and score; the trial records the outcome.
 * Returns RF_ENOMEM only (trial failures are recorded, not returned). */
static int run_one(tctx *c, rf_tune_trial *t, int r) {
    const rf_tune_opts *o = c->o;
    rf_tune_result *res = c->res;
    rf_model *m = NULL;
    rf_err e;
    rf_err_clear(&e);
    int rc = rf_model_new(c->model, &m, &e);
    if (rc == 0 && o->fixed)
        rc = rf_model_set_params(m, o->fixed, &e);
    if (rc == 0)
        rc = rf_model_set_params(m, t->params, &e);
    if (rc == 0 && !t->full[0])
        rf_model_params_format(m, t->full, sizeof t->full);
    if (rc == 0 && res->resource == RF_TUNE_RES_ITERATIONS && res->budget[r] < 1) {
        /* the trial's own iteration count, scaled */
        const rf_param_def *def = find_def(m->ops->params, res->iter_param);
        int full = def ? *(const int *)((const char *)m->params + def->offset) : 1;
        long it = lround(res->budget[r] * full);
        char kv[64];
        snprintf(kv, sizeof kv, "%s=%ld", res->iter_param, it < 1 ? 1L : it);
        rc = rf_model_set_params(m, kv, &e);
    }
    if (rc == 0) {
        m->data_opts = c->mo;
        rc = rf_model_fit(m, c->ds, &e);
    }
    rf_eval_result er;
    memset(&er, 0, sizeof er);
    if (rc == 0) {
        t->fit_seconds += m->fit_seconds;
        rf_eval_opts eo = o->eval;
        eo.progress = 0;
        eo.keep_exposure = 0;
        if (res->resource == RF_TUNE_RES_USERS && res->budget[r] < 1) {
            int32_t n = (int32_t)ceil(res->budget[r] * c->n_val);
            int32_t floor_n = c->n_val < 20 ? c->n_val : 20;
            if (n < floor_n)
                n = floor_n;
            memcpy(c->subset, c->perm, (size_t)n * sizeof *c->subset);
            qsort(c->subset, (size_t)n, sizeof *c->subset, cmp_i32);
            eo.users = c->subset;
            eo.n_users = n;
        }
        int k = rf_metric_at_k(o->metric) ? o->k : 10;
        rc = rf_evaluate_ex(m, c->data->train, c->data->val, &k, 1, &eo, &er, &e);
        if (rc == 0) {
            t->eval_seconds += er.seconds;
            t->value[r] = er.value[0][o->metric];
            t->rung = r;
        }
        rf_eval_result_free(&er);
    }
    rf_model_free(m);
    if (rc == RF_ENOMEM)
        return rc;
    if (rc) {
        t->status = RF_TRIAL_FAILED;
        snprintf(t->error, sizeof t->error, "%s", e.msg[0] ? e.msg : rf_strerror(rc));
        rf_log(RF_LOG_WARN, "tune.trial", "model=%s trial=%d params=\"%s\" msg=\"%s\"", c->model,
               t->id, t->params, t->error);
    }
    return 0;
}

/* Better trial first: status OK, higher rung, better value, smaller id
 * (qsort_r comparator; ctx is the result). */
static int cmp_rank(const void *pa, const void *pb, void *ctx) {
    const rf_tune_result *r = ctx;
    const rf_tune_trial *a = &r->trials[*(const int *)pa], *b = &r->trials[*(const int *)pb];
    int oka = a->status == RF_TRIAL_OK && a->rung >= 0, okb = b->status == RF_TRIAL_OK && b->rung >= 0;
    if (oka != okb)
        return okb - oka;
    if (oka) {
        if (a->rung != b->rung)
            return b->rung - a->rung;
        double va = a->value[a->rung], vb = b->value[b->rung];
        if (va != vb)
            return (r->higher_better ? va > vb : va < vb) ? -1 : 1;
    }
    return a->id - b->id;
}

int rf_tune_run(const char *model, const rf_tune_space *space, const rf_tune_data *data,
                const rf_tune_opts *o, rf_tune_result *res, rf_err *err) {
    memset(res, 0, sizeof *res);
    res->best = -1;
    const rf_model_ops *ops = rf_model_find(model);
    if (!ops)
        return rf_err_set(err, RF_EINVAL, "tune: unknown model '%s'", model ? model : "");
    if (!space || space->n_subs < 1)
        return rf_err_set(err, RF_EINVAL, "tune: empty search space");
    if (!data || !data->train || !data->val || !data->train_ev)
        return rf_err_set(err, RF_EINVAL, "tune: no validation data");
    if (o->metric < 0 || o->metric >= RF_M_COUNT || o->k < 1 || o->k > RF_EVAL_MAX_KVAL)
        return rf_err_set(err, RF_EINVAL, "tune: bad objective");
    if ((o->metric == RF_M_RMSE || o->metric == RF_M_MAE) && !o->eval.ratings)
        return rf_err_set(err, RF_EINVAL, "tune: %s needs test ratings (rating events)",
                          rf_metric_name(o->metric));
    if (o->metric == RF_M_ILD && !o->eval.item_category)
        return rf_err_set(err, RF_EINVAL, "tune: ILD needs item categories");
    if (o->metric == RF_M_REVENUE && !o->eval.item_price)
        return rf_err_set(err, RF_EINVAL, "tune: Rev needs item prices");
    if (o->eta < 2)
        return rf_err_set(err, RF_EINVAL, "tune: eta %d < 2", o->eta);
    if (o->fixed) { /* a bad fixed parameter is the caller's error, not each trial's */
        rf_model *m;
        int rc = rf_model_new(model, &m, err);
        if (rc == 0)
            rc = rf_model_set_params(m, o->fixed, err);
        rf_model_free(m);
        if (rc && rc != RF_ENOMEM) {
            rc = RF_EINVAL; /* a usage error */
            if (err)
                err->code = rc;
        }
        if (rc)
            return rc;
    }
    const double t0 = rf_mono();
    snprintf(res->model, sizeof res->model, "%s", model);
    res->metric = o->metric;
    res->k = rf_metric_at_k(o->metric) ? o->k : 0;
    res->higher_better = rf_metric_higher_better(o->metric);
    res->eta = o->eta;

    cfgs cf = {0, 0, NULL, NULL};
    int rc = o->search == RF_TUNE_GRID ? make_grid(space, o, &cf, err) : make_random(space, o, &cf, err);
    if (rc)
        goto out_cfg;
    if (cf.n == 0) {
        rc = rf_err_set(err, RF_EINVAL, "tune: no configuration to try");
        goto out_cfg;
    }
    /* Trial 0 is the model's defaults (with the fixed parameters): tuning
     * never returns a configuration worse than the defaults on the
     * validation split. */
    if ((rc = cfgs_add(&cf, "", -1))) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out_cfg;
    }
    memmove(cf.text + 1, cf.text, (size_t)(cf.n - 1) * sizeof *cf.text);
    memmove(cf.sub + 1, cf.sub, (size_t)(cf.n - 1) * sizeof *cf.sub);
    cf.text[0][0] = 0;
    cf.sub[0] = -1;
    if ((rc = dedupe_full(model, o->fixed, &cf, err)))
        goto out_cfg;

    /* Rungs and their budgets. */
    int R = o->rungs;
    if (R <= 0) {
        R = 1;
        double need = o->eta;
        while (R < 3 && cf.n >= need) {
            R++;
            need *= o->eta;
        }
    }
    if (R > RF_TUNE_MAX_RUNGS)
        R = RF_TUNE_MAX_RUNGS;
    res->rungs = R;
    for (int r = 0; r < R; r++)
        res->budget[r] = pow((double)o->eta, (double)(r - (R - 1)));
    /* Resource. */
    const char *space_text, *metric_text, *iter;
    rf_tune_model_defaults(model, &space_text, &metric_text, &iter);
    const rf_param_def *iter_def = iter ? find_def(ops->params, iter) : NULL;
    res->resource = o->resource;
    if (res->resource == RF_TUNE_RES_AUTO)
        res->resource = iter_def && iter_def->type == RF_P_INT ? RF_TUNE_RES_ITERATIONS
                                                               : RF_TUNE_RES_USERS;
    if (res->resource == RF_TUNE_RES_ITERATIONS) {
        if (!iter_def || iter_def->type != RF_P_INT) {
            rc = rf_err_set(err, RF_EINVAL, "tune: model %s has no iteration parameter", model);
            goto out_cfg;
        }
        snprintf(res->iter_param, sizeof res->iter_param, "%s", iter);
    }

    res->n_trials = cf.n;
    res->trials = rf_calloc((size_t)cf.n, sizeof *res->trials);
    res->rank = rf_malloc_array((size_t)cf.n, sizeof *res->rank);
    int *alive = rf_malloc_array((size_t)cf.n, sizeof *alive);
    tctx c = {.model = model, .data = data, .o = o, .res = res};
    rf_dataset *own = NULL;
    c.n_val = 0;
    for (int32_t u = 0; u < data->val->nrows; u++)
        c.n_val += rf_csr_row_len(data->val, u) > 0;
    c.perm = rf_malloc_array((size_t)(c.n_val ? c.n_val : 1), sizeof *c.perm);
    c.subset = rf_malloc_array((size_t)(c.n_val ? c.n_val : 1), sizeof *c.subset);
    if (!res->trials || !res->rank || !alive || !c.perm || !c.subset) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    {
        int32_t i = 0;
        for (int32_t u = 0; u < data->val->nrows; u++)
            if (rf_csr_row_len(data->val, u) > 0)
                c.perm[i++] = u;
        rf_rng rng;
        rf_rng_stream(&rng, o->seed, 0x7475u);
        rf_rng_shuffle_i32(&rng, c.perm, c.n_val);
    }
    /* The matrix models fit on: the model's own options if it has some. */
    c.mo = data->dopts;
    if (ops->data_defaults)
        ops->data_defaults(&c.mo);
    c.ds = data->train;
    if (!same_data_opts(&c.mo, &data->dopts)) {
        if ((rc = rf_dataset_build(data->train_ev, &c.mo, &own, err)))
            goto out;
        own->catalog = data->train->catalog;
        own->users_info = data->train->users_info;
        own->events = data->train->events;
        c.ds = own;
    }

    for (int i = 0; i < cf.n; i++) {
        rf_tune_trial *t = &res->trials[i];
        t->id = i;
        t->sub = cf.sub[i];
        snprintf(t->params, sizeof t->params, "%s", cf.text[i]);
        t->status = RF_TRIAL_OK;
        t->rung = -1;
        for (int r = 0; r < RF_TUNE_MAX_RUNGS; r++)
            t->value[r] = NAN;
        alive[i] = i;
    }
    int n_alive = cf.n, total = 0, done = 0;
    for (int r = 0, n = cf.n; r < R; r++) {
        total += n;
        n = n / o->eta > 0 ? n / o->eta : 1;
    }
    rf_log(RF_LOG_INFO, "tune.start",
           "model=%s trials=%d rungs=%d eta=%d resource=%s validation_users=%d runs=%d", model,
           cf.n, R, o->eta,
           res->resource == RF_TUNE_RES_ITERATIONS ? res->iter_param : "users", (int)c.n_val,
           total);
    for (int r = 0; r < R && !res->stopped; r++) {
        int ran = 0;
        for (int a = 0; a < n_alive; a++) {
            rf_tune_trial *t = &res->trials[alive[a]];
            if (o->budget_seconds > 0 && rf_mono() - t0 >= o->budget_seconds) {
                res->stopped = 1;
                break;
            }
            if ((rc = run_one(&c, t, r))) {
                rf_err_set(err, rc, "tune: out of memory");
                goto out;
            }
            ran++;
            done++;
            if (o->on_run)
                o->on_run(o->ud, t, r, done, total);
        }
        /* mark what never ran as skipped */
        for (int a = 0; a < n_alive && res->stopped; a++) {
            rf_tune_trial *t = &res->trials[alive[a]];
            if (t->status == RF_TRIAL_OK && t->rung < 0)
                t->status = RF_TRIAL_SKIPPED;
        }
        if (r == R - 1 || res->stopped || ran == 0)
            break;
        /* promote the best 1/eta of this rung */
        int n_ok = 0;
        for (int a = 0; a < n_alive; a++) {
            rf_tune_trial *t = &res->trials[alive[a]];
            if (t->status == RF_TRIAL_OK && t->rung == r)
                alive[n_ok++] = alive[a];
        }
        qsort_r(alive, (size_t)n_ok, sizeof *alive, cmp_rank, res);
        n_alive = n_ok / o->eta > 0 ? n_ok / o->eta : (n_ok > 0 ? 1 : 0);
        /* the defaults (trial 0) always go on to the full budget, so the
         * search never ends below them: a small budget can misjudge them
         * (ials after 2 of 15 iterations ranks settings differently) */
        int has_defaults = 0;
        for (int a = 0; a < n_alive; a++)
            has_defaults |= alive[a] == 0;
        if (!has_defaults && res->trials[0].status == RF_TRIAL_OK && res->trials[0].rung == r)
            alive[n_alive++] = 0;
        qsort(alive, (size_t)n_alive, sizeof *alive, cmp_i32); /* run in id order */
    }
    for (int i = 0; i < cf.n; i++)
        res->rank[i] = i;
    qsort_r(res->rank, (size_t)cf.n, sizeof *res->rank, cmp_rank, res);
    {
        const rf_tune_trial *b = &res->trials[res->rank[0]];
        if (b->status == RF_TRIAL_OK && b->rung >= 0)
            res->best = b->id;
    }
    res->seconds = rf_mono() - t0;
    if (res->best < 0) {
        const char *why = "no trial ran";
        for (int i = 0; i < cf.n; i++)
            if (res->trials[i].status == RF_TRIAL_FAILED) {
                why = res->trials[i].error;
                break;
            }
        rc = rf_err_set(err, RF_EINVAL, "tune %s: no trial succeeded: %s", model, why);
    }
out:
    rf_dataset_free(own);
    rf_free(alive);
    rf_free(c.perm);
    rf_free(c.subset);
out_cfg:
    rf_free(cf.text);
    rf_free(cf.sub);
    if (rc)
        rf_tune_result_free(res);
    return rc;
}

/* ---- reports ----------------------------------------------------------------- */

static const char *status_name(rf_trial_status s) {
    return s == RF_TRIAL_OK ? "ok" : s == RF_TRIAL_FAILED ? "failed" : "skipped";
}

void rf_tune_print(FILE *out, const rf_tune_result *r, int top) {
    if (!out || !r || !r->trials)
        return;
    char label[32];
    rf_metric_label(r->metric, r->k, label, sizeof label);
    fprintf(out, "%-4s  %5s  %-8s  %10s  %8s  %s\n", "rank", "trial", "budget", label, "fit_s",
            "params");
    int n = top > 0 && top < r->n_trials ? top : r->n_trials;
    for (int i = 0; i < n; i++) {
        const rf_tune_trial *t = &r->trials[r->rank[i]];
        char budget[16], val[32];
        if (t->rung >= 0)
            snprintf(budget, sizeof budget, "%.3g", r->budget[t->rung]);
        else
            snprintf(budget, sizeof budget, "-");
        if (t->status == RF_TRIAL_OK && t->rung >= 0)
            snprintf(val, sizeof val, "%.4f", t->value[t->rung]);
        else
            snprintf(val, sizeof val, "%s", status_name(t->status));
        fprintf(out, "%-4d  %5d  %-8s  %10s  %8.2f  %s\n", i + 1, t->id, budget, val,
                t->fit_seconds, t->params[0] ? t->params : "(defaults)");
    }
    if (n < r->n_trials)
        fprintf(out, "... %d more\n", r->n_trials - n);
}

static json_t *jnumber(double v) { return isfinite(v) ? json_real(v) : json_null(); }

int rf_tune_write_json(const char *path, const rf_tune_result *r, const rf_tune_opts *o,
                       const rf_tune_space *space, const rf_eval_info *info, rf_err *err) {
    if (!path || !r || !r->trials)
        return rf_err_set(err, RF_EINVAL, "tune json: nothing to write");
    json_t *root = json_object(), *trials = json_array(), *board = json_array(),
           *budgets = json_array();
    int bad = !root || !trials || !board || !budgets;
    char label[32], sp[4096];
    rf_metric_label(r->metric, r->k, label, sizeof label);
    if (!bad) {
        bad |= json_object_set_new(root, "recfuse", json_string(RF_VERSION));
        bad |= json_object_set_new(root, "model", json_string(r->model));
        bad |= json_object_set_new(root, "metric", json_string(label));
        bad |= json_object_set_new(root, "higher_is_better", json_boolean(r->higher_better));
        bad |= json_object_set_new(root, "search",
                                   json_string(o && o->search == RF_TUNE_GRID ? "grid" : "random"));
        if (o) {
            bad |= json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
            bad |= json_object_set_new(root, "budget_seconds", json_real(o->budget_seconds));
            if (o->fixed)
                bad |= json_object_set_new(root, "fixed", json_string(o->fixed));
        }
        if (space) {
            rf_tune_space_format(space, sp, sizeof sp);
            bad |= json_object_set_new(root, "space", json_string(sp));
        }
        bad |= json_object_set_new(root, "eta", json_integer(r->eta));
        bad |= json_object_set_new(root, "rungs", json_integer(r->rungs));
        bad |= json_object_set_new(root, "resource",
                                   json_string(r->resource == RF_TUNE_RES_ITERATIONS
                                                   ? r->iter_param
                                                   : "users"));
        for (int i = 0; i < r->rungs; i++)
            bad |= json_array_append_new(budgets, json_real(r->budget[i]));
        bad |= json_object_set_new(root, "budgets", budgets);
        budgets = NULL;
        bad |= json_object_set_new(root, "stopped_by_budget", json_boolean(r->stopped));
        bad |= json_object_set_new(root, "seconds", json_real(r->seconds));
        if (info) {
            json_t *p = json_object();
            bad |= !p;
            if (p) {
                bad |= json_object_set_new(p, "split", json_string(info->protocol ? info->protocol
                                                                                  : ""));
                bad |= json_object_set_new(p, "detail", json_string(info->detail ? info->detail
                                                                                : ""));
                bad |= json_object_set_new(p, "train_rows", json_integer(info->train_rows));
                bad |= json_object_set_new(p, "validation_rows", json_integer(info->test_rows));
                bad |= json_object_set_new(p, "validation_users", json_integer(info->test_users));
                bad |= json_object_set_new(root, "protocol", p);
            }
        }
        for (int i = 0; i < r->n_trials; i++) {
            const rf_tune_trial *t = &r->trials[i];
            json_t *o1 = json_object(), *vals = json_array();
            if (!o1 || !vals) {
                json_decref(o1);
                json_decref(vals);
                bad = 1;
                break;
            }
            for (int q = 0; q <= t->rung && q < r->rungs; q++)
                bad |= json_array_append_new(vals, jnumber(t->value[q]));
            bad |= json_object_set_new(o1, "id", json_integer(t->id));
            bad |= json_object_set_new(o1, "params", json_string(t->params));
            bad |= json_object_set_new(o1, "full_params", json_string(t->full));
            bad |= json_object_set_new(o1, "status", json_string(status_name(t->status)));
            bad |= json_object_set_new(o1, "rung", json_integer(t->rung));
            bad |= json_object_set_new(
                o1, "value", t->rung >= 0 ? jnumber(t->value[t->rung]) : json_null());
            bad |= json_object_set_new(o1, "values", vals);
            bad |= json_object_set_new(o1, "fit_seconds", json_real(t->fit_seconds));
            bad |= json_object_set_new(o1, "eval_seconds", json_real(t->eval_seconds));
            if (t->error[0])
                bad |= json_object_set_new(o1, "error", json_string(t->error));
            bad |= json_array_append_new(trials, o1);
        }
        for (int i = 0; i < r->n_trials; i++)
            bad |= json_array_append_new(board, json_integer(r->rank[i]));
        bad |= json_object_set_new(root, "trials", trials);
        trials = NULL;
        bad |= json_object_set_new(root, "leaderboard", board);
        board = NULL;
        if (r->best >= 0) {
            const rf_tune_trial *b = &r->trials[r->best];
            json_t *bo = json_object();
            bad |= !bo;
            if (bo) {
                bad |= json_object_set_new(bo, "trial", json_integer(b->id));
                bad |= json_object_set_new(bo, "params", json_string(b->params));
                bad |= json_object_set_new(bo, "full_params", json_string(b->full));
                bad |= json_object_set_new(bo, "value", jnumber(b->value[b->rung]));
                bad |= json_object_set_new(bo, "rung", json_integer(b->rung));
                bad |= json_object_set_new(root, "best", bo);
            }
        }
    }
    json_decref(trials);
    json_decref(board);
    json_decref(budgets);
    if (bad) {
        json_decref(root);
        return rf_err_set(err, RF_ENOMEM, "tune json: out of memory");
    }
    int rc = rf_eval_json_dump(root, path, err);
    json_decref(root);
    return rc;
}
