"""A small plugin distribution written into a folder: a package and its ``*.dist-info``.

``write_distribution(root, name, modules, entry_points)`` writes what ``pip install`` would
leave in site-packages (``METADATA`` and ``entry_points.txt``), so that putting ``root`` on
``sys.path`` or ``PYTHONPATH`` makes ``importlib.metadata`` find the plugin's entry points.

``nasforge-toy`` brings a space (``toy-chain``: four layers, each a conv, a pool or a skip),
a strategy (``toy-walk``), an evaluator (``toy-score``, a made-up deterministic score), a
tabular benchmark (``toy-bench``, the same score as a table) and a proxy (``toy_weights``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

TOY_SPACE = '''
"""A chain of four layers, each a conv, a pool or a skip."""
import itertools

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.spaces.base import Decision, SearchSpace

OPS = ("conv", "pool", "skip")
LAYERS = 4


class ChainSpace(SearchSpace):
    """A chain of four layers, each a conv, a pool or a skip (a plugin's space)."""

    name = "toy-chain"
    encodings = ("onehot",)

    def decisions(self):
        return tuple(Decision(f"layer{i}", OPS) for i in range(LAYERS))

    def sample(self, rng):
        return self.from_choices(rng.integers(len(OPS), size=LAYERS).tolist())

    def from_choices(self, choices):
        choices = tuple(int(c) for c in choices)
        if len(choices) != LAYERS or any(not 0 <= c < len(OPS) for c in choices):
            raise InvalidArchitectureError(
                f"toy-chain takes {LAYERS} choices in 0..{len(OPS) - 1}, got {choices}"
            )
        return Architecture(self.name, choices, "-".join(OPS[c] for c in choices))

    def parse(self, text):
        words = str(text).split("-")
        if len(words) != LAYERS or any(w not in OPS for w in words):
            raise InvalidArchitectureError(f"not a toy-chain architecture: {text!r}")
        return self.from_choices([OPS.index(w) for w in words])

    def neighbours(self, arch):
        out = []
        for layer in range(LAYERS):
            for op in range(len(OPS)):
                if op != arch.choices[layer]:
                    choices = list(arch.choices)
                    choices[layer] = op
                    out.append(self.from_choices(choices))
        return out

    def encode(self, arch, kind="onehot"):
        self.check_encoding(kind)
        return np.eye(len(OPS))[list(arch.choices)].ravel()

    @property
    def size(self):
        return len(OPS) ** LAYERS

    def __iter__(self):
        for choices in itertools.product(range(len(OPS)), repeat=LAYERS):
            yield self.from_choices(choices)
'''

TOY_SCORE = '''
"""A made-up deterministic score of toy-chain architectures, as an evaluator and a table."""
import numpy as np

from nasforge.errors import InvalidArchitectureError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.tabular.base import MetricInfo, TabularBenchmark
from nasforge.trial import Direction, Result

WEIGHTS = {0: 3.0, 1: 1.0, 2: 0.5}  # conv, pool, skip


def score(arch, epochs=10):
    if arch.space != "toy-chain":
        raise InvalidArchitectureError(f"toy-score scores toy-chain, got {arch.space!r}")
    return 50.0 + epochs * sum(WEIGHTS[c] * (i + 1) for i, c in enumerate(arch.choices)) / 10


class ChainScore(Evaluator):
    """Scores a toy-chain architecture by a weighted count of its operations."""

    space = "toy-chain"

    def __init__(self, dataset="toy"):
        self.dataset = dataset

    @property
    def metrics(self):
        return {"valid_acc": Direction.MAXIMIZE, "convs": Direction.MINIMIZE}

    def evaluate(self, arch, fidelity=None):
        convs = float(sum(c == 0 for c in arch.choices))
        return Result({"valid_acc": score(arch), "convs": convs}, cost=1.0)

    def spec(self):
        return {"name": "toy-score", "dataset": self.dataset}


class ChainBenchmark(TabularBenchmark):
    """The toy score as a table, at 5 and 10 epochs."""

    name = "toy-bench"
    space = "toy-chain"
    datasets = ("toy",)
    fidelities = (10, 5)

    def _check(self, dataset, fidelity):
        if str(dataset).lower() not in self.datasets:
            raise UnknownNameError("dataset of toy-bench", str(dataset), self.datasets)
        if fidelity is not None and fidelity not in self.fidelities:
            known = [str(f) for f in self.fidelities]
            raise UnknownNameError("fidelity of toy-bench", str(fidelity), known)
        return 10 if fidelity is None else fidelity

    def metrics(self, dataset, fidelity=None):
        self._check(dataset, fidelity)
        return [
            MetricInfo("valid_acc", Direction.MAXIMIZE, "%", "made-up validation accuracy"),
            MetricInfo("test_acc", Direction.MAXIMIZE, "%", "made-up test accuracy"),
        ]

    def query(self, arch, dataset, metric, fidelity=None):
        epochs = self._check(dataset, fidelity)
        if metric not in ("valid_acc", "test_acc"):
            raise UnknownNameError("metric of toy-bench", metric, ("valid_acc", "test_acc"))
        return score(arch, epochs) - (1.0 if metric == "test_acc" else 0.0)

    def query_all(self, arch, dataset, fidelity=None):
        return {m: self.query(arch, dataset, m, fidelity) for m in ("valid_acc", "test_acc")}

    def column(self, dataset, metric, fidelity=None):
        from nasforge.spaces import create

        values = [self.query(a, dataset, metric, fidelity) for a in create("toy-chain")]
        out = np.array(values)
        out.setflags(write=False)
        return out
'''

TOY_WALK = '''
"""Walk from the best architecture seen to a random neighbour."""
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal


class RandomWalk(Strategy):
    """Samples ``start`` architectures, then mutates the best one seen (a plugin's strategy)."""

    requires = ("sample", "mutate")

    def __init__(self, space, *, seed=0, start: int = 3):
        super().__init__(space, seed=seed)
        self.start = start
        self.told = 0
        self.best = None

    def ask(self):
        if self.best is None or self.told < self.start:
            return Proposal(self.space.sample(self.rng))
        return Proposal(self.space.mutate(self.best[1], self.rng))

    def tell(self, trial):
        self.told += 1
        if trial.score is not None and (self.best is None or trial.score > self.best[0]):
            self.best = (trial.score, trial.arch)
'''

TOY_PROXY = '''
"""The sum of the absolute weights of a network, as a plugin's proxy."""
from nasforge.proxies.base import Proxy


class WeightSum(Proxy):
    """Sum of absolute weights (data-free)."""

    name = "toy_weights"
    data = "none"

    def _score(self, model, batch, seed):
        return float(sum(p.detach().abs().sum() for p in model.parameters()))
'''

TOY_ENTRY_POINTS = {
    "nasforge.spaces": {"toy-chain": "nasforge_toy.space:ChainSpace"},
    "nasforge.strategies": {"toy-walk": "nasforge_toy.walk:RandomWalk"},
    "nasforge.evaluators": {"toy-score": "nasforge_toy.score:ChainScore"},
    "nasforge.benchmarks": {"toy-bench": "nasforge_toy.score:ChainBenchmark"},
    "nasforge.proxies": {"toy_weights": "nasforge_toy.proxy:WeightSum"},
}


def write_distribution(
    root: Path,
    name: str,
    modules: Mapping[str, str],
    entry_points: Mapping[str, Mapping[str, str]],
    version: str = "0.1",
) -> None:
    """Write package files ``modules`` (path -> source) and ``<name>-<version>.dist-info``."""
    for path, source in modules.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in entries.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))


def write_toy(root: Path) -> None:
    """The ``nasforge-toy`` distribution (see the module docstring)."""
    write_distribution(
        root,
        "nasforge-toy",
        {
            "nasforge_toy/__init__.py": "",
            "nasforge_toy/space.py": TOY_SPACE,
            "nasforge_toy/score.py": TOY_SCORE,
            "nasforge_toy/walk.py": TOY_WALK,
            "nasforge_toy/proxy.py": TOY_PROXY,
        },
        TOY_ENTRY_POINTS,
    )


@pytest.fixture
def write_plugin() -> Callable[..., None]:
    """:func:`write_distribution`, for tests that add a distribution of their own."""
    return write_distribution


@pytest.fixture
def plugin_root(tmp_path: Path) -> Path:
    """A folder holding the ``nasforge-toy`` distribution."""
    root = tmp_path / "site"
    root.mkdir()
    write_toy(root)
    return root


@pytest.fixture
def nasforge_cli() -> Callable[..., object]:
    """``run(root, *args)``: the real ``nasforge`` command in a subprocess, with ``root`` on
    ``PYTHONPATH``; returns the completed process (text output)."""
    import subprocess

    def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        env["OMP_NUM_THREADS"] = "1"
        done = subprocess.run(
            [sys.executable, "-m", "nasforge", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"nasforge {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    return run
