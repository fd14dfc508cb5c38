"""Every registered evaluator, tabular benchmark, proxy and one-shot method passes its shared
contract (nasforge.testing), plugins included: the parameters are the registries' names.
(Spaces and strategies: tests/strategies/test_contract.py; storages: tests/storage.)"""

from __future__ import annotations

import math
from typing import Any

import pytest

from nasforge import evaluators, oneshot, proxies, spaces, tabular
from nasforge.errors import MissingDependencyError, UnknownNameError
from nasforge.testing import (
    HashEvaluator,
    check_benchmark,
    check_evaluator,
    check_oneshot,
    check_proxy,
)
from nasforge.trial import Direction, Result

MAX = Direction.MAXIMIZE

#: Small settings of nasforge's own evaluators; any other (a plugin) is built with defaults.
SMALL_EVALUATORS = {
    "tabular": {"dataset": "cifar10"},
    "proxy": {
        "space": "nb201",
        "proxies": ["synflow", "params"],
        "batch_size": 4,
        "build": {"channels": 4, "cells_per_stage": 1},
        "benchmark": "nb201",
    },
    "function": {
        "fn": "nasforge.testing.curves:report_curve",
        "pass_model": False,
        "space": "nb201",
    },
    "train": {
        "dataset": "synthetic",
        "synthetic": {"n_train": 32, "n_test": 8, "size": 8},
        "recipe": {"epochs": 1, "batch_size": 16},
        "channels": 4,
        "cells_per_stage": 1,
        "threads": 1,
        "hardware": False,
        "device": "cpu",
        "deterministic": True,
    },
}


def _latency_table_params() -> dict[str, Any]:
    """The ``latency-table`` evaluator on made-up entries for every layer of ``mobilenet``."""
    from nasforge.hardware.layer_lut import LayerLatencyTable

    space = spaces.create("mobilenet")
    entries = {spec.key: 0.01 * spec.kernel + 0.001 for spec in space.layer_specs()}
    table = LayerLatencyTable(entries, fixed_ms=0.5, backend="torch")
    return {"space": "mobilenet", "tables": table}


def _supernet_params(folder: Any) -> dict[str, Any]:
    """The ``supernet`` evaluator on an ``ofa-cifar`` supernet trained for two steps."""
    from nasforge.elastic import TrainSettings, train_supernet
    from nasforge.train.data import SyntheticImages

    synthetic = {"n_train": 128, "n_test": 8, "size": 8, "num_classes": 4}
    settings = TrainSettings(width_mult=0.25, epochs=1, batch_size=32, steps_per_epoch=2)
    data = SyntheticImages(**synthetic).load()
    train_supernet("ofa-cifar", "uniform", data, folder, settings, device="cpu", threads=1)
    return {"dir": str(folder), "dataset": "synthetic", "synthetic": synthetic,
            "recalibration_batches": 1, "valid_images": 32}  # fmt: skip


def _super_lm_params(folder: Any) -> dict[str, Any]:
    """The ``super-lm`` evaluator on the ``llm`` space's super-network trained two steps."""
    from nasforge.lm import TrainSettings, load_corpus, prepare_super_lm

    (folder / "text.txt").write_text("a small corpus of bytes. " * 40)
    steps = TrainSettings(steps=2, batch_size=2, warmup=1)
    corpus = load_corpus(folder / "text.txt")
    prepare_super_lm(folder / "lm", corpus=corpus, pretrain=steps, finetune=steps)
    return {"dir": str(folder / "lm"), "max_windows": 2}


def _super_transformer_params(folder: Any) -> dict[str, Any]:
    """The ``super-transformer`` evaluator on a ``vit-cifar`` super-transformer trained one step."""
    from nasforge.train.data import SyntheticImages
    from nasforge.transformer import ViTTrainSettings, train_super_vit

    synthetic = {"n_train": 32, "n_test": 4, "size": 32, "num_classes": 3}
    settings = ViTTrainSettings(epochs=1, batch_size=8, steps_per_epoch=1)
    data = SyntheticImages(**synthetic).load()
    train_super_vit("vit-cifar", folder, settings, data=data, device="cpu", threads=1)
    return {"dir": str(folder), "dataset": "synthetic", "synthetic": synthetic, "valid_images": 8}


@pytest.mark.parametrize("name", evaluators.names())
def test_evaluator_contract(name, tmp_path):
    params = _latency_table_params() if name == "latency-table" else SMALL_EVALUATORS.get(name, {})
    if name == "supernet":
        params = _supernet_params(tmp_path)
    if name == "super-lm":
        params = _super_lm_params(tmp_path)
    if name == "super-transformer":
        params = _super_transformer_params(tmp_path)
    try:
        evaluator = evaluators.create(name, **params)
    except MissingDependencyError as exc:
        pytest.skip(f"optional dependency missing: {exc}")
    check_evaluator(evaluator, samples=2 if evaluator.cost_unit == "seconds" else 3)


@pytest.mark.parametrize("name", tabular.names())
def test_benchmark_contract(name):
    check_benchmark(tabular.create(name))


@pytest.mark.parametrize("name", proxies.names())
def test_proxy_contract(name):
    check_proxy(name)


#: DARTS-PT decides the 28 edges of a DARTS cell pair one epoch each: about 3 minutes of a
#: 5-layer supernet on a loaded 2-core CPU, so it runs with the slow tests; so do its
#: searches of the mobile supernets (one epoch per searchable layer: 21 on mobilenet, 22 on
#: fbnet, 100 s and 40 s), and of the DARTS-shaped cells of the binary (BATS) and sparse (DASS)
#: spaces.
SLOW_ONESHOT = {
    ("darts-pt", "darts"),
    ("darts-pt", "bats"),
    ("darts-pt", "dass"),
    ("darts-pt", "mobilenet"),
    ("darts-pt", "fbnet"),
}

SUPERNET_PAIRS = [
    pytest.param(method, space, marks=[pytest.mark.slow] if (method, space) in SLOW_ONESHOT else [])
    for space in spaces.names()
    if spaces.create(space).supports("supernet")
    for method in oneshot.names()
]


#: Hyperparameters that keep nasforge's own one-shot methods fast (others use defaults).
SMALL_ONESHOT = {
    "spos": {"population": 4, "generations": 2, "top_k": 2},
    "darts-pt": {"proj_intv": 1, "proj_images": 4},
    "enas": {"derive_samples": 4, "controller_steps": 1},
    "random-ws": {"derive_samples": 4},
}


def _mobile_table() -> Any:
    """Made-up entries for every layer of ``mobilenet`` at the contract's setting (its
    reduced preset's network on 8x8 images of 4 classes), so that HURRICANE need not time its
    pool of blocks on this machine (two minutes)."""
    from nasforge.hardware.layer_lut import LayerLatencyTable

    space = spaces.create("mobilenet")
    reduced = space.presets()["reduced"]
    settings = {k: reduced[k] for k in ("width_mult", "stem_stride", "first_stride")}
    specs = space.layer_specs(num_classes=4, resolution=8, **settings)
    entries = {spec.key: 0.01 * spec.kernel * spec.expansion + 0.001 for spec in specs}
    return LayerLatencyTable(entries, fixed_ms=0.5, backend="torch")


@pytest.mark.parametrize(("method", "space"), SUPERNET_PAIRS)
def test_oneshot_contract(method, space):
    params = SMALL_ONESHOT.get(method)
    if method == "hurricane" and space == "mobilenet":
        params = {"table": _mobile_table(), "population": 4, "generations": 2, "top_k": 2}
    check_oneshot(method, space, params=params)


def test_the_evaluator_contract_catches_broken_evaluators(nb201):
    class Undeclared(HashEvaluator):
        def evaluate(self, arch, fidelity=None):
            result = super().evaluate(arch, fidelity)
            return Result({**result.metrics, "params_M": 1.0}, cost=result.cost)

    class Free(HashEvaluator):
        def evaluate(self, arch, fidelity=None):
            return Result(super().evaluate(arch, fidelity).metrics, cost=0.0)

    class Noisy(HashEvaluator):
        calls = 0

        def evaluate(self, arch, fidelity=None):
            super().evaluate(arch, fidelity)  # refuses other spaces
            self.calls += 1
            return Result({"valid_acc": float(self.calls)}, cost=1.0)

    class Unkept(HashEvaluator):
        @property
        def metrics(self):
            return {"valid_acc": MAX, "test_acc": MAX}

    class Lax(HashEvaluator):
        def evaluate(self, arch, fidelity=None):
            return HashEvaluator().evaluate(arch, fidelity)

    check_evaluator(HashEvaluator("nb201"))
    check_evaluator(Noisy("nb201"), deterministic=False)
    for broken, reason in [
        (Undeclared("nb201"), "undeclared metrics"),
        (Free("nb201"), "cost of"),
        (Noisy("nb201"), "evaluated twice"),
        (Lax("nb201"), "another space"),
        (Unkept("nb201"), r"declared metrics never returned: \['test_acc'\]"),
    ]:
        with pytest.raises(AssertionError, match=reason):
            check_evaluator(broken)


def test_the_benchmark_contract_catches_a_silent_benchmark(bench):
    class Silent(type(bench)):
        def query(self, arch, dataset, metric, fidelity=None):
            try:
                return super().query(arch, dataset, metric, fidelity)
            except UnknownNameError:
                return math.nan

    with pytest.raises(AssertionError, match="'no-such-dataset' was accepted"):
        check_benchmark(Silent())


@pytest.mark.parametrize("name", spaces.names())
def test_space_knows_its_registry_name(name):
    """Architectures carry their space's name and studies rebuild spaces by it."""
    assert spaces.create(name).name == name


@pytest.mark.parametrize("name", tabular.names())
def test_benchmark_knows_its_registry_name(name):
    assert tabular.create(name).name == name
