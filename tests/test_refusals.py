"""Inputs that must be refused in one line instead of being silently misread: a
report of another experiment's folder, an empty preset, zero parallel runs, a truncated
learning curve on resume, a damaged checkpoint RNG state, a full disk under the database."""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

import pytest

from cli_run import run_cli
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.experiments import store as store_module
from recurdepth.experiments.spec import load_experiment
from recurdepth.experiments.store import ResultStore
from recurdepth.experiments.sweep import db_path_for
from recurdepth.report import find_db
from recurdepth.training.checkpoint import load_checkpoint, save_checkpoint


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("usage:")
             and not ln.startswith(" ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    generate_dataset(maze_dir(root, 5), size=5, n_train=24, n_test=12, seed=0, progress=False)
    return root


def test_report_refuses_the_folder_of_another_experiment(tmp_path, capsys):
    out = tmp_path / "quick_out"
    with ResultStore.open(db_path_for(out), load_experiment("quick")):
        pass
    code, _, err = run_cli(["report", "fig5_mazes_small", "--out", str(out)], capsys)
    assert code == 2 and "'quick', not 'fig5_mazes_small'" in _one_line(err)
    assert not (out / "report").exists()
    assert find_db("quick", out) == db_path_for(out)  # its own experiment is found


@pytest.mark.parametrize("argv", [["reproduce", "--preset", ""], ["reproduce", "--preset", " "]])
def test_reproduce_refuses_an_empty_preset(argv, tmp_path, capsys):
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--preset needs a name" in _one_line(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_max_parallel_must_be_positive(command, value, tmp_path, capsys):
    argv = [command, *(["quick"] if command == "sweep" else ["--quick"]),
            "--max-parallel", value, "--out", str(tmp_path / "o")]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "--max-parallel" in _one_line(err) and ">= 1" in err
    assert not (tmp_path / "o").exists()


def _train(run_dir: Path, data_root: Path, epochs: int, capsys) -> tuple[int, str, str]:
    return run_cli(["train", "--quiet", "--run-dir", str(run_dir), "model.family=maze",
                 "model.width=4", "model.effective_depth=8", f"data.root={data_root}",
                 "data.maze_size=5", "optim.name=adam", "optim.warmup_epochs=0",
                 "train.batch_size=12", f"train.epochs={epochs}", "train.eval_every=1"], capsys)


@pytest.mark.parametrize("kept", [1, 0], ids=["truncated", "emptied"])
def test_resume_refuses_a_truncated_learning_curve(kept, data_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, data_root, 2, capsys)[0] == 0
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2]
    metrics.write_text("".join(f"{ln}\n" for ln in lines[:kept]))
    before = metrics.read_text()
    code, _, err = _train(run, data_root, 3, capsys)
    missing = "2" if kept else "1, 2"
    assert code == 2 and f"lacks the metrics of epoch(s) {missing}" in _one_line(err)
    assert metrics.read_text() == before  # nothing rewritten
    assert json.loads((run / "result.json").read_text())["epochs"] == 2


def test_damaged_rng_state_names_the_checkpoint(data_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, data_root, 1, capsys)[0] == 0
    path = run / "checkpoint_last.pt"
    ckpt = load_checkpoint(path)
    ckpt["rng"]["python"] = [1, 2]  # a state random.setstate cannot take
    save_checkpoint(path, ckpt)
    code, _, err = _train(run, data_root, 2, capsys)
    line = _one_line(err)
    assert code == 2 and str(path) in line and "damaged" in line and "report" not in line


class _FullDisk(sqlite3.Connection):
    """A connection whose inserts fail as on a full disk (SQLite has rolled back already)."""

    def execute(self, sql, *args):  # noqa: ANN001, ANN201 - sqlite3's own signature
        if sql.lstrip().upper().startswith("INSERT"):
            if self.in_transaction:
                super().execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)

    def executemany(self, sql, *args):  # noqa: ANN001, ANN201
        return self.execute(sql)


@pytest.mark.parametrize("existing", [False, True], ids=["creating", "recording"])
def test_full_disk_under_the_database_is_one_clear_line(existing, data_root, tmp_path,
                                                        monkeypatch, capsys):
    out = tmp_path / "out"
    if existing:
        with ResultStore.open(db_path_for(out), load_experiment("quick")):
            pass
    monkeypatch.setattr(store_module.sqlite3, "connect",
                        functools.partial(sqlite3.connect, factory=_FullDisk))
    code, _, err = run_cli(["sweep", "quick", "--out", str(out), "--data-root", str(data_root),
                         "--no-progress"], capsys)
    line = _one_line(err)
    assert code == 2 and "results database" in line and "disk is full" in line, err
    assert "rollback" not in line
    assert db_path_for(out).exists() == existing  # a half-made database is never left


def test_an_option_of_a_variant_family_names_the_variant(capsys) -> None:
    """recall belongs to maze_recall, the maze family's registered variant: the refusal says so."""
    code, _, err = run_cli(["train", "--print-config", "model.family=maze",
                            "model.options.recall=true"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "valid options: none (model.family=maze_recall has recall)" in err
