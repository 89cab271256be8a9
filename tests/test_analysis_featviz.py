"""Feature visualisation: regularisers, BatchNorm prior over every call, a few CPU steps."""

import math

import pytest
import torch
from torch import nn

from recurdepth.analysis.featviz import (
    BatchNormPrior,
    FeatVizConfig,
    jitter,
    layer_state,
    loss_weights,
    plot_grid,
    preset,
    relative_depth,
    total_variation,
    visualize,
    visualize_layers,
)
from recurdepth.analysis.features import layers
from recurdepth.errors import ConfigError
from recurdepth.models import UnrolledNet, build_model
from recurdepth.models.unrolled import Unit


def test_total_variation_known_value():
    x = torch.tensor([[0.0, 1.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    # horizontal: two differences of 1 → √2; vertical: 0; each diagonal: one difference of 1.
    assert float(total_variation(x)) == pytest.approx(math.sqrt(2) + 2)
    assert float(total_variation(torch.full((2, 3, 5, 5), 0.7))) == 0.0


def test_jitter_wraps_around_within_bounds():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(49.0).view(1, 1, 7, 7)
    seen = set()
    for _ in range(50):
        y = jitter(x, 2, g)
        shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                  if torch.equal(torch.roll(x, (dy, dx), (2, 3)), y)]
        assert shifts and all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in shifts)
        seen.add(shifts[0])
    assert len(seen) > 10  # many different shifts, nothing lost at the borders
    assert torch.equal(jitter(x, 0, g), x)


def test_loss_weights_grow_linearly_with_depth():
    cfg = preset("paper", "cifar10")
    # A.6: λtv, λbn from 0 at the first layer to (1, 10) at the last; λmain 0.64 throughout.
    assert loss_weights(cfg, 0.0) == (0.64, 0.0, 0.0)
    assert loss_weights(cfg, 1.0) == pytest.approx((0.64, 1.0, 10.0))
    assert loss_weights(cfg, 0.5) == pytest.approx((0.64, 0.5, 5.0))
    imagenet = preset("paper", "imagenet")
    assert (imagenet.steps, imagenet.batch, imagenet.contrastive) == (1000, 32, True)
    assert loss_weights(imagenet, 1.0) == pytest.approx((0.01, 5.0, 50.0))
    assert (cfg.steps, cfg.batch, cfg.lr, cfg.jitter) == (1000, 64, 0.01, 32)
    with pytest.raises(ConfigError, match="valid choices"):
        preset("fancy")
    model = build_model("maze", "recurrent", iters=3, width=2)
    depths = [relative_depth(model, layer) for layer in layers(model)]
    # Stem at depth 1, iterations at depths 5, 9, 13 (the deepest body state).
    assert depths == pytest.approx([0.0, 4 / 12, 8 / 12, 1.0])


class SharedNormUnit(Unit):
    """One BatchNorm module called on every iteration (a module-keyed hook sees only the last)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x, slot=0):
        return torch.relu(self.bn(self.conv(x)))


def test_batchnorm_prior_counts_every_call():
    torch.manual_seed(0)
    net = UnrolledNet(family="toy", mode="recurrent", dataset="cifar10", iters=3,
                      stem=nn.Sequential(nn.Conv2d(3, 3, 3, padding=1)),
                      make_unit=lambda slots: SharedNormUnit(), head=nn.Identity()).eval()
    with torch.no_grad():
        net.body[0].bn.running_mean.fill_(0.3)
        net.body[0].bn.running_var.fill_(2.0)
    prior = BatchNormPrior(net, "all")
    x = torch.randn(4, 3, 6, 6)
    layer_state(net, x, 3)
    assert len(prior.calls) == 3
    recorded = float(prior.loss().detach())
    assert prior.calls == []
    prior.close()
    states = [net.stem(x)] + net.states(x)
    expected = 0.0
    for s in states[:3]:
        pre = net.body[0].conv(s).detach()
        mean, var = pre.mean((0, 2, 3)), pre.var((0, 2, 3), unbiased=False)
        expected += float(torch.linalg.vector_norm(mean - 0.3)
                          + torch.linalg.vector_norm(var - 2.0))
    assert recorded == pytest.approx(expected, rel=1e-5)
    layer_state(net, x, 2)
    assert prior.calls == []


def test_residual_bn_prior_stops_at_the_layer():
    model = build_model("residual_bn", "recurrent", iters=3, width=4, dataset="cifar10").eval()
    prior = BatchNormPrior(model, "all")
    x = torch.randn(2, 3, 8, 8)
    layer_state(model, x, 1)
    assert len(prior.calls) == 1 + 4  # stem BN and the 4 BN layers of iteration 1
    prior.loss()
    layer_state(model, x, 3)
    assert len(prior.calls) == 1 + 3 * 4
    prior.close()
    # A.6: only the first convolution's statistics, i.e. the input of the stem's BatchNorm.
    first = BatchNormPrior(model)
    layer_state(model, x, 3)
    assert len(first.calls) == 1
    stem_bn = next(m for m in model.stem.modules() if isinstance(m, nn.BatchNorm2d))
    assert first.calls[0][0] is stem_bn
    first.close()


def test_a_few_steps_raise_the_activation(tmp_path):
    torch.manual_seed(0)
    model = build_model("residual_bn", "recurrent", iters=2, width=4, dataset="cifar10").eval()
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    # The activation alone: it must grow.
    only_main = dict(lr=0.05, jitter=4, lambda_tv=0.0, lambda_bn=0.0)
    first = visualize(model, 2, [0, 1], FeatVizConfig(steps=1, **only_main), image_size=16,
                      mean=mean, std=std)
    later = visualize(model, 2, [0, 1], FeatVizConfig(steps=25, **only_main), image_size=16,
                      mean=mean, std=std)
    assert later.final["main"] > 2 * first.final["main"]
    # All terms: the total loss falls.
    cfg = FeatVizConfig(steps=1, lr=0.05, jitter=4)
    first = visualize(model, 2, [0, 1], cfg, image_size=16, mean=mean, std=std)
    later = visualize(model, 2, [0, 1], FeatVizConfig(steps=25, lr=0.05, jitter=4),
                      image_size=16, mean=mean, std=std)
    assert later.final["loss"] < first.final["loss"]
    assert later.images.shape == (2, 3, 16, 16)
    assert 0.0 <= later.images.min() and later.images.max() <= 1.0
    assert later.weights == pytest.approx(loss_weights(cfg, 1.0))
    contrastive = visualize(model, 1, [0, 1, 2], FeatVizConfig(steps=2, contrastive=True),
                            image_size=16)
    assert set(contrastive.final) == {"main", "tv", "bn", "loss", "objective"}
    with pytest.raises(ConfigError, match="filters must be"):
        visualize(model, 1, [9], FeatVizConfig(steps=1), image_size=16)
    twin = model.feedforward_twin()
    cols = {"recurrent": visualize_layers(model, FeatVizConfig(steps=2), filters=[0, 1],
                                          image_size=16),
            "feed-forward": visualize_layers(twin, FeatVizConfig(steps=2), filters=[0, 1],
                                             image_size=16)}
    assert [v.layer for v in cols["recurrent"]] == ["stem", "iter 1", "iter 2"]
    plot_grid(cols, str(tmp_path / "grid.png"), show=2)
    assert (tmp_path / "grid.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match="convolutional"):
        visualize(build_model("mlp", "recurrent", iters=1, width=4, dataset="emnist"), 1, [0],
                  FeatVizConfig(steps=1), image_size=28)


def test_paper_weights_raise_the_objective_of_a_trained_classifier():
    """A small CIFAR-shaped classifier trained on synthetic data: with the paper's CIFAR-10
    weights at the deepest layer, the objective and its main term rise; requires_grad is kept."""
    torch.manual_seed(0)
    model = build_model("residual_bn", "recurrent", iters=2, width=8, dataset="cifar10")
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (256,), generator=g) * 3  # class 0 (bluish) or 3 (reddish)
    x = torch.rand(256, 3, 32, 32, generator=g) * 0.5
    x[:, 0] += 0.5 * (y == 3).float()[:, None, None]
    x[:, 2] += 0.5 * (y == 0).float()[:, None, None]
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for i in range(0, 256 * 3, 32):
        batch = slice(i % 256, i % 256 + 32)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.8  # it did learn
    model.head.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    cfg = preset("paper", "cifar10")
    cfg = FeatVizConfig(**{**cfg.to_dict(), "steps": 40})
    vis = visualize(model, model.iters, [0, 1, 2, 3], cfg, image_size=32)
    assert vis.weights == pytest.approx((0.64, 1.0, 10.0))  # the deepest layer
    assert vis.end["objective"] > vis.start["objective"]
    assert vis.end["main"] > vis.start["main"]
    assert [p.requires_grad for p in model.parameters()] == flags
    assert False in flags and True in flags
