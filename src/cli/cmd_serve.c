/* cmd_serve.c - `recfuse serve`: run the HTTP recommendation server
 * (server.h) until SIGTERM or SIGINT, then shut it down gracefully.
 *
 * Options come from the config file (--config, key = value lines) and
 * then the command line. The signal handler only writes the signal
 * number to a pipe (async-signal-safe; it may run on any thread, e.g. one
 * of OpenBLAS's, which exist before main and so cannot have the signals
 * blocked); the main thread waits on that pipe and shuts down. Prints "listening on HOST:PORT" on stdout once the
 * server accepts connections (with --listen HOST:0 the port is the one
 * the kernel chose). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "recfuse/log.h"
#include "recfuse/server.h"

static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig) {
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    if (write(stop_pipe[1], &b, 1) < 0) { /* nothing more a handler can do */
    }
    errno = saved;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: recfuse serve --data DIR [--listen HOST:PORT] [--config FILE] [--model NAME]\n"
            "                     [--retrain-every DURATION] [--max-body BYTES] [--threads N]\n"
            "                     [--watch-ms MS]\n\n"
            "Serves recommendations over HTTP/JSON (routes: docs/api.md). SIGTERM/SIGINT stop\n"
            "it gracefully: no new connections, requests in flight finish, queued events are\n"
            "committed, exit status 0.\n\n"
            "  --listen HOST:PORT      address (default 127.0.0.1:8080; port 0: any free port)\n"
            "  --config FILE           key = value lines: read_key, write_key, admin_key (API\n"
            "                          keys per role, repeatable), listen, data, model, threads,\n"
            "                          max_body, retrain_every, watch_ms (docs/server.md)\n"
            "  --model NAME            serve this trained model (default: the best trained of\n"
            "                          fusion, ials, ease, itemknn, bpr, userknn, ..., pop)\n"
            "  --retrain-every D       retrain in the background every D (90s, 15m, 1h, 1d) by\n"
            "                          running `recfuse train` as a child process, then reload\n"
            "  --max-body BYTES        largest request body (default 8M)\n"
            "  --threads N             HTTP event loops, one thread each (default: all cores)\n"
            "  --watch-ms MS           poll model files every MS ms and reload changed ones\n"
            "                          (default 1000; 0: only POST /v1/admin/reload)\n");
}

int rf_cmd_serve(rf_args *a) {
    if (rf_arg_flag(a, "help")) {
        usage(stdout);
        return 0;
    }
    rf_err err;
    rf_err_clear(&err);
    rf_server_config cfg;
    rf_server_config_default(&cfg);
    const char *v;
    int64_t x;
    if ((v = rf_arg_str(a, "config", NULL)) && rf_server_config_load(&cfg, v, &err))
        return rf_cli_fail("serve", &err);
    if ((v = rf_arg_str(a, "data", NULL))) snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", v);
    if ((v = rf_arg_str(a, "listen", NULL)) && rf_server_parse_listen(&cfg, v, &err))
        return rf_cli_fail("serve", &err);
    if ((v = rf_arg_str(a, "model", NULL))) snprintf(cfg.model, sizeof cfg.model, "%s", v);
    if ((v = rf_arg_str(a, "retrain-every", NULL)) &&
        rf_server_parse_duration(v, &cfg.retrain_every, &err)) {
        rf_err_prefix(&err, "--retrain-every");
        return rf_cli_fail("serve", &err);
    }
    if ((v = rf_arg_str(a, "max-body", NULL))) {
        if (rf_server_parse_size(v, &x, &err) || x < 1024) {
            rf_err_set(&err, RF_EINVAL, "--max-body: '%s' is not a size of at least 1024 bytes", v);
            return rf_cli_fail("serve", &err);
        }
        cfg.max_body = x;
    }
    if (rf_arg_str(a, "threads", NULL)) { /* main.c checked the range */
        if (rf_arg_i64(a, "threads", cfg.threads, 1, 1024, &x, &err)) return rf_cli_fail("serve", &err);
        cfg.threads = (int)x;
    }
    if (rf_arg_i64(a, "watch-ms", cfg.watch_ms, 0, 3600000, &x, &err)) return rf_cli_fail("serve", &err);
    cfg.watch_ms = (int)x;
    if (rf_args_check_unused(a, &err)) return rf_cli_fail("serve", &err);
    if (!cfg.data_dir[0]) {
        rf_err_set(&err, RF_EINVAL, "--data DIR is required (or data = DIR in the config file)");
        return rf_cli_fail("serve", &err);
    }

    if (pipe(stop_pipe) != 0) {
        rf_err_set(&err, RF_EIO, "cannot create the signal pipe: %s", strerror(errno));
        return rf_cli_fail("serve", &err);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int open = 1;
    for (int r = 0; r < RF_ROLE_COUNT; r++) open &= cfg.n_keys[r] == 0;
    if (open)
        rf_log(RF_LOG_WARN, "serve.auth",
               "msg=\"no API keys configured: every route is open to anyone who can connect\"");
    rf_server *s;
    if (rf_server_start(&cfg, &s, &err)) return rf_cli_fail("serve", &err);
    printf("listening on %s:%d\n", cfg.host, rf_server_port(s));
    fflush(stdout);
    rf_log(RF_LOG_INFO, "serve.listening", "host=%s port=%d threads=%d data=%s", cfg.host,
           rf_server_port(s), cfg.threads, cfg.data_dir);
    unsigned char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    rf_log(RF_LOG_INFO, "serve.stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
    rf_server_shutdown(s, 30000);
    rf_server_free(s);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return 0;
}
