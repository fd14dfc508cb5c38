"""Saving the network a training evaluator trained, for ``nasforge export`` (private to
:mod:`nasforge.evaluators.training`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasforge.evaluators._images import save_trained

if TYPE_CHECKING:
    from torch import nn

    from nasforge.architecture import Architecture
    from nasforge.evaluators._values import Setting
    from nasforge.evaluators.training import TrainingEvaluator
    from nasforge.train.data import DataSplits

__all__ = ["save_checkpoint"]


def save_checkpoint(
    ev: TrainingEvaluator,
    arch: Architecture,
    fidelity: Mapping[str, Any] | None,
    setting: Setting,
    model: nn.Module,
    splits: DataSplits,
    metrics: Mapping[str, float],
) -> None:
    """Save ``model``, trained for ``arch`` at ``fidelity``, where
    ``ev.checkpoint_path(arch, fidelity)`` says, with its metrics, seeds and recipe."""
    path = ev.checkpoint_path(arch, fidelity)
    assert path is not None
    save_trained(
        path,
        ev._space.name,
        arch,
        ev.build_kwargs(setting, splits.num_classes),
        model,
        (3, setting.resolution, setting.resolution),
        splits,
        info={
            "metrics": {k: float(v) for k, v in metrics.items()},
            "fidelity": {str(k): v for k, v in (fidelity or {}).items()},
            "seed": ev.seed,
            "trial_seed": ev.trial_seed(arch),
            "recipe": ev._space.recipe_of(arch, ev.recipe.replace(epochs=setting.epochs)).to_dict(),
            "dataset": ev.dataset,
        },
    )
