/* util.h - small parsing and time helpers shared by importers and the CLI. */
#ifndef RECFUSE_UTIL_H
#define RECFUSE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Strict parsers of a whole field (no trailing junk, no empty field).
 * Return 0 or RF_EPARSE / RF_ERANGE. */
int rf_parse_i64(const char *s, size_t len, int64_t *out);
int rf_parse_double(const char *s, size_t len, double *out); /* finite only */

/* Timestamp field to Unix seconds: integer or decimal seconds since the
 * epoch ("881250949", "881250949.5"), or ISO 8601 dates/times
 * ("2024-03-01", "2024-03-01T12:00:00", "2024-03-01 12:00:00Z",
 * "2024-03-01T12:00:00+02:00", with optional fractional seconds).
 * Times without a zone are UTC. Returns 0 or RF_EPARSE. */
int rf_parse_time(const char *s, size_t len, int64_t *out);
/* Format Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
void rf_format_time(int64_t t, char *buf, size_t size);

/* Wall-clock seconds (CLOCK_REALTIME) and monotonic seconds. */
int64_t rf_now(void);
double rf_mono(void);

/* Peak resident set size of this process in bytes (from getrusage). */
int64_t rf_peak_rss(void);

/* Natural comparison of id strings: all-digit strings compare as numbers
 * (shorter first after leading zeros), otherwise bytewise. */
int rf_natural_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* mkdir -p; 0 or RF_EIO with a message. */
struct rf_err;
int rf_mkdirs(const char *path, struct rf_err *err);

#endif
