/* cmd_data_info.c - `tnmtl data-info --data SPEC`: loads any data source as
 * the trainer would (reading every file) and prints its tasks, classes,
 * examples per task and class, example shape and memory as JSON.  For an
 * image folder every bad file or folder is named on stderr, then it exits 2
 * with nothing on stdout. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run.h"
#include "util.h"

static const char data_info_usage[] =
    "usage: tnmtl data-info --data SPEC [OPTIONS]\n\n"
    "Loads the data as `tnmtl train` would, reading every file, and prints JSON:\n"
    "its tasks, the classes and examples of each (per class), the example shape\n"
    "and the memory its pixels or features take.  For images:DIR every bad file\n"
    "or folder is named (one line each on stderr) and the exit status is 2.\n\n"
    "  --data SPEC          synthetic | csv:FILE | omniglot:PATH | images:DIR | npz:FILE\n"
    "  --size S, --channels 1|3, --invert, --alphabets A, --task-col, --target-col,\n"
    "  --features, --regression | --classification, --data-seed, --threads\n"
    "                       as for train (tnmtl train --help)\n";

typedef struct bad_count {
    int n;
} bad_count;

static void on_bad(void *user, const char *msg)
{
    ((bad_count *)user)->n++;
    fprintf(stderr, "tnmtl data-info: error: %s\n", msg);
}

static cJSON *name_or_null(char *const *names, int i)
{
    return names && names[i] ? cJSON_CreateString(names[i]) : cJSON_CreateNull();
}

int cmd_data_info(int argc, char **argv)
{
    const char *cmd = "data-info";
    run_options o;
    run_options_init(&o);
    o.data[0] = '\0';
    tnmtl_error err;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(data_info_usage, stdout);
            return EXIT_OK;
        }
        int r = run_parse_option(&o, argc, argv, &i, &err);
        if (r < 0) return cli_usage_error(cmd, "%s", err.msg);
        if (r == 0) return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
    }
    if (!o.data[0]) return cli_usage_error(cmd, "no --data SPEC given");
    if (run_finalise(&o, NULL, &err)) return cli_fail(cmd, &err);

    tnmtl_dataset ds;
    bad_count bad = {0};
    double t0 = tnmtl_now();
    if (run_load_dataset(&o, &ds, on_bad, &bad, &err)) {
        if (bad.n > 0 && err.status == TNMTL_ERR_FORMAT) {
            fprintf(stderr, "tnmtl data-info: %d problem%s in %s\n", bad.n, bad.n == 1 ? "" : "s", o.data);
            return EXIT_BAD_INPUT;
        }
        return cli_fail(cmd, &err);
    }
    double secs = tnmtl_now() - t0;
    const int cls = ds.kind == TNMTL_TARGET_CLASS;
    const int64_t ex = tnmtl_dataset_example_size(&ds);
    const double bytes = (double)ds.n_examples * (double)ex * (ds.pixels ? 1.0 : (double)sizeof(float));

    cJSON *root = cJSON_CreateObject(), *tasks = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "source", ds.source);
    cJSON_AddStringToObject(root, "kind", cls ? "classification" : "regression");
    cJSON *shape = cJSON_AddArrayToObject(root, "example_shape");   /* H, W, C */
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(ds.in_h));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(ds.in_w));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(ds.in_c));
    cJSON_AddStringToObject(root, "values", ds.pixels ? "uint8 pixels" : "float32 features");
    cJSON_AddNumberToObject(root, "n_tasks", ds.n_tasks);
    cJSON_AddNumberToObject(root, "n_examples", (double)ds.n_examples);
    cJSON_AddNumberToObject(root, "memory_bytes", bytes);
    cJSON_AddBoolToObject(root, "fixed_split", ds.part != NULL);
    cJSON_AddNumberToObject(root, "load_seconds", secs);
    int64_t *per = NULL;
    for (int t = 0; t < ds.n_tasks; t++) {
        cJSON *jt = cJSON_CreateObject();
        cJSON_AddItemToObject(jt, "name", name_or_null(ds.task_names, t));
        cJSON_AddNumberToObject(jt, "examples", (double)(ds.task_begin[t + 1] - ds.task_begin[t]));
        if (cls) {
            const int k = ds.n_classes[t];
            per = tnmtl_calloc((size_t)k, sizeof *per, "class counts", &err);
            if (!per) {
                cJSON_Delete(jt);
                break;
            }
            for (int64_t i = ds.task_begin[t]; i < ds.task_begin[t + 1]; i++) per[ds.label[i]]++;
            cJSON_AddNumberToObject(jt, "classes", k);
            cJSON *jc = cJSON_AddArrayToObject(jt, "per_class");
            for (int c = 0; c < k; c++) {
                cJSON *o1 = cJSON_CreateObject();
                cJSON_AddItemToObject(o1, "name", name_or_null(ds.class_names ? ds.class_names[t] : NULL, c));
                cJSON_AddNumberToObject(o1, "examples", (double)per[c]);
                cJSON_AddItemToArray(jc, o1);
            }
            free(per);
        }
        if (ds.part) {
            int64_t n[3] = {0, 0, 0};
            for (int64_t i = ds.task_begin[t]; i < ds.task_begin[t + 1]; i++) n[ds.part[i]]++;
            cJSON *js = cJSON_AddObjectToObject(jt, "split");
            cJSON_AddNumberToObject(js, "train", (double)n[0]);
            cJSON_AddNumberToObject(js, "validation", (double)n[1]);
            cJSON_AddNumberToObject(js, "test", (double)n[2]);
        }
        cJSON_AddItemToArray(tasks, jt);
    }
    cJSON_AddItemToObject(root, "tasks", tasks);
    if (cJSON_GetArraySize(tasks) != ds.n_tasks) {   /* out of memory counting a task's classes */
        cJSON_Delete(root);
        root = NULL;
    }
    int rc = cli_print_json(cmd, root);
    tnmtl_dataset_free(&ds);
    return rc;
}
