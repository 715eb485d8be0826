/* error.c - error codes, their descriptions, and the error context. */
#include "recfuse/error.h"

#include <stdio.h>
#include <string.h>

void rf_err_clear(rf_err *err) {
    if (!err) return;
    err->code = RF_OK;
    err->msg[0] = 0;
}

int rf_err_set(rf_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int rf_err_prefix(rf_err *err, const char *fmt, ...) {
    if (!err) return RF_EINVAL;
    char prefix[RF_ERR_MSG_MAX], old[RF_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    if (old[0])
        snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    else
        snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, rf_strerror(err->code));
    return err->code;
}

const char *rf_strerror(int code) {
    switch (code) {
#define RF_ERR_DESC_(name, c, desc) \
    case c: return desc;
        RF_ERROR_MAP(RF_ERR_DESC_)
#undef RF_ERR_DESC_
    }
    return "unknown error";
}

const char *rf_err_name(int code) {
    switch (code) {
#define RF_ERR_NAME_(name, c, desc) \
    case c: return "RF_E" #name;
        RF_ERROR_MAP(RF_ERR_NAME_)
#undef RF_ERR_NAME_
    }
    return "RF_EUNKNOWN";
}
