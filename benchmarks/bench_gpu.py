"""GPU throughput and model FLOP utilisation of the paper's large models: fp32, TF32 and bf16.

For the width-128, effective-depth-20 maze solver (Figure 5, 9x9 mazes) and the width-512,
depth-19 residual network (CIFAR-10 inputs), the bare training step (model, loss, SGD on one
synthetic batch) in true fp32 (TF32 off), in TF32 (torch's default for cuDNN convolutions on
Ampere and newer: what "fp32" means unless ``runtime.tf32`` is off) and in bf16 + channels_last +
torch.compile: training images/s and model FLOP utilisation (MFU) = achieved FLOP/s / the
device's dense peak *of that precision* (``PEAK_TFLOPS`` by device name). FLOPs are counted
from the model by ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward step.
Beside them, the engine's own throughput: the real ``train_run`` (``train_epoch`` on the real
data path: generated 9x9 mazes held on the GPU, shifted on a 32-px canvas, batch 50) of the
Figure 5 depth-20 model, steady epoch, per precision, so the engine's overhead over the bare
step is visible in one table. Then a bf16-vs-fp32 agreement check: the same short training run
(same init, same batches) in both precisions; the final losses must agree within
``--tolerance`` (relative).

    python benchmarks/bench_gpu.py                 # on a GPU: the paper's sizes
    python benchmarks/bench_gpu.py --smoke         # CPU smoke mode: tiny widths, few steps

Smoke mode (the default without CUDA) checks that the benchmark runs, not the numbers: widths
are divided by 16, compile is skipped, and MFU is not reported (no peak for a CPU).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from recurdepth.data.mazes.generate import image_side
from recurdepth.models import build_model
from recurdepth.training.config import RunConfig, apply_overrides, resolve
from recurdepth.training.evaluate import autocast
from recurdepth.training.run import set_tf32, train_run

# Dense peak TFLOP/s by (device-name substring, precision). Vendor datasheets, SXM parts; "fp32"
# is true fp32 on the CUDA cores, "tf32" the tensor cores' TF32 (dense, no sparsity).
PEAK_TFLOPS = {
    ("H200", "bf16"): 989.0, ("H200", "tf32"): 494.0, ("H200", "fp32"): 67.0,
    ("H100", "bf16"): 989.0, ("H100", "tf32"): 494.0, ("H100", "fp32"): 67.0,
    ("A100", "bf16"): 312.0, ("A100", "tf32"): 156.0, ("A100", "fp32"): 19.5,
    ("L40S", "bf16"): 362.0, ("L40S", "tf32"): 183.0, ("L40S", "fp32"): 91.6,
}
PRECISIONS = ("fp32", "tf32", "bf16")
PRECISION_LABELS = {"fp32": "fp32 eager (TF32 off)", "tf32": "tf32 eager",
                    "bf16": "bf16+channels_last+compile"}


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
    set_tf32(precision == "tf32")
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
    set_tf32(False)
    for precision in ("fp32", "bf16"):
        model = make(case, width, device, channels_last=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        step = step_fn(model, opt, precision, device)
        for i in range(steps):
            loss = step(*batch(case, n, device, seed=i % 4))
        losses.append(float(loss.detach()))
    return losses[0], losses[1]


def fig5_config(precision: str, data_root: str, *, smoke: bool, epochs: int = 2,
                train_limit: int | None = None) -> RunConfig:
    """The Figure 5 small-maze depth-20 run (fig5_mazes_small's protocol) at ``precision``;
    smoke: width 8, a few mazes, on the CPU."""
    over = {"model.family": "maze", "model.mode": "recurrent", "model.effective_depth": 20,
            "model.width": 8 if smoke else 128, "data.name": "mazes", "data.maze_size": 9,
            "data.maze_shift": 4, "data.root": data_root, "optim.name": "sgd",
            "optim.lr": 0.05, "optim.momentum": 0.9, "optim.weight_decay": 2e-4,
            "optim.warmup_epochs": 5, "train.batch_size": 50, "train.drop_last": True,
            "train.epochs": epochs, "train.eval_every": 0, "train.eval_train_limit": 0,
            "data.train_limit": train_limit, "data.test_limit": 100 if smoke else 1000,
            "runtime.progress": False, "runtime.amp": "bf16" if precision == "bf16" else "off",
            "runtime.tf32": precision == "tf32"}
    if smoke:
        over.update({"runtime.device": "cpu", "runtime.amp": "off", "runtime.threads": 1})
    return apply_overrides(RunConfig(), over)


def engine_throughput(cfg: RunConfig, run_dir: Path) -> dict[str, float]:
    """Train ``cfg`` with the real engine in ``run_dir``; images/s of its last (steady) epoch,
    and its seconds from start to the end of training (compilation included)."""
    start = time.perf_counter()
    train_run(cfg, run_dir, progress=False, quiet=True)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"images_per_s": float(lines[-1]["images_per_s"]),
            "seconds": time.perf_counter() - start}


def ensure_mazes(root: Path, n_train: int, n_test: int) -> Path:
    """9x9 mazes under ``root`` (generated once, seed 0)."""
    from recurdepth.data.mazes import generate_dataset, maze_dir

    generate_dataset(maze_dir(root, 9), size=9, n_train=n_train, n_test=n_test, progress=False)
    return root


def bench_rows(device: torch.device, *, smoke: bool, n: int, steps: int,
               cases: tuple[Case, ...] = CASES) -> list[dict]:
    """The bare-step rows: every case at every precision."""
    rows = []
    for case in cases:
        width = max(case.width // 16, 4) if smoke else case.width
        flops = count_flops(case, width, n, device)
        for precision in PRECISIONS:
            compile_ = precision == "bf16" and not smoke
            ips = throughput(case, width, n, precision, compile_, steps, device)
            label = PRECISION_LABELS[precision] if compile_ or precision != "bf16" else (
                "bf16+channels_last")
            rows.append(_row(case.label if width == case.width else f"{case.label} (w{width})",
                             f"bare step, batch {n}, {label}", ips, flops / n, device,
                             precision))
    return rows


def engine_rows(device: torch.device, data_root: Path, work: Path, *, smoke: bool,
                precisions: tuple[str, ...] = PRECISIONS, epochs: int = 2,
                train_limit: int | None = None) -> list[dict]:
    """The engine rows: the Figure 5 depth-20 run through ``train_run`` at each precision."""
    rows = []
    for precision in precisions:
        cfg = fig5_config(precision, str(data_root), smoke=smoke, epochs=epochs,
                          train_limit=train_limit)
        resolved = resolve(cfg)
        case = Case("maze", "maze", 20, resolved.model.width, "mazes", (3, 32, 32), 2)
        flops = count_flops(case, case.width, 2, device) / 2
        got = engine_throughput(cfg, work / f"engine-{precision}")
        ran = ("bf16+CL" if resolved.runtime.amp == "bf16" else "tf32" if resolved.runtime.tf32
               and device.type == "cuda" else "fp32")
        how = ran + (
            f"+compile {resolved.runtime.compile_mode}" if resolved.runtime.compile else "")
        rows.append(_row(f"maze w{case.width} d20 (Fig. 5)",
                         f"engine train_run, batch 50, {how}", got["images_per_s"], flops,
                         device, precision, seconds=got["seconds"]))
    set_tf32(False)
    return rows


def _row(model: str, setting: str, ips: float, flops_per_image: float, device: torch.device,
         precision: str, seconds: float | None = None) -> dict:
    achieved = flops_per_image * ips
    peak = peak_flops(device, precision)
    return {"model": model, "setting": setting, "images_per_s": ips, "tflops": achieved / 1e12,
            "mfu": 100 * achieved / peak if peak else None, "seconds": seconds}


def format_table(rows: list[dict]) -> str:
    """The rows as one aligned text table (MFU against the peak of each row's precision)."""
    header = f"{'model':26} {'setting':58} {'images/s':>10} {'TFLOP/s':>8} {'MFU':>6} {'s':>6}"
    lines = [header, "-" * len(header)]
    for r in rows:
        mfu = f"{r['mfu']:5.1f}%" if r["mfu"] is not None else "   n/a"
        sec = f"{r['seconds']:6.0f}" if r.get("seconds") is not None else "     -"
        lines.append(f"{r['model']:26} {r['setting']:58} {r['images_per_s']:10.1f} "
                     f"{r['tflops']:8.2f} {mfu:>6} {sec}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU smoke mode (default without CUDA)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    p.add_argument("--no-engine", action="store_true", help="skip the engine rows (train_run)")
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
    rows = bench_rows(device, smoke=smoke, n=n, steps=steps)
    if not args.no_engine:
        with tempfile.TemporaryDirectory() as tmp:
            root = ensure_mazes(Path(tmp) / "data", 300 if smoke else 20_000,
                                100 if smoke else 1000)
            rows += engine_rows(device, root, Path(tmp), smoke=smoke)
    print(format_table(rows))
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
