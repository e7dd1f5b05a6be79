"""The tables of docs/results.md and the README that are made from the kept
tunes of results/ are what scripts/omniglot_tune_table.py prints from them: a
kept tune added without its row, or a figure edited by hand, fails here."""
import os
import re
import subprocess
import sys

from conftest import ROOT


def script_output(*args):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "omniglot_tune_table.py"), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def script_rows(*args):
    return [line for line in script_output(*args).splitlines() if line.startswith("|")]


def docs_table(after):
    """The Markdown table that follows the line holding `after` in docs/results.md."""
    lines = open(os.path.join(ROOT, "docs", "results.md")).read().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    assert rows, f"no table after {after!r}"
    return rows


def test_full_batch_tucker_tt_searches_table_is_the_scripts_output():
    printed = script_rows("--searches", "results/omniglot-tune-full-batch")
    expected = printed[:2] + [r for r in printed[2:] if r.startswith(("| Tucker ", "| TT "))]
    assert len(expected) > 2, "results/omniglot-tune-full-batch holds no Tucker or TT tune"
    assert docs_table("--searches results/omniglot-tune-full-batch") == expected


def test_stl_laf_choice_between_batches_is_the_scripts_output():
    printed = script_rows("--each", "results/omniglot-tune-full-batch", "results/omniglot-tune-minibatch")
    documented = docs_table("--each results/omniglot-tune-full-batch results/omniglot-tune-minibatch")
    assert documented[0] == printed[0]
    for row in documented[2:]:
        assert row in printed, f"docs/results.md has a row the kept tunes do not give: {row}"
    laf_stl = [r for r in printed[2:] if r.split("|")[2].strip() in ("stl", "laf")]
    assert documented[2:] == laf_stl


def test_readme_full_batch_row_is_the_scripts_means():
    """The README's full-batch row: STL and LAF over the seeds where both are
    done, Tucker and TT (and their gains) over those where the three norms are."""
    out = script_output("results/omniglot-tune-full-batch")

    def means(label):
        line = next(line for line in out.splitlines() if f"with {label} done" in line)
        n = int(re.search(r"over the (\d+) seeds", line).group(1))
        acc = dict(re.findall(r"(\w+) (\d+\.\d\d) \+-", line))
        gain = dict(re.findall(r"gain (\w+) ([+-]\d+\.\d\d)", line))
        return n, acc, gain

    n_laf, acc_laf, gain_laf = means("STL and LAF")
    n_norms, acc_norms, gain_norms = means("STL and the three norms")
    readme = open(os.path.join(ROOT, "README.md")).read()
    row = next(line for line in readme.splitlines() if line.startswith("| tuned on validation, full batch"))
    cells = [c.strip().replace("*", "") for c in row.strip("|").split("|")]
    assert cells[1] == f"0-{n_laf - 1}; Tucker, TT 0-{n_norms - 1}"
    assert cells[2] == acc_laf["stl"]
    assert cells[4] == f"{acc_laf['laf']} ({gain_laf['laf']})"
    assert cells[5] == f"{acc_norms['tucker']} ({gain_norms['tucker']})"
    assert cells[6] == f"{acc_norms['tt']} ({gain_norms['tt']})"
