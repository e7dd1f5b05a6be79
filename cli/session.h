/* session.h - one training run: data, split, model, optimiser, options. */
#ifndef TNMTL_CLI_SESSION_H
#define TNMTL_CLI_SESSION_H

#include <cJSON.h>
#include <signal.h>
#include <stdio.h>

#include "history.h"
#include "run.h"
#include "runfolder.h"

typedef struct session {
    run_options opts;
    tnmtl_dataset ds;
    tnmtl_split split;
    tnmtl_mtl *model;
    tnmtl_optim optim;
    double train_seconds;
    double received_per_step;   /* bytes, under mpirun (0: one process)  */
    int borrowed_data;          /* ds belongs to the caller               */
    runfolder *folder;          /* the claimed out_dir (NULL: none): checkpoints and
                                   reports go through its identity and replacement */
    run_history history;        /* per-step rows, saved with checkpoints  */
    int64_t val_step;           /* the last step session_train measured the
                                   validation part at (-1: none), and its */
    double val_mean;            /* session_validation_mean then           */
    int val_at_end_only;        /* session_train measures the validation part
                                   only at its last step and at checkpoints,
                                   not every steps/20 (tune's warm starts and
                                   early rungs, whose curve nothing reads)   */
    /* Optional: asked at each point of the validation curve, in order (step,
     * mean validation metric as history.csv has it), whether training should
     * stop there; tune's confirmations that fall clearly behind (cli/tune_search.c). */
    int (*halt)(void *user, int64_t step, double val);
    void *halt_user;
    int64_t halted_at;          /* the step halt stopped training at (0: none) */
} session;

/* The steps between two points of a run's validation curve: steps/20, at
 * least 1 (session_train measures the validation part there). */
static inline int64_t session_curve_every(int64_t steps) { return steps >= 20 ? steps / 20 : 1; }

/* Loads the data (or uses the caller's, which must outlive the session),
 * makes the split, builds and initialises the model from options. */
tnmtl_status session_start(session *s, const run_options *o, const tnmtl_dataset *data, tnmtl_error *err);
/* Rebuilds the run saved in dir (its configuration, data, parameters,
 * optimiser state and step).  data: the caller's copy of the data the saved
 * configuration names (it must outlive the session), or NULL to load it. */
tnmtl_status session_resume(session *s, const char *dir, const tnmtl_dataset *data, tnmtl_error *err);
/* The run loaded from dir (session_resume) is the only one there: no file
 * of another run (runfolder_verify, naming the file). */
tnmtl_status session_verify_folder(const session *s, const char *dir, tnmtl_error *err);
/* The history of the run whose checkpoint was copied from from_dir into the
 * session's claimed folder dir (tune's reused trial) goes with it. */
tnmtl_status session_take_history(session *s, const char *from_dir, const char *dir, tnmtl_error *err);
/* Trains up to opts.steps; with out_dir, checkpoints every save_every steps
 * and at the end.  With s->halt set, a point of the validation curve (out_dir
 * only) that it answers non-zero ends training there: the step is saved as
 * a checkpoint, s->halted_at names it and the call returns OK.  A resumed
 * run's curve so far is put to s->halt first, in order; if it answers
 * non-zero at the checkpoint's step, the run trains no further.  Progress
 * on stderr unless quiet.  With s->folder (claimed for out_dir, opts.run_id
 * its run id), a run replacing an earlier one saves nothing when stopped or
 * diverged before its first checkpoint: the earlier run stays. */
tnmtl_status session_train(session *s, const char *out_dir, int quiet, volatile sig_atomic_t *stop,
                           tnmtl_error *err);
/* Writes dir/checkpoint.safetensors (the options as JSON, parameters,
 * optimiser state); dir must exist. */
tnmtl_status session_save(const session *s, const char *dir, tnmtl_error *err);
/* Evaluates every part of the split and the sharing; with out_dir also writes
 * results.json and the sharing report files there (recorded in s->folder's
 * manifest when set). */
tnmtl_status session_evaluate(session *s, const char *out_dir, cJSON **result, tnmtl_error *err);
/* The model's validation metric averaged over the tasks (NaN if a task's
 * is): the one session_train measured for the history at the current step,
 * else measured now. */
tnmtl_status session_validation_mean(session *s, double *out, tnmtl_error *err);
/* Per-layer sharing summary table. */
void session_print_sharing(session *s, FILE *f);
void session_free(session *s);

#endif
