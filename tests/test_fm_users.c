/* test_fm_users.c - fm's user side features (demographics from
 * d->users_info): a planted preference by gender and age is learned and
 * carries to users with no training interaction, who are scored through
 * their demographics alone; without the users table (or user_side=0)
 * those users get one list for all.
 *
 * Data, built by hand: 40 items, 4 groups of 10; 400 warm users, group
 * g = 2 * (gender is F) + (age >= 35); a user takes items of their own
 * group with p = 0.3 and any other item with p = 0.03. 40 more users have
 * demographics (10 per group) and no interaction at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/error.h"
#include "recfuse/log.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"
#include "testutil.h"

enum { NWARM = 400, NCOLD = 40, NU = NWARM + NCOLD, NI = 40 };

static int group_of(int32_t u) { return u % 4; }

typedef struct world {
    rf_test_ds *ds;
    rf_user_table users;
    rf_user_info info[NU];
    char ids[NU][16];
} world;

static world *make_world(void) {
    world *w = calloc(1, sizeof *w);
    int32_t *r = malloc(sizeof *r * NU * NI), *c = malloc(sizeof *c * NU * NI);
    int64_t n = 0;
    rf_rng g;
    rf_rng_seed(&g, 31);
    for (int32_t u = 0; u < NWARM; u++)
        for (int32_t i = 0; i < NI; i++)
            if (rf_rng_uniform(&g) < (i / 10 == group_of(u) ? 0.3 : 0.03)) {
                r[n] = u;
                c[n] = i;
                n++;
            }
    w->ds = rf_test_ds_new(NU, "u", NULL, NI, "i", NULL, n, r, c, NULL);
    free(r);
    free(c);
    /* the table lists users in another order than the dataset: matched by id */
    for (int32_t k = 0; k < NU; k++) {
        int32_t u = NU - 1 - k;
        snprintf(w->ids[k], sizeof w->ids[k], "u%d", u);
        rf_user_info *in = &w->info[k];
        in->id = w->ids[k];
        in->gender = (char *)(group_of(u) >= 2 ? "F" : "M");
        in->age = group_of(u) % 2 ? 40 + u % 20 : 18 + u % 15;
        in->country = (char *)(u % 3 ? "DE" : "FR"); /* noise */
    }
    w->users.n = NU;
    w->users.users = w->info;
    return w;
}

/* Share of the top-10 of cold users that falls in their own group. */
static double cold_share(const char *params, const rf_user_table *users, world *w) {
    w->ds->d->users_info = users;
    rf_model *m = NULL;
    rf_err err;
    rf_err_clear(&err);
    if (rf_model_new("fm", &m, &err) || rf_model_set_params(m, params, &err) ||
        rf_model_fit(m, w->ds->d, &err))
        fail_msg("fm %s: %s", params, err.msg);
    rf_scored top[10];
    int hits = 0;
    for (int32_t u = NWARM; u < NU; u++) {
        assert_int_equal(rf_model_recommend(m, u, NULL, 10, NULL, NULL, top, &err), 10);
        for (int t = 0; t < 10; t++) hits += top[t].id / 10 == group_of(u);
    }
    rf_model_free(m);
    return hits / (10.0 * NCOLD);
}

static void test_demographics_learned(void **state) {
    (void)state;
    world *w = make_world();
    const char *p = "factors=8,epochs=20,seed=3,side=0";
    double with = cold_share(p, &w->users, w);
    double off = cold_share("factors=8,epochs=20,seed=3,side=0,user_side=0", &w->users, w);
    double none = cold_share(p, NULL, w);
    print_message("cold users' top-10 in their group: demographics %.3f, user_side=0 %.3f, "
                  "no users table %.3f (chance 0.25)\n",
                  with, off, none);
    assert_true(with > 0.8);
    assert_true(off < 0.45 && none < 0.45);
    rf_test_ds_free(w->ds);
    free(w);
}

int main(void) {
    rf_log_set_level(RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demographics_learned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
