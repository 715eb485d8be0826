/* listen.c - the server's event loops and the one thread that accepts
 * connections for them.
 *
 * DESIGN: each event loop is a libmicrohttpd daemon with one thread of its
 * own and no listening socket (cfg.threads loops); the acceptor thread
 * owns the listening socket, accepts every connection and hands it
 * (MHD_add_connection) to the loop with the fewest open connections. A
 * request runs to completion on its connection's loop, lists included
 * (scorer.c), so connections must be spread evenly: with libmicrohttpd's
 * own thread pool every loop races for each new connection, and a run of
 * wrk could find three of its four connections on one loop while the
 * other sat idle. Open connections are counted per loop from
 * libmicrohttpd's connection notifications; `pending` covers a
 * connection handed over but not yet started, so a burst of accepts
 * spreads too. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "recfuse/log.h"
#include "server/srv_int.h"

/* libmicrohttpd's connection notifications: open connections per loop. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
    (void)c;
    (void)socket_ctx;
    srv_loop *l = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&l->conns, 1);
        if (atomic_fetch_sub(&l->pending, 1) <= 0) atomic_fetch_add(&l->pending, 1);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&l->conns, 1);
    }
}

int srv_loops_start(rf_server *s, MHD_AccessHandlerCallback on_request,
                    MHD_RequestCompletedCallback on_completed, rf_err *err) {
    int n = s->cfg.threads < 1 ? 1 : s->cfg.threads > SRV_LOOPS_MAX ? SRV_LOOPS_MAX : s->cfg.threads;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    for (int i = 0; i < n; i++) {
        srv_loop *l = &s->loops[i];
        atomic_init(&l->conns, 0);
        atomic_init(&l->pending, 0);
        l->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
                                MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                                MHD_OPTION_END);
        if (!l->d) {
            srv_loops_stop(s);
            return rf_err_set(err, RF_EIO, "cannot start HTTP event loop %d of %d", i + 1, n);
        }
        s->nloops = i + 1;
    }
    return 0;
}

void srv_loops_stop(rf_server *s) {
    for (int i = 0; i < s->nloops; i++) {
        MHD_stop_daemon(s->loops[i].d);
        s->loops[i].d = NULL;
    }
    s->nloops = 0;
}

int srv_listen_open(rf_server *s, rf_err *err) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int gai = getaddrinfo(s->cfg.host[0] ? s->cfg.host : NULL, port, &hints, &ai);
    if (gai != 0 || !ai)
        return rf_err_set(err, RF_EINVAL, "listen: cannot resolve '%s': %s", s->cfg.host,
                          gai_strerror(gai));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1, e = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        e = errno;
    freeaddrinfo(ai);
    if (e) {
        if (fd >= 0) close(fd);
        return rf_err_set(err, RF_EIO, "cannot listen on %s:%d: %s", s->cfg.host, s->cfg.port,
                          strerror(e));
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    s->port = s->cfg.port;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        s->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    s->lfd = fd;
    return 0;
}

/* The loop to take a new connection: fewest open plus handed-over ones,
 * ties to the loop after the last one chosen. */
static srv_loop *pick_loop(rf_server *s, int *next) {
    srv_loop *best = NULL;
    int best_load = 0;
    for (int k = 0; k < s->nloops; k++) {
        srv_loop *l = &s->loops[(*next + k) % s->nloops];
        int load = atomic_load(&l->conns) + atomic_load(&l->pending);
        if (!best || load < best_load) {
            best = l;
            best_load = load;
        }
    }
    *next = (int)(best - s->loops + 1) % s->nloops;
    return best;
}

static void *acceptor_main(void *arg) {
    rf_server *s = arg;
    int next = 0;
    struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->acc_wake[0], .events = POLLIN}};
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) continue;
            rf_log(RF_LOG_ERROR, "serve.accept", "msg=\"poll failed: %s\"", strerror(errno));
            break;
        }
        if (pf[1].revents) break; /* stopping */
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int c = accept4(s->lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                rf_log(RF_LOG_WARN, "serve.accept", "msg=\"cannot accept: %s\"", strerror(errno));
                usleep(10000); /* out of descriptors: let connections close */
            }
            continue; /* EAGAIN (another reset), ECONNABORTED, EINTR, ... */
        }
        int one = 1;
        if (sa.ss_family != AF_UNIX) setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        srv_loop *l = pick_loop(s, &next);
        atomic_fetch_add(&l->pending, 1);
        /* libmicrohttpd owns c from here: it closes it on failure too */
        if (MHD_add_connection(l->d, c, (struct sockaddr *)&sa, sl) != MHD_YES) {
            atomic_fetch_sub(&l->pending, 1);
            rf_log(RF_LOG_WARN, "serve.accept", "msg=\"connection refused by the loop: %s\"",
                   strerror(errno));
        }
    }
    return NULL;
}

int srv_acceptor_start(rf_server *s, rf_err *err) {
    if (pipe2(s->acc_wake, O_CLOEXEC) != 0)
        return rf_err_set(err, RF_EIO, "cannot start the acceptor: %s", strerror(errno));
    if (pthread_create(&s->acc_thr, NULL, acceptor_main, s) != 0) {
        close(s->acc_wake[0]);
        close(s->acc_wake[1]);
        return rf_err_set(err, RF_EIO, "cannot start the acceptor thread");
    }
    s->acc_on = 1;
    return 0;
}

void srv_acceptor_stop(rf_server *s) {
    if (s->acc_on) {
        char b = 1;
        while (write(s->acc_wake[1], &b, 1) < 0 && errno == EINTR) {
        }
        pthread_join(s->acc_thr, NULL);
        close(s->acc_wake[0]);
        close(s->acc_wake[1]);
        s->acc_on = 0;
    }
    if (s->lfd >= 0) close(s->lfd);
    s->lfd = -1;
}
