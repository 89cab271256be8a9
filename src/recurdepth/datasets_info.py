"""Shape facts of the paper's data sets, shared by models, data loaders and reports."""

from __future__ import annotations

from dataclasses import dataclass

from recurdepth.errors import ConfigError, choices_message


@dataclass(frozen=True)
class DatasetInfo:
    """Input channels, image side (None: any size) and number of classes of a data set."""

    name: str
    in_channels: int
    image_size: int | None
    num_classes: int


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo("cifar10", 3, 32, 10),
    "svhn": DatasetInfo("svhn", 3, 32, 10),
    "emnist": DatasetInfo("emnist", 1, 28, 47),
    "imagenet": DatasetInfo("imagenet", 3, 224, 1000),
    # Maze solvers are fully convolutional: 2 logits (path / not path) per pixel, any maze size.
    "mazes": DatasetInfo("mazes", 3, None, 2),
}


def dataset_info(name: str) -> DatasetInfo:
    """Return the DatasetInfo of ``name`` or raise a ConfigError listing the valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(choices_message("data set", name, DATASETS)) from None
