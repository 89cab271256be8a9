"""Deep thinking on strings through the user's path: the smoke preset swept, reported, evaluated.

`recurdepth sweep deepthinking_prefix_smoke` trains the three variants (recall, no recall,
feed-forward twin) with the progressive loss; `recurdepth eval` adds a third string length;
`recurdepth report` then lists accuracy per string length x iteration with the best iteration.
Bad input (string lengths, options of other data sets or families, alpha) is one line.
"""

from __future__ import annotations

import csv
import json

import pytest

from recurdepth.cli import main
from recurdepth.errors import ConfigError
from recurdepth.experiments import ResultStore
from recurdepth.experiments.sweep import db_path_for
from recurdepth.training.config import RunConfig, apply_overrides, resolve

STRING_RUN = ["runtime.device=cpu", "data.name=prefix_sums", "model.family=dt_net_1d",
              "model.iters=2", "model.width=4"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("dt") / "out"
    assert main(["sweep", "deepthinking_prefix_smoke", "--out", str(out), "--no-progress"]) == 0
    with ResultStore.open_existing(db_path_for(out)) as store:
        recs = {r.name: r for r in store.records()}
    return out, recs


def test_smoke_preset_trains_three_variants_with_the_progressive_loss(smoke):
    _, recs = smoke
    assert sorted(recs) == ["feedforward-recallTrue-t0", "recurrent-recallFalse-t0",
                            "recurrent-recallTrue-t0"]
    for name, rec in recs.items():
        assert rec.status == "completed", name
        cfg = rec.config
        assert cfg["train"]["objective"] == "progressive" and cfg["data"]["name"] == "prefix_sums"
        result = rec.result
        assert result["eval_maze_size"] == 24 and result["maze_size"] == 16
        assert 0.0 <= result["test_acc"] <= 100.0
        if cfg["model"]["mode"] == "recurrent":
            # 8 = train.eval_iters 2x of 4 trained iterations, at both lengths.
            assert len(result["test_acc_per_iter"]) == len(result["eval_maze_acc_per_iter"]) == 8
            assert result["test_acc_per_iter"][3] == result["test_acc"]
        else:
            assert result["test_acc_per_iter"] is None
    # Recall adds the input's 3 weights per output channel of the unit's first convolution.
    rec_p = recs["recurrent-recallTrue-t0"].result["parameters"]
    assert rec_p - recs["recurrent-recallFalse-t0"].result["parameters"] == 8 * 3


def test_report_gives_accuracy_per_length_and_iteration_with_the_best(smoke, capsys):
    out, recs = smoke
    run_dir = recs["recurrent-recallTrue-t0"].run_dir
    assert main(["eval", str(run_dir), "--iters", "8", "--size", "32", "--limit", "50",
                 "--format", "json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert len(evaluated["acc_per_iter"]) == 8 and evaluated["samples"] == 50
    assert main(["report", str(out)]) == 0
    folder = out / "report"
    with open(folder / "evaluations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tested = {(r["mode"], r["panel"].rsplit("recall=", 1)[-1], int(r["maze_size"])) for r in rows}
    assert {("recurrent", "True", 16), ("recurrent", "True", 24), ("recurrent", "True", 32),
            ("recurrent", "False", 16), ("recurrent", "False", 24),
            ("feedforward", "True", 16), ("feedforward", "True", 24)} <= tested
    row = next(r for r in rows if r["mode"] == "recurrent" and r["maze_size"] == "24"
               and r["panel"].endswith("recall=True"))
    curve = recs["recurrent-recallTrue-t0"].result["eval_maze_acc_per_iter"]
    assert int(row["max_iters"]) == 8 and float(row["max_iters_acc_mean"]) == pytest.approx(curve[-1])
    best = max(range(8), key=lambda i: (curve[i], -i))  # first best on ties
    assert int(row["best_iters"]) == best + 1
    md = (folder / "evaluations.md").read_text()
    assert "24-bit strings" in md and "32-bit strings" in md and "mazes 24x24" not in md


@pytest.mark.parametrize("overrides,message", [
    (["data.options.size=0"], "data.options.size (or data.maze_size) must be a string length "
                              "in 1..8192 bits, got 0"),
    (["data.options.size=8193"], "must be a string length in 1..8192 bits, got 8193"),
    (["data.options.eval_size=0"], "data.options.eval_size"),
    (["data.options.shift=2"], "unknown option(s) shift for data set 'prefix_sums' "
                               "(data.options) (shift is an option of mazes)"),
    (["model.family=convnet", "data.name=cifar10", "model.options.recall=true"],
     "unknown option(s) recall for model family 'convnet'"),
    (["model.options.recall=maybe"], "recall"),
    (["train.objective=progressive", "train.alpha=1.5"], "train.alpha"),
])
def test_bad_string_run_input_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        resolve(apply_overrides(RunConfig(), [*STRING_RUN, *overrides]))
    assert message in str(err.value) and "\n" not in str(err.value)
