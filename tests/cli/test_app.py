"""The ``nasforge`` entry points: help, version, ``python -m nasforge``, option parsing."""

from __future__ import annotations

import json
import subprocess
import sys

from cli_testing import invoke

import nasforge
from nasforge import cli


def test_help_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("search", "compare", "list", "show"):
        assert command in result.stdout
    assert invoke().exit_code == 0  # no command: the help
    assert invoke("--version").stdout.strip() == f"nasforge {nasforge.__version__}"


def test_parse_value() -> None:
    assert cli.parse_value("3") == 3 and isinstance(cli.parse_value("3"), int)
    assert cli.parse_value("0.5") == 0.5
    assert cli.parse_value("1e-3") == 0.001
    assert cli.parse_value("True") is True and cli.parse_value("false") is False
    assert cli.parse_value("onehot") == "onehot"
    assert cli.parse_params(["a=1", "b = x "]) == {"a": 1, "b": "x"}


def test_python_m_nasforge_runs_without_torch() -> None:
    code = (
        "import sys\n"
        "from nasforge.cli import main\n"
        "try:\n"
        "    main(['search', '--budget', '10', '--json', '--quiet'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["n_trials"] == 10
    assert done.stderr.strip() == "False"
    help_run = subprocess.run(
        [sys.executable, "-m", "nasforge", "--help"], capture_output=True, text=True, check=True
    )
    assert "search" in help_run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nasforge", "search", "--space", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: Unknown search space 'x'")
