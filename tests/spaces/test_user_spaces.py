"""A user's space named by import path ("package.module:attribute") or made from the object
itself: spaces.create/get, from_function/from_module, and studies that record and resume it."""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import nasforge
from nasforge import spaces
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.define_by_run import DefineByRunSpace
from nasforge.testing import HashEvaluator
from nasforge.trial import TrialState

_COUNT = itertools.count()

MODULE = """
import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.spaces.base import Decision, SearchSpace


def space(trial):
    width = trial.choice("width", [4, 8, 16, 32])
    layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    if trial.boolean("second"):
        layers += [nn.Conv2d(width, width, trial.choice("kernel", [1, 3, 5]), padding="same")]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 2))


def two_arguments(a, b):
    return None


class Pair(SearchSpace):
    name = "pair"

    def decisions(self):
        return (Decision("a", (1, 2)), Decision("b", (1, 2, 3)))

    def from_choices(self, choices):
        checked = self.check_choices(choices)
        return Architecture(self.name, checked, "-".join(map(str, checked)))

    def parse(self, text):
        return self.from_choices([int(c) for c in text.split("-")])


PAIR = Pair()
NUMBER = 3
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of the user's written to a folder on the import path; its (unique) name."""
    name = f"user_space_{os.getpid()}_{next(_COUNT)}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


# -- spaces.create / spaces.get ------------------------------------------------------------
def test_an_import_path_names_a_define_by_run_space(user_module):
    name = f"{user_module}:space"
    space = spaces.create(name)
    assert isinstance(space, DefineByRunSpace) and space.name == name
    assert [d.name for d in space.decisions()] == ["width", "second", "kernel"]
    assert space.size == 16  # 4 widths x (no second layer, or one of 3 kernels)
    assert spaces.create(name) is space  # explored once per process
    assert spaces.get(name) is DefineByRunSpace
    arch = space.parse("width=8,second=True,kernel=3")
    assert arch.space == name
    assert space.build(arch)[2].kernel_size == (3, 3)


def test_an_import_path_names_a_searchspace_object_or_class(user_module):
    for attribute in ("Pair", "PAIR"):
        name = f"{user_module}:{attribute}"
        space = spaces.create(name)
        assert isinstance(space, SearchSpace) and type(space).__name__ == "Pair"
        assert space.name == name and space.parse("1-2").space == name
        assert spaces.get(name).__name__ == "Pair"
    assert importlib.import_module(user_module).PAIR.name == "pair"  # the user's is left as it was


def test_an_import_path_names_a_model_class_or_factory(user_module, tmp_path):
    module_space = pytest.importorskip("nasforge.spaces.module").ModuleSpace
    name = f"user_model_{os.getpid()}_{next(_COUNT)}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from torch import nn
            import nasforge.nn as nnf

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nnf.Conv2d(3, nnf.ValueChoice([4, 8], label="width"), 3)

            def make():
                return Net()
            """
        )
    )
    for attribute in ("Net", "make"):
        space = spaces.create(f"{name}:{attribute}")
        assert isinstance(space, module_space) and space.name == f"{name}:{attribute}"
        assert [d.name for d in space.decisions()] == ["width"]
        assert spaces.get(f"{name}:{attribute}") is module_space


def test_bad_import_paths_say_what_is_wrong(user_module):
    with pytest.raises(InvalidConfigError, match=r"no module 'no_such_module_x'.*PYTHONPATH"):
        spaces.create("no_such_module_x:space")
    with pytest.raises(InvalidConfigError, match=f"{user_module}' has no attribute 'spcae'"):
        spaces.create(f"{user_module}:spcae")
    with pytest.raises(InvalidConfigError, match="is a int object; a space is named by"):
        spaces.create(f"{user_module}:NUMBER")
    with pytest.raises(InvalidConfigError, match="taking 2 arguments"):
        spaces.get(f"{user_module}:two_arguments")
    with pytest.raises(InvalidConfigError, match="is the class Decision"):
        spaces.create(f"{user_module}:Decision")
    with pytest.raises(InvalidConfigError, match=r"'package\.module:attribute'"):
        spaces.create(":space")
    with pytest.raises(UnknownNameError, match="named by its import path"):
        spaces.create("my_space")


def test_a_module_that_fails_to_import_is_named(tmp_path, monkeypatch):
    name = f"broken_space_{os.getpid()}_{next(_COUNT)}"
    (tmp_path / f"{name}.py").write_text("import no_such_dependency_y\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InvalidConfigError, match=f"importing module '{name}' failed"):
        spaces.create(f"{name}:space")


# -- from_function / from_module -------------------------------------------------------------
def test_from_function_names_the_space_by_module_and_qualified_name(user_module):
    fn = importlib.import_module(user_module).space
    space = spaces.from_function(fn)
    assert space.name == f"{user_module}:space"
    assert spaces.create(space.name) is space

    def local(trial):
        return trial.choice("x", [1, 2])

    mine = spaces.from_function(local)
    assert mine.name.endswith(
        "test_from_function_names_the_space_by_module_and_qualified_name.<locals>.local"
    )
    assert spaces.create(mine.name) is mine
    other = spaces.from_function(lambda t: t.choice("y", [1, 2]))
    again = spaces.from_function(lambda t: t.choice("z", [1, 2]))
    assert other.name != again.name  # two lambdas of one module are two spaces
    with pytest.raises(InvalidConfigError, match="function of one argument, the trial"):
        spaces.from_function(importlib.import_module(user_module).two_arguments)
    with pytest.raises(InvalidConfigError, match=r"from_module takes an nn\.Module class"):
        spaces.from_module(local)


# -- studies -----------------------------------------------------------------------------------
def test_a_study_in_memory_takes_any_function_and_resumes_it(user_module):
    def local(trial):
        return [trial.choice(f"w{i}", [1, 2, 3]) for i in range(trial.integer("n", 1, 3))]

    storage = nasforge.storage.InMemoryStorage()
    evaluator = HashEvaluator()
    study = nasforge.create_study(
        space=spaces.from_function(local),
        strategy="regularized-evolution",
        storage=storage,
        study_name="mem",
    )
    study.optimize(evaluator, n_trials=6)
    resumed = nasforge.load_study("mem", storage).optimize(evaluator, n_trials=10)
    whole = nasforge.create_study(space=local, strategy="regularized-evolution")
    whole.optimize(evaluator, n_trials=10)
    assert [t.arch for t in resumed.trials] == [t.arch for t in whole.trials]


def test_a_persistent_study_refuses_a_space_it_could_not_import(tmp_path, user_module):
    def local(trial):
        return trial.choice("x", [1, 2])

    url = f"sqlite:///{tmp_path / 'refused.db'}"
    for space in (spaces.from_function(local), spaces.from_function(lambda t: t.choice("x", [1]))):
        with pytest.raises(InvalidConfigError, match="cannot be recorded in a persistent storage"):
            nasforge.create_study(space=space, storage=url)
    renamed = DefineByRunSpace(importlib.import_module(user_module).space, name="mine")
    with pytest.raises(InvalidConfigError, match="not an import path"):
        nasforge.create_study(space=renamed, storage=url)
    impostor = DefineByRunSpace(local, name=f"{user_module}:space")
    with pytest.raises(InvalidConfigError, match="gives another space"):
        nasforge.create_study(space=impostor, storage=url)
    with pytest.raises(InvalidConfigError, match="space_params are for a space given by name"):
        nasforge.create_study(space=spaces.from_function(local), space_params={"x": 1})


RESUME = """
import json, sys
import nasforge
from nasforge.testing import HashEvaluator

study = nasforge.load_study("dbr", sys.argv[1])
study.optimize(HashEvaluator(), n_trials=int(sys.argv[2]))
print(json.dumps([[t.arch.text, list(t.arch.choices)] for t in study.trials]))
"""


@pytest.mark.parametrize("given", ["name", "object"])
def test_a_sqlite_study_of_a_user_space_resumes_in_another_process(tmp_path, user_module, given):
    import json

    name = f"{user_module}:space"
    url = f"sqlite:///{tmp_path / 'dbr.db'}"
    fn = importlib.import_module(user_module).space
    space: Any = name if given == "name" else spaces.from_function(fn)
    study = nasforge.create_study(
        space=space,
        strategy="bananas",
        storage=url,
        study_name="dbr",
        strategy_params={"n_initial": 3, "n_candidates": 6, "n_parents": 2, "n_members": 2},
    )
    study.optimize(HashEvaluator(), n_trials=5)
    study.storage.close()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", RESUME, url, "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert len(there) == 9
    # the same search in one go, in this process, gives the same trials
    whole = nasforge.create_study(
        space=name,
        strategy="bananas",
        strategy_params={"n_initial": 3, "n_candidates": 6, "n_parents": 2, "n_members": 2},
    ).optimize(HashEvaluator(), n_trials=9)
    assert there == [[t.arch.text, list(t.arch.choices)] for t in whole.trials]
    back = nasforge.load_study("dbr", url)
    assert all(t.state is TrialState.COMPLETE for t in back.trials)
    assert back.space is spaces.create(name)
    assert back.space.build(back.best_trial.arch) is not None
