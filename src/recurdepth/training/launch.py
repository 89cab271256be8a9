"""Launching one run as several processes: the torchrun command, checked before it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError
from recurdepth.training.config import RunConfig


def visible_gpu_count() -> int:
    """Number of CUDA devices this process may use (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_process_count(nproc: int, cfg: RunConfig) -> None:
    """ConfigError unless ``nproc`` processes can train ``cfg`` here (batch and GPUs suffice)."""
    from recurdepth.training.distributed import check_world_size

    if nproc < 1:
        raise ConfigError(f"--nproc-per-node must be >= 1, got {nproc}")
    check_world_size(nproc, cfg.train.batch_size)
    if cfg.runtime.device.startswith("cuda"):
        gpus = visible_gpu_count()
        if nproc > gpus:
            raise ConfigError(f"--nproc-per-node {nproc} needs {nproc} GPUs (one per process) but "
                              f"{gpus} are visible; use --nproc-per-node {max(gpus, 1)} or more "
                              f"GPUs (runtime.device=cpu trains with gloo processes instead)")


def torchrun_command(nproc: int, train_args: list[str]) -> list[str]:
    """``torchrun --standalone --nproc-per-node=N -m recurdepth train ARGS`` for this Python."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "recurdepth", "train", *train_args]


class TorchrunTrain:
    """A single-run function that trains each run with ``nproc`` processes under torchrun.

    Same call and result as :func:`recurdepth.training.run.train_run`, so every sweep executor
    can use it; the run folder (written by process 0) carries the result back.
    """

    def __init__(self, nproc: int) -> None:
        self.nproc = int(nproc)

    def __call__(self, config: RunConfig, run_dir: Path, *, progress: bool = False) -> dict[str, Any]:
        """Train ``config`` in ``run_dir`` with ``nproc`` processes and return its result."""
        from recurdepth.training.config import resolve
        from recurdepth.training.rundir import read_result

        cfg = resolve(config)
        check_process_count(self.nproc, cfg)
        cfg.runtime.progress = bool(progress)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(cfg.to_yaml(), encoding="utf-8")
            proc = subprocess.run(torchrun_command(self.nproc, ["--config", str(path),
                                                                "--run-dir", str(run_dir)]),
                                  capture_output=True, text=True, env=os.environ.copy())
        result = read_result(Path(run_dir))
        if proc.returncode not in (0, 1) or result is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"torchrun with {self.nproc} processes exited with status "
                               f"{proc.returncode}: " + " | ".join(tail))
        return result


__all__ = ["TorchrunTrain", "check_process_count", "torchrun_command", "visible_gpu_count"]
