/* progress.h - progress bar for long work.
 *
 * Drawn on stderr only when stderr is a terminal and quiet mode is off;
 * otherwise every call is cheap and prints nothing. Redraws at most ~10
 * times a second. Update from one thread (or guard it yourself). */
#ifndef RECFUSE_PROGRESS_H
#define RECFUSE_PROGRESS_H

#include <stdint.h>

typedef struct rf_progress rf_progress;

/* Process-wide switch (set by the CLI's --quiet). */
void rf_progress_set_quiet(int quiet);
int rf_progress_enabled(void);

/* Start a bar; total <= 0 means unknown (a counter is shown). Returns NULL
 * on allocation failure, and all functions accept NULL. */
rf_progress *rf_progress_start(const char *label, int64_t total);
void rf_progress_set(rf_progress *p, int64_t done);
void rf_progress_add(rf_progress *p, int64_t delta);
/* Final redraw, newline, free. */
void rf_progress_finish(rf_progress *p);

#endif
