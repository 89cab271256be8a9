"""The model registry: one obvious way to build any model of the zoo (``build_model``).

Each family registers its builder with the SPEC's effective-depth formula
``depth_base + depth_per_iter · iters`` (used to turn a requested effective depth into iters;
tests check it against the depth counted from each built model's structure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recurdepth.data.registry import get_dataset
from recurdepth.errors import ConfigError, choices_message
from recurdepth.models.spec import FamilySpec, spec_fields
from recurdepth.models.unrolled import RecurDepthModel, meta_build


_FAMILIES: dict[str, FamilySpec] = {}


def register_family(name: str, **spec: Any) -> Callable[[Callable[..., RecurDepthModel]], Callable]:
    """Class/function decorator registering a family builder ``builder(mode, iters, width, dataset, **options)``."""

    def decorator(builder: Callable[..., RecurDepthModel]) -> Callable[..., RecurDepthModel]:
        if name in _FAMILIES:
            raise ValueError(f"model family {name!r} is already registered")
        _FAMILIES[name] = FamilySpec(name=name, builder=builder, **spec)
        return builder

    return decorator


def _ensure_loaded() -> None:
    # Importing the family modules registers them.
    from recurdepth.models import (  # noqa: F401
        convnet, dt_net_1d, maze, mlp, residual, resnet, transformer)


def list_models() -> list[str]:
    """Names of every registered model family, sorted."""
    _ensure_loaded()
    return sorted(_FAMILIES)


def get_family(name: str) -> FamilySpec:
    """Return the FamilySpec of ``name`` or a ConfigError listing the families."""
    _ensure_loaded()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(choices_message("model family", name, sorted(_FAMILIES))) from None


def family_with_option(family: str, option: str) -> str:
    """``family`` if it declares ``option``, else its registered variant that does.

    ConfigError naming the families that declare ``option`` when neither does.
    """
    _ensure_loaded()
    if option in get_family(family).options:
        return family
    for name in sorted(_FAMILIES):
        if _FAMILIES[name].variant_of == family and option in _FAMILIES[name].options:
            return name
    having = sorted(n for n, f in _FAMILIES.items() if option in f.options)
    raise ConfigError(f"family {family!r} has no option {option!r}; families with it: "
                      f"{', '.join(having) or 'none'}")


def build_model(
    family: str,
    mode: str,
    *,
    effective_depth: int | None = None,
    iters: int | None = None,
    width: int | None = None,
    dataset: str | None = None,
    **options: Any,
) -> RecurDepthModel:
    """Build a model of ``family`` in ``mode`` at an effective depth or a number of iterations.

    Give ``effective_depth`` or ``iters`` (not both) for families with a body; fixed-depth
    families (``resnet18``, ``resnet50``) need neither. ``width`` defaults to the paper's width for
    ``dataset`` (default: the family's first data set). ``options`` are family options, e.g.
    ``dilation`` for ``maze_dilated``.
    """
    spec = get_family(family)
    dataset = dataset or spec.datasets[0]
    if dataset not in spec.datasets:
        get_dataset(dataset)  # an unknown name: the error lists the data sets
        raise ConfigError(f"family {family!r} is not defined for data set {dataset!r}; "
                          f"valid data sets: {', '.join(spec.datasets)}")
    if mode not in spec.modes:
        raise ConfigError(choices_message(f"mode for family {family!r}", mode, spec.modes))
    unknown = set(options) - set(spec.options)
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} for family {family!r}; "
                          f"valid options: {valid}")
    width = spec.default_width[dataset] if width is None else int(width)
    if width < 2:
        raise ConfigError(f"width must be >= 2, got {width}")
    iters = spec.resolve_iters(effective_depth, iters)
    return spec.builder(mode, iters, width, dataset, **options)


def paper_configurations(family: str | None = None) -> list[dict[str, Any]]:
    """Every (family, mode, data set, depth) of the paper with iters and parameter count.

    Models are built on the meta device, so even the 40M-parameter networks cost no memory.
    """
    rows: list[dict[str, Any]] = []
    families = [family] if family else list_models()
    for name in families:
        spec = get_family(name)
        for dataset in spec.datasets:
            for mode in spec.modes:
                for depth in spec.paper_depths:
                    model = meta_build(lambda: build_model(
                        name, mode, effective_depth=depth if spec.unrolled else None,
                        dataset=dataset))
                    rows.append(model.describe())
    return rows


ZOO_COLUMNS = ("family", "mode", "dataset", "effective_depth", "iters", "parameters")


def zoo_table() -> dict[str, Any]:
    """Families (with descriptions) and the rows of :func:`paper_configurations`, as plain data.

    ``recurdepth models`` prints the copy stored in ``models/zoo.json`` so that it starts without
    torch; a test checks that copy equals this function's output (rewrite it with
    :func:`write_zoo_table` after changing a family).
    """
    return {"families": {name: get_family(name).description for name in list_models()},
            "rows": [{c: r[c] for c in ZOO_COLUMNS} for r in paper_configurations()],
            "specs": {name: spec_fields(get_family(name)) for name in list_models()}}


def write_zoo_table() -> None:
    """Rewrite ``models/zoo.json`` from the registry."""
    import json
    from pathlib import Path

    from recurdepth.io import atomic_write_text

    atomic_write_text(Path(__file__).with_name("zoo.json"),
                      json.dumps(zoo_table(), indent=1) + "\n")


def builder_options(family: str) -> dict[str, Any]:
    """The family's options with their defaults (from the registry)."""
    spec = get_family(family)
    return dict(spec.options)


__all__ = ["FamilySpec", "ZOO_COLUMNS", "build_model", "builder_options", "family_with_option",
           "get_family", "list_models", "paper_configurations", "register_family", "write_zoo_table", "zoo_table"]
