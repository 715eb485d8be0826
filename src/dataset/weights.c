/* weights.c - dataset options: defaults, the "view=1,cart=3" weight
 * syntax and the range check. */
#include <math.h>
#include <string.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/util.h"

void rf_dataset_opts_default(rf_dataset_opts *o) {
    memset(o, 0, sizeof *o);
    o->type_weight[RF_EV_VIEW] = 1.0f;
    o->type_weight[RF_EV_CLICK] = 1.0f;
    o->type_weight[RF_EV_CART] = 3.0f;
    o->type_weight[RF_EV_PURCHASE] = 5.0f;
    o->type_weight[RF_EV_RATING] = 1.0f;
    o->type_weight[RF_EV_CUSTOM] = 1.0f;
    o->use_value = 0;
    o->half_life_days = 0.0;
    o->now = 0;
    o->fold = RF_FOLD_SUM;
    o->binary = 0;
}

const char *rf_dataset_opts_check(const rf_dataset_opts *o) {
    for (int t = 0; t < RF_EV_NTYPES; t++)
        if (!isfinite(o->type_weight[t])) return "event type weights must be finite";
    if (!isfinite(o->half_life_days) || o->half_life_days < 0)
        return "half_life_days must be >= 0 (0: no decay)";
    if (o->fold != RF_FOLD_SUM && o->fold != RF_FOLD_MAX && o->fold != RF_FOLD_LAST)
        return "fold must be sum, max or last";
    return NULL;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Trim blanks off [*s, *s + *len). */
static void trim(const char **s, size_t *len) {
    while (*len && is_blank(**s)) (*s)++, (*len)--;
    while (*len && is_blank((*s)[*len - 1])) (*len)--;
}

int rf_dataset_parse_weights(rf_dataset_opts *o, const char *spec, rf_err *err) {
    if (!o || !spec) return rf_err_set(err, RF_EINVAL, "event weights: NULL argument");
    float w[RF_EV_NTYPES];
    memcpy(w, o->type_weight, sizeof w);
    const char *p = spec;
    while (is_blank(*p)) p++;
    if (!*p) return 0; /* an empty spec changes nothing */
    p = spec;
    for (int k = 1;; k++) {
        const char *end = strchr(p, ',');
        size_t elen = end ? (size_t)(end - p) : strlen(p);
        const char *e = p;
        size_t len = elen;
        trim(&e, &len);
        if (len == 0)
            return rf_err_set(err, RF_EINVAL, "event weights: entry %d is empty in '%s'", k, spec);
        const char *eq = memchr(e, '=', len);
        if (!eq)
            return rf_err_set(err, RF_EINVAL, "event weights: entry %d '%.*s': expected type=weight",
                              k, (int)len, e);
        const char *name = e, *num = eq + 1;
        size_t nlen = (size_t)(eq - e), vlen = len - nlen - 1;
        trim(&name, &nlen);
        trim(&num, &vlen);
        int type = rf_event_type_parse(name, nlen);
        if (type < 0)
            return rf_err_set(err, RF_EINVAL,
                              "event weights: entry %d '%.*s': unknown event type '%.*s' "
                              "(view, click, cart, purchase, rating, custom)",
                              k, (int)len, e, (int)nlen, name);
        double v;
        if (rf_parse_double(num, vlen, &v) != 0 || fabs(v) > 3.0e38)
            return rf_err_set(err, RF_EINVAL,
                              "event weights: entry %d '%.*s': weight '%.*s' is not a finite number",
                              k, (int)len, e, (int)vlen, num);
        w[type] = (float)v;
        if (!end) break;
        p = end + 1;
    }
    memcpy(o->type_weight, w, sizeof w);
    return 0;
}

int rf_dataset_opts_equal(const rf_dataset_opts *x, const rf_dataset_opts *y) {
    for (int t = 0; t < RF_EV_NTYPES; t++)
        if (x->type_weight[t] != y->type_weight[t]) return 0;
    return x->use_value == y->use_value && x->half_life_days == y->half_life_days &&
           x->now == y->now && x->fold == y->fold && x->binary == y->binary;
}
