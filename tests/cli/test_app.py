"""The ``nasforge`` entry points: help, version, ``python -m nasforge``, option parsing."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

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
    summary = json.loads(done.stdout)
    assert summary["n_trials"] - summary["n_duplicates"] == 10 and summary["dedupe"] is True
    assert done.stderr.strip() == "False"
    help_run = subprocess.run(
        [sys.executable, "-m", "nasforge", "--help"], capture_output=True, text=True, check=True
    )
    assert "search" in help_run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nasforge", "search", "--space", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: Unknown search space 'x'")


# -- one concept, one flag ---------------------------------------------------------------------
def _commands() -> dict[str, Any]:
    import typer.main

    return dict(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]


def _options(command: Any) -> dict[str, Any]:
    return {
        opt: param
        for param in command.params
        if not getattr(param, "hidden", False) and param.param_type_name == "option"
        for opt in param.opts
    }


def test_one_name_type_and_default_per_concept() -> None:
    commands = {name: _options(command) for name, command in _commands().items()}
    for old in ("--jobs", "--input-size", "--cache"):  # old spellings: hidden aliases only
        assert [name for name, opts in commands.items() if old in opts] == []
    assert {name for name, opts in commands.items() if "--workers" in opts} == {"compare", "worker"}
    assert {"--resolution" in commands[n] for n in ("search", "compare", "profile")} == {True}
    assert {"--cache-dir" in commands[n] for n in ("search", "proxies")} == {True}
    assert {name for name, opts in commands.items() if "-p" in opts} == {
        "search",
        "compare",
        "worker",
    }
    by_flag: dict[str, set[tuple[str, Any]]] = {}
    for opts in commands.values():
        for flag, param in opts.items():
            if flag in ("--budget", "--device", "--workers", "--quiet", "--json"):
                info = param.type_descriptor.parameter_info
                shown = (str(param.type_descriptor.annotation), param.metavar, info.parser)
                shown += (param.is_flag, param.show_default, param.default if param.is_flag else 0)
                by_flag.setdefault(flag, set()).add(shown)
    assert {flag: len(kinds) for flag, kinds in by_flag.items()} == dict.fromkeys(by_flag, 1)
    device = {
        (p.default, p.show_default)
        for o in commands.values()
        for f, p in o.items()
        if f == "--device"
    }
    assert device == {("auto", True)}


def test_flags_are_flags_and_required_options_are_required() -> None:
    for name, command in _commands().items():
        for param in command.params:
            if param.param_type_name != "option":
                continue
            if param.type_descriptor.annotation is bool and param.opts != ["--dedupe"]:
                assert param.is_flag and not param.secondary_opts, (name, param.opts)
            if param.opts == ["--dedupe"] and name != "compare":  # on, off, or the space's default
                assert param.secondary_opts == ["--no-dedupe"] and param.default is None
            if param.default is None and param.required:
                assert not param.hidden
    required = {
        name: sorted(p.opts[0] for p in command.params if p.required and p.opts[0][:2] == "--")
        for name, command in _commands().items()
    }
    assert required["show"] == ["--storage"]
    assert required["export"] == ["--out", "--storage"]
    assert required["pareto"] == ["--storage"]
    assert required["worker"] == ["--storage", "--study"]
    text = invoke("export", "--help").stdout
    assert "[required]" in text and "<bool>" not in text


def test_budget_takes_integers_and_decimals() -> None:
    assert cli._common.parse_number("100") == 100
    assert isinstance(cli._common.parse_number("100"), int)
    assert cli._common.parse_number("2.5") == 2.5
    bad = invoke("search", "--budget", "lots")
    assert bad.exit_code == 2 and "'lots' is not a number" in bad.stderr


def test_old_flag_names_still_run_with_a_note() -> None:
    new = invoke("profile", "6111", "--resolution", "16", "--json")
    old = invoke("profile", "6111", "--input-size", "16", "--json")
    assert old.exit_code == 0, old.stderr
    assert json.loads(old.stdout)["input_shape"] == json.loads(new.stdout)["input_shape"]
    assert "--input-size is now called --resolution" in old.stderr
    both = invoke("profile", "6111", "--input-size", "16", "--resolution", "8")
    assert both.exit_code == 2 and "give only --resolution" in both.stderr
