"""Linear CKA speed and peak memory: ours against a plain float64 Gram implementation, same run.

Three cases, each timed in a fresh subprocess so its peak resident memory (``ru_maxrss``) is its
own; "extra" is the peak above the process's memory once the features exist.

* exact: one pair of float32 features, n examples × d features (default 10,000 × 4,096); both
  the biased and the debiased value.
* minibatch: the same features in batches of 250 (Nguyen et al. 2021), both estimators.
* matrix: every layer against every layer of two maze solvers of effective depth 20 (features of
  128 channels × 24 × 24 pixels, mazes of size 9), 6 layers each, n = 5,000 in batches of 250.
  Exact CKA would hold 17.7 GB of features here, so the matrix is the debiased minibatch
  estimator (what ``recurdepth analyze cka`` picks); the feature extraction itself is not timed.

The baseline computes float64 centred Gram matrices per estimator (U-centred for the debiased
one) and their inner products. On the matrix case it runs on the first ``--baseline-batches``
batches only (per-batch ratio).

    python benchmarks/bench_cka.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _baseline_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    from recurdepth.analysis.cka import centered_gram

    out = []
    for debiased in (False, True):
        k, l_ = centered_gram(x, debiased=debiased), centered_gram(y, debiased=debiased)
        out.append(float((k * l_).sum() / torch.sqrt((k * k).sum() * (l_ * l_).sum())))
        del k, l_
    return out[0], out[1]


def _features(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.relu(x + 0.8 * torch.randn(n, d, generator=g)) + 5.0  # correlated, offset
    return x, y


def case(name: str, impl: str, n: int, d: int, batch: int, layers: int, baseline_batches: int,
         ) -> dict:
    """Run one case in this process; return its time and memory."""
    from recurdepth.analysis.cka import MinibatchCKA, exact_cka_matrices

    torch.manual_seed(0)
    if name in ("exact", "minibatch"):
        x, y = _features(n, d, 0)
        base = _rss_mb()
        start = time.perf_counter()
        if name == "exact":
            values = (_baseline_pair(x, y) if impl == "baseline" else
                      tuple(float(m[0, 0]) for m in exact_cka_matrices([x], [y], inplace=True)))
        else:
            if impl == "baseline":
                sums = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
                from recurdepth.analysis.cka import centered_gram
                for i in range(0, n, batch):
                    for e, debiased in enumerate((False, True)):
                        k = centered_gram(x[i:i + batch], debiased=debiased)
                        l_ = centered_gram(y[i:i + batch], debiased=debiased)
                        sums[e][0] += float((k * l_).sum())
                        sums[e][1] += float((k * k).sum())
                        sums[e][2] += float((l_ * l_).sum())
                values = tuple(s[0] / (s[1] * s[2]) ** 0.5 for s in sums)
            else:
                acc = MinibatchCKA(1, 1)
                for i in range(0, n, batch):
                    acc.update([x[i:i + batch]], [y[i:i + batch]])
                values = (float(acc.compute(debiased=False)[0, 0]),
                          float(acc.compute(debiased=True)[0, 0]))
        seconds = time.perf_counter() - start
        batches = n // batch if name == "minibatch" else 1
    else:  # matrix: a pool of layer batches, rolled per batch so every batch differs
        g = torch.Generator().manual_seed(1)
        pool = [torch.relu(torch.randn(batch, d, generator=g)) for _ in range(2 * layers)]
        base = _rss_mb()
        batches = n // batch if impl == "ours" else baseline_batches
        acc = MinibatchCKA(layers, layers)
        seconds = 0.0
        from recurdepth.analysis.cka import centered_gram
        for b in range(batches):
            feats = [torch.roll(f, b, 0) for f in pool]
            start = time.perf_counter()
            if impl == "ours":
                acc.update(feats[:layers], feats[layers:], inplace=True)
            else:
                for debiased in (False, True):
                    ga = torch.stack([centered_gram(f, debiased=debiased).flatten()
                                      for f in feats[:layers]])
                    gb = torch.stack([centered_gram(f, debiased=debiased).flatten()
                                      for f in feats[layers:]])
                    _ = (ga @ gb.T, (ga * ga).sum(1), (gb * gb).sum(1))
                    del ga, gb
            seconds += time.perf_counter() - start
            del feats
        values = ()
    return {"case": name, "impl": impl, "seconds": seconds, "batches": batches,
            "peak_mb": _rss_mb(), "extra_mb": _rss_mb() - base, "values": values}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="n = 2,000, d = 1,024; matrix n = 1,000")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--baseline-batches", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    n, d, mn = (2000, 1024, 1000) if args.quick else (10_000, 4096, 5000)
    if args.child:
        name, impl = args.child.split(":")
        shape = (mn, 128 * 24 * 24, 250, 6) if name == "matrix" else (n, d, 250, 1)
        print(json.dumps(case(name, impl, *shape, args.baseline_batches)))
        return
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for name in ("exact", "minibatch", "matrix"):
        for impl in ("ours", "baseline"):
            if impl == "baseline" and args.skip_baseline:
                continue
            cmd = [sys.executable, __file__, "--child", f"{name}:{impl}",
                   "--baseline-batches", str(args.baseline_batches)] + (
                       ["--quick"] if args.quick else [])
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1])
            rows.append(res)
            print(json.dumps(res), flush=True)
    print(f"\n{'case':<10} {'impl':<9} {'batches':>7} {'seconds':>8} {'s/batch':>8} "
          f"{'peak MB':>8} {'extra MB':>9}  values (biased, debiased)")
    for r in rows:
        print(f"{r['case']:<10} {r['impl']:<9} {r['batches']:>7} {r['seconds']:8.2f} "
              f"{r['seconds'] / r['batches']:8.3f} {r['peak_mb']:8.0f} {r['extra_mb']:9.0f}  "
              + ", ".join(f"{v:.6f}" for v in r["values"]))
    for name in ("exact", "minibatch", "matrix"):
        got = {r["impl"]: r["seconds"] / r["batches"] for r in rows if r["case"] == name}
        if len(got) == 2:
            print(f"{name}: ours is {got['baseline'] / got['ours']:.1f}x the float64 Gram baseline")
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
