"""Training throughput: the authors' pipeline versus ours, same model, same data, same run.

Authors' style: a torchvision-style Dataset of HWC uint8 images, per-image PIL transforms
(RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) in a DataLoader, and a plain
fp32 eager loop. Ours: the whole uint8 data set in one tensor on the device, cropped, flipped and
normalised batch-wise by ``TensorBatches``, trained by ``recurdepth.training.loop.train_epoch``
(fp32 as well; "ours+CL" adds the channels-last memory format, ``runtime.channels_last=true``).
Data: CIFAR-shaped synthetic uint8 images. Prints images/s of both and the ratio, for the data
pipeline alone and for training a small ConvNet and a small residual network.

    python benchmarks/bench_training.py [--images 2048] [--device cpu] [--threads 1]

On a CPU shared with other jobs, ``--threads 1`` avoids OpenMP threads spinning on busy cores
(which slows batched tensor ops far more than single-threaded per-image PIL work).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from recurdepth.data.augment import AugmentConfig, TensorBatches
from recurdepth.data.tasks import get_task
from recurdepth.models import build_model
from recurdepth.training.loop import train_epoch

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class HWCImages(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 does per item: a PIL image from an HWC array, then transforms."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def authors_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, workers: int):
    """The authors' CIFAR-10 training pipeline (per-image transforms in a DataLoader)."""
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    ds = HWCImages(images.transpose(0, 2, 3, 1).copy(), labels, tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)


def ours_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, device: str):
    """Our pipeline: uint8 tensor on the device, batch-wise crop + flip + normalise."""
    return TensorBatches(torch.from_numpy(images), torch.from_numpy(labels), batch_size=batch_size,
                         shuffle=True, augment=AugmentConfig(crop_padding=4, hflip=True),
                         mean=MEAN, std=STD, device=device, seed=0)


def authors_train(model, loader, optimizer, device: str) -> int:
    """The authors' loop: fp32 eager, loss.item() and accuracy every step."""
    model.train()
    seen, correct, total_loss = 0, 0, 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        correct += out.argmax(1).eq(y).sum().item()
        seen += len(y)
    return seen


def rates(fns, repeats: int) -> list[float]:
    """Best images/s of each ``fn`` (returning the images it processed), calls interleaved so
    that a change in machine load hits every contender alike."""
    best = [0.0] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            n = fn()
            best[i] = max(best[i], n / (time.perf_counter() - t))
    return best


def drain(batches) -> int:
    """Iterate a pipeline without a model; return the images it produced."""
    n = 0
    for x, _ in batches:
        n += len(x)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="synthetic training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (authors' side)")
    parser.add_argument("--repeats", type=int, default=2, help="epochs per contender (best kept)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.images).astype(np.int64)
    loader = authors_loader(images, labels, args.batch_size, args.workers)
    batches = ours_batches(images, labels, args.batch_size, args.device)
    print(f"{args.images} CIFAR-shaped images, batch {args.batch_size}, device {args.device}, "
          f"{torch.get_num_threads()} threads, DataLoader workers {args.workers}")
    print(f"{'what':<40} {'authors img/s':>13} {'ours img/s':>10} {'ratio':>6} "
          f"{'ours+CL img/s':>13} {'ratio':>6}")

    a, o = rates([lambda: drain(loader), lambda: drain(batches)], args.repeats)
    print(f"{'data pipeline alone':<40} {a:>13.0f} {o:>10.0f} {o / a:>5.2f}x {'-':>13} {'-':>6}")

    # Small models, where the data pipeline is a real share of the step (the paper's CIFAR
    # ConvNet is w 64; its residual nets c 512).
    models = {
        "small ConvNet (w 16, 1 iter, depth 5)": dict(family="convnet", iters=1, width=16),
        "small residual net (c 16, 1 iter, depth 7)": dict(family="residual", iters=1, width=16),
    }
    for label, spec in models.items():
        fns = []
        for variant in ("authors", "ours", "ours+CL"):
            torch.manual_seed(0)
            model = build_model(spec["family"], "recurrent", iters=spec["iters"],
                                width=spec["width"], dataset="cifar10").to(args.device)
            channels_last = variant == "ours+CL"
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
            if variant == "authors":
                fns.append(lambda m=model, o=opt: authors_train(m, loader, o, args.device))
            else:
                fns.append(lambda m=model, o=opt, cl=channels_last: train_epoch(
                    m, batches, o, task=get_task("classification"), channels_last=cl,
                    progress=False).samples)
        a, o, ocl = rates(fns, args.repeats)
        print(f"{'training: ' + label:<40} {a:>13.0f} {o:>10.0f} {o / a:>5.2f}x {ocl:>13.0f} "
              f"{ocl / a:>5.2f}x")


if __name__ == "__main__":
    main()
