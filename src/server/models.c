/* models.c - which trained models the server serves, and swapping them.
 *
 * A snapshot (srv_snap) holds one model per role: the main ranked list
 * (fusion, else the best measured single model that is trained), similar
 * items (itemknn), bought-together (rules), popular (pop) and trending
 * (trending). srv_model_path is the one place that decides which file
 * serves a role.
 *
 * DESIGN: snapshots are immutable and reference-counted. A request takes
 * a reference (srv_snap_acquire: a mutex held for one increment), uses
 * the models without any lock, and drops it; a reload builds a complete
 * new snapshot off to the side and publishes it by swapping one pointer,
 * then drops the old snapshot's base reference - the last request using
 * the old one frees it. So a reload never fails or blocks a request in
 * flight. The watch thread polls the chosen files' (inode, mtime, size)
 * every watch_ms and reloads when one changed or a better model appeared;
 * the same thread runs the optional periodic retrain: `EXE train --data DIR
 * --model NAMES` as a child process (posix_spawn), then a reload. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recfuse/fusion.h"
#include "recfuse/itemknn.h"
#include "recfuse/log.h"
#include "recfuse/mem.h"
#include "recfuse/rules.h"
#include "recfuse/util.h"
#include "server/srv_int.h"

extern char **environ;

/* The main list: fusion, then single models by measured quality
 * (docs/benchmarks.md: ials > ease > itemknn on ML-20M Protocol C). */
static const char *const main_order[] = {"fusion", "ials", "ease", "itemknn", "bpr", "userknn",
                                         "svdpp", "mf", "fm", "content", "trending", "pop", NULL};
static const char *const role_names[M_NROLES] = {"recommend", "similar", "bought_together",
                                                 "popular", "trending"};
static const char *const role_model[M_NROLES] = {NULL, "itemknn", "rules", "pop", "trending"};

static void model_file(const rf_server *s, const char *name, char *path, size_t size) {
    size_t n = strlen(s->cfg.data_dir);
    const char *sep = n > 0 && s->cfg.data_dir[n - 1] == '/' ? "" : "/";
    snprintf(path, size, "%s%smodels/%s.rfm", s->cfg.data_dir, sep, name);
}

int srv_model_path(const rf_server *s, srv_mrole role, char *path, size_t size, char *name,
                   size_t name_size, rf_err *err) {
    const char *dir = s->cfg.data_dir;
    if (role == M_MAIN) {
        if (s->cfg.model[0]) {
            model_file(s, s->cfg.model, path, size);
            snprintf(name, name_size, "%s", s->cfg.model);
            if (access(path, R_OK) == 0) return 0;
            return rf_err_set(err, RF_ENOTFOUND,
                              "model '%s' is not trained (run 'recfuse train --data %s --model %s')",
                              s->cfg.model, dir, s->cfg.model);
        }
        for (int i = 0; main_order[i]; i++) {
            model_file(s, main_order[i], path, size);
            snprintf(name, name_size, "%s", main_order[i]);
            if (access(path, R_OK) == 0) return 0;
        }
        return rf_err_set(err, RF_ENOTFOUND, "no model is trained (run 'recfuse train --data %s')",
                          dir);
    }
    /* A role's own file wins; without one, build_snap falls back to the
     * served fusion model's channel of that name (role_channel). */
    const char *m = role_model[role];
    model_file(s, m, path, size);
    snprintf(name, name_size, "%s", m);
    if (access(path, R_OK) == 0) return 0;
    return rf_err_set(err, RF_ENOTFOUND,
                      "the %s list needs the %s model (run 'recfuse train --data %s --model %s')",
                      role_names[role], m, dir, m);
}

/* File signature of path; 0 or -1 if it cannot be stat'ed. */
static int file_sig(const char *path, int64_t *mtime_ns, int64_t *ino, int64_t *size) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    *ino = (int64_t)st.st_ino;
    *size = (int64_t)st.st_size;
    return 0;
}

static void snap_free(srv_snap *sn) {
    if (!sn) return;
    for (int k = 0; k < M_NROLES; k++) {
        if (!sn->mod[k].borrowed) rf_model_free(sn->mod[k].m);
        rf_free(sn->mod[k].m2c);
    }
    rf_free(sn->pop_base);
    rf_free(sn->trend_base);
    rf_free(sn->r2m);
    rf_factor_index_free(&sn->fac_ix);
    rf_free(sn);
}

srv_snap *srv_snap_acquire(rf_server *s) {
    pthread_mutex_lock(&s->snap_lock);
    srv_snap *sn = s->snap;
    atomic_fetch_add(&sn->refs, 1);
    pthread_mutex_unlock(&s->snap_lock);
    return sn;
}

void srv_snap_release(srv_snap *sn) {
    if (sn && atomic_fetch_sub(&sn->refs, 1) == 1) snap_free(sn);
}

/* A parameter's value from the model's "k=v k2=v2" text, def if absent. */
static double param_of(const rf_model *m, const char *key, double def) {
    char buf[2048];
    rf_model_params_format(m, buf, sizeof buf);
    size_t kl = strlen(key);
    for (const char *p = buf; (p = strstr(p, key)); p += kl)
        if ((p == buf || p[-1] == ' ') && p[kl] == '=') return atof(p + kl + 1);
    return def;
}

/* m2c of a loaded model (adds unknown items to the live catalog). */
static int map_items(rf_server *s, srv_model *sm) {
    const rf_model *m = sm->m;
    sm->m2c = rf_malloc_array((size_t)m->n_items + 1, sizeof *sm->m2c);
    if (!sm->m2c) return RF_ENOMEM;
    int rc = 0;
    pthread_rwlock_wrlock(&s->live.lock);
    for (int32_t i = 0; i < m->n_items && rc == 0; i++)
        rc = srv_live_item(&s->live, rf_idmap_str(m->items, i), rf_idmap_len(m->items, i),
                           &sm->m2c[i]);
    pthread_rwlock_unlock(&s->live.lock);
    return rc;
}

/* Cold-start scores of a model (user -1, empty history): the popularity
 * every model falls back to (model.h). */
static int base_scores(const rf_model *m, float **out, rf_err *err) {
    *out = rf_malloc_array((size_t)m->n_items + 1, sizeof **out);
    if (!*out) return rf_err_set(err, RF_ENOMEM, "out of memory");
    return rf_model_score_all(m, -1, NULL, *out, err);
}

/* 1 if the files chosen now differ from the snapshot's. */
static int changed_since(const rf_server *s, const srv_snap *cur) {
    for (int k = 0; k < M_NROLES; k++) {
        char path[4096], name[64];
        int have = srv_model_path(s, (srv_mrole)k, path, sizeof path, name, sizeof name, NULL) == 0;
        const srv_model *sm = &cur->mod[k];
        if (sm->borrowed) { /* follows the main model; its own file appearing is a change */
            if (have) return 1;
            continue;
        }
        if (have != (sm->m != NULL)) return 1;
        if (!have) continue;
        int64_t t, ino, size;
        if (strcmp(path, sm->path) != 0 || file_sig(path, &t, &ino, &size) != 0 ||
            t != sm->mtime_ns || ino != sm->ino || size != sm->size)
            return 1;
    }
    return 0;
}

/* Load a fresh snapshot of every role. A role whose model is absent stays
 * empty; a model that fails to load fails the whole reload. */
static int build_snap(rf_server *s, srv_snap **out, rf_err *err) {
    *out = NULL;
    srv_snap *sn = rf_calloc(1, sizeof *sn);
    if (!sn) return rf_err_set(err, RF_ENOMEM, "out of memory");
    atomic_init(&sn->refs, 1);
    sn->loaded_at = rf_now();
    int rc = 0;
    for (int k = 0; k < M_NROLES && rc == 0; k++) {
        srv_model *sm = &sn->mod[k];
        if (srv_model_path(s, (srv_mrole)k, sm->path, sizeof sm->path, sm->name, sizeof sm->name,
                           NULL) != 0) {
            sm->path[0] = sm->name[0] = 0;
            /* No file of its own: the fused model's channel of that name. */
            const rf_model *ch = k != M_MAIN && sn->mod[M_MAIN].m
                                     ? rf_fusion_channel(sn->mod[M_MAIN].m, role_model[k])
                                     : NULL;
            if (ch) {
                sm->m = (rf_model *)ch; /* read-only use, like every served model */
                sm->borrowed = 1;
                snprintf(sm->name, sizeof sm->name, "fusion/%s", role_model[k]);
                if ((rc = map_items(s, sm))) rf_err_set(err, rc, "out of memory");
            }
            continue;
        }
        /* Signature before the load: a file replaced during it is seen
         * as changed at the next poll. */
        if (file_sig(sm->path, &sm->mtime_ns, &sm->ino, &sm->size) != 0) continue;
        /* The same file for two roles (e.g. itemknn as main and similar):
         * load it once more - models are immutable, the cost is memory. */
        if ((rc = rf_model_load(sm->path, &sm->m, err))) break;
        if ((rc = map_items(s, sm))) rf_err_set(err, rc, "out of memory");
    }
    const rf_model *mm = sn->mod[M_MAIN].m;
    if (rc == 0 && mm && mm->ops->fold_in && rf_factors_get(mm, &sn->fac, NULL) == 0 &&
        sn->fac.ld <= 1024) {
        if ((rc = rf_factors_index(&sn->fac, &sn->fac_ix, err)) == 0)
            sn->has_fac = 1;
    }
    if (rc == 0 && mm && mm->items) { /* row id -> item id, so requests read histories without the join */
        srv_ctx *ctx = srv_ctx_get(s, err); /* a read connection of the request pool */
        rc = ctx ? rf_store_item_rids(ctx->st, mm->items, &sn->r2m, &sn->nr2m, err)
                 : err && err->code ? err->code : RF_ENOMEM;
        srv_ctx_put(s, ctx);
    }
    if (rc == 0) {
        sn->pop_m = sn->mod[M_POP].m ? sn->mod[M_POP].m : sn->mod[M_MAIN].m;
        if (sn->pop_m) rc = base_scores(sn->pop_m, &sn->pop_base, err);
    }
    if (rc == 0 && sn->mod[M_TREND].m) {
        const rf_model *tm = sn->mod[M_TREND].m;
        rc = base_scores(tm, &sn->trend_base, err);
        sn->trend_ref = (double)tm->data_opts.now;
        sn->trend_hl = param_of(tm, "half_life", 7) * 86400.0;
        if (!(sn->trend_hl > 0)) sn->trend_hl = 7 * 86400.0;
    }
    /* Live co-occurrence follows the rules model's baskets; without one,
     * purchase sessions of 30 minutes of at most 50 items. */
    sn->rules_types = 1u << RF_EV_PURCHASE;
    sn->rules_gap = 1800;
    sn->rules_max_basket = 50;
    if (rc == 0 && sn->mod[M_TOGETHER].m) {
        const rf_model *rm = sn->mod[M_TOGETHER].m;
        rf_rules_info info;
        if (rf_rules_model_info(rm, &info, NULL) == 0 && info.basket_types)
            sn->rules_types = (unsigned)info.basket_types;
        sn->rules_gap = (int64_t)(param_of(rm, "session_gap", 30) * 60);
        sn->rules_max_basket = (int)param_of(rm, "max_basket", 50);
    }
    if (rc) {
        snap_free(sn);
        return rc;
    }
    *out = sn;
    return 0;
}

int srv_reload(rf_server *s, int only_if_changed, int *changed, rf_err *err) {
    if (changed) *changed = 0;
    pthread_mutex_lock(&s->reload_lock);
    int rc = 0;
    srv_snap *cur = s->snap;
    if (only_if_changed && cur && !changed_since(s, cur)) goto out;
    double t0 = rf_mono();
    srv_snap *sn;
    if ((rc = build_snap(s, &sn, err))) {
        atomic_fetch_add(&s->metrics.reload_failures, 1);
        goto out;
    }
    sn->version = ++s->next_version;
    pthread_mutex_lock(&s->snap_lock);
    s->snap = sn;
    pthread_mutex_unlock(&s->snap_lock);
    /* The live counters now count what the new models have not seen: the
     * event writer replays it from the store (replay.c). */
    atomic_store(&s->replay_pending, 1);
    if (s->writer) srv_writer_poke(s->writer);
    srv_snap_release(cur);
    atomic_fetch_add(&s->metrics.reloads, 1);
    if (changed) *changed = 1;
    rf_log(RF_LOG_INFO, "serve.models", "version=%llu main=%s similar=%s together=%s popular=%s "
                                         "trending=%s seconds=%.2f",
           (unsigned long long)sn->version, sn->mod[M_MAIN].m ? sn->mod[M_MAIN].name : "-",
           sn->mod[M_SIMILAR].m ? sn->mod[M_SIMILAR].name : "-",
           sn->mod[M_TOGETHER].m ? sn->mod[M_TOGETHER].name : "-",
           sn->mod[M_POP].m ? sn->mod[M_POP].name : "-",
           sn->mod[M_TREND].m ? sn->mod[M_TREND].name : "-", rf_mono() - t0);
out:
    pthread_mutex_unlock(&s->reload_lock);
    return rc;
}

/* ---- watch and retrain thread ---------------------------------------- */

/* Names of the models to retrain: those the snapshot serves, else the
 * train command's default set. Into buf as "a,b,c". */
static void retrain_names(rf_server *s, char *buf, size_t size) {
    buf[0] = 0;
    srv_snap *sn = srv_snap_acquire(s);
    size_t n = 0;
    for (int k = 0; k < M_NROLES; k++) {
        if (!sn->mod[k].m) continue;
        const char *name = sn->mod[k].name;
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= sn->mod[j].m && strcmp(sn->mod[j].name, name) == 0;
        if (dup) continue;
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "", name);
    }
    srv_snap_release(sn);
}

/* Run `EXE train --data DIR --quiet [--model NAMES]`; 0 if it exited 0. */
static int run_train(rf_server *s) {
    char names[512];
    retrain_names(s, names, sizeof names);
    char *argv[8];
    int a = 0;
    argv[a++] = s->cfg.exe;
    argv[a++] = "train";
    argv[a++] = "--data";
    argv[a++] = s->cfg.data_dir;
    argv[a++] = "--quiet";
    if (names[0]) {
        argv[a++] = "--model";
        argv[a++] = names;
    }
    argv[a] = NULL;
    rf_log(RF_LOG_INFO, "serve.retrain", "exe=%s models=%s", s->cfg.exe, names[0] ? names : "default");
    pid_t pid;
    int rc = posix_spawn(&pid, s->cfg.exe, NULL, NULL, argv, environ);
    if (rc == 0) atomic_store(&s->child, (int)pid);
    if (rc != 0) {
        rf_log(RF_LOG_ERROR, "serve.retrain", "msg=\"cannot run %s: %s\"", s->cfg.exe, strerror(rc));
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    atomic_store(&s->child, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rf_log(RF_LOG_ERROR, "serve.retrain", "msg=\"train failed\" status=%d", status);
        return -1;
    }
    return 0;
}

static void *watch_main(void *arg) {
    rf_server *s = arg;
    char last_err[RF_ERR_MSG_MAX] = "";
    pthread_mutex_lock(&s->watch_mu);
    while (!atomic_load(&s->stopping)) {
        int ms = s->cfg.watch_ms > 0 ? s->cfg.watch_ms : 1000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->watch_cv, &s->watch_mu, &ts);
        if (atomic_load(&s->stopping)) break;
        pthread_mutex_unlock(&s->watch_mu);
        if (s->cfg.retrain_every > 0 && rf_now() - s->last_retrain >= s->cfg.retrain_every) {
            s->last_retrain = rf_now();
            int ok = run_train(s) == 0;
            atomic_fetch_add(ok ? &s->metrics.retrains : &s->metrics.retrain_failures, 1);
        }
        if (s->cfg.watch_ms > 0 || s->cfg.retrain_every > 0) {
            rf_err err;
            rf_err_clear(&err);
            if (srv_reload(s, 1, NULL, &err) != 0) {
                if (strcmp(err.msg, last_err) != 0)
                    rf_log(RF_LOG_ERROR, "serve.reload", "msg=\"%s\" (serving the previous models)",
                           err.msg);
                snprintf(last_err, sizeof last_err, "%s", err.msg);
            } else {
                last_err[0] = 0;
            }
        }
        pthread_mutex_lock(&s->watch_mu);
    }
    pthread_mutex_unlock(&s->watch_mu);
    return NULL;
}

int srv_watch_start(rf_server *s, rf_err *err) {
    if (s->cfg.watch_ms <= 0 && s->cfg.retrain_every <= 0) return 0;
    s->last_retrain = rf_now();
    if (pthread_create(&s->watch_thr, NULL, watch_main, s) != 0)
        return rf_err_set(err, RF_EINVAL, "cannot start the model watch thread");
    s->watch_running = 1;
    return 0;
}

void srv_watch_stop(rf_server *s) {
    if (!s->watch_running) return;
    int child = atomic_load(&s->child); /* a retrain in progress is cut short */
    if (child > 0) kill((pid_t)child, SIGTERM);
    pthread_mutex_lock(&s->watch_mu);
    pthread_cond_broadcast(&s->watch_cv);
    pthread_mutex_unlock(&s->watch_mu);
    pthread_join(s->watch_thr, NULL);
    s->watch_running = 0;
}
