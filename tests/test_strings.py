"""Bit-string data (prefix sums, parity): seeded, byte-identical, checked against a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from recurdepth.data import strings
from recurdepth.data.registry import get_dataset
from recurdepth.data.tasks import task_of
from recurdepth.errors import ConfigError

LENGTHS = [1, 2, 16, 32, 64, 128, 513]


def reference_prefix_sums(bits: np.ndarray) -> np.ndarray:
    """y_i = (x_1 + ... + x_i) mod 2, one position at a time (independent of the generator)."""
    out = np.zeros(bits.shape, dtype=np.int64)
    for r, row in enumerate(bits.tolist()):
        total = 0
        for i, b in enumerate(row):
            total += b
            out[r, i] = total % 2
    return out


@pytest.mark.parametrize("length", LENGTHS)
def test_prefix_sums_and_parity_match_a_reference(length):
    bits, labels = strings.generate("prefix_sums", 50, length, seed=3)
    assert bits.shape == (50, length) and bits.dtype == np.uint8
    assert set(np.unique(bits)) <= {0, 1}
    np.testing.assert_array_equal(labels, reference_prefix_sums(bits))
    pbits, plabels = strings.generate("parity", 50, length, seed=3)
    np.testing.assert_array_equal(pbits, bits)  # same strings, one label each
    np.testing.assert_array_equal(plabels, bits.sum(axis=1) % 2)


@pytest.mark.parametrize("length", [16, 32, 128])
def test_same_seed_same_bytes_other_seed_other_strings(length):
    a = strings.generate("prefix_sums", 200, length, seed=7)
    b = strings.generate("prefix_sums", 200, length, seed=7)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    c = strings.generate("prefix_sums", 200, length, seed=8)
    assert a[0].tobytes() != c[0].tobytes()
    # Fair coins: about half the bits are ones (200*L draws; 6 sigma bound).
    n = a[0].size
    assert abs(a[0].mean() - 0.5) < 6 * 0.5 / np.sqrt(n)


@pytest.mark.parametrize("bad", [0, -1, strings.MAX_LENGTH + 1, 2.5, True])
def test_length_zero_or_above_the_cap_is_a_one_line_error(bad):
    with pytest.raises(ConfigError) as err:
        strings.generate("prefix_sums", 4, bad, seed=0)
    assert "\n" not in str(err.value) and "length" in str(err.value)
    assert str(strings.MAX_LENGTH) in str(err.value)


def test_unknown_kind_lists_the_choices():
    with pytest.raises(ConfigError, match="valid choices: prefix_sums, parity"):
        strings.generate("addition", 4, 8, seed=0)


def test_the_data_set_loader_splits_limit_and_fingerprint():
    spec = get_dataset("prefix_sums")
    x, y = spec.load_tensors("unused", "train", size=32)
    assert tuple(x.shape) == (strings.N_TRAIN, 1, 1, 32) and str(x.dtype) == "torch.uint8"
    assert tuple(y.shape) == (strings.N_TRAIN, 32)
    np.testing.assert_array_equal(y.numpy(), reference_prefix_sums(x.numpy()[:, 0, 0]))
    x5, y5 = spec.load_tensors("unused", "train", size=32, limit=5)
    assert (x5 == x[:5]).all() and (y5 == y[:5]).all()
    xt, _ = spec.load_tensors("unused", "test", size=32, limit=1000)
    train_rows = {bytes(r) for r in x.numpy()[:, 0, 0]}
    overlap = sum(bytes(r) in train_rows for r in xt.numpy()[:, 0, 0])
    assert overlap < 5  # distinct seeds: at most chance collisions among 2^32 strings
    files = spec.data_files("unused", (32, 64))
    assert sorted(files) == ["prefix_sums/test-32", "prefix_sums/test-64",
                             "prefix_sums/train-32", "prefix_sums/train-64"]
    assert files == spec.data_files("elsewhere", (64, 32))  # a fingerprint of content, not paths
    assert spec.image_side(48) == 48


def test_the_task_scores_exact_strings_and_averages_every_position():
    import torch

    task = task_of("prefix_sums")
    y = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0]])
    logits = torch.zeros(2, 2, 4)
    logits[:, 1] = (y * 2 - 1).float()  # right everywhere
    logits[1, 1, 3] = 5.0  # one wrong position in string 2
    assert task.correct(logits, y, torch.zeros(2, 1, 1, 4)).tolist() == [True, False]
    total, denom = task.loss_terms(logits, y, torch.zeros(2, 1, 1, 4))
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert float(denom) == 8.0 and torch.isclose(total, per.sum())
    assert task.mask(torch.zeros(2, 1, 1, 4)) is None and task.chance(2) == 0.0


def test_parity_is_a_registered_data_set_of_the_whole_strings_parity():
    spec = get_dataset("parity")
    x, y = spec.load_tensors("unused", "test", size=48, limit=300)
    assert tuple(x.shape) == (300, 1, 1, 48) and str(x.dtype) == "torch.uint8"
    assert tuple(y.shape) == (300,) and str(y.dtype) == "torch.int64"
    bits = x.numpy()[:, 0, 0]
    # Independent of the generator: count the ones of each string.
    np.testing.assert_array_equal(y.numpy(), [sum(int(b) for b in row) % 2 for row in bits])
    assert 100 < int(y.sum()) < 200  # both labels occur (300 fair coins: 6 sigma is +-52)
    # The same strings as the prefix-sum data set: parity is their last prefix sum.
    px, py = get_dataset("prefix_sums").load_tensors("unused", "test", size=48, limit=300)
    assert (px == x).all() and (py[:, -1] == y).all()
    again = spec.load_tensors("elsewhere", "test", size=48, limit=300)
    assert x.numpy().tobytes() == again[0].numpy().tobytes()
    assert y.numpy().tobytes() == again[1].numpy().tobytes()
    files = spec.data_files("unused", (8,))
    assert sorted(files) == ["parity/test-8", "parity/train-8"]
    assert files["parity/test-8"] != get_dataset("prefix_sums").data_files("unused", (8,))[
        "prefix_sums/test-8"]  # the labels differ, so does the fingerprint
    assert spec.image_side(48) == 48


@pytest.mark.parametrize("length", [1, 2, 7, 1000, strings.MAX_LENGTH])
def test_parity_any_length_byte_identical_for_a_seed(length):
    a = strings.generate("parity", 20, length, seed=5)
    b = strings.generate("parity", 20, length, seed=5)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].shape == (20, length) and a[1].shape == (20,)
    np.testing.assert_array_equal(a[1], a[0].astype(np.int64).sum(axis=1) % 2)


def test_the_parity_task_scores_one_label_per_string_with_chance_half():
    import torch

    task = task_of("parity")
    assert task.name == "per_string" and not task.per_pixel and task.sized
    assert task.chance(2) == 50.0 and not task.augmented
    raw = torch.tensor([[[[0, 1, 1]]], [[[1, 1, 1]]]], dtype=torch.uint8)
    assert task.scale_inputs(raw).tolist() == raw.float().tolist()  # bits stay 0.0 and 1.0
    y = torch.tensor([0, 1])
    logits = torch.tensor([[2.0, -1.0], [3.0, 0.0]])  # right, wrong
    assert task.correct(logits, y, raw).tolist() == [True, False]
    total, denom = task.loss_terms(logits, y, raw)
    expected = -(torch.log_softmax(logits, 1)[0, 0] + torch.log_softmax(logits, 1)[1, 1])
    assert float(denom) == 2.0 and torch.isclose(total, expected)
    assert task.size_text(64) == "64-bit strings"
