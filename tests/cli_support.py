"""Running the command line in tests: one call in process, and the one-error-line contract."""

from __future__ import annotations

import pytest

from fisherlab.cli import main

__all__ = ["assert_one_error_line", "call"]


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``main(args)`` in process: exit status, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_error_line(code: int, err: str, *fragments: str, status: int = 2) -> str:
    """Exit ``status``, exactly one ``fisherlab: error:`` line on stderr with ``fragments``, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("fisherlab: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
