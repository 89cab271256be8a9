"""Run tracking: TensorBoard events read back, plain train.log, worker output, eval.json, modes."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from recurdepth.cli import main
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.experiments.executors import execute_task
from recurdepth.io import atomic_write_text
from recurdepth.training import RunConfig, apply_overrides, train_run
from recurdepth.training.tracking import TB_HINT

EPOCHS, TRAIN, BATCH = 2, 12, 4  # 3 steps per epoch


@pytest.fixture(scope="module")
def maze_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mazes")
    generate_dataset(maze_dir(root, 5), size=5, n_train=TRAIN, n_test=6, progress=False)
    return root


def tiny(root, **over) -> RunConfig:
    return apply_overrides(RunConfig(), {
        "model.family": "maze", "model.iters": 1, "model.width": 4, "data.root": str(root),
        "data.maze_size": 5, "train.epochs": EPOCHS, "train.batch_size": BATCH,
        "optim.name": "adam", "optim.lr": 1e-3, "runtime.device": "cpu",
        "runtime.progress": False, **over})


@pytest.fixture(scope="module")
def run(maze_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "r"
    result = train_run(tiny(maze_root), run_dir)
    return run_dir, result


def test_tensorboard_scalars_read_back(run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, result = run
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"step/loss", "epoch/loss", "epoch/lr", "epoch/test_acc", "final/test_acc",
            "final/train_acc"} <= tags
    steps = acc.Scalars("step/loss")
    assert [s.step for s in steps] == list(range(1, EPOCHS * TRAIN // BATCH + 1))
    metrics = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch_loss = acc.Scalars("epoch/loss")
    assert [s.step for s in epoch_loss] == [1, 2]
    assert [s.value for s in epoch_loss] == pytest.approx([m["loss"] for m in metrics], rel=1e-6)
    # the epoch loss is the sample-weighted mean of its steps (equal batches: the plain mean)
    first = [s.value for s in steps[: TRAIN // BATCH]]
    assert epoch_loss[0].value == pytest.approx(sum(first) / len(first), rel=1e-5)
    assert [s.value for s in acc.Scalars("epoch/test_acc")] == pytest.approx(
        [m["test_acc"] for m in metrics])
    final = acc.Scalars("final/test_acc")[-1]
    assert final.step == EPOCHS and final.value == pytest.approx(result["test_acc"])
    assert acc.Scalars("final/train_acc")[-1].value == pytest.approx(result["train_acc"])


def test_train_log_is_plain_and_metrics_end_with_test_accuracy(run):
    run_dir, result = run
    log = (run_dir / "train.log").read_text()
    assert "\r" not in log and "\x1b" not in log
    assert "epoch 1/2: loss" in log and "epoch 2/2: loss" in log and "done: test acc" in log
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == EPOCHS and last["test_acc"] == pytest.approx(result["test_acc"])


def test_epoch_lines_printed_without_progress_bars_unless_quiet(maze_root, tmp_path, capsys):
    train_run(tiny(maze_root, **{"train.epochs": 1}), tmp_path / "a")
    out = capsys.readouterr().out
    assert "epoch 1/1: loss" in out and "\r" not in out
    train_run(tiny(maze_root, **{"train.epochs": 1}), tmp_path / "b", quiet=True)
    assert capsys.readouterr().out == ""
    assert "epoch 1/1: loss" in (tmp_path / "b" / "train.log").read_text()


def test_without_tensorboard_a_one_line_hint(maze_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    train_run(tiny(maze_root, **{"train.epochs": 1}), tmp_path / "r")
    assert TB_HINT in (tmp_path / "r" / "train.log").read_text()
    assert not (tmp_path / "r" / "tensorboard").exists()


def _noisy_train(config, run_dir, *, progress):
    print("python says hello")
    os.write(2, b"C-level stderr line\n")
    raise ValueError("bad luck")


def test_worker_output_goes_to_the_run_log(tmp_path, capfd):
    run_dir = tmp_path / "w"
    outcome = execute_task(_noisy_train, RunConfig().to_dict(), str(run_dir), capture=True)
    assert not outcome["ok"] and outcome["error"].startswith("ValueError: bad luck")
    log = (run_dir / "train.log").read_text()
    assert "python says hello" in log and "C-level stderr line" in log and "bad luck" in log
    seen = capfd.readouterr()
    assert "hello" not in seen.out and "C-level" not in seen.err


def test_eval_results_saved_in_the_run_folder(run, capsys):
    run_dir, _ = run
    assert main(["eval", str(run_dir), "--iters", "1..3"]) == 0
    assert main(["eval", str(run_dir), "--data", "train", "--format", "json"]) == 0
    capsys.readouterr()
    saved = json.loads((run_dir / "eval.json").read_text())
    assert set(saved) == {"test/size5/iters1..3", "train/size5/iters1..1"}
    assert len(saved["test/size5/iters1..3"]["acc_per_iter"]) == 3


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_run_folder_files_are_readable_by_others_under_umask_022(run):
    run_dir, _ = run
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("config.yaml", "result.json", "checkpoint_last.pt", "status.json", "train.log",
                 "metrics.jsonl", "env.json"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~umask, name
