"""Per-layer latency tables as devices: ``latency_ms[<table>]`` for the architectures of a space
with ``layers(...)`` (``mobilenet``, ``fbnet``), alone or beside another evaluator's metrics."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.spaces.base import SearchSpace
from nasforge.trial import Direction, Result

__all__ = ["LatencyTableEvaluator"]

TableSource = str | os.PathLike[str] | LayerLatencyTable


@evaluators.register("latency-table")
class LatencyTableEvaluator(Evaluator):
    """Predicts each architecture's latency on the devices of per-layer tables
    (:class:`~nasforge.hardware.layer_lut.LayerLatencyTable`), as metrics that objectives and
    constraints name like the bundled devices: ``latency_ms[cpu-onnxruntime-lut] <= 20``.

    The architecture is split into its layers by ``space.layers(arch, **build)`` and each
    table predicts the sum of their entries plus its fixed part. The predictions are free
    metrics too (known without evaluating), so strategies can reject candidates over a
    latency budget before spending a query. With ``evaluator``, its metrics come first and the
    latencies are added (its cost is the cost); without, an evaluation is one look-up
    (cost 1 query).

    Args:
        space: Registry name of a space with ``layers`` (or the space itself).
        tables: The tables: CSV paths or tables, named by their :attr:`~LayerLatencyTable.name`
            (``cpu-onnxruntime-lut``), or a mapping ``{device name: path or table}`` that
            names them (``{"pixel3-lut": "pixel3.csv"}`` gives ``latency_ms[pixel3-lut]``).
        evaluator: Another evaluator whose metrics are returned with the latencies: an
            evaluator, its spec (``{"name": "train", ...}``) or a registry name.
        build: Settings of ``space.layers`` (``resolution``, ``width_mult``, ``num_classes``);
            the layers they produce must be in the tables.
        preset: A preset of the space whose network settings (and image side) ``build``
            starts from: ``"reduced"`` prices the CIFAR-size networks a one-shot search
            with ``--preset reduced`` derives.
        num_classes: The classifier's classes (default the space's, 1000 for the mobile
            spaces; 10 for CIFAR-10).
        measure: Also time each architecture's network on this machine with each table's
            runtime and threads (``measured_latency_ms[<name>]``, median of ``runs``), so
            that every trial has its measured latency beside the predicted one; only for
            tables of this machine (device ``cpu``, runtime ``torch`` or ``onnxruntime``).
        runs: Timed passes of a measurement.

    Raises:
        UnsupportedOperationError: The space has no ``layers``.
        InvalidConfigError: No tables, two tables with one name, or an evaluator of another
            space.

    Example:
        >>> import pathlib, tempfile
        >>> space = spaces.create("mobilenet")
        >>> arch = space.named("mobilenetv2")
        >>> layers = space.layers(arch)  # 224x224, 1000 classes
        >>> table = LayerLatencyTable({spec.key: 1.0 for spec in layers}, fixed_ms=0.5,
        ...                           backend="torch")  # entries of 1 ms, for the example
        >>> path = table.to_csv(pathlib.Path(tempfile.mkdtemp()) / "cpu-torch.csv")
        >>> ev = LatencyTableEvaluator("mobilenet", [path])
        >>> ev.metrics
        {'latency_ms[cpu-torch-lut]': <Direction.MINIMIZE: 'minimize'>}
        >>> ev.evaluate(arch).metrics == {"latency_ms[cpu-torch-lut]": len(layers) + 0.5}
        True
    """

    cost_unit = "queries"

    def __init__(
        self,
        space: str | SearchSpace = "mobilenet",
        tables: TableSource | Sequence[TableSource] | Mapping[str, TableSource] = (),
        *,
        evaluator: Evaluator | Mapping[str, Any] | str | None = None,
        build: Mapping[str, Any] | None = None,
        preset: str | None = None,
        num_classes: int | None = None,
        measure: bool = False,
        runs: int = 20,
    ) -> None:
        self._space = spaces.create(space) if isinstance(space, str) else space
        if not callable(getattr(self._space, "layers", None)):
            raise UnsupportedOperationError(
                f"Space {self._space.name!r} has no layers(arch, ...), so a per-layer latency "
                "table cannot price its networks; use a macro space such as 'mobilenet'."
            )
        self.space = self._space.name
        self.build = _settings(self._space, preset, build, num_classes)
        self._tables = _load_tables(tables)
        self.measure, self.runs = bool(measure), int(runs)
        if self.runs < 1:
            raise InvalidConfigError(f"runs must be at least 1, got {runs!r}.")
        if self.measure:
            elsewhere = [
                name
                for name, table in self._tables.items()
                if table.device != "cpu" or table.backend not in ("torch", "onnxruntime")
            ]
            if elsewhere:
                raise InvalidConfigError(
                    f"measure=True times networks on this machine, but the tables {elsewhere} "
                    "describe another device or runtime (only device 'cpu' with runtime "
                    "'torch' or 'onnxruntime' can be measured here); leave measure off."
                )
        self._inner = _inner_evaluator(evaluator)
        if self._inner is not None:
            if self._inner.space is not None and self._inner.space != self.space:
                raise InvalidConfigError(
                    f"The evaluator {self._inner!r} scores {self._inner.space!r} architectures, "
                    f"but the latency tables price space {self.space!r}."
                )
            self.cost_unit = self._inner.cost_unit
            clash = sorted(set(self._inner.metrics) & {t.metric for t in self._tables.values()})
            if clash:
                raise InvalidConfigError(
                    f"The evaluator {self._inner!r} already returns {clash}; name the tables "
                    "differently (tables={name: path})."
                )

    # -- the devices ---------------------------------------------------------------------------
    @property
    def devices(self) -> tuple[str, ...]:
        """The device names of the tables (``latency_ms[<name>]``)."""
        return tuple(self._tables)

    def table(self, device: str) -> LayerLatencyTable:
        """The table of ``device``.

        Raises:
            UnknownNameError: No table of that name (the valid ones are listed).
        """
        if device not in self._tables:
            raise UnknownNameError("latency table device", device, self._tables)
        return self._tables[device]

    def predict(self, arch: Architecture, device: str | None = None) -> dict[str, float]:
        """``{latency_ms[name]: predicted ms}`` for every table, or for ``device`` only."""
        if device is not None:
            self.table(device)  # an unknown name lists the valid ones
        names = self.devices if device is None else (device,)
        specs = cast(Any, self._space).layers(self._space.check(arch), **self.build)
        return {_metric(name): self._tables[name].predict(specs) for name in names}

    # -- the evaluator contract ----------------------------------------------------------------
    @property
    def metrics(self) -> Mapping[str, Direction]:
        out = dict(self._inner.metrics) if self._inner is not None else {}
        out.update({_metric(name): Direction.MINIMIZE for name in self._tables})
        if self.measure:
            out.update({_measured(name): Direction.MINIMIZE for name in self._tables})
        return out

    def measured(self, arch: Architecture) -> dict[str, float]:
        """``{measured_latency_ms[name]: ms}``: the network of ``arch`` (built with the
        evaluator's settings) timed here with each table's runtime and threads."""
        from nasforge.hardware.latency import measure_latency

        net = self._space.build(self._space.check(arch), **self.build)
        side = int(self.build.get("resolution", 224))
        return {
            _measured(name): measure_latency(
                net, (3, side, side), runs=self.runs, threads=table.threads,
                backend=table.backend, batch_size=table.batch_size,
            ).median_ms
            for name, table in self._tables.items()
        }  # fmt: skip

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        latencies = self.predict(arch)
        if self.measure:
            latencies.update(self.measured(arch))
        if self._inner is None:
            if fidelity:
                raise InvalidConfigError(
                    f"A latency table has no fidelity (it trains nothing), got {dict(fidelity)!r}."
                )
            return Result(latencies, cost=1.0)
        result = self._inner.evaluate(arch, fidelity)
        return Result({**result.metrics, **latencies}, cost=result.cost, seconds=result.seconds)

    def expected_cost(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> float:
        if self._inner is None:
            return 1.0
        return self._inner.expected_cost(arch, fidelity)  # type: ignore[return-value]

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        inner = self._inner.free_metric_names if self._inner is not None else ()
        return (*inner, *(_metric(name) for name in self._tables))

    def free_metrics(self, arch: Architecture) -> dict[str, float]:
        out = dict(self._inner.free_metrics(arch)) if self._inner is not None else {}
        out.update(self.predict(arch))
        return out

    def spec(self) -> dict[str, Any] | None:
        sources = {name: table.source for name, table in self._tables.items()}
        inner = self._inner.spec() if self._inner is not None else None
        if None in sources.values() or (self._inner is not None and inner is None):
            return None  # a table built in memory or an evaluator without a spec
        return {
            "name": "latency-table",
            "space": self.space,
            "tables": sources,
            "evaluator": inner,
            "build": self.build,
            **({"measure": True, "runs": self.runs} if self.measure else {}),
        }

    def __repr__(self) -> str:
        return f"LatencyTableEvaluator({self.space!r}, devices={list(self.devices)!r})"


def _settings(
    space: SearchSpace,
    preset: str | None,
    build: Mapping[str, Any] | None,
    num_classes: int | None,
) -> dict[str, Any]:
    """The settings of ``space.layers``: the preset's network settings and image side, then
    ``build``, then ``num_classes``."""
    from nasforge.spaces.base import DATA_SETTINGS

    settings: dict[str, Any] = {}
    if preset is not None:
        presets = space.presets()
        if preset not in presets:
            raise UnknownNameError(f"preset of space {space.name!r}", preset, presets)
        data = DATA_SETTINGS - {"resolution"}  # the layers' sizes follow the image side
        settings = {k: v for k, v in presets[preset].items() if k not in data}
    settings.update(build or {})
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidConfigError(
                f"num_classes must be a positive whole number, got {num_classes!r}."
            )
        settings["num_classes"] = num_classes
    return settings


def _metric(name: str) -> str:
    return f"latency_ms[{name}]"


def _measured(name: str) -> str:
    return f"measured_latency_ms[{name}]"


def _load_tables(tables: Any) -> dict[str, LayerLatencyTable]:
    if isinstance(tables, (str, os.PathLike, LayerLatencyTable)):
        tables = [tables]
    if isinstance(tables, Mapping):
        named = [(str(name), _load(source)) for name, source in tables.items()]
    else:
        loaded = [_load(source) for source in tables]
        named = [(table.name, table) for table in loaded]
    out: dict[str, LayerLatencyTable] = {}
    for name, table in named:
        if name in out:
            raise InvalidConfigError(
                f"Two latency tables are named {name!r}; name them: tables={{name: path}}."
            )
        out[name] = table
    if not out:
        raise InvalidConfigError(
            "LatencyTableEvaluator needs at least one table (a CSV written by "
            "LayerLatencyTable.to_csv or filled from a device)."
        )
    return out


def _load(source: TableSource) -> LayerLatencyTable:
    if isinstance(source, LayerLatencyTable):
        return source
    return LayerLatencyTable.from_csv(Path(source))


def _inner_evaluator(evaluator: Any) -> Evaluator | None:
    if evaluator is None or isinstance(evaluator, Evaluator):
        return evaluator
    if isinstance(evaluator, str):
        return evaluators.create(evaluator)
    if isinstance(evaluator, Mapping) and "name" in evaluator:
        params = dict(evaluator)
        return evaluators.create(params.pop("name"), **params)
    raise InvalidConfigError(
        f"evaluator must be an Evaluator, its spec {{'name': ..., ...}} or a registry name, "
        f"got {evaluator!r}."
    )
