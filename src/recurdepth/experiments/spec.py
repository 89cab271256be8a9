"""Experiment files: a base run config, a grid and a number of trials, expanded into named runs.

An experiment file (YAML) has these keys::

    name: fig5_mazes_small        # identifies the experiment (and its results database)
    description: ...              # free text
    trials: 3                     # seed = base seed + trial
    base: {model: {...}, data: {...}, optim: {...}, train: {...}, runtime: {...}, seed: 0}
    grid:                         # dotted keys -> lists; the runs are the Cartesian product
      model.mode: [recurrent, feedforward]
      model.effective_depth: [8, 12, 16]
    rules:                        # optional, applied in order after the grid (per-depth settings)
      - when: {model.effective_depth: [8]}
        set: {optim.lr: 0.1}
    prepare:                      # optional: data sets the sweep generates when missing
      mazes: {n_train: 50000, n_test: 10000, seed: 0}

``grid`` may also be a list of such mappings (a union of products), e.g. Table 1 compares a
recurrent family with a fixed-depth ResNet-18 that has no ``effective_depth`` axis.
Everything is validated when the experiment is expanded, before any run starts: unknown keys,
values that build no valid model (checked with ``build_model`` on the meta device) and
duplicated runs are refused with a ConfigError.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recurdepth.errors import ConfigError, check_keys, choices_message
from recurdepth.io import read_yaml
from recurdepth.paths import check_name
from recurdepth.training.config import RunConfig, identity_hash, resolve_portable

if TYPE_CHECKING:
    import torch

EXPERIMENT_KEYS = ("name", "description", "trials", "base", "grid", "rules", "prepare")
def prepare_keys() -> dict[str, tuple[str, ...]]:
    """Data sets an experiment may generate (``prepare:`` entries) and their settings."""
    from recurdepth.data.registry import get_dataset, list_datasets

    return {name: get_dataset(name).prepare_settings for name in list_datasets()
            if get_dataset(name).generated}


# Short labels used in run names, e.g. "recurrent-d8-t0".
_NAME_PREFIX = {"effective_depth": "d", "iters": "it", "width": "w", "maze_size": "s",
                "eval_maze_size": "es", "size": "s", "eval_size": "es", "dilation": "dil", "lr": "lr",
                "epochs": "ep", "batch_size": "bs", "train_limit": "n"}


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every hash in this module."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, length: int = 16) -> str:
    """A stable hex digest of ``obj`` (SHA-256 of its canonical JSON)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for ``key = "a.b"``, creating sections as needed."""
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def get_dotted(tree: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """Return ``tree["a"]["b"]`` for ``key = "a.b"`` or ``default`` when absent."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def run_id(config: RunConfig) -> str:
    """The stable id of a run: the start of the hash of its identity (what changes the learning).

    Equal for configs that differ only in where and how the run happens (data folder, device,
    progress bars), its name, its number of epochs or what is evaluated, so raising
    ``train.epochs`` continues the same run.
    """
    return identity_hash(resolve_portable(config))[:16]


def build_meta_model(config: RunConfig) -> torch.nn.Module:
    """Build the model of a resolved ``config`` on the meta device (structure, no memory)."""
    import torch

    from recurdepth.training.run import make_model

    with torch.device("meta"):
        return make_model(config)


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: its name, id, grid values, resolved config and model size."""

    name: str
    run_id: str
    params: dict[str, Any]
    config: RunConfig
    parameters: int
    effective_depth: int
    iters: int | None

    @property
    def folder_name(self) -> str:
        """The run folder's name: readable and unique (the name plus the start of the id)."""
        return f"{self.name}_{self.run_id[:8]}"


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file; ``runs()`` expands and validates it."""

    name: str
    base: dict[str, Any]
    grid: list[dict[str, list[Any]]]
    trials: int = 1
    rules: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    prepare: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    source: str | None = None
    data_root: str | None = None  # where the data lives; not part of the experiment's identity

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None) -> Experiment:
        """Parse and check the structure of an experiment mapping (ConfigError on mistakes)."""
        where = f" in {source}" if source else ""
        if not isinstance(d, Mapping):
            raise ConfigError(f"an experiment file must be a mapping{where}")
        check_keys(d, EXPERIMENT_KEYS, "experiment", where)
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"the experiment needs a non-empty 'name'{where}")
        check_name(name.strip(), f"experiment name{where}")  # it names the output folder
        trials = d.get("trials", 1)
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise ConfigError(f"'trials' must be a positive integer, got {trials!r}{where}")
        base = d.get("base") or {}
        if not isinstance(base, Mapping):
            raise ConfigError(f"'base' must be a mapping (a run config){where}")
        grid_raw = d.get("grid") or {}
        grids = [grid_raw] if isinstance(grid_raw, Mapping) else grid_raw
        if not isinstance(grids, Sequence) or not all(isinstance(g, Mapping) for g in grids):
            raise ConfigError(f"'grid' must be a mapping of dotted keys to lists, or a list of "
                              f"such mappings{where}")
        grid = []
        for g in grids:
            checked = {}
            for key, values in g.items():
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"grid key {key!r} needs a non-empty list of values, "
                                      f"got {values!r}{where}")
                checked[str(key)] = list(values)
            grid.append(checked)
        rules = []
        for i, rule in enumerate(d.get("rules") or []):
            if not isinstance(rule, Mapping) or set(rule) - {"when", "set"} or "set" not in rule:
                raise ConfigError(f"rule {i + 1} must be a mapping with 'when' (dotted key -> "
                                  f"value or list) and 'set' (dotted key -> value){where}")
            rules.append({"when": dict(rule.get("when") or {}), "set": dict(rule["set"])})
        prepare = dict(d.get("prepare") or {})
        for kind, opts in prepare.items():
            preparable = prepare_keys()
            if kind not in preparable:
                raise ConfigError(choices_message("'prepare' entry", kind, preparable) + where)
            check_keys(opts or {}, preparable[kind], f"prepare.{kind}", where)
            prepare[kind] = dict(opts or {})
        return cls(name=name.strip(), base=copy.deepcopy(dict(base)), grid=grid, trials=trials,
                   rules=rules, prepare=prepare, description=str(d.get("description", "")).strip(),
                   source=source)

    def identity(self) -> dict[str, Any]:
        """The experiment's definition as stored in its database (informational: a database is
        checked run by run, so adding trials or grid values extends it)."""
        return {"name": self.name, "base": self.base, "grid": self.grid, "trials": self.trials,
                "rules": self.rules, "prepare": self.prepare}

    @property
    def spec_hash(self) -> str:
        """Hash of :meth:`identity`: which version of the experiment last wrote the database."""
        return short_hash(self.identity())

    def with_data_root(self, root: str | Path | None) -> Experiment:
        """A copy whose runs read (and prepare) their data under ``root``."""
        return Experiment(**{**self.__dict__, "data_root": None if root is None else str(root)})

    def with_overrides(self, overrides: Sequence[str] = (), *,
                       trials: int | None = None) -> Experiment:
        """A copy with ``key=value`` overrides (``key=v1,v2`` makes a grid axis) and ``trials``.

        A single value replaces the key's grid axis if it has one, and otherwise is set after the
        grid and the rules (an override always wins). With overrides the copy is named
        ``<name>-o<hash of the overrides>`` so that its results never mix with the unmodified
        experiment's database; trials alone keep the name (more trials extend the database,
        fewer reuse its first trials).
        """
        from recurdepth.training.config import is_multirun, parse_multirun, parse_override

        if not overrides and trials in (None, self.trials):
            return self
        if trials is not None and (isinstance(trials, bool) or trials < 1):
            raise ConfigError(f"--trials must be a positive integer, got {trials}")
        grid = [dict(g) for g in (self.grid or [{}])]
        fixed: dict[str, Any] = {}
        for text in overrides:
            if is_multirun(text):
                key, values = parse_multirun(text)
                for g in grid:
                    g[key] = values
                fixed.pop(key, None)
            else:
                key, value = parse_override(text)
                if any(key in g for g in grid):
                    for g in grid:
                        if key in g:
                            g[key] = [value]
                else:
                    fixed[key] = value
        rules = [*self.rules, {"when": {}, "set": fixed}] if fixed else list(self.rules)
        name = f"{self.name}-o{short_hash({'overrides': list(overrides)}, 8)}" if overrides \
            else self.name
        return Experiment(**{**self.__dict__, "name": name,
                             "grid": [g for g in grid if g] or [],
                             "rules": rules, "trials": trials or self.trials})

    def subset(self, selectors: Sequence[Mapping[str, Any]], *,
               trials: int | None = None) -> Experiment:
        """The same experiment restricted to the grid points ``selectors`` pick, with ``trials``.

        Each selector (dotted key -> value) must pick exactly one grid point. Names, run ids and
        the experiment's name are unchanged, so the subset trains into (and reuses the finished
        runs of) the full experiment's output folder.
        """
        points = self.grid_points()
        picked: list[dict[str, Any]] = []
        for sel in selectors:
            hits = [p for p in points if all(k in p and p[k] == v for k, v in sel.items())]
            if len(hits) != 1:
                keys = sorted({k for p in points for k in p})
                raise ConfigError(
                    f"experiment {self.name!r}: {_describe(sel)} picks {len(hits)} of its runs, "
                    f"not one; give values of the grid keys {', '.join(keys)}")
            if hits[0] not in picked:
                picked.append(hits[0])
        if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)
                                   or trials < 1):
            raise ConfigError(f"trials must be a positive integer, got {trials!r}")
        return Experiment(**{**self.__dict__, "grid": [{k: [v] for k, v in p.items()}
                                                       for p in picked],
                             "trials": trials or self.trials})

    def grid_points(self) -> list[dict[str, Any]]:
        """Every grid point (dotted key -> value), products of each grid mapping, in file order."""
        points: list[dict[str, Any]] = []
        for g in self.grid or [{}]:
            keys = list(g)
            for values in itertools.product(*(g[k] for k in keys)):
                points.append(dict(zip(keys, values)))
        return points or [{}]

    def _resolve(self, point: Mapping[str, Any], trial: int) -> dict[str, Any]:
        tree = copy.deepcopy(self.base)
        for key, value in point.items():
            set_dotted(tree, key, value)
        for rule in self.rules:
            if all(_matches(get_dotted(tree, k), v) for k, v in rule["when"].items()):
                for key, value in rule["set"].items():
                    set_dotted(tree, key, copy.deepcopy(value))
        tree["seed"] = int(tree.get("seed", 0)) + trial
        if self.data_root is not None:
            set_dotted(tree, "data.root", self.data_root)
        return tree

    def runs(self) -> list[RunSpec]:
        """Expand the grid × trials into validated, resolved runs (ConfigError before any runs).

        Each run's config is resolved once here (width, iters, augmentation, batch size filled
        in; ``runtime`` left as given so it resolves on the device that trains it): what the
        database stores and the run id hashes is what runs.
        """
        runs: list[RunSpec] = []
        seen: dict[str, str] = {}
        for point in self.grid_points():
            for trial in range(self.trials):
                params = {**point, "trial": trial}
                name = run_name(params)
                try:
                    requested = RunConfig.from_dict(self._resolve(point, trial))
                    requested.name = name
                    # Resolved as the run will be (on the CPU: the driver may have no GPU).
                    config = resolve_portable(requested)
                    model = build_meta_model(config)
                except ConfigError as e:
                    raise ConfigError(f"experiment {self.name!r}, run {name} "
                                      f"({_describe(point)}): {e}") from None
                rid = identity_hash(config)[:16]
                if rid in seen:
                    raise ConfigError(f"experiment {self.name!r}: runs {seen[rid]} and {name} have "
                                      f"the same resolved config; remove the duplicate grid value")
                seen[rid] = name
                runs.append(RunSpec(name=name, run_id=rid, params=params, config=config,
                                    parameters=int(model.num_parameters),
                                    effective_depth=int(model.effective_depth),
                                    iters=getattr(model, "iters", None)))
        return runs


def _matches(actual: Any, wanted: Any) -> bool:
    return actual in wanted if isinstance(wanted, list) else actual == wanted


def _describe(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "base config"


def run_name(params: Mapping[str, Any]) -> str:
    """A readable run name from its grid values, e.g. ``maze-recurrent-d8-t0``."""
    parts = []
    for key, value in params.items():
        if key == "trial":
            continue
        leaf = key.rsplit(".", 1)[-1]
        if isinstance(value, list):  # a swept list-valued key: milestones10+20
            parts.append(f"{leaf}{'+'.join(map(str, value)) or 'none'}")
        elif isinstance(value, str):
            parts.append(value)
        elif leaf in _NAME_PREFIX:
            parts.append(f"{_NAME_PREFIX[leaf]}{value}")
        else:
            parts.append(f"{leaf}{value}")
    parts.append(f"t{params.get('trial', 0)}")
    return "-".join(str(p).replace("/", "_").replace(" ", "_") for p in parts)


# The main job (`recurdepth reproduce`): analysis presets that use it read its runs where it keeps them.
DEFAULT_PRESET = "reproduce"


def list_presets() -> list[str]:
    """Names of the experiment presets shipped with the package, sorted."""
    folder = resources.files("recurdepth.experiments") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str) -> Path:
    """Path of the shipped preset ``name`` (ConfigError listing the presets when unknown)."""
    if name not in list_presets():
        raise ConfigError(choices_message("experiment preset", name, list_presets())
                          + "; or give the path of an experiment YAML file")
    return Path(str(resources.files("recurdepth.experiments") / "presets" / f"{name}.yaml"))


def load_experiment(name_or_path: str | Path) -> Experiment:
    """Load a shipped preset by name, or an experiment YAML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        path = preset_path(text)
    return Experiment.from_dict(read_yaml(path, what="experiment file"), source=str(path))


__all__ = ["DEFAULT_PRESET", "Experiment", "RunSpec", "build_meta_model", "canonical_json", "get_dotted",
           "list_presets", "load_experiment", "preset_path", "run_id", "run_name", "set_dotted",
           "short_hash"]
