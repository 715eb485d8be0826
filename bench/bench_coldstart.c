/* bench_coldstart.c - cold-start items: NDCG@10 of brand-new items for the
 * feature -> latent mapper (coldstart.h) on top of iALS, against
 * popularity, category popularity, a content profile and "fm" with side
 * features.
 *
 * Workload: rf_gen_write with a preset (default "small": 10k users, 2k
 * items, 1M events) into a temporary directory; items.tsv is the catalog
 * (category, brand, price, title), interactions.tsv the log. 10% of the
 * items that have events (seeded draw) are "new": all their events are
 * removed from training. Test: every user who interacted with a new item;
 * the candidates are the new items only; relevant = the new items the
 * user interacted with (any event type); NDCG@10 averaged over those
 * users. Training uses the default dataset weights.
 *
 * Rankers of the new items for a user u:
 *   mapper     U[u] . (x_i W + b), W fit on the warm items' iALS vectors
 *   pop        training popularity (0 for every new item: ties by id)
 *   catpop     mean training popularity of the warm items of i's category
 *   content    cosine of u's feature profile (features.h) with x_i
 *   fm         the "fm" model (BPR, side features) score of (u, i)
 * Timings are wall seconds on a shared, loaded machine: noisy.
 *
 * Usage: bench_coldstart [PRESET [IALS_PARAMS [REG]]]
 *   default: small, "factors=64", reg 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recfuse/coldstart.h"
#include "recfuse/dataset.h"
#include "recfuse/error.h"
#include "recfuse/factors.h"
#include "recfuse/features.h"
#include "recfuse/gen.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/rng.h"
#include "recfuse/store.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Split a line at tabs in place; returns the field count (<= max). */
static int fields(char *line, char **f, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    while (n < max) {
        f[n++] = line;
        char *t = strchr(line, '\t');
        if (!t) break;
        *t = 0;
        line = t + 1;
    }
    return n;
}

static rf_catalog *read_items(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return NULL;
    rf_catalog *c = rf_calloc(1, sizeof *c);
    int64_t cap = 1024;
    c->items = rf_calloc((size_t)cap, sizeof *c->items);
    char line[4096], *f[8];
    int first = 1;
    while (fgets(line, sizeof line, fp)) {
        if (first) {
            first = 0;
            continue;
        }
        if (fields(line, f, 8) < 7) continue;
        if (c->n == cap) {
            c->items = rf_realloc_array(c->items, (size_t)cap * 2, sizeof *c->items);
            memset(c->items + cap, 0, (size_t)cap * sizeof *c->items);
            cap *= 2;
        }
        rf_item_info *it = &c->items[c->n++];
        it->id = rf_strdup(f[0]);
        it->title = rf_strdup(f[1]);
        it->category = rf_strdup(f[2]);
        it->brand = rf_strdup(f[3]);
        it->price = atof(f[4]);
        it->stock = atoll(f[5]);
        it->created = atoll(f[6]);
    }
    fclose(fp);
    return c;
}

typedef struct scored {
    float s;
    int32_t j;
} scored;

static int cmp_sc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return x->j < y->j ? -1 : x->j > y->j;
}

/* NDCG@10 of one user: scores of the new items sc[0..nn), relevant flags. */
static double ndcg10(scored *sc, int32_t nn, const uint8_t *rel, int nrel) {
    qsort(sc, (size_t)nn, sizeof *sc, cmp_sc);
    double dcg = 0, idcg = 0;
    for (int q = 0; q < 10 && q < nn; q++) {
        if (rel[sc[q].j]) dcg += 1 / log2(q + 2.0);
        if (q < nrel) idcg += 1 / log2(q + 2.0);
    }
    return idcg > 0 ? dcg / idcg : 0;
}

int main(int argc, char **argv) {
    const char *preset = argc > 1 ? argv[1] : "small";
    const char *ials_params = argc > 2 ? argv[2] : "factors=64";
    double reg = argc > 3 ? atof(argv[3]) : 1.0;
    rf_err err;
    rf_err_clear(&err);
    char dir[] = "/tmp/bench_coldstart_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rf_gen_opts go;
    rf_gen_opts_default(&go);
    if (rf_gen_preset(&go, preset, &err) || rf_gen_write(dir, &go, NULL, &err)) {
        fprintf(stderr, "gen: %s\n", err.msg);
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/items.tsv", dir);
    rf_catalog *cat = read_items(path);
    rf_events *all, *train;
    rf_events_new(NULL, NULL, &all);
    for (int64_t i = 0; cat && i < cat->n; i++) {
        int32_t id;
        rf_idmap_put(all->items, cat->items[i].id, strlen(cat->items[i].id), &id, NULL);
    }
    snprintf(path, sizeof path, "%s/interactions.tsv", dir);
    FILE *fp = fopen(path, "r");
    if (!cat || !fp) {
        fprintf(stderr, "cannot read the generated files in %s\n", dir);
        return 1;
    }
    char line[1024], *f[6];
    int first = 1;
    while (fgets(line, sizeof line, fp)) {
        if (first) {
            first = 0;
            continue;
        }
        if (fields(line, f, 6) < 5) continue;
        int type = rf_event_type_parse(f[2], strlen(f[2]));
        if (type < 0) continue;
        rf_events_push_str(all, f[0], f[1], type, (float)atof(f[3]), atoll(f[4]));
    }
    fclose(fp);
    const int32_t ni = rf_idmap_size(all->items), nu = rf_idmap_size(all->users);
    /* 10% of the items with events become new */
    uint8_t *has = calloc((size_t)ni, 1), *isnew = calloc((size_t)ni, 1);
    for (int64_t e = 0; e < all->n; e++) has[all->item[e]] = 1;
    int32_t *cand = malloc((size_t)ni * sizeof *cand), nc = 0;
    for (int32_t i = 0; i < ni; i++)
        if (has[i]) cand[nc++] = i;
    rf_rng rng;
    rf_rng_seed(&rng, 11);
    rf_rng_shuffle_i32(&rng, cand, nc);
    int32_t nn = nc / 10;
    int32_t *newid = malloc((size_t)ni * sizeof *newid), *newlist = malloc((size_t)nn * sizeof *newlist);
    for (int32_t i = 0; i < ni; i++) newid[i] = -1;
    for (int32_t q = 0; q < nn; q++) isnew[cand[q]] = 1;
    for (int32_t i = 0, q = 0; i < ni; i++)
        if (isnew[i]) {
            newid[i] = q;
            newlist[q++] = i;
        }
    rf_events_new(all->users, all->items, &train);
    for (int64_t e = 0; e < all->n; e++)
        if (!isnew[all->item[e]])
            rf_events_push(train, all->user[e], all->item[e], all->type[e], all->value[e], all->ts[e]);
    /* test relevance: user -> new items (as a sorted pair list) */
    rf_csr *rel;
    {
        int32_t *r = malloc((size_t)(all->n - train->n + 1) * sizeof *r);
        int32_t *c = malloc((size_t)(all->n - train->n + 1) * sizeof *c);
        float *v = malloc((size_t)(all->n - train->n + 1) * sizeof *v);
        int64_t k = 0;
        for (int64_t e = 0; e < all->n; e++)
            if (isnew[all->item[e]]) {
                r[k] = all->user[e];
                c[k] = newid[all->item[e]];
                v[k++] = 1;
            }
        rf_csr_from_coo(nu, nn, k, r, c, v, RF_FOLD_MAX, &rel, NULL);
        free(r);
        free(c);
        free(v);
    }
    rf_dataset *d;
    if (rf_dataset_build(train, NULL, &d, &err)) {
        fprintf(stderr, "dataset: %s\n", err.msg);
        return 1;
    }
    d->catalog = cat;
    printf("preset %s: %d users, %d items, %lld events; %d new items (%lld test pairs), "
           "%lld training events\n",
           preset, nu, ni, (long long)all->n, nn, (long long)rel->nnz, (long long)train->n);

    double t0 = now_s();
    rf_model *ials, *fm, *pop;
    if (rf_model_new("ials", &ials, &err) || rf_model_set_params(ials, ials_params, &err) ||
        rf_model_fit(ials, d, &err)) {
        fprintf(stderr, "ials: %s\n", err.msg);
        return 1;
    }
    double t_ials = now_s() - t0;
    rf_factors fac;
    rf_factors_get(ials, &fac, &err);
    rf_features_opts fo;
    rf_features_opts_default(&fo);
    rf_item_features *feat;
    if (rf_item_features_build(cat, all->items, ni, &fo, &feat, &err)) {
        fprintf(stderr, "features: %s\n", err.msg);
        return 1;
    }
    uint8_t *warm = calloc((size_t)ni, 1);
    for (int32_t i = 0; i < ni; i++) warm[i] = rf_csr_row_len(d->iu, i) > 0;
    t0 = now_s();
    rf_coldstart *cs;
    if (rf_coldstart_fit(&fac, feat->x, warm, reg, &cs, &err)) {
        fprintf(stderr, "coldstart: %s\n", err.msg);
        return 1;
    }
    double t_map = now_s() - t0;
    float *Vn = calloc((size_t)nn * fac.dim, sizeof *Vn);
    for (int32_t q = 0; q < nn; q++) {
        int32_t i = newlist[q];
        int64_t a = feat->x->indptr[i];
        rf_coldstart_item_vector(cs, (int32_t)(feat->x->indptr[i + 1] - a), feat->x->indices + a,
                                 feat->x->data + a, Vn + (size_t)q * fac.dim);
    }
    t0 = now_s();
    if (rf_model_new("fm", &fm, &err) || rf_model_fit(fm, d, &err)) {
        fprintf(stderr, "fm: %s\n", err.msg);
        return 1;
    }
    double t_fm = now_s() - t0;
    rf_model_new("pop", &pop, &err);
    rf_model_fit(pop, d, &err);
    /* category popularity */
    float *popsc = malloc((size_t)ni * sizeof *popsc), *catpop = malloc((size_t)ni * sizeof *catpop);
    rf_model_score_all(pop, -1, NULL, popsc, &err);
    for (int32_t i = 0; i < ni; i++) {
        const char *ci = cat->items[i].category;
        double s = 0;
        int64_t n = 0;
        for (int32_t j = 0; j < ni; j++)
            if (warm[j] && ci && cat->items[j].category && !strcmp(ci, cat->items[j].category)) {
                s += popsc[j];
                n++;
            }
        catpop[i] = n ? (float)(s / (double)n) : 0;
    }
    enum { MAPPER, POP, CATPOP, CONTENT, FM, NR };
    const char *names[NR] = {"mapper (ials + coldstart)", "pop", "catpop", "content", "fm"};
    double tot[NR] = {0};
    int64_t nusers = 0;
    scored *sc = malloc((size_t)nn * sizeof *sc);
    uint8_t *r = calloc((size_t)nn, 1);
    float *all_sc = malloc((size_t)ni * sizeof *all_sc);
    rf_profile *prof;
    rf_profile_new(feat, &prof);
    for (int32_t u = 0; u < nu; u++) {
        int nrel = (int)rf_csr_row_len(rel, u);
        if (nrel == 0) continue;
        nusers++;
        for (int64_t q = rel->indptr[u]; q < rel->indptr[u + 1]; q++) r[rel->indices[q]] = 1;
        rf_hist h;
        rf_hist_from_row(d, u, &h);
        for (int rk = 0; rk < NR; rk++) {
            if (rk == FM) rf_model_score_all(fm, u, &h, all_sc, &err);
            if (rk == CONTENT) {
                rf_profile_build(prof, feat, h.n, h.items, h.weights, NULL, 0);
                rf_profile_score(prof, feat, all_sc);
            }
            for (int32_t q = 0; q < nn; q++) {
                int32_t i = newlist[q];
                float s = 0;
                if (rk == MAPPER) {
                    const float *uu = fac.users + (size_t)u * fac.ld, *vv = Vn + (size_t)q * fac.dim;
                    for (int dd = 0; dd < fac.dim; dd++) s += uu[dd] * vv[dd];
                } else if (rk == POP) {
                    s = popsc[i];
                } else if (rk == CATPOP) {
                    s = catpop[i];
                } else {
                    s = all_sc[i];
                }
                sc[q].s = s;
                sc[q].j = q;
            }
            tot[rk] += ndcg10(sc, nn, r, nrel);
        }
        for (int64_t q = rel->indptr[u]; q < rel->indptr[u + 1]; q++) r[rel->indices[q]] = 0;
    }
    printf("NDCG@10 over %lld users, candidates = the %d new items:\n", (long long)nusers, nn);
    for (int rk = 0; rk < NR; rk++) printf("  %-26s %.4f\n", names[rk], tot[rk] / (double)nusers);
    printf("times (wall s, shared machine): ials fit %.2f (%s), mapper fit %.3f (reg %g, %d feature "
           "columns, %d warm items, max CG steps %d), fm fit %.2f\n",
           t_ials, ials_params, t_map, reg, feat->n_feats, cs->n_warm, cs->iters_max, t_fm);
    rf_profile_free(prof);
    free(sc);
    free(r);
    free(all_sc);
    free(popsc);
    free(catpop);
    free(Vn);
    free(warm);
    free(has);
    free(isnew);
    free(cand);
    free(newid);
    free(newlist);
    rf_coldstart_free(cs);
    rf_item_features_free(feat);
    rf_model_free(ials);
    rf_model_free(fm);
    rf_model_free(pop);
    rf_csr_free(rel);
    rf_dataset_free(d);
    rf_events_free(train);
    rf_events_free(all);
    rf_catalog_free(cat);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
