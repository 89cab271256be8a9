"""recurdepth: recurrence versus depth in neural networks (Schwarzschild et al., ICLR 2022)."""

from __future__ import annotations

from typing import Any

from recurdepth.errors import RecurDepthError

__version__ = "0.1.0"
__all__ = ["RecurDepthError", "build_model", "list_models", "__version__"]


def __getattr__(name: str) -> Any:
    # The model zoo imports torch: load it on first use so that light commands start fast.
    if name in ("build_model", "list_models"):
        from recurdepth import models

        return getattr(models, name)
    raise AttributeError(f"module 'recurdepth' has no attribute {name!r}")
