/* test_split.c - train/test splits: a brute-force oracle for the per-user
 * ratio (Protocol A), time and leave-last-one-out splits, hand-made
 * Protocol A cases (ties, repeated events of one pair, min items), k-fold
 * partition and determinism, validation inside training, failure paths. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "recfuse/rng.h"
#include "recfuse/util.h"

/* ---- fixtures -------------------------------------------------------- */

/* Random log with repeated pairs and timestamp ties; item strings are
 * numbers registered in reverse so dense order differs from natural. */
static rf_events *random_log(uint64_t seed, int nu, int ni, int n) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    char buf[32];
    int32_t id;
    for (int u = 0; u < nu; u++) {
        snprintf(buf, sizeof buf, "user%d", u);
        assert_int_equal(rf_idmap_put(ev->users, buf, strlen(buf), &id, NULL), 0);
    }
    for (int i = 0; i < ni; i++) {
        snprintf(buf, sizeof buf, "%d", ni - 1 - i);
        assert_int_equal(rf_idmap_put(ev->items, buf, strlen(buf), &id, NULL), 0);
    }
    rf_rng r;
    rf_rng_seed(&r, seed);
    for (int k = 0; k < n; k++) {
        int32_t u = (int32_t)rf_rng_below(&r, (uint64_t)nu);
        int32_t i = (int32_t)rf_rng_below(&r, (uint64_t)ni);
        int64_t ts = 1000 + (int64_t)rf_rng_below(&r, 60); /* many ties */
        assert_int_equal(rf_events_push(ev, u, i, (int)rf_rng_below(&r, RF_EV_NTYPES),
                                        (float)k, ts),
                         0);
    }
    return ev;
}

static void push(rf_events *ev, const char *u, const char *i, int64_t ts) {
    assert_int_equal(rf_events_push_str(ev, u, i, RF_EV_VIEW, 1, ts), 0);
}

static rf_split split_ok(int rc, rf_split s, const rf_err *err) {
    if (rc) {
        print_error("split failed: %s\n", err->msg);
        fail();
    }
    return s;
}

/* ---- oracle ---------------------------------------------------------- */

typedef struct pair {
    int32_t item;
    int64_t first;
} pair;

static const rf_idmap *g_items;
static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    int c = rf_natural_cmp(rf_idmap_str(g_items, x->item), rf_idmap_len(g_items, x->item),
                           rf_idmap_str(g_items, y->item), rf_idmap_len(g_items, y->item));
    if (c) return c;
    return (x->item > y->item) - (x->item < y->item);
}

enum { KIND_RATIO, KIND_TIME, KIND_LOO };

/* dest per event: 0 train, 1 test, 2 dropped; O(n * pairs) on purpose. */
static uint8_t *oracle_dest(const rf_events *ev, int kind, int64_t num, int64_t den,
                            int min_items, int64_t cutoff) {
    int32_t nu = rf_idmap_size(ev->users);
    uint8_t *dest = calloc((size_t)ev->n + 1, 1);
    pair *ps = malloc(((size_t)ev->n + 1) * sizeof *ps);
    g_items = ev->items;
    for (int32_t u = 0; u < nu; u++) {
        int64_t np = 0;
        for (int64_t e = 0; e < ev->n; e++) {
            if (ev->user[e] != u) continue;
            int64_t k = 0;
            while (k < np && ps[k].item != ev->item[e]) k++;
            if (k == np) ps[np++] = (pair){ev->item[e], ev->ts[e]};
            else if (ev->ts[e] < ps[k].first) ps[k].first = ev->ts[e];
        }
        qsort(ps, (size_t)np, sizeof *ps, pair_cmp);
        for (int64_t r = 0; r < np; r++) {
            int test;
            if (kind == KIND_RATIO)
                test = np >= min_items && r >= np - (np * num + den - 1) / den;
            else if (kind == KIND_LOO)
                test = np >= min_items && r == np - 1;
            else
                test = ps[r].first >= cutoff;
            for (int64_t e = 0; e < ev->n; e++)
                if (ev->user[e] == u && ev->item[e] == ps[r].item)
                    dest[e] = test ? 1 : (kind == KIND_TIME && ev->ts[e] >= cutoff ? 2 : 0);
        }
    }
    free(ps);
    return dest;
}

static int same_event(const rf_events *a, int64_t i, const rf_events *b, int64_t j) {
    return a->user[i] == b->user[j] && a->item[i] == b->item[j] && a->type[i] == b->type[j] &&
           a->value[i] == b->value[j] && a->ts[i] == b->ts[j];
}

/* train / test are exactly the events with dest 0 / 1, in log order, and
 * borrow the source's id maps. */
static void check_against_dest(const rf_events *ev, const uint8_t *dest, const rf_split *s) {
    assert_ptr_equal(s->train->users, ev->users);
    assert_ptr_equal(s->train->items, ev->items);
    assert_ptr_equal(s->test->users, ev->users);
    assert_ptr_equal(s->test->items, ev->items);
    assert_int_equal(s->train->owns_ids, 0);
    assert_int_equal(s->test->owns_ids, 0);
    int64_t a = 0, b = 0;
    for (int64_t e = 0; e < ev->n; e++) {
        if (dest[e] == 0) {
            assert_true(a < s->train->n && same_event(ev, e, s->train, a));
            a++;
        } else if (dest[e] == 1) {
            assert_true(b < s->test->n && same_event(ev, e, s->test, b));
            b++;
        }
    }
    assert_int_equal(a, s->train->n);
    assert_int_equal(b, s->test->n);
}

/* No (user, item) pair on both sides. */
static void check_no_straddle(const rf_split *s) {
    int32_t nu = rf_idmap_size(s->train->users), ni = rf_idmap_size(s->train->items);
    char *in_train = calloc((size_t)nu * (size_t)ni + 1, 1);
    for (int64_t e = 0; e < s->train->n; e++)
        in_train[(size_t)s->train->user[e] * ni + s->train->item[e]] = 1;
    for (int64_t e = 0; e < s->test->n; e++)
        assert_false(in_train[(size_t)s->test->user[e] * ni + s->test->item[e]]);
    free(in_train);
}

/* ---- tests ----------------------------------------------------------- */

static void test_ratio_oracle(void **state) {
    (void)state;
    const struct {
        double r;
        int64_t num, den;
        int min;
    } cases[] = {{0.2, 1, 5, 5}, {0.25, 1, 4, 3}, {0.3, 3, 10, 0}, {0.5, 1, 2, 5}, {0.1, 1, 10, 2}};
    for (uint64_t seed = 1; seed <= 5; seed++) {
        rf_events *ev = random_log(seed, 20, 30, 600);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            rf_split s;
            rf_err err = {0};
            s = split_ok(rf_split_user_ratio(ev, cases[c].r, cases[c].min, &s, &err), s, &err);
            uint8_t *dest = oracle_dest(ev, KIND_RATIO, cases[c].num, cases[c].den, cases[c].min, 0);
            check_against_dest(ev, dest, &s);
            check_no_straddle(&s);
            assert_int_equal(s.train->n + s.test->n, ev->n); /* union = input */
            free(dest);
            rf_split_free(&s);
            assert_null(s.train);
        }
        rf_events_free(ev);
    }
}

/* Protocol A by hand: counts, ceil without floating point error, ties in
 * time broken by natural id ("2" < "10"), pairs timed by their first
 * event and kept whole, min items counted in distinct items. */
static void test_ratio_protocol_a_hand(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    char it[16];
    /* "10" registered before "2": dense order disagrees with natural. */
    for (int i = 1; i <= 4; i++) {
        snprintf(it, sizeof it, "%d", i + 100);
        push(ev, "a", it, 100 + i); /* a: 4 items -> all train */
    }
    push(ev, "b", "1", 100);
    push(ev, "b", "3", 101);
    push(ev, "b", "10", 200);
    push(ev, "b", "4", 102);
    push(ev, "b", "2", 200); /* tie with "10": "2" first, "10" last */
    for (int i = 0; i < 10; i++) {
        snprintf(it, sizeof it, "%d", 500 + i);
        push(ev, "c", it, 1000 + i); /* c: 10 -> 2 test (not 3) */
    }
    for (int i = 0; i < 15; i++) {
        snprintf(it, sizeof it, "%d", 600 + i);
        push(ev, "d", it, 1000 - i); /* d: 15 -> 3 test, log in reverse time */
    }
    for (int i = 0; i < 6; i++) {
        snprintf(it, sizeof it, "%d", 700 + i);
        push(ev, "e", it, 50); /* e: 6 tied -> 2 test: the naturally largest ids */
    }
    /* f: 5 pairs, 7 events; "x" viewed first (t=1) and bought last: its
     * time is t=1, so it is the earliest pair and stays whole in train. */
    push(ev, "f", "x", 1);
    push(ev, "f", "p", 10);
    push(ev, "f", "q", 20);
    push(ev, "f", "r", 30);
    push(ev, "f", "s", 40);
    push(ev, "f", "x", 1000);
    push(ev, "f", "s", 41);
    /* g: 4 items in 6 events -> all train (n counts pairs) */
    push(ev, "g", "1", 1);
    push(ev, "g", "1", 2);
    push(ev, "g", "2", 3);
    push(ev, "g", "3", 4);
    push(ev, "g", "4", 5);
    push(ev, "g", "4", 6);

    rf_split s;
    rf_err err = {0};
    s = split_ok(rf_split_user_ratio(ev, 0.2, 5, &s, &err), s, &err);
    int per_user[8] = {0};
    for (int64_t e = 0; e < s.test->n; e++) {
        const char *u = rf_idmap_str(ev->users, s.test->user[e]);
        const char *i = rf_idmap_str(ev->items, s.test->item[e]);
        per_user[u[0] - 'a']++;
        if (u[0] == 'b') assert_string_equal(i, "10");
        if (u[0] == 'c') assert_true(!strcmp(i, "508") || !strcmp(i, "509"));
        if (u[0] == 'd') assert_true(!strcmp(i, "600") || !strcmp(i, "601") || !strcmp(i, "602"));
        if (u[0] == 'e') assert_true(!strcmp(i, "704") || !strcmp(i, "705"));
        if (u[0] == 'f') assert_string_equal(i, "s");
    }
    assert_int_equal(per_user[0], 0);
    assert_int_equal(per_user[1], 1);
    assert_int_equal(per_user[2], 2);
    assert_int_equal(per_user[3], 3);
    assert_int_equal(per_user[4], 2);
    assert_int_equal(per_user[5], 2); /* both events of pair "s" */
    assert_int_equal(per_user[6], 0);
    assert_int_equal(s.train->n + s.test->n, ev->n);
    check_no_straddle(&s);
    rf_split_free(&s);

    /* min_items < 0 is the default 5; 0 splits every user */
    s = split_ok(rf_split_user_ratio(ev, 0.2, -1, &s, &err), s, &err);
    assert_int_equal(s.test->n, 10);
    rf_split_free(&s);
    s = split_ok(rf_split_user_ratio(ev, 0.2, 0, &s, &err), s, &err);
    assert_int_equal(s.test->n, 10 + 1 + 2); /* + a: 1 of 4, g: pair "4" (2 events) */
    rf_split_free(&s);
    rf_events_free(ev);
}

static void test_time_split(void **state) {
    (void)state;
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    push(ev, "u", "a", 100);
    push(ev, "u", "a", 600); /* pair a first seen before: this event dropped */
    push(ev, "u", "b", 500); /* logged first, but b is first seen at 400: */
    push(ev, "u", "b", 400); /* a train pair, so the event at 500 is dropped */
    push(ev, "v", "c", 700);
    push(ev, "v", "c", 800);
    push(ev, "v", "d", 499);
    rf_split s;
    rf_err err = {0};
    s = split_ok(rf_split_time(ev, 500, &s, &err), s, &err);
    uint8_t want[] = {0, 2, 2, 0, 1, 1, 0};
    check_against_dest(ev, want, &s);
    rf_split_free(&s);
    rf_events_free(ev);

    for (uint64_t seed = 1; seed <= 4; seed++) {
        ev = random_log(seed, 15, 25, 500);
        int64_t cut = 1000 + 10 * (int64_t)seed;
        s = split_ok(rf_split_time(ev, cut, &s, &err), s, &err);
        uint8_t *dest = oracle_dest(ev, KIND_TIME, 0, 1, 0, cut);
        check_against_dest(ev, dest, &s);
        check_no_straddle(&s);
        for (int64_t e = 0; e < s.train->n; e++) assert_true(s.train->ts[e] < cut);
        for (int64_t e = 0; e < s.test->n; e++) assert_true(s.test->ts[e] >= cut);
        free(dest);
        rf_split_free(&s);
        rf_events_free(ev);
    }
}

static void test_leave_last(void **state) {
    (void)state;
    rf_err err = {0};
    rf_split s;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        rf_events *ev = random_log(seed, 25, 12, 300);
        for (int min = 0; min <= 12; min += 6) {
            s = split_ok(rf_split_leave_last(ev, min, &s, &err), s, &err);
            uint8_t *dest = oracle_dest(ev, KIND_LOO, 0, 1, min, 0);
            check_against_dest(ev, dest, &s);
            check_no_straddle(&s);
            assert_int_equal(s.train->n + s.test->n, ev->n);
            free(dest);
            rf_split_free(&s);
        }
        rf_events_free(ev);
    }
    /* one test pair per user with >= 2 pairs, the latest */
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    push(ev, "a", "1", 5);
    push(ev, "a", "2", 9);
    push(ev, "a", "3", 7);
    push(ev, "b", "1", 5);
    s = split_ok(rf_split_leave_last(ev, 2, &s, &err), s, &err);
    assert_int_equal(s.test->n, 1);
    assert_string_equal(rf_idmap_str(ev->items, s.test->item[0]), "2");
    rf_split_free(&s);
    rf_events_free(ev);
}

static int logs_equal(const rf_events *a, const rf_events *b) {
    if (a->n != b->n) return 0;
    for (int64_t i = 0; i < a->n; i++)
        if (!same_event(a, i, b, i)) return 0;
    return 1;
}

static void test_kfold(void **state) {
    (void)state;
    rf_events *ev = random_log(77, 30, 40, 1500);
    int32_t nu = 30, ni = 40;
    const int K = 4;
    int *fold_of = malloc((size_t)nu * ni * sizeof *fold_of);
    for (int i = 0; i < nu * ni; i++) fold_of[i] = -1;
    int *per_user = calloc((size_t)nu * K, sizeof *per_user);
    rf_err err = {0};
    for (int f = 0; f < K; f++) {
        rf_split s, s2;
        s = split_ok(rf_split_kfold(ev, K, f, 1234, &s, &err), s, &err);
        s2 = split_ok(rf_split_kfold(ev, K, f, 1234, &s2, &err), s2, &err);
        assert_true(logs_equal(s.train, s2.train) && logs_equal(s.test, s2.test));
        assert_int_equal(s.train->n + s.test->n, ev->n);
        check_no_straddle(&s);
        for (int64_t e = 0; e < s.test->n; e++) {
            int c = s.test->user[e] * ni + s.test->item[e];
            assert_true(fold_of[c] == -1 || fold_of[c] == f); /* in one fold only */
            if (fold_of[c] == -1) per_user[s.test->user[e] * K + f]++;
            fold_of[c] = f;
        }
        rf_split_free(&s);
        rf_split_free(&s2);
    }
    /* every pair is in some fold; each user's folds differ by <= 1 pair */
    for (int64_t e = 0; e < ev->n; e++) assert_true(fold_of[ev->user[e] * ni + ev->item[e]] >= 0);
    for (int u = 0; u < nu; u++) {
        int lo = 1 << 30, hi = 0;
        for (int f = 0; f < K; f++) {
            if (per_user[u * K + f] < lo) lo = per_user[u * K + f];
            if (per_user[u * K + f] > hi) hi = per_user[u * K + f];
        }
        assert_true(hi - lo <= 1);
    }
    /* another seed gives another partition */
    rf_split a, b;
    a = split_ok(rf_split_kfold(ev, K, 0, 1234, &a, &err), a, &err);
    b = split_ok(rf_split_kfold(ev, K, 0, 99, &b, &err), b, &err);
    assert_false(logs_equal(a.test, b.test));
    rf_split_free(&a);
    rf_split_free(&b);
    free(fold_of);
    free(per_user);
    rf_events_free(ev);
}

/* Validation split = the same function on the train log: inside training. */
static void test_validation_inside_train(void **state) {
    (void)state;
    rf_events *ev = random_log(5, 20, 30, 800);
    rf_err err = {0};
    rf_split s, v;
    s = split_ok(rf_split_user_ratio(ev, 0.2, 5, &s, &err), s, &err);
    v = split_ok(rf_split_user_ratio(s.train, 0.2, 5, &v, &err), v, &err);
    assert_ptr_equal(v.train->users, ev->users);
    assert_ptr_equal(v.test->items, ev->items);
    assert_int_equal(v.train->n + v.test->n, s.train->n);
    uint8_t *dest = oracle_dest(s.train, KIND_RATIO, 1, 5, 5, 0);
    check_against_dest(s.train, dest, &v);
    free(dest);
    /* no validation pair is a test pair */
    rf_split vt = {v.test, s.test};
    check_no_straddle(&vt);
    rf_split_free(&v);
    rf_split_free(&s);
    rf_events_free(ev);
}

static void test_threads_and_empty(void **state) {
    (void)state;
    rf_events *ev = random_log(8, 400, 300, 300000); /* parallel bucketing too */
    rf_err err = {0};
    rf_split a, b;
    rf_set_threads(1);
    a = split_ok(rf_split_user_ratio(ev, 0.2, 5, &a, &err), a, &err);
    rf_set_threads(3);
    b = split_ok(rf_split_user_ratio(ev, 0.2, 5, &b, &err), b, &err);
    assert_true(logs_equal(a.train, b.train) && logs_equal(a.test, b.test));
    rf_split_free(&a);
    rf_split_free(&b);
    rf_set_threads(1);
    a = split_ok(rf_split_kfold(ev, 5, 2, 7, &a, &err), a, &err);
    rf_set_threads(4);
    b = split_ok(rf_split_kfold(ev, 5, 2, 7, &b, &err), b, &err);
    rf_set_threads(0);
    assert_true(logs_equal(a.train, b.train) && logs_equal(a.test, b.test));
    rf_split_free(&a);
    rf_split_free(&b);
    rf_events_free(ev);

    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    a = split_ok(rf_split_user_ratio(ev, 0.2, 5, &a, &err), a, &err);
    assert_int_equal(a.train->n, 0);
    assert_int_equal(a.test->n, 0);
    rf_split_free(&a);
    a = split_ok(rf_split_time(ev, 0, &a, &err), a, &err);
    rf_split_free(&a);
    a = split_ok(rf_split_kfold(ev, 3, 0, 1, &a, &err), a, &err);
    rf_split_free(&a);
    rf_split_free(NULL);
    rf_events_free(ev);
}

static void test_errors(void **state) {
    (void)state;
    rf_events *ev = random_log(1, 5, 5, 50);
    rf_split s = {0};
    rf_err err = {0};
    assert_int_equal(rf_split_user_ratio(ev, 0.0, 5, &s, &err), RF_EINVAL);
    assert_int_equal(rf_split_user_ratio(ev, 1.0, 5, &s, &err), RF_EINVAL);
    assert_int_equal(rf_split_user_ratio(NULL, 0.2, 5, &s, &err), RF_EINVAL);
    assert_int_equal(rf_split_kfold(ev, 1, 0, 1, &s, &err), RF_EINVAL);
    assert_int_equal(rf_split_kfold(ev, 3, 3, 1, &s, &err), RF_EINVAL);
    assert_int_equal(rf_split_kfold(ev, 3, -1, 1, &s, &err), RF_EINVAL);
    ev->user[4] = 5;
    assert_int_equal(rf_split_leave_last(ev, 2, &s, &err), RF_ERANGE);
    assert_non_null(strstr(err.msg, "event 4"));
    assert_null(s.train);
    assert_null(s.test);
    rf_events_free(ev);
}

static void test_alloc_failures(void **state) {
    (void)state;
    rf_events *ev = random_log(3, 10, 10, 200);
    rf_set_threads(2);
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        rf_split s = {0};
        rf_mem_fail_after(k);
        int rc = rf_split_kfold(ev, 3, 1, 5, &s, NULL);
        rf_mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            rf_split_free(&s);
        } else {
            assert_int_equal(rc, RF_ENOMEM);
            assert_null(s.train);
            assert_null(s.test);
        }
    }
    assert_true(ok);
    rf_set_threads(0);
    rf_events_free(ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratio_oracle),
        cmocka_unit_test(test_ratio_protocol_a_hand),
        cmocka_unit_test(test_time_split),
        cmocka_unit_test(test_leave_last),
        cmocka_unit_test(test_kfold),
        cmocka_unit_test(test_validation_inside_train),
        cmocka_unit_test(test_threads_and_empty),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
