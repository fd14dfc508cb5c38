"""``nasforge supernet train --space llm`` and ``nasforge supernet search DIR`` on a
language-model super-network: the command line of :func:`nasforge.lm.prepare_super_lm`
(pre-training of the largest network, then InstaTune's one-shot fine-tuning of its
sub-networks) and :func:`nasforge.lm.search_sublms` (LLaMA-NAS's multi-objective search,
NSGA-II by default, for the front of perplexity against size).

Sridhar, S. N. et al. "InstaTune: Instantaneous Neural Architecture Search During
Fine-Tuning." ICCV Workshops 2023, arXiv:2308.15609; Sarah, A. et al. "LLaMA-NAS: Efficient
Neural Architecture Search for Large Language Models." arXiv:2405.18377.

``--schedule`` is how sub-networks are drawn per fine-tuning step, as for the other
supernets: ``sandwich`` (the default: the smallest sub-network and random ones besides the
largest, ``prepare_super_lm(sandwich=True)``) or ``uniform`` (random ones only,
``sandwich=False``); ``--schedule-param sampled=N`` and ``distill=false`` are
``prepare_super_lm``'s ``sampled`` and ``distill``. ``--batch-size``, ``--seq-len``, ``--lr``
and ``--seed`` set both phases' :class:`~nasforge.lm.TrainSettings` (without ``--lr``,
pre-training at 3e-3 and fine-tuning at 1e-3, ``prepare_super_lm``'s defaults).

Private to :mod:`nasforge.cli._supernet_transformer`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasforge.cli import _common as common
from nasforge.errors import InvalidConfigError, UnknownNameError

__all__ = ["SCHEDULES", "search", "train"]

#: What ``--schedule`` takes for ``--space llm``, the default first.
SCHEDULES = ("sandwich", "uniform")
_SCHEDULE_PARAMS = ("sampled", "distill")
#: The files of a super-network's folder (``--restart`` removes them).
_FILES = ("manifest.json", "pretrain.pt", "finetune.pt")


def _corpus_paths(corpus: Sequence[str] | None) -> list[str] | None:
    """``--corpus`` values, each possibly comma-separated (``None``: the default corpus)."""
    if not corpus:
        return None
    paths = [item for value in corpus for item in common.split(value)]
    if not paths:
        raise InvalidConfigError(
            "--corpus names no file; give text files or folders, e.g. --corpus notes/,a.txt, "
            "or leave it out for nasforge's own source."
        )
    return [str(Path(p).expanduser().resolve()) for p in paths]


def train(
    folder: Path,
    *,
    schedule: str | None,
    params: Mapping[str, Any],
    corpus: Sequence[str] | None,
    batch_size: int | None,
    lr: float | None,
    seed: int,
    pretrain_steps: int | None,
    finetune_steps: int | None,
    seq_len: int | None,
    restart: bool,
    device: str,
    threads: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Prepare the ``llm`` super-network in ``folder`` (resumed when it holds the same
    run) and print what it is."""
    with common.errors():
        import math

        from nasforge.lm import TrainSettings, load_corpus, perplexity, prepare_super_lm
        from nasforge.spaces.llm import LLMSpace
        from nasforge.train.trainer import num_threads

        if device not in ("auto", "cpu"):
            raise InvalidConfigError(
                f"--device {device}: the llm super-network trains on the CPU; leave --device "
                "out or give cpu."
            )
        name = schedule if schedule is not None else SCHEDULES[0]
        if name not in SCHEDULES:
            raise UnknownNameError("llm schedule (--schedule)", name, SCHEDULES)
        for key in params:
            if key not in _SCHEDULE_PARAMS:
                raise UnknownNameError(
                    f"parameter of --schedule {name} (--schedule-param)", key, _SCHEDULE_PARAMS
                )
        for flag, count in (
            ("--pretrain-steps", pretrain_steps),
            ("--finetune-steps", finetune_steps),
            ("--batch-size", batch_size),
            ("--seq-len", seq_len),
        ):
            common.check_at_least_one(flag, count)
        text = load_corpus(_corpus_paths(corpus))
        shared: dict[str, Any] = {"seed": seed}
        for key, value in (("batch_size", batch_size), ("seq_len", seq_len), ("lr", lr)):
            if value is not None:
                shared[key] = value
        pretrain = TrainSettings(**{**_given_steps(pretrain_steps), **shared})
        finetune = TrainSettings(**{"lr": 1e-3, **_given_steps(finetune_steps), **shared})
        if restart:
            for file in _FILES:
                (folder / file).unlink(missing_ok=True)
        space = LLMSpace()
        seq = space.CONTEXT if seq_len is None else seq_len
        if seq > space.CONTEXT:
            raise InvalidConfigError(
                f"--seq-len {seq} does not fit the position embedding of the llm space "
                f"({space.CONTEXT} positions); give 1..{space.CONTEXT}."
            )
        text.check_length(seq, "train")
        text.check_length(seq, "valid")
        resumed = (folder / "pretrain.pt").is_file()
        if not (folder / "manifest.json").exists():  # a resumed run is checked first
            common.note(
                f"training the llm super-network in {folder}: pre-training the largest network "
                f"for {pretrain.steps} steps, then fine-tuning its sub-networks ({name}) for "
                f"{finetune.steps} steps",
                quiet,
            )
        with num_threads(threads):
            try:
                supernet = prepare_super_lm(
                    folder, space=space, corpus=text, pretrain=pretrain, finetune=finetune,
                    sampled=params.get("sampled", 2), sandwich=name == "sandwich",
                    distill=params.get("distill", True), seed=seed,
                )  # fmt: skip
            except KeyboardInterrupt:
                common.interrupted(
                    f"interrupted: the last checkpoint is in {folder}; run the same command "
                    "to resume"
                )
            measured: dict[str, dict[str, Any]] = {}
            for label, arch in (("largest", space.largest()), ("smallest", space.smallest())):
                supernet.set_active(arch)
                value = perplexity(supernet, text, "valid", seq_len=seq_len, max_windows=64)
                measured[label] = {
                    "arch": arch.text,
                    "perplexity": value if math.isfinite(value) else None,
                    **space.costs(arch, seq=seq_len),
                }
        low = float(measured["smallest"]["params_M"])
        high = float(measured["largest"]["params_M"])
        bound = f"params_M<={(low + high) / 2:.3g}"
        suggestion = (
            f"nasforge supernet search {shlex.quote(str(folder))} --constraint "
            f"{shlex.quote(bound)} --storage sqlite:///subnets.db"
        )
    report = {
        "out": str(folder),
        "space": space.name,
        "space_settings": space.settings,
        "corpus": {
            "files": len(text.files),
            "train_bytes": len(text.train),
            "valid_bytes": len(text.valid),
            "paths": text.settings["paths"],
        },
        "schedule": name,
        "schedule_params": {
            "sampled": params.get("sampled", 2),
            "distill": params.get("distill", True),
        },
        "pretrain": _settings_dict(pretrain),
        "finetune": _settings_dict(finetune),
        "resumed": resumed,
        "measured": measured,
        "next": suggestion,
    }
    _print_trained(report, as_json)


def _given_steps(steps: int | None) -> dict[str, int]:
    return {} if steps is None else {"steps": steps}


def _settings_dict(settings: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(settings)


def _print_trained(report: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        common.print_json(report)
        return
    corpus = report["corpus"]
    source = "nasforge's own source" if corpus["paths"] is None else ", ".join(corpus["paths"])
    params = ", ".join(f"{k}={v}" for k, v in report["schedule_params"].items())
    rows = [
        ("supernet", report["out"]),
        ("space", f"{report['space']} ({report['measured']['largest']['arch']} at its largest)"),
        ("corpus", f"{source}: {corpus['train_bytes']} training, {corpus['valid_bytes']} held out"),
        ("schedule", f"{report['schedule']} ({params})"),
        ("pretrain", _phase_text(report["pretrain"])),
        ("finetune", _phase_text(report["finetune"])),
    ]
    for label in ("largest", "smallest"):
        entry = report["measured"][label]
        rows.append(
            (
                label,
                f"perplexity {common.fmt(entry['perplexity'])}, params_M "
                f"{common.fmt(entry['params_M'], 3)}",
            )
        )
    rows.append(("next", report["next"]))
    common.print_fields(rows)


def _phase_text(values: Mapping[str, Any]) -> str:
    keys = ("steps", "batch_size", "seq_len", "lr", "seed")
    return ", ".join(f"{k}={values[k]}" for k in keys if values.get(k) is not None)


# -- search --------------------------------------------------------------------------------------
def search(
    folder: Path,
    *,
    storage: str,
    bounds: Sequence[str],
    study_name: str | None,
    strategy: str | None,
    params: Mapping[str, Any],
    trials: int | None,
    seed: int,
    objective: Sequence[str] | None,
    seq_len: int | None,
    max_windows: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Search the sub-networks of the llm super-network in ``folder`` for the front of the
    objectives and print it."""
    with common.errors():
        from nasforge.cli._supernet_search import _study_name
        from nasforge.evaluators.super_lm import SuperLMEvaluator
        from nasforge.lm import search_sublms
        from nasforge.lm.search import OBJECTIVES

        chosen = strategy if strategy is not None else "nsga2"
        for flag, count in (("--seq-len", seq_len), ("--max-windows", max_windows)):
            common.check_at_least_one(flag, count)
        goals = [item.strip() for item in objective or OBJECTIVES]
        if any(not goal for goal in goals):
            raise InvalidConfigError(
                "--objective is empty; give a metric and direction, e.g. --objective "
                "perplexity:min."
            )
        name = study_name if study_name is not None else _study_name(folder, chosen, bounds, seed)
        evaluator: dict[str, Any] = {"max_windows": max_windows}
        if seq_len is not None:
            evaluator["seq_len"] = seq_len
        if max_windows is None:
            evaluator.pop("max_windows")
        count = trials if trials is not None else 60
        plan = (
            None
            if quiet
            else (
                f"searching the llm super-network in {folder} with {chosen}: {count} sub-networks "
                f"measured for the front of {', '.join(goals)}"
            )
        )

        measuring = common.announcing(SuperLMEvaluator, plan)(folder, **evaluator)
        result = search_sublms(
            measuring, n_trials=count, strategy=chosen,
            strategy_params=dict(params) or None, objectives=goals, constraints=list(bounds),
            storage=storage, study_name=name, seed=seed,
        )  # fmt: skip
        result.study.storage.close()
        metrics = [goal.split(":")[0].strip() for goal in goals]
        for extra in ("perplexity", "params_M", "macs_M"):
            if extra not in metrics:
                metrics.append(extra)
    front = [
        {"trial": t.number, "arch": t.arch.text, "metrics": dict(t.metrics)} for t in result.front
    ]
    if as_json:
        common.print_json(
            {
                "study": result.study.name,
                "objectives": goals,
                "constraints": list(bounds),
                "measured": len(result.study.trials),
                "front": front,
            }
        )
        return
    _print_front(result.study, front, metrics)


def _print_front(study: Any, front: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> None:
    """The front as aligned columns, one sub-network a line (architectures never wrapped)."""
    import typer

    header = ["trial", *metrics, "arch"]
    rows = [
        [str(e["trial"]), *(common.fmt(e["metrics"].get(m), 3) for m in metrics), e["arch"]]
        for e in front
    ]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header) - 1)]
    typer.echo(f"front of study {study.name} ({len(study.trials)} measured)")
    for row in [header, *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]))
