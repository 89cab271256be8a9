"""A run killed with SIGKILL mid-epoch and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fixtures_data import write_cifar10
from recurdepth.training.checkpoint import load_checkpoint
from recurdepth.training.run import read_status

EPOCHS = 3


def train_command(data_root, run_dir) -> list[str]:
    # What the `recurdepth` console script runs.
    launcher = "import sys; from recurdepth.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", launcher, "train", "--run-dir", str(run_dir),
            "model.family=convnet", "model.iters=2", "model.width=4", "data.name=cifar10",
            f"data.root={data_root}", f"train.epochs={EPOCHS}", "train.batch_size=10",
            "optim.warmup_epochs=2", "runtime.progress=false", "runtime.device=cpu", "seed=7"]


def _env() -> dict[str, str]:
    # One thread: light on a shared machine, and the same arithmetic in every process.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _metric_lines(run_dir) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


@pytest.mark.timeout(300)
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    data_root = tmp_path / "data"
    write_cifar10(data_root, per_batch=60, n_test=10)  # 300 training images, 30 steps an epoch

    straight = tmp_path / "straight"
    subprocess.run(train_command(data_root, straight), check=True, env=_env(),
                   capture_output=True, timeout=200)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(train_command(data_root, killed), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while not _metric_lines(killed) and time.monotonic() < deadline:
            time.sleep(0.02)
        lines = _metric_lines(killed)
        assert lines, "the run never finished its first epoch"
        time.sleep(0.4 * lines[0]["seconds"])  # well inside the second epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    status = read_status(killed)
    assert status["status"] == "running" and status["epoch"] < EPOCHS
    assert not (killed / "result.json").exists()

    subprocess.run(train_command(data_root, killed), check=True, env=_env(),
                   capture_output=True, timeout=200)
    env = json.loads((killed / "env.json").read_text())
    assert 1 <= env["resumed_from_epoch"] < EPOCHS
    a = load_checkpoint(straight / "checkpoint_last.pt")
    b = load_checkpoint(killed / "checkpoint_last.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    ra = json.loads((straight / "result.json").read_text())
    rb = json.loads((killed / "result.json").read_text())
    for key in ("status", "test_acc", "train_acc", "test_acc_per_iter", "epochs"):
        assert ra[key] == rb[key], key
    assert [ln["epoch"] for ln in _metric_lines(killed)] == list(range(1, EPOCHS + 1))
    assert [ln["loss"] for ln in _metric_lines(killed)] == [ln["loss"] for ln in _metric_lines(straight)]
