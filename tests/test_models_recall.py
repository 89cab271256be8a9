"""Units that see the input (recall), loops that start from a given state, layer counting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recurdepth.models import build_model, count_layers
from recurdepth.models.unrolled import Unit, UnrolledNet


class RecallConv1d(Unit):
    """``relu(Conv1d(cat([h, x])))``: a 1-D unit that reads the raw input every iteration."""

    recall = True

    def __init__(self, width: int, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width + in_channels, width, 3, padding=1)
        self.seen: list[Tensor] = []

    def forward(self, h: Tensor, slot: int = 0, inp: Tensor | None = None) -> Tensor:
        assert inp is not None
        self.seen.append(inp)
        return F.relu(self.conv(torch.cat([h, inp], 1)))


def recall_net(mode: str = "recurrent", iters: int = 4) -> UnrolledNet:
    return UnrolledNet(family="test_recall", mode=mode, dataset="none", iters=iters,
                       stem=nn.Sequential(nn.Conv1d(1, 5, 3, padding=1), nn.ReLU()),
                       make_unit=lambda slots: RecallConv1d(5, 1),
                       head=nn.Conv1d(5, 2, 3, padding=1))


def reference(net: UnrolledNet, x: Tensor, iters: int, h: Tensor | None = None) -> Tensor:
    """The recall recurrence written out with the unit's weights (independent of ``iterate``)."""
    conv = net.body[0].conv
    h = net.stem(x) if h is None else h
    for _ in range(iters):
        h = torch.relu(F.conv1d(torch.cat([h, x], 1), conv.weight, conv.bias, padding=1))
    return F.conv1d(h, net.head.weight, net.head.bias, padding=1)


def test_recall_unit_receives_the_raw_input_every_iteration():
    torch.manual_seed(0)
    net = recall_net(iters=4)
    x = torch.rand(3, 1, 16)
    assert net.recall and not build_model("maze", "recurrent", iters=1, width=2).recall
    with torch.no_grad():
        out = net(x, iters=6)
        torch.testing.assert_close(out, reference(net, x, 6))
    seen = net.body[0].seen
    assert len(seen) == 6 and all(s is x for s in seen)
    # Depth counts the Conv1d layers: stem 1 + 6 x unit 1 + head 1.
    assert net.effective_depth_at(6) == 8 and net.effective_depth == 6


def test_iterate_from_a_given_state_continues_the_same_trajectory():
    torch.manual_seed(1)
    net = recall_net(iters=3)
    x = torch.rand(2, 1, 12)
    with torch.no_grad():
        states = net.states(x, iters=7)
        later = net.states(x, iters=4, start=states[2], include_stem=True)
        assert later[0] is states[2]
        for a, b in zip(later[1:], states[3:]):
            torch.testing.assert_close(a, b)
        start = torch.randn(2, 5, 12)
        torch.testing.assert_close(net(x, iters=5, start=start), reference(net, x, 5, h=start))
        outs = net.outputs_per_iteration(x, iters=2, start=start)
        torch.testing.assert_close(outs[1], reference(net, x, 2, h=start))
    # A model without recall starts anywhere too: the state replaces the stem's output.
    maze = build_model("maze", "recurrent", iters=2, width=4).eval()
    xm = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        s = maze.states(xm, iters=3)
        torch.testing.assert_close(maze(xm, iters=2, start=s[0]), maze(xm, iters=3))


def test_feedforward_twin_of_a_recall_model_has_its_own_recall_paths_and_equal_outputs():
    torch.manual_seed(2)
    net = recall_net(iters=4).eval()
    twin = net.feedforward_twin().eval()
    assert twin.recall and len(twin.body) == 4
    convs = [unit.conv.weight for unit in twin.body]
    assert len({c.data_ptr() for c in convs}) == 4  # distinct recall weights per unit
    assert all(c.shape[1] == 5 + 1 for c in convs)  # every unit reads state and input
    x = torch.rand(3, 1, 10)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), net(x))
        for a, b in zip(net.states(x), twin.states(x)):
            torch.testing.assert_close(a, b)
    assert twin.effective_depth == net.effective_depth == 6


def test_count_layers_counts_every_convolution_and_linear_but_not_shortcuts():
    block = nn.Module()
    block.main = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3),
                               nn.Conv3d(2, 2, 3), nn.BatchNorm1d(2), nn.Linear(2, 2))
    block.shortcut = nn.Sequential(nn.Conv1d(1, 2, 1), nn.Conv2d(2, 2, 1))
    assert count_layers(block) == 4


def test_a_recall_option_on_a_family_without_one_is_a_one_line_error():
    import pytest

    from recurdepth.errors import ConfigError
    from recurdepth.training.config import RunConfig, apply_overrides, resolve_on

    cfg = apply_overrides(RunConfig(), ["model.family=maze", "model.iters=2",
                                        "model.options.recall=true"])
    with pytest.raises(ConfigError, match=r"^unknown option\(s\) recall for model family 'maze' "
                                          r"\(model\.options\); valid options: none "
                                          r"\(model\.family=maze_recall has recall\)$"):
        resolve_on(cfg, "cpu")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) recall for family 'residual'"):
        build_model("residual", "recurrent", iters=1, recall=True)
