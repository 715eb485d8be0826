/* progress.c - a progress bar on stderr, only when it is a terminal. */
#include "recfuse/progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "recfuse/mem.h"
#include "recfuse/util.h"

struct rf_progress {
    char label[48];
    int64_t total, done;
    double start, last_draw;
    int active; /* drawing enabled */
};

static int g_quiet = 0;

void rf_progress_set_quiet(int quiet) { g_quiet = quiet; }

int rf_progress_enabled(void) { return !g_quiet && isatty(STDERR_FILENO); }

static void draw(rf_progress *p, int final) {
    double el = rf_mono() - p->start;
    char eta[32] = "";
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        int w = 30, fill = (int)(frac * w);
        char bar[64];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '-';
        bar[w] = 0;
        if (!final && frac > 0.01) snprintf(eta, sizeof eta, " eta %.0fs", el / frac - el);
        fprintf(stderr, "\r%-24s [%s] %5.1f%% %.1fs%s\033[K", p->label, bar, 100 * frac, el, eta);
    } else {
        fprintf(stderr, "\r%-24s %lld %.1fs\033[K", p->label, (long long)p->done, el);
    }
    if (final) fputc('\n', stderr);
    fflush(stderr);
    p->last_draw = rf_mono();
}

rf_progress *rf_progress_start(const char *label, int64_t total) {
    rf_progress *p = rf_calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->start = rf_mono();
    p->active = rf_progress_enabled();
    if (p->active) draw(p, 0);
    return p;
}

void rf_progress_set(rf_progress *p, int64_t done) {
    if (!p) return;
    p->done = done;
    if (p->active && rf_mono() - p->last_draw > 0.1) draw(p, 0);
}

void rf_progress_add(rf_progress *p, int64_t delta) {
    if (!p) return;
    rf_progress_set(p, p->done + delta);
}

void rf_progress_finish(rf_progress *p) {
    if (!p) return;
    if (p->active) {
        if (p->total > 0) p->done = p->total;
        draw(p, 1);
    }
    rf_free(p);
}
