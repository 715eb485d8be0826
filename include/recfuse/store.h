/* store.h - the embedded store: one SQLite database in the data directory.
 *
 * DIR/recfuse.db holds items, users and events; DIR/models/ holds trained
 * models. WAL mode, synchronous=FULL: a call that committed is durable.
 * Users and items are keyed by their original string id; events reference
 * them by integer row id and are unique on (user, item, type, ts), so
 * re-importing a file adds no duplicates (the first stored value wins).
 *
 * Tables (schema version 1, PRAGMA user_version; application_id "RFUS"):
 *   users(rid INTEGER PRIMARY KEY, id TEXT UNIQUE, gender, age, country,
 *         segment, attrs JSON text)
 *   items(rid INTEGER PRIMARY KEY, id TEXT UNIQUE, title, category, brand,
 *         price REAL, stock INTEGER, created INTEGER unix s, attrs JSON text)
 *   events(user -> users.rid, item -> items.rid, type INTEGER (rf_event_type),
 *          ts INTEGER unix s, value REAL,
 *          PRIMARY KEY(user, item, type, ts)) WITHOUT ROWID,
 *          indexes events_ts(ts) and events_item(item)
 *   event_types(code, name) - the rf_event_type names, for humans.
 *
 * Errors: RF_ENOTFOUND (missing directory/database/file, the message
 * names it), RF_EFORMAT (not a recfuse database, newer schema), RF_EDB
 * (SQLite failure, "database is locked" when another process holds the
 * write lock past the busy timeout), RF_EIO, RF_EPARSE (bad input row),
 * RF_ENOMEM. Messages start with the file they are about.
 *
 * Not thread-safe: one rf_store per thread. */
#ifndef RECFUSE_STORE_H
#define RECFUSE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

struct rf_err;
typedef struct rf_store rf_store;
typedef struct sqlite3 sqlite3;

/* Open DIR (created with `create` != 0, else RF_ENOTFOUND if missing),
 * create or migrate the schema (PRAGMA user_version). A database with a
 * newer schema or a foreign one is refused (RF_EFORMAT), never altered. */
int rf_store_open(const char *dir, int create, rf_store **out, struct rf_err *err);
/* NULL is a no-op. Rolls back an open transaction. */
void rf_store_close(rf_store *s);
/* The connection, borrowed for the store's lifetime. */
sqlite3 *rf_store_db(rf_store *s);
const char *rf_store_dir(const rf_store *s);
/* DIR/recfuse.db. */
const char *rf_store_path(const rf_store *s);
/* How long a write waits for another writer's lock (default 5000 ms)
 * before failing with "database is locked". */
void rf_store_set_busy_timeout(rf_store *s, int ms);
/* DIR/models/NAME.rfm into buf. */
void rf_store_model_path(const rf_store *s, const char *name, char *buf, size_t size);

typedef struct rf_store_counts {
    int64_t users, items, events;
} rf_store_counts;
int rf_store_count(rf_store *s, rf_store_counts *c, struct rf_err *err);

/* ---- import ---------------------------------------------------------- */

typedef enum rf_format {
    RF_FMT_AUTO = 0, /* by extension: .tsv/.txt/.data TSV, .csv CSV, .jsonl/.ndjson/.json
                        JSONL, anything else TSV; a trailing .gz is looked through */
    RF_FMT_TSV,
    RF_FMT_CSV,
    RF_FMT_JSONL
} rf_format;
/* "auto", "tsv", "csv", "jsonl" (also "ndjson", "json") -> rf_format; -1 if unknown. */
int rf_format_parse(const char *name);
const char *rf_format_name(rf_format f);

typedef struct rf_import_opts {
    rf_format format;
    int header;                /* -1 auto-detect, 0 positional, 1 first line is a header */
    const char *skip_bad_path; /* NULL: first bad row aborts, nothing of the file committed */
    int default_type;          /* event type when a row has none; RF_EV_RATING by default */
} rf_import_opts;
void rf_import_opts_default(rf_import_opts *o);

typedef struct rf_import_stats {
    int64_t rows;       /* data rows read */
    int64_t added;      /* new rows stored */
    int64_t duplicates; /* events already in the store (or repeated in the file);
                           for items/users: existing rows updated */
    int64_t rejected;   /* bad rows written to skip_bad_path */
    double seconds;
} rf_import_stats;

/* Input files (all importers).
 *
 * TSV: tab-separated, no quoting. CSV: comma-separated, RFC 4180 quoting
 * ("a,b", "say ""hi""", quoted newlines). JSONL: one JSON object per
 * line, keys as the header names below (values may be strings or
 * numbers; null or a missing key means "not given"). Any of them may be
 * gzip-compressed (.gz), start with a UTF-8 BOM and use CRLF line ends.
 * Blank lines are skipped. Spaces around a field are ignored. Line numbers
 * in messages are physical lines (a CSV record spanning lines reports its
 * first line).
 *
 * Header auto-detection (header = -1): for interactions the first line is
 * a header when it names both a user and an item column; for items/users
 * when one of its fields is an id column name. Header names are matched
 * case-insensitively. With a header the columns may come in any order.
 *
 * Each file is one transaction. Without skip_bad_path the first bad row
 * fails the call with "FILE:LINE: FIELD: reason" (RF_EPARSE), e.g.
 * "ratings.tsv:3: timestamp: not a time: 'abc'", and nothing of the file
 * is stored. FIELD is a column name (user, item, type, value, timestamp;
 * id, price, ...) or "row" for the record as a whole (field count, CSV
 * quoting, JSON syntax) or "header". With skip_bad_path, good rows are
 * committed and each bad row is appended to that file as
 * "FILE:LINE<TAB>FIELD: reason<TAB>original row" (newlines inside a row
 * written as \n); stats->rejected counts them. */

/* Interactions: user, item, [type], [value], [timestamp]. Positional
 * layouts: 2 fields user,item; 3 fields user,item,value; 4 fields
 * user,item,value,timestamp; 5 fields user,item,type,value,timestamp;
 * every row must have the first data row's field count. Header names
 * (any order; unknown columns are ignored):
 *   user|user_id|userid|customer|customer_id|customerid|visitor|visitorid|visitor_id
 *   item|item_id|itemid|product|product_id|productid|sku|movie|movie_id|movieid
 *   type|event|event_type|action
 *   value|rating|score|quantity|qty
 *   timestamp|ts|time|datetime|date|event_time
 * (so MovieLens' "userId,movieId,rating,timestamp" CSVs import as they are)
 * Missing value: 1. Missing timestamp column: 0 (unknown time; such
 * events sort first). Missing type column: o->default_type. A present
 * column must be non-empty in every row. Types are parsed with
 * rf_event_type_parse. Timestamps with rf_parse_time (Unix seconds or
 * ISO 8601). Users and items not yet in the store are created as bare
 * rows (id only). Events already stored (same user, item, type, ts) are
 * counted as duplicates and left unchanged. */
int rf_import_interactions(rf_store *s, const char *path, const rf_import_opts *o,
                           rf_import_stats *st, struct rf_err *err);
/* Items: id, title, category, brand, price, stock, created (positional
 * prefix of these, at most 7 fields), or with a header:
 *   id|item|item_id|itemid|product_id|sku, title|name, category|cat,
 *   brand, price, stock|inventory, created|created_at|release_date|date,
 * and any further header columns (JSONL keys) as free attributes, merged
 * into the item's attrs JSON object (an "attrs"/"attributes" JSON object
 * key is merged too). Upsert: existing items are updated; a column that
 * is absent or empty keeps its stored value. price: number; stock:
 * integer; created: rf_parse_time. */
int rf_import_items(rf_store *s, const char *path, const rf_import_opts *o, rf_import_stats *st,
                    struct rf_err *err);
/* Users: id, gender, age, country, segment positionally, or with a header
 *   id|user|user_id|userid|customer|customer_id, gender|sex, age (integer),
 *   country|location, segment|occupation,
 * then any further columns as free attributes. Upsert as for items. */
int rf_import_users(rf_store *s, const char *path, const rf_import_opts *o, rf_import_stats *st,
                    struct rf_err *err);
/* Parse an interactions file into `e` (string ids added to e's maps)
 * without touching a store: same formats, errors and skip-bad handling as
 * rf_import_interactions. Events are appended in file order; on error
 * `e` may hold the rows before the bad one. Used for explicit test files. */
int rf_read_interactions(const char *path, const rf_import_opts *o, rf_events *e,
                         rf_import_stats *st, struct rf_err *err);
/* MovieLens 100K directory: u.item (items; pipe-separated, Latin-1 titles
 * converted to UTF-8 unless the file already is UTF-8; category = first
 * flagged genre or "Unknown", all genres in attrs.genres; release date ->
 * created; IMDb URL in attrs.url), u.user (id|age|gender|occupation|zip:
 * occupation as segment, zip in attrs.zip) and u.data (user, item, rating,
 * ts -> events of type rating). Items and users are inserted in file order
 * so, in a fresh store, row ids equal the MovieLens ids. One transaction
 * for the three files. `st` sums the three files. */
int rf_import_movielens(rf_store *s, const char *ml_dir, rf_import_stats *st, struct rf_err *err);

/* ---- reading --------------------------------------------------------- */

/* All events, ids mapped densely: users and items are numbered in their
 * store row order, and every catalog item/user appears in the maps even
 * without events. Events are ordered by (user, ts, item, type). One read
 * transaction (a consistent snapshot); one table scan plus a per-user sort
 * of each user's run (parallel). *out is owned by the caller. */
int rf_store_load_events(rf_store *s, rf_events **out, struct rf_err *err);

/* One user's events as (item string id, type, value, ts) appended to `e`
 * (which uses string ids through its maps), ordered by (ts, item, type).
 * 0 events (or an unknown user) is not an error. */
int rf_store_user_events(rf_store *s, const char *user, rf_events *e, struct rf_err *err);

/* The same rows without the items join: e->item[i] is the store's item
 * row id (-1 past INT32_MAX), e->user[i] 0, e's maps untouched - for
 * rf_hist_from_rows with the map of rf_store_item_rids (the server's path:
 * no string lookups per event). */
int rf_store_user_event_rows(rf_store *s, const char *user, rf_events *e, struct rf_err *err);

/* Store item row id -> id in `ids` (the string ids of a model's items):
 * *r2i has *nr = max row id + 1 entries, -1 for an item `ids` lacks. Items
 * added later have larger row ids (rows are never reused: items are never
 * deleted), so a row id >= *nr is an item `ids` does not hold. */
int rf_store_item_rids(rf_store *s, const rf_idmap *ids, int32_t **r2i, int64_t *nr,
                       struct rf_err *err);

/* Item catalog row. Strings are owned by the struct array. */
typedef struct rf_item_info {
    char *id, *title, *category, *brand; /* title/category/brand NULL if unknown */
    double price; /* NAN if unknown */
    int64_t stock; /* -1 if unknown */
    int64_t created; /* 0 if unknown */
    char *attrs;   /* free attributes as a JSON object text, NULL if none */
} rf_item_info;
typedef struct rf_catalog {
    int64_t n;
    rf_item_info *items; /* in store row order: items[i] has dense id i in
                            rf_store_load_events' item map */
} rf_catalog;
int rf_store_load_catalog(rf_store *s, rf_catalog **out, struct rf_err *err);
/* NULL is a no-op. */
void rf_catalog_free(rf_catalog *c);

/* User table row (demographics). Strings owned by the table, NULL if unknown. */
typedef struct rf_user_info {
    char *id, *gender, *country, *segment;
    int age;     /* -1 if unknown */
    char *attrs; /* JSON object text or NULL */
} rf_user_info;
typedef struct rf_user_table {
    int64_t n;
    rf_user_info *users; /* in store row order (= dense user ids) */
} rf_user_table;
int rf_store_load_users(rf_store *s, rf_user_table **out, struct rf_err *err);
/* NULL is a no-op. */
void rf_user_table_free(rf_user_table *t);

/* ---- single-row writes (store/append.c; the server's writes) ---------- */

/* One event to append, with string ids. */
typedef struct rf_event_in {
    const char *user, *item; /* NUL-terminated, non-empty */
    int type;                /* rf_event_type */
    double value;
    int64_t ts;              /* Unix seconds */
} rf_event_in;

/* Per-event result flags of rf_store_append_events. */
#define RF_APPEND_ADDED 1    /* a new row (else the same (user, item, type, ts) was stored) */
#define RF_APPEND_NEW_PAIR 2 /* the store held no event of this (user, item) before */
#define RF_APPEND_NEW_USER 4 /* the user row was created by this call */
#define RF_APPEND_NEW_ITEM 8 /* the item row was created by this call */

/* Append ev[0..n) in one write transaction (BEGIN IMMEDIATE ... COMMIT;
 * with synchronous=FULL the events are durable when this returns 0).
 * Users and items not yet stored are created as bare rows. Events already
 * stored are left unchanged (as in import). flags (n bytes, may be NULL)
 * receives RF_APPEND_* per event. On error nothing is stored. Errors as
 * the importers: RF_EDB (locked), RF_EIO, RF_ENOMEM. */
int rf_store_append_events(rf_store *s, const rf_event_in *ev, int64_t n, uint8_t *flags,
                           struct rf_err *err);

/* Store an item row, replacing every column of an existing row with the
 * same id (NULL strings / NAN price / stock -1 / created 0 / attrs NULL
 * mean unknown). The row id (and so the item's events) is kept.
 * *created (may be NULL) is 1 if the row is new. */
int rf_store_put_item(rf_store *s, const rf_item_info *it, int *created, struct rf_err *err);
/* Change price (unless NAN) and stock (unless < 0) of an existing item.
 * RF_ENOTFOUND if the item is not stored. */
int rf_store_patch_item(rf_store *s, const char *id, double price, int64_t stock,
                        struct rf_err *err);
/* Store a user row, replacing an existing one's columns (as put_item). */
int rf_store_put_user(rf_store *s, const rf_user_info *u, int *created, struct rf_err *err);
/* Forget a user: delete all the user's events and the user row, in one
 * transaction. *n_events (may be NULL) receives the events deleted.
 * RF_ENOTFOUND if the user is not stored. */
int rf_store_forget_user(rf_store *s, const char *id, int64_t *n_events, struct rf_err *err);

#endif
