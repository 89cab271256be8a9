"""Experiments: experiment files and presets, sweeps (local or Ray), the results database."""

from recurdepth.lazy import lazy_exports

# name -> module that defines it; imported on first use (most of them import torch).
_EXPORTS = {
    "LocalExecutor": "recurdepth.experiments.executors",
    "RayExecutor": "recurdepth.experiments.executors",
    "make_executor": "recurdepth.experiments.executors",
    "Experiment": "recurdepth.experiments.spec",
    "RunSpec": "recurdepth.experiments.spec",
    "list_presets": "recurdepth.experiments.spec",
    "load_experiment": "recurdepth.experiments.spec",
    "ResultStore": "recurdepth.experiments.store",
    "RunRecord": "recurdepth.experiments.store",
    "SweepSummary": "recurdepth.experiments.sweep",
    "run_sweep": "recurdepth.experiments.sweep",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
