"""Where a run reports as it trains: ``train.log``, TensorBoard event files and the terminal.

* ``train.log`` (plain text, appended, timestamped): start, every epoch's line, the result, and
  in sweep workers everything the process prints (:func:`capture_output`), so a Ray task's output
  is kept with its run.
* TensorBoard events in ``<run>/tensorboard/`` when the ``tensorboard`` package is installed
  (``pip install 'recurdepth[tb]'``): ``step/loss`` per optimisation step, ``epoch/*`` per epoch
  (loss, augmented train accuracy, learning rate, throughput, test and train accuracy when
  evaluated) and ``final/*``, the final evaluation's test and train accuracy.
* The terminal: the per-epoch line unless the run is quiet (progress bars are separate).

Evaluations of a saved run (``recurdepth eval``) go to ``<run>/eval.json`` (:func:`record_eval`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from recurdepth.errors import DataError
from recurdepth.io import atomic_write_json

LOG_FILE = "train.log"
TENSORBOARD_DIR = "tensorboard"
EVAL_FILE = "eval.json"
TB_HINT = "TensorBoard logging is off: pip install 'recurdepth[tb]' to turn it on"

_captured = False  # True while this process's output already goes to a run's train.log

# Per-epoch keys written to TensorBoard as epoch/<key>.
EPOCH_SCALARS = ("loss", "train_acc_augmented", "train_acc", "test_acc", "lr", "images_per_s",
                 "seconds")


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


class Tracker:
    """One run's reporting: ``train.log``, TensorBoard (if installed) and the terminal."""

    def __init__(self, run_dir: str | os.PathLike, *, echo: bool = True,
                 tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo and not _captured
        self._log = open(self.run_dir / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._writer = self._open_writer() if tensorboard else None

    def _open_writer(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional extra is not installed
            self.log(TB_HINT)
            return None
        return SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR))

    def log(self, text: str) -> None:
        """Append ``text`` to train.log (timestamped)."""
        self._log.write(f"{_stamp()} {text}\n")
        self._log.flush()

    def message(self, text: str) -> None:
        """Append ``text`` to train.log and print it (unless quiet), above any progress bar."""
        self.log(text)
        if self.echo:
            from tqdm import tqdm

            tqdm.write(text, file=sys.stdout)

    def step_losses(self, epoch: int, losses: Sequence[float]) -> None:
        """Per-step training losses of epoch ``epoch`` (0-based) at global steps."""
        if self._writer is None:
            return
        first = epoch * len(losses)
        for i, loss in enumerate(losses):
            self._writer.add_scalar("step/loss", float(loss), first + i + 1)

    def epoch(self, line: dict[str, Any], total_epochs: int) -> None:
        """One epoch's metrics (a metrics.jsonl line): a log line and ``epoch/*`` scalars."""
        n = int(line["epoch"])
        test = f" test acc {line['test_acc']:.2f}%" if "test_acc" in line else ""
        # Train accuracy here is counted on the fly while the weights change (on augmented
        # images where the run augments); the final one is measured afterwards, without either.
        self.message(f"epoch {n}/{total_epochs}: loss {line['loss']:.4f} train acc (during the "
                     f"epoch) {line['train_acc_augmented']:.2f}%{test} lr {line['lr']:.4g} "
                     f"{line['images_per_s']:.0f} img/s")
        if self._writer is not None:
            for key in EPOCH_SCALARS:
                if isinstance(line.get(key), (int, float)):
                    self._writer.add_scalar(f"epoch/{key}", float(line[key]), n)
            self._writer.flush()

    def result(self, result: dict[str, Any]) -> None:
        """The final evaluation: ``final/test_acc`` and ``final/train_acc`` (whole train split)."""
        epochs = int(result.get("epochs") or 0)
        if result.get("status") != "completed":
            self.message(f"{result.get('status')}: {result.get('message', '')}".rstrip(": "))
            return
        self.message(f"done: test acc {result['test_acc']:.2f}%, train acc "
                     f"{result['train_acc']:.2f}% ({self.run_dir})")
        if self._writer is not None:
            self._writer.add_scalar("final/test_acc", float(result["test_acc"]), epochs)
            self._writer.add_scalar("final/train_acc", float(result["train_acc"]), epochs)
            for i, acc in enumerate(result.get("test_acc_per_iter") or [], start=1):
                self._writer.add_scalar("final/test_acc_per_iter", float(acc), i)
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the log and the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._log.closed:
            self._log.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def capture_output(run_dir: str | os.PathLike) -> Iterator[None]:
    """Send everything this process writes to stdout/stderr (Python and C) to ``train.log``."""
    global _captured
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.open(path / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    saved = [os.dup(1), os.dup(2)]
    # Both levels: file descriptors for C code and child processes, sys.stdout/err for Python
    # (which a host such as Ray or pytest may have pointed elsewhere).
    text = open(path / LOG_FILE, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        _captured = True
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield
    finally:
        _captured = False
        text.close()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)


def eval_key(out: dict[str, Any]) -> str:
    """The key of an evaluation in eval.json: ``<split>/size<S>/iters1..<N>/first<L>/data<D>``
    (the parts that apply; ``data<D>``: other data than the run's, by fingerprint)."""
    parts = [str(out.get("split", "test"))]
    if out.get("maze_size") is not None:
        parts.append(f"size{out['maze_size']}")
    if out.get("acc_per_iter") is not None:
        parts.append(f"iters1..{len(out['acc_per_iter'])}")
    if out.get("samples_limit") is not None:
        parts.append(f"first{out['samples_limit']}")
    if out.get("data_digest") is not None:  # other data than the run's: never its own result
        parts.append(f"data{out['data_digest']}")
    return "/".join(parts)


def read_evals(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The evaluations in ``<run>/eval.json`` by :func:`eval_key` ({} without the file).

    Raises DataError (one line naming the file) when the file cannot be read as a JSON object.
    """
    path = Path(run_dir) / EVAL_FILE
    if not path.exists():
        return {}
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: unreadable ({reason}); run `recurdepth eval` on the run again")
    if not isinstance(table, dict):
        raise DataError(f"{path}: holds a JSON {type(table).__name__}, not a table of "
                        f"evaluations; run `recurdepth eval` on the run again")
    return table


def record_eval(run_dir: str | os.PathLike, out: dict[str, Any]) -> Path:
    """Add (or replace) one evaluation in ``<run>/eval.json``, keyed by :func:`eval_key`."""
    try:
        table = read_evals(run_dir)
    except DataError:
        table = {}  # a damaged file is replaced by one that holds this evaluation
    table[eval_key(out)] = {**out, "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return atomic_write_json(Path(run_dir) / EVAL_FILE, table)


__all__ = ["EVAL_FILE", "LOG_FILE", "TENSORBOARD_DIR", "Tracker", "capture_output", "eval_key",
           "read_evals", "record_eval"]
