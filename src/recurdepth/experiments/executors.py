"""Executors: where the runs of a sweep execute (this process, local processes, Ray, SLURM).

Every executor calls the same single-run function (``train_run`` unless told otherwise) through
:func:`execute_task`, which never raises: workers *return* a result or an error, and only the
driver writes the results database.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recurdepth.errors import ConfigError

TrainFn = Callable[..., dict]
"""``train_fn(config: RunConfig, run_dir: Path, *, progress: bool) -> result dict``."""

EXECUTORS = ("local", "ray", "slurm")


@dataclass(frozen=True)
class Task:
    """One run handed to an executor: its id, name, resolved config (a dict) and folder."""

    run_id: str
    name: str
    config: dict[str, Any]
    run_dir: str


Outcome = dict[str, Any]
"""``{"ok": True, "result": {...}}`` or ``{"ok": False, "error": "Type: message\\n<traceback>"}``."""


def default_train_fn() -> TrainFn:
    """The single-run function of ``recurdepth train``."""
    from recurdepth.training.run import train_run

    return train_run


def execute_task(train_fn: TrainFn | None, config: dict[str, Any], run_dir: str, *,
                 progress: bool = False, threads: int | None = None,
                 capture: bool = False) -> Outcome:
    """Train one run and return its outcome; exceptions become an error outcome, never raise.

    ``capture`` (worker processes, Ray tasks) sends the process's output to the run's train.log.
    """
    from recurdepth.training.config import RunConfig
    from recurdepth.training.tracking import capture_output

    with capture_output(run_dir) if capture else contextlib.nullcontext():
        try:
            if threads:
                import torch

                torch.set_num_threads(threads)
            fn = train_fn or default_train_fn()
            result = fn(RunConfig.from_dict(config), Path(run_dir), progress=progress)
            return {"ok": True, "result": dict(result)}
        except Exception as e:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
            error = format_error(e)
            if capture:
                print(error, file=sys.stderr)
            return {"ok": False, "error": error}


def run_function(train_fn: TrainFn | None, gpus_per_run: int) -> TrainFn | None:
    """The single-run function a worker calls: torchrun with N processes when a run takes N > 1
    GPUs and no function was given, else ``train_fn`` (None: the default)."""
    if train_fn is None and gpus_per_run > 1:
        from recurdepth.training.launch import TorchrunTrain

        return TorchrunTrain(gpus_per_run)
    return train_fn


def format_error(e: BaseException) -> str:
    """``Type: message`` on the first line, then the traceback (for the database)."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return f"{type(e).__name__}: {e}\n{tb}"


class Executor(Protocol):
    """Runs tasks; calls ``on_start(task)`` before and ``on_done(task, outcome)`` after each."""

    def execute(self, tasks: list[Task], train_fn: TrainFn | None,
                on_start: Callable[[Task], None],
                on_done: Callable[[Task, Outcome], None],
                on_tick: Callable[[], None] | None = None) -> None: ...


TICK_SECONDS = 2.0


def _windowed(tasks: Iterable[Task], window: int, submit: Callable[[Task], Hashable],
              wait_any: Callable[[list[Hashable], float], list[tuple[Hashable, Outcome]]],
              on_start: Callable[[Task], None], on_done: Callable[[Task, Outcome], None],
              on_tick: Callable[[], None] | None) -> None:
    """Keep at most ``window`` tasks in flight; report each as it starts and finishes, and call
    ``on_tick`` every few seconds meanwhile (progress of the runs in flight)."""
    queue = list(tasks)
    inflight: dict[Hashable, Task] = {}
    while queue or inflight:
        while queue and len(inflight) < window:
            task = queue.pop(0)
            on_start(task)
            inflight[submit(task)] = task
        for handle, outcome in wait_any(list(inflight), TICK_SECONDS):
            on_done(inflight.pop(handle), outcome)
        if on_tick:
            on_tick()


def visible_device_ids(count: int) -> list[str]:
    """The ids of this process's ``count`` GPUs as CUDA_VISIBLE_DEVICES names them."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
        return ids[:count]
    return [str(i) for i in range(count)]


def gpu_slots(device_ids: list[str], gpus_per_run: int) -> list[str]:
    """Disjoint groups of ``gpus_per_run`` GPUs, one CUDA_VISIBLE_DEVICES value per run at once."""
    if gpus_per_run > len(device_ids):
        raise ConfigError(f"--gpus-per-run {gpus_per_run} but this machine has "
                          f"{len(device_ids)} GPU(s); use --gpus-per-run "
                          f"{max(len(device_ids), 1) if device_ids else 0} or a machine with more")
    n = len(device_ids) // gpus_per_run
    return [",".join(device_ids[i * gpus_per_run:(i + 1) * gpus_per_run]) for i in range(n)]


# CUDA context, cuDNN workspace and allocator slack of one more process on a GPU (measured order).
GPU_PROCESS_BYTES = 1 << 30
# Runs packed on one GPU at most: six main-job runs on one H200 each kept their solo speed
# (measured); beyond a few more, kernels of different runs start to queue behind each other.
MAX_RUNS_PER_GPU = 8


def default_runs_per_gpu(configs: Iterable[dict[str, Any]], *, gpu_memory: int, cpus: int,
                         gpus: int) -> tuple[int, str]:
    """How many runs share one GPU by default, and why: as many as fit its memory (the largest
    run's estimate, :func:`recurdepth.training.budget.training_bytes`, plus a process's CUDA
    context) and as the CPU cores can feed (one core per run), at most ``MAX_RUNS_PER_GPU``."""
    from recurdepth.training.budget import GIB, training_bytes
    from recurdepth.training.config import RunConfig, resolve_on

    per_run = max((training_bytes(resolve_on(RunConfig.from_dict(c), "cpu")) for c in configs),
                  default=0.0) + GPU_PROCESS_BYTES
    by_memory = int(0.9 * gpu_memory // per_run)
    by_cpu = max(1, cpus // max(gpus, 1))
    k = max(1, min(by_memory, by_cpu, MAX_RUNS_PER_GPU))
    why = (f"{k} run(s) per GPU: about {per_run / GIB:.1f} GiB per run of "
           f"{gpu_memory / GIB:.0f} GiB fits {by_memory}, {cpus} CPU cores for {gpus} GPU(s) "
           f"feed {by_cpu}, at most {MAX_RUNS_PER_GPU}; --runs-per-gpu K to choose")
    return k, why


class LocalExecutor:
    """Runs in this process (``max_parallel=1``) or in up to ``max_parallel`` worker processes.

    On a machine with G GPUs, K runs share each GPU (``runs_per_gpu``; None: as many as its
    memory and the CPU cores allow, :func:`default_runs_per_gpu`), so up to G / ``gpus_per_run``
    x K runs go at once, each worker pinned to its GPUs (CUDA_VISIBLE_DEVICES); a run with
    several GPUs trains under torchrun. ``max_parallel`` None: every place on the GPUs (one run
    on a CPU-only machine). ``gpu_count`` and ``gpu_memory`` override the detected number of
    GPUs and their memory in bytes (tests).
    """

    def __init__(self, max_parallel: int | None = 1, *, progress: bool = True,
                 threads_per_run: int | None = None, gpus_per_run: int | None = None,
                 gpu_count: int | None = None, runs_per_gpu: int | None = None,
                 gpu_memory: int | None = None) -> None:
        if max_parallel is not None and max_parallel < 1:
            raise ConfigError(f"--max-parallel must be >= 1, got {max_parallel}")
        if runs_per_gpu is not None and runs_per_gpu < 1:
            raise ConfigError(f"--runs-per-gpu must be >= 1, got {runs_per_gpu}")
        if gpu_count is None:
            from recurdepth.training.launch import visible_gpu_count

            gpu_count = visible_gpu_count()
        self.slots: list[str] | None = None
        self.gpus_per_run = gpus_per_run or 0
        self.runs_per_gpu = runs_per_gpu
        self.gpu_memory = gpu_memory
        self.requested_parallel = max_parallel
        self.placement: str | None = None
        if gpu_count or self.gpus_per_run:
            self.gpus_per_run = gpus_per_run or 1
            self.slots = gpu_slots(visible_device_ids(gpu_count), self.gpus_per_run)
        elif runs_per_gpu is not None:
            raise ConfigError("--runs-per-gpu needs a GPU; this machine has none (on a CPU, "
                              "--max-parallel N runs N at once)")
        self.progress = progress
        self._threads_per_run = threads_per_run
        self._place(runs_per_gpu or 1)

    def _place(self, runs_per_gpu: int, runs: int | None = None) -> None:
        """Set the worker count (at most ``runs``) and each worker's CUDA_VISIBLE_DEVICES for K
        runs per GPU."""
        # Round-robin over the GPUs: with fewer workers than places, the runs still spread out.
        self.worker_slots = [slot for _ in range(runs_per_gpu) for slot in (self.slots or [])]
        cap = self.requested_parallel
        if self.slots is not None:
            self.max_parallel = min(cap or len(self.worker_slots), len(self.worker_slots))
        else:
            self.max_parallel = cap or 1
        self.max_parallel = max(1, min(self.max_parallel, runs or self.max_parallel))
        cpus = os.cpu_count() or 1
        self.threads_per_run = self._threads_per_run or max(1, cpus // self.max_parallel)

    def describe_placement(self, tasks: list[Task]) -> str | None:
        """Decide how ``tasks`` are placed on the GPUs and say so (None without GPUs)."""
        if self.slots is None:
            return None
        k, why = self.runs_per_gpu, "--runs-per-gpu"
        if k is None:
            memory = self.gpu_memory or _gpu_memory()
            k, why = default_runs_per_gpu([t.config for t in tasks], gpu_memory=memory,
                                          cpus=os.cpu_count() or 1,
                                          gpus=len(self.slots) * self.gpus_per_run)
        self._place(k, len(tasks))
        self.placement = (f"{k} run(s) per GPU on {len(self.slots)} GPU slot(s) "
                          f"({', '.join(self.slots)}), {self.max_parallel} at once, "
                          f"{self.threads_per_run} CPU thread(s) each ({why})")
        return self.placement

    def _train_fn(self, train_fn: TrainFn | None) -> TrainFn | None:
        return run_function(train_fn, self.gpus_per_run)

    def execute(self, tasks: list[Task], train_fn: TrainFn | None,
                on_start: Callable[[Task], None],
                on_done: Callable[[Task, Outcome], None],
                on_tick: Callable[[], None] | None = None) -> None:
        """Run ``tasks``; sequential runs show their own progress bars."""
        train_fn = self._train_fn(train_fn)
        if self.slots is not None and self.placement is None:
            self.describe_placement(tasks)
        if self.max_parallel == 1:
            for task in tasks:
                on_start(task)
                on_done(task, execute_task(train_fn, task.config, task.run_dir,
                                           progress=self.progress))
            return
        # spawn, not fork: forking a process that already runs torch threads can deadlock.
        ctx = multiprocessing.get_context("spawn")
        slots = ctx.Queue()
        for slot in self.worker_slots[:self.max_parallel]:
            slots.put(slot)
        pool = cf.ProcessPoolExecutor(self.max_parallel, mp_context=ctx, initializer=_worker_init,
                                      initargs=(os.getpid(), slots if self.slots else None,
                                                self.placement))

        def submit(task: Task) -> cf.Future:
            return pool.submit(execute_task, train_fn, task.config, task.run_dir,
                               progress=False, threads=self.threads_per_run, capture=True)

        def wait_any(futures: list[Hashable], timeout: float) -> list[tuple[Hashable, Outcome]]:
            done, _ = cf.wait(futures, timeout=timeout,  # type: ignore[arg-type]
                              return_when=cf.FIRST_COMPLETED)
            out = []
            for fut in done:
                try:
                    out.append((fut, fut.result()))
                except Exception as e:  # noqa: BLE001 - a worker process died
                    out.append((fut, {"ok": False, "error": format_error(e)}))
            return out

        try:
            _windowed(tasks, self.max_parallel, submit, wait_any, on_start, on_done, on_tick)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


from recurdepth.training.rundir import PLACEMENT_ENV  # noqa: E402  (how a worker was placed)


def _worker_init(parent_pid: int, slots: Any = None, placement: str | None = None) -> None:
    """Take this worker's GPUs (before CUDA starts); exit when the driver dies, so a killed
    sweep leaves no run training alone."""
    if slots is not None:
        # One slot per worker and one run per worker at a time: K workers hold each GPU's slot.
        os.environ["CUDA_VISIBLE_DEVICES"] = slots.get(timeout=60)
    if placement:
        os.environ[PLACEMENT_ENV] = placement

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _gpu_memory() -> int:
    """Bytes of memory of the smallest visible GPU (0 when torch sees none)."""
    import torch

    return min((torch.cuda.get_device_properties(i).total_memory
                for i in range(torch.cuda.device_count())), default=0)


class RayExecutor:
    """Each run is a Ray task with ``num_cpus`` / ``num_gpus``, on a cluster or a local Ray.

    ``address``: an existing cluster ("auto" or "ray://host:10001"); without it, a Ray already
    initialised in this process is used, else a local one is started (and shut down after).
    Run folders and data must be on storage that every node sees.
    """

    def __init__(self, *, address: str | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, max_parallel: int | None = None,
                 gpus_per_run: int | None = None, runs_per_gpu: int | None = None) -> None:
        if runs_per_gpu is not None and runs_per_gpu < 1:
            raise ConfigError(f"--runs-per-gpu must be >= 1, got {runs_per_gpu}")
        if runs_per_gpu and gpus_per_run and gpus_per_run > 1:
            raise ConfigError("--runs-per-gpu K shares one GPU between K runs; it does not "
                              "combine with --gpus-per-run > 1")
        if gpus_per_run:
            num_gpus = float(gpus_per_run)  # a multi-GPU run trains under torchrun in its task
        if runs_per_gpu:
            num_gpus = 1.0 / runs_per_gpu  # Ray packs K such tasks on each GPU
        self.gpus_per_run = gpus_per_run or 0
        self.runs_per_gpu = runs_per_gpu
        if num_cpus <= 0 or num_gpus < 0:
            raise ConfigError(f"a Ray task needs num_cpus > 0 and num_gpus >= 0, got "
                              f"{num_cpus} / {num_gpus}")
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_parallel = max_parallel

    def execute(self, tasks: list[Task], train_fn: TrainFn | None,
                on_start: Callable[[Task], None],
                on_done: Callable[[Task, Outcome], None],
                on_tick: Callable[[], None] | None = None) -> None:
        """Submit the tasks to Ray (at most ``max_parallel`` in flight) and collect outcomes."""
        if not tasks:
            return
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'recurdepth[ray]'") from None
        started_here = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False)
            started_here = True
        self._check_gpus(ray)
        train_fn = run_function(train_fn, self.gpus_per_run)
        remote = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                            max_retries=0)(execute_task)
        threads = max(1, int(self.num_cpus))

        def submit(task: Task) -> Hashable:
            return remote.remote(train_fn, task.config, task.run_dir, progress=False,
                                 threads=threads, capture=True)

        def wait_any(refs: list[Hashable], timeout: float) -> list[tuple[Hashable, Outcome]]:
            ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            out = []
            for ref in ready:
                try:
                    out.append((ref, ray.get(ref)))
                except Exception as e:  # noqa: BLE001 - the worker or node died
                    out.append((ref, {"ok": False, "error": format_error(e)}))
            return out

        try:
            _windowed(tasks, self.max_parallel or len(tasks) or 1, submit, wait_any, on_start,
                      on_done, on_tick)
        finally:
            if started_here:
                ray.shutdown()


    def describe_placement(self, tasks: list[Task]) -> str | None:
        """How Ray places each run (None without GPUs)."""
        if not self.num_gpus:
            return None
        share = (f", {self.runs_per_gpu} run(s) per GPU" if self.runs_per_gpu else "")
        return f"Ray: {self.num_gpus:g} GPU(s) and {self.num_cpus:g} CPU(s) per run{share}"

    def _check_gpus(self, ray: Any) -> None:
        """ConfigError when no node of the cluster has the GPUs one run asks for."""
        if not self.num_gpus:
            return
        most = max((n.get("Resources", {}).get("GPU", 0) for n in ray.nodes() if n.get("Alive")),
                   default=0)
        if self.num_gpus > most:
            raise ConfigError(f"each run asks for {self.num_gpus:g} GPU(s) but the largest node of "
                              f"the Ray cluster has {most:g}; use fewer GPUs per run")


def make_executor(name: str, *, max_parallel: int | None = None, address: str | None = None,
                  num_cpus: float = 1.0, num_gpus: float = 0.0, progress: bool = True,
                  gpus_per_run: int | None = None, slurm: dict[str, Any] | None = None,
                  runs_per_gpu: int | None = None) -> Executor:
    """Build the executor ``name`` (local, ray or slurm) from command-line options.

    ``slurm``: keyword options of :class:`recurdepth.experiments.slurm.SlurmExecutor`.
    """
    if address and name != "ray":
        raise ConfigError("--address is for --executor ray")
    if slurm and any(v is not None for v in slurm.values()) and name != "slurm":
        raise ConfigError("--partition, --time and --array-parallelism are for --executor slurm")
    if gpus_per_run is not None and gpus_per_run < 1:
        raise ConfigError(f"--gpus-per-run must be >= 1, got {gpus_per_run}")
    if runs_per_gpu is not None and name == "slurm":
        raise ConfigError("--runs-per-gpu is for --executor local and ray")
    if name == "local":
        return LocalExecutor(max_parallel, progress=progress, gpus_per_run=gpus_per_run,
                             runs_per_gpu=runs_per_gpu)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus, num_gpus=num_gpus,
                           max_parallel=max_parallel, gpus_per_run=gpus_per_run,
                           runs_per_gpu=runs_per_gpu)
    if name == "slurm":
        from recurdepth.experiments.slurm import SlurmExecutor

        opts = {k: v for k, v in (slurm or {}).items() if v is not None}
        return SlurmExecutor(gpus_per_run=gpus_per_run or 0, **opts)
    from recurdepth.errors import choices_message

    raise ConfigError(choices_message("executor", name, EXECUTORS))


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "Outcome", "PLACEMENT_ENV", "RayExecutor",
           "Task", "TrainFn", "default_runs_per_gpu", "default_train_fn", "execute_task", "format_error", "gpu_slots",
           "make_executor", "visible_device_ids"]
