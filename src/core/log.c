/* log.c - leveled key=value logger (the only process-wide mutable state). */
#include "recfuse/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "recfuse/util.h"

static volatile int g_level = RF_LOG_INFO;
static rf_log_sink g_sink = NULL;
static void *g_sink_ud = NULL;

void rf_log_set_level(rf_log_level level) { g_level = level; }
rf_log_level rf_log_get_level(void) { return (rf_log_level)g_level; }

int rf_log_level_parse(const char *s) {
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return RF_LOG_WARN;
    return -1;
}

void rf_log_set_sink(rf_log_sink sink, void *ud) {
    g_sink = sink;
    g_sink_ud = ud;
}

void rf_log_write(rf_log_level level, const char *event, const char *fmt, ...) {
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    if (level < (rf_log_level)g_level || level >= RF_LOG_OFF) return;
    char line[2048];
    char ts[32];
    rf_format_time(rf_now(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s event=%s", ts, names[level], event);
    if (n < 0) return;
    if (fmt && *fmt && (size_t)n < sizeof line - 1) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (g_sink) {
        g_sink(g_sink_ud, level, line);
        return;
    }
    size_t len = strlen(line);
    if (len < sizeof line - 1) {
        line[len++] = '\n';
        line[len] = 0;
    }
    fputs(line, stderr); /* one write per line under stdio's stream lock */
}
