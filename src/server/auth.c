/* auth.c - the server's configuration file and API keys.
 *
 * The config file is `key = value` lines (docs/server.md). API keys are
 * compared in constant time: every configured key is compared in full
 * against the presented one (over the longer of the two lengths), so the
 * time taken depends neither on where the first differing byte is nor on
 * which key matched. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "recfuse/util.h"
#include "server/srv_int.h"

void rf_server_config_default(rf_server_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 8080;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = n > 0 ? (int)n : 2;
    c->max_body = 8 << 20;
    c->watch_ms = 1000;
    snprintf(c->exe, sizeof c->exe, "/proc/self/exe");
}

int rf_server_parse_listen(rf_server_config *c, const char *s, rf_err *err) {
    const char *colon = strrchr(s, ':');
    const char *port = colon ? colon + 1 : s;
    int64_t p;
    if (rf_parse_i64(port, strlen(port), &p) != 0 || p < 0 || p > 65535)
        return rf_err_set(err, RF_EINVAL, "listen: '%s' has no valid port (want HOST:PORT)", s);
    if (colon && colon > s) {
        size_t hl = (size_t)(colon - s);
        if (hl >= sizeof c->host) return rf_err_set(err, RF_EINVAL, "listen: host too long");
        memcpy(c->host, s, hl);
        c->host[hl] = 0;
    }
    c->port = (int)p;
    return 0;
}

/* Number with an optional one-letter unit from `units` (multipliers in mul). */
static int parse_unit(const char *s, const char *units, const int64_t *mul, int64_t *out) {
    size_t n = strlen(s);
    int64_t m = 1;
    if (n > 0) {
        const char *u = strchr(units, tolower((unsigned char)s[n - 1]));
        if (u && *u) {
            m = mul[u - units];
            n--;
        }
    }
    int64_t v;
    if (n == 0 || rf_parse_i64(s, n, &v) != 0 || v < 0 || v > INT64_MAX / m) return RF_EPARSE;
    *out = v * m;
    return 0;
}

int rf_server_parse_duration(const char *s, int64_t *out, rf_err *err) {
    static const int64_t mul[] = {1, 60, 3600, 86400};
    if (parse_unit(s, "smhd", mul, out))
        return rf_err_set(err, RF_EINVAL, "'%s' is not a duration (e.g. 90, 90s, 15m, 1h, 2d)", s);
    return 0;
}

int rf_server_parse_size(const char *s, int64_t *out, rf_err *err) {
    static const int64_t mul[] = {1024, 1 << 20, 1 << 30};
    if (parse_unit(s, "kmg", mul, out))
        return rf_err_set(err, RF_EINVAL, "'%s' is not a size in bytes (e.g. 4096, 64K, 8M)", s);
    return 0;
}

static void copy_str(char *dst, size_t size, const char *v) { snprintf(dst, size, "%s", v); }

/* Apply one key = value; a message into why on failure. */
static int apply(rf_server_config *c, const char *k, const char *v, rf_err *why) {
    int64_t x;
    static const char *const role_keys[RF_ROLE_COUNT] = {"read_key", "write_key", "admin_key"};
    for (int r = 0; r < RF_ROLE_COUNT; r++)
        if (strcmp(k, role_keys[r]) == 0) {
            if (c->n_keys[r] >= RF_SERVER_MAX_KEYS)
                return rf_err_set(why, RF_EINVAL, "more than %d keys", RF_SERVER_MAX_KEYS);
            if (strlen(v) < 8 || strlen(v) >= RF_SERVER_KEY_MAX)
                return rf_err_set(why, RF_EINVAL, "a key must have 8 to %d characters",
                                  RF_SERVER_KEY_MAX - 1);
            copy_str(c->keys[r][c->n_keys[r]++], RF_SERVER_KEY_MAX, v);
            return 0;
        }
    if (strcmp(k, "listen") == 0) return rf_server_parse_listen(c, v, why);
    if (strcmp(k, "data") == 0) {
        copy_str(c->data_dir, sizeof c->data_dir, v);
        return 0;
    }
    if (strcmp(k, "model") == 0) {
        copy_str(c->model, sizeof c->model, v);
        return 0;
    }
    if (strcmp(k, "threads") == 0) {
        if (rf_parse_i64(v, strlen(v), &x) || x < 1 || x > 1024)
            return rf_err_set(why, RF_EINVAL, "'%s' is not in [1, 1024]", v);
        c->threads = (int)x;
        return 0;
    }
    if (strcmp(k, "max_body") == 0) {
        if (rf_server_parse_size(v, &x, why)) return RF_EINVAL;
        if (x < 1024) return rf_err_set(why, RF_EINVAL, "at least 1024 bytes");
        c->max_body = x;
        return 0;
    }
    if (strcmp(k, "retrain_every") == 0) return rf_server_parse_duration(v, &c->retrain_every, why);
    if (strcmp(k, "watch_ms") == 0) {
        if (rf_parse_i64(v, strlen(v), &x) || x < 0 || x > 3600000)
            return rf_err_set(why, RF_EINVAL, "'%s' is not in [0, 3600000]", v);
        c->watch_ms = (int)x;
        return 0;
    }
    return rf_err_set(why, RF_EINVAL,
                      "unknown key (known: read_key, write_key, admin_key, listen, data, model, "
                      "threads, max_body, retrain_every, watch_ms)");
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

int rf_server_config_load(rf_server_config *c, const char *path, rf_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return rf_err_set(err, RF_EIO, "%s: %s", path, strerror(errno));
    char line[2048];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == 0 || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = rf_err_set(err, RF_EPARSE, "%s:%d: expected key = value", path, lineno);
            break;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        rf_err why;
        rf_err_clear(&why);
        if (apply(c, k, v, &why))
            rc = rf_err_set(err, RF_EPARSE, "%s:%d: %s: %s", path, lineno, k, why.msg);
    }
    if (rc == 0 && ferror(f)) rc = rf_err_set(err, RF_EIO, "%s: read error", path);
    fclose(f);
    return rc;
}

int srv_auth_open(const rf_server_config *c) {
    for (int r = 0; r < RF_ROLE_COUNT; r++)
        if (c->n_keys[r] > 0) return 0;
    return 1;
}

/* 1 if a equals b, in time depending only on the lengths' maximum. */
static int ct_equal(const char *a, size_t na, const char *b, size_t nb) {
    size_t n = na > nb ? na : nb;
    unsigned diff = (unsigned)(na ^ nb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < na ? (unsigned char)a[i] : 0;
        unsigned char y = i < nb ? (unsigned char)b[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0;
}

int srv_auth_role(const rf_server_config *c, const char *key) {
    if (!key || !*key) return -1;
    size_t nk = strlen(key);
    int best = -2;
    /* Compare against every key of every role, whatever matched. */
    for (int r = 0; r < RF_ROLE_COUNT; r++)
        for (int i = 0; i < c->n_keys[r]; i++) {
            int eq = ct_equal(c->keys[r][i], strlen(c->keys[r][i]), key, nk);
            int cand = eq ? r : -2;
            best = cand > best ? cand : best;
        }
    return best;
}
