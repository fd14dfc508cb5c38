"""``nasforge profile``: parameters, MACs, FLOPs and (with --latency) the measured latency
of an architecture's network."""

from __future__ import annotations

from typing import Annotated

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json, deprecated_alias, flag, resolution_option

_DATASETS = "cifar10, cifar100, imagenet16-120"  # nasforge.runs.profile.PROFILE_DATASETS


@command()
def profile(
    arch: Annotated[
        str,
        typer.Argument(
            metavar="ARCH",
            help="Architecture text, an NB201 benchmark index, or a DARTS genotype name.",
            show_default=False,
        ),
    ],
    space: Annotated[str, typer.Option(help="Search space of ARCH.")] = "nb201",
    dataset: Annotated[
        str | None,
        typer.Option(
            help=f"Classes and image size of a dataset: {_DATASETS} (default cifar10).",
            show_default=False,
        ),
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes (instead of --dataset).", show_default=False)
    ] = None,
    resolution: Annotated[
        int | None, resolution_option("Image side in pixels (instead of --dataset).")
    ] = None,
    input_size: Annotated[int | None, deprecated_alias("--input-size")] = None,
    channels: Annotated[
        int | None, typer.Option(help="Width C (default the space's).", show_default=False)
    ] = None,
    cells: Annotated[
        int | None,
        typer.Option(help="Depth: NB201 cells per stage, DARTS layers.", show_default=False),
    ] = None,
    latency: Annotated[
        bool, flag("--latency", help="Also measure the latency on this machine.")
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            help="Latency backends, comma-separated: torch, onnxruntime (default: both, "
            "ONNX Runtime where installed).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per timed pass.")] = 1,
    runs: Annotated[int, typer.Option(help="Timed passes.")] = 50,
    threads: Annotated[int, typer.Option(help="Threads of the runtime.")] = 1,
    as_json: Json = False,
) -> None:
    """Print the parameters, MACs, FLOPs and (with --latency) the measured latency of an
    architecture's network."""
    with common.errors():
        from nasforge.runs.profile import profile_arch

        resolution = common.renamed("--resolution", resolution, "--input-size", input_size)
        data = profile_arch(
            arch,
            space=space,
            dataset=dataset,
            num_classes=num_classes,
            resolution=resolution,
            channels=channels,
            cells=cells,
            latency=latency,
            backends=None if backend is None else common.split(backend),
            batch_size=batch_size,
            runs=runs,
            threads=threads,
        )
    for note in data.pop("notes"):
        typer.echo(f"note: {note}", err=True)
    if as_json:
        common.print_json(data)
        return
    fmt = common.fmt
    rows = [
        ("arch", data["arch"]),
        ("space", f"{data['space']} ({common.cell(data['build'])})"),
        ("input", "x".join(str(d) for d in data["input_shape"])),
        ("params_M", fmt(data["metrics"]["params_M"], 4)),
        ("macs_M", fmt(data["metrics"]["macs_M"], 3)),
        ("flops_M", fmt(data["metrics"]["flops_M"], 3)),
    ]
    rows += [  # a space form's own costs (model_bits, bops)
        (key, f"{float(value):.6g}")
        for key, value in data["metrics"].items()
        if key not in ("params_M", "macs_M", "flops_M")
    ]
    for name, result in data["latency"].items():
        spread = f"p10 {result['p10_ms']:.3f}, p90 {result['p90_ms']:.3f}"
        rows.append(
            (
                f"latency {name}",
                f"{result['median_ms']:.3f} ms median ({spread}; batch {result['batch_size']}, "
                f"{result['threads']} thread(s), {result['runs']} runs)",
            )
        )
    common.print_fields(rows)
