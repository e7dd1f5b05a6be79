/* error.c - status codes, error messages, logging hook. */
#include "tnmtl/error.h"

#include <stdio.h>
#include <string.h>

tnmtl_status tnmtl_fail(tnmtl_error *err, tnmtl_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = st;
    }
    return st;
}

void tnmtl_error_prefix(tnmtl_error *err, const char *fmt, ...)
{
    if (!err) return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* msg <- prefix ": " msg, cut to fit. */
    const size_t cap = sizeof err->msg - 1, pl = strlen(prefix) + 2;
    if (pl >= cap) return;
    size_t ml = strlen(err->msg);
    if (ml > cap - pl) ml = cap - pl;
    memmove(err->msg + pl, err->msg, ml);
    memcpy(err->msg, prefix, pl - 2);
    memcpy(err->msg + pl - 2, ": ", 2);
    err->msg[pl + ml] = '\0';
}

void tnmtl_error_clear(tnmtl_error *err)
{
    if (!err) return;
    err->status = TNMTL_OK;
    err->msg[0] = '\0';
}

const char *tnmtl_status_name(tnmtl_status st)
{
    switch (st) {
    case TNMTL_OK: return "ok";
    case TNMTL_ERR_INVALID: return "invalid argument";
    case TNMTL_ERR_FORMAT: return "bad format";
    case TNMTL_ERR_IO: return "i/o error";
    case TNMTL_ERR_NOMEM: return "out of memory";
    case TNMTL_ERR_TOO_BIG: return "too big";
    case TNMTL_ERR_NUMERIC: return "numerical error";
    case TNMTL_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

static void log_to_stderr(void *user, tnmtl_log_level level, const char *msg)
{
    (void)user;
    fprintf(stderr, "%s%s\n", level == TNMTL_LOG_WARN ? "warning: " : "", msg);
}

static tnmtl_log_fn log_fn = log_to_stderr;
static void *log_user;

void tnmtl_set_log(tnmtl_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void tnmtl_log(tnmtl_log_level level, const char *fmt, ...)
{
    if (!log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(log_user, level, buf);
}
