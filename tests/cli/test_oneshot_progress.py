"""A one-shot search says what it does on stderr when no progress bar is drawn."""

from __future__ import annotations

from pathlib import Path

from cli_testing import invoke, sqlite

from nasforge.train.data import CIFAR10_CLASSES

from .test_search_training import write_tree

ARGS = ("--strategy", "spos", "--epochs", "1", "--channels", "4", "--cells", "1")
PARAMS = ("-p", "population=2", "-p", "generations=2", "-p", "top_k=1")


def test_spos_logs_epochs_and_generations_unless_quiet(tmp_path: Path) -> None:
    data = write_tree(tmp_path / "d", CIFAR10_CLASSES, n=14)
    common = (
        *ARGS,
        *PARAMS,
        "--data",
        str(data),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    result = invoke("search", *common, "--storage", sqlite(tmp_path))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("nasforge: spos epoch 1/1 done") for line in lines), lines
    assert any(line.startswith("nasforge: SPOS generation 2/2: scoring") for line in lines)
    quiet = invoke("search", *common, "--quiet", "--storage", sqlite(tmp_path, "q.db"))
    assert quiet.exit_code == 0, quiet.stderr
    assert "nasforge:" not in quiet.stderr
