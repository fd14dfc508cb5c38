"""The shared contracts of components that work on networks: zero-cost proxies and one-shot
methods (plain functions raising AssertionError). Importing this module does not import
torch; the checks do."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import nasforge
from nasforge.architecture import Architecture
from nasforge.evaluators.base import Evaluator
from nasforge.trial import Direction, Result, TrialState

if TYPE_CHECKING:
    from torch import nn

    from nasforge.proxies import Batch

__all__ = [
    "TINY_LLM",
    "ParamCount",
    "check_oneshot",
    "check_proxy",
    "tiny_batch",
    "tiny_network",
    "tiny_transformer",
]

#: Settings of a tiny ``llm`` space, ``LLMSpace(**TINY_LLM)``: widths 16 and 32, one or two
#: layers of two or four 4-wide heads, MLPs of 32 or 64 and a 16-token context (fast tests
#: of the space, the language models and their training and search).
TINY_LLM: Mapping[str, Any] = MappingProxyType(
    {
        "embed_dims": (16, 32),
        "depths": (1, 2),
        "heads": (2, 4),
        "head_dim": 4,
        "mlp_sizes": (32, 64),
        "context": 16,
    }
)


class ParamCount(Evaluator):
    """Scores an architecture by the parameter count of its network (``space.build(arch)``)
    as ``valid_acc``, maximised: fast and deterministic, it prefers wide, deep networks
    (searches of a user's model in tests).

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("nb201")
        >>> ParamCount(space).evaluate(space.from_index(0)).metrics["valid_acc"] > 0
        True
    """

    def __init__(self, space: Any) -> None:
        self.built = space

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Any = None) -> Result:
        model = self.built.build(arch)
        return Result({"valid_acc": float(sum(p.numel() for p in model.parameters()))})


def tiny_network(num_classes: int = 3, seed: int = 0) -> nn.Module:
    """A small convolutional network (conv, batch norm, ReLU twice, pooling, linear) whose
    weights are drawn from ``seed`` without touching torch's global generator."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, num_classes),
        )


def tiny_transformer(num_classes: int = 3, seed: int = 0) -> nn.Module:
    """A small vision transformer for 8x8 images (patch 4, width 8, two encoder layers)
    whose weights are drawn from ``seed`` without touching torch's global generator."""
    import torch

    from nasforge.ops.vit import LayerConfig, VisionTransformer, ViTConfig

    layers = (LayerConfig(2, 8, 16), LayerConfig(1, 4, 8))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VisionTransformer(ViTConfig(8, 4, 8, layers, num_classes=num_classes))


def tiny_batch(num_classes: int = 3, size: int = 8, seed: int = 0) -> Batch:
    """A fixed batch of ``size`` Gaussian 8x8 images with every class represented."""
    import torch

    from nasforge.proxies import Batch

    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 3, 8, 8, generator=generator)
    return Batch(inputs, torch.arange(size) % num_classes, num_classes=num_classes)


def check_proxy(name: str, *, seed: int = 0) -> None:
    """Check the :class:`~nasforge.proxies.Proxy` contract of the proxy registered as ``name``.

    * its ``name`` is its registry name, its ``data`` one of ``images``, ``shape``, ``none``,
      its ``shared_pass`` ``None`` or a known pass;
    * its score of a small network (:func:`tiny_transformer` for a proxy that ``requires``
      transformer modules, :func:`tiny_network` otherwise) on a fixed batch is a finite
      float, the same when scored
      again, and the same through :func:`nasforge.proxies.compute`;
    * scoring leaves the network unchanged.
    """
    import torch

    from nasforge import proxies
    from nasforge.proxies.base import PASSES

    proxy = proxies.create(name)
    assert proxy.name == name, f"proxy registered as {name!r} calls itself {proxy.name!r}"
    assert proxy.data in ("images", "shape", "none"), f"data {proxy.data!r}"
    assert proxy.shared_pass is None or proxy.shared_pass in PASSES
    build = tiny_transformer if proxy.requires else tiny_network
    model, batch = build(seed=seed), tiny_batch(seed=seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = proxy.score(model, batch, seed=seed)
    assert isinstance(first, float) and math.isfinite(first), f"{name} scored {first!r}"
    assert proxy.score(model, batch, seed=seed) == first, f"{name} differs on the same batch"
    assert proxies.compute(model, [name], batch, seed=seed) == {name: first}
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed the model"


def check_oneshot(
    name: str,
    space: str,
    *,
    epochs: int = 1,
    seed: int = 0,
    evaluator: Evaluator | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Check a one-shot method on a space with a supernet, through :func:`nasforge.oneshot.search`.

    A tiny run (a 4-channel supernet as deep as the space's ``"reduced"`` preset, or that
    preset's network for a space without width and depth settings; 32 synthetic 8x8 images,
    on the CPU) records COMPLETE trials, one per epoch (their
    ``epoch`` metrics are consecutive), whose architectures belong to the space
    (``parse(str(arch))`` gives each back); or the method is refused with an
    :class:`~nasforge.errors.UnsupportedOperationError` (the space lacks something it
    needs) before anything is recorded.

    Args:
        name: Registry name of the one-shot method.
        space: Registry name of a space whose ``supports("supernet")`` is true.
        epochs: Supernet training epochs.
        seed: Seed of the search.
        evaluator: Scores the derived architectures (default a
            :class:`~nasforge.testing.contracts.HashEvaluator` of the space, so that spaces
            without a table need no training).
        params: The method's hyperparameters (small ones keep the check fast).
    """
    from nasforge import oneshot
    from nasforge.errors import UnsupportedOperationError
    from nasforge.storage import get_storage
    from nasforge.testing.contracts import HashEvaluator
    from nasforge.train import SyntheticImages

    the_space = nasforge.spaces.create(space)
    assert the_space.supports("supernet"), f"space {space!r} has no supernet"
    try:  # the smallest depth the space builds (DARTS needs 5 layers, one per stage)
        reduced = oneshot.SupernetSettings.reduced(space)
    except UnsupportedOperationError:
        reduced = oneshot.SupernetSettings(cells=1)
    if the_space.scale_keys is None:  # no width and depth (mobile spaces): the reduced
        # preset's network (its strides), built for the 8x8 images below
        settings = oneshot.SupernetSettings(
            batch_size=16, options={**reduced.options, "resolution": 8}
        )
    else:
        settings = oneshot.SupernetSettings(channels=4, cells=reduced.cells, batch_size=16)
    # 32 images: one step of 16 on each half per epoch
    data = SyntheticImages(num_classes=4, n_train=32, n_test=4, size=8).load()
    storage = get_storage(None)
    try:
        result = oneshot.search(
            name,
            data,
            space=space,
            params=params,
            settings=settings,
            epochs=epochs,
            seed=seed,
            evaluator=evaluator if evaluator is not None else HashEvaluator(space),
            storage=storage,
            device="cpu",
            threads=1,
        )
    except UnsupportedOperationError as refusal:
        # a method may need more of a space than its supernet (PC-DARTS: partial channels):
        # then it is refused, naming what is missing, before anything is recorded
        assert str(refusal), f"{name} on {space}: a refusal without a message"
        assert storage.list_studies() == [], f"{name} on {space} recorded before refusing"
        return
    trials = result.study.trials
    label = f"{name} on {space}"
    assert trials, f"{label} recorded no trial"
    numbers = [trial.metrics.get("epoch") for trial in trials]
    first = numbers[0]
    assert first is not None and 0 <= first <= epochs, f"{label}: first epoch {first}"
    assert numbers == [first + i for i in range(len(trials))], f"{label}: epochs {numbers}"
    for number, trial in enumerate(trials):
        assert trial.number == number
        assert trial.state is TrialState.COMPLETE, f"{label}: {trial.fail_reason}"
        assert trial.arch.space == space, f"{label} derived {trial.arch!r}"
        assert the_space.parse(str(trial.arch)) == trial.arch
