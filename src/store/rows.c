/* rows.c - record reader for TSV, CSV (RFC 4180), pipe-separated text and JSONL.
 *
 * DESIGN: the file is read in blocks (1 MiB, doubling for longer records)
 * into one buffer; a record is parsed in place between `pos` and `end`.
 * TSV fields are slices of the buffer (no copy: this is the bulk-import
 * path). CSV fields are unescaped into a scratch buffer; when a record runs
 * past the buffered data the parser refills and restarts the record from
 * its first byte, which keeps the state machine free of suspension points
 * at the cost of re-scanning one record now and then. A malformed CSV
 * record ends at the first newline after the error, so one bad quote
 * cannot swallow the rest of the file. */
#include "store/rows.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"

#define RF_ROWS_BLOCK (1u << 20)
#define RF_ROWS_MAX_RECORD ((size_t)1 << 30)

struct rf_rows {
    char *path;
    rf_format fmt;
    char sep;
    int fd;
    gzFile gz;
    char *buf;
    size_t cap, pos, end; /* unread data is buf[pos, end) */
    int eof;
    int started;       /* BOM check done */
    int64_t line;      /* physical lines consumed */
    int64_t read;      /* bytes read from the file */
    int64_t size;
    rf_field *f;
    int fcap;
    char *scratch;     /* CSV unescaped field bytes */
    size_t scap, slen;
    size_t *foff;      /* CSV field offsets into scratch */
    json_t *obj;
};

static int has_suffix(const char *s, size_t n, const char *suf) {
    size_t m = strlen(suf);
    return n >= m && strncasecmp(s + n - m, suf, m) == 0;
}

rf_format rf_rows_format_of(const char *path, rf_format fmt) {
    if (fmt != RF_FMT_AUTO) return fmt;
    size_t n = strlen(path);
    if (has_suffix(path, n, ".gz")) n -= 3;
    if (has_suffix(path, n, ".csv")) return RF_FMT_CSV;
    if (has_suffix(path, n, ".jsonl") || has_suffix(path, n, ".ndjson") ||
        has_suffix(path, n, ".json"))
        return RF_FMT_JSONL;
    return RF_FMT_TSV;
}

int rf_rows_open(const char *path, rf_format fmt, char sep, rf_rows **out, rf_err *err) {
    *out = NULL;
    rf_rows *r = rf_calloc(1, sizeof *r);
    if (!r) return rf_err_set(err, RF_ENOMEM, "out of memory");
    r->fd = -1;
    r->fmt = rf_rows_format_of(path, fmt);
    r->sep = sep ? sep : r->fmt == RF_FMT_CSV ? ',' : '\t';
    r->path = rf_strdup(path);
    r->cap = RF_ROWS_BLOCK;
    r->buf = rf_malloc(r->cap);
    r->fcap = 16;
    r->f = rf_malloc_array((size_t)r->fcap, sizeof *r->f);
    r->foff = rf_malloc_array((size_t)r->fcap + 1, sizeof *r->foff);
    if (!r->path || !r->buf || !r->f || !r->foff) {
        rf_rows_close(r);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        rf_rows_close(r);
        return rf_err_set(err, e == ENOENT ? RF_ENOTFOUND : RF_EIO, "cannot open '%s': %s", path,
                          strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            close(fd);
            rf_rows_close(r);
            return rf_err_set(err, RF_EIO, "cannot read '%s': it is a directory", path);
        }
        r->size = (int64_t)st.st_size;
    }
    size_t n = strlen(path);
    if (has_suffix(path, n, ".gz")) {
        r->gz = gzdopen(fd, "rb");
        if (!r->gz) {
            close(fd);
            rf_rows_close(r);
            return rf_err_set(err, RF_ENOMEM, "cannot open '%s': out of memory", path);
        }
        gzbuffer(r->gz, 1u << 18);
    } else {
        r->fd = fd;
#ifdef POSIX_FADV_SEQUENTIAL
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    }
    *out = r;
    return 0;
}

void rf_rows_close(rf_rows *r) {
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    if (r->fd >= 0) close(r->fd);
    if (r->obj) json_decref(r->obj);
    rf_free(r->path);
    rf_free(r->buf);
    rf_free(r->f);
    rf_free(r->foff);
    rf_free(r->scratch);
    rf_free(r);
}

int64_t rf_rows_offset(const rf_rows *r) {
    if (r->gz) return (int64_t)gzoffset(r->gz);
    return r->read;
}
int64_t rf_rows_size(const rf_rows *r) { return r->size; }
rf_format rf_rows_fmt(const rf_rows *r) { return r->fmt; }

rf_field rf_field_trim(rf_field f) {
    while (f.len > 0 && (f.s[0] == ' ' || f.s[0] == '\t')) f.s++, f.len--;
    while (f.len > 0 && (f.s[f.len - 1] == ' ' || f.s[f.len - 1] == '\t')) f.len--;
    return f;
}

/* Move unread data to the front and read more. Returns 1 when bytes were
 * added, 0 at end of file (sets eof), < 0 on error. */
static int fill(rf_rows *r, rf_err *err) {
    if (r->eof) return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
    }
    if (r->end == r->cap) {
        if (r->cap >= RF_ROWS_MAX_RECORD)
            return rf_err_set(err, RF_EIO, "%s:%lld: row: record longer than %zu bytes", r->path,
                              (long long)r->line + 1, RF_ROWS_MAX_RECORD);
        char *nb = rf_realloc(r->buf, r->cap * 2);
        if (!nb) return rf_err_set(err, RF_ENOMEM, "out of memory reading '%s'", r->path);
        r->buf = nb;
        r->cap *= 2;
    }
    for (;;) {
        ssize_t got;
        if (r->gz) {
            int g = gzread(r->gz, r->buf + r->end, (unsigned)(r->cap - r->end));
            if (g < 0) {
                int zerr;
                const char *m = gzerror(r->gz, &zerr);
                return rf_err_set(err, RF_EIO, "cannot read '%s': %s", r->path, m);
            }
            got = g;
        } else {
            got = read(r->fd, r->buf + r->end, r->cap - r->end);
            if (got < 0) {
                if (errno == EINTR) continue;
                return rf_err_set(err, RF_EIO, "cannot read '%s': %s", r->path, strerror(errno));
            }
        }
        if (got == 0) {
            r->eof = 1;
            break;
        }
        r->end += (size_t)got;
        r->read += got;
        break;
    }
    if (!r->started && (r->end - r->pos >= 3 || r->eof)) {
        r->started = 1;
        if (r->end - r->pos >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0) r->pos += 3;
    }
    return r->eof ? 0 : 1;
}

static int grow_fields(rf_rows *r) {
    int nc = r->fcap * 2;
    rf_field *f = rf_realloc_array(r->f, (size_t)nc, sizeof *f);
    if (!f) return RF_ENOMEM;
    r->f = f;
    size_t *o = rf_realloc_array(r->foff, (size_t)nc + 1, sizeof *o);
    if (!o) return RF_ENOMEM;
    r->foff = o;
    r->fcap = nc;
    return 0;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Next physical line (without its line end) that is not blank.
 * Returns 1, 0 at EOF, < 0 on error. */
static int next_line(rf_rows *r, const char **s, size_t *len, rf_err *err) {
    for (;;) {
        size_t scanned = 0;
        const char *nl;
        for (;;) {
            nl = memchr(r->buf + r->pos + scanned, '\n', r->end - r->pos - scanned);
            if (nl || r->eof) break;
            scanned = r->end - r->pos;
            int rc = fill(r, err);
            if (rc < 0) return rc;
        }
        if (!nl && r->pos == r->end) return 0;
        const char *start = r->buf + r->pos;
        size_t n = nl ? (size_t)(nl - start) : r->end - r->pos;
        r->pos += n + (nl ? 1 : 0);
        r->line++;
        if (n > 0 && start[n - 1] == '\r') n--;
        if (is_blank(start, n)) continue;
        *s = start;
        *len = n;
        return 1;
    }
}

static int split_line(rf_rows *r, const char *s, size_t len, rf_record *rec) {
    int n = 0;
    const char *p = s, *e = s + len;
    for (;;) {
        if (n == r->fcap && grow_fields(r) != 0) return RF_ENOMEM;
        const char *t = memchr(p, r->sep, (size_t)(e - p));
        const char *fe = t ? t : e;
        r->f[n].s = p;
        r->f[n].len = (size_t)(fe - p);
        n++;
        if (!t) break;
        p = t + 1;
    }
    rec->n = n;
    rec->f = r->f;
    return 0;
}

/* ---- CSV ----------------------------------------------------------------- */

enum { CSV_OK, CSV_MORE, CSV_BAD, CSV_NOMEM };

static int sput(rf_rows *r, char c) {
    if (r->slen == r->scap) {
        size_t nc = r->scap ? r->scap * 2 : 4096;
        char *ns = rf_realloc(r->scratch, nc);
        if (!ns) return -1;
        r->scratch = ns;
        r->scap = nc;
    }
    r->scratch[r->slen++] = c;
    return 0;
}

/* Parse one record from buf[pos, end). On CSV_OK/CSV_BAD *used is the
 * bytes consumed, *rawlen the record text length, *nls the newlines in
 * it; fields are offsets in foff[0..*nf]. CSV_MORE: needs more data. */
static int csv_parse(rf_rows *r, size_t *used, size_t *rawlen, int64_t *nls, int *nf,
                     const char **why) {
    const char *b = r->buf + r->pos;
    size_t avail = r->end - r->pos, q = 0;
    int eof = r->eof;
    *nls = 0;
    *nf = 0;
    r->slen = 0;
    r->foff[0] = 0;
    for (;;) { /* one field per iteration */
        if (*nf == r->fcap && grow_fields(r) != 0) return CSV_NOMEM;
        size_t q2 = q; /* spaces before an opening quote are tolerated */
        while (q2 < avail && b[q2] == ' ') q2++;
        if (q2 == avail && q2 > q && !eof) return CSV_MORE;
        if (q2 < avail && b[q2] == '"') {
            q = q2 + 1;
            for (;;) {
                if (q == avail) {
                    if (!eof) return CSV_MORE;
                    *why = "bad CSV quoting: unterminated quoted field";
                    *used = *rawlen = q;
                    return CSV_BAD;
                }
                char c = b[q];
                if (c == '"') {
                    if (q + 1 == avail && !eof) return CSV_MORE;
                    if (q + 1 < avail && b[q + 1] == '"') {
                        if (sput(r, '"')) return CSV_NOMEM;
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                if (c == '\n') (*nls)++;
                if (sput(r, c)) return CSV_NOMEM;
                q++;
            }
            r->foff[++*nf] = r->slen;
            while (q < avail && b[q] == ' ') q++; /* and spaces after the closing one */
            if (q == avail) {
                if (!eof) return CSV_MORE;
                *used = *rawlen = q;
                return CSV_OK;
            }
            char c = b[q];
            if (c == r->sep) {
                q++;
                continue;
            }
            if (c == '\n') {
                *rawlen = q;
                *used = q + 1;
                (*nls)++;
                return CSV_OK;
            }
            if (c == '\r') {
                if (q + 1 == avail && !eof) return CSV_MORE;
                if (q + 1 == avail || b[q + 1] == '\n') {
                    *rawlen = q;
                    *used = q + 1 < avail ? q + 2 : q + 1;
                    if (q + 1 < avail) (*nls)++;
                    return CSV_OK;
                }
            }
            *why = "bad CSV quoting: unexpected character after a closing quote";
        } else {
            int bad = 0;
            for (;;) {
                if (q == avail) {
                    if (!eof) return CSV_MORE;
                    size_t e = r->slen;
                    if (e > r->foff[*nf] && r->scratch[e - 1] == '\r') r->slen--;
                    r->foff[++*nf] = r->slen;
                    *used = q;
                    *rawlen = q > 0 && b[q - 1] == '\r' ? q - 1 : q;
                    return CSV_OK;
                }
                char c = b[q];
                if (c == r->sep) {
                    r->foff[++*nf] = r->slen;
                    q++;
                    break;
                }
                if (c == '\n') {
                    if (r->slen > r->foff[*nf] && r->scratch[r->slen - 1] == '\r') r->slen--;
                    r->foff[++*nf] = r->slen;
                    *rawlen = q > 0 && b[q - 1] == '\r' ? q - 1 : q;
                    *used = q + 1;
                    (*nls)++;
                    return CSV_OK;
                }
                if (c == '"') {
                    *why = "bad CSV quoting: quote inside an unquoted field";
                    bad = 1;
                    break;
                }
                if (sput(r, c)) return CSV_NOMEM;
                q++;
            }
            if (!bad) continue; /* the field ended at a separator */
        }
        /* Malformed: the record ends at the next newline. */
        const char *nl = memchr(b + q, '\n', avail - q);
        if (!nl) {
            if (!eof) return CSV_MORE;
            *used = avail;
            *rawlen = avail > 0 && b[avail - 1] == '\r' ? avail - 1 : avail;
            return CSV_BAD;
        }
        size_t at = (size_t)(nl - b);
        *rawlen = at > 0 && b[at - 1] == '\r' ? at - 1 : at;
        *used = at + 1;
        (*nls)++;
        return CSV_BAD;
    }
}

static int csv_next(rf_rows *r, rf_record *rec, char *reason, size_t rsz, rf_err *err) {
    for (;;) {
        if (r->pos == r->end) {
            int rc = fill(r, err);
            if (rc < 0) return rc;
            if (r->pos == r->end) return 0;
        }
        size_t used = 0, rawlen = 0;
        int64_t nls = 0;
        int nf = 0;
        const char *why = NULL;
        int st = csv_parse(r, &used, &rawlen, &nls, &nf, &why);
        if (st == CSV_MORE) {
            int rc = fill(r, err);
            if (rc < 0) return rc;
            continue;
        }
        if (st == CSV_NOMEM) return rf_err_set(err, RF_ENOMEM, "out of memory reading '%s'", r->path);
        rec->line = r->line + 1;
        rec->raw = r->buf + r->pos;
        rec->raw_len = rawlen;
        r->pos += used;
        r->line += nls > 0 ? nls : 1;
        if (st == CSV_BAD) {
            snprintf(reason, rsz, "%s", why);
            rec->n = 0;
            rec->f = r->f;
            return RF_EPARSE;
        }
        if (nf == 1 && is_blank(r->scratch, r->foff[1])) continue;
        for (int i = 0; i < nf; i++) {
            r->f[i].s = r->scratch + r->foff[i];
            r->f[i].len = r->foff[i + 1] - r->foff[i];
        }
        rec->n = nf;
        rec->f = r->f;
        return 1;
    }
}

/* ---- entry point ----------------------------------------------------------- */

int rf_rows_next(rf_rows *r, rf_record *rec, char *reason, size_t rsz, rf_err *err) {
    rec->obj = NULL;
    if (r->fmt == RF_FMT_CSV) return csv_next(r, rec, reason, rsz, err);
    const char *s;
    size_t len;
    int rc = next_line(r, &s, &len, err);
    if (rc <= 0) return rc;
    rec->line = r->line;
    rec->raw = s;
    rec->raw_len = len;
    if (r->fmt == RF_FMT_JSONL) {
        if (r->obj) {
            json_decref(r->obj);
            r->obj = NULL;
        }
        json_error_t je;
        json_t *o = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        rec->n = 0;
        rec->f = r->f;
        if (!o) {
            snprintf(reason, rsz, "invalid JSON: %s", je.text);
            return RF_EPARSE;
        }
        if (!json_is_object(o)) {
            json_decref(o);
            snprintf(reason, rsz, "expected a JSON object");
            return RF_EPARSE;
        }
        r->obj = o;
        rec->obj = o;
        return 1;
    }
    if (split_line(r, s, len, rec) != 0)
        return rf_err_set(err, RF_ENOMEM, "out of memory reading '%s'", r->path);
    return 1;
}
