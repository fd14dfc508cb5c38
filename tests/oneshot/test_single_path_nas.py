"""Behaviour of Single-Path NAS (issue 18, item 4): the superkernel network of the mobilenet
space, its derived networks, its runtime-aware loss, and the search recorded as a study."""

from __future__ import annotations

import pytest
import torch

from nasforge import oneshot, spaces
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError
from nasforge.evaluators.latency_table import LatencyTableEvaluator
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.oneshot.base import SupernetSettings
from nasforge.oneshot.single_path_nas import SinglePathNAS
from nasforge.ops.single_path_net import SinglePathNetwork
from nasforge.train import SyntheticImages

SIDE = 8
BUILD = {"num_classes": 4, "width_mult": 0.25, "stem_stride": 1, "first_stride": 1}


@pytest.fixture(scope="module")
def space():  # type: ignore[no-untyped-def]
    return spaces.create("mobilenet")


def _net(space, seed: int = 0, resolution: int = SIDE) -> SinglePathNetwork:  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return SinglePathNetwork(space, resolution=resolution, **BUILD)


def _table(net: SinglePathNetwork, drop: str | None = None) -> LayerLatencyTable:
    """A table pricing each block by its multiply-adds (0.3 ms per fixed layer)."""
    entries = {spec.key: 0.3 for spec in net.fixed_specs}
    for layer in net.superkernels:
        for k in net.kernels:
            for e in net.expansions:
                spec = layer.spec(k, e)
                macs = spec.mid_channels * (spec.in_channels + k * k + spec.out_channels)
                entries[spec.key] = macs * spec.resolution**2 / 20000
    if drop is not None:
        del entries[drop]
    return LayerLatencyTable(entries, fixed_ms=0.1, backend="torch")


def _select_randomly(net: SinglePathNetwork, seed: int) -> None:
    """Thresholds drawn around the norms, so that the layers take mixed decisions."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.superkernels:
            for t in layer.threshold_parameters():
                t.copy_(2.5 * torch.rand(t.shape, generator=generator))


def test_derived_network_equals_the_superkernel_path(space) -> None:  # type: ignore[no-untyped-def]
    side = 2 * SIDE  # 2x2 after the last stride: the output varies with the input
    net = _net(space, resolution=side)
    _select_randomly(net, seed=3)
    blocks = net.decisions()
    assert None in blocks and len(set(blocks)) >= 3  # a mix of skips and blocks
    arch = net.derive()
    assert space.check(arch) == arch
    x = torch.randn(3, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # logits of weight 1, so that the comparison sees the features' differences (the
        # initial 0.01 would shrink them below the tolerance)
        torch.nn.init.normal_(net.head.classifier.weight, 0.0, 1.0)
        for module in net.modules():  # running statistics of the batch: eval mode keeps
            if isinstance(module, torch.nn.BatchNorm2d):  # the input's differences
                module.momentum = None
        net.train()
        net(x)
        net.eval()
        extracted = net.extract().eval()
        built = space.build(arch, resolution=side, **BUILD)
        assert built.specs == extracted.specs  # the extracted network is space.build's
        built.load_state_dict(extracted.state_dict())
        built.eval()
        out = net(x)
        assert (out[0] - out[1]).abs().max() > 1e-2  # the output depends on the input
        assert (built(x) - out).abs().max() <= 1e-5
        assert (extracted(x) - out).abs().max() <= 1e-5
    kept = sum(b is not None for b in blocks)
    assert len(built.specs) == kept + 4  # skipped layers are absent


def test_search_step_trains_one_network_of_the_largest_size(space) -> None:  # type: ignore[no-untyped-def]
    net = _net(space)
    largest = space.build(net.arch_of([(5, 6)] * len(net.positions)), resolution=SIDE, **BUILD)
    weights = sum(p.numel() for p in net.weight_parameters())
    assert weights == sum(p.numel() for p in largest.parameters())
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len([m for m in largest.modules() if isinstance(m, torch.nn.Conv2d)])


def test_runtime_is_the_tables_prediction_of_the_derived_network(space) -> None:  # type: ignore[no-untyped-def]
    net = _net(space)
    table = _table(net)
    tables, fixed = net.runtime_tables(table)
    for seed in (0, 1, 2):
        _select_randomly(net, seed)
        predicted = table.predict(space.layers(net.derive(), resolution=SIDE, **BUILD))
        assert float(net.runtime(tables, fixed).detach()) == pytest.approx(predicted, rel=1e-5)
    low, high = net.runtime_range(tables, fixed)
    assert low < predicted < high
    assert {spec.key for spec in net.all_specs()} == set(table.entries)


def test_latency_only_training_lowers_the_runtime_below_the_target(space) -> None:  # type: ignore[no-untyped-def]
    probe = _net(space)
    table = _table(probe)
    start = table.predict(space.layers(probe.derive(), resolution=SIDE, **BUILD))
    target = 0.5 * start
    method = SinglePathNAS(table=table, target_ms=target, preset="reduced")
    torch.manual_seed(0)
    net = method.network(space, num_classes=4, resolution=SIDE)
    optimizer = method.make_optimizer(net)
    runtimes = []
    for _ in range(60):
        optimizer.zero_grad()
        runtime = method.runtime(net)
        assert runtime is not None
        method.runtime_term(runtime).backward()
        optimizer.step()
        runtimes.append(float(runtime.detach()))
    assert runtimes[0] == pytest.approx(start, rel=1e-5)
    assert min(runtimes) < target
    final = table.predict(space.layers(net.derive(), resolution=SIDE, **BUILD))
    assert final < target


def test_target_no_network_meets_is_refused_with_the_fastest(space) -> None:  # type: ignore[no-untyped-def]
    net = _net(space)
    table = _table(net)
    low, _ = net.runtime_range(*net.runtime_tables(table))
    method = SinglePathNAS(table=table, target_ms=0.5 * low, preset="reduced")
    with pytest.raises(InfeasibleConstraintError, match=f"fastest reachable is {low:.4g} ms"):
        method.network(space, num_classes=4, resolution=SIDE)
    with pytest.raises(InvalidConfigError, match="needs the latency table"):
        SinglePathNAS(target_ms=10.0)


def test_table_missing_an_entry_names_the_layer_and_choice(space) -> None:  # type: ignore[no-untyped-def]
    net = _net(space)
    missing = net.superkernels[5].spec(5, 3)
    table = _table(net, drop=missing.key)
    with pytest.raises(InvalidConfigError) as error:
        net.runtime_tables(table)
    message = str(error.value)
    assert "searchable layer 5 (stage 2, block 1)" in message
    assert "kernel 5 expansion 3" in message and missing.key in message


def test_search_records_each_epochs_network_with_its_predicted_latency(space) -> None:  # type: ignore[no-untyped-def]
    table = _table(_net(space))
    evaluator = LatencyTableEvaluator(
        "mobilenet", {"toy": table}, build={"resolution": SIDE, **BUILD}
    )
    data = SyntheticImages(num_classes=4, n_train=96, n_test=4, size=SIDE).load()
    settings = SupernetSettings(resolution=SIDE, batch_size=16)
    result = oneshot.search(
        "single-path-nas",
        data,
        space="mobilenet",
        params={"table": table, "preset": "reduced", "target_ms": 30.0, "threshold_lr": 0.2},
        settings=settings,
        epochs=2,
        device="cpu",
        threads=1,
        evaluator=evaluator,
        objectives=("latency_ms[toy]:min",),
    )
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0]
    for trial in trials:
        assert trial.arch.space == "mobilenet"
        assert trial.metrics["predicted_latency_ms"] == pytest.approx(
            trial.metrics["latency_ms[toy]"], rel=1e-9
        )
        assert trial.metrics["latency_target_ms"] == 30.0
    first = table.predict(space.layers(trials[0].arch, resolution=SIDE, **BUILD))
    assert first == pytest.approx(trials[0].metrics["predicted_latency_ms"])
    assert isinstance(oneshot.create("single-path-nas"), SinglePathNAS)


def test_resumed_search_continues_as_an_uninterrupted_one(space, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = _table(_net(space))
    path = table.to_csv(tmp_path / "toy.csv")  # a stored study names the table by its file
    data = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=SIDE).load()
    build = {"resolution": SIDE, **BUILD}

    def run(folder, stop_after=None):  # type: ignore[no-untyped-def]
        folder.mkdir(exist_ok=True)

        def stop(study, trial):  # type: ignore[no-untyped-def]
            if stop_after is not None and len(study.trials) == stop_after:
                raise KeyboardInterrupt

        return oneshot.search(
            "single-path-nas",
            data,
            space="mobilenet",
            params={"table": str(path), "preset": "reduced", "threshold_lr": 0.3, "lam": 0.5},
            settings=SupernetSettings(resolution=SIDE, batch_size=16),
            epochs=3,
            device="cpu",
            threads=1,
            evaluator=LatencyTableEvaluator("mobilenet", [path], build=build),
            objectives=(f"{table.metric}:min",),
            storage=f"sqlite:///{folder}/s.db",
            study_name="s",
            checkpoint_dir=folder,
            callbacks=[stop],
        )

    whole = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_after=1)
    resumed = run(tmp_path / "b")
    assert resumed.resumed_from == 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    assert [t.metrics["train_loss"] for t in resumed.study.trials] == [
        t.metrics["train_loss"] for t in whole.study.trials
    ]
