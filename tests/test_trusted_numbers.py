"""Numbers that must not be silently wrong: a sweep does not count runs
trained on other data as finished, ``eval`` keeps results on other data apart from the run's and
refuses another run's checkpoint, and an fp32 run is evaluated in fp32."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cli_run import run_cli
from recurdepth.cli import main
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.training import config as config_module
from recurdepth.training.config import RunConfig, apply_overrides
from recurdepth.training.run import load_run, train_run

BASE = {"seed": 0, "model": {"family": "maze", "width": 4, "effective_depth": 8},
        "data": {"name": "mazes", "maze_size": 5},
        "optim": {"name": "adam", "lr": 0.002, "warmup_epochs": 0, "milestones": []},
        "train": {"epochs": 1, "batch_size": 12}, "runtime": {"device": "cpu", "amp": "off"}}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Two data roots with 5x5 mazes of the same sizes, generated with different seeds."""
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        root = tmp_path_factory.mktemp(f"data_{name}")
        generate_dataset(maze_dir(root, 5), size=5, n_train=24, n_test=12, seed=seed,
                         progress=False)
        out[name] = root
    return out


@pytest.fixture(scope="module")
def swept(roots, tmp_path_factory) -> tuple[Path, Path]:
    """An experiment file and its sweep's folder, swept on root a."""
    base = tmp_path_factory.mktemp("sweep")
    exp = base / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "trust", "trials": 1, "base": BASE,
                                   "grid": {"model.mode": ["recurrent", "feedforward"]}}))
    out = base / "out"
    assert main(["sweep", str(exp), "--out", str(out), "--data-root", str(roots["a"]),
                 "--no-progress"]) == 0
    return exp, out


def test_sweep_does_not_skip_runs_trained_on_other_data(roots, swept, capsys):
    exp, out = swept
    code, text, _ = run_cli(["sweep", str(exp), "--out", str(out), "--data-root", str(roots["b"]),
                          "--dry-run"], capsys)
    assert code == 0
    rows = [ln for ln in text.splitlines() if ln.split(" ")[0].endswith("-t0")]
    assert len(rows) == 2 and all("other data" in ln and "completed" not in ln for ln in rows), text
    code, text, err = run_cli(["sweep", str(exp), "--out", str(out), "--data-root",
                            str(roots["b"]), "--no-progress"], capsys)
    assert code == 2 and "trained on other data" in err and "already finished" not in text
    assert len(err.strip().splitlines()) == 1
    # On its own data the sweep still skips them.
    code, text, _ = run_cli(["sweep", str(exp), "--out", str(out), "--data-root", str(roots["a"]),
                          "--no-progress"], capsys)
    assert code == 0 and "2 already finished, 0 run now" in text


def test_eval_on_other_data_is_kept_apart_and_not_reported(roots, swept, capsys):
    _, out = swept
    run = next(p for p in (out / "runs").iterdir() if "recurrent" in p.name)
    assert run_cli(["eval", str(run), "--data-root", str(roots["b"]), "--iters", "4"], capsys)[0] == 0
    table = json.loads((run / "eval.json").read_text())
    (key, entry), = table.items()
    assert key.startswith("test/size5/iters1..4/data") and entry["data_root"] == str(roots["b"])
    # The same root as the run's: its own key (no data part).
    assert run_cli(["eval", str(run), "--data-root", str(roots["a"]), "--iters", "4"], capsys)[0] == 0
    assert "test/size5/iters1..4" in json.loads((run / "eval.json").read_text())
    (run / "eval.json").write_text(json.dumps({key: entry}))  # only the other data's result
    code, text, err = run_cli(["report", str(out)], capsys)
    assert code == 0 and "other data" in err
    evals = (out / "report" / "index.md").read_text()
    assert "Saved evaluations" not in evals


def test_eval_refuses_a_checkpoint_of_another_run(roots, tmp_path, capsys):
    dirs = {}
    for seed in (0, 1):
        cfg = apply_overrides(RunConfig(), {
            "model.family": "maze", "model.width": 4, "model.effective_depth": 8,
            "data.root": str(roots["a"]), "data.maze_size": 5, "optim.name": "adam",
            "train.epochs": 1, "train.batch_size": 12, "seed": seed, "runtime.progress": False})
        dirs[seed] = tmp_path / f"s{seed}"
        train_run(cfg, dirs[seed], progress=False, quiet=True)
    shutil.copy(dirs[1] / "checkpoint_last.pt", dirs[0] / "checkpoint_last.pt")
    code, _, err = run_cli(["eval", str(dirs[0])], capsys)
    assert code == 2 and "belongs to another run" in err and "checkpoint_last.pt" in err


def test_eval_keeps_an_fp32_run_in_fp32(roots, tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "cpu_has_bf16", lambda *a, **k: True)
    for amp, expected in (("off", "off"), ("auto", "bf16")):
        cfg = apply_overrides(RunConfig(), {
            "model.family": "maze", "model.width": 4, "model.effective_depth": 8,
            "data.root": str(roots["a"]), "data.maze_size": 5, "train.epochs": 1,
            "train.batch_size": 12, "runtime.amp": amp, "runtime.progress": False})
        run_dir = tmp_path / amp
        train_run(cfg, run_dir, progress=False, quiet=True)
        assert load_run(run_dir).config.runtime.amp == expected
        # SGD by default: the authors' 5-epoch warm-up over a 1-epoch run is said, not silent.
        log = (run_dir / "train.log").read_text()
        assert "5-epoch warm-up" in log and "18% of optim.lr" in log


def test_warm_up_is_the_authors_with_sgd_none_with_adam_and_kept_when_asked():
    from recurdepth.training.config import resolve
    from recurdepth.training.optim import lr_factor, warmup_warning

    def resolved(**keys):
        return resolve(apply_overrides(RunConfig(), {"runtime.device": "cpu",
                                                     "model.effective_depth": 8, **keys}))

    assert resolved(**{"optim.name": "sgd"}).optim.warmup_epochs == 5
    adam = resolved(**{"optim.name": "adam", "optim.lr": 0.002, "train.epochs": 3})
    assert adam.optim.warmup_epochs == 0 and lr_factor(0, adam.optim) == 1.0
    asked = resolved(**{"optim.name": "adam", "optim.warmup_epochs": 5})
    assert asked.optim.warmup_epochs == 5  # a preset or user asking for it keeps it
    # 1 - exp(-1/5) = 0.181: epoch 1 of a 5-epoch warm-up trains at 18% of the rate.
    assert "18% of optim.lr" in warmup_warning(asked.optim, 3)
    assert "covers 3 of this run's 3 epochs" in warmup_warning(asked.optim, 3)
    assert warmup_warning(asked.optim, 20) is None  # the authors' long runs: no warning
    assert warmup_warning(adam.optim, 3) is None


def _group(dataset: str, curves: list) -> "GroupStat":
    from recurdepth.report.results import GroupStat

    return GroupStat(panel="p", family="f", mode="recurrent", dataset=dataset, effective_depth=8,
                     iters=2, width=4, parameters=10, extra={}, curves=curves)


def test_a_run_near_chance_is_not_learning_and_never_converged():
    from recurdepth.report.results import RunCurve
    from recurdepth.report.verdict import PanelVerdict, convergence_line, run_convergence

    # A maze run at 0-0.5% (chance 0: only exact solutions count) gains < 1 point over its last
    # quarter; by the gain rule alone it would read converged.
    flat_zero = RunCurve("z", 8, [(6, 0.0, 0.0), (7, 0.0, 0.0), (8, 0.5, 1.0)])
    c = run_convergence(flat_zero, chance=0.0)
    assert c.converged is False and c.learning is False
    # CIFAR-10 (10 classes, chance 10%): 14% is within 5 points of chance, 16% flat is not.
    near = RunCurve("n", 8, [(6, 13.8, 0.0), (8, 14.0, 0.0)])
    above = RunCurve("a", 8, [(6, 15.8, 0.0), (8, 16.0, 0.0)])
    assert run_convergence(near, chance=10.0).learning is False
    assert run_convergence(above, chance=10.0).converged is True
    line = convergence_line(_group("mazes 5x5", [flat_zero, flat_zero]))
    assert line.startswith("NOT converged: 2/2 runs not learning") and "chance, 0%" in line
    line = convergence_line(_group("cifar10", [near, above]))
    assert "1/2 runs not learning" in line and "n: 14.0% train" in line
    assert convergence_line(_group("cifar10", [above])) == "converged (1/1 runs)"
    # The verdict does not count such runs as converged.
    pv = PanelVerdict("p", [], convergence=[("recurrent, depth 8",
                                             convergence_line(_group("mazes", [flat_zero])))])
    assert "some runs had not converged" in pv.overall()
