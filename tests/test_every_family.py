"""Every registered family in every mode through the user's commands (the registry drives it).

As timm's tests loop over every registered model, the cases here come from
:func:`recurdepth.models.list_models` and each family's modes, and the analyses from the
``analyze`` command's own list: a family or analysis registered later is covered with no edit
here. Per case: a tiny run (1 epoch, a few samples, a narrow model where the family allows it)
made by ``recurdepth train`` (by effective depth, as a user asks), ``recurdepth eval`` (with
``--iters`` where the family has iterations), every analysis that accepts the run, and per family
``recurdepth sweep`` + ``recurdepth report``. Data are tiny files in the real on-disk formats
(``fixtures_data``); nothing touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures_data import write_cifar10, write_emnist, write_image_folder, write_svhn
from cli_run import run_cli
from recurdepth.analysis.registry import get_analysis, list_analyses
from recurdepth.data.registry import list_datasets
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.errors import ConfigError
from recurdepth.models import build_model, get_family, list_models
from recurdepth.models.unrolled import meta_build

# A longer end-to-end test (pyproject's marker); .ci/run runs the whole suite, slow ones included.
pytestmark = pytest.mark.slow

MAZE_SIZE = 5
TINY_WIDTH = 4
ITERS = 2  # two iterations: a recurrent model shares its unit, a feed-forward one has two

# A tiny data set per data set name, written in its real on-disk format under a data root.
WRITERS: dict[str, Callable[[Path], Any]] = {
    # Generated in memory from a seed: nothing to write.
    "prefix_sums": lambda root: None,
    "parity": lambda root: None,
    "addition": lambda root: None,
    "copy": lambda root: None,
    "cifar10": lambda root: write_cifar10(root),
    "svhn": lambda root: write_svhn(root / "svhn"),
    "emnist": lambda root: write_emnist(root),
    "mazes": lambda root: generate_dataset(maze_dir(root, MAZE_SIZE), size=MAZE_SIZE, n_train=12,
                                           n_test=6, seed=0, progress=False),
    "imagenet": lambda root: (write_image_folder(root / "imagenet" / "train", per_class=3),
                              write_image_folder(root / "imagenet" / "val", per_class=2, seed=1)),
}

# Flags that keep an analysis CPU-cheap; an analysis not named here runs with its defaults.
CHEAP_FLAGS: dict[str, list[str]] = {
    "reuse": ["--images", "4", "--batch-size", "4"],
    "cka": ["--images", "4", "--batch-size", "4"],
    "probes": ["--epochs", "1", "--train-images", "4", "--test-images", "4",
               "--weight-decay", "0", "--batch-size", "4"],
    "featviz": ["--steps", "2", "--filters", "0"],
    "rf": ["--max-iters", "2"],
    "dynamics": ["--images", "4", "--n", "2", "--mult", "2", "--power-steps", "3"],
}

CASES = [(family, mode) for family in list_models() for mode in get_family(family).modes]
CASE_IDS = [f"{family}-{mode}" for family, mode in CASES]


def _dataset(family: str) -> str:
    """The family's first data set that has a tiny writer here."""
    spec = get_family(family)
    for name in spec.datasets:
        if name in WRITERS:
            return name
    pytest.fail(f"family {family!r} trains on {', '.join(spec.datasets)}: add a tiny writer "
                f"for one of them to WRITERS")


def _width(family: str, mode: str, dataset: str) -> int | None:
    """TINY_WIDTH where the family accepts it, else None (the family's only width)."""
    spec = get_family(family)
    iters = ITERS if spec.unrolled else None
    try:
        meta_build(lambda: build_model(family, mode, iters=iters, width=TINY_WIDTH,
                                       dataset=dataset))
    except ConfigError:
        return None
    return TINY_WIDTH


def _overrides(family: str, mode: str, data_root: Path,
               dataset: str | None = None) -> dict[str, Any]:
    """The run config of a tiny run of ``family`` in ``mode`` (on ``dataset``), as dotted keys."""
    spec = get_family(family)
    dataset = dataset or _dataset(family)
    keys: dict[str, Any] = {
        "model.family": family, "model.mode": mode, "data.name": dataset,
        "data.root": str(data_root), "data.train_limit": 4, "data.test_limit": 4,
        "train.epochs": 1, "train.batch_size": 4, "train.eval_batch_size": 4,
        "train.eval_train_limit": 4, "optim.name": "adam", "optim.lr": 0.001,
        "optim.warmup_epochs": 0, "optim.milestones": [], "runtime.device": "cpu",
        "runtime.progress": False, "runtime.amp": "off", "seed": 0,
        "data.workers": 0,  # a loader worker process would import torch again
    }
    if spec.unrolled:
        keys["model.effective_depth"] = spec.depth_for(ITERS)  # the user's way to ask for a depth
    width = _width(family, mode, dataset)
    if width is not None:
        keys["model.width"] = width
    if get_family(family).datasets == ("mazes",) or dataset == "mazes":
        keys["data.maze_size"] = MAZE_SIZE
    return keys


def _words(keys: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in keys.items()]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for name in sorted({_dataset(family) for family, _ in CASES} | set(list_datasets())):
        if name in WRITERS:  # a data set without one fails test_every_data_set_trains
            WRITERS[name](root)
    return root


@pytest.fixture(scope="module")
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory,
            ) -> Callable[[str, str, pytest.CaptureFixture[str]], Path]:
    """``run(family, mode, capsys)``: the run folder ``recurdepth train`` made (trained once)."""
    runs: dict[tuple[str, str], tuple[Path, int, str]] = {}
    base = tmp_path_factory.mktemp("runs")

    def run(family: str, mode: str, capsys: pytest.CaptureFixture[str]) -> Path:
        if (family, mode) not in runs:
            run_dir = base / f"{family}-{mode}"
            code, out, err = run_cli(["train", "--quiet", "--run-dir", str(run_dir),
                                   *_words(_overrides(family, mode, data_root))], capsys)
            runs[family, mode] = run_dir, code, out + err
        run_dir, code, output = runs[family, mode]
        assert code == 0, f"recurdepth train ({family}, {mode}) failed: {output}"
        return run_dir

    return run


@pytest.mark.parametrize(("family", "mode"), CASES, ids=CASE_IDS)
def test_train(family: str, mode: str, trained, capsys) -> None:
    run_dir = trained(family, mode, capsys)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["epochs"] == 1
    assert result["family"] == family and result["mode"] == mode
    assert 0.0 <= result["test_acc"] <= 100.0
    spec = get_family(family)
    if spec.unrolled:
        assert result["iters"] == ITERS and result["effective_depth"] == spec.depth_for(ITERS)
        per = result["test_acc_per_iter"]
        assert (per is not None and len(per) >= ITERS) if mode == "recurrent" else per is None
    else:
        assert result["effective_depth"] == spec.fixed_depth and result["iters"] is None
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed"


@pytest.mark.parametrize(("family", "mode"), CASES, ids=CASE_IDS)
def test_eval(family: str, mode: str, trained, capsys) -> None:
    run_dir = trained(family, mode, capsys)
    spec = get_family(family)
    iters = None
    if spec.unrolled:
        # Recurrent models think longer than trained; a feed-forward one runs its own units.
        iters = ITERS + 1 if mode == "recurrent" else ITERS
    argv = ["eval", str(run_dir), "--format", "json"] + (["--iters", str(iters)] if iters else [])
    code, out, err = run_cli(argv, capsys)
    assert code == 0, f"recurdepth eval ({family}, {mode}) failed: {err}"
    got = json.loads(out)
    assert 0.0 <= got["acc"] <= 100.0 and got["samples"] == 4
    if spec.unrolled and mode == "recurrent":
        # A BN-recurrent model has BatchNorm for its trained iterations only: capped, with a note.
        capped = "note" in got and "BatchNorm" in got["note"]
        assert len(got["acc_per_iter"]) == (ITERS if capped else iters)
    else:
        assert "acc_per_iter" not in got
    if not spec.unrolled:  # no iterations to ask for: refused in one line, nothing else
        code, _, err = run_cli(["eval", str(run_dir), "--iters", "3"], capsys)
        assert code == 2 and "iterations" in err and "Traceback" not in err


@pytest.mark.parametrize("analysis", list_analyses())
@pytest.mark.parametrize(("family", "mode"), CASES, ids=CASE_IDS)
def test_analyze(family: str, mode: str, analysis: str, trained, capsys) -> None:
    """Every analysis runs on the run, or refuses it in one line when it cannot read it."""
    from recurdepth.analysis.features import check_analysable

    run_dir = trained(family, mode, capsys)
    try:
        check_analysable(run_dir, analysis)
        get_analysis(analysis).check_mode(mode, run_dir)
        accepted = True
    except ConfigError:
        accepted = False
    out_dir = run_dir / "analysis-test" / analysis
    code, out, err = run_cli(["analyze", analysis, str(run_dir), "--out", str(out_dir),
                           *CHEAP_FLAGS.get(analysis, [])], capsys)
    if accepted:
        assert code == 0, f"recurdepth analyze {analysis} ({family}, {mode}) failed: {err}"
        assert any(p.suffix == ".json" for p in out_dir.iterdir()), out
    else:
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("family", list_models())
def test_sweep_report(family: str, data_root: Path, tmp_path: Path, capsys) -> None:
    """A sweep of the family in all its modes, then its report."""
    spec = get_family(family)
    base: dict[str, Any] = {}
    for key, value in _overrides(family, spec.modes[0], data_root).items():
        if key == "model.mode":
            continue
        section, _, name = key.rpartition(".")
        (base.setdefault(section, {}) if section else base)[name] = value
    experiment = {"name": f"every-{family}", "description": "one family in all its modes",
                  "trials": 1, "base": base, "grid": {"model.mode": list(spec.modes)}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(experiment))
    out = tmp_path / "sweep"
    code, text, err = run_cli(["sweep", str(path), "--out", str(out), "--no-progress"], capsys)
    assert code == 0, f"recurdepth sweep ({family}) failed: {text}{err}"
    assert f"{len(spec.modes)} run now ({len(spec.modes)} completed)" in text, text
    code, text, err = run_cli(["report", str(out)], capsys)
    assert code == 0, f"recurdepth report ({family}) failed: {err}"
    assert (out / "report" / "index.md").exists()
    index = (out / "report" / "index.md").read_text()
    assert family in index


@pytest.mark.parametrize("dataset", list_datasets())
def test_every_data_set_trains_and_evaluates(dataset: str, data_root: Path, trained,
                                             tmp_path: Path, capsys) -> None:
    """Every registered data set trains with a family that lists it and is evaluated.

    Families train on their first data set above; a data set that is no family's first (a
    second image data set, parity, copy) gets its own tiny run here, with the first family
    (by name) that lists it.
    """
    assert dataset in WRITERS, f"data set {dataset!r}: add a tiny writer to WRITERS"
    families = [f for f in list_models() if dataset in get_family(f).datasets]
    assert families, f"data set {dataset!r} is listed by no model family"
    family = families[0]
    mode = get_family(family).modes[0]
    if _dataset(family) == dataset:  # the family's own cases train it: use that run
        run_dir = trained(family, mode, capsys)
    else:
        run_dir = tmp_path / f"{family}-{dataset}"
        code, out, err = run_cli(["train", "--quiet", "--run-dir", str(run_dir),
                                  *_words(_overrides(family, mode, data_root, dataset))], capsys)
        assert code == 0, f"recurdepth train ({family} on {dataset}) failed: {out}{err}"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["dataset"] == dataset
    assert 0.0 <= result["test_acc"] <= 100.0
    code, out, err = run_cli(["eval", str(run_dir), "--format", "json"], capsys)
    assert code == 0, f"recurdepth eval ({family} on {dataset}) failed: {err}"
    assert 0.0 <= json.loads(out)["acc"] <= 100.0
