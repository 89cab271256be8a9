"""Receptive field: analytic formula equals the measured input-gradient extent."""

import pytest

from recurdepth.analysis.receptive_field import (
    analytic_receptive_field,
    measured_receptive_field,
    plot_receptive_field,
    receptive_field_table,
)
from recurdepth.errors import ConfigError
from recurdepth.models import build_model


@pytest.mark.parametrize("iters", [1, 2, 5])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_maze_solver_analytic_equals_measured(iters, dilation):
    family = "maze" if dilation == 1 else "maze_dilated"
    opts = {} if dilation == 1 else {"dilation": dilation}
    model = build_model(family, "recurrent", iters=iters, width=2, **opts)
    # Stem 1 conv and head 3 convs (+2 px each), 4 dilated body convs per iteration (+2d each).
    expected = 1 + 2 * 4 + 4 * iters * 2 * dilation
    assert analytic_receptive_field(model) == expected
    assert measured_receptive_field(model) == expected
    # Feed-forward twin: same path, same field; at fewer test-time iterations, a smaller one.
    assert measured_receptive_field(model.feedforward_twin()) == expected
    if iters > 1:
        assert analytic_receptive_field(model, iters - 1) == expected - 8 * dilation


def test_eight_convolutions_span_17_pixels():
    # Paper §4.3 counts the receptive field in 3x3 convolutions: depth 8 = eight of them.
    model = build_model("maze", "recurrent", iters=1, width=2)
    assert analytic_receptive_field(model) == 17


@pytest.mark.parametrize("family,iters,dataset", [
    ("convnet", 2, "cifar10"), ("residual", 2, "cifar10"), ("residual_bn", 1, "svhn"),
    ("residual_imagenet", 1, "imagenet"),
])
def test_strided_and_pooled_families(family, iters, dataset):
    model = build_model(family, "feedforward", iters=iters, width=2, dataset=dataset)
    assert measured_receptive_field(model) == analytic_receptive_field(model)


def test_convnet_value_and_errors():
    model = build_model("convnet", "recurrent", iters=1, width=2, dataset="cifar10")
    # convs 3,3 (+2,+2) body conv (+2) → 7; maxpool 3 (+2, jump 3) → 9; conv (+6) → 15;
    # maxpool 3 (+6, jump 9) → 21.
    assert analytic_receptive_field(model) == 21
    mlp = build_model("mlp", "recurrent", iters=1, width=4, dataset="emnist")
    with pytest.raises(ConfigError, match="flattens"):
        measured_receptive_field(mlp)
    with pytest.raises(ConfigError, match="border"):
        measured_receptive_field(build_model("maze", "recurrent", iters=2, width=2), size=20)


def test_table_and_plot(tmp_path):
    rows = receptive_field_table("maze", [1, 2], dilations=(1, 2), image_side=24)
    assert [(r.dilation, r.effective_depth, r.analytic) for r in rows] == [
        (1, 8, 17), (1, 12, 25), (2, 8, 25), (2, 12, 41)]
    assert all(r.measured == r.analytic for r in rows)
    assert [r.covers_from_centre for r in rows] == [False, True, True, True]
    assert [r.covers_from_any_pixel for r in rows] == [False, False, False, False]
    plot_receptive_field(rows, str(tmp_path / "rf.png"))
    assert (tmp_path / "rf.png").stat().st_size > 1000
