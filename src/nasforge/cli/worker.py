"""``nasforge worker``: work on a shared study until its limit is reached, on as many
machines as you like."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli._app import command
from nasforge.cli._common import Json, Quiet, StorageRequired, budget_option, workers_option

_CREATE = "Creating the study (first worker only; later workers are checked against it)"
_RUN = "Execution"


def _create_option(help: str, **extra: Any) -> Any:
    extra.setdefault("show_default", False)
    return typer.Option(help=help, rich_help_panel=_CREATE, **extra)


@command()
def worker(
    storage: StorageRequired,
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
        budget_option("Stop when the study has spent this cost (stored for later workers)."),
    ] = None,
    strategy: Annotated[
        str | None,
        _create_option("Strategy; creates the study when absent, must match it when present."),
    ] = None,
    space: Annotated[
        str | None,
        _create_option("Search space (default nb201); must match the study when present."),
    ] = None,
    dataset: Annotated[
        str, _create_option("Dataset of the evaluator of a new study.", show_default=True)
    ] = "cifar10",
    seed: Annotated[
        int | None, _create_option("Seed of the strategy (default 0); must match the study.")
    ] = None,
    evaluator: Annotated[
        str,
        _create_option(
            "Evaluator of a new study: tabular (a benchmark's table) or any of nasforge list "
            "evaluators (plugins included).",
            show_default=True,
        ),
    ] = "tabular",
    fn: Annotated[
        str | None,
        _create_option(
            "The function of --evaluator function, package.module:function: fn(model, context) "
            "-> metrics (recorded with the study; every worker imports it)."
        ),
    ] = None,
    evaluator_param: Annotated[
        list[str] | None,
        typer.Option(
            "--evaluator-param",
            metavar="KEY=VALUE",
            help="Keyword of the evaluator of a new study (repeatable).",
            rich_help_panel=_CREATE,
            show_default=False,
        ),
    ] = None,
    benchmark: Annotated[
        str, _create_option("Tabular benchmark of a new study.", show_default=True)
    ] = "nb201",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="Strategy parameter (repeatable).",
            rich_help_panel=_CREATE,
            show_default=False,
        ),
    ] = None,
    stopping: Annotated[
        str | None,
        _create_option(
            "Early-stopping rule of a new study: median, successive-halving, hyperband or "
            "asha (for evaluators that report); must match the study when present.",
            metavar="RULE",
        ),
    ] = None,
    stopping_param: Annotated[
        list[str] | None,
        typer.Option(
            "--stopping-param",
            metavar="KEY=VALUE",
            help="Parameter of the --stopping rule of a new study (repeatable).",
            rich_help_panel=_CREATE,
            show_default=False,
        ),
    ] = None,
    max_retries: Annotated[
        int,
        _create_option(
            "Evaluations of the proposal of a trial whose worker died, beyond the first.",
            show_default=True,
        ),
    ] = 3,
    executor: Annotated[
        str,
        typer.Option(
            help="Where evaluations run: inprocess, pool (local processes) or ray.",
            rich_help_panel=_RUN,
        ),
    ] = "inprocess",
    workers: Annotated[
        int | None,
        workers_option(
            "Evaluations running at once (pool: processes; ray: default what the cluster fits).",
            panel=_RUN,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join (auto, ray://host:10001); default: start Ray here.",
            rich_help_panel=_RUN,
            show_default=False,
        ),
    ] = None,
    cpus_per_trial: Annotated[
        float, typer.Option(help="CPUs each Ray task reserves.", rich_help_panel=_RUN)
    ] = 1.0,
    gpus_per_trial: Annotated[
        float, typer.Option(help="GPUs each Ray task reserves.", rich_help_panel=_RUN)
    ] = 0.0,
    heartbeat_grace: Annotated[
        float | None,
        typer.Option(
            help="Seconds without a heartbeat before a RUNNING trial of another worker is "
            "declared dead and retried (default: the study's, 60).",
            rich_help_panel=_RUN,
            show_default=False,
        ),
    ] = None,
    track: Annotated[
        list[str] | None,
        typer.Option(
            "--track",
            metavar="SPEC",
            help="Log each trial this worker finishes to tensorboard[:DIR] (default runs) or "
            "mlflow[:URI] (repeatable; workers of a study share its run); needs pip install "
            "'nasforge\\[tracking]'.",
            show_default=False,
        ),
    ] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Work on a shared study until its limit is reached; start it on as many machines as
    you like. The first worker creates the study (give --strategy) and stores its limit."""
    from nasforge.errors import StudyDeletedError
    from nasforge.execution.worker import (
        check_worker_limits,
        join_study,
        make_executor,
        run_worker,
    )
    from nasforge.runs.summary import safe_url
    from nasforge.tracking import Tracker, make_tracker

    safe = safe_url(storage)
    study = None
    ex = None
    trackers: list[Tracker] = []
    try:
        with common.errors():
            common.check_at_least_one("--workers", workers)
            check_worker_limits(trials, budget, heartbeat_grace, prefix="--")
            trackers = [make_tracker(spec) for spec in track or []]
            create = None
            if strategy is not None:
                from nasforge.evaluators.options import evaluator_from_options, function_params

                params = common.parse_params(evaluator_param or [], option="--evaluator-param")
                params = function_params(evaluator, fn, params)
                if evaluator == "tabular":
                    params = {"benchmark": benchmark, **params}
                create = {
                    "strategy": strategy,
                    "space": space or "nb201",
                    "seed": 0 if seed is None else seed,
                    "strategy_params": common.parse_params(param or []),
                    "evaluator": evaluator_from_options(
                        evaluator,
                        dataset=dataset,
                        params=params,
                        space=None if evaluator == "tabular" else space,
                    ),
                    "max_retries": max_retries,
                    "stopping": stopping,
                    "stopping_params": common.parse_params(
                        stopping_param or [], option="--stopping-param", example="min_step=1"
                    ),
                }
            expect = {"strategy": strategy, "space": space, "seed": seed}
            # the executor first: a cluster that cannot be reached leaves no study behind
            ex = make_executor(
                executor,
                workers=workers,
                ray_address=ray_address,
                cpus_per_trial=cpus_per_trial,
                gpus_per_trial=gpus_per_trial,
            )
            study = join_study(
                storage,
                study_name,
                create=create,
                expect=expect,
                limits={"n_trials": trials, "budget": budget},
            )
            _check_stopping(study, stopping, stopping_param)
            common.note(
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
                    callbacks=tuple(trackers),
                )
            except StudyDeletedError:
                common.fail(
                    f"study {study_name!r} was deleted from {safe} while this worker ran; stopping",
                    1,
                )
    except KeyboardInterrupt:
        common.interrupted(
            "interrupted: this worker's running trials are marked for retry; the other "
            "workers go on"
        )
    finally:
        for tracker in trackers:
            tracker.close()
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
        common.print_json(data)
    else:
        common.print_fields([(k.replace("_", " "), str(v)) for k, v in data.items()])


def _check_stopping(study: Any, stopping: str | None, params: list[str] | None) -> None:
    """Refuse a --stopping rule other than the joined study's."""
    if stopping is None:
        return
    from nasforge.errors import StudyConflictError
    from nasforge.study._create import stopping_spec

    wanted = stopping_spec(stopping, common.parse_params(params or [], option="--stopping-param"))
    stored = study.record.options.get("stopping")
    if stored != wanted:
        raise StudyConflictError(
            f"Study {study.name!r} was created with stopping rule {stored!r}; this worker asks "
            f"for {wanted!r}. Leave --stopping out to join with the stored rule."
        )
