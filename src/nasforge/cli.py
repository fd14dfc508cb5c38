"""The ``nasforge`` command line: search, compare, list, show, profile and export, from a shell.

The CLI is thin: each command parses its options, calls the Python API and prints. Every
option maps onto a keyword argument of that API::

    nasforge search --strategy regularized-evolution --dataset cifar10 --budget 100 --seed 0
    nasforge search --storage sqlite:///runs.db --budget 200      # persisted, resumable
    nasforge search --evaluator train --data cifar10-jpeg.tar.gz --trials 10 --epochs 6 \
        --channels 8 --cells 1 --resolution 16 --data-fraction 0.2 --storage sqlite:///t.db
    nasforge compare --strategies random,regularized-evolution --seeds 100 --out results/
    nasforge list metrics --dataset cifar100
    nasforge show --storage sqlite:///runs.db                     # the studies stored there
    nasforge profile 6111 --latency                               # params, MACs, latency
    nasforge export STUDY --storage sqlite:///t.db --format onnx --out best.onnx

Errors that nasforge raises on bad input (:class:`~nasforge.errors.NasforgeError`) are printed
as one line, ``error: <what was wrong and how to fix it>``, with exit code 2; an interrupted
search exits with code 130. Result tables go to stdout, progress and notes to stderr, and
``--json`` prints exactly one JSON object on stdout.

Only typer (and nasforge's error classes) are imported when this module loads, so that
``nasforge --help`` starts quickly; rich and the parts of nasforge a command needs are
imported inside the command, and nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from nasforge.errors import (
    InvalidConfigError,
    NasforgeError,
    UnknownNameError,
)

if TYPE_CHECKING:
    from rich.console import Console

    from nasforge.evaluators.base import Evaluator
    from nasforge.spaces.base import SearchSpace
    from nasforge.study import Study
    from nasforge.trial import Trial

__all__ = ["app", "main"]

#: Exit code of a run stopped by bad input (as click uses for usage errors).
EXIT_USAGE = 2
#: Exit code of a run stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

LIST_TARGETS = (
    "benchmarks",
    "datasets",
    "devices",
    "evaluators",
    "metrics",
    "spaces",
    "strategies",
)


class _Group(TyperGroup):
    """The root command group; it reports usage errors (bad option, bad value) in one line."""

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
            _echo_error(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            _echo_error(exc.format_message())
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


# -- output helpers ----------------------------------------------------------------------------
def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _echo_error(message: str) -> None:
    typer.echo(typer.style("error:", fg="red", bold=True) + " " + _one_line(message), err=True)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    _echo_error(message)
    raise typer.Exit(code)


def _note(message: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(message, err=True)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn nasforge's errors into one line on stderr and exit code 2."""
    try:
        yield
    except NasforgeError as exc:
        _fail(str(exc))


def _show_progress(quiet: bool) -> bool:
    """A progress bar is drawn on stderr when it is a terminal, unless ``--quiet``."""
    return not quiet and _console(stderr=True).is_terminal


def _clean(value: Any) -> Any:
    """``value`` made JSON-safe: non-finite floats become ``null``, paths and tuples plain."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_clean(obj), indent=2, allow_nan=False))


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _add_row(table: Any, *cells: Any) -> None:
    """Add a row of plain text to a rich table (no markup: metric names hold brackets)."""
    from rich.text import Text

    table.add_row(*(Text(str(cell)) for cell in cells))


def _split(text: str) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


# -- option parsing ----------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A ``--param`` value: JSON where it parses (``3``, ``0.5``, ``true``, ``[12, 200]``,
    ``{"popsize": 12}``), ``True``/``False`` in any case, else the text itself."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    try:
        return json.loads(stripped)
    except ValueError:
        return stripped


def parse_params(items: Sequence[str], *, option: str = "--param") -> dict[str, Any]:
    """Parse repeated ``key=value`` options into a dictionary (values via :func:`parse_value`)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise InvalidConfigError(
                f"Malformed {option} {item!r}; write it as key=value, e.g. "
                f"{option} population_size=20."
            )
        if key in params:
            raise InvalidConfigError(f"{option} {key!r} is given twice; give it once.")
        params[key] = parse_value(value)
    return params


def _check_positive(label: str, value: float) -> None:
    if not value > 0:
        raise InvalidConfigError(f"{label} must be a positive number, got {value!r}.")


def _safe_url(url: str) -> str:
    """The storage URL with any password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return url


# -- root --------------------------------------------------------------------------------------
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
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Neural architecture search: run, compare and inspect searches."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


# -- search ------------------------------------------------------------------------------------
_TRAIN_PANEL = "Training (--evaluator train)"


@app.command()
def search(
    space: Annotated[str, typer.Option(help="Search space (nasforge list spaces).")] = "nb201",
    strategy: Annotated[
        str, typer.Option(help="Search strategy (nasforge list strategies).")
    ] = "regularized-evolution",
    dataset: Annotated[
        str,
        typer.Option(help="Dataset: of the benchmark, or for train cifar10, folder, synthetic."),
    ] = "cifar10",
    budget: Annotated[
        int | None,
        typer.Option(
            help="Cost to spend, whole study (resumes included): queries of a tabular "
            "benchmark (default 100), or seconds of training with --evaluator train.",
            show_default=False,
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many finished trials (whole study).", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the strategy (and of the training).")] = 0,
    evaluator_name: Annotated[
        str,
        typer.Option(
            "--evaluator", help="tabular (look results up in a benchmark) or train (train each)."
        ),
    ] = "tabular",
    benchmark: Annotated[str, typer.Option(help="Tabular benchmark that scores.")] = "nb201",
    fidelity: Annotated[
        int | None, typer.Option(help="Training epochs to look up (default: the highest).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Persist the study, e.g. sqlite:///runs.db; a rerun resumes it."),
    ] = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study name (default with --storage: SPACE-STRATEGY-DATASET-seedSEED).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="Strategy parameter (repeatable).",
            show_default=False,
        ),
    ] = None,
    objective: Annotated[
        list[str] | None,
        typer.Option(
            metavar="METRIC:max|min",
            help="Objective, first is primary (repeatable; default valid_acc:max).",
            show_default=False,
        ),
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            metavar="M:max|min,...",
            help="All objectives at once, comma-separated, e.g. "
            "'test_acc:max,latency_ms[pixel3]:min' (instead of repeating --objective).",
            show_default=False,
        ),
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint",
            metavar="METRIC<=VALUE",
            help="Bound a metric, e.g. 'latency_ms[edgegpu]<=5' (repeatable); free metrics are "
            "checked before evaluation.",
            show_default=False,
        ),
    ] = None,
    dedupe: Annotated[
        bool,
        typer.Option(
            "--dedupe",
            help="Answer proposals equal in function to an evaluated cell from the record, free.",
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="The data: CIFAR-10 python release folder, image-folder tree, or a .tar.gz.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(help="Epochs per trial.", rich_help_panel=_TRAIN_PANEL, show_default=False),
    ] = None,
    channels: Annotated[
        int | None,
        typer.Option(
            help="Width C (NB201 16, DARTS 36).", rich_help_panel=_TRAIN_PANEL, show_default=False
        ),
    ] = None,
    cells: Annotated[
        int | None,
        typer.Option(
            help="Depth: cells per stage N (NB201, 5) or layers (DARTS, 20).",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(
            help="Image size (default the data's).",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    data_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of the training split used (0-1].",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            help="Base recipe: nb201 (default) or darts; the options below change it.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(help="sgd, adamw or lion.", rich_help_panel=_TRAIN_PANEL, show_default=False),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Peak learning rate.", rich_help_panel=_TRAIN_PANEL, show_default=False),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Batch size.", rich_help_panel=_TRAIN_PANEL, show_default=False),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(help="Weight decay.", rich_help_panel=_TRAIN_PANEL, show_default=False),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(
            help="Epochs of linear warm-up.", rich_help_panel=_TRAIN_PANEL, show_default=False
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option(help="Label smoothing.", rich_help_panel=_TRAIN_PANEL, show_default=False),
    ] = None,
    cutout: Annotated[
        int | None,
        typer.Option(
            help="Cutout side in pixels of a 32x32 image (0: off).",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    grad_clip: Annotated[
        float | None,
        typer.Option(
            help="Clip the gradients' global norm.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    valid_size: Annotated[
        int | None,
        typer.Option(
            help="Validation images cut from the training set (default half).",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    eval_limit: Annotated[
        int | None,
        typer.Option(
            help="Measure accuracy on at most this many validation/test images.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads (default all).", rich_help_panel=_TRAIN_PANEL, show_default=False
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="auto (default: CUDA if present), cpu or cuda.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    checkpoints: Annotated[
        str | None,
        typer.Option(
            help="Folder for the trained weights (for nasforge export); 'none' keeps none. "
            "Default with a SQLite storage: DB-checkpoints/STUDY next to the database.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where to extract archives and cache decoded images if not next to the data.",
            rich_help_panel=_TRAIN_PANEL,
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Search a space with a strategy, scored by a tabular benchmark or by training each
    network, and print the best architecture."""
    started = time.perf_counter()
    study: Study | None = None
    training = {
        "data": data,
        "epochs": epochs,
        "channels": channels,
        "cells": cells,
        "resolution": resolution,
        "data_fraction": data_fraction,
        "recipe": recipe,
        "optimizer": optimizer,
        "lr": lr,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "warmup": warmup,
        "label_smoothing": label_smoothing,
        "cutout": cutout,
        "grad_clip": grad_clip,
        "valid_size": valid_size,
        "eval_limit": eval_limit,
        "threads": threads,
        "device": device,
        "checkpoints": checkpoints,
        "cache_dir": cache_dir,
    }
    try:
        with _errors():
            if _is_oneshot(strategy):  # a one-shot method trains a supernet on --data
                _oneshot_search(
                    method=strategy,
                    space=space,
                    dataset=dataset,
                    seed=seed,
                    storage=storage,
                    study_name=study_name,
                    params=parse_params(param or []),
                    evaluator_name=evaluator_name,
                    options=training,
                    other={"budget": budget, "trials": trials, "fidelity": fidelity},
                    quiet=quiet,
                    as_json=as_json,
                )
                return
            if evaluator_name not in ("tabular", "train"):
                raise UnknownNameError("evaluator", evaluator_name, ("tabular", "train"))
            if trials is not None:
                _check_positive("trials", trials)
            if objective and objectives:
                raise InvalidConfigError(
                    "Give the objectives either with --objectives A,B or with repeated "
                    "--objective, not both."
                )
            chosen_objectives = (
                _split(objectives) if objectives else list(objective or ["valid_acc:max"])
            )
            if evaluator_name == "tabular":
                given = [f"--{k.replace('_', '-')}" for k, v in training.items() if v is not None]
                if given:
                    raise InvalidConfigError(
                        f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                        "--evaluator train; the tabular evaluator looks results up."
                    )
                if budget is None and trials is None:
                    budget = 100
                study, evaluator, resumed = _open_search(
                    space=space,
                    strategy=strategy,
                    dataset=dataset,
                    budget=budget,
                    seed=seed,
                    benchmark=benchmark,
                    fidelity=fidelity,
                    storage=storage,
                    study_name=study_name,
                    params=parse_params(param or []),
                    objectives=chosen_objectives,
                    dedupe=dedupe,
                    constraints=constraint or [],
                )
            else:
                if fidelity is not None:
                    raise InvalidConfigError(
                        "--fidelity looks up a tabular benchmark; with --evaluator train "
                        "give --epochs."
                    )
                if budget is None and trials is None:
                    raise InvalidConfigError(
                        "Give --trials N (trials to train) or --budget SECONDS (training time) "
                        "for a search with --evaluator train."
                    )
                study, evaluator, resumed = _open_training_search(
                    space=space,
                    strategy=strategy,
                    dataset=dataset,
                    budget=budget,
                    seed=seed,
                    storage=storage,
                    study_name=study_name,
                    params=parse_params(param or []),
                    objectives=chosen_objectives,
                    dedupe=dedupe,
                    constraints=constraint or [],
                    options=training,
                )
            if resumed:
                _note(f"resuming study {study.name} ({len(study.trials)} trials recorded)", quiet)
            _run_search(
                study, evaluator, budget, trials=trials, show_progress=_show_progress(quiet)
            )
    except KeyboardInterrupt:
        if study is None:
            _fail_plain("interrupted before the search started")
        if study.storage.persistent:
            _fail_plain(
                f"interrupted: {len(study.trials)} trials recorded; run the same command to resume"
            )
        _fail_plain(
            f"interrupted: {len(study.trials)} trials evaluated and not saved; "
            "add --storage sqlite:///FILE.db to make a search resumable"
        )
    seconds = time.perf_counter() - started
    summary = search_summary(
        study, evaluator, budget=budget, seconds=seconds, storage=storage, trials=trials
    )
    study.storage.close()
    if as_json:
        _print_json(summary)
    else:
        _print_search_summary(summary)
    if summary["best"] is None:
        failed = [t for t in study.trials if t.fail_reason]
        reason = f"; first failure: {failed[0].fail_reason}" if failed else ""
        _fail(f"no trial completed{reason}", 1)


def _is_oneshot(name: str) -> bool:
    """Whether ``name`` is a one-shot method (and not a strategy)."""
    from nasforge.experiments.compare import is_oneshot

    return is_oneshot(name)


def _require_data(data: Any, who: str) -> None:
    """Refuse a one-shot run without ``--data`` (``who`` names the method or methods)."""
    if data is None:
        raise InvalidConfigError(
            f"{who} a supernet: give --data PATH (CIFAR-10's python release folder, an "
            "image-folder tree or a .tar.gz of either); nasforge never downloads data."
        )


def _supernet_settings(
    space: str,
    *,
    channels: int | None,
    cells: int | None,
    resolution: int | None,
    data_fraction: float | None,
    batch_size: int | None = None,
) -> Any:
    """The supernet settings of the command-line options; what is not given is the
    published search-time setting of ``space`` (all the data, the data's resolution)."""
    from nasforge.oneshot import SupernetSettings

    base = SupernetSettings.standard(space)
    return SupernetSettings(
        channels=channels or base.channels,
        cells=cells or base.cells,
        resolution=resolution,
        data_fraction=data_fraction or 1.0,
        batch_size=batch_size or base.batch_size,
    )


#: ``nasforge search`` options a one-shot search uses (the others are refused).
_ONESHOT_OPTIONS = (
    "data",
    "epochs",
    "channels",
    "cells",
    "resolution",
    "data_fraction",
    "batch_size",
    "threads",
    "device",
    "checkpoints",
    "cache_dir",
)


def _oneshot_search(
    *,
    method: str,
    space: str,
    dataset: str,
    seed: int,
    storage: str | None,
    study_name: str | None,
    params: dict[str, Any],
    evaluator_name: str,
    options: Mapping[str, Any],
    other: Mapping[str, Any],
    quiet: bool,
    as_json: bool,
) -> None:
    """``nasforge search --strategy darts|gdas|pc-darts|spos|darts-pt|single-level-darts``:
    train the method's supernet on ``--data`` and record each epoch's derived architecture,
    looked up in the bundled table of the space."""
    import nasforge
    from nasforge import oneshot
    from nasforge.train import load_cifar10

    unused = [f"--{k.replace('_', '-')}" for k, v in other.items() if v is not None]
    unused += [
        f"--{k.replace('_', '-')}"
        for k, v in options.items()
        if v is not None and k not in _ONESHOT_OPTIONS
    ]
    if unused:
        raise InvalidConfigError(
            f"{', '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply to the "
            f"one-shot method {method!r}; it runs --epochs supernet epochs (see "
            "nasforge search --help, panel Training)."
        )
    if evaluator_name != "tabular":
        raise InvalidConfigError(
            "From the command line a one-shot search looks its architectures up in the "
            "bundled table (--evaluator tabular, space nb201); to train each derived DARTS "
            "architecture use nasforge.oneshot.search(..., evaluator=...) in Python."
        )
    _require_data(options.get("data"), f"The one-shot method {method!r} trains")
    oneshot.get(method)
    oneshot.base.check_space(space)
    settings = _supernet_settings(
        space,
        channels=options.get("channels"),
        cells=options.get("cells"),
        resolution=options.get("resolution"),
        data_fraction=options.get("data_fraction"),
        batch_size=options.get("batch_size"),
    )
    evaluator = nasforge.evaluators.create("tabular", benchmark=space, dataset=dataset)
    if study_name is None and storage is not None:
        study_name = f"{space}-{method}-{dataset}-seed{seed}"
    checkpoint_dir = _checkpoint_dir(options.get("checkpoints"), storage, study_name)
    data = load_cifar10(options["data"], cache_dir=options.get("cache_dir"))
    progress = None if quiet or not _show_progress(quiet) else _progress_bar(method)
    task = None

    def advance(study: Study, trial: Trial) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=int(trial.metrics.get("epoch", 0)) + 1)

    started = time.perf_counter()
    if progress is not None:
        progress.start()
        task = progress.add_task(method, total=None)
    try:
        result = oneshot.search(
            method,
            data,
            space=space,
            params=params,
            settings=settings,
            epochs=options.get("epochs"),
            seed=seed,
            evaluator=evaluator,
            storage=storage,
            study_name=study_name,
            checkpoint_dir=checkpoint_dir,
            device=options.get("device") or "auto",
            threads=options.get("threads"),
            callbacks=[advance],
        )
    finally:
        if progress is not None:
            progress.stop()
    study = result.study
    if result.resumed_from:
        _note(f"resumed study {study.name} at epoch {result.resumed_from}", quiet)
    summary = search_summary(
        study,
        evaluator,
        budget=None,
        seconds=time.perf_counter() - started,
        storage=storage,
    )
    last = study.trials[-1] if study.trials else None
    summary["oneshot"] = {
        "method": method,
        "settings": settings.to_dict(),
        "epochs": result.epochs_done,
        "failed": result.failed,
        "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
        "final": None if last is None else _trial_json(study, last),
    }
    study.storage.close()
    if as_json:
        _print_json(summary)
    else:
        _print_search_summary(summary)
        if last is not None:
            metrics = last.metrics
            _print_fields(
                [
                    ("final arch", last.arch.text),
                    ("final valid", _fmt(metrics.get("valid_acc"))),
                    ("final test", _fmt(metrics.get("test_acc"))),
                ]
            )
    if result.failed is not None:
        _fail(f"the search stopped: {result.failed}; the last good epoch's checkpoint is kept", 1)


def _fail_plain(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_INTERRUPTED)


def _open_search(
    *,
    space: str,
    strategy: str,
    dataset: str,
    budget: int | None,
    seed: int,
    benchmark: str,
    fidelity: int | None,
    storage: str | None,
    study_name: str | None,
    params: dict[str, Any],
    objectives: Sequence[str],
    dedupe: bool = False,
    constraints: Sequence[str] = (),
) -> tuple[Study, Evaluator, bool]:
    """Validate everything, then create or resume the study (nothing is written before)."""
    import nasforge
    from nasforge.storage import get_storage

    if budget is not None:
        _check_positive("budget", budget)
    evaluator = nasforge.evaluators.create(
        "tabular", benchmark=benchmark, dataset=dataset, fidelity=fidelity
    )
    store = get_storage(storage) if storage is not None else None
    if study_name is None and store is not None:
        # the dataset as the benchmark spells it
        dataset = str((evaluator.spec() or {}).get("dataset", dataset))
        study_name = f"{space}-{strategy}-{dataset}-seed{seed}"
    return _create_or_resume(
        store,
        study_name,
        evaluator,
        space=space,
        strategy=strategy,
        seed=seed,
        strategy_params=params,
        objectives=list(objectives),
        dedupe=dedupe,
        constraints=list(constraints),
    )


def _create_or_resume(
    store: Any, study_name: str | None, evaluator: Evaluator, **settings: Any
) -> tuple[Study, Evaluator, bool]:
    """The study with these settings: resumed when it exists (the third value says so)."""
    import nasforge

    existing = None
    if store is not None and study_name is not None:
        existing = store.get_study(study_name)
    study = nasforge.create_study(
        storage=store,
        study_name=study_name,
        evaluator=evaluator,
        load_if_exists=True,
        **settings,
    )
    return study, evaluator, existing is not None


def _progress_bar(label: str, *extra: Any) -> Any:
    """A rich progress bar on stderr: label, bar, done/total, extra columns, times."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
    )


def _open_training_search(
    *,
    space: str,
    strategy: str,
    dataset: str,
    budget: int | None,
    seed: int,
    storage: str | None,
    study_name: str | None,
    params: dict[str, Any],
    objectives: Sequence[str],
    dedupe: bool,
    options: Mapping[str, Any],
    constraints: Sequence[str] = (),
) -> tuple[Study, Evaluator, bool]:
    """The training evaluator from the options, and the study (created or resumed)."""
    from nasforge.storage import get_storage

    if budget is not None:
        _check_positive("budget", budget)
    store = get_storage(storage) if storage is not None else None
    if study_name is None and store is not None:
        study_name = f"{space}-{strategy}-train-{dataset}-seed{seed}"
    evaluator = _training_evaluator(space, dataset, seed, options, storage, study_name)
    evaluator.check()  # data and setting errors now, as one line, not as failed trials
    return _create_or_resume(
        store,
        study_name,
        evaluator,
        space=space,
        strategy=strategy,
        seed=seed,
        strategy_params=params,
        objectives=list(objectives),
        dedupe=dedupe,
        constraints=list(constraints),
    )


def _training_evaluator(
    space: str,
    dataset: str,
    seed: int,
    options: Mapping[str, Any],
    storage: str | None,
    study_name: str | None,
) -> Any:
    """The ``train`` evaluator that ``nasforge search --evaluator train`` options describe."""
    import nasforge
    from nasforge.evaluators.training import SPACE_SETTINGS
    from nasforge.train import Recipe

    recipe = Recipe.named(options["recipe"]) if options.get("recipe") else Recipe()
    fields = {
        "optimizer": "optimizer",
        "lr": "lr",
        "batch_size": "batch_size",
        "weight_decay": "weight_decay",
        "warmup": "warmup_epochs",
        "label_smoothing": "label_smoothing",
        "cutout": "cutout",
        "grad_clip": "grad_clip",
    }
    changes = {field: options[key] for key, field in fields.items() if options.get(key) is not None}
    if changes:
        recipe = recipe.replace(**changes)
    kwargs: dict[str, Any] = {
        "dataset": dataset,
        "space": space,
        "recipe": recipe,
        "seed": seed,
        "data": options.get("data"),
    }
    for key in ("epochs", "channels", "resolution", "data_fraction", "valid_size", "eval_limit"):
        if options.get(key) is not None:
            kwargs[key] = options[key]
    if options.get("cells") is not None:
        depth_key = SPACE_SETTINGS.get(space, {}).get("depth_key")
        if depth_key is None:
            raise InvalidConfigError(f"--cells is not a setting of space {space!r}.")
        kwargs[depth_key] = options["cells"]
    if options.get("threads") is not None:
        kwargs["threads"] = options["threads"]
    if options.get("device") is not None:
        kwargs["device"] = options["device"]
    if options.get("cache_dir") is not None:
        kwargs["cache_dir"] = options["cache_dir"]
    kwargs["checkpoint_dir"] = _checkpoint_dir(options.get("checkpoints"), storage, study_name)
    if dataset == "synthetic" and kwargs["data"] is not None:
        raise InvalidConfigError("--data is not used with --dataset synthetic; leave it out.")
    if dataset == "synthetic":
        del kwargs["data"]
    elif kwargs["data"] is None:
        raise InvalidConfigError(
            f"--evaluator train needs --data PATH: the {dataset} data (CIFAR-10's python "
            "release folder, an image-folder tree train/<class>/, test/<class>/, or a .tar.gz "
            "of either); nasforge never downloads data."
        )
    return nasforge.evaluators.create("train", **kwargs)


def _checkpoint_dir(value: str | None, storage: str | None, study_name: str | None) -> str | None:
    """``--checkpoints``: a folder, ``none``, or (not given) next to a SQLite database."""
    if value is not None:
        return None if value.strip().lower() == "none" else value
    if storage is None or study_name is None or not storage.startswith("sqlite:///"):
        return None
    database = storage[len("sqlite:///") :].split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return str(Path(database).with_name(Path(database).name + "-checkpoints") / study_name)


def _run_search(
    study: Study,
    evaluator: Evaluator,
    budget: int | None,
    *,
    trials: int | None = None,
    show_progress: bool,
) -> None:
    limits: dict[str, Any] = {"budget": budget, "n_trials": trials}
    if not show_progress:
        study.optimize(evaluator, **limits)
        return
    if hasattr(evaluator, "on_epoch"):  # a training evaluator: a bar over each trial's epochs
        _run_training_search(study, evaluator, limits)
        return
    from rich.progress import TextColumn

    progress = _progress_bar(study.strategy_name, TextColumn("best {task.fields[best]}"))
    metric = study.objectives[0].metric
    best = _best(study)
    by_trials = budget is None
    total = trials if by_trials else budget
    done = study.n_finished if by_trials else study.spent
    task = progress.add_task(
        study.strategy_name,
        total=total,
        completed=min(done, total or 0),  # rich takes floats
        best="–" if best is None else _fmt(best.metrics.get(metric)),
    )

    def advance(study: Study, trial: Trial) -> None:
        if trial is _best(study):
            progress.update(task, best=_fmt(trial.metrics.get(metric)))
        progress.update(task, advance=1 if by_trials else trial.cost)

    with progress:
        study.optimize(evaluator, callbacks=[advance], **limits)


def _run_training_search(study: Study, evaluator: Any, limits: Mapping[str, Any]) -> None:
    """A search with two bars: trials done (or seconds spent) and the epochs of the trial
    being trained."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
    )
    metric = study.objectives[0].metric
    by_trials = limits["n_trials"] is not None
    total = limits["n_trials"] if by_trials else limits["budget"]
    done = study.n_finished if by_trials else study.spent
    best = _best(study)
    search_task = progress.add_task(
        "trials" if by_trials else "seconds",
        total=total,
        completed=min(done, total),
        info="best –" if best is None else f"best {_fmt(best.metrics.get(metric))}",
    )
    epoch_task = progress.add_task("epochs", total=1, info="", visible=False)

    def on_epoch(arch: Any, report: Any) -> None:
        label = f"trial {len(study.trials) - 1}"
        if report.epoch == 0:
            progress.reset(epoch_task, total=report.epochs, description=label, info="")
            progress.update(epoch_task, visible=True)
        else:
            info = f"loss {report.train_loss:.3f} acc {report.train_acc:.1f}"
            progress.update(epoch_task, completed=report.epoch, info=info)

    def advance(study: Study, trial: Trial) -> None:
        if trial is _best(study):
            progress.update(search_task, info=f"best {_fmt(trial.metrics.get(metric))}")
        progress.update(search_task, advance=1 if by_trials else trial.cost)

    previous = evaluator.on_epoch
    evaluator.on_epoch = on_epoch
    try:
        with progress:
            study.optimize(evaluator, callbacks=[advance], **limits)
    finally:
        evaluator.on_epoch = previous


def _arch_index(space: SearchSpace, trial: Trial) -> int | None:
    index = getattr(space, "index", None)
    if index is None:
        return None
    try:
        return int(index(trial.arch))
    except NasforgeError:
        return None


def _trial_json(study: Study, trial: Trial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "arch": trial.arch.text,
        "index": _arch_index(study.space, trial),
        "score": trial.score,
        "metrics": dict(trial.metrics),
    }


def _best(study: Study) -> Trial | None:
    try:
        return study.best_trial
    except NasforgeError:
        return None


def search_summary(
    study: Study,
    evaluator: Evaluator,
    *,
    budget: int | None,
    seconds: float,
    storage: str | None,
    trials: int | None = None,
) -> dict[str, Any]:
    """The result of ``nasforge search`` as a JSON-ready dictionary."""
    spec = evaluator.spec() or {}
    best = _best(study)
    summary: dict[str, Any] = {
        "study": study.name,
        "space": study.space.name,
        "strategy": study.strategy_name,
        "strategy_params": study.strategy_params,
        "benchmark": spec.get("benchmark"),
        "dataset": spec.get("dataset"),
        "fidelity": spec.get("fidelity"),
        "objectives": [str(o) for o in study.objectives],
        "seed": study.seed,
        "budget": budget,
        "storage": None if storage is None else _safe_url(storage),
        "n_trials": len(study.trials),
        "n_complete": len(study.completed_trials),
        "spent": study.spent,
        "best": None if best is None else _trial_json(study, best),
        "seconds": seconds,
    }
    if trials is not None:
        summary["trials"] = trials
    if spec.get("name") == "train":
        summary["evaluator"] = "train"
        summary["cost_unit"] = evaluator.cost_unit
        summary["training"] = {
            key: spec.get(key)
            for key in (
                "data",
                "channels",
                "cells_per_stage",
                "layers",
                "resolution",
                "data_fraction",
                "checkpoint_dir",
            )
            if key in spec
        }
        summary["training"]["epochs"] = spec["recipe"]["epochs"]
        summary["training"]["optimizer"] = spec["recipe"]["optimizer"]
        summary["training"]["lr"] = spec["recipe"]["lr"]
    return summary


def _print_fields(rows: Sequence[tuple[str, str]]) -> None:
    """Print ``label  value`` lines; long values (architectures) are never wrapped."""
    from rich.markup import escape

    console = _console()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"[bold]{escape(label.ljust(width))}[/bold]  {escape(value)}", soft_wrap=True)


def _shown_metrics(objectives: Sequence[str]) -> list[str]:
    """The objective metrics, then the usual accuracy and size metrics."""
    out = [text.rpartition(":")[0] or text for text in objectives]
    out += [m for m in ("valid_acc", "test_acc", "params_M", "flops_M") if m not in out]
    return out


def _best_rows(best: Mapping[str, Any] | None, objectives: Sequence[str]) -> list[tuple[str, str]]:
    if best is None:
        return [("best", "no completed trial")]
    index = f", benchmark index {best['index']}" if best["index"] is not None else ""
    rows = [("best", best["arch"]), ("", f"trial {best['number']}{index}")]
    for metric in _shown_metrics(objectives):
        if metric in best["metrics"]:
            rows.append((metric, _fmt(best["metrics"][metric], 3)))
    return rows


def _print_search_summary(summary: Mapping[str, Any]) -> None:
    params = ", ".join(f"{k}={v}" for k, v in summary["strategy_params"].items())
    limit = []
    if summary.get("budget") is not None:
        unit = " s" if summary.get("cost_unit") == "seconds" else ""
        limit.append(f"of budget {summary['budget']}{unit}")
    if summary.get("trials") is not None:
        limit.append(f"(limit {summary['trials']} trials)")
    if summary.get("cost_unit") == "seconds":
        cost = f"cost {summary['spent']:.1f} s"
    else:
        cost = f"cost {summary['spent']:g}"
    if summary.get("evaluator") == "train":
        train = summary["training"]
        epochs = f"{train['epochs']} epoch{'s' * (train['epochs'] != 1)}"
        shown = [epochs, f"{train['optimizer']} lr {train['lr']:g}"]
        for key, label in (("channels", "C"), ("cells_per_stage", "N"), ("layers", "layers")):
            if train.get(key) is not None:
                shown.append(f"{label}={train[key]}")
        if train.get("resolution") is not None:
            shown.append(f"{train['resolution']}px")
        if train.get("data_fraction") not in (None, 1.0):
            shown.append(f"{train['data_fraction']:g} of the data")
        scored = ("training", f"{summary['dataset']} ({summary['space']}; {', '.join(shown)})")
    else:
        scored = ("benchmark", f"{summary['benchmark']} {summary['dataset']} ({summary['space']})")
    _print_fields(
        [
            ("study", summary["study"]),
            (
                "strategy",
                f"{summary['strategy']} (seed {summary['seed']}{', ' * bool(params)}{params})",
            ),
            scored,
            (
                "trials",
                f"{summary['n_trials']} ({summary['n_complete']} complete), "
                f"{' '.join([cost, *limit])}",
            ),
            *_best_rows(summary["best"], summary["objectives"]),
            ("wall time", f"{summary['seconds']:.2f} s"),
        ]
    )


# -- compare -----------------------------------------------------------------------------------
@app.command()
def compare(
    strategies: Annotated[
        str, typer.Option(help="Comma-separated strategies to compare.")
    ] = "random,regularized-evolution",
    dataset: Annotated[str, typer.Option(help="Dataset, or a comma-separated list.")] = "cifar10",
    budget: Annotated[int, typer.Option(help="Queries per run.")] = 100,
    seeds: Annotated[
        str, typer.Option(help="Number of seeds (N: seeds 0..N-1) or a comma list of seeds.")
    ] = "100",
    benchmark: Annotated[str, typer.Option(help="Tabular benchmark.")] = "nb201",
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
        Path | None,
        typer.Option(help="Write trials.csv, summary.csv/json and plots to this folder."),
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Parallel worker processes.")] = None,
    dedupe: Annotated[
        bool,
        typer.Option(
            "--dedupe",
            help="Answer proposals equal in function to an evaluated cell from the record, free.",
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="CIFAR-10 for the one-shot methods named in --strategies (darts, gdas...).",
            rich_help_panel="One-shot methods",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Supernet epochs of each one-shot run (default: each method's own).",
            rich_help_panel="One-shot methods",
        ),
    ] = None,
    channels: Annotated[
        int | None,
        typer.Option(help="Supernet channels (default 16).", rich_help_panel="One-shot methods"),
    ] = None,
    cells: Annotated[
        int | None,
        typer.Option(
            help="Supernet cells per stage (default 5).", rich_help_panel="One-shot methods"
        ),
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(
            help="Image side for the supernet (default the data's).",
            rich_help_panel="One-shot methods",
        ),
    ] = None,
    data_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of the training images used (default 1).",
            rich_help_panel="One-shot methods",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu or cuda[:N].", rich_help_panel="One-shot methods"),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="CPU threads of the supernet.", rich_help_panel="One-shot methods"),
    ] = None,
    seconds_per_query: Annotated[
        float,
        typer.Option(
            help="Seconds charged per black-box query on the time axis (time.png, mean "
            "seconds), e.g. one architecture's training time.",
        ),
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compare strategies over many seeds (and datasets) on a tabular benchmark.

    One-shot methods (darts, gdas, pc-darts, spos, darts-pt, single-level-darts) may be
    named beside the strategies, with --data: each seed trains the method's supernet and its
    epochs' derived architectures are looked up in the same table; time.png puts every
    method on one wall-time axis.
    """
    try:
        with _errors():
            names = _split(strategies)
            datasets = _split(dataset)
            params = _compare_params(param or [])
            seed_arg = _parse_seeds(seeds)
            if jobs is not None and jobs < 1:
                raise InvalidConfigError(f"--jobs must be at least 1, got {jobs}.")
            try:
                from nasforge.experiments import run_comparison
            except ImportError as exc:
                _fail(
                    f"the comparison harness (nasforge.experiments) cannot be imported: {exc}; "
                    "reinstall nasforge"
                )
            oneshot_kwargs = _compare_oneshot(
                names,
                benchmark=benchmark,
                data=data,
                epochs=epochs,
                channels=channels,
                cells=cells,
                resolution=resolution,
                data_fraction=data_fraction,
                device=device,
                threads=threads,
            )
            comp = _run_comparison(
                run_comparison,
                names,
                datasets=datasets,
                seeds=seed_arg,
                budget=budget,
                benchmark=benchmark,
                params=params,
                jobs=jobs,
                dedupe=dedupe,
                show_progress=_show_progress(quiet),
                extra={"seconds_per_query": seconds_per_query, **oneshot_kwargs},
            )
            written: dict[str, Path] = {}
            if out is not None:
                if out.exists() and not out.is_dir():
                    raise InvalidConfigError(f"--out {str(out)!r} is a file; give a folder.")
                try:
                    out.mkdir(parents=True, exist_ok=True)
                    written = dict(comp.write(out))
                except OSError as exc:
                    _fail(f"cannot write the results to {str(out)!r}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        _fail_plain("interrupted: the comparison was stopped; nothing was written")
    if as_json:
        _print_json(comp.to_json())
        for label, path in written.items():
            _note(f"wrote {label}: {path}", quiet)
        return
    oneshot = tuple(getattr(comp, "oneshot", ()))
    charged = float(getattr(comp, "seconds_per_query", 0.0) or 0.0) > 0
    _print_compare_table(comp.summary(), oneshot=oneshot, show_time=bool(oneshot) or charged)
    for label, path in written.items():
        typer.echo(f"wrote {label}: {path}")


def _compare_oneshot(
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
    if not any(_is_oneshot(name) for name in names):
        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise InvalidConfigError(
                f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to one-shot "
                "methods (darts, gdas, ...), and --strategies names none; add one or drop "
                f"{'it' if len(given) == 1 else 'them'}."
            )
        return {}
    import nasforge

    _require_data(data, "The one-shot methods in --strategies train")
    settings = _supernet_settings(
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


def _compare_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    flat = parse_params(items)
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


def _parse_seeds(text: str) -> int | list[int]:
    parts = _split(text)
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
        _check_positive("--seeds", values[0])
        return values[0]
    if any(v < 0 for v in values):
        raise InvalidConfigError(f"Seeds must be non-negative integers, got {text!r}.")
    return values


def _run_comparison(
    run: Callable[..., Any],
    names: Sequence[str],
    *,
    datasets: Sequence[str],
    seeds: int | list[int],
    budget: int,
    benchmark: str,
    params: dict[str, dict[str, Any]],
    jobs: int | None,
    show_progress: bool,
    dedupe: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    kwargs: dict[str, Any] = {
        "datasets": list(datasets),
        "seeds": seeds,
        "budget": budget,
        "benchmark": benchmark,
        "strategy_params": params or None,
        "n_jobs": jobs,
        "dedupe": dedupe,
        **(extra or {}),
    }
    if not show_progress:
        return run(list(names), **kwargs)
    progress = _progress_bar("runs")
    task = progress.add_task("runs", total=None)

    def report(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        return run(list(names), progress=report, **kwargs)


def _print_compare_table(
    rows: Sequence[Any], oneshot: Sequence[str] = (), show_time: bool = False
) -> None:
    """The summary as a table; with ``show_time`` a column of the mean wall seconds spent
    (with the charge per query), which a plain table comparison has no use for."""
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
    numbers = ("budget", "test acc", "valid", "opt %", "RI %", *(("time s",) if show_time else ()))
    for label in numbers:
        table.add_column(label, justify="right", no_wrap=True)
    previous: tuple[Any, Any] | None = None
    for row in rows:
        if previous is not None and previous != (row.dataset, row.budget):
            table.add_section()
        previous = (row.dataset, row.budget)
        rate = row.optimum_rate
        _add_row(
            table,
            str(row.dataset),
            str(row.strategy),
            _fmt(row.budget),
            f"{_fmt(row.mean_test)} ± {_fmt(row.std_test)}",
            _fmt(row.mean_valid),
            _fmt(None if rate is None else 100.0 * rate, 1),
            _fmt(row.ri),
            *((_fmt(getattr(row, "mean_seconds", None), 0),) if show_time else ()),
        )
    console = _console()
    if show_time and not console.is_terminal:
        console.width = max(console.width, 90)  # pipes and logs: no header cut short
    console.print(table)


# -- list --------------------------------------------------------------------------------------
@app.command("list")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List spaces, strategies, benchmarks or evaluators, or a benchmark's metrics or datasets."""
    with _errors():
        if what not in LIST_TARGETS:
            raise UnknownNameError("thing to list", what, LIST_TARGETS)
        data = _LISTERS[what](benchmark=benchmark, dataset=dataset, fidelity=fidelity)
    if as_json:
        _print_json(data)
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
        _add_row(table, *(_cell(row.get(c)) for c in columns))
    _console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    return "–" if value is None else str(value)


def _doc(obj: Any) -> str:
    import inspect

    doc = inspect.getdoc(type(obj)) or ""
    return doc.splitlines()[0] if doc else ""


def _list_spaces(**_: Any) -> dict[str, Any]:
    import nasforge

    rows = []
    for name in nasforge.spaces.names():
        row: dict[str, Any] = {"name": name, "size": None, "description": ""}
        with contextlib.suppress(Exception):  # a listing never fails on one entry
            space = nasforge.spaces.create(name)
            row.update(size=space.size, description=_doc(space))
        rows.append(row)
    return {"spaces": rows}


def _list_strategies(**_: Any) -> dict[str, Any]:
    import inspect

    import nasforge

    spaces = [nasforge.spaces.create(n) for n in nasforge.spaces.names()]
    rows = []
    for name in nasforge.strategies.names():
        row: dict[str, Any] = {"name": name, "parameters": {}, "description": ""}
        for space in spaces:
            try:
                strategy = nasforge.strategies.create(name, space, seed=0)
            except Exception:  # needs a capability this space lacks: try the next space
                continue
            signature = inspect.signature(type(strategy))
            row["parameters"] = {
                p.name: p.default
                for p in signature.parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name != "seed"
            }
            row["description"] = _doc(strategy)
            break
        rows.append(row)
    return {"strategies": rows}


def _list_benchmarks(**_: Any) -> dict[str, Any]:
    import nasforge

    rows = []
    for name in nasforge.tabular.names():
        bench = nasforge.tabular.create(name)
        rows.append(
            {
                "name": name,
                "space": bench.space,
                "datasets": list(bench.datasets),
                "fidelities": list(bench.fidelities),
            }
        )
    return {"benchmarks": rows}


def _list_evaluators(**_: Any) -> dict[str, Any]:
    import nasforge

    return {"evaluators": [{"name": name} for name in nasforge.evaluators.names()]}


def _list_devices(*, benchmark: str, **_: Any) -> dict[str, Any]:
    import nasforge

    bench = nasforge.tabular.create(benchmark)
    devices: list[str] = list(getattr(bench, "devices", list)())
    rows = [{"name": d, "metric": f"latency_ms[{d}]"} for d in devices]
    return {"benchmark": benchmark, "devices": rows}


def _list_datasets(*, benchmark: str, **_: Any) -> dict[str, Any]:
    import nasforge

    bench = nasforge.tabular.create(benchmark)
    rows = [
        {"name": name, "fidelities": list(bench.fidelities), "metrics": len(bench.metrics(name))}
        for name in bench.datasets
    ]
    return {"benchmark": benchmark, "datasets": rows}


def _list_metrics(*, benchmark: str, dataset: str, fidelity: int | None) -> dict[str, Any]:
    import nasforge

    bench = nasforge.tabular.create(benchmark)
    infos = bench.metrics(dataset, fidelity)
    rows = [
        {
            "name": info.name,
            "direction": "max" if info.direction.value == "maximize" else "min",
            "unit": info.unit,
            "description": info.description,
        }
        for info in infos
    ]
    used = (
        fidelity if fidelity is not None else (max(bench.fidelities) if bench.fidelities else None)
    )
    return {
        "benchmark": benchmark,
        "dataset": dataset.lower(),
        "fidelity": used,
        "metrics": rows,
    }


_LISTERS: dict[str, Callable[..., dict[str, Any]]] = {
    "benchmarks": _list_benchmarks,
    "datasets": _list_datasets,
    "devices": _list_devices,
    "evaluators": _list_evaluators,
    "metrics": _list_metrics,
    "spaces": _list_spaces,
    "strategies": _list_strategies,
}


# -- show --------------------------------------------------------------------------------------
@app.command("proxies")
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
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    cache: Annotated[
        Path | None, typer.Option(help="Keep computed scores in this folder.", show_default=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a sample of architectures with zero-cost proxies and print each proxy's Spearman
    and Kendall correlation with the benchmark's test accuracy (and with --reference scores)."""
    with _errors():
        summary = proxies_summary(
            space=space,
            dataset=dataset,
            sample=sample,
            seed=seed,
            names=None if proxy is None else _split(proxy),
            reference=reference,
            data=data,
            batch_size=batch_size,
            device=device,
            cache=cache,
            show_progress=_show_progress(quiet),
        )
    if as_json:
        _print_json(summary)
        return
    _print_proxies_table(summary)


def proxies_summary(
    *,
    space: str,
    dataset: str,
    sample: int,
    seed: int,
    names: Sequence[str] | None,
    reference: Path | None,
    data: Path | None,
    batch_size: int,
    device: str,
    cache: Path | None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """What ``nasforge proxies`` prints, as a dictionary."""
    import numpy as np

    from nasforge import proxies, spaces, tabular
    from nasforge.proxies.scores import compute_scores, kendall, read_reference, spearman

    if sample < 2:
        raise InvalidConfigError(f"--sample must be at least 2, got {sample}.")
    the_space = spaces.create(space)
    chosen = [proxies.create(n).name for n in names] if names else proxies.names()
    rng = np.random.default_rng(seed)
    ref = None
    if reference is not None:
        ref = read_reference(reference, space=space, dataset=dataset, proxies=None)
        rows = np.sort(rng.choice(len(ref), size=min(sample, len(ref)), replace=False))
        ref = ref.subset(rows)
        archs = list(ref.archs)
    else:
        seen: dict[Any, None] = {}
        for _ in range(sample * 20):
            seen.setdefault(the_space.sample(rng), None)
            if len(seen) == sample:
                break
        archs = list(seen)
    bench = next(
        (tabular.create(n) for n in tabular.names() if tabular.create(n).space == space), None
    )
    accuracy = None
    if bench is not None:
        accuracy = np.array([bench.query(a, dataset, "test_acc") for a in archs])
    start = time.perf_counter()
    if show_progress:
        with _progress_bar("scoring") as bar:
            task = bar.add_task("scoring", total=len(archs))
            table = compute_scores(
                the_space, archs, chosen, data=data, dataset=dataset, batch_size=batch_size,
                seed=seed, device=device, cache_dir=cache,
                progress=lambda done, total: bar.update(task, completed=len(archs) - total + done),
            )  # fmt: skip
    else:
        table = compute_scores(
            the_space, archs, chosen, data=data, dataset=dataset, batch_size=batch_size,
            seed=seed, device=device, cache_dir=cache,
        )  # fmt: skip
    rows = []
    for name in table.names:
        ours = table.column(name)
        row: dict[str, Any] = {"proxy": name}
        if accuracy is not None:
            row["spearman_acc"] = spearman(ours, accuracy)
            row["kendall_acc"] = kendall(ours, accuracy)
        if ref is not None and name in ref.names:
            theirs = ref.column(name)
            if accuracy is not None:
                row["reference_spearman_acc"] = spearman(theirs, accuracy)
            row["spearman_reference"] = spearman(ours, theirs)
            row["kendall_reference"] = kendall(ours, theirs)
        rows.append(row)
    return {
        "space": space,
        "dataset": dataset,
        "archs": len(archs),
        "seed": seed,
        "batch": f"{batch_size} images from {data}" if data else f"{batch_size} synthetic",
        "reference": None if reference is None else str(reference),
        "seconds": time.perf_counter() - start,
        "proxies": rows,
    }


def _print_proxies_table(summary: Mapping[str, Any]) -> None:
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
        _add_row(table, row["proxy"], *(_fmt(row.get(k), 3) for k, _ in shown))
    _console().print(table)


@app.command()
def show(
    study_name: Annotated[
        str | None,
        typer.Argument(
            metavar="[STUDY]", help="Study to show; leave out to list the stored studies."
        ),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Storage URL, e.g. sqlite:///runs.db.", show_default=False)
    ] = None,
    top: Annotated[int, typer.Option(help="How many of the best trials to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a stored study (settings, trial counts, best trials), or list the stored studies."""
    with _errors():
        if storage is None:
            raise InvalidConfigError(
                "Give the storage to read with --storage URL, e.g. --storage sqlite:///runs.db."
            )
        if top < 0:
            raise InvalidConfigError(f"--top must be 0 or more, got {top}.")
        if study_name is None:
            data = _studies_json(storage)
        else:
            import nasforge

            data = _study_json(nasforge.load_study(study_name, storage), top)
    if as_json:
        _print_json(data)
    elif study_name is None:
        _print_studies(data)
    else:
        _print_study(data)


def _studies_json(storage: str) -> dict[str, Any]:
    from nasforge.storage import get_storage

    store = get_storage(storage, create=False)
    records = store.list_studies()
    counts = store.study_counts()
    rows = []
    for record in records:
        assert record.study_id is not None
        states = counts.get(record.study_id, {})
        evaluator = record.evaluator or {}
        rows.append(
            {
                "name": record.name,
                "space": record.space,
                "strategy": record.strategy,
                "seed": record.seed,
                "dataset": evaluator.get("dataset"),
                "n_trials": sum(states.values()),
                "n_complete": states.get("COMPLETE", 0),
                "created_at": None if record.created_at is None else str(record.created_at),
            }
        )
    return {"storage": _safe_url(storage), "studies": rows}


def _study_json(study: Study, top: int) -> dict[str, Any]:
    record = study.record
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.value] = states.get(trial.state.value, 0) + 1
    ranked = sorted(study.completed_trials, key=lambda t: (-(t.score or -math.inf), t.number))
    best = _best(study)
    return {
        "study": study.name,
        "space": record.space,
        "space_params": dict(record.space_params),
        "strategy": record.strategy,
        "strategy_params": dict(record.strategy_params),
        "seed": record.seed,
        "objectives": list(record.objectives),
        "evaluator": record.evaluator,
        "created_at": None if record.created_at is None else str(record.created_at),
        "n_trials": len(study.trials),
        "states": states,
        "spent": study.spent,
        "best": None if best is None else _trial_json(study, best),
        "top": [_trial_json(study, t) for t in ranked[:top]],
    }


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
        _add_row(
            table,
            row["name"],
            row["strategy"],
            str(row["seed"]),
            _cell(row["dataset"]),
            str(row["n_trials"]),
            str(row["n_complete"]),
        )
    _console().print(table)


def _print_study(data: Mapping[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(data["states"].items()))
    space_params = f" ({_cell(data['space_params'])})" if data["space_params"] else ""
    _print_fields(
        [
            ("study", data["study"]),
            ("space", data["space"] + space_params),
            ("strategy", f"{data['strategy']} (seed {data['seed']})"),
            ("parameters", _cell(data["strategy_params"]) or "defaults"),
            ("objectives", ", ".join(data["objectives"])),
            ("evaluator", _cell(data["evaluator"]) if data["evaluator"] else "not run yet"),
            ("created", _cell(data["created_at"])),
            ("trials", f"{data['n_trials']}" + (f" ({states})" if states else "")),
            ("cost", f"{data['spent']:g}"),
            *_best_rows(data["best"], data["objectives"]),
        ]
    )
    if not data["top"]:
        return
    n_objectives = len(data["objectives"])
    metrics = [
        m
        for i, m in enumerate(_shown_metrics(data["objectives"])[: n_objectives + 2])
        if i < n_objectives or any(m in t["metrics"] for t in data["top"])
    ]
    with_index = any(t["index"] is not None for t in data["top"])
    table = Table(title=escape(f"top {len(data['top'])} trials by {data['objectives'][0]}"))
    table.add_column("#", justify="right")
    if with_index:
        table.add_column("index", justify="right")
    table.add_column("arch", overflow="fold")
    for metric in metrics:
        table.add_column(escape(metric), justify="right")
    for trial in data["top"]:
        _add_row(
            table,
            str(trial["number"]),
            *([_cell(trial["index"])] if with_index else []),
            trial["arch"],
            *(_fmt(trial["metrics"].get(m), 3) for m in metrics),
        )
    _console().print(table)


# -- profile -----------------------------------------------------------------------------------
#: Classes and image size of the datasets ``nasforge profile --dataset`` knows.
PROFILE_DATASETS: dict[str, tuple[int, int]] = {
    "cifar10": (10, 32),
    "cifar100": (100, 32),
    "imagenet16-120": (120, 16),
}


@app.command()
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
            help=f"Classes and input size of a dataset: {', '.join(PROFILE_DATASETS)} "
            "(default cifar10).",
            show_default=False,
        ),
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes (instead of --dataset).", show_default=False)
    ] = None,
    input_size: Annotated[
        int | None,
        typer.Option(help="Image side in pixels (instead of --dataset).", show_default=False),
    ] = None,
    channels: Annotated[
        int | None, typer.Option(help="Width C (default the space's).", show_default=False)
    ] = None,
    cells: Annotated[
        int | None,
        typer.Option(help="Depth: NB201 cells per stage, DARTS layers.", show_default=False),
    ] = None,
    latency: Annotated[
        bool, typer.Option("--latency", help="Also measure the latency on this machine.")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the parameters, MACs, FLOPs and (with --latency) the measured latency of an
    architecture's network."""
    with _errors():
        data = _profile(
            arch,
            space=space,
            dataset=dataset,
            num_classes=num_classes,
            input_size=input_size,
            channels=channels,
            cells=cells,
            latency=latency,
            backend=backend,
            batch_size=batch_size,
            runs=runs,
            threads=threads,
        )
    for note in data.pop("notes"):
        typer.echo(f"note: {note}", err=True)
    if as_json:
        _print_json(data)
        return
    rows = [
        ("arch", data["arch"]),
        ("space", f"{data['space']} ({_cell(data['build'])})"),
        ("input", "x".join(str(d) for d in data["input_shape"])),
        ("params_M", _fmt(data["metrics"]["params_M"], 4)),
        ("macs_M", _fmt(data["metrics"]["macs_M"], 3)),
        ("flops_M", _fmt(data["metrics"]["flops_M"], 3)),
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
    _print_fields(rows)


def _profile(
    text: str,
    *,
    space: str,
    dataset: str | None,
    num_classes: int | None,
    input_size: int | None,
    channels: int | None,
    cells: int | None,
    latency: bool,
    backend: str | None,
    batch_size: int,
    runs: int,
    threads: int,
) -> dict[str, Any]:
    import importlib.util

    import nasforge
    from nasforge.evaluators.training import SPACE_SETTINGS

    if dataset is not None and (num_classes is not None or input_size is not None):
        raise InvalidConfigError("Give --dataset, or --num-classes and --input-size, not both.")
    classes, size = PROFILE_DATASETS["cifar10"]
    if dataset is not None:
        key = dataset.lower()
        if key not in PROFILE_DATASETS:
            raise UnknownNameError("dataset", dataset, PROFILE_DATASETS)
        classes, size = PROFILE_DATASETS[key]
    if num_classes is not None:
        _check_positive("--num-classes", num_classes)
        classes = num_classes
    if input_size is not None:
        _check_positive("--input-size", input_size)
        size = input_size
    space_obj = nasforge.spaces.create(space)
    arch = _parse_arch(space_obj, text)
    build: dict[str, Any] = {"num_classes": classes}
    settings = SPACE_SETTINGS.get(space, {})
    if channels is not None:
        if not settings:
            raise InvalidConfigError(f"--channels is not a setting of space {space!r}.")
        build["channels"] = channels
    if cells is not None:
        if not settings:
            raise InvalidConfigError(f"--cells is not a setting of space {space!r}.")
        build[settings["depth_key"]] = cells
    if space == "darts":
        build["auxiliary"] = False  # what is deployed; the head only trains
    try:
        from nasforge import hardware
    except ImportError as exc:  # pragma: no cover - ships with nasforge
        raise InvalidConfigError(f"nasforge.hardware cannot be imported: {exc}") from None
    module = space_obj.build(arch, **build)
    shape = (3, size, size)
    try:
        metrics = hardware.count_flops(module, shape).as_metrics()
    except NasforgeError:
        raise
    except Exception as exc:  # a layer that is empty at this size
        raise InvalidConfigError(
            f"The {space} network of {arch.text!r} cannot run on {size}x{size} images: {exc}"
        ) from None
    notes: list[str] = []
    timings: dict[str, Any] = {}
    if latency:
        if backend is None:
            names = ["torch"]
            if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
                names.append("onnxruntime")
            else:
                notes.append(
                    "ONNX Runtime is not installed, so only PyTorch is timed: "
                    "pip install 'nasforge[onnx]'"
                )
        else:
            names = _split(backend)
        for name in names:
            result = hardware.measure_latency(
                module, shape, backend=name, batch_size=batch_size, runs=runs, threads=threads
            )
            timings[name] = {
                "median_ms": result.median_ms,
                "p10_ms": result.p10_ms,
                "p90_ms": result.p90_ms,
                "runs": result.runs,
                "batch_size": result.batch_size,
                "threads": result.threads,
                "max_abs_diff": result.max_abs_diff,
                "metric": result.metric,
            }
    return {
        "arch": arch.text,
        "space": space,
        "build": build,
        "input_shape": list(shape),
        "metrics": metrics,
        "latency": timings,
        "notes": notes,
    }


def _parse_arch(space: SearchSpace, text: str) -> Any:
    """An architecture from its text, a benchmark index (NB201) or a published name (DARTS)."""
    stripped = text.strip()
    from_index = getattr(space, "from_index", None)
    if from_index is not None and stripped.isdigit():
        return from_index(int(stripped))
    named = getattr(space, "named", None)
    if named is not None and not any(c in stripped for c in "|~=("):
        return named(stripped)
    return space.parse(stripped)


# -- export ------------------------------------------------------------------------------------
@app.command("export")
def export_command(
    study_name: Annotated[
        str, typer.Argument(metavar="STUDY", help="The study to export from.", show_default=False)
    ],
    storage: Annotated[
        str | None, typer.Option(help="Storage URL, e.g. sqlite:///runs.db.", show_default=False)
    ] = None,
    export_format: Annotated[
        str, typer.Option("--format", help="pytorch (a .pt file) or onnx.")
    ] = "pytorch",
    out: Annotated[
        Path | None,
        typer.Option(help="File (.pt or .onnx) or folder to write.", show_default=False),
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(help="Trial number to export (default: the best).", show_default=False),
    ] = None,
    untrained: Annotated[
        bool,
        typer.Option(
            "--untrained",
            help="Export a freshly initialised network when the trial has no saved weights.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write the network of a study's best (or chosen) trial as a PyTorch file or ONNX model."""
    with _errors():
        if storage is None:
            raise InvalidConfigError(
                "Give the storage of the study with --storage URL, e.g. --storage "
                "sqlite:///runs.db."
            )
        if out is None:
            raise InvalidConfigError("Give the file or folder to write with --out PATH.")
        import nasforge
        from nasforge.export import export_trial

        study = nasforge.load_study(study_name, storage)
        result = export_trial(study, out, format=export_format, trial=trial, untrained=untrained)
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
        _print_json(data)
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
    _print_fields(rows)


@app.command()
def pareto(
    study_name: Annotated[
        str, typer.Argument(metavar="STUDY", help="A multi-objective study.", show_default=False)
    ],
    storage: Annotated[
        str | None, typer.Option(help="Storage URL, e.g. sqlite:///runs.db.", show_default=False)
    ] = None,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A study's Pareto front, its hypervolume and its ratio to the benchmark's true front."""
    with _errors():
        if storage is None:
            raise InvalidConfigError(
                "Give the storage of the study with --storage URL, e.g. --storage "
                "sqlite:///runs.db."
            )
        if reference not in ("nadir", "median"):
            raise InvalidConfigError(f"--reference must be 'nadir' or 'median', got {reference!r}.")
        import nasforge
        from nasforge.pareto import study_front

        study = nasforge.load_study(study_name, storage)
        if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise InvalidConfigError(f"--plot {str(plot)!r}: give a .png, .svg or .pdf file name.")
        report = study_front(study, reference=reference, plot=plot)  # type: ignore[arg-type]
        study.storage.close()
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
                **{m: _clean(t.metrics.get(m)) for m in metrics},
            }
            for t in report.trials
        ],
        "hypervolume": _clean(report.hypervolume),
        "true_front_size": None if true is None else len(true.rows),
        "true_hypervolume": None if true is None else _clean(true.hypervolume),
        "ratio": _clean(report.ratio),
        "reference": None if true is None else reference,
        "plot": None if report.plot is None else str(report.plot),
    }
    if as_json:
        _print_json(data)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"Pareto front of {study_name} ({', '.join(data['objectives'])})"))
    for column in ("trial", *metrics, "architecture"):
        table.add_column(escape(column))
    for row in data["front"]:
        _add_row(table, row["number"], *(_fmt(row[m], 3) for m in metrics), row["arch"])
    _console().print(table)
    rows = [("front", f"{len(data['front'])} of {report.n_scored} scored trials")]
    if true is not None:
        rows += [
            ("true front", f"{len(true.rows)} cells (benchmark {true.benchmark}/{true.dataset})"),
            ("hypervolume", f"{_fmt(report.hypervolume, 4)} of {_fmt(true.hypervolume, 4)}"),
            ("ratio", f"{_fmt(report.ratio, 4)} (reference: {reference})"),
        ]
    if report.plot is not None:
        rows.append(("plot", str(report.plot)))
    _print_fields(rows)


# -- worker ------------------------------------------------------------------------------------
_CREATE_PANEL = "Creating the study (first worker only; later workers are checked against it)"
_RUN_PANEL = "Execution"


@app.command()
def worker(
    storage: Annotated[
        str,
        typer.Option(
            help="Storage URL shared by the workers: sqlite:///runs.db (one machine) or "
            "postgresql+psycopg://user:password@host/db (many machines).",
            show_default=False,
        ),
    ],
    study_name: Annotated[
        str, typer.Option("--study", help="Name of the shared study.", show_default=False)
    ],
    trials: Annotated[
        int | None,
        typer.Option(
            help="Stop when the study has this many finished trials (stored for later workers).",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            help="Stop when the study has spent this cost (stored for later workers).",
            show_default=False,
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="Strategy; creates the study when absent, must match it when present.",
            rich_help_panel=_CREATE_PANEL,
            show_default=False,
        ),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            help="Search space (default nb201); must match the study when present.",
            rich_help_panel=_CREATE_PANEL,
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="Dataset of the tabular benchmark.", rich_help_panel=_CREATE_PANEL)
    ] = "cifar10",
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the strategy (default 0).",
            rich_help_panel=_CREATE_PANEL,
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Strategy parameter KEY=VALUE (repeatable).", rich_help_panel=_CREATE_PANEL
        ),
    ] = None,
    max_retries: Annotated[
        int,
        typer.Option(
            help="Evaluations of the proposal of a trial whose worker died, beyond the first.",
            rich_help_panel=_CREATE_PANEL,
        ),
    ] = 3,
    executor: Annotated[
        str,
        typer.Option(
            help="Where evaluations run: inprocess, pool (local processes) or ray.",
            rich_help_panel=_RUN_PANEL,
        ),
    ] = "inprocess",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Evaluations running at once (pool: processes; ray: default what the cluster "
            "fits).",
            rich_help_panel=_RUN_PANEL,
            show_default=False,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join (auto, ray://host:10001); default: start Ray here.",
            rich_help_panel=_RUN_PANEL,
            show_default=False,
        ),
    ] = None,
    cpus_per_trial: Annotated[
        float, typer.Option(help="CPUs each Ray task reserves.", rich_help_panel=_RUN_PANEL)
    ] = 1.0,
    gpus_per_trial: Annotated[
        float, typer.Option(help="GPUs each Ray task reserves.", rich_help_panel=_RUN_PANEL)
    ] = 0.0,
    heartbeat_grace: Annotated[
        float | None,
        typer.Option(
            help="Seconds without a heartbeat before a RUNNING trial of another worker is "
            "declared dead and retried (default: the study's, 60).",
            rich_help_panel=_RUN_PANEL,
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No messages on stderr.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Work on a shared study until its limit is reached; start it on as many machines as
    you like. The first worker creates the study (give --strategy) and stores its limit."""
    from nasforge.errors import StudyDeletedError
    from nasforge.execution.worker import join_study, make_executor, run_worker

    safe = _safe_url(storage)
    study = None
    ex = None
    try:
        with _errors():
            if workers is not None:
                _check_positive("workers", workers)
            create = None
            if strategy is not None:
                import nasforge

                create = {
                    "strategy": strategy,
                    "space": space or "nb201",
                    "seed": 0 if seed is None else seed,
                    "strategy_params": parse_params(param or []),
                    "evaluator": nasforge.evaluators.create("tabular", dataset=dataset),
                    "max_retries": max_retries,
                }
            expect = {"strategy": strategy, "space": space, "seed": seed}
            study = join_study(storage, study_name, create=create, expect=expect)
            ex = make_executor(
                executor,
                workers=workers,
                ray_address=ray_address,
                cpus_per_trial=cpus_per_trial,
                gpus_per_trial=gpus_per_trial,
            )
            _note(
                f"worker on study {study.name} in {safe}: {len(study.trials)} trials recorded, "
                f"{executor} executor with {ex.max_workers} slot(s)",
                quiet,
            )
            try:
                report = run_worker(
                    study,
                    n_trials=trials,
                    budget=budget,
                    executor=ex,
                    executor_name=executor,
                    heartbeat_grace=heartbeat_grace,
                )
            except StudyDeletedError:
                _fail(
                    f"study {study_name!r} was deleted from {safe} while this worker ran; stopping",
                    1,
                )
    except KeyboardInterrupt:
        _fail_plain(
            "interrupted: this worker's running trials are marked for retry; the other "
            "workers go on"
        )
    finally:
        if ex is not None:
            ex.shutdown()
        if study is not None:
            study.storage.close()
    data = {
        "study": report.study,
        "storage": safe,
        "worker": report.worker,
        "executor": report.executor,
        "trials_by_this_worker": report.trials,
        "study_trials": report.study_trials,
        "study_finished": report.study_finished,
        "limits": report.limits,
        "seconds": round(report.seconds, 3),
    }
    if as_json:
        _print_json(data)
    else:
        _print_fields([(k.replace("_", " "), str(v)) for k, v in data.items()])


# -- entry point -------------------------------------------------------------------------------
def main(args: Sequence[str] | None = None) -> None:
    """Run the ``nasforge`` command (``args`` defaults to ``sys.argv[1:]``); exits the process."""
    app(args=None if args is None else list(args), prog_name="nasforge")


if __name__ == "__main__":  # pragma: no cover
    main()
