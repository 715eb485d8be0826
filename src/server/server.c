/* server.c - the HTTP front of `recfuse serve`: libmicrohttpd daemon,
 * request lifecycle (body accumulation, routing, auth, metrics), JSON
 * replies, per-request scratch, start and graceful shutdown.
 *
 * DESIGN: cfg.threads event loops (libmicrohttpd daemons, one epoll
 * thread each) are fed connections by one acceptor (listen.c); read
 * routes, lists included, run to completion on the connection's loop.
 * POST /v1/events is the one asynchronous route: it queues its events for
 * the group-commit writer and suspends the connection, so a loop never
 * waits for an fsync (writer.c). Every reply is JSON
 * except /metrics; every error is {"error": {"code", "message"}} with the
 * message naming the parameter, field or route at fault. Scratch buffers
 * (a read connection to the store, score and mask arrays) come from a
 * pool of contexts, so a request allocates almost nothing. */
#include <arpa/inet.h>
#include <cblas.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sqlite3.h>
#include <unistd.h>

#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/util.h"
#include "server/srv_int.h"

/* ---- contexts ----------------------------------------------------------- */

srv_ctx *srv_ctx_get(rf_server *s, rf_err *err) {
    pthread_mutex_lock(&s->ctx_lock);
    srv_ctx *c = s->ctx_free;
    if (c) s->ctx_free = c->next;
    pthread_mutex_unlock(&s->ctx_lock);
    if (c) return c;
    c = rf_calloc(1, sizeof *c);
    if (!c) {
        rf_err_set(err, RF_ENOMEM, "out of memory");
        return NULL;
    }
    if (rf_store_open(s->cfg.data_dir, 0, &c->st, err) != 0 ||
        rf_events_new(NULL, NULL, &c->ev) != 0) {
        if (!err || err->code == 0) rf_err_set(err, RF_ENOMEM, "out of memory");
        rf_store_close(c->st);
        rf_events_free(c->ev);
        rf_free(c);
        return NULL;
    }
    /* Read-only use: map the database instead of copying pages per read. */
    sqlite3_exec(rf_store_db(c->st), "PRAGMA mmap_size=1073741824", NULL, NULL, NULL);
    return c;
}

void srv_ctx_put(rf_server *s, srv_ctx *c) {
    if (!c) return;
    pthread_mutex_lock(&s->ctx_lock);
    c->next = s->ctx_free;
    s->ctx_free = c;
    pthread_mutex_unlock(&s->ctx_lock);
}

static void ctx_free(srv_ctx *c) {
    rf_store_close(c->st);
    rf_events_free(c->ev);
    rf_free(c->scores);
    rf_free(c->mask);
    rf_free(c->top);
    rf_free(c);
}

int srv_ctx_reserve(srv_ctx *c, size_t n, int k) {
    if (n > c->cap) {
        float *s = rf_realloc_array(c->scores, n, sizeof *s);
        if (!s) return RF_ENOMEM;
        c->scores = s;
        uint8_t *m = rf_realloc(c->mask, n);
        if (!m) return RF_ENOMEM;
        c->mask = m;
        c->cap = n;
    }
    if (k > c->topcap) {
        rf_scored *t = rf_realloc_array(c->top, (size_t)k, sizeof *t);
        if (!t) return RF_ENOMEM;
        c->top = t;
        c->topcap = k;
    }
    return 0;
}

/* ---- replies ------------------------------------------------------------ */

int srv_reply_text(struct MHD_Connection *c, srv_req *r, int status, const char *ctype, char *body,
                   size_t len, int copy) {
    struct MHD_Response *resp =
        copy ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY)
             : MHD_create_response_from_buffer_with_free_callback(len, body, rf_free);
    if (!resp) {
        if (!copy) rf_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == 405) {
        const char *allow = r->route == R_ITEMS   ? "PUT, PATCH"
                            : r->route == R_USERS ? "PUT, DELETE"
                            : r->route == R_EVENTS || r->route == R_RELOAD ? "POST"
                                                                           : "GET";
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    r->status = status;
    int ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

int srv_reply_json(struct MHD_Connection *c, srv_req *r, int status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!s) return srv_reply_error(c, r, 500, "internal", "out of memory building the reply");
    size_t n = strlen(s);
    /* jansson allocates with malloc: copy into an rf_malloc'd body. */
    char *b = rf_malloc(n + 1);
    if (!b) {
        free(s);
        return MHD_NO;
    }
    memcpy(b, s, n);
    b[n] = '\n';
    free(s);
    return srv_reply_text(c, r, status, "application/json", b, n + 1, 0);
}

int srv_reply_error(struct MHD_Connection *c, srv_req *r, int status, const char *code,
                    const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!s) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
        return srv_reply_text(c, r, 500, "application/json", (char *)oom, sizeof oom - 1, 1);
    }
    int ok = srv_reply_text(c, r, status, "application/json", s, strlen(s), 1);
    free(s);
    return ok;
}

int srv_reply_rferr(struct MHD_Connection *c, srv_req *r, const rf_err *err) {
    switch (err->code) {
    case RF_ENOTFOUND: return srv_reply_error(c, r, 404, "not_found", "%s", err->msg);
    case RF_EINVAL:
    case RF_EPARSE:
    case RF_ERANGE: return srv_reply_error(c, r, 400, "bad_request", "%s", err->msg);
    case RF_EDB: return srv_reply_error(c, r, 503, "store_busy", "%s", err->msg);
    default: return srv_reply_error(c, r, 500, "internal", "%s", err->msg);
    }
}

/* ---- query parameters ---------------------------------------------------- */

typedef struct pcheck {
    const char *allowed;
    const char *bad;
} pcheck;

static enum MHD_Result check_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
    pcheck *p = cls;
    size_t n = strlen(key);
    for (const char *a = p->allowed; *a;) {
        const char *e = strchr(a, ',');
        size_t l = e ? (size_t)(e - a) : strlen(a);
        if (l == n && strncmp(a, key, n) == 0) return MHD_YES;
        if (!e) break;
        a = e + 1;
    }
    p->bad = key;
    return MHD_NO;
}

int srv_check_params(struct MHD_Connection *c, srv_req *r, const char *allowed) {
    pcheck p = {allowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_one, &p);
    if (!p.bad) return 0;
    srv_reply_error(c, r, 400, "bad_parameter", "unknown parameter '%s' (this route takes: %s)",
                    p.bad, *allowed ? allowed : "none");
    return 1;
}

int srv_param_int(struct MHD_Connection *c, srv_req *r, const char *name, int64_t def,
                  int64_t min, int64_t max, int64_t *out) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *out = def;
    if (!v) return 0;
    int64_t x;
    if (rf_parse_i64(v, strlen(v), &x) != 0) {
        srv_reply_error(c, r, 400, "bad_parameter", "parameter '%s': '%s' is not an integer", name, v);
        return 1;
    }
    if (x < min || x > max) {
        srv_reply_error(c, r, 400, "bad_parameter", "parameter '%s': %lld is outside [%lld, %lld]",
                        name, (long long)x, (long long)min, (long long)max);
        return 1;
    }
    *out = x;
    return 0;
}

int srv_param_num(struct MHD_Connection *c, srv_req *r, const char *name, double def, double min,
                  double max, double *out) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *out = def;
    if (!v) return 0;
    double x;
    if (rf_parse_double(v, strlen(v), &x) != 0) {
        srv_reply_error(c, r, 400, "bad_parameter", "parameter '%s': '%s' is not a number", name, v);
        return 1;
    }
    if (x < min || x > max) {
        srv_reply_error(c, r, 400, "bad_parameter", "parameter '%s': %g is outside [%g, %g]", name,
                        x, min, max);
        return 1;
    }
    *out = x;
    return 0;
}

int srv_param_bool(struct MHD_Connection *c, srv_req *r, const char *name, int *out) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *out = 0;
    if (!v) return 0;
    if (!*v || strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0) return 0;
    srv_reply_error(c, r, 400, "bad_parameter", "parameter '%s': '%s' is not a boolean (1/0, true/false)",
                    name, v);
    return 1;
}

json_t *srv_body_json(struct MHD_Connection *c, srv_req *r) {
    if (r->len == 0) {
        srv_reply_error(c, r, 400, "bad_json", "the request body is empty (a JSON document is expected)");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        srv_reply_error(c, r, 400, "bad_json", "invalid JSON in the body at line %d column %d: %s",
                        je.line, je.column, je.text);
        return NULL;
    }
    return j;
}

/* ---- routing -------------------------------------------------------------- */

/* The path rest after `prefix` when url starts with it, else NULL. */
static const char *after(const char *url, const char *prefix) {
    size_t n = strlen(prefix);
    return strncmp(url, prefix, n) == 0 ? url + n : NULL;
}

static const char *api_key(struct MHD_Connection *c) {
    const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    if (k) return k;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (a && strncasecmp(a, "Bearer ", 7) == 0) return a + 7;
    return NULL;
}

static const char *const role_label[RF_ROLE_COUNT] = {"read", "write", "admin"};

/* 1 if s is valid UTF-8 (ids must be: they are echoed in JSON). */
static int valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xc2)) return 0;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80) return 0;
    }
    return 1;
}

/* Route and dispatch a complete request. */
static int dispatch(rf_server *s, struct MHD_Connection *c, srv_req *r, const char *url,
                    const char *method) {
    const char *id = NULL;
    int need = RF_ROLE_READ; /* -1: no key needed */
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0, put = strcmp(method, "PUT") == 0;
    int patch = strcmp(method, "PATCH") == 0, del = strcmp(method, "DELETE") == 0;
    int method_ok;
    if (strcmp(url, "/health") == 0) {
        r->route = R_HEALTH;
        need = -1;
        method_ok = get;
    } else if (strcmp(url, "/metrics") == 0) {
        r->route = R_METRICS;
        method_ok = get;
    } else if ((id = after(url, "/v1/recommend/"))) {
        r->route = R_RECOMMEND;
        method_ok = get;
    } else if ((id = after(url, "/v1/similar/"))) {
        r->route = R_SIMILAR;
        method_ok = get;
    } else if ((id = after(url, "/v1/bought-together/"))) {
        r->route = R_TOGETHER;
        method_ok = get;
    } else if (strcmp(url, "/v1/popular") == 0) {
        r->route = R_POPULAR;
        method_ok = get;
    } else if (strcmp(url, "/v1/trending") == 0) {
        r->route = R_TRENDING;
        method_ok = get;
    } else if (strcmp(url, "/v1/events") == 0) {
        r->route = R_EVENTS;
        need = RF_ROLE_WRITE;
        method_ok = post;
    } else if ((id = after(url, "/v1/items/"))) {
        r->route = R_ITEMS;
        need = RF_ROLE_WRITE;
        method_ok = put || patch;
    } else if ((id = after(url, "/v1/users/"))) {
        r->route = R_USERS;
        need = RF_ROLE_WRITE;
        method_ok = put || del;
    } else if (strcmp(url, "/v1/admin/reload") == 0) {
        r->route = R_RELOAD;
        need = RF_ROLE_ADMIN;
        method_ok = post;
    } else {
        r->route = R_OTHER;
        return srv_reply_error(c, r, 404, "not_found",
                               "no route %s (routes: /health, /metrics, /v1/recommend/{user}, "
                               "/v1/similar/{item}, /v1/bought-together/{item}, /v1/popular, "
                               "/v1/trending, /v1/events, /v1/items/{id}, /v1/users/{id}, "
                               "/v1/admin/reload)",
                               url);
    }
    if (need >= 0 && !srv_auth_open(&s->cfg)) {
        int role = srv_auth_role(&s->cfg, api_key(c));
        if (role == -1)
            return srv_reply_error(c, r, 401, "unauthorized",
                                   "missing API key (send 'Authorization: Bearer KEY' or "
                                   "'X-API-Key: KEY')");
        if (role == -2) return srv_reply_error(c, r, 401, "unauthorized", "invalid API key");
        if (role < need)
            return srv_reply_error(c, r, 403, "forbidden",
                                   "this key has the %s role; %s %s needs the %s role",
                                   role_label[role], method, url, role_label[need]);
    }
    if (!method_ok)
        return srv_reply_error(c, r, 405, "method_not_allowed", "method %s is not allowed on %s",
                               method, url);
    if (r->too_big)
        return srv_reply_error(c, r, 413, "body_too_large",
                               "the request body exceeds max_body (%lld bytes)",
                               (long long)s->cfg.max_body);
    if (id && (!*id || strlen(id) > 512))
        return srv_reply_error(c, r, 400, "bad_id", "%s: the id in the path is %s", url,
                               *id ? "longer than 512 bytes" : "empty");
    if (id && !valid_utf8(id))
        return srv_reply_error(c, r, 400, "bad_id", "the id in the path is not valid UTF-8");
    if (!post && !put && !patch && r->len > 0)
        return srv_reply_error(c, r, 400, "bad_request", "%s %s takes no request body", method,
                               url);
    if ((post && r->route != R_RELOAD) || put || patch) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct && !strstr(ct, "json"))
            return srv_reply_error(c, r, 415, "unsupported_media_type",
                                   "Content-Type '%s': the body must be JSON (application/json)", ct);
    }
    switch (r->route) {
    case R_HEALTH: return srv_get_health(s, c, r);
    case R_METRICS: return srv_get_metrics(s, c, r);
    case R_RECOMMEND: return srv_get_recommend(s, c, r, id);
    case R_SIMILAR: return srv_get_similar(s, c, r, id);
    case R_TOGETHER: return srv_get_together(s, c, r, id);
    case R_POPULAR: return srv_get_popular(s, c, r, 0);
    case R_TRENDING: return srv_get_popular(s, c, r, 1);
    case R_EVENTS: return srv_post_events(s, c, r);
    case R_ITEMS: return srv_put_item(s, c, r, id, patch);
    case R_USERS: return del ? srv_delete_user(s, c, r, id) : srv_put_user(s, c, r, id);
    case R_RELOAD: return srv_post_reload(s, c, r);
    default: return MHD_NO;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    rf_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = rf_calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->t0 = rf_mono();
        r->route = R_OTHER;
        r->counted = 1;
        atomic_fetch_add(&s->inflight, 1);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t n;
        if (cl && rf_parse_i64(cl, strlen(cl), &n) == 0 && n > s->cfg.max_body) r->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->too_big && r->len + *upload_size > (size_t)s->cfg.max_body) r->too_big = 1;
        if (!r->too_big) {
            if (r->len + *upload_size + 1 > r->cap) {
                size_t nc = r->cap ? r->cap : 4096;
                while (nc < r->len + *upload_size + 1) nc *= 2;
                char *b = rf_realloc(r->body, nc);
                if (!b) return MHD_NO;
                r->body = b;
                r->cap = nc;
            }
            memcpy(r->body + r->len, upload, *upload_size);
            r->len += *upload_size;
            r->body[r->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->batch) return srv_events_done(s, c, r) ? MHD_YES : MHD_NO;
    return dispatch(s, c, r, url, method) == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    rf_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) return;
    if (r->batch) {
        /* A connection closed while its events were committing: wait for
         * the writer (it never keeps a batch for long) before freeing. */
        while (!atomic_load(&r->batch->done)) usleep(1000);
        srv_batch_free(r->batch);
    }
    if (r->status) srv_metrics_record(&s->metrics, r->route, r->status, rf_mono() - r->t0);
    if (r->counted) atomic_fetch_sub(&s->inflight, 1);
    rf_free(r->body);
    rf_free(r);
    *con_cls = NULL;
}

/* ---- start / stop ----------------------------------------------------------- */

static void server_free_parts(rf_server *s) {
    srv_acceptor_stop(s);
    srv_loops_stop(s);
    srv_writer_stop(s->writer);
    s->writer = NULL;
    srv_snap_release(s->snap);
    s->snap = NULL;
    while (s->ctx_free) {
        srv_ctx *c = s->ctx_free;
        s->ctx_free = c->next;
        ctx_free(c);
    }
    for (int i = 0; i < 2; i++) rf_free(s->cache_body[i]);
    srv_live_free(&s->live);
    rf_store_close(s->st);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->snap_lock);
    pthread_mutex_destroy(&s->reload_lock);
    pthread_mutex_destroy(&s->cache_lock);
    pthread_mutex_destroy(&s->ctx_lock);
    pthread_mutex_destroy(&s->watch_mu);
    pthread_cond_destroy(&s->watch_cv);
}

int rf_server_start(const rf_server_config *cfg, rf_server **out, rf_err *err) {
    *out = NULL;
    if (!cfg->data_dir[0]) return rf_err_set(err, RF_EINVAL, "no data directory given (--data DIR)");
    if (cfg->model[0] && !rf_model_find(cfg->model))
        return rf_err_set(err, RF_EINVAL, "model '%s' is not a model name (see 'recfuse train --help')",
                          cfg->model);
    rf_server *s = rf_calloc(1, sizeof *s);
    if (!s) return rf_err_set(err, RF_ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->lfd = -1;
    if (s->cfg.threads < 1) s->cfg.threads = 1;
    s->started_at = rf_now();
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->snap_lock, NULL);
    pthread_mutex_init(&s->reload_lock, NULL);
    pthread_mutex_init(&s->cache_lock, NULL);
    pthread_mutex_init(&s->ctx_lock, NULL);
    pthread_mutex_init(&s->watch_mu, NULL);
    pthread_cond_init(&s->watch_cv, NULL);
    /* Requests run in parallel with each other: BLAS calls inside one
     * request (model scoring) stay on one thread (process-wide setting). */
    openblas_set_num_threads(1);
    int rc;
    if ((rc = rf_store_open(s->cfg.data_dir, 0, &s->st, err))) goto fail;
    if ((rc = srv_live_init(&s->live, s->st, err))) goto fail;
    if ((rc = srv_reload(s, 0, NULL, err))) goto fail;
    if ((rc = srv_writer_start(s, &s->writer, err))) goto fail;
    if ((rc = srv_loops_start(s, on_request, on_completed, err))) goto fail;
    if ((rc = srv_listen_open(s, err))) goto fail;
    if ((rc = srv_acceptor_start(s, err))) goto fail;
    if ((rc = srv_watch_start(s, err))) goto fail;
    *out = s;
    return 0;
fail:
    server_free_parts(s);
    rf_free(s);
    return rc;
}

int rf_server_port(const rf_server *s) { return s->port; }

void rf_server_shutdown(rf_server *s, int grace_ms) {
    if (!s || s->shut) return;
    s->shut = 1;
    atomic_store(&s->stopping, 1);
    srv_acceptor_stop(s); /* stop accepting */
    double t0 = rf_mono();
    /* Requests in flight finish (events posts included: the writer still runs). */
    while (atomic_load(&s->inflight) > 0 && (rf_mono() - t0) * 1000 < grace_ms) usleep(2000);
    int left = atomic_load(&s->inflight);
    srv_writer_stop(s->writer); /* commits anything still queued */
    s->writer = NULL;
    srv_loops_stop(s);
    srv_watch_stop(s);
    rf_log(RF_LOG_INFO, "serve.stopped", "unfinished=%d factor_lists=%llu items_scored=%llu", left,
           (unsigned long long)s->fac_lists, (unsigned long long)s->fac_scanned);
}

void rf_server_free(rf_server *s) {
    if (!s) return;
    rf_server_shutdown(s, 10000);
    server_free_parts(s);
    rf_free(s);
}
