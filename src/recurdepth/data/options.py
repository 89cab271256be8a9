"""Options a data set declares for itself (``data.options.<key>``), checked against its schema.

A data-set record (``recurdepth.data.registry.DatasetSpec``) holds ``options``: a mapping of
option name to :class:`DataOption`. A run's ``data.options`` may name only those; each value is
type-checked, range-checked by the option's own rule, and missing ones take their defaults. An
option that replaced an older top-level key (``data.maze_size`` → ``data.options.size``) names
it as ``alias``: the old key keeps working in configs and overrides, and run identities keep
using the old name, so runs made before keep their identity hash. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recurdepth.errors import ConfigError

if TYPE_CHECKING:
    from recurdepth.data.registry import DatasetSpec


@dataclass(frozen=True)
class DataOption:
    """One option of a data set: default, type, rule, help text, older key."""

    default: Any
    doc: str
    kind: type = int  # int, float, str or bool
    nullable: bool = False  # None allowed (and the default may be None)
    # A rule on the value: the text that completes "data.options.<key> must be ..." when the
    # value breaks it, else None.
    rule: Callable[[Any], str | None] | None = None
    alias: str | None = None  # the older key data.<alias> it replaced (still accepted)
    # True: changing it does not change what is learned (e.g. an extra test size), so it is not
    # part of a run's identity and may change when a run resumes.
    resumable: bool = False
    # True: a list of values is accepted too (each checked; e.g. several test sizes).
    many: bool = False

    def check(self, key: str, value: Any) -> Any:
        """``value`` converted and checked (ConfigError naming ``key`` and what is allowed)."""
        if self.many and isinstance(value, (list, tuple)):
            if not value:
                raise ConfigError(f"{key}: expected a {self.kind.__name__} or a non-empty list "
                                  f"of them, got []")
            items = [self._check_one(f"{key}[{i}]", v) for i, v in enumerate(value)]
            if None in items:
                raise ConfigError(f"{key}: a list may not hold null, got {list(value)!r}")
            return list(dict.fromkeys(items))  # a repeated value would be tested twice
        return self._check_one(key, value)

    def _check_one(self, key: str, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{key} must be set (a {self.kind.__name__}); {self.doc}")
        ok = isinstance(value, self.kind) and not (self.kind is not bool and isinstance(value, bool))
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"{key}: expected {self.kind.__name__}"
                              f"{' or a list of them' if self.many else ''}"
                              f"{' or null' if self.nullable else ''}, got {value!r}")
        problem = self.rule(value) if self.rule is not None else None
        if problem:
            raise ConfigError(f"{key} must be {problem}, got {value!r}")
        return value


def odd_size(low: int = 3, high: int = 1001) -> Callable[[Any], str | None]:
    """The rule "an odd number from ``low`` to ``high``" (maze sizes)."""
    def rule(v: Any) -> str | None:
        return None if low <= v <= high and v % 2 == 1 else f"an odd number from {low} to {high:,}"
    return rule


def at_least(low: int | float) -> Callable[[Any], str | None]:
    """The rule "``>= low``"."""
    def rule(v: Any) -> str | None:
        return None if v >= low else f">= {low}"
    return rule


def sized_options(default: int, size_help: str, eval_help: str,
                  rule: Callable[[Any], str | None]) -> dict[str, DataOption]:
    """``size`` and ``eval_size`` of a data set made at a chosen size, with the maze keys' aliases.

    The keys (and their older names) are the mazes', so the sized-task code (example size, other
    test sizes: ``eval_size`` is one size or a list) serves every such data set.
    """
    return {
        "size": DataOption(default, size_help, rule=rule, alias="maze_size"),
        "eval_size": DataOption(None, eval_help, nullable=True, rule=rule,
                                alias="eval_maze_size", resumable=True, many=True),
    }


def option_key(spec: DatasetSpec, name: str) -> str:
    """How error messages name an option: ``data.options.size (data.maze_size)``."""
    opt = spec.options.get(name)
    alias = f" (or data.{opt.alias})" if opt is not None and opt.alias else ""
    return f"data.options.{name}{alias}"


def resolve_options(spec: DatasetSpec, given: Mapping[str, Any],
                    owners: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """``given`` checked against ``spec.options`` with defaults filled in (ConfigError otherwise).

    ``owners`` (option name → data sets declaring it) lets the error for an option of another
    data set say where it belongs.
    """
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        where = ""
        if owners:
            named = [f"{k} is an option of {', '.join(owners[k])}" for k in unknown if k in owners]
            where = f" ({'; '.join(named)})" if named else ""
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for data set {spec.name!r} "
                          f"(data.options){where}; valid options: "
                          f"{', '.join(spec.options) or 'none'}")
    return {name: opt.check(option_key(spec, name), given.get(name, opt.default))
            for name, opt in spec.options.items()}


__all__ = ["DataOption", "at_least", "odd_size", "option_key", "resolve_options", "sized_options"]
