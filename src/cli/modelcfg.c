/* modelcfg.c - create a model the way the data directory configures it.
 *
 * `recfuse tune` stores the best parameters of a model in
 * DIR/params/NAME.params; `train` and `evaluate` start from the model's
 * defaults, apply that file when present, then any command-line
 * overrides. The file holds "k=v" pairs separated by spaces, commas or
 * newlines; lines starting with '#' are comments. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"

void rf_cli_params_path(const char *dir, const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/params/%s.params", dir, name);
}

/* The file's parameter text without comment lines, allocated; *out NULL if
 * the file does not exist. */
static int read_params_file(const char *path, char **out, rf_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return rf_err_set(err, RF_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 256, n = 0;
    char *text = rf_malloc(cap);
    char line[1024];
    int rc = 0;
    if (!text)
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
    while (rc == 0 && fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#')
            continue;
        size_t l = strlen(p);
        if (n + l + 2 > cap) {
            while (n + l + 2 > cap)
                cap *= 2;
            char *t = rf_realloc(text, cap);
            if (!t) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory");
                break;
            }
            text = t;
        }
        memcpy(text + n, p, l);
        n += l;
        text[n++] = '\n';
    }
    if (rc == 0 && ferror(f))
        rc = rf_err_set(err, RF_EIO, "%s: read error", path);
    fclose(f);
    if (rc) {
        rf_free(text);
        return rc;
    }
    text[n] = 0;
    *out = text;
    return 0;
}

int rf_cli_model_create(const char *dir, const char *name, const char *overrides, rf_model **out,
                        int *from_file, rf_err *err) {
    *out = NULL;
    if (from_file)
        *from_file = 0;
    rf_model *m;
    int rc = rf_model_new(name, &m, err);
    if (rc)
        return rc;
    if (dir) {
        char path[4096];
        rf_cli_params_path(dir, name, path, sizeof path);
        char *text;
        rc = read_params_file(path, &text, err);
        if (rc)
            goto fail;
        if (text) {
            rc = rf_model_set_params(m, text, err);
            rf_free(text);
            if (rc) {
                rf_err_prefix(err, "%s", path);
                goto fail;
            }
            if (from_file)
                *from_file = 1;
            char buf[1024];
            rf_model_params_format(m, buf, sizeof buf);
            rf_log(RF_LOG_INFO, "model.params", "model=%s file=%s params=\"%s\"", name, path, buf);
        }
    }
    if (overrides && *overrides) {
        rc = rf_model_set_params(m, overrides, err);
        if (rc)
            goto fail;
    }
    *out = m;
    return 0;
fail:
    rf_model_free(m);
    return rc;
}

/* Options equal field by field (the struct has padding). */
static int same_data_opts(const rf_dataset_opts *x, const rf_dataset_opts *y) {
    for (int t = 0; t < RF_EV_NTYPES; t++)
        if (x->type_weight[t] != y->type_weight[t]) return 0;
    return x->use_value == y->use_value && x->half_life_days == y->half_life_days &&
           x->now == y->now && x->fold == y->fold && x->binary == y->binary;
}

int rf_cli_model_fit(struct rf_model *m, const rf_events *ev, const rf_dataset_opts *opts,
                     const rf_dataset *d, rf_err *err) {
    rf_dataset_opts mo = *opts;
    if (m->ops->data_defaults) m->ops->data_defaults(&mo);
    m->data_opts = mo;
    if (same_data_opts(&mo, opts)) return rf_model_fit(m, d, err);
    rf_dataset *own = NULL;
    int rc = rf_dataset_build(ev, &mo, &own, err);
    if (rc == 0) {
        rf_log(RF_LOG_INFO, "model.data",
               "model=%s msg=\"own training matrix (model data defaults)\" use_value=%d fold=%d "
               "binary=%d nnz=%lld",
               m->ops->name, mo.use_value, (int)mo.fold, mo.binary, (long long)own->ui->nnz);
        rc = rf_model_fit(m, own, err);
    }
    rf_dataset_free(own);
    return rc;
}

int rf_cli_trained_model(rf_store *s, const char *name, const char *const *order,
                         const char *what, const char *hint, char *path, size_t size,
                         rf_err *err) {
    const char *dir = rf_store_dir(s);
    if (name) {
        rf_store_model_path(s, name, path, size);
        if (access(path, R_OK) != 0)
            return rf_err_set(err, RF_ENOTFOUND,
                              "model '%s' is not trained in %s (run 'recfuse train --data %s "
                              "--model %s')",
                              name, dir, dir, name);
        return 0;
    }
    for (int i = 0; order[i]; i++) {
        rf_store_model_path(s, order[i], path, size);
        if (access(path, R_OK) == 0) return 0;
    }
    return rf_err_set(err, RF_ENOTFOUND, "no %s trained in %s (run 'recfuse train --data %s%s')",
                      what, dir, dir, hint);
}
