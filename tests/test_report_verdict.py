"""The computed verdict: statistics against scipy and hand formulas, rules, and the report page."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from scipy import stats

from recurdepth.cli import main
from recurdepth.experiments import Experiment, ResultStore
from recurdepth.experiments.sweep import db_path_for, run_dirs_for
from recurdepth.report import write_report
from recurdepth.report.results import GroupStat, RunCurve
from recurdepth.report.verdict import (
    PAPER_CLAIM,
    Difference,
    DepthVerdict,
    PanelVerdict,
    classify,
    compare,
    describe,
    paired_difference,
    run_convergence,
    trials_to_decide,
    welch_difference,
)

REC = [88.5, 86.0, 90.1]
FF = [87.7, 91.2, 90.0]


def test_paired_interval_matches_scipy_and_the_t_table():
    d = paired_difference(REC, FF)
    ci = stats.ttest_rel(REC, FF).confidence_interval(0.95)
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    # By hand: differences 0.8, -5.2, 0.1; t(0.975, 2) = 4.302653 from a printed t table.
    diffs = [0.8, -5.2, 0.1]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 2)
    assert d.mean == pytest.approx(mean)
    assert d.half_width == pytest.approx(4.302653 * sd / math.sqrt(3), rel=1e-6)
    assert d.method == "paired by seed" and d.dof == 2


def test_welch_interval_matches_scipy_and_the_satterthwaite_formula():
    a, b = [40.0, 42.5, 45.0, 41.0], [60.0, 66.0, 63.0]
    d = welch_difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    va, vb = stats.tvar(a) / 4, stats.tvar(b) / 3
    dof = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    assert d.dof == pytest.approx(dof)
    assert d.mean == pytest.approx(sum(a) / 4 - sum(b) / 3)


def test_classification_rule_and_lines():
    assert classify(Difference(2.1, 3.0, "Welch", 3, 3)) == "within"
    assert describe(Difference(2.1, 3.0, "Welch", 3, 3)) == "within +2.1 ± 3.0 points"
    assert classify(Difference(-12.0, 4.0, "Welch", 3, 3)) == "behind"
    assert describe(Difference(-12.0, 4.0, "Welch", 3, 3)) == \
        "recurrent behind by 12.0 ± 4.0 points"
    assert describe(Difference(5.0, 1.5, "Welch", 3, 3)) == "recurrent ahead by 5.0 ± 1.5 points"
    assert classify(Difference(-3.0, 3.0, "Welch", 3, 3)) == "within"  # 0 on the edge
    assert classify(Difference(-6.9, 29.3, "Welch", 3, 3)) == "inconclusive"  # too wide
    assert classify(Difference(0.0, 5.0, "Welch", 3, 3)) == "within"  # the margin itself
    assert describe(Difference(-6.9, 29.3, "Welch", 3, 3)) == (
        "inconclusive: -6.9 ± 29.3 points, wider than ±5")
    assert classify(Difference(1.0, None, "no interval", 1, 1)) == "undecided"


def group(mode, accs, seeds, curves=()):
    g = GroupStat(panel="p", family="maze", mode=mode, dataset="mazes", effective_depth=8,
                  iters=1, width=8, parameters=100, extra={})
    g.test_accs, g.seeds, g.curves = list(accs), list(seeds), list(curves)
    return g


def test_trials_are_paired_by_seed_only_when_the_seeds_match():
    # Same seeds in another order: paired by seed, not by position.
    d = compare(group("recurrent", [10.0, 20.0, 30.0], [2, 0, 1]),
                group("feedforward", [21.0, 29.0, 11.0], [0, 1, 2]))
    ref = paired_difference([20.0, 30.0, 10.0], [21.0, 29.0, 11.0])
    assert d.method == "paired by seed" and d.mean == pytest.approx(ref.mean)
    assert d.half_width == pytest.approx(ref.half_width)
    d = compare(group("recurrent", [10.0, 20.0], [0, 1]),
                group("feedforward", [21.0, 29.0], [0, 5]))
    assert d.method == "Welch"
    d = compare(group("recurrent", [10.0, 20.0], [0, 1]), group("feedforward", [21.0], [0]))
    assert d.method == "no interval" and d.half_width is None and d.mean == pytest.approx(-6.0)


def test_one_iteration_is_no_test_of_the_claim():
    r, f = group("recurrent", [40.0, 30.0], [0, 1]), group("feedforward", [40.0, 30.0], [0, 1])
    depth8 = DepthVerdict(8, r, f, compare(r, f), 1.0)
    assert depth8.same_network and depth8.outcome == "within"
    assert depth8.line().endswith("one iteration: both modes are the same network")
    overall = PanelVerdict("p", [depth8]).overall()
    assert "claim holds" not in overall and "depth 8 is no test" in overall


def test_models_that_learned_nothing_are_no_test_of_the_claim():
    def grp(mode, accs, family_iters):
        g = group(mode, accs, [0, 1])
        g.iters = family_iters
        return g
    r, f = grp("recurrent", [0.0, 0.0], 3), grp("feedforward", [0.0, 0.0], 3)
    depth = DepthVerdict(16, r, f, compare(r, f), 0.4)
    assert depth.chance == 0.0 and not depth.learned and depth.no_test
    assert "no test: neither model is more than 5 points above chance (0%)" in depth.line()
    overall = PanelVerdict("p", [depth]).overall()
    assert "claim holds" not in overall and "depth 16 is no test (neither model learned)" in overall
    r, f = grp("recurrent", [4.0, 6.0], 3), grp("feedforward", [5.5, 6.5], 3)
    assert DepthVerdict(16, r, f, compare(r, f), 0.4).learned  # 6 > 0 + 5: something learned
    cifar = grp("recurrent", [14.0, 15.0], 3)
    cifar.dataset = "cifar10"
    other = grp("feedforward", [14.0, 14.5], 3)
    other.dataset = "cifar10"
    assert DepthVerdict(7, cifar, other, compare(cifar, other), 0.5).chance == 10.0
    assert not DepthVerdict(7, cifar, other, compare(cifar, other), 0.5).learned  # 15 <= 10 + 5


def test_convergence_rule():
    # 8 epochs: the last quarter starts after epoch 6.
    still = RunCurve("a", 8, [(e, None, None) for e in range(1, 6)]
                     + [(6, 50.0, 40.0), (7, 52.0, 41.0), (8, 53.5, 42.0)])
    assert run_convergence(still).converged is False
    assert run_convergence(still).gain == pytest.approx(3.5)
    flat = RunCurve("b", 8, [(6, 70.0, 60.0), (7, 70.4, 60.0), (8, 70.9, 61.0)])
    assert run_convergence(flat).converged is True
    high = RunCurve("c", 8, [(6, 80.0, 70.0), (8, 96.0, 80.0)])
    assert run_convergence(high).converged is True
    assert run_convergence(RunCurve("d", 8, [])).converged is None


# test accuracies per (mode, depth), trial 0 and 1; train curves make depth 12 unconverged.
ACCS = {("recurrent", 16): [31.0, 33.4], ("feedforward", 16): [31.0, 33.0],
        ("recurrent", 12): [40.0, 42.0], ("feedforward", 12): [60.0, 61.0]}


def make_db(folder):
    experiment = Experiment.from_dict({
        "name": "verdict_test", "trials": 2,
        "base": {"model": {"family": "maze", "width": 4}, "data": {"name": "mazes", "maze_size": 5},
                 "train": {"epochs": 4}},
        "grid": {"model.mode": ["recurrent", "feedforward"], "model.effective_depth": [16, 12]}})
    runs = experiment.runs()
    db = db_path_for(folder)
    with ResultStore.open(db, experiment) as store:
        store.sync_runs(runs, run_dirs_for(runs, folder))
        for r in runs:
            acc = ACCS[(r.config.model.mode, r.effective_depth)][r.params["trial"]]
            gain = 5.0 if r.effective_depth == 12 else 0.2
            curve = [{"epoch": e, "train_acc": acc - (4 - e) * gain, "test_acc": acc - 1}
                     for e in range(1, 5)]
            store.mark_running(r.run_id)
            store.record_result(r.run_id, {
                "status": "completed", "test_acc": acc, "train_acc": acc,
                "test_acc_per_iter": [acc] * (2 * r.iters) if r.config.model.mode == "recurrent"
                else None, "parameters": r.parameters, "iters": r.iters, "epochs": 4,
                "effective_depth": r.effective_depth, "curve": curve})
    return db, runs


def test_report_holds_the_computed_verdict_curves_and_svgs(tmp_path, capsys):
    db, runs = make_db(tmp_path)
    files = write_report(db)
    md = files.index.read_text()
    # Independent figures: depth 16 paired differences 0, 0.4 → mean 0.2, sd 0.2828, half
    # 12.706 * 0.2 = 2.54.
    # depth 12: -20, -19 → mean -19.5, sd 0.7071, half = 12.706 * 0.5.
    assert "## Verdict" in md and PAPER_CLAIM in md
    assert "depth 16: within +0.2 ± 2.5 points (paired by seed, 2 vs 2 trials)" in md
    assert "depth 12: recurrent behind by 19.5 ± 6.4 points (paired by seed" in md
    params = {(r.config.model.mode, r.effective_depth): r.parameters for r in runs}
    ratio = params[("recurrent", 12)] / params[("feedforward", 12)]
    assert f"{ratio:.2f}× the parameters" in md
    assert "the claim holds at 1 of 2 decided depths (16); recurrent behind at 12" in md
    assert "convergence, recurrent, depth 16: converged (2/2 runs)" in md
    assert "convergence, recurrent, depth 12: NOT converged: 2/2 runs" in md
    for name in ("accuracy_vs_depth", "accuracy_vs_iterations", "learning_curves"):
        assert (files.folder / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert (files.folder / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert main(["report", str(db), "--report-dir", str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "depth 12: recurrent behind by 19.5 ± 6.4 points" in out and "Overall:" in out


def test_no_verdict_without_both_modes(tmp_path):
    experiment = Experiment.from_dict({
        "name": "one_mode", "base": {"model": {"family": "maze", "width": 4, "mode": "recurrent"},
                                     "data": {"name": "mazes", "maze_size": 5}},
        "grid": {"model.effective_depth": [8]}})
    runs = experiment.runs()
    with ResultStore.open(db_path_for(tmp_path), experiment) as store:
        store.sync_runs(runs, run_dirs_for(runs, tmp_path))
        store.record_result(runs[0].run_id, {"status": "completed", "test_acc": 5.0,
                                             "train_acc": 5.0})
    files = write_report(db_path_for(tmp_path))
    assert files.verdicts == [] and "## Verdict" not in files.index.read_text()


def _chromium() -> str | None:
    for path in ("/usr/bin/chromium", shutil.which("chromium") or "",
                 shutil.which("chromium-browser") or ""):
        if path and os.access(path, os.X_OK):
            return path
    return None


def test_index_html_opens_from_any_folder_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing under CI: .ci/run must install it "
                        "(apt-get install chromium)")
        pytest.skip("SKIPPED LOUDLY: no chromium found (/usr/bin/chromium); the report page "
                    "was not rendered. Install Debian's chromium package to run this test")
    db, _ = make_db(tmp_path / "sweep")
    files = write_report(db)
    elsewhere = tmp_path / "copied"
    elsewhere.mkdir()
    page = shutil.copy(files.index_html, elsewhere / "index.html")  # alone, no PNG beside it
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", Path(page).as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    status = re.search(r"<div id=\"images-status\">([^<]*)</div>", dom)
    assert status is not None, f"page not rendered: {proc.stderr[-500:]}"
    assert status.group(1) == "images-ok 3"
    assert "recurrent behind by 19.5 ± 6.4 points" in dom and "Overall:" in dom


def test_trials_to_decide_is_the_first_count_whose_interval_decides():
    # Observed: mean -6.9, spread 11.8 (per-seed differences, 3 pairs): t(0.975, n-1)·s/√n
    # must fall to 5 points (|mean| > 5, so leaving 0 decides first); scipy's t, not ours.
    d = paired_difference([40.0, 30.0, 55.0], [52.0, 45.0, 49.0])
    diffs = [-12.0, -15.0, 6.0]
    s = stats.tstd(diffs)
    assert d.spread == pytest.approx(s)
    n = trials_to_decide(d)

    def half(k):
        return stats.t.ppf(0.975, k - 1) * s / math.sqrt(k)
    target = max(5.0, abs(d.mean))
    assert half(n) <= target + 1e-12 and half(n - 1) > target
    assert trials_to_decide(Difference(1.0, None, "no interval", 1, 1)) is None
    w = welch_difference([40.0, 42.5, 45.0, 41.0], [60.0, 66.0, 63.0])
    assert w.spread == pytest.approx(math.sqrt(stats.tvar([40.0, 42.5, 45.0, 41.0])
                                               + stats.tvar([60.0, 66.0, 63.0])))


TWIN_ACCS = {("recurrent", 16): [80.0, 70.0, 85.0], ("feedforward", 16): [86.0, 84.0, 85.5],
             ("recurrent", 8): [4.0, 3.0, 5.0]}


def _twin_report(tmp_path: Path, accs: dict[tuple[str, int], list[float]]):
    """The report of a 3-trial experiment whose runs reached ``accs`` (depth 8 trained once,
    as recurrent; the other depths in both modes); returns (files, parameters by (mode, depth))."""
    depths = sorted({d for _, d in accs if d != 8})
    experiment = Experiment.from_dict({
        "name": "twin_test", "trials": 3,
        "base": {"model": {"family": "maze", "width": 4}, "data": {"name": "mazes", "maze_size": 5},
                 "train": {"epochs": 4}},
        "grid": [{"model.effective_depth": depths, "model.mode": ["recurrent", "feedforward"]},
                 {"model.effective_depth": [8], "model.mode": ["recurrent"]}]})
    runs = experiment.runs()
    assert len(runs) == 3 * (2 * len(depths) + 1)
    db = db_path_for(tmp_path)
    params = {(r.config.model.mode, r.effective_depth): r.parameters for r in runs}
    with ResultStore.open(db, experiment) as store:
        store.sync_runs(runs, run_dirs_for(runs, tmp_path))
        for r in runs:
            acc = accs[(r.config.model.mode, r.effective_depth)][r.params["trial"]]
            curve = [{"epoch": e, "train_acc": acc, "test_acc": acc} for e in range(1, 5)]
            store.mark_running(r.run_id)
            store.record_result(r.run_id, {
                "status": "completed", "test_acc": acc, "train_acc": acc, "epochs": 4,
                "parameters": r.parameters, "iters": r.iters, "curve": curve,
                "effective_depth": r.effective_depth})
    return write_report(db), params


def _trials_needed(diffs: list[float]) -> int:
    """Trials per mode whose 95% interval at this spread decides (scipy's t quantiles)."""
    s, mean = stats.tstd(diffs), abs(sum(diffs) / len(diffs))
    return next(k for k in range(2, 10_000)
                if stats.t.ppf(0.975, k - 1) * s / math.sqrt(k) <= max(5.0, mean))


def test_both_halves_with_depth_8_trained_once(tmp_path):
    """Depth 8 trained once (recurrent) is shown under both modes; half (b) compares recurrent
    depth 16 with it (same parameters) and half (a) stays open, with the trials it needs."""
    files, params = _twin_report(tmp_path, TWIN_ACCS)
    md = files.index.read_text()
    # The depth table shows depth 8 under both modes, with the one network's parameters.
    row8 = next(line for line in (files.folder / "depth_table.md").read_text().splitlines()
                if "| 8 |" in line)
    assert row8.count("4.00 ± 0.58") == 2 and row8.count(f"{params[('recurrent', 8)]:,}") == 2
    assert ("Depth 8 is one iteration, where both modes are the same network: it was trained "
            "once (as recurrent) and its runs fill both columns.") in md
    assert "| feed-forward (the recurrent runs: one iteration) | 8 |" in (
        files.folder / "results.md").read_text()
    assert ("depth 8: one iteration: both modes are the same network, trained once (as "
            "recurrent) and shown under both, 4.0% over 3 trial(s); no test of the claim") in md
    # Half (b): recurrent 16 minus the depth-8 network, paired by seed (scipy's interval).
    assert params[("recurrent", 16)] == params[("recurrent", 8)]
    ci = stats.ttest_rel(TWIN_ACCS[("recurrent", 16)],
                         TWIN_ACCS[("recurrent", 8)]).confidence_interval(0.95)
    mean, half = (ci.low + ci.high) / 2, (ci.high - ci.low) / 2
    assert (f"recurrent depth 16 vs feed-forward depth 8, trained as recurrent: the same network "
            f"({params[('recurrent', 16)]:,} vs {params[('recurrent', 8)]:,} parameters, equal): "
            f"recurrent ahead by {mean:.1f} ± {half:.1f} points (paired by seed, 3 vs 3 trials)"
            ) in md
    # Half (a) at depth 16: differences -6, -14, -0.5 → inconclusive; the trials that would
    # decide it come from scipy's t at the observed spread.
    need = _trials_needed([-6.0, -14.0, -0.5])
    assert (f"Headline: decided at equal parameters; not decided at equal effective depth "
            f"(depth 16: about {need} trials per mode (3 ran)") in md
    assert "the recurrent model beats the feed-forward model with the same parameter count at " \
           "every compared depth 16 (vs 8)" in md
    # The one-iteration runs are listed once in the convergence lines and drawn once.
    assert md.count("convergence, recurrent, depth 8 (also shown as feed-forward") == 1
    assert "convergence, feed-forward, depth 8" not in md
    assert "(b) Equal parameters" in files.verdict_text()


def test_headline_names_the_depths_where_a_half_is_decided(tmp_path):
    """Half (b) decided at depth 16 but open at depth 12: the headline says both, with the
    trials depth 12 would need (the main job's seed-0 shape)."""
    accs = {**TWIN_ACCS, ("recurrent", 12): [40.0, 10.0, 60.0],
            ("feedforward", 12): [50.0, 52.0, 51.0]}
    files, _ = _twin_report(tmp_path, accs)
    md = files.index.read_text()
    need_b12 = _trials_needed([40.0 - 4.0, 10.0 - 3.0, 60.0 - 5.0])
    need_a12 = _trials_needed([-10.0, -42.0, 9.0])
    need_a16 = _trials_needed([-6.0, -14.0, -0.5])
    assert (f"Headline: decided at equal parameters at depth 16 (recurrent ahead); not decided "
            f"at equal effective depth (depth 12: about {need_a12} trials per mode (3 ran); "
            f"depth 16: about {need_a16} trials per mode (3 ran), if the observed mean and "
            f"spread held; or a GPU, which trains such trials and the paper's full-size models); "
            f"and at equal parameters (depth 12: about {need_b12} trials per mode (3 ran), if "
            f"the observed mean and spread held;") in md


def test_header_and_verdict_agree_on_trials_and_a_smoke_run_says_so(tmp_path, capsys):
    """A swept seed (seed=0,1) is two trials in the header as in the verdict; the quick preset's
    report carries its description, which calls it a smoke run."""
    from recurdepth.experiments import load_experiment

    experiment = Experiment.from_dict({
        "name": "seeds", "description": "Smoke run: checks the pipeline, not the paper.",
        "base": {"model": {"family": "maze", "width": 4},
                 "data": {"name": "mazes", "maze_size": 5}},
        "grid": {"seed": [0, 1], "model.mode": ["recurrent", "feedforward"],
                 "model.effective_depth": [12]}})
    runs = experiment.runs()
    with ResultStore.open(db_path_for(tmp_path), experiment) as store:
        store.sync_runs(runs, run_dirs_for(runs, tmp_path))
        for r in runs:
            store.mark_running(r.run_id)
            store.record_result(r.run_id, {"status": "completed", "test_acc": 50.0 + r.config.seed,
                                           "train_acc": 50.0, "parameters": r.parameters,
                                           "iters": r.iters, "effective_depth": 12})
    md = write_report(db_path_for(tmp_path)).index.read_text()
    assert "· 2 trial(s) per configuration." in md and "2 vs 2 trials" in md
    assert "*Smoke run: checks the pipeline, not the paper.*" in md
    assert "smoke" in load_experiment("quick").description.lower()
