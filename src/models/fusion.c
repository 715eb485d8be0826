/* fusion.c - the "fusion" model: multi-channel candidates ordered by a
 * learned ranker (or a simple blend), as one registered model, so train,
 * evaluate, recommend, tune and the server use it like any other.
 *
 * Parameters: one candidate count per channel, named after the channel
 * (0 switches it off), the ordering (`ranker`: gbdt, linear, weighted,
 * rrf, switch), the slice, and the ranker's main options. The machinery
 * is in src/fusion/ (fusion_int.h lists the stages); this file is the
 * rf_model_ops glue and the model file payload:
 *   u32 channels, then each channel as a whole model record
 *   (rf_model_write) prefixed by its i64 length (binfile.h's embedded
 *   records, so each channel's loader sees exactly its own payload), u32 mode, u32 best channel, i32 cold channel,
 *   u32 switch_min, channels x f32 blend weights, the side tables
 *   (side.c), u32 has_ranker and the ranker (rf_ranker_save). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "fusion/fusion_int.h"
#include "recfuse/binfile.h"
#include "recfuse/error.h"
#include "recfuse/fusion.h"
#include "recfuse/mem.h"

const char *const fu_kind_names[FU_N_KINDS] = {"itemknn", "userknn", "ials",  "ease",   "bpr",
                                               "pop",     "trending", "rules", "content"};

#define CAND(kind, name, def)                                                                   \
    {name, RF_P_INT, offsetof(fu_params, cand) + (kind) * sizeof(int), def, 0, 10000, NULL,    \
     "candidates from the " name " channel (0: channel off)"}

static const rf_param_def fusion_defs[] = {
    CAND(FU_ITEMKNN, "itemknn", 100),
    CAND(FU_USERKNN, "userknn", 100),
    CAND(FU_IALS, "ials", 100),
    CAND(FU_EASE, "ease", 100),
    CAND(FU_BPR, "bpr", 0),
    CAND(FU_POP, "pop", 50),
    CAND(FU_TRENDING, "trending", 50),
    CAND(FU_RULES, "rules", 50),
    CAND(FU_CONTENT, "content", 0),
    {"ranker", RF_P_ENUM, offsetof(fu_params, ranker), FU_GBDT, 0, 4,
     "gbdt,linear,weighted,rrf,switch",
     "ordering of the candidates: learned ranker (gbdt LambdaMART, linear) or a simple blend"},
    {"slice", RF_P_ENUM, offsetof(fu_params, slice), FU_SLICE_USER, 0, 1, "user,time",
     "ranker slice: each user's last pairs (user) or the last part of the time span (time)"},
    {"slice_ratio", RF_P_DOUBLE, offsetof(fu_params, slice_ratio), 0.2, 0.01, 0.9, NULL,
     "share of each user's pairs (or of the time span) held out for the ranker"},
    {"valid_share", RF_P_DOUBLE, offsetof(fu_params, valid_share), 0.2, 0, 0.9, NULL,
     "share of slice users kept for the ranker's early stopping"},
    {"slice_users", RF_P_INT, offsetof(fu_params, slice_users), 4000, 0, 2147483647, NULL,
     "most slice users the ranker learns from (a seeded sample; 0: all)"},
    {"trees", RF_P_INT, offsetof(fu_params, trees), 300, 1, 100000, NULL, "GBDT rounds (max)"},
    {"leaves", RF_P_INT, offsetof(fu_params, leaves), 31, 2, 4096, NULL, "GBDT leaves per tree"},
    {"min_leaf", RF_P_INT, offsetof(fu_params, min_leaf), 20, 1, 1000000, NULL,
     "GBDT fewest rows per leaf"},
    {"lr", RF_P_DOUBLE, offsetof(fu_params, lr), 0.05, 1e-6, 1, NULL, "GBDT learning rate"},
    {"l2", RF_P_DOUBLE, offsetof(fu_params, l2), 1, 0, 1e6, NULL, "GBDT L2 on leaf values"},
    {"bins", RF_P_INT, offsetof(fu_params, bins), 64, 2, 255, NULL, "GBDT histogram bins"},
    {"ff", RF_P_DOUBLE, offsetof(fu_params, ff), 1, 0.01, 1, NULL,
     "GBDT share of features tried per tree"},
    {"ndcg_at", RF_P_INT, offsetof(fu_params, ndcg_at), 10, 0, 10000, NULL,
     "LambdaMART NDCG truncation (0: none)"},
    {"early_stop", RF_P_INT, offsetof(fu_params, early_stop), 30, 0, 100000, NULL,
     "GBDT rounds without validation gain before stopping (0: off)"},
    {"epochs", RF_P_INT, offsetof(fu_params, epochs), 20, 1, 10000, NULL, "linear ranker epochs"},
    {"switch_min", RF_P_INT, offsetof(fu_params, switch_min), 3, 0, 1000000, NULL,
     "switch blend: users with fewer history items get the cold channel"},
    {"ease_max_items", RF_P_INT, offsetof(fu_params, ease_max_items), 20000, 0, 2147483647, NULL,
     "catalogs larger than this fit without the ease channel (dense items x items; 0: no limit)"},
    {"raw", RF_P_INT, offsetof(fu_params, raw), 0, 0, 1, NULL,
     "1: the channels' raw scores are ranker features too (not scale-robust)"},
    {"seed", RF_P_INT, offsetof(fu_params, seed), 1, 0, 2147483647, NULL,
     "seed of the validation users and the ranker"},
    {0},
};

static int fusion_create(rf_model *m, rf_err *err) {
    fu_impl *f = rf_calloc(1, sizeof *f);
    if (!f) return rf_err_set(err, RF_ENOMEM, "out of memory");
    f->cold_ch = -1;
    if (fu_pool_new(f)) {
        rf_free(f);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    m->impl = f;
    return 0;
}

static void fusion_destroy(rf_model *m) {
    fu_impl *f = m->impl;
    if (!f) return;
    for (int k = 0; k < FU_MAX_CH; k++) rf_model_free(f->ch[k]);
    rf_ranker_free(f->ranker);
    fu_side_free(&f->side);
    fu_fixed_free(f);
    fu_pool_free(f);
    rf_free(f);
    m->impl = NULL;
}

static const char *fusion_check(const void *params) {
    const fu_params *p = params;
    int any = 0;
    for (int k = 0; k < FU_N_KINDS; k++) any |= p->cand[k] > 0;
    if (!any) return "at least one channel needs candidates > 0";
    return NULL;
}

static int fusion_score_all(const rf_model *m, int32_t user, const rf_hist *h, float *out,
                            rf_err *err) {
    const fu_impl *f = m->impl;
    if (h->n == 0 && (user < 0 || user >= m->n_users)) {
        /* fallback contract (model.h): nothing is known of the user, and the
         * ranker never learnt from such users - popularity, i.e. the pop
         * channel, else the first channel's own fallback */
        const rf_model *pop = rf_fusion_channel(m, "pop");
        return rf_model_score_all(pop ? pop : f->ch[0], -1, h, out, err);
    }
    fu_scratch *w = fu_scratch_get(f, m->n_items);
    if (!w) return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = fu_score_user(m, w, user, h, out, err);
    fu_scratch_put(f, w);
    return rc;
}

static int fusion_save(const rf_model *m, rf_writer *w, rf_err *err) {
    const fu_impl *f = m->impl;
    int rc = rf_writer_u32(w, (uint32_t)f->n_ch);
    if (rc) return rf_err_set(err, RF_EIO, "fusion: write failed");
    for (int k = 0; k < f->n_ch; k++) { /* each channel as a length-prefixed record */
        rf_writer *mw;
        if ((rc = rf_writer_open_mem(&mw, err))) return rc;
        if ((rc = rf_model_write(f->ch[k], mw, err))) {
            rf_writer_abort(mw);
            return rc;
        }
        if ((rc = rf_writer_put_mem(w, mw, err))) return rc;
    }
    rc = rf_writer_u32(w, (uint32_t)f->mode);
    rc |= rf_writer_u32(w, (uint32_t)f->best_ch);
    rc |= rf_writer_i64(w, f->cold_ch);
    rc |= rf_writer_u32(w, (uint32_t)f->switch_min);
    rc |= rf_writer_put(w, f->w, (size_t)f->n_ch * sizeof(float));
    rc |= fu_side_save(&f->side, w);
    rc |= rf_writer_u32(w, f->ranker != NULL);
    if (rc) return rf_err_set(err, RF_EIO, "fusion: write failed");
    return f->ranker ? rf_ranker_save(f->ranker, w, err) : 0;
}

static int fusion_load(rf_model *m, rf_reader *r, rf_err *err) {
    const fu_params *p = m->params;
    fu_impl *f = m->impl;
    uint32_t n, u;
    int64_t cold;
    int rc;
    if ((rc = rf_reader_u32(r, &n, err))) return rc;
    f->n_ch = 0;
    for (int kd = 0; kd < FU_N_KINDS; kd++)
        if (p->cand[kd] > 0) {
            f->kind[f->n_ch] = kd;
            f->cand[f->n_ch++] = p->cand[kd];
        }
    if ((int)n != f->n_ch)
        return rf_err_set(err, RF_EFORMAT, "fusion: %u channels in the file, %d in the parameters",
                          n, f->n_ch);
    for (int k = 0; k < f->n_ch; k++) {
        int64_t beyond;
        if ((rc = rf_reader_limit(r, &beyond, err)) || (rc = rf_model_read(r, &f->ch[k], err)) ||
            (rc = rf_reader_unlimit(r, beyond, err))) {
            if (err) rf_err_prefix(err, "fusion channel %d", k);
            return rc;
        }
        if (strcmp(f->ch[k]->ops->name, fu_kind_names[f->kind[k]]) != 0 ||
            f->ch[k]->n_items != m->n_items || f->ch[k]->n_users != m->n_users)
            return rf_err_set(err, RF_EFORMAT, "fusion: channel %d is %s %d x %d, expected %s "
                              "%d x %d", k, f->ch[k]->ops->name, (int)f->ch[k]->n_users,
                              (int)f->ch[k]->n_items, fu_kind_names[f->kind[k]], (int)m->n_users,
                              (int)m->n_items);
    }
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    if (u > FU_SWITCH) return rf_err_set(err, RF_EFORMAT, "fusion: bad mode %u", u);
    f->mode = (int)u;
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    if ((int)u >= f->n_ch) return rf_err_set(err, RF_EFORMAT, "fusion: bad best channel %u", u);
    f->best_ch = (int)u;
    if ((rc = rf_reader_i64(r, &cold, err))) return rc;
    if (cold < -1 || cold >= f->n_ch)
        return rf_err_set(err, RF_EFORMAT, "fusion: bad cold channel %lld", (long long)cold);
    f->cold_ch = (int)cold;
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    f->switch_min = (int)u;
    f->raw = p->raw;
    if ((rc = rf_reader_get(r, f->w, (size_t)f->n_ch * sizeof(float), err))) return rc;
    for (int k = 0; k < f->n_ch; k++)
        if (!isfinite(f->w[k])) return rf_err_set(err, RF_EFORMAT, "fusion: non-finite weight");
    if ((rc = fu_side_load(&f->side, r, m->n_users, m->n_items, err))) return rc;
    if ((rc = rf_reader_u32(r, &u, err))) return rc;
    if (u > 1) return rf_err_set(err, RF_EFORMAT, "fusion: bad ranker flag %u", u);
    if (u) {
        if ((rc = rf_ranker_load(r, &f->ranker, err))) return rc;
        if (rf_ranker_n_feats(f->ranker) != fu_n_feats(f))
            return rf_err_set(err, RF_EFORMAT, "fusion: ranker has %d features, expected %d",
                              (int)rf_ranker_n_feats(f->ranker), fu_n_feats(f));
    } else if (f->mode == FU_GBDT || f->mode == FU_LINEAR) {
        return rf_err_set(err, RF_EFORMAT, "fusion: ranker mode without a ranker");
    }
    return fu_fixed_init(f, m->n_items, err);
}

const rf_model_ops rf_model_fusion_ops = {
    .name = "fusion",
    .help = "fused model: candidates from several channels ordered by a learned ranker "
            "(docs/fusion.md)",
    .params = fusion_defs,
    .params_size = sizeof(fu_params),
    .create = fusion_create,
    .fit = fu_fit,
    .score_all = fusion_score_all,
    .save = fusion_save,
    .load = fusion_load,
    .destroy = fusion_destroy,
    .params_check = fusion_check,
    .explain = fu_explain,
    .recommend = fu_recommend,
};

/* ---- fusion.h -------------------------------------------------------- */

static const fu_impl *fused(const rf_model *m) {
    return m && m->ops == &rf_model_fusion_ops && m->fitted ? m->impl : NULL;
}

const rf_model *rf_fusion_channel(const rf_model *fusion, const char *name) {
    const fu_impl *f = fused(fusion);
    if (!f || !name) return NULL;
    for (int k = 0; k < f->n_ch; k++)
        if (strcmp(fu_kind_names[f->kind[k]], name) == 0) return f->ch[k];
    return NULL;
}

int rf_fusion_param_channels(const rf_model *fusion, const char **names, int max) {
    if (!fusion || fusion->ops != &rf_model_fusion_ops) return 0;
    const fu_params *p = fusion->params;
    int n = 0;
    for (int k = 0; k < FU_N_KINDS && n < max; k++)
        if (p->cand[k] > 0) names[n++] = fu_kind_names[k];
    return n;
}

int rf_fusion_n_channels(const rf_model *fusion) {
    const fu_impl *f = fused(fusion);
    return f ? f->n_ch : 0;
}

const char *rf_fusion_channel_name(const rf_model *fusion, int i) {
    const fu_impl *f = fused(fusion);
    return f && i >= 0 && i < f->n_ch ? fu_kind_names[f->kind[i]] : NULL;
}

void rf_fusion_describe(const rf_model *fusion, FILE *out) {
    const fu_impl *f = fused(fusion);
    if (!f) return;
    static const char *const modes[] = {"gbdt", "linear", "weighted", "rrf", "switch"};
    fprintf(out, "fusion: %d channels:", f->n_ch);
    for (int k = 0; k < f->n_ch; k++)
        fprintf(out, " %s(%d, w=%.2f)", fu_kind_names[f->kind[k]], f->cand[k], f->w[k]);
    fprintf(out, "\n  order: %s", modes[f->mode]);
    if (f->ranker) fprintf(out, ", %d trees", rf_ranker_n_trees(f->ranker));
    fprintf(out, "; best single channel on the slice: %s\n", fu_kind_names[f->kind[f->best_ch]]);
    if (f->rank_rows)
        fprintf(out, "  slice: %lld groups, %lld rows, candidate recall %.3f\n",
                (long long)f->rank_groups, (long long)f->rank_rows, f->slice_recall);
    if (!f->ranker) return;
    int nf = fu_n_feats(f);
    double gain[512];
    if (nf > 512) return;
    rf_ranker_importance(f->ranker, gain);
    double tot = 0;
    for (int i = 0; i < nf; i++) tot += gain[i];
    fprintf(out, "  top features:");
    for (int shown = 0; shown < 10 && shown < nf; shown++) {
        int b = -1;
        for (int i = 0; i < nf; i++)
            if (gain[i] >= 0 && (b < 0 || gain[i] > gain[b])) b = i;
        if (b < 0 || gain[b] <= 0) break;
        char name[64];
        fu_feature_name(f, b, name, sizeof name);
        fprintf(out, " %s %.1f%%", name, tot > 0 ? 100.0 * gain[b] / tot : 0);
        gain[b] = -1;
    }
    fprintf(out, "\n");
}
