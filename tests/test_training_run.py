"""Whole runs on tiny data sets written in the real on-disk formats, through the real loaders."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from fixtures_data import write_cifar10, write_emnist, write_image_folder, write_svhn
from recurdepth.cli import main
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.errors import ConfigError, DataError
from recurdepth.training import RunConfig, apply_overrides, load_run, train_run
from recurdepth.training.data import eval_tensors
from recurdepth.data.tasks import get_task
from recurdepth.training.evaluate import count_correct
from recurdepth.training.run import read_status

QUIET = {"runtime.progress": False, "runtime.device": "cpu"}


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=8, n_test=10)
    return root


@pytest.fixture(scope="module")
def maze_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mazes")
    generate_dataset(maze_dir(root, 5), size=5, n_train=40, n_test=20, progress=False)
    generate_dataset(maze_dir(root, 7), size=7, n_train=1, n_test=10, progress=False)
    return root


def cifar_config(root, **over) -> RunConfig:
    return apply_overrides(RunConfig(), {
        "model.family": "convnet", "model.iters": 2, "model.width": 4, "data.name": "cifar10",
        "data.root": str(root), "train.epochs": 2, "train.batch_size": 8, **QUIET, **over})


def test_cifar_run_folder_result_and_rerun(cifar_root, tmp_path):
    run_dir = tmp_path / "run"
    result = train_run(cifar_config(cifar_root, **{"train.eval_iters": 4}), run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint_best.pt", "checkpoint_last.pt", "config.yaml", "data.json",
        "env.json", "metrics.jsonl", "result.json", "status.json", "tensorboard", "train.log"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["resolved"]["model"]["effective_depth"] == 6
    assert saved["resolved"]["data"]["crop_padding"] == 4
    assert saved["requested"]["model"]["effective_depth"] is None  # as asked: reusable anywhere
    env = json.loads((run_dir / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and "git_commit" in env
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == [1, 2]
    assert [round(ln["lr_factor"], 2) for ln in lines] == [0.18, 0.33]
    assert lines[0]["lr"] == pytest.approx(0.1 * 0.18127, rel=1e-4)
    assert read_status(run_dir)["status"] == "completed"
    assert result["status"] == "completed" and result["epochs"] == 2
    assert len(result["test_acc_per_iter"]) == 4
    assert result["test_acc"] == result["test_acc_per_iter"][1]
    # convnet w=4: convs 3→2, 2→4, 4→4 (shared), 4→8 (3x3, bias) and Linear(32→10).
    params = (3 * 2 * 9 + 2) + (2 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 8 * 9 + 8) + (32 * 10 + 10)
    assert (result["parameters"], result["effective_depth"], result["iters"]) == (params, 6, 2)
    assert result["images_per_s"] > 0 and result["seconds"] > 0
    assert json.loads((run_dir / "result.json").read_text()) == result

    # Independent check: the loaded model on eval_tensors gives the reported accuracies.
    loaded = load_run(run_dir)
    x, y = eval_tensors(loaded.config)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32
    with torch.no_grad():
        correct = count_correct(loaded.model(x), y, x, task=get_task("classification"))
    assert 100.0 * int(correct) / 10 == pytest.approx(result["test_acc"])
    xt, yt = eval_tensors(loaded.config, "train")
    with torch.no_grad():
        train_correct = count_correct(loaded.model(xt), yt, xt, task=get_task("classification"))
    assert 100.0 * int(train_correct) / 40 == pytest.approx(result["train_acc"])

    mtime = (run_dir / "checkpoint_last.pt").stat().st_mtime_ns
    assert train_run(cifar_config(cifar_root, **{"train.eval_iters": 4}), run_dir) == result
    assert (run_dir / "checkpoint_last.pt").stat().st_mtime_ns == mtime  # nothing retrained

    with pytest.raises(ConfigError, match=r"another config \(optim\.lr: 0\.1 in the folder, 0\.05"):
        train_run(cifar_config(cifar_root, **{"optim.lr": 0.05}), run_dir)


def test_corrupt_checkpoint_in_run_folder_is_a_clear_error(cifar_root, tmp_path):
    run_dir = tmp_path / "run"
    train_run(cifar_config(cifar_root, **{"train.epochs": 1}), run_dir)
    ckpt = run_dir / "checkpoint_last.pt"
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01
    ckpt.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt"):
        train_run(cifar_config(cifar_root, **{"train.epochs": 2}), run_dir)
    assert main(["eval", str(run_dir)]) == 2


def test_nan_loss_stops_the_run_as_diverged(cifar_root, tmp_path):
    run_dir = tmp_path / "run"
    result = train_run(cifar_config(cifar_root, **{"optim.lr": 1e30, "optim.warmup_epochs": 0,
                                                   "train.epochs": 3}), run_dir)
    assert result["status"] == "diverged" and result["test_acc"] is None
    assert "loss became" in result["message"]
    status = read_status(run_dir)
    assert status["status"] == "diverged" and status["epoch"] == result["epoch"]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "diverged"


def test_missing_data_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nothing")):
        train_run(cifar_config(tmp_path / "nothing"), tmp_path / "run")
    # It failed before it started: no folder of a log and empty TensorBoard files is left.
    assert not (tmp_path / "run").exists()
    cfg = apply_overrides(RunConfig(), {"model.effective_depth": 8, "data.root": str(tmp_path),
                                        **QUIET})
    with pytest.raises(DataError, match="recurdepth mazes generate --size 9"):
        train_run(cfg, tmp_path / "run2")


@pytest.mark.parametrize("name, family, writer", [
    ("svhn", "mlp", lambda root: write_svhn(root / "svhn", n_train=7, n_test=5)),
    ("emnist", "mlp", lambda root: write_emnist(root, n_train=9, n_test=4)),
    ("imagenet", "residual_imagenet", lambda root: [
        write_image_folder(root / "imagenet" / split, per_class=2, size=40) for split in
        ("train", "val")]),
])
def test_every_format_trains_through_the_real_loader(tmp_path, name, family, writer):
    writer(tmp_path)
    cfg = apply_overrides(RunConfig(), {
        "model.family": family, "model.iters": 1, "model.width": 4, "data.name": name,
        "data.root": str(tmp_path), "data.workers": 0, "train.epochs": 1, "train.batch_size": 4,
        **QUIET})
    result = train_run(cfg, tmp_path / "run")
    assert result["status"] == "completed" and result["test_acc_per_iter"] is not None
    n_test = {"svhn": 5, "emnist": 4, "imagenet": 4}[name]
    # Accuracy is a whole number of correct test samples.
    assert round(result["test_acc"] * n_test / 100, 6) % 1 == 0


def test_maze_run_cli_train_and_eval_beyond_trained_iters(maze_root, tmp_path, capsys):
    run_dir = tmp_path / "maze_run"
    code = main(["train", "--run-dir", str(run_dir), "model.family=maze", "model.iters=2",
                 "model.width=8", f"data.root={maze_root}", "data.maze_size=5",
                 "data.eval_maze_size=7", "train.epochs=2", "train.batch_size=10",
                 "optim.name=adam", "optim.lr=1e-3", "runtime.progress=false"])
    assert code == 0
    out = capsys.readouterr().out
    assert '"status": "completed"' in out and str(run_dir) in out
    result = json.loads((run_dir / "result.json").read_text())
    assert result["maze_size"] == 5 and result["eval_maze_size"] == 7
    assert len(result["eval_maze_acc_per_iter"]) == 2
    cfg = load_run(run_dir).config
    assert cfg.optim.recur_lr_divide is True and cfg.train.batch_size == 10

    assert main(["eval", str(run_dir), "--iters", "1..5", "--format", "json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert len(ev["acc_per_iter"]) == 5 and ev["samples"] == 20 and ev["maze_size"] == 5
    assert ev["acc_per_iter"][:2] == pytest.approx(result["test_acc_per_iter"])
    assert main(["eval", str(run_dir), "--iters", "1..3", "--maze-size", "7"]) == 0
    table = capsys.readouterr().out
    assert "size 7" in table and "(trained)" in table and len(table.strip().splitlines()) == 6
    assert "eval.json" in table.strip().splitlines()[-1]
    assert main(["eval", str(run_dir), "--iters", "2..3"]) == 2
    assert "--iters expects 1..N" in capsys.readouterr().err


def test_cli_errors_print_one_line(tmp_path, capsys):
    assert main(["train", "--run-dir", str(tmp_path / "r"), "model.family=nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown model family 'nope'; valid choices:" in err and "Traceback" not in err
    assert main(["train", "optim.momentumm=0.8"]) == 2
    assert "valid choices:" in capsys.readouterr().err
    assert main(["eval", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_bn_recurrent_eval_is_capped_with_a_note(cifar_root, tmp_path, capsys):
    run_dir = tmp_path / "bn"
    result = train_run(cifar_config(cifar_root, **{
        "model.family": "residual_bn", "model.iters": 2, "train.epochs": 1,
        "train.eval_iters": 5}), run_dir)
    assert len(result["test_acc_per_iter"]) == 2 and "BatchNorm for 2" in result["note"]
    assert main(["eval", str(run_dir), "--iters", "1..4"]) == 0
    out = capsys.readouterr().out
    assert "note: evaluated up to 2 iterations instead of 4" in out
    assert main(["train", "--print-config", "model.family=maze", "model.effective_depth=44",
                 "runtime.device=cpu"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["iters"] == 10 and printed["train"]["batch_size"] == 50


def test_best_checkpoint_beside_the_last_holds_the_best_measured_epoch(cifar_root, tmp_path):
    from recurdepth.training.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    result = train_run(cifar_config(cifar_root, **{"train.epochs": 3}), run_dir)
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    measured = [(ln["test_acc"], ln["epoch"]) for ln in lines if "test_acc" in ln]
    measured.append((result["test_acc"], 3))
    best_acc = max(acc for acc, _ in measured)
    first_best_epoch = min(ep for acc, ep in measured if acc == best_acc)
    best = load_checkpoint(run_dir / "checkpoint_best.pt")
    assert best["test_acc"] == best_acc and best["epoch"] == first_best_epoch
    last = load_checkpoint(run_dir / "checkpoint_last.pt")
    assert last["epoch"] == 3 and last["best_test_acc"] == best_acc


def test_no_function_in_training_is_over_60_lines():
    import ast
    from pathlib import Path

    import recurdepth.training as training

    long = []
    for path in Path(training.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long, long


def test_per_epoch_train_accuracy_is_unaugmented_on_a_fixed_subset(cifar_root, tmp_path):
    run_dir = tmp_path / "curve"
    result = train_run(cifar_config(cifar_root, **{"train.eval_train_limit": 16,
                                                   "train.eval_every": 1}), run_dir)
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [("train_acc" in ln, "test_acc" in ln) for ln in lines] == [(True, True)] * 2
    assert result["curve"] == [{k: ln[k] for k in ("epoch", "train_acc", "test_acc")}
                               for ln in lines]
    assert lines[-1]["test_acc"] == pytest.approx(result["test_acc"])
    # Independent check: the trained model on the first 16 training images, not augmented.
    loaded = load_run(run_dir)
    x, y = eval_tensors(loaded.config, "train", limit=16)
    with torch.no_grad():
        correct = count_correct(loaded.model(x), y, x, task=get_task("classification"))
    assert lines[-1]["train_acc"] == pytest.approx(100.0 * int(correct) / 16)
    # 16 samples: every accuracy is a multiple of 100/16.
    assert all(round(ln["train_acc"] * 16 / 100, 6) % 1 == 0 for ln in lines)


def test_default_train_subset_is_the_test_set_size(maze_root, tmp_path):
    cfg = apply_overrides(RunConfig(), {
        "model.family": "maze", "model.iters": 1, "model.width": 4, "data.root": str(maze_root),
        "data.maze_size": 5, "train.epochs": 1, "train.batch_size": 10, **QUIET})
    run_dir = tmp_path / "maze_curve"
    train_run(cfg, run_dir)
    (line,) = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    loaded = load_run(run_dir)
    x, y = eval_tensors(loaded.config, "train", limit=20)  # the maze test split holds 20
    with torch.no_grad():
        correct = count_correct(loaded.model(x), y, x, task=get_task("maze"))
    assert line["train_acc"] == pytest.approx(100.0 * int(correct) / 20)
    off = train_run(apply_overrides(cfg, {"train.eval_train_limit": 0}), tmp_path / "off")
    assert off["curve"] == [{"epoch": 1, "test_acc": off["test_acc"]}]


@pytest.mark.parametrize("value, iters, expected", [
    ("2x", 2, 4), ("1.5x", 3, 5), ("1x", 3, 3), (6, 2, 6), ("6", 2, 6), (None, 2, None)])
def test_relative_eval_iters(value, iters, expected):
    cfg = apply_overrides(RunConfig(), {"model.family": "maze", "model.iters": iters,
                                        "train.eval_iters": value, **QUIET})
    from recurdepth.training.config import resolve

    assert resolve(cfg).train.eval_iters == expected


@pytest.mark.parametrize("value", ["abc", "0.5x", "x", "-2x", 0])
def test_bad_eval_iters_is_a_clear_error(value):
    from recurdepth.training.config import resolve

    cfg = apply_overrides(RunConfig(), {"model.family": "maze", "model.iters": 2,
                                        "train.eval_iters": value, **QUIET})
    with pytest.raises(ConfigError, match=r"train\.eval_iters.*(2x|1\.5x)"):
        resolve(cfg)


def test_relative_eval_iters_respects_the_batchnorm_limit(cifar_root, tmp_path):
    result = train_run(cifar_config(cifar_root, **{
        "model.family": "residual_bn", "model.iters": 2, "train.epochs": 1,
        "train.eval_iters": "2x"}), tmp_path / "bn2x")
    assert len(result["test_acc_per_iter"]) == 2 and "instead of 4" in result["note"]
