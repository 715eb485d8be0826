/* args.c - option parsing shared by the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/util.h"

static int in_list(const char *list, const char *name, size_t len) {
    if (!list) return 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && strncmp(p, name, len) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

int rf_args_parse(int argc, char **argv, const char *flags, rf_args *a, rf_err *err) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strncmp(s, "--", 2) != 0 || s[2] == 0) {
            if (a->n_pos >= RF_ARGS_MAX) return rf_err_set(err, RF_EINVAL, "too many arguments");
            a->pos[a->n_pos++] = s;
            continue;
        }
        if (a->n >= RF_ARGS_MAX) return rf_err_set(err, RF_EINVAL, "too many options");
        const char *name = s + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        /* keys point into argv; store a copy bounded by len via a static
         * trick: we keep the full string and compare with len later. */
        a->key[a->n] = name;
        if (in_list(flags, name, len)) {
            if (eq) return rf_err_set(err, RF_EINVAL, "option --%.*s takes no value", (int)len, name);
            a->val[a->n] = NULL;
        } else if (eq) {
            a->val[a->n] = eq + 1;
        } else {
            if (i + 1 >= argc)
                return rf_err_set(err, RF_EINVAL, "option --%s needs a value", name);
            a->val[a->n] = argv[++i];
        }
        a->n++;
    }
    return 0;
}

static int key_eq(const char *stored, const char *key) {
    size_t n = strlen(key);
    return strncmp(stored, key, n) == 0 && (stored[n] == 0 || stored[n] == '=');
}

static int find(rf_args *a, const char *key) {
    int found = -1;
    for (int i = 0; i < a->n; i++)
        if (key_eq(a->key[i], key)) {
            a->used[i] = 1;
            found = i; /* the last occurrence wins */
        }
    return found;
}

const char *rf_arg_str(rf_args *a, const char *key, const char *def) {
    int i = find(a, key);
    if (i < 0 || !a->val[i]) return def;
    return a->val[i];
}

int rf_arg_flag(rf_args *a, const char *key) { return find(a, key) >= 0; }

int rf_arg_i64(rf_args *a, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
               rf_err *err) {
    const char *v = rf_arg_str(a, key, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    int64_t x;
    if (rf_parse_i64(v, strlen(v), &x) != 0)
        return rf_err_set(err, RF_EINVAL, "--%s: '%s' is not an integer", key, v);
    if (x < min || x > max)
        return rf_err_set(err, RF_EINVAL, "--%s: %lld is outside [%lld, %lld]", key,
                          (long long)x, (long long)min, (long long)max);
    *out = x;
    return 0;
}

int rf_arg_double(rf_args *a, const char *key, double def, double min, double max, double *out,
                  rf_err *err) {
    const char *v = rf_arg_str(a, key, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    double x;
    if (rf_parse_double(v, strlen(v), &x) != 0)
        return rf_err_set(err, RF_EINVAL, "--%s: '%s' is not a number", key, v);
    if (x < min || x > max)
        return rf_err_set(err, RF_EINVAL, "--%s: %g is outside [%g, %g]", key, x, min, max);
    *out = x;
    return 0;
}

int rf_args_check_unused(const rf_args *a, rf_err *err) {
    for (int i = 0; i < a->n; i++)
        if (!a->used[i]) {
            const char *eq = strchr(a->key[i], '=');
            int len = eq ? (int)(eq - a->key[i]) : (int)strlen(a->key[i]);
            return rf_err_set(err, RF_EINVAL, "unknown option --%.*s (see 'recfuse %s --help')",
                              len, a->key[i], a->cmd ? a->cmd : "help");
        }
    if (a->n_pos > 0)
        return rf_err_set(err, RF_EINVAL, "unexpected argument '%s'", a->pos[0]);
    return 0;
}

int rf_cli_fail(const char *cmd, const rf_err *err) {
    const char *msg = err && err->msg[0] ? err->msg : rf_strerror(err ? err->code : RF_EINVAL);
    fprintf(stderr, "recfuse %s: %s\n", cmd ? cmd : "", msg);
    return err && err->code == RF_EINVAL ? 2 : 1;
}

int rf_cli_open_store(rf_args *a, int create, rf_store **out, rf_err *err) {
    const char *dir = rf_arg_str(a, "data", NULL);
    if (!dir) return rf_err_set(err, RF_EINVAL, "--data DIR is required");
    return rf_store_open(dir, create, out, err);
}
