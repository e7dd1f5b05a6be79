#!/usr/bin/python3
"""Rewrite the parts of the docs that are made from the kept Omniglot tunes of
results/, after a tune has been kept there (results/README.md):

- docs/results.md: the full-batch Tucker/TT table under the line
  `scripts/omniglot_tune_table.py --searches results/omniglot-tune-full-batch`
  (the script's Tucker and TT rows), the minibatch one under the same line for
  results/omniglot-tune-minibatch, and the table under the line
  `scripts/omniglot_tune_table.py --each results/omniglot-tune-full-batch
  results/omniglot-tune-minibatch` (every tune the two folders both hold, side
  by side, the batch validation chooses marked);
- docs/results.md: the ten-seed table under the line
  `scripts/omniglot_tune_table.py results/omniglot-tune-full-batch
  results/omniglot-tune-minibatch` (per seed and method the batch validation
  chooses, a cell waiting until both batches' tunes are kept) and the list of
  means after it;
- docs/results.md: the tables of STL tuned with weight decay (2026-12-06 on, kept
  apart in results/omniglot-tune-full-batch-stl-wd and -minibatch-stl-wd): its
  searches (`--stl-searches`, each folder) and the per-seed table against the
  other methods of the same batch (`--stl WD_FOLDER -- FOLDER`, full batch and
  minibatch) with its means, and against the methods tuned on top of its weight
  decay (`--stl WD_FOLDER -- results/omniglot-tune-full-batch-on-stl-wd`);
- README.md: the rows "tuned on validation, full batch" and "..., minibatch":
  STL (with weight decay) and LAF means over the seeds where both are done, UD
  over those where it is done too, Tucker and TT over those where the three
  norms are (each with its paired gain over STL of the same seeds), from the
  functions that make `scripts/omniglot_tune_table.py --stl WD_FOLDER --
  FOLDER` print them, and the seeds of each; a mean at or above the paper's
  figure for that norm is bold.

python/tests/test_results_tables.py checks all of them against the script, so a kept
tune whose rows were not written fails the tests.

    scripts/update_results_docs.py          rewrite, and list what changed
    scripts/update_results_docs.py --check  exit 1 if a rewrite would change anything
"""
import contextlib
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL_BATCH = "results/omniglot-tune-full-batch"
MINIBATCH = "results/omniglot-tune-minibatch"
SEARCHES_KEY = f"scripts/omniglot_tune_table.py --searches {FULL_BATCH}"
MINI_SEARCHES_KEY = f"scripts/omniglot_tune_table.py --searches {MINIBATCH}"
EACH_KEY = f"scripts/omniglot_tune_table.py --each {FULL_BATCH} {MINIBATCH}"
CHOSEN_KEY = f"scripts/omniglot_tune_table.py {FULL_BATCH} {MINIBATCH}"
WD_FULL = "results/omniglot-tune-full-batch-stl-wd"
WD_MINI = "results/omniglot-tune-minibatch-stl-wd"
WD_KEY = f"scripts/omniglot_tune_table.py --stl {WD_FULL} -- {FULL_BATCH}"
WD_MINI_KEY = f"scripts/omniglot_tune_table.py --stl {WD_MINI} -- {MINIBATCH}"
ON_WD = "results/omniglot-tune-full-batch-on-stl-wd"
ON_WD_KEY = f"scripts/omniglot_tune_table.py --stl {WD_FULL} -- {ON_WD}"
WD_SEARCHES_KEY = f"scripts/omniglot_tune_table.py --stl-searches {WD_FULL}"
WD_MINI_SEARCHES_KEY = f"scripts/omniglot_tune_table.py --stl-searches {WD_MINI}"
README_ROWS = (("| tuned on validation, full batch", FULL_BATCH, WD_FULL),
               ("| tuned on validation, minibatch", MINIBATCH, WD_MINI))
PAPER = {"laf": 35.65, "tucker": 35.50, "tt": 35.33}  # the paper's mean test accuracy %

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import omniglot_tune_table as table  # noqa: E402  (its tables and means, computed once for its printout and here)


def printed_lines(print_table, *args):
    """The lines a table function of omniglot_tune_table.py prints."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print_table(*args)
    return printed.getvalue().splitlines()


def printed_rows(print_table, *args):
    """The Markdown rows a table function of omniglot_tune_table.py prints."""
    return [line for line in printed_lines(print_table, *args) if line.startswith("|")]


def searches_rows(folder):
    """The Tucker and TT rows (and header) of `omniglot_tune_table.py --searches folder`."""
    lines = printed_rows(table.searches_table, os.path.join(ROOT, folder))
    return lines[:2] + [r for r in lines[2:] if r.startswith(("| Tucker ", "| TT "))]


def each_rows():
    """`omniglot_tune_table.py --each` over the two batches' folders."""
    return printed_rows(table.each_table, [os.path.join(ROOT, d) for d in (FULL_BATCH, MINIBATCH)])


def stl_searches_rows(folder):
    """`omniglot_tune_table.py --stl-searches folder`."""
    return printed_rows(table.searches_table, os.path.join(ROOT, folder), ("stl",))


def chosen_lines(stl_folders=None, folders=(FULL_BATCH, MINIBATCH)):
    """`omniglot_tune_table.py` over the folders (by default the two batches'; STL's
    tunes from stl_folders when given): its table's rows, and the list of means
    printed after it."""
    stl_outs = [os.path.join(ROOT, d) for d in stl_folders] if stl_folders else None
    lines = printed_lines(table.chosen_table, [os.path.join(ROOT, d) for d in folders], stl_outs)
    return [line for line in lines if line.startswith("|")], [line for line in lines if line.startswith("- ")]


def table_span(lines, after):
    """(first, end): the lines of the Markdown table that follows the line holding `after`."""
    start = next(i for i, line in enumerate(lines) if after in line)
    first = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("|"))
    end = first
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return first, end


def replace_table(text, after, rows):
    """text with the Markdown table that follows the line holding `after` replaced by rows."""
    lines = text.split("\n")
    first, end = table_span(lines, after)
    return "\n".join(lines[:first] + rows + lines[end:])


def replace_table_and_list(text, after, rows, items):
    """replace_table(), and the list that follows the table (after one blank
    line) replaced by items."""
    lines = replace_table(text, after, rows).split("\n")
    first = table_span(lines, after)[1] + 1  # past the blank line after the table
    last = first
    while last < len(lines) and lines[last].startswith("- "):
        last += 1
    return "\n".join(lines[:first] + items + lines[last:])


def seed_ranges(seeds):
    """[0, 1, 2, 5] -> '0-2, 5'."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(f"{seeds[i]}-{seeds[j]}" if j > i else f"{seeds[i]}")
        i = j + 1
    return ", ".join(parts)


def readme_row(old_row, folder, stl_folder):
    """A README row of one batch's tunes (folder, STL's from stl_folder): the
    seeds of each group (STL and LAF; UD with them; Tucker and TT with STL),
    each group's means and paired gains, as omniglot_tune_table.py computes and
    prints them."""
    rows = table.seed_rows([os.path.join(ROOT, folder)], [os.path.join(ROOT, stl_folder)])
    laf = table.group_stats(rows, ["stl", "laf"])
    ud = table.group_stats(rows, ["stl", "ud", "laf"])
    norms = table.group_stats(rows, ["stl", "laf", "tucker", "tt"])

    def cell(method, g):
        if g is None:
            return ""
        mean = f"{g['mean'][method]:.2f}"
        bold = method in PAPER and float(mean) >= PAPER[method]
        return f"{'**' + mean + '**' if bold else mean} ({table.signed(g['gain'][method])})"

    seeds = seed_ranges(laf["seeds"]) + "".join(f"; {name}{seed_ranges(g['seeds'])}"
                                                for name, g in (("UD ", ud), ("Tucker, TT ", norms))
                                                if g and g["seeds"] != laf["seeds"])
    cells = [c.strip() for c in old_row.strip().strip("|").split("|")]
    cells[1:7] = [seeds, f"{laf['mean']['stl']:.2f}", cell("ud", ud), cell("laf", laf), cell("tucker", norms),
                  cell("tt", norms)]
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"


def rewrite(path, change):
    full = os.path.join(ROOT, path)
    with open(full) as f:
        old = f.read()
    new = change(old)
    return path, old, new


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        sys.exit(__doc__)

    def readme(text):
        lines = text.split("\n")
        for prefix, folder, stl_folder in README_ROWS:
            i = next(i for i, line in enumerate(lines) if line.startswith(prefix))
            lines[i] = readme_row(lines[i], folder, stl_folder)
        return "\n".join(lines)

    def results(text):
        text = replace_table(text, SEARCHES_KEY, searches_rows(FULL_BATCH))
        text = replace_table(text, MINI_SEARCHES_KEY, searches_rows(MINIBATCH))
        text = replace_table(text, EACH_KEY, each_rows())
        text = replace_table(text, WD_SEARCHES_KEY, stl_searches_rows(WD_FULL))
        text = replace_table(text, WD_MINI_SEARCHES_KEY, stl_searches_rows(WD_MINI))
        text = replace_table_and_list(text, WD_KEY, *chosen_lines([WD_FULL], (FULL_BATCH,)))
        text = replace_table_and_list(text, WD_MINI_KEY, *chosen_lines([WD_MINI], (MINIBATCH,)))
        text = replace_table_and_list(text, ON_WD_KEY, *chosen_lines([WD_FULL], (ON_WD,)))
        return replace_table_and_list(text, CHOSEN_KEY, *chosen_lines())

    edits = [rewrite("docs/results.md", results),
             rewrite("README.md", readme)]
    changed = [path for path, old, new in edits if new != old]
    if check:
        for path in changed:
            print(f"{path} is not what the kept tunes give: run scripts/update_results_docs.py")
        sys.exit(1 if changed else 0)
    for path, old, new in edits:
        if new != old:
            tmp = os.path.join(ROOT, path + ".tmp")
            with open(tmp, "w") as f:
                f.write(new)
            os.replace(tmp, os.path.join(ROOT, path))
    print("rewritten: " + (", ".join(changed) if changed else "nothing, the docs already match"))


if __name__ == "__main__":
    main()
