"""``nasforge export``: errors, and the note on a tabular study (no trained weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_testing import assert_usage_error, invoke


def test_export_errors_and_tabular_note(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert invoke("search", "--budget", "5", "--storage", url, "--study", "tab").exit_code == 0
    result = invoke("export", "tab", "--storage", url, "--out", str(tmp_path / "m.pt"))
    assert result.exit_code == 0, result.stderr
    assert "untrained" in result.stdout and "note: study 'tab'" in result.stderr
    assert_usage_error(invoke("export", "tab", "--out", "x.pt"), "Missing option '--storage'")
    assert_usage_error(invoke("export", "tab", "--storage", url), "Missing option '--out'")
    assert_usage_error(invoke("export", "nope", "--storage", url, "--out", "x.pt"), "study 'nope'")
    assert_usage_error(
        invoke("export", "tab", "--storage", url, "--out", "x.pt", "--format", "tflite"),
        "Unknown export format 'tflite'",
    )


def test_an_empty_out_is_refused_not_read_as_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("export", "tab", "--storage", "sqlite:///nowhere.db", "--out", "")
    assert_usage_error(result, "--out is empty")
    compare = invoke("compare", "--seeds", "1", "--budget", "5", "--out", " ")
    assert_usage_error(compare, "--out is empty")
    assert list(tmp_path.iterdir()) == []  # nothing written in the current folder
