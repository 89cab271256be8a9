"""Known answers of linear CKA: identity, invariances, debiasing, minibatch accumulation."""

import numpy as np
import pytest
import torch

from recurdepth.analysis.cka import (
    MinibatchCKA,
    StreamingLinearCKA,
    cka,
    cka_matrix,
    hsic,
)
from recurdepth.errors import ConfigError


def _song_unbiased_hsic(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, written out directly from the paper (independent check)."""
    n = len(x)
    k = x @ x.T
    l_ = y @ y.T
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l_, 0)
    one = np.ones(n)
    value = (np.trace(k @ l_) + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
             - 2 / (n - 2) * (one @ k @ l_ @ one))
    return value / (n * (n - 3))


def _gretton_biased_hsic(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(x @ x.T @ h @ y @ y.T @ h) / (n - 1) ** 2


@pytest.fixture
def feats():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 12, generator=g, dtype=torch.float64)
    y = x @ torch.randn(12, 7, generator=g, dtype=torch.float64) + 0.5 * torch.randn(
        60, 7, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_of_x_with_itself_is_one(feats, debiased):
    x, _ = feats
    assert cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    # Shape (n, C, H, W) is flattened per example.
    x4 = x.reshape(60, 3, 2, 2)
    assert cka(x4, x4, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_hsic_matches_the_papers_formulas(feats, debiased):
    x, y = feats
    expected = (_song_unbiased_hsic if debiased else _gretton_biased_hsic)(x.numpy(), y.numpy())
    assert hsic(x, y, debiased=debiased) == pytest.approx(expected, rel=1e-10)


def test_one_dimensional_cka_is_squared_correlation(feats):
    x, y = feats
    a, b = x[:, 0], y[:, 0]
    r = np.corrcoef(a.numpy(), b.numpy())[0, 1]
    assert cka(a[:, None], b[:, None]) == pytest.approx(r**2, rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(feats, debiased):
    x, y = feats
    q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(1)))
    base = cka(x, y, debiased=debiased)
    assert 0.2 < base < 0.99  # a non-trivial value, so the invariance checks mean something
    assert cka(x @ q, y, debiased=debiased) == pytest.approx(base, rel=1e-10)
    assert cka(17.5 * x, 0.01 * y, debiased=debiased) == pytest.approx(base, rel=1e-10)
    # ... but not to a non-isotropic scaling.
    scale = torch.linspace(0.1, 10, 12, dtype=torch.float64)
    assert abs(cka(x * scale, y, debiased=debiased) - base) > 1e-3


def test_debiased_cka_of_independent_features_is_near_zero():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(100, 2000, generator=g)
    y = torch.randn(100, 2000, generator=g)
    biased = cka(x, y)
    debiased = cka(x, y, debiased=True)
    assert biased > 0.8  # high-dimensional, few examples: the biased estimator is far from 0
    assert abs(debiased) < 0.03


@pytest.mark.parametrize("debiased", [False, True])
def test_large_means_lose_no_precision(feats, debiased):
    x, y = feats
    base = cka(x, y, debiased=debiased)
    assert cka(x + 1e8, y - 3e7, debiased=debiased) == pytest.approx(base, abs=1e-7)
    stream = StreamingLinearCKA()
    for i in range(0, 60, 15):
        stream.update(x[i:i + 15] + 1e8, y[i:i + 15] - 3e7)
    assert stream.compute(debiased=debiased) == pytest.approx(base, abs=1e-7)


@pytest.mark.parametrize("debiased", [False, True])
def test_streaming_accumulation_equals_full_data(feats, debiased):
    x, y = feats
    stream = StreamingLinearCKA()
    for i in range(0, 60, 7):  # uneven batches, last one of 4 examples
        stream.update(x[i:i + 7], y[i:i + 7])
    assert stream.n == 60
    assert stream.compute(debiased=debiased) == pytest.approx(cka(x, y, debiased=debiased),
                                                              abs=1e-12)
    h_xy, h_xx, _ = stream.hsic(debiased=debiased)
    assert h_xy == pytest.approx(hsic(x, y, debiased=debiased), rel=1e-9)
    assert h_xx == pytest.approx(hsic(x, x, debiased=debiased), rel=1e-9)


def test_minibatch_cka_agrees_with_full_data():
    g = torch.Generator().manual_seed(3)
    n = 2000
    x = torch.randn(n, 8, generator=g, dtype=torch.float64)
    layers_a = [x, torch.relu(x @ torch.randn(8, 16, generator=g, dtype=torch.float64))]
    layers_b = [x[:, :4] + 0.3 * torch.randn(n, 4, generator=g, dtype=torch.float64),
                torch.randn(n, 5, generator=g, dtype=torch.float64)]
    full = cka_matrix(layers_a, layers_b, debiased=True)
    acc = MinibatchCKA(2, 2, debiased=True)
    for i in range(0, n, 200):
        acc.update([f[i:i + 200] for f in layers_a], [f[i:i + 200] for f in layers_b])
    mini = acc.compute()
    assert acc.batches == 10 and acc.examples == n
    np.testing.assert_allclose(mini, full, atol=0.03)
    assert full[0, 0] > 0.5 and abs(full[0, 1]) < 0.02  # the check is not vacuous
    # One minibatch holding all the data is the exact full-data value.
    for i in range(2):
        for j in range(2):
            assert full[i, j] == pytest.approx(
                cka(layers_a[i], layers_b[j], debiased=True), abs=1e-12)


def test_errors_are_user_errors():
    with pytest.raises(ConfigError, match="same examples"):
        cka(torch.zeros(5, 2), torch.zeros(6, 2))
    with pytest.raises(ConfigError, match="at least 4"):
        cka(torch.randn(3, 2), torch.randn(3, 2), debiased=True)


def _gram_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool) -> float:
    """Plain float64 Gram-matrix CKA from U- / double-centred Gram matrices (reference)."""
    from recurdepth.analysis.cka import centered_gram

    k, l_ = centered_gram(x, debiased=debiased), centered_gram(y, debiased=debiased)
    return float((k * l_).sum() / torch.sqrt((k * k).sum() * (l_ * l_).sum()))


@pytest.mark.parametrize("dims", [(40, 300, 200), (300, 40, 25), (50, 50, 80)])
@pytest.mark.parametrize("debiased", [False, True])
def test_feature_space_equals_gram_space(dims, debiased):
    """Exact CKA in feature space (d < n) and from Gram matrices (d > n) agree to 1e-10."""
    n, dx, dy = dims
    g = torch.Generator().manual_seed(n + dx)
    x = torch.randn(n, dx, generator=g, dtype=torch.float64) + 3.0
    y = (x[:, : min(dx, dy)] @ torch.randn(min(dx, dy), dy, generator=g, dtype=torch.float64)
         + torch.randn(n, dy, generator=g, dtype=torch.float64))
    reference = _gram_cka(x, y, debiased)
    assert 0.05 < abs(reference) < 0.99
    for side in ("features", "gram", "auto"):
        assert cka(x, y, debiased=debiased, side=side) == pytest.approx(reference, abs=1e-10)


def test_wide_layers_use_symmetric_blocks():
    """‖XᵀX‖² from the block triangle (d > 1024) equals the direct value."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(30, 2100, generator=g, dtype=torch.float64)
    y = torch.randn(30, 70, generator=g, dtype=torch.float64)
    for debiased in (False, True):
        assert cka(x, y, debiased=debiased, side="features") == pytest.approx(
            _gram_cka(x, y, debiased), abs=1e-10)


def test_float32_features_match_float64():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(500, 64, generator=g) * 3 + 100.0
    y = torch.relu(x @ torch.randn(64, 32, generator=g)) + 0.3 * torch.randn(500, 32, generator=g)
    for debiased in (False, True):
        assert cka(x, y, debiased=debiased) == pytest.approx(
            _gram_cka(x.double(), y.double(), debiased), abs=1e-5)


def test_minibatch_estimators_match_the_gram_formulas():
    g = torch.Generator().manual_seed(7)
    xs = [torch.randn(40, 30, generator=g, dtype=torch.float64) for _ in range(2)]
    ys = [torch.randn(40, 9, generator=g, dtype=torch.float64) + xs[0][:, :9]]
    acc = MinibatchCKA(2, 1, debiased=True)
    for i in (0, 20):
        acc.update([x[i:i + 20] for x in xs], [y[i:i + 20] for y in ys])
    for debiased in (False, True):
        xy = np.zeros((2, 1))
        xx, yy = np.zeros(2), np.zeros(1)
        for i in (0, 20):
            from recurdepth.analysis.cka import centered_gram
            ka = [centered_gram(x[i:i + 20], debiased=debiased) for x in xs]
            kb = [centered_gram(y[i:i + 20], debiased=debiased) for y in ys]
            for a, k in enumerate(ka):
                xx[a] += float((k * k).sum())
                xy[a, 0] += float((k * kb[0]).sum())
            yy[0] += float((kb[0] * kb[0]).sum())
        expected = xy / np.sqrt(xx[:, None] * yy[None, :])
        np.testing.assert_allclose(acc.compute(debiased=debiased), expected, atol=1e-10)


def test_exact_memory_estimate_counts_gram_matrices():
    from recurdepth.analysis.cka import exact_cka_bytes

    narrow = exact_cka_bytes(1000, [10], [10])
    wide = exact_cka_bytes(1000, [5000], [5000])
    assert narrow >= 1000 * 20 * 4
    # Two 1000×1000 float64 Gram matrices on top of 1000×10000 float32 features.
    assert wide >= 1000 * 10000 * 4 + 2 * 1000 * 1000 * 8
