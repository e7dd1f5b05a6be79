/* main.c - the tnmtl command-line program: dispatch to subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
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
        printf("tnmtl %s\n", TNMTL_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tnmtl: error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_BAD_INPUT;
}
