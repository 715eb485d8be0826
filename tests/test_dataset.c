/* test_dataset.c - rf_dataset_build against a brute-force dense oracle,
 * transpose consistency, options and weight parsing, failure paths. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"

/* A random log over `nu` x `ni` id maps (every id registered, so some
 * users / items have no events), with many repeated pairs, all types and
 * out-of-order timestamps. */
static rf_events *random_log(uint64_t seed, int nu, int ni, int n) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    char buf[32];
    for (int u = 0; u < nu; u++) {
        int32_t id;
        snprintf(buf, sizeof buf, "u%d", u);
        assert_int_equal(rf_idmap_put(ev->users, buf, strlen(buf), &id, NULL), 0);
    }
    for (int i = 0; i < ni; i++) {
        int32_t id;
        snprintf(buf, sizeof buf, "%d", ni - 1 - i); /* dense order != natural */
        assert_int_equal(rf_idmap_put(ev->items, buf, strlen(buf), &id, NULL), 0);
    }
    rf_rng r;
    rf_rng_seed(&r, seed);
    /* Users and items in the upper third never get events. */
    int au = nu - nu / 3 > 0 ? nu - nu / 3 : 1, ai = ni - ni / 3 > 0 ? ni - ni / 3 : 1;
    for (int k = 0; k < n; k++) {
        int32_t u = (int32_t)rf_rng_below(&r, (uint64_t)au);
        int32_t i = (int32_t)rf_rng_below(&r, (uint64_t)ai);
        int t = (int)rf_rng_below(&r, RF_EV_NTYPES);
        float v = (float)(1 + rf_rng_below(&r, 5));
        int64_t ts = 1700000000 + (int64_t)rf_rng_below(&r, 100 * 86400);
        if (rf_rng_below(&r, 8) == 0 && k > 0) ts = ev->ts[k - 1]; /* timestamp ties */
        assert_int_equal(rf_events_push(ev, u, i, t, v, ts), 0);
    }
    return ev;
}

/* Brute-force dense recomputation of the dataset. present[u*ni+i] = 1 if
 * the pair has a kept event. */
typedef struct dense {
    int nu, ni;
    double *val;
    int64_t *ts;
    int64_t *last_ts; /* ts of the event currently defining LAST */
    char *present;
} dense;

static dense oracle(const rf_events *ev, const rf_dataset_opts *o) {
    dense D;
    D.nu = rf_idmap_size(ev->users);
    D.ni = rf_idmap_size(ev->items);
    size_t N = (size_t)D.nu * (size_t)D.ni;
    D.val = calloc(N ? N : 1, sizeof *D.val);
    D.ts = calloc(N ? N : 1, sizeof *D.ts);
    D.last_ts = calloc(N ? N : 1, sizeof *D.last_ts);
    D.present = calloc(N ? N : 1, 1);
    int64_t tmax = INT64_MIN;
    for (int64_t e = 0; e < ev->n; e++)
        if (ev->ts[e] > tmax) tmax = ev->ts[e];
    int64_t now = o->now ? o->now : tmax;
    for (int64_t e = 0; e < ev->n; e++) {
        if (o->type_weight[ev->type[e]] == 0.0f) continue;
        double w = o->type_weight[ev->type[e]];
        if (o->use_value) w *= ev->value[e];
        if (o->half_life_days > 0) {
            double age = (double)(now - ev->ts[e]);
            if (age < 0) age = 0;
            w *= pow(0.5, age / (o->half_life_days * 86400.0));
        }
        size_t c = (size_t)ev->user[e] * (size_t)D.ni + (size_t)ev->item[e];
        if (!D.present[c]) {
            D.present[c] = 1;
            D.val[c] = w;
            D.ts[c] = ev->ts[e];
            D.last_ts[c] = ev->ts[e];
            continue;
        }
        if (o->fold == RF_FOLD_SUM) D.val[c] += w;
        if (o->fold == RF_FOLD_MAX && w > D.val[c]) D.val[c] = w;
        if (o->fold == RF_FOLD_LAST && ev->ts[e] >= D.last_ts[c]) {
            D.val[c] = w;
            D.last_ts[c] = ev->ts[e];
        }
        if (ev->ts[e] > D.ts[c]) D.ts[c] = ev->ts[e];
    }
    if (o->binary)
        for (size_t c = 0; c < N; c++)
            if (D.present[c]) D.val[c] = 1.0;
    return D;
}

static void dense_free(dense *D) {
    free(D->val);
    free(D->ts);
    free(D->last_ts);
    free(D->present);
}

static void check_csr_valid(const rf_csr *m) {
    assert_int_equal(m->indptr[0], 0);
    assert_int_equal(m->indptr[m->nrows], m->nnz);
    for (int32_t r = 0; r < m->nrows; r++) {
        assert_true(m->indptr[r] <= m->indptr[r + 1]);
        for (int64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++) {
            assert_true(m->indices[p] >= 0 && m->indices[p] < m->ncols);
            if (p > m->indptr[r]) assert_true(m->indices[p - 1] < m->indices[p]);
        }
    }
}

/* The dataset equals the oracle, iu is the transpose of ui. */
static void check_against_oracle(const rf_events *ev, const rf_dataset_opts *o,
                                 const rf_dataset *d) {
    dense D = oracle(ev, o);
    assert_int_equal(d->n_users, D.nu);
    assert_int_equal(d->n_items, D.ni);
    assert_ptr_equal(d->users, ev->users);
    assert_ptr_equal(d->items, ev->items);
    check_csr_valid(d->ui);
    check_csr_valid(d->iu);
    assert_int_equal(d->ui->nrows, D.nu);
    assert_int_equal(d->ui->ncols, D.ni);
    assert_int_equal(d->iu->nrows, D.ni);
    assert_int_equal(d->iu->ncols, D.nu);
    int64_t npresent = 0;
    for (int u = 0; u < D.nu; u++)
        for (int i = 0; i < D.ni; i++) npresent += D.present[(size_t)u * D.ni + i];
    assert_int_equal(d->ui->nnz, npresent);
    assert_int_equal(d->iu->nnz, npresent);
    for (int32_t u = 0; u < d->n_users; u++)
        for (int64_t p = d->ui->indptr[u]; p < d->ui->indptr[u + 1]; p++) {
            int32_t i = d->ui->indices[p];
            size_t c = (size_t)u * D.ni + (size_t)i;
            assert_true(D.present[c]);
            double want = D.val[c], got = d->ui->data[p];
            if (fabs(want - got) > 1e-5 * (1 + fabs(want))) {
                print_error("user %d item %d: want %.9g got %.9g\n", u, i, want, got);
                fail();
            }
            assert_int_equal((int64_t)d->ui_ts[p] + d->ts_base, D.ts[c]);
            /* transpose holds the same value */
            assert_true(rf_csr_get(d->iu, i, u) == d->ui->data[p]);
        }
    dense_free(&D);
}

static rf_dataset *build_ok(const rf_events *ev, const rf_dataset_opts *o) {
    rf_dataset *d = NULL;
    rf_err err = {0};
    int rc = rf_dataset_build(ev, o, &d, &err);
    if (rc) {
        print_error("build: %s\n", err.msg);
        fail();
    }
    return d;
}

static void test_oracle_variants(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        rf_events *ev = random_log(seed, 12 + (int)seed, 15 + 2 * (int)seed, 400);
        for (int variant = 0; variant < 12; variant++) {
            rf_dataset_opts o;
            rf_dataset_opts_default(&o);
            o.fold = (rf_fold)(variant % 3);
            o.use_value = (variant / 3) % 2;
            if (variant >= 6) o.half_life_days = 3.5 + variant;
            if (variant == 7) o.now = 1700000000 + 50 * 86400; /* some events after now */
            if (variant == 8) o.binary = 1;
            if (variant == 9) o.type_weight[RF_EV_VIEW] = 0; /* views dropped */
            if (variant == 10) {
                o.type_weight[RF_EV_CLICK] = 0;
                o.binary = 1;
            }
            if (variant == 11) o.type_weight[RF_EV_RATING] = -2.5f;
            rf_dataset *d = build_ok(ev, &o);
            check_against_oracle(ev, &o, d);
            assert_true(rf_dataset_bytes(d) > 0);
            rf_dataset_free(d);
        }
        rf_events_free(ev);
    }
}

static void test_defaults_and_null_opts(void **state) {
    (void)state;
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    assert_true(o.type_weight[RF_EV_VIEW] == 1 && o.type_weight[RF_EV_CLICK] == 1 &&
                o.type_weight[RF_EV_CART] == 3 && o.type_weight[RF_EV_PURCHASE] == 5 &&
                o.type_weight[RF_EV_RATING] == 1 && o.type_weight[RF_EV_CUSTOM] == 1);
    assert_int_equal(o.use_value, 0);
    assert_true(o.half_life_days == 0);
    assert_int_equal(o.fold, RF_FOLD_SUM);
    assert_int_equal(o.binary, 0);
    assert_null(rf_dataset_opts_check(&o));
    rf_events *ev = random_log(9, 10, 10, 200);
    rf_dataset *d = build_ok(ev, NULL);
    check_against_oracle(ev, &o, d);
    rf_dataset_free(d);
    rf_events_free(ev);
}

/* Distinct users with events; option equality field by field. */
static void test_count_users_and_opts_equal(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    assert_int_equal(rf_events_count_users(ev), 0);
    assert_int_equal(rf_events_push_str(ev, "alice", "sku1", RF_EV_VIEW, 1, 1), 0);
    assert_int_equal(rf_events_push_str(ev, "bob", "sku1", RF_EV_VIEW, 1, 2), 0);
    assert_int_equal(rf_events_push_str(ev, "alice", "sku2", RF_EV_CART, 1, 3), 0);
    assert_int_equal(rf_events_count_users(ev), 2);
    rf_events_free(ev);
    rf_dataset_opts a, b;
    rf_dataset_opts_default(&a);
    rf_dataset_opts_default(&b);
    assert_true(rf_dataset_opts_equal(&a, &b));
    b.type_weight[RF_EV_CART] = 2;
    assert_false(rf_dataset_opts_equal(&a, &b));
    b = a;
    b.half_life_days = 7;
    assert_false(rf_dataset_opts_equal(&a, &b));
    b = a;
    b.binary = 1;
    assert_false(rf_dataset_opts_equal(&a, &b));
}

/* View then purchase of one pair: sum 1 + 5, max 5, last = purchase;
 * ts carried is the latest; log order out of time order. */
static void test_hand_fold(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    assert_int_equal(rf_events_push_str(ev, "alice", "sku1", RF_EV_PURCHASE, 1, 1000), 0);
    assert_int_equal(rf_events_push_str(ev, "alice", "sku1", RF_EV_VIEW, 1, 900), 0);
    assert_int_equal(rf_events_push_str(ev, "bob", "sku2", RF_EV_CART, 2, 950), 0);
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    rf_dataset *d = build_ok(ev, &o);
    assert_int_equal(d->ts_base, 900);
    assert_int_equal(d->ts_max, 1000);
    assert_true(rf_csr_get(d->ui, 0, 0) == 6.0f);
    assert_int_equal(d->ui_ts[0], 100);
    rf_dataset_free(d);
    o.fold = RF_FOLD_LAST; /* latest by time is the purchase, though logged first */
    d = build_ok(ev, &o);
    assert_true(rf_csr_get(d->ui, 0, 0) == 5.0f);
    rf_dataset_free(d);
    o.fold = RF_FOLD_MAX;
    o.use_value = 1;
    d = build_ok(ev, &o);
    assert_true(rf_csr_get(d->ui, 1, 1) == 6.0f);
    rf_dataset_free(d);
    o.fold = RF_FOLD_SUM;
    o.use_value = 0;
    o.half_life_days = 100.0 / 86400.0; /* 100 s half-life, now = 1000 */
    d = build_ok(ev, &o);
    assert_true(fabsf(rf_csr_get(d->ui, 0, 0) - 5.5f) < 1e-6f);
    assert_true(fabsf(rf_csr_get(d->ui, 1, 1) - 3.0f * 0.70710678f) < 1e-6f);
    rf_dataset_free(d);
    rf_events_free(ev);
}

static void test_empty_and_idle(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    rf_dataset *d = build_ok(ev, NULL);
    assert_int_equal(d->n_users, 0);
    assert_int_equal(d->n_items, 0);
    assert_int_equal(d->ui->nnz, 0);
    assert_int_equal(d->iu->nnz, 0);
    assert_int_equal(d->ts_base, 0);
    rf_dataset_free(d);
    /* ids registered without events get empty rows and columns */
    int32_t id;
    assert_int_equal(rf_idmap_put(ev->users, "ghost", 5, &id, NULL), 0);
    assert_int_equal(rf_idmap_put(ev->items, "x", 1, &id, NULL), 0);
    assert_int_equal(rf_events_push_str(ev, "u", "y", RF_EV_VIEW, 1, 5), 0);
    d = build_ok(ev, NULL);
    assert_int_equal(d->n_users, 2);
    assert_int_equal(d->n_items, 2);
    assert_int_equal(rf_csr_row_len(d->ui, 0), 0);
    assert_int_equal(rf_csr_row_len(d->ui, 1), 1);
    assert_int_equal(rf_csr_row_len(d->iu, 0), 0);
    assert_int_equal(d->ts_base, 5);
    assert_int_equal(d->ui_ts[0], 0);
    rf_dataset_free(d);
    rf_dataset_free(NULL);
    rf_events_free(ev);
}

static int same_dataset(const rf_dataset *a, const rf_dataset *b) {
    const rf_csr *m[2][2] = {{a->ui, b->ui}, {a->iu, b->iu}};
    for (int k = 0; k < 2; k++) {
        const rf_csr *x = m[k][0], *y = m[k][1];
        if (x->nrows != y->nrows || x->nnz != y->nnz) return 0;
        if (memcmp(x->indptr, y->indptr, ((size_t)x->nrows + 1) * 8) ||
            memcmp(x->indices, y->indices, (size_t)x->nnz * 4) ||
            memcmp(x->data, y->data, (size_t)x->nnz * 4))
            return 0;
    }
    return memcmp(a->ui_ts, b->ui_ts, (size_t)a->ui->nnz * 4) == 0;
}

/* Same bytes for any thread count; large enough for the parallel transpose. */
static void test_deterministic_threads(void **state) {
    (void)state;
    rf_events *ev = random_log(42, 3000, 500, 300000); /* parallel bucketing too */
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.half_life_days = 10;
    rf_set_threads(1);
    rf_dataset *a = build_ok(ev, &o);
    rf_set_threads(4);
    rf_dataset *b = build_ok(ev, &o);
    rf_set_threads(3);
    rf_dataset *c = build_ok(ev, &o);
    rf_set_threads(0);
    assert_true(same_dataset(a, b));
    assert_true(same_dataset(a, c));
    check_against_oracle(ev, &o, b);
    rf_dataset_free(a);
    rf_dataset_free(b);
    rf_dataset_free(c);
    rf_events_free(ev);
}

static void test_errors(void **state) {
    (void)state;
    rf_events *ev = random_log(3, 5, 5, 30);
    rf_dataset *d = NULL;
    rf_err err = {0};
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    o.half_life_days = -1;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "half_life"));
    rf_dataset_opts_default(&o);
    o.type_weight[RF_EV_CART] = NAN;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), RF_EINVAL);
    rf_dataset_opts_default(&o);
    o.fold = (rf_fold)7;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), RF_EINVAL);
    rf_dataset_opts_default(&o);
    ev->item[7] = 99; /* beyond the item map */
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), RF_ERANGE);
    assert_non_null(strstr(err.msg, "event 7"));
    ev->item[7] = 0;
    ev->type[3] = 200;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), RF_ERANGE);
    ev->type[3] = 0;
    ev->ts[0] = 0;
    ev->ts[1] = (int64_t)1 << 33;
    assert_int_equal(rf_dataset_build(ev, &o, &d, &err), RF_ERANGE);
    assert_null(d);
    rf_events_free(ev);
}

/* Every allocation failure returns RF_ENOMEM and leaks nothing (ASan). */
static void test_alloc_failures(void **state) {
    (void)state;
    rf_events *ev = random_log(5, 20, 20, 300);
    rf_set_threads(2);
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        rf_dataset *d = NULL;
        rf_err err = {0};
        rf_mem_fail_after(k);
        int rc = rf_dataset_build(ev, NULL, &d, &err);
        rf_mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            rf_dataset_free(d);
        } else {
            assert_int_equal(rc, RF_ENOMEM);
            assert_null(d);
        }
    }
    assert_true(ok);
    rf_csr *m = NULL;
    for (long k = 0; k < 3; k++) {
        rf_mem_fail_after(k);
        int rc = rf_events_to_csr_binary(ev, &m, NULL);
        rf_mem_fail_after(-1);
        assert_int_equal(rc, RF_ENOMEM);
    }
    rf_set_threads(0);
    rf_events_free(ev);
}

static void test_to_csr_binary(void **state) {
    (void)state;
    rf_events *ev = random_log(11, 9, 13, 250);
    rf_csr *m = NULL;
    rf_err err = {0};
    assert_int_equal(rf_events_to_csr_binary(ev, &m, &err), 0);
    assert_int_equal(m->nrows, 9);
    assert_int_equal(m->ncols, 13);
    check_csr_valid(m);
    int seen[9][13];
    memset(seen, 0, sizeof seen);
    for (int64_t e = 0; e < ev->n; e++) seen[ev->user[e]][ev->item[e]] = 1;
    int64_t cnt = 0;
    for (int u = 0; u < 9; u++)
        for (int i = 0; i < 13; i++) {
            cnt += seen[u][i];
            assert_true(rf_csr_get(m, u, i) == (float)seen[u][i]);
        }
    assert_int_equal(m->nnz, cnt);
    rf_csr_free(m);
    ev->user[2] = -1;
    assert_int_equal(rf_events_to_csr_binary(ev, &m, &err), RF_ERANGE);
    rf_events_free(ev);
}

static void test_parse_weights(void **state) {
    (void)state;
    rf_dataset_opts o;
    rf_dataset_opts_default(&o);
    rf_err err = {0};
    assert_int_equal(rf_dataset_parse_weights(&o, "view=0.5, cart = 2,purchase=7", &err), 0);
    assert_true(o.type_weight[RF_EV_VIEW] == 0.5f);
    assert_true(o.type_weight[RF_EV_CART] == 2.0f);
    assert_true(o.type_weight[RF_EV_PURCHASE] == 7.0f);
    assert_true(o.type_weight[RF_EV_CLICK] == 1.0f); /* unchanged */
    assert_int_equal(rf_dataset_parse_weights(&o, "add_to_cart=4,BUY=9,rating=-1", &err), 0);
    assert_true(o.type_weight[RF_EV_CART] == 4.0f);
    assert_true(o.type_weight[RF_EV_PURCHASE] == 9.0f);
    assert_true(o.type_weight[RF_EV_RATING] == -1.0f);
    assert_int_equal(rf_dataset_parse_weights(&o, "  ", &err), 0);

    rf_dataset_opts before = o;
    struct {
        const char *spec, *needle;
    } bad[] = {{"view=1,kart=3", "unknown event type 'kart'"},
               {"view=1,cart=3x", "weight '3x'"},
               {"view", "entry 1 'view': expected type=weight"},
               {"view=1,,cart=2", "entry 2 is empty"},
               {"view=1,", "entry 2 is empty"},
               {"click=nan", "'nan'"},
               {"click=1e99", "'1e99'"},
               {"=3", "unknown event type ''"},
               {"cart=", "weight ''"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rf_err_clear(&err);
        assert_int_equal(rf_dataset_parse_weights(&o, bad[k].spec, &err), RF_EINVAL);
        if (!strstr(err.msg, bad[k].needle)) {
            print_error("'%s': message '%s' lacks '%s'\n", bad[k].spec, err.msg, bad[k].needle);
            fail();
        }
        assert_memory_equal(&o, &before, sizeof o); /* unchanged on error */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_variants),
        cmocka_unit_test(test_defaults_and_null_opts),
        cmocka_unit_test(test_hand_fold),
        cmocka_unit_test(test_count_users_and_opts_equal),
        cmocka_unit_test(test_empty_and_idle),
        cmocka_unit_test(test_deterministic_threads),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_to_csr_binary),
        cmocka_unit_test(test_parse_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
