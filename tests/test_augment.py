"""Batched augmentation and TensorBatches: exact crops and flips, reproducible epochs, pairing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recurdepth.data.augment import (
    AugmentConfig,
    TensorBatches,
    crop_flip,
    default_augment,
    epoch_plan,
    normalize,
)
from recurdepth.errors import ConfigError


def _reference_crop(image: np.ndarray, pad: int, oy: int, ox: int, flip: bool) -> np.ndarray:
    """One image (C,H,W), independently: zero-pad with numpy, slice the window, mirror columns."""
    c, h, w = image.shape
    padded = np.zeros((c, h + 2 * pad, w + 2 * pad), dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image
    window = padded[:, oy : oy + h, ox : ox + w]
    return window[:, :, ::-1] if flip else window


def _dataset(n: int = 23, c: int = 3, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose first pixel encodes their index, so a batch reveals which samples it holds."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return images, torch.arange(n, dtype=torch.int64) * 7  # label = 7 * index


def test_crop_flip_matches_per_image_reference() -> None:
    images, _ = _dataset(n=16, size=6)
    pad = 3
    g = torch.Generator().manual_seed(1)
    oy = torch.randint(0, 2 * pad + 1, (16,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    # Make sure the extreme offsets and both flip states are covered.
    oy[:2], ox[:2], flip[:2] = torch.tensor([0, 2 * pad]), torch.tensor([2 * pad, 0]), torch.tensor([True, False])
    out = crop_flip(images, pad, oy, ox, flip)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for i in range(16):
        ref = _reference_crop(images[i].numpy(), pad, int(oy[i]), int(ox[i]), bool(flip[i]))
        np.testing.assert_array_equal(out[i].numpy(), ref)


def test_crop_at_centre_without_flip_is_identity_and_flip_mirrors() -> None:
    images, _ = _dataset(n=5)
    centre = torch.full((5,), 4)
    assert torch.equal(crop_flip(images, 4, centre, centre), images)
    zero, yes = torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.bool)
    flipped = crop_flip(images, 0, zero, zero, yes)
    assert torch.equal(flipped, images.flip(3))
    vflipped = crop_flip(images, 0, zero, zero, None, yes)
    assert torch.equal(vflipped, images.flip(2))


def test_crop_shifts_content_and_fills_zeros() -> None:
    image = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4)
    # offset (0, 0) with pad 2: the window starts 2 rows/cols above-left of the image.
    out = crop_flip(image, 2, torch.tensor([0]), torch.tensor([0]))
    expected = torch.zeros(4, 4, dtype=torch.uint8)
    expected[2:, 2:] = torch.tensor([[1, 2], [5, 6]])
    assert torch.equal(out[0, 0], expected)


def test_normalize_values() -> None:
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3).repeat(1, 2, 1, 1)
    out = normalize(images, (0.2, 0.5), (0.1, 0.25))
    np.testing.assert_allclose(out[0, 0, 0].numpy(), [(0 - 0.2) / 0.1, (0.2 - 0.2) / 0.1, (1 - 0.2) / 0.1], atol=1e-5)
    np.testing.assert_allclose(out[0, 1, 0].numpy(), [-2.0, (0.2 - 0.5) / 0.25, 2.0], atol=1e-5)
    np.testing.assert_allclose(normalize(images)[0, 0, 0].numpy(), [0.0, 0.2, 1.0], atol=1e-7)
    assert images.dtype == torch.uint8 and int(images[0, 0, 0, 2]) == 255  # input untouched


def test_default_augment_follows_spec() -> None:
    assert default_augment("cifar10") == AugmentConfig(crop_padding=4, hflip=True)
    assert default_augment("svhn") == AugmentConfig(hflip=True)
    # The authors' horizontal flip of the stored (transposed) EMNIST images is a top-bottom flip
    # of the upright letters this package loads.
    assert default_augment("emnist") == AugmentConfig(vflip=True)
    assert not default_augment("mazes").enabled
    with pytest.raises(ConfigError, match="cifar10"):
        default_augment("mnist")


def _epoch(batches: TensorBatches, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    batches.set_epoch(epoch)
    xs, ys = zip(*batches)
    return torch.cat(xs), torch.cat(ys)


def test_epoch_is_deterministic_and_epochs_differ() -> None:
    images, labels = _dataset()
    aug = AugmentConfig(crop_padding=2, hflip=True)
    a = TensorBatches(images, labels, batch_size=5, shuffle=True, augment=aug, seed=3)
    b = TensorBatches(images, labels, batch_size=5, shuffle=True, augment=aug, seed=3)
    x0, y0 = _epoch(a, 0)
    x1, y1 = _epoch(a, 1)
    bx1, by1 = _epoch(b, 1)  # a fresh object ("resumed run") straight at epoch 1
    assert torch.equal(x1, bx1) and torch.equal(y1, by1)
    again = _epoch(a, 0)
    assert torch.equal(again[0], x0) and torch.equal(again[1], y0)
    assert not torch.equal(y0, y1)  # different order
    other_seed = TensorBatches(images, labels, batch_size=5, shuffle=True, augment=aug, seed=4)
    assert not torch.equal(_epoch(other_seed, 0)[1], y0)


def test_every_sample_once_per_epoch_and_labels_stay_paired() -> None:
    images, labels = _dataset()
    pad = 2
    batches = TensorBatches(images, labels, batch_size=4, shuffle=True, augment=AugmentConfig(pad, True), seed=0)
    assert len(batches) == 6  # ceil(23 / 4)
    batches.set_epoch(5)
    plan = epoch_plan(23, AugmentConfig(pad, True), shuffle=True, seed=0, epoch=5)
    x, y = _epoch(batches, 5)
    assert sorted(y.tolist()) == sorted(labels.tolist())
    assert x.dtype == torch.float32 and x.shape == (23, 3, 8, 8)
    # Each output is exactly the reference crop/flip of the image its label belongs to.
    for pos in range(23):
        index = int(y[pos]) // 7
        assert int(plan.order[pos]) == index
        oy, ox, flip = int(plan.offset_y[pos]), int(plan.offset_x[pos]), bool(plan.hflip[pos])
        ref = _reference_crop(images[index].numpy(), pad, oy, ox, flip)
        np.testing.assert_allclose(x[pos].numpy(), ref.astype(np.float32) / 255.0, atol=1e-7)


def test_no_shuffle_no_augment_is_the_data_in_order() -> None:
    images, labels = _dataset()
    batches = TensorBatches(images, labels, batch_size=10, shuffle=False, augment=None, mean=(0.5,) * 3, std=(0.5,) * 3)
    x, y = _epoch(batches, 7)
    assert torch.equal(y, labels)
    np.testing.assert_allclose(x.numpy(), images.numpy() / 255.0 * 2.0 - 1.0, atol=1e-6)
    assert [len(b[1]) for b in batches] == [10, 10, 3]


def test_drop_last_and_maze_shaped_targets() -> None:
    inputs = torch.randint(0, 2, (11, 3, 6, 6), dtype=torch.uint8) * 255
    targets = torch.randint(0, 2, (11, 6, 6), dtype=torch.uint8)
    batches = TensorBatches(inputs, targets.numpy(), batch_size=4, shuffle=True, augment=None, drop_last=True)
    assert len(batches) == 2
    seen = [(x, y) for x, y in batches]
    assert [len(y) for _, y in seen] == [4, 4]
    for x, y in seen:
        assert y.dtype == torch.int64 and y.shape[1:] == (6, 6)
        # pairing: find each input in the source and check its target came along
        for xi, yi in zip(x, y):
            match = [i for i in range(11) if torch.equal((inputs[i].float() / 255), xi)]
            assert any(torch.equal(targets[i].long(), yi) for i in match)


def test_bad_inputs_are_refused() -> None:
    plain = dict(batch_size=2, shuffle=False, augment=None)
    with pytest.raises(TypeError, match="uint8"):
        TensorBatches(torch.zeros(4, 3, 8, 8), torch.zeros(4), **plain)
    with pytest.raises(ValueError, match="targets"):
        TensorBatches(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(3), **plain)
    with pytest.raises(ValueError, match="channels"):
        TensorBatches(
            torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4), mean=(0.1, 0.2), std=(1.0, 1.0), **plain
        )
    with pytest.raises(ValueError):
        AugmentConfig(crop_padding=-1)


def test_plan_draws_every_offset_and_fair_flips() -> None:
    plan = epoch_plan(4000, AugmentConfig(crop_padding=4, hflip=True), shuffle=True, seed=0, epoch=0)
    assert sorted(plan.order.tolist()) == list(range(4000))
    # RandomCrop(32, padding=4) places the window at 0..8 in each direction, uniformly.
    for offsets in (plan.offset_y, plan.offset_x):
        counts = torch.bincount(offsets, minlength=9)
        assert len(counts) == 9 and counts.min() > 4000 / 9 * 0.8
    assert 0.45 < plan.hflip.float().mean().item() < 0.55 and not plan.vflip.any()
    plain = epoch_plan(50, None, shuffle=False, seed=0, epoch=3)
    assert plain.order.tolist() == list(range(50))
    assert not plain.offset_y.any() and not plain.offset_x.any() and not plain.hflip.any()


def test_maze_shift_moves_maze_and_solution_together_from_seed_and_epoch() -> None:
    from recurdepth.data.augment import shift_in_canvas

    mazes = torch.randint(1, 256, (5, 3, 6, 6), dtype=torch.uint8)
    solutions = torch.randint(0, 2, (5, 6, 6))
    shift = 2
    batches = TensorBatches(mazes, solutions, batch_size=5, shuffle=True,
                            augment=AugmentConfig(shift=shift), seed=7)
    batches.set_epoch(3)
    (x, y), = list(batches)
    again = list(batches)[0]
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])  # a function of (seed, epoch)
    assert x.shape == (5, 3, 10, 10) and y.shape == (5, 10, 10)
    plan = batches.plan()
    for i, idx in enumerate(plan.order.tolist()):
        # Offset o in [0, 2·shift] puts the maze at row 2·shift - o of the canvas.
        top, left = 2 * shift - int(plan.offset_y[i]), 2 * shift - int(plan.offset_x[i])
        assert torch.equal((x[i, :, top:top + 6, left:left + 6] * 255).round().to(torch.uint8),
                           mazes[idx])
        assert torch.equal(y[i, top:top + 6, left:left + 6], solutions[idx])
        assert x[i].sum() * 255 == pytest.approx(float(mazes[idx].double().sum()), rel=1e-5)
    assert {int(o) for o in plan.offset_y} <= set(range(2 * shift + 1))
    with pytest.raises(ValueError, match="does not combine"):
        AugmentConfig(shift=2, hflip=True)
    out, tgt = shift_in_canvas(mazes[:1], solutions[:1], 1, torch.tensor([1]), torch.tensor([1]))
    assert torch.equal(out[0, :, 1:7, 1:7], mazes[0]) and torch.equal(tgt[0, 1:7, 1:7], solutions[0])


def test_strings_as_3d_uint8_tensors_batch_with_their_input_range():
    """(N,C,L) bit strings: scaled by the task's input range (1 for bits), never augmented."""
    import torch as _torch

    from recurdepth.data.augment import AugmentConfig, TensorBatches

    bits = _torch.randint(0, 2, (5, 1, 7), dtype=_torch.uint8)
    batches = TensorBatches(bits, _torch.zeros(5, 7), batch_size=2, shuffle=False, augment=None,
                            input_range=1.0)
    x = _torch.cat([b for b, _ in batches])
    assert x.shape == (5, 1, 7) and _torch.equal(x, bits.float())
    halves = TensorBatches(bits, _torch.zeros(5, 7), batch_size=5, shuffle=False, augment=None,
                           mean=(0.5,), std=(0.5,), input_range=1.0)
    assert _torch.equal(next(iter(halves))[0], bits.float() * 2 - 1)
    with pytest.raises(ValueError, match="need images"):
        TensorBatches(bits, _torch.zeros(5, 7), batch_size=2, shuffle=True,
                      augment=AugmentConfig(hflip=True))
