"""User-facing errors: the CLI prints their message without a traceback."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class RecurDepthError(Exception):
    """An error caused by user input (a config, a path, a file); its message says what to do."""


class ConfigError(RecurDepthError, ValueError):
    """An invalid configuration key or value."""


class DataError(RecurDepthError):
    """A missing, corrupt or incompatible data set or file."""


def choices_message(what: str, value: object, valid: Iterable[object]) -> str:
    """Return "unknown <what> 'value' (did you mean 'b'?); valid choices: a, b, c"."""
    import difflib

    names = [str(v) for v in valid]
    close = difflib.get_close_matches(str(value), names, n=2, cutoff=0.75)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown {what} {value!r}{hint}; valid choices: {', '.join(names)}"


def check_keys(mapping: Mapping[str, object], valid: Iterable[str], what: str,
               where: str = "") -> None:
    """ConfigError "unknown <what> key(s) 'a', 'b'<where>; valid keys: ..." for unknown keys."""
    valid = list(valid)
    unknown = sorted(set(mapping) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {', '.join(map(repr, unknown))}{where}; "
                          f"valid keys: {', '.join(valid)}")
