"""One run in two gloo processes under torchrun means the same as one process on the global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.errors import ConfigError
from recurdepth.training import RunConfig, apply_overrides
from recurdepth.training.checkpoint import load_checkpoint
from recurdepth.training.distributed import Dist, convert_sync_bn
from recurdepth.data.tasks import get_task
from recurdepth.training.evaluate import loss_and_correct, loss_terms
from recurdepth.training.launch import check_process_count
from recurdepth.training.run import make_model, read_status

EPOCHS = 6  # room for a kill after epoch 1 to land mid-run on a fast machine
# A maze solver has no BatchNorm, and the maze loss is normalised by the non-wall pixels of the
# whole batch: the case where a per-process mean would give the wrong gradient.
ARGS = ["model.family=maze", "model.iters=2", "model.width=4", "data.maze_size=5",
        f"train.epochs={EPOCHS}", "train.batch_size=10", "optim.name=adam", "optim.lr=0.003",
        "runtime.progress=false", "runtime.device=cpu", "runtime.amp=off",
        "runtime.channels_last=false", "seed=5"]  # fp32: the 1e-5 claim is about fp32 arithmetic


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cli(nproc: int | None, root, run_dir) -> list[str]:
    launcher = [sys.executable, "-m", "recurdepth", "train"]
    if nproc is not None:  # what a user types: torchrun itself, not our launcher
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={nproc}", "-m", "recurdepth", "train"]
    return launcher + ["--run-dir", str(run_dir), f"data.root={root}", *ARGS]


def _metrics(run_dir) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def _epochs_saved(run_dir) -> int:
    try:
        return int((read_status(run_dir) or {}).get("epoch", 0))
    except ValueError:  # read while being replaced
        return 0


def _max_weight_diff(a, b) -> float:
    wa, wb = load_checkpoint(a / "checkpoint_last.pt"), load_checkpoint(b / "checkpoint_last.pt")
    assert wa["epoch"] == wb["epoch"] == EPOCHS and wa["model"].keys() == wb["model"].keys()
    return max(float((wa["model"][k].double() - wb["model"][k].double()).abs().max())
               for k in wa["model"])


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    # 110 mazes: 11 batches of 10, the last one partial (5 per process).
    generate_dataset(maze_dir(root, 5), size=5, n_train=105, n_test=10, progress=False)
    run_dir = tmp_path_factory.mktemp("single") / "run"
    subprocess.run(_cli(None, root, run_dir), check=True, env=_env(), capture_output=True,
                   timeout=900)
    return root, run_dir


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_gloo_processes_match_one_process_and_write_one_folder(single, tmp_path):
    root, ref = single
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(_cli(2, root, out / "run"), env=_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [p.name for p in out.iterdir()] == ["run"]  # one run folder, written by rank 0
    assert _max_weight_diff(ref, out / "run") <= 1e-5
    lines = _metrics(out / "run")
    assert [ln["epoch"] for ln in lines] == list(range(1, EPOCHS + 1))
    for a, b in zip(lines, _metrics(ref)):  # epoch figures summed over both processes
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["train_acc_augmented"] == b["train_acc_augmented"]
    env = json.loads((out / "run" / "env.json").read_text())
    assert env["world_size"] == 2
    assert proc.stdout.count('"status": "completed"') == 1  # rank 0 alone reports


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_torchrun_group_killed_and_rerun_resumes_to_the_same_weights(single, tmp_path):
    root, ref = single
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_cli(2, root, run_dir), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 800
        while _epochs_saved(run_dir) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _epochs_saved(run_dir) >= 1, "the run never checkpointed its first epoch"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        proc.wait(timeout=30)
    status = read_status(run_dir)
    assert status["status"] == "running" and status["epoch"] < EPOCHS
    subprocess.run(_cli(2, root, run_dir), check=True, env=_env(), capture_output=True,
                   timeout=900)
    env = json.loads((run_dir / "env.json").read_text())
    assert 1 <= env["resumed_from_epoch"] < EPOCHS
    assert [ln["epoch"] for ln in _metrics(run_dir)] == list(range(1, EPOCHS + 1))
    assert _max_weight_diff(ref, run_dir) <= 1e-5


def test_sliced_losses_give_the_gradient_of_the_global_batch_mean():
    """Per-slice sums over the global normaliser, scaled as DDP averages, equal the global mean."""
    torch.manual_seed(0)
    x = (torch.rand(6, 3, 4, 4) > 0.4).float()  # maze-like: zero pixels are walls
    y = torch.randint(0, 2, (6, 4, 4))
    logits = torch.randn(6, 2, 4, 4, requires_grad=True)
    full, _ = loss_and_correct(logits, y, x, task=get_task("maze"))
    (g_full,) = torch.autograd.grad(full, logits)
    world = 3
    parts = [loss_terms(logits[r * 2:(r + 1) * 2], y[r * 2:(r + 1) * 2], x[r * 2:(r + 1) * 2],
                        task=get_task("maze")) for r in range(world)]
    denom = sum(p[1] for p in parts)
    ddp_grad = sum(torch.autograd.grad(p[0] / denom * world, logits)[0] for p in parts) / world
    torch.testing.assert_close(ddp_grad, g_full)
    assert Dist(rank=1, world_size=3).shard(x, y)[0].shape[0] == 2


def test_sync_bn_converts_per_iteration_batchnorm_and_keeps_checkpoint_keys():
    cfg = apply_overrides(RunConfig(), {"model.family": "residual_bn", "model.mode": "recurrent",
                                        "model.iters": 3, "model.width": 4,
                                        "data.name": "cifar10", "runtime.device": "cpu"})
    from recurdepth.training.config import resolve

    model = make_model(resolve(cfg))
    keys = set(model.state_dict())
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert n_bn > 0
    convert_sync_bn(model)
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()) == n_bn
    assert set(model.state_dict()) == keys


def test_more_processes_than_the_batch_is_a_one_line_error(capsys):
    from recurdepth.cli import main

    code = main(["train", "--nproc-per-node", "8", "model.family=maze", "model.iters=2",
                 "train.batch_size=4", "runtime.device=cpu"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "8 processes" in err and "train.batch_size=4" in err
    with pytest.raises(ConfigError, match="needs 2 GPUs"):
        cfg = apply_overrides(RunConfig(), {"train.batch_size": 4})
        cfg.runtime.device = "cuda"  # resolved elsewhere; here: a machine without GPUs
        check_process_count(2, cfg)
