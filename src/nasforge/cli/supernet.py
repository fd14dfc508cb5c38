"""``nasforge supernet``: train an elastic supernet once (``train``), then search its
sub-networks under device constraints (``search``) and export the chosen one with
``nasforge export``::

    nasforge supernet train --space mobilenet --schedule ofa --data cifar10/ --out ofa-run
    nasforge supernet search ofa-run --constraint "macs_M<=20" --storage sqlite:///subnets.db
    nasforge export 'ofa-run-ofa-evolution-macs_M<=20-seed0' --storage sqlite:///subnets.db \
        --out subnet.pt

``train`` runs :func:`nasforge.elastic.train_supernet` (Once-for-All's progressive shrinking,
BigNAS, few-shot NAS, DNA or the uniform SPOS baseline) and resumes by itself when the out
folder holds a run of the same settings. It also writes ``data.json`` there (how the data was
given: the dataset, its path, and for ``--dataset synthetic`` every setting of the generated
images, ``--synthetic KEY=VALUE`` or the defaults), so that ``search`` measures sub-networks on
the held-out half of the same images.
``search`` runs :func:`nasforge.elastic.search.search_subnets` (Once-for-All's predictor-guided
evolution, or any registered strategy): every measured sub-network is a trial of a study.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasforge.cli import _common as common
from nasforge.cli import _supernet_transformer as transformer
from nasforge.cli._app import _Command, _Group, app
from nasforge.cli._common import Json, Quiet, cache_dir_option, device_option
from nasforge.errors import InvalidConfigError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.elastic.base import Schedule, TrainedSupernet, TrainSettings
    from nasforge.train.data import DataSplits

__all__ = ["DATA_FILE", "SPACES", "elastic_space_name", "supernet_app"]

#: The file in a supernet's folder that records how ``train`` was given its data.
DATA_FILE = "data.json"
#: What ``--space`` takes: a family with an elastic space, or an elastic space itself.
SPACES = ("mobilenet", "ofa", "ofa-cifar")
#: The presets ``train`` takes (a family space maps each to its elastic space).
PRESETS = ("paper", "reduced")
DATASETS = ("cifar10", "folder", "synthetic")
MANIFEST = "manifest.json"
_SETTINGS = "Training settings (default: the preset's)"

supernet_app = typer.Typer(
    name="supernet",
    cls=_Group,
    help="Train an elastic supernet once, then search its sub-networks for a device.",
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(supernet_app)


@supernet_app.callback()
def _group(ctx: typer.Context) -> None:
    """Train an elastic supernet once, then search its sub-networks for a device."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def _option(help: str, panel: str | None = None, **extra: Any) -> Any:
    return typer.Option(help=help, rich_help_panel=panel, show_default=False, **extra)


# -- train ---------------------------------------------------------------------------------------
@supernet_app.command("train", cls=_Command)
def train(
    out: Annotated[
        str,
        _option("Folder of the checkpoints and manifest (created; a rerun resumes it)."),
    ],
    space: Annotated[
        str,
        typer.Option(
            help="mobilenet: its elastic sub-network space, ofa-cifar (small images) with "
            "--preset reduced, ofa (ImageNet, 128-224 px) with --preset paper; or ofa, "
            "ofa-cifar themselves; vit-cifar, vit: a super-transformer; llm: a language model."
        ),
    ] = "mobilenet",
    schedule: Annotated[
        str | None,
        typer.Option(
            help="ofa (progressive shrinking, the default), bignas (sandwich rule), few-shot (K "
            "sub-supernets), dna (block-wise distillation) or uniform (SPOS, the baseline); "
            "vit-cifar, vit: uniform (default) or sandwich; llm: sandwich (default) or uniform.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        _option("CIFAR-10 python release folder, image-folder tree, or a .tar.gz of either."),
    ] = None,
    dataset: Annotated[
        str,
        typer.Option(help="How to read --data: cifar10, folder (any classes) or synthetic."),
    ] = "cifar10",
    synthetic: Annotated[
        list[str] | None,
        typer.Option(
            "--synthetic",
            metavar="KEY=VALUE",
            help="--dataset synthetic: a setting of the generated images (repeatable): "
            "num_classes, n_train, n_test, size, noise, seed.",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            help="reduced (width 0.25 on a tenth of the images: a CPU setting) or paper (the "
            "full supernet, for a GPU)."
        ),
    ] = "reduced",
    epochs: Annotated[int | None, _option("Epochs in all, split into phases.", _SETTINGS)] = None,
    batch_size: Annotated[int | None, _option("Images per step.", _SETTINGS)] = None,
    data_fraction: Annotated[
        float | None, _option("Share of the training images used (0-1].", _SETTINGS)
    ] = None,
    width_mult: Annotated[float | None, _option("Channel multiplier.", _SETTINGS)] = None,
    lr: Annotated[float | None, _option("Initial learning rate.", _SETTINGS)] = None,
    resolutions: Annotated[
        str | None,
        _option("Input sides trained, e.g. 16,32 (default: all of the space's).", _SETTINGS),
    ] = None,
    steps_per_epoch: Annotated[
        int | None, _option("At most this many steps per epoch (quick runs).", _SETTINGS)
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the weights, data split, batches and sub-networks.")
    ] = 0,
    schedule_param: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule-param",
            metavar="KEY=VALUE",
            help="Parameter of the schedule (repeatable), e.g. teacher_share=0.5 for dna.",
            show_default=False,
        ),
    ] = None,
    teacher: Annotated[
        Path | None,
        _option("dna: the teacher, a file written by nasforge export --format pytorch."),
    ] = None,
    restart: Annotated[
        bool, common.flag("--restart", help="Start over instead of resuming --out's run.")
    ] = False,
    device: Annotated[str, device_option()] = "auto",
    threads: Annotated[int | None, _option("CPU threads (default all).")] = None,
    cache_dir: Annotated[
        Path | None, cache_dir_option("Where to extract archives (default: the user cache).")
    ] = None,
    private: transformer.Private = None,
    corpus: transformer.Corpus = None,
    pretrain_steps: transformer.PretrainSteps = None,
    finetune_steps: transformer.FinetuneSteps = None,
    seq_len: transformer.SeqLen = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Train an elastic supernet with a schedule; resumes when --out holds the same run."""
    if space not in SPACES:  # the super-transformers (and an unknown space's error)
        elastic = {"--width-mult": width_mult, "--resolutions": resolutions, "--teacher": teacher}
        transformer.train(
            out=out, space=space, schedule=schedule, schedule_param=schedule_param, preset=preset,
            data=data, dataset=dataset, synthetic=synthetic, cache_dir=cache_dir, epochs=epochs,
            batch_size=batch_size, data_fraction=data_fraction, lr=lr,
            steps_per_epoch=steps_per_epoch, seed=seed, private=private, corpus=corpus,
            pretrain_steps=pretrain_steps, finetune_steps=finetune_steps, seq_len=seq_len,
            restart=restart, device=device, threads=threads, quiet=quiet, as_json=as_json,
            elastic_only=elastic,
        )  # fmt: skip
        return
    bar = None
    with common.errors():
        from nasforge.elastic import create_schedule, train_supernet

        schedule = schedule or "ofa"
        transformer.refuse_options(
            f"--space {space} (an elastic supernet)",
            {"--private/--shared": private, "--corpus": corpus, "--seq-len": seq_len,
             "--pretrain-steps": pretrain_steps, "--finetune-steps": finetune_steps},
        )  # fmt: skip
        name = elastic_space_name(space, preset)
        options = common.parse_params(
            schedule_param or [], option="--schedule-param", example="teacher_share=0.5"
        )
        options.update(_teacher(schedule, teacher, options))
        built = create_schedule(schedule, **options)
        settings = _settings(
            name,
            preset,
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            data_fraction=data_fraction,
            width_mult=width_mult,
            lr=lr,
            resolutions=_sides(resolutions),
            steps_per_epoch=steps_per_epoch,
        )
        phases = built.phases(settings.epochs)
        folder = common.given_path("--out", out, "a folder for the supernet's checkpoints")
        if folder.exists() and not folder.is_dir():
            raise InvalidConfigError(
                f"--out {common.abbreviate(out)} is a file; give a folder (it is created)."
            )
        source = _data_source(dataset, data, cache_dir, synthetic=_synthetic(synthetic))
        splits = _load(source)
        done_before = 0 if restart else _epochs_done(folder)
        total = sum(p.epochs for p in phases)

        def record_source(entry: Mapping[str, Any]) -> None:
            path = folder / DATA_FILE
            if not path.exists() or json.loads(path.read_text()) != source:
                path.write_text(json.dumps(source, indent=2) + "\n")

        callbacks: list[Any] = [record_source]
        if common.show_progress(quiet):
            bar = common.progress_bar("supernet")
            task = bar.add_task("supernet", total=total, completed=done_before)
            callbacks.append(lambda entry: bar.advance(task))
            bar.start()
        from nasforge.cli._logs import info_on_stderr

        try:
            with info_on_stderr(not quiet and bar is None, "nasforge.elastic"):
                trained = train_supernet(
                    name,
                    built,
                    splits,
                    folder,
                    settings,
                    resume=not restart,
                    device=device,
                    threads=threads,
                    callbacks=callbacks,
                )
        except KeyboardInterrupt:
            common.interrupted(
                f"interrupted: {_epochs_done(folder)} of {total} epochs saved in {folder}; run "
                "the same command to resume"
            )
        finally:
            if bar is not None:
                bar.stop()
        if done_before >= total:
            common.note(f"{folder} already holds this run, complete; nothing to train", quiet)
        record_source({})
        suggestion = _next_command(folder, trained)
    _print_trained(folder, space, preset, trained, done_before, suggestion, as_json)


def elastic_space_name(space: str, preset: str) -> str:
    """The elastic space ``--space`` means under ``--preset``: the ``mobilenet`` family's is
    ``ofa-cifar`` (reduced) or ``ofa`` (paper); ``ofa`` and ``ofa-cifar`` are themselves.

    Raises:
        UnknownNameError: An unknown preset (``paper``, ``reduced``) or a space without an
            elastic supernet (the valid ones are listed).
    """
    if preset not in PRESETS:
        raise UnknownNameError("preset", preset, PRESETS)
    if space not in SPACES:
        raise UnknownNameError("elastic space (--space)", space, SPACES)
    from nasforge import spaces

    family: Mapping[str, str] = getattr(spaces.get(space), "elastic_spaces", {})
    return family.get(preset, space)


def _teacher(schedule: str, teacher: Path | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """``--teacher`` as the dna schedule's ``teacher`` parameter (an absolute path, so that a
    rerun from another folder resumes the same run)."""
    if teacher is None:
        return {}
    if schedule != "dna":
        raise InvalidConfigError(
            f"--teacher applies to --schedule dna (block-wise distillation); the {schedule!r} "
            "schedule distils from its own largest network or not at all."
        )
    if "teacher" in params:
        raise InvalidConfigError(
            "Give the teacher once: --teacher PATH or --schedule-param teacher=PATH, not both."
        )
    if not teacher.is_file() and not (teacher / "model.pt").is_file():
        raise InvalidConfigError(
            f"--teacher {common.abbreviate(str(teacher))}: no such model file; give a file "
            "written by nasforge export --format pytorch."
        )
    return {"teacher": str(teacher.expanduser().resolve())}


def _sides(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        sides = tuple(int(item) for item in common.split(text))
    except ValueError:
        sides = ()
    if not sides:
        raise InvalidConfigError(
            f"--resolutions {common.abbreviate(text)}: give input sides in pixels separated "
            "by commas, e.g. --resolutions 16,24,32."
        )
    return sides


def _settings(space: str, preset: str, **given: Any) -> TrainSettings:
    """The preset's training settings with the options given on the command line."""
    from nasforge.elastic import TrainSettings

    changes = {key: value for key, value in given.items() if value is not None}
    return TrainSettings.preset(space, preset, **changes)


def _synthetic(items: list[str] | None) -> dict[str, Any] | None:
    """``--synthetic KEY=VALUE`` as settings of :class:`~nasforge.train.data.SyntheticImages`
    (``None`` when none are given); an unknown key is refused, listing the valid ones."""
    from nasforge.train.data import SyntheticImages

    if not items:
        return None
    params = common.parse_params(items, option="--synthetic", example="n_train=500")
    valid = [f.name for f in dataclasses.fields(SyntheticImages)]
    for key in params:
        if key not in valid:
            raise UnknownNameError("setting of --synthetic", key, valid)
    return params


def _data_source(
    dataset: str,
    data: Path | None,
    cache_dir: Path | None,
    who: str = "nasforge supernet train trains",
    *,
    synthetic: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """How the data is read, as the ``supernet`` evaluator takes it (``dataset``, ``data``,
    ``synthetic``, ``cache_dir``): recorded in the supernet's folder for ``supernet search``.
    For ``synthetic``, every setting of the generated images (the defaults filled in), so
    that a search makes the same images."""
    from nasforge.runs.oneshot import require_data
    from nasforge.train.data import SyntheticImages

    if dataset not in DATASETS:
        raise UnknownNameError("dataset (--dataset)", dataset, DATASETS)
    source: dict[str, Any] = {"dataset": dataset}
    if dataset == "synthetic":
        if data is not None:
            raise InvalidConfigError(
                "--data does not apply to --dataset synthetic (generated images); leave one out."
            )
        source["synthetic"] = dataclasses.asdict(SyntheticImages(**(synthetic or {})))
    elif synthetic:
        raise InvalidConfigError(
            f"--synthetic applies to --dataset synthetic (generated images), not {dataset}; "
            "leave it out."
        )
    else:
        require_data(data, who)
        assert data is not None
        source["data"] = str(data.expanduser().resolve())
    if cache_dir is not None:
        source["cache_dir"] = str(cache_dir.expanduser().resolve())
    return source


def _load(source: Mapping[str, Any]) -> DataSplits:
    from nasforge.train.data import SyntheticImages, load_cifar10, load_image_folder

    if source["dataset"] == "synthetic":
        return SyntheticImages(**source.get("synthetic", {})).load()
    loader = load_cifar10 if source["dataset"] == "cifar10" else load_image_folder
    return loader(source["data"], cache_dir=source.get("cache_dir"))


def _epochs_done(folder: Path) -> int:
    """Epochs recorded in ``folder``'s manifest (0 without one)."""
    path = folder / MANIFEST
    if not path.is_file():
        return 0
    try:
        return len(json.loads(path.read_text()).get("history", []))
    except (ValueError, AttributeError):
        return 0


def _next_command(folder: Path, trained: TrainedSupernet) -> str:
    """The ``supernet search`` command to run next, with a MACs bound halfway between the
    smallest and the largest sub-network at the trained resolutions (those it searches)."""
    from nasforge.elastic._train import trained_resolutions
    from nasforge.evaluators.supernet import SubnetCosts

    settings = trained.settings
    space = trained.space
    costs = SubnetCosts(
        space,
        num_classes=settings.num_classes or trained.metadata["run"]["data"]["num_classes"],
        width_mult=settings.width_mult,
        dropout=settings.dropout,
    )
    sides = trained_resolutions(space, settings)

    def at(arch: Any, side: int) -> Any:
        choices = list(arch.choices)
        choices[costs.res_col] = costs.resolutions.index(side)
        return space.from_choices(choices)

    low = costs.of(at(space.smallest(), min(sides)))["macs_M"]
    high = costs.of(at(space.largest(), max(sides)))["macs_M"]
    bound = f"{(low + high) / 2:.3g}"
    return (
        f"nasforge supernet search {shlex.quote(str(folder))} --constraint "
        f"{shlex.quote(f'macs_M<={bound}')} --storage sqlite:///subnets.db"
    )


def _print_trained(
    folder: Path,
    space: str,
    preset: str,
    trained: TrainedSupernet,
    done_before: int,
    suggestion: str,
    as_json: bool,
) -> None:
    phases = trained.phases
    files = [folder / f"phase-{k}-{p.name}.pt" for k, p in enumerate(phases, start=1)]
    history = trained.metadata.get("history", [])
    if as_json:
        common.print_json(
            {
                "out": str(folder),
                "space": trained.space.name,
                "schedule": trained.schedule.name,
                "schedule_params": trained.schedule.params(),
                "settings": trained.settings.to_dict(),
                "phases": [
                    {"name": p.name, "epochs": p.epochs, "checkpoint": str(f)}
                    for p, f in zip(phases, files, strict=True)
                ],
                "resumed_after_epochs": done_before,
                "history": history,
                "next": suggestion,
            }
        )
        return
    shown = trained.space.name
    if space != shown:
        shown += f" (the elastic space of {space} for --preset {preset})"
    rows = [
        ("supernet", str(folder)),
        ("space", shown),
        ("schedule", _schedule_text(trained.schedule)),
        ("settings", _settings_text(trained.settings)),
    ]
    if done_before:
        rows.append(("resumed", f"after {done_before} of {len(history)} epochs"))
    for k, (phase, path) in enumerate(zip(phases, files, strict=True), start=1):
        epochs = f"{phase.epochs} epoch{'s' * (phase.epochs != 1)}"
        rows.append((f"phase {k}", f"{phase.name}, {epochs}: {path}"))
    if history:
        rows.append(("final loss", common.fmt(history[-1].get("loss"), 4)))
    rows.append(("next", suggestion))
    common.print_fields(rows)


def _schedule_text(schedule: Schedule) -> str:
    params = ", ".join(f"{k}={v}" for k, v in schedule.params().items() if v is not None)
    return f"{schedule.name} ({params})" if params else schedule.name


def _settings_text(settings: TrainSettings) -> str:
    values = settings.to_dict()
    keys = ("epochs", "width_mult", "batch_size", "data_fraction", "lr", "resolutions", "seed")
    return ", ".join(f"{k}={values[k]}" for k in keys if values.get(k) is not None)


# the search command lives in its own module (this one would pass 600 lines); importing it
# registers ``nasforge supernet search``
from nasforge.cli import _supernet_search  # noqa: E402, F401
