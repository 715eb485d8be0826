/* store_int.h - what the store's .c files share and nobody else sees.
 *
 * The rf_store struct, SQLite error formatting and transaction helpers
 * (sqlite.c), and the row-error record the importers use to build
 * "FILE:LINE: FIELD: reason" messages (import.c, movielens.c). */
#ifndef RF_STORE_INT_H
#define RF_STORE_INT_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "recfuse/error.h"
#include "recfuse/store.h"

struct rf_store {
    sqlite3 *db;
    char *dir;     /* as given to rf_store_open */
    char *path;    /* DIR/recfuse.db */
    int busy_ms;   /* busy timeout */
    int readonly;  /* opened read-only (write-protected file) */
    sqlite3_stmt *user_events[2]; /* the statements of rf_store_user_events
                                     and rf_store_user_event_rows, kept
                                     prepared (the server reads per request) */
};

#define RF_STORE_SCHEMA_VERSION 1
#define RF_STORE_APP_ID 0x52465553 /* "RFUS" in PRAGMA application_id */

/* RF_EDB (or RF_EIO / RF_EFORMAT by SQLite code) with
 * "DBPATH: what: sqlite message"; a busy/locked database gets a hint. */
int rf_store_sqlfail_(rf_store *s, int rc, const char *what, rf_err *err);
int rf_store_exec_(rf_store *s, const char *sql, rf_err *err);
int rf_store_prepare_(rf_store *s, const char *sql, sqlite3_stmt **st, rf_err *err);
/* BEGIN IMMEDIATE (takes the write lock now, so a locked database fails
 * before any work); COMMIT; ROLLBACK (best effort, never fails). */
int rf_store_begin_write_(rf_store *s, const char *what, rf_err *err);
int rf_store_commit_(rf_store *s, const char *what, rf_err *err);
void rf_store_rollback_(rf_store *s);

/* ---- import internals (import.c), shared with movielens.c ----------- */

/* One rejected row: where and why. */
typedef struct rf_rowerr {
    int64_t line;
    char field[48];
    char reason[400];
} rf_rowerr;
void rf_rowerr_set(rf_rowerr *re, int64_t line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "FILE:LINE: FIELD: reason" into err with `code`. */
int rf_rowerr_raise(const rf_rowerr *re, const char *path, int code, rf_err *err);

/* Where rejected rows go (--skip-bad): opened lazily in append mode. */
typedef struct rf_rejects {
    const char *path; /* NULL: rejects abort */
    FILE *f;
    int64_t n;
} rf_rejects;
/* Handle a bad row: with no skip file, raise the error (returns < 0);
 * else append "FILE:LINE<TAB>FIELD: reason<TAB>row" and return 0. */
int rf_rejects_add(rf_rejects *rj, const char *file, const rf_rowerr *re, const char *raw,
                   size_t raw_len, rf_err *err);
int rf_rejects_close(rf_rejects *rj, rf_err *err);

/* Events sink that writes into the store inside an open transaction:
 * resolves string ids to row ids (creating users/items), buffers and
 * sorts rows, INSERT OR IGNOREs them. */
typedef struct rf_evsink rf_evsink;
int rf_evsink_new(rf_store *s, int64_t size_hint, rf_evsink **out, rf_err *err);
int rf_evsink_add(rf_evsink *k, const char *user, size_t ulen, const char *item, size_t ilen,
                  int type, double value, int64_t ts, rf_err *err);
/* Flush everything; adds the rows added and duplicated to the counters. */
int rf_evsink_finish(rf_evsink *k, int64_t *added, int64_t *dups, rf_err *err);
void rf_evsink_free(rf_evsink *k);
/* Testing: flush every `rows` rows (default 512K). Call before adding. */
void rf_evsink_set_chunk_(rf_evsink *k, size_t rows);

/* The secondary event indexes (also in the schema); bulk imports drop and
 * recreate them inside their transaction. */
#define RF_STORE_EVENT_INDEXES \
    "CREATE INDEX events_ts ON events(ts);\nCREATE INDEX events_item ON events(item);\n"
#define RF_STORE_DROP_EVENT_INDEXES "DROP INDEX events_ts; DROP INDEX events_item;"

/* Upserts: ?1 id, then the columns in table order, attrs last; NULL
 * keeps the stored value, attrs objects are merged (json_patch). */
#define RF_STORE_ITEM_UPSERT                                                                  \
    "INSERT INTO items(id, title, category, brand, price, stock, created, attrs)"            \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(id) DO UPDATE SET"                  \
    " title = coalesce(excluded.title, title), category = coalesce(excluded.category, category)," \
    " brand = coalesce(excluded.brand, brand), price = coalesce(excluded.price, price),"      \
    " stock = coalesce(excluded.stock, stock), created = coalesce(excluded.created, created),"\
    " attrs = CASE WHEN excluded.attrs IS NULL THEN attrs WHEN attrs IS NULL THEN"            \
    " excluded.attrs ELSE json_patch(attrs, excluded.attrs) END"
#define RF_STORE_USER_UPSERT                                                                  \
    "INSERT INTO users(id, gender, age, country, segment, attrs)"                            \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET"                          \
    " gender = coalesce(excluded.gender, gender), age = coalesce(excluded.age, age),"         \
    " country = coalesce(excluded.country, country),"                                         \
    " segment = coalesce(excluded.segment, segment),"                                         \
    " attrs = CASE WHEN excluded.attrs IS NULL THEN attrs WHEN attrs IS NULL THEN"            \
    " excluded.attrs ELSE json_patch(attrs, excluded.attrs) END"

/* Import one file inside the caller's open write transaction (no
 * BEGIN/COMMIT; on failure the caller rolls back). kind: 0 interactions,
 * 1 items, 2 users. Fills *st (not logged). */
int rf_import_file_txn_(rf_store *s, int kind, const char *path, const rf_import_opts *o,
                        rf_import_stats *st, rf_err *err);

/* Field parsers with row errors ("FIELD: not a number: 'x'"). */
struct rf_field;
int rf_imp_number_(struct rf_field f, const char *name, int64_t line, double *out, rf_rowerr *re);
int rf_imp_int_(struct rf_field f, const char *name, int64_t line, int64_t *out, rf_rowerr *re);

/* Rows in TABLE ("users", "items", "events"). */
int rf_store_count_table_(rf_store *s, const char *table, int64_t *n, rf_err *err);

#endif
