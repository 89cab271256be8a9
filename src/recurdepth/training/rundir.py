"""The run folder on disk: its file names, and every read and write of them.

A run folder holds ``config.yaml`` (the requested config and the resolved one), ``env.json`` (versions, device, git commit),
``status.json`` (running / completed / diverged; failed or interrupted with a message),
``metrics.jsonl`` (one line per epoch), ``checkpoint_last.pt`` (written atomically after every
epoch), ``checkpoint_best.pt`` (the epoch with the best test accuracy measured so far) and
``result.json``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError, DataError
from recurdepth.io import append_jsonl, atomic_write_json, atomic_write_text
from recurdepth.training.config import (
    RunConfig,
    protocol_dict,
    read_resolved,
    run_config_yaml,
    stored_identity,
)

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint_last.pt"
BEST_CHECKPOINT_FILE = "checkpoint_best.pt"
RESULT_FILE = "result.json"


# Environment variable through which a sweep worker tells its runs how they were placed
# (which GPU, how many runs share it); recorded in env.json.
PLACEMENT_ENV = "RECURDEPTH_PLACEMENT"

def read_config(run_dir: Path) -> RunConfig:
    """The config stored in ``run_dir``."""
    return read_resolved(run_dir / CONFIG_FILE, error=DataError)


def write_config(run_dir: Path, requested: RunConfig, resolved: RunConfig) -> None:
    """Store the requested and the resolved config of the run."""
    atomic_write_text(run_dir / CONFIG_FILE, run_config_yaml(requested, resolved))


def check_compatible(run_dir: Path, cfg: RunConfig) -> None:
    """ConfigError when ``run_dir`` already holds a run whose protocol differs from ``cfg``."""
    if not (run_dir / CONFIG_FILE).exists():
        return
    old = stored_identity(read_config(run_dir).to_dict())
    new = protocol_dict(cfg)
    diff = [f"{k}: {old.get(k)!r} in the folder, {new.get(k)!r} now"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if diff:
        raise ConfigError(f"run folder {run_dir} holds a run with another config ("
                          + "; ".join(diff) + "). Use another run folder, or delete this one "
                          "to start over")


def write_status(run_dir: Path, status: str, **extra: Any) -> None:
    """Replace ``status.json`` with ``status`` and ``extra`` fields, time-stamped."""
    atomic_write_json(run_dir / STATUS_FILE,
                      {"status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra})


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run folder's status (``{"status": "running" | "completed" | "diverged", ...}``) or None."""
    path = Path(run_dir) / STATUS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """The finished run's ``result.json``, or None when absent or unreadable."""
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(result, dict):
        raise DataError(f"{path} does not hold a result (a JSON object); restore it, or delete it "
                        f"to evaluate the run again")
    return result


def write_result(run_dir: Path, result: dict[str, Any]) -> None:
    """Store the run's final result."""
    atomic_write_json(run_dir / RESULT_FILE, result)


def append_metrics(run_dir: Path, line: dict[str, Any]) -> None:
    """Append one epoch's metrics line."""
    append_jsonl(run_dir / METRICS_FILE, line)


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


def keep_metrics_before(run_dir: Path, epoch: int) -> None:
    """Drop metric lines of epochs the checkpoint does not cover (written just before a crash).

    DataError when lines of epochs the checkpoint covers are missing: each line is written
    before its epoch's checkpoint, so a gap means the file was truncated or emptied, and
    resuming would silently lose those epochs from the learning curve.
    """
    path = run_dir / METRICS_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    kept, epochs = [], set()
    for ln in text.splitlines():
        try:
            if ln.strip() and json.loads(ln)["epoch"] <= epoch:
                kept.append(ln)
                epochs.add(json.loads(ln)["epoch"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a half-written last line
    missing = sorted(set(range(1, epoch + 1)) - epochs)
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise DataError(f"{path} lacks the metrics of epoch(s) {shown} that the checkpoint has "
                        f"trained ({epoch}): it was truncated or emptied. Restore it, or delete "
                        f"the run folder to train again (resuming would lose those epochs)")
    if path.exists():
        atomic_write_text(path, "".join(f"{ln}\n" for ln in kept))


def write_environment(run_dir: Path, device: str, **extra: Any) -> None:
    """Store versions, hardware and git commit of this process in ``env.json``."""
    atomic_write_json(run_dir / ENV_FILE, {**environment(device), **extra})


def environment(device: str) -> dict[str, Any]:
    """Versions, hardware and git commit of this process (for ``env.json``)."""
    import numpy as np
    import torch
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
    if os.environ.get(PLACEMENT_ENV):  # a sweep's worker: which GPU, and how many runs share it
        env["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        env["placement"] = os.environ[PLACEMENT_ENV]
    return env


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


__all__ = ["BEST_CHECKPOINT_FILE", "CHECKPOINT_FILE", "CONFIG_FILE", "ENV_FILE", "METRICS_FILE",
           "RESULT_FILE", "STATUS_FILE", "append_metrics", "check_compatible", "environment",
           "keep_metrics_before", "read_config", "read_curve", "read_result", "read_status", "write_config",
           "write_environment", "write_result", "write_status"]
