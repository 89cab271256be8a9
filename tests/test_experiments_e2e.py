"""The `quick` preset end to end with the real train_run: kill and resume, rerun, Ray.

One sweep of the quick preset is shared by the tests of this module (it is the expensive part):
it is started in a subprocess, killed with SIGKILL mid-sweep, and completed by a rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recurdepth.cli import main
from recurdepth.experiments import RayExecutor, ResultStore, load_experiment, run_sweep
from recurdepth.experiments.sweep import db_path_for
from recurdepth.report import write_report

pytestmark = pytest.mark.slow


def statuses(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT name, status FROM runs"))
    except sqlite3.OperationalError:  # the driver has not created the table yet
        return {}
    finally:
        conn.close()


def records(db: Path) -> dict[str, object]:
    with ResultStore.open_existing(db) as store:
        return {r.name: r for r in store.records()}


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def killed_then_completed(tmp_path_factory):
    """Run `recurdepth sweep quick`, SIGKILL it mid-sweep, rerun it to completion."""
    base = tmp_path_factory.mktemp("quick")
    out, data = base / "out", base / "data"
    args = ["sweep", "quick", "--out", str(out), "--data-root", str(data), "--no-progress"]
    db = db_path_for(out)
    proc = subprocess.Popen([sys.executable, "-c",
                             f"import sys; from recurdepth.cli import main; sys.exit(main({args!r}))"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            s = statuses(db) if db.exists() else {}
            if "completed" in s.values() and "running" in s.values():
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never had a finished and a running run")
        # Kill the driver without warning while one run is finished and another is running
        # (waiting longer lets a tiny run finish first on a fast machine).
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = records(db)
    assert main(args) == 0
    return {"out": out, "data": data, "args": args, "before": before, "after": records(db)}


def test_killed_sweep_completes_on_rerun_with_nothing_lost(killed_then_completed):
    before, after = killed_then_completed["before"], killed_then_completed["after"]
    experiment = load_experiment("quick")
    runs = experiment.runs()
    assert sorted(after) == sorted(r.name for r in runs)
    assert {r.status for r in after.values()} == {"completed"}
    finished_before = [n for n, r in before.items() if r.status == "completed"]
    interrupted = [n for n, r in before.items() if r.status == "running"]
    assert finished_before and len(interrupted) == 1
    for name in finished_before:  # not run again: same result, same finish time, one attempt
        assert after[name].result == before[name].result
        assert after[name].finished_at == before[name].finished_at
        assert after[name].attempts == 1
    assert after[interrupted[0]].attempts == 2
    epochs = experiment.runs()[0].config.train.epochs
    for rec in after.values():
        # Every epoch trained exactly once in the run's history, the result is the full run's.
        lines = (rec.run_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == list(range(1, epochs + 1))
        assert rec.result["epochs"] == epochs
        assert 0.0 <= rec.result["test_acc"] <= 100.0
        assert rec.result["parameters"] == rec.parameters


def test_rerun_runs_nothing_and_database_and_report_are_identical(killed_then_completed):
    out, args = killed_then_completed["out"], killed_then_completed["args"]
    db = db_path_for(out)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    first = write_report(db, out / "report_a")
    assert main(args) == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert all(r.attempts <= 2 for r in records(db).values())
    write_report(db, out / "report_b")
    assert tree_digest(out / "report_a") == tree_digest(out / "report_b")
    assert (out / "report_a" / "accuracy_vs_depth.png") in first.figures
    csv = (out / "report_a" / "depth_table.csv").read_text().splitlines()
    assert len(csv) == 1 + 2  # header + depths 8 and 12


def test_ray_executor_records_the_same_runs(killed_then_completed, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        experiment = load_experiment("quick").with_data_root(killed_then_completed["data"])
        summary = run_sweep(experiment, tmp_path / "ray", executor=RayExecutor(num_cpus=1),
                            progress=False)
    finally:
        ray.shutdown()
    assert summary.failures == []
    local = records(db_path_for(killed_then_completed["out"]))
    remote = records(summary.db_path)
    assert sorted((r.id, r.name, r.status, r.parameters) for r in remote.values()) == \
        sorted((r.id, r.name, r.status, r.parameters) for r in local.values())
