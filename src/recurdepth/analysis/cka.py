"""Linear centred kernel alignment (Kornblith et al. 2019), biased and debiased.

* ``cka(x, y)``: exact on the full data. It works on the cheaper side: in feature space
  (``‖XᵀY‖²_F`` from d×d cross-covariances) when a layer has fewer features than examples, from
  n×n Gram matrices otherwise; both give the same value (tests check to 1e-10).
* ``debiased=True`` replaces HSIC by the unbiased estimator of Song et al. (2012), which is ~0 for
  independent features where the biased CKA of high-dimensional features is far from 0
  (Nguyen et al. 2021, appendix).
* :class:`MinibatchCKA`: the minibatch estimator of Nguyen et al. (2021): HSIC accumulated over
  minibatches, for any number of examples and every pair of layers of two models at once.
* :class:`StreamingLinearCKA`: exact full-data linear CKA (biased and debiased) accumulated over
  batches from feature cross-products, for features of modest dimension.

Features are centred first (two passes, means in float64), so features with large means (e.g.
offsets of 1e8) lose no precision to cancellation. Products run in the features' own precision
(float32 features: float32 matrix products, about 2× faster than float64) and every sum of
squares is accumulated in float64.

With centred features X, Y (so K = XXᵀ has zero row sums) and row norms a_i = ‖x_i‖², b_i = ‖y_i‖²:
biased HSIC = ⟨K, L⟩ / (n-1)²; unbiased HSIC (Song et al. 2012, K̃ = K - diag K, K̃1 = -a) =
[⟨K, L⟩ - a·b + Σa Σb / ((n-1)(n-2)) - 2 a·b / (n-2)] / (n(n-3)); and ⟨K, L⟩ = ‖XᵀY‖²_F.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recurdepth.errors import ConfigError

SIDES = ("auto", "features", "gram")
# Products of sub-blocks narrower than this lose BLAS efficiency faster than symmetry saves.
_SYMMETRIC_BLOCK = 1024


def _flat64(x: Tensor) -> Tensor:
    return x.reshape(len(x), -1).to(torch.float64)


def _centred(x: Tensor, *, inplace: bool = False) -> Tensor:
    """``x`` flattened per example and centred; float64 stays float64, anything else float32."""
    f = x.reshape(len(x), -1)
    dtype = torch.float64 if f.dtype == torch.float64 else torch.float32
    if f.dtype != dtype:
        f = f.to(dtype)
    elif not inplace:
        f = f.clone()
    # Two passes: the second removes what rounding left of the first mean, so large offsets
    # (1e8) cost no precision. (A float64 mean of float32 data would copy the whole tensor.)
    for _ in range(2):
        f -= f.mean(0, keepdim=True)
    return f


def _sq_norm(m: Tensor) -> float:
    """‖m‖²_F accumulated in float64."""
    return float(torch.linalg.vector_norm(m, dtype=torch.float64) ** 2)


def _self_cross(x: Tensor) -> float:
    """‖XᵀX‖²_F from the upper block triangle of the symmetric XᵀX (about 5/8 of the work)."""
    d = x.shape[1]
    if d <= _SYMMETRIC_BLOCK:
        return _sq_norm(x.T @ x)
    h = d // 2
    a, b = x[:, :h], x[:, h:]
    return _self_cross(a) + _self_cross(b) + 2.0 * _sq_norm(a.T @ b)


@dataclass
class _Prepared:
    """One layer ready for exact CKA: centred features or its Gram matrix, and row norms."""

    x: Tensor | None  # centred (n, d) when the feature side is cheaper (d <= n)
    row_sq: Tensor  # float64 (n,)
    gram: Tensor | None  # float64 (n, n) when the Gram side is cheaper (d > n)
    self_cross: float  # ⟨K, K⟩

    @property
    def n(self) -> int:
        return len(self.row_sq)


def _prepare(x: Tensor, side: str = "auto", *, inplace: bool = False) -> _Prepared:
    if side not in SIDES:
        raise ConfigError(f"unknown CKA side {side!r}; valid choices: {', '.join(SIDES)}")
    f = _centred(x, inplace=inplace)
    row_sq = torch.linalg.vector_norm(f, dim=1, dtype=torch.float64) ** 2
    n, d = f.shape
    if side == "gram" or (side == "auto" and d > n):
        gram = (f @ f.T).to(torch.float64)
        return _Prepared(None, row_sq, gram, float(torch.dot(gram.flatten(), gram.flatten())))
    return _Prepared(f, row_sq, None, _self_cross(f))


def _cross(p: _Prepared, q: _Prepared) -> float:
    """⟨K_p, K_q⟩: from both Gram matrices, ‖X_pᵀX_q‖²_F, or tr(Xᵀ K X) for a mixed pair."""
    if p.gram is not None and q.gram is not None:
        return float(torch.dot(p.gram.flatten(), q.gram.flatten()))
    if p.x is not None and q.x is not None:
        return _sq_norm(p.x.T @ q.x)
    gram, x = (p.gram, q.x) if p.gram is not None else (q.gram, p.x)
    x = x.to(torch.float64)
    return float(((gram @ x) * x).sum())


def _hsic_from(kl: float, p: _Prepared, q: _Prepared, debiased: bool) -> float:
    """Biased or unbiased HSIC from ⟨K, L⟩ and the row norms (module docstring)."""
    n = p.n
    if not debiased:
        return kl / (n - 1) ** 2
    ab = float(torch.dot(p.row_sq, q.row_sq))
    sa, sb = float(p.row_sq.sum()), float(q.row_sq.sum())
    return (kl - ab + sa * sb / ((n - 1) * (n - 2)) - 2.0 * ab / (n - 2)) / (n * (n - 3))


def _check_n(n: int, debiased: bool) -> None:
    if n < 2:
        raise ConfigError("CKA needs at least 2 examples")
    if debiased and n < 4:
        raise ConfigError(f"debiased CKA needs at least 4 examples per batch, got {n}")


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


def hsic(x: Tensor, y: Tensor, *, debiased: bool = False, side: str = "auto") -> float:
    """Linear-kernel HSIC of features ``x`` and ``y`` (biased, or unbiased of Song et al. 2012)."""
    _check_pair(x, y)
    _check_n(len(x), debiased)
    p, q = _prepare(x, side), _prepare(y, side)
    return _hsic_from(_cross(p, q), p, q, debiased)


def cka(x: Tensor, y: Tensor, *, debiased: bool = False, side: str = "auto") -> float:
    """Linear CKA of ``x`` (n, ...) and ``y`` (n, ...) on the full data, in [0, 1] (biased).

    ``side``: ``features`` (d×d cross-covariances), ``gram`` (n×n Gram matrices) or ``auto``
    (whichever is smaller for each of ``x`` and ``y``); all give the same value.
    """
    return float(exact_cka_matrices([x], [y], side=side, with_debiased=debiased)
                 [int(debiased)][0, 0])


def cka_matrix(feats_a: Sequence[Tensor], feats_b: Sequence[Tensor], *,
               debiased: bool = False, side: str = "auto") -> np.ndarray:
    """Exact CKA between every layer of ``feats_a`` and every layer of ``feats_b`` (full data)."""
    return exact_cka_matrices(feats_a, feats_b, side=side, with_debiased=debiased)[int(debiased)]


def exact_cka_matrices(feats_a: Sequence[Tensor], feats_b: Sequence[Tensor], *,
                       side: str = "auto", inplace: bool = False,
                       with_debiased: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(biased, debiased) exact CKA matrices between the layers of A and B from one pass.

    Each layer is centred and its Gram matrix or ‖XᵀX‖² computed once and reused for every pair
    and both estimators. ``inplace=True`` centres the given tensors in place (no copy).
    ``with_debiased=False`` skips the debiased matrix (NaN), which needs n ≥ 4.
    """
    n = len(feats_a[0]) if feats_a else 0
    for f in (*feats_a, *feats_b):
        if len(f) != n:
            raise ConfigError(f"CKA compares the same examples: got {n} and {len(f)} rows")
    _check_n(n, with_debiased)
    prep_a = [_prepare(f, side, inplace=inplace) for f in feats_a]
    prep_b = [_prepare(f, side, inplace=inplace) for f in feats_b]
    return _ratios(prep_a, prep_b, with_debiased=with_debiased)


def _ratios(prep_a: list[_Prepared], prep_b: list[_Prepared], *, with_debiased: bool = True,
            ) -> tuple[np.ndarray, np.ndarray]:
    sums = _hsic_sums(prep_a, prep_b, with_debiased=with_debiased)
    return tuple(_ratio_matrix(*s) for s in sums)  # type: ignore[return-value]


def _hsic_sums(prep_a: list[_Prepared], prep_b: list[_Prepared], *, with_debiased: bool = True):
    """((xy, xx, yy) biased, (xy, xx, yy) debiased) HSIC arrays of one set of prepared layers."""
    out = []
    kl = np.array([[_cross(p, q) for q in prep_b] for p in prep_a]).reshape(
        len(prep_a), len(prep_b))
    for debiased in (False, True):
        if debiased and not with_debiased:
            out.append((np.full_like(kl, np.nan), np.full(len(prep_a), np.nan),
                        np.full(len(prep_b), np.nan)))
            continue
        xy = np.array([[_hsic_from(kl[i, j], p, q, debiased) for j, q in enumerate(prep_b)]
                       for i, p in enumerate(prep_a)]).reshape(kl.shape)
        xx = np.array([_hsic_from(p.self_cross, p, p, debiased) for p in prep_a])
        yy = np.array([_hsic_from(q.self_cross, q, q, debiased) for q in prep_b])
        out.append((xy, xx, yy))
    return out


def _ratio_matrix(xy: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    return np.array([[_ratio(xy[i, j], xx[i], yy[j]) for j in range(len(yy))]
                     for i in range(len(xx))]).reshape(len(xx), len(yy))


def _check_pair(x: Tensor, y: Tensor) -> None:
    if len(x) != len(y):
        raise ConfigError(f"CKA compares the same examples: got {len(x)} and {len(y)} rows")
    if len(x) < 2:
        raise ConfigError("CKA needs at least 2 examples")


def _ratio(xy: float, xx: float, yy: float) -> float:
    if math.isnan(xy):
        return math.nan
    denom = math.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
    # Constant features carry no information: their similarity to anything is defined as 0.
    return xy / denom if denom > 0 else 0.0


class MinibatchCKA:
    """CKA between every layer of model A and model B, accumulated over minibatches.

    Nguyen et al. (2021): ``CKA = Σ_b HSIC(K_b, L_b) / sqrt(Σ_b HSIC(K_b, K_b) Σ_b HSIC(L_b, L_b))``
    over minibatches b. With the unbiased HSIC this converges to the population CKA as the number
    of batches grows; the biased one is inflated (far above the full-data value for wide layers).
    One batch holding all the data gives the exact full-data value. Both estimators are
    accumulated from the same Gram matrices; ``debiased`` picks what :meth:`compute` returns.
    """

    def __init__(self, n_layers_a: int, n_layers_b: int, *, debiased: bool = True) -> None:
        self.debiased = debiased
        self.sums = [(np.zeros((n_layers_a, n_layers_b)), np.zeros(n_layers_a),
                      np.zeros(n_layers_b)) for _ in (False, True)]
        self.batches = 0
        self.examples = 0

    def update(self, feats_a: Sequence[Tensor], feats_b: Sequence[Tensor], *,
                inplace: bool = False) -> None:
        """Add one minibatch: the features of the same examples at every layer of A and B.

        ``inplace=True`` centres the given tensors in place instead of copying them.
        """
        la, lb = len(self.sums[0][1]), len(self.sums[0][2])
        if len(feats_a) != la or len(feats_b) != lb:
            raise ConfigError(f"expected {la} and {lb} layers, got {len(feats_a)} and "
                              f"{len(feats_b)}")
        n = len(feats_a[0])
        for f in (*feats_a, *feats_b):
            if len(f) != n:
                raise ConfigError("every layer of a minibatch must hold the same examples")
        _check_n(n, self.debiased)
        sums = _hsic_sums([_prepare(f, inplace=inplace) for f in feats_a],
                          [_prepare(f, inplace=inplace) for f in feats_b], with_debiased=n >= 4)
        for acc, batch in zip(self.sums, sums):
            for total, value in zip(acc, batch):
                total += value
        self.batches += 1
        self.examples += n

    def compute(self, *, debiased: bool | None = None) -> np.ndarray:
        """The (layers of A) × (layers of B) CKA matrix (default: the estimator chosen at init)."""
        if not self.batches:
            raise ConfigError("no minibatch was added")
        return _ratio_matrix(*self.sums[int(self.debiased if debiased is None else debiased)])


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


METHODS = ("auto", "exact", "minibatch")

# What each value means; the paper (§5.2) reports the exact biased CKA of Kornblith et al. (2019).
LABELS = {
    ("exact", "biased"): "exact linear CKA (Kornblith et al. 2019; the paper's estimator)",
    ("exact", "debiased"): "exact debiased linear CKA (unbiased HSIC, Song et al. 2012)",
    ("minibatch", "debiased"): "debiased minibatch CKA (Nguyen et al. 2021; estimates the "
                               "population CKA)",
    ("minibatch", "biased"): "biased minibatch CKA (inflated for wide layers; not the paper's "
                             "CKA)",
}


def exact_cka_bytes(n: int, dims_a: Sequence[int], dims_b: Sequence[int], *,
                    itemsize: int = 4) -> int:
    """Peak bytes :func:`compare_models` allocates for exact CKA of ``n`` examples.

    Counted: every layer's features (centred in place), an n×n float64 Gram matrix (plus its
    float32 product) per layer wider than ``n``, and the largest d×d cross-covariance or
    float64 copy of a narrow layer facing a Gram matrix.
    """
    dims = [*dims_a, *dims_b]
    features = n * sum(dims) * itemsize
    grams = sum(n * n * 8 for d in dims if d > n)
    narrow = [d for d in dims if d <= n] or [0]
    work = max(n * n * itemsize if any(d > n for d in dims) else 0,
               max(narrow) ** 2 * itemsize, n * max(narrow) * 8)
    return features + grams + work


def _layer_dims(net: torch.nn.Module, inputs: Tensor, include_stem: bool, device) -> list[int]:
    from recurdepth.analysis.features import capture

    with torch.no_grad():
        net.eval()
        return [f[0].numel() for f in capture(net, inputs[:1].to(device),
                                              include_stem=include_stem)]


def choose_method(model_a: torch.nn.Module, model_b: torch.nn.Module, inputs: Tensor, *,
                  include_stem: bool = True, max_bytes: int = 4 << 30,
                  device: str | torch.device = "cpu") -> tuple[str, int]:
    """("exact", bytes) when exact CKA of ``inputs`` fits in ``max_bytes``, else ("minibatch", bytes)."""
    need = exact_cka_bytes(len(inputs), _layer_dims(model_a, inputs, include_stem, device),
                           _layer_dims(model_b, inputs, include_stem, device))
    return ("exact" if need <= max_bytes else "minibatch"), need


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**28 else f"{n_bytes / 2**20:.1f} MiB"


def compare_models(model_a: torch.nn.Module, model_b: torch.nn.Module, inputs: Tensor, *,
                   method: str = "auto", batch_size: int = 250, include_stem: bool = True,
                   max_bytes: int = 4 << 30, device: str | torch.device = "cpu",
                   progress: bool = False) -> dict:
    """Biased and debiased CKA between every layer of two models on the same ``inputs``.

    Layers: the stem output and the state after every iteration / block (iteration i of a
    recurrent model faces block i of a feed-forward one). ``"exact"`` keeps every feature and
    computes the full-data values (refused when :func:`exact_cka_bytes` exceeds ``max_bytes``);
    ``"minibatch"`` accumulates over batches of ``batch_size`` (Nguyen et al. 2021); ``"auto"``
    is exact when it fits, else minibatch. ``headline`` names the value to report: the exact
    biased CKA (the paper's), or for minibatch the debiased one; ``labels`` says what each is.
    """
    from tqdm import tqdm

    from recurdepth.progress import bar_disable

    from recurdepth.analysis.features import feature_batches, layers, require_unrolled

    if method not in METHODS:
        raise ConfigError(f"unknown CKA method {method!r}; valid choices: {', '.join(METHODS)}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    nets = [require_unrolled(model_a), require_unrolled(model_b)]
    names = [[layer.name for layer in layers(net, include_stem=include_stem)] for net in nets]
    needed = exact_cka_bytes(len(inputs), _layer_dims(nets[0], inputs, include_stem, device),
                             _layer_dims(nets[1], inputs, include_stem, device))
    if method == "auto":
        method = "exact" if needed <= max_bytes else "minibatch"
    elif method == "exact" and needed > max_bytes:
        raise ConfigError(f"exact CKA of {len(inputs)} images needs {_size(needed)}, over the "
                          f"{_size(max_bytes)} budget: use --method minibatch, fewer --images or "
                          f"a larger --max-gib")
    batch_size = min(batch_size, len(inputs))  # one batch of every image is the exact value
    usable = len(inputs) if method == "exact" else len(inputs) - len(inputs) % batch_size
    if method == "minibatch" and batch_size < 4:
        raise ConfigError(f"debiased minibatch CKA needs batches of at least 4 images, got "
                          f"{batch_size}: raise --batch-size or --images")
    inputs = inputs[:usable]
    streams = [feature_batches(net, inputs, batch_size=batch_size, include_stem=include_stem,
                               device=device) for net in nets]
    steps = -(-len(inputs) // batch_size)
    acc = MinibatchCKA(len(names[0]), len(names[1]))
    kept: tuple[list[list[Tensor]], list[list[Tensor]]] = ([], [])
    for fa, fb in tqdm(zip(*streams), total=steps, desc="CKA", disable=bar_disable(progress)):
        if method == "minibatch":
            acc.update(fa, fb, inplace=True)
        else:
            kept[0].append([f.cpu() for f in fa])
            kept[1].append([f.cpu() for f in fb])
    if method == "exact":
        full = [[torch.cat(parts) for parts in zip(*k)] for k in kept]
        kept[0].clear()
        kept[1].clear()
        biased, debiased = exact_cka_matrices(*full, inplace=True,
                                              with_debiased=len(inputs) >= 4)
        examples = len(inputs)
    else:
        biased, debiased = acc.compute(debiased=False), acc.compute(debiased=True)
        examples = acc.examples
    headline = "biased" if method == "exact" else "debiased"
    return {"layers_a": names[0], "layers_b": names[1], "method": method,
            "examples": examples, "batch_size": batch_size if method == "minibatch" else None,
            "exact_bytes": needed, "headline": headline,
            "labels": {k: LABELS[(method, k)] for k in ("biased", "debiased")},
            "biased": biased.tolist(), "debiased": debiased.tolist()}
