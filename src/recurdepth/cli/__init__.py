"""The ``recurdepth`` command: one sub-command per module of this package.

Each module in ``COMMANDS`` defines ``register(subparsers)`` that adds its sub-command and sets
``func(args) -> int``. User errors (:class:`~recurdepth.errors.RecurDepthError`) are printed
as one line, without a traceback, and exit with status 2; any other exception is one line too
(type, message, what to do) with its traceback in a log file (:mod:`recurdepth.crash`), status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from recurdepth import __version__
from recurdepth.errors import RecurDepthError

COMMANDS = ("models", "mazes", "train", "evaluate", "sweep", "report", "reproduce", "analyze")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="recurdepth",
        description="Recurrence versus depth: models, mazes, training, sweeps, reports, analyses.",
    )
    parser.add_argument("--version", action="version", version=f"recurdepth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"recurdepth.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"recurdepth.cli.{name}":
                continue  # a command still under construction
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recurdepth`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RecurDepthError as e:
        print(f"recurdepth {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"recurdepth {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns any failure into one line
        from recurdepth.crash import report_unexpected

        return report_unexpected(args.command, e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
