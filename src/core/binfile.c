/* binfile.c - versioned, checksummed, atomically written binary files.
 *
 * DESIGN: the writer streams through stdio into PATH.tmp.PID while
 * updating a CRC-32; commit appends the CRC and trailer, fsyncs, renames
 * and fsyncs the directory (the rdb.c pattern). The reader checks the
 * whole file's CRC before handing out any payload byte. */
#include "recfuse/binfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "recfuse needs a little-endian host");

static const char TRAILER[8] = {'R', 'F', 'E', 'N', 'D', 0, 0, 0};
#define HEADER_SIZE 16
#define FOOTER_SIZE 12

struct rf_writer {
    FILE *f;
    char *path, *tmp;
    uLong crc;
    int failed;
    char *mem;       /* memory writer (open_memstream): the buffer */
    size_t mem_size;
};

struct rf_reader {
    FILE *f;
    char *path;
    int64_t remaining;
};

int rf_writer_open(const char *path, const char magic[8], uint32_t version, rf_writer **out,
                   rf_err *err) {
    rf_writer *w = rf_calloc(1, sizeof *w);
    if (!w) return rf_err_set(err, RF_ENOMEM, "out of memory");
    size_t n = strlen(path) + 32;
    w->path = rf_strdup(path);
    w->tmp = rf_malloc(n);
    if (!w->path || !w->tmp) {
        rf_free(w->path);
        rf_free(w->tmp);
        rf_free(w);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    snprintf(w->tmp, n, "%s.tmp.%d", path, (int)getpid());
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        int e = errno;
        rf_err_set(err, RF_EIO, "cannot write '%s': %s", w->tmp, strerror(e));
        rf_free(w->path);
        rf_free(w->tmp);
        rf_free(w);
        return RF_EIO;
    }
    w->crc = crc32(0L, Z_NULL, 0);
    uint32_t hdr[2] = {version, 0};
    rf_writer_put(w, magic, 8);
    rf_writer_put(w, hdr, sizeof hdr);
    *out = w;
    return 0;
}

int rf_writer_put(rf_writer *w, const void *p, size_t n) {
    if (w->failed) return RF_EIO;
    const unsigned char *b = p;
    size_t left = n;
    while (left > 0) { /* crc32 takes a uInt length */
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        w->crc = crc32(w->crc, b, chunk);
        b += chunk;
        left -= chunk;
    }
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = 1;
        return RF_EIO;
    }
    return 0;
}

int rf_writer_u32(rf_writer *w, uint32_t v) { return rf_writer_put(w, &v, sizeof v); }
int rf_writer_i64(rf_writer *w, int64_t v) { return rf_writer_put(w, &v, sizeof v); }
int rf_writer_f64(rf_writer *w, double v) { return rf_writer_put(w, &v, sizeof v); }
int rf_writer_str(rf_writer *w, const char *s) {
    size_t n = s ? strlen(s) : 0;
    int rc = rf_writer_u32(w, (uint32_t)n);
    return rc ? rc : rf_writer_put(w, s, n);
}

static void writer_free(rf_writer *w) {
    rf_free(w->path);
    rf_free(w->tmp);
    rf_free(w);
}

void rf_writer_abort(rf_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->mem); /* allocated by open_memstream */
    writer_free(w);
}

int rf_writer_open_mem(rf_writer **out, rf_err *err) {
    rf_writer *w = rf_calloc(1, sizeof *w);
    if (!w) return rf_err_set(err, RF_ENOMEM, "out of memory");
    w->f = open_memstream(&w->mem, &w->mem_size);
    if (!w->f) {
        rf_free(w);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    w->crc = crc32(0L, Z_NULL, 0);
    *out = w;
    return 0;
}

int rf_writer_put_mem(rf_writer *dst, rf_writer *w, rf_err *err) {
    int failed = w->failed || fclose(w->f) != 0;
    w->f = NULL;
    int rc = failed ? RF_EIO : rf_writer_i64(dst, (int64_t)w->mem_size);
    if (rc == 0) rc = rf_writer_put(dst, w->mem, w->mem_size);
    rf_writer_abort(w);
    return rc ? rf_err_set(err, RF_EIO, "write failed") : 0;
}

int rf_writer_commit(rf_writer *w, rf_err *err) {
    uint32_t crc = (uint32_t)w->crc;
    if (!w->failed && (fwrite(&crc, 4, 1, w->f) != 1 || fwrite(TRAILER, 8, 1, w->f) != 1))
        w->failed = 1;
    if (!w->failed && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)) w->failed = 1;
    int e = errno;
    if (fclose(w->f) != 0) w->failed = 1;
    w->f = NULL;
    if (w->failed) {
        rf_err_set(err, RF_EIO, "cannot write '%s': %s", w->tmp, strerror(e ? e : EIO));
        rf_writer_abort(w);
        return RF_EIO;
    }
    if (rename(w->tmp, w->path) != 0) {
        e = errno;
        rf_err_set(err, RF_EIO, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(e));
        rf_writer_abort(w);
        return RF_EIO;
    }
    char *dcopy = rf_strdup(w->path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        rf_free(dcopy);
    }
    writer_free(w);
    return 0;
}

int rf_reader_open(const char *path, const char magic[8], uint32_t max_version,
                   uint32_t *version, rf_reader **out, rf_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return rf_err_set(err, e == ENOENT ? RF_ENOTFOUND : RF_EIO, "cannot open '%s': %s", path,
                          strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < HEADER_SIZE + FOOTER_SIZE) {
        fclose(f);
        return rf_err_set(err, RF_EFORMAT, "'%s': too short to be a recfuse file", path);
    }
    char hdr[HEADER_SIZE];
    if (fread(hdr, 1, HEADER_SIZE, f) != HEADER_SIZE || memcmp(hdr, magic, 8) != 0) {
        fclose(f);
        return rf_err_set(err, RF_EFORMAT, "'%s': not a '%.7s' file (wrong magic)", path, magic);
    }
    uint32_t ver;
    memcpy(&ver, hdr + 8, 4);
    if (ver == 0 || ver > max_version) {
        fclose(f);
        return rf_err_set(err, RF_EFORMAT, "'%s': format version %u is not supported (max %u)",
                          path, ver, max_version);
    }
    /* Verify checksum and trailer over the whole file. */
    int64_t body = (int64_t)st.st_size - FOOTER_SIZE;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)hdr, HEADER_SIZE);
    unsigned char *buf = rf_malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    int64_t left = body - HEADER_SIZE;
    while (left > 0) {
        size_t want = left > (1 << 20) ? (1 << 20) : (size_t)left;
        if (fread(buf, 1, want, f) != want) break;
        crc = crc32(crc, buf, (uInt)want);
        left -= (int64_t)want;
    }
    unsigned char foot[FOOTER_SIZE];
    int ok = left == 0 && fread(foot, 1, FOOTER_SIZE, f) == FOOTER_SIZE;
    rf_free(buf);
    if (!ok || memcmp(foot + 4, TRAILER, 8) != 0) {
        fclose(f);
        return rf_err_set(err, RF_EFORMAT, "'%s': truncated file (no trailer)", path);
    }
    uint32_t stored;
    memcpy(&stored, foot, 4);
    if (stored != (uint32_t)crc) {
        fclose(f);
        return rf_err_set(err, RF_ECORRUPT, "'%s': checksum mismatch, file is corrupt", path);
    }
    if (fseek(f, HEADER_SIZE, SEEK_SET) != 0) {
        fclose(f);
        return rf_err_set(err, RF_EIO, "'%s': seek failed", path);
    }
    rf_reader *r = rf_calloc(1, sizeof *r);
    if (!r || !(r->path = rf_strdup(path))) {
        rf_free(r);
        fclose(f);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    r->f = f;
    r->remaining = body - HEADER_SIZE;
    if (version) *version = ver;
    *out = r;
    return 0;
}

int rf_reader_get(rf_reader *r, void *p, size_t n, rf_err *err) {
    if ((int64_t)n > r->remaining)
        return rf_err_set(err, RF_EFORMAT, "'%s': payload ends early (need %zu bytes, %lld left)",
                          r->path, n, (long long)r->remaining);
    if (n && fread(p, 1, n, r->f) != n)
        return rf_err_set(err, RF_EIO, "'%s': read failed", r->path);
    r->remaining -= (int64_t)n;
    return 0;
}

int rf_reader_u32(rf_reader *r, uint32_t *v, rf_err *err) { return rf_reader_get(r, v, 4, err); }
int rf_reader_i64(rf_reader *r, int64_t *v, rf_err *err) { return rf_reader_get(r, v, 8, err); }
int rf_reader_f64(rf_reader *r, double *v, rf_err *err) { return rf_reader_get(r, v, 8, err); }

int rf_reader_str(rf_reader *r, char **s, size_t max_len, rf_err *err) {
    uint32_t n;
    int rc = rf_reader_u32(r, &n, err);
    if (rc) return rc;
    if (n > max_len || (int64_t)n > r->remaining)
        return rf_err_set(err, RF_EFORMAT, "'%s': string length %u out of range", r->path, n);
    char *b = rf_malloc((size_t)n + 1);
    if (!b) return rf_err_set(err, RF_ENOMEM, "out of memory");
    rc = rf_reader_get(r, b, n, err);
    if (rc) {
        rf_free(b);
        return rc;
    }
    b[n] = 0;
    *s = b;
    return 0;
}

int64_t rf_reader_remaining(const rf_reader *r) { return r->remaining; }

int rf_reader_limit(rf_reader *r, int64_t *beyond, rf_err *err) {
    int64_t n;
    int rc = rf_reader_i64(r, &n, err);
    if (rc) return rc;
    if (n < 0 || n > r->remaining)
        return rf_err_set(err, RF_EFORMAT, "'%s': embedded record of %lld bytes, %lld left",
                          r->path, (long long)n, (long long)r->remaining);
    *beyond = r->remaining - n;
    r->remaining = n;
    return 0;
}

int rf_reader_unlimit(rf_reader *r, int64_t beyond, rf_err *err) {
    if (r->remaining != 0)
        return rf_err_set(err, RF_EFORMAT, "'%s': %lld unread bytes in an embedded record",
                          r->path, (long long)r->remaining);
    r->remaining = beyond;
    return 0;
}

void rf_reader_close(rf_reader *r) {
    if (!r) return;
    fclose(r->f);
    rf_free(r->path);
    rf_free(r);
}
