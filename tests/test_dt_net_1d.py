"""The 1-D deep-thinking family: structure, parameter counts, recall, twins."""

from __future__ import annotations

import pytest
import torch

from recurdepth.errors import ConfigError
from recurdepth.models import build_model


def expected_parameters(w: int, recall: bool) -> int:
    """Bias-free size-3 convolutions: stem 1→w, unit (w+1 or w)→w + 4 w→w, head w→w→w/2→2."""
    unit = (w + (1 if recall else 0)) * w * 3 + 4 * w * w * 3
    return 1 * w * 3 + unit + w * w * 3 + w * (w // 2) * 3 + (w // 2) * 2 * 3


@pytest.mark.parametrize("width,recall", [(400, True), (400, False), (32, True), (32, False)])
def test_parameter_counts_and_depth(width, recall):
    with torch.device("meta"):
        model = build_model("dt_net_1d", "recurrent", iters=30, width=width,
                            recall=recall)
        ff = build_model("dt_net_1d", "feedforward", iters=30, width=width, recall=recall)
    assert model.num_parameters == expected_parameters(width, recall)
    assert model.recall is recall
    # stem 1 + 5 per iteration + head 3, for both variants (same depth, with or without input).
    assert model.effective_depth == ff.effective_depth == 4 + 5 * 30
    assert ff.num_parameters == model.num_parameters + 29 * (
        (width + (1 if recall else 0)) * width * 3 + 4 * width * width * 3)


def test_logits_per_position_and_strings_of_any_length():
    torch.manual_seed(0)
    model = build_model("dt_net_1d", "recurrent", iters=3, width=8)
    for length in (5, 32, 77):
        x = torch.randint(0, 2, (2, 1, 1, length)).float()
        assert model(x).shape == (2, 2, length)
        assert model(x.flatten(2)).shape == (2, 2, length)  # (N, 1, L) works too


def test_recall_reads_the_input_at_every_iteration_no_recall_does_not():
    torch.manual_seed(0)
    x = torch.randint(0, 2, (3, 1, 1, 20)).float()
    other = 1 - x
    for recall in (True, False):
        model = build_model("dt_net_1d", "recurrent", iters=4, width=8, recall=recall).eval()
        with torch.no_grad():
            start = model.stem(x)
            a = model(x, iters=4, start=start)
            b = model(other, iters=4, start=start)  # same start state, other input
        assert (not torch.allclose(a, b)) is recall


def test_feedforward_twin_of_a_recall_net_computes_the_same():
    torch.manual_seed(0)
    model = build_model("dt_net_1d", "recurrent", iters=3, width=8).eval()
    twin = model.feedforward_twin().eval()
    assert twin.recall and len(twin.body) == 3
    x = torch.randint(0, 2, (2, 1, 1, 12)).float()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x))


@pytest.mark.parametrize("mode", ["recurrent", "feedforward"])
def test_one_label_per_string_is_the_last_positions_logits(mode):
    """On parity the head reads the last position; everything else is the prefix-sum net."""
    torch.manual_seed(0)
    per_position = build_model("dt_net_1d", mode, iters=3, width=8, dataset="prefix_sums").eval()
    per_string = build_model("dt_net_1d", mode, iters=3, width=8, dataset="parity").eval()
    per_string.load_state_dict(per_position.state_dict())  # same layers, same weights
    assert per_string.num_parameters == per_position.num_parameters
    assert per_string.effective_depth == per_position.effective_depth == 4 + 5 * 3
    x = torch.randint(0, 2, (4, 1, 1, 13)).float()
    with torch.no_grad():
        full = per_position(x)
        one = per_string(x)
    assert one.shape == (4, 2)
    torch.testing.assert_close(one, full[:, :, -1])
    assert not torch.allclose(one, full[:, :, 0])  # not any position: the last one
    if mode == "recurrent":  # thinking longer keeps one row per string
        with torch.no_grad():
            torch.testing.assert_close(per_string(x, iters=6), per_position(x, iters=6)[..., -1])


@pytest.mark.parametrize("kwargs,message", [
    (dict(family="dt_net_1d", recall="yes"), "model.options.recall must be true or false"),
    (dict(family="dt_net_1d", width=2), "width must be >= 4"),
    (dict(family="convnet", recall=True), "unknown option.*recall.*valid options: none"),
    (dict(family="maze", recall=True), "unknown option.*recall"),
    (dict(family="dt_net_1d", dataset="mazes"), "valid data sets: prefix_sums"),
])
def test_bad_options_are_one_line_errors(kwargs, message):
    family = kwargs.pop("family")
    with pytest.raises(ConfigError, match=message) as err:
        build_model(family, "recurrent", iters=2, **kwargs)
    assert "\n" not in str(err.value)


def test_maze_recall_solver_reads_the_maze():
    torch.manual_seed(0)
    with torch.device("meta"):
        m = build_model("maze_recall", "recurrent", iters=30, width=128)
    # stem 3·128·9 + unit (131·128 + 4·128·128)·9 + head (128·32 + 32·8 + 8·2)·9
    assert m.num_parameters == 3 * 128 * 9 + (131 * 128 + 4 * 128 * 128) * 9 + (
        128 * 32 + 32 * 8 + 8 * 2) * 9
    assert m.effective_depth == 4 + 5 * 30
    small = build_model("maze_recall", "recurrent", iters=2, width=4).eval()
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        s = small.stem(x)
        assert not torch.allclose(small(x, start=s), small(x.flip(-1), start=s))
