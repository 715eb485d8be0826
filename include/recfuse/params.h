/* params.h - declarative parameter tables.
 *
 * A model (or any component) describes its parameters once, as an array
 * of rf_param_def ending with {0}; the table drives defaults, key=value
 * overrides with range checks, saving/loading and `--help` text. Values
 * live in a plain struct at the given offsets. */
#ifndef RECFUSE_PARAMS_H
#define RECFUSE_PARAMS_H

#include <stddef.h>
#include <stdio.h>

struct rf_err;

typedef enum rf_ptype { RF_P_INT = 1, RF_P_DOUBLE = 2, RF_P_ENUM = 3 } rf_ptype;

typedef struct rf_param_def {
    const char *name;
    rf_ptype type;     /* INT: int field, DOUBLE: double field, ENUM: int field */
    size_t offset;     /* offsetof(struct, field) */
    double def, min, max;
    const char *choices; /* ENUM only: "cosine,jaccard,bm25" -> 0,1,2 */
    const char *help;
} rf_param_def;

void rf_params_defaults(const rf_param_def *defs, void *obj);
/* Set one parameter from text. RF_ENOTFOUND for an unknown name (the
 * message lists the known ones), RF_EPARSE / RF_ERANGE for a bad value. */
int rf_params_set(const rf_param_def *defs, void *obj, const char *name, const char *value,
                  struct rf_err *err);
/* Apply "k=v,k2=v2" or "k=v k2=v2". */
int rf_params_apply(const rf_param_def *defs, void *obj, const char *kvs, struct rf_err *err);
/* "k=v k2=v2" of all parameters into buf; returns chars written. */
int rf_params_format(const rf_param_def *defs, const void *obj, char *buf, size_t size);
/* Help lines: name, default, range, choices, text. */
void rf_params_help(const rf_param_def *defs, FILE *out);

#endif
