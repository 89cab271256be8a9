"""One run end to end: config in, self-describing run folder out (DESIGN: "train one run").

A run folder holds ``config.yaml`` (resolved), ``env.json`` (versions, device, git commit),
``status.json`` (running / completed / diverged; failed or interrupted with a message), ``metrics.jsonl`` (one line per epoch),
``checkpoint_last.pt`` (written atomically after every epoch) and ``result.json``. Calling
:func:`train_run` again on the same folder resumes from the checkpoint with model, optimizer,
schedule (a function of the epoch), AMP scaler and RNG states restored; the data order and
augmentation of every epoch derive from ``(seed, epoch)``, so an interrupted and resumed run ends
with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recurdepth.data.augment import epoch_seed
from recurdepth.errors import ConfigError, DataError
from recurdepth.io import append_jsonl, atomic_write_json, atomic_write_text, read_yaml
from recurdepth.models import build_model
from recurdepth.training.checkpoint import load_checkpoint, save_checkpoint
from recurdepth.training.config import RunConfig, protocol_dict, resolve, resolve_on
from recurdepth.training.data import build_batches, build_run_data, train_subset
from recurdepth.training.evaluate import accuracy, accuracy_per_iteration, usable_iters
from recurdepth.training.loop import train_epoch
from recurdepth.training.optim import build_optimizer, set_epoch_lr
from recurdepth.training.tracking import Tracker

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint_last.pt"
RESULT_FILE = "result.json"
CHECKPOINT_FORMAT = 1


def make_model(cfg: RunConfig) -> nn.Module:
    """Build the (untrained) model a resolved config describes."""
    options = {"dilation": cfg.model.dilation} if cfg.model.dilation is not None else {}
    return build_model(cfg.model.family, cfg.model.mode, iters=cfg.model.iters, width=cfg.model.width, dataset=cfg.data.name, **options)


def environment(device: str) -> dict[str, Any]:
    """Versions, hardware and git commit of this process (for ``env.json``)."""
    import torchvision

    from recurdepth import __version__

    env: dict[str, Any] = {
        "recurdepth": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda": torch.version.cuda,
        "git_commit": _git_commit(),
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))


def _read_config(path: Path) -> RunConfig:
    return RunConfig.from_dict(read_yaml(path, what="run config", error=DataError))


def check_compatible(run_dir: Path, cfg: RunConfig) -> None:
    """ConfigError when ``run_dir`` already holds a run whose protocol differs from ``cfg``."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return
    old = protocol_dict(_read_config(path))
    new = protocol_dict(cfg)
    diff = [f"{k}: {old.get(k)!r} in the folder, {new.get(k)!r} now"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if diff:
        raise ConfigError(f"run folder {run_dir} holds a run with another config ("
                          + "; ".join(diff) + "). Use another run folder, or delete this one "
                          "to start over")


def _write_status(run_dir: Path, status: str, **extra: Any) -> None:
    atomic_write_json(run_dir / STATUS_FILE,
                      {"status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra})


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run folder's status (``{"status": "running" | "completed" | "diverged", ...}``) or None."""
    path = Path(run_dir) / STATUS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _keep_metrics_before(path: Path, epoch: int) -> None:
    """Drop metric lines of epochs the checkpoint does not cover (written just before a crash)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    kept = []
    for ln in lines:
        try:
            if json.loads(ln)["epoch"] <= epoch:
                kept.append(ln)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a half-written last line
    atomic_write_text(path, "".join(f"{ln}\n" for ln in kept))


def _configure_backend(cfg: RunConfig) -> None:
    if cfg.runtime.threads is not None:
        # On a CPU shared with other jobs, fewer threads avoid OpenMP spinning on busy cores.
        torch.set_num_threads(cfg.runtime.threads)
    if cfg.runtime.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = bool(cfg.runtime.cudnn_benchmark)


def train_run(config: RunConfig, run_dir: str | os.PathLike, *, progress: bool = True,
              quiet: bool = False) -> dict[str, Any]:
    """Train one run in ``run_dir`` (resuming from its checkpoint) and return its result dict.

    ``progress`` shows progress bars (on a terminal, with ``runtime.progress``); the per-epoch
    line is printed unless ``quiet`` and always written to ``train.log`` (and TensorBoard).

    The result (also ``result.json``) has status ("completed" or "diverged"), test_acc and
    train_acc in percent, test_acc_per_iter (index i = i+1 iterations; None for feed-forward
    models), parameters, effective_depth, iters, epochs, seconds and images_per_s.
    """
    cfg = resolve(config)
    run_dir = Path(run_dir)
    check_compatible(run_dir, cfg)
    previous = _read_result(run_dir)
    if previous is not None and (previous.get("status") == "diverged"
                                 or previous.get("epochs") == cfg.train.epochs):
        return previous  # finished before: nothing to do (a sweep reruns only what is missing)
    run_dir.mkdir(parents=True, exist_ok=True)
    with Tracker(run_dir, echo=not quiet) as tracker:
        tracker.log(f"run {cfg.name}: {cfg.model.mode} {cfg.model.family}, effective depth "
                    f"{cfg.model.effective_depth}, {cfg.train.epochs} epochs on "
                    f"{cfg.runtime.device}")
        try:
            result = _train(cfg, run_dir, progress=progress and cfg.runtime.progress,
                            tracker=tracker)
        except KeyboardInterrupt:
            _write_status(run_dir, "interrupted", message="stopped by the user; run again to resume")
            tracker.log("interrupted by the user")
            raise
        except Exception as e:
            _write_status(run_dir, "failed", message=f"{type(e).__name__}: {e}")
            tracker.log(f"failed: {type(e).__name__}: {e}")
            raise
        tracker.result(result)
        return result


def _train(cfg: RunConfig, run_dir: Path, *, progress: bool, tracker: Tracker) -> dict[str, Any]:
    atomic_write_text(run_dir / CONFIG_FILE, cfg.to_yaml())
    device = torch.device(cfg.runtime.device)
    _configure_backend(cfg)
    data = build_run_data(cfg)  # data errors come before any model is built

    torch.manual_seed(cfg.seed)  # model initialisation
    model = make_model(cfg).to(device)
    if cfg.runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim, divide_recurrent=bool(cfg.optim.recur_lr_divide))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.runtime.amp == "fp16")
    start_epoch, train_seconds, samples_seen, seconds_before = 0, 0.0, 0, 0.0
    ckpt_path = run_dir / CHECKPOINT_FILE
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("protocol") != protocol_dict(cfg):
            raise ConfigError(f"checkpoint {ckpt_path} belongs to another config or format; use "
                              f"another run folder or delete this one to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        train_seconds, samples_seen = float(state["train_seconds"]), int(state["samples_seen"])
        seconds_before = float(state["seconds"])
        if start_epoch > cfg.train.epochs:
            raise ConfigError(f"run folder {run_dir} has already trained {start_epoch} epochs, "
                              f"more than train.epochs={cfg.train.epochs}; use another run folder")
    _keep_metrics_before(run_dir / METRICS_FILE, start_epoch)
    atomic_write_json(run_dir / ENV_FILE, {**environment(cfg.runtime.device),
                                           "resumed_from_epoch": start_epoch})
    _write_status(run_dir, "running", epoch=start_epoch, epochs=cfg.train.epochs)

    train_curve = train_subset(cfg, data)
    train_model = torch.compile(model) if cfg.runtime.compile else model
    run_start = time.perf_counter()
    eval_kw = {"is_maze": cfg.is_maze, "amp": cfg.runtime.amp,
               "channels_last": bool(cfg.runtime.channels_last)}
    for epoch in range(start_epoch, cfg.train.epochs):
        lr_mult = set_epoch_lr(optimizer, epoch, cfg.optim)
        data.train.set_epoch(epoch)
        torch.manual_seed(epoch_seed(cfg.seed, epoch))  # any randomness inside the model
        stats = train_epoch(train_model, data.train, optimizer, is_maze=cfg.is_maze,
                            amp=cfg.runtime.amp, scaler=scaler,
                            clip_grad_norm=cfg.optim.clip_grad_norm,
                            channels_last=bool(cfg.runtime.channels_last), progress=progress,
                            desc=f"epoch {epoch + 1}/{cfg.train.epochs}")
        if not stats.finite:
            return _diverged(run_dir, cfg, model, epoch, stats.loss)
        train_seconds += stats.seconds
        samples_seen += stats.samples
        line: dict[str, Any] = {"epoch": epoch + 1, "loss": stats.loss,
                                "train_acc_augmented": stats.running_acc,
                                "lr": optimizer.param_groups[0]["lr"], "lr_factor": lr_mult,
                                "images_per_s": stats.images_per_s, "seconds": stats.seconds}
        every = cfg.train.eval_every
        if every and ((epoch + 1) % every == 0 or epoch + 1 == cfg.train.epochs):
            # Learning curves: test accuracy and un-augmented accuracy on a fixed train subset.
            line["test_acc"] = accuracy(model, data.test, **eval_kw)
            if train_curve is not None:
                line["train_acc"] = accuracy(model, train_curve, **eval_kw)
        append_jsonl(run_dir / METRICS_FILE, line)
        save_checkpoint(ckpt_path, {
            "format": CHECKPOINT_FORMAT, "protocol": protocol_dict(cfg), "epoch": epoch + 1,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": {"epoch": epoch + 1}, "scaler": scaler.state_dict(),
            "rng": _rng_state(), "train_seconds": train_seconds, "samples_seen": samples_seen,
            "seconds": seconds_before + time.perf_counter() - run_start,
        })
        _write_status(run_dir, "running", epoch=epoch + 1, epochs=cfg.train.epochs)
        tracker.step_losses(epoch, stats.step_losses)
        tracker.epoch(line, cfg.train.epochs)

    result = evaluate_run(model, cfg, data.test, data.train_eval)
    result.update({
        "status": "completed", "epochs": cfg.train.epochs,
        "seconds": seconds_before + time.perf_counter() - run_start,
        "train_seconds": train_seconds,
        "images_per_s": samples_seen / max(train_seconds, 1e-9),
        "device": cfg.runtime.device,
    })
    result["curve"] = read_curve(run_dir)
    atomic_write_json(run_dir / RESULT_FILE, result)
    _write_status(run_dir, "completed", epoch=cfg.train.epochs, epochs=cfg.train.epochs)
    return result


def read_curve(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's learning curve from ``metrics.jsonl``: epoch, train_acc, test_acc per evaluation."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    curve = []
    for ln in path.read_text(encoding="utf-8").splitlines():
        try:
            m = json.loads(ln)
        except json.JSONDecodeError:
            continue
        if "test_acc" in m or "train_acc" in m:
            curve.append({k: m[k] for k in ("epoch", "train_acc", "test_acc") if k in m})
    return curve


def evaluate_run(model: nn.Module, cfg: RunConfig, test: Any, train_eval: Any) -> dict[str, Any]:
    """Final figures: test and train accuracy, accuracy per iteration, other maze size."""
    eval_kw = {"is_maze": cfg.is_maze, "amp": cfg.runtime.amp,
               "channels_last": bool(cfg.runtime.channels_last)}
    out: dict[str, Any] = {
        "name": cfg.name, "family": cfg.model.family, "mode": cfg.model.mode,
        "dataset": cfg.data.name, "maze_size": cfg.data.maze_size if cfg.is_maze else None,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "effective_depth": int(model.effective_depth), "iters": cfg.model.iters,
        "seed": cfg.seed, "test_acc_per_iter": None,
    }
    if getattr(model, "recurrent", False) and hasattr(model, "outputs_per_iteration"):
        n, note = usable_iters(model, cfg.train.eval_iters or cfg.model.iters)
        n = max(n, cfg.model.iters)
        per_iter = accuracy_per_iteration(model, test, max_iters=n, **eval_kw)
        out["test_acc_per_iter"] = per_iter
        out["test_acc"] = per_iter[cfg.model.iters - 1]
        if note:
            out["note"] = note
    else:
        out["test_acc"] = accuracy(model, test, **eval_kw)
    out["train_acc"] = accuracy(model, train_eval, **eval_kw)
    if cfg.is_maze and cfg.data.eval_maze_size is not None:
        other = build_batches(cfg, "test", train=False, maze_size=cfg.data.eval_maze_size)
        out["eval_maze_size"] = cfg.data.eval_maze_size
        if out["test_acc_per_iter"] is not None:
            per = accuracy_per_iteration(model, other, max_iters=len(out["test_acc_per_iter"]),
                                         **eval_kw)
            out["eval_maze_acc_per_iter"] = per
            out["eval_maze_acc"] = per[cfg.model.iters - 1]
        else:
            out["eval_maze_acc"] = accuracy(model, other, **eval_kw)
    return out


def _diverged(run_dir: Path, cfg: RunConfig, model: nn.Module, epoch: int, loss: float) -> dict[str, Any]:
    message = (f"loss became {loss} in epoch {epoch + 1}: training stopped (try a lower "
               f"optim.lr or optim.clip_grad_norm); the last checkpoint holds epoch {epoch}")
    result = {"status": "diverged", "message": message, "epoch": epoch + 1,
              "epochs": cfg.train.epochs, "test_acc": None, "train_acc": None,
              "test_acc_per_iter": None, "name": cfg.name,
              "parameters": int(sum(p.numel() for p in model.parameters())),
              "effective_depth": cfg.model.effective_depth, "iters": cfg.model.iters,
              "seconds": None, "images_per_s": None}
    result["curve"] = read_curve(run_dir)
    atomic_write_json(run_dir / RESULT_FILE, result)
    _write_status(run_dir, "diverged", epoch=epoch + 1, epochs=cfg.train.epochs, message=message)
    return result


def _read_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


@dataclass
class LoadedRun:
    """A trained run: the model in eval mode with its weights, its config and folder."""

    model: nn.Module
    config: RunConfig
    run_dir: Path
    epoch: int
    result: dict[str, Any] | None


def load_run(run_dir: str | os.PathLike, *, device: str = "cpu") -> LoadedRun:
    """Load the model of ``run_dir`` (from ``checkpoint_last.pt``) onto ``device``."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise DataError(f"{run_dir} is not a run folder (no {CONFIG_FILE}); train one with "
                        f"`recurdepth train --run-dir {run_dir}`")
    cfg = resolve_on(_read_config(run_dir / CONFIG_FILE), device)
    if not (run_dir / CHECKPOINT_FILE).exists():
        raise DataError(f"{run_dir} has no {CHECKPOINT_FILE}: the run has not finished an epoch")
    state = load_checkpoint(run_dir / CHECKPOINT_FILE, map_location=device)
    model = make_model(cfg).to(device)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise DataError(f"checkpoint in {run_dir} does not fit its config.yaml: "
                        f"{str(e).splitlines()[0]}") from None
    model.eval()
    return LoadedRun(model=model, config=cfg, run_dir=run_dir, epoch=int(state["epoch"]),
                     result=_read_result(run_dir))


def evaluate_saved(run_dir: str | os.PathLike, *, iters: int | None = None, split: str = "test",
                   maze_size: int | None = None, limit: int | None = None,
                   data_root: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Accuracy of a trained run on ``split`` (no augmentation), per iteration 1..``iters`` if recurrent.

    ``maze_size`` evaluates a maze solver on mazes of another size; ``iters`` may exceed the
    trained iterations (capped, with a note, for BN-recurrent models).
    """
    loaded = load_run(run_dir, device=device)
    cfg, model = loaded.config, loaded.model
    if data_root is not None:
        cfg.data.root = data_root
    if maze_size is not None and not cfg.is_maze:
        raise ConfigError("--maze-size is only for maze runs")
    batches = build_batches(cfg, split, train=False, limit=limit, maze_size=maze_size)
    kw = {"is_maze": cfg.is_maze, "amp": cfg.runtime.amp,
          "channels_last": bool(cfg.runtime.channels_last)}
    out: dict[str, Any] = {"run_dir": str(run_dir), "split": split, "epoch": loaded.epoch,
                           "data": cfg.data.name, "trained_iters": cfg.model.iters,
                           "samples": getattr(batches, "num_samples", None)}
    if cfg.is_maze:
        out["maze_size"] = maze_size or cfg.data.maze_size
    if getattr(model, "recurrent", False) and hasattr(model, "outputs_per_iteration"):
        n, note = usable_iters(model, iters or cfg.model.iters)
        out["acc_per_iter"] = accuracy_per_iteration(model, batches, max_iters=n, **kw)
        out["acc"] = out["acc_per_iter"][min(n, cfg.model.iters) - 1]
        if note:
            out["note"] = note
    else:
        if iters is not None and iters != cfg.model.iters:
            raise ConfigError(f"a {cfg.model.mode} {cfg.model.family} model runs exactly "
                              f"{cfg.model.iters} units; only recurrent models take --iters")
        out["acc"] = accuracy(model, batches, **kw)
    return out


__all__ = ["LoadedRun", "evaluate_saved", "check_compatible", "environment", "evaluate_run", "load_run",
           "make_model", "read_status", "train_run"]
