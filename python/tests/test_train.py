"""tnmtl.train on numpy arrays: bit for bit the CLI's model on the same data
and seed, save/load round trips, checkpoints the CLI accepts, bad input."""
import json
import subprocess

import numpy as np
import pytest

import tnmtl


def tabular(kind, seed=0, n=240, d=5):
    """Three tasks ("a", 7 and "b, c": a name the CSV must quote) of related
    linear problems, rows of the tasks interleaved."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    task = np.array(["a", "7", "b, c"])[rng.integers(0, 3, n)]
    w = rng.standard_normal(d)
    score = x @ w + 0.3 * rng.standard_normal(n)
    y = score if kind == "regression" else np.digitize(score, [-1.0, 0.0, 1.0]) * 2 + 1  # labels 1,3,5,7
    return x, y, task


def cli_run(cli, *args):
    p = subprocess.run([cli] + list(args), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


OPTIONS = dict(steps=40, seed=3, gamma=0.05, batch=16, train_frac=0.6, val_frac=0.2, threads=2)


def cli_flags(options):
    """The `tnmtl train` flags of Python options (steps=40 -> --steps 40)."""
    flags = []
    for k, v in options.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    return flags


@pytest.mark.parametrize("kind", ["classification", "regression"])
@pytest.mark.parametrize("method,arch", [("tucker", "fc8"), ("laf", ""), ("ud", "fc8,fc6")])
def test_train_from_arrays_matches_cli_bit_for_bit(tmp_path, cli, kind, method, arch):
    x, y, task = tabular(kind)
    ds = tnmtl.Dataset.from_arrays(x, y, task)
    assert ds.task_names == ["a" if task[0] == "a" else task[0]] + ds.task_names[1:]
    run = tnmtl.train(ds, method=method, arch=arch, **OPTIONS)
    csv = tmp_path / "data.csv"
    ds.to_csv(csv)
    flags = cli_flags(OPTIONS)
    out = tmp_path / "cli"
    cli_result = cli_run(cli, "train", "--data", "csv:%s" % csv, "--" + kind, "--method", method, "--arch", arch,
                         "--out", str(out), "--quiet", *flags)
    cli_model = tnmtl.load(out)
    assert cli_model.step == run.step == 40
    assert np.array_equal(cli_model.parameters(), run.parameters())
    ours = run.evaluate()
    for part in ("train", "val", "test"):
        assert np.array_equal(ours[part]["per_task"], np.array(cli_result[part]["per_task"], dtype=float))
    assert [l["rho"] for l in ours["sharing"]] == [l["rho"] for l in cli_result["sharing"]]


def test_weight_decay_as_the_cli_applies_it(tmp_path, cli):
    # weight_decay= is --weight-decay: the same STL model bit for bit, and
    # not the unpenalised one
    x, y, task = tabular("classification", seed=2)
    ds = tnmtl.Dataset.from_arrays(x, y, task)
    run = tnmtl.train(ds, method="stl", arch="fc8", weight_decay=0.3, **OPTIONS)
    plain = tnmtl.train(ds, method="stl", arch="fc8", **OPTIONS)
    csv = tmp_path / "data.csv"
    ds.to_csv(csv)
    flags = cli_flags(OPTIONS)
    out = tmp_path / "cli"
    cli_result = cli_run(cli, "train", "--data", "csv:%s" % csv, "--classification", "--method", "stl", "--arch", "fc8",
                         "--weight-decay", "0.3", "--out", str(out), "--quiet", *flags)
    assert cli_result["config"]["weight_decay"] == 0.3
    assert np.array_equal(tnmtl.load(out).parameters(), run.parameters())
    assert not np.array_equal(plain.parameters(), run.parameters())
    with pytest.raises(tnmtl.Error, match="weight-decay"):
        tnmtl.train(ds, method="stl", arch="fc8", weight_decay=-1, **OPTIONS)


def test_save_load_round_trip_and_cli_accepts_it(tmp_path, cli):
    x, y, task = tabular("classification", seed=1)
    ds = tnmtl.Dataset.from_arrays(x, y, task)
    run = tnmtl.train(ds, method="tt", arch="fc8", steps=20, seed=1)
    run.save(tmp_path / "run")
    for f in ("checkpoint.safetensors", "results.json", "sharing.json", "data.csv"):
        assert (tmp_path / "run" / f).exists(), f
    back = tnmtl.load(tmp_path / "run")
    assert back.step == 20 and np.array_equal(back.parameters(), run.parameters())
    assert back.config["method"] == "tt" and back.config["arch"] == "fc8"
    ev = run.evaluate()
    assert np.array_equal(back.evaluate()["test"]["per_task"], ev["test"]["per_task"])
    sh = run.sharing()
    assert sh["rho"].shape == (1,) and sh["relatedness"].shape == (1, 3, 3)
    assert np.allclose(np.diag(sh["relatedness"][0]), 1.0)
    # the CLI evaluates it, and resuming it continues exactly as training longer
    cli_eval = cli_run(cli, "eval", "--model", str(tmp_path / "run"))
    assert np.array_equal(np.array(cli_eval["test"]["per_task"], dtype=float), ev["test"]["per_task"])
    cli_run(cli, "train", "--resume", str(tmp_path / "run"), "--steps", "35", "--quiet")
    longer = tnmtl.train(ds, method="tt", arch="fc8", steps=35, seed=1)
    assert np.array_equal(tnmtl.load(tmp_path / "run").parameters(), longer.parameters())


def test_train_on_a_data_spec_matches_cli(tmp_path, cli):
    run = tnmtl.train("synthetic", method="laf", steps=5, seed=2, data_seed=4)
    cli_run(cli, "train", "--data", "synthetic", "--method", "laf", "--steps", "5", "--seed", "2", "--data-seed", "4",
            "--out", str(tmp_path / "s"), "--quiet")
    assert np.array_equal(tnmtl.load(tmp_path / "s").parameters(), run.parameters())
    assert run.sharing()["names"] == ["conv 5x5x1x8", "fc 288x32"]


def test_image_arrays_train_and_need_their_data_to_load(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((60, 8, 8), dtype=np.float32)
    y = rng.integers(0, 2, 60)
    task = np.repeat([0, 1, 2], 20)
    ds = tnmtl.Dataset.from_arrays(x, y, task)
    assert ds.example_shape == (8, 8, 1)
    run = tnmtl.train(ds, method="tucker", arch="conv4x3,pool2,fc8", steps=3)
    run.save(tmp_path / "img")
    with pytest.raises(tnmtl.Error, match="numpy arrays"):
        tnmtl.load(tmp_path / "img")
    assert np.array_equal(tnmtl.load(tmp_path / "img", dataset=ds).parameters(), run.parameters())


def test_bad_input_raises():
    x, y, task = tabular("classification")
    ds = tnmtl.Dataset.from_arrays(x, y, task)
    cases = [
        (lambda: tnmtl.Dataset.from_arrays(x[:, :, None, None, None], y, task), "shape"),
        (lambda: tnmtl.Dataset.from_arrays(x[:0], y[:0], task[:0]), "non-empty"),
        (lambda: tnmtl.Dataset.from_arrays(x, y[:-1], task), r"\(240,\)"),
        (lambda: tnmtl.Dataset.from_arrays(np.where(x > 2, np.nan, x), y, task), "NaN"),
        (lambda: tnmtl.Dataset.from_arrays(x.astype(str), y, task), "numeric"),
        (lambda: tnmtl.Dataset.from_arrays(x, y + 0.5, task, regression=False), "integers"),
        (lambda: tnmtl.train(ds, steps=-1), "steps"),
        (lambda: tnmtl.train(ds, bogus=1), "unknown option '--bogus'"),
        (lambda: tnmtl.train(ds, method="svd"), "svd"),
        (lambda: tnmtl.train(ds, arch="conv4x3"), "conv"),
        (lambda: tnmtl.train(ds, size=28), "data source"),
        (lambda: tnmtl.train([1, 2]), "Dataset"),
        (lambda: tnmtl.train("csv:/nonexistent.csv"), "nonexistent"),
        (lambda: tnmtl.load("/nonexistent-run"), "nonexistent"),
    ]
    for call, message in cases:
        with pytest.raises(tnmtl.Error, match=message):
            call()


def test_ctrl_c_stops_training_with_keyboard_interrupt():
    import os
    import signal
    import sys
    import time

    from conftest import PYDIR

    code = ("import tnmtl, sys\nprint('start', flush=True)\n"
            "try:\n    tnmtl.train('synthetic', method='tucker', steps=1000000)\n"
            "except KeyboardInterrupt:\n    print('interrupted', flush=True); sys.exit(7)\n")
    p = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=PYDIR),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "start\n"
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 7 and "interrupted" in out, (p.returncode, out, err)
