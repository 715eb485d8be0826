/* test_store.c - the SQLite store: open/create, schema and migrations,
 * reopen, refusing foreign/newer/corrupt databases, a locked database,
 * counts, rf_store_load_events (dense ids, order, catalog without events),
 * rf_store_user_events, model paths. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recfuse/error.h"
#include "recfuse/events.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/store.h"
#include "store/store_int.h"
#include "testutil.h"

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int64_t pragma(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_open_create_reopen(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    char *dir = join(tmp, "a/b");
    rf_err err;
    rf_store *s;
    /* Missing directory without create. */
    assert_int_equal(rf_store_open(dir, 0, &s, &err), RF_ENOTFOUND);
    char want[4096];
    snprintf(want, sizeof want, "data directory '%s' does not exist (import data into it first)",
             dir);
    assert_string_equal(err.msg, want);
    assert_null(s);
    /* Existing directory without a database. */
    assert_int_equal(rf_store_open(tmp, 0, &s, &err), RF_ENOTFOUND);
    snprintf(want, sizeof want, "%s/recfuse.db not found (import data into '%s' first)", tmp, tmp);
    assert_string_equal(err.msg, want);

    assert_int_equal(rf_store_open(dir, 1, &s, &err), 0);
    struct stat st;
    char *models = join(dir, "models");
    assert_int_equal(stat(models, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    sqlite3 *db = rf_store_db(s);
    assert_int_equal(pragma(db, "PRAGMA user_version"), 1);
    assert_int_equal(pragma(db, "PRAGMA application_id"), 0x52465553);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    assert_int_equal(pragma(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('users','items',"
                                "'events','events_ts','events_item','event_types')"),
                     6);
    char mp[4200];
    rf_store_model_path(s, "itemknn", mp, sizeof mp);
    snprintf(want, sizeof want, "%s/models/itemknn.rfm", dir);
    assert_string_equal(mp, want);
    assert_string_equal(rf_store_dir(s), dir);
    /* Write something, reopen: still there, schema not re-run. */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO users(id) VALUES('u1')", NULL, NULL, NULL), 0);
    rf_store_close(s);
    assert_int_equal(rf_store_open(dir, 0, &s, &err), 0);
    rf_store_counts c;
    assert_int_equal(rf_store_count(s, &c, &err), 0);
    assert_int_equal(c.users, 1);
    assert_int_equal(c.items, 0);
    assert_int_equal(c.events, 0);
    rf_store_close(s);
    rf_store_close(NULL);
    free(models);
    free(dir);
    rf_test_rmtree(tmp);
    free(tmp);
}

static void test_refuse_foreign_newer_corrupt(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    char *dbp = join(tmp, "recfuse.db");
    rf_err err;
    rf_store *s;
    char want[4096];
    /* Someone else's database. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), RF_EFORMAT);
    snprintf(want, sizeof want,
             "%s is not a recfuse database (it has tables but no recfuse schema)", dbp);
    assert_string_equal(err.msg, want);
    /* ... untouched. */
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(pragma(db, "SELECT count(*) FROM t"), 1);
    assert_int_equal(pragma(db, "PRAGMA user_version"), 0);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id=42", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), RF_EFORMAT);
    snprintf(want, sizeof want, "%s is not a recfuse database (application_id 0x2a)", dbp);
    assert_string_equal(err.msg, want);
    remove(dbp);

    /* A newer schema. */
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), 0);
    assert_int_equal(sqlite3_exec(rf_store_db(s), "PRAGMA user_version=99", NULL, NULL, NULL), 0);
    rf_store_close(s);
    assert_int_equal(rf_store_open(tmp, 0, &s, &err), RF_EFORMAT);
    snprintf(want, sizeof want,
             "%s has schema version 99, newer than this recfuse supports (1); upgrade recfuse", dbp);
    assert_string_equal(err.msg, want);
    remove(dbp);
    char *wal = join(tmp, "recfuse.db-wal"), *shm = join(tmp, "recfuse.db-shm");
    remove(wal);
    remove(shm);

    /* Not a database at all. */
    free(rf_test_write_file(tmp, "recfuse.db", "this is not a database, just some text......"
                                               "..............................................."));
    assert_int_equal(rf_store_open(tmp, 0, &s, &err), RF_EFORMAT);
    assert_non_null(strstr(err.msg, "recfuse.db"));
    assert_non_null(strstr(err.msg, "not a database"));
    /* A file where the directory should be. */
    assert_int_equal(rf_store_open(dbp, 1, &s, &err), RF_EIO);
    snprintf(want, sizeof want, "'%s' is not a directory", dbp);
    assert_string_equal(err.msg, want);
    free(wal);
    free(shm);
    free(dbp);
    rf_test_rmtree(tmp);
    free(tmp);
}

/* An unversioned, empty database file (as `sqlite3 recfuse.db ''` leaves) is migrated. */
static void test_migrate_from_empty(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    char *dbp = join(tmp, "recfuse.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=8192; VACUUM", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rf_store *s;
    rf_err err;
    assert_int_equal(rf_store_open(tmp, 0, &s, &err), 0);
    assert_int_equal(pragma(rf_store_db(s), "PRAGMA user_version"), 1);
    rf_store_close(s);
    /* Reopening twice more is a no-op. */
    assert_int_equal(rf_store_open(tmp, 0, &s, &err), 0);
    rf_store_close(s);
    free(dbp);
    rf_test_rmtree(tmp);
    free(tmp);
}

static void test_locked(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    rf_store *s;
    rf_err err;
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), 0);
    rf_store_set_busy_timeout(s, 50);
    char *p = rf_test_write_file(tmp, "ev.tsv", "u1\ti1\t1\t10\n");
    char *dbp = join(tmp, "recfuse.db");
    sqlite3 *other;
    assert_int_equal(sqlite3_open(dbp, &other), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(other, "BEGIN IMMEDIATE; INSERT INTO users(id) VALUES('x')", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(rf_import_interactions(s, p, NULL, NULL, &err), RF_EDB);
    char want[4096];
    snprintf(want, sizeof want,
             "%s: importing interactions from ev.tsv: database is locked (another process is "
             "writing to it; retry when it is done)",
             dbp);
    assert_string_equal(err.msg, want);
    /* Readers are not blocked by the writer (WAL). */
    rf_events *e;
    assert_int_equal(rf_store_load_events(s, &e, &err), 0);
    assert_int_equal(e->n, 0);
    rf_events_free(e);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_int_equal(rf_import_interactions(s, p, NULL, NULL, &err), 0);
    rf_store_counts c;
    assert_int_equal(rf_store_count(s, &c, &err), 0);
    assert_int_equal(c.events, 1);
    assert_int_equal(c.users, 1);
    rf_store_close(s);
    free(p);
    free(dbp);
    rf_test_rmtree(tmp);
    free(tmp);
}

static void test_load_events(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    rf_store *s;
    rf_err err;
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), 0);
    /* Catalog first: i0 and u0 never get events but must be in the maps. */
    char *items = rf_test_write_file(tmp, "items.tsv", "id\ttitle\ni0\tZero\ni1\tOne\ni2\tTwo\n");
    char *users = rf_test_write_file(tmp, "users.tsv", "id\tage\nu0\t30\nu9\t40\n");
    assert_int_equal(rf_import_items(s, items, NULL, NULL, &err), 0);
    assert_int_equal(rf_import_users(s, users, NULL, NULL, &err), 0);
    char *ev = rf_test_write_file(tmp, "ev.tsv",
                                  "user\titem\ttype\tvalue\ttimestamp\n"
                                  "u9\ti2\tview\t1\t300\n"
                                  "u5\ti1\tpurchase\t2\t100\n"
                                  "u9\ti1\tview\t1\t300\n"
                                  "u9\ti1\tcart\t1\t300\n"
                                  "u9\ti3\tview\t1\t200\n"
                                  "u5\ti2\tview\t1\t50\n"
                                  "u9\ti2\tview\t1\t100\n");
    assert_int_equal(rf_import_interactions(s, ev, NULL, NULL, &err), 0);
    rf_events *e;
    assert_int_equal(rf_store_load_events(s, &e, &err), 0);
    /* Users in row order: u0, u9 (users file), u5 (first seen in events). */
    assert_int_equal(rf_idmap_size(e->users), 3);
    assert_string_equal(rf_idmap_str(e->users, 0), "u0");
    assert_string_equal(rf_idmap_str(e->users, 1), "u9");
    assert_string_equal(rf_idmap_str(e->users, 2), "u5");
    assert_int_equal(rf_idmap_size(e->items), 4);
    assert_string_equal(rf_idmap_str(e->items, 0), "i0");
    assert_string_equal(rf_idmap_str(e->items, 3), "i3");
    assert_int_equal(e->n, 7);
    /* Ordered by (user, ts, item, type). */
    static const struct {
        int u, i, type;
        int64_t ts;
    } want[] = {{1, 2, RF_EV_VIEW, 100}, {1, 3, RF_EV_VIEW, 200}, {1, 1, RF_EV_VIEW, 300},
                {1, 1, RF_EV_CART, 300}, {1, 2, RF_EV_VIEW, 300}, {2, 2, RF_EV_VIEW, 50},
                {2, 1, RF_EV_PURCHASE, 100}};
    for (int k = 0; k < 7; k++) {
        assert_int_equal(e->user[k], want[k].u);
        assert_int_equal(e->item[k], want[k].i);
        assert_int_equal(e->type[k], want[k].type);
        assert_int_equal(e->ts[k], want[k].ts);
    }
    assert_true(e->value[6] == 2.0f);
    rf_events_free(e);

    /* One user's events, through a log with its own maps. */
    rf_events *u;
    assert_int_equal(rf_events_new(NULL, NULL, &u), 0);
    assert_int_equal(rf_store_user_events(s, "u9", u, &err), 0);
    assert_int_equal(u->n, 5);
    assert_string_equal(rf_idmap_str(u->items, u->item[0]), "i2");
    assert_int_equal(u->ts[0], 100);
    assert_string_equal(rf_idmap_str(u->items, u->item[4]), "i2");
    assert_int_equal(u->ts[4], 300);
    assert_int_equal(u->type[3], RF_EV_CART);
    assert_int_equal(rf_store_user_events(s, "nobody", u, &err), 0);
    assert_int_equal(u->n, 5);

    /* The same rows by item row id, mapped back through rf_store_item_rids
     * onto a map holding i1 and i2 only (i3: -1, as an item a model lacks). */
    rf_idmap *ids;
    assert_int_equal(rf_idmap_new(&ids), 0);
    int32_t dummy;
    assert_int_equal(rf_idmap_put(ids, "i2", 2, &dummy, NULL), 0);
    assert_int_equal(rf_idmap_put(ids, "i1", 2, &dummy, NULL), 0);
    int32_t *r2i;
    int64_t nr;
    assert_int_equal(rf_store_item_rids(s, ids, &r2i, &nr, &err), 0);
    assert_true(nr >= 5); /* four catalog items and i3, rows 1..5 */
    rf_events *r;
    assert_int_equal(rf_events_new(NULL, NULL, &r), 0);
    assert_int_equal(rf_store_user_event_rows(s, "u9", r, &err), 0);
    assert_int_equal(r->n, 5);
    assert_int_equal(rf_idmap_size(r->items), 0);
    for (int k = 0; k < 5; k++) {
        assert_true(r->item[k] >= 0 && r->item[k] < nr);
        const char *want = rf_idmap_str(u->items, u->item[k]);
        assert_int_equal(r2i[r->item[k]], rf_idmap_find(ids, want, strlen(want)));
        assert_int_equal(r->type[k], u->type[k]);
        assert_int_equal(r->ts[k], u->ts[k]);
        assert_true(r->value[k] == u->value[k]);
    }
    assert_int_equal(r2i[r->item[1]], -1); /* i3 at ts 200 */
    assert_int_equal(rf_store_user_event_rows(s, "nobody", r, &err), 0);
    assert_int_equal(r->n, 5);
    rf_free(r2i);
    rf_events_free(r);
    rf_idmap_free(ids);
    rf_events_free(u);

    /* Deleted rows leave sparse row ids: still dense ids in row order. */
    assert_int_equal(sqlite3_exec(rf_store_db(s),
                                  "INSERT INTO items(rid, id) VALUES(100000, 'far');"
                                  "DELETE FROM items WHERE id = 'i0'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(rf_store_load_events(s, &e, &err), 0);
    assert_int_equal(rf_idmap_size(e->items), 4);
    assert_string_equal(rf_idmap_str(e->items, 0), "i1");
    assert_string_equal(rf_idmap_str(e->items, 3), "far");
    assert_string_equal(rf_idmap_str(e->items, e->item[0]), "i2");
    rf_events_free(e);
    rf_store_close(s);
    free(items);
    free(users);
    free(ev);
    rf_test_rmtree(tmp);
    free(tmp);
}

typedef struct tup {
    char key[48];
    int idx;
    float value;
} tup;

static int tup_cmp(const void *a, const void *b) {
    const tup *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* A bigger random log against a brute-force oracle: same events, right order. */
static void test_load_events_oracle(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    char *p = malloc(strlen(tmp) + 16);
    sprintf(p, "%s/ev.tsv", tmp);
    FILE *f = fopen(p, "w");
    unsigned x = 12345;
    int n = 20000;
    for (int k = 0; k < n; k++) {
        x = x * 1103515245u + 12345u;
        int u = (int)(x >> 16) % 300;
        x = x * 1103515245u + 12345u;
        int i = (int)(x >> 16) % 200;
        x = x * 1103515245u + 12345u;
        int ts = (int)(x >> 16) % 5000;
        fprintf(f, "user%d\titem%d\t%d\t%d\n", u, i, k % 5 + 1, ts);
    }
    fclose(f);
    rf_store *s;
    rf_err err;
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), 0);
    rf_import_stats st;
    assert_int_equal(rf_import_interactions(s, p, NULL, &st, &err), 0);
    rf_events *e, *r;
    assert_int_equal(rf_store_load_events(s, &e, &err), 0);
    assert_int_equal(e->n, st.added);
    assert_int_equal(rf_events_new(NULL, NULL, &r), 0);
    assert_int_equal(rf_read_interactions(p, NULL, r, NULL, &err), 0);
    /* Every loaded event exists in the file; order is (user, ts, item). */
    for (int64_t k = 1; k < e->n; k++) {
        int ok = e->user[k - 1] < e->user[k] ||
                 (e->user[k - 1] == e->user[k] &&
                  (e->ts[k - 1] < e->ts[k] || (e->ts[k - 1] == e->ts[k] && e->item[k - 1] <= e->item[k])));
        assert_true(ok);
    }
    /* Oracle: the file's rows deduplicated on (user, item, ts), first value wins. */
    tup *o = calloc((size_t)r->n, sizeof *o), *g = calloc((size_t)e->n, sizeof *g);
    for (int64_t k = 0; k < r->n; k++) {
        snprintf(o[k].key, sizeof o[k].key, "%s %s %lld", rf_idmap_str(r->users, r->user[k]),
                 rf_idmap_str(r->items, r->item[k]), (long long)r->ts[k]);
        o[k].idx = (int)k;
        o[k].value = r->value[k];
    }
    qsort(o, (size_t)r->n, sizeof *o, tup_cmp);
    int64_t m = 0;
    for (int64_t k = 0; k < r->n; k++)
        if (m == 0 || strcmp(o[k].key, o[m - 1].key) != 0) o[m++] = o[k];
    assert_int_equal(m, e->n);
    for (int64_t k = 0; k < e->n; k++) {
        snprintf(g[k].key, sizeof g[k].key, "%s %s %lld", rf_idmap_str(e->users, e->user[k]),
                 rf_idmap_str(e->items, e->item[k]), (long long)e->ts[k]);
        g[k].value = e->value[k];
    }
    qsort(g, (size_t)e->n, sizeof *g, tup_cmp);
    for (int64_t k = 0; k < m; k++) {
        assert_string_equal(g[k].key, o[k].key);
        assert_true(g[k].value == o[k].value);
    }
    free(o);
    free(g);
    rf_events_free(e);
    rf_events_free(r);
    rf_store_close(s);
    free(p);
    rf_test_rmtree(tmp);
    free(tmp);
}

/* The bulk sink across many small chunks and a grown buffer: duplicates
 * across chunks are caught by the table key, counts add up, rollback
 * restores the dropped indexes. */
static void test_sink_chunks(void **state) {
    (void)state;
    char *tmp = rf_test_tmpdir("store");
    rf_store *s;
    rf_err err;
    assert_int_equal(rf_store_open(tmp, 1, &s, &err), 0);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(rf_store_begin_write_(s, "test", &err), 0);
        rf_evsink *k;
        assert_int_equal(rf_evsink_new(s, pass == 0 ? 0 : 10000000, &k, &err), 0);
        rf_evsink_set_chunk_(k, 97);
        char u[16], it[16];
        for (int r = 0; r < 3000; r++) {
            snprintf(u, sizeof u, "u%d", r % 37);
            snprintf(it, sizeof it, "i%d", (r * 7) % 101);
            int rc = rf_evsink_add(k, u, strlen(u), it, strlen(it), RF_EV_VIEW, 1.0, r % 1000, &err);
            assert_int_equal(rc, 0);
        }
        int64_t added = 0, dups = 0;
        assert_int_equal(rf_evsink_finish(k, &added, &dups, &err), 0);
        rf_evsink_free(k);
        /* (r % 37, r*7 % 101, r % 1000) repeats with period lcm(37, 101, 1000) > 3000:
         * all distinct except what the store already had. */
        if (pass == 0) {
            assert_int_equal(added, 3000);
            assert_int_equal(dups, 0);
            assert_int_equal(rf_store_commit_(s, "test", &err), 0);
        } else {
            /* Big size hint: indexes dropped for a rebuild; roll back instead. */
            assert_int_equal(added, 0);
            assert_int_equal(dups, 3000);
            rf_store_rollback_(s);
        }
    }
    assert_int_equal(pragma(rf_store_db(s), "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                            " AND name IN ('events_ts', 'events_item')"),
                     2);
    rf_store_counts c;
    assert_int_equal(rf_store_count(s, &c, &err), 0);
    assert_int_equal(c.events, 3000);
    assert_int_equal(c.users, 37);
    assert_int_equal(c.items, 101);
    rf_store_close(s);
    rf_test_rmtree(tmp);
    free(tmp);
}

int main(void) {
    rf_log_set_level(RF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_create_reopen),
        cmocka_unit_test(test_refuse_foreign_newer_corrupt),
        cmocka_unit_test(test_migrate_from_empty),
        cmocka_unit_test(test_locked),
        cmocka_unit_test(test_load_events),
        cmocka_unit_test(test_load_events_oracle),
        cmocka_unit_test(test_sink_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
