"""Linear centred kernel alignment (Kornblith et al. 2019), biased and debiased.

* ``cka(x, y)``: exact on the full data, from centred Gram matrices.
* ``debiased=True`` replaces HSIC by the unbiased estimator of Song et al. (2012), which is ~0 for
  independent features where the biased CKA of high-dimensional features is far from 0
  (Nguyen et al. 2021, appendix).
* :class:`MinibatchCKA`: the minibatch estimator of Nguyen et al. (2021): HSIC accumulated over
  minibatches, for any number of examples and every pair of layers of two models at once.
* :class:`StreamingLinearCKA`: exact full-data linear CKA (biased and debiased) accumulated over
  batches from feature cross-products, for features of modest dimension.

Everything is computed in float64 after centring the features, so features with large means
(e.g. post-ReLU maps with offsets of 1e6) lose no precision to cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from recurdepth.errors import ConfigError


def _flat64(x: Tensor) -> Tensor:
    return x.reshape(len(x), -1).to(torch.float64)


def centered_gram(x: Tensor, *, debiased: bool = False) -> Tensor:
    """The linear Gram matrix of ``x`` (n, ...) double-centred (biased) or U-centred (debiased).

    U-centring (Székely & Rizzo 2014) makes ``<U(K), U(L)> / (n (n-3))`` equal to the unbiased
    HSIC estimator of Song et al. (2012); the plain double centring gives ``tr(KHLH)``.
    """
    f = _flat64(x)
    f = f - f.mean(0, keepdim=True)  # a shift changes neither estimator; it prevents cancellation
    gram = f @ f.T
    n = len(gram)
    if not debiased:
        # Features centred above: f f^T is already H K H.
        return gram
    if n < 4:
        raise ConfigError(f"debiased CKA needs at least 4 examples per batch, got {n}")
    gram.fill_diagonal_(0.0)
    means = gram.sum(0) / (n - 2)
    total = gram.sum() / ((n - 1) * (n - 2))
    gram = gram - means[None, :] - means[:, None] + total
    gram.fill_diagonal_(0.0)
    return gram


def _hsic_scale(n: int, debiased: bool) -> float:
    return 1.0 / (n * (n - 3)) if debiased else 1.0 / (n - 1) ** 2


def hsic(x: Tensor, y: Tensor, *, debiased: bool = False) -> float:
    """Linear-kernel HSIC of features ``x`` and ``y`` (biased, or unbiased of Song et al. 2012)."""
    _check_pair(x, y)
    k = centered_gram(x, debiased=debiased)
    l_ = centered_gram(y, debiased=debiased)
    return float((k * l_).sum()) * _hsic_scale(len(x), debiased)


def cka(x: Tensor, y: Tensor, *, debiased: bool = False) -> float:
    """Linear CKA of ``x`` (n, ...) and ``y`` (n, ...) on the full data, in [0, 1] (biased)."""
    _check_pair(x, y)
    k = centered_gram(x, debiased=debiased)
    l_ = centered_gram(y, debiased=debiased)
    return _ratio(float((k * l_).sum()), float((k * k).sum()), float((l_ * l_).sum()))


def cka_matrix(feats_a: Sequence[Tensor], feats_b: Sequence[Tensor], *,
               debiased: bool = False) -> np.ndarray:
    """Exact CKA between every layer of ``feats_a`` and every layer of ``feats_b`` (full data)."""
    acc = MinibatchCKA(len(feats_a), len(feats_b), debiased=debiased)
    acc.update(feats_a, feats_b)
    return acc.compute()


def _check_pair(x: Tensor, y: Tensor) -> None:
    if len(x) != len(y):
        raise ConfigError(f"CKA compares the same examples: got {len(x)} and {len(y)} rows")
    if len(x) < 2:
        raise ConfigError("CKA needs at least 2 examples")


def _ratio(xy: float, xx: float, yy: float) -> float:
    denom = math.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
    # Constant features carry no information: their similarity to anything is defined as 0.
    return xy / denom if denom > 0 else 0.0


class MinibatchCKA:
    """CKA between every layer of model A and model B, accumulated over minibatches.

    Nguyen et al. (2021): ``CKA = Σ_b HSIC(K_b, L_b) / sqrt(Σ_b HSIC(K_b, K_b) Σ_b HSIC(L_b, L_b))``
    over minibatches b. With the unbiased HSIC this converges to the population CKA as the number
    of batches grows; one batch holding all the data gives the exact full-data value.
    """

    def __init__(self, n_layers_a: int, n_layers_b: int, *, debiased: bool = True) -> None:
        self.debiased = debiased
        self.xy = np.zeros((n_layers_a, n_layers_b))
        self.xx = np.zeros(n_layers_a)
        self.yy = np.zeros(n_layers_b)
        self.batches = 0
        self.examples = 0

    def update(self, feats_a: Sequence[Tensor], feats_b: Sequence[Tensor]) -> None:
        """Add one minibatch: the features of the same examples at every layer of A and B."""
        if len(feats_a) != len(self.xx) or len(feats_b) != len(self.yy):
            raise ConfigError(f"expected {len(self.xx)} and {len(self.yy)} layers, got "
                              f"{len(feats_a)} and {len(feats_b)}")
        n = len(feats_a[0])
        for f in (*feats_a, *feats_b):
            if len(f) != n:
                raise ConfigError("every layer of a minibatch must hold the same examples")
        scale = _hsic_scale(n, self.debiased)
        grams_a = torch.stack([centered_gram(f, debiased=self.debiased).flatten() for f in feats_a])
        grams_b = torch.stack([centered_gram(f, debiased=self.debiased).flatten() for f in feats_b])
        self.xy += (grams_a @ grams_b.T).cpu().numpy() * scale
        self.xx += (grams_a * grams_a).sum(1).cpu().numpy() * scale
        self.yy += (grams_b * grams_b).sum(1).cpu().numpy() * scale
        self.batches += 1
        self.examples += n

    def compute(self) -> np.ndarray:
        """The (layers of A) × (layers of B) CKA matrix."""
        if not self.batches:
            raise ConfigError("no minibatch was added")
        out = np.zeros_like(self.xy)
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = _ratio(self.xy[i, j], self.xx[i], self.yy[j])
        return out


class StreamingLinearCKA:
    """Exact full-data linear CKA of one pair of feature sets, accumulated batch by batch.

    Linear-kernel HSIC is a function of feature cross-products (``XᵀY``, sums, squared norms), so
    both the biased and the unbiased estimator of the *whole* data set can be accumulated exactly
    in O(d_x·d_y) memory: use it for pooled or low-dimensional features.
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: tuple[Tensor, Tensor] | None = None
        self._sums: dict[str, Tensor] = {}

    def update(self, x: Tensor, y: Tensor) -> None:
        """Add the features of a batch of examples."""
        if len(x) != len(y):
            raise ConfigError(f"CKA compares the same examples: got {len(x)} and {len(y)} rows")
        x, y = _flat64(x), _flat64(y)
        if self._shift is None:
            # A fixed shift (the first batch's mean) keeps the sums small for features with large
            # means; both estimators are invariant to it.
            self._shift = (x.mean(0), y.mean(0))
        x, y = x - self._shift[0], y - self._shift[1]
        a, b = (x * x).sum(1), (y * y).sum(1)
        terms = {
            "xy": x.T @ y, "xx": x.T @ x, "yy": y.T @ y, "sx": x.sum(0), "sy": y.sum(0),
            "sa": a.sum(), "sb": b.sum(), "saa": (a * a).sum(), "sbb": (b * b).sum(),
            "sab": (a * b).sum(), "ax": a @ x, "ay": a @ y, "bx": b @ x, "by": b @ y,
        }
        for key, value in terms.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value
        self.n += len(x)

    def _hsic_pair(self, xy: str, sx: str, sy: str, ay: str, bx: str, sab: str, sa: str,
                   sb: str, debiased: bool) -> float:
        s, n = self._sums, self.n
        if not debiased:
            cross = s[xy] - torch.outer(s[sx], s[sy]) / n  # centred cross-covariance × n
            return float((cross * cross).sum()) / (n - 1) ** 2
        if n < 4:
            raise ConfigError(f"debiased CKA needs at least 4 examples, got {n}")
        # Song et al. (2012) with K̃ = K - diag(K): every term is a sum over examples.
        trace = float((s[xy] * s[xy]).sum() - s[sab])
        k_sum = float(s[sx] @ s[sx] - s[sa])
        l_sum = float(s[sy] @ s[sy] - s[sb])
        kl = float(s[sx] @ s[xy] @ s[sy] - s[ay] @ s[sy] - s[bx] @ s[sx] + s[sab])
        value = trace + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 * kl / (n - 2)
        return value / (n * (n - 3))

    def hsic(self, *, debiased: bool = False) -> tuple[float, float, float]:
        """(HSIC(X, Y), HSIC(X, X), HSIC(Y, Y)) of all the data added so far."""
        if self.n < 2:
            raise ConfigError("CKA needs at least 2 examples")
        return (
            self._hsic_pair("xy", "sx", "sy", "ay", "bx", "sab", "sa", "sb", debiased),
            self._hsic_pair("xx", "sx", "sx", "ax", "ax", "saa", "sa", "sa", debiased),
            self._hsic_pair("yy", "sy", "sy", "by", "by", "sbb", "sb", "sb", debiased),
        )

    def compute(self, *, debiased: bool = False) -> float:
        """Linear CKA of all the data added so far."""
        return _ratio(*self.hsic(debiased=debiased))


METHODS = ("minibatch", "exact")


def compare_models(model_a: torch.nn.Module, model_b: torch.nn.Module, inputs: Tensor, *,
                   method: str = "minibatch", batch_size: int = 250, include_stem: bool = True,
                   max_bytes: int = 4 << 30, device: str | torch.device = "cpu",
                   progress: bool = False) -> dict:
    """Biased and debiased CKA between every layer of two models on the same ``inputs``.

    Layers: the stem output and the state after every iteration / block (iteration i of a
    recurrent model faces block i of a feed-forward one). ``method="minibatch"`` accumulates over
    batches of ``batch_size`` (Nguyen et al. 2021); ``"exact"`` keeps every feature and computes
    the full-data value (refused above ``max_bytes`` of features).
    """
    from tqdm import tqdm

    from recurdepth.analysis.features import feature_batches, layers, require_unrolled

    if method not in METHODS:
        raise ConfigError(f"unknown CKA method {method!r}; valid choices: {', '.join(METHODS)}")
    nets = [require_unrolled(model_a), require_unrolled(model_b)]
    names = [[layer.name for layer in layers(net, include_stem=include_stem)] for net in nets]
    usable = len(inputs) if method == "exact" else len(inputs) - len(inputs) % batch_size
    if method == "minibatch" and usable == 0:
        raise ConfigError(f"minibatch CKA needs at least one full batch of {batch_size} "
                          f"examples; got {len(inputs)}: lower --batch-size")
    inputs = inputs[:usable]
    streams = [feature_batches(net, inputs, batch_size=batch_size, include_stem=include_stem,
                               device=device) for net in nets]
    accs = {d: MinibatchCKA(len(names[0]), len(names[1]), debiased=d) for d in (False, True)}
    kept: tuple[list[list[Tensor]], list[list[Tensor]]] = ([], [])
    size = 0
    steps = -(-len(inputs) // batch_size)
    for fa, fb in tqdm(zip(*streams), total=steps, desc="CKA", disable=not progress):
        if method == "minibatch":
            for acc in accs.values():
                acc.update(fa, fb)
            continue
        size += sum(f.numel() * f.element_size() for f in (*fa, *fb))
        if size > max_bytes:
            raise ConfigError(f"exact CKA would hold more than {max_bytes / 2**30:.1f} GiB of "
                              f"features: use the minibatch method or fewer images")
        kept[0].append([f.cpu() for f in fa])
        kept[1].append([f.cpu() for f in fb])
    if method == "exact":
        full_a = [torch.cat(parts) for parts in zip(*kept[0])]
        full_b = [torch.cat(parts) for parts in zip(*kept[1])]
        for acc in accs.values():
            acc.update(full_a, full_b)
    return {"layers_a": names[0], "layers_b": names[1], "method": method,
            "examples": accs[False].examples, "batch_size": batch_size,
            "biased": accs[False].compute().tolist(), "debiased": accs[True].compute().tolist()}
