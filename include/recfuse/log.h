/* log.h - leveled logger with key=value fields, to stderr by default.
 *
 * The logger is the only process-wide mutable state in recfuse. A line
 * looks like: `ts=2026-11-24T03:52:22Z level=info event=import.done rows=100`.
 * Disabled levels cost one comparison: rf_log() checks the level before it
 * formats anything. Thread-safe: each line is written with one call. */
#ifndef RECFUSE_LOG_H
#define RECFUSE_LOG_H

typedef enum rf_log_level {
    RF_LOG_DEBUG = 0,
    RF_LOG_INFO = 1,
    RF_LOG_WARN = 2,
    RF_LOG_ERROR = 3,
    RF_LOG_OFF = 4
} rf_log_level;

/* A sink receives each formatted line (without trailing newline). */
typedef void (*rf_log_sink)(void *ud, rf_log_level level, const char *line);

void rf_log_set_level(rf_log_level level);
rf_log_level rf_log_get_level(void);
/* Parse "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int rf_log_level_parse(const char *s);
/* Replace the sink (NULL restores stderr). */
void rf_log_set_sink(rf_log_sink sink, void *ud);

/* `event` is a dotted name; `fmt` formats the key=value fields, e.g.
 * rf_log(RF_LOG_INFO, "import.done", "file=%s rows=%lld", path, n). */
void rf_log_write(rf_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rf_log(level, event, ...)                                        \
    do {                                                                 \
        if ((level) >= rf_log_get_level()) rf_log_write(level, event, __VA_ARGS__); \
    } while (0)

#endif
