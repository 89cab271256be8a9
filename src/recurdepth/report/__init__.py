"""Reports from a results database: the paper's plots, tables (Markdown + CSV) and an index page.

``write_report(db)`` reads the database and the ``eval.json`` of its runs' folders (evaluations
saved by ``recurdepth eval``), so the same database and run folders always give the same files.
The verdict on the paper's claim is computed from it too (:mod:`recurdepth.report.verdict`).
``index.html`` embeds its figures, so it opens from any folder; every figure is also an SVG.
The package is callable: ``recurdepth.report("runs/quick")`` is :func:`report`.
"""

from __future__ import annotations

import base64
import html
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from recurdepth.errors import DataError
from recurdepth.experiments.store import ResultStore, RunRecord
from recurdepth.io import atomic_write_text
from recurdepth.report.plots import (
    plot_accuracy_vs_depth,
    plot_accuracy_vs_iterations,
    plot_learning_curves,
    plot_saved_evaluations,
)
from recurdepth.report.results import GroupStat, fmt_int, group_results, load_saved_evals
from recurdepth.report.tables import Table, depth_table, eval_tables, model_table, results_table
from recurdepth.report.thinking import thinking_longer
from recurdepth.report.verdict import (
    HALF_A,
    HALF_B,
    PAPER_CLAIM,
    RULE,
    PanelVerdict,
    panel_verdicts,
    verdict_lines,
    verdict_markdown,
)


@dataclass
class ReportFiles:
    """Paths of everything a report wrote; ``index`` is the page that links them."""

    folder: Path
    index: Path
    index_html: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    groups: list[GroupStat] = field(default_factory=list)
    verdicts: list[PanelVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each: skipped eval.json data

    def verdict_text(self) -> str:
        """The verdict as plain text for the terminal ('' when no panel has both modes)."""
        return "\n".join(verdict_lines(self.verdicts))


def _runs_table(records: list[RunRecord]) -> Table:
    header = ["run", "status", "effective depth", "parameters", "test acc (%)", "train acc (%)",
              "note"]
    csv_header = ["id", "name", "status", "effective_depth", "parameters", "test_acc", "train_acc",
                  "error"]
    rows, csv_rows = [], []
    for r in records:
        res = r.result or {}
        test, train = res.get("test_acc"), res.get("train_acc")
        error = (r.error or "").splitlines()[0] if r.error else ""
        rows.append([r.name, r.status, fmt_int(r.effective_depth), fmt_int(r.parameters),
                     "–" if test is None else f"{test:.2f}",
                     "–" if train is None else f"{train:.2f}", error.replace("|", "\\|")])
        csv_rows.append([r.id, r.name, r.status, r.effective_depth, r.parameters, test, train,
                         error])
    return Table("runs", "Every run", header, rows, csv_header, csv_rows)


GENERATOR = "<meta name='generator' content='recurdepth report'>"


def _check_ours(index_html: Path) -> None:
    """DataError when ``index_html`` exists and is not a report of ours (never overwrite it)."""
    if not index_html.exists():
        return
    try:
        head = index_html.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError as e:
        raise DataError(f"cannot read {index_html}: {e.strerror}") from None
    # Reports written before the generator tag carry their results-database line.
    if GENERATOR not in head and "<p>Results database: " not in head:
        raise DataError(f"{index_html} exists and was not written by recurdepth: not "
                        f"overwriting it; choose another --out folder or move that file")


def write_report(db_path: str | Path, out_dir: str | Path | None = None) -> ReportFiles:
    """Write plots, tables and ``index.md`` / ``index.html`` for the results in ``db_path``.

    Saved evaluations that cannot be used (an unreadable eval.json, a stale entry) are left out
    and listed in ``ReportFiles.warnings``.
    """
    db_path = Path(db_path)
    with ResultStore.open_existing(db_path) as store:
        meta = store.meta()
        records = store.records()
        counts = store.status_counts()
    folder = Path(out_dir) if out_dir is not None else db_path.parent / "report"
    _check_ours(folder / "index.html")
    folder.mkdir(parents=True, exist_ok=True)
    name = meta.get("name", "?")
    saved_evals, warnings = load_saved_evals(records)
    groups = group_results(records, saved_evals)
    figures: list[tuple[str, Path]] = []
    fig = plot_accuracy_vs_depth(groups, folder / "accuracy_vs_depth.png",
                                 title=f"{name}: accuracy vs effective depth "
                                       f"(mean ± standard error over trials)")
    if fig:
        figures.append(("Accuracy vs effective depth", fig))
    fig = plot_accuracy_vs_iterations(groups, folder / "accuracy_vs_iterations.png",
                                      title=f"{name}: recurrent models, accuracy vs test-time "
                                            f"iterations (mean ± standard error over trials; ★ "
                                            f"and dotted line = trained iterations)")
    if fig:
        figures.append(("Accuracy vs test-time iterations", fig))
    fig = plot_saved_evaluations(groups, folder / "saved_evaluations.png",
                                 title=f"{name}: recurrent models in saved evaluations (recurdepth "
                                       f"eval), accuracy vs test-time iterations on other test "
                                       f"sizes or splits (★ = trained iterations)")
    if fig:
        figures.append(("Saved evaluations: other test sizes and splits", fig))
    fig = plot_learning_curves(groups, folder / "learning_curves.png",
                               title=f"{name}: learning curves, test (solid) and train (dashed, "
                                     f"no augmentation) accuracy per epoch, one line per run")
    if fig:
        figures.append(("Learning curves", fig))
    # Thinking longer: dynamics of the recurrent runs past their trained iterations.
    thinking = thinking_longer(records, folder, title=f"{name}: thinking longer, mean over each "
                               f"depth's trials (dotted: trained iterations)")
    if thinking.figure:
        figures.append(("Thinking longer: accuracy, state norm and change per iteration",
                        thinking.figure))
    warnings += thinking.warnings
    verdicts = panel_verdicts(groups)
    tables = [depth_table(groups), model_table(groups), results_table(groups),
              *eval_tables(groups), *([thinking.table] if thinking.table else []),
              _runs_table(records)]
    table_paths: list[Path] = []
    for t in tables:
        table_paths += list(t.write(folder))

    status_line = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs"
    md = [f"# {name}", "",
          f"Results database: `{db_path.name}` · spec hash `{meta.get('spec_hash')}` · "
          f"{len(records)} runs ({status_line}) · {_trials_line(groups)}.", ""]
    if meta.get("description"):  # what the experiment is (a smoke run says so here)
        md += [f"*{meta['description']}*", ""]
    if meta.get("placement"):
        md += [f"Runs placed by the latest sweep: {meta['placement']}.", ""]
    md += verdict_markdown(verdicts)
    for title, path in figures:
        md += [f"## {title}", "", f"![{title}]({path.name}) ([SVG]({path.with_suffix('.svg').name}))",
               ""]
    for t in tables:
        md += [f"## {t.title}", "", f"[Markdown]({t.name}.md) · [CSV]({t.name}.csv)", "",
               *([t.note, ""] if t.note else []), t.markdown()]
    index = atomic_write_text(folder / "index.md", "\n".join(md))
    index_html = atomic_write_text(folder / "index.html",
                                   _html(name, md[2], figures, tables, verdicts,
                                         meta.get("description", "")))
    return ReportFiles(folder=folder, index=index, index_html=index_html,
                       figures=[p for _, p in figures], tables=table_paths, groups=groups,
                       verdicts=verdicts, warnings=warnings)


def _note_html(note: str) -> str:
    """A table's note as HTML: its text, then its ``- item`` lines (markdown) as a list."""
    e = html.escape
    text, *items = note.split("\n- ")
    listed = "<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>" if items else ""
    return f"<p>{e(text)}</p>{listed}"


# On load, the page records whether every image decoded (used by the browser test).
def _trials_line(groups: list[GroupStat]) -> str:
    """``3 trial(s) per configuration``, counted from the runs (a swept seed is a trial too)."""
    sizes = sorted({g.runs for g in groups if g.trained_as is None})
    if not sizes:
        return "no configurations"
    count = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    return f"{count} trial(s) per configuration"


_IMAGES_CHECK = ("<script>window.addEventListener('load',function(){var imgs=document.images,"
                 "ok=imgs.length>0;for(var i=0;i<imgs.length;i++){if(!imgs[i].complete||"
                 "imgs[i].naturalWidth===0){ok=false;}}document.getElementById('images-status')"
                 ".textContent=(ok?'images-ok ':'images-broken ')+imgs.length;});</script>")


def _verdict_html(verdicts: list[PanelVerdict]) -> list[str]:
    e = html.escape
    if not verdicts:
        return []
    parts = ["<section id='verdict'><h2>Verdict</h2>", f"<p><em>{e(PAPER_CLAIM)}</em></p>"]
    for v in verdicts:
        parts.append(f"<h3>{e(v.panel)}</h3><p><strong>{e(v.headline())}</strong></p>"
                     f"<p>{e(HALF_A)}:</p><ul>")
        parts += [f"<li>{e(d.line())}</li>" for d in v.depths]
        parts.append(f"</ul><p><strong>{e(v.overall())}</strong></p><p>{e(HALF_B)}:</p><ul>")
        parts += [f"<li>{e(p.line())}</li>" for p in v.parameters]
        parts.append(f"</ul><p><strong>{e(v.parameter_overall())}</strong></p><ul>")
        parts += [f"<li>convergence, {e(label)}: {e(line)}</li>" for label, line in v.convergence]
        parts.append("</ul>")
    parts.append(f"<p><small>{e(RULE)}</small></p></section>")
    return parts


def _html(name: str, summary: str, figures: list[tuple[str, Path]], tables: list[Table],
          verdicts: list[PanelVerdict], description: str = "") -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", f"<html><head><meta charset='utf-8'>{GENERATOR}",
             f"<title>{e(name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}#images-status{display:none}</style></head><body>",
             f"<h1>{e(name)}</h1>", f"<p>{e(summary.replace('`', ''))}</p>"]
    if description:
        parts.append(f"<p><em>{e(description)}</em></p>")
    parts += _verdict_html(verdicts)
    for title, path in figures:
        # Embedded, so the page shows its figures wherever it is copied.
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        svg = path.with_suffix(".svg").name
        parts += [f"<h2>{e(title)}</h2>",
                  f"<img src='data:image/png;base64,{data}' alt='{e(title)}'>",
                  f"<p><a href='{e(path.name)}'>PNG</a> · <a href='{e(svg)}'>SVG</a></p>"]
    for t in tables:
        parts += [f"<h2>{e(t.title)}</h2>",
                  f"<p><a href='{t.name}.md'>Markdown</a> · <a href='{t.name}.csv'>CSV</a></p>",
                  _note_html(t.note) if t.note else "",
                  "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr>"]
        parts += ["<tr>" + "".join(f"<td>{e(c.replace(chr(92) + '|', '|'))}</td>" for c in row)
                  + "</tr>" for row in t.rows]
        parts.append("</table>")
    parts += ["<div id='images-status'>images-pending</div>", _IMAGES_CHECK, "</body></html>"]
    return "\n".join(parts) + "\n"


def find_db(target: str | Path, out: str | Path | None = None) -> Path:
    """The results database meant by a file, a sweep folder or an experiment name / YAML."""
    from recurdepth.errors import DataError
    from recurdepth.experiments.spec import load_experiment
    from recurdepth.experiments.store import DB_NAME
    from recurdepth.experiments.sweep import db_path_for, default_out_dir

    target = str(target)
    path = Path(target)
    if path.is_file() and not target.endswith((".yaml", ".yml")):
        return path
    if path.is_dir():
        if (path / DB_NAME).is_file():
            return path / DB_NAME
        sweeps = sorted(p.parent for p in path.glob(f"*/{DB_NAME}"))
        hint = f" (sweep folders inside it: {', '.join(map(str, sweeps[:3]))})" if sweeps else ""
        raise DataError(f"{path} holds no {DB_NAME}; give the sweep's output folder or "
                        f"database{hint}")
    if path.suffix == ".sqlite" or (("/" in target or "\\" in target)
                                    and path.suffix not in (".yaml", ".yml")):
        raise DataError(f"{path} does not exist; give a sweep's output folder, its {DB_NAME}, "
                        f"or an experiment preset name")
    experiment = load_experiment(target)
    db = db_path_for(out if out is not None else default_out_dir(experiment))
    if not db.is_file():
        raise DataError(f"no results database for experiment {experiment.name!r} at {db}; run "
                        f"`recurdepth sweep {target}` first (or pass --out to its folder)")
    from recurdepth.experiments.store import ResultStore

    with ResultStore.open_existing(db) as store:
        stored = store.meta().get("name")
    if stored != experiment.name:  # as sweep refuses it: never report one experiment as another
        raise DataError(f"{db} holds the results of experiment {stored!r}, not "
                        f"{experiment.name!r}; report that folder on its own (`recurdepth report "
                        f"{db.parent}`) or give {experiment.name!r}'s own --out folder")
    return db


def report(target: str | Path, report_dir: str | Path | None = None, *,
           out: str | Path | None = None) -> ReportFiles:
    """Write the report of a sweep folder, a results database or an experiment (by name)."""
    return write_report(find_db(target, out), report_dir)


class _CallableModule(types.ModuleType):
    """Lets ``recurdepth.report(...)`` call :func:`report` while the package stays importable."""

    def __call__(self, target: str | Path, report_dir: str | Path | None = None, *,
                 out: str | Path | None = None) -> ReportFiles:
        return report(target, report_dir, out=out)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["ReportFiles", "find_db", "report", "write_report"]
