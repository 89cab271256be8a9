"""Overthinking, detected on a maze solver trained the way a user trains one.

The hand-built units of test_analysis_dynamics.py have answers known by construction; here the
model is trained. Everything goes through the user's commands: ``recurdepth mazes generate``,
``recurdepth train`` with two seeds (a two-run sweep), ``recurdepth analyze dynamics`` on each
run, ``recurdepth eval --iters`` (a second path to the accuracy per iteration) and
``recurdepth report`` on the sweep (its "Thinking longer" section).

The tiny solver (TINY below): 5x5 mazes (16x16 px), 600 training and 200 test mazes, the
recurrent maze solver of effective depth 16 (3 iterations) and width 16, Adam at lr 0.005 with
the shared unit's rate not divided and gradients clipped to norm 1, batch 25, 20 epochs, one
thread. Like the 7x7 width-32 solver of the dynamics work, it solves most test mazes at 3-4
iterations and almost none by 24. Measured with seeds 0-4: all five overthink, with peaks of
about 74, 64, 76, 44 and 53% at iteration 3 or 4 and 0-7% at 24 (seeds 0 and 1, tested here:
74.5% at 3 and 64.0% at 4, then 0.0% and 1.0%). Without the clipping (30 epochs) one seed of
five stayed at 0%. This file took 128-141 s wall and 35-36 s CPU, niced at load 7-11 on 2 cores.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli_run import run_cli
from recurdepth.cli import main
from recurdepth.experiments import ResultStore
from recurdepth.experiments.sweep import db_path_for

# A longer end-to-end test (pyproject's marker); .ci/run runs the whole suite, slow ones included.
pytestmark = pytest.mark.slow

MAZE_SIZE = 5
TRAIN_MAZES = 600  # of the 864 distinct 5x5 mazes the generator can make
TEST_MAZES = 200
TRAINED_ITERS = 3  # effective depth 16 = 4 + 4 x 3
ITERS = 8 * TRAINED_ITERS  # `analyze dynamics`' default --mult 8
SEEDS = (0, 1)
TINY = ["model.family=maze", "model.mode=recurrent", "model.effective_depth=16",
        "model.width=16", f"data.maze_size={MAZE_SIZE}", "optim.name=adam", "optim.lr=0.005",
        "optim.recur_lr_divide=false", "optim.clip_grad_norm=1.0", "train.epochs=20",
        "train.batch_size=25", "train.eval_every=0", "runtime.device=cpu", "runtime.amp=off",
        # One thread: the same numbers on any core count, and no OpenMP spinning on a busy CPU.
        "runtime.threads=1", "runtime.progress=false"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Path]]:
    """The sweep folder ``recurdepth train ... seed=0,1`` made, and its run folders by seed
    (each named by its run's name)."""
    base = tmp_path_factory.mktemp("overthink")
    data = base / "data"
    assert main(["mazes", "generate", "--size", str(MAZE_SIZE), "--train", str(TRAIN_MAZES),
                 "--test", str(TEST_MAZES), "--seed", "0", "--data-root", str(data),
                 "--no-progress"]) == 0
    out = base / "sweep"
    assert main(["train", "--quiet", "--run-dir", str(out), *TINY, f"data.root={data}",
                 "seed=" + ",".join(map(str, SEEDS))]) == 0
    with ResultStore.open_existing(db_path_for(out)) as store:
        runs = {r.params["seed"]: Path(r.run_dir) for r in store.records()
                if r.status == "completed"}
    assert all(run_dir.name.startswith(f"seed{seed}-") for seed, run_dir in runs.items())
    assert sorted(runs) == list(SEEDS)
    return out, runs


def _eval(run_dir: Path, iters: int, capsys: pytest.CaptureFixture[str]) -> list[float]:
    """Test accuracy (%) after iterations 1..``iters`` by ``recurdepth eval``."""
    code, out, err = run_cli(["eval", str(run_dir), "--iters", f"1..{iters}", "--format",
                              "json"], capsys)
    assert code == 0, err
    per_iter = json.loads(out)["acc_per_iter"]
    assert len(per_iter) == iters
    return per_iter


@pytest.mark.parametrize("seed", SEEDS)
def test_analyze_dynamics_says_the_trained_solver_overthinks(sweep, seed, capsys):
    _, runs = sweep
    run_dir = runs[seed]
    # Accuracy per iteration by `recurdepth eval`, a path that shares no code with the analysis.
    per_iter = _eval(run_dir, ITERS, capsys)
    peak = max(per_iter)
    best = per_iter.index(peak) + 1
    # It learned (most mazes solved near the trained count) and lost it by the end.
    assert peak >= 40.0 and best <= 2 * TRAINED_ITERS, per_iter
    assert per_iter[-1] <= 10.0, per_iter

    code, out, err = run_cli(["analyze", "dynamics", str(run_dir), "--n", "16",
                              "--power-steps", "10", "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((run_dir / "analysis" / "dynamics" / "dynamics.json").read_text())
    (size,) = res["sizes"]
    assert res["trained_iters"] == TRAINED_ITERS and res["iters"] == ITERS
    assert size["size"] == MAZE_SIZE and size["images"] == TEST_MAZES
    assert size["accuracy"] == pytest.approx(per_iter, abs=1e-9)
    assert res["classification"] == size["classification"] == "overthinks", res["line"]
    assert size["best_iteration"] == best
    expected = (f"overthinks: peak {peak:.1f}% at iteration {best} (trained {TRAINED_ITERS}), "
                f"{per_iter[-1]:.1f}% at {ITERS}")
    assert res["line"].startswith(expected), res["line"]
    assert res["line"] in out


def test_report_thinking_longer_section_says_both_runs_overthink(sweep, tmp_path, capsys):
    from recurdepth.report.thinking import IMAGES, MULT

    out_dir, runs = sweep
    assert TEST_MAZES <= IMAGES  # the section reads every test maze, as `recurdepth eval` does
    iters = MULT * TRAINED_ITERS  # the section's shorter look past the trained count
    curves = {run_dir.name.split("_")[0]: _eval(run_dir, iters, capsys)
              for run_dir in runs.values()}
    code, out, err = run_cli(["report", str(out_dir), "--report-dir", str(tmp_path / "r")],
                             capsys)
    assert code == 0, err
    (row,) = list(csv.DictReader((tmp_path / "r" / "thinking_longer.csv").open()))
    assert (row["family"], row["effective_depth"], row["trained_iters"], row["runs"]) == (
        "maze", "16", str(TRAINED_ITERS), str(len(SEEDS)))
    assert row["classification"] == f"overthinks x{len(SEEDS)}", row
    # Mean over the two runs of what `recurdepth eval` measured.
    peaks = [max(c) for c in curves.values()]
    assert float(row["peak_iteration"]) == pytest.approx(
        sum(c.index(max(c)) + 1 for c in curves.values()) / len(curves))
    assert float(row["acc_peak"]) == pytest.approx(sum(peaks) / len(peaks), abs=1e-3)
    assert float(row["acc_end"]) == pytest.approx(
        sum(c[-1] for c in curves.values()) / len(curves), abs=1e-3)
    assert float(row["acc_end"]) < float(row["acc_peak"]) - 40.0, row
    index = (tmp_path / "r" / "index.md").read_text()
    assert "## Thinking longer" in index
    for name, c in curves.items():
        best = c.index(max(c)) + 1
        assert (f"- {name}: overthinks: peak {max(c):.1f}% at iteration {best} "
                f"(trained {TRAINED_ITERS}), {c[-1]:.1f}% at {iters}") in index, name
