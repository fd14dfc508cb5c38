"""A trained ``llm`` super-network in a folder: pre-training, InstaTune fine-tuning, resume,
and loading it back for the search.

The folder holds ``manifest.json`` (the space's settings, the corpus's settings and the
settings of both phases), ``pretrain.pt`` and ``finetune.pt`` (checkpoints of
:mod:`nasforge.lm.train`, which a stopped run resumes from).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidConfigError
from nasforge.lm.corpus import ByteCorpus, load_corpus
from nasforge.lm.train import TrainSettings, finetune_supernet, train_largest
from nasforge.ops.super_lm import SuperLM
from nasforge.spaces.llm import LLMSpace

__all__ = ["MANIFEST", "load_super_lm", "prepare_super_lm"]

#: Name of the manifest file.
MANIFEST = "manifest.json"


def prepare_super_lm(
    out_dir: str | os.PathLike[str],
    *,
    space: LLMSpace | None = None,
    corpus: ByteCorpus | None = None,
    pretrain: TrainSettings | None = None,
    finetune: TrainSettings | None = None,
    sampled: int = 2,
    sandwich: bool = True,
    distill: bool = True,
    seed: int = 0,
    checkpoint_every: int = 50,
) -> SuperLM:
    """Build the super-network of ``space`` (weights drawn with ``seed``), pre-train its
    largest network and fine-tune its sub-networks (InstaTune), keeping everything in
    ``out_dir``; a second call with the same settings resumes where the first stopped.

    Args:
        out_dir: The folder.
        space: The ``llm`` space (default ``LLMSpace()``).
        corpus: The text (default :func:`~nasforge.lm.corpus.load_corpus` of nasforge's own
            source).
        pretrain: Settings of :func:`~nasforge.lm.train.train_largest`.
        finetune: Settings of :func:`~nasforge.lm.train.finetune_supernet`.
        sampled, sandwich, distill: As :func:`~nasforge.lm.train.finetune_supernet`.
        seed: Seed of the initial weights.
        checkpoint_every: Steps between checkpoints.

    Raises:
        InvalidConfigError: ``out_dir`` holds a run with other settings.
    """
    from nasforge.train.trainer import seeded

    space = space or LLMSpace()
    corpus = corpus or load_corpus()
    pretrain = pretrain or TrainSettings()
    finetune = finetune or TrainSettings(lr=1e-3)
    manifest = {
        "space": space.settings,
        "corpus": corpus.settings,
        "corpus_digest": corpus.digest,
        "pretrain": asdict(pretrain),
        "finetune": asdict(finetune),
        "instatune": {"sampled": sampled, "sandwich": sandwich, "distill": distill},
        "seed": int(seed),
    }
    folder = Path(out_dir)
    path = folder / MANIFEST
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != json.loads(json.dumps(manifest)):
            raise InvalidConfigError(
                f"{str(folder)!r} holds a super-network trained with other settings; give "
                "another folder, or the stored settings to resume it."
            )
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1))
    with seeded(seed):
        supernet = SuperLM(space)
    train_largest(
        supernet, corpus, pretrain, out=folder / "pretrain.pt", checkpoint_every=checkpoint_every
    )
    finetune_supernet(
        supernet, corpus, finetune, sampled=sampled, sandwich=sandwich, distill=distill,
        out=folder / "finetune.pt", checkpoint_every=checkpoint_every,
    )  # fmt: skip
    return supernet


def load_super_lm(out_dir: str | os.PathLike[str]) -> tuple[SuperLM, ByteCorpus, dict[str, Any]]:
    """The fine-tuned super-network in ``out_dir`` (evaluation mode), its corpus and its
    manifest.

    Raises:
        InvalidConfigError: ``out_dir`` holds no finished fine-tuning.
    """
    import torch

    folder = Path(out_dir)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        state = torch.load(folder / "finetune.pt", map_location="cpu", weights_only=False)
    except (OSError, ValueError):
        raise InvalidConfigError(
            f"{str(out_dir)!r} holds no fine-tuned llm super-network; make one with "
            "nasforge.lm.prepare_super_lm(out_dir)."
        ) from None
    if int(state["step"]) < int(manifest["finetune"]["steps"]):
        raise InvalidConfigError(
            f"The fine-tuning in {str(out_dir)!r} stopped at step {state['step']} of "
            f"{manifest['finetune']['steps']}; call prepare_super_lm with the same settings to "
            "finish it."
        )
    space = LLMSpace(**manifest["space"])
    supernet = SuperLM(space)
    supernet.load_state_dict(state["model"])
    corpus = load_corpus(**manifest["corpus"])
    recorded = manifest.get("corpus_digest")
    if recorded is not None and recorded != corpus.digest:
        raise InvalidConfigError(
            f"The corpus of {str(out_dir)!r} changed since its super-network was trained "
            f"(text fingerprint {recorded}, now {corpus.digest}): its perplexities would be "
            "measured on other text. Restore the text, or train a new folder on this one."
        )
    return supernet.eval(), corpus, manifest
