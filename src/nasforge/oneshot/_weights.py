"""The architecture weights a one-shot search records per epoch: the parameter-free share of
their mass (a metric of the epoch's trial) and every edge's weights (the trial's reports, read
by the dashboard).

Private (imports torch); used by :mod:`nasforge.oneshot._engine`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from nasforge.errors import UnsupportedOperationError
from nasforge.ops.supernet import Supernet

__all__ = ["WEIGHT_PREFIX", "param_free_mass", "store_weights", "weight_reports"]

logger = logging.getLogger(__name__)

#: Key prefix of an option's weight in a report: ``"w|<group>|<row>|<option>"``.
WEIGHT_PREFIX = "w|"
#: Key prefix marking an option as parameter-free: ``"f|<group>|<option>"`` (value 1).
FREE_PREFIX = "f|"


def param_free_mass(supernet: Supernet, weights: Sequence[torch.Tensor]) -> float:
    """Mean, over the decisions, of the weight on parameter-free options (``none``
    included)."""
    shares = []
    with torch.no_grad():
        for group, w in zip(supernet.groups, weights, strict=True):
            free = torch.tensor(
                [name in supernet.param_free for name in group.options], dtype=torch.float32
            )
            w = w.detach().cpu().float()
            shares.append((w * free).sum(-1) / w.sum(-1))
    return float(torch.cat(shares).mean())


def weight_reports(supernet: Supernet, weights: Sequence[torch.Tensor]) -> dict[str, float]:
    """Each row's option weights, normalised to sum to 1, keyed ``"w|<group>|<row>|<option>"``
    (rows numbered from 0, options in the group's order), plus ``"f|<group>|<option>": 1.0``
    for each parameter-free option of the group."""
    out: dict[str, float] = {}
    with torch.no_grad():
        for group, w in zip(supernet.groups, weights, strict=True):
            rows = w.detach().cpu().double().reshape(-1, len(group.options))
            totals = rows.sum(-1, keepdim=True)
            shares = torch.where(totals > 0, rows / totals, torch.zeros_like(rows))
            for row, values in enumerate(shares.tolist()):
                for option, value in zip(group.options, values, strict=True):
                    out[f"{WEIGHT_PREFIX}{group.name}|{row}|{option}"] = float(value)
            for option in group.options:
                if option in supernet.param_free:
                    out[f"{FREE_PREFIX}{group.name}|{option}"] = 1.0
    return out


def store_weights(
    study: Any, number: int, epoch: int, supernet: Supernet, weights: Sequence[torch.Tensor]
) -> None:
    """Store the epoch's architecture weights as the reports of trial ``number`` (step
    ``epoch``); a storage that keeps no reports is skipped (the search goes on)."""
    study_id = study.record.study_id
    try:
        study.storage.add_reports(study_id, number, {epoch: weight_reports(supernet, weights)})
    except UnsupportedOperationError as error:
        logger.debug("architecture weights of epoch %d not stored: %s", epoch, error)
