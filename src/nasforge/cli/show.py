"""``nasforge show``: a stored study (settings, trial counts, best trials), or the list of
the studies in a storage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json, StorageRequired
from nasforge.errors import InvalidConfigError


@command()
def show(
    storage: StorageRequired,
    study_name: Annotated[
        str | None,
        typer.Argument(
            metavar="[STUDY]", help="Study to show; leave out to list the stored studies."
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="How many of the best trials to list.")] = 10,
    as_json: Json = False,
) -> None:
    """Show a stored study (settings, trial counts, best trials), or list the stored studies."""
    with common.errors():
        if top < 0:
            raise InvalidConfigError(f"--top must be 0 or more, got {top}.")
        from nasforge.runs import studies_summary, study_summary

        if study_name is None:
            data = studies_summary(storage)
        else:
            import nasforge

            study = nasforge.load_study(study_name, storage, read_only=True)
            try:
                data = study_summary(study, top)
            finally:
                study.storage.close()
    if as_json:
        common.print_json(data)
    elif study_name is None:
        _print_studies(data)
    else:
        _print_study(data)


def _print_studies(data: Mapping[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    rows = data["studies"]
    if not rows:
        typer.echo(f"no studies in {data['storage']}")
        return
    table = Table(title=escape(f"studies in {data['storage']}"))
    for column in ("name", "strategy", "seed", "dataset", "trials", "complete"):
        table.add_column(column, overflow="fold")
    for row in rows:
        common.add_row(
            table,
            row["name"],
            row["strategy"],
            str(row["seed"]),
            common.cell(row["dataset"]),
            str(row["n_trials"]),
            str(row["n_complete"]),
        )
    common.console().print(table)


def _print_study(data: Mapping[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from nasforge.cli._summary import best_rows, dedupe_text, shown_metrics

    cell = common.cell
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(data["states"].items()))
    space_params = f" ({cell(data['space_params'])})" if data["space_params"] else ""
    common.print_fields(
        [
            ("study", data["study"]),
            ("space", data["space"] + space_params),
            ("strategy", f"{data['strategy']} (seed {data['seed']})"),
            ("parameters", cell(data["strategy_params"]) or "defaults"),
            ("objectives", ", ".join(data["objectives"])),
            ("evaluator", cell(data["evaluator"]) if data["evaluator"] else "not run yet"),
            ("created", cell(data["created_at"])),
            ("trials", f"{data['n_trials']}" + (f" ({states})" if states else "")),
            ("dedupe", dedupe_text(data)),
            *([("stopping", cell(data["stopping"]))] if data.get("stopping") else []),
            ("cost", f"{data['spent']:g}"),
            *best_rows(data["best"], data["objectives"]),
        ]
    )
    _print_stopped(data)
    if not data["top"]:
        return
    n_objectives = len(data["objectives"])
    metrics = [
        m
        for i, m in enumerate(shown_metrics(data["objectives"])[: n_objectives + 2])
        if i < n_objectives or any(m in t["metrics"] for t in data["top"])
    ]
    with_index = any(t["index"] is not None for t in data["top"])
    labels = arch_labels([t["arch"] for t in data["top"]])
    table = Table(title=escape(f"top {len(data['top'])} trials by {data['objectives'][0]}"))
    table.add_column("#", justify="right")
    if with_index:
        table.add_column("index", justify="right")
    table.add_column("arch", no_wrap=True)
    for metric in metrics:
        table.add_column(escape(metric), justify="right")
    for trial in data["top"]:
        common.add_row(
            table,
            str(trial["number"]),
            *([cell(trial["index"])] if with_index else []),
            labels[trial["arch"]],
            *(common.fmt(trial["metrics"].get(m), 3) for m in metrics),
        )
    common.console().print(table)
    print_archs(data["top"], labels)


def arch_labels(archs: list[str]) -> dict[str, str]:
    """A short label per distinct architecture string, in order of first appearance (A, B,
    ..., Z, AA, AB, ...): tables show the label, the full strings follow the table."""
    labels: dict[str, str] = {}
    for arch in archs:
        if arch not in labels:
            n, label = len(labels), ""
            while True:
                n, rest = divmod(n, 26)
                label = chr(ord("A") + rest) + label
                if n == 0:
                    break
                n -= 1
            labels[arch] = label
    return labels


def print_archs(top: list[Mapping[str, Any]], labels: Mapping[str, str]) -> None:
    """The full architecture strings, one per line and never wrapped (copyable), each with
    the trials that evaluated it when there are several (the same architecture)."""
    from rich.markup import escape

    out = common.console()
    width = max(len(label) for label in labels.values())
    for arch, label in labels.items():
        numbers = [str(t["number"]) for t in top if t["arch"] == arch]
        same = f"  (trials {', '.join(numbers)}: the same architecture)" if len(numbers) > 1 else ""
        out.print(f"[bold]{label.rjust(width)}[/bold]  {escape(arch)}{same}", soft_wrap=True)


def _print_stopped(data: Mapping[str, Any]) -> None:
    """The trials the stopping rule ended early: where, with what last value, at what cost."""
    from rich.markup import escape
    from rich.table import Table

    from nasforge.cli._summary import shown_metrics

    stopped = data.get("stopped") or []
    if not stopped:
        return
    metric = shown_metrics(data["objectives"])[0]  # the first objective's
    total = data["states"].get("STOPPED", len(stopped))
    shown = f"{len(stopped)} of {total}" if total > len(stopped) else str(total)
    table = Table(title=escape(f"{shown} trials stopped early (STOPPED)"))
    for column in ("#", f"last {metric}", "cost", "why"):
        table.add_column(escape(column), overflow="fold")
    for trial in stopped:
        common.add_row(
            table,
            str(trial["number"]),
            common.fmt(trial["metrics"].get(metric), 3),
            common.fmt(trial["cost"], 3),
            trial["reason"] or "",
        )
    common.console().print(table)
