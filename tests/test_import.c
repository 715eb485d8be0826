/* test_import.c - importers: every format and file kind, happy paths, re-import,
 * and for every path the bad-input cases, each asserting the exact
 * "FILE:LINE: FIELD: reason" text and that the store still holds exactly
 * what it held before; --skip-bad; rf_read_interactions; MovieLens;
 * allocation failures. */
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "recfuse/error.h"
#include "recfuse/events.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/store.h"
#include "testutil.h"

typedef struct fx {
    char *dir;
    rf_store *s;
} fx;

static int setup(void **state) {
    rf_log_set_level(RF_LOG_ERROR);
    fx *f = calloc(1, sizeof *f);
    f->dir = rf_test_tmpdir("imp");
    rf_err err;
    rf_err_clear(&err);
    char db[4096];
    snprintf(db, sizeof db, "%s/data", f->dir);
    if (rf_store_open(db, 1, &f->s, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    rf_store_close(f->s);
    rf_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *t) {
    size_t k = strlen(t);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, t, k + 1);
    b->n += k;
}

static void query_into(sqlite3 *db, const char *sql, sbuf *b) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_count(st);
        for (int i = 0; i < n; i++) {
            const char *t = (const char *)sqlite3_column_text(st, i);
            sb_add(b, t ? t : "NULL");
            sb_add(b, i + 1 < n ? " " : "\n");
        }
    }
    sqlite3_finalize(st);
}

/* Every row of the store, canonical text (malloc'd). */
static char *dump(rf_store *s) {
    sbuf b = {0};
    sb_add(&b, "");
    sqlite3 *db = rf_store_db(s);
    query_into(db, "SELECT 'U', rid, id, gender, age, country, segment, attrs FROM users ORDER BY rid",
               &b);
    query_into(db,
               "SELECT 'I', rid, id, title, category, brand, price, stock, created, attrs FROM items"
               " ORDER BY rid",
               &b);
    query_into(db,
               "SELECT u.id, i.id, t.name, e.value, e.ts FROM events e JOIN users u ON u.rid = e.user"
               " JOIN items i ON i.rid = e.item JOIN event_types t ON t.code = e.type"
               " ORDER BY u.id, i.id, e.type, e.ts",
               &b);
    return b.s;
}

/* Just the events: "user item type value ts" lines. */
static char *events_text(rf_store *s) {
    sbuf b = {0};
    sb_add(&b, "");
    query_into(rf_store_db(s),
               "SELECT u.id, i.id, t.name, e.value, e.ts FROM events e JOIN users u ON u.rid = e.user"
               " JOIN items i ON i.rid = e.item JOIN event_types t ON t.code = e.type"
               " ORDER BY u.id, i.id, e.type, e.ts",
               &b);
    return b.s;
}

static char *one(rf_store *s, const char *sql) {
    sbuf b = {0};
    sb_add(&b, "");
    query_into(rf_store_db(s), sql, &b);
    if (b.n > 0 && b.s[b.n - 1] == '\n') b.s[--b.n] = 0;
    return b.s;
}

static char *path_of(fx *f, const char *name) {
    size_t n = strlen(f->dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", f->dir, name);
    return p;
}

enum { INTER, ITEMS, USERS };

/* Write NAME with TEXT and import it as KIND. */
static int imp(fx *f, int kind, const char *name, const char *text, const rf_import_opts *o,
               rf_import_stats *st, rf_err *err) {
    free(rf_test_write_file(f->dir, name, text));
    char *p = path_of(f, name);
    rf_err_clear(err);
    int rc = kind == INTER   ? rf_import_interactions(f->s, p, o, st, err)
             : kind == ITEMS ? rf_import_items(f->s, p, o, st, err)
                             : rf_import_users(f->s, p, o, st, err);
    free(p);
    return rc;
}

static void expect_ok(fx *f, int kind, const char *name, const char *text, const rf_import_opts *o,
                      rf_import_stats *st) {
    rf_err err;
    int rc = imp(f, kind, name, text, o, st, &err);
    if (rc) fprintf(stderr, "unexpected failure: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

/* Import must fail with exactly "DIR/NAME:" + tail and leave the store as it was. */
static void expect_bad(fx *f, int kind, const char *name, const char *text, const rf_import_opts *o,
                       const char *tail) {
    char *before = dump(f->s);
    rf_err err;
    rf_import_stats st;
    int rc = imp(f, kind, name, text, o, &st, &err);
    assert_int_equal(rc, RF_EPARSE);
    char want[2048];
    snprintf(want, sizeof want, "%s/%s:%s", f->dir, name, tail);
    assert_string_equal(err.msg, want);
    char *after = dump(f->s);
    assert_string_equal(after, before);
    assert_int_equal(st.added, 0);
    free(before);
    free(after);
}

static const char base_events[] = "user\titem\ttype\tvalue\ttimestamp\n"
                                  "u1\ti1\tview\t1\t1700000000\n"
                                  "u1\ti2\tpurchase\t2\t2024-03-01T12:00:00Z\n"
                                  "u2\ti1\trating\t4.5\t1700000100\n";

static void seed_store(fx *f) {
    rf_import_stats st;
    expect_ok(f, ITEMS, "seed_items.tsv", "id\ttitle\tcategory\tprice\ti0\tZero\tToys\t1.5\n", NULL,
              &st);
    expect_ok(f, INTER, "seed.tsv", base_events, NULL, &st);
}

/* ---- happy paths ----------------------------------------------------------- */

static void test_tsv_header(void **state) {
    fx *f = *state;
    rf_import_stats st;
    expect_ok(f, INTER, "ev.tsv", base_events, NULL, &st);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.added, 3);
    assert_int_equal(st.duplicates, 0);
    assert_int_equal(st.rejected, 0);
    char *ev = events_text(f->s);
    assert_string_equal(ev, "u1 i1 view 1.0 1700000000\n"
                            "u1 i2 purchase 2.0 1709294400\n"
                            "u2 i1 rating 4.5 1700000100\n");
    free(ev);
    rf_store_counts c;
    assert_int_equal(rf_store_count(f->s, &c, NULL), 0);
    assert_int_equal(c.users, 2);
    assert_int_equal(c.items, 2);
    assert_int_equal(c.events, 3);

    /* Re-import: nothing new. */
    expect_ok(f, INTER, "ev.tsv", base_events, NULL, &st);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.added, 0);
    assert_int_equal(st.duplicates, 3);
    assert_int_equal(rf_store_count(f->s, &c, NULL), 0);
    assert_int_equal(c.events, 3);

    /* Header in another order, other names, an ignored column; in-file duplicate. */
    expect_ok(f, INTER, "ev2.tsv",
              "TS\tsession\tItem_ID\tUserId\tRating\n"
              "5\ts1\ti9\tu3\t3\n"
              "5\ts1\ti9\tu3\t4\n",
              NULL, &st);
    assert_int_equal(st.added, 1);
    assert_int_equal(st.duplicates, 1);
    char *v = one(f->s, "SELECT value, type FROM events WHERE ts = 5");
    assert_string_equal(v, "3.0 4"); /* first wins, default type rating */
    free(v);
}

static void test_positional(void **state) {
    fx *f = *state;
    rf_import_stats st;
    rf_import_opts o;
    rf_import_opts_default(&o);
    expect_ok(f, INTER, "p2.tsv", "a\tx\nb\ty\n", NULL, &st);
    expect_ok(f, INTER, "p3.tsv", "a\tx\t5\n", NULL, &st);
    expect_ok(f, INTER, "p4.tsv", "a\tx\t3\t100\n", NULL, &st);
    expect_ok(f, INTER, "p5.tsv", "a\tx\tclick\t1\t200\nb\tx\t3\t2\t2024-01-01\n", NULL, &st);
    o.default_type = RF_EV_PURCHASE;
    expect_ok(f, INTER, "p4b.tsv", "c\tz\t2\t300\n", &o, &st);
    char *ev = events_text(f->s);
    assert_string_equal(ev, "a x click 1.0 200\n"
                            "a x rating 1.0 0\n"
                            "a x rating 3.0 100\n"
                            "b x purchase 2.0 1704067200\n"
                            "b y rating 1.0 0\n"
                            "c z purchase 2.0 300\n");
    free(ev);
    /* "a x rating 5 0" is a duplicate of "a x rating 1 0" (same key): first wins. */
    /* --header forces a header even with unknown-looking names; --no-header a data row. */
    o.default_type = RF_EV_RATING;
    o.header = 0;
    expect_ok(f, INTER, "p_nohdr.tsv", "user\titem\t1\t7\n", &o, &st);
    ev = one(f->s, "SELECT count(*) FROM events WHERE ts = 7");
    assert_string_equal(ev, "1");
    free(ev);
}

static void test_csv_quotes(void **state) {
    fx *f = *state;
    rf_import_stats st;
    expect_ok(f, INTER, "ev.csv",
              "user,item,value,timestamp\r\n"
              "\"u,1\",\"i \"\"x\"\"\",3,100\r\n"
              "\"multi\nline\", i2 ,4,\"2024-01-01T00:00:00Z\"\r\n"
              "\r\n"
              "plain,\"p\",5,300",
              NULL, &st);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.rejected, 0);
    char *ev = events_text(f->s);
    assert_string_equal(ev, "multi\nline i2 rating 4.0 1704067200\n"
                            "plain p rating 5.0 300\n"
                            "u,1 i \"x\" rating 3.0 100\n");
    free(ev);
    /* The empty item id in the last row is an error. */
    rf_err err;
    char *before = dump(f->s);
    assert_int_equal(imp(f, INTER, "ev.csv",
                         "user,item,value,timestamp\r\n\"u,1\",\"i\",3,100\r\nplain,\"\",5,300", NULL,
                         &st, &err),
                     RF_EPARSE);
    char want[1024];
    snprintf(want, sizeof want, "%s/ev.csv:3: item: empty id", f->dir);
    assert_string_equal(err.msg, want);
    char *after = dump(f->s);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void test_jsonl(void **state) {
    fx *f = *state;
    rf_import_stats st;
    expect_ok(f, INTER, "ev.jsonl",
              "{\"user\":\"u1\",\"item\":\"i1\",\"rating\":4,\"ts\":\"2024-01-01\"}\n"
              "\n"
              "{\"user_id\":7,\"item_id\":8,\"event\":\"add_to_cart\",\"value\":1.5,\"timestamp\":100,"
              "\"extra\":{\"a\":1}}\n"
              "{\"user\":\"u2\",\"item\":\"i1\",\"value\":null}\n",
              NULL, &st);
    assert_int_equal(st.rows, 3);
    char *ev = events_text(f->s);
    assert_string_equal(ev, "7 8 cart 1.5 100\n"
                            "u1 i1 rating 4.0 1704067200\n"
                            "u2 i1 rating 1.0 0\n");
    free(ev);
}

static void test_bom_crlf_gz(void **state) {
    fx *f = *state;
    rf_import_stats st;
    expect_ok(f, INTER, "bom.tsv",
              "\xEF\xBB\xBFuser\titem\tvalue\r\n\r\nu1\ti1\t2\r\n  \r\nu2\ti2\t3\r\n", NULL, &st);
    assert_int_equal(st.rows, 2);
    /* gzip */
    char *gzp = path_of(f, "ev.tsv.gz");
    gzFile g = gzopen(gzp, "wb");
    gzputs(g, "user\titem\tvalue\ttimestamp\nu3\ti3\t1\t10\nu4\ti3\t1\t11\n");
    gzclose(g);
    rf_err err;
    assert_int_equal(rf_import_interactions(f->s, gzp, NULL, &st, &err), 0);
    assert_int_equal(st.added, 2);
    free(gzp);
    char *ev = events_text(f->s);
    assert_string_equal(ev, "u1 i1 rating 2.0 0\nu2 i2 rating 3.0 0\nu3 i3 rating 1.0 10\n"
                            "u4 i3 rating 1.0 11\n");
    free(ev);
}

static void test_items_users(void **state) {
    fx *f = *state;
    rf_import_stats st;
    expect_ok(f, ITEMS, "items.tsv",
              "id\ttitle\tcategory\tbrand\tprice\tstock\tcreated\tcolor\n"
              "i1\tRed shoe\tShoes\tAcme\t19.5\t3\t2024-01-01\tred\n"
              "i2\tMug\tKitchen\t\t\t\t\t\n",
              NULL, &st);
    assert_int_equal(st.added, 2);
    char *d = dump(f->s);
    assert_string_equal(d, "I 1 i1 Red shoe Shoes Acme 19.5 3 1704067200 {\"color\":\"red\"}\n"
                           "I 2 i2 Mug Kitchen NULL NULL NULL NULL NULL\n");
    free(d);
    /* Partial update: only stock; attrs merged from JSONL. */
    expect_ok(f, ITEMS, "stock.csv", "item_id,stock\ni1,0\ni3,7\n", NULL, &st);
    assert_int_equal(st.added, 1);
    assert_int_equal(st.duplicates, 1);
    expect_ok(f, ITEMS, "items.jsonl",
              "{\"id\":\"i1\",\"price\":17,\"size\":42,\"attrs\":{\"color\":\"blue\"}}\n", NULL, &st);
    d = dump(f->s);
    assert_string_equal(d,
                        "I 1 i1 Red shoe Shoes Acme 17.0 0 1704067200 {\"color\":\"blue\",\"size\":42}\n"
                        "I 2 i2 Mug Kitchen NULL NULL NULL NULL NULL\n"
                        "I 3 i3 NULL NULL NULL NULL 7 NULL NULL\n");
    free(d);
    /* Positional items. */
    expect_ok(f, ITEMS, "items_pos.tsv", "i4\tLamp\tHome\n", NULL, &st);
    d = one(f->s, "SELECT title, category FROM items WHERE id = 'i4'");
    assert_string_equal(d, "Lamp Home");
    free(d);

    expect_ok(f, USERS, "users.tsv",
              "id\tgender\tage\tcountry\tsegment\tvip\nu1\tF\t34\tDE\tgold\tyes\nu2\t\t\t\t\t\n", NULL,
              &st);
    expect_ok(f, USERS, "users2.tsv", "u3\tM\t20\n", NULL, &st);
    expect_ok(f, USERS, "users.jsonl", "{\"user_id\":\"u2\",\"age\":51,\"location\":\"FR\"}\n", NULL,
              &st);
    d = one(f->s, "SELECT group_concat(id||':'||coalesce(gender,'-')||':'||coalesce(age,'-')||':'||"
                  "coalesce(country,'-')||':'||coalesce(segment,'-')||':'||coalesce(attrs,'-'), ';')"
                  " FROM users");
    assert_string_equal(d, "u1:F:34:DE:gold:{\"vip\":\"yes\"};u2:-:51:FR:-:-;u3:M:20:-:-:-");
    free(d);

    /* Readers. */
    rf_catalog *c;
    rf_err err;
    assert_int_equal(rf_store_load_catalog(f->s, &c, &err), 0);
    assert_int_equal(c->n, 4);
    assert_string_equal(c->items[0].id, "i1");
    assert_string_equal(c->items[0].brand, "Acme");
    assert_true(c->items[0].price == 17.0);
    assert_int_equal(c->items[0].stock, 0);
    assert_int_equal(c->items[0].created, 1704067200);
    assert_null(c->items[1].brand);
    assert_true(isnan(c->items[1].price));
    assert_int_equal(c->items[1].stock, -1);
    assert_int_equal(c->items[1].created, 0);
    assert_null(c->items[1].attrs);
    rf_catalog_free(c);
    rf_user_table *u;
    assert_int_equal(rf_store_load_users(f->s, &u, &err), 0);
    assert_int_equal(u->n, 3);
    assert_int_equal(u->users[0].age, 34);
    assert_string_equal(u->users[0].segment, "gold");
    assert_int_equal(u->users[2].age, 20);
    assert_null(u->users[2].country);
    rf_user_table_free(u);
}

/* ---- bad input: exact messages, store unchanged ------------------------------------- */

static void test_bad_interactions(void **state) {
    fx *f = *state;
    seed_store(f);
    rf_import_opts o;
    rf_import_opts_default(&o);
    const char *hdr = "user\titem\ttype\tvalue\ttimestamp\n";
    char buf[1024];
#define BAD(name, body, tail)                                \
    do {                                                     \
        snprintf(buf, sizeof buf, "%s%s", hdr, body);        \
        expect_bad(f, INTER, name, buf, &o, tail);           \
    } while (0)
    BAD("count.tsv", "u5\ti5\tview\t1\t10\nu6\ti6\tview\t1\n", "3: row: expected 5 fields, got 4");
    BAD("num.tsv", "u5\ti5\tview\t1\t10\nu6\ti6\tview\tabc\t10\n",
        "3: value: not a number: 'abc'");
    BAD("range.tsv", "u6\ti6\tview\t1e999\t10\n", "2: value: out of range: '1e999'");
    BAD("time.tsv", "u5\ti5\tview\t1\t10\nu6\ti6\tview\t1\tabc\n",
        "3: timestamp: not a time: 'abc'");
    BAD("date.tsv", "u6\ti6\tview\t1\t2024-02-30\n", "2: timestamp: not a time: '2024-02-30'");
    BAD("uid.tsv", "u5\ti5\tview\t1\t10\n\ti6\tview\t1\t10\n", "3: user: empty id");
    BAD("iid.tsv", "u5\t  \tview\t1\t10\n", "2: item: empty id");
    BAD("type.tsv", "u5\ti5\tteleport\t1\t10\n",
        "2: type: unknown event type: 'teleport' (expected view, click, cart, purchase, rating or "
        "custom)");
    BAD("empty.tsv", "u5\ti5\tview\t\t10\n", "2: value: empty");
    /* Positional: the first row fixes the count. */
    expect_bad(f, INTER, "pos.tsv", "u5\ti5\t1\t10\nu6\ti6\t1\n", &o,
               "2: row: expected 4 fields, got 3");
    expect_bad(f, INTER, "pos1.tsv", "u5\n", &o,
               "1: row: expected 2 to 5 fields (user, item[, type], value[, timestamp]), got 1");
    /* Header problems. */
    o.header = 1;
    expect_bad(f, INTER, "hdr.tsv", "user\tthing\tvalue\nu5\ti5\t1\n", &o,
               "1: header: no item column (expected one of "
               "item,item_id,itemid,product,product_id,productid,sku,movie,movie_id,movieid)");
    o.header = -1;
    /* CSV quoting. */
    expect_bad(f, INTER, "q1.csv", "user,item,value\nu5,i5,1\nu6,\"i6\"x,1\nu7,i7,1\n", &o,
               "3: row: bad CSV quoting: unexpected character after a closing quote");
    expect_bad(f, INTER, "q2.csv", "user,item,value\nu\"6,i6,1\n", &o,
               "2: row: bad CSV quoting: quote inside an unquoted field");
    expect_bad(f, INTER, "q3.csv", "user,item,value\nu5,i5,1\nu6,\"i6,1\nu7,i7,1\n", &o,
               "3: row: bad CSV quoting: unterminated quoted field");
    expect_bad(f, INTER, "q4.csv", "user,item,value\nu5,i5\n", &o, "2: row: expected 3 fields, got 2");
    /* JSONL. */
    const char *badjson = "{\"user\":\"u6\",";
    json_error_t je;
    json_t *j = json_loads(badjson, JSON_DECODE_ANY, &je);
    assert_null(j);
    char tail[512];
    snprintf(tail, sizeof tail, "2: row: invalid JSON: %s", je.text);
    snprintf(buf, sizeof buf, "{\"user\":\"u5\",\"item\":\"i5\"}\n%s\n", badjson);
    expect_bad(f, INTER, "bad.jsonl", buf, &o, tail);
    expect_bad(f, INTER, "arr.jsonl", "[1,2]\n", &o, "1: row: expected a JSON object");
    expect_bad(f, INTER, "nouser.jsonl", "{\"item\":\"i5\",\"value\":1}\n", &o, "1: user: missing");
    expect_bad(f, INTER, "objval.jsonl", "{\"user\":\"u5\",\"item\":\"i5\",\"value\":[1]}\n", &o,
               "1: value: expected a string or a number");
    expect_bad(f, INTER, "jtype.jsonl", "{\"user\":\"u5\",\"item\":\"i5\",\"type\":\"zap\"}\n", &o,
               "1: type: unknown event type: 'zap' (expected view, click, cart, purchase, rating "
               "or custom)");
    expect_bad(f, INTER, "jtime.jsonl", "{\"user\":\"u5\",\"item\":\"i5\",\"ts\":\"yesterday\"}\n",
               &o, "1: timestamp: not a time: 'yesterday'");
#undef BAD
    /* Missing file. */
    rf_err err;
    char *p = path_of(f, "nope.tsv");
    assert_int_equal(rf_import_interactions(f->s, p, NULL, NULL, &err), RF_ENOTFOUND);
    snprintf(buf, sizeof buf, "cannot open '%s': No such file or directory", p);
    assert_string_equal(err.msg, buf);
    free(p);
}

static void test_bad_items_users(void **state) {
    fx *f = *state;
    seed_store(f);
    rf_import_opts o;
    rf_import_opts_default(&o);
    expect_bad(f, ITEMS, "price.tsv", "id\ttitle\tprice\ni7\tA\t3\ni8\tB\tcheap\n", &o,
               "3: price: not a number: 'cheap'");
    expect_bad(f, ITEMS, "stock.tsv", "id\tstock\ni7\t1.5\n", &o, "2: stock: not an integer: '1.5'");
    expect_bad(f, ITEMS, "created.tsv", "id\tcreated\ni7\tsoon\n", &o,
               "2: created: not a time: 'soon'");
    expect_bad(f, ITEMS, "id.tsv", "id\ttitle\ni7\tA\n\tB\n", &o, "3: id: empty id");
    expect_bad(f, ITEMS, "count.tsv", "id\ttitle\ni7\tA\textra\n", &o,
               "2: row: expected 2 fields, got 3");
    expect_bad(f, ITEMS, "pos.tsv", "i7\t1\t2\t3\t4\t5\t6\t7\n", &o,
               "1: row: expected at most 7 fields (id, title, category, brand, price, stock, "
               "created) without a header, got 8");
    expect_bad(f, ITEMS, "attrs.tsv", "id\tattrs\ni7\t[1]\n", &o, "2: attrs: expected a JSON object");
    expect_bad(f, ITEMS, "q.csv", "id,title\ni7,\"A\n", &o,
               "2: row: bad CSV quoting: unterminated quoted field");
    expect_bad(f, ITEMS, "j.jsonl", "{\"id\":\"i7\"}\n{\"id\":\"i8\",\"price\":\"x\"}\n", &o,
               "2: price: not a number: 'x'");
    expect_bad(f, ITEMS, "j2.jsonl", "{\"title\":\"no id\"}\n", &o, "1: id: missing");
    o.header = 1;
    expect_bad(f, ITEMS, "hdr.tsv", "title\tprice\nA\t1\n", &o,
               "1: header: no id column (expected one of id,item,item_id,itemid,product_id,sku)");
    o.header = -1;
    expect_bad(f, USERS, "age.tsv", "id\tage\nu7\t30\nu8\told\n", &o, "3: age: not an integer: 'old'");
    expect_bad(f, USERS, "age2.tsv", "id\tage\nu7\t300\n", &o, "2: age: out of range: '300'");
    expect_bad(f, USERS, "uid.csv", "id,gender\n\"\",F\n", &o, "2: id: empty id");
}

/* Invalid JSON for users: the reason carries jansson's own message. */
static void test_bad_users_json(void **state) {
    fx *f = *state;
    seed_store(f);
    json_error_t je;
    assert_null(json_loads("{\"id\":\"u7\"", JSON_DECODE_ANY, &je));
    char tail[512];
    snprintf(tail, sizeof tail, "1: row: invalid JSON: %s", je.text);
    expect_bad(f, USERS, "u.jsonl", "{\"id\":\"u7\"\n", NULL, tail);
}

static void test_skip_bad(void **state) {
    fx *f = *state;
    seed_store(f);
    rf_import_opts o;
    rf_import_opts_default(&o);
    char *skip = path_of(f, "rejects.txt");
    o.skip_bad_path = skip;
    rf_import_stats st;
    expect_ok(f, INTER, "mixed.tsv",
              "user\titem\ttype\tvalue\ttimestamp\n"
              "u7\ti7\tview\t1\t10\n"
              "u8\ti8\tview\tx\t10\n"
              "u9\ti9\tbogus\t1\t10\n"
              "u7\ti8\tclick\t1\t11\n"
              "u9\ti9\tview\t1\n",
              &o, &st);
    assert_int_equal(st.rows, 5);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.rejected, 3);
    char *ev = one(f->s, "SELECT group_concat(u.id||'/'||i.id, ' ') FROM events e JOIN users u ON"
                         " u.rid = e.user JOIN items i ON i.rid = e.item WHERE u.id > 'u6'");
    assert_string_equal(ev, "u7/i7 u7/i8");
    free(ev);
    /* Rejected rows never create users or items. */
    char *n = one(f->s, "SELECT count(*) FROM users WHERE id IN ('u8','u9')");
    assert_string_equal(n, "0");
    free(n);
    char *txt = rf_test_read_file(skip);
    char want[2048];
    snprintf(want, sizeof want,
             "%s/mixed.tsv:3\tvalue: not a number: 'x'\tu8\ti8\tview\tx\t10\n"
             "%s/mixed.tsv:4\ttype: unknown event type: 'bogus' (expected view, click, cart, "
             "purchase, rating or custom)\tu9\ti9\tbogus\t1\t10\n"
             "%s/mixed.tsv:6\trow: expected 5 fields, got 4\tu9\ti9\tview\t1\n",
             f->dir, f->dir, f->dir);
    assert_string_equal(txt, want);
    free(txt);
    /* CSV record errors and item rows go to the same file (appended). */
    expect_ok(f, ITEMS, "it.csv", "id,price\ni20,1\ni21,\"x\"y\ni22,2\n", &o, &st);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.rejected, 1);
    txt = rf_test_read_file(skip);
    assert_non_null(strstr(txt, "/it.csv:3\trow: bad CSV quoting: unexpected character after a "
                                "closing quote\ti21,\"x\"y\n"));
    free(txt);
    free(skip);
}

/* ---- rf_read_interactions ------------------------------------------------------------ */

static void test_read_interactions(void **state) {
    fx *f = *state;
    free(rf_test_write_file(f->dir, "test.tsv", "u2\ti1\t5\t100\nu1\ti3\t4\t50\nu2\ti3\t1\t20\n"));
    char *p = path_of(f, "test.tsv");
    rf_events *e;
    assert_int_equal(rf_events_new(NULL, NULL, &e), 0);
    int32_t id;
    rf_idmap_put(e->items, "i3", 2, &id, NULL); /* pre-existing map entries are kept */
    rf_err err;
    rf_import_stats st;
    assert_int_equal(rf_read_interactions(p, NULL, e, &st, &err), 0);
    assert_int_equal(e->n, 3);
    assert_int_equal(st.rows, 3);
    assert_string_equal(rf_idmap_str(e->users, e->user[0]), "u2");
    assert_string_equal(rf_idmap_str(e->items, e->item[0]), "i1");
    assert_int_equal(e->item[1], 0);
    assert_int_equal(e->ts[2], 20);
    assert_true(e->value[0] == 5.0f);
    assert_int_equal(e->type[0], RF_EV_RATING);
    free(p);
    /* Bad row. */
    free(rf_test_write_file(f->dir, "bad.tsv", "u1\ti1\t1\t1\nu1\ti1\t1\tnever\n"));
    p = path_of(f, "bad.tsv");
    assert_int_equal(rf_read_interactions(p, NULL, e, &st, &err), RF_EPARSE);
    char want[1024];
    snprintf(want, sizeof want, "%s:2: timestamp: not a time: 'never'", p);
    assert_string_equal(err.msg, want);
    free(p);
    rf_events_free(e);
}

/* ---- MovieLens --------------------------------------------------------------------- */

static void write_ml(fx *f, const char *sub, const char *data) {
    char d[4096];
    snprintf(d, sizeof d, "%s/%s", f->dir, sub);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", d);
    assert_int_equal(system(cmd), 0);
    /* Latin-1 title: "Misérables" with 0xE9. */
    free(rf_test_write_file(d, "u.item",
                            "1|Toy Story (1995)|01-Jan-1995||http://x/1|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                            "2|Mis\xE9rables (1995)|5-Mar-1996||http://x/2|0|0|0|0|0|0|0|0|1|0|0|0|0|0|1|0|0|0|0\n"
                            "3|unknown|||http://x/3|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"));
    free(rf_test_write_file(d, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n"));
    free(rf_test_write_file(d, "u.data", data));
}

static void test_movielens(void **state) {
    fx *f = *state;
    write_ml(f, "ml", "1\t2\t5\t881250949\n2\t1\t3\t891717742\n1\t1\t4\t878887116\n");
    char d[4096];
    snprintf(d, sizeof d, "%s/ml", f->dir);
    rf_err err;
    rf_import_stats st;
    assert_int_equal(rf_import_movielens(f->s, d, &st, &err), 0);
    assert_int_equal(st.added, 3 + 2 + 3);
    char *x = dump(f->s);
    assert_string_equal(
        x, "U 1 1 M 24 NULL technician {\"zip\":\"85711\"}\n"
           "U 2 2 F 53 NULL other {\"zip\":\"94043\"}\n"
           "I 1 1 Toy Story (1995) Animation NULL NULL NULL 788918400 "
           "{\"genres\":[\"Animation\",\"Children's\",\"Comedy\"],\"url\":\"http://x/1\"}\n"
           "I 2 2 Mis\xC3\xA9rables (1995) Drama NULL NULL NULL 825984000 "
           "{\"genres\":[\"Drama\",\"Romance\"],\"url\":\"http://x/2\"}\n"
           "I 3 3 unknown Unknown NULL NULL NULL NULL {\"genres\":[],\"url\":\"http://x/3\"}\n"
           "1 1 rating 4.0 878887116\n"
           "1 2 rating 5.0 881250949\n"
           "2 1 rating 3.0 891717742\n");
    free(x);
    /* Again: idempotent. */
    assert_int_equal(rf_import_movielens(f->s, d, &st, &err), 0);
    assert_int_equal(st.added, 0);
    assert_int_equal(st.duplicates, 3);

    /* A bad rating rolls back the whole data set (a fresh store stays empty). */
    rf_store *s2;
    char d2[4096];
    snprintf(d2, sizeof d2, "%s/data2", f->dir);
    assert_int_equal(rf_store_open(d2, 1, &s2, &err), 0);
    write_ml(f, "mlbad", "1\t2\t5\t881250949\n2\t1\t3\tlater\n");
    snprintf(d, sizeof d, "%s/mlbad", f->dir);
    assert_int_equal(rf_import_movielens(s2, d, &st, &err), RF_EPARSE);
    char want[8400];
    snprintf(want, sizeof want, "%s/u.data:2: timestamp: not a time: 'later'", d);
    assert_string_equal(err.msg, want);
    rf_store_counts c;
    assert_int_equal(rf_store_count(s2, &c, &err), 0);
    assert_int_equal(c.users + c.items + c.events, 0);
    /* Missing file named. */
    snprintf(d, sizeof d, "%s/nowhere", f->dir);
    assert_int_equal(rf_import_movielens(s2, d, &st, &err), RF_ENOTFOUND);
    snprintf(want, sizeof want, "MovieLens directory '%s': cannot read '%s/u.item'", d, d);
    assert_string_equal(err.msg, want);
    rf_store_close(s2);
}

/* ---- allocation failures ----------------------------------------------------------- */

static void test_oom(void **state) {
    fx *f = *state;
    seed_store(f);
    char *before = dump(f->s);
    free(rf_test_write_file(f->dir, "oom.csv",
                            "user,item,type,value,timestamp\nu7,i7,view,1,10\n\"u8\",i8,click,2,11\n"));
    char *p = path_of(f, "oom.csv");
    int ok = 0;
    for (long n = 0; n < 400 && !ok; n++) {
        rf_err err;
        rf_err_clear(&err);
        rf_mem_fail_after(n);
        int rc = rf_import_interactions(f->s, p, NULL, NULL, &err);
        rf_mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
        } else {
            assert_int_equal(rc, RF_ENOMEM);
            char *now = dump(f->s);
            assert_string_equal(now, before);
            free(now);
        }
    }
    assert_true(ok);
    free(p);
    free(before);
    /* Loading under failures: never crashes, fails cleanly or succeeds. */
    ok = 0;
    for (long n = 0; n < 400 && !ok; n++) {
        rf_err err;
        rf_events *e = NULL;
        rf_mem_fail_after(n);
        int rc = rf_store_load_events(f->s, &e, &err);
        rf_mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            assert_int_equal(e->n, 5);
            rf_events_free(e);
        } else {
            assert_int_equal(rc, RF_ENOMEM);
            assert_null(e);
        }
    }
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tsv_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_quotes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bom_crlf_gz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_interactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_items_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_users_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_interactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_movielens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
