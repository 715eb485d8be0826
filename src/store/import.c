/* import.c - importers for interactions, items and users (TSV, CSV, JSONL).
 *
 * Each file is read record by record (rows.c), its columns are mapped to
 * roles by a header or by position, each row is validated into typed
 * values, and rows go to a sink: the store (one transaction per file) or
 * an in-memory rf_events (rf_read_interactions). A bad row either aborts
 * the file with "FILE:LINE: FIELD: reason" - and the transaction rolls
 * back, so the store holds exactly what it held before - or, with a skip
 * file, is written there and the rest commits.
 *
 * DESIGN (bulk speed): string ids are resolved once per distinct id and
 * cached in an rf_idmap (plus a one-entry cache for session-grouped logs),
 * so an event row costs no lookup query; events are buffered in chunks of
 * 512K rows, radix-sorted by (user, item) row id and inserted through one
 * prepared INSERT OR IGNORE, so b-tree pages are touched in key order and
 * the page cache (sized from the file) stays hot - about 3x cheaper than
 * inserting in file order. When the file is large next to the events
 * already stored, the two secondary indexes are dropped and rebuilt at the
 * end of the transaction: one sort per index instead of a random b-tree
 * insert per row (measured ~2x cheaper; the rebuild is still the largest
 * phase of a bulk import). All of it stays in the one transaction, so a
 * failure still rolls everything back, indexes included. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/util.h"
#include "store/rows.h"
#include "store/store_int.h"

/* ---- options, formats ------------------------------------------------------ */

void rf_import_opts_default(rf_import_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = RF_FMT_AUTO;
    o->header = -1;
    o->skip_bad_path = NULL;
    o->default_type = RF_EV_RATING;
}

int rf_format_parse(const char *name) {
    if (!name) return -1;
    if (strcasecmp(name, "auto") == 0) return RF_FMT_AUTO;
    if (strcasecmp(name, "tsv") == 0 || strcasecmp(name, "tab") == 0) return RF_FMT_TSV;
    if (strcasecmp(name, "csv") == 0) return RF_FMT_CSV;
    if (strcasecmp(name, "jsonl") == 0 || strcasecmp(name, "ndjson") == 0 ||
        strcasecmp(name, "json") == 0)
        return RF_FMT_JSONL;
    return -1;
}

const char *rf_format_name(rf_format f) {
    switch (f) {
    case RF_FMT_TSV: return "tsv";
    case RF_FMT_CSV: return "csv";
    case RF_FMT_JSONL: return "jsonl";
    default: return "auto";
    }
}

/* ---- row errors and the skip file ------------------------------------------- */

void rf_rowerr_set(rf_rowerr *re, int64_t line, const char *field, const char *fmt, ...) {
    re->line = line;
    snprintf(re->field, sizeof re->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(re->reason, sizeof re->reason, fmt, ap);
    va_end(ap);
}

int rf_rowerr_raise(const rf_rowerr *re, const char *path, int code, rf_err *err) {
    return rf_err_set(err, code, "%s:%lld: %s: %s", path, (long long)re->line, re->field,
                      re->reason);
}

int rf_rejects_add(rf_rejects *rj, const char *file, const rf_rowerr *re, const char *raw,
                   size_t raw_len, rf_err *err) {
    if (!rj->path) return rf_rowerr_raise(re, file, RF_EPARSE, err);
    if (!rj->f) {
        rj->f = fopen(rj->path, "a");
        if (!rj->f)
            return rf_err_set(err, RF_EIO, "cannot open the skip file '%s': %s", rj->path,
                              strerror(errno));
    }
    fprintf(rj->f, "%s:%lld\t%s: %s\t", file, (long long)re->line, re->field, re->reason);
    for (size_t i = 0; i < raw_len; i++) {
        char c = raw[i];
        if (c == '\n')
            fputs("\\n", rj->f);
        else if (c == '\r')
            fputs("\\r", rj->f);
        else
            fputc(c, rj->f);
    }
    fputc('\n', rj->f);
    rj->n++;
    if (ferror(rj->f))
        return rf_err_set(err, RF_EIO, "cannot write the skip file '%s'", rj->path);
    return 0;
}

int rf_rejects_close(rf_rejects *rj, rf_err *err) {
    int rc = 0;
    if (rj->f) {
        if (fclose(rj->f) != 0)
            rc = rf_err_set(err, RF_EIO, "cannot write the skip file '%s': %s", rj->path,
                            strerror(errno));
        rj->f = NULL;
    }
    return rc;
}

/* "'value'" for messages: at most 60 bytes, control bytes as '?'. */
static const char *show(rf_field f, char *buf, size_t size) {
    size_t n = f.len > 60 ? 60 : f.len, k = 0;
    buf[k++] = '\'';
    for (size_t i = 0; i < n && k + 5 < size; i++) {
        unsigned char c = (unsigned char)f.s[i];
        buf[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (f.len > n && k + 5 < size) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k++] = '\'';
    buf[k] = 0;
    return buf;
}

/* ---- columns ----------------------------------------------------------------- */

typedef struct colspec {
    const char *name;    /* canonical, used in messages */
    const char *aliases; /* comma-separated header names */
} colspec;

enum { EV_USER, EV_ITEM, EV_TYPE, EV_VALUE, EV_TS, EV_NCOL };
static const colspec ev_cols[EV_NCOL] = {
    {"user", "user,user_id,userid,customer,customer_id,customerid,visitor,visitorid,visitor_id"},
    {"item", "item,item_id,itemid,product,product_id,productid,sku,movie,movie_id,movieid"},
    {"type", "type,event,event_type,action"},
    {"value", "value,rating,score,quantity,qty"},
    {"timestamp", "timestamp,ts,time,datetime,date,event_time"},
};

enum { IT_ID, IT_TITLE, IT_CAT, IT_BRAND, IT_PRICE, IT_STOCK, IT_CREATED, IT_ATTRS, IT_NCOL };
static const colspec item_cols[IT_NCOL] = {
    {"id", "id,item,item_id,itemid,product_id,sku"},
    {"title", "title,name"},
    {"category", "category,cat"},
    {"brand", "brand"},
    {"price", "price"},
    {"stock", "stock,inventory"},
    {"created", "created,created_at,release_date,date"},
    {"attrs", "attrs,attributes"},
};

enum { US_ID, US_GENDER, US_AGE, US_COUNTRY, US_SEGMENT, US_ATTRS, US_NCOL };
static const colspec user_cols[US_NCOL] = {
    {"id", "id,user,user_id,userid,customer,customer_id"},
    {"gender", "gender,sex"},
    {"age", "age"},
    {"country", "country,location"},
    {"segment", "segment,occupation"},
    {"attrs", "attrs,attributes"},
};

#define MAX_ROLES 8

typedef enum kind { K_EVENTS, K_ITEMS, K_USERS } kind;

static int alias_match(const char *aliases, const char *s, size_t len) {
    const char *p = aliases;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && strncasecmp(p, s, len) == 0) return 1;
        if (!e) return 0;
        p = e + 1;
    }
}

static int role_of(const colspec *cols, int ncols, const char *s, size_t len) {
    for (int r = 0; r < ncols; r++)
        if (alias_match(cols[r].aliases, s, len)) return r;
    return -1;
}

/* How the columns of one file map to roles. */
typedef struct layout {
    kind k;
    const colspec *cols;
    int ncols;
    int decided;  /* header read or positional count fixed */
    int nfields;  /* fields per row (delimited text) */
    int idx[MAX_ROLES];
    int nextra;   /* header columns that are free attributes */
    int *extra_idx;
    char **extra_name;
} layout;

static void layout_init(layout *L, kind k) {
    memset(L, 0, sizeof *L);
    L->k = k;
    L->cols = k == K_EVENTS ? ev_cols : k == K_ITEMS ? item_cols : user_cols;
    L->ncols = k == K_EVENTS ? EV_NCOL : k == K_ITEMS ? IT_NCOL : US_NCOL;
    for (int i = 0; i < MAX_ROLES; i++) L->idx[i] = -1;
}

static void layout_free(layout *L) {
    for (int i = 0; i < L->nextra; i++) rf_free(L->extra_name[i]);
    rf_free(L->extra_idx);
    rf_free(L->extra_name);
}

static int looks_like_header(const layout *L, const rf_record *rec) {
    int have[MAX_ROLES] = {0};
    for (int i = 0; i < rec->n; i++) {
        rf_field f = rf_field_trim(rec->f[i]);
        int r = role_of(L->cols, L->ncols, f.s, f.len);
        if (r >= 0) have[r] = 1;
    }
    if (L->k == K_EVENTS) return have[EV_USER] && have[EV_ITEM];
    return have[0];
}

/* Map a header record. Errors (missing id column, duplicates) are fatal. */
static int layout_header(layout *L, const rf_record *rec, const char *path, rf_err *err) {
    L->extra_idx = rf_malloc_array((size_t)rec->n + 1, sizeof *L->extra_idx);
    L->extra_name = rf_calloc((size_t)rec->n + 1, sizeof *L->extra_name);
    if (!L->extra_idx || !L->extra_name) return rf_err_set(err, RF_ENOMEM, "out of memory");
    char ignored[256] = "";
    for (int i = 0; i < rec->n; i++) {
        rf_field f = rf_field_trim(rec->f[i]);
        int r = role_of(L->cols, L->ncols, f.s, f.len);
        if (r >= 0) {
            if (L->idx[r] >= 0)
                return rf_err_set(err, RF_EPARSE, "%s:%lld: header: two %s columns ('%.*s')", path,
                                  (long long)rec->line, L->cols[r].name, (int)f.len, f.s);
            L->idx[r] = i;
        } else if (f.len == 0) {
            return rf_err_set(err, RF_EPARSE, "%s:%lld: header: column %d has no name", path,
                              (long long)rec->line, i + 1);
        } else if (L->k == K_EVENTS) {
            size_t k = strlen(ignored);
            snprintf(ignored + k, sizeof ignored - k, "%s%.*s", k ? "," : "", (int)f.len, f.s);
        } else {
            L->extra_idx[L->nextra] = i;
            L->extra_name[L->nextra] = rf_strndup(f.s, f.len);
            if (!L->extra_name[L->nextra++]) return rf_err_set(err, RF_ENOMEM, "out of memory");
        }
    }
    if (L->k == K_EVENTS) {
        for (int r = EV_USER; r <= EV_ITEM; r++)
            if (L->idx[r] < 0)
                return rf_err_set(err, RF_EPARSE, "%s:%lld: header: no %s column (expected one of %s)",
                                  path, (long long)rec->line, L->cols[r].name, L->cols[r].aliases);
        if (ignored[0])
            rf_log(RF_LOG_WARN, "import.ignored_columns", "file=%s columns=%s", path, ignored);
    } else if (L->idx[0] < 0) {
        return rf_err_set(err, RF_EPARSE, "%s:%lld: header: no id column (expected one of %s)", path,
                          (long long)rec->line, L->cols[0].aliases);
    }
    L->nfields = rec->n;
    L->decided = 1;
    return 0;
}

/* Positional layout from the first data row's field count; a row error
 * when the count fits no layout. */
static int layout_positional(layout *L, int n, int64_t line, rf_rowerr *re) {
    if (L->k == K_EVENTS) {
        if (n < 2 || n > 5) {
            rf_rowerr_set(re, line, "row",
                          "expected 2 to 5 fields (user, item[, type], value[, timestamp]), got %d", n);
            return RF_EPARSE;
        }
        L->idx[EV_USER] = 0;
        L->idx[EV_ITEM] = 1;
        if (n == 3) L->idx[EV_VALUE] = 2;
        if (n == 4) L->idx[EV_VALUE] = 2, L->idx[EV_TS] = 3;
        if (n == 5) L->idx[EV_TYPE] = 2, L->idx[EV_VALUE] = 3, L->idx[EV_TS] = 4;
    } else {
        int max = L->k == K_ITEMS ? IT_CREATED + 1 : US_SEGMENT + 1;
        if (n > max) {
            rf_rowerr_set(re, line, "row", "expected at most %d fields (%s) without a header, got %d",
                          max,
                          L->k == K_ITEMS ? "id, title, category, brand, price, stock, created"
                                          : "id, gender, age, country, segment",
                          n);
            return RF_EPARSE;
        }
        for (int i = 0; i < n; i++) L->idx[i] = i;
    }
    L->nfields = n;
    L->decided = 1;
    return 0;
}

/* One row's role values. JSON numbers are formatted into nb. */
typedef struct rowvals {
    rf_field v[MAX_ROLES];
    int have[MAX_ROLES];
    json_t *attrs_obj; /* JSONL: the "attrs" object (borrowed) */
    char nb[MAX_ROLES][48];
} rowvals;

static int json_to_field(json_t *j, char *nb, size_t nbsize, rf_field *out) {
    if (json_is_string(j)) {
        out->s = json_string_value(j);
        out->len = json_string_length(j);
    } else if (json_is_integer(j)) {
        snprintf(nb, nbsize, "%lld", (long long)json_integer_value(j));
        out->s = nb;
        out->len = strlen(nb);
    } else if (json_is_real(j)) {
        snprintf(nb, nbsize, "%.17g", json_real_value(j));
        out->s = nb;
        out->len = strlen(nb);
    } else if (json_is_boolean(j)) {
        out->s = json_is_true(j) ? "true" : "false";
        out->len = strlen(out->s);
    } else {
        return -1;
    }
    return 0;
}

static int extract(const layout *L, const rf_record *rec, rowvals *rv, rf_rowerr *re) {
    memset(rv->have, 0, sizeof rv->have);
    rv->attrs_obj = NULL;
    if (rec->obj) {
        const char *key;
        json_t *val;
        json_object_foreach(rec->obj, key, val) {
            int r = role_of(L->cols, L->ncols, key, strlen(key));
            if (r < 0 || json_is_null(val)) continue;
            if (L->k != K_EVENTS && r == L->ncols - 1) { /* attrs */
                if (!json_is_object(val)) {
                    rf_rowerr_set(re, rec->line, "attrs", "expected a JSON object");
                    return RF_EPARSE;
                }
                rv->attrs_obj = val;
                continue;
            }
            if (json_to_field(val, rv->nb[r], sizeof rv->nb[r], &rv->v[r]) != 0) {
                rf_rowerr_set(re, rec->line, L->cols[r].name, "expected a string or a number");
                return RF_EPARSE;
            }
            rv->v[r] = rf_field_trim(rv->v[r]);
            rv->have[r] = 1;
        }
        return 0;
    }
    if (rec->n != L->nfields) {
        rf_rowerr_set(re, rec->line, "row", "expected %d fields, got %d", L->nfields, rec->n);
        return RF_EPARSE;
    }
    for (int r = 0; r < L->ncols; r++)
        if (L->idx[r] >= 0) {
            rv->v[r] = rf_field_trim(rec->f[L->idx[r]]);
            rv->have[r] = 1;
        }
    return 0;
}

/* ---- typed field parsers ------------------------------------------------------ */

static int need_id(const rowvals *rv, int r, const char *name, int64_t line, rf_rowerr *re) {
    if (!rv->have[r]) {
        rf_rowerr_set(re, line, name, "missing");
        return RF_EPARSE;
    }
    if (rv->v[r].len == 0) {
        rf_rowerr_set(re, line, name, "empty id");
        return RF_EPARSE;
    }
    return 0;
}

static int parse_number(rf_field f, const char *name, int64_t line, double *out, rf_rowerr *re) {
    char b[80];
    if (f.len == 0) {
        rf_rowerr_set(re, line, name, "empty");
        return RF_EPARSE;
    }
    if (f.len <= 9) { /* fast path: small non-negative integers */
        uint32_t v = 0;
        size_t i = 0;
        while (i < f.len && f.s[i] >= '0' && f.s[i] <= '9') v = v * 10 + (uint32_t)(f.s[i++] - '0');
        if (i == f.len) {
            *out = v;
            return 0;
        }
    }
    int rc = rf_parse_double(f.s, f.len, out);
    if (rc == 0) return 0;
    rf_rowerr_set(re, line, name, "%s: %s", rc == RF_ERANGE ? "out of range" : "not a number",
                  show(f, b, sizeof b));
    return RF_EPARSE;
}

static int parse_int(rf_field f, const char *name, int64_t line, int64_t *out, rf_rowerr *re) {
    char b[80];
    if (f.len == 0) {
        rf_rowerr_set(re, line, name, "empty");
        return RF_EPARSE;
    }
    int rc = rf_parse_i64(f.s, f.len, out);
    if (rc == 0) return 0;
    rf_rowerr_set(re, line, name, "%s: %s", rc == RF_ERANGE ? "out of range" : "not an integer",
                  show(f, b, sizeof b));
    return RF_EPARSE;
}

static int parse_ts(rf_field f, const char *name, int64_t line, int64_t *out, rf_rowerr *re) {
    char b[80];
    if (f.len == 0) {
        rf_rowerr_set(re, line, name, "empty");
        return RF_EPARSE;
    }
    if (rf_parse_time(f.s, f.len, out) == 0) return 0;
    rf_rowerr_set(re, line, name, "not a time: %s", show(f, b, sizeof b));
    return RF_EPARSE;
}

static int parse_type(rf_field f, int64_t line, int *out, rf_rowerr *re) {
    char b[80];
    if (f.len == 0) {
        rf_rowerr_set(re, line, "type", "empty");
        return RF_EPARSE;
    }
    if (f.len == 1 && f.s[0] >= '0' && f.s[0] < '0' + RF_EV_NTYPES) {
        *out = f.s[0] - '0';
        return 0;
    }
    int t = rf_event_type_parse(f.s, f.len);
    if (t >= 0 && t < RF_EV_NTYPES) {
        *out = t;
        return 0;
    }
    rf_rowerr_set(re, line, "type",
                  "unknown event type: %s (expected view, click, cart, purchase, rating or custom)",
                  show(f, b, sizeof b));
    return RF_EPARSE;
}

int rf_imp_number_(rf_field f, const char *name, int64_t line, double *out, rf_rowerr *re) {
    return parse_number(f, name, line, out, re);
}
int rf_imp_int_(rf_field f, const char *name, int64_t line, int64_t *out, rf_rowerr *re) {
    return parse_int(f, name, line, out, re);
}

/* A parsed interaction row. */
typedef struct evrow_in {
    rf_field user, item;
    int type;
    double value;
    int64_t ts;
} evrow_in;

static int parse_event(const rowvals *rv, int64_t line, int default_type, evrow_in *ev,
                       rf_rowerr *re) {
    int rc;
    if ((rc = need_id(rv, EV_USER, "user", line, re)) || (rc = need_id(rv, EV_ITEM, "item", line, re)))
        return rc;
    ev->user = rv->v[EV_USER];
    ev->item = rv->v[EV_ITEM];
    ev->type = default_type;
    ev->value = 1.0;
    ev->ts = 0;
    if (rv->have[EV_TYPE] && (rc = parse_type(rv->v[EV_TYPE], line, &ev->type, re))) return rc;
    if (rv->have[EV_VALUE] && (rc = parse_number(rv->v[EV_VALUE], "value", line, &ev->value, re)))
        return rc;
    if (rv->have[EV_TS] && (rc = parse_ts(rv->v[EV_TS], "timestamp", line, &ev->ts, re))) return rc;
    return 0;
}

/* ---- the store events sink ---------------------------------------------------- */

/* A buffered event: key = user row id << 32 | item row id. */
typedef struct evrow {
    uint64_t key;
    int64_t ts;
    double value;
    uint8_t type;
} evrow;

struct rf_evsink {
    rf_store *s;
    sqlite3_stmt *ins, *uget, *uins, *iget, *iins;
    rf_idmap *umap, *imap;
    int64_t *urid, *irid;
    int32_t ucap, icap;
    int32_t ulast, ilast; /* dense id of the previous row's user/item, -1 */
    evrow *buf, *tmp;
    size_t n, cap, chunk; /* rows buffered, allocated, flushed at */
    int64_t added, dups;
    int rebuild; /* secondary indexes dropped, rebuild at finish */
    double t0;   /* creation time, for the phase log */
};

/* Rows per sorted chunk. Measured: ~512K rows keep the touched b-tree
 * pages in the CPU caches; much larger chunks insert slower, much smaller
 * ones lose the locality (and unsorted input is ~3x slower). */
#define SINK_CHUNK ((size_t)1 << 19)

int rf_evsink_new(rf_store *s, int64_t size_hint, rf_evsink **out, rf_err *err) {
    *out = NULL;
    rf_evsink *k = rf_calloc(1, sizeof *k);
    if (!k) return rf_err_set(err, RF_ENOMEM, "out of memory");
    k->s = s;
    k->t0 = rf_mono();
    k->ulast = k->ilast = -1;
    int rc;
    if (rf_idmap_new(&k->umap) || rf_idmap_new(&k->imap)) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    /* Estimated rows: ~24 bytes a row in typical files. */
    int64_t est = size_hint / 24;
    k->chunk = SINK_CHUNK;
    k->cap = est < 0 ? 16 : (size_t)est + 16 < SINK_CHUNK ? (size_t)est + 16 : SINK_CHUNK;
    k->buf = rf_malloc_array(k->cap, sizeof *k->buf);
    k->tmp = rf_malloc_array(k->cap, sizeof *k->tmp);
    if (!k->buf || !k->tmp) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = rf_store_prepare_(s, "INSERT OR IGNORE INTO events(user, item, type, ts, value)"
                                   " VALUES(?1, ?2, ?3, ?4, ?5)",
                                &k->ins, err)) ||
        (rc = rf_store_prepare_(s, "SELECT rid FROM users WHERE id = ?1", &k->uget, err)) ||
        (rc = rf_store_prepare_(s, "INSERT INTO users(id) VALUES(?1)", &k->uins, err)) ||
        (rc = rf_store_prepare_(s, "SELECT rid FROM items WHERE id = ?1", &k->iget, err)) ||
        (rc = rf_store_prepare_(s, "INSERT INTO items(id) VALUES(?1)", &k->iins, err)))
        goto fail;
    /* Page cache for the bulk load: about three times the input, within
     * [64 MiB, 2 GiB]; SQLite only allocates what it touches. */
    int64_t kib = size_hint / 1024 * 3;
    if (kib < 65536) kib = 65536;
    if (kib > 2097152) kib = 2097152;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%lld", (long long)kib);
    if ((rc = rf_store_exec_(s, sql, err))) goto fail;
    /* Rebuild the secondary indexes when this file is big next to what is
     * stored: one sort per index instead of a random b-tree insert per row
     * (measured 2-3x cheaper). Counting at most twice the estimate keeps
     * the check cheap on a big store. */
    if (est > 10000) {
        char q[128];
        snprintf(q, sizeof q, "SELECT count(*) FROM (SELECT 1 FROM events LIMIT %lld)",
                 (long long)est * 2);
        sqlite3_stmt *st;
        if ((rc = rf_store_prepare_(s, q, &st, err))) goto fail;
        int src = sqlite3_step(st);
        int64_t existing = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (src != SQLITE_ROW) {
            rc = rf_store_sqlfail_(s, src, "counting events", err);
            goto fail;
        }
        if (existing < est * 2) {
            if ((rc = rf_store_exec_(s, RF_STORE_DROP_EVENT_INDEXES, err))) goto fail;
            k->rebuild = 1;
        }
    }
    *out = k;
    return 0;
fail:
    rf_evsink_free(k);
    return rc;
}

void rf_evsink_free(rf_evsink *k) {
    if (!k) return;
    sqlite3_finalize(k->ins);
    sqlite3_finalize(k->uget);
    sqlite3_finalize(k->uins);
    sqlite3_finalize(k->iget);
    sqlite3_finalize(k->iins);
    if (k->s) sqlite3_exec(rf_store_db(k->s), "PRAGMA cache_size=-65536", NULL, NULL, NULL);
    rf_idmap_free(k->umap);
    rf_idmap_free(k->imap);
    rf_free(k->urid);
    rf_free(k->irid);
    rf_free(k->buf);
    rf_free(k->tmp);
    rf_free(k);
}

/* Row id of string id `s` in users or items: cache, then SELECT, then INSERT. */
static int resolve(rf_evsink *k, int users, const char *s, size_t len, int64_t *rid, rf_err *err) {
    rf_idmap *m = users ? k->umap : k->imap;
    /* Logs are often grouped by session: try the previous row's id first. */
    int32_t *last = users ? &k->ulast : &k->ilast;
    if (*last >= 0 && rf_idmap_len(m, *last) == len && memcmp(rf_idmap_str(m, *last), s, len) == 0) {
        *rid = users ? k->urid[*last] : k->irid[*last];
        return 0;
    }
    int32_t d = rf_idmap_find(m, s, len);
    if (d >= 0) {
        *last = d;
        *rid = users ? k->urid[d] : k->irid[d];
        return 0;
    }
    sqlite3_stmt *get = users ? k->uget : k->iget, *ins = users ? k->uins : k->iins;
    const char *what = users ? "adding a user" : "adding an item";
    sqlite3_bind_text(get, 1, s, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) {
        *rid = sqlite3_column_int64(get, 0);
        sqlite3_reset(get);
    } else {
        sqlite3_reset(get);
        if (rc != SQLITE_DONE) return rf_store_sqlfail_(k->s, rc, what, err);
        sqlite3_bind_text(ins, 1, s, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE) return rf_store_sqlfail_(k->s, rc, what, err);
        *rid = sqlite3_last_insert_rowid(rf_store_db(k->s));
    }
    if (*rid < 0 || *rid > (int64_t)UINT32_MAX)
        return rf_err_set(err, RF_ERANGE, "%s: %s row id %lld is beyond 2^32", rf_store_path(k->s),
                          users ? "user" : "item", (long long)*rid);
    int prc = rf_idmap_put(m, s, len, &d, NULL);
    if (prc) return rf_err_set(err, prc, "%s: %s", what, rf_strerror(prc));
    int64_t **arr = users ? &k->urid : &k->irid;
    int32_t *cap = users ? &k->ucap : &k->icap;
    if (d >= *cap) {
        int32_t nc = *cap ? *cap * 2 : 4096;
        int64_t *na = rf_realloc_array(*arr, (size_t)nc, sizeof *na);
        if (!na) return rf_err_set(err, RF_ENOMEM, "out of memory");
        *arr = na;
        *cap = nc;
    }
    (*arr)[d] = *rid;
    *last = d;
    return 0;
}

/* Stable LSD radix sort of a[0..n) by key, one pass per key byte that
 * varies (typically 4-5 of 8). */
static void radix_sort(evrow *a, evrow *tmp, size_t n) {
    uint64_t all_or = 0, all_and = ~(uint64_t)0;
    for (size_t i = 0; i < n; i++) {
        all_or |= a[i].key;
        all_and &= a[i].key;
    }
    uint64_t diff = all_or ^ all_and;
    evrow *src = a, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        int sh = 8 * b;
        if (((diff >> sh) & 0xff) == 0) continue;
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++) cnt[(src[i].key >> sh) & 0xff]++;
        size_t pos = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = cnt[d];
            cnt[d] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i].key >> sh) & 0xff]++] = src[i];
        evrow *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

static int flush(rf_evsink *k, rf_err *err) {
    if (k->n == 0) return 0;
    radix_sort(k->buf, k->tmp, k->n);
    sqlite3 *db = rf_store_db(k->s);
    for (size_t i = 0; i < k->n; i++) {
        const evrow *r = &k->buf[i];
        sqlite3_bind_int64(k->ins, 1, (int64_t)(r->key >> 32));
        sqlite3_bind_int64(k->ins, 2, (int64_t)(r->key & 0xffffffffu));
        sqlite3_bind_int(k->ins, 3, r->type);
        sqlite3_bind_int64(k->ins, 4, r->ts);
        sqlite3_bind_double(k->ins, 5, r->value);
        int rc = sqlite3_step(k->ins);
        sqlite3_reset(k->ins);
        if (rc != SQLITE_DONE) return rf_store_sqlfail_(k->s, rc, "inserting events", err);
        if (sqlite3_changes(db) > 0)
            k->added++;
        else
            k->dups++;
    }
    k->n = 0;
    return 0;
}

int rf_evsink_add(rf_evsink *k, const char *user, size_t ulen, const char *item, size_t ilen,
                  int type, double value, int64_t ts, rf_err *err) {
    int64_t u, i;
    int rc;
    if ((rc = resolve(k, 1, user, ulen, &u, err)) || (rc = resolve(k, 0, item, ilen, &i, err)))
        return rc;
    if (k->n >= k->chunk && (rc = flush(k, err))) return rc;
    if (k->n == k->cap) { /* the size estimate was low: grow towards a full chunk */
        size_t nc = k->cap * 4 < k->chunk ? k->cap * 4 : k->chunk;
        evrow *nb = rf_realloc_array(k->buf, nc, sizeof *nb);
        if (!nb) return rf_err_set(err, RF_ENOMEM, "out of memory");
        k->buf = nb;
        evrow *nt = rf_realloc_array(k->tmp, nc, sizeof *nt);
        if (!nt) return rf_err_set(err, RF_ENOMEM, "out of memory");
        k->tmp = nt;
        k->cap = nc;
    }
    evrow *r = &k->buf[k->n++];
    r->key = (uint64_t)u << 32 | (uint64_t)i;
    r->ts = ts;
    r->value = value;
    r->type = (uint8_t)type;
    return 0;
}

void rf_evsink_set_chunk_(rf_evsink *k, size_t rows) {
    k->chunk = rows < 1 ? 1 : rows;
}

int rf_evsink_finish(rf_evsink *k, int64_t *added, int64_t *dups, rf_err *err) {
    int rc = flush(k, err);
    if (rc) return rc;
    rf_log(RF_LOG_DEBUG, "import.rows_stored", "events=%lld file_users=%d file_items=%d seconds=%.2f",
           (long long)(k->added + k->dups), rf_idmap_size(k->umap), rf_idmap_size(k->imap),
           rf_mono() - k->t0);
    if (k->rebuild) {
        double t0 = rf_mono();
        char th[48];
        snprintf(th, sizeof th, "PRAGMA threads=%d", rf_threads() < 8 ? rf_threads() : 8);
        sqlite3_exec(rf_store_db(k->s), th, NULL, NULL, NULL); /* sorter helper threads */
        rc = rf_store_exec_(k->s, RF_STORE_EVENT_INDEXES, err);
        sqlite3_exec(rf_store_db(k->s), "PRAGMA threads=0", NULL, NULL, NULL);
        if (rc) return rc;
        k->rebuild = 0;
        rf_log(RF_LOG_DEBUG, "import.reindex", "seconds=%.2f", rf_mono() - t0);
    }
    *added += k->added;
    *dups += k->dups;
    k->added = k->dups = 0;
    return 0;
}

/* ---- the generic file loop ---------------------------------------------------- */

typedef struct job {
    kind k;
    const char *path;
    const rf_import_opts *o;
    rf_import_stats *st;
    rf_rejects rj;
    layout L;
    rf_rows *rows;
    /* sinks: exactly one is set */
    rf_evsink *sink;
    rf_events *ev;
    sqlite3_stmt *upsert;
    rf_store *s;
} job;

/* Build the attrs JSON text of an item/user row, or NULL when it has none.
 * *out is malloc'd (free()). */
static int build_attrs(const job *j, const rf_record *rec, const rowvals *rv, char **out,
                       rf_rowerr *re) {
    *out = NULL;
    int attrs_role = j->L.ncols - 1;
    json_t *o = json_object();
    if (!o) return RF_ENOMEM;
    if (rec->obj) {
        const char *key;
        json_t *val;
        json_object_foreach(rec->obj, key, val) {
            if (role_of(j->L.cols, j->L.ncols, key, strlen(key)) >= 0) continue;
            json_object_set(o, key, val);
        }
        if (rv->attrs_obj) json_object_update(o, rv->attrs_obj);
    } else {
        for (int e = 0; e < j->L.nextra; e++) {
            rf_field f = rf_field_trim(rec->f[j->L.extra_idx[e]]);
            if (f.len == 0) continue;
            json_object_set_new(o, j->L.extra_name[e], json_stringn(f.s, f.len));
        }
        if (rv->have[attrs_role] && rv->v[attrs_role].len > 0) {
            json_error_t je;
            json_t *a = json_loadb(rv->v[attrs_role].s, rv->v[attrs_role].len, 0, &je);
            if (!a || !json_is_object(a)) {
                json_decref(a);
                json_decref(o);
                rf_rowerr_set(re, rec->line, "attrs", "%s%s",
                              a ? "expected a JSON object" : "invalid JSON: ", a ? "" : je.text);
                return RF_EPARSE;
            }
            json_object_update(o, a);
            json_decref(a);
        }
    }
    if (json_object_size(o) > 0) {
        *out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!*out) {
            json_decref(o);
            return RF_ENOMEM;
        }
    }
    json_decref(o);
    return 0;
}

static void bind_opt_text(sqlite3_stmt *st, int i, const rowvals *rv, int r) {
    if (rv->have[r] && rv->v[r].len > 0)
        sqlite3_bind_text(st, i, rv->v[r].s, (int)rv->v[r].len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Validate and upsert one item or user row. RF_EPARSE with *re for a bad
 * row; other codes are fatal with err set. */
static int put_entity(job *j, const rf_record *rec, const rowvals *rv, rf_rowerr *re, rf_err *err) {
    int64_t line = rec->line;
    int rc = need_id(rv, 0, "id", line, re);
    if (rc) return rc;
    sqlite3_stmt *st = j->upsert;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, rv->v[0].s, (int)rv->v[0].len, SQLITE_TRANSIENT);
    int attrs_at;
    if (j->k == K_ITEMS) {
        bind_opt_text(st, 2, rv, IT_TITLE);
        bind_opt_text(st, 3, rv, IT_CAT);
        bind_opt_text(st, 4, rv, IT_BRAND);
        if (rv->have[IT_PRICE] && rv->v[IT_PRICE].len > 0) {
            double p;
            if ((rc = parse_number(rv->v[IT_PRICE], "price", line, &p, re))) return rc;
            sqlite3_bind_double(st, 5, p);
        }
        if (rv->have[IT_STOCK] && rv->v[IT_STOCK].len > 0) {
            int64_t n;
            if ((rc = parse_int(rv->v[IT_STOCK], "stock", line, &n, re))) return rc;
            sqlite3_bind_int64(st, 6, n);
        }
        if (rv->have[IT_CREATED] && rv->v[IT_CREATED].len > 0) {
            int64_t t;
            if ((rc = parse_ts(rv->v[IT_CREATED], "created", line, &t, re))) return rc;
            sqlite3_bind_int64(st, 7, t);
        }
        attrs_at = 8;
    } else {
        bind_opt_text(st, 2, rv, US_GENDER);
        if (rv->have[US_AGE] && rv->v[US_AGE].len > 0) {
            int64_t a;
            if ((rc = parse_int(rv->v[US_AGE], "age", line, &a, re))) return rc;
            if (a < 0 || a > 200) {
                char b[80];
                rf_rowerr_set(re, line, "age", "out of range: %s", show(rv->v[US_AGE], b, sizeof b));
                return RF_EPARSE;
            }
            sqlite3_bind_int64(st, 3, a);
        }
        bind_opt_text(st, 4, rv, US_COUNTRY);
        bind_opt_text(st, 5, rv, US_SEGMENT);
        attrs_at = 6;
    }
    char *attrs = NULL;
    rc = build_attrs(j, rec, rv, &attrs, re);
    if (rc == RF_ENOMEM) return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (rc) return rc;
    if (attrs) sqlite3_bind_text(st, attrs_at, attrs, -1, free);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rf_store_sqlfail_(j->s, rc, j->k == K_ITEMS ? "storing an item" : "storing a user",
                                 err);
    return 0;
}

/* Handle one data record. */
static int do_row(job *j, const rf_record *rec, rowvals *rv, rf_rowerr *re, rf_err *err) {
    int rc = extract(&j->L, rec, rv, re);
    if (rc) return rc;
    if (j->k != K_EVENTS) return put_entity(j, rec, rv, re, err);
    evrow_in ev;
    if ((rc = parse_event(rv, rec->line, j->o->default_type, &ev, re))) return rc;
    if (j->sink)
        return rf_evsink_add(j->sink, ev.user.s, ev.user.len, ev.item.s, ev.item.len, ev.type,
                             ev.value, ev.ts, err);
    int32_t u, i;
    if ((rc = rf_idmap_put(j->ev->users, ev.user.s, ev.user.len, &u, NULL)) ||
        (rc = rf_idmap_put(j->ev->items, ev.item.s, ev.item.len, &i, NULL)) ||
        (rc = rf_events_push(j->ev, u, i, ev.type, (float)ev.value, ev.ts)))
        return rf_err_set(err, rc, "%s:%lld: %s", j->path, (long long)rec->line, rf_strerror(rc));
    return 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Read every record of j->path through the sink. */
static int run(job *j, rf_err *err) {
    rf_record rec;
    rf_rowerr re;
    rowvals *rv = rf_malloc(sizeof *rv);
    if (!rv) return rf_err_set(err, RF_ENOMEM, "out of memory");
    char label[64];
    snprintf(label, sizeof label, "import %s", base_name(j->path));
    rf_progress *p = rf_progress_start(label, rf_rows_size(j->rows));
    int rc = 0;
    int64_t tick = 0;
    for (;;) {
        char reason[sizeof re.reason];
        rc = rf_rows_next(j->rows, &rec, reason, sizeof reason, err);
        if (rc == 0) break;
        if (rc == RF_EPARSE) {
            rf_rowerr_set(&re, rec.line, "row", "%s", reason);
            j->st->rows++;
            if ((rc = rf_rejects_add(&j->rj, j->path, &re, rec.raw, rec.raw_len, err))) break;
            continue;
        }
        if (rc < 0) break;
        if (!j->L.decided && !rec.obj) {
            int hdr = j->o->header;
            if (hdr < 0) hdr = looks_like_header(&j->L, &rec);
            if (hdr) {
                if ((rc = layout_header(&j->L, &rec, j->path, err))) break;
                continue;
            }
            if (layout_positional(&j->L, rec.n, rec.line, &re) != 0) {
                j->st->rows++;
                if ((rc = rf_rejects_add(&j->rj, j->path, &re, rec.raw, rec.raw_len, err))) break;
                continue;
            }
        }
        j->st->rows++;
        rc = do_row(j, &rec, rv, &re, err);
        if (rc == RF_EPARSE) {
            if ((rc = rf_rejects_add(&j->rj, j->path, &re, rec.raw, rec.raw_len, err))) break;
        } else if (rc) {
            break;
        }
        if (++tick == 65536) {
            tick = 0;
            rf_progress_set(p, rf_rows_offset(j->rows));
        }
    }
    rf_progress_finish(p);
    rf_free(rv);
    if (rc < 0) return rc;
    if (j->L.nfields == 0 && rf_rows_fmt(j->rows) != RF_FMT_JSONL && j->L.decided == 0)
        rf_log(RF_LOG_WARN, "import.empty", "file=%s", j->path);
    return 0;
}

static int job_open(job *j, kind k, const char *path, const rf_import_opts *o,
                    rf_import_stats *st, rf_err *err) {
    memset(j, 0, sizeof *j);
    j->k = k;
    j->path = path;
    j->o = o;
    j->st = st;
    j->rj.path = o->skip_bad_path;
    layout_init(&j->L, k);
    if (o->default_type < 0 || o->default_type >= RF_EV_NTYPES)
        return rf_err_set(err, RF_EINVAL, "invalid default event type %d", o->default_type);
    return rf_rows_open(path, o->format, 0, &j->rows, err);
}

static void job_close(job *j) {
    rf_rejects_close(&j->rj, NULL);
    rf_rows_close(j->rows);
    layout_free(&j->L);
    rf_evsink_free(j->sink);
    sqlite3_finalize(j->upsert);
}

static void log_done(const char *what, const char *path, const rf_import_stats *st) {
    rf_log(RF_LOG_INFO, "import.done",
           "kind=%s file=%s rows=%lld added=%lld duplicates=%lld rejected=%lld seconds=%.2f "
           "rows_per_s=%.0f",
           what, path, (long long)st->rows, (long long)st->added, (long long)st->duplicates,
           (long long)st->rejected, st->seconds,
           st->seconds > 0 ? (double)st->rows / st->seconds : 0.0);
}

/* ---- public entry points ------------------------------------------------------ */

/* The file's work inside an open transaction. */
static int import_in_txn(rf_store *s, kind k, const char *path, const rf_import_opts *o,
                         rf_import_stats *st, rf_err *err) {
    double t0 = rf_mono();
    memset(st, 0, sizeof *st);
    const char *what = k == K_EVENTS ? "interactions" : k == K_ITEMS ? "items" : "users";
    job j;
    int rc = job_open(&j, k, path, o, st, err);
    if (rc) goto out;
    j.s = s;
    int64_t before = 0;
    if (k == K_EVENTS) {
        int64_t hint = rf_rows_size(j.rows);
        if (strlen(path) > 3 && strcmp(path + strlen(path) - 3, ".gz") == 0) hint *= 5;
        if ((rc = rf_evsink_new(s, hint, &j.sink, err))) goto out;
    } else {
        if ((rc = rf_store_count_table_(s, what, &before, err))) goto out;
        if ((rc = rf_store_prepare_(s, k == K_ITEMS ? RF_STORE_ITEM_UPSERT : RF_STORE_USER_UPSERT,
                                    &j.upsert, err)))
            goto out;
    }
    if ((rc = run(&j, err))) goto out;
    if (k == K_EVENTS) {
        if ((rc = rf_evsink_finish(j.sink, &st->added, &st->duplicates, err))) goto out;
    } else {
        int64_t after;
        if ((rc = rf_store_count_table_(s, what, &after, err))) goto out;
        st->added = after - before;
        st->duplicates = st->rows - j.rj.n - st->added;
    }
    rc = rf_rejects_close(&j.rj, err);
out:
    st->rejected = j.rj.n;
    job_close(&j);
    if (rc) st->added = st->duplicates = 0;
    st->seconds = rf_mono() - t0;
    return rc;
}

int rf_import_file_txn_(rf_store *s, int kind_, const char *path, const rf_import_opts *o,
                        rf_import_stats *st, rf_err *err) {
    rf_import_opts od;
    if (!o) rf_import_opts_default(&od);
    return import_in_txn(s, (kind)kind_, path, o ? o : &od, st, err);
}

static int import_file(rf_store *s, kind k, const char *path, const rf_import_opts *o_in,
                       rf_import_stats *st_out, rf_err *err) {
    rf_import_opts od;
    if (!o_in) rf_import_opts_default(&od);
    const rf_import_opts *o = o_in ? o_in : &od;
    rf_import_stats st = {0};
    double t0 = rf_mono();
    const char *what = k == K_EVENTS ? "interactions" : k == K_ITEMS ? "items" : "users";
    char txn[64];
    snprintf(txn, sizeof txn, "importing %s from %s", what, base_name(path));
    /* Fail on a missing file before taking the write lock. */
    rf_rows *probe;
    int rc = rf_rows_open(path, o->format, 0, &probe, err);
    if (rc) goto out;
    rf_rows_close(probe);
    if ((rc = rf_store_begin_write_(s, txn, err))) goto out;
    if ((rc = import_in_txn(s, k, path, o, &st, err))) {
        rf_store_rollback_(s);
        goto out;
    }
    double tc = rf_mono();
    if ((rc = rf_store_commit_(s, txn, err))) goto out;
    rf_log(RF_LOG_DEBUG, "import.commit", "file=%s seconds=%.2f", path, rf_mono() - tc);
    st.seconds = rf_mono() - t0;
    log_done(what, path, &st);
    if (st.rejected > 0)
        rf_log(RF_LOG_WARN, "import.rejected", "file=%s rejected=%lld skip_file=%s", path,
               (long long)st.rejected, o->skip_bad_path);
out:
    if (rc) st.added = st.duplicates = 0;
    st.seconds = rf_mono() - t0;
    if (st_out) *st_out = st;
    return rc;
}

int rf_import_interactions(rf_store *s, const char *path, const rf_import_opts *o,
                           rf_import_stats *st, rf_err *err) {
    return import_file(s, K_EVENTS, path, o, st, err);
}

int rf_import_items(rf_store *s, const char *path, const rf_import_opts *o, rf_import_stats *st,
                    rf_err *err) {
    return import_file(s, K_ITEMS, path, o, st, err);
}

int rf_import_users(rf_store *s, const char *path, const rf_import_opts *o, rf_import_stats *st,
                    rf_err *err) {
    return import_file(s, K_USERS, path, o, st, err);
}

int rf_read_interactions(const char *path, const rf_import_opts *o_in, rf_events *e,
                         rf_import_stats *st_out, rf_err *err) {
    rf_import_opts od;
    if (!o_in) rf_import_opts_default(&od);
    const rf_import_opts *o = o_in ? o_in : &od;
    rf_import_stats st = {0};
    double t0 = rf_mono();
    job j;
    int64_t n0 = e->n;
    int rc = job_open(&j, K_EVENTS, path, o, &st, err);
    if (rc == 0) {
        j.ev = e;
        rc = run(&j, err);
        if (rc == 0) rc = rf_rejects_close(&j.rj, err);
    }
    st.rejected = j.rj.n;
    st.added = e->n - n0;
    st.seconds = rf_mono() - t0;
    job_close(&j);
    if (rc == 0) log_done("read", path, &st);
    if (st_out) *st_out = st;
    return rc;
}
