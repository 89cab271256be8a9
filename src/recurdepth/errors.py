"""User-facing errors: the CLI prints their message without a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class RecurDepthError(Exception):
    """An error caused by user input (a config, a path, a file); its message says what to do."""


class ConfigError(RecurDepthError, ValueError):
    """An invalid configuration key or value."""


class DataError(RecurDepthError):
    """A missing, corrupt or incompatible data set or file."""


def choices_message(what: str, value: object, valid: Iterable[object]) -> str:
    """Return "unknown <what> 'value'; valid choices: a, b, c" for error messages."""
    valid_list = ", ".join(str(v) for v in valid)
    return f"unknown {what} {value!r}; valid choices: {valid_list}"
