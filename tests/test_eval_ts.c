/* test_eval_ts.c - histories carry event times in offline evaluation:
 * rf_hist_from_row_ts fills ts from d->ts_base + d->ui_ts, and
 * rf_evaluate passes them to the model, so a time-aware parameter
 * (itemknn's half_life) changes offline scores.
 *
 * Data, built by hand: items a0..a4 and b0..b4; 20 users take all a
 * items, 20 all b items (so item-kNN links a's with a's and b's with b's);
 * 10 test users took a0..a3 a hundred days ago and b0 today, and their
 * test items are b1..b4. Without decay the four a items outvote b0 and a4
 * ranks first (P@1 = 0); with half_life = 1 day the old a items weigh
 * 2^-100 and a b item ranks first (P@1 = 1). */
#include <stdlib.h>
#include <string.h>

#include "recfuse/csr.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/eval.h"
#include "recfuse/log.h"
#include "recfuse/model.h"
#include "testutil.h"

enum { N_A = 20, N_B = 20, N_T = 10, NU = N_A + N_B + N_T, NI = 10 };
#define DAY 86400

typedef struct world {
    rf_test_ds *ds;
    rf_csr *test;
} world;

static world make_world(void) {
    int32_t r[NU * NI], c[NU * NI], tr[N_T * 4], tc[N_T * 4];
    int64_t n = 0, nt = 0;
    for (int32_t u = 0; u < NU; u++)
        for (int32_t i = 0; i < NI; i++) {
            int take = u < N_A ? i < 5 : u < N_A + N_B ? i >= 5 : (i < 4 || i == 5);
            if (take) {
                r[n] = u;
                c[n] = i;
                n++;
            } else if (u >= N_A + N_B && i > 5) {
                tr[nt] = u;
                tc[nt] = i;
                nt++;
            }
        }
    world w;
    w.ds = rf_test_ds_new(NU, "u", NULL, NI, "i", NULL, n, r, c, NULL);
    rf_dataset *d = w.ds->d;
    d->ts_max = d->ts_base + 100 * DAY;
    for (int32_t u = 0; u < NU; u++) /* test users' a items are old, all else new */
        for (int64_t q = d->ui->indptr[u]; q < d->ui->indptr[u + 1]; q++)
            d->ui_ts[q] = u >= N_A + N_B && d->ui->indices[q] < 5 ? 0 : 100 * DAY;
    assert_int_equal(rf_csr_from_coo(NU, NI, nt, tr, tc, NULL, RF_FOLD_SUM, &w.test, NULL), 0);
    return w;
}

static void test_hist_from_row_ts(void **state) {
    (void)state;
    world w = make_world();
    const rf_dataset *d = w.ds->d;
    int64_t ts[NI];
    rf_hist h;
    rf_hist_from_row_ts(d, NU - 1, ts, &h);
    assert_int_equal(h.n, 5);
    assert_ptr_equal(h.ts, ts);
    for (int32_t k = 0; k < h.n; k++)
        assert_true(ts[k] == d->ts_base + (h.items[k] < 5 ? 0 : 100 * DAY));
    rf_hist_from_row(d, NU - 1, &h); /* the time-free form */
    assert_int_equal(h.n, 5);
    assert_null(h.ts);
    rf_hist_from_row_ts(d, NU, ts, &h); /* out of range: empty */
    assert_int_equal(h.n, 0);
    assert_null(h.ts);
    rf_test_ds_free(w.ds);
    rf_csr_free(w.test);
}

static double p_at_1(const world *w, const char *params) {
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_new("itemknn", &m, &err) || rf_model_set_params(m, params, &err) ||
        rf_model_fit(m, w->ds->d, &err))
        fail_msg("itemknn %s: %s", params, err.msg);
    int ks[1] = {1};
    rf_eval_result res;
    if (rf_evaluate(m, w->ds->d, w->test, ks, 1, &res, &err)) fail_msg("evaluate: %s", err.msg);
    assert_int_equal(res.n_users, N_T);
    double p = res.value[0][RF_M_PRECISION];
    rf_eval_result_free(&res);
    rf_model_free(m);
    return p;
}

static void test_half_life_offline(void **state) {
    (void)state;
    world w = make_world();
    double p0 = p_at_1(&w, "half_life=0"), p1 = p_at_1(&w, "half_life=1");
    print_message("P@1: no decay %.2f, half_life=1 %.2f\n", p0, p1);
    assert_true(p0 == 0.0);
    assert_true(p1 == 1.0);
    rf_test_ds_free(w.ds);
    rf_csr_free(w.test);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_from_row_ts),
        cmocka_unit_test(test_half_life_offline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
