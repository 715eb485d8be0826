/* metrics.c - request counters and latency histograms per route and
 * status, rendered in the Prometheus text format for GET /metrics.
 *
 * DESIGN: fixed arrays of atomic counters indexed by (route, status,
 * bucket): recording is a few relaxed atomic adds, no lock, no
 * allocation. Buckets are kept per bucket and summed into the cumulative
 * `le` series when rendered. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "recfuse/mem.h"
#include "recfuse/util.h"
#include "server/srv_int.h"

static const char *const route_names[R_COUNT] = {
    "recommend", "similar", "bought_together", "popular", "trending", "events",
    "items", "users", "admin_reload", "health", "metrics", "other"};

const char *srv_route_name(srv_route r) { return route_names[r]; }

/* Status codes with their own series; anything else is "other" (index 0). */
static const int statuses[SRV_NSTATUS] = {0, 200, 201, 204, 400, 401, 403, 404, 405, 413, 415,
                                          500, 503, 409};

/* Upper bounds of the latency buckets, seconds (the last is +Inf). */
static const double bounds[SRV_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  10,    0};

static int status_index(int status) {
    for (int i = 1; i < SRV_NSTATUS; i++)
        if (statuses[i] == status) return i;
    return 0;
}

void srv_metrics_record(srv_metrics *m, srv_route r, int status, double seconds) {
    int si = status_index(status);
    int b = 0;
    while (b < SRV_NBUCKETS - 1 && seconds > bounds[b]) b++;
    atomic_fetch_add_explicit(&m->count[r][si], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bucket[r][si][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us[r][si], (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

typedef struct buf {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)w;
        char *q = rf_realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

static uint64_t ld(const _Atomic uint64_t *x) { return atomic_load_explicit(x, memory_order_relaxed); }

static void status_label(int si, char *out, size_t size) {
    if (si == 0)
        snprintf(out, size, "other");
    else
        snprintf(out, size, "%d", statuses[si]);
}

char *srv_metrics_render(const srv_metrics *m, const srv_snap *snap, int64_t queue_len,
                         const int *conns, int nloops, size_t *len) {
    buf b = {rf_malloc(16384), 0, 16384, 0};
    if (!b.p) return NULL;
    put(&b, "# HELP recfuse_http_requests_total HTTP requests by route and status.\n"
            "# TYPE recfuse_http_requests_total counter\n");
    char st[16];
    for (int r = 0; r < R_COUNT; r++)
        for (int si = 0; si < SRV_NSTATUS; si++) {
            uint64_t c = ld(&m->count[r][si]);
            if (!c) continue;
            status_label(si, st, sizeof st);
            put(&b, "recfuse_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                route_names[r], st, (unsigned long long)c);
        }
    put(&b, "# HELP recfuse_http_request_duration_seconds Request latency by route and status.\n"
            "# TYPE recfuse_http_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int si = 0; si < SRV_NSTATUS; si++) {
            uint64_t c = ld(&m->count[r][si]);
            if (!c) continue;
            status_label(si, st, sizeof st);
            uint64_t cum = 0;
            for (int k = 0; k < SRV_NBUCKETS; k++) {
                cum += ld(&m->bucket[r][si][k]);
                if (k < SRV_NBUCKETS - 1)
                    put(&b,
                        "recfuse_http_request_duration_seconds_bucket{route=\"%s\",status=\"%s\","
                        "le=\"%g\"} %llu\n",
                        route_names[r], st, bounds[k], (unsigned long long)cum);
                else
                    put(&b,
                        "recfuse_http_request_duration_seconds_bucket{route=\"%s\",status=\"%s\","
                        "le=\"+Inf\"} %llu\n",
                        route_names[r], st, (unsigned long long)cum);
            }
            put(&b,
                "recfuse_http_request_duration_seconds_sum{route=\"%s\",status=\"%s\"} %.6f\n"
                "recfuse_http_request_duration_seconds_count{route=\"%s\",status=\"%s\"} %llu\n",
                route_names[r], st, (double)ld(&m->sum_us[r][si]) / 1e6, route_names[r], st,
                (unsigned long long)cum);
        }
    put(&b,
        "# HELP recfuse_events_ingested_total Events stored through POST /v1/events.\n"
        "# TYPE recfuse_events_ingested_total counter\n"
        "recfuse_events_ingested_total %llu\n"
        "# HELP recfuse_events_duplicate_total Posted events already in the store.\n"
        "# TYPE recfuse_events_duplicate_total counter\n"
        "recfuse_events_duplicate_total %llu\n"
        "# HELP recfuse_event_commits_total Group commits (transactions) of events.\n"
        "# TYPE recfuse_event_commits_total counter\n"
        "recfuse_event_commits_total %llu\n"
        "# HELP recfuse_event_queue Event batches waiting for the writer.\n"
        "# TYPE recfuse_event_queue gauge\n"
        "recfuse_event_queue %lld\n"
        "# HELP recfuse_events_replayed_total Stored events newer than the served models, "
        "recounted into the live counters after each model load.\n"
        "# TYPE recfuse_events_replayed_total counter\n"
        "recfuse_events_replayed_total %llu\n"
        "# HELP recfuse_model_reloads_total Model snapshots published (and failed loads).\n"
        "# TYPE recfuse_model_reloads_total counter\n"
        "recfuse_model_reloads_total{result=\"ok\"} %llu\n"
        "recfuse_model_reloads_total{result=\"failed\"} %llu\n"
        "# HELP recfuse_retrains_total Background retrains (and failed ones).\n"
        "# TYPE recfuse_retrains_total counter\n"
        "recfuse_retrains_total{result=\"ok\"} %llu\n"
        "recfuse_retrains_total{result=\"failed\"} %llu\n",
        (unsigned long long)ld(&m->events_ingested), (unsigned long long)ld(&m->events_duplicate),
        (unsigned long long)ld(&m->commits), (long long)queue_len,
        (unsigned long long)ld(&m->events_replayed), (unsigned long long)ld(&m->reloads), (unsigned long long)ld(&m->reload_failures),
        (unsigned long long)ld(&m->retrains), (unsigned long long)ld(&m->retrain_failures));
    put(&b, "# HELP recfuse_http_connections Open connections of each HTTP event loop.\n"
            "# TYPE recfuse_http_connections gauge\n");
    for (int i = 0; i < nloops; i++)
        put(&b, "recfuse_http_connections{loop=\"%d\"} %d\n", i, conns[i]);
    put(&b, "# HELP recfuse_model_info The model serving each role (value: snapshot version).\n"
            "# TYPE recfuse_model_info gauge\n");
    static const char *const roles[M_NROLES] = {"recommend", "similar", "bought_together",
                                                "popular", "trending"};
    int64_t now = rf_now();
    for (int k = 0; k < M_NROLES; k++) {
        const srv_model *sm = &snap->mod[k];
        if (!sm->m) continue;
        put(&b, "recfuse_model_info{role=\"%s\",model=\"%s\"} %llu\n", roles[k], sm->name,
            (unsigned long long)snap->version);
    }
    put(&b, "# HELP recfuse_model_age_seconds Age of each served model file (now - mtime).\n"
            "# TYPE recfuse_model_age_seconds gauge\n");
    for (int k = 0; k < M_NROLES; k++) {
        const srv_model *sm = &snap->mod[k];
        if (!sm->m) continue;
        put(&b, "recfuse_model_age_seconds{role=\"%s\",model=\"%s\"} %lld\n", roles[k], sm->name,
            (long long)(now - sm->mtime_ns / 1000000000));
    }
    put(&b,
        "# HELP recfuse_model_version Snapshot version in use (1 at start, +1 per reload).\n"
        "# TYPE recfuse_model_version gauge\n"
        "recfuse_model_version %llu\n"
        "# HELP recfuse_model_loaded_seconds Seconds since the snapshot in use was loaded.\n"
        "# TYPE recfuse_model_loaded_seconds gauge\n"
        "recfuse_model_loaded_seconds %lld\n",
        (unsigned long long)snap->version, (long long)(now - snap->loaded_at));
    if (b.oom) {
        rf_free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}
