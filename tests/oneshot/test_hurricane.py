"""Behaviour of HURRICANE (issue 18, item 4): candidates chosen per device from its latency
table, and the two-stage search that picks the later layers first."""

from __future__ import annotations

import dataclasses

import pytest

from nasforge import oneshot, spaces
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError
from nasforge.evaluators.latency_table import LatencyTableEvaluator
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.oneshot import _engine
from nasforge.oneshot.base import SupernetSettings
from nasforge.oneshot.hurricane import (
    POOL_EXPANSIONS,
    POOL_KERNELS,
    Hurricane,
    block_macs,
    hardware_candidates,
)
from nasforge.ops.mobile_search_net import MobileNetSearchNet
from nasforge.train import SyntheticImages

SIDE = 8
BUILD = {"num_classes": 4, "width_mult": 0.25, "stem_stride": 1, "first_stride": 1}


@pytest.fixture(scope="module")
def space():  # type: ignore[no-untyped-def]
    return spaces.create("mobilenet")


@pytest.fixture(scope="module")
def probe(space):  # type: ignore[no-untyped-def]
    """The backbone's searchable layers (one candidate each: only their shapes matter)."""
    return MobileNetSearchNet(space, kernels=(3,), expansions=(3,), resolution=SIDE, **BUILD)


def _table(probe, k7: float = 1.0, drop: tuple[int, int, float] | None = None):  # type: ignore[no-untyped-def]
    """A device on which a block costs its multiply-adds, 7x7 kernels ``k7`` times that."""
    entries = {spec.key: 0.3 for spec in (*probe.front_specs, probe.head_spec)}
    for layer in probe.layers:
        for k in POOL_KERNELS:
            for e in POOL_EXPANSIONS:
                spec = dataclasses.replace(layer.specs[0], kernel=k, expansion=e)
                entries[spec.key] = block_macs(spec) / 1e5 * (k7 if k == 7 else 1.0)
    if drop is not None:
        position, k, e = drop
        del entries[dataclasses.replace(probe.layers[position].specs[0], kernel=k, expansion=e).key]
    return LayerLatencyTable(entries, fixed_ms=0.1, backend="torch")


def test_candidates_follow_the_device(probe) -> None:  # type: ignore[no-untyped-def]
    shapes = [layer.specs[0] for layer in probe.layers]
    cheap = hardware_candidates(shapes, _table(probe, k7=0.3), n_candidates=4)
    slow = hardware_candidates(shapes, _table(probe, k7=3.0), n_candidates=4)
    assert len(cheap.blocks) == len(slow.blocks) == 4
    assert all(k == 7 for k, _ in cheap.blocks)  # 7x7 does most per millisecond there
    assert all(k != 7 for k, _ in slow.blocks)  # and least here
    assert cheap.scores[(7, 6)] > cheap.scores[(3, 6)]
    assert slow.scores[(7, 6)] < slow.scores[(3, 6)]


def test_supernet_holds_the_devices_candidates_and_skip(space, probe) -> None:  # type: ignore[no-untyped-def]
    method = Hurricane(table=_table(probe, k7=3.0), preset="reduced", n_candidates=3)
    net = method.network(space, num_classes=4, resolution=SIDE)
    assert method.selection is not None
    chosen = set(method.selection.blocks)
    for (g, _), allowed in zip(method.sites, method.allowed, strict=True):
        blocks = {net.blocks[o] for o in allowed if o < len(net.blocks)}
        assert blocks == chosen  # exactly the device's candidates
        assert (len(net.blocks) in allowed) == (g == 1)  # the zero layer where skip is allowed
    assert all(k != 7 for k in {k for k, _ in net.blocks})


def test_two_stage_search_picks_the_later_layers_first(space, probe) -> None:  # type: ignore[no-untyped-def]
    table = _table(probe)
    data = SyntheticImages(num_classes=4, n_train=96, n_test=4, size=SIDE).load()
    build = {"resolution": SIDE, **BUILD}
    captured: list[Hurricane] = []

    class Recording(Hurricane):
        def setup(self, state):  # type: ignore[no-untyped-def]
            captured.append(self)
            super().setup(state)

    result = _engine.search(
        Recording(
            table=table,
            preset="reduced",
            population=4,
            generations=2,
            recal_images=16,
            eval_images=16,
            target_ms=1e9,
        ),
        "hurricane",
        data,
        space="mobilenet",
        settings=SupernetSettings(resolution=SIDE, batch_size=16),
        epochs=2,
        device="cpu",
        threads=1,
        evaluator=LatencyTableEvaluator("mobilenet", {"toy": table}, build=build),
        objectives=("latency_ms[toy]:min",),
    )
    trials = result.study.trials
    # one trial per generation, the later layers' stage first; none for the training epochs
    assert [t.metrics["stage"] for t in trials] == [1.0, 1.0, 2.0, 2.0]
    for trial in trials:
        assert trial.metrics["predicted_latency_ms"] == pytest.approx(
            trial.metrics["latency_ms[toy]"], rel=1e-9
        )
    method = captured[0]
    n = len(method.sites)
    later = method.searched(1)
    assert later == list(range(n - len(later), n))  # the deep end of the network
    assert set(method.searched(2)) == set(range(n)) - set(later)
    first = [options for stage, options, _ in method.history if stage == 1]
    second = [options for stage, options, _ in method.history if stage == 2]
    earlier = [i for i in range(n) if i not in later]
    for options in first:  # stage 1 varies the later layers, the earlier at their fastest
        assert [options[i] for i in earlier] == [method.fastest[i] for i in earlier]
    assert len({tuple(o[i] for i in later) for o in first}) > 1
    assert method.stage1_best is not None
    for options in second:  # stage 2 keeps stage 1's later layers
        assert [options[i] for i in later] == [method.stage1_best[i] for i in later]
    assert len({tuple(o[i] for i in earlier) for o in second}) > 1
    assert isinstance(oneshot.create("hurricane"), Hurricane)


def test_bad_input(space, probe) -> None:  # type: ignore[no-untyped-def]
    table = _table(probe)
    method = Hurricane(table=table, preset="reduced", target_ms=0.01)
    with pytest.raises(InfeasibleConstraintError, match="fastest reachable is"):
        method.network(space, num_classes=4, resolution=SIDE)
    missing = _table(probe, drop=(4, 5, 4))  # the first block of stage 2, a shape of its own
    with pytest.raises(InvalidConfigError, match=r"searchable layer 4 .* kernel 5 expansion 4"):
        Hurricane(table=missing, preset="reduced").network(space, num_classes=4, resolution=SIDE)
    measured = Hurricane(preset="reduced", n_candidates=2)  # no table: timed on this machine
    measured.network(space, num_classes=4, resolution=SIDE)
    assert measured.table is not None and len(measured.selection.blocks) == 2
    with pytest.raises(InvalidConfigError, match="n_candidates"):
        Hurricane(n_candidates=0)


def test_resumed_search_continues_as_an_uninterrupted_one(probe, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = _table(probe)
    path = table.to_csv(tmp_path / "toy.csv")  # a stored study names the table by its file
    data = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=SIDE).load()
    build = {"resolution": SIDE, **BUILD}
    params = {
        "table": str(path),
        "preset": "reduced",
        "population": 3,
        "generations": 2,
        "recal_images": 16,
        "eval_images": 16,
    }

    def run(folder, stop_after=None):  # type: ignore[no-untyped-def]
        folder.mkdir(exist_ok=True)

        def stop(study, trial):  # type: ignore[no-untyped-def]
            if stop_after is not None and len(study.trials) == stop_after:
                raise KeyboardInterrupt

        return oneshot.search(
            "hurricane",
            data,
            space="mobilenet",
            params=params,
            settings=SupernetSettings(resolution=SIDE, batch_size=16),
            epochs=2,
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
        run(tmp_path / "b", stop_after=2)  # after stage 1
    resumed = run(tmp_path / "b")
    assert resumed.resumed_from >= 2
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    assert [t.metrics["supernet_acc"] for t in resumed.study.trials] == [
        t.metrics["supernet_acc"] for t in whole.study.trials
    ]
