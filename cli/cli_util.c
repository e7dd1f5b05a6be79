/* cli_util.c - error reporting and strict option parsing for the CLI. */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_print_json(const char *cmd, cJSON *root)
{
    char *text = root ? cJSON_Print(root) : NULL;
    int rc = EXIT_OK;
    if (text) {
        printf("%s\n", text);
    } else {
        fprintf(stderr, "tnmtl %s: error: out of memory printing JSON\n", cmd);
        rc = EXIT_FAILURE_OTHER;
    }
    cJSON_free(text);
    cJSON_Delete(root);
    return rc;
}

tnmtl_dist *cli_dist;
char cli_last_error[1024];

int cli_is_writer(void)
{
    return tnmtl_dist_rank(cli_dist) == 0;
}

int cli_cores_per_process(void)
{
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int per = (int)(cpus > 0 ? cpus : 1) / tnmtl_dist_local_size(cli_dist);
    /* mpirun may bind each process to fewer cores (Open MPI binds each of
     * up to 2 processes to one core unless --bind-to none): threads beyond
     * those would only take turns. */
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) < per) per = CPU_COUNT(&allowed);
    return per > 1 ? per : 1;
}

int cli_fail(const char *cmd, const tnmtl_error *err)
{
    snprintf(cli_last_error, sizeof cli_last_error, "tnmtl %s: error: %s", cmd,
             err->msg[0] ? err->msg : tnmtl_status_name(err->status));
    fprintf(stderr, "%s\n", cli_last_error);
    switch (err->status) {
    case TNMTL_OK: return EXIT_OK;
    case TNMTL_ERR_NUMERIC: return EXIT_DIVERGED;
    case TNMTL_ERR_INTERNAL: return EXIT_FAILURE_OTHER;
    default: return EXIT_BAD_INPUT;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cli_last_error, sizeof cli_last_error, "tnmtl %s: error: ", cmd);
    if (n >= 0 && (size_t)n < sizeof cli_last_error) vsnprintf(cli_last_error + n, sizeof cli_last_error - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n(see 'tnmtl %s --help')\n", cli_last_error, cmd);
    va_end(ap);
    return EXIT_BAD_INPUT;
}

tnmtl_status cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out, tnmtl_error *err)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: '%s' is not an integer", opt, s ? s : "");
    if (v < lo || v > hi)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    *out = v;
    return TNMTL_OK;
}

tnmtl_status cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out, tnmtl_error *err)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: '%s' is not a finite number", opt, s ? s : "");
    if (v < lo || v > hi)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: %g is out of range [%g, %g]", opt, v, lo, hi);
    *out = v;
    return TNMTL_OK;
}

tnmtl_status cli_parse_double_list(const char *opt, const char *s, double *out, int cap, int *n, tnmtl_error *err)
{
    *n = 0;
    if (!s || !*s) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: empty list", opt);
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: bad list '%s'", opt, s);
        if (*n >= cap)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: more than %d values in '%s'", opt, cap, s);
        memcpy(item, p, len);
        item[len] = '\0';
        tnmtl_status st = cli_parse_double(opt, item, -INFINITY, INFINITY, &out[*n], err);
        if (st) return st;
        (*n)++;
        if (!comma) break;
        p = comma + 1;
    }
    return TNMTL_OK;
}

tnmtl_status cli_parse_methods(const char *s, tnmtl_method *out, int cap, int *n, tnmtl_error *err)
{
    *n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--methods: list too long");
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= cap) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--methods: at most %d methods", cap);
        tnmtl_status st = tnmtl_method_parse(tok, &out[*n], err);
        if (st) return st;
        for (int i = 0; i < *n; i++)
            if (out[i] == out[*n]) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--methods: '%s' is listed twice", tok);
        (*n)++;
    }
    if (*n == 0) return tnmtl_fail(err, TNMTL_ERR_INVALID, "--methods: empty list");
    return TNMTL_OK;
}

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
