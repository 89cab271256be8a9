"""The report's verdict on the paper's claim, computed from the results, in two halves:
(a) equal effective depth: per depth, recurrent minus feed-forward test accuracy with a 95%
confidence interval over trials; (b) equal parameters: each recurrent model against the
feed-forward model with the same (or nearest) parameter count, the same kind of interval.

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
* **Equal parameters.** Each recurrent model of more than one iteration is compared with the
  feed-forward model of another depth whose parameter count is nearest its own (equal in the
  paper's families: the one-iteration feed-forward model). The paper's claim here is that depth
  bought by iterating adds accuracy: "recurrent ahead" supports it, "behind" or "within"
  contradicts it, "inconclusive" and "undecided" leave it open.
* **What would decide.** For an inconclusive comparison, the number of trials per mode at which
  the interval would decide it if the observed mean and spread held (see
  :func:`trials_to_decide`).
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
HALF_A = "(a) Equal effective depth (recurrent minus feed-forward at each depth)"
HALF_B = ("(b) Equal parameters (each recurrent model minus the feed-forward model with the "
          "same, else the nearest, parameter count)")

PAPER_CLAIM = ("The paper's claim, in two halves: (a) at equal effective depth a recurrent "
               "network reaches about the accuracy of a feed-forward network, with far fewer "
               "parameters; (b) at equal parameters a recurrent network made deeper by iterating "
               "is more accurate than the feed-forward network.")
RULE = ("Rule: recurrent minus feed-forward test accuracy with a 95% t-interval over trials "
        "(paired by seed when both modes ran the same seeds, else Welch); below 0 → behind, "
        "above 0 → ahead, containing 0 → within if its half-width is ≤ 5 points, else "
        "inconclusive. Equal parameters: each recurrent model minus the feed-forward model with "
        "the same (else the nearest) parameter count, the same interval; above 0 supports the "
        "claim. A run counts as converged when its "
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
    # Standard deviation of one recurrent-minus-feed-forward draw (paired: of the per-seed
    # differences; Welch: sqrt(var_r + var_f)): what projects the trials needed to decide.
    spread: float | None = None

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
    return Difference(mean, half, "paired by seed", n, n, dof=n - 1, spread=math.sqrt(var))


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
        return Difference(ma - mb, 0.0, "Welch", len(a), len(b), dof=len(a) + len(b) - 2,
                          spread=0.0)
    dof = (qa + qb) ** 2 / (qa ** 2 / (len(a) - 1) + qb ** 2 / (len(b) - 1))
    return Difference(ma - mb, t_quantile(confidence, dof) * se, "Welch", len(a), len(b),
                      dof=dof, spread=math.sqrt(va + vb))


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


MAX_TRIALS = 10_000  # beyond this a projection says "more than"


def trials_to_decide(diff: Difference, confidence: float = CONFIDENCE) -> int | None:
    """Trials per mode at which the interval would decide, if the observed mean and spread held.

    Decided means the half-width t(n-1)·spread/√n is at most ``MARGIN`` (within, or behind or
    ahead) or smaller than |mean| (the interval leaves 0). None without a spread (fewer than two
    trials); ``MAX_TRIALS + 1`` when even ``MAX_TRIALS`` would not do.
    """
    if diff.spread is None:
        return None
    for n in range(2, MAX_TRIALS + 1):
        half = t_quantile(confidence, n - 1) * diff.spread / math.sqrt(n)
        if half <= MARGIN or half < abs(diff.mean):
            return n
    return MAX_TRIALS + 1


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


def learned(*groups: GroupStat) -> bool:
    """False when none of the groups is more than ``NO_SIGNAL`` points above chance."""
    means = [g.test[0] for g in groups if g.test[0] is not None]
    return not means or max(means) > chance_of(groups[0]) + NO_SIGNAL


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
        return learned(self.recurrent, self.feedforward)

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
        trained_as = self.recurrent.trained_as or self.feedforward.trained_as
        if trained_as:
            g = self.recurrent if self.recurrent.trained_as is None else self.feedforward
            mean, _ = g.test
            acc = "" if mean is None else f", {mean:.1f}% over {len(g.test_accs)} trial(s)"
            return (f"depth {self.depth}: one iteration: both modes are the same network, "
                    f"trained once (as {_mode_label(trained_as)}) and shown under both{acc}; no "
                    f"test of the claim")
        d = self.difference
        method = _method(d)
        same = "; one iteration: both modes are the same network" if self.same_network else ""
        if not self.learned:
            same += (f"; no test: neither model is more than {NO_SIGNAL:g} points above chance "
                     f"({self.chance:.0f}%)")
        return f"depth {self.depth}: {describe(d)}{method}{ratio}{same}"


@dataclass(frozen=True)
class ParameterVerdict:
    """A recurrent model against the feed-forward model with the same (or nearest) parameters."""

    recurrent: GroupStat
    feedforward: GroupStat
    difference: Difference | None

    @property
    def outcome(self) -> str:
        """within / behind / ahead / inconclusive / undecided / missing."""
        return "missing" if self.difference is None else classify(self.difference)

    @property
    def no_test(self) -> bool:
        """True when neither model learned anything to compare."""
        return not learned(self.recurrent, self.feedforward)

    @property
    def equal(self) -> bool:
        """True when both models have exactly the same number of parameters."""
        return self.recurrent.parameters == self.feedforward.parameters

    def line(self) -> str:
        """The one-line result of this comparison."""
        r, f = self.recurrent, self.feedforward
        same = (f", trained as {_mode_label(f.trained_as)}: the same network"
                if f.trained_as else "")
        ratio = (f"{r.parameters:,} vs {f.parameters:,} parameters, "
                 + ("equal" if self.equal else
                    f"the nearest feed-forward count, {r.parameters / f.parameters:.2f}×")
                 if r.parameters and f.parameters else "parameters unknown")
        head = (f"recurrent depth {r.effective_depth} vs feed-forward depth "
                f"{f.effective_depth}{same} ({ratio})")
        if self.difference is None:
            return f"{head}: no finished runs on one side"
        d = self.difference
        method = _method(d)
        nothing = (f"; no test: neither model is more than {NO_SIGNAL:g} points above chance "
                   f"({chance_of(r):.0f}%)" if self.no_test else "")
        return f"{head}: {describe(d)}{method}{nothing}"


def parameter_verdicts(groups: Sequence[GroupStat]) -> list[ParameterVerdict]:
    """Half (b) for one panel's groups: every recurrent model of more than one iteration against
    the feed-forward model of another depth with the nearest parameter count (ties: shallower)."""
    ffs = [g for g in groups if g.mode == "feedforward" and g.parameters]
    out = []
    for rec in groups:
        if rec.mode != "recurrent" or rec.iters == 1 or not rec.parameters:
            continue
        others = [f for f in ffs if f.effective_depth != rec.effective_depth]
        if not others:
            continue
        ff = min(others, key=lambda f: (abs((f.parameters or 0) - (rec.parameters or 0)),
                                        f.effective_depth or 0))
        out.append(ParameterVerdict(rec, ff, compare(rec, ff)))
    return out


# The outcomes that decide a comparison, and how the headline names them.
_OUTCOME_WORDS = {"within": "recurrent within ±5 points", "behind": "recurrent behind",
                  "ahead": "recurrent ahead"}


def _depth_of(item: DepthVerdict | ParameterVerdict) -> int | None:
    """The recurrent model's effective depth that ``item`` compares."""
    return item.depth if isinstance(item, DepthVerdict) else item.recurrent.effective_depth


def _decide_hint(items: Sequence[DepthVerdict | ParameterVerdict]) -> str:
    """What would decide the open comparisons: trials per mode at the observed spread."""
    needs = []
    for item in items:
        d = item.difference
        n = None if d is None else trials_to_decide(d)
        ran = 0 if d is None else min(d.n_recurrent, d.n_feedforward)
        label = f"depth {_depth_of(item)}"
        if n is None:
            needs.append(f"{label}: at least 2 trials per mode for an interval ({ran} ran)")
        elif n > MAX_TRIALS:
            needs.append(f"{label}: more than {MAX_TRIALS:,} trials per mode ({ran} ran)")
        else:
            needs.append(f"{label}: about {n} trials per mode ({ran} ran)")
    return "; ".join(needs)


@dataclass
class PanelVerdict:
    """The verdict for one panel (data set · family · other grid values)."""

    panel: str
    depths: list[DepthVerdict] = field(default_factory=list)
    convergence: list[tuple[str, str]] = field(default_factory=list)  # (group label, line)
    parameters: list[ParameterVerdict] = field(default_factory=list)  # half (b)

    def parameter_overall(self) -> str:
        """Half (b) in one line: where the deeper recurrent model beats equal parameters."""
        if not self.parameters:
            return ("Overall: no recurrent model of more than one iteration has a feed-forward "
                    "model of another depth to compare with.")
        tested = [p for p in self.parameters if not p.no_test]
        ahead = [p for p in tested if p.outcome == "ahead"]
        against = [p for p in tested if p.outcome in ("behind", "within")]
        open_ = [p for p in tested if p not in ahead and p not in against]
        parts = []
        if ahead:
            which = "every compared depth" if len(ahead) == len(tested) else "depth"
            parts.append(f"the recurrent model beats the feed-forward model with "
                         f"{'the same' if all(p.equal for p in ahead) else 'the nearest'} "
                         f"parameter count at {which} {_rec_depths(ahead)}")
        if against:
            parts.append(f"not ahead at {_rec_depths(against)}")
        if open_:
            parts.append(f"open at {_rec_depths(open_)}")
        if len(tested) < len(self.parameters):
            parts.append(f"no test at {_rec_depths([p for p in self.parameters if p.no_test])} "
                         f"(neither model learned)")
        return f"Overall: {'; '.join(parts)}."

    def headline(self) -> str:
        """Which half is decided (wholly or at which depths), which is not, and what would decide it."""
        decided, open_ = [], []
        for name, items in (("equal effective depth", [d for d in self.depths if not d.no_test]),
                            ("equal parameters", [p for p in self.parameters if not p.no_test])):
            done = [i for i in items if i.outcome in _OUTCOME_WORDS]
            undecided = [i for i in items if i.outcome not in _OUTCOME_WORDS]
            if not items:
                open_.append(f"{name} (no comparison where a model learned)")
                continue
            if done and undecided:  # a half decided at some depths only says which
                decided.append(f"{name} at " + ", ".join(
                    f"depth {_depth_of(i)} ({_OUTCOME_WORDS[i.outcome]})" for i in done))
            elif done:
                decided.append(name)
            if undecided:
                open_.append(f"{name} ({_decide_hint(undecided)}, if the observed mean and "
                             f"spread held; or a GPU, which trains such trials and the paper's "
                             f"full-size models)")
        text = []
        if decided:
            text.append(f"decided at {' and '.join(decided)}")
        if open_:
            text.append(f"not decided at {'; and at '.join(open_)}")
        return "Headline: " + "; ".join(text) + "."

    def overall(self) -> str:
        """The overall line: at how many depths the claim holds, and the parameter ratios."""
        # One iteration makes the two modes the same network: no test of the claim.
        same = [d for d in self.depths if d.no_test]
        tested = [d for d in self.depths if not d.no_test]
        decided = [d for d in tested if d.outcome in _OUTCOME_WORDS]
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


def _method(d: Difference) -> str:
    """`` (paired by seed, 3 vs 3 trials)``, or nothing without an interval."""
    return "" if d.method == "no interval" else (f" ({d.method}, {d.n_recurrent} vs "
                                                 f"{d.n_feedforward} trials)")


def _depths(items: Sequence[DepthVerdict]) -> str:
    return ", ".join(str(d.depth) for d in items) or "none"


def _rec_depths(items: Sequence[ParameterVerdict]) -> str:
    return ", ".join(f"{p.recurrent.effective_depth} (vs {p.feedforward.effective_depth})"
                     for p in items) or "none"


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
        pv.parameters = parameter_verdicts(gs)
        for d in pv.depths:
            for g in (d.recurrent, d.feedforward):
                if g.trained_as:
                    continue  # the other mode's runs: listed once, under that mode
                twin = d.feedforward if g is d.recurrent else d.recurrent
                also = (f" (also shown as {_mode_label(twin.mode)}: one iteration)"
                        if twin.trained_as else "")
                pv.convergence.append((f"{_mode_label(g.mode)}, depth {d.depth}{also}",
                                       convergence_line(g)))
        out.append(pv)
    return out


def verdict_lines(verdicts: Sequence[PanelVerdict]) -> list[str]:
    """The verdict as plain text lines (terminal, and the source of the Markdown/HTML)."""
    if not verdicts:
        return []
    lines = [PAPER_CLAIM]
    for v in verdicts:
        lines += ["", f"{v.panel}:", f"  {v.headline()}", f"  {HALF_A}:"]
        lines += [f"    {d.line()}" for d in v.depths]
        lines.append(f"    {v.overall()}")
        lines.append(f"  {HALF_B}:")
        lines += [f"    {p.line()}" for p in v.parameters]
        lines.append(f"    {v.parameter_overall()}")
        lines += [f"  convergence, {label}: {line}" for label, line in v.convergence]
    lines += ["", RULE]
    return lines


def verdict_markdown(verdicts: Sequence[PanelVerdict]) -> list[str]:
    """The verdict section of ``index.md`` (empty when no panel has both modes)."""
    if not verdicts:
        return []
    md = ["## Verdict", "", f"*{PAPER_CLAIM}*", ""]
    for v in verdicts:
        md += [f"### {v.panel}", "", f"**{v.headline()}**", "", f"{HALF_A}:", ""]
        md += [f"- {d.line()}" for d in v.depths]
        md += ["", f"**{v.overall()}**", "", f"{HALF_B}:", ""]
        md += [f"- {p.line()}" for p in v.parameters]
        md += ["", f"**{v.parameter_overall()}**", ""]
        md += [f"- convergence, {label}: {line}" for label, line in v.convergence]
        md.append("")
    md += [RULE, ""]
    return md


__all__ = ["chance_of", "classify", "compare", "CONFIDENCE", "Convergence", "convergence_line",
           "DepthVerdict", "describe", "Difference", "HALF_A", "HALF_B", "learned",
           "paired_difference", "panel_verdicts", "PanelVerdict", "PAPER_CLAIM",
           "parameter_verdicts", "ParameterVerdict", "RULE", "run_convergence", "t_quantile",
           "trials_to_decide", "verdict_lines", "verdict_markdown", "welch_difference"]
