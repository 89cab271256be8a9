"""The training engine: typed run configs, the authors' optimisation protocol, run folders."""

from recurdepth.training.config import RunConfig, apply_overrides, load_config, resolve
from recurdepth.training.run import LoadedRun, load_run, train_run

__all__ = ["LoadedRun", "RunConfig", "apply_overrides", "load_config", "load_run", "resolve",
           "train_run"]
