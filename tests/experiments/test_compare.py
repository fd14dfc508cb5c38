"""The comparison harness: determinism, summaries recomputed by hand, files and errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.experiments import Comparison, SummaryRow, run_comparison
from nasforge.experiments.compare import TRIAL_COLUMNS

STRATEGIES = ["regularized-evolution", "random"]
# explicit, so that the tests do not depend on the strategy's defaults
PARAMS = {"regularized-evolution": {"population_size": 10, "tournament_size": 3}}


@pytest.fixture(scope="module")
def small() -> Comparison:
    """Two strategies, two datasets, six seeds, 30 queries, in this process."""
    return run_comparison(
        STRATEGIES,
        datasets=["cifar10", "cifar100"],
        seeds=6,
        budget=30,
        strategy_params=PARAMS,
        dedupe=False,  # one trial per query: the tidy-table tests count them
        n_jobs=1,
    )


@pytest.fixture(scope="module")
def cifar10_30_seeds() -> Comparison:
    return run_comparison(STRATEGIES, seeds=30, budget=100, n_jobs=1)


def _runs(rows: list[dict], strategy: str, dataset: str) -> dict[int, list[dict]]:
    by_seed: dict[int, list[dict]] = {}
    for row in rows:
        if row["strategy"] == strategy and row["dataset"] == dataset:
            by_seed.setdefault(row["seed"], []).append(row)
    return by_seed


def _pick(trials: list[dict], budget: int) -> dict:
    """The best-by-validation trial within ``budget`` (earliest among equals), by hand."""
    best = None
    for row in trials:
        if row["cum_cost"] <= budget + 1e-9 and (
            best is None or row["valid_acc"] > best["valid_acc"]
        ):
            best = row
    assert best is not None
    return best


def _timeless_rows(comparison: Comparison) -> list[dict]:
    """The trial table without the measured wall time (the only part that varies)."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in comparison.trial_rows()]


def _timeless_json(data: dict) -> dict:
    """``to_json()`` without the measured ``mean_seconds`` entries."""
    if isinstance(data, dict):
        return {k: _timeless_json(v) for k, v in data.items() if k != "mean_seconds"}
    return data


def test_same_settings_give_the_same_comparison(small: Comparison) -> None:
    again = run_comparison(
        STRATEGIES,
        datasets=["cifar10", "cifar100"],
        seeds=6,
        budget=30,
        strategy_params=PARAMS,
        dedupe=False,  # one trial per query: the tidy-table tests count them
        n_jobs=1,
    )
    assert _timeless_rows(again) == _timeless_rows(small)
    # every field but mean_seconds (measured)
    assert [dataclasses.replace(r, mean_seconds=0.0) for r in again.summary()] == [
        dataclasses.replace(r, mean_seconds=0.0) for r in small.summary()
    ]
    assert _timeless_json(again.to_json()) == _timeless_json(small.to_json())


def test_worker_processes_give_the_same_result_as_one_process(small: Comparison) -> None:
    calls: list[tuple[int, int]] = []
    pooled = run_comparison(
        STRATEGIES,
        datasets=["cifar10", "cifar100"],
        seeds=6,
        budget=30,
        strategy_params=PARAMS,
        dedupe=False,  # one trial per query: the tidy-table tests count them
        n_jobs=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert _timeless_rows(pooled) == _timeless_rows(small)
    assert _timeless_json(pooled.to_json()) == _timeless_json(small.to_json())
    # progress: starts at 0, grows, ends at the total of 2 strategies x 2 datasets x 6 seeds
    assert calls[0] == (0, 24) and calls[-1] == (24, 24)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_tidy_rows_follow_each_run(small: Comparison) -> None:
    rows = list(small.trial_rows())
    assert len(rows) == 2 * 2 * 6 * 30
    assert all(tuple(row) == TRIAL_COLUMNS for row in rows)
    order = [(r["strategy"], r["dataset"], r["seed"]) for r in rows]
    expected = [
        (s, d, seed) for s in STRATEGIES for d in ("cifar10", "cifar100") for seed in range(6)
    ]
    assert list(dict.fromkeys(order)) == expected
    for trials in _runs(rows, "random", "cifar100").values():
        assert [r["trial"] for r in trials] == list(range(30))
        assert [r["cum_cost"] for r in trials] == [float(i + 1) for i in range(30)]
        best = -math.inf
        for row in trials:
            best = max(best, row["valid_acc"])
            assert row["best_valid"] == best


def test_summary_recomputed_by_hand_from_trial_rows(small: Comparison) -> None:
    rows = list(small.trial_rows())
    budget = 25
    picks = [_pick(t, budget) for t in _runs(rows, "regularized-evolution", "cifar100").values()]
    tests = np.array([p["test_acc"] for p in picks])
    valids = np.array([p["valid_acc"] for p in picks])
    (row,) = [
        r
        for r in small.summary([budget])
        if r.strategy == "regularized-evolution" and r.dataset == "cifar100"
    ]
    assert isinstance(row, SummaryRow)
    assert row.budget == budget and row.n_runs == 6
    assert row.mean_test == pytest.approx(tests.mean(), abs=1e-12)
    assert row.std_test == pytest.approx(tests.std(ddof=1), abs=1e-12)
    assert row.mean_valid == pytest.approx(valids.mean(), abs=1e-12)
    random_mean = np.mean(
        [_pick(t, budget)["test_acc"] for t in _runs(rows, "random", "cifar100").values()]
    )
    assert row.ri == pytest.approx(100 * (tests.mean() - random_mean) / random_mean, abs=1e-9)


def test_default_budgets_and_random_ri_is_zero(small: Comparison) -> None:
    rows = small.summary()
    assert sorted({r.budget for r in rows}) == [10, 25, 30]
    assert [(r.dataset, r.budget, r.strategy) for r in rows[:2]] == [
        ("cifar10", 10, "regularized-evolution"),
        ("cifar10", 10, "random"),
    ]
    assert all(r.ri == 0.0 for r in rows if r.strategy == "random")


def test_random_is_added_as_the_baseline() -> None:
    comparison = run_comparison(["regularized-evolution"], seeds=2, budget=5, n_jobs=1)
    assert comparison.strategies == ("regularized-evolution", "random")
    assert {r.strategy for r in comparison.summary()} == {"regularized-evolution", "random"}


def test_evolution_beats_random_on_cifar10(cifar10_30_seeds: Comparison) -> None:
    rows = {r.strategy: r for r in cifar10_30_seeds.summary([100])}
    assert rows["regularized-evolution"].mean_test > rows["random"].mean_test
    assert rows["regularized-evolution"].ri > 0


def test_optimum_rate_counts_runs_that_found_the_best_validation_arch(
    cifar10_30_seeds: Comparison, bench
) -> None:
    optimum = float(np.nanmax(bench.column("cifar10", "valid_acc")))
    rows = list(cifar10_30_seeds.trial_rows())
    for summary_row in cifar10_30_seeds.summary([50, 100]):
        runs = _runs(rows, summary_row.strategy, "cifar10")
        hits = sum(
            _pick(t, summary_row.budget)["valid_acc"] >= optimum - 1e-9 for t in runs.values()
        )
        assert 0.0 <= summary_row.optimum_rate <= 1.0
        assert summary_row.optimum_rate == pytest.approx(hits / len(runs))
    # evolution finds the optimum in some of 30 runs of 100 queries; the number is pinned by
    # the seeds, and any hit shows the test can tell a hit from a miss
    best = {r.strategy: r for r in cifar10_30_seeds.summary([100])}
    assert best["regularized-evolution"].optimum_rate > 0


def test_write_creates_the_files(small: Comparison, tmp_path) -> None:
    paths = small.write(tmp_path / "out" / "nested")
    # table look-ups alone spend no time worth plotting: no time.png
    assert set(paths) == {"trials", "summary", "json", "plot"}
    assert not (tmp_path / "out" / "nested" / "time.png").exists()
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    with paths["trials"].open(newline="") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == TRIAL_COLUMNS
        assert sum(1 for _ in reader) == 2 * 2 * 6 * 30
    with paths["summary"].open(newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == len(small.summary())
    assert summary[0]["strategy"] == "regularized-evolution" and summary[0]["budget"] == "10"
    assert json.loads(paths["json"].read_text()) == small.to_json()
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # with a charge per query, time means something: time.png is drawn
    small.seconds_per_query = 30.0
    try:
        charged = small.write(tmp_path / "charged")
    finally:
        small.seconds_per_query = 0.0
    assert charged["time_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_to_json_layout(small: Comparison) -> None:
    data = small.to_json()
    assert data["benchmark"] == "nb201" and data["budget"] == 30 and data["n_seeds"] == 6
    assert set(data["datasets"]) == {"cifar10", "cifar100"}
    entry = data["datasets"]["cifar100"]["regularized-evolution"]
    assert set(entry["by_budget"]) == {"10", "25", "30"}
    per_row = ("by_budget", "dedupe", "knowledge")  # the strategy's, not the budget's
    assert entry["by_budget"]["30"] == {k: v for k, v in entry.items() if k not in per_row}
    assert entry["dedupe"] is False and entry["knowledge"] == "none"
    assert entry["test_regret"] == pytest.approx(
        data["test_optima"]["cifar100"] - entry["mean_test"]
    )
    assert data["strategies"] == data["datasets"]["cifar10"]
    json.dumps(data)  # plain data


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"strategies": []}, InvalidConfigError, "at least one"),
        ({"budget": 0}, InvalidConfigError, "budget"),
        ({"budget": -5}, InvalidConfigError, "budget"),
        ({"seeds": 0}, InvalidConfigError, "seeds"),
        ({"seeds": []}, InvalidConfigError, "seeds"),
        ({"seeds": [1, 1]}, InvalidConfigError, "more than once"),
        ({"n_jobs": 0}, InvalidConfigError, "n_jobs"),
        ({"strategies": ["random", "random"]}, InvalidConfigError, "more than once"),
        ({"strategies": ["random-serch"]}, UnknownNameError, "random"),
        ({"datasets": ["cifar11"]}, UnknownNameError, "cifar10"),
        ({"benchmark": "nb999"}, UnknownNameError, "nb201"),
        (
            {"strategies": STRATEGIES, "strategy_params": {"regularized-evolution": {"pop": 3}}},
            InvalidConfigError,
            "pop",
        ),
        ({"strategy_params": {"bananas": {}}}, InvalidConfigError, "not compared"),
    ],
)
def test_bad_inputs_raise_before_any_run(kwargs, error, words) -> None:
    settings = {"strategies": ["random"], "seeds": 2, "budget": 5, "n_jobs": 2} | kwargs
    strategies = settings.pop("strategies")
    calls: list[tuple[int, int]] = []
    with pytest.raises(error, match=words):
        run_comparison(strategies, progress=lambda d, t: calls.append((d, t)), **settings)
    assert calls == []  # nothing started


def test_summary_rejects_budgets_beyond_the_runs(small: Comparison) -> None:
    with pytest.raises(InvalidConfigError, match="exceeds"):
        small.summary([31])
    with pytest.raises(InvalidConfigError, match="positive"):
        small.summary([0])


def test_screening_trials_are_never_a_runs_best_and_are_marked_in_the_csv():
    comparison = run_comparison(["successive-halving"], seeds=2, budget=30, n_jobs=1)
    rows = [r for r in comparison.trial_rows() if r["strategy"] == "successive-halving"]
    screened = [r for r in rows if r["fidelity"] == "epochs=12"]
    assert screened and len(screened) < len(rows)
    full_valid = {r["valid_acc"] for r in rows if r["fidelity"] == ""}
    assert all(r["best_valid"] in full_valid for r in rows if r["best_valid"] == r["best_valid"])
    assert rows[-1]["cum_cost"] <= 30 + 1e-9


def test_dedupe_option_reaches_every_run():
    plain = run_comparison(["regularized-evolution"], seeds=3, budget=60, n_jobs=1, dedupe=False)
    deduped = run_comparison(["regularized-evolution"], seeds=3, budget=60, n_jobs=1, dedupe=True)
    n_plain = sum(1 for r in plain.trial_rows() if r["strategy"] == "regularized-evolution")
    n_dedup = sum(1 for r in deduped.trial_rows() if r["strategy"] == "regularized-evolution")
    assert n_dedup > n_plain  # free answers let the same budget see more proposals
    assert deduped.to_json()["dedupe"] is True
    # the default on NB201, which has a canonical form, is on
    default = run_comparison(["regularized-evolution"], seeds=3, budget=60, n_jobs=1)
    assert default.dedupe is True
    assert [r["arch"] for r in default.trial_rows()] == [r["arch"] for r in deduped.trial_rows()]


def test_both_settings_run_side_by_side_each_against_its_own_random():
    both = run_comparison(["regularized-evolution"], seeds=3, budget=40, n_jobs=1, dedupe="both")
    on = run_comparison(["regularized-evolution"], seeds=3, budget=40, n_jobs=1, dedupe=True)
    off = run_comparison(["regularized-evolution"], seeds=3, budget=40, n_jobs=1, dedupe=False)
    assert both.strategies == (
        "regularized-evolution[dedupe]",
        "random[dedupe]",
        "regularized-evolution[no-dedupe]",
        "random[no-dedupe]",
    )
    rows = {(r.strategy, r.budget): r for r in both.summary([40])}
    for single, suffix in ((on, "[dedupe]"), (off, "[no-dedupe]")):
        for r in single.summary([40]):
            twin = rows[(r.strategy + suffix, 40)]
            assert (twin.mean_test, twin.optimum_rate, twin.ri) == (
                r.mean_test,
                r.optimum_rate,
                r.ri,
            )
            assert twin.dedupe is single.dedupe
    assert rows[("random[dedupe]", 40)].knowledge == "dedupe (canonical)"
    assert rows[("random[no-dedupe]", 40)].knowledge == "none"
    assert both.baseline("regularized-evolution[no-dedupe]") == "random[no-dedupe]"


def test_a_strategy_told_otherwise_is_labelled():
    comp = run_comparison(
        ["pnas"], seeds=1, budget=10, n_jobs=1, dedupe=False,
        strategy_params={"pnas": {"canonical": True}},
    )  # fmt: skip
    knowledge = {r.strategy: r.knowledge for r in comp.summary([10])}
    assert knowledge == {"pnas": "none; strategy canonical=True", "random": "none"}


def test_regret_is_measured_from_the_best_test_accuracy():
    import nasforge

    comp = run_comparison(["random"], datasets=["imagenet16-120"], seeds=3, budget=20, n_jobs=1)
    best = float(np.max(nasforge.tabular.create("nb201").column("imagenet16-120", "test_acc")))
    assert comp.test_optima == {"imagenet16-120": pytest.approx(best)}
    for row in comp.summary([20]):
        assert row.test_regret == pytest.approx(best - row.mean_test) and row.test_regret > 0


@pytest.mark.parametrize("dedupe", ["sometimes", 1.5])
def test_bad_dedupe_settings_are_refused(dedupe):
    with pytest.raises(InvalidConfigError, match="dedupe must be one of"):
        run_comparison(["random"], seeds=1, budget=5, n_jobs=1, dedupe=dedupe)


def test_constrained_comparison_uses_the_feasible_optimum_and_never_reports_infeasible():
    import nasforge
    from nasforge.errors import InfeasibleConstraintError

    bench = nasforge.tabular.create("nb201")
    bound = float(np.median(bench.column("cifar10", "latency_ms[edgegpu]")))
    comparison = run_comparison(
        ["regularized-evolution"],
        seeds=3,
        budget=40,
        n_jobs=1,
        constraints=[f"latency_ms[edgegpu]<={bound}"],
    )
    feasible = bench.column("cifar10", "latency_ms[edgegpu]") <= bound
    assert comparison.optima["cifar10"] == pytest.approx(
        bench.column("cifar10", "valid_acc")[feasible].max()
    )
    space = nasforge.spaces.create("nb201")
    for row in comparison.trial_rows():
        if row["best_valid"] == row["best_valid"]:  # not NaN
            best = [r for r in comparison.trial_rows() if r["valid_acc"] == row["best_valid"]]
            arch = space.parse(best[0]["arch"])
            assert bench.query(arch, "cifar10", "latency_ms[edgegpu]") <= bound
            break
    with pytest.raises(InfeasibleConstraintError):
        run_comparison(["random"], seeds=1, budget=5, n_jobs=1, constraints=["params_M<=0.01"])


def test_the_12_epoch_table_is_searched_query_for_query():
    import nasforge

    comp = run_comparison(["random"], seeds=2, budget=15, n_jobs=1, fidelity=12)
    bench = nasforge.tabular.create("nb201")
    assert comp.optima["cifar10"] == pytest.approx(np.max(bench.column("cifar10", "valid_acc", 12)))
    rows = list(comp.trial_rows())
    paid = [r for r in rows if r["cost"] > 0]
    assert {r["cost"] for r in paid} == {1.0} and len(paid) == 2 * 15
    space = nasforge.spaces.create("nb201")
    for r in rows[:5]:
        arch = space.parse(r["arch"])
        assert r["valid_acc"] == pytest.approx(bench.query(arch, "cifar10", "valid_acc", 12))
    assert comp.to_json()["fidelity"] == 12
