"""One run identity with the real training: more trials and epochs extend a sweep, resume exactly."""

from __future__ import annotations

import json

import torch

from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.experiments import Experiment, ResultStore, run_sweep
from recurdepth.experiments.sweep import db_path_for
from recurdepth.training.checkpoint import load_checkpoint


def experiment(root, *, trials: int, epochs: int) -> Experiment:
    return Experiment.from_dict({
        "name": "grow", "trials": trials,
        "base": {"seed": 3, "model": {"family": "maze", "width": 4, "effective_depth": 8},
                 "data": {"name": "mazes", "maze_size": 5, "root": str(root)},
                 "train": {"epochs": epochs, "batch_size": 10},
                 "runtime": {"device": "cpu", "progress": False, "threads": 1}},
        "grid": {"model.mode": ["recurrent"]},
    })


def epochs_in(run_dir) -> list[int]:
    return [json.loads(ln)["epoch"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_sweep_gaining_a_trial_and_epochs_trains_only_what_is_new(tmp_path):
    root = tmp_path / "data"
    generate_dataset(maze_dir(root, 5), size=5, n_train=30, n_test=10, progress=False)
    out = tmp_path / "out"
    first = run_sweep(experiment(root, trials=1, epochs=1), out, progress=False)
    assert (first.total, first.ran) == (1, 1)
    with ResultStore.open_existing(db_path_for(out)) as store:
        (t0,) = store.records()
    first_line = (t0.run_dir / "metrics.jsonl").read_text().splitlines()[0]

    grown = run_sweep(experiment(root, trials=2, epochs=2), out, progress=False)
    assert (grown.total, grown.skipped, grown.ran, grown.failures) == (2, 0, 2, [])
    with ResultStore.open_existing(db_path_for(out)) as store:
        recs = {r.name: r for r in store.records()}
    assert sorted(recs) == ["recurrent-t0", "recurrent-t1"]
    old, new = recs["recurrent-t0"], recs["recurrent-t1"]
    assert (old.id, old.run_dir) == (t0.id, t0.run_dir)  # the finished run is kept and extended
    assert epochs_in(old.run_dir) == [1, 2] and epochs_in(new.run_dir) == [1, 2]
    # Epoch 1 was not trained again: its metrics line is the one the first sweep wrote.
    assert (old.run_dir / "metrics.jsonl").read_text().splitlines()[0] == first_line
    env = json.loads((old.run_dir / "env.json").read_text())
    assert env["resumed_from_epoch"] == 1
    assert old.result["epochs"] == 2 and old.config["train"]["epochs"] == 2

    # Extending is exact: a fresh two-epoch run of the same config ends with the same weights.
    fresh = run_sweep(experiment(root, trials=1, epochs=2), tmp_path / "fresh", progress=False)
    assert fresh.ran == 1
    with ResultStore.open_existing(db_path_for(tmp_path / "fresh")) as store:
        (ref,) = store.records()
    assert ref.id == old.id
    a = load_checkpoint(old.run_dir / "checkpoint_last.pt")["model"]
    b = load_checkpoint(ref.run_dir / "checkpoint_last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert old.result["test_acc"] == ref.result["test_acc"]

    # Nothing left to do: the rerun trains nothing.
    again = run_sweep(experiment(root, trials=2, epochs=2), out, progress=False)
    assert (again.skipped, again.ran) == (2, 0)


# Run folders made with main's code before data options existed (b08f57d): a tiny maze run with the maze
# keys that moved into data.options, and a classification run; the hashes are the ones main
# computed for them (the 8 hex digits in their default names agree).
STORED_RUNS = {
    "maze_5x5": "506f1e6ab2e35d986b69a6ab2f96b2978694dbbe80e4338931d658bd1ed4d9c3",
    "cifar10_residual": "fd490edccdd2e164dbd54eb5b6647080e206224e4cf73c6eee088f28b732c7f2",
}


def test_runs_made_before_keep_their_identity():
    from pathlib import Path

    import yaml

    from recurdepth.training.config import RunConfig, identity_hash, resolve_on

    fixtures = Path(__file__).parent / "fixtures" / "runs"
    for name, expected in STORED_RUNS.items():
        saved = yaml.safe_load((fixtures / name / "config.yaml").read_text())
        resolved = RunConfig.from_dict(saved["resolved"])
        assert identity_hash(resolved) == expected, name
        assert resolved.name.endswith(expected[:8])
        # Resolving what was asked for again gives the same identity and the same name.
        again = resolve_on(RunConfig.from_dict(saved["requested"]), "cpu")
        assert identity_hash(again) == expected, name
        assert again.name == resolved.name
