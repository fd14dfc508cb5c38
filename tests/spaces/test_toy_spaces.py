"""The house's seam: two spaces that exist only in the tests (a chain of layers with one
operation choice each, a macro network with a kernel and a width per layer) run through
black-box strategies, the training evaluator and the one-shot methods with no change outside
their own files; and no module of ``src/`` compares a space's name outside that space's own
modules."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import nasforge
from nasforge import evaluators, oneshot
from nasforge.errors import UnsupportedOperationError
from nasforge.oneshot import SupernetSettings
from nasforge.train import SyntheticImages

from . import toy_chain, toy_macro

SPACES = [toy_chain.NAME, toy_macro.NAME]
SYNTHETIC = {"num_classes": 3, "n_train": 48, "n_test": 12, "size": 8}


def _evaluator(space: str):
    return evaluators.create(
        "train",
        dataset="synthetic",
        space=space,
        synthetic=SYNTHETIC,
        epochs=1,
        channels=4,
        hardware=False,
        threads=1,
        device="cpu",
    )


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        ("random", {}),
        ("regularized-evolution", {"population_size": 6, "tournament_size": 3}),
        ("bananas", {"n_initial": 4, "n_candidates": 10, "n_members": 2, "epochs": 20}),
        ("weaknas", {"initial_samples": 4, "batch_size": 2, "top_n_start": 20, "top_n_end": 4}),
    ],
)
def test_black_box_strategies_search_a_new_space_by_training(space, strategy, params):
    study = nasforge.create_study(space=space, strategy=strategy, seed=0, strategy_params=params)
    study.optimize(_evaluator(space), n_trials=8)
    trials = study.trials
    assert len(trials) == 8
    assert {t.arch.space for t in trials} == {space}
    assert all(0.0 <= t.metrics["valid_acc"] <= 100.0 for t in trials)
    again = nasforge.create_study(space=space, strategy=strategy, seed=0, strategy_params=params)
    again.optimize(_evaluator(space), n_trials=8)
    assert [t.arch for t in again.trials] == [t.arch for t in trials]  # replayable by seed


@pytest.fixture(scope="module")
def images():
    return SyntheticImages(num_classes=3, n_train=64, n_test=4, size=8).load()


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("method", ["darts", "gdas", "spos", "darts-pt"])
def test_one_shot_methods_search_a_new_space_through_its_supernet(space, method, images):
    params = {
        "spos": {
            "population": 4,
            "generations": 2,
            "top_k": 2,
            "recal_images": 16,
            "eval_images": 16,
        },
        "darts-pt": {"proj_intv": 1, "proj_images": 16},
    }.get(method, {})
    settings = SupernetSettings(channels=4, cells=1, batch_size=16)
    result = oneshot.search(
        method,
        images,
        space=space,
        params=params,
        settings=settings,
        epochs=2,
        device="cpu",
        evaluator=_evaluator(space),
    )
    trials = result.study.trials
    assert trials and all(t.arch.space == space for t in trials)
    assert result.arch is not None and result.arch.space == space
    assert all(0.0 <= t.metrics["param_free_share"] <= 1.0 for t in trials)
    if method == "darts-pt":  # one decision per layer choice, one recorded epoch each after
        supernet = result.study.space.supernet(channels=4)
        decisions = sum(rows for rows, _ in supernet.arch_shapes)
        assert len(trials) == 2 + decisions - 1


@pytest.mark.parametrize("space", SPACES)
def test_derive_takes_each_decisions_largest_weight_and_extract_equals_the_path(space):
    found = nasforge.spaces.create(space)
    torch.manual_seed(0)
    net = found.supernet(channels=4, num_classes=3)
    rng = np.random.default_rng(0)
    arch = found.sample(rng)
    index = net.path(arch)
    weights = [
        torch.nn.functional.one_hot(torch.tensor(row), n).float()
        for row, (_, n) in zip(index, net.arch_shapes, strict=True)
    ]
    assert net.derive(weights) == arch
    x = torch.randn(2, 3, 8, 8)
    for mode in (True, False):
        net.train(mode)
        standalone = net.extract(arch)
        with torch.no_grad():
            expected = net(x, None, index)
            got = standalone(x)
        assert torch.allclose(got, expected, atol=1e-5), (mode, float((got - expected).abs().max()))


@pytest.mark.parametrize("space", SPACES)
def test_presets_build_networks_and_the_data_settings_are_left_out(space):
    found = nasforge.spaces.create(space)
    arch = found.sample(np.random.default_rng(1))
    net = found.build_preset(arch, "reduced", num_classes=3)  # "reduced" names a resolution
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    assert SupernetSettings.reduced(found).resolution == 8
    with pytest.raises(nasforge.errors.UnknownNameError, match="'paper'"):
        found.build_preset(arch, "papr")


def test_mixing_weights_give_the_weighted_sum_of_the_candidates():
    found = nasforge.spaces.create(toy_chain.NAME)
    torch.manual_seed(0)
    net = found.supernet(channels=4, num_classes=3).eval()
    x = torch.randn(2, 3, 8, 8)
    w = torch.tensor([[0.2, 0.3, 0.4, 0.1], [1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    with torch.no_grad():
        mixed = net(x, [w])
        stem = net.net.stem(x)
        first = net.net.layers[0]
        by_hand = sum(float(w[0, o]) * first._run(o, stem) for o in range(4))
        rest = net.net.layers[2](net.net.layers[1](by_hand, w[1]), w[2])
        assert torch.allclose(mixed, net.net.head(rest), atol=1e-6)


def test_a_space_without_partial_channels_is_refused_before_anything_is_recorded(images):
    storage = nasforge.storage.get_storage(None)
    with pytest.raises(UnsupportedOperationError, match="partial channels"):
        oneshot.search(
            "pc-darts",
            images,
            space=toy_macro.NAME,
            settings=SupernetSettings(channels=4, cells=1, batch_size=16),
            epochs=1,
            device="cpu",
            evaluator=_evaluator(toy_macro.NAME),
            storage=storage,
        )
    assert storage.list_studies() == []


def test_a_space_without_a_supernet_names_the_capability():
    with pytest.raises(UnsupportedOperationError, match=r"capability supernet\(\)"):
        SupernetSettings.standard(_nosupernet())


def _nosupernet():
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import Decision, SearchSpace

    class Plain(SearchSpace):
        name = "plain"

        def decisions(self):
            return (Decision("a", (0, 1)),)

        def from_choices(self, choices):
            return Architecture("plain", tuple(choices), str(tuple(choices)))

        def parse(self, text):
            return self.from_choices([int(text[1])])

    return Plain()


# -- no space's name outside its own modules ------------------------------------------------
SRC = Path(nasforge.__file__).resolve().parent


def _own(path: Path, name: str) -> bool:
    """Whether ``path`` is one of space ``name``'s own modules (its space, operations,
    supernet, benchmark table)."""
    stem = path.stem.lstrip("_")
    return stem == name or stem.startswith(f"{name}_")


@pytest.mark.parametrize("name", sorted(nasforge.spaces.names()))
def test_no_module_compares_a_space_name_outside_the_space(name):
    quoted = rf"[\"']{re.escape(name)}[\"']"
    patterns = [
        rf"[=!]=\s*{quoted}",  # x == "nb201"
        rf"{quoted}\s*[=!]=",  # "nb201" == x
        rf"\bin\s*[\(\[{{][^\)\]}}]*{quoted}",  # x in ("nb201", ...)
        rf"{quoted}\s*:\s*[\{{\(\[]",  # {"nb201": {...}} per-space tables
    ]
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if _own(path, name):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(re.search(p, code) for p in patterns):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_grep_finds_a_comparison():
    line = 'if space == "nb201":'
    assert re.search(r"[=!]=\s*[\"']nb201[\"']", line)
    assert _own(SRC / "ops" / "nb201_supernet.py", "nb201")
    assert not _own(SRC / "oneshot" / "spos.py", "nb201")
