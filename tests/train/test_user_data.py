"""A user's data read into tensors (Dataset, DataLoader, tensors), its split, and the loop
that trains on it with a user loss and metric."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from nasforge.errors import InvalidConfigError
from nasforge.train import DatasetError, Recipe, UserData
from nasforge.train.user_data import METRICS, default_loss, fit, materialise, measure


def _blobs(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) * 0.3 + nn.functional.one_hot(y, 4).float() * 2
    return x, y


def _stack_pairs(batch):
    return torch.stack([b[0] for b in batch]), torch.tensor([int(b[1]) for b in batch])


class Pairs(Dataset):
    def __init__(self, x, y, bad_at=None, bad=None):
        self.x, self.y, self.bad_at, self.bad = x, y, bad_at, bad

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if i == self.bad_at:
            return self.bad
        return self.x[i], int(self.y[i])


class Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y, strict=True))


def test_every_source_gives_the_same_tensors():
    x, y = _blobs()
    expected = materialise((x, y))
    sources = [
        Pairs(x, y),
        TensorDataset(x, y),
        DataLoader(Pairs(x, y), batch_size=7),
        DataLoader(Pairs(x, y), batch_size=7, collate_fn=_stack_pairs),
        Stream(x, y),
        (x.numpy(), y.numpy()),
        [(x[i], y[i]) for i in range(len(x))],
    ]
    for source in sources:
        got = materialise(source)
        assert torch.equal(got.inputs, expected.inputs), type(source)
        assert torch.equal(got.targets, expected.targets), type(source)
        assert got.targets.dtype == torch.int64


def test_a_loader_with_its_own_collate_is_read_through_its_batches():
    x, y = _blobs(10)
    doubled = DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=lambda b: (
        torch.stack([i[0] for i in b]) * 2, torch.stack([i[1] for i in b])))  # fmt: skip
    assert torch.equal(materialise(doubled).inputs, x * 2)


def test_a_shuffling_loader_gives_its_items_in_order_and_a_sampler_its_subset():
    from torch.utils.data import SubsetRandomSampler

    x, y = _blobs(20)
    shuffled = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True)
    assert torch.equal(materialise(shuffled).inputs, x)  # the same in every process
    subset = DataLoader(TensorDataset(x, y), batch_size=3, sampler=SubsetRandomSampler(range(5)))
    got = materialise(subset)
    assert len(got) == 5 and {tuple(r.tolist()) for r in got.inputs} == {
        tuple(r.tolist()) for r in x[:5]
    }


def test_split_is_seeded_class_balanced_and_disjoint():
    x, y = _blobs(60)
    data = UserData((x, y), valid_fraction=0.25, seed=3)
    assert (len(data.train), len(data.valid)) == (45, 15)
    assert torch.bincount(data.valid.targets).tolist() == [5, 5, 5]
    rows = {tuple(r.tolist()) for r in data.train.inputs} | {
        tuple(r.tolist()) for r in data.valid.inputs
    }
    assert len(rows) == 60  # every item on exactly one side
    again = UserData(Pairs(x, y), valid_fraction=0.25, seed=3)
    assert torch.equal(again.valid.inputs, data.valid.inputs)
    other = UserData((x, y), valid_fraction=0.25, seed=4)
    assert not torch.equal(other.valid.inputs, data.valid.inputs)
    assert (data.num_classes, data.task, data.input_shape) == (3, "classification", (4,))


def test_given_splits_dtypes_and_classes():
    x, y = _blobs(30)
    data = UserData(
        (x.double().numpy(), y.int()), valid=(x[:5], y[:5]), test=TensorDataset(x[:4], y[:4])
    )
    assert len(data.train) == 30 and len(data.valid) == 5 and len(data.test) == 4
    assert data.train.inputs.dtype == torch.float32  # float64 arrays become torch's default
    assert data.num_classes == 3
    assert UserData((x, y), num_classes=5).num_classes == 5
    with pytest.raises(DatasetError, match="class 2 but num_classes=2"):
        UserData((x, y), num_classes=2)
    with pytest.raises(DatasetError, match="0 or more"):
        UserData((x, y - 1))


def test_sequences_and_index_inputs_keep_their_shape_and_dtype():
    tokens = torch.randint(0, 50, (20, 12))
    data = UserData((tokens, torch.arange(20) % 2))
    assert data.train.inputs.dtype == torch.int64 and data.input_shape == (12,)
    nodes = UserData((torch.arange(30), torch.arange(30) % 4))  # node indices of one graph
    assert nodes.input_shape == () and nodes.num_classes == 4


def test_regression_targets():
    x = torch.randn(40, 3)
    data = UserData((x, x.sum(1)))
    assert data.task == "regression" and data.num_classes is None
    assert data.train.targets.dtype == torch.float32
    with pytest.raises(DatasetError, match="regression"):
        UserData((x, x.sum(1)), num_classes=3)
    with pytest.raises(DatasetError, match="integers in some splits"):
        UserData((x, x.sum(1)), valid=(x[:4], torch.zeros(4, dtype=torch.long)))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (torch.zeros(4), "Item 5 of the training data is a Tensor, not an (input, target)"),
        ((torch.zeros(4), 1, 2), "Item 5 of the training data is a tuple of 3"),
        ({"x": torch.zeros(4), "y": 1}, "Item 5 of the training data is a dict"),
        (((torch.zeros(4), torch.zeros(2)), 1), "input of item 5 of the training data is a tuple"),
        ((torch.zeros(5), 1), "item 5 of the training data has shape (5,), item 0's (4,)"),
    ],
)
def test_items_that_are_not_input_target_pairs_are_named(bad, words):
    x, y = _blobs(10)
    with pytest.raises(DatasetError, match=re.escape(words)):
        UserData(Pairs(x, y, bad_at=5, bad=bad))


def test_bad_sources_and_settings():
    with pytest.raises(DatasetError, match="int; give a torch Dataset"):
        UserData(3)
    with pytest.raises(DatasetError, match="Batch 0 of the validation DataLoader"):
        x, y = _blobs(10)
        UserData((x, y), valid=DataLoader(x, batch_size=4, collate_fn=lambda b: torch.stack(b)))
    with pytest.raises(InvalidConfigError, match="valid_fraction"):
        UserData(_blobs(10), valid_fraction=1.0)
    with pytest.raises(DatasetError, match="empty split"):
        UserData(_blobs(2), valid_fraction=0.1)
    with pytest.raises(DatasetError, match="100 inputs but 3 targets"):
        UserData((torch.zeros(100, 2), torch.zeros(3)))


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def test_fit_learns_is_seeded_and_uses_the_user_loss():
    data = UserData(_blobs(90), valid_fraction=0.3)
    recipe = Recipe(epochs=15, batch_size=16, lr=0.1, weight_decay=0.0)
    calls = []

    def loss(out, y):
        calls.append(len(y))
        return nn.functional.cross_entropy(out, y)

    a, b = _mlp(), _mlp()
    loss_a, steps = fit(a, data.train, recipe, loss=loss, seed=5)
    fit(b, data.train, recipe, loss=default_loss("classification"), seed=5)
    assert steps == 15 * 4 and len(calls) == steps and sum(calls) == 15 * 63
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    accuracy = measure(a, data.valid, METRICS["accuracy"][0])
    assert accuracy >= 90.0 and np.isfinite(loss_a)
    c = _mlp()
    fit(c, data.train, recipe, loss=loss, seed=6)  # another batch order
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_regression_fit_and_metrics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 3, generator=g)
    data = UserData((x, x @ torch.tensor([1.0, -2.0, 0.5])))
    model = nn.Linear(3, 1)
    before = measure(model, data.valid, METRICS["mse"][0])
    fit(model, data.train, Recipe(epochs=30, batch_size=16, lr=0.05, weight_decay=0.0),
        loss=default_loss("regression"), seed=0)  # fmt: skip
    after = measure(model, data.valid, METRICS["mse"][0])
    assert after < 0.05 * before
    assert measure(model, data.valid, METRICS["mae"][0]) < 0.3
    with pytest.raises(InvalidConfigError, match="returns one number"):
        measure(model, data.valid, lambda out, y: "good")
