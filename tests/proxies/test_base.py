"""Shared proxy behaviour: registry, batches, shared passes, undefined values, determinism."""

from __future__ import annotations

import math

import pytest

from nasforge import proxies
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.proxies import UNDEFINED_SCORE, Batch

from .conftest import GOOD_CELL, NONE_CELL

torch = pytest.importorskip("torch")

ALL = [
    "epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params",
    "plain", "snip", "synflow", "zen",
]  # fmt: skip
#: The proxies that need transformer layers (nas_role attention and MLP modules).
TRANSFORMER = ["decoder_params", "dss", "synaptic_diversity", "synaptic_saliency"]
#: The costs of quantized and binary networks (a float network counts 32 bits).
BITS = ["bops", "model_bits"]


def test_registry_has_the_issue_proxies():
    assert proxies.names() == sorted(ALL + TRANSFORMER + BITS)
    assert [n for n in proxies.names() if proxies.get(n).requires] == TRANSFORMER
    assert proxies.create("grad-norm").name == "grad_norm"


def test_unknown_proxy_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="synflow"):
        proxies.create("synflw")


def test_compute_shares_passes_and_equals_each_proxy_alone(tiny_nb201, batch):
    model = tiny_nb201(GOOD_CELL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    together = proxies.compute(model, ALL, batch, seed=3)
    for name in ALL:
        alone = proxies.create(name).score(model, batch, seed=3)
        assert together[name] == pytest.approx(alone, rel=1e-6, abs=1e-9), name
    for key, value in model.state_dict().items():  # the model is left as it was
        assert torch.equal(value, before[key]), key


def test_deterministic_per_seed(nb201, batch):
    from nasforge.proxies.scores import compute_scores

    archs = [nb201.parse(GOOD_CELL), nb201.from_index(1)]
    build = {"channels": 4, "cells_per_stage": 1}
    a = compute_scores(nb201, archs, ALL, seed=5, batch_size=8, build=build, dataset="cifar10")
    from nasforge.proxies import scores as module

    module._MEMORY.clear()
    b = compute_scores(nb201, archs, ALL, seed=5, batch_size=8, build=build)
    c = compute_scores(nb201, archs, ALL, seed=6, batch_size=8, build=build)
    assert (a.values == b.values).all()
    assert (a.values != c.values).any()


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("plain", "grasp")])
def test_untrainable_network_ranks_below_a_normal_one(tiny_nb201, batch, name):
    # plain and grasp are signed (their sign is not a quality); every other proxy ranks a
    # network whose output ignores its input (all-none cell) below one that learns
    dead = proxies.create(name).score(tiny_nb201(NONE_CELL), batch)
    alive = proxies.create(name).score(tiny_nb201(GOOD_CELL), batch)
    assert not math.isnan(dead)
    assert dead < alive


def test_undefined_scores_are_documented_value_not_nan(tiny_nb201, batch, caplog):
    model = tiny_nb201(NONE_CELL)
    scores = proxies.compute(model, ["jacov", "nwot", "epe_nas", "zen"], batch)
    assert scores == dict.fromkeys(scores, UNDEFINED_SCORE)
    assert "undefined" in caplog.text


def test_network_without_parameters_scores_zero_or_undefined(batch):
    empty = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    zero_batch = Batch(batch.inputs[:, :, :1, :1], batch.targets % 3, 3)
    scores = proxies.compute(
        empty, ["params", "l2_norm", "synflow", "snip", "grad_norm"], zero_batch
    )
    assert scores == {"params": 0.0, "l2_norm": 0.0, "synflow": 0.0, "snip": 0.0, "grad_norm": 0.0}
    assert proxies.create("grasp").score(empty, zero_batch) == 0.0


def test_bad_batches_are_clear_errors():
    with pytest.raises(InvalidConfigError, match="N, C, H, W"):
        Batch(torch.zeros(3, 8, 8), torch.zeros(3, dtype=torch.long), 10)
    with pytest.raises(InvalidConfigError, match="targets of shape"):
        Batch(torch.zeros(4, 3, 8, 8), torch.zeros(3, dtype=torch.long), 10)
    with pytest.raises(InvalidConfigError, match="class indices"):
        Batch(torch.zeros(4, 3, 8, 8), torch.full((4,), 12), 10)
    with pytest.raises(InvalidConfigError, match="floating-point"):
        Batch(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), 10)


def test_batch_that_does_not_fit_the_network(tiny_nb201, batch):
    model = tiny_nb201(GOOD_CELL)
    with pytest.raises(InvalidConfigError, match="num_classes=3"):
        proxies.create("snip").score(model, Batch(batch.inputs, batch.targets % 3, 3))
    with pytest.raises(RuntimeError):  # 1 channel into a 3-channel stem: torch says why
        proxies.create("nwot").score(model, Batch(batch.inputs[:, :1], batch.targets, 10))


def test_not_a_module_is_refused(batch):
    with pytest.raises(UnsupportedOperationError, match=r"space\.build"):
        proxies.create("snip").score("not a model", batch)
    with pytest.raises(UnsupportedOperationError, match="AdaptiveAvgPool2d"):
        proxies.create("zen").score(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10)), batch
        )


def test_bit_costs_follow_the_precisions_of_a_network(tiny_nb201, batch):
    from nasforge.ops.binary import binarize
    from nasforge.ops.quant import quantize_model

    model = tiny_nb201(GOOD_CELL)
    weights = sum(p.numel() for p in model.parameters())
    assert proxies.create("model_bits").score(model, batch) == pytest.approx(32 * weights / 1e6)
    int4 = quantize_model(model, "int4")
    assert proxies.create("model_bits").score(int4, batch) < weights * 8 / 1e6
    full = proxies.create("bops").score(model, batch)
    assert proxies.create("bops").score(int4, batch) == pytest.approx(full / 64, rel=0.05)
    assert proxies.create("bops").score(binarize(model), batch) < full / 4
