/* main.c - the tnmtl command-line program: dispatch to subcommands. */
#include "cli.h"

#include <cblas.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"compare", cmd_compare, "train STL, UD-MTL and TNRMTL over seeds and print a comparison table"},
    {"tune", cmd_tune, "choose the method and its gamma (UD: shared depth) on validation, then fit and test it"},
    {"train", cmd_train, "train one multi-task model (checkpoints, sharing report, JSON result)"},
    {"eval", cmd_eval, "evaluate a saved model"},
    {"report", cmd_report, "one self-contained HTML page (and SVG figures) from run, compare and tune folders"},
    {"norm", cmd_norm, "tensor trace norm (LAF/Tucker/TT) of an .npy tensor"},
    {"data-info", cmd_data_info, "load any --data source and print its tasks, classes and counts (JSON)"},
    {"omniglot-info", cmd_omniglot, "load Omniglot and print its tasks, class counts and load time (JSON)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tnmtl COMMAND [OPTIONS]\n\n"
               "Deep multi-task learning with tensor trace-norm regularisation.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'tnmtl COMMAND --help' describes a command's options.\n");
}

/* Commands that run split over processes (mpirun -np P): they train or
 * evaluate one model at a time.  The others (reports, data and norm tools)
 * run in one process. */
static int runs_distributed(const char *name)
{
    return !strcmp(name, "train") || !strcmp(name, "eval") || !strcmp(name, "compare") || !strcmp(name, "tune");
}

static int run_command(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("tnmtl %s%s\n", TNMTL_VERSION, tnmtl_dist_has_mpi() ? " (MPI)" : "");
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        if (tnmtl_dist_size(cli_dist) > 1 && !runs_distributed(argv[1])) {
            snprintf(cli_last_error, sizeof cli_last_error, "tnmtl: error: '%s' runs in one process; "
                     "of the commands train, eval, compare and tune run under mpirun", argv[1]);
            fprintf(stderr, "%s\n", cli_last_error);
            return EXIT_BAD_INPUT;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "tnmtl: error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_BAD_INPUT;
}

#ifdef TNMTL_MPI
/* Under mpirun: the writer (process 0) prints as the one-process tool does;
 * the others keep quiet unless they fail alone.  A failure anywhere stops
 * every process (MPI_Abort) with the failing one's exit status. */
int main(int argc, char **argv)
{
    tnmtl_error err = {0};
    if (tnmtl_dist_init(&argc, &argv, &cli_dist, &err)) {
        fprintf(stderr, "tnmtl: error: %s\n", err.msg);
        return EXIT_FAILURE_OTHER;
    }
    const int rank = tnmtl_dist_rank(cli_dist), size = tnmtl_dist_size(cli_dist);
    int own_stderr = -1;
    if (size > 1) {
        /* The processes of one machine share its cores (unless the user
         * sets OpenBLAS's threads: the same count as a one-process run makes
         * even large norms agree bit for bit, docs/performance.md). */
        if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(cli_cores_per_process());
        if (rank > 0) {
            own_stderr = dup(STDERR_FILENO);
            int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
            if (null >= 0) {
                fflush(stdout);
                dup2(null, STDOUT_FILENO);
                dup2(null, STDERR_FILENO);
                close(null);
            }
        }
    }
    const int code = run_command(argc, argv);
    if (code != EXIT_OK && size > 1) {
        fflush(stdout);
        fflush(stderr);
        if (rank > 0) {
            /* A failure every process meets (an option, the data) is the
             * writer's to report, and its abort ends this process first;
             * one of this process alone is reported here after a moment. */
            sleep(3);
            if (own_stderr >= 0) {
                dprintf(own_stderr, "tnmtl: process %d of %d failed: %s\n", rank, size,
                        cli_last_error[0] ? cli_last_error : "(no message)");
            }
        }
        tnmtl_dist_abort(cli_dist, code);
    }
    tnmtl_dist_finalize(cli_dist);
    return code;
}
#else
int main(int argc, char **argv)
{
    return run_command(argc, argv);
}
#endif
