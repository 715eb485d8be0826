/* sqlite.c - the embedded store: one SQLite database per data directory.
 *
 * Opens DIR/recfuse.db (WAL mode), creates or migrates its schema, counts
 * rows and reads them back in the shapes the pipeline needs: the whole
 * event log with dense ids (rf_store_load_events), one user's events
 * (rf_store_user_events), the item catalog and the user table.
 *
 * DESIGN: users and items are rowid tables (`rid INTEGER PRIMARY KEY`,
 * `id TEXT UNIQUE`), so their row ids only grow and the dense ids handed
 * to models follow insertion order. Events are a WITHOUT ROWID table keyed
 * by (user, item, type, ts): the key is the dedupe rule and the clustered
 * order, so one user's events are one contiguous range and a full scan
 * comes out grouped by user - rf_store_load_events only has to sort each
 * user's short run by time, never the whole log. Secondary indexes on ts
 * (time splits, trending) and on item (item history, deletes) complete it.
 * Integrity between events and users/items is kept by the importers (the
 * only writers) rather than by foreign-key checks, which would cost two
 * extra b-tree probes per imported event.
 *
 * Schema versions live in PRAGMA user_version and each step in
 * `migrations` below runs in its own transaction; application_id marks
 * the file as ours so a foreign database is refused, not altered.
 * synchronous=FULL: a commit that returned is on disk (one fsync per
 * import transaction, so bulk imports do not pay for it). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/util.h"
#include "store/store_int.h"

/* ---- schema ----------------------------------------------------------- */

static const char schema_v1[] =
    "CREATE TABLE users(\n"
    "  rid INTEGER PRIMARY KEY,\n"
    "  id TEXT NOT NULL UNIQUE,\n"
    "  gender TEXT,\n"
    "  age INTEGER,\n"
    "  country TEXT,\n"
    "  segment TEXT,\n"
    "  attrs TEXT\n"
    ");\n"
    "CREATE TABLE items(\n"
    "  rid INTEGER PRIMARY KEY,\n"
    "  id TEXT NOT NULL UNIQUE,\n"
    "  title TEXT,\n"
    "  category TEXT,\n"
    "  brand TEXT,\n"
    "  price REAL,\n"
    "  stock INTEGER,\n"
    "  created INTEGER,\n"
    "  attrs TEXT\n"
    ");\n"
    "CREATE TABLE events(\n"
    "  user INTEGER NOT NULL REFERENCES users(rid),\n"
    "  item INTEGER NOT NULL REFERENCES items(rid),\n"
    "  type INTEGER NOT NULL,\n"
    "  ts INTEGER NOT NULL,\n"
    "  value REAL NOT NULL,\n"
    "  PRIMARY KEY(user, item, type, ts)\n"
    ") WITHOUT ROWID;\n"
    RF_STORE_EVENT_INDEXES
    "CREATE TABLE event_types(code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
    "INSERT INTO event_types VALUES(0,'view'),(1,'click'),(2,'cart'),(3,'purchase'),"
    "(4,'rating'),(5,'custom');\n";

/* migrations[v] takes the schema from version v to v + 1. */
static const char *const migrations[RF_STORE_SCHEMA_VERSION] = {schema_v1};

/* ---- helpers shared with import.c ------------------------------------ */

int rf_store_sqlfail_(rf_store *s, int rc, const char *what, rf_err *err) {
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    const char *path = s && s->path ? s->path : "recfuse.db";
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return rf_err_set(err, RF_EDB,
                          "%s: %s: database is locked (another process is writing to it; "
                          "retry when it is done)",
                          path, what);
    if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
        return rf_err_set(err, RF_EFORMAT, "%s: %s: %s", path, what, msg);
    if (prim == SQLITE_READONLY)
        return rf_err_set(err, RF_EIO, "%s: %s: the database is read-only (%s)", path, what, msg);
    if (prim == SQLITE_IOERR || prim == SQLITE_FULL || prim == SQLITE_CANTOPEN)
        return rf_err_set(err, RF_EIO, "%s: %s: %s", path, what, msg);
    if (prim == SQLITE_NOMEM) return rf_err_set(err, RF_ENOMEM, "%s: %s: out of memory", path, what);
    return rf_err_set(err, RF_EDB, "%s: %s: %s", path, what, msg);
}

int rf_store_exec_(rf_store *s, const char *sql, rf_err *err) {
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rf_store_sqlfail_(s, rc, sql, err);
    return 0;
}

int rf_store_prepare_(rf_store *s, const char *sql, sqlite3_stmt **st, rf_err *err) {
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return rf_store_sqlfail_(s, rc, "prepare", err);
    }
    return 0;
}

int rf_store_begin_write_(rf_store *s, const char *what, rf_err *err) {
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rf_store_sqlfail_(s, rc, what, err);
    return 0;
}

int rf_store_commit_(rf_store *s, const char *what, rf_err *err) {
    int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rf_store_sqlfail_(s, rc, what, err);
        rf_store_rollback_(s);
        return err ? err->code : RF_EDB;
    }
    return 0;
}

void rf_store_rollback_(rf_store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- open / close ------------------------------------------------------ */

static char *path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = rf_malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    size_t k = na;
    if (k == 0 || p[k - 1] != '/') p[k++] = '/';
    memcpy(p + k, b, nb + 1);
    return p;
}

static int pragma_int(rf_store *s, const char *sql, int64_t *out, rf_err *err) {
    sqlite3_stmt *st;
    int rc = rf_store_prepare_(s, sql, &st, err);
    if (rc) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) return rf_store_sqlfail_(s, rc, sql, err);
    return 0;
}

/* Create or migrate the schema; refuse foreign or newer databases. */
static int migrate(rf_store *s, rf_err *err) {
    int64_t ver, app, ntables;
    int rc;
    if ((rc = pragma_int(s, "PRAGMA user_version", &ver, err)) ||
        (rc = pragma_int(s, "PRAGMA application_id", &app, err)))
        return rc;
    if (app != 0 && app != RF_STORE_APP_ID)
        return rf_err_set(err, RF_EFORMAT,
                          "%s is not a recfuse database (application_id 0x%llx)", s->path,
                          (unsigned long long)app);
    if (ver > RF_STORE_SCHEMA_VERSION)
        return rf_err_set(err, RF_EFORMAT,
                          "%s has schema version %lld, newer than this recfuse supports (%d); "
                          "upgrade recfuse",
                          s->path, (long long)ver, RF_STORE_SCHEMA_VERSION);
    if (ver == RF_STORE_SCHEMA_VERSION) return 0;
    if (s->readonly)
        return rf_err_set(err, RF_EIO, "%s is read-only and needs a schema upgrade (%lld -> %d)",
                          s->path, (long long)ver, RF_STORE_SCHEMA_VERSION);
    if ((rc = rf_store_begin_write_(s, "schema migration", err))) return rc;
    /* Another process may have migrated while we waited for the lock. */
    if ((rc = pragma_int(s, "PRAGMA user_version", &ver, err))) goto fail;
    if (ver == 0) {
        if ((rc = pragma_int(s, "SELECT count(*) FROM sqlite_master", &ntables, err))) goto fail;
        if (ntables > 0 && app != RF_STORE_APP_ID) {
            rc = rf_err_set(err, RF_EFORMAT,
                            "%s is not a recfuse database (it has tables but no recfuse schema)",
                            s->path);
            goto fail;
        }
    }
    for (int64_t v = ver; v < RF_STORE_SCHEMA_VERSION; v++) {
        if ((rc = rf_store_exec_(s, migrations[v], err))) goto fail;
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%lld; PRAGMA application_id=%d",
                 (long long)(v + 1), RF_STORE_APP_ID);
        if ((rc = rf_store_exec_(s, sql, err))) goto fail;
        rf_log(RF_LOG_DEBUG, "store.migrate", "db=%s from=%lld to=%lld", s->path, (long long)v,
               (long long)(v + 1));
    }
    return rf_store_commit_(s, "schema migration", err);
fail:
    rf_store_rollback_(s);
    return rc;
}

int rf_store_open(const char *dir, int create, rf_store **out, rf_err *err) {
    *out = NULL;
    if (!dir || !*dir) return rf_err_set(err, RF_EINVAL, "no data directory given");
    struct stat st;
    int rc;
    if (stat(dir, &st) != 0) {
        if (!create)
            return rf_err_set(err, RF_ENOTFOUND,
                              "data directory '%s' does not exist (import data into it first)",
                              dir);
        if ((rc = rf_mkdirs(dir, err))) return rc;
    } else if (!S_ISDIR(st.st_mode)) {
        return rf_err_set(err, RF_EIO, "'%s' is not a directory", dir);
    }
    rf_store *s = rf_calloc(1, sizeof *s);
    if (!s) return rf_err_set(err, RF_ENOMEM, "out of memory");
    s->busy_ms = 5000;
    s->dir = rf_strdup(dir);
    s->path = path_join(dir, "recfuse.db");
    char *models = path_join(dir, "models");
    if (!s->dir || !s->path || !models) {
        rf_free(models);
        rf_store_close(s);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    if (!create && access(s->path, F_OK) != 0) {
        rc = rf_err_set(err, RF_ENOTFOUND, "%s not found (import data into '%s' first)", s->path,
                        dir);
        rf_free(models);
        goto fail;
    }
    if (create) {
        rc = rf_mkdirs(models, err);
        rf_free(models);
        if (rc) goto fail;
    } else {
        if (mkdir(models, 0755) != 0 && errno != EEXIST) { /* read-only dir: fine for reading */
        }
        rf_free(models);
    }

    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int src = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = rf_store_sqlfail_(s, src, "open", err);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->busy_ms);
    s->readonly = sqlite3_db_readonly(s->db, "main") == 1;
    /* Reading the schema first turns "file is not a database" into a clear
     * error before any pragma tries to change it. */
    int64_t dummy;
    if ((rc = pragma_int(s, "SELECT count(*) FROM sqlite_master", &dummy, err))) goto fail;
    if (!s->readonly) {
        sqlite3_stmt *q;
        if ((rc = rf_store_prepare_(s, "PRAGMA journal_mode=WAL", &q, err))) goto fail;
        src = sqlite3_step(q);
        const char *mode = src == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
        int wal = mode && strcmp(mode, "wal") == 0;
        sqlite3_finalize(q);
        if (src != SQLITE_ROW) {
            rc = rf_store_sqlfail_(s, src, "set WAL mode", err);
            goto fail;
        }
        if (!wal) {
            rc = rf_err_set(err, RF_EDB, "%s: cannot switch to WAL mode (journal mode is %s)",
                            s->path, mode ? mode : "unknown");
            goto fail;
        }
    }
    if ((rc = rf_store_exec_(s,
                             "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                             "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY",
                             err)))
        goto fail;
    if ((rc = migrate(s, err))) goto fail;
    *out = s;
    return 0;
fail:
    rf_store_close(s);
    return rc;
}

void rf_store_close(rf_store *s) {
    if (!s) return;
    if (s->db) {
        rf_store_rollback_(s);
        sqlite3_finalize(s->user_events[0]);
        sqlite3_finalize(s->user_events[1]);
        sqlite3_close_v2(s->db);
    }
    rf_free(s->dir);
    rf_free(s->path);
    rf_free(s);
}

sqlite3 *rf_store_db(rf_store *s) { return s->db; }
const char *rf_store_dir(const rf_store *s) { return s->dir; }
const char *rf_store_path(const rf_store *s) { return s->path; }

void rf_store_set_busy_timeout(rf_store *s, int ms) {
    s->busy_ms = ms < 0 ? 0 : ms;
    sqlite3_busy_timeout(s->db, s->busy_ms);
}

void rf_store_model_path(const rf_store *s, const char *name, char *buf, size_t size) {
    size_t n = strlen(s->dir);
    const char *sep = n > 0 && s->dir[n - 1] == '/' ? "" : "/";
    snprintf(buf, size, "%s%smodels/%s.rfm", s->dir, sep, name);
}

int rf_store_count_table_(rf_store *s, const char *table, int64_t *n, rf_err *err) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return pragma_int(s, sql, n, err);
}

int rf_store_count(rf_store *s, rf_store_counts *c, rf_err *err) {
    memset(c, 0, sizeof *c);
    sqlite3_stmt *st;
    int rc = rf_store_prepare_(s,
                               "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM items),"
                               " (SELECT count(*) FROM events)",
                               &st, err);
    if (rc) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        c->users = sqlite3_column_int64(st, 0);
        c->items = sqlite3_column_int64(st, 1);
        c->events = sqlite3_column_int64(st, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) return rf_store_sqlfail_(s, rc, "count rows", err);
    return 0;
}

/* ---- load all events ---------------------------------------------------- */

/* Row id -> dense id. Row ids are normally 1..n, so a direct table is
 * used; a sparse range (after deletes) falls back to binary search. */
typedef struct ridmap {
    int64_t n, max;
    int64_t *rids;   /* sorted row ids, dense id = index */
    int32_t *direct; /* max + 1 entries, -1 = absent; NULL when sparse */
} ridmap;

static void ridmap_free(ridmap *m) {
    rf_free(m->rids);
    rf_free(m->direct);
}

static int32_t ridmap_find(const ridmap *m, int64_t rid) {
    if (rid < 0 || rid > m->max) return -1;
    if (m->direct) return m->direct[rid];
    int64_t lo = 0, hi = m->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->rids[mid] < rid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->rids[lo] == rid ? (int32_t)lo : -1;
}

/* Read TABLE's (rid, id) in rid order into `map` (dense ids 0..n-1) and `rm`. */
static int load_ids(rf_store *s, const char *table, rf_idmap *map, ridmap *rm, rf_err *err) {
    char sql[128];
    int64_t n, max;
    int rc;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    if ((rc = pragma_int(s, sql, &n, err))) return rc;
    snprintf(sql, sizeof sql, "SELECT coalesce(max(rid), 0) FROM %s", table);
    if ((rc = pragma_int(s, sql, &max, err))) return rc;
    if (n >= INT32_MAX)
        return rf_err_set(err, RF_ERANGE, "%s: too many %s (%lld)", s->path, table, (long long)n);
    rm->n = 0;
    rm->max = max;
    rm->rids = rf_malloc_array((size_t)n + 1, sizeof *rm->rids);
    if (!rm->rids) return rf_err_set(err, RF_ENOMEM, "out of memory loading %s", table);
    if (max <= 4 * n + 1024) {
        rm->direct = rf_malloc_array((size_t)max + 1, sizeof *rm->direct);
        if (!rm->direct) return rf_err_set(err, RF_ENOMEM, "out of memory loading %s", table);
        memset(rm->direct, 0xff, ((size_t)max + 1) * sizeof *rm->direct);
    }
    snprintf(sql, sizeof sql, "SELECT rid, id FROM %s ORDER BY rid", table);
    sqlite3_stmt *st;
    if ((rc = rf_store_prepare_(s, sql, &st, err))) return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rid = sqlite3_column_int64(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        int len = sqlite3_column_bytes(st, 1);
        int32_t dense;
        if (rm->n >= n) break; /* cannot happen inside one read transaction */
        int prc = rf_idmap_put(map, id ? id : "", (size_t)len, &dense, NULL);
        if (prc) {
            sqlite3_finalize(st);
            return rf_err_set(err, prc, "loading %s: %s", table, rf_strerror(prc));
        }
        if (dense != rm->n) {
            sqlite3_finalize(st);
            return rf_err_set(err, RF_ECORRUPT, "%s: duplicate %s id '%s'", s->path, table, id);
        }
        rm->rids[rm->n] = rid;
        if (rm->direct && rid >= 0 && rid <= max) rm->direct[rid] = dense;
        rm->n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return rf_store_sqlfail_(s, rc, table, err);
    return 0;
}

typedef struct sortrec {
    int64_t ts;
    int32_t item;
    float value;
    uint8_t type;
} sortrec;

static int sortrec_cmp(const void *a, const void *b) {
    const sortrec *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->item != y->item) return x->item < y->item ? -1 : 1;
    return (x->type > y->type) - (x->type < y->type);
}

/* Sort events [lo, hi) (one user's) by (ts, item, type) using `tmp`. */
static void sort_run(rf_events *e, int64_t lo, int64_t hi, sortrec *tmp) {
    int64_t n = hi - lo;
    int sorted = 1;
    for (int64_t i = lo + 1; i < hi && sorted; i++)
        if (e->ts[i] < e->ts[i - 1] || (e->ts[i] == e->ts[i - 1] && e->item[i] < e->item[i - 1]))
            sorted = 0;
    if (sorted) return;
    for (int64_t i = 0; i < n; i++) {
        tmp[i].ts = e->ts[lo + i];
        tmp[i].item = e->item[lo + i];
        tmp[i].value = e->value[lo + i];
        tmp[i].type = e->type[lo + i];
    }
    if (n <= 24) {
        for (int64_t i = 1; i < n; i++) {
            sortrec x = tmp[i];
            int64_t j = i;
            while (j > 0 && sortrec_cmp(&tmp[j - 1], &x) > 0) {
                tmp[j] = tmp[j - 1];
                j--;
            }
            tmp[j] = x;
        }
    } else {
        qsort(tmp, (size_t)n, sizeof *tmp, sortrec_cmp);
    }
    for (int64_t i = 0; i < n; i++) {
        e->ts[lo + i] = tmp[i].ts;
        e->item[lo + i] = tmp[i].item;
        e->value[lo + i] = tmp[i].value;
        e->type[lo + i] = tmp[i].type;
    }
}

/* The scan comes in key order (user, item, type, ts); reorder each user's
 * run by (ts, item, type). Runs are independent, so threads share them. */
static int sort_by_user_time(rf_events *e, rf_err *err) {
    int64_t nruns = 0, maxrun = 0;
    for (int64_t i = 0, start = 0; i <= e->n; i++)
        if (i == e->n || (i > 0 && e->user[i] != e->user[i - 1])) {
            if (i > start) {
                nruns++;
                if (i - start > maxrun) maxrun = i - start;
            }
            start = i;
        }
    if (nruns == 0) return 0;
    int64_t *starts = rf_malloc_array((size_t)nruns + 1, sizeof *starts);
    if (!starts) return rf_err_set(err, RF_ENOMEM, "out of memory sorting events");
    int64_t r = 0;
    for (int64_t i = 0; i < e->n; i++)
        if (i == 0 || e->user[i] != e->user[i - 1]) starts[r++] = i;
    starts[r] = e->n;
    int nt = rf_threads();
    sortrec *tmp = rf_malloc_array((size_t)nt * (size_t)maxrun, sizeof *tmp);
    if (!tmp) {
        rf_free(starts);
        return rf_err_set(err, RF_ENOMEM, "out of memory sorting events");
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1024)
    for (int64_t k = 0; k < nruns; k++)
        sort_run(e, starts[k], starts[k + 1], tmp + (size_t)omp_get_thread_num() * (size_t)maxrun);
    rf_free(tmp);
    rf_free(starts);
    return 0;
}

int rf_store_load_events(rf_store *s, rf_events **out, rf_err *err) {
    *out = NULL;
    double t0 = rf_mono();
    rf_events *e = NULL;
    ridmap um = {0}, im = {0};
    sqlite3_stmt *st = NULL;
    int rc;
    /* One read transaction: counts, maps and events see one snapshot. */
    if ((rc = rf_store_exec_(s, "BEGIN", err))) return rc;
    int64_t nev;
    if ((rc = pragma_int(s, "SELECT count(*) FROM events", &nev, err))) goto fail;
    if (rf_events_new(NULL, NULL, &e) != 0 || rf_events_reserve(e, nev > 0 ? nev : 1) != 0) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory for %lld events", (long long)nev);
        goto fail;
    }
    if ((rc = load_ids(s, "users", e->users, &um, err))) goto fail;
    if ((rc = load_ids(s, "items", e->items, &im, err))) goto fail;
    if ((rc = rf_store_prepare_(s, "SELECT user, item, type, value, ts FROM events"
                                   " ORDER BY user, item, type, ts", /* key order: no sort */
                                &st, err)))
        goto fail;
    int src;
    int64_t n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t urid = sqlite3_column_int64(st, 0), irid = sqlite3_column_int64(st, 1);
        int32_t u = ridmap_find(&um, urid), it = ridmap_find(&im, irid);
        if (u < 0 || it < 0) {
            rc = rf_err_set(err, RF_ECORRUPT, "%s: an event references a missing %s (row id %lld)",
                            s->path, u < 0 ? "user" : "item", (long long)(u < 0 ? urid : irid));
            goto fail;
        }
        int type = sqlite3_column_int(st, 2);
        if (n == e->cap) { /* only if rows appeared after the count */
            if (rf_events_reserve(e, e->cap * 2) != 0) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory loading events");
                goto fail;
            }
        }
        e->user[n] = u;
        e->item[n] = it;
        e->type[n] = (uint8_t)(type >= 0 && type < RF_EV_NTYPES ? type : RF_EV_CUSTOM);
        e->value[n] = (float)sqlite3_column_double(st, 3);
        e->ts[n] = sqlite3_column_int64(st, 4);
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = rf_store_sqlfail_(s, src, "reading events", err);
        goto fail;
    }
    e->n = n;
    sqlite3_finalize(st);
    st = NULL;
    rf_store_exec_(s, "COMMIT", NULL);
    ridmap_free(&um);
    ridmap_free(&im);
    if ((rc = sort_by_user_time(e, err))) {
        rf_events_free(e);
        return rc;
    }
    rf_log(RF_LOG_DEBUG, "store.load_events", "events=%lld users=%d items=%d seconds=%.3f",
           (long long)e->n, rf_idmap_size(e->users), rf_idmap_size(e->items), rf_mono() - t0);
    *out = e;
    return 0;
fail:
    sqlite3_finalize(st);
    rf_store_rollback_(s);
    ridmap_free(&um);
    ridmap_free(&im);
    rf_events_free(e);
    return rc;
}

/* One user's events into e: column 0 is the item's string id (by_rid 0)
 * or its store row id (1); the statement is prepared once per connection
 * and reset after each use (the server calls this per request). */
static int user_rows(rf_store *s, const char *user, rf_events *e, int by_rid, rf_err *err) {
    static const char *const sql[2] = {
        "SELECT i.id, e.type, e.value, e.ts FROM events e"
        " JOIN items i ON i.rid = e.item"
        " WHERE e.user = (SELECT rid FROM users WHERE id = ?1)"
        " ORDER BY e.ts, e.item, e.type",
        /* the same rows in the same order, without the join */
        "SELECT e.item, e.type, e.value, e.ts FROM events e"
        " WHERE e.user = (SELECT rid FROM users WHERE id = ?1)"
        " ORDER BY e.ts, e.item, e.type"};
    int rc = 0;
    if (!s->user_events[by_rid] &&
        (rc = rf_store_prepare_(s, sql[by_rid], &s->user_events[by_rid], err)))
        return rc;
    sqlite3_stmt *st = s->user_events[by_rid];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int type = sqlite3_column_int(st, 1);
        if (type < 0 || type >= RF_EV_NTYPES) type = RF_EV_CUSTOM;
        float value = (float)sqlite3_column_double(st, 2);
        int64_t ts = sqlite3_column_int64(st, 3);
        if (by_rid) {
            int64_t rid = sqlite3_column_int64(st, 0);
            rc = rf_events_push(e, 0, rid >= 0 && rid <= INT32_MAX ? (int32_t)rid : -1, type,
                                value, ts);
        } else {
            const char *item = (const char *)sqlite3_column_text(st, 0);
            rc = rf_events_push_str(e, user, item ? item : "", type, value, ts);
        }
        if (rc) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return rf_err_set(err, rc, "events of user '%s': %s", user, rf_strerror(rc));
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE) return rf_store_sqlfail_(s, src, "reading user events", err);
    return 0;
}

int rf_store_user_events(rf_store *s, const char *user, rf_events *e, rf_err *err) {
    return user_rows(s, user, e, 0, err);
}

int rf_store_user_event_rows(rf_store *s, const char *user, rf_events *e, rf_err *err) {
    return user_rows(s, user, e, 1, err);
}

int rf_store_item_rids(rf_store *s, const rf_idmap *ids, int32_t **r2i, int64_t *nr, rf_err *err) {
    *r2i = NULL;
    *nr = 0;
    int64_t max;
    int rc;
    if ((rc = pragma_int(s, "SELECT coalesce(max(rid), 0) FROM items", &max, err))) return rc;
    if (max >= INT32_MAX)
        return rf_err_set(err, RF_ERANGE, "%s: item row ids reach %lld (at most %d)", s->path,
                          (long long)max, INT32_MAX - 1);
    int32_t *map = rf_malloc_array((size_t)max + 1, sizeof *map);
    if (!map) return rf_err_set(err, RF_ENOMEM, "out of memory mapping %lld item row ids",
                                (long long)max + 1);
    memset(map, 0xff, ((size_t)max + 1) * sizeof *map);
    sqlite3_stmt *st;
    if ((rc = rf_store_prepare_(s, "SELECT rid, id FROM items WHERE rid <= ?1", &st, err))) {
        rf_free(map);
        return rc;
    }
    sqlite3_bind_int64(st, 1, max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rid = sqlite3_column_int64(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        if (rid >= 0 && id)
            map[rid] = rf_idmap_find(ids, id, (size_t)sqlite3_column_bytes(st, 1));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rf_free(map);
        return rf_store_sqlfail_(s, rc, "reading item row ids", err);
    }
    *r2i = map;
    *nr = max + 1;
    return 0;
}

/* ---- catalog and users ------------------------------------------------- */

/* Copy of a text column, NULL for SQL NULL. Sets *oom on failure. */
static char *col_str(sqlite3_stmt *st, int i, int *oom) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    const char *t = (const char *)sqlite3_column_text(st, i);
    char *c = rf_strndup(t ? t : "", (size_t)sqlite3_column_bytes(st, i));
    if (!c) *oom = 1;
    return c;
}

void rf_catalog_free(rf_catalog *c) {
    if (!c) return;
    for (int64_t i = 0; i < c->n; i++) {
        rf_item_info *it = &c->items[i];
        rf_free(it->id);
        rf_free(it->title);
        rf_free(it->category);
        rf_free(it->brand);
        rf_free(it->attrs);
    }
    rf_free(c->items);
    rf_free(c);
}

int rf_store_load_catalog(rf_store *s, rf_catalog **out, rf_err *err) {
    *out = NULL;
    int64_t n;
    int rc;
    if ((rc = rf_store_exec_(s, "BEGIN", err))) return rc;
    if ((rc = pragma_int(s, "SELECT count(*) FROM items", &n, err))) {
        rf_store_rollback_(s);
        return rc;
    }
    rf_catalog *c = rf_calloc(1, sizeof *c);
    sqlite3_stmt *st = NULL;
    if (!c || !(c->items = rf_calloc((size_t)n + 1, sizeof *c->items))) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory loading the catalog");
        goto fail;
    }
    if ((rc = rf_store_prepare_(s,
                                "SELECT id, title, category, brand, price, stock, created, attrs"
                                " FROM items ORDER BY rid",
                                &st, err)))
        goto fail;
    int src = SQLITE_DONE, oom = 0;
    while (c->n < n && (src = sqlite3_step(st)) == SQLITE_ROW) {
        rf_item_info *it = &c->items[c->n++];
        it->id = col_str(st, 0, &oom);
        it->title = col_str(st, 1, &oom);
        it->category = col_str(st, 2, &oom);
        it->brand = col_str(st, 3, &oom);
        it->price = sqlite3_column_type(st, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 4);
        it->stock = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 5);
        it->created = sqlite3_column_type(st, 6) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 6);
        it->attrs = col_str(st, 7, &oom);
        if (oom || !it->id) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory loading the catalog");
            goto fail;
        }
    }
    if (c->n < n && src != SQLITE_DONE) {
        rc = rf_store_sqlfail_(s, src, "reading items", err);
        goto fail;
    }
    sqlite3_finalize(st);
    rf_store_exec_(s, "COMMIT", NULL);
    *out = c;
    return 0;
fail:
    sqlite3_finalize(st);
    rf_store_rollback_(s);
    rf_catalog_free(c);
    return rc;
}

void rf_user_table_free(rf_user_table *t) {
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++) {
        rf_user_info *u = &t->users[i];
        rf_free(u->id);
        rf_free(u->gender);
        rf_free(u->country);
        rf_free(u->segment);
        rf_free(u->attrs);
    }
    rf_free(t->users);
    rf_free(t);
}

int rf_store_load_users(rf_store *s, rf_user_table **out, rf_err *err) {
    *out = NULL;
    int64_t n;
    int rc;
    if ((rc = rf_store_exec_(s, "BEGIN", err))) return rc;
    if ((rc = pragma_int(s, "SELECT count(*) FROM users", &n, err))) {
        rf_store_rollback_(s);
        return rc;
    }
    rf_user_table *t = rf_calloc(1, sizeof *t);
    sqlite3_stmt *st = NULL;
    if (!t || !(t->users = rf_calloc((size_t)n + 1, sizeof *t->users))) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory loading users");
        goto fail;
    }
    if ((rc = rf_store_prepare_(
             s, "SELECT id, gender, age, country, segment, attrs FROM users ORDER BY rid", &st, err)))
        goto fail;
    int src = SQLITE_DONE, oom = 0;
    while (t->n < n && (src = sqlite3_step(st)) == SQLITE_ROW) {
        rf_user_info *u = &t->users[t->n++];
        u->id = col_str(st, 0, &oom);
        u->gender = col_str(st, 1, &oom);
        u->age = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 2);
        u->country = col_str(st, 3, &oom);
        u->segment = col_str(st, 4, &oom);
        u->attrs = col_str(st, 5, &oom);
        if (oom || !u->id) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory loading users");
            goto fail;
        }
    }
    if (t->n < n && src != SQLITE_DONE) {
        rc = rf_store_sqlfail_(s, src, "reading users", err);
        goto fail;
    }
    sqlite3_finalize(st);
    rf_store_exec_(s, "COMMIT", NULL);
    *out = t;
    return 0;
fail:
    sqlite3_finalize(st);
    rf_store_rollback_(s);
    rf_user_table_free(t);
    return rc;
}
