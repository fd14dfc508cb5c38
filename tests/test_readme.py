"""The README works when pasted: its Python blocks run as scripts (twice, from an empty
folder), and every ``nasforge`` shell line names a command and options that exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasforge import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def shell_lines() -> list[str]:
    """The README's shell commands, continuation lines joined, comments dropped."""
    lines: list[str] = []
    for block in blocks("bash"):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def nasforge_commands() -> list[list[str]]:
    """The ``nasforge ...`` commands of the shell lines (``a && b`` gives two)."""
    out = []
    for line in shell_lines():
        for part in line.split("&&"):
            words = shlex.split(part.replace("$URL", "sqlite:///studies.db"))
            if words and words[0] == "nasforge":
                out.append(words[1:])
    return out


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {
        path: (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith("example_")
    }


def test_the_python_blocks_run_as_scripts_twice(tmp_path: Path) -> None:
    scripts = blocks("python")
    assert len(scripts) >= 3
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    again = list(range(len(scripts)))
    for attempt in (1, 2):
        # pasting an example again must work too: the second time, every block that left
        # something in the folder (a study database, results) runs over what it left
        for number in again if attempt == 2 else range(len(scripts)):
            script = tmp_path / f"example_{number}.py"
            script.write_text(scripts[number])
            before = _files(tmp_path)
            done = subprocess.run(
                [sys.executable, script.name],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (attempt, number, done.stderr[-3000:])
            assert "Traceback" not in done.stderr
            if attempt == 1 and _files(tmp_path) == before:
                again.remove(number)
    assert again, "no README block writes to its folder: the second run checks nothing"
    assert (tmp_path / "studies.db").exists()
    assert (tmp_path / "results" / "trajectories.png").exists()


def test_every_shell_line_is_one_command() -> None:
    for line in shell_lines():
        # one command per line: no "a|b|c" alternatives pasted into a shell pipe
        assert "|" not in line.replace("||", ""), line


@pytest.mark.parametrize("args", nasforge_commands(), ids=lambda a: " ".join(a)[:60])
def test_every_nasforge_line_parses(args: list[str]) -> None:
    """The command and every option exist (``--help`` parses the line, runs nothing)."""
    runner = CliRunner()
    result = runner.invoke(cli.app, [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)
    assert "Usage:" in result.output


def test_list_lines_name_real_lists() -> None:
    runner = CliRunner()
    listed = [args for args in nasforge_commands() if args[:1] == ["list"]]
    assert listed
    for args in listed:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, (args, result.output)


def test_worker_example_does_not_join_the_search_example() -> None:
    def studies(command: str) -> set[str]:
        return {
            args[args.index("--study") + 1]
            for args in nasforge_commands()
            if args[0] == command and "--study" in args
        }

    assert studies("worker") and not studies("worker") & studies("search")
