"""Experiments: which strategy is better, honestly? Strategies × seeds × datasets on a
tabular benchmark, with a tidy trial table, a summary and a plot of the trajectories.

Example:
    >>> from nasforge.experiments import run_comparison
    >>> comparison = run_comparison(["regularized-evolution"], seeds=3, budget=20, n_jobs=1)
    >>> [row.strategy for row in comparison.summary([20])]
    ['regularized-evolution', 'random']
"""

from __future__ import annotations

from nasforge.experiments.compare import Comparison, SummaryRow, run_comparison

__all__ = ["Comparison", "SummaryRow", "run_comparison"]
