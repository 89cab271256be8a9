"""The model zoo: every family of the paper, recurrent and feed-forward, built by ``build_model``."""

from recurdepth.models.registry import (
    FamilySpec,
    build_model,
    family_with_option,
    get_family,
    list_models,
    paper_configurations,
)
from recurdepth.models.unrolled import MODES, RecurDepthModel, UnrolledNet, count_layers

__all__ = [
    "MODES",
    "FamilySpec",
    "RecurDepthModel",
    "UnrolledNet",
    "build_model",
    "count_layers",
    "family_with_option",
    "get_family",
    "list_models",
    "paper_configurations",
]
