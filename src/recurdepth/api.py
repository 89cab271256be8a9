"""The Python API: train one run, run a sweep, evaluate a run (``recurdepth.train`` etc.).

Each function does what the command of the same name does, with the same validation and the same
files, and returns what the command prints as data. Reports: :func:`recurdepth.report`;
analyses: :mod:`recurdepth.analysis`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recurdepth.experiments.sweep import SweepSummary
    from recurdepth.training.config import RunConfig



def _config(config: Any, overrides: Sequence[str] | Mapping[str, Any]) -> RunConfig:
    from recurdepth.training.config import RunConfig, apply_overrides, load_config

    if config is None or isinstance(config, (str, os.PathLike)):
        cfg = load_config(config)
    elif isinstance(config, RunConfig):
        cfg = config
    else:
        cfg = RunConfig.from_dict(config)
    return apply_overrides(cfg, overrides if isinstance(overrides, Mapping) else list(overrides))


def train(config: RunConfig | Mapping[str, Any] | str | os.PathLike | None = None,
          overrides: Sequence[str] | Mapping[str, Any] = (), *,
          run_dir: str | os.PathLike | None = None, progress: bool = True,
          quiet: bool = False) -> dict[str, Any]:
    """Train (or resume) one run like ``recurdepth train`` and return its ``result.json`` dict.

    ``config`` is a RunConfig, a nested dict or a YAML path (None: the defaults); ``overrides``
    are ``"section.key=value"`` strings or a ``{"section.key": value}`` mapping. The run folder
    defaults to ``runs/<name>``.
    """
    from recurdepth.training.config import resolve
    from recurdepth.training.run import train_run

    cfg = _config(config, overrides)
    folder = Path(run_dir) if run_dir is not None else Path("runs") / resolve(cfg).name
    return train_run(cfg, folder, progress=progress, quiet=quiet)


def sweep(experiment: str | os.PathLike, overrides: Sequence[str] = (), *,
          out: str | os.PathLike | None = None, trials: int | None = None,
          data_root: str | os.PathLike | None = None, executor: str = "local",
          max_parallel: int | None = None, address: str | None = None,
          progress: bool = True) -> SweepSummary:
    """Run an experiment (a preset name or a YAML path) like ``recurdepth sweep``.

    ``overrides`` (``"key=value"``, ``"key=v1,v2"``) and ``trials`` change the experiment as on
    the command line; results go to ``out`` (default ``runs/<experiment>``) with its
    ``results.sqlite``. Returns the summary (runs, skipped, statuses, failures, database path).
    """
    from recurdepth.experiments.executors import make_executor
    from recurdepth.experiments.spec import load_experiment
    from recurdepth.experiments.sweep import run_sweep

    exp = load_experiment(experiment)
    if overrides or trials is not None:
        exp = exp.with_overrides(list(overrides), trials=trials)
    if data_root is not None:
        exp = exp.with_data_root(Path(data_root).resolve())
    runner = make_executor(executor, max_parallel=max_parallel, address=address,
                           progress=progress)
    return run_sweep(exp, out, executor=runner, progress=progress)


def evaluate(run_dir: str | os.PathLike, *, iters: int | None = None, split: str = "test",
             maze_size: int | None = None, limit: int | None = None,
             data_root: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Evaluate a trained run like ``recurdepth eval`` (also saved in ``<run>/eval.json``)."""
    from recurdepth.training.run import evaluate_saved
    from recurdepth.training.tracking import record_eval

    out = evaluate_saved(run_dir, iters=iters, split=split, maze_size=maze_size, limit=limit,
                         data_root=data_root, device=device)
    if limit is not None:
        out["samples_limit"] = limit
    record_eval(run_dir, out)
    return out


def generate_mazes(out: str | os.PathLike, *, size: int = 9, n_train: int = 50000,
                   n_test: int = 10000, seed: int = 0, progress: bool = False) -> Path:
    """Generate a maze data set like ``recurdepth mazes generate`` (kept if it already exists)."""
    from recurdepth.data.mazes import generate_dataset
    from recurdepth.data.mazes.dataset import dataset_identity, existing_dataset
    from recurdepth.data.mazes.generate import check_size

    size = check_size(size)
    if not existing_dataset(out, dataset_identity(size, n_train, n_test, seed, "start")):
        generate_dataset(out, size=size, n_train=n_train, n_test=n_test, seed=seed,
                         progress=progress)
    return Path(out)


__all__ = ["evaluate", "generate_mazes", "sweep", "train"]
