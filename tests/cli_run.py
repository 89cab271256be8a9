"""Run ``recurdepth ARGV`` in this process, as a user would type it, for the tests."""

from __future__ import annotations

import pytest

from recurdepth.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``recurdepth ARGV`` (argparse's exits included)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
