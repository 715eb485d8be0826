/* replay.c - after a snapshot is published (start, reload, retrain), the
 * live counters are rebuilt from the store: every stored event newer than
 * the training data of the model a counter adds to is counted again with
 * the rule a posted event follows (srv_live_count).
 *
 * A model's training data ends at its data_opts.now (rf_model_fit sets it
 * to the newest event it trained on), so an event with ts > now is one
 * the model has not seen: the popularity model's for live popularity, the
 * trending model's for trending, the bought-together model's for basket
 * co-occurrence, the main model's for marking users to fold in. Without
 * the replay the counters would restart from zero at every publish and
 * lose what arrived while the model trained, or since it was trained.
 *
 * "New pair" is judged in the store's time order: the event is the
 * earliest of its (user, item) (ties by type), as a posted event's
 * RF_APPEND_NEW_PAIR flag is for events that arrive in time order.
 *
 * DESIGN: the replay runs on the event writer's thread (writer.c), the only
 * thread that commits events, so no post commits between the query and
 * the last counted row; posts queue meanwhile. Rows are counted in chunks
 * under the live write lock, so request threads are held at most one
 * chunk at a time. Events that arrive late with a timestamp at or before
 * a model's cut-off are counted when posted but not replayed (the store
 * cannot tell them from trained ones). */
#include <sqlite3.h>
#include <stdint.h>

#include "recfuse/log.h"
#include "recfuse/model.h"
#include "recfuse/util.h"
#include "server/srv_int.h"

#define CHUNK 4096

/* The training cut-off of m, INT64_MAX (nothing to replay) without one. */
static int64_t cutoff(const rf_model *m) {
    return m && m->data_opts.now > 0 ? m->data_opts.now : INT64_MAX;
}

static const char *SQL =
    "SELECT u.id, i.id, e.type, e.value, e.ts,"
    " NOT EXISTS (SELECT 1 FROM events p WHERE p.user = e.user AND p.item = e.item"
    "  AND (p.ts < e.ts OR (p.ts = e.ts AND p.type < e.type)))"
    " FROM events e JOIN users u ON u.rid = e.user JOIN items i ON i.rid = e.item"
    " WHERE e.ts > ?1 ORDER BY e.ts, e.user, e.item, e.type";

int srv_live_replay(rf_server *s, rf_store *st, int64_t *replayed, rf_err *err) {
    *replayed = 0;
    double t0 = rf_mono();
    srv_snap *sn = srv_snap_acquire(s);
    int64_t cut[4] = {cutoff(sn->pop_m), cutoff(sn->mod[M_TREND].m), cutoff(sn->mod[M_TOGETHER].m),
                      cutoff(sn->mod[M_MAIN].m)};
    const unsigned bit[4] = {SRV_COUNT_POP, SRV_COUNT_TREND, SRV_COUNT_CO, SRV_COUNT_FOLD};
    int64_t from = INT64_MAX;
    for (int k = 0; k < 4; k++)
        if (cut[k] < from) from = cut[k];
    srv_live *L = &s->live;
    pthread_rwlock_wrlock(&L->lock);
    srv_live_reset_counts(L);
    pthread_rwlock_unlock(&L->lock);
    int rc = 0;
    sqlite3_stmt *q = NULL;
    if (from != INT64_MAX) {
        sqlite3 *db = rf_store_db(st);
        if (sqlite3_prepare_v2(db, SQL, -1, &q, NULL) != SQLITE_OK) {
            rc = rf_err_set(err, RF_EDB, "%s: replaying events: %s", rf_store_path(st),
                            sqlite3_errmsg(db));
            goto out;
        }
        sqlite3_bind_int64(q, 1, from);
        int64_t now = rf_now(), n = 0;
        int step = SQLITE_ROW;
        while (rc == 0 && step == SQLITE_ROW) {
            pthread_rwlock_wrlock(&L->lock);
            for (int c = 0; c < CHUNK && rc == 0; c++) {
                if ((step = sqlite3_step(q)) != SQLITE_ROW) break;
                rf_event_in e = {(const char *)sqlite3_column_text(q, 0),
                                 (const char *)sqlite3_column_text(q, 1),
                                 sqlite3_column_int(q, 2), sqlite3_column_double(q, 3),
                                 sqlite3_column_int64(q, 4)};
                if (!e.user || !e.item || e.type < 0 || e.type >= RF_EV_NTYPES) continue;
                unsigned kinds = 0;
                for (int k = 0; k < 4; k++)
                    if (e.ts > cut[k]) kinds |= bit[k];
                if ((rc = srv_live_count(L, sn, &e, sqlite3_column_int(q, 5), kinds, now)))
                    rf_err_set(err, rc, "replaying events: %s", rf_strerror(rc));
                n++;
            }
            atomic_fetch_add(&L->gen, 1);
            pthread_rwlock_unlock(&L->lock);
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = rf_err_set(err, RF_EDB, "%s: replaying events: %s", rf_store_path(st),
                            sqlite3_errmsg(db));
        *replayed = n;
    }
out:
    sqlite3_finalize(q);
    if (rc == 0)
        rf_log(RF_LOG_INFO, "serve.replay", "version=%llu events=%lld since=%lld seconds=%.3f",
               (unsigned long long)sn->version, (long long)*replayed,
               (long long)(from == INT64_MAX ? 0 : from), rf_mono() - t0);
    srv_snap_release(sn);
    return rc;
}
