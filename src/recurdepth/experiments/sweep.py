"""The sweep driver: expand an experiment, prepare its data, run what is not finished, record.

The driver is the only writer of the results database. Rerunning a sweep skips finished runs and
restarts the others, and ``train_run`` resumes each from its run folder's checkpoint, so killing
the driver loses at most the epoch in progress.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from recurdepth.errors import DataError
from recurdepth.experiments.executors import (
    Executor,
    LocalExecutor,
    Outcome,
    Task,
    TrainFn,
)
from recurdepth.experiments.spec import Experiment, RunSpec
from recurdepth.experiments.store import (
    DB_NAME,
    ResultStore,
    RunRecord,
    discard_unfinished,
    unfinished,
)
from recurdepth.locks import writer_lock
from recurdepth.progress import bar_disable


@dataclass
class SweepSummary:
    """What a sweep did: runs in total, skipped as finished, run now, and their outcomes."""

    experiment: str
    db_path: Path
    total: int
    skipped: int
    ran: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _is_done(record: RunRecord, run: RunSpec) -> bool:
    """True when a stored run needs no more training: it diverged or trained all its epochs."""
    if not record.finished:
        return False
    return record.status == "diverged" or int((record.result or {}).get(
        "epochs", 0)) >= run.config.train.epochs


def default_out_dir(experiment: Experiment) -> Path:
    """Where a sweep writes by default: ``runs/<experiment name>``."""
    return Path("runs") / experiment.name


def db_path_for(out_dir: str | Path) -> Path:
    """The results database inside a sweep's output folder."""
    return Path(out_dir) / DB_NAME


def run_dirs_for(runs: list[RunSpec], out_dir: str | Path) -> dict[str, Path]:
    """Each run's folder, ``<out>/runs/<name>_<id>``, keyed by run id."""
    return {r.run_id: Path(out_dir).resolve() / "runs" / r.folder_name for r in runs}


def _absolute_root(config: dict) -> dict:
    # Workers (processes, Ray tasks) may start elsewhere: give them an absolute data folder.
    config["data"]["root"] = str(Path(config["data"]["root"]).resolve())
    return config


def _epochs_done(task: Task) -> int:
    """Epochs a run in flight has finished (from its folder's status file; 0 if unknown)."""
    from recurdepth.training.run import read_status

    try:
        status = read_status(task.run_dir) or {}
        return int(status.get("epoch", 0))
    except Exception:  # noqa: BLE001 - progress display only
        return 0


def _needed_data(runs: list[RunSpec]) -> set[tuple[str, str, int]]:
    """(data set, root, size) of every generated data set the runs read."""
    from recurdepth.data.registry import get_dataset

    needed = set()
    for r in runs:
        spec = get_dataset(r.config.data.name)
        if spec.generated:
            needed.update((spec.name, str(r.config.data.root), int(size))
                          for size in r.config.example_sizes())
    return needed


def check_data(experiment: Experiment, runs: list[RunSpec]) -> list[tuple[str, str, int]]:
    """Generated data sets to make, as (data set, root, size); DataError if one is missing and
    the experiment cannot make it (no ``prepare: {<data set>: ...}`` entry)."""
    from recurdepth.data.registry import get_dataset

    missing = sorted((name, root, size) for name, root, size in _needed_data(runs)
                     if get_dataset(name).missing_sizes(root, (size,)))
    for name, root, size in missing:
        if name not in experiment.prepare:
            spec = get_dataset(name)
            settings = ", ".join(f"{k}: ..." for k in spec.prepare_settings)
            make = spec.how_to_make.format(size=size, root=root)
            raise DataError(f"{name} data of size {size} is missing under {root}; run `{make}` "
                            f"first, or add 'prepare: {{{name}: {{{settings}}}}}' to the "
                            f"experiment")
    return missing


def check_stored_data(runs: list[RunSpec]) -> None:
    """Read each in-memory data set the runs use once; DataError if one is missing.

    A data set the runs may download is downloaded here, once, rather than by every worker at
    once, so a missing one stops the sweep before any run and before its folder is made.
    """
    from recurdepth.data.registry import get_dataset

    seen = set()
    for run in runs:
        data = run.config.data
        spec = get_dataset(data.name)
        key = (data.name, str(data.root), bool(data.download))
        if spec.generated or spec.streamed or key in seen:
            continue
        seen.add(key)
        root = Path(data.root)
        existed = root.exists()
        try:
            spec.load_tensors(str(root), "test", limit=1, download=bool(data.download))
        except DataError:
            # A failed download leaves the folders it made; nothing of ours should remain.
            if not existed and root.is_dir() and not any(p.is_file() for p in root.rglob("*")):
                shutil.rmtree(root, ignore_errors=True)
            raise


def prepare_data(experiment: Experiment, missing: list[tuple[str, str, int]], *,
                 progress: bool = True) -> None:
    """Make the missing generated data sets with the experiment's ``prepare.<data set>`` settings."""
    from recurdepth.data.registry import get_dataset

    for name, root, size in missing:
        get_dataset(name).prepare(root, size, progress=progress, **experiment.prepare[name])


def run_sweep(experiment: Experiment, out_dir: str | Path | None = None, *,
              executor: Executor | None = None, train_fn: TrainFn | None = None,
              progress: bool = True,
              on_event: Callable[[str], None] | None = None) -> SweepSummary:
    """Run every unfinished run of ``experiment`` and record it in ``<out>/results.sqlite``.

    Validation happens first (experiment, models, database identity, data), so bad input is
    refused before any run starts. A failed run is recorded with its error; the others go on.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(experiment)
    runs = experiment.runs()  # validated before the folder is created or locked
    db_path = db_path_for(out_dir)
    if db_path.exists() and not unfinished(db_path):  # another experiment's folder stays untouched
        with ResultStore.open_existing(db_path) as existing:
            existing.check_identity(experiment)
    check_stored_data(runs)  # a missing data set leaves no folder behind
    with writer_lock(out_dir, "sweep output"):  # one sweep per folder; removes stale temp files
        return _run_sweep(experiment, runs, out_dir, executor=executor, train_fn=train_fn,
                          progress=progress, on_event=on_event)


def _run_sweep(experiment: Experiment, runs: list[RunSpec], out_dir: Path, *,
               executor: Executor | None, train_fn: TrainFn | None, progress: bool,
               on_event: Callable[[str], None] | None) -> SweepSummary:
    db_path = db_path_for(out_dir)
    discard_unfinished(db_path)
    if db_path.exists():
        with ResultStore.open_existing(db_path) as existing:
            existing.check_identity(experiment, runs)
    missing = check_data(experiment, runs)
    run_dirs = run_dirs_for(runs, out_dir)
    say = on_event or (tqdm.write if progress else (lambda msg: None))
    with ResultStore.open(db_path, experiment, runs) as store:
        store.sync_runs(runs, run_dirs)
        records = {rec.id: rec for rec in store.records()}
        run_dirs.update({r.run_id: records[r.run_id].run_dir for r in runs})  # stored folders win
        todo = [r for r in runs if not _is_done(records[r.run_id], r)]
        summary = SweepSummary(experiment.name, db_path, total=len(runs),
                               skipped=len(runs) - len(todo))
        say(f"sweep {experiment.name}: {len(runs)} runs, {summary.skipped} already finished, "
            f"{len(todo)} to run; results in {db_path}")
        if todo:
            prepare_data(experiment, missing, progress=progress)
        tasks = [Task(r.run_id, r.name, _absolute_root(r.config.to_dict()),
                      str(run_dirs[r.run_id])) for r in todo]
        epochs = {t.run_id: int(t.config["train"]["epochs"]) for t in tasks}
        bar = tqdm(total=sum(epochs.values()), desc=f"sweep {experiment.name}", unit="epoch",
                   disable=bar_disable(bool(progress and tasks)), position=0)
        running: dict[str, Task] = {}
        done_epochs = 0

        def show() -> None:
            in_flight = sum(_epochs_done(t) for t in running.values())
            bar.n = min(bar.total, done_epochs + in_flight)
            bar.set_postfix_str(f"runs {summary.ran}/{len(tasks)} done, {len(running)} running",
                                refresh=False)
            bar.refresh()

        def on_start(task: Task) -> None:
            store.mark_running(task.run_id)
            running[task.run_id] = task

        def on_done(task: Task, outcome: Outcome) -> None:
            nonlocal done_epochs
            running.pop(task.run_id, None)
            done_epochs += epochs[task.run_id]
            summary.ran += 1
            if outcome["ok"]:
                result = outcome["result"]
                store.record_result(task.run_id, result)
                status = str(result.get("status", "completed"))
                acc = result.get("test_acc")
                detail = f"test acc {acc:.2f}%" if isinstance(acc, (int, float)) else ""
            else:
                store.record_failure(task.run_id, outcome["error"])
                status = "failed"
                summary.failures.append((task.name, outcome["error"]))
                detail = outcome["error"].splitlines()[0]
            summary.statuses[status] = summary.statuses.get(status, 0) + 1
            say(f"[{summary.ran}/{len(tasks)}] {task.name}: {status} {detail}".rstrip())
            show()

        try:
            (executor or LocalExecutor(progress=progress)).execute(tasks, train_fn, on_start,
                                                                  on_done, on_tick=show)
        finally:
            bar.close()
    return summary


__all__ = ["SweepSummary", "check_data", "db_path_for", "default_out_dir", "prepare_data",
           "run_dirs_for", "run_sweep"]
