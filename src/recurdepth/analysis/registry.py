"""The analysis registry: one place that knows every analysis of trained runs.

Each analysis is declared in its own torch-free file under :mod:`recurdepth.analysis.registered`
with :func:`register_analysis`: its name, the function that runs it, its options (the
``recurdepth analyze`` flags are generated from them), the run modes it accepts and the files it
writes. ``recurdepth analyze``, the analysis presets and ``recurdepth.analysis.analyze_*`` all
read this registry, so a new analysis is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recurdepth.errors import ConfigError, choices_message

# How an analysis takes run folders: one RUN_DIR, RUN_DIR plus an optional RUN_DIR2, or an
# optional RUN_DIR (the receptive field can be computed from a family name alone).
RUNS = ("one", "one-or-two", "optional")
MODES = ("recurrent", "feedforward")
# Arguments every run-reading analysis takes, set by its caller (CLI flags, preset runner).
COMMON = ("out", "device", "data_root", "progress")


@dataclass(frozen=True)
class Option:
    """One keyword argument of an analysis function and its ``recurdepth analyze`` flag."""

    name: str
    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[Any, ...] | None = None
    nargs: str | int | None = None
    metavar: str | None = None
    flag_only: bool = False  # a store_true switch

    def add_to(self, parser: Any) -> None:
        """Add this option's flag to an argparse parser."""
        if self.flag_only:
            parser.add_argument(*self.flags, dest=self.name, action="store_true", help=self.help)
            return
        kw: dict[str, Any] = {"dest": self.name, "default": self.default, "help": self.help}
        for key in ("type", "choices", "nargs", "metavar"):
            if getattr(self, key) is not None:
                kw[key] = getattr(self, key)
        parser.add_argument(*self.flags, **kw)


@dataclass(frozen=True)
class Analysis:
    """A registered analysis: what it is called, runs, accepts, takes and writes."""

    name: str
    function: str  # "module:attribute" of the analyze_* function, imported on first use
    help: str  # one line in `recurdepth analyze --help`
    description: str
    outputs: tuple[str, ...]  # files written into the analysis folder
    options: tuple[Option, ...] = ()
    runs: str = "one-or-two"
    second: str | None = None  # help of RUN_DIR2 when runs == "one-or-two"
    run_help: str = "a trained run folder"
    modes: tuple[str, ...] = MODES  # run modes it accepts
    refuse: str = ""  # why other modes are refused (one line)
    batch_size: int | None = 100  # default of --batch-size; None: no such argument
    common: bool = True  # takes --device, --data-root, --quiet (and out)
    order: int = 100  # position in listings
    examples: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_name(self) -> str:
        """Name of its function in :mod:`recurdepth.analysis`."""
        return self.function.rpartition(":")[2]

    def load(self) -> Callable[..., Any]:
        """The analysis function (imports its module, which may import torch)."""
        module, _, attr = self.function.partition(":")
        return getattr(importlib.import_module(module), attr)

    def option_names(self) -> list[str]:
        """Keyword arguments a preset or caller may set (besides the runner's own)."""
        return [o.name for o in self.options] + (["batch_size"] if self.batch_size else [])

    def check_mode(self, mode: str, run_dir: Any) -> None:
        """One-line ConfigError when runs of ``mode`` cannot be analysed this way."""
        if mode not in self.modes:
            raise ConfigError(f"{run_dir}: the {self.name} analysis takes "
                              f"{' or '.join(self.modes)} runs, not {mode} ones: {self.refuse}")


_ANALYSES: dict[str, Analysis] = {}
_LOADED = False


def register_analysis(analysis: Analysis) -> Analysis:
    """Add ``analysis`` to the registry (ValueError for a taken name or a bad declaration)."""
    if analysis.name in _ANALYSES:
        raise ValueError(f"analysis {analysis.name!r} is already registered")
    if analysis.runs not in RUNS:
        raise ValueError(f"analysis {analysis.name!r}: runs must be one of {RUNS}")
    if not set(analysis.modes) <= set(MODES):
        raise ValueError(f"analysis {analysis.name!r}: modes must be among {MODES}")
    _ANALYSES[analysis.name] = analysis
    return analysis


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import recurdepth.analysis.registered as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def analyses() -> list[Analysis]:
    """Every registered analysis, in listing order."""
    _load()
    return sorted(_ANALYSES.values(), key=lambda a: (a.order, a.name))


def list_analyses() -> list[str]:
    """Names of the registered analyses, in listing order."""
    return [a.name for a in analyses()]


def get_analysis(name: str) -> Analysis:
    """The analysis called ``name`` (ConfigError listing them when unknown)."""
    _load()
    if name not in _ANALYSES:
        raise ConfigError(choices_message("analysis", name, list_analyses()))
    return _ANALYSES[name]


def check_options(name: str, options: Any, where: str = "") -> None:
    """ConfigError naming an option that analysis ``name`` does not take."""
    valid = get_analysis(name).option_names()
    for key in options:
        if key not in valid:
            raise ConfigError(choices_message(f"{name} option", key, valid) + where)


__all__ = ["Analysis", "COMMON", "MODES", "Option", "RUNS", "analyses", "check_options",
           "get_analysis", "list_analyses", "register_analysis"]
