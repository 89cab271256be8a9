"""Results of a sweep grouped over trials: mean ± standard error per (panel, mode, depth)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recurdepth.experiments.spec import canonical_json
from recurdepth.experiments.store import RunRecord

# Grid keys that place a group inside a panel rather than defining a panel of its own.
_WITHIN_PANEL = ("model.mode", "model.effective_depth", "model.iters", "trial", "seed")
_PANEL_KEYS_SHOWN_ELSEWHERE = ("model.family", "data.name", "data.maze_size")


def mean_se(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and standard error of the mean (sample std / sqrt(n)); SE is None for n < 2."""
    n = len(values)
    if n == 0:
        return None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


@dataclass(frozen=True)
class RunCurve:
    """One finished run's learning curve: (epoch, train acc, test acc) per evaluated epoch."""

    name: str
    epochs: int | None
    points: list[tuple[int, float | None, float | None]]


@dataclass
class GroupStat:
    """All trials of one configuration: identity, size and accuracy statistics."""

    panel: str
    family: str
    mode: str
    dataset: str
    effective_depth: int | None
    iters: int | None
    width: int | None
    parameters: int | None
    extra: dict[str, Any]
    runs: int = 0
    done: int = 0
    test_accs: list[float] = field(default_factory=list)
    train_accs: list[float] = field(default_factory=list)
    per_iter: list[list[float]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    seeds: list[int | None] = field(default_factory=list)  # of each entry of test_accs
    curves: list[RunCurve] = field(default_factory=list)

    @property
    def test(self) -> tuple[float | None, float | None]:
        """Mean and standard error of the test accuracy (percent) over finished trials."""
        return mean_se(self.test_accs)

    @property
    def train(self) -> tuple[float | None, float | None]:
        """Mean and standard error of the train accuracy (percent) over finished trials."""
        return mean_se(self.train_accs)

    def per_iter_stats(self) -> list[tuple[int, float, float | None]]:
        """(test iterations, mean, SE) over the trials that report accuracy per iteration."""
        if not self.per_iter:
            return []
        length = min(len(p) for p in self.per_iter)
        out = []
        for i in range(length):
            m, s = mean_se([p[i] for p in self.per_iter])
            out.append((i + 1, m, s))
        return out


def dataset_label(config: dict[str, Any]) -> str:
    """``cifar10``, or ``mazes 9x9`` for mazes (the maze size matters as much as the data set)."""
    data = config.get("data", {})
    if data.get("name") == "mazes":
        return f"mazes {data.get('maze_size')}x{data.get('maze_size')}"
    return str(data.get("name"))


def _panel(record: RunRecord) -> tuple[str, dict[str, Any]]:
    model = record.config.get("model", {})
    extra = {k: v for k, v in record.params.items()
             if k not in _WITHIN_PANEL and k not in _PANEL_KEYS_SHOWN_ELSEWHERE}
    label = f"{dataset_label(record.config)} · {model.get('family')}"
    if extra:
        label += " · " + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in extra.items())
    return label, extra


def group_results(records: Iterable[RunRecord]) -> list[GroupStat]:
    """Group runs that differ only in their trial; sorted by panel, depth and mode."""
    groups: dict[str, GroupStat] = {}
    for rec in records:
        key = canonical_json({k: v for k, v in rec.params.items() if k not in ("trial", "seed")})
        if key not in groups:
            panel, extra = _panel(rec)
            model = rec.config.get("model", {})
            result = rec.result or {}
            groups[key] = GroupStat(
                panel=panel, family=str(model.get("family")), mode=str(model.get("mode")),
                dataset=dataset_label(rec.config),
                effective_depth=rec.effective_depth or result.get("effective_depth"),
                iters=result.get("iters", model.get("iters")), width=model.get("width"),
                parameters=rec.parameters or result.get("parameters"), extra=extra)
        g = groups[key]
        g.runs += 1
        g.statuses[rec.status] = g.statuses.get(rec.status, 0) + 1
        if rec.status == "completed" and rec.result:
            g.done += 1
            if isinstance(rec.result.get("test_acc"), (int, float)):
                g.test_accs.append(float(rec.result["test_acc"]))
                seed = rec.config.get("seed")
                g.seeds.append(int(seed) if isinstance(seed, int) else None)
            g.curves.append(RunCurve(
                rec.name, rec.result.get("epochs"),
                [(int(p["epoch"]), _num(p.get("train_acc")), _num(p.get("test_acc")))
                 for p in rec.result.get("curve") or [] if "epoch" in p]))
            if isinstance(rec.result.get("train_acc"), (int, float)):
                g.train_accs.append(float(rec.result["train_acc"]))
            if g.iters is None:
                g.iters = rec.result.get("iters")
            per_iter = rec.result.get("test_acc_per_iter")
            if per_iter:
                g.per_iter.append([float(v) for v in per_iter])
    return sorted(groups.values(), key=lambda g: (g.panel, g.effective_depth or 0,
                                                  _mode_order(g.mode)))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _mode_order(mode: str) -> int:
    return {"recurrent": 0, "feedforward": 1}.get(mode, 2)


def panels(groups: Iterable[GroupStat]) -> dict[str, list[GroupStat]]:
    """Groups by panel, panels in sorted order."""
    out: dict[str, list[GroupStat]] = {}
    for g in groups:
        out.setdefault(g.panel, []).append(g)
    return dict(sorted(out.items()))


def fmt_acc(mean: float | None, se: float | None) -> str:
    """``93.99 ± 0.10``, ``93.99`` (one trial) or ``–`` (no finished trial)."""
    if mean is None:
        return "–"
    return f"{mean:.2f}" if se is None else f"{mean:.2f} ± {se:.2f}"


def fmt_int(value: int | None) -> str:
    """``632,592`` or ``–``."""
    return "–" if value is None else f"{value:,}"


__all__ = ["GroupStat", "RunCurve", "dataset_label", "fmt_acc", "fmt_int", "group_results", "mean_se",
           "panels"]
