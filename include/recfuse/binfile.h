/* binfile.h - versioned, checksummed binary files written atomically.
 *
 * Layout: 8-byte magic, u32 format version, u32 reserved, payload,
 * then u32 CRC-32 (zlib) of everything before it and the 8-byte trailer
 * "RFEND\0\0\0". Arrays are written in host byte order; recfuse runs on
 * little-endian machines only (checked at build time).
 *
 * Writing goes to PATH.tmp.PID, is fsynced, renamed over PATH and the
 * directory fsynced, so a crash leaves the old file or the new one.
 * Opening checks magic, version, size and checksum before any payload is
 * read, so a truncated or foreign file fails cleanly with RF_EFORMAT or
 * RF_ECORRUPT. */
#ifndef RECFUSE_BINFILE_H
#define RECFUSE_BINFILE_H

#include <stddef.h>
#include <stdint.h>

struct rf_err;
typedef struct rf_writer rf_writer;
typedef struct rf_reader rf_reader;

int rf_writer_open(const char *path, const char magic[8], uint32_t version, rf_writer **out,
                   struct rf_err *err);
int rf_writer_put(rf_writer *w, const void *p, size_t n);
int rf_writer_u32(rf_writer *w, uint32_t v);
int rf_writer_i64(rf_writer *w, int64_t v);
int rf_writer_f64(rf_writer *w, double v);
int rf_writer_str(rf_writer *w, const char *s); /* u32 length + bytes */
/* Finish: checksum, fsync, rename, fsync dir; frees w in every case.
 * Returns 0 or RF_EIO (any earlier put failure is reported here too). */
int rf_writer_commit(rf_writer *w, struct rf_err *err);
/* Drop the temp file and free w. NULL is a no-op. */
void rf_writer_abort(rf_writer *w);

/* Embedded records (a model file holding other models): write the record
 * into a memory writer (rf_writer_open_mem), then rf_writer_put_mem
 * appends it to dst as i64 length + bytes and frees the memory writer in
 * every case. Reading: rf_reader_limit reads the length and makes the
 * record the whole visible payload (*beyond keeps the rest), so the
 * record's own reader can check sizes against rf_reader_remaining;
 * rf_reader_unlimit requires the record consumed exactly (RF_EFORMAT)
 * and restores the rest. */
int rf_writer_open_mem(rf_writer **out, struct rf_err *err);
int rf_writer_put_mem(rf_writer *dst, rf_writer *mem, struct rf_err *err);
int rf_reader_limit(rf_reader *r, int64_t *beyond, struct rf_err *err);
int rf_reader_unlimit(rf_reader *r, int64_t beyond, struct rf_err *err);

/* Open and verify; *version receives the file's format version, which
 * must be <= max_version. */
int rf_reader_open(const char *path, const char magic[8], uint32_t max_version,
                   uint32_t *version, rf_reader **out, struct rf_err *err);
/* Read exactly n bytes; RF_EFORMAT if the payload ends first. */
int rf_reader_get(rf_reader *r, void *p, size_t n, struct rf_err *err);
int rf_reader_u32(rf_reader *r, uint32_t *v, struct rf_err *err);
int rf_reader_i64(rf_reader *r, int64_t *v, struct rf_err *err);
int rf_reader_f64(rf_reader *r, double *v, struct rf_err *err);
/* Newly allocated NUL-terminated string (rf_free it); max_len guards size. */
int rf_reader_str(rf_reader *r, char **s, size_t max_len, struct rf_err *err);
/* Bytes of payload not yet read. */
int64_t rf_reader_remaining(const rf_reader *r);
void rf_reader_close(rf_reader *r);

#endif
