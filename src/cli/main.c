/* main.c - the recfuse command: global options and subcommand dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/log.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/version.h"

typedef struct command {
    const char *name;
    int (*run)(rf_args *a);
    const char *summary;
} command;

static const command commands[] = {
    {"gen", rf_cmd_gen, "generate a synthetic shop (customers, catalog, events)"},
    {"import", rf_cmd_import, "import interactions, items and users into a data directory"},
    {"train", rf_cmd_train, "train a model on a data directory"},
    {"recommend", rf_cmd_recommend, "print top-K recommendations for users"},
    {"predict", rf_cmd_predict, "print predicted ratings (scores) of user-item pairs"},
    {"evaluate", rf_cmd_evaluate, "evaluate models offline (split or explicit test file)"},
    {"tune", rf_cmd_tune, "search a model's hyperparameters on a validation split"},
    {"report", rf_cmd_report, "write an HTML + JSON evaluation report with charts"},
    {"info", rf_cmd_info, "show what a data directory holds"},
    {"rules", rf_cmd_rules, "list association rules (frequently bought together)"},
    {"similar", rf_cmd_similar, "list the items most similar to given items (item-kNN)"},
    {"serve", rf_cmd_serve, "serve recommendations over HTTP (real-time events, hot reload)"},
    {NULL, NULL, NULL},
};

/* Options that take no value, for every subcommand. */
static const char *const flag_names =
    "help,quiet,verbose,no-header,header,implicit,explain,force,json,truth,in-stock,mine,binary,"
    "validation,rating,no-auc,no-test-split,fusion-only";

/* Per command: names from flag_names that take a value in that command. */
static const char *valued_opts(const char *cmd) {
    if (strcmp(cmd, "evaluate") == 0 || strcmp(cmd, "tune") == 0 || strcmp(cmd, "report") == 0)
        return "json";
    return "";
}

/* flag_names without the names listed in `valued`, into buf. */
static void command_flags(const char *valued, char *buf, size_t size) {
    buf[0] = 0;
    size_t used = 0;
    const char *p = flag_names;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        int skip = 0;
        const char *v = valued;
        while (*v) {
            const char *ve = strchr(v, ',');
            size_t vn = ve ? (size_t)(ve - v) : strlen(v);
            if (vn == n && strncmp(v, p, n) == 0) skip = 1;
            if (!ve) break;
            v = ve + 1;
        }
        if (!skip && used + n + 2 < size) {
            if (used) buf[used++] = ',';
            memcpy(buf + used, p, n);
            used += n;
            buf[used] = 0;
        }
        if (!e) break;
        p = e + 1;
    }
}

static void usage(FILE *out) {
    fprintf(out,
            "recfuse %s - e-commerce recommendation engine\n\n"
            "usage: recfuse COMMAND [options]   (recfuse COMMAND --help for details)\n\n"
            "commands:\n",
            RF_VERSION);
    for (const command *c = commands; c->name; c++) fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out,
            "\nglobal options:\n"
            "  --quiet            no progress bars, warnings and errors only\n"
            "  --verbose          debug logging\n"
            "  --log-level LEVEL  debug|info|warn|error|off (default info)\n"
            "  --threads N        worker threads (default: all cores, or RECFUSE_THREADS)\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("recfuse %s\n", RF_VERSION);
        return 0;
    }
    const command *cmd = NULL;
    for (const command *c = commands; c->name; c++)
        if (strcmp(c->name, argv[1]) == 0) cmd = c;
    if (!cmd) {
        fprintf(stderr, "recfuse: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    rf_args a;
    rf_err err;
    rf_err_clear(&err);
    char flags[512];
    command_flags(valued_opts(cmd->name), flags, sizeof flags);
    if (rf_args_parse(argc - 2, argv + 2, flags, &a, &err) != 0) return rf_cli_fail(cmd->name, &err);
    a.cmd = cmd->name;

    rf_log_set_level(RF_LOG_INFO);
    if (rf_arg_flag(&a, "quiet")) {
        rf_log_set_level(RF_LOG_WARN);
        rf_progress_set_quiet(1);
    }
    if (rf_arg_flag(&a, "verbose")) rf_log_set_level(RF_LOG_DEBUG);
    const char *lvl = rf_arg_str(&a, "log-level", NULL);
    if (lvl) {
        int l = rf_log_level_parse(lvl);
        if (l < 0) {
            rf_err_set(&err, RF_EINVAL, "--log-level: unknown level '%s'", lvl);
            return rf_cli_fail(cmd->name, &err);
        }
        rf_log_set_level((rf_log_level)l);
    }
    int64_t threads = 0;
    if (rf_arg_i64(&a, "threads", 0, 0, 1024, &threads, &err) != 0) return rf_cli_fail(cmd->name, &err);
    if (threads > 0) rf_set_threads((int)threads);
    return cmd->run(&a);
}
