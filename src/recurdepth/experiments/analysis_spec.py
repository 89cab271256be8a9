"""Analysis presets: the paper's analysis results (Tables 3, 6, 7, Figure 6, the CKA values,
Figure 8) as files naming the experiment whose runs they analyse, the analysis and its options,
and the paper's numbers. :mod:`recurdepth.report.paper_analyses` runs them.

An analysis preset (YAML, shipped in ``experiments/analysis_presets``)::

    name: table3_probes
    title: "Tables 3 and 6: ..."     # the table's and figure's title
    description: ...
    of: fig2_cifar10                 # the experiment preset the analysed runs come from
    trials: 3                        # trials of each configuration analysed (seed = base + t)
    runs:                            # label -> grid values picking one configuration
      feed-forward: {model.family: residual, model.mode: feedforward, model.effective_depth: 19}
      recurrent: {model.family: residual, model.mode: recurrent, model.effective_depth: 19}
    analysis: probes                 # a registered analysis with a paper table (ANALYSES)
    groups: [[feed-forward, recurrent]]   # the runs analysed together (one analysis call each)
    options: {pool: [none, 4]}       # keyword arguments of recurdepth.analysis.analyze_<analysis>
    paper: [...]                     # the paper's numbers (per analysis, see the table builders)
    quick: {overrides: [...], trials: 1, options: {...}}   # the CPU-sized smoke form
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError, check_keys, choices_message
from recurdepth.io import read_yaml

PRESET_KEYS = ("name", "title", "description", "of", "trials", "runs", "analysis", "groups", "options",
               "paper", "quick")
QUICK_KEYS = ("overrides", "trials", "options")
# Registered analyses (recurdepth.analysis.registry) that have a paper table
# (recurdepth.report.paper_analyses.TABLES).
ANALYSES = ("reuse", "probes", "cka", "featviz")


@dataclass(frozen=True)
class AnalysisPreset:
    """A parsed analysis preset; :func:`run_analysis_preset` runs it."""

    name: str
    of: str
    runs: dict[str, dict[str, Any]]
    analysis: str
    groups: list[list[str]]
    trials: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    paper: list[dict[str, Any]] = field(default_factory=list)
    quick: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    source: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None) -> AnalysisPreset:
        """Parse and check an analysis preset mapping (ConfigError naming the bad key)."""
        where = f" in {source}" if source else ""
        if not isinstance(d, Mapping):
            raise ConfigError(f"an analysis preset must be a mapping{where}")
        check_keys(d, PRESET_KEYS, "analysis-preset", where)
        for key in ("name", "of", "runs", "analysis", "groups"):
            if not d.get(key):
                raise ConfigError(f"the analysis preset needs {key!r}{where}")
        if d["analysis"] not in ANALYSES:
            raise ConfigError(choices_message("preset analysis (one with a paper table)",
                                              d["analysis"], ANALYSES) + where)
        runs = {str(k): dict(v) for k, v in dict(d["runs"]).items()}
        groups = [[str(x) for x in g] for g in d["groups"]]
        for g in groups:
            bad = [x for x in g if x not in runs]
            if bad or not 1 <= len(g) <= 2:
                raise ConfigError(f"group {g} must name one or two of the runs "
                                  f"({', '.join(runs)}){where}")
        for opts in (d.get("options") or {}, (d.get("quick") or {}).get("options") or {}):
            _check_options(d["analysis"], opts, where)
        quick = dict(d.get("quick") or {})
        check_keys(quick, QUICK_KEYS, "quick", where)
        return cls(name=str(d["name"]), of=str(d["of"]), runs=runs, analysis=d["analysis"],
                   groups=groups, trials=int(d.get("trials", 1)),
                   options=dict(d.get("options") or {}), paper=list(d.get("paper") or []),
                   quick=quick, title=str(d.get("title") or d["name"]),
                   description=" ".join(str(d.get("description", "")).split()),
                   source=source)

    def experiment(self, *, quick: bool = False) -> Any:
        """The experiment that trains the analysed runs (the quick form's when ``quick``)."""
        from recurdepth.experiments.spec import load_experiment

        full = load_experiment(self.of).subset(list(self.runs.values()), trials=self.trials)
        if not quick:
            return full
        return full.with_overrides(list(self.quick.get("overrides", [])),
                                   trials=self.quick.get("trials", self.trials))

    def analysis_options(self, *, quick: bool = False) -> dict[str, Any]:
        """Keyword arguments of the analysis function (the quick form's merged in)."""
        return {**self.options, **(self.quick.get("options", {}) if quick else {})}


def _folder() -> Any:
    return resources.files("recurdepth.experiments") / "analysis_presets"


def list_analysis_presets() -> list[str]:
    """Names of the analysis presets shipped with the package, sorted."""
    return sorted(p.name[: -len(".yaml")] for p in _folder().iterdir() if p.name.endswith(".yaml"))


def analysis_preset_path(name: str) -> Path:
    """Path of the shipped analysis preset ``name`` (ConfigError listing them when unknown)."""
    if name not in list_analysis_presets():
        raise ConfigError(choices_message("analysis preset", name, list_analysis_presets()))
    return Path(str(_folder() / f"{name}.yaml"))


def load_analysis_preset(name: str) -> AnalysisPreset:
    """Load a shipped analysis preset by name."""
    path = analysis_preset_path(name)
    return AnalysisPreset.from_dict(read_yaml(path, what="analysis preset"), source=str(path))



def _check_options(analysis: str, options: Mapping[str, Any], where: str) -> None:
    """ConfigError naming an option that the registered analysis does not take."""
    from recurdepth.analysis.registry import check_options

    check_options(analysis, options, where)


__all__ = ["ANALYSES", "AnalysisPreset", "analysis_preset_path", "list_analysis_presets",
           "load_analysis_preset"]
