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
import yaml

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
        # Tested in the run at every length of the list, the first also under the older keys.
        assert [o["size"] for o in result["eval_sizes"]] == [24, 32]
        assert result["eval_maze_size"] == 24 and result["maze_size"] == 16
        assert result["eval_maze_acc"] == result["eval_sizes"][0]["acc"]
        assert 0.0 <= result["test_acc"] <= 100.0
        if cfg["model"]["mode"] == "recurrent":
            # 8 = train.eval_iters 2x of 4 trained iterations, at every length.
            assert len(result["test_acc_per_iter"]) == len(result["eval_maze_acc_per_iter"]) == 8
            assert all(len(o["acc_per_iter"]) == 8 for o in result["eval_sizes"])
            assert result["test_acc_per_iter"][3] == result["test_acc"]
        else:
            assert result["test_acc_per_iter"] is None
            assert all(o["acc_per_iter"] is None for o in result["eval_sizes"])
    # Recall adds the input's 3 weights per output channel of the unit's first convolution.
    rec_p = recs["recurrent-recallTrue-t0"].result["parameters"]
    assert rec_p - recs["recurrent-recallFalse-t0"].result["parameters"] == 8 * 3


def test_report_gives_accuracy_per_length_and_iteration_with_the_best(smoke, capsys):
    out, recs = smoke
    run_dir = recs["recurrent-recallTrue-t0"].run_dir
    assert main(["eval", str(run_dir), "--iters", "8", "--size", "40", "--limit", "50",
                 "--format", "json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert len(evaluated["acc_per_iter"]) == 8 and evaluated["samples"] == 50
    assert main(["report", str(out)]) == 0
    folder = out / "report"
    with open(folder / "evaluations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tested = {(r["mode"], r["panel"].rsplit("recall=", 1)[-1], int(r["maze_size"])) for r in rows}
    # 16, 24 and 32 bits from the runs themselves, 40 from `recurdepth eval`.
    assert {("recurrent", "True", 16), ("recurrent", "True", 24), ("recurrent", "True", 32),
            ("recurrent", "True", 40), ("recurrent", "False", 16), ("recurrent", "False", 24),
            ("recurrent", "False", 32), ("feedforward", "True", 16), ("feedforward", "True", 24),
            ("feedforward", "True", 32)} <= tested
    row32 = next(r for r in rows if r["mode"] == "recurrent" and r["maze_size"] == "32"
                 and r["panel"].endswith("recall=False"))
    curve32 = recs["recurrent-recallFalse-t0"].result["eval_sizes"][1]["acc_per_iter"]
    assert float(row32["max_iters_acc_mean"]) == pytest.approx(curve32[-1])
    row = next(r for r in rows if r["mode"] == "recurrent" and r["maze_size"] == "24"
               and r["panel"].endswith("recall=True"))
    curve = recs["recurrent-recallTrue-t0"].result["eval_maze_acc_per_iter"]
    assert int(row["max_iters"]) == 8 and float(row["max_iters_acc_mean"]) == pytest.approx(curve[-1])
    best = max(range(8), key=lambda i: (curve[i], -i))  # first best on ties
    assert int(row["best_iters"]) == best + 1
    md = (folder / "evaluations.md").read_text()
    assert "24-bit strings" in md and "32-bit strings" in md and "mazes 24x24" not in md
    assert "40-bit strings" in md


@pytest.mark.parametrize("overrides,message", [
    (["data.options.size=0"], "data.options.size (or data.maze_size) must be a string length "
                              "in 1..8192 bits, got 0"),
    (["data.options.size=8193"], "must be a string length in 1..8192 bits, got 8193"),
    (["data.options.eval_size=0"], "data.options.eval_size"),
    (["data.options.eval_size=[64, 0]"], "data.options.eval_size (or data.eval_maze_size)[1] "
                                         "must be a string length in 1..8192 bits, got 0"),
    (["data.options.eval_size=[64, 9000]"], "[1] must be a string length in 1..8192 bits"),
    (["data.options.eval_size=[]"], "data.options.eval_size (or data.eval_maze_size): expected "
                                    "a int or a non-empty list of them, got []"),
    (["data.name=parity", "data.options.size=0"], "must be a string length in 1..8192 bits, "
                                                  "got 0"),
    (["data.name=parity", "data.options.size=8193"], "got 8193"),
    (["data.maze_shift=2"], "unknown option(s) shift for data set 'prefix_sums'"),
    (["data.name=parity", "data.options.shift=2"], "unknown option(s) shift for data set "
                                                   "'parity' (data.options) (shift is an option "
                                                   "of mazes); valid options: size, eval_size"),
    (["model.family=maze", "data.name=mazes", "model.options.recall=true"],
     "unknown option(s) recall for model family 'maze'"),
    (["train.objective=progressive", "train.alpha=-0.1"], "train.alpha"),
    (["data.options.shift=2"], "unknown option(s) shift for data set 'prefix_sums' "
                               "(data.options) (shift is an option of mazes)"),
    (["model.family=convnet", "data.name=cifar10", "model.options.recall=true"],
     "unknown option(s) recall for model family 'convnet'"),
    (["train.objective=progressive", "train.alpha=1.5"], "train.alpha"),
])
def test_bad_string_run_input_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        resolve(apply_overrides(RunConfig(), [*STRING_RUN, *overrides]))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_parity_trains_through_recurdepth_train(tmp_path, capsys):
    """Parity (one label per string) through the user's command, tested at a list of lengths."""
    run_dir = tmp_path / "parity"
    argv = ["train", "--quiet", "--run-dir", str(run_dir), "model.family=dt_net_1d",
            "data.name=parity", "model.iters=3", "model.width=16", "data.options.size=4",
            "data.options.eval_size=[6, 8]", "data.train_limit=500", "data.test_limit=200",
            "train.epochs=15", "train.batch_size=50", "optim.name=adam", "optim.lr=0.003",
            "optim.warmup_epochs=0", "optim.milestones=[]", "runtime.device=cpu",
            "runtime.threads=1", "seed=0"]
    assert main(argv) == 0
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["dataset"] == "parity"
    assert result["maze_size"] == 4 and result["effective_depth"] == 4 + 5 * 3
    assert len(result["test_acc_per_iter"]) == 3
    assert [o["size"] for o in result["eval_sizes"]] == [6, 8]
    assert all(len(o["acc_per_iter"]) == 3 for o in result["eval_sizes"])
    # 4-bit parity has 16 strings, all in the training set: the net fits part of them at least
    # (chance is 50%; measured 77% at this seed on the development machine).
    assert result["train_acc"] > 60.0
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["resolved"]["data"]["options"] == {"size": 4, "eval_size": [6, 8]}
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--iters", "6", "--size", "12", "--format", "json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert len(evaluated["acc_per_iter"]) == 6 and evaluated["samples"] == 200


def test_test_lengths_as_a_list_are_each_checked_and_keep_their_order():
    from recurdepth.data.registry import get_dataset

    opt = get_dataset("prefix_sums").options["eval_size"]
    assert opt.check("k", 64) == 64 and opt.check("k", None) is None
    assert opt.check("k", [128, 64, 128]) == [128, 64]  # a repeated length is tested once
    with pytest.raises(ConfigError, match=r"^k: a list may not hold null"):
        opt.check("k", [64, None])
    with pytest.raises(ConfigError, match=r"^k\[0\]: expected int or a list of them or null, "
                                          r"got 'x'$"):
        opt.check("k", ["x"])
    cfg = resolve(apply_overrides(RunConfig(), [*STRING_RUN, "data.options.size=32",
                                                "data.options.eval_size=[128, 64]"]))
    assert cfg.eval_sizes() == (128, 64) and cfg.eval_size() == 128
    assert cfg.example_sizes() == (32, 128, 64)  # what the data fingerprint covers
    one = resolve(apply_overrides(RunConfig(), [*STRING_RUN, "data.eval_maze_size=64"]))
    assert one.eval_sizes() == (64,) and one.data.options["eval_size"] == 64
    # Test lengths are not part of what is learned: the run's identity ignores them.
    from recurdepth.training.config import identity_hash
    assert identity_hash(cfg) == identity_hash(one)


def test_the_report_reads_results_with_one_or_several_test_lengths():
    from recurdepth.report.results import EvalSetting, in_run_evals

    config = {"data": {"test_limit": 100}}
    older = {"test_acc": 90.0, "test_acc_per_iter": [50.0, 90.0], "maze_size": 32,
             "eval_maze_size": 64, "eval_maze_acc": 40.0, "eval_maze_acc_per_iter": [10.0, 40.0]}
    got = in_run_evals(config, older)
    assert set(got) == {EvalSetting("test", 32, 100), EvalSetting("test", 64, 100)}
    assert got[EvalSetting("test", 64, 100)].per_iter == [10.0, 40.0]
    newer = {**older, "eval_sizes": [
        {"size": 64, "acc": 40.0, "acc_per_iter": [10.0, 40.0]},
        {"size": 128, "acc": 5.0, "acc_per_iter": [0.0, 5.0]}]}
    got = in_run_evals(config, newer)
    assert [s.maze_size for s in got] == [32, 64, 128]
    assert got[EvalSetting("test", 128, 100)].acc == 5.0
    assert in_run_evals(config, {"test_acc": 90.0, "maze_size": 32}) == {}
