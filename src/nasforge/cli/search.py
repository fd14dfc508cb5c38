"""``nasforge search``: search a space with a strategy (scored by a tabular benchmark or by
training each network) or with a one-shot method, and print the best architecture."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import (
    Dedupe,
    Json,
    Param,
    Quiet,
    Seed,
    Storage,
    budget_option,
    cache_dir_option,
    device_option,
    resolution_option,
)
from nasforge.cli._table import TableFile, TableParam, table_datasets, table_settings
from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.study import Study
    from nasforge.tracking import Tracker

_TRAIN = "Training (--evaluator train, one-shot methods)"


def _train(help: str) -> Any:
    return typer.Option(help=help, rich_help_panel=_TRAIN, show_default=False)


#: ``--track SPEC``: trackers that log each trial (nasforge.tracking.make_tracker).
Track = Annotated[
    list[str] | None,
    typer.Option(
        "--track",
        metavar="SPEC",
        help="Log each trial to tensorboard[:DIR] (default runs) or mlflow[:URI] "
        "(repeatable); needs pip install 'nasforge\\[tracking]'.",
        show_default=False,
    ),
]

#: Options of a one-shot search (the other training options are refused).
_ONESHOT_OPTIONS = (
    "data", "epochs", "preset", "channels", "cells", "resolution", "data_fraction",
    "batch_size", "threads", "device", "checkpoints", "cache_dir",
)  # fmt: skip


@command()
def search(
    space: Annotated[str, typer.Option(help="Search space (nasforge list spaces).")] = "nb201",
    strategy: Annotated[
        str,
        typer.Option(
            help="Strategy or one-shot method (nasforge list strategies; darts, gdas...)."
        ),
    ] = "regularized-evolution",
    dataset: Annotated[
        str,
        typer.Option(help="Dataset: of the benchmark, or for train cifar10, folder, synthetic."),
    ] = "cifar10",
    budget: Annotated[
        float | None,
        budget_option(
            "Cost to spend, whole study (resumes included): queries of a tabular "
            "benchmark (default 100), or seconds of training with --evaluator train."
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many finished trials (whole study).", show_default=False
        ),
    ] = None,
    seed: Seed = 0,
    evaluator_name: Annotated[
        str,
        typer.Option(
            "--evaluator",
            help="tabular (look results up in a benchmark), train (train each), or any "
            "evaluator of nasforge list evaluators.",
        ),
    ] = "tabular",
    evaluator_param: Annotated[
        list[str] | None,
        typer.Option(
            "--evaluator-param",
            metavar="KEY=VALUE",
            help="Keyword of the evaluator (repeatable), e.g. for a plugin's evaluator.",
            show_default=False,
        ),
    ] = None,
    benchmark: Annotated[str, typer.Option(help="Tabular benchmark that scores.")] = "nb201",
    table: TableFile = None,
    table_param: TableParam = None,
    fidelity: Annotated[
        int | None, typer.Option(help="Training epochs to look up (default: the highest).")
    ] = None,
    storage: Storage = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study name (default with --storage: SPACE-STRATEGY-DATASET-seedSEED).",
        ),
    ] = None,
    param: Param = None,
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
            "'test_acc:max,latency_ms\\[pixel3]:min' (instead of repeating --objective).",
            show_default=False,
        ),
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint",
            metavar="METRIC<=VALUE",
            help="Bound a metric, e.g. 'latency_ms\\[edgegpu]<=5' (repeatable); free metrics are "
            "checked before evaluation.",
            show_default=False,
        ),
    ] = None,
    dedupe: Dedupe = None,
    stopping: common.Stopping = None,
    stopping_param: common.StoppingParam = None,
    data: Annotated[
        Path | None,
        _train("The data: CIFAR-10 python release folder, image-folder tree, or a .tar.gz."),
    ] = None,
    epochs: Annotated[int | None, _train("Epochs per trial (one-shot: supernet epochs).")] = None,
    preset: Annotated[
        str | None,
        _train(
            "The space's network preset: paper (default), search, reduced (a CPU setting; "
            "mobilenet/fbnet: the CIFAR network at width 0.25), cifar; sets the defaults of "
            "--resolution, --data-fraction, --batch-size and --epochs. One-shot: the "
            "supernet's preset (default search)."
        ),
    ] = None,
    build: Annotated[
        list[str] | None,
        typer.Option(
            "--build",
            metavar="KEY=VALUE",
            help="Setting of the space's network that replaces the preset's, e.g. "
            "width_mult=0.5 for mobilenet (repeatable).",
            rich_help_panel=_TRAIN,
            show_default=False,
        ),
    ] = None,
    channels: Annotated[int | None, _train("Width C (NB201 16, DARTS 36).")] = None,
    cells: Annotated[
        int | None, _train("Depth: cells per stage N (NB201, 5) or layers (DARTS, 20).")
    ] = None,
    resolution: Annotated[int | None, resolution_option(panel=_TRAIN)] = None,
    data_fraction: Annotated[
        float | None, _train("Share of the training split used (0-1].")
    ] = None,
    recipe: Annotated[
        str | None, _train("Base recipe: nb201 (default) or darts; the options below change it.")
    ] = None,
    optimizer: Annotated[str | None, _train("sgd, adamw or lion.")] = None,
    lr: Annotated[float | None, _train("Peak learning rate.")] = None,
    batch_size: Annotated[int | None, _train("Batch size.")] = None,
    weight_decay: Annotated[float | None, _train("Weight decay.")] = None,
    warmup: Annotated[float | None, _train("Epochs of linear warm-up.")] = None,
    label_smoothing: Annotated[float | None, _train("Label smoothing.")] = None,
    cutout: Annotated[
        int | None, _train("Cutout side in pixels of a 32x32 image (0: off).")
    ] = None,
    grad_clip: Annotated[float | None, _train("Clip the gradients' global norm.")] = None,
    valid_size: Annotated[
        int | None, _train("Validation images cut from the training set (default half).")
    ] = None,
    eval_limit: Annotated[
        int | None, _train("Measure accuracy on at most this many validation/test images.")
    ] = None,
    threads: Annotated[int | None, _train("CPU threads (default all).")] = None,
    device: Annotated[str, device_option(panel=_TRAIN)] = "auto",
    checkpoints: Annotated[
        str | None,
        _train(
            "Folder for the trained weights (for nasforge export); 'none' keeps none. "
            "Default with a SQLite storage: DB-checkpoints/STUDY next to the database."
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        cache_dir_option(
            "Where to extract archives and cache decoded images (default: the user cache, "
            "$XDG_CACHE_HOME or ~/.cache/nasforge/datasets; never next to the data).",
            panel=_TRAIN,
        ),
    ] = None,
    track: Track = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Search a space with a strategy, scored by a tabular benchmark or by training each
    network, or with a one-shot method (darts, gdas, pc-darts, spos, darts-pt,
    single-level-darts) on --data, and print the best architecture."""
    started = time.perf_counter()
    study: Study | None = None
    training = {
        "data": data, "epochs": epochs, "preset": preset, "build": build or None,
        "channels": channels, "cells": cells,
        "resolution": resolution, "data_fraction": data_fraction, "recipe": recipe,
        "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
        "weight_decay": weight_decay, "warmup": warmup, "label_smoothing": label_smoothing,
        "cutout": cutout, "grad_clip": grad_clip, "valid_size": valid_size,
        "eval_limit": eval_limit, "threads": threads,
        "device": None if device == "auto" else device,  # the default: refused nowhere
        "checkpoints": checkpoints, "cache_dir": cache_dir,
    }  # fmt: skip
    trackers: list[Tracker] = []
    try:
        with common.errors():
            from nasforge.tracking import make_tracker

            trackers = [make_tracker(spec) for spec in track or []]
            from nasforge.experiments.compare import is_oneshot

            if is_oneshot(strategy):  # a one-shot method trains a supernet on --data
                _oneshot(
                    strategy,
                    space=space,
                    dataset=dataset,
                    seed=seed,
                    storage=storage,
                    study_name=study_name,
                    params=common.parse_params(param or []),
                    evaluator_name=evaluator_name,
                    evaluator_params=common.parse_params(
                        evaluator_param or [], option="--evaluator-param"
                    ),
                    objectives=_objectives(objective, objectives),
                    options=training,
                    other={
                        "budget": budget,
                        "trials": trials,
                        "fidelity": fidelity,
                        "stopping": stopping,
                    },
                    quiet=quiet,
                    as_json=as_json,
                    trackers=trackers,
                )
                return
            own_table = table_settings(table, table_param or [])
            if own_table is not None:  # the table is the space and the benchmark
                space, benchmark = "table", "table"
                dataset = table_datasets(own_table, [dataset], default="cifar10")[0]
                if evaluator_name != "tabular":
                    raise InvalidConfigError(
                        f"--table is looked up by the tabular evaluator, not --evaluator "
                        f"{evaluator_name}: its architectures are rows, with no network to build."
                    )
            study, evaluator, budget = _open(
                space=space,
                **({"space_params": own_table} if own_table is not None else {}),
                strategy=strategy,
                dataset=dataset,
                budget=budget,
                trials=trials,
                seed=seed,
                evaluator_name=evaluator_name,
                benchmark=benchmark,
                fidelity=fidelity,
                storage=storage,
                study_name=study_name,
                params=common.parse_params(param or []),
                objectives=_objectives(objective, objectives),
                dedupe=dedupe,
                constraints=constraint or [],
                stopping=stopping,
                stopping_params=common.parse_params(
                    stopping_param or [], option="--stopping-param", example="min_step=1"
                ),
                training=training,
                evaluator_params={
                    **common.parse_params(evaluator_param or [], option="--evaluator-param"),
                    **({"benchmark_params": own_table} if own_table is not None else {}),
                },
                quiet=quiet,
            )
            _run(study, evaluator, budget=budget, trials=trials, quiet=quiet, trackers=trackers)
    except KeyboardInterrupt:
        if study is None:
            common.interrupted("interrupted before the search started")
        if study.storage.persistent:
            common.interrupted(
                f"interrupted: {len(study.trials)} trials recorded; run the same command to resume"
            )
        common.interrupted(
            f"interrupted: {len(study.trials)} trials evaluated and not saved; "
            "add --storage sqlite:///FILE.db to make a search resumable"
        )
    finally:
        for tracker in trackers:
            tracker.close()
    from nasforge.cli._summary import print_search_summary
    from nasforge.runs import search_summary

    summary = search_summary(
        study,
        evaluator,
        budget=budget,
        seconds=time.perf_counter() - started,
        storage=storage,
        trials=trials,
    )
    study.storage.close()
    if as_json:
        common.print_json(summary)
    else:
        print_search_summary(summary)
    if summary["best"] is None:
        failed = [t for t in study.trials if t.fail_reason]
        reason = f"; first failure: {failed[0].fail_reason}" if failed else ""
        if not study.trials and budget is not None:
            reason = f": no evaluation fits in --budget {budget:g}; give a larger budget"
        common.fail(f"no trial completed{reason}", 1)


def _objectives(objective: list[str] | None, objectives: str | None) -> list[str]:
    return common.parse_objectives(objective, objectives)


def _flags(options: Mapping[str, Any]) -> list[str]:
    return [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]


def _open(
    *,
    evaluator_name: str,
    budget: float | None,
    trials: int | None,
    benchmark: str,
    fidelity: int | None,
    training: Mapping[str, Any],
    evaluator_params: dict[str, Any],
    quiet: bool,
    **settings: Any,
) -> tuple[Study, Any, float | None]:
    """The study and its evaluator (tabular, train or any registered one) from the options,
    and the budget."""
    import nasforge
    from nasforge.runs import open_search, open_training_search
    from nasforge.runs.search import check_settings

    check_settings(
        seed=settings["seed"], budget=budget, trials=trials, study_name=settings["study_name"]
    )
    if evaluator_name not in nasforge.evaluators.names():
        nasforge.evaluators.create(evaluator_name)  # the registry's error: closest name, plugin
    settings["strategy_params"] = settings.pop("params")
    if evaluator_name != "train":
        given = _flags(training)
        if given:
            raise InvalidConfigError(
                f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                f"--evaluator train; the {evaluator_name} evaluator does not train."
                if evaluator_name != "tabular"
                else f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                "--evaluator train; the tabular evaluator looks results up."
            )
        if budget is None and trials is None:
            budget = 100
        opened = open_search(
            budget=budget,
            evaluator=evaluator_name,
            evaluator_params=evaluator_params,
            benchmark=benchmark,
            fidelity=fidelity,
            **settings,
        )
    else:
        if evaluator_params:
            raise InvalidConfigError(
                "--evaluator-param applies to evaluators other than train; give the training "
                "settings with their own options (--epochs, --lr...)."
            )
        if fidelity is not None:
            raise InvalidConfigError(
                "--fidelity looks up a tabular benchmark; with --evaluator train give --epochs."
            )
        if budget is None and trials is None:
            raise InvalidConfigError(
                "Give --trials N (trials to train) or --budget SECONDS (training time) "
                "for a search with --evaluator train."
            )
        options = dict(training)
        checkpoints = options.pop("checkpoints")
        options["build"] = common.parse_params(
            options["build"] or [], option="--build", example="width_mult=0.5"
        )
        opened = open_training_search(
            budget=budget,
            checkpoint_dir=_checkpoint_dir(checkpoints),
            keep_checkpoints=_keep(checkpoints),
            training=options,
            **settings,
        )
    if opened.resumed:
        common.note(
            f"resuming study {opened.study.name} ({len(opened.study.trials)} trials recorded)",
            quiet,
        )
    return opened.study, opened.evaluator, budget


def _keep(checkpoints: str | None) -> bool:
    """``--checkpoints none`` keeps no weights."""
    return checkpoints is None or checkpoints.strip().lower() != "none"


def _checkpoint_dir(checkpoints: str | None) -> str | None:
    return checkpoints if checkpoints is not None and _keep(checkpoints) else None


def _run(
    study: Study,
    evaluator: Any,
    *,
    budget: float | None,
    trials: int | None,
    quiet: bool,
    trackers: Sequence[Tracker] = (),
) -> None:
    from nasforge.runs import run_search

    if not common.show_progress(quiet):
        run_search(study, evaluator, budget=budget, n_trials=trials, callbacks=trackers)
        return
    from nasforge.cli._progress import SearchBars

    bars = SearchBars()
    try:
        run_search(
            study, evaluator, budget=budget, n_trials=trials, progress=bars, callbacks=trackers
        )
    finally:
        bars.stop()


def _oneshot(
    method: str,
    *,
    space: str,
    dataset: str,
    seed: int,
    storage: str | None,
    study_name: str | None,
    params: dict[str, Any],
    evaluator_name: str,
    evaluator_params: dict[str, Any],
    objectives: list[str],
    options: Mapping[str, Any],
    other: Mapping[str, Any],
    quiet: bool,
    as_json: bool,
    trackers: Sequence[Tracker] = (),
) -> None:
    """``nasforge search --strategy darts|gdas|...``: train the method's supernet on
    ``--data`` (a path of images, or ``package.module:attribute`` naming a user's data set;
    none with ``--dataset synthetic``) and record each epoch's derived architecture, looked
    up in the space's table (``--evaluator tabular``), trained (``--evaluator train``) or
    scored by any registered evaluator (``--evaluator NAME --evaluator-param KEY=VALUE``)."""
    from nasforge.cli._summary import print_search_summary
    from nasforge.runs.oneshot import run_oneshot_search

    unused = _flags(other) + _flags({k: v for k, v in options.items() if k not in _ONESHOT_OPTIONS})
    if unused:
        raise InvalidConfigError(
            f"{', '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply to the "
            f"one-shot method {method!r}; it runs --epochs supernet epochs (see "
            "nasforge search --help, panel Training)."
        )
    bar = common.progress_bar(method) if common.show_progress(quiet) else None
    task = None

    def advance(study: Study, trial: Any) -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=int(trial.metrics.get("epoch", 0)) + 1)

    if bar is not None:
        bar.start()
        task = bar.add_task(method, total=None)
    from nasforge.cli._logs import info_on_stderr

    try:
        with info_on_stderr(not quiet and bar is None):
            run = run_oneshot_search(
                method,
                space=space,
                dataset=dataset,
                seed=seed,
                data=options.get("data"),
                settings={
                    key: options.get(key)
                    for key in (
                        "preset",
                        "channels",
                        "cells",
                        "resolution",
                        "data_fraction",
                        "batch_size",
                    )
                },
                params=params,
                evaluator=evaluator_name,
                evaluator_params=evaluator_params,
                objectives=objectives,
                epochs=options.get("epochs"),
                storage=storage,
                study_name=study_name,
                checkpoint_dir=_checkpoint_dir(options.get("checkpoints")),
                keep_checkpoints=_keep(options.get("checkpoints")),
                cache_dir=options.get("cache_dir"),
                device=options.get("device") or "auto",
                threads=options.get("threads"),
                callbacks=[advance, *trackers],
            )
    finally:
        if bar is not None:
            bar.stop()
    study, result, summary = run.study, run.result, run.summary
    if result.resumed_from:
        common.note(f"resumed study {study.name} at epoch {result.resumed_from}", quiet)
    study.storage.close()
    if as_json:
        common.print_json(summary)
    else:
        print_search_summary(summary)
        last = summary["oneshot"]["final"]
        if last is not None:
            common.print_fields(
                [
                    ("final arch", last["arch"]),
                    ("final valid", common.fmt(last["metrics"].get("valid_acc"))),
                    ("final test", common.fmt(last["metrics"].get("test_acc"))),
                ]
            )
    if result.failed is not None:
        common.fail(
            f"the search stopped: {result.failed}; the last good epoch's checkpoint is kept", 1
        )
