/* test_gen.c - the synthetic shop generator: determinism, well-formed
 * rows, counts, funnel, implicit mode, learnable structure (a tiny
 * category-affinity scorer beats popularity on later events), weekly
 * seasonality, trend bursts, error paths and allocation failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recfuse/error.h"
#include "recfuse/events.h"
#include "recfuse/gen.h"
#include "recfuse/mem.h"
#include "recfuse/parallel.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *read_in(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    char *s = rf_test_read_file(p);
    free(p);
    return s;
}

/* Split `s` in place into at most `max` tab-separated fields. */
static int split_tabs(char *s, char **f, int max) {
    int n = 0;
    f[n++] = s;
    for (char *p = s; *p; p++)
        if (*p == '\t') {
            *p = 0;
            if (n == max) return max + 1;
            f[n++] = p + 1;
        }
    return n;
}

typedef struct ev {
    int32_t user, item;
    int type, value;
    int64_t ts;
} ev;

typedef struct shop {
    int64_t nev;
    ev *ev;
    int64_t nitems, nusers;
    int64_t *created; /* per item (0-based) */
    int *cat;         /* per item: index of the category string */
    int ncat;
    char cats[1024][96];
} shop;

static int64_t parse_id(const char *s, char prefix) {
    assert_int_equal(s[0], prefix);
    char *end;
    long long v = strtoll(s + 1, &end, 10);
    assert_true(*end == 0 && v >= 1);
    return v;
}

/* Parse all three files and check every row is well-formed. */
static void load_shop(const char *dir, const rf_gen_opts *o, shop *sh) {
    memset(sh, 0, sizeof *sh);
    char *items = read_in(dir, "items.tsv");
    assert_non_null(items);
    sh->created = calloc((size_t)o->items, sizeof(int64_t));
    sh->cat = calloc((size_t)o->items, sizeof(int));
    char *save = NULL, *line = strtok_r(items, "\n", &save);
    assert_string_equal(line, "id\ttitle\tcategory\tbrand\tprice\tstock\tcreated");
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[8];
        assert_int_equal(split_tabs(line, f, 7), 7);
        int64_t id = parse_id(f[0], 'i');
        assert_int_equal(id, sh->nitems + 1);
        assert_true(strlen(f[1]) > 5);
        assert_non_null(strstr(f[1], f[3])); /* brand starts the title */
        assert_non_null(strchr(f[2], '/'));  /* "Top/Sub" */
        double price = atof(f[4]);
        assert_true(price > 0 && price < 1e6);
        assert_true(atoi(f[5]) >= 0);
        sh->created[sh->nitems] = atoll(f[6]);
        int c;
        for (c = 0; c < sh->ncat; c++)
            if (strcmp(sh->cats[c], f[2]) == 0) break;
        if (c == sh->ncat) {
            assert_true(sh->ncat < 1024);
            snprintf(sh->cats[sh->ncat++], 96, "%s", f[2]);
        }
        sh->cat[sh->nitems] = c;
        sh->nitems++;
    }
    assert_int_equal(sh->nitems, o->items);
    free(items);

    char *users = read_in(dir, "users.tsv");
    assert_non_null(users);
    line = strtok_r(users, "\n", &save);
    assert_string_equal(line, "id\tgender\tage\tcountry\tsegment");
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[6];
        assert_int_equal(split_tabs(line, f, 5), 5);
        assert_int_equal(parse_id(f[0], 'u'), sh->nusers + 1);
        assert_true(strcmp(f[1], "F") == 0 || strcmp(f[1], "M") == 0 || strcmp(f[1], "U") == 0);
        int age = atoi(f[2]);
        assert_true(age >= 18 && age <= 90);
        assert_int_equal(strlen(f[3]), 2);
        assert_true(strcmp(f[4], "bargain") == 0 || strcmp(f[4], "mainstream") == 0 ||
                    strcmp(f[4], "premium") == 0 || strcmp(f[4], "loyal") == 0);
        sh->nusers++;
    }
    assert_int_equal(sh->nusers, o->users);
    free(users);

    char *inter = read_in(dir, "interactions.tsv");
    assert_non_null(inter);
    int64_t cap = 1024;
    sh->ev = malloc((size_t)cap * sizeof(ev));
    line = strtok_r(inter, "\n", &save);
    assert_string_equal(line, "user\titem\ttype\tvalue\ttimestamp");
    int64_t end = o->start + (int64_t)(o->days * 86400);
    int32_t prev_user = 0;
    int64_t prev_ts = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[6];
        assert_int_equal(split_tabs(line, f, 5), 5);
        if (sh->nev == cap) {
            cap *= 2;
            sh->ev = realloc(sh->ev, (size_t)cap * sizeof(ev));
        }
        ev *e = &sh->ev[sh->nev++];
        e->user = (int32_t)parse_id(f[0], 'u');
        e->item = (int32_t)parse_id(f[1], 'i');
        assert_true(e->user <= o->users);
        assert_true(e->item <= o->items);
        e->type = rf_event_type_parse(f[2], strlen(f[2]));
        assert_true(e->type >= RF_EV_VIEW && e->type <= RF_EV_RATING);
        assert_string_equal(rf_event_type_name(e->type), f[2]);
        e->value = atoi(f[3]);
        if (e->type == RF_EV_RATING)
            assert_true(e->value >= 1 && e->value <= 5);
        else if (e->type == RF_EV_PURCHASE)
            assert_true(e->value >= 1 && e->value <= 6);
        else
            assert_int_equal(e->value, 1);
        e->ts = atoll(f[4]);
        assert_in_range(e->ts, o->start, end - 1);
        /* no event before the item exists */
        if (e->ts < sh->created[e->item - 1])
            fail_msg("event of i%d at %lld before its creation %lld", e->item, (long long)e->ts,
                     (long long)sh->created[e->item - 1]);
        /* users in order, each chronological */
        assert_true(e->user >= prev_user);
        if (e->user == prev_user) assert_true(e->ts >= prev_ts);
        prev_user = e->user;
        prev_ts = e->ts;
    }
    free(inter);
}

static void free_shop(shop *sh) {
    free(sh->ev);
    free(sh->created);
    free(sh->cat);
}

static void small_opts(rf_gen_opts *o) {
    rf_gen_opts_default(o);
    o->users = 600;
    o->items = 250;
    o->events = 30000;
    o->categories = 10;
    o->brands = 30;
    o->days = 120;
}

static int files_equal(const char *d1, const char *d2, const char *name) {
    char *a = read_in(d1, name), *b = read_in(d2, name);
    int eq = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    return eq;
}

/* ---- tests ------------------------------------------------------------ */

static void test_deterministic(void **state) {
    (void)state;
    rf_gen_opts o;
    small_opts(&o);
    o.write_truth = 1;
    char *d1 = rf_test_tmpdir("gen-a"), *d2 = rf_test_tmpdir("gen-b"), *d3 = rf_test_tmpdir("gen-c");
    rf_err err;
    rf_set_threads(1);
    assert_int_equal(rf_gen_write(d1, &o, NULL, &err), 0);
    rf_set_threads(3); /* different thread count, same bytes */
    assert_int_equal(rf_gen_write(d2, &o, NULL, &err), 0);
    const char *names[] = {"interactions.tsv", "items.tsv", "users.tsv", "truth_items.tsv",
                           "truth_users.tsv"};
    for (int i = 0; i < 5; i++)
        if (!files_equal(d1, d2, names[i])) fail_msg("%s differs between runs", names[i]);
    o.seed++;
    assert_int_equal(rf_gen_write(d3, &o, NULL, &err), 0);
    for (int i = 0; i < 3; i++)
        if (files_equal(d1, d3, names[i])) fail_msg("%s same for different seeds", names[i]);
    /* implicit mode is deterministic too */
    o.implicit_only = 1;
    rf_set_threads(1);
    assert_int_equal(rf_gen_write(d1, &o, NULL, &err), 0);
    rf_set_threads(2);
    assert_int_equal(rf_gen_write(d2, &o, NULL, &err), 0);
    assert_true(files_equal(d1, d2, "interactions.tsv"));
    rf_set_threads(0);
    /* no temp files left behind */
    char *tmp = path_in(d1, "interactions.tsv.tmp");
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(tmp);
    rf_test_rmtree(d1);
    rf_test_rmtree(d2);
    rf_test_rmtree(d3);
    free(d1);
    free(d2);
    free(d3);
}

static void test_full_funnel(void **state) {
    (void)state;
    rf_gen_opts o;
    small_opts(&o);
    o.new_share = 0.4; /* many items created mid-span */
    char *d = rf_test_tmpdir("gen-full");
    rf_err err;
    rf_gen_stats st;
    assert_int_equal(rf_gen_write(d, &o, &st, &err), 0);
    shop sh;
    load_shop(d, &o, &sh);
    assert_int_equal(sh.nev, st.events);
    if (llabs(sh.nev - o.events) > o.events / 100)
        fail_msg("events %lld, target %lld", (long long)sh.nev, (long long)o.events);
    int64_t cnt[RF_EV_NTYPES] = {0};
    for (int64_t k = 0; k < sh.nev; k++) cnt[sh.ev[k].type]++;
    for (int t = 0; t < RF_EV_NTYPES; t++) assert_int_equal(cnt[t], st.type_counts[t]);
    printf("# views %lld clicks %lld carts %lld purchases %lld ratings %lld repeats %lld\n",
           (long long)cnt[RF_EV_VIEW], (long long)cnt[RF_EV_CLICK], (long long)cnt[RF_EV_CART],
           (long long)cnt[RF_EV_PURCHASE], (long long)cnt[RF_EV_RATING],
           (long long)st.repeat_purchases);
    assert_true(cnt[RF_EV_VIEW] > 2 * cnt[RF_EV_CART]);
    assert_true(cnt[RF_EV_CART] > cnt[RF_EV_PURCHASE]);
    assert_true(cnt[RF_EV_PURCHASE] > cnt[RF_EV_RATING]);
    assert_true(cnt[RF_EV_CLICK] > 0 && cnt[RF_EV_RATING] > 0);
    assert_true(st.repeat_purchases > 0);

    /* funnel order per (user, item): a cart follows a view of the item, a
     * purchase follows a cart, a rating follows a purchase; repeat
     * purchases of one item exist */
    int64_t repeat_pairs = 0;
    int *seen = calloc((size_t)o.items + 1, sizeof(int)); /* bit 1 view, 2 cart, 4 purchase */
    int64_t *buys = calloc((size_t)o.items + 1, sizeof(int64_t));
    for (int64_t k = 0; k < sh.nev;) {
        int64_t j = k;
        while (j < sh.nev && sh.ev[j].user == sh.ev[k].user) j++;
        for (int64_t x = k; x < j; x++) {
            const ev *e = &sh.ev[x];
            int *s = &seen[e->item];
            switch (e->type) {
            case RF_EV_VIEW: *s |= 1; break;
            case RF_EV_CART: *s |= 2; break;
            case RF_EV_PURCHASE:
                if (!(*s & 2)) fail_msg("purchase of i%d by u%d without a cart", e->item, e->user);
                *s |= 4;
                if (++buys[e->item] == 2) repeat_pairs++;
                break;
            case RF_EV_RATING:
                if (!(*s & 4)) fail_msg("rating of i%d by u%d without a purchase", e->item, e->user);
                break;
            default: break;
            }
        }
        for (int64_t x = k; x < j; x++) {
            seen[sh.ev[x].item] = 0;
            buys[sh.ev[x].item] = 0;
        }
        k = j;
    }
    assert_true(repeat_pairs > 10);
    /* (user, item, type, timestamp) is a key: the importer may rely on it */
    for (int64_t k = 1; k < sh.nev; k++)
        for (int64_t x = k - 1; x >= 0 && sh.ev[x].user == sh.ev[k].user && sh.ev[x].ts == sh.ev[k].ts; x--)
            if (sh.ev[x].item == sh.ev[k].item && sh.ev[x].type == sh.ev[k].type)
                fail_msg("duplicate event u%d i%d type %d at %lld", sh.ev[k].user, sh.ev[k].item,
                         sh.ev[k].type, (long long)sh.ev[k].ts);
    free(seen);
    free(buys);
    free_shop(&sh);
    rf_test_rmtree(d);
    free(d);
}

static void test_implicit(void **state) {
    (void)state;
    rf_gen_opts o;
    small_opts(&o);
    o.implicit_only = 1;
    o.users = 800;
    o.items = 400;
    o.events = 60000;
    char *d = rf_test_tmpdir("gen-impl");
    rf_err err;
    rf_gen_stats st;
    assert_int_equal(rf_gen_write(d, &o, &st, &err), 0);
    shop sh;
    load_shop(d, &o, &sh);
    if (llabs(sh.nev - o.events) > o.events / 100)
        fail_msg("events %lld, target %lld", (long long)sh.nev, (long long)o.events);
    int64_t *per_user = calloc((size_t)o.users + 1, sizeof(int64_t));
    char *pair = calloc((size_t)(o.users + 1) * (size_t)(o.items + 1), 1);
    for (int64_t k = 0; k < sh.nev; k++) {
        const ev *e = &sh.ev[k];
        assert_int_equal(e->type, RF_EV_PURCHASE);
        assert_int_equal(e->value, 1);
        char *p = &pair[(size_t)e->user * (size_t)(o.items + 1) + (size_t)e->item];
        if (*p) fail_msg("duplicate pair u%d i%d", e->user, e->item);
        *p = 1;
        per_user[e->user]++;
    }
    /* heavy-tailed activity with a floor of 5 */
    int64_t mn = INT64_MAX, mx = 0;
    for (int64_t u = 1; u <= o.users; u++) {
        if (per_user[u] < mn) mn = per_user[u];
        if (per_user[u] > mx) mx = per_user[u];
    }
    printf("# implicit per-user min %lld max %lld mean %.1f\n", (long long)mn, (long long)mx,
           (double)sh.nev / o.users);
    assert_true(mn >= 5);
    assert_true(mx >= 2.5 * (double)sh.nev / (double)o.users); /* capped at 3x the mean here */
    free(per_user);
    free(pair);
    free_shop(&sh);
    rf_test_rmtree(d);
    free(d);
}

/* HR@10 on the last 20% of each user's distinct items (first occurrences,
 * chronological), trained on the first 80%: global popularity vs
 * popularity x the user's category shares. */
static double learnability(const rf_gen_opts *o, const char *tag) {
    char *d = rf_test_tmpdir(tag);
    rf_err err;
    assert_int_equal(rf_gen_write(d, o, NULL, &err), 0);
    shop sh;
    load_shop(d, o, &sh);
    int64_t I = o->items;
    double *pop = calloc((size_t)I + 1, sizeof(double));
    int32_t *first = malloc((size_t)sh.nev * sizeof(int32_t)); /* distinct items per user */
    int64_t *ustart = calloc((size_t)o->users + 2, sizeof(int64_t));
    char *mark = calloc((size_t)I + 1, 1);
    int64_t nf = 0;
    for (int64_t k = 0; k < sh.nev;) {
        int64_t j = k;
        while (j < sh.nev && sh.ev[j].user == sh.ev[k].user) j++;
        ustart[sh.ev[k].user] = nf;
        for (int64_t x = k; x < j; x++)
            if (!mark[sh.ev[x].item]) {
                mark[sh.ev[x].item] = 1;
                first[nf++] = sh.ev[x].item;
            }
        for (int64_t x = k; x < j; x++) mark[sh.ev[x].item] = 0;
        ustart[sh.ev[k].user + 1] = nf;
        k = j;
    }
    /* train/test cut per user */
    int64_t *cut = calloc((size_t)o->users + 1, sizeof(int64_t));
    for (int64_t u = 1; u <= o->users; u++) {
        int64_t n = ustart[u + 1] - ustart[u];
        if (n < 0) n = 0;
        cut[u] = n < 5 ? ustart[u] + n : ustart[u] + n - (int64_t)ceil(0.2 * (double)n);
        for (int64_t x = ustart[u]; x < cut[u]; x++) pop[first[x]] += 1;
    }
    double hit_pop = 0, hit_aff = 0;
    int64_t nusers = 0;
    double *catshare = calloc((size_t)sh.ncat, sizeof(double));
    double *score = malloc(((size_t)I + 1) * sizeof(double));
    for (int64_t u = 1; u <= o->users; u++) {
        int64_t n = ustart[u + 1] - ustart[u];
        if (n < 5 || ustart[u + 1] < ustart[u]) continue;
        nusers++;
        memset(catshare, 0, (size_t)sh.ncat * sizeof(double));
        for (int64_t x = ustart[u]; x < cut[u]; x++) {
            mark[first[x]] = 1;
            catshare[sh.cat[first[x] - 1]] += 1.0 / (double)(cut[u] - ustart[u]);
        }
        for (int model = 0; model < 2; model++) {
            for (int64_t i = 1; i <= I; i++)
                score[i] = mark[i] ? -1 : pop[i] * (model ? catshare[sh.cat[i - 1]] + 0.02 : 1) + 1e-9 * (double)i;
            int hit = 0;
            for (int t = 0; t < 10; t++) {
                int64_t best = 1;
                for (int64_t i = 2; i <= I; i++)
                    if (score[i] > score[best]) best = i;
                for (int64_t x = cut[u]; x < ustart[u + 1]; x++)
                    if (first[x] == best) hit = 1;
                score[best] = -2;
            }
            if (model)
                hit_aff += hit;
            else
                hit_pop += hit;
        }
        for (int64_t x = ustart[u]; x < cut[u]; x++) mark[first[x]] = 0;
    }
    hit_pop /= (double)nusers;
    hit_aff /= (double)nusers;
    printf("# %s: HR@10 popularity %.3f, category affinity %.3f (%lld users)\n", tag, hit_pop,
           hit_aff, (long long)nusers);
    assert_true(nusers > o->users / 2);
    free(pop);
    free(first);
    free(ustart);
    free(mark);
    free(cut);
    free(catshare);
    free(score);
    free_shop(&sh);
    rf_test_rmtree(d);
    free(d);
    return hit_aff / hit_pop;
}

static void test_learnable(void **state) {
    (void)state;
    rf_gen_opts o;
    small_opts(&o);
    double r = learnability(&o, "gen-learn-full");
    if (r < 1.3) fail_msg("full: affinity / popularity HR@10 = %.2f < 1.3", r);
    o.implicit_only = 1;
    r = learnability(&o, "gen-learn-impl");
    if (r < 1.3) fail_msg("implicit: affinity / popularity HR@10 = %.2f < 1.3", r);
    /* with taste 0 there is nothing to learn beyond popularity */
    o.taste = 0;
    r = learnability(&o, "gen-learn-taste0");
    if (r > 1.15) fail_msg("taste 0: affinity / popularity HR@10 = %.2f > 1.15", r);
}

static void test_seasonality(void **state) {
    (void)state;
    rf_gen_opts o;
    small_opts(&o);
    o.days = 364; /* whole weeks */
    char *d = rf_test_tmpdir("gen-season");
    rf_err err;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    shop sh;
    load_shop(d, &o, &sh);
    double wd[7] = {0}, hr[24] = {0};
    for (int64_t k = 0; k < sh.nev; k++) {
        if (sh.ev[k].type == RF_EV_RATING) continue;
        int64_t t = sh.ev[k].ts;
        wd[(t / 86400 + 3) % 7] += 1; /* 0 = Monday */
        hr[(t % 86400) / 3600] += 1;
    }
    double weekend = (wd[5] + wd[6]) / 2, weekday = (wd[0] + wd[1] + wd[2]) / 3;
    double evening = (hr[19] + hr[20] + hr[21]) / 3, night = (hr[2] + hr[3] + hr[4]) / 3;
    printf("# weekend/weekday %.2f, evening/night %.2f\n", weekend / weekday, evening / night);
    assert_true(weekend > 1.25 * weekday);
    assert_true(evening > 4 * night);
    free_shop(&sh);
    rf_test_rmtree(d);
    free(d);
}

static void test_trends(void **state) {
    (void)state;
    rf_gen_opts o;
    small_opts(&o);
    o.trend_share = 0.25;
    o.write_truth = 1;
    o.days = 200;
    char *d = rf_test_tmpdir("gen-trend");
    rf_err err;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    shop sh;
    load_shop(d, &o, &sh);
    /* read the hidden trend windows */
    char *truth = read_in(d, "truth_items.tsv");
    assert_non_null(truth);
    int64_t *b0 = calloc((size_t)o.items + 1, sizeof(int64_t)), *b1 = calloc((size_t)o.items + 1, sizeof(int64_t));
    char *save = NULL, *line = strtok_r(truth, "\n", &save);
    assert_string_equal(line, "id\tpop_rank\tbase_pop\ttrend_start\ttrend_end\ttrend_boost\treplenish_days");
    int ntrend = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[8];
        assert_int_equal(split_tabs(line, f, 7), 7);
        int64_t id = parse_id(f[0], 'i');
        b0[id] = atoll(f[3]);
        b1[id] = atoll(f[4]);
        if (atof(f[5]) > 1) {
            assert_true(b1[id] > b0[id]);
            ntrend++;
        }
    }
    free(truth);
    assert_true(ntrend > o.items / 8);
    /* events per day inside vs outside each item's window (after creation) */
    double in = 0, out = 0, days_in = 0, days_out = 0;
    int64_t start = o.start, end = o.start + (int64_t)(o.days * 86400);
    for (int64_t i = 1; i <= o.items; i++) {
        if (b1[i] <= b0[i]) continue;
        int64_t from = sh.created[i - 1] > start ? sh.created[i - 1] : start;
        int64_t w0 = b0[i] > from ? b0[i] : from;
        days_in += (double)(b1[i] - w0) / 86400;
        days_out += (double)(end - from - (b1[i] - w0)) / 86400;
    }
    for (int64_t k = 0; k < sh.nev; k++) {
        const ev *e = &sh.ev[k];
        if (b1[e->item] <= b0[e->item]) continue;
        if (e->ts >= b0[e->item] && e->ts < b1[e->item])
            in += 1;
        else
            out += 1;
    }
    double ratio = (in / days_in) / (out / days_out);
    printf("# trending items: %d, rate inside/outside window %.2f\n", ntrend, ratio);
    assert_true(ratio > 2.5);
    free(b0);
    free(b1);
    free_shop(&sh);
    rf_test_rmtree(d);
    free(d);
}

static void test_sizes(void **state) {
    (void)state;
    rf_err err;
    rf_gen_opts o;
    char *d = rf_test_tmpdir("gen-sizes");
    shop sh;
    /* no events: headers only */
    rf_gen_opts_default(&o);
    o.users = 3;
    o.items = 2;
    o.events = 0;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    char *s = read_in(d, "interactions.tsv");
    assert_string_equal(s, "user\titem\ttype\tvalue\ttimestamp\n");
    free(s);
    /* one user, one item, more categories than items */
    rf_gen_opts_default(&o);
    o.users = 1;
    o.items = 1;
    o.events = 1000;
    o.days = 1;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    load_shop(d, &o, &sh);
    assert_true(sh.nev > 0 && sh.nev <= 1000);
    free_shop(&sh);
    /* fewer events than users; more categories than the built-in taxonomy */
    rf_gen_opts_default(&o);
    o.users = 500;
    o.items = 300;
    o.events = 100;
    o.categories = 40;
    o.brands = 3;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    load_shop(d, &o, &sh);
    if (llabs(sh.nev - 100) > 2) fail_msg("events %lld", (long long)sh.nev);
    free_shop(&sh);
    /* a one-hour span: sessions squeezed against the end */
    rf_gen_opts_default(&o);
    o.users = 20;
    o.items = 5;
    o.events = 2000;
    o.days = 1.0 / 24;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    load_shop(d, &o, &sh);
    assert_true(sh.nev > 1000);
    free_shop(&sh);
    /* implicit with a tiny catalog: every user needs distinct items */
    rf_gen_opts_default(&o);
    o.implicit_only = 1;
    o.users = 50;
    o.items = 12;
    o.events = 250;
    assert_int_equal(rf_gen_write(d, &o, NULL, &err), 0);
    load_shop(d, &o, &sh);
    printf("# implicit 50x12: %lld events of 250\n", (long long)sh.nev);
    assert_true(sh.nev >= 240 && sh.nev <= 250);
    free_shop(&sh);
    rf_test_rmtree(d);
    free(d);
}

static void test_errors(void **state) {
    (void)state;
    rf_err err;
    rf_gen_opts o;
    rf_gen_opts_default(&o);
    assert_null(rf_gen_opts_check(&o));
    o.users = 0;
    assert_non_null(rf_gen_opts_check(&o));
    assert_int_equal(rf_gen_write("/tmp/never", &o, NULL, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "users"));
    rf_gen_opts_default(&o);
    o.taste = 1.5;
    assert_int_equal(rf_gen_write("/tmp/never", &o, NULL, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "taste"));
    rf_gen_opts_default(&o);
    o.implicit_only = 1;
    o.users = 10;
    o.items = 10;
    o.events = 100;
    assert_int_equal(rf_gen_write("/tmp/never", &o, NULL, &err), RF_EINVAL);
    assert_int_equal(rf_gen_preset(&o, "huge", &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "huge"));
    rf_gen_opts_default(&o);
    assert_int_equal(rf_gen_preset(&o, "ml20m", &err), 0);
    assert_int_equal(o.users, 138000);
    assert_int_equal(o.implicit_only, 1);
    assert_null(rf_gen_opts_check(&o));
    /* unwritable: a directory below a regular file */
    char *d = rf_test_tmpdir("gen-err");
    char *file = rf_test_write_file(d, "plain", "x");
    char *bad = path_in(file, "sub");
    rf_gen_opts_default(&o);
    o.events = 100;
    int rc = rf_gen_write(bad, &o, NULL, &err);
    assert_int_equal(rc, RF_EIO);
    assert_true(strlen(err.msg) > 0);
    /* a read-only directory (skipped when running as root, which ignores modes) */
    if (geteuid() != 0) {
        char *ro = path_in(d, "ro");
        assert_int_equal(rf_gen_write(ro, &o, NULL, &err), 0);
        chmod(ro, 0555);
        assert_int_equal(rf_gen_write(ro, &o, NULL, &err), RF_EIO);
        chmod(ro, 0755);
        free(ro);
    }
    free(bad);
    free(file);
    rf_test_rmtree(d);
    free(d);
}

static void test_oom(void **state) {
    (void)state;
    rf_gen_opts o;
    rf_gen_opts_default(&o);
    o.users = 30;
    o.items = 20;
    o.events = 600;
    o.categories = 3;
    o.brands = 4;
    char *d = rf_test_tmpdir("gen-oom");
    rf_err err;
    rf_set_threads(1);
    int ok = 0;
    for (long n = 0; n < 2000 && !ok; n++) {
        rf_mem_fail_after(n);
        int rc = rf_gen_write(d, &o, NULL, &err);
        rf_mem_fail_after(-1);
        if (rc == 0)
            ok = 1;
        else
            assert_int_equal(rc, RF_ENOMEM);
    }
    rf_set_threads(0);
    assert_true(ok);
    rf_test_rmtree(d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_full_funnel),
        cmocka_unit_test(test_implicit),      cmocka_unit_test(test_learnable),
        cmocka_unit_test(test_seasonality),   cmocka_unit_test(test_trends),
        cmocka_unit_test(test_sizes),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
