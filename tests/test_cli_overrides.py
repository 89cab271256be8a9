"""Overrides anywhere among the options, on sweep, as multirun; presets; one-line errors."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from recurdepth.cli import main
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.experiments.spec import load_experiment


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_overrides_before_and_after_options(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"family": "maze", "effective_depth": 8}}))
    code = main(["train", "--config", str(cfg), "optim.lr=0.02", "--run-dir", str(tmp_path / "x"),
                 "seed=7", "--print-config", "train.epochs=3"])
    assert code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.02 and printed["seed"] == 7
    assert printed["train"]["epochs"] == 3 and printed["model"]["effective_depth"] == 8


def test_a_stray_word_is_still_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--run-dir", str(tmp_path / "x"), "seed=1", "--print-config", "oops"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: oops" in capsys.readouterr().err


def test_sweep_overrides_reach_every_run_and_win_over_grid_and_rules():
    base = load_experiment("quick")
    changed = base.with_overrides(["train.epochs=1", "model.effective_depth=8", "optim.lr=0.5"],
                                  trials=1)
    runs = changed.runs()
    # quick: modes x depths {8, 12} x 2 trials; depth pinned to 8 and one trial -> 2 runs
    assert len(runs) == 2 and {r.config.model.mode for r in runs} == {"recurrent", "feedforward"}
    assert all(r.config.train.epochs == 1 and r.config.optim.lr == 0.5 for r in runs)
    assert all(r.config.model.effective_depth == 8 for r in runs)
    assert changed.name.startswith("quick-o") and changed.spec_hash != base.spec_hash
    axis = base.with_overrides(["model.width=4,6"], trials=1).runs()
    assert len(axis) == 8 and {r.config.model.width for r in axis} == {4, 6}
    # Trials do not change what a run learns: they keep the experiment (and its database).
    assert base.with_overrides([], trials=3).name == "quick"
    assert changed.name == base.with_overrides(
        ["train.epochs=1", "model.effective_depth=8", "optim.lr=0.5"], trials=3).name


def test_sweep_cli_overrides_and_trials(tmp_path, capsys):
    assert main(["sweep", "quick", "train.epochs=1", "--trials", "1", "--dry-run",
                 "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "4 runs (1 trial(s) each)" in out and "quick-o" in out


@pytest.mark.parametrize("argv, expected", [
    (["sweep", "quick", "train.bogus=1", "--dry-run"], "unknown config key 'train.bogus'; valid "
                                                       "choices: model.family"),
    (["sweep", "quick", "--dry-run", "model.effective_depth=8,x"], "malformed multirun value"),
    (["train", "--print-config", "seed=0,,2"], "malformed multirun value 'seed=0,,2': empty item"),
    (["train", "--print-config", "seed=0,x"], "'x' is not a valid int for seed"),
    (["presets", "show", "nope"], "unknown preset 'nope'; valid choices: "),
    (["presets", "show"], "needs a preset name; valid choices: "),
])
def test_bad_input_is_one_line_with_the_choices(argv, expected, capsys):
    assert main(argv) == 2
    assert expected in one_line_error(capsys)


def test_presets_list_and_show(capsys):
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out
    experiments, analyses = listed.split("\n\nanalyses of the paper")
    assert "\n  fig2_cifar10 " in experiments and "\n  quick " in experiments
    assert "\n  table3_probes " in analyses and "\n  quick " not in analyses
    assert main(["presets", "show", "quick"]) == 0
    shown = capsys.readouterr().out
    body = yaml.safe_load(shown.split("\n", 1)[1])
    assert body["name"] == "quick" and body["description"].strip() == load_experiment("quick").description
    assert main(["presets", "show", "fig6_reuse"]) == 0
    body = yaml.safe_load(capsys.readouterr().out.split("\n", 1)[1])
    assert body["of"] == "fig2_cifar10" and body["analysis"] == "reuse"


def test_multirun_train_runs_the_product_as_a_sweep(tmp_path, capsys):
    root = tmp_path / "data"
    generate_dataset(maze_dir(root, 5), size=5, n_train=10, n_test=4, progress=False)
    common = ["model.family=maze", "model.width=4", f"data.root={root}", "data.maze_size=5",
              "train.epochs=1", "train.batch_size=5", "runtime.device=cpu", "optim.name=adam",
              "runtime.progress=false"]
    assert main(["train", "seed=0,1,2", "model.effective_depth=8,12", "--print-config",
                 *common]) == 0
    table = capsys.readouterr().out
    assert "6 runs (1 trial(s) each)" in table and "seed2-d12-t0" in table

    out = tmp_path / "multi"
    assert main(["train", "seed=3,4", "--run-dir", str(out), "model.effective_depth=8",
                 "--quiet", *common]) == 0
    text = capsys.readouterr().out
    assert "2 runs, 0 already finished, 2 run now (2 completed)" in text
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT config, status FROM runs").fetchall()
    assert sorted(json.loads(c)["seed"] for c, _ in rows) == [3, 4]
    assert {s for _, s in rows} == {"completed"}


def test_list_valued_keys_take_bare_items_and_sweep_bracketed_lists(capsys):
    from recurdepth.training.config import is_multirun, load_config, parse_multirun

    for text in ("optim.milestones=10,20", "optim.milestones=[10,20]", "optim.milestones=10, 20"):
        assert not is_multirun(text)
        assert load_config(None, [text]).optim.milestones == [10, 20]
    assert load_config(None, ["optim.milestones=15"]).optim.milestones == [15]
    assert load_config(None, ["optim.milestones=[]"]).optim.milestones == []
    assert is_multirun("optim.milestones=[10],[10,20]")
    assert parse_multirun("optim.milestones=[10],[10,20]") == ("optim.milestones", [[10], [10, 20]])
    assert is_multirun("optim.lr=0.1,0.2") and not is_multirun("model.options={a: 1, b: 2}")
    assert main(["train", "--print-config", "model.effective_depth=8",
                 "optim.milestones=[5],[5,10]"]) == 0
    table = capsys.readouterr().out
    assert "2 runs (1 trial(s) each)" in table
    assert "milestones5-t0" in table and "milestones5+10-t0" in table
    assert main(["train", "--print-config", "optim.milestones=a,b"]) == 2
    assert one_line_error(capsys).endswith(
        "optim.milestones[0]: expected int, got 'a'; write optim.milestones=10,20 or "
        "optim.milestones=[10,20] for one list, optim.milestones=[10],[10,20] for one run per "
        "list")


def test_a_mistyped_key_or_choice_gets_did_you_mean(capsys):
    assert main(["train", "--print-config", "optim.lrr=0.1"]) == 2
    assert "unknown config key 'optim.lrr' (did you mean 'optim.lr'?); valid choices: " \
           "model.family" in one_line_error(capsys)
    assert main(["train", "--print-config", "trian.epochs=3"]) == 2
    assert "(did you mean 'train.epochs'?)" in one_line_error(capsys)
