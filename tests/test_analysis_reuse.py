"""Activation reuse: exact histograms of a constructed network with known firing patterns."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recurdepth.analysis.reuse import activation_counts, plot_reuse, reuse_histogram
from recurdepth.errors import ConfigError
from recurdepth.models import UnrolledNet, build_model
from recurdepth.models.unrolled import Unit

ITERS, H, W = 4, 4, 6


class ClockUnit(Unit):
    """Channel 0 counts iterations; channel c (1..5) fires only when the count is c.

    Channel 6 fires everywhere on the left half and, on the right half, only at iteration 1:
    its count is [HW, HW/2, HW/2, HW/2]. Channel 5 never fires within 4 iterations.
    """

    def forward(self, x, slot=0):
        t = x[:, :1] + 1.0
        hats = [F.relu(t - c + 1) - 2 * F.relu(t - c) + F.relu(t - c - 1) for c in range(1, 6)]
        left = torch.zeros_like(t)
        left[..., : W // 2] = 1.0
        half = torch.where(t == 1, torch.ones_like(t), left)
        return torch.cat([t, *hats, half], dim=1)


def clock_net(mode="recurrent"):
    stem = nn.Identity()  # the input holds a zero clock
    return UnrolledNet(family="clock", mode=mode, dataset="mazes", iters=ITERS, stem=stem,
                       make_unit=lambda slots: ClockUnit(), head=nn.Identity())


def test_counts_of_the_constructed_network():
    n = 3
    counts = activation_counts(clock_net(), torch.zeros(n, 7, H, W), batch_size=2)
    hw = H * W
    assert counts.shape == (ITERS, n, 7)
    assert counts[:, 0, 0].tolist() == [hw] * ITERS
    for c in range(1, 5):
        assert counts[:, 0, c].tolist() == [hw if i + 1 == c else 0 for i in range(ITERS)]
    assert counts[:, :, 5].sum() == 0
    assert counts[:, 0, 6].tolist() == [hw, hw // 2, hw // 2, hw // 2]


@pytest.mark.parametrize("unit", ["pair", "filter"])
def test_exact_histogram(unit):
    n = 5
    counts = activation_counts(clock_net(), torch.zeros(n, 7, H, W))
    res = reuse_histogram(counts, bins=4, unit=unit)
    per = n if unit == "pair" else 1
    assert res.ranks == [2, 3, 4]  # k = min(5, iters) = 4
    # Bins [0, .25), [.25, .5), [.5, .75), [.75, 1]: the clock (ratio 1), the half channel
    # (ratio 0.5) and the four one-iteration filters (ratio 0) at every rank.
    assert res.histogram == [[4 * per, 0, per, per]] * 3
    assert res.active_pairs == 6 * per
    assert res.inactive_pairs == per
    assert res.never_active_filters == 1
    assert res.mean_ratio == pytest.approx([1.5 / 6] * 3)
    json.dumps(res.to_dict())


def test_k_and_feedforward_twin_control(tmp_path):
    counts = activation_counts(clock_net(), torch.zeros(2, 7, H, W))
    res = reuse_histogram(counts, k=2, bins=2)
    assert res.ranks == [2] and res.histogram == [[8, 4]]
    with pytest.raises(ConfigError, match="between 2"):
        reuse_histogram(counts, k=5)
    twin = activation_counts(clock_net("feedforward"), torch.zeros(2, 7, H, W))
    assert torch.equal(twin, counts)
    plot_reuse({"recurrent": res, "feed-forward": reuse_histogram(twin, k=2, bins=2)},
               str(tmp_path / "reuse.png"))
    assert (tmp_path / "reuse.png").stat().st_size > 1000


def test_real_model_counts_match_its_states():
    torch.manual_seed(0)
    model = build_model("maze", "recurrent", iters=3, width=4).eval()
    x = torch.rand(5, 3, 8, 8)
    counts = activation_counts(model, x, batch_size=2)
    with torch.no_grad():
        states = model.states(x)
    for i, s in enumerate(states):
        assert torch.equal(counts[i], (s > 0).sum((2, 3)))
    # MLP states are (N, C): each unit is active or not per image.
    mlp = build_model("mlp", "recurrent", iters=2, width=5, dataset="emnist").eval()
    counts = activation_counts(mlp, torch.rand(3, 1, 28, 28))
    assert counts.shape == (2, 3, 5) and counts.max() <= 1


def test_a_model_with_one_iteration_is_refused_by_its_count():
    with pytest.raises(ConfigError, match="this one has 1: analyse a run with at least 2"):
        reuse_histogram(torch.ones(1, 3, 4))
