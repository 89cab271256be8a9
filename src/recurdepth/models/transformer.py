"""Looped vs stacked transformers (Yang et al. 2023; Saunshi et al. 2025) under Equation 1.

Stem: a token embedding (no positional embedding). Unit: a pre-LN block, ``h + attn(LN(h))``
then ``h + MLP(LN(h))``, with causal multi-head attention whose positions come from ALiBi
(Press et al. 2022: a per-head linear penalty on distance, so the model runs on sequences
longer than it was trained on) and an MLP of 4x width with GELU. Head: LayerNorm + a linear
layer per position. *Recurrent* = one block looped ``iters`` times; *feed-forward* = ``iters``
stacked blocks; both through :class:`~recurdepth.models.unrolled.UnrolledNet`, so twins, states,
CKA, probes and reuse work unchanged.

Effective depth counts attention and the MLP as one layer each (:class:`DepthLayer`) plus the
head's linear layer: ``1 + 2·iters``. ``model.options.inject`` re-adds the token embedding
before every loop (input injection, Yang et al.); the unit then embeds the input itself with
its own table, so the looped and one-block models still have the same parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recurdepth.data.registry import get_dataset
from recurdepth.data.sequences import VOCAB
from recurdepth.errors import ConfigError
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import DepthLayer, Unit, UnrolledNet


def alibi_slopes(heads: int) -> Tensor:
    """ALiBi's per-head slopes ``2^(-8(h+1)/heads)`` (Press et al. 2022, for any head count)."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])


def alibi_causal_bias(slopes: Tensor, length: int) -> Tensor:
    """Additive attention bias (heads, L, L): ``-slope·(i - j)`` for ``j <= i``, ``-inf`` after."""
    pos = torch.arange(length, device=slopes.device)
    dist = (pos[:, None] - pos[None, :]).to(slopes.dtype)
    bias = -slopes[:, None, None] * dist
    return bias.masked_fill(dist < 0, float("-inf"))


class Tokens(nn.Module):
    """The pipeline's (N, 1, 1, L) float token 'images' as (N, L) token ids, checked on the CPU."""

    def __init__(self, vocab: int, dataset: str) -> None:
        super().__init__()
        self.vocab, self.dataset = vocab, dataset

    def forward(self, x: Tensor) -> Tensor:
        ids = x.reshape(x.shape[0], -1).round().long()
        # A bad id on a GPU is a device assert; checking there would cost a sync per step.
        if ids.device.type == "cpu" and ids.numel() and not 0 <= int(ids.min()) <= int(
                ids.max()) < self.vocab:
            raise ConfigError(
                f"input token ids {int(ids.min())}..{int(ids.max())} are outside the model's "
                f"vocabulary of {self.vocab} tokens (data set {self.dataset!r}): the data and the "
                f"model disagree; build the model for the data set it reads")
        return ids


class Embed(nn.Module):
    """The stem: token ids → (N, L, d_model) embeddings."""

    def __init__(self, vocab: int, d_model: int, dataset: str) -> None:
        super().__init__()
        self.tokens = Tokens(vocab, dataset)
        self.embedding = nn.Embedding(vocab, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.embedding(self.tokens(x))


class Attention(DepthLayer):
    """Causal multi-head self-attention with ALiBi: one layer of effective depth."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.register_buffer("slopes", alibi_slopes(heads), persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        n, length, d = h.shape
        q, k, v = self.qkv(h).view(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        bias = alibi_causal_bias(self.slopes.float(), length).to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(y.transpose(1, 2).reshape(n, length, d))


class MLP(DepthLayer):
    """``Linear(d→4d), GELU, Linear(4d→d)``: one layer of effective depth."""

    def __init__(self, d_model: int, ratio: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, ratio * d_model)
        self.proj = nn.Linear(ratio * d_model, d_model)

    def forward(self, h: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(h)))


class Block(Unit):
    """The pre-LN transformer block; with ``inject`` it first adds its embedding of the input."""

    channels_last = True  # the state is (N, L, d_model)

    def __init__(self, d_model: int, heads: int, mlp_ratio: int, *, inject: Embed | None) -> None:
        super().__init__()
        self.recall = inject is not None  # the unrolled loop then passes the input every time
        self.inject = inject
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio)

    def forward(self, h: Tensor, slot: int = 0, inp: Tensor | None = None) -> Tensor:
        if self.inject is not None:
            if inp is None:
                raise ValueError("an injecting block needs the model input (inp)")
            h = h + self.inject(inp)
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class Head(nn.Module):
    """LayerNorm + linear per position; logits as (N, classes, L) like every per-position task."""

    def __init__(self, d_model: int, classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.linear = nn.Linear(d_model, classes)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(self.norm(h)).transpose(1, 2)


@register_family(
    "transformer",
    description="pre-LN causal transformer with ALiBi (looped = recurrent); depth 1 + 2·iters",
    datasets=tuple(VOCAB),
    depth_base=1,
    depth_per_iter=2,
    default_width={name: 64 for name in VOCAB},
    paper_depths=(13,),  # 6 blocks / 6 loops, the looped_addition_cpu comparison
    options={"heads": 4, "mlp_ratio": 4, "inject": False},
)
def build_transformer(mode: str, iters: int, width: int, dataset: str, heads: int = 4,
                      mlp_ratio: int = 4, inject: bool = False) -> UnrolledNet:
    """Build a looped (recurrent) or stacked (feed-forward) transformer of ``width`` = d_model."""
    for key, value in (("heads", heads), ("mlp_ratio", mlp_ratio)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model.options.{key} must be a whole number >= 1, got {value!r}")
    if not isinstance(inject, bool):
        raise ConfigError(f"model.options.inject must be true or false, got {inject!r}")
    if width % heads:
        raise ConfigError(f"width (d_model) {width} must be a multiple of model.options.heads "
                          f"({heads})")
    vocab = VOCAB[dataset]

    def make_unit(slots: int) -> Block:
        return Block(width, heads, mlp_ratio,
                     inject=Embed(vocab, width, dataset) if inject else None)

    return UnrolledNet(family="transformer", mode=mode, dataset=dataset, iters=iters,
                       stem=Embed(vocab, width, dataset), make_unit=make_unit,
                       head=Head(width, get_dataset(dataset).num_classes))


__all__ = ["Attention", "Block", "Embed", "Head", "MLP", "alibi_causal_bias", "alibi_slopes",
           "build_transformer"]
