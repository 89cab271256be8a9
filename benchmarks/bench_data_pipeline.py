"""Data pipeline alone: the authors' per-image DataLoader versus batched on-device TensorBatches.

The authors' CIFAR-10 pipeline: torchvision's CIFAR10 data set (a PIL image per sample) with
RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize in DataLoader workers, batch 128.
Ours: the uint8 data set as one tensor on the device, cropped, flipped and normalised per batch
(recurdepth.data.augment.TensorBatches). Both run over the same CIFAR-shaped uint8 data in one
process; each figure is the median over ``--repeats`` full epochs, and every batch is moved to the
device as a training loop would.

    python benchmarks/bench_data_pipeline.py [--samples 10000] [--batch-size 128] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from recurdepth.data.augment import TensorBatches, default_augment
from recurdepth.data.vision import NORMALIZATION


class PerImageCIFAR(torch.utils.data.Dataset):
    """What torchvision's CIFAR10.__getitem__ does: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images_hwc: np.ndarray, labels: list[int], transform: Callable) -> None:
        self.data, self.targets, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


def authors_loader(
    images_hwc: np.ndarray, labels: list[int], batch_size: int, workers: int
) -> torch.utils.data.DataLoader:
    """The authors' training loader: per-image transforms in ``workers`` worker processes."""
    mean, std = NORMALIZATION["cifar10"]
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    dataset = PerImageCIFAR(images_hwc, labels, transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def images_per_second(
    batches: Iterable, device: torch.device, epoch_setter: Callable[[int], None] | None, repeats: int
) -> float:
    """Median images/s over ``repeats`` full epochs (after one warm-up epoch), batches moved to ``device``."""
    rates = []
    for epoch in range(repeats + 1):
        if epoch_setter is not None:
            epoch_setter(epoch)
        start = time.perf_counter()
        seen = 0
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            seen += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if epoch > 0:  # the first epoch is warm-up
            rates.append(seen / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table of images/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10000, help="CIFAR-shaped images in the data set")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per pipeline (median)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images_hwc = rng.integers(0, 256, size=(args.samples, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.samples).tolist()

    results: list[tuple[str, float]] = []
    for workers in args.workers:
        loader = authors_loader(images_hwc, labels, args.batch_size, workers)
        rate = images_per_second(loader, device, None, args.repeats)
        results.append((f"authors: DataLoader per-image transforms, workers={workers}", rate))

    mean, std = NORMALIZATION["cifar10"]
    ours = TensorBatches(
        torch.from_numpy(images_hwc).permute(0, 3, 1, 2).contiguous(),
        torch.tensor(labels),
        batch_size=args.batch_size,
        shuffle=True,
        augment=default_augment("cifar10"),
        mean=mean,
        std=std,
        device=device,
        seed=0,
    )
    default_threads = torch.get_num_threads()
    ours_rates = []
    # On a shared CPU, intra-op threads of small batched ops can wait on each other; show both.
    for threads in dict.fromkeys([default_threads, 1]):
        torch.set_num_threads(threads)
        rate = images_per_second(ours, device, ours.set_epoch, args.repeats)
        ours_rates.append(rate)
        results.append((f"ours: TensorBatches (batched crop+flip+normalise), torch threads={threads}", rate))
    torch.set_num_threads(default_threads)
    ours_rate = ours_rates[0]

    print(
        f"data pipeline, CIFAR-shaped uint8 data: {args.samples} images, batch {args.batch_size}, "
        f"device {device}, median of {args.repeats} epochs"
    )
    width = max(len(name) for name, _ in results)
    print(f"{'pipeline'.ljust(width)}  {'images/s':>10}  {'ours (default threads) / this':>29}")
    for name, rate in results:
        print(f"{name.ljust(width)}  {rate:10.0f}  {ours_rate / rate:28.2f}x")
    best_authors = max(rate for name, rate in results if name.startswith("authors"))
    print(
        f"speed-up over the fastest per-image DataLoader: {ours_rate / best_authors:.2f}x with default "
        f"threads, {max(ours_rates) / best_authors:.2f}x best (target >= 3x)"
    )

if __name__ == "__main__":
    main()
