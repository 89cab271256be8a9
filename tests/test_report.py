"""Report: statistics, tables (Markdown + CSV), deterministic plots and the index page."""

from __future__ import annotations

import csv
import hashlib
import math
import statistics

import pytest

from recurdepth.cli import main
from recurdepth.experiments import Experiment, ResultStore
from recurdepth.experiments.sweep import db_path_for, run_dirs_for
from recurdepth.report import write_report
from recurdepth.report.results import fmt_acc, mean_se

# test accuracies per (mode, effective depth) and trial; None = the trial failed.
ACCS = {("recurrent", 8): [30.0, 34.0], ("recurrent", 12): [50.0, 56.0],
        ("feedforward", 8): [31.0, 33.0], ("feedforward", 12): [55.0, None]}


def make_db(folder):
    experiment = Experiment.from_dict({
        "name": "report_test", "trials": 2,
        "base": {"model": {"family": "maze", "width": 4}, "data": {"name": "mazes", "maze_size": 5}},
        "grid": {"model.mode": ["recurrent", "feedforward"], "model.effective_depth": [8, 12]}})
    runs = experiment.runs()
    db = db_path_for(folder)
    with ResultStore.open(db, experiment) as store:
        store.sync_runs(runs, run_dirs_for(runs, folder))
        for r in runs:
            acc = ACCS[(r.config.model.mode, r.effective_depth)][r.params["trial"]]
            store.mark_running(r.run_id)
            if acc is None:
                store.record_failure(r.run_id, "RuntimeError: out of memory\ntraceback ...")
                continue
            per_iter = ([acc / 2, acc, acc + 1] if r.config.model.mode == "recurrent" else None)
            store.record_result(r.run_id, {"status": "completed", "test_acc": acc,
                                           "train_acc": acc + 10, "test_acc_per_iter": per_iter,
                                           "parameters": r.parameters, "iters": r.iters,
                                           "effective_depth": r.effective_depth})
    return db, runs


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_mean_and_standard_error_match_the_statistics_module():
    values = [30.0, 34.0, 41.0]
    mean, se = mean_se(values)
    assert mean == pytest.approx(statistics.mean(values))
    assert se == pytest.approx(statistics.stdev(values) / math.sqrt(3))
    assert mean_se([5.0]) == (5.0, None) and mean_se([]) == (None, None)
    assert fmt_acc(93.994, 0.1) == "93.99 ± 0.10" and fmt_acc(None, None) == "–"


def test_tables_hold_mean_se_and_parameter_counts(tmp_path):
    db, runs = make_db(tmp_path)
    files = write_report(db)
    folder = tmp_path / "report"
    assert files.index == folder / "index.md"
    rows = list(csv.DictReader((folder / "depth_table.csv").open()))
    assert [r["effective_depth"] for r in rows] == ["8", "12"]
    d8, d12 = rows
    # recurrent depth 8: mean 32, SE = stdev([30, 34]) / sqrt(2) = 2
    assert (d8["recurrent_acc_mean"], d8["recurrent_acc_se"]) == ("32.0000", "2.0000")
    assert (d12["feedforward_acc_mean"], d12["feedforward_acc_se"]) == ("55.0000", "")
    assert d12["feedforward_trials"] == "1"
    params = {(r.config.model.mode, r.effective_depth): r.parameters for r in runs}
    assert d12["recurrent_parameters"] == str(params[("recurrent", 12)])
    assert d12["feedforward_parameters"] == str(params[("feedforward", 12)])
    assert params[("feedforward", 12)] > params[("recurrent", 12)]
    md = (folder / "depth_table.md").read_text()
    assert "| mazes 5x5 · maze | 8 | 32.00 ± 2.00 | 32.00 ± 1.00 |" in md
    assert f"{params[('feedforward', 12)]:,}" in md
    results = (folder / "results.md").read_text()
    assert "1/2" in results and "42.00 ± 2.00" in results  # train acc of recurrent depth 8
    runs_md = (folder / "runs.md").read_text()
    assert "RuntimeError: out of memory" in runs_md and "traceback" not in runs_md
    model_md = (folder / "model_table.md").read_text()
    assert "maze (recurrent)" in model_md and "maze (feed-forward)" in model_md
    index = files.index.read_text()
    for name in ("accuracy_vs_depth.png", "accuracy_vs_iterations.png", "depth_table.csv",
                 "results.md", "runs.csv"):
        assert name in index
    assert "7 completed, 1 failed" in index
    page = files.index_html.read_text()
    assert "<img src='data:image/png;base64," in page and "accuracy_vs_depth.svg" in page


def test_report_is_deterministic_and_plots_carry_no_date(tmp_path):
    db, _ = make_db(tmp_path)
    write_report(db, tmp_path / "a")
    write_report(db, tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    png = (tmp_path / "a" / "accuracy_vs_depth.png").read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"Creation" not in png
    assert (tmp_path / "a" / "accuracy_vs_iterations.png").is_file()


def test_report_cli_finds_the_database_by_file_folder_or_experiment(tmp_path, capsys,
                                                                     monkeypatch):
    db, _ = make_db(tmp_path / "sweep")
    assert main(["report", str(db)]) == 0
    assert main(["report", str(tmp_path / "sweep"), "--report-dir", str(tmp_path / "r2")]) == 0
    assert (tmp_path / "r2" / "index.html").is_file()
    out = capsys.readouterr().out
    assert "index:" in out
    monkeypatch.chdir(tmp_path)
    assert main(["report", "quick"]) == 2  # no sweep of quick under runs/quick
    assert "run `recurdepth sweep quick` first" in capsys.readouterr().err
    assert main(["report", "no_such_preset"]) == 2
    assert "unknown experiment preset" in capsys.readouterr().err
