"""The example files run end to end (on tiny data) and write what they promise."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_quickstart_runs_end_to_end(tmp_path):
    out = tmp_path / "qs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--out", str(out),
                           "--epochs", "1"], capture_output=True, text=True, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 runs, 2 trained now" in done.stdout
    assert "test accuracy after 1..4 iterations" in done.stdout
    cka = json.loads(next((out / "sweep" / "runs").glob("recurrent-*/analysis/cka/*/cka.json"))
                     .read_text())
    assert cka["method"] == "exact" and f"{cka['biased'][-1][-1]:.3f}" in done.stdout
    index = out / "sweep" / "report" / "index.md"
    assert index.is_file() and "recurrent" in index.read_text()
    runs = sorted((out / "sweep" / "runs").iterdir())
    assert [r.name.split("-")[0] for r in runs] == ["feedforward", "recurrent"]
    for run in runs:
        assert json.loads((run / "result.json").read_text())["status"] == "completed"
        assert (run / "train.log").is_file()
    assert "test/size5/iters1..4" in json.loads((runs[1] / "eval.json").read_text())
    umask = os.umask(0o022)
    os.umask(umask)
    for f in (out / "sweep" / "report").iterdir():  # 0644 under the usual umask 022
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f


@pytest.mark.slow
def test_readme_python_api_snippet_runs(tmp_path):
    readme = (EXAMPLES.parent / "README.md").read_text()
    start = readme.index("```python", readme.index("### Python API")) + len("```python")
    snippet = readme[start:readme.index("```", start)]
    check = "\nassert 0.0 <= out.result['last'] <= 1.0 and all(f.is_file() for f in out.files)\n"
    (tmp_path / "snippet.py").write_text(snippet + check)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(EXAMPLES.parent / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
