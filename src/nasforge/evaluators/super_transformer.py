"""Sub-networks of a trained super-transformer as trials: inherited accuracy and costs.

AutoFormer (Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching Transformers for
Visual Recognition." ICCV 2021, arXiv:2107.00651, Section 3.3) scores a sub-network by its
accuracy with the weights it inherits from the trained super-transformer, measured on images
held out from the weights' training, and bounds its parameters (or FLOPs) in closed form
before measuring it.

:class:`SuperTransformerEvaluator` (registered ``"super-transformer"``) does that for every
architecture of the super-transformer's space (``vit``, ``vit-cifar``), so any registered
strategy can search the sub-networks, and :func:`nasforge.transformer.search_subvits` runs
AutoFormer's evolution with it. Metrics: ``valid_acc`` (percent, maximised; the sub-network
active in the super-transformer, eval mode, on the held-out half the training split off),
``params_M`` and ``macs_M`` (minimised; ``space.costs`` in closed form), ``latency_ms[<table>]``
for each per-layer latency table (the table's prediction for ``space.layers(arch)``), and with
``measure`` the latency of the extracted sub-network timed here
(``measured_latency_ms[<table>]``, or ``latency_ms[cpu-torch]`` without tables). Costs and
table latencies are free metrics: a constraint on them rejects a proposal before it is
measured.

Measured accuracies are cached in the super-transformer's folder
(``measured-<key>.json``, written atomically), the key a hash of the run (space, settings,
data), a digest of the checkpoint, the number of validation images and a digest of those
images; another study reads them instead of measuring again. Torch is imported when a
sub-network is measured, not when this module loads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.evaluators._subnet_cache import (
    ACCURACY,
    CACHED,
    SubnetEvaluator,
    cache_file,
    check_counts,
    file_digest,
    images_digest,
    read_cache,
)
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.trial import Direction

if TYPE_CHECKING:
    from nasforge.oneshot._data import SearchData
    from nasforge.transformer.settings import TrainedSuperViT, ViTTrainSettings

__all__ = ["ACCURACY", "CACHED", "SuperTransformerEvaluator", "subvit_record"]

MANIFEST = "manifest.json"
COSTS = ("params_M", "macs_M")

TableSource = str | os.PathLike[str] | LayerLatencyTable


@evaluators.register("super-transformer")
class SuperTransformerEvaluator(SubnetEvaluator):
    """Measures sub-networks of a trained super-transformer (see the module docstring).

    Args:
        dir: The folder of a super-transformer trained by
            :func:`nasforge.transformer.train_super_vit`.
        data: Path of the data it was trained on (not for ``synthetic``).
        dataset: ``"cifar10"``, ``"folder"`` or ``"synthetic"``.
        synthetic: Keyword arguments of :class:`~nasforge.train.data.SyntheticImages`.
        cache_dir: Where archives are extracted (see :mod:`nasforge.train.data`).
        valid_images: Held-out images the accuracy is counted on.
        tables: Per-layer latency tables (CSV paths or tables, named by their ``name``, or
            ``{name: path or table}``) with entries for the space's transformer layers.
        measure: Also time each extracted sub-network on this machine.
        runs: Timed passes of a measurement (the median is kept).
        threads: CPU threads of an evaluation (``None``: all); not part of :meth:`spec`.
        cache: Read and write the cache of measured accuracies in ``dir``; not part of
            :meth:`spec`.
        device: Where the super-transformer measures accuracy (``"cpu"``, ``"cuda"``...; a
            measured latency is always timed on the CPU); not part of :meth:`spec`.

    Raises:
        InvalidConfigError: No trained super-transformer in ``dir``, counts below 1, no data
            path, or ``measure`` with a table of another device.

    Example:
        >>> SuperTransformerEvaluator("no/such/folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidConfigError: 'no/such/folder' holds no trained super-transformer ...
    """

    cost_unit = "seconds"
    kind = "super-transformer"

    def __init__(
        self,
        dir: str | os.PathLike[str],
        *,
        data: str | os.PathLike[str] | None = None,
        dataset: str = "cifar10",
        synthetic: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        valid_images: int = 1000,
        tables: TableSource | Sequence[TableSource] | Mapping[str, TableSource] = (),
        measure: bool = False,
        runs: int = 20,
        threads: int | None = 1,
        cache: bool = True,
        device: str = "cpu",
    ) -> None:
        from nasforge.evaluators.latency_table import _load_tables
        from nasforge.transformer.settings import ViTTrainSettings

        self.dir = Path(dir).expanduser().absolute()
        manifest_path = self.dir / MANIFEST
        if not manifest_path.is_file():
            raise InvalidConfigError(
                f"{str(dir)!r} holds no trained super-transformer (no {MANIFEST}); train one "
                "with nasforge.transformer.train_super_vit and give that folder as dir."
            )
        try:
            self.manifest = json.loads(manifest_path.read_text())
            run = self.manifest["run"]
            space_name, settings, trained_on = run["space"], run["settings"], run["data"]
            self.settings: ViTTrainSettings = ViTTrainSettings.from_dict(settings)
        except (ValueError, KeyError, TypeError):
            raise InvalidConfigError(
                f"{str(manifest_path)!r} is not the manifest of a nasforge super-transformer; "
                "train the folder again."
            ) from None
        self._space: Any = spaces.create(space_name)
        self.space = self._space.name
        self.num_classes = int(self.settings.num_classes or trained_on["num_classes"])
        self._open_source("super-transformer", trained_on, dataset, data, synthetic, cache_dir)
        check_counts(valid_images=valid_images, runs=runs)
        self.valid_images, self.runs = valid_images, runs
        has_tables = bool(tables) or isinstance(tables, LayerLatencyTable)
        self._tables = _load_tables(tables) if has_tables else {}
        self.measure = bool(measure)
        if self.measure:
            elsewhere = [
                n
                for n, t in self._tables.items()
                if t.device != "cpu" or t.backend not in ("torch", "onnxruntime")
            ]
            if elsewhere:
                raise InvalidConfigError(
                    f"measure=True times sub-networks on this machine, but the tables "
                    f"{elsewhere} describe another device or runtime; leave measure off or "
                    "give tables of this machine (device 'cpu', runtime torch or onnxruntime)."
                )
        self.threads = threads
        self.cache = bool(cache)
        self.device = device
        self._trained: TrainedSuperViT | None = None
        self._data: SearchData | None = None
        self._cache_path: Path | None = None
        self._cached: dict[str, float] = {}

    # -- what it returns -----------------------------------------------------------------------
    @property
    def tables(self) -> dict[str, LayerLatencyTable]:
        """The latency tables by name."""
        return dict(self._tables)

    @property
    def table_names(self) -> tuple[str, ...]:
        """``latency_ms[<table>]`` for each table."""
        return tuple(f"latency_ms[{name}]" for name in self._tables)

    @property
    def measured_names(self) -> tuple[str, ...]:
        """The metrics of the latency measured here (empty without ``measure``)."""
        if not self.measure:
            return ()
        if not self._tables:
            return ("latency_ms[cpu-torch]",)
        return tuple(f"measured_latency_ms[{name}]" for name in self._tables)

    @property
    def metrics(self) -> Mapping[str, Direction]:
        out = {ACCURACY: Direction.MAXIMIZE}
        for name in (*COSTS, *self.table_names, *self.measured_names):
            out[name] = Direction.MINIMIZE
        return out

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return (*COSTS, *self.table_names)

    def free_metrics(self, arch: Architecture) -> dict[str, float]:
        arch = self._space.check(arch)
        costs = self._space.costs(arch, num_classes=self.num_classes)
        out = {name: float(costs[name]) for name in COSTS}
        if self._tables:
            layers = self._space.layers(arch, num_classes=self.num_classes)
            for name, table in self._tables.items():
                out[f"latency_ms[{name}]"] = float(table.predict(layers))
        return out

    # -- the super-transformer and its data -------------------------------------------------------
    def trained(self) -> TrainedSuperViT:
        """The trained super-transformer (loaded once, on the CPU)."""
        if self._trained is None:
            from nasforge.transformer import load_super_vit

            self._trained = load_super_vit(self.dir, device=self.device)
        return self._trained

    def search_data(self) -> SearchData:
        """The halves of the training images, as the training split them."""
        if self._data is None:
            from nasforge.transformer import training_data

            splits = self._training_splits()
            self._data = training_data(self._space, splits, self.settings)
        return self._data

    # -- the cache -------------------------------------------------------------------------------
    def cache_path(self) -> Path:
        """``dir/measured-<key>.json`` (see the module docstring)."""
        if self._cache_path is None:
            data = self.search_data()
            material = {
                "run": self.manifest["run"],
                "checkpoint": file_digest(self.dir / "checkpoint.pt"),
                "valid_images": self.valid_images,
                "images": images_digest([(data.valid, self.valid_images)], data.mean, data.std),
            }
            self._cache_path = cache_file(self.dir, material)
            self._cached = read_cache(self._cache_path)
        return self._cache_path

    # -- evaluating -----------------------------------------------------------------------------
    def accuracy(self, arch: Architecture) -> float:
        """The inherited top-1 accuracy (percent) of ``arch``."""
        from nasforge.transformer import subnet_accuracy

        return float(
            subnet_accuracy(self.trained(), arch, self.search_data(), images=self.valid_images)
        )

    def measured(self, arch: Architecture) -> dict[str, float]:
        """The latency of ``arch``'s extracted network measured here (see ``measure``)."""
        from nasforge.hardware.latency import measure_latency

        net = self.trained().supernet.extract(arch).eval().cpu()
        side = int(self._space.IMAGE_SIZE)
        settings = [(t.backend, t.threads, t.batch_size) for t in self._tables.values()]
        out = {}
        for metric, (backend, threads, batch) in zip(
            self.measured_names, settings or [("torch", 1, 1)], strict=True
        ):
            out[metric] = measure_latency(
                net, (3, side, side), runs=self.runs, threads=threads, backend=backend,
                batch_size=batch,
            ).median_ms  # fmt: skip
        return out

    def spec(self) -> dict[str, Any] | None:
        return self._spec({})

    def __repr__(self) -> str:
        return f"SuperTransformerEvaluator({str(self.dir)!r}, space={self.space!r})"


def subvit_record(spec: Mapping[str, Any], arch: Architecture, info: Mapping[str, Any]) -> Any:
    """The stand-alone network of sub-network ``arch`` with its inherited weights, as a
    :class:`~nasforge.train.checkpoint.ModelRecord` (what ``nasforge export`` writes for a
    study of the ``super-transformer`` evaluator whose spec is ``spec``):
    ``supernet.extract(arch)``, whose outputs are the super-transformer's with ``arch``
    active.

    Raises:
        InvalidConfigError: The spec is not a ``super-transformer`` evaluator's, or its
            super-transformer or data are gone.
    """
    from nasforge.train.checkpoint import ModelRecord

    params = dict(spec)
    if params.pop("name", None) != "super-transformer":
        raise InvalidConfigError(f"Not the spec of a super-transformer evaluator: {dict(spec)!r}.")
    evaluator = SuperTransformerEvaluator(**params)
    supernet = evaluator.trained().supernet
    arch = evaluator._space.check(arch)
    network = supernet.extract(arch)
    side = int(evaluator._space.IMAGE_SIZE)
    data = evaluator.search_data()
    return ModelRecord(
        space=evaluator._space.name,
        arch=arch.text,
        build=dict(supernet.build_settings(arch)),
        state_dict={k: v.detach().cpu() for k, v in network.state_dict().items()},
        input_shape=(3, side, side),
        mean=tuple(data.mean),
        std=tuple(data.std),
        trained=True,
        info={"supernet": str(evaluator.dir), **dict(info)},
    )
