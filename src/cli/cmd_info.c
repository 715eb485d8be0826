/* cmd_info.c - `recfuse info`: what a data directory holds.
 *
 * Counts of users, items and events (per event type), the time span of
 * the events, and the model files in DIR/models. Text by default, one
 * JSON object with --json. */
#include <dirent.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "recfuse/events.h"
#include "recfuse/util.h"

static void info_usage(FILE *out) {
    fprintf(out,
            "usage: recfuse info --data DIR [--json]\n\n"
            "Prints the users, items and events stored in DIR (events per type and their\n"
            "time span) and the models in DIR/models.\n");
}

typedef struct model_file {
    char name[256];
    int64_t bytes;
    int64_t mtime;
} model_file;

static int cmp_model(const void *a, const void *b) {
    return strcmp(((const model_file *)a)->name, ((const model_file *)b)->name);
}

/* Model files (*.rfm) in DIR/models, sorted by name; *n set. malloc'd. */
static model_file *list_models(const char *dir, int *n) {
    *n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/models", dir);
    DIR *d = opendir(path);
    if (!d) return NULL;
    model_file *m = NULL;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".rfm") != 0 || len - 4 >= sizeof m->name)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            model_file *nm = realloc(m, (size_t)cap * sizeof *m);
            if (!nm) break;
            m = nm;
        }
        model_file *f = &m[*n];
        memcpy(f->name, de->d_name, len - 4);
        f->name[len - 4] = 0;
        char fp[4400];
        snprintf(fp, sizeof fp, "%s/%s", path, de->d_name);
        struct stat st;
        if (stat(fp, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        f->bytes = (int64_t)st.st_size;
        f->mtime = (int64_t)st.st_mtime;
        (*n)++;
    }
    closedir(d);
    if (*n > 1) qsort(m, (size_t)*n, sizeof *m, cmp_model);
    return m;
}

static void human(int64_t b, char *buf, size_t size) {
    if (b < 1024)
        snprintf(buf, size, "%lld B", (long long)b);
    else if (b < 1024 * 1024)
        snprintf(buf, size, "%.1f KiB", b / 1024.0);
    else if (b < 1024LL * 1024 * 1024)
        snprintf(buf, size, "%.1f MiB", b / 1048576.0);
    else
        snprintf(buf, size, "%.2f GiB", b / 1073741824.0);
}

int rf_cmd_info(rf_args *a) {
    rf_err err;
    rf_err_clear(&err);
    if (rf_arg_flag(a, "help")) {
        info_usage(stdout);
        return 0;
    }
    int as_json = rf_arg_flag(a, "json");
    const char *dir = rf_arg_str(a, "data", NULL);
    if (rf_args_check_unused(a, &err) != 0) return rf_cli_fail(a->cmd, &err);
    rf_store *s = NULL;
    if (rf_cli_open_store(a, 0, &s, &err) != 0) return rf_cli_fail(a->cmd, &err);
    rf_store_counts c;
    if (rf_store_count(s, &c, &err) != 0) {
        rf_store_close(s);
        return rf_cli_fail(a->cmd, &err);
    }
    int64_t per_type[RF_EV_NTYPES] = {0}, tmin = 0, tmax = 0;
    sqlite3 *db = rf_store_db(s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT type, count(*) FROM events GROUP BY type", -1, &q, NULL) ==
        SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            int t = sqlite3_column_int(q, 0);
            if (t >= 0 && t < RF_EV_NTYPES) per_type[t] += sqlite3_column_int64(q, 1);
        }
        sqlite3_finalize(q);
    }
    if (c.events > 0 &&
        sqlite3_prepare_v2(db, "SELECT min(ts), max(ts) FROM events", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) {
            tmin = sqlite3_column_int64(q, 0);
            tmax = sqlite3_column_int64(q, 1);
        }
        sqlite3_finalize(q);
    }
    struct stat dbst;
    int64_t db_bytes = stat(rf_store_path(s), &dbst) == 0 ? (int64_t)dbst.st_size : 0;
    int nm = 0;
    model_file *models = list_models(dir, &nm);
    char t0[32], t1[32];
    rf_format_time(tmin, t0, sizeof t0);
    rf_format_time(tmax, t1, sizeof t1);

    if (as_json) {
        json_t *o = json_object(), *types = json_object(), *ml = json_array();
        json_object_set_new(o, "data", json_string(dir));
        json_object_set_new(o, "database", json_string(rf_store_path(s)));
        json_object_set_new(o, "database_bytes", json_integer(db_bytes));
        json_object_set_new(o, "users", json_integer(c.users));
        json_object_set_new(o, "items", json_integer(c.items));
        json_object_set_new(o, "events", json_integer(c.events));
        for (int t = 0; t < RF_EV_NTYPES; t++)
            if (per_type[t] > 0) json_object_set_new(types, rf_event_type_name(t), json_integer(per_type[t]));
        json_object_set_new(o, "event_types", types);
        if (c.events > 0) {
            json_object_set_new(o, "first_event", json_string(t0));
            json_object_set_new(o, "last_event", json_string(t1));
        }
        for (int i = 0; i < nm; i++) {
            json_t *m = json_object();
            char mt[32];
            rf_format_time(models[i].mtime, mt, sizeof mt);
            json_object_set_new(m, "name", json_string(models[i].name));
            json_object_set_new(m, "bytes", json_integer(models[i].bytes));
            json_object_set_new(m, "modified", json_string(mt));
            json_array_append_new(ml, m);
        }
        json_object_set_new(o, "models", ml);
        char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (txt) puts(txt);
        free(txt);
        json_decref(o);
    } else {
        char hb[32];
        human(db_bytes, hb, sizeof hb);
        printf("data      %s\n", dir);
        printf("database  %s (%s)\n", rf_store_path(s), hb);
        printf("users     %lld\n", (long long)c.users);
        printf("items     %lld\n", (long long)c.items);
        printf("events    %lld", (long long)c.events);
        const char *sep = " (";
        for (int t = 0; t < RF_EV_NTYPES; t++)
            if (per_type[t] > 0) {
                printf("%s%s %lld", sep, rf_event_type_name(t), (long long)per_type[t]);
                sep = ", ";
            }
        printf("%s\n", sep[0] == ',' ? ")" : "");
        if (c.events > 0) printf("time      %s .. %s\n", t0, t1);
        printf("models    %d\n", nm);
        for (int i = 0; i < nm; i++) {
            char mt[32];
            rf_format_time(models[i].mtime, mt, sizeof mt);
            human(models[i].bytes, hb, sizeof hb);
            printf("  %-12s %10s  %s\n", models[i].name, hb, mt);
        }
    }
    free(models);
    rf_store_close(s);
    return 0;
}
