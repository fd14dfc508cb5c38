"""``nasforge dashboard``: watch the studies of a storage in a browser, live; ``nasforge
report``: the same views of some studies as one HTML file that opens offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import StorageRequired, flag
from nasforge.errors import InvalidConfigError

Compare = Annotated[
    list[Path] | None,
    typer.Option(
        "--compare",
        metavar="DIR",
        help="A folder written by nasforge compare --out DIR, shown beside the studies "
        "(repeatable).",
        show_default=False,
    ),
]


@command()
def dashboard(
    storage: StorageRequired,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. The default is this machine only; 0.0.0.0 (every "
            "network interface) lets anyone who reaches the machine read every study."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free one).")] = 8080,
    compare: Compare = None,
    open_browser: Annotated[bool, flag("--open", help="Open the page in the web browser.")] = False,
) -> None:
    """Serve a live web page of the storage's studies (trials, best so far, fronts, drawings).

    The page polls the server every 2 s, so trials that workers finish appear without a
    reload; the storage is only read. Ctrl-C stops the server.
    """
    with common.errors():
        from nasforge.dashboard import serve

        serve(storage, host=host, port=port, comparisons=compare or (), open_browser=open_browser)
    typer.echo("Dashboard stopped.", err=True)


@command()
def report(
    storage: StorageRequired,
    studies: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="STUDY",
            help="Studies to include (or --all).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(help="The HTML file to write (replaced when it exists)."),
    ] = Path("report.html"),
    compare: Compare = None,
    all_studies: Annotated[bool, flag("--all", help="Include every study of the storage.")] = False,
    max_drawings: Annotated[
        int,
        typer.Option(
            help="Trials per study whose drawing and full metrics the file holds (the best, "
            "the Pareto front, then the best by the first objective)."
        ),
    ] = 200,
) -> None:
    """Write the dashboard's views of studies as one HTML file that opens offline."""
    with common.errors():
        if out.suffix.lower() not in (".html", ".htm"):
            raise InvalidConfigError(
                f"--out {common.abbreviate(str(out))}: give an .html file name, e.g. report.html."
            )
        if max_drawings < 0:
            raise InvalidConfigError(f"--max-drawings must be 0 or more, got {max_drawings}.")
        common.check_writable("--out", out)
        names = _studies(storage, studies or [], all_studies)
        from nasforge.dashboard import write_report

        path = write_report(
            storage, names, out, comparisons=compare or (), max_drawings=max_drawings
        )
    size = path.stat().st_size
    common.print_fields(
        [
            ("report", str(path)),
            ("studies", ", ".join(names)),
            ("size", f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"),
        ]
    )


def _studies(url: str, names: list[str], every: bool) -> list[str]:
    """The studies to report: ``names``, or all with ``--all``; neither or both is refused
    with the stored studies listed."""
    if names and every:
        raise InvalidConfigError("Give study names or --all, not both.")
    if names:
        return names
    from nasforge.storage import get_storage, mask_url

    storage = get_storage(url, read_only=True)
    try:
        stored = [record.name for record in storage.list_studies()]
    finally:
        storage.close()
    shown = ", ".join(stored) if stored else "none"
    if not every:
        raise InvalidConfigError(
            f"Name the studies to report, or pass --all; the studies in {mask_url(url)}: {shown}."
        )
    if not stored:
        raise InvalidConfigError(f"{mask_url(url)} holds no study; run a search there first.")
    return stored
