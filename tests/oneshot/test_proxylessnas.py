"""Tests of ProxylessNAS on the mobile supernets (binarized paths, latency loss, trials)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mobile_testing import SETTINGS, SMALL, table_for

from nasforge import oneshot, spaces
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnsupportedOperationError
from nasforge.storage import get_storage
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=32).load()


def run(data, space="mobilenet", epochs=2, storage=None, **params):
    return oneshot.search(
        "proxylessnas",
        data,
        space=space,
        params={"warmup_epochs": 0, "arch_every": 1, **params},
        settings=SETTINGS,
        epochs=epochs,
        evaluator=HashEvaluator(space),
        storage=storage,
        device="cpu",
        threads=1,
    )


@pytest.mark.parametrize("space", ["mobilenet", "fbnet"])
def test_a_tiny_search_records_each_epoch_with_its_predicted_latency(data, space):
    net, table = table_for(space)
    result = run(data, space, table=table, target_ms=100.0)
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0]
    the_space = spaces.create(space)
    for trial in trials:
        layers = the_space.layers(trial.arch, num_classes=4, **SMALL)
        assert trial.metrics["predicted_latency_ms"] == pytest.approx(table.predict(layers))
        assert trial.metrics["latency_target_ms"] == 100.0
        assert net.contains(trial.arch)
        low, high = net.latency_range(table)
        assert low <= trial.metrics["expected_latency_ms"] <= high
    assert result.arch == trials[-1].arch


def test_a_strong_latency_weight_derives_a_faster_network(data):
    _, table = table_for("mobilenet")
    common = {"table": table, "arch_lr": 0.05}
    fast = run(data, lam=50.0, **common).study.trials[-1].metrics["predicted_latency_ms"]
    free = run(data, lam=0.0, **common).study.trials[-1].metrics["predicted_latency_ms"]
    assert fast < 0.8 * free


@pytest.mark.parametrize("loss", ["add#linear", "mul#log"])
def test_the_authors_losses_run_with_a_target(data, loss):
    _, table = table_for("mobilenet")
    low, _ = spaces.create("mobilenet").supernet(num_classes=4, **SMALL).latency_range(table)
    result = run(data, epochs=1, table=table, loss=loss, target_ms=2 * low)
    assert result.failed is None and len(result.study.trials) == 1


def test_the_weight_step_trains_only_the_sampled_path(data):
    from nasforge.oneshot import _engine
    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot.proxylessnas import ProxylessNAS

    net, table = table_for("mobilenet")
    method = ProxylessNAS(table=table, warmup_epochs=1, momentum=0.0, weight_decay=0.0)
    state = _engine.SearchState(
        supernet=net,
        data=SearchData.from_splits(data, SETTINGS),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=2,
        space=spaces.create("mobilenet"),
    )
    method.setup(state)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    alphas = [a.detach().clone() for a in method.alphas]
    batch = next(iter(state.data.paired(torch.Generator().manual_seed(1), state.device)))
    probe = torch.Generator().manual_seed(7)
    state.generator.set_state(probe.get_state())
    expected = method._paths(state, two=False, uniform=True)
    state.generator.set_state(probe.get_state())
    method.step(state, batch, epoch=0, step=0)  # a warm-up step: weights only
    assert all(torch.equal(a, b) for a, b in zip(alphas, method.alphas, strict=True))
    after = net.state_dict()
    for k, layer in enumerate(net.layers):
        g, r = net.sites[k]
        for i in range(len(layer.candidates)):
            prefix = f"layers.{k}.candidates.{i}."
            changed = any(
                not torch.equal(before[n], after[n])
                for n in before
                if n.startswith(prefix) and "num_batches" not in n and "running" not in n
            )
            assert changed == (i == expected[g][r] and layer.specs[i] is not None), (k, i)


def test_bad_input_is_refused(data):
    net, table = table_for("mobilenet")
    with pytest.raises(InvalidConfigError, match="choose from"):
        oneshot.create("proxylessnas", loss="mul")
    with pytest.raises(InvalidConfigError, match="needs target_ms"):
        oneshot.create("proxylessnas", loss="mul#log")
    with pytest.raises(InvalidConfigError, match="target_ms"):
        oneshot.create("proxylessnas", target_ms=-1.0)
    with pytest.raises(InvalidConfigError, match="backend"):
        oneshot.create("proxylessnas", backend="tflite")
    low, _ = net.latency_range(table)
    with pytest.raises(InfeasibleConstraintError, match=f"fastest reachable is {low:.4g} ms"):
        run(data, epochs=1, table=table, target_ms=low / 2)
    spec = net.layers[2].specs[5]
    _, partial = table_for("mobilenet", skip={spec.key})
    with pytest.raises(InvalidConfigError, match="no entry for the layer"):
        run(data, epochs=1, table=partial)
    storage = get_storage(None)
    with pytest.raises(UnsupportedOperationError, match="layers"):
        oneshot.search("proxylessnas", data, space="nb201", storage=storage, device="cpu")
    assert storage.list_studies() == []


def test_a_resumed_search_continues_exactly(data, tmp_path):
    from nasforge.oneshot import _engine

    _, table = table_for("mobilenet")

    def search(folder, stop=False):
        def halt(study, trial):
            if stop and len(study.trials) == 1:
                raise KeyboardInterrupt

        return oneshot.search(
            "proxylessnas",
            data,
            space="mobilenet",
            params={"table": table, "warmup_epochs": 0, "arch_every": 1, "arch_lr": 0.05},
            settings=SETTINGS,
            epochs=2,
            evaluator=HashEvaluator("mobilenet"),
            storage=f"sqlite:///{folder}/s.db",
            study_name="s",
            checkpoint_dir=folder,
            callbacks=[halt],
            device="cpu",
            threads=1,
        )

    whole = search(tmp_path)
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "b", stop=True)
    resumed = search(tmp_path / "b")
    assert resumed.resumed_from == 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    a = _engine.load_checkpoint(tmp_path / "oneshot.pt")["method_state"]["alphas"]
    b = _engine.load_checkpoint(tmp_path / "b" / "oneshot.pt")["method_state"]["alphas"]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
