"""What every command shares: the options that mean the same in each one (one name, one
default, one type), option parsing, one-line errors, and printing (JSON, fields, tables).

Only typer and nasforge's error classes are imported here; rich is imported when something
is printed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast

import typer

from nasforge.errors import InvalidConfigError, NasforgeError

if TYPE_CHECKING:
    from rich.console import Console

    from nasforge.evaluators.base import Evaluator

E = TypeVar("E", bound="Evaluator")

#: Exit code of a run stopped by bad input (as click uses for usage errors).
EXIT_USAGE = 2
#: Exit code of a run stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


# -- options shared by the commands ------------------------------------------------------------
def parse_number(text: str) -> int | float:
    """A ``--budget``: a whole number stays an ``int`` (``100``), else a ``float`` (``2.5``)."""
    stripped = str(text).strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        value = float(stripped)
    except ValueError:
        raise typer.BadParameter(
            f"{abbreviate(str(text))} is not a number: give an integer or a decimal, e.g. 100 "
            "or 2.5."
        ) from None
    if not math.isfinite(value):
        raise typer.BadParameter(f"{abbreviate(str(text))} is not a finite number.")
    return value


def _option(*names: str, help: str, panel: str | None = None, **extra: Any) -> Any:
    extra.setdefault("show_default", False)
    return typer.Option(*names, help=help, rich_help_panel=panel, **extra)


def flag(*names: str, help: str, panel: str | None = None) -> Any:
    """A plain on/off flag (``--json``): shown without a value type in ``--help``."""
    return typer.Option(*names, help=help, rich_help_panel=panel, metavar="")


Quiet = Annotated[bool, flag("--quiet", "-q", help="No progress bars or notes on stderr.")]
Json = Annotated[bool, flag("--json", help="Print one JSON object on stdout.")]
Dedupe = Annotated[
    bool | None,
    typer.Option(
        "--dedupe/--no-dedupe",
        help="Answer proposals equal in function to an evaluated architecture from the "
        "record, free; strategies that take architectures up to function follow it. "
        "Default: on where the space has a canonical form (nb201, darts).",
        show_default=False,
    ),
]
Seed = Annotated[int, typer.Option(help="Seed of the strategy (and of the training).")]
Stopping = Annotated[
    str | None,
    typer.Option(
        metavar="RULE",
        help="Stop bad trials early on their intermediate reports (evaluators that report: "
        "function, train): median, successive-halving, hyperband or asha.",
        show_default=False,
    ),
]
StoppingParam = Annotated[
    list[str] | None,
    typer.Option(
        "--stopping-param",
        metavar="KEY=VALUE",
        help="Parameter of the --stopping rule, e.g. min_step=1 (repeatable).",
        show_default=False,
    ),
]
Storage = Annotated[
    str | None,
    typer.Option(
        help="Persist the study, e.g. sqlite:///runs.db; a rerun resumes it.", show_default=False
    ),
]
#: The storage of a command that reads a study (show, export, pareto, worker).
StorageRequired = Annotated[
    str,
    typer.Option(
        help="Storage URL: sqlite:///runs.db (one machine) or "
        "postgresql+psycopg://user:password@host/db (many machines).",
        show_default=False,
    ),
]
Param = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="Strategy parameter (repeatable).",
        show_default=False,
    ),
]


def budget_option(help: str, panel: str | None = None) -> Any:
    """``--budget``: a number (integer or decimal), the cost a search may spend."""
    return _option("--budget", help=help, panel=panel, parser=parse_number, metavar="NUMBER")


def workers_option(help: str, panel: str | None = None) -> Any:
    """``--workers``: evaluations (processes) running at once; ``--jobs`` is its old name."""
    return _option("--workers", help=help, panel=panel)


def _device(value: str | None) -> str | None:
    if value is None:
        return None
    from nasforge.naming import check_device

    try:
        return check_device(value)
    except InvalidConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--device ")) from None


def device_option(panel: str | None = None) -> Any:
    """``--device``: ``auto`` (CUDA when PyTorch sees a GPU) by default in every command; any
    other spelling than auto, cpu, cuda or cuda:N is a usage error."""
    return typer.Option(
        help="auto (CUDA if present), cpu, cuda or cuda:N.", rich_help_panel=panel, callback=_device
    )


def resolution_option(
    help: str = "Image side in pixels (default the data's).", panel: str | None = None
) -> Any:
    """``--resolution``: the image side in pixels (``--input-size`` is its old name)."""
    return _option("--resolution", help=help, panel=panel)


def cache_dir_option(help: str, panel: str | None = None) -> Any:
    """``--cache-dir``: a folder of cached files (``--cache`` is its old name)."""
    return _option("--cache-dir", help=help, panel=panel)


def deprecated_alias(old: str) -> Any:
    """A hidden option under an old name, kept so that old command lines still run."""
    return typer.Option(old, hidden=True, show_default=False)


def renamed(new: str, value: Any, old: str, old_value: Any, *, quiet: bool = False) -> Any:
    """The value of ``new``, or of its old name ``old`` (with a note on stderr); both given is
    an error."""
    if old_value is None:
        return value
    if value is not None:
        raise InvalidConfigError(f"{old} is the old name of {new}; give only {new}.")
    note(f"note: {old} is now called {new}; the old name will go away.", quiet)
    return old_value


# -- errors and notes --------------------------------------------------------------------------
def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


#: Longest run of characters without a space that an error line shows whole; a longer one
#: (a value pasted by mistake, wherever the message was built) keeps its start and end.
LONGEST_WORD = 120
_LONG_WORD = re.compile(rf"\S{{{LONGEST_WORD + 1},}}")


def shorten(text: str) -> str:
    """``text`` with every run of more than :data:`LONGEST_WORD` non-space characters cut in
    the middle (``start...end``)."""
    half = (LONGEST_WORD - 3) // 2
    return _LONG_WORD.sub(lambda m: f"{m.group()[:half]}...{m.group()[-half:]}", text)


def echo_error(message: str) -> None:
    """Print ``error: message`` on one line of stderr, long values abbreviated."""
    text = shorten(one_line(message))
    typer.echo(typer.style("error:", fg="red", bold=True) + " " + text, err=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    echo_error(message)
    raise typer.Exit(code)


def interrupted(message: str) -> NoReturn:
    """Print ``message`` (what a Ctrl-C left behind) on stderr and exit with code 130."""
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_INTERRUPTED)


def note(message: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(message, err=True)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn nasforge's errors into one line on stderr and exit code 2."""
    try:
        yield
    except NasforgeError as exc:
        fail(str(exc))  # storage messages hide passwords themselves
    except OSError as exc:  # a file that cannot be written or read, a full disk...
        where = f" {abbreviate(str(exc.filename))}" if exc.filename else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        fail(f"{reason}:{where}; check the path and its permissions.")


def abbreviate(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut in the middle to ``limit`` characters when longer."""
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    half = (limit - 3) // 2
    return f"{shown[:half]}...{shown[-half:]}"


def user_modules() -> None:
    """Let the user's own modules in the current folder import, as ``python -m`` does: a
    ``--space my_space:make_model`` (or another ``module:attribute`` a command is given) names
    ``my_space.py`` there. The folder is put first on ``sys.path`` once (where ``sys.path``
    holds ``""``, the current folder is there already)."""
    folder = os.getcwd()
    if "" not in sys.path and folder not in sys.path:
        sys.path.insert(0, folder)


def given_path(option: str, text: str, what: str) -> Path:
    """``text`` as a path, refused when empty: ``Path("")`` would silently be the current
    folder.

    Raises:
        InvalidConfigError: ``text`` is empty or blank.
    """
    if not text.strip():
        raise InvalidConfigError(f"{option} is empty; give {what}.")
    return Path(text)


def check_writable(option: str, path: Path, *, folder: bool = False) -> None:
    """Refuse an output path that cannot be written before any work is done.

    ``folder``: the path may be an existing folder (the command writes a file in it).

    Raises:
        InvalidConfigError: The path is a folder (and may not be), its folder does not exist
            or is not a folder, or it (or its folder) is not writable.
    """
    shown = abbreviate(str(path))
    try:
        _check_writable(option, path, shown, folder)
    except OSError as exc:  # a name too long, a loop of links...
        raise InvalidConfigError(
            f"{option} {shown}: {exc.strerror or exc}; choose another path."
        ) from None


def _check_writable(option: str, path: Path, shown: str, folder: bool) -> None:
    import os

    if path.is_dir():
        if not folder:
            raise InvalidConfigError(f"{option} {shown} is a folder; give a file name.")
        target = path
    else:
        if path.exists() and not os.access(path, os.W_OK):
            raise InvalidConfigError(
                f"{option} {shown}: the file exists and cannot be written; choose another path."
            )
        target = path.parent if str(path.parent) else Path(".")
        if not target.exists():
            raise InvalidConfigError(
                f"{option} {shown}: the folder {abbreviate(str(target))} does not exist; "
                "create it first or choose another path."
            )
        if not target.is_dir():
            raise InvalidConfigError(
                f"{option} {shown}: {abbreviate(str(target))} is not a folder; choose another path."
            )
    if not os.access(target, os.W_OK | os.X_OK):
        raise InvalidConfigError(
            f"{option} {shown}: the folder {abbreviate(str(target))} is not writable; choose "
            "another path."
        )


def show_progress(quiet: bool) -> bool:
    """A progress bar is drawn on stderr when it is a terminal, unless ``--quiet``."""
    return not quiet and console(stderr=True).is_terminal


# -- option parsing ----------------------------------------------------------------------------
def split(text: str) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_value(text: str) -> Any:
    """A ``--param`` value: JSON where it parses (``3``, ``0.5``, ``true``, ``[12, 200]``,
    ``{"popsize": 12}``), ``True``/``False`` in any case, else the text itself."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    try:
        return json.loads(stripped)
    except ValueError:
        return stripped


def parse_params(
    items: Sequence[str], *, option: str = "--param", example: str = "population_size=20"
) -> dict[str, Any]:
    """Parse repeated ``key=value`` options into a dictionary (values via :func:`parse_value`);
    a malformed one is refused with ``option`` and ``example`` in the message."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise InvalidConfigError(
                f"Malformed {option} {abbreviate(item)}; write it as key=value, e.g. "
                f"{option} {example}."
            )
        if key in params:
            raise InvalidConfigError(f"{option} {abbreviate(key)} is given twice; give it once.")
        params[key] = parse_value(value)
    return params


def parse_objectives(objective: Sequence[str] | None, objectives: str | None) -> list[str]:
    """The objectives of ``--objective`` (repeated) or ``--objectives A,B``; default
    ``valid_acc:max``. An empty value is an error, not the default."""
    if objective and objectives is not None:
        raise InvalidConfigError(
            "Give the objectives either with --objectives A,B or with repeated "
            "--objective, not both."
        )
    if objectives is not None:
        items = split(objectives)
        if not items:
            raise InvalidConfigError(
                f"--objectives {abbreviate(objectives)} names no objective; give e.g. "
                "--objectives valid_acc:max,params_M:min, or leave it out for valid_acc:max."
            )
        return items
    for item in objective or []:
        if not item.strip():
            raise InvalidConfigError(
                "--objective is empty; give a metric and direction, e.g. --objective valid_acc:max."
            )
    return [item.strip() for item in objective or ["valid_acc:max"]]


def check_at_least_one(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise InvalidConfigError(f"{flag} must be at least 1, got {value}.")


# -- printing ----------------------------------------------------------------------------------
def clean(value: Any) -> Any:
    """``value`` made JSON-safe: non-finite floats become ``null``, paths and tuples plain."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(clean(obj), indent=2, allow_nan=False))


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    return "–" if value is None else str(value)


def add_row(table: Any, *cells: Any) -> None:
    """Add a row of plain text to a rich table (no markup: metric names hold brackets)."""
    from rich.text import Text

    table.add_row(*(Text(str(c)) for c in cells))


def print_fields(rows: Sequence[tuple[str, str]]) -> None:
    """Print ``label  value`` lines; long values (architectures) are never wrapped."""
    from rich.markup import escape

    out = console()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        out.print(f"[bold]{escape(label.ljust(width))}[/bold]  {escape(value)}", soft_wrap=True)


def progress_bar(label: str, *extra: Any) -> Any:
    """A rich progress bar on stderr: label, bar, done/total, extra columns, times."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
    )


def announcing(evaluator: type[E], plan: str | None) -> type[E]:
    """A subclass of the class ``evaluator`` that says what the search does when it measures
    its first sub-network (after every check of the input passed), then every tenth (see
    :func:`announce`); used by the super-transformer and llm sub-network searches."""

    class Announcing(evaluator):  # type: ignore[valid-type,misc]  # a class given at run time
        count = 0

        def evaluate(self, arch: Any, fidelity: Mapping[str, Any] | None = None) -> Any:
            announce(plan, self.count)
            result = super().evaluate(arch, fidelity)
            self.count += 1
            return result

    return cast("type[E]", Announcing)


def announce(plan: str | None, count: int) -> None:
    """Before the first sub-network is measured, what the search does (``plan``; ``None``:
    silent), and before every tenth after it, how many were measured."""
    if plan is None:
        return
    if count == 0:
        note(plan, False)
    elif count % 10 == 0:
        note(f"measured {count} sub-networks", False)
