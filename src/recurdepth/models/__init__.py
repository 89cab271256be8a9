"""The model zoo: every family of the paper, recurrent and feed-forward, built by ``build_model``."""

from recurdepth.lazy import lazy_exports

# name -> module that defines it; imported on first use (the builders import torch, while config
# resolution needs only recurdepth.models.spec).
_EXPORTS = {
    "MODES": "recurdepth.models.spec",
    "FamilySpec": "recurdepth.models.spec",
    "RecurDepthModel": "recurdepth.models.unrolled",
    "UnrolledNet": "recurdepth.models.unrolled",
    "build_model": "recurdepth.models.registry",
    "count_layers": "recurdepth.models.unrolled",
    "family_with_option": "recurdepth.models.registry",
    "get_family": "recurdepth.models.registry",
    "list_models": "recurdepth.models.registry",
    "paper_configurations": "recurdepth.models.registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted(_EXPORTS)
