"""Pareto tools: dominance, non-dominated sorting, crowding, fronts and hypervolume.

Every function here works on **oriented** objective values, larger is better, the form in
which a study hands them to strategies (``Trial.scores``): a minimised metric enters with its
sign flipped (:func:`orient`). So ``[94.1, -1.4]`` stands for 94.1 % accuracy at 1.4 ms, and
the mixed directions of ``("test_acc:max", "latency_ms[pixel3]:min")`` need no special case.

A point ``a`` **dominates** ``b`` when it is at least as good in every objective and better in
one (:func:`dominates`). The **front** of a set is its non-dominated points; equal points do
not dominate each other, so duplicates of a front point are all on the front.

* :func:`non_dominated_sort`: the fronts of a set, in order, by the fast non-dominated sort of
  Deb, K., Pratap, A., Agarwal, S. and Meyarivan, T. "A Fast and Elitist Multiobjective Genetic
  Algorithm: NSGA-II." IEEE Transactions on Evolutionary Computation 6(2), 2002, Section III-A
  (``O(M N^2)`` time and ``O(N^2)`` memory, as in the paper: for populations, not tables).
* :func:`crowding_distance`: Deb et al. 2002, Section III-B.
* :func:`front_indices` / :func:`front`: the first front only, in ``O(N |front| M)`` by a scan
  in lexicographic order; fast on a whole table of 15,625 cells.
* :func:`true_front`: the front of a tabular benchmark over all of its cells, with the
  reference point of the hypervolume (:class:`TrueFront`).
* :func:`hypervolume`, :func:`hypervolume_ratio`: computed by ``moocore`` (López-Ibáñez et
  al., the C library of the ``eaf``/``moocore`` projects: exact algorithms of Fonseca,
  Paquete and López-Ibáñez 2006 in 2-D/3-D, HV4D+ of Guerreiro and Fonseca 2018 in 4-D),
  never by hand. It is the optional extra ``pip install 'nasforge[mo]'``; without it these
  functions raise :class:`~nasforge.errors.MissingDependencyError`.

**Reference point.** The hypervolume of a front depends on the reference point, and so does
the ratio of two hypervolumes. :func:`reference_point` offers two documented choices, both
computed from the true front or the table, never from the runs being compared:

* ``"nadir"`` (the default): the nadir of the true front (its worst value in each
  objective) moved outwards by ``margin`` (10 %) of the front's range in that objective, the
  convention of pymoo and EvoXBench. Every point of the true front then adds volume,
  including its two ends. On NAS-Bench-201 the fastest cells compute nothing (10 %
  accuracy), so the accuracy range spans 10..94 % and a ratio near 1 is easy: random search
  reaches 0.97 at 200 queries on (cifar10 test accuracy, edge GPU latency).
* ``"median"``: the table's median in each objective (an architecture of typical accuracy
  *and* typical cost). Only the part of a front better than a typical architecture in every
  objective counts; stricter, and far more telling between strategies.

This module imports only numpy and nasforge's core; ``moocore``, matplotlib and the tabular
benchmarks are imported when a function needs them, so the study may import it.

Example:
    >>> import numpy as np
    >>> points = np.array([[3.0, -1.0], [2.0, -2.0], [1.0, -0.5], [2.0, -1.5]])
    >>> front_indices(points).tolist()
    [0, 2]
    >>> [f.tolist() for f in non_dominated_sort(points)]
    [[0, 2], [3], [1]]
"""

from __future__ import annotations

from nasforge.pareto._hypervolume import (
    INSTALL_HINT,
    ReferenceKind,
    hypervolume,
    reference_point,
)
from nasforge.pareto._sorting import (
    crowding_distance,
    dominates,
    front,
    front_indices,
    front_trials,
    non_dominated_sort,
    orient,
    pareto_ranks,
)
from nasforge.pareto._tables import (
    ColumnSource,
    StudyFront,
    TrueFront,
    hypervolume_ratio,
    plot_front,
    study_front,
    true_front,
)

__all__ = [
    "INSTALL_HINT",
    "ColumnSource",
    "ReferenceKind",
    "StudyFront",
    "TrueFront",
    "crowding_distance",
    "dominates",
    "front",
    "front_indices",
    "front_trials",
    "hypervolume",
    "hypervolume_ratio",
    "non_dominated_sort",
    "orient",
    "pareto_ranks",
    "plot_front",
    "reference_point",
    "study_front",
    "true_front",
]
