/* movielens.c - MovieLens 100K converter: u.item, u.user, u.data into the store.
 *
 * u.item: id|title|release date|video release date|IMDb URL|19 genre flags
 * (Latin-1). u.user: id|age|gender|occupation|zip. u.data: user<TAB>item
 * <TAB>rating<TAB>unix time. Items and users are inserted in file order,
 * so in a fresh store their row ids equal the MovieLens ids; ratings go
 * through the regular interactions importer (positional 4-field TSV, type
 * rating). The three files are one transaction: either the whole data
 * set is stored or nothing is. */
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/util.h"
#include "store/rows.h"
#include "store/store_int.h"

/* u.genre order. */
static const char *const genres[19] = {
    "Unknown", "Action",   "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance", "Sci-Fi",   "Thriller",  "War",       "Western"};

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        if (c < 0x80)
            k = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            k = 1;
        else if ((c & 0xF0) == 0xE0)
            k = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3;
        else
            return 0;
        if (k > n - i - 1) return 0;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

/* Field as UTF-8: kept when it already is, else read as Latin-1. */
static char *to_utf8(rf_field f) {
    if (valid_utf8((const unsigned char *)f.s, f.len)) return rf_strndup(f.s, f.len);
    char *o = rf_malloc(f.len * 2 + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < f.len; i++) {
        unsigned char c = (unsigned char)f.s[i];
        if (c < 0x80) {
            *p++ = (char)c;
        } else {
            *p++ = (char)(0xC0 | (c >> 6));
            *p++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *p = 0;
    return o;
}

/* "01-Jan-1995" (or "4-Feb-1971") -> Unix seconds (midnight UTC). */
static int parse_ml_date(rf_field f, int64_t *out) {
    static const char *const mon[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};
    size_t dl = f.len == 11 ? 2 : f.len == 10 ? 1 : 0;
    if (dl == 0 || f.s[dl] != '-' || f.s[dl + 4] != '-') return -1;
    int m = -1;
    for (int i = 0; i < 12; i++)
        if (strncasecmp(f.s + dl + 1, mon[i], 3) == 0) m = i;
    if (m < 0) return -1;
    char iso[24];
    snprintf(iso, sizeof iso, "%.4s-%02d-%s%.*s", f.s + dl + 5, (m + 1) % 100, dl == 1 ? "0" : "",
             (int)dl, f.s);
    return rf_parse_time(iso, strlen(iso), out) == 0 && strlen(iso) == 10 ? 0 : -1;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = rf_malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, n > 2 && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

static void bind_field(sqlite3_stmt *st, int i, rf_field f) {
    if (f.len > 0)
        sqlite3_bind_text(st, i, f.s, (int)f.len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int step_upsert(rf_store *s, sqlite3_stmt *st, const char *what, rf_err *err) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return rf_store_sqlfail_(s, rc, what, err);
    return 0;
}

static int ml_items(rf_store *s, const char *path, rf_import_stats *st, rf_err *err) {
    rf_rows *r;
    int rc = rf_rows_open(path, RF_FMT_TSV, '|', &r, err);
    if (rc) return rc;
    sqlite3_stmt *up = NULL;
    int64_t before, after;
    if ((rc = rf_store_count_table_(s, "items", &before, err)) ||
        (rc = rf_store_prepare_(s, RF_STORE_ITEM_UPSERT, &up, err)))
        goto out;
    rf_record rec;
    rf_rowerr re;
    char reason[256];
    while ((rc = rf_rows_next(r, &rec, reason, sizeof reason, err)) == 1) {
        st->rows++;
        if (rec.n != 24) {
            rf_rowerr_set(&re, rec.line, "row", "expected 24 fields, got %d", rec.n);
            rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
            goto out;
        }
        rf_field id = rf_field_trim(rec.f[0]);
        if (id.len == 0) {
            rf_rowerr_set(&re, rec.line, "id", "empty id");
            rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
            goto out;
        }
        const char *category = NULL;
        json_t *attrs = json_object(), *gl = json_array();
        for (int g = 0; g < 19; g++) {
            rf_field fl = rf_field_trim(rec.f[5 + g]);
            if (fl.len != 1 || (fl.s[0] != '0' && fl.s[0] != '1')) {
                json_decref(attrs);
                json_decref(gl);
                rf_rowerr_set(&re, rec.line, genres[g], "expected a 0/1 genre flag, got '%.*s'",
                              (int)(fl.len > 20 ? 20 : fl.len), fl.s);
                rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
                goto out;
            }
            if (fl.s[0] == '1') {
                if (!category) category = genres[g];
                json_array_append_new(gl, json_string(genres[g]));
            }
        }
        json_object_set_new(attrs, "genres", gl);
        rf_field url = rf_field_trim(rec.f[4]);
        if (url.len > 0) json_object_set_new(attrs, "url", json_stringn(url.s, url.len));
        char *title = to_utf8(rf_field_trim(rec.f[1]));
        char *js = json_dumps(attrs, JSON_COMPACT);
        json_decref(attrs);
        if (!title || !js) {
            rf_free(title);
            free(js);
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto out;
        }
        bind_field(up, 1, id);
        sqlite3_bind_text(up, 2, title, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(up, 3, category ? category : "Unknown", -1, SQLITE_STATIC);
        rf_field date = rf_field_trim(rec.f[2]);
        int64_t created;
        if (date.len > 0) {
            if (parse_ml_date(date, &created) != 0) {
                rf_free(title);
                free(js);
                rf_rowerr_set(&re, rec.line, "release date", "not a date: '%.*s'",
                              (int)(date.len > 40 ? 40 : date.len), date.s);
                rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
                goto out;
            }
            sqlite3_bind_int64(up, 7, created);
        }
        sqlite3_bind_text(up, 8, js, -1, free);
        rc = step_upsert(s, up, "storing an item", err);
        rf_free(title);
        if (rc) goto out;
    }
    if (rc == RF_EPARSE) {
        rf_rowerr_set(&re, rec.line, "row", "%s", reason);
        rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
    }
    if (rc < 0) goto out;
    rc = rf_store_count_table_(s, "items", &after, err);
    st->added += after - before;
out:
    sqlite3_finalize(up);
    rf_rows_close(r);
    return rc;
}

static int ml_users(rf_store *s, const char *path, rf_import_stats *st, rf_err *err) {
    rf_rows *r;
    int rc = rf_rows_open(path, RF_FMT_TSV, '|', &r, err);
    if (rc) return rc;
    sqlite3_stmt *up = NULL;
    int64_t before, after;
    if ((rc = rf_store_count_table_(s, "users", &before, err)) ||
        (rc = rf_store_prepare_(s, RF_STORE_USER_UPSERT, &up, err)))
        goto out;
    rf_record rec;
    rf_rowerr re;
    char reason[256];
    while ((rc = rf_rows_next(r, &rec, reason, sizeof reason, err)) == 1) {
        st->rows++;
        if (rec.n != 5) {
            rf_rowerr_set(&re, rec.line, "row", "expected 5 fields, got %d", rec.n);
            rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
            goto out;
        }
        rf_field id = rf_field_trim(rec.f[0]);
        int64_t age;
        if (id.len == 0) {
            rf_rowerr_set(&re, rec.line, "id", "empty id");
            rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
            goto out;
        }
        if (rf_imp_int_(rf_field_trim(rec.f[1]), "age", rec.line, &age, &re) != 0) {
            rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
            goto out;
        }
        bind_field(up, 1, id);
        bind_field(up, 2, rf_field_trim(rec.f[2]));
        sqlite3_bind_int64(up, 3, age);
        bind_field(up, 5, rf_field_trim(rec.f[3]));
        rf_field zip = rf_field_trim(rec.f[4]);
        if (zip.len > 0) {
            json_t *a = json_object();
            json_object_set_new(a, "zip", json_stringn(zip.s, zip.len));
            char *js = json_dumps(a, JSON_COMPACT);
            json_decref(a);
            if (!js) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory");
                goto out;
            }
            sqlite3_bind_text(up, 6, js, -1, free);
        }
        if ((rc = step_upsert(s, up, "storing a user", err))) goto out;
    }
    if (rc == RF_EPARSE) {
        rf_rowerr_set(&re, rec.line, "row", "%s", reason);
        rc = rf_rowerr_raise(&re, path, RF_EPARSE, err);
    }
    if (rc < 0) goto out;
    rc = rf_store_count_table_(s, "users", &after, err);
    st->added += after - before;
out:
    sqlite3_finalize(up);
    rf_rows_close(r);
    return rc;
}

int rf_import_movielens(rf_store *s, const char *ml_dir, rf_import_stats *st_out, rf_err *err) {
    rf_import_stats st = {0}, ev = {0};
    double t0 = rf_mono();
    char *item_p = join(ml_dir, "u.item"), *user_p = join(ml_dir, "u.user"),
         *data_p = join(ml_dir, "u.data");
    int rc = 0;
    if (!item_p || !user_p || !data_p) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    const char *need[3] = {item_p, user_p, data_p};
    for (int i = 0; i < 3; i++)
        if (access(need[i], R_OK) != 0) {
            rc = rf_err_set(err, RF_ENOTFOUND, "MovieLens directory '%s': cannot read '%s'", ml_dir,
                            need[i]);
            goto out;
        }
    if ((rc = rf_store_begin_write_(s, "importing MovieLens", err))) goto out;
    rf_import_opts o;
    rf_import_opts_default(&o);
    o.format = RF_FMT_TSV;
    o.header = 0;
    o.default_type = RF_EV_RATING;
    if ((rc = ml_items(s, item_p, &st, err)) || (rc = ml_users(s, user_p, &st, err)) ||
        (rc = rf_import_file_txn_(s, 0, data_p, &o, &ev, err))) {
        rf_store_rollback_(s);
        goto out;
    }
    if ((rc = rf_store_commit_(s, "importing MovieLens", err))) goto out;
    st.rows += ev.rows;
    st.added += ev.added;
    st.duplicates += ev.duplicates;
    st.seconds = rf_mono() - t0;
    rf_log(RF_LOG_INFO, "import.done",
           "kind=movielens dir=%s rows=%lld added=%lld duplicates=%lld ratings=%lld seconds=%.2f",
           ml_dir, (long long)st.rows, (long long)st.added, (long long)st.duplicates,
           (long long)ev.rows, st.seconds);
out:
    rf_free(item_p);
    rf_free(user_p);
    rf_free(data_p);
    if (rc) st = (rf_import_stats){0};
    st.seconds = rf_mono() - t0;
    if (st_out) *st_out = st;
    return rc;
}
