"""The GPU device check: one script, no network, <= 8 minutes on one H100/H200.

    python benchmarks/gpu_check.py --out gpu_check_out      # on a GPU machine
    python benchmarks/gpu_check.py --smoke --out /tmp/gc    # CPU smoke mode (the test suite's)

Parts, in order, each timed (a part that would start after ``--budget-s`` is skipped and says so):

1. the bench table, short (``bench_gpu.py``'s bare training step of the Figure 5 maze model in
   true fp32, TF32 and bf16 + channels_last + compile, 10 timed steps);
2. two epochs of the Figure 5 depth-20 maze model (width 128, batch 50, 32-px canvas) per
   precision through the real engine (``train_run``), steady second epoch, on 10,000 generated
   9x9 mazes (the paper's 50,000 cost the same per image; fewer keep the check short);
3. the packed main job: ``reproduce_gpu`` with one trial and 5 epochs per run (8 runs, all at
   once, runs packed per GPU by the local executor's default), its placement, measured wall time
   and aggregate images/s, and from them the full job's time: 8 waves like it (64 runs), each
   with the longest run's seconds scaled to the full epochs (an extrapolation, and says so).

One summary table goes to ``<out>/gpu_check.md`` (and ``gpu_check.json``) and is printed. Smoke
mode (the default without CUDA) runs every part tiny on the CPU (widths / 16, a few hundred
mazes, one epoch): it checks that the script works, not the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gpu  # noqa: E402 - the benchmark next to this script

from recurdepth.io import atomic_write_json, atomic_write_text  # noqa: E402

MAIN_JOB = "reproduce_gpu"
CHECK_EPOCHS = 5  # per run of the packed main job (the full design trains 15-60)


def packed_main_job(out: Path, *, smoke: bool) -> dict:
    """Run the main job's design with one trial and few epochs, packed on the GPU; its figures."""
    from recurdepth.experiments.executors import LocalExecutor
    from recurdepth.experiments.spec import load_experiment
    from recurdepth.experiments.store import ResultStore
    from recurdepth.experiments.sweep import run_sweep

    full = load_experiment(MAIN_JOB)
    overrides = [f"train.epochs={1 if smoke else CHECK_EPOCHS}"]
    if smoke:
        overrides += ["runtime.device=cpu", "runtime.threads=1", "model.width=4",
                      "data.train_limit=60", "data.test_limit=20", "model.effective_depth=8"]
    experiment = full.with_overrides(overrides, trials=1).with_data_root((out / "data").resolve())
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the engine part's cached blocks: the workers need the memory
    executor = LocalExecutor(None if torch.cuda.is_available() else 1, progress=False)
    start = time.perf_counter()
    summary = run_sweep(experiment, out / "main_job", executor=executor, progress=False)
    wall = time.perf_counter() - start
    with ResultStore.open_existing(summary.db_path) as store:
        results = [r.result or {} for r in store.records()]
    # The longest run's own seconds (training and its per-epoch evaluation) scale with epochs;
    # the rest of the wall time (start-up, compilation, data) does not.
    run_s = min(max((float(r.get("seconds") or 0) for r in results), default=0.0), wall)
    images = sum(float(r.get("images_per_s") or 0) * float(r.get("train_seconds") or 0)
                 for r in results)
    # The full job: 64 runs = (full runs / check runs) waves like this one, each training
    # (full epochs / check epochs) times longer; start-up per wave as measured here.
    waves = len(full.runs()) / max(len(results), 1)
    epochs_ratio = max(r.config.train.epochs for r in full.runs()) / (1 if smoke else CHECK_EPOCHS)
    estimate = waves * ((wall - run_s) + epochs_ratio * run_s)
    return {"runs": len(results), "failed": len(summary.failures), "wall_s": wall,
            "images_per_s": images / max(wall, 1e-9), "placement": summary.placement or
            f"{executor.max_parallel} run(s) at once (no GPU)", "full_estimate_s": estimate,
            "full_runs": len(full.runs())}


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 when every part ran and no run failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu_check_out"),
                   help="output folder: gpu_check.md, gpu_check.json, data and runs")
    p.add_argument("--smoke", action="store_true", help="CPU smoke mode (default without CUDA)")
    p.add_argument("--budget-s", type=float, default=330.0,
                   help="start no part after this many seconds (default 330: the 8 minutes "
                        "with room for the last part, the packed main job, ~2-3 minutes)")
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    smoke = args.smoke or device.type != "cuda"
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    mode = " (smoke mode: tiny sizes, the numbers mean nothing)" if smoke else ""
    notes = [f"device: {name}{mode}; torch {torch.__version__}"]
    rows: list[dict] = []
    ok = True

    job: dict | None = None

    def write(final: bool = False) -> str:
        """The summary so far, written after every part (a check cut short keeps its rows)."""
        elapsed = time.perf_counter() - start
        status = f"gpu_check total: {elapsed:.0f} s" if final else (
            f"gpu_check still running at {elapsed:.0f} s (a part did not finish)")
        table = bench_gpu.format_table(rows)
        text = "\n".join(["# gpu_check", "", *[f"- {n}" for n in [*notes, status]], "", "```",
                          table, "```", ""])
        atomic_write_text(out / "gpu_check.md", text)
        atomic_write_json(out / "gpu_check.json", {"device": name, "smoke": smoke, "rows": rows,
                                                   "main_job": job, "notes": notes,
                                                   "seconds": elapsed, "finished": final})
        return text

    def part(title: str) -> bool:
        write()
        elapsed = time.perf_counter() - start
        if elapsed > args.budget_s:
            notes.append(f"{title}: skipped, {elapsed:.0f} s elapsed > --budget-s "
                         f"{args.budget_s:.0f}")
            return False
        print(f"[{elapsed:5.0f} s] {title}", flush=True)
        return True

    if part("bench table (bare training step)"):
        # The maze model only: the residual net's compilation would cost a minute of the budget.
        rows += bench_gpu.bench_rows(device, smoke=smoke, n=4 if smoke else 128,
                                     steps=1 if smoke else 10, cases=bench_gpu.CASES[:1])
    if part("Figure 5 depth-20 model through the engine, per precision"):
        root = bench_gpu.ensure_mazes(out / "data", 60 if smoke else 10_000,
                                      20 if smoke else 2000)
        rows += bench_gpu.engine_rows(device, root, out / "engine", smoke=smoke,
                                      precisions=("fp32",) if smoke else bench_gpu.PRECISIONS,
                                      epochs=1 if smoke else 2,
                                      train_limit=60 if smoke else 10_000)
    if part("packed main job (reproduce_gpu, 1 trial, short epochs)"):
        job = packed_main_job(out, smoke=smoke)
        ok = ok and job["failed"] == 0
        rows.append({"model": f"main job ({job['runs']} runs)", "setting": job["placement"][:58],
                     "images_per_s": job["images_per_s"], "tflops": 0.0, "mfu": None,
                     "seconds": job["wall_s"]})
        notes.append(f"main job placement: {job['placement']}")
        notes.append(f"full {MAIN_JOB} ({job['full_runs']} runs), extrapolated from this check "
                     f"(not measured): {job['full_estimate_s'] / 60:.1f} min")
    print(write(final=True))
    return 0 if ok and len(rows) > 0 else 1

if __name__ == "__main__":
    raise SystemExit(main())
