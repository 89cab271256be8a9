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

from recurdepth.errors import ConfigError, DataError, RecurDepthError
from recurdepth.lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it; loaded on first use (the model zoo and training import torch).
# The subpackages (recurdepth.analysis, recurdepth.report: a callable package) load the same way.
_EXPORTS = {"build_model": "recurdepth.models", "list_models": "recurdepth.models",
            "train": "recurdepth.api", "sweep": "recurdepth.api", "evaluate": "recurdepth.api",
            "generate_mazes": "recurdepth.api"}
__all__ = ["ConfigError", "DataError", "RecurDepthError", "__version__", "analysis",
           "build_model", "evaluate", "generate_mazes", "list_models", "report", "sweep", "train"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
