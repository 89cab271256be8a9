"""GPU throughput and model FLOP utilisation of the paper's large models, fp32 against bf16.

For the width-128, effective-depth-20 maze solver (Figure 5, 9x9 mazes) and the width-512,
depth-19 residual network (CIFAR-10 inputs), in fp32 eager and in bf16 + channels_last +
torch.compile: training images/s and model FLOP utilisation (MFU) = achieved FLOP/s / the
device's peak. FLOPs are counted from the model by ``torch.utils.flop_counter.FlopCounterMode``
over one forward + backward step; the peak comes from ``PEAK_TFLOPS`` by device name (dense, no
sparsity). Then a bf16-vs-fp32 agreement check: the same short training run (same init, same
batches) in both precisions; the final losses must agree within ``--tolerance`` (relative).

    python benchmarks/bench_gpu.py                 # on a GPU: the paper's sizes
    python benchmarks/bench_gpu.py --smoke         # CPU smoke mode: tiny widths, few steps

Smoke mode (the default without CUDA) checks that the benchmark runs, not the numbers: widths
are divided by 16, compile is skipped, and MFU is not reported (no peak for a CPU).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recurdepth.data.mazes.generate import image_side
from recurdepth.models import build_model
from recurdepth.training.evaluate import autocast

# Dense peak TFLOP/s by (device-name substring, precision). Vendor datasheets, SXM parts.
PEAK_TFLOPS = {
    ("H200", "bf16"): 989.0, ("H200", "fp32"): 67.0,
    ("H100", "bf16"): 989.0, ("H100", "fp32"): 67.0,
    ("A100", "bf16"): 312.0, ("A100", "fp32"): 19.5,
    ("L40S", "bf16"): 362.0, ("L40S", "fp32"): 91.6,
}


@dataclass(frozen=True)
class Case:
    """One model of the benchmark."""

    label: str
    family: str
    effective_depth: int
    width: int
    dataset: str
    shape: tuple[int, int, int]
    classes: int  # maze: 2 per pixel


CASES = (
    Case("maze w128 d20 (9x9)", "maze", 20, 128, "mazes", (3, image_side(9), image_side(9)), 2),
    Case("residual w512 d19", "residual", 19, 512, "cifar10", (3, 32, 32), 10),
)


def peak_flops(device: torch.device, precision: str) -> float | None:
    """The device's dense peak FLOP/s for ``precision``, or None when not in the table."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for (key, prec), tflops in PEAK_TFLOPS.items():
        if key in name and prec == precision:
            return tflops * 1e12
    return None


def make(case: Case, width: int, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """The case's model at ``width``, initialised from seed 0."""
    torch.manual_seed(0)
    model = build_model(case.family, "recurrent", effective_depth=case.effective_depth,
                        width=width, dataset=case.dataset).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def batch(case: Case, n: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic batch with the case's input shape and targets."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *case.shape), generator=g)
    if case.dataset == "mazes":
        y = torch.randint(0, 2, (n, *case.shape[1:]), generator=g)
    else:
        y = torch.randint(0, case.classes, (n,), generator=g)
    return x.to(device), y.to(device)


def step_fn(model, opt, precision: str, device: torch.device):
    """One SGD step at ``precision``; returns the loss tensor."""
    def step(x, y):
        with autocast(device, "bf16" if precision == "bf16" else "off"):
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def count_flops(case: Case, width: int, n: int, device: torch.device) -> int:
    """FLOPs of one forward + backward step on ``n`` images (counted from the model)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make(case, width, device, channels_last=False)
    x, y = batch(case, n, device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).float(), y).backward()
    return int(counter.get_total_flops())


def throughput(case: Case, width: int, n: int, precision: str, compile_: bool, steps: int,
               device: torch.device) -> float:
    """Training images/s (after warm-up) of the case at ``precision``."""
    model = make(case, width, device, channels_last=precision == "bf16")
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    step = step_fn(model, opt, precision, device)
    if compile_:
        step = torch.compile(step)
    x, y = batch(case, n, device)
    if precision == "bf16":
        x = x.contiguous(memory_format=torch.channels_last)
    for _ in range(3):  # warm-up (and compilation)
        step(x, y)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync()
    return steps * n / (time.perf_counter() - start)


def agreement(case: Case, width: int, n: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Final training loss of the same short run in fp32 and in bf16."""
    losses = []
    for precision in ("fp32", "bf16"):
        model = make(case, width, device, channels_last=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        step = step_fn(model, opt, precision, device)
        for i in range(steps):
            loss = step(*batch(case, n, device, seed=i % 4))
        losses.append(float(loss.detach()))
    return losses[0], losses[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU smoke mode (default without CUDA)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="largest relative bf16-vs-fp32 difference of the final loss (default 2%%)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    smoke = args.smoke or device.type != "cuda"
    n = args.batch_size or (4 if smoke else 128)
    steps = args.steps or (2 if smoke else 30)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}{' (smoke mode: widths / 16, no compile, no MFU)' if smoke else ''}; "
          f"batch {n}, {steps} timed steps")
    header = f"{'model':24} {'precision':28} {'images/s':>10} {'TFLOP/s':>9} {'MFU':>7}"
    print(header + "\n" + "-" * len(header))
    for case in CASES:
        width = max(case.width // 16, 4) if smoke else case.width
        flops = count_flops(case, width, n, device)
        for precision, compile_ in (("fp32", False), ("bf16", not smoke)):
            ips = throughput(case, width, n, precision, compile_, steps, device)
            achieved = flops / n * ips
            peak = peak_flops(device, precision)
            mfu = f"{100 * achieved / peak:6.1f}%" if peak else "    n/a"
            label = "fp32 eager" if precision == "fp32" else (
                "bf16+channels_last" + ("+compile" if compile_ else ""))
            print(f"{case.label if width == case.width else case.label + f' (w{width})':24} "
                  f"{label:28} {ips:10.1f} {achieved / 1e12:9.3f} {mfu:>7}")
    print()
    for case in CASES:
        width = max(case.width // 16, 4) if smoke else case.width
        f32, b16 = agreement(case, width, n, 4 if smoke else 50, device)
        rel = abs(b16 - f32) / max(abs(f32), 1e-12)
        verdict = "agree" if rel <= args.tolerance else "DISAGREE"
        print(f"bf16 vs fp32, {case.label}: final loss {f32:.5f} (fp32) {b16:.5f} (bf16), "
              f"relative difference {100 * rel:.2f}% (tolerance {100 * args.tolerance:.0f}%): "
              f"{verdict}")


if __name__ == "__main__":
    main()
