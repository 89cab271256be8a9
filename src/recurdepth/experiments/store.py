"""The results database: one SQLite file per experiment, written only by the sweep driver.

Table ``experiment`` holds the experiment's name and its latest definition (spec hash, spec). A
database of another experiment, or one whose runs the experiment would now train differently (its
base config or rules changed), is refused before anything runs; adding trials or grid values
extends it. Table ``runs`` has one row per run: id,
name, grid values (JSON), resolved config (JSON), parameter count, status, result (JSON), error,
run folder (relative to the database), attempts and timestamps.

A write happens only when something changes, so rerunning a finished sweep leaves the file
byte-for-byte identical.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError, DataError
from recurdepth.io import current_umask
from recurdepth.experiments.spec import Experiment, RunSpec, canonical_json
from recurdepth.training.config import protocol_dict, stored_identity

SCHEMA_VERSION = "1"
DB_NAME = "results.sqlite"

# A finished run is never run again; any other status is (re)started by the next sweep.
FINISHED = ("completed", "diverged")
STATUSES = ("pending", "running", "completed", "diverged", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    params TEXT NOT NULL,
    config TEXT NOT NULL,
    parameters INTEGER,
    effective_depth INTEGER,
    status TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    error TEXT,
    run_dir TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT,
    started_at TEXT,
    finished_at TEXT
);
"""


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table, decoded."""

    id: str
    position: int
    name: str
    params: dict[str, Any]
    config: dict[str, Any]
    parameters: int | None
    effective_depth: int | None
    status: str
    result: dict[str, Any] | None
    error: str | None
    run_dir: Path
    attempts: int
    started_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        """True when the run completed or diverged (it will not run again)."""
        return self.status in FINISHED


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """The identity of a stored config (resolved then, or by an older version: resolved now)."""
    return stored_identity(config)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())


class ResultStore:
    """The SQLite results database of one experiment."""

    def __init__(self, path: str | Path, conn: sqlite3.Connection) -> None:
        self.path = Path(path)
        self.conn = conn

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, experiment: Experiment,
             runs: list[RunSpec] | None = None) -> ResultStore:
        """Open (or create) the database of ``experiment``; refuse one it does not match.

        ``runs`` is ``experiment.runs()`` when the caller has expanded it already.
        """
        path = Path(path)
        discard_unfinished(path)
        if path.exists():
            store = cls.open_existing(path)
            store.check_identity(experiment, runs)
            store._record_spec(experiment)
            return store
        _create(path, experiment)
        return cls.open_existing(path)

    def _record_spec(self, experiment: Experiment) -> None:
        """Store the experiment's latest definition (written only when it changed)."""
        rows = {"spec_hash": experiment.spec_hash, "spec": canonical_json(experiment.identity()),
                "description": experiment.description}
        meta = self.meta()
        if all(meta.get(k) == v for k, v in rows.items()):
            return
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO experiment VALUES (?, ?)",
                                  sorted(rows.items()))

    @classmethod
    def open_existing(cls, path: str | Path) -> ResultStore:
        """Open an existing results database (DataError if it is missing or not one of ours)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"results database {path} does not exist; run `recurdepth sweep` first")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise DataError(f"{path} is not a results database ({e})") from None
        if not {"experiment", "runs"} <= tables:
            conn.close()
            raise DataError(f"{path} is not a recurdepth results database (no experiment/runs "
                            f"tables)")
        return cls(path, conn)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn, self.path)

    def record_placement(self, text: str) -> None:
        """Store how the latest sweep placed its runs on the GPUs (the report shows it)."""
        with self._transaction():
            self.conn.execute("INSERT OR REPLACE INTO experiment VALUES (?, ?)",
                              ("placement", text))

    # -- identity --------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The experiment table as a dict (name, spec_hash, spec, schema_version, description,
        placement)."""
        return dict(self.conn.execute("SELECT key, value FROM experiment"))

    @property
    def experiment_name(self) -> str:
        """Name of the experiment this database belongs to."""
        return self.meta()["name"]

    def check_identity(self, experiment: Experiment, runs: list[RunSpec] | None = None) -> None:
        """ConfigError unless this database belongs to ``experiment`` and its runs still hold.

        A stored run whose grid values and trial the experiment still has must keep its identity
        (what it learns); new trials and grid values are welcome, and ``train.epochs`` may grow.
        """
        meta = self.meta()
        if meta.get("name") != experiment.name:
            raise ConfigError(
                f"results database {self.path} belongs to another experiment: "
                f"{meta.get('name')!r}, not {experiment.name!r}; use another --out folder, or "
                f"remove the database to start this experiment afresh")
        for rec, run in self._matched(experiment.runs() if runs is None else runs):
            if rec.id != run.run_id and _identity(rec.config) != protocol_dict(run.config):
                old, new = _identity(rec.config), protocol_dict(run.config)
                diff = "; ".join(f"{k}: {old.get(k)!r} in the database, {new.get(k)!r} now"
                                 for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
                raise ConfigError(
                    f"results database {self.path} holds run {rec.name} of {experiment.name!r} "
                    f"trained with another config ({diff}): the experiment's base config or "
                    f"rules changed. Use another --out folder, or remove the database to start "
                    f"this experiment afresh")

    def _matched(self, runs: Iterable[RunSpec]) -> list[tuple[RunRecord, RunSpec]]:
        """Stored runs paired with the experiment's run of the same grid values and trial."""
        by_params = {canonical_json(r.params): r for r in runs}
        return [(rec, by_params[key]) for rec in self.records()
                if (key := canonical_json(rec.params)) in by_params]

    # -- runs ------------------------------------------------------------------------------
    def sync_runs(self, runs: Iterable[RunSpec], run_dirs: dict[str, Path]) -> int:
        """Bring the database up to the experiment's runs; return how many runs were added.

        New runs are inserted as 'pending'; a stored run whose config changed only outside its
        identity (e.g. more epochs) gets the new config, and a run stored under an id of an
        older version of the identity keeps its folder under the current id. Nothing is
        written when nothing changed.
        """
        runs = list(runs)
        updates = []
        for rec, run in self._matched(runs):
            config = canonical_json(run.config.to_dict())
            if rec.id != run.run_id and _identity(rec.config) == protocol_dict(run.config):
                updates.append((run.run_id, config, rec.id))
            elif rec.id == run.run_id and canonical_json(rec.config) != config:
                updates.append((run.run_id, config, rec.id))
        if updates:
            with self._transaction():
                self.conn.executemany("UPDATE runs SET id=?, config=? WHERE id=?", updates)
        known = {r[0] for r in self.conn.execute("SELECT id FROM runs")}
        new = [(r, i) for i, r in enumerate(runs) if r.run_id not in known]
        if not new:
            return 0
        with self._transaction():
            self.conn.executemany(
                "INSERT INTO runs (id, position, name, params, config, parameters, effective_depth,"
                " status, run_dir, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                [(r.run_id, i, r.name, canonical_json(r.params), canonical_json(r.config.to_dict()),
                  r.parameters, r.effective_depth, self._relative(run_dirs[r.run_id]), _now())
                 for r, i in new])
        return len(new)

    def _relative(self, run_dir: Path) -> str:
        try:
            return str(Path(run_dir).resolve().relative_to(self.path.parent.resolve()))
        except ValueError:
            return str(Path(run_dir).resolve())

    def mark_running(self, run_id: str) -> None:
        """Record that a run started (one more attempt)."""
        with self._transaction():
            self.conn.execute("UPDATE runs SET status='running', attempts=attempts+1, "
                              "started_at=?, error=NULL WHERE id=?", (_now(), run_id))

    def record_result(self, run_id: str, result: dict[str, Any]) -> None:
        """Record a run's result dict; its ``status`` (completed / diverged) becomes the run's."""
        status = str(result.get("status", "completed"))
        if status not in FINISHED:
            status = "failed"
        with self._transaction():
            self.conn.execute("UPDATE runs SET status=?, result=?, error=NULL, finished_at=? "
                              "WHERE id=?", (status, canonical_json(result), _now(), run_id))

    def record_failure(self, run_id: str, error: str) -> None:
        """Record that a run failed with ``error``."""
        with self._transaction():
            self.conn.execute("UPDATE runs SET status='failed', error=?, finished_at=? WHERE id=?",
                              (error, _now(), run_id))

    def records(self) -> list[RunRecord]:
        """Every run of the database, in experiment order."""
        rows = self.conn.execute(
            "SELECT id, position, name, params, config, parameters, effective_depth, status, "
            "result, error, run_dir, attempts, started_at, finished_at FROM runs "
            "ORDER BY position, id").fetchall()
        return [RunRecord(id=r[0], position=r[1], name=r[2],
                          params=_json_column(r[3], "grid values", r[0], self.path),
                          config=_json_column(r[4], "config", r[0], self.path),
                          parameters=r[5], effective_depth=r[6], status=r[7],
                          result=_json_column(r[8], "result", r[0], self.path), error=r[9],
                          run_dir=self._absolute(r[10]), attempts=r[11], started_at=r[12],
                          finished_at=r[13]) for r in rows]

    def _absolute(self, run_dir: str) -> Path:
        p = Path(run_dir)
        return p if p.is_absolute() else self.path.parent / p

    def status_counts(self) -> dict[str, int]:
        """Number of runs per status."""
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status "
                                      "ORDER BY status"))


def discard_unfinished(path: str | Path) -> bool:
    """Remove a database whose creation never finished (empty file, or tables without identity
    nor runs, as older versions could leave); True if one was removed."""
    path = Path(path)
    if not unfinished(path):
        return False
    path.unlink()
    return True


def unfinished(path: str | Path) -> bool:
    """True if ``path`` is a database whose creation never finished (see discard_unfinished)."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.stat().st_size > 0:
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if tables != {"experiment", "runs"} and tables:
                    return False
                if tables and (conn.execute("SELECT COUNT(*) FROM experiment").fetchone()[0]
                               or conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]):
                    return False
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return False  # not ours to delete: open_existing reports it
    return True


def _create(path: Path, experiment: Experiment) -> None:
    """Write a new database beside ``path`` and rename it into place once complete.

    A process killed (or a disk filling up) part-way leaves only a temporary ``.results.sqlite.*
    .tmp`` file, which the next sweep of the folder removes; ``path`` is either absent or whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_new(path, experiment)
    except (sqlite3.OperationalError, OSError) as e:
        clear = write_error(path, e)
        if clear is None:
            raise
        raise clear from None


def _write_new(path: Path, experiment: Experiment) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would keep other readers out
    os.close(fd)
    tmp = Path(name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            rows = {"name": experiment.name, "spec_hash": experiment.spec_hash,
                    "description": experiment.description,
                    "spec": canonical_json(experiment.identity()),
                    "schema_version": SCHEMA_VERSION}
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany("INSERT INTO experiment VALUES (?, ?)", sorted(rows.items()))
            conn.execute("COMMIT")
        finally:
            conn.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            leftover.unlink(missing_ok=True)


def _json_column(value: str | None, what: str, run_id: str, path: Path) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise DataError(f"results database {path}: the {what} of run {run_id} is not valid JSON "
                        f"(edited or damaged); restore the file, or remove it and rerun the sweep "
                        f"(finished runs are read back from their run folders)") from None


def write_error(path: Path, error: BaseException) -> DataError | None:
    """A one-line DataError for a results database that could not be written for want of
    disk space (or a failing disk), else None."""
    full = (isinstance(error, sqlite3.OperationalError)
            and any(w in str(error) for w in ("full", "disk I/O"))) or (
        isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT))
    if not full:
        return None
    return DataError(f"cannot write the results database {path}: {error} (the disk is full or "
                     f"failing); free space on its disk and run the sweep again (finished runs "
                     f"are kept)")


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error): each update is atomic on disk."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: BaseException | None, *rest: object) -> None:
        if exc is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                raise write_error(self.path, e) or e from None
            return
        # SQLite itself rolls back on SQLITE_FULL; a second ROLLBACK would hide the cause.
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        clear = write_error(self.path, exc)
        if clear is not None:
            raise clear from None


__all__ = ["DB_NAME", "FINISHED", "STATUSES", "ResultStore", "RunRecord", "discard_unfinished",
           "unfinished"]
