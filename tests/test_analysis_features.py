"""Feature capture: every iteration of a shared unit, paired with the feed-forward twin's blocks."""

import pytest
import torch

from recurdepth.analysis.features import capture, feature_batches, layers
from recurdepth.errors import ConfigError
from recurdepth.models import build_model


def test_capture_gets_every_iteration_where_a_module_hook_keeps_the_last():
    torch.manual_seed(0)
    model = build_model("maze", "recurrent", iters=3, width=4).eval()
    x = torch.rand(2, 3, 10, 10)
    last = {}
    handle = model.body[0].register_forward_hook(lambda m, i, o: last.__setitem__("out", o))
    feats = capture(model, x)
    handle.remove()
    assert len(feats) == 4  # stem + 3 iterations
    # A module-keyed hook on the shared unit ends up holding only iteration 3.
    assert torch.equal(last["out"], feats[3])
    assert not torch.equal(feats[1], feats[3])
    # Iteration i of the recurrent model is block i of its feed-forward twin.
    twin_feats = capture(model.feedforward_twin().eval(), x)
    for a, b in zip(feats, twin_feats):
        torch.testing.assert_close(a, b)


def test_layer_names_and_depths():
    rec = build_model("maze", "recurrent", iters=2, width=4)
    assert [(la.name, la.effective_depth) for la in layers(rec)] == [
        ("stem", 1), ("iter 1", 5), ("iter 2", 9)]
    ff = build_model("convnet", "feedforward", iters=2, width=4, dataset="cifar10")
    assert [(la.name, la.effective_depth) for la in layers(ff, include_stem=False)] == [
        ("block 1", 3), ("block 2", 4)]
    # Recurrent models can be analysed at more iterations than trained; BN-recurrent ones cannot.
    assert len(layers(rec, 5)) == 6
    bn = build_model("residual_bn", "recurrent", iters=2, width=4, dataset="cifar10")
    with pytest.raises(ConfigError, match="BatchNorm"):
        layers(bn, 3)
    with pytest.raises(ConfigError, match="fixed depth"):
        layers(ff, 3)


def test_feature_batches_stream_with_a_transform():
    model = build_model("maze", "feedforward", iters=2, width=4).eval()
    x = torch.rand(5, 3, 8, 8)
    batches = list(feature_batches(model, x, batch_size=2, transform=lambda f: f.mean((2, 3))))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    assert batches[0][2].shape == (2, 4)
    full = capture(model, x)
    torch.testing.assert_close(torch.cat([b[2] for b in batches]), full[2].mean((2, 3)))
