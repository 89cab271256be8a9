"""Shape facts of the data sets: a view of the data-set registry (``recurdepth.data.registry``)."""

from __future__ import annotations

from recurdepth.data.registry import _DATASETS as DATASETS
from recurdepth.data.registry import DatasetSpec as DatasetInfo
from recurdepth.data.registry import get_dataset as dataset_info

__all__ = ["DATASETS", "DatasetInfo", "dataset_info"]
