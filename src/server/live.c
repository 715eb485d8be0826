/* live.c - the server's mutable state: the catalog attributes the
 * filters read (category, price, stock - moved by PUT/PATCH at once),
 * the users seen, and the counters that move with every event (live
 * popularity and trending increments, co-occurrence counts for
 * bought-together, each user's current basket session).
 *
 * DESIGN: catalog ids (cid) are dense ids over every item the server has
 * seen (the store's catalog at start, then new items from events and
 * PUTs); each loaded model maps its item ids to cids once (srv_model.m2c),
 * so the read paths index plain arrays. One rwlock guards it all: request
 * threads read under the shared lock, the event writer applies a whole
 * committed batch under one exclusive lock. Arrays grow by doubling.
 *
 * The counters hold what the served models have not seen: srv_live_count
 * is the one rule, used for every posted event (writer.c) and for the
 * store's events newer than the models' training data when a snapshot is
 * published (replay.c). */
#include <math.h>
#include <string.h>

#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "server/srv_int.h"

static int grow_items(srv_live *L, int32_t need) {
    if (need <= L->icap) return 0;
    int32_t nc = L->icap ? L->icap : 1024;
    while (nc < need) nc *= 2;
    double *p = rf_realloc_array(L->price, (size_t)nc, sizeof *p);
    if (!p) return RF_ENOMEM;
    L->price = p;
    int64_t *s = rf_realloc_array(L->stock, (size_t)nc, sizeof *s);
    if (!s) return RF_ENOMEM;
    L->stock = s;
    int32_t *c = rf_realloc_array(L->cat, (size_t)nc, sizeof *c);
    if (!c) return RF_ENOMEM;
    L->cat = c;
    float *a = rf_realloc_array(L->pop, (size_t)nc, sizeof *a);
    if (!a) return RF_ENOMEM;
    L->pop = a;
    float *t = rf_realloc_array(L->trend, (size_t)nc, sizeof *t);
    if (!t) return RF_ENOMEM;
    L->trend = t;
    srv_colist *co = rf_realloc_array(L->co, (size_t)nc, sizeof *co);
    if (!co) return RF_ENOMEM;
    L->co = co;
    for (int32_t i = L->icap; i < nc; i++) {
        L->price[i] = NAN;
        L->stock[i] = -1;
        L->cat[i] = -1;
        L->pop[i] = L->trend[i] = 0;
        memset(&L->co[i], 0, sizeof L->co[i]);
    }
    L->icap = nc;
    return 0;
}

static int grow_users(srv_live *L, int32_t need) {
    if (need <= L->ucap) return 0;
    int32_t nc = L->ucap ? L->ucap : 1024;
    while (nc < need) nc *= 2;
    uint8_t *f = rf_realloc(L->ufold, (size_t)nc);
    if (!f) return RF_ENOMEM;
    L->ufold = f;
    srv_session *s = rf_realloc_array(L->sess, (size_t)nc, sizeof *s);
    if (!s) return RF_ENOMEM;
    L->sess = s;
    memset(L->ufold + L->ucap, 0, (size_t)(nc - L->ucap));
    memset(L->sess + L->ucap, 0, (size_t)(nc - L->ucap) * sizeof *s);
    L->ucap = nc;
    return 0;
}

int srv_live_item(srv_live *L, const char *id, size_t len, int32_t *cid) {
    int rc = rf_idmap_put(L->items, id, len, cid, NULL);
    if (rc) return rc;
    return grow_items(L, *cid + 1);
}

int srv_live_user(srv_live *L, const char *id, size_t len, int32_t *uid) {
    int rc = rf_idmap_put(L->users, id, len, uid, NULL);
    if (rc) return rc;
    return grow_users(L, *uid + 1);
}

int srv_live_set_item(srv_live *L, int32_t cid, const char *category, double price, int64_t stock) {
    int32_t c = -1;
    if (category) {
        int rc = rf_idmap_put(L->cats, category, strlen(category), &c, NULL);
        if (rc) return rc;
    }
    L->cat[cid] = c;
    L->price[cid] = price;
    L->stock[cid] = stock;
    atomic_fetch_add(&L->gen, 1);
    return 0;
}

void srv_live_reset_counts(srv_live *L) {
    int32_t n = rf_idmap_size(L->items);
    for (int32_t i = 0; i < n; i++) {
        L->pop[i] = L->trend[i] = 0;
        L->co[i].n = 0;
    }
    int32_t nu = rf_idmap_size(L->users);
    for (int32_t u = 0; u < nu; u++) L->sess[u].n = 0;
    atomic_fetch_add(&L->gen, 1);
}

/* Count b once more in a's list. */
static int co_add(srv_colist *l, int32_t b) {
    for (int32_t k = 0; k < l->n; k++)
        if (l->p[k].item == b) {
            l->p[k].count++;
            return 0;
        }
    if (l->n == l->cap) {
        int32_t nc = l->cap ? l->cap * 2 : 8;
        srv_pairc *p = rf_realloc_array(l->p, (size_t)nc, sizeof *p);
        if (!p) return RF_ENOMEM;
        l->p = p;
        l->cap = nc;
    }
    l->p[l->n].item = b;
    l->p[l->n].count = 1;
    l->n++;
    return 0;
}

int srv_live_cooccur(srv_live *L, int32_t a, int32_t b) {
    int rc = co_add(&L->co[a], b);
    return rc ? rc : co_add(&L->co[b], a);
}

int srv_live_count(srv_live *L, const srv_snap *sn, const rf_event_in *e, int new_pair,
                   unsigned kinds, int64_t now) {
    int32_t cid, uid;
    int rc = srv_live_item(L, e->item, strlen(e->item), &cid);
    if (rc == 0) rc = srv_live_user(L, e->user, strlen(e->user), &uid);
    if (rc) return rc;
    if (kinds & SRV_COUNT_FOLD) L->ufold[uid] = 1;
    const rf_model *pm = sn->pop_m, *tm = sn->mod[M_TREND].m;
    if (new_pair && (kinds & SRV_COUNT_POP) && (!pm || pm->data_opts.type_weight[e->type] != 0))
        L->pop[cid] += 1;
    if (new_pair && (kinds & SRV_COUNT_TREND) && tm && tm->data_opts.type_weight[e->type] != 0) {
        double t = e->ts < now ? (double)e->ts : (double)now;
        double x = (t - sn->trend_ref) / sn->trend_hl;
        if (x > 60) x = 60;
        if (x > -60) L->trend[cid] += (float)exp2(x);
    }
    if ((kinds & SRV_COUNT_CO) && (sn->rules_types & (1u << e->type))) {
        srv_session *ss = &L->sess[uid];
        if (ss->n > 0 && (e->ts - ss->last_ts > sn->rules_gap || ss->n >= sn->rules_max_basket))
            ss->n = 0;
        int seen = 0;
        for (int32_t k = 0; k < ss->n; k++) seen |= ss->items[k] == cid;
        if (!seen) {
            for (int32_t k = 0; k < ss->n && rc == 0; k++) rc = srv_live_cooccur(L, ss->items[k], cid);
            if (ss->n < SRV_SESSION_MAX) ss->items[ss->n++] = cid;
        }
        if (e->ts > ss->last_ts || ss->n == 1) ss->last_ts = e->ts;
    }
    return rc;
}

int srv_live_init(srv_live *L, rf_store *st, rf_err *err) {
    memset(L, 0, sizeof *L);
    pthread_rwlock_init(&L->lock, NULL);
    if (rf_idmap_new(&L->items) || rf_idmap_new(&L->users) || rf_idmap_new(&L->cats) ||
        grow_items(L, 1) || grow_users(L, 1))
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    rf_catalog *cat = NULL;
    int rc = rf_store_load_catalog(st, &cat, err);
    if (rc) return rc;
    for (int64_t i = 0; i < cat->n && rc == 0; i++) {
        const rf_item_info *it = &cat->items[i];
        int32_t cid;
        rc = srv_live_item(L, it->id, strlen(it->id), &cid);
        if (rc == 0) rc = srv_live_set_item(L, cid, it->category, it->price, it->stock);
    }
    rf_catalog_free(cat);
    if (rc) return rf_err_set(err, rc, "loading the catalog: %s", rf_strerror(rc));
    return 0;
}

void srv_live_free(srv_live *L) {
    if (L->co)
        for (int32_t i = 0; i < L->icap; i++) rf_free(L->co[i].p);
    rf_free(L->co);
    rf_free(L->price);
    rf_free(L->stock);
    rf_free(L->cat);
    rf_free(L->pop);
    rf_free(L->trend);
    rf_free(L->ufold);
    rf_free(L->sess);
    rf_idmap_free(L->items);
    rf_idmap_free(L->users);
    rf_idmap_free(L->cats);
    pthread_rwlock_destroy(&L->lock);
    memset(L, 0, sizeof *L);
}
