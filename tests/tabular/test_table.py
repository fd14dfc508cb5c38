"""A benchmark table of one's own (nasforge.tabular.from_table): one call makes a space and a
tabular benchmark that every registered strategy searches, resumable in another process."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import nasforge
from nasforge import spaces, strategies, tabular
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnsupportedOperationError
from nasforge.tabular import from_table
from nasforge.tabular.table_example import example_table
from nasforge.testing import check_benchmark, check_evaluator, check_space

EXAMPLE = resources.files("nasforge.tabular").joinpath("data").joinpath("example_table.csv")
SETTINGS = {
    "metrics": ["valid_acc:max", "test_acc:max", "params_M:min"],
    "fidelity": "epochs",
    "cost": "train_seconds",
    "free": ["params_M"],
}
MULTI_OBJECTIVE = ("nsga2", "mo-local-search", "optuna-nsga2")
#: Strategies that generate architecture graphs (space.graph), which a table's space has not.
NEEDS_GRAPHS = ("diffusion-nag",)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    frame = pd.read_csv(str(EXAMPLE))
    frame.to_csv(folder / "bench.csv", index=False)
    frame.to_parquet(folder / "bench.parquet")
    return folder


def test_the_shipped_example_is_the_made_up_table():
    shipped = pd.read_csv(str(EXAMPLE))
    made = example_table()
    assert made.equals(shipped)
    assert len(shipped.drop_duplicates(["op1", "op2", "op3", "op4", "op5"])) == 500


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_one_call_makes_a_space_and_a_benchmark(files, suffix):
    space, evaluator = from_table(files / f"bench.{suffix}", **SETTINGS)
    assert space.size == 500 and [d.name for d in space.decisions()] == [
        "op1", "op2", "op3", "op4", "op5"
    ]  # fmt: skip
    assert space.decisions()[1].options == ("conv3x3", "none", "skip")
    frame = pd.read_csv(str(EXAMPLE))
    row = frame.iloc[6]
    arch = space.parse(",".join(f"op{i}={row[f'op{i}']}" for i in range(1, 6)))
    result = evaluator.evaluate(arch)
    assert result.metrics == {
        "valid_acc": row["valid_acc"],
        "test_acc": row["test_acc"],
        "params_M": row["params_M"],
    }
    assert evaluator.cost_unit == "seconds" and result.cost == row["train_seconds"]
    short = frame[(frame.epochs == 12) & (frame.op1 == row["op1"]) & (frame.op2 == row["op2"])
                  & (frame.op3 == row["op3"]) & (frame.op4 == row["op4"])
                  & (frame.op5 == row["op5"])].iloc[0]  # fmt: skip
    low = evaluator.evaluate(arch, {"epochs": 12})
    assert low.metrics["valid_acc"] == short["valid_acc"] and low.cost == short["train_seconds"]
    assert evaluator.free_metrics(arch) == {"params_M": row["params_M"]}
    check_space(space)
    check_evaluator(evaluator, space=space)
    with pytest.raises(nasforge.errors.UnknownNameError, match="'100'"):
        evaluator.evaluate(arch, {"epochs": 100})


def test_the_registered_defaults_pass_the_contracts():
    check_space(spaces.create("table"))
    check_benchmark(tabular.create("table"))
    bench = tabular.create("table")
    assert bench.fidelities == (200, 12) and bench.cost("table", 12) == 12 / 200


def test_without_a_cost_column_a_look_up_is_a_query_and_a_fidelity_its_share(files):
    space, evaluator = from_table(files / "bench.csv", metrics=["valid_acc"], fidelity="epochs",
                                  arch_columns=["op1", "op2", "op3", "op4", "op5"])  # fmt: skip
    arch = space.sample(np.random.default_rng(1))
    assert evaluator.cost_unit == "queries" and evaluator.evaluate(arch).cost == 1.0
    assert evaluator.evaluate(arch, {"epochs": 12}).cost == pytest.approx(0.06)
    assert set(evaluator.metrics) == {"valid_acc"}


def _partial():
    # 3 x 2 x 2 = 12 combinations, 5 of them rows
    return pd.DataFrame(
        {
            "op": ["conv", "pool", "conv", "skip", "pool"],
            "width": [16, 16, 32, 32, 32],
            "bias": [True, True, False, False, True],
            "acc": [90.0, 80.0, 93.0, 70.0, 85.0],
        }
    )


def test_a_partial_table_holds_only_its_rows_and_projects_other_choices():
    space, evaluator = from_table(_partial(), metrics={"acc": "max"})
    assert space.size == 5 and len(list(space)) == 5
    assert [d.options for d in space.decisions()] == [
        ("conv", "pool", "skip"), (16, 32), (False, True)
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    texts = {space.sample(rng).text for _ in range(200)}
    assert texts == {a.text for a in space}
    # skip,16,True is no row: conv,16,True and pool,16,True differ in one column (op); the
    # first in table order wins
    assert space.from_choices([2, 0, 1]).text == "op=conv,width=16,bias=True"
    # pool,32,False: rows 2, 3 and 4 are one column away, row 1 two: row 2
    assert space.from_choices([1, 1, 0]).text == "op=conv,width=32,bias=False"
    row = space.parse("op=conv,width=32,bias=False")
    assert space.from_choices(row.choices) == row
    neighbours = [a.text for a in space.neighbours(space.parse("op=pool,width=32,bias=True"))]
    assert neighbours == ["op=pool,width=16,bias=True"]
    skip = [a.text for a in space.neighbours(space.parse("op=skip,width=32,bias=False"))]
    assert skip == ["op=conv,width=32,bias=False"]
    # a row with no row one column away has its nearest rows as neighbours, in table order
    diagonal, _ = from_table(
        pd.DataFrame({"a": [0, 1, 2], "b": [0, 1, 2], "acc": [1.0, 2.0, 3.0]}), metrics=["acc"]
    )
    assert [a.text for a in diagonal.neighbours(diagonal.parse("a=1,b=1"))] == [
        "a=0,b=0",
        "a=2,b=2",
    ]
    assert diagonal.mutate(diagonal.parse("a=0,b=0"), np.random.default_rng(0)).text != "a=0,b=0"
    assert evaluator.evaluate(row).metrics == {"acc": 93.0}
    with pytest.raises(InvalidArchitectureError, match=r"not a row.*nearest row is"):
        space.parse("op=skip,width=16,bias=True")
    with pytest.raises(InvalidArchitectureError, match="values are"):
        space.parse("op=sepconv,width=16,bias=True")


def test_datasets_column_and_metrics_by_default():
    frame = pd.DataFrame({"task": ["a", "a", "b"], "op": ["x", "y", "x"], "score": [1.0, 2.0, 3.0]})
    space, evaluator = from_table(frame, arch_columns=["op"], dataset="task")
    assert evaluator.spec()["dataset"] == "a" and set(evaluator.metrics) == {"score"}
    bench = evaluator.benchmark
    assert bench.datasets == ("a", "b")
    assert bench.query(space.parse("op=x"), "b", "score") == 3.0
    assert np.isnan(bench.query(space.parse("op=y"), "b", "score"))


def _error(frame_or_path, **kwargs):
    with pytest.raises(InvalidConfigError) as info:
        from_table(frame_or_path, **kwargs)
    return str(info.value)


def test_bad_tables_are_refused_naming_what_is_wrong(tmp_path):
    dup = pd.DataFrame({"op": ["a", "b", "a"], "w": [1, 1, 1], "acc": [1.0, 2.0, 3.0]})
    message = _error(dup, metrics=["acc"])
    assert "op=a, w=1" in message and "rows 0, 2" in message
    message = _error(_partial(), metrics=["acc", "latency", "flops"])
    assert "['latency', 'flops']" in message and "['op', 'width', 'bias', 'acc']" in message
    text = _partial().assign(acc=["90", "n/a", "93", "70", "85"])
    message = _error(text, metrics=["acc"])
    assert "'acc'" in message and "row(s) 1" in message and "'n/a'" in message
    assert "empty" in _error(pd.DataFrame({"op": [], "acc": []}), metrics=["acc"])
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in _error(tmp_path / "empty.csv", metrics=["acc"])
    (tmp_path / "bench.xlsx").write_text("x")
    message = _error(tmp_path / "bench.xlsx", metrics=["acc"])
    assert "bench.xlsx" in message and ".parquet" in message
    assert "no benchmark table" in _error(tmp_path / "none.csv", metrics=["acc"]).lower()
    assert "metrics=" in _error(_partial())
    assert "both" in _error(_partial(), metrics=["acc"], arch_columns=["op", "acc"])
    blank = _partial().assign(op=["conv", None, "conv", "skip", "pool"])
    assert "'op'" in _error(blank, metrics=["acc"])
    assert "positive" in _error(_partial().assign(t=[1, 0, 1, 1, 1]), metrics=["acc"], cost="t")
    assert "'epochs'" in _error(_partial(), metrics=["acc"], fidelity="epochs")


def test_a_dataframe_lives_only_in_its_process():
    space, _ = from_table(_partial(), metrics=["acc"])
    code = f"import nasforge\nnasforge.spaces.create('table', **{space.params!r})\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "to_parquet" in done.stderr


def test_a_study_resumes_in_another_process(files, tmp_path):
    space, evaluator = from_table(files / "bench.parquet", **SETTINGS)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = nasforge.create_study(
        space="table", space_params=space.params, strategy="regularized-evolution",
        storage=url, study_name="mine", evaluator=evaluator,
        strategy_params={"population_size": 6, "tournament_size": 3},
    )  # fmt: skip
    study.optimize(evaluator, n_trials=8)
    code = (
        "import nasforge\n"
        f"study = nasforge.load_study('mine', {url!r})\n"
        "study.optimize(n_trials=20)\n"
        "print('|'.join(t.arch.text for t in study.trials))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # the space object alone: its params become the study's space_params
    whole = nasforge.create_study(
        space=space, strategy="regularized-evolution",
        strategy_params={"population_size": 6, "tournament_size": 3},
    )  # fmt: skip
    assert whole.record.space_params == space.params
    whole.optimize(evaluator, n_trials=20)
    assert done.stdout.strip().split("|") == [t.arch.text for t in whole.trials]


def _proxy_scores(space, path):
    """A made-up proxy score per row (what a zero-cost proxy file would hold)."""
    bench = tabular.create("table", **space.params)
    rows = [
        {"arch": a.text, "dataset": "table", "synflow": bench.query(a, "table", "params_M"),
         "params": bench.query(a, "table", "params_M")}
        for a in space
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _strategy_params(name, space, tmp_path):
    scores = {"scores": None, "dataset": "table"}
    if name in ("training-free", "robot"):
        scores["scores"] = _proxy_scores(space, tmp_path / "proxies.csv")
    return {
        "mnasnet-reward": {"metric": "params_M"},
        "pnas": {"epochs": 20, "n_members": 2},
        "weaknas": {"epochs": 20, "n_members": 2},
        "bananas": {"epochs": 20, "n_members": 2, "n_initial": 5},
        "training-free": {**scores, "proxies": ["synflow"]},
        "robot": {**scores, "proxies": ["synflow", "params"], "explore_queries": 4},
    }.get(name, {})


@pytest.mark.parametrize("name", strategies.names())
def test_every_registered_strategy_searches_the_table(name, files, tmp_path):
    space, evaluator = from_table(files / "bench.csv", **SETTINGS)
    objectives = ["valid_acc:max", "params_M:min"] if name in MULTI_OBJECTIVE else ["valid_acc:max"]
    params = _strategy_params(name, space, tmp_path)

    def run():
        study = nasforge.create_study(
            space=space, space_params=space.params, strategy=name, seed=0, evaluator=evaluator,
            objectives=objectives, strategy_params=params,
        )  # fmt: skip
        study.optimize(evaluator, n_trials=24)
        return study

    if name in NEEDS_GRAPHS:
        with pytest.raises(UnsupportedOperationError, match=r"graph\(\)"):
            run()
        return
    study = run()
    trials = study.trials
    assert len(trials) == 24 and all(t.arch.text in space.data.index for t in trials)
    complete = [t for t in trials if t.state.value == "COMPLETE"]
    assert complete and all("valid_acc" in t.metrics for t in complete)
    assert [t.arch for t in run().trials] == [t.arch for t in trials]


@pytest.mark.parametrize("name", ["training-free", "robot"])
def test_network_scoring_strategies_without_proxy_scores_are_refused(name, files):
    space, evaluator = from_table(files / "bench.csv", **SETTINGS)
    study = nasforge.create_study(
        space=space, space_params=space.params, strategy=name, evaluator=evaluator,
        strategy_params={"proxies": ["synflow"]},
    )  # fmt: skip
    with pytest.raises(UnsupportedOperationError, match="no model builder"):
        study.optimize(evaluator, n_trials=2)
