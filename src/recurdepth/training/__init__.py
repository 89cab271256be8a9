"""The training engine: typed run configs, the authors' optimisation protocol, run folders."""

from recurdepth.lazy import lazy_exports

# name -> module that defines it; imported on first use (most of them import torch).
_EXPORTS = {
    "RunConfig": "recurdepth.training.config",
    "apply_overrides": "recurdepth.training.config",
    "load_config": "recurdepth.training.config",
    "resolve": "recurdepth.training.config",
    "LoadedRun": "recurdepth.training.run",
    "load_run": "recurdepth.training.run",
    "train_run": "recurdepth.training.run",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
