"""The paper's analysis presets (`recurdepth reproduce --preset NAME --quick`) end to end on tiny
CIFAR-10 files in the official format: training through the sweep, the analysis per trial, and
the table with the paper's numbers beside ours.

The paper's numbers below are transcribed from the paper (Tables 3, 6, 7 and §5.1), independently
of the preset files, so a typo in a preset fails here.
"""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import pytest

from fixtures_data import write_cifar10
from recurdepth.cli import main
from recurdepth.errors import ConfigError
from recurdepth.experiments import load_experiment
from recurdepth.experiments.analysis_spec import AnalysisPreset, list_analysis_presets

PAPER = {
    ("table3_probes", "feed-forward", "none"): [(84.7, 81.6), (94.1, 86.9), (99.3, 89.8),
                                                (100.0, 90.6)],
    ("table3_probes", "recurrent", "none"): [(86.3, 82.3), (95.9, 87.5), (99.5, 89.4),
                                             (99.9, 90.3)],
    ("table3_probes", "feed-forward", "4"): [(85.7, 83.4), (94.1, 88.0), (99.4, 90.2),
                                             (99.8, 90.8)],
    ("table3_probes", "recurrent", "4"): [(88.1, 84.1), (96.9, 88.4), (99.7, 89.8),
                                          (99.9, 90.4)],
    ("table7_probes", "R-MLP", "none"): [(46.52, 44.28), (50.67, 47.22), (57.54, 52.07),
                                         (59.43, 54.08), (61.43, 55.19), (61.54, 55.39)],
    ("table7_probes", "R-CNN", "none"): [(58.74, 68.67), (59.68, 66.99), (65.39, 70.74),
                                         (67.73, 73.84)],
}
PAPER_CKA = {"feed-forward d9 vs recurrent d9": 0.843, "feed-forward d9 vs feed-forward d5": 0.819}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper_analyses")
    write_cifar10(folder / "data", per_batch=10, n_test=20)
    return folder


def reproduce(workdir: Path, monkeypatch, name: str, *extra: str) -> int:
    monkeypatch.chdir(workdir)
    return main(["reproduce", "--preset", name, "--quick", "--data-root", "data",
                 "--no-progress", *extra])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_analysis_of_the_paper_has_a_preset():
    assert set(list_analysis_presets()) == {"table3_probes", "table7_probes", "fig6_reuse",
                                            "cka_convnets", "fig8_featviz", "mazes_cka",
                                            "mazes_reuse", "mazes_probes"}


def test_smoke_forms_never_download():
    from recurdepth.experiments.analysis_spec import load_analysis_preset

    for name in list_analysis_presets():
        runs = load_analysis_preset(name).experiment(quick=True).runs()
        assert runs and not any(r.config.data.download for r in runs), name


def test_maze_preset_runs_offline_on_the_main_jobs_runs(tmp_path, monkeypatch, capsys):
    def offline(*_a, **_k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--preset", "mazes_reuse", "--quick", "--no-progress"]) == 0
    out = tmp_path / "reproduce" / "mazes_reuse-quick"
    rows = {r["model"]: r for r in read_csv(out / "mazes_reuse.csv")}
    assert len(rows) == 2 and any("recurrent" in m for m in rows)
    reuse = json.loads(next((out / "trial-0").glob("*/reuse.json")).read_text())
    assert reuse["images"] == 12 and all(m["iters"] == 3 for m in reuse["models"].values())
    # Its runs are the main job's configurations (7x7 mazes generated beside them, offline).
    assert list((tmp_path / "reproduce").glob("reproduce-o*/data/mazes_7"))


@pytest.mark.parametrize("name", ["table3_probes", "table7_probes"])
def test_probe_tables_put_the_papers_numbers_beside_ours(workdir, monkeypatch, capsys, name):
    assert reproduce(workdir, monkeypatch, name) == 0
    out = workdir / "reproduce" / f"{name}-quick"
    rows = read_csv(out / f"{name}.csv")
    wanted = {k[1:]: v for k, v in PAPER.items() if k[0] == name}
    assert {(r["model"], r["pooling"]) for r in rows} == set(wanted)
    result = json.loads((out / "result.json").read_text())
    probes = json.loads(next((out / "trial-0").glob("*/probes.json")).read_text())
    for r in rows:
        block = int(r["block"])
        paper_train, paper_test = wanted[(r["model"], r["pooling"])][block - 1]
        assert float(r["paper_train_acc"]) == pytest.approx(paper_train)
        assert float(r["paper_test_acc"]) == pytest.approx(paper_test)
        key = r["model"] + ("" if r["pooling"] == "none" else f", pool {r['pooling']}x"
                                                               f"{r['pooling']}")
        ours = probes["models"][key][block - 1]  # one quick trial: the table is that trial
        assert float(r["train_acc"]) == pytest.approx(ours["train_acc"], abs=1e-4)
        assert float(r["test_acc"]) == pytest.approx(ours["test_acc"], abs=1e-4)
    assert result["quick"] is True and result["trials"] == 1
    printed = capsys.readouterr().out
    assert "paper (Table" in printed and (out / f"{name}.md").exists()
    assert (out / f"{name}.png").stat().st_size > 0


def test_reuse_preset_aggregates_two_trials(workdir, monkeypatch, capsys):
    assert reproduce(workdir, monkeypatch, "fig6_reuse") == 0
    out = workdir / "reproduce" / "fig6_reuse-quick"
    shares = []
    for trial in (0, 1):
        rows = read_csv(out / f"trial-{trial}" / "recurrent-ConvNet" / "reuse.csv")
        last = [r for r in rows if r["rank"] == "5"]
        total = sum(int(r["count"]) for r in last)
        kept = sum(int(r["count"]) for r in last if float(r["ratio_from"]) >= 0.2 - 1e-9)
        shares.append(kept / total)
        reuse = json.loads((out / f"trial-{trial}" / "recurrent-ConvNet" / "reuse.json")
                           .read_text())
        assert reuse["images"] == 12 and reuse["image_seed"] == 0
    (row,) = read_csv(out / "fig6_reuse.csv")
    assert float(row["share_least_active_ge_0.2"]) == pytest.approx(sum(shares) / 2, abs=1e-4)
    assert "± " in (out / "fig6_reuse.md").read_text()  # two trials: mean ± SD
    assert (out / "fig6_reuse.png").stat().st_size > 0  # the histogram of both trials pooled


def test_cka_preset_compares_the_two_pairs(workdir, monkeypatch, capsys):
    assert reproduce(workdir, monkeypatch, "cka_convnets") == 0
    out = workdir / "reproduce" / "cka_convnets-quick"
    rows = {r["pair"]: r for r in read_csv(out / "cka_convnets.csv")}
    assert {k: float(r["paper"]) for k, r in rows.items()} == PAPER_CKA
    for pair, folder in (("feed-forward d9 vs recurrent d9", "feed-forward-d9_vs_recurrent-d9"),
                         ("feed-forward d9 vs feed-forward d5",
                          "feed-forward-d9_vs_feed-forward-d5")):
        cka = json.loads((out / "trial-0" / folder / "cka.json").read_text())
        assert cka["method"] == "exact" and cka["examples"] == 12
        assert float(rows[pair]["cka"]) == pytest.approx(cka["biased"][-1][-1], abs=1e-4)
        assert 0.0 <= cka["biased"][-1][-1] <= 1.0
    printed = capsys.readouterr().out
    assert "the paper: 0.843 > 0.819" in printed
    assert (out / "cka_convnets.png").stat().st_size > 0


def test_featviz_preset_and_rerun_reuses_the_trained_runs(workdir, monkeypatch, capsys):
    assert reproduce(workdir, monkeypatch, "fig8_featviz") == 0
    out = workdir / "reproduce" / "fig8_featviz-quick"
    assert (out / "trial-0" / "recurrent_vs_feed-forward" / "featviz.png").stat().st_size > 0
    rows = read_csv(out / "fig8_featviz.csv")
    assert {r["model"] for r in rows} == {"recurrent", "feed-forward"}
    assert len(list((workdir / "reproduce").glob("fig2_cifar10-o*"))) == 1  # one shared sweep
    checkpoints = sorted((workdir / "reproduce").glob("fig2_cifar10-o*/runs/*/checkpoint_last.pt"))
    assert checkpoints
    before = {p: p.stat().st_mtime_ns for p in checkpoints}
    assert reproduce(workdir, monkeypatch, "fig8_featviz") == 0
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == before  # nothing retrained
    # Other images under another data root: the finished runs are not analysed on them.
    write_cifar10(workdir / "other", per_batch=10, n_test=20, seed=1)
    assert main(["reproduce", "--preset", "fig8_featviz", "--quick", "--data-root", "other",
                 "--no-progress"]) == 2
    assert "was trained on other data than" in capsys.readouterr().err


def test_analysis_preset_bad_input(workdir, monkeypatch, capsys):
    assert reproduce(workdir, monkeypatch, "fig6_reuse", "--seed", "3") == 2
    assert "--seed does not apply" in capsys.readouterr().err
    monkeypatch.chdir(workdir)
    assert main(["reproduce", "--preset", "fig6_reuse", "--full"]) == 2
    assert "--full" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "fig2_cifar10", "--quick"]) == 2
    assert "train.epochs=1" in capsys.readouterr().err
    base = {"name": "x", "of": "fig2_cifar10", "analysis": "cka", "groups": [["a"]],
            "runs": {"a": {"model.family": "convnet", "model.mode": "recurrent",
                           "model.effective_depth": 9}}}
    with pytest.raises(ConfigError, match="valid keys"):
        AnalysisPreset.from_dict({**base, "colour": 1})
    with pytest.raises(ConfigError, match="valid choices"):
        AnalysisPreset.from_dict({**base, "analysis": "nope"})
    with pytest.raises(ConfigError, match="unknown cka option 'pool'; valid choices: images"):
        AnalysisPreset.from_dict({**base, "options": {"pool": [4]}})
    with pytest.raises(ConfigError, match="must name one or two"):
        AnalysisPreset.from_dict({**base, "groups": [["b"]]})
    too_broad = AnalysisPreset.from_dict({**base, "runs": {"a": {"model.family": "convnet"}}})
    with pytest.raises(ConfigError, match="picks 10 of its runs"):
        too_broad.experiment()


def test_missing_data_stops_the_preset_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    args = ["reproduce", "--preset", "fig6_reuse", "--quick", "--data-root", "empty",
            "--no-progress"]
    def offline(*_a, **_k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", offline)  # the preset downloads: make it fail
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cifar10 data set" in err
    assert "cifar-10-python.tar.gz" in err  # where to get it
    assert not (tmp_path / "reproduce").exists()  # nothing made: no run, no empty folder
    args[args.index("empty")] = "absent"  # a data root that does not exist stays absent
    assert main(args) == 2
    capsys.readouterr()
    assert not (tmp_path / "absent").exists() and not (tmp_path / "reproduce").exists()


def test_subset_keeps_the_full_experiments_run_ids():
    full = load_experiment("fig2_cifar10")
    part = full.subset([{"model.family": "convnet", "model.mode": "recurrent",
                         "model.effective_depth": 9}], trials=2)
    ids = {r.name: r.run_id for r in full.runs()}
    runs = part.runs()
    assert [r.name for r in runs] == ["convnet-recurrent-d9-t0", "convnet-recurrent-d9-t1"]
    assert all(ids[r.name] == r.run_id for r in runs) and part.name == full.name
