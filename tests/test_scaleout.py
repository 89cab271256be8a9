"""Sweeps scaled out: GPU placement, SLURM through submitit (local processes), Ray by address."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from recurdepth.cli import main
from recurdepth.errors import ConfigError
from recurdepth.experiments import ResultStore
from recurdepth.experiments.executors import Task
from recurdepth.experiments.executors import LocalExecutor, gpu_slots
from recurdepth.experiments.slurm import SlurmExecutor, parse_time
from recurdepth.experiments.sweep import db_path_for

EXPERIMENT = {
    "name": "scaleout",
    "trials": 1,
    "base": {"seed": 0, "model": {"family": "maze", "width": 4, "effective_depth": 8},
             "data": {"name": "mazes", "maze_size": 5, "train_limit": 160, "test_limit": 20},
             "optim": {"name": "adam", "recur_lr_divide": False, "lr": 0.002,
                       "weight_decay": 0.0, "warmup_epochs": 0, "milestones": []},
             "train": {"epochs": 3, "batch_size": 20, "eval_every": 0},
             "runtime": {"device": "cpu", "threads": 1}},
    "grid": {"model.mode": ["recurrent", "feedforward"]},
    "prepare": {"mazes": {"n_train": 160, "n_test": 20, "seed": 0}},
}


@pytest.fixture
def experiment_file(tmp_path) -> Path:
    path = tmp_path / "scaleout.yaml"
    path.write_text(yaml.safe_dump(EXPERIMENT))
    return path


def _records(db: Path) -> dict[str, object]:
    with ResultStore.open_existing(db) as store:
        return {r.name: r for r in store.records()}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- GPU placement (faked count)

def _record_gpus(config, run_dir, *, progress=False):
    """A single-run function that reports which GPUs its worker was given, and when."""
    start = time.time()
    time.sleep(0.5)
    return {"status": "completed", "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid(), "start": start, "end": time.time()}


def test_gpu_slots_are_disjoint_groups_of_the_visible_devices():
    assert gpu_slots(["0", "1", "2", "3"], 1) == ["0", "1", "2", "3"]
    assert gpu_slots(["0", "1", "2", "3", "4"], 2) == ["0,1", "2,3"]
    assert gpu_slots(["4", "6"], 2) == ["4,6"]
    with pytest.raises(ConfigError, match="--gpus-per-run 2 but this machine has 1 GPU"):
        gpu_slots(["0"], 2)


def test_local_executor_on_three_gpus_runs_three_at_once_each_on_its_own(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ex = LocalExecutor(8, progress=False, gpu_count=3, threads_per_run=1, runs_per_gpu=1)
    assert ex.max_parallel == 3 and ex.slots == ["0", "1", "2"]
    tasks = [Task(f"id{i}", f"run{i}", {}, f"/nonexistent/{i}") for i in range(6)]
    outcomes = []
    # The real worker path, with a single-run function that records its GPUs.
    monkeypatch.setattr("recurdepth.experiments.executors.execute_task", _execute_recording)
    ex.execute(tasks, _record_gpus, lambda t: None, lambda t, o: outcomes.append(o["result"]))
    assert len(outcomes) == 6
    assert {o["gpus"] for o in outcomes} == {"0", "1", "2"}
    by_pid: dict[int, set] = {}
    for o in outcomes:
        by_pid.setdefault(o["pid"], set()).add(o["gpus"])
    assert all(len(g) == 1 for g in by_pid.values())  # a worker keeps its GPU
    for a in outcomes:  # runs that overlap in time never share a GPU
        for b in outcomes:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpus"] != b["gpus"]


def _execute_recording(train_fn, config, run_dir, *, progress=False, threads=None, capture=False):
    return {"ok": True, "result": train_fn(config, run_dir, progress=progress)}


def test_two_gpus_per_run_on_four_gpus_gives_two_slots_and_torchrun(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,5,7")
    ex = LocalExecutor(4, progress=False, gpus_per_run=2, gpu_count=4)
    assert ex.slots == ["2,3", "5,7"] and ex.max_parallel == 2
    from recurdepth.training.launch import TorchrunTrain

    fn = ex._train_fn(None)
    assert isinstance(fn, TorchrunTrain) and fn.nproc == 2


# ---------------------------------------------------------------- one-line errors up front

def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


def test_gpus_per_run_larger_than_the_machine_is_refused(capsys, monkeypatch, experiment_file,
                                                         tmp_path):
    monkeypatch.setattr("recurdepth.training.launch.visible_gpu_count", lambda: 1)
    err = _one_line_error(capsys, ["sweep", str(experiment_file), "--out", str(tmp_path / "o"),
                                   "--gpus-per-run", "2"])
    assert "--gpus-per-run 2 but this machine has 1 GPU" in err
    assert not (tmp_path / "o").exists()


def test_slurm_without_submitit_says_how_to_install(capsys, monkeypatch, experiment_file,
                                                    tmp_path):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    err = _one_line_error(capsys, ["sweep", str(experiment_file), "--out", str(tmp_path / "o"),
                                   "--executor", "slurm", "--partition", "gpu"])
    assert "pip install 'recurdepth[slurm]'" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has SLURM")
def test_partition_on_a_machine_without_sbatch_is_refused(capsys, experiment_file, tmp_path):
    err = _one_line_error(capsys, ["sweep", str(experiment_file), "--out", str(tmp_path / "o"),
                                   "--executor", "slurm", "--partition", "gpu"])
    assert "--partition gpu" in err and "no sbatch" in err
    assert not (tmp_path / "o").exists()


def test_slurm_dry_run_prints_the_submission(capsys, experiment_file, tmp_path):
    assert main(["sweep", str(experiment_file), "--out", str(tmp_path / "o"), "--dry-run",
                 "--executor", "slurm", "--partition", "gpu", "--gpus-per-run", "2",
                 "--time", "12:00:00", "--array-parallelism", "4"]) == 0
    out = capsys.readouterr().out
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=12:00:00",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --array=0-1%4", "#SBATCH --requeue"):
        assert line in out
    assert parse_time("1-00:30:00") == 1470 and parse_time("90") == 90
    with pytest.raises(ConfigError, match="not a SLURM time limit"):
        SlurmExecutor(time_limit="tomorrow")


def test_slurm_run_requeues_itself_with_the_same_call():
    from recurdepth.experiments.slurm import SlurmRun

    delayed = SlurmRun(None).checkpoint({"a": 1}, "/runs/x")
    assert isinstance(delayed.function, SlurmRun)
    assert delayed.args == ({"a": 1}, "/runs/x")


# ---------------------------------------------------------------- SLURM via submitit (local)

@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_slurm_sweep_through_submitit_kill_resume_and_rerun(experiment_file, tmp_path):
    out = tmp_path / "out"
    args = ["sweep", str(experiment_file), "--out", str(out), "--data-root",
            str(tmp_path / "data"), "--executor", "slurm", "--slurm-cluster", "local",
            "--no-progress"]
    launcher = f"import sys; from recurdepth.cli import main; sys.exit(main({args!r}))"
    # Driver and its array tasks share a process group: kill them all mid-run.
    proc = subprocess.Popen([sys.executable, "-c", launcher], env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 800
        while time.monotonic() < deadline and not _some_run_mid_way(out):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        assert _some_run_mid_way(out), "no run got past its first epoch"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert main(args) == 0
    recs = _records(db_path_for(out))
    assert len(recs) == 2 and {r.status for r in recs.values()} == {"completed"}
    resumed = [json.loads((d / "env.json").read_text())["resumed_from_epoch"]
               for d in (out / "runs").iterdir()]
    assert max(resumed) >= 1  # the killed task continued from its checkpoint
    for d in (out / "runs").iterdir():
        lines = (d / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3]
    before = {n: (r.status, (r.result or {}).get("test_acc")) for n, r in recs.items()}
    logs = sorted(p.name for p in (out / "slurm").iterdir())
    assert main(args) == 0  # rerun: nothing submitted, nothing changed
    assert {n: (r.status, (r.result or {}).get("test_acc")) for n, r in _records(db_path_for(out)).items()} == before
    assert sorted(p.name for p in (out / "slurm").iterdir()) == logs


def _some_run_mid_way(out: Path) -> bool:
    runs = out / "runs"
    if not runs.exists():
        return False
    for d in runs.iterdir():
        try:
            status = json.loads((d / "status.json").read_text())
        except (OSError, ValueError):
            continue
        if status.get("status") == "running" and 1 <= status.get("epoch", 0) < 3:
            return True
    return False


# ---------------------------------------------------------------- Ray head started by the test

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ray_sweep_against_an_external_head_matches_the_local_executor(experiment_file, tmp_path,
                                                                       monkeypatch):
    pytest.importorskip("ray")
    # Ray turns token authentication on by itself when ~/.ray/auth_token exists (left by an
    # earlier Ray session); head and driver here must agree, so both run without it.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="rdray", dir="/tmp")  # short: Ray's socket paths are limited
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}"],
                            env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, head)
        data = tmp_path / "data"
        ray_out, local_out = tmp_path / "ray", tmp_path / "local"
        assert main(["sweep", str(experiment_file), "--out", str(ray_out), "--data-root",
                     str(data), "--executor", "ray", "--address", f"127.0.0.1:{port}",
                     "--no-progress"]) == 0
    finally:
        _stop_group(head)  # the head and every Ray process it started, by process group
        shutil.rmtree(temp, ignore_errors=True)
    assert main(["sweep", str(experiment_file), "--out", str(local_out), "--data-root",
                 str(data), "--no-progress"]) == 0
    remote, local = _records(db_path_for(ray_out)), _records(db_path_for(local_out))
    key = lambda recs: sorted((r.id, r.name, r.status, r.parameters) for r in recs.values())  # noqa: E731
    assert key(remote) == key(local) and len(remote) == 2


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ray start exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail("the Ray head never listened")


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
