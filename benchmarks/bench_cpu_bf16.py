"""CPU training throughput of a maze solver: fp32 versus bf16 autocast and channels-last.

The configurations take turns in one process (a few steps each, repeated), so a load that comes
and goes on a shared machine hits them alike; the ratios against plain fp32 are what to read.
``runtime.amp=auto`` picks bf16 + channels-last on CPUs with native bf16 (``avx512_bf16`` or
``amx_bf16``); on other CPUs bf16 is emulated and usually slower than fp32, which this shows too.

    python benchmarks/bench_cpu_bf16.py [--width 32] [--depths 8 12 16] [--maze-size 7]
                                        [--batch 50] [--threads 1] [--rounds 6]
"""

from __future__ import annotations

import argparse
import time

import torch

from recurdepth.data.tasks import get_task
from recurdepth.models import build_model
from recurdepth.training.config import cpu_has_bf16
from recurdepth.training.evaluate import autocast, loss_and_correct, prepare_input

SETTINGS = (("fp32", "off", False), ("fp32+CL", "off", True), ("bf16", "bf16", False),
            ("bf16+CL", "bf16", True))


def make_step(mode: str, depth: int, width: int, side: int, batch: int, amp: str, cl: bool):
    """A closure that trains one maze-shaped batch (Adam, the maze loss) and returns nothing."""
    torch.manual_seed(0)
    model = build_model("maze", mode, iters=(depth - 4) // 4, width=width, dataset="mazes")
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, side, side, generator=g) > 0.4).float()
    y = (torch.rand(batch, side, side, generator=g) > 0.8).long()

    def step() -> None:
        xb = prepare_input(x, cl)
        with autocast(xb.device, amp):
            logits = model(xb)
        loss, _ = loss_and_correct(logits, y, xb, task=get_task("maze"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depths", type=int, nargs="+", default=[8, 12, 16])
    ap.add_argument("--maze-size", type=int, default=7)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=4, help="steps per turn")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    side = 2 * (args.maze_size + 2) + 2
    print(f"torch {torch.__version__}, {args.threads} thread(s), native bf16: {cpu_has_bf16()}; "
          f"width {args.width}, {args.maze_size}x{args.maze_size} mazes ({side} px), "
          f"batch {args.batch}")
    for depth in args.depths:
        for mode in ("recurrent", "feedforward"):
            steps = {name: make_step(mode, depth, args.width, side, args.batch, amp, cl)
                     for name, amp, cl in SETTINGS}
            for fn in steps.values():  # warm-up: kernels, allocator
                fn()
                fn()
            seconds = dict.fromkeys(steps, 0.0)
            for _ in range(args.rounds):
                for name, fn in steps.items():
                    t = time.perf_counter()
                    for _ in range(args.steps):
                        fn()
                    seconds[name] += time.perf_counter() - t
            images = args.rounds * args.steps * args.batch
            base = seconds["fp32"]
            row = "  ".join(f"{name} {images / s:5.0f} img/s ({base / s:4.2f}x)"
                            for name, s in seconds.items())
            print(f"depth {depth:2d} {mode:11s}: {row}")


if __name__ == "__main__":
    main()
