"""Torch view of a maze split: (input, target) tensors one maze at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from recurdepth.data.mazes.dataset import MazeSplit


class MazeTorchDataset(Dataset):
    """Yields (float32 input in [0, 1] (3,H,W), int64 target (H,W)) for each maze of a split."""

    def __init__(self, split: MazeSplit) -> None:
        self.inputs = torch.from_numpy(split.inputs)
        self.solutions = torch.from_numpy(split.solutions)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index].float().div_(255.0), self.solutions[index].long()
