/* params.c - declarative parameter tables: defaults, parsing, formatting. */
#include "recfuse/params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/util.h"

static int *int_field(void *obj, const rf_param_def *d) { return (int *)((char *)obj + d->offset); }
static double *dbl_field(void *obj, const rf_param_def *d) {
    return (double *)((char *)obj + d->offset);
}

void rf_params_defaults(const rf_param_def *defs, void *obj) {
    for (const rf_param_def *d = defs; d && d->name; d++) {
        if (d->type == RF_P_DOUBLE)
            *dbl_field(obj, d) = d->def;
        else
            *int_field(obj, d) = (int)d->def;
    }
}

/* Index of `value` in the comma list `choices`, or -1. */
static int choice_index(const char *choices, const char *value) {
    size_t vl = strlen(value);
    int idx = 0;
    const char *p = choices;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == vl && strncmp(p, value, n) == 0) return idx;
        idx++;
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

/* Copy choice number `idx` into buf. */
static void choice_name(const char *choices, int idx, char *buf, size_t size) {
    const char *p = choices;
    for (int i = 0; p && i < idx; i++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p) {
        snprintf(buf, size, "%d", idx);
        return;
    }
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    snprintf(buf, size, "%.*s", (int)n, p);
}

int rf_params_set(const rf_param_def *defs, void *obj, const char *name, const char *value,
                  rf_err *err) {
    const rf_param_def *d = defs;
    for (; d && d->name; d++)
        if (strcmp(d->name, name) == 0) break;
    if (!d || !d->name) {
        char known[512] = "";
        size_t used = 0;
        for (const rf_param_def *k = defs; k && k->name; k++) {
            int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", k->name);
            if (w < 0 || (size_t)w >= sizeof known - used) break;
            used += (size_t)w;
        }
        return rf_err_set(err, RF_ENOTFOUND, "unknown parameter '%s' (known: %s)", name,
                          used ? known : "none");
    }
    if (d->type == RF_P_ENUM) {
        int idx = choice_index(d->choices, value);
        if (idx < 0)
            return rf_err_set(err, RF_EPARSE, "parameter %s: '%s' is not one of %s", name, value,
                              d->choices);
        *int_field(obj, d) = idx;
        return 0;
    }
    double v;
    if (rf_parse_double(value, strlen(value), &v) != 0)
        return rf_err_set(err, RF_EPARSE, "parameter %s: '%s' is not a number", name, value);
    if (d->type == RF_P_INT && v != floor(v))
        return rf_err_set(err, RF_EPARSE, "parameter %s: '%s' is not an integer", name, value);
    if (v < d->min || v > d->max)
        return rf_err_set(err, RF_ERANGE, "parameter %s: %g is outside [%g, %g]", name, v, d->min,
                          d->max);
    if (d->type == RF_P_INT)
        *int_field(obj, d) = (int)v;
    else
        *dbl_field(obj, d) = v;
    return 0;
}

int rf_params_apply(const rf_param_def *defs, void *obj, const char *kvs, rf_err *err) {
    if (!kvs) return 0;
    const char *p = kvs;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t') p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\n' && *e != '\t') e++;
        char item[256];
        size_t n = (size_t)(e - p);
        if (n >= sizeof item) return rf_err_set(err, RF_EPARSE, "parameter text too long");
        memcpy(item, p, n);
        item[n] = 0;
        char *eq = strchr(item, '=');
        if (!eq) return rf_err_set(err, RF_EPARSE, "parameter '%s': expected name=value", item);
        *eq = 0;
        int rc = rf_params_set(defs, obj, item, eq + 1, err);
        if (rc) return rc;
        p = e;
    }
    return 0;
}

int rf_params_format(const rf_param_def *defs, const void *obj, char *buf, size_t size) {
    size_t used = 0;
    if (size) buf[0] = 0;
    for (const rf_param_def *d = defs; d && d->name; d++) {
        char val[64];
        void *o = (void *)obj;
        if (d->type == RF_P_DOUBLE) {
            /* Shortest text that reads back to the same double. */
            double x = *dbl_field(o, d);
            for (int prec = 6; prec <= 17; prec++) {
                snprintf(val, sizeof val, "%.*g", prec, x);
                if (strtod(val, NULL) == x) break;
            }
        }
        else if (d->type == RF_P_ENUM)
            choice_name(d->choices, *int_field(o, d), val, sizeof val);
        else
            snprintf(val, sizeof val, "%d", *int_field(o, d));
        int w = snprintf(buf + used, size - used, "%s%s=%s", used ? " " : "", d->name, val);
        if (w < 0 || (size_t)w >= size - used) break;
        used += (size_t)w;
    }
    return (int)used;
}

void rf_params_help(const rf_param_def *defs, FILE *out) {
    for (const rf_param_def *d = defs; d && d->name; d++) {
        char def[64];
        if (d->type == RF_P_ENUM)
            choice_name(d->choices, (int)d->def, def, sizeof def);
        else
            snprintf(def, sizeof def, "%g", d->def);
        if (d->type == RF_P_ENUM)
            fprintf(out, "  %-16s default %-10s one of %s: %s\n", d->name, def, d->choices, d->help);
        else
            fprintf(out, "  %-16s default %-10s range [%g, %g]: %s\n", d->name, def, d->min, d->max,
                    d->help);
    }
}
