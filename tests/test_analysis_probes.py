"""Linear probes: separable synthetic features are separated perfectly; noise is not."""

import pytest
import torch

from recurdepth.analysis.probes import probe_model, probe_table, train_probes
from recurdepth.errors import ConfigError
from recurdepth.models import build_model
from recurdepth.training.evaluate import wall_mask


def _separable(n, g, w):
    """Features whose class is argmax(x @ w), with a margin; the second layer is pure noise."""
    x = torch.randn(4 * n, 6, generator=g)
    scores = x @ w
    top2 = scores.topk(2, dim=1).values
    keep = (top2[:, 0] - top2[:, 1]) > 0.5
    x, y = x[keep][:n], scores[keep][:n].argmax(1)
    noise = torch.randn(n, 5, 2, 2, generator=g) * 50 + 1000  # large mean and scale
    return x, noise, y


def _batches(x, noise, y, size):
    def make():
        for i in range(0, len(y), size):
            yield [x[i:i + size] * 30 - 7, noise[i:i + size]], y[i:i + size], None
    return make


@pytest.mark.parametrize("cache_bytes", [2 << 30, 0])  # cached, and streamed every epoch
def test_separable_features_reach_100_percent(cache_bytes):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, generator=g)
    train = _separable(300, g, w)
    test = _separable(200, g, w)
    res = train_probes(_batches(*train, 50), _batches(*test, 64), names=["sep", "noise"],
                       depths=[3, 7], num_classes=3, epochs=25, lr=0.05,
                       cache_bytes=cache_bytes)
    assert [r.layer for r in res] == ["sep", "noise"]
    assert res[0].features == 6 and res[1].features == 20
    assert res[0].train_acc == 100.0 and res[0].test_acc == 100.0
    # Noise: memorised somewhat, but near chance (33%) on new data.
    assert res[1].test_acc < 55.0
    assert "sep: 100.0 / 100.0" in probe_table({"synthetic": res})


def test_per_pixel_maze_probe():
    g = torch.Generator().manual_seed(1)
    n, h, w = 40, 6, 6
    solutions = (torch.rand(n, h, w, generator=g) > 0.6).long()
    images = torch.zeros(n, 3, h, w)
    images[:, :, 1:-1, 1:-1] = 1.0  # a wall border
    solutions[:, [0, -1], :] = 0
    solutions[:, :, [0, -1]] = 0
    mask = wall_mask(images)
    assert mask.sum() == n * 16
    # Channel 0 encodes the solution linearly; channel 1 is noise.
    feats = torch.stack([solutions.float() * 2 - 1, torch.randn(n, h, w, generator=g)], 1)
    feats = feats + 0.1 * torch.randn(feats.shape, generator=g)
    # A wrong label on a wall pixel must not count (walls are masked).
    corrupt = solutions.clone()
    corrupt[:, 0, 0] = 1

    def make():
        yield [feats, torch.randn(n, 3, h, w, generator=g)], corrupt, mask

    res = train_probes(make, make, names=["good", "noise"], num_classes=2, task="maze",
                       epochs=50, lr=0.05)
    assert res[0].features == 2
    assert res[0].train_acc == 100.0 and res[0].train_pixel_acc == 100.0
    assert res[1].test_pixel_acc < 90.0 and res[1].test_acc < 50.0


def test_probe_model_on_a_zoo_model():
    torch.manual_seed(0)
    model = build_model("convnet", "recurrent", iters=2, width=4, dataset="cifar10").eval()
    x = torch.randn(24, 3, 32, 32)
    y = torch.arange(24) % 3
    res = probe_model(model, (x, y), (x[:12], y[:12]), pool=2, batch_size=10, epochs=2)
    assert [r.layer for r in res] == ["iter 1", "iter 2"]
    assert [r.effective_depth for r in res] == [3, 4]
    assert [r.features for r in res] == [16, 16]  # 4 channels × 2 × 2
    assert all(0 <= r.test_acc <= 100 for r in res)
    unpooled = probe_model(model, (x, y), (x, y), batch_size=10, epochs=1)
    assert unpooled[0].features == 4 * 28 * 28
    maze = build_model("maze", "feedforward", iters=1, width=4)
    with pytest.raises(ConfigError, match="pooling"):
        probe_model(maze, (torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8).long()),
                    (torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8).long()), pool=2)
    res = probe_model(maze, (torch.rand(4, 3, 8, 8), torch.zeros(4, 8, 8).long()),
                      (torch.rand(4, 3, 8, 8), torch.zeros(4, 8, 8).long()), epochs=1)
    assert [r.layer for r in res] == ["block 1"] and res[0].test_pixel_acc is not None


def test_dead_feature_does_not_break_the_test_accuracy():
    """A feature constant on the training set but not on test data is ignored by the probe."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, generator=g)
    (x_tr, _, y_tr), (x_te, _, y_te) = _separable(300, g, w), _separable(200, g, w)
    dead_tr = torch.zeros(300, 4)  # e.g. ReLU units that never fired on the training images
    dead_te = torch.randn(200, 4, generator=g).abs() * 5
    train = (torch.cat([x_tr, dead_tr], 1), y_tr)
    test = (torch.cat([x_te, dead_te], 1), y_te)

    def batches(data):
        def make():
            for i in range(0, len(data[1]), 50):
                yield [data[0][i:i + 50]], data[1][i:i + 50], None
        return make

    for wd in (None, 0.0):
        res = train_probes(batches(train), batches(test), names=["layer"], num_classes=3,
                           epochs=25, lr=0.05, weight_decay=wd)[0]
        assert res.dead_features == 4
        assert res.train_acc >= 98.0
        assert res.test_acc >= res.train_acc - 2.0
        assert res.weight_decay in (0.0, 1e-4, 1e-3, 1e-2)


def test_weight_decay_is_validated():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(20, 3, generator=g)

    def make():
        yield [x], torch.zeros(20, dtype=torch.long), None

    with pytest.raises(ConfigError, match="weight decay"):
        train_probes(make, make, names=["a"], num_classes=2, weight_decay=-1.0)
