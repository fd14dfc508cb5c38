"""``nasforge pareto``: a multi-objective study's Pareto front, its hypervolume and its ratio
to the benchmark's true front."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json, StorageRequired
from nasforge.errors import InvalidConfigError


@command()
def pareto(
    study_name: Annotated[
        str, typer.Argument(metavar="STUDY", help="A multi-objective study.", show_default=False)
    ],
    storage: StorageRequired,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Draw the front against the true front into this image (.png, .svg, .pdf).",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        str,
        typer.Option(
            help="Hypervolume reference point: nadir (of the true front, +10%) or median "
            "(of the table)."
        ),
    ] = "nadir",
    as_json: Json = False,
) -> None:
    """A study's Pareto front, its hypervolume and its ratio to the benchmark's true front."""
    with common.errors():
        if reference not in ("nadir", "median"):
            raise InvalidConfigError(f"--reference must be 'nadir' or 'median', got {reference!r}.")
        import nasforge
        from nasforge.pareto import study_front

        if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise InvalidConfigError(
                f"--plot {common.abbreviate(str(plot))}: give a .png, .svg or .pdf file name."
            )
        if plot is not None:
            common.check_writable("--plot", plot)
        study = nasforge.load_study(study_name, storage, read_only=True)
        if len(study.objectives) < 2:
            study.storage.close()
            raise InvalidConfigError(
                f"Study {study_name!r} has one objective ({study.objectives[0]}); a Pareto "
                "front needs two or more. Use nasforge show for its best trials, or search "
                "with --objectives A:max,B:min."
            )
        report = study_front(study, reference=reference, plot=plot)  # type: ignore[arg-type]
        study.storage.close()
    clean, fmt = common.clean, common.fmt
    metrics = [o.metric for o in report.objectives]
    true = report.true
    data = {
        "study": study_name,
        "objectives": [str(o) for o in report.objectives],
        "n_scored": report.n_scored,
        "front": [
            {
                "number": t.number,
                "arch": t.arch.text,
                **{m: clean(t.metrics.get(m)) for m in metrics},
            }
            for t in report.trials
        ],
        "hypervolume": clean(report.hypervolume),
        "true_front_size": None if true is None else len(true.rows),
        "true_hypervolume": None if true is None else clean(true.hypervolume),
        "ratio": clean(report.ratio),
        "reference": None if true is None else reference,
        "plot": None if report.plot is None else str(report.plot),
    }
    if as_json:
        common.print_json(data)
        return
    from rich.markup import escape
    from rich.table import Table

    from nasforge.cli.show import arch_labels, print_archs

    # architectures by label in the table (never cut), their full strings below it
    labels = arch_labels([row["arch"] for row in data["front"]])
    table = Table(title=escape(f"Pareto front of {study_name} ({', '.join(data['objectives'])})"))
    for column in ("trial", *metrics, "arch"):
        table.add_column(escape(column), no_wrap=True)
    for row in data["front"]:
        common.add_row(
            table, row["number"], *(fmt(row[m], 3) for m in metrics), labels[row["arch"]]
        )
    common.console().print(table)
    print_archs(data["front"], labels)
    rows = [("front", f"{len(data['front'])} of {report.n_scored} scored trials")]
    if true is not None:
        rows += [
            ("true front", f"{len(true.rows)} cells (benchmark {true.benchmark}/{true.dataset})"),
            ("hypervolume", f"{fmt(report.hypervolume, 4)} of {fmt(true.hypervolume, 4)}"),
            ("ratio", f"{fmt(report.ratio, 4)} (reference: {reference})"),
        ]
    if report.plot is not None:
        rows.append(("plot", str(report.plot)))
    common.print_fields(rows)
