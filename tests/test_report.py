"""Report: statistics, tables (Markdown + CSV), deterministic plots and the index page."""

from __future__ import annotations

import csv
import json
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


def test_a_report_never_overwrites_an_index_html_it_did_not_write(tmp_path, capsys):
    db, _ = make_db(tmp_path / "sweep")
    write_report(db, tmp_path / "ours")
    write_report(db, tmp_path / "ours")  # its own report is rewritten
    foreign = tmp_path / "site" / "index.html"
    foreign.parent.mkdir()
    foreign.write_text("<html><body>my lab's page</body></html>")
    assert main(["report", str(db), "--report-dir", str(foreign.parent)]) == 2
    err = capsys.readouterr().err
    assert "was not written by recurdepth: not overwriting it" in err and len(err.splitlines()) == 1
    assert foreign.read_text() == "<html><body>my lab's page</body></html>"
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["index.html"]


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
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist; give a sweep's output folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2  # the sweep folder is one level down
    assert "sweep folders inside it: " + str(tmp_path / "sweep") in capsys.readouterr().err


def test_report_without_saved_evaluations_shows_nothing_extra(tmp_path):
    db, _ = make_db(tmp_path)
    files = write_report(db)
    names = {p.name for p in tmp_path.joinpath("report").iterdir()}
    assert not {"evaluations.csv", "evaluations_per_iter.csv", "saved_evaluations.png"} & names
    assert files.warnings == [] and "Saved evaluations" not in files.index.read_text()


@pytest.fixture(scope="module")
def evaluated_sweep(tmp_path_factory):
    """A tiny real maze sweep (recurrent and feed-forward, 2 trials, trained on 3x3 mazes, which
    a tiny model partly solves) and `recurdepth eval` on some of its runs: more iterations on the
    own test set, 5x5 mazes, the train split."""
    from recurdepth.data.mazes import generate_dataset, maze_dir
    from recurdepth.experiments import run_sweep

    base = tmp_path_factory.mktemp("evaluated")
    data = base / "data"
    generate_dataset(maze_dir(data, 3), size=3, n_train=16, n_test=8, progress=False)
    generate_dataset(maze_dir(data, 5), size=5, n_train=1, n_test=10, progress=False)
    experiment = Experiment.from_dict({
        "name": "eval_report", "trials": 2,
        "base": {"model": {"family": "maze", "width": 8},
                 "data": {"name": "mazes", "maze_size": 3, "root": str(data)},
                 "optim": {"name": "adam", "lr": 0.005},
                 "train": {"epochs": 6, "batch_size": 4},
                 "runtime": {"device": "cpu", "progress": False}},
        "grid": {"model.mode": ["recurrent", "feedforward"], "model.effective_depth": [12]}})
    run_sweep(experiment, base / "out", progress=False)
    db = db_path_for(base / "out")
    with ResultStore.open_existing(db) as store:
        runs = {(r.config["model"]["mode"], r.params["trial"]): r for r in store.records()}
    assert {r.status for r in runs.values()} == {"completed"}
    evals = [(("recurrent", 0), ["--iters", "1..6"]),
             (("recurrent", 0), ["--iters", "1..6", "--maze-size", "5"]),
             (("recurrent", 1), ["--iters", "1..4", "--maze-size", "5"]),
             (("recurrent", 1), ["--data", "train"]),
             (("feedforward", 0), ["--maze-size", "5"])]
    for key, args in evals:
        assert main(["eval", str(runs[key].run_dir), *args]) == 0
    saved = {key: json.loads((r.run_dir / "eval.json").read_text())
             for key, r in runs.items() if (r.run_dir / "eval.json").exists()}
    return db, runs, saved


def _rows(path, **match):
    return [r for r in csv.DictReader(path.open()) if all(r[k] == v for k, v in match.items())]


def _cell(value):
    return "" if value is None else f"{value:.4f}"


def test_report_shows_saved_evaluations_equal_to_eval_json(evaluated_sweep, tmp_path, capsys):
    db, runs, saved = evaluated_sweep
    assert set(saved) == {("recurrent", 0), ("recurrent", 1), ("feedforward", 0)}
    rec0 = saved[("recurrent", 0)]
    own = rec0["test/size3/iters1..6"]["acc_per_iter"]
    big0 = rec0["test/size5/iters1..6"]["acc_per_iter"]
    big1 = saved[("recurrent", 1)]["test/size5/iters1..4"]["acc_per_iter"]
    train1 = saved[("recurrent", 1)]["train/size3/iters1..2"]
    ff_big = saved[("feedforward", 0)]["test/size5"]["acc"]
    result1 = runs[("recurrent", 1)].result["test_acc_per_iter"]
    assert len(result1) == 2  # trained iterations; the saved evaluation goes to 6

    files = write_report(db, tmp_path / "r")
    assert files.warnings == []
    folder = tmp_path / "r"
    steps = folder / "evaluations_per_iter.csv"
    # 5x5 mazes, recurrent: mean over the trials evaluated that far (2 up to 4, then 1).
    big = _rows(steps, mode="recurrent", maze_size="5")
    assert [r["iters"] for r in big] == ["1", "2", "3", "4", "5", "6"]
    assert [r["trials"] for r in big] == ["2"] * 4 + ["1"] * 2
    for i, row in enumerate(big):
        values = [big0[i]] + ([big1[i]] if i < 4 else [])
        mean = sum(values) / len(values)
        se = abs(values[0] - values[1]) / 2 if len(values) == 2 else None  # SE of two values
        assert (row["acc_mean"], row["acc_se"]) == (_cell(mean), _cell(se))
    own_rows = _rows(steps, mode="recurrent", maze_size="3", split="test")
    assert [r["acc_mean"] for r in own_rows] == [_cell(v) for v in own]
    train_rows = _rows(steps, split="train")
    assert [r["acc_mean"] for r in train_rows] == [_cell(v) for v in train1["acc_per_iter"]]

    summary = folder / "evaluations.csv"
    (ff,) = _rows(summary, mode="feedforward")
    assert (ff["maze_size"], ff["trials"], ff["acc_mean"], ff["max_iters"]) == (
        "5", "1", _cell(ff_big), "")
    (rec_big,) = _rows(summary, mode="recurrent", maze_size="5")
    assert (rec_big["trials"], rec_big["samples"], rec_big["max_iters"]) == ("2", "10", "6")
    assert rec_big["max_iters_acc_mean"] == _cell(big0[5])
    assert rec_big["best_acc_mean"] == _cell(max(r_ for r_ in
                                                 [float(r["acc_mean"]) for r in big]))
    md = (folder / "evaluations.md").read_text()
    assert "test split, mazes 5x5" in md and "train split, mazes 3x3" in md

    # The own test set extends the training's final evaluation: iterations 3..6 from trial 0.
    (group,) = [g for g in files.groups if g.mode == "recurrent"]
    stats = group.per_iter_stats()
    assert [s[0] for s in stats] == [1, 2, 3, 4, 5, 6]
    assert stats[4][1] == pytest.approx(own[4]) and stats[4][2] is None
    assert stats[0][1] == pytest.approx((own[0] + result1[0]) / 2)
    index = files.index.read_text()
    assert "saved_evaluations.png" in index and "evaluations_per_iter.csv" in index
    assert (folder / "saved_evaluations.svg").is_file()


def test_corrupt_or_stale_eval_json_is_a_warning_not_a_crash(evaluated_sweep, tmp_path, capsys):
    db, runs, saved = evaluated_sweep
    corrupt = runs[("feedforward", 1)].run_dir / "eval.json"
    stale_run = runs[("feedforward", 0)].run_dir / "eval.json"
    before = stale_run.read_text()
    try:
        corrupt.write_text("{not json")
        table = json.loads(before)
        table["test/size5"]["epoch"] = 0
        stale_run.write_text(json.dumps(table))
        assert main(["report", str(db), "--report-dir", str(tmp_path / "r")]) == 0
    finally:
        corrupt.unlink()
        stale_run.write_text(before)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(err) == 2
    assert any(str(corrupt) in ln and "unreadable" in ln for ln in err)
    assert any(str(stale_run) in ln and "evaluated epoch 0" in ln for ln in err)
    assert not _rows(tmp_path / "r" / "evaluations.csv", mode="feedforward")
    assert _rows(tmp_path / "r" / "evaluations.csv", mode="recurrent")


def test_saved_evaluations_of_some_runs_are_averaged_per_iteration(tmp_path):
    """Hand-made eval.json files (as `recurdepth eval` writes them) on two of the eight runs."""
    from recurdepth.training.tracking import record_eval

    db, runs = make_db(tmp_path)
    by_key = {(r.config.model.mode, r.effective_depth, r.params["trial"]): r for r in runs}
    dirs = run_dirs_for(runs, tmp_path)
    t0, t1 = (dirs[by_key[("recurrent", 8, t)].run_id] for t in (0, 1))
    for d in (t0, t1):
        d.mkdir(parents=True)

    def saved(run_dir, per_iter, acc, maze_size):
        record_eval(run_dir, {"run_dir": str(run_dir), "split": "test", "epoch": 2,
                              "data": "mazes", "trained_iters": 1, "samples": 20,
                              "maze_size": maze_size, "acc_per_iter": per_iter, "acc": acc})

    # Trial 0's own test set (5x5) to 5 iterations; its final evaluation had [15, 30, 31].
    saved(t0, [15.0, 30.0, 31.0, 29.0, 28.0], 15.0, 5)
    saved(t0, [9.0, 9.0], 9.0, 7)  # superseded by the longer evaluation below
    saved(t0, [1.0, 2.0, 3.0, 5.0], 1.0, 7)
    saved(t1, [3.0, 6.0], 3.0, 7)
    files = write_report(db)
    folder = tmp_path / "report"
    assert files.warnings == []
    steps = list(csv.DictReader((folder / "evaluations_per_iter.csv").open()))
    assert {(r["effective_depth"], r["mode"]) for r in steps} == {("8", "recurrent")}
    big = [(r["iters"], r["trials"], r["acc_mean"], r["acc_se"]) for r in steps
           if r["maze_size"] == "7"]
    # mean and SE of (1, 3) = 2, 1; of (2, 6) = 4, 2; then trial 0 alone.
    assert big == [("1", "2", "2.0000", "1.0000"), ("2", "2", "4.0000", "2.0000"),
                   ("3", "1", "3.0000", ""), ("4", "1", "5.0000", "")]
    rows = {r["maze_size"]: r for r in csv.DictReader((folder / "evaluations.csv").open())}
    assert (rows["7"]["acc_mean"], rows["7"]["acc_se"], rows["7"]["trials"]) == (
        "2.0000", "1.0000", "2")
    assert (rows["7"]["max_iters"], rows["7"]["best_iters"], rows["7"]["best_acc_mean"]) == (
        "4", "4", "5.0000")
    assert rows["5"]["max_iters_acc_mean"] == "28.0000"
    # The final evaluations ([15, 30, 31], [17, 34, 35]) extended by trial 0's saved one.
    (g,) = [g for g in files.groups if (g.mode, g.effective_depth) == ("recurrent", 8)]
    assert [(i, m) for i, m, _, _ in g.per_iter_stats()] == [
        (1, 16.0), (2, 32.0), (3, 33.0), (4, 29.0), (5, 28.0)]
    (other,) = [g for g in files.groups if (g.mode, g.effective_depth) == ("recurrent", 12)]
    assert other.evals == {} and len(other.per_iter_stats()) == 3


def test_report_thinking_longer_section_matches_recurdepth_eval(evaluated_sweep, tmp_path):
    from recurdepth.report.thinking import MULT, thinking_longer

    db, runs, saved = evaluated_sweep
    files = write_report(db, tmp_path / "r")
    assert "## Thinking longer" in files.index.read_text()
    rows = list(csv.DictReader((tmp_path / "r" / "thinking_longer.csv").open()))
    assert [(r["family"], r["effective_depth"], r["runs"]) for r in rows] == [("maze", "12", "2")]
    assert rows[0]["path_cosine_zeros"] == ""  # the maze unit does not see the input
    assert (tmp_path / "r" / "thinking_longer.png").is_file()
    # Its accuracy per iteration is what `recurdepth eval --iters 1..6` measured (another path).
    with ResultStore.open_existing(db) as store:
        section = thinking_longer(store.records(), tmp_path, title="test")
    rec0 = section.results[runs[("recurrent", 0)].name]
    assert rec0.iters == MULT * 2
    assert rec0.accuracy[:6] == pytest.approx(saved[("recurrent", 0)]["test/size3/iters1..6"]
                                              ["acc_per_iter"], abs=1e-9)
