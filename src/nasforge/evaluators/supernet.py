"""Sub-networks of a trained elastic supernet as trials: inherited accuracy and costs.

Once-for-All (Cai, H., Gan, C., Wang, T., Zhang, Z. and Han, S. "Once-for-All: Train One
Network and Specialize it for Efficient Deployment." ICLR 2020, arXiv:1908.09791, Section 3.3)
measures a sub-network by taking its weights from the trained supernet, recomputing the
batch-norm statistics on a few training batches (they differ from the largest network's) and
counting its accuracy on validation images held out from the weights' training; its costs
come from tables: the sum of the per-layer latencies of a device's lookup table (Section 3.3,
"latency lookup table") and the multiply-accumulates of its layers.

:class:`SupernetEvaluator` (registered ``"supernet"``) does that for every architecture of the
supernet's space, so any registered strategy can search the sub-networks as trials:
``nasforge search --space ofa-cifar --evaluator supernet --evaluator-param dir=DIR``.
Its costs (parameters, MACs, FLOPs, table latency) are free metrics: a constraint on them
rejects a proposal before it is measured. :class:`SubnetCosts` prices whole populations of
sub-networks at once (the evolutionary search of :mod:`nasforge.elastic.search`).

The sub-networks of a search are those of the resolutions the supernet was trained at
(:attr:`SupernetEvaluator.trained_resolutions`): :attr:`SupernetEvaluator.costs` prices
populations of those (a latency table needs entries for their layers only). A strategy that
searches the space through this evaluator may still propose any resolution; the evaluator
measures it (its table latency then needs the table's entries for that resolution).

Measured accuracies are cached in the supernet's folder, ``measured-<key>.json`` (written
atomically), the key a hash of everything the value depends on: the supernet's run (space,
schedule, settings, data), the checkpoint measured (its phase and a digest of its file, so
that more training is never answered from the cache), the recalibration batches, the
validation images and a digest of the images used. Another search (another study, another
constraint) reads them instead of measuring again; only the accuracy is cached, a latency
measured here is timed again.

Where this differs from the paper: the recalibration batches are the first images of the
training half (fixed, not augmented), so that two evaluations of one sub-network, and the
export of the chosen one (:mod:`nasforge.export`), recompute exactly the same statistics.

Torch is imported when a sub-network is measured, not when this module loads.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.elastic._costs import (
    COST_METRICS,
    SubnetCosts,
    latency_metric,
    layer_costs,
    measured_metric,
)
from nasforge.errors import InvalidConfigError
from nasforge.evaluators._subnet_cache import (
    ACCURACY,
    SubnetEvaluator,
    cache_file,
    check_counts,
    file_digest,
    images_digest,
    read_cache,
)
from nasforge.evaluators._subnet_cache import CACHED as CACHED  # read by elastic.search
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.trial import Direction

if TYPE_CHECKING:
    from nasforge.elastic.base import TrainedSupernet
    from nasforge.oneshot._data import SearchData

__all__ = [
    "COST_METRICS",
    "SubnetCosts",
    "SupernetEvaluator",
    "latency_metric",
    "layer_costs",
    "measured_metric",
    "subnet_record",
]

MANIFEST = "manifest.json"

TableSource = str | os.PathLike[str] | LayerLatencyTable


# -- the evaluator ------------------------------------------------------------------------------
@evaluators.register("supernet")
class SupernetEvaluator(SubnetEvaluator):
    """Measures sub-networks of a trained elastic supernet (see the module docstring).

        Each evaluation makes ``arch`` the supernet's active sub-network, recalibrates its
        batch norms on the first ``recalibration_batches`` batches of the training half of the
        supernet's data (fixed images, resized to the arch's resolution), and counts its top-1
        accuracy on the first ``valid_images`` images of the held-out half
    (:func:`nasforge.elastic.subnet_accuracy`); the supernet's own statistics are put back after.
        The halves are those the supernet was trained with (its settings' data fraction, batch
        size and seed), so the accuracy is measured on images its weights never saw.

        Metrics: ``valid_acc`` (percent), ``params_M``, ``macs_M``, ``flops_M`` (of the
        sub-network's layers, :class:`SubnetCosts`), ``latency_ms[<table>]`` for each table
        (the sum of the table's entries for ``space.layers(arch)`` plus its fixed part), and
        with ``measure`` the latency measured here: ``measured_latency_ms[<table>]`` timed with
        each table's runtime and threads (tables of device ``cpu`` only), or
        ``latency_ms[cpu-torch]`` (PyTorch, one thread) without tables. Every metric but the
        accuracy and the measured latency is free (known without evaluating). ``Result.cost`` is
        the seconds spent.

        Args:
            dir: The folder of a supernet trained by :func:`nasforge.elastic.train_supernet`.
            data: Path of the data the supernet was trained on (not for ``synthetic``).
            dataset: ``"cifar10"``, ``"folder"`` or ``"synthetic"`` (as the training evaluator).
            synthetic: Keyword arguments of :class:`~nasforge.train.data.SyntheticImages`.
            cache_dir: Where archives are extracted (see :mod:`nasforge.train.data`).
            recalibration_batches: Training batches (of the supernet's batch size) that
                recompute the batch-norm statistics.
            valid_images: Held-out images the accuracy is counted on.
            tables: Per-layer latency tables (CSV paths or tables, named by their ``name``, or
                ``{device: path or table}``), as the ``latency-table`` evaluator takes them.
            measure: Also time each sub-network on this machine.
            runs: Timed passes of a measurement (the median is kept).
            phase: Use the checkpoint of this phase (1-based; default the last completed).
            threads: CPU threads of an evaluation (``None``: all; default one, which measures
            small sub-networks fastest on a shared machine); not part of :meth:`spec`.
            cache: Read and write the cache of measured accuracies in ``dir`` (see the
            module docstring); not part of :meth:`spec`.

        Raises:
            InvalidConfigError: No trained supernet in ``dir``, counts below 1, two tables with
                one name, or ``measure`` with a table of another device.

        Example:
            >>> ev = SupernetEvaluator("no/such/folder")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            nasforge.errors.InvalidConfigError: 'no/such/folder' holds no trained supernet ...
    """

    cost_unit = "seconds"
    kind = "supernet"

    def __init__(
        self,
        dir: str | os.PathLike[str],
        *,
        data: str | os.PathLike[str] | None = None,
        dataset: str = "cifar10",
        synthetic: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        recalibration_batches: int = 8,
        valid_images: int = 1000,
        tables: TableSource | Sequence[TableSource] | Mapping[str, TableSource] = (),
        measure: bool = False,
        runs: int = 20,
        phase: int | None = None,
        threads: int | None = 1,
        cache: bool = True,
    ) -> None:
        from nasforge.evaluators.latency_table import _load_tables

        self.dir = Path(dir).expanduser().absolute()
        manifest_path = self.dir / MANIFEST
        if not manifest_path.is_file():
            raise InvalidConfigError(
                f"{str(dir)!r} holds no trained supernet (no {MANIFEST}); train one with "
                "`nasforge supernet train --out DIR` or nasforge.elastic.train_supernet, and "
                "give that folder as dir."
            )
        try:
            self.manifest = json.loads(manifest_path.read_text())
            run = self.manifest["run"]
            space_name, settings, trained_on = run["space"], run["settings"], run["data"]
        except (ValueError, KeyError, TypeError):
            raise InvalidConfigError(
                f"{str(manifest_path)!r} is not the manifest of a nasforge supernet; train the "
                "folder again."
            ) from None
        self._space: Any = spaces.create(space_name)
        self.space = self._space.name
        self.num_classes = int(settings.get("num_classes") or trained_on["num_classes"])
        self.width_mult = float(settings.get("width_mult", 1.0))
        self.dropout = float(settings.get("dropout", 0.0))
        self._open_source("supernet", trained_on, dataset, data, synthetic, cache_dir)
        check_counts(
            recalibration_batches=recalibration_batches, valid_images=valid_images, runs=runs
        )
        self.recalibration_batches = recalibration_batches
        self.valid_images = valid_images
        self.phase = phase
        self.threads = threads
        has_tables = bool(tables) or isinstance(tables, LayerLatencyTable)
        self._tables = _load_tables(tables) if has_tables else {}
        self.measure, self.runs = bool(measure), int(runs)
        if self.measure:
            elsewhere = [
                name
                for name, table in self._tables.items()
                if table.device != "cpu" or table.backend not in ("torch", "onnxruntime")
            ]
            if elsewhere:
                raise InvalidConfigError(
                    f"measure=True times sub-networks on this machine, but the tables "
                    f"{elsewhere} describe another device or runtime (only device 'cpu' with "
                    "runtime 'torch' or 'onnxruntime' can be measured here); leave measure "
                    "off or give tables of this machine."
                )
        from nasforge.elastic._train import trained_resolutions
        from nasforge.elastic.base import TrainSettings

        self.settings = TrainSettings.from_dict(settings)
        #: The input sides the supernet was trained at (those :attr:`costs` prices).
        self.trained_resolutions = trained_resolutions(self._space, self.settings)
        self.costs = SubnetCosts(
            self._space,
            num_classes=self.num_classes,
            width_mult=self.width_mult,
            dropout=self.dropout,
            tables=self._tables,
            resolutions=self.trained_resolutions,
        )
        self.cache = bool(cache)
        self._trained: TrainedSupernet | None = None
        self._data: SearchData | None = None
        self._saved: dict[str, Any] = {}
        self._cache_path: Path | None = None
        self._cached: dict[str, float] = {}

    # -- what it returns -----------------------------------------------------------------------
    @property
    def tables(self) -> dict[str, LayerLatencyTable]:
        """The latency tables by device name."""
        return dict(self._tables)

    @property
    def measured_names(self) -> tuple[str, ...]:
        """The metrics of the latency measured here (empty without ``measure``)."""
        if not self.measure:
            return ()
        if not self._tables:
            from nasforge.hardware.latency import latency_metric_name

            return (latency_metric_name("cpu", "torch"),)
        return tuple(measured_metric(name) for name in self._tables)

    @property
    def metrics(self) -> Mapping[str, Direction]:
        out = {ACCURACY: Direction.MAXIMIZE}
        out.update({name: Direction.MINIMIZE for name in self.costs.names})
        out.update({name: Direction.MINIMIZE for name in self.measured_names})
        return out

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return self.costs.names

    def free_metrics(self, arch: Architecture) -> dict[str, float]:
        return self.costs.of(self._space.check(arch))

    # -- the supernet and its data ---------------------------------------------------------------
    def trained(self) -> TrainedSupernet:
        """The trained supernet (loaded once, on the CPU)."""
        if self._trained is None:
            from nasforge.elastic import load_supernet

            self._trained = load_supernet(self.dir, phase=self.phase)
        return self._trained

    def search_data(self) -> SearchData:
        """The halves of the supernet's training images, as its training split them."""
        if self._data is None:
            from nasforge.elastic._train import trained_resolutions
            from nasforge.oneshot._data import SearchData
            from nasforge.oneshot.base import SupernetSettings

            splits = self._training_splits()
            settings = self.settings
            search = SupernetSettings(
                resolution=max(trained_resolutions(self._space, settings)),
                data_fraction=settings.data_fraction,
                batch_size=settings.batch_size,
            )
            self._data = SearchData.from_splits(splits, search, seed=settings.seed)
        return self._data

    def prepare(self, arch: Architecture) -> Any:
        """The supernet with ``arch`` active and its batch norms recalibrated as
        :meth:`evaluate` does (kept: ``supernet.extract(arch)`` is then the stand-alone
        sub-network the evaluator measured). Call :meth:`restore` after."""
        import torch

        from nasforge.elastic import subnet_accuracy

        supernet = self.trained().supernet
        self._saved = {  # a wrapper's extra state (few-shot's split) is not a tensor
            k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
            for k, v in supernet.state_dict().items()
        }
        subnet_accuracy(
            supernet,
            arch,
            self.search_data(),
            recalibrate_batches=self.recalibration_batches,
            images=1,
            keep_statistics=True,
        )
        return supernet

    def restore(self) -> None:
        """Put back the supernet's statistics after :meth:`prepare`."""
        if self._saved:
            self.trained().supernet.load_state_dict(self._saved)
            self._saved = {}

    # -- the cache of measured accuracies -------------------------------------------------------
    def cache_path(self) -> Path:
        """``dir/measured-<key>.json``, the key a hash of what the accuracy depends on (see
        the module docstring); computed once (it reads the checkpoint and the data)."""
        if self._cache_path is None:
            chosen = int(self.manifest["phases_done"]) if self.phase is None else int(self.phase)
            phases = self.manifest.get("phases", [])
            name = phases[chosen - 1]["name"] if 1 <= chosen <= len(phases) else "?"
            checkpoint = self.dir / f"phase-{chosen}-{name}.pt"
            data = self.search_data()
            count = self.recalibration_batches * data.batch_size
            parts = ((data.train, count), (data.valid, self.valid_images))
            material = {
                "run": self.manifest["run"],
                "phase": chosen,
                "checkpoint": file_digest(checkpoint),
                "recalibration_batches": self.recalibration_batches,
                "valid_images": self.valid_images,
                "images": images_digest(parts, data.mean, data.std),
            }
            self._cache_path = cache_file(self.dir, material)
            self._cached = read_cache(self._cache_path)
        return self._cache_path

    # -- evaluating -----------------------------------------------------------------------------
    def accuracy(self, arch: Architecture) -> float:
        """The inherited top-1 accuracy (percent) of ``arch`` after recalibration."""
        from nasforge.elastic import subnet_accuracy

        return float(
            subnet_accuracy(
                self.trained().supernet,
                arch,
                self.search_data(),
                recalibrate_batches=self.recalibration_batches,
                images=self.valid_images,
            )
        )

    def measured(self, arch: Architecture) -> dict[str, float]:
        """The latency of ``arch``'s stand-alone network measured here (see ``measure``)."""
        from nasforge.hardware.latency import measure_latency

        net = self.trained().supernet.extract(arch).eval()
        side = int(self._space.resolution(arch))
        settings = [(name, t.backend, t.threads, t.batch_size) for name, t in self._tables.items()]
        if not settings:
            settings = [("", "torch", 1, 1)]
        out = {}
        for metric, (_, backend, threads, batch) in zip(self.measured_names, settings, strict=True):
            out[metric] = measure_latency(
                net, (3, side, side), runs=self.runs, threads=threads, backend=backend,
                batch_size=batch,
            ).median_ms  # fmt: skip
        return out

    def spec(self) -> dict[str, Any] | None:
        out = self._spec({"recalibration_batches": self.recalibration_batches})
        if out is not None and self.phase is not None:
            out["phase"] = self.phase
        return out

    def __repr__(self) -> str:
        return f"SupernetEvaluator({str(self.dir)!r}, space={self.space!r})"


def subnet_record(spec: Mapping[str, Any], arch: Architecture, info: Mapping[str, Any]) -> Any:
    """The stand-alone network of sub-network ``arch`` with its inherited weights, as a
    :class:`~nasforge.train.checkpoint.ModelRecord` (what ``nasforge export`` writes for a
    study of the ``supernet`` evaluator whose spec is ``spec``): ``supernet.extract(arch)``
    after the batch-norm recalibration the evaluator did, so its outputs are the supernet's
    with ``arch`` active.

    Raises:
        InvalidConfigError: The spec is not a ``supernet`` evaluator's, or its supernet or
            data are gone.
    """
    from nasforge.train.checkpoint import ModelRecord

    params = dict(spec)
    if params.pop("name", None) != "supernet":
        raise InvalidConfigError(f"Not the spec of a supernet evaluator: {dict(spec)!r}.")
    evaluator = SupernetEvaluator(**params)
    arch = evaluator._space.check(arch)
    try:
        network = evaluator.prepare(arch).extract(arch)
    finally:
        evaluator.restore()
    side = int(evaluator._space.resolution(arch))
    data = evaluator.search_data()
    return ModelRecord(
        space=evaluator._space.name,
        arch=arch.text,
        build={
            "num_classes": evaluator.num_classes,
            "width_mult": evaluator.width_mult,
            "dropout": evaluator.dropout,
        },
        state_dict={k: v.detach().cpu() for k, v in network.state_dict().items()},
        input_shape=(3, side, side),
        mean=tuple(data.mean),
        std=tuple(data.std),
        trained=True,
        info={"supernet": str(evaluator.dir), **dict(info)},
    )
