/* append.c - the store's single-row writes: durable batch appends of
 * events, item and user upserts, price/stock patches and forgetting a
 * user. These are what the HTTP server writes (src/server/); the bulk
 * importers are in import.c.
 *
 * DESIGN: a batch of events is one BEGIN IMMEDIATE ... COMMIT, so a
 * caller that groups many requests into one call (group commit) pays one
 * fsync for all of them. Each event costs a few b-tree probes: the user
 * and item row ids (created when missing), whether the (user, item) pair
 * already has an event (the caller's live popularity counts distinct
 * pairs, like the "pop" model), and the INSERT OR IGNORE itself. Row ids
 * are looked up per call, never cached across calls, so a user deleted in
 * between is re-created cleanly. */
#include <math.h>
#include <string.h>

#include "recfuse/mem.h"
#include "store/store_int.h"

typedef struct stmts {
    sqlite3_stmt *uget, *uins, *iget, *iins, *pair, *ins;
} stmts;

static void stmts_free(stmts *q) {
    sqlite3_finalize(q->uget);
    sqlite3_finalize(q->uins);
    sqlite3_finalize(q->iget);
    sqlite3_finalize(q->iins);
    sqlite3_finalize(q->pair);
    sqlite3_finalize(q->ins);
}

/* Row id of `id` in users (users != 0) or items, created when missing. */
static int rid_of(rf_store *s, sqlite3_stmt *get, sqlite3_stmt *ins, const char *id,
                  int64_t *rid, int *created, rf_err *err) {
    *created = 0;
    sqlite3_bind_text(get, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) {
        *rid = sqlite3_column_int64(get, 0);
        sqlite3_reset(get);
        return 0;
    }
    sqlite3_reset(get);
    if (rc != SQLITE_DONE) return rf_store_sqlfail_(s, rc, "looking up a row id", err);
    sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE) return rf_store_sqlfail_(s, rc, "adding a row", err);
    *rid = sqlite3_last_insert_rowid(s->db);
    *created = 1;
    return 0;
}

int rf_store_append_events(rf_store *s, const rf_event_in *ev, int64_t n, uint8_t *flags,
                           rf_err *err) {
    if (n <= 0) return 0;
    stmts q = {0};
    int rc;
    if ((rc = rf_store_prepare_(s, "SELECT rid FROM users WHERE id = ?1", &q.uget, err)) ||
        (rc = rf_store_prepare_(s, "INSERT INTO users(id) VALUES(?1)", &q.uins, err)) ||
        (rc = rf_store_prepare_(s, "SELECT rid FROM items WHERE id = ?1", &q.iget, err)) ||
        (rc = rf_store_prepare_(s, "INSERT INTO items(id) VALUES(?1)", &q.iins, err)) ||
        (rc = rf_store_prepare_(s, "SELECT 1 FROM events WHERE user = ?1 AND item = ?2 LIMIT 1",
                                &q.pair, err)) ||
        (rc = rf_store_prepare_(s, "INSERT OR IGNORE INTO events(user, item, type, ts, value)"
                                   " VALUES(?1, ?2, ?3, ?4, ?5)",
                                &q.ins, err)))
        goto out;
    if ((rc = rf_store_begin_write_(s, "appending events", err))) goto out;
    /* Posts usually carry runs of one user: reuse the previous row ids. */
    const char *last_user = NULL, *last_item = NULL;
    int64_t u = 0, it = 0;
    for (int64_t i = 0; i < n; i++) {
        const rf_event_in *e = &ev[i];
        int ucr = 0, icr = 0;
        if (!last_user || strcmp(last_user, e->user) != 0) {
            if ((rc = rid_of(s, q.uget, q.uins, e->user, &u, &ucr, err))) goto fail;
            last_user = e->user;
        }
        if (!last_item || strcmp(last_item, e->item) != 0) {
            if ((rc = rid_of(s, q.iget, q.iins, e->item, &it, &icr, err))) goto fail;
            last_item = e->item;
        }
        uint8_t f = (uint8_t)((ucr ? RF_APPEND_NEW_USER : 0) | (icr ? RF_APPEND_NEW_ITEM : 0));
        sqlite3_bind_int64(q.pair, 1, u);
        sqlite3_bind_int64(q.pair, 2, it);
        int src = sqlite3_step(q.pair);
        sqlite3_reset(q.pair);
        if (src != SQLITE_ROW && src != SQLITE_DONE) {
            rc = rf_store_sqlfail_(s, src, "looking up a pair", err);
            goto fail;
        }
        if (src == SQLITE_DONE) f |= RF_APPEND_NEW_PAIR;
        sqlite3_bind_int64(q.ins, 1, u);
        sqlite3_bind_int64(q.ins, 2, it);
        sqlite3_bind_int(q.ins, 3, e->type);
        sqlite3_bind_int64(q.ins, 4, e->ts);
        sqlite3_bind_double(q.ins, 5, e->value);
        src = sqlite3_step(q.ins);
        sqlite3_reset(q.ins);
        if (src != SQLITE_DONE) {
            rc = rf_store_sqlfail_(s, src, "inserting an event", err);
            goto fail;
        }
        if (sqlite3_changes(s->db) > 0) f |= RF_APPEND_ADDED;
        if (flags) flags[i] = f;
    }
    rc = rf_store_commit_(s, "appending events", err);
    goto out;
fail:
    rf_store_rollback_(s);
out:
    stmts_free(&q);
    return rc;
}

/* Run one prepared write statement to completion. */
static int step_done(rf_store *s, sqlite3_stmt *st, const char *what, rf_err *err) {
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return rf_store_sqlfail_(s, rc, what, err);
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* 1 if TABLE has a row with this id, 0 if not, < 0 on error. */
static int row_exists(rf_store *s, const char *table, const char *id, rf_err *err) {
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE id = ?1", table);
    sqlite3_stmt *st;
    int rc = rf_store_prepare_(s, sql, &st, err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return rf_store_sqlfail_(s, rc, "looking up a row", err);
}

/* One statement in its own write transaction; *existed from row_exists. */
static int put_row(rf_store *s, const char *table, const char *id, const char *sql,
                   void (*bind)(sqlite3_stmt *, const void *), const void *row, int *created,
                   rf_err *err) {
    sqlite3_stmt *st;
    int rc = rf_store_prepare_(s, sql, &st, err);
    if (rc) return rc;
    if ((rc = rf_store_begin_write_(s, "storing a row", err))) goto out;
    int ex = row_exists(s, table, id, err);
    if (ex < 0) {
        rc = ex;
        rf_store_rollback_(s);
        goto out;
    }
    bind(st, row);
    if ((rc = step_done(s, st, "storing a row", err))) {
        rf_store_rollback_(s);
        goto out;
    }
    rc = rf_store_commit_(s, "storing a row", err);
    if (rc == 0 && created) *created = !ex;
out:
    sqlite3_finalize(st);
    return rc;
}

static void bind_item(sqlite3_stmt *st, const void *row) {
    const rf_item_info *it = row;
    sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, it->title);
    bind_text_or_null(st, 3, it->category);
    bind_text_or_null(st, 4, it->brand);
    if (isnan(it->price))
        sqlite3_bind_null(st, 5);
    else
        sqlite3_bind_double(st, 5, it->price);
    if (it->stock < 0)
        sqlite3_bind_null(st, 6);
    else
        sqlite3_bind_int64(st, 6, it->stock);
    if (it->created == 0)
        sqlite3_bind_null(st, 7);
    else
        sqlite3_bind_int64(st, 7, it->created);
    bind_text_or_null(st, 8, it->attrs);
}

int rf_store_put_item(rf_store *s, const rf_item_info *it, int *created, rf_err *err) {
    return put_row(s, "items", it->id,
                   "INSERT INTO items(id, title, category, brand, price, stock, created, attrs)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(id) DO UPDATE SET"
                   " title = excluded.title, category = excluded.category,"
                   " brand = excluded.brand, price = excluded.price, stock = excluded.stock,"
                   " created = excluded.created, attrs = excluded.attrs",
                   bind_item, it, created, err);
}

static void bind_user(sqlite3_stmt *st, const void *row) {
    const rf_user_info *u = row;
    sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, u->gender);
    if (u->age < 0)
        sqlite3_bind_null(st, 3);
    else
        sqlite3_bind_int(st, 3, u->age);
    bind_text_or_null(st, 4, u->country);
    bind_text_or_null(st, 5, u->segment);
    bind_text_or_null(st, 6, u->attrs);
}

int rf_store_put_user(rf_store *s, const rf_user_info *u, int *created, rf_err *err) {
    return put_row(s, "users", u->id,
                   "INSERT INTO users(id, gender, age, country, segment, attrs)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET"
                   " gender = excluded.gender, age = excluded.age, country = excluded.country,"
                   " segment = excluded.segment, attrs = excluded.attrs",
                   bind_user, u, created, err);
}

int rf_store_patch_item(rf_store *s, const char *id, double price, int64_t stock, rf_err *err) {
    sqlite3_stmt *st;
    int rc = rf_store_prepare_(s,
                               "UPDATE items SET price = coalesce(?2, price),"
                               " stock = coalesce(?3, stock) WHERE id = ?1",
                               &st, err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (!isnan(price)) sqlite3_bind_double(st, 2, price);
    if (stock >= 0) sqlite3_bind_int64(st, 3, stock);
    rc = step_done(s, st, "updating an item", err);
    sqlite3_finalize(st);
    if (rc) return rc;
    if (sqlite3_changes(s->db) == 0)
        return rf_err_set(err, RF_ENOTFOUND, "item '%s' is not in the catalog", id);
    return 0;
}

int rf_store_forget_user(rf_store *s, const char *id, int64_t *n_events, rf_err *err) {
    sqlite3_stmt *del_ev = NULL, *del_u = NULL;
    int rc;
    if ((rc = rf_store_prepare_(s,
                                "DELETE FROM events WHERE user = (SELECT rid FROM users WHERE id = ?1)",
                                &del_ev, err)) ||
        (rc = rf_store_prepare_(s, "DELETE FROM users WHERE id = ?1", &del_u, err)))
        goto out;
    if ((rc = rf_store_begin_write_(s, "forgetting a user", err))) goto out;
    sqlite3_bind_text(del_ev, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(del_u, 1, id, -1, SQLITE_STATIC);
    if ((rc = step_done(s, del_ev, "deleting a user's events", err))) goto fail;
    int64_t nev = sqlite3_changes(s->db);
    if ((rc = step_done(s, del_u, "deleting a user", err))) goto fail;
    if (sqlite3_changes(s->db) == 0) {
        rc = rf_err_set(err, RF_ENOTFOUND, "user '%s' is not stored", id);
        goto fail;
    }
    if ((rc = rf_store_commit_(s, "forgetting a user", err))) goto out;
    if (n_events) *n_events = nev;
    goto out;
fail:
    rf_store_rollback_(s);
out:
    sqlite3_finalize(del_ev);
    sqlite3_finalize(del_u);
    return rc;
}
