"""``recurdepth analyze`` end to end on two tiny trained maze runs."""

import json

import pytest

from recurdepth.cli import main
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.training.config import RunConfig, apply_overrides
from recurdepth.training.run import train_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    generate_dataset(maze_dir(root, 5), size=5, n_train=24, n_test=12, seed=0, progress=False)
    out = {}
    for mode in ("recurrent", "feedforward"):
        cfg = apply_overrides(RunConfig(), {
            "model.family": "maze", "model.mode": mode, "model.iters": 3, "model.width": 4,
            "data.root": str(root), "data.maze_size": 5, "optim.name": "adam",
            "optim.lr": 0.01, "train.epochs": 1, "train.batch_size": 12,
            "runtime.progress": False})
        run_dir = tmp_path_factory.mktemp(mode)
        assert train_run(cfg, run_dir, progress=False)["status"] == "completed"
        out[mode] = run_dir
    return out


def test_cka_reuse_probes_rf(runs, tmp_path, capsys):
    rec, ff = str(runs["recurrent"]), str(runs["feedforward"])
    assert main(["analyze", "cka", rec, ff, "--images", "12", "--batch-size", "6",
                 "--quiet"]) == 0
    res = json.loads((runs["recurrent"] / "analysis" / "cka" / "cka.json").read_text())
    assert res["layers_a"] == ["stem", "iter 1", "iter 2", "iter 3"]
    assert res["layers_b"] == ["stem", "block 1", "block 2", "block 3"]
    assert res["examples"] == 12 and len(res["biased"]) == 4
    assert all(0.0 <= v <= 1.0 + 1e-9 for row in res["biased"] for v in row)
    assert (runs["recurrent"] / "analysis" / "cka" / "cka_debiased.png").exists()
    # A run against itself: ones on the diagonal.
    assert main(["analyze", "cka", rec, "--images", "12", "--method", "exact",
                 "--out", str(tmp_path / "self"), "--quiet"]) == 0
    same = json.loads((tmp_path / "self" / "cka.json").read_text())
    assert all(abs(same["biased"][i][i] - 1) < 1e-9 for i in range(4))

    assert main(["analyze", "reuse", rec, ff, "--images", "12", "--untrained-control",
                 "--quiet"]) == 0
    reuse = json.loads((runs["recurrent"] / "analysis" / "reuse" / "reuse.json").read_text())
    assert len(reuse["models"]) == 3
    for model in reuse["models"].values():
        assert model["ranks"] == [2, 3]
        assert sum(model["histogram"][0]) == model["active_pairs"]
        assert model["active_pairs"] + model["inactive_pairs"] == 12 * 4

    assert main(["analyze", "probes", rec, ff, "--epochs", "2", "--quiet"]) == 0
    probes = json.loads((runs["recurrent"] / "analysis" / "probes" / "probes.json").read_text())
    assert probes["task"] == "maze" and probes["train_images"] == 24
    table = capsys.readouterr().out
    assert "iter 3:" in table and "block 3:" in table
    with pytest.raises(SystemExit):
        main(["analyze", "probes"])

    assert main(["analyze", "featviz", rec, ff, "--steps", "2", "--filters", "0", "1",
                 "--quiet"]) == 0
    vis = json.loads((runs["recurrent"] / "analysis" / "featviz" / "featviz.json").read_text())
    assert vis["image_size"] == 16  # 2 (5 + 2) + 2
    assert (runs["recurrent"] / "analysis" / "featviz" / "featviz.png").exists()

    assert main(["analyze", "rf", rec, "--max-iters", "3"]) == 0
    rf = json.loads((runs["recurrent"] / "analysis" / "rf" / "rf.json").read_text())
    assert [(r["dilation"], r["analytic"], r["measured"]) for r in rf] == [
        (1, 17, 17), (1, 25, 25), (1, 33, 33), (2, 25, 25), (2, 41, 41), (2, 57, 57)]


def test_user_errors(runs, tmp_path, capsys):
    assert main(["analyze", "cka", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["analyze", "probes", str(runs["recurrent"]), "--pool", "2"]) == 2
    assert "pooling" in capsys.readouterr().err
    assert main(["analyze", "featviz", str(runs["recurrent"]), "--preset", "nope"]) == 2
    assert "valid choices" in capsys.readouterr().err
