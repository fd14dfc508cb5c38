"""``--table FILE`` and ``--table-param KEY=VALUE``: a benchmark table of one's own as the
space and benchmark of ``nasforge search`` and ``nasforge compare``
(:func:`nasforge.tabular.from_table`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from nasforge.errors import InvalidConfigError, abbreviate

__all__ = ["TableFile", "TableParam", "table_datasets", "table_settings"]

#: The keys of ``--table-param`` and whether each takes a comma-separated list.
KEYS = {
    "arch_columns": True,
    "metrics": True,
    "free": True,
    "fidelity": False,
    "cost": False,
    "dataset": False,
}

TableFile = Annotated[
    str | None,
    typer.Option(
        "--table",
        metavar="FILE",
        help="A benchmark table of your own (CSV or Parquet: one row per architecture, its "
        "columns and metrics): the space and benchmark searched (instead of --space and "
        "--benchmark). Say which columns are metrics with --table-param metrics=...",
        show_default=False,
    ),
]
TableParam = Annotated[
    list[str] | None,
    typer.Option(
        "--table-param",
        metavar="KEY=VALUE",
        help="Columns of --table (repeatable): metrics=valid_acc:max,latency:min, "
        "arch_columns=op1,op2, fidelity=epochs, cost=train_seconds, dataset=task, "
        "free=params (metrics known without training).",
        show_default=False,
    ),
]


def table_settings(table: str | None, items: Sequence[str]) -> dict[str, Any] | None:
    """The table's settings (:func:`nasforge.tabular.table_params`) from ``--table`` and
    ``--table-param``, checked by reading the table; ``None`` without ``--table``.

    Raises:
        InvalidConfigError: ``--table-param`` without ``--table``, a malformed or unknown
            key, or a table the settings do not describe (see
            :class:`nasforge.tabular.TableBenchmark`).
    """
    if table is None:
        if items:
            raise InvalidConfigError(
                "--table-param describes the columns of --table; give --table FILE."
            )
        return None
    from nasforge.tabular import TableBenchmark, table_params

    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise InvalidConfigError(
                f"Malformed --table-param {abbreviate(item)}; write it as key=value, e.g. "
                "--table-param metrics=valid_acc:max,test_acc:max."
            )
        if key not in KEYS:
            raise InvalidConfigError(
                f"Unknown --table-param {key!r}; the keys are {', '.join(KEYS)}."
            )
        if key in kwargs:
            raise InvalidConfigError(f"--table-param {key} is given twice; give it once.")
        parts = [p.strip() for p in value.split(",") if p.strip()]
        kwargs[key] = parts if KEYS[key] else value.strip()
    settings = table_params(table, **kwargs)
    TableBenchmark(**settings)  # read and check it now: a clear error before anything runs
    return settings


def table_datasets(settings: dict[str, Any], datasets: Sequence[str], default: str) -> list[str]:
    """The datasets to use: the table's own when ``--dataset`` was left at its ``default``
    and the table has no dataset of that name, else those given."""
    from nasforge.tabular import TableBenchmark

    own = list(TableBenchmark(**settings).datasets)
    if list(datasets) == [default] and default not in own:
        return own
    return list(datasets)
