"""What the registry knows of a model family, readable without torch.

Config resolution (``recurdepth train --print-config``, every config error) needs only these
facts, not the builders; they are stored in ``models/zoo.json`` (checked against the registry by
a test), so resolving a config does not wait for torch to import.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError

MODES = ("recurrent", "feedforward")


@dataclass(frozen=True)
class FamilySpec:
    """What the registry knows of a model family."""

    name: str
    description: str
    datasets: tuple[str, ...]
    default_width: Mapping[str, int]
    paper_depths: tuple[int, ...]
    modes: tuple[str, ...] = MODES
    depth_base: int | None = None  # None: a fixed-depth model (no iters)
    depth_per_iter: int = 0
    fixed_depth: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    variant_of: str | None = None  # the family this one is, plus its options (maze_dilated: maze)
    builder: Callable[..., Any] | None = None  # None in a spec read from the stored zoo table

    @property
    def unrolled(self) -> bool:
        """True for families built as stem/body/head with a number of iterations."""
        return self.depth_base is not None

    def depth_for(self, iters: int) -> int:
        """Effective depth of this family at ``iters`` iterations (SPEC §1 formula)."""
        if not self.unrolled:
            raise ConfigError(f"{self.name} has a fixed depth of {self.fixed_depth}")
        return self.depth_base + self.depth_per_iter * iters

    def iters_for(self, effective_depth: int) -> int:
        """Iterations giving ``effective_depth``, or a ConfigError listing valid depths."""
        if not self.unrolled:
            if effective_depth != self.fixed_depth:
                raise ConfigError(f"{self.name} has a fixed effective depth of {self.fixed_depth}, "
                                  f"not {effective_depth}")
            return 0
        extra = effective_depth - self.depth_base
        if extra < self.depth_per_iter or extra % self.depth_per_iter:
            valid = [self.depth_for(i) for i in range(1, 7)]
            raise ConfigError(
                f"effective depth {effective_depth} is impossible for family {self.name!r} "
                f"(depth = {self.depth_base} + {self.depth_per_iter}·iters); valid depths: "
                f"{', '.join(map(str, valid))}, ..."
            )
        return extra // self.depth_per_iter

    def resolve_iters(self, effective_depth: int | None, iters: int | None, *,
                      prefix: str = "") -> int | None:
        """Iterations of a model asked for by ``effective_depth`` or ``iters`` (give one).

        None for a fixed-depth family, which takes no ``iters`` (an ``effective_depth`` must be
        its depth). ``prefix`` (``"model."``) makes error messages name config keys.
        """
        if not self.unrolled:
            if effective_depth is not None:
                self.iters_for(effective_depth)
            if iters is not None:
                raise ConfigError(f"family {self.name!r} has a fixed depth: leave {prefix}iters "
                                  f"unset")
            return None
        if effective_depth is None and iters is None:
            raise ConfigError(f"family {self.name!r} needs {prefix}effective_depth or "
                              f"{prefix}iters; paper depths: "
                              f"{', '.join(map(str, self.paper_depths))}")
        if effective_depth is not None:
            implied = self.iters_for(effective_depth)
            if iters is not None and iters != implied:
                raise ConfigError(f"{prefix}effective_depth={effective_depth} and {prefix}iters="
                                  f"{iters} disagree for family {self.name!r}: give only one")
            iters = implied
        if iters < 1:
            raise ConfigError(f"{prefix}iters must be >= 1, got {iters}")
        return iters



def spec_fields(spec: FamilySpec) -> dict[str, Any]:
    """``spec`` as plain JSON data, every field but the builder."""
    out: dict[str, Any] = {}
    for f in fields(spec):
        if f.name != "builder":
            value = getattr(spec, f.name)
            out[f.name] = (list(value) if isinstance(value, tuple)
                           else dict(value) if isinstance(value, Mapping) else value)
    return out


@lru_cache(maxsize=1)
def _stored_specs() -> dict[str, FamilySpec]:
    path = Path(__file__).with_name("zoo.json")
    try:
        stored = json.loads(path.read_text(encoding="utf-8")).get("specs", {})
    except (OSError, ValueError):
        return {}  # the registry itself then answers
    tuples = {"datasets", "paper_depths", "modes"}
    return {name: FamilySpec(**{k: tuple(v) if k in tuples else v for k, v in d.items()})
            for name, d in stored.items()}


def family_spec(name: str) -> FamilySpec:
    """The family ``name``'s spec: from the stored table until the registry (torch) is loaded."""
    if "recurdepth.models.registry" not in sys.modules and name in _stored_specs():
        return _stored_specs()[name]
    from recurdepth.models.registry import get_family

    return get_family(name)


def variants_with(family: str, option: str) -> list[str]:
    """Registered variants of ``family`` that declare ``option`` (maze → maze_recall for recall)."""
    if "recurdepth.models.registry" in sys.modules:
        from recurdepth.models.registry import get_family, list_models

        specs = [get_family(name) for name in list_models()]
    else:
        specs = list(_stored_specs().values())
    return sorted(s.name for s in specs if s.variant_of == family and option in s.options)


__all__ = ["MODES", "FamilySpec", "family_spec", "spec_fields", "variants_with"]
