"""Quickstart with the Python API: tiny mazes, two solvers, a report, evaluation and CKA.

A recurrent and a feed-forward maze solver of effective depth 12 (two iterations: at depth 8
both would be the same network), the report, an evaluation with more iterations and a CKA
comparison of the two runs' layers.

    python examples/quickstart.py [--out quickstart] [--epochs 2]

Everything lands under ``--out``: ``data/mazes_5`` (the data set), ``sweep/`` (results.sqlite,
one folder per run with train.log, metrics.jsonl and TensorBoard events, and report/index.md).
It takes seconds on a laptop CPU; the test suite runs it with ``--epochs 1``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import recurdepth


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("quickstart"),
                        help="output folder (default: quickstart)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per run")
    args = parser.parse_args(argv)

    # 1. Data: 200 training and 100 test mazes of size 5 (the same bytes for the same seed).
    data_root = args.out / "data"
    recurdepth.generate_mazes(data_root / "mazes_5", size=5, n_train=200, n_test=100, seed=0)

    # 2. Two runs at the same effective depth, recurrent and feed-forward: the "quick" preset
    #    with overrides, exactly as `recurdepth sweep quick model.effective_depth=12 ...`.
    summary = recurdepth.sweep(
        "quick", [f"train.epochs={args.epochs}", "model.effective_depth=12"], trials=1,
        out=args.out / "sweep", data_root=data_root, progress=False)
    print(f"{summary.total} runs, {summary.ran} trained now; results in {summary.db_path}")

    # 3. The report: accuracy vs effective depth, tables with parameter counts, index.md/.html.
    files = recurdepth.report(args.out / "sweep")
    print(f"report: {files.index}")
    for group in files.groups:
        mean, _ = group.test
        print(f"  {group.mode:<12} effective depth {group.effective_depth}, "
              f"{group.parameters:,} parameters: test acc {mean:.2f}% ({group.done} run)")

    # 4. Think longer: the recurrent run evaluated with more iterations than it was trained with.
    recurrent = next((args.out / "sweep" / "runs").glob("recurrent-*"))
    evaluation = recurdepth.evaluate(recurrent, iters=4)
    per_iter = ", ".join(f"{a:.1f}" for a in evaluation["acc_per_iter"])
    print(f"recurrent run, test accuracy after 1..4 iterations: {per_iter} (saved in "
          f"{recurrent / 'eval.json'})")

    # 5. An analysis from Python: CKA between the layers of the two runs (exact, the paper's
    #    estimator), written to <recurrent>/analysis/cka/<recurrent>_vs_<feed-forward>/.
    feedforward = next((args.out / "sweep" / "runs").glob("feedforward-*"))
    cka = recurdepth.analysis.analyze_cka(recurrent, feedforward, progress=False)
    print(f"CKA between the last layers ({cka.result['labels'][cka.result['headline']]}): "
          f"{cka.result['last']:.3f}; files in {cka.out}")


if __name__ == "__main__":
    main()
