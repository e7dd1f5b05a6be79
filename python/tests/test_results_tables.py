"""The tables of docs/results.md and the README that are made from the kept
tunes of results/ are what scripts/omniglot_tune_table.py prints from them: a
kept tune added without its row, or a figure edited by hand, fails here."""
import json
import os
import shutil
import statistics
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
    return docs_table_in(ROOT, after)


def docs_table_in(root, after):
    """docs_table() of the tree at root."""
    lines = open(os.path.join(root, "docs", "results.md")).read().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    assert rows, f"no table after {after!r}"
    return rows


def run_update(root, *args):
    return subprocess.run([sys.executable, os.path.join(root, "scripts", "update_results_docs.py"), *args],
                          cwd=root, capture_output=True, text=True, timeout=120)


def copy_of_docs_and_results(tmp_path):
    """A tree holding what scripts/update_results_docs.py reads and writes."""
    for d in ("scripts", "docs", "results"):
        os.mkdir(tmp_path / d)
    for f in ("scripts/omniglot_tune_table.py", "scripts/update_results_docs.py", "docs/results.md", "README.md"):
        shutil.copy(os.path.join(ROOT, f), tmp_path / f)
    for d in ("omniglot-tune-full-batch", "omniglot-tune-minibatch", "omniglot-tune-full-batch-stl-wd",
              "omniglot-tune-minibatch-stl-wd", "omniglot-tune-full-batch-on-stl-wd"):
        shutil.copytree(os.path.join(ROOT, "results", d), tmp_path / "results" / d)


def readme_full_batch_cells(root):
    text = (root / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| tuned on validation, full batch"))
    return [c.strip() for c in row.strip().strip("|").split("|")]


def test_generated_docs_are_what_the_kept_tunes_give():
    """docs/results.md's full-batch and minibatch Tucker/TT tables, its table
    of both batches' tunes side by side and its ten-seed table with the batch chosen
    (and the means after it), and the README's two tuned rows, are
    scripts/update_results_docs.py's output from results/."""
    p = run_update(ROOT, "--check")
    assert p.returncode == 0, p.stdout + p.stderr


def test_update_results_docs_finds_and_mends_a_changed_figure(tmp_path):
    """On a copy of the files it reads, a digit changed by hand in any
    generated part fails --check, and a rewrite restores the original."""
    copy_of_docs_and_results(tmp_path)
    originals = {f: (tmp_path / f).read_text() for f in ("README.md", "docs/results.md")}
    row = next(line for line in originals["README.md"].splitlines() if line.startswith("| tuned on validation, full batch"))
    docs = originals["docs/results.md"].splitlines()
    table_row = next(line for line in docs if line.startswith("| TT seed 0 |"))
    mini_row = docs_table_in(tmp_path, "--searches results/omniglot-tune-minibatch")[2]
    each_row = next(line for line in docs if line.startswith("| 0 | laf |"))
    chosen_row = next(line for line in docs if line.startswith("| 0 | 30.06 "))
    mean_item = next(line for line in docs if line.startswith("- mean over the 10 seeds with STL, UD, LAF"))
    wd_table_row = docs_table_in(tmp_path, "--stl results/omniglot-tune-full-batch-stl-wd --")[2]
    mini_readme_row = next(line for line in originals["README.md"].splitlines()
                           if line.startswith("| tuned on validation, minibatch"))
    wd_mini_table_row = docs_table_in(tmp_path, "--stl results/omniglot-tune-minibatch-stl-wd --")[2]
    mini_key = next(i for i, line in enumerate(docs) if "--stl results/omniglot-tune-minibatch-stl-wd --" in line)
    wd_mini_mean = next(line for line in docs[mini_key:] if line.startswith("- mean over the"))
    for f, line, digit in (("README.md", row, "| 3"), ("docs/results.md", table_row, "+6."),
                           ("docs/results.md", wd_table_row, "| 3"),
                           ("README.md", mini_readme_row, "| 3"), ("docs/results.md", wd_mini_table_row, "| 3"),
                           ("docs/results.md", wd_mini_mean, "stl 3"),
                           ("docs/results.md", mini_row, " S,"),
                           ("docs/results.md", each_row, "/ 3"), ("docs/results.md", chosen_row, "| 3"),
                           ("docs/results.md", mean_item, "laf 3")):
        changed = line.replace(digit, digit[:-1] + chr(ord(digit[-1]) - 1), 1)
        assert changed != line
        (tmp_path / f).write_text(originals[f].replace(line, changed))
        p = run_update(str(tmp_path), "--check")
        assert p.returncode == 1 and f in p.stdout, p.stdout + p.stderr
        assert run_update(str(tmp_path)).returncode == 0
        assert (tmp_path / f).read_text() == originals[f]
    assert run_update(str(tmp_path), "--check").returncode == 0


def test_update_results_docs_fills_the_ud_cell_when_ud_tunes_are_kept(tmp_path):
    """Kept UD tunes (two seeds, test 31% and 32%) fill the README row's UD
    cell with their mean and paired gain over the same seeds' STL (tuned with
    weight decay), and name
    their seeds; a minibatch UD tune of seed 0 puts its row, the full batch
    chosen, in the docs' table of both batches.  The UD tunes kept so far are
    taken out of the copy first."""
    copy_of_docs_and_results(tmp_path)
    for folder in ("omniglot-tune-full-batch", "omniglot-tune-minibatch"):
        for path in (tmp_path / "results" / folder).glob("seed*-ud*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert run_update(str(tmp_path)).returncode == 0
    kept = tmp_path / "results" / "omniglot-tune-full-batch"
    stl = []
    for seed, acc in ((0, 0.31), (1, 0.32)):
        (kept / f"seed{seed}-ud.json").write_text(json.dumps(
            {"chosen": {"method": "ud", "share": 1, "steps": 400, "batch": 0, "val_accuracy": 0.3},
             "test": {"mean_accuracy": acc}}))
        stl_tune = tmp_path / "results" / "omniglot-tune-full-batch-stl-wd" / f"seed{seed}-stl.json"
        stl.append(100 * json.loads(stl_tune.read_text())["test"]["mean_accuracy"])
    before = readme_full_batch_cells(tmp_path)
    assert before[3] == ""
    assert run_update(str(tmp_path)).returncode == 0
    after = readme_full_batch_cells(tmp_path)
    gain = statistics.mean([31 - stl[0], 32 - stl[1]])
    assert after[3] == f"31.50 ({gain:+.2f})"
    first, *others = before[1].split("; ")  # STL and LAF's seeds, then any smaller group's
    assert after[1] == "; ".join([first, "UD 0-1", *others])
    assert after[2:3] + after[4:] == before[2:3] + before[4:]

    each_key = "--each results/omniglot-tune-full-batch results/omniglot-tune-minibatch"
    (tmp_path / "results" / "omniglot-tune-minibatch" / "seed0-ud.json").write_text(json.dumps(
        {"chosen": {"method": "ud", "share": 2, "steps": 400, "batch": 10, "val_accuracy": 0.29},
         "test": {"mean_accuracy": 0.30}}))
    rows = docs_table_in(tmp_path, each_key)
    assert run_update(str(tmp_path)).returncode == 0
    stl0 = next(i for i, r in enumerate(rows) if r.startswith("| 0 | stl |"))
    assert docs_table_in(tmp_path, each_key) == rows[:stl0 + 1] + [
        "| 0 | ud | *share 1, 30.00 / 31.00 | share 2, 29.00 / 30.00 |"] + rows[stl0 + 1:]


def test_minibatch_searches_table_is_the_scripts_output():
    """The minibatch Tucker/TT table is `--searches`'s output over the
    minibatch folder, those methods' rows only."""
    printed = script_rows("--searches", "results/omniglot-tune-minibatch")
    rows = docs_table("--searches results/omniglot-tune-minibatch")
    assert rows[:2] == printed[:2] and len(rows) > 2
    assert rows[2:] == [r for r in printed[2:] if r.startswith(("| Tucker ", "| TT "))]


def test_choice_between_batches_is_the_scripts_output():
    """The docs' table of both batches' tunes is `--each`'s output, and that
    marks, per seed and method, the tune that validates best."""
    printed = script_rows("--each", "results/omniglot-tune-full-batch", "results/omniglot-tune-minibatch")
    assert docs_table("--each results/omniglot-tune-full-batch results/omniglot-tune-minibatch") == printed
    for row in printed[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")][2:]
        assert sum(c.startswith("*") for c in cells) == 1, row
        val = [float(c.split(",")[-1].split("/")[0]) for c in cells]
        assert val[[c.startswith("*") for c in cells].index(True)] == max(val), row


def test_means_list_each_group_of_seeds_once(tmp_path):
    """The list of means after the table leaves out a group whose seeds a
    wider group printed before it covers, and gives STL and UD their own mean
    where UD is done on seeds without LAF: two seeds with STL, UD and LAF, a
    third with STL and UD, that UD tuned under a fixed weight decay, which its
    cell names."""
    out = tmp_path / "tunes"
    out.mkdir()
    tests = {(0, "stl"): 0.30, (0, "ud"): 0.31, (0, "laf"): 0.34,
             (1, "stl"): 0.32, (1, "ud"): 0.31, (1, "laf"): 0.35, (2, "stl"): 0.30, (2, "ud"): 0.33}
    for (seed, method), acc in tests.items():
        setting = {"stl": {"steps": 100}, "ud": {"share": 1, "steps": 400}, "laf": {"gamma": 0.1, "steps": 400}}
        (out / f"seed{seed}-{method}.json").write_text(json.dumps(
            {"chosen": {"method": method, "batch": 0, "val_accuracy": acc, **setting[method],
                        **({"weight_decay": 0.316} if (seed, method) == (2, "ud") else {})},
             "test": {"mean_accuracy": acc}}))
    printed = script_output(str(out)).splitlines()
    assert "| 2 | 30.00 (100 steps) | 33.00 (share 1, wd 0.316) | not yet |" in "\n".join(printed)
    assert "| 1 | 32.00 (100 steps) | 31.00 (share 1) | 35.00 (gamma 0.1) |" in "\n".join(printed)
    means = [line for line in printed if line.startswith("- ")]
    assert [line.split(" done:")[0] for line in means] == [
        "- mean over the 2 seeds with STL, UD, LAF", "- mean over the 3 seeds with STL and UD"]
    assert "ud 31.67 +- 1.15" in means[1] and "gain ud +1.00 (min -1.00)" in means[1], means[1]


def test_a_gain_that_rounds_to_zero_reads_plus_zero():
    """A method a hair under STL (TT at gamma 1e-4 on top of STL's weight decay,
    seed 0, tests 0.003 points lower) reads +0.00, not -0.00; other gains keep
    their sign."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import omniglot_tune_table as table
    assert [table.signed(g) for g in (-0.0029, 3e-7, -0.004, -0.0051, 0.29, -1.33)] == [
        "+0.00", "+0.00", "+0.00", "-0.01", "+0.29", "-1.33"]
