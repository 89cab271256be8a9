"""`recurdepth reproduce`: seeds and output folders, bad input, and determinism on one machine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from recurdepth.cli import main
from recurdepth.cli.reproduce import default_out, with_base_seed
from recurdepth.experiments import Experiment, ResultStore, load_experiment
from recurdepth.experiments.sweep import db_path_for, run_dirs_for
from recurdepth.training.checkpoint import load_checkpoint

TINY = """\
name: tiny_reproduce
trials: 2
base:
  seed: 3
  model: {family: maze, width: 4}
  data: {name: mazes, maze_size: 5, train_limit: 40, test_limit: 20}
  optim: {name: adam, recur_lr_divide: false, lr: 0.005, weight_decay: 0.0, warmup_epochs: 0}
  train: {epochs: 2, batch_size: 10, eval_every: 1, eval_iters: 2x}
  runtime: {device: cpu, progress: false}
grid:
  model.mode: [recurrent, feedforward]
  model.effective_depth: [12]
prepare:
  mazes: {n_train: 40, n_test: 20, seed: 3}
"""


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_default_folders_and_base_seed():
    exp = load_experiment("reproduce")
    assert default_out(exp, "reproduce", None, 0) == Path("reproduce")
    assert default_out(exp, "reproduce", 0, 0) == Path("reproduce")
    assert default_out(exp, "reproduce", 100, 0) == Path("reproduce/seed-100")
    quick = load_experiment("quick")
    assert default_out(quick, "quick", None, 0) == Path("reproduce/quick")
    assert default_out(quick, "quick", 7, 0) == Path("reproduce/quick/seed-7")
    seeded = with_base_seed(quick, 100)
    assert seeded.spec_hash != quick.spec_hash  # its own experiment: results never mix
    assert sorted({r.config.seed for r in seeded.runs()}) == [100, 101]
    assert seeded.prepare["mazes"]["seed"] == 100 and quick.prepare["mazes"]["seed"] == 0


def test_full_variant_trains_the_deeper_solvers_twice_as_long():
    default = {(r.config.model.mode, r.effective_depth, r.config.seed): r.config
               for r in load_experiment("reproduce").runs()}
    full = {(r.config.model.mode, r.effective_depth, r.config.seed): r.config
            for r in load_experiment("reproduce_full").runs()}
    # Depth 8 (one iteration: both modes are the same network) is trained once, as recurrent.
    assert full.keys() == default.keys() and len(full) == 15
    assert {k for k in full if k[1] == 8} == {("recurrent", 8, s) for s in (0, 1, 2)}
    assert default_out(load_experiment("reproduce_full"), "reproduce_full", None, 0) == Path(
        "reproduce/reproduce_full")
    for key, cfg in full.items():
        short = default[key]
        if key[1] == 8:  # one iteration: plateaus early in both variants
            assert (cfg.train.epochs, cfg.optim.milestones) == (15, [10])
        else:
            assert cfg.train.epochs == 60 and cfg.optim.milestones == [45]
            # The default gives depth 12 the time depth 8's second mode used to take.
            assert (short.train.epochs, short.optim.milestones) == (
                (30, [20]) if key[1] == 16 else (35, [25]))
        same = lambda c: (c.model, c.data.options, c.data.train_limit, c.optim.lr, c.seed)
        assert same(cfg) == same(short)


def test_bad_seed_and_unknown_preset_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--seed", "abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("recurdepth reproduce: error: --seed must be a whole number >= 0 "
                   "(e.g. --seed 100), got 'abc'")
    assert main(["reproduce", "--seed", "-4"]) == 2
    assert "--seed must be a whole number" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "fig9_nothing"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown preset 'fig9_nothing'; valid choices:" in err
    assert "fig2_cifar10" in err and "quick" in err and "mazes_cka" in err
    # A near miss of an analysis preset is suggested like an experiment preset's.
    assert main(["reproduce", "--preset", "mazes_ck"]) == 2
    assert "(did you mean 'mazes_cka'?)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_folder_of_another_experiment_is_refused_untouched(tmp_path, capsys):
    other = Experiment.from_dict({
        "name": "someone_else", "base": {"model": {"family": "maze", "width": 4},
                                         "data": {"name": "mazes", "maze_size": 5}},
        "grid": {"model.effective_depth": [8]}})
    runs = other.runs()
    with ResultStore.open(db_path_for(tmp_path), other) as store:
        store.sync_runs(runs, run_dirs_for(runs, tmp_path))
    (tmp_path / "notes.txt").write_text("keep me")
    before = tree_digest(tmp_path)
    assert main(["reproduce", "--quick", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "belongs to another experiment: 'someone_else'" in err and "--out" in err
    assert tree_digest(tmp_path) == before


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same small experiment run twice from scratch (own data each time), two at a time."""
    base = tmp_path_factory.mktemp("determinism")
    preset = base / "tiny.yaml"
    preset.write_text(TINY)
    outs = []
    for name in ("a", "b"):
        out = base / name
        rc = main(["reproduce", "--preset", str(preset), "--out", str(out), "--data-root",
                   str(base / f"data_{name}"), "--max-parallel", "2", "--no-progress"])
        assert rc == 0
        outs.append(out)
    return outs


def _results(out: Path) -> dict[str, dict]:
    with ResultStore.open_existing(db_path_for(out)) as store:
        return {r.name: r for r in store.records()}


@pytest.mark.slow
def test_same_command_gives_same_accuracies_and_weights(two_runs):
    a, b = (_results(out) for out in two_runs)
    assert sorted(a) == sorted(b) and len(a) == 4
    for name, rec in a.items():
        ra, rb = rec.result, b[name].result
        assert rec.status == b[name].status == "completed"
        for key in ("test_acc", "train_acc", "test_acc_per_iter", "curve"):
            assert ra[key] == rb[key], (name, key)
        sa = load_checkpoint(rec.run_dir / "checkpoint_last.pt")["model"]
        sb = load_checkpoint(b[name].run_dir / "checkpoint_last.pt")["model"]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name


@pytest.mark.slow
def test_reproduce_prints_table_verdict_and_thinks_longer(two_runs, capsys):
    out = two_runs[0]
    recs = _results(out)
    for rec in recs.values():
        assert [p["epoch"] for p in rec.result["curve"]] == [1, 2]
        assert all("train_acc" in p and "test_acc" in p for p in rec.result["curve"])
        if rec.config["model"]["mode"] == "recurrent":  # depth 12 = 2 iterations, 2x → 4
            assert len(rec.result["test_acc_per_iter"]) == 4
            resolved = (rec.run_dir / "config.yaml").read_text().split("resolved:")[1]
            assert json.loads(resolved.replace("'", '"').split("eval_iters:")[1].split()[0]) == 4
        assert rec.config["seed"] in (3, 4)
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "depth 12:" in text and "Overall:" in text and "convergence, recurrent, depth 12" in text
    page = (out / "report" / "index.md").read_text()
    assert "## Verdict" in page and "learning_curves.png" in page
