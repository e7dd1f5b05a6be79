/* tnmtl/error.h - status codes, error messages and logging.
 *
 * Every fallible library function returns a tnmtl_status and, when it fails,
 * fills the caller's tnmtl_error (which may be NULL) with a message that names
 * the problem.  The library never exits and never prints except through the
 * replaceable log function below.
 */
#ifndef TNMTL_ERROR_H
#define TNMTL_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnmtl_status {
    TNMTL_OK = 0,
    TNMTL_ERR_INVALID,   /* bad argument, option or architecture            */
    TNMTL_ERR_FORMAT,    /* malformed or foreign input file                  */
    TNMTL_ERR_IO,        /* a file could not be opened, read or written      */
    TNMTL_ERR_NOMEM,     /* allocation failed                                */
    TNMTL_ERR_TOO_BIG,   /* refused up front: would need more than allowed   */
    TNMTL_ERR_NUMERIC,   /* NaN/Inf values, divergence, LAPACK failure       */
    TNMTL_ERR_INTERNAL   /* a bug: an invariant of the library was broken    */
} tnmtl_status;

typedef struct tnmtl_error {
    tnmtl_status status;
    char msg[512];
} tnmtl_error;

/* Sets err (if not NULL) and returns st.  Usage: return tnmtl_fail(err, ...). */
tnmtl_status tnmtl_fail(tnmtl_error *err, tnmtl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes err->msg with "context: " (used to add a file name or layer). */
void tnmtl_error_prefix(tnmtl_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void tnmtl_error_clear(tnmtl_error *err);
const char *tnmtl_status_name(tnmtl_status st);

/* Logging: the library reports progress and warnings only through this hook.
 * The default writes to stderr; pass NULL to silence. */
typedef enum { TNMTL_LOG_INFO = 0, TNMTL_LOG_WARN = 1 } tnmtl_log_level;
typedef void (*tnmtl_log_fn)(void *user, tnmtl_log_level level, const char *msg);
void tnmtl_set_log(tnmtl_log_fn fn, void *user);
void tnmtl_log(tnmtl_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
