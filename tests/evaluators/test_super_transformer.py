"""The super-transformer evaluator: inherited accuracy, closed-form costs and table latency as
free metrics, the accuracy cache in the supernet's folder, its spec, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasforge import evaluators, spaces
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.super_transformer import SuperTransformerEvaluator
from nasforge.hardware.layer_lut import LayerLatencyTable, layer_key
from nasforge.train import SyntheticImages
from nasforge.transformer import (
    ViTTrainSettings,
    subnet_accuracy,
    train_super_vit,
    training_data,
)
from nasforge.trial import Direction

SYNTHETIC = {"num_classes": 3, "n_train": 48, "n_test": 3, "size": 32, "seed": 1}
SETTINGS = ViTTrainSettings(batch_size=8, epochs=1, steps_per_epoch=1, lr=1e-3, seed=2)
SPACE = spaces.create("vit-cifar")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("super-vit")
    train_super_vit(SPACE, out, SETTINGS, data=SyntheticImages(**SYNTHETIC).load(), device="cpu")
    return out


def make(folder: Path, **kwargs: object) -> SuperTransformerEvaluator:
    return SuperTransformerEvaluator(
        folder, dataset="synthetic", synthetic=SYNTHETIC, valid_images=16, **kwargs
    )


def test_metrics_are_inherited_accuracy_and_closed_form_costs(folder: Path) -> None:
    ev = make(folder, cache=False)
    assert dict(ev.metrics) == {
        "valid_acc": Direction.MAXIMIZE,
        "params_M": Direction.MINIMIZE,
        "macs_M": Direction.MINIMIZE,
    }
    assert ev.free_metric_names == ("params_M", "macs_M")
    arch = SPACE.sample(np.random.default_rng(3))
    result = ev.evaluate(arch)
    costs = SPACE.costs(arch, num_classes=3)
    assert result.metrics["params_M"] == pytest.approx(costs["params_M"])
    assert result.metrics["macs_M"] == pytest.approx(costs["macs_M"])
    split = training_data(SPACE, SyntheticImages(**SYNTHETIC).load(), SETTINGS)
    expected = subnet_accuracy(ev.trained(), arch, split, images=16)
    assert result.metrics["valid_acc"] == pytest.approx(expected)
    assert dict(ev.free_metrics(arch)) == {k: result.metrics[k] for k in ("params_M", "macs_M")}


def test_accuracy_is_cached_in_the_folder(folder: Path) -> None:
    arch = SPACE.largest()
    first = make(folder)
    assert first.cached_accuracy(arch) is None
    value = first.evaluate(arch).metrics["valid_acc"]
    assert first.cache_path().parent == folder and first.cache_path().exists()
    second = make(folder)
    assert second.cached_accuracy(arch) == value
    assert make(folder, cache=False).cached_accuracy(arch) is None
    # another number of images is another key
    other = SuperTransformerEvaluator(
        folder, dataset="synthetic", synthetic=SYNTHETIC, valid_images=8
    )
    assert other.cache_path() != first.cache_path()


def test_table_latency_is_a_free_metric(folder: Path) -> None:
    specs = SPACE.layer_specs(num_classes=3)
    table = LayerLatencyTable(
        entries={layer_key(s): 1.0 for s in specs}, fixed_ms=0.5, backend="torch"
    )
    ev = make(folder, tables={"toy": table}, cache=False)
    assert "latency_ms[toy]" in ev.free_metric_names
    arch = SPACE.smallest()
    layers = SPACE.layers(arch, num_classes=3)
    assert ev.free_metrics(arch)["latency_ms[toy]"] == pytest.approx(0.5 + len(layers))
    assert ev.spec() is None  # a table built in memory cannot be stored


def test_registered_and_rebuilt_from_its_spec(folder: Path) -> None:
    ev = make(folder)
    spec = ev.spec()
    assert spec is not None and spec["name"] == "super-transformer"
    params = {k: v for k, v in spec.items() if k != "name"}
    again = evaluators.create("super-transformer", **params)
    assert again.spec() == spec


def test_bad_input(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="no trained super-transformer"):
        SuperTransformerEvaluator(tmp_path)
    with pytest.raises(InvalidConfigError, match="data=PATH"):
        SuperTransformerEvaluator(folder)
    with pytest.raises(InvalidConfigError, match="valid_images"):
        SuperTransformerEvaluator(folder, dataset="synthetic", synthetic=SYNTHETIC, valid_images=0)
    wrong = SuperTransformerEvaluator(
        folder, dataset="synthetic", synthetic={**SYNTHETIC, "n_train": 60}
    )
    with pytest.raises(InvalidConfigError, match="held-out half"):
        wrong.evaluate(SPACE.smallest())
    with pytest.raises(InvalidConfigError, match="fidelity"):
        make(folder).evaluate(SPACE.smallest(), {"epochs": 1})


def test_export_writes_the_chosen_sub_network_with_its_inherited_weights(folder, tmp_path):
    import torch

    from nasforge import export
    from nasforge.transformer import search_subvits

    result = search_subvits(
        make(folder), storage=f"sqlite:///{tmp_path / 's.db'}", study_name="vit",
        strategy="random", n_trials=3,
    )  # fmt: skip
    written = export.export_trial(result.study, tmp_path / "chosen.pt")
    model = export.load(written.path)
    best = result.study.best_trial
    supernet = make(folder).trained().supernet
    supernet.set_active(best.arch)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), supernet.eval()(x), atol=1e-5)
    assert written.trained
