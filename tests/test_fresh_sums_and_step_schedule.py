"""Fresh training sums per epoch (data.options.fresh) and the per-step warmup_cosine schedule."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from recurdepth.cli import main
from recurdepth.data.registry import get_dataset
from recurdepth.data.sequences import N_TRAIN, generate, sequence_files
from recurdepth.errors import ConfigError
from recurdepth.training.config import (RunConfig, apply_overrides, identity_hash, protocol_dict,
                                        resolve_on)
from recurdepth.training.checkpoint import load_checkpoint
from recurdepth.training.data import build_run_data
from recurdepth.training.optim import lr_factor

BASE = ["model.family=transformer", "model.width=16", "model.iters=2", "data.name=addition",
        "data.maze_size=3", "optim.name=adamw", "optim.lr=0.003", "optim.weight_decay=0.01",
        "train.batch_size=64", "runtime.device=cpu", "runtime.threads=1", "runtime.amp=off",
        "runtime.progress=false", "seed=1"]


def config(*overrides: str) -> RunConfig:
    return resolve_on(apply_overrides(RunConfig(), [*BASE, *overrides]), "cpu")


def _number(digits) -> int:
    return int("".join(str(int(d)) for d in reversed(list(digits))) or "0")


def test_fixed_sets_keep_their_bytes():
    # Checksums written by the generator before fresh draws existed: the fixed sets (and so the
    # data fingerprint of every run made before) are unchanged.
    assert sequence_files("addition", "x", (8,)) == {
        "addition/train-8": "58cf0e1020804833dbbee79071c316674414e84ed1719d74dc9c4030d164d826",
        "addition/test-8": "534de94bcdc63bd657e670ced464f9700090059351ed13d47350f053861e4d8b"}
    assert sequence_files("copy", "x", (5,))["copy/train-5"] == (
        "09c442ecf0cdecb7a5c6cb3574f4910f5faf8cb6b6b71dbb68c107def2505504")


def test_epoch_sets_are_new_valid_sums_and_reproducible():
    spec = get_dataset("addition")
    fixed = spec.load_tensors("x", "train", size=8)
    sets = [spec.epoch_tensors("x", size=8, epoch=e) for e in range(3)]
    assert len(sets[1][0]) == N_TRAIN
    assert torch.equal(sets[0][0], fixed[0]) and torch.equal(sets[0][1], fixed[1])  # epoch 0
    assert not torch.equal(sets[1][0], sets[0][0]) and not torch.equal(sets[2][0], sets[1][0])
    again = spec.epoch_tensors("x", size=8, epoch=2)
    assert torch.equal(again[0], sets[2][0]) and torch.equal(again[1], sets[2][1])
    # Few of epoch 1's sums repeat epoch 0's (chance repeats of short operands only).
    seen = {bytes(r) for r in sets[0][0].reshape(N_TRAIN, -1).numpy()}
    repeats = sum(bytes(r) in seen for r in sets[1][0].reshape(N_TRAIN, -1).numpy())
    assert repeats < N_TRAIN // 20
    tokens, labels = sets[2][0].reshape(N_TRAIN, -1)[:300].numpy(), sets[2][1][:300].numpy()
    lengths = set()
    for tok, lab in zip(tokens, labels):
        a, b = _number(tok // 10), _number(tok % 10)
        assert _number(lab) == a + b
        lengths.update((len(str(a)), len(str(b))))
    assert lengths == set(range(1, 9))  # training operands of 1..8 digits, like the fixed set
    assert spec.epoch_tensors("x", size=8, limit=7, epoch=1)[0].shape == (7, 1, 1, 9)
    with pytest.raises(ConfigError, match="draw must be"):
        generate("addition", "train", 2, 8, 0, draw=-1)


def test_fresh_option_identity_and_batches():
    plain, fresh = config(), config("data.options.fresh=true")
    # Off (the default) adds no identity key: runs made before keep their hash.
    assert "data.options.fresh" not in protocol_dict(plain)
    assert protocol_dict(fresh)["data.options.fresh"] is True
    assert identity_hash(plain) != identity_hash(fresh)
    data = build_run_data(fresh)
    first = data.train.inputs.clone()
    data.train.set_epoch(1)
    assert not torch.equal(data.train.inputs, first)
    assert torch.equal(data.train_eval.inputs, first)  # train accuracy: epoch 0's (fixed) set
    data.train.set_epoch(0)
    assert torch.equal(data.train.inputs, first)
    with pytest.raises(ConfigError, match="data.options.fresh: expected bool") as e:
        config("data.options.fresh=3")
    assert "\n" not in str(e.value)


def _weights_digest(run) -> str:
    state = load_checkpoint(run / "checkpoint_last.pt")
    h = hashlib.sha256()
    for k, v in sorted(state["model"].items()):
        h.update(k.encode() + v.numpy().tobytes())
    return h.hexdigest()


def test_fresh_run_resumes_to_the_same_weights(tmp_path):
    # cosine_epochs given: raising train.epochs then continues the same schedule (same run).
    common = [*BASE, "data.train_limit=128", "data.test_limit=32", "optim.schedule=warmup_cosine",
              "optim.warmup_epochs=1", "optim.cosine_epochs=3", "--quiet"]
    fresh = [*common, "data.options.fresh=true"]
    whole, split, plain = tmp_path / "whole", tmp_path / "split", tmp_path / "plain"
    assert main(["train", "--run-dir", str(whole), *fresh, "train.epochs=3"]) == 0
    assert main(["train", "--run-dir", str(split), *fresh, "train.epochs=2"]) == 0
    assert main(["train", "--run-dir", str(split), *fresh, "train.epochs=3"]) == 0
    assert _weights_digest(whole) == _weights_digest(split)
    assert main(["train", "--run-dir", str(plain), *common, "train.epochs=3"]) == 0
    assert _weights_digest(plain) != _weights_digest(whole)  # other sums from epoch 2 on


def test_warmup_cosine_is_set_every_step(tmp_path):
    cfg = config("optim.schedule=warmup_cosine", "optim.warmup_epochs=1", "train.epochs=2")
    assert cfg.optim.cosine_epochs == 2
    # 2 steps per epoch, W = 2 warm-up steps, T = 4: (s+1)/2 for s < 2, then
    # (1 + cos(pi (s-2)/2)) / 2, written out.
    expected = [0.5, 1.0, 1.0, 0.5]
    assert [lr_factor(s // 2, cfg.optim, s % 2, 2) for s in range(4)] == pytest.approx(expected)
    # The per-epoch schedules ignore the step.
    cos = config("optim.schedule=cosine", "optim.warmup_epochs=0", "train.epochs=4")
    assert lr_factor(1, cos.optim, 1, 2) == lr_factor(1, cos.optim) == pytest.approx(
        (1 + math.cos(math.pi / 4)) / 2)
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), *BASE, "optim.schedule=warmup_cosine",
                 "optim.warmup_epochs=1", "train.epochs=2", "data.train_limit=128",
                 "data.test_limit=32", "--quiet"]) == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # lr and its factor, both at each epoch's first step (steps 0 and 2), agree.
    assert [x["lr_factor"] for x in lines] == pytest.approx([0.5, 1.0])
    assert [x["lr"] for x in lines] == pytest.approx([0.003 * 0.5, 0.003 * 1.0])
    with pytest.raises(ConfigError, match="step, cosine, warmup_cosine"):
        config("optim.schedule=linear")


def test_linear_step_warmup_gets_no_sgd_warmup_warning() -> None:
    """The exponential warm-up's warning is about the authors' SGD protocol: a warmup_cosine
    run asked for its linear per-step warm-up by name and gets none."""
    from recurdepth.training.config import OptimConfig
    from recurdepth.training.optim import warmup_warning

    linear = OptimConfig(name="adamw", lr=0.001, schedule="warmup_cosine", warmup_epochs=1)
    assert warmup_warning(linear, 2) is None
    sgd = OptimConfig(name="sgd", lr=0.1, warmup_epochs=5)
    assert "the authors' SGD protocol" in warmup_warning(sgd, 4)
