"""``nasforge compare``: strategies (and one-shot methods) over many seeds and datasets on a
tabular benchmark, as a table, and files with --out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import (
    Json,
    Quiet,
    budget_option,
    deprecated_alias,
    device_option,
    resolution_option,
    workers_option,
)
from nasforge.cli._table import TableFile, TableParam, table_datasets, table_settings
from nasforge.errors import InvalidConfigError

_ONESHOT = "One-shot methods"


def _oneshot_option(help: str) -> Any:
    return typer.Option(help=help, rich_help_panel=_ONESHOT, show_default=False)


@command()
def compare(
    strategies: Annotated[
        str, typer.Option(help="Comma-separated strategies to compare.")
    ] = "random,regularized-evolution",
    dataset: Annotated[str, typer.Option(help="Dataset, or a comma-separated list.")] = "cifar10",
    budget: Annotated[float, budget_option("Queries per run (a whole number).")] = 100,
    seeds: Annotated[
        str, typer.Option(help="Number of seeds (N: seeds 0..N-1) or a comma list of seeds.")
    ] = "100",
    benchmark: Annotated[str, typer.Option(help="Tabular benchmark.")] = "nb201",
    table: TableFile = None,
    table_param: TableParam = None,
    metrics: Annotated[
        str,
        typer.Option(
            metavar="SEARCHED,JUDGED",
            help="The metric the runs maximise and the one they are judged by (e.g. a "
            "table's columns; the same name twice for a table with one accuracy).",
        ),
    ] = "valid_acc,test_acc",
    fidelity: Annotated[
        int | None,
        typer.Option(
            help="Search the table of this many training epochs (e.g. 12), one query each "
            "(default: the full training).",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="STRATEGY.KEY=VALUE",
            help="Strategy parameter (repeatable).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            help="Write trials.csv, summary.csv/json and plots to this folder.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None, workers_option("Runs at once, in worker processes (default: one per CPU).")
    ] = None,
    jobs: Annotated[int | None, deprecated_alias("--jobs")] = None,
    dedupe: Annotated[
        str,
        typer.Option(
            "--dedupe",
            metavar="auto|on|off|both",
            help="Functional deduplication for every strategy alike: auto (on where the space "
            "has a canonical form), on, off, or both (every strategy with and without, side "
            "by side).",
        ),
    ] = "auto",
    data: Annotated[
        Path | None,
        _oneshot_option(
            "CIFAR-10 for the one-shot methods named in --strategies (darts, gdas...)."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        _oneshot_option("Supernet epochs of each one-shot run (default: each method's own)."),
    ] = None,
    channels: Annotated[int | None, _oneshot_option("Supernet channels (default 16).")] = None,
    cells: Annotated[int | None, _oneshot_option("Supernet cells per stage (default 5).")] = None,
    resolution: Annotated[
        int | None,
        resolution_option("Image side for the supernet (default the data's).", panel=_ONESHOT),
    ] = None,
    data_fraction: Annotated[
        float | None, _oneshot_option("Share of the training images used (default 1).")
    ] = None,
    device: Annotated[str, device_option(panel=_ONESHOT)] = "auto",
    threads: Annotated[int | None, _oneshot_option("CPU threads of the supernet.")] = None,
    seconds_per_query: Annotated[
        float,
        typer.Option(
            help="Seconds charged per black-box query on the time axis (time.png, mean "
            "seconds), e.g. one architecture's training time.",
        ),
    ] = 0.0,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Compare strategies over many seeds (and datasets) on a tabular benchmark.

    One-shot methods (darts, gdas, pc-darts, spos, darts-pt, single-level-darts) may be
    named beside the strategies, with --data: each seed trains the method's supernet and its
    epochs' derived architectures are looked up in the same table; time.png puts every
    method on one wall-time axis.
    """
    try:
        with common.errors():
            workers = common.renamed("--workers", workers, "--jobs", jobs, quiet=quiet)
            common.check_at_least_one("--workers", workers)
            names = common.split(strategies)
            datasets = common.split(dataset)
            params = _strategy_params(param or [])
            seed_arg = _parse_seeds(seeds)
            folder = None if out is None else common.given_path("--out", out, "a folder")
            own_table = table_settings(table, table_param or [])
            if own_table is not None:
                benchmark = "table"
                datasets = table_datasets(own_table, datasets, default="cifar10")
            oneshot_kwargs = _oneshot_kwargs(
                names,
                benchmark=benchmark,
                data=data,
                epochs=epochs,
                channels=channels,
                cells=cells,
                resolution=resolution,
                data_fraction=data_fraction,
                device=None if device == "auto" else device,  # the default: refused nowhere
                threads=threads,
            )
            kwargs: dict[str, Any] = {
                "datasets": datasets,
                "seeds": seed_arg,
                "budget": budget,
                "benchmark": benchmark,
                "strategy_params": params or None,
                "n_jobs": workers,
                "dedupe": dedupe,
                "seconds_per_query": seconds_per_query,
                **({"fidelity": fidelity} if fidelity is not None else {}),
                **({"benchmark_params": own_table} if own_table is not None else {}),
                **({"metrics": common.split(metrics)} if metrics != "valid_acc,test_acc" else {}),
                **oneshot_kwargs,
            }
            comp = _run(names, kwargs, show_progress=common.show_progress(quiet))
            written = _write(comp, folder)
    except KeyboardInterrupt:
        common.interrupted("interrupted: the comparison was stopped; nothing was written")
    if as_json:
        common.print_json(comp.to_json())
        for label, path in written.items():
            common.note(f"wrote {label}: {path}", quiet)
        return
    oneshot = tuple(getattr(comp, "oneshot", ()))
    charged = float(getattr(comp, "seconds_per_query", 0.0) or 0.0) > 0
    _print_table(
        comp.summary(),
        oneshot=oneshot,
        show_time=bool(oneshot) or charged,
        dedupe=getattr(comp, "dedupe", None),
        fidelity=getattr(comp, "fidelity", None),
    )
    for label, path in written.items():
        typer.echo(f"wrote {label}: {path}")


def _run(names: Sequence[str], kwargs: dict[str, Any], *, show_progress: bool) -> Any:
    try:
        from nasforge.experiments import run_comparison
    except ImportError as exc:
        common.fail(
            f"the comparison harness (nasforge.experiments) cannot be imported: {exc}; "
            "reinstall nasforge"
        )
    if not show_progress:
        return run_comparison(list(names), **kwargs)
    progress = common.progress_bar("runs")
    task = progress.add_task("runs", total=None)

    def report(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        return run_comparison(list(names), progress=report, **kwargs)


def _write(comp: Any, out: Path | None) -> dict[str, Path]:
    if out is None:
        return {}
    if out.exists() and not out.is_dir():
        raise InvalidConfigError(f"--out {str(out)!r} is a file; give a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        return dict(comp.write(out))
    except OSError as exc:
        common.fail(f"cannot write the results to {str(out)!r}: {exc.strerror or exc}")


def _oneshot_kwargs(
    names: Sequence[str],
    *,
    benchmark: str,
    data: Path | None,
    epochs: int | None,
    channels: int | None,
    cells: int | None,
    resolution: int | None,
    data_fraction: float | None,
    device: str | None,
    threads: int | None,
) -> dict[str, Any]:
    """The one-shot arguments of ``run_comparison``; options of one-shot methods given
    without one are refused, naming them."""
    from nasforge.experiments.compare import is_oneshot

    options = {
        "--data": data,
        "--epochs": epochs,
        "--channels": channels,
        "--cells": cells,
        "--resolution": resolution,
        "--data-fraction": data_fraction,
        "--device": device,
        "--threads": threads,
    }
    if not any(is_oneshot(name) for name in names):
        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise InvalidConfigError(
                f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to one-shot "
                "methods (darts, gdas, ...), and --strategies names none; add one or drop "
                f"{'it' if len(given) == 1 else 'them'}."
            )
        return {}
    import nasforge
    from nasforge.runs.oneshot import require_data, supernet_settings

    require_data(data, "The one-shot methods in --strategies train")
    settings = supernet_settings(
        nasforge.tabular.create(benchmark).space,
        channels=channels,
        cells=cells,
        resolution=resolution,
        data_fraction=data_fraction,
    )
    return {
        "data": str(data),
        "oneshot_settings": settings,
        "oneshot_epochs": epochs,
        "device": device or "auto",
        "threads": threads,
    }


def _strategy_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    flat = common.parse_params(items)
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        strategy, dot, name = key.partition(".")
        if not dot or not strategy or not name:
            raise InvalidConfigError(
                f"Malformed --param {key}={value!r}; for compare write STRATEGY.key=value, "
                "e.g. --param regularized-evolution.population_size=20."
            )
        out.setdefault(strategy, {})[name] = value
    return out


#: Most seeds ``--seeds N`` may ask for.
MAX_SEEDS = 10_000


def _parse_seeds(text: str) -> int | list[int]:
    parts = common.split(text)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if not values:
        raise InvalidConfigError(
            f"--seeds {text!r} is not a number of seeds or a comma list of seeds; e.g. "
            "--seeds 100 or --seeds 0,1,2."
        )
    if len(values) == 1 and "," not in text:
        if not values[0] > 0:
            raise InvalidConfigError(f"--seeds must be a positive number, got {values[0]!r}.")
        if values[0] > MAX_SEEDS:
            raise InvalidConfigError(
                f"--seeds {values[0]} runs more than {MAX_SEEDS:,} seeds; give at most that "
                "many (or a comma list of seeds)."
            )
        return values[0]
    from nasforge.storage import MAX_SEED

    if any(not 0 <= v <= MAX_SEED for v in values):
        raise InvalidConfigError(
            f"Seeds must be whole numbers from 0 to 2**63 - 1, got {common.abbreviate(text)}."
        )
    return values


def _print_table(
    rows: Sequence[Any],
    oneshot: Sequence[str] = (),
    show_time: bool = False,
    dedupe: Any = None,
    fidelity: int | None = None,
) -> None:
    """The summary as a table; with ``show_time`` a column of the mean wall seconds spent
    (with the charge per query), which a plain table comparison has no use for. Each row
    says what its strategy knew of functional equivalence (the ``knowledge`` column), and a
    line under the title what deduplication the comparison ran with."""
    from rich import box
    from rich.table import Table

    runs = sorted({int(row.n_runs) for row in rows if getattr(row, "n_runs", None) is not None})
    seeds = f", {'/'.join(str(r) for r in runs)} runs each" if runs else ""
    table = Table(
        title=f"test accuracy (mean ± std) of the best-by-validation architecture{seeds}"
        + (f"; {', '.join(oneshot)}: final derived architecture" if oneshot else ""),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for label in ("dataset", "strategy"):
        table.add_column(label, no_wrap=True)
    numbers = (
        "budget",
        "test acc",
        "valid",
        "opt %",
        "regret",
        "RI %",
        *(("time s",) if show_time else ()),
    )
    for label in numbers:
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("knowledge", no_wrap=True)
    previous: tuple[Any, Any] | None = None
    fmt = common.fmt
    # a one-shot method's final architecture is the same at every query budget: its row is
    # printed once per dataset, in the section of the largest budget, marked "final"
    last: dict[Any, Any] = {}
    for row in rows:
        last[row.dataset] = max(last.get(row.dataset, row.budget), row.budget)
    for row in rows:
        if row.strategy in oneshot and row.budget != last[row.dataset]:
            continue
        if previous is not None and previous != (row.dataset, row.budget):
            table.add_section()
        previous = (row.dataset, row.budget)
        rate = row.optimum_rate
        common.add_row(
            table,
            str(row.dataset),
            str(row.strategy),
            "final" if row.strategy in oneshot else fmt(row.budget),
            f"{fmt(row.mean_test)} ± {fmt(row.std_test)}",
            fmt(row.mean_valid),
            fmt(None if rate is None else 100.0 * rate, 1),
            fmt(getattr(row, "test_regret", None)),
            fmt(row.ri),
            *((fmt(getattr(row, "mean_seconds", None), 0),) if show_time else ()),
            str(getattr(row, "knowledge", "") or ""),
        )
    console = common.console()
    if not console.is_terminal:  # pipes and logs: no column cut short
        console.width = max(console.width, 140 if show_time else 130)
    if dedupe is not None:
        console.print(_dedupe_line(dedupe), soft_wrap=True, highlight=False, markup=False)
    if fidelity is not None:
        console.print(
            f"table: the benchmark after {fidelity} training epochs (objective, test accuracy, "
            "optima); one query each",
            soft_wrap=True,
            highlight=False,
        )
    console.print(table)
    for line in legend(oneshot=bool(oneshot), show_time=show_time):
        console.print(line, soft_wrap=True, highlight=False)


def _dedupe_line(dedupe: Any) -> str:
    if dedupe == "both":
        return "deduplication: every strategy run with it ([dedupe]) and without it ([no-dedupe])"
    state = "on" if dedupe else "off"
    return f"deduplication: {state} for every strategy (see the knowledge column)"


def legend(*, oneshot: bool, show_time: bool) -> list[str]:
    """What the columns of the comparison table mean, one line each."""
    lines = [
        "budget: queries (table look-ups) each run may spend",
        "test acc: test accuracy of the architecture a run picked by validation accuracy, "
        "mean ± std over runs",
        "valid: its validation accuracy, mean over runs",
        "opt %: share of runs that reached the table's best validation accuracy",
        "regret: the table's best test accuracy minus the picked architecture's, mean over runs",
        "RI %: relative improvement of the mean test accuracy over random search (of the "
        "same deduplication setting)",
        "knowledge: what the strategy knew of which architectures compute the same function "
        "(dedupe: the study answered functional twins from the record, and strategies that "
        "take architectures up to function followed it)",
    ]
    if oneshot:
        lines.append(
            "final: a one-shot method's last derived architecture (the same at every budget)"
        )
    if show_time:
        lines.append(
            "time s: mean wall seconds a run had spent by the end of the budget, with the "
            "charge per query (--seconds-per-query)"
        )
    return lines
