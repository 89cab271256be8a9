"""The import rules of the README's module map: lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "recurdepth"
BASE = {"errors", "io", "paths", "locks", "progress", "lazy", "crash"}

# What each top-level part may import besides itself (the README's table).
ALLOWED = {
    **{name: BASE for name in BASE},
    "data": BASE,
    "models": BASE | {"data"},
    "training": BASE | {"data", "models"},
    "analysis": BASE | {"data", "models", "training"},
    "experiments": BASE | {"data", "models", "training", "analysis"},
    "report": BASE | {"data", "models", "training", "analysis", "experiments"},
}


def imports_of(path: Path) -> set[str]:
    """Top-level recurdepth parts ``path`` imports anywhere (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "recurdepth":  # submodules only, not names such as __version__
                names = [f"recurdepth.{a.name}" for a in node.names
                         if (SRC / a.name).is_dir() or (SRC / f"{a.name}.py").is_file()]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(n.split(".")[1] for n in names
                     if n.startswith("recurdepth.") and len(n.split(".")) > 1)
    return found


def test_every_part_imports_only_what_the_module_map_allows():
    broken = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).parts
        part = rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")
        if part not in ALLOWED:
            continue  # cli, api, __init__, __main__ may import everything
        for target in sorted(imports_of(path) - {part} - ALLOWED[part]):
            broken.append(f"{path.relative_to(SRC)} imports recurdepth.{target}")
    assert not broken, "\n".join(broken)


def test_the_rule_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from recurdepth.training.config import RunConfig\n")
    assert imports_of(bad) == {"training"} and "training" not in ALLOWED["data"]
