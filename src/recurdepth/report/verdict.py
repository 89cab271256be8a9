"""The report's verdict on the paper's claim, computed from the results: per effective depth,
recurrent minus feed-forward test accuracy with a 95% confidence interval over trials.

Rules (the whole verdict follows from them; nothing is written by hand):

* **Difference.** If both modes ran the same seeds (at least two), the trials are paired by seed
  and the interval is the paired t-interval of the per-seed differences (n - 1 degrees of
  freedom). Otherwise the interval is Welch's t-interval for the difference of the two means
  (Welch-Satterthwaite degrees of freedom). With fewer than two trials on a side there is no
  interval and the depth stays undecided.
* **Classification.** The 95% interval lies below 0 → "recurrent behind"; above 0 → "recurrent
  ahead"; it contains 0 and its half-width is at most ``MARGIN`` points → "within"; it contains
  0 but is wider → "inconclusive" (the trials disagree too much to tell a match from a gap of
  more than ``MARGIN`` points, so no claim is made either way).
* **Overall.** The claim holds at a depth when the recurrent model is within or ahead; it fails
  where the recurrent model is behind; inconclusive depths are listed as such. Two kinds of depth
  are no test of the claim and are reported but not counted: one iteration (both models are the
  same network), and a depth where neither model is more than ``NO_SIGNAL`` points above chance
  (100/classes for classification, 0 for mazes, which count only exact solutions).
* **Convergence** (per run, from its own learning curve): a run whose final un-augmented train
  accuracy is within ``NO_SIGNAL`` points of chance is "not learning" (a flat 0% gains nothing
  either, so the gain rule alone would call it converged); otherwise converged when its final
  train accuracy is at least 95%, or when it gained less than 1 point over the last quarter of
  its epochs; otherwise flagged as still learning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from recurdepth.report.results import GroupStat, RunCurve, panels

CONFIDENCE = 0.95
MARGIN = 5.0  # points: a wider interval around 0 cannot tell "about the same" from a real gap
NO_SIGNAL = 5.0  # points above chance: models no better than this learned nothing to compare
CONVERGED_TRAIN_ACC = 95.0  # percent
CONVERGED_GAIN = 1.0  # points of train accuracy over the last quarter of the epochs

PAPER_CLAIM = ("The paper's claim: a recurrent network reaches about the accuracy of a "
               "feed-forward network of the same effective depth, with far fewer parameters.")
RULE = ("Rule: recurrent minus feed-forward test accuracy with a 95% t-interval over trials "
        "(paired by seed when both modes ran the same seeds, else Welch); below 0 → behind, "
        "above 0 → ahead, containing 0 → within if its half-width is ≤ 5 points, else "
        "inconclusive. A run counts as converged when its "
        "final train accuracy is ≥ 95% or it gained < 1 point over its last quarter of epochs, "
        "and as not learning (never converged) when its train accuracy is within 5 points of "
        "chance.")


@dataclass(frozen=True)
class Difference:
    """Recurrent minus feed-forward accuracy: mean, 95% half-width (None: no interval), method."""

    mean: float
    half_width: float | None
    method: str  # "paired by seed", "Welch" or "no interval"
    n_recurrent: int
    n_feedforward: int
    dof: float | None = None

    @property
    def low(self) -> float | None:
        """Lower end of the interval."""
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        """Upper end of the interval."""
        return None if self.half_width is None else self.mean + self.half_width


def t_quantile(confidence: float, dof: float) -> float:
    """Two-sided Student-t critical value, e.g. 4.303 for 95% and 2 degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, sum((v - mean) ** 2 for v in values) / (n - 1)


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = CONFIDENCE) -> Difference:
    """Mean of a[i] - b[i] with the paired t-interval (needs two pairs or more)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("a paired interval needs two or more pairs")
    diffs = [x - y for x, y in zip(a, b)]
    mean, var = _mean_var(diffs)
    n = len(diffs)
    half = t_quantile(confidence, n - 1) * math.sqrt(var / n)
    return Difference(mean, half, "paired by seed", n, n, dof=n - 1)


def welch_difference(a: Sequence[float], b: Sequence[float],
                     confidence: float = CONFIDENCE) -> Difference:
    """mean(a) - mean(b) with Welch's t-interval (needs two values or more on each side)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's interval needs two or more values on each side")
    ma, va = _mean_var(a)
    mb, vb = _mean_var(b)
    qa, qb = va / len(a), vb / len(b)
    se = math.sqrt(qa + qb)
    if se == 0:  # every trial identical on both sides: the interval is a point
        return Difference(ma - mb, 0.0, "Welch", len(a), len(b), dof=len(a) + len(b) - 2)
    dof = (qa + qb) ** 2 / (qa ** 2 / (len(a) - 1) + qb ** 2 / (len(b) - 1))
    return Difference(ma - mb, t_quantile(confidence, dof) * se, "Welch", len(a), len(b),
                      dof=dof)


def compare(recurrent: GroupStat, feedforward: GroupStat) -> Difference | None:
    """Recurrent minus feed-forward test accuracy over trials (None: a side has no result)."""
    ra, fa = recurrent.test_accs, feedforward.test_accs
    if not ra or not fa:
        return None
    rs, fs = recurrent.seeds, feedforward.seeds
    by_seed_r, by_seed_f = dict(zip(rs, ra)), dict(zip(fs, fa))
    if (len(ra) >= 2 and None not in rs and len(set(rs)) == len(rs) == len(fs)
            and set(rs) == set(fs)):
        seeds = sorted(by_seed_r)
        return paired_difference([by_seed_r[s] for s in seeds], [by_seed_f[s] for s in seeds])
    if len(ra) >= 2 and len(fa) >= 2:
        return welch_difference(ra, fa)
    return Difference(sum(ra) / len(ra) - sum(fa) / len(fa), None, "no interval", len(ra),
                      len(fa))


def classify(diff: Difference) -> str:
    """"within", "behind", "ahead", "inconclusive" (interval too wide) or "undecided" (none)."""
    if diff.half_width is None:
        return "undecided"
    if diff.low <= 0 <= diff.high:  # type: ignore[operator]
        return "within" if diff.half_width <= MARGIN else "inconclusive"
    return "behind" if diff.high < 0 else "ahead"  # type: ignore[operator]


def describe(diff: Difference) -> str:
    """One line such as ``within +2.1 ± 3.0 points`` or ``recurrent behind by 12.0 ± 4.0 points``."""
    outcome = classify(diff)
    if outcome == "undecided":
        return (f"undecided: recurrent − feed-forward = {diff.mean:+.1f} points, no interval "
                f"({diff.n_recurrent} vs {diff.n_feedforward} trial(s); an interval needs ≥ 2)")
    h = diff.half_width
    if outcome == "within":
        return f"within {diff.mean:+.1f} ± {h:.1f} points"
    if outcome == "inconclusive":
        return f"inconclusive: {diff.mean:+.1f} ± {h:.1f} points, wider than ±{MARGIN:g}"
    if outcome == "behind":
        return f"recurrent behind by {-diff.mean:.1f} ± {h:.1f} points"
    return f"recurrent ahead by {diff.mean:.1f} ± {h:.1f} points"


@dataclass(frozen=True)
class Convergence:
    """Whether one run's own curve says it converged: True, False or None (no curve)."""

    name: str
    converged: bool | None
    final_train: float | None
    gain: float | None
    learning: bool = True  # False: train accuracy within NO_SIGNAL points of chance


def chance_of(group: GroupStat) -> float:
    """Accuracy of guessing on the group's data set, in percent (0 for mazes: exact solutions)."""
    from recurdepth.data.registry import get_dataset, list_datasets
    from recurdepth.data.tasks import get_task

    name = group.dataset.split()[0]
    if name not in list_datasets():
        return 0.0
    spec = get_dataset(name)
    return get_task(spec.task).chance(spec.num_classes)


def run_convergence(curve: RunCurve, chance: float = 0.0) -> Convergence:
    """Apply the convergence rule to one run's curve (``chance``: the task's, in percent)."""
    pts = [(e, tr) for e, tr, _ in curve.points if tr is not None]
    if not pts:
        return Convergence(curve.name, None, None, None)
    last_epoch, final = pts[-1]
    epochs = curve.epochs or last_epoch
    start = epochs - math.ceil(epochs / 4)
    ref = [tr for e, tr in pts if e <= start]
    gain = final - ref[-1] if ref and last_epoch == epochs else None
    if final <= chance + NO_SIGNAL:
        return Convergence(curve.name, False, final, gain, learning=False)
    if final >= CONVERGED_TRAIN_ACC or (gain is not None and gain < CONVERGED_GAIN):
        return Convergence(curve.name, True, final, gain)
    return Convergence(curve.name, False if gain is not None else None, final, gain)


def convergence_line(group: GroupStat) -> str:
    """One line on a group's runs, e.g. ``converged (3/3 runs)`` or the runs still learning."""
    chance = chance_of(group)
    results = [run_convergence(c, chance) for c in group.curves]
    if not results or all(r.converged is None for r in results):
        return "convergence unknown (no per-epoch train accuracy; set train.eval_every ≥ 1)"
    ok = [r for r in results if r.converged]
    if len(ok) == len(results):
        return f"converged ({len(ok)}/{len(results)} runs)"
    idle = [r for r in results if not r.learning]
    if idle:
        detail = "; ".join(f"{r.name}: {r.final_train:.1f}% train" for r in idle)
        return (f"NOT converged: {len(idle)}/{len(results)} runs not learning (train accuracy "
                f"within {NO_SIGNAL:g} points of chance, {chance:.0f}%: {detail})")
    flagged = [r for r in results if not r.converged]
    detail = "; ".join(
        f"{r.name}: {r.final_train:.1f}% train"
        + (f", +{r.gain:.1f} points in the last quarter" if r.gain is not None else
           ", too few evaluated epochs to judge")
        for r in flagged)
    return f"NOT converged: {len(flagged)}/{len(results)} runs still learning ({detail})"


@dataclass(frozen=True)
class DepthVerdict:
    """Recurrent vs feed-forward at one effective depth of one panel."""

    depth: int
    recurrent: GroupStat
    feedforward: GroupStat
    difference: Difference | None
    parameter_ratio: float | None

    @property
    def outcome(self) -> str:
        """within / behind / ahead / inconclusive / undecided / missing."""
        return "missing" if self.difference is None else classify(self.difference)

    @property
    def chance(self) -> float:
        """Accuracy of guessing, in percent (0 for mazes: only exact solutions count)."""
        return chance_of(self.recurrent)

    @property
    def learned(self) -> bool:
        """False when neither model is more than ``NO_SIGNAL`` points above chance."""
        means = [g.test[0] for g in (self.recurrent, self.feedforward) if g.test[0] is not None]
        return not means or max(means) > self.chance + NO_SIGNAL

    @property
    def no_test(self) -> bool:
        """True where the two models cannot test the claim (same network, or nothing learned)."""
        return self.same_network or not self.learned

    @property
    def same_network(self) -> bool:
        """True at one iteration, where the recurrent and feed-forward models coincide."""
        return self.recurrent.iters == 1 and self.feedforward.iters == 1

    def line(self) -> str:
        """The one-line result of this depth."""
        ratio = ("" if self.parameter_ratio is None else
                 f"; {self.parameter_ratio:.2f}× the parameters "
                 f"({self.recurrent.parameters:,} vs {self.feedforward.parameters:,})")
        if self.difference is None:
            return f"depth {self.depth}: no finished runs on one side{ratio}"
        d = self.difference
        method = ("" if d.method == "no interval" else
                  f" ({d.method}, {d.n_recurrent} vs {d.n_feedforward} trials)")
        same = "; one iteration: both modes are the same network" if self.same_network else ""
        if not self.learned:
            same += (f"; no test: neither model is more than {NO_SIGNAL:g} points above chance "
                     f"({self.chance:.0f}%)")
        return f"depth {self.depth}: {describe(d)}{method}{ratio}{same}"


@dataclass
class PanelVerdict:
    """The verdict for one panel (data set · family · other grid values)."""

    panel: str
    depths: list[DepthVerdict] = field(default_factory=list)
    convergence: list[tuple[str, str]] = field(default_factory=list)  # (group label, line)

    def overall(self) -> str:
        """The overall line: at how many depths the claim holds, and the parameter ratios."""
        # One iteration makes the two modes the same network: no test of the claim.
        same = [d for d in self.depths if d.no_test]
        tested = [d for d in self.depths if not d.no_test]
        decided = [d for d in tested if d.outcome in ("within", "behind", "ahead")]
        holds = [d for d in decided if d.outcome in ("within", "ahead")]
        behind = [d for d in decided if d.outcome == "behind"]
        unclear = [d for d in tested if d.outcome == "inconclusive"]
        open_ = [d for d in tested if d not in decided and d not in unclear]
        ratios = [d.parameter_ratio for d in holds if d.parameter_ratio is not None]
        parts = []
        if decided and len(holds) == len(decided):
            parts.append(f"the claim holds at {'every' if not (open_ or unclear) else 'each decided'} "
                         f"depth ({_depths(holds)})")
        elif holds:
            parts.append(f"the claim holds at {len(holds)} of {len(decided)} decided depths "
                         f"({_depths(holds)}); recurrent behind at {_depths(behind)}")
        elif behind:
            parts.append(f"the claim does not hold here: recurrent behind at every decided "
                         f"depth ({_depths(behind)})")
        if ratios:
            lo, hi = min(ratios), max(ratios)
            span = f"{lo:.2f}×" if round(lo, 2) == round(hi, 2) else f"{lo:.2f}–{hi:.2f}×"
            parts.append(f"where it holds the recurrent models use {span} the feed-forward "
                         f"parameters")
        if unclear:
            parts.append(f"inconclusive at {_depths(unclear)} (intervals wider than "
                         f"±{MARGIN:g} points)")
        if open_:
            parts.append(f"undecided at {_depths(open_)} (fewer than 2 trials)")
        if same:
            why = ("one iteration: the same network" if all(d.same_network for d in same) else
                   "the same network, or neither model learned" if any(d.same_network for d in same)
                   else "neither model learned")
            parts.append(f"depth {_depths(same)} {'is' if len(same) == 1 else 'are'} no test "
                         f"({why})")
        conv = [line for _, line in self.convergence]
        if any(line.startswith("NOT") for line in conv):
            parts.append("some runs had not converged (see below), so this describes "
                         "partly trained models")
        elif conv and any(line.startswith("convergence unknown") for line in conv):
            parts.append("convergence could not be checked for every run")
        text = "; ".join(parts) if parts else "no depth has results from both modes"
        return f"Overall: {text}."


def _depths(items: Sequence[DepthVerdict]) -> str:
    return ", ".join(str(d.depth) for d in items) or "none"


def _mode_label(mode: str) -> str:
    return "feed-forward" if mode == "feedforward" else mode


def panel_verdicts(groups: Sequence[GroupStat]) -> list[PanelVerdict]:
    """One verdict per panel that has a recurrent and a feed-forward model at some depth."""
    out = []
    for panel, gs in panels(groups).items():
        pv = PanelVerdict(panel)
        depths = sorted({g.effective_depth for g in gs if g.effective_depth is not None})
        for depth in depths:
            rec = next((g for g in gs if g.effective_depth == depth and g.mode == "recurrent"),
                       None)
            ff = next((g for g in gs if g.effective_depth == depth and g.mode == "feedforward"),
                      None)
            if rec is None or ff is None:
                continue
            ratio = (rec.parameters / ff.parameters if rec.parameters and ff.parameters
                     else None)
            pv.depths.append(DepthVerdict(depth, rec, ff, compare(rec, ff), ratio))
        if not pv.depths:
            continue
        for d in pv.depths:
            for g in (d.recurrent, d.feedforward):
                pv.convergence.append((f"{_mode_label(g.mode)}, depth {d.depth}",
                                       convergence_line(g)))
        out.append(pv)
    return out


def verdict_lines(verdicts: Sequence[PanelVerdict]) -> list[str]:
    """The verdict as plain text lines (terminal, and the source of the Markdown/HTML)."""
    if not verdicts:
        return []
    lines = [PAPER_CLAIM]
    for v in verdicts:
        lines += ["", f"{v.panel}:"]
        lines += [f"  {d.line()}" for d in v.depths]
        lines.append(f"  {v.overall()}")
        lines += [f"  convergence, {label}: {line}" for label, line in v.convergence]
    lines += ["", RULE]
    return lines


def verdict_markdown(verdicts: Sequence[PanelVerdict]) -> list[str]:
    """The verdict section of ``index.md`` (empty when no panel has both modes)."""
    if not verdicts:
        return []
    md = ["## Verdict", "", f"*{PAPER_CLAIM}*", ""]
    for v in verdicts:
        md += [f"### {v.panel}", ""]
        md += [f"- {d.line()}" for d in v.depths]
        md += ["", f"**{v.overall()}**", ""]
        md += [f"- convergence, {label}: {line}" for label, line in v.convergence]
        md.append("")
    md += [RULE, ""]
    return md


__all__ = ["CONFIDENCE", "Convergence", "chance_of", "DepthVerdict", "Difference", "PAPER_CLAIM",
           "PanelVerdict", "RULE", "classify", "compare", "convergence_line", "describe",
           "paired_difference", "panel_verdicts", "run_convergence", "t_quantile",
           "verdict_lines", "verdict_markdown", "welch_difference"]
