/* server.h - the real-time recommendation server (`recfuse serve`).
 *
 * An HTTP/JSON API over a data directory: ranked lists from the best
 * trained model, similar items, bought-together, popular and trending
 * lists, durable event ingestion with group commit and real-time effect,
 * catalog and user writes, health and Prometheus metrics, hot reload of
 * retrained models. docs/api.md lists the routes; docs/server.md the
 * design (threads, group commit, model swap, auth, shutdown).
 *
 * Lifecycle: rf_server_config_default, optionally rf_server_config_load,
 * rf_server_start (listens and serves from its own threads), then
 * rf_server_shutdown (graceful: stop accepting, finish requests in flight,
 * commit queued events) and rf_server_free. The library never installs
 * signal handlers; the CLI turns SIGTERM/SIGINT into rf_server_shutdown. */
#ifndef RECFUSE_SERVER_H
#define RECFUSE_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct rf_err;

#define RF_SERVER_MAX_KEYS 16
#define RF_SERVER_KEY_MAX 256

typedef enum rf_role { RF_ROLE_READ = 0, RF_ROLE_WRITE = 1, RF_ROLE_ADMIN = 2, RF_ROLE_COUNT = 3 } rf_role;

typedef struct rf_server_config {
    char data_dir[4096];
    char host[256];        /* listen address, default 127.0.0.1 */
    int port;              /* 0: any free port (rf_server_port tells which) */
    char model[64];        /* "" : the best available trained model */
    int threads;           /* HTTP worker threads (default: online CPUs) */
    int64_t max_body;      /* largest request body in bytes (default 8 MiB) */
    int64_t retrain_every; /* seconds between background retrains; 0: never */
    int watch_ms;          /* model file poll interval (default 1000; 0: no watch) */
    char exe[4096];        /* binary run as `EXE train` for retrains (default /proc/self/exe) */
    /* API keys per role; a key of a role also grants the roles below it
     * (admin > write > read). No key at all: every route is open. */
    int n_keys[RF_ROLE_COUNT];
    char keys[RF_ROLE_COUNT][RF_SERVER_MAX_KEYS][RF_SERVER_KEY_MAX];
} rf_server_config;

/* Defaults as above; data_dir "" (must be set). */
void rf_server_config_default(rf_server_config *c);

/* Read a config file of `key = value` lines ('#' comments, blank lines
 * ignored) into c, over what c holds. Keys: read_key, write_key,
 * admin_key (each may repeat), listen (HOST:PORT), data, model, threads,
 * max_body (bytes, K/M/G suffix allowed), retrain_every (seconds or
 * with s/m/h/d suffix), watch_ms. RF_EPARSE "FILE:LINE: KEY: reason" for a
 * bad line, RF_EIO if unreadable. */
int rf_server_config_load(rf_server_config *c, const char *path, struct rf_err *err);

/* Parse "HOST:PORT" (or ":PORT", "PORT") into c->host / c->port. */
int rf_server_parse_listen(rf_server_config *c, const char *s, struct rf_err *err);
/* Parse a duration "90", "90s", "15m", "1h", "2d" into seconds. */
int rf_server_parse_duration(const char *s, int64_t *out, struct rf_err *err);
/* Parse a size "4096", "64K", "8M", "1G" into bytes. */
int rf_server_parse_size(const char *s, int64_t *out, struct rf_err *err);

typedef struct rf_server rf_server;

/* Open the store, load the models, start the HTTP daemon and the
 * background threads (event writer, model watch, retrain). A data
 * directory without any trained model is served (recommendation routes
 * answer 503 naming the train command until one appears). */
int rf_server_start(const rf_server_config *c, rf_server **out, struct rf_err *err);
/* The port listened on. */
int rf_server_port(const rf_server *s);
/* Graceful stop: stop accepting connections, wait (up to `grace_ms`) for
 * requests in flight, commit every queued event, stop all threads.
 * Idempotent. */
void rf_server_shutdown(rf_server *s, int grace_ms);
/* Shuts down if needed, then frees. NULL is a no-op. */
void rf_server_free(rf_server *s);

#endif
