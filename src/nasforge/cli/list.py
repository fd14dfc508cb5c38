"""``nasforge list``: the registries' spaces, strategies, benchmarks and evaluators, or a
benchmark's datasets, devices and metrics."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json
from nasforge.runs.catalog import LIST_TARGETS


@command("list")
def list_(
    what: Annotated[
        str,
        typer.Argument(help=f"What to list: {', '.join(LIST_TARGETS)}.", show_default=False),
    ],
    benchmark: Annotated[str, typer.Option(help="Benchmark (metrics, datasets).")] = "nb201",
    dataset: Annotated[str, typer.Option(help="Dataset (metrics).")] = "cifar10",
    fidelity: Annotated[
        int | None, typer.Option(help="Training epochs (metrics; default the highest).")
    ] = None,
    as_json: Json = False,
) -> None:
    """List spaces, strategies, benchmarks or evaluators, or a benchmark's metrics or datasets."""
    with common.errors():
        from nasforge.runs.catalog import catalog

        data = catalog(what, benchmark=benchmark, dataset=dataset, fidelity=fidelity)
    if as_json:
        common.print_json(data)
        return
    from rich.markup import escape
    from rich.table import Table

    rows: list[dict[str, Any]] = data[what]
    title = what if "benchmark" not in data else f"{what} of {data['benchmark']}"
    if what == "metrics":
        title += f" on {data['dataset']} ({data['fidelity']} epochs)"
    table = Table(title=escape(title))
    columns = list(rows[0]) if rows else ["name"]
    for column in columns:
        table.add_column(escape(column), overflow="fold")
    for row in rows:
        common.add_row(table, *(common.cell(row.get(c)) for c in columns))
    common.console().print(table)
