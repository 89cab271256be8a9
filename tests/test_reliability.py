"""Reliability battery: bad input of every kind ends in one clear line, never a traceback, a
silent wrong result or a corrupted folder; concurrent writers are refused; crashes are recovered.

Each case of ``CASES`` runs the CLI in-process and expects an exit status and a one-line message.
Concurrency and SIGKILL cases use subprocesses. Everything is CPU-tiny (5x5 mazes, width 4).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recurdepth.cli import main
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.locks import writer_lock

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_data import write_cifar10  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny(root: Path, *extra: str) -> list[str]:
    """Overrides of a CPU-tiny maze run on the 5x5 mazes under ``root``."""
    return ["model.family=maze", "model.effective_depth=8", "model.width=4", "data.maze_size=5",
            f"data.root={root}", "train.epochs=1", "train.batch_size=4", "optim.name=adam",
            "optim.lr=0.001", "optim.warmup_epochs=0", "optim.weight_decay=0",
            "train.eval_every=0", "runtime.device=cpu", "runtime.progress=false",
            "runtime.threads=1", *extra]


@pytest.fixture(autouse=True)
def _logs_in_tmp(tmp_path, monkeypatch):
    """Tracebacks of unexpected errors go to the test's folder, not the user's."""
    monkeypatch.setenv("RECURDEPTH_LOG_DIR", str(tmp_path / "logs"))


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Two maze data roots with different 5x5 mazes, plus an empty-train one."""
    base = tmp_path_factory.mktemp("data")
    out = {}
    for name, seed, n_train in (("a", 0, 8), ("b", 1, 8), ("empty", 0, 0)):
        generate_dataset(maze_dir(base / name, 5), size=5, n_train=n_train, n_test=4, seed=seed,
                         progress=False)
        out[name] = base / name
    return out


@pytest.fixture(scope="module")
def trained(roots, tmp_path_factory) -> Path:
    """A completed 1-epoch run folder on root a."""
    run_dir = tmp_path_factory.mktemp("runs") / "done"
    assert main(["train", "--run-dir", str(run_dir), *tiny(roots["a"])]) == 0
    return run_dir


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run the CLI in-process; return (exit status, stderr)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def assert_one_line(err: str) -> str:
    """The one error line (argparse's usage lines before a usage error are allowed)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("usage:"):
        lines = [ln for ln in lines if not ln.startswith(("usage:", " "))]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def _published(root: Path, size: int, side: int, *, nan: bool = False) -> None:
    for split in ("train", "test"):
        folder = root / f"maze_data_{split}_{size}"
        folder.mkdir(parents=True)
        x = np.zeros((4, 3, side, side), np.float32)
        if nan:
            x[0, 0, 0, 0] = np.nan
        np.save(folder / "inputs.npy", x)
        np.save(folder / "solutions.npy", np.zeros((4, side, side), np.float32))


def _edited_manifest(root: Path, src: Path, edit) -> None:
    import shutil

    shutil.copytree(maze_dir(src, 5), maze_dir(root, 5))
    path = maze_dir(root, 5) / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _size7_in_size5_folder(root: Path, tmp: Path) -> None:
    generate_dataset(maze_dir(tmp / "seven", 7), size=7, n_train=2, n_test=2, progress=False)
    maze_dir(root, 5).parent.mkdir(parents=True, exist_ok=True)
    (maze_dir(tmp / "seven", 7)).rename(maze_dir(root, 5))


# (id, argv builder (tmp, roots) -> argv, expected exit status, regex of the one line)
CASES = [
    # -- every config value validated by type and range --------------------------------------
    *[(f"config-{key}", (lambda t, r, o=f"{key}={val}": ["train", "--print-config",
                                                        *tiny(r["a"], o)]), 2, msg)
      for key, val, msg in [
          ("optim.lr", "nan", r"optim\.lr must be a finite number, got nan"),
          ("optim.lr", "inf", r"optim\.lr must be a finite number"),
          ("optim.lr", "-1", r"optim\.lr must be > 0"),
          ("optim.gamma", "-5", r"optim\.gamma must be > 0 and <= 10, got -5"),
          ("optim.clip_grad_norm", "-1", r"optim\.clip_grad_norm must be > 0"),
          ("optim.momentum", "1.5", r"optim\.momentum must be >= 0 and < 1"),
          ("optim.weight_decay", "-0.1", r"optim\.weight_decay must be >= 0"),
          ("optim.warmup_epochs", "-1", r"optim\.warmup_epochs must be >= 0"),
          ("optim.milestones", "[0]", r"optim\.milestones must be >= 1"),
          ("train.eval_every", "-1", r"train\.eval_every must be >= 0"),
          ("train.epochs", "0", r"train\.epochs must be >= 1"),
          ("train.batch_size", "0", r"train\.batch_size must be >= 1"),
          ("train.eval_iters", "100000", r"train\.eval_iters must be <= 10,000 iterations, got 100,000"),
          ("model.iters", "100000000", r"model\.iters must be >= 1 and <= 10,000"),
          ("model.width", "1000000", r"model\.width must be >= 1 and <= 65,536"),
          ("data.maze_size", "100001",
           r"data\.options\.size \(or data\.maze_size\) must be an odd number from 3 to 1,001"),
          ("data.options.size", "4", r"data\.options\.size \(or data\.maze_size\) must be an odd"),
          ("data.workers", "-2", r"data\.workers must be >= 0"),
          ("runtime.threads", "0", r"runtime\.threads must be >= 1"),
          ("seed", "-1", r"seed must be >= 0"),
          ("optim.lr", "abc", r"optim\.lr: expected float"),
      ]],
    ("memory-estimate", lambda t, r: ["train", "--run-dir", str(t / "wide"),
                                      *tiny(r["a"], "model.width=65536")], 2,
     r"needs about [\d,.]+ GiB, more than the [\d,.]+ GiB of memory on cpu"),
    # -- names confined ------------------------------------------------------------------------
    ("name-dotdot", lambda t, r: ["train", "--print-config", *tiny(r["a"], "name=../../x")], 2,
     r"name '\.\./\.\./x' is not a plain name"),
    ("name-absolute", lambda t, r: ["train", "--print-config", *tiny(r["a"], "name=/abs/x")], 2,
     r"name '/abs/x' is not a plain name"),
    ("run-dir-empty", lambda t, r: ["train", "--run-dir", "", *tiny(r["a"])], 2,
     r"argument --run-dir: an empty folder name"),
    ("sweep-out-empty", lambda t, r: ["sweep", "quick", "--out", ""], 2,
     r"argument --out: an empty folder name"),
    ("experiment-name-escapes", lambda t, r: ["sweep", str(_write(
        t / "exp.yaml", "name: ../../x\nbase: {model: {family: maze, effective_depth: 8}}\n")),
        "--out", str(t / "o")], 2, r"experiment name .* '\.\./\.\./x' is not a plain name"),
    # -- YAML ----------------------------------------------------------------------------------
    ("yaml-billion-laughs", lambda t, r: ["train", "--config", str(_write(t / "l.yaml", LAUGHS)),
                                          "--print-config"], 2,
     r"aliases expand to more than 100,000 values"),
    ("yaml-python-tag", lambda t, r: ["train", "--config", str(_write(
        t / "p.yaml", "seed: !!python/object/apply:os.system ['true']\n")), "--print-config"], 2,
     r"is not valid YAML"),
    ("config-is-folder", lambda t, r: ["train", "--config", str(t), "--print-config"], 2,
     r"is a folder, not a file"),
    # -- unbounded sizes -----------------------------------------------------------------------
    ("eval-iters-huge", lambda t, r: ["eval", str(t), "--iters", "1..1000000"], 2,
     r"--iters: N must be <= 10,000"),
    ("mazes-size-huge", lambda t, r: ["mazes", "generate", "--size", "100001", "--out",
                                      str(t / "m")], 2, r"maze size must be <= 1,001"),
    ("mazes-disk-estimate", lambda t, r: ["mazes", "generate", "--size", "1001", "--train",
                                          "100000000", "--test", "0", "--out", str(t / "m"),
                                          "--no-progress"], 2,
     r"need [\d,.]+ GiB, more than the [\d,.]+ GiB free"),
    ("rf-max-iters-huge", lambda t, r: ["analyze", "rf", "--family", "maze", "--max-iters",
                                        "100000"], 2, r"integers in 1\.\.10,000"),
    # -- bad data refused on load --------------------------------------------------------------
    ("data-empty-train", lambda t, r: ["train", "--run-dir", str(t / "e"), *tiny(r["empty"])], 2,
     r"the train split of mazes under .* is empty"),
    ("data-nan-pixels", lambda t, r: (_published(t / "nan", 5, 16, nan=True),
                                      ["train", "--run-dir", str(t / "n"), *tiny(t / "nan")])[1],
     2, r"holds NaN or infinite values"),
    ("data-wrong-image-size", lambda t, r: (_published(t / "big", 5, 24),
                                            ["train", "--run-dir", str(t / "n"),
                                             *tiny(t / "big")])[1],
     2, r"images of 24x24 px, but mazes of size 5 are 16x16"),
    ("data-manifest-counts-edited", lambda t, r: (_edited_manifest(
        t / "cnt", r["a"], lambda m: m["counts"].update(train=7)),
        ["train", "--run-dir", str(t / "n"), *tiny(t / "cnt")])[1], 2,
     r"8 mazes, the manifest says 7"),
    ("data-manifest-size-edited", lambda t, r: (_size7_in_size5_folder(t / "s7", t),
                                                ["train", "--run-dir", str(t / "n"),
                                                 *tiny(t / "s7")])[1], 2,
     r"says size 7, but the folder is for size 5"),
    # -- run folders ---------------------------------------------------------------------------
    ("eval-missing-folder", lambda t, r: ["eval", str(t / "nothing")], 2, r"nothing does not exist; give a run folder"),
    ("run-dir-is-a-file", lambda t, r: ["train", "--run-dir", str(_write(t / "f", "x")),
                                        *tiny(r["a"])], 1,
     r"(FileExistsError|NotADirectoryError): .*\(a file is in the way.*traceback in .*\.log"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_battery(case, roots, tmp_path, capsys):
    _, build, status, pattern = case
    code, err = cli(build(tmp_path, roots), capsys)
    line = assert_one_line(err)
    assert code == status, err
    assert re.search(pattern, line), line


def test_unexpected_error_logs_traceback_and_debug_shows_it(roots, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECURDEPTH_LOG_DIR", str(tmp_path / "logs"))
    blocker = _write(tmp_path / "file", "x")
    code, err = cli(["train", "--run-dir", str(blocker), *tiny(roots["a"])], capsys)
    line = assert_one_line(err)
    log = Path(re.search(r"traceback in (\S+\.log)", line).group(1))
    assert code == 1 and log.parent == tmp_path / "logs"
    assert "Traceback (most recent call last)" in log.read_text()
    monkeypatch.setenv("RECURDEPTH_DEBUG", "1")
    code, err = cli(["train", "--run-dir", str(blocker), *tiny(roots["a"])], capsys)
    assert code == 1 and "Traceback (most recent call last)" in err


def test_bad_run_folder_files(trained, roots, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    (run / "result.json").write_text("[1, 2]")
    code, err = cli(["train", "--run-dir", str(run), *tiny(roots["a"])], capsys)
    assert code == 2 and re.search(r"result\.json does not hold a result", assert_one_line(err))


def test_other_data_refused_and_failed_extension_leaves_completed_run(trained, roots, tmp_path,
                                                                       capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    # Same config, other mazes: the finished result is not silently returned.
    code, err = cli(["train", "--run-dir", str(run), *tiny(roots["b"])], capsys)
    assert code == 2 and "was trained on other data" in assert_one_line(err)
    # Extending it (one more epoch) on other data: refused too.
    code, err = cli(["train", "--run-dir", str(run), *tiny(roots["b"], "train.epochs=2")], capsys)
    assert code == 2 and "was trained on other data" in assert_one_line(err)
    # Extending it with a missing data root: fails, but the completed run's files are untouched.
    code, err = cli(["train", "--run-dir", str(run), *tiny(tmp_path / "none", "train.epochs=2")],
                    capsys)
    assert code == 2 and "no maze data of size 5" in assert_one_line(err)
    # train.log only gains lines (the failed attempt is logged); nothing else changes.
    keep = lambda name: name not in (".lock", "train.log")  # noqa: E731
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and keep(p.name)}
    assert after == {k: v for k, v in before.items() if keep(k)}
    log = (run / "train.log").read_bytes()
    assert log.startswith(before["train.log"]) and b"failed: DataError" in log
    # The recorded data itself still works: same result, nothing retrained.
    code, _ = cli(["train", "--run-dir", str(run), *tiny(roots["a"])], capsys)
    assert code == 0 and (run / "metrics.jsonl").read_bytes() == before["metrics.jsonl"]


def test_locked_folder_refused_and_stale_lock_taken_over(roots, tmp_path, capsys):
    run = tmp_path / "run"
    with writer_lock(run, "run folder"):
        code, err = cli(["train", "--run-dir", str(run), *tiny(roots["a"])], capsys)
    assert code == 2
    assert re.search(rf"run folder {re.escape(str(run))} is being written by pid {os.getpid()} ",
                     assert_one_line(err))
    assert not (run / "checkpoint_last.pt").exists()
    # A lock file left by a dead process (nobody holds the flock) and a killed writer's temp file.
    (run / ".lock").write_text(json.dumps({"pid": 2**22 + 7, "host": "here"}))
    (run / ".checkpoint_last.pt.abc123.tmp").write_bytes(b"partial")
    code, err = cli(["train", "--run-dir", str(run), *tiny(roots["a"])], capsys)
    assert code == 0, err
    assert (run / "result.json").exists() and not list(run.glob(".*.tmp"))


def test_stale_maze_temp_folder_removed_and_concurrent_generate_refused(tmp_path, capsys):
    out = tmp_path / "mazes_5"
    leftover = tmp_path / ".mazes_5.tmp-deadbeef0000"
    (leftover / "train").mkdir(parents=True)
    (leftover / "train" / "inputs.npy").write_bytes(b"\0" * 1000)
    with writer_lock(out, "maze data set", lock_file=tmp_path / ".mazes_5.lock"):
        code, err = cli(["mazes", "generate", "--size", "5", "--train", "4", "--test", "2",
                         "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and "is being written by pid" in assert_one_line(err)
    assert leftover.exists()  # only the lock holder cleans up
    code, err = cli(["mazes", "generate", "--size", "5", "--train", "4", "--test", "2",
                     "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    assert not leftover.exists() and (out / "manifest.json").is_file()


def test_crafted_cifar_batch_never_runs_its_code(tmp_path, capsys):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({"data": Payload(), "labels": [0]}, f, protocol=2)
    code, err = cli(["train", "--run-dir", str(tmp_path / "run"), "model.family=convnet",
                     "model.iters=2", "model.width=4", "data.name=cifar10",
                     f"data.root={tmp_path}", "train.epochs=1", "runtime.device=cpu",
                     "runtime.progress=false"], capsys)
    line = assert_one_line(err)
    assert code == 2 and re.search(r"data_batch_1 was refused: refused to load posix\.system", line)
    assert not marker.exists()


EXPERIMENT = """\
name: tiny
base:
  model: {{family: maze, width: 4}}
  data: {{name: mazes, maze_size: 5, root: {root}}}
  optim: {{name: adam, lr: 0.001, warmup_epochs: 0, weight_decay: 0.0}}
  train: {{epochs: 1, batch_size: 4, eval_every: 0}}
  runtime: {{device: cpu, progress: false, threads: 1}}
grid:
  model.effective_depth: [8, 12]
"""

# A sweep (or train) in a subprocess whose first training waits for a `release` file, so that
# the test can start a second writer while the first one holds the lock.
GATED = """\
import sys, time
from pathlib import Path
gate = Path(sys.argv[1])
import recurdepth.training.run as run
real = run.build_run_data
def gated(cfg, *args, **kwargs):
    (gate / "ready").touch()
    while not (gate / "release").exists():
        time.sleep(0.05)
    return real(cfg, *args, **kwargs)
run.build_run_data = gated
from recurdepth.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _start_gated(gate: Path, argv: list[str]) -> subprocess.Popen:
    gate.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", GATED, str(gate), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (gate / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first writer never started training"
        time.sleep(0.1)
    return proc


def _finish(gate: Path, proc: subprocess.Popen) -> tuple[int, str]:
    (gate / "release").touch()
    out, err = proc.communicate(timeout=600)
    return proc.returncode, err


def _epochs(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln)["epoch"] for ln in lines if ln.strip()]


@pytest.mark.slow
def test_two_concurrent_sweeps_on_one_output(roots, tmp_path, capsys):
    exp = _write(tmp_path / "tiny.yaml", EXPERIMENT.format(root=roots["a"]))
    out = tmp_path / "out"
    argv = ["sweep", str(exp), "--out", str(out), "--no-progress"]
    first = _start_gated(tmp_path / "gate", argv)
    code, err = cli(argv, capsys)  # the second sweep, while the first one trains
    assert code == 2
    assert re.search(rf"sweep output {re.escape(str(out))} is being written by pid {first.pid} ",
                     assert_one_line(err))
    code, err = _finish(tmp_path / "gate", first)
    assert code == 0, err
    run_dirs = sorted((out / "runs").iterdir())
    assert len(run_dirs) == 2 and all(_epochs(d) == [1] for d in run_dirs)  # each trained once
    with sqlite3.connect(out / "results.sqlite") as conn:
        assert conn.execute("SELECT status, attempts FROM runs").fetchall() == [("completed", 1)] * 2
    code, err = cli(argv, capsys)  # afterwards: nothing left to run, nothing retrained
    assert code == 0 and all(_epochs(d) == [1] for d in run_dirs)


@pytest.mark.slow
def test_two_concurrent_trains_on_one_folder(roots, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--run-dir", str(run), *tiny(roots["a"])]
    first = _start_gated(tmp_path / "gate", argv)
    code, err = cli(argv, capsys)
    assert code == 2
    assert re.search(rf"run folder {re.escape(str(run))} is being written by pid {first.pid} ",
                     assert_one_line(err))
    code, err = _finish(tmp_path / "gate", first)
    assert code == 0, err
    assert _epochs(run) == [1]
    code, _ = cli(argv, capsys)  # the finished run is returned, not trained again
    assert code == 0 and _epochs(run) == [1]


KILLED_CREATION = """\
import os, sys, time
from pathlib import Path
import recurdepth.experiments.store as store
gate = Path(sys.argv[1])
def stop(*args):
    (gate / "ready").touch()
    time.sleep(600)
store.os.replace = stop  # killed just before the finished database is renamed into place
from recurdepth.experiments.spec import load_experiment
from recurdepth.experiments.store import ResultStore
ResultStore.open(Path(sys.argv[2]) / "results.sqlite", load_experiment(sys.argv[3]))
"""


@pytest.mark.slow
def test_sigkill_during_database_creation_then_rerun(roots, tmp_path, capsys):
    exp = _write(tmp_path / "tiny.yaml", EXPERIMENT.format(root=roots["a"]))
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CREATION, str(gate), str(out), str(exp)],
                            env=env)
    deadline = time.monotonic() + 300
    while not (gate / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.sqlite").exists() and list(out.glob(".results.sqlite.*.tmp"))
    code, err = cli(["sweep", str(exp), "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    assert not list(out.glob(".results.sqlite.*"))
    with sqlite3.connect(out / "results.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM runs").fetchall() == [("completed",)] * 2


def test_half_created_database_of_older_versions_is_recreated(roots, tmp_path, capsys):
    from recurdepth.experiments.spec import load_experiment
    from recurdepth.experiments.store import ResultStore

    exp = _write(tmp_path / "tiny.yaml", EXPERIMENT.format(root=roots["a"]))
    db = tmp_path / "out" / "results.sqlite"
    db.parent.mkdir()
    db.write_bytes(b"")  # killed right after the file appeared
    ResultStore.open(db, load_experiment(str(exp))).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM experiment")  # tables committed, identity not yet
    with ResultStore.open(db, load_experiment(str(exp))) as store:
        assert store.experiment_name == "tiny"


def test_invalid_json_in_a_database_row(roots, tmp_path, capsys):
    from recurdepth.errors import DataError
    from recurdepth.experiments.spec import load_experiment
    from recurdepth.experiments.store import ResultStore

    exp = load_experiment(str(_write(tmp_path / "tiny.yaml", EXPERIMENT.format(root=roots["a"]))))
    db = tmp_path / "results.sqlite"
    with ResultStore.open(db, exp) as store:
        runs = exp.runs()
        store.sync_runs(runs, {r.run_id: tmp_path / r.folder_name for r in runs})
        store.conn.execute("UPDATE runs SET result='{not json'")
        with pytest.raises(DataError, match=r"result of run .* is not valid JSON"):
            store.records()


def test_bounded_yaml_reader_still_reads_ordinary_aliases(tmp_path):
    from recurdepth.io import read_yaml

    path = _write(tmp_path / "ok.yaml", "a: &x {k: 1}\nb: *x\nc: [*x, *x]\n")
    assert read_yaml(path) == {"a": {"k": 1}, "b": {"k": 1}, "c": [{"k": 1}, {"k": 1}]}


def test_restricted_unpickler_reads_python3_and_python2_style_batches(tmp_path):
    from recurdepth.data.safe_pickle import read_cifar_batches

    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    path = tmp_path / "batch"
    for protocol in (2, 4):
        with open(path, "wb") as f:
            pickle.dump({"data": data, "labels": [3, 4], "filenames": [b"a", b"b"]}, f,
                        protocol=protocol)
        images, labels = read_cifar_batches([path])
        assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 4]
        assert (images.reshape(2, -1) == data).all()
    with open(path, "wb") as f:
        pickle.dump({"data": np.array([object()] * 2), "labels": [0, 1]}, f, protocol=2)
    from recurdepth.errors import DataError

    with pytest.raises(DataError, match="refused"):
        read_cifar_batches([path])
