/* runfolder.h - a folder a command writes (a training run, a comparison):
 * one writer at a time, never silently overwritten, one run per folder.
 * The rules and their reasons: docs/robustness.md, "Run folders".
 *
 * A writer claims the folder first, before any slow work:
 *
 *   runfolder rf;
 *   if (runfolder_claim(&rf, dir, "run", RUNFOLDER_NEW, NULL, &err)) return cli_fail(...);  // exit 2
 *   ... store rf.run_id in every file the run writes ...
 *   runfolder_checkpoint_begin(&rf, &err);  save the checkpoint;  runfolder_checkpoint_end(&rf, sig, &err);
 *   runfolder_files_begin(&rf, names, n, &err);  write them;  runfolder_files_end(&rf, names, n, &err);
 *   runfolder_release(&rf);
 *
 * - Lock: DIR/.lock, flock(LOCK_EX | LOCK_NB), opened O_CLOEXEC, holding the
 *   holder's pid; the kernel releases it when the process dies.  A second
 *   writer is refused at once, naming that pid.  Released locks are unlinked,
 *   so a finished folder holds no lock file.
 * - Identity: a run id (32 hex digits) per run.  The checkpoint and
 *   results.json carry it (and the model signature) themselves; DIR/run.json,
 *   the manifest, records it with every other file the run wrote (size and
 *   CRC-32), written atomically after them.  runfolder_verify() refuses a
 *   folder holding a file of another run, naming the file.
 * - Replacement (--overwrite): the earlier run stays untouched until the new
 *   run's first checkpoint; then DIR/.replacing (the new run id) marks the
 *   switch: the checkpoint is renamed over the old one, the earlier run's
 *   other files are removed, the marker goes.  A claim finishes (or undoes)
 *   a switch that a killed process left half done.
 * Readers never take the lock: every file is replaced by an atomic rename.
 */
#ifndef TNMTL_CLI_RUNFOLDER_H
#define TNMTL_CLI_RUNFOLDER_H

#include <stddef.h>

#include "tnmtl.h"

#define RUNFOLDER_MANIFEST "run.json"
#define RUNFOLDER_ID_LEN 32

typedef enum runfolder_mode {
    RUNFOLDER_NEW,       /* a folder holding no run or table (created if missing)         */
    RUNFOLDER_RESUME,    /* continue what is there (a run: the caller adopts its identity
                            with runfolder_adopt; a table folder: the same config)        */
    RUNFOLDER_OVERWRITE  /* a new run, replacing what is there at its first checkpoint;
                            a table folder: a new config is accepted                       */
} runfolder_mode;

typedef struct runfolder {
    char dir[4096];
    char kind[16];               /* "run", "compare", ... (the manifest's kind)        */
    char run_id[RUNFOLDER_ID_LEN + 8]; /* "" = a run without identity (older checkpoint) */
    char *config;                /* table folders: the identity of the table (JSON)    */
    int lock_fd;                 /* -1: not held                                        */
    int created;                 /* claim created dir (removed again if left empty)     */
    int replacing;               /* an earlier run stays until the first checkpoint    */
} runfolder;

/* Locks dir (creating it for NEW / OVERWRITE and for table kinds), finishes an
 * interrupted replacement, then by mode: NEW refuses a folder that holds a run
 * or a table, describing it and what to do (--resume, another folder,
 * --overwrite); OVERWRITE starts a new run that will replace it.  kind "run"
 * is a training run; any other kind is a table folder identified by config
 * (a comparison), which refuses another config unless OVERWRITE.  Every
 * refusal is TNMTL_ERR_INVALID (exit 2); rf needs runfolder_release() only on
 * success. */
tnmtl_status runfolder_claim(runfolder *rf, const char *dir, const char *kind, runfolder_mode mode, const char *config,
                             tnmtl_error *err);
/* After a RESUME claim of a run: what the folder holds decides.  fresh: a new
 * run (a new id; replace: it replaces what is there at its first checkpoint),
 * else the run there is continued under its id run_id ("" for an older run
 * without identity). */
void runfolder_fresh(runfolder *rf, int replace);
void runfolder_adopt(runfolder *rf, const char *run_id);
/* 1 if dir holds a run or a table (desc[cap] says what: method, step of
 * steps, date), 0 if not. */
int runfolder_describe(const char *dir, char *desc, size_t cap);
/* Around every checkpoint write: the first one of a replacing run switches
 * the folder to it; the first one of a run creates its manifest. */
tnmtl_status runfolder_checkpoint_begin(runfolder *rf, tnmtl_error *err);
tnmtl_status runfolder_checkpoint_end(runfolder *rf, const char *signature, tnmtl_error *err);
/* Around writing other files of the run (names relative to dir): recorded
 * as being written, then with their size and CRC-32. */
tnmtl_status runfolder_files_begin(runfolder *rf, char *const *names, int n, tnmtl_error *err);
tnmtl_status runfolder_files_end(runfolder *rf, char *const *names, int n, tnmtl_error *err);
/* Unlocks (removing the lock file) and frees; removes dir if the claim made
 * it and nothing was written. */
void runfolder_release(runfolder *rf);

/* For readers (eval, report) and resumes: dir is one run, run_id's (the id in
 * its checkpoint; "" = an older run, not checked; NULL: the folder's own, from
 * its checkpoint, else run.json, else results.json) of model signature (NULL:
 * not checked).  with_checkpoint: also read the checkpoint's id (callers that
 * have not loaded it).  A reader that loads nothing itself (report) calls
 * runfolder_verify(dir, NULL, NULL, 1, &err).  A file of another run, or one changed since the run
 * recorded it, is refused naming it (TNMTL_ERR_INVALID).  A writer's switch in
 * progress is waited for (up to 5 s). */
tnmtl_status runfolder_verify(const char *dir, const char *run_id, const char *signature, int with_checkpoint,
                              tnmtl_error *err);

#endif
