"""The root ``nasforge`` command group: usage errors in one line, ``--version``, the help."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from nasforge.cli._common import echo_error, user_modules

__all__ = ["app", "command"]

F = TypeVar("F", bound=Callable[..., Any])


def _as_flag(option: Any) -> Any:
    """``--help`` shown as the flag it is (no ``<bool>`` value type)."""
    if option is not None:
        option.metavar = ""
    return option


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _as_flag(super().get_help_option(ctx))


class _Group(TyperGroup):
    """The root command group; it reports usage errors (bad option, bad value) in one line."""

    def get_help_option(self, ctx: Any) -> Any:
        return _as_flag(super().get_help_option(ctx))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        ClickException, UsageError = _click_errors()
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            echo_error(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            echo_error(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _click_errors() -> tuple[Any, Any]:
    """click's ``ClickException`` and ``UsageError`` (typer vendors click from 0.22)."""
    try:
        from typer._click import exceptions
    except ImportError:  # typer < 0.22 runs on the click package
        from click import exceptions  # type: ignore[no-redef]
    return exceptions.ClickException, exceptions.UsageError


app = typer.Typer(
    name="nasforge",
    cls=_Group,
    help="Neural architecture search: run, compare and inspect searches.",
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command(name: str | None = None) -> Callable[[F], F]:
    """Register the decorated function as the command ``name`` of :data:`app`."""
    return app.command(name, cls=_Command)


def _version(value: bool) -> None:
    if value:
        from nasforge import __version__

        typer.echo(f"nasforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_version,
            is_eager=True,
            metavar="",
        ),
    ] = False,
) -> None:
    """Neural architecture search: run, compare and inspect searches."""
    user_modules()  # --space my_space:fn names my_space.py in the current folder
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()
