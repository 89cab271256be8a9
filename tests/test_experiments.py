"""Experiments: expansion, validation, results database, executors (with a cheap train function)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import yaml

from recurdepth.cli import main
from recurdepth.errors import ConfigError, DataError
from recurdepth.experiments import (
    Experiment,
    LocalExecutor,
    ResultStore,
    list_presets,
    load_experiment,
    run_sweep,
)
from recurdepth.experiments.spec import preset_path
from recurdepth.experiments.sweep import db_path_for

CALLS: list[str] = []


def fake_train(config, run_dir, *, progress=False):
    """A cheap stand-in for train_run: accuracy is a function of iters, mode and seed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    CALLS.append(run_dir.name)
    if config.optim.lr == 0.5:
        raise RuntimeError("learning rate too high")
    iters = config.model.effective_depth // 4 - 1
    acc = 20.0 + 10 * iters + (3 if config.model.mode == "feedforward" else 0) + config.seed
    return {"status": "completed", "test_acc": acc, "train_acc": acc + 5,
            "test_acc_per_iter": [acc * (i + 1) / iters for i in range(iters)],
            "parameters": 0, "effective_depth": config.model.effective_depth, "iters": iters,
            "epochs": config.train.epochs, "seconds": 0.0, "images_per_s": 0.0}


def tiny(**changes) -> Experiment:
    """A maze experiment whose data check passes (we point it at published-layout files)."""
    d = {
        "name": "tiny",
        "trials": 2,
        "base": {"seed": 10, "model": {"family": "maze", "width": 4},
                 "data": {"name": "mazes", "maze_size": 5}, "train": {"epochs": 1}},
        "grid": {"model.mode": ["recurrent", "feedforward"], "model.effective_depth": [8, 12]},
    }
    d.update(changes)
    return Experiment.from_dict(d)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    # check_data accepts the published easy-to-hard layout; the fake train never reads it.
    root = tmp_path / "data"
    (root / "maze_data_test_5").mkdir(parents=True)
    (root / "maze_data_test_5" / "inputs.npy").write_bytes(b"")
    return root


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_expansion_names_seeds_ids_and_parameter_counts():
    runs = tiny().runs()
    assert [r.name for r in runs] == [
        "recurrent-d8-t0", "recurrent-d8-t1", "recurrent-d12-t0", "recurrent-d12-t1",
        "feedforward-d8-t0", "feedforward-d8-t1", "feedforward-d12-t0", "feedforward-d12-t1"]
    assert [r.config.seed for r in runs] == [10, 11] * 4
    assert len({r.run_id for r in runs}) == 8
    assert [r.run_id for r in tiny().runs()] == [r.run_id for r in runs]  # stable
    # Width-4 maze solver: stem 3·4·9, unit 4·(4·4·9), head 4·32·9 + 32·8·9 + 8·2·9.
    stem, unit, head = 3 * 4 * 9, 4 * 4 * 4 * 9, 4 * 32 * 9 + 32 * 8 * 9 + 8 * 2 * 9
    params = {(r.config.model.mode, r.effective_depth): r.parameters for r in runs}
    assert params[("recurrent", 8)] == params[("recurrent", 12)] == stem + unit + head
    assert params[("feedforward", 12)] == stem + 2 * unit + head
    assert {r.iters for r in runs} == {1, 2}


def base(**train):
    return {"seed": 10, "model": {"family": "maze", "width": 4},
            "data": {"name": "mazes", "maze_size": 5}, "train": {"epochs": 1}, **train}


def test_run_id_ignores_data_root_and_epochs_but_not_training_settings():
    a = tiny().runs()[0]
    assert tiny().with_data_root("/elsewhere").runs()[0].run_id == a.run_id
    longer = tiny(base={**base(), "train": {"epochs": 2}})
    assert longer.runs()[0].run_id == a.run_id  # more epochs continue the same run
    assert longer.spec_hash != tiny().spec_hash
    changed = tiny(base={**base(), "optim": {"lr": 0.05}})
    assert changed.runs()[0].run_id != a.run_id
    explicit = tiny(base={**base(), "model": {"family": "maze", "width": 4, "iters": 1}},
                    grid={"model.mode": ["recurrent"]}, trials=1)
    assert explicit.runs()[0].run_id == a.run_id  # the id is of the resolved config


def test_runs_store_the_resolved_config():
    e = tiny(base={**base(), "model": {"family": "maze"}})
    c = e.runs()[0].config
    assert (c.model.width, c.model.iters, c.train.batch_size) == (128, 1, 50)  # SPEC §3 defaults
    assert (c.runtime.device, c.runtime.amp) == ("auto", "auto")  # resolved where it runs


def test_rules_set_per_depth_values_and_grid_lists_are_unions():
    e = tiny(rules=[{"when": {"model.effective_depth": [12]}, "set": {"optim.lr": 0.01}},
                    {"when": {"model.effective_depth": 8, "model.mode": "feedforward"},
                     "set": {"optim.lr": 0.2, "train.epochs": 3}}])
    lr = {(r.config.model.mode, r.effective_depth): (r.config.optim.lr, r.config.train.epochs)
          for r in e.runs()}
    assert lr[("recurrent", 12)] == (0.01, 1) and lr[("feedforward", 12)] == (0.01, 1)
    assert lr[("feedforward", 8)] == (0.2, 3)
    assert lr[("recurrent", 8)] == (0.1, 1)  # RunConfig's default
    union = tiny(trials=1, grid=[{"model.mode": ["recurrent"], "model.effective_depth": [8, 12]},
                                 {"model.mode": ["feedforward"], "model.effective_depth": [16]}])
    assert [r.name for r in union.runs()] == ["recurrent-d8-t0", "recurrent-d12-t0",
                                              "feedforward-d16-t0"]


def test_every_preset_expands_into_valid_runs():
    names = list_presets()
    for required in ("quick", "fig2_cifar10", "fig2_svhn", "fig2_emnist", "fig2_imagenet",
                     "table1", "fig5_mazes_small", "fig5_mazes_medium", "fig5_mazes_large",
                     "table2_dilated"):
        assert required in names
    for name in names:
        e = load_experiment(name)
        assert e.name == name
        runs = e.runs()
        assert runs and all(r.parameters > 0 for r in runs)


def test_unknown_preset_is_refused_with_the_list(tmp_path):
    with pytest.raises(ConfigError, match="unknown experiment preset 'nope'.*quick"):
        load_experiment("nope")
    assert main(["sweep", "nope", "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("grid,match", [
    ({"model.effective_depth": [8, 10]}, r"effective depth 10 is impossible for family 'maze'"),
    ({"model.family": ["mlp"]}, r"not defined for data set 'mazes'"),
    ({"model.depth": [8]}, r"unknown config key 'model.depth'"),
    ({"model.mode": ["sideways"]}, r"sideways"),
])
def test_a_grid_value_that_builds_no_model_is_refused_before_any_run(tmp_path, data_root, grid,
                                                                     match):
    CALLS.clear()
    e = tiny(grid={"model.mode": ["recurrent"], "model.effective_depth": [8], **grid})
    with pytest.raises(ConfigError, match=match):
        run_sweep(e.with_data_root(data_root), tmp_path / "out", train_fn=fake_train,
                  progress=False)
    assert CALLS == []
    assert not (tmp_path / "out").exists()


def test_database_of_another_experiment_is_refused(tmp_path, data_root):
    out = tmp_path / "out"
    run_sweep(tiny(trials=1).with_data_root(data_root), out, train_fn=fake_train, progress=False)
    before = sha(db_path_for(out))
    CALLS.clear()
    for other in (tiny(name="other", trials=1),):
        with pytest.raises(ConfigError, match="belongs to .*use another --out"):
            run_sweep(other.with_data_root(data_root), out, train_fn=fake_train, progress=False)
    changed = tiny(trials=3, base={**base(), "optim": {"lr": 0.05}})
    for other in (changed,):
        with pytest.raises(ConfigError, match="optim.lr: 0.1 in the database, 0.05 now.*"
                                              "base config or rules changed.*another --out"):
            run_sweep(other.with_data_root(data_root), out, train_fn=fake_train, progress=False)
    assert CALLS == [] and sha(db_path_for(out)) == before
    not_a_db = tmp_path / "junk" / "results.sqlite"
    not_a_db.parent.mkdir()
    not_a_db.write_text("hello")
    with pytest.raises(DataError, match="not a results database"):
        run_sweep(tiny().with_data_root(data_root), not_a_db.parent, train_fn=fake_train,
                  progress=False)


def test_missing_maze_data_is_refused_up_front(tmp_path):
    CALLS.clear()
    with pytest.raises(DataError, match="recurdepth mazes generate --size 5"):
        run_sweep(tiny().with_data_root(tmp_path / "nodata"), tmp_path / "out",
                  train_fn=fake_train, progress=False)
    assert CALLS == []


def test_rerun_skips_finished_runs_and_leaves_the_database_identical(tmp_path, data_root):
    out = tmp_path / "out"
    e = tiny().with_data_root(data_root)
    CALLS.clear()
    s = run_sweep(e, out, train_fn=fake_train, progress=False)
    assert (s.total, s.skipped, s.ran, s.statuses) == (8, 0, 8, {"completed": 8})
    assert len(CALLS) == 8
    db = db_path_for(out)
    before = sha(db)
    CALLS.clear()
    s = run_sweep(e, out, train_fn=fake_train, progress=False)
    assert (s.skipped, s.ran, CALLS) == (8, 0, [])
    assert sha(db) == before
    with ResultStore.open_existing(db) as store:
        recs = store.records()
    assert all(r.attempts == 1 and r.status == "completed" for r in recs)
    by_name = {r.name: r for r in recs}
    assert by_name["feedforward-d12-t1"].result["test_acc"] == 20 + 10 * 2 + 3 + 11
    assert by_name["recurrent-d8-t0"].run_dir == out.resolve() / "runs" / (
        f"recurrent-d8-t0_{by_name['recurrent-d8-t0'].id[:8]}")


def test_more_trials_grid_values_and_epochs_extend_the_database(tmp_path, data_root):
    out = tmp_path / "out"
    CALLS.clear()
    run_sweep(tiny(trials=1).with_data_root(data_root), out, train_fn=fake_train, progress=False)
    assert len(CALLS) == 4
    with ResultStore.open_existing(db_path_for(out)) as store:
        first = {r.name: r for r in store.records()}
    CALLS.clear()
    more = tiny(trials=2, grid={"model.mode": ["recurrent", "feedforward"],
                                "model.effective_depth": [8, 12, 16]})
    s = run_sweep(more.with_data_root(data_root), out, train_fn=fake_train, progress=False)
    assert (s.total, s.skipped, s.ran) == (12, 4, 8)
    assert sorted(c.rsplit("_", 1)[0] for c in CALLS) == sorted(
        [f"{m}-d{d}-t{t}" for m in ("recurrent", "feedforward") for d in (8, 12, 16)
         for t in (0, 1) if (d, t) not in ((8, 0), (12, 0))])
    with ResultStore.open_existing(db_path_for(out)) as store:
        after = {r.name: r for r in store.records()}
    for name, rec in first.items():  # the finished runs are kept as they were
        assert (after[name].id, after[name].result, after[name].attempts) == \
            (rec.id, rec.result, 1)
    # Raising train.epochs trains every run again (each resumes from its checkpoint).
    CALLS.clear()
    longer = tiny(trials=2, base={**base(), "train": {"epochs": 3}},
                  grid={"model.mode": ["recurrent", "feedforward"],
                        "model.effective_depth": [8, 12, 16]})
    s = run_sweep(longer.with_data_root(data_root), out, train_fn=fake_train, progress=False)
    assert (s.total, s.skipped, s.ran) == (12, 0, 12)
    with ResultStore.open_existing(db_path_for(out)) as store:
        recs = store.records()
    assert {r.config["train"]["epochs"] for r in recs} == {3}
    assert {r.id for r in recs} == {r.id for r in after.values()}


def test_failed_run_is_recorded_and_the_others_go_on_then_retried(tmp_path, data_root):
    out = tmp_path / "out"
    e = tiny(trials=1, rules=[{"when": {"model.effective_depth": 12, "model.mode": "recurrent"},
                               "set": {"optim.lr": 0.5}}]).with_data_root(data_root)
    s = run_sweep(e, out, train_fn=fake_train, progress=False)
    assert s.statuses == {"completed": 3, "failed": 1}
    assert [name for name, _ in s.failures] == ["recurrent-d12-t0"]
    with ResultStore.open_existing(db_path_for(out)) as store:
        failed = [r for r in store.records() if r.status == "failed"]
    assert failed[0].error.startswith("RuntimeError: learning rate too high")
    CALLS.clear()
    s = run_sweep(e, out, train_fn=fake_train, progress=False)
    assert (s.skipped, s.ran, len(CALLS)) == (3, 1, 1)  # only the failed run is tried again
    with ResultStore.open_existing(db_path_for(out)) as store:
        assert [r.attempts for r in store.records() if r.name == "recurrent-d12-t0"] == [2]


def test_interrupted_run_is_restarted(tmp_path, data_root):
    out = tmp_path / "out"
    e = tiny(trials=1).with_data_root(data_root)
    run_sweep(e, out, train_fn=fake_train, progress=False)
    # A driver killed mid-run leaves the run 'running' in the database.
    conn = sqlite3.connect(db_path_for(out))
    conn.execute("UPDATE runs SET status='running', result=NULL WHERE name='feedforward-d8-t0'")
    conn.commit()
    conn.close()
    CALLS.clear()
    s = run_sweep(e, out, train_fn=fake_train, progress=False)
    assert (s.skipped, s.ran) == (3, 1) and CALLS[0].startswith("feedforward-d8-t0")


def test_process_executor_gives_the_same_results(tmp_path, data_root):
    e = tiny(trials=1).with_data_root(data_root)
    run_sweep(e, tmp_path / "a", train_fn=fake_train, progress=False)
    run_sweep(e, tmp_path / "b", train_fn=fake_train, progress=False,
              executor=LocalExecutor(max_parallel=2, progress=False))

    def rows(out):
        with ResultStore.open_existing(db_path_for(out)) as store:
            return sorted((r.id, r.status, r.result["test_acc"]) for r in store.records())

    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_dry_run_lists_runs_with_parameter_counts(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    d = yaml.safe_load(preset_path("quick").read_text())
    path.write_text(yaml.safe_dump(d))
    assert main(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    runs = load_experiment(path).runs()
    assert f"{len(runs)} runs" in out
    for r in runs:
        assert r.name in out
    assert f"{runs[-1].parameters:,}" in out
    assert not (tmp_path / "out").exists()


def test_bad_experiment_files_are_refused(tmp_path):
    for d, match in [({"name": "x", "grid": {"model.mode": "recurrent"}}, "non-empty list"),
                     ({"name": "x", "trails": 3}, "unknown experiment key"),
                     ({"name": "x", "trials": 0}, "positive integer"),
                     ({"name": "x", "prepare": {"cifar": {}}}, "unknown 'prepare' entry")]:
        with pytest.raises(ConfigError, match=match):
            Experiment.from_dict(d)
    dup = tiny(grid=[{"model.effective_depth": [8]}, {"model.effective_depth": [8]}])
    with pytest.raises(ConfigError, match="same resolved config"):
        dup.runs()
