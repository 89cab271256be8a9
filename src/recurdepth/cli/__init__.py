"""The ``recurdepth`` command: one sub-command per module of this package.

Each module named in ``COMMANDS`` defines ``register(subparsers)`` that adds its sub-command and
sets ``func(args) -> int``. Only the module of the command being run is imported (the others are
listed from ``COMMANDS``), so ``--help``, ``models`` and ``mazes`` start without importing torch.
Commands that take ``key=value`` overrides (an ``overrides`` argument) accept them anywhere among
their options. User errors (:class:`~recurdepth.errors.RecurDepthError`) are printed as one line,
without a traceback, and exit with status 2; any other exception is one line too (type, message,
what to do) with its traceback in a log file (:mod:`recurdepth.crash`), status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from recurdepth import __version__
from recurdepth.errors import RecurDepthError

# command -> (module in recurdepth.cli, one-line help shown by `recurdepth --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("models", "list the model zoo with effective depths and parameter counts"),
    "mazes": ("mazes", "generate, show and inspect maze data sets"),
    "train": ("train", "train one model on one data set (resumes an interrupted run)"),
    "eval": ("evaluate", "evaluate a trained run (test/train accuracy, per iteration, other "
                         "maze sizes)"),
    "sweep": ("sweep", "run an experiment's grid of runs into a results database"),
    "presets": ("presets", "list the experiment and analysis presets or print one"),
    "report": ("report", "write the plots, tables and index page of an experiment's results"),
    "reproduce": ("reproduce", "reproduce the paper's central claim end to end"),
    "analyze": ("analyze", "analyses of trained runs: reuse, probes, CKA, feature vis., dynamics, "
                           "receptive field"),
}


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only the command chosen in ``argv`` (all if None) is imported."""
    parser = argparse.ArgumentParser(
        prog="recurdepth",
        description="Recurrence versus depth: models, mazes, training, sweeps, reports, analyses.",
    )
    parser.add_argument("--version", action="version", version=f"recurdepth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen_command(argv) if argv is not None else None
    for name, (module, help_text) in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(f"recurdepth.cli.{module}").register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; ``key=value`` words after options join the command's overrides."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list):
        stray = [w for w in extra if w.startswith("-") or "=" not in w]
        if not stray:
            args.overrides.extend(extra)
            return args
        extra = stray
    if extra:
        parser.parse_args(argv)  # argparse's own "unrecognized arguments" message and exit 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recurdepth`` console script."""
    args = parse_args(argv)
    if not getattr(args, "func", None):
        build_parser([]).print_help()
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
