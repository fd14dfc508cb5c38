"""``nasforge supernet search``: Once-for-All's predictor-guided evolution (or any registered
strategy) over the sub-networks of a supernet trained by ``nasforge supernet train``, as a
study; prints the chosen sub-network and the ``nasforge export`` command that writes it.

Private to :mod:`nasforge.cli.supernet`, which registers it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli import _supernet_transformer as transformer
from nasforge.cli._app import _Command
from nasforge.cli._common import Json, Param, Quiet, StorageRequired
from nasforge.cli.supernet import (
    DATA_FILE,
    MANIFEST,
    _data_source,
    _option,
    _sides,
    supernet_app,
)
from nasforge.errors import InvalidConfigError, UnknownNameError

__all__ = ["search"]

_SEARCH = "Once-for-All's evolution (--strategy ofa-evolution)"
_MEASURE = "Measuring sub-networks"


@supernet_app.command("search", cls=_Command)
def search(
    directory: Annotated[
        str,
        typer.Argument(
            metavar="DIR", help="Folder of a supernet trained by nasforge supernet train."
        ),
    ],
    storage: StorageRequired,
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint",
            metavar="METRIC<=VALUE",
            help="Bound a metric (repeatable): 'latency_ms\\[DEVICE]<=15' with --table, "
            "'latency_ms\\[cpu-torch]<=3' (timed here), 'macs_M<=20', 'params_M<=1'.",
            show_default=False,
        ),
    ] = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study name (default: DIR's name, strategy, constraints, seed); a rerun "
            "resumes it.",
            show_default=False,
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="ofa-evolution (accuracy predictor and evolution; the default) or any "
            "registered strategy (nasforge list strategies), every proposal measured; a "
            "super-transformer: autoformer-evolution (default); llm: nsga2 (default).",
            show_default=False,
        ),
    ] = None,
    param: Param = None,
    measured: Annotated[
        int | None,
        _option("Random sub-networks measured to fit the predictor (default 100).", _SEARCH),
    ] = None,
    population: Annotated[
        int | None, _option("Population of the evolution (default 100).", _SEARCH)
    ] = None,
    generations: Annotated[
        int | None, _option("Generations of the evolution (default 500).", _SEARCH)
    ] = None,
    top_k: Annotated[
        int | None,
        _option("Best predicted sub-networks measured at the end (default 5).", _SEARCH),
    ] = None,
    resolutions: Annotated[
        str | None,
        _option(
            "Input sides of the sub-networks searched, e.g. 16,32 (default: those the supernet "
            "was trained at).",
            _SEARCH,
        ),
    ] = None,
    trials: Annotated[int | None, _option("Trials of another --strategy (default 105).")] = None,
    table: Annotated[
        list[str] | None,
        _option(
            "Per-layer latency table of a device (CSV; repeatable): gives "
            "latency_ms\\[<its name>].",
            _MEASURE,
            metavar="PATH",
        ),
    ] = None,
    measure_here: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Also time each sub-network on this machine's CPU (PyTorch, one thread: "
            "latency_ms\\[cpu-torch]; with a --table of this CPU, measured_latency_ms\\[<its "
            "name>]). On when a constraint names such a latency.",
            rich_help_panel=_MEASURE,
        ),
    ] = False,
    recalibration_batches: Annotated[
        int | None,
        _option("Training batches that recompute the batch norms (default 8).", _MEASURE),
    ] = None,
    valid_images: Annotated[
        int | None,
        _option("Held-out images a sub-network's accuracy is counted on (default 1000).", _MEASURE),
    ] = None,
    data: Annotated[
        Path | None,
        _option("The supernet's data, when it moved (default: what train recorded).", _MEASURE),
    ] = None,
    dataset: Annotated[
        str | None, _option("How to read --data: cifar10, folder or synthetic.", _MEASURE)
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the random sub-networks, predictor and evolution.")
    ] = 0,
    objective: transformer.Objective = None,
    seq_len: transformer.SeqLen = None,
    max_windows: transformer.MaxWindows = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Search a trained supernet's sub-networks under constraints; print the chosen one."""
    with common.errors():
        from nasforge.elastic.search import STRATEGY, search_subnets

        folder = common.given_path("DIR", directory, "the folder of a trained supernet")
        kind = transformer.supernet_kind(folder)
    if kind != transformer.ELASTIC_KIND:  # a super-transformer or a language model
        elastic = {"--measured": measured, "--top-k": top_k, "--resolutions": resolutions,
                   "--recalibration-batches": recalibration_batches}  # fmt: skip
        transformer.search(
            folder, kind, storage=storage, constraint=constraint, study_name=study_name,
            strategy=strategy, param=param, population=population, generations=generations,
            trials=trials, table=table, measure_here=measure_here, valid_images=valid_images,
            data=data, dataset=dataset, seed=seed, objective=objective, seq_len=seq_len,
            max_windows=max_windows, quiet=quiet, as_json=as_json, elastic_only=elastic,
        )  # fmt: skip
        return
    with common.errors():
        strategy = strategy or STRATEGY
        transformer.refuse_options(
            "an elastic supernet (a language-model option)",
            {"--objective": objective, "--seq-len": seq_len, "--max-windows": max_windows},
        )
        run = _trained_run(folder)
        bounds = [item.strip() for item in constraint or []]
        params = common.parse_params(param or [])
        counts = {
            "measured": measured,
            "population": population,
            "generations": generations,
            "top_k": top_k,
        }
        for key, value in counts.items():
            common.check_at_least_one(f"--{key.replace('_', '-')}", value)
        common.check_at_least_one("--trials", trials)
        _check_strategy(strategy, counts, params, trials)
        name = study_name if study_name is not None else _study_name(folder, strategy, bounds, seed)
        source = _evaluator_params(folder, data, dataset, recalibration_batches, valid_images)
        given: dict[str, Any] = {k: v for k, v in counts.items() if v is not None}
        if strategy != STRATEGY and measured is not None:
            given = {"measured": measured}
        sides = _sides(resolutions)
        if sides is not None and strategy != STRATEGY:
            raise InvalidConfigError(
                f"--resolutions applies to {STRATEGY}; the {strategy!r} strategy proposes "
                "sub-networks of the whole space."
            )
        evaluator = _announcing_evaluator(
            folder,
            source,
            tables=list(table or []),
            measure=_measure(measure_here, bounds),
            plan=None if quiet else _plan(run, strategy, given, trials),
        )
        _check_latency_metrics(evaluator, bounds)
        result = search_subnets(
            evaluator,
            constraints=bounds,
            storage=storage,
            study_name=name,
            strategy=strategy,
            strategy_params=params or None,
            n_trials=trials,
            seed=seed,
            resolutions=sides,
            **given,
        )
        result.study.storage.close()
    _print_search(result, bounds, storage, as_json)


def _trained_run(folder: Path) -> dict[str, Any]:
    """``folder``'s manifest, refused unless it holds a supernet with a completed phase."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidConfigError(
            f"{str(folder)!r} holds no trained supernet (no {MANIFEST}); train one with "
            f"nasforge supernet train --out {shlex.quote(str(folder))}."
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
        run, phases, done = manifest["run"], manifest["phases"], int(manifest["phases_done"])
    except (ValueError, KeyError, TypeError):
        raise InvalidConfigError(
            f"{str(path)!r} is not the manifest of a nasforge supernet; train the folder again."
        ) from None
    if done == 0:
        raise InvalidConfigError(
            f"{str(folder)!r} holds a {run.get('schedule')!r} run of {run.get('space')!r} with "
            f"none of its {len(phases)} phases completed; run the same nasforge supernet train "
            "command again to resume it."
        )
    return manifest


def _check_strategy(
    strategy: str, counts: Mapping[str, int | None], params: Mapping[str, Any], trials: int | None
) -> None:
    from nasforge import strategies
    from nasforge.elastic.search import STRATEGY

    if strategy == STRATEGY:
        if params or trials is not None:
            raise InvalidConfigError(
                f"--param and --trials apply to other strategies; {STRATEGY} takes --measured, "
                "--population, --generations and --top-k."
            )
        return
    if strategy not in strategies.names():
        raise UnknownNameError("strategy (--strategy)", strategy, [STRATEGY, *strategies.names()])
    given = [f"--{k.replace('_', '-')}" for k in ("population", "generations", "top_k")]
    given = [flag for flag, key in zip(given, ("population", "generations", "top_k"), strict=True)
             if counts.get(key) is not None]  # fmt: skip
    if given:
        raise InvalidConfigError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to {STRATEGY}; give "
            f"the {strategy!r} strategy's parameters with -p KEY=VALUE and its trials with "
            "--trials."
        )


def _study_name(folder: Path, strategy: str, bounds: Sequence[str], seed: int) -> str:
    """``DIR-STRATEGY[-CONSTRAINT...]-seedSEED``: one study per supernet, strategy, set of
    constraints and seed, so that a rerun resumes it and another target starts another."""
    parts = [folder.resolve().name or "supernet", strategy, *sorted(set(bounds)), f"seed{seed}"]
    return "-".join(parts)


def _evaluator_params(
    folder: Path,
    data: Path | None,
    dataset: str | None,
    recalibration_batches: int | None,
    valid_images: int | None,
) -> dict[str, Any]:
    """The data of the ``supernet`` evaluator: what ``train`` recorded in ``DATA_FILE``
    (with the settings of synthetic images), or ``--data``/``--dataset`` (``--dataset
    synthetic`` keeps the recorded settings of synthetic images); and the measuring counts
    given."""
    recorded: dict[str, Any] = {}
    path = folder / DATA_FILE
    if path.is_file():
        recorded = json.loads(path.read_text())
    if data is not None or dataset is not None:
        kind = dataset or recorded.get("dataset") or "cifar10"
        who = f"nasforge supernet search --dataset {kind} measures the sub-networks of"
        synthetic = recorded.get("synthetic") if recorded.get("dataset") == kind else None
        source = _data_source(kind, data, None, who, synthetic=synthetic)
        if "cache_dir" in recorded:
            source["cache_dir"] = recorded["cache_dir"]
    elif recorded:
        source = recorded
    else:
        raise InvalidConfigError(
            f"{str(folder)!r} does not say which data the supernet was trained on (no "
            f"{DATA_FILE}: it was not trained by nasforge supernet train); give --data PATH "
            "(and --dataset) of that data."
        )
    out = dict(source)
    for key, value in (
        ("recalibration_batches", recalibration_batches),
        ("valid_images", valid_images),
    ):
        if value is not None:
            common.check_at_least_one(f"--{key.replace('_', '-')}", value)
            out[key] = value
    return out


def _measure(measure: bool, bounds: Sequence[str]) -> bool:
    """``--measure``: time sub-networks here; without it, when a constraint names a
    latency measured here (as :func:`~nasforge.elastic.search.search_subnets` decides)."""
    from nasforge.constraints import Constraint

    metrics = [Constraint.parse(text).metric for text in bounds]
    return measure or any(
        m.startswith("measured_latency_ms[") or m == "latency_ms[cpu-torch]" for m in metrics
    )


def _check_latency_metrics(evaluator: Any, bounds: Sequence[str]) -> None:
    """A constraint on the latency of a device without its table: say how to give one."""
    from nasforge.constraints import Constraint

    known = {*evaluator.metrics, *evaluator.free_metric_names}
    for text in bounds:
        metric = Constraint.parse(text).metric
        if metric not in known and "latency_ms[" in metric:
            have = sorted(m for m in known if "latency_ms[" in m)
            raise InvalidConfigError(
                f"--constraint {common.abbreviate(text)}: no {metric} without the per-layer "
                "latency table of that device; give it with --table PATH (a CSV of "
                "nasforge.hardware.LayerLatencyTable), or --measure to time sub-networks "
                f"here (latency_ms[cpu-torch]). Latencies known now: {', '.join(have) or 'none'}."
            )


def _announcing_evaluator(
    folder: Path, source: Mapping[str, Any], *, tables: list[str], measure: bool, plan: str | None
) -> Any:
    """The ``supernet`` evaluator of ``folder`` that says on stderr what the search does
    when it measures its first sub-network (after every check of the input passed), then
    every tenth (``plan`` ``None``: silent)."""
    from nasforge.evaluators.supernet import SupernetEvaluator

    class Announcing(SupernetEvaluator):
        count = 0

        def evaluate(self, arch: Any, fidelity: Mapping[str, Any] | None = None) -> Any:
            if plan is not None and self.count == 0:
                common.note(plan, False)
            result = super().evaluate(arch, fidelity)
            self.count += 1
            if plan is not None and self.count % 10 == 0:
                common.note(f"measured {self.count} sub-networks", False)
            return result

    return Announcing(folder, **source, tables=tables, measure=measure)


def _plan(
    manifest: Mapping[str, Any], strategy: str, given: Mapping[str, int], trials: int | None
) -> str:
    """What the search does, in one line (and that the training is incomplete, if so)."""
    run = manifest["run"]
    what = f"{run['schedule']} supernet of {run['space']}"
    if strategy == "ofa-evolution":
        text = (
            f"searching the {what}: measuring {given.get('measured', 100)} random "
            "sub-networks, fitting the accuracy predictor, evolving "
            f"{given.get('generations', 500)} generations, measuring the "
            f"{given.get('top_k', 5)} best predicted"
        )
    else:
        count = trials if trials is not None else given.get("measured", 100) + 5
        text = f"searching the {what} with {strategy}: {count} sub-networks measured"
    done, total = int(manifest["phases_done"]), len(manifest["phases"])
    if done < total:
        text += f" (training incomplete: the supernet after phase {done} of {total})"
    return text


def _print_search(result: Any, bounds: Sequence[str], storage: str, as_json: bool) -> None:
    from nasforge.constraints import Constraint

    study = result.study
    export = (
        f"nasforge export {shlex.quote(study.name)} --storage {shlex.quote(storage)} "
        "--out subnet.pt"
    )
    metrics = {k: v for k, v in result.metrics.items() if not k.startswith("predicted_")}
    if as_json:
        common.print_json(
            {
                "study": study.name,
                "trial": result.chosen.number,
                "arch": result.arch.text,
                "metrics": metrics,
                "predicted": result.predicted,
                "constraints": result.constraints,
                "measured": len(study.trials),
                "candidates": [
                    {"arch": a, "predicted": p, "measured": m} for a, p, m in result.candidates
                ],
                "export": export,
            }
        )
        return
    accuracy = common.fmt(metrics.get("valid_acc"))
    if result.predicted is not None:
        accuracy += f" (predicted {common.fmt(result.predicted)})"
    rows = [
        ("chosen", result.arch.text),
        ("trial", f"{result.chosen.number} of study {study.name} ({len(study.trials)} measured)"),
        ("valid_acc", accuracy),
    ]
    parsed = [Constraint.parse(text) for text in bounds]
    for metric, value in result.constraints.items():
        limits = ", ".join(str(c) for c in parsed if c.metric == metric)
        rows.append((metric, f"{common.fmt(value, 3)} (constraint {limits})"))
    for metric in ("macs_M", "params_M"):
        if metric in metrics and metric not in result.constraints:
            rows.append((metric, common.fmt(metrics[metric], 3)))
    rows.append(("export", export))
    common.print_fields(rows)
