/* test_fusion_prune.c - the fused model's factor channels on the pruned
 * path (candidates.c: norm-ordered exact top-N, only the candidates
 * scored) give exactly what the full path (every channel's score_all over
 * the catalog, fu_impl.full_scan) gives: the same fused score vector bit
 * for bit - so the same recommendations - and the same explanations, for
 * users with training rows, with another history, unknown users with a
 * history (fold-in) and cold users; with the GBDT ranker (ials not the
 * first channel) and a weighted blend whose first channel is ials (the
 * fused vector's non-candidates come from the first channel).
 *
 * Data: generated here - 600 users in 12 taste groups over 2,000 items
 * with power-law popularity inside a group, 8 to 30 events each over 60
 * days, a few purchases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "testutil.h"

#define NU 600
#define NI 2000
#define NG 12
#define DAY 86400LL

static rf_events *gen(void) {
    rf_events *ev = rf_test_events_items(NI);
    rf_rng r;
    rf_rng_seed(&r, 3);
    char u[32], it[32];
    const int64_t t0 = 1700000000;
    for (int x = 0; x < NU; x++) {
        snprintf(u, sizeof u, "u%d", x);
        int g = x % NG, n = 8 + (int)rf_rng_below(&r, 23);
        for (int e = 0; e < n; e++) {
            /* mostly the group's items, popular ones first; sometimes any */
            int item = rf_rng_uniform(&r) < 0.8
                           ? (g + NG * (int)(pow(rf_rng_uniform(&r), 2.5) * (NI / NG))) % NI
                           : (int)rf_rng_below(&r, NI);
            snprintf(it, sizeof it, "i%d", item);
            int type = rf_rng_uniform(&r) < 0.2 ? RF_EV_PURCHASE : RF_EV_VIEW;
            int64_t ts = t0 + (int64_t)rf_rng_below(&r, 60 * DAY);
            assert_int_equal(rf_events_push_str(ev, u, it, type, 1, ts), 0);
        }
    }
    return ev;
}

/* Fused scores and explanations of (user, h) on the pruned and the full
 * path: identical. Returns 1 if the pruned path was taken for a factor
 * channel. */
static int same(rf_model *m, int32_t user, const rf_hist *h, float *a, float *b) {
    fu_impl *f = m->impl;
    rf_err err;
    f->full_scan = 0;
    assert_int_equal(rf_model_score_all(m, user, h, a, &err), 0);
    f->full_scan = 1;
    assert_int_equal(rf_model_score_all(m, user, h, b, &err), 0);
    assert_memory_equal(a, b, NI * sizeof *a);
    /* explanations of the top items and of a few far outside the candidates */
    rf_scored top[10];
    int nt = rf_topk_select(a, NI, 10, NULL, top);
    int32_t items[14];
    for (int t = 0; t < nt; t++) items[t] = top[t].id;
    items[nt] = 0;
    items[nt + 1] = NI / 2;
    items[nt + 2] = NI - 1;
    items[nt + 3] = 1234;
    int n = nt + 4;
    rf_reason ra[14], rb[14];
    f->full_scan = 0;
    assert_int_equal(rf_model_explain(m, user, h, items, n, ra, &err), 0);
    f->full_scan = 1;
    assert_int_equal(rf_model_explain(m, user, h, items, n, rb, &err), 0);
    assert_memory_equal(ra, rb, (size_t)n * sizeof *ra);
    f->full_scan = 0;
    /* was the pruned path taken? */
    fu_cands c;
    assert_int_equal(fu_cands_init(&c, f, NI), 0);
    assert_int_equal(fu_cands_build(&c, f, user, h, &err), 0);
    int pruned = 0;
    for (int k = 0; k < f->n_ch; k++) pruned |= f->fix[k].perm && !c.full[k];
    fu_cands_free(&c);
    return pruned;
}

static void check_model(const rf_dataset *d, const char *params) {
    rf_model *m;
    rf_err err;
    assert_int_equal(rf_model_new("fusion", &m, &err), 0);
    assert_int_equal(rf_model_set_params(m, params, &err), 0);
    m->data_opts.binary = 1;
    if (rf_model_fit(m, d, &err)) fail_msg("fit: %s", err.msg);
    const fu_impl *f = m->impl;
    int nfac = 0;
    for (int k = 0; k < f->n_ch; k++) nfac += f->fix[k].perm != NULL;
    assert_int_equal(nfac, 1); /* the ials channel, indexed at fit */
    float *a = malloc(NI * sizeof *a), *b = malloc(NI * sizeof *b);
    int npruned = 0, ncases = 0;
    for (int32_t u = 0; u < d->n_users; u += 7) {
        rf_hist h;
        rf_hist_from_row(d, u, &h);
        npruned += same(m, u, &h, a, b); /* trained row */
        ncases++;
        rf_hist h2;
        rf_hist_from_row(d, (u + 5) % d->n_users, &h2);
        npruned += same(m, u, &h2, a, b); /* trained row, another history */
        npruned += same(m, -1, &h, a, b); /* unknown user: fold-in of h */
        ncases += 2;
    }
    rf_hist empty = {0, NULL, NULL, NULL};
    same(m, -1, &empty, a, b);  /* cold: the pop fallback */
    same(m, 3, &empty, a, b);   /* trained row, no history */
    int32_t odd[3] = {NI - 1, 5, 17}; /* unsorted history, no weights */
    rf_hist ho = {3, odd, NULL, NULL};
    npruned += same(m, -1, &ho, a, b);
    assert_true(npruned >= ncases * 9 / 10); /* the test is about the pruned path */
    free(a);
    free(b);
    rf_model_free(m);
}

static void test_pruned_equals_full(void **state) {
    (void)state;
    rf_events *ev = gen();
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.binary = 1;
    rf_dataset *d;
    rf_err err;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), 0);
    d->events = ev;
    check_model(d, "itemknn=30,userknn=20,ials=40,ease=0,pop=10,trending=10,rules=10,"
                   "trees=30,min_leaf=5");
    check_model(d, "itemknn=0,userknn=0,ials=40,ease=0,pop=10,trending=10,rules=0,"
                   "ranker=weighted");
    rf_dataset_free(d);
    rf_events_free(ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pruned_equals_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
