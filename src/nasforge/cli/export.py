"""``nasforge export``: the network of a study's best (or chosen) trial as a PyTorch file or
an ONNX model."""

from __future__ import annotations

from typing import Annotated

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json, StorageRequired, flag


@command("export")
def export_command(
    study_name: Annotated[
        str, typer.Argument(metavar="STUDY", help="The study to export from.", show_default=False)
    ],
    storage: StorageRequired,
    out: Annotated[
        str, typer.Option(help="File (.pt or .onnx) or folder to write.", show_default=False)
    ],
    export_format: Annotated[
        str, typer.Option("--format", help="pytorch (a .pt file) or onnx.")
    ] = "pytorch",
    trial: Annotated[
        int | None,
        typer.Option(help="Trial number to export (default: the best).", show_default=False),
    ] = None,
    untrained: Annotated[
        bool,
        flag(
            "--untrained",
            help="Export a freshly initialised network when the trial has no saved weights.",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Write the network of a study's best (or chosen) trial as a PyTorch file or ONNX model."""
    with common.errors():
        import nasforge
        from nasforge.export import export_trial

        target = common.given_path("--out", out, "a file (.pt or .onnx) or a folder")
        common.check_writable("--out", target, folder=True)
        study = nasforge.load_study(study_name, storage, read_only=True)
        result = export_trial(study, target, format=export_format, trial=trial, untrained=untrained)
        study.storage.close()
    if result.note:
        typer.echo(f"note: {result.note}", err=True)
    data = {
        "path": str(result.path),
        "format": result.format,
        "trial": result.trial,
        "arch": result.arch,
        "trained": result.trained,
        "note": result.note,
        "max_abs_diff": result.max_abs_diff,
    }
    if as_json:
        common.print_json(data)
        return
    rows = [
        ("wrote", str(result.path)),
        ("format", result.format),
        ("trial", str(result.trial)),
        ("arch", result.arch),
        ("weights", "trained" if result.trained else "untrained (freshly initialised)"),
    ]
    if result.max_abs_diff is not None:
        rows.append(
            ("onnx check", f"ONNX Runtime vs PyTorch max abs diff {result.max_abs_diff:.2e}")
        )
    common.print_fields(rows)
