/* test_rerank.c - business rules are always honoured: a property test
 * over random requests (random catalogs, histories, rules, candidate
 * lists), plus hand-checked cases for MMR, demotion and pins. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/rerank.h"
#include "recfuse/rng.h"
#include "testutil.h"

#define NI 120
#define NCAT 6

static int has(const int32_t *a, int32_t n, int32_t v) {
    for (int32_t i = 0; i < n; i++)
        if (a[i] == v) return 1;
    return 0;
}

static int pinned(const rf_rerank_req *r, int32_t it) {
    for (int32_t q = 0; q < r->n_pins; q++)
        if (r->pins[q].item == it && !has(r->blocked, r->n_blocked, it)) return 1;
    return 0;
}

/* Would a non-pinned candidate pass rules 1-4? */
static int admissible(const rf_rerank_req *r, int32_t it) {
    if (has(r->blocked, r->n_blocked, it) || pinned(r, it)) return 0;
    if (has(r->bought, r->n_bought, it) &&
        !(r->category[it] >= 0 && r->repeat_ok[r->category[it]]))
        return 0;
    double p = r->price[it];
    if ((!isnan(r->min_price) || !isnan(r->max_price)) &&
        (isnan(p) || (!isnan(r->min_price) && p < r->min_price) ||
         (!isnan(r->max_price) && p > r->max_price)))
        return 0;
    if (r->oos == RF_OOS_EXCLUDE && r->stock[it] == 0) return 0;
    return 1;
}

static void test_property(void **state) {
    (void)state;
    rf_rng g;
    rf_rng_seed(&g, 2024);
    int32_t cat[NI];
    double price[NI];
    int64_t stock[NI];
    uint8_t repeat_ok[NCAT];
    int checked = 0, full = 0;
    for (int iter = 0; iter < 3000; iter++) {
        for (int i = 0; i < NI; i++) {
            cat[i] = rf_rng_below(&g, 10) == 0 ? -1 : (int32_t)rf_rng_below(&g, NCAT);
            price[i] = rf_rng_below(&g, 10) == 0 ? NAN : 1 + 99 * rf_rng_uniform(&g);
            int s = (int)rf_rng_below(&g, 4);
            stock[i] = s == 0 ? 0 : s == 1 ? -1 : (int64_t)rf_rng_below(&g, 50) + 1;
        }
        for (int c = 0; c < NCAT; c++) repeat_ok[c] = rf_rng_below(&g, 3) == 0;
        rf_rerank_req r;
        rf_rerank_req_init(&r, NI);
        r.category = cat;
        r.price = price;
        r.stock = stock;
        r.repeat_ok = repeat_ok;
        r.n_categories = NCAT;
        int32_t bought[20], blocked[10];
        r.n_bought = (int32_t)rf_rng_below(&g, 20);
        for (int i = 0; i < r.n_bought; i++) bought[i] = (int32_t)rf_rng_below(&g, NI);
        r.bought = bought;
        r.n_blocked = (int32_t)rf_rng_below(&g, 10);
        for (int i = 0; i < r.n_blocked; i++) blocked[i] = (int32_t)rf_rng_below(&g, NI);
        r.blocked = blocked;
        if (rf_rng_below(&g, 2)) r.min_price = 100 * rf_rng_uniform(&g) * 0.5;
        if (rf_rng_below(&g, 2)) r.max_price = 50 + 50 * rf_rng_uniform(&g);
        r.oos = (rf_oos_mode)rf_rng_below(&g, 3);
        r.cat_cap = (int)rf_rng_below(&g, 4);
        rf_boost boosts[5];
        r.n_boosts = (int32_t)rf_rng_below(&g, 5);
        for (int i = 0; i < r.n_boosts; i++) {
            boosts[i].item = (int32_t)rf_rng_below(&g, NI);
            boosts[i].boost = (float)rf_rng_uniform(&g);
        }
        r.boosts = boosts;
        int k = 1 + (int)rf_rng_below(&g, 15);
        rf_pin pins[4];
        r.n_pins = (int32_t)rf_rng_below(&g, 4);
        int used_pos[32] = {0};
        for (int i = 0; i < r.n_pins; i++) {
            int pos;
            do pos = (int)rf_rng_below(&g, (uint64_t)k + 3);
            while (used_pos[pos]);
            used_pos[pos] = 1;
            pins[i].pos = pos;
            pins[i].item = (int32_t)rf_rng_below(&g, NI);
        }
        r.pins = pins;
        int mmr = (int)rf_rng_below(&g, 3);
        r.lambda = mmr == 0 ? 1 : mmr == 1 ? 0.5 : 0;
        r.sim = rf_cat_sim;
        r.sim_ud = cat;
        /* candidates: a random subset with random scores */
        rf_scored cands[NI];
        int32_t n = 0;
        uint8_t is_cand[NI] = {0};
        for (int i = 0; i < NI; i++)
            if (rf_rng_below(&g, 2)) {
                cands[n].id = i;
                cands[n++].score = (float)rf_rng_normal(&g);
                is_cand[i] = 1;
            }
        rf_scored out[32];
        rf_err err;
        int got = rf_rerank(&r, cands, n, k, out, &err);
        assert_true(got >= 0 && got <= k);
        /* distinct items */
        for (int a = 0; a < got; a++)
            for (int b = a + 1; b < got; b++) assert_int_not_equal(out[a].id, out[b].id);
        int32_t catn[NCAT] = {0}, pinn[NCAT] = {0};
        int seen_oos = 0;
        float prev = INFINITY;
        for (int a = 0; a < got; a++) {
            int32_t it = out[a].id;
            assert_false(has(blocked, r.n_blocked, it)); /* blocking always wins */
            if (pinned(&r, it)) {
                if (cat[it] >= 0) pinn[cat[it]]++;
                continue;
            }
            assert_true(is_cand[it]);
            assert_true(admissible(&r, it)); /* bought / price / stock rules */
            if (cat[it] >= 0) catn[cat[it]]++;
            if (r.oos == RF_OOS_DEMOTE) {
                if (stock[it] == 0) seen_oos = 1;
                else assert_false(seen_oos); /* no in-stock item after an out-of-stock one */
            }
            if (r.lambda == 1 && r.n_boosts == 0 && r.oos != RF_OOS_DEMOTE) {
                float s = 0;
                for (int32_t q = 0; q < n; q++)
                    if (cands[q].id == it) s = cands[q].score;
                assert_true(s <= prev); /* relevance order */
                prev = s;
            }
        }
        for (int c = 0; c < NCAT && r.cat_cap > 0; c++)
            assert_true(catn[c] == 0 || catn[c] + pinn[c] <= (r.cat_cap > pinn[c] ? r.cat_cap : pinn[c]));
        /* pins sit at their positions (distinct positions here): never later,
         * and exactly there when the list is full and every pin fits in it */
        int all_fit = 1;
        for (int q = 0; q < r.n_pins; q++) all_fit &= pins[q].pos < k;
        for (int q = 0; q < r.n_pins; q++) {
            if (has(blocked, r.n_blocked, pins[q].item)) continue;
            int dup = 0;
            for (int p = 0; p < q; p++) dup |= pins[p].item == pins[q].item;
            if (dup) continue;
            int at = -1;
            for (int a = 0; a < got; a++)
                if (out[a].id == pins[q].item) at = a;
            assert_true(at >= 0 || got == k);
            if (at >= 0) assert_true(at <= pins[q].pos);
            if (got == k && all_fit) assert_int_equal(at, pins[q].pos);
        }
        /* greedy fill: a short list means no admissible candidate is left */
        if (got < k) {
            for (int32_t q = 0; q < n; q++) {
                int32_t it = cands[q].id;
                int inlist = 0;
                for (int a = 0; a < got; a++) inlist |= out[a].id == it;
                if (inlist || !admissible(&r, it)) continue;
                int c = cat[it];
                assert_true(r.cat_cap > 0 && c >= 0 && catn[c] + pinn[c] >= r.cat_cap);
            }
        } else {
            full++;
        }
        checked++;
    }
    printf("  %d random requests checked, %d filled to k\n", checked, full);
    assert_true(full > checked / 4);
}

static void test_cases(void **state) {
    (void)state;
    int32_t cat[6] = {0, 0, 0, 1, 1, 2};
    int64_t stock[6] = {5, 0, 5, 5, -1, 5};
    double price[6] = {10, 20, 30, 40, 50, 60};
    rf_scored c[6] = {{6, 0}, {5, 1}, {4, 2}, {3, 3}, {2, 4}, {1, 5}};
    rf_rerank_req r;
    rf_rerank_req_init(&r, 6);
    r.category = cat;
    r.stock = stock;
    r.price = price;
    rf_scored out[6];
    rf_err err;
    /* plain: by score */
    assert_int_equal(rf_rerank(&r, c, 6, 3, out, &err), 3);
    assert_int_equal(out[0].id, 0);
    assert_int_equal(out[1].id, 1);
    assert_int_equal(out[2].id, 2);
    /* full diversity: one item per category first */
    r.lambda = 0;
    r.sim = rf_cat_sim;
    r.sim_ud = cat;
    assert_int_equal(rf_rerank(&r, c, 6, 3, out, &err), 3);
    assert_int_equal(out[0].id, 0);
    assert_int_equal(out[1].id, 3);
    assert_int_equal(out[2].id, 5);
    /* demote the out-of-stock item 1, cap 2 per category */
    r.lambda = 1;
    r.oos = RF_OOS_DEMOTE;
    r.cat_cap = 2;
    assert_int_equal(rf_rerank(&r, c, 6, 6, out, &err), 5);
    int32_t want[5] = {0, 2, 3, 4, 5}; /* 1 would be third in category 0 */
    for (int i = 0; i < 5; i++) assert_int_equal(out[i].id, want[i]);
    /* pin item 5 first, block 0, price <= 45 */
    rf_pin pin = {5, 0};
    int32_t blk = 0;
    r.pins = &pin;
    r.n_pins = 1;
    r.blocked = &blk;
    r.n_blocked = 1;
    r.max_price = 45;
    r.cat_cap = 0;
    r.oos = RF_OOS_EXCLUDE;
    assert_int_equal(rf_rerank(&r, c, 6, 4, out, &err), 3);
    assert_int_equal(out[0].id, 5);
    assert_int_equal(out[1].id, 2);
    assert_int_equal(out[2].id, 3);
    /* errors */
    r.lambda = 2;
    assert_int_equal(rf_rerank(&r, c, 6, 3, out, &err), RF_EINVAL);
    r.lambda = 0.5;
    r.sim = NULL;
    assert_int_equal(rf_rerank(&r, c, 6, 3, out, &err), RF_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property),
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
