"""Evaluate architectures by zero-cost proxies: a real network, one batch, no training."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from nasforge import evaluators, spaces, tabular
from nasforge import proxies as proxy_registry
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.trial import Direction, Result

__all__ = ["ProxyEvaluator"]


@evaluators.register("proxy")
class ProxyEvaluator(Evaluator):
    """Scores each architecture with zero-cost proxies (see :mod:`nasforge.proxies`).

    Every architecture is built by its space (``space.build``) with PyTorch's default
    initialisation drawn from ``seed`` and scored on one fixed batch: ``batch_size`` training
    images drawn with ``seed`` from ``data``, or a synthetic Gaussian batch when ``data`` is
    ``None`` (enough for the data-free proxies ``synflow``, ``zen``, ``l2_norm``, ``params``,
    ``flops``; the others then measure the network on noise). Proxies that share a forward
    and backward pass share it. Each proxy is a metric to maximise.

    Args:
        space: Registry name of a space with a model builder (``"nb201"``, ``"darts"``).
        proxies: Proxy names (default: ``("synflow", "nwot", "jacov")``).
        dataset: Fixes the number of classes and the image side (``cifar10``, ``cifar100``,
            ``imagenet16-120``).
        data: Path of the images (CIFAR-10 release or image folder), or ``None``.
        batch_size: Images in the batch (64, as NAS-Bench-Suite-Zero).
        seed: Seed of the batch and of the initial weights.
        device: ``"cpu"`` or ``"cuda"``.
        build: Extra keyword arguments of ``space.build``.
        benchmark: Also return the accuracies of this tabular benchmark (``"nb201"``) for
            ``dataset``, so that a study can compare proxies with the truth; costs nothing.
        cache_dir: Keep the scores on disk (see :func:`nasforge.proxies.scores.compute_scores`).

    The cost of an evaluation is the seconds it took (``cost_unit = "seconds"``).

    Example:
        >>> from nasforge import spaces
        >>> ev = ProxyEvaluator("nb201", proxies=["synflow", "params"], batch_size=4,
        ...                     build={"channels": 4, "cells_per_stage": 1}, benchmark="nb201")
        >>> r = ev.evaluate(spaces.create("nb201").from_index(6111))
        >>> sorted(r.metrics)
        ['params', 'synflow', 'test_acc', 'valid_acc']
    """

    cost_unit = "seconds"

    def __init__(
        self,
        space: str = "nb201",
        proxies: Sequence[str] = ("synflow", "nwot", "jacov"),
        *,
        dataset: str = "cifar10",
        data: str | os.PathLike[str] | None = None,
        batch_size: int = 64,
        seed: int = 0,
        device: str = "cpu",
        build: Mapping[str, Any] | None = None,
        benchmark: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from nasforge.proxies.batches import dataset_info

        if isinstance(proxies, str):
            proxies = [proxies]
        if not proxies:
            raise InvalidConfigError("ProxyEvaluator needs at least one proxy name.")
        self._names = tuple(proxy_registry.create(p).name for p in proxies)
        self._space = spaces.create(space)
        if not self._space.supports("build"):
            raise UnsupportedOperationError(
                f"Space {space!r} has no model builder (build()); proxies need a real network."
            )
        self.space = self._space.name
        dataset_info(dataset)
        self.dataset = dataset.lower()
        self.data = None if data is None else str(data)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise InvalidConfigError(f"batch_size must be an integer >= 2, got {batch_size!r}.")
        self.batch_size = batch_size
        self.seed = int(seed)
        self.device = device
        self.build = dict(build or {})
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self._benchmark_name = benchmark
        self._benchmark = None
        self._accuracy: tuple[str, ...] = ()
        if benchmark is not None:
            self._benchmark = tabular.create(benchmark)
            if self._benchmark.space != self.space:
                raise InvalidConfigError(
                    f"Benchmark {benchmark!r} is a table of space {self._benchmark.space!r}, "
                    f"not {self.space!r}."
                )
            known = {m.name for m in self._benchmark.metrics(self.dataset)}
            self._accuracy = tuple(m for m in ("valid_acc", "test_acc") if m in known)
            if not self._accuracy:
                raise UnknownNameError(f"accuracy metric of {benchmark}", "valid_acc", known)

    @property
    def metrics(self) -> Mapping[str, Direction]:
        out = {name: Direction.MAXIMIZE for name in self._names}
        out.update({name: Direction.MAXIMIZE for name in self._accuracy})
        return out

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        if fidelity:
            raise InvalidConfigError(
                f"A proxy evaluation has no fidelity (it trains nothing), got {dict(fidelity)!r}."
            )
        from nasforge.proxies.scores import compute_scores

        self._space.check(arch)
        start = time.perf_counter()
        table = compute_scores(
            self._space,
            [arch],
            self._names,
            data=self.data,
            dataset=self.dataset,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            build=self.build,
            cache_dir=self.cache_dir,
        )
        values = {name: float(table.values[0, j]) for j, name in enumerate(table.names)}
        if self._benchmark is not None:
            for name in self._accuracy:
                value = self._benchmark.query(arch, self.dataset, name)
                if not math.isnan(value):
                    values[name] = value
        seconds = time.perf_counter() - start
        return Result(values, cost=seconds, seconds=seconds)

    def spec(self) -> dict[str, Any]:
        return {
            "name": "proxy",
            "space": self.space,
            "proxies": list(self._names),
            "dataset": self.dataset,
            "data": self.data,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": self.device,
            "build": self.build,
            "benchmark": self._benchmark_name,
            "cache_dir": self.cache_dir,
        }

    def __repr__(self) -> str:
        return f"ProxyEvaluator({self.space!r}, proxies={list(self._names)!r})"
