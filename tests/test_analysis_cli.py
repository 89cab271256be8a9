"""``recurdepth analyze`` end to end on two tiny trained maze runs."""

import json
import shutil

import pytest
import yaml

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


def _pair(runs, analysis):
    """Two-run analyses write to a folder named after both runs."""
    return (runs["recurrent"] / "analysis" / analysis
            / f"{runs['recurrent'].name}_vs_{runs['feedforward'].name}")


def test_cka_reuse_probes_rf(runs, tmp_path, capsys):
    rec, ff = str(runs["recurrent"]), str(runs["feedforward"])
    assert main(["analyze", "cka", rec, ff, "--images", "12", "--batch-size", "6",
                 "--method", "minibatch", "--quiet"]) == 0
    res = json.loads((_pair(runs, "cka") / "cka.json").read_text())
    assert res["method"] == "minibatch" and res["headline"] == "debiased"
    assert "not the paper" in res["labels"]["biased"]
    assert res["layers_a"] == ["stem", "iter 1", "iter 2", "iter 3"]
    assert res["layers_b"] == ["stem", "block 1", "block 2", "block 3"]
    assert res["examples"] == 12 and len(res["biased"]) == 4
    assert all(0.0 <= v <= 1.0 + 1e-9 for row in res["biased"] for v in row)
    assert (_pair(runs, "cka") / "cka_debiased.png").exists()
    # The default is exact (it fits the memory budget): the paper's biased CKA is the headline.
    capsys.readouterr()
    assert main(["analyze", "cka", rec, ff, "--images", "12", "--quiet"]) == 0
    exact = json.loads((_pair(runs, "cka") / "cka.json").read_text())
    assert exact["method"] == "exact" and exact["headline"] == "biased"
    assert "the paper's" in exact["labels"]["biased"]
    assert "biased minibatch" not in capsys.readouterr().out
    # A run against itself: ones on the diagonal.
    assert main(["analyze", "cka", rec, "--images", "12", "--method", "exact",
                 "--out", str(tmp_path / "self"), "--quiet"]) == 0
    same = json.loads((tmp_path / "self" / "cka.json").read_text())
    assert all(abs(same["biased"][i][i] - 1) < 1e-9 for i in range(4))

    assert main(["analyze", "reuse", rec, ff, "--images", "12", "--untrained-control",
                 "--quiet"]) == 0
    reuse = json.loads((_pair(runs, "reuse") / "reuse.json").read_text())
    assert reuse["image_seed"] == 0
    assert len(reuse["models"]) == 3
    for model in reuse["models"].values():
        assert model["ranks"] == [2, 3]
        assert sum(model["histogram"][0]) == model["active_pairs"]
        assert model["active_pairs"] + model["inactive_pairs"] == 12 * 4

    assert main(["analyze", "probes", rec, ff, "--epochs", "2", "--quiet"]) == 0
    probes = json.loads((_pair(runs, "probes") / "probes.json").read_text())
    assert probes["task"] == "maze" and probes["train_images"] == 24
    table = capsys.readouterr().out
    assert "iter 3:" in table and "block 3:" in table
    with pytest.raises(SystemExit):
        main(["analyze", "probes"])

    assert main(["analyze", "featviz", rec, ff, "--steps", "2", "--filters", "0", "1",
                 "--quiet"]) == 0
    vis = json.loads((_pair(runs, "featviz") / "featviz.json").read_text())
    assert vis["image_size"] == 16  # 2 (5 + 2) + 2
    assert (_pair(runs, "featviz") / "featviz.png").exists()

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


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_bad_images_and_mismatched_runs(runs, tmp_path, capsys):
    rec, ff = str(runs["recurrent"]), str(runs["feedforward"])
    assert main(["analyze", "cka", rec, ff, "--images", "0"]) == 2
    _one_error_line(capsys, "--images", "at least 1")
    assert main(["analyze", "reuse", rec, "--images", "13", "--quiet"]) == 2
    _one_error_line(capsys, "--images 13", "12 test images")
    # Without --images: the paper's 1,000, clamped to the 12 images this test set holds.
    assert main(["analyze", "reuse", rec, "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "reuse.json").read_text())["images"] == 12
    assert main(["analyze", "cka", rec, ff, "--quiet", "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "cka.json").read_text())["examples"] == 12
    assert main(["analyze", "probes", rec, "--test-images", "50", "--quiet"]) == 2
    _one_error_line(capsys, "--test-images")
    # A copy of the run that claims other data (mazes of size 7: other image size).
    other = tmp_path / "other"
    shutil.copytree(runs["feedforward"], other)
    saved = yaml.safe_load((other / "config.yaml").read_text())
    for part in saved.values():
        part["data"]["options"]["size"] = 7
    (other / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert main(["analyze", "cka", rec, str(other), "--images", "4"]) == 2
    # Its checkpoint was trained with the config before the edit: refused as another run's.
    _one_error_line(capsys, "belongs to another run", "config.yaml")


def test_out_of_range_layers_steps_image_side_and_iterations(runs, tmp_path, capsys):
    rec, ff = str(runs["recurrent"]), str(runs["feedforward"])
    assert main(["analyze", "featviz", ff, "--layers", "7", "--quiet"]) == 2
    _one_error_line(capsys, "layer 7 does not exist", "choose 0 (stem) to 3")
    assert main(["analyze", "featviz", rec, "--steps", "0", "--quiet"]) == 2
    _one_error_line(capsys, "at least 1 step", "got 0")
    assert main(["analyze", "rf", rec, "--image-side", "0"]) == 2
    _one_error_line(capsys, "--image-side must be at least 1")
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["recurrent"], sweep / "runs" / "one")
    assert main(["analyze", "cka", str(sweep), "--quiet"]) == 2
    _one_error_line(capsys, "is a sweep's folder, not a run folder", str(sweep / "runs" / "one"))
    import recurdepth

    for bad in (0, -2, "1..5", [1, 3], True):
        with pytest.raises(recurdepth.ConfigError, match="iters must be a whole number"):
            recurdepth.evaluate(rec, iters=bad)


def test_family_without_iterations_is_refused(runs, tmp_path, capsys):
    run = tmp_path / "resnet"
    shutil.copytree(runs["recurrent"], run)
    cfg = (run / "config.yaml").read_text()
    cfg = (cfg.replace("family: maze", "family: resnet18").replace("name: mazes", "name: cifar10")
           .replace("mode: recurrent", "mode: feedforward").replace("iters: 3", "iters: null")
           .replace("width: 4", "width: null"))
    (run / "config.yaml").write_text(cfg)
    assert main(["analyze", "cka", str(run), "--images", "4"]) == 2
    _one_error_line(capsys, "resnet18", "does not expose")
