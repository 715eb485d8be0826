/* rows.h - record reader for delimited text (TSV, CSV, pipe) and JSONL.
 *
 * Internal to the store. Reads a file (optionally .gz) in large blocks and
 * hands out one record at a time: for delimited text the fields as
 * (pointer, length) slices, for JSONL the parsed object. Handles a UTF-8
 * BOM, CRLF line ends and blank lines (skipped). Pointers are valid until
 * the next rf_rows_next call. */
#ifndef RF_STORE_ROWS_H
#define RF_STORE_ROWS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "recfuse/store.h"

typedef struct rf_field {
    const char *s;
    size_t len;
} rf_field;

typedef struct rf_record {
    int n;            /* fields (delimited text) */
    rf_field *f;
    json_t *obj;      /* JSONL: the object, borrowed until the next call */
    int64_t line;     /* 1-based line where the record starts */
    const char *raw;  /* the record's text without its line end */
    size_t raw_len;
} rf_record;

typedef struct rf_rows rf_rows;

/* Resolve RF_FMT_AUTO by the file name. */
rf_format rf_rows_format_of(const char *path, rf_format fmt);

/* Open `path` as `fmt` (RF_FMT_AUTO resolved by name). `sep` overrides
 * the TSV separator (e.g. '|'), 0 for the format's own. RF_ENOTFOUND /
 * RF_EIO with "cannot open 'PATH': reason". */
int rf_rows_open(const char *path, rf_format fmt, char sep, rf_rows **out, struct rf_err *err);
void rf_rows_close(rf_rows *r);

/* Next record: 1 = record in *rec, 0 = end of file. RF_EPARSE = a bad
 * record (CSV quoting, invalid JSON): *rec has its line and raw text and
 * `reason` says why (the caller decides whether to skip it);
 * other negative codes are I/O errors with err set. */
int rf_rows_next(rf_rows *r, rf_record *rec, char *reason, size_t reason_size,
                 struct rf_err *err);

/* Bytes of the file consumed so far and the file size (compressed bytes
 * for .gz), for progress. */
int64_t rf_rows_offset(const rf_rows *r);
int64_t rf_rows_size(const rf_rows *r);
rf_format rf_rows_fmt(const rf_rows *r);

/* Trim ASCII spaces (and tabs for non-TSV) around a field. */
rf_field rf_field_trim(rf_field f);

#endif
