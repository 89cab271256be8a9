"""Experiments: experiment files and presets, sweeps (local or Ray), the results database."""

from recurdepth.experiments.executors import LocalExecutor, RayExecutor, make_executor
from recurdepth.experiments.spec import Experiment, RunSpec, list_presets, load_experiment
from recurdepth.experiments.store import ResultStore, RunRecord
from recurdepth.experiments.sweep import SweepSummary, run_sweep

__all__ = ["Experiment", "LocalExecutor", "RayExecutor", "ResultStore", "RunRecord", "RunSpec",
           "SweepSummary", "list_presets", "load_experiment", "make_executor", "run_sweep"]
