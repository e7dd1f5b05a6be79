/* cmd_omniglot.c - `tnmtl omniglot-info PATH`: loads Omniglot as the trainer
 * would and prints its tasks, class counts, load time and peak memory as JSON. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "util.h"

static const char omniglot_usage[] =
    "usage: tnmtl omniglot-info PATH [OPTIONS]\n\n"
    "Loads Omniglot from PATH (a folder with images_background/evaluation .npz and\n"
    "alphabet_ranges.tsv, or with the official images_*.zip, or one .zip of PNGs)\n"
    "and prints JSON: one task per alphabet with its class and example counts,\n"
    "the ink fraction, the load time and the peak memory.\n\n"
    "  --size S             image side after area averaging, 1..105 (default 105)\n"
    "  --alphabets LIST     comma list of alphabet names (default all)\n"
    "  --first K            only the first K alphabets\n"
    "  --sets SET           all, background or evaluation (folders; default all)\n";

int cmd_omniglot(int argc, char **argv)
{
    const char *cmd = "omniglot-info", *path = NULL;
    tnmtl_omniglot_options opt = {0};
    tnmtl_error err;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(omniglot_usage, stdout);
            return EXIT_OK;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", a);
            const char *v = argv[++i];
            long k;
            if (!strcmp(a, "--size")) {
                if (cli_parse_int(a, v, 1, 105, &k, &err)) return cli_fail(cmd, &err);
                opt.size = (int)k;
            } else if (!strcmp(a, "--first")) {
                if (cli_parse_int(a, v, 1, 100000, &k, &err)) return cli_fail(cmd, &err);
                opt.first_alphabets = (int)k;
            } else if (!strcmp(a, "--alphabets")) {
                opt.alphabets = v;
            } else if (!strcmp(a, "--sets")) {
                if (!strcmp(v, "all")) opt.sets = TNMTL_OMNIGLOT_SETS_ALL;
                else if (!strcmp(v, "background")) opt.sets = TNMTL_OMNIGLOT_SETS_BACKGROUND;
                else if (!strcmp(v, "evaluation")) opt.sets = TNMTL_OMNIGLOT_SETS_EVALUATION;
                else return cli_usage_error(cmd, "--sets: '%s' is not all, background or evaluation", v);
            } else {
                return cli_usage_error(cmd, "unknown option %s", a);
            }
        } else if (!path) {
            path = a;
        } else {
            return cli_usage_error(cmd, "more than one PATH ('%s', '%s')", path, a);
        }
    }
    if (!path) return cli_usage_error(cmd, "no PATH given");

    tnmtl_dataset ds;
    double t0 = tnmtl_now();
    if (tnmtl_omniglot_load(path, &opt, &ds, &err)) return cli_fail(cmd, &err);
    double secs = tnmtl_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int64_t bytes = ds.n_examples * tnmtl_dataset_example_size(&ds);
    uint64_t ink = 0;
    for (int64_t i = 0; i < bytes; i++) ink += ds.pixels[i];

    cJSON *root = cJSON_CreateObject(), *tasks = cJSON_CreateArray();
    int64_t classes = 0;
    for (int t = 0; t < ds.n_tasks; t++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ds.task_names[t]);
        cJSON_AddNumberToObject(o, "classes", ds.n_classes[t]);
        cJSON_AddNumberToObject(o, "examples", (double)(ds.task_begin[t + 1] - ds.task_begin[t]));
        cJSON_AddItemToArray(tasks, o);
        classes += ds.n_classes[t];
    }
    cJSON_AddStringToObject(root, "source", ds.source);
    cJSON_AddNumberToObject(root, "size", ds.in_h);
    cJSON_AddNumberToObject(root, "n_tasks", ds.n_tasks);
    cJSON_AddNumberToObject(root, "n_classes", (double)classes);
    cJSON_AddNumberToObject(root, "n_examples", (double)ds.n_examples);
    cJSON_AddNumberToObject(root, "pixel_bytes", (double)bytes);
    cJSON_AddNumberToObject(root, "ink_fraction", bytes ? (double)ink / 255.0 / (double)bytes : 0.0);
    cJSON_AddNumberToObject(root, "load_seconds", secs);
    cJSON_AddNumberToObject(root, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);
    cJSON_AddItemToObject(root, "tasks", tasks);
    int rc = cli_print_json(cmd, root);
    tnmtl_dataset_free(&ds);
    return rc;
}
