"""Results of a sweep grouped over trials: mean ± standard error per (panel, mode, depth).

Besides the database, a finished run's folder may hold ``eval.json``: evaluations saved by
``recurdepth eval`` (more test-time iterations, other maze sizes, the train split).
:func:`load_saved_evals` reads them; :func:`group_results` then groups them over trials like the
rest and lets a longer curve on the run's own test set extend the training's final evaluation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recurdepth.errors import DataError
from recurdepth.experiments.spec import canonical_json
from recurdepth.experiments.store import RunRecord
from recurdepth.training.config import stored_example_size
from recurdepth.training.tracking import EVAL_FILE, read_evals

# Grid keys that place a group inside a panel rather than defining a panel of its own.
_WITHIN_PANEL = ("model.mode", "model.effective_depth", "model.iters", "trial", "seed")
_PANEL_KEYS_SHOWN_ELSEWHERE = ("model.family", "data.name", "data.maze_size", "data.options.size")


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


@dataclass(frozen=True)
class EvalSetting:
    """Where a saved evaluation was measured: split, maze size (mazes only), first N samples."""

    split: str
    maze_size: int | None = None
    limit: int | None = None

    def label(self, dataset: str | None = None) -> str:
        """``test split``, ``test split, mazes 13x13`` or ``train split, first 100 samples``."""
        text = f"{self.split} split"
        if self.maze_size is not None:
            text += f", {size_text(dataset, self.maze_size)}"
        if self.limit is not None:
            text += f", first {self.limit:,} samples"
        return text

    def sort_key(self) -> tuple[str, int, int]:
        """Test before train, then by maze size, the whole split before a limited one."""
        return ({"test": "0", "train": "1"}.get(self.split, self.split), self.maze_size or 0,
                -1 if self.limit is None else self.limit)


def size_text(dataset: str | None, size: int, *, bare: bool = False) -> str:
    """How the data set's task names examples of ``size``: ``mazes 9x9`` (``bare``: ``9x9``),
    or the task's own words (strings: ``64-bit strings``)."""
    from recurdepth.data.registry import list_datasets
    from recurdepth.data.tasks import task_of

    named = getattr(task_of(dataset), "size_text", None) if dataset in list_datasets() else None
    if named is not None:
        return named(size)
    return f"{size}x{size}" if bare else f"mazes {size}x{size}"


@dataclass(frozen=True)
class SavedEval:
    """One run's saved evaluation in one setting: accuracy at the trained iterations (%),
    accuracy after 1..N iterations (recurrent models; None for feed-forward) and sample count."""

    acc: float
    per_iter: list[float] | None
    samples: int | None


def trained_setting(config: dict[str, Any]) -> EvalSetting:
    """The setting of a run's own final evaluation: its test split (at its maze size)."""
    return EvalSetting("test", stored_example_size(config))


def iteration_stats(curves: Sequence[Sequence[float]]) -> list[tuple[int, float, float | None, int]]:
    """(iterations, mean, SE, trials) at every iteration count that some curve reaches.

    Each count is averaged over the curves that reach it, so one trial evaluated further
    extends the curve instead of being cut to the shortest.
    """
    out = []
    for i in range(max((len(c) for c in curves), default=0)):
        values = [float(c[i]) for c in curves if len(c) > i]
        m, s = mean_se(values)
        out.append((i + 1, m, s, len(values)))
    return out


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
    data_name: str | None = None  # the data set's registered name (``dataset`` is a label)
    runs: int = 0
    done: int = 0
    test_accs: list[float] = field(default_factory=list)
    train_accs: list[float] = field(default_factory=list)
    per_iter: list[list[float]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    seeds: list[int | None] = field(default_factory=list)  # of each entry of test_accs
    curves: list[RunCurve] = field(default_factory=list)
    evals: dict[EvalSetting, list[SavedEval]] = field(default_factory=dict)  # from eval.json
    trained_setting: EvalSetting = EvalSetting("test")  # where per_iter was measured
    # Set on a group that shows another mode's runs: at one iteration both modes are the same
    # network, so an experiment may train it once (as this mode) and show it under both.
    trained_as: str | None = None

    @property
    def test(self) -> tuple[float | None, float | None]:
        """Mean and standard error of the test accuracy (percent) over finished trials."""
        return mean_se(self.test_accs)

    @property
    def train(self) -> tuple[float | None, float | None]:
        """Mean and standard error of the train accuracy (percent) over finished trials."""
        return mean_se(self.train_accs)

    def per_iter_stats(self) -> list[tuple[int, float, float | None, int]]:
        """(test iterations, mean, SE, trials) over the trials that report accuracy per
        iteration (a count that only some trials reached is averaged over those)."""
        return iteration_stats(self.per_iter)

    def eval_settings(self) -> list[EvalSetting]:
        """The settings of this group's saved evaluations, test split first."""
        return sorted(self.evals, key=EvalSetting.sort_key)


def dataset_label(config: dict[str, Any]) -> str:
    """``cifar10``, or ``mazes 9x9`` for mazes (the maze size matters as much as the data set)."""
    name, size = config.get("data", {}).get("name"), stored_example_size(config)
    return str(name) if size is None else f"{name} {size_text(name, size, bare=True)}"


def _panel(record: RunRecord) -> tuple[str, dict[str, Any]]:
    model = record.config.get("model", {})
    extra = {k: v for k, v in record.params.items()
             if k not in _WITHIN_PANEL and k not in _PANEL_KEYS_SHOWN_ELSEWHERE}
    label = f"{dataset_label(record.config)} · {model.get('family')}"
    if extra:
        label += " · " + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in extra.items())
    return label, extra


def load_saved_evals(records: Iterable[RunRecord]
                     ) -> tuple[dict[str, dict[EvalSetting, SavedEval]], list[str]]:
    """The saved evaluations of every completed run (by run id) and one-line warnings.

    A file that cannot be read, an entry that is not an evaluation and an evaluation of another
    checkpoint than the run's last epoch are skipped, each with a warning naming the file. Of
    several evaluations in one setting, the one with the most iterations is kept.
    """
    out: dict[str, dict[EvalSetting, SavedEval]] = {}
    warnings: list[str] = []
    for rec in records:
        if rec.status != "completed" or not rec.result:
            continue
        try:
            table = read_evals(rec.run_dir)
        except DataError as e:
            warnings.append(str(e))
            continue
        path = rec.run_dir / EVAL_FILE
        saved: dict[EvalSetting, SavedEval] = {}
        for key, entry in sorted(table.items()):
            parsed = _saved_eval(entry)
            if isinstance(parsed, str):
                warnings.append(f"{path}: entry {key!r} skipped ({parsed})")
                continue
            setting, epoch, ev = parsed
            finished = rec.result.get("epochs")
            if isinstance(finished, int) and epoch != finished:
                warnings.append(f"{path}: entry {key!r} evaluated epoch {epoch} but the run "
                                f"finished {finished} epochs: skipped; run `recurdepth eval` "
                                f"again")
                continue
            old = saved.get(setting)
            if old is None or len(ev.per_iter or []) > len(old.per_iter or []):
                saved[setting] = ev
        if saved:
            out[rec.id] = saved
    return out, warnings


def _saved_eval(entry: Any) -> tuple[EvalSetting, int, SavedEval] | str:
    """An eval.json entry as (setting, evaluated epoch, evaluation), or why it is not one."""
    if not isinstance(entry, dict):
        return "not an object"
    split, acc, per_iter = entry.get("split"), entry.get("acc"), entry.get("acc_per_iter")
    if not isinstance(split, str):
        return "no split"
    if entry.get("data_digest") is not None:
        return f"evaluated on other data than the run's ({entry.get('data_root')})"
    if not _is_num(acc):
        return "no accuracy"
    if per_iter is not None and not (isinstance(per_iter, list) and per_iter
                                     and all(_is_num(v) for v in per_iter)):
        return "acc_per_iter is not a list of accuracies"
    ints = {k: entry.get(k) for k in ("maze_size", "samples_limit", "samples", "epoch")}
    if any(v is not None and not _is_int(v) for v in ints.values()) or ints["epoch"] is None:
        return "maze_size, samples_limit, samples and epoch must be integers (epoch is needed)"
    setting = EvalSetting(split, ints["maze_size"], ints["samples_limit"])
    return setting, ints["epoch"], SavedEval(
        float(acc), None if per_iter is None else [float(v) for v in per_iter], ints["samples"])


def in_run_evals(config: dict[str, Any], result: dict[str, Any]) -> dict[EvalSetting, SavedEval]:
    """A run's own final evaluations as saved ones, when they say more than its test accuracy.

    They count when the run was also tested at other sizes (``data.options.eval_size``, one size
    or a list; results name them in ``eval_sizes``, or, before lists, the one
    ``eval_maze_size``): then its results at the trained and the other sizes (curves to
    ``train.eval_iters``) join the evaluation tables, which give accuracy per size x iteration
    and the best iteration.
    """
    limit = config.get("data", {}).get("test_limit")
    per = result.get("test_acc_per_iter")
    others = result.get("eval_sizes")
    if not isinstance(others, list):
        others = [{"size": result.get("eval_maze_size"), "acc": result.get("eval_maze_acc"),
                   "acc_per_iter": result.get("eval_maze_acc_per_iter")}]
    others = [o for o in others if isinstance(o, dict) and _is_int(o.get("size"))
              and _is_num(o.get("acc"))]
    out: dict[EvalSetting, SavedEval] = {}
    if not others or not _is_num(result.get("test_acc")):
        return out
    size = result.get("maze_size")
    out[EvalSetting("test", size if _is_int(size) else None, limit)] = SavedEval(
        float(result["test_acc"]), [float(v) for v in per] if per else None, None)
    for other in others:
        curve = other.get("acc_per_iter")
        curve = [float(v) for v in curve] if isinstance(curve, list) and curve else None
        out[EvalSetting("test", other["size"], limit)] = SavedEval(float(other["acc"]), curve,
                                                                   None)
    return out


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def group_results(records: Iterable[RunRecord],
                  saved_evals: dict[str, dict[EvalSetting, SavedEval]] | None = None
                  ) -> list[GroupStat]:
    """Group runs that differ only in their trial; sorted by panel, depth and mode.

    ``saved_evals`` (from :func:`load_saved_evals`) adds each run's saved evaluations; one on the
    run's own test set with more iterations than its final evaluation replaces that curve.
    """
    saved_evals = saved_evals or {}
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
                parameters=rec.parameters or result.get("parameters"), extra=extra,
                data_name=rec.config.get("data", {}).get("name"),
                trained_setting=trained_setting(rec.config))
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
            saved = saved_evals.get(rec.id, {})
            for setting, ev in {**in_run_evals(rec.config, rec.result), **saved}.items():
                g.evals.setdefault(setting, []).append(ev)
            per_iter = rec.result.get("test_acc_per_iter") or []
            longer = saved.get(g.trained_setting)
            if longer is not None and len(longer.per_iter or []) > len(per_iter):
                per_iter = longer.per_iter or []
            if per_iter:
                g.per_iter.append([float(v) for v in per_iter])
    out = list(groups.values()) + _one_iteration_twins(groups.values())
    return sorted(out, key=lambda g: (g.panel, g.effective_depth or 0, _mode_order(g.mode)))


_OTHER_MODE = {"recurrent": "feedforward", "feedforward": "recurrent"}


def _one_iteration_twins(groups: Iterable[GroupStat]) -> list[GroupStat]:
    """For each one-iteration group trained in one mode only, the same runs under the other.

    With one iteration a recurrent model and its feed-forward twin are the same network, so an
    experiment that compares the modes trains it once; tables, figures and the verdict still
    show it in both modes (``trained_as`` names the mode it was trained in).
    """
    groups = list(groups)
    present = {(g.panel, g.mode, g.effective_depth, canonical_json(g.extra)) for g in groups}
    modes = {(g.panel, g.mode) for g in groups}
    twins = []
    for g in groups:
        other = _OTHER_MODE.get(g.mode)
        if (other is None or g.iters != 1 or (g.panel, other) not in modes
                or (g.panel, other, g.effective_depth, canonical_json(g.extra)) in present):
            continue
        twin = copy.copy(g)
        twin.mode, twin.trained_as = other, g.mode
        # Test-time iterations belong to the recurrent reading of the network only.
        twin.per_iter = g.per_iter if other == "recurrent" else []
        twin.evals = {}  # saved evaluations are listed once, under the mode that trained
        twins.append(twin)
    return twins


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


__all__ = ["EvalSetting", "GroupStat", "RunCurve", "SavedEval", "dataset_label", "fmt_acc",
           "fmt_int", "group_results", "in_run_evals", "iteration_stats", "load_saved_evals", "mean_se", "panels",
           "trained_setting"]
