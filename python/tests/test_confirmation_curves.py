"""scripts/confirmation_curves.py applies tune's stop rule (cli/tune_search.c,
behind_start) to curves on disk: two points in a row under half the path
start's (RMSE: over twice), from the curve's first point on.  Planted
curves: one confirmation behind at its first two points, one behind at the
first point alone and again from the third, one that holds."""
import os
import subprocess
import sys

from conftest import ROOT


STEPS = 400  # a validation point every 20 steps, as tune's runs of 400 steps have


def write_history(path, points, elapsed_per_step=2.0):
    """history.csv with the validation points given ({step: value})."""
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("step,data_loss,regulariser,val_metric,elapsed_s\n")
        for step in range(1, STEPS + 1):
            val = points.get(step, "")
            f.write(f"{step},1.0,0.1,{val},{step * elapsed_per_step:.3f}\n")


def plant_tune(root, rmse):
    start = {k: 0.30 + k / 4000 for k in range(20, STEPS + 1, 20)}
    scale = (lambda r: 1 / r) if rmse else (lambda r: r)  # ratio r = behind by 1/r for RMSE
    confirmations = {
        "laf-g1": [0.40, 0.45, 0.10],                 # behind from the first: stops at the third, 60
        "laf-g0.316": [0.40, 0.90, 0.45, 0.40, 0.30, 0.9],  # behind at 20, then from 60: stops at 100
        "laf-g0.1": [0.49, 0.95, 1.05, 1.10, 1.10],   # one point behind: never
        "laf-g0.0316": [0.45, 0.45, 0.63, 0.74, 1.0],  # a slow start, two points behind: never
    }
    write_history(os.path.join(root, "trials", "laf-g0.0001-path", "fold0", "history.csv"), start)
    for name, ratios in confirmations.items():
        ratios += [ratios[-1]] * (len(start) - len(ratios))
        points = {k: start[k] * scale(r) for k, r in zip(sorted(start), ratios)}
        write_history(os.path.join(root, "trials", name, "fold0", "history.csv"), points)
    with open(os.path.join(root, "trials.csv"), "w") as f:
        f.write("method,gamma,share,batch,steps,%s,seconds,chosen\n" % ("val_rmse" if rmse else "val_accuracy_pct"))


def rows(root):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "confirmation_curves.py"), root],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    table = [line.split("|")[1:-1] for line in p.stdout.splitlines()[2:]]
    return {cells[1].strip(): [c.strip() for c in cells] for cells in table}


def check(root, rmse):
    plant_tune(root, rmse)
    r = rows(root)
    assert set(r) == {"laf gamma 1", "laf gamma 0.316", "laf gamma 0.1", "laf gamma 0.0316"}
    assert r["laf gamma 1"][3] == "0.40 (step 20)" and r["laf gamma 1"][4] == "0.45 (step 40)"
    assert r["laf gamma 1"][6:8] == ["60", "120.0"]  # stopped at 60, 2 s a step
    assert r["laf gamma 0.316"][5] == "0.30"  # the lowest from the third point
    assert r["laf gamma 0.316"][6:8] == ["100", "200.0"]
    assert r["laf gamma 0.1"][6:8] == ["never", "-"]
    assert r["laf gamma 0.0316"][6:8] == ["never", "-"]


def test_accuracy_curves(tmp_path):
    check(str(tmp_path), rmse=False)


def test_rmse_curves(tmp_path):
    check(str(tmp_path), rmse=True)
