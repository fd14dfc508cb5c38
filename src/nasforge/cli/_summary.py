"""Printing a search's summary and a trial's metrics (``nasforge search``, ``nasforge show``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nasforge.cli._common import fmt, print_fields


def shown_metrics(objectives: Sequence[str]) -> list[str]:
    """The objective metrics, then the usual accuracy and size metrics."""
    out = [text.rpartition(":")[0] or text for text in objectives]
    out += [m for m in ("valid_acc", "test_acc", "params_M", "flops_M") if m not in out]
    return out


def best_rows(best: Mapping[str, Any] | None, objectives: Sequence[str]) -> list[tuple[str, str]]:
    if best is None:
        return [("best", "no completed trial")]
    index = f", benchmark index {best['index']}" if best["index"] is not None else ""
    rows = [("best", best["arch"]), ("", f"trial {best['number']}{index}")]
    for metric in shown_metrics(objectives):
        if metric in best["metrics"]:
            rows.append((metric, fmt(best["metrics"][metric], 3)))
    return rows


def _training_line(summary: Mapping[str, Any]) -> tuple[str, str]:
    train = summary["training"]
    epochs = f"{train['epochs']} epoch{'s' * (train['epochs'] != 1)}"
    shown = [epochs, f"{train['optimizer']} lr {train['lr']:g}"]
    if train.get("preset") is not None:
        shown.append(f"preset {train['preset']}")
    shown.extend(f"{key}={value}" for key, value in (train.get("build") or {}).items())
    for key, label in (("channels", "C"), ("cells_per_stage", "N"), ("layers", "layers")):
        if train.get(key) is not None:
            shown.append(f"{label}={train[key]}")
    if train.get("resolution") is not None:
        shown.append(f"{train['resolution']}px")
    if train.get("data_fraction") not in (None, 1.0):
        shown.append(f"{train['data_fraction']:g} of the data")
    return ("training", f"{summary['dataset']} ({summary['space']}; {', '.join(shown)})")


def print_search_summary(summary: Mapping[str, Any]) -> None:
    """The summary of :func:`nasforge.runs.search_summary` as ``label  value`` lines."""
    params = ", ".join(f"{k}={v}" for k, v in summary["strategy_params"].items())
    limit = []
    if summary.get("budget") is not None:
        unit = " s" if summary.get("cost_unit") == "seconds" else ""
        limit.append(f"of budget {summary['budget']}{unit}")
    if summary.get("trials") is not None:
        limit.append(f"(limit {summary['trials']} trials)")
    if summary.get("cost_unit") == "seconds":
        cost = f"cost {summary['spent']:.1f} s"
    else:
        cost = f"cost {summary['spent']:g}"
    if summary.get("evaluator") == "train":
        scored = _training_line(summary)
    elif summary.get("benchmark") is None:  # the function evaluator, a plugin's...
        fn = f" {summary['fn']}" if summary.get("fn") else ""
        scored = ("evaluator", f"{summary.get('evaluator')}{fn} ({summary['space']})")
    else:
        scored = ("benchmark", f"{summary['benchmark']} {summary['dataset']} ({summary['space']})")
    print_fields(
        [
            ("study", summary["study"]),
            (
                "strategy",
                f"{summary['strategy']} (seed {summary['seed']}{', ' * bool(params)}{params})",
            ),
            scored,
            (
                "trials",
                f"{summary['n_trials']} ({summary['n_complete']} complete"
                f"{_stopped(summary)}), "
                f"{' '.join([cost, *limit])}",
            ),
            ("dedupe", dedupe_text(summary)),
            *best_rows(summary["best"], summary["objectives"]),
            ("wall time", f"{summary['seconds']:.2f} s"),
        ]
    )


def dedupe_text(summary: Mapping[str, Any]) -> str:
    """Whether the study deduplicated, and how many trials were functional twins answered
    from the record at no cost."""
    if not summary.get("dedupe"):
        return "off"
    twins = int(summary.get("n_duplicates") or 0)
    return f"on ({twins} functional twin{'s' * (twins != 1)} answered free)"


def _stopped(summary: Mapping[str, Any]) -> str:
    """``, N stopped early`` when a stopping rule ended trials early."""
    n = summary.get("n_stopped") or 0
    return f", {n} stopped early" if n else ""
