"""The transformer family: depth counting, parameter sharing, twins, ALiBi, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from recurdepth.errors import ConfigError
from recurdepth.models import build_model
from recurdepth.models.transformer import alibi_causal_bias, alibi_slopes
from recurdepth.models.unrolled import DepthLayer, count_layers


def block_parameters(d: int, ratio: int = 4) -> int:
    """Two LayerNorms, qkv + out projections, MLP d→rd→d (all with biases)."""
    return 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (ratio * d * d + ratio * d) + (
        ratio * d * d + d)


def expected_parameters(d: int, iters_of_blocks: int, vocab: int = 100, classes: int = 10) -> int:
    return vocab * d + iters_of_blocks * block_parameters(d) + 2 * d + d * classes + classes


def test_parameter_counts_looped_equals_one_block():
    looped = build_model("transformer", "recurrent", iters=6, dataset="addition")
    once = build_model("transformer", "recurrent", iters=1, dataset="addition")
    stacked = build_model("transformer", "feedforward", iters=6, dataset="addition")
    assert looped.num_parameters == once.num_parameters == expected_parameters(64, 1) == 57_162
    assert stacked.num_parameters == expected_parameters(64, 6) == 307_082
    # Exactly the one-block model's parameters: same names and shapes, so its weights load.
    shapes = {k: v.shape for k, v in looped.state_dict().items()}
    assert shapes == {k: v.shape for k, v in once.state_dict().items()}
    looped.load_state_dict(once.state_dict())


def test_effective_depth_counts_attention_and_mlp_once():
    # 6 blocks: attention + MLP each = 12 layers, plus the head's linear layer; embedding: 0.
    for mode in ("recurrent", "feedforward"):
        model = build_model("transformer", mode, iters=6, dataset="addition")
        assert model.effective_depth == 13
        assert count_layers(model.body[0]) == 2
    assert build_model("transformer", "recurrent", effective_depth=25,
                       dataset="addition").iters == 12


def test_depth_layer_marker_counts_its_contents_as_one():
    class Three(DepthLayer):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(2, 2), nn.Linear(2, 2), nn.Conv1d(2, 2, 3)

    assert count_layers(nn.Sequential(Three(), nn.Linear(2, 2), Three())) == 3
    assert count_layers(Three()) == 1


def test_feedforward_twin_computes_the_looped_outputs():
    torch.manual_seed(0)
    model = build_model("transformer", "recurrent", iters=4, width=32, dataset="addition").eval()
    twin = model.feedforward_twin().eval()
    assert len(twin.body) == 4 and twin.num_parameters > model.num_parameters
    for block in twin.body:  # tied: every block holds the looped block's weights
        for (name, p), q in zip(block.named_parameters(), model.body[0].parameters()):
            assert torch.equal(p, q), name
    x = torch.randint(0, 100, (5, 1, 1, 9)).float()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=0, atol=1e-6)
        for a, b in zip(twin.states(x), model.states(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_injection_twin_and_parameters():
    torch.manual_seed(0)
    model = build_model("transformer", "recurrent", iters=3, width=16, dataset="addition",
                        inject=True).eval()
    once = build_model("transformer", "recurrent", iters=1, width=16, dataset="addition",
                       inject=True)
    assert model.num_parameters == once.num_parameters == expected_parameters(16, 1) + 100 * 16
    x = torch.randint(0, 100, (2, 1, 1, 7)).float()
    with torch.no_grad():
        torch.testing.assert_close(model.feedforward_twin().eval()(x), model(x), rtol=0,
                                   atol=1e-6)
        start = model.stem(x)
        other = torch.randint(0, 100, x.shape).float()
        # Same start state, another input: injection makes the loop read it.
        assert not torch.allclose(model(x, start=start), model(other, start=start))


def test_causal_longer_sequences_and_more_loops():
    torch.manual_seed(0)
    model = build_model("transformer", "recurrent", iters=2, width=16, dataset="addition").eval()
    x = torch.randint(0, 100, (2, 1, 1, 40)).float()
    with torch.no_grad():
        long = model(x)
        assert long.shape == (2, 10, 40)
        # Causal: the first 9 positions do not see what follows them.
        torch.testing.assert_close(model(x[..., :9]), long[..., :9], rtol=0, atol=1e-5)
        assert model(x, iters=8).shape == (2, 10, 40)


def test_alibi_bias_against_its_definition():
    slopes = alibi_slopes(4)
    np.testing.assert_allclose(slopes.numpy(), [0.25, 0.0625, 0.015625, 0.00390625])
    bias = alibi_causal_bias(slopes, 3)
    assert bias[1, 2, 0].item() == pytest.approx(-2 * 0.0625)
    assert bias[0, 1, 1].item() == 0.0 and bias[0, 0, 1].item() == float("-inf")


def test_bad_input_one_line_errors():
    model = build_model("transformer", "recurrent", iters=2, width=16, dataset="copy")
    with pytest.raises(ConfigError, match="vocabulary of 11 tokens") as e:
        model(torch.full((1, 1, 1, 5), 42.0))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="iters must be >= 1"):
        model(torch.zeros(1, 1, 1, 5), iters=0)
    with pytest.raises(ConfigError, match="multiple of model.options.heads"):
        build_model("transformer", "recurrent", iters=2, width=30, dataset="copy")


def test_cka_between_loops_and_blocks_reads_transformer_states():
    from recurdepth.analysis.cka import cka_matrix
    from recurdepth.analysis.features import capture

    torch.manual_seed(0)
    looped = build_model("transformer", "recurrent", iters=3, width=16, dataset="addition").eval()
    stacked = looped.feedforward_twin().eval()
    x = torch.randint(0, 100, (40, 1, 1, 9)).float()
    a, b = capture(looped, x), capture(stacked, x)
    assert a[1].shape == (40, 16, 9)  # (examples, d_model, positions): channels first, as convs
    m = cka_matrix(a, b)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-6)  # the twin has the same features
    # Linear CKA written out with numpy: HSIC of centred Gram matrices, normalised.
    f, g = (t.reshape(40, -1).double().numpy() for t in (a[1], b[3]))
    f, g = f - f.mean(0), g - g.mean(0)
    ref = np.linalg.norm(g.T @ f) ** 2 / (np.linalg.norm(f.T @ f) * np.linalg.norm(g.T @ g))
    assert m[1, 3] == pytest.approx(ref, rel=1e-6)
