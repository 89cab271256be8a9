"""One run in many processes (DistributedDataParallel under ``torchrun``).

The global batch stays ``train.batch_size``: every process builds the same batches in the same
order and trains on its contiguous slice of each (:meth:`Dist.shard`), so a run means the same
thing at any world size. The loss of each slice is divided by the *global* normaliser (samples,
or non-wall pixels for mazes, summed over processes) and multiplied by the world size, so the
gradient DDP averages is exactly the gradient of the global batch mean. Process 0 alone writes the
run folder; the others wait for it at barriers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import Tensor, nn

from recurdepth.errors import ConfigError

# Per-epoch evaluation on process 0 can take long (ImageNet); the others wait at a barrier.
BARRIER_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank, world size and local rank (one process: 0, 1, 0)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when the run has more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes the run folder."""
        return self.rank == 0

    def shard(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """This process's contiguous slice of a global batch."""
        if not self.enabled:
            return x, y
        return (torch.tensor_split(x, self.world_size)[self.rank],
                torch.tensor_split(y, self.world_size)[self.rank])

    def all_sum(self, t: Tensor) -> Tensor:
        """``t`` summed over all processes (a new tensor)."""
        if not self.enabled:
            return t
        import torch.distributed as tdist

        t = t.clone()
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        """Wait until every process reaches this point."""
        if self.enabled:
            import torch.distributed as tdist

            tdist.barrier()


SINGLE = Dist()


def world_size_from_env() -> int:
    """The number of processes torchrun started for this run (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def world_rank() -> int:
    """This process's rank in a torchrun run (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def check_world_size(world_size: int, batch_size: int) -> None:
    """ConfigError when a global batch cannot give every process at least one sample."""
    if world_size > batch_size:
        raise ConfigError(f"{world_size} processes (--nproc-per-node) for train.batch_size="
                          f"{batch_size}: every process needs at least one sample of each batch; "
                          f"use at most {batch_size} processes or a larger train.batch_size")


def init_distributed(device: str) -> Dist:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU); SINGLE outside it."""
    world = world_size_from_env()
    if world <= 1:
        return SINGLE
    import torch.distributed as tdist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    _exit_with_launcher()
    on_cuda = device.startswith("cuda")
    if on_cuda:
        torch.cuda.set_device(local_rank)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if on_cuda else "gloo", timeout=BARRIER_TIMEOUT)
    return Dist(rank=rank, world_size=world, local_rank=local_rank)


def _exit_with_launcher() -> None:
    """Exit when torchrun dies: its workers run in their own sessions, so a SIGKILL to the
    launcher's process group would otherwise leave them training (and writing) alone."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.05)  # a tiny run can finish an epoch in well under a second
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-torchrun").start()


def shutdown_distributed() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def wrap_model(model: nn.Module, dist: Dist, *, device: str, sync_bn: bool,
               find_unused_parameters: bool = False) -> nn.Module:
    """The model to train: ``model`` itself, or DDP around it (BatchNorm synchronised on request).

    ``find_unused_parameters``: some steps leave parameters without gradient (progressive loss).
    """
    if not dist.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn:
        model = convert_sync_bn(model)
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids,
                                   find_unused_parameters=find_unused_parameters)


def convert_sync_bn(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm (per-iteration BN of recurrent models included) by SyncBatchNorm.

    Parameters and buffers keep their names, so checkpoints load into the plain model.
    """
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if converted is not model:
        raise ConfigError("runtime.sync_bn: the model itself is a BatchNorm layer")
    return model


__all__ = ["Dist", "SINGLE", "check_world_size", "convert_sync_bn", "init_distributed",
           "shutdown_distributed", "world_rank", "world_size_from_env", "wrap_model"]
