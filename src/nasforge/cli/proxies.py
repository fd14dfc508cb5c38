"""``nasforge proxies``: zero-cost proxies on a sample of architectures, correlated with the
benchmark's test accuracy (and with a table of reference scores)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json, Quiet, cache_dir_option, deprecated_alias, device_option


@command("proxies")
def proxies_(
    space: Annotated[str, typer.Option(help="Search space with a model builder.")] = "nb201",
    dataset: Annotated[
        str, typer.Option(help="cifar10, cifar100 or imagenet16-120 (classes, image size).")
    ] = "cifar10",
    sample: Annotated[int, typer.Option(help="Architectures to score.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the batch and the weights.")] = 0,
    proxy: Annotated[
        str | None, typer.Option(help="Comma-separated proxies (default: all).", show_default=False)
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Table of reference scores (CSV with arch, dataset and proxy columns); the "
            "sample is drawn from its architectures.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="CIFAR-10 (python release, image folder or .tar.gz); default: a synthetic batch.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images in the batch.")] = 64,
    device: Annotated[str, device_option()] = "auto",
    cache_dir: Annotated[
        Path | None, cache_dir_option("Keep computed scores in this folder.")
    ] = None,
    cache: Annotated[Path | None, deprecated_alias("--cache")] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Score a sample of architectures with zero-cost proxies and print each proxy's Spearman
    and Kendall correlation with the benchmark's test accuracy (and with --reference scores)."""
    with common.errors():
        from nasforge.runs.proxies import proxies_summary

        cache_dir = common.renamed("--cache-dir", cache_dir, "--cache", cache, quiet=quiet)
        kwargs: dict[str, Any] = {
            "space": space,
            "dataset": dataset,
            "sample": sample,
            "seed": seed,
            "names": None if proxy is None else common.split(proxy),
            "reference": reference,
            "data": data,
            "batch_size": batch_size,
            "device": device,
            "cache_dir": cache_dir,
        }
        if common.show_progress(quiet):
            with common.progress_bar("scoring") as bar:
                task = bar.add_task("scoring", total=None)
                summary = proxies_summary(
                    **kwargs,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            summary = proxies_summary(**kwargs)
    if as_json:
        common.print_json(summary)
        return
    _print_table(summary)


def _print_table(summary: Mapping[str, Any]) -> None:
    from rich.table import Table

    columns = [
        ("spearman_acc", "Spearman acc"),
        ("kendall_acc", "Kendall acc"),
        ("reference_spearman_acc", "ref. Spearman acc"),
        ("spearman_reference", "Spearman ref."),
        ("kendall_reference", "Kendall ref."),
    ]
    shown = [(k, t) for k, t in columns if any(k in r for r in summary["proxies"])]
    table = Table(
        title=f"{summary['space']} {summary['dataset']}: {summary['archs']} architectures, "
        f"seed {summary['seed']}, batch {summary['batch']} ({summary['seconds']:.0f} s)"
    )
    table.add_column("proxy")
    for _, title in shown:
        table.add_column(title, justify="right")
    for row in summary["proxies"]:
        common.add_row(table, row["proxy"], *(common.fmt(row.get(k), 3) for k, _ in shown))
    common.console().print(table)
