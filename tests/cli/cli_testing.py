"""Helpers of the command-line tests: run a command, read its JSON, check a usage error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from nasforge import cli

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def search_json(*args: str) -> dict[str, Any]:
    result = invoke("search", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def assert_usage_error(result: Any, *fragments: str) -> str:
    """Exit code 2, one line on stderr starting with ``error:``, no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def sqlite(tmp_path: Path, name: str = "x.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def force_progress(monkeypatch: Any) -> None:
    """Draw progress bars as if stderr were a terminal."""
    from nasforge.cli import _common

    monkeypatch.setattr(_common, "show_progress", lambda quiet: not quiet)
