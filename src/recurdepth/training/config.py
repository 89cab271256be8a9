"""One run = one typed config: ``RunConfig`` with sections model, data, optim, train, runtime.

A config comes from a YAML file plus ``section.key=value`` overrides. Unknown keys and values of
the wrong type are refused with a :class:`~recurdepth.errors.ConfigError` that names the key and
the valid choices. ``None`` in a field means "the paper's default for this data set / device";
:func:`resolve` fills those in, and the run folder stores the resolved config.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import yaml

from recurdepth.errors import ConfigError, choices_message
from recurdepth.io import load_yaml_text, read_yaml

if TYPE_CHECKING:
    from recurdepth.data.tasks import Task

OPTIMIZERS = ("sgd", "adam", "adamw")
# step: warm-up then multi-step decay (the paper); cosine: warm-up then cosine decay to 0, both
# set once per epoch; warmup_cosine: linear warm-up then cosine decay to 0, set every step.
SCHEDULES = ("step", "cosine", "warmup_cosine")
AMP_CHOICES = ("auto", "off", "bf16", "fp16")
AUTO = "auto"


@dataclass
class ModelConfig:
    """Which model of the zoo: family, mode and depth (``effective_depth`` or ``iters``)."""

    family: str = "maze"  # model family (`recurdepth models` lists them)
    mode: str = "recurrent"  # recurrent (one shared unit) or feedforward (distinct units)
    effective_depth: int | None = None  # layers on the unrolled path; or give model.iters
    iters: int | None = None  # iterations of the body unit (or give model.effective_depth)
    width: int | None = None  # channels (or units); None: the paper's width for the data set
    options: dict[str, Any] = field(default_factory=dict)  # the family's own options
    dilation: int | None = None  # older spelling of model.options.dilation (maze_dilated)


@dataclass
class DataConfig:
    """Which data set, where it lives and how training images are augmented."""

    name: str = "mazes"  # a registered data set (mazes, cifar10, ...; listed at the top of this help)
    root: str = "data"  # folder holding the data sets (not part of the run's identity)
    download: bool = False  # download CIFAR-10, SVHN or EMNIST into data.root when missing
    # The data set's own options (recurdepth.data.registry: each record declares them), e.g.
    # mazes: size, eval_size, shift (older keys data.maze_size, data.eval_maze_size,
    # data.maze_shift still work).
    options: dict[str, Any] = field(default_factory=dict)
    train_limit: int | None = None  # first N training samples (tiny runs, tests)
    test_limit: int | None = None  # first N test samples
    crop_padding: int | None = None  # random-crop padding (px); None: the paper's augmentation
    hflip: bool | None = None  # random horizontal flips; None: the paper's augmentation
    vflip: bool | None = None  # not in the paper; see recurdepth.data.augment
    workers: int = 4  # ImageNet DataLoader workers


SGD_WARMUP_EPOCHS = 5  # the authors' exponential warm-up (SPEC §3)


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (SPEC §3: SGD 0.9, wd 2e-4, steps, 5-epoch warm-up)."""

    name: str = "sgd"  # sgd, adam or adamw
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD momentum (Adam: beta1)
    weight_decay: float = 2e-4  # L2 weight decay on all parameters
    milestones: list[int] = field(default_factory=list)  # epochs after which lr *= gamma
    gamma: float = 0.1  # learning-rate factor at each milestone
    # Exponential warm-up epochs; None: the authors' 5 with SGD (their protocol), none with Adam,
    # which adapts its own step sizes (at 5 epochs its first epoch would train at 18% of optim.lr).
    warmup_epochs: int | None = None
    recur_lr_divide: bool | None = None  # lr of the shared unit / iters; None: on for mazes
    clip_grad_norm: float | None = None  # clip the gradient norm to this (None: no clipping)
    # step (milestones, gamma) | cosine (to 0 over cosine_epochs) | warmup_cosine (per step:
    # linear warm-up over warmup_epochs, then cosine to 0 at the end of cosine_epochs)
    schedule: str = "step"
    cosine_epochs: int | None = None  # cosine: epochs of the decay (None: train.epochs)

    def warmup(self) -> int:
        """Warm-up epochs: ``warmup_epochs``, or when None the authors' with SGD, none otherwise."""
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        return SGD_WARMUP_EPOCHS if self.name == "sgd" else 0


@dataclass
class TrainConfig:
    """Epochs, batch sizes and what is evaluated."""

    epochs: int = 10  # training epochs (raising it continues a finished run)
    batch_size: int | None = None  # training batch; None: the data set's (128, mazes 50)
    eval_batch_size: int | None = None  # evaluation batch; None: 2 x batch_size (>= 500 on a GPU)
    # Test accuracy at iterations 1..N of a recurrent model: an int N, or "<factor>x" relative to
    # the trained iterations ("2x": think twice as long); None: the trained iterations.
    eval_iters: int | str | None = None
    eval_every: int = 1  # test (and train) accuracy every N epochs (0: only at the end)
    # Un-augmented train accuracy per evaluated epoch on the first N training samples (learning
    # curves); None: as many as the test set, 0: not measured.
    eval_train_limit: int | None = None
    drop_last: bool = False  # drop the last partial training batch (the authors' loaders do)
    # What the loss reads (recurdepth.training.objectives): final = the paper's loss after the
    # trained iterations; progressive = Bansal et al. 2022's progressive loss.
    objective: str = "final"
    alpha: float = 1.0  # progressive: (1 - alpha) * final loss + alpha * progressive loss


@dataclass
class RuntimeConfig:
    """Device and speed options; ``auto`` = on where the protocol is unchanged and it is faster.

    ``amp`` and ``channels_last``: on for CUDA and for CPUs with native bf16 (see
    :func:`cpu_has_bf16`); ``compile`` and ``cudnn_benchmark``: on for CUDA only.
    ``tf32``: TF32 tensor-core math for fp32 convolutions and matmuls (Ampere and newer GPUs);
    auto = on for CUDA, off elsewhere; the paper presets set it off (the authors computed in full
    fp32). ``compile_mode``: torch.compile's mode; auto = ``reduce-overhead`` on CUDA (the
    forward and backward replayed as CUDA graphs on the full batches, the last partial batch
    eager), ``default`` elsewhere.
    """

    device: str = AUTO  # auto (cuda when available), cpu, cuda or cuda:N
    amp: str = AUTO  # mixed precision: auto, off, bf16 or fp16
    channels_last: bool | str = AUTO  # channels-last memory layout: true, false or auto
    compile: bool | str = AUTO  # torch.compile the model: true, false or auto (CUDA)
    cudnn_benchmark: bool | str = AUTO  # cuDNN autotuning: true, false or auto (CUDA)
    tf32: bool | str = AUTO  # TF32 math for fp32 convs/matmuls: auto (on for CUDA), on or off
    compile_mode: str = AUTO  # torch.compile mode: auto, default, reduce-overhead, max-autotune
    progress: bool = True  # progress bars on a terminal
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    sync_bn: bool = False  # several processes: synchronise BatchNorm statistics (CUDA only)


@dataclass
class RunConfig:
    """Everything that defines one training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    seed: int = 0  # seed of every random choice of the run (init, batches, augmentation)
    name: str | None = None  # run name; None: derived from model, depth, data set and seed

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> RunConfig:
        """Build a RunConfig from a nested dict; unknown keys or wrong types raise ConfigError."""
        return check_values(_from_dict(cls, d or {}, prefix=""))

    def to_dict(self) -> dict[str, Any]:
        """The config as a nested dict of plain values (YAML/JSON friendly)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def task(self) -> Task:
        """The rules of the data set's task (ConfigError for an unknown data set)."""
        from recurdepth.data.tasks import task_of

        return task_of(self.data.name)

    def data_option(self, key: str) -> Any:
        """``data.options.<key>``, or the data set's default for it when not given."""
        from recurdepth.data.registry import get_dataset

        options = get_dataset(self.data.name).options
        if key not in options:
            raise ConfigError(f"data set {self.data.name!r} has no option {key!r}; valid options: "
                              f"{', '.join(options) or 'none'}")
        return self.data.options.get(key, options[key].default)

    def example_size(self) -> int | None:
        """The size the training examples are made at (data.options.size); None if unsized."""
        return self.data_option("size") if self.task.sized else None

    def eval_sizes(self) -> tuple[int, ...]:
        """The other test sizes of a sized task (data.options.eval_size: one or a list)."""
        if not self.task.sized:
            return ()
        value = self.data_option("eval_size")
        sizes = value if isinstance(value, (list, tuple)) else (value,)
        return tuple(dict.fromkeys(int(s) for s in sizes if s is not None))

    def eval_size(self) -> int | None:
        """The first other test size of a sized task (data.options.eval_size), or None."""
        sizes = self.eval_sizes()
        return sizes[0] if sizes else None

    def example_sizes(self) -> tuple[int, ...]:
        """Every example size the run reads: trained on, and tested on (data.options.eval_size)."""
        if not self.task.sized:
            return ()
        return tuple(dict.fromkeys((self.example_size(), *self.eval_sizes())))

    def name_prefix(self) -> str:
        """The readable start of a default run name, such as ``maze-recurrent-d16-mazes9-s0``."""
        depth = (f"d{self.model.effective_depth}" if self.model.effective_depth is not None
                 else f"i{self.model.iters}" if self.model.iters is not None else "fixed")
        data = f"{self.data.name}{self.example_size() or ''}"
        return f"{self.model.family}-{self.model.mode}-{depth}-{data}-s{self.seed}"


# Upper bounds keep a typo (an extra zero or three) from asking for days of compute or terabytes
# of memory; they are far above anything the paper or a reasonable extension uses.
MAX_ITERS = 10_000
MAX_WIDTH = 65_536
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_SEED = 2**32 - 1  # numpy's seeding range


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


@dataclass(frozen=True)
class Limit:
    """The allowed range of a numeric config value (every float must also be finite)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: value > low (else >= low)
    high_open: bool = False

    def describe(self) -> str:
        """``> 0 and <= 10`` style text for error messages."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return " and ".join(parts)

    def allows(self, value: float) -> bool:
        """True if ``value`` lies in the range."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None
                    and (value >= self.high if self.high_open else value > self.high))


# Ranges of every numeric key, next to the dataclasses that define the keys (None stays allowed
# where the field is optional). Cross-key rules (e.g. milestones increasing) live in resolve().
LIMITS: dict[str, Limit] = {
    "model.effective_depth": Limit(1, 4 * MAX_ITERS + 8),
    "model.iters": Limit(1, MAX_ITERS),
    "model.width": Limit(1, MAX_WIDTH),
    "model.dilation": Limit(1, 1024),
    "data.train_limit": Limit(1, 2**40),
    "data.test_limit": Limit(1, 2**40),
    "data.crop_padding": Limit(0, 64),
    "data.workers": Limit(0, 256),
    "optim.lr": Limit(0, None, low_open=True),  # too large ends as "diverged", detected
    "optim.momentum": Limit(0, 1, high_open=True),
    "optim.weight_decay": Limit(0, 1),
    "optim.milestones": Limit(1, MAX_EPOCHS),
    "optim.gamma": Limit(0, 10, low_open=True),
    "optim.warmup_epochs": Limit(0, MAX_EPOCHS),
    "optim.cosine_epochs": Limit(1, MAX_EPOCHS),
    "optim.clip_grad_norm": Limit(0, 1e9, low_open=True),
    "train.epochs": Limit(1, MAX_EPOCHS),
    "train.batch_size": Limit(1, MAX_BATCH),
    "train.eval_batch_size": Limit(1, MAX_BATCH),
    # train.eval_iters (a number or "2x"): checked by resolve_eval_iters and resolve()
    "train.eval_every": Limit(0, MAX_EPOCHS),
    "train.alpha": Limit(0, 1),
    "runtime.threads": Limit(1, 4096),
    "seed": Limit(0, MAX_SEED),
}


def _check_value(key: str, value: Any) -> None:
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(f"{key}[{i}]" if key not in LIMITS else key, v)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value}")
    limit = LIMITS.get(key)
    if limit is not None and not limit.allows(value):
        raise ConfigError(f"{key} must be {limit.describe()}, got {_number(value)}")


def check_values(cfg: RunConfig) -> RunConfig:
    """Refuse non-finite numbers, values outside ``LIMITS`` and a name that is not a plain name."""
    from recurdepth.paths import check_name

    for section, value in cfg.to_dict().items():
        if isinstance(value, dict):
            for k, v in value.items():
                _check_value(f"{section}.{k}", v)
        else:
            _check_value(section, value)
    if cfg.name is not None:
        check_name(cfg.name, "name")
    return cfg


SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
            "train": TrainConfig, "runtime": RuntimeConfig}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _type_name(tp: Any) -> str:
    args = _union_args(tp)
    if args:
        return " or ".join(_type_name(a) for a in args)
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _union_args(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return ()


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise a ConfigError naming ``key`` and the type."""
    args = _union_args(tp)
    if args:
        for a in args:
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(tp) is dict:
        if isinstance(value, Mapping):
            return {str(k): v for k, v in value.items()}
    elif typing.get_origin(tp) is list:
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(tp)
            return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    else:  # pragma: no cover - every field type is listed above
        raise TypeError(f"unsupported config type {tp!r}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _from_dict(cls: type, d: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping of keys, got {d!r}")
    if cls is DataConfig:
        d = _data_aliases_to_options(d)
    types_ = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        full = f"{prefix}{key}"
        if key not in types_:
            raise ConfigError(choices_message("config key", full,
                                              [f"{prefix}{k}" for k in types_]))
        tp = types_[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _from_dict(tp, value or {}, prefix=f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)


# The data keys before data options and the value every run stored for them: a data
# set without such an option ignores them at that value (old config files of classification runs
# hold data.maze_size: 9); another value is refused by the data set's option check.
LEGACY_DATA_KEYS: dict[str, Any] = {"maze_size": 9, "eval_maze_size": None, "maze_shift": 0}


def _data_aliases_to_options(d: Mapping[str, Any]) -> dict[str, Any]:
    """A data section with its older keys (``maze_size``) moved into ``options`` (``size``)."""
    from recurdepth.data.registry import option_aliases

    aliases = option_aliases()
    out = dict(d)
    options = dict(out.get("options") or {})
    name = out.get("name", DataConfig.name)
    for old, new in aliases.items():
        if old not in out:
            continue
        value = out.pop(old)
        if LEGACY_DATA_KEYS.get(old, object()) == value and not _declares(name, new):
            continue
        if new in options and options[new] != value:
            raise ConfigError(f"data.{old}={value} and data.options.{new}={options[new]} "
                              f"disagree: give only one (data.{old} is the older name)")
        options[new] = value
    if options or "options" in out:
        out["options"] = options
    return out


def _declares(dataset: Any, option: str) -> bool:
    """True when data set ``dataset`` (registered or not) declares ``option``."""
    from recurdepth.data.registry import find_dataset

    spec = find_dataset(dataset) if isinstance(dataset, str) else None
    return spec is None or option in spec.options


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) is list or any(typing.get_origin(a) is list
                                                 for a in _union_args(tp))


def _top_level_items(raw: str) -> list[str]:
    """``raw`` split at the commas outside brackets and braces: ``[5],[5,10]`` → two items."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(raw):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(raw[start:i])
            start = i + 1
    return [*items, raw[start:]]


def _parse_override(raw: str, tp: Any) -> Any:
    """Parse the text of ``key=value``: strings stay strings, the rest is read as YAML.

    A list-valued key also takes its items without brackets (``optim.milestones=10,20``).
    """
    if _is_list(tp) and not raw.strip().startswith("[") and raw.strip().lower() not in (
            "null", "none", "~"):
        raw = f"[{raw}]"
    wants_str = tp is str or str in _union_args(tp)
    if wants_str and raw.strip().lower() not in ("null", "none", "~", "true", "false"):
        # A field that takes a number or a text (train.eval_iters: 6 or "2x") keeps numbers.
        if int in _union_args(tp) or float in _union_args(tp):
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                return raw
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
        return raw
    try:
        return load_yaml_text(raw) if raw.strip().lower() != "none" else None
    except (yaml.YAMLError, ValueError):
        return raw


def override_type(key: str) -> Any:
    """The type of config key ``section.key`` (or ``seed``/``name``); ConfigError when unknown."""
    parts = key.split(".")
    top = _field_types(RunConfig)
    if parts[0] in top:
        tp = top[parts[0]]
        if dataclasses.is_dataclass(tp):
            section = _field_types(tp)
            if len(parts) == 2 and parts[1] in section:
                return section[parts[1]]
            if (len(parts) == 3 and parts[1] in section
                    and typing.get_origin(section[parts[1]]) is dict):
                return Any  # a free-form mapping such as model.options: the family checks it
            if len(parts) == 2 and parts[0] == "data" and parts[1] in _option_aliases():
                return Any  # an older name of a data option (data.maze_size): the data set checks it
        elif len(parts) == 1:
            return tp
    raise ConfigError(choices_message("config key", key, config_keys()))


def _option_aliases() -> dict[str, str]:
    from recurdepth.data.registry import option_aliases

    return option_aliases()


def split_override(text: str) -> tuple[str, str]:
    """``"section.key=value"`` → ``("section.key", "value")``; ConfigError when there is no ``=``."""
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. optim.lr=0.05")
    key, value = text.split("=", 1)
    return key.strip(), value


def parse_override(text: str) -> tuple[str, Any]:
    """``"section.key=value"`` → ``(key, value)`` with the key checked and the value typed."""
    key, raw = split_override(text)
    tp = override_type(key)
    value = _parse_override(raw, tp)
    if tp is Any:
        return key, value
    try:
        return key, _coerce(value, tp, key)
    except ConfigError as e:
        if not _is_list(tp):
            raise
        raise ConfigError(f"{e}; {_value_form(key, tp)}") from None


def is_multirun(text: str) -> bool:
    """True for ``key=v1,v2,...`` (a comma outside brackets): one run per value.

    A list-valued key is swept with bracketed lists, ``optim.milestones=[10],[10,20]``;
    ``optim.milestones=10,20`` is one list.
    """
    key, raw = split_override(text)
    items = _top_level_items(raw)
    if len(items) < 2 or raw.strip().startswith(("{", "'", '"')):
        return False
    try:
        listed = _is_list(override_type(key))
    except ConfigError:
        listed = False
    if listed:
        return all(item.strip().startswith("[") for item in items)
    return not raw.strip().startswith("[")


def _value_form(key: str, tp: Any) -> str:
    """How to write values of ``key``: one run, and a sweep (one run per value)."""
    if _is_list(tp):
        return (f"write {key}=10,20 or {key}=[10,20] for one list, {key}=[10],[10,20] for one "
                f"run per list")
    return f"write {key}=v1,v2,... with one {_type_name(tp)} between each pair of commas"


def parse_multirun(text: str) -> tuple[str, list[Any]]:
    """``"key=v1,v2,..."`` → ``(key, [v1, v2, ...])``, each value checked against the key's type."""
    key, raw = split_override(text)
    tp = override_type(key)
    items = _top_level_items(raw)
    if any(not item.strip() for item in items):
        raise ConfigError(f"malformed multirun value {text!r}: empty item; "
                          f"{_value_form(key, tp)}")
    values = []
    for item in items:
        try:
            values.append(_coerce(_parse_override(item.strip(), tp), tp, key))
        except ConfigError:
            raise ConfigError(f"malformed multirun value {text!r}: {item.strip()!r} is not a "
                              f"valid {_type_name(tp)} for {key}; {_value_form(key, tp)}"
                              ) from None
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"malformed multirun value {text!r}: a value is repeated")
    return key, values


def apply_overrides(cfg: RunConfig, overrides: Mapping[str, Any] | Iterable[str]) -> RunConfig:
    """Return a copy of ``cfg`` with ``{"section.key": value}`` or ``"section.key=value"`` applied."""
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
        for key, _ in items:
            override_type(key)
    else:
        items = [parse_override(text) for text in overrides]
    d = cfg.to_dict()
    aliases = _option_aliases()
    for key, value in items:
        parts = key.split(".")
        if len(parts) == 2 and parts[0] == "data" and parts[1] in aliases:
            parts = ["data", "options", aliases[parts[1]]]  # the older name: later keys win
        if len(parts) == 3:  # a free-form mapping such as model.options: the family checks names
            d[parts[0]][parts[1]] = {**(d[parts[0]][parts[1]] or {}), parts[2]: value}
        elif len(parts) == 2:
            d[parts[0]][parts[1]] = value
        else:
            d[parts[0]] = value
    return RunConfig.from_dict(d)


def config_keys() -> list[str]:
    """Every valid ``section.key`` of a RunConfig."""
    keys: list[str] = []
    for name, tp in _field_types(RunConfig).items():
        if dataclasses.is_dataclass(tp):
            keys += [f"{name}.{k}" for k in _field_types(tp)]
        else:
            keys.append(name)
    return keys


def _field_comments(cls: type) -> dict[str, str]:
    """Each field's comment in ``cls``'s source (the lines above it, then the one after it)."""
    import inspect
    import io
    import re
    import tokenize

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (e.g. a frozen build): keys without meaning
        return {}
    comments: dict[str, list[str]] = {}
    above: list[str] = []
    for line in source.splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("#").strip())
            continue
        match = re.match(r"    (\w+)\s*:", line)
        if match is None:
            above = []
            continue
        after = []
        try:
            tokens = tokenize.generate_tokens(io.StringIO(text + "\n").readline)
            after = [t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT]
        except (tokenize.TokenError, SyntaxError):
            pass
        comments[match.group(1)] = above + after
        above = []
    return {name: " ".join(parts) for name, parts in comments.items()}


@dataclass(frozen=True)
class KeyDoc:
    """One config key for ``recurdepth train --help``: its type, default and meaning."""

    key: str
    type: str
    default: Any
    meaning: str


def key_docs() -> list[KeyDoc]:
    """Every config key with its type, default and meaning (the field's comment in this file)."""
    docs: list[KeyDoc] = []

    def add(cls: type, prefix: str) -> None:
        comments = _field_comments(cls)
        types_ = _field_types(cls)
        for f in dataclasses.fields(cls):
            tp = types_[f.name]
            if dataclasses.is_dataclass(tp):
                add(tp, f"{prefix}{f.name}.")
                continue
            default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else f.default)
            docs.append(KeyDoc(f"{prefix}{f.name}", _type_name(tp), default,
                               comments.get(f.name, "")))

    add(RunConfig, "")
    return docs


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML config file (optional) and apply ``section.key=value`` override strings."""
    cfg = RunConfig()
    if path is not None:
        # A run folder's config.yaml gives back what its user asked for, not what this device ran.
        cfg = RunConfig.from_dict(_saved_part(read_yaml(path, what="config file"), REQUESTED_KEY))
    return apply_overrides(cfg, list(overrides))


def read_resolved(path: str | os.PathLike, error: type[Exception] = ConfigError) -> RunConfig:
    """The resolved config a run folder's ``config.yaml`` (or a plain config file) holds."""
    return RunConfig.from_dict(_saved_part(read_yaml(path, what="run config", error=error),
                                           RESOLVED_KEY))


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else is checked by torch."""
    if device in (AUTO, "cpu") and not gpu_driver_present():
        return "cpu"  # no GPU driver: nothing for torch to find, and no 2-3 s wait for it
    import torch

    if device == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"runtime.device: {device!r} is not a torch device; use auto, cpu, "
                          f"cuda or cuda:N") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"runtime.device={device} but CUDA is not available here; use "
                          f"runtime.device=cpu or auto")
    return device


# Device files of the NVIDIA and AMD (ROCm) drivers: without one, torch sees no GPU.
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")


def gpu_driver_present() -> bool:
    """True when a GPU driver's device files exist (then torch is asked whether CUDA works)."""
    return any(os.path.exists(p) for p in GPU_DRIVER_FILES)


# Default evaluation batch on a GPU (train.eval_batch_size unset): at least this many samples.
GPU_EVAL_BATCH = 500

# torch.compile modes a run may ask for (runtime.compile_mode).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic: AVX-512 BF16 and AMX.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when this CPU computes in bf16 natively (``avx512_bf16`` or ``amx_bf16``).

    Elsewhere (no such flag, or no ``/proc/cpuinfo``, e.g. macOS) bf16 would be emulated and
    slower than fp32, so ``runtime.amp=auto`` stays fp32 there.
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[-1].split()) & set(BF16_CPU_FLAGS))
    except OSError:
        return False
    return False


def _auto_flag(value: bool | str, key: str, on_cuda: bool) -> bool:
    if isinstance(value, bool):
        return value
    if value != AUTO:
        raise ConfigError(f"{key}: expected true, false or auto (or on, off), got {value!r}")
    return on_cuda


def resolve_on(cfg: RunConfig, device: str) -> RunConfig:
    """Resolve ``cfg`` (resolved or not) for another device, e.g. to evaluate a GPU run on CPU."""
    c = copy.deepcopy(cfg)
    # An fp32 run stays fp32 anywhere; a mixed-precision one takes the new device's default.
    c.runtime = RuntimeConfig(device=device, progress=cfg.runtime.progress,
                              threads=cfg.runtime.threads,
                              amp="off" if cfg.runtime.amp == "off" else AUTO)
    return resolve(c)


def resolve(cfg: RunConfig) -> RunConfig:
    """Validate ``cfg`` and fill every ``None``/``auto`` with the paper's or the device's default.

    The result is what the run folder stores and what a resumed run is compared against.
    """
    from recurdepth.data.registry import get_dataset, list_datasets

    r = copy.deepcopy(cfg)
    if r.data.name not in list_datasets():
        raise ConfigError(choices_message("data set (data.name)", r.data.name, list_datasets()))
    data = get_dataset(r.data.name)
    # Checked before the family registry is imported (it imports torch): these errors are quick.
    if r.optim.name not in OPTIMIZERS:
        raise ConfigError(choices_message("optimizer (optim.name)", r.optim.name, OPTIMIZERS))
    if r.runtime.amp not in AMP_CHOICES:
        raise ConfigError(choices_message("runtime.amp", r.runtime.amp, AMP_CHOICES))
    from recurdepth.models.spec import family_spec

    spec = family_spec(r.model.family)  # ConfigError lists the families
    if r.data.name not in spec.datasets:
        raise ConfigError(f"model family {r.model.family!r} is not defined for data set "
                          f"{r.data.name!r}; valid data sets: {', '.join(spec.datasets)}")
    if r.model.mode not in spec.modes:
        raise ConfigError(choices_message(f"mode for family {r.model.family!r} (model.mode)",
                                          r.model.mode, spec.modes))
    _resolve_options(r.model, spec.options)
    _resolve_model(r, spec)
    _resolve_data(r, data)
    _resolve_training(r, data)
    _resolve_runtime(r)
    # A default name is readable and unique: distinct identities never share a run folder.
    r.name = cfg.name or f"{cfg.name_prefix()}-{identity_hash(r)[:8]}"
    return check_values(r)


def _resolve_data(r: RunConfig, data: Any) -> None:
    """Check the data set's options and fill its default augmentation (in place)."""
    from recurdepth.data.options import resolve_options
    from recurdepth.data.registry import option_owners

    task = r.task
    r.data.options = resolve_options(data, r.data.options, option_owners())
    if not task.augmented:
        if r.data.crop_padding or r.data.hflip or r.data.vflip:
            raise ConfigError(f"data set {data.name!r} is not augmented ({task.name} task): leave "
                              f"data.crop_padding, data.hflip and data.vflip unset")
        r.data.crop_padding, r.data.hflip, r.data.vflip = 0, False, False
    elif not data.streamed:  # a streamed data set augments image by image in its loader
        if r.data.crop_padding is None:
            r.data.crop_padding = data.crop_padding
        if r.data.hflip is None:
            r.data.hflip = data.hflip
        if r.data.vflip is None:
            r.data.vflip = data.vflip


def _resolve_training(r: RunConfig, data: Any) -> None:
    """Validate the optimiser and schedule; fill batch sizes and the recurrent lr rule (in place)."""
    if r.optim.recur_lr_divide is None:
        r.optim.recur_lr_divide = r.task.divide_recurrent_lr
    if r.optim.warmup_epochs is None:
        r.optim.warmup_epochs = r.optim.warmup()
    for key, value in (("optim.lr", r.optim.lr), ("train.epochs", r.train.epochs)):
        if value <= 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
    if any(m < 1 for m in r.optim.milestones) or r.optim.milestones != sorted(r.optim.milestones):
        raise ConfigError(f"optim.milestones must be increasing epochs >= 1, got {r.optim.milestones}")
    if r.optim.schedule not in SCHEDULES:
        raise ConfigError(choices_message("optim.schedule", r.optim.schedule, SCHEDULES))
    if r.optim.schedule in ("cosine", "warmup_cosine") and r.optim.cosine_epochs is None:
        # Recorded, so that the schedule is part of the run's identity and raising train.epochs
        # on resume does not change the learning rate of the epochs already trained.
        r.optim.cosine_epochs = r.train.epochs
    if r.train.batch_size is None:
        r.train.batch_size = data.batch_size
    if r.train.eval_batch_size is None:
        # A GPU evaluates small batches at a fraction of its speed (launch-bound): evaluate big.
        on_cuda = resolve_device(r.runtime.device).startswith("cuda")
        r.train.eval_batch_size = max(2 * r.train.batch_size, GPU_EVAL_BATCH if on_cuda else 0)
    if r.train.batch_size < 1 or r.train.eval_batch_size < 1:
        raise ConfigError("train.batch_size and train.eval_batch_size must be >= 1")
    r.train.eval_iters = resolve_eval_iters(r.train.eval_iters, r.model.iters)
    if r.train.eval_iters is not None and r.train.eval_iters > MAX_ITERS:
        raise ConfigError(f"train.eval_iters must be <= {MAX_ITERS:,} iterations, got "
                          f"{r.train.eval_iters:,}")
    _resolve_objective(r)
    if r.train.eval_every < 0:
        raise ConfigError(f"train.eval_every must be >= 0 (0: only at the end), got "
                          f"{r.train.eval_every}")
    if r.train.eval_train_limit is not None and r.train.eval_train_limit < 0:
        raise ConfigError(f"train.eval_train_limit must be >= 0 (0: no per-epoch train accuracy), "
                          f"got {r.train.eval_train_limit}")


def _resolve_objective(r: RunConfig) -> None:
    """Check ``train.objective`` and ``train.alpha`` (the objective registry holds the names)."""
    from recurdepth.training.objectives import check_objective

    check_objective(r.train.objective, r.train.alpha)
    if r.train.objective != "progressive":
        if r.train.alpha != 1.0:
            raise ConfigError(f"train.alpha={r.train.alpha:g} is only used by "
                              f"train.objective=progressive; leave it unset for "
                              f"train.objective={r.train.objective}")
    elif r.model.iters is None:
        raise ConfigError(f"train.objective=progressive needs a model with iterations; family "
                          f"{r.model.family!r} has a fixed depth (use train.objective=final)")


def _resolve_model(r: RunConfig, spec: Any) -> None:
    """Fill the model's iterations, effective depth and width (in place)."""
    # A fixed-depth family's depth is its own: a model.effective_depth given for it (a sweep
    # axis over several families) is replaced, not refused.
    depth = r.model.effective_depth if spec.unrolled else None
    r.model.iters = spec.resolve_iters(depth, r.model.iters, prefix="model.")
    r.model.effective_depth = (spec.fixed_depth if r.model.iters is None
                               else spec.depth_for(r.model.iters))
    if r.model.width is None:
        r.model.width = spec.default_width[r.data.name]



def _resolve_runtime(r: RunConfig) -> None:
    """Fill the device and the speed options from the device (in place)."""
    device = resolve_device(r.runtime.device)
    on_cuda = device.startswith("cuda")
    r.runtime.device = device
    # bf16 needs no loss scaling (the loss itself is computed in fp32), so it leaves the
    # optimisation protocol as it is. On a CPU it is used only where the CPU has bf16
    # instructions (emulated bf16 is slower than fp32); there, with channels_last, width-32 maze
    # solvers trained 2.0-2.7x faster than in fp32 (benchmarks/bench_cpu_bf16.py).
    fast_bf16 = on_cuda or (device == "cpu" and cpu_has_bf16())
    if r.runtime.amp == AUTO:
        r.runtime.amp = "bf16" if fast_bf16 else "off"
    if r.runtime.threads is not None and r.runtime.threads < 1:
        raise ConfigError(f"runtime.threads must be >= 1, got {r.runtime.threads}")
    r.runtime.channels_last = _auto_flag(r.runtime.channels_last, "runtime.channels_last",
                                         fast_bf16)
    r.runtime.compile = _auto_flag(r.runtime.compile, "runtime.compile", on_cuda)
    r.runtime.cudnn_benchmark = _auto_flag(r.runtime.cudnn_benchmark, "runtime.cudnn_benchmark",
                                           on_cuda)
    r.runtime.tf32 = _auto_flag(_on_off(r.runtime.tf32), "runtime.tf32", on_cuda)
    if r.runtime.compile_mode == AUTO:
        # CUDA graphs remove the per-kernel launch cost that dominates small batches on a GPU.
        r.runtime.compile_mode = "reduce-overhead" if on_cuda else "default"
    if r.runtime.compile_mode not in COMPILE_MODES:
        raise ConfigError(choices_message("runtime.compile_mode", r.runtime.compile_mode,
                                          (AUTO, *COMPILE_MODES)))


def _on_off(value: bool | str) -> bool | str:
    """``on``/``off`` (a YAML or command-line spelling) as a bool; anything else unchanged."""
    return {"on": True, "off": False}.get(value, value) if isinstance(value, str) else value


def _resolve_options(model: ModelConfig, defaults: Mapping[str, Any]) -> None:
    """Check ``model.options`` against the family's options and fill in their defaults."""
    options = dict(model.options)
    if model.dilation is not None:  # the older key, kept working
        if options.get("dilation", model.dilation) != model.dilation:
            raise ConfigError(f"model.dilation={model.dilation} and model.options.dilation="
                              f"{options['dilation']} disagree: give only one")
        options["dilation"] = model.dilation
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        from recurdepth.models.spec import variants_with

        hints = [f"model.family={v} has {o}" for o in unknown
                 for v in variants_with(model.family, o)]
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for model family "
                          f"{model.family!r} (model.options); valid options: "
                          f"{', '.join(defaults) or 'none'}"
                          + (f" ({'; '.join(hints)})" if hints else ""))
    model.options = {**defaults, **options}
    model.dilation = None


def stored_example_size(config: Mapping[str, Any]) -> int | None:
    """The example size of a stored config dict (any version), None for unsized tasks."""
    from recurdepth.data.registry import find_dataset
    from recurdepth.data.tasks import get_task

    data = config.get("data") or {}
    spec = find_dataset(data.get("name", DataConfig.name))
    if spec is None or not get_task(spec.task).sized:
        return None
    size = (data.get("options") or {}).get("size", data.get("maze_size"))
    return spec.options["size"].default if size is None else size


def resolve_portable(cfg: RunConfig) -> RunConfig:
    """``cfg`` with every learning field resolved but ``runtime`` as given (valid on any device)."""
    r = resolve_on(cfg, "cpu")
    r.runtime = copy.deepcopy(cfg.runtime)
    return r


_EVAL_ITERS_HELP = ("use a whole number >= 1 (e.g. 6) or a multiple of the trained iterations "
                    "such as 2x or 1.5x")


def resolve_eval_iters(value: int | str | None, iters: int | None) -> int | None:
    """``train.eval_iters`` as a number of iterations: ``"2x"`` = twice the trained ``iters``.

    The multiple is rounded up and never below the trained iterations; models without iterations
    (fixed depth) get None.
    """
    if value is None:
        return None
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"train.eval_iters must be >= 1, got {value}; {_EVAL_ITERS_HELP}")
        return value if iters is not None else None
    text = value.strip().lower()
    if text.isdigit():  # "6" from a command-line override
        return resolve_eval_iters(int(text), iters)
    try:
        factor = float(text[:-1]) if text.endswith("x") else float("nan")
    except ValueError:
        factor = float("nan")
    if not math.isfinite(factor) or factor < 1:
        raise ConfigError(f"train.eval_iters: {value!r} is not a number of iterations; "
                          f"{_EVAL_ITERS_HELP}")
    return None if iters is None else max(iters, math.ceil(factor * iters - 1e-9))


# Keys that may change between an interrupted run and its resumption without changing what is
# learned: they are not part of a run's identity (raising train.epochs continues the same run).
# Data options say so themselves (DataOption.resumable, e.g. data.options.eval_size).
RESUMABLE_CHANGES = ("name", "data.root", "data.download", "data.workers", "train.epochs",
                     "train.eval_batch_size", "train.eval_iters", "train.eval_every",
                     "train.eval_train_limit")


# Keys added after runs were made: at their default they stay out of the identity, so the hash of
# every run made before them is unchanged (tests/test_run_identity.py, tests/fixtures/runs).
ADDED_KEYS: dict[str, Any] = {"train.objective": "final", "train.alpha": 1.0,
                              "optim.schedule": "step", "optim.cosine_epochs": None,
                              "data.options.fresh": False}
# Identity keys every run had before data options existed: a data set without the option keeps
# the value all its runs were hashed with (classification runs: data.maze_size 9).
LEGACY_IDENTITY: dict[str, Any] = {"data.maze_size": 9, "data.maze_shift": 0}


def protocol_dict(cfg: RunConfig) -> dict[str, Any]:
    """The identity of a resolved run: its flattened keys that change what is learned.

    This one function feeds the run id, the resume check, the checkpoint and the experiment
    database. Device and speed options (``runtime``), where the data lives, the run's name, the
    number of epochs and what is evaluated are not part of it.
    """
    flat: dict[str, Any] = {}
    for section, value in cfg.to_dict().items():
        if isinstance(value, dict):
            if section == "runtime":
                continue  # device and speed options never change what is trained
            for k, v in value.items():
                flat[f"{section}.{k}"] = v
        else:
            flat[section] = value
    flat.update(_data_options_identity(cfg.data.name, flat.pop("data.options")))
    for k, v in LEGACY_IDENTITY.items():
        flat.setdefault(k, v)
    return {k: v for k, v in flat.items() if k not in RESUMABLE_CHANGES
            and not (k in ADDED_KEYS and v == ADDED_KEYS[k])}


def _data_options_identity(dataset: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Identity keys of the data options: under their older name where they have one
    (``data.maze_size``), so runs made before data options keep their hash; resumable ones out."""
    from recurdepth.data.registry import find_dataset

    spec = find_dataset(dataset)
    declared = spec.options if spec is not None else {}
    out: dict[str, Any] = {}
    for name, value in options.items():
        opt = declared.get(name)
        if opt is not None and opt.resumable:
            continue
        out[f"data.{opt.alias}" if opt is not None and opt.alias else f"data.options.{name}"] = value
    return out


run_identity = protocol_dict


def stored_identity(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The identity, under today's rules, of a config or flat identity saved by any version.

    Keys added since are filled with their defaults and older spellings are migrated (e.g.
    ``model.dilation``), so a run folder or checkpoint written before keeps resuming.
    """
    nested: dict[str, Any] = {}
    for key, value in stored.items():
        section, _, leaf = key.partition(".")
        if leaf and section in SECTIONS:
            nested.setdefault(section, {})[leaf] = value
        else:
            nested[key] = value
    try:
        return protocol_dict(resolve_portable(RunConfig.from_dict(nested)))
    except ConfigError:
        return dict(stored)


def identity_hash(cfg: RunConfig) -> str:
    """SHA-256 (hex) of a resolved config's identity: equal for runs that learn the same thing."""
    text = json.dumps(protocol_dict(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# config.yaml of a run folder: what was asked for (reusable on any device) and what ran.
REQUESTED_KEY, RESOLVED_KEY = "requested", "resolved"


def run_config_yaml(requested: RunConfig, resolved: RunConfig) -> str:
    """The text of a run folder's ``config.yaml``: the requested and the resolved config."""
    return yaml.safe_dump({REQUESTED_KEY: requested.to_dict(), RESOLVED_KEY: resolved.to_dict()},
                          sort_keys=False)


def _saved_part(d: Any, key: str) -> Any:
    """One part of a run folder's config.yaml; a plain config file is its own both parts."""
    if isinstance(d, Mapping) and set(d) == {REQUESTED_KEY, RESOLVED_KEY}:
        return d[key]
    return d


__all__ = ["AMP_CHOICES", "BF16_CPU_FLAGS", "COMPILE_MODES", "SCHEDULES", "OPTIMIZERS", "config_keys", "cpu_has_bf16", "DataConfig", "ModelConfig", "OptimConfig", "RunConfig",
           "RuntimeConfig", "TrainConfig", "apply_overrides", "identity_hash", "load_config",
           "protocol_dict", "read_resolved", "resolve", "resolve_device", "resolve_eval_iters",
           "resolve_on",
           "resolve_portable", "run_config_yaml", "run_identity", "stored_identity",
           "LIMITS", "MAX_ITERS", "MAX_WIDTH", "Limit", "check_values", "is_multirun",
           "override_type", "parse_multirun", "parse_override", "split_override"]
