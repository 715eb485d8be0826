/* cli.h - shared pieces of the recfuse command-line tool.
 *
 * main.c parses the global options (--quiet, --threads, --log-level) and
 * dispatches to one rf_cmd_* per subcommand, each in its own file. A
 * subcommand reads its options from an rf_args, prints results on stdout,
 * diagnostics on stderr, and returns the process exit status
 * (0 ok, 1 failure, 2 usage error). */
#ifndef RF_CLI_H
#define RF_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "recfuse/error.h"
#include "recfuse/store.h"

#define RF_ARGS_MAX 64

typedef struct rf_args {
    const char *cmd;
    int n;
    const char *key[RF_ARGS_MAX];
    const char *val[RF_ARGS_MAX]; /* NULL for boolean flags */
    int used[RF_ARGS_MAX];
    int n_pos;
    const char *pos[RF_ARGS_MAX]; /* positional arguments */
} rf_args;

/* Parse argv[0..argc) ("--key value", "--key=value", "--flag"); names in
 * `flags` (comma-separated) take no value. */
int rf_args_parse(int argc, char **argv, const char *flags, rf_args *a, rf_err *err);
/* Option value or `def` when absent; marks it used. */
const char *rf_arg_str(rf_args *a, const char *key, const char *def);
int rf_arg_flag(rf_args *a, const char *key);
/* Integer/double option with range check; error names the option. */
int rf_arg_i64(rf_args *a, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
               rf_err *err);
int rf_arg_double(rf_args *a, const char *key, double def, double min, double max, double *out,
                  rf_err *err);
/* RF_EINVAL naming the first option no subcommand read. */
int rf_args_check_unused(const rf_args *a, rf_err *err);

/* Print "recfuse CMD: message" to stderr; returns 1 (or 2 for RF_EINVAL). */
int rf_cli_fail(const char *cmd, const rf_err *err);
/* Open the store named by --data (required). */
int rf_cli_open_store(rf_args *a, int create, rf_store **out, rf_err *err);

/* modelcfg.c: DIR/params/NAME.params into buf. */
void rf_cli_params_path(const char *dir, const char *name, char *buf, size_t size);
/* New unfitted model NAME with its defaults, then DIR/params/NAME.params
 * when present (dir may be NULL), then `overrides` ("k=v,..."; may be
 * NULL). *from_file (may be NULL) is 1 if the file was applied. Errors as
 * rf_model_new / rf_model_set_params, RF_EIO for an unreadable file. */
struct rf_model;
int rf_cli_model_create(const char *dir, const char *name, const char *overrides,
                        struct rf_model **out, int *from_file, rf_err *err);
/* Fit m on d, the matrix the command built from ev with opts - or, when the
 * model's data_defaults op asks for other options (mf, svdpp: rating
 * values), on a matrix built from ev with those. Sets m->data_opts. */
struct rf_dataset;
struct rf_dataset_opts;
int rf_cli_model_fit(struct rf_model *m, const rf_events *ev, const struct rf_dataset_opts *opts,
                     const struct rf_dataset *d, rf_err *err);

/* Path of a trained model in DIR/models: NAME when given (RF_ENOTFOUND
 * naming the train command if it is not trained), else the first trained
 * one of `order` (NULL-terminated); otherwise RF_ENOTFOUND "no WHAT
 * trained in DIR (run 'recfuse train --data DIR HINT')". */
int rf_cli_trained_model(rf_store *s, const char *name, const char *const *order,
                         const char *what, const char *hint, char *path, size_t size,
                         rf_err *err);

int rf_cmd_gen(rf_args *a);
int rf_cmd_import(rf_args *a);
int rf_cmd_train(rf_args *a);
int rf_cmd_recommend(rf_args *a);
int rf_cmd_predict(rf_args *a);
int rf_cmd_evaluate(rf_args *a);
int rf_cmd_tune(rf_args *a);
int rf_cmd_report(rf_args *a);
int rf_cmd_similar(rf_args *a);
int rf_cmd_info(rf_args *a);
int rf_cmd_rules(rf_args *a);
int rf_cmd_serve(rf_args *a);

#endif
