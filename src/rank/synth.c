/* synth.c - seeded synthetic learning-to-rank data (rank_int.h) for the
 * ranker's tests and benchmark: a relevance that depends nonlinearly on
 * a few features, so trees can beat a linear ranker and both beat a
 * random order. */
#include <math.h>
#include <string.h>

#include "rank_int.h"
#include "recfuse/error.h"
#include "recfuse/mem.h"
#include "recfuse/rng.h"

void rk_synth_free(rk_synth *s) {
    if (!s) return;
    rf_free(s->x);
    rf_free(s->label);
    rf_free(s->group);
    memset(s, 0, sizeof *s);
}

int rk_synth_make(rk_synth *s, int64_t n_groups, int rows, int32_t n_feats, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (n_groups < 1 || rows < 1 || n_feats < 4) return RF_EINVAL;
    int64_t n = n_groups * rows;
    s->x = rf_malloc_array((size_t)n * (size_t)n_feats, sizeof *s->x);
    s->label = rf_malloc_array((size_t)n, sizeof *s->label);
    s->group = rf_malloc_array((size_t)n_groups + 1, sizeof *s->group);
    if (!s->x || !s->label || !s->group) {
        rk_synth_free(s);
        return RF_ENOMEM;
    }
    rf_rng g;
    rf_rng_seed(&g, seed);
    for (int64_t q = 0; q <= n_groups; q++) s->group[q] = q * rows;
    for (int64_t i = 0; i < n; i++) {
        float *xi = s->x + i * n_feats;
        for (int32_t f = 0; f < n_feats; f++) xi[f] = (float)rf_rng_normal(&g);
        double lat = 0.7 * xi[0] + 1.5 * (xi[1] > 0.3f && xi[2] > -0.2f) - 0.5 * xi[1] * xi[1] +
                     0.5 * rf_rng_normal(&g);
        if (rf_rng_uniform(&g) < 0.02) xi[3] = NAN;
        s->label[i] = lat > 1.8 ? 3.0f : lat > 1.2 ? 2.0f : lat > 0.6 ? 1.0f : 0.0f;
    }
    s->d = (rf_rank_data){.n_rows = n, .n_feats = n_feats, .x = s->x, .label = s->label,
                          .n_groups = n_groups, .group = s->group};
    return 0;
}
