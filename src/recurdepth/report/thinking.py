"""The report's "Thinking longer" section: what each depth's recurrent runs do past their
trained iterations (:mod:`recurdepth.analysis.dynamics` on every finished recurrent run, pooled
over trials): the one-line classification, and the state norm and relative change per iteration.

Kept small so the main job's report stays fast (IMAGES test examples per run, MULT x the trained
iterations, a short power iteration); ``recurdepth analyze dynamics RUN`` gives the full
analysis of one run.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recurdepth.report.tables import Table

IMAGES = 200  # test examples per run for the curves
PROBED = 32  # of those, examples for the spectral radius, restarts and perturbation
MULT = 4  # iterations 1..MULT x trained
POWER_STEPS = 20


@dataclass
class ThinkingLonger:
    """The section's parts: its table, figure, per-run lines and runs left out (one line each)."""

    table: Table | None = None
    figure: Path | None = None
    runs: list[tuple[str, str]] = field(default_factory=list)  # (run name, classification line)
    results: dict[str, Any] = field(default_factory=dict)  # run name -> its Dynamics
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _key(record: Any) -> tuple[str, int]:
    return record.params.get("model.family") or record.config.get("model", {}).get(
        "family", "?"), record.effective_depth or 0


def thinking_longer(records: list[Any], folder: Path, *, title: str) -> ThinkingLonger:
    """Dynamics of every finished recurrent run in ``records``; table and figure into ``folder``."""
    import time

    started = time.perf_counter()
    out = ThinkingLonger()
    recurrent = [r for r in records if r.status == "completed"
                 and (r.params.get("model.mode") or r.config.get("model", {}).get("mode"))
                 == "recurrent"]
    if not recurrent:
        return out
    import torch

    from recurdepth.analysis.dynamics import model_dynamics
    from recurdepth.errors import RecurDepthError
    from recurdepth.training.data import eval_tensors
    from recurdepth.training.run import load_run

    from recurdepth.training.rundir import CHECKPOINT_FILE

    by_key: dict[tuple[str, int], list[Any]] = {}
    missing = 0
    for r in sorted(recurrent, key=lambda r: (_key(r), r.name)):
        if not (Path(r.run_dir) / CHECKPOINT_FILE).is_file():
            missing += 1  # a database without its run folders: nothing to analyse
            continue
        try:
            loaded = load_run(r.run_dir)
            if getattr(loaded.model, "iters", None) is None:
                continue  # shared weights but no loop to run longer (the shared ResNet-50)
            x, y = eval_tensors(loaded.config, "test", limit=IMAGES)
            iters = MULT * loaded.model.iters
            if loaded.model.max_iters is not None:
                iters = min(iters, loaded.model.max_iters)
            torch.manual_seed(0)
            res = model_dynamics(loaded.model, loaded.config.task, x, y, iters=iters,
                                 n=PROBED, power_steps=POWER_STEPS, progress=False)
        except (RecurDepthError, OSError) as e:
            out.warnings.append(f"{r.name}: {str(e).splitlines()[0]}")
            continue
        by_key.setdefault(_key(r), []).append(res)
        out.runs.append((r.name, res.line))
        out.results[r.name] = res
    if not by_key:
        out.seconds = time.perf_counter() - started
        return out
    extra = f" {missing} recurrent run(s) without a checkpoint left out." if missing else ""
    out.figure = _plot(by_key, folder / "thinking_longer.png", title)
    out.seconds = time.perf_counter() - started
    # The section's own cost, so the report says what it added to the job.
    extra += f" This section took {out.seconds:.0f} s for {len(out.runs)} run(s)."
    extra += "".join(f"\n- {name}: {line}" for name, line in out.runs)
    table = _table(by_key)
    out.table = dataclasses.replace(table, note=table.note + extra)
    return out


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def _table(by_key: dict[tuple[str, int], list[Any]]) -> Table:
    from recurdepth.analysis.dynamics import norm_growth

    header = ["family", "effective depth", "trained iters", "runs", "classification",
              "peak iteration", "acc. at trained (%)", "acc. at peak (%)", "acc. at end (%)",
              "norm growth / iter.", "rel. change at end", "spectral radius (trained)",
              "path independence (cosine, zeros)"]
    csv_header = ["family", "effective_depth", "trained_iters", "runs", "classification",
                  "peak_iteration", "acc_trained", "acc_peak", "acc_end", "norm_growth",
                  "change_end", "spectral_radius_trained", "path_cosine_zeros"]
    rows, csv_rows = [], []
    for (family, depth), results in by_key.items():
        t, k = results[0].trained_iters, results[0].iters
        counts = Counter(r.classification for r in results)
        label = ", ".join(f"{c} x{n}" if n > 1 else c for c, n in counts.most_common())
        peaks = [r.best for r in results]
        vals = [_mean([r.accuracy[t - 1] for r in results]),
                _mean([max(r.accuracy) for r in results]),
                _mean([r.accuracy[-1] for r in results]),
                _mean([norm_growth(r.norm) for r in results]),
                _mean([r.change[-1] for r in results]),
                _mean([r.spectral_radius["trained"] for r in results])]
        cos = [r.path_independence["zeros"]["cosine_end"] for r in results
               if isinstance(r.path_independence, dict)]
        path = f"{_mean(cos):.3f}" if cos else "not applicable (no recall)"
        rows.append([family, str(depth), str(t), str(len(results)), label,
                     "/".join(map(str, peaks)) + f" of {k}", *(f"{v:.1f}" for v in vals[:3]),
                     f"x{vals[3]:.2f}", f"{vals[4]:.3g}", f"{vals[5]:.2f}", path])
        csv_rows.append([family, depth, t, len(results), label, statistics.fmean(peaks), *vals,
                         _mean(cos) if cos else None])
    return Table("thinking_longer", "Thinking longer: dynamics past the trained iterations",
                 header, rows, csv_header, csv_rows,
                 note="Mean over trials; classification per run (see "
                      "recurdepth.analysis.dynamics.THRESHOLDS_TEXT); peak iteration per run.")


def _plot(by_key: dict[tuple[str, int], list[Any]], path: Path, title: str) -> Path:
    """State norm and relative change per iteration, mean over each depth's trials."""
    from recurdepth.report.plots import _save, plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, ((family, depth), results) in enumerate(by_key.items()):
        k = min(r.iters for r in results)
        ks = list(range(1, k + 1))
        label = f"{family} d{depth} ({len(results)} run{'s' * (len(results) > 1)})"
        for ax, what in zip(axes, ("accuracy", "norm", "change")):
            mean = [_mean([getattr(r, what)[j] for r in results]) for j in range(k)]
            ax.plot(ks, mean, "o-", ms=3, color=f"C{i}", label=label)
            ax.axvline(results[0].trained_iters, color=f"C{i}", ls=":", alpha=0.6)
    positive = {what: all(v > 0 for rs in by_key.values() for r in rs
                          for v in getattr(r, what) if math.isfinite(v))
                for what in ("norm", "change")}
    for ax, what, ylabel in zip(axes, ("accuracy", "norm", "change"), (
            "accuracy (%)", "state norm ||h_k||",
            "relative change ||h_k - h_(k-1)|| / ||h_(k-1)||")):
        ax.set_xlabel("iteration k (dotted: trained)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        if positive.get(what):
            ax.set_yscale("log")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["IMAGES", "MULT", "ThinkingLonger", "thinking_longer"]
