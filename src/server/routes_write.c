/* routes_write.c - the write routes: POST /v1/events (through the
 * group-commit writer), PUT/PATCH /v1/items/{id}, PUT/DELETE
 * /v1/users/{id} and POST /v1/admin/reload.
 *
 * Bodies are validated completely before anything is written; an error
 * names the field ("events[3].ts: ...") and nothing of the request is
 * stored. Catalog and user writes go to the store first and then to the
 * live state, so a reply of 2xx means stored and already in effect. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "recfuse/mem.h"
#include "recfuse/util.h"
#include "server/srv_int.h"

#define MAX_EVENTS_PER_POST 100000
#define MAX_ID 512

/* ---- field readers: 0 ok, else *why set ---------------------------------- */

/* A string id (or an integer, written in decimal) into buf. */
static int get_id(json_t *v, char *buf, size_t size, const char **why) {
    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
        return 0;
    }
    if (!json_is_string(v)) {
        *why = "expected a string id";
        return 1;
    }
    size_t n = json_string_length(v);
    if (n == 0) {
        *why = "empty id";
        return 1;
    }
    if (n > MAX_ID) {
        *why = "id longer than 512 bytes";
        return 1;
    }
    if (strlen(json_string_value(v)) != n) {
        *why = "id contains a NUL character";
        return 1;
    }
    memcpy(buf, json_string_value(v), n + 1);
    return 0;
}

/* A time: Unix seconds (integer or number) or an ISO 8601 string. */
static int get_time(json_t *v, int64_t *out, const char **why) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
    } else if (json_is_string(v)) {
        if (rf_parse_time(json_string_value(v), json_string_length(v), out) != 0) {
            *why = "not a time (Unix seconds or ISO 8601)";
            return 1;
        }
    } else {
        *why = "expected Unix seconds or an ISO 8601 string";
        return 1;
    }
    if (*out < 0 || *out > ((int64_t)1 << 40)) {
        *why = "time out of range";
        return 1;
    }
    return 0;
}

static int get_number(json_t *v, double min, double max, double *out, const char **why) {
    if (!json_is_number(v)) {
        *why = "expected a number";
        return 1;
    }
    *out = json_number_value(v);
    if (!isfinite(*out) || *out < min || *out > max) {
        *why = "number out of range";
        return 1;
    }
    return 0;
}

static int get_int(json_t *v, int64_t min, int64_t max, int64_t *out, const char **why) {
    if (!json_is_integer(v)) {
        *why = "expected an integer";
        return 1;
    }
    *out = json_integer_value(v);
    if (*out < min || *out > max) {
        *why = "integer out of range";
        return 1;
    }
    return 0;
}

/* ---- POST /v1/events --------------------------------------------------- */

/* One event object into e (ids into the caller's buffers). */
static int parse_event(json_t *o, char *user, char *item, rf_event_in *e, char *field,
                       size_t fsize, const char **why) {
    if (!json_is_object(o)) {
        *why = "expected an event object";
        field[0] = 0;
        return 1;
    }
    json_t *u = NULL, *it = NULL, *ty = NULL, *va = NULL, *ts = NULL, *v;
    const char *key;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "user") == 0)
            u = v;
        else if (strcmp(key, "item") == 0)
            it = v;
        else if (strcmp(key, "type") == 0)
            ty = v;
        else if (strcmp(key, "value") == 0)
            va = v;
        else if (strcmp(key, "ts") == 0 || strcmp(key, "timestamp") == 0)
            ts = v;
        else {
            snprintf(field, fsize, "%s", key);
            *why = "unknown field (fields: user, item, type, value, ts)";
            return 1;
        }
    }
    snprintf(field, fsize, "user");
    if (!u) {
        *why = "missing";
        return 1;
    }
    if (get_id(u, user, MAX_ID + 1, why)) return 1;
    snprintf(field, fsize, "item");
    if (!it) {
        *why = "missing";
        return 1;
    }
    if (get_id(it, item, MAX_ID + 1, why)) return 1;
    snprintf(field, fsize, "type");
    e->type = RF_EV_VIEW;
    if (ty) {
        if (json_is_string(ty))
            e->type = rf_event_type_parse(json_string_value(ty), json_string_length(ty));
        else if (json_is_integer(ty) && json_integer_value(ty) >= 0 && json_integer_value(ty) < RF_EV_NTYPES)
            e->type = (int)json_integer_value(ty);
        else
            e->type = -1;
        if (e->type < 0) {
            *why = "unknown event type (view, click, cart, purchase, rating, custom)";
            return 1;
        }
    }
    snprintf(field, fsize, "value");
    e->value = 1;
    if (va && get_number(va, -1e9, 1e9, &e->value, why)) return 1;
    snprintf(field, fsize, "ts");
    e->ts = rf_now();
    if (ts && get_time(ts, &e->ts, why)) return 1;
    return 0;
}

int srv_post_events(rf_server *s, struct MHD_Connection *c, srv_req *r) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    json_t *j = srv_body_json(c, r);
    if (!j) return MHD_YES;
    json_t *list = j;
    int single = 0;
    const char *prefix = "events";
    if (json_is_object(j)) {
        json_t *ev = json_object_get(j, "events");
        if (ev) {
            if (json_object_size(j) != 1 || !json_is_array(ev)) {
                json_decref(j);
                return srv_reply_error(c, r, 400, "bad_field",
                                       "events: expected {\"events\": [ ... ]} with an array and "
                                       "no other key");
            }
            list = ev;
        } else {
            single = 1;
            prefix = "event";
        }
    } else if (!json_is_array(j)) {
        json_decref(j);
        return srv_reply_error(c, r, 400, "bad_field",
                               "body: expected an event object, an array of events or "
                               "{\"events\": [...]}");
    }
    size_t n = single ? 1 : json_array_size(list);
    if (n == 0) {
        json_decref(j);
        return srv_reply_error(c, r, 400, "bad_field", "events: the list is empty");
    }
    if (n > MAX_EVENTS_PER_POST) {
        json_decref(j);
        return srv_reply_error(c, r, 413, "too_many_events", "events: %zu events in one post (at most %d)",
                               n, MAX_EVENTS_PER_POST);
    }
    srv_batch *b = rf_calloc(1, sizeof *b);
    size_t cap = 4096, used = 0;
    if (b) {
        b->ev = rf_malloc_array(n, sizeof *b->ev);
        b->strings = rf_malloc(cap);
    }
    if (!b || !b->ev || !b->strings) {
        srv_batch_free(b);
        json_decref(j);
        return srv_reply_error(c, r, 500, "internal", "out of memory");
    }
    char user[MAX_ID + 1], item[MAX_ID + 1], field[64];
    size_t *offs = rf_malloc_array(2 * n, sizeof *offs);
    int ok = offs != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *o = single ? j : json_array_get(list, i);
        const char *why = NULL;
        if (parse_event(o, user, item, &b->ev[i], field, sizeof field, &why)) {
            char where[96];
            if (single)
                snprintf(where, sizeof where, "%s%s%s", prefix, field[0] ? "." : "", field);
            else
                snprintf(where, sizeof where, "%s[%zu]%s%s", prefix, i, field[0] ? "." : "", field);
            srv_batch_free(b);
            rf_free(offs);
            json_decref(j);
            return srv_reply_error(c, r, 400, "bad_field", "%s: %s", where, why);
        }
        size_t lu = strlen(user) + 1, li = strlen(item) + 1;
        if (used + lu + li > cap) {
            while (used + lu + li > cap) cap *= 2;
            char *p = rf_realloc(b->strings, cap);
            if (!p) {
                ok = 0;
                break;
            }
            b->strings = p;
        }
        offs[2 * i] = used;
        memcpy(b->strings + used, user, lu);
        used += lu;
        offs[2 * i + 1] = used;
        memcpy(b->strings + used, item, li);
        used += li;
    }
    json_decref(j);
    if (!ok) {
        rf_free(offs);
        srv_batch_free(b);
        return srv_reply_error(c, r, 500, "internal", "out of memory");
    }
    for (size_t i = 0; i < n; i++) { /* the string buffer no longer moves */
        b->ev[i].user = b->strings + offs[2 * i];
        b->ev[i].item = b->strings + offs[2 * i + 1];
    }
    rf_free(offs);
    b->n = (int64_t)n;
    b->conn = c;
    r->batch = b;
    /* Suspend before queueing: the writer resumes the connection when the
     * batch is committed, and resuming must follow the suspend. */
    MHD_suspend_connection(c);
    if (!s->writer || srv_writer_submit(s->writer, b) != 0) {
        b->rc = RF_ESTATE;
        snprintf(b->msg, sizeof b->msg, "the server is shutting down; events not stored");
        atomic_store(&b->done, 1);
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

int srv_events_done(rf_server *s, struct MHD_Connection *c, srv_req *r) {
    srv_batch *b = r->batch;
    if (b->rc == RF_ESTATE)
        return srv_reply_error(c, r, 503, "shutting_down", "%s", b->msg);
    if (b->rc)
        return srv_reply_error(c, r, 503, "store_error", "events not stored: %s", b->msg);
    return srv_reply_json(c, r, 200,
                          json_pack("{s:I,s:I,s:I}", "accepted", (json_int_t)b->n, "stored",
                                    (json_int_t)b->added, "duplicates", (json_int_t)b->dups));
}

/* ---- items and users --------------------------------------------------- */

/* Optional string field: NULL when absent or null; 1 (with why) if not a string. */
static int opt_str(json_t *v, const char **out, const char **why) {
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        *why = "expected a string (or null)";
        return 1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Optional "attrs" object: absent or null -> *out NULL; an object -> its
 * compact JSON text (json_dumps, caller frees); else 1 with *why. */
static int opt_attrs(json_t *v, char **out, const char **why) {
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) {
        *why = "expected a JSON object";
        return 1;
    }
    *out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    return 0;
}

/* Check every key of o is in `known` ("a,b,c"); the first bad one into *bad. */
static int only_keys(json_t *o, const char *known, const char **bad) {
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t n = strlen(key);
        int found = 0;
        for (const char *p = known; *p && !found;) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            found = l == n && strncmp(p, key, n) == 0;
            p = e ? e + 1 : p + l;
        }
        if (!found) {
            *bad = key;
            return 1;
        }
    }
    return 0;
}

static int bad_field(struct MHD_Connection *c, srv_req *r, const char *field, const char *why) {
    return srv_reply_error(c, r, 400, "bad_field", "%s: %s", field, why);
}

/* Update the live catalog row of item `id`. */
static int live_item_update(rf_server *s, const char *id, int set_cat, const char *category,
                            double price, int64_t stock, int keep) {
    srv_live *L = &s->live;
    pthread_rwlock_wrlock(&L->lock);
    int32_t cid;
    int rc = srv_live_item(L, id, strlen(id), &cid);
    if (rc == 0) {
        const char *cat = set_cat ? category : (L->cat[cid] >= 0 ? rf_idmap_str(L->cats, L->cat[cid]) : NULL);
        if (keep) { /* PATCH: absent fields keep their value */
            if (isnan(price)) price = L->price[cid];
            if (stock < 0) stock = L->stock[cid];
        }
        rc = srv_live_set_item(L, cid, cat, price, stock);
    }
    pthread_rwlock_unlock(&L->lock);
    return rc;
}

int srv_put_item(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id, int patch) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    json_t *j = srv_body_json(c, r);
    if (!j) return MHD_YES;
    int ret;
    const char *bad = NULL, *why = NULL;
    if (!json_is_object(j)) {
        ret = bad_field(c, r, "body", "expected a JSON object");
        goto out;
    }
    const char *known = patch ? "price,stock" : "title,category,brand,price,stock,created,attrs";
    if (only_keys(j, known, &bad)) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown field (%s takes: %s)", patch ? "PATCH" : "PUT", known);
        ret = bad_field(c, r, bad, msg);
        goto out;
    }
    rf_item_info it = {0};
    it.id = (char *)id;
    it.price = NAN;
    it.stock = -1;
    json_t *v;
    if ((v = json_object_get(j, "price")) && !json_is_null(v) &&
        get_number(v, 0, 1e15, &it.price, &why)) {
        ret = bad_field(c, r, "price", why);
        goto out;
    }
    if ((v = json_object_get(j, "stock")) && !json_is_null(v) &&
        get_int(v, 0, INT64_MAX / 2, &it.stock, &why)) {
        ret = bad_field(c, r, "stock", why);
        goto out;
    }
    rf_err err;
    rf_err_clear(&err);
    if (patch) {
        if (isnan(it.price) && it.stock < 0) {
            ret = bad_field(c, r, "body", "give price and/or stock");
            goto out;
        }
        pthread_mutex_lock(&s->wlock);
        int rc = rf_store_patch_item(s->st, id, it.price, it.stock, &err);
        pthread_mutex_unlock(&s->wlock);
        if (rc) {
            ret = srv_reply_rferr(c, r, &err);
            goto out;
        }
        if (live_item_update(s, id, 0, NULL, it.price, it.stock, 1)) {
            ret = srv_reply_error(c, r, 500, "internal", "out of memory");
            goto out;
        }
        ret = srv_reply_json(c, r, 200, json_pack("{s:s,s:b}", "item", id, "updated", 1));
        goto out;
    }
    const char *title, *category, *brand;
    if (opt_str(json_object_get(j, "title"), &title, &why)) {
        ret = bad_field(c, r, "title", why);
        goto out;
    }
    if (opt_str(json_object_get(j, "category"), &category, &why)) {
        ret = bad_field(c, r, "category", why);
        goto out;
    }
    if (opt_str(json_object_get(j, "brand"), &brand, &why)) {
        ret = bad_field(c, r, "brand", why);
        goto out;
    }
    if ((v = json_object_get(j, "created")) && !json_is_null(v) && get_time(v, &it.created, &why)) {
        ret = bad_field(c, r, "created", why);
        goto out;
    }
    char *attrs = NULL;
    if (opt_attrs(json_object_get(j, "attrs"), &attrs, &why)) {
        ret = bad_field(c, r, "attrs", why);
        goto out;
    }
    it.title = (char *)title;
    it.category = (char *)category;
    it.brand = (char *)brand;
    it.attrs = attrs;
    int created = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = rf_store_put_item(s->st, &it, &created, &err);
    pthread_mutex_unlock(&s->wlock);
    free(attrs);
    if (rc) {
        ret = srv_reply_rferr(c, r, &err);
        goto out;
    }
    if (live_item_update(s, id, 1, category, it.price, it.stock, 0)) {
        ret = srv_reply_error(c, r, 500, "internal", "out of memory");
        goto out;
    }
    ret = srv_reply_json(c, r, created ? 201 : 200,
                         json_pack("{s:s,s:b}", "item", id, "created", created));
out:
    json_decref(j);
    return ret;
}

int srv_put_user(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    json_t *j = srv_body_json(c, r);
    if (!j) return MHD_YES;
    int ret;
    const char *bad = NULL, *why = NULL;
    rf_user_info u = {0};
    u.id = (char *)id;
    u.age = -1;
    json_t *v;
    const char *gender, *country, *segment;
    if (!json_is_object(j)) {
        ret = bad_field(c, r, "body", "expected a JSON object");
        goto out;
    }
    if (only_keys(j, "gender,age,country,segment,attrs", &bad)) {
        ret = bad_field(c, r, bad, "unknown field (PUT takes: gender, age, country, segment, attrs)");
        goto out;
    }
    int64_t age = -1;
    if ((v = json_object_get(j, "age")) && !json_is_null(v) && get_int(v, 0, 200, &age, &why)) {
        ret = bad_field(c, r, "age", why);
        goto out;
    }
    u.age = (int)age;
    if (opt_str(json_object_get(j, "gender"), &gender, &why)) {
        ret = bad_field(c, r, "gender", why);
        goto out;
    }
    if (opt_str(json_object_get(j, "country"), &country, &why)) {
        ret = bad_field(c, r, "country", why);
        goto out;
    }
    if (opt_str(json_object_get(j, "segment"), &segment, &why)) {
        ret = bad_field(c, r, "segment", why);
        goto out;
    }
    char *attrs = NULL;
    if (opt_attrs(json_object_get(j, "attrs"), &attrs, &why)) {
        ret = bad_field(c, r, "attrs", why);
        goto out;
    }
    u.gender = (char *)gender;
    u.country = (char *)country;
    u.segment = (char *)segment;
    u.attrs = attrs;
    rf_err err;
    rf_err_clear(&err);
    int created = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = rf_store_put_user(s->st, &u, &created, &err);
    pthread_mutex_unlock(&s->wlock);
    free(attrs);
    if (rc) {
        ret = srv_reply_rferr(c, r, &err);
        goto out;
    }
    ret = srv_reply_json(c, r, created ? 201 : 200,
                         json_pack("{s:s,s:b}", "user", id, "created", created));
out:
    json_decref(j);
    return ret;
}

int srv_delete_user(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    rf_err err;
    rf_err_clear(&err);
    int64_t nev = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = rf_store_forget_user(s->st, id, &nev, &err);
    pthread_mutex_unlock(&s->wlock);
    if (rc) return srv_reply_rferr(c, r, &err);
    /* The trained vector stays in the model file until the next retrain;
     * from now on the user is scored from the (now empty) history only. */
    srv_live *L = &s->live;
    pthread_rwlock_wrlock(&L->lock);
    int32_t uid;
    rc = srv_live_user(L, id, strlen(id), &uid);
    if (rc == 0) {
        L->ufold[uid] = 1;
        L->sess[uid].n = 0;
    }
    pthread_rwlock_unlock(&L->lock);
    if (rc) return srv_reply_error(c, r, 500, "internal", "out of memory");
    return srv_reply_json(c, r, 200,
                          json_pack("{s:s,s:b,s:I}", "user", id, "deleted", 1, "events_deleted",
                                    (json_int_t)nev));
}

/* ---- POST /v1/admin/reload ---------------------------------------------- */

int srv_post_reload(rf_server *s, struct MHD_Connection *c, srv_req *r) {
    if (srv_check_params(c, r, "")) return MHD_YES;
    rf_err err;
    rf_err_clear(&err);
    int changed = 0;
    if (srv_reload(s, 0, &changed, &err) != 0) {
        srv_snap *sn = srv_snap_acquire(s);
        uint64_t v = sn->version;
        srv_snap_release(sn);
        return srv_reply_error(c, r, 500, "reload_failed", "%s (still serving model version %llu)",
                               err.msg, (unsigned long long)v);
    }
    srv_snap *sn = srv_snap_acquire(s);
    json_t *j = json_pack("{s:b,s:I,s:o}", "reloaded", changed, "model_version",
                          (json_int_t)sn->version, "model",
                          sn->mod[M_MAIN].m ? json_string(sn->mod[M_MAIN].name) : json_null());
    srv_snap_release(sn);
    return srv_reply_json(c, r, 200, j);
}
