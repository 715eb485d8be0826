/* cmd_import.c - `recfuse import`: load interactions, items and users
 * (TSV, CSV, JSONL) or a MovieLens 100K directory into a data directory.
 *
 * Files are imported in the order items, users, interactions, MovieLens,
 * so catalog rows get their row ids in catalog order. Each file is its own
 * transaction: when one fails, the ones before it stay imported and the
 * message says which file was not. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/events.h"
#include "recfuse/log.h"
#include "recfuse/store.h"

static void import_usage(FILE *out) {
    fprintf(out,
            "usage: recfuse import --data DIR [--interactions FILE] [--items FILE] [--users FILE]\n"
            "                      [--movielens MLDIR] [--format tsv|csv|jsonl] [--header|--no-header]\n"
            "                      [--type TYPE] [--skip-bad FILE]\n\n"
            "Imports into DIR/recfuse.db (created with DIR). Re-importing a file adds no\n"
            "duplicate events; items and users are updated (upsert).\n\n"
            "options:\n"
            "  --data DIR           data directory (created if missing)\n"
            "  --interactions FILE  events: user, item[, type][, value][, timestamp]\n"
            "                       positional: user item | user item value |\n"
            "                       user item value timestamp | user item type value timestamp\n"
            "  --items FILE         catalog: id, title, category, brand, price, stock, created, ...\n"
            "  --users FILE         customers: id, gender, age, country, segment, ...\n"
            "  --movielens MLDIR    MovieLens 100K directory (u.item, u.user, u.data)\n"
            "  --format F           tsv, csv or jsonl (default: by file extension, else tsv)\n"
            "  --header             the first line is a header\n"
            "  --no-header          no header line: columns are positional\n"
            "                       (default: detected from the first line's names)\n"
            "  --type TYPE          event type of rows without a type column (default rating):\n"
            "                       view, click, cart, purchase, rating, custom\n"
            "  --skip-bad FILE      write bad rows to FILE (FILE:LINE<TAB>reason<TAB>row) and\n"
            "                       import the rest; default: the first bad row aborts the file\n"
            "                       and nothing of it is imported\n"
            "\nTimestamps: Unix seconds or ISO 8601; a file without a timestamp column gets 0.\n"
            "Input may be gzip-compressed (.gz).\n");
}

static void print_stats(const char *what, const char *path, const rf_import_stats *st) {
    printf("%s %s: %lld rows, %lld added, %lld %s, %lld rejected (%.2fs, %.0f rows/s)\n", what,
           path, (long long)st->rows, (long long)st->added, (long long)st->duplicates,
           strcmp(what, "interactions") == 0 || strcmp(what, "movielens") == 0 ? "duplicates"
                                                                                 : "updated",
           (long long)st->rejected, st->seconds,
           st->seconds > 0 ? (double)st->rows / st->seconds : 0.0);
}

int rf_cmd_import(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        import_usage(stdout);
        return 0;
    }
    const char *dir = rf_arg_str(a, "data", NULL);
    const char *inter = rf_arg_str(a, "interactions", NULL);
    const char *items = rf_arg_str(a, "items", NULL);
    const char *users = rf_arg_str(a, "users", NULL);
    const char *ml = rf_arg_str(a, "movielens", NULL);
    const char *fmt = rf_arg_str(a, "format", NULL);
    const char *type = rf_arg_str(a, "type", NULL);
    const char *skip = rf_arg_str(a, "skip-bad", NULL);
    int header = rf_arg_flag(a, "header"), no_header = rf_arg_flag(a, "no-header");
    if (rf_args_check_unused(a, &err) != 0) return rf_cli_fail(a->cmd, &err);

    rf_import_opts o;
    rf_import_opts_default(&o);
    if (!dir) {
        rf_err_set(&err, RF_EINVAL, "--data DIR is required (see 'recfuse import --help')");
        return rf_cli_fail(a->cmd, &err);
    }
    if (!inter && !items && !users && !ml) {
        rf_err_set(&err, RF_EINVAL,
                   "nothing to import: give --interactions, --items, --users or --movielens");
        return rf_cli_fail(a->cmd, &err);
    }
    if (header && no_header) {
        rf_err_set(&err, RF_EINVAL, "--header and --no-header exclude each other");
        return rf_cli_fail(a->cmd, &err);
    }
    o.header = header ? 1 : no_header ? 0 : -1;
    if (fmt) {
        int f = rf_format_parse(fmt);
        if (f < 0) {
            rf_err_set(&err, RF_EINVAL, "--format: unknown format '%s' (tsv, csv or jsonl)", fmt);
            return rf_cli_fail(a->cmd, &err);
        }
        o.format = (rf_format)f;
    }
    if (type) {
        int t = rf_event_type_parse(type, strlen(type));
        if (t < 0) {
            rf_err_set(&err, RF_EINVAL,
                       "--type: unknown event type '%s' (view, click, cart, purchase, rating, "
                       "custom)",
                       type);
            return rf_cli_fail(a->cmd, &err);
        }
        o.default_type = t;
    }
    if (skip) {
        /* One skip file per run: start it empty, the importers append. */
        FILE *f = fopen(skip, "w");
        if (!f) {
            rf_err_set(&err, RF_EIO, "--skip-bad: cannot create '%s'", skip);
            return rf_cli_fail(a->cmd, &err);
        }
        fclose(f);
        o.skip_bad_path = skip;
    }

    /* Missing inputs fail before the data directory is created. */
    const char *inputs[3] = {items, users, inter};
    for (int i = 0; i < 3; i++) {
        if (!inputs[i]) continue;
        FILE *f = fopen(inputs[i], "rb");
        if (!f) {
            rf_err_set(&err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "cannot open '%s': %s",
                       inputs[i], strerror(errno));
            int status = rf_cli_fail(a->cmd, &err);
            fprintf(stderr, "recfuse %s: nothing from %s was imported\n", a->cmd, inputs[i]);
            return status;
        }
        fclose(f);
    }

    rf_store *s = NULL;
    if (rf_store_open(dir, 1, &s, &err) != 0) return rf_cli_fail(a->cmd, &err);
    rf_import_stats st;
    int64_t rejected = 0;
    struct {
        const char *what, *path;
        int (*fn)(rf_store *, const char *, const rf_import_opts *, rf_import_stats *, rf_err *);
    } steps[] = {{"items", items, rf_import_items},
                 {"users", users, rf_import_users},
                 {"interactions", inter, rf_import_interactions}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (!steps[i].path) continue;
        if (steps[i].fn(s, steps[i].path, &o, &st, &err) != 0) {
            int status = rf_cli_fail(a->cmd, &err);
            fprintf(stderr, "recfuse %s: nothing from %s was imported\n", a->cmd, steps[i].path);
            rf_store_close(s);
            return status;
        }
        print_stats(steps[i].what, steps[i].path, &st);
        rejected += st.rejected;
    }
    if (ml) {
        if (rf_import_movielens(s, ml, &st, &err) != 0) {
            int status = rf_cli_fail(a->cmd, &err);
            fprintf(stderr, "recfuse %s: nothing from %s was imported\n", a->cmd, ml);
            rf_store_close(s);
            return status;
        }
        print_stats("movielens", ml, &st);
    }
    rf_store_counts c;
    if (rf_store_count(s, &c, &err) != 0) {
        rf_store_close(s);
        return rf_cli_fail(a->cmd, &err);
    }
    printf("store %s: %lld users, %lld items, %lld events\n", dir, (long long)c.users,
           (long long)c.items, (long long)c.events);
    if (rejected > 0)
        fprintf(stderr, "recfuse %s: %lld bad rows skipped, see %s\n", a->cmd, (long long)rejected,
                skip);
    rf_store_close(s);
    return 0;
}
