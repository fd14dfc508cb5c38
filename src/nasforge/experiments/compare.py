"""Compare search strategies honestly: strategies × seeds × datasets on a tabular benchmark.

The protocol follows Yang, A., Esperança, P. M. and Carlucci, F. M. "NAS evaluation is
frustratingly hard." ICLR 2020, arXiv:1912.12522: every strategy is run with many seeds under
the same query budget, each run is judged by the *test* accuracy of the architecture it would
pick (the best by *validation* accuracy among the queries it made within the budget), and a
strategy is reported against random search of the same space by its relative improvement

    RI = 100 · (Acc_m − Acc_r) / Acc_r,

where ``Acc_m`` and ``Acc_r`` are the mean test accuracies (over seeds) of the method and of
random search. Unlike the paper, which compares methods trained under their own protocols,
here every run queries the same tabular benchmark, so RI measures search quality alone.

One-shot methods (``nasforge.oneshot``: DARTS, GDAS, SPOS...) can be compared beside the
strategies: each seed trains the method's supernet on real images and every epoch's derived
architecture is looked up in the same table. A one-shot run spends no queries on choosing
its architecture, so what it stands for at any point is its *latest* derived architecture
(not the best by validation of all epochs, which would consult the table). Every trial
carries the wall time its run had spent when its result was known, so both kinds of method
are also put on one time axis (:meth:`Comparison.time_trajectories`, ``time.png``); the
table makes a black-box query nearly free, and ``seconds_per_query`` charges each query the
training time it would cost outside the table.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from nasforge import evaluators, spaces, tabular
from nasforge import strategies as strategy_registry
from nasforge.constraints import Constraint
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnknownNameError
from nasforge.experiments._knowledge import Entry, dedupe_settings, entry_label, knowledge
from nasforge.experiments._tasks import (
    check_names,
    check_seeds,
    chunk_size,
    run_tasks,
    worker_count,
)
from nasforge.experiments.results import (
    _METRICS,
    BASELINE,
    DEFAULT_BUDGETS,
    TRIAL_COLUMNS,
    Comparison,
    SummaryRow,
    _Run,
    _satisfied,
)
from nasforge.study import check_evaluator, create_study

__all__ = [
    "BASELINE",
    "DEFAULT_BUDGETS",
    "TRIAL_COLUMNS",
    "Comparison",
    "SummaryRow",
    "run_comparison",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Task:
    """Some seeds of one (strategy, dataset) pair: one unit of work for a worker."""

    index: int
    benchmark: str
    space: str
    strategy: str
    label: str
    params: Mapping[str, Any]
    dataset: str
    budget: int
    seeds: tuple[int, ...]
    dedupe: bool
    constraints: tuple[str, ...]
    fidelity: int | None = None
    benchmark_params: Mapping[str, Any] | None = None
    space_params: Mapping[str, Any] | None = None
    metrics: tuple[str, str] = _METRICS


# -- running ----------------------------------------------------------------------------------
def run_comparison(
    strategies: Sequence[str],
    *,
    datasets: Sequence[str] = ("cifar10",),
    seeds: int | Sequence[int] = 100,
    budget: int = 100,
    benchmark: str = "nb201",
    strategy_params: Mapping[str, Mapping[str, Any]] | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    dedupe: bool | str | None = None,
    constraints: Sequence[str] = (),
    data: Any = None,
    oneshot_settings: Any = None,
    oneshot_epochs: int | None = None,
    seconds_per_query: float = 0.0,
    device: str = "auto",
    threads: int | None = None,
    fidelity: int | None = None,
    benchmark_params: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> Comparison:
    """Run every strategy with every seed on every dataset of a tabular benchmark.

    One run is an in-memory study of one strategy and seed that spends ``budget`` queries of
    the benchmark's ``valid_acc`` (the objective) on one dataset; its ``test_acc`` is recorded
    for the summary only. Runs are independent, so the result is the same, bit for bit,
    whatever ``n_jobs`` is, and the run of strategy ``s`` with seed ``k`` is exactly the study
    ``nasforge.create_study(strategy=s, seed=k)`` optimised with ``budget=budget``, so any
    single run can be replayed on its own. All strategies use the same seeds (a paired
    design: strategies that start by sampling at random share those first samples with
    random search of the same seed). The protocol and the relative improvement (RI) over
    random search follow Yang, Esperança and Carlucci, "NAS evaluation is frustratingly
    hard", ICLR 2020, arXiv:1912.12522 (see the module docstring).

    Random search is the baseline of RI: when ``"random"`` is not in ``strategies`` it is run
    anyway, appended as the last strategy, and appears in every output.

    Args:
        strategies: Registry names of the strategies (``nasforge.strategies.names()``).
        datasets: Datasets of the benchmark.
        seeds: ``n`` for seeds ``0..n-1``, or the seeds themselves (non-negative, distinct).
        budget: Queries per run, in the tabular evaluator's cost unit.
        benchmark: Registry name of the tabular benchmark (``nasforge.tabular.names()``).
        strategy_params: Keyword arguments of each strategy, keyed by strategy name, e.g.
            ``{"regularized-evolution": {"population_size": 20}}``.
        n_jobs: Worker processes; ``None`` uses one per CPU core, ``1`` runs everything in
            this process. Work is sent in chunks of up to 25 seeds of one strategy and dataset.
        progress: Called in this process as ``progress(runs_done, runs_total)`` whenever runs
            finish (and once with ``runs_done=0`` before the first starts).
        dedupe: Functional deduplication, the same for every strategy: each study is
            created with ``create_study(..., dedupe=...)`` (a proposal equal in function to
            an evaluated architecture is answered from the record at no cost) and the
            strategies that take architectures up to function themselves (``pnas``,
            ``weaknas``) follow it. ``None``/``"auto"``: on where the space has a canonical
            form (NB201), off otherwise; ``True``/``"on"``; ``False``/``"off"``; ``"both"``:
            every strategy with it on and every strategy with it off, side by side, as rows
            ``"<strategy>[dedupe]"`` and ``"<strategy>[no-dedupe]"`` (each judged against
            random search of its own setting). A strategy told otherwise in
            ``strategy_params`` (``{"pnas": {"canonical": True}}`` with dedupe off) is run so
            and its rows say it (:attr:`SummaryRow.knowledge`).

    With ``constraints`` (``["latency_ms[edgegpu]<=5.3"]``) every study is constrained (see
    ``create_study``); infeasible trials are never a run's best, and the optimum of the
    optimum rate is the best validation accuracy among the feasible cells.

    Trials at a reduced fidelity (``{"epochs": 12}``, e.g. from ``successive-halving``) cost
    their share of a query and are never a run's best-by-validation architecture.

    One-shot methods (``nasforge.oneshot.names()``, e.g. ``"darts"``) may be named in
    ``strategies`` beside black-box strategies; they need ``data`` (the images their
    supernet trains on: a ``DataSplits`` or a path for ``nasforge.train.load_cifar10``) and
    search the benchmark's table of that data's dataset (CIFAR-10), so ``datasets`` must be
    ``["cifar10"]``. Each seed runs ``nasforge.oneshot.search(method, data,
    settings=oneshot_settings, epochs=oneshot_epochs, seed=seed)`` in this process, after
    the black-box runs, with ``strategy_params[method]`` as the method's hyperparameters,
    on ``device`` with ``threads`` CPU threads. Every epoch's derived architecture is a
    trial of the run; the run stands for its latest one.

    ``fidelity`` (e.g. ``12``) searches the benchmark as trained for that many epochs: every
    query of every run is answered from that table (the objective, the test accuracy the runs
    are judged by, the optima) and counts as one query of the budget, as in a search on a
    table of short training runs. ``None``: the benchmark's full training (200 epochs).

    A table of one's own (:func:`nasforge.tabular.from_table`) is compared with
    ``benchmark="table"`` and ``benchmark_params`` (its path and columns, the space's
    ``params``), and ``metrics=(searched, judged)`` naming its columns: the runs maximise the
    first and are judged by the second (the same column twice where the table has one
    accuracy). Each look-up counts as one query (a fidelity's share of one) even where the
    table has a cost column.

    ``seconds_per_query`` charges each query (cost unit) of a black-box run that many
    seconds on the time axis, e.g. the training time of one architecture in the setting
    one-shot methods are compared in; it changes :meth:`Comparison.time_trajectories`,
    ``mean_seconds`` and ``time.png``, nothing else.

    Returns:
        The :class:`Comparison`, ready to :meth:`~Comparison.summary` or
        :meth:`~Comparison.write`.

    Raises:
        InvalidConfigError: No strategy, no seed, a non-positive budget or ``n_jobs``,
            duplicated names or seeds, parameters for a strategy that is not compared, an
            unknown ``dedupe`` value, or ``"both"`` with one-shot methods.
        UnsupportedOperationError: Deduplication asked for on a space with neither a
            canonical form nor a model builder.
        UnknownNameError: An unknown strategy, dataset or benchmark name (raised before any
            run starts).

    Example:
        >>> from nasforge.experiments import run_comparison
        >>> comparison = run_comparison(["regularized-evolution"], seeds=3, budget=20, n_jobs=1)
        >>> comparison.strategies
        ('regularized-evolution', 'random')
        >>> [(r.strategy, r.budget) for r in comparison.summary([20])]
        [('regularized-evolution', 20), ('random', 20)]
    """
    names = check_names(strategies, "strategies", "strategies=['random', 'regularized-evolution']")
    dataset_names = check_names(datasets, "datasets", "datasets=['cifar10']")
    oneshot_names = _oneshot_names(names)
    if not (isinstance(seconds_per_query, numbers.Real) and 0 <= seconds_per_query < math.inf):
        raise InvalidConfigError(
            f"seconds_per_query must be a finite number of seconds >= 0, got "
            f"{seconds_per_query!r}; e.g. seconds_per_query=30 charges each query 30 s."
        )
    seed_list = check_seeds(seeds)
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget <= 0:
        raise InvalidConfigError(
            f"budget must be a positive whole number of queries, got {budget!r}; e.g. budget=100."
        )
    budget = int(budget)
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1
    ):
        raise InvalidConfigError(
            f"n_jobs must be a positive number of processes (or None for one per CPU core), "
            f"got {n_jobs!r}."
        )
    params = {name: dict(value) for name, value in (strategy_params or {}).items()}
    if BASELINE not in names:
        names = (*names, BASELINE)
    stray = sorted(set(params) - set(names))
    if stray:
        raise InvalidConfigError(
            f"strategy_params names {stray}, which {'is' if len(stray) == 1 else 'are'} not "
            f"compared; the strategies are {list(names)}. Add it to strategies or drop its "
            "parameters."
        )

    parsed_constraints = tuple(Constraint.parse(c) for c in constraints)
    # validate every name and parameter before any run or process starts
    bench, bench_params, pair = _benchmark(benchmark, benchmark_params, metrics)
    space = spaces.create(bench.space, **bench.space_params)
    settings = dedupe_settings(dedupe, space)
    if fidelity is not None and oneshot_names:
        raise InvalidConfigError(
            f"fidelity={fidelity!r} searches a table of short training runs; the one-shot "
            f"method(s) {', '.join(oneshot_names)} are judged on the full table. Leave out "
            "fidelity or the one-shot methods."
        )
    if len(settings) > 1 and oneshot_names:
        raise InvalidConfigError(
            f"dedupe='both' runs the black-box strategies twice; the one-shot method(s) "
            f"{', '.join(oneshot_names)} make no queries to deduplicate. Compare them in a "
            "comparison of their own, or with dedupe 'on' or 'off'."
        )
    entries: dict[str, Entry] = {}
    for setting in settings:
        for name in names:
            oneshot_run = name in oneshot_names
            entries[entry_label(name, setting, settings)] = Entry(
                strategy=name,
                dedupe=None if oneshot_run else setting,
                knowledge="one-shot (no queries)"
                if oneshot_run
                else knowledge(name, params.get(name, {}), setting, space),
            )
    for name in names:
        if name not in oneshot_names:
            strategy_registry.create(name, space, seed=0, **params.get(name, {}))
    images = _check_oneshot(
        oneshot_names, params, bench.space, dataset_names, data, constraints, oneshot_epochs
    )
    resolved = []
    optima: dict[str, float] = {}
    test_optima: dict[str, float] = {}
    for dataset in dataset_names:
        evaluator = evaluators.create(
            "tabular",
            benchmark=benchmark,
            dataset=dataset,
            metrics=list(dict.fromkeys(pair)),
            fidelity=fidelity,
            benchmark_params=bench_params,
            charge_queries=True,
        )
        canonical = str(getattr(evaluator, "dataset", dataset))
        resolved.append(canonical)
        check_evaluator(evaluator, space.name, (), parsed_constraints)
        feasible = np.ones(len(bench.column(canonical, pair[0], fidelity)), dtype=bool)
        for constraint in parsed_constraints:
            column = bench.column(canonical, constraint.metric, fidelity)
            feasible &= _satisfied(constraint, column)
        if not feasible.any():
            raise InfeasibleConstraintError(
                f"No {benchmark} architecture meets {', '.join(map(str, parsed_constraints))} "
                f"on {canonical}."
            )
        valid = np.where(feasible, bench.column(canonical, pair[0], fidelity), np.nan)
        optima[canonical] = float(np.nanmax(valid))
        test = np.where(feasible, bench.column(canonical, pair[1], fidelity), np.nan)
        test_optima[canonical] = float(np.nanmax(test))
    if len(set(resolved)) != len(resolved):
        raise InvalidConfigError(f"datasets lists a dataset twice: {list(dataset_names)}.")
    dataset_names = tuple(resolved)

    n_workers = worker_count(n_jobs)
    pairs = [(label, d) for label in entries for d in dataset_names]
    blackbox_pairs = [(label, d) for label, d in pairs if entries[label].dedupe is not None]
    total = len(pairs) * len(seed_list)
    chunk = chunk_size(total, n_workers)
    groups = [
        (strategy, dataset, seed_list[i : i + chunk])
        for strategy, dataset in blackbox_pairs
        for i in range(0, len(seed_list), chunk)
    ]
    tasks = [
        _Task(
            index=index,
            benchmark=benchmark,
            space=bench.space,
            strategy=entries[label].strategy,
            label=label,
            params=params.get(entries[label].strategy, {}),
            dataset=dataset,
            budget=budget,
            seeds=chunk_seeds,
            dedupe=bool(entries[label].dedupe),
            constraints=tuple(str(c) for c in parsed_constraints),
            fidelity=fidelity,
            benchmark_params=bench_params or None,
            space_params=bench.space_params or None,
            metrics=pair,
        )
        for index, (label, dataset, chunk_seeds) in enumerate(groups)
    ]
    logger.info(
        "comparing %s on %s %s: %d seeds, budget %d, %d tasks on %d process(es)",
        list(entries),
        benchmark,
        list(dataset_names),
        len(seed_list),
        budget,
        len(tasks),
        min(n_workers, len(tasks)),
    )

    results = run_tasks(_run_chunk, tasks, n_workers, total, progress)
    runs: dict[tuple[str, str], list[_Run]] = {pair: [] for pair in pairs}
    for task, chunk_runs in zip(tasks, results, strict=True):
        runs[(task.label, task.dataset)].extend(chunk_runs)
    done = sum(len(task.seeds) for task in tasks)
    settings_json: dict[str, Any] = {}
    if oneshot_names:
        from nasforge.oneshot import SupernetSettings

        chosen = oneshot_settings or SupernetSettings.standard(bench.space)
        settings_json = {**chosen.to_dict(), "epochs": oneshot_epochs}
        for method in oneshot_names:
            for seed in seed_list:
                run = _run_oneshot(
                    method,
                    params.get(method, {}),
                    images,
                    bench.space,
                    benchmark,
                    dataset_names[0],
                    seed,
                    chosen,
                    oneshot_epochs,
                    device,
                    threads,
                )
                runs[(method, dataset_names[0])].append(run)
                done += 1
                if progress is not None:
                    progress(done, total)
    return Comparison(
        strategies=tuple(entries),
        datasets=dataset_names,
        seeds=seed_list,
        budget=budget,
        benchmark=benchmark,
        strategy_params={label: params.get(e.strategy, {}) for label, e in entries.items()},
        dedupe=settings[0] if len(settings) == 1 else "both",
        entries=entries,
        optima=optima,
        test_optima=test_optima,
        fidelity=fidelity,
        runs=runs,
        oneshot=oneshot_names,
        seconds_per_query=float(seconds_per_query),
        oneshot_settings=settings_json,
    )


def _run_chunk(task: _Task) -> list[_Run]:
    """Run the seeds of one task (in a worker process, or in this one)."""
    evaluator = evaluators.create(
        "tabular",
        benchmark=task.benchmark,
        dataset=task.dataset,
        metrics=list(dict.fromkeys(task.metrics)),
        fidelity=task.fidelity,
        benchmark_params=task.benchmark_params,
        charge_queries=True,
    )
    # one query of the searched table is one query of the budget, whatever it costs to train
    bench = tabular.create(task.benchmark, **dict(task.benchmark_params or {}))
    per_query = bench.cost(task.dataset, task.fidelity)
    searched, judged = task.metrics
    out = []
    for seed in task.seeds:
        study = create_study(
            space=task.space,
            space_params=task.space_params,
            strategy=task.strategy,
            seed=seed,
            study_name=f"compare-{task.strategy}-{task.dataset}-seed{seed}",
            strategy_params=task.params,
            dedupe=task.dedupe,
            constraints=task.constraints,
            objectives=(f"{searched}:max",),
        )
        started = datetime.now(timezone.utc)
        study.optimize(evaluator, budget=task.budget * per_query)
        trials = study.trials
        out.append(
            _Run(
                seed=seed,
                archs=tuple(t.arch.text for t in trials),
                fidelity=tuple(
                    ",".join(f"{k}={v}" for k, v in sorted((t.fidelity or {}).items()))
                    for t in trials
                ),
                valid=np.array([t.value(searched) for t in trials], dtype=np.float64),
                test=np.array([t.value(judged) for t in trials], dtype=np.float64),
                cost=np.array([t.cost / per_query for t in trials], dtype=np.float64),
                eligible=np.array(
                    [t.score is not None and not t.fidelity for t in trials], dtype=bool
                ),
                seconds=np.array(
                    [
                        (t.finished_at - started).total_seconds() if t.finished_at else np.nan
                        for t in trials
                    ],
                    dtype=np.float64,
                ),
            )
        )
    return out


def _benchmark(
    name: str, params: Mapping[str, Any] | None, metrics: Sequence[str] | None
) -> tuple[Any, dict[str, Any], tuple[str, str]]:
    """The benchmark compared on, the parameters that build it, and the (searched, judged)
    metrics, both maximised.

    Raises:
        InvalidConfigError: ``metrics`` is not two names, or names a minimised metric.
        UnknownNameError: A metric the benchmark does not have.
    """
    built = dict(params or {})
    bench = tabular.create(name, **built)
    pair = tuple(_METRICS if metrics is None else (str(m) for m in metrics))
    if len(pair) != 2:
        raise InvalidConfigError(
            f"metrics names the metric searched and the one judged, e.g. ('valid_acc', "
            f"'test_acc'); got {list(pair)}."
        )
    known = {m.name: m.direction for m in bench.metrics(bench.datasets[0])}
    for metric in pair:
        if metric not in known:
            raise UnknownNameError(f"metric of benchmark {name!r}", metric, known)
        if known[metric].value != "maximize":
            raise InvalidConfigError(
                f"The comparison maximises its metrics (optimum rate, RI over random search); "
                f"{metric!r} is minimised. Compare on an accuracy (a larger-is-better column)."
            )
    return bench, built, (pair[0], pair[1])


def _oneshot_names(names: Sequence[str]) -> tuple[str, ...]:
    """Those of ``names`` that are one-shot methods, not strategies; unknown names raise
    with both lists as the choices."""
    return tuple(name for name in names if is_oneshot(name))


def is_oneshot(name: str) -> bool:
    """Whether ``name`` is a one-shot method rather than a black-box strategy, where both
    are accepted under one name (``nasforge search``, ``nasforge compare``).

    Lives here, not in a leaf package, because it reads two leaves' registries.

    Raises:
        UnknownNameError: ``name`` is neither (both lists are the choices).
    """
    from nasforge import oneshot

    known, methods = strategy_registry.names(), oneshot.names()
    if name not in known and name not in methods:
        raise UnknownNameError("strategy or one-shot method", name, [*known, *methods])
    return name not in known


def _check_oneshot(
    methods: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    space: str,
    datasets: Sequence[str],
    data: Any,
    constraints: Sequence[str],
    epochs: int | None,
) -> Any:
    """Validate the one-shot part of a comparison before anything runs; load the images."""
    if not methods:
        return None
    from nasforge import oneshot

    listed = ", ".join(methods)
    oneshot.base.check_space(space)
    for method in methods:
        oneshot.create(method, **params.get(method, {}))
    if data is None:
        raise InvalidConfigError(
            f"The one-shot method(s) {listed} train a supernet: give data (a path to "
            "CIFAR-10, or nasforge.train.load_cifar10(path)); nasforge never downloads data."
        )
    if list(datasets) != ["cifar10"]:
        raise InvalidConfigError(
            f"One-shot methods ({listed}) search on the images given as data (CIFAR-10) and "
            f"are judged on the table's cifar10 results; the comparison names {list(datasets)}. "
            "Compare them with datasets=['cifar10'], or leave them out."
        )
    if constraints:
        raise InvalidConfigError(
            f"Constraints apply to black-box strategies only; the one-shot method(s) {listed} "
            "derive architectures without them. Leave out constraints or the one-shot methods."
        )
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1
    ):
        raise InvalidConfigError(
            f"oneshot_epochs must be a positive number of epochs (or None for each method's "
            f"published number), got {epochs!r}."
        )
    if isinstance(data, (str, os.PathLike)):
        from nasforge.train import load_cifar10

        return load_cifar10(data)
    return data


def _run_oneshot(
    method: str,
    params: Mapping[str, Any],
    data: Any,
    space: str,
    benchmark: str,
    dataset: str,
    seed: int,
    settings: Any,
    epochs: int | None,
    device: str,
    threads: int | None,
) -> _Run:
    """One seed of a one-shot method: every epoch's derived architecture is a trial."""
    from nasforge import oneshot

    evaluator = evaluators.create(
        "tabular", benchmark=benchmark, dataset=dataset, metrics=list(_METRICS)
    )
    result = oneshot.search(
        method,
        data,
        space=space,
        params=params,
        settings=settings,
        epochs=epochs,
        seed=seed,
        evaluator=evaluator,
        study_name=f"compare-{method}-{dataset}-seed{seed}",
        device=device,
        threads=threads,
    )
    trials = result.study.trials
    return _Run(
        seed=seed,
        archs=tuple(t.arch.text for t in trials),
        fidelity=tuple("" for _ in trials),
        valid=np.array([t.value("valid_acc") for t in trials], dtype=np.float64),
        test=np.array([t.value("test_acc") for t in trials], dtype=np.float64),
        cost=np.zeros(len(trials)),
        eligible=np.array([t.score is not None for t in trials], dtype=bool),
        seconds=np.array(
            [t.metrics.get("search_seconds", np.nan) for t in trials], dtype=np.float64
        ),
        latest=True,
    )


# -- helpers ----------------------------------------------------------------------------------
