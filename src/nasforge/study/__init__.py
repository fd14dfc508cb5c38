"""The :class:`Study`: the search loop and its durable record.

A study asks a strategy for architectures (or takes them from :meth:`Study.ask`'s caller and
its queue), hands them to an evaluator, and records every trial in a storage, so that it can be
resumed by replaying the record. One module per part: the record and its replay
(``_base``), the search loop (``_loop``), the hand-driven interface (``_study``), and the
constructors (``_create``).
"""

from __future__ import annotations

from nasforge.study._create import create_study, load_study
from nasforge.study._study import Study
from nasforge.study._support import check_evaluator, trial_row

__all__ = ["Study", "check_evaluator", "create_study", "load_study", "trial_row"]
