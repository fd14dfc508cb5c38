"""The README's model (``nasforge.nn`` choices inside a user's ``nn.Module``) searched from the
command line by regularized evolution, BANANAS, DARTS and SPOS, on synthetic images and on a
user's own data set named by import path."""

from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path

import pytest
from cli_testing import invoke, search_json

import nasforge

README = Path(__file__).resolve().parents[2] / "README.md"
_COUNT = itertools.count()

DATA = """
import torch
from torch.utils.data import TensorDataset

_g = torch.Generator().manual_seed(0)
_labels = torch.arange(160) % 4
_images = torch.randn(160, 3, 8, 8, generator=_g) + _labels.view(-1, 1, 1, 1).float()
DATA = TensorDataset(_images, _labels)
"""


def readme_model() -> str:
    """The model of the README's "Your model as a search space" (its imports, block and Net)."""
    text = README.read_text()
    section = text[text.index("### Your model as a search space") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    return code.group(1)[: code.group(1).index("space = ModuleSpace")]


@pytest.fixture
def user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"readme_model_{os.getpid()}_{next(_COUNT)}"
    (tmp_path / f"{name}.py").write_text(readme_model())
    (tmp_path / f"{name}_data.py").write_text(DATA)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    return name


def _recorded(out: dict, space_name: str, count: int) -> None:
    assert out["space"] == space_name
    assert out["n_trials"] == count
    space = nasforge.spaces.create(space_name)
    arch = space.parse(out["best"]["arch"])
    assert str(arch) == out["best"]["arch"]
    assert len(arch.choices) == 4  # width, kernel, op, depth


@pytest.mark.parametrize(
    ("strategy", "params"),
    [("regularized-evolution", ["--param", "population_size=2", "--param", "tournament_size=2"]),
     ("bananas", ["--param", "n_initial=2"])],
)  # fmt: skip
def test_black_box_strategies_search_the_readme_model(
    user_folder: str, strategy: str, params: list[str]
) -> None:
    out = search_json(
        "--space", f"{user_folder}:Net", "--strategy", strategy, *params, "--evaluator", "train",
        "--dataset", "synthetic", "--epochs", "1", "--trials", "3", "--device", "cpu",
    )  # fmt: skip
    _recorded(out, f"{user_folder}:Net", 3)
    assert 0.0 <= out["best"]["metrics"]["valid_acc"] <= 100.0


@pytest.mark.parametrize(
    ("method", "params"), [("darts", []), ("spos", ["--param", "population=4",
                                                   "--param", "generations=1"])]
)  # fmt: skip
def test_one_shot_methods_search_the_readme_model(
    user_folder: str, method: str, params: list[str]
) -> None:
    out = search_json(
        "--space", f"{user_folder}:Net", "--strategy", method, *params, "--dataset", "synthetic",
        "--data-fraction", "0.3", "--batch-size", "32", "--epochs", "1", "--device", "cpu",
        "--evaluator", "train", "--evaluator-param", "epochs=1",
    )  # fmt: skip
    _recorded(out, f"{user_folder}:Net", 1)
    assert out["oneshot"]["method"] == method


def test_darts_searches_the_readme_model_on_a_dataset_named_by_import_path(
    user_folder: str,
) -> None:
    """--data module:DATA is the user's Dataset; without a table the derived network is
    trained briefly on it (the one-shot default evaluator on user data)."""
    out = search_json(
        "--space", f"{user_folder}:Net", "--strategy", "darts", "--data",
        f"{user_folder}_data:DATA", "--batch-size", "16", "--epochs", "1", "--device", "cpu",
    )  # fmt: skip
    _recorded(out, f"{user_folder}:Net", 1)
    assert 0.0 <= out["best"]["metrics"]["valid_acc"] <= 100.0


def test_the_summary_names_the_function_evaluator(user_folder: str, tmp_path: Path) -> None:
    (tmp_path / f"{user_folder}_score.py").write_text(
        "def score(model, context):\n"
        "    return {'valid_acc': float(sum(p.numel() for p in model.parameters()) % 97)}\n"
    )
    done = invoke(
        "search", "--space", f"{user_folder}:Net", "--strategy", "random", "--evaluator",
        "function", "--evaluator-param", f"fn={user_folder}_score:score", "--trials", "2",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("evaluator"))
    assert line.split() == ["evaluator", "function", f"{user_folder}_score:score",
                            f"({user_folder}:Net)"]  # fmt: skip
