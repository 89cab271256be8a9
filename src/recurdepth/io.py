"""Atomic file writes: a reader never sees a half-written file, a crash never leaves one."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """This process's umask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` atomically.

    The file gets the mode a plain ``open()`` would give it (0666 minus the umask; mkstemp's
    temporary files are 0600, which would hide reports from collaborators and web servers).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """``header`` and ``rows`` as CSV text (``\n`` line ends; None becomes an empty cell)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def atomic_write_csv(path: str | os.PathLike, header: Sequence[Any],
                     rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table to ``path`` atomically."""
    return atomic_write_text(path, csv_text(header, rows))


def append_jsonl(path: str | os.PathLike, obj: Any) -> None:
    """Append one JSON line to ``path`` and flush it to disk."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_yaml(path: str | os.PathLike, *, what: str = "file",
              error: type[Exception] | None = None) -> Any:
    """Parse the YAML file ``path``; a missing or malformed file raises ``error`` naming it."""
    from recurdepth.errors import ConfigError

    import yaml

    error = error or ConfigError
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file: give the path of a YAML file")
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        return load_yaml_text(path.read_text(encoding="utf-8"))
    except YamlTooLarge as e:
        raise error(f"{what} {path}: {e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{what} {path} is not valid YAML: {_yaml_problem(e)}") from None
    except OSError as e:
        raise error(f"{what} {path} cannot be read: {e.strerror or e}") from None


def _yaml_problem(e: Exception) -> str:
    """One line: the parser's problem and where it is (its message spans several lines)."""
    problem = getattr(e, "problem", None)
    mark = getattr(e, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(e).split())


# A document with aliases can expand to exponentially many values (the "billion laughs" attack:
# 300 bytes -> 10^9 items). Configs and experiments hold a few hundred values at most.
MAX_YAML_NODES = 100_000


class YamlTooLarge(ValueError):
    """A YAML document whose aliases expand to more than ``MAX_YAML_NODES`` values."""


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` that refuses documents expanding to more than ``MAX_YAML_NODES`` values."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_NODES:
            raise YamlTooLarge(f"its aliases expand to more than {MAX_YAML_NODES:,} values; "
                               f"write the values out instead of nesting aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """Values in ``node`` with every alias expanded (shared nodes counted at each use)."""
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_YAML_NODES + 1  # a recursive alias (a node containing itself) is too large
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, memo)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo) + _expanded_size(v, memo)
            if total > MAX_YAML_NODES:
                break
    memo[key] = total
    return total
