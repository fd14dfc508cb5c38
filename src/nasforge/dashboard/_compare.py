"""Comparison folders (written by ``nasforge compare --out DIR``) read back for the dashboard:
the summary table and each strategy's mean best-so-far test accuracy with a band of one
standard deviation over seeds."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.dashboard._safe import num, plain
from nasforge.errors import InvalidConfigError
from nasforge.experiments.plot import mean_and_std

__all__ = ["MAX_POINTS", "load_comparison"]

#: Most points of each curve (a longer budget is sampled evenly, its last query kept).
MAX_POINTS = 400

#: Columns of the summary shown per dataset and strategy.
_SUMMARY_KEYS = ("mean_test", "std_test", "mean_valid", "optimum_rate", "ri", "knowledge")

#: Columns of ``trials.csv`` the curves need.
_NEEDED = ("dataset", "strategy", "seed", "cum_cost", "best_test")

#: Two cumulative costs closer than this are equal (as the comparison harness counts).
_TOL = 1e-9


def _unreadable(folder: Path, why: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"Cannot read the comparison folder {str(folder)!r}: {why}. Give a folder written by "
        "`nasforge compare --out DIR` (it holds summary.json and trials.csv)."
    )


def load_comparison(folder: str | Path, ident: int) -> dict[str, Any]:
    """The dashboard payload of one comparison folder.

    Returns:
        ``{"id", "name" (the folder's name), "benchmark", "budget", "n_seeds", "datasets":
        {dataset: {strategy: {"mean_test", "std_test", "mean_valid", "optimum_rate", "ri",
        "knowledge"}}}, "curves": {dataset: {strategy: {"x", "mean", "low", "high"}}}}``;
        ``x`` are query counts from 1 to the budget, ``mean`` the mean over seeds of the
        test accuracy of each run's pick after ``x`` queries (its best by validation; a
        one-shot method's latest architecture), ``low``/``high`` one standard deviation
        below and above (``None`` where no run has a result yet).

    Raises:
        InvalidConfigError: The folder is missing, or its ``summary.json`` or ``trials.csv``
            is missing or not what the comparison harness writes; the message names the
            folder and the files expected.
    """
    path = Path(folder)
    if not path.is_dir():
        raise _unreadable(path, "there is no such folder")
    summary = _read_summary(path)
    runs = _read_trials(path)
    budget = summary["budget"]
    curves: dict[str, dict[str, Any]] = {}
    for (dataset, strategy), seeds in runs.items():
        curves.setdefault(dataset, {})[strategy] = _curve(seeds, budget)
    datasets = {
        str(dataset): {
            str(strategy): {key: plain(entry.get(key)) for key in _SUMMARY_KEYS}
            for strategy, entry in entries.items()
            if isinstance(entry, dict)
        }
        for dataset, entries in summary["datasets"].items()
        if isinstance(entries, dict)
    }
    return {
        "id": ident,
        "name": path.resolve().name or str(path),
        "benchmark": str(summary.get("benchmark", "")),
        "budget": budget,
        "n_seeds": int(summary.get("n_seeds") or len(summary.get("seeds") or [])),
        "datasets": datasets,
        "curves": curves,
    }


def _read_summary(path: Path) -> dict[str, Any]:
    file = path / "summary.json"
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise _unreadable(path, "summary.json is missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, f"summary.json cannot be read ({error})") from None
    except json.JSONDecodeError as error:
        raise _unreadable(path, f"summary.json is not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise _unreadable(path, "summary.json has no 'datasets' table")
    budget = data.get("budget")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise _unreadable(path, f"summary.json gives no budget (got {budget!r})")
    return data


def _read_trials(path: Path) -> dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Each run's cumulative costs and best test accuracies, by (dataset, strategy) and
    seed, in the order of the file."""
    file = path / "trials.csv"
    collected: dict[tuple[str, str], dict[str, tuple[list[float], list[float]]]] = {}
    try:
        with file.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in _NEEDED if c not in (reader.fieldnames or ())]
            if missing:
                raise _unreadable(path, f"trials.csv lacks the columns {', '.join(missing)}")
            for line, row in enumerate(reader, start=2):
                key = (row["dataset"], row["strategy"])
                cost, best = collected.setdefault(key, {}).setdefault(row["seed"], ([], []))
                try:
                    cost.append(float(row["cum_cost"]))
                    best.append(_float(row["best_test"]))
                except (TypeError, ValueError):
                    raise _unreadable(
                        path, f"line {line} of trials.csv holds a value that is not a number"
                    ) from None
    except FileNotFoundError:
        raise _unreadable(path, "trials.csv is missing") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _unreadable(path, f"trials.csv cannot be read ({error})") from None
    return {
        key: {seed: (np.asarray(c), np.asarray(b)) for seed, (c, b) in seeds.items()}
        for key, seeds in collected.items()
    }


def _float(text: str | None) -> float:
    return math.nan if text is None or text == "" else float(text)


def _curve(seeds: dict[str, tuple[np.ndarray, np.ndarray]], budget: int) -> dict[str, Any]:
    grid = np.arange(1, budget + 1, dtype=np.float64)
    if budget > MAX_POINTS:
        grid = np.unique(np.round(np.linspace(1, budget, MAX_POINTS)))
    values = np.full((len(seeds), len(grid)), np.nan)
    for i, (cost, best) in enumerate(seeds.values()):
        last = np.searchsorted(cost, grid + _TOL, side="right") - 1
        seen = last >= 0
        values[i, seen] = best[last[seen]]
    mean, std, _ = mean_and_std(values)
    return {
        "x": [int(x) for x in grid],
        "mean": [num(v) for v in mean],
        "low": [num(v) for v in mean - std],
        "high": [num(v) for v in mean + std],
    }
