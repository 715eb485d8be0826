/* cmd_similar.c - `recfuse similar`: the items most similar to given
 * items, from the trained item-kNN model (DIR/models/itemknn.rfm).
 *
 * stdout: a header line, then one line per neighbour,
 *   item<TAB>similar<TAB>rank<TAB>similarity
 * best first (ties by the smaller model id). Items come from --item ID
 * (repeatable as a comma-separated list) or from --items FILE (one id per
 * line, '-' for stdin). An id the model does not know is reported on
 * stderr and counted; it is not an error unless every id is unknown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recfuse/itemknn.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse similar --data DIR (--item ID[,ID...] | --items FILE) [--k N]\n\n"
            "Lists the k items most similar to each given item by the trained item-kNN model\n"
            "(train it with 'recfuse train --data DIR --model itemknn'). Output: a header,\n"
            "then item<TAB>similar<TAB>rank<TAB>similarity, best first.\n\n"
            "  --item IDS   comma-separated item ids\n"
            "  --items F    file with one item id per line ('-': stdin)\n"
            "  --k N        neighbours per item (default 10; at most the model's k)\n");
}

/* Print the neighbours of one id; *unknown counts ids the model lacks. */
static int show(const rf_model *m, const char *id, size_t len, int k, rf_scored *buf,
                int64_t *unknown, rf_err *err) {
    int32_t item = rf_idmap_find(m->items, id, len);
    if (item < 0 || item >= m->n_items) {
        rf_log(RF_LOG_WARN, "similar.unknown_item", "item=%.*s", (int)len, id);
        (*unknown)++;
        return 0;
    }
    int n = rf_itemknn_similar(m, item, k, buf, err);
    if (n < 0) return n;
    for (int r = 0; r < n; r++)
        printf("%.*s\t%s\t%d\t%.6g\n", (int)len, id, rf_idmap_str(m->items, buf[r].id), r + 1,
               buf[r].score);
    return 0;
}

int rf_cmd_similar(rf_args *a) {
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_err err;
    rf_err_clear(&err);
    int64_t k = 10;
    if (rf_arg_i64(a, "k", 10, 1, 100000, &k, &err)) return rf_cli_fail("similar", &err);
    const char *ids = rf_arg_str(a, "item", NULL);
    const char *file = rf_arg_str(a, "items", NULL);
    (void)rf_arg_str(a, "data", NULL);
    if (rf_args_check_unused(a, &err)) return rf_cli_fail("similar", &err);
    if (!ids == !file) {
        rf_err_set(&err, RF_EINVAL, "give exactly one of --item and --items");
        return rf_cli_fail("similar", &err);
    }

    int status = 1;
    rf_store *s = NULL;
    rf_model *m = NULL;
    rf_scored *buf = NULL;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    int64_t asked = 0, unknown = 0;
    char path[4096];
    if (rf_cli_open_store(a, 0, &s, &err)) goto done;
    if (rf_cli_trained_model(s, "itemknn", NULL, "item-kNN model", "--model itemknn", path,
                             sizeof path, &err))
        goto done;
    if (rf_model_load(path, &m, &err)) goto done;
    buf = rf_malloc_array((size_t)k, sizeof *buf);
    if (!buf) {
        rf_err_set(&err, RF_ENOMEM, "out of memory");
        goto done;
    }
    printf("item\tsimilar\trank\tsimilarity\n");
    if (ids) {
        for (const char *p = ids; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len) {
                asked++;
                if (show(m, p, len, (int)k, buf, &unknown, &err)) goto done;
            }
            p += len + (e ? 1 : 0);
        }
    } else {
        in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
        if (!in) {
            rf_err_set(&err, RF_EIO, "%s: cannot open", file);
            goto done;
        }
        ssize_t got;
        while ((got = getline(&line, &cap, in)) >= 0) {
            size_t len = (size_t)got;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
            if (!len) continue;
            asked++;
            if (show(m, line, len, (int)k, buf, &unknown, &err)) goto done;
        }
        if (ferror(in)) {
            rf_err_set(&err, RF_EIO, "%s: read error", file);
            goto done;
        }
    }
    if (fflush(stdout) != 0) {
        rf_err_set(&err, RF_EIO, "writing the output failed");
        goto done;
    }
    if (asked > 0 && unknown == asked) {
        rf_err_set(&err, RF_ENOTFOUND, "none of the %lld item(s) is known to the item-kNN model",
                   (long long)asked);
        goto done;
    }
    if (unknown)
        rf_log(RF_LOG_WARN, "similar.unknown", "unknown_items=%lld of=%lld", (long long)unknown,
               (long long)asked);
    status = 0;
done:
    if (status) status = rf_cli_fail("similar", &err);
    if (in && in != stdin) fclose(in);
    free(line);
    rf_free(buf);
    rf_model_free(m);
    rf_store_close(s);
    return status;
}
