"""SLURM through submitit: one job-array task per run, each running the same single-run function.

The driver submits the array, waits, collects every task's outcome and alone writes the results
database. A task that SLURM preempts or times out is requeued by submitit (the run function is
checkpointable) and resumes from its run folder's checkpoint. ``cluster="local"`` runs the same
array as local processes through submitit (the same code path except ``sbatch``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError
from recurdepth.experiments.executors import (TICK_SECONDS, Outcome, Task, TrainFn, execute_task,
                                              format_error, run_function)

SLURM_CLUSTERS = ("slurm", "local")


def import_submitit() -> Any:
    """The submitit module, or a ConfigError with the install command."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit, which is not installed: "
                          "pip install 'recurdepth[slurm]' (or pip install submitit)") from None
    return submitit


def parse_time(text: str) -> int:
    """Minutes in a SLURM time limit ``[D-]HH:MM:SS``, ``HH:MM`` or ``MM``."""
    try:
        days, _, rest = text.rpartition("-")
        parts = [int(p) for p in rest.split(":")]
        if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
            raise ValueError
        h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
        minutes = (int(days) if days else 0) * 1440 + h * 60 + m + (1 if s else 0)
    except ValueError:
        raise ConfigError(f"--time {text!r} is not a SLURM time limit; use HH:MM:SS or "
                          f"D-HH:MM:SS, e.g. 24:00:00") from None
    if minutes < 1:
        raise ConfigError(f"--time {text!r} is shorter than a minute")
    return minutes


class SlurmRun:
    """The job-array task: train one run; on preemption or timeout, requeue the same call."""

    def __init__(self, train_fn: TrainFn | None) -> None:
        self.train_fn = train_fn

    def __call__(self, config: dict[str, Any], run_dir: str) -> Outcome:
        """Train the run (resuming from its folder) and return its outcome."""
        return execute_task(self.train_fn, config, run_dir, progress=False)

    def checkpoint(self, config: dict[str, Any], run_dir: str) -> Any:
        """Called by submitit on preemption/timeout: requeue; the run resumes from its folder."""
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmRun(self.train_fn), config, run_dir)


class SlurmExecutor:
    """Submits the runs as a job array (``--array-parallelism`` at once) and collects outcomes."""

    def __init__(self, *, partition: str | None = None, gpus_per_run: int = 0,
                 time_limit: str = "24:00:00", array_parallelism: int | None = None,
                 cpus_per_run: int | None = None, cluster: str = "slurm") -> None:
        if cluster not in SLURM_CLUSTERS:
            from recurdepth.errors import choices_message

            raise ConfigError(choices_message("--slurm-cluster", cluster, SLURM_CLUSTERS))
        if gpus_per_run < 0 or (array_parallelism is not None and array_parallelism < 1):
            raise ConfigError("--gpus-per-run must be >= 0 and --array-parallelism >= 1")
        self.partition, self.gpus_per_run, self.cluster = partition, gpus_per_run, cluster
        self.timeout_min = parse_time(time_limit)
        self.time_limit = time_limit
        self.array_parallelism = array_parallelism
        self.cpus_per_run = cpus_per_run or max(1, 4 * gpus_per_run) or 1

    def check_submittable(self) -> None:
        """ConfigError unless submitit is installed and (for SLURM) ``sbatch`` is on this machine."""
        import_submitit()
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            where = f" (--partition {self.partition})" if self.partition else ""
            raise ConfigError(f"--executor slurm{where}: this machine has no sbatch, so it cannot "
                              f"submit to SLURM; run the sweep on a SLURM login node, or use "
                              f"--executor local / ray here (--dry-run shows the submission)")

    def sbatch_parameters(self, n_runs: int) -> dict[str, Any]:
        """The sbatch options of the job array for ``n_runs`` runs."""
        params: dict[str, Any] = {"partition": self.partition, "time": self.time_limit,
                                  "nodes": 1, "ntasks-per-node": 1,
                                  "cpus-per-task": self.cpus_per_run}
        if self.gpus_per_run:
            params["gpus-per-node"] = self.gpus_per_run
        array = f"0-{max(n_runs - 1, 0)}"
        params["array"] = array + (f"%{self.array_parallelism}" if self.array_parallelism else "")
        params["signal"] = "USR2@90"  # submitit requeues on it (preemption, time limit)
        params["requeue"] = True
        return {k: v for k, v in params.items() if v is not None}

    def describe(self, n_runs: int) -> str:
        """The submission as ``#SBATCH`` lines (for ``--dry-run``)."""
        lines = [f"#SBATCH --{k}" if v is True else f"#SBATCH --{k}={v}"
                 for k, v in self.sbatch_parameters(n_runs).items()]
        run = "python -m submitit.core._submit <log folder>  # one run per array task"
        return "\n".join(lines + [run])

    def _executor(self, folder: Path) -> Any:
        submitit = import_submitit()
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=self.cluster)
        ex.update_parameters(timeout_min=self.timeout_min, nodes=1, tasks_per_node=1,
                             cpus_per_task=self.cpus_per_run, gpus_per_node=self.gpus_per_run,
                             name="recurdepth")
        if self.cluster == "slurm":
            ex.update_parameters(slurm_partition=self.partition,
                                 slurm_array_parallelism=self.array_parallelism or 256)
        return ex

    def execute(self, tasks: list[Task], train_fn: TrainFn | None,
                on_start: Callable[[Task], None],
                on_done: Callable[[Task, Outcome], None],
                on_tick: Callable[[], None] | None = None) -> None:
        """Submit one array task per run, then wait and report each outcome as it arrives."""
        if not tasks:
            return
        self.check_submittable()
        train_fn = run_function(train_fn, self.gpus_per_run)
        folder = Path(tasks[0].run_dir).parent.parent / "slurm"
        ex = self._executor(folder)
        jobs = ex.map_array(SlurmRun(train_fn), [t.config for t in tasks],
                            [t.run_dir for t in tasks])
        pending = dict(zip(jobs, tasks))
        for task in tasks:
            on_start(task)
        while pending:
            for job in [j for j in pending if j.done()]:
                on_done(pending.pop(job), _outcome(job))
            if pending:
                time.sleep(TICK_SECONDS)
            if on_tick:
                on_tick()


def _outcome(job: Any) -> Outcome:
    """A finished job's outcome; a task that died (killed, out of memory) is an error outcome."""
    try:
        return job.result()
    except Exception as e:  # noqa: BLE001 - recorded as the run's failure
        return {"ok": False, "error": format_error(e)}


__all__ = ["SLURM_CLUSTERS", "SlurmExecutor", "SlurmRun", "import_submitit", "parse_time"]
