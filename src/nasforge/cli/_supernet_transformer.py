"""``nasforge supernet train --space vit-cifar|vit|llm`` and ``nasforge supernet search DIR``
on the super-transformers of issue 20: the command line of :mod:`nasforge.transformer`
(AutoFormer's super-transformer, with ViTAS's private class tokens and attention maps) and,
through :mod:`nasforge.cli._supernet_lm`, of :mod:`nasforge.lm` (LLaMA-NAS / InstaTune)::

    nasforge supernet train --space vit-cifar --data cifar10/ --out vit-run
    nasforge supernet search vit-run --constraint "params_M<=1" --storage sqlite:///vit.db
    nasforge supernet train --space llm --corpus notes/ --out lm-run
    nasforge supernet search lm-run --constraint "params_M<=0.1" --storage sqlite:///lm.db

Options share the elastic supernets' names where the concept is the same (``--schedule`` is
how sub-networks are drawn per step); new concepts have their own (``--private/--shared``,
``--corpus``, ``--pretrain-steps``, ``--finetune-steps``, ``--seq-len``, ``--objective``,
``--max-windows``). An option of another kind of supernet is refused in one line.

Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching Transformers for Visual
Recognition." ICCV 2021, arXiv:2107.00651; Su, X. et al. "Vision Transformer Architecture
Search" (ViTAS), arXiv:2106.13700; Sarah, A. et al. "LLaMA-NAS: Efficient Neural
Architecture Search for Large Language Models." arXiv:2405.18377.

Private to :mod:`nasforge.cli.supernet` and :mod:`nasforge.cli._supernet_search`, which
take the option types below into their signatures and hand these spaces over here.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasforge import spaces
from nasforge.cli import _common as common
from nasforge.errors import InvalidConfigError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.transformer import ViTTrainSettings

__all__ = [
    "ELASTIC_KIND",
    "LM_KIND",
    "VIT_KIND",
    "lm_spaces",
    "refuse_options",
    "search",
    "supernet_kind",
    "train",
]

#: The kinds of supernet folder: a super-transformer of a vision-transformer space, a
#: super-network of a language-model space, an elastic supernet (anything else).
VIT_KIND, LM_KIND, ELASTIC_KIND = "super-transformer", "super-lm", "elastic"


def vit_spaces() -> tuple[str, ...]:
    """The registered spaces of :class:`ViTSpace` (they train a super-transformer)."""
    from nasforge.spaces.vit import ViTSpace

    return tuple(n for n in spaces.names() if issubclass(spaces.get(n), ViTSpace))


def lm_spaces() -> tuple[str, ...]:
    """The registered spaces of :class:`LLMSpace` (language models)."""
    from nasforge.spaces.llm import LLMSpace

    return tuple(n for n in spaces.names() if issubclass(spaces.get(n), LLMSpace))


_PANEL = "Vision transformers (--space vit-cifar, vit)"
_LM_PANEL = "Language models (--space llm)"


# -- options the two commands take into their signatures ----------------------------------------
def _lm_option(help: str, *names: str, **extra: Any) -> Any:
    return typer.Option(
        *names, help=f"llm: {help}", rich_help_panel=_LM_PANEL, show_default=False, **extra
    )


Private = Annotated[
    bool | None,
    typer.Option(
        "--private/--shared",
        help="vit: ViTAS's private class tokens and attention maps per choice (default), or "
        "everything shared as AutoFormer.",
        rich_help_panel=_PANEL,
        show_default=False,
        metavar="",
    ),
]
Corpus = Annotated[
    list[str] | None,
    _lm_option(
        "text files or folders of them (repeatable or comma-separated; default nasforge's "
        "own source).",
        "--corpus",
        metavar="PATH",
    ),
]
PretrainSteps = Annotated[
    int | None, _lm_option("steps of the largest network's pre-training (default 300).")
]
FinetuneSteps = Annotated[
    int | None, _lm_option("steps of InstaTune's fine-tuning of the sub-networks (default 300).")
]
SeqLen = Annotated[int | None, _lm_option("tokens per window (default the space's context, 64).")]
Objective = Annotated[
    list[str] | None,
    _lm_option(
        "objective of the front (repeatable; default perplexity:min, params_M:min).",
        metavar="METRIC:max|min",
    ),
]
MaxWindows = Annotated[
    int | None,
    _lm_option("held-out windows a sub-network's perplexity is measured on (default 64)."),
]


def supernet_kind(folder: Path) -> str:
    """What ``folder``'s manifest holds: :data:`VIT_KIND` (a super-transformer of
    :func:`nasforge.transformer.train_super_vit`), :data:`LM_KIND` (a super-network of
    :func:`nasforge.lm.prepare_super_lm`) or :data:`ELASTIC_KIND` (anything else, also no or
    an unreadable manifest: the elastic commands say what is wrong with it)."""
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return ELASTIC_KIND
    if not isinstance(manifest, dict):
        return ELASTIC_KIND
    if "finetune" in manifest and "pretrain" in manifest:
        return LM_KIND
    run = manifest.get("run")
    if isinstance(run, dict) and run.get("space") in vit_spaces() and "epochs_done" in manifest:
        return VIT_KIND
    return ELASTIC_KIND


def refuse_options(who: str, given: Mapping[str, Any]) -> None:
    """Refuse the options in ``given`` (flag -> value; ``None`` or an empty list is not
    given) for ``who``, naming them.

    Raises:
        InvalidConfigError: One of them was given.
    """
    flags = [flag for flag, value in given.items() if value not in (None, [], ())]
    if flags:
        verb = "does" if len(flags) == 1 else "do"
        raise InvalidConfigError(f"{', '.join(flags)} {verb} not apply to {who}; leave it out.")


def _kind_of_space(space: str) -> str:
    from nasforge.cli.supernet import SPACES as ELASTIC

    if space in vit_spaces():
        return VIT_KIND
    if space in lm_spaces():
        return LM_KIND
    raise UnknownNameError(
        "supernet space (--space)", space, [*ELASTIC, *vit_spaces(), *lm_spaces()]
    )


# -- train ---------------------------------------------------------------------------------------
def train(
    *,
    out: str,
    space: str,
    schedule: str | None,
    schedule_param: list[str] | None,
    preset: str,
    data: Path | None,
    dataset: str,
    synthetic: list[str] | None,
    cache_dir: Path | None,
    epochs: int | None,
    batch_size: int | None,
    data_fraction: float | None,
    lr: float | None,
    steps_per_epoch: int | None,
    seed: int,
    private: bool | None,
    corpus: list[str] | None,
    pretrain_steps: int | None,
    finetune_steps: int | None,
    seq_len: int | None,
    restart: bool,
    device: str,
    threads: int | None,
    quiet: bool,
    as_json: bool,
    elastic_only: Mapping[str, Any],
) -> None:
    """``nasforge supernet train`` for the spaces handled here (an unknown ``--space`` is
    refused, listing every space of the command)."""
    with common.errors():
        kind = _kind_of_space(space)
        refuse_options(f"--space {space}", elastic_only)
        folder = common.given_path("--out", out, "a folder for the supernet's checkpoints")
        if folder.exists() and not folder.is_dir():
            raise InvalidConfigError(
                f"--out {common.abbreviate(out)} is a file; give a folder (it is created)."
            )
        if (folder / "manifest.json").is_file() and supernet_kind(folder) != kind:
            raise InvalidConfigError(
                f"--out {common.abbreviate(out)} holds another kind of supernet than --space "
                f"{space}; give another folder, or --space of that supernet to resume it."
            )
        params = common.parse_params(
            schedule_param or [], option="--schedule-param", example="distill=true"
        )
    if kind == LM_KIND:
        from nasforge.cli import _supernet_lm

        with common.errors():
            refuse_options(
                "--space llm (it trains in steps on --corpus)",
                {
                    "--data": data,
                    "--dataset": None if dataset == "cifar10" else dataset,
                    "--synthetic": synthetic,
                    "--cache-dir": cache_dir,
                    "--epochs": epochs,
                    "--data-fraction": data_fraction,
                    "--steps-per-epoch": steps_per_epoch,
                    "--private/--shared": private,
                    "--preset": None if preset == "reduced" else preset,
                },
            )
        _supernet_lm.train(
            folder, schedule=schedule, params=params, corpus=corpus, batch_size=batch_size,
            lr=lr, seed=seed, pretrain_steps=pretrain_steps, finetune_steps=finetune_steps,
            seq_len=seq_len, restart=restart, device=device, threads=threads, quiet=quiet,
            as_json=as_json,
        )  # fmt: skip
        return
    with common.errors():
        from nasforge.cli.supernet import DATA_FILE, _data_source, _load, _synthetic
        from nasforge.transformer import train_super_vit

        refuse_options(
            f"--space {space} (a language-model option)",
            {
                "--corpus": corpus,
                "--pretrain-steps": pretrain_steps,
                "--finetune-steps": finetune_steps,
                "--seq-len": seq_len,
            },
        )
        settings = _vit_settings(
            space, preset, schedule, params, private=private, seed=seed, epochs=epochs,
            batch_size=batch_size, data_fraction=data_fraction, lr=lr,
            steps_per_epoch=steps_per_epoch,
        )  # fmt: skip
        source = _data_source(
            dataset, data, cache_dir, synthetic=_synthetic(synthetic),
        )  # fmt: skip
        splits = _load(source)
        done_before = 0 if restart else _epochs_done(folder)
        bar = None
        callbacks: list[Any] = []
        if common.show_progress(quiet):
            bar = common.progress_bar("super-transformer")
            task = bar.add_task("super-transformer", total=settings.epochs, completed=done_before)
            callbacks.append(lambda entry: bar.advance(task))
            bar.start()
        from nasforge.cli._logs import info_on_stderr

        try:
            with info_on_stderr(not quiet and bar is None, "nasforge.transformer"):
                trained = train_super_vit(
                    space, folder, settings, data=splits, resume=not restart, device=device,
                    threads=threads, callbacks=callbacks,
                )  # fmt: skip
        except KeyboardInterrupt:
            common.interrupted(
                f"interrupted: {_epochs_done(folder)} of {settings.epochs} epochs saved in "
                f"{folder}; run the same command to resume"
            )
        finally:
            if bar is not None:
                bar.stop()
        path = folder / DATA_FILE
        if not path.exists() or json.loads(path.read_text()) != source:
            path.write_text(json.dumps(source, indent=2) + "\n")
        if done_before >= settings.epochs:
            common.note(f"{folder} already holds this run, complete; nothing to train", quiet)
        suggestion = _next_command(folder, trained.space, trained.metadata)
    _print_vit(folder, trained, done_before, suggestion, as_json)


def _vit_settings(
    space: str,
    preset: str,
    schedule: str | None,
    params: Mapping[str, Any],
    **given: Any,
) -> ViTTrainSettings:
    """The settings of the space's ``preset`` (``space.presets()``: batch size, epochs, data
    fraction, dropout), the schedule (``--schedule`` is the sampling; ``--schedule-param``
    ``sandwich_random`` and ``distill`` for ``sandwich``) and the options given."""
    from dataclasses import fields

    from nasforge import spaces
    from nasforge.transformer import SAMPLINGS, ViTTrainSettings

    presets = spaces.create(space).presets()
    if preset not in presets:
        raise UnknownNameError(f"preset of space {space!r} (--preset)", preset, presets)
    names = {f.name for f in fields(ViTTrainSettings)}
    values = {k: v for k, v in presets[preset].items() if k in names}
    sampling = schedule if schedule is not None else "uniform"
    if sampling not in SAMPLINGS:
        raise UnknownNameError(
            f"sampling of the {space} super-transformer (--schedule)", sampling, SAMPLINGS
        )
    valid = ("sandwich_random", "distill") if sampling == "sandwich" else ()
    for key in params:
        if key not in valid:
            raise UnknownNameError(
                f"parameter of --schedule {sampling} (--schedule-param)", key, valid
            )
    values.update(params)
    values.update({k: v for k, v in given.items() if v is not None})
    return ViTTrainSettings(sampling=sampling, **values)


def _epochs_done(folder: Path) -> int:
    try:
        return int(json.loads((folder / "manifest.json").read_text()).get("epochs_done", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def _halfway(low: float, high: float) -> str:
    return f"{(low + high) / 2:.3g}"


def _next_command(folder: Path, space: Any, metadata: Mapping[str, Any]) -> str:
    """The ``supernet search`` to run next: a parameter bound halfway between the smallest
    and the largest sub-network (AutoFormer searches under a parameter budget)."""
    from nasforge.transformer.search import extremes

    run = metadata["run"]
    classes = run["settings"].get("num_classes") or run["data"]["num_classes"]

    def params(arch: Any) -> float:
        return float(space.costs(arch, num_classes=classes)["params_M"])

    low = min(params(a) for a in extremes(space, True))
    high = max(params(a) for a in extremes(space, False))
    bound = f"params_M<={_halfway(low, high)}"
    return (
        f"nasforge supernet search {shlex.quote(str(folder))} --constraint "
        f"{shlex.quote(bound)} --storage sqlite:///subnets.db"
    )


def _print_vit(
    folder: Path, trained: Any, done_before: int, suggestion: str, as_json: bool
) -> None:
    settings = trained.settings
    history = trained.metadata.get("history", [])
    schedule_params = (
        {"sandwich_random": settings.sandwich_random, "distill": settings.distill}
        if settings.sampling == "sandwich"
        else {}
    )
    if as_json:
        common.print_json(
            {
                "out": str(folder),
                "space": trained.space.name,
                "schedule": settings.sampling,
                "schedule_params": schedule_params,
                "private": settings.private,
                "settings": settings.to_dict(),
                "checkpoint": str(folder / "checkpoint.pt"),
                "resumed_after_epochs": done_before,
                "history": history,
                "next": suggestion,
            }
        )
        return
    sampling = settings.sampling
    if schedule_params:
        sampling += " (" + ", ".join(f"{k}={v}" for k, v in schedule_params.items()) + ")"
    tokens = "private (ViTAS)" if settings.private else "shared (AutoFormer)"
    keys = ("epochs", "batch_size", "data_fraction", "lr", "steps_per_epoch", "seed")
    values = settings.to_dict()
    rows = [
        ("supernet", str(folder)),
        ("space", trained.space.name),
        ("schedule", sampling),
        ("tokens", tokens),
        ("settings", ", ".join(f"{k}={values[k]}" for k in keys if values[k] is not None)),
    ]
    if done_before:
        rows.append(("resumed", f"after {done_before} of {settings.epochs} epochs"))
    rows.append(("checkpoint", str(folder / "checkpoint.pt")))
    if history:
        rows.append(("final loss", common.fmt(history[-1].get("loss"), 4)))
    rows.append(("next", suggestion))
    common.print_fields(rows)


# -- search --------------------------------------------------------------------------------------
def search(
    folder: Path,
    kind: str,
    *,
    storage: str,
    constraint: list[str] | None,
    study_name: str | None,
    strategy: str | None,
    param: list[str] | None,
    population: int | None,
    generations: int | None,
    trials: int | None,
    table: list[str] | None,
    measure_here: bool,
    valid_images: int | None,
    data: Path | None,
    dataset: str | None,
    seed: int,
    objective: list[str] | None,
    seq_len: int | None,
    max_windows: int | None,
    quiet: bool,
    as_json: bool,
    elastic_only: Mapping[str, Any],
) -> None:
    """``nasforge supernet search DIR`` on a super-transformer (``kind``
    :data:`VIT_KIND`) or a language-model super-network (:data:`LM_KIND`)."""
    with common.errors():
        bounds = [item.strip() for item in constraint or []]
        params = common.parse_params(param or [])
        common.check_at_least_one("--trials", trials)
        what = "a super-transformer" if kind == VIT_KIND else "an llm super-network"
        refuse_options(f"{what} (an elastic supernet's option)", elastic_only)
    if kind == LM_KIND:
        from nasforge.cli import _supernet_lm

        with common.errors():
            refuse_options(
                "an llm super-network (give the strategy's parameters with -p KEY=VALUE)",
                {"--population": population, "--generations": generations},
            )
            refuse_options(
                "an llm super-network (it measures perplexity on its corpus)",
                {"--table": table, "--measure": measure_here or None, "--data": data,
                 "--dataset": dataset, "--valid-images": valid_images},
            )  # fmt: skip
        _supernet_lm.search(
            folder, storage=storage, bounds=bounds, study_name=study_name, strategy=strategy,
            params=params, trials=trials, seed=seed, objective=objective, seq_len=seq_len,
            max_windows=max_windows, quiet=quiet, as_json=as_json,
        )  # fmt: skip
        return
    with common.errors():
        from nasforge.cli._supernet_search import (
            _check_latency_metrics,
            _evaluator_params,
            _measure,
            _study_name,
        )
        from nasforge.evaluators.super_transformer import SuperTransformerEvaluator
        from nasforge.transformer import STRATEGY, search_subvits

        refuse_options(
            "a super-transformer (a language-model option)",
            {"--objective": objective, "--seq-len": seq_len, "--max-windows": max_windows},
        )
        for flag, count in (("--population", population), ("--generations", generations)):
            common.check_at_least_one(flag, count)
        chosen = strategy if strategy is not None else STRATEGY
        given = _vit_strategy(chosen, params, population, generations)
        name = study_name if study_name is not None else _study_name(folder, chosen, bounds, seed)
        source = _evaluator_params(folder, data, dataset, None, valid_images)
        plan = None if quiet else _vit_plan(folder, chosen, given, trials)

        evaluator = common.announcing(SuperTransformerEvaluator, plan)(
            folder, **source, tables=list(table or []), measure=_measure(measure_here, bounds)
        )
        _check_latency_metrics(evaluator, bounds)
        result = search_subvits(
            evaluator, constraints=bounds, storage=storage, study_name=name, strategy=chosen,
            strategy_params=params if chosen != STRATEGY else None, n_trials=trials,
            seed=seed, **given,
        )  # fmt: skip
        result.study.storage.close()
    _print_vit_search(result, bounds, storage, as_json)


def _vit_strategy(
    strategy: str, params: Mapping[str, Any], population: int | None, generations: int | None
) -> dict[str, Any]:
    """The keywords of AutoFormer's evolution: ``--population``, ``--generations`` and its
    other settings as ``-p KEY=VALUE`` (``parents``, ``mutations``...); another strategy
    takes ``-p`` as its own parameters and neither of the two options."""
    from nasforge import strategies
    from nasforge.transformer import STRATEGY
    from nasforge.transformer.evolution import DEFAULTS

    if strategy != STRATEGY:
        if strategy not in strategies.names():
            raise UnknownNameError(
                "strategy (--strategy)", strategy, [STRATEGY, *strategies.names()]
            )
        refuse_options(
            f"the {strategy!r} strategy (give its parameters with -p KEY=VALUE)",
            {"--population": population, "--generations": generations},
        )
        return {}
    given = {"population": population, "generations": generations}
    for key in params:
        if key not in DEFAULTS:
            raise UnknownNameError(f"parameter of {STRATEGY} (-p)", key, DEFAULTS)
        if key in given:
            raise InvalidConfigError(f"Give the {key} with --{key}, not -p {key}=...")
    return {**{k: v for k, v in given.items() if v is not None}, **params}


def _vit_plan(folder: Path, strategy: str, given: Mapping[str, Any], trials: int | None) -> str:
    from nasforge.transformer.evolution import DEFAULTS

    text = f"searching the super-transformer in {folder} with {strategy}"
    if strategy == "autoformer-evolution":
        population = given.get("population", DEFAULTS["population"])
        generations = given.get("generations", DEFAULTS["generations"])
        text += f": a population of {population} over {generations} generation"
        text += "s" * (generations != 1)
        if trials is not None:
            text += f", at most {trials} sub-networks measured"
    else:
        text += f": {trials if trials is not None else 100} sub-networks measured"
    return text


def _print_vit_search(result: Any, bounds: Sequence[str], storage: str, as_json: bool) -> None:
    from nasforge.constraints import Constraint

    study = result.study
    export = (
        f"nasforge export {shlex.quote(study.name)} --storage {shlex.quote(storage)} "
        "--out subnet.pt"
    )
    if as_json:
        common.print_json(
            {
                "study": study.name,
                "trial": result.chosen.number,
                "arch": result.arch.text,
                "metrics": result.metrics,
                "constraints": result.constraints,
                "measured": len(study.trials),
                "history": result.history,
                "export": export,
            }
        )
        return
    rows = [
        ("chosen", result.arch.text),
        ("trial", f"{result.chosen.number} of study {study.name} ({len(study.trials)} measured)"),
        ("valid_acc", common.fmt(result.metrics.get("valid_acc"))),
    ]
    parsed = [Constraint.parse(text) for text in bounds]
    for metric, value in result.constraints.items():
        limits = ", ".join(str(c) for c in parsed if c.metric == metric)
        rows.append((metric, f"{common.fmt(value, 3)} (constraint {limits})"))
    for metric in ("params_M", "macs_M"):
        if metric in result.metrics and metric not in result.constraints:
            rows.append((metric, common.fmt(result.metrics[metric], 3)))
    rows.append(("export", export))
    common.print_fields(rows)
