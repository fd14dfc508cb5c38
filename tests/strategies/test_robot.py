from __future__ import annotations

import gzip

import numpy as np
import pytest

import nasforge
from nasforge import strategies
from nasforge.errors import InvalidConfigError


def table(tmp_path, nb201, bench, n=400):
    """Proxies of n cells: 'a' tracks validation accuracy noisily, 'b' is anti-correlated,
    'c' is noise. A good weight vector is positive on 'a', negative on 'b'."""
    rng = np.random.default_rng(0)
    rows = ["arch,dataset,nwot,synflow,jacov"]
    for i in range(n):
        arch = nb201.from_index(i)
        acc = bench.query(arch, "cifar10", "valid_acc")
        rows.append(
            f"{arch.text},cifar10,{acc + rng.normal(scale=3)},{-acc + rng.normal(scale=3)},"
            f"{rng.normal()}"
        )
    path = tmp_path / "scores.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")
    return path


def test_robot_beats_random_picks_from_its_pool(tmp_path, nb201, bench):
    path = str(table(tmp_path, nb201, bench))
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    params = {"scores": path, "proxies": ["nwot", "synflow", "jacov"], "explore_queries": 5}
    found = []
    for seed in range(5):
        study = nasforge.create_study(strategy="robot", seed=seed, strategy_params=params)
        study.optimize(ev, n_trials=10)
        found.append(study.best_trial.metrics["valid_acc"])
    pool = np.array([bench.query(nb201.from_index(i), "cifar10", "valid_acc") for i in range(400)])
    rng = np.random.default_rng(0)
    random_best = np.mean([rng.choice(pool, 10, replace=False).max() for _ in range(500)])
    assert np.mean(found) > random_best + 0.3
    assert np.mean(found) >= np.quantile(pool, 0.9)


def test_ridge_exploitation_ranks_by_a_fit_of_the_observed_scores(tmp_path, nb201, bench):
    path = str(table(tmp_path, nb201, bench))
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    params = {"scores": path, "proxies": ["nwot", "synflow", "jacov"], "explore_queries": 4,
              "exploit": "ridge"}  # fmt: skip
    study = nasforge.create_study(strategy="robot", seed=0, strategy_params=params)
    study.optimize(ev, n_trials=8)
    pool = np.array([bench.query(nb201.from_index(i), "cifar10", "valid_acc") for i in range(400)])
    assert study.best_trial.metrics["valid_acc"] >= np.quantile(pool, 0.9)


def test_phase_two_exploits_the_best_weights(tmp_path, nb201, bench):
    path = str(table(tmp_path, nb201, bench))
    s = strategies.create("robot", nb201, seed=0, scores=path,
                          proxies=["nwot", "synflow", "jacov"], explore_queries=3)  # fmt: skip
    from nasforge.trial import Trial, TrialState

    for number in range(6):
        proposal = s.ask()
        score = bench.query(proposal.arch, "cifar10", "valid_acc")
        s.tell(Trial(number, proposal.arch, TrialState.COMPLETE, scores=(score,)))
    assert s.explored == 3 and len(s.values) >= 3
    w = s.weights[int(np.argmax(s.values))]
    order = [int(r) for r in np.argsort(-(s.features @ w), kind="stable") if int(r) in s.proposed]
    assert len(s.proposed) == 6 and order  # exploitation follows the best w's ranking


def test_bad_parameters(nb201, tmp_path, bench):
    path = str(table(tmp_path, nb201, bench, n=5))
    with pytest.raises(InvalidConfigError, match="explore_queries"):
        strategies.create("robot", nb201, scores=path, proxies=["nwot"], explore_queries=-1)
    with pytest.raises(InvalidConfigError, match="exploit"):
        strategies.create("robot", nb201, scores=path, proxies=["nwot"], exploit="greedy")
    with pytest.raises(InvalidConfigError, match="Unknown parameter"):
        strategies.create("robot", nb201, scores=path, explor_queries=3)
