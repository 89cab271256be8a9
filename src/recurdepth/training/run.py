"""One run end to end: config in, self-describing run folder out (DESIGN: "train one run").

:func:`train_run` reads top to bottom: set up the model and optimizer, resume from the folder's
last checkpoint (model, optimizer, schedule as a function of the epoch, AMP scaler and RNG
states), train the remaining epochs (metrics line, last and best checkpoints, status after each),
then evaluate. The data order and augmentation of every epoch derive from ``(seed, epoch)``, so an
interrupted and resumed run ends with exactly the weights of an uninterrupted one. The folder's
files are read and written by :mod:`recurdepth.training.rundir`; one process at a time writes a
folder (``.lock``, :mod:`recurdepth.locks`), and ``data.json`` holds a fingerprint of the data the
run trained on, so other data is refused. The data is loaded before any file is written, so a
failed attempt leaves a completed run's files as they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recurdepth.data.augment import epoch_seed
from recurdepth.errors import ConfigError, DataError
from recurdepth.data.fingerprint import check_run_data, record_run_data
from recurdepth.locks import writer_lock
from recurdepth.models import build_model
from recurdepth.training.budget import check_eval_memory, check_training_memory
from recurdepth.training import rundir
from recurdepth.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from recurdepth.training.compiled import compile_for_training
from recurdepth.training.config import (MAX_ITERS, RunConfig, protocol_dict, resolve, resolve_on,
                                        stored_identity)
from recurdepth.training.distributed import (Dist, check_world_size, init_distributed,
                                             world_size_from_env, wrap_model)
from recurdepth.training.data import Batches, RunData, build_batches, build_run_data, train_subset
from recurdepth.training.evaluate import evaluate
from recurdepth.training.loop import EpochStats, train_epoch
from recurdepth.training.objectives import OBJECTIVES, make_objective
from recurdepth.training.optim import build_optimizer, per_step, set_epoch_lr, warmup_warning
from recurdepth.training.rundir import check_compatible, environment, read_curve, read_status
from recurdepth.training.tracking import Tracker

CHECKPOINT_FORMAT = 1


def make_model(cfg: RunConfig) -> nn.Module:
    """Build the (untrained) model a resolved config describes."""
    return build_model(cfg.model.family, cfg.model.mode, iters=cfg.model.iters,
                       width=cfg.model.width, dataset=cfg.data.name, **cfg.model.options)


@dataclass
class RunState:
    """What a run carries from epoch to epoch (and through its checkpoint)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    epoch: int = 0
    train_seconds: float = 0.0
    samples_seen: int = 0
    seconds_before: float = 0.0
    best_test_acc: float | None = None
    lr_factor: float = 1.0
    tracker: Tracker | None = None  # process 0: train.log, TensorBoard and the per-epoch line
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        """Wall-clock seconds of the run so far, over all its sessions."""
        return self.seconds_before + time.perf_counter() - self.started


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
    dist = _join_processes(cfg)
    check_training_memory(cfg)
    # One writer per folder (process 0 of a torchrun run); it removes a killed writer's temp files
    # and its lock file when done, so a finished folder holds only the run's files.
    fresh = not run_dir.exists()
    lock = (writer_lock(run_dir, "run folder", remove=True) if dist.is_main
            else contextlib.nullcontext())
    try:
        with lock:
            return _train_locked(config, cfg, run_dir, dist,
                                 progress=progress and cfg.runtime.progress and dist.is_main,
                                 quiet=quiet)
    except BaseException:
        # A run that failed before it started (no config written: e.g. its data is missing)
        # leaves no folder of log and empty TensorBoard files behind; the error says it all.
        if fresh and dist.is_main and not (run_dir / rundir.CONFIG_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train_locked(config: RunConfig, cfg: RunConfig, run_dir: Path, dist: Dist, *,
                  progress: bool, quiet: bool) -> dict[str, Any]:
    check_compatible(run_dir, cfg)
    fingerprint = check_run_data(run_dir, cfg)
    previous = rundir.read_result(run_dir)
    if previous is not None and (previous.get("status") == "diverged"
                                 or previous.get("epochs") == cfg.train.epochs):
        return previous  # finished before: nothing to do (a sweep reruns only what is missing)
    tracking = Tracker(run_dir, echo=not quiet) if dist.is_main else contextlib.nullcontext()
    with tracking as tracker:
        if tracker is not None:
            tracker.log(f"run {cfg.name}: {cfg.model.mode} {cfg.model.family}, effective depth "
                        f"{cfg.model.effective_depth}, {cfg.train.epochs} epochs on "
                        f"{cfg.runtime.device}")
            warning = warmup_warning(cfg.optim, cfg.train.epochs)
            if warning:
                tracker.log(warning)
        try:
            result = _train(config, cfg, run_dir, dist, progress=progress,
                            fingerprint=fingerprint, tracker=tracker)
        except KeyboardInterrupt:
            if tracker is not None:
                rundir.write_status(run_dir, "interrupted",
                                    message="stopped by the user; run again to resume")
                tracker.log("interrupted by the user")
            raise
        except Exception as e:
            if tracker is not None:
                if previous is None or previous.get("status") != "completed":
                    # A failed extension of a completed run leaves its files as they were.
                    rundir.write_status(run_dir, "failed", message=f"{type(e).__name__}: {e}")
                tracker.log(f"failed: {type(e).__name__}: {e}")
            raise
        if tracker is not None:
            tracker.result(result)
        return result


def _join_processes(cfg: RunConfig) -> Dist:
    """This process's place in a torchrun run (checked before joining); one process otherwise."""
    world = world_size_from_env()
    check_world_size(world, cfg.train.batch_size)
    on_cuda = cfg.runtime.device.startswith("cuda")
    if world > 1 and cfg.runtime.sync_bn and not on_cuda:
        raise ConfigError("runtime.sync_bn=true needs CUDA devices (PyTorch's SyncBatchNorm runs "
                          "on GPUs only); leave it false on CPU: BatchNorm statistics per process")
    dist = init_distributed(cfg.runtime.device)
    if dist.enabled and on_cuda:
        cfg.runtime.device = f"cuda:{dist.local_rank}"
    return dist


def _train(config: RunConfig, cfg: RunConfig, run_dir: Path, dist: Dist, *, progress: bool,
           fingerprint: dict[str, Any] | None, tracker: Tracker | None) -> dict[str, Any]:
    data = build_run_data(cfg, dist)  # before any file is written: bad data changes nothing
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        rundir.write_config(run_dir, config, cfg)
        record_run_data(run_dir, fingerprint)
    state = _setup(cfg)
    state.tracker = tracker
    _resume(state, cfg, run_dir)
    if tracker is not None and state.epoch > 0:
        tracker.message(f"resuming from epoch {state.epoch} of {cfg.train.epochs} "
                    f"({run_dir / rundir.CHECKPOINT_FILE})")
    if dist.is_main:
        _open_folder(cfg, run_dir, state.epoch, world_size=dist.world_size)
    train_curve = train_subset(cfg, data) if dist.is_main else None
    train_model = wrap_model(state.model, dist, device=cfg.runtime.device,
                             sync_bn=bool(cfg.runtime.sync_bn),
                             find_unused_parameters=not OBJECTIVES[cfg.train.objective]
                             .uses_every_parameter)
    if cfg.runtime.compile:
        train_model = compile_for_training(train_model, mode=str(cfg.runtime.compile_mode),
                                           device=cfg.runtime.device, distributed=dist.enabled)
    for epoch in range(state.epoch, cfg.train.epochs):
        stats = _train_epoch(state, train_model, cfg, data, epoch, progress, dist)
        if not stats.finite:
            return _diverged(run_dir, cfg, state.model, epoch, stats.loss, write=dist.is_main)
        _end_epoch(state, epoch, stats)
        if dist.is_main:
            _record_epoch(state, cfg, run_dir, data, train_curve, stats, progress)
        dist.barrier()
    if not dist.is_main:
        dist.barrier()  # process 0 evaluates and writes the result
        return rundir.read_result(run_dir) or {}
    result = _finish(state, cfg, run_dir, data, progress)
    dist.barrier()
    return result


def _setup(cfg: RunConfig) -> RunState:
    """Backend options, the freshly initialised model, its optimizer and AMP scaler."""
    if cfg.runtime.threads is not None:
        # On a CPU shared with other jobs, fewer threads avoid OpenMP spinning on busy cores.
        torch.set_num_threads(cfg.runtime.threads)
    device = torch.device(cfg.runtime.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.runtime.cudnn_benchmark)
    set_tf32(bool(cfg.runtime.tf32))
    torch.manual_seed(cfg.seed)  # model initialisation
    model = make_model(cfg).to(device)
    if cfg.runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim, divide_recurrent=bool(cfg.optim.recur_lr_divide))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.runtime.amp == "fp16")
    return RunState(model=model, optimizer=optimizer, scaler=scaler)



def set_tf32(on: bool) -> None:
    """TF32 tensor-core math for fp32 convolutions and matmuls on or off (this process).

    torch's own default computes cuDNN convolutions in TF32 on Ampere and newer GPUs, so a run
    that says fp32 must turn it off explicitly to compute in full fp32.
    """
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def tf32_state() -> dict[str, bool]:
    """Whether this process computes fp32 convolutions and matmuls in TF32 (for env.json)."""
    return {"cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
            "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}


def _resume(state: RunState, cfg: RunConfig, run_dir: Path) -> None:
    """Restore ``state`` from the folder's last checkpoint, if there is one."""
    path = run_dir / rundir.CHECKPOINT_FILE
    if not path.exists():
        return
    ckpt = load_checkpoint(path, map_location=cfg.runtime.device)
    if (ckpt.get("format") != CHECKPOINT_FORMAT
            or stored_identity(ckpt.get("protocol") or {}) != protocol_dict(cfg)):
        raise ConfigError(f"checkpoint {path} belongs to another config or format; use "
                          f"another run folder or delete this one to start over")
    try:
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            state.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        state.epoch = int(ckpt["epoch"])
        state.train_seconds = float(ckpt["train_seconds"])
        state.samples_seen = int(ckpt["samples_seen"])
        state.seconds_before = float(ckpt["seconds"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
        # Its checksum held, so it was written damaged: say which file, not "please report".
        what = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"checkpoint {path} is damaged ({type(e).__name__}: {what}); restore "
                        f"it, or delete it to train the run from the start") from None
    state.best_test_acc = ckpt.get("best_test_acc")
    if state.epoch > cfg.train.epochs:
        raise ConfigError(f"run folder {run_dir} has already trained {state.epoch} epochs, "
                          f"more than train.epochs={cfg.train.epochs}; use another run folder")


def _open_folder(cfg: RunConfig, run_dir: Path, start_epoch: int, **env: Any) -> None:
    """Config, environment and status of this session; metrics the checkpoint does not cover dropped."""
    rundir.keep_metrics_before(run_dir, start_epoch)
    rundir.write_environment(run_dir, cfg.runtime.device, resumed_from_epoch=start_epoch,
                             tf32=tf32_state() if cfg.runtime.device.startswith("cuda") else False,
                             **env)
    rundir.write_status(run_dir, "running", epoch=start_epoch, epochs=cfg.train.epochs)


def _train_epoch(state: RunState, train_model: nn.Module, cfg: RunConfig, data: RunData,
                 epoch: int, progress: bool, dist: Dist) -> EpochStats:
    """One epoch at its scheduled learning rate, with its (seed, epoch) data and randomness."""
    steps = len(data.train) if per_step(cfg.optim) else 1
    state.lr_factor = set_epoch_lr(state.optimizer, epoch, cfg.optim, 0, steps)

    def before_step(step: int) -> None:  # warmup_cosine: the lr of every step
        set_epoch_lr(state.optimizer, epoch, cfg.optim, step, steps)
    data.train.set_epoch(epoch)
    torch.manual_seed(epoch_seed(cfg.seed, epoch))  # any randomness inside the model
    objective = make_objective(cfg.train.objective, cfg.train.alpha)
    objective.set_epoch(cfg.seed, epoch)  # its draws, too, derive from (seed, epoch)
    return train_epoch(train_model, data.train, state.optimizer, task=cfg.task,
                       objective=objective,
                       amp=cfg.runtime.amp, scaler=state.scaler,
                       clip_grad_norm=cfg.optim.clip_grad_norm,
                       channels_last=bool(cfg.runtime.channels_last), progress=progress,
                       desc=f"epoch {epoch + 1}/{cfg.train.epochs}", dist=dist,
                       before_step=before_step if per_step(cfg.optim) else None)


def _end_epoch(state: RunState, epoch: int, stats: EpochStats) -> None:
    """Count the finished epoch in the run's state."""
    state.epoch = epoch + 1
    state.train_seconds += stats.seconds
    state.samples_seen += stats.samples


def _record_epoch(state: RunState, cfg: RunConfig, run_dir: Path, data: RunData,
                  train_curve: Batches | None, stats: EpochStats, progress: bool) -> None:
    """Metrics line, test accuracy when due, last (and best) checkpoint, status."""
    epoch = state.epoch - 1
    line: dict[str, Any] = {"epoch": epoch + 1, "loss": stats.loss,
                            "train_acc_augmented": stats.running_acc,
                            # Both at the epoch's first step (warmup_cosine moves within it).
                            "lr": state.optimizer.param_groups[0]["base_lr"] * state.lr_factor,
                            "lr_factor": state.lr_factor,
                            "images_per_s": stats.images_per_s, "seconds": stats.seconds}
    every = cfg.train.eval_every
    if every and ((epoch + 1) % every == 0 or epoch + 1 == cfg.train.epochs):
        # Learning curves: test accuracy and un-augmented accuracy on a fixed train subset.
        line["test_acc"] = evaluate(state.model, cfg, data.test, per_iter=False)["acc"]
        if train_curve is not None:
            line["train_acc"] = evaluate(state.model, cfg, train_curve, per_iter=False)["acc"]
    rundir.append_metrics(run_dir, line)
    _save_best(state, cfg, run_dir, line.get("test_acc"))
    save_checkpoint(run_dir / rundir.CHECKPOINT_FILE, {
        "format": CHECKPOINT_FORMAT, "protocol": protocol_dict(cfg), "epoch": epoch + 1,
        "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
        "scheduler": {"epoch": epoch + 1}, "scaler": state.scaler.state_dict(),
        "rng": rng_state(), "train_seconds": state.train_seconds,
        "samples_seen": state.samples_seen, "seconds": state.seconds(),
        "best_test_acc": state.best_test_acc,
    })
    rundir.write_status(run_dir, "running", epoch=epoch + 1, epochs=cfg.train.epochs)
    if state.tracker is not None:
        state.tracker.step_losses(epoch, stats.step_losses)
        state.tracker.epoch(line, cfg.train.epochs)


def _save_best(state: RunState, cfg: RunConfig, run_dir: Path, test_acc: float | None) -> None:
    """Keep the weights of the epoch with the best test accuracy measured so far."""
    if test_acc is None or (state.best_test_acc is not None and test_acc <= state.best_test_acc):
        return
    state.best_test_acc = test_acc
    save_checkpoint(run_dir / rundir.BEST_CHECKPOINT_FILE, {
        "format": CHECKPOINT_FORMAT, "protocol": protocol_dict(cfg), "epoch": state.epoch,
        "model": state.model.state_dict(), "test_acc": test_acc})


def _finish(state: RunState, cfg: RunConfig, run_dir: Path, data: RunData, progress: bool) -> dict[str, Any]:
    """Final evaluation, ``result.json`` and the completed status."""
    result = evaluate_run(state.model, cfg, data.test, data.train_eval)
    result.update({
        "status": "completed", "epochs": cfg.train.epochs, "seconds": state.seconds(),
        "train_seconds": state.train_seconds,
        "images_per_s": state.samples_seen / max(state.train_seconds, 1e-9),
        "device": cfg.runtime.device,
    })
    result["curve"] = rundir.read_curve(run_dir)
    _save_best(state, cfg, run_dir, result["test_acc"])
    rundir.write_result(run_dir, result)
    rundir.write_status(run_dir, "completed", epoch=cfg.train.epochs, epochs=cfg.train.epochs)
    return result


def evaluate_run(model: nn.Module, cfg: RunConfig, test: Any, train_eval: Any) -> dict[str, Any]:
    """Final figures: test and train accuracy, accuracy per iteration, other test sizes."""
    out: dict[str, Any] = {
        "name": cfg.name, "family": cfg.model.family, "mode": cfg.model.mode,
        "dataset": cfg.data.name, "maze_size": cfg.example_size(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "effective_depth": int(model.effective_depth), "iters": cfg.model.iters,
        "seed": cfg.seed,
    }
    iters = None  # fixed-depth families (resnet18, resnet50) and feed-forward models: no iterations
    if getattr(model, "recurrent", False) and cfg.model.iters is not None:
        iters = max(cfg.train.eval_iters or cfg.model.iters, cfg.model.iters)
    ev = evaluate(model, cfg, test, iters=iters)
    out.update(test_acc=ev["acc"], test_acc_per_iter=ev["acc_per_iter"])
    if ev["note"]:
        out["note"] = ev["note"]
    out["train_acc"] = evaluate(model, cfg, train_eval, per_iter=False)["acc"]
    others = []
    for size in cfg.eval_sizes():  # other test sizes (sized tasks only)
        if size == cfg.example_size():
            continue
        batches = build_batches(cfg, "test", train=False, size=size)
        per = ev["acc_per_iter"]
        ev_other = evaluate(model, cfg, batches, iters=len(per) if per else None,
                            per_iter=per is not None)
        others.append({"size": size, "acc": ev_other["acc"],
                       "acc_per_iter": ev_other["acc_per_iter"] if per is not None else None})
    if others:
        # The first other size keeps the keys every earlier result has (readers of one size).
        first = others[0]
        out.update(eval_maze_size=first["size"], eval_maze_acc=first["acc"])
        if first["acc_per_iter"] is not None:
            out["eval_maze_acc_per_iter"] = first["acc_per_iter"]
        out["eval_sizes"] = others
    return out


def _diverged(run_dir: Path, cfg: RunConfig, model: nn.Module, epoch: int, loss: float, *,
              write: bool = True) -> dict[str, Any]:
    message = (f"loss became {loss} in epoch {epoch + 1}: training stopped (try a lower "
               f"optim.lr or optim.clip_grad_norm); the last checkpoint holds epoch {epoch}")
    result = {"status": "diverged", "message": message, "epoch": epoch + 1,
              "epochs": cfg.train.epochs, "test_acc": None, "train_acc": None,
              "test_acc_per_iter": None, "name": cfg.name,
              "parameters": int(sum(p.numel() for p in model.parameters())),
              "effective_depth": cfg.model.effective_depth, "iters": cfg.model.iters,
              "seconds": None, "images_per_s": None}
    if not write:
        return result
    result["curve"] = rundir.read_curve(run_dir)
    rundir.write_result(run_dir, result)
    rundir.write_status(run_dir, "diverged", epoch=epoch + 1, epochs=cfg.train.epochs, message=message)
    return result


@dataclass
class LoadedRun:
    """A trained run: the model in eval mode with its weights, its config and folder."""

    model: nn.Module
    config: RunConfig
    run_dir: Path
    epoch: int
    result: dict[str, Any] | None


def not_a_run_message(run_dir: Path) -> str:
    """Why ``run_dir`` is no run folder, and where its runs are when it is a sweep's folder."""
    if not run_dir.exists():
        return f"{run_dir} does not exist; give a run folder (one holding {rundir.CONFIG_FILE})"
    inside = sorted(p.parent for p in run_dir.glob(f"runs/*/{rundir.CONFIG_FILE}"))
    if inside:
        return (f"{run_dir} is a sweep's folder, not a run folder; its runs are in "
                f"{run_dir / 'runs'}, e.g. {inside[0]}")
    return (f"{run_dir} is not a run folder (no {rundir.CONFIG_FILE}); train one with "
            f"`recurdepth train --run-dir {run_dir}`")


def load_run(run_dir: str | os.PathLike, *, device: str = "cpu") -> LoadedRun:
    """Load the model of ``run_dir`` (from ``checkpoint_last.pt``) onto ``device``."""
    run_dir = Path(run_dir)
    if not (run_dir / rundir.CONFIG_FILE).exists():
        raise DataError(not_a_run_message(run_dir))
    cfg = resolve_on(rundir.read_config(run_dir), device)
    if not (run_dir / rundir.CHECKPOINT_FILE).exists():
        raise DataError(f"{run_dir} has no {rundir.CHECKPOINT_FILE}: the run has not finished an epoch")
    state = load_checkpoint(run_dir / rundir.CHECKPOINT_FILE, map_location=device)
    if not isinstance(state, dict) or stored_identity(state.get("protocol") or {}) != protocol_dict(cfg):
        # As train refuses to resume it: weights of another run would be reported as this run's.
        raise DataError(f"{run_dir / rundir.CHECKPOINT_FILE} belongs to another run than "
                        f"{run_dir / rundir.CONFIG_FILE} describes (another config or seed); "
                        f"restore the run's own checkpoint, or evaluate the run it came from")
    model = make_model(cfg).to(device)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise DataError(f"checkpoint in {run_dir} does not fit its config.yaml: "
                        f"{str(e).splitlines()[0]}") from None
    model.eval()
    return LoadedRun(model=model, config=cfg, run_dir=run_dir, epoch=int(state["epoch"]),
                     result=rundir.read_result(run_dir))


def evaluate_saved(run_dir: str | os.PathLike, *, iters: int | None = None, split: str = "test",
                   maze_size: int | None = None, limit: int | None = None,
                   data_root: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Accuracy of a trained run on ``split`` (no augmentation), per iteration 1..``iters`` if recurrent.

    ``maze_size`` evaluates a maze solver on mazes of another size; ``iters`` may exceed the
    trained iterations (capped, with a note, for BN-recurrent models).
    """
    if iters is not None and (isinstance(iters, bool) or not isinstance(iters, int)
                              or not 1 <= iters <= MAX_ITERS):
        raise ConfigError(f"iters must be a whole number from 1 to {MAX_ITERS:,} (accuracy "
                          f"after 1, 2, ..., iters iterations), got {iters!r}")
    loaded = load_run(run_dir, device=device)
    cfg, model = loaded.config, loaded.model
    if iters is not None and cfg.model.iters is None:  # refused before any data is read
        raise ConfigError(f"family {cfg.model.family!r} has a fixed depth and no iterations; "
                          f"leave --iters out")
    if data_root is not None:
        cfg.data.root = data_root
    other_data = _other_data(Path(run_dir), cfg)  # --data-root elsewhere, or regenerated data
    if maze_size is not None and not cfg.task.sized:
        raise ConfigError("--maze-size is only for maze runs")
    batches = build_batches(cfg, split, train=False, limit=limit, size=maze_size)
    out: dict[str, Any] = {"run_dir": str(run_dir), "split": split, "epoch": loaded.epoch,
                           "data": cfg.data.name, "trained_iters": cfg.model.iters,
                           "samples": getattr(batches, "num_samples", None)}
    if cfg.task.sized:
        out["maze_size"] = maze_size or cfg.example_size()
    if other_data is not None:  # not the run's own data: kept apart from its results
        out["data_root"] = str(cfg.data.root)
        out["data_digest"] = other_data
    if getattr(model, "recurrent", False) and cfg.model.iters is not None:
        check_eval_memory(cfg, iters or cfg.model.iters)
    ev = evaluate(model, cfg, batches, iters=iters)
    if ev["acc_per_iter"] is not None:
        out["acc_per_iter"] = ev["acc_per_iter"]
    out["acc"] = ev["acc"]
    if ev["note"]:
        out["note"] = ev["note"]
    return out


def _other_data(run_dir: Path, cfg: RunConfig) -> str | None:
    """A short digest of ``cfg``'s data when it is not the data the run trained on, else None."""
    from recurdepth.data.fingerprint import data_fingerprint, recorded_fingerprint

    now = data_fingerprint(cfg)
    before = recorded_fingerprint(run_dir)
    if now is not None and before is not None:
        return None if now["digest"] == before["digest"] else now["digest"][:12]
    # No fingerprint to compare (a run folder from before data.json): the folder decides.
    trained_root = rundir.read_config(run_dir).data.root
    if Path(str(cfg.data.root)).resolve() == Path(str(trained_root)).resolve():
        return None
    return now["digest"][:12] if now is not None else "unknown"


__all__ = ["LoadedRun", "RunState", "check_compatible", "environment", "evaluate_run",
           "evaluate_saved", "load_run", "make_model", "not_a_run_message", "read_curve",
           "read_status", "train_run"]
