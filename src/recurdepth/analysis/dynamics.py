"""Think-longer dynamics: what a recurrent model's state does past its trained iterations.

Per iteration 1..K: accuracy, state norm and relative change ||h_k - h_(k-1)|| / ||h_(k-1)||
(h_0 is the stem output); the spectral radius of the unit's Jacobian at the trained count and at
the end (power iteration on forward-mode Jacobian-vector products, so no Jacobian is ever
formed); path independence (restart from another input's state, from noise, from zeros: does the
run reach the same end state?) for units that see the input at every iteration (recall); and
recovery from a perturbation of the state. :func:`classify` turns the curves into one line:
converges, overthinks, diverges or limit cycle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from recurdepth.analysis.features import require_unrolled
from recurdepth.errors import ConfigError
from recurdepth.models import UnrolledNet

NOT_APPLICABLE = "not applicable: the unit does not see the input"
# Classification thresholds (stated in every output, see THRESHOLDS_TEXT).
CONVERGED_CHANGE = 0.01  # relative change per iteration at the end below which a state has settled
DIVERGING_GROWTH = 1.05  # state norm growth per iteration (last half) above which it diverges
OVERTHINK_DROP = 5.0  # accuracy points lost from the peak to the end ...
OVERTHINK_SHARE = 0.25  # ... and at least this share of the peak, to call it overthinking
CYCLE_DISTANCE = 0.05  # relative distance to an earlier state that counts as a return
THRESHOLDS_TEXT = (f"overthinks: the accuracy at the end is at least {OVERTHINK_DROP:g} points "
                   f"and {OVERTHINK_SHARE:.0%} below its peak; otherwise diverges: state norm "
                   f"grows by more than x{DIVERGING_GROWTH:g} per iteration over the last half; "
                   f"converges: relative change per iteration below {CONVERGED_CHANGE:g} at the "
                   f"end; otherwise limit cycle (bounded, still moving)")


# -- stepping the body ----------------------------------------------------------------------------

def sees_input(model: UnrolledNet) -> bool:
    """True when the model's unit receives the raw input at every iteration (recall)."""
    return model.recall


def step(model: UnrolledNet, h: Tensor, slot: int, x: Tensor) -> Tensor:
    """One application of the recurrent unit at iteration ``slot`` (0-based) to state ``h``."""
    return next(model.iterate(x, 1, start=h, first=slot))


def run_states(model: UnrolledNet, x: Tensor, iters: int, *, start: Tensor | None = None,
               ) -> Iterator[Tensor]:
    """Yield h_0 (the stem output, or ``start``) and the states after iterations 1..``iters``."""
    return model.iterate(x, iters, include_stem=True, start=start)


def _norms(h: Tensor) -> Tensor:
    return h.detach().double().flatten(1).norm(dim=1)


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return torch.nn.functional.cosine_similarity(a.double().flatten(1), b.double().flatten(1),
                                                 dim=1)


def spectral_radius(model: UnrolledNet, h: Tensor, slot: int, x: Tensor, *, steps: int = 50,
                    seed: int = 0) -> Tensor:
    """Per-sample spectral radius of the unit's Jacobian at state ``h`` (power iteration).

    ``J v`` comes from a forward-mode JVP (:func:`torch.func.jvp`). The estimate is the geometric
    mean of the growth ||J v|| / ||v|| over the second half of ``steps``, which also settles for
    a complex dominant pair (a rotation), where the vector itself never converges.
    """
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(h.shape, generator=gen, dtype=torch.float32).to(h)
    v = v / _norms(v).to(h.dtype).view(-1, *[1] * (h.dim() - 1))
    logs = []
    for _ in range(steps):
        _, u = torch.func.jvp(lambda s: step(model, s, slot, x), (h,), (v,))
        growth = _norms(u).clamp_min(1e-300)
        logs.append(growth.log())
        v = u / growth.to(u.dtype).view(-1, *[1] * (u.dim() - 1))
    return torch.stack(logs[steps // 2:]).mean(0).exp()


# -- one run on one set of examples -------------------------------------------------------------

@dataclass
class Dynamics:
    """The dynamics of one recurrent model on one test set (one maze size / string length)."""

    size: int | None
    trained_iters: int
    iters: int
    images: int
    accuracy: list[float]  # % solved after iteration k = 1..iters
    norm: list[float]  # mean per-example L2 norm of the state after iteration k
    change: list[float]  # mean ||h_k - h_(k-1)|| / ||h_(k-1)||, k = 1..iters
    spectral_radius: dict[str, float]  # "trained" / "end": mean over the probed examples
    path_independence: dict[str, Any] | str
    perturbation: dict[str, Any]
    period: int | None  # smallest p with h_K close to h_(K-p), if any
    classification: str = ""
    line: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> int:
        """Iteration (1-based) of the highest accuracy (the first one on ties)."""
        return max(range(len(self.accuracy)), key=lambda k: (self.accuracy[k], -k)) + 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (with the best iteration)."""
        return {**asdict(self), "best_iteration": self.best}


def _batches(x: Tensor, y: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]


@torch.no_grad()
def _curves(model: UnrolledNet, task: Any, x: Tensor, y: Tensor, iters: int, batch_size: int,
            start: Tensor | None = None, bar: Any = None) -> tuple[list[float], ...]:
    """Accuracy (%), mean norm and mean relative change per iteration over all of ``x``."""
    correct = torch.zeros(iters, dtype=torch.float64)
    norm = torch.zeros(iters, dtype=torch.float64)
    change = torch.zeros(iters, dtype=torch.float64)
    for i, (xb, yb) in enumerate(_batches(x, y, batch_size)):
        sb = None if start is None else start[i * batch_size:i * batch_size + len(xb)]
        states = run_states(model, xb, iters, start=sb)
        prev = next(states)
        prev_norm = _norms(prev)
        for k, h in enumerate(states):
            n = _norms(h)
            correct[k] += task.correct(model.head(h), yb, xb).sum().item()
            norm[k] += n.sum().item()
            change[k] += (_norms(h - prev) / prev_norm.clamp_min(1e-300)).sum().item()
            prev, prev_norm = h, n
        if bar is not None:
            bar.update(len(xb))
    m = len(x)
    return ((100 * correct / m).tolist(), (norm / m).tolist(), (change / m).tolist())


@torch.no_grad()
def _states_at(model: UnrolledNet, x: Tensor, iters: int, keep: set[int],
               start: Tensor | None = None) -> dict[int, Tensor]:
    return {k: h for k, h in enumerate(run_states(model, x, iters, start=start)) if k in keep}


def _acc(model: UnrolledNet, task: Any, h: Tensor, y: Tensor, x: Tensor) -> float:
    with torch.no_grad():
        return 100 * task.correct(model.head(h), y, x).double().mean().item()


def model_dynamics(model: UnrolledNet, task: Any, x: Tensor, y: Tensor, *, iters: int,
                   size: int | None = None, n: int = 100, noise: float = 0.1,
                   perturb_at: int = 1, power_steps: int = 50, seed: int = 0,
                   batch_size: int = 100, progress: bool = False) -> Dynamics:
    """Everything :mod:`recurdepth.analysis.dynamics` measures, for ``model`` on (``x``, ``y``).

    Curves use every example; the spectral radius, restarts and perturbation the first ``n``.
    ``task`` gives ``correct(logits, y, x)``; every random draw comes from ``seed``.
    """
    from tqdm.auto import tqdm

    from recurdepth.progress import bar_disable

    net = require_unrolled(model)
    if not net.recurrent:
        raise ConfigError("think-longer dynamics need a recurrent model: a feed-forward one has "
                          "a fixed depth and cannot run past its trained iterations")
    net.eval()
    trained = net.iters
    if not 1 <= perturb_at <= iters:
        raise ConfigError(f"--perturb-at must be an iteration from 1 to {iters}, got {perturb_at}")
    with tqdm(total=len(x), desc=f"dynamics{'' if size is None else f' size {size}'}",
              unit="ex", leave=False, disable=bar_disable(progress)) as bar:
        acc, norm, change = _curves(net, task, x, y, iters, batch_size, bar=bar)
    res = Dynamics(size=size, trained_iters=trained, iters=iters, images=len(x), accuracy=acc,
                   norm=norm, change=change, spectral_radius={}, path_independence={},
                   perturbation={}, period=None)
    best = res.best
    xs, ys = x[:n], y[:n]
    lags = range(1, min(16, iters - 1) + 1)
    keep = {trained, best, iters, *[iters - p for p in lags]}
    ref = _states_at(net, xs, iters, keep)
    gaps = {p: (_norms(ref[iters] - ref[iters - p]) / _norms(ref[iters]).clamp_min(1e-300)
                ).mean().item() for p in lags}
    # A return to an earlier state while still moving: a cycle of period p (fixed points excluded).
    if change[-1] >= CONVERGED_CHANGE:
        res.period = next((p for p in lags if gaps[p] < CYCLE_DISTANCE), None)
    for name, k in (("trained", trained), ("end", iters)):
        slot = min(k, (net.max_iters or k + 1) - 1)
        res.spectral_radius[name] = spectral_radius(
            net, ref[k], slot, xs, steps=power_steps, seed=seed).mean().item()
    gen = torch.Generator().manual_seed(seed + 1)
    if sees_input(net):
        h_t = ref[trained]
        scale = _norms(h_t).to(h_t.dtype).view(-1, *[1] * (h_t.dim() - 1))
        starts = {
            "another input's state": torch.roll(h_t, 1, 0),
            "noise": (torch.randn(h_t.shape, generator=gen).to(h_t)
                      * scale / math.sqrt(h_t[0].numel())),
            "zeros": torch.zeros_like(h_t)}
        res.path_independence = {}
        for name, start in starts.items():
            got = _states_at(net, xs, iters, {trained, best, iters}, start=start)
            res.path_independence[name] = {
                "cosine_end": _cosine(got[iters], ref[iters]).mean().item(),
                "accuracy_trained": _acc(net, task, got[trained], ys, xs),
                "accuracy_best": _acc(net, task, got[best], ys, xs),
                "accuracy_end": _acc(net, task, got[iters], ys, xs)}
        res.path_independence["reference"] = {
            "accuracy_trained": _acc(net, task, ref[trained], ys, xs),
            "accuracy_best": _acc(net, task, ref[best], ys, xs),
            "accuracy_end": _acc(net, task, ref[iters], ys, xs)}
    else:
        res.path_independence = NOT_APPLICABLE
    with torch.no_grad():
        h = next(s for k, s in enumerate(run_states(net, xs, perturb_at)) if k == perturb_at)
        u = torch.randn(h.shape, generator=gen).to(h)
        u = u / _norms(u).to(h.dtype).view(-1, *[1] * (h.dim() - 1))
        h_p = h + noise * _norms(h).to(h.dtype).view(-1, *[1] * (h.dim() - 1)) * u
        # Continue from the perturbed state at the iteration it was taken from (slots follow).
        states = {perturb_at: h_p}
        if iters > perturb_at:
            states.update(enumerate(net.iterate(xs, iters - perturb_at, start=h_p,
                                                first=perturb_at), start=perturb_at + 1))
    res.perturbation = {"at": perturb_at, "noise": noise, **{
        name: {"iteration": k, "accuracy": _acc(net, task, states[k], ys, xs),
               "accuracy_unperturbed": _acc(net, task, ref[k], ys, xs),
               "cosine": _cosine(states[k], ref[k]).mean().item()}
        for name, k in (("trained", trained), ("best", best)) if k >= perturb_at}}
    res.classification, res.line = classify(acc, norm, change, trained, res.period)
    return res


def norm_growth(norm: list[float]) -> float:
    """Geometric-mean growth of the state norm per iteration over the last half of the curve."""
    half = len(norm) // 2
    a, b = norm[half - 1] if half >= 1 else norm[0], norm[-1]
    steps = len(norm) - max(half, 1)
    if not all(map(math.isfinite, (a, b))):
        return math.inf
    if steps < 1 or a <= 0:
        return 1.0
    return (b / a) ** (1 / steps)


def classify(accuracy: list[float], norm: list[float], change: list[float], trained: int,
             period: int | None = None) -> tuple[str, str]:
    """(label, one line) for the curves: converges / overthinks / diverges / limit cycle."""
    iters = len(accuracy)
    peak = max(range(iters), key=lambda k: (accuracy[k], -k))
    growth = norm_growth(norm)
    settled = math.isfinite(change[-1]) and change[-1] < CONVERGED_CHANGE
    if growth > DIVERGING_GROWTH:
        state = f"the state diverges (norm x{growth:.2f} per iteration)"
        label = "diverges"
    elif settled:
        state = f"the state converges (relative change {change[-1]:.2g} at the end)"
        label = "converges"
    else:
        cycle = f" with period {period}" if period else ""
        state = (f"the state keeps moving in a bounded orbit{cycle} (relative change "
                 f"{change[-1]:.2g} per iteration, norm x{growth:.2f})")
        label = "limit cycle"
    drop = accuracy[peak] - accuracy[-1]
    if drop >= OVERTHINK_DROP and drop >= OVERTHINK_SHARE * accuracy[peak]:
        return "overthinks", (f"overthinks: peak {accuracy[peak]:.1f}% at iteration {peak + 1} "
                              f"(trained {trained}), {accuracy[-1]:.1f}% at {iters}; {state}")
    return label, (f"{label}: {accuracy[trained - 1]:.1f}% at the trained {trained}, "
                   f"{accuracy[-1]:.1f}% at {iters} (peak {accuracy[peak]:.1f}% at "
                   f"{peak + 1}); {state}")


def iteration_columns(trained: int, iters: int) -> list[int]:
    """The iterations shown in tables: 1, 2, ..., the trained count +-, then a doubling."""
    cols = set(range(1, min(trained + 3, iters) + 1))
    k = trained + 3
    while k < iters:
        cols.add(k)
        k *= 2
    cols.add(iters)
    return sorted(c for c in cols if 1 <= c <= iters)


def table_lines(results: list[Dynamics]) -> list[str]:
    """A plain-text table: accuracy per iteration, one row per size."""
    if not results:
        return []
    cols = iteration_columns(results[0].trained_iters, results[0].iters)
    t = results[0].trained_iters
    head = "size    " + " ".join(f"{str(c) + ('*' if c == t else ''):>6}" for c in cols)
    rows = [f"{str(r.size or '-'):<7} " + " ".join(f"{r.accuracy[c - 1]:6.1f}" for c in cols)
            for r in results]
    return ["accuracy (%) after iteration (* = trained)", head, *rows]


def plot_dynamics(results: list[Dynamics], path: str, *, title: str) -> None:
    """Accuracy, state norm and relative change per iteration, one line per size."""
    from recurdepth.analysis.plots import plt, save_figure

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, r in enumerate(results):
        ks = list(range(1, r.iters + 1))
        label = f"size {r.size}" if r.size is not None else "test set"
        axes[0].plot(ks, r.accuracy, "o-", ms=3, color=f"C{i}", label=label)
        axes[1].plot(ks, r.norm, "o-", ms=3, color=f"C{i}", label=label)
        axes[2].plot(ks, r.change, "o-", ms=3, color=f"C{i}", label=label)
    trained = results[0].trained_iters
    for ax, ylabel in zip(axes, ("accuracy (%)", "state norm ||h_k||",
                                 "relative change ||h_k - h_(k-1)|| / ||h_(k-1)||")):
        ax.axvline(trained, color="0.5", ls=":", label=f"trained ({trained})")
        ax.set_xlabel("iteration k")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    axes[0].set_ylim(-2, 102)
    for ax in axes[1:]:
        if all(v > 0 and math.isfinite(v) for r in results for v in (r.norm + r.change)):
            ax.set_yscale("log")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


__all__ = ["Dynamics", "analyze_dynamics", "NOT_APPLICABLE", "THRESHOLDS_TEXT", "classify", "iteration_columns",
           "model_dynamics", "norm_growth", "plot_dynamics", "run_states", "sees_input",
           "spectral_radius", "step", "table_lines"]


# -- a run folder: ``recurdepth analyze dynamics RUN`` ------------------------------------------

DEFAULT_IMAGES = 500


def analyze_dynamics(run_dir: Any, *, sizes: list[int] | None = None, mult: int = 8,
                     images: int | None = None, n: int = 100, noise: float = 0.1,
                     perturb_at: int = 1, power_steps: int = 50, seed: int = 0,
                     batch_size: int = 100, labels: list[str] | None = None,
                     out: Any = None, device: str = "cpu", data_root: Any = None,
                     progress: bool = True) -> Any:
    """Think-longer dynamics of a recurrent run for iterations 1..``mult`` x trained, per size.

    ``sizes``: maze sizes (or other example sizes) to test on (default: the run's); ``images``
    test examples per size (default 500, or all when fewer) for the curves, the first ``n`` of
    them for the spectral radius, restarts and perturbation. Writes dynamics.json, .csv, .png.
    """
    import time

    from recurdepth.analysis.runs import AnalysisOutput, load_analysable, output_folder
    from recurdepth.io import atomic_write_csv, atomic_write_json
    from recurdepth.training.data import eval_tensors

    for name, value, low in (("--mult", mult, 1), ("--n", n, 1), ("--power-steps", power_steps, 2),
                             ("--batch-size", batch_size, 1)):
        if value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
    if images is not None and images < 1:
        raise ConfigError(f"--images must be at least 1, got {images}")
    if not 0 <= noise:
        raise ConfigError(f"--noise must be >= 0 (a relative size), got {noise}")
    started = time.perf_counter()
    loaded = load_analysable(run_dir, "dynamics", device=device, data_root=data_root)
    cfg, model = loaded.config, loaded.model
    sized = cfg.task.sized
    if sizes and not sized:
        raise ConfigError(f"--sizes is for data sets made at a chosen size (mazes); "
                          f"{cfg.data.name!r} is not")
    sizes_: list[int | None] = list(dict.fromkeys(sizes)) if sizes else [cfg.example_size()]
    iters = mult * model.iters
    notes = []
    if model.max_iters is not None and iters > model.max_iters:
        notes.append(f"capped at {model.max_iters} iterations: the unit has per-iteration "
                     f"BatchNorm for that many")
        iters = model.max_iters
    results = []
    for size in sizes_:
        x, y = eval_tensors(cfg, "test", limit=images or DEFAULT_IMAGES, device=device,
                            maze_size=size if sized else None)
        torch.manual_seed(seed)
        r = model_dynamics(model, cfg.task, x, y, iters=iters, size=size, n=n, noise=noise,
                           perturb_at=perturb_at, power_steps=power_steps, seed=seed,
                           batch_size=batch_size, progress=progress)
        r.notes += notes
        results.append(r)
    seconds = time.perf_counter() - started
    folder = output_folder(run_dir, "dynamics", None, out)
    result = {"run": str(loaded.run_dir), "mode": model.mode, "trained_iters": model.iters,
              "iters": iters, "mult": mult, "recall": sees_input(model), "seed": seed,
              "thresholds": THRESHOLDS_TEXT, "seconds": seconds,
              "classification": results[0].classification, "line": results[0].line,
              "sizes": [r.to_dict() for r in results]}
    atomic_write_json(folder / "dynamics.json", result)
    atomic_write_csv(folder / "dynamics.csv",
                     ["size", "iteration", "accuracy", "state_norm", "relative_change"],
                     [[r.size, k + 1, r.accuracy[k], r.norm[k], r.change[k]]
                      for r in results for k in range(r.iters)])
    name = (labels or [Path(str(loaded.run_dir)).name])[0]
    plot_dynamics(results, str(folder / "dynamics.png"),
                  title=f"{name}: think-longer dynamics ({results[0].line})")
    lines = [f"{name}: {results[0].line}", *table_lines(results)]
    for r in results:
        where = f"size {r.size}" if r.size is not None else "test set"
        cols = iteration_columns(r.trained_iters, r.iters)
        lines.append(f"{where}: state norm " + ", ".join(
            f"{c}: {r.norm[c - 1]:.3g}" for c in cols))
        lines.append(f"{where}: relative change " + ", ".join(
            f"{c}: {r.change[c - 1]:.3g}" for c in cols))
        lines.append(f"{where}: spectral radius of the unit's Jacobian {r.spectral_radius['trained']:.3g} "
                     f"at the trained {r.trained_iters}, {r.spectral_radius['end']:.3g} at {r.iters}")
        if isinstance(r.path_independence, str):
            lines.append(f"{where}: path independence {r.path_independence}")
        else:
            lines.append(f"{where}: restarted from " + "; ".join(
                f"{k}: cosine to the reference end state {v['cosine_end']:.3f}, accuracy "
                f"{v['accuracy_trained']:.1f}% at {r.trained_iters}"
                for k, v in r.path_independence.items() if k != "reference"))
        lines.append(f"{where}: noise of relative size {noise:g} after iteration {perturb_at}: "
                     + "; ".join(f"accuracy {v['accuracy']:.1f}% (unperturbed "
                                 f"{v['accuracy_unperturbed']:.1f}%) at iteration "
                                 f"{v['iteration']} ({k})"
                                 for k, v in r.perturbation.items() if isinstance(v, dict)))
        lines += [f"{where}: note: {note}" for note in r.notes]
    lines.append(f"{seconds:.1f} s")
    return AnalysisOutput("dynamics", folder, [folder / f for f in (
        "dynamics.json", "dynamics.csv", "dynamics.png")], result, "\n".join(lines))
