/* util.c - strict number/time parsing, clocks, natural id order, mkdir -p. */
#include "recfuse/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "recfuse/error.h"

int rf_parse_i64(const char *s, size_t len, int64_t *out) {
    if (len == 0) return RF_EPARSE;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
        if (len == 1) return RF_EPARSE;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return RF_EPARSE;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return RF_ERANGE;
        v = v * 10 + d;
    }
    if (!neg && v > (uint64_t)INT64_MAX) return RF_ERANGE;
    if (neg && v > (uint64_t)INT64_MAX + 1) return RF_ERANGE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int rf_parse_double(const char *s, size_t len, double *out) {
    if (len == 0 || len > 64) return RF_EPARSE;
    char buf[72];
    memcpy(buf, s, len);
    buf[len] = 0;
    if (isspace((unsigned char)buf[0])) return RF_EPARSE;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len) return RF_EPARSE;
    if (!isfinite(v)) return RF_ERANGE;
    if (errno == ERANGE && fabs(v) > 1.0) return RF_ERANGE;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t len, size_t pos, int n, int *out) {
    if (pos + (size_t)n > len) return -1;
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[pos + (size_t)i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

int rf_parse_time(const char *s, size_t len, int64_t *out) {
    if (len == 0) return RF_EPARSE;
    /* Epoch seconds, integer or decimal. */
    int is_num = 1, dots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.')
            dots++;
        else if (!(c >= '0' && c <= '9') && !(i == 0 && c == '-'))
            is_num = 0;
    }
    if (is_num && dots <= 1) {
        if (dots == 0) return rf_parse_i64(s, len, out);
        double v;
        if (rf_parse_double(s, len, &v) != 0) return RF_EPARSE;
        if (fabs(v) > 9.2e18) return RF_ERANGE;
        *out = (int64_t)floor(v);
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0;
    size_t p = 0;
    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || digits(s, len, 8, 2, &d))
        return RF_EPARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return RF_EPARSE;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d > mdays[mo - 1]) return RF_EPARSE;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return RF_EPARSE;
    p = 10;
    int64_t offset = 0;
    if (p < len) {
        if (s[p] != 'T' && s[p] != ' ') return RF_EPARSE;
        p++;
        if (digits(s, len, p, 2, &h) || p + 2 >= len || s[p + 2] != ':' ||
            digits(s, len, p + 3, 2, &mi))
            return RF_EPARSE;
        p += 5;
        if (p < len && s[p] == ':') {
            if (digits(s, len, p + 1, 2, &sec)) return RF_EPARSE;
            p += 3;
            if (p < len && (s[p] == '.' || s[p] == ',')) {
                p++;
                size_t q = p;
                while (p < len && s[p] >= '0' && s[p] <= '9') p++;
                if (p == q) return RF_EPARSE;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) return RF_EPARSE;
        if (p < len) {
            if (s[p] == 'Z' && p + 1 == len) {
                p++;
            } else if (s[p] == '+' || s[p] == '-') {
                int oh, om = 0;
                int sign = s[p] == '-' ? -1 : 1;
                p++;
                if (digits(s, len, p, 2, &oh)) return RF_EPARSE;
                p += 2;
                if (p < len && s[p] == ':') p++;
                if (p < len) {
                    if (digits(s, len, p, 2, &om)) return RF_EPARSE;
                    p += 2;
                }
                if (p != len || oh > 23 || om > 59) return RF_EPARSE;
                offset = sign * (oh * 3600 + om * 60);
            } else {
                return RF_EPARSE;
            }
        }
    }
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 0;
}

void rf_format_time(int64_t t, char *buf, size_t size) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t rf_now(void) { return (int64_t)time(NULL); }

double rf_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t rf_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (int64_t)ru.ru_maxrss * 1024;
}

static int all_digits(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

int rf_natural_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    if (all_digits(a, alen) && all_digits(b, blen)) {
        while (alen > 1 && *a == '0') a++, alen--;
        while (blen > 1 && *b == '0') b++, blen--;
        if (alen != blen) return alen < blen ? -1 : 1;
        int c = memcmp(a, b, alen);
        return (c > 0) - (c < 0);
    }
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c) return (c > 0) - (c < 0);
    return (alen > blen) - (alen < blen);
}

int rf_mkdirs(const char *path, struct rf_err *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return rf_err_set(err, RF_EINVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return rf_err_set(err, RF_EIO, "cannot create directory '%s': %s", buf,
                                  strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return rf_err_set(err, RF_EIO, "'%s' is not a directory", path);
    return 0;
}
