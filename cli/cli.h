/* cli.h - shared pieces of the tnmtl command-line program. */
#ifndef TNMTL_CLI_H
#define TNMTL_CLI_H

#include <signal.h>
#include <stdint.h>

#include "tnmtl.h"
#include "tnmtl/mtl.h"

/* Exit codes of every subcommand. */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1,  /* internal error                              */
    EXIT_BAD_INPUT = 2,      /* usage, options, input files, resource limits */
    EXIT_DIVERGED = 3        /* training stopped on NaN/Inf                 */
};

/* The processes of this run (tnmtl/dist.h): set by main for the MPI build
 * (`make mpi`), NULL (one process) otherwise.  Every process runs the same
 * command on the same options; only the writer (process 0) claims folders,
 * writes files and prints, the others compute their tasks. */
extern tnmtl_dist *cli_dist;
int cli_is_writer(void);
/* This machine's cores divided among the run's processes on it, at most
 * the cores this process is bound to (>= 1). */
int cli_cores_per_process(void);
/* The last message cli_fail or cli_usage_error printed ("" if none): a
 * process that is not the writer prints it under its rank when it fails. */
extern char cli_last_error[1024];

/* Prints "tnmtl CMD: error: MSG" on stderr and returns the exit code that
 * fits the status. */
int cli_fail(const char *cmd, const tnmtl_error *err);
/* Same for a message built here (usage and option errors: exit 2). */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Strict option parsing: the whole string must be a number in [lo, hi].
 * On failure err names the option and the value. */
tnmtl_status cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out, tnmtl_error *err);
tnmtl_status cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out, tnmtl_error *err);
/* Comma-separated list of doubles, at most cap entries. */
tnmtl_status cli_parse_double_list(const char *opt, const char *s, double *out, int cap, int *n, tnmtl_error *err);

/* Prints a JSON document on stdout (tab-indented) and deletes it; returns
 * EXIT_OK, or EXIT_FAILURE_OTHER (message on stderr) when it cannot be
 * printed. */
struct cJSON;
int cli_print_json(const char *cmd, struct cJSON *root);
/* Comma list of methods (stl,ud,laf,tucker,tt), each at most once, at most cap. */
tnmtl_status cli_parse_methods(const char *s, tnmtl_method *out, int cap, int *n, tnmtl_error *err);

/* Set once SIGINT or SIGTERM arrives after cli_catch_stop_signals(): a
 * long command (train, compare, tune) checkpoints and stops, exit 130. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_stop_signals(void);

/* Subcommands: each returns the process exit code. */
int cmd_norm(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_omniglot(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_data_info(int argc, char **argv);
int cmd_tune(int argc, char **argv);

#endif
