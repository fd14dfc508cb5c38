"""Study.ask/tell, enqueue_trial and create_study with objects: the same record as optimize,
replayed exactly on resume, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import nasforge
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.storage import InMemoryStorage
from nasforge.trial import Result, TrialState

EVOLUTION = {"population_size": 8, "tournament_size": 3}


def bench() -> Evaluator:
    return nasforge.evaluators.create("tabular", dataset="cifar10")


def record(study: nasforge.Study) -> list[tuple[str, str, dict[str, float], float]]:
    return [(t.arch.text, t.state.value, t.metrics, t.cost) for t in study.trials]


def by_hand(study: nasforge.Study, evaluator: Evaluator, n: int) -> nasforge.Study:
    for _ in range(n):
        trial = study.ask()
        assert trial.state is TrialState.RUNNING
        study.tell(trial, evaluator.evaluate(trial.arch, trial.fidelity))
    return study


def evolution(**kwargs) -> nasforge.Study:
    # without dedupe unless asked: one ask is then one evaluation, as one trial of optimize
    kwargs.setdefault("dedupe", False)
    return nasforge.create_study(
        strategy="regularized-evolution", strategy_params=EVOLUTION, **kwargs
    )


# -- ask / tell -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 5])
def test_ask_tell_gives_the_trials_of_optimize(seed):
    ev = bench()
    auto = evolution(seed=seed).optimize(ev, n_trials=30)
    manual = by_hand(evolution(seed=seed), ev, 30)
    assert record(manual) == record(auto)
    assert manual.best_trial.arch == auto.best_trial.arch
    assert manual.n_finished == 30


@pytest.mark.parametrize("options", [{"constraints": ["params_M<=0.6"]}, {"dedupe": True}])
def test_ask_records_free_answers_like_optimize(options):
    ev = bench()
    settings = {"seed": 2, "evaluator": ev, **options}
    auto = evolution(**settings).optimize(ev, n_trials=40)
    manual = evolution(**settings)
    while manual.n_finished < 40:
        trial = manual.ask()  # proposals rejected or answered for free are recorded on the way
        manual.tell(trial, ev.evaluate(trial.arch, trial.fidelity))
    assert record(manual)[: len(auto.trials)] == record(auto)
    free = [t for t in auto.trials if t.cost == 0]
    assert free  # the options did answer some proposals without evaluation


def test_ask_needs_an_evaluator_for_constraints():
    study = nasforge.create_study(seed=0, constraints=["params_M<=0.6"])
    with pytest.raises(InvalidConfigError, match=r"study.ask\(evaluator\)"):
        study.ask()
    trial = study.ask(bench())
    assert trial.metrics == {} and trial.state is TrialState.RUNNING
    study.tell(trial, {"valid_acc": 80.0})
    assert "params_M" in trial.metrics  # the constrained value known for free is recorded


def test_ask_tell_study_resumes_and_replays_like_optimize(tmp_path):
    ev = bench()
    url = f"sqlite:///{tmp_path / 's.db'}"
    by_hand(evolution(seed=3, storage=url, study_name="hand"), ev, 12)
    # replay the hand-driven record, then finish it with optimize (and the other way round)
    resumed = nasforge.load_study("hand", url).optimize(ev, n_trials=25)
    evolution(seed=3, storage=url, study_name="auto").optimize(ev, n_trials=12)
    other = by_hand(nasforge.load_study("auto", url), ev, 13)
    straight = evolution(seed=3).optimize(ev, n_trials=25)
    assert record(resumed) == record(straight) == record(other)


def test_told_objects_and_shortcuts():
    study = nasforge.create_study(seed=0, objectives=["valid_acc:max", "params_M:min"])
    first = study.ask()
    done = study.tell(first.number, [91.0, 1.5])  # objective values in order, by number
    assert done is first and first.state is TrialState.COMPLETE
    assert first.metrics == {"valid_acc": 91.0, "params_M": 1.5}
    assert first.scores == (91.0, -1.5) and first.cost == 1.0
    second = study.ask()
    study.tell(second, Result({"valid_acc": 80.0, "params_M": 0.5}, cost=2.5, seconds=4.0))
    assert (second.cost, second.seconds) == (2.5, 4.0)
    third = study.ask()
    study.tell(third, state="failed", fail_reason="out of memory")
    assert third.state is TrialState.FAILED and third.fail_reason == "out of memory"
    assert not third.retryable and study.n_finished == 3 and study.spent == 3.5
    assert study.best_trial is first


def test_ask_holds_the_worker_alive_until_told(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = nasforge.create_study(seed=0, storage=url, study_name="s")
    trial = study.ask()
    # another Study object in this process (or another worker) must not declare it dead
    other = nasforge.load_study("s", url)
    assert other.trials[trial.number].state is TrialState.RUNNING
    study.tell(trial, {"valid_acc": 90.0})
    assert nasforge.load_study("s", url).trials[0].state is TrialState.COMPLETE


# -- enqueue_trial ----------------------------------------------------------------------------
def test_enqueued_architectures_come_first_in_order_and_are_told(nb201):
    ev = bench()
    rng = np.random.default_rng(42)
    mine = [nb201.sample(rng) for _ in range(3)]
    study = evolution(seed=1)
    told = []
    tell = study._strategy.tell
    study._strategy.tell = lambda trial: (told.append(trial.arch), tell(trial))
    study.enqueue_trial(str(mine[0]))
    study.enqueue_trial(mine[1])
    study.optimize(ev, n_trials=4)
    assert [t.arch for t in study.trials[:2]] == mine[:2]
    study.enqueue_trial(mine[2], fidelity={"epochs": 12})  # after 4 trials: trial 4 takes it
    by_hand(study, ev, 6)
    assert study.trials[4].arch == mine[2] and study.trials[4].fidelity == {"epochs": 12}
    assert told == [t.arch for t in study.trials]  # enqueued results are told like the rest
    # the enqueued trials did not ask the strategy: its first proposal comes third
    plain = evolution(seed=1).optimize(ev, n_trials=2)
    assert [t.arch for t in study.trials[2:4]] == [t.arch for t in plain.trials]


def test_enqueued_trials_survive_a_resume_and_replay(tmp_path, nb201):
    ev = bench()
    url = f"sqlite:///{tmp_path / 's.db'}"
    rng = np.random.default_rng(7)
    mine = [nb201.sample(rng) for _ in range(3)]
    study = evolution(seed=2, storage=url, study_name="q")
    study.optimize(ev, n_trials=5)
    for arch in mine:
        study.enqueue_trial(arch)
    study.optimize(ev, n_trials=6)  # takes the first enqueued one
    resumed = nasforge.load_study("q", url)  # replays without a mismatch
    assert record(resumed) == record(study)
    resumed.optimize(ev, n_trials=12)
    assert [t.arch for t in resumed.trials[5:8]] == mine
    again = nasforge.load_study("q", url)
    assert record(again) == record(resumed)
    # the same settings still open the study (the queue is not a creation setting)
    evolution(seed=2, storage=url, study_name="q", load_if_exists=True)


def test_a_worker_sees_what_another_enqueued(nb201):
    storage = InMemoryStorage()
    ev = bench()
    first = evolution(seed=4, storage=storage, study_name="w")
    second = nasforge.load_study("w", storage)
    third = nasforge.load_study("w", storage)
    by_hand(first, ev, 3)
    arch = nb201.sample(np.random.default_rng(3))
    first.enqueue_trial(arch)
    trial = second.ask()  # another Study object on the storage takes it
    assert trial.arch == arch
    second.tell(trial, ev.evaluate(trial.arch))
    by_hand(first, ev, 2)  # first replays second's trial from the queue, then goes on
    by_hand(third, ev, 1)  # third never saw the queue: it reads it to replay trial 3
    assert record(nasforge.load_study("w", storage)) == record(third)
    assert record(third)[:6] == record(first)


# -- objects or names -------------------------------------------------------------------------
def test_objects_and_names_give_identical_studies(tmp_path):
    ev = bench()
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = nasforge.spaces.create("nb201")
    strategy = nasforge.strategies.create("regularized-evolution", space, seed=9, **EVOLUTION)
    by_object = nasforge.create_study(
        space=space, strategy=strategy, storage=url, study_name="o", dedupe=False
    ).optimize(ev, n_trials=20)
    by_name = evolution(seed=9, space="nb201", storage=url, study_name="n")
    by_name.optimize(ev, n_trials=20)
    assert by_object.record.strategy == "regularized-evolution"
    assert by_object.record.strategy_params == by_name.record.strategy_params
    assert by_object.record.differences(by_name.record) == []
    assert record(by_object) == record(by_name)
    # the object is a specification only: the study asked its own copy
    assert strategy.rng.bit_generator.state == np.random.default_rng(9).bit_generator.state
    assert record(nasforge.load_study("o", url)) == record(by_object)
    # a strategy object alone brings its space; the seed may be repeated
    alone = nasforge.create_study(strategy=strategy, seed=9, dedupe=False).optimize(ev, n_trials=20)
    assert record(alone) == record(by_name)


def test_bad_objects_are_refused_before_anything_is_written():
    nb201 = nasforge.spaces.create("nb201")
    darts = nasforge.spaces.create("darts")
    on_darts = nasforge.strategies.create("random", darts, seed=0)
    with pytest.raises(InvalidConfigError, match="searches space 'darts'"):
        nasforge.create_study(space=nb201, strategy=on_darts)
    with pytest.raises(InvalidConfigError, match="searches space 'darts'"):
        nasforge.create_study(space="nb201", strategy=on_darts)
    seeded = nasforge.strategies.create("random", nb201, seed=3)
    with pytest.raises(InvalidConfigError, match="contradicts the seed"):
        nasforge.create_study(strategy=seeded, seed=4)
    with pytest.raises(InvalidConfigError, match="strategy_params are for a strategy"):
        nasforge.create_study(strategy=seeded, strategy_params={"x": 1})
    unseeded = nasforge.strategies.create("random", nb201, seed=None)
    with pytest.raises(InvalidConfigError, match="seed=None"):
        nasforge.create_study(strategy=unseeded)
    cls = type(seeded)
    own = type("MyRandom", (cls,), {"registry_name": "random"})(nb201, seed=0)
    with pytest.raises(InvalidConfigError, match="not the class registered"):
        nasforge.create_study(strategy=own)
    with pytest.raises(InvalidConfigError, match="registry name"):
        nasforge.create_study(strategy=object())  # type: ignore[arg-type]


# -- bad input to ask / tell / enqueue ---------------------------------------------------------
def test_tell_refuses_unknown_told_and_foreign_trials():
    storage = InMemoryStorage()
    study = nasforge.create_study(seed=0, storage=storage, study_name="t")
    with pytest.raises(InvalidConfigError, match="has no trial 0"):
        study.tell(0, {"valid_acc": 1.0})
    trial = study.ask()
    with pytest.raises(InvalidConfigError, match="has no trial 5"):
        study.tell(5, {"valid_acc": 1.0})
    with pytest.raises(InvalidConfigError, match="no value for objective 'valid_acc'"):
        study.tell(trial, {"valid_ac": 93.0})
    with pytest.raises(InvalidConfigError, match="2 value"):
        study.tell(trial, [1.0, 2.0])
    with pytest.raises(InvalidConfigError, match="COMPLETE, FAILED or STOPPED"):
        study.tell(trial, {"valid_acc": 1.0}, state=TrialState.RUNNING)
    with pytest.raises(InvalidConfigError, match="needs the metrics"):
        study.tell(trial)
    other = nasforge.load_study("t", storage)
    with pytest.raises(InvalidConfigError, match="this Study object's ask"):
        other.tell(trial.number, {"valid_acc": 1.0})
    with pytest.raises(InvalidConfigError, match="asked and not told"):
        study.optimize(bench(), n_trials=3)
    assert trial.state is TrialState.RUNNING  # refusals record nothing
    study.tell(trial, {"valid_acc": 90.0})
    with pytest.raises(InvalidConfigError, match="already COMPLETE; a trial is told once"):
        study.tell(trial, {"valid_acc": 91.0})
    with pytest.raises(InvalidConfigError, match="trial from ask"):
        study.tell("0", {"valid_acc": 1.0})  # type: ignore[arg-type]


def test_enqueue_refuses_architectures_of_another_space():
    study = nasforge.create_study(seed=0)
    darts_arch = nasforge.spaces.create("darts").sample(np.random.default_rng(0))
    with pytest.raises(InvalidArchitectureError):
        study.enqueue_trial(darts_arch)
    with pytest.raises(InvalidArchitectureError):
        study.enqueue_trial("|not_an_op~0|+|")
    assert "enqueued" not in study.record.options


@pytest.mark.parametrize("name", ["nb201+recipe", "nb201+quant", "nb201+binary"])
def test_a_space_object_with_a_form_is_recorded_by_its_name(name, tmp_path):
    """A wrapped space built by its name is recorded as that name and resumes; built with
    other settings it needs the space_params that say so."""
    url = f"sqlite:///{tmp_path / 'forms.db'}"
    study = nasforge.create_study(
        space=nasforge.spaces.create(name), strategy="random", storage=url, study_name="f"
    )
    assert (study.record.space, study.record.space_params) == (name, {})
    assert type(nasforge.load_study("f", url).space) is type(study.space)
    if name == "nb201+quant":
        other = nasforge.spaces.create(name, precisions=("int4", "int8"))
        with pytest.raises(InvalidConfigError, match="pass the space_params"):
            nasforge.create_study(space=other)
        kept = nasforge.create_study(space=other, space_params={"precisions": ["int4", "int8"]})
        assert kept.space.decisions() == other.decisions()
