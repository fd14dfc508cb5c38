"""A one-shot search stores each recorded epoch's architecture weights as the reports of the
epoch's trial (``"w|<group>|<row>|<option>"``), where the method's weights mean something."""

from __future__ import annotations

import math

import pytest
import torch

from nasforge import oneshot
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot._weights import weight_reports
from nasforge.ops.supernet import PARAM_FREE
from nasforge.storage import InMemoryStorage
from nasforge.train import SyntheticImages

TINY = SupernetSettings(channels=4, cells=1, batch_size=16)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()


def _rows(report: dict[str, float]) -> dict[tuple[str, str], dict[str, float]]:
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in report.items():
        kind, group, *rest = key.split("|")
        if kind == "w":
            row, option = rest
            rows.setdefault((group, row), {})[option] = value
    return rows


def test_darts_stores_every_epochs_weights_as_reports_of_its_trial(data):
    storage = InMemoryStorage()
    result = oneshot.search(
        "darts", data, settings=TINY, epochs=2, device="cpu", storage=storage, study_name="d"
    )
    study_id = result.study.record.study_id
    reports = storage.get_reports(study_id)
    trials = result.study.trials
    assert sorted(reports) == [t.number for t in trials]
    supernet = _engine.build_supernet("nb201", TINY, num_classes=4)
    (group,) = supernet.groups
    for trial in trials:
        epoch = int(trial.metrics["epoch"])
        assert list(reports[trial.number]) == [epoch]  # step = the epoch recorded
        report = reports[trial.number][epoch]
        rows = _rows(report)
        assert sorted(rows) == sorted((group.name, str(r)) for r in range(group.rows))
        for options in rows.values():
            assert list(options) == list(group.options)  # in the group's order
            assert math.isclose(sum(options.values()), 1.0, rel_tol=1e-9)
            assert all(0.0 <= w <= 1.0 for w in options.values())
        free = {k.split("|")[2] for k in report if k.startswith("f|")}
        assert free == {o for o in group.options if o in PARAM_FREE}
        # the mean parameter-free mass recorded as a metric is the mean over these rows
        mass = sum(
            sum(w for o, w in options.items() if o in free) for options in rows.values()
        ) / len(rows)
        assert math.isclose(trial.metrics["param_free_weight"], mass, rel_tol=1e-5)


def test_weights_are_normalised_per_row():
    supernet = _engine.build_supernet("nb201", TINY, num_classes=4)
    (group,) = supernet.groups
    raw = torch.arange(1, group.rows * len(group.options) + 1, dtype=torch.float32)
    report = weight_reports(supernet, [raw.reshape(group.rows, len(group.options))])
    first = [report[f"w|{group.name}|0|{o}"] for o in group.options]
    total = sum(range(1, len(group.options) + 1))
    assert first == pytest.approx([i / total for i in range(1, len(group.options) + 1)])


def test_methods_without_meaningful_weights_store_no_reports(data):
    storage = InMemoryStorage()
    params = {"population": 2, "generations": 1, "top_k": 1, "recal_images": 16, "eval_images": 16}
    result = oneshot.search(
        "spos", data, settings=TINY, epochs=1, device="cpu", storage=storage, params=params
    )
    assert result.study.trials
    assert "param_free_weight" not in result.study.trials[0].metrics
    assert storage.get_reports(result.study.record.study_id) == {}
