"""Memory estimated before allocating: a size typed with extra zeros is refused in a second.

The estimates are rough (within a small factor) on purpose: they catch requests that cannot fit
(terabytes for a width of a million, gigabytes per iteration for ``--iters 1..10000``), not the
last gigabyte.
"""

from __future__ import annotations

import os

from recurdepth.errors import ConfigError

GIB = 1 << 30


def device_memory(device: str) -> int:
    """Bytes of memory of ``device`` (the GPU's total, or the machine's physical memory)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 62


def check_fits(nbytes: float, device: str, what: str, advice: str) -> None:
    """ConfigError when ``nbytes`` exceeds the memory of ``device``."""
    have = device_memory(device)
    if nbytes > have:
        raise ConfigError(f"{what} needs about {nbytes / GIB:,.1f} GiB, more than the "
                          f"{have / GIB:,.1f} GiB of memory on {device}; {advice}")


def image_side(cfg) -> int:  # noqa: ANN001 - a resolved RunConfig
    """Side in pixels of the run's largest input images."""
    from recurdepth.data.registry import get_dataset

    return int(get_dataset(cfg.data.name).image_side(max(cfg.example_sizes(), default=None))
               or 224)


def positions(cfg, side: int) -> int:  # noqa: ANN001 - a resolved RunConfig
    """Positions of one input: side² for images, side for strings (the task's spatial dims)."""
    return side ** int(getattr(cfg.task, "spatial_dims", 2))


def training_bytes(cfg) -> float:  # noqa: ANN001 - a resolved RunConfig
    """Rough bytes to train ``cfg``: weights, gradients and optimizer state, plus activations."""
    import torch

    from recurdepth.training.run import make_model

    with torch.device("meta"):  # shapes only: nothing is allocated
        params = sum(p.numel() for p in make_model(cfg).parameters())
    side = image_side(cfg)
    batch = max(cfg.train.batch_size, cfg.train.eval_batch_size)
    # Autograd keeps about two feature maps per layer (conv input, normalisation/activation).
    activations = 2 * batch * cfg.model.width * positions(cfg, side) * max(cfg.model.effective_depth, 1)
    return 4.0 * (4 * params + activations)


def check_training_memory(cfg) -> None:  # noqa: ANN001 - a resolved RunConfig
    """ConfigError when training ``cfg`` cannot fit in the memory of its device."""
    check_fits(training_bytes(cfg), cfg.runtime.device,
               f"training {cfg.model.family} width {cfg.model.width}, effective depth "
               f"{cfg.model.effective_depth}, batch {cfg.train.batch_size} on {image_side(cfg)}-px "
               f"images", "lower model.width, the depth or train.batch_size")


def check_eval_memory(cfg, iters: int) -> None:  # noqa: ANN001 - a resolved RunConfig
    """ConfigError when keeping ``iters`` outputs per evaluation batch cannot fit in memory."""
    from recurdepth.data.registry import get_dataset

    side = image_side(cfg)
    outputs = cfg.task.outputs_per_sample(get_dataset(cfg.data.name).num_classes, side)
    per_iter = cfg.train.eval_batch_size * (outputs + cfg.model.width * positions(cfg, side))
    check_fits(4.0 * iters * per_iter, cfg.runtime.device,
               f"evaluating {iters:,} iterations at batch {cfg.train.eval_batch_size}",
               "ask for fewer iterations (--iters 1..N)")


__all__ = ["check_eval_memory", "check_fits", "check_training_memory", "device_memory",
           "training_bytes"]
