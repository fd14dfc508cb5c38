from __future__ import annotations

import gzip

import numpy as np
import pytest

import nasforge
from nasforge import strategies
from nasforge.errors import InvalidConfigError

A = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def table(tmp_path, nb201, n=30, seed=0):
    """A score table of n NB201 cells: 'good' is the cell's benchmark index order scrambled."""
    rng = np.random.default_rng(seed)
    rows = ["arch,dataset,nwot,synflow"]
    for i in range(n):
        rows.append(f"{nb201.from_index(i).text},cifar10,{rng.normal()},{rng.normal()}")
    path = tmp_path / "scores.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")
    return path


def test_queries_the_candidates_best_ranked_first(tmp_path, nb201):
    path = table(tmp_path, nb201)
    s = strategies.create("training-free", nb201, seed=0, scores=str(path), proxies=["nwot"])
    nwot = s.table.column("nwot")
    asked = [s.ask().arch for _ in range(30)]
    assert [s.table.row(a) for a in asked] == list(np.argsort(-nwot))
    assert s.ask().arch.space == "nb201"  # pool exhausted: random architectures


def test_several_proxies_rank_by_mean_rank(tmp_path, nb201):
    path = table(tmp_path, nb201)
    s = strategies.create("training-free", nb201, seed=0, scores=str(path),
                          proxies=["nwot", "synflow"])  # fmt: skip
    from nasforge.proxies.scores import rank_normalise

    mean = (rank_normalise(s.table.column("nwot")) + rank_normalise(s.table.column("synflow"))) / 2
    first = s.table.row(s.ask().arch)
    assert mean[first] == mean.max()


def test_computed_scores_on_real_networks(nb201):
    pytest.importorskip("torch")
    s = strategies.create("training-free", nb201, seed=0, proxies=["synflow"], pool_size=4)
    assert len(s.table) == 4 and s.table.source.startswith("computed")
    assert s.table.row(s.ask().arch) == int(np.argmax(s.table.column("synflow")))


def test_a_search_with_budget_20_on_a_table(tmp_path, nb201):
    path = table(tmp_path, nb201)
    study = nasforge.create_study(
        strategy="training-free", seed=0, strategy_params={"scores": str(path)}
    )
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    study.optimize(ev, n_trials=20)
    assert len({t.arch for t in study.trials}) == 20


def test_bad_parameters(nb201, tmp_path):
    with pytest.raises(InvalidConfigError, match="at least one proxy"):
        strategies.create("training-free", nb201, proxies=[], scores=str(table(tmp_path, nb201)))
    with pytest.raises(InvalidConfigError, match="pool_size"):
        strategies.create("training-free", nb201, pool_size=0, scores=str(table(tmp_path, nb201)))


def test_construction_scores_nothing_until_the_first_ask(nb201, monkeypatch):
    from nasforge.strategies import _candidates

    calls = []
    real = _candidates.proxy_candidates

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_candidates, "proxy_candidates", counted)
    for name in ("training-free", "robot"):
        strategy = strategies.create(name, nb201, seed=0, proxies=["params"], pool_size=8)
        assert calls == []  # building is cheap: nasforge list and create_study score nothing
        first = strategy.ask().arch
        assert len(calls) == 1 and first in strategy.table.archs
        calls.clear()
