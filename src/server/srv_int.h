/* srv_int.h - what the server's files share: the served-model snapshot
 * (models.c), the live state (live.c), the event writer (writer.c), the
 * ranking of one list (scorer.c), metrics (metrics.c), keys and config
 * (auth.c), request contexts and JSON replies (server.c, routes_*.c).
 * Nothing outside src/server (and its unit test) includes it. */
#ifndef RF_SRV_INT_H
#define RF_SRV_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/model.h"
#include "recfuse/server.h"
#include "recfuse/store.h"

/* ---- routes and metrics (metrics.c) ---------------------------------- */

typedef enum srv_route {
    R_RECOMMEND, R_SIMILAR, R_TOGETHER, R_POPULAR, R_TRENDING, R_EVENTS, R_ITEMS, R_USERS,
    R_RELOAD, R_HEALTH, R_METRICS, R_OTHER, R_COUNT
} srv_route;
const char *srv_route_name(srv_route r);

#define SRV_NSTATUS 14
#define SRV_NBUCKETS 14
typedef struct srv_metrics {
    _Atomic uint64_t count[R_COUNT][SRV_NSTATUS];
    _Atomic uint64_t bucket[R_COUNT][SRV_NSTATUS][SRV_NBUCKETS]; /* cumulative on output */
    _Atomic uint64_t sum_us[R_COUNT][SRV_NSTATUS];
    _Atomic uint64_t events_ingested, events_duplicate, commits, reloads, reload_failures,
        retrains, retrain_failures, events_replayed;
} srv_metrics;
void srv_metrics_record(srv_metrics *m, srv_route r, int status, double seconds);
/* Prometheus text of m plus the model gauges and the open connections of
 * each of the nloops event loops (conns); allocated (rf_free). */
struct srv_snap;
char *srv_metrics_render(const srv_metrics *m, const struct srv_snap *snap, int64_t queue_len,
                         const int *conns, int nloops, size_t *len);

/* ---- the served models (models.c) ------------------------------------ */

/* One model file in use and where its items sit in the live catalog. */
typedef struct srv_model {
    rf_model *m;       /* NULL: absent */
    int borrowed;      /* 1: m is a channel of the main (fusion) model,
                          not owned; path/signature are empty */
    char name[32];
    char path[4096];
    int64_t mtime_ns, ino, size; /* file signature at load */
    int32_t *m2c;      /* model item id -> catalog id */
} srv_model;

/* Roles a model file plays. */
typedef enum srv_mrole { M_MAIN, M_SIMILAR, M_TOGETHER, M_POP, M_TREND, M_NROLES } srv_mrole;

/* Everything the read routes need from the trained models, immutable once
 * published, reference-counted so a swap never frees a snapshot a request
 * still uses. */
typedef struct srv_snap {
    _Atomic int refs;
    uint64_t version;   /* 1, 2, ... per load */
    int64_t loaded_at;  /* Unix s */
    srv_model mod[M_NROLES];
    const rf_model *pop_m; /* the model popularity comes from: M_POP, else M_MAIN (NULL: none) */
    float *pop_base;    /* popularity of each pop-model item (M_POP, else M_MAIN's
                           cold-start scores), NULL without either */
    float *trend_base;  /* trending scores per M_TREND item */
    double trend_ref;   /* trending reference time (Unix s) */
    double trend_hl;    /* trending half-life in seconds */
    int64_t rules_gap;  /* session gap (s) of the rules model, baskets for live co-occurrence */
    unsigned rules_types; /* basket event types (bit per type) */
    int rules_max_basket;
    int has_fac;        /* the main model is a factor model with fold-in: */
    rf_factors fac;     /* its factors (borrowed from mod[M_MAIN].m), scored by scorer.c */
    rf_factor_index fac_ix; /* its items by decreasing norm */
    int32_t *r2m;       /* store item row id -> main model item id (-1: not in it), */
    int64_t nr2m;       /* for row ids < nr2m: a request's history is read by row id */
} srv_snap;

struct rf_server;
/* Path of the file serving `role` (honouring c->model for M_MAIN) into
 * path; 0, or RF_ENOTFOUND with a message naming the train command. The
 * one place that decides which model serves what. */
int srv_model_path(const struct rf_server *s, srv_mrole role, char *path, size_t size,
                   char *name, size_t name_size, rf_err *err);
/* Load every role's model afresh and publish it (serialised). *changed
 * (may be NULL) is 1 if a new snapshot was published. With only_if_changed,
 * nothing is loaded when no file signature differs from the current one. */
int srv_reload(struct rf_server *s, int only_if_changed, int *changed, rf_err *err);
/* The current snapshot with a reference taken (never NULL after start). */
srv_snap *srv_snap_acquire(struct rf_server *s);
void srv_snap_release(srv_snap *sn);
/* Background threads: file watch and retrain. */
int srv_watch_start(struct rf_server *s, rf_err *err);
void srv_watch_stop(struct rf_server *s);

/* ---- live state (live.c) --------------------------------------------- */

typedef struct srv_pairc {
    int32_t item, count;
} srv_pairc;
typedef struct srv_colist {
    int32_t n, cap;
    srv_pairc *p;
} srv_colist;

#define SRV_SESSION_MAX 64
typedef struct srv_session {
    int64_t last_ts;
    int32_t n;
    int32_t items[SRV_SESSION_MAX];
} srv_session;

/* Catalog attributes, users and counters that move with every write.
 * Guarded by `lock` (readers: request threads; writers: the event writer
 * and item/user routes). Catalog ids (cid) are dense over every item the
 * server has seen; they never change while the server runs. */
typedef struct srv_live {
    pthread_rwlock_t lock;
    rf_idmap *items;    /* item string id -> cid */
    int32_t icap;
    double *price;      /* NAN unknown */
    int64_t *stock;     /* -1 unknown */
    int32_t *cat;       /* category id, -1 unknown */
    float *pop, *trend; /* increments since the current snapshot was published */
    srv_colist *co;     /* co-occurrence counts since the snapshot, per cid */
    rf_idmap *cats;     /* category strings */
    rf_idmap *users;    /* user string id -> uid */
    int32_t ucap;
    uint8_t *ufold;     /* 1: the user posted events or was forgotten: score
                           from the current history, never the trained vector */
    srv_session *sess;  /* per uid: the current basket session */
    _Atomic uint64_t gen; /* bumped when popular/trending lists may change */
} srv_live;

int srv_live_init(srv_live *L, rf_store *st, rf_err *err);
void srv_live_free(srv_live *L);
/* Catalog id of item `id`, added when new. Caller holds the write lock. */
int srv_live_item(srv_live *L, const char *id, size_t len, int32_t *cid);
/* User id, added when new. Caller holds the write lock. */
int srv_live_user(srv_live *L, const char *id, size_t len, int32_t *uid);
/* Set an item's attributes (price NAN / stock -1 / category NULL: unknown).
 * Caller holds the write lock. */
int srv_live_set_item(srv_live *L, int32_t cid, const char *category, double price, int64_t stock);
/* Forget the live counters and basket sessions (caller holds the write
 * lock; replay.c, before it recounts what the new snapshot has not seen). */
void srv_live_reset_counts(srv_live *L);
/* What srv_live_count may move, a bit each. */
#define SRV_COUNT_POP 1u   /* live popularity */
#define SRV_COUNT_TREND 2u /* live trending */
#define SRV_COUNT_CO 4u    /* basket sessions and co-occurrence */
#define SRV_COUNT_FOLD 8u  /* mark the user to be folded in from the store */
#define SRV_COUNT_ALL 15u
/* Count one stored event in the live state under snapshot sn: the user is
 * marked for fold-in, popularity and trending move when the (user, item)
 * pair is new (new_pair) and the model counts the event's type, the
 * user's basket session and co-occurrences move for the rules model's
 * basket types; `kinds` masks what may move. now (Unix s) caps future
 * timestamps for trending. Caller holds the write lock. */
int srv_live_count(srv_live *L, const srv_snap *sn, const rf_event_in *e, int new_pair,
                   unsigned kinds, int64_t now);
/* Add one co-occurrence a <-> b. Caller holds the write lock. */
int srv_live_cooccur(srv_live *L, int32_t a, int32_t b);
struct rf_server;
/* Rebuild the live counters for the current snapshot: reset, then count
 * the events of st newer than each served model's training data
 * (replay.c). Runs on the event writer's thread; *replayed = rows read. */
int srv_live_replay(struct rf_server *s, rf_store *st, int64_t *replayed, rf_err *err);

/* ---- the group-commit event writer (writer.c) ------------------------ */

/* One POST's events, queued for the writer. */
typedef struct srv_batch {
    rf_event_in *ev;
    int64_t n;
    char *strings;          /* the ids ev points into (one allocation) */
    struct MHD_Connection *conn; /* resumed when done */
    struct srv_batch *next;
    int rc;                 /* result: 0 or RF_E* */
    char msg[256];
    int64_t added, dups;
    _Atomic int done;
} srv_batch;

typedef struct srv_writer srv_writer;
int srv_writer_start(struct rf_server *s, srv_writer **out, rf_err *err);
/* Queue a batch; the writer sets rc/added/dups, then done, then resumes
 * batch->conn. RF_ESTATE after the writer was stopped. */
int srv_writer_submit(srv_writer *w, srv_batch *b);
int64_t srv_writer_queued(srv_writer *w);
/* Wake the writer to rebuild the live counters (s->replay_pending is set):
 * it replays before it commits the next group. */
void srv_writer_poke(srv_writer *w);
/* Commit everything queued, then stop the thread and free. */
void srv_writer_stop(srv_writer *w);
void srv_batch_free(srv_batch *b);

/* ---- ranking one list (scorer.c) --------------------------------------- */

/* One user's list: the exact top k of f->items . vec skipping mask, by a
 * scan in decreasing item-norm order (ix) that stops when |vec| * norm
 * cannot beat the k-th score (m NULL), or the model m's
 * rf_model_recommend for (user, h) with scratch `scores`. */
typedef struct srv_sjob {
    const rf_factors *f;
    const rf_factor_index *ix; /* its items by decreasing norm */
    const float *vec;    /* f->ld floats, zero beyond f->dim */
    const rf_model *m;
    int32_t user;
    rf_hist h;
    float *scores;       /* m->n_items floats */
    const uint8_t *mask; /* n_items flags: excluded items */
    int k;
    rf_scored *out;      /* k entries */
    int n_out, rc;
    rf_err err;          /* rc's message (model jobs) */
    int64_t scanned;     /* items scored */
} srv_sjob;
/* Run job q on the calling thread; sets q->n_out, q->rc and q->err. */
void srv_score_job(srv_sjob *q);

/* ---- the server ------------------------------------------------------ */

/* Per-thread scratch, taken from a pool for one request. */
typedef struct srv_ctx {
    rf_store *st;       /* read connection */
    rf_events *ev;
    float *scores;
    uint8_t *mask;
    size_t cap;         /* floats / bytes of scores and mask */
    rf_scored *top;
    int topcap;
    float vec[1040];    /* a user vector (factor models, dim <= 1024) */
    struct srv_ctx *next;
} srv_ctx;

/* An event loop (listen.c): a libmicrohttpd daemon with its own thread. */
#define SRV_LOOPS_MAX 1024 /* the range --threads accepts */
typedef struct srv_loop {
    struct MHD_Daemon *d;
    _Atomic int conns;   /* open connections */
    _Atomic int pending; /* handed over by the acceptor, not yet started */
} srv_loop;

struct rf_server {
    rf_server_config cfg;
    srv_loop loops[SRV_LOOPS_MAX];
    int nloops;
    int lfd;              /* the listening socket (-1: closed) */
    int acc_wake[2];      /* a byte in it stops the acceptor */
    pthread_t acc_thr;
    int acc_on;
    int port;
    rf_store *st;         /* for item/user writes (serialised by wlock) */
    pthread_mutex_t wlock;
    srv_writer *writer;
    _Atomic int replay_pending; /* a snapshot was published: the writer replays */
    srv_live live;
    srv_metrics metrics;
    _Atomic uint64_t fac_lists, fac_scanned; /* factor-model scans, items they scored */
    /* snapshot */
    pthread_mutex_t snap_lock;
    srv_snap *snap;
    pthread_mutex_t reload_lock;
    uint64_t next_version;
    /* cached bodies of /v1/popular and /v1/trending without parameters */
    pthread_mutex_t cache_lock;
    char *cache_body[2];
    size_t cache_len[2];
    uint64_t cache_snap[2], cache_gen[2];
    /* contexts */
    pthread_mutex_t ctx_lock;
    srv_ctx *ctx_free;
    /* requests in flight and shutdown */
    _Atomic int inflight;
    _Atomic int stopping;
    int shut;
    /* watch / retrain thread */
    pthread_t watch_thr;
    int watch_running;
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    int64_t last_retrain;
    _Atomic int child;    /* pid of a running retrain, 0 if none */
    int64_t started_at;
};

/* listen.c: open the listening socket (sets lfd, port); start/stop the
 * event loops; start/stop the acceptor (stop also closes the socket). */
int srv_listen_open(struct rf_server *s, rf_err *err);
int srv_loops_start(struct rf_server *s, MHD_AccessHandlerCallback on_request,
                    MHD_RequestCompletedCallback on_completed, rf_err *err);
void srv_loops_stop(struct rf_server *s);
int srv_acceptor_start(struct rf_server *s, rf_err *err);
void srv_acceptor_stop(struct rf_server *s);

srv_ctx *srv_ctx_get(struct rf_server *s, rf_err *err);
void srv_ctx_put(struct rf_server *s, srv_ctx *c);
/* Grow c's buffers to hold n entries. */
int srv_ctx_reserve(srv_ctx *c, size_t n, int k);

/* A request being handled. */
typedef struct srv_req srv_req;
struct srv_req {
    double t0;
    srv_route route;
    int status;
    char *body;
    size_t len, cap;
    int too_big;
    srv_batch *batch;   /* POST /v1/events waiting for its commit */
    int counted;        /* counted in inflight */
};

/* Reply helpers: queue a JSON body (takes ownership of j) / an error
 * {"error": {"code": CODE, "message": MSG}}. They set r->status. */
int srv_reply_json(struct MHD_Connection *c, srv_req *r, int status, json_t *j);
int srv_reply_text(struct MHD_Connection *c, srv_req *r, int status, const char *ctype, char *body,
                   size_t len, int copy);
int srv_reply_error(struct MHD_Connection *c, srv_req *r, int status, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* 500/503/404/400 from an rf_err code. */
int srv_reply_rferr(struct MHD_Connection *c, srv_req *r, const rf_err *err);

/* Query parameters: check every one is in `allowed` ("k,category,..."),
 * else reply 400 and return 1. */
int srv_check_params(struct MHD_Connection *c, srv_req *r, const char *allowed);
/* Integer / number / boolean query parameter; on a bad value replies 400
 * naming it and returns 1; absent: *out = def. */
int srv_param_int(struct MHD_Connection *c, srv_req *r, const char *name, int64_t def,
                  int64_t min, int64_t max, int64_t *out);
int srv_param_num(struct MHD_Connection *c, srv_req *r, const char *name, double def, double min,
                  double max, double *out);
int srv_param_bool(struct MHD_Connection *c, srv_req *r, const char *name, int *out);

/* Route handlers (routes_read.c, routes_write.c). `id` is the path rest. */
int srv_get_recommend(struct rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id);
int srv_get_similar(struct rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id);
int srv_get_together(struct rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id);
int srv_get_popular(struct rf_server *s, struct MHD_Connection *c, srv_req *r, int trending);
int srv_post_events(struct rf_server *s, struct MHD_Connection *c, srv_req *r);
int srv_events_done(struct rf_server *s, struct MHD_Connection *c, srv_req *r);
int srv_put_item(struct rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id,
                 int patch);
int srv_put_user(struct rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id);
int srv_delete_user(struct rf_server *s, struct MHD_Connection *c, srv_req *r, const char *id);
int srv_post_reload(struct rf_server *s, struct MHD_Connection *c, srv_req *r);
int srv_get_health(struct rf_server *s, struct MHD_Connection *c, srv_req *r);
int srv_get_metrics(struct rf_server *s, struct MHD_Connection *c, srv_req *r);

/* Parse the request body as JSON; on failure replies 400 (naming line and
 * column) and returns NULL. */
json_t *srv_body_json(struct MHD_Connection *c, srv_req *r);

/* Apply committed events to the live state (writer.c calls it after each
 * commit). */
void srv_live_apply(struct rf_server *s, const srv_batch *b, const uint8_t *flags);

/* Auth (auth.c): the role a request's key holds: -1 no key sent, -2 a key
 * matching no configured one; or RF_ROLE_*. Constant time in the keys. */
int srv_auth_role(const rf_server_config *c, const char *key);
int srv_auth_open(const rf_server_config *c);

#endif
