"""The README's Python quick start runs as written (and is at most 15 lines)."""
import os
import re
import subprocess
import sys

from conftest import PYDIR, ROOT


def test_readme_python_block_runs(tmp_path):
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "the README has one Python block"
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 15
    env = dict(os.environ, PYTHONPATH=PYDIR)
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    accuracy = float(p.stdout.split()[0])
    assert 0.5 < accuracy <= 1.0, p.stdout
    assert (tmp_path / "runs" / "py1" / "checkpoint.safetensors").exists()
