"""The paper's tables in Markdown and CSV: all results, Table 2 style (depth × mode) and
Table 1 style (model × data set), each with parameter counts; and the runs' saved evaluations
(``recurdepth eval``: more test-time iterations, other maze sizes) when some run has them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from recurdepth.io import atomic_write_text, csv_text
from recurdepth.report.results import (
    GroupStat,
    fmt_acc,
    fmt_int,
    iteration_stats,
    mean_se,
    panels,
)

MODE_LABEL = {"recurrent": "recurrent", "feedforward": "feed-forward"}


@dataclass(frozen=True)
class Table:
    """A titled table: Markdown cells for reading, raw values for CSV."""

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]
    csv_header: list[str]
    csv_rows: list[list[object]]
    note: str = ""  # what the numbers are, printed under the title

    def markdown(self) -> str:
        """The table as GitHub Markdown (no title)."""
        lines = ["| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        """The table as CSV with raw numbers (empty cell = no value)."""
        return csv_text(self.csv_header, ([None if v is None else _csv_value(v) for v in row]
                                          for row in self.csv_rows))

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``<name>.md`` (with title) and ``<name>.csv`` into ``folder``."""
        folder = Path(folder)
        note = f"{self.note}\n\n" if self.note else ""
        md = atomic_write_text(folder / f"{self.name}.md",
                               f"# {self.title}\n\n{note}{self.markdown()}")
        cs = atomic_write_text(folder / f"{self.name}.csv", self.csv())
        return md, cs


def _csv_value(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _mode(mode: str) -> str:
    return MODE_LABEL.get(mode, mode)


def results_table(groups: Sequence[GroupStat]) -> Table:
    """Every configuration: data set, family, mode, depth, width, parameters, accuracies."""
    header = ["data set", "family", "mode", "effective depth", "iters", "width", "parameters",
              "trials", "test acc (%)", "train acc (%)"]
    csv_header = ["panel", "dataset", "family", "mode", "effective_depth", "iters", "width",
                  "parameters", "runs", "completed", "test_acc_mean", "test_acc_se",
                  "train_acc_mean", "train_acc_se"]
    rows, csv_rows = [], []
    for g in groups:
        extra = "".join(f", {k.rsplit('.', 1)[-1]}={v}" for k, v in g.extra.items())
        mode = _mode(g.mode) + (f" (the {_mode(g.trained_as)} runs: one iteration)"
                                if g.trained_as else "")
        rows.append([g.dataset + extra, g.family, mode, fmt_int(g.effective_depth),
                     fmt_int(g.iters), fmt_int(g.width), fmt_int(g.parameters),
                     f"{g.done}/{g.runs}", fmt_acc(*g.test), fmt_acc(*g.train)])
        csv_rows.append([g.panel, g.dataset, g.family, g.mode, g.effective_depth, g.iters,
                         g.width, g.parameters, g.runs, g.done, *g.test, *g.train])
    return Table("results", "All results (mean ± standard error over trials)", header, rows,
                 csv_header, csv_rows)


def depth_table(groups: Sequence[GroupStat]) -> Table:
    """Table 2 style: per panel and effective depth, recurrent vs feed-forward with parameters."""
    header = ["data set · family", "effective depth", "recurrent acc (%)", "feed-forward acc (%)",
              "recurrent params", "feed-forward params"]
    csv_header = ["panel", "effective_depth", "recurrent_acc_mean", "recurrent_acc_se",
                  "recurrent_trials", "feedforward_acc_mean", "feedforward_acc_se",
                  "feedforward_trials", "recurrent_parameters", "feedforward_parameters"]
    rows, csv_rows = [], []
    for panel, gs in panels(groups).items():
        for depth in sorted({g.effective_depth for g in gs if g.effective_depth is not None}):
            rec = next((g for g in gs if g.effective_depth == depth and g.mode == "recurrent"), None)
            ff = next((g for g in gs if g.effective_depth == depth and g.mode == "feedforward"),
                      None)
            rows.append([panel, str(depth), fmt_acc(*rec.test) if rec else "–",
                         fmt_acc(*ff.test) if ff else "–", fmt_int(rec.parameters if rec else None),
                         fmt_int(ff.parameters if ff else None)])
            csv_rows.append([panel, depth, *(rec.test if rec else (None, None)),
                             rec.done if rec else None, *(ff.test if ff else (None, None)),
                             ff.done if ff else None, rec.parameters if rec else None,
                             ff.parameters if ff else None])
    shared = sorted({(g.effective_depth, g.trained_as) for g in groups if g.trained_as})
    note = " ".join(f"Depth {d} is one iteration, where both modes are the same network: it was "
                    f"trained once (as {_mode(m)}) and its runs fill both columns."
                    for d, m in shared)
    return Table("depth_table", "Recurrent vs feed-forward at each effective depth "
                 "(Table 2 style; mean ± standard error)", header, rows, csv_header, csv_rows,
                 note=note)


def model_table(groups: Sequence[GroupStat]) -> Table:
    """Table 1 style: one row per model (family, mode, depth), one column pair per data set."""
    datasets = sorted({g.dataset for g in groups})
    models = sorted({(g.family, g.mode, g.effective_depth or 0,
                      tuple(sorted(g.extra.items()))) for g in groups})
    header = ["model", "effective depth"]
    csv_header = ["family", "mode", "effective_depth", "extra"]
    for d in datasets:
        header += [f"{d} acc (%)", f"{d} params"]
        csv_header += [f"{d}_acc_mean", f"{d}_acc_se", f"{d}_parameters"]
    rows, csv_rows = [], []
    for family, mode, depth, extra in models:
        extra_txt = "".join(f", {k.rsplit('.', 1)[-1]}={v}" for k, v in extra)
        row = [f"{family} ({_mode(mode)}{extra_txt})", str(depth)]
        csv_row: list[object] = [family, mode, depth, extra_txt.lstrip(", ")]
        for d in datasets:
            g = next((g for g in groups if (g.family, g.mode, g.effective_depth or 0,
                                            tuple(sorted(g.extra.items())), g.dataset)
                      == (family, mode, depth, extra, d)), None)
            row += [fmt_acc(*g.test) if g else "–", fmt_int(g.parameters) if g else "–"]
            csv_row += [*(g.test if g else (None, None)), g.parameters if g else None]
        rows.append(row)
        csv_rows.append(csv_row)
    return Table("model_table", "Models by data set (Table 1 style; mean ± standard error)",
                 header, rows, csv_header, csv_rows)


def eval_tables(groups: Sequence[GroupStat]) -> list[Table]:
    """The saved evaluations: a summary per group and setting, and every iteration count.

    Empty when no run has saved evaluations. Mean ± standard error over the trials that were
    evaluated in that setting (at each iteration count: the trials evaluated that far).
    """
    rows_in = [(g, setting, g.evals[setting]) for g in groups for setting in g.eval_settings()]
    if not rows_in:
        return []
    ident_h = ["data set · family", "mode", "effective depth", "trained iters", "tested on"]
    ident_csv = ["panel", "dataset", "family", "mode", "effective_depth", "trained_iters",
                 "split", "maze_size", "samples_limit"]
    header = [*ident_h, "trials", "samples", "acc at trained iters (%)", "most iters",
              "acc at most iters (%)", "best acc (%) @ iters"]
    csv_header = [*ident_csv, "trials", "samples", "acc_mean", "acc_se", "max_iters",
                  "max_iters_acc_mean", "max_iters_acc_se", "best_iters", "best_acc_mean"]
    step_header = [*ident_h, "iters", "trials", "acc (%)"]
    step_csv_header = [*ident_csv, "iters", "trials", "acc_mean", "acc_se"]
    rows, csv_rows, step_rows, step_csv_rows = [], [], [], []
    for g, setting, evals in rows_in:
        ident = [g.panel, _mode(g.mode), fmt_int(g.effective_depth), fmt_int(g.iters),
                 setting.label(g.data_name)]
        ident_raw = [g.panel, g.dataset, g.family, g.mode, g.effective_depth, g.iters,
                     setting.split, setting.maze_size, setting.limit]
        samples = {e.samples for e in evals}
        n_samples = samples.pop() if len(samples) == 1 else None  # trials should agree
        acc = mean_se([e.acc for e in evals])
        stats = iteration_stats([e.per_iter for e in evals if e.per_iter])
        last = stats[-1] if stats else None
        best = max(stats, key=lambda st: st[1]) if stats else None  # first best on ties
        rows.append([*ident, str(len(evals)), fmt_int(n_samples), fmt_acc(*acc),
                     fmt_int(last[0] if last else None),
                     fmt_acc(last[1], last[2]) if last else "–",
                     f"{best[1]:.2f} @ {best[0]}" if best else "–"])
        csv_rows.append([*ident_raw, len(evals), n_samples, *acc,
                         last[0] if last else None, *(last[1:3] if last else (None, None)),
                         best[0] if best else None, best[1] if best else None])
        for it, m, se, n in stats:
            step_rows.append([*ident, str(it), str(n), fmt_acc(m, se)])
            step_csv_rows.append([*ident_raw, it, n, m, se])
    title = ("Saved evaluations (the run's own test sizes, and `recurdepth eval` in eval.json; "
             "mean ± standard error over trials)")
    tables = [Table("evaluations", title, header, rows, csv_header, csv_rows)]
    if step_rows:
        tables.append(Table("evaluations_per_iter", "Saved evaluations per test-time iteration "
                            "count (mean ± standard error over the trials evaluated that far)",
                            step_header, step_rows, step_csv_header, step_csv_rows))
    return tables


__all__ = ["Table", "depth_table", "eval_tables", "model_table", "results_table"]
