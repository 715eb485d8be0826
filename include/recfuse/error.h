/* error.h - recfuse error codes and the error context every fallible call fills.
 *
 * Functions that can fail return int: 0 on success or a negative RF_E* code.
 * When they take an `rf_err *err`, they also write a readable message there
 * ("ratings.tsv:1042: value: not a number"). `err` may be NULL. */
#ifndef RECFUSE_ERROR_H
#define RECFUSE_ERROR_H

#include <stdarg.h>

/* X(NAME, code, description): the one list that generates the enum,
 * rf_strerror() and rf_err_name(). */
#define RF_ERROR_MAP(X)                                   \
    X(OK, 0, "success")                                   \
    X(NOMEM, -1, "out of memory")                         \
    X(INVAL, -2, "invalid argument")                      \
    X(IO, -3, "input/output error")                       \
    X(PARSE, -4, "parse error")                           \
    X(NOTFOUND, -5, "not found")                          \
    X(FORMAT, -6, "bad or foreign file format")           \
    X(DB, -7, "database error")                           \
    X(RANGE, -8, "value out of range")                    \
    X(STATE, -9, "invalid state")                         \
    X(UNSUPPORTED, -10, "unsupported")                    \
    X(CORRUPT, -11, "corrupt data (checksum mismatch)")   \
    X(EXISTS, -12, "already exists")                      \
    X(TOOBIG, -13, "too big for available memory")

enum {
#define RF_ERR_ENUM_(name, code, desc) RF_E##name = (code),
    RF_ERROR_MAP(RF_ERR_ENUM_)
#undef RF_ERR_ENUM_
};
#define RF_OK RF_EOK

#define RF_ERR_MSG_MAX 1024

typedef struct rf_err {
    int code;                  /* last code set, RF_OK if none */
    char msg[RF_ERR_MSG_MAX];  /* readable detail, "" if none */
} rf_err;

/* Clear an error context (code RF_OK, empty message). NULL is a no-op. */
void rf_err_clear(rf_err *err);

/* Record `code` and a printf-style message in `err` (NULL allowed) and
 * return `code`, so callers can write `return rf_err_set(err, RF_EINVAL, ...)`. */
int rf_err_set(rf_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend context to an existing message: "ctx: old message". Returns err->code. */
int rf_err_prefix(rf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Static description of a code ("out of memory"); "unknown error" otherwise. */
const char *rf_strerror(int code);

/* Static symbolic name of a code ("RF_ENOMEM"). */
const char *rf_err_name(int code);

#endif
