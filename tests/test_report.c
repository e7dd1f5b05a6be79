/* test_report.c - `tnmtl report` end to end: the page of a real compare run
 * plus a real tune folder has every section and no external reference,
 * every SVG figure is well-formed XML (also with task names that need
 * escaping), train keeps and resumes its per-step history, bad input exits 2
 * with no page written, and the page renders in headless Chromium from
 * file:// with no console message, every section present, a heat map cell
 * that shows its tasks and value on hover, and a screenshot
 * that is not blank (skipped only outside CI when Chromium is missing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char out[1 << 16];
static char path[8192], path2[1024];

#define tnmtl(merge, ...) tu_cli_run(merge, out, sizeof out, __VA_ARGS__)
#define D tu_group_dir

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static char *slurp(const char *p, size_t *len)
{
    char *b = tu_read_file(p, len);
    if (!b) fail_msg("cannot read %s", p);
    return b;
}

static const char *const sections[] = {"overview", "sharing", "relatedness", "training", "comparison", "tuning"};

/* A compare folder (STL and Tucker, with a validation part) and a real tune
 * folder of the same data: STL's weight-decay path, UD's depths and LAF's gamma path,
 * with validation drawn from the examples outside the training part, so the
 * chosen trial is the final model (reused, not refitted). */
static int setup(void **state)
{
    if (tu_group_setup_tmpdir(state)) return -1;
    if (tnmtl(1, "compare --data synthetic --methods stl,tucker --steps 30 --val-frac 0.25 --out %s/cmp --quiet", D))
        return -1;
    return tnmtl(1, "tune --data synthetic --methods stl,ud,laf --steps 30 --gamma-count 4 --val-from-test 2 "
                    "--out %s/tune --quiet",
                 D)
               ? -1
               : 0;
}

static void test_page_sections(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "%s/page.html", D);
    assert_int_equal(tnmtl(1, "report %s/cmp %s/tune --out %s --figures %s/figs", D, D, path, D), 0);
    size_t len;
    char *html = slurp(path, &len);
    assert_true(len > 10000 && len < 2 << 20);
    for (int i = 0; i < 6; i++) {
        char id[64];
        snprintf(id, sizeof id, "<section id=\"%s\">", sections[i]);
        assert_int_equal(tu_count(html, id), 1);
    }
    /* Content, not just headings: bars, spectra, a heat map with hover data,
     * curves, the gain chart and the tuning curve with its chosen point. */
    assert_true(tu_count(html, "class=\"hm-hit\"") >= 2);
    assert_true(tu_count(html, "HM[\"h0\"]={o:[") == 1);
    assert_non_null(strstr(html, "(spectra_layer0.svg)"));
    assert_non_null(strstr(html, "(training.svg)"));
    assert_non_null(strstr(html, "(gain_per_task.svg)"));
    assert_non_null(strstr(html, "(tuning.svg)"));
    assert_non_null(strstr(html, "Most related pairs"));
    assert_non_null(strstr(html, "g1-t1"));
    /* Nothing outside the file: the only URL is the SVG namespace. */
    const int ns = tu_count(html, "xmlns=\"http://www.w3.org/2000/svg\"");
    assert_true(ns >= 8);
    assert_int_equal(tu_count(html, "http://") + tu_count(html, "https://"), ns);
    assert_int_equal(tu_count(html, "src="), 0);
    assert_int_equal(tu_count(html, "<link"), 0);
    assert_int_equal(tu_count(html, "url("), 0);
    assert_int_equal(tu_count(html, "@import"), 0);
    assert_int_equal(tu_count(html, "href=\""), tu_count(html, "href=\"#"));
    free(html);
}

/* Every figure file parses as XML (python3's expat), and the page's
 * figures are the same count. */
static void check_svgs(const char *dir, int at_least)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sys,glob,xml.etree.ElementTree as E\n"
             "fs=sorted(glob.glob(sys.argv[1]+'/*.svg'))\n"
             "for f in fs:\n"
             "    r=E.parse(f).getroot(); assert r.tag=='{http://www.w3.org/2000/svg}svg', f\n"
             "print(len(fs))\" %s",
             dir);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    assert_true(atoi(out) >= at_least);
}

/* The tune folder alone: its trials.csv as tune writes it (STL and UD rows
 * without gamma, the path's from-scratch confirmation) and its final run,
 * the reused trial's checkpoint with that run's identity and history. */
static void test_tune_folder(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "%s/tune.html", D);
    assert_int_equal(tnmtl(1, "report %s/tune --out %s --figures %s/tunefigs", D, path, D), 0);
    char *html = slurp(path, NULL);
    assert_non_null(strstr(html, "1 run(s), 1 tuning."));
    snprintf(path2, sizeof path2, "%s/tune/trials.csv", D);
    char *csv = slurp(path2, NULL);
    const int rows = tu_count(csv, "\n") - 1;
    /* LAF's and STL's confirmations (the figure's markers), and how many of
     * the two methods have each kind (one legend marker each) */
    int scratch = 0, stopped = 0, scratch_series = 0, stopped_series = 0;
    static const char *const row_of[2] = {"<tr><td>laf</td>", "<tr><td>stl</td>"};
    for (int k = 0; k < 2; k++) {
        int sc = 0, st = 0;
        for (const char *r = strstr(html, row_of[k]); r; r = strstr(r + 1, row_of[k])) {
            const char *end = strchr(r, '\n');
            const char *s = strstr(r, "<td>from scratch");
            if (s && end && s < end) {
                if (strncmp(s, "<td>from scratch, stopped", 25)) sc++;
                else st++;
            }
        }
        scratch += sc, stopped += st;
        scratch_series += sc > 0, stopped_series += st > 0;
    }
    assert_true(rows >= 8);
    /* the table: one row per line of trials.csv, one chosen; the path's confirmations */
    const char *tuning = strstr(html, "<section id=\"tuning\">");
    assert_non_null(tuning);
    assert_int_equal(tu_count(tuning, "<tr><td>"), rows);
    assert_int_equal(tu_count(html, "<b>yes</b>"), 1);
    assert_int_equal(tu_count(csv, ",1\n"), 1);
    assert_true(scratch >= 1);
    /* STL: weight decays, no gamma or N */
    assert_true(tu_count(tuning, "<td>stl</td><td>-</td><td>0.0001</td><td>-</td>") >= 1);
    assert_non_null(strstr(tuning, "<th>batch</th>"));
    free(csv);
    free(html);
    /* A trials.csv from before tune searched the batch size and STL's
     * weight decay (neither column) still reports, both unknown. */
    char cmd[4096];
    snprintf(path, sizeof path, "%s/oldtune", D);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/oldtune && cut -d, -f1-2,4,6- %s/tune/trials.csv > %s/oldtune/trials.csv", D, D, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(path2, sizeof path2, "%s/oldtune.html", D);
    assert_int_equal(tnmtl(1, "report %s --out %s", path, path2), 0);
    html = slurp(path2, NULL);
    tuning = strstr(html, "<section id=\"tuning\">");
    assert_non_null(tuning);
    assert_int_equal(tu_count(tuning, "<tr><td>"), rows);
    assert_true(tu_count(tuning, "<td>stl</td><td>-</td><td>-</td><td>-</td><td>-</td>") >= 2);
    free(html);
    /* The figure (also tune's own trials.svg): LAF's path and its
     * confirmation, STL's over its weight decay on the same axis, UD's best
     * as a reference, the choice ringed. */
    const char *figs[] = {"tunefigs/tuning.svg", "tune/trials.svg"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", D, figs[i]);
        char *svg = slurp(path, NULL);
        assert_non_null(strstr(svg, ">laf</text>"));
        assert_non_null(strstr(svg, ">laf, scratch</text>"));
        /* each confirmation a marker, no line joining them: an open circle,
         * a cross where it stopped behind the start (one more of each kind
         * in the legend) */
        assert_int_equal(tu_count(svg, "<circle class=\"open\""), scratch + scratch_series);
        assert_int_equal(tu_count(svg, "<path class=\"cross\""), stopped + stopped_series);
        assert_non_null(strstr(svg, ">stl (weight decay)</text>"));
        assert_non_null(strstr(svg, ">gamma (STL: weight decay)</text>"));
        assert_non_null(strstr(svg, ">ud (best, N = "));
        assert_int_equal(tu_count(svg, "r=\"7\" fill=\"none\" stroke=\"#000\""), 1);
        free(svg);
    }
    snprintf(path, sizeof path, "%s/tunefigs", D);
    check_svgs(path, 5);
    /* The final folder holds the chosen trial's training history. */
    snprintf(path, sizeof path, "%s/tune/final/history.csv", D);
    char *h = slurp(path, NULL);
    assert_non_null(strstr(h, "\n30,"));
    free(h);
}

/* Shell command (followed by run folders) that makes them look like runs
 * from before run identities (no run.json, no checkpoint, no run id in
 * results.json), so that tests may edit their files: the report checks a
 * run's files against its manifest (cli/runfolder.h) and refuses edited ones. */
#define AS_OLD_RUN                                                                                  \
    "python3 -c \"import json,os,sys\n"                                                            \
    "for d in sys.argv[1:]:\n"                                                                     \
    "    for f in ('run.json', 'checkpoint.safetensors'): os.path.exists(d + '/' + f) and os.remove(d + '/' + f)\n" \
    "    p = d + '/results.json'; j = json.load(open(p)); j.pop('run_id', None); j.pop('signature', None)\n" \
    "    json.dump(j, open(p, 'w'))\""

static void test_svg_well_formed(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "%s/figs", D);
    check_svgs(path, 9);
    /* Task names with XML's special characters: a copy of the runs whose
     * matrices name task g1-t1 'a&b<c "q">'. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp -r %s/cmp %s/odd && for f in %s/odd/*/relatedness_layer*.csv; do "
             "sed -i 's/\"g1-t1\"/\"a\\&b<c \"\"q\"\">\"/g' $f; done && %s %s/odd/*-seed*",
             D, D, D, AS_OLD_RUN, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/odd.html", D);
    assert_int_equal(tnmtl(1, "report %s/odd --out %s --figures %s/oddfigs", D, path, D), 0);
    char *html = slurp(path, NULL);
    assert_non_null(strstr(html, "a&amp;b&lt;c &quot;q&quot;&gt;"));
    assert_null(strstr(html, "a&b<c"));
    free(html);
    snprintf(path, sizeof path, "%s/oddfigs", D);
    check_svgs(path, 8);
}

/* A run made before history.csv and the unfoldings' spectra still reports:
 * the page says what is missing and draws the task-mode spectrum. */
static void test_old_run(void **state)
{
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp -r %s/cmp/tucker-seed0 %s/old && rm %s/old/history.csv && python3 -c \"import json,sys\n"
             "p=sys.argv[1]; j=json.load(open(p))\n"
             "for l in j['layers']: l.pop('unfoldings')\n"
             "json.dump(j, open(p, 'w'))\" %s/old/sharing.json && %s %s/old",
             D, D, D, D, AS_OLD_RUN, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/old.html", D);
    assert_int_equal(tnmtl(1, "report %s/old --out %s", D, path), 0);
    char *html = slurp(path, NULL);
    assert_non_null(strstr(html, "No history.csv"));
    assert_non_null(strstr(html, "task mode (laf, tucker, tt)"));
    assert_null(strstr(html, "mode 1:"));
    free(html);
}

/* history.csv: one row per step, continued on --resume; rows past the
 * checkpoint (a run killed between the history and the checkpoint) are
 * dropped, so no step appears twice. */
static void test_history(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "%s/cmp/tucker-seed0/history.csv", D);
    char *h = slurp(path, NULL);
    assert_int_equal(strncmp(h, "step,data_loss,regulariser,val_metric,elapsed_s\n", 48), 0);
    assert_int_equal(tu_count(h, "\n"), 31);
    assert_non_null(strstr(h, "\n30,"));
    free(h);
    assert_int_equal(tnmtl(1, "train --data synthetic --method tucker --steps 10 --val-frac 0.25 --out %s/h --quiet", D), 0);
    snprintf(path, sizeof path, "%s/h/history.csv", D);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("11,9,9,,99\n12,9,9,,99\n", f); /* steps after the checkpoint of step 10 */
    fclose(f);
    /* as the writer does before a checkpoint: the manifest records the new history */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json,sys,zlib\n"
             "d=sys.argv[1]; h=open(d+'/history.csv','rb').read(); m=json.load(open(d+'/run.json'))\n"
             "e=[e for e in m['files'] if e['name']=='history.csv'][0]\n"
             "e['size']=len(h); e['crc32']='%%08x' %% zlib.crc32(h)\n"
             "json.dump(m, open(d+'/run.json','w'))\" %s/h",
             D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    assert_int_equal(tnmtl(1, "train --resume %s/h --steps 20 --quiet", D), 0);
    h = slurp(path, NULL);
    assert_int_equal(tu_count(h, "\n"), 21);
    int step = 0, prev = 0;
    double elapsed = 0, prev_elapsed = 0;
    for (char *line = strchr(h, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        char *c4 = line;
        for (int k = 0; k < 4; k++) c4 = strchr(c4, ',') + 1;
        step = atoi(line), elapsed = atof(c4);
        assert_int_equal(step, prev + 1);
        assert_true(elapsed >= prev_elapsed && elapsed < 90); /* the fake rows are gone */
        prev = step, prev_elapsed = elapsed;
    }
    assert_int_equal(step, 20);
    assert_non_null(strstr(h, "\n20,"));
    free(h);
}

/* Bad input: exit 2, a message naming the problem, and no page. */
static void expect_refused(const char *args, const char *message)
{
    snprintf(path2, sizeof path2, "%s/bad.html", D);
    remove(path2);
    assert_int_equal(tnmtl(1, "report %s --out %s", args, path2), 2);
    if (!strstr(out, message)) fail_msg("expected '%s' in: %s", message, out);
    assert_false(exists(path2));
}

static void test_bad_input(void **state)
{
    (void)state;
    char args[1024], cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/empty && cp -r %s/cmp/tucker-seed0 %s/trunc && "
                              "head -c 300 %s/cmp/tucker-seed0/sharing.json > %s/trunc/sharing.json && "
                              "cp -r %s/trunc %s/trunc-old && " AS_OLD_RUN " %s/trunc-old",
             D, D, D, D, D, D, D, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(args, sizeof args, "%s/empty", D);
    expect_refused(args, "is not a run folder");
    snprintf(args, sizeof args, "%s/no-such-folder", D);
    expect_refused(args, "not a folder");
    snprintf(args, sizeof args, "%s/trunc", D); /* the manifest knows the file was changed */
    expect_refused(args, "sharing.json does not belong to the run");
    snprintf(args, sizeof args, "%s/trunc-old", D); /* a run without manifest: the parser finds it */
    expect_refused(args, "sharing.json: not valid JSON");
    /* other data: the synthetic problem of another generator seed */
    assert_int_equal(tnmtl(1, "train --data synthetic --data-seed 7 --method stl --steps 3 --out %s/other --quiet", D), 0);
    snprintf(args, sizeof args, "%s/cmp %s/other", D, D);
    expect_refused(args, "runs of different data");
    /* trials.csv: a column missing, a field that is not a number */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/t1 %s/t2 && printf 'method,gamma,share,steps,seconds,chosen\\nlaf,0.1,,30,1,1\\n' > %s/t1/trials.csv && "
             "printf 'method,gamma,share,steps,val_rmse,seconds,chosen\\nlaf,0.1x,,30,1.5,1,1\\n' > %s/t2/trials.csv",
             D, D, D, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(args, sizeof args, "%s/t1", D);
    expect_refused(args, "no column 'val_accuracy_pct|val_rmse'");
    snprintf(args, sizeof args, "%s/t2", D);
    expect_refused(args, "line 2: a method, gamma");
    /* the batch column (tune --batches): optional, but a batch size when there */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/t3 %s/t4 && printf 'method,gamma,share,batch,steps,val_rmse,seconds,chosen\nlaf,0.1,,x,30,1.5,1,1\n' "
             "> %s/t3/trials.csv && printf 'method,gamma,share,batch,steps,val_rmse,seconds,chosen\nlaf,0.1,,-2,30,1.5,1,1\n' "
             "> %s/t4/trials.csv", D, D, D, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(args, sizeof args, "%s/t3", D);
    expect_refused(args, "line 2: batch 'x' is not a batch size");
    snprintf(args, sizeof args, "%s/t4", D);
    expect_refused(args, "line 2: batch '-2' is not a batch size");
    /* the weight_decay column (STL's search): optional, empty but for STL, a number >= 0 when there */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/t5 %s/t6 && printf 'method,gamma,weight_decay,share,batch,steps,val_rmse,seconds,chosen\n"
             "stl,,-1,,0,30,1.5,1,1\n' > %s/t5/trials.csv && printf 'method,gamma,weight_decay,share,batch,steps,"
             "val_rmse,seconds,chosen\nstl,,0.1,,0,30,1.5,1,0\nstl,,nan,,0,30,1.4,1,1\n' > %s/t6/trials.csv",
             D, D, D, D);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(args, sizeof args, "%s/t5", D);
    expect_refused(args, "line 2: weight_decay '-1' is not a number >= 0");
    snprintf(args, sizeof args, "%s/t6", D);
    expect_refused(args, "line 3: weight_decay 'nan' is not a number >= 0");
    snprintf(args, sizeof args, "%s/cmp --bogus", D);
    expect_refused(args, "unknown option");
}

/* ---- headless Chromium ---------------------------------------------------- */

static const char *chromium(void)
{
    static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
    for (int i = 0; i < 3; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "command -v %s", names[i]);
        if (tu_run(cmd, 0, out, sizeof out) == 0) return names[i];
    }
    return NULL;
}

/* Share of pixels of the PNG that are not (near) white. */
static double ink(const char *png_path)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, png_path));
    img.format = PNG_FORMAT_GRAY;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
    size_t n = (size_t)img.width * img.height, dark = 0;
    for (size_t i = 0; i < n; i++) dark += px[i] < 200;
    free(px);
    return (double)dark / (double)n;
}

static void test_browser(void **state)
{
    (void)state;
    const char *chrome = chromium();
    const char *ci = getenv("CI");
    if (!chrome) {
        if (ci && !strcmp(ci, "true")) fail_msg("Chromium is missing under CI (scripts/install-deps.sh installs it)");
        skip();
    }
    char abs[4096], cmd[32768];
    assert_non_null(realpath(D, abs));
    assert_true(strlen(abs) < 1000);
    const char *flags = "--headless --disable-gpu --no-sandbox --no-first-run --hide-scrollbars "
                        "--host-resolver-rules='MAP * ~NOTFOUND' --enable-logging=stderr --v=0";
    snprintf(cmd, sizeof cmd, "cd %s && HOME=%s timeout 180 %s %s --user-data-dir=%s/chrome-profile "
                              "--virtual-time-budget=3000 --dump-dom file://%s/page.html > dom.html 2> console.log",
             abs, abs, chrome, flags, abs, abs);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/dom.html", abs);
    char *dom = slurp(path, NULL);
    assert_non_null(strstr(dom, "data-report=\"ok\"")); /* the page's script ran to its end */
    for (int i = 0; i < 6; i++) {
        char id[64];
        snprintf(id, sizeof id, "<section id=\"%s\">", sections[i]);
        assert_non_null(strstr(dom, id));
    }
    free(dom);
    snprintf(path, sizeof path, "%s/console.log", abs);
    char *log = slurp(path, NULL);
    if (strstr(log, ":CONSOLE") || strstr(log, "Uncaught")) fail_msg("console messages: %s", log);
    if (strstr(log, "net::ERR_NAME_NOT_RESOLVED")) fail_msg("the page tried the network: %s", log);
    free(log);
    /* Hover: a copy of the page that moves the pointer over the first heat
     * map's top-right cell and records the tooltip. */
    snprintf(path, sizeof path, "%s/page.html", abs);
    char *html = slurp(path, NULL), *end = strstr(html, "</body>");
    assert_non_null(end);
    snprintf(path, sizeof path, "%s/hover.html", abs);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%.*s<script>var r=document.querySelector('.hm-hit'),b=r.getBoundingClientRect();\n"
               "r.dispatchEvent(new MouseEvent('mousemove',{clientX:b.left+b.width*0.99,clientY:b.top+1,bubbles:true}));\n"
               "document.body.setAttribute('data-tip',document.getElementById('tip').textContent);</script>\n%s",
            (int)(end - html), html, end);
    fclose(f);
    free(html);
    snprintf(cmd, sizeof cmd, "cd %s && HOME=%s timeout 180 %s %s --user-data-dir=%s/chrome-profile "
                              "--virtual-time-budget=3000 --dump-dom file://%s/hover.html > hover-dom.html 2>&1",
             abs, abs, chrome, flags, abs, abs);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/hover-dom.html", abs);
    dom = slurp(path, NULL);
    const char *tip = strstr(dom, "data-tip=\"");
    if (!tip || !strstr(tip, " ~ ") || !strstr(tip, ": 0.")) fail_msg("no hover tooltip: %.300s", tip ? tip : dom);
    free(dom);
    snprintf(cmd, sizeof cmd, "cd %s && HOME=%s timeout 180 %s %s --user-data-dir=%s/chrome-profile "
                              "--window-size=1200,1600 --screenshot=%s/shot.png file://%s/page.html > /dev/null 2>&1",
             abs, abs, chrome, flags, abs, abs, abs);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/shot.png", abs);
    const double share = ink(path);
    if (share < 0.02) fail_msg("the screenshot is blank (%.4f of the pixels are not white)", share);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_sections),
        cmocka_unit_test(test_svg_well_formed),
        cmocka_unit_test(test_tune_folder),
        cmocka_unit_test(test_old_run),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_browser),
    };
    return cmocka_run_group_tests(tests, setup, tu_group_teardown_tmpdir);
}
