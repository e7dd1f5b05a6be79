"""The tables of docs/results.md that are made from the kept tunes of results/
are what scripts/omniglot_tune_table.py prints from them, row for row: a kept
tune added without its row, or a row edited by hand, fails here."""
import os
import subprocess
import sys

from conftest import ROOT


def script_rows(*args):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "omniglot_tune_table.py"), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [line for line in p.stdout.splitlines() if line.startswith("|")]


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
