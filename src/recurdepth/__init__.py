"""recurdepth: recurrence versus depth in neural networks (Schwarzschild et al., ICLR 2022).

The public API (each name is imported on first use, so ``import recurdepth`` stays light)::

    recurdepth.generate_mazes(out, size=9, n_train=..., n_test=...)   # a maze data set
    recurdepth.train(config, overrides, run_dir=...)   # one run -> result dict
    recurdepth.sweep("quick", ["train.epochs=1"])       # an experiment -> SweepSummary
    recurdepth.evaluate(run_dir, iters=10)              # accuracy per iteration -> dict
    recurdepth.report(sweep_folder)                     # plots, tables, index -> ReportFiles
    recurdepth.build_model("maze", "recurrent", effective_depth=16)
    recurdepth.analysis.cka_matrix(...), .reuse_histogram(...), .probe_model(...), ...
"""

from __future__ import annotations

from typing import Any

from recurdepth.errors import ConfigError, DataError, RecurDepthError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "RecurDepthError", "__version__", "analysis",
           "build_model", "evaluate", "generate_mazes", "list_models", "report", "sweep", "train"]

# name -> module that defines it; loaded on first use (the model zoo and training import torch).
_LAZY = {"build_model": "recurdepth.models", "list_models": "recurdepth.models",
         "train": "recurdepth.api", "sweep": "recurdepth.api", "evaluate": "recurdepth.api",
         "generate_mazes": "recurdepth.api"}
_SUBPACKAGES = ("analysis", "report")  # report is a callable package: recurdepth.report(folder)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"recurdepth.{name}")
    raise AttributeError(f"module 'recurdepth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
