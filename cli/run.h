/* run.h - the options of a training run, shared by train, eval and compare:
 * parsing, defaults per data source, JSON form (stored in checkpoints),
 * loading the data and building the model. */
#ifndef TNMTL_CLI_RUN_H
#define TNMTL_CLI_RUN_H

#include <stdint.h>

#include "tnmtl.h"
#include "tnmtl/mtl.h"

typedef struct run_options {
    /* data */
    char data[1024];            /* "synthetic", "csv:FILE", "omniglot:PATH",
                                 * "images:DIR" or "npz:FILE"                     */
    int size;                   /* omniglot, images: image side (0 = native)      */
    int channels;               /* images: 0 native, 1 or 3                       */
    int invert;                 /* images: 255 - v                                */
    char alphabets[1024];       /* omniglot: "" all, "K" first K, or a name list  */
    char task_col[128], target_col[128], features[4096]; /* csv                   */
    int regression;             /* csv: -1 auto, 0 classification, 1 regression   */
    uint64_t data_seed;         /* synthetic generator                            */
    double train_frac, val_frac;
    int val_from_test;          /* per class: non-training examples moved to validation */
    int folds, fold;            /* folds >= 2: validate on fold `fold` of the training part */
    uint64_t split_seed;
    /* model */
    tnmtl_method method;
    char arch[1024];
    tnmtl_activation act;
    int ud_share;
    double gamma;
    int sum_task_losses;        /* --task-loss sum                                */
    double weight_decay;        /* --weight-decay WD (0: none)                     */
    int reg_every;              /* --reg-every K (approximation; 0/1 = exact)     */
    int gamma_scale;            /* --gamma-scale init: per-term gammas normalised (RUN_GAMMA_SCALE_*) */
    /* training */
    tnmtl_optim_config optim;
    int batch;                  /* per task; 0 = full batch                      */
    int64_t steps;
    double epochs;              /* > 0: overrides steps once the data is known   */
    uint64_t seed;
    int64_t save_every;
    int threads;                /* worker threads; 0 = all CPUs (not saved: results do not depend on it) */
    int dist_norm_split;        /* --dist-norm split (under mpirun; not saved: a run resumes either way) */
    /* which options the user set (defaults depend on the data source) */
    unsigned set_mask;
    /* the run's identity (cli/runfolder.h): set when a run folder is claimed,
     * stored in the configuration, so every checkpoint and results.json of
     * the run carries it; "" = none (runs without --out, older checkpoints) */
    char run_id[40];
} run_options;

enum {
    RUN_SET_ARCH = 1u << 0, RUN_SET_STEPS = 1u << 1, RUN_SET_LR = 1u << 2, RUN_SET_BATCH = 1u << 3,
    RUN_SET_TRAIN_FRAC = 1u << 4, RUN_SET_SPLIT_SEED = 1u << 5, RUN_SET_SHARE = 1u << 6,
    RUN_SET_ACT = 1u << 7, RUN_SET_TASK_LOSS = 1u << 8
};

enum { RUN_GAMMA_SCALE_NONE = 0, RUN_GAMMA_SCALE_INIT = 1 };

void run_options_init(run_options *o);
/* If argv[*i] is a run option, consumes it (and its value), returns 1;
 * returns 0 if it is not one; -1 on a bad value (err filled). */
int run_parse_option(run_options *o, int argc, char **argv, int *i, tnmtl_error *err);
/* Help text of the run options. */
extern const char run_options_help[];
/* Fills defaults that depend on the data source and the loaded data
 * (architecture, steps from epochs, learning rate). */
tnmtl_status run_finalise(run_options *o, const tnmtl_dataset *ds, tnmtl_error *err);

/* JSON form of the options (malloc'd string) and back. */
char *run_options_to_json(const run_options *o);
tnmtl_status run_options_from_json(const char *json, run_options *o, tnmtl_error *err);

/* Loads the data named by o->data (no split); bad_input, if set, hears of
 * every bad file of an image folder.  Shows a progress line on a terminal.
 * Under mpirun, each process keeps its own tasks' inputs only
 * (run_process_tasks): image folders and Omniglot read only those files;
 * the other formats are read whole and the rest freed. */
tnmtl_status run_load_dataset(const run_options *o, tnmtl_dataset *ds, void (*bad_input)(void *, const char *),
                              void *user, tnmtl_error *err);
/* The split of the options on loaded data: tnmtl_split_make_holdout, then,
 * with o->folds, fold o->fold of it (tnmtl_split_fold, seed split_seed). */
tnmtl_status run_make_split(const run_options *o, const tnmtl_dataset *ds, tnmtl_split *split, tnmtl_error *err);
/* weight[ds->n_tasks] <- the training examples per task of the options'
 * split without folds (tnmtl_split_make_holdout): what the tasks are
 * balanced by over the processes of a distributed run.  One weighting for
 * every fold and trial of a command, so that the data loaded once fits
 * them all. */
tnmtl_status run_task_weights(const run_options *o, const tnmtl_dataset *ds, int64_t *weight, tnmtl_error *err);
/* Under mpirun: the tasks [*begin, *end) this process computes
 * (tnmtl_dist_partition of run_task_weights); one process: all. */
tnmtl_status run_process_tasks(const run_options *o, const tnmtl_dataset *ds, int *begin, int *end,
                               tnmtl_error *err);
/* Under mpirun: spreads m's tasks over the processes as run_process_tasks
 * does (tnmtl_mtl_set_dist), with the options' norm mode and, unless
 * --threads says otherwise, this machine's cores shared among its
 * processes.  One process: no-op. */
tnmtl_status run_spread_tasks(const run_options *o, const tnmtl_dataset *ds, tnmtl_mtl *m, tnmtl_error *err);
/* Reads a run configuration (the JSON form) from a file into o. */
tnmtl_status run_options_read_file(const char *path, run_options *o, tnmtl_error *err);
/* Loads the data named by o->data and makes the split. */
tnmtl_status run_load_data(const run_options *o, tnmtl_dataset *ds, tnmtl_split *split, tnmtl_error *err);
/* The model configuration for the data (ud_share < 0 still unresolved);
 * it points into o and ds. */
void run_model_config(const run_options *o, const tnmtl_dataset *ds, tnmtl_mtl_config *mc);
/* Builds (without initialising) the multi-task model for the data; split:
 * the run's split (needed by --gamma-scale init; may be NULL otherwise). */
tnmtl_status run_build_model(const run_options *o, const tnmtl_dataset *ds, const tnmtl_split *split, tnmtl_mtl **m,
                             tnmtl_error *err);

#endif
