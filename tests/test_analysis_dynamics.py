"""Think-longer dynamics: known answers of hand-built units, the classification rule, and
``recurdepth analyze dynamics`` on tiny trained maze runs; the analysis registry."""

import json
import math

import pytest
import torch
from torch import nn

from recurdepth.analysis.dynamics import (
    NOT_APPLICABLE,
    classify,
    model_dynamics,
    spectral_radius,
)
from recurdepth.analysis.registry import get_analysis, list_analyses
from recurdepth.cli import main
from recurdepth.data.tasks import get_task
from recurdepth.errors import ConfigError
from recurdepth.models.unrolled import Unit, UnrolledNet
from test_analysis_cli import runs as tiny_runs  # noqa: F401  (a shared fixture)


class Contraction(Unit):
    """h <- 0.5 h + c(x): a contraction towards the input-dependent fixed point 2 c(x)."""

    recall = True

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 1)

    def forward(self, h, slot=0, inp=None):
        return 0.5 * h + self.c(inp)


class Rotation(Unit):
    """Rotates the two channels of every pixel by 60 degrees: a cycle of period 6."""

    def __init__(self) -> None:
        super().__init__()
        a = math.pi / 3
        self.register_buffer("r", torch.tensor([[math.cos(a), -math.sin(a)],
                                                [math.sin(a), math.cos(a)]]))

    def forward(self, h, slot=0):
        return torch.einsum("ij,njhw->nihw", self.r, h)


class Constant(nn.Module):
    """A head that always answers class 0, so accuracy does not move with the state."""

    def forward(self, h):
        return torch.stack([torch.ones(len(h)), torch.zeros(len(h))], 1)


def _net(unit: type, channels: int) -> UnrolledNet:
    torch.manual_seed(0)
    return UnrolledNet(family="toy", mode="recurrent", dataset="toy", iters=2,
                       stem=nn.Conv2d(3, channels, 1), make_unit=lambda n: unit(),
                       head=Constant()).eval()


def _data(n: int = 16):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 5, 5, generator=g), torch.zeros(n, dtype=torch.long)


def test_contraction_converges_with_radius_one_half_and_is_path_independent():
    x, y = _data()
    res = model_dynamics(_net(Contraction, 4), get_task("classification"), x, y, iters=16, n=8)
    # ||h_k - h_(k-1)|| / ||h_(k-1)|| shrinks by about half per iteration towards 0.
    assert res.change[-1] < 1e-3 and res.change[-1] < res.change[5] < res.change[0]
    assert abs(res.spectral_radius["trained"] - 0.5) <= 0.01
    assert abs(res.spectral_radius["end"] - 0.5) <= 0.01
    assert isinstance(res.path_independence, dict)
    for name in ("another input's state", "noise", "zeros"):
        assert res.path_independence[name]["cosine_end"] > 0.999, name
    assert res.classification == "converges", res.line


def test_rotation_is_a_limit_cycle_not_convergence():
    x, y = _data()
    res = model_dynamics(_net(Rotation, 2), get_task("classification"), x, y, iters=16, n=8)
    # A rotation by 60 degrees moves the state by 2 sin(30 deg) = 1 of its norm every time.
    assert all(abs(c - 1.0) < 1e-5 for c in res.change)
    assert abs(res.norm[-1] / res.norm[0] - 1) < 1e-5
    assert abs(res.spectral_radius["end"] - 1.0) <= 0.01
    assert res.period == 6
    assert res.classification == "limit cycle", res.line
    assert res.path_independence == NOT_APPLICABLE


def test_spectral_radius_matches_numpy_eigenvalues_of_a_linear_unit():
    class Linear(Unit):
        def __init__(self):
            super().__init__()
            self.w = nn.Conv2d(3, 3, 1, bias=False)

        def forward(self, h, slot=0):
            return self.w(h)

    net = _net(Linear, 3)
    w = net.body[0].w.weight.detach()[:, :, 0, 0].double()
    expected = max(abs(torch.linalg.eigvals(w))).item()  # independent: numpy-style eigvals
    h = torch.randn(4, 3, 2, 2)
    got = spectral_radius(net, h, 0, h, steps=400)
    assert torch.allclose(got, torch.full_like(got, expected, dtype=got.dtype), rtol=0.02)


def test_classification_rule():
    # The measured 7x7 maze solver: a peak after the trained 3 iterations, then nothing.
    acc = [8.6, 21.4, 67.4, 70.4, 30.8, 6.8, 2.0, 2.0, 1.0, 0.5, 0.2, 0.0]
    norm = [17.5 * 2.3 ** k for k in range(12)]
    label, line = classify(acc, norm, [1.5] * 12, 3)
    assert label == "overthinks" and "peak 70.4% at iteration 4" in line
    assert "diverges" in line and "x2.30" in line
    assert classify([50.0] * 12, norm, [1.5] * 12, 3)[0] == "diverges"
    assert classify([50.0] * 12, [3.0] * 12, [0.5 ** k for k in range(12)], 3)[0] == "converges"
    assert classify([50.0] * 12, [3.0] * 12, [0.3] * 12, 3)[0] == "limit cycle"
    # A small wobble of the accuracy is no overthinking.
    assert classify([50.0] * 11 + [47.0], [3.0] * 12, [1e-4] * 12, 3)[0] == "converges"


def test_registry_lists_every_analysis_and_its_function_takes_its_options():
    import inspect

    assert list_analyses() == ["reuse", "probes", "cka", "featviz", "rf", "dynamics"]
    for name in list_analyses():
        a = get_analysis(name)
        params = inspect.signature(a.load()).parameters
        for option in a.option_names():
            assert params[option].kind is inspect.Parameter.KEYWORD_ONLY, (name, option)
            declared = next((o.default for o in a.options if o.name == option), a.batch_size)
            if declared is not None and option != "pool":
                assert params[option].default == declared, (name, option)
    with pytest.raises(ConfigError, match="valid choices: reuse, probes"):
        get_analysis("nope")
    # Presets take the registered analyses that have a paper table, and nothing else.
    from recurdepth.experiments.analysis_spec import ANALYSES
    from recurdepth.report.paper_analyses import TABLES

    assert set(ANALYSES) == set(TABLES) and set(ANALYSES) <= set(list_analyses())


# -- through the user's path ------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tiny_runs):
    """The two tiny maze runs of test_analysis_cli (5x5 mazes, 3 iterations), with 7x7 test mazes
    generated beside their data for a second size."""
    from recurdepth.data.mazes import generate_dataset, maze_dir
    from recurdepth.training.config import read_resolved

    root = read_resolved(tiny_runs["recurrent"] / "config.yaml").data.root
    if not maze_dir(root, 7).exists():
        generate_dataset(maze_dir(root, 7), size=7, n_train=4, n_test=6, seed=1, progress=False)
    return tiny_runs


def test_analyze_dynamics_cli(runs, capsys):
    rec = runs["recurrent"]
    assert main(["analyze", "dynamics", str(rec), "--sizes", "5", "7", "--mult", "3",
                 "--n", "4", "--power-steps", "6", "--quiet"]) == 0
    printed = capsys.readouterr().out
    folder = rec / "analysis" / "dynamics"
    res = json.loads((folder / "dynamics.json").read_text())
    assert [s["size"] for s in res["sizes"]] == [5, 7]
    assert res["trained_iters"] == 3 and res["iters"] == 9
    assert res["classification"] in ("converges", "overthinks", "diverges", "limit cycle")
    first = res["sizes"][0]
    assert first["images"] == 12 and res["sizes"][1]["images"] == 6
    assert first["path_independence"] == NOT_APPLICABLE  # the maze unit has no recall
    assert len(first["accuracy"]) == len(first["norm"]) == len(first["change"]) == 9
    assert set(first["spectral_radius"]) == {"trained", "end"}
    rows = (folder / "dynamics.csv").read_text().splitlines()
    assert rows[0] == "size,iteration,accuracy,state_norm,relative_change" and len(rows) == 19
    assert (folder / "dynamics.png").stat().st_size > 0
    assert res["line"] in printed and "not applicable: the unit does not see the input" in printed


def test_analyze_dynamics_refuses_a_feedforward_run(runs, capsys):
    assert main(["analyze", "dynamics", str(runs["feedforward"]), "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes recurrent runs, not feedforward" in err[0]


def test_cli_and_python_api_write_the_same_files(runs, tmp_path):
    from recurdepth.analysis import analyze_reuse

    rec, ff = runs["recurrent"], runs["feedforward"]
    assert main(["analyze", "reuse", str(rec), str(ff), "--images", "8", "--out",
                 str(tmp_path / "cli"), "--quiet"]) == 0
    analyze_reuse(rec, ff, images=8, out=tmp_path / "api", progress=False)
    for name in ("reuse.json", "reuse.csv"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()
