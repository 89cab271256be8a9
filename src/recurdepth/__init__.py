"""recurdepth: recurrence versus depth in neural networks (Schwarzschild et al., ICLR 2022)."""

from recurdepth.errors import RecurDepthError
from recurdepth.models import build_model, list_models

__version__ = "0.1.0"
__all__ = ["RecurDepthError", "build_model", "list_models", "__version__"]
